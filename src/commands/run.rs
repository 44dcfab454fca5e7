//! `run` and `grant`: lock → state → CDR → plan → store → include file → reload.

use crate::values::text::escape_controls;
use anyhow::{Context as _, Result, anyhow};
use chrono::NaiveDate;

use super::context::Context;
use crate::adapters::asterisk::{confirm_hook_is_ours, loaded_generation, reload_and_confirm};
use crate::adapters::cdr::Cdr;
use crate::adapters::include_file;
use crate::adapters::lock;
use crate::adapters::state::{EarlySnapshot, State};
use crate::adapters::trace;
use crate::cli::{GrantArgs, RunArgs};
use crate::config::Flavor;
use crate::core::dialplan::{Days, DirectionDays, generation_in, render};
use crate::core::policy::{self, Access, Ledger, Plan, Usage};
use crate::core::usage::Tally;
use crate::exit::UsageError;
use crate::values::duration::format as human;

const INCLUDE_GENERATION: &str = "include_generation";
/// `meta` key: the latest closed day a successful run read after its settle
/// deadline (rows that arrived while runs failed are still charged).
const SETTLED_DAY: &str = "settled_day";
/// `meta` key: the first day whose live counters Asterisk still keeps.
const LIVE_COUNTERS_FROM: &str = "live_counters_from";
const CONFIRMED_GENERATION: &str = "confirmed_generation";

pub fn run_command(ctx: &Context, args: &RunArgs) -> Result<()> {
    if args.dry_run {
        return dry_run(ctx);
    }
    let _lock = lock::try_acquire(&ctx.config.lock_file)?;
    trace::mark("locked");
    // An explicit run may start a site's state; cron's (--if-configured) never does.
    if !args.if_configured {
        State::create_if_missing(&ctx.config.state_db)?;
    }
    let ran = run_locked(ctx, args.force)?;
    if args.verbose {
        println!("{}", escape_controls(&ran.summary));
    }
    ran.mail.map(drop)
}

pub fn grant(ctx: &Context, args: &GrantArgs) -> Result<()> {
    let mut state = State::open(&ctx.config.state_db)?;
    let user = state.user(&args.extension)?.ok_or_else(|| {
        UsageError(format!(
            "unknown extension {}; see `callquota user list`",
            args.extension
        ))
    })?;
    if args.seconds == 0 {
        return Err(UsageError("a grant must be more than 0 seconds".into()).into());
    }
    if args.reason.chars().any(crate::values::text::needs_escape) || args.reason.chars().count() > 200 {
        return Err(UsageError(
            "--reason must be printable text of at most 200 characters (no control, bidi or zero-width characters)"
                .into(),
        )
        .into());
    }
    if let Some(by) = &args.by {
        crate::values::contact::validate_name(by).map_err(|e| UsageError(format!("--by: {e}")))?;
    }
    if let Some(direction) = &args.direction
        && !user.direction_limits.contains_key(direction)
    {
        return Err(UsageError(format!(
            "{} has no {direction} allowance; give one with `callquota user set {} --limit {direction}=DURATION`, \
             or grant to the shared allowance without --direction",
            user.extension, user.extension
        ))
        .into());
    }
    let today = ctx.today();
    let stored = state.add_grant(
        &user.extension,
        today,
        args.direction.as_deref(),
        args.seconds,
        &args.reason,
        args.by.as_deref(),
        ctx.now,
    )?;
    if let Err(open_day) = stored {
        return Err(anyhow!(
            "nothing granted: {today} was closed by a run while the grant waited (it is {open_day} now); \
             run the grant again to give {} for {open_day}",
            human(args.seconds)
        ));
    }
    drop(state);
    let applied =
        lock::acquire_within(&ctx.config.lock_file, lock::ADMIN_PATIENCE).and_then(|_lock| run_locked(ctx, false));
    match applied {
        Ok(ran) => {
            println!(
                "granted {}{} to {} for {today}; applied",
                human(args.seconds),
                args.direction
                    .as_deref()
                    .map(|d| format!(" of {d}"))
                    .unwrap_or_default(),
                user.extension
            );
            // A spent month caps the day whatever is granted: say so.
            if args.direction.is_none()
                && let Ok(state) = State::open(&ctx.config.state_db)
                && let Ok(ledgers) = state.ledgers_on(today)
                && let Some(l) = ledgers
                    .iter()
                    .find(|l| l.extension == user.extension && l.month_capped())
            {
                eprintln!(
                    "callquota: warning: {}'s monthly limit leaves {} for today, so the grant adds nothing beyond \
                     that; raise it with `callquota user set {} --monthly-limit DURATION`",
                    user.extension,
                    human(l.allowance_s()),
                    user.extension
                );
            }
            // The grant is in the ledger and the dialplan: a mail problem does not undo it.
            if let Err(e) = ran.mail {
                eprintln!("callquota: warning: {}", escape_controls(&format!("{e:#}")));
            }
            Ok(())
        }
        Err(e) => Err(e.context(format!(
            "granted {} to {} for {today} (recorded; it applies at the next run), but the run failed",
            human(args.seconds),
            user.extension
        ))),
    }
}

