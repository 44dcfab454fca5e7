//! `calls EXT`: the CDR rows of one extension, judged as `run` judges them.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::NaiveDate;
use serde::Serialize;

use super::Context;
use crate::calendar::next_day;
use crate::cdr::Cdr;
use crate::cli::CallsArgs;
use crate::config::CallerColumn;
use crate::duration::format as human;
use crate::exit::UsageError;
use crate::explain::{DayFacts, Judged};
use crate::state::State;

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
    /// Why the row is not counted; empty when it is.
    reason: &'a str,
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
    let closed = state.closed_at(ext, from, to)?;
    let last_run_at = state.last_run_at()?;
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
    let rows: Vec<_> = cdr
        .rows_of(clock.window(from).0, clock.window(to).1, server_side)?
        .into_iter()
        .filter(|r| crate::usage::caller_extension(ctx.config.cdr.caller_column, &r.caller).as_ref() == Some(ext))
        .collect();
    let judged = crate::explain::judge(&ctx.config.usage_rule(), &clock, ext, rows, &days);

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
                    reason: &j.reason,
                }
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }

    println!(
        "{:<19}  {:<14} {:<28} {:<11} {:>7}  {:<26} COUNTED",
        "TIME", "NUMBER", "PAID (DIRECTION, PATTERN)", "DISPOSITION", "BILLSEC", "TRUNK CHANNEL"
    );
    for j in &judged {
        let paid = match ctx.config.paid.classify(&j.row.dst) {
            Some(m) => format!("{} {}", m.direction.name, m.pattern),
            None => "not paid".to_string(),
        };
        let counted = if j.reason.is_empty() {
            format!("yes, {}", human(j.counted_s))
        } else {
            format!("no: {}", j.reason)
        };
        println!(
            "{:<19}  {:<14} {:<28} {:<11} {:>7}  {:<26} {}",
            local(j),
            j.row.dst.escape_debug().to_string(),
            paid,
            j.row.disposition.escape_debug().to_string(),
            j.row.billsec,
            j.row.dstchannel.escape_debug().to_string(),
            counted
        );
    }
    if judged.is_empty() {
        println!("(no CDR rows of {ext} from {from} to {to})");
    }
    for line in day_summaries(&judged, &ledgers, last_run_at, from, to, zone) {
        println!("{line}");
    }
    Ok(())
}

/// Per day: the counted total beside the ledger's, and what makes them differ.
fn day_summaries(
    judged: &[Judged],
    ledgers: &[crate::policy::Ledger],
    last_run_at: Option<chrono::DateTime<chrono::Utc>>,
    from: NaiveDate,
    to: NaiveDate,
    zone: chrono_tz::Tz,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut day = from;
    while day <= to {
        let counted: u64 = judged.iter().filter(|j| j.day == day).map(|j| j.counted_s).sum();
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
