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
}
