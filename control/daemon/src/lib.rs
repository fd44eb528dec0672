//! lunar-daemon: the control plane of `lunard`.
//!
//! A JSON-RPC 2.0 server on a unix socket ([`server`], [`rpc`], [`dispatch`]) feeds requests,
//! one at a time, to the [`controller`], which validates them, persists the new configuration
//! ([`store`], [`config`]) and publishes table snapshots to the data plane through the
//! [`plane`] traits ([`adapter`] holds the real implementation). [`daemon`] wires it all
//! together for the `lunard` binary.

pub mod adapter;
pub mod args;
pub mod chap;
pub mod config;
pub mod controller;
pub mod copier;
pub mod daemon;
pub mod demo;
pub mod dispatch;
pub mod error;
pub mod layout;
pub mod names;
pub mod plane;
pub mod rpc;
pub mod server;
pub mod signals;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod thin;
