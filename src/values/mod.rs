//! Validated value types: a value of one of these is known to be well formed
//! (what may reach the dialplan, a mail header or a duration sum). Pure.

pub mod contact;
pub mod duration;
pub mod extension;
pub mod text;
