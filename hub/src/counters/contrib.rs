//! Contributions: the counts one record adds to as of a day, as pure functions of its facts.

use chiso_proto::units::is_province_code;
use chiso_proto::vntime::{Period, PeriodKind};
use chrono::NaiveDate;

use super::facts::{DossierFacts, FeedbackFacts, ProcedureFacts, RatingFacts};
use super::{COUNTRY, CounterRules, Reach};
use crate::catalogue::{CountId, PeriodRule};

/// Statuses left out of handled dossiers: not accepted (3), withdrawn (7) and stopped (8).
// NOTE: medium confidence. The Government Office's formula description (transcript in
// ChippedTopaz/qd766 web/src/formula-document.ts, indicator 2.1) lists refusal, stopping and
// withdrawal of an accepted dossier among the finishing states, so 7 and 8 may belong in the
// denominator with their finish date.
pub const EXCLUDED_FROM_ON_TIME: [i32; 3] = [3, 7, 8];

/// Channel code of dossiers filed online.
pub(super) const ONLINE_CHANNEL: i32 = 2;

/// Online levels that count as an online service: 2 (partial) and 3 (full).
const ONLINE_LEVELS: [i32; 2] = [2, 3];

/// Topic codes of feedback about procedures (1) and about staff (2).
const TOPIC_PROCEDURE: i32 = 1;
const TOPIC_STAFF: i32 = 2;

const KINDS: [PeriodKind; 4] = [
    PeriodKind::Month,
    PeriodKind::Quarter,
    PeriodKind::HalfYear,
    PeriodKind::Year,
];

/// Everything one record adds to the counters: the counts it is in, per period and rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contribution {
    /// The record's unit.
    pub unit_code: String,
    /// The unit's province.
    pub province_code: String,
    /// Each period, count and rule the record adds one to.
    pub items: Vec<(Period, CountId, PeriodRule)>,
}

impl Contribution {
    fn new(unit_code: &str, province_code: &str) -> Contribution {
        Contribution {
            unit_code: unit_code.to_string(),
            province_code: province_code.to_string(),
            items: Vec::new(),
        }
    }

    fn add(&mut self, period: Period, count: CountId, intake: bool) {
        self.items.push((period, count, PeriodRule::Handling));
        if intake {
            self.items.push((period, count, PeriodRule::Intake));
        }
    }

    /// Returns the counter rows each item goes to: the unit's own row, its locality's total
    /// (province or ministry) and, for a province, the country's total. The country is the
    /// local government, so ministries' records stay out of it.
    pub fn targets(&self) -> impl Iterator<Item = (&str, Reach)> {
        let rows = if is_province_code(&self.province_code) {
            3
        } else {
            2
        };
        [
            (self.unit_code.as_str(), Reach::Own),
            (self.province_code.as_str(), Reach::All),
            (COUNTRY, Reach::All),
        ]
        .into_iter()
        .take(rows)
    }

    /// Returns whether the record is in a count of a period under a rule.
    pub fn includes(&self, period: Period, count: CountId, rule: PeriodRule) -> bool {
        self.items.contains(&(period, count, rule))
    }
}

/// Returns the periods of every kind that overlap the days from `first` to `last`, from the
/// first counted year on.
fn periods(rules: &CounterRules, first: NaiveDate, last: NaiveDate) -> Vec<Period> {
    let first = first.max(rules.first_day());
    let mut periods = Vec::new();
    if first > last {
        return periods;
    }
    for kind in KINDS {
        let mut period = Period::containing(kind, first);
        while period.first_day() <= last {
            periods.push(period);
            match period.last_day().succ_opt() {
                Some(next) => period = Period::containing(kind, next),
                None => break,
            }
        }
    }
    periods
}

/// Returns the last day a period is scored on as of a day: its own last day, or the as-of day
/// while it is running.
fn end_of(period: Period, as_of: NaiveDate) -> NaiveDate {
    period.last_day().min(as_of)
}

