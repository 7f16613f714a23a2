//! Leaf certificate requests and the checks on their inputs.
//!
//! A leaf is never a CA (basicConstraints CA:FALSE), has key usage digitalSignature, an
//! authority key identifier naming its CA, and the extended key usages its request lists.
//! Host names become DNS SANs and addresses IP SANs. An identity becomes the only chiso URI SAN.

use std::net::IpAddr;

use chiso_proto::identity::Identity;
use chiso_proto::ministries;
use chiso_proto::units::UnitCatalogue;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType,
};
use time::{Duration, OffsetDateTime};

use crate::CertError;
use crate::inspect::rfc3339_utc;

/// Smallest accepted validity period, in days.
pub const MIN_DAYS: u32 = 1;
/// Largest accepted validity period, in days (about ten years, the lifetime of the CA).
pub const MAX_DAYS: u32 = 3650;

/// How far before the moment of issue a certificate becomes valid, so that a peer whose clock
/// runs a few minutes behind still accepts a certificate issued just now.
const CLOCK_SKEW_ALLOWANCE: Duration = Duration::minutes(5);

/// Everything a leaf certificate contains apart from its key, serial and issuer.
///
/// The validity bounds are free, so tests can make expired and not-yet-valid certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafRequest {
    /// Subject common name.
    pub common_name: String,
    /// Identity put in the URI SAN, if any.
    pub identity: Option<Identity>,
    /// DNS names and IP addresses put in the SAN.
    pub hosts: Vec<String>,
    /// Adds the serverAuth extended key usage.
    pub server_auth: bool,
    /// Adds the clientAuth extended key usage.
    pub client_auth: bool,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl LeafRequest {
    /// Builds a request with no SAN and no extended key usage, valid from now for `days` days.
    pub fn valid_for_days(common_name: &str, days: u32) -> Result<LeafRequest, CertError> {
        check_days(days)?;
        let now = OffsetDateTime::now_utc();
        Ok(LeafRequest {
            common_name: common_name.to_string(),
            identity: None,
            hosts: Vec::new(),
            server_auth: false,
            client_auth: false,
            not_before: now - CLOCK_SKEW_ALLOWANCE,
            not_after: now + Duration::days(i64::from(days)),
        })
    }

    /// Checks the request and turns it into rcgen parameters.
    pub(crate) fn to_params(&self) -> Result<CertificateParams, CertError> {
        if self.not_after <= self.not_before {
            return Err(CertError::EmptyValidity {
                not_before: rfc3339_utc(self.not_before.unix_timestamp()),
                not_after: rfc3339_utc(self.not_after.unix_timestamp()),
            });
        }

        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(&self.common_name);
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        if self.server_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if self.client_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }

        for host in &self.hosts {
            params.subject_alt_names.push(host_san(host)?);
        }
        if let Some(identity) = &self.identity {
            params.subject_alt_names.push(identity_san(identity)?);
        }
        Ok(params)
    }
}

/// Builds a distinguished name holding only a common name.
pub(crate) fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// Rejects a validity period outside [`MIN_DAYS`]..=[`MAX_DAYS`].
pub fn check_days(days: u32) -> Result<(), CertError> {
    if (MIN_DAYS..=MAX_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(CertError::InvalidDays {
            days,
            min: MIN_DAYS,
            max: MAX_DAYS,
        })
    }
}

/// Returns the agent identity of a locality: a province code of the official unit catalogue or
/// a ministry code. A ministry code is checked for its shape only, because a hub may add
/// ministries with its `units_file`, which this tool does not read. The hub rejects an agent
/// whose code is not a locality of its catalogue.
pub fn agent_identity(locality: &str) -> Result<Identity, CertError> {
    let catalogue = UnitCatalogue::official();
    let province = catalogue.province_codes().any(|code| code == locality);
    if !province && ministries::check_code(locality).is_err() {
        return Err(CertError::UnknownLocality {
            locality: locality.to_string(),
            known: catalogue.province_codes().collect::<Vec<_>>().join(", "),
            ministries: catalogue.ministry_codes().collect::<Vec<_>>().join(", "),
        });
    }
    Ok(Identity::Agent(locality.to_string()))
}

