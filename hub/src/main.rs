//! The `chiso-hub` command: parses the command line, sets up logging and runs the server.

use anyhow::Context;
use chiso_hub::config::Config;
use chiso_hub::server;
use chiso_hub::store::StoreHandle;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Authenticates chiso agents, stores their records and serves Decision 766 scores.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the mutual-TLS gRPC services until Ctrl-C or SIGTERM.
    Run {
        /// Hub configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Listen address; overrides `listen` in the file.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Database file; overrides `database` in the file.
        #[arg(long)]
        database: Option<PathBuf>,
    },
    /// Score what-if counts read as JSON on stdin with an indicator catalogue.
    Score(chiso_hub::score_cmd::ScoreArgs),
    /// Rebuild every counter from the stored records, or verify them with --verify.
    Recompute(chiso_hub::recompute::RecomputeArgs),
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // Each cause once, even where a message already quotes its source.
            let error: &(dyn std::error::Error + 'static) = error.as_ref();
            eprintln!("error: {}", chiso_proto::error_chain::render(error));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let (config, listen, database) = match Cli::parse().command {
        Command::Run {
            config,
            listen,
            database,
        } => (config, listen, database),
        Command::Recompute(args) => {
            let code = chiso_hub::recompute::run(&args, std::io::stdout().lock())?;
            std::process::exit(code);
        }
        Command::Score(args) => {
            let output = std::io::stdout().lock();
            return Ok(chiso_hub::score_cmd::run(
                &args,
                std::io::stdin().lock(),
                output,
            )?);
        }
    };
    let mut config = Config::load(&config)?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(database) = database {
        config.database = database;
    }
    config.validate()?;
    let units = config.unit_catalogue()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let rules = config.counters.rules();
        let store = StoreHandle::open_with_rules(&config.database, units, rules)
            .with_context(|| format!("cannot open database {}", config.database.display()))?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        server::serve(&config, listener, store, shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("shutdown requested");
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutdown requested");
}
