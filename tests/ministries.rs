//! Ministries as their own unit tree, over real mutual TLS on 127.0.0.1. A ministry's agent pushes
//! records for its units and is rejected for another ministry's unit. The ministry's scorecard
//! sums its units and ranks among ministries, and the country leaves ministries out.

use chiso_proto::v1::push_request::Msg as RequestMsg;
use chiso_proto::v1::push_response::Msg as ResponseMsg;
use chiso_proto::v1::scores_client::ScoresClient;
use chiso_proto::v1::{
    Ack, Batch, Dossier, GetScoresRequest, GetScoresResponse, Hello, IndicatorScore, PushRequest,
    Record, RejectCode, UnitScore,
};
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::{Pki, binary, hub_config, start_hub, sync_client, verify_counters};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::transport::Endpoint;

/// Two units of the Ministry of Finance and one of the Ministry of Health, on top of the built-in
/// ministries.
const UNITS: &str = r#"
version = "e2e-units"
base = "ministries-2025"

[[unit]]
code = "TCT"
name = "Cục Thuế"
parent = "BTC"

[[unit]]
code = "KBNN"
name = "Kho bạc Nhà nước"
parent = "BTC"

[[unit]]
code = "CQLD"
name = "Cục Quản lý Dược"
parent = "BYT"
"#;

/// Builds a dossier received on 2 October 2026, due on 10 October and finished on `finished`.
fn dossier(seq: u64, code: &str, unit: &str, finished: &str) -> Record {
    let at = |value: &str| parse_portal_datetime(value).unwrap();
    Record {
        seq,
        body: Some(chiso_proto::v1::record::Body::Dossier(Dossier {
            code: code.into(),
            version: 1,
            unit_code: unit.into(),
            procedure_code: "1.001612".into(),
            channel: 2,
            status: 9,
            received_at: at("20261002080000"),
            due_at: Some(at("20261010170000")),
            finished_at: Some(at(finished)),
            ..Dossier::default()
        })),
    }
}

/// Pushes one batch with the agent certificate `stem` and returns its Ack.
async fn push(pki: &Pki, stem: &str, addr: SocketAddr, records: Vec<Record>) -> Ack {
    let hello = PushRequest {
        msg: Some(RequestMsg::Hello(Hello {
            agent_version: "test".into(),
            ..Hello::default()
        })),
    };
    let batch = PushRequest {
        msg: Some(RequestMsg::Batch(Batch {
            batch_id: 1,
            records,
        })),
    };
    let mut client = sync_client(pki, stem, addr).await.unwrap();
    let mut inbound = client
        .push(tokio_stream::iter(vec![hello, batch]))
        .await
        .unwrap()
        .into_inner();
    let welcome = inbound.next().await.unwrap().unwrap().msg;
    assert!(
        matches!(welcome, Some(ResponseMsg::Welcome(_))),
        "{welcome:?}"
    );
    match inbound.next().await.unwrap().unwrap().msg {
        Some(ResponseMsg::Ack(ack)) => ack,
        other => panic!("expected an Ack, got {other:?}"),
    }
}

async fn scores(pki: &Pki, addr: SocketAddr, code: &str, children: bool) -> GetScoresResponse {
    let channel = Endpoint::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(pki.client_tls("agent-01").unwrap())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = GetScoresRequest {
        unit_code: code.into(),
        period: "2026-10".into(),
        include_children: children,
        as_of: parse_portal_datetime("20261115120000").unwrap(),
    };
    ScoresClient::new(channel)
        .get_scores(request)
        .await
        .unwrap()
        .into_inner()
}

fn on_time(unit: &UnitScore) -> (u64, u64) {
    let scored: &IndicatorScore = unit
        .indicators
        .iter()
        .find(|scored| scored.id == "DOSSIER_ON_TIME")
        .expect("dvcqg-2026 has DOSSIER_ON_TIME");
    (scored.numerator, scored.denominator)
}

fn find<'a>(response: &'a GetScoresResponse, code: &str) -> &'a UnitScore {
    response
        .units
        .iter()
        .find(|unit| unit.unit_code == code)
        .unwrap_or_else(|| panic!("unit {code} missing from the scorecard"))
}

