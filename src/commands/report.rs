//! Read-only commands: `status`, `log`, `render`, `classify`.

use anyhow::Result;
use chrono::NaiveDate;
use serde::Serialize;

use super::Context;
use super::run::desired_include;
use crate::cli::{ClassifyArgs, LogArgs, StatusArgs};
use crate::duration::format as human;
use crate::policy::{self, Ledger, Plan, Usage};
use crate::state::State;

/// What a run would decide if the CDR held nothing new: stored usage, plus
/// today's rows for users the last run has not seen yet.
/// A state that is ahead of the clock (see `rewind`) is shown as stored.
pub fn projected(ctx: &Context, state: &State) -> Result<Plan> {
    let snapshot = state.snapshot()?;
    if snapshot.open_day.is_some_and(|open| open > ctx.today()) {
        eprintln!(
            "callquota: warning: the state is ahead of the clock (last run on {}, now {}); showing what is stored; \
             see `callquota rewind`",
            snapshot.open_day.map(|d| d.to_string()).unwrap_or_default(),
            ctx.today()
        );
        let today = state.ledgers_on(ctx.today())?;
        return Ok(Plan {
            today,
            ..Plan::default()
        });
    }
    let mut usage = Usage::new();
    for l in &snapshot.ledgers {
        // `used_s` includes late rows charged to the day, which plan_run adds itself.
        let own = l.used_s.saturating_sub(l.late_in_s);
        usage.entry(l.day).or_default().insert(l.extension.clone(), own);
    }
    Ok(policy::plan_run(&ctx.config.rules, ctx.today(), &snapshot, &usage)?)
}

#[derive(Serialize)]
struct StatusRow {
    extension: String,
    name: String,
    day: NaiveDate,
    allowance_s: u64,
    used_s: u64,
    remaining_s: u64,
    level: u8,
    blocked: bool,
    base_s: u64,
    carried_in_s: u64,
    granted_s: u64,
    closed: bool,
    /// When the last successful run finished (RFC 3339), if ever.
    last_run_at: Option<String>,
    /// No successful run for more than 15 minutes: the figures may be out of date.
    stale: bool,
    /// The live guard's figures, when Asterisk answers (else null): the talk
    /// time Asterisk measured today, and what calls in progress hold.
    live_used_s: Option<u64>,
    reserved_s: Option<u64>,
}

pub fn status(ctx: &Context, args: &StatusArgs) -> Result<()> {
    let state = State::open(&ctx.config.state_db)?;
    let day = args.day.unwrap_or_else(|| ctx.today());
    let ledgers = if day == ctx.today() {
        projected(ctx, &state)?.today
    } else {
        state.ledgers_on(day)?
    };
    let users = state.users()?;
    let last_run_at = state.last_run_at()?;
    let stale = policy::is_stale(last_run_at, ctx.now);
    let live = live_figures(ctx, day);
    let rows: Vec<StatusRow> = ledgers
        .iter()
        .map(|l: &Ledger| StatusRow {
            extension: l.extension.to_string(),
            name: users
                .iter()
                .find(|u| u.extension == l.extension)
                .map(|u| u.name.clone())
                .unwrap_or_default(),
            day: l.day,
            allowance_s: l.allowance_s(),
            used_s: l.used_s,
            remaining_s: l.remaining_s(),
            level: l.level,
            blocked: l.blocked,
            base_s: l.base_s,
            carried_in_s: l.carried_in_s,
            granted_s: l.granted_s,
            closed: l.closed,
            last_run_at: last_run_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)),
            stale,
            live_used_s: live
                .as_ref()
                .map(|(c, t)| crate::live::seconds(crate::live::figures(c, t, day, l.extension.as_str()).used_ms)),
            reserved_s: live
                .as_ref()
                .map(|(c, t)| crate::live::seconds(crate::live::figures(c, t, day, l.extension.as_str()).reserved_ms)),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{}", freshness_line(ctx, day, last_run_at));
    let live_header = if live.is_some() {
        format!(" {:>12} {:>12}", "LIVE USED", "IN CALLS")
    } else {
        String::new()
    };
    println!(
        "{:<8} {:<24} {:<10} {:>12} {:>12} {:>12}{live_header} {:>5}  STATE",
        "EXT", "NAME", "DAY", "ALLOWANCE", "USED", "REMAINING", "LEVEL"
    );
    for r in &rows {
        let live_columns = match (r.live_used_s, r.reserved_s) {
            (Some(used), Some(reserved)) => format!(" {:>12} {:>12}", human(used), human(reserved)),
            _ => String::new(),
        };
        println!(
            "{:<8} {:<24} {:<10} {:>12} {:>12} {:>12}{live_columns} {:>4}%  {}",
            r.extension,
            r.name.chars().take(24).collect::<String>(),
            r.day,
            human(r.allowance_s),
            human(r.used_s),
            human(r.remaining_s),
            r.level,
            if r.blocked { "BLOCKED" } else { "ok" }
        );
    }
    if rows.is_empty() {
        println!("(no tracked users on {day})");
    }
    Ok(())
}

