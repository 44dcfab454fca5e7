//! The daily ledgers and the run's one transaction: snapshot the state,
//! let the pure plan decide, store what it changed (ledgers, audit rows,
//! notices, digests) and `open_day`, all or nothing.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::audit::append_audit;
use super::db::{State, day_text, parse_day, parse_extension, timestamp, to_sql_seconds};
use super::users::users;
use crate::core::month::{MonthSoFar, month_start};
use crate::core::policy::{DirectionState, Event, Ledger, Plan, Snapshot};
use crate::core::user::User;
use crate::values::duration::format as human;
use crate::values::extension::Extension;

impl State {
    /// Reads a snapshot and applies the plan `decide` makes of it, in one
    /// write transaction (so a concurrent `grant` is either seen or waits).
    pub fn plan_and_apply<F>(&mut self, now: DateTime<Utc>, early: Option<EarlySnapshot>, decide: F) -> Result<Plan>
    where
        F: FnOnce(&Snapshot) -> Result<Plan>,
    {
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .with_context(|| format!("cannot write state_db {path}"))?;
        // PRAGMA data_version moves when another connection commits: an early
        // snapshot is used only if nothing changed since it was taken.
        let current = data_version(&tx)?;
        crate::adapters::trace::mark("state write lock taken");
        let snapshot = match early {
            Some(early) if early.data_version == current => early.snapshot,
            _ => snapshot(&tx).with_context(|| format!("cannot read state_db {path}"))?,
        };
        let plan = decide(&snapshot)?;
        crate::adapters::trace::mark("plan decided");
        apply(&tx, &plan, now).with_context(|| format!("cannot write state_db {path}"))?;
        if self.digests {
            queue_digests(&tx, &plan, now).with_context(|| format!("cannot write state_db {path}"))?;
        }
        crate::adapters::crashpoint::reached("in-state-transaction");
        tx.commit()
            .with_context(|| format!("cannot commit to state_db {path}"))?;
        Ok(plan)
    }

    /// From now on, each day a run closes queues one daily digest.
    pub fn queue_digests(&mut self, on: bool) {
        self.digests = on;
    }

    /// The state as `run` sees it, without changing anything.
    pub fn snapshot(&self) -> Result<Snapshot> {
        snapshot(&self.conn)
    }

    /// A snapshot taken ahead of the write transaction (while the CDR is
    /// read), tagged so `plan_and_apply` can tell whether it is still current.
    pub fn early_snapshot(&self) -> Result<EarlySnapshot> {
        let tx = self.conn.unchecked_transaction()?;
        let data_version = data_version(&tx)?;
        let snapshot = snapshot(&tx)?;
        tx.commit()?;
        Ok(EarlySnapshot { snapshot, data_version })
    }

    /// The day the earliest active user was added (where a first run starts).
    pub fn first_since(&self) -> Result<Option<NaiveDate>> {
        let first: Option<String> =
            self.conn
                .query_row("SELECT MIN(since_day) FROM users WHERE active = 1", [], |r| r.get(0))?;
        Ok(first.map(|d| parse_day(&d)).transpose()?)
    }

