//! Exit codes, and the typed errors that select them.

use crate::adapters::lock::LockHeld;
use crate::config::ConfigError;

pub const OK: i32 = 0;
pub const FAILURE: i32 = 1;
pub const USAGE: i32 = 2;
pub const LOCK_HELD: i32 = 75;
pub const CONFIG: i32 = 78;

/// Bad input on the command line that clap cannot see (unknown extension, bad email...).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn code_for(error: &anyhow::Error) -> i32 {
    if error.chain().any(|e| e.is::<ConfigError>()) {
        CONFIG
    } else if error.chain().any(|e| e.is::<LockHeld>()) {
        LOCK_HELD
    } else if error.chain().any(|e| e.is::<UsageError>()) {
        USAGE
    } else {
        FAILURE
    }
}
