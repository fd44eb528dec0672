//! lunar-volume: how a virtual volume maps onto backing devices.
//!
//! A volume is a layout tree (issue scope so far: `Linear` and `Concat`; the tree is ready for
//! stripes, mirrors and segment tables). `split` is the one place a request is cut at member
//! boundaries; each layout then maps one in-bounds extent. Knows no protocol and does no I/O.

pub mod layout;

pub use layout::{Extent, Layout, PlanError, VolumeMap};
