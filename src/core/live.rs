//! The live guard's figures as Asterisk keeps them (AstDB family `callquota`,
//! see [`crate::core::dialplan`]): read from the CLI's `database show` and
//! `group show channels` answers by pure functions, for `status` and for the
//! run that deletes the counters of days that are over.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use crate::core::dialplan::LIVE_FAMILY;
use crate::core::policy::Access;

/// One user's live counters for one day, in milliseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Talk time Asterisk measured (settled calls).
    pub used_ms: u64,
    /// Held by calls in progress.
    pub reserved_ms: u64,
}

/// `callquota/DAY/EXT/{used,reserved}` keys of a `database show callquota`
/// answer, by day and extension. Lines that are not ours are ignored.
pub fn parse_counters(output: &str) -> BTreeMap<(NaiveDate, String), Counters> {
    let mut counters: BTreeMap<(NaiveDate, String), Counters> = BTreeMap::new();
    for line in output.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let mut parts = key.trim().trim_start_matches('/').split('/');
        let (Some(family), Some(day), Some(ext), Some(field), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(day) = NaiveDate::parse_from_str(day, "%Y%m%d") else {
            continue;
        };
        // A value that is not a count (only a hand edit makes one) reads as 0.
        let value: u64 = value.trim().parse().unwrap_or(0);
        if family != LIVE_FAMILY {
            continue;
        }
        let entry = counters.entry((day, ext.to_string())).or_default();
        match field {
            "used" => entry.used_ms = value,
            "reserved" => entry.reserved_ms = value,
            _ => {}
        }
    }
    counters
}

/// The days that have counters in a `database show callquota` answer.
pub fn days_in(output: &str) -> BTreeSet<NaiveDate> {
    parse_counters(output).into_keys().map(|(day, _)| day).collect()
}

/// The extensions with a call in progress that holds a reservation
/// (`GROUP(callquota-EXT)=live`: group `live` in category `callquota-EXT`),
/// from a `group show channels` answer.
pub fn talking(output: &str) -> BTreeSet<String> {
    output
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_channel, group, category) = (fields.next()?, fields.next()?, fields.next()?);
            (group == "live")
                .then(|| category.strip_prefix("callquota-"))
                .flatten()
                .map(str::to_string)
        })
        .collect()
}

/// What the check would see for `ext` on `day`: the talk time Asterisk
/// measured that day, and what calls in progress hold (that day's and the
/// day before's reservations, trusted only while one of the user's calls is
/// alive, exactly as the dialplan does).
pub fn figures(
    counters: &BTreeMap<(NaiveDate, String), Counters>,
    talking: &BTreeSet<String>,
    day: NaiveDate,
    ext: &str,
) -> Counters {
    let on = |d: NaiveDate| counters.get(&(d, ext.to_string())).copied().unwrap_or_default();
    let today = on(day);
    let prior = day.pred_opt().map(on).unwrap_or_default();
    let reserved_ms = if talking.contains(ext) {
        today.reserved_ms.saturating_add(prior.reserved_ms)
    } else {
        0
    };
    Counters {
        used_ms: today.used_ms,
        reserved_ms,
    }
}

/// What a paid call of a user could talk right now, as the check and the
/// balance code work it out (`[callquota-left]`): nothing when the file
/// refuses the user; else the allowance less the larger of the CDR's usage
/// and Asterisk's own count, less what calls in progress hold.
pub fn left_ms(access: &Access, live: Counters) -> u64 {
    match *access {
        Access::Deny => 0,
        Access::Allow {
            allowance_ms, used_ms, ..
        } => allowance_ms
            .saturating_sub(used_ms.max(live.used_ms))
            .saturating_sub(live.reserved_ms),
    }
}

