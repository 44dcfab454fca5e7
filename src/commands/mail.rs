//! Notice delivery from the outbox (`run`, `mail flush`), `mail list`, `mail test`.

use anyhow::{Result, anyhow};
use chrono::DateTime;

use super::context::Context;
use crate::adapters::lock;
use crate::adapters::mailer::{Mailer, Outgoing, SendError};
use crate::adapters::state::{Delivery, State};
use crate::cli::MailCommand;
use crate::core::retry::{give_up, retry_delay};
use crate::exit::UsageError;
use crate::values::contact::validate_email;
use crate::views::notice::{Figures, compose};

pub fn mail(ctx: &Context, command: MailCommand) -> Result<()> {
    match command {
        MailCommand::List { pending, json } => list(ctx, pending, json),
        MailCommand::Flush => {
            let _lock = lock::acquire_within(&ctx.config.lock_file, lock::ADMIN_PATIENCE)?;
            let mut state = State::open(&ctx.config.state_db)?;
            let summary = deliver(ctx, &mut state)?;
            println!("{}", crate::values::text::escape_controls(&summary));
            Ok(())
        }
        MailCommand::Test { address } => test(ctx, &address),
    }
}

/// Delivers every due notice. Each is marked only after the server accepted
/// it (a crash in between may resend that one message). Fails, after trying,
/// if any notice could not be delivered.
pub fn deliver(ctx: &Context, state: &mut State) -> Result<String> {
    let Some(settings) = &ctx.config.mail else {
        return Ok("mail is off".into());
    };
    let due = state.due_notices(ctx.now)?;
    if due.is_empty() {
        return Ok("no notices due".into());
    }
    let mailer = Mailer::new(settings)?;
    let users = state.users()?;
    let (mut sent, mut problems) = (0, Vec::new());
    for entry in &due {
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
    Ok(format!("{sent} notice(s) sent via {}", mailer.destination()))
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
        "{:>5} {:<8} {:<10} {:>5}  {:<8} {:>8}  LAST ERROR",
        "ID", "EXT", "DAY", "LEVEL", "STATUS", "ATTEMPTS"
    );
    for e in &entries {
        let level = if e.kind == "digest" {
            "digest".to_string()
        } else {
            format!("{:>4}%", e.threshold)
        };
        println!(
            "{:>5} {:<8} {:<10} {:>6} {:<8} {:>8}  {}",
            e.id,
            if e.kind == "digest" { "-" } else { e.extension.as_str() },
            e.day,
            level,
            e.status,
            e.attempts,
            // The SMTP server's reply: escaped.
            crate::values::text::escape_controls(e.last_error.as_deref().unwrap_or(""))
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
