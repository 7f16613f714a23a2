//! The commands of the `chiso-certs` binary, as functions that return the paths they wrote.
//!
//! `init` checks every input and makes every certificate in memory before it writes a file, so
//! an invalid province or operator name leaves the directory untouched. It never replaces an
//! existing CA key. It also writes an empty revoked-serials list and a CRL, so that a hub can be
//! configured with both from the start.

use std::path::{Path, PathBuf};

use crate::files::{CA_CERT_FILE, CA_KEY_FILE, read_text};
use crate::revocation::{self, DEFAULT_CRL_DAYS};
use crate::{Ca, CertError, CertifiedKey, read_identity, write_ca, write_pem_pair};
use time::OffsetDateTime;

/// Common name of the CA that `init` generates.
pub const INIT_CA_NAME: &str = "chiso development CA";

/// Inputs of `chiso-certs init`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    /// Directory that receives every file.
    pub dir: PathBuf,
    /// Province and ministry codes that each get an agent certificate.
    pub provinces: Vec<String>,
    /// DNS names and IP addresses of the hub certificate.
    pub hub_hosts: Vec<String>,
    /// Names that each get an operator certificate.
    pub operators: Vec<String>,
    /// Validity of agent certificates, in days.
    pub agent_days: u32,
    /// Validity of the hub certificate, in days.
    pub hub_days: u32,
    /// Validity of operator certificates, in days.
    pub operator_days: u32,
}

/// Returns the file stem of an agent's certificate and key, such as `agent-79`.
pub fn agent_stem(locality: &str) -> String {
    format!("agent-{locality}")
}

/// Returns the file stem of an operator's certificate and key, such as `operator-ops`.
pub fn operator_stem(name: &str) -> String {
    format!("operator-{name}")
}

/// File stem of the hub's certificate and key.
pub const HUB_STEM: &str = "hub";

/// Generates a CA in `options.dir` and signs the hub, agent and operator certificates with it.
/// Returns every path written, CA first.
pub fn init(options: &InitOptions) -> Result<Vec<PathBuf>, CertError> {
    let ca_key = options.dir.join(CA_KEY_FILE);
    if ca_key.exists() {
        return Err(CertError::CaKeyExists { path: ca_key });
    }

    let ca = Ca::generate(INIT_CA_NAME)?;
    let mut leaves: Vec<(String, CertifiedKey)> = Vec::new();
    leaves.push((
        HUB_STEM.to_string(),
        ca.issue_hub(&options.hub_hosts, options.hub_days)?,
    ));
    for locality in &options.provinces {
        let stem = agent_stem(locality);
        if !leaves.iter().any(|(existing, _)| *existing == stem) {
            leaves.push((stem, ca.issue_agent(locality, options.agent_days)?));
        }
    }
    for name in &options.operators {
        let stem = operator_stem(name);
        if !leaves.iter().any(|(existing, _)| *existing == stem) {
            leaves.push((stem, ca.issue_operator(name, options.operator_days)?));
        }
    }

    write_ca(&options.dir, &ca)?;
    let mut written = vec![options.dir.join(CA_CERT_FILE), ca_key];
    for (stem, pair) in &leaves {
        let (cert, key) = write_pem_pair(&options.dir, stem, pair)?;
        written.extend([cert, key]);
    }
    let now = OffsetDateTime::now_utc();
    let (list, crl) = revocation::init_revocation(&ca, &options.dir, now, DEFAULT_CRL_DAYS)?;
    written.extend([list, crl]);
    Ok(written)
}

/// Signs an agent certificate with the CA in `ca_dir` and writes it to `out`.
pub fn issue_agent(
    ca_dir: &Path,
    locality: &str,
    days: u32,
    out: &Path,
) -> Result<(PathBuf, PathBuf), CertError> {
    let pair = Ca::load_dir(ca_dir)?.issue_agent(locality, days)?;
    write_pem_pair(out, &agent_stem(locality), &pair)
}

/// Signs a hub certificate with the CA in `ca_dir` and writes it to `out`.
pub fn issue_hub(
    ca_dir: &Path,
    hosts: &[String],
    days: u32,
    out: &Path,
) -> Result<(PathBuf, PathBuf), CertError> {
    let pair = Ca::load_dir(ca_dir)?.issue_hub(hosts, days)?;
    write_pem_pair(out, HUB_STEM, &pair)
}

/// Signs an operator certificate with the CA in `ca_dir` and writes it to `out`.
pub fn issue_operator(
    ca_dir: &Path,
    name: &str,
    days: u32,
    out: &Path,
) -> Result<(PathBuf, PathBuf), CertError> {
    let pair = Ca::load_dir(ca_dir)?.issue_operator(name, days)?;
    write_pem_pair(out, &operator_stem(name), &pair)
}

