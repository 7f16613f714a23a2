//! Sources of scorecard counts: the [`CountSource`] trait, the per-unit table of counts it
//! returns, and the period window and scope of a request.
//!
//! NOTE: today the only source is [`super::sql::SqlDossierSource`], which counts stored dossiers
//! with one grouped SQL query at request time. Running counters kept up to date on every commit
//! can replace it behind this trait without touching the scoring engine.

use std::collections::HashMap;

use chiso_proto::vntime::{Period, day_number, vietnam_day};

use super::ScoreError;
use crate::catalogue::{CountId, PeriodRule};

/// Every registry count under both period rules, for one unit (or a sum of units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    values: [[u64; 2]; CountId::COUNT],
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            values: [[0; 2]; CountId::COUNT],
        }
    }
}

impl Counts {
    /// Returns a count under a period rule.
    pub fn get(&self, count: CountId, period: PeriodRule) -> u64 {
        self.values[count.index()][period.index()]
    }

    /// Sets a count under a period rule.
    pub fn set(&mut self, count: CountId, period: PeriodRule, value: u64) {
        self.values[count.index()][period.index()] = value;
    }

    /// Adds another unit's counts to these, count by count.
    pub fn add(&mut self, other: &Counts) {
        for (mine, theirs) in self.values.iter_mut().zip(&other.values) {
            for (value, addend) in mine.iter_mut().zip(theirs) {
                *value += addend;
            }
        }
    }

    /// Returns the sum of every group's counts.
    pub fn sum<'a>(groups: impl IntoIterator<Item = &'a Counts>) -> Counts {
        let mut total = Counts::default();
        for counts in groups {
            total.add(counts);
        }
        total
    }
}

/// Vietnam day numbers (`yyyymmdd`) bounding a period as it is scored, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The period.
    pub period: Period,
    /// First day of the period.
    pub first: i64,
    /// Last day of the period, or the as-of day while the period is still running.
    pub end: i64,
}

impl Window {
    /// Bounds a period as of an instant; a period that starts after the as-of day is an error.
    pub fn resolve(period: Period, as_of: i64) -> Result<Window, ScoreError> {
        let as_of_day = vietnam_day(as_of);
        if period.first_day() > as_of_day {
            return Err(ScoreError::PeriodInFuture {
                period,
                as_of_day,
                as_of_period: Period::containing(period.kind(), as_of_day),
            });
        }
        Ok(Window {
            period,
            first: day_number(period.first_day()),
            end: day_number(period.last_day().min(as_of_day)),
        })
    }
}

/// Grouping of a count query's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One group per province.
    Province,
    /// One group per unit: a province's own records, or a commune's.
    Unit,
}

/// Records a count query looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every stored record.
    Country,
    /// A province's own records and its communes'.
    Province(&'a str),
}

/// A source of counts for scorecards.
pub trait CountSource {
    /// Returns why this source cannot compute a count (for example, no records of its kind are
    /// stored), or `None` when it can. Counts it cannot compute read 0.
    fn unavailable(&self, count: CountId) -> Option<String>;

    /// Counts every available count within a scope and window, per province or unit code.
    /// Codes with no records may be missing from the map.
    fn count(
        &self,
        scope: Scope<'_>,
        grouping: Grouping,
        window: Window,
    ) -> Result<HashMap<String, Counts>, ScoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chiso_proto::vntime::parse_portal_datetime;

    fn window(period: &str, as_of: &str) -> Result<Window, ScoreError> {
        let as_of = parse_portal_datetime(as_of).unwrap();
        Window::resolve(period.parse().unwrap(), as_of)
    }

    #[test]
    fn window_of_each_period_kind() {
        let as_of = "20270115120000";
        assert_eq!(
            window("2026-Q4", as_of).unwrap(),
            Window {
                period: "2026-Q4".parse().unwrap(),
                first: 20261001,
                end: 20261231
            }
        );
        assert_eq!(
            window("2026-H2", as_of).unwrap(),
            Window {
                period: "2026-H2".parse().unwrap(),
                first: 20260701,
                end: 20261231
            }
        );
        assert_eq!(
            window("2026", as_of).unwrap(),
            Window {
                period: "2026".parse().unwrap(),
                first: 20260101,
                end: 20261231
            }
        );
        assert_eq!(
            window("2026-02", as_of).unwrap(),
            Window {
                period: "2026-02".parse().unwrap(),
                first: 20260201,
                end: 20260228
            }
        );
    }

    #[test]
    fn running_period_ends_at_as_of() {
        // 00:30 on 1 October Vietnam time: the fourth quarter has started, on its first day.
        let window = window("2026-Q4", "20261001003000").unwrap();
        assert_eq!(
            window,
            Window {
                period: "2026-Q4".parse().unwrap(),
                first: 20261001,
                end: 20261001
            }
        );
    }

    #[test]
    fn future_period_names_current() {
        // 23:59 on 30 September Vietnam time: the fourth quarter has not started.
        let error = window("2026-Q4", "20260930235900").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("2026-Q4"), "{message}");
        assert!(message.contains("2026-09-30"), "{message}");
        assert!(message.contains("request 2026-Q3"), "{message}");
    }

    #[test]
    fn counts_add_per_rule() {
        let mut first = Counts::default();
        first.set(CountId::DossierOnline, PeriodRule::Intake, 3);
        first.set(CountId::DossierOnline, PeriodRule::Handling, 5);
        let mut second = Counts::default();
        second.set(CountId::DossierOnline, PeriodRule::Intake, 4);
        let total = Counts::sum([&first, &second]);
        assert_eq!(total.get(CountId::DossierOnline, PeriodRule::Intake), 7);
        assert_eq!(total.get(CountId::DossierOnline, PeriodRule::Handling), 5);
        assert_eq!(total.get(CountId::DossierReceived, PeriodRule::Intake), 0);
    }
}
