//! callquota: individual daily limits on paid outgoing calls for Asterisk/FreePBX.
//!
//! The tree is the architecture (see ARCHITECTURE.md):
//! - [`core`] decides and renders the include file: pure functions of plain
//!   data and a given clock;
//! - [`values`] are the validated value types (durations, extensions, contacts);
//! - [`views`] render what people read (status, reports, notices, the digest);
//! - [`adapters`] do the I/O (SQLite, MySQL, Asterisk, the include file, mail,
//!   the lock, privileges);
//! - [`config`] turns the TOML into checked settings;
//! - [`commands`] is the shell: it orders the side effects of each command.
//!
//! `tests/architecture.rs` fails when a pure folder names I/O or a clock, or
//! when two files import each other.

pub mod adapters;
pub mod cli;
pub mod commands;
pub mod config;
pub mod core;
pub mod exit;
pub mod values;
pub mod views;
