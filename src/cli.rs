//! The command line as the admin types it (no I/O here).

// clap shows these doc comments as `--help`; `[cdr]` there is config syntax, not a link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::values::extension::Extension;

fn pattern(text: &str) -> Result<crate::core::pattern::Pattern, String> {
    crate::core::pattern::Pattern::parse(text).map_err(|e| e.to_string())
}

fn duration(text: &str) -> Result<u64, String> {
    if text.trim_start().starts_with('-') {
        return Err(format!(
            "{text:?} is negative; a duration is 0 or more: 1800, 30m, 1h30m"
        ));
    }
    crate::values::duration::parse(text).map_err(|e| e.to_string())
}

/// `--monthly-limit`: a duration, or `none` to remove the monthly cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthlyLimit(pub Option<u64>);

/// `--limit international=10m`: a direction's own daily limit, or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectionLimit {
    pub direction: String,
    pub limit_s: Option<u64>,
}

fn direction_limit(text: &str) -> Result<DirectionLimit, String> {
    let (direction, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: write DIRECTION=DURATION, e.g. international=10m"))?;
    if !crate::core::paid::valid_direction_name(direction) {
        return Err(format!(
            "{direction:?} is not a direction name (1-40 letters, digits, _ or -)"
        ));
    }
    let limit_s = if value == "none" { None } else { Some(duration(value)?) };
    Ok(DirectionLimit {
        direction: direction.to_string(),
        limit_s,
    })
}

fn monthly_limit(text: &str) -> Result<MonthlyLimit, String> {
    if text == "none" {
        return Ok(MonthlyLimit(None));
    }
    duration(text).map(|s| MonthlyLimit(Some(s)))
}

#[derive(Debug, Parser)]
#[command(
    name = "callquota",
    version,
    about = "Individual daily limits on paid outgoing calls for Asterisk/FreePBX",
    long_about = "Individual daily limits on paid outgoing calls for Asterisk/FreePBX.\n\n\
        Each run reads today's CDR, updates every user's usage and threshold level, queues \
        notices, and rewrites the dialplan include file so that users who exhausted their day \
        cannot make paid calls.\n\n\
        Exit codes: 0 ok, 1 runtime failure, 2 usage error, 75 another run holds the lock, \
        78 configuration error.",
    after_help = "Durations accept 1800, 30m, 1h30m. See README.md for the config keys."
)]
pub struct Cli {
    /// Config file.
    #[arg(long, global = true, env = "CALLQUOTA_CONFIG", default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Replace the clock: RFC 3339, or local YYYY-MM-DDTHH:MM:SS in the configured zone.
    #[arg(long, global = true, value_name = "TIMESTAMP")]
    pub now: Option<String>,
    /// Let a command that changes state use a --now ahead of the system clock
    /// (tests and replays); without it such a command refuses.
    #[arg(long, global = true)]
    pub allow_future: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Close finished days, read today's CDR, update levels and notices, rewrite and reload the dialplan.
    Run(RunArgs),
    /// Show each user's allowance, usage and level for a day.
    Status(StatusArgs),
    /// Add, change, remove or list users.
    #[command(subcommand)]
    User(UserCommand),
    /// Give EXTENSION extra paid time today (600, 10m, 1h), then run at once.
    Grant(GrantArgs),
    /// Show the audit log.
    Log(LogArgs),
    /// Each user's figures over a month or period, from the state alone.
    Report(ReportArgs),
    /// Every CDR row of one extension in a period, judged as `run` judges it:
    /// counted, or why not.
    Calls(CallsArgs),
    /// Print the include file that the current state would produce.
    Render,
    /// Tell, for each number, whether it is paid and which direction and pattern matched.
    Classify(ClassifyArgs),
    /// Check the config, the CDR database, the include file wiring, the reload command and mail.
    Check,
    /// Create the state database if needed and apply pending migrations.
    Migrate {
        /// The state file to create or migrate, instead of the config's state_db
        /// (no config needed: the package's postinst uses this).
        #[arg(long, value_name = "PATH")]
        state_db: Option<PathBuf>,
    },
    /// Show, flush or test the notification outbox.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Write an inert include file (it limits nothing and defines no pre-dial
    /// hook) and reload: what removing the package does. The next `run` arms it again.
    Disarm {
        /// Exit 0 silently while the config is missing or has no [cdr] section.
        #[arg(long)]
        if_configured: bool,
    },
    /// Bring a state that got ahead of the real clock (a wrong clock, a
    /// mistaken --now) back to today: later days' ledgers, grants and pending
    /// notices are removed (logged), today is reopened; then run.
    Rewind,
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Show the outbox.
    List {
        /// Only notices still waiting for delivery.
        #[arg(long)]
        pending: bool,
        /// The outbox as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Deliver the pending notices now.
    Flush,
    /// Send one test message to ADDRESS to check the mail settings.
    Test {
        /// Where the test message goes, e.g. admin@example.com.
        address: String,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Compute and print what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print a summary of what the run did (cron runs stay quiet without it).
    #[arg(long, short)]
    pub verbose: bool,
    /// Exit 0 silently while the config is missing or has no [cdr] section
    /// (a fresh install); every other config error still exits 78. For cron.
    #[arg(long)]
    pub if_configured: bool,
    /// Accept a clock more than max_jump_days (default 14) past the last run (a host that was off
    /// that long): the days in between are closed in order.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The day to show (default: today).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub day: Option<chrono::NaiveDate>,
    /// One object per user as JSON, for scripts (fields in README).
    #[arg(long)]
    pub json: bool,
    /// Plain `#` bars even on a terminal.
    #[arg(long)]
    pub ascii: bool,
    /// Row order: used (% used, highest first), ext or name.
    #[arg(long, value_enum, default_value = "used")]
    pub sort: crate::views::status::SortKey,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Start tracking an extension; it gets today's full base allowance.
    Add {
        /// The internal extension whose paid calls are limited, e.g. 2055.
        extension: Extension,
        /// The person's name, as notices and reports show it.
        #[arg(long)]
        name: String,
        /// Where notices go; without it the user is still limited.
        #[arg(long, default_value = "")]
        email: String,
        /// A supervisor copied on this user's notices.
        #[arg(long, default_value = "")]
        cc: String,
        /// Paid seconds per workday: 1800, 30m, 1h30m.
        #[arg(long, value_parser = duration, value_name = "DURATION", allow_negative_numbers = true)]
        daily_limit: u64,
        /// The most a calendar month may charge, e.g. 8h (the day's allowance
        /// never exceeds what the month has left).
        #[arg(long, value_parser = monthly_limit, value_name = "DURATION", allow_negative_numbers = true)]
        monthly_limit: Option<MonthlyLimit>,
        /// A separate daily limit for one direction, alongside the shared one:
        /// international=10m (repeat for more directions).
        #[arg(long = "limit", value_parser = direction_limit, value_name = "DIRECTION=DURATION")]
        limits: Vec<DirectionLimit>,
    },
    /// Change a user's name, email, daily limit, or enable/disable them; with
    /// --all or --only PATTERN, the limit, cc or state of many users at once.
    #[command(group(clap::ArgGroup::new("who").required(true).args(["extension", "all", "only"])))]
    Set {
        /// The extension to change (or --all, or --only PATTERN).
        extension: Option<Extension>,
        /// Every user (one transaction, audited per user).
        #[arg(long)]
        all: bool,
        /// The users whose extension matches this Asterisk pattern, e.g. _20XX.
        #[arg(long, value_parser = pattern, value_name = "PATTERN")]
        only: Option<crate::core::pattern::Pattern>,
        /// The person's new name.
        #[arg(long, conflicts_with_all = ["all", "only"])]
        name: Option<String>,
        /// Where notices go ("" stops them; the user is still limited).
        #[arg(long, conflicts_with_all = ["all", "only"])]
        email: Option<String>,
        /// A supervisor copied on this user's notices ("" removes it).
        #[arg(long)]
        cc: Option<String>,
        /// Paid seconds per workday: 1800, 30m, 1h30m.
        #[arg(long, value_parser = duration, value_name = "DURATION", allow_negative_numbers = true)]
        daily_limit: Option<u64>,
        /// The most a calendar month may charge, e.g. 8h; `none` removes the monthly cap.
        #[arg(long, value_parser = monthly_limit, value_name = "DURATION|none", allow_negative_numbers = true)]
        monthly_limit: Option<MonthlyLimit>,
        /// A separate daily limit for one direction: international=10m;
        /// international=none removes it (repeat for more directions).
        #[arg(long = "limit", value_parser = direction_limit, value_name = "DIRECTION=DURATION|none")]
        limits: Vec<DirectionLimit>,
        /// Stop limiting this user (their paid calls then follow dialplan.untracked).
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Limit a disabled user again.
        #[arg(long)]
        enable: bool,
    },
    /// Add or refresh users from FreePBX's directory (read-only) or a CSV file
    /// (header: extension,name,email,daily_limit,cc), in one transaction.
    Import {
        /// Read FreePBX's `users` and `userman_users` ([freepbx] in the config).
        #[arg(long, conflicts_with = "csv", required_unless_present = "csv")]
        freepbx: bool,
        /// Read a CSV file with the header extension,name,email,daily_limit,cc.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// The limit of extensions that are new to callquota (required when there are any,
        /// unless each CSV row has its own).
        #[arg(long, value_parser = duration, value_name = "DURATION", allow_negative_numbers = true)]
        daily_limit: Option<u64>,
        /// Only extensions matching this Asterisk pattern, e.g. _20XX.
        #[arg(long, value_parser = pattern, value_name = "PATTERN")]
        only: Option<crate::core::pattern::Pattern>,
        /// Print what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Stop tracking an extension (its history stays in the ledger and audit log).
    Remove {
        /// The extension to stop tracking.
        extension: Extension,
    },
    /// List users.
    List {
        /// The users as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The tracked extension that gets the time, e.g. 2055.
    pub extension: Extension,
    /// How much more paid time today: 10m, 1h, 1h30m, or seconds (600).
    #[arg(value_parser = duration, value_name = "DURATION", allow_negative_numbers = true)]
    pub seconds: u64,
    /// Why, for the audit log, e.g. "customer escalation".
    #[arg(long, default_value = "")]
    pub reason: String,
    /// The person the grant is made for or asked by (a ticket filed on their
    /// behalf); the audit log names them, and who entered it.
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Grant to the user's allowance of this direction (see `user set --limit`),
    /// not the shared one.
    #[arg(long, value_name = "DIRECTION")]
    pub direction: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A calendar month, e.g. 2026-11 (default: this month).
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["from", "to"], value_parser = month)]
    pub month: Option<chrono::NaiveDate>,
    /// The first day of a period (with --to; default --to: today).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<chrono::NaiveDate>,
    /// The last day of a period.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "from")]
    pub to: Option<chrono::NaiveDate>,
    /// One object per user and the totals as JSON, for scripts.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// One row per user as CSV with a header, for a spreadsheet.
    #[arg(long)]
    pub csv: bool,
    /// Also write a self-contained HTML page (bars per user, a strip of days).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `2026-11` → the first day of that month.
fn month(text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a month; write it as YYYY-MM, e.g. 2026-11"))
}

#[derive(Debug, Args)]
pub struct CallsArgs {
    /// The extension whose CDR rows to show, e.g. 2055.
    pub extension: Extension,
    /// One local day (default: today).
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with_all = ["from", "to"])]
    pub day: Option<chrono::NaiveDate>,
    /// The first local day of a period (with --to; default --to: today).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<chrono::NaiveDate>,
    /// The last local day of a period.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "from")]
    pub to: Option<chrono::NaiveDate>,
    /// One object per CDR row as JSON, for scripts.
    #[arg(long)]
    pub json: bool,
    /// Show at most N rows (a line says when there are more).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only this extension's entries.
    #[arg(long)]
    pub ext: Option<Extension>,
    /// The entries as JSON, for scripts.
    #[arg(long)]
    pub json: bool,
    /// Times in UTC instead of the configured time zone (JSON is always RFC 3339).
    #[arg(long)]
    pub utc: bool,
    /// Only what happened on this local day.
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "since")]
    pub day: Option<chrono::NaiveDate>,
    /// Only what happened on or after this local day.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub since: Option<chrono::NaiveDate>,
    /// Only these events (repeat for several), e.g. --event grant --event blocked.
    #[arg(long = "event", value_name = "NAME")]
    pub events: Vec<String>,
    /// The newest N entries, newest first.
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Numbers as dialled or as sent to the trunk, e.g. 87011234567.
    #[arg(required = true, value_name = "NUMBER")]
    pub numbers: Vec<String>,
    /// The verdicts as JSON, for scripts.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `--help` explains every argument of every command.
    #[test]
    fn every_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "callquota", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
}
