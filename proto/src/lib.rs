//! The contract shared by chiso-agent and chiso-hub.
//!
//! - [`v1`]: the gRPC messages and services generated from `proto/chiso/v1`.
//! - [`units`]: the official 2025 unit catalogue (34 provinces, 3,321 communes), embedded, with
//!   the ministries and their units.
//! - [`ministries`]: ministry catalogue files, with the built-in list of ministries.
//! - [`vntime`]: the portal's date format and Vietnam calendar days and months.
//! - [`validate`]: record rules, checked by the agent at intake and again by the hub.
//! - [`record`]: the kind, key, unit and version of a record of any kind.
//! - [`identity`]: the SPIFFE-style URIs that certificates carry.
//! - [`error_chain`]: one-line rendering of an error and its sources.
//! - [`digest`]: the completeness digest of records per unit and day, computed alike on both sides.

pub mod digest;
pub mod error_chain;
pub mod identity;
pub mod ministries;
pub mod record;
pub mod units;
pub mod validate;
pub mod vntime;

/// Generated types and services of package `chiso.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod v1 {
    tonic::include_proto!("chiso.v1");
}

/// Encoded file descriptor set of the protos, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/chiso_descriptor.bin"));
