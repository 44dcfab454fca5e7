//! callquota: individual daily limits on paid outgoing calls for Asterisk/FreePBX.
//!
//! The functional core ([`policy`], [`dialplan`], [`pattern`], [`usage`],
//! [`calendar`], [`duration`]) decides; the adapters ([`state`], [`cdr`],
//! [`include_file`], [`reload`], [`lock`]) do I/O; [`commands`] orders them.
//! See ARCHITECTURE.md.

pub mod calendar;
pub mod cdr;
pub mod cli;
pub mod commands;
pub mod config;
pub mod contact;
pub mod crashpoint;
pub mod deadline;
pub mod dialplan;
pub mod digest;
pub mod duration;
pub mod exit;
pub mod explain;
pub mod extension;
pub mod freepbx;
pub mod html_report;
pub mod import;
pub mod include_file;
pub mod language;
pub mod live;
pub mod lock;
pub mod mailer;
pub mod notice;
pub mod paid;
pub mod pattern;
pub mod period;
pub mod policy;
pub mod privileges;
pub mod reload;
pub mod smtp;
pub mod state;
pub mod status_view;
pub mod template;
pub mod usage;
