//! The notification outbox: notices and digests waiting, sent, retried
//! or given up, each outcome with its audit row.

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{TransactionBehavior, params};

use super::audit::append_audit;
use super::db::{State, parse_extension, seconds, timestamp};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    /// `notice` (to a user) or `digest` (a closed day, to `[mail] digest_to`).
    pub kind: String,
    /// For a notice: `day` (the day's allowance) or `month` (the monthly limit).
    pub period: String,
    /// For a notice about a direction allowance: its direction (else null).
    pub direction: Option<String>,
    pub extension: String,
    pub day: String,
    pub threshold: u8,
    pub used_s: u64,
    pub allowance_s: u64,
    pub created_at: String,
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub sent_at: Option<String>,
}

impl State {
    pub fn outbox(&self, pending_only: bool) -> Result<Vec<OutboxEntry>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, extension, day, threshold, used_s, allowance_s, created_at, status, attempts, last_error,
             next_attempt_at, sent_at, kind, period, direction FROM outbox WHERE ?1 = 0 OR status = 'pending' ORDER BY id",
        )?;
        let rows = stmt.query_map([pending_only], |r| {
            Ok(OutboxEntry {
                id: r.get(0)?,
                extension: r.get(1)?,
                day: r.get(2)?,
                threshold: r.get::<_, i64>(3)?.clamp(0, 100) as u8,
                used_s: seconds(r, "used_s")?,
                allowance_s: seconds(r, "allowance_s")?,
                created_at: r.get(6)?,
                status: r.get(7)?,
                attempts: r.get::<_, i64>(8)?.max(0) as u32,
                last_error: r.get(9)?,
                next_attempt_at: r.get(10)?,
                sent_at: r.get(11)?,
                kind: r.get(12)?,
                period: r.get(13)?,
                direction: r.get(14)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Pending notices whose next attempt is due at `now` (every pending
    /// one with `None`: `mail flush`), oldest first.
    pub fn due_notices(&self, now: Option<DateTime<Utc>>) -> Result<Vec<OutboxEntry>> {
        let due = now.map(timestamp);
        Ok(self
            .outbox(true)?
            .into_iter()
            .filter(|e| match (&due, e.next_attempt_at.as_deref()) {
                (Some(due), Some(at)) => at <= due.as_str(),
                _ => true,
            })
            .collect())
    }

    /// The newest notice queued after `entry` about the same allowance
    /// (user, period, direction) and day (for a monthly notice: month),
    /// pending or sent.
    pub fn newer_notice(&self, entry: &OutboxEntry) -> Result<Option<i64>> {
        Ok(self.conn.query_row(
            "SELECT MAX(id) FROM outbox WHERE kind = 'notice' AND id > ?1 AND extension = ?2 AND period = ?3
             AND direction IS ?4 AND status IN ('pending', 'sent')
             AND CASE WHEN ?3 = 'month' THEN substr(day, 1, 7) = substr(?5, 1, 7) ELSE day = ?5 END",
            params![entry.id, entry.extension, entry.period, entry.direction, entry.day],
            |r| r.get(0),
        )?)
    }

    /// Rewrites a pending notice's figures to what is true now, with its
    /// audit entry, before it is sent (a crash after this sends the
    /// rewritten notice). Returns the entry as rewritten.
    pub fn rewrite_notice(
        &mut self,
        entry: &OutboxEntry,
        current: crate::core::outbox::Current,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let words = crate::core::outbox::rewrite_words(
            crate::core::outbox::Queued {
                threshold: entry.threshold,
                used_s: entry.used_s,
                allowance_s: entry.allowance_s,
            },
            current,
        );
        tx.execute(
            "UPDATE outbox SET used_s = ?2, allowance_s = ?3 WHERE id = ?1 AND status = 'pending'",
            params![
                entry.id,
                i64::try_from(current.used_s).unwrap_or(i64::MAX),
                i64::try_from(current.allowance_s).unwrap_or(i64::MAX)
            ],
        )?;
        append_audit(
            &tx,
            &timestamp(now),
            parse_extension(&entry.extension).ok().as_ref(),
            NaiveDate::parse_from_str(&entry.day, "%Y-%m-%d").ok(),
            "notice_rewritten",
            &format!("{} rewritten to what is true: {words}", describe(entry)),
        )?;
        tx.commit()?;
        Ok(OutboxEntry {
            used_s: current.used_s,
            allowance_s: current.allowance_s,
            ..entry.clone()
        })
    }

    /// Records the outcome of one delivery attempt, with its audit entry, in one transaction.
    pub fn record_delivery(&mut self, entry: &OutboxEntry, outcome: &Delivery, now: DateTime<Utc>) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at = timestamp(now);
        let extension = parse_extension(&entry.extension).ok();
        let day = NaiveDate::parse_from_str(&entry.day, "%Y-%m-%d").ok();
        let what = describe(entry);
        // (status, attempt counted, last error, sent at, next attempt at, audit entry)
        type Change<'a> = (
            &'a str,
            i64,
            Option<&'a str>,
            Option<String>,
            Option<String>,
            Option<(&'a str, String)>,
        );
        let (status, attempt, error, sent_at, next_attempt_at, audit): Change<'_> = match outcome {
            Delivery::Sent { to } => (
                "sent",
                1,
                None,
                Some(at.clone()),
                None,
                Some(("notice_sent", format!("{what} to {to}"))),
            ),
            Delivery::Skipped { reason } => (
                "skipped",
                0,
                Some(reason),
                None,
                None,
                Some(("notice_skipped", format!("{what}: {reason}"))),
            ),
            Delivery::Dropped { reason } => (
                "skipped",
                0,
                Some(reason),
                None,
                None,
                Some(("notice_dropped", format!("{what} not sent: {reason}"))),
            ),
            Delivery::Retry { error, next_attempt_at } => {
                ("pending", 1, Some(error), None, Some(timestamp(*next_attempt_at)), None)
            }
            Delivery::GaveUp { error } => (
                "failed",
                1,
                Some(error),
                None,
                None,
                Some(("notice_given_up", format!("{what}: {error}"))),
            ),
        };
        tx.execute(
            "UPDATE outbox SET status = ?2, attempts = attempts + ?3, last_error = ?4,
             sent_at = COALESCE(?5, sent_at), next_attempt_at = COALESCE(?6, next_attempt_at) WHERE id = ?1",
            params![entry.id, status, attempt, error, sent_at, next_attempt_at],
        )?;
        if let Some((event, detail)) = audit {
            append_audit(&tx, &at, extension.as_ref(), day, event, &detail)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// How the audit log names an outbox entry: `90% notice #3`.
fn describe(entry: &OutboxEntry) -> String {
    if entry.kind == "digest" {
        return format!("digest #{}", entry.id);
    }
    format!(
        "{}% {}{}notice #{}",
        entry.threshold,
        if entry.period == "month" { "monthly " } else { "" },
        entry.direction.as_deref().map(|d| format!("{d} ")).unwrap_or_default(),
        entry.id
    )
}

/// What happened to one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent {
        to: String,
    },
    Skipped {
        reason: String,
    },
    /// No longer true (`core::outbox::judge`): not sent, status `skipped`.
    Dropped {
        reason: String,
    },
    Retry {
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    GaveUp {
        error: String,
    },
}