/// Opens the state and reads the CDR usage since the start of the oldest day
/// the run must evaluate. Today's calls are read on their own thread from the
/// first moment (they are needed by every run), while the state opens and an
/// early snapshot is read; only a run that closes earlier days then asks for
/// those days too, on the same connection. So a run costs little more than the
/// CDR query itself, and its MySQL work is at most two range queries.
fn open_and_read(ctx: &Context, force: bool) -> Result<(State, Read)> {
    let config = &ctx.config;
    let clock = config.cdr_clock();
    // The whole of today's calldate window, never "up to now": in the hour a
    // DST fall-back repeats, local now goes back and a bound at now would drop
    // calls already counted. Rows from the future cannot be in the CDR anyway.
    let (today_start, until) = clock.window(ctx.today());
    let rule = config.usage_rule();
    let panicked = |_| anyhow!("internal: the CDR reader thread panicked");
    std::thread::scope(|scope| {
        let reading_today = scope.spawn(|| -> Result<(Cdr, Tally)> {
            let mut cdr = Cdr::connect(&config.cdr)?;
            trace::mark("CDR connected");
            let mut tally = Tally::default();
            cdr.tally(&clock, &rule, today_start, until, &mut tally)?;
            trace::mark("CDR rows of today read");
            Ok((cdr, tally))
        });
        let state = State::open(&config.state_db)?;
        trace::mark("state opened");
        let open_day = state.open_day()?;
        policy::check_clock_jump(open_day, ctx.today(), config.rules.max_jump_days, force)?;
        let days = policy::days_to_evaluate(open_day, state.first_since()?, ctx.today())?;
        let early = state.early_snapshot()?;
        // The run holds the lock, so nothing else rewrites it before sync_dialplan.
        // A failure here is the dialplan step's, after the plan is stored.
        let include = include_file::find(&config.dialplan.include_file);
        trace::mark("state snapshot and include file read");
        let (mut cdr, mut tally) = reading_today.join().map_err(panicked)??;
        trace::mark("CDR reader joined");
        // Earlier days to read: those to close, and the day before them while
        // it may still get late rows (their increase is charged to the open day).
        let mut from = clock.window(days[0]).0;
        let settling = crate::core::calendar::previous_day(days[0]);
        let closed: Vec<&policy::Ledger> = early
            .snapshot()
            .ledgers
            .iter()
            .filter(|l| l.day == settling && l.closed)
            .collect();
        let mut settled = None;
        if !closed.is_empty() {
            let settle = policy::settle_period(&closed, config.dialplan.cap_calls);
            let open = policy::still_settling(ctx.now, settling, config.timezone, settle);
            // Past its deadline a day is read once more by a successful run, so
            // rows that arrived while runs failed (a rotated CDR password) count.
            let read_after_deadline = state.day_meta(SETTLED_DAY)? >= Some(settling);
            if open || !read_after_deadline {
                from = clock.window(settling).0;
                settled = (!open).then_some(settling);
            }
        }
        if from < today_start {
            cdr.tally(&clock, &rule, from, today_start, &mut tally)?;
        }
        let (usage, by_direction) = tally.finish_by_direction();
        Ok((
            state,
            Read {
                usage,
                by_direction,
                early,
                settled,
                include,
            },
        ))
    })
}

