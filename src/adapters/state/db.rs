//! The state file itself: opened never through a link, created 0640,
//! migrated (refinery, `migrations/`), WAL with a busy timeout so an admin's
//! `sqlite3` session does not break runs; and the column helpers the other
//! files share.

use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, Row};

use crate::values::extension::Extension;

mod embedded {
    refinery::embed_migrations!("migrations");
}

pub struct State {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// Queue a daily digest for each day a run closes ([mail] digest_to).
    pub(super) digests: bool,
}

/// `meta` key: RFC 3339 time of the last successful run.
pub const LAST_RUN_AT: &str = "last_run_at";

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

pub(super) fn parse_day(text: &str) -> rusqlite::Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

pub(super) fn parse_extension(text: &str) -> rusqlite::Result<Extension> {
    Extension::parse(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

pub(super) fn seconds(row: &Row<'_>, column: &str) -> rusqlite::Result<u64> {
    Ok(row.get::<_, i64>(column)?.max(0) as u64)
}

/// A column of seconds that may be NULL (an optional limit).
pub(super) fn optional_seconds(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<u64>> {
    Ok(row.get::<_, Option<i64>>(column)?.map(|s| s.max(0) as u64))
}

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn state_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates a new state file 0640 when none is there; never through a link.
///
/// The new database is built and migrated under a random name beside it
/// (`O_EXCL`) and then linked into place (`link(2)` fails when something is
/// already there), so a crash never leaves an empty file at `state_db`, and
/// whatever appears there meanwhile is never replaced.
fn create_if_missing(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => return Ok(()), // `open` judges what is there
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(access_error("read", path, &e)),
    }
    let dir = state_dir(path);
    if !dir.is_dir() {
        return Err(anyhow!(
            "state_db directory {} does not exist; create it (the .deb creates /var/lib/callquota) or set state_db",
            dir.display()
        ));
    }
    let temp = tempfile::Builder::new()
        .prefix(".callquota-new-state.")
        .suffix(".tmp")
        .rand_bytes(12)
        .permissions(std::fs::Permissions::from_mode(0o640))
        .tempfile_in(dir)
        .map_err(|e| access_error("create", path, &e))?;
    {
        let flags =
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NOFOLLOW | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(temp.path(), flags)
            .map_err(|e| anyhow!("cannot create state_db {}: {e}", path.display()))?;
        embedded::migrations::runner()
            .run(&mut conn)
            .map_err(|e| anyhow!("cannot create state_db {}: {e}", path.display()))?;
        conn.close()
            .map_err(|(_, e)| anyhow!("cannot create state_db {}: {e}", path.display()))?;
    }
    temp.as_file()
        .sync_all()
        .map_err(|e| access_error("create", path, &e))?;
    match std::fs::hard_link(temp.path(), path) {
        Ok(()) => {}
        // Another command created it first: open theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(access_error("create", path, &e)),
    }
    drop(temp); // removes the random name; the state keeps its own
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| access_error("create", path, &e))
}

/// What lies at `state_db` must already be callquota's state: a missing,
/// empty or foreign file is never taken for a new, empty state (an empty
/// state would unblock everyone). Checked on the opened descriptor.
fn check_existing(path: &Path) -> Result<()> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(anyhow!(
                "state_db {} does not exist; create it with `sudo -u callquota callquota migrate` (or a first \
                 `callquota run`, `user add` or `user import`), or point state_db at the existing state",
                path.display()
            ));
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(anyhow!(
                "state_db {} is a symbolic link; callquota never follows one there: point state_db at the file \
                 itself",
                path.display()
            ));
        }
        Err(e) => return Err(access_error("open", path, &e)),
    };
    let meta = file.metadata().map_err(|e| access_error("read", path, &e))?;
    if !meta.is_file() {
        return Err(anyhow!("state_db {} is not a regular file", path.display()));
    }
    let mut head = Vec::with_capacity(SQLITE_MAGIC.len());
    std::io::Read::take(&file, SQLITE_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| access_error("read", path, &e))?;
    if head.is_empty() {
        return Err(anyhow!(
            "state_db {} is empty (0 bytes), not a callquota state; restore it from a backup, or remove it and \
             run `sudo -u callquota callquota migrate` to start a new, empty state",
            path.display()
        ));
    }
    if head.as_slice() != SQLITE_MAGIC {
        return Err(anyhow!(
            "state_db {} is not an SQLite database; restore the state from a backup or point state_db at it",
            path.display()
        ));
    }
    Ok(())
}

/// "Permission denied" names the fix: the state belongs to the service user.
pub(super) fn access_error(what: &str, path: &Path, e: &std::io::Error) -> anyhow::Error {
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

pub(super) fn to_sql_seconds(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

impl State {
    /// Opens and migrates an existing state file (see `create_if_missing`
    /// for the commands that may make one). The path is never followed
    /// through a symbolic link.
    pub fn open(path: &Path) -> Result<State> {
        check_existing(path)?;
        let flags =
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NOFOLLOW | OpenFlags::SQLITE_OPEN_NO_MUTEX;
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
        // An SQLite file that is not callquota's is not migrated into one.
        let ours: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'refinery_schema_history')",
                [],
                |r| r.get(0),
            )
            .with_context(context)?;
        if !ours {
            return Err(anyhow!(
                "state_db {} is an SQLite database but not callquota's state; point state_db at the state, or \
                 restore it from a backup",
                path.display()
            ));
        }
        embedded::migrations::runner()
            .run(&mut conn)
            .map_err(|e| anyhow!("cannot migrate state_db {}: {e}", path.display()))?;
        Ok(State {
            conn,
            path: path.to_path_buf(),
            digests: false,
        })
    }

    /// Creates the state when it is missing, then opens it: only for the
    /// commands that may start a site's state (`migrate`, `user add`, `user
    /// import`, and `run` without `--if-configured`); then `open` it.
    pub fn create_if_missing(path: &Path) -> Result<()> {
        create_if_missing(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
