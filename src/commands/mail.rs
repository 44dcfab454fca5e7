//! Notice delivery from the outbox (`run`, `mail flush`), `mail list`, `mail test`.

use anyhow::{Result, anyhow};
use chrono::DateTime;

use super::Context;
use crate::cli::MailCommand;
use crate::contact::validate_email;
use crate::exit::UsageError;
use crate::lock;
use crate::mailer::{Mailer, Outgoing, SendError};
use crate::notice::{Figures, compose, give_up, retry_delay};
use crate::state::{Delivery, State};

pub fn mail(ctx: &Context, command: MailCommand) -> Result<()> {
    match command {
        MailCommand::List { pending, json } => list(ctx, pending, json),
        MailCommand::Flush => {
            let _lock = lock::acquire_within(&ctx.config.lock_file, super::run::ADMIN_LOCK_PATIENCE)?;
            let mut state = State::open(&ctx.config.state_db)?;
            let summary = deliver(ctx, &mut state)?;
            println!("{summary}");
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
        let user = users.iter().find(|u| u.extension.as_str() == entry.extension);
        let outcome = match user {
            None => Delivery::Skipped {
                reason: "the user was removed".into(),
            },
            Some(u) if u.email.is_empty() => Delivery::Skipped {
                reason: "the user has no email address".into(),
            },
            Some(u) => {
                let text = compose(
                    &settings.templates,
                    &Figures {
                        name: &u.name,
                        extension: u.extension.as_str(),
                        day: &entry.day,
                        threshold: entry.threshold,
                        used_s: entry.used_s,
                        allowance_s: entry.allowance_s,
                        day_over: entry.day < ctx.today().format("%Y-%m-%d").to_string(),
                    },
                );
                let extra_cc: Vec<&str> = [u.cc.as_str()].into_iter().filter(|c| !c.is_empty()).collect();
                let result = mailer.send(&Outgoing {
                    to_name: Some(&u.name),
                    to: &u.email,
                    extra_cc: &extra_cc,
                    subject: &text.subject,
                    body: &text.body,
                    date: ctx.now,
                });
                let attempts = entry.attempts + 1;
                let age = DateTime::parse_from_rfc3339(&entry.created_at)
                    .map_or(chrono::Duration::zero(), |c| ctx.now - c.to_utc());
                match result {
                    Ok(()) => {
                        crate::crashpoint::reached("during-mail");
                        sent += 1;
                        Delivery::Sent { to: u.email.clone() }
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
        println!(
            "{:>5} {:<8} {:<10} {:>4}%  {:<8} {:>8}  {}",
            e.id,
            e.extension,
            e.day,
            e.threshold,
            e.status,
            e.attempts,
            e.last_error.as_deref().unwrap_or("")
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
            extra_cc: &[],
            subject: "callquota test message",
            body: "This is a test message from callquota: the mail settings work.\n",
            date: ctx.now,
        })
        .map_err(|e| anyhow!("test message not sent: {e}"))?;
    println!("test message sent to {address} via {}", mailer.destination());
    Ok(())
}
