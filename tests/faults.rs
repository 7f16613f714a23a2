//! Crash faults with real processes. The agent is killed with SIGKILL during intake and during
//! push, and a real `chiso-hub run` process is killed during commits and restarted on the same
//! port and database, at seeded random moments. At the end the hub contains exactly the source's
//! records at the versions the source gave them. Also: a damaged outbox and an invalid configuration
//! stop the agent before it changes anything.

use chiso_agent::sample::SampleSpec;
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::process::{HubProcess, free_port, tail, write_sample_copies};
use chiso_tests::{Pki, binary, write_agent_config};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Dossiers per input file.
const PER_FILE: usize = 3_000;
/// Kill cycles; each kills an ingest and a push, and every fourth also the hub.
const CYCLES: usize = 24;

fn agent(args: &[&str], config: &Path) -> Command {
    let mut command = Command::new(binary("chiso-agent"));
    command.args(args).arg("--config").arg(config);
    command
}

/// Starts a command with its stderr appended to `log`, so a failure can show what it logged.
fn spawn_logged(mut command: Command, log: &Path) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    command
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("chiso-agent starts")
}

fn spec(dossiers: usize, seed: u64) -> SampleSpec {
    SampleSpec {
        province: "79".into(),
        dossiers,
        month: "2026-10".parse().unwrap(),
        seed,
        as_of: parse_portal_datetime("20261031235959").unwrap(),
    }
}

/// Rewrites a JSON Lines file, giving every `step`-th record a new procedure code, so those
/// records change content and get the next version.
fn changed_copy(source: &Path, target: &Path, step: usize, procedure: &str) {
    let text = std::fs::read_to_string(source).unwrap();
    let mut out = String::new();
    for (index, line) in text.lines().enumerate() {
        let mut record: Value = serde_json::from_str(line).unwrap();
        if index % step == 0 {
            record["MaTTHC"] = procedure.into();
        }
        out.push_str(&record.to_string());
        out.push('\n');
    }
    std::fs::write(target, out).unwrap();
}

/// The version each code must end at when `files` are ingested whole, once each, in order.
fn expected_versions(files: &[PathBuf]) -> BTreeMap<String, u64> {
    let mut seen: BTreeMap<String, (Value, u64)> = BTreeMap::new();
    for file in files {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let code = record["MaHoSo"].as_str().unwrap().to_string();
            match seen.get_mut(&code) {
                Some((last, version)) if *last != record => {
                    *last = record;
                    *version += 1;
                }
                Some(_) => {}
                None => {
                    seen.insert(code, (record, 1));
                }
            }
        }
    }
    seen.into_iter()
        .map(|(code, (_, version))| (code, version))
        .collect()
}

