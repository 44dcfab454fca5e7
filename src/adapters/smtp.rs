//! One SMTP transaction at a time, step by step, so that a failure says
//! whose problem it is. lettre's `SmtpTransport::send` reports a 5xx the same
//! whether the server refused the sender (a 553 to MAIL FROM: every notice
//! would fail alike), the login (535) or one recipient (550 to RCPT TO: only
//! that notice is undeliverable). Only the last one may give a notice up.

use std::time::Duration;

use lettre::Address;
use lettre::message::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;

/// How the connection is secured.
pub enum Tls {
    None,
    /// STARTTLS after the greeting, required.
    StartTls(TlsParameters),
    /// TLS from the first byte (port 465).
    Wrapper(TlsParameters),
}

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

pub struct Relay {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub credentials: Option<Credentials>,
    pub timeout: Duration,
    /// `SMTP server host:port`, for messages.
    pub name: String,
}

fn one_line(text: impl std::fmt::Display) -> String {
    text.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Relay {
    /// Greeting, STARTTLS and login: any failure here is the server's or the
    /// settings', never one notice's.
    fn connect(&self) -> Result<SmtpConnection, SendError> {
        let unavailable = |what: &str, e: lettre::transport::smtp::Error| {
            SendError::Unavailable(format!("{}: {what}: {}", self.name, one_line(e)))
        };
        let hello = ClientId::default();
        let wrapper = match &self.tls {
            Tls::Wrapper(p) => Some(p),
            _ => None,
        };
        let mut conn = SmtpConnection::connect(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &hello,
            wrapper,
            None,
        )
        .map_err(|e| unavailable("cannot connect", e))?;
        if let Tls::StartTls(p) = &self.tls {
            conn.starttls(p, &hello)
                .map_err(|e| unavailable("STARTTLS failed", e))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .map_err(|e| unavailable("login refused (check [smtp] username and password)", e))?;
        }
        Ok(conn)
    }

    /// Connects and says goodbye (`check`).
    pub fn test(&self) -> Result<(), SendError> {
        let mut conn = self.connect()?;
        let _ = conn.quit();
        Ok(())
    }

    /// Sends `message` to its envelope's recipients. A permanent refusal of
    /// `primary` gives this message up (`Rejected`); a refused copy address
    /// is left out and the rest still get it; the sender refused, a server
    /// error or a dropped connection leave it for later (`Unavailable`).
    pub fn send(&self, message: &Message, primary: &Address) -> Result<(), SendError> {
        let mut conn = self.connect()?;
        let result = self.transaction(&mut conn, message, primary);
        match &result {
            Ok(()) => {
                let _ = conn.quit();
            }
            Err(_) => conn.abort(),
        }
        result
    }

    fn transaction(&self, conn: &mut SmtpConnection, message: &Message, primary: &Address) -> Result<(), SendError> {
        let name = &self.name;
        let envelope = message.envelope();
        let later = |what: &str, e: lettre::transport::smtp::Error| {
            SendError::Unavailable(format!("{name}: {what}: {}", one_line(e)))
        };
        conn.command(Mail::new(envelope.from().cloned(), vec![]))
            .map_err(|e| later("the sender was refused (check [smtp] from and the relay's rules)", e))?;
        let mut accepted = 0;
        for recipient in envelope.to() {
            match conn.command(Rcpt::new(recipient.clone(), vec![])) {
                Ok(_) => accepted += 1,
                Err(e) if e.is_permanent() && recipient == primary => {
                    return Err(SendError::Rejected(format!(
                        "{name}: recipient {recipient} rejected: {}",
                        one_line(e)
                    )));
                }
                // A copy address the server will never take: the others still get the notice.
                Err(e) if e.is_permanent() => {}
                Err(e) => return Err(later(&format!("recipient {recipient} not accepted for now"), e)),
            }
        }
        if accepted == 0 {
            return Err(SendError::Rejected(format!("{name}: every recipient was rejected")));
        }
        conn.command(Data).map_err(|e| later("DATA refused", e))?;
        conn.message(&message.formatted()).map_err(|e| {
            if e.is_permanent() {
                SendError::Rejected(format!("{name}: the message was refused: {}", one_line(e)))
            } else {
                later("the message was not accepted", e)
            }
        })?;
        Ok(())
    }
}
