//! Renewal: a new certificate and a new key for the identity of an existing certificate.
//!
//! An agent or operator certificate is renewed for its `spiffe://chiso/` identity, and a hub
//! certificate (serverAuth, no identity) for the DNS names and addresses in its SAN. The new
//! pair replaces the old files in place: each file is written to a temporary file and renamed,
//! key first, so a reader sees whole files only. A reader that opens the pair between the two
//! renames sees the new key with the old certificate. chiso-hub detects that mismatch and keeps
//! its previous certificate until the pair matches, and an agent that fails its handshake then
//! reconnects. The old serial is returned so that it can be revoked when the old key is
//! suspected to be compromised.

use std::path::{Path, PathBuf};

use chiso_proto::identity::Identity;
use x509_parser::extensions::GeneralName;

use crate::files::{read_text, write_pem_pair};
use crate::inspect::{first_certificate_pem, parse_certificate_pem};
use crate::{
    Ca, CertError, CertInfo, DEFAULT_AGENT_DAYS, DEFAULT_HUB_DAYS, DEFAULT_OPERATOR_DAYS,
    read_identity,
};

/// What [`renew`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// The certificate and key files written.
    pub cert_path: PathBuf,
    /// The new private key file.
    pub key_path: PathBuf,
    /// The certificate that was replaced.
    pub old: CertInfo,
    /// The certificate written.
    pub new: CertInfo,
}

impl Renewal {
    /// Describes the renewal for the command line, with the command that revokes the old serial.
    pub fn describe(&self, ca_dir: &Path) -> String {
        format!(
            "wrote {}\nwrote {}\nold serial {} is still valid until it expires; if its key may be compromised, run:\n  chiso-certs revoke --ca-dir {} --serial {}\n",
            self.cert_path.display(),
            self.key_path.display(),
            self.old.serial_hex,
            ca_dir.display(),
            self.old.serial_hex,
        )
    }
}

/// Issues a new certificate and key for the identity (or hub hosts) of the certificate at
/// `cert_path` and writes them over it and its `.key` sibling. `days` defaults to the validity
/// of the kind of certificate (90 days for agents and operators, 365 for the hub).
pub fn renew(ca_dir: &Path, cert_path: &Path, days: Option<u32>) -> Result<Renewal, CertError> {
    let ca = Ca::load_dir(ca_dir)?;
    let cert_pem = read_text(cert_path)?;
    let old = read_identity(&cert_pem)?;

    let pair = match &old.identity {
        Some(Identity::Agent(code)) => ca.issue_agent(code, days.unwrap_or(DEFAULT_AGENT_DAYS))?,
        Some(Identity::Operator(name)) => {
            ca.issue_operator(name, days.unwrap_or(DEFAULT_OPERATOR_DAYS))?
        }
        None => {
            let hosts = hub_hosts(&cert_pem)?.ok_or_else(|| CertError::NotRenewable {
                path: cert_path.to_path_buf(),
            })?;
            ca.issue_hub(&hosts, days.unwrap_or(DEFAULT_HUB_DAYS))?
        }
    };

    let dir = cert_path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = cert_path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .ok_or_else(|| CertError::NotRenewable {
            path: cert_path.to_path_buf(),
        })?;
    let new = read_identity(&pair.cert_pem)?;
    let (cert_path, key_path) = write_pem_pair(dir, &stem, &pair)?;
    Ok(Renewal {
        cert_path,
        key_path,
        old,
        new,
    })
}

/// Returns the DNS names and IP addresses of a serverAuth certificate, or `None` when the
/// certificate is not for a server.
fn hub_hosts(cert_pem: &str) -> Result<Option<Vec<String>>, CertError> {
    let pem = first_certificate_pem(cert_pem)?;
    let cert = parse_certificate_pem(&pem)?;
    let invalid = |err: x509_parser::error::X509Error| CertError::InvalidCertificate {
        reason: err.to_string(),
    };
    let server_auth = cert
        .extended_key_usage()
        .map_err(invalid)?
        .is_some_and(|eku| eku.value.server_auth);
    if !server_auth {
        return Ok(None);
    }

    let mut hosts = Vec::new();
    if let Some(san) = cert.subject_alternative_name().map_err(invalid)? {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => hosts.push(dns.to_string()),
                GeneralName::IPAddress(bytes) => hosts.push(ip_text(bytes)?),
                _ => {}
            }
        }
    }
    Ok((!hosts.is_empty()).then_some(hosts))
}

fn ip_text(bytes: &[u8]) -> Result<String, CertError> {
    let address: std::net::IpAddr = match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).map(Into::into).ok(),
        16 => <[u8; 16]>::try_from(bytes).map(Into::into).ok(),
        _ => None,
    }
    .ok_or_else(|| CertError::InvalidCertificate {
        reason: format!("an IP address SAN has {} bytes, not 4 or 16", bytes.len()),
    })?;
    Ok(address.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::write_ca;
    use crate::write_pem_pair;

    fn setup() -> (tempfile::TempDir, Ca) {
        let temp = tempfile::tempdir().unwrap();
        let ca = Ca::generate("renew test CA").unwrap();
        write_ca(temp.path(), &ca).unwrap();
        (temp, ca)
    }

    #[test]
    fn agent_renewal_keeps_identity_new_key() {
        let (temp, ca) = setup();
        let (cert, key) =
            write_pem_pair(temp.path(), "agent-79", &ca.issue_agent("79", 5).unwrap()).unwrap();
        let old_key = std::fs::read_to_string(&key).unwrap();

        let renewal = renew(temp.path(), &cert, None).unwrap();

        assert_eq!(renewal.cert_path, cert);
        assert_eq!(renewal.key_path, key);
        assert_eq!(renewal.new.identity, Some(Identity::Agent("79".into())));
        assert_ne!(renewal.new.serial_hex, renewal.old.serial_hex);
        assert!(renewal.new.not_after - renewal.old.not_after > 80 * 86_400);
        assert_ne!(std::fs::read_to_string(&key).unwrap(), old_key);
        let on_disk = read_identity(&std::fs::read_to_string(&cert).unwrap()).unwrap();
        assert_eq!(on_disk.serial_hex, renewal.new.serial_hex);
        let text = renewal.describe(temp.path());
        assert!(text.contains(&renewal.old.serial_hex), "{text}");
    }

    #[test]
    fn hub_renewal_keeps_hosts() {
        let (temp, ca) = setup();
        let hosts = vec!["hub.example.vn".to_string(), "10.0.0.7".to_string()];
        let (cert, _) =
            write_pem_pair(temp.path(), "hub", &ca.issue_hub(&hosts, 10).unwrap()).unwrap();

        let renewal = renew(temp.path(), &cert, Some(30)).unwrap();

        let pem = std::fs::read_to_string(&renewal.cert_path).unwrap();
        assert_eq!(hub_hosts(&pem).unwrap(), Some(hosts));
        let lifetime = renewal.new.not_after - renewal.new.not_before;
        assert!(
            (30 * 86_400..=30 * 86_400 + 600).contains(&lifetime),
            "{lifetime}"
        );
    }

    #[test]
    fn certificate_without_identity_is_not_renewable() {
        let (temp, ca) = setup();
        let mut request = crate::LeafRequest::valid_for_days("plain", 5).unwrap();
        request.client_auth = true;
        let (cert, _) = write_pem_pair(temp.path(), "plain", &ca.issue(&request).unwrap()).unwrap();
        let err = renew(temp.path(), &cert, None).unwrap_err();
        assert!(matches!(err, CertError::NotRenewable { .. }), "{err}");
    }
}
