//! `calls EXT`: the CDR rows of one extension, judged as `run` judges them.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::NaiveDate;
use serde::Serialize;

use super::context::Context;
use crate::adapters::cdr::Cdr;
use crate::adapters::state::State;
use crate::cli::CallsArgs;
use crate::core::calendar::next_day;
use crate::core::explain::{DayFacts, Judged};
use crate::core::usage::CallerColumn;
use crate::exit::UsageError;
use crate::values::duration::format as human;

/// The longest period one `calls` reads (one calldate range query).
const MAX_DAYS: i64 = 366;

#[derive(Serialize)]
struct CallRow<'a> {
    /// Local time of the call's start (the CDR's calldate, in the site's zone).
    calldate: String,
    number: &'a str,
    direction: Option<&'a str>,
    pattern: Option<&'a str>,
    disposition: &'a str,
    billsec: i64,
    dstchannel: &'a str,
    counted: bool,
    /// The talk seconds the row counts (its whole carrier leg, after a transfer).
    counted_s: u64,
    /// What they cost: rounded by the direction's billing increments.
    charged_s: u64,
    /// Why the row is not counted; empty when it is.
    reason: &'a str,
    /// What more than its own billsec a counted row's count holds.
    note: &'a str,
}

pub fn calls(ctx: &Context, args: &CallsArgs) -> Result<()> {
    let today = ctx.today();
    let (from, to) = match (args.day, args.from, args.to) {
        (Some(day), _, _) => (day, day),
        (None, Some(from), to) => (from, to.unwrap_or(today)),
        _ => (today, today),
    };
    if to < from {
        return Err(UsageError(format!("--to {to} is before --from {from}")).into());
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(UsageError(format!("at most {MAX_DAYS} days at a time; narrow --from/--to")).into());
    }
    let ext = &args.extension;
    let state = State::open(&ctx.config.state_db)?;
    let ledgers = state.ledgers_of(ext, from, to)?;
    let direction_ledgers = state.direction_ledgers_of(ext, from, to)?;
    let closed = state.closed_at(ext, from, to)?;
    let last_run_at = ctx.last_run_at(&state)?;
    drop(state);
    let days: BTreeMap<NaiveDate, DayFacts> = ledgers
        .iter()
        .map(|l| {
            (
                l.day,
                DayFacts {
                    tracked: true,
                    closed_at: if l.closed { closed.get(&l.day).copied() } else { None },
                },
            )
        })
        .collect();

    let clock = ctx.config.cdr_clock();
    let mut cdr = Cdr::connect(&ctx.config.cdr)?;
    // The caller column holds the extension itself for cnum and src; a
    // channel names it inside, so those rows are matched here.
    let server_side = match ctx.config.cdr.caller_column {
        CallerColumn::Cnum | CallerColumn::Src => Some(ext.as_str()),
        CallerColumn::Channel => None,
    };
    let limit = args.limit as usize;
    let mut rows = cdr.rows_of(
        clock.window(from).0,
        clock.window(to).1,
        server_side,
        |r| crate::core::usage::caller_extension(ctx.config.cdr.caller_column, &r.caller).as_ref() == Some(ext),
        limit.saturating_add(1),
    )?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    // The other rows of those calls: the carrier's, after a transfer (a call
    // may go on past the period's end).
    let mut linkedids: Vec<String> = rows
        .iter()
        .map(|r| r.linkedid.clone())
        .filter(|id| !id.is_empty())
        .collect();
    linkedids.sort();
    linkedids.dedup();
    let others = cdr.rows_of_calls(clock.window(from).0, clock.window(next_day(to)).1, &linkedids)?;
    let judged = crate::core::explain::judge(&ctx.config.usage_rule(), &clock, ext, rows, &others, &days);

    let zone = ctx.config.timezone;
    let local = |j: &Judged| {
        clock
            .instant(j.row.calldate)
            .with_timezone(&zone)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    if args.json {
        let out: Vec<CallRow<'_>> = judged
            .iter()
            .map(|j| {
                let found = ctx.config.paid.classify(&j.row.dst);
                CallRow {
                    calldate: local(j),
                    number: &j.row.dst,
                    direction: found.map(|m| m.direction.name.as_str()),
                    pattern: found.map(|m| m.pattern.as_str()),
                    disposition: &j.row.disposition,
                    billsec: j.row.billsec,
                    dstchannel: &j.row.dstchannel,
                    counted: j.reason.is_empty(),
                    counted_s: j.counted_s,
                    charged_s: j.charged_s,
                    reason: &j.reason,
                    note: &j.note,
                }
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        if more {
            eprintln!("{}", more_rows(limit, judged.last().map(local)));
        }
        return Ok(());
    }

    use crate::views::calls::{CallLine, header, line};
    println!("{}", header());
    for j in &judged {
        let paid = match ctx.config.paid.classify(&j.row.dst) {
            Some(m) => format!("{} {}", m.direction.name, m.pattern),
            None => "not paid".to_string(),
        };
        let charged = if j.charged_s != j.counted_s {
            format!(", charged {}", human(j.charged_s))
        } else {
            String::new()
        };
        let counted = if j.reason.is_empty() && !j.note.is_empty() {
            format!("yes, {}{charged} ({})", human(j.counted_s), j.note)
        } else if j.reason.is_empty() {
            format!("yes, {}{charged}", human(j.counted_s))
        } else {
            format!("no: {}", j.reason)
        };
        println!(
            "{}",
            line(&CallLine {
                time: local(j),
                number: j.row.dst.escape_debug().to_string(),
                paid,
                disposition: j.row.disposition.escape_debug().to_string(),
                billsec: j.row.billsec,
                channel: j.row.dstchannel.escape_debug().to_string(),
                counted,
            })
        );
    }
    if judged.is_empty() {
        println!("(no CDR rows of {ext} from {from} to {to})");
    }
    // With rows left out, the last shown row's day and the days after it are incomplete.
    let summed_to = match judged.last().filter(|_| more) {
        Some(last) => {
            println!("{}", more_rows(limit, Some(local(last))));
            last.day.pred_opt().filter(|d| *d >= from)
        }
        None => Some(to),
    };
    let rule = ctx.config.usage_rule();
    let summed = summed_to.map_or_else(Vec::new, |end| {
        let mut lines = day_summaries(&judged, &ledgers, last_run_at, from, end, zone);
        // Each direction allowance's day: its calls' charges beside its ledger.
        for (direction, l) in direction_ledgers.iter().filter(|(_, l)| l.day <= end) {
            let counted: u64 = judged
                .iter()
                .filter(|j| j.day == l.day && rule.direction_of(&j.row.dst).is_some_and(|d| &d.name == direction))
                .map(|j| j.charged_s)
                .sum();
            lines.push(format!(
                "{} {direction}: counted {}; its ledger has {} used of {}{}",
                l.day,
                human(counted),
                human(l.used_s),
                human(l.allowance_s()),
                if l.closed { ", closed" } else { ", open" }
            ));
        }
        lines
    });
    for line in summed {
        println!("{line}");
    }
    Ok(())
}

/// The line that says rows were left out, and how to see them.
fn more_rows(limit: usize, last: Option<String>) -> String {
    format!(
        "(more rows: only the first {limit} are shown, up to {}; the day totals stop before that day; narrow \
         --day or --from/--to, or raise --limit)",
        last.unwrap_or_default()
    )
}

/// Per day: the counted total beside the ledger's, and what makes them differ.
fn day_summaries(
    judged: &[Judged],
    ledgers: &[crate::core::policy::Ledger],
    last_run_at: Option<chrono::DateTime<chrono::Utc>>,
    from: NaiveDate,
    to: NaiveDate,
    zone: chrono_tz::Tz,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut day = from;
    while day <= to {
        // What the ledger holds is the charge (talk rounded by the billing increments).
        let counted: u64 = judged.iter().filter(|j| j.day == day).map(|j| j.charged_s).sum();
        match ledgers.iter().find(|l| l.day == day) {
            None => {
                if counted > 0 || judged.iter().any(|j| j.day == day) {
                    lines.push(format!("{day}: not tracked that day; nothing is charged"));
                }
            }
            Some(l) => {
                let own = l.used_s.saturating_sub(l.late_in_s);
                let mut line = format!(
                    "{day}: counted {}; the ledger has {} used{}",
                    human(counted),
                    human(l.used_s),
                    if l.late_in_s > 0 {
                        format!(" ({} of it late rows of the day before)", human(l.late_in_s))
                    } else {
                        String::new()
                    }
                );
                if l.closed {
                    line.push_str(", closed");
                } else if counted != own {
                    let since = last_run_at.map_or("no run yet".to_string(), |t| {
                        format!("the last run at {}", t.with_timezone(&zone).format("%H:%M"))
                    });
                    line.push_str(&format!(
                        ", open: the difference is calls that ended after {since}; the next run counts them"
                    ));
                } else {
                    line.push_str(", open");
                }
                lines.push(line);
            }
        }
        if day == next_day(day) {
            break;
        }
        day = next_day(day);
    }
    lines
}
