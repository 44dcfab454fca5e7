//! The TOML config: read as raw serde structs with defaults, then checked and
//! turned into richer types by [`Config::from_raw`], whose errors name the key
//! and the fix. Secrets (the CDR URL's password) never appear in `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

mod cdr;
mod freepbx;

pub use cdr::{CallerColumn, CdrConnection, CdrSettings};
use cdr::{RawCdr, cdr_settings};
pub use freepbx::FreepbxSettings;
use freepbx::{RawFreepbx, freepbx_settings};

use crate::calendar::CdrClock;
use crate::duration::Seconds;
use crate::paid::{Direction, PaidDestinations, valid_direction_name};
use crate::pattern::Pattern;
use crate::policy::Rules;
use crate::template::Template;

pub const DEFAULT_PATH: &str = "/etc/callquota/config.toml";

/// A config problem: exit 78, one line naming the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config {path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
    /// The file is missing or has no `[cdr]` section yet: a fresh install,
    /// not a mistake (`run --if-configured` stays silent about it).
    pub unconfigured: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    timezone: Option<String>,
    state_db: Option<PathBuf>,
    lock_file: Option<PathBuf>,
    run_timeout_s: Option<Seconds>,
    cdr: Option<RawCdr>,
    freepbx: Option<RawFreepbx>,
    #[serde(default)]
    direction: Vec<RawDirection>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    carryover: RawCarryover,
    dialplan: Option<RawDialplan>,
    mail: Option<RawMail>,
    smtp: Option<RawSmtp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: Option<String>,
    port: Option<u16>,
    #[serde(default = "default_security")]
    security: String,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    #[serde(default)]
    cc: Vec<String>,
    #[serde(default = "default_smtp_timeout")]
    timeout_s: Seconds,
    ca_file: Option<PathBuf>,
}

