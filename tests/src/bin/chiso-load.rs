//! Load generator for BENCHMARKS.md, on this machine only (127.0.0.1): writes a backlog of
//! sample dossiers while the hub is down, measures `chiso-agent ingest`, then starts a real hub
//! process and measures `chiso-agent run --until-drained` (records per second and peak resident
//! memory), the wait of one fresh record posted to the HTTP intake mid-drain, and the HTTP
//! intake's own rate. Run it in release:
//!
//! ```sh
//! cargo run --release -p chiso-tests --bin chiso-load -- --records 200000
//! ```
//!
//! Options: `--records N` (default 200000), `--per-file N` (20000), `--batch N` (500),
//! `--dir PATH` (a new folder under the system's temporary directory).

use anyhow::{Context, bail};
use chiso_agent::sample::SampleSpec;
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::process::{
    HubProcess, free_port, http_post, peak_rss_kib, wait_listening, write_sample_copies,
};
use chiso_tests::{Pki, binary, write_agent_config};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Records per HTTP body when measuring the HTTP intake.
const HTTP_BODY_RECORDS: usize = 500;
/// Records posted when measuring the HTTP intake.
const HTTP_RECORDS: usize = 20_000;

struct Options {
    records: usize,
    per_file: usize,
    batch: usize,
    dir: PathBuf,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        records: 200_000,
        per_file: 20_000,
        batch: 500,
        dir: std::env::temp_dir().join(format!("chiso-load-{}", std::process::id())),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--records" => options.records = value.parse()?,
            "--per-file" => options.per_file = value.parse()?,
            "--batch" => options.batch = value.parse()?,
            "--dir" => options.dir = PathBuf::from(value),
            other => bail!("unknown option {other}; see the file's documentation"),
        }
    }
    if options.per_file == 0 || !options.records.is_multiple_of(options.per_file) {
        bail!("--records must be a multiple of --per-file");
    }
    Ok(options)
}

/// Waits for a child, sampling its peak resident memory every 20 ms. Returns the elapsed time
/// and the last peak read (KiB).
fn watch(mut child: Child) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let mut peak = 0;
    loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("child failed with {status}");
            }
            return Ok((started.elapsed(), peak));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rate(records: usize, elapsed: Duration) -> f64 {
    records as f64 / elapsed.as_secs_f64()
}

fn spec(dossiers: usize, seed: u64) -> anyhow::Result<SampleSpec> {
    Ok(SampleSpec {
        province: "79".into(),
        dossiers,
        month: "2026-10".parse()?,
        seed,
        as_of: parse_portal_datetime("20261031235959")?,
    })
}

