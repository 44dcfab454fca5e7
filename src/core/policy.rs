//! The decisions, as pure functions of plain data and a given day: usage →
//! threshold levels → notices → the blocked set → carry-over into tomorrow.
//!
//! Nothing here reads a clock, a file or a database. [`plan_run`] returns the
//! whole desired state; the same inputs always give the same plan, and a plan
//! computed over state that already reflects it contains no changes, which is
//! what makes `run` idempotent.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use crate::core::calendar::{day_start, next_day, previous_day, weekday_index};
use crate::core::month::{MonthSoFar, month_start};
use crate::values::extension::Extension;

/// The configured rules of the game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Ascending percentages; the last is 100.
    pub thresholds: Vec<u8>,
    /// Indexed Monday = 0 … Sunday = 6. On other days the base allowance is 0.
    pub workdays: [bool; 7],
    pub carry_enabled: bool,
    /// The most that may carry into one day.
    pub carry_cap_s: Option<u64>,
    /// How many days past the last run's day a run may move without `--force`.
    pub max_jump_days: i64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            thresholds: vec![50, 90, 100],
            workdays: [true; 7],
            carry_enabled: true,
            max_jump_days: MAX_UNFORCED_JUMP_DAYS,
            carry_cap_s: None,
        }
    }
}

/// An active user as the policy sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub extension: Extension,
    pub daily_limit_s: u64,
    /// The most the user's paid calls may charge in a calendar month.
    pub monthly_limit_s: Option<u64>,
    /// Separate daily limits for some directions, alongside the shared one.
    pub direction_limits: BTreeMap<String, u64>,
    /// The day each of them was given: it is planned from then on only.
    pub direction_since: BTreeMap<String, NaiveDate>,
    /// The first day the user is tracked (the day they were added).
    pub since: NaiveDate,
}

/// One user's figures for one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub extension: Extension,
    pub day: NaiveDate,
    pub base_s: u64,
    pub carried_in_s: u64,
    pub granted_s: u64,
    /// Everything charged to this day: its own calls plus `late_in_s`.
    pub used_s: u64,
    /// Calls of an earlier, already closed day whose CDR rows appeared only
    /// after it closed (a call across midnight, CDR batch mode), charged here.
    pub late_in_s: u64,
    /// Of this (closed) day's own calls, the seconds charged to a later day.
    pub late_out_s: u64,
    /// Highest threshold percent reached; 0 if none.
    pub level: u8,
    /// Highest threshold a notice was queued for (lowered when a grant lowers the level).
    pub notified_level: u8,
    pub blocked: bool,
    pub closed: bool,
    /// The user's monthly limit on this day, if they have one.
    pub monthly_limit_s: Option<u64>,
    /// What the earlier days of this day's month charged.
    pub month_before_s: u64,
    /// Highest threshold percent of the monthly limit reached by this day's end.
    pub month_level: u8,
    /// Highest monthly threshold a notice was queued for, this month.
    pub month_notified_level: u8,
}

impl Ledger {
    /// Base + carried + granted, never more than the month has left.
    pub fn allowance_s(&self) -> u64 {
        let day = self
            .base_s
            .saturating_add(self.carried_in_s)
            .saturating_add(self.granted_s);
        self.month_left_s().map_or(day, |left| day.min(left))
    }

    /// What the month left for this day when it began; `None` without a monthly limit.
    pub fn month_left_s(&self) -> Option<u64> {
        self.monthly_limit_s
            .map(|limit| limit.saturating_sub(self.month_before_s))
    }

    /// Whether the month, not the day's own figures, sets this day's allowance.
    pub fn month_capped(&self) -> bool {
        let day = self
            .base_s
            .saturating_add(self.carried_in_s)
            .saturating_add(self.granted_s);
        self.month_left_s().is_some_and(|left| left < day)
    }

    /// The month's charge up to and including this day.
    pub fn month_used_s(&self) -> u64 {
        self.month_before_s.saturating_add(self.used_s)
    }

    pub fn remaining_s(&self) -> u64 {
        self.allowance_s().saturating_sub(self.used_s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    LevelCrossed {
        threshold: u8,
        used_s: u64,
        allowance_s: u64,
    },
    LevelLowered {
        from: u8,
        to: u8,
        used_s: u64,
        allowance_s: u64,
    },
    Blocked {
        used_s: u64,
        allowance_s: u64,
    },
    Unblocked {
        used_s: u64,
        allowance_s: u64,
    },
    DayClosed {
        allowance_s: u64,
        used_s: u64,
        unused_s: u64,
    },
    /// Calls of `from_day`, already closed, whose rows appeared late.
    LateUsage {
        from_day: NaiveDate,
        seconds: u64,
    },
    /// A threshold of the monthly limit reached (once a month).
    MonthLevelCrossed {
        threshold: u8,
        used_s: u64,
        limit_s: u64,
    },
}

/// An audit-log entry the run must append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub extension: Extension,
    pub day: NaiveDate,
    pub event: Event,
    /// The direction allowance it is about; `None`: the shared allowance.
    pub direction: Option<String>,
}

/// A notice to queue in the outbox: "you reached `threshold` % today" (or
/// this month: then `used_s` is the month's and `allowance_s` its limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub extension: Extension,
    pub day: NaiveDate,
    pub threshold: u8,
    pub used_s: u64,
    pub allowance_s: u64,
    pub period: Period,
    /// The direction allowance it is about; `None`: the shared allowance.
    pub direction: Option<String>,
}

/// Which allowance a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
}

impl Period {
    /// As the outbox's `period` column stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "the clock went backwards: now is on {today}, but the state already reached {open_day}; fix the system clock or --now (closed days are never reopened)"
    )]
    ClockWentBack { today: NaiveDate, open_day: NaiveDate },
    #[error(
        "the clock is {days} days past the last run's day {open_day}: if {today} is really today (the host was off), run `callquota run --force` once; if not, fix the system clock or --now (see README, Clock trouble)"
    )]
    ClockJumped {
        today: NaiveDate,
        open_day: NaiveDate,
        days: i64,
    },
}

/// Figures older than this are stale: cron runs every 5 minutes, so three
/// missed runs in a row mean runs are failing.
pub const STALE_AFTER_MINUTES: i64 = 15;

/// Whether the last successful run is too long ago for its figures to be trusted.
pub fn is_stale(last_run_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_run_at.is_none_or(|at| now - at > chrono::Duration::minutes(STALE_AFTER_MINUTES))
}

/// How many days past the last run's day a run may move on its own, unless
/// `limits.max_jump_days` says otherwise: two weeks covers real outages (a
/// long weekend, a holiday with the PBX off). A larger jump is more often a
/// wrong clock (a dead RTC battery, a year off) than a host that was off, and
/// closing days on a wrong clock unblocks everyone: it needs `run --force`.
pub const MAX_UNFORCED_JUMP_DAYS: i64 = 14;

/// However far a forced run jumps, it evaluates at most this many days (plus
/// the last run's day), so its cost stays bounded; days in a longer gap get no
/// ledger rows and carry nothing across it.
pub const MAX_CATCH_UP_DAYS: i64 = 366;

/// Refuses a run whose day is more than `max_days` after the last run's
/// (`open_day`), unless forced.
pub fn check_clock_jump(
    open_day: Option<NaiveDate>,
    today: NaiveDate,
    max_days: i64,
    force: bool,
) -> Result<(), PolicyError> {
    match open_day {
        Some(open_day) if !force && (today - open_day).num_days() > max_days => Err(PolicyError::ClockJumped {
            today,
            open_day,
            days: (today - open_day).num_days(),
        }),
        _ => Ok(()),
    }
}

