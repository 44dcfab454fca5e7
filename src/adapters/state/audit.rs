//! The append-only audit log (triggers refuse UPDATE and DELETE): every
//! change, who made it, and the filters of `log`.

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, params};

use super::db::{State, day_text, timestamp};
use crate::values::extension::Extension;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub extension: Option<String>,
    pub day: Option<String>,
    pub event: String,
    pub detail: String,
    /// Who did it (see [`set_actor`]); `None` on rows from before V4.
    pub actor: Option<String>,
}

/// Which audit rows `log` shows: all of them by default.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub extension: Option<Extension>,
    /// Rows at or after this instant (RFC 3339 UTC, as stored).
    pub from: Option<DateTime<Utc>>,
    /// Rows before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only these events (any of them); empty: every event.
    pub events: Vec<String>,
    /// The newest `limit` rows, newest first; `None`: all, oldest first.
    pub limit: Option<u32>,
}

/// Every event name the audit log uses, for `log --event`.
pub const AUDIT_EVENTS: [&str; 28] = [
    "blocked",
    "clock_rewound",
    "day_closed",
    "direction_blocked",
    "direction_day_closed",
    "direction_late_usage",
    "direction_level_lowered",
    "direction_threshold_crossed",
    "direction_unblocked",
    "generation_lost",
    "grant",
    "include_disarmed",
    "include_written",
    "late_usage",
    "level_lowered",
    "month_threshold_crossed",
    "notice_dropped",
    "notice_given_up",
    "notice_rewritten",
    "notice_sent",
    "notice_skipped",
    "reload_failed",
    "reload_ok",
    "threshold_crossed",
    "unblocked",
    "user_added",
    "user_changed",
    "user_removed",
];

static ACTOR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The person this process acts for; every audit row it writes names them.
/// Set once, at startup (before a root process becomes the service user).
pub fn set_actor(actor: &str) {
    let _ = ACTOR.set(actor.to_string());
}

impl State {
    pub fn audit(&self, extension: Option<&Extension>, event: &str, detail: &str, now: DateTime<Utc>) -> Result<()> {
        append_audit(&self.conn, &timestamp(now), extension, None, event, detail)
    }

    pub fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut sql = String::from("SELECT id, at, extension, day, event, detail, actor FROM audit WHERE 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(ext) = &filter.extension {
            args.push(ext.as_str().to_string().into());
            sql.push_str(&format!(" AND extension = ?{}", args.len()));
        }
        // Stored as fixed-width RFC 3339 UTC text, so text order is time order.
        if let Some(from) = filter.from {
            args.push(timestamp(from).into());
            sql.push_str(&format!(" AND at >= ?{}", args.len()));
        }
        if let Some(until) = filter.until {
            args.push(timestamp(until).into());
            sql.push_str(&format!(" AND at < ?{}", args.len()));
        }
        if !filter.events.is_empty() {
            let mut marks = Vec::new();
            for event in &filter.events {
                args.push(event.clone().into());
                marks.push(format!("?{}", args.len()));
            }
            sql.push_str(&format!(" AND event IN ({})", marks.join(", ")));
        }
        match filter.limit {
            Some(limit) => sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit}")),
            None => sql.push_str(" ORDER BY id"),
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                extension: r.get(2)?,
                day: r.get(3)?,
                event: r.get(4)?,
                detail: r.get(5)?,
                actor: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

pub(super) fn append_audit(
    conn: &Connection,
    at: &str,
    extension: Option<&Extension>,
    day: Option<NaiveDate>,
    event: &str,
    detail: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at, extension, day, event, detail, actor) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        at,
        extension.map(|e| e.as_str()),
        day.map(day_text),
        event,
        detail,
        ACTOR.get()
    ])?;
    Ok(())
}
