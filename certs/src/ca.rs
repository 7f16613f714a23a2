//! The certificate authority that signs every chiso leaf.
//!
//! A [`Ca`] always contains a CA certificate and the private key that matches it: [`Ca::load`]
//! checks both before accepting them. A generated CA is ECDSA P-256, CA:TRUE with path length 0
//! (it signs leaves only), key usages keyCertSign and cRLSign, and valid for ten years.

use std::path::Path;

use rcgen::{BasicConstraints, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256};
use time::{Duration, OffsetDateTime};

use crate::files::{CA_CERT_FILE, CA_KEY_FILE, read_text};
use crate::inspect::{common_name_of, first_certificate_pem, parse_certificate_pem};
use crate::leaf::{self, LeafRequest, common_name_dn};
use crate::{CertError, CertifiedKey};

/// Validity of a generated CA certificate, in days (ten years).
pub const CA_DAYS: i64 = 3650;

/// A CA certificate with its private key, ready to sign leaves.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    common_name: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    // Leaves the key out, so that a CA can be debug-printed without exposing it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("common_name", &self.common_name)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Generates a new self-signed CA with a fresh ECDSA P-256 key.
    pub fn generate(common_name: &str) -> Result<Ca, CertError> {
        let sign_error = |source| CertError::Sign {
            common_name: common_name.to_string(),
            source,
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(sign_error)?;

        let now = OffsetDateTime::now_utc();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = common_name_dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(CA_DAYS);

        let cert = params.self_signed(&key).map_err(sign_error)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            common_name: common_name.to_string(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its PEM certificate and PKCS#8 PEM key, checking that the certificate
    /// is a CA and that the key belongs to it.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Ca, CertError> {
        let key = KeyPair::from_pem(key_pem).map_err(|source| CertError::InvalidKey { source })?;

        let pem = first_certificate_pem(cert_pem)?;
        let cert = parse_certificate_pem(&pem)?;
        let common_name = common_name_of(&cert);
        if !cert.is_ca() {
            return Err(CertError::NotACa { common_name });
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CertError::KeyMismatch { common_name });
        }

        let issuer =
            Issuer::from_ca_cert_der(&pem.contents.clone().into(), key).map_err(|err| {
                CertError::InvalidCertificate {
                    reason: format!("CA certificate {common_name:?}: {err}"),
                }
            })?;
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            common_name,
            issuer,
        })
    }

    /// Loads the CA stored as `ca.crt` and `ca.key` in `dir`.
    pub fn load_dir(dir: &Path) -> Result<Ca, CertError> {
        let cert_pem = read_text(&dir.join(CA_CERT_FILE))?;
        let key_pem = read_text(&dir.join(CA_KEY_FILE))?;
        Ca::load(&cert_pem, &key_pem)
    }

    /// Returns the CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Returns the CA private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Returns the common name of the CA certificate.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// Returns the rcgen issuer that signs leaves and revocation lists.
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// Issues a leaf certificate for `request` with a fresh ECDSA P-256 key.
    ///
    /// The serial is rcgen's default: the first 20 bytes of a SHA-256 over the new public key,
    /// top bit cleared. The key is generated here, just before signing, so the serial is
    /// unpredictable in advance and differs for every leaf.
    pub fn issue(&self, request: &LeafRequest) -> Result<CertifiedKey, CertError> {
        let params = request.to_params()?;
        let sign_error = |source| CertError::Sign {
            common_name: request.common_name.clone(),
            source,
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(sign_error)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(sign_error)?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a hub certificate (serverAuth) naming each host as an IP SAN when it parses as
    /// an address, and as a DNS SAN otherwise.
    pub fn issue_hub(&self, hosts: &[String], days: u32) -> Result<CertifiedKey, CertError> {
        let Some(first_host) = hosts.first() else {
            return Err(CertError::NoHubHosts);
        };
        let mut request = LeafRequest::valid_for_days(&format!("chiso hub {first_host}"), days)?;
        request.hosts = hosts.to_vec();
        request.server_auth = true;
        self.issue(&request)
    }

    /// Issues an agent certificate (clientAuth) with the URI SAN
    /// `spiffe://chiso/agent/<locality>`, where the locality is a province or ministry code.
    pub fn issue_agent(&self, locality: &str, days: u32) -> Result<CertifiedKey, CertError> {
        let identity = leaf::agent_identity(locality)?;
        let mut request = LeafRequest::valid_for_days(&format!("chiso agent {locality}"), days)?;
        request.identity = Some(identity);
        request.client_auth = true;
        self.issue(&request)
    }

    /// Issues an operator certificate (clientAuth) with the URI SAN
    /// `spiffe://chiso/operator/<name>`.
    pub fn issue_operator(&self, name: &str, days: u32) -> Result<CertifiedKey, CertError> {
        let identity = leaf::operator_identity(name)?;
        let mut request = LeafRequest::valid_for_days(&format!("chiso operator {name}"), days)?;
        request.identity = Some(identity);
        request.client_auth = true;
        self.issue(&request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::write_ca;
    use crate::read_identity;
    use chiso_proto::identity::Identity;
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::prelude::X509Certificate;

    fn now() -> i64 {
        OffsetDateTime::now_utc().unix_timestamp()
    }

    fn der_of(pem: &str) -> Vec<u8> {
        first_certificate_pem(pem).unwrap().contents
    }

    fn parse(der: &[u8]) -> X509Certificate<'_> {
        x509_parser::parse_x509_certificate(der).unwrap().1
    }

    fn authority_key_id(cert: &X509Certificate<'_>) -> Vec<u8> {
        cert.iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|id| id.0.to_vec())
                }
                _ => None,
            })
            .expect("leaf has an authority key identifier")
    }

    fn subject_key_id(cert: &X509Certificate<'_>) -> Vec<u8> {
        cert.iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski.0.to_vec()),
                _ => None,
            })
            .expect("CA has a subject key identifier")
    }

    #[test]
    fn ca_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Ca>();
    }

    #[test]
    fn generated_ca_properties() {
        let ca = Ca::generate("test CA").unwrap();
        let der = der_of(ca.cert_pem());
        let cert = parse(&der);

        assert!(cert.is_ca());
        assert_eq!(common_name_of(&cert), "test CA");
        let usage = cert.key_usage().unwrap().unwrap().value;
        assert!(usage.key_cert_sign());
        assert!(usage.crl_sign());
        let lifetime = cert.validity().not_after.timestamp() - now();
        assert!((CA_DAYS * 86_400 - 60..=CA_DAYS * 86_400).contains(&lifetime));
        assert!(ca.key_pem().contains("BEGIN PRIVATE KEY"));
        assert!(!format!("{ca:?}").contains("PRIVATE"));
    }

    #[test]
    fn agent_cert_identity_and_validity() {
        let ca = Ca::generate("test CA").unwrap();
        let before = now();
        let pair = ca.issue_agent("79", 90).unwrap();

        let info = read_identity(&pair.cert_pem).unwrap();
        assert_eq!(info.identity, Some(Identity::Agent("79".into())));
        assert_eq!(info.common_name, "chiso agent 79");
        let expected_end = before + 90 * 86_400;
        assert!((expected_end..=expected_end + 60).contains(&info.not_after));
        assert!(info.not_before <= before);
        assert!(info.not_before >= before - 5 * 60 - 60);

        let der = der_of(&pair.cert_pem);
        let cert = parse(&der);
        assert!(!cert.is_ca());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth);
        assert!(!eku.server_auth);
        assert!(pair.key_pem.contains("BEGIN PRIVATE KEY"));
    }

    #[test]
    fn hub_cert_sans_and_usage() {
        let ca = Ca::generate("test CA").unwrap();
        let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let pair = ca.issue_hub(&hosts, 365).unwrap();
        let der = der_of(&pair.cert_pem);
        let cert = parse(&der);

        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(san.general_names.len(), 2);
        assert!(matches!(
            san.general_names[0],
            GeneralName::DNSName("localhost")
        ));
        assert!(matches!(
            san.general_names[1],
            GeneralName::IPAddress(&[127, 0, 0, 1])
        ));
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth);
        assert!(!eku.client_auth);
        assert_eq!(read_identity(&pair.cert_pem).unwrap().identity, None);
        assert!(matches!(ca.issue_hub(&[], 365), Err(CertError::NoHubHosts)));
    }

    #[test]
    fn reloaded_ca_issues_verifiable_leaf() {
        let original = Ca::generate("reload CA").unwrap();
        let temp = tempfile::tempdir().unwrap();
        write_ca(temp.path(), &original).unwrap();
        let reloaded = Ca::load_dir(temp.path()).unwrap();
        assert_eq!(reloaded.common_name(), "reload CA");
        assert_eq!(reloaded.cert_pem(), original.cert_pem());

        let pair = reloaded.issue_operator("ops", 90).unwrap();

        let ca_der = der_of(original.cert_pem());
        let ca_cert = parse(&ca_der);
        let leaf_der = der_of(&pair.cert_pem);
        let leaf = parse(&leaf_der);
        assert_eq!(leaf.issuer().as_raw(), ca_cert.subject().as_raw());
        assert_eq!(authority_key_id(&leaf), subject_key_id(&ca_cert));
        leaf.verify_signature(Some(ca_cert.public_key()))
            .expect("leaf signed by the reloaded CA key");
        assert_eq!(
            read_identity(&pair.cert_pem).unwrap().identity,
            Some(Identity::Operator("ops".into()))
        );
    }

    #[test]
    fn load_rejects_wrong_key_and_leaf() {
        let first = Ca::generate("first").unwrap();
        let second = Ca::generate("second").unwrap();
        let err = Ca::load(first.cert_pem(), second.key_pem()).unwrap_err();
        assert!(matches!(err, CertError::KeyMismatch { .. }), "{err}");

        let leaf = first.issue_agent("01", 1).unwrap();
        let err = Ca::load(&leaf.cert_pem, &leaf.key_pem).unwrap_err();
        assert!(matches!(err, CertError::NotACa { .. }), "{err}");

        let err = Ca::load(first.cert_pem(), "garbage").unwrap_err();
        assert!(matches!(err, CertError::InvalidKey { .. }), "{err}");
    }

    #[test]
    fn load_dir_missing_names_path() {
        let temp = tempfile::tempdir().unwrap();
        let err = Ca::load_dir(temp.path()).unwrap_err();
        assert!(matches!(err, CertError::Io { .. }), "{err}");
        assert!(err.to_string().contains("ca.crt"), "{err}");
    }

    #[test]
    fn unknown_locality_rejected() {
        let ca = Ca::generate("test CA").unwrap();
        let err = ca.issue_agent("99", 90).unwrap_err();
        assert!(matches!(err, CertError::UnknownLocality { .. }), "{err}");
        assert!(err.to_string().contains("\"99\""), "{err}");
    }

    #[test]
    fn days_and_operator_checked() {
        let ca = Ca::generate("test CA").unwrap();
        assert!(matches!(
            ca.issue_agent("79", 0),
            Err(CertError::InvalidDays { days: 0, .. })
        ));
        assert!(matches!(
            ca.issue_hub(&["localhost".into()], 3651),
            Err(CertError::InvalidDays { days: 3651, .. })
        ));
        assert!(matches!(
            ca.issue_operator("a/b", 90),
            Err(CertError::InvalidOperatorName { .. })
        ));
    }

    #[test]
    fn leaves_get_different_serials() {
        let ca = Ca::generate("test CA").unwrap();
        let first = read_identity(&ca.issue_agent("79", 90).unwrap().cert_pem).unwrap();
        let second = read_identity(&ca.issue_agent("79", 90).unwrap().cert_pem).unwrap();
        assert_ne!(first.serial_hex, second.serial_hex);
        assert!(first.serial_hex.len() >= 32, "{}", first.serial_hex);
    }

    #[test]
    fn expired_and_future_leaves() {
        let ca = Ca::generate("test CA").unwrap();
        let now_time = OffsetDateTime::now_utc();
        let mut request = LeafRequest::valid_for_days("expired", 1).unwrap();
        request.identity = Some(Identity::Agent("79".into()));
        request.client_auth = true;
        request.not_before = now_time - Duration::days(10);
        request.not_after = now_time - Duration::days(1);
        let expired = read_identity(&ca.issue(&request).unwrap().cert_pem).unwrap();
        assert!(expired.not_after < now());

        request.not_before = now_time + Duration::days(1);
        request.not_after = now_time + Duration::days(10);
        let future = read_identity(&ca.issue(&request).unwrap().cert_pem).unwrap();
        assert!(future.not_before > now());
    }

    #[test]
    fn two_identities_are_ambiguous() {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        for uri in ["spiffe://chiso/agent/79", "spiffe://chiso/agent/01"] {
            params
                .subject_alt_names
                .push(rcgen::SanType::URI(uri.to_string().try_into().unwrap()));
        }
        let pem = params.self_signed(&key).unwrap().pem();

        let err = read_identity(&pem).unwrap_err();
        assert!(matches!(err, CertError::AmbiguousIdentity { .. }), "{err}");
        assert!(err.to_string().contains("agent/01"), "{err}");
    }
}
