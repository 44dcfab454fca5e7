//! The TOML config: read as raw serde structs with defaults, then checked and
//! turned into richer types by `Config::from_raw`, whose errors name the key
//! and the fix. Secrets (the CDR URL's password) never appear in `Debug`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

mod cdr;
mod checks;
mod dialplan;
mod freepbx;
mod limits;
mod mail;
mod smtp;

pub use cdr::{CdrConnection, CdrSettings, Endpoint};
use cdr::{RawCdr, cdr_settings};
use checks::absolute;
pub use checks::{Secret, read_bounded};
pub use dialplan::{ASTERISK, DialplanSettings};
use dialplan::{RawDialplan, dialplan_settings};
pub use freepbx::FreepbxSettings;
use freepbx::{RawFreepbx, freepbx_settings};
use limits::{RawCarryover, RawDirection, RawLimits, directions, rules};
pub use mail::{MailSettings, MailTransport};
use mail::{RawMail, mail_settings};
use smtp::RawSmtp;
pub use smtp::{Security, SmtpSettings};

use crate::core::calendar::CdrClock;
pub use crate::core::dialplan::{Flavor, Untracked};
use crate::core::paid::PaidDestinations;
use crate::core::policy::Rules;
use crate::core::usage::CallerColumn;
use crate::values::duration::Seconds;

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
        // A config is a few KiB: a FIFO or device there cannot hang or flood a command.
        let text = match read_bounded(path, 1024 * 1024) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| err("is not UTF-8 text; save it as UTF-8".into()))?,
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
            "not configured: the [cdr] section is missing; uncomment [cdr] with its host, user and password (or \
             password_file) and the [[direction]] and [dialplan] sections, then run `callquota check`"
                .to_string()
        })?)?;
        let freepbx = raw.freepbx.map(freepbx_settings).transpose()?;
        let paid = directions(raw.direction)?;
        let rules = rules(raw.limits, raw.carryover)?;
        let dialplan = dialplan_settings(raw.dialplan.ok_or_else(|| {
            "the [dialplan] section is missing; set include_file and flavor (freepbx16, freepbx17 or plain)".to_string()
        })?)?;
        // The FreePBX hook names the payer of a forwarded or transferred call
        // in cnum only; keyed on another column, those calls are nobody's.
        if dialplan.flavor != Flavor::Plain && cdr.caller_column != CallerColumn::Cnum {
            return Err(format!(
                "cdr.caller_column = \"{}\" with a FreePBX flavor: the pre-dial hook writes the payer of a \
                 forwarded or transferred call into cnum, so those calls would be charged to nobody; use \
                 caller_column = \"cnum\" (the default), or flavor = \"plain\" with your own hook",
                cdr.caller_column.column()
            ));
        }
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
    pub fn usage_rule(&self) -> crate::core::usage::UsageRule<'_> {
        crate::core::usage::UsageRule {
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

/// The host's zone: the `/etc/localtime` link's target, then
/// `/etc/timezone`; UTC if neither names a zone. Never `TZ`: the caller's
/// environment (which sudo passes on) must not decide which day it is.
fn system_timezone() -> Tz {
    let from_link = std::fs::read_link("/etc/localtime").ok().and_then(|p| zone_of_link(&p));
    let from_file = read_small("/etc/timezone").map(|s| s.trim().to_string());
    [from_link, from_file]
        .into_iter()
        .flatten()
        .find_map(|name| name.parse::<Tz>().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// `/usr/share/zoneinfo/Asia/Almaty` → `Asia/Almaty`.
fn zone_of_link(target: &Path) -> Option<String> {
    let s = target.to_string_lossy();
    s.split_once("zoneinfo/").map(|(_, zone)| zone.to_string())
}

/// A small system file (a few bytes), read only if it is a regular file.
fn read_small(path: &str) -> Option<String> {
    let bytes = checks::read_bounded(Path::new(path), 4096).ok()?;
    String::from_utf8(bytes).ok()
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
        // A loopback relay on an unprivileged port: whoever bound it first gets the password.
        let squatted = smtp("127.0.0.1", "none").replace("security", "port = 2525\nsecurity");
        let e = error_of(&squatted);
        assert!(
            e.contains("port 2525") && e.contains("accept_port_squatting_risk = true"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        assert!(parse(&(squatted.clone() + "accept_port_squatting_risk = true\n")).is_ok());
        assert!(parse(&squatted.replace("port = 2525", "port = 587")).is_ok());
        assert!(parse(&squatted.replace("security = \"none\"", "security = \"starttls\"")).is_ok());
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
            (
                GOOD.replace("name = \"mobile\"", "name = \"mobile\"\nbilling = \"60\""),
                "\"60/60\"",
            ),
            (
                GOOD.to_string() + "[[direction]]\nname = \"intl\"\npatterns = [\"_8X.\"]\nbilling = \"60/60\"\n",
                "bill differently",
            ),
            (GOOD.replace("flavor", "warn_sound = \"x y\"\nflavor"), "warn_sound"),
            (
                GOOD.replace("flavor", "no_limit_sound = \"a,b\"\nflavor"),
                "no_limit_sound",
            ),
            (
                GOOD.replace("flavor", "balance_code = \"*77,1,Dial(x)\"\nflavor"),
                "balance_code",
            ),
            (GOOD.replace("flavor", "balance_code = \"\"\nflavor"), "balance_code"),
            (GOOD.replace("flavor", "balance_code = \"_X.\"\nflavor"), "balance_code"),
            (GOOD.replace("flavor", "warn_before = \"2h\"\nflavor"), "warn_before"),
            (
                GOOD.replace("flavor", "languages = [\"../ru\"]\nflavor"),
                "dialplan.languages",
            ),
            (
                GOOD.replace("flavor", "announce_below = \"2d\"\nflavor"),
                "announce_below",
            ),
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
        let example = include_str!("../../config.example.toml");
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
        assert_eq!(mail.language, crate::views::language::Language::En);
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
    fn the_system_zone_is_read_from_the_localtime_link() {
        assert_eq!(
            zone_of_link(Path::new("/usr/share/zoneinfo/Asia/Almaty")).as_deref(),
            Some("Asia/Almaty")
        );
        assert_eq!(
            zone_of_link(Path::new("../usr/share/zoneinfo/Etc/UTC")).as_deref(),
            Some("Etc/UTC")
        );
    }

    #[test]
    fn unknown_key_error_has_its_line() {
        let e = error_of(&GOOD.replace("[dialplan]", "[dialplan]\nflavour = 1"));
        assert!(e.contains("line 10"), "{e}");
    }
}
