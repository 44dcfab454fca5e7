//! The generated include file on disk: read it, and replace it atomically.
//!
//! The include lives in a directory that others may write (`/etc/asterisk`
//! belongs to the `asterisk` group on FreePBX), so nothing found there is
//! trusted: the path is never followed through a symbolic link, only a
//! regular file is read or replaced (checked on the open descriptor, so a
//! FIFO cannot hang a run), the temp file is created new under an
//! unpredictable name (`O_EXCL`), its mode is always 0644 (nothing is taken
//! from the old file: not setuid/setgid, not write bits for others, not read
//! bits tightened so Asterisk cannot read it), no owner is copied, and a file
//! that callquota did not generate is never overwritten.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, anyhow};

use crate::core::dialplan::HEADER;

/// Larger than any include callquota writes (10,000 users are about 1 MiB).
const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// The include's mode, always: Asterisk (another user) must be able to read
/// it, and nobody but its writer may change it. Tighter read bits planted
/// by someone else would make Asterisk drop the file (`#tryinclude`) and
/// lift every limit, so they are never kept.
const MODE: u32 = 0o644;

/// The file as found: its text, and what [`Existing::needs_repair`] judges.
#[derive(Debug, Clone)]
pub struct Existing {
    pub text: String,
    mode: u32,
    uid: u32,
}

impl Existing {
    /// See [`needs_repair`].
    pub fn needs_repair(&self) -> Option<String> {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if self.mode != MODE {
            Some(format!("mode {:04o}, not {MODE:04o}", self.mode))
        } else if self.uid != me {
            Some(format!("owned by uid {}, not by uid {me}", self.uid))
        } else {
            None
        }
    }
}

/// The current contents, or `None` when the file does not exist yet.
pub fn read(path: &Path) -> Result<Option<String>> {
    Ok(open_existing(path)?.map(|e| e.text))
}

/// The file with its mode and owner (one open, one read), or `None`.
pub fn find(path: &Path) -> Result<Option<Existing>> {
    open_existing(path)
}

/// Opens `path` without following a link or blocking on a FIFO, and reads it
/// only if the descriptor is a regular file.
fn open_existing(path: &Path) -> Result<Option<Existing>> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(anyhow!(
                "include_file {} is a symbolic link; callquota never follows links there (whoever can write \
                 that directory could redirect it): replace it with a regular file or point include_file at one",
                path.display()
            ));
        }
        Err(e) => return Err(anyhow!("cannot read include file {}: {e}", path.display())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read include file {}", path.display()))?;
    if !meta.file_type().is_file() {
        return Err(anyhow!(
            "include_file {} is {}, not a regular file; remove it (the next run writes it) or point include_file \
             at a regular file",
            path.display(),
            kind(&meta.file_type())
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read include file {}", path.display()))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(anyhow!(
            "include_file {} is larger than {} MiB, so callquota did not write it; remove it or point include_file \
             at callquota's own file",
            path.display(),
            MAX_BYTES / 1024 / 1024
        ));
    }
    Ok(Some(Existing {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        mode: meta.permissions().mode() & 0o7777,
        uid: std::os::unix::fs::MetadataExt::uid(&meta),
    }))
}

