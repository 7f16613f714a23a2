//! The agent's configuration: one TOML file, command-line overrides, and validation before
//! anything opens the outbox or the network.
//!
//! Every default lives in this file and the README's configuration table mirrors it. An invalid
//! configuration is reported with the key and the value, and never touches the outbox.

use chiso_proto::units::UnitCatalogue;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default hub address: the hub's default listener on this machine.
pub const DEFAULT_HUB_URL: &str = "https://localhost:7443";
/// Default outbox file, relative to the working directory.
pub const DEFAULT_OUTBOX: &str = "chiso-agent.db";
/// Default number of records per batch.
pub const DEFAULT_BATCH_RECORDS: usize = 500;
/// Default number of batches sent before the first is acknowledged.
pub const DEFAULT_WINDOW: usize = 4;
/// Default pause between outbox polls when nothing is pending, in milliseconds.
pub const DEFAULT_POLL_MS: u64 = 1_000;
/// Default cap of the reconnect backoff, in milliseconds.
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 60_000;
/// Default wait for the hub's answer to Hello or to the oldest batch in flight, in milliseconds.
pub const DEFAULT_ACK_TIMEOUT_MS: u64 = 60_000;
/// Default largest outbox file (pages in use), in bytes: 2 GiB.
///
/// NOTE: a guess sized for a province's week-long outage (about 150 bytes per pending record
/// plus the ledger); confidence medium. Operators size it to their disk.
pub const DEFAULT_OUTBOX_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Default pause between scans of the inbox folder, in milliseconds.
pub const DEFAULT_INBOX_SCAN_MS: u64 = 2_000;
/// Default pause between completeness digests while a session is open, in seconds.
pub const DEFAULT_RECONCILE_INTERVAL_S: u64 = 3_600;
/// Default number of recent days of receipt that each completeness digest covers: two months,
/// so the current and the previous scoring month are always compared.
pub const DEFAULT_RECONCILE_WINDOW_DAYS: u32 = 62;
/// Default number of days the payload of an acknowledged record is kept for resending: a little
/// over one month, so a gap found in the month after a record was sent can still be filled.
pub const DEFAULT_RETENTION_DAYS: u32 = 35;

/// The whole agent configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Province or ministry code this agent serves; must match the URI SAN of its certificate.
    pub locality: String,
    /// Hub address, `https://host:port`.
    #[serde(default = "default_hub_url")]
    pub hub_url: String,
    /// Path of the SQLite outbox.
    #[serde(default = "default_outbox")]
    pub outbox: PathBuf,
    /// Client certificate, key and the CA that signed the hub's certificate.
    pub tls: TlsConfig,
    /// Push loop settings.
    #[serde(default)]
    pub push: PushConfig,
    /// Source agency ids (such as `000.00.01.H22`) mapped to unit catalogue codes.
    #[serde(default)]
    pub agency_map: HashMap<String, String>,
    /// Outbox size limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Intake served by `chiso-agent run`: HTTP and an inbox folder.
    #[serde(default)]
    pub intake: IntakeConfig,
    /// Completeness digests and the retention of acknowledged payloads.
    #[serde(default)]
    pub reconcile: ReconcileConfig,
    /// Ministry catalogue file (TOML) that extends or replaces the built-in ministries, the same
    /// file as the hub's `units_file`.
    #[serde(default)]
    pub units_file: Option<PathBuf>,
}

/// Outbox size limits; intake is refused while the outbox is at a limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest outbox file, counting pages in use, in bytes.
    pub outbox_max_bytes: u64,
    /// Most records waiting for the hub; no limit when absent.
    pub outbox_max_records: Option<u64>,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            outbox_max_bytes: DEFAULT_OUTBOX_MAX_BYTES,
            outbox_max_records: None,
        }
    }
}