#[tokio::test]
async fn ministry_agent_pushes_its_units() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01", "BTC", "BYT"]).unwrap();
    let units_file = dir.path().join("ministries.toml");
    std::fs::write(&units_file, UNITS).unwrap();
    let mut config = hub_config(&pki, dir.path());
    config.units_file = Some(units_file);
    let database = config.database.clone();
    let hub = start_hub(config).await.unwrap();

    // The Ministry of Finance's agent: its own dossier and its units', and one for a unit of
    // the Ministry of Health. M3 is late.
    let finance = vec![
        dossier(1, "M1", "BTC", "20261005100000"),
        dossier(2, "M2", "TCT", "20261006100000"),
        dossier(3, "M3", "TCT", "20261020100000"),
        dossier(4, "M4", "KBNN", "20261007100000"),
        dossier(5, "M5", "CQLD", "20261007100000"),
    ];
    let ack = push(&pki, "agent-BTC", hub.addr, finance).await;
    assert_eq!(ack.committed_seq, 5);
    assert_eq!(ack.stored, 4, "{:?}", ack.rejections);
    assert_eq!(ack.rejections.len(), 1);
    let rejection = &ack.rejections[0];
    assert_eq!(rejection.key, "M5");
    assert_eq!(rejection.code, RejectCode::UnitNotAllowed as i32);
    assert!(
        rejection.message.contains("belongs to ministry BYT"),
        "{}",
        rejection.message
    );

    let health = vec![dossier(1, "Y1", "CQLD", "20261020100000")];
    let ack = push(&pki, "agent-BYT", hub.addr, health).await;
    assert_eq!(ack.stored, 1, "{:?}", ack.rejections);

    // A province's agent may not write a ministry's unit.
    let hanoi = vec![
        dossier(1, "H1", "00004", "20261005100000"),
        dossier(2, "H2", "TCT", "20261005100000"),
    ];
    let ack = push(&pki, "agent-01", hub.addr, hanoi).await;
    assert_eq!(ack.stored, 1, "{:?}", ack.rejections);
    assert_eq!(ack.rejections.len(), 1);
    assert_eq!(ack.rejections[0].code, RejectCode::UnitNotAllowed as i32);

    let response = scores(&pki, hub.addr, "BTC", true).await;
    assert!(
        response
            .unit_catalogue_version
            .ends_with("+ ministries-2025 + e2e-units"),
        "{}",
        response.unit_catalogue_version
    );
    let codes: Vec<&str> = response
        .units
        .iter()
        .map(|unit| unit.unit_code.as_str())
        .collect();
    assert_eq!(codes, ["BTC", "TCT", "KBNN"]);
    let ministry = &response.units[0];
    assert_eq!(ministry.level, "ministry");
    assert_eq!(on_time(ministry), (3, 4));
    assert_eq!((ministry.rank, ministry.rank_of), (1, 2));
    assert_eq!(on_time(find(&response, "TCT")), (1, 2));
    assert_eq!(on_time(find(&response, "KBNN")), (1, 1));
    let completeness = ministry
        .completeness
        .as_ref()
        .expect("completeness is attached");
    assert_eq!(completeness.hub_count, 4);

    let table = scores(&pki, hub.addr, "MINISTRIES", true).await;
    assert_eq!(table.units.len(), 1 + 17);
    assert_eq!(table.units[0].level, "ministries");
    assert_eq!(on_time(&table.units[0]), (3, 5));
    let health = find(&table, "BYT");
    assert_eq!(on_time(health), (0, 1));
    assert_eq!((health.rank, health.rank_of), (2, 2));

    let country = scores(&pki, hub.addr, "VN", false).await;
    assert_eq!(on_time(&country.units[0]), (1, 1));
    let completeness = country.units[0]
        .completeness
        .as_ref()
        .expect("completeness is attached");
    assert_eq!(completeness.hub_count, 1);

    hub.stop().await;
    verify_counters(&database);
}

#[tokio::test]
async fn hub_rejects_invalid_units_file_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &[]).unwrap();
    let units = "version = \"bad\"\nbase = \"ministries-2025\"\n[[unit]]\ncode = \"TCT\"\nname = \"Cục Thuế\"\nparent = \"BTC\"\n[[unit]]\ncode = \"TCT\"\nname = \"Tổng cục Thuế\"\nparent = \"BTC\"\n";
    std::fs::write(dir.path().join("ministries.toml"), units).unwrap();
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"hub.db\"\nunits_file = \"ministries.toml\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
        pki.path("hub.crt").display(),
        pki.path("hub.key").display(),
        pki.path("ca.crt").display(),
    );
    let config_path = dir.path().join("hub.toml");
    std::fs::write(&config_path, config).unwrap();

    let run = tokio::process::Command::new(binary("chiso-hub"))
        .args(["run", "--config"])
        .arg(&config_path)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("chiso-hub stops at once on an invalid units_file")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("[[unit]] 2 (code \"TCT\")"), "{stderr}");
    assert!(stderr.contains("duplicate code"), "{stderr}");
    assert!(!dir.path().join("hub.db").exists(), "the store was opened");
}
