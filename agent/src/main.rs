//! The `chiso-agent` command: parses the command line, sets up logging and runs a command.

mod commands;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Buffers a locality's administrative-procedure records and pushes them to chiso-hub.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Push the outbox to the hub, reconnecting with backoff, until stopped; also serves the
    /// HTTP intake and watches the inbox folder when the configuration names them.
    Run {
        /// Agent configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Stop once the outbox is empty and every batch is acknowledged.
        #[arg(long)]
        until_drained: bool,
    },
    /// Store files of dossiers, procedures, feedback items, ratings or processing steps in the
    /// outbox (formats in docs/record-formats.md).
    ///
    /// Exit status: 0 when every record was stored or unchanged, 3 when some records were
    /// rejected (the valid ones are stored all the same), 4 when the outbox was full and a file
    /// was refused whole (send it again later), 1 on any other error.
    Ingest {
        /// Agent configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Files to read: an envelope such as DongBoHoSoMC, a JSON array, or JSON Lines.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Record kind of every file: dossier, procedure, feedback, rating or step. Without it,
        /// an envelope's service names the kind, and files without one contain dossiers.
        #[arg(long, value_parser = commands::parse_kind)]
        kind: Option<chiso_proto::record::Kind>,
    },
    /// Print the locality's scorecard and optionally write it as JSON.
    Scores(commands::ScoresArgs),
    /// List the records behind one indicator's numerator or denominator, as the hub counted
    /// them, so a figure of the scorecard can be checked record by record.
    Explain(commands::ExplainArgs),
    /// Show the outbox backlog, the last acknowledgement and the certificate expiry.
    Status {
        /// Agent configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// List records rejected at intake or by the hub, newest first.
    Rejects {
        /// Agent configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Maximum number of rows to list.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Queue records the hub rejected again, from their kept payloads, once the cause was
    /// corrected at the hub. A record wrong at its source is fixed there and ingested again.
    Resend {
        /// Agent configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Resend the rejected record with this key, as `chiso-agent rejects` lists it (a
        /// dossier code, `unit/MaTTHC` for a procedure).
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        key: Option<String>,
        /// With --key, resend only the record of this kind: dossier, procedure, feedback,
        /// rating or step.
        #[arg(long, requires = "key", value_parser = commands::parse_kind)]
        kind: Option<chiso_proto::record::Kind>,
        /// Resend every record the hub rejected.
        #[arg(long)]
        all: bool,
    },
    /// Write deterministic sample files for real communes of a province: dossiers, or the
    /// procedures, feedback items, ratings and processing steps of the same units.
    Sample(commands::SampleArgs),
    /// List the unit-days the hub last found incomplete, and the records past retention that
    /// must be re-exported from the source and ingested again.
    Gaps {
        /// Agent configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            config,
            until_drained,
        } => commands::run(&config, until_drained),
        Command::Ingest {
            config,
            files,
            kind,
        } => commands::ingest(&config, &files, kind),
        Command::Scores(args) => commands::scores(&args),
        Command::Explain(args) => commands::explain(&args),
        Command::Status { config } => commands::status(&config),
        Command::Rejects { config, limit } => commands::rejects(&config, limit),
        Command::Resend {
            config,
            key,
            kind,
            all: _,
        } => commands::resend(&config, key.as_deref(), kind),
        Command::Sample(args) => commands::sample(&args),
        Command::Gaps { config } => commands::gaps(&config),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // Each cause once, even where a message already quotes its source.
            let error: &(dyn std::error::Error + 'static) = error.as_ref();
            eprintln!("error: {}", chiso_proto::error_chain::render(error));
            ExitCode::FAILURE
        }
    }
}
