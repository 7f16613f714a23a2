//! Counting dossiers per unit and period, in one grouped SQL query per scorecard.
//!
//! Which dossiers count is decided here and nowhere else (medium confidence):
//! - DOSSIER_ON_TIME counts dossiers to handle in the period: received by its end and not
//!   finished before its start, except the statuses in [`EXCLUDED_FROM_ON_TIME`]. One finished
//!   by the end is on time when its finish day is not after its due day. One still open at the
//!   end is on time when its due day is not before the end. No due day means on time.
//! - ONLINE_FILING counts dossiers received in the period, of any status; online ones are those
//!   filed through channel 2.
//!
//! Days are Vietnam calendar days stored as `yyyymmdd` integers, so times of day never matter.

use std::collections::HashMap;

use chiso_proto::vntime::{Month, day_number, vietnam_day};
use rusqlite::{Connection, named_params};

use super::{EXCLUDED_FROM_ON_TIME, ScoreError};
use crate::indicators::{DOSSIER_ON_TIME, ONLINE_FILING};

/// Channel code of dossiers filed online.
const ONLINE_CHANNEL: i32 = 2;

/// Dossier counts of one unit over one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// Dossiers to handle in the period (DOSSIER_ON_TIME denominator).
    to_handle: u64,
    /// Of those, handled early or on time.
    on_time: u64,
    /// Dossiers received in the period (ONLINE_FILING denominator).
    received: u64,
    /// Of those, filed online.
    online: u64,
}

impl Counts {
    pub(super) fn add(&mut self, other: &Counts) {
        self.to_handle += other.to_handle;
        self.on_time += other.on_time;
        self.received += other.received;
        self.online += other.online;
    }

    /// Returns (numerator, denominator) of an indicator, or `None` if it has no counting rule.
    pub(super) fn fraction(&self, indicator_id: &str) -> Option<(u64, u64)> {
        match indicator_id {
            DOSSIER_ON_TIME => Some((self.on_time, self.to_handle)),
            ONLINE_FILING => Some((self.online, self.received)),
            _ => None,
        }
    }
}

/// Vietnam day numbers (`yyyymmdd`) bounding a period, both inclusive.
#[derive(Debug, Clone, Copy)]
pub(super) struct Period {
    first: i64,
    end: i64,
}

impl Period {
    pub(super) fn resolve(month: Month, as_of: i64) -> Result<Period, ScoreError> {
        let as_of_day = vietnam_day(as_of);
        if month.first_day() > as_of_day {
            return Err(ScoreError::PeriodInFuture {
                period: month,
                as_of_day,
                as_of_month: Month::of_day(as_of_day),
            });
        }
        Ok(Period {
            first: day_number(month.first_day()),
            end: day_number(month.last_day().min(as_of_day)),
        })
    }
}

/// Column a count query groups by. Both columns contain catalogue codes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Grouping {
    /// One group per province.
    Province,
    /// One group per unit: a province's own dossiers, or a commune's.
    Unit,
}

impl Grouping {
    fn column(self) -> &'static str {
        match self {
            Grouping::Province => "province_code",
            Grouping::Unit => "unit_code",
        }
    }
}

/// Dossiers a count query looks at.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope<'a> {
    /// Every stored dossier.
    Country,
    /// A province's own dossiers and its communes'.
    Province(&'a str),
    /// One unit's dossiers.
    Unit(&'a str),
}

impl Scope<'_> {
    fn filter(self) -> &'static str {
        match self {
            Scope::Country => "",
            Scope::Province(_) => "AND province_code = :scope",
            Scope::Unit(_) => "AND unit_code = :scope",
        }
    }
}

/// Counts the period's dossiers within a scope per province or unit, in one grouped query.
pub(super) fn count_dossiers(
    conn: &Connection,
    scope: Scope<'_>,
    grouping: Grouping,
    period: Period,
) -> Result<HashMap<String, Counts>, ScoreError> {
    let group = grouping.column();
    let excluded = EXCLUDED_FROM_ON_TIME
        .map(|status| status.to_string())
        .join(", ");
    let scope_filter = scope.filter();

    // The WHERE clause selects the union of both indicators' dossiers: received by the end and
    // not finished before the start. Every dossier received in the period passes it, because
    // the store rejects finish days before the received day.
    let sql = format!(
        "SELECT {group},
                sum(to_handle),
                sum(to_handle AND on_time),
                sum(received),
                sum(received AND channel = {ONLINE_CHANNEL})
         FROM (
             SELECT {group}, channel,
                    status NOT IN ({excluded}) AS to_handle,
                    CASE WHEN finished_day IS NOT NULL AND finished_day <= :end
                         THEN due_day IS NULL OR finished_day <= due_day
                         ELSE due_day IS NULL OR due_day >= :end
                    END AS on_time,
                    received_day >= :first AS received
             FROM dossiers
             WHERE received_day <= :end
               AND (finished_day IS NULL OR finished_day >= :first)
               {scope_filter}
         )
         GROUP BY {group}"
    );

    let mut statement = conn.prepare(&sql)?;
    let read_row = |row: &rusqlite::Row<'_>| {
        let count = |index| row.get::<_, i64>(index).map(|value| value.max(0) as u64);
        Ok((
            row.get::<_, String>(0)?,
            Counts {
                to_handle: count(1)?,
                on_time: count(2)?,
                received: count(3)?,
                online: count(4)?,
            },
        ))
    };
    let rows = match scope {
        Scope::Province(code) | Scope::Unit(code) => statement.query_map(
            named_params! {":first": period.first, ":end": period.end, ":scope": code},
            read_row,
        )?,
        Scope::Country => statement.query_map(
            named_params! {":first": period.first, ":end": period.end},
            read_row,
        )?,
    };
    Ok(rows.collect::<Result<HashMap<_, _>, _>>()?)
}
