//! Revocation: the list of revoked serial numbers (`revoked.txt`) and the CRL that the CA signs
//! from it (`ca.crl`). The hub reads either or both and re-reads them whenever they change.
//!
//! The list is the source of truth. It has one serial a line, in lowercase hex without leading
//! zero bytes, and `#` starts a comment. [`revoke`] appends to it and then signs a new CRL naming every
//! serial of the list, so the two never disagree after a command finishes. Both files are
//! replaced through a rename, so a reader never sees half of one. Each CRL carries a number one
//! higher than the CRL it replaces, and revocation times already published are kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use time::{Duration, OffsetDateTime};
use x509_parser::pem::Pem;

use crate::files::{read_text, write_public_file};
use crate::inspect::rfc3339_utc;
use crate::{Ca, CertError};

/// File name of the revoked-serials list inside a certificate directory.
pub const REVOKED_LIST_FILE: &str = "revoked.txt";
/// File name of the CRL inside a certificate directory.
pub const CRL_FILE: &str = "ca.crl";
/// Default time from a CRL's issue to its `nextUpdate`, in days.
pub const DEFAULT_CRL_DAYS: u32 = 30;

/// Most hex digits of a serial: 20 octets (RFC 5280, section 4.1.2.2) plus a sign octet.
const MAX_SERIAL_HEX_DIGITS: usize = 42;

const LIST_HEADER: &str = "# Revoked chiso certificates: one serial number a line, lowercase hex without leading\n# zeros. '#' starts a comment. chiso-hub rejects a client certificate with a listed serial.\n";

/// Normalizes a serial number written in hex, with or without `:` separators and in either case,
/// to the form `chiso-certs show` prints: lowercase hex with an even number of digits and no
/// leading zero bytes (`00` for zero).
pub fn normalize_serial(text: &str) -> Result<String, CertError> {
    let invalid = |reason| CertError::InvalidSerial {
        serial: text.to_string(),
        reason,
    };
    let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
    if digits.is_empty() {
        return Err(invalid("it is empty"));
    }
    if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid(
            "it contains characters other than hex digits and ':'",
        ));
    }
    if digits.len() > MAX_SERIAL_HEX_DIGITS {
        return Err(invalid("it is longer than the 20 octets X.509 allows"));
    }
    let significant = digits.trim_start_matches('0').to_ascii_lowercase();
    Ok(match significant.len() {
        0 => "00".to_string(),
        odd if odd % 2 == 1 => format!("0{significant}"),
        _ => significant,
    })
}

/// Reads the serials of a revoked list, normalized, in file order. A missing file is an empty
/// list; a line that is not a serial is an error naming the line.
pub fn read_revoked_serials(path: &Path) -> Result<Vec<String>, CertError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = read_text(path)?;
    let mut serials = Vec::new();
    for line in text.lines() {
        let entry = line.split('#').next().unwrap_or_default().trim();
        if entry.is_empty() {
            continue;
        }
        let serial = normalize_serial(entry)?;
        if !serials.contains(&serial) {
            serials.push(serial);
        }
    }
    Ok(serials)
}