fn default_transport() -> String {
    "smtp".into()
}
fn default_security() -> String {
    "starttls".into()
}
fn default_smtp_timeout() -> Seconds {
    Seconds(10)
}
fn default_max_attempts() -> u32 {
    20
}
fn default_max_age_hours() -> u32 {
    48
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirection {
    name: String,
    patterns: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    thresholds: Option<Vec<i64>>,
    workdays: Option<Vec<String>>,
    max_jump_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCarryover {
    #[serde(default = "yes")]
    enabled: bool,
    max_seconds: Option<Seconds>,
}

impl Default for RawCarryover {
    fn default() -> Self {
        RawCarryover {
            enabled: true,
            max_seconds: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDialplan {
    include_file: PathBuf,
    flavor: String,
    reload_command: Option<Vec<String>>,
    asterisk_cli: Option<Vec<String>>,
    deny_sound: Option<String>,
    #[serde(default = "yes")]
    cap_calls: bool,
    #[serde(default = "yes")]
    live: bool,
    #[serde(default = "default_untracked")]
    untracked: String,
    #[serde(default = "yes")]
    define_hook: bool,
    #[serde(default = "default_reload_timeout")]
    reload_timeout_s: Seconds,
}

fn yes() -> bool {
    true
}
fn default_untracked() -> String {
    "allow".into()
}
fn default_reload_timeout() -> Seconds {
    Seconds(30)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    FreePbx16,
    FreePbx17,
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untracked {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialplanSettings {
    pub include_file: PathBuf,
    pub flavor: Flavor,
    pub reload_command: Vec<String>,
    pub asterisk_cli: Vec<String>,
    pub deny_sound: Option<String>,
    pub cap_calls: bool,
    /// The live guard: Asterisk keeps today's talk time and in-progress
    /// reservations in AstDB, so the allowance holds between runs too.
    /// Only with `cap_calls`.
    pub live: bool,
    pub untracked: Untracked,
    /// Define `[macro-dialout-trunk-predial-hook]` (FreePBX flavors). Sites
    /// with their own hook turn this off and call `callquota-predial` from it.
    pub define_hook: bool,
    pub reload_timeout: Duration,
}

/// A password: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    Smtp(SmtpSettings),
    /// Each message becomes an `.eml` file in this directory.
    Dir(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeTemplate {
    pub subject: Template,
    pub body: Template,
    /// For a notice delivered after its day ended (e.g. queued as the day closed).
    pub subject_past: Template,
    pub body_past: Template,
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
    pub language: crate::language::Language,
    pub max_attempts: u32,
    pub max_age_hours: u32,
}

/// The built-in texts for a threshold in `language`: (subject, body, past
/// subject, past body); at 100 % the "blocked" texts.
pub fn default_texts(threshold: u8, language: crate::language::Language) -> [&'static str; 4] {
    language.notice_texts(threshold >= 100)
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub timezone: Tz,
    pub state_db: PathBuf,
    pub lock_file: PathBuf,
    /// A command still running after this is ended (exit 1); see `deadline`.
    pub run_timeout: Duration,
    pub cdr: CdrSettings,
    /// FreePBX's own database, for `user import --freepbx`.
    pub freepbx: Option<FreepbxSettings>,
    pub paid: PaidDestinations,
    pub rules: Rules,
    pub dialplan: DialplanSettings,
    /// `None`: mail is off and notices wait in the outbox.
    pub mail: Option<MailSettings>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.display().to_string(),
            message,
            unconfigured: false,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError {
                    unconfigured: true,
                    ..err("not found; copy config.example.toml there and edit it, or pass --config PATH".into())
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(err(
                    "cannot be read: permission denied; run callquota as root or as the service user \
                     (sudo -u callquota callquota ...), whose group may read it"
                        .into(),
                ));
            }
            Err(e) => return Err(err(format!("cannot be read: {e}; check its permissions"))),
        };
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            path: path.display().to_string(),
            message: describe_toml_error(text, &e),
            unconfigured: false,
        })?;
        let unconfigured = raw.cdr.is_none();
        Config::from_raw(raw, path).map_err(|message| ConfigError {
            path: path.display().to_string(),
            message,
            unconfigured,
        })
    }

    fn from_raw(raw: RawConfig, path: &Path) -> Result<Config, String> {
        let timezone = match raw.timezone {
            Some(name) => name.parse::<Tz>().map_err(|_| {
                format!("timezone {name:?} is not an IANA zone name; use e.g. \"Asia/Almaty\" or \"Europe/Berlin\"")
            })?,
            None => system_timezone(),
        };
        let state_db = absolute(
            "state_db",
            raw.state_db.unwrap_or_else(|| "/var/lib/callquota/state.db".into()),
        )?;
        let lock_file = match raw.lock_file {
            Some(p) => absolute("lock_file", p)?,
            None => {
                let mut s = state_db.clone().into_os_string();
                s.push(".lock");
                PathBuf::from(s)
            }
        };
        let cdr = cdr_settings(raw.cdr.ok_or_else(|| {
            "not configured: the [cdr] section with url = \"mysql://user:password@host/asteriskcdrdb\" is missing"
                .to_string()
        })?)?;
        let freepbx = raw.freepbx.map(freepbx_settings).transpose()?;
        let paid = directions(raw.direction)?;
        let rules = Rules {
            thresholds: thresholds(raw.limits.thresholds)?,
            workdays: workdays(raw.limits.workdays)?,
            carry_enabled: raw.carryover.enabled,
            // `Seconds` already refused negative and over-a-year values.
            carry_cap_s: raw.carryover.max_seconds.map(|Seconds(s)| s),
            max_jump_days: match raw.limits.max_jump_days {
                None => crate::policy::MAX_UNFORCED_JUMP_DAYS,
                Some(d) if (1..=crate::policy::MAX_CATCH_UP_DAYS).contains(&d) => d,
                Some(d) => return Err(format!("limits.max_jump_days = {d} is out of range; use 1 to 366")),
            },
        };
        let dialplan = dialplan_settings(raw.dialplan.ok_or_else(|| {
            "the [dialplan] section is missing; set include_file and flavor (freepbx16, freepbx17 or plain)".to_string()
        })?)?;
        let mail = match raw.mail {
            Some(mail) => Some(mail_settings(mail, raw.smtp, &rules.thresholds)?),
            None if raw.smtp.is_some() => {
                return Err(
                    "[smtp] is set but [mail] is missing; add [mail] with transport = \"smtp\" to send notices".into(),
                );
            }
            None => None,
        };
        Ok(Config {
            path: path.to_path_buf(),
            timezone,
            state_db,
            lock_file,
            run_timeout: match raw.run_timeout_s {
                None => Duration::from_secs(240),
                Some(Seconds(s)) if (1..=3600).contains(&s) => Duration::from_secs(s),
                Some(Seconds(s)) => return Err(format!("run_timeout_s = {s} is out of range; use 1 to 3600")),
            },
            cdr,
            freepbx,
            paid,
            rules,
            dialplan,
            mail,
        })
    }

    /// Which CDR rows charge whom: `run`, `check` and `calls` judge alike.
    pub fn usage_rule(&self) -> crate::usage::UsageRule<'_> {
        crate::usage::UsageRule {
            caller_column: self.cdr.caller_column,
            paid: &self.paid,
            trunk_channels: &self.cdr.trunk_channels,
            route_prefixes: &self.cdr.route_prefixes,
        }
    }

    pub fn cdr_clock(&self) -> CdrClock {
        CdrClock {
            tz: self.timezone,
            utc: self.cdr.utc,
        }
    }
}

fn absolute(key: &str, path: PathBuf) -> Result<PathBuf, String> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!(
            "{key} = {:?} must be an absolute path",
            path.display().to_string()
        ))
    }
}

