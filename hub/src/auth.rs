//! The peer identity of a request, read from the client certificate that TLS verified.
//!
//! The TLS layer has already checked the chain against the configured client CA; this module
//! only reads the leaf's URI SAN and turns it into an [`Identity`]. A request without a
//! certificate, or whose certificate carries no `spiffe://chiso/...` URI, is unauthenticated.

use chiso_proto::identity::Identity;
use chiso_proto::units::UnitCatalogue;
use tonic::{Request, Status};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Reads the identity from the leaf client certificate of a request.
pub fn peer_identity<T>(request: &Request<T>) -> Result<Identity, Status> {
    let certs = request
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    identity_from_der(leaf.as_ref())
}

/// Reads the identity from a DER certificate's URI subject alternative names.
pub fn identity_from_der(der: &[u8]) -> Result<Identity, Status> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|_| Status::unauthenticated("the client certificate cannot be parsed"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| {
            Status::unauthenticated("the client certificate has a malformed SAN extension")
        })?
        .ok_or_else(|| {
            Status::unauthenticated("the client certificate has no subject alternative name")
        })?;

    let mut identities = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Identity::parse(uri),
            _ => None,
        });
    let identity = identities.next().ok_or_else(|| {
        Status::unauthenticated("the client certificate has no spiffe://chiso/ identity")
    })?;
    if identities.next().is_some() {
        return Err(Status::unauthenticated(
            "the client certificate carries more than one spiffe://chiso/ identity",
        ));
    }
    Ok(identity)
}

/// Returns the locality of an agent identity, checked against the unit catalogue.
pub fn agent_locality(identity: &Identity, catalogue: &UnitCatalogue) -> Result<String, Status> {
    let Identity::Agent(code) = identity else {
        return Err(Status::permission_denied(format!(
            "{identity} is not an agent identity; only agents may push records"
        )));
    };
    let is_province = catalogue
        .get(code)
        .is_some_and(|unit| unit.province_code == *code);
    if !is_province {
        return Err(Status::permission_denied(format!(
            "agent locality {code:?} is not a province of the unit catalogue"
        )));
    }
    Ok(code.clone())
}
