//! The agent's commands, each loading and validating the configuration before it opens the
//! outbox or the network.

use anyhow::Context;
use chiso_agent::config::Config;
use chiso_agent::dvcqg::IntakeContext;
use chiso_agent::inbox::{self, InboxSettings};
use chiso_agent::intake::IntakeSettings;
use chiso_agent::outbox::{Outbox, OutboxLimits, ResendSelection};
use chiso_agent::push::{self, PushSettings, SessionEnd, SharedOutbox};
use chiso_agent::{http, intake, sample, scores};
use chiso_proto::record::Kind;
use chiso_proto::units::UnitCatalogue;
use chiso_proto::vntime::{Month, parse_portal_datetime};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Exit status of `ingest` when some records were rejected and the rest stored.
const EXIT_SOME_REJECTED: u8 = 3;
/// Exit status of `ingest` when the outbox was full and a file was refused whole.
const EXIT_OUTBOX_FULL: u8 = 4;

/// Options of `chiso-agent scores`.
#[derive(clap::Args)]
pub(crate) struct ScoresArgs {
    /// Agent configuration file (TOML).
    #[arg(long, short)]
    config: PathBuf,
    /// Period: 2026-10, 2026-Q4, 2026-H2 or 2026; defaults to the current month in Vietnam time.
    #[arg(long)]
    period: Option<String>,
    /// Also write the scorecard as JSON to this file (written atomically).
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Options of `chiso-agent explain`.
#[derive(clap::Args)]
pub(crate) struct ExplainArgs {
    /// Agent configuration file (TOML).
    #[arg(long, short)]
    config: PathBuf,
    /// Indicator or part id of the hub's catalogue, such as DOSSIER_ON_TIME.
    #[arg(long)]
    indicator: String,
    /// Period: 2026-10, 2026-Q4, 2026-H2 or 2026; defaults to the current month.
    #[arg(long)]
    period: Option<String>,
    /// Unit code: the locality (default) or one of its communes.
    #[arg(long)]
    unit: Option<String>,
    /// The side of the fraction to list.
    #[arg(long, value_parser = ["numerator", "denominator"], default_value = "denominator")]
    side: String,
    /// Records per page, 1 to 1000.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// The page token printed after the previous page.
    #[arg(long)]
    page_token: Option<String>,
}

/// Options of `chiso-agent sample`.
#[derive(clap::Args)]
pub(crate) struct SampleArgs {
    /// Province code of the 2025 unit catalogue, such as 01.
    #[arg(long)]
    province: String,
    /// Number of dossiers to write.
    #[arg(long, default_value_t = 1000)]
    dossiers: usize,
    /// Month the dossiers are received in, as YYYY-MM.
    #[arg(long)]
    month: String,
    /// Seed of the generator; the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Nothing finishes after this time (yyyyMMddHHmmss, Vietnam time); defaults to the end of the month.
    #[arg(long)]
    as_of: Option<String>,
    /// Record kind written to --out: dossier (the default), procedure, feedback, rating or
    /// step. The other kinds are drawn from the dossiers of the same options, so they match.
    #[arg(long, conflicts_with = "out_dir", value_parser = parse_kind)]
    kind: Option<Kind>,
    /// Output file.
    #[arg(long, required_unless_present = "out_dir", conflicts_with = "out_dir")]
    out: Option<PathBuf>,
    /// Write every kind into this folder instead: dossiers.json, procedures.json,
    /// feedback.json, ratings.json and steps.json.
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Opens the outbox with the configured limits. Callers load the configuration first, so an
/// invalid one never touches the outbox.
fn open_outbox(config: &Config) -> anyhow::Result<Outbox> {
    let mut outbox = Outbox::open(&config.outbox)
        .with_context(|| format!("cannot open outbox {}", config.outbox.display()))?;
    outbox.set_limits(OutboxLimits {
        max_bytes: Some(config.limits.outbox_max_bytes),
        max_records: config.limits.outbox_max_records,
    });
    Ok(outbox)
}

/// Runs the push loop and the configured intake until Ctrl-C, SIGTERM, or a drained outbox
/// when asked. A damaged outbox stops the agent before anything runs.
pub(crate) fn run(config_path: &Path, until_drained: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    check_certificate_locality(&config)?;
    let settings = PushSettings::from_config(&config, until_drained)?;
    let outbox = open_outbox(&config)?;
    outbox.check_integrity()?;
    chiso_agent::install_crypto_provider();
    runtime()?.block_on(run_agent(config, settings, Arc::new(Mutex::new(outbox))))
}

/// Refuses a certificate whose identity names another locality than the configuration, before
/// anything is sent: the hub would bind the stream to the certificate's locality.
fn check_certificate_locality(config: &Config) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(&config.tls.cert)
        .with_context(|| format!("cannot read certificate {}", config.tls.cert.display()))?;
    let info = chiso_certs::read_identity(&pem)?;
    let expected = chiso_proto::identity::Identity::Agent(config.locality.clone());
    match info.identity {
        Some(identity) if identity == expected => Ok(()),
        Some(identity) => anyhow::bail!(
            "certificate {} names {identity}, but the configuration says locality = {}; use the certificate issued for {}",
            config.tls.cert.display(),
            config.locality,
            expected
        ),
        None => anyhow::bail!(
            "certificate {} carries no spiffe://chiso/agent/ identity; issue one with chiso-certs issue-agent",
            config.tls.cert.display()
        ),
    }
}

async fn run_agent(
    config: Config,
    settings: PushSettings,
    outbox: SharedOutbox,
) -> anyhow::Result<ExitCode> {
    // Binding first makes a taken or forbidden address fail before anything else starts.
    let listener = match config.intake.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on intake.listen = {addr}"))?,
        ),
        None => None,
    };
    let (stop, stopped) = watch::channel(false);
    let stop = Arc::new(stop);
    let signal_stop = Arc::clone(&stop);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        let _ = signal_stop.send(true);
    });
    tracing::info!(locality = %config.locality, hub = %config.hub_url, outbox = %config.outbox.display(), "agent starting");

    let mut intake_tasks = start_intake(&config, listener, &outbox, &stopped)?;
    let push = push::run(outbox, settings, stopped);
    let outcome = tokio::select! {
        end = push => end.map_err(anyhow::Error::from),
        Some(joined) = intake_tasks.join_next() => Err(intake_ended(joined)),
    };
    let _ = stop.send(true);
    while let Some(joined) = intake_tasks.join_next().await {
        if let Ok(Err(error)) = joined {
            tracing::error!(%error, "intake stopped with an error");
        }
    }
    let end = outcome?;
    tracing::info!(reason = ?end, "agent stopped");
    Ok(match end {
        SessionEnd::Drained | SessionEnd::Shutdown => ExitCode::SUCCESS,
    })
}

