//! The certificate tool of chiso: a development CA, and the hub, agent and operator certificates
//! that it signs for mutual TLS.
//!
//! - [`ca`]: the CA ([`Ca`]), made fresh or loaded from PEM, which signs every leaf.
//! - [`leaf`]: what a leaf certificate contains ([`LeafRequest`]) and the checks on its inputs.
//! - [`files`]: writing PEM files, with private keys at mode 0600 from the moment they exist.
//! - [`inspect`]: reading a certificate's identity, serial and validity back ([`read_identity`]).
//! - [`renew`]: a new certificate and key for the identity of an existing certificate.
//! - [`revocation`]: the revoked-serials list and the CRL signed from it, which the hub reads.
//! - [`commands`]: the `init`, `issue-*`, `renew`, `revoke`, `crl` and `show` commands of the
//!   `chiso-certs` binary.
//! - [`cli`]: that binary's command-line arguments.
//!
//! Every key is ECDSA P-256. Agent and operator certificates carry their identity as a URI SAN
//! (`spiffe://chiso/agent/<province or ministry code>`, `spiffe://chiso/operator/<name>`), as
//! defined by [`chiso_proto::identity::Identity`]. File permissions are set through Unix modes,
//! so the crate builds on Unix only.

pub mod ca;
pub mod cli;
pub mod commands;
pub mod error;
pub mod files;
pub mod inspect;
pub mod leaf;
pub mod renew;
pub mod revocation;

pub use ca::Ca;
pub use error::CertError;
pub use files::{write_ca, write_pem_pair};
pub use inspect::{CertInfo, read_identity, read_identity_der};
pub use leaf::LeafRequest;
pub use renew::{Renewal, renew};
pub use revocation::{normalize_serial, read_revoked_serials, revoke};

/// Default validity of an agent certificate, in days.
pub const DEFAULT_AGENT_DAYS: u32 = 90;
/// Default validity of a hub certificate, in days.
pub const DEFAULT_HUB_DAYS: u32 = 365;
/// Default validity of an operator certificate, in days.
pub const DEFAULT_OPERATOR_DAYS: u32 = 90;
/// Host names and addresses put in a hub certificate when none are given.
pub const DEFAULT_HUB_HOSTS: [&str; 2] = ["localhost", "127.0.0.1"];

/// A certificate and its private key, both PEM-encoded.
#[derive(Clone)]
pub struct CertifiedKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for CertifiedKey {
    // The private key stays out of debug output so that it never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}
