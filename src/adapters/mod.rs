//! The adapters: each holds all the I/O of one outside thing, so the core
//! never touches the world.

pub mod asterisk;
pub mod cdr;
pub mod crashpoint;
pub mod freepbx;
pub mod include_file;
pub mod lock;
pub mod mailer;
pub mod person_file;
pub mod privileges;
pub mod smtp;
pub mod state;
pub mod trace;
