//! Property tests (proptest) for the parsers and the policy. Any failing case
//! proptest finds is added to the unit tests' tables as a regression.

use std::collections::HashMap;

use callquota::core::pattern::Pattern;
use callquota::core::policy::{Member, Rules, Snapshot, Usage, plan_run};
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
            .map(|(i, &l)| Member { extension: Extension::parse(&format!("20{i}")).unwrap(), daily_limit_s: l, since: day(0) })
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
