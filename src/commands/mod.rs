//! The imperative shell: one function per command, ordering the side effects
//! around the pure core.

mod check;
mod mail;
mod report;
mod run;
mod user;

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};

use crate::calendar::{local_day, parse_now};
use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::exit::UsageError;

/// What every command gets: the checked config and the clock.
pub struct Context {
    pub config: Config,
    pub now: DateTime<Utc>,
}

impl Context {
    pub fn today(&self) -> NaiveDate {
        local_day(self.now, self.config.timezone)
    }
}

pub fn dispatch(cli: Cli) -> Result<()> {
    if let Command::Migrate { state_db: Some(path) } = &cli.command {
        return migrate(path);
    }
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(e) if e.unconfigured && matches!(&cli.command, Command::Run(args) if args.if_configured) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let now = match &cli.now {
        Some(text) => parse_now(text, config.timezone).map_err(|e| UsageError(e.to_string()))?,
        None => Utc::now(),
    };
    let ctx = Context { config, now };
    match cli.command {
        Command::Run(args) => run::run_command(&ctx, &args),
        Command::Grant(args) => run::grant(&ctx, &args),
        Command::Status(args) => report::status(&ctx, &args),
        Command::Log(args) => report::log(&ctx, &args),
        Command::Render => report::render(&ctx),
        Command::Classify(args) => report::classify(&ctx, &args),
        Command::User(command) => user::user(&ctx, command),
        Command::Check => check::check(&ctx),
        Command::Migrate { .. } => migrate(&ctx.config.state_db),
        Command::Mail(command) => mail::mail(&ctx, command),
    }
}

fn migrate(path: &std::path::Path) -> Result<()> {
    crate::state::State::open(path)?;
    println!("state {} is up to date", path.display());
    Ok(())
}
