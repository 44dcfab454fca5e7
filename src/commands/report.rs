//! Read-only commands: `status`, `log`, `render`, `classify`.

use crate::values::text::escape_controls;
use anyhow::Result;
use chrono::NaiveDate;
use serde::Serialize;

use super::context::Context;
use super::run::desired_include;
use crate::adapters::state::State;
use crate::cli::{ClassifyArgs, LogArgs, StatusArgs};
use crate::core::policy::{self, Ledger, Plan, Usage};
use crate::values::duration::format as human;

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
    // `used_s` includes late rows charged to the day, which plan_run adds itself.
    let usage_of = |ledgers: &[Ledger]| {
        let mut usage = Usage::new();
        for l in ledgers {
            let own = l.used_s.saturating_sub(l.late_in_s);
            usage.entry(l.day).or_default().insert(l.extension.clone(), own);
        }
        usage
    };
    let by_direction = snapshot
        .directions
        .iter()
        .map(|(name, d)| (name.clone(), usage_of(&d.ledgers)))
        .collect();
    Ok(policy::plan_run_all(
        &ctx.config.rules,
        ctx.today(),
        &snapshot,
        &usage_of(&snapshot.ledgers),
        &by_direction,
    )?)
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
    /// When a run first blocked the user that day while it was open (RFC
    /// 3339; null: never). The one definition of a blocked day (`core::blocked`).
    blocked_at: Option<String>,
    base_s: u64,
    carried_in_s: u64,
    granted_s: u64,
    closed: bool,
    /// Whole percent of the allowance used (rounded down).
    percent_used: u64,
    /// When the last successful run finished (RFC 3339), if ever.
    last_run_at: Option<String>,
    /// No successful run for more than 15 minutes: the figures may be out of date.
    stale: bool,
    /// Today: whether Asterisk confirmed the include file's current
    /// generation (false: `NOT LIVE`); null for other days.
    dialplan_confirmed: Option<bool>,
    /// The live guard's figures, when Asterisk answers (else null): the talk
    /// time Asterisk measured today, and what calls in progress hold.
    live_used_s: Option<u64>,
    reserved_s: Option<u64>,
    /// What a paid call could talk right now, as the live guard and the
    /// balance code work it out (whole seconds, rounded down), when
    /// Asterisk answers (else null).
    live_remaining_s: Option<u64>,
    /// The user's monthly limit (null without one), what the month has
    /// charged through this day, and what it leaves after this day's usage.
    monthly_limit_s: Option<u64>,
    month_used_s: Option<u64>,
    month_left_s: Option<u64>,
    /// The month's limit, not the day's figures, set this day's allowance.
    month_capped: bool,
    /// The user's direction allowances that day (`user set --limit`), one
    /// object each; empty for a user with only the shared allowance.
    directions: Vec<DirectionRow>,
}

/// One direction allowance's figures in `status --json`.
#[derive(Serialize)]
struct DirectionRow {
    direction: String,
    allowance_s: u64,
    used_s: u64,
    remaining_s: u64,
    level: u8,
    blocked: bool,
    base_s: u64,
    carried_in_s: u64,
    granted_s: u64,
    percent_used: u64,
    live_used_s: Option<u64>,
    live_remaining_s: Option<u64>,
}