/// Returns the operator identity of a name, which must form a valid identity URI.
pub fn operator_identity(name: &str) -> Result<Identity, CertError> {
    let identity = Identity::Operator(name.to_string());
    match Identity::parse(&identity.uri()) {
        Some(parsed) if parsed == identity => Ok(identity),
        _ => Err(CertError::InvalidOperatorName {
            name: name.to_string(),
        }),
    }
}

fn identity_san(identity: &Identity) -> Result<SanType, CertError> {
    let uri = identity.uri();
    if Identity::parse(&uri).as_ref() != Some(identity) {
        return Err(CertError::InvalidIdentity { uri });
    }
    let ia5 = uri
        .clone()
        .try_into()
        .map_err(|_| CertError::InvalidIdentity { uri })?;
    Ok(SanType::URI(ia5))
}

/// Makes an IP SAN when `host` parses as an address, and a DNS SAN otherwise.
fn host_san(host: &str) -> Result<SanType, CertError> {
    if let Ok(address) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(address));
    }
    check_dns_name(host)?;
    let ia5 = host
        .to_string()
        .try_into()
        .map_err(|_| invalid_host(host, "not ASCII"))?;
    Ok(SanType::DnsName(ia5))
}

/// Accepts names of 1 to 253 characters whose dot-separated labels have 1 to 63 letters, digits
/// or hyphens, do not start or end with a hyphen, and allows `*` as the whole first label.
fn check_dns_name(host: &str) -> Result<(), CertError> {
    if host.is_empty() || host.len() > 253 {
        return Err(invalid_host(host, "a DNS name has 1 to 253 characters"));
    }
    for (index, label) in host.split('.').enumerate() {
        if index == 0 && label == "*" {
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return Err(invalid_host(host, "each DNS label has 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid_host(
                host,
                "a DNS name contains only ASCII letters, digits, '-' and '.'",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid_host(
                host,
                "a DNS label does not start or end with '-'",
            ));
        }
    }
    Ok(())
}

fn invalid_host(host: &str, reason: &'static str) -> CertError {
    CertError::InvalidHost {
        host: host.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_bounds() {
        assert!(check_days(1).is_ok());
        assert!(check_days(3650).is_ok());
        assert!(matches!(
            check_days(0),
            Err(CertError::InvalidDays { days: 0, .. })
        ));
        assert!(matches!(
            check_days(3651),
            Err(CertError::InvalidDays { days: 3651, .. })
        ));
    }

    #[test]
    fn unknown_locality_names_value() {
        let err = agent_identity("99").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("\"99\""), "{message}");
        assert!(message.contains("01, "), "{message}");
        assert!(message.contains("79"), "{message}");
    }

    #[test]
    fn known_locality_accepted() {
        assert_eq!(
            agent_identity("79").unwrap(),
            Identity::Agent("79".to_string())
        );
        assert_eq!(
            agent_identity("BTC").unwrap(),
            Identity::Agent("BTC".to_string())
        );
    }

    #[test]
    fn malformed_ministry_code_rejected() {
        for bad in ["btc", "B", "VN", "BTC/1", "00004"] {
            let err = agent_identity(bad).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(&format!("{bad:?}")), "{message}");
            assert!(message.contains("BTC, "), "{message}");
        }
    }

    #[test]
    fn operator_names_checked() {
        assert!(operator_identity("ops-team").is_ok());
        for bad in ["", "a b", "a/b", "ngư", &"x".repeat(65)] {
            assert!(
                matches!(
                    operator_identity(bad),
                    Err(CertError::InvalidOperatorName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn host_sans_by_kind() {
        assert!(matches!(host_san("127.0.0.1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(host_san("::1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(host_san("localhost"), Ok(SanType::DnsName(_))));
        assert!(matches!(
            host_san("*.hub.example.vn"),
            Ok(SanType::DnsName(_))
        ));
        for bad in ["", "a..b", "-a.vn", "a b", "hà-nội.vn", "a.*.vn"] {
            assert!(
                matches!(host_san(bad), Err(CertError::InvalidHost { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn empty_validity_rejected() {
        let mut request = LeafRequest::valid_for_days("x", 1).unwrap();
        request.not_after = request.not_before;
        assert!(matches!(
            request.to_params(),
            Err(CertError::EmptyValidity { .. })
        ));
    }
}
