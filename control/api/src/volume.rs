//! Types of the `volume_*` methods: virtual volumes built from extents of devices, from thin
//! pools, and from other layouts (concat, stripe, mirror) nested freely; snapshots, clones and
//! resizing.

use serde::{Deserialize, Serialize};

/// Block sizes a volume may have.
pub const VOLUME_BLOCK_SIZES: [u32; 2] = [512, 4096];
/// Block size of a volume created without `block_size`.
pub const DEFAULT_VOLUME_BLOCK_SIZE: u32 = 512;

/// Layout tree of a volume: `{"linear": {...}}`, `{"concat": [LAYOUT, ...]}`,
/// `{"stripe": {"unit_bytes", "members": [LAYOUT, ...]}}`, `{"mirror": {"legs": [LAYOUT, ...]}}`
/// or `{"thin": {"pool", "size_bytes"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LayoutSpec {
    /// A contiguous extent of one device.
    Linear(LinearSpec),
    /// Members one after the other.
    Concat(Vec<LayoutSpec>),
    /// Stripe units dealt round-robin over the members.
    Stripe(StripeSpec),
    /// The same bytes on every leg.
    Mirror(MirrorSpec),
    /// Segments allocated from a pool on first write.
    Thin(ThinSpec),
}

/// An extent of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearSpec {
    /// Device name.
    pub device: String,
    /// Start of the extent on the device (default 0).
    #[serde(default)]
    pub offset_bytes: u64,
    /// Length of the extent. When absent at creation: the rest of the device from
    /// `offset_bytes`, rounded down to the volume block size. Always present in results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

/// Stripe units of `unit_bytes` dealt round-robin over `members`: unit `k` of the stripe is on
/// member `k % members`. Every member contributes the same number of whole units (the smallest
/// member's size rounded down to a unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSpec {
    /// A multiple of the volume block size.
    pub unit_bytes: u64,
    pub members: Vec<LayoutSpec>,
}

/// Legs holding the same bytes: writes go to every leg, reads to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSpec {
    /// Legs of equal size.
    pub legs: Vec<LayoutSpec>,
    /// Which leg serves a read (default `round_robin`). Always present in results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_policy: Option<ReadPolicySpec>,
    /// In results: the health of each leg, in leg order. Not accepted at creation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<LegHealthInfo>,
}

/// How a mirror picks the leg of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadPolicySpec {
    /// Each read to the next leg in turn.
    RoundRobin,
    /// The leg with the fewest reads in flight.
    LeastOutstanding,
}

/// The health of one mirror leg: `{"state": "healthy"}`, `{"state": "faulty"}` or
/// `{"state": "resyncing", "resynced_bytes": N, "percent": P}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LegHealthInfo {
    /// In sync: reads and writes.
    Healthy,
    /// Failed or removed: neither reads nor writes.
    Faulty,
    /// Being copied to from the other legs; the first `resynced_bytes` are in sync.
    Resyncing {
        resynced_bytes: u64,
        /// `resynced_bytes` as a whole percentage of the leg.
        percent: u8,
    },
}

/// A thin-provisioned node: `size_bytes` cut into the pool's segments, each allocated from the
/// pool on its first write and reading as zeros until then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThinSpec {
    /// Pool name.
    pub pool: String,
    /// A multiple of the volume block size.
    pub size_bytes: u64,
    /// In results: the pool's segment size. Not accepted at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_bytes: Option<u64>,
    /// In results: bytes of segments with pool space (shared ones included). Not accepted at
    /// creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_bytes: Option<u64>,
    /// In results: bytes of segments shared with snapshots or clones (copied on their next
    /// write). Not accepted at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_bytes: Option<u64>,
}

/// `volume_create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeCreateParams {
    /// 1-64 characters from `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
    pub name: String,
    pub layout: LayoutSpec,
    /// 512 or 4096 (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
}

/// `volume_delete` (refused while a target exports the volume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeDeleteParams {
    pub name: String,
}

/// `volume_snapshot_create`: a read-only point-in-time image of a thin volume, sharing its
/// segments until either side writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSnapshotCreateParams {
    /// The thin volume to take the snapshot of.
    pub volume: String,
    /// Name of the snapshot (a new volume).
    pub name: String,
}

