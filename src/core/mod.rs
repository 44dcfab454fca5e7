//! The functional core: the decisions (usage → levels → notices → blocked
//! set → carry-over) and the include file's text, as pure functions of plain
//! data and a given clock. No I/O, no clock, nothing from the shell or the
//! adapters: `tests/architecture.rs` checks it.

pub mod billing;
pub mod blocked;
pub mod calendar;
pub mod dialplan;
pub mod explain;
pub mod import;
pub mod live;
pub mod month;
pub mod outbox;
pub mod paid;
pub mod pattern;
pub mod policy;
pub mod retry;
pub mod usage;
pub mod user;