/// The base allowance of `day`: the daily limit on workdays, 0 otherwise.
pub fn base_allowance(rules: &Rules, day: NaiveDate, daily_limit_s: u64) -> u64 {
    if rules.workdays[weekday_index(day)] {
        daily_limit_s
    } else {
        0
    }
}

/// What carries from the previous day: its unused allowance, capped.
pub fn carry_in(rules: &Rules, previous: Option<&Ledger>) -> u64 {
    match previous {
        Some(prev) if rules.carry_enabled => {
            let unused = prev.remaining_s();
            rules.carry_cap_s.map_or(unused, |cap| unused.min(cap))
        }
        _ => 0,
    }
}

/// The highest threshold `t` with `used ≥ t % of allowance`; 0 without usage.
pub fn level(thresholds: &[u8], used_s: u64, allowance_s: u64) -> u8 {
    if used_s == 0 {
        return 0;
    }
    let used = u128::from(used_s) * 100;
    thresholds
        .iter()
        .copied()
        .filter(|&t| used >= u128::from(t) * u128::from(allowance_s))
        .max()
        .unwrap_or(0)
}

/// What one evaluation of a user's day decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ledger: Ledger,
    pub events: Vec<Event>,
    /// At most one for the day and one for the month.
    pub notices: Vec<Notice>,
}

/// The inputs of one user's day besides the rules.
#[derive(Debug, Clone, Copy)]
pub struct DayInput<'a> {
    pub member: &'a Member,
    pub day: NaiveDate,
    /// The ledger of the day before, if the user was tracked then.
    pub previous: Option<&'a Ledger>,
    /// This day's ledger as stored by an earlier run, if any.
    pub prior: Option<&'a Ledger>,
    pub granted_s: u64,
    /// This day's own paid seconds, from the CDR.
    pub used_s: u64,
    /// Seconds of earlier days' late rows charged to this day (in total).
    pub late_in_s: u64,
    /// The day is over: this is its final evaluation.
    pub close: bool,
    /// The earlier days of this day's month.
    pub month: MonthSoFar,
}

pub fn evaluate(rules: &Rules, input: DayInput<'_>) -> Outcome {
    let DayInput {
        member,
        day,
        previous,
        prior,
        granted_s,
        used_s: own_s,
        late_in_s,
        close,
        month,
    } = input;
    let used_s = own_s.saturating_add(late_in_s);
    let carried_in_s = match previous {
        Some(prev) if day > member.since && prev.day == previous_day(day) => carry_in(rules, Some(prev)),
        _ => 0,
    };
    let mut ledger = Ledger {
        extension: member.extension.clone(),
        day,
        base_s: base_allowance(rules, day, member.daily_limit_s),
        carried_in_s,
        granted_s,
        used_s,
        late_in_s,
        late_out_s: prior.map_or(0, |p| p.late_out_s),
        level: 0,
        notified_level: 0,
        blocked: false,
        closed: close,
        monthly_limit_s: member.monthly_limit_s,
        month_before_s: if member.monthly_limit_s.is_some() {
            month.used_s
        } else {
            0
        },
        month_level: 0,
        month_notified_level: 0,
    };
    let allowance_s = ledger.allowance_s();
    ledger.level = level(&rules.thresholds, used_s, allowance_s);
    ledger.blocked = used_s >= allowance_s;

    let prior_level = prior.map_or(0, |p| p.level);
    let prior_blocked = prior.is_some_and(|p| p.blocked);
    let mut events = Vec::new();
    if ledger.level < prior_level {
        events.push(Event::LevelLowered {
            from: prior_level,
            to: ledger.level,
            used_s,
            allowance_s,
        });
    }
    for &threshold in &rules.thresholds {
        if prior_level < threshold && threshold <= ledger.level {
            events.push(Event::LevelCrossed {
                threshold,
                used_s,
                allowance_s,
            });
        }
    }
    if ledger.blocked && !prior_blocked {
        events.push(Event::Blocked { used_s, allowance_s });
    } else if !ledger.blocked && prior_blocked {
        events.push(Event::Unblocked { used_s, allowance_s });
    }
    if close {
        events.push(Event::DayClosed {
            allowance_s,
            used_s,
            unused_s: ledger.remaining_s(),
        });
    }

    // Only a larger allowance (a grant, a raised limit) re-arms the thresholds
    // above the new level, so a later exhaustion notifies again. Usage going
    // down (a config fix, deleted CDR rows) re-arms nothing: each threshold is
    // mailed at most once per user and day otherwise.
    let notified = prior.map_or(0, |p| p.notified_level);
    let allowance_rose = prior.is_some_and(|p| allowance_s > p.allowance_s());
    let floor = if allowance_rose {
        notified.min(ledger.level)
    } else {
        notified
    };
    let mut notices: Vec<Notice> = (ledger.level > floor)
        .then(|| Notice {
            extension: member.extension.clone(),
            day,
            threshold: ledger.level,
            used_s,
            allowance_s,
            period: Period::Day,
            direction: None,
        })
        .into_iter()
        .collect();
    ledger.notified_level = ledger.level.max(floor);
    notices.extend(evaluate_month(rules, &mut ledger, prior, month, &mut events));
    Outcome {
        ledger,
        events,
        notices,
    }
}

/// The month's thresholds, like the day's: each crossed once a month (the
/// levels reached on earlier days of the month and this day's earlier
/// evaluations count), re-armed only by a higher monthly limit.
fn evaluate_month(
    rules: &Rules,
    ledger: &mut Ledger,
    prior: Option<&Ledger>,
    month: MonthSoFar,
    events: &mut Vec<Event>,
) -> Option<Notice> {
    let limit_s = ledger.monthly_limit_s?;
    let used_s = ledger.month_used_s();
    ledger.month_level = level(&rules.thresholds, used_s, limit_s);
    // A higher monthly limit than before re-arms the thresholds above the
    // new level, for the audit log as for the notices.
    let earlier_limit = prior.and_then(|p| p.monthly_limit_s).or(month.limit_s);
    let raised = earlier_limit.is_some_and(|earlier| limit_s > earlier);
    let reached_before = month.level.max(prior.map_or(0, |p| p.month_level));
    let reached_before = if raised {
        reached_before.min(ledger.month_level)
    } else {
        reached_before
    };
    for &threshold in &rules.thresholds {
        if reached_before < threshold && threshold <= ledger.month_level {
            events.push(Event::MonthLevelCrossed {
                threshold,
                used_s,
                limit_s,
            });
        }
    }
    let notified = month.notified_level.max(prior.map_or(0, |p| p.month_notified_level));
    let floor = if raised {
        notified.min(ledger.month_level)
    } else {
        notified
    };
    ledger.month_notified_level = ledger.month_level.max(floor);
    (ledger.month_level > floor).then(|| Notice {
        extension: ledger.extension.clone(),
        day: ledger.day,
        threshold: ledger.month_level,
        used_s,
        allowance_s: limit_s,
        period: Period::Month,
        direction: None,
    })
}