/// Intake served by `chiso-agent run` besides `chiso-agent ingest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeConfig {
    /// Address of the plain-HTTP intake (`POST /v1/dossiers`); none when absent.
    pub listen: Option<std::net::SocketAddr>,
    /// Allow `listen` on an address other than loopback (the intake has no TLS).
    pub allow_non_loopback: bool,
    /// Folder whose `*.json` files are taken in; none when absent.
    pub inbox: Option<PathBuf>,
    /// Pause between scans of the inbox, in milliseconds.
    pub scan_ms: u64,
}

impl Default for IntakeConfig {
    fn default() -> IntakeConfig {
        IntakeConfig {
            listen: None,
            allow_non_loopback: false,
            inbox: None,
            scan_ms: DEFAULT_INBOX_SCAN_MS,
        }
    }
}

/// TLS files, PEM encoded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The agent's certificate.
    pub cert: PathBuf,
    /// The agent's private key.
    pub key: PathBuf,
    /// The CA certificate that signed the hub's certificate.
    pub ca: PathBuf,
    /// Name the hub's certificate must carry; defaults to the host of `hub_url`.
    #[serde(default)]
    pub server_name: Option<String>,
}

/// Push loop settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Records per batch.
    pub batch_records: usize,
    /// Batches in flight before the first is acknowledged.
    pub window: usize,
    /// Pause between outbox polls when nothing is pending, in milliseconds.
    pub poll_ms: u64,
    /// Cap of the reconnect backoff, in milliseconds.
    pub max_backoff_ms: u64,
    /// Maximum wait for the response to Hello or to the oldest batch in flight before the
    /// session is dropped as stalled, in milliseconds.
    pub ack_timeout_ms: u64,
}

impl Default for PushConfig {
    fn default() -> PushConfig {
        PushConfig {
            batch_records: DEFAULT_BATCH_RECORDS,
            window: DEFAULT_WINDOW,
            poll_ms: DEFAULT_POLL_MS,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
            ack_timeout_ms: DEFAULT_ACK_TIMEOUT_MS,
        }
    }
}

impl PushConfig {
    /// Returns the poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `units_file` could not be loaded.
    #[error("invalid units_file: {0}")]
    Units(#[from] chiso_proto::ministries::MinistryFileError),
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
    #[error("invalid config value {key} = {value:?}: {reason}")]
    Invalid {
        /// The key, dotted.
        key: &'static str,
        /// The rejected value.
        value: String,
        /// What is allowed.
        reason: String,
    },
}

fn default_hub_url() -> String {
    DEFAULT_HUB_URL.to_string()
}

fn default_outbox() -> PathBuf {
    PathBuf::from(DEFAULT_OUTBOX)
}

impl Config {
    /// Reads and validates a configuration file. Relative paths inside it are taken relative
    /// to the file's folder, so a config can travel with its certificates.
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
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        for path in [
            &mut self.outbox,
            &mut self.tls.cert,
            &mut self.tls.key,
            &mut self.tls.ca,
        ] {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        if let Some(inbox) = self
            .intake
            .inbox
            .as_mut()
            .filter(|inbox| inbox.is_relative())
        {
            *inbox = base.join(&*inbox);
        }
        if let Some(file) = self.units_file.as_mut().filter(|file| file.is_relative()) {
            *file = base.join(&*file);
        }
    }

    /// Loads the unit catalogue: the official provinces and communes with the ministries of
    /// `units_file`, or with the built-in ministries when it is not set. A loaded catalogue is
    /// kept for the life of the process.
    pub fn unit_catalogue(&self) -> Result<&'static UnitCatalogue, ConfigError> {
        let Some(path) = &self.units_file else {
            return Ok(UnitCatalogue::official());
        };
        let catalogue = UnitCatalogue::with_ministry_file(path)?;
        Ok(Box::leak(Box::new(catalogue)))
    }

    /// Checks every value; called by [`Config::load`] and again after command-line overrides.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let catalogue = self.unit_catalogue()?;
        if !catalogue.is_locality(&self.locality) {
            return Err(invalid(
                "locality",
                &self.locality,
                "must be a province code of the 2025 unit catalogue, such as \"01\", or a ministry code, such as \"BTC\"",
            ));
        }

