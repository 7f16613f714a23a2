//! Command-line arguments of the `chiso-certs` binary and their dispatch to [`crate::commands`].

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::{self, InitOptions};
use crate::revocation::{self, DEFAULT_CRL_DAYS};
use crate::{
    Ca, CertError, DEFAULT_AGENT_DAYS, DEFAULT_HUB_DAYS, DEFAULT_HUB_HOSTS, DEFAULT_OPERATOR_DAYS,
};

/// Makes the CA and the hub, agent and operator certificates of chiso (ECDSA P-256).
#[derive(Debug, Parser)]
#[command(name = "chiso-certs", version)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// One `chiso-certs` command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generates a new CA in DIR and signs a hub certificate and the requested agent and
    /// operator certificates with it. Fails if DIR/ca.key exists.
    Init {
        /// Directory that receives ca.{crt,key}, hub.{crt,key} and the leaf files.
        #[arg(long)]
        dir: PathBuf,
        /// Province code that gets an agent certificate (repeatable; none by default).
        #[arg(long = "province")]
        provinces: Vec<String>,
        /// Ministry code, such as BTC, that gets an agent certificate (repeatable; none by
        /// default).
        #[arg(long = "ministry")]
        ministries: Vec<String>,
        /// DNS name or IP address of the hub (repeatable).
        #[arg(long = "hub-host", default_values = DEFAULT_HUB_HOSTS)]
        hub_hosts: Vec<String>,
        /// Operator name that gets an operator certificate (repeatable).
        #[arg(long = "operator")]
        operators: Vec<String>,
    },
    /// Signs an agent certificate for a province or ministry with the CA in --ca-dir.
    IssueAgent {
        /// Directory containing ca.crt and ca.key.
        #[arg(long)]
        ca_dir: PathBuf,
        /// Province or ministry code of the agent, such as 79 or BTC.
        #[arg(long)]
        locality: String,
        /// Validity in days, 1 to 3650.
        #[arg(long, default_value_t = DEFAULT_AGENT_DAYS)]
        days: u32,
        /// Output directory [default: the CA directory].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Signs a hub certificate with the CA in --ca-dir.
    IssueHub {
        /// Directory containing ca.crt and ca.key.
        #[arg(long)]
        ca_dir: PathBuf,
        /// DNS name or IP address of the hub (repeatable).
        #[arg(long = "host", default_values = DEFAULT_HUB_HOSTS)]
        hosts: Vec<String>,
        /// Validity in days, 1 to 3650.
        #[arg(long, default_value_t = DEFAULT_HUB_DAYS)]
        days: u32,
        /// Output directory [default: the CA directory].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Signs an operator certificate with the CA in --ca-dir.
    IssueOperator {
        /// Directory containing ca.crt and ca.key.
        #[arg(long)]
        ca_dir: PathBuf,
        /// Operator name: 1 to 64 ASCII letters, digits, '-', '_' or '.'.
        #[arg(long)]
        name: String,
        /// Validity in days, 1 to 3650.
        #[arg(long, default_value_t = DEFAULT_OPERATOR_DAYS)]
        days: u32,
        /// Output directory [default: the CA directory].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Issues a new certificate and key for the identity (or hub hosts) of an existing
    /// certificate and writes them over it and its .key file.
    Renew {
        /// Directory containing ca.crt and ca.key.
        #[arg(long)]
        ca_dir: PathBuf,
        /// PEM certificate to renew; its key is the .key file beside it.
        #[arg(long)]
        cert: PathBuf,
        /// Validity in days, 1 to 3650 [default: 90 for agents and operators, 365 for the hub].
        #[arg(long)]
        days: Option<u32>,
    },
    /// Revokes a certificate: adds its serial to CA_DIR/revoked.txt and signs a new
    /// CA_DIR/ca.crl. A running hub rejects the certificate from its next connection on.
    Revoke {
        /// Directory containing ca.crt and ca.key.
        #[arg(long)]
        ca_dir: PathBuf,
        /// PEM certificate to revoke.
        #[arg(long, required_unless_present = "serial", conflicts_with = "serial")]
        cert: Option<PathBuf>,
        /// Serial number to revoke, in hex as `show` prints it.
        #[arg(long)]
        serial: Option<String>,
        /// Days until the new CRL's nextUpdate, 1 to 3650.
        #[arg(long, default_value_t = DEFAULT_CRL_DAYS)]
        crl_days: u32,
    },
    /// Signs a new CA_DIR/ca.crl from CA_DIR/revoked.txt, for example before its nextUpdate.
    Crl {
        /// Directory containing ca.crt and ca.key.
        #[arg(long)]
        ca_dir: PathBuf,
        /// Days until the new CRL's nextUpdate, 1 to 3650.
        #[arg(long, default_value_t = DEFAULT_CRL_DAYS)]
        crl_days: u32,
    },
    /// Prints the identity, serial, validity and days left of a certificate.
    Show {
        /// PEM certificate file.
        file: PathBuf,
    },
}

/// Result of a command: the files it wrote, or a text to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Paths of the files written.
    Written(Vec<PathBuf>),
    /// A description of a certificate.
    Text(String),
}

impl Command {
    /// Returns the subcommand name, for error context.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Init { .. } => "init",
            Command::IssueAgent { .. } => "issue-agent",
            Command::IssueHub { .. } => "issue-hub",
            Command::IssueOperator { .. } => "issue-operator",
            Command::Renew { .. } => "renew",
            Command::Revoke { .. } => "revoke",
            Command::Crl { .. } => "crl",
            Command::Show { .. } => "show",
        }
    }

    /// Runs the command; `now` (Unix seconds) is the moment `show` counts days left from and the
    /// issue time of a CRL.
    pub fn run(self, now: i64) -> Result<Output, CertError> {
        let pair = |(cert, key)| Output::Written(vec![cert, key]);
        let now_time = time::OffsetDateTime::from_unix_timestamp(now)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        match self {
            Command::Init {
                dir,
                provinces,
                ministries,
                hub_hosts,
                operators,
            } => {
                let options = InitOptions {
                    dir,
                    provinces: provinces.into_iter().chain(ministries).collect(),
                    hub_hosts,
                    operators,
                    agent_days: DEFAULT_AGENT_DAYS,
                    hub_days: DEFAULT_HUB_DAYS,
                    operator_days: DEFAULT_OPERATOR_DAYS,
                };
                commands::init(&options).map(Output::Written)
            }
            Command::IssueAgent {
                ca_dir,
                locality,
                days,
                out,
            } => {
                let out = out.unwrap_or_else(|| ca_dir.clone());
                commands::issue_agent(&ca_dir, &locality, days, &out).map(pair)
            }
            Command::IssueHub {
                ca_dir,
                hosts,
                days,
                out,
            } => {
                let out = out.unwrap_or_else(|| ca_dir.clone());
                commands::issue_hub(&ca_dir, &hosts, days, &out).map(pair)
            }
            Command::IssueOperator {
                ca_dir,
                name,
                days,
                out,
            } => {
                let out = out.unwrap_or_else(|| ca_dir.clone());
                commands::issue_operator(&ca_dir, &name, days, &out).map(pair)
            }
            Command::Renew { ca_dir, cert, days } => {
                let renewal = crate::renew(&ca_dir, &cert, days)?;
                Ok(Output::Text(renewal.describe(&ca_dir)))
            }
            Command::Revoke {
                ca_dir,
                cert,
                serial,
                crl_days,
            } => {
                let written = match (cert, serial) {
                    (Some(cert), _) => commands::revoke_cert(&ca_dir, &cert, now_time, crl_days)?,
                    (None, Some(serial)) => {
                        let label = "serial given on the command line";
                        revocation::revoke(&ca_dir, &serial, label, now_time, crl_days)?
                    }
                    (None, None) => {
                        return Err(CertError::InvalidSerial {
                            serial: String::new(),
                            reason: "neither --cert nor --serial was given",
                        });
                    }
                };
                Ok(pair(written))
            }
            Command::Crl { ca_dir, crl_days } => {
                let ca = Ca::load_dir(&ca_dir)?;
                let crl = revocation::write_crl(&ca, &ca_dir, now_time, crl_days)?;
                Ok(Output::Written(vec![crl]))
            }
            Command::Show { file } => commands::show(&file, now).map(Output::Text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn init_defaults() {
        let cli = Cli::try_parse_from(["chiso-certs", "init", "--dir", "d"]).unwrap();
        let Command::Init {
            provinces,
            hub_hosts,
            operators,
            ..
        } = cli.command
        else {
            panic!("parsed as another command");
        };
        assert!(provinces.is_empty());
        assert_eq!(hub_hosts, ["localhost", "127.0.0.1"]);
        assert!(operators.is_empty());
    }

    #[test]
    fn issue_agent_defaults() {
        let cli = Cli::try_parse_from([
            "chiso-certs",
            "issue-agent",
            "--ca-dir",
            "d",
            "--locality",
            "79",
        ])
        .unwrap();
        let Command::IssueAgent { days, out, .. } = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(days, 90);
        assert_eq!(out, None);
    }

    #[test]
    fn init_then_show_through_cli() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_str().unwrap();
        let init = Cli::try_parse_from(["chiso-certs", "init", "--dir", dir, "--province", "01"]);
        let Output::Written(paths) = init.unwrap().command.run(0).unwrap() else {
            panic!("init printed text instead of writing files");
        };
        assert_eq!(paths.len(), 8);

        let file = temp.path().join("agent-01.crt");
        let ministry = tempfile::tempdir().unwrap();
        let dir = ministry.path().to_str().unwrap();
        let init = Cli::try_parse_from(["chiso-certs", "init", "--dir", dir, "--ministry", "BTC"]);
        let Output::Written(ministry_paths) = init.unwrap().command.run(0).unwrap() else {
            panic!("init printed text instead of writing files");
        };
        assert!(ministry_paths.contains(&ministry.path().join("agent-BTC.crt")));

        let show = Cli::try_parse_from(["chiso-certs", "show", file.to_str().unwrap()]);
        let Output::Text(text) = show.unwrap().command.run(0).unwrap() else {
            panic!("show wrote files instead of printing");
        };
        assert!(text.contains("spiffe://chiso/agent/01"), "{text}");
    }

    #[test]
    fn revoke_needs_cert_or_serial() {
        let missing = Cli::try_parse_from(["chiso-certs", "revoke", "--ca-dir", "d"]);
        assert!(missing.is_err());
        let both = Cli::try_parse_from([
            "chiso-certs",
            "revoke",
            "--ca-dir",
            "d",
            "--cert",
            "a.crt",
            "--serial",
            "0a",
        ]);
        assert!(both.is_err());
    }

    #[test]
    fn renew_then_revoke_through_cli() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_str().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let init = Cli::try_parse_from(["chiso-certs", "init", "--dir", dir, "--province", "79"]);
        init.unwrap().command.run(now).unwrap();
        let cert = temp.path().join("agent-79.crt");
        let cert_arg = cert.to_str().unwrap();

        let renew =
            Cli::try_parse_from(["chiso-certs", "renew", "--ca-dir", dir, "--cert", cert_arg]);
        let Output::Text(text) = renew.unwrap().command.run(now).unwrap() else {
            panic!("renew wrote no description");
        };
        assert!(text.contains("chiso-certs revoke"), "{text}");

        let revoke =
            Cli::try_parse_from(["chiso-certs", "revoke", "--ca-dir", dir, "--cert", cert_arg]);
        let Output::Written(paths) = revoke.unwrap().command.run(now).unwrap() else {
            panic!("revoke printed text instead of writing files");
        };
        assert_eq!(
            paths,
            [temp.path().join("revoked.txt"), temp.path().join("ca.crl")]
        );
        let listed = revocation::read_revoked_serials(&paths[0]).unwrap();
        let renewed = crate::read_identity(&std::fs::read_to_string(&cert).unwrap()).unwrap();
        assert_eq!(listed, [renewed.serial_hex]);
    }
}
