//! Notice delivery from the outbox (`run`, `mail flush`), `mail list`, `mail test`.

use anyhow::{Result, anyhow};
use chrono::DateTime;

use super::context::Context;
use crate::adapters::lock;
use crate::adapters::mailer::{Mailer, Outgoing, SendError};
use crate::adapters::state::{Delivery, OutboxEntry, State};
use crate::cli::MailCommand;
use crate::core::month::{month_end, month_start};
use crate::core::outbox::{Current, Now, Queued, UserNow, Verdict, judge};
use crate::core::retry::{give_up, retry_delay};
use crate::core::user::User;
use crate::exit::UsageError;
use crate::values::contact::validate_email;
use crate::values::text::escape_controls;
use crate::views::notice::{Figures, compose};

pub fn mail(ctx: &Context, command: MailCommand) -> Result<()> {
    match command {
        MailCommand::List { pending, json } => list(ctx, pending, json),
        MailCommand::Flush => {
            let _lock = lock::acquire_within(&ctx.config.lock_file, lock::ADMIN_PATIENCE)?;
            let mut state = State::open(&ctx.config.state_db)?;
            // The admin's "send now": every pending notice, whatever its retry time.
            let summary = deliver(ctx, &mut state, Which::AllPending)?;
            println!("{}", escape_controls(&summary));
            Ok(())
        }
        MailCommand::Test { address } => test(ctx, &address),
    }
}

/// Which pending notices a delivery tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Those whose retry time has come (`run`: the backoff of `core::retry`).
    Due,
    /// Every pending one now (`mail flush`).
    AllPending,
}

/// Delivers the due (or every pending) notice. A notice that no longer fits
/// the state is dropped or rewritten first (`core::outbox::judge`, audited).
/// Each is marked only after the server accepted it (a crash in between may
/// resend that one message). Fails, after trying, if any notice could not be
/// delivered.
pub fn deliver(ctx: &Context, state: &mut State, which: Which) -> Result<String> {
    let Some(settings) = &ctx.config.mail else {
        return Ok("mail is off".into());
    };
    let due = state.due_notices(match which {
        Which::Due => Some(ctx.now),
        Which::AllPending => None,
    })?;
    if due.is_empty() {
        return Ok(match which {
            Which::Due => "no notices due",
            Which::AllPending => "no notices pending",
        }
        .into());
    }
    let mailer = Mailer::new(settings)?;
    let users = state.users()?;
    let (mut sent, mut dropped, mut problems) = (0, 0, Vec::new());
    for entry in &due {
        let rewritten;
        let entry = if entry.kind == "notice" {
            match judge(queued(entry), now_of(state, &users, entry)?) {
                Verdict::Send => entry,
                Verdict::Drop(stale) => {
                    let dropped_as = Delivery::Dropped {
                        reason: stale.to_string(),
                    };
                    state.record_delivery(entry, &dropped_as, ctx.now)?;
                    dropped += 1;
                    continue;
                }
                Verdict::Rewrite(current) => {
                    rewritten = state.rewrite_notice(entry, current, ctx.now)?;
                    &rewritten
                }
            }
        } else {
            entry
        };
        // What to send, or why nothing is sent.
        let prepared: std::result::Result<Prepared, String> = if entry.kind == "digest" {
            prepare_digest(ctx, state, settings, entry)
        } else {
            prepare_notice(ctx, &users, settings, entry)
        };
        let outcome = match prepared {
            Err(reason) => Delivery::Skipped { reason },
            Ok(p) => {
                let also_to: Vec<&str> = p.also_to.iter().map(String::as_str).collect();
                let extra_cc: Vec<&str> = p.extra_cc.iter().map(String::as_str).collect();
                let result = mailer.send(&Outgoing {
                    to_name: p.to_name.as_deref(),
                    to: &p.to,
                    also_to: &also_to,
                    extra_cc: &extra_cc,
                    subject: &p.subject,
                    body: &p.body,
                    html: p.html.as_deref(),
                    date: ctx.now,
                });
                let attempts = entry.attempts + 1;
                let age = DateTime::parse_from_rfc3339(&entry.created_at)
                    .map_or(chrono::Duration::zero(), |c| ctx.now - c.to_utc());
                match result {
                    Ok(()) => {
                        crate::adapters::crashpoint::reached("during-mail");
                        sent += 1;
                        Delivery::Sent { to: p.recipients() }
                    }
                    Err(e @ (SendError::Rejected(_) | SendError::Invalid(_))) => {
                        problems.push(e.to_string());
                        Delivery::GaveUp { error: e.to_string() }
                    }
                    Err(e) if give_up(attempts, settings.max_attempts, age, settings.max_age_hours) => {
                        problems.push(e.to_string());
                        Delivery::GaveUp {
                            error: format!("{e} (gave up after {attempts} attempts)"),
                        }
                    }
                    Err(e) => {
                        problems.push(e.to_string());
                        let retry = Delivery::Retry {
                            error: e.to_string(),
                            next_attempt_at: ctx.now + retry_delay(attempts),
                        };
                        state.record_delivery(entry, &retry, ctx.now)?;
                        // The server is unavailable: the rest wait for the next run.
                        break;
                    }
                }
            }
        };
        state.record_delivery(entry, &outcome, ctx.now)?;
    }
    if let Some(first) = problems.first() {
        let pending = state.outbox(true)?.len();
        return Err(anyhow!(
            "mail delivery failed: {first}; {sent} sent, {pending} pending (retried by the next run), see `callquota mail list`"
        ));
    }
    let dropped = if dropped > 0 {
        format!(", {dropped} dropped as no longer true (see `callquota log --event notice_dropped`)")
    } else {
        String::new()
    };
    Ok(format!("{sent} notice(s) sent via {}{dropped}", mailer.destination()))
}