        let url_ok = self.hub_url.starts_with("https://") && self.hub_url.len() > "https://".len();
        if !url_ok {
            return Err(invalid(
                "hub_url",
                &self.hub_url,
                "must start with https:// because the hub only speaks mutual TLS",
            ));
        }

        if !(1..=10_000).contains(&self.push.batch_records) {
            return Err(invalid(
                "push.batch_records",
                &self.push.batch_records.to_string(),
                "must be between 1 and 10000",
            ));
        }
        if !(1..=64).contains(&self.push.window) {
            return Err(invalid(
                "push.window",
                &self.push.window.to_string(),
                "must be between 1 and 64",
            ));
        }
        if !(10..=600_000).contains(&self.push.poll_ms) {
            return Err(invalid(
                "push.poll_ms",
                &self.push.poll_ms.to_string(),
                "must be between 10 and 600000 milliseconds",
            ));
        }
        if !(100..=3_600_000).contains(&self.push.max_backoff_ms) {
            return Err(invalid(
                "push.max_backoff_ms",
                &self.push.max_backoff_ms.to_string(),
                "must be between 100 and 3600000 milliseconds",
            ));
        }
        if !(1_000..=3_600_000).contains(&self.push.ack_timeout_ms) {
            return Err(invalid(
                "push.ack_timeout_ms",
                &self.push.ack_timeout_ms.to_string(),
                "must be between 1000 and 3600000 milliseconds",
            ));
        }
        self.validate_limits_and_intake()?;
        self.reconcile.validate()?;

