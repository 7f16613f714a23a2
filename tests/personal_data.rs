//! No applicant name, ID number or contact detail leaves the agent. Values are planted in the
//! personal fields of a national-format file, and a real agent takes it in and pushes it to a
//! real hub process, both logging at debug level. The test then looks for the planted values in the
//! dossiers the agent queued (the messages the hub receives), in the hub's stored rows, in the
//! bytes of every database file of both sides (WAL included), and in both processes' logs.

use chiso_proto::v1::Dossier;
use chiso_tests::process::{free_port, wait_listening};
use chiso_tests::{Pki, binary, write_agent_config};
use prost::Message;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Values planted in personal fields. Each is distinctive enough that finding it anywhere
/// means it leaked.
const PLANTED: [&str; 9] = [
    "Plantedname Nguyễn Thị",
    "079301234567",
    "planted.person@example.vn",
    "0912345678",
    "Số 7 ngõ Plantedaddress",
    "Planted summary of the request",
    "PLANTEDACCOUNT42",
    "Plantedfile CCCD scan",
    "Plantedfee payer",
];

/// Builds one dossier in the national format, with every personal field filled with planted
/// values.
fn planted_record(code: &str, status: u32) -> serde_json::Value {
    let finished = if status >= 9 { "20261003090000" } else { "" };
    json!({
        "MaHoSo": code,
        "MaDonVi": "00004",
        "MaTTHC": "1.001612",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "G09-TP01",
        "KenhThucHien": "2",
        "LoaiDoiTuong": "1",
        "ChuHoSo": PLANTED[0],
        "SoGiayToChuHoSo": PLANTED[1],
        "Email": PLANTED[2],
        "SoDienThoai": PLANTED[3],
        "DiaChiThuongTru": PLANTED[4],
        "DiaChiLienHe": PLANTED[4],
        "TrichYeuHoSo": PLANTED[5],
        "MaDoiTuong": PLANTED[6],
        "NgayNopHoSo": "20261001080000",
        "NgayTiepNhan": "20261001083000",
        "NgayHenTra": "20261005170000",
        "NgayKetThucXuLy": finished,
        "TrangThaiHoSo": status.to_string(),
        "TaiLieuNop": [{"TenTepDinhKem": PLANTED[7], "DuocSoHoa": "1"}],
        "DanhSachLePhi": [{"TenPhiLePhi": PLANTED[8], "Gia": "50000"}],
    })
}

fn envelope(records: Vec<serde_json::Value>) -> String {
    json!({
        "session": "planted-session",
        "madonvi": "000.00.01.H26",
        "service": "DongBoHoSoMC",
        "isUpdating": true,
        "data": records,
    })
    .to_string()
}

/// Runs a `chiso-agent` command with debug logging, appending its stderr to `log`.
fn agent(args: &[&str], config: &Path, log: &Path) -> Output {
    let output = Command::new(binary("chiso-agent"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "debug")
        .output()
        .expect("chiso-agent runs");
    let mut text = std::fs::read(log).unwrap_or_default();
    text.extend_from_slice(&output.stderr);
    std::fs::write(log, text).unwrap();
    output
}

fn ingest(file: &Path, config: &Path, log: &Path) -> Output {
    agent(&["ingest", file.to_str().unwrap()], config, log)
}

/// A `chiso-hub run` process logging at debug level, killed when dropped.
struct Hub {
    child: std::process::Child,
    url: String,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_hub(pki: &Pki, dir: &Path, log: &Path) -> Hub {
    let port = free_port().unwrap();
    let config = dir.join("hub.toml");
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndatabase = \"{}\"\n\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
        dir.join("hub.db").display(),
        pki.path("hub.crt").display(),
        pki.path("hub.key").display(),
        pki.path("ca.crt").display(),
    );
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(binary("chiso-hub"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("chiso-hub starts");
    wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), &mut child, log).unwrap();
    Hub {
        child,
        url: format!("https://localhost:{port}"),
    }
}

/// Returns the planted values found in `bytes`.
fn leaks(bytes: &[u8]) -> Vec<&'static str> {
    PLANTED
        .iter()
        .copied()
        .filter(|planted| contains(bytes, planted.as_bytes()))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Lists every file of `dir` whose name starts with `prefix`: the database, its WAL and shared
/// memory.
fn database_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(prefix))
        })
        .collect();
    files.sort();
    files
}