/// `volume_clone_create`: a writable thin volume starting as a snapshot's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeCloneCreateParams {
    /// The snapshot to clone.
    pub snapshot: String,
    /// Name of the clone (a new volume).
    pub name: String,
}

/// `volume_resize`: grow a volume to `size_bytes`. A thin volume grows its table; any other
/// layout grows by `extend`, concatenated at its end, whose size must be the difference (when
/// absent on a linear or concat volume, the last extent grows in place if its device has room).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeResizeParams {
    pub name: String,
    pub size_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend: Option<LayoutSpec>,
}

/// One volume, as returned by `volume_create` and `volume_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub name: String,
    /// Stable 64-bit identifier (16 lowercase hex digits), the base of the SCSI identifiers.
    pub uid: String,
    pub size_bytes: u64,
    pub block_size: u32,
    /// The layout with every size resolved, mirror leg health and thin allocation.
    pub layout: LayoutSpec,
    /// Targets exporting this volume.
    #[serde(default)]
    pub exported_by: Vec<String>,
    /// A read-only snapshot (exported read-only whatever the LUN says).
    #[serde(default)]
    pub snapshot: bool,
    /// For a snapshot: the volume it was taken of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_of: Option<String>,
    /// For a clone: the snapshot it was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_of: Option<String>,
    /// Whether every byte has all its copies: see [`VolumeHealth`].
    #[serde(default)]
    pub health: VolumeHealth,
}

/// The state of a volume's mirror legs, wherever they are in its layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeHealth {
    /// Every mirror leg is in sync (or the volume has no mirror).
    #[default]
    Healthy,
    /// A leg is being copied onto (a resync or a migration); every leg that serves is whole.
    Resyncing,
    /// A leg is out (faulty): the volume serves I/O with fewer copies of its data.
    Degraded,
}

/// `volume_list` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeListResult {
    pub volumes: Vec<VolumeInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_layouts_parse() {
        let text = r#"{"mirror": {"legs": [
            {"stripe": {"unit_bytes": 65536, "members": [
                {"linear": {"device": "a"}}, {"linear": {"device": "b", "size_bytes": 4096}}]}},
            {"thin": {"pool": "p", "size_bytes": 1048576}}],
            "read_policy": "least_outstanding"}}"#;
        let layout: LayoutSpec = serde_json::from_str(text).expect("parse");
        let LayoutSpec::Mirror(mirror) = &layout else {
            panic!("not a mirror: {layout:?}");
        };
        assert_eq!(mirror.read_policy, Some(ReadPolicySpec::LeastOutstanding));
        assert!(mirror.health.is_empty());
        assert!(
            matches!(&mirror.legs[0], LayoutSpec::Stripe(s) if s.unit_bytes == 65536 && s.members.len() == 2)
        );
        assert!(
            matches!(&mirror.legs[1], LayoutSpec::Thin(t) if t.pool == "p" && t.allocated_bytes.is_none())
        );
        let back: LayoutSpec =
            serde_json::from_str(&serde_json::to_string(&layout).expect("encode")).expect("parse");
        assert_eq!(back, layout);
    }

    #[test]
    fn unknown_fields_and_policies_are_refused() {
        for text in [
            r#"{"stripe": {"unit_bytes": 4096, "members": [], "extra": 1}}"#,
            r#"{"mirror": {"legs": [], "read_policy": "random"}}"#,
            r#"{"thin": {"pool": "p"}}"#,
            r#"{"raid5": {}}"#,
        ] {
            assert!(serde_json::from_str::<LayoutSpec>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn leg_health_is_tagged_by_state() {
        let resyncing = LegHealthInfo::Resyncing {
            resynced_bytes: 4096,
            percent: 50,
        };
        assert_eq!(
            serde_json::to_value(resyncing).expect("encode"),
            serde_json::json!({"state": "resyncing", "resynced_bytes": 4096, "percent": 50})
        );
        assert_eq!(
            serde_json::to_value(LegHealthInfo::Healthy).expect("encode"),
            serde_json::json!({"state": "healthy"})
        );
    }
}