fn directions(raw: Vec<RawDirection>) -> Result<PaidDestinations, String> {
    if raw.is_empty() {
        return Err("no [[direction]] is configured; add one with name and patterns (the paid destinations)".into());
    }
    let mut out = Vec::new();
    for d in raw {
        if !valid_direction_name(&d.name) {
            return Err(format!(
                "direction name {:?} is not valid; use 1-40 letters, digits, _ or -",
                d.name
            ));
        }
        if out.iter().any(|o: &Direction| o.name == d.name) {
            return Err(format!(
                "direction {:?} is defined twice; give each direction its own name",
                d.name
            ));
        }
        if d.patterns.is_empty() {
            return Err(format!(
                "direction {:?} has no patterns; add e.g. patterns = [\"_8747XXXXXXX\"]",
                d.name
            ));
        }
        let patterns = d
            .patterns
            .iter()
            .map(|p| Pattern::parse(p).map_err(|e| format!("direction {:?}: {e}", d.name)))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Direction { name: d.name, patterns });
    }
    Ok(PaidDestinations::new(out))
}

fn thresholds(raw: Option<Vec<i64>>) -> Result<Vec<u8>, String> {
    let Some(list) = raw else {
        return Ok(vec![50, 90, 100]);
    };
    let fix = "use ascending percents from 1 to 100 ending with 100, e.g. [50, 90, 100]";
    if list.is_empty() || list.len() > 10 {
        return Err(format!("limits.thresholds must hold 1 to 10 values; {fix}"));
    }
    if list.iter().any(|&t| !(1..=100).contains(&t)) {
        return Err(format!("limits.thresholds {list:?} has a value outside 1-100; {fix}"));
    }
    if list.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("limits.thresholds {list:?} is not in ascending order; {fix}"));
    }
    if list.last() != Some(&100) {
        return Err(format!("limits.thresholds {list:?} must end with 100; {fix}"));
    }
    Ok(list.into_iter().map(|t| t as u8).collect())
}

fn workdays(raw: Option<Vec<String>>) -> Result<[bool; 7], String> {
    let Some(list) = raw else {
        return Ok([true; 7]);
    };
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut days = [false; 7];
    for name in &list {
        let lower = name.to_ascii_lowercase();
        let index = NAMES
            .iter()
            .position(|n| lower.len() >= 3 && (lower == *n || full_name(n).is_some_and(|f| f == lower)))
            .ok_or_else(|| {
                format!("limits.workdays entry {name:?} is not a weekday; use mon, tue, wed, thu, fri, sat, sun")
            })?;
        days[index] = true;
    }
    Ok(days)
}

