//! The `users` table: who is tracked, with what limit and address.

use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior, params};

use super::audit::append_audit;
use super::db::{State, day_text, optional_seconds, parse_day, parse_extension, seconds, timestamp, to_sql_seconds};
use crate::core::user::{User, user_changes};
use crate::values::extension::Extension;

impl State {
    // ---- users -------------------------------------------------------------

    pub fn users(&self) -> Result<Vec<User>> {
        users(&self.conn)
    }

    pub fn user(&self, extension: &Extension) -> Result<Option<User>> {
        Ok(users_where(&self.conn, Some(extension))?.pop())
    }

    pub fn insert_user(&mut self, user: &User, now: DateTime<Utc>) -> Result<()> {
        self.import_users(std::slice::from_ref(user), &[], now)
    }

    /// Adds `add` and stores each `new` over its `old`, all in one
    /// transaction, one audit row per user added or changed.
    pub fn import_users(&mut self, add: &[User], change: &[(User, User)], now: DateTime<Utc>) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at = timestamp(now);
        for user in add {
            tx.execute(
                "INSERT INTO users (extension, name, email, daily_limit_s, active, since_day, created_at, updated_at, cc,
                   monthly_limit_s)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)",
                params![
                    user.extension.as_str(),
                    user.name,
                    user.email,
                    to_sql_seconds(user.daily_limit_s),
                    user.active,
                    day_text(user.since),
                    at,
                    user.cc,
                    user.monthly_limit_s.map(to_sql_seconds)
                ],
            )?;
            store_direction_limits(&tx, user)?;
            append_audit(
                &tx,
                &at,
                Some(&user.extension),
                None,
                "user_added",
                &crate::core::user::user_added_words(user),
            )?;
        }
        store_changes(&tx, change, &at)?;
        tx.commit()?;
        Ok(())
    }

    /// Stores `new` over `old`, logging each changed field.
    pub fn update_user(&mut self, old: &User, new: &User, now: DateTime<Utc>) -> Result<bool> {
        Ok(self.update_users(&[(old.clone(), new.clone())], now)? == 1)
    }

    /// Stores each `new` over its `old` in one transaction, one audit row per
    /// user that changed; returns how many changed.
    pub fn update_users(&mut self, changes: &[(User, User)], now: DateTime<Utc>) -> Result<usize> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = store_changes(&tx, changes, &timestamp(now))?;
        tx.commit()?;
        Ok(changed)
    }

    pub fn delete_user(&mut self, user: &User, now: DateTime<Utc>) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM users WHERE extension = ?1", [user.extension.as_str()])?;
        tx.execute(
            "DELETE FROM direction_limits WHERE extension = ?1",
            [user.extension.as_str()],
        )?;
        append_audit(
            &tx,
            &timestamp(now),
            Some(&user.extension),
            None,
            "user_removed",
            &format!("name {:?}; ledger history kept", user.name),
        )?;
        tx.commit()?;
        Ok(())
    }
}

pub(super) fn users(conn: &Connection) -> Result<Vec<User>> {
    users_where(conn, None)
}

/// All users, or the one with `extension`.
pub(super) fn users_where(conn: &Connection, extension: Option<&Extension>) -> Result<Vec<User>> {
    let mut stmt = conn.prepare(
        "SELECT extension, name, email, daily_limit_s, active, since_day, cc, monthly_limit_s FROM users
             WHERE ?1 IS NULL OR extension = ?1 ORDER BY extension",
    )?;
    let rows = stmt.query_map([extension.map(Extension::as_str)], |r| {
        Ok(User {
            extension: parse_extension(&r.get::<_, String>(0)?)?,
            name: r.get(1)?,
            email: r.get(2)?,
            daily_limit_s: seconds(r, "daily_limit_s")?,
            active: r.get(4)?,
            since: parse_day(&r.get::<_, String>(5)?)?,
            cc: r.get(6)?,
            monthly_limit_s: optional_seconds(r, "monthly_limit_s")?,
            direction_limits: Default::default(),
            direction_since: Default::default(),
        })
    })?;
    let mut users: Vec<User> = rows.collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare(
        "SELECT extension, direction, daily_limit_s, since_day FROM direction_limits WHERE ?1 IS NULL OR extension = ?1",
    )?;
    let mut rows = stmt.query([extension.map(Extension::as_str)])?;
    while let Some(r) = rows.next()? {
        let (ext, direction): (String, String) = (r.get(0)?, r.get(1)?);
        if let Some(user) = users.iter_mut().find(|u| u.extension.as_str() == ext) {
            user.direction_limits
                .insert(direction.clone(), seconds(r, "daily_limit_s")?);
            user.direction_since
                .insert(direction, parse_day(&r.get::<_, String>("since_day")?)?);
        }
    }
    Ok(users)
}

/// Stores a user's direction limits as given (rows of other directions go).
fn store_direction_limits(conn: &Connection, user: &User) -> Result<()> {
    conn.execute(
        "DELETE FROM direction_limits WHERE extension = ?1",
        [user.extension.as_str()],
    )?;
    for (direction, limit) in &user.direction_limits {
        let since = user.direction_since.get(direction).copied().unwrap_or(user.since);
        conn.execute(
            "INSERT INTO direction_limits (extension, direction, daily_limit_s, since_day) VALUES (?1, ?2, ?3, ?4)",
            params![
                user.extension.as_str(),
                direction,
                to_sql_seconds(*limit),
                day_text(since)
            ],
        )?;
    }
    Ok(())
}

/// Stores each changed user, one `user_changed` audit row each; returns how many changed.
pub(super) fn store_changes(conn: &Connection, changes: &[(User, User)], at: &str) -> Result<usize> {
    let mut changed = 0;
    for (old, new) in changes {
        let what = user_changes(old, new);
        if what.is_empty() {
            continue;
        }
        conn.execute(
            "UPDATE users SET name = ?2, email = ?3, daily_limit_s = ?4, active = ?5, since_day = ?6, updated_at = ?7,
             cc = ?8, monthly_limit_s = ?9 WHERE extension = ?1",
            params![
                new.extension.as_str(),
                new.name,
                new.email,
                to_sql_seconds(new.daily_limit_s),
                new.active,
                day_text(new.since),
                at,
                new.cc,
                new.monthly_limit_s.map(to_sql_seconds)
            ],
        )?;
        store_direction_limits(conn, new)?;
        append_audit(conn, at, Some(&new.extension), None, "user_changed", &what.join(", "))?;
        changed += 1;
    }
    Ok(changed)
}
