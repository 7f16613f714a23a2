//! Every record kind end to end, through the real `chiso-agent` binary and a hub on 127.0.0.1
//! over mutual TLS. One file each of dossiers, procedures, feedback items, ratings and
//! processing steps is ingested, in every way a file names its kind: the envelope's service, or
//! `--kind` for a bare array and for JSON Lines. All are pushed and acknowledged without a
//! rejection.

use std::path::Path;
use std::process::Output;

use chiso_tests::{Pki, binary, hub_config, start_hub, write_agent_config};
use rusqlite::Connection;
use serde_json::{Value, json};

fn envelope(service: &str, records: Vec<Value>) -> String {
    json!({"session": "s", "madonvi": "01", "service": service, "isUpdating": false, "data": records})
        .to_string()
}

fn dossiers() -> String {
    envelope(
        "DongBoHoSoMC",
        vec![
            json!({
                "MaHoSo": "K-1", "MaDonVi": "00004", "MaTTHC": "1.001612", "KenhThucHien": "2",
                "TrangThaiHoSo": "10", "NgayTiepNhan": "20261001080000",
                "NgayHenTra": "20261005170000", "NgayKetThucXuLy": "20261003090000",
                "NgayTra": "20261003100000", "KetNoiCSDLDanCu": "1", "ChuHoSo": "Nguyễn Văn Thử",
            }),
            json!({
                "MaHoSo": "K-2", "MaDonVi": "00004", "MaTTHC": "1.001612", "KenhThucHien": "1",
                "TrangThaiHoSo": "4", "NgayTiepNhan": "20261002080000",
                "NgayHenTra": "20261009170000",
            }),
        ],
    )
}

/// Builds a bare array of procedures, which only `--kind procedure` identifies.
fn procedures() -> String {
    json!([
        {
            "MaTTHC": "1.001612", "MaDonVi": "00004", "MucDo": "4",
            "NgayCongBo": "20261001090000", "HanCongBo": "20261005170000",
            "NgayCongKhai": "20261002090000", "HanCongKhai": "20261006170000",
            "CongKhaiDayDu": "1", "CoPhiLePhi": "1", "ThanhToanTrucTuyen": "1",
            "DoiTuongCongDan": "1", "KetNoiCSDLDanCu": "1",
        },
        {"MaTTHC": "2.000123", "MaDonVi": "01", "MucDo": "2", "NgayCongBo": "20261010090000"},
    ])
    .to_string()
}

/// Builds JSON Lines of feedback items, which only `--kind feedback` identifies.
fn feedback() -> String {
    let lines = [
        json!({
            "MaPAKN": "PAKN-1", "MaDonVi": "00004", "NgayTiepNhan": "20261003080000",
            "HanXuLy": "20261013170000", "NgayTraLoi": "20261008100000", "PhanLoai": "1",
            "MaHoSo": "K-1", "HoTen": "Trần Thị Gửi", "NoiDung": "Chậm trả kết quả",
        }),
        json!({"MaPAKN": "PAKN-2", "MaDonVi": "00004", "NgayTiepNhan": "20261004080000"}),
    ];
    lines.map(|line| format!("{line}\n")).concat()
}

fn ratings() -> String {
    envelope(
        "DongBoDanhGiaHaiLong",
        vec![json!({
            "MaDanhGia": "DG-1", "MaHoSo": "K-1", "MaDonVi": "00004",
            "NgayDanhGia": "20261003110000", "MucDoHaiLong": "5", "NguoiDanhGia": "Nguyễn Văn Thử",
        })],
    )
}

/// Builds the portal's step envelope, whose madonvi names the unit.
fn steps() -> String {
    let step = |at: &str, status: &str| {
        json!({
            "MaHoSo": "K-1", "NguoiXuLy": "Lê Văn Xử", "ThoiDiemXuLy": at, "TrangThai": status,
        })
    };
    envelope(
        "CapNhatTienDoHoSoMC",
        vec![
            step("20261001080000", "2"),
            step("20261001090000", "4"),
            step("20261003090000", "9"),
            step("20261003100000", "10"),
        ],
    )
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

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn every_kind_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();
    let agent_dir = dir.path().join("agent");
    let config = write_agent_config(&agent_dir, &pki, "01", &hub.url()).unwrap();

    let files = [
        ("dossiers.json", dossiers()),
        ("procedures.json", procedures()),
        ("feedback.jsonl", feedback()),
        ("ratings.json", ratings()),
        ("steps.json", steps()),
    ];
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = |name: &str| dir.path().join(name).display().to_string();

    // Envelopes name their kind.
    let by_service = agent(
        &[
            "ingest",
            &path("dossiers.json"),
            &path("ratings.json"),
            &path("steps.json"),
        ],
        &config,
    )
    .await;
    let printed = stdout(&by_service);
    assert_eq!(
        by_service.status.code(),
        Some(0),
        "{printed}{}",
        stderr(&by_service)
    );
    assert!(printed.contains("(dossier): 2 records, 2 new"), "{printed}");
    assert!(printed.contains("(rating): 1 records, 1 new"), "{printed}");
    assert!(printed.contains("(step): 4 records, 4 new"), "{printed}");

    // A bare array and JSON Lines need --kind.
    for (name, kind, expected) in [
        (
            "procedures.json",
            "procedure",
            "(procedure): 2 records, 2 new",
        ),
        ("feedback.jsonl", "feedback", "(feedback): 2 records, 2 new"),
    ] {
        let ingest = agent(&["ingest", "--kind", kind, &path(name)], &config).await;
        let printed = stdout(&ingest);
        assert_eq!(
            ingest.status.code(),
            Some(0),
            "{printed}{}",
            stderr(&ingest)
        );
        assert!(printed.contains(expected), "{printed}");
    }

    let run = agent(&["run", "--until-drained"], &config).await;
    assert!(run.status.success(), "{}", stderr(&run));

    let rejects = agent(&["rejects"], &config).await;
    assert!(
        stdout(&rejects).contains("no rejected records"),
        "the hub rejected records: {}",
        stdout(&rejects)
    );
    let status = agent(&["status"], &config).await;
    assert!(
        stdout(&status).contains("backlog:         0"),
        "{}",
        stdout(&status)
    );

    // Every record was acknowledged as stored: its payload is retained, not marked rejected.
    let outbox = Connection::open(agent_dir.join("outbox.db")).unwrap();
    let mut statement = outbox
        .prepare("SELECT kind, COUNT(*), SUM(rejected) FROM retained GROUP BY kind ORDER BY kind")
        .unwrap();
    let retained: Vec<(String, i64, i64)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        ("dossier", 2),
        ("feedback", 2),
        ("procedure", 2),
        ("rating", 1),
        ("step", 4),
    ];
    let expected: Vec<(String, i64, i64)> = expected
        .into_iter()
        .map(|(kind, count)| (kind.to_string(), count, 0))
        .collect();
    assert_eq!(retained, expected);

    // The hub stores them in its table of each kind.
    let hub_db = hub.store.reader().unwrap();
    for (table, count) in [
        ("dossiers", 2),
        ("procedures", 2),
        ("feedback", 2),
        ("ratings", 1),
        ("dossier_steps", 4),
    ] {
        let stored: i64 = hub_db
            .query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE source = '01'"),
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(stored, count, "rows in the hub's {table}");
    }
    drop(hub_db);
    hub.stop().await;
}
