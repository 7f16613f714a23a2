//! Draws feedback items (phản ánh, kiến nghị) in the `DongBoPAKN` format of
//! `docs/record-formats.md`.
//!
//! The number of items is the dossier count times `feedback_per_dossier`, rounded. Each item
//! goes to the unit of a dossier picked uniformly, so units with more dossiers get more
//! feedback, and a share of items is about that dossier. The sender's details, the text and the
//! answer are made up and look it, so that the parser's removal of personal data is exercised.

use super::dossier::{DAY, DossierFacts, HOUR, due_date, portal_date};
use super::{Distribution, SampleSpec};
use chiso_proto::vntime::{format_portal_datetime, to_vietnam};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Draws the feedback items of a sample. `window` is the dossiers' received window, and
/// `unit_shares` returns the shares of a unit code.
pub(super) fn sample_feedback<'a>(
    rng: &mut ChaCha8Rng,
    spec: &SampleSpec,
    distribution: &Distribution,
    window: (i64, i64),
    dossiers: &[DossierFacts],
    unit_shares: &dyn Fn(&str) -> &'a Distribution,
) -> Vec<Value> {
    if dossiers.is_empty() {
        return Vec::new();
    }
    let count = (dossiers.len() as f64 * distribution.feedback_per_dossier).round() as usize;
    let mut records = Vec::with_capacity(count);
    for index in 0..count {
        let dossier = &dossiers[rng.random_range(0..dossiers.len())];
        let shares = unit_shares(&dossier.unit_code);
        let linked = rng.random_bool(shares.feedback_linked);
        let received_at = if linked {
            // Some time after the dossier was received, and never after as_of.
            let room = (spec.as_of - dossier.received_at).clamp(0, 10 * DAY);
            dossier.received_at + rng.random_range(0..=room)
        } else {
            let (start, end) = window;
            start + rng.random_range(0..(end - start).max(1))
        };
        let item = Item {
            sequence: index + 1,
            unit_code: &dossier.unit_code,
            dossier_code: linked.then_some(dossier.code.as_str()),
            received_at,
        };
        records.push(sample_record(rng, spec, &item, shares));
    }
    records
}

/// One feedback item before its handling is drawn.
struct Item<'a> {
    /// 1-based position in the file, used in the code and the made-up sender.
    sequence: usize,
    unit_code: &'a str,
    dossier_code: Option<&'a str>,
    received_at: i64,
}

fn sample_record(
    rng: &mut ChaCha8Rng,
    spec: &SampleSpec,
    item: &Item,
    shares: &Distribution,
) -> Value {
    let due_at = due_date(item.received_at, shares.feedback_due_days);
    let finished_at = if rng.random_bool(shares.feedback_on_time) {
        let window = (due_at - item.received_at).max(0);
        item.received_at + (rng.random::<f64>() * window as f64) as i64
    } else {
        // Late: one to ten days after the due day, which ends at 17:00.
        due_at + rng.random_range(1..=10) * DAY - rng.random_range(0..8 * HOUR)
    };
    // An item that would be answered after as_of is still open.
    let finished_at = (finished_at <= spec.as_of).then_some(finished_at);
    let answered = finished_at.is_some();

    let topic_draw = rng.random::<f64>();
    let topic = if topic_draw < shares.feedback_about_procedure {
        1
    } else if topic_draw < shares.feedback_about_procedure + shares.feedback_about_staff {
        2
    } else {
        3
    };
    let dissatisfied = answered && rng.random_bool(shares.feedback_dissatisfied);
    let recomplained = answered && rng.random_bool(shares.feedback_recomplained);
    let flag = |on: bool| if on { "1" } else { "0" };

    let sequence = item.sequence;
    let sender = format!("Người Gửi Mẫu {sequence:05}");
    let code = format!(
        "PAKN-{}-{}-{sequence:05}",
        item.unit_code,
        to_vietnam(item.received_at).format("%y%m%d")
    );
    let mut record = json!({
        "MaPAKN": code,
        "MaDonVi": item.unit_code,
        "MaLinhVuc": "MAU",
        "TieuDe": "Phản ánh mẫu",
        "NoiDung": format!("Nội dung phản ánh mẫu của {sender}"),
        "HoTen": sender,
        "SoDienThoai": format!("0000{:06}", sequence % 1_000_000),
        "Email": format!("pakn{sequence:05}@example.invalid"),
        "DiaChi": format!("Số {} Đường Mẫu", sequence % 500 + 1),
        "NgayTiepNhan": format_portal_datetime(item.received_at),
        "HanXuLy": format_portal_datetime(due_at),
        "NgayTraLoi": portal_date(finished_at),
        "PhanLoai": topic.to_string(),
        "KhongHaiLong": flag(dissatisfied),
        "KhieuNaiLai": flag(recomplained),
        "MaHoSo": item.dossier_code.unwrap_or_default(),
    });
    if answered {
        record["NguoiTraLoi"] = json!(format!("Cán Bộ Mẫu {:02}", sequence % 50));
        record["NoiDungTraLoi"] = json!(format!("Trả lời mẫu gửi {sender}"));
    }
    record
}
