//! Who may use a target and discovery: `target_auth_set`, `target_acl_set`,
//! `discovery_auth_set`, `discovery_auth_get`, and the rules their stored forms obey. A change
//! applies to logins after the answer; sessions already logged in stay.

use std::collections::HashSet;

use lunar_api::auth::{DiscoveryAuthInfo, DiscoveryAuthSetParams};
use lunar_api::target::{TargetAclSetParams, TargetAuthSetParams, TargetInfo, MAX_ACL_INITIATORS};
use lunar_api::Empty;

use super::targets::info;
use super::Controller;
use crate::chap;
use crate::config::{ChapConfig, Config, TargetConfig};
use crate::error::ControlError;
use crate::names::normalize_initiator_name;

/// Normalise an access list: valid iSCSI names, each once, at most [`MAX_ACL_INITIATORS`].
fn normalize_initiators(names: &[String]) -> Result<Vec<String>, ControlError> {
    if names.len() > MAX_ACL_INITIATORS {
        return Err(ControlError::InvalidParams(format!(
            "{} initiators listed; a target's access list holds at most {MAX_ACL_INITIATORS}",
            names.len()
        )));
    }
    let mut seen = HashSet::with_capacity(names.len());
    let mut normal = Vec::with_capacity(names.len());
    for name in names {
        let name = normalize_initiator_name(name).map_err(ControlError::InvalidParams)?;
        if !seen.insert(name.clone()) {
            return Err(ControlError::InvalidParams(format!(
                "initiator '{name}' is listed more than once"
            )));
        }
        normal.push(name);
    }
    Ok(normal)
}

/// Rules a stored target's access settings obey (checked again when a state file is loaded).
pub(super) fn check_access(target: &TargetConfig) -> Result<(), ControlError> {
    let normal = normalize_initiators(&target.allowed_initiators)?;
    if normal != target.allowed_initiators {
        return Err(ControlError::InvalidParams(format!(
            "the access list of target '{}' is not in normalised (lowercase) form",
            target.iqn
        )));
    }
    if let Some(chap) = &target.chap {
        chap::check_chap_config(chap).map_err(|why| {
            ControlError::InvalidParams(format!("CHAP of target '{}': {why}", target.iqn))
        })?;
    }
    Ok(())
}

/// Rules the stored discovery settings obey.
pub(super) fn check_discovery(config: &Config) -> Result<(), ControlError> {
    match &config.discovery_chap {
        Some(chap) => chap::check_chap_config(chap)
            .map_err(|why| ControlError::InvalidParams(format!("discovery CHAP: {why}"))),
        None => Ok(()),
    }
}

/// How a log line names a CHAP setting (user names only).
fn describe(chap: Option<&ChapConfig>) -> String {
    match chap {
        None => "off".to_string(),
        Some(ChapConfig {
            initiator,
            mutual: None,
        }) => format!("one-way, initiator user '{}'", initiator.username),
        Some(ChapConfig {
            initiator,
            mutual: Some(mutual),
        }) => format!(
            "mutual, initiator user '{}', target user '{}'",
            initiator.username, mutual.username
        ),
    }
}

impl Controller {
    /// Index and copy of target `iqn` (any case).
    fn target_at(&self, iqn: &str) -> Result<(usize, TargetConfig), ControlError> {
        let normal = iqn.to_ascii_lowercase();
        self.config
            .targets
            .iter()
            .enumerate()
            .find(|(_, t)| t.iqn == normal)
            .map(|(index, t)| (index, t.clone()))
            .ok_or_else(|| ControlError::not_found("target", iqn))
    }

    /// Replace target `index` with `target` (persist, publish) unless nothing changes.
    fn update_target(
        &mut self,
        index: usize,
        target: TargetConfig,
    ) -> Result<TargetInfo, ControlError> {
        let shown = info(&target);
        if self.config.targets.get(index) == Some(&target) {
            return Ok(shown);
        }
        let mut config = self.config.clone();
        let slot = config
            .targets
            .get_mut(index)
            .ok_or_else(|| ControlError::Internal(format!("target index {index} vanished")))?;
        *slot = target;
        let devices = self.devices.clone();
        self.commit(config, devices)?;
        Ok(shown)
    }

    pub fn target_auth_set(
        &mut self,
        params: TargetAuthSetParams,
    ) -> Result<TargetInfo, ControlError> {
        let chap = chap::chap_config(params.chap, params.mutual_chap)
            .map_err(ControlError::InvalidParams)?;
        let (index, mut target) = self.target_at(&params.iqn)?;
        target.chap = chap;
        let shown = self.update_target(index, target)?;
        tracing::info!(
            "target {}: CHAP {}",
            shown.iqn,
            describe(self.config.targets.get(index).and_then(|t| t.chap.as_ref()))
        );
        Ok(shown)
    }

    pub fn target_acl_set(
        &mut self,
        params: TargetAclSetParams,
    ) -> Result<TargetInfo, ControlError> {
        let initiators = normalize_initiators(&params.initiators)?;
        let (index, mut target) = self.target_at(&params.iqn)?;
        target.allowed_initiators = initiators;
        let shown = self.update_target(index, target)?;
        if shown.initiators.is_empty() {
            tracing::info!("target {}: every initiator allowed", shown.iqn);
        } else {
            tracing::info!(
                "target {}: only initiators {} allowed",
                shown.iqn,
                shown.initiators.join(", ")
            );
        }
        Ok(shown)
    }

    pub fn discovery_auth_set(
        &mut self,
        params: DiscoveryAuthSetParams,
    ) -> Result<DiscoveryAuthInfo, ControlError> {
        let chap = chap::chap_config(params.chap, params.mutual_chap)
            .map_err(ControlError::InvalidParams)?;
        if self.config.discovery_chap != chap {
            let mut config = self.config.clone();
            config.discovery_chap = chap;
            let devices = self.devices.clone();
            self.commit(config, devices)?;
            tracing::info!(
                "discovery: CHAP {}",
                describe(self.config.discovery_chap.as_ref())
            );
        }
        self.discovery_auth_get(Empty {})
    }

    pub fn discovery_auth_get(
        &mut self,
        _params: Empty,
    ) -> Result<DiscoveryAuthInfo, ControlError> {
        let (chap, mutual_chap) = chap::to_info(self.config.discovery_chap.as_ref());
        Ok(DiscoveryAuthInfo { chap, mutual_chap })
    }
}