/// Adds `serial` to `ca_dir/revoked.txt` (with `label` and the time as a comment) and signs a new
/// `ca_dir/ca.crl` naming every listed serial. Revoking a listed serial again only re-signs the
/// CRL. Returns the paths of the list and the CRL.
pub fn revoke(
    ca_dir: &Path,
    serial: &str,
    label: &str,
    now: OffsetDateTime,
    crl_days: u32,
) -> Result<(PathBuf, PathBuf), CertError> {
    let ca = Ca::load_dir(ca_dir)?;
    let serial = normalize_serial(serial)?;
    let list_path = ca_dir.join(REVOKED_LIST_FILE);

    let listed = read_revoked_serials(&list_path)?;
    if !listed.contains(&serial) {
        let mut text = if list_path.exists() {
            read_text(&list_path)?
        } else {
            LIST_HEADER.to_string()
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let label = label.replace(['\n', '\r', '#'], " ");
        text.push_str(&format!(
            "{serial}  # {label}, revoked {}\n",
            rfc3339_utc(now.unix_timestamp())
        ));
        write_public_file(&list_path, &text)?;
    }

    let crl_path = write_crl(&ca, ca_dir, now, crl_days)?;
    Ok((list_path, crl_path))
}

/// Writes an empty revoked list to `ca_dir/revoked.txt` unless one exists, and signs
/// `ca_dir/ca.crl` from it. Returns both paths.
pub fn init_revocation(
    ca: &Ca,
    ca_dir: &Path,
    now: OffsetDateTime,
    crl_days: u32,
) -> Result<(PathBuf, PathBuf), CertError> {
    let list_path = ca_dir.join(REVOKED_LIST_FILE);
    if !list_path.exists() {
        write_public_file(&list_path, LIST_HEADER)?;
    }
    let crl_path = write_crl(ca, ca_dir, now, crl_days)?;
    Ok((list_path, crl_path))
}

/// Signs `ca_dir/ca.crl` from the serials in `ca_dir/revoked.txt`, valid from `now` for
/// `crl_days` days, and returns its path.
pub fn write_crl(
    ca: &Ca,
    ca_dir: &Path,
    now: OffsetDateTime,
    crl_days: u32,
) -> Result<PathBuf, CertError> {
    crate::leaf::check_days(crl_days)?;
    let crl_path = ca_dir.join(CRL_FILE);
    let serials = read_revoked_serials(&ca_dir.join(REVOKED_LIST_FILE))?;
    let previous = PreviousCrl::read(&crl_path)?;

    let mut revoked_certs = Vec::with_capacity(serials.len());
    for serial in &serials {
        let revocation_time = previous.revoked_at.get(serial).copied().unwrap_or(now);
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial_bytes(serial)),
            revocation_time,
            reason_code: None,
            invalidity_date: None,
        });
    }
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + Duration::days(i64::from(crl_days)),
        crl_number: SerialNumber::from_slice(&(previous.number + 1).to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let sign_error = |source| CertError::SignCrl {
        common_name: ca.common_name().to_string(),
        source,
    };
    let crl = params.signed_by(ca.issuer()).map_err(sign_error)?;
    write_public_file(&crl_path, &crl.pem().map_err(sign_error)?)?;
    Ok(crl_path)
}

/// The parts of the replaced CRL that a new CRL keeps: its number and revocation times.
struct PreviousCrl {
    number: u64,
    revoked_at: HashMap<String, OffsetDateTime>,
}

