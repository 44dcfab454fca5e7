//! What "blocked" means for the figures people read (`status`, `report`
//! in text, JSON, CSV and HTML, the daily digest): one definition, here.
//!
//! A user-day **was blocked** when a run, while that day was still open,
//! blocked the user's paid calls: `plan_run` set the ledger's `blocked`
//! (used ≥ allowance, an allowance of 0 included) and the run recorded the
//! audit event `blocked` for that user and day. Its time is the first such
//! event before the day ended (local midnight in the site's zone). A day
//! whose usage reached its allowance only when a later run closed it (calls
//! that ended after the day's last run) was never blocked: no paid call was
//! refused that day, and its close is not a time of day. A user blocked and
//! then given time (a grant, a raised limit) was blocked that day. A
//! direction allowance's days are judged the same way, from its
//! `direction_blocked` events.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;

use crate::core::calendar::{day_start, next_day};

/// When a run first blocked the user on `day` while it was open, from the
/// times of that user-day's `blocked` audit events; `None`: never.
pub fn blocked_at(day: NaiveDate, zone: Tz, blocks: impl IntoIterator<Item = DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let end = day_start(next_day(day), zone);
    blocks.into_iter().filter(|at| *at < end).min()
}

/// [`blocked_at`] for every user-day among `blocks` (who, day, time of a
/// `blocked` audit event; who is an extension, or an extension and a
/// direction for a direction allowance's `direction_blocked`): the
/// user-days that were blocked, with when.
pub fn blocked_days<K: Ord + Clone>(
    zone: Tz,
    blocks: &[(K, NaiveDate, DateTime<Utc>)],
) -> BTreeMap<(K, NaiveDate), DateTime<Utc>> {
    let mut out: BTreeMap<(K, NaiveDate), DateTime<Utc>> = BTreeMap::new();
    for (ext, day, at) in blocks {
        if let Some(at) = blocked_at(*day, zone, [*at]) {
            out.entry((ext.clone(), *day))
                .and_modify(|first| *first = (*first).min(at))
                .or_insert(at);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_block_while_the_day_was_open_counts() {
        let zone: Tz = "Asia/Almaty".parse().unwrap(); // UTC+5
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        // Blocked at 14:05 local, again after a grant at 16:00: the first time.
        assert_eq!(
            blocked_at(day, zone, [t("2026-11-26T11:00:00Z"), t("2026-11-26T09:05:00Z")]),
            Some(t("2026-11-26T09:05:00Z"))
        );
        // Found over only by the close at 00:05 the next day: never blocked.
        assert_eq!(blocked_at(day, zone, [t("2026-11-26T19:05:00Z")]), None);
        // 23:59 local is still the day.
        assert_eq!(
            blocked_at(day, zone, [t("2026-11-26T18:59:00Z")]),
            Some(t("2026-11-26T18:59:00Z"))
        );
        let days = blocked_days(
            zone,
            &[
                ("2055".into(), day, t("2026-11-26T19:05:00Z")),
                ("2066".into(), day, t("2026-11-26T11:00:00Z")),
                ("2066".into(), day, t("2026-11-26T10:00:00Z")),
            ],
        );
        assert_eq!(days.len(), 1);
        assert_eq!(days[&("2066".to_string(), day)], t("2026-11-26T10:00:00Z"));
    }
}