pub fn status(ctx: &Context, args: &StatusArgs) -> Result<()> {
    let state = State::open(&ctx.config.state_db)?;
    let day = args.day.unwrap_or_else(|| ctx.today());
    let (ledgers, direction_ledgers) = if day == ctx.today() {
        let plan = projected(ctx, &state)?;
        let directions: Vec<(String, Ledger)> = plan
            .directions
            .iter()
            .flat_map(|(name, d)| d.today.iter().map(move |l| (name.clone(), l.clone())))
            .collect();
        (plan.today, directions)
    } else {
        (state.ledgers_on(day)?, state.direction_ledgers_on(day)?)
    };
    let users = state.users()?;
    let last_run_at = ctx.last_run_at(&state)?;
    let stale = policy::is_stale(last_run_at, ctx.now);
    let live = live_figures(ctx, day);
    let lag = if day == ctx.today() {
        super::run::dialplan_lag(&state)?
    } else {
        None
    };
    let blocked = state.blocked_days(ctx.config.timezone, day, day)?;
    let blocked_at = |l: &Ledger| blocked.get(&(l.extension.to_string(), l.day)).copied();
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
            blocked_at: blocked_at(l).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            base_s: l.base_s,
            carried_in_s: l.carried_in_s,
            granted_s: l.granted_s,
            closed: l.closed,
            percent_used: crate::views::status::percent_used(l.used_s, l.allowance_s()),
            last_run_at: last_run_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)),
            stale,
            dialplan_confirmed: (day == ctx.today()).then_some(lag.is_none()),
            live_used_s: live.as_ref().map(|(c, t)| {
                crate::core::live::seconds(crate::core::live::figures(c, t, day, l.extension.as_str()).used_ms)
            }),
            reserved_s: live.as_ref().map(|(c, t)| {
                crate::core::live::seconds(crate::core::live::figures(c, t, day, l.extension.as_str()).reserved_ms)
            }),
            live_remaining_s: live.as_ref().map(|(c, t)| {
                let figures = crate::core::live::figures(c, t, day, l.extension.as_str());
                crate::core::live::left_ms(&policy::access(l), figures) / 1000
            }),
            monthly_limit_s: l.monthly_limit_s,
            month_used_s: l.monthly_limit_s.map(|_| l.month_used_s()),
            month_left_s: l.monthly_limit_s.map(|limit| limit.saturating_sub(l.month_used_s())),
            month_capped: l.month_capped(),
            directions: direction_ledgers
                .iter()
                .filter(|(_, d)| d.extension == l.extension)
                .map(|(name, d)| {
                    let counters = live
                        .as_ref()
                        .map(|(c, t)| crate::core::live::figures(c, t, day, &format!("{}-{name}", d.extension)));
                    DirectionRow {
                        direction: name.clone(),
                        allowance_s: d.allowance_s(),
                        used_s: d.used_s,
                        remaining_s: d.remaining_s(),
                        level: d.level,
                        blocked: d.blocked,
                        base_s: d.base_s,
                        carried_in_s: d.carried_in_s,
                        granted_s: d.granted_s,
                        percent_used: crate::views::status::percent_used(d.used_s, d.allowance_s()),
                        live_used_s: counters.map(|c| crate::core::live::seconds(c.used_ms)),
                        live_remaining_s: counters.map(|c| crate::core::live::left_ms(&policy::access(d), c) / 1000),
                    }
                })
                .collect(),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    use crate::views::status::{RowState, Style, ViewRow};
    let zone = ctx.config.timezone;
    let mut view: Vec<ViewRow> = rows
        .iter()
        .zip(&ledgers)
        .map(|(r, l)| ViewRow {
            extension: r.extension.clone(),
            name: r.name.clone(),
            allowance_s: r.allowance_s,
            used_s: r.used_s,
            remaining_s: r.remaining_s,
            carried_in_s: r.carried_in_s,
            granted_s: r.granted_s,
            // A closed day's state is what happened while it was open: blocked
            // at the end only if a run had blocked the user during the day.
            state: match (r.closed, r.blocked, blocked_at(l)) {
                (false, true, _) | (true, true, Some(_)) => RowState::Blocked,
                _ => RowState::Ok,
            },
            live: r.live_used_s.zip(r.reserved_s),
            no_figures: false,
            blocked_at: blocked_at(l).map(|t| t.with_timezone(&zone).format("%H:%M").to_string()),
            over_at_close: r.closed && r.blocked && blocked_at(l).is_none(),
        })
        .collect();
    for u in users.iter().filter(|u| !u.active) {
        match view.iter_mut().find(|v| v.extension == u.extension.as_str()) {
            Some(v) => v.state = RowState::Disabled,
            None => view.push(ViewRow {
                extension: u.extension.to_string(),
                name: u.name.clone(),
                allowance_s: 0,
                used_s: 0,
                remaining_s: 0,
                carried_in_s: 0,
                granted_s: 0,
                state: RowState::Disabled,
                live: None,
                no_figures: true,
                blocked_at: None,
                over_at_close: false,
            }),
        }
    }
    crate::views::status::sort(&mut view, args.sort);
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    let style = Style {
        unicode: terminal && !args.ascii,
        color: terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    print!(
        "{}",
        crate::views::status::render(&freshness_line(ctx, day, last_run_at), &view, style)
    );
    if let Some(lag) = &lag {
        println!("{lag}");
    }
    if rows.is_empty() {
        println!("(no tracked users on {day})");
    }
    // One more line per direction allowance and per monthly allowance, below the day's table.
    for r in &rows {
        for d in &r.directions {
            println!(
                "{} {}: used {} of {} ({}%), {} left{}",
                r.extension,
                d.direction,
                human(d.used_s),
                human(d.allowance_s),
                d.percent_used,
                human(d.remaining_s),
                if d.blocked { "; blocked" } else { "" }
            );
        }
    }
    for r in &rows {
        if let (Some(limit), Some(used)) = (r.monthly_limit_s, r.month_used_s) {
            println!(
                "{} month {}: used {} of {} ({}%), {} left{}",
                r.extension,
                crate::core::month::month_key(day),
                human(used),
                human(limit),
                crate::views::status::percent_used(used, limit),
                human(limit.saturating_sub(used)),
                if r.month_capped {
                    "; the month sets today's allowance"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

type LiveFigures = (
    std::collections::BTreeMap<(NaiveDate, String), crate::core::live::Counters>,
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
    match crate::adapters::asterisk::live_figures(settings) {
        Ok((counters, groups)) => Some((
            crate::core::live::parse_counters(&counters),
            crate::core::live::talking(&groups),
        )),
        Err(e) => {
            eprintln!(
                "callquota: note: live figures unavailable (showing the CDR's only): {}",
                escape_controls(&format!("{e:#}"))
            );
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
    let zone = ctx.config.timezone;
    for event in &args.events {
        if !crate::adapters::state::AUDIT_EVENTS.contains(&event.as_str()) {
            return Err(crate::exit::UsageError(format!(
                "--event {}: no such event; the events are {}",
                event.escape_debug(),
                crate::adapters::state::AUDIT_EVENTS.join(", ")
            ))
            .into());
        }
    }
    let start = |d: NaiveDate| crate::core::calendar::day_start(d, zone);
    let filter = crate::adapters::state::AuditFilter {
        extension: args.ext.clone(),
        from: args.day.or(args.since).map(start),
        until: args.day.map(|d| start(crate::core::calendar::next_day(d))),
        events: args.events.clone(),
        limit: args.limit,
    };
    let state = State::open(&ctx.config.state_db)?;
    let entries = state.audit_entries(&filter)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    for e in &entries {
        // Stored as RFC 3339 UTC; shown in the site's zone, with its offset (DST is unambiguous).
        let at = match chrono::DateTime::parse_from_rfc3339(&e.at) {
            Ok(t) if !args.utc => t.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S%:z").to_string(),
            _ => e.at.clone(),
        };
        println!(
            "{}  {:<8} {:<10} {:<18} {:<12} {}",
            at,
            e.extension.as_deref().unwrap_or("-"),
            e.day.as_deref().unwrap_or("-"),
            e.event,
            // Details quote Asterisk's and servers' replies: escaped.
            escape_controls(e.actor.as_deref().unwrap_or("-")),
            escape_controls(&e.detail)
        );
    }
    Ok(())
}

/// `report`: each user's sums over a month or a period, from the state alone.
/// `html`: `--html`'s file, prepared before the switch to the state's owner.
pub fn period_report(
    ctx: &Context,
    args: &crate::cli::ReportArgs,
    html: Option<crate::adapters::person_file::PersonFile>,
) -> Result<()> {
    let today = ctx.today();
    use crate::core::month::{month_end, month_start};
    let (from, to) = match (args.month, args.from, args.to) {
        (Some(month), _, _) => (month_start(month), month_end(month)),
        (None, Some(from), to) => (from, to.unwrap_or(today)),
        _ => (month_start(today), today),
    };
    if to < from {
        return Err(crate::exit::UsageError(format!("--to {to} is before --from {from}")).into());
    }
    let state = State::open(&ctx.config.state_db)?;
    let blocked = state.blocked_days(ctx.config.timezone, from, to)?;
    let mut users = state.period(from, to)?;
    let direction_blocked =
        crate::core::blocked::blocked_days(ctx.config.timezone, &state.direction_block_events(from, to)?);
    for u in &mut users {
        u.days_blocked = blocked.keys().filter(|(ext, _)| *ext == u.extension).count() as u64;
        for d in &mut u.directions {
            d.days_blocked = direction_blocked
                .keys()
                .filter(|((ext, name), _)| *ext == u.extension && *name == d.direction)
                .count() as u64;
        }
    }
    let report = crate::views::period::report(from, to, users);
    let made = ctx
        .now
        .with_timezone(&ctx.config.timezone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string();
    if let Some(file) = html {
        let mut days = state.daily(from, to)?;
        for d in &mut days {
            d.blocked = blocked.contains_key(&(d.extension.clone(), d.day));
        }
        let page = crate::views::html_report::render(&report, &days, &made);
        let path = file.path().to_path_buf();
        file.write(&page)?;
        eprintln!("wrote {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.csv {
        print!("{}", crate::views::period::render_csv(&report));
    } else {
        print!("{}", crate::views::period::render_text(&report, &made));
    }
    Ok(())
}

pub fn render(ctx: &Context) -> Result<()> {
    let state = State::open(&ctx.config.state_db)?;
    let plan = projected(ctx, &state)?;
    let (text, _, _) = desired_include(ctx, &state, &plan)?;
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
