//! Vietnam time: the portal's `yyyyMMddHHmmss` strings, calendar days and months.
//!
//! Vietnam keeps UTC+7 all year (no daylight saving since 1975), so a fixed offset is exact for
//! every date the portal can carry. Days are the unit of on-time judgement, and a record's day
//! and month are its Vietnam calendar day and month: 00:30 on 1 October in Vietnam is October,
//! although it is still 30 September in UTC.

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
}
