//! The hub's configuration: one TOML file, command-line overrides, validation before anything
//! binds. Every default lives here and the README's configuration table mirrors it.

use crate::catalogue::{Catalogue, CatalogueError, DEFAULT_CATALOGUE};
use crate::counters::CounterRules;
use chiso_proto::ministries::MinistryFileError;
use chiso_proto::units::UnitCatalogue;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default listener of the gRPC service.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7443";
/// Default database file.
pub const DEFAULT_DATABASE: &str = "chiso-hub.db";
/// Default largest batch accepted, in records.
pub const DEFAULT_MAX_BATCH_RECORDS: u32 = 1_000;
/// Default largest decoded gRPC message, in bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Default days before a certificate expires from which the hub logs a warning.
pub const DEFAULT_EXPIRY_WARNING_DAYS: u32 = 30;
/// Default batches one push stream may have unacknowledged; the agent's own window is 1 to 64.
pub const DEFAULT_MAX_BATCHES_IN_FLIGHT: u32 = 64;
/// Default longest string outside records (agent version, request fields), in bytes.
pub const DEFAULT_MAX_STRING_BYTES: usize = 256;
/// Default sustained records per second per agent.
// NOTE: sized from the demo's 5,000 dossiers per province in one burst, not from measured
// provincial traffic; raise it if a large province's backlog drains too slowly.
pub const DEFAULT_RECORDS_PER_SECOND: u32 = 2_000;
/// Default records an agent may send at once above the sustained rate.
pub const DEFAULT_BURST_RECORDS: u32 = 20_000;
/// Default maximum time a push stream is held for the rate limit, in milliseconds: a third of the
/// agent's default `push.ack_timeout_ms` (60,000), so a held agent does not take the stream for
/// stalled.
pub const DEFAULT_MAX_RATE_HOLD_MS: u64 = 20_000;
/// Default concurrent push streams per agent identity.
pub const DEFAULT_MAX_STREAMS_PER_AGENT: u32 = 2;
/// Default concurrent connections, all peers together.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 1_024;
/// Default time a client has to finish the TLS handshake, in milliseconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// The whole hub configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the mutual-TLS gRPC listener.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Path of the SQLite database.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// Server certificate, key and the CA that signs client certificates.
    pub tls: TlsConfig,
    /// Limits applied to every agent.
    #[serde(default)]
    pub limits: Limits,
    /// Built-in indicator catalogue: `dvcqg-2026` (the default) or `766-2022`.
    #[serde(default)]
    pub catalogue: Option<String>,
    /// Indicator catalogue file (TOML), used instead of a built-in catalogue.
    #[serde(default)]
    pub catalogue_file: Option<PathBuf>,
    /// Ministry catalogue file (TOML) that replaces or extends the built-in ministries.
    #[serde(default)]
    pub units_file: Option<PathBuf>,
    /// Settings of the running counters, and how often the hub checks for a new day.
    #[serde(default)]
    pub counters: CountersConfig,
}

/// Default seconds between checks for a new Vietnam day, which moves the counters.
pub const DEFAULT_DAY_CHECK_S: u64 = 60;

/// The `[counters]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CountersConfig {
    /// First calendar year that has running counters; earlier periods are computed on request.
    pub first_year: i32,
    /// Ratings at this level or above (1 to 5) are satisfied.
    pub rating_satisfied_min: u32,
    /// Ratings at this level or below (1 to 5) are dissatisfied.
    pub rating_dissatisfied_max: u32,
    /// Seconds between checks for a new Vietnam day.
    pub day_check_s: u64,
}

impl Default for CountersConfig {
    fn default() -> CountersConfig {
        let rules = CounterRules::default();
        CountersConfig {
            first_year: rules.first_year,
            rating_satisfied_min: rules.rating_satisfied_min,
            rating_dissatisfied_max: rules.rating_dissatisfied_max,
            day_check_s: DEFAULT_DAY_CHECK_S,
        }
    }
}

