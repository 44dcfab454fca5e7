//! What every command gets: the checked config and the clock, read once.

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::Config;
use crate::core::calendar::local_day;

/// What every command gets: the checked config and the clock.
pub struct Context {
    pub config: Config,
    pub now: DateTime<Utc>,
}

impl Context {
    pub fn today(&self) -> NaiveDate {
        local_day(self.now, self.config.timezone)
    }

    /// When the last successful run finished: the lock file's record, or
    /// (a state from before it was kept there) the state's `meta` row.
    pub fn last_run_at(&self, state: &crate::adapters::state::State) -> anyhow::Result<Option<DateTime<Utc>>> {
        let recorded = crate::adapters::lock::last_success(&self.config.lock_file);
        Ok(recorded.max(state.last_run_at()?))
    }
}
