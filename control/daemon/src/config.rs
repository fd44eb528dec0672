//! The desired configuration lunard persists: devices, volumes and targets, by name.
//!
//! This is the state file's schema (its own version, independent of the RPC schema). Layouts
//! here always carry resolved sizes; device references are by name, and every device keeps the
//! stable [`DeviceId`] it got when added, which indexes it in published snapshots.
//!
//! The file holds CHAP secrets in clear (CHAP needs them so): the store writes it with mode
//! 0600 in a 0700 directory, and `Debug` output of the secret types never shows them.
//! Fields added after the first release default to "unset" and are left out when unset, so
//! files without them still load.

use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use lunar_volume::layout::DeviceId;
use serde::{Deserialize, Serialize};

/// Version of the state file schema.
pub const CONFIG_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub devices: Vec<DeviceConfig>,
    pub volumes: Vec<VolumeConfig>,
    pub targets: Vec<TargetConfig>,
    /// CHAP required in discovery sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_chap: Option<ChapConfig>,
    /// Portals added with `portal_add`, served again at start. The `--listen` address comes
    /// from the command line and is not among them (unless it was added explicitly).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub portals: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    pub name: String,
    /// Absolute path, re-opened at every start.
    pub path: PathBuf,
    pub id: DeviceId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeConfig {
    pub name: String,
    pub uid: Uid,
    pub block_size: u32,
    pub layout: LayoutConfig,
    /// Durable reservation state of the volume's logical unit (registrations, persistent
    /// reservation, PRGENERATION, APTPL): `lunar_scsi::pr::codec` bytes as lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<String>,
}

/// A layout tree with resolved sizes and devices by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LayoutConfig {
    Linear {
        device: String,
        offset_bytes: u64,
        size_bytes: u64,
    },
    Concat(Vec<LayoutConfig>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Normalised iSCSI name.
    pub iqn: String,
    pub luns: Vec<LunConfig>,
    /// Normalised initiator names allowed to see and log in to the target; empty: everyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_initiators: Vec<String>,
    /// CHAP required to log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chap: Option<ChapConfig>,
}

/// CHAP settings of a target or of discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChapConfig {
    /// What initiators must prove.
    pub initiator: ChapSecretConfig,
    /// Mutual CHAP: what lunard proves to initiators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutual: Option<ChapSecretConfig>,
}

/// A CHAP user name and its secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChapSecretConfig {
    pub username: String,
    pub secret: String,
}

impl fmt::Debug for ChapSecretConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChapSecretConfig")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LunConfig {
    pub lun: u64,
    /// Volume name.
    pub volume: String,
    pub read_only: bool,
    /// Removable medium (absent in state files written before the option existed).
    #[serde(default)]
    pub removable: bool,
}

impl Config {
    pub fn device(&self, name: &str) -> Option<&DeviceConfig> {
        self.devices.iter().find(|d| d.name == name)
    }

    pub fn volume(&self, name: &str) -> Option<&VolumeConfig> {
        self.volumes.iter().find(|v| v.name == name)
    }

    pub fn target(&self, iqn: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.iqn == iqn)
    }

    /// Names of the volumes with an extent on device `name`.
    pub fn volumes_using_device(&self, name: &str) -> Vec<String> {
        self.volumes
            .iter()
            .filter(|v| v.layout.uses_device(name))
            .map(|v| v.name.clone())
            .collect()
    }

    /// IQNs of the targets exporting volume `name`.
    pub fn targets_exporting(&self, name: &str) -> Vec<String> {
        self.targets
            .iter()
            .filter(|t| t.luns.iter().any(|l| l.volume == name))
            .map(|t| t.iqn.clone())
            .collect()
    }

    /// The lowest device id no device uses.
    pub fn free_device_id(&self) -> DeviceId {
        let mut id: DeviceId = 0;
        while self.devices.iter().any(|d| d.id == id) {
            id += 1;
        }
        id
    }
}

