//! `target_create`, `target_list`, `target_delete` (access rules are set in `access`).

use std::collections::HashSet;

use lunar_api::target::{
    LunSpec, TargetCreateParams, TargetDeleteParams, TargetInfo, TargetListResult, LUN_LIMIT,
};
use lunar_api::Empty;

use super::access::check_access;
use super::Controller;
use crate::chap;
use crate::config::{Config, LunConfig, TargetConfig};
use crate::error::ControlError;
use crate::names::normalize_iscsi_name;

/// Rules a new target obeys given the configuration before it.
pub(super) fn check_new_target(config: &Config, target: &TargetConfig) -> Result<(), ControlError> {
    let normal = normalize_iscsi_name(&target.iqn).map_err(ControlError::InvalidParams)?;
    if normal != target.iqn {
        return Err(ControlError::InvalidParams(format!(
            "target name '{}' is not in normalised form '{normal}'",
            target.iqn
        )));
    }
    if config.target(&target.iqn).is_some() {
        return Err(ControlError::already_exists("target", &target.iqn));
    }
    if target.luns.is_empty() {
        return Err(ControlError::InvalidParams(
            "a target needs at least one LUN".to_string(),
        ));
    }
    let mut seen = HashSet::new();
    for lun in &target.luns {
        if lun.lun >= LUN_LIMIT {
            return Err(ControlError::InvalidParams(format!(
                "LUN {} is out of range: LUN numbers must be below {LUN_LIMIT}",
                lun.lun
            )));
        }
        if !seen.insert(lun.lun) {
            return Err(ControlError::InvalidParams(format!(
                "LUN {} is listed more than once",
                lun.lun
            )));
        }
    }
    for lun in &target.luns {
        if config.volume(&lun.volume).is_none() {
            return Err(ControlError::not_found("volume", &lun.volume));
        }
    }
    check_access(target)
}

pub(super) fn info(target: &TargetConfig) -> TargetInfo {
    let mut luns: Vec<LunSpec> = target
        .luns
        .iter()
        .map(|l| LunSpec {
            lun: l.lun,
            volume: l.volume.clone(),
            read_only: l.read_only,
            removable: l.removable,
        })
        .collect();
    luns.sort_by_key(|l| l.lun);
    let (chap, mutual_chap) = chap::to_info(target.chap.as_ref());
    TargetInfo {
        iqn: target.iqn.clone(),
        luns,
        initiators: target.allowed_initiators.clone(),
        chap,
        mutual_chap,
    }
}

impl Controller {
    pub fn target_create(
        &mut self,
        params: TargetCreateParams,
    ) -> Result<TargetInfo, ControlError> {
        let iqn = normalize_iscsi_name(&params.iqn).map_err(ControlError::InvalidParams)?;
        // A snapshot is exported read-only whatever the LUN asks; say so in the configuration.
        let snapshot = |name: &str| self.config.volume(name).is_some_and(|v| v.is_snapshot());
        let target = TargetConfig {
            iqn,
            luns: params
                .luns
                .into_iter()
                .map(|l| LunConfig {
                    read_only: l.read_only || snapshot(&l.volume),
                    lun: l.lun,
                    volume: l.volume,
                    removable: l.removable,
                })
                .collect(),
            allowed_initiators: Vec::new(),
            chap: None,
        };
        check_new_target(&self.config, &target)?;
        let mut config = self.config.clone();
        config.targets.push(target.clone());
        let devices = self.devices.clone();
        self.commit(config, devices)?;
        Ok(info(&target))
    }

    pub fn target_list(&mut self, _params: Empty) -> Result<TargetListResult, ControlError> {
        let mut targets: Vec<TargetInfo> = self.config.targets.iter().map(info).collect();
        targets.sort_by(|a, b| a.iqn.cmp(&b.iqn));
        Ok(TargetListResult { targets })
    }

    pub fn target_delete(&mut self, params: TargetDeleteParams) -> Result<Empty, ControlError> {
        let iqn = params.iqn.to_ascii_lowercase();
        if self.config.target(&iqn).is_none() {
            return Err(ControlError::not_found("target", &params.iqn));
        }
        let mut config = self.config.clone();
        config.targets.retain(|t| t.iqn != iqn);
        let devices = self.devices.clone();
        self.commit_and_drain(config, devices)?;
        Ok(Empty {})
    }
}
