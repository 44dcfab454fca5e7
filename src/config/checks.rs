//! Checks and types the sections share: absolute paths, secrets read from
//! files (never shown by `Debug`), loopback hosts.

use std::fmt;
use std::path::{Path, PathBuf};

/// A password: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

pub(super) fn absolute(key: &str, path: PathBuf) -> Result<PathBuf, String> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!(
            "{key} = {:?} must be an absolute path",
            path.display().to_string()
        ))
    }
}

/// Reads a one-line secret from a file (trailing newline dropped).
pub(super) fn read_password_file(key: &str, file: &Path) -> Result<String, String> {
    read_bounded(file, 64 * 1024)
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| std::io::Error::other("it is not UTF-8 text")))
        .map(|text| text.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| format!("{key} {} cannot be read: {e}", file.display()))
}

/// Reads a whole file of at most `limit` bytes, only if it is a regular
/// file: opened with `O_NONBLOCK` (a FIFO cannot hang the command), checked
/// on the descriptor (a link to `/dev/zero` is a device, not a file), and
/// read through `take` (a file that grows cannot eat the memory). Config,
/// password files, CSV imports and `extensions_custom.conf` are read this way.
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(
            "it is not a regular file (a FIFO, device or directory)",
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "it is larger than {} KiB, more than callquota ever reads there",
            limit / 1024
        )));
    }
    Ok(bytes)
}

/// `localhost`, 127.0.0.0/8 or ::1.
pub(super) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// serde's default for the switches that are on unless turned off.
pub(super) fn yes() -> bool {
    true
}
