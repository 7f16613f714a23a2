//! The agent's configuration: one TOML file, command-line overrides, and validation before
//! anything opens the outbox or the network.
//!
//! Every default lives in this file and the README's configuration table mirrors it. An invalid
//! configuration is reported with the key and the value, and never touches the outbox.

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

/// The whole agent configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Province code this agent serves; must match the URI SAN of its certificate.
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
}

impl Default for PushConfig {
    fn default() -> PushConfig {
        PushConfig {
            batch_records: DEFAULT_BATCH_RECORDS,
            window: DEFAULT_WINDOW,
            poll_ms: DEFAULT_POLL_MS,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
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
    }

    /// Checks every value; called by [`Config::load`] and again after command-line overrides.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let catalogue = chiso_proto::units::UnitCatalogue::official();
        let is_province = catalogue
            .get(&self.locality)
            .is_some_and(|unit| unit.province_code == self.locality);
        if !is_province {
            return Err(invalid(
                "locality",
                &self.locality,
                "must be a two-digit province code of the 2025 unit catalogue, such as \"01\"",
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

        for (agency, code) in &self.agency_map {
            if !catalogue.is_within(code, &self.locality) {
                return Err(invalid(
                    "agency_map",
                    &format!("{agency} = {code}"),
                    &format!(
                        "the target must be this locality ({}) or one of its communes in the 2025 unit catalogue",
                        self.locality
                    ),
                ));
            }
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
