//! `[mail]`: how notices and digests are delivered (SMTP or a folder),
//! from whom, to whom in copy, in which language, with which texts.

use std::path::PathBuf;

use serde::Deserialize;

use super::checks::absolute;
use super::smtp::{RawSmtp, SmtpSettings, smtp_settings};
use crate::values::contact::{ContactError, validate_email};
use crate::views::language::Language;
use crate::views::notice::{NoticeTemplate, default_texts};
use crate::views::template::Template;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMail {
    #[serde(default = "default_transport")]
    transport: String,
    dir: Option<PathBuf>,
    from: Option<String>,
    cc: Option<Vec<String>>,
    /// Who gets the daily digest of each closed day.
    #[serde(default)]
    digest_to: Vec<String>,
    /// "en", "ru" or "kk": the built-in texts and how figures are written.
    language: Option<String>,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    #[serde(default = "default_max_age_hours")]
    max_age_hours: u32,
    #[serde(default)]
    templates: std::collections::BTreeMap<String, RawTemplate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    subject: Option<String>,
    body: Option<String>,
    subject_past: Option<String>,
    body_past: Option<String>,
}

fn default_transport() -> String {
    "smtp".into()
}
fn default_max_attempts() -> u32 {
    20
}
fn default_max_age_hours() -> u32 {
    48
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    Smtp(SmtpSettings),
    /// Each message becomes an `.eml` file in this directory.
    Dir(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    pub transport: MailTransport,
    pub from: String,
    /// Copied on every notice.
    pub cc: Vec<String>,
    /// One per threshold.
    pub templates: std::collections::BTreeMap<u8, NoticeTemplate>,
    /// The daily digest's recipients (empty: no digest).
    pub digest_to: Vec<String>,
    /// The built-in texts' language, and how durations and dates are written.
    pub language: Language,
    pub max_attempts: u32,
    pub max_age_hours: u32,
}

pub(super) fn mail_settings(raw: RawMail, smtp: Option<RawSmtp>, thresholds: &[u8]) -> Result<MailSettings, String> {
    let check_address = |key: &str, address: &str| {
        validate_email(address)
            .and_then(|()| {
                if address.is_empty() {
                    Err(ContactError::BadEmail(String::new()))
                } else {
                    Ok(())
                }
            })
            .map_err(|_| format!("{key} {address:?} is not an email address like callquota@example.com"))
    };
    let transport = match raw.transport.as_str() {
        "smtp" => MailTransport::Smtp(smtp_settings(
            smtp.as_ref()
                .ok_or("mail.transport = \"smtp\" needs an [smtp] section with host and from")?,
        )?),
        "dir" => MailTransport::Dir(absolute(
            "mail.dir",
            raw.dir
                .clone()
                .ok_or("mail.transport = \"dir\" needs mail.dir, the folder for .eml files")?,
        )?),
        other => {
            return Err(format!("mail.transport {other:?} is not \"smtp\" or \"dir\""));
        }
    };
    let from = raw
        .from
        .clone()
        .or_else(|| smtp.as_ref().and_then(|s| s.from.clone()))
        .ok_or("the sender is missing; set smtp.from (or mail.from), e.g. from = \"callquota@example.com\"")?;
    check_address("from", &from)?;
    let cc = raw
        .cc
        .clone()
        .unwrap_or_else(|| smtp.as_ref().map(|s| s.cc.clone()).unwrap_or_default());
    for address in &cc {
        check_address("cc", address)?;
    }
    for address in &raw.digest_to {
        check_address("mail.digest_to", address)?;
    }
    if raw.max_attempts == 0 || raw.max_age_hours == 0 {
        return Err("mail.max_attempts and mail.max_age_hours must be at least 1".into());
    }
    let language = match raw.language.as_deref() {
        None => Language::En,
        Some(code) => Language::parse(code)
            .ok_or_else(|| format!("mail.language {code:?} is not one of \"en\", \"ru\", \"kk\""))?,
    };
    let mut templates = std::collections::BTreeMap::new();
    for &t in thresholds {
        let [subject, body, subject_past, body_past] = default_texts(t, language);
        let configured = raw.templates.get(&t.to_string());
        let subject = configured.and_then(|c| c.subject.as_deref()).unwrap_or(subject);
        let body = configured.and_then(|c| c.body.as_deref()).unwrap_or(body);
        // A site's own text serves past days too unless it gives a past-tense one.
        let own = configured.is_some_and(|c| c.subject.is_some() || c.body.is_some());
        let subject_past =
            configured
                .and_then(|c| c.subject_past.as_deref())
                .unwrap_or(if own { subject } else { subject_past });
        let body_past = configured
            .and_then(|c| c.body_past.as_deref())
            .unwrap_or(if own { body } else { body_past });
        for (key, text) in [("subject", subject), ("subject_past", subject_past)] {
            if text.chars().any(|c| c == '\r' || c == '\n') {
                return Err(format!(
                    "mail.templates.{t}.{key} holds a line break; a subject is one line"
                ));
            }
        }
        let parse = |key: &str, text: &str| Template::parse(text).map_err(|e| format!("mail.templates.{t}.{key}: {e}"));
        templates.insert(
            t,
            NoticeTemplate {
                subject: parse("subject", subject)?,
                body: parse("body", body)?,
                subject_past: parse("subject_past", subject_past)?,
                body_past: parse("body_past", body_past)?,
            },
        );
    }
    if let Some(extra) = raw
        .templates
        .keys()
        .find(|k| !thresholds.iter().any(|t| t.to_string() == **k))
    {
        return Err(format!(
            "mail.templates.{extra} is not one of limits.thresholds {thresholds:?}"
        ));
    }
    Ok(MailSettings {
        transport,
        from,
        cc,
        templates,
        digest_to: raw.digest_to.clone(),
        language,
        max_attempts: raw.max_attempts,
        max_age_hours: raw.max_age_hours,
    })
}
