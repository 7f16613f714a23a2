//! Draws the processing steps of each sample dossier in the portal's `CapNhatTienDoHoSoMC`
//! format, so that a dossier's last step has its status.
//!
//! Every dossier is received (status 2) when it is received. A refused one (3) then gets its
//! refusal; a withdrawn (7) or stopped (8) one a step up to two days later. Any other goes into
//! processing (4) within four hours, and then one waiting for a supplement gets a request (5),
//! and a finished one its finish (9) and, once returned, its return (10). No step lies after
//! `as_of`, and no two steps of a dossier share a second, because the second is the step's key.
//! The steps never move a due date, so they agree with the dossier's `NgayHenTra`.

use super::SampleSpec;
use super::dossier::{DAY, DossierFacts, HOUR, portal_date};
use chiso_proto::vntime::format_portal_datetime;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Draws the steps of every dossier, dossiers in file order and each one's steps in time order.
pub(super) fn sample_steps(
    rng: &mut ChaCha8Rng,
    spec: &SampleSpec,
    dossiers: &[DossierFacts],
) -> Vec<Value> {
    let mut records = Vec::new();
    for dossier in dossiers {
        for (at, status) in dossier_steps(rng, spec, dossier) {
            records.push(step_record(dossier, at, status));
        }
    }
    records
}

/// Returns the (time, status) of a dossier's steps, in time order and at distinct seconds.
fn dossier_steps(
    rng: &mut ChaCha8Rng,
    spec: &SampleSpec,
    dossier: &DossierFacts,
) -> Vec<(i64, u8)> {
    let received = dossier.received_at;
    let mut steps = vec![(received, 2)];
    match dossier.status {
        3 => steps.push((dossier.refused_at.unwrap_or(received), 3)),
        7 | 8 => {
            let at = received + rng.random_range(HOUR..=2 * DAY);
            steps.push((at.min(spec.as_of), dossier.status));
        }
        _ => handled_steps(rng, spec, dossier, &mut steps),
    }

    // A later step at the same second as an earlier one replaces it, as the agent would.
    let mut distinct: Vec<(i64, u8)> = Vec::with_capacity(steps.len());
    for (at, status) in steps {
        match distinct.last_mut() {
            Some(last) if last.0 >= at => last.1 = status,
            _ => distinct.push((at, status)),
        }
    }
    distinct
}

/// Adds the processing, supplement, finish and return steps of a dossier that was handled.
fn handled_steps(
    rng: &mut ChaCha8Rng,
    spec: &SampleSpec,
    dossier: &DossierFacts,
    steps: &mut Vec<(i64, u8)>,
) {
    let received = dossier.received_at;
    let end = dossier.finished_at.unwrap_or(spec.as_of);
    // Processing starts within four hours, and in the first half of the time to the end.
    let room = ((end - received) / 2).min(4 * HOUR);
    if room >= 1 {
        steps.push((received + rng.random_range(1..=room), 4));
    }
    let processing = steps.last().map_or(received, |step| step.0);
    if dossier.status == 5 && spec.as_of > processing {
        steps.push((
            processing + rng.random_range(1..=spec.as_of - processing),
            5,
        ));
    }
    if let Some(finished) = dossier.finished_at {
        steps.push((finished, 9));
    }
    if let Some(returned) = dossier.returned_at {
        steps.push((returned, 10));
    }
}

fn step_record(dossier: &DossierFacts, at: i64, status: u8) -> Value {
    let action = match status {
        2 => "Tiếp nhận hồ sơ",
        3 => "Từ chối tiếp nhận hồ sơ",
        4 => "Chuyển xử lý",
        5 => "Yêu cầu bổ sung hồ sơ",
        7 => "Công dân rút hồ sơ",
        8 => "Dừng xử lý",
        9 => "Kết thúc xử lý",
        _ => "Trả kết quả",
    };
    let mut record = json!({
        "MaHoSo": dossier.code,
        "MaDonVi": dossier.unit_code,
        "NguoiXuLy": format!("Cán Bộ Mẫu {:02}", at.rem_euclid(50)),
        "ChucDanh": "Chuyên viên",
        "ThoiDiemXuLy": format_portal_datetime(at),
        "PhongBanXuLy": "Bộ phận một cửa",
        "NoiDungXuLy": action,
        "TrangThai": status.to_string(),
        "NgayBatDau": format_portal_datetime(at),
        "NgayKetThucTheoQuyDinh": portal_date(dossier.due_at),
    });
    if status == 10 {
        record["NgayKetThucXuLy"] = json!(portal_date(dossier.finished_at));
    }
    record
}