/// Posts one fresh record when the hub contains half the backlog, and returns how long the record
/// took to reach the hub and the backlog left when it was posted.
fn fresh_record_wait(
    hub: &HubProcess,
    intake: SocketAddr,
    record: &str,
    backlog: i64,
) -> anyhow::Result<(Duration, i64)> {
    loop {
        let rows = hub.count("79")?.0;
        if rows >= backlog / 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let posted = Instant::now();
    let left = backlog - hub.count("79")?.0;
    let reply = http_post(intake, "/v1/dossiers", record.as_bytes())?;
    if reply.status != 200 {
        bail!("fresh record refused: {} {}", reply.status, reply.body);
    }
    let code: serde_json::Value = serde_json::from_str(record)?;
    let code = code["MaHoSo"]
        .as_str()
        .context("the record has a code")?
        .to_string();
    let reader = hub.reader()?;
    loop {
        let arrived: bool = reader.query_row(
            "SELECT EXISTS (SELECT 1 FROM dossiers WHERE source = '79' AND code = ?1)",
            [&code],
            |row| row.get(0),
        )?;
        if arrived {
            return Ok((posted.elapsed(), left));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let dir = &options.dir;
    std::fs::create_dir_all(dir)?;
    let pki = Pki::create(&dir.join("certs"), &["79"])?;
    let limits = "\n[limits]\nrecords_per_second = 1000000\nburst_records = 10000000\n";
    let mut hub = HubProcess::start_with(&pki, &dir.join("hub"), limits)?;
    hub.kill();
    let config = write_agent_config(&dir.join("agent"), &pki, "79", &hub.url())?;
    let intake = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let text = std::fs::read_to_string(&config)?.replace(
        "batch_records = 200",
        &format!("batch_records = {}", options.batch),
    );
    std::fs::write(
        &config,
        format!("{text}\n[intake]\nlisten = \"{intake}\"\n"),
    )?;

    let copies = options.records / options.per_file;
    let files = write_sample_copies(
        &spec(options.per_file, 766)?,
        "L",
        copies,
        &dir.join("data"),
    )?;
    let fresh = write_sample_copies(&spec(HTTP_RECORDS, 767)?, "F", 1, &dir.join("fresh"))?;
    let agent = binary("chiso-agent");

    let ingest = Command::new(&agent)
        .arg("ingest")
        .arg("--config")
        .arg(&config)
        .args(&files)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let (ingest_time, ingest_peak) = watch(ingest)?;
    let outbox = dir.join("agent").join("outbox.db");
    let outbox_before = std::fs::metadata(&outbox)?.len();

    hub.restart()?;
    let log = std::fs::File::create(dir.join("agent.log"))?;
    let mut run = Command::new(&agent)
        .args(["run", "--until-drained", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    wait_listening(intake, &mut run, &dir.join("agent.log"))?;
    let lines: Vec<String> = std::fs::read_to_string(&fresh[0])?
        .lines()
        .map(str::to_string)
        .collect();
    let backlog = options.records as i64;
    let watcher = std::thread::spawn(move || watch(run));
    let (fresh_wait, left) = fresh_record_wait(&hub, intake, &lines[0], backlog)?;
    let (drain_time, drain_peak) = watcher
        .join()
        .map_err(|_| anyhow::anyhow!("watcher panicked"))??;
    let outbox_after = std::fs::metadata(&outbox)?.len();

    let http = http_intake_rate(&agent, &config, intake, &lines[1..])?;
    report(
        &options,
        Figures {
            ingest_time,
            ingest_peak,
            drain_time,
            drain_peak,
            fresh_wait,
            left,
            http,
            outbox_before,
            outbox_after,
        },
    );
    hub.kill();
    Ok(())
}

/// Runs the agent against a stopped hub and posts the records over HTTP, `HTTP_BODY_RECORDS`
/// per body; returns records per second.
fn http_intake_rate(
    agent: &Path,
    config: &Path,
    intake: SocketAddr,
    lines: &[String],
) -> anyhow::Result<f64> {
    let mut run = Command::new(agent)
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_listening(intake, &mut run, Path::new("/dev/null"))?;
    let started = Instant::now();
    let mut posted = 0;
    for chunk in lines.chunks(HTTP_BODY_RECORDS) {
        let reply = http_post(intake, "/v1/dossiers", chunk.join("\n").as_bytes())?;
        if reply.status != 200 {
            bail!(
                "HTTP intake refused a body: {} {}",
                reply.status,
                reply.body
            );
        }
        posted += chunk.len();
    }
    let elapsed = started.elapsed();
    run.kill()?;
    run.wait()?;
    Ok(rate(posted, elapsed))
}

struct Figures {
    ingest_time: Duration,
    ingest_peak: u64,
    drain_time: Duration,
    drain_peak: u64,
    fresh_wait: Duration,
    left: i64,
    http: f64,
    outbox_before: u64,
    outbox_after: u64,
}

fn report(options: &Options, f: Figures) {
    let pushed = options.records + 1;
    println!(
        "records: {}, files of {}, batch {}",
        options.records, options.per_file, options.batch
    );
    println!(
        "ingest (chiso-agent ingest): {:.1} s, {:.0} records/s, peak RSS {} MiB",
        f.ingest_time.as_secs_f64(),
        rate(options.records, f.ingest_time),
        f.ingest_peak / 1024
    );
    println!(
        "push (run --until-drained): {:.1} s, {:.0} records/s, peak RSS {} MiB",
        f.drain_time.as_secs_f64(),
        rate(pushed, f.drain_time),
        f.drain_peak / 1024
    );
    println!(
        "fresh record posted with {} records ahead reached the hub after {:.2} s",
        f.left,
        f.fresh_wait.as_secs_f64()
    );
    println!(
        "HTTP intake: {:.0} records/s in bodies of {HTTP_BODY_RECORDS}",
        f.http
    );
    println!(
        "outbox file: {} MiB before the drain, {} MiB after",
        f.outbox_before / (1024 * 1024),
        f.outbox_after / (1024 * 1024)
    );
}
