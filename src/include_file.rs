//! The generated include file on disk: read it, and replace it atomically
//! (temp file in the same directory, fsync, keep owner and mode, rename,
//! fsync the directory), so Asterisk never sees a truncated file.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, anyhow};

/// The current contents, or `None` when the file does not exist yet.
pub fn read(path: &Path) -> Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("cannot read include file {}: {e}", path.display())),
    }
}

/// Replaces `path` with `contents`. On any failure the old file is intact.
pub fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("include file {} has no file name", path.display()))?;
    let temp = dir.join(format!(".{}.callquota-tmp", name.to_string_lossy()));
    let result = write_temp_then_rename(path, &temp, dir, contents);
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_temp_then_rename(path: &Path, temp: &Path, dir: &Path, contents: &str) -> Result<()> {
    let failed = |what: &str, e: std::io::Error| anyhow!("cannot {what} include file {}: {e}", path.display());
    let old = fs::metadata(path).ok();
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(temp)
        .map_err(|e| failed("write", e))?;
    file.write_all(contents.as_bytes()).map_err(|e| failed("write", e))?;
    if let Some(old) = &old {
        file.set_permissions(Permissions::from_mode(old.mode() & 0o7777))
            .map_err(|e| failed("set the mode of", e))?;
        // Keep the owner (e.g. asterisk) when we may; an unprivileged run keeps its own.
        let _ = std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()));
    }
    file.sync_all().map_err(|e| failed("flush", e))?;
    drop(file);
    fs::rename(temp, path).map_err(|e| failed("replace", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush directory {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callquota.conf");
        assert_eq!(read(&path).unwrap(), None);
        write_atomically(&path, "one\n").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, "two\n").unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some("two\n"));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("callquota.conf");
        let err = write_atomically(&path, "x").unwrap_err().to_string();
        assert!(err.contains("missing-dir/callquota.conf"), "{err}");
    }
}
