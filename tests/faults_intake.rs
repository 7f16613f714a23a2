//! Intake under pressure, with real processes: a full outbox refuses HTTP bodies with 503 and
//! leaves inbox and command-line files in place, nothing is lost, and intake resumes once the
//! backlog has drained to the hub. A single record taken in while `run` is connected reaches
//! the hub without waiting for a batch to fill.

use chiso_agent::sample::SampleSpec;
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::process::{
    HttpReply, HubProcess, free_port, http_post, tail, wait_listening, write_sample_copies,
};
use chiso_tests::{Pki, binary, write_agent_config};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn spec(dossiers: usize, seed: u64) -> SampleSpec {
    SampleSpec {
        province: "79".into(),
        dossiers,
        month: "2026-10".parse().unwrap(),
        seed,
        as_of: parse_portal_datetime("20261031235959").unwrap(),
    }
}

/// Lines `range` of a JSON Lines file, as one body.
fn lines(file: &Path, range: std::ops::Range<usize>) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let mut body: String = text
        .lines()
        .skip(range.start)
        .take(range.len())
        .collect::<Vec<_>>()
        .join("\n");
    body.push('\n');
    body
}

/// Starts `chiso-agent run` with its log in `log`, and waits for its HTTP intake.
fn start_agent(config: &Path, log: &Path, intake: SocketAddr) -> Child {
    let log_file = std::fs::File::create(log).unwrap();
    let mut child = Command::new(binary("chiso-agent"))
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    wait_listening(intake, &mut child, log).unwrap();
    child
}

/// Polls the hub every 50 ms, at most `seconds`, until it stores `expected` dossiers of 79.
fn wait_for_hub(hub: &HubProcess, expected: i64, seconds: u64) -> i64 {
    let mut rows = 0;
    for _ in 0..seconds * 20 {
        rows = hub.count("79").unwrap().0;
        if rows == expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    rows
}

fn post(addr: SocketAddr, body: &str) -> HttpReply {
    http_post(addr, "/v1/dossiers", body.as_bytes()).unwrap()
}

/// Appends intake and limit settings to a harness agent configuration.
fn configure(config: &Path, intake: SocketAddr, inbox: &Path, max_records: u64) {
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!(
        "\n[limits]\noutbox_max_records = {max_records}\n\n[intake]\nlisten = \"{intake}\"\ninbox = \"{}\"\nscan_ms = 200\n",
        inbox.display()
    ));
    std::fs::write(config, text).unwrap();
}

struct Setup {
    _dir: tempfile::TempDir,
    hub: HubProcess,
    config: PathBuf,
    log: PathBuf,
    inbox: PathBuf,
    intake: SocketAddr,
    data: Vec<PathBuf>,
}

fn setup(max_records: u64, copies: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["79"]).unwrap();
    let hub = HubProcess::start(&pki, &dir.path().join("hub")).unwrap();
    let config = write_agent_config(&dir.path().join("agent"), &pki, "79", &hub.url()).unwrap();
    let intake = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let inbox = dir.path().join("inbox");
    configure(&config, intake, &inbox, max_records);
    let data = write_sample_copies(&spec(1_000, 3), "i", copies, &dir.path().join("data")).unwrap();
    Setup {
        log: dir.path().join("agent.log"),
        _dir: dir,
        hub,
        config,
        inbox,
        intake,
        data,
    }
}

#[test]
fn full_outbox_refuses_intake_and_resumes_after_drain() {
    let mut s = setup(1_000, 3);
    s.hub.kill(); // The hub is down, so the backlog only grows.
    let mut agent = start_agent(&s.config, &s.log, s.intake);

    // 300 + 300 + 300 fit; another 300 would pass 1,000, so it is refused whole.
    for part in 0..3 {
        let reply = post(s.intake, &lines(&s.data[0], part * 300..part * 300 + 300));
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let refused_body = lines(&s.data[0], 900..1_000) + &lines(&s.data[1], 0..200);
    let refused = post(s.intake, &refused_body);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.head.contains("retry-after: 30"), "{}", refused.head);
    assert!(
        refused.body.contains("limits.outbox_max_records = 1000"),
        "{}",
        refused.body
    );
    // 100 more reach the limit exactly; then even one record is refused before parsing.
    assert_eq!(post(s.intake, &lines(&s.data[0], 900..1_000)).status, 200);
    assert_eq!(post(s.intake, &lines(&s.data[1], 0..1)).status, 503);

    // A file in the inbox and one given to `chiso-agent ingest` stay where they are.
    let queued = s.inbox.join("copy-2.json");
    std::fs::copy(&s.data[2], &queued).unwrap();
    let cli = Command::new(binary("chiso-agent"))
        .args([
            "ingest",
            "--config",
            s.config.to_str().unwrap(),
            s.data[1].to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        cli.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(String::from_utf8_lossy(&cli.stderr).contains("is full"));
    std::thread::sleep(Duration::from_secs(3)); // Several scans after the file's minimum age.
    assert!(
        queued.exists(),
        "the inbox file moved while the outbox was full"
    );
    assert!(
        std::fs::read_dir(s.inbox.join("done"))
            .unwrap()
            .next()
            .is_none()
    );

    // The hub comes back: the backlog drains, then the inbox file is taken in by itself.
    s.hub.restart().unwrap();
    assert_eq!(wait_for_hub(&s.hub, 2_000, 120), 2_000, "{}", tail(&s.log));
    assert!(s.inbox.join("done").join("copy-2.json").exists());
    // The refused body and file are accepted when sent again.
    let again = post(s.intake, &refused_body);
    assert_eq!(again.status, 200, "{}", again.body);
    let cli = Command::new(binary("chiso-agent"))
        .args([
            "ingest",
            "--config",
            s.config.to_str().unwrap(),
            s.data[1].to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(wait_for_hub(&s.hub, 3_000, 120), 3_000, "{}", tail(&s.log));

    let (rows, distinct) = s.hub.count("79").unwrap();
    assert_eq!((rows, distinct), (3_000, 3_000));
    assert!(
        s.hub
            .versions("79")
            .unwrap()
            .values()
            .all(|&version| version == 1)
    );
    agent.kill().unwrap();
    agent.wait().unwrap();
}

#[test]
fn single_record_arrives_while_connected() {
    let s = setup(100_000, 1);
    let mut agent = start_agent(&s.config, &s.log, s.intake);

    // Batches hold up to 200 records; one record alone must still go out.
    for (number, index) in [(1, 0), (2, 1), (3, 2)] {
        let reply = post(s.intake, &lines(&s.data[0], index..index + 1));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(wait_for_hub(&s.hub, number, 30), number, "{}", tail(&s.log));
    }
    // The same through the inbox folder.
    std::fs::write(s.inbox.join("one.json"), lines(&s.data[0], 3..4)).unwrap();
    assert_eq!(wait_for_hub(&s.hub, 4, 30), 4, "{}", tail(&s.log));
    assert!(s.inbox.join("done").join("one.json").exists());
    agent.kill().unwrap();
    agent.wait().unwrap();
}