/// Starts the HTTP intake and the inbox watcher when configured.
fn start_intake(
    config: &Config,
    listener: Option<tokio::net::TcpListener>,
    outbox: &SharedOutbox,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<JoinSet<anyhow::Result<()>>> {
    let intake_settings = IntakeSettings {
        locality: config.locality.clone(),
        agency_map: config.agency_map.clone(),
        catalogue: config.unit_catalogue()?,
    };
    let mut tasks = JoinSet::new();
    if let Some(listener) = listener {
        let serve = http::serve(
            listener,
            Arc::clone(outbox),
            intake_settings.clone(),
            stopped.clone(),
        );
        tasks.spawn(async move { Ok(serve.await?) });
    }
    if let Some(dir) = &config.intake.inbox {
        let inbox_settings = InboxSettings {
            dir: dir.clone(),
            scan_interval: Duration::from_millis(config.intake.scan_ms),
            min_age: inbox::MIN_FILE_AGE,
        };
        let watch = inbox::run(
            Arc::clone(outbox),
            inbox_settings,
            intake_settings,
            stopped.clone(),
        );
        tasks.spawn(async move { Ok(watch.await?) });
    }
    Ok(tasks)
}

/// Turns the early end of an intake task into the agent's error.
fn intake_ended(joined: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Error {
    match joined {
        Ok(Ok(())) => anyhow::anyhow!("an intake task stopped before the agent was asked to stop"),
        Ok(Err(error)) => error,
        Err(join) => anyhow::anyhow!("an intake task failed: {join}"),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Reads a record kind named on the command line.
pub(crate) fn parse_kind(name: &str) -> Result<Kind, String> {
    Kind::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Kind::ALL.into_iter().map(Kind::as_str).collect();
        format!(
            "unknown record kind {name:?}; use one of {}",
            names.join(", ")
        )
    })
}

/// Stores files in the outbox and prints a summary per file and each rejected record. `kind`
/// is the kind every file must contain, or `None` to take each envelope's.
pub(crate) fn ingest(
    config_path: &Path,
    files: &[PathBuf],
    kind: Option<Kind>,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let mut outbox = open_outbox(&config)?;
    let context = IntakeContext {
        locality: &config.locality,
        catalogue: config.unit_catalogue()?,
        agency_map: &config.agency_map,
    };

    let mut any_rejected = false;
    for file in files {
        let input = intake::read_file(file, kind, &context)?;
        let file_kind = input.kind;
        let summary = match intake::store(&mut outbox, input) {
            Ok(summary) => summary,
            Err(error) if error.is_full() => {
                eprintln!("{}: refused, nothing of it stored: {error}", file.display());
                return Ok(ExitCode::from(EXIT_OUTBOX_FULL));
            }
            Err(error) => return Err(error.into()),
        };
        println!(
            "{} ({file_kind}): {} records, {} new, {} changed, {} unchanged, {} rejected",
            file.display(),
            summary.records,
            summary.stored_new,
            summary.stored_changed,
            summary.unchanged,
            summary.rejected.len()
        );
        for rejection in &summary.rejected {
            any_rejected = true;
            println!(
                "  rejected {}:{} {} [{}] {}: {}",
                file.display(),
                rejection.index,
                rejection.key.as_deref().unwrap_or("-"),
                rejection.code.as_str_name(),
                rejection.field,
                rejection.message
            );
        }
    }
    Ok(if any_rejected {
        ExitCode::from(EXIT_SOME_REJECTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Fetches the locality's scorecard, prints it, and writes JSON when asked.
pub(crate) fn scores(args: &ScoresArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let settings = PushSettings::from_config(&config, true)?;
    chiso_agent::install_crypto_provider();
    let period = args.period.clone().unwrap_or_default();

    let response = runtime()?.block_on(async {
        let channel = push::connect(&settings.hub_url, settings.tls.clone()).await?;
        let response = scores::fetch(channel, &config.locality, &period, 0).await?;
        anyhow::Ok(response)
    })?;
    print!("{}", scores::render_table(&response));
    if let Some(path) = &args.json {
        scores::write_json(&response, path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Lists the records behind one figure of the locality's scorecard, a page at a time.
pub(crate) fn explain(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    use chiso_proto::v1::{ExplainRequest, FractionSide};
    let config = Config::load(&args.config)?;
    let settings = PushSettings::from_config(&config, true)?;
    chiso_agent::install_crypto_provider();
    let side = if args.side == "numerator" {
        FractionSide::Numerator
    } else {
        FractionSide::Denominator
    };
    let request = ExplainRequest {
        unit_code: args.unit.clone().unwrap_or_else(|| config.locality.clone()),
        period: args.period.clone().unwrap_or_default(),
        indicator_id: args.indicator.clone(),
        side: side as i32,
        as_of: 0,
        limit: args.limit,
        page_token: args.page_token.clone().unwrap_or_default(),
    };
    let response = runtime()?.block_on(async {
        let channel = push::connect(&settings.hub_url, settings.tls.clone()).await?;
        anyhow::Ok(scores::fetch_explain(channel, request).await?)
    })?;
    print!("{}", scores::render_explain(&response));
    Ok(ExitCode::SUCCESS)
}

/// Prints the outbox state and the certificate's identity and expiry.
pub(crate) fn status(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let outbox = open_outbox(&config)?;
    let stats = outbox.stats()?;
    println!("locality:        {}", config.locality);
    println!("outbox:          {}", config.outbox.display());
    println!("backlog:         {}", stats.backlog);
    let usage = outbox.usage()?;
    let limits = outbox.limits();
    println!(
        "outbox in use:   {} bytes of max {}, {} records of max {}",
        usage.used_bytes,
        limits.max_bytes.map_or("-".into(), |max| max.to_string()),
        usage.pending,
        limits.max_records.map_or("-".into(), |max| max.to_string())
    );
    println!(
        "oldest pending:  {}",
        stats
            .oldest_pending_seq
            .map_or("-".into(), |seq| seq.to_string())
    );
    println!("last sequence:   {}", stats.last_seq);
    println!("keys accepted:   {}", stats.ledger_keys);
    println!("rejected:        {}", stats.rejected);
    println!(
        "last ack:        {}",
        outbox.meta("last_ack")?.unwrap_or_else(|| "never".into())
    );

    let pem = std::fs::read_to_string(&config.tls.cert)
        .with_context(|| format!("cannot read certificate {}", config.tls.cert.display()))?;
    let info = chiso_certs::read_identity(&pem)?;
    let days_left = (info.not_after - chrono::Utc::now().timestamp()) / 86_400;
    let identity = info
        .identity
        .map_or("none".to_string(), |identity| identity.to_string());
    println!(
        "certificate:     {identity}, serial {}, {days_left} days left",
        info.serial_hex
    );
    Ok(ExitCode::SUCCESS)
}

/// Lists rejected records.
pub(crate) fn rejects(config_path: &Path, limit: usize) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let outbox = open_outbox(&config)?;
    let rows = outbox.rejects(limit)?;
    if rows.is_empty() {
        println!("no rejected records");
    }
    for row in rows {
        let place = match (row.record_index, row.seq) {
            (Some(index), _) => format!("{}:{index}", row.source),
            (None, Some(seq)) => format!("hub seq {seq}"),
            (None, None) => row.source.clone(),
        };
        println!(
            "{} {} {} {} [{}] {}: {}",
            row.origin,
            place,
            row.kind.as_deref().unwrap_or("-"),
            row.key.as_deref().unwrap_or("-"),
            row.code,
            row.field,
            row.message
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Queues hub-rejected records again from their kept payloads: those of `key` (of `kind` when
/// given), or all.
pub(crate) fn resend(
    config_path: &Path,
    key: Option<&str>,
    kind: Option<Kind>,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let mut outbox = open_outbox(&config)?;
    let selection = match (key, kind) {
        (Some(key), Some(kind)) => ResendSelection::KindKey(kind, key),
        (Some(key), None) => ResendSelection::Key(key),
        (None, _) => ResendSelection::All,
    };
    let summary = outbox.resend_rejected(selection)?;
    println!("queued again:    {}", summary.requeued);
    println!(
        "superseded:      {} (a newer version was accepted since; it is sent, or was)",
        summary.superseded
    );
    println!(
        "without payload: {} (ingest the corrected source file again)",
        summary.without_payload
    );
    let matched = summary.requeued + summary.superseded + summary.without_payload;
    if let (Some(key), 0) = (key, matched) {
        println!(
            "no record rejected by the hub has key {key:?}; list them with `chiso-agent rejects` (a record rejected at intake is fixed at its source and ingested again)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a sample file.
pub(crate) fn sample(args: &SampleArgs) -> anyhow::Result<ExitCode> {
    let month: Month = args.month.parse()?;
    let as_of = match &args.as_of {
        Some(text) => parse_portal_datetime(text)?,
        None => end_of_month(month),
    };
    let spec = sample::SampleSpec {
        province: args.province.clone(),
        dossiers: args.dossiers,
        month,
        seed: args.seed,
        as_of,
    };
    let catalogue = UnitCatalogue::official();
    if let Some(dir) = &args.out_dir {
        for (kind, path, records) in sample::write_sample_set(&spec, catalogue, dir)? {
            println!("wrote {records} {kind} records to {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let out = args
        .out
        .as_ref()
        .context("give --out FILE or --out-dir FOLDER")?;
    match args.kind.unwrap_or(Kind::Dossier) {
        Kind::Dossier => {
            let written = sample::write_sample(&spec, catalogue, out)?;
            println!("wrote {written} dossiers to {}", out.display());
        }
        kind => {
            let written = sample::write_sample_kind(&spec, kind, catalogue, out)?;
            println!("wrote {written} {kind} records to {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Returns the last second of a month in Vietnam time.
fn end_of_month(month: Month) -> i64 {
    let next = month.next().first_day();
    let midnight = next.and_hms_opt(0, 0, 0).expect("midnight exists");
    midnight
        .and_local_timezone(chiso_proto::vntime::vietnam())
        .single()
        .map_or(0, |t| t.timestamp())
        - 1
}

/// Prints the open completeness gaps and the records to re-export from the source.
pub(crate) fn gaps(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let outbox = open_outbox(&config)?;
    let gaps = outbox.open_gap_days()?;
    let reexport = outbox.reexport_keys()?;
    if gaps.is_empty() && reexport.is_empty() {
        println!("no open gaps");
        return Ok(ExitCode::SUCCESS);
    }

    for gap in &gaps {
        println!(
            "gap unit {} day {}: agent {}, hub {}, resent {}, past retention {}",
            gap.unit_code, gap.day, gap.agent_count, gap.hub_count, gap.resent, gap.reexport
        );
    }
    if !reexport.is_empty() {
        println!(
            "{} records are past retention; re-export them from the source and ingest them again:",
            reexport.len()
        );
    }
    for key in &reexport {
        println!(
            "re-export unit {} day {} key {} version {}",
            key.unit_code, key.day, key.key, key.version
        );
    }
    Ok(ExitCode::SUCCESS)
}