/// Returns whether an item finished on time by `end`, or is still open and not yet due.
fn on_time(due: Option<NaiveDate>, finished: Option<NaiveDate>, end: NaiveDate) -> bool {
    match finished.filter(|finished| *finished <= end) {
        Some(finished) => due.is_none_or(|due| finished <= due),
        None => due.is_none_or(|due| due >= end),
    }
}

/// Returns the periods of the handling sets an item received and finished on these days is in,
/// as of a day.
fn handling_periods(
    rules: &CounterRules,
    received: NaiveDate,
    finished: Option<NaiveDate>,
    as_of: NaiveDate,
) -> Vec<Period> {
    if received > as_of {
        return Vec::new();
    }
    let last = finished.map_or(as_of, |finished| finished.min(as_of));
    periods(rules, received, last.max(received))
}

/// Returns a dossier's contribution as of a day.
pub fn dossier(rules: &CounterRules, facts: &DossierFacts, as_of: NaiveDate) -> Contribution {
    let mut out = Contribution::new(&facts.unit_code, &facts.province_code);
    let handled = !EXCLUDED_FROM_ON_TIME.contains(&facts.status);
    for period in handling_periods(rules, facts.received_day, facts.finished_day, as_of) {
        let intake = period.contains(facts.received_day);
        let on_time = on_time(facts.due_day, facts.finished_day, end_of(period, as_of));
        let mut add = |count, holds: bool| {
            if holds {
                out.add(period, count, intake);
            }
        };
        add(CountId::DossierReceived, true);
        add(CountId::DossierHandled, handled);
        add(CountId::DossierOnTime, handled && on_time);
        add(CountId::DossierOnline, facts.channel == ONLINE_CHANNEL);
        add(CountId::DossierElectronicResult, facts.electronic_result);
        add(CountId::DossierDigitized, facts.digitized);
        add(CountId::DossierReusedData, facts.reused_data);
        add(CountId::DossierFeeBearing, facts.fee_bearing);
        add(
            CountId::DossierPaidOnline,
            facts.fee_bearing && facts.paid_online,
        );
        add(CountId::DossierPersonalStorage, facts.personal_storage);
        add(CountId::DossierPopulationData, facts.population_data);
        add(
            CountId::DossierSatisfied,
            on_time && !facts.dissatisfied && !facts.complained,
        );
    }
    out
}

/// Returns a feedback item's contribution as of a day.
pub fn feedback(rules: &CounterRules, facts: &FeedbackFacts, as_of: NaiveDate) -> Contribution {
    let mut out = Contribution::new(&facts.unit_code, &facts.province_code);
    for period in handling_periods(rules, facts.received_day, facts.finished_day, as_of) {
        let intake = period.contains(facts.received_day);
        let on_time = on_time(facts.due_day, facts.finished_day, end_of(period, as_of));
        let mut add = |count, holds: bool| {
            if holds {
                out.add(period, count, intake);
            }
        };
        add(CountId::FeedbackReceived, true);
        add(CountId::FeedbackOnTime, on_time);
        add(
            CountId::FeedbackSatisfactory,
            on_time && !facts.dissatisfied && !facts.recomplained,
        );
        add(
            CountId::FeedbackAboutProcedure,
            facts.topic == TOPIC_PROCEDURE,
        );
        add(CountId::FeedbackAboutStaff, facts.topic == TOPIC_STAFF);
    }
    out
}

/// Returns a rating's contribution as of a day.
pub fn rating(rules: &CounterRules, facts: &RatingFacts, as_of: NaiveDate) -> Contribution {
    let mut out = Contribution::new(&facts.unit_code, &facts.province_code);
    if facts.rated_day > as_of {
        return out;
    }
    for period in periods(rules, facts.rated_day, facts.rated_day) {
        out.add(period, CountId::RatingReceived, true);
        if facts.level >= rules.rating_satisfied_min {
            out.add(period, CountId::RatingSatisfied, true);
        }
        if facts.level <= rules.rating_dissatisfied_max {
            out.add(period, CountId::RatingDissatisfied, true);
        }
    }
    out
}

