//! Run as the owner of the state, not as root.
//!
//! An admin who types `callquota grant ...` as root would otherwise leave
//! root-owned files (the lock, SQLite's `-wal`/`-shm`, a rewritten include)
//! that the cron job, running as `callquota`, can no longer open, and would
//! run the configured commands as root. So a root process switches to the
//! user that owns the state directory (with that user's groups, e.g.
//! `asterisk`) before it touches anything, and does as root only what the
//! service user could do too. A state directory owned by root (a hand-made
//! install) keeps root.

use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Result, anyhow};

/// Who the process now is, when it changed.
#[derive(Debug, PartialEq, Eq)]
pub struct Switched {
    pub user: String,
    pub uid: u32,
}

/// If running as root, becomes the owner of `state_db`'s directory.
pub fn become_state_owner(state_db: &Path) -> Result<Option<Switched>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let dir = state_db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(None); // opening the state names the missing directory
    };
    if meta.uid() == 0 {
        return Ok(None);
    }
    let (uid, dir_gid) = (meta.uid(), meta.gid());
    let account = account(uid);
    let user = account
        .as_ref()
        .map_or_else(|| uid.to_string(), |(name, _)| name.clone());
    let gid = account.as_ref().map_or(dir_gid, |(_, gid)| *gid);
    let failed = |what: &str| {
        anyhow!(
            "cannot switch from root to {user}, the owner of {} ({what}: {}); run as that user: sudo -u {user} \
             callquota ...",
            dir.display(),
            std::io::Error::last_os_error()
        )
    };
    // SAFETY: plain system calls on owned, NUL-terminated values.
    unsafe {
        match &account {
            Some((name, _)) => {
                let name = CString::new(name.as_str()).map_err(|_| anyhow!("user name {name} has a NUL byte"))?;
                if libc::initgroups(name.as_ptr(), gid) != 0 {
                    return Err(failed("initgroups"));
                }
            }
            None => {
                if libc::setgroups(1, &gid) != 0 {
                    return Err(failed("setgroups"));
                }
            }
        }
        if libc::setgid(gid) != 0 {
            return Err(failed("setgid"));
        }
        if libc::setuid(uid) != 0 {
            return Err(failed("setuid"));
        }
        // Make sure there is no way back (setuid from a saved root uid).
        if libc::setuid(0) == 0 {
            return Err(anyhow!(
                "internal: root privileges could be regained after switching to {user}"
            ));
        }
    }
    Ok(Some(Switched { user, uid }))
}

/// Who delegated this command, when someone else's rights run it: sudo
/// (`SUDO_UID` of a caller other than root), doas (`DOAS_USER`), pkexec
/// (`PKEXEC_UID`) or a set-user-ID start (real uid ≠ effective uid). Such a caller may run the installed configuration's
/// commands, never choose the config, the clock or a path
/// (`commands::refuse_delegated`).
pub fn delegated_by() -> Option<String> {
    // SAFETY: getuid and geteuid have no preconditions.
    let (real, effective) = unsafe { (libc::getuid(), libc::geteuid()) };
    if real != effective {
        return Some(format!("uid {real} through a set-user-ID start"));
    }
    // doas and pkexec switch both uids and leave these behind instead.
    if let Ok(user) = std::env::var("DOAS_USER")
        && user.trim() != "root"
    {
        return Some(format!(
            "{} through doas",
            crate::values::text::escape_controls(user.trim())
        ));
    }
    if let Ok(uid) = std::env::var("PKEXEC_UID")
        && uid.trim() != "0"
    {
        return Some(format!(
            "uid {} through pkexec",
            crate::values::text::escape_controls(uid.trim())
        ));
    }
    let sudo_uid = std::env::var("SUDO_UID").ok()?;
    match sudo_uid.trim().parse::<u32>() {
        Ok(0) => None, // root ran sudo: root may do everything anyway
        Ok(uid) => Some(format!("uid {uid} through sudo")),
        Err(_) => Some("an unknown user through sudo".to_string()),
    }
}

/// This process's user name (for messages), or its uid.
/// The person behind this command, for the audit log: `SUDO_USER` when run
/// through sudo, else the login name of the session, else the account that
/// runs it. Read before a root process becomes the service user.
pub fn acting_person() -> String {
    let sudo = std::env::var("SUDO_USER").ok().filter(|n| is_user_name(n));
    sudo.or_else(login_name).unwrap_or_else(current_user_name)
}

/// A POSIX-ish account name (what sudo and getlogin give): anything else in
/// `SUDO_USER` is not believed.
fn is_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'$'))
}

/// getlogin(3): the user logged in on the controlling terminal (none under cron).
/// Called once, at startup, before any other thread exists (it is not reentrant).
fn login_name() -> Option<String> {
    // SAFETY: getlogin returns NULL or a NUL-terminated static buffer, copied at once.
    let name = unsafe {
        let ptr = libc::getlogin();
        if ptr.is_null() {
            return None;
        }
        CStr::from_ptr(ptr).to_str().ok()?.to_string()
    };
    is_user_name(&name).then_some(name)
}

pub fn current_user_name() -> String {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    account(uid).map_or_else(|| uid.to_string(), |(name, _)| name)
}

/// The name and primary group of `uid`, from the passwd database.
fn account(uid: u32) -> Option<(String, u32)> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `pwd` and `buf` outlive the call; the result points into them.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() {
            return None;
        }
        let name = CStr::from_ptr(pwd.pw_name).to_str().ok()?.to_string();
        Some((name, pwd.pw_gid))
    }
}