impl LayoutConfig {
    pub fn uses_device(&self, name: &str) -> bool {
        match self {
            LayoutConfig::Linear { device, .. } => device == name,
            LayoutConfig::Concat(members) => members.iter().any(|m| m.uses_device(name)),
        }
    }

    /// Visit every linear extent in volume order.
    pub fn for_each_extent<'a>(&'a self, visit: &mut dyn FnMut(&'a str, u64, u64)) {
        match self {
            LayoutConfig::Linear {
                device,
                offset_bytes,
                size_bytes,
            } => visit(device, *offset_bytes, *size_bytes),
            LayoutConfig::Concat(members) => {
                for member in members {
                    member.for_each_extent(visit);
                }
            }
        }
    }

    /// Sum of the extent sizes (saturating; validation refuses overflowing layouts).
    pub fn size_bytes(&self) -> u64 {
        let mut total: u64 = 0;
        self.for_each_extent(&mut |_, _, size| total = total.saturating_add(size));
        total
    }
}

/// A volume's stable 64-bit identifier, never zero. Serialized as 16 lowercase hex digits so
/// that JSON readers using doubles keep every bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uid(pub u64);

impl Uid {
    /// A fresh random uid from /dev/urandom, different from every uid in `taken`.
    pub fn random(taken: &[Uid]) -> std::io::Result<Uid> {
        let mut urandom = std::fs::File::open("/dev/urandom")?;
        loop {
            let mut bytes = [0u8; 8];
            urandom.read_exact(&mut bytes)?;
            let uid = Uid(u64::from_le_bytes(bytes));
            if uid.0 != 0 && !taken.contains(&uid) {
                return Ok(uid);
            }
        }
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for Uid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Uid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(serde::de::Error::custom("uid must be 16 hex digits"));
        }
        let value = u64::from_str_radix(&text, 16)
            .map_err(|_| serde::de::Error::custom("uid must be 16 hex digits"))?;
        if value == 0 {
            return Err(serde::de::Error::custom("uid must not be zero"));
        }
        Ok(Uid(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_round_trips_as_hex() {
        let uid = Uid(0xfedc_ba98_7654_3210);
        let text = serde_json::to_string(&uid).expect("serialize");
        assert_eq!(text, "\"fedcba9876543210\"");
        assert_eq!(serde_json::from_str::<Uid>(&text).expect("parse"), uid);
        assert!(serde_json::from_str::<Uid>("\"0000000000000000\"").is_err());
        assert!(serde_json::from_str::<Uid>("\"12\"").is_err());
        assert!(serde_json::from_str::<Uid>("\"+00000000000000f\"").is_err());
    }

    #[test]
    fn random_uids_are_nonzero_and_avoid_taken() {
        let first = Uid::random(&[]).expect("urandom");
        let second = Uid::random(&[first]).expect("urandom");
        assert_ne!(first.0, 0);
        assert_ne!(first, second);
    }

    #[test]
    fn free_device_id_fills_gaps() {
        let mut config = Config::default();
        assert_eq!(config.free_device_id(), 0);
        for (name, id) in [("a", 0), ("b", 2)] {
            config.devices.push(DeviceConfig {
                name: name.to_string(),
                path: PathBuf::from("/x"),
                id,
            });
        }
        assert_eq!(config.free_device_id(), 1);
    }

    #[test]
    fn layout_walks_extents_in_order() {
        let layout = LayoutConfig::Concat(vec![
            LayoutConfig::Linear {
                device: "a".into(),
                offset_bytes: 0,
                size_bytes: 4096,
            },
            LayoutConfig::Concat(vec![LayoutConfig::Linear {
                device: "b".into(),
                offset_bytes: 512,
                size_bytes: 1024,
            }]),
        ]);
        let mut seen = Vec::new();
        layout.for_each_extent(&mut |d, o, s| seen.push((d.to_string(), o, s)));
        assert_eq!(
            seen,
            vec![("a".to_string(), 0, 4096), ("b".to_string(), 512, 1024)]
        );
        assert_eq!(layout.size_bytes(), 5120);
        assert!(layout.uses_device("b"));
        assert!(!layout.uses_device("c"));
    }
}
