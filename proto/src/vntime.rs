//! Vietnam time: the portal's `yyyyMMddHHmmss` strings, calendar days, months and the
//! scoring periods (month, quarter, half-year, year).
//!
//! Vietnam keeps UTC+7 all year (no daylight saving since 1975), so a fixed offset is exact for
//! every date the portal can carry. Days are the unit of on-time judgement, and a record's day
//! and period are its Vietnam calendar day and period: 00:30 on 1 October in Vietnam is October
//! (and the fourth quarter), although it is still 30 September in UTC.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use std::fmt;
use std::str::FromStr;

/// Offset of Vietnam time from UTC, in seconds.
pub const VIETNAM_OFFSET_SECONDS: i32 = 7 * 3600;

/// The portal's date-time layout.
pub const PORTAL_FORMAT: &str = "%Y%m%d%H%M%S";

/// Returns the Vietnam time zone as a fixed offset.
pub fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(VIETNAM_OFFSET_SECONDS).expect("UTC+7 is within chrono's offset range")
}

/// A date string that is not a valid `yyyyMMddHHmmss` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date {value:?}: expected yyyyMMddHHmmss in Vietnam time, such as 20261001003000")]
pub struct DateError {
    /// The rejected string.
    pub value: String,
}

/// Parses a portal date-time string (Vietnam time) into Unix seconds.
pub fn parse_portal_datetime(value: &str) -> Result<i64, DateError> {
    let error = || DateError {
        value: value.to_string(),
    };
    if value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error());
    }
    let naive = NaiveDateTime::parse_from_str(value, PORTAL_FORMAT).map_err(|_| error())?;
    let local = vietnam()
        .from_local_datetime(&naive)
        .single()
        .ok_or_else(error)?;
    Ok(local.timestamp())
}

/// Formats Unix seconds as a portal date-time string in Vietnam time.
pub fn format_portal_datetime(unix_seconds: i64) -> String {
    to_vietnam(unix_seconds).format(PORTAL_FORMAT).to_string()
}

/// Converts Unix seconds to a Vietnam date-time; out-of-range values clamp to the epoch.
pub fn to_vietnam(unix_seconds: i64) -> DateTime<FixedOffset> {
    DateTime::from_timestamp(unix_seconds, 0)
        .unwrap_or_default()
        .with_timezone(&vietnam())
}

/// Returns the Vietnam calendar day of an instant.
pub fn vietnam_day(unix_seconds: i64) -> NaiveDate {
    to_vietnam(unix_seconds).date_naive()
}

/// Returns a day as the integer `yyyymmdd`, which sorts like the day itself.
pub fn day_number(day: NaiveDate) -> i64 {
    i64::from(day.year()) * 10_000 + i64::from(day.month()) * 100 + i64::from(day.day())
}

/// A calendar month, written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    first_day: NaiveDate,
}

/// A month string that is not `YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid period {value:?}: expected a month as YYYY-MM, such as 2026-10")]
pub struct PeriodError {
    /// The rejected string.
    pub value: String,
}

impl Month {
    /// Returns the month that contains a day.
    pub fn of_day(day: NaiveDate) -> Month {
        Month {
            first_day: day.with_day(1).expect("day 1 exists in every month"),
        }
    }

    /// Returns the Vietnam month that contains an instant.
    pub fn of_instant(unix_seconds: i64) -> Month {
        Month::of_day(vietnam_day(unix_seconds))
    }

    /// Returns the first day of the month.
    pub fn first_day(self) -> NaiveDate {
        self.first_day
    }

    /// Returns the last day of the month.
    pub fn last_day(self) -> NaiveDate {
        self.next()
            .first_day
            .pred_opt()
            .expect("a month has a day before the next month")
    }

    /// Returns the following month.
    pub fn next(self) -> Month {
        Month {
            first_day: self
                .first_day
                .checked_add_months(chrono::Months::new(1))
                .expect("months stay within chrono's range for portal dates"),
        }
    }
}

impl FromStr for Month {
    type Err = PeriodError;

