//! The SQLite state adapter: users, daily ledgers, grants, the notification
//! outbox, the audit log and a few run facts. All SQL lives here.
//!
//! WAL and a busy timeout let an admin keep `sqlite3` open on the file while
//! runs go on; a run's changes land in one transaction.

mod audit;
mod db;
mod grants;
mod ledger;
mod meta;
mod outbox;
mod report;
mod users;

pub use audit::{AUDIT_EVENTS, AuditEntry, AuditFilter, set_actor};
pub use db::{LAST_RUN_AT, State, timestamp};
pub use ledger::EarlySnapshot;
pub use outbox::{Delivery, OutboxEntry};
pub use report::{DayGrant, DigestFacts, DirectionBlock};
