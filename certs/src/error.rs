//! The error type of the certificate tool: every variant carries the value that failed, and its
//! message states what to do about it.

use std::path::PathBuf;

/// Errors while making, loading, writing or reading certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The locality is neither a province code of the unit catalogue nor a ministry code.
    #[error(
        "locality {locality:?} is neither a province code of the 2025 catalogue nor a ministry code; use a province code ({known}) or a ministry code of the hub's unit catalogue ({ministries}, or one its units_file adds)"
    )]
    UnknownLocality {
        /// The rejected value.
        locality: String,
        /// The province codes of the catalogue, comma-separated.
        known: String,
        /// The built-in ministry codes, comma-separated.
        ministries: String,
    },
    /// The validity period in days is outside the accepted range.
    #[error("validity of {days} days is out of range; use between {min} and {max} days")]
    InvalidDays {
        /// The rejected value.
        days: u32,
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// The operator name does not form a valid `spiffe://chiso/operator/<name>` URI.
    #[error(
        "operator name {name:?} is invalid; use 1 to 64 ASCII letters, digits, '-', '_' or '.'"
    )]
    InvalidOperatorName {
        /// The rejected value.
        name: String,
    },
    /// A hub host name cannot be put in a subject alternative name.
    #[error("hub host {host:?} is invalid: {reason}")]
    InvalidHost {
        /// The rejected value.
        host: String,
        /// Reason the host is invalid.
        reason: &'static str,
    },
    /// A hub certificate was requested without any host name or address.
    #[error("a hub certificate needs at least one host name or IP address")]
    NoHubHosts,
    /// An identity does not survive a round trip through its URI.
    #[error("identity URI {uri:?} is not a valid chiso identity")]
    InvalidIdentity {
        /// The URI of the rejected identity.
        uri: String,
    },
    /// The requested validity period ends before it starts.
    #[error("validity period is empty: not_after {not_after} is not after not_before {not_before}")]
    EmptyValidity {
        /// Requested start, RFC 3339.
        not_before: String,
        /// Requested end, RFC 3339.
        not_after: String,
    },
    /// rcgen failed to generate a key or sign a certificate.
    #[error("failed to make the certificate {common_name:?}: {source}")]
    Sign {
        /// Common name of the certificate being made.
        common_name: String,
        /// The rcgen error.
        source: rcgen::Error,
    },
    /// A private key could not be parsed.
    #[error("invalid CA private key (expected a PKCS#8 PEM key): {source}")]
    InvalidKey {
        /// The rcgen error.
        source: rcgen::Error,
    },
    /// A certificate could not be parsed.
    #[error("invalid certificate: {reason}")]
    InvalidCertificate {
        /// Description of the parse failure.
        reason: String,
    },
    /// The certificate given as a CA is not a CA.
    #[error("certificate {common_name:?} is not a CA (basicConstraints CA:TRUE is missing)")]
    NotACa {
        /// Common name of the certificate.
        common_name: String,
    },
    /// The CA private key does not belong to the CA certificate.
    #[error("the CA private key does not match the public key of CA certificate {common_name:?}")]
    KeyMismatch {
        /// Common name of the CA certificate.
        common_name: String,
    },
    /// A certificate carries more than one chiso identity, so none can be trusted.
    #[error("certificate carries several chiso identities ({uris}); issue it with exactly one")]
    AmbiguousIdentity {
        /// The identity URIs found, comma-separated.
        uris: String,
    },
    /// A CA key already exists where a new one would be written.
    #[error(
        "CA key {} already exists; use another --dir, or delete it deliberately if you mean to replace the CA",
        path.display()
    )]
    CaKeyExists {
        /// Path of the existing key.
        path: PathBuf,
    },
    /// A serial number is not hexadecimal or is longer than X.509 allows.
    #[error(
        "serial number {serial:?} is invalid: {reason}; give it in hex as `chiso-certs show` prints it"
    )]
    InvalidSerial {
        /// The rejected value.
        serial: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The existing revocation list (CRL) could not be read back.
    #[error(
        "cannot read the existing CRL {}: {reason}; move it aside and run `chiso-certs crl` to write a new one from the serial list",
        path.display()
    )]
    InvalidCrl {
        /// The CRL file.
        path: PathBuf,
        /// Description of the parse failure.
        reason: String,
    },
    /// rcgen failed to sign a revocation list.
    #[error("failed to sign the CRL with CA {common_name:?}: {source}")]
    SignCrl {
        /// Common name of the CA.
        common_name: String,
        /// The rcgen error.
        source: rcgen::Error,
    },
    /// A certificate to renew has neither a chiso identity nor the serverAuth usage of a hub.
    #[error(
        "certificate {} has no spiffe://chiso/ identity and is not a hub certificate (serverAuth); issue a new one with the issue-* commands",
        path.display()
    )]
    NotRenewable {
        /// The certificate file.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// Failed operation, such as "failed to write".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
