//! `[smtp]`: the relay notices go through, and how to reach it safely.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::checks::{Secret, is_loopback, read_password_file};
use crate::values::duration::Seconds;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    #[serde(default = "default_security")]
    pub(super) security: String,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) from: Option<String>,
    #[serde(default)]
    pub(super) cc: Vec<String>,
    #[serde(default = "default_smtp_timeout")]
    pub(super) timeout_s: Seconds,
    pub(super) ca_file: Option<PathBuf>,
    /// Send a password in clear text to a loopback relay on an unprivileged
    /// port (≥ 1024), which any local user could have bound first.
    #[serde(default)]
    pub(super) accept_port_squatting_risk: bool,
}

fn default_security() -> String {
    "starttls".into()
}
fn default_smtp_timeout() -> Seconds {
    Seconds(10)
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP (a local relay).
    None,
    /// STARTTLS, required (port 587).
    StartTls,
    /// Implicit TLS (port 465).
    Tls,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(String, Secret)>,
    /// `smtp.password_file`, whose mode `check` looks at.
    pub password_file: Option<PathBuf>,
    pub timeout: Duration,
    /// An extra trusted root certificate (PEM), for a relay with a private CA.
    pub ca_file: Option<PathBuf>,
}

pub(super) fn smtp_settings(smtp: &RawSmtp) -> Result<SmtpSettings, String> {
    let host = smtp
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .ok_or("smtp.host is missing; e.g. host = \"127.0.0.1\"")?;
    if host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(format!("smtp.host {host:?} is not a host name"));
    }
    let security = match smtp.security.as_str() {
        "none" => Security::None,
        "starttls" => Security::StartTls,
        "tls" => Security::Tls,
        other => {
            return Err(format!(
                "smtp.security {other:?} is not \"none\", \"starttls\" or \"tls\""
            ));
        }
    };
    let port = smtp.port.unwrap_or(match security {
        Security::None => 25,
        Security::StartTls => 587,
        Security::Tls => 465,
    });
    let password = match (&smtp.password, &smtp.password_file) {
        (Some(_), Some(_)) => {
            return Err("set smtp.password or smtp.password_file, not both".into());
        }
        (Some(p), None) => Some(p.clone()),
        (None, Some(file)) => Some(read_password_file("smtp.password_file", file)?),
        (None, None) => None,
    };
    let credentials = match (&smtp.username, password) {
        (Some(user), Some(password)) => Some((user.clone(), Secret(password))),
        (None, None) => None,
        _ => {
            return Err("smtp.username and a password (or password_file) go together".into());
        }
    };
    // AUTH over a plain connection sends the password in clear text:
    // only to this machine's own relay.
    if credentials.is_some() && security == Security::None && !is_loopback(&host) {
        return Err(format!(
            "smtp.security = \"none\" would send the SMTP password in clear text to {host}; use \
                 security = \"starttls\" or \"tls\", or a relay on 127.0.0.1 without a password"
        ));
    }
    // Even to this machine: any local user may bind an unprivileged port
    // before the relay does (or while it restarts) and collect the password.
    if credentials.is_some() && security == Security::None && port >= 1024 && !smtp.accept_port_squatting_risk {
        return Err(format!(
            "smtp.security = \"none\" with a password to port {port}: any local user can listen on a port \
             of 1024 or above and receive the password; use the relay's privileged port (e.g. port = 25), \
             security = \"starttls\", or set accept_port_squatting_risk = true if only trusted users log in here"
        ));
    }
    let Seconds(timeout_s) = smtp.timeout_s;
    if !(1..=300).contains(&timeout_s) {
        return Err(format!("smtp.timeout_s = {timeout_s} is out of range; use 1 to 300"));
    }
    Ok(SmtpSettings {
        host,
        port,
        security,
        credentials,
        password_file: smtp.password_file.clone(),
        timeout: Duration::from_secs(timeout_s),
        ca_file: smtp.ca_file.clone(),
    })
}
