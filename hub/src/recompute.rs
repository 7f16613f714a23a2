//! The `recompute` command: rebuild every counter from the stored records, or, with `--verify`,
//! compare the counters with a full recompute and report each difference without writing.

use std::io::Write;
use std::path::{Path, PathBuf};

use chiso_proto::vntime::{parse_portal_datetime, vietnam_day};
use chrono::NaiveDate;

use crate::config::Config;
use crate::counters::{self, CounterRules, Verification};
use crate::store::{self, StoreError};

/// Most differences printed; the total is always printed.
const MAX_PRINTED: usize = 50;

/// Arguments of `chiso-hub recompute`.
#[derive(Debug, clap::Args)]
pub struct RecomputeArgs {
    /// Hub configuration file (TOML): gives the database and the counter rules.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Database file; overrides `database` in the config file.
    #[arg(long)]
    pub database: Option<PathBuf>,
    /// Compare the counters with a full recompute and write nothing; exit 1 on any difference.
    #[arg(long)]
    pub verify: bool,
    /// Day to count as of, as 2026-12-31 or a portal time 20261231235959 (Vietnam time);
    /// default today.
    #[arg(long, value_parser = parse_day)]
    pub as_of: Option<NaiveDate>,
}

/// Failures of the command.
#[derive(Debug, thiserror::Error)]
pub enum RecomputeError {
    /// Neither a config file nor a database was given.
    #[error("no database given; pass --config FILE or --database FILE")]
    NoDatabase,
    /// The database file does not exist.
    #[error("database {path} does not exist; check the path (recompute never creates a database)")]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// The config file is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

fn parse_day(value: &str) -> Result<NaiveDate, String> {
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(day);
    }
    parse_portal_datetime(value)
        .map(vietnam_day)
        .map_err(|_| format!("invalid day {value:?}: expected 2026-12-31 or 20261231235959"))
}

fn settings(args: &RecomputeArgs) -> Result<(PathBuf, CounterRules), RecomputeError> {
    let config = args.config.as_deref().map(Config::load).transpose()?;
    let rules = config
        .as_ref()
        .map_or_else(CounterRules::default, |config| config.counters.rules());
    let database = args
        .database
        .clone()
        .or_else(|| config.map(|config| config.database))
        .ok_or(RecomputeError::NoDatabase)?;
    if !database.exists() {
        return Err(RecomputeError::Missing { path: database });
    }
    Ok((database, rules))
}

/// Runs the command and returns the process exit code: 0 when clean or rebuilt, 1 when
/// `--verify` found differences.
pub fn run(args: &RecomputeArgs, mut out: impl Write) -> Result<i32, RecomputeError> {
    let (database, rules) = settings(args)?;
    let as_of = args.as_of.unwrap_or_else(store::today);
    if args.verify {
        let conn = store::open_reader_checked(&database)?;
        let verification = counters::verify(&conn, &rules, as_of).map_err(StoreError::from)?;
        report(&mut out, &database, as_of, &verification)?;
        return Ok(if verification.is_clean() { 0 } else { 1 });
    }
    let records = store::rebuild_counters(&database, &rules, as_of)?;
    tracing::info!(database = %database.display(), records, as_of = %as_of, "counters rebuilt");
    writeln!(
        out,
        "rebuilt the counters of {} from {records} records, as of {as_of}",
        database.display()
    )?;
    Ok(0)
}

fn report(
    out: &mut impl Write,
    database: &Path,
    as_of: NaiveDate,
    verification: &Verification,
) -> std::io::Result<()> {
    let stored_as_of = verification
        .stored_as_of
        .map_or_else(|| "never built".to_string(), |day| day.to_string());
    writeln!(
        out,
        "verified {}: {} records (dossiers, procedures, feedback and ratings; steps count within their dossiers), {} counters as of {as_of} (counters stored as of {stored_as_of})",
        database.display(),
        verification.records,
        verification.counters
    )?;
    if verification.is_clean() {
        writeln!(out, "clean: every counter equals a full recompute")?;
        return Ok(());
    }
    writeln!(
        out,
        "{} counters and {} dossier facts differ from a full recompute; run `chiso-hub recompute` to rebuild them",
        verification.differences.len(),
        verification.facts_differences.len()
    )?;
    for difference in verification.differences.iter().take(MAX_PRINTED) {
        let reach = match difference.reach {
            counters::Reach::Own => "own",
            counters::Reach::All => "all",
        };
        writeln!(
            out,
            "  counter {} ({reach}) {} {} {}: stored {}, recomputed {}",
            difference.unit,
            difference.period,
            difference.count,
            difference.rule.as_str(),
            difference.stored,
            difference.recomputed
        )?;
    }
    for (source, code) in verification.facts_differences.iter().take(MAX_PRINTED) {
        writeln!(out, "  dossier facts {source} {code}")?;
    }
    let printed = verification.differences.len().min(MAX_PRINTED)
        + verification.facts_differences.len().min(MAX_PRINTED);
    let total = verification.differences.len() + verification.facts_differences.len();
    if total > printed {
        writeln!(out, "  ... and {} more", total - printed)?;
    }
    Ok(())
}