fn queued(entry: &OutboxEntry) -> Queued {
    Queued {
        threshold: entry.threshold,
        used_s: entry.used_s,
        allowance_s: entry.allowance_s,
    }
}

/// What the state says now about a notice's user and allowance, for `judge`.
fn now_of(state: &State, users: &[User], entry: &OutboxEntry) -> Result<Now> {
    let user = users.iter().find(|u| u.extension.as_str() == entry.extension);
    let day = chrono::NaiveDate::parse_from_str(&entry.day, "%Y-%m-%d").ok();
    let month = entry.period == "month";
    let figures = match (user, day) {
        (Some(user), Some(day)) => match &entry.direction {
            Some(direction) => state
                .direction_ledgers_of(&user.extension, day, day)?
                .into_iter()
                .find(|(d, _)| d == direction)
                .map(|(_, l)| Current {
                    level: l.level,
                    used_s: l.used_s,
                    allowance_s: l.allowance_s(),
                }),
            // The month as of its latest day in the state.
            None if month => state
                .ledgers_of(&user.extension, month_start(day), month_end(day))?
                .last()
                .and_then(|l| {
                    l.monthly_limit_s.map(|limit_s| Current {
                        level: l.month_level,
                        used_s: l.month_used_s(),
                        allowance_s: limit_s,
                    })
                }),
            None => state.ledgers_of(&user.extension, day, day)?.first().map(|l| Current {
                level: l.level,
                used_s: l.used_s,
                allowance_s: l.allowance_s(),
            }),
        },
        _ => None,
    };
    Ok(Now {
        user: user.map(|u| UserNow {
            active: u.active,
            has_allowance: match &entry.direction {
                Some(direction) => u.direction_limits.contains_key(direction),
                None => !month || u.monthly_limit_s.is_some(),
            },
        }),
        newer: state.newer_notice(entry)?,
        figures,
    })
}

/// A message ready to send.
struct Prepared {
    to_name: Option<String>,
    to: String,
    also_to: Vec<String>,
    extra_cc: Vec<String>,
    subject: String,
    body: String,
    html: Option<String>,
}

