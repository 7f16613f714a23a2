//! Draws one sample dossier and writes it as a portal record, with fields as strings the way
//! one-stop systems send them.
//!
//! Applicant details are made up and look it: names "Công Dân Mẫu 00001", ID numbers starting
//! with 999 (no province has that prefix), phone numbers starting with 0000, and addresses on
//! "Đường Mẫu". Email addresses use the reserved `.invalid` domain.

use super::Distribution;
use chiso_proto::vntime::{format_portal_datetime, parse_portal_datetime, vietnam, vietnam_day};
use chrono::{Days, TimeZone};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

pub(super) const HOUR: i64 = 3_600;
pub(super) const DAY: i64 = 24 * HOUR;

/// A unit dossiers can be assigned to.
#[derive(Debug, Clone)]
pub(super) struct SampleUnit {
    pub(super) code: String,
    pub(super) name: String,
}

/// Unit and time at which one dossier is received.
#[derive(Debug)]
pub(super) struct Slot<'a> {
    pub(super) unit: &'a SampleUnit,
    /// 1-based position in the file, unique, used in MaHoSo and the made-up applicant details.
    pub(super) sequence: usize,
    pub(super) received_at: i64,
    pub(super) as_of: i64,
}

/// End of a dossier's handling, or its open status at `as_of`.
#[derive(Debug, Default)]
struct Outcome {
    status: u8,
    finished_at: Option<i64>,
    returned_at: Option<i64>,
    refused_at: Option<i64>,
}

/// Draws one dossier from the unit's shares and returns it as a portal record.
pub(super) fn sample_record(rng: &mut ChaCha8Rng, slot: &Slot, shares: &Distribution) -> Value {
    let channel = draw_channel(rng, shares);
    let deadline = shares.deadline_days[rng.random_range(0..shares.deadline_days.len())];
    let due_at = due_date(slot.received_at, deadline);
    let outcome = draw_outcome(rng, slot, due_at, shares);
    let finished = outcome.finished_at.is_some();

    let code = format!(
        "{}-{}-{:05}",
        slot.unit.code,
        chiso_proto::vntime::to_vietnam(slot.received_at).format("%y%m%d"),
        slot.sequence
    );
    // Online filings are submitted a little before an officer receives them.
    let submitted_at = match channel {
        2 => slot.received_at - rng.random_range(0..4 * HOUR),
        _ => slot.received_at,
    };

    let mut record = json!({
        "MaHoSo": code,
        "MaTTHC": procedure_code(deadline),
        "TenTTHC": procedure_name(deadline),
        "MaLinhVuc": "MAU",
        "TenLinhVuc": "Lĩnh vực mẫu",
        "SoBienNhan": format!("{:06}", slot.sequence),
        "MaDonVi": slot.unit.code,
        "DonViXuLy": slot.unit.name,
        "KenhThucHien": channel.to_string(),
        "NgayNopHoSo": format_portal_datetime(submitted_at),
        "NgayTiepNhan": format_portal_datetime(slot.received_at),
        "NgayHenTra": format_portal_datetime(due_at),
        "NgayKetThucXuLy": portal_date(outcome.finished_at),
        "NgayTra": portal_date(outcome.returned_at),
        "NgayTuChoi": portal_date(outcome.refused_at),
        "TrangThaiHoSo": outcome.status.to_string(),
        "HinhThuc": if channel == 3 { "1" } else { "0" },
        "DanhSachHoSoBoSung": [],
    });
    add_applicant(rng, &mut record, slot, channel, shares);
    add_documents(rng, &mut record, shares);
    add_fees(rng, &mut record, shares);
    add_results(rng, &mut record, finished, shares);
    record
}

/// Returns the code of the sample procedure with a deadline of `deadline` days.
pub(super) fn procedure_code(deadline: u32) -> String {
    format!("MAU.{deadline:03}")
}

/// Returns the name of the sample procedure with a deadline of `deadline` days.
pub(super) fn procedure_name(deadline: u32) -> String {
    format!("Thủ tục mẫu giải quyết trong {deadline} ngày")
}

fn draw_channel(rng: &mut ChaCha8Rng, shares: &Distribution) -> u8 {
    let draw = rng.random::<f64>();
    if draw < shares.online {
        2
    } else if draw < shares.online + shares.post {
        3
    } else {
        1
    }
}