/// What a run read before it decides.
struct Read {
    usage: Usage,
    /// The same per direction (for the users with direction allowances).
    by_direction: policy::DirectionUsage,
    early: EarlySnapshot,
    /// A closed day read after its settle deadline: once the plan is stored,
    /// it is settled for good.
    settled: Option<NaiveDate>,
    /// The include file as found (read while the CDR streams).
    include: Result<Option<include_file::Existing>>,
}

/// What a run did: an error here means the state or the dialplan is not
/// current; mail is reported on its own, as it never undoes either.
struct Ran {
    summary: String,
    mail: Result<String>,
}

fn run_locked(ctx: &Context, force: bool) -> Result<Ran> {
    // A failed CDR read returns here: no state change, include file untouched.
    let (
        mut state,
        Read {
            usage,
            by_direction,
            early,
            settled,
            include,
        },
    ) = open_and_read(ctx, force)?;
    trace::mark("CDR usage summed");
    state.queue_digests(ctx.config.mail.as_ref().is_some_and(|m| !m.digest_to.is_empty()));
    crate::adapters::crashpoint::reached("after-cdr-read");
    let today = ctx.today();
    let plan = state.plan_and_apply(ctx.now, Some(early), |snapshot| {
        unknown_directions(ctx, snapshot)?;
        Ok(policy::plan_run_all(
            &ctx.config.rules,
            today,
            snapshot,
            &usage,
            &by_direction,
        )?)
    })?;
    crate::adapters::crashpoint::reached("after-state-commit");
    trace::mark("planned and stored");
    // Mail comes last and never holds up a block; a dialplan failure does not hold up mail.
    let dialplan = include.and_then(|existing| sync_dialplan(ctx, &state, &plan, existing.as_ref()));
    trace::mark("include file synced");
    let mail = super::mail::deliver(ctx, &mut state, super::mail::Which::Due);
    trace::mark("mail done");
    let dialplan = dialplan?;
    // Once the plan and the dialplan are in place (a crash or a failure before
    // this only makes the next run read the day once more).
    if let Some(day) = settled {
        state.set_day_meta(SETTLED_DAY, day)?;
    }
    // The figures and the dialplan are current: `status` and `check` go by
    // this (kept in the lock file, so a steady-state run writes no state).
    lock::record_success(&ctx.config.lock_file, ctx.now)?;
    trace::mark("success recorded");
    let settings = &ctx.config.dialplan;
    // Counters of days before yesterday are never read again (yesterday's
    // calls still talking hold reservations the check counts). Each run asks
    // until one has deleted them for the day: a run that failed or was killed
    // after closing the day cannot leave them to pile up; later runs of the
    // day only read the `meta` mark.
    if settings.live
        && !settings.asterisk_cli.is_empty()
        && let Some(keep_from) = today.pred_opt()
        && state.day_meta(LIVE_COUNTERS_FROM)? < Some(keep_from)
    {
        match crate::adapters::asterisk::forget_live_days_before(settings, keep_from) {
            Ok(_) => state.set_day_meta(LIVE_COUNTERS_FROM, keep_from)?,
            Err(e) => eprintln!(
                "callquota: warning: could not delete the live counters of past days: {}",
                escape_controls(&format!("{e:#}"))
            ),
        }
    }
    let summary = format!(
        "{today}: {} users, {} blocked, {} ledger changes, {} notices queued; {dialplan}; {}",
        plan.today.len(),
        plan.today.iter().filter(|l| l.blocked).count(),
        plan.ledgers.len() + plan.directions.values().map(|d| d.ledgers.len()).sum::<usize>(),
        plan.notices.len() + plan.directions.values().map(|d| d.notices.len()).sum::<usize>(),
        mail.as_deref().unwrap_or("mail failed")
    );
    Ok(Ran { summary, mail })
}