fn kind(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Why the file on disk needs rewriting although its bytes are right (a
/// mode Asterisk may not read, or an owner other than this user, who could
/// change it), or `None`.
pub fn needs_repair(path: &Path) -> Result<Option<String>> {
    Ok(open_existing(path)?.and_then(|existing| existing.needs_repair()))
}

/// Whether Asterisk, another user, can read the file: its mode lets every
/// user read it. `None` when there is no file.
pub fn readable_by_others(path: &Path) -> Result<Option<(bool, u32)>> {
    Ok(open_existing(path)?.map(|e| (e.mode & 0o004 != 0, e.mode)))
}

/// Whether `text` is a file callquota may replace: its own, or empty.
pub fn is_ours(text: &str) -> bool {
    text.is_empty() || text.starts_with(HEADER)
}

/// The system's words for `e` (tempfile's own text would name the temp file).
fn os_text(e: &std::io::Error) -> String {
    e.raw_os_error().map_or_else(
        || match e.kind() {
            std::io::ErrorKind::StorageFull => "No space left on device".to_string(),
            std::io::ErrorKind::ReadOnlyFilesystem => "Read-only file system".to_string(),
            kind => kind.to_string(),
        },
        |n| std::io::Error::from_raw_os_error(n).to_string(),
    )
}

/// Replaces `path` with `contents`. On any failure the old file is intact.
pub fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let existing = open_existing(path)?;
    if let Some(existing) = &existing
        && !is_ours(&existing.text)
    {
        return Err(anyhow!(
            "include_file {} exists and was not generated by callquota (its first line is not \"{HEADER}\"); \
             refusing to overwrite it: point include_file at a file of its own, e.g. /etc/asterisk/callquota.conf",
            path.display()
        ));
    }
    // Name the include file and its folder, never the random temp file beside it.
    let failed = |what: &str, e: std::io::Error| {
        let cause = match e.kind() {
            std::io::ErrorKind::NotFound if !dir.is_dir() => format!(
                "the folder {} does not exist; create it (on FreePBX it is /etc/asterisk) or set dialplan.include_file",
                dir.display()
            ),
            std::io::ErrorKind::PermissionDenied => format!(
                "{} may not write in {}; make the folder writable for a group it is in (adduser {0} asterisk)",
                crate::adapters::privileges::current_user_name(),
                dir.display()
            ),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => format!(
                "{}: the disk holding {} is full; free space there (the old file stays in place)",
                os_text(&e),
                dir.display()
            ),
            _ => os_text(&e),
        };
        anyhow!("cannot {what} include file {}: {cause}", path.display())
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".callquota.")
        .suffix(".tmp")
        .rand_bytes(12)
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| failed("write", e))?;
    // On every error below, dropping `temp` removes it.
    temp.write_all(contents.as_bytes()).map_err(|e| failed("write", e))?;
    temp.as_file()
        .set_permissions(Permissions::from_mode(MODE))
        .map_err(|e| failed("set the mode of", e))?;
    temp.as_file().sync_all().map_err(|e| failed("flush", e))?;
    // rename(2) replaces the directory entry itself, never a link's target.
    temp.persist(path).map_err(|e| failed("replace", e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush directory {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn ours(body: &str) -> String {
        format!("{HEADER}\n{body}")
    }

    fn entries(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn replaces_contents_always_0644() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callquota.conf");
        assert_eq!(read(&path).unwrap(), None);
        assert_eq!(needs_repair(&path).unwrap(), None);
        write_atomically(&path, &ours("one\n")).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
        assert_eq!(needs_repair(&path).unwrap(), None);
        // Read bits someone tightened (Asterisk could no longer read it) are not kept.
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        assert!(needs_repair(&path).unwrap().unwrap().contains("0640"));
        assert_eq!(readable_by_others(&path).unwrap(), Some((false, 0o640)));
        write_atomically(&path, &ours("two\n")).unwrap();
        assert_eq!(read(&path).unwrap(), Some(ours("two\n")));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
        // setuid, setgid, sticky and write-for-others never carry over.
        fs::set_permissions(&path, Permissions::from_mode(0o7777)).unwrap();
        write_atomically(&path, &ours("three\n")).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
        assert_eq!(entries(dir.path()), 1, "no temp file left behind");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("callquota.conf");
        let err = write_atomically(&path, "x").unwrap_err().to_string();
        assert!(err.contains("missing-dir/callquota.conf"), "{err}");
    }

    #[test]
    fn a_symlink_at_the_include_path_is_neither_read_nor_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("state.db");
        fs::write(&victim, ours("precious")).unwrap();
        let path = dir.path().join("callquota.conf");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(err.contains("symbolic link"), "{err}");
        let err = format!("{:#}", write_atomically(&path, &ours("evil")).unwrap_err());
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), ours("precious"));
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    }

    #[test]
    fn planted_links_at_temp_names_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("config.toml");
        fs::write(&victim, "secret = 1\n").unwrap();
        fs::set_permissions(&victim, Permissions::from_mode(0o600)).unwrap();
        // The old fixed temp name, and a spread of likely ones.
        for name in [".callquota.conf.callquota-tmp", ".callquota.tmp", ".callquota..tmp"] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        let path = dir.path().join("callquota.conf");
        for round in 0..20 {
            write_atomically(&path, &ours(&format!("round {round}\n"))).unwrap();
        }
        assert_eq!(fs::read_to_string(&victim).unwrap(), "secret = 1\n");
        assert_eq!(fs::metadata(&victim).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(read(&path).unwrap(), Some(ours("round 19\n")));
    }

    #[test]
    fn a_foreign_file_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("extensions_custom.conf");
        let site = "[from-internal-custom]\nexten => 1234,1,Playback(demo-congrats)\n";
        fs::write(&path, site).unwrap();
        let err = format!("{:#}", write_atomically(&path, &ours("x")).unwrap_err());
        assert!(err.contains("not generated by callquota"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), site);
        // An empty file (an admin's `touch`) is fine to take over.
        fs::write(&path, "").unwrap();
        write_atomically(&path, &ours("x")).unwrap();
    }

    #[test]
    fn a_fifo_or_directory_at_the_path_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.conf");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = format!("{:#}", read(&fifo).unwrap_err());
        assert!(err.contains("a FIFO, not a regular file"), "{err}");
        let err = format!("{:#}", write_atomically(&fifo, &ours("x")).unwrap_err());
        assert!(err.contains("a FIFO"), "{err}");
        let sub = dir.path().join("sub.conf");
        fs::create_dir(&sub).unwrap();
        let err = format!("{:#}", read(&sub).unwrap_err());
        assert!(err.contains("a directory"), "{err}");
    }
}
