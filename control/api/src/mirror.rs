//! Types of the `mirror_*` and `volume_migrate` methods: changing a volume's mirror legs and
//! moving a volume onto another layout, online.

use serde::{Deserialize, Serialize};

use crate::volume::LayoutSpec;

/// `mirror_leg_add`: add a leg to the volume's top-level mirror (a volume that is not a
/// mirror becomes one, its layout being leg 0). The new leg is resynchronised in the
/// background; the result is that task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorLegAddParams {
    pub volume: String,
    /// The new leg: exactly as large as the volume.
    pub leg: LayoutSpec,
}

/// `mirror_leg_remove`: take leg `index` out of the volume's top-level mirror (refused for
/// the last leg that holds all the data). A mirror left with one leg becomes that leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorLegRemoveParams {
    pub volume: String,
    pub index: u32,
}

/// `mirror_leg_rejoin`: a faulty leg is usable again (its device came back); it is
/// resynchronised over the regions written while it was out. The result is that task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorLegRejoinParams {
    pub volume: String,
    pub index: u32,
}

/// `volume_migrate`: move the volume onto `layout` while hosts keep using it. New writes go
/// to both layouts while the data is copied; then the volume switches to the new layout. The
/// result is the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeMigrateParams {
    pub name: String,
    pub layout: LayoutSpec,
}
