//! The hub's TLS: a rustls configuration rebuilt from the files on disk whenever they change,
//! and the accept loop that hands verified connections to tonic.
//!
//! Every connection is mutual TLS 1.2 or 1.3. A client certificate must chain to the client CA,
//! be within its validity period, not be revoked (by the serial list or the CRL), and carry
//! exactly one `spiffe://chiso/` identity. Otherwise the handshake fails and no handler runs. A
//! renewed hub certificate, a new CA file or a new revocation is used from the next connection on,
//! without a restart.
//!
//! - [`files`]: reading the files into a [`TlsSnapshot`].
//! - [`verifier`]: the client certificate verifier.
//! - [`reload`]: [`TlsReloader`], which rebuilds the snapshot when a file changes.
//! - [`acceptor`]: the accept loop, and [`TlsConnection`], whose [`PeerInfo`] carries the client's
//!   certificate chain to handlers.

pub mod acceptor;
pub mod files;
pub mod reload;
mod verifier;

use std::path::PathBuf;

pub use acceptor::{AcceptSettings, PeerInfo, TlsConnection, TlsIncoming};
pub use files::{TlsSnapshot, certificate_serial, normalize_serial};
pub use reload::TlsReloader;

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read TLS file {}: {source}; check the path in the [tls] section", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A file is not the PEM (or DER) content expected.
    #[error("invalid TLS file {}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// Description of the problem.
        reason: String,
    },
    /// A line of the revoked-serials list is not a hex serial.
    #[error(
        "invalid revoked-serials list {} at line {line}: expected one hex serial a line, as chiso-certs revoke writes them",
        path.display()
    )]
    RevokedList {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The hub's key does not belong to its certificate, or cannot be used.
    #[error(
        "hub key {} does not match certificate {} ({source}); install the certificate and key of one pair",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The rustls error.
        source: rustls::Error,
    },
    /// The client verifier could not be built from the CA and CRLs.
    #[error("cannot build the client certificate verifier from {}: {source}", path.display())]
    Verifier {
        /// The client CA file.
        path: PathBuf,
        /// The rustls error.
        source: rustls::server::VerifierBuilderError,
    },
    /// rustls rejected a setting.
    #[error("TLS setup failed at {what}: {source}")]
    Rustls {
        /// The step that failed.
        what: &'static str,
        /// The rustls error.
        source: rustls::Error,
    },
}
