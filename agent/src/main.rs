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
    /// Store dossier files in the national portal's JSON format in the outbox.
    ///
    /// Exit status: 0 when every record was stored or unchanged, 3 when some records were
    /// rejected (the valid ones are stored all the same), 4 when the outbox was full and a file
    /// was refused whole (send it again later), 1 on any other error.
    Ingest {
        /// Agent configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Files to read: a DongBoHoSoMC envelope, a JSON array, or JSON Lines.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the locality's scorecard and optionally write it as JSON.
    Scores(commands::ScoresArgs),
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
        /// Resend the rejected record with this key (dossier code).
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        key: Option<String>,
        /// Resend every record the hub rejected.
        #[arg(long)]
        all: bool,
    },
    /// Write a deterministic sample file of dossiers for real communes of a province.
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
        Command::Ingest { config, files } => commands::ingest(&config, &files),
        Command::Scores(args) => commands::scores(&args),
        Command::Status { config } => commands::status(&config),
        Command::Rejects { config, limit } => commands::rejects(&config, limit),
        Command::Resend {
            config,
            key,
            all: _,
        } => commands::resend(&config, key.as_deref()),
        Command::Sample(args) => commands::sample(&args),
        Command::Gaps { config } => commands::gaps(&config),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
