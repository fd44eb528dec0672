//! lunar-volume: how a virtual volume maps onto backing devices.
//!
//! A volume is a layout tree ([`Layout`]: `Linear`, `Concat` and `Stripe`, nested freely; the tree
//! is ready for mirrors and segment tables). [`VolumeMap`] is its compiled, immutable form: the
//! layout is validated once ([`VolumeMap::try_new`], [`LayoutError`]), then every node gets the
//! lookup tables it needs (cumulative member ends for a concat, the used member size for a
//! stripe), so planning a request is a binary search per piece and never allocates beyond
//! pushing [`Extent`]s to the caller's `Vec`.
//!
//! `split` is the one place a request is cut at member boundaries; each layout then maps one
//! in-bounds piece to one member. Knows no protocol and does no I/O.

#![forbid(unsafe_code)]

mod concat;
mod error;
pub mod layout;
mod node;
mod split;
mod stripe;
mod validate;

pub use error::{LayoutError, LayoutPath};
pub use layout::{DeviceId, Extent, Layout, PlanError, VolumeMap, MAX_LAYOUT_DEPTH};
