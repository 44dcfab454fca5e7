//! The imperative shell: one function per command, ordering the side effects
//! around the pure core.

mod calls;
mod check;
mod context;
pub mod deadline;
mod mail;
mod report;
mod run;
mod user;

use anyhow::Result;
use chrono::Utc;

use crate::adapters::privileges::become_state_owner;
use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::core::calendar::parse_now;
use crate::exit::UsageError;

pub use context::Context;

pub fn dispatch(cli: Cli) -> Result<()> {
    if let Some(who) = crate::adapters::privileges::delegated_by() {
        refuse_delegated(&cli, &who)?;
    }
    if let Command::Migrate { state_db: Some(path) } = &cli.command {
        become_state_owner(path)?;
        return migrate(path);
    }
    // Who did it: known only before a root process becomes the service user.
    crate::adapters::state::set_actor(&crate::adapters::privileges::acting_person());
    // Read as root if need be (the config is root:callquota 0640), then act as the service user.
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(e) if e.unconfigured && if_configured(&cli.command) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // A report for a person is written where and as they asked: opened now,
    // before a root process becomes the state's owner.
    let html = match &cli.command {
        Command::Report(args) => args
            .html
            .as_deref()
            .map(crate::adapters::person_file::prepare)
            .transpose()?,
        _ => None,
    };
    become_state_owner(&config.state_db)?;
    crate::commands::deadline::arm(config.run_timeout);
    let system_now = Utc::now();
    let now = match &cli.now {
        Some(text) => parse_now(text, config.timezone).map_err(|e| UsageError(e.to_string()))?,
        None => system_now,
    };
    // A future --now on the live state would close days that have not happened.
    if now > system_now + chrono::Duration::minutes(1) && changes_state(&cli.command) && !cli.allow_future {
        return Err(UsageError(format!(
            "--now {} is ahead of the system clock; a command that changes state refuses it unless \
             --allow-future is given too (for tests and replays on a copy of the state)",
            cli.now.as_deref().unwrap_or_default()
        ))
        .into());
    }
    let ctx = Context { config, now };
    crate::adapters::trace::mark("config read");
    match cli.command {
        Command::Run(args) => run::run_command(&ctx, &args),
        Command::Grant(args) => run::grant(&ctx, &args),
        Command::Status(args) => report::status(&ctx, &args),
        Command::Log(args) => report::log(&ctx, &args),
        Command::Calls(args) => calls::calls(&ctx, &args),
        Command::Report(args) => report::period_report(&ctx, &args, html),
        Command::Render => report::render(&ctx),
        Command::Classify(args) => report::classify(&ctx, &args),
        Command::User(command) => user::user(&ctx, command),
        Command::Check => check::check(&ctx),
        Command::Migrate { .. } => migrate(&ctx.config.state_db),
        Command::Mail(command) => mail::mail(&ctx, command),
        Command::Rewind => run::rewind(&ctx),
        Command::Disarm { .. } => run::disarm(&ctx),
    }
}

/// A command run with someone else's rights (`sudo -u callquota callquota
/// status`) may not choose what those rights act on: another config (its
/// `asterisk_cli` and `reload_command` would run as the target user), the
/// clock (`--now` in the future closes real days) or a path to read or write.
fn refuse_delegated(cli: &Cli, who: &str) -> Result<()> {
    use crate::cli::UserCommand;
    let option = if cli.config != std::path::Path::new(crate::config::DEFAULT_PATH) {
        Some("--config (or CALLQUOTA_CONFIG)")
    } else if cli.now.is_some() {
        Some("--now")
    } else if cli.allow_future {
        Some("--allow-future")
    } else {
        match &cli.command {
            Command::Report(args) if args.html.is_some() => Some("report --html"),
            Command::User(UserCommand::Import { csv: Some(_), .. }) => Some("user import --csv"),
            Command::Migrate { state_db: Some(_) } => Some("migrate --state-db"),
            _ => None,
        }
    };
    match option {
        None => Ok(()),
        Some(option) => Err(UsageError(format!(
            "{option} is refused for a delegated command (run by {who}): it would choose the config, clock or \
             files the service user acts on; leave it out (the installed {} is used), or, as root in a sudo \
             shell, run it as env -u SUDO_UID callquota ...",
            crate::config::DEFAULT_PATH
        ))
        .into()),
    }
}

/// `--if-configured`: a fresh install's cron job and package scripts stay quiet.
fn if_configured(command: &Command) -> bool {
    match command {
        Command::Run(args) => args.if_configured,
        Command::Disarm { if_configured } => *if_configured,
        _ => false,
    }
}

/// Commands that write the state (read-only ones never refuse a clock).
fn changes_state(command: &Command) -> bool {
    use crate::cli::{MailCommand, UserCommand};
    match command {
        Command::Run(args) => !args.dry_run,
        Command::Grant(_) | Command::Rewind | Command::Disarm { .. } | Command::Mail(MailCommand::Flush) => true,
        Command::User(user) => !matches!(user, UserCommand::List { .. }),
        Command::Status(_)
        | Command::Log(_)
        | Command::Calls(_)
        | Command::Report(_)
        | Command::Render
        | Command::Classify(_)
        | Command::Check
        | Command::Migrate { .. }
        | Command::Mail(MailCommand::List { .. } | MailCommand::Test { .. }) => false,
    }
}

fn migrate(path: &std::path::Path) -> Result<()> {
    crate::adapters::state::State::create_if_missing(path)?;
    crate::adapters::state::State::open(path)?;
    println!("state {} is up to date", path.display());
    Ok(())
}
