//! Test-only fault injection: `CALLQUOTA_CRASH_AT=<step>` kills the process
//! with SIGKILL when it reaches that step, so tests can prove that every
//! step is restartable without timing-based kills. This is the only place
//! the variable is read; unset (always, in production) it costs one lookup.
//!
//! Steps: `after-cdr-read`, `in-state-transaction`, `after-state-commit`,
//! `after-include-write`, `after-reload`, `during-mail`.

use std::sync::OnceLock;

pub const VARIABLE: &str = "CALLQUOTA_CRASH_AT";

pub fn reached(step: &str) {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    if TARGET.get_or_init(|| std::env::var(VARIABLE).ok()).as_deref() == Some(step) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        // If kill(1) is missing, die just as abruptly (no destructors, no flush).
        std::process::abort();
    }
}