    fn from_str(value: &str) -> Result<Month, PeriodError> {
        let error = || PeriodError {
            value: value.to_string(),
        };
        let (year, month) = value.split_once('-').ok_or_else(error)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(error());
        }
        let year: i32 = year.parse().map_err(|_| error())?;
        let month: u32 = month.parse().map_err(|_| error())?;
        let first_day = NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(error)?;
        Ok(Month { first_day })
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}",
            self.first_day.year(),
            self.first_day.month()
        )
    }
}

/// Length of a scoring period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeriodKind {
    /// A calendar month, written `YYYY-MM`.
    Month,
    /// A calendar quarter, written `YYYY-Q1` to `YYYY-Q4`.
    Quarter,
    /// A half-year, written `YYYY-H1` (January to June) or `YYYY-H2` (July to December).
    HalfYear,
    /// A calendar year, written `YYYY`.
    Year,
}

impl PeriodKind {
    /// Returns the number of months the period spans.
    pub fn months(self) -> u32 {
        match self {
            PeriodKind::Month => 1,
            PeriodKind::Quarter => 3,
            PeriodKind::HalfYear => 6,
            PeriodKind::Year => 12,
        }
    }

    /// Returns the kind's name as scorecards show it: month, quarter, half-year or year.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Month => "month",
            PeriodKind::Quarter => "quarter",
            PeriodKind::HalfYear => "half-year",
            PeriodKind::Year => "year",
        }
    }
}

/// A scoring period of Vietnam calendar days: a month, quarter, half-year or year.
///
/// Periods start on the first day of a month that is a multiple of their length from January,
/// so a quarter always starts in January, April, July or October.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    first_day: NaiveDate,
    kind: PeriodKind,
}

/// A period string that matches none of `YYYY-MM`, `YYYY-Qn`, `YYYY-Hn` and `YYYY`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid period {value:?}: expected a month (2026-10), a quarter (2026-Q4), a half-year (2026-H2) or a year (2026)"
)]
pub struct ParsePeriodError {
    /// The rejected string.
    pub value: String,
}

impl Period {
    /// Returns the period of the given kind that contains a day.
    pub fn containing(kind: PeriodKind, day: NaiveDate) -> Period {
        let length = kind.months();
        let first_month = (day.month0() / length) * length + 1;
        Period {
            first_day: NaiveDate::from_ymd_opt(day.year(), first_month, 1)
                .expect("day 1 of a month between 1 and 12 exists"),
            kind,
        }
    }

    /// Returns the period of the given kind that contains an instant, in Vietnam time.
    pub fn of_instant(kind: PeriodKind, unix_seconds: i64) -> Period {
        Period::containing(kind, vietnam_day(unix_seconds))
    }

    /// Returns the period's kind.
    pub fn kind(self) -> PeriodKind {
        self.kind
    }

    /// Returns the first day of the period.
    pub fn first_day(self) -> NaiveDate {
        self.first_day
    }

    /// Returns the last day of the period.
    pub fn last_day(self) -> NaiveDate {
        self.first_day
            .checked_add_months(chrono::Months::new(self.kind.months()))
            .and_then(|next| next.pred_opt())
            .expect("periods stay within chrono's range for portal dates")
    }

    /// Returns whether a day lies within the period, both ends included.
    pub fn contains(self, day: NaiveDate) -> bool {
        self.first_day <= day && day <= self.last_day()
    }

    fn parse_year(year: &str) -> Option<i32> {
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        year.parse().ok()
    }

    fn parse_index(digit: &str, count: u32) -> Option<u32> {
        let index: u32 = digit.parse().ok().filter(|_| digit.len() == 1)?;
        (1..=count).contains(&index).then_some(index)
    }