impl PreviousCrl {
    /// Reads the CRL at `path`; a missing file counts as number 0 with no entries.
    fn read(path: &Path) -> Result<PreviousCrl, CertError> {
        let mut previous = PreviousCrl {
            number: 0,
            revoked_at: HashMap::new(),
        };
        if !path.exists() {
            return Ok(previous);
        }
        let invalid = |reason: String| CertError::InvalidCrl {
            path: path.to_path_buf(),
            reason,
        };
        let text = read_text(path)?;
        let pem = Pem::iter_from_buffer(text.as_bytes())
            .next()
            .ok_or_else(|| invalid("no PEM block found".to_string()))?
            .map_err(|err| invalid(format!("malformed PEM: {err}")))?;
        let (_, crl) = x509_parser::parse_x509_crl(&pem.contents)
            .map_err(|err| invalid(format!("malformed CRL: {err}")))?;

        let digits = crl.crl_number().map(|number| number.to_u64_digits());
        previous.number = match digits.as_deref() {
            None | Some([]) => 0,
            Some([number]) => *number,
            Some(_) => return Err(invalid("the CRL number exceeds 64 bits".to_string())),
        };
        for entry in crl.iter_revoked_certificates() {
            let serial = normalize_serial(&hex_of(entry.raw_serial()))?;
            let time = OffsetDateTime::from_unix_timestamp(entry.revocation_date.timestamp())
                .map_err(|err| invalid(format!("revocation date out of range: {err}")))?;
            previous.revoked_at.insert(serial, time);
        }
        Ok(previous)
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Turns a serial from [`normalize_serial`], which has an even number of hex digits, into
/// big-endian bytes.
fn serial_bytes(serial: &str) -> Vec<u8> {
    (0..serial.len())
        .step_by(2)
        .filter_map(|start| serial.get(start..start + 2))
        .map(|pair| u8::from_str_radix(pair, 16).unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::write_ca;
    use crate::read_identity;

    fn parse_crl(path: &Path) -> (u64, Vec<String>, i64) {
        let text = std::fs::read_to_string(path).unwrap();
        let pem = Pem::iter_from_buffer(text.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).unwrap();
        let number = crl.crl_number().unwrap().to_u64_digits()[0];
        let serials = crl
            .iter_revoked_certificates()
            .map(|entry| normalize_serial(&hex_of(entry.raw_serial())).unwrap())
            .collect();
        let next_update = crl.next_update().unwrap().timestamp();
        (number, serials, next_update)
    }

    fn ca_dir() -> (tempfile::TempDir, Ca) {
        let temp = tempfile::tempdir().unwrap();
        let ca = Ca::generate("revocation test CA").unwrap();
        write_ca(temp.path(), &ca).unwrap();
        (temp, ca)
    }

    #[test]
    fn serials_normalize() {
        assert_eq!(normalize_serial("00:8F:01").unwrap(), "8f01");
        assert_eq!(normalize_serial(" 7fA0 ").unwrap(), "7fa0");
        assert_eq!(normalize_serial("000").unwrap(), "00");
        assert_eq!(normalize_serial("0abc").unwrap(), "0abc");
        assert_eq!(normalize_serial("00abc").unwrap(), "0abc");
        for bad in ["", "xyz", "12 34", &"f".repeat(43)] {
            assert!(
                matches!(normalize_serial(bad), Err(CertError::InvalidSerial { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn revoke_lists_and_signs_crl() {
        let (temp, ca) = ca_dir();
        let leaf = read_identity(&ca.issue_agent("01", 30).unwrap().cert_pem).unwrap();
        let now = OffsetDateTime::now_utc();

        let (list, crl) = revoke(temp.path(), &leaf.serial_hex, "agent 01", now, 30).unwrap();

        assert_eq!(
            read_revoked_serials(&list).unwrap(),
            vec![leaf.serial_hex.clone()]
        );
        let text = std::fs::read_to_string(&list).unwrap();
        assert!(text.contains("# agent 01, revoked "), "{text}");
        let (number, serials, next_update) = parse_crl(&crl);
        assert_eq!(number, 1);
        assert_eq!(serials, [leaf.serial_hex]);
        assert_eq!(next_update, now.unix_timestamp() + 30 * 86_400);
    }

    #[test]
    fn second_revoke_keeps_first_and_raises_number() {
        let (temp, ca) = ca_dir();
        let first = read_identity(&ca.issue_agent("01", 30).unwrap().cert_pem).unwrap();
        let second = read_identity(&ca.issue_agent("79", 30).unwrap().cert_pem).unwrap();
        let now = OffsetDateTime::now_utc();
        revoke(temp.path(), &first.serial_hex, "first", now, 30).unwrap();
        revoke(temp.path(), &second.serial_hex, "second", now, 30).unwrap();
        let (_, crl) = revoke(temp.path(), &second.serial_hex, "again", now, 30).unwrap();

        let listed = read_revoked_serials(&temp.path().join(REVOKED_LIST_FILE)).unwrap();
        assert_eq!(
            listed,
            [first.serial_hex.clone(), second.serial_hex.clone()]
        );
        let (number, serials, _) = parse_crl(&crl);
        assert_eq!(number, 3);
        assert_eq!(serials, [first.serial_hex, second.serial_hex]);
    }

    #[test]
    fn crl_verifies_with_ca_key() {
        let (temp, ca) = ca_dir();
        let crl = write_crl(&ca, temp.path(), OffsetDateTime::now_utc(), 7).unwrap();

        let text = std::fs::read_to_string(crl).unwrap();
        let pem = Pem::iter_from_buffer(text.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).unwrap();
        let ca_pem = crate::inspect::first_certificate_pem(ca.cert_pem()).unwrap();
        let ca_cert = crate::inspect::parse_certificate_pem(&ca_pem).unwrap();
        crl.verify_signature(ca_cert.public_key())
            .expect("the CRL is signed by the CA key");
        assert_eq!(crl.iter_revoked_certificates().count(), 0);
    }

    #[test]
    fn malformed_list_line_is_named() {
        let (temp, _) = ca_dir();
        let list = temp.path().join(REVOKED_LIST_FILE);
        std::fs::write(&list, "# header\nabc123\nnot-a-serial\n").unwrap();
        let err = read_revoked_serials(&list).unwrap_err();
        assert!(err.to_string().contains("not-a-serial"), "{err}");
    }
}
