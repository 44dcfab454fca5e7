//! A file written for a person (`report --html PATH`): where and as they
//! asked, readable by them, whoever the process becomes to read the state.
//!
//! Root becomes the state's owner before it touches anything
//! (`privileges::become_state_owner`), and that user may not write where root
//! asked (`/root/report.html`). So a root process opens the file first, as
//! root, and writes the page through that descriptor after the switch:
//! created new (`O_EXCL`, 0644 less the umask) or, when it is there already,
//! only root's own regular file with one name, never a link, and replaced in
//! place once the page is ready (a failed report leaves an earlier page as
//! it was, a new file empty). Anyone
//! else writes as themselves, through a temporary file beside it and a rename.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};

/// Where a page goes, and the file opened for it before the switch, if any.
#[derive(Debug)]
pub struct PersonFile {
    path: PathBuf,
    opened: Option<File>,
}

/// Prepares `path` for writing; call it before the process switches users.
pub fn prepare(path: &Path) -> Result<PersonFile> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let opened = if euid == 0 {
        Some(open_as_root(path, euid)?)
    } else {
        None
    };
    Ok(PersonFile {
        path: path.to_path_buf(),
        opened,
    })
}

fn open_as_root(path: &Path, euid: u32) -> Result<File> {
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    let refuse = |why: String| anyhow!("cannot write {}: {why}; remove it or give another path", path.display());
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(flags)
            .open(path)
            .map_err(|e| {
                let folder = path.parent().unwrap_or(Path::new("/"));
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow!(
                        "cannot write {}: the folder {} does not exist; create it or give another path",
                        path.display(),
                        folder.display()
                    )
                } else {
                    anyhow!("cannot write {}: {e}; give a folder you may write to", path.display())
                }
            }),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
        Ok(meta) if meta.file_type().is_symlink() => Err(refuse("it is a symbolic link".into())),
        Ok(meta) if !meta.file_type().is_file() => Err(refuse("it is not a regular file".into())),
        Ok(meta) if meta.uid() != euid => Err(refuse(format!("it belongs to uid {}, not to you", meta.uid()))),
        Ok(meta) if meta.nlink() > 1 => Err(refuse("it has other names (hard links)".into())),
        Ok(meta) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(flags)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            // The file opened must be the one looked at (nothing swapped in between).
            let now = file
                .metadata()
                .with_context(|| format!("cannot write {}", path.display()))?;
            if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) || !now.file_type().is_file() {
                return Err(refuse("it changed while it was opened".into()));
            }
            Ok(file)
        }
    }
}

impl PersonFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` as the whole file; a failure names the file and the cause.
    pub fn write(self, text: &str) -> Result<()> {
        let path = &self.path;
        match self.opened {
            Some(mut file) => file
                .set_len(0)
                .and_then(|()| file.write_all(text.as_bytes()))
                .and_then(|()| file.flush())
                .with_context(|| format!("cannot write {}", path.display())),
            None => write_beside(path, text),
        }
    }
}

/// Writes `text` to `path` through a temporary file beside it, so a reader
/// never sees half a page.
fn write_beside(path: &Path, text: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // 0644 less the umask (a plain temporary file would be 0600): the page is for people.
    let mut temp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(&dir)
        .with_context(|| {
            format!(
                "cannot write {}: the {} user cannot create a file in {}; give a folder it may write to, e.g. /tmp",
                path.display(),
                super::privileges::current_user_name(),
                dir.display()
            )
        })?;
    temp.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    temp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
