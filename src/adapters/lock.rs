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