/// Everything `run` knows before deciding.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The day the last run worked on; `None` before the first run.
    pub open_day: Option<NaiveDate>,
    pub members: Vec<Member>,
    /// Stored ledgers: at least every unclosed one and those of the day before `open_day`.
    pub ledgers: Vec<Ledger>,
    pub grants: HashMap<(Extension, NaiveDate), u64>,
    /// Per extension, the days of the open day's month before the open day
    /// (read only when a member has a monthly limit).
    pub month_before_open: HashMap<Extension, MonthSoFar>,
    /// Per direction with allowances: its stored ledgers (as `ledgers`) and grants.
    pub directions: BTreeMap<String, DirectionState>,
}

/// A direction's allowances as stored: the same kind of ledgers and grants
/// as the shared allowance's.
#[derive(Debug, Clone, Default)]
pub struct DirectionState {
    pub ledgers: Vec<Ledger>,
    pub grants: HashMap<(Extension, NaiveDate), u64>,
}

/// Paid seconds per day and extension, from the CDR.
pub type Usage = BTreeMap<NaiveDate, HashMap<Extension, u64>>;

/// The same per direction name (a leg counts in its direction and in the
/// shared figure).
pub type DirectionUsage = BTreeMap<String, Usage>;

/// The desired state after a run, as changes against the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Ledgers that are new or differ from the stored ones.
    pub ledgers: Vec<Ledger>,
    pub records: Vec<Record>,
    pub notices: Vec<Notice>,
    pub open_day: NaiveDate,
    /// Today's ledger of every tracked member (changed or not).
    pub today: Vec<Ledger>,
    /// What the dialplan applies to tomorrow's calls until tomorrow's first
    /// run (see [`next_day_access`]).
    pub tomorrow: Vec<(Extension, Access)>,
    /// The same plan for each direction's allowances (their records and
    /// notices name the direction); empty in a direction's own plan.
    pub directions: BTreeMap<String, Plan>,
}

