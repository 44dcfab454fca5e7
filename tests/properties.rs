//! Property tests (proptest) for the parsers and the policy. Any failing case
//! proptest finds is added to the unit tests' tables as a regression.

use std::collections::HashMap;

use callquota::core::month::{MonthSoFar, month_start};
use callquota::core::pattern::Pattern;
use callquota::core::policy::{Member, Period, Rules, Snapshot, Usage, plan_run};
use callquota::values::duration;
use callquota::values::extension::Extension;
use chrono::NaiveDate;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The pattern parser and matcher never panic, whatever the input.
    #[test]
    fn pattern_parser_is_total(text in "\\PC{0,40}|_[0-9XZNxzn\\[\\]\\-.!*#+a-c]{0,20}", number in "\\PC{0,30}") {
        if let Ok(p) = Pattern::parse(&text) {
            let _ = p.matches(&number);
            prop_assert_eq!(p.as_str(), text.as_str());
            // Whatever parses may go into the dialplan: no separators, no variables, no line breaks.
            const FORBIDDEN: [char; 11] = [',', ';', '(', ')', '$', '{', '}', '\n', '\r', ' ', '/'];
            prop_assert!(!text.contains(FORBIDDEN), "{:?} parsed", text);
        }
    }

    /// A pattern of only X matches exactly the digit strings of its length.
    #[test]
    fn x_patterns_match_by_length(n in 1usize..15, digits in "[0-9]{0,20}") {
        let p = Pattern::parse(&format!("_{}", "X".repeat(n))).unwrap();
        prop_assert_eq!(p.matches(&digits), digits.len() == n);
    }

    /// A literal number matches itself, with or without dashes.
    #[test]
    fn literals_match_themselves(digits in "[0-9]{1,15}") {
        let p = Pattern::parse(&digits).unwrap();
        prop_assert!(p.matches(&digits));
        let dashed: String = digits.chars().flat_map(|c| [c, '-']).collect();
        prop_assert!(p.matches(&dashed));
    }

    /// The duration parser never panics and round-trips what it accepts.
    #[test]
    fn duration_parser_is_total(text in "\\PC{0,20}|[0-9]{1,6}[hms]?([0-9]{1,4}[ms])?") {
        if let Ok(s) = duration::parse(&text) {
            prop_assert!(s <= duration::MAX_SECONDS);
        }
    }

    #[test]
    fn durations_round_trip(s in 0u64..=duration::MAX_SECONDS) {
        prop_assert_eq!(duration::parse(&s.to_string()), Ok(s));
        let compact = format!("{}h{}m{}s", s / 3600, s % 3600 / 60, s % 60);
        prop_assert_eq!(duration::parse(&compact), Ok(s));
    }

    #[test]
    fn extensions_admit_only_letters_and_digits(text in "\\PC{0,40}") {
        if let Ok(e) = Extension::parse(&text) {
            prop_assert!(e.as_str().chars().all(|c| c.is_ascii_alphanumeric()));
            prop_assert!((1..=32).contains(&e.as_str().len()));
        }
    }
}

fn day(n: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 2).unwrap() + chrono::Days::new(n)
}

/// A random history: per day, each user's usage, grants, and whether a run happens.
/// Rules, each user's daily limit, per day each user's (usage, grant), per day "a run happens".
type History = (Rules, Vec<u64>, Vec<Vec<(u64, u64)>>, Vec<bool>);

