//! The SQLite state adapter: users, daily ledgers, grants, the notification
//! outbox, the audit log and a few run facts. All SQL lives here.
//!
//! WAL and a busy timeout let an admin keep `sqlite3` open on the file while
//! runs go on; a run's changes land in one transaction.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use crate::duration::format as human;
use crate::extension::Extension;
use crate::policy::{Event, Ledger, Member, Plan, Snapshot};

mod embedded {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub extension: Extension,
    pub name: String,
    pub email: String,
    /// A supervisor copied on this user's notices ("" = none).
    pub cc: String,
    pub daily_limit_s: u64,
    pub active: bool,
    pub since: NaiveDate,
}

impl User {
    pub fn member(&self) -> Member {
        Member {
            extension: self.extension.clone(),
            daily_limit_s: self.daily_limit_s,
            since: self.since,
        }
    }
}

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
pub const AUDIT_EVENTS: [&str; 18] = [
    "blocked",
    "clock_rewound",
    "day_closed",
    "grant",
    "include_disarmed",
    "include_written",
    "late_usage",
    "level_lowered",
    "notice_given_up",
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

/// A closed day's ledgers, each with the user's name and the time (RFC 3339)
/// a run first blocked them, and the day's grants.
pub type DigestFacts = (Vec<(Ledger, String, Option<String>)>, Vec<DayGrant>);

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

static ACTOR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The person this process acts for; every audit row it writes names them.
/// Set once, at startup (before a root process becomes the service user).
pub fn set_actor(actor: &str) {
    let _ = ACTOR.set(actor.to_string());
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    /// `notice` (to a user) or `digest` (a closed day, to [mail] digest_to).
    pub kind: String,
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

pub struct State {
    conn: Connection,
    path: PathBuf,
    /// Queue a daily digest for each day a run closes ([mail] digest_to).
    digests: bool,
}

/// `meta` key: RFC 3339 time of the last successful run.
pub const LAST_RUN_AT: &str = "last_run_at";

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn parse_day(text: &str) -> rusqlite::Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn parse_extension(text: &str) -> rusqlite::Result<Extension> {
    Extension::parse(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn seconds(row: &Row<'_>, column: &str) -> rusqlite::Result<u64> {
    Ok(row.get::<_, i64>(column)?.max(0) as u64)
}

/// Creates a new, empty state file 0640; never through a link.
fn create(path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(anyhow!(
            "state_db directory {} does not exist; create it (the .deb creates /var/lib/callquota) or set state_db",
            dir.display()
        ));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map(drop)
        .map_err(|e| access_error("create", path, &e))
}

/// "Permission denied" names the fix: the state belongs to the service user.
fn access_error(what: &str, path: &Path, e: &std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        anyhow!(
            "cannot {what} state_db {}: permission denied; run callquota as the user that owns it, e.g. \
             sudo -u callquota callquota ...",
            path.display()
        )
    } else {
        anyhow!("cannot {what} state_db {}: {e}", path.display())
    }
}

fn to_sql_seconds(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

impl State {
    /// Opens (creating it 0640 if needed) and migrates the state file. The
    /// path is never followed through a symbolic link.
    pub fn open(path: &Path) -> Result<State> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(anyhow!(
                    "state_db {} is a symbolic link; callquota never follows one there: point state_db at the file \
                     itself",
                    path.display()
                ));
            }
            Ok(meta) if !meta.is_file() => {
                return Err(anyhow!("state_db {} is not a regular file", path.display()));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path)?,
            Err(e) => return Err(access_error("read", path, &e)),
        }
        let flags =
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NOFOLLOW | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // SQLite says only "unable to open database file"; the file system says why.
        if let Err(e) = std::fs::File::open(path) {
            return Err(access_error("open", path, &e));
        }
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| {
            anyhow!(
                "cannot open state_db {}: {e}; if this user may not write there, run as the service user: sudo -u \
                 callquota callquota ...",
                path.display()
            )
        })?;
        let context = || format!("cannot prepare state_db {}", path.display());
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .with_context(context)?;
        conn.pragma_update(None, "journal_mode", "WAL").with_context(context)?;
        conn.pragma_update(None, "synchronous", "FULL").with_context(context)?;
        embedded::migrations::runner()
            .run(&mut conn)
            .map_err(|e| anyhow!("cannot migrate state_db {}: {e}", path.display()))?;
        Ok(State {
            conn,
            path: path.to_path_buf(),
            digests: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

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
                "INSERT INTO users (extension, name, email, daily_limit_s, active, since_day, created_at, updated_at, cc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
                params![
                    user.extension.as_str(),
                    user.name,
                    user.email,
                    to_sql_seconds(user.daily_limit_s),
                    user.active,
                    day_text(user.since),
                    at,
                    user.cc
                ],
            )?;
            append_audit(
                &tx,
                &at,
                Some(&user.extension),
                None,
                "user_added",
                &format!(
                    "name {:?}, email {:?}, cc {:?}, daily limit {}s, {}",
                    user.name,
                    user.email,
                    user.cc,
                    user.daily_limit_s,
                    if user.active { "active" } else { "disabled" }
                ),
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

    // ---- grants ------------------------------------------------------------

    pub fn add_grant(
        &mut self,
        extension: &Extension,
        day: NaiveDate,
        seconds: u64,
        reason: &str,
        on_behalf_of: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at = timestamp(now);
        tx.execute(
            "INSERT INTO grants (extension, day, seconds, reason, created_at, on_behalf_of) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![extension.as_str(), day_text(day), to_sql_seconds(seconds), reason, at, on_behalf_of],
        )?;
        append_audit(
            &tx,
            &at,
            Some(extension),
            Some(day),
            "grant",
            &format!(
                "+{} for {}{}{}",
                human(seconds),
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
        Ok(())
    }

    // ---- the run -------------------------------------------------------------

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// When the last run that updated the state and the dialplan finished.
    pub fn last_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .meta(LAST_RUN_AT)?
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.to_utc()))
    }

    /// Records a successful run (bookkeeping, not an audited change).
    pub fn set_last_run_at(&self, at: DateTime<Utc>) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [LAST_RUN_AT, &timestamp(at)],
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
        tx.execute("UPDATE ledger SET closed = 0 WHERE day = ?1", [&day])?;
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'open_day'", [&day])?;
        let summary = format!(
            "rewound the state from {open_day} to {day}: removed {ledgers} ledger rows, {grants} grants and \
             {notices} pending notices of later days; {day} is open again"
        );
        append_audit(&tx, &timestamp(now), None, Some(today), "clock_rewound", &summary)?;
        tx.commit()
            .with_context(|| format!("cannot commit to state_db {path}"))?;
        Ok(Some(summary))
    }

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
        let snapshot = match early {
            Some(early) if early.data_version == current => early.snapshot,
            _ => snapshot(&tx).with_context(|| format!("cannot read state_db {path}"))?,
        };
        let plan = decide(&snapshot)?;
        apply(&tx, &plan, now).with_context(|| format!("cannot write state_db {path}"))?;
        if self.digests {
            queue_digests(&tx, &plan, now).with_context(|| format!("cannot write state_db {path}"))?;
        }
        crate::crashpoint::reached("in-state-transaction");
        tx.commit()
            .with_context(|| format!("cannot commit to state_db {path}"))?;
        Ok(plan)
    }

    /// From now on, each day a run closes queues one daily digest.
    pub fn queue_digests(&mut self, on: bool) {
        self.digests = on;
    }

    /// What a day's digest says: each user's ledger of that day with their
    /// name and when they were first blocked (local text is the caller's),
    /// and the grants with who made them, from the audit log.
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
            let blocked_at: Option<String> = self.conn.query_row(
                "SELECT MIN(at) FROM audit WHERE event = 'blocked' AND extension = ?1 AND day = ?2",
                params![l.extension.as_str(), day_text(day)],
                |r| r.get(0),
            )?;
            rows.push((l, name.unwrap_or_default(), blocked_at));
        }
        // Each grant with who entered it (the actor of its audit row, written in the same transaction).
        let mut stmt = self.conn.prepare(
            "SELECT g.extension, g.seconds, g.reason, COALESCE(g.on_behalf_of, ''), g.created_at,
                    (SELECT a.actor FROM audit a WHERE a.event = 'grant' AND a.extension = g.extension
                     AND a.at = g.created_at ORDER BY a.id LIMIT 1)
             FROM grants g WHERE g.day = ?1 ORDER BY g.id",
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
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM ledger WHERE day = ?1 ORDER BY extension")?;
        let rows = stmt.query_map([day_text(day)], ledger_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every user's sums over `from`..=`to` from the ledgers, grants and
    /// outbox (a few grouped queries, whatever the period's length).
    pub fn period(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<crate::period::UserPeriod>> {
        use std::collections::BTreeMap;
        let (from_t, to_t) = (day_text(from), day_text(to));
        let mut users: BTreeMap<String, crate::period::UserPeriod> = BTreeMap::new();
        let mut stmt = self.conn.prepare(
            "SELECT g.extension, COALESCE(u.name, ''), g.days, g.allowance, g.used, g.blocked, g.open
             FROM (SELECT extension, COUNT(*) AS days, SUM(allowance_s) AS allowance, SUM(used_s) AS used,
                          SUM(blocked) AS blocked, SUM(closed = 0) AS open
                   FROM ledger WHERE day >= ?1 AND day <= ?2 GROUP BY extension) g
             LEFT JOIN users u ON u.extension = g.extension",
        )?;
        let rows = stmt.query_map(params![from_t, to_t], |r| {
            Ok(crate::period::UserPeriod {
                extension: r.get(0)?,
                name: r.get(1)?,
                days: r.get::<_, i64>(2)?.max(0) as u64,
                allowance_s: r.get::<_, i64>(3)?.max(0) as u64,
                used_s: r.get::<_, i64>(4)?.max(0) as u64,
                days_blocked: r.get::<_, i64>(5)?.max(0) as u64,
                open_days: r.get::<_, i64>(6)?.max(0) as u64,
                ..Default::default()
            })
        })?;
        for row in rows {
            let row = row?;
            users.insert(row.extension.clone(), row);
        }
        let mut add =
            |sql: &str, args: &[&str], apply: &dyn Fn(&mut crate::period::UserPeriod, i64, i64)| -> Result<()> {
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
            "SELECT extension, COUNT(*), SUM(seconds) FROM grants WHERE day >= ?1 AND day <= ?2 GROUP BY extension",
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
        // next day's carried-in time once it exists, else (an open day) what it has left.
        let mut stmt = self.conn.prepare(
            "WITH last AS (SELECT extension, MAX(day) AS day FROM ledger
                           WHERE day >= ?1 AND day <= ?2 GROUP BY extension)
             SELECT l.extension, l.allowance_s - l.used_s, l.closed, n.carried_in_s
             FROM last JOIN ledger l ON l.extension = last.extension AND l.day = last.day
             LEFT JOIN ledger n ON n.extension = l.extension AND n.day = date(l.day, '+1 day')",
        )?;
        let mut rows = stmt.query(params![from_t, to_t])?;
        while let Some(r) = rows.next()? {
            let ext: String = r.get(0)?;
            let (left, closed, next): (i64, bool, Option<i64>) = (r.get(1)?, r.get(2)?, r.get(3)?);
            if let Some(u) = users.get_mut(&ext) {
                u.carried_out_s = match next {
                    Some(carried) => carried.max(0) as u64,
                    None if !closed => left.max(0) as u64,
                    None => 0,
                };
            }
        }
        Ok(users.into_values().collect())
    }

    /// Every ledger's figures from `from` to `to`, for the HTML day strips.
    pub fn daily(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<crate::html_report::DayFigure>> {
        let mut stmt = self.conn.prepare(
            "SELECT extension, day, allowance_s, used_s, blocked, closed FROM ledger
             WHERE day >= ?1 AND day <= ?2 ORDER BY extension, day",
        )?;
        let rows = stmt.query_map(params![day_text(from), day_text(to)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, bool>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (extension, day, allowance, used, blocked, closed) = row?;
            let Ok(day) = day.parse() else { continue };
            out.push(crate::html_report::DayFigure {
                extension,
                day,
                allowance_s: allowance.max(0) as u64,
                used_s: used.max(0) as u64,
                blocked,
                closed,
            });
        }
        Ok(out)
    }

    /// One extension's ledgers from `from` to `to` (inclusive), by day.
    pub fn ledgers_of(&self, extension: &Extension, from: NaiveDate, to: NaiveDate) -> Result<Vec<Ledger>> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM ledger WHERE extension = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day")?;
        let rows = stmt.query_map(
            params![extension.as_str(), day_text(from), day_text(to)],
            ledger_from_row,
        )?;
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

    pub fn outbox(&self, pending_only: bool) -> Result<Vec<OutboxEntry>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, extension, day, threshold, used_s, allowance_s, created_at, status, attempts, last_error,
             next_attempt_at, sent_at, kind FROM outbox WHERE ?1 = 0 OR status = 'pending' ORDER BY id",
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
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl State {
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
            format!("{}% notice #{}", entry.threshold, entry.id)
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

fn data_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
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

fn users(conn: &Connection) -> Result<Vec<User>> {
    users_where(conn, None)
}

/// All users, or the one with `extension`.
fn users_where(conn: &Connection, extension: Option<&Extension>) -> Result<Vec<User>> {
    let mut stmt = conn.prepare(
        "SELECT extension, name, email, daily_limit_s, active, since_day, cc FROM users
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
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn ledger_from_row(r: &Row<'_>) -> rusqlite::Result<Ledger> {
    Ok(Ledger {
        extension: parse_extension(&r.get::<_, String>("extension")?)?,
        day: parse_day(&r.get::<_, String>("day")?)?,
        base_s: seconds(r, "base_s")?,
        carried_in_s: seconds(r, "carried_in_s")?,
        granted_s: seconds(r, "granted_s")?,
        used_s: seconds(r, "used_s")?,
        late_in_s: seconds(r, "late_in_s")?,
        late_out_s: seconds(r, "late_out_s")?,
        level: r.get::<_, i64>("level")?.clamp(0, 100) as u8,
        notified_level: r.get::<_, i64>("notified_level")?.clamp(0, 100) as u8,
        blocked: r.get("blocked")?,
        closed: r.get("closed")?,
    })
}

fn snapshot(conn: &Connection) -> Result<Snapshot> {
    let open_day: Option<NaiveDate> = conn
        .query_row("SELECT value FROM meta WHERE key = 'open_day'", [], |r| {
            r.get::<_, String>(0)
        })
        .optional()?
        .map(|s| parse_day(&s))
        .transpose()?;
    let members = users(conn)?.iter().filter(|u| u.active).map(User::member).collect();
    // Every unclosed ledger plus the day before the open day (for carry-over).
    let from = open_day
        .map(|d| day_text(crate::calendar::previous_day(d)))
        .unwrap_or_default();
    let mut stmt = conn.prepare("SELECT * FROM ledger WHERE closed = 0 OR day >= ?1")?;
    let ledgers = stmt
        .query_map([&from], ledger_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut grants = HashMap::new();
    let mut stmt =
        conn.prepare("SELECT extension, day, SUM(seconds) FROM grants WHERE day >= ?1 GROUP BY extension, day")?;
    let rows = stmt.query_map([&from], |r| {
        Ok((
            parse_extension(&r.get::<_, String>(0)?)?,
            parse_day(&r.get::<_, String>(1)?)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (extension, day, total) = row?;
        grants.insert((extension, day), total.max(0) as u64);
    }
    Ok(Snapshot {
        open_day,
        members,
        ledgers,
        grants,
    })
}

fn apply(conn: &Connection, plan: &Plan, now: DateTime<Utc>) -> Result<()> {
    let at = timestamp(now);
    let mut upsert = conn.prepare_cached(
        "INSERT INTO ledger (extension, day, base_s, carried_in_s, granted_s, allowance_s, used_s, level, notified_level, blocked, closed, late_in_s, late_out_s)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (extension, day) DO UPDATE SET
           base_s = excluded.base_s, carried_in_s = excluded.carried_in_s, granted_s = excluded.granted_s,
           allowance_s = excluded.allowance_s, used_s = excluded.used_s, level = excluded.level,
           notified_level = excluded.notified_level, blocked = excluded.blocked, closed = excluded.closed,
           late_in_s = excluded.late_in_s, late_out_s = excluded.late_out_s",
    )?;
    for l in &plan.ledgers {
        upsert.execute(params![
            l.extension.as_str(),
            day_text(l.day),
            to_sql_seconds(l.base_s),
            to_sql_seconds(l.carried_in_s),
            to_sql_seconds(l.granted_s),
            to_sql_seconds(l.allowance_s()),
            to_sql_seconds(l.used_s),
            l.level,
            l.notified_level,
            l.blocked,
            l.closed,
            to_sql_seconds(l.late_in_s),
            to_sql_seconds(l.late_out_s)
        ])?;
    }
    for record in &plan.records {
        let (event, detail) = describe(&record.event);
        append_audit(conn, &at, Some(&record.extension), Some(record.day), event, &detail)?;
    }
    let mut queue = conn.prepare_cached(
        "INSERT INTO outbox (extension, day, threshold, used_s, allowance_s, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for n in &plan.notices {
        queue.execute(params![
            n.extension.as_str(),
            day_text(n.day),
            n.threshold,
            to_sql_seconds(n.used_s),
            to_sql_seconds(n.allowance_s),
            at
        ])?;
    }
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('open_day', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value
         WHERE value <> excluded.value",
        [day_text(plan.open_day)],
    )?;
    Ok(())
}

/// One digest per day the plan closes, never a second for a day (a unique index).
fn queue_digests(conn: &Connection, plan: &Plan, now: DateTime<Utc>) -> Result<()> {
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

fn append_audit(
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

/// Stores each changed user, one `user_changed` audit row each; returns how many changed.
fn store_changes(conn: &Connection, changes: &[(User, User)], at: &str) -> Result<usize> {
    let mut changed = 0;
    for (old, new) in changes {
        let what = user_changes(old, new);
        if what.is_empty() {
            continue;
        }
        conn.execute(
            "UPDATE users SET name = ?2, email = ?3, daily_limit_s = ?4, active = ?5, since_day = ?6, updated_at = ?7,
             cc = ?8 WHERE extension = ?1",
            params![
                new.extension.as_str(),
                new.name,
                new.email,
                to_sql_seconds(new.daily_limit_s),
                new.active,
                day_text(new.since),
                at,
                new.cc
            ],
        )?;
        append_audit(conn, at, Some(&new.extension), None, "user_changed", &what.join(", "))?;
        changed += 1;
    }
    Ok(changed)
}

/// Each changed field of a user, as the audit log says it.
pub fn user_changes(old: &User, new: &User) -> Vec<String> {
    let mut changes = Vec::new();
    if old.name != new.name {
        changes.push(format!("name {:?} -> {:?}", old.name, new.name));
    }
    if old.email != new.email {
        changes.push(format!("email {:?} -> {:?}", old.email, new.email));
    }
    if old.cc != new.cc {
        changes.push(format!("cc {:?} -> {:?}", old.cc, new.cc));
    }
    if old.daily_limit_s != new.daily_limit_s {
        changes.push(format!(
            "daily limit {} -> {}",
            human(old.daily_limit_s),
            human(new.daily_limit_s)
        ));
    }
    if old.active != new.active {
        changes.push(if new.active { "enabled" } else { "disabled" }.into());
    }
    if old.since != new.since {
        changes.push(format!("tracked since {}", day_text(new.since)));
    }
    changes
}

/// The audit log's event name and human-readable detail.
fn describe(event: &Event) -> (&'static str, String) {
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
