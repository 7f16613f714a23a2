//! The whole path through the real binaries: `chiso-agent ingest` reads national-format files,
//! `chiso-agent run` pushes them over mutual TLS to a hub on 127.0.0.1, and the hub's scores
//! equal values computed by hand.

use chiso_proto::v1::{GetScoresResponse, IndicatorScore, UnitScore};
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::{Pki, binary, hub_config, start_hub, write_agent_config};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;

fn dossier(
    code: &str,
    unit: &str,
    channel: u8,
    status: u8,
    received: &str,
    due: &str,
    finished: &str,
) -> Value {
    json!({
        "MaHoSo": code,
        "MaDonVi": unit,
        "MaTTHC": "1.001612",
        "MaLinhVuc": "G09-TP01",
        "KenhThucHien": channel.to_string(),
        "TrangThaiHoSo": status.to_string(),
        "NgayTiepNhan": received,
        "NgayHenTra": due,
        "NgayKetThucXuLy": finished,
        "ChuHoSo": "Nguyễn Văn Thử",
        "SoGiayToChuHoSo": "001099012345",
        "SoDienThoai": "0912345678",
    })
}

fn envelope(records: Vec<Value>) -> Value {
    json!({"session": "s", "madonvi": "01", "service": "DongBoHoSoMC", "isUpdating": false, "data": records})
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

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn unit<'a>(response: &'a GetScoresResponse, code: &str) -> &'a UnitScore {
    response
        .units
        .iter()
        .find(|unit| unit.unit_code == code)
        .unwrap_or_else(|| panic!("unit {code} missing from {response:?}"))
}

/// Finds an indicator, or a part of one (ONLINE_FILING is part 3.3 of ONLINE_SERVICE).
fn indicator<'a>(unit: &'a UnitScore, id: &str) -> &'a IndicatorScore {
    unit.indicators
        .iter()
        .flat_map(|indicator| std::iter::once(indicator).chain(&indicator.parts))
        .find(|indicator| indicator.id == id)
        .unwrap_or_else(|| panic!("indicator {id} missing from unit {}", unit.unit_code))
}

fn assert_score(unit: &UnitScore, id: &str, numerator: u64, denominator: u64, points: f64) {
    let score = indicator(unit, id);
    assert_eq!(
        score.numerator, numerator,
        "{} {id} numerator",
        unit.unit_code
    );
    assert_eq!(
        score.denominator, denominator,
        "{} {id} denominator",
        unit.unit_code
    );
    let got = score.points.expect("assessed");
    assert!(
        (got - points).abs() < 1e-9,
        "{} {id} points {got} != {points}",
        unit.unit_code
    );
}

/// October 2026 in Hà Nội (locality 01), two communes and the province itself, scored as of
/// 31 October 23:59:59 Vietnam time. Dates are Vietnam time.
fn hand_computed_dataset() -> Value {
    envelope(vec![
        // 00004: received 00:30 on 1 Oct (still 30 Sep in UTC), online, finished early.
        dossier(
            "D1",
            "00004",
            2,
            10,
            "20261001003000",
            "20261005170000",
            "20261003090000",
        ),
        // 00004: in person, finished on the due date: on time.
        dossier(
            "D2",
            "00004",
            1,
            9,
            "20261002080000",
            "20261006170000",
            "20261006160000",
        ),
        // 00004: online, finished two days after the due date: late.
        dossier(
            "D3",
            "00004",
            2,
            10,
            "20261003080000",
            "20261008170000",
            "20261010090000",
        ),
        // 00008: in person, unfinished, due 20 Oct, before the month's end: late.
        dossier("D4", "00008", 1, 4, "20261010080000", "20261020170000", ""),
        // 00008: online, unfinished, due in November: on time.
        dossier("D5", "00008", 2, 4, "20261030080000", "20261105170000", ""),
        // 00008: received 30 Sep 23:59, finished 2 Oct before its due date: carried over into
        // October and on time there; not received in October.
        dossier(
            "D6",
            "00008",
            1,
            10,
            "20260930235900",
            "20261003170000",
            "20261002100000",
        ),
        // Province level: online, not accepted (status 3): out of the on-time set, still filed.
        dossier("D7", "01", 2, 3, "20261015080000", "", ""),
        // 00004: finished in September: in neither October set.
        dossier(
            "D8",
            "00004",
            1,
            10,
            "20260920080000",
            "20260925170000",
            "20260924170000",
        ),
        // 00008: in person, finished on its due date.
        dossier(
            "D9",
            "00008",
            1,
            10,
            "20261012080000",
            "20261013170000",
            "20261013110000",
        ),
    ])
}