/// A direction allowance whose `[[direction]]` is gone from the config (renamed
/// or removed) could no longer be told apart, so it would limit nothing: the
/// run fails, naming the fix, and the include file keeps the last one made
/// with that direction.
fn unknown_directions(ctx: &Context, snapshot: &policy::Snapshot) -> Result<()> {
    let known = |name: &str| ctx.config.paid.directions().iter().any(|d| d.name == name);
    for member in &snapshot.members {
        if let Some(name) = member.direction_limits.keys().find(|name| !known(name)) {
            return Err(anyhow!(
                "{} has a {name} allowance but the config has no [[direction]] named {name:?}; restore that \
                 direction in {}, or remove the allowance: callquota user set {} --limit {name}=none",
                member.extension,
                ctx.config.path.display(),
                member.extension
            ));
        }
    }
    Ok(())
}

fn dry_run(ctx: &Context) -> Result<()> {
    let (
        state,
        Read {
            usage, by_direction, ..
        },
    ) = open_and_read(ctx, true)?;
    let plan = policy::plan_run_all(
        &ctx.config.rules,
        ctx.today(),
        &state.snapshot()?,
        &usage,
        &by_direction,
    )?;
    print_plan(&plan);
    let (_, generation, changed) = desired_include(ctx, &state, &plan)?;
    println!(
        "include file {}: {}",
        ctx.config.dialplan.include_file.display(),
        if changed {
            format!("would be rewritten as generation {generation}")
        } else {
            "unchanged".into()
        }
    );
    Ok(())
}

/// `disarm`: replace the include with one that limits nothing and reload.
/// Package removal runs it, so uninstalling never leaves users blocked and a
/// `#include` of the file never breaks the dialplan. A reload failure (Asterisk
/// not running) is reported but not an error: the file takes effect at its start.
pub fn disarm(ctx: &Context) -> Result<()> {
    let settings = &ctx.config.dialplan;
    let _lock = lock::acquire_within(&ctx.config.lock_file, lock::ADMIN_PATIENCE)?;
    let state = State::open(&ctx.config.state_db)?;
    let on_disk = include_file::read(&settings.include_file)?
        .as_deref()
        .and_then(generation_in);
    let generation = on_disk
        .unwrap_or(0)
        .max(meta_number(&state, INCLUDE_GENERATION)?.unwrap_or(0))
        .saturating_add(1);
    include_file::write_atomically(&settings.include_file, &crate::core::dialplan::render_inert(generation))?;
    let path = settings.include_file.display();
    state.record_meta_event(
        INCLUDE_GENERATION,
        &generation.to_string(),
        "include_disarmed",
        &format!("{path} generation {generation}: limits nothing"),
        ctx.now,
    )?;
    match reload_and_confirm(settings, generation) {
        Ok(summary) => {
            record_confirmed(ctx, &state, generation, &summary)?;
            println!("{path} disarmed: it limits nothing; {}", escape_controls(&summary));
        }
        Err(e) => println!(
            "{path} disarmed: it limits nothing; the reload did not happen ({}): Asterisk picks the file up at its next reload or start",
            escape_controls(&format!("{e:#}"))
        ),
    }
    Ok(())
}

/// `rewind`: undo the days a wrong clock ran ahead, then run on the real one.
pub fn rewind(ctx: &Context) -> Result<()> {
    let _lock = lock::acquire_within(&ctx.config.lock_file, lock::ADMIN_PATIENCE)?;
    let mut state = State::open(&ctx.config.state_db)?;
    match state.rewind_to(ctx.today(), ctx.now)? {
        None => println!(
            "the state is not ahead of the clock ({}); nothing to rewind",
            ctx.today()
        ),
        Some(summary) => {
            drop(state);
            println!("{summary}");
            let ran =
                run_locked(ctx, false).context("rewound, but the run that follows failed; run `callquota run`")?;
            println!("ran for {}", ctx.today());
            ran.mail.map(drop)?;
        }
    }
    Ok(())
}