impl CountersConfig {
    /// Returns the counter rules of this section.
    pub fn rules(&self) -> CounterRules {
        CounterRules {
            first_year: self.first_year,
            rating_satisfied_min: self.rating_satisfied_min,
            rating_dissatisfied_max: self.rating_dissatisfied_max,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "counters.first_year",
            self.first_year,
            2000..=2100,
            "must be a year between 2000 and 2100",
        )?;
        check_range(
            "counters.rating_satisfied_min",
            self.rating_satisfied_min,
            1..=5,
            "must be a rating level from 1 to 5",
        )?;
        check_range(
            "counters.rating_dissatisfied_max",
            self.rating_dissatisfied_max,
            1..=5,
            "must be a rating level from 1 to 5",
        )?;
        if self.rating_dissatisfied_max >= self.rating_satisfied_min {
            return Err(ConfigError::Invalid {
                key: "counters.rating_dissatisfied_max",
                value: self.rating_dissatisfied_max.to_string(),
                reason: "must be below counters.rating_satisfied_min, so no rating is both",
            });
        }
        check_range(
            "counters.day_check_s",
            self.day_check_s,
            1..=3600,
            "must be between 1 and 3600 seconds",
        )
    }
}

/// TLS files, PEM encoded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The hub's certificate.
    pub cert: PathBuf,
    /// The hub's private key.
    pub key: PathBuf,
    /// The CA whose client certificates are accepted.
    pub client_ca: PathBuf,
    /// Revoked serial numbers, one hex serial a line, as `chiso-certs revoke` writes them.
    #[serde(default)]
    pub revoked_serials: Option<PathBuf>,
    /// Certificate revocation list (PEM or DER) signed by the client CA.
    #[serde(default)]
    pub crl: Option<PathBuf>,
    /// Days before a certificate's end of validity from which the hub logs a warning.
    #[serde(default = "default_expiry_warning_days")]
    pub expiry_warning_days: u32,
}

impl TlsConfig {
    /// Builds TLS settings from the three required files, without revocation files.
    pub fn new(cert: PathBuf, key: PathBuf, client_ca: PathBuf) -> TlsConfig {
        TlsConfig {
            cert,
            key,
            client_ca,
            revoked_serials: None,
            crl: None,
            expiry_warning_days: DEFAULT_EXPIRY_WARNING_DAYS,
        }
    }
}

/// Limits applied to every agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest batch, in records.
    pub max_batch_records: u32,
    /// Largest decoded gRPC message, in bytes.
    pub max_message_bytes: usize,
    /// Batches one push stream may have unacknowledged.
    pub max_batches_in_flight: u32,
    /// Maximum length of a string outside records (agent version, request fields), in bytes.
    pub max_string_bytes: usize,
    /// Sustained records per second per agent.
    pub records_per_second: u32,
    /// Records an agent may send at once above the sustained rate.
    pub burst_records: u32,
    /// Maximum time the hub holds a batch of an agent above its rate before it refuses the
    /// batch, in milliseconds.
    pub max_rate_hold_ms: u64,
    /// Concurrent push streams per agent identity.
    pub max_streams_per_agent: u32,
    /// Concurrent connections, all peers together.
    pub max_connections: u32,
    /// Time a client has to finish the TLS handshake, in milliseconds.
    pub handshake_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_batch_records: DEFAULT_MAX_BATCH_RECORDS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_batches_in_flight: DEFAULT_MAX_BATCHES_IN_FLIGHT,
            max_string_bytes: DEFAULT_MAX_STRING_BYTES,
            records_per_second: DEFAULT_RECORDS_PER_SECOND,
            burst_records: DEFAULT_BURST_RECORDS,
            max_rate_hold_ms: DEFAULT_MAX_RATE_HOLD_MS,
            max_streams_per_agent: DEFAULT_MAX_STREAMS_PER_AGENT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The config path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The config path.
        path: PathBuf,
        /// Underlying error, with the key and line.
        source: toml::de::Error,
    },
    /// A key has a value outside its allowed range.
    #[error("invalid config value {key} = {value}: {reason}")]
    Invalid {
        /// The key, dotted.
        key: &'static str,
        /// The rejected value.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .expect("the default listen address is valid")
}

fn default_database() -> PathBuf {
    PathBuf::from(DEFAULT_DATABASE)
}

fn default_expiry_warning_days() -> u32 {
    DEFAULT_EXPIRY_WARNING_DAYS
}

/// Rejects `value` outside `range`, naming the key.
fn check_range<T: PartialOrd + ToString>(
    key: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    reason: &'static str,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key,
            value: value.to_string(),
            reason,
        })
    }
}

