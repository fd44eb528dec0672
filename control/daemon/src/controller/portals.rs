//! `portal_add`, `portal_remove`, `portal_list`, and serving the saved portals at start.
//!
//! The `--listen` address is served from the command line at every start and is not saved;
//! every portal added over RPC is saved (with the port actually bound) and served again at
//! start. A saved portal that cannot be bound at start stays saved and is listed as not
//! listening, so that it can be retried (`portal_add`) or dropped (`portal_remove`).

use std::collections::HashSet;
use std::net::SocketAddr;

use lunar_api::portal::{PortalAddParams, PortalInfo, PortalListResult, PortalRemoveParams};
use lunar_api::Empty;
use lunar_reactor::PortalError;

use super::Controller;
use crate::config::Config;
use crate::error::ControlError;

/// Parse `ip:port` (IPv6 as `[addr]:port`).
fn parse_portal(text: &str) -> Result<SocketAddr, ControlError> {
    text.parse::<SocketAddr>().map_err(|_| {
        ControlError::InvalidParams(format!(
            "portal address '{}' is not ip:port (IPv6 as [addr]:port), e.g. 192.0.2.10:3260",
            text.escape_debug()
        ))
    })
}

/// The error a failed portal change answers with.
fn portal_error(error: PortalError) -> ControlError {
    match error {
        PortalError::Exists(addr) => {
            ControlError::AlreadyExists(format!("portal {addr} is already served"))
        }
        PortalError::NotFound(addr) => ControlError::not_found("portal", &addr.to_string()),
        PortalError::Last(addr) => last_portal(addr),
        error @ PortalError::Listen { .. } => ControlError::Conflict(error.to_string()),
        error @ PortalError::Unreachable(_) => ControlError::Portal(error),
    }
}

fn last_portal(addr: SocketAddr) -> ControlError {
    ControlError::Conflict(format!(
        "portal {addr} is the last one lunard serves; add another before removing it"
    ))
}

/// Rules the saved portals obey: each once, with a real port.
pub(super) fn check_portals(config: &Config) -> Result<(), ControlError> {
    let mut seen = HashSet::new();
    for portal in &config.portals {
        if portal.port() == 0 {
            return Err(ControlError::InvalidParams(format!(
                "saved portal {portal} has port 0; saved portals carry the port they were bound to"
            )));
        }
        if !seen.insert(portal) {
            return Err(ControlError::InvalidParams(format!(
                "portal {portal} is saved more than once"
            )));
        }
    }
    Ok(())
}

impl Controller {
    /// Serve the saved portals the data plane does not serve yet. One that cannot be bound is
    /// logged and stays saved.
    pub(super) fn restore_portals(&mut self) {
        let served = self.publisher.portals();
        for portal in self.config.portals.clone() {
            if served.contains(&portal) {
                continue;
            }
            match self.publisher.add_portal(portal) {
                Ok(bound) => tracing::info!("serving saved portal {bound}"),
                Err(e) => tracing::warn!(
                    "cannot serve saved portal {portal}: {e}; it stays saved and is listed as not \
                     listening: add it again once the address is available, or remove it"
                ),
            }
        }
    }

    pub fn portal_add(&mut self, params: PortalAddParams) -> Result<PortalInfo, ControlError> {
        let addr = parse_portal(&params.address)?;
        if self.publisher.portals().contains(&addr) {
            return Err(portal_error(PortalError::Exists(addr)));
        }
        let bound = self.publisher.add_portal(addr).map_err(portal_error)?;
        let shown = PortalInfo {
            address: bound.to_string(),
            listening: true,
            persistent: true,
        };
        if self.config.portals.contains(&bound) {
            tracing::info!("saved portal {bound} is served again");
            return Ok(shown);
        }
        let mut config = self.config.clone();
        config.portals.push(bound);
        if let Err(error) = self.store.save(&config) {
            if let Err(undo) = self.publisher.remove_portal(bound) {
                tracing::error!(
                    "portal {bound} could not be saved, and stopping it failed too: {undo}"
                );
            }
            return Err(ControlError::Persist(error));
        }
        self.config = config;
        tracing::info!("portal {bound} added");
        Ok(shown)
    }

    pub fn portal_remove(&mut self, params: PortalRemoveParams) -> Result<Empty, ControlError> {
        let addr = parse_portal(&params.address)?;
        let served = self.publisher.portals();
        let listening = served.contains(&addr);
        let saved = self.config.portals.contains(&addr);
        if !listening && !saved {
            return Err(ControlError::not_found("portal", &addr.to_string()));
        }
        if listening && served.len() == 1 {
            return Err(last_portal(addr));
        }
        let mut config = self.config.clone();
        if saved {
            config.portals.retain(|p| *p != addr);
            self.store.save(&config).map_err(ControlError::Persist)?;
        }
        if listening {
            if let Err(error) = self.publisher.remove_portal(addr) {
                if saved {
                    if let Err(restore) = self.store.save(&self.config) {
                        tracing::error!(
                            "portal {addr} is still served but could not be saved back: {restore}"
                        );
                    }
                }
                return Err(portal_error(error));
            }
        }
        self.config = config;
        tracing::info!("portal {addr} removed");
        Ok(Empty {})
    }

    pub fn portal_list(&mut self, _params: Empty) -> Result<PortalListResult, ControlError> {
        let served = self.publisher.portals();
        let listening = served.iter().map(|addr| PortalInfo {
            address: addr.to_string(),
            listening: true,
            persistent: self.config.portals.contains(addr),
        });
        let idle = self
            .config
            .portals
            .iter()
            .filter(|addr| !served.contains(addr))
            .map(|addr| PortalInfo {
                address: addr.to_string(),
                listening: false,
                persistent: true,
            });
        Ok(PortalListResult {
            portals: listening.chain(idle).collect(),
        })
    }
}