fn history() -> impl Strategy<Value = History> {
    (
        prop::collection::vec(any::<bool>(), 7),
        any::<bool>(),
        prop::option::of(0u64..3000),
        prop::collection::vec(0u64..4000, 1..4),
        1usize..9,
    )
        .prop_flat_map(|(workdays, carry_enabled, cap, limits, days)| {
            let users = limits.len();
            (
                Just(Rules {
                    thresholds: vec![50, 90, 100],
                    workdays: workdays.try_into().unwrap_or([true; 7]),
                    carry_enabled,
                    carry_cap_s: cap,
                    ..Rules::default()
                }),
                Just(limits),
                prop::collection::vec(prop::collection::vec((0u64..5000, 0u64..1500), users), days),
                prop::collection::vec(any::<bool>(), days),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn policy_invariants_hold((rules, limits, days, runs) in history()) {
        let members: Vec<Member> = limits
            .iter()
            .enumerate()
            .map(|(i, &l)| Member { extension: Extension::parse(&format!("20{i}")).unwrap(), daily_limit_s: l, monthly_limit_s: None, direction_limits: Default::default(), direction_since: Default::default(), since: day(0) })
            .collect();
        let mut usage = Usage::new();
        let mut grants = HashMap::new();
        for (d, per_user) in days.iter().enumerate() {
            for (m, &(used, grant)) in members.iter().zip(per_user) {
                usage.entry(day(d as u64)).or_default().insert(m.extension.clone(), used);
                if grant > 0 {
                    grants.insert((m.extension.clone(), day(d as u64)), grant);
                }
            }
        }
        let last = day(days.len() as u64 - 1);
        // One state that ran on the chosen days, one that ran only on the last day.
        let mut sparse = Snapshot { members: members.clone(), grants: grants.clone(), ..Default::default() };
        let mut daily = Snapshot { members: members.clone(), grants, ..Default::default() };
        for (d, &ran) in runs.iter().enumerate() {
            for (snapshot, run_today) in [(&mut sparse, ran || d + 1 == days.len()), (&mut daily, true)] {
                if !run_today {
                    continue;
                }
                let plan = plan_run(&rules, day(d as u64), snapshot, &usage).unwrap();
                for l in &plan.ledgers {
                    snapshot.ledgers.retain(|s| !(s.extension == l.extension && s.day == l.day));
                    snapshot.ledgers.push(l.clone());
                }
                snapshot.open_day = Some(plan.open_day);
                // Rerunning at once changes nothing.
                let again = plan_run(&rules, day(d as u64), snapshot, &usage).unwrap();
                prop_assert!(again.ledgers.is_empty() && again.records.is_empty() && again.notices.is_empty());
            }
        }
        let mut a = sparse.ledgers.clone();
        let mut b = daily.ledgers.clone();
        a.sort_by_key(|l| (l.extension.clone(), l.day));
        b.sort_by_key(|l| (l.extension.clone(), l.day));
        // However runs were spread, the ledgers end up the same.
        prop_assert_eq!(&a, &b);
        for l in &a {
            prop_assert_eq!(l.blocked, l.used_s >= l.allowance_s());
            if let Some(cap) = rules.carry_cap_s {
                prop_assert!(l.carried_in_s <= cap);
            }
            if !rules.carry_enabled {
                prop_assert_eq!(l.carried_in_s, 0);
            }
            prop_assert!(l.level == 0 || l.used_s > 0);
            prop_assert_eq!(l.closed, l.day < last);
        }
    }
}

/// The month's earlier days as the state adapter sums them for the snapshot.
fn month_before_open(snapshot: &Snapshot) -> HashMap<Extension, MonthSoFar> {
    let mut months: HashMap<Extension, MonthSoFar> = HashMap::new();
    let Some(open) = snapshot.open_day else {
        return months;
    };
    let mut month: Vec<_> = snapshot
        .ledgers
        .iter()
        .filter(|l| l.day >= month_start(open) && l.day < open)
        .collect();
    month.sort_by_key(|l| l.day);
    for l in month {
        // The sum of the days, the latest day's levels (as the adapter reads them).
        let so_far = months.entry(l.extension.clone()).or_default();
        so_far.used_s += l.used_s;
        so_far.level = l.month_level;
        so_far.notified_level = l.month_notified_level;
    }
    months
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Under a monthly limit, across a month's end: no day's allowance passes
    /// what its month has left, the month's figure is the sum of its days,
    /// each monthly threshold is mailed once a month, and sparse runs end in
    /// the same state as daily ones.
    #[test]
    fn the_monthly_cap_holds_and_sums_its_days(
        users in prop::collection::vec((0u64..3000, prop::option::of(0u64..20_000)), 1..4),
        usage_by_day in prop::collection::vec(prop::collection::vec(0u64..4000, 3), 1..14),
        runs in prop::collection::vec(any::<bool>(), 14),
        carry_enabled in any::<bool>(),
    ) {
        let rules = Rules { carry_enabled, ..Rules::default() };
        let first = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let on = |d: usize| first + chrono::Days::new(d as u64);
        let members: Vec<Member> = users
            .iter()
            .enumerate()
            .map(|(i, &(daily, monthly))| Member {
                extension: Extension::parse(&format!("20{i}")).unwrap(),
                daily_limit_s: daily,
                monthly_limit_s: monthly,
                direction_limits: Default::default(),
                direction_since: Default::default(),
                since: first,
            })
            .collect();
        let mut usage = Usage::new();
        for (d, per_user) in usage_by_day.iter().enumerate() {
            for (m, &used) in members.iter().zip(per_user) {
                usage.entry(on(d)).or_default().insert(m.extension.clone(), used);
            }
        }
        let days = usage_by_day.len();
        let mut sparse = Snapshot { members: members.clone(), ..Default::default() };
        let mut daily = Snapshot { members: members.clone(), ..Default::default() };
        let mut month_notices = Vec::new();
        for (d, &ran) in runs.iter().enumerate().take(days) {
            for (snapshot, run_today, is_daily) in [(&mut sparse, ran || d + 1 == days, false), (&mut daily, true, true)] {
                if !run_today {
                    continue;
                }
                snapshot.month_before_open = month_before_open(snapshot);
                let plan = plan_run(&rules, on(d), snapshot, &usage).unwrap();
                if is_daily {
                    month_notices.extend(plan.notices.iter().filter(|n| n.period == Period::Month).cloned());
                }
                for l in &plan.ledgers {
                    snapshot.ledgers.retain(|s| !(s.extension == l.extension && s.day == l.day));
                    snapshot.ledgers.push(l.clone());
                }
                snapshot.open_day = Some(plan.open_day);
                snapshot.month_before_open = month_before_open(snapshot);
                let again = plan_run(&rules, on(d), snapshot, &usage).unwrap();
                prop_assert!(again.ledgers.is_empty() && again.records.is_empty() && again.notices.is_empty());
            }
        }
        let mut a = sparse.ledgers.clone();
        let mut b = daily.ledgers.clone();
        a.sort_by_key(|l| (l.extension.clone(), l.day));
        b.sort_by_key(|l| (l.extension.clone(), l.day));
        prop_assert_eq!(&a, &b);
        for l in &a {
            let earlier: u64 = a
                .iter()
                .filter(|e| e.extension == l.extension && e.day < l.day && month_start(e.day) == month_start(l.day))
                .map(|e| e.used_s)
                .sum();
            match l.monthly_limit_s {
                Some(limit) => {
                    prop_assert_eq!(l.month_before_s, earlier);
                    prop_assert!(l.month_before_s + l.allowance_s() <= limit.max(l.month_before_s), "{:?}", l);
                    prop_assert_eq!(l.month_used_s(), earlier + l.used_s);
                }
                None => prop_assert_eq!(l.allowance_s(), l.base_s + l.carried_in_s + l.granted_s),
            }
            prop_assert_eq!(l.blocked, l.used_s >= l.allowance_s());
        }
        let mut seen = std::collections::HashSet::new();
        for n in &month_notices {
            prop_assert!(seen.insert((n.extension.clone(), month_start(n.day), n.threshold)), "twice: {:?}", n);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Every charged leg counts once in the shared figure and once in its
    /// direction's: per day and extension, the directions' figures sum to
    /// the shared one (a user's direction allowances are parts of it), and
    /// a per-minute direction charges at least what was talked.
    #[test]
    fn direction_figures_sum_to_the_shared_one(
        rows in prop::collection::vec((0usize..3, 0usize..3, 0i64..400, 0usize..6, any::<bool>()), 0..40),
    ) {
        use callquota::core::billing::Billing;
        use callquota::core::paid::{Direction, PaidDestinations};
        use callquota::core::usage::{CallerColumn, CdrRow, Tally, UsageRule};
        let paid = PaidDestinations::new(vec![
            Direction {
                name: "mobile".into(),
                patterns: vec![Pattern::parse("_870XXXXXXXX").unwrap()],
                billing: Billing::PER_SECOND,
            },
            Direction {
                name: "international".into(),
                patterns: vec![Pattern::parse("_810X.").unwrap()],
                billing: Billing::parse("60/60").unwrap(),
            },
        ]);
        let rule = UsageRule { caller_column: CallerColumn::Cnum, paid: &paid, trunk_channels: &[], route_prefixes: &[] };
        let numbers = ["87011234567", "81049301234567", "87172123456"];
        let callers = ["2055", "2066", "2077"];
        let mut tally = Tally::default();
        let mut talked: HashMap<String, u64> = HashMap::new();
        for (i, &(caller, number, billsec, leg, answered)) in rows.iter().enumerate() {
            let row = CdrRow {
                calldate: day(0).and_hms_opt(9, 0, 0).unwrap() + chrono::Duration::seconds(i as i64 * 600),
                caller: callers[caller].into(),
                dst: numbers[number].into(),
                dstchannel: format!("PJSIP/trunk-{leg:08}"),
                disposition: if answered { "ANSWERED" } else { "NO ANSWER" }.into(),
                billsec,
                uniqueid: format!("1764140000.{leg}"),
                duration: billsec + 5,
                channel: format!("PJSIP/{}-0000001a", callers[caller]),
                linkedid: String::new(),
                sequence: i as i64,
            };
            if answered && billsec > 0 && number < 2 {
                *talked.entry(callers[caller].to_string()).or_default() += billsec as u64;
            }
            tally.add(&rule, &row, day(0));
        }
        let (usage, by_direction) = tally.finish_by_direction();
        let shared = usage.get(&day(0)).cloned().unwrap_or_default();
        for caller in callers {
            let ext = Extension::parse(caller).unwrap();
            let parts: u64 = by_direction
                .values()
                .filter_map(|u| u.get(&day(0))?.get(&ext).copied())
                .sum();
            prop_assert_eq!(parts, shared.get(&ext).copied().unwrap_or(0), "{}", caller);
            prop_assert!(parts >= talked.get(caller).copied().unwrap_or(0), "charged ≥ talked for {}", caller);
        }
        prop_assert!(!by_direction.contains_key(""), "every charged leg has its direction: {:?}", by_direction.keys());
    }
}
