//! `user add | set | remove | list`.

use anyhow::Result;
use serde::Serialize;

use super::Context;
use crate::cli::UserCommand;
use crate::contact::{normalize_email, validate_name};
use crate::duration::format as human;
use crate::exit::UsageError;
use crate::extension::Extension;
use crate::state::{State, User};

/// The most one user may get per day.
const MAX_DAILY_LIMIT_S: u64 = 86_400;

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
    active: bool,
    since: String,
}

pub fn user(ctx: &Context, command: UserCommand) -> Result<()> {
    let mut state = State::open(&ctx.config.state_db)?;
    match command {
        UserCommand::Add {
            extension,
            name,
            email,
            cc,
            daily_limit,
        } => {
            let daily_limit_s = check_limit(daily_limit)?;
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
                active: true,
                since: ctx.today(),
            };
            check_contact(&mut user)?;
            state.insert_user(&user, ctx.now)?;
            if user.email != email {
                println!("email stored as {} (the form mail servers accept)", user.email);
            }
            println!(
                "added {} ({}), daily limit {}",
                user.extension,
                user.name,
                human(user.daily_limit_s)
            );
        }
        UserCommand::Set {
            extension,
            name,
            email,
            cc,
            daily_limit,
            disable,
            enable,
        } => {
            let old = existing(&state, &extension)?;
            let mut new = old.clone();
            if let Some(name) = name {
                new.name = name;
            }
            if let Some(email) = email {
                new.email = email;
            }
            if let Some(cc) = cc {
                new.cc = cc;
            }
            if let Some(limit) = daily_limit {
                new.daily_limit_s = check_limit(limit)?;
            }
            if disable {
                new.active = false;
            }
            if enable {
                new.active = true;
            }
            check_contact(&mut new)?;
            if state.update_user(&old, &new, ctx.now)? {
                println!("updated {extension}");
            } else {
                println!("{extension} unchanged");
            }
        }
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
                    active: u.active,
                    since: u.since.to_string(),
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<8} {:<24} {:<32} {:>12}  STATE",
                    "EXT", "NAME", "EMAIL", "DAILY LIMIT"
                );
                for r in &rows {
                    println!(
                        "{:<8} {:<24} {:<32} {:>12}  {}",
                        r.extension,
                        r.name.chars().take(24).collect::<String>(),
                        r.email,
                        human(r.daily_limit_s),
                        if r.active { "active" } else { "disabled" }
                    );
                }
            }
        }
    }
    Ok(())
}
