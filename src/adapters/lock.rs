//! The run lock: an OS file lock (`flock`) on `lock_file`, released by the
//! kernel when the process exits, however it exits.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

/// Another process holds the lock (exit code 75).
#[derive(Debug, thiserror::Error)]
#[error("another callquota run holds the lock {0}; try again later")]
pub struct LockHeld(pub String);

/// How long an admin's command (grant, user, mail flush) waits for a cron run
/// to finish before it gives up: a run takes well under a second.
pub const ADMIN_PATIENCE: Duration = Duration::from_secs(60);

/// Holds the lock while alive.
pub struct RunLock {
    _file: File,
}

fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
        return Err(anyhow!(
            "lock_file directory {} does not exist; create it (the .deb creates /var/lib/callquota) or set lock_file",
            dir.display()
        ));
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                anyhow!(
                    "lock_file {} is a symbolic link; callquota never follows one there: remove it",
                    path.display()
                )
            } else if e.kind() == std::io::ErrorKind::PermissionDenied {
                anyhow!(
                    "cannot open lock_file {}: permission denied; run callquota as the user that owns the state, \
                     e.g. sudo -u callquota callquota ...",
                    path.display()
                )
            } else {
                anyhow!("cannot open lock_file {}: {e}", path.display())
            }
        })
        .and_then(|file| match file.metadata() {
            Ok(m) if m.is_file() => Ok(file),
            _ => Err(anyhow!("lock_file {} is not a regular file; remove it", path.display())),
        })
}

/// Records, while the lock is held, the time of a successful run in the lock
/// file itself (one RFC 3339 line). A run that changes nothing then writes
/// nothing to the SQLite state, so it costs no fsync: SQLite's commit and
/// the checkpoint on close would sync the disk four or five times, the
/// largest part of a steady-state run after its CDR query. Not synced: a
/// time lost in a crash only makes `status` call the figures stale until
/// the next run.
pub fn record_success(path: &Path, at: chrono::DateTime<chrono::Utc>) -> Result<()> {
    let file = open(path)?;
    let line = format!("{}\n", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
    // Written over in place (the line has one length): no truncation first,
    // which cost each run a metadata update and left a moment with no time.
    std::os::unix::fs::FileExt::write_all_at(&file, line.as_bytes(), 0)
        .and_then(|()| match file.metadata()?.len() {
            len if len == line.len() as u64 => Ok(()),
            _ => file.set_len(line.len() as u64),
        })
        .map_err(|e| anyhow!("cannot write lock_file {}: {e}", path.display()))
}

/// The time [`record_success`] left in the lock file; `None` when there is
/// none (no run yet, an older version's empty file) or it cannot be read.
pub fn last_success(path: &Path) -> Option<chrono::DateTime<chrono::Utc>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, 64), &mut text).ok()?;
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.to_utc())
}

/// Takes the lock or fails at once with [`LockHeld`].
pub fn try_acquire(path: &Path) -> Result<RunLock> {
    acquire_within(path, Duration::ZERO)
}

/// Waits up to `patience` for the lock (admin commands wait for a run to end).
pub fn acquire_within(path: &Path, patience: Duration) -> Result<RunLock> {
    let file = open(path)?;
    let deadline = Instant::now() + patience;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(RunLock { _file: file }),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(TryLockError::WouldBlock) => {
                return Err(LockHeld(path.display().to_string()).into());
            }
            Err(TryLockError::Error(e)) => {
                return Err(anyhow!("cannot lock {}: {e}", path.display()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.lock");
        let first = try_acquire(&path).unwrap();
        let err = try_acquire(&path).err().unwrap();
        assert!(err.downcast_ref::<LockHeld>().is_some());
        drop(first);
        assert!(try_acquire(&path).is_ok());
    }

    #[test]
    fn the_lock_file_keeps_the_time_of_the_last_successful_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.lock");
        let _held = try_acquire(&path).unwrap();
        assert_eq!(last_success(&path), None, "an empty lock file: no run yet");
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-26T05:00:00Z")
            .unwrap()
            .to_utc();
        record_success(&path, at).unwrap();
        record_success(&path, at + chrono::Duration::minutes(5)).unwrap();
        assert_eq!(last_success(&path), Some(at + chrono::Duration::minutes(5)));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "2026-11-26T05:05:00+00:00\n");
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(last_success(&path), None);
    }

    #[test]
    fn a_symlink_or_fifo_at_the_lock_path_is_refused_and_not_created_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.lock");
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = format!("{:#}", try_acquire(&path).err().unwrap());
        assert!(err.contains("symbolic link"), "{err}");
        assert!(!target.exists(), "a dangling link must not create its target");
        std::fs::remove_file(&path).unwrap();
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = format!("{:#}", try_acquire(&path).err().unwrap());
        assert!(err.contains("not a regular file"), "{err}");
    }
}
