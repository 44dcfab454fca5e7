//! `user add | set | remove | list`.

use anyhow::Result;
use serde::Serialize;

use super::context::Context;
use crate::adapters::state::State;
use crate::cli::{DirectionLimit, MonthlyLimit, UserCommand};
use crate::core::user::User;
use crate::exit::UsageError;
use crate::values::contact::{normalize_email, validate_name};
use crate::values::duration::format as human;
use crate::values::extension::Extension;

/// The most one user may get per day.
const MAX_DAILY_LIMIT_S: u64 = 86_400;

/// The most one user may get per month: 31 full days.
const MAX_MONTHLY_LIMIT_S: u64 = 31 * MAX_DAILY_LIMIT_S;

fn check_monthly(limit: Option<MonthlyLimit>) -> Result<Option<Option<u64>>> {
    match limit {
        Some(MonthlyLimit(Some(seconds))) if seconds > MAX_MONTHLY_LIMIT_S => Err(UsageError(format!(
            "--monthly-limit {} is more than a month (744h); give less, or none to remove the cap",
            human(seconds)
        ))
        .into()),
        Some(MonthlyLimit(limit)) => Ok(Some(limit)),
        None => Ok(None),
    }
}

fn check_limit(seconds: u64) -> Result<u64> {
    if seconds > MAX_DAILY_LIMIT_S {
        return Err(UsageError(format!("--daily-limit {} is more than a day (24h)", human(seconds))).into());
    }
    Ok(seconds)
}

/// Checks name and addresses, and stores the addresses in their sendable form.
fn check_contact(user: &mut User) -> Result<()> {
    validate_name(&user.name).map_err(|e| UsageError(e.to_string()))?;
    user.email = normalize_email(&user.email).map_err(|e| UsageError(e.to_string()))?;
    user.cc = normalize_email(&user.cc).map_err(|e| UsageError(format!("--cc: {e}")))?;
    Ok(())
}

/// `user import`: read the source, decide, print, apply in one transaction.
fn import(
    ctx: &Context,
    state: &mut State,
    freepbx: bool,
    csv: Option<&std::path::Path>,
    daily_limit: Option<u64>,
    only: Option<&crate::core::pattern::Pattern>,
    dry_run: bool,
) -> Result<()> {
    use crate::core::import::{Source, csv_candidates, plan};
    if let Some(limit) = daily_limit {
        check_limit(limit)?;
    }
    let (source, candidates) = match (freepbx, csv) {
        (true, _) => {
            let settings = ctx.config.freepbx.as_ref().ok_or_else(|| crate::config::ConfigError {
                path: ctx.config.path.display().to_string(),
                message: "user import --freepbx needs a [freepbx] section: url, or host, user and password_file \
                          (database defaults to asterisk)"
                    .into(),
                unconfigured: false,
            })?;
            (Source::Freepbx, crate::adapters::freepbx::candidates(settings)?)
        }
        (false, Some(path)) => {
            // Bounded and regular files only: a FIFO or /dev/zero cannot hang or flood the import.
            let bytes = crate::config::read_bounded(path, 64 * 1024 * 1024)
                .map_err(|e| UsageError(format!("--csv {}: cannot be read: {e}", path.display())))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| UsageError(format!("--csv {}: is not UTF-8 text; save it as UTF-8", path.display())))?;
            (
                Source::Csv,
                csv_candidates(&text).map_err(|e| UsageError(e.to_string()))?,
            )
        }
        (false, None) => return Err(UsageError("give --freepbx or --csv FILE".into()).into()),
    };
    let existing = state.users()?;
    let plan =
        plan(&existing, candidates, source, daily_limit, only, ctx.today()).map_err(|e| UsageError(e.to_string()))?;
    for user in &plan.add {
        println!(
            "add {} {:?} <{}>, daily limit {}",
            user.extension,
            user.name,
            user.email,
            human(user.daily_limit_s)
        );
    }
    for (old, new) in &plan.change {
        println!(
            "change {}: {}",
            new.extension,
            crate::core::user::user_changes(old, new).join(", ")
        );
    }
    for (extension, why) in &plan.skipped {
        println!("skip {}: {why}", extension.escape_debug());
    }
    let counts = format!(
        "{} to add, {} to change, {} unchanged, {} skipped",
        plan.add.len(),
        plan.change.len(),
        plan.unchanged,
        plan.skipped.len()
    );
    if dry_run {
        println!("{counts} (dry run: nothing changed)");
        return Ok(());
    }
    state.import_users(&plan.add, &plan.change, ctx.now)?;
    println!("imported: {counts}");
    Ok(())
}

