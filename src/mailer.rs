//! The mail adapter: builds a message with lettre and hands it to SMTP
//! (rustls, no OpenSSL) or writes it as an `.eml` file into a directory.

use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::{FileTransport, Transport};

use crate::config::{MailSettings, MailTransport, Security, SmtpSettings};
use crate::smtp::{Relay, Tls};

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The server refused it for good (e.g. 550 unknown recipient): do not retry.
    #[error("{0}")]
    Rejected(String),
    /// The server could not be reached or failed for now: retry later, and
    /// do not try more messages in this run.
    #[error("{0}")]
    Unavailable(String),
    /// Something about this message (e.g. an address) is unusable.
    #[error("{0}")]
    Invalid(String),
}

enum Transport_ {
    Smtp(Box<Relay>, String),
    Dir(FileTransport, String),
}

pub struct Mailer {
    transport: Transport_,
    from: Mailbox,
    cc: Vec<Mailbox>,
}

/// One message to send.
pub struct Outgoing<'a> {
    pub to_name: Option<&'a str>,
    pub to: &'a str,
    /// More addresses in To (the digest's recipients after the first).
    pub also_to: &'a [&'a str],
    pub extra_cc: &'a [&'a str],
    pub subject: &'a str,
    pub body: &'a str,
    /// An HTML view of the same text (sent as multipart/alternative).
    pub html: Option<&'a str>,
    pub date: DateTime<Utc>,
}

/// A recipient in its sendable form; an address stored before addresses were
/// checked this strictly fails here, for its own message only.
fn mailbox(name: Option<&str>, address: &str) -> Result<Mailbox, SendError> {
    let address = crate::contact::normalize_email(address)
        .map_err(|e| SendError::Invalid(e.to_string()))?
        .parse()
        .map_err(|e| SendError::Invalid(format!("address {address:?} is not usable: {e}")))?;
    Ok(Mailbox::new(name.map(str::to_string), address))
}

fn smtp_relay(s: &SmtpSettings) -> Result<Relay> {
    let tls_parameters = || -> Result<TlsParameters> {
        let mut builder = TlsParameters::builder(s.host.clone());
        if let Some(file) = &s.ca_file {
            let pem = std::fs::read(file).with_context(|| format!("cannot read smtp.ca_file {}", file.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| anyhow!("smtp.ca_file {} is not a PEM certificate: {e}", file.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| anyhow!("cannot set up TLS for {}: {e}", s.host))
    };
    let tls = match s.security {
        Security::None => Tls::None,
        Security::StartTls => Tls::StartTls(tls_parameters()?),
        Security::Tls => Tls::Wrapper(tls_parameters()?),
    };
    Ok(Relay {
        host: s.host.clone(),
        port: s.port,
        tls,
        credentials: s
            .credentials
            .as_ref()
            .map(|(user, password)| Credentials::new(user.clone(), password.0.clone())),
        timeout: s.timeout,
        name: format!("SMTP server {}:{}", s.host, s.port),
    })
}

fn one_line(text: impl std::fmt::Display) -> String {
    text.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Mailer> {
        let transport = match &settings.transport {
            MailTransport::Smtp(s) => {
                let relay = smtp_relay(s)?;
                let name = relay.name.clone();
                Transport_::Smtp(Box::new(relay), name)
            }
            MailTransport::Dir(dir) => Transport_::Dir(FileTransport::new(dir), format!("mail.dir {}", dir.display())),
        };
        let from = mailbox(Some("callquota"), &settings.from).map_err(|e| anyhow!("smtp.from: {e}"))?;
        let cc = settings
            .cc
            .iter()
            .map(|a| mailbox(None, a))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("smtp.cc: {e}"))?;
        Ok(Mailer { transport, from, cc })
    }

    /// Where messages go, for messages to the admin.
    pub fn destination(&self) -> &str {
        match &self.transport {
            Transport_::Smtp(_, where_) | Transport_::Dir(_, where_) => where_,
        }
    }

    pub fn send(&self, m: &Outgoing<'_>) -> Result<(), SendError> {
        if [m.subject, m.to, m.to_name.unwrap_or("")]
            .iter()
            .any(|v| v.contains(['\r', '\n']))
        {
            return Err(SendError::Invalid("a header value holds a line break".into()));
        }
        let to = mailbox(m.to_name, m.to)?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to.clone())
            .subject(m.subject)
            .date(SystemTime::from(m.date))
            .message_id(None);
        for to in m.also_to {
            builder = builder.to(mailbox(None, to)?);
        }
        for cc in &self.cc {
            builder = builder.cc(cc.clone());
        }
        for cc in m.extra_cc {
            builder = builder.cc(mailbox(None, cc)?);
        }
        let message = match m.html {
            None => builder.header(ContentType::TEXT_PLAIN).body(m.body.to_string()),
            Some(html) => builder.multipart(lettre::message::MultiPart::alternative_plain_html(
                m.body.to_string(),
                html.to_string(),
            )),
        }
        .map_err(|e| SendError::Invalid(format!("cannot build the message: {e}")))?;
        match &self.transport {
            Transport_::Smtp(relay, _) => relay.send(&message, &to.email),
            Transport_::Dir(dir, where_) => dir
                .send(&message)
                .map(|_| ())
                .map_err(|e| SendError::Unavailable(format!("{where_}: {}", one_line(&e)))),
        }
    }

    /// Connects (SMTP) or checks the directory (dir) without sending.
    pub fn check(&self) -> Result<String> {
        match &self.transport {
            Transport_::Smtp(relay, where_) => relay
                .test()
                .map(|()| format!("{where_} answers"))
                .map_err(|e| anyhow!("{e}")),
            Transport_::Dir(_, where_) => {
                let dir = where_.trim_start_matches("mail.dir ");
                let probe = std::path::Path::new(dir).join(".callquota-probe");
                std::fs::write(&probe, b"")
                    .and_then(|()| std::fs::remove_file(&probe))
                    .map(|()| format!("{where_} is writable"))
                    .map_err(|e| anyhow!("{where_} is not writable: {e}"))
            }
        }
    }
}
