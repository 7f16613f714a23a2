//! Runs the main job of chiso on embedded defaults, on this machine only. It makes
//! certificates and writes sample files of every record kind (dossiers, procedures, feedback,
//! ratings, processing steps) for the real communes of three provinces. It then starts a hub on
//! 127.0.0.1, runs one agent per province (intake, then push over mutual TLS until drained), and
//! prints the scoreboard of the provinces and the country.

use anyhow::Context;
use chiso_agent::config::Config as AgentConfig;
use chiso_agent::dvcqg::IntakeContext;
use chiso_agent::outbox::Outbox;
use chiso_agent::push::{self, PushSettings};
use chiso_agent::sample::{SampleSpec, write_sample_set};
use chiso_agent::{intake, scores};
use chiso_proto::units::UnitCatalogue;
use chiso_proto::vntime::{Month, parse_portal_datetime};
use chiso_tests::{Pki, hub_config, start_hub, write_agent_config};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Hà Nội, Đà Nẵng and Thành phố Hồ Chí Minh.
const PROVINCES: [&str; 3] = ["01", "48", "79"];
const DOSSIERS_PER_PROVINCE: usize = 5_000;
const MONTH: &str = "2026-11";
/// Scores are computed as of the month's last second, so the output does not depend on today.
const AS_OF: &str = "20261130235959";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let dir = match std::env::args().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("chiso-demo-{}", std::process::id())),
    };
    if dir.join("hub.db").exists() {
        anyhow::bail!(
            "{} already holds a demo; pass an empty folder",
            dir.display()
        );
    }
    println!("chiso demo in {}", dir.display());
    let started = Instant::now();

    let pki = Pki::create(&dir.join("certs"), &PROVINCES)?;
    println!(
        "certificates: CA, hub (localhost, 127.0.0.1), agents {}",
        PROVINCES.join(", ")
    );

    let hub = start_hub(hub_config(&pki, &dir)).await?;
    println!("hub listening on {} (mutual TLS)", hub.addr);

    let month: Month = MONTH.parse()?;
    let as_of = parse_portal_datetime(AS_OF)?;
    let mut agents = Vec::new();
    for (index, province) in PROVINCES.iter().enumerate() {
        let agent_dir = dir.join(format!("agent-{province}"));
        let config_path = write_agent_config(&agent_dir, &pki, province, &hub.url())?;
        let spec = SampleSpec {
            province: province.to_string(),
            dossiers: DOSSIERS_PER_PROVINCE,
            month,
            seed: 2026 + index as u64,
            as_of,
        };
        let written = write_sample_set(&spec, UnitCatalogue::official(), &agent_dir)?;
        let files = written.into_iter().map(|(_, path, _)| path).collect();
        agents.push(tokio::spawn(run_agent(config_path, files)));
    }
    for agent in agents {
        agent.await.context("agent task failed")??;
    }

    let channel = push::connect(&hub.url(), pki.client_tls("agent-01")?).await?;
    let response = scores::fetch(channel, "", MONTH, as_of).await?;
    let mut shown = response.clone();
    shown
        .units
        .retain(|unit| unit.level == "country" || PROVINCES.contains(&unit.unit_code.as_str()));
    println!();
    print!("{}", scores::render_table(&shown));

    let json_path = dir.join("scores-VN.json");
    scores::write_json(&response, &json_path)?;
    println!();
    println!(
        "full scorecard (34 provinces) written to {}",
        json_path.display()
    );
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    hub.stop().await;
    Ok(())
}

/// Takes one province's sample files into its outbox and pushes them until drained. Each file's
/// envelope names its record kind.
async fn run_agent(config_path: PathBuf, files: Vec<PathBuf>) -> anyhow::Result<()> {
    let config = AgentConfig::load(&config_path)?;
    let mut outbox = Outbox::open(&config.outbox)?;
    let context = IntakeContext {
        locality: &config.locality,
        catalogue: UnitCatalogue::official(),
        agency_map: &config.agency_map,
    };
    for file in &files {
        let input = intake::read_file(file, None, &context)?;
        let kind = input.kind;
        let summary = intake::store(&mut outbox, input)?;
        println!(
            "agent {}: ingested {} {kind} records ({} stored, {} rejected)",
            config.locality,
            summary.records,
            summary.stored_new + summary.stored_changed,
            summary.rejected.len()
        );
    }

    let settings = PushSettings::from_config(&config, true)?;
    let (_keep_running, running) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let outbox = Arc::new(Mutex::new(outbox));
    push::run(Arc::clone(&outbox), settings, running).await?;
    let rejected = outbox
        .lock()
        .map_err(|_| anyhow::anyhow!("the outbox lock was poisoned"))?
        .stats()?
        .rejected;
    println!(
        "agent {}: outbox drained in {:.1} s, {rejected} records rejected (list them with chiso-agent rejects)",
        config.locality,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