/// Applies `--limit DIRECTION=DURATION|none`: each direction must be a
/// configured `[[direction]]`, so the dialplan and `run` can tell it.
fn apply_direction_limits(ctx: &Context, user: &mut User, limits: &[DirectionLimit]) -> Result<()> {
    for l in limits {
        // Removing one is always allowed (its direction may be gone from the config).
        if l.limit_s.is_some() && !ctx.config.paid.directions().iter().any(|d| d.name == l.direction) {
            let names: Vec<&str> = ctx.config.paid.directions().iter().map(|d| d.name.as_str()).collect();
            return Err(UsageError(format!(
                "--limit {}: no [[direction]] named {:?} in the config (there are: {})",
                l.direction,
                l.direction,
                names.join(", ")
            ))
            .into());
        }
        match l.limit_s {
            Some(seconds) => {
                // A new allowance applies from today; a changed one keeps its first day.
                if user
                    .direction_limits
                    .insert(l.direction.clone(), check_limit(seconds)?)
                    .is_none()
                {
                    user.direction_since.insert(l.direction.clone(), ctx.today());
                }
            }
            None => {
                user.direction_limits.remove(&l.direction);
                user.direction_since.remove(&l.direction);
            }
        }
    }
    Ok(())
}

/// The changes `user set` may make to one user or to many at once.
fn apply_shared(
    user: &mut User,
    cc: Option<&str>,
    daily_limit: Option<u64>,
    monthly_limit: Option<MonthlyLimit>,
    disable: bool,
    enable: bool,
) -> Result<()> {
    if let Some(cc) = cc {
        user.cc = cc.to_string();
    }
    if let Some(limit) = daily_limit {
        user.daily_limit_s = check_limit(limit)?;
    }
    if let Some(limit) = check_monthly(monthly_limit)? {
        user.monthly_limit_s = limit;
    }
    if disable {
        user.active = false;
    }
    if enable {
        user.active = true;
    }
    Ok(())
}

fn existing(state: &State, extension: &Extension) -> Result<User> {
    state.user(extension)?.ok_or_else(|| {
        UsageError(format!(
            "unknown extension {extension}; see `callquota user list` or add it with `callquota user add`"
        ))
        .into()
    })
}

#[derive(Serialize)]
struct UserRow<'a> {
    extension: &'a str,
    name: &'a str,
    email: &'a str,
    cc: &'a str,
    daily_limit_s: u64,
    /// `null`: no monthly cap.
    monthly_limit_s: Option<u64>,
    /// Each direction's own daily limit (seconds), alongside the shared one.
    direction_limits_s: &'a std::collections::BTreeMap<String, u64>,
    active: bool,
    since: String,
}

pub fn user(ctx: &Context, command: UserCommand) -> Result<()> {
    // Accepted (a user who may make no paid call at all), but never by a
    // slip: said once the command has done it.
    let zero_limit = match &command {
        UserCommand::Add { daily_limit, .. } => *daily_limit == 0,
        UserCommand::Set { daily_limit, .. } => *daily_limit == Some(0),
        UserCommand::Import {
            daily_limit, dry_run, ..
        } => *daily_limit == Some(0) && !dry_run,
        _ => false,
    };
    user_command(ctx, command)?;
    if zero_limit {
        eprintln!(
            "callquota: warning: --daily-limit 0 blocks every paid call of the users it was given to, from now on; \
             to stop limiting a user instead: callquota user set EXT --disable"
        );
    }
    Ok(())
}