fn print_plan(plan: &Plan) {
    print_allowance_plan(plan, "");
    for (direction, sub) in &plan.directions {
        print_allowance_plan(sub, &format!(" {direction}"));
    }
    let quiet = |p: &Plan| p.ledgers.is_empty() && p.notices.is_empty();
    if quiet(plan) && plan.directions.values().all(quiet) {
        println!("no state changes");
    }
}

fn print_allowance_plan(plan: &Plan, direction: &str) {
    for l in &plan.ledgers {
        println!(
            "ledger {} {}{direction}: allowance {}, used {}, level {}%, {}{}",
            l.extension,
            l.day,
            human(l.allowance_s()),
            human(l.used_s),
            l.level,
            if l.blocked { "blocked" } else { "allowed" },
            if l.closed { ", closed" } else { "" }
        );
    }
    for n in &plan.notices {
        println!("notice {} {}{direction}: reached {}%", n.extension, n.day, n.threshold);
    }
}

pub fn access_list(today: &[Ledger]) -> Vec<(crate::values::extension::Extension, Access)> {
    today.iter().map(|l| (l.extension.clone(), policy::access(l))).collect()
}

/// The include file the state asks for: its text, generation, and whether it
/// differs from the file on disk. The generation only moves when the content does.
pub fn desired_include(ctx: &Context, state: &State, plan: &Plan) -> Result<(String, u64, bool)> {
    let existing = include_file::read(&ctx.config.dialplan.include_file)?;
    desired_include_over(ctx, state, plan, existing.as_deref())
}

/// [`desired_include`] against `existing`, the file as a run read it.
fn desired_include_over(
    ctx: &Context,
    state: &State,
    plan: &Plan,
    existing: Option<&str>,
) -> Result<(String, u64, bool)> {
    let settings = &ctx.config.dialplan;
    let options = settings.options(ctx.config.timezone.name());
    let access = access_list(&plan.today);
    let direction_access: Vec<(&str, Vec<_>, &[_])> = plan
        .directions
        .iter()
        .filter(|(_, d)| !d.today.is_empty() || !d.tomorrow.is_empty())
        .map(|(name, d)| (name.as_str(), access_list(&d.today), d.tomorrow.as_slice()))
        .collect();
    let directions: Vec<DirectionDays<'_>> = direction_access
        .iter()
        .map(|(name, today, tomorrow)| DirectionDays { name, today, tomorrow })
        .collect();
    let days = Days {
        day: ctx.today(),
        today: &access,
        tomorrow: &plan.tomorrow,
        directions: &directions,
    };
    let on_disk = existing.and_then(generation_in);
    if let (Some(text), Some(generation)) = (existing, on_disk) {
        let same = render(&options, &ctx.config.paid, &days, generation);
        if same == text {
            return Ok((same, generation, false));
        }
    }
    let stored = meta_number(state, INCLUDE_GENERATION)?;
    let generation = on_disk.unwrap_or(0).max(stored.unwrap_or(0)).saturating_add(1);
    Ok((render(&options, &ctx.config.paid, &days, generation), generation, true))
}

/// When the include file's generation is not the one Asterisk was last seen
/// with (a reload failed, or a run found Asterisk without it): the line
/// `status` prints, since until a run mends it the file limits nothing.
pub fn dialplan_lag(state: &State) -> Result<Option<String>> {
    let written = meta_number(state, INCLUDE_GENERATION)?;
    let confirmed = meta_number(state, CONFIRMED_GENERATION)?;
    Ok(match (written, confirmed) {
        (Some(written), confirmed) if confirmed != Some(written) => Some(format!(
            "NOT LIVE: Asterisk has not confirmed generation {written} of the include file (last confirmed: {}), \
             so the blocks above may not apply; see `callquota log --event reload_failed --event generation_lost` \
             and run `sudo -u callquota callquota run --verbose`",
            match confirmed {
                Some(0) | None => "none".to_string(),
                Some(g) => format!("generation {g}"),
            }
        )),
        _ => None,
    })
}