/// Decodes every dossier waiting in the outbox: exactly what the agent sends to the hub.
fn queued_dossiers(outbox: &Path) -> Vec<Dossier> {
    let connection =
        rusqlite::Connection::open_with_flags(outbox, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut statement = connection.prepare("SELECT payload FROM outbox").unwrap();
    let payloads: Vec<Vec<u8>> = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    payloads
        .iter()
        .map(|payload| Dossier::decode(payload.as_slice()).unwrap())
        .collect()
}

#[test]
fn personal_fields_never_leave_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub_dir = dir.path().join("hub");
    std::fs::create_dir_all(&hub_dir).unwrap();
    let hub_log = dir.path().join("hub.log");
    let agent_log = dir.path().join("agent.log");
    let hub = start_hub(&pki, &hub_dir, &hub_log);
    let agent_dir = dir.path().join("agent");
    let config = write_agent_config(&agent_dir, &pki, "01", &hub.url).unwrap();

    // First file: two open dossiers, one returned dossier, and one the agent rejects (status 11).
    let first = dir.path().join("first.json");
    let records = vec![
        planted_record("PD-1", 4),
        planted_record("PD-2", 2),
        planted_record("PD-3", 10),
        planted_record("PD-BAD", 11),
    ];
    std::fs::write(&first, envelope(records)).unwrap();
    let intake = ingest(&first, &config, &agent_log);
    assert_eq!(
        intake.status.code(),
        Some(3),
        "one record is rejected at intake"
    );

    let queued = queued_dossiers(&agent_dir.join("outbox.db"));
    assert_eq!(queued.len(), 3);
    for dossier in &queued {
        let encoded = dossier.encode_to_vec();
        assert_eq!(leaks(&encoded), Vec::<&str>::new(), "{dossier:?}");
        assert_eq!(dossier.unit_code, "00004");
    }
    let pushed = agent(&["run", "--until-drained"], &config, &agent_log);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    // Second file: PD-3 moves from returned back to processing, which the hub rejects.
    let second = dir.path().join("second.json");
    std::fs::write(&second, envelope(vec![planted_record("PD-3", 4)])).unwrap();
    let intake = ingest(&second, &config, &agent_log);
    assert!(
        intake.status.success(),
        "{}",
        String::from_utf8_lossy(&intake.stdout)
    );
    let pushed = agent(&["run", "--until-drained"], &config, &agent_log);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let rejects = agent(&["rejects"], &config, &agent_log);
    assert!(rejects.status.success());
    let listing = String::from_utf8_lossy(&rejects.stdout).into_owned();
    assert!(listing.contains("PD-BAD"), "{listing}");
    assert!(
        listing.contains("PD-3"),
        "the hub's rejection is listed: {listing}"
    );
    assert_eq!(leaks(listing.as_bytes()), Vec::<&str>::new(), "{listing}");
    drop(hub);

    // The raw bytes first, before opening a database checkpoints and removes its WAL.
    let mut files = database_files(&hub_dir, "hub.db");
    files.extend(database_files(&agent_dir, "outbox.db"));
    assert!(files.len() >= 2, "{files:?}");
    files.extend([hub_log.clone(), agent_log.clone()]);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(leaks(&bytes), Vec::<&str>::new(), "{}", file.display());
    }

    // What the hub stored: every text column of every dossier and rejection row.
    let hub_db = rusqlite::Connection::open(hub_dir.join("hub.db")).unwrap();
    let stored: i64 = hub_db
        .query_row("SELECT COUNT(*) FROM dossiers", [], |row| row.get(0))
        .unwrap();
    assert_eq!(stored, 3);
    let mut rows = hub_db
        .prepare(
            "SELECT code || unit_code || procedure_code || field_code FROM dossiers
             UNION ALL SELECT key || field || message FROM rejections",
        )
        .unwrap();
    let texts: Vec<String> = rows
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        texts.len(),
        4,
        "three dossiers and one rejection: {texts:?}"
    );
    for text in &texts {
        assert_eq!(leaks(text.as_bytes()), Vec::<&str>::new(), "{text}");
    }

    // The logs are real debug logs, not empty files.
    let hub_text = std::fs::read_to_string(&hub_log).unwrap();
    let agent_text = std::fs::read_to_string(&agent_log).unwrap();
    assert!(hub_text.contains("DEBUG"), "{hub_text}");
    assert!(hub_text.contains("batch committed"), "{hub_text}");
    assert!(agent_text.contains("DEBUG"), "{agent_text}");
}
