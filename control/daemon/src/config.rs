//! The desired configuration lunard persists: devices, pools, volumes and targets, by name.
//!
//! This is the state file's schema (its own version, independent of the RPC schema). Layouts
//! here always carry resolved sizes; device references are by name, and every device keeps the
//! stable [`DeviceId`] it got when added, which indexes it in published snapshots. Mirror and
//! thin nodes keep the [`NodeId`] they got when created (unique within their volume), which
//! names them in the data plane's faults; thin nodes keep their segment table (sparse in the
//! file, see [`ThinTable`]). Pools are not stored beyond their definition: which slots are free
//! is derived from the tables.
//!
//! The file holds CHAP secrets in clear (CHAP needs them so): the store writes it with mode
//! 0600 in a 0700 directory, and `Debug` output of the secret types never shows them.
//! Fields added after the first release default to "unset" and are left out when unset, so
//! files without them still load.

use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use lunar_volume::layout::{DeviceId, NodeId};
use serde::{Deserialize, Serialize};

pub use crate::thin::ThinTable;

/// Version of the state file schema.
pub const CONFIG_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub devices: Vec<DeviceConfig>,
    /// Pools thin volumes allocate from (absent in files written before pools existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolConfig>,
    pub volumes: Vec<VolumeConfig>,
    pub targets: Vec<TargetConfig>,
    /// CHAP required in discovery sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_chap: Option<ChapConfig>,
    /// Portals added with `portal_add`, served again at start. The `--listen` address comes
    /// from the command line and is not among them (unless it was added explicitly).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub portals: Vec<SocketAddr>,
    /// Background tasks (mirror resyncs, migrations): the running ones resume at start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    pub name: String,
    /// Absolute path, re-opened at every start.
    pub path: PathBuf,
    pub id: DeviceId,
}

/// A pool: whole devices cut into slots of `segment_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: String,
    /// Device names, in slot order.
    pub devices: Vec<String>,
    pub segment_bytes: u64,
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
    /// A read-only snapshot of the volume of that name (as it was called then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_of: Option<String>,
    /// A clone of the snapshot of that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_of: Option<String>,
    /// While a leg of the volume's mirror is out: the regions written since (marked before
    /// each write is issued), which a leg that comes back is resynchronised over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty_regions: Option<DirtyRegionsConfig>,
}

impl VolumeConfig {
    /// A snapshot: read-only, exported read-only.
    pub fn is_snapshot(&self) -> bool {
        self.snapshot_of.is_some()
    }
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
    Stripe {
        unit_bytes: u64,
        members: Vec<LayoutConfig>,
    },
    Mirror {
        id: NodeId,
        #[serde(default)]
        read_policy: ReadPolicyConfig,
        legs: Vec<LegConfig>,
    },
    Thin {
        id: NodeId,
        pool: String,
        size_bytes: u64,
        table: ThinTable,
    },
}

/// A mirror leg and its health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegConfig {
    pub layout: LayoutConfig,
    #[serde(default)]
    pub health: LegHealthConfig,
    /// The leg went faulty before its resync completed: it lacks more than the dirty
    /// regions, and comes back only through a full resync.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