        for (agency, code) in &self.agency_map {
            if !catalogue.is_within(code, &self.locality) {
                return Err(invalid(
                    "agency_map",
                    &format!("{agency} = {code}"),
                    &format!(
                        "the target must be this locality ({}) or one of its units in the unit catalogue",
                        self.locality
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_limits_and_intake(&self) -> Result<(), ConfigError> {
        if self.limits.outbox_max_bytes < 1024 * 1024 {
            return Err(invalid(
                "limits.outbox_max_bytes",
                &self.limits.outbox_max_bytes.to_string(),
                "must be at least 1048576 (1 MiB)",
            ));
        }
        if self.limits.outbox_max_records == Some(0) {
            return Err(invalid(
                "limits.outbox_max_records",
                "0",
                "must be at least 1; leave it out for no record limit",
            ));
        }
        if let Some(listen) = self.intake.listen
            && !listen.ip().is_loopback()
            && !self.intake.allow_non_loopback
        {
            return Err(invalid(
                "intake.listen",
                &listen.to_string(),
                "must be a loopback address such as 127.0.0.1:8088, because the intake speaks plain HTTP without authentication; set intake.allow_non_loopback = true only behind a TLS proxy on this machine",
            ));
        }
        if !(100..=3_600_000).contains(&self.intake.scan_ms) {
            return Err(invalid(
                "intake.scan_ms",
                &self.intake.scan_ms.to_string(),
                "must be between 100 and 3600000 milliseconds",
            ));
        }
        Ok(())
    }

    /// Returns the TLS server name: `tls.server_name`, else the host of `hub_url`.
    pub fn server_name(&self) -> String {
        if let Some(name) = &self.tls.server_name {
            return name.clone();
        }
        let rest = self.hub_url.trim_start_matches("https://");
        let host_port = rest.split('/').next().unwrap_or(rest);
        match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6).to_string(),
            None => host_port
                .rsplit_once(':')
                .map_or(host_port, |(h, _)| h)
                .to_string(),
        }
    }
}

/// Completeness digests and the retention of acknowledged payloads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileConfig {
    /// Send completeness digests when the hub supports them.
    pub enabled: bool,
    /// Pause between digests while a session is open, in seconds. Every session also sends one
    /// as soon as its backlog is drained.
    pub interval_s: u64,
    /// Recent days of receipt, today included, that each digest covers.
    pub window_days: u32,
    /// Days an acknowledged record's payload is kept so that a gap can be resent.
    pub retention_days: u32,
}

impl Default for ReconcileConfig {
    fn default() -> ReconcileConfig {
        ReconcileConfig {
            enabled: true,
            interval_s: DEFAULT_RECONCILE_INTERVAL_S,
            window_days: DEFAULT_RECONCILE_WINDOW_DAYS,
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

impl ReconcileConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(60..=604_800).contains(&self.interval_s) {
            return Err(invalid(
                "reconcile.interval_s",
                &self.interval_s.to_string(),
                "must be between 60 and 604800 seconds",
            ));
        }
        let max_window = chiso_proto::digest::MAX_WINDOW_DAYS;
        if !(1..=max_window).contains(&self.window_days) {
            return Err(invalid(
                "reconcile.window_days",
                &self.window_days.to_string(),
                &format!("must be between 1 and {max_window} days"),
            ));
        }
        if !(1..=3_650).contains(&self.retention_days) {
            return Err(invalid(
                "reconcile.retention_days",
                &self.retention_days.to_string(),
                "must be between 1 and 3650 days",
            ));
        }
        Ok(())
    }
}

fn invalid(key: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("agent.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    const TLS: &str = "[tls]\ncert = \"a.crt\"\nkey = \"a.key\"\nca = \"ca.crt\"\n";

    #[test]
    fn minimal_config_gets_defaults_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &format!("locality = \"01\"\n{TLS}"));
        let config = Config::load(&path).unwrap();
        assert_eq!(config.hub_url, DEFAULT_HUB_URL);
        assert_eq!(config.outbox, dir.path().join(DEFAULT_OUTBOX));
        assert_eq!(config.tls.cert, dir.path().join("a.crt"));
        assert_eq!(config.push.batch_records, DEFAULT_BATCH_RECORDS);
        assert_eq!(config.server_name(), "localhost");
    }

    #[test]
    fn ministry_locality_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("locality = \"BTC\"\n[agency_map]\n\"G01\" = \"BTC\"\n{TLS}");
        let config = Config::load(&write(dir.path(), &text)).unwrap();
        assert_eq!(config.locality, "BTC");

        let foreign = format!("locality = \"BTC\"\n[agency_map]\n\"H26\" = \"00004\"\n{TLS}");
        let message = Config::load(&write(dir.path(), &foreign))
            .unwrap_err()
            .to_string();
        assert!(message.contains("H26 = 00004"), "{message}");
        let unknown = Config::load(&write(dir.path(), &format!("locality = \"BXYZ\"\n{TLS}")))
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("\"BTC\""), "{unknown}");
    }

