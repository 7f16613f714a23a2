//! Scorecard counts from the running counters, or from the stored facts when a request needs
//! another as-of day than the counters hold.

use std::collections::HashMap;

use chiso_proto::units::UnitCatalogue;
use rusqlite::Connection;

use super::table::{as_of_day, contributions, read_period};
use super::{COUNTRY, CounterRules, Reach, date_of};
use crate::catalogue::{CountId, PeriodRule};
use crate::scores::reported::dossier_reported;
use crate::scores::{CountSource, Counts, Grouping, Scope, ScoreError, Window};

/// Counts for scorecards, read from the counters table.
pub struct CounterSource<'a> {
    conn: &'a Connection,
    units: &'a UnitCatalogue,
    rules: CounterRules,
}

impl<'a> CounterSource<'a> {
    /// Creates a source over a store connection.
    pub fn new(
        conn: &'a Connection,
        units: &'a UnitCatalogue,
        rules: CounterRules,
    ) -> CounterSource<'a> {
        CounterSource { conn, units, rules }
    }

    /// Returns whether the counters hold the window as it is scored: the period is counted and
    /// ends on the same day as of the counters' day as it does as of the request's.
    fn counters_hold(&self, window: Window) -> Result<bool, ScoreError> {
        if window.period.first_day() < self.rules.first_day() {
            return Ok(false);
        }
        let Some(as_of) = as_of_day(self.conn)? else {
            return Ok(false);
        };
        let end = window.period.last_day().min(as_of);
        Ok(date_of(window.end) == Some(end))
    }

    fn in_scope(&self, scope: Scope<'_>, grouping: Grouping, unit: &str) -> bool {
        match (scope, grouping) {
            (_, Grouping::Province) if unit == COUNTRY => false,
            (Scope::Country, _) => true,
            (Scope::Province(province), Grouping::Province) => unit == province,
            (Scope::Province(province), Grouping::Unit) => self
                .units
                .get(unit)
                .is_some_and(|found| found.province_code == province),
        }
    }
}

fn clamp(count: CountId, unit: &str, value: i64) -> u64 {
    u64::try_from(value).unwrap_or_else(|_| {
        tracing::error!(
            unit,
            count = count.name(),
            value,
            "negative counter read as 0; run chiso-hub recompute --verify"
        );
        0
    })
}

impl CountSource for CounterSource<'_> {
    fn unavailable(&self, _count: CountId) -> Option<String> {
        None
    }

    fn count(
        &self,
        scope: Scope<'_>,
        grouping: Grouping,
        window: Window,
    ) -> Result<HashMap<String, Counts>, ScoreError> {
        let mut out = self.count_records(scope, grouping, window)?;
        let reported = dossier_reported(self.conn, scope, grouping, window)?;
        for unit in reported.keys() {
            out.entry(unit.clone()).or_default();
        }
        // dossier.reported is the larger of what the unit's own digests report and what is
        // stored, so it never falls below dossier.received.
        for (unit, counts) in &mut out {
            let digests = reported.get(unit).copied().unwrap_or(0);
            for rule in PeriodRule::ALL {
                let received = counts.get(CountId::DossierReceived, rule);
                counts.set(CountId::DossierReported, rule, digests.max(received));
            }
        }
        Ok(out)
    }
}

impl CounterSource<'_> {
    /// Counts every registry count kept by the counters, per unit of the grouping.
    fn count_records(
        &self,
        scope: Scope<'_>,
        grouping: Grouping,
        window: Window,
    ) -> Result<HashMap<String, Counts>, ScoreError> {
        let mut out: HashMap<String, Counts> = HashMap::new();
        if self.counters_hold(window)? {
            let reach = match grouping {
                Grouping::Province => Reach::All,
                Grouping::Unit => Reach::Own,
            };
            for (unit, count, rule, value) in read_period(self.conn, window.period, reach)? {
                if self.in_scope(scope, grouping, &unit) {
                    let value = clamp(count, &unit, value);
                    out.entry(unit).or_default().set(count, rule, value);
                }
            }
            return Ok(out);
        }

        let as_of = date_of(window.end).unwrap_or(window.period.last_day());
        let province = match scope {
            Scope::Country => None,
            Scope::Province(code) => Some(code),
        };
        let mut raw: HashMap<String, HashMap<(CountId, PeriodRule), i64>> = HashMap::new();
        contributions(self.conn, &self.rules, province, as_of, |contribution| {
            let unit = match grouping {
                Grouping::Province => &contribution.province_code,
                Grouping::Unit => &contribution.unit_code,
            };
            for (period, count, rule) in &contribution.items {
                if *period == window.period {
                    *raw.entry(unit.clone())
                        .or_default()
                        .entry((*count, *rule))
                        .or_default() += 1;
                }
            }
        })?;
        for (unit, values) in raw {
            let counts = out.entry(unit).or_default();
            for ((count, rule), value) in values {
                counts.set(count, rule, value.max(0) as u64);
            }
        }
        Ok(out)
    }
}