#[tokio::test]
async fn scores_match_hand_computed_values() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();
    let config = write_agent_config(&dir.path().join("agent"), &pki, "01", &hub.url()).unwrap();
    let file = dir.path().join("october.json");
    std::fs::write(&file, hand_computed_dataset().to_string()).unwrap();

    let ingest = agent(&["ingest", file.to_str().unwrap()], &config).await;
    assert!(
        ingest.status.success(),
        "ingest failed: {}",
        stdout(&ingest)
    );
    assert!(
        stdout(&ingest).contains("9 records, 9 new"),
        "{}",
        stdout(&ingest)
    );
    let run = agent(&["run", "--until-drained"], &config).await;
    assert!(
        run.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );

    let channel = chiso_agent::push::connect(&hub.url(), pki.client_tls("agent-01").unwrap())
        .await
        .unwrap();
    let as_of = parse_portal_datetime("20261031235959").unwrap();
    let october = chiso_agent::scores::fetch(channel.clone(), "01", "2026-10", as_of)
        .await
        .unwrap();

    // 00004: on time D1, D2 of D1, D2, D3 -> 20 * 2/3. Online D1, D3 of 3 -> 0.667 >= 0.5 -> 6.
    assert_score(
        unit(&october, "00004"),
        "DOSSIER_ON_TIME",
        2,
        3,
        20.0 * 2.0 / 3.0,
    );
    assert_score(unit(&october, "00004"), "ONLINE_FILING", 2, 3, 6.0);
    // 00008: on time D5, D6, D9 of D4, D5, D6, D9 -> 20 * 3/4 = 15.
    // Online D5 of D4, D5, D9 -> rate 1/3, below 50% -> 6 * (1/3) / 0.5 = 4.
    assert_score(unit(&october, "00008"), "DOSSIER_ON_TIME", 3, 4, 15.0);
    assert_score(unit(&october, "00008"), "ONLINE_FILING", 1, 3, 4.0);
    // Province 01 sums the counts of itself and its communes, never averages their scores:
    // on time 2 + 3 = 5 of 3 + 4 = 7 (D7 not accepted) -> 20 * 5/7.
    // Online 2 + 1 + 1 (D7) = 4 of 3 + 3 + 1 = 7 -> 0.571 >= 0.5 -> 6.
    // The watermark names the one contributing agent and its nine committed records.
    assert_eq!(october.watermarks.len(), 1, "{:?}", october.watermarks);
    let watermark = &october.watermarks[0];
    assert_eq!(
        (watermark.locality.as_str(), watermark.last_committed_seq),
        ("01", 9)
    );
    assert!(watermark.last_batch_unix_ms > 0);
    assert!(watermark.latest_record_unix_ms > 0);
    assert!(
        october.counters_as_of_day >= 20261204,
        "{}",
        october.counters_as_of_day
    );
    let province = unit(&october, "01");
    assert_eq!(province.level, "province");
    assert_score(province, "DOSSIER_ON_TIME", 5, 7, 20.0 * 5.0 / 7.0);
    assert_score(province, "ONLINE_FILING", 4, 7, 6.0);
    // Satisfied: on time at 31 October with no bad rating or complaint, of the 7 received in
    // October: D1, D2, D5, D7 (no due date) and D9 -> 5/7 against a full mark at 90%.
    let satisfied = indicator(province, "DOSSIER_RECEIVING_SATISFACTION");
    assert_eq!((satisfied.numerator, satisfied.denominator), (5, 7));
    // The total adds the 2 points the dvcqg-2026 catalogue gives ELECTRONIC_CERTIFIED_COPY and
    // the full 6 + 6 of the two feedback indicators, as no feedback was received.
    // The agent's digests report the 7 received in October, as stored: DOSSIER_SYNC gives 6.
    let synced = indicator(province, "DOSSIER_SYNC");
    assert_eq!((synced.numerator, synced.denominator), (7, 7));
    let expected = 6.0 + 20.0 * 5.0 / 7.0 + 6.0 + 2.0 + 6.0 * (5.0 / 7.0) / 0.9 + 12.0;
    assert!(
        (province.points - expected).abs() < 1e-9,
        "{} against {expected}",
        province.points
    );

    // A commune of Hà Nội with no dossier is listed and not assessed, not zero.
    let quiet = unit(&october, "00025");
    let on_time = indicator(quiet, "DOSSIER_ON_TIME");
    assert!(!on_time.assessed);
    assert_eq!(on_time.points, None);
    assert_eq!(on_time.rate, None);

    // September: D1 (00:30 on 1 Oct Vietnam time) must not count there. 00004 filed only D8,
    // in person: online 0 of 1.
    let september = chiso_agent::scores::fetch(channel.clone(), "01", "2026-09", as_of)
        .await
        .unwrap();
    assert_score(unit(&september, "00004"), "ONLINE_FILING", 0, 1, 0.0);

    // The country is the sum of its provinces.
    let country = chiso_agent::scores::fetch(channel, "", "2026-10", as_of)
        .await
        .unwrap();
    assert_score(
        unit(&country, "VN"),
        "DOSSIER_ON_TIME",
        5,
        7,
        20.0 * 5.0 / 7.0,
    );
    assert_eq!(country.units.len(), 1 + 34);

    // The agent's own scores command prints and writes the same figures.
    let json_path = dir.path().join("portal/scores.json");
    let scores = agent(
        &[
            "scores",
            "--period",
            "2026-10",
            "--json",
            json_path.to_str().unwrap(),
        ],
        &config,
    )
    .await;
    assert!(
        scores.status.success(),
        "{}",
        String::from_utf8_lossy(&scores.stderr)
    );
    assert!(
        stdout(&scores).contains("14.29 (5/7, 71.43%)"),
        "{}",
        stdout(&scores)
    );
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(written["units"][0]["unit_code"], "01");
    let on_time = written["units"][0]["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|indicator| indicator["id"] == "DOSSIER_ON_TIME")
        .unwrap();
    assert_eq!(on_time["numerator"], 5);
    chiso_tests::verify_counters(&hub.config.database);
    hub.stop().await;
}