    fn parse_parts(value: &str) -> Option<Period> {
        let Some((year, rest)) = value.split_once('-') else {
            let year = Period::parse_year(value)?;
            let first_day = NaiveDate::from_ymd_opt(year, 1, 1)?;
            return Some(Period {
                first_day,
                kind: PeriodKind::Year,
            });
        };
        let year = Period::parse_year(year)?;
        let (kind, month) = if let Some(digit) = rest.strip_prefix(['Q', 'q']) {
            let quarter = Period::parse_index(digit, 4)?;
            (PeriodKind::Quarter, (quarter - 1) * 3 + 1)
        } else if let Some(digit) = rest.strip_prefix(['H', 'h']) {
            let half = Period::parse_index(digit, 2)?;
            (PeriodKind::HalfYear, (half - 1) * 6 + 1)
        } else {
            if rest.len() != 2 || !rest.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (PeriodKind::Month, rest.parse().ok()?)
        };
        let first_day = NaiveDate::from_ymd_opt(year, month, 1)?;
        Some(Period { first_day, kind })
    }
}

impl From<Month> for Period {
    fn from(month: Month) -> Period {
        Period {
            first_day: month.first_day(),
            kind: PeriodKind::Month,
        }
    }
}

impl FromStr for Period {
    type Err = ParsePeriodError;