/// `"healthy"`, `"faulty"` or `{"resyncing": {"up_to_bytes": N}}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LegHealthConfig {
    #[default]
    Healthy,
    Faulty,
    Resyncing {
        up_to_bytes: u64,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadPolicyConfig {
    #[default]
    RoundRobin,
    LeastOutstanding,
}

/// A background task as stored: it resumes after a restart from `cursor_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    pub id: u64,
    pub kind: TaskKindConfig,
    /// Uid of the volume (names can be reused after a delete).
    pub volume_uid: Uid,
    /// The volume's top-level mirror the task works on.
    pub mirror: NodeId,
    /// The leg being written (a migration's new layout is leg 1).
    pub leg: u32,
    /// Copy only the volume's dirty regions (a leg that came back).
    #[serde(default)]
    pub dirty_only: bool,
    /// Everything before this volume byte is on the leg.
    pub cursor_bytes: u64,
    /// Bytes actually copied so far (skipped regions are not counted).
    #[serde(default)]
    pub copied_bytes: u64,
    pub total_bytes: u64,
    pub state: TaskStateConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKindConfig {
    Resync,
    Migrate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskStateConfig {
    Running,
    Done,
    Failed { message: String },
}

/// The regions of a volume written while one of its mirror legs was out, as runs of region
/// numbers `(first, count)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirtyRegionsConfig {
    pub region_bytes: u64,
    pub runs: Vec<(u64, u64)>,
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

    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// The volume with uid `uid`.
    pub fn volume_by_uid(&self, uid: u64) -> Option<&VolumeConfig> {
        self.volumes.iter().find(|v| v.uid.0 == uid)
    }

    /// The pool owning device `name`.
    pub fn pool_of_device(&self, name: &str) -> Option<&PoolConfig> {
        self.pools
            .iter()
            .find(|p| p.devices.iter().any(|d| d == name))
    }

    /// Names of the volumes with a thin node allocating from pool `name`.
    pub fn volumes_using_pool(&self, name: &str) -> Vec<String> {
        self.volumes
            .iter()
            .filter(|v| v.layout.uses_pool(name))
            .map(|v| v.name.clone())
            .collect()
    }

    /// The name of the device with id `id`.
    pub fn device_name(&self, id: DeviceId) -> Option<&str> {
        self.devices
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.name.as_str())
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
    /// Whether a linear extent of the tree is on device `name`.
    pub fn uses_device(&self, name: &str) -> bool {
        let mut found = false;
        self.for_each_extent(&mut |device, _, _| found |= device == name);
        found
    }

    /// Whether a thin node of the tree allocates from pool `name`.
    pub fn uses_pool(&self, name: &str) -> bool {
        let mut found = false;
        self.for_each_thin(&mut |_, pool, _, _| found |= pool == name);
        found
    }

    /// The direct members of this node, in order (mirror legs included).
    pub fn members(&self) -> Vec<&LayoutConfig> {
        match self {
            LayoutConfig::Linear { .. } | LayoutConfig::Thin { .. } => Vec::new(),
            LayoutConfig::Concat(members) | LayoutConfig::Stripe { members, .. } => {
                members.iter().collect()
            }
            LayoutConfig::Mirror { legs, .. } => legs.iter().map(|leg| &leg.layout).collect(),
        }
    }

    /// The node's id, for the kinds that have one (mirror, thin).
    pub fn id(&self) -> Option<NodeId> {
        match self {
            LayoutConfig::Mirror { id, .. } | LayoutConfig::Thin { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Visit every linear extent (device, offset, size) in tree order.
    pub fn for_each_extent<'a>(&'a self, visit: &mut dyn FnMut(&'a str, u64, u64)) {
        if let LayoutConfig::Linear {
            device,
            offset_bytes,
            size_bytes,
        } = self
        {
            visit(device, *offset_bytes, *size_bytes);
        }
        for member in self.members() {
            member.for_each_extent(visit);
        }
    }

    /// Visit every thin node (id, pool, size, table) in tree order.
    pub fn for_each_thin<'a>(&'a self, visit: &mut dyn FnMut(NodeId, &'a str, u64, &'a ThinTable)) {
        if let LayoutConfig::Thin {
            id,
            pool,
            size_bytes,
            table,
        } = self
        {
            visit(*id, pool, *size_bytes, table);
        }
        for member in self.members() {
            member.for_each_thin(visit);
        }
    }

    /// Every node id of the tree.
    pub fn node_ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.id().into_iter().collect();
        for member in self.members() {
            ids.extend(member.node_ids());
        }
        ids
    }

    /// The thin node with id `id`: its pool and table.
    pub fn thin_node(&self, node: NodeId) -> Option<(&str, &ThinTable)> {
        let mut found = None;
        self.for_each_thin(&mut |id, pool, _, table| {
            if id == node && found.is_none() {
                found = Some((pool, table));
            }
        });
        found
    }

    /// Mutable access to the table of thin node `id`.
    pub fn thin_table_mut(&mut self, node: NodeId) -> Option<&mut ThinTable> {
        match self {
            LayoutConfig::Thin { id, table, .. } => (*id == node).then_some(table),
            LayoutConfig::Linear { .. } => None,
            LayoutConfig::Concat(members) | LayoutConfig::Stripe { members, .. } => members
                .iter_mut()
                .find_map(|member| member.thin_table_mut(node)),
            LayoutConfig::Mirror { legs, .. } => legs
                .iter_mut()
                .find_map(|leg| leg.layout.thin_table_mut(node)),
        }
    }

    /// Size of the node in bytes (saturating; validation refuses overflowing layouts). A
    /// stripe uses the same whole number of units of every member; a mirror is as large as
    /// its first leg (validation makes them equal).
    pub fn size_bytes(&self) -> u64 {
        match self {
            LayoutConfig::Linear { size_bytes, .. } | LayoutConfig::Thin { size_bytes, .. } => {
                *size_bytes
            }
            LayoutConfig::Concat(members) => members
                .iter()
                .fold(0u64, |total, m| total.saturating_add(m.size_bytes())),
            LayoutConfig::Stripe {
                unit_bytes,
                members,
            } => {
                let smallest = members.iter().map(|m| m.size_bytes()).min().unwrap_or(0);
                let units = smallest.checked_div(*unit_bytes).unwrap_or(0);
                units
                    .saturating_mul(*unit_bytes)
                    .saturating_mul(members.len() as u64)
            }
            LayoutConfig::Mirror { legs, .. } => {
                legs.first().map_or(0, |leg| leg.layout.size_bytes())
            }
        }
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

    #[test]
    fn state_files_from_before_pools_still_load() {
        let text = r#"{"devices":[{"name":"d","path":"/dev/loop0","id":0}],
            "volumes":[{"name":"v","uid":"00000000000000ff","block_size":512,
                "layout":{"concat":[{"linear":{"device":"d","offset_bytes":0,"size_bytes":4096}}]}}],
            "targets":[]}"#;
        let config: Config = serde_json::from_str(text).expect("old file");
        assert!(config.pools.is_empty());
        assert!(!config.volumes[0].is_snapshot());
        assert_eq!(config.volumes[0].layout.size_bytes(), 4096);
        let again = serde_json::to_string(&config).expect("encode");
        assert!(
            !again.contains("pools") && !again.contains("snapshot_of"),
            "{again}"
        );
    }

    #[test]
    fn nested_layouts_round_trip_and_size_up() {
        let thin = LayoutConfig::Thin {
            id: 2,
            pool: "p".into(),
            size_bytes: 3 << 20,
            table: ThinTable::all_zero(1 << 20, 3),
        };
        let stripe = LayoutConfig::Stripe {
            unit_bytes: 1 << 20,
            members: vec![
                LayoutConfig::Linear {
                    device: "a".into(),
                    offset_bytes: 0,
                    size_bytes: (3 << 19) + 4096,
                },
                LayoutConfig::Linear {
                    device: "b".into(),
                    offset_bytes: 0,
                    size_bytes: 2 << 20,
                },
            ],
        };
        assert_eq!(stripe.size_bytes(), 2 << 20, "one whole unit per member");
        let mirror = LayoutConfig::Mirror {
            id: 1,
            read_policy: ReadPolicyConfig::LeastOutstanding,
            legs: vec![
                LegConfig {
                    layout: thin,
                    health: LegHealthConfig::Healthy,
                    stale: false,
                },
                LegConfig {
                    layout: LayoutConfig::Concat(vec![stripe]),
                    health: LegHealthConfig::Resyncing { up_to_bytes: 4096 },
                    stale: false,
                },
            ],
        };
        assert_eq!(mirror.size_bytes(), 3 << 20);
        assert_eq!(mirror.node_ids(), vec![1, 2]);
        assert!(mirror.uses_pool("p") && mirror.uses_device("b") && !mirror.uses_device("p"));
        assert!(mirror.thin_node(2).is_some() && mirror.thin_node(1).is_none());
        let text = serde_json::to_string(&mirror).expect("encode");
        let back: LayoutConfig = serde_json::from_str(&text).expect("decode");
        assert_eq!(back, mirror);
    }
}
