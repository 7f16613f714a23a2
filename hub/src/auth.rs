//! The peer identity of a request, read from the client certificate that TLS verified.
//!
//! The TLS layer (`tls::verifier`) has already checked the chain against the client CA, the
//! validity period, revocation, and that the leaf carries exactly one `spiffe://chiso/` URI.
//! This module reads that leaf again from the connection's [`PeerInfo`] and decides what the
//! identity may do: agents push for their own province or ministry, operators call the operator
//! service. A
//! request without a certificate, or whose certificate carries no chiso identity, is
//! unauthenticated.

use chiso_proto::identity::Identity;
use chiso_proto::units::UnitCatalogue;
use tonic::{Request, Status};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::tls::{PeerInfo, certificate_serial};

/// The verified client certificate of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The chiso identity in the URI SAN.
    pub identity: Identity,
    /// Serial number, lowercase hex without leading zero bytes.
    pub serial: String,
    /// End of validity, Unix seconds.
    pub not_after: i64,
}

/// Reads the leaf client certificate of a request: from the hub's own TLS acceptor when the
/// request came through it, else from tonic's built-in TLS.
pub fn peer_certificate<T>(request: &Request<T>) -> Result<PeerCertificate, Status> {
    let missing = || Status::unauthenticated("a client certificate is required");
    if let Some(info) = request.extensions().get::<PeerInfo>() {
        let leaf = info.certificates.first().ok_or_else(missing)?;
        return certificate_from_der(leaf.as_ref());
    }
    let certs = request.peer_certs().ok_or_else(missing)?;
    let leaf = certs.first().ok_or_else(missing)?;
    certificate_from_der(leaf.as_ref())
}

/// Reads the identity from the leaf client certificate of a request.
pub fn peer_identity<T>(request: &Request<T>) -> Result<Identity, Status> {
    Ok(peer_certificate(request)?.identity)
}

/// Returns the client's address, or "unknown".
pub fn peer_address<T>(request: &Request<T>) -> String {
    let address = request
        .extensions()
        .get::<PeerInfo>()
        .map(|info| info.remote_addr)
        .or_else(|| request.remote_addr());
    address.map_or_else(|| "unknown".to_string(), |address| address.to_string())
}

/// Reads the identity, serial and end of validity of a DER certificate.
pub fn certificate_from_der(der: &[u8]) -> Result<PeerCertificate, Status> {
    let identity = identity_from_der(der)?;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|_| Status::unauthenticated("the client certificate cannot be parsed"))?;
    Ok(PeerCertificate {
        identity,
        serial: certificate_serial(der).unwrap_or_default(),
        not_after: cert.validity().not_after.timestamp(),
    })
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

/// Returns the locality of an agent identity, checked against the unit catalogue: a province or
/// a ministry (or ministry-level agency).
pub fn agent_locality(identity: &Identity, catalogue: &UnitCatalogue) -> Result<String, Status> {
    let Identity::Agent(code) = identity else {
        return Err(Status::permission_denied(format!(
            "{identity} is not an agent identity; only agents may push records"
        )));
    };
    if !catalogue.is_locality(code) {
        return Err(Status::permission_denied(format!(
            "agent locality {code:?} is not a province or ministry of the unit catalogue"
        )));
    }
    Ok(code.clone())
}

/// Returns the operator name of an operator identity, and refuses every other identity.
pub fn operator_name(identity: &Identity) -> Result<String, Status> {
    match identity {
        Identity::Operator(name) => Ok(name.clone()),
        other => Err(Status::permission_denied(format!(
            "{other} is not an operator identity; the operator service needs a certificate with spiffe://chiso/operator/<name>"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_operators_pass_operator_check() {
        let operator = Identity::Operator("ops".into());
        assert_eq!(operator_name(&operator).unwrap(), "ops");
        let agent = operator_name(&Identity::Agent("01".into())).unwrap_err();
        assert_eq!(agent.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn agent_locality_must_be_province_or_ministry() {
        let catalogue = UnitCatalogue::official();
        let province = agent_locality(&Identity::Agent("79".into()), catalogue);
        assert_eq!(province.unwrap(), "79");
        let ministry = agent_locality(&Identity::Agent("BTC".into()), catalogue);
        assert_eq!(ministry.unwrap(), "BTC");
        let unknown = agent_locality(&Identity::Agent("BXYZ".into()), catalogue).unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::PermissionDenied);
        let text = "version = \"t\"\nbase = \"ministries-2025\"\n[[unit]]\ncode = \"TCT\"\nname = \"Cục Thuế\"\nparent = \"BTC\"\n";
        let file = chiso_proto::ministries::MinistryFile::parse(text, "t.toml").unwrap();
        let with_units = UnitCatalogue::with_ministries(file).unwrap();
        let unit = agent_locality(&Identity::Agent("TCT".into()), &with_units).unwrap_err();
        assert_eq!(unit.code(), tonic::Code::PermissionDenied);
        let commune = agent_locality(&Identity::Agent("00004".into()), catalogue).unwrap_err();
        assert_eq!(commune.code(), tonic::Code::PermissionDenied);
        let operator = agent_locality(&Identity::Operator("ops".into()), catalogue).unwrap_err();
        assert_eq!(operator.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn request_without_certificate_is_unauthenticated() {
        let request = Request::new(());
        let status = peer_identity(&request).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
}