fn full_name(short: &str) -> Option<&'static str> {
    Some(match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        "sun" => "sunday",
        _ => return None,
    })
}

fn dialplan_settings(raw: RawDialplan) -> Result<DialplanSettings, String> {
    let include_file = absolute("dialplan.include_file", raw.include_file)?;
    let flavor = match raw.flavor.as_str() {
        "freepbx16" => Flavor::FreePbx16,
        "freepbx17" => Flavor::FreePbx17,
        "plain" => Flavor::Plain,
        other => {
            return Err(format!(
                "dialplan.flavor {other:?} is not one of \"freepbx16\", \"freepbx17\", \"plain\""
            ));
        }
    };
    let reload_command = raw.reload_command.unwrap_or_else(|| {
        vec![
            crate::reload::ASTERISK.into(),
            "-rx".into(),
            "module reload pbx_config.so".into(),
        ]
    });
    if reload_command.is_empty() || reload_command[0].is_empty() {
        return Err(
            "dialplan.reload_command is empty; use e.g. [\"asterisk\", \"-rx\", \"module reload pbx_config.so\"]"
                .into(),
        );
    }
    let asterisk_cli = raw
        .asterisk_cli
        .unwrap_or_else(|| vec![crate::reload::ASTERISK.into(), "-rx".into()]);
    if asterisk_cli.first().is_some_and(|a| a.is_empty()) {
        return Err(
            "dialplan.asterisk_cli starts with an empty program name; use [\"asterisk\", \"-rx\"] or [] to skip".into(),
        );
    }
    if let Some(sound) = &raw.deny_sound {
        let ok = (1..=100).contains(&sound.len())
            && !sound.contains("..")
            && !sound.starts_with('/')
            && sound
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'));
        if !ok {
            return Err(format!(
                "dialplan.deny_sound {sound:?} is not a sound name; use letters, digits, _ - / without an extension, e.g. \"custom/limit-reached\""
            ));
        }
    }
    let untracked = match raw.untracked.as_str() {
        "allow" => Untracked::Allow,
        "deny" => Untracked::Deny,
        other => {
            return Err(format!("dialplan.untracked {other:?} is not \"allow\" or \"deny\""));
        }
    };
    let Seconds(reload_timeout_s) = raw.reload_timeout_s;
    if !(1..=600).contains(&reload_timeout_s) {
        return Err(format!(
            "dialplan.reload_timeout_s = {reload_timeout_s} is out of range; use 1 to 600"
        ));
    }
    Ok(DialplanSettings {
        include_file,
        flavor,
        reload_command,
        asterisk_cli,
        deny_sound: raw.deny_sound,
        cap_calls: raw.cap_calls,
        live: raw.live && raw.cap_calls,
        untracked,
        define_hook: raw.define_hook,
        reload_timeout: Duration::from_secs(reload_timeout_s),
    })
}

fn mail_settings(raw: RawMail, smtp: Option<RawSmtp>, thresholds: &[u8]) -> Result<MailSettings, String> {
    let check_address = |key: &str, address: &str| {
        crate::contact::validate_email(address)
            .and_then(|()| {
                if address.is_empty() {
                    Err(crate::contact::ContactError::BadEmail(String::new()))
                } else {
                    Ok(())
                }
            })
            .map_err(|_| format!("{key} {address:?} is not an email address like callquota@example.com"))
    };
    let transport = match raw.transport.as_str() {
        "smtp" => {
            let smtp = smtp
                .as_ref()
                .ok_or("mail.transport = \"smtp\" needs an [smtp] section with host and from")?;
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
            let Seconds(timeout_s) = smtp.timeout_s;
            if !(1..=300).contains(&timeout_s) {
                return Err(format!("smtp.timeout_s = {timeout_s} is out of range; use 1 to 300"));
            }
            MailTransport::Smtp(SmtpSettings {
                host,
                port,
                security,
                credentials,
                password_file: smtp.password_file.clone(),
                timeout: Duration::from_secs(timeout_s),
                ca_file: smtp.ca_file.clone(),
            })
        }
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
        None => crate::language::Language::En,
        Some(code) => crate::language::Language::parse(code)
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

/// Reads a one-line secret from a file (trailing newline dropped).
fn read_password_file(key: &str, file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file)
        .map(|text| text.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| format!("{key} {} cannot be read: {e}", file.display()))
}

/// `localhost`, 127.0.0.0/8 or ::1.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// toml quotes the offending value in backticks (`invalid type: integer
/// `84736251``); the value may be a password, so it is never repeated.
fn without_values(message: &str) -> String {
    if !message.starts_with("invalid") {
        return message.to_string();
    }
    let mut out = String::new();
    for (i, piece) in message.split('`').enumerate() {
        out.push_str(if i % 2 == 1 { "(value not shown)" } else { piece });
    }
    out
}

/// One line: where the problem is (line and key) and what toml says about it.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = without_values(&error.message().replace('\n', " "));
    match error.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line = text[..start].matches('\n').count() + 1;
            // The key on that line, when the error is about its value.
            let key = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)));
            let at = key.map_or(format!("line {line}"), |k| format!("line {line} ({k})"));
            format!("{at}: {}; fix or remove it", message.trim_end_matches('.'))
        }
        None => format!("{}; fix it", message.trim_end_matches('.')),
    }
}