fn user_command(ctx: &Context, command: UserCommand) -> Result<()> {
    // Adding users may start a site's state; other user commands need one.
    if matches!(command, UserCommand::Add { .. } | UserCommand::Import { .. }) {
        State::create_if_missing(&ctx.config.state_db)?;
    }
    let mut state = State::open(&ctx.config.state_db)?;
    match command {
        UserCommand::Add {
            extension,
            name,
            email,
            cc,
            daily_limit,
            monthly_limit,
            limits,
        } => {
            let daily_limit_s = check_limit(daily_limit)?;
            let monthly_limit_s = check_monthly(monthly_limit)?.flatten();
            if state.user(&extension)?.is_some() {
                return Err(UsageError(format!(
                    "extension {extension} is already a user; change it with `callquota user set`"
                ))
                .into());
            }
            let mut user = User {
                extension,
                name,
                email: email.clone(),
                cc,
                daily_limit_s,
                monthly_limit_s,
                direction_limits: Default::default(),
                direction_since: Default::default(),
                active: true,
                since: ctx.today(),
            };
            check_contact(&mut user)?;
            apply_direction_limits(ctx, &mut user, &limits)?;
            state.insert_user(&user, ctx.now)?;
            if user.email != email {
                println!("email stored as {} (the form mail servers accept)", user.email);
            }
            println!(
                "added {} ({}), daily limit {}{}",
                user.extension,
                user.name,
                human(user.daily_limit_s),
                user.monthly_limit_s
                    .map(|m| format!(", monthly limit {}", human(m)))
                    .unwrap_or_default()
            );
        }
        UserCommand::Set {
            extension: Some(extension),
            name,
            email,
            cc,
            daily_limit,
            monthly_limit,
            limits,
            disable,
            enable,
            ..
        } => {
            let old = existing(&state, &extension)?;
            let mut new = old.clone();
            if let Some(name) = name {
                new.name = name;
            }
            if let Some(email) = email {
                new.email = email;
            }
            apply_shared(&mut new, cc.as_deref(), daily_limit, monthly_limit, disable, enable)?;
            apply_direction_limits(ctx, &mut new, &limits)?;
            check_contact(&mut new)?;
            if state.update_user(&old, &new, ctx.now)? {
                println!("updated {extension}");
            } else {
                println!("{extension} unchanged");
            }
        }
        UserCommand::Set {
            extension: None,
            all,
            only,
            cc,
            daily_limit,
            monthly_limit,
            limits,
            disable,
            enable,
            ..
        } => {
            if cc.is_none()
                && daily_limit.is_none()
                && monthly_limit.is_none()
                && limits.is_empty()
                && !disable
                && !enable
            {
                return Err(UsageError(
                    "nothing to change: give --daily-limit, --monthly-limit, --limit, --cc, --disable or --enable \
                     with --all or --only"
                        .into(),
                )
                .into());
            }
            let chosen: Vec<User> = state
                .users()?
                .into_iter()
                .filter(|u| all || only.as_ref().is_some_and(|p| p.matches(u.extension.as_str())))
                .collect();
            let mut changes = Vec::new();
            for old in &chosen {
                let mut new = old.clone();
                apply_shared(&mut new, cc.as_deref(), daily_limit, monthly_limit, disable, enable)?;
                apply_direction_limits(ctx, &mut new, &limits)?;
                check_contact(&mut new)?;
                changes.push((old.clone(), new));
            }
            let changed = state.update_users(&changes, ctx.now)?;
            let which = match &only {
                Some(p) => format!("matching {p}"),
                None => "in all".to_string(),
            };
            println!("{changed} of {} users {which} updated", chosen.len());
        }
        UserCommand::Import {
            freepbx,
            csv,
            daily_limit,
            only,
            dry_run,
        } => import(
            ctx,
            &mut state,
            freepbx,
            csv.as_deref(),
            daily_limit,
            only.as_ref(),
            dry_run,
        )?,
        UserCommand::Remove { extension } => {
            let user = existing(&state, &extension)?;
            state.delete_user(&user, ctx.now)?;
            println!("removed {extension}; its history stays in the ledger and audit log");
        }
        UserCommand::List { json } => {
            let users = state.users()?;
            let rows: Vec<UserRow<'_>> = users
                .iter()
                .map(|u| UserRow {
                    extension: u.extension.as_str(),
                    name: &u.name,
                    email: &u.email,
                    cc: &u.cc,
                    daily_limit_s: u.daily_limit_s,
                    monthly_limit_s: u.monthly_limit_s,
                    direction_limits_s: &u.direction_limits,
                    active: u.active,
                    since: u.since.to_string(),
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                // The monthly column only where someone has a monthly cap.
                let monthly = rows.iter().any(|r| r.monthly_limit_s.is_some());
                let month_cell = |m: Option<u64>| match (monthly, m) {
                    (false, _) => String::new(),
                    (true, Some(m)) => format!("  {:>13}", human(m)),
                    (true, None) => format!("  {:>13}", "-"),
                };
                println!(
                    "{:<8} {:<24} {:<32} {:<32} {:>12}{}  STATE",
                    "EXT",
                    "NAME",
                    "EMAIL",
                    "CC",
                    "DAILY LIMIT",
                    if monthly { "  MONTHLY LIMIT" } else { "" }
                );
                for r in &rows {
                    println!(
                        "{:<8} {:<24} {:<32} {:<32} {:>12}{}  {}",
                        r.extension,
                        r.name.chars().take(24).collect::<String>(),
                        r.email,
                        if r.cc.is_empty() { "-" } else { r.cc },
                        human(r.daily_limit_s),
                        month_cell(r.monthly_limit_s),
                        if r.active { "active" } else { "disabled" }
                    );
                }
            }
        }
    }
    Ok(())
}
