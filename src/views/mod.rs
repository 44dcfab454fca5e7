//! What people read, rendered from plain figures: the `status` table, the
//! period report (text, CSV, JSON, HTML), notices and the daily digest in each
//! mail language. Pure: the commands print or send the text.

pub mod calls;
pub mod digest;
pub mod html_report;
pub mod language;
pub mod notice;
pub mod period;
pub mod status;
pub mod template;
