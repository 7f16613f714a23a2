//! chiso-agent: takes in a locality's records, keeps them durably in a SQLite outbox, and pushes
//! them to chiso-hub over mutual TLS.
//!
//! - [`record`]: what intake produces for each input record, accepted or rejected.
//! - [`dvcqg`]: the JSON input of every record kind (the portal's `DongBoHoSoMC` dossiers and
//!   `CapNhatTienDoHoSoMC` steps, procedures, feedback, ratings), mapped to records with every
//!   personal field dropped.
//! - [`intake`]: reading a file into the outbox in one transaction.
//! - [`http`]: the loopback HTTP intake (`POST /v1/dossiers`, `/v1/procedures`, ...) served by
//!   `chiso-agent run`.
//! - [`inbox`]: the inbox folder watched by `chiso-agent run`.
//! - [`log_limit`]: rate limits for the log lines of a repeating failure.
//! - [`outbox`]: the SQLite outbox, ledger of accepted keys, and rejected records.
//! - [`push`]: the push loop: hello, batches, acks, reconnect with backoff.
//! - [`reconcile`]: completeness digests sent by the push loop, and the resending of gaps.
//! - [`config`]: the agent's TOML configuration and its validation.
//! - [`scores`]: fetching, printing and writing the locality's scorecard.
//! - [`sample`]: a deterministic generator of sample files of every record kind.

pub mod config;
pub mod dvcqg;
pub mod http;
pub mod inbox;
pub mod intake;
pub mod log_limit;
pub mod outbox;
pub mod push;
pub mod reconcile;
pub mod record;
pub mod sample;
pub mod scores;

/// Installs ring as the process-wide rustls crypto provider; safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
