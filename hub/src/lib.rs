//! chiso-hub: authenticates agents by their client certificates, stores their records, and
//! computes the Decision 766 indicators.
//!
//! - [`auth`]: the peer identity from a client certificate.
//! - [`store`]: the SQLite store: one writer thread with group commit, exactly-once batches.
//! - [`catalogue`]: the indicator catalogue as versioned TOML data, loaded and validated.
//! - [`counters`]: running counters per unit, period and rule, updated with each record.
//! - [`explain`]: the Explain call, listing the records behind one figure of a scorecard.
//! - [`scores`]: scorecards per unit and period, computed from the stored records.
//! - [`recompute`]: the `recompute` command, which rebuilds or verifies the counters.
//! - [`score_cmd`]: the what-if `score` command over the same scoring engine.
//! - [`service`]: the gRPC services; [`stream`]: one pipelined push stream.
//! - [`operator`]: the operator-only service (rejections, agents and their certificate expiry).
//! - [`limits`]: per-agent limits (batch size, rate, streams, batches in flight, strings).
//! - [`tls`]: TLS files re-read when they change, client certificate checks, the accept loop.
//! - [`server`]: the mutual-TLS listener.
//! - [`config`]: the hub's TOML configuration and its validation.

pub mod auth;
pub mod catalogue;
pub mod config;
pub mod counters;
pub mod explain;
pub mod limits;
pub mod operator;
pub mod recompute;
pub mod score_cmd;
pub mod scores;
pub mod server;
pub mod service;
pub mod store;
pub mod stream;
pub mod tls;