/// The host's zone: `TZ`, then `/etc/timezone`, then the `/etc/localtime` link; UTC if none.
fn system_timezone() -> Tz {
    let from_env = std::env::var("TZ").ok().map(|s| s.trim_start_matches(':').to_string());
    let from_file = std::fs::read_to_string("/etc/timezone")
        .ok()
        .map(|s| s.trim().to_string());
    let from_link = std::fs::read_link("/etc/localtime").ok().and_then(|p| {
        let s = p.to_string_lossy().into_owned();
        s.split_once("zoneinfo/").map(|(_, zone)| zone.to_string())
    });
    [from_env, from_file, from_link]
        .into_iter()
        .flatten()
        .find_map(|name| name.parse::<Tz>().ok())
        .unwrap_or(chrono_tz::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
timezone = "Asia/Almaty"
state_db = "/tmp/x/state.db"
[cdr]
url = "mysql://cq:s3cret@127.0.0.1:3306/asteriskcdrdb"
[[direction]]
name = "mobile"
patterns = ["_870[5780-2]XXXXXXX", "_8747XXXXXXX"]
[dialplan]
include_file = "/etc/asterisk/callquota.conf"
flavor = "freepbx17"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/callquota/config.toml"))
    }

    fn error_of(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn defaults_fill_the_rest() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.lock_file, PathBuf::from("/tmp/x/state.db.lock"));
        assert_eq!(c.cdr.table, "cdr");
        assert_eq!(c.cdr.caller_column, CallerColumn::Cnum);
        assert_eq!(c.rules, Rules::default());
        assert_eq!(
            c.dialplan.reload_command,
            ["/usr/sbin/asterisk", "-rx", "module reload pbx_config.so"]
        );
        assert_eq!(c.dialplan.asterisk_cli, ["/usr/sbin/asterisk", "-rx"]);
        assert_eq!(c.dialplan.untracked, Untracked::Allow);
        assert!(c.dialplan.cap_calls);
    }

    #[test]
    fn the_password_never_shows() {
        let c = parse(GOOD).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(c.cdr.connection.describe(), "mysql://cq@127.0.0.1:3306/asteriskcdrdb");
        let e = error_of(&GOOD.replace("mysql://cq:s3cret@127.0.0.1", "mysql://cq:s3cret@[bad"));
        assert!(!e.contains("s3cret"), "{e}");
        // An unquoted number where a string belongs: toml would quote the value back.
        let e = error_of(&GOOD.replace(
            "url = \"mysql://cq:s3cret@127.0.0.1:3306/asteriskcdrdb\"",
            "user = \"cq\"\npassword = 84736251",
        ));
        assert!(!e.contains("84736251") && e.contains("line"), "{e}");
        let e = error_of(&GOOD.replace(
            "url = \"mysql://cq:s3cret@127.0.0.1:3306/asteriskcdrdb\"",
            "url = 84736251",
        ));
        assert!(!e.contains("84736251"), "{e}");
    }

    #[test]
    fn config_durations_read_like_the_command_line_and_errors_name_the_key() {
        let c = parse(&format!("{GOOD}[carryover]\nmax_seconds = \"2h\"\n")).unwrap();
        assert_eq!(c.rules.carry_cap_s, Some(7200));
        let c = parse(&format!("{GOOD}[carryover]\nmax_seconds = 5400\n")).unwrap();
        assert_eq!(c.rules.carry_cap_s, Some(5400));
        let c = parse(&GOOD.replace("flavor", "reload_timeout_s = \"1m\"\nflavor")).unwrap();
        assert_eq!(c.dialplan.reload_timeout, Duration::from_secs(60));
        for bad in ["\"2x\"", "-5", "\"400d\"", "\"9999h\""] {
            let e = error_of(&format!("{GOOD}[carryover]\nmax_seconds = {bad}\n"));
            assert!(e.contains("(max_seconds)"), "{bad}: {e}");
            assert!(!e.contains(bad.trim_matches('"')), "{bad}: {e}");
        }
    }

    #[test]
    fn smtp_credentials_travel_in_clear_text_only_to_this_machine() {
        let smtp = |host: &str, security: &str| {
            format!(
                "{GOOD}[mail]\n[smtp]\nhost = \"{host}\"\nsecurity = \"{security}\"\nfrom = \"cq@example.com\"\n\
                 username = \"cq\"\npassword = \"pw\"\n"
            )
        };
        let e = error_of(&smtp("mail.example.com", "none"));
        assert!(e.contains("clear text") && e.contains("starttls"), "{e}");
        for host in ["127.0.0.1", "localhost", "::1", "127.0.0.53"] {
            assert!(parse(&smtp(host, "none")).is_ok(), "{host}");
        }
        assert!(parse(&smtp("mail.example.com", "starttls")).is_ok());
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let cases = [
            (GOOD.replace("[cdr]", "colour = 1\n[cdr]"), "unknown field `colour`"),
            (GOOD.replace("Asia/Almaty", "Mars/Olympus"), "timezone \"Mars/Olympus\""),
            (GOOD.replace("_8747XXXXXXX", "_87[4"), "unclosed '['"),
            (
                GOOD.replace("flavor = \"freepbx17\"", "flavor = \"freepbx18\""),
                "dialplan.flavor",
            ),
            (GOOD.to_string() + "[limits]\nthresholds = [90, 50, 100]\n", "ascending"),
            (GOOD.to_string() + "[limits]\nthresholds = [50, 90]\n", "end with 100"),
            (GOOD.to_string() + "[limits]\nthresholds = [0, 100]\n", "outside 1-100"),
            (
                GOOD.to_string() + "[limits]\nworkdays = [\"mon\", \"someday\"]\n",
                "someday",
            ),
            (
                GOOD.replace("name = \"mobile\"", "name = \"mob;ile\""),
                "direction name",
            ),
            (
                GOOD.replace("state_db = \"/tmp/x/state.db\"", "state_db = \"state.db\""),
                "absolute",
            ),
            (
                GOOD.replace("[cdr]\nurl", "[cdr]\ntable = \"cdr; drop\"\nurl"),
                "cdr.table",
            ),
            (GOOD.replace("flavor", "deny_sound = \"../x\"\nflavor"), "deny_sound"),
            (GOOD.to_string() + "[carryover]\nmax_seconds = -5\n", "max_seconds"),
        ];
        for (text, want) in cases {
            let e = error_of(&text);
            assert!(e.contains(want), "want {want:?} in {e:?}");
            assert!(!e.contains('\n'), "multi-line error: {e:?}");
        }
    }

    #[test]
    fn the_example_config_parses_with_every_documented_key_set() {
        let example = include_str!("../config.example.toml");
        parse(example).unwrap();
        // Uncomment every `#key = value` line: each documented key must be real.
        let all: String = example
            .lines()
            .map(|l| {
                let uncommented = l.strip_prefix('#').unwrap_or(l);
                let is_key = uncommented
                    .split_once(" = ")
                    .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
                let is_header = uncommented.starts_with('[') && uncommented.ends_with(']');
                if is_key || is_header { uncommented } else { l }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = parse(&all).unwrap();
        assert_eq!(c.paid.directions().len(), 2);
        assert_eq!(c.rules.carry_cap_s, Some(7200));
        assert_eq!(c.cdr.trunk_channels.len(), 2);
        assert_eq!(
            c.freepbx.expect("freepbx").connection.describe(),
            "mysql://callquota@127.0.0.1:3306/asterisk"
        );
        let mail = c.mail.expect("mail");
        assert_eq!(mail.cc, ["telecom-admin@example.com"]);
        assert_eq!(mail.digest_to, ["boss@example.com"]);
        assert_eq!(mail.language, crate::language::Language::En);
        assert!(matches!(
            mail.transport,
            MailTransport::Smtp(SmtpSettings {
                port: 587,
                security: Security::StartTls,
                ..
            })
        ));
        assert_eq!(mail.templates.len(), 3);
    }

    #[test]
    fn mail_settings_are_checked() {
        let smtp = "[smtp]\nhost = \"127.0.0.1\"\nfrom = \"cq@example.com\"\n";
        let cases = [
            (format!("{GOOD}{smtp}"), "[mail] is missing"),
            (format!("{GOOD}[mail]\n"), "needs an [smtp] section"),
            (
                format!("{GOOD}[mail]\ntransport = \"dir\"\nfrom = \"a@example.com\"\n"),
                "needs mail.dir",
            ),
            (
                format!("{GOOD}[mail]\n{}", smtp.replace("cq@example.com", "cq@@x")),
                "from \"cq@@x\"",
            ),
            (
                format!("{GOOD}[mail]\n{smtp}password = \"p\"\npassword_file = \"/x\"\n"),
                "not both",
            ),
            (format!("{GOOD}[mail]\n{smtp}security = \"ssl\"\n"), "smtp.security"),
            (
                format!("{GOOD}[mail]\nlanguage = \"de\"\n{smtp}"),
                "mail.language \"de\" is not one of \"en\", \"ru\", \"kk\"",
            ),
            (
                format!("{GOOD}[mail]\ndigest_to = [\"boss\"]\n{smtp}"),
                "mail.digest_to \"boss\" is not an email address",
            ),
            (
                format!("{GOOD}[mail.templates.75]\nsubject = \"x\"\n{smtp}"),
                "mail.templates.75 is not one of",
            ),
            (
                format!("{GOOD}[mail.templates.50]\nbody = \"{{used}} {{secs}}\"\n{smtp}"),
                "unknown placeholder {secs}",
            ),
            (
                format!("{GOOD}[mail.templates.50]\nsubject = \"a\\nBcc: x\"\n{smtp}"),
                "line break",
            ),
        ];
        for (text, want) in cases {
            let e = error_of(&text);
            assert!(e.contains(want), "want {want:?} in {e:?}");
        }
    }

    #[test]
    fn the_smtp_password_never_shows() {
        let text = format!(
            "{GOOD}[mail]\n[smtp]\nhost = \"h.example.com\"\nfrom = \"cq@example.com\"\nusername = \"u\"\npassword = \"hunter22\"\n"
        );
        let c = parse(&text).unwrap();
        assert!(!format!("{c:?}").contains("hunter22"));
    }

    #[test]
    fn an_empty_file_says_not_configured() {
        assert!(error_of("# all commented out\n").contains("not configured"));
    }

    #[test]
    fn workdays_accept_short_and_full_names() {
        let c = parse(&(GOOD.to_string() + "[limits]\nworkdays = [\"Mon\", \"tuesday\", \"FRI\"]\n")).unwrap();
        assert_eq!(c.rules.workdays, [true, true, false, false, true, false, false]);
    }

    #[test]
    fn unknown_key_error_has_its_line() {
        let e = error_of(&GOOD.replace("[dialplan]", "[dialplan]\nflavour = 1"));
        assert!(e.contains("line 10"), "{e}");
    }
}
