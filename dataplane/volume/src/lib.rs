//! lunar-volume: how a virtual volume maps onto backing devices.
//!
//! A volume is a layout tree ([`Layout`]: `Linear`, `Concat`, `Stripe`, `Mirror` and
//! `Segmented`, nested freely). [`VolumeMap`] is its compiled, immutable form: the layout is
//! validated once ([`VolumeMap::try_new`], [`LayoutError`]), then every node gets the lookup
//! tables it needs (cumulative member ends for a concat, the used member size for a stripe, the
//! writable legs of a mirror), so planning a request is a lookup per piece and never allocates
//! beyond pushing to the caller's `Vec`.
//!
//! The reactors plan with [`VolumeMap::plan_io`]: a read or a write becomes [`PlanStep`]s
//! (device I/O, zero fill, error, or faults that park the command until the control thread
//! publishes a table resolving them), mirror reads going to the leg a [`LegChooser`] picks.
//! Segment tables ([`SegmentTable`]) are shared between generations chunk by chunk.
//!
//! `split` is the one place a request is cut at member, stripe unit, segment and resync
//! boundaries; each layout then maps one in-bounds piece to one member. Knows no protocol and
//! does no I/O.

#![forbid(unsafe_code)]

mod chooser;
mod concat;
mod error;
pub mod layout;
mod map;
mod mirror;
mod node;
mod planner;
mod ranges;
mod segmented;
mod split;
mod step;
mod stripe;
pub mod table;
mod validate;

pub use chooser::{FirstReadable, LegChooser, LegSet, ReadBalancer};
pub use error::{LayoutError, LayoutPath};
pub use layout::{
    DeviceId, Extent, Layout, LegHealth, MirrorLeg, NodeId, PlanError, ReadPolicy, VolumeMap,
    MAX_LAYOUT_DEPTH, MAX_MIRROR_LEGS,
};
pub use ranges::DeviceRange;
pub use step::{FaultReason, IoOp, LegRef, PlanOutcome, PlanStep, SegmentPiece, SegmentRef};
pub use table::{
    Location, SegmentEntry, SegmentIndexError, SegmentState, SegmentTable, SegmentTableEditor,
    SegmentsInState, StateCounts, CHUNK_ENTRIES,
};