/// Milliseconds shown as whole seconds, rounded like the CDR's billsec.
pub fn seconds(ms: u64) -> u64 {
    ms.saturating_add(500) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    const SHOW: &str = "\
/callquota/20261125/2055/reserved                 : 15000
/callquota/20261125/2055/used                     : 8000
/callquota/20261126/2055/reserved                 : 20000
/callquota/20261126/2055/used                     : 12345
/callquota/20261126/2066/used                     : 700
/callquota/garbage/2066/used                      : 1
/callquota/20261126/2077/used                     : -5
/other/20261126/2055/used                         : 99
6 results found.
";

    #[test]
    fn left_is_the_allowance_less_the_larger_usage_less_what_calls_hold() {
        let allow = Access::Allow {
            remaining_ms: 400_000,
            allowance_ms: 600_000,
            used_ms: 200_000,
        };
        let c = |used_ms, reserved_ms| Counters { used_ms, reserved_ms };
        assert_eq!(
            left_ms(&allow, c(0, 0)),
            400_000,
            "the CDR's usage when Asterisk counted less"
        );
        assert_eq!(
            left_ms(&allow, c(250_500, 0)),
            349_500,
            "Asterisk's count when it is larger"
        );
        assert_eq!(left_ms(&allow, c(250_500, 100_000)), 249_500, "less what calls hold");
        assert_eq!(left_ms(&allow, c(700_000, 0)), 0, "never below nothing");
        assert_eq!(left_ms(&allow, c(0, 900_000)), 0);
        assert_eq!(left_ms(&Access::Deny, c(0, 0)), 0, "a refused user has nothing left");
    }

    #[test]
    fn reads_the_counters_by_day_and_extension() {
        let c = parse_counters(SHOW);
        assert_eq!(
            c[&(d("2026-11-26"), "2055".into())],
            Counters {
                used_ms: 12345,
                reserved_ms: 20000
            }
        );
        assert_eq!(c[&(d("2026-11-25"), "2055".into())].reserved_ms, 15000);
        assert_eq!(c[&(d("2026-11-26"), "2066".into())].used_ms, 700);
        assert_eq!(c[&(d("2026-11-26"), "2077".into())].used_ms, 0);
        assert_eq!(c.len(), 4, "{c:?}");
        assert_eq!(
            days_in(SHOW).into_iter().collect::<Vec<_>>(),
            [d("2026-11-25"), d("2026-11-26")]
        );
        assert!(parse_counters("0 results found.\n").is_empty());
    }

    #[test]
    fn reservations_count_only_while_a_call_of_the_user_is_alive() {
        // As Asterisk 22 and 20 print it.
        let groups = "Channel                    Group                 Category            \n\
                      Local/2055-87011234567-r60@phones-00000006;2  live                  callquota-2055      \n\
                      PJSIP/2066-00000002        sales                 queue               \n\
                      PJSIP/2077-00000003        live                  other               \n\
                      2 active channels\n";
        let alive = talking(groups);
        assert_eq!(alive.into_iter().collect::<Vec<_>>(), ["2055"]);
        let c = parse_counters(SHOW);
        let alive = talking(groups);
        assert_eq!(
            figures(&c, &alive, d("2026-11-26"), "2055"),
            Counters {
                used_ms: 12345,
                reserved_ms: 35000
            },
            "today's and the day before's reservations"
        );
        assert_eq!(
            figures(&c, &BTreeSet::new(), d("2026-11-26"), "2055").reserved_ms,
            0,
            "a reservation without a live call is stale (Asterisk was killed)"
        );
        assert_eq!(
            figures(&c, &alive, d("2026-11-27"), "2055").used_ms,
            0,
            "a new day starts clean"
        );
        assert_eq!(figures(&c, &alive, d("2026-11-26"), "9999"), Counters::default());
    }

    #[test]
    fn seconds_round_like_billsec() {
        assert_eq!(seconds(0), 0);
        assert_eq!(seconds(499), 0);
        assert_eq!(seconds(500), 1);
        assert_eq!(seconds(12_345), 12);
        assert_eq!(seconds(u64::MAX), u64::MAX / 1000);
    }
}
