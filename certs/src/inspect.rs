//! Reading a certificate back: its chiso identity, serial, validity and common name.
//!
//! A certificate has at most one chiso identity. One that carries two different
//! `spiffe://chiso/` URIs is rejected, so that a peer can never be read as either.

use chiso_proto::identity::Identity;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::CertError;

const SECONDS_PER_DAY: i64 = 86_400;

/// Identity, serial, validity and common name of a certificate, as `show` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The chiso identity in the URI SAN, if any.
    pub identity: Option<Identity>,
    /// Serial number, lowercase hex without separators or leading zero bytes.
    pub serial_hex: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// Subject common name, or an empty string when there is none.
    pub common_name: String,
}

impl CertInfo {
    /// Formats the identity, serial, validity (RFC 3339, UTC) and days left at `now` (Unix
    /// seconds), one field a line.
    pub fn describe(&self, now: i64) -> String {
        let identity = match &self.identity {
            Some(identity) => identity.uri(),
            None => "none (no spiffe://chiso/ URI SAN)".to_string(),
        };
        format!(
            "identity:    {identity}\ncommon name: {}\nserial:      {}\nnot before:  {}\nnot after:   {}\nstatus:      {}\n",
            self.common_name,
            self.serial_hex,
            rfc3339_utc(self.not_before),
            rfc3339_utc(self.not_after),
            self.status(now),
        )
    }

    fn status(&self, now: i64) -> String {
        if now < self.not_before {
            let days = (self.not_before - now) / SECONDS_PER_DAY;
            format!("not yet valid, starts in {days} days")
        } else if now > self.not_after {
            let days = (now - self.not_after) / SECONDS_PER_DAY;
            format!("expired {days} days ago")
        } else {
            let days = (self.not_after - now) / SECONDS_PER_DAY;
            format!("valid, {days} days left")
        }
    }
}

/// Reads the identity, serial, validity and common name of the first certificate in a PEM text.
pub fn read_identity(cert_pem: &str) -> Result<CertInfo, CertError> {
    let pem = first_certificate_pem(cert_pem)?;
    let cert = parse_certificate_pem(&pem)?;
    info_of(&cert)
}

/// Reads the identity, serial, validity and common name of a DER certificate, such as one a
/// TLS peer presented.
pub fn read_identity_der(der: &[u8]) -> Result<CertInfo, CertError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|err| CertError::InvalidCertificate {
            reason: format!("malformed X.509 DER: {err}"),
        })?;
    info_of(&cert)
}

fn info_of(cert: &X509Certificate<'_>) -> Result<CertInfo, CertError> {
    let validity = cert.validity();
    Ok(CertInfo {
        identity: identity_of(cert)?,
        serial_hex: serial_hex(cert.raw_serial()),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        common_name: common_name_of(cert),
    })
}

/// Returns the first `CERTIFICATE` block of a PEM text.
pub(crate) fn first_certificate_pem(text: &str) -> Result<Pem, CertError> {
    for block in Pem::iter_from_buffer(text.as_bytes()) {
        let block = block.map_err(|err| CertError::InvalidCertificate {
            reason: format!("malformed PEM: {err}"),
        })?;
        if block.label == "CERTIFICATE" {
            return Ok(block);
        }
    }
    Err(CertError::InvalidCertificate {
        reason: "no PEM block labelled CERTIFICATE".to_string(),
    })
}

/// Parses the DER inside a PEM block as an X.509 certificate.
pub(crate) fn parse_certificate_pem(pem: &Pem) -> Result<X509Certificate<'_>, CertError> {
    pem.parse_x509()
        .map_err(|err| CertError::InvalidCertificate {
            reason: format!("malformed X.509 DER: {err}"),
        })
}

/// Returns the first subject common name, or an empty string.
pub(crate) fn common_name_of(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|attribute| attribute.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn identity_of(cert: &X509Certificate<'_>) -> Result<Option<Identity>, CertError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|err| CertError::InvalidCertificate {
            reason: format!("malformed subject alternative name: {err}"),
        })?;
    let Some(san) = san else {
        return Ok(None);
    };

    let mut identities: Vec<Identity> = Vec::new();
    for name in &san.value.general_names {
        if let GeneralName::URI(uri) = name
            && let Some(identity) = Identity::parse(uri)
            && !identities.contains(&identity)
        {
            identities.push(identity);
        }
    }
    if identities.len() > 1 {
        let uris: Vec<String> = identities.iter().map(Identity::uri).collect();
        return Err(CertError::AmbiguousIdentity {
            uris: uris.join(", "),
        });
    }
    Ok(identities.pop())
}

fn serial_hex(raw: &[u8]) -> String {
    let significant = match raw.iter().position(|&byte| byte != 0) {
        Some(start) => &raw[start..],
        None => &[0],
    };
    significant
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Formats Unix seconds as RFC 3339 in UTC, such as `2026-01-31T08:00:00Z`.
pub(crate) fn rfc3339_utc(unix_seconds: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(unix_seconds) {
        Ok(time) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            time.year(),
            u8::from(time.month()),
            time.day(),
            time.hour(),
            time.minute(),
            time.second()
        ),
        Err(_) => format!("{unix_seconds} (Unix seconds, outside the calendar range)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_hex_strips_leading_zeros() {
        assert_eq!(serial_hex(&[0x00, 0x8f, 0x01]), "8f01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0x7f, 0x00]), "7f00");
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_767_225_600), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn describe_reports_status() {
        let info = CertInfo {
            identity: Some(Identity::Agent("79".into())),
            serial_hex: "0a".into(),
            not_before: 0,
            not_after: 10 * SECONDS_PER_DAY,
            common_name: "chiso agent 79".into(),
        };
        let text = info.describe(SECONDS_PER_DAY + 5);
        assert!(
            text.contains("identity:    spiffe://chiso/agent/79\n"),
            "{text}"
        );
        assert!(
            text.contains("not after:   1970-01-11T00:00:00Z\n"),
            "{text}"
        );
        assert!(text.contains("valid, 8 days left"), "{text}");
        assert!(
            info.describe(12 * SECONDS_PER_DAY)
                .contains("expired 2 days ago")
        );
        assert!(
            info.describe(-3 * SECONDS_PER_DAY)
                .contains("not yet valid, starts in 3 days")
        );
    }

    #[test]
    fn non_certificate_pem_rejected() {
        let err = read_identity("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(err.to_string().contains("CERTIFICATE"), "{err}");
        assert!(read_identity("not pem at all").is_err());
    }
}
