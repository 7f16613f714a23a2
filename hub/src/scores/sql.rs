//! An independent recount of dossier counts in one grouped SQL query per request, straight from
//! the dossiers table. The running counters (`crate::counters`) are what scorecards read; this
//! source states the same dossier rules a second way, so tests can check the counters against
//! it. It does not overlay processing steps, ratings or feedback, so it agrees with the counters
//! only for dossiers without them.
//!
//! The rules, as `crate::counters` documents them: the handling set of a period holds the
//! dossiers received by its end and not finished before its start, and the intake set those
//! received in the period; a dossier is handled unless its status is in
//! [`EXCLUDED_FROM_ON_TIME`]; one finished by the end is on time when its finish day is not
//! after its due day, and one still open when its due day is not before the end.

use std::collections::HashMap;

use rusqlite::{Connection, named_params};

use crate::counters::EXCLUDED_FROM_ON_TIME;

use super::ScoreError;
use super::source::{CountSource, Counts, Grouping, Scope, Window};
use crate::catalogue::{CountId, PeriodRule, RecordKind};

/// Channel code of dossiers filed online.
const ONLINE_CHANNEL: i32 = 2;

/// The dossier counts this source computes, each with its SQL predicate over one dossier.
const PREDICATES: [(CountId, &str); 9] = [
    (CountId::DossierReceived, "1"),
    (CountId::DossierHandled, "handled"),
    (CountId::DossierOnTime, "handled AND on_time"),
    (CountId::DossierOnline, "channel = :online"),
    (CountId::DossierElectronicResult, "electronic_result"),
    (CountId::DossierDigitized, "digitized"),
    (CountId::DossierReusedData, "reused_data"),
    (CountId::DossierFeeBearing, "fee_bearing"),
    (CountId::DossierPaidOnline, "fee_bearing AND paid_online"),
];

/// Counts from the dossiers table of the hub store.
pub struct SqlDossierSource<'a> {
    conn: &'a Connection,
}

impl<'a> SqlDossierSource<'a> {
    /// Creates a source over a store connection.
    pub fn new(conn: &'a Connection) -> SqlDossierSource<'a> {
        SqlDossierSource { conn }
    }
}

fn query_sql(scope: Scope<'_>, grouping: Grouping) -> String {
    let group = match grouping {
        Grouping::Province => "province_code",
        Grouping::Unit => "unit_code",
    };
    let scope_filter = match scope {
        Scope::Country => "",
        Scope::Province(_) => "AND province_code = :scope",
    };
    let excluded = EXCLUDED_FROM_ON_TIME
        .map(|status| status.to_string())
        .join(", ");
    let sums: Vec<String> = PREDICATES
        .iter()
        .map(|(_, predicate)| format!("sum({predicate}), sum(intake AND ({predicate}))"))
        .collect();
    let sums = sums.join(",\n                ");

    format!(
        "SELECT {group},
                {sums}
         FROM (
             SELECT {group}, channel, electronic_result, digitized, reused_data, fee_bearing,
                    paid_online,
                    status NOT IN ({excluded}) AS handled,
                    CASE WHEN finished_day IS NOT NULL AND finished_day <= :end
                         THEN due_day IS NULL OR finished_day <= due_day
                         ELSE due_day IS NULL OR due_day >= :end
                    END AS on_time,
                    received_day >= :first AS intake
             FROM dossiers
             WHERE received_day <= :end
               AND (finished_day IS NULL OR finished_day >= :first)
               {scope_filter}
         )
         GROUP BY {group}"
    )
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Counts)> {
    let mut counts = Counts::default();
    for (index, (count, _)) in PREDICATES.iter().enumerate() {
        let handling: i64 = row.get(1 + 2 * index)?;
        let intake: i64 = row.get(2 + 2 * index)?;
        counts.set(*count, PeriodRule::Handling, handling.max(0) as u64);
        counts.set(*count, PeriodRule::Intake, intake.max(0) as u64);
    }
    Ok((row.get(0)?, counts))
}

impl CountSource for SqlDossierSource<'_> {
    fn unavailable(&self, count: CountId) -> Option<String> {
        if PREDICATES.iter().any(|(computed, _)| *computed == count) {
            return None;
        }
        // TODO: dossier.reported needs the agents' per-day digests (the store's reported_counts
        // table). The other kinds need records of their own, which running counters will add.
        let missing = count
            .def()
            .needs
            .iter()
            .find(|kind| **kind != RecordKind::Dossier);
        Some(match missing {
            Some(kind) => format!(
                "not assessed: this hub does not count {} records yet ({count})",
                kind.as_str()
            ),
            None => format!(
                "not assessed: dossier records do not carry the field that {count} needs yet"
            ),
        })
    }

    fn count(
        &self,
        scope: Scope<'_>,
        grouping: Grouping,
        window: Window,
    ) -> Result<HashMap<String, Counts>, ScoreError> {
        let sql = query_sql(scope, grouping);
        let mut statement = self.conn.prepare(&sql)?;
        let rows = match scope {
            Scope::Province(code) => statement.query_map(
                named_params! {
                    ":first": window.first, ":end": window.end, ":online": ONLINE_CHANNEL,
                    ":scope": code,
                },
                read_row,
            )?,
            Scope::Country => statement.query_map(
                named_params! {":first": window.first, ":end": window.end, ":online": ONLINE_CHANNEL},
                read_row,
            )?,
        };
        Ok(rows.collect::<Result<HashMap<_, _>, _>>()?)
    }
}