/// Returns a procedure's contribution as of a day.
pub fn procedure(rules: &CounterRules, facts: &ProcedureFacts, as_of: NaiveDate) -> Contribution {
    let mut out = Contribution::new(&facts.unit_code, &facts.province_code);
    // In force from its announcement (or publication) until the day before it is abolished; a
    // procedure with neither day counts as in force throughout.
    let start = facts
        .announced_day
        .or(facts.published_day)
        .unwrap_or(rules.first_day());
    let in_force = |day: NaiveDate| start <= day && facts.abolished_day.is_none_or(|a| a > day);
    let events = [
        facts.announced_day,
        facts.published_day,
        facts.publish_due_day,
    ];
    let first = events
        .into_iter()
        .flatten()
        .chain([start])
        .min()
        .unwrap_or(start);
    let last = match facts.abolished_day {
        Some(abolished) => events
            .into_iter()
            .flatten()
            .chain([abolished])
            .max()
            .unwrap_or(abolished),
        None => as_of,
    };
    let in_period = |period: Period, day: Option<NaiveDate>| {
        day.is_some_and(|day| period.contains(day) && day <= as_of)
    };
    // A procedure is due to be made public in the period of its deadline, or of its
    // publication when it has no deadline.
    let public_due = facts.publish_due_day.or(facts.published_day);

    for period in periods(rules, first, last.min(as_of)) {
        let mut add = |count, holds: bool| {
            if holds {
                out.add(period, count, true);
            }
        };
        if in_force(end_of(period, as_of)) {
            let online = ONLINE_LEVELS.contains(&facts.online_level);
            // Dossiers filed under the procedure in the period, up to the as-of day.
            let used = facts
                .usage
                .range(period.first_day()..=end_of(period, as_of))
                .fold((false, false), |(online, fee), (_, (o, f))| {
                    (online || *o > 0, fee || *f > 0)
                });
            add(CountId::ProcedureTotal, true);
            add(CountId::ProcedureOnline, online);
            add(CountId::ProcedureOnlineUsed, online && used.0);
            add(CountId::ProcedureFeeBearing, facts.fee_bearing);
            // NOTE: a fee-bearing dossier stands for "carries fee data" (low confidence): the
            // portal's rule for PAYMENT_FORMALITY_FEE_DATA is fitted, not published.
            add(CountId::ProcedureFeeData, facts.fee_bearing && used.1);
            add(
                CountId::ProcedurePayableOnline,
                facts.fee_bearing && facts.payable_online,
            );
            add(CountId::ProcedureCitizen, facts.for_citizens);
            add(
                CountId::ProcedurePopulationConnected,
                facts.for_citizens && facts.population_connected,
            );
        }
        if in_period(period, facts.announced_day) {
            add(CountId::ProcedureAnnounced, true);
            let announced = facts.announced_day;
            let timely = match (announced, facts.announce_due_day) {
                (Some(day), Some(due)) => day <= due,
                _ => true,
            };
            add(CountId::ProcedureAnnouncedOnTime, timely);
        }
        if in_period(period, public_due) {
            add(CountId::ProcedureDuePublic, true);
            let published = facts.published_day.filter(|day| *day <= as_of);
            let timely = match (published, facts.publish_due_day) {
                (Some(day), Some(due)) => day <= due,
                (Some(_), None) => true,
                (None, _) => false,
            };
            add(CountId::ProcedurePublicOnTime, timely);
        }
        if in_period(period, facts.published_day) {
            add(CountId::ProcedurePublic, true);
            add(CountId::ProcedurePublicComplete, facts.content_complete);
        }
    }
    out
}
