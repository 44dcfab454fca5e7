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

    /// Pending notices whose next attempt is due at `now`, oldest first.
    pub fn due_notices(&self, now: DateTime<Utc>) -> Result<Vec<OutboxEntry>> {
        let due = timestamp(now);
        Ok(self
            .outbox(true)?
            .into_iter()
            .filter(|e| e.next_attempt_at.as_deref().is_none_or(|at| at <= due.as_str()))
            .collect())
    }

    /// Records the outcome of one delivery attempt, with its audit entry, in one transaction.
    pub fn record_delivery(&mut self, entry: &OutboxEntry, outcome: &Delivery, now: DateTime<Utc>) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at = timestamp(now);
        let extension = parse_extension(&entry.extension).ok();
        let day = NaiveDate::parse_from_str(&entry.day, "%Y-%m-%d").ok();
        let what = if entry.kind == "digest" {
            format!("digest #{}", entry.id)
        } else {
            format!(
                "{}% {}notice #{}",
                entry.threshold,
                if entry.period == "month" { "monthly " } else { "" },
                entry.id
            )
        };
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

/// What happened to one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent {
        to: String,
    },
    Skipped {
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