/// The days a run must evaluate, oldest first: every day since the last
/// run's, or, before the first run, since the earliest user was added.
pub fn days_to_evaluate(
    open_day: Option<NaiveDate>,
    first_since: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<Vec<NaiveDate>, PolicyError> {
    let start = open_day.unwrap_or_else(|| first_since.unwrap_or(today).min(today));
    if today < start {
        return Err(PolicyError::ClockWentBack { today, open_day: start });
    }
    let mut days = vec![start];
    let mut day = next_day(start);
    if (today - start).num_days() > MAX_CATCH_UP_DAYS {
        day = today - chrono::Days::new(MAX_CATCH_UP_DAYS as u64 - 1);
    }
    // `next_day` stops at the calendar's end: never push a day twice.
    while day <= today && days.last().is_some_and(|last| *last < day) {
        days.push(day);
        day = next_day(day);
    }
    Ok(days)
}

/// [`plan_run`] for the shared allowance, and the same for each direction
/// some user has an allowance of (or had: its open ledgers still close).
/// A direction's allowance is planned exactly like the shared one, from its
/// own limit, ledgers, grants and usage (no monthly cap: that is the
/// user's), so its carry-over, thresholds and notices work the same.
pub fn plan_run_all(
    rules: &Rules,
    today: NaiveDate,
    snapshot: &Snapshot,
    usage: &Usage,
    by_direction: &DirectionUsage,
) -> Result<Plan, PolicyError> {
    let mut plan = plan_run(rules, today, snapshot, usage)?;
    let mut names: BTreeSet<&String> = snapshot
        .members
        .iter()
        .flat_map(|m| m.direction_limits.keys())
        .collect();
    names.extend(
        snapshot
            .directions
            .iter()
            .filter(|(_, d)| d.ledgers.iter().any(|l| !l.closed))
            .map(|(name, _)| name),
    );
    let none = DirectionState::default();
    let no_usage = Usage::new();
    for name in names {
        let stored = snapshot.directions.get(name).unwrap_or(&none);
        let sub = Snapshot {
            open_day: snapshot.open_day,
            members: snapshot
                .members
                .iter()
                .filter_map(|m| {
                    m.direction_limits.get(name).map(|&limit| Member {
                        extension: m.extension.clone(),
                        daily_limit_s: limit,
                        monthly_limit_s: None,
                        direction_limits: BTreeMap::new(),
                        direction_since: BTreeMap::new(),
                        // Never the days before it was given (nor a carry into its first).
                        since: m.direction_since.get(name).map_or(m.since, |&given| given.max(m.since)),
                    })
                })
                .collect(),
            ledgers: stored.ledgers.clone(),
            grants: stored.grants.clone(),
            month_before_open: HashMap::new(),
            directions: BTreeMap::new(),
        };
        let mut sub_plan = plan_run(rules, today, &sub, by_direction.get(name).unwrap_or(&no_usage))?;
        for record in &mut sub_plan.records {
            record.direction = Some(name.clone());
        }
        for notice in &mut sub_plan.notices {
            notice.direction = Some(name.clone());
        }
        plan.directions.insert(name.clone(), sub_plan);
    }
    Ok(plan)
}

/// Closes every unfinished day before `today` in order (with carry-over) and
/// evaluates today.
pub fn plan_run(rules: &Rules, today: NaiveDate, snapshot: &Snapshot, usage: &Usage) -> Result<Plan, PolicyError> {
    let first_since = snapshot.members.iter().map(|m| m.since).min();
    let days = days_to_evaluate(snapshot.open_day, first_since, today)?;
    // Keyed by the snapshot's own extensions, and a stored ledger is copied
    // only once it changes: a steady-state run clones nothing it keeps.
    let stored: HashMap<(&Extension, NaiveDate), &Ledger> =
        snapshot.ledgers.iter().map(|l| ((&l.extension, l.day), l)).collect();
    let mut current: BTreeMap<(&Extension, NaiveDate), Cow<'_, Ledger>> = snapshot
        .ledgers
        .iter()
        .map(|l| ((&l.extension, l.day), Cow::Borrowed(l)))
        .collect();
    let mut plan = Plan {
        open_day: today,
        ..Plan::default()
    };
    let no_usage = HashMap::new();
    let late = charge_late_rows(&mut current, &snapshot.members, days[0], usage, &mut plan);
    // Each extension's month so far, as of the day being evaluated.
    let mut months: HashMap<Extension, (NaiveDate, MonthSoFar)> = match snapshot.open_day {
        Some(open) if open == days[0] => snapshot
            .month_before_open
            .iter()
            .map(|(e, so_far)| (e.clone(), (month_start(open), *so_far)))
            .collect(),
        _ => HashMap::new(),
    };
    let month_of = |months: &HashMap<Extension, (NaiveDate, MonthSoFar)>, e: &Extension, day: NaiveDate| {
        months
            .get(e)
            .filter(|(start, _)| *start == month_start(day))
            .map_or_else(MonthSoFar::default, |(_, so_far)| *so_far)
    };
    let count_in_month = |months: &mut HashMap<Extension, (NaiveDate, MonthSoFar)>, l: &Ledger| {
        let mut so_far = month_of(months, &l.extension, l.day);
        so_far.used_s = so_far.used_s.saturating_add(l.used_s);
        // The latest day's levels: each day carries the month's on, and a
        // raised limit lowers them (re-arming the thresholds above).
        so_far.level = l.month_level;
        so_far.notified_level = l.month_notified_level;
        so_far.limit_s = l.monthly_limit_s;
        months.insert(l.extension.clone(), (month_start(l.day), so_far));
    };

    for &day in &days {
        let close = day < today;
        let used_today = usage.get(&day).unwrap_or(&no_usage);
        let mut evaluated = BTreeSet::new();
        for member in snapshot.members.iter().filter(|m| m.since <= day) {
            let key = (&member.extension, day);
            let previous = current.get(&(&member.extension, previous_day(day))).cloned();
            let prior = stored.get(&key).copied();
            if let Some(closed) = prior.filter(|p| p.closed) {
                count_in_month(&mut months, closed);
                continue; // closed days are final
            }
            let outcome = evaluate(
                rules,
                DayInput {
                    member,
                    day,
                    previous: previous.as_deref(),
                    prior,
                    granted_s: if snapshot.grants.is_empty() {
                        0
                    } else {
                        snapshot
                            .grants
                            .get(&(member.extension.clone(), day))
                            .copied()
                            .unwrap_or(0)
                    },
                    used_s: used_today.get(&member.extension).copied().unwrap_or(0),
                    late_in_s: prior.map_or(0, |p| p.late_in_s).saturating_add(if day == days[0] {
                        late.get(&member.extension).copied().unwrap_or(0)
                    } else {
                        0
                    }),
                    close,
                    month: month_of(&months, &member.extension, day),
                },
            );
            count_in_month(&mut months, &outcome.ledger);
            plan.records.extend(outcome.events.into_iter().map(|event| Record {
                extension: member.extension.clone(),
                day,
                event,
                direction: None,
            }));
            plan.notices.extend(outcome.notices);
            evaluated.insert(&member.extension);
            current.insert(key, Cow::Owned(outcome.ledger));
        }
        // Rows of users who were removed or disabled during the day close with
        // the day's final CDR usage too (calls that ended after the last run count).
        if close {
            let orphans: Vec<(&Extension, Ledger)> = current
                .iter()
                .filter(|(_, l)| l.day == day && !l.closed && !evaluated.contains(&l.extension))
                .map(|(key, l)| (key.0, l.as_ref().clone()))
                .collect();
            for (extension, mut ledger) in orphans {
                ledger.closed = true;
                ledger.used_s = used_today
                    .get(&ledger.extension)
                    .copied()
                    .unwrap_or(0)
                    .saturating_add(ledger.late_in_s);
                ledger.level = level(&rules.thresholds, ledger.used_s, ledger.allowance_s());
                ledger.blocked = ledger.used_s >= ledger.allowance_s();
                plan.records.push(Record {
                    extension: ledger.extension.clone(),
                    day,
                    event: Event::DayClosed {
                        allowance_s: ledger.allowance_s(),
                        used_s: ledger.used_s,
                        unused_s: ledger.remaining_s(),
                    },
                    direction: None,
                });
                current.insert((extension, day), Cow::Owned(ledger));
            }
        }
    }

    // A set, not a scan of the members per ledger (1,000 users: a million string compares).
    let tracked: std::collections::HashSet<&Extension> = snapshot.members.iter().map(|m| &m.extension).collect();
    for (key, ledger) in &current {
        let ledger = ledger.as_ref();
        if stored.get(key).is_none_or(|s| *s != ledger) {
            plan.ledgers.push(ledger.clone());
        }
        if ledger.day == today && tracked.contains(&ledger.extension) {
            plan.today.push(ledger.clone());
        }
    }
    plan.tomorrow = next_day_access(rules, today, &snapshot.members, &plan.today);
    Ok(plan)
}

/// The access the include file made on `day` gives calls placed on the next
/// day, from midnight until that day's first run (cron's interval, or longer
/// when runs fail): the next day's base allowance, nothing used. A run adds
/// carry-over and grants, which depend on the rest of `day`; without them
/// the figure is never more than the run will give, so no call after
/// midnight is judged by the old day's remainder. Under a monthly limit, a
/// next day in the same month gets at most what the month would leave if
/// `day` used all of its allowance (`day_ledgers`: that day's figures).
pub fn next_day_access(
    rules: &Rules,
    day: NaiveDate,
    members: &[Member],
    day_ledgers: &[Ledger],
) -> Vec<(Extension, Access)> {
    let next = next_day(day);
    members
        .iter()
        .filter(|m| m.since <= next)
        .map(|m| {
            let mut base_s = base_allowance(rules, next, m.daily_limit_s);
            if let Some(limit) = m.monthly_limit_s {
                let spent_at_most = match day_ledgers.iter().find(|l| l.extension == m.extension) {
                    Some(l) if month_start(l.day) == month_start(next) => {
                        l.month_before_s.saturating_add(l.used_s.max(l.allowance_s()))
                    }
                    // Without today's figures, nothing is known of the month: grant nothing.
                    None if month_start(day) == month_start(next) => limit,
                    _ => 0,
                };
                base_s = base_s.min(limit.saturating_sub(spent_at_most));
            }
            let base_ms = base_s.saturating_mul(1000);
            let access = if base_ms < 1000 {
                Access::Deny
            } else {
                Access::Allow {
                    remaining_ms: base_ms,
                    allowance_ms: base_ms,
                    used_ms: 0,
                }
            };
            (m.extension.clone(), access)
        })
        .collect()
}

/// How long after its end a closed day may still get CDR rows: a paid call
/// of a tracked user lasts at most the day's allowance (`L()` caps it), plus
/// ringing and CDR batch delays. Without caps, a day.
pub fn settle_period(closed: &[&Ledger], cap_calls: bool) -> chrono::Duration {
    let day = chrono::Duration::hours(24);
    if !cap_calls {
        return day;
    }
    let longest = closed.iter().map(|l| l.allowance_s()).max().unwrap_or(0);
    (chrono::Duration::seconds(i64::try_from(longest).unwrap_or(i64::MAX / 2)) + chrono::Duration::minutes(15)).min(day)
}

/// Whether a closed `day` may still get CDR rows at `now`. Compared as
/// instants: on a spring-forward night the local clock skips an hour, and in
/// zones that switch at midnight (America/Santiago) the day's end itself
/// moves, so local clock times would end the period an hour early.
pub fn still_settling(now: DateTime<Utc>, day: NaiveDate, tz: chrono_tz::Tz, settle: chrono::Duration) -> bool {
    now < day_start(next_day(day), tz) + settle
}

/// Late rows: when `usage` holds the day before `first` (a day closed by an
/// earlier run, still settling), the seconds it now shows beyond what it
/// closed with are charged to `first`, once: the closed day's `late_out_s`
/// remembers them. Returns the seconds to add per extension.
fn charge_late_rows(
    current: &mut BTreeMap<(&Extension, NaiveDate), Cow<'_, Ledger>>,
    members: &[Member],
    first: NaiveDate,
    usage: &Usage,
    plan: &mut Plan,
) -> HashMap<Extension, u64> {
    let settling = previous_day(first);
    let mut late = HashMap::new();
    let Some(seen) = usage.get(&settling).filter(|_| settling < first) else {
        return late;
    };
    // Only a user tracked on `first` can be charged there.
    let chargeable: std::collections::HashSet<&Extension> = members
        .iter()
        .filter(|m| m.since <= first)
        .map(|m| &m.extension)
        .collect();
    for ledger in current.values_mut().filter(|l| l.day == settling && l.closed) {
        if !chargeable.contains(&ledger.extension) {
            continue;
        }
        let own_at_close = ledger.used_s.saturating_sub(ledger.late_in_s);
        let now = seen.get(&ledger.extension).copied().unwrap_or(0);
        let extra = now.saturating_sub(own_at_close).saturating_sub(ledger.late_out_s);
        if extra > 0 {
            let ledger = ledger.to_mut();
            ledger.late_out_s += extra;
            late.insert(ledger.extension.clone(), extra);
            plan.records.push(Record {
                extension: ledger.extension.clone(),
                day: first,
                event: Event::LateUsage {
                    from_day: settling,
                    seconds: extra,
                },
                direction: None,
            });
        }
    }
    late
}

/// What the dialplan does with a paid call from a tracked user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Allowed, capped at the remaining allowance (always ≥ 1000 ms); the
    /// live guard works from the allowance and the CDR usage themselves.
    Allow {
        remaining_ms: u64,
        allowance_ms: u64,
        used_ms: u64,
    },
    Deny,
}

