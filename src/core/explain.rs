//! `calls EXT`: every CDR row of one extension, judged the way `run` judges
//! it, with the reason a row was not counted. A pure function of the rows,
//! the rule and what the ledgers say about each day.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use crate::core::billing::Billing;
use crate::core::calendar::CdrClock;
use crate::core::usage::{CarrierLegs, CdrRow, UsageRule};
use crate::values::extension::Extension;

/// What the state knows about one day of the extension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayFacts {
    /// The day has a ledger: the user was tracked on it.
    pub tracked: bool,
    /// When the run that closed the day ran; `None` while it is open.
    pub closed_at: Option<DateTime<Utc>>,
}

/// One row and how it was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub row: CdrRow,
    pub day: NaiveDate,
    /// The talk seconds this row counts for `day` (0 when not counted).
    pub counted_s: u64,
    /// What they cost: `counted_s` rounded by the direction's billing
    /// increments, as the carrier bills the leg (and `run` charges it).
    pub charged_s: u64,
    /// Why it is not counted; empty when counted.
    pub reason: String,
    /// For a counted row whose carrier leg went on after it (a transfer, a
    /// hold while the caller consulted): how much of the count is that.
    pub note: String,
}

/// Judges `rows` (all of one extension, in `calldate` order). A leg written
/// twice counts once (its longest row, as `run` does); a row of a closed day
/// that ended after the run that closed it reached the CDR too late for that
/// day and is charged to the next open day instead (a late row). In a call
/// with a `linkedid`, a paid row counts its whole carrier leg, as `run`
/// charges it (see `usage::Tally`): `others` are the other rows of those
/// calls (the carrier's rows after a transfer).
pub fn judge(
    rule: &UsageRule<'_>,
    clock: &CdrClock,
    extension: &Extension,
    rows: Vec<CdrRow>,
    others: &[CdrRow],
    days: &BTreeMap<NaiveDate, DayFacts>,
) -> Vec<Judged> {
    let mut carriers = CarrierLegs::default();
    for row in others.iter().chain(&rows) {
        carriers.see(row);
    }
    // The counted row of each leg: the longest, first one on a tie.
    let mut longest: HashMap<(String, String, i64), (usize, u64)> = HashMap::new();
    let mut in_carrier = std::collections::HashSet::new();
    let mut verdicts = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let day = clock.day_of(row.calldate);
        let verdict = match rule.judge(row) {
            Err(why) => Err(why.reason().to_string()),
            Ok((ext, _)) if &ext != extension => Err(format!("charged to {ext}")),
            Ok((_, seconds)) => {
                let facts = days.get(&day).copied().unwrap_or_default();
                let ended =
                    clock.instant(row.calldate) + chrono::Duration::seconds(row.duration.max(row.billsec).max(0));
                if !facts.tracked {
                    Err("not a tracked user that day".to_string())
                } else if facts.closed_at.is_some_and(|closed| ended > closed) {
                    Err("day already closed when it ended: charged to the next open day (late row)".to_string())
                } else {
                    let charged = crate::core::usage::Charged {
                        billing: rule.billing_of(&row.dst).unwrap_or(Billing::PER_SECOND),
                        direction: String::new(),
                    };
                    if carriers.charge(row, day, extension, &charged) {
                        in_carrier.insert(i);
                    } else if !row.uniqueid.is_empty() {
                        let best = longest.entry(row.segment()).or_insert((i, seconds));
                        if seconds > best.1 {
                            *best = (i, seconds);
                        }
                    }
                    Ok(seconds)
                }
            }
        };
        verdicts.push((day, verdict));
    }
    let legs: HashMap<(String, String, i64), u64> = carriers.legs().map(|leg| (leg.first, leg.seconds)).collect();
    let mut claimed = std::collections::HashSet::new();
    rows.into_iter()
        .zip(verdicts)
        .enumerate()
        .map(|(i, (row, (day, verdict)))| {
            let mut note = String::new();
            let (counted_s, reason) = match verdict {
                Ok(_) if in_carrier.contains(&i) => match legs.get(&row.segment()) {
                    Some(&whole) if claimed.insert(row.segment()) => {
                        let own = row.billsec.max(0) as u64;
                        if whole > own {
                            note = format!("{}s more of the carrier leg after a transfer or hold", whole - own);
                        }
                        (whole, String::new())
                    }
                    _ => (0, "another row of the same leg, counted once".to_string()),
                },
                Ok(seconds) => match longest.get(&row.segment()) {
                    Some((first, _)) if *first != i => (0, "another row of the same leg, counted once".to_string()),
                    _ => (seconds, String::new()),
                },
                Err(reason) => (0, reason),
            };
            let billing = rule.billing_of(&row.dst).unwrap_or(Billing::PER_SECOND);
            let charged_s = if reason.is_empty() {
                billing.charge_answered(counted_s)
            } else {
                0
            };
            Judged {
                row,
                day,
                counted_s,
                charged_s,
                reason,
                note,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDateTime, TimeZone};

    use super::*;
    use crate::core::paid::{Direction, PaidDestinations};
    use crate::core::pattern::Pattern;
    use crate::core::usage::CallerColumn;

    fn paid() -> PaidDestinations {
        PaidDestinations::new(vec![Direction {
            name: "mobile".into(),
            patterns: vec![Pattern::parse("_870[5780-2]XXXXXXX").unwrap()],
            billing: Billing::PER_SECOND,
        }])
    }

    fn row(time: &str, dst: &str, disposition: &str, billsec: i64, leg: &str) -> CdrRow {
        CdrRow {
            calldate: NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S").unwrap(),
            caller: "2055".into(),
            dst: dst.into(),
            dstchannel: "PJSIP/kcell-0000001".into(),
            disposition: disposition.into(),
            billsec,
            uniqueid: leg.into(),
            duration: billsec + 5,
            channel: "PJSIP/2055-0000001a".into(),
            linkedid: leg.into(),
            sequence: 0,
        }
    }

    fn cnum_rule(paid: &PaidDestinations) -> UsageRule<'_> {
        UsageRule {
            caller_column: CallerColumn::Cnum,
            paid,
            trunk_channels: &[],
            route_prefixes: &[],
        }
    }

    /// `calldate` in local time, in a zone without DST (the figures here are local).
    fn local_clock() -> CdrClock {
        CdrClock {
            tz: chrono_tz::UTC,
            utc: false,
        }
    }

    #[test]
    fn says_why_each_row_counts_or_not() {
        let paid = paid();
        let rule = cnum_rule(&paid);
        let clock = local_clock();
        let d25: NaiveDate = "2026-11-25".parse().unwrap();
        let d26: NaiveDate = "2026-11-26".parse().unwrap();
        let days = BTreeMap::from([
            (
                d25,
                DayFacts {
                    tracked: true,
                    closed_at: Some(Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 30).unwrap()),
                },
            ),
            (
                d26,
                DayFacts {
                    tracked: true,
                    closed_at: None,
                },
            ),
        ]);
        let mut local = row("2026-11-26 10:05:00", "87011234567", "ANSWERED", 30, "3");
        local.dstchannel = "Local/87011234567@from-internal-0001;1".into();
        let rows = vec![
            row("2026-11-25 10:00:00", "87011234567", "ANSWERED", 100, "1"),
            // Across midnight: ended after the closing run at 00:00:30.
            row("2026-11-25 23:59:00", "87011234567", "ANSWERED", 120, "2"),
            row("2026-11-26 10:00:00", "87011234567", "NO ANSWER", 0, "4"),
            row("2026-11-26 10:01:00", "87172123456", "ANSWERED", 60, "5"),
            local,
            row("2026-11-26 10:10:00", "87011234567", "ANSWERED", 40, "6"),
            row("2026-11-26 10:10:00", "87011234567", "ANSWERED", 40, "6"),
        ];
        let judged = judge(&rule, &clock, &Extension::parse("2055").unwrap(), rows, &[], &days);
        let got: Vec<(u64, &str)> = judged.iter().map(|j| (j.counted_s, j.reason.as_str())).collect();
        assert_eq!(
            got,
            [
                (100, ""),
                (
                    0,
                    "day already closed when it ended: charged to the next open day (late row)"
                ),
                (0, "not answered"),
                (0, "not paid"),
                (0, "a Local/ leg: the leg to the trunk is charged"),
                (40, ""),
                (0, "another row of the same leg, counted once"),
            ]
        );
        assert_eq!(judged[1].day, d25);

        let untracked = judge(
            &rule,
            &clock,
            &Extension::parse("2055").unwrap(),
            vec![row("2026-11-24 10:00:00", "87011234567", "ANSWERED", 10, "9")],
            &[],
            &days,
        );
        assert_eq!(untracked[0].reason, "not a tracked user that day");
    }

    /// A call handed to 2066 after 3 s: `calls 2055` counts its whole carrier
    /// leg on its own row, as `run` charges it, and says how much of it came
    /// after the transfer.
    #[test]
    fn a_transferred_call_counts_its_carrier_leg() {
        let paid = paid();
        let rule = cnum_rule(&paid);
        let clock = local_clock();
        let d26 = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let days = BTreeMap::from([(
            d26,
            DayFacts {
                tracked: true,
                closed_at: None,
            },
        )]);
        // Rung 5 s, talked 3 s; then the carrier's own row with 2066, 16 s.
        let mut own = row("2026-11-26 09:00:00", "87011234567", "ANSWERED", 3, "100.1");
        own.dstchannel = "PJSIP/kcell-00000007".into();
        let mut rest = row("2026-11-26 09:00:08", "2066", "ANSWERED", 16, "100.2");
        (rest.linkedid, rest.channel, rest.dstchannel, rest.duration) =
            ("100.1".into(), own.dstchannel.clone(), "PJSIP/2066-00000009".into(), 16);
        let judged = judge(
            &rule,
            &clock,
            &Extension::parse("2055").unwrap(),
            vec![own],
            &[rest],
            &days,
        );
        assert_eq!((judged[0].counted_s, judged[0].reason.as_str()), (19, ""));
        assert_eq!(judged[0].note, "16s more of the carrier leg after a transfer or hold");
    }
}
