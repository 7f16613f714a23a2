//! chiso-hub: authenticates agents by their client certificates, stores their records, and
//! computes the Decision 766 indicators.
//!
//! - [`auth`]: the peer identity from a client certificate.
//! - [`store`]: the SQLite store: one writer thread with group commit, exactly-once batches.
//! - [`indicators`]: the indicator definitions and scoring rules.
//! - [`scores`]: scorecards per unit and month, computed from the stored records.
//! - [`service`]: the gRPC services.
//! - [`server`]: the mutual-TLS listener.
//! - [`config`]: the hub's TOML configuration and its validation.

pub mod auth;
pub mod config;
pub mod indicators;
pub mod scores;
pub mod server;
pub mod service;
pub mod store;
