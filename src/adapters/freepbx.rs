//! FreePBX's own directory (database `asterisk`), read-only: the extensions
//! (`users`) with their User Management rows (`userman_users`), for
//! `user import --freepbx`.

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use mysql::prelude::Queryable;

use crate::config::FreepbxSettings;
use crate::core::import::{Candidate, freepbx_name};

/// Every extension FreePBX has, named and addressed as User Management has
/// them (a user with no User Management row keeps the extension's name).
pub fn candidates(settings: &FreepbxSettings) -> Result<Vec<Candidate>> {
    let where_ = settings.connection.describe();
    let mut conn = crate::adapters::cdr::read_only_session(
        &settings.connection,
        settings.timeout,
        "the FreePBX database",
        "[freepbx]",
    )?;
    // Two plain reads joined here: userman_users has no index on
    // default_extension, so a server-side join is quadratic (2 s for 5,000).
    let fail = |e: mysql::Error| {
        anyhow!(
            "reading users and userman_users from {where_} failed: {}; is this FreePBX's `asterisk` database, and may the account SELECT there?",
            crate::adapters::cdr::one_line(&e)
        )
    };
    type Bytes = Option<Vec<u8>>;
    let extensions: Vec<(Bytes, Bytes)> = conn
        .query("SELECT extension, name FROM users ORDER BY extension")
        .map_err(fail)?;
    let directory: Vec<(Bytes, Bytes, Bytes, Bytes, Bytes)> = conn
        .query(
            "SELECT default_extension, displayname, fname, lname, email FROM userman_users \
             WHERE default_extension <> 'none' ORDER BY id",
        )
        .map_err(fail)?;
    let text = |v: &Bytes| {
        v.as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    // The first User Management row (by id) of each extension.
    let mut people: HashMap<String, (String, String, String, String)> = HashMap::new();
    for (extension, displayname, fname, lname, email) in &directory {
        people
            .entry(text(extension))
            .or_insert_with(|| (text(displayname), text(fname), text(lname), text(email)));
    }
    Ok(extensions
        .iter()
        .map(|(extension, name)| {
            let extension = text(extension);
            let (displayname, fname, lname, email) = people.get(&extension).cloned().unwrap_or_default();
            Candidate {
                line: None,
                name: freepbx_name(&displayname, &fname, &lname, &text(name)),
                extension,
                email,
                daily_limit_s: None,
                cc: None,
            }
        })
        .collect())
}
