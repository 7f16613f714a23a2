//! Completeness end to end, through the real `chiso-agent` binary and a hub on 127.0.0.1 over
//! mutual TLS. Dossiers deleted from the hub's SQLite file are found by the next digest and
//! resent from the agent's retained payloads. Records past retention are listed for re-export
//! and come back once ingested again. Re-ingested files and new versions produce no gap.
//!
//! The dossiers are received in the last days before now, because each digest covers the recent
//! days only.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use chiso_proto::vntime::{Month, format_portal_datetime, vietnam_day};
use chiso_tests::{
    HubHandle, Pki, binary, hub_config, hub_count_distinct, start_hub, write_agent_config,
};
use rusqlite::Connection;
use serde_json::{Value, json};

/// Builds a dossier in the national format, received `days_ago` days before now. Statuses 9
/// and 10 (processed, returned) finish an hour after receipt.
fn dossier(code: &str, unit: &str, days_ago: i64, status: u8) -> Value {
    let received = now() - days_ago * 86_400;
    let finished = match status {
        9 | 10 => format_portal_datetime(received + 3_600),
        _ => String::new(),
    };
    json!({
        "MaHoSo": code,
        "MaDonVi": unit,
        "MaTTHC": "1.001612",
        "MaLinhVuc": "G09-TP01",
        "KenhThucHien": "2",
        "TrangThaiHoSo": status.to_string(),
        "NgayTiepNhan": format_portal_datetime(received),
        "NgayHenTra": format_portal_datetime(received + 10 * 86_400),
        "NgayKetThucXuLy": finished,
        "ChuHoSo": "Nguyễn Văn Thử",
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn write_file(path: &Path, records: Vec<Value>) {
    let envelope = json!({"session": "s", "madonvi": "01", "service": "DongBoHoSoMC", "isUpdating": false, "data": records});
    std::fs::write(path, envelope.to_string()).unwrap();
}

/// Builds 30 dossiers: units 00004 and 00008, received 1, 2 and 3 days ago, 5 per unit-day.
fn thirty_dossiers() -> Vec<Value> {
    let mut records = Vec::new();
    for (unit, prefix) in [("00004", "A"), ("00008", "B")] {
        for days_ago in 1..=3 {
            for index in 0..5 {
                let code = format!("{prefix}{days_ago}-{index}");
                records.push(dossier(&code, unit, days_ago, 4));
            }
        }
    }
    records
}

async fn agent(args: &[&str], config: &Path) -> Output {
    tokio::process::Command::new(binary("chiso-agent"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .expect("chiso-agent starts")
}

/// Runs the agent until its outbox is drained and returns its log without terminal colours.
async fn run_until_drained(config: &Path) -> String {
    let run = agent(&["run", "--until-drained"], config).await;
    let stderr = strip_colours(&String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "run failed: {stderr}");
    stderr
}

/// Removes the ANSI colour sequences (`ESC [ ... m`) the log formatter writes.
fn strip_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}

async fn ingest(config: &Path, file: &Path) -> String {
    let output = agent(&["ingest", file.to_str().unwrap()], config).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "ingest failed: {stdout}");
    stdout
}

async fn gaps_command(config: &Path) -> String {
    let output = agent(&["gaps"], config).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Returns the hub's gap rows: unit, day, agent count, hub count, closed.
fn hub_gaps(hub: &HubHandle) -> Vec<(String, u32, i64, i64, bool)> {
    let conn = hub.store.reader().unwrap();
    let mut statement = conn
        .prepare(
            "SELECT unit_code, day, agent_count, hub_count, closed_at_ms IS NOT NULL
             FROM gaps ORDER BY unit_code, day",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Deletes dossiers from the hub's database file with a connection of its own.
fn delete_at_hub(hub: &HubHandle, codes: &[&str]) {
    let conn = Connection::open(&hub.config.database).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    for code in codes {
        let deleted = conn
            .execute("DELETE FROM dossiers WHERE code = ?1", [code])
            .unwrap();
        assert_eq!(deleted, 1, "dossier {code} was at the hub");
    }
}

fn hub_version(hub: &HubHandle, code: &str) -> i64 {
    let conn = hub.store.reader().unwrap();
    conn.query_row(
        "SELECT version FROM dossiers WHERE code = ?1",
        [code],
        |row| row.get(0),
    )
    .unwrap()
}

/// Returns the `yyyymmdd` of the Vietnam day `days_ago` days before now.
fn day_number(days_ago: i64) -> u32 {
    chiso_proto::digest::day_to_number(vietnam_day(now() - days_ago * 86_400))
}

/// Sums the province's completeness over the months of the last three days.
async fn province_completeness(hub: &HubHandle, pki: &Pki) -> (u64, u64, u32) {
    let months: BTreeSet<String> = (1..=3)
        .map(|days_ago| Month::of_instant(now() - days_ago * 86_400).to_string())
        .collect();
    let channel = chiso_agent::push::connect(&hub.url(), pki.client_tls("agent-01").unwrap())
        .await
        .unwrap();
    let mut totals = (0, 0, 0);
    for month in months {
        let response = chiso_agent::scores::fetch(channel.clone(), "01", &month, 0)
            .await
            .unwrap();
        let province = &response.units[0];
        assert_eq!(province.unit_code, "01");
        let completeness = province.completeness.expect("GetScores fills completeness");
        totals.0 += completeness.agent_count;
        totals.1 += completeness.hub_count;
        totals.2 += completeness.open_gaps;
    }
    totals
}

#[tokio::test]
async fn deleted_dossiers_found_and_resent() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();
    let config = write_agent_config(&dir.path().join("agent"), &pki, "01", &hub.url()).unwrap();
    let file = dir.path().join("dossiers.json");
    write_file(&file, thirty_dossiers());

    ingest(&config, &file).await;
    let first = run_until_drained(&config).await;
    assert!(first.contains("completeness round finished"), "{first}");
    assert_eq!(hub_count_distinct(&hub.store, "01").unwrap(), (30, 30));
    assert!(hub_gaps(&hub).is_empty(), "no gap before anything is lost");

    // Lose three dossiers of one unit-day and one of another, while the hub runs.
    delete_at_hub(&hub, &["A1-0", "A1-1", "A1-2", "B3-4"]);
    assert_eq!(hub_count_distinct(&hub.store, "01").unwrap().0, 26);
    assert_eq!(province_completeness(&hub, &pki).await, (30, 26, 0));

    let second = run_until_drained(&config).await;
    assert!(
        second.contains("hub lacks records of a unit-day"),
        "{second}"
    );
    let gaps = hub_gaps(&hub);
    assert_eq!(
        gaps,
        vec![
            ("00004".to_string(), day_number(1), 5, 2, true),
            ("00008".to_string(), day_number(3), 5, 4, true),
        ],
        "each gap is recorded with its counts and closed after the resend"
    );
    assert_eq!(hub_count_distinct(&hub.store, "01").unwrap(), (30, 30));
    assert_eq!(hub_version(&hub, "A1-0"), 1, "a resend keeps the version");
    assert_eq!(province_completeness(&hub, &pki).await, (30, 30, 0));
    assert_eq!(gaps_command(&config).await.trim(), "no open gaps");
    chiso_tests::verify_counters(&hub.config.database);
    hub.stop().await;
}

#[tokio::test]
async fn records_past_retention_listed_for_reexport() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();
    let agent_dir = dir.path().join("agent");
    let config = write_agent_config(&agent_dir, &pki, "01", &hub.url()).unwrap();
    let records: Vec<Value> = (0..10)
        .map(|index| dossier(&format!("R{index}"), "00004", 2, 4))
        .collect();
    let file = dir.path().join("dossiers.json");
    write_file(&file, records);
    ingest(&config, &file).await;
    run_until_drained(&config).await;

    // Three payloads were acknowledged long ago, so the next round prunes them.
    let outbox = Connection::open(agent_dir.join("outbox.db")).unwrap();
    let aged = outbox
        .execute(
            "UPDATE retained SET acked_at_ms = 0 WHERE key IN ('R0', 'R1', 'R2')",
            [],
        )
        .unwrap();
    assert_eq!(aged, 3);
    drop(outbox);
    delete_at_hub(&hub, &["R0", "R1", "R2", "R3"]);

    let run = run_until_drained(&config).await;
    let error_line = run
        .lines()
        .find(|line| line.contains("ERROR") && line.contains("past retention"))
        .unwrap_or_else(|| panic!("no error line for the lost records: {run}"));
    assert!(error_line.contains("keys=3"), "{error_line}");
    assert!(error_line.contains("00004"), "{error_line}");
    assert_eq!(
        hub_count_distinct(&hub.store, "01").unwrap().0,
        7,
        "R3 was resent"
    );
    assert_eq!(
        hub_gaps(&hub),
        vec![("00004".to_string(), day_number(2), 10, 7, false)]
    );

    let listed = gaps_command(&config).await;
    assert!(listed.contains("agent 10, hub 7"), "{listed}");
    for key in ["R0", "R1", "R2"] {
        let line = format!(
            "re-export unit 00004 day {} key {key} version 1",
            day_number(2)
        );
        assert!(listed.contains(&line), "{key} missing from: {listed}");
    }
    assert!(!listed.contains("key R3"), "{listed}");

    // The operator exports the same records again: they go out at the next version.
    let again = ingest(&config, &file).await;
    assert!(
        again.contains("10 records, 0 new, 3 changed, 7 unchanged"),
        "{again}"
    );
    run_until_drained(&config).await;
    assert_eq!(hub_count_distinct(&hub.store, "01").unwrap(), (10, 10));
    assert_eq!(hub_version(&hub, "R0"), 2);
    assert_eq!(hub_version(&hub, "R3"), 1);
    assert!(hub_gaps(&hub)[0].4, "the gap is closed");
    assert_eq!(gaps_command(&config).await.trim(), "no open gaps");
    chiso_tests::verify_counters(&hub.config.database);
    hub.stop().await;
}

#[tokio::test]
async fn reingest_and_new_versions_make_no_gap() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();
    let config = write_agent_config(&dir.path().join("agent"), &pki, "01", &hub.url()).unwrap();

    let first = dir.path().join("first.json");
    write_file(&first, thirty_dossiers());
    ingest(&config, &first).await;
    run_until_drained(&config).await;

    // The same file again, then five dossiers processed (version 2), then two of them returned
    // (version 3) with two new ones, each followed by a push.
    let unchanged = ingest(&config, &first).await;
    assert!(
        unchanged.contains("30 records, 0 new, 0 changed, 30 unchanged"),
        "{unchanged}"
    );
    let second = dir.path().join("second.json");
    let processed = ["A1-0", "A2-1", "B1-2", "B2-3", "B3-4"];
    let days_ago = [1, 2, 1, 2, 3];
    let unit = ["00004", "00004", "00008", "00008", "00008"];
    let changed: Vec<Value> = (0..5)
        .map(|i| dossier(processed[i], unit[i], days_ago[i], 9))
        .collect();
    write_file(&second, changed);
    ingest(&config, &second).await;
    run_until_drained(&config).await;
    let third = dir.path().join("third.json");
    write_file(
        &third,
        vec![
            dossier("A1-0", "00004", 1, 10),
            dossier("B3-4", "00008", 3, 10),
            dossier("N-1", "00004", 1, 4),
            dossier("N-2", "00008", 2, 4),
        ],
    );
    ingest(&config, &third).await;
    let last = run_until_drained(&config).await;

    assert!(last.contains("completeness round finished"), "{last}");
    assert!(!last.contains("hub lacks records"), "{last}");
    assert!(hub_gaps(&hub).is_empty(), "no gap was ever recorded");
    assert_eq!(hub_count_distinct(&hub.store, "01").unwrap(), (32, 32));
    assert_eq!(hub_version(&hub, "A1-0"), 3);
    assert_eq!(hub_version(&hub, "A2-1"), 2);
    assert_eq!(province_completeness(&hub, &pki).await, (32, 32, 0));
    assert_eq!(gaps_command(&config).await.trim(), "no open gaps");
    chiso_tests::verify_counters(&hub.config.database);
    hub.stop().await;
}
