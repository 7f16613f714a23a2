//! The client certificate verifier: webpki first (chain to the client CA, validity period,
//! clientAuth usage, CRLs), then the revoked-serials list, then the chiso identity.
//!
//! A certificate that fails any step ends the handshake, so no handler runs for it. The identity
//! step requires exactly one `spiffe://chiso/` URI SAN; which identity may call what is decided
//! later, per RPC, in `auth`.

use std::collections::HashSet;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::files::certificate_serial;

/// A webpki verifier with two more checks: the serial is not revoked, and the leaf carries one
/// chiso identity.
#[derive(Debug)]
pub(crate) struct ChisoClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Arc<HashSet<String>>,
}

impl ChisoClientVerifier {
    pub(crate) fn new(
        inner: Arc<dyn ClientCertVerifier>,
        revoked: Arc<HashSet<String>>,
    ) -> ChisoClientVerifier {
        ChisoClientVerifier { inner, revoked }
    }
}

impl ClientCertVerifier for ChisoClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;

        let serial = certificate_serial(end_entity).ok_or(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ))?;
        if self.revoked.contains(&serial) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        if crate::auth::identity_from_der(end_entity).is_err() {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