/// Waits up to `limit` for a child; kills it with SIGKILL if it is still running. Returns its
/// exit status and whether this function killed it.
fn wait_or_kill(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, bool) {
    let polls = limit.as_millis() / 10;
    for _ in 0..polls {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    (child.wait().unwrap(), true)
}

#[test]
fn sigkill_agent_and_hub_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["79"]).unwrap();
    let mut hub = HubProcess::start(&pki, &dir.path().join("hub")).unwrap();
    let config = write_agent_config(&dir.path().join("agent"), &pki, "79", &hub.url()).unwrap();

    // Eight files: new records, then changes to some of them, in an order that gives some
    // records a second and a third version.
    let data = dir.path().join("data");
    let new = write_sample_copies(&spec(PER_FILE, 11), "k", 4, &data).unwrap();
    let changed = |source: &Path, name: &str, step: usize| {
        let target = data.join(name);
        changed_copy(source, &target, step, &format!("MAU.{name}"));
        target
    };
    let a1 = changed(&new[0], "a1", 3);
    let b1 = changed(&new[1], "b1", 4);
    let a2 = changed(&a1, "a2", 5);
    let c1 = changed(&new[2], "c1", 2);
    let files = vec![
        new[0].clone(),
        a1,
        new[1].clone(),
        b1,
        a2,
        new[2].clone(),
        new[3].clone(),
        c1,
    ];
    let expected = expected_versions(&files);
    assert_eq!(expected.len(), 4 * PER_FILE);
    assert!(expected.values().any(|&version| version == 3));

    // Every agent process appends its log here, so a failure shows what the agent did.
    let run_log = dir.path().join("agent").join("run.log");
    let ingest_log = dir.path().join("agent").join("ingest.log");
    let logs = |hub: &HubProcess| {
        format!(
            "\n--- run log:\n{}\n--- ingest log:\n{}\n--- hub log:\n{}",
            tail(&run_log),
            tail(&ingest_log),
            tail(&hub.log)
        )
    };

    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(766);
    let mut next_file = 0;
    let (mut ingest_kills, mut run_kills, mut hub_kills) = (0, 0, 0);
    // Kill moments are drawn up to 1.5 times the last whole ingest, so that on any machine about
    // two thirds of the ingests die mid-way.
    let mut ingest_time = Duration::from_millis(500);
    for cycle in 0..CYCLES {
        let mut run = spawn_logged(agent(&["run"], &config), &run_log);
        if let Some(file) = files.get(next_file) {
            let ingest_started = Instant::now();
            let ingest = agent(&["ingest", file.to_str().unwrap()], &config);
            let mut ingest = spawn_logged(ingest, &ingest_log);
            let limit = ingest_time.mul_f64(rng.random_range(0.0..1.5));
            let (status, killed) = wait_or_kill(&mut ingest, limit);
            if killed {
                ingest_kills += 1;
            } else {
                assert!(
                    status.success(),
                    "cycle {cycle}: ingest of {} failed: {status}{}",
                    file.display(),
                    logs(&hub)
                );
                ingest_time = ingest_started.elapsed();
                next_file += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..400)));
        if cycle % 4 == 3 {
            hub.kill();
            hub_kills += 1;
            hub.restart().unwrap();
            std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
        }
        if let Some(status) = run.try_wait().unwrap() {
            panic!(
                "cycle {cycle}: chiso-agent run exited by itself with {status}{}",
                logs(&hub)
            );
        }
        let (status, _) = wait_or_kill(&mut run, Duration::ZERO);
        assert_eq!(status.signal(), Some(9), "cycle {cycle}{}", logs(&hub));
        run_kills += 1;
    }
    let cycles_time = started.elapsed();
    assert!(
        ingest_kills >= 3,
        "only {ingest_kills} ingests were killed mid-way"
    );
    assert_eq!((run_kills, hub_kills), (CYCLES, CYCLES / 4));

    // Whatever the kills left undone: the remaining files, then a push until drained.
    for file in &files[next_file..] {
        let output = agent(&["ingest", file.to_str().unwrap()], &config)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut drain = spawn_logged(agent(&["run", "--until-drained"], &config), &run_log);
    let (status, killed) = wait_or_kill(&mut drain, Duration::from_secs(180));
    assert!(
        !killed && status.success(),
        "the final drain failed: {status}{}",
        logs(&hub)
    );
    eprintln!(
        "{ingest_kills} ingests, {run_kills} pushes and {hub_kills} hubs killed in {} ms; {next_file} of {} files ingested whole; drained after {} ms",
        cycles_time.as_millis(),
        files.len(),
        started.elapsed().as_millis()
    );

    let stored = hub.versions("79").unwrap();
    assert_eq!(
        stored.len(),
        expected.len(),
        "every record reached the hub once"
    );
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(code, version)| stored.get(*code) != Some(version))
        .take(5)
        .collect();
    assert!(wrong.is_empty(), "versions differ for {wrong:?}");
    let (rows, distinct) = hub.count("79").unwrap();
    assert_eq!(rows, distinct);
}