    #[test]
    fn units_file_adds_ministry_units() {
        let dir = tempfile::tempdir().unwrap();
        let units = "version = \"units-test\"\nbase = \"ministries-2025\"\n[[unit]]\ncode = \"TCT\"\nname = \"Cục Thuế\"\nparent = \"BTC\"\n";
        std::fs::write(dir.path().join("ministries.toml"), units).unwrap();

        // Without the file, TCT is unknown; with it, TCT is a unit of BTC.
        let mapped = "locality = \"BTC\"\n[agency_map]\n\"G02\" = \"TCT\"\n";
        let without = Config::load(&write(dir.path(), &format!("{mapped}{TLS}")));
        assert!(without.is_err());
        let text = format!("units_file = \"ministries.toml\"\n{mapped}{TLS}");
        let config = Config::load(&write(dir.path(), &text)).unwrap();
        assert_eq!(config.units_file, Some(dir.path().join("ministries.toml")));
        let catalogue = config.unit_catalogue().unwrap();
        assert!(catalogue.is_within("TCT", "BTC"));

        // A broken file is an error naming the file's problem, not a silent fallback.
        std::fs::write(dir.path().join("ministries.toml"), "version = 1").unwrap();
        let message = Config::load(&write(dir.path(), &text))
            .unwrap_err()
            .to_string();
        assert!(message.contains("units_file"), "{message}");
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            &format!("locality = \"01\"\nhub = \"x\"\n{TLS}"),
        );
        let message = Config::load(&path).unwrap_err().to_string();
        assert!(message.contains("hub"), "{message}");
    }

    #[test]
    fn invalid_values_name_key_and_value() {
        let dir = tempfile::tempdir().unwrap();
        // Top-level keys, then tables after [tls], then the key the error must name.
        let cases = [
            ("locality = \"00004\"\n", "", "locality"),
            (
                "locality = \"01\"\nhub_url = \"http://hub:7443\"\n",
                "",
                "hub_url",
            ),
            ("locality = \"01\"\n", "[push]\nwindow = 0\n", "push.window"),
            (
                "locality = \"01\"\n",
                "[intake]\nlisten = \"0.0.0.0:8088\"\n",
                "intake.listen",
            ),
            (
                "locality = \"01\"\n",
                "[limits]\noutbox_max_records = 0\n",
                "limits.outbox_max_records",
            ),
            (
                "locality = \"01\"\n",
                "[reconcile]\nwindow_days = 401\n",
                "reconcile.window_days",
            ),
            (
                "locality = \"01\"\n",
                "[reconcile]\ninterval_s = 5\n",
                "reconcile.interval_s",
            ),
            (
                "locality = \"01\"\n",
                "[agency_map]\n\"H22\" = \"25747\"\n",
                "agency_map",
            ),
        ];
        for (top, tables, key) in cases {
            let path = write(dir.path(), &format!("{top}{TLS}{tables}"));
            let message = Config::load(&path).unwrap_err().to_string();
            assert!(message.contains(key), "{key}: {message}");
        }
    }

    #[test]
    fn intake_and_limits_parse_with_relative_inbox() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            &format!(
                "locality = \"01\"\n{TLS}[limits]\noutbox_max_records = 5000\n[intake]\nlisten = \"10.0.0.5:8088\"\nallow_non_loopback = true\ninbox = \"in\"\n"
            ),
        );
        let config = Config::load(&path).unwrap();
        assert_eq!(config.limits.outbox_max_records, Some(5000));
        assert_eq!(config.limits.outbox_max_bytes, DEFAULT_OUTBOX_MAX_BYTES);
        assert_eq!(config.intake.listen, Some("10.0.0.5:8088".parse().unwrap()));
        assert_eq!(config.intake.inbox, Some(dir.path().join("in")));
        assert_eq!(config.intake.scan_ms, DEFAULT_INBOX_SCAN_MS);
        assert_eq!(config.push.ack_timeout_ms, DEFAULT_ACK_TIMEOUT_MS);
    }

    #[test]
    fn reconcile_defaults_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &format!("locality = \"01\"\n{TLS}"));
        let defaults = Config::load(&path).unwrap().reconcile;
        assert!(defaults.enabled);
        assert_eq!(defaults.interval_s, DEFAULT_RECONCILE_INTERVAL_S);
        assert_eq!(defaults.window_days, DEFAULT_RECONCILE_WINDOW_DAYS);
        assert_eq!(defaults.retention_days, DEFAULT_RETENTION_DAYS);

        let path = write(
            dir.path(),
            &format!(
                "locality = \"01\"\n{TLS}[reconcile]\nenabled = false\ninterval_s = 600\nwindow_days = 31\nretention_days = 90\n"
            ),
        );
        let set = Config::load(&path).unwrap().reconcile;
        assert!(!set.enabled);
        assert_eq!(set.interval_s, 600);
        assert_eq!(set.window_days, 31);
        assert_eq!(set.retention_days, 90);
    }

    #[test]
    fn server_name_from_ip_and_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            &format!("locality = \"79\"\nhub_url = \"https://127.0.0.1:9000\"\n{TLS}"),
        );
        let mut config = Config::load(&path).unwrap();
        assert_eq!(config.server_name(), "127.0.0.1");
        config.tls.server_name = Some("hub.example".into());
        assert_eq!(config.server_name(), "hub.example");
    }
}
