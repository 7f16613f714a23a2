//! Running counters: every registry count, per unit, period and period rule, kept up to date in
//! the transaction that stores each record.
//!
//! This module decides which records count, and nowhere else does (medium confidence, see
//! docs/indicators.md):
//! - Days are Vietnam calendar days, so times of day never matter.
//! - The handling set of a period contains the dossiers (or feedback items) received by its end
//!   and not finished before its start. The intake set contains those received in the period. A running
//!   period ends on the as-of day.
//! - A dossier is handled unless its status is in [`EXCLUDED_FROM_ON_TIME`]. One finished by the
//!   period's end is on time when its finish day is not after its due day; one still open is on
//!   time while its due day is not before the end. No due day means on time. So an open dossier
//!   turns late on the day after its due day without any new record: [`advance`] moves the
//!   counters from one as-of day to the next.
//! - Processing steps overlay the dossier they belong to, in step order: a step's status
//!   replaces the dossier's, and its due or finish day replaces the dossier's when it carries
//!   one. A dossier record that is already finished keeps its own status and finish day.
//! - A dossier is satisfied when it is on time, no rating of it is at or below the dissatisfied
//!   level, and no feedback item names it.
//! - A procedure counts in a period's totals when it is in force on the period's end day; its
//!   announcement and publication count in the period of their day.
//! - A rating counts in the period of its day, under both period rules.
//!
//! Each record's contribution goes to its own unit (reach [`Reach::Own`]), to its locality's
//! total (its province or ministry) and, for local government, to the country's total (reach
//! [`Reach::All`]). Ministries form a table of their own, so they stay out of the country's. Applying a record subtracts the
//! contribution of what was stored before (for dossiers, the facts row the counters were built
//! from) and adds the new one, in the writer's transaction. [`rebuild`] recomputes every counter
//! from the stored records, and [`verify`] compares without writing.

pub mod contrib;
pub mod explain;
mod facts;
#[cfg(test)]
mod scorecard_tests;
mod source;
mod table;
#[cfg(test)]
mod tests;

pub use contrib::{Contribution, EXCLUDED_FROM_ON_TIME};
pub use facts::{DossierFacts, FeedbackFacts, ProcedureFacts, RatingFacts, Usage};
pub use source::CounterSource;
pub use table::{
    CounterKey, Delta, Difference, MIGRATION_TO_V4, Verification, advance, as_of_day,
    feedback_before, procedure_before, rating_before, read_meta, rebuild, refresh_dossier,
    refresh_feedback, refresh_procedure, refresh_rating, verify,
};

use chrono::NaiveDate;

/// Unit code of the whole country in counters and scorecards.
pub const COUNTRY: &str = "VN";

/// Settings that change the counters' values. A change needs a rebuild, which the hub runs by
/// itself at start when the stored counters were built with other settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterRules {
    /// First calendar year that has counters; earlier periods are computed on request.
    pub first_year: i32,
    /// Ratings at this level or above (1 to 5) are satisfied.
    pub rating_satisfied_min: u32,
    /// Ratings at this level or below (1 to 5) are dissatisfied.
    pub rating_dissatisfied_max: u32,
}

impl Default for CounterRules {
    fn default() -> CounterRules {
        // NOTE: the rating levels the portal treats as satisfied are not published; 4 and 5 of
        // a five-level scale, and 1 and 2 as dissatisfied, are assumptions kept configurable.
        CounterRules {
            first_year: 2022,
            rating_satisfied_min: 4,
            rating_dissatisfied_max: 2,
        }
    }
}

impl CounterRules {
    /// Returns a text that changes whenever the counters built with these rules would.
    pub fn fingerprint(&self) -> String {
        format!(
            "counters-v1 first_year={} rating_satisfied_min={} rating_dissatisfied_max={}",
            self.first_year, self.rating_satisfied_min, self.rating_dissatisfied_max
        )
    }

    /// Returns the first day that has counters.
    pub fn first_day(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.first_year, 1, 1).unwrap_or(NaiveDate::MIN)
    }
}

/// The records of a unit that a counter covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reach {
    /// The unit's own records.
    Own,
    /// The unit's records and those of every unit below it.
    All,
}

impl Reach {
    fn as_i64(self) -> i64 {
        match self {
            Reach::Own => 0,
            Reach::All => 1,
        }
    }

    fn from_i64(value: i64) -> Option<Reach> {
        match value {
            0 => Some(Reach::Own),
            1 => Some(Reach::All),
            _ => None,
        }
    }
}

/// Converts a `yyyymmdd` day number to a date.
pub fn date_of(day: i64) -> Option<NaiveDate> {
    let year = i32::try_from(day / 10_000).ok()?;
    let month = u32::try_from(day / 100 % 100).ok()?;
    let day_of_month = u32::try_from(day % 100).ok()?;
    NaiveDate::from_ymd_opt(year, month, day_of_month)
}