/// Writes an agent configuration whose hub is a port nothing listens on, and ingests one file.
fn agent_with_backlog(dir: &Path, dossiers: usize) -> (Pki, PathBuf, PathBuf) {
    let pki = Pki::create(&dir.join("certs"), &["79"]).unwrap();
    let hub_url = format!("https://localhost:{}", free_port().unwrap());
    let config = write_agent_config(&dir.join("agent"), &pki, "79", &hub_url).unwrap();
    let files = write_sample_copies(&spec(dossiers, 5), "c", 1, &dir.join("data")).unwrap();
    let output = agent(&["ingest", files[0].to_str().unwrap()], &config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (pki, config, dir.join("agent").join("outbox.db"))
}

fn folder_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn run_briefly(config: &Path) -> Output {
    let mut child = agent(&["run"], config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (_, killed) = wait_or_kill(&mut child, Duration::from_secs(30));
    assert!(!killed, "the agent kept running");
    child.wait_with_output().unwrap()
}

#[test]
fn damaged_outbox_stops_the_agent_and_stays_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (_pki, config, outbox) = agent_with_backlog(dir.path(), 3_000);
    let pristine = std::fs::read(&outbox).unwrap();
    let before_names = folder_names(outbox.parent().unwrap());

    // A damaged page in the middle of the file, then a damaged header.
    let mut middle = pristine.clone();
    let at = middle.len() / 2;
    middle[at..at + 4096].fill(0x5a);
    let mut header = pristine.clone();
    header[..100].fill(0x00);
    for (damage, bytes, phrase) in [
        ("middle page", middle, "is damaged"),
        ("header", header, "not a SQLite database"),
    ] {
        std::fs::write(&outbox, &bytes).unwrap();
        let output = run_briefly(&config);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{damage}: {stderr}");
        assert!(stderr.contains(phrase), "{damage}: {stderr}");
        assert!(
            stderr.contains(&outbox.display().to_string()),
            "{damage}: {stderr}"
        );
        assert!(
            std::fs::read(&outbox).unwrap() == bytes,
            "{damage}: the file changed"
        );
        assert_eq!(
            folder_names(outbox.parent().unwrap()),
            before_names,
            "{damage}"
        );
    }
}

#[test]
fn invalid_config_with_backlog_leaves_outbox_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (_pki, config, outbox) = agent_with_backlog(dir.path(), 1_000);
    let valid = std::fs::read_to_string(&config).unwrap();
    let pristine = std::fs::read(&outbox).unwrap();
    let names = folder_names(outbox.parent().unwrap());

    let cases = [
        ("window = 4", "window = 0", "push.window"),
        (
            "poll_ms = 50",
            "poll_ms = 50\nack_timeout_ms = 5",
            "push.ack_timeout_ms",
        ),
        (
            "[tls]",
            "[intake]\nlisten = \"0.0.0.0:8088\"\n\n[tls]",
            "intake.listen",
        ),
        (
            "[tls]",
            "[limits]\noutbox_max_records = 0\n\n[tls]",
            "limits.outbox_max_records",
        ),
        ("locality = \"79\"", "locality = \"7\"", "locality"),
        ("[tls]", "surprise = 1\n[tls]", "surprise"),
    ];
    for (from, to, key) in cases {
        assert!(valid.contains(from), "{from}");
        std::fs::write(&config, valid.replacen(from, to, 1)).unwrap();
        for command in [&["run"][..], &["status"], &["resend", "--all"]] {
            let output = agent(command, &config).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{key} {command:?}: {stderr}");
            assert!(stderr.contains(key), "{key} {command:?}: {stderr}");
        }
        assert!(
            std::fs::read(&outbox).unwrap() == pristine,
            "{key}: the outbox changed"
        );
        assert_eq!(folder_names(outbox.parent().unwrap()), names, "{key}");
    }

    std::fs::write(&config, valid).unwrap();
    let status = agent(&["status"], &config).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("backlog:         1000"), "{text}");
}