#[tokio::test]
async fn malformed_records_are_reported_and_valid_ones_stored() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();
    let config = write_agent_config(&dir.path().join("agent"), &pki, "01", &hub.url()).unwrap();

    let mut bad_channel = dossier("B1", "00004", 9, 4, "20261002080000", "", "");
    bad_channel["KenhThucHien"] = json!("9");
    let mut no_code = dossier("B3", "00004", 2, 4, "20261002080000", "", "");
    no_code.as_object_mut().unwrap().remove("MaHoSo");
    let records = vec![
        dossier("G0", "00004", 2, 4, "20261001080000", "20261010170000", ""),
        bad_channel,
        dossier("G2", "00008", 1, 4, "20261001080000", "", ""),
        no_code,
        dossier("B4", "00004", 2, 4, "2026-10-01 08:00", "", ""),
        // 25747 is a ward of province 79.
        dossier("B5", "25747", 2, 4, "20261001080000", "", ""),
    ];
    let file = dir.path().join("mixed.json");
    std::fs::write(&file, envelope(records).to_string()).unwrap();

    let ingest = agent(&["ingest", file.to_str().unwrap()], &config).await;
    let printed = stdout(&ingest);
    assert_eq!(ingest.status.code(), Some(3), "{printed}");
    assert!(
        printed.contains("6 records, 2 new, 0 changed, 0 unchanged, 4 rejected"),
        "{printed}"
    );
    let name = file.display().to_string();
    for (index, field) in [
        (1, "KenhThucHien"),
        (3, "MaHoSo"),
        (4, "NgayTiepNhan"),
        (5, "MaDonVi"),
    ] {
        let place = format!("{name}:{index}");
        let line = printed
            .lines()
            .find(|line| line.contains(&place))
            .unwrap_or_else(|| panic!("no report for record {index}: {printed}"));
        assert!(
            line.contains(field),
            "record {index} should name {field}: {line}"
        );
    }
    assert!(
        !printed.contains("Nguyễn Văn Thử"),
        "a personal field reached the output"
    );
    assert!(
        !printed.contains("001099012345"),
        "a personal field reached the output"
    );

    // Ingesting the same file again changes nothing.
    let again = agent(&["ingest", file.to_str().unwrap()], &config).await;
    assert!(stdout(&again).contains("2 unchanged"), "{}", stdout(&again));

    let rejects = agent(&["rejects"], &config).await;
    assert!(
        stdout(&rejects).contains("KenhThucHien"),
        "{}",
        stdout(&rejects)
    );

    let run = agent(&["run", "--until-drained"], &config).await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let connection = hub.store.reader().unwrap();
    let mut codes: Vec<String> = connection
        .prepare("SELECT code FROM dossiers ORDER BY code")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    codes.sort();
    assert_eq!(codes, ["G0", "G2"]);
    chiso_tests::verify_counters(&hub.config.database);
    hub.stop().await;
}

