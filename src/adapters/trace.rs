//! `CALLQUOTA_TRACE=1`: each step of a command, with the milliseconds since
//! the process started, on stderr. For finding where a run's time goes on
//! a real host (see README, Benchmark); unset, a step costs one lookup.

use std::sync::OnceLock;
use std::time::Instant;

pub const VARIABLE: &str = "CALLQUOTA_TRACE";

fn started() -> Option<Instant> {
    static START: OnceLock<Option<Instant>> = OnceLock::new();
    *START.get_or_init(|| {
        std::env::var_os(VARIABLE)
            .is_some_and(|v| !v.is_empty() && v != "0")
            .then(Instant::now)
    })
}

/// Starts the clock (called first thing in `main`).
pub fn start() {
    let _ = started();
}

/// Prints `+12.345 ms  step` when tracing.
pub fn mark(step: &str) {
    if let Some(start) = started() {
        let thread = std::thread::current();
        eprintln!(
            "callquota: trace +{:8.3} ms  {step}{}",
            start.elapsed().as_secs_f64() * 1000.0,
            thread
                .name()
                .filter(|n| *n != "main")
                .map_or(String::new(), |n| format!(" [{n}]"))
        );
    }
}
