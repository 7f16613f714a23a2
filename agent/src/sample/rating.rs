//! Draws satisfaction ratings of finished dossiers in the `DongBoDanhGiaHaiLong` format of
//! `docs/record-formats.md`.
//!
//! A finished dossier is rated with the unit's `rated` share, up to two days after it finished
//! and never after `as_of`. The level is 4 or 5 (satisfied) with the unit's `satisfied` share;
//! otherwise it is 3 half the time and 1 or 2 the other half, an assumption of this generator.

use super::dossier::{DAY, DossierFacts};
use super::{Distribution, SampleSpec};
use chiso_proto::vntime::format_portal_datetime;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Share of satisfied ratings at level 5 rather than 4. NOTE: an assumption.
const VERY_SATISFIED: f64 = 0.7;

/// Draws the ratings of a sample, dossiers in file order. `unit_shares` returns the shares of a
/// unit code.
pub(super) fn sample_ratings<'a>(
    rng: &mut ChaCha8Rng,
    spec: &SampleSpec,
    dossiers: &[DossierFacts],
    unit_shares: &dyn Fn(&str) -> &'a Distribution,
) -> Vec<Value> {
    let mut records = Vec::new();
    for dossier in dossiers {
        let Some(finished_at) = dossier.finished_at else {
            continue;
        };
        let shares = unit_shares(&dossier.unit_code);
        if !rng.random_bool(shares.rated) {
            continue;
        }
        let room = (spec.as_of - finished_at).clamp(0, 2 * DAY);
        let rated_at = finished_at + rng.random_range(0..=room);
        let level = draw_level(rng, shares);
        records.push(json!({
            "MaDanhGia": format!("DG-{}", dossier.code),
            "MaHoSo": dossier.code,
            "MaDonVi": dossier.unit_code,
            "NgayDanhGia": format_portal_datetime(rated_at),
            "MucDoHaiLong": level.to_string(),
            "NguoiDanhGia": dossier.applicant,
            "YKien": format!("Ý kiến mẫu của {}", dossier.applicant),
        }));
    }
    records
}

fn draw_level(rng: &mut ChaCha8Rng, shares: &Distribution) -> u8 {
    if rng.random_bool(shares.satisfied) {
        if rng.random_bool(VERY_SATISFIED) {
            5
        } else {
            4
        }
    } else if rng.random_bool(0.5) {
        3
    } else {
        rng.random_range(1..=2)
    }
}