pub fn access(ledger: &Ledger) -> Access {
    if ledger.blocked || ledger.remaining_s() == 0 {
        Access::Deny
    } else {
        Access::Allow {
            remaining_ms: ledger.remaining_s().saturating_mul(1000),
            allowance_ms: ledger.allowance_s().saturating_mul(1000),
            used_ms: ledger.used_s.saturating_mul(1000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn ext(s: &str) -> Extension {
        Extension::parse(s).unwrap()
    }
    fn member(e: &str, limit: u64, since: &str) -> Member {
        Member {
            extension: ext(e),
            daily_limit_s: limit,
            monthly_limit_s: None,
            direction_limits: BTreeMap::new(),
            direction_since: BTreeMap::new(),
            since: day(since),
        }
    }
    /// A ledger's fields that a test without a monthly limit does not set.
    fn no_month() -> Ledger {
        Ledger {
            extension: ext("0"),
            day: day("2026-11-01"),
            base_s: 0,
            carried_in_s: 0,
            granted_s: 0,
            used_s: 0,
            late_in_s: 0,
            late_out_s: 0,
            level: 0,
            notified_level: 0,
            blocked: false,
            closed: false,
            monthly_limit_s: None,
            month_before_s: 0,
            month_level: 0,
            month_notified_level: 0,
        }
    }
    fn usage(entries: &[(&str, &str, u64)]) -> Usage {
        let mut u = Usage::new();
        for (d, e, s) in entries {
            u.entry(day(d)).or_default().insert(ext(e), *s);
        }
        u
    }
    /// Runs `plan_run` and folds the plan back into the snapshot, as `run` does.
    fn apply(snapshot: &mut Snapshot, plan: &Plan) {
        for l in &plan.ledgers {
            snapshot
                .ledgers
                .retain(|s| !(s.extension == l.extension && s.day == l.day));
            snapshot.ledgers.push(l.clone());
        }
        snapshot.open_day = Some(plan.open_day);
    }
    fn run(rules: &Rules, snapshot: &mut Snapshot, today: &str, u: &Usage) -> Plan {
        // What the state adapter reads: the open day's month before the open day.
        snapshot.month_before_open.clear();
        if let Some(open) = snapshot.open_day {
            let mut month: Vec<&Ledger> = snapshot
                .ledgers
                .iter()
                .filter(|l| l.day >= month_start(open) && l.day < open)
                .collect();
            month.sort_by_key(|l| l.day);
            for l in month {
                // The sum of the days, the latest day's levels.
                let so_far = snapshot.month_before_open.entry(l.extension.clone()).or_default();
                so_far.used_s += l.used_s;
                so_far.level = l.month_level;
                so_far.notified_level = l.month_notified_level;
            }
        }
        let plan = plan_run(rules, day(today), snapshot, u).unwrap();
        apply(snapshot, &plan);
        plan
    }
    fn ledger_of<'a>(s: &'a Snapshot, e: &str, d: &str) -> &'a Ledger {
        s.ledgers
            .iter()
            .find(|l| l.extension == ext(e) && l.day == day(d))
            .unwrap()
    }

    #[test]
    fn level_is_the_highest_threshold_reached() {
        let t = [50, 90, 100];
        for (used, allowance, want) in [
            (0, 3600, 0),
            (0, 0, 0),
            (1799, 3600, 0),
            (1800, 3600, 50),
            (3239, 3600, 50),
            (3240, 3600, 90),
            (3599, 3600, 90),
            (3600, 3600, 100),
            (9999, 3600, 100),
            (1, 0, 100),
            (u64::MAX, u64::MAX, 100),
            (1, u64::MAX, 0),
        ] {
            assert_eq!(level(&t, used, allowance), want, "{used}/{allowance}");
        }
        assert_eq!(level(&[25, 100], 30, 100), 25);
    }

    #[test]
    fn tomorrow_is_its_base_allowance_until_its_first_run() {
        let rules = Rules {
            workdays: [true, true, true, true, true, false, false],
            ..Rules::default()
        };
        let members = [
            member("2055", 1800, "2026-11-01"),
            member("2066", 0, "2026-11-01"),
            member("2077", 600, "2026-12-01"),
        ];
        let allow = |s: u64| Access::Allow {
            remaining_ms: s * 1000,
            allowance_ms: s * 1000,
            used_ms: 0,
        };
        // Thursday the 26th: Friday is a workday.
        assert_eq!(
            next_day_access(&rules, day("2026-11-26"), &members, &[]),
            vec![(ext("2055"), allow(1800)), (ext("2066"), Access::Deny)]
        );
        // Friday the 27th: Saturday is a day off; a user added later is not tracked yet.
        assert_eq!(
            next_day_access(&rules, day("2026-11-27"), &members, &[]),
            vec![(ext("2055"), Access::Deny), (ext("2066"), Access::Deny)]
        );
    }

    #[test]
    fn a_monthly_limit_caps_the_day_blocks_when_reached_and_resets_with_the_month() {
        let rules = Rules {
            carry_enabled: false,
            ..Rules::default()
        };
        let mut s = Snapshot {
            members: vec![Member {
                monthly_limit_s: Some(2500),
                ..member("2055", 1000, "2026-11-28")
            }],
            ..Default::default()
        };
        let u = usage(&[
            ("2026-11-28", "2055", 1000),
            ("2026-11-29", "2055", 900),
            ("2026-11-30", "2055", 600),
            ("2026-12-01", "2055", 100),
        ]);
        let plan = run(&rules, &mut s, "2026-11-28", &u);
        assert_eq!(
            plan.notices.iter().map(|n| (n.period, n.threshold)).collect::<Vec<_>>(),
            [(Period::Day, 100)]
        );
        run(&rules, &mut s, "2026-11-29", &u);
        // 1900 of 2500 used: the 30th may have 600, not its 1000; the month's 50 % was mailed on the 29th.
        let plan = run(&rules, &mut s, "2026-11-30", &u);
        let l = ledger_of(&s, "2055", "2026-11-30");
        assert_eq!(
            (l.allowance_s(), l.month_left_s(), l.month_capped()),
            (600, Some(600), true)
        );
        assert!(l.blocked, "the month is used up mid-day");
        assert_eq!(l.month_used_s(), 2500);
        assert_eq!(
            plan.notices
                .iter()
                .map(|n| (n.period, n.threshold, n.used_s, n.allowance_s))
                .collect::<Vec<_>>(),
            [(Period::Day, 100, 600, 600), (Period::Month, 100, 2500, 2500)]
        );
        assert!(plan.records.iter().any(|r| r.event
            == Event::MonthLevelCrossed {
                threshold: 90,
                used_s: 2500,
                limit_s: 2500
            }));
        assert!(
            !plan
                .records
                .iter()
                .any(|r| matches!(r.event, Event::MonthLevelCrossed { threshold: 50, .. }))
        );
        // The 1st of December starts a new month: the full day again.
        assert_eq!(
            plan.tomorrow,
            vec![(
                ext("2055"),
                Access::Allow {
                    remaining_ms: 1_000_000,
                    allowance_ms: 1_000_000,
                    used_ms: 0
                }
            )]
        );
        run(&rules, &mut s, "2026-12-01", &u);
        let l = ledger_of(&s, "2055", "2026-12-01");
        assert_eq!((l.allowance_s(), l.month_before_s, l.blocked), (1000, 0, false));
    }

    #[test]
    fn a_raised_monthly_limit_re_arms_the_months_thresholds_on_later_days_too() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![Member {
                monthly_limit_s: Some(1000),
                ..member("2055", 2000, "2026-11-02")
            }],
            ..Default::default()
        };
        let u = usage(&[("2026-11-02", "2055", 1000), ("2026-11-04", "2055", 1000)]);
        let plan = run(&rules, &mut s, "2026-11-02", &u);
        assert!(
            plan.notices
                .iter()
                .any(|n| n.period == Period::Month && n.threshold == 100)
        );
        // Raised on the 3rd: 1000 of 4000 is 25 %, below every threshold again.
        s.members[0].monthly_limit_s = Some(4000);
        run(&rules, &mut s, "2026-11-03", &u);
        let plan = run(&rules, &mut s, "2026-11-04", &u);
        let month: Vec<(u8, u64)> = plan
            .notices
            .iter()
            .filter(|n| n.period == Period::Month)
            .map(|n| (n.threshold, n.used_s))
            .collect();
        assert_eq!(
            month,
            [(50, 2000)],
            "the 50 % of the raised limit, a day after the raise"
        );
        assert!(plan.records.iter().any(|r| r.event
            == Event::MonthLevelCrossed {
                threshold: 50,
                used_s: 2000,
                limit_s: 4000
            }));
    }

    #[test]
    fn tomorrow_in_the_same_month_gets_no_more_than_the_month_could_leave() {
        let rules = Rules::default();
        let members = [Member {
            monthly_limit_s: Some(3000),
            ..member("2055", 1000, "2026-11-01")
        }];
        let today = Ledger {
            extension: ext("2055"),
            day: day("2026-11-26"),
            base_s: 1000,
            used_s: 200,
            monthly_limit_s: Some(3000),
            month_before_s: 1500,
            ..no_month()
        };
        // The 26th may still use its 1000: the 27th gets at most 3000 - 1500 - 1000.
        assert_eq!(
            next_day_access(&rules, day("2026-11-26"), &members, std::slice::from_ref(&today)),
            vec![(
                ext("2055"),
                Access::Allow {
                    remaining_ms: 500_000,
                    allowance_ms: 500_000,
                    used_ms: 0
                }
            )]
        );
        // Without today's figures nothing is known of the month: deny.
        assert_eq!(
            next_day_access(&rules, day("2026-11-26"), &members, &[]),
            vec![(ext("2055"), Access::Deny)]
        );
    }

    #[test]
    fn base_is_zero_on_days_off() {
        let rules = Rules {
            workdays: [true, true, true, true, true, false, false],
            ..Rules::default()
        };
        assert_eq!(base_allowance(&rules, day("2026-11-27"), 600), 600); // Friday
        assert_eq!(base_allowance(&rules, day("2026-11-28"), 600), 0); // Saturday
    }

    #[test]
    fn carry_is_unused_allowance_capped_and_never_negative() {
        let mut rules = Rules::default();
        let prev = |used| Ledger {
            extension: ext("1"),
            day: day("2026-11-25"),
            base_s: 600,
            carried_in_s: 100,
            granted_s: 50,
            used_s: used,
            late_in_s: 0,
            late_out_s: 0,
            level: 0,
            notified_level: 0,
            blocked: false,
            closed: true,
            ..no_month()
        };
        assert_eq!(carry_in(&rules, Some(&prev(0))), 750);
        assert_eq!(carry_in(&rules, Some(&prev(700))), 50);
        assert_eq!(carry_in(&rules, Some(&prev(9000))), 0);
        assert_eq!(carry_in(&rules, None), 0);
        rules.carry_cap_s = Some(300);
        assert_eq!(carry_in(&rules, Some(&prev(0))), 300);
        assert_eq!(carry_in(&rules, Some(&prev(700))), 50);
        rules.carry_enabled = false;
        assert_eq!(carry_in(&rules, Some(&prev(0))), 0);
    }

    #[test]
    fn the_ladder_notifies_each_threshold_once() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("2055", 1000, "2026-11-26")],
            ..Default::default()
        };
        let mut notices = Vec::new();
        for used in [0, 400, 500, 600, 899, 900, 950, 1000, 1200, 1200] {
            let plan = run(&rules, &mut s, "2026-11-26", &usage(&[("2026-11-26", "2055", used)]));
            notices.extend(plan.notices.iter().map(|n| (used, n.threshold)));
        }
        assert_eq!(notices, vec![(500, 50), (900, 90), (1000, 100)]);
        let l = ledger_of(&s, "2055", "2026-11-26");
        assert!(l.blocked);
        assert_eq!((l.level, l.notified_level), (100, 100));
    }

    #[test]
    fn usage_going_down_re_arms_nothing_but_a_larger_allowance_does() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("2055", 1000, "2026-11-26")],
            ..Default::default()
        };
        let mut notices = Vec::new();
        // 1000: exhausted. 0: a config mistake dropped every row. 1000 again: fixed.
        for used in [1000, 0, 600, 1000] {
            let plan = run(&rules, &mut s, "2026-11-26", &usage(&[("2026-11-26", "2055", used)]));
            notices.extend(plan.notices.iter().map(|n| (used, n.threshold)));
        }
        assert_eq!(notices, vec![(1000, 100)], "each threshold once per day");
        assert_eq!(ledger_of(&s, "2055", "2026-11-26").notified_level, 100);
        // A grant raises the allowance: 1000 of 2000 is 50 %, and 100 % re-arms.
        s.grants.insert((ext("2055"), day("2026-11-26")), 1000);
        for used in [1000, 1800, 2000] {
            let plan = run(&rules, &mut s, "2026-11-26", &usage(&[("2026-11-26", "2055", used)]));
            notices.extend(plan.notices.iter().map(|n| (used, n.threshold)));
        }
        assert_eq!(notices, vec![(1000, 100), (1800, 90), (2000, 100)]);
    }

    #[test]
    fn a_jump_past_several_thresholds_sends_one_notice_and_logs_every_crossing() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("2055", 1000, "2026-11-26")],
            ..Default::default()
        };
        let plan = run(&rules, &mut s, "2026-11-26", &usage(&[("2026-11-26", "2055", 1030)]));
        assert_eq!(plan.notices.len(), 1);
        assert_eq!(plan.notices[0].threshold, 100);
        let crossed: Vec<u8> = plan
            .records
            .iter()
            .filter_map(|r| match r.event {
                Event::LevelCrossed { threshold, .. } => Some(threshold),
                _ => None,
            })
            .collect();
        assert_eq!(crossed, vec![50, 90, 100]);
        assert!(plan.records.iter().any(|r| matches!(r.event, Event::Blocked { .. })));
    }

    #[test]
    fn rerunning_changes_nothing() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("2055", 1000, "2026-11-26")],
            ..Default::default()
        };
        let u = usage(&[("2026-11-26", "2055", 950)]);
        run(&rules, &mut s, "2026-11-26", &u);
        let again = plan_run(&rules, day("2026-11-26"), &s, &u).unwrap();
        assert!(again.ledgers.is_empty() && again.records.is_empty() && again.notices.is_empty());
        assert_eq!(again.today.len(), 1);
    }

    #[test]
    fn a_grant_unblocks_at_once_and_a_later_exhaustion_notifies_again() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("2055", 1000, "2026-11-26")],
            ..Default::default()
        };
        run(&rules, &mut s, "2026-11-26", &usage(&[("2026-11-26", "2055", 1000)]));
        assert!(ledger_of(&s, "2055", "2026-11-26").blocked);

        s.grants.insert((ext("2055"), day("2026-11-26")), 1000);
        let plan = run(&rules, &mut s, "2026-11-26", &usage(&[("2026-11-26", "2055", 1000)]));
        let l = ledger_of(&s, "2055", "2026-11-26");
        assert!(!l.blocked);
        assert_eq!((l.level, l.notified_level), (50, 50));
        assert!(plan.notices.is_empty());
        assert!(plan.records.iter().any(|r| matches!(r.event, Event::Unblocked { .. })));
        assert!(
            plan.records
                .iter()
                .any(|r| matches!(r.event, Event::LevelLowered { from: 100, to: 50, .. }))
        );

        let plan = run(&rules, &mut s, "2026-11-26", &usage(&[("2026-11-26", "2055", 2000)]));
        assert_eq!(plan.notices.iter().map(|n| n.threshold).collect::<Vec<_>>(), vec![100]);
        assert!(ledger_of(&s, "2055", "2026-11-26").blocked);
    }

    #[test]
    fn a_raised_limit_unblocks_in_the_same_run() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("2055", 600, "2026-11-26")],
            ..Default::default()
        };
        let u = usage(&[("2026-11-26", "2055", 600)]);
        run(&rules, &mut s, "2026-11-26", &u);
        s.members[0].daily_limit_s = 1200;
        run(&rules, &mut s, "2026-11-26", &u);
        let l = ledger_of(&s, "2055", "2026-11-26");
        assert_eq!((l.blocked, l.level), (false, 50));
    }

    #[test]
    fn zero_allowance_blocks_silently() {
        let rules = Rules {
            workdays: [true, true, true, true, true, false, false],
            ..Rules::default()
        };
        let mut s = Snapshot {
            members: vec![member("2055", 600, "2026-11-28")],
            ..Default::default()
        };
        let plan = run(&rules, &mut s, "2026-11-28", &Usage::new()); // Saturday
        let l = ledger_of(&s, "2055", "2026-11-28");
        assert!(l.blocked);
        assert_eq!(l.level, 0);
        assert!(plan.notices.is_empty());
        assert_eq!(access(l), Access::Deny);
    }

    #[test]
    fn days_close_in_order_with_carry_over_and_cap() {
        let rules = Rules {
            carry_cap_s: Some(500),
            ..Rules::default()
        };
        let mut s = Snapshot {
            members: vec![member("2055", 1000, "2026-11-23")],
            ..Default::default()
        };
        run(&rules, &mut s, "2026-11-23", &usage(&[("2026-11-23", "2055", 100)]));
        // Host off for three days; the next run is on the 27th.
        let u = usage(&[
            ("2026-11-23", "2055", 300), // calls after the last run of the 23rd
            ("2026-11-24", "2055", 1400),
            ("2026-11-25", "2055", 0),
            ("2026-11-26", "2055", 900),
            ("2026-11-27", "2055", 10),
        ]);
        let plan = run(&rules, &mut s, "2026-11-27", &u);
        let figures: Vec<(u64, u64, u64, bool)> =
            ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"]
                .iter()
                .map(|d| {
                    let l = ledger_of(&s, "2055", d);
                    (l.carried_in_s, l.allowance_s(), l.used_s, l.closed)
                })
                .collect();
        assert_eq!(
            figures,
            vec![
                (0, 1000, 300, true),
                (500, 1500, 1400, true),
                (100, 1100, 0, true),
                (500, 1500, 900, true),
                (500, 1500, 10, false),
            ]
        );
        let closed: Vec<NaiveDate> = plan
            .records
            .iter()
            .filter(|r| matches!(r.event, Event::DayClosed { .. }))
            .map(|r| r.day)
            .collect();
        assert_eq!(
            closed,
            vec![
                day("2026-11-23"),
                day("2026-11-24"),
                day("2026-11-25"),
                day("2026-11-26")
            ]
        );
        // Catching up gives the same state as running every day would have.
        let mut daily = Snapshot {
            members: vec![member("2055", 1000, "2026-11-23")],
            ..Default::default()
        };
        for d in ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"] {
            run(&rules, &mut daily, d, &u);
        }
        let mut a = s.ledgers.clone();
        let mut b = daily.ledgers.clone();
        a.sort_by_key(|l| l.day);
        b.sort_by_key(|l| l.day);
        assert_eq!(a, b);
    }

    #[test]
    fn the_first_run_starts_on_the_day_the_first_user_was_added() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("2055", 1000, "2026-11-24")],
            ..Default::default()
        };
        run(&rules, &mut s, "2026-11-26", &usage(&[("2026-11-24", "2055", 300)]));
        assert_eq!(ledger_of(&s, "2055", "2026-11-24").used_s, 300);
        assert_eq!(ledger_of(&s, "2055", "2026-11-25").carried_in_s, 700);
        assert_eq!(ledger_of(&s, "2055", "2026-11-26").carried_in_s, 1700);
    }

    #[test]
    fn the_settle_period_is_measured_in_instants_across_dst() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let hours = chrono::Duration::hours;
        // Berlin springs forward at 02:00 on 2026-03-29: the 28th ends at
        // 23:00 UTC, so 24 hours of settling end at 23:00 UTC on the 29th
        // (local clock times would have ended them at 22:00 UTC).
        let berlin = chrono_tz::Europe::Berlin;
        assert!(still_settling(
            at("2026-03-29T22:59:59Z"),
            d("2026-03-28"),
            berlin,
            hours(24)
        ));
        assert!(!still_settling(
            at("2026-03-29T23:00:00Z"),
            d("2026-03-28"),
            berlin,
            hours(24)
        ));
        // The day of the jump itself ends at 22:00 UTC.
        assert!(still_settling(
            at("2026-03-29T22:39:00Z"),
            d("2026-03-29"),
            berlin,
            chrono::Duration::minutes(40)
        ));
        assert!(!still_settling(
            at("2026-03-29T22:40:00Z"),
            d("2026-03-29"),
            berlin,
            chrono::Duration::minutes(40)
        ));
        // Santiago jumps at midnight (2026-09-06 00:00 becomes 01:00): the 5th
        // ends at 04:00 UTC, and a 15-minute period after it ends at 04:15 UTC.
        let santiago = chrono_tz::America::Santiago;
        let settle = chrono::Duration::minutes(15);
        assert!(still_settling(
            at("2026-09-06T04:14:00Z"),
            d("2026-09-05"),
            santiago,
            settle
        ));
        assert!(!still_settling(
            at("2026-09-06T04:15:00Z"),
            d("2026-09-05"),
            santiago,
            settle
        ));
        // New York springs forward at 02:00 on 2026-03-08: three hours after
        // the 7th's end (05:00 UTC) is 08:00 UTC, not 03:00 local (07:00 UTC).
        let new_york = chrono_tz::America::New_York;
        assert!(still_settling(
            at("2026-03-08T07:30:00Z"),
            d("2026-03-07"),
            new_york,
            hours(3)
        ));
        assert!(!still_settling(
            at("2026-03-08T08:00:00Z"),
            d("2026-03-07"),
            new_york,
            hours(3)
        ));
    }

    #[test]
    fn a_closed_day_settles_after_its_longest_possible_call() {
        let mut a = Ledger {
            extension: ext("1"),
            day: day("2026-11-25"),
            base_s: 1800,
            carried_in_s: 600,
            granted_s: 0,
            used_s: 0,
            late_in_s: 0,
            late_out_s: 0,
            level: 0,
            notified_level: 0,
            blocked: false,
            closed: true,
            ..no_month()
        };
        let mut b = a.clone();
        b.base_s = 600;
        assert_eq!(settle_period(&[&a, &b], true), chrono::Duration::seconds(2400 + 900));
        assert_eq!(settle_period(&[&a], false), chrono::Duration::hours(24));
        assert_eq!(settle_period(&[], true), chrono::Duration::minutes(15));
        a.carried_in_s = 10 * 86_400;
        assert_eq!(settle_period(&[&a], true), chrono::Duration::hours(24));
    }

    #[test]
    fn figures_go_stale_after_fifteen_minutes_without_a_successful_run() {
        let now: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        assert!(is_stale(None, now));
        assert!(!is_stale(Some(now - chrono::Duration::minutes(15)), now));
        assert!(is_stale(Some(now - chrono::Duration::minutes(16)), now));
        assert!(!is_stale(Some(now + chrono::Duration::minutes(5)), now));
    }

    #[test]
    fn a_jump_of_more_than_two_days_needs_force_and_catch_up_is_bounded() {
        let open = day("2026-11-26");
        assert_eq!(check_clock_jump(Some(open), day("2026-11-28"), 2, false), Ok(()));
        assert_eq!(check_clock_jump(Some(open), day("2026-11-29"), 3, false), Ok(()));
        assert_eq!(check_clock_jump(None, day("2126-11-28"), 2, false), Ok(()));
        assert_eq!(
            check_clock_jump(Some(open), day("2026-11-29"), 2, false),
            Err(PolicyError::ClockJumped {
                today: day("2026-11-29"),
                open_day: open,
                days: 3
            })
        );
        assert_eq!(check_clock_jump(Some(open), day("2126-11-29"), 2, true), Ok(()));
        // The default: a long weekend or a week off is not a clock fault, a year off is.
        let max = MAX_UNFORCED_JUMP_DAYS;
        assert_eq!(max, 14);
        assert_eq!(check_clock_jump(Some(open), day("2026-11-30"), max, false), Ok(()));
        assert_eq!(check_clock_jump(Some(open), day("2026-12-10"), max, false), Ok(()));
        assert!(check_clock_jump(Some(open), day("2026-12-11"), max, false).is_err());
        assert!(check_clock_jump(Some(open), day("2027-11-26"), max, false).is_err());
        let days = days_to_evaluate(Some(open), None, day("2026-12-01")).unwrap();
        assert_eq!(days.len(), 6);
        let days = days_to_evaluate(Some(open), None, day("2126-11-26")).unwrap();
        assert_eq!(days.len() as i64, MAX_CATCH_UP_DAYS + 1);
        assert_eq!(days[0], open);
        assert_eq!(days[1], day("2126-11-26") - chrono::Days::new(365));
        assert_eq!(*days.last().unwrap(), day("2126-11-26"));
        assert!(days.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_clock_going_backwards_is_refused() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("2055", 1000, "2026-11-26")],
            ..Default::default()
        };
        run(&rules, &mut s, "2026-11-26", &Usage::new());
        assert_eq!(
            plan_run(&rules, day("2026-11-25"), &s, &Usage::new()),
            Err(PolicyError::ClockWentBack {
                today: day("2026-11-25"),
                open_day: day("2026-11-26")
            })
        );
    }

    #[test]
    fn a_user_added_mid_day_gets_the_full_base_and_no_carry_from_before() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("1", 1000, "2026-11-25")],
            ..Default::default()
        };
        run(&rules, &mut s, "2026-11-25", &Usage::new());
        s.members.push(member("2", 700, "2026-11-26"));
        run(&rules, &mut s, "2026-11-26", &Usage::new());
        let l = ledger_of(&s, "2", "2026-11-26");
        assert_eq!((l.base_s, l.carried_in_s), (700, 0));
        assert_eq!(ledger_of(&s, "1", "2026-11-26").carried_in_s, 1000);
    }

    #[test]
    fn a_re_added_user_starts_without_the_old_carry() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("1", 1000, "2026-11-24")],
            ..Default::default()
        };
        run(&rules, &mut s, "2026-11-24", &Usage::new());
        s.members.clear(); // removed on the 25th
        run(&rules, &mut s, "2026-11-25", &Usage::new());
        assert!(ledger_of(&s, "1", "2026-11-24").closed);
        s.members.push(member("1", 1000, "2026-11-26"));
        run(&rules, &mut s, "2026-11-26", &Usage::new());
        assert_eq!(ledger_of(&s, "1", "2026-11-26").carried_in_s, 0);
    }

    #[test]
    fn usage_of_other_callers_is_ignored() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("2055", 1000, "2026-11-26")],
            ..Default::default()
        };
        run(&rules, &mut s, "2026-11-26", &usage(&[("2026-11-26", "9999", 5000)]));
        assert_eq!(ledger_of(&s, "2055", "2026-11-26").used_s, 0);
        assert_eq!(s.ledgers.len(), 1);
    }

    #[test]
    fn a_notice_missed_before_midnight_is_sent_when_the_day_closes() {
        let rules = Rules::default();
        let mut s = Snapshot {
            members: vec![member("2055", 1000, "2026-11-26")],
            ..Default::default()
        };
        run(&rules, &mut s, "2026-11-26", &usage(&[("2026-11-26", "2055", 100)]));
        let plan = run(&rules, &mut s, "2026-11-27", &usage(&[("2026-11-26", "2055", 600)]));
        assert_eq!(plan.notices.len(), 1);
        assert_eq!(
            (plan.notices[0].day, plan.notices[0].threshold),
            (day("2026-11-26"), 50)
        );
    }

    #[test]
    fn access_caps_allowed_calls_and_never_at_zero() {
        let mut l = Ledger {
            extension: ext("1"),
            day: day("2026-11-26"),
            base_s: 600,
            carried_in_s: 0,
            granted_s: 0,
            used_s: 599,
            late_in_s: 0,
            late_out_s: 0,
            level: 90,
            notified_level: 90,
            blocked: false,
            closed: false,
            ..no_month()
        };
        assert_eq!(
            access(&l),
            Access::Allow {
                remaining_ms: 1000,
                allowance_ms: 600_000,
                used_ms: 599_000
            }
        );
        l.used_s = 600;
        l.blocked = true;
        assert_eq!(access(&l), Access::Deny);
    }
}
