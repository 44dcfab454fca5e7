//! The mail adapter: builds a message with lettre and hands it to SMTP
//! (rustls, no OpenSSL) or writes it as an `.eml` file into a directory.

use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};

pub use crate::adapters::smtp::SendError;
use crate::adapters::smtp::{Relay, Tls};
use crate::config::{MailSettings, MailTransport, Security, SmtpSettings};

enum Transport_ {
    Smtp(Box<Relay>, String),
    Dir(std::path::PathBuf, String),
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
    let address = crate::values::contact::normalize_email(address)
        .map_err(|e| SendError::Invalid(e.to_string()))?
        .parse()
        .map_err(|e| SendError::Invalid(format!("address {address:?} is not usable: {e}")))?;
    Ok(Mailbox::new(name.map(str::to_string), address))
}

fn smtp_relay(s: &SmtpSettings) -> Result<Relay> {
    let tls_parameters = || -> Result<TlsParameters> {
        let mut builder = TlsParameters::builder(s.host.clone());
        if let Some(file) = &s.ca_file {
            let pem = crate::config::read_bounded(file, 1024 * 1024)
                .with_context(|| format!("cannot read smtp.ca_file {}", file.display()))?;
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
            MailTransport::Dir(dir) => Transport_::Dir(dir.clone(), format!("mail.dir {}", dir.display())),
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
            Transport_::Dir(dir, where_) => write_eml(dir, &message.formatted())
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
            // A new file under a random name (O_EXCL: never through a link
            // someone planted, never truncating anything), removed again.
            Transport_::Dir(dir, where_) => new_file_in(dir, ".callquota-probe.", ".tmp")
                .map(|_probe| format!("{where_} is writable"))
                .map_err(|e| anyhow!("{where_} is not writable: {e}")),
        }
    }
}

/// A new file in `dir` under an unpredictable name, created with `O_EXCL`
/// (which never follows a link and never opens an existing file); removed
/// when dropped unless kept.
fn new_file_in(dir: &std::path::Path, prefix: &str, suffix: &str) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(suffix)
        .rand_bytes(16)
        .permissions(std::fs::Permissions::from_mode(0o640))
        .tempfile_in(dir)
}

/// One message as `<random>.eml` in the mail directory (what lettre's file
/// transport writes, but created new: a planted link or file is never
/// followed or overwritten).
fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = new_file_in(dir, "", ".eml")?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.keep().map(drop).map_err(|e| e.error)
}
