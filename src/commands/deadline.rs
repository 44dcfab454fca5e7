//! A whole-command deadline. Per-read timeouts do not stop a MySQL or SMTP
//! server that trickles a byte at a time, and a run that never ends holds the
//! lock and stops every later cron run. So a watchdog ends the process when
//! the deadline passes. That is safe at any moment: the state changes in one
//! SQLite transaction, the include file is replaced by rename, and a notice is
//! marked sent only after the server accepted it (the crash tests kill a run
//! at each of these steps), so the next run continues from what was committed.

use std::time::Duration;

/// Ends the process with exit 1 and one line on stderr if it is still running
/// after `limit`.
pub fn arm(limit: Duration) {
    let watchdog = std::thread::Builder::new().name("deadline".into()).spawn(move || {
        std::thread::sleep(limit);
        eprintln!(
            "callquota: gave up after {} s (run_timeout_s): a server stopped answering in time; nothing is \
             half-done, the next run continues from the last committed state",
            limit.as_secs()
        );
        // SAFETY: _exit ends the process at once, like the kill the design is proven against.
        unsafe { libc::_exit(crate::exit::FAILURE) }
    });
    // Without a watchdog thread the command simply runs without a deadline.
    drop(watchdog);
}