fn meta_number(state: &State, key: &str) -> Result<Option<u64>> {
    state
        .meta(key)?
        .map(|v| {
            v.parse::<u64>()
                .with_context(|| format!("meta {key} in {} is corrupt", state.path().display()))
        })
        .transpose()
}

/// Asterisk confirmed `generation` live: remember it, with its audit entry.
fn record_confirmed(ctx: &Context, state: &State, generation: u64, summary: &str) -> Result<()> {
    state.record_meta_event(
        CONFIRMED_GENERATION,
        &generation.to_string(),
        "reload_ok",
        summary,
        ctx.now,
    )
}

/// Writes the include file when its bytes change, and reloads when it changed
/// or the last reload was not confirmed.
fn sync_dialplan(
    ctx: &Context,
    state: &State,
    plan: &Plan,
    existing: Option<&include_file::Existing>,
) -> Result<String> {
    let settings = &ctx.config.dialplan;
    let (text, generation, changed) = desired_include_over(ctx, state, plan, existing.map(|e| e.text.as_str()))?;
    if changed {
        include_file::write_atomically(&settings.include_file, &text)?;
        crate::adapters::crashpoint::reached("after-include-write");
    } else if existing.is_some_and(|e| e.needs_repair().is_some()) {
        // The right bytes with a mode or owner Asterisk may not read (or
        // someone else could change): the same bytes again, 0644, ours.
        include_file::write_atomically(&settings.include_file, &text)?;
    }
    // Also records a write whose run died before it could record it.
    if changed || meta_number(state, INCLUDE_GENERATION)? != Some(generation) {
        let detail = format!("{} generation {generation}", settings.include_file.display());
        state.record_meta_event(
            INCLUDE_GENERATION,
            &generation.to_string(),
            "include_written",
            &detail,
            ctx.now,
        )?;
    }
    if meta_number(state, CONFIRMED_GENERATION)? == Some(generation) {
        if settings.asterisk_cli.is_empty() {
            return Ok(format!(
                "include file unchanged (generation {generation}; not confirmed: asterisk_cli = [])"
            ));
        }
        // One CLI query: an Asterisk restarted or reloaded without the file
        // since the last confirmation would otherwise limit nothing unseen.
        let loaded = match loaded_generation(settings) {
            Ok(loaded) => loaded,
            // A stopped Asterisk makes no calls, and loads the file in place
            // (through #tryinclude) when it starts; the next run confirms it.
            Err(e) if crate::adapters::asterisk::is_not_running(&e) => {
                return Ok(format!(
                    "include file unchanged (generation {generation}); Asterisk is not running: it loads the file \
                     when it starts"
                ));
            }
            Err(e) => {
                return Err(anyhow!(
                    "cannot confirm that Asterisk still has generation {generation} of the include file loaded: {e:#}"
                ));
            }
        };
        if loaded == Some(generation) {
            return Ok(format!("include file unchanged (generation {generation}, loaded)"));
        }
        state.record_meta_event(
            CONFIRMED_GENERATION,
            &loaded.unwrap_or(0).to_string(),
            "generation_lost",
            &format!(
                "Asterisk has {} loaded, not generation {generation} of {}: it was restarted or reloaded without \
                 the include file; reloading",
                loaded.map_or("no callquota dialplan".to_string(), |g| format!("generation {g}")),
                settings.include_file.display()
            ),
            ctx.now,
        )?;
    }
    let reloaded = reload_and_confirm(settings, generation).and_then(|summary| {
        if settings.flavor != Flavor::Plain && settings.define_hook && !settings.asterisk_cli.is_empty() {
            confirm_hook_is_ours(settings)?;
        }
        Ok(summary)
    });
    match reloaded {
        Ok(summary) => {
            crate::adapters::crashpoint::reached("after-reload");
            record_confirmed(ctx, state, generation, &summary)?;
            Ok(summary)
        }
        Err(e) => {
            let message = format!("{e:#}");
            state.audit(None, "reload_failed", &message, ctx.now)?;
            Err(anyhow!("{message}; the next run retries the reload"))
        }
    }
}