/// Revokes the certificate in `cert_path` with the CA in `ca_dir`: see [`revocation::revoke`].
pub fn revoke_cert(
    ca_dir: &Path,
    cert_path: &Path,
    now: OffsetDateTime,
    crl_days: u32,
) -> Result<(PathBuf, PathBuf), CertError> {
    let info = read_identity(&read_text(cert_path)?)?;
    let label = match &info.identity {
        Some(identity) => identity.uri(),
        None => format!("{:?}", info.common_name),
    };
    revocation::revoke(ca_dir, &info.serial_hex, &label, now, crl_days)
}

/// Describes the certificate in `path` as of `now` (Unix seconds).
pub fn show(path: &Path, now: i64) -> Result<String, CertError> {
    let info = read_identity(&read_text(path)?)?;
    Ok(format!(
        "file:        {}\n{}",
        path.display(),
        info.describe(now)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DEFAULT_AGENT_DAYS, DEFAULT_HUB_DAYS, DEFAULT_HUB_HOSTS, DEFAULT_OPERATOR_DAYS};
    use chiso_proto::identity::Identity;
    use std::os::unix::fs::PermissionsExt;

    fn options(dir: &Path, provinces: &[&str], operators: &[&str]) -> InitOptions {
        InitOptions {
            dir: dir.to_path_buf(),
            provinces: provinces.iter().map(|code| code.to_string()).collect(),
            hub_hosts: DEFAULT_HUB_HOSTS
                .iter()
                .map(|host| host.to_string())
                .collect(),
            operators: operators.iter().map(|name| name.to_string()).collect(),
            agent_days: DEFAULT_AGENT_DAYS,
            hub_days: DEFAULT_HUB_DAYS,
            operator_days: DEFAULT_OPERATOR_DAYS,
        }
    }

    fn file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn init_writes_every_file() {
        let temp = tempfile::tempdir().unwrap();
        let written = init(&options(temp.path(), &["79", "01", "79"], &["ops"])).unwrap();

        assert_eq!(written.len(), 12);
        assert_eq!(
            file_names(temp.path()),
            [
                "agent-01.crt",
                "agent-01.key",
                "agent-79.crt",
                "agent-79.key",
                "ca.crl",
                "ca.crt",
                "ca.key",
                "hub.crt",
                "hub.key",
                "operator-ops.crt",
                "operator-ops.key",
                "revoked.txt",
            ]
        );
        let key_mode = std::fs::metadata(temp.path().join("agent-79.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        let agent = read_identity(&read_text(&temp.path().join("agent-79.crt")).unwrap()).unwrap();
        assert_eq!(agent.identity, Some(Identity::Agent("79".into())));
        let operator =
            read_identity(&read_text(&temp.path().join("operator-ops.crt")).unwrap()).unwrap();
        assert_eq!(operator.identity, Some(Identity::Operator("ops".into())));
    }

    #[test]
    fn init_refuses_existing_ca_key() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(temp.path().join(CA_KEY_FILE), "existing").unwrap();

        let err = init(&options(temp.path(), &["79"], &[])).unwrap_err();

        assert!(matches!(err, CertError::CaKeyExists { .. }), "{err}");
        assert!(err.to_string().contains("another --dir"), "{err}");
        assert_eq!(file_names(temp.path()), ["ca.key"]);
        assert_eq!(
            std::fs::read_to_string(temp.path().join(CA_KEY_FILE)).unwrap(),
            "existing"
        );
    }

    #[test]
    fn init_invalid_province_writes_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("certs");

        let err = init(&options(&dir, &["79", "99"], &[])).unwrap_err();

        assert!(err.to_string().contains("\"99\""), "{err}");
        assert!(!dir.exists());
    }

    #[test]
    fn issue_agent_uses_existing_ca() {
        let temp = tempfile::tempdir().unwrap();
        init(&options(temp.path(), &[], &[])).unwrap();
        let out = temp.path().join("out");

        let (cert, key) = issue_agent(temp.path(), "01", 30, &out).unwrap();

        assert_eq!(cert, out.join("agent-01.crt"));
        assert_eq!(key, out.join("agent-01.key"));
        let text = show(&cert, time::OffsetDateTime::now_utc().unix_timestamp()).unwrap();
        assert!(text.contains("spiffe://chiso/agent/01"), "{text}");
        assert!(
            text.contains("valid, 29 days left") || text.contains("valid, 30 days left"),
            "{text}"
        );
    }

    #[test]
    fn revoke_cert_lists_its_serial() {
        let temp = tempfile::tempdir().unwrap();
        init(&options(temp.path(), &["01"], &[])).unwrap();
        let cert = temp.path().join("agent-01.crt");
        let serial = read_identity(&read_text(&cert).unwrap())
            .unwrap()
            .serial_hex;

        let (list, _) = revoke_cert(temp.path(), &cert, OffsetDateTime::now_utc(), 30).unwrap();

        assert_eq!(revocation::read_revoked_serials(&list).unwrap(), [serial]);
        let text = read_text(&list).unwrap();
        assert!(text.contains("spiffe://chiso/agent/01"), "{text}");
    }
}