impl Prepared {
    fn recipients(&self) -> String {
        std::iter::once(self.to.as_str())
            .chain(self.also_to.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A threshold notice to its user (and their cc), or why it is skipped.
fn prepare_notice(
    ctx: &Context,
    users: &[crate::core::user::User],
    settings: &crate::config::MailSettings,
    entry: &crate::adapters::state::OutboxEntry,
) -> std::result::Result<Prepared, String> {
    let user = users
        .iter()
        .find(|u| u.extension.as_str() == entry.extension)
        .ok_or("the user was removed")?;
    if user.email.is_empty() {
        return Err("the user has no email address".into());
    }
    let text = compose(
        &settings.templates,
        &Figures {
            name: &user.name,
            extension: user.extension.as_str(),
            day: &entry.day,
            threshold: entry.threshold,
            used_s: entry.used_s,
            allowance_s: entry.allowance_s,
            day_over: if entry.period == "month" {
                entry.day.get(..7) < Some(ctx.today().format("%Y-%m").to_string().as_str())
            } else {
                entry.day < ctx.today().format("%Y-%m-%d").to_string()
            },
            month: entry.period == "month",
            language: settings.language,
        },
    );
    // A direction allowance's notice says which allowance it is about.
    let (subject, body) = match &entry.direction {
        Some(direction) => {
            let (tag, line) = settings.language.direction_words(direction);
            (format!("{} {tag}", text.subject), format!("{line}\n\n{}", text.body))
        }
        None => (text.subject, text.body),
    };
    Ok(Prepared {
        to_name: Some(user.name.clone()),
        to: user.email.clone(),
        also_to: Vec::new(),
        extra_cc: [user.cc.clone()].into_iter().filter(|c| !c.is_empty()).collect(),
        subject,
        body,
        html: None,
    })
}

/// A closed day's digest to `[mail] digest_to`, or why it is skipped.
fn prepare_digest(
    ctx: &Context,
    state: &State,
    settings: &crate::config::MailSettings,
    entry: &crate::adapters::state::OutboxEntry,
) -> std::result::Result<Prepared, String> {
    let Some((first, rest)) = settings.digest_to.split_first() else {
        return Err("[mail] digest_to is empty now".into());
    };
    let day = chrono::NaiveDate::parse_from_str(&entry.day, "%Y-%m-%d").map_err(|e| e.to_string())?;
    let (ledgers, grants) = state.digest_facts(day).map_err(|e| format!("{e:#}"))?;
    let blocked = state
        .blocked_days(ctx.config.timezone, day, day)
        .map_err(|e| format!("{e:#}"))?;
    let zone = ctx.config.timezone;
    let local = |at: &str| {
        DateTime::parse_from_rfc3339(at)
            .map(|t| t.with_timezone(&zone).format("%H:%M").to_string())
            .unwrap_or_else(|_| at.to_string())
    };
    let rows = ledgers
        .into_iter()
        .map(|(l, name)| crate::views::digest::DigestRow {
            blocked_at: blocked
                .get(&(l.extension.to_string(), l.day))
                .map(|t| t.with_timezone(&zone).format("%H:%M").to_string()),
            extension: l.extension.to_string(),
            name,
            allowance_s: l.allowance_s(),
            used_s: l.used_s,
        })
        .collect();
    let grants: Vec<crate::views::digest::DigestGrant> = grants
        .into_iter()
        .map(|g| crate::views::digest::DigestGrant {
            extension: g.extension,
            seconds: g.seconds,
            reason: g.reason,
            on_behalf_of: Some(g.on_behalf_of).filter(|o| !o.is_empty()),
            by: g.by,
            at: local(&g.at),
        })
        .collect();
    let digest = crate::views::digest::compose(settings.language, day, rows, &grants);
    Ok(Prepared {
        to_name: None,
        to: first.clone(),
        also_to: rest.to_vec(),
        extra_cc: Vec::new(),
        subject: digest.subject,
        body: digest.text,
        html: Some(digest.html),
    })
}

fn list(ctx: &Context, pending: bool, json: bool) -> Result<()> {
    let state = State::open(&ctx.config.state_db)?;
    let entries = state.outbox(pending)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    println!(
        "{:>5} {:<8} {:<10} {:>5}  {:<8} {:>8}  {:<16}  LAST ERROR",
        "ID", "EXT", "DAY", "LEVEL", "STATUS", "ATTEMPTS", "NEXT ATTEMPT"
    );
    for e in &entries {
        let level = if e.kind == "digest" {
            "digest".to_string()
        } else {
            format!("{:>4}%", e.threshold)
        };
        // A pending notice goes out with the first run at or after its next
        // attempt (`mail flush`: at once); one never tried, with the next run.
        let next = match (e.status.as_str(), e.next_attempt_at.as_deref()) {
            ("pending", Some(at)) => match DateTime::parse_from_rfc3339(at) {
                Ok(at) if at.to_utc() > ctx.now => at
                    .with_timezone(&ctx.config.timezone)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                Ok(_) => "next run".to_string(),
                Err(_) => at.to_string(),
            },
            ("pending", None) => "next run".to_string(),
            _ => "-".to_string(),
        };
        println!(
            "{:>5} {:<8} {:<10} {:>6} {:<8} {:>8}  {:<16}  {}",
            e.id,
            if e.kind == "digest" { "-" } else { e.extension.as_str() },
            e.day,
            level,
            e.status,
            e.attempts,
            escape_controls(&next),
            // The SMTP server's reply: escaped.
            escape_controls(e.last_error.as_deref().unwrap_or(""))
        );
    }
    if ctx.config.mail.is_none() {
        println!("(mail is off: add a [mail] section to send these)");
    }
    Ok(())
}

fn test(ctx: &Context, address: &str) -> Result<()> {
    if address.is_empty() {
        return Err(UsageError("give an address to send the test message to".into()).into());
    }
    validate_email(address).map_err(|e| UsageError(e.to_string()))?;
    let settings = ctx
        .config
        .mail
        .as_ref()
        .ok_or_else(|| UsageError("mail is off: add a [mail] section to the config".into()))?;
    let mailer = Mailer::new(settings)?;
    mailer
        .send(&Outgoing {
            to_name: None,
            to: address,
            also_to: &[],
            extra_cc: &[],
            subject: "callquota test message",
            body: "This is a test message from callquota: the mail settings work.\n",
            html: None,
            date: ctx.now,
        })
        .map_err(|e| anyhow!("test message not sent: {e}"))?;
    println!("test message sent to {address} via {}", mailer.destination());
    Ok(())
}
