//! Read-only queries for what people read: a period's sums per user, each
//! day's figures for the HTML strip, the facts of a day's digest.

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, params};

use super::db::{State, day_text};
use crate::core::policy::Ledger;

/// A closed day's ledgers, each with the user's name, and the day's grants.
pub type DigestFacts = (Vec<(Ledger, String)>, Vec<DayGrant>);

/// A `direction_blocked` event: (extension, direction), day, when.
pub type DirectionBlock = ((String, String), NaiveDate, DateTime<Utc>);

/// One grant, with who entered it and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayGrant {
    pub extension: String,
    pub seconds: u64,
    pub reason: String,
    /// `grant --by`; empty when not given.
    pub on_behalf_of: String,
    /// RFC 3339 UTC.
    pub at: String,
    /// The audit row's actor.
    pub by: Option<String>,
}

impl State {
    /// What a day's digest says: each user's ledger of that day with their
    /// name, and the grants with who made them, from the audit log. (When
    /// they were blocked: [`State::block_events`] and `core::blocked`.)
    pub fn digest_facts(&self, day: NaiveDate) -> Result<DigestFacts> {
        let ledgers = self.ledgers_on(day)?;
        let mut rows = Vec::with_capacity(ledgers.len());
        for l in ledgers {
            let name: Option<String> = self
                .conn
                .query_row(
                    "SELECT name FROM users WHERE extension = ?1",
                    [l.extension.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            rows.push((l, name.unwrap_or_default()));
        }
        // Each grant with who entered it (the actor of its audit row, written in the same transaction).
        let mut stmt = self.conn.prepare(
            "SELECT g.extension, g.seconds, g.reason, COALESCE(g.on_behalf_of, ''), g.created_at,
                    (SELECT a.actor FROM audit a WHERE a.event = 'grant' AND a.extension = g.extension
                     AND a.at = g.created_at ORDER BY a.id LIMIT 1)
             FROM grants g WHERE g.day = ?1 AND g.direction IS NULL ORDER BY g.id",
        )?;
        let grants = stmt
            .query_map([day_text(day)], |r| {
                Ok(DayGrant {
                    extension: r.get(0)?,
                    seconds: r.get::<_, i64>(1)?.max(0) as u64,
                    reason: r.get(2)?,
                    on_behalf_of: r.get(3)?,
                    at: r.get(4)?,
                    by: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, grants))
    }

    /// Every `blocked` audit event of the shared allowance for the days
    /// `from`..=`to`: extension, day, when (`core::blocked` decides which
    /// count). A row whose time does not parse is left out.
    pub fn block_events(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<(String, NaiveDate, DateTime<Utc>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT extension, day, at FROM audit
             WHERE event = 'blocked' AND extension IS NOT NULL AND day >= ?1 AND day <= ?2",
        )?;
        let rows = stmt.query_map(params![day_text(from), day_text(to)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (ext, day, at) = row?;
            if let (Ok(day), Ok(at)) = (day.parse::<NaiveDate>(), DateTime::parse_from_rfc3339(&at)) {
                out.push((ext, day, at.with_timezone(&Utc)));
            }
        }
        Ok(out)
    }

    /// The user-days from `from` to `to` that were blocked, with when: the
    /// `blocked` events judged by `core::blocked`, the one definition that
    /// status, report (text, JSON, CSV, HTML) and the digest all use.
    pub fn blocked_days(
        &self,
        zone: chrono_tz::Tz,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<std::collections::BTreeMap<(String, NaiveDate), DateTime<Utc>>> {
        Ok(crate::core::blocked::blocked_days(zone, &self.block_events(from, to)?))
    }

    /// Every `direction_blocked` audit event for the days `from`..=`to`:
    /// (extension, direction), day, when; the direction is the detail's
    /// prefix (`international: ...`).
    pub fn direction_block_events(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<DirectionBlock>> {
        let mut stmt = self.conn.prepare(
            "SELECT extension, day, at, detail FROM audit
             WHERE event = 'direction_blocked' AND extension IS NOT NULL AND day >= ?1 AND day <= ?2",
        )?;
        let rows = stmt.query_map(params![day_text(from), day_text(to)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (ext, day, at, detail) = row?;
            let Some((direction, _)) = detail.split_once(':') else {
                continue;
            };
            if let (Ok(day), Ok(at)) = (day.parse::<NaiveDate>(), DateTime::parse_from_rfc3339(&at)) {
                out.push(((ext, direction.to_string()), day, at.with_timezone(&Utc)));
            }
        }
        Ok(out)
    }

    /// Every user's sums over `from`..=`to` from the ledgers, grants and
    /// outbox (a few grouped queries, whatever the period's length).
    /// `days_blocked` (also each direction's) is left 0: it comes from [`State::block_events`]
    /// through `core::blocked`, the one definition. `carried_out_s` is
    /// null while the period's last day is open.
    pub fn period(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<crate::views::period::UserPeriod>> {
        use std::collections::BTreeMap;
        let (from_t, to_t) = (day_text(from), day_text(to));
        let mut users: BTreeMap<String, crate::views::period::UserPeriod> = BTreeMap::new();
        let mut stmt = self.conn.prepare(
            "SELECT g.extension, COALESCE(u.name, ''), g.days, g.allowance, g.used, g.open
             FROM (SELECT extension, COUNT(*) AS days, SUM(allowance_s) AS allowance, SUM(used_s) AS used,
                          SUM(closed = 0) AS open
                   FROM ledger WHERE day >= ?1 AND day <= ?2 GROUP BY extension) g
             LEFT JOIN users u ON u.extension = g.extension",
        )?;
        let rows = stmt.query_map(params![from_t, to_t], |r| {
            Ok(crate::views::period::UserPeriod {
                extension: r.get(0)?,
                name: r.get(1)?,
                days: r.get::<_, i64>(2)?.max(0) as u64,
                allowance_s: r.get::<_, i64>(3)?.max(0) as u64,
                used_s: r.get::<_, i64>(4)?.max(0) as u64,
                open_days: r.get::<_, i64>(5)?.max(0) as u64,
                ..Default::default()
            })
        })?;
        for row in rows {
            let row = row?;
            users.insert(row.extension.clone(), row);
        }
        let mut add =
            |sql: &str, args: &[&str], apply: &dyn Fn(&mut crate::views::period::UserPeriod, i64, i64)| -> Result<()> {
                let mut stmt = self.conn.prepare(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                while let Some(r) = rows.next()? {
                    let ext: String = r.get(0)?;
                    if let Some(u) = users.get_mut(&ext) {
                        apply(u, r.get(1)?, r.get(2)?);
                    }
                }
                Ok(())
            };
        add(
            "SELECT extension, COUNT(*), SUM(seconds) FROM grants WHERE day >= ?1 AND day <= ?2 AND direction IS NULL \
             GROUP BY extension",
            &[&from_t, &to_t],
            &|u, n, s| {
                u.grants = n.max(0) as u64;
                u.granted_s = s.max(0) as u64;
            },
        )?;
        add(
            "SELECT extension, COUNT(*), 0 FROM outbox WHERE status = 'sent' AND day >= ?1 AND day <= ?2 \
             GROUP BY extension",
            &[&from_t, &to_t],
            &|u, n, _| u.notices = n.max(0) as u64,
        )?;
        // Carry-over at the end, from each user's last day in the period: the
        // next day's carried-in time once it exists; not known while that day is open.
        let mut stmt = self.conn.prepare(
            "WITH last AS (SELECT extension, MAX(day) AS day FROM ledger
                           WHERE day >= ?1 AND day <= ?2 GROUP BY extension)
             SELECT l.extension, l.closed, n.carried_in_s, l.monthly_limit_s
             FROM last JOIN ledger l ON l.extension = last.extension AND l.day = last.day
             LEFT JOIN ledger n ON n.extension = l.extension AND n.day = date(l.day, '+1 day')",
        )?;
        let mut rows = stmt.query(params![from_t, to_t])?;
        while let Some(r) = rows.next()? {
            let ext: String = r.get(0)?;
            let (closed, next): (bool, Option<i64>) = (r.get(1)?, r.get(2)?);
            let monthly: Option<i64> = r.get(3)?;
            if let Some(u) = users.get_mut(&ext) {
                u.monthly_limit_s = monthly.map(|m| m.max(0) as u64);
                u.carried_out_s = match next {
                    Some(carried) => Some(carried.max(0) as u64),
                    None if !closed => None,
                    None => Some(0),
                };
            }
        }
        let mut stmt = self.conn.prepare(
            "SELECT d.extension, d.direction, COUNT(*), SUM(d.allowance_s), SUM(d.used_s), 0,
                    (SELECT COUNT(*) FROM grants g WHERE g.extension = d.extension AND g.direction = d.direction
                     AND g.day >= ?1 AND g.day <= ?2),
                    (SELECT COALESCE(SUM(seconds), 0) FROM grants g WHERE g.extension = d.extension
                     AND g.direction = d.direction AND g.day >= ?1 AND g.day <= ?2)
             FROM direction_ledger d WHERE d.day >= ?1 AND d.day <= ?2
             GROUP BY d.extension, d.direction ORDER BY d.extension, d.direction",
        )?;
        let mut rows = stmt.query(params![from_t, to_t])?;
        while let Some(r) = rows.next()? {
            let ext: String = r.get(0)?;
            if let Some(u) = users.get_mut(&ext) {
                u.directions.push(crate::views::period::DirectionPeriod {
                    direction: r.get(1)?,
                    days: r.get::<_, i64>(2)?.max(0) as u64,
                    allowance_s: r.get::<_, i64>(3)?.max(0) as u64,
                    used_s: r.get::<_, i64>(4)?.max(0) as u64,
                    days_blocked: r.get::<_, i64>(5)?.max(0) as u64,
                    grants: r.get::<_, i64>(6)?.max(0) as u64,
                    granted_s: r.get::<_, i64>(7)?.max(0) as u64,
                    percent_used: 0,
                });
            }
        }
        Ok(users.into_values().collect())
    }

    /// Every ledger's figures from `from` to `to`, for the HTML day strips
    /// (`blocked` left false: the command marks the days `core::blocked` says were).
    pub fn daily(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<crate::views::html_report::DayFigure>> {
        let mut stmt = self.conn.prepare(
            "SELECT extension, day, allowance_s, used_s, closed FROM ledger
             WHERE day >= ?1 AND day <= ?2 ORDER BY extension, day",
        )?;
        let rows = stmt.query_map(params![day_text(from), day_text(to)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (extension, day, allowance, used, closed) = row?;
            let Ok(day) = day.parse() else { continue };
            out.push(crate::views::html_report::DayFigure {
                extension,
                day,
                allowance_s: allowance.max(0) as u64,
                used_s: used.max(0) as u64,
                blocked: false,
                closed,
            });
        }
        Ok(out)
    }
}