impl Config {
    /// Reads and validates a configuration file; relative paths are taken from its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let revocation_files = [&mut config.tls.revoked_serials, &mut config.tls.crl];
        let revocation_files = revocation_files.into_iter().filter_map(Option::as_mut);
        for file in [
            &mut config.database,
            &mut config.tls.cert,
            &mut config.tls.key,
            &mut config.tls.client_ca,
        ]
        .into_iter()
        .chain(revocation_files)
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        for file in [&mut config.catalogue_file, &mut config.units_file]
            .into_iter()
            .filter_map(Option::as_mut)
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Loads the configured indicator catalogue: the file, else the built-in id, else
    /// `dvcqg-2026`.
    pub fn indicator_catalogue(&self) -> Result<Catalogue, CatalogueError> {
        match (&self.catalogue_file, &self.catalogue) {
            (Some(path), _) => Catalogue::from_file(path),
            (None, Some(id)) => Catalogue::builtin(id),
            (None, None) => Catalogue::builtin(DEFAULT_CATALOGUE),
        }
    }

    /// Loads the unit catalogue: the official provinces and communes with the ministries of
    /// `units_file`, or with the built-in ministries when it is not set. The catalogue lives as
    /// long as the process, so a file is loaded (and its memory kept) once per call.
    pub fn unit_catalogue(&self) -> Result<&'static UnitCatalogue, MinistryFileError> {
        let Some(path) = &self.units_file else {
            return Ok(UnitCatalogue::official());
        };
        let catalogue = UnitCatalogue::with_ministry_file(path)?;
        tracing::info!(
            file = %path.display(),
            version = catalogue.version(),
            ministries = catalogue.ministry_codes().count(),
            "unit catalogue loaded"
        );
        Ok(Box::leak(Box::new(catalogue)))
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let (Some(id), Some(_)) = (&self.catalogue, &self.catalogue_file) {
            return Err(ConfigError::Invalid {
                key: "catalogue",
                value: id.clone(),
                reason: "set either catalogue or catalogue_file, not both",
            });
        }
        if !(1..=100_000).contains(&self.limits.max_batch_records) {
            return Err(ConfigError::Invalid {
                key: "limits.max_batch_records",
                value: self.limits.max_batch_records.to_string(),
                reason: "must be between 1 and 100000",
            });
        }
        if !(64 * 1024..=256 * 1024 * 1024).contains(&self.limits.max_message_bytes) {
            return Err(ConfigError::Invalid {
                key: "limits.max_message_bytes",
                value: self.limits.max_message_bytes.to_string(),
                reason: "must be between 65536 and 268435456 bytes",
            });
        }
        self.counters.validate()?;
        self.validate_security_limits()
    }

    fn validate_security_limits(&self) -> Result<(), ConfigError> {
        let limits = &self.limits;
        check_range(
            "tls.expiry_warning_days",
            self.tls.expiry_warning_days,
            0..=3650,
            "must be between 0 and 3650 days",
        )?;
        check_range(
            "limits.max_batches_in_flight",
            limits.max_batches_in_flight,
            1..=1024,
            "must be between 1 and 1024",
        )?;
        check_range(
            "limits.max_string_bytes",
            limits.max_string_bytes,
            16..=65_536,
            "must be between 16 and 65536 bytes",
        )?;
        check_range(
            "limits.records_per_second",
            limits.records_per_second,
            1..=1_000_000,
            "must be between 1 and 1000000",
        )?;
        check_range(
            "limits.burst_records",
            limits.burst_records,
            limits.max_batch_records..=10_000_000,
            "must be at least limits.max_batch_records and at most 10000000, so that a full batch can pass",
        )?;
        // A full batch that finds the budget empty waits max_batch_records / records_per_second.
        let full_batch_ms = (u64::from(limits.max_batch_records) * 1000)
            .div_ceil(u64::from(limits.records_per_second));
        check_range(
            "limits.max_rate_hold_ms",
            limits.max_rate_hold_ms,
            full_batch_ms..=600_000,
            "must be at most 600000 and at least 1000 * limits.max_batch_records / limits.records_per_second, so that a full batch can pass after one hold",
        )?;
        check_range(
            "limits.max_streams_per_agent",
            limits.max_streams_per_agent,
            1..=64,
            "must be between 1 and 64",
        )?;
        check_range(
            "limits.max_connections",
            limits.max_connections,
            1..=1_000_000,
            "must be between 1 and 1000000",
        )?;
        check_range(
            "limits.handshake_timeout_ms",
            limits.handshake_timeout_ms,
            100..=300_000,
            "must be between 100 and 300000 milliseconds",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        std::fs::write(
            &path,
            "[tls]\ncert = \"hub.crt\"\nkey = \"hub.key\"\nclient_ca = \"ca.crt\"\n",
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.database, dir.path().join(DEFAULT_DATABASE));
        assert_eq!(config.tls.client_ca, dir.path().join("ca.crt"));
        assert_eq!(config.limits.max_batch_records, DEFAULT_MAX_BATCH_RECORDS);
    }

    #[test]
    fn out_of_range_limit_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        std::fs::write(
            &path,
            "[tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n[limits]\nmax_batch_records = 0\n",
        )
        .unwrap();
        let message = Config::load(&path).unwrap_err().to_string();
        assert!(
            message.contains("limits.max_batch_records = 0"),
            "{message}"
        );
    }

    #[test]
    fn security_keys_parse_and_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        std::fs::write(
            &path,
            "[tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\nrevoked_serials = \"revoked.txt\"\ncrl = \"ca.crl\"\nexpiry_warning_days = 14\n[limits]\nrecords_per_second = 50\nmax_streams_per_agent = 1\n",
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(
            config.tls.revoked_serials,
            Some(dir.path().join("revoked.txt"))
        );
        assert_eq!(config.tls.crl, Some(dir.path().join("ca.crl")));
        assert_eq!(config.tls.expiry_warning_days, 14);
        assert_eq!(config.limits.records_per_second, 50);
        assert_eq!(config.limits.max_streams_per_agent, 1);
        assert_eq!(config.limits.burst_records, DEFAULT_BURST_RECORDS);
    }

    #[test]
    fn burst_below_batch_is_rejected() {
        let mut config: Config =
            toml::from_str("[tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n").unwrap();
        config.limits.burst_records = config.limits.max_batch_records - 1;
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("limits.burst_records = 999"), "{message}");
    }

    #[test]
    fn rate_hold_shorter_than_full_batch_is_rejected() {
        let mut config: Config =
            toml::from_str("[tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n").unwrap();
        assert!(config.validate().is_ok(), "the defaults are valid");
        // 1000 records at 10 a second need a hold of 100 s.
        config.limits.records_per_second = 10;
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.contains("limits.max_rate_hold_ms = 20000"),
            "{message}"
        );
        config.limits.max_rate_hold_ms = 100_000;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn catalogue_keys_choose_catalogue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        let tls = "[tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n";

        std::fs::write(&path, tls).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.indicator_catalogue().unwrap().version, "dvcqg-2026");

        std::fs::write(&path, format!("catalogue = \"766-2022\"\n{tls}")).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.indicator_catalogue().unwrap().version, "766-2022");

        std::fs::write(&path, format!("catalogue_file = \"custom.toml\"\n{tls}")).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.catalogue_file, Some(dir.path().join("custom.toml")));
        let message = config.indicator_catalogue().unwrap_err().to_string();
        assert!(message.contains("custom.toml"), "{message}");

        let both = format!("catalogue = \"766-2022\"\ncatalogue_file = \"x.toml\"\n{tls}");
        std::fs::write(&path, both).unwrap();
        let message = Config::load(&path).unwrap_err().to_string();
        assert!(message.contains("catalogue = 766-2022"), "{message}");
    }

    #[test]
    fn units_file_extends_builtin_ministries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        let tls = "[tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n";

        std::fs::write(&path, tls).unwrap();
        let config = Config::load(&path).unwrap();
        let official = config.unit_catalogue().unwrap();
        assert!(std::ptr::eq(official, UnitCatalogue::official()));

        std::fs::write(&path, format!("units_file = \"ministries.toml\"\n{tls}")).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.units_file, Some(dir.path().join("ministries.toml")));
        let missing = config.unit_catalogue().unwrap_err().to_string();
        assert!(missing.contains("ministries.toml"), "{missing}");

        let units = "version = \"tax-2026\"\nbase = \"ministries-2025\"\n[[unit]]\ncode = \"TCT\"\nname = \"Cục Thuế\"\nparent = \"BTC\"\n";
        std::fs::write(dir.path().join("ministries.toml"), units).unwrap();
        let catalogue = config.unit_catalogue().unwrap();
        assert_eq!(catalogue.get("TCT").unwrap().province_code, "BTC");
        assert!(catalogue.get("BYT").is_some());
        assert!(
            catalogue
                .version()
                .ends_with("+ ministries-2025 + tax-2026")
        );

        let cycle = "version = \"x\"\n[[unit]]\ncode = \"AB\"\nname = \"a\"\nparent = \"AB\"\n";
        std::fs::write(dir.path().join("ministries.toml"), cycle).unwrap();
        let message = config.unit_catalogue().unwrap_err().to_string();
        assert!(message.contains("[[unit]] 1 (code \"AB\")"), "{message}");
        assert!(message.contains("parent cycle AB -> AB"), "{message}");
    }
}
