//! The hub's configuration: one TOML file, command-line overrides, validation before anything
//! binds. Every default lives here and the README's configuration table mirrors it.

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
}

/// Limits applied to every agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest batch, in records.
    pub max_batch_records: u32,
    /// Largest decoded gRPC message, in bytes.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_batch_records: DEFAULT_MAX_BATCH_RECORDS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
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
        for file in [
            &mut config.database,
            &mut config.tls.cert,
            &mut config.tls.key,
            &mut config.tls.client_ca,
        ] {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        Ok(())
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
}