    /// Parses `2026-10`, `2026-Q4`, `2026-H2` or `2026`; `q` and `h` may be lower case.
    fn from_str(value: &str) -> Result<Period, ParsePeriodError> {
        Period::parse_parts(value).ok_or_else(|| ParsePeriodError {
            value: value.to_string(),
        })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let year = self.first_day.year();
        let month = self.first_day.month();
        match self.kind {
            PeriodKind::Month => write!(f, "{year:04}-{month:02}"),
            PeriodKind::Quarter => write!(f, "{year:04}-Q{}", (month - 1) / 3 + 1),
            PeriodKind::HalfYear => write!(f, "{year:04}-H{}", (month - 1) / 6 + 1),
            PeriodKind::Year => write!(f, "{year:04}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_datetime_is_vietnam_time() {
        // 00:30 on 1 October 2026 in Vietnam is 17:30 on 30 September in UTC.
        let seconds = parse_portal_datetime("20261001003000").unwrap();
        assert_eq!(
            DateTime::from_timestamp(seconds, 0).unwrap().to_rfc3339(),
            "2026-09-30T17:30:00+00:00"
        );
        assert_eq!(Month::of_instant(seconds).to_string(), "2026-10");
        assert_eq!(format_portal_datetime(seconds), "20261001003000");
    }

    #[test]
    fn malformed_datetimes_are_rejected() {
        for value in [
            "",
            "2026100100300",
            "2026-10-01 00:30",
            "20261301000000",
            "20260230000000",
        ] {
            let error = parse_portal_datetime(value).unwrap_err();
            assert_eq!(error.value, value);
        }
    }

    #[test]
    fn month_bounds_and_parsing() {
        let february: Month = "2028-02".parse().unwrap();
        assert_eq!(
            february.last_day(),
            NaiveDate::from_ymd_opt(2028, 2, 29).unwrap()
        );
        assert_eq!(february.next().to_string(), "2028-03");
        assert!("2026-13".parse::<Month>().is_err());
        assert!("2026-1".parse::<Month>().is_err());
        assert!("202610".parse::<Month>().is_err());
    }

    #[test]
    fn day_number_sorts_like_days() {
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert_eq!(day_number(day), 20261001);
    }

    fn day(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn bounds(value: &str) -> (NaiveDate, NaiveDate) {
        let period: Period = value.parse().unwrap();
        (period.first_day(), period.last_day())
    }

    #[test]
    fn period_bounds_per_kind() {
        assert_eq!(bounds("2026-10"), (day(2026, 10, 1), day(2026, 10, 31)));
        assert_eq!(bounds("2028-02"), (day(2028, 2, 1), day(2028, 2, 29)));
        assert_eq!(bounds("2026-Q1"), (day(2026, 1, 1), day(2026, 3, 31)));
        assert_eq!(bounds("2026-Q2"), (day(2026, 4, 1), day(2026, 6, 30)));
        assert_eq!(bounds("2026-Q3"), (day(2026, 7, 1), day(2026, 9, 30)));
        assert_eq!(bounds("2026-Q4"), (day(2026, 10, 1), day(2026, 12, 31)));
        assert_eq!(bounds("2026-H1"), (day(2026, 1, 1), day(2026, 6, 30)));
        assert_eq!(bounds("2026-H2"), (day(2026, 7, 1), day(2026, 12, 31)));
        assert_eq!(bounds("2026"), (day(2026, 1, 1), day(2026, 12, 31)));
        assert_eq!(bounds("2028-q1"), (day(2028, 1, 1), day(2028, 3, 31)));
    }

    #[test]
    fn period_display_round_trips() {
        for value in [
            "2026-10", "2026-01", "2026-Q1", "2026-Q4", "2026-H1", "2026-H2", "2026",
        ] {
            let period: Period = value.parse().unwrap();
            assert_eq!(period.to_string(), value);
        }
        assert_eq!("2026-h2".parse::<Period>().unwrap().to_string(), "2026-H2");
    }

    #[test]
    fn malformed_periods_are_rejected() {
        for value in [
            "",
            "26",
            "20266",
            "2026-",
            "2026-13",
            "2026-00",
            "2026-1",
            "2026-Q0",
            "2026-Q5",
            "2026-Q",
            "2026-Q12",
            "2026-H0",
            "2026-H3",
            "2026-S1",
            "2026-10-01",
            "+202-Q1",
            "2026-+1",
        ] {
            let error = value.parse::<Period>().unwrap_err();
            assert_eq!(error.value, value);
        }
        let message = "2026-Q5".parse::<Period>().unwrap_err().to_string();
        assert!(message.contains("2026-Q4"), "{message}");
    }

    #[test]
    fn period_of_instant_uses_vietnam_day() {
        // 00:30 on 1 October 2026 in Vietnam is 17:30 on 30 September in UTC.
        let october_first = parse_portal_datetime("20261001003000").unwrap();
        assert_eq!(
            Period::of_instant(PeriodKind::Quarter, october_first).to_string(),
            "2026-Q4"
        );
        assert_eq!(
            Period::of_instant(PeriodKind::HalfYear, october_first).to_string(),
            "2026-H2"
        );
        assert_eq!(
            Period::of_instant(PeriodKind::Month, october_first).to_string(),
            "2026-10"
        );

        // 23:59:59 on 30 June in Vietnam is still the first half; one second later is not.
        let june_end = parse_portal_datetime("20260630235959").unwrap();
        assert_eq!(
            Period::of_instant(PeriodKind::HalfYear, june_end).to_string(),
            "2026-H1"
        );
        assert_eq!(
            Period::of_instant(PeriodKind::Quarter, june_end).to_string(),
            "2026-Q2"
        );
        assert_eq!(
            Period::of_instant(PeriodKind::HalfYear, june_end + 1).to_string(),
            "2026-H2"
        );
        assert_eq!(
            Period::of_instant(PeriodKind::Quarter, june_end + 1).to_string(),
            "2026-Q3"
        );

        // 00:00 on 1 January 2027 in Vietnam is 17:00 on 31 December 2026 in UTC.
        let new_year = parse_portal_datetime("20270101000000").unwrap();
        assert_eq!(
            DateTime::from_timestamp(new_year, 0).unwrap().to_rfc3339(),
            "2026-12-31T17:00:00+00:00"
        );
        assert_eq!(
            Period::of_instant(PeriodKind::Year, new_year).to_string(),
            "2027"
        );
        assert_eq!(
            Period::of_instant(PeriodKind::Year, new_year - 1).to_string(),
            "2026"
        );
    }

    #[test]
    fn period_contains_its_bounds_only() {
        let quarter: Period = "2026-Q4".parse().unwrap();
        assert!(quarter.contains(day(2026, 10, 1)));
        assert!(quarter.contains(day(2026, 12, 31)));
        assert!(!quarter.contains(day(2026, 9, 30)));
        assert!(!quarter.contains(day(2027, 1, 1)));
        assert_eq!(quarter.kind(), PeriodKind::Quarter);
        assert_eq!(
            Period::containing(PeriodKind::Quarter, day(2026, 11, 15)),
            quarter
        );
        let month: Month = "2026-10".parse().unwrap();
        assert_eq!(Period::from(month).to_string(), "2026-10");
        assert_eq!(Period::from(month).last_day(), month.last_day());
    }
}
