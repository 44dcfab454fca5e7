//! Days, day boundaries and the `--now` clock, in the configured time zone.
//!
//! The CDR's `calldate` is written in the Asterisk host's local time, or in
//! UTC when FreePBX's CDRUSEGMT is on; [`CdrClock`] converts between the
//! configured zone's days and the naive timestamps stored in the CDR.

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NowError {
    #[error("--now {0:?} is not a timestamp; use RFC 3339 (2026-11-26T10:00:00+05:00) or local YYYY-MM-DDTHH:MM:SS")]
    Invalid(String),
    #[error("--now {0:?} does not exist in {1} (skipped by a daylight-saving change)")]
    Skipped(String, Tz),
}

/// Parses `--now`: RFC 3339, or a local time in `tz`. An ambiguous local time
/// (the repeated hour of a fall-back day) takes its first occurrence.
pub fn parse_now(text: &str, tz: Tz) -> Result<DateTime<Utc>, NowError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .map_err(|_| NowError::Invalid(text.to_string()))?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err(NowError::Skipped(text.to_string(), tz)),
    }
}

/// The calendar day that `now` falls on in `tz`.
pub fn local_day(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

pub fn next_day(day: NaiveDate) -> NaiveDate {
    day.checked_add_days(Days::new(1)).unwrap_or(day)
}

pub fn previous_day(day: NaiveDate) -> NaiveDate {
    day.checked_sub_days(Days::new(1)).unwrap_or(day)
}

/// Monday = 0 … Sunday = 6.
pub fn weekday_index(day: NaiveDate) -> usize {
    day.weekday().num_days_from_monday() as usize
}

/// The first instant of `day` in `tz`. Where midnight itself is skipped by a
/// DST change, the day starts at the first minute that exists.
pub fn day_start(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    for minutes in 0..=180 {
        let candidate = midnight + chrono::Duration::minutes(minutes);
        match tz.from_local_datetime(&candidate) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.with_timezone(&Utc),
            LocalResult::None => continue,
        }
    }
    Utc.from_utc_datetime(&midnight)
}

/// How `calldate` values relate to the configured zone's days.
#[derive(Debug, Clone, Copy)]
pub struct CdrClock {
    pub tz: Tz,
    /// `calldate` is UTC (FreePBX CDRUSEGMT) rather than local time.
    pub utc: bool,
}

impl CdrClock {
    /// The `calldate` value of an instant.
    pub fn calldate(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        if self.utc {
            instant.naive_utc()
        } else {
            instant.with_timezone(&self.tz).naive_local()
        }
    }

    /// `[start, end)` of `day` as `calldate` values: local midnights, or
    /// their UTC instants on a CDRUSEGMT site. A DST day is 23 or 25 hours.
    pub fn window(&self, day: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
        if self.utc {
            (
                day_start(day, self.tz).naive_utc(),
                day_start(next_day(day), self.tz).naive_utc(),
            )
        } else {
            let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default();
            (midnight(day), midnight(next_day(day)))
        }
    }

    /// The instant a `calldate` value names (in a repeated DST hour, the
    /// earlier one; in a skipped hour, as if the clock had not jumped).
    pub fn instant(&self, calldate: NaiveDateTime) -> DateTime<Utc> {
        if self.utc {
            return Utc.from_utc_datetime(&calldate);
        }
        match self.tz.from_local_datetime(&calldate) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
            LocalResult::None => Utc.from_utc_datetime(&calldate),
        }
    }

    /// The configured zone's day that a `calldate` value belongs to.
    pub fn day_of(&self, calldate: NaiveDateTime) -> NaiveDate {
        if self.utc {
            Utc.from_utc_datetime(&calldate).with_timezone(&self.tz).date_naive()
        } else {
            calldate.date()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn parses_rfc3339_and_local_times() {
        let almaty: Tz = "Asia/Almaty".parse().unwrap();
        let a = parse_now("2026-11-26T10:00:00+05:00", almaty).unwrap();
        let b = parse_now("2026-11-26T10:00:00", almaty).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_rfc3339(), "2026-11-26T05:00:00+00:00");
        assert!(matches!(parse_now("yesterday", almaty), Err(NowError::Invalid(_))));
    }

    #[test]
    fn handles_skipped_and_repeated_local_times() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert!(matches!(
            parse_now("2026-03-29T02:30:00", berlin),
            Err(NowError::Skipped(..))
        ));
        // 02:30 happens twice on 2026-10-25; the first is 00:30 UTC.
        let t = parse_now("2026-10-25T02:30:00", berlin).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-10-25T00:30:00+00:00");
    }

    #[test]
    fn local_windows_are_midnight_to_midnight() {
        let clock = CdrClock {
            tz: "Europe/Berlin".parse().unwrap(),
            utc: false,
        };
        let (start, end) = clock.window(date("2026-03-29"));
        assert_eq!(start, naive("2026-03-29 00:00:00"));
        assert_eq!(end, naive("2026-03-30 00:00:00"));
        assert_eq!(clock.day_of(naive("2026-03-29 23:59:59")), date("2026-03-29"));
    }

    #[test]
    fn utc_windows_follow_dst() {
        let clock = CdrClock {
            tz: "Europe/Berlin".parse().unwrap(),
            utc: true,
        };
        // Spring forward: a 23-hour day.
        let (start, end) = clock.window(date("2026-03-29"));
        assert_eq!(start, naive("2026-03-28 23:00:00"));
        assert_eq!(end, naive("2026-03-29 22:00:00"));
        // Fall back: a 25-hour day.
        let (start, end) = clock.window(date("2026-10-25"));
        assert_eq!(start, naive("2026-10-24 22:00:00"));
        assert_eq!(end, naive("2026-10-25 23:00:00"));
        assert_eq!(clock.day_of(naive("2026-10-25 22:59:59")), date("2026-10-25"));
        assert_eq!(clock.day_of(naive("2026-10-25 23:00:00")), date("2026-10-26"));
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_at_the_first_real_minute() {
        // Chile's spring-forward happens at midnight local time.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let clock = CdrClock {
            tz: santiago,
            utc: true,
        };
        let (start, _) = clock.window(date("2026-09-06"));
        let local = Utc.from_utc_datetime(&start).with_timezone(&santiago);
        assert_eq!(local.date_naive(), date("2026-09-06"));
        assert_eq!(local.format("%H:%M").to_string(), "01:00");
    }

    #[test]
    fn calldate_of_now() {
        let almaty: Tz = "Asia/Almaty".parse().unwrap();
        let now = parse_now("2026-11-26T10:00:00", almaty).unwrap();
        assert_eq!(
            CdrClock { tz: almaty, utc: false }.calldate(now),
            naive("2026-11-26 10:00:00")
        );
        assert_eq!(
            CdrClock { tz: almaty, utc: true }.calldate(now),
            naive("2026-11-26 05:00:00")
        );
    }
}