/// Returns 17:00 Vietnam time on the day `days` after the received day.
pub(super) fn due_date(received_at: i64, days: u32) -> i64 {
    let due_day = vietnam_day(received_at)
        .checked_add_days(Days::new(u64::from(days)))
        .expect("deadlines of at most a year stay within chrono's range");
    let closing = due_day
        .and_hms_opt(17, 0, 0)
        .expect("17:00 exists on every day");
    vietnam()
        .from_local_datetime(&closing)
        .single()
        .expect("a fixed offset maps every local time to one instant")
        .timestamp()
}

/// Draws how handling ended: not accepted, withdrawn or stopped by their shares, else handled.
fn draw_outcome(rng: &mut ChaCha8Rng, slot: &Slot, due_at: i64, shares: &Distribution) -> Outcome {
    let draw = rng.random::<f64>();
    let status = if draw < shares.not_accepted {
        3
    } else if draw < shares.not_accepted + shares.withdrawn {
        7
    } else if draw < shares.not_accepted + shares.withdrawn + shares.stopped {
        8
    } else {
        return handled_outcome(rng, slot, due_at, shares);
    };

    let refused_at = (status == 3).then(|| {
        let refused_at = slot.received_at + rng.random_range(HOUR..8 * HOUR);
        refused_at.min(slot.as_of)
    });
    Outcome {
        status,
        refused_at,
        ..Outcome::default()
    }
}

/// Draws a finish time early, on time or late by the on-time share. A dossier that would finish
/// after `as_of` is left open, and one returned after `as_of` stays at status 9 (processed).
fn handled_outcome(
    rng: &mut ChaCha8Rng,
    slot: &Slot,
    due_at: i64,
    shares: &Distribution,
) -> Outcome {
    let finished_at = if rng.random_bool(shares.on_time) {
        // Early or on time: anywhere between receipt and the due time.
        let window = (due_at - slot.received_at).max(0);
        slot.received_at + (rng.random::<f64>() * window as f64) as i64
    } else {
        // Late: one to five days after the due day, which ends at 17:00.
        due_at + rng.random_range(1..=5) * DAY - rng.random_range(0..8 * HOUR)
    };
    if finished_at > slot.as_of {
        // Still open: mostly processing, some waiting for a supplement.
        let status = if rng.random_bool(0.9) { 4 } else { 5 };
        return Outcome {
            status,
            ..Outcome::default()
        };
    }

    let returned_at = finished_at + rng.random_range(0..2 * DAY);
    let returned = returned_at <= slot.as_of;
    Outcome {
        status: if returned { 10 } else { 9 },
        finished_at: Some(finished_at),
        returned_at: returned.then_some(returned_at),
        refused_at: None,
    }
}

pub(super) fn portal_date(instant: Option<i64>) -> String {
    instant.map(format_portal_datetime).unwrap_or_default()
}

/// Adds made-up applicant details: the personal fields the parser must drop.
fn add_applicant(
    rng: &mut ChaCha8Rng,
    record: &mut Value,
    slot: &Slot,
    channel: u8,
    shares: &Distribution,
) {
    let sequence = slot.sequence;
    let (applicant_type, name, id_number) = if rng.random_bool(shares.business) {
        (
            2,
            format!("Công ty Mẫu {sequence:05}"),
            format!("9999{sequence:06}"),
        )
    } else {
        (
            1,
            format!("Công Dân Mẫu {sequence:05}"),
            format!("999{sequence:09}"),
        )
    };
    let account = match channel {
        2 => format!("MAU-TK-{sequence:06}"),
        _ => String::new(),
    };
    let fields = json!({
        "LoaiDoiTuong": applicant_type.to_string(),
        "ChuHoSo": name,
        "SoGiayToChuHoSo": id_number,
        "MaDoiTuong": account,
        "SoDienThoai": format!("0000{:06}", sequence % 1_000_000),
        "Email": format!("mau{sequence:05}@example.invalid"),
        "DiaChi": format!("Số {} Đường Mẫu, {}", sequence % 500 + 1, slot.unit.name),
        "TrichYeuHoSo": format!("Hồ sơ mẫu của {name}"),
    });
    merge(record, fields);
}

