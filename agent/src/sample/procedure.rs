//! Draws the procedures each unit applies, in the `DongBoTTHC` format of
//! `docs/record-formats.md`.
//!
//! Every unit lists the procedures its sample dossiers use (`MAU.001` ... named by deadline)
//! first, then made-up ones (`MAU.TT.001` ...) up to its count. The procedures dossiers use
//! are online, because almost every sample dossier is filed online, and the other procedures'
//! shares are lowered so that a unit's expected online shares stay those of the distribution.

use super::dossier::{DAY, HOUR, SampleUnit, procedure_code, procedure_name};
use super::{Distribution, SampleSpec};
use chiso_proto::vntime::{format_portal_datetime, vietnam, vietnam_day};
use chrono::{Days, TimeZone};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Days before `as_of` over which announcements are spread: one year.
const ANNOUNCED_WITHIN_DAYS: i64 = 365;
/// Days after its announcement by which a procedure must be made public. The reference gives 5
/// working days for a province (10 for a ministry); working days are treated as calendar days.
const PUBLISH_DEADLINE_DAYS: i64 = 5;

/// Online service levels, as `MucDo` writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    None,
    Partial,
    Full,
}

/// Draws every unit's procedures, units in catalogue order.
pub(super) fn sample_procedures(
    rng: &mut ChaCha8Rng,
    spec: &SampleSpec,
    distribution: &Distribution,
    profiles: &[(SampleUnit, Distribution)],
) -> Vec<Value> {
    let mut deadlines = distribution.deadline_days.clone();
    deadlines.sort_unstable();
    deadlines.dedup();

    let mut records = Vec::new();
    for (index, (unit, shares)) in profiles.iter().enumerate() {
        let count = if index == 0 {
            distribution.province_procedures
        } else {
            distribution.commune_procedures
        };
        let used = deadlines.len().min(count);
        let online_share = shares.procedure_partial + shares.procedure_full;
        // The share the other procedures need for the unit's expected online count.
        let other_online = if count > used {
            ((online_share * count as f64 - used as f64) / (count - used) as f64).clamp(0.0, 1.0)
        } else {
            0.0
        };

        for position in 0..count {
            let (code, name, online) = match deadlines.get(position) {
                Some(&deadline) => (procedure_code(deadline), procedure_name(deadline), true),
                None => {
                    let number = position - used + 1;
                    let online = rng.random_bool(other_online);
                    (
                        format!("MAU.TT.{number:03}"),
                        format!("Thủ tục mẫu số {number}"),
                        online,
                    )
                }
            };
            let level = draw_level(rng, online, shares);
            let draw = Procedure {
                unit,
                code,
                name,
                level,
            };
            records.push(sample_record(rng, spec, &draw, shares));
        }
    }
    records
}

/// One procedure before its dates and flags are drawn.
struct Procedure<'a> {
    unit: &'a SampleUnit,
    code: String,
    name: String,
    level: Level,
}

fn draw_level(rng: &mut ChaCha8Rng, online: bool, shares: &Distribution) -> Level {
    if !online {
        return Level::None;
    }
    let online_share = shares.procedure_partial + shares.procedure_full;
    let partial = if online_share > 0.0 {
        shares.procedure_partial / online_share
    } else {
        0.5
    };
    if rng.random_bool(partial) {
        Level::Partial
    } else {
        Level::Full
    }
}

fn sample_record(
    rng: &mut ChaCha8Rng,
    spec: &SampleSpec,
    procedure: &Procedure,
    shares: &Distribution,
) -> Value {
    let announced_at = spec.as_of - rng.random_range(0..ANNOUNCED_WITHIN_DAYS * DAY);
    // The legal deadline of the announcement: up to 20 days after it when on time, up to 20
    // days before it when late.
    let announce_offset = if rng.random_bool(shares.procedure_announced_on_time) {
        rng.random_range(0..=20)
    } else {
        -rng.random_range(1..=20)
    };
    let announce_due_at = closing_time(announced_at, announce_offset);
    let publish_due_at = closing_time(announced_at, PUBLISH_DEADLINE_DAYS);
    let published_at = if rng.random_bool(shares.procedure_published_on_time) {
        let window = (publish_due_at - announced_at).max(0);
        announced_at + (rng.random::<f64>() * window as f64) as i64
    } else {
        publish_due_at + rng.random_range(1..=10) * DAY - rng.random_range(0..8 * HOUR)
    };
    let published = published_at <= spec.as_of;

    let online = procedure.level != Level::None;
    let fee_bearing = rng.random_bool(shares.fee_bearing);
    let payable_online = fee_bearing && online && rng.random_bool(shares.paid_online);
    let for_citizens = !rng.random_bool(shares.business);
    let population_connected = for_citizens && rng.random_bool(shares.population_data);
    let complete = published && rng.random_bool(shares.procedure_complete);
    let level = match procedure.level {
        // Levels 1 and 2 both mean no online service; 2 offers forms to download.
        Level::None => {
            if rng.random_bool(0.5) {
                "1"
            } else {
                "2"
            }
        }
        Level::Partial => "3",
        Level::Full => "4",
    };
    let flag = |on: bool| if on { "1" } else { "0" };

    json!({
        "MaTTHC": procedure.code,
        "TenTTHC": procedure.name,
        "MaLinhVuc": "MAU",
        "TenLinhVuc": "Lĩnh vực mẫu",
        "MaDonVi": procedure.unit.code,
        "MucDo": level,
        "NgayCongBo": format_portal_datetime(announced_at),
        "HanCongBo": format_portal_datetime(announce_due_at),
        "NgayCongKhai": if published { format_portal_datetime(published_at) } else { String::new() },
        "HanCongKhai": format_portal_datetime(publish_due_at),
        "CongKhaiDayDu": flag(complete),
        "CoPhiLePhi": flag(fee_bearing),
        "ThanhToanTrucTuyen": flag(payable_online),
        "DoiTuongCongDan": flag(for_citizens),
        "KetNoiCSDLDanCu": flag(population_connected),
    })
}

/// Returns 17:00 Vietnam time on the day `days` (possibly negative) after the day of `instant`.
fn closing_time(instant: i64, days: i64) -> i64 {
    let day = vietnam_day(instant);
    let moved = if days >= 0 {
        day.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        day.checked_sub_days(Days::new(days.unsigned_abs()))
    }
    .expect("a move of at most a year stays within chrono's range");
    let closing = moved
        .and_hms_opt(17, 0, 0)
        .expect("17:00 exists on every day");
    vietnam()
        .from_local_datetime(&closing)
        .single()
        .expect("a fixed offset maps every local time to one instant")
        .timestamp()
}
