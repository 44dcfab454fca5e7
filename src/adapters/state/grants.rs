//! The `grants` table: extra seconds for one user and day, with the reason.

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::audit::append_audit;
use super::db::{State, day_text, timestamp, to_sql_seconds};
use crate::values::duration::format as human;
use crate::values::extension::Extension;

impl State {
    // ---- grants ------------------------------------------------------------

    /// Stores a grant for `day`, unless a run has closed that day meanwhile
    /// (a grant typed just before midnight): then nothing is stored and the
    /// open day is returned, checked in the same transaction as the insert.
    /// `direction`: a grant to that direction's allowance, not the shared one.
    #[allow(clippy::too_many_arguments)]
    pub fn add_grant(
        &mut self,
        extension: &Extension,
        day: NaiveDate,
        direction: Option<&str>,
        seconds: u64,
        reason: &str,
        on_behalf_of: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), NaiveDate>> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let open_day: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'open_day'", [], |r| r.get(0))
            .optional()?;
        let open_day = open_day
            .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").context("meta open_day is corrupt"))
            .transpose()?;
        if let Some(open_day) = open_day
            && open_day > day
        {
            return Ok(Err(open_day));
        }
        let at = timestamp(now);
        tx.execute(
            "INSERT INTO grants (extension, day, seconds, reason, created_at, on_behalf_of, direction)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                extension.as_str(),
                day_text(day),
                to_sql_seconds(seconds),
                reason,
                at,
                on_behalf_of,
                direction
            ],
        )?;
        append_audit(
            &tx,
            &at,
            Some(extension),
            Some(day),
            "grant",
            &format!(
                "+{}{} for {}{}{}",
                human(seconds),
                direction.map(|d| format!(" of {d}")).unwrap_or_default(),
                day_text(day),
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                },
                on_behalf_of
                    .map(|by| format!(" (on behalf of {by})"))
                    .unwrap_or_default()
            ),
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }
}
