//! Indicator catalogues end to end: the real `chiso-hub score` process reading counts on
//! stdin, a hub configured with the five-group `766-2022` catalogue serving a quarter over
//! mutual TLS, and a hub refusing to start on an invalid catalogue file.

use std::io::Write;
use std::process::{Command, Stdio};

use chiso_proto::v1::record::Body;
use chiso_proto::v1::{Batch, Dossier, Record};
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::{Pki, binary, hub_config, start_hub};
use serde_json::Value;

/// Runs `chiso-hub score` with `args`, writing `stdin`; returns stdout, stderr and success.
fn score(args: &[&str], stdin: &str) -> (String, String, bool) {
    let mut child = Command::new(binary("chiso-hub"))
        .arg("score")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chiso-hub starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

const COUNTS: &str = r#"{"metrics": {
    "DOSSIER_ON_TIME": {"numerator": 156, "denominator": 161},
    "ONLINE_FILING": {"numerator": 1, "denominator": 4}
}}"#;

#[test]
fn score_command_reads_stdin() {
    let (stdout, stderr, success) = score(
        &["--metric", "DOSSIER_ON_TIME", "--target-points", "19.5"],
        COUNTS,
    );
    assert!(success, "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    // 20 × 156/161 + 3 (ONLINE_FILING: 6 × 0.25 / 0.5) + 2 (ELECTRONIC_CERTIFIED_COPY).
    assert_eq!(
        json["total"].as_f64(),
        Some(20.0 * (156.0 / 161.0) + 3.0 + 2.0)
    );
    assert_eq!(json["band"], "Yếu");
    assert_eq!(json["target"]["additional_records"], 39);

    let (stdout, stderr, success) = score(&["--catalogue", "766-2022", "--format", "text"], COUNTS);
    assert!(success, "{stderr}");
    assert!(stdout.contains("Catalogue 766-2022"), "{stdout}");
    assert!(
        stdout.contains("Group 3 Cung cấp dịch vụ trực tuyến: 3.00 / 22.00"),
        "{stdout}"
    );
    assert!(stdout.contains("Total 24.38 / 100.00"), "{stdout}");

    let (_, stderr, success) = score(
        &[],
        r#"{"metrics": {"ONLINE": {"numerator": 1, "denominator": 2}}}"#,
    );
    assert!(!success);
    assert!(stderr.contains("unknown metric \"ONLINE\""), "{stderr}");
}

fn dossier(
    seq: u64,
    code: &str,
    unit: &str,
    received: &str,
    due: &str,
    finished: Option<&str>,
) -> Record {
    let time = |value: &str| parse_portal_datetime(value).unwrap();
    Record {
        seq,
        body: Some(Body::Dossier(Dossier {
            code: code.to_string(),
            version: 1,
            unit_code: unit.to_string(),
            procedure_code: "1.001612".to_string(),
            channel: 2,
            status: if finished.is_some() { 10 } else { 4 },
            received_at: time(received),
            due_at: Some(time(due)),
            finished_at: finished.map(time),
            electronic_result: true,
            ..Dossier::default()
        })),
    }
}

#[tokio::test]
async fn hub_serves_configured_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let mut config = hub_config(&pki, dir.path());
    config.catalogue = Some("766-2022".to_string());
    let hub = start_hub(config).await.unwrap();

    // Phường Ba Đình: one dossier on time in October, one late in December.
    let batch = Batch {
        batch_id: 1,
        records: vec![
            dossier(
                1,
                "Q1",
                "00004",
                "20261005080000",
                "20261010170000",
                Some("20261009100000"),
            ),
            dossier(
                2,
                "Q2",
                "00004",
                "20261201080000",
                "20261205170000",
                Some("20261210100000"),
            ),
        ],
    };
    let ack = hub.store.apply_batch("01", batch).await.unwrap();
    assert_eq!(ack.stored, 2, "{:?}", ack.rejections);

    let channel = chiso_agent::push::connect(&hub.url(), pki.client_tls("agent-01").unwrap())
        .await
        .unwrap();
    let as_of = parse_portal_datetime("20270110120000").unwrap();
    let quarter = chiso_agent::scores::fetch(channel.clone(), "00004", "2026-Q4", as_of)
        .await
        .unwrap();
    assert_eq!(quarter.catalogue_version, "766-2022");
    assert_eq!(quarter.period, "2026-Q4");
    let ba_dinh = &quarter.units[0];
    let maxima: Vec<f64> = ba_dinh
        .groups
        .iter()
        .map(|group| group.max_points)
        .collect();
    assert_eq!(maxima, vec![18.0, 20.0, 22.0, 22.0, 18.0]);
    // On time 1 of 2: 10 points; both filed online: 6; both with an electronic result: 6;
    // ELECTRONIC_CERTIFIED_COPY 2; satisfied (on time, no bad rating) 1 of 2 against a full mark
    // at 90%: 6 × 0.5 / 0.9; no feedback: the full 6 + 6 of the two feedback indicators; no
    // digest above the two stored: DOSSIER_SYNC 6.
    let on_time = ba_dinh
        .indicators
        .iter()
        .find(|i| i.id == "DOSSIER_ON_TIME")
        .unwrap();
    assert_eq!((on_time.numerator, on_time.denominator), (1, 2));
    assert!(
        (ba_dinh.points - (6.0 + 10.0 + 6.0 + 6.0 + 2.0 + 6.0 * 0.5 / 0.9 + 12.0)).abs() < 1e-9,
        "{}",
        ba_dinh.points
    );
    assert_eq!((ba_dinh.rank, ba_dinh.rank_of), (1, 1));
    assert!(ba_dinh.groups[2].unconfirmed);

    let error = chiso_agent::scores::fetch(channel, "00004", "2026-Q5", as_of)
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(error.message().contains("2026-Q5"), "{}", error.message());
    hub.stop().await;
}

#[tokio::test]
async fn invalid_catalogue_stops_hub() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let file = dir.path().join("broken.toml");
    let text = include_str!("../hub/catalogues/dvcqg-2026.toml").replacen(
        "denominator = \"procedure.announced\"",
        "denominator = \"procedure.announce\"",
        1,
    );
    std::fs::write(&file, text).unwrap();
    let mut config = hub_config(&pki, dir.path());
    config.catalogue_file = Some(file);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let store = chiso_hub::store::StoreHandle::open(
        &config.database,
        chiso_proto::units::UnitCatalogue::official(),
    )
    .unwrap();
    let error = chiso_hub::server::serve(&config, listener, store, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("broken.toml"), "{error}");
    assert!(error.contains("indicator PUBLISH_ON_TIME"), "{error}");
    assert!(error.contains("\"procedure.announce\""), "{error}");
}