type LiveFigures = (
    std::collections::BTreeMap<(NaiveDate, String), crate::live::Counters>,
    std::collections::BTreeSet<String>,
);

/// The live guard's counters for `day` (today only: other days' counters
/// are gone or final in the CDR), or `None` when the guard is off or
/// Asterisk does not answer (said on stderr; the CDR figures still show).
fn live_figures(ctx: &Context, day: NaiveDate) -> Option<LiveFigures> {
    let settings = &ctx.config.dialplan;
    if !settings.live || settings.asterisk_cli.is_empty() || day != ctx.today() {
        return None;
    }
    match crate::reload::live_figures(settings) {
        Ok((counters, groups)) => Some((crate::live::parse_counters(&counters), crate::live::talking(&groups))),
        Err(e) => {
            eprintln!("callquota: note: live figures unavailable (showing the CDR's only): {e:#}");
            None
        }
    }
}

/// The status header: the day, and how fresh the figures are.
fn freshness_line(ctx: &Context, day: NaiveDate, last_run_at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    let zone = ctx.config.timezone;
    let Some(at) = last_run_at else {
        return format!(
            "{day} ({zone}); STALE: no successful run yet: run `sudo -u callquota callquota run`, then `callquota check`"
        );
    };
    let ago = human((ctx.now - at).num_seconds().max(0) as u64);
    let when = at.with_timezone(&zone).format("%Y-%m-%d %H:%M");
    if policy::is_stale(Some(at), ctx.now) {
        format!(
            "{day} ({zone}); STALE: the last successful run was at {when}, {ago} ago; runs are failing \
             (see cron mail, or `callquota check`)"
        )
    } else {
        format!("{day} ({zone}); last successful run {when} ({ago} ago)")
    }
}

pub fn log(ctx: &Context, args: &LogArgs) -> Result<()> {
    let state = State::open(&ctx.config.state_db)?;
    let entries = state.audit_entries(args.ext.as_ref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    let zone = ctx.config.timezone;
    for e in &entries {
        // Stored as RFC 3339 UTC; shown in the site's zone, with its offset (DST is unambiguous).
        let at = match chrono::DateTime::parse_from_rfc3339(&e.at) {
            Ok(t) if !args.utc => t.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S%:z").to_string(),
            _ => e.at.clone(),
        };
        println!(
            "{}  {:<8} {:<10} {:<18} {}",
            at,
            e.extension.as_deref().unwrap_or("-"),
            e.day.as_deref().unwrap_or("-"),
            e.event,
            e.detail
        );
    }
    Ok(())
}

pub fn render(ctx: &Context) -> Result<()> {
    let state = State::open(&ctx.config.state_db)?;
    let plan = projected(ctx, &state)?;
    let (text, _, _) = desired_include(ctx, &state, &plan.today)?;
    print!("{text}");
    Ok(())
}

#[derive(Serialize)]
struct Classified<'a> {
    number: &'a str,
    paid: bool,
    direction: Option<&'a str>,
    pattern: Option<&'a str>,
}

pub fn classify(ctx: &Context, args: &ClassifyArgs) -> Result<()> {
    let results: Vec<Classified<'_>> = args
        .numbers
        .iter()
        .map(|number| {
            let found = ctx.config.paid.classify(number);
            Classified {
                number,
                paid: found.is_some(),
                direction: found.map(|m| m.direction.name.as_str()),
                pattern: found.map(|m| m.pattern.as_str()),
            }
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    for r in &results {
        let number = r.number.escape_debug();
        match (r.direction, r.pattern) {
            (Some(d), Some(p)) => println!("{number}: paid (direction {d}, pattern {p})"),
            _ => println!("{number}: not paid (no pattern matches)"),
        }
    }
    Ok(())
}