#[tokio::test]
async fn replaced_outbox_stops_instead_of_dropping_rows() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();
    let first = write_agent_config(&dir.path().join("first"), &pki, "01", &hub.url()).unwrap();
    let records = |prefix: &str| {
        let list = (0..5)
            .map(|i| {
                dossier(
                    &format!("{prefix}{i}"),
                    "00004",
                    2,
                    4,
                    "20261001080000",
                    "",
                    "",
                )
            })
            .collect();
        envelope(list)
    };
    let first_file = dir.path().join("first.json");
    std::fs::write(&first_file, records("A").to_string()).unwrap();
    assert!(
        agent(&["ingest", first_file.to_str().unwrap()], &first)
            .await
            .status
            .success()
    );
    assert!(
        agent(&["run", "--until-drained"], &first)
            .await
            .status
            .success()
    );

    // A second, new outbox for the same locality numbers its rows from 1 again.
    let second = write_agent_config(&dir.path().join("second"), &pki, "01", &hub.url()).unwrap();
    let second_file = dir.path().join("second.json");
    std::fs::write(&second_file, records("B").to_string()).unwrap();
    assert!(
        agent(&["ingest", second_file.to_str().unwrap()], &second)
            .await
            .status
            .success()
    );
    let run = agent(&["run", "--until-drained"], &second).await;

    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(
        !run.status.success(),
        "the agent resumed after another outbox's watermark"
    );
    assert!(stderr.contains("another outbox"), "{stderr}");
    let status = agent(&["status"], &second).await;
    assert!(
        stdout(&status).contains("backlog:         5"),
        "{}",
        stdout(&status)
    );
    let (rows, _) = chiso_tests::hub_count_distinct(&hub.store, "01").unwrap();
    assert_eq!(rows, 5, "only the first outbox's records are at the hub");
    hub.stop().await;
}

#[tokio::test]
async fn certificate_of_another_locality_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01", "79"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();
    let config = write_agent_config(&dir.path().join("agent"), &pki, "79", &hub.url()).unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("agent-79", "agent-01");
    std::fs::write(&config, text).unwrap();

    let run = agent(&["run", "--until-drained"], &config).await;

    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(!run.status.success());
    assert!(stderr.contains("spiffe://chiso/agent/01"), "{stderr}");
    assert!(stderr.contains("locality = 79"), "{stderr}");
    hub.stop().await;
}
