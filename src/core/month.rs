//! The monthly cap: a per-user ceiling on the paid seconds of a calendar
//! month (in the configured zone; days are already local dates). The day's
//! allowance never exceeds what the month has left at the day's start, so
//! the daily machinery (the include file's cap, the live guard, blocking)
//! keeps the month too. Pure.

use chrono::{Datelike, NaiveDate};

/// The first day of `day`'s month.
pub fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// A month as `report --month` and the notices write it: `2026-12`.
pub fn month_key(day: NaiveDate) -> String {
    day.format("%Y-%m").to_string()
}

/// The last day of the month that starts at (or contains) `day`.
pub fn month_end(day: NaiveDate) -> NaiveDate {
    let start = month_start(day);
    start
        .checked_add_months(chrono::Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap_or(start)
}

/// One user's month before a given day: what the earlier days of the same
/// month charged and the highest monthly threshold already reached and
/// mailed (so a threshold is mailed once a month, however many days pass).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonthSoFar {
    pub used_s: u64,
    pub level: u8,
    pub notified_level: u8,
    /// The monthly limit on the last day counted (a rise re-arms notices).
    pub limit_s: Option<u64>,
}

impl MonthSoFar {
    /// What the month leaves for a day under `limit_s`; `None` without a limit.
    pub fn left_s(&self, limit_s: Option<u64>) -> Option<u64> {
        limit_s.map(|limit| limit.saturating_sub(self.used_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn months_start_and_end() {
        assert_eq!(month_start(day("2026-12-05")), day("2026-12-01"));
        assert_eq!(month_end(day("2026-12-05")), day("2026-12-31"));
        assert_eq!(month_end(day("2028-02-10")), day("2028-02-29"));
        assert_eq!(month_end(day("2026-02-10")), day("2026-02-28"));
        assert_eq!(month_key(day("2026-03-09")), "2026-03");
    }

    #[test]
    fn the_month_leaves_its_limit_less_what_was_used_never_below_zero() {
        let so_far = MonthSoFar {
            used_s: 100,
            ..MonthSoFar::default()
        };
        assert_eq!(so_far.left_s(None), None);
        assert_eq!(so_far.left_s(Some(160)), Some(60));
        assert_eq!(so_far.left_s(Some(60)), Some(0));
    }
}
