//! Reading the TLS files into a [`TlsSnapshot`]: the hub's certificate chain and key, the client
//! CA, and the optional revoked-serials list and CRL.
//!
//! A snapshot is built whole or not at all. A missing or malformed file, or a key that does not
//! belong to the certificate, is an error naming the file, and the caller keeps its previous
//! snapshot. Serials are compared in one normal form: lowercase hex with an even number of digits
//! and no leading zero bytes, as `chiso-certs show` prints them.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use x509_parser::prelude::FromDer;

use super::TlsError;
use super::verifier::ChisoClientVerifier;
use crate::config::TlsConfig;

/// One consistent view of the TLS files, used for every connection accepted while it is current.
#[derive(Debug)]
pub struct TlsSnapshot {
    /// The rustls configuration: hub certificate, client verifier, TLS 1.2 and 1.3 only.
    pub server_config: Arc<ServerConfig>,
    /// Revoked serials from the list file and the CRL together, in normal form.
    pub revoked: Arc<HashSet<String>>,
    /// End of validity of the hub's certificate, Unix seconds.
    pub hub_not_after: i64,
}

impl TlsSnapshot {
    /// Reads every configured file and builds the server configuration.
    pub fn load(tls: &TlsConfig) -> Result<TlsSnapshot, TlsError> {
        let chain = read_certificates(&tls.cert)?;
        let key = read_key(&tls.key)?;
        let roots = read_roots(&tls.client_ca)?;

        let mut revoked = HashSet::new();
        if let Some(path) = &tls.revoked_serials {
            revoked.extend(read_revoked_list(path)?);
        }
        let crls = match &tls.crl {
            Some(path) => {
                let crls = read_crls(path)?;
                for crl in &crls {
                    revoked.extend(crl_serials(path, crl)?);
                }
                crls
            }
            None => Vec::new(),
        };
        let revoked = Arc::new(revoked);

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut webpki =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        if !crls.is_empty() {
            // Leaves are what chiso revokes. A CRL must come from the CA that issued the leaf:
            // a leaf whose issuer has no CRL here is rejected rather than assumed good.
            webpki = webpki.with_crls(crls).only_check_end_entity_revocation();
        }
        let webpki = webpki.build().map_err(|source| TlsError::Verifier {
            path: tls.client_ca.clone(),
            source,
        })?;
        let verifier = Arc::new(ChisoClientVerifier::new(webpki, Arc::clone(&revoked)));

        let hub_not_after = not_after(&tls.cert, &chain[0])?;
        let mut server_config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|source| TlsError::Rustls {
                what: "protocol versions",
                source,
            })?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|source| TlsError::KeyMismatch {
                cert: tls.cert.clone(),
                key: tls.key.clone(),
                source,
            })?;
        server_config.alpn_protocols = vec![b"h2".to_vec()];

        Ok(TlsSnapshot {
            server_config: Arc::new(server_config),
            revoked,
            hub_not_after,
        })
    }
}

/// Returns the serial of a DER certificate in normal form, or `None` if it cannot be parsed.
pub fn certificate_serial(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    Some(normal_serial_of_bytes(cert.raw_serial()))
}

/// Normalizes a serial written in hex, with or without `:` separators and in either case.
pub fn normalize_serial(text: &str) -> Option<String> {
    let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 42 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0').to_ascii_lowercase();
    Some(match significant.len() {
        0 => "00".to_string(),
        odd if odd % 2 == 1 => format!("0{significant}"),
        _ => significant,
    })
}

fn normal_serial_of_bytes(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    normalize_serial(&hex).unwrap_or(hex)
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::Pem {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            reason: "no CERTIFICATE block".to_string(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| TlsError::Pem {
        path: path.to_path_buf(),
        reason: format!("no usable private key: {err}"),
    })
}

fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certificates(path)? {
        roots.add(cert).map_err(|source| TlsError::Rustls {
            what: "client CA certificate",
            source,
        })?;
    }
    Ok(roots)
}

/// Reads a revoked-serials list: one hex serial a line, `#` starts a comment.
fn read_revoked_list(path: &Path) -> Result<HashSet<String>, TlsError> {
    let bytes = read_file(path)?;
    let text = String::from_utf8(bytes).map_err(|_| TlsError::Pem {
        path: path.to_path_buf(),
        reason: "the revoked-serials list is not UTF-8 text".to_string(),
    })?;
    let mut serials = HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or_default().trim();
        if entry.is_empty() {
            continue;
        }
        let serial = normalize_serial(entry).ok_or_else(|| TlsError::RevokedList {
            path: path.to_path_buf(),
            line: index + 1,
        })?;
        serials.insert(serial);
    }
    Ok(serials)
}

/// Reads one or more CRLs, PEM (`X509 CRL` blocks) or a single DER CRL.
fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = read_file(path)?;
    if !bytes.starts_with(b"-----") && !bytes.is_empty() && bytes[0] == 0x30 {
        return Ok(vec![CertificateRevocationListDer::from(bytes)]);
    }
    let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::Pem {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
    if crls.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            reason: "no X509 CRL block".to_string(),
        });
    }
    Ok(crls)
}

fn crl_serials(path: &Path, crl: &[u8]) -> Result<Vec<String>, TlsError> {
    let (_, crl) = x509_parser::parse_x509_crl(crl).map_err(|err| TlsError::Pem {
        path: path.to_path_buf(),
        reason: format!("malformed CRL: {err}"),
    })?;
    Ok(crl
        .iter_revoked_certificates()
        .map(|entry| normal_serial_of_bytes(entry.raw_serial()))
        .collect())
}

fn not_after(path: &Path, der: &[u8]) -> Result<i64, TlsError> {
    let (_, cert) =
        x509_parser::certificate::X509Certificate::from_der(der).map_err(|err| TlsError::Pem {
            path: path.to_path_buf(),
            reason: format!("malformed certificate: {err}"),
        })?;
    Ok(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_forms_match_chiso_certs() {
        assert_eq!(normalize_serial("00:8F:01").as_deref(), Some("8f01"));
        assert_eq!(normalize_serial("abc").as_deref(), Some("0abc"));
        assert_eq!(normalize_serial("0").as_deref(), Some("00"));
        assert_eq!(normalize_serial("zz"), None);
        assert_eq!(normal_serial_of_bytes(&[0x00, 0x0a, 0x35]), "0a35");
    }

    #[test]
    fn revoked_list_names_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.txt");
        std::fs::write(&path, "# header\n0a35  # agent 01\n\nnot hex\n").unwrap();
        let err = read_revoked_list(&path).unwrap_err();
        assert!(err.to_string().contains("line 4"), "{err}");

        std::fs::write(&path, "# header\n0A:35  # agent 01\n\n").unwrap();
        let serials = read_revoked_list(&path).unwrap();
        assert!(serials.contains("0a35"), "{serials:?}");
        assert_eq!(serials.len(), 1);
    }
}
