//! The `meta` facts of a run (`open_day`, the include generations,
//! `last_run_at`), and the audited events that change them (`rewind`).

use super::audit::append_audit;
use super::db::{LAST_RUN_AT, State, day_text, timestamp};
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior};

impl State {
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// When the last successful run finished, as states written before the
    /// lock file kept it (runs now record it there: `adapters::lock::record_success`).
    pub fn last_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .meta(LAST_RUN_AT)?
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.to_utc()))
    }

    /// A day kept in `meta` under `key` (bookkeeping of the runs).
    pub fn day_meta(&self, key: &str) -> Result<Option<NaiveDate>> {
        self.meta(key)?
            .map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").with_context(|| format!("meta {key} is corrupt")))
            .transpose()
    }

    pub fn set_day_meta(&self, key: &str, day: NaiveDate) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, &day_text(day)],
            )
            .with_context(|| format!("cannot write state_db {}", self.path.display()))?;
        Ok(())
    }

    pub fn open_day(&self) -> Result<Option<NaiveDate>> {
        self.meta("open_day")?
            .map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").context("meta open_day is corrupt"))
            .transpose()
    }

    /// Sets a run fact and logs the event that set it, together.
    pub fn record_meta_event(
        &self,
        key: &str,
        value: &str,
        event: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        append_audit(&tx, &timestamp(now), None, None, event, detail)?;
        tx.commit()
            .with_context(|| format!("cannot commit to state_db {}", self.path.display()))?;
        Ok(())
    }

    /// Undoes a clock that ran ahead: removes ledgers, grants and pending
    /// notices of days after `today`, reopens `today` and sets it as the open
    /// day, in one transaction with one audit entry. `None` when the state is
    /// not ahead. Sent notices and the audit log stay as history.
    pub fn rewind_to(&mut self, today: NaiveDate, now: DateTime<Utc>) -> Result<Option<String>> {
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .with_context(|| format!("cannot write state_db {path}"))?;
        let open_day: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'open_day'", [], |r| r.get(0))
            .optional()?;
        let Some(open_day) = open_day.filter(|d| d.as_str() > day_text(today).as_str()) else {
            return Ok(None);
        };
        let day = day_text(today);
        let ledgers = tx.execute("DELETE FROM ledger WHERE day > ?1", [&day])?;
        let grants = tx.execute("DELETE FROM grants WHERE day > ?1", [&day])?;
        let notices = tx.execute("DELETE FROM outbox WHERE day > ?1 AND status = 'pending'", [&day])?;
        let ledgers = ledgers + tx.execute("DELETE FROM direction_ledger WHERE day > ?1", [&day])?;
        tx.execute("UPDATE ledger SET closed = 0 WHERE day = ?1", [&day])?;
        tx.execute("UPDATE direction_ledger SET closed = 0 WHERE day = ?1", [&day])?;
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'open_day'", [&day])?;
        // Days after `today` are gone: their settling starts over (see run's SETTLED_DAY).
        tx.execute("DELETE FROM meta WHERE key = 'settled_day' AND value >= ?1", [&day])?;
        let summary = format!(
            "rewound the state from {open_day} to {day}: removed {ledgers} ledger rows, {grants} grants and \
             {notices} pending notices of later days; {day} is open again"
        );
        append_audit(&tx, &timestamp(now), None, Some(today), "clock_rewound", &summary)?;
        tx.commit()
            .with_context(|| format!("cannot commit to state_db {path}"))?;
        Ok(Some(summary))
    }
}