    pub fn ledgers_on(&self, day: NaiveDate) -> Result<Vec<Ledger>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger WHERE day = ?1 ORDER BY extension"
        ))?;
        let rows = stmt.query_map([day_text(day)], ledger_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The direction allowances' ledgers of `day`: (direction, ledger).
    pub fn direction_ledgers_on(&self, day: NaiveDate) -> Result<Vec<(String, Ledger)>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {LEDGER_COLUMNS}, direction FROM direction_ledger WHERE day = ?1 ORDER BY extension, direction"
        ))?;
        let rows = stmt.query_map([day_text(day)], |r| Ok((r.get::<_, String>(16)?, ledger_from_row(r)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One extension's ledgers from `from` to `to` (inclusive), by day.
    pub fn ledgers_of(&self, extension: &Extension, from: NaiveDate, to: NaiveDate) -> Result<Vec<Ledger>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger WHERE extension = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day"
        ))?;
        let rows = stmt.query_map(
            params![extension.as_str(), day_text(from), day_text(to)],
            ledger_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One extension's direction ledgers from `from` to `to`: (direction, ledger), by day.
    pub fn direction_ledgers_of(
        &self,
        extension: &Extension,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(String, Ledger)>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {LEDGER_COLUMNS}, direction FROM direction_ledger WHERE extension = ?1 AND day >= ?2 \
                 AND day <= ?3 ORDER BY day, direction"
        ))?;
        let rows = stmt.query_map(params![extension.as_str(), day_text(from), day_text(to)], |r| {
            Ok((r.get::<_, String>(16)?, ledger_from_row(r)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// When each of the extension's days from `from` to `to` was closed (the
    /// time of its `day_closed` audit row).
    pub fn closed_at(
        &self,
        extension: &Extension,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<std::collections::BTreeMap<NaiveDate, DateTime<Utc>>> {
        let mut stmt = self.conn.prepare(
            "SELECT day, MIN(at) FROM audit WHERE event = 'day_closed' AND extension = ?1 AND day >= ?2 AND day <= ?3 \
             GROUP BY day",
        )?;
        let rows = stmt.query_map(params![extension.as_str(), day_text(from), day_text(to)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut closed = std::collections::BTreeMap::new();
        for row in rows {
            let (day, at) = row?;
            if let (Ok(day), Ok(at)) = (day.parse::<NaiveDate>(), DateTime::parse_from_rfc3339(&at)) {
                closed.insert(day, at.with_timezone(&Utc));
            }
        }
        Ok(closed)
    }
}

/// See [`State::early_snapshot`].
pub struct EarlySnapshot {
    snapshot: Snapshot,
    data_version: i64,
}

impl EarlySnapshot {
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

pub(super) fn data_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
}

/// The columns [`ledger_from_row`] reads, in its order: selected by name and
/// read by position, since looking each column up by name per row (a
/// string search over the row's columns) was most of a steady-state run's
/// own CPU with 1,000 users. The direction tables add `direction` (16).
pub(super) const LEDGER_COLUMNS: &str = "extension, day, base_s, carried_in_s, granted_s, used_s, late_in_s, \
     late_out_s, level, notified_level, blocked, closed, monthly_limit_s, month_before_s, month_level, \
     month_notified_level";

pub(super) fn ledger_from_row(r: &Row<'_>) -> rusqlite::Result<Ledger> {
    let seconds = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    let percent = |i: usize| -> rusqlite::Result<u8> { Ok(r.get::<_, i64>(i)?.clamp(0, 100) as u8) };
    Ok(Ledger {
        extension: parse_extension(&r.get::<_, String>(0)?)?,
        day: parse_day(&r.get::<_, String>(1)?)?,
        base_s: seconds(2)?,
        carried_in_s: seconds(3)?,
        granted_s: seconds(4)?,
        used_s: seconds(5)?,
        late_in_s: seconds(6)?,
        late_out_s: seconds(7)?,
        level: percent(8)?,
        notified_level: percent(9)?,
        blocked: r.get(10)?,
        closed: r.get(11)?,
        monthly_limit_s: r.get::<_, Option<i64>>(12)?.map(|s| s.max(0) as u64),
        month_before_s: seconds(13)?,
        month_level: percent(14)?,
        month_notified_level: percent(15)?,
    })
}

pub(super) fn snapshot(conn: &Connection) -> Result<Snapshot> {
    let open_day: Option<NaiveDate> = conn
        .query_row("SELECT value FROM meta WHERE key = 'open_day'", [], |r| {
            r.get::<_, String>(0)
        })
        .optional()?
        .map(|s| parse_day(&s))
        .transpose()?;
    let members: Vec<_> = users(conn)?.iter().filter(|u| u.active).map(User::member).collect();
    // Every unclosed ledger plus the day before the open day (for carry-over).
    let from = open_day
        .map(|d| day_text(crate::core::calendar::previous_day(d)))
        .unwrap_or_default();
    let mut stmt = conn.prepare(&format!(
        "SELECT {LEDGER_COLUMNS} FROM ledger WHERE closed = 0 OR day >= ?1"
    ))?;
    let ledgers = stmt
        .query_map([&from], ledger_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut grants = HashMap::new();
    let mut directions: BTreeMap<String, DirectionState> = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT extension, day, SUM(seconds), direction FROM grants WHERE day >= ?1 GROUP BY extension, day, direction",
    )?;
    let rows = stmt.query_map([&from], |r| {
        Ok((
            parse_extension(&r.get::<_, String>(0)?)?,
            parse_day(&r.get::<_, String>(1)?)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for row in rows {
        let (extension, day, total, direction) = row?;
        let into = match direction {
            Some(name) => &mut directions.entry(name).or_default().grants,
            None => &mut grants,
        };
        into.insert((extension, day), total.max(0) as u64);
    }
    // The direction allowances' ledgers, chosen as the shared ones are.
    let mut stmt = conn.prepare(&format!(
        "SELECT {LEDGER_COLUMNS}, direction FROM direction_ledger WHERE closed = 0 OR day >= ?1"
    ))?;
    let mut rows = stmt.query([&from])?;
    while let Some(r) = rows.next()? {
        let direction: String = r.get(16)?;
        directions
            .entry(direction)
            .or_default()
            .ledgers
            .push(ledger_from_row(r)?);
    }
    let month_before_open = match open_day {
        Some(open) if members.iter().any(|m| m.monthly_limit_s.is_some()) => month_before(conn, open)?,
        _ => HashMap::new(),
    };
    Ok(Snapshot {
        open_day,
        members,
        ledgers,
        grants,
        month_before_open,
        directions,
    })
}

/// Per extension, the days of `day`'s month before `day`: one grouped query,
/// run only while someone has a monthly limit (the steady state has none to pay).
fn month_before(conn: &Connection, day: NaiveDate) -> Result<HashMap<Extension, MonthSoFar>> {
    // The levels are the latest day's: each day carries the month's on, and
    // a raised monthly limit lowers them (re-arming its thresholds).
    let mut stmt = conn.prepare(
        "SELECT l.extension, s.used, l.month_level, l.month_notified_level
         FROM (SELECT extension, SUM(used_s) AS used, MAX(day) AS last FROM ledger
               WHERE day >= ?1 AND day < ?2 GROUP BY extension) s
         JOIN ledger l ON l.extension = s.extension AND l.day = s.last",
    )?;
    let rows = stmt.query_map([day_text(month_start(day)), day_text(day)], |r| {
        Ok((
            parse_extension(&r.get::<_, String>(0)?)?,
            MonthSoFar {
                used_s: r.get::<_, i64>(1)?.max(0) as u64,
                level: r.get::<_, i64>(2)?.clamp(0, 100) as u8,
                notified_level: r.get::<_, i64>(3)?.clamp(0, 100) as u8,
                limit_s: None,
            },
        ))
    })?;
    let mut months = HashMap::new();
    for row in rows {
        let (extension, so_far) = row?;
        months.insert(extension, so_far);
    }
    Ok(months)
}

pub(super) fn apply(conn: &Connection, plan: &Plan, now: DateTime<Utc>) -> Result<()> {
    let at = timestamp(now);
    store_plan(conn, plan, None, &at)?;
    for (direction, sub) in &plan.directions {
        store_plan(conn, sub, Some(direction), &at)?;
    }
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('open_day', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value
         WHERE value <> excluded.value",
        [day_text(plan.open_day)],
    )?;
    Ok(())
}

/// One allowance's changed ledgers, audit rows and notices: the shared
/// allowance's (`direction` None, table `ledger`) or a direction's.
fn store_plan(conn: &Connection, plan: &Plan, direction: Option<&str>, at: &str) -> Result<()> {
    let mut upsert = conn.prepare_cached(if direction.is_none() {
        "INSERT INTO ledger (extension, day, base_s, carried_in_s, granted_s, allowance_s, used_s, level, notified_level, blocked, closed, late_in_s, late_out_s,
           monthly_limit_s, month_before_s, month_level, month_notified_level)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT (extension, day) DO UPDATE SET
           base_s = excluded.base_s, carried_in_s = excluded.carried_in_s, granted_s = excluded.granted_s,
           allowance_s = excluded.allowance_s, used_s = excluded.used_s, level = excluded.level,
           notified_level = excluded.notified_level, blocked = excluded.blocked, closed = excluded.closed,
           late_in_s = excluded.late_in_s, late_out_s = excluded.late_out_s,
           monthly_limit_s = excluded.monthly_limit_s, month_before_s = excluded.month_before_s,
           month_level = excluded.month_level, month_notified_level = excluded.month_notified_level"
    } else {
        "INSERT INTO direction_ledger (extension, day, base_s, carried_in_s, granted_s, allowance_s, used_s, level, notified_level, blocked, closed, late_in_s, late_out_s,
           monthly_limit_s, month_before_s, month_level, month_notified_level, direction)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
         ON CONFLICT (extension, day, direction) DO UPDATE SET
           base_s = excluded.base_s, carried_in_s = excluded.carried_in_s, granted_s = excluded.granted_s,
           allowance_s = excluded.allowance_s, used_s = excluded.used_s, level = excluded.level,
           notified_level = excluded.notified_level, blocked = excluded.blocked, closed = excluded.closed,
           late_in_s = excluded.late_in_s, late_out_s = excluded.late_out_s"
    })?;
    for l in &plan.ledgers {
        let mut values: Vec<Box<dyn rusqlite::ToSql + '_>> = vec![
            Box::new(l.extension.as_str()),
            Box::new(day_text(l.day)),
            Box::new(to_sql_seconds(l.base_s)),
            Box::new(to_sql_seconds(l.carried_in_s)),
            Box::new(to_sql_seconds(l.granted_s)),
            Box::new(to_sql_seconds(l.allowance_s())),
            Box::new(to_sql_seconds(l.used_s)),
            Box::new(l.level),
            Box::new(l.notified_level),
            Box::new(l.blocked),
            Box::new(l.closed),
            Box::new(to_sql_seconds(l.late_in_s)),
            Box::new(to_sql_seconds(l.late_out_s)),
            Box::new(l.monthly_limit_s.map(to_sql_seconds)),
            Box::new(to_sql_seconds(l.month_before_s)),
            Box::new(l.month_level),
            Box::new(l.month_notified_level),
        ];
        if let Some(direction) = direction {
            values.push(Box::new(direction));
        }
        upsert.execute(rusqlite::params_from_iter(values.iter()))?;
    }
    for record in &plan.records {
        let (event, detail) = describe(&record.event);
        // A direction allowance's events have names of their own
        // (`direction_blocked`, ...), so what reads the shared allowance's
        // (`blocked` for the digest) never takes them for its own.
        match &record.direction {
            Some(direction) => append_audit(
                conn,
                at,
                Some(&record.extension),
                Some(record.day),
                &format!("direction_{event}"),
                &format!("{direction}: {detail}"),
            )?,
            None => append_audit(conn, at, Some(&record.extension), Some(record.day), event, &detail)?,
        }
    }
    let mut queue = conn.prepare_cached(
        "INSERT INTO outbox (extension, day, threshold, used_s, allowance_s, created_at, period, direction)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for n in &plan.notices {
        queue.execute(params![
            n.extension.as_str(),
            day_text(n.day),
            n.threshold,
            to_sql_seconds(n.used_s),
            to_sql_seconds(n.allowance_s),
            at,
            n.period.as_str(),
            n.direction
        ])?;
    }
    Ok(())
}

/// One digest per day the plan closes, never a second for a day (a unique index).
pub(super) fn queue_digests(conn: &Connection, plan: &Plan, now: DateTime<Utc>) -> Result<()> {
    let closed: std::collections::BTreeSet<NaiveDate> = plan
        .records
        .iter()
        .filter(|r| matches!(r.event, Event::DayClosed { .. }))
        .map(|r| r.day)
        .collect();
    for day in closed {
        conn.execute(
            "INSERT OR IGNORE INTO outbox (kind, extension, day, threshold, used_s, allowance_s, created_at)
             SELECT 'digest', '', ?1, 0, COALESCE(SUM(used_s), 0), COALESCE(SUM(allowance_s), 0), ?2
             FROM ledger WHERE day = ?1",
            params![day_text(day), timestamp(now)],
        )?;
    }
    Ok(())
}

/// The audit log's event name and human-readable detail.
pub(super) fn describe(event: &Event) -> (&'static str, String) {
    let of = |used: u64, allowance: u64| format!("used {} of {}", human(used), human(allowance));
    match *event {
        Event::LevelCrossed {
            threshold,
            used_s,
            allowance_s,
        } => (
            "threshold_crossed",
            format!("reached {threshold}%: {}", of(used_s, allowance_s)),
        ),
        Event::LevelLowered {
            from,
            to,
            used_s,
            allowance_s,
        } => (
            "level_lowered",
            format!("{from}% -> {to}%: {}", of(used_s, allowance_s)),
        ),
        Event::Blocked { used_s, allowance_s } => {
            ("blocked", format!("paid calls denied: {}", of(used_s, allowance_s)))
        }
        Event::Unblocked { used_s, allowance_s } => {
            ("unblocked", format!("paid calls allowed: {}", of(used_s, allowance_s)))
        }
        Event::DayClosed {
            allowance_s,
            used_s,
            unused_s,
        } => (
            "day_closed",
            format!(
                "allowance {}, used {}, unused {}",
                human(allowance_s),
                human(used_s),
                human(unused_s)
            ),
        ),
        Event::MonthLevelCrossed {
            threshold,
            used_s,
            limit_s,
        } => (
            "month_threshold_crossed",
            format!("reached {threshold}% of the monthly limit: {}", of(used_s, limit_s)),
        ),
        Event::LateUsage { from_day, seconds } => (
            "late_usage",
            format!(
                "{} of calls on {} whose CDR rows appeared after that day closed, charged here",
                human(seconds),
                day_text(from_day)
            ),
        ),
    }
}