fn add_documents(rng: &mut ChaCha8Rng, record: &mut Value, shares: &Distribution) {
    let digitized = rng.random_bool(shares.digitized);
    let reused = rng.random_bool(shares.reused);
    let flag = |on: bool| if on { "1" } else { "0" };
    let fields = json!({
        "HoSoCoThanhPhanSoHoa": flag(digitized),
        "TaiLieuNop": [
            {
                "TepDinhKemId": "1",
                "TenTepDinhKem": "to-khai.pdf",
                "MaThanhPhanHoSo": "TP01",
                "DuocSoHoa": flag(digitized),
                "DuocTaiSuDung": flag(reused),
                "DuocLayTuKhoDMQG": "0",
            }
        ],
    });
    merge(record, fields);
}

fn add_fees(rng: &mut ChaCha8Rng, record: &mut Value, shares: &Distribution) {
    let fee_bearing = rng.random_bool(shares.fee_bearing);
    let paid_online = fee_bearing && rng.random_bool(shares.paid_online);
    let fees = if fee_bearing {
        json!([{
            "TenPhiLePhi": "Lệ phí mẫu",
            "MaPhiLePhi": "LP.MAU",
            "HinhThucThu": "1",
            "Gia": (rng.random_range(1..=20) * 5_000).to_string(),
            "LoaiPhiLePhi": "1",
        }])
    } else {
        json!([])
    };
    let fields = json!({
        "DanhSachLePhi": fees,
        "DuocThanhToanTrucTuyen": if paid_online { "1" } else { "0" },
    });
    merge(record, fields);
}

/// Adds result documents to finished dossiers: a file link for an electronic result, none for a
/// paper one.
fn add_results(rng: &mut ChaCha8Rng, record: &mut Value, finished: bool, shares: &Distribution) {
    let electronic = finished && rng.random_bool(shares.electronic_result);
    let code = record["MaHoSo"].as_str().unwrap_or_default();
    let link = format!("https://example.invalid/ket-qua/{code}.pdf");
    let results = if electronic {
        json!([{
            "TenGiayTo": "Kết quả mẫu",
            "MaThanhPhanHoSo": "KQ01",
            "GiayToId": "1",
            "DuongDanTepTinKetQua": link,
        }])
    } else {
        json!([])
    };
    merge(record, json!({ "DanhSachGiayToKetQua": results }));
}

pub(super) fn merge(record: &mut Value, fields: Value) {
    if let (Value::Object(record), Value::Object(fields)) = (record, fields) {
        record.extend(fields);
    }
}

/// Adds the fields for the national databases: `KetNoiCSDLDanCu` by the unit's share of
/// dossiers that used the population database. `TaiLieuNop[].DuocLayTuKhoDMQG` stays "0",
/// because the portal showed no dossier linked to the applicant's data repository.
pub(super) fn add_national_databases(
    rng: &mut ChaCha8Rng,
    record: &mut Value,
    shares: &Distribution,
) {
    let used = rng.random_bool(shares.population_data);
    merge(
        record,
        json!({ "KetNoiCSDLDanCu": if used { "1" } else { "0" } }),
    );
}

/// The fields of a generated dossier that the other kinds are drawn from.
#[derive(Debug, Clone)]
pub(super) struct DossierFacts {
    pub(super) code: String,
    pub(super) unit_code: String,
    pub(super) applicant: String,
    pub(super) status: u8,
    pub(super) received_at: i64,
    pub(super) due_at: Option<i64>,
    pub(super) finished_at: Option<i64>,
    pub(super) returned_at: Option<i64>,
    pub(super) refused_at: Option<i64>,
}

impl DossierFacts {
    /// Reads a record written by [`sample_record`].
    pub(super) fn read(record: &Value) -> DossierFacts {
        let text = |key: &str| record[key].as_str().unwrap_or_default().to_string();
        let date = |key: &str| parse_portal_datetime(record[key].as_str().unwrap_or_default()).ok();
        DossierFacts {
            code: text("MaHoSo"),
            unit_code: text("MaDonVi"),
            applicant: text("ChuHoSo"),
            status: text("TrangThaiHoSo").parse().unwrap_or_default(),
            received_at: date("NgayTiepNhan").unwrap_or_default(),
            due_at: date("NgayHenTra"),
            finished_at: date("NgayKetThucXuLy"),
            returned_at: date("NgayTra"),
            refused_at: date("NgayTuChoi"),
        }
    }
}
