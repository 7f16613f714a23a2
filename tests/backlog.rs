//! A long hub outage with a backlog of 200,000 dossiers, then recovery, with real processes. The
//! agent retries all along and logs its failures at a limited rate. Everything arrives exactly
//! once, fresh records taken in over HTTP during the drain arrive too, and the agent's peak
//! memory stays under a generous bound. Measured figures belong in BENCHMARKS.md.

use chiso_agent::sample::SampleSpec;
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::process::{
    HubProcess, free_port, http_post, peak_rss_kib, tail, wait_listening, write_sample_copies,
};
use chiso_tests::{Pki, binary, write_agent_config};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PER_FILE: usize = 20_000;
const FILES: usize = 10;
const BACKLOG: i64 = (PER_FILE * FILES) as i64;
/// Generous bound on the pushing agent's peak resident memory: the push reads one batch per
/// window slot, never the backlog.
const PEAK_RSS_LIMIT_KIB: u64 = 256 * 1024;
/// Fresh records posted over HTTP while the backlog drains, per post.
const FRESH_PER_POST: usize = 20;

fn spec(dossiers: usize, seed: u64) -> SampleSpec {
    SampleSpec {
        province: "79".into(),
        dossiers,
        month: "2026-10".parse().unwrap(),
        seed,
        as_of: parse_portal_datetime("20261031235959").unwrap(),
    }
}

#[test]
fn outage_with_200k_backlog_recovers_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["79"]).unwrap();
    // The hub's per-agent rate limit (2,000 records/s by default) is lifted, so the drain
    // measures the agent and the hub's store rather than the limit.
    let limits = "\n[limits]\nrecords_per_second = 1000000\nburst_records = 10000000\n";
    let mut hub = HubProcess::start_with(&pki, &dir.path().join("hub"), limits).unwrap();
    hub.kill(); // The outage starts before the first record.
    let config = write_agent_config(&dir.path().join("agent"), &pki, "79", &hub.url()).unwrap();
    let intake = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[intake]\nlisten = \"{intake}\"\n"));
    std::fs::write(&config, text).unwrap();

    let started = Instant::now();
    let files =
        write_sample_copies(&spec(PER_FILE, 200), "b", FILES, &dir.path().join("data")).unwrap();
    let fresh = write_sample_copies(&spec(2_000, 201), "f", 1, &dir.path().join("fresh")).unwrap();
    eprintln!("sample files written: {:?}", started.elapsed());
    let agent_binary = binary("chiso-agent");
    let started = Instant::now();
    let ingest = Command::new(&agent_binary)
        .arg("ingest")
        .arg("--config")
        .arg(&config)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        ingest.status.success(),
        "{}",
        String::from_utf8_lossy(&ingest.stderr)
    );
    eprintln!("ingest of {BACKLOG} records: {:?}", started.elapsed());
    let outbox = dir.path().join("agent").join("outbox.db");
    let outbox_before = std::fs::metadata(&outbox).unwrap().len();

    let log = dir.path().join("agent.log");
    let mut agent = Command::new(&agent_binary)
        .args(["run", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_listening(intake, &mut agent, &log).unwrap();
    // Five seconds of outage: with a 500 ms backoff cap that is at least nine failed attempts.
    std::thread::sleep(Duration::from_secs(5));
    let failures_logged = std::fs::read_to_string(&log)
        .unwrap()
        .matches("push session failed")
        .count();
    assert_eq!(
        failures_logged, 5,
        "failures are logged five times, then once a minute"
    );

    hub.restart().unwrap();
    let drain_started = Instant::now();
    let fresh_lines: Vec<String> = std::fs::read_to_string(&fresh[0])
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut posted = 0;
    let mut posted_during_drain = 0;
    let mut rows = 0;
    for _ in 0..6_000 {
        rows = hub.count("79").unwrap().0;
        if rows == BACKLOG + posted as i64 && posted == fresh_lines.len() {
            break;
        }
        if posted < fresh_lines.len() {
            let body = fresh_lines[posted..posted + FRESH_PER_POST].join("\n");
            let reply = http_post(intake, "/v1/dossiers", body.as_bytes()).unwrap();
            assert_eq!(reply.status, 200, "{}", reply.body);
            posted += FRESH_PER_POST;
            if rows < BACKLOG {
                posted_during_drain += FRESH_PER_POST;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let drain = drain_started.elapsed();
    let peak = peak_rss_kib(agent.id()).expect("the agent is still running");
    agent.kill().unwrap();
    agent.wait().unwrap();

    let total = BACKLOG + fresh_lines.len() as i64;
    assert_eq!(rows, total, "not everything arrived: {}", tail(&log));
    let (rows, distinct) = hub.count("79").unwrap();
    assert_eq!((rows, distinct), (total, total));
    assert!(
        posted_during_drain > 0,
        "no fresh record was taken in during the drain"
    );
    assert!(peak < PEAK_RSS_LIMIT_KIB, "agent peak memory {peak} KiB");
    let outbox_after = std::fs::metadata(&outbox).unwrap().len();
    // Settled payloads move to the retention table, reusing the pages the queue freed.
    assert!(
        outbox_after <= outbox_before + outbox_before / 10,
        "outbox grew from {outbox_before} to {outbox_after} bytes"
    );
    eprintln!(
        "drain of {total} records: {drain:?}; agent peak RSS {peak} KiB; {posted_during_drain} fresh records taken in during the drain; outbox {outbox_before} -> {outbox_after} bytes"
    );
}
