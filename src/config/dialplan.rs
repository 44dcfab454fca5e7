//! `[dialplan]`: where the include file goes, how Asterisk loads it, and
//! the options that shape its text.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::checks::absolute;
use crate::core::dialplan::{Flavor, Options, Untracked};
use crate::values::duration::Seconds;

/// Where FreePBX and source installs put Asterisk: the default of the commands that call it.
pub const ASTERISK: &str = "/usr/sbin/asterisk";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDialplan {
    include_file: PathBuf,
    flavor: String,
    reload_command: Option<Vec<String>>,
    asterisk_cli: Option<Vec<String>>,
    deny_sound: Option<String>,
    #[serde(default = "default_warn_before")]
    warn_before: Seconds,
    warn_sound: Option<String>,
    announce_below: Option<Seconds>,
    balance_code: Option<String>,
    no_limit_sound: Option<String>,
    #[serde(default)]
    languages: Vec<String>,
    #[serde(default = "super::checks::yes")]
    cap_calls: bool,
    #[serde(default = "super::checks::yes")]
    live: bool,
    #[serde(default = "default_untracked")]
    untracked: String,
    #[serde(default = "super::checks::yes")]
    define_hook: bool,
    #[serde(default = "default_reload_timeout")]
    reload_timeout_s: Seconds,
}

fn default_untracked() -> String {
    "allow".into()
}
fn default_warn_before() -> Seconds {
    Seconds(60)
}
fn default_reload_timeout() -> Seconds {
    Seconds(30)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialplanSettings {
    pub include_file: PathBuf,
    pub flavor: Flavor,
    pub reload_command: Vec<String>,
    pub asterisk_cli: Vec<String>,
    pub deny_sound: Option<String>,
    /// How long before `L()` ends a capped call its caller hears a warning (0: none).
    pub warn_before: Duration,
    /// What the warning plays; `None`: Asterisk's "you have N minutes M seconds left".
    pub warn_sound: Option<String>,
    /// A tracked user's paid call hears "you have N minutes" before it is
    /// dialled when less than this is left (zero: never).
    pub announce_below: Duration,
    /// The feature code that says what is left today (e.g. `*77`).
    pub balance_code: Option<String>,
    /// What an extension without a limit hears from the balance code.
    pub no_limit_sound: Option<String>,
    /// Languages callers use besides Asterisk's default (`check` looks for
    /// the prompts in each).
    pub languages: Vec<String>,
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

impl DialplanSettings {
    /// What the generated file looks like (the rest is how it is loaded);
    /// `zone` is config's `timezone`, whose local date is a call's day.
    pub fn options<'a>(&'a self, zone: &'a str) -> Options<'a> {
        Options {
            zone,
            flavor: self.flavor,
            deny_sound: self.deny_sound.as_deref(),
            warn_before_ms: self.warn_before.as_millis() as u64,
            warn_sound: self.warn_sound.as_deref(),
            announce_below_ms: self.announce_below.as_millis() as u64,
            balance_code: self.balance_code.as_deref(),
            no_limit_sound: self.no_limit_sound.as_deref(),
            cap_calls: self.cap_calls,
            live: self.live,
            untracked: self.untracked,
            define_hook: self.define_hook,
        }
    }
}

pub(super) fn dialplan_settings(raw: RawDialplan) -> Result<DialplanSettings, String> {
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
    let reload_command = raw
        .reload_command
        .unwrap_or_else(|| vec![ASTERISK.into(), "-rx".into(), "module reload pbx_config.so".into()]);
    if reload_command.is_empty() || reload_command[0].is_empty() {
        return Err(
            "dialplan.reload_command is empty; use e.g. [\"asterisk\", \"-rx\", \"module reload pbx_config.so\"]"
                .into(),
        );
    }
    let asterisk_cli = raw.asterisk_cli.unwrap_or_else(|| vec![ASTERISK.into(), "-rx".into()]);
    if asterisk_cli.first().is_some_and(|a| a.is_empty()) {
        return Err(
            "dialplan.asterisk_cli starts with an empty program name; use [\"asterisk\", \"-rx\"] or [] to skip".into(),
        );
    }
    sound_name("dialplan.deny_sound", raw.deny_sound.as_deref())?;
    sound_name("dialplan.warn_sound", raw.warn_sound.as_deref())?;
    sound_name("dialplan.no_limit_sound", raw.no_limit_sound.as_deref())?;
    if let Some(code) = raw.balance_code.as_deref() {
        // It becomes an extension name in the include file: a literal one.
        if !(1..=10).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
            return Err(format!(
                "dialplan.balance_code {code:?} is not a feature code; use digits, * and # only, e.g. \"*77\""
            ));
        }
    }
    let Seconds(announce_below_s) = raw.announce_below.unwrap_or(Seconds(0));
    if announce_below_s > 24 * 3600 {
        return Err(format!(
            "dialplan.announce_below = {announce_below_s}s is more than a day; use e.g. \"5m\", or leave it out"
        ));
    }
    if let Some(bad) = raw
        .languages
        .iter()
        .find(|l| !(1..=16).contains(&l.len()) || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(format!(
            "dialplan.languages has {bad:?}, not a language folder name; use codes such as \"en\", \"ru\", \"en_GB\""
        ));
    }
    let Seconds(warn_before_s) = raw.warn_before;
    if warn_before_s > 3600 {
        return Err(format!(
            "dialplan.warn_before = {warn_before_s}s is more than an hour; use e.g. \"1m\", or 0 for no warning"
        ));
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
        warn_before: Duration::from_secs(warn_before_s),
        warn_sound: raw.warn_sound,
        announce_below: Duration::from_secs(announce_below_s),
        balance_code: raw.balance_code,
        no_limit_sound: raw.no_limit_sound,
        languages: raw.languages,
        cap_calls: raw.cap_calls,
        live: raw.live && raw.cap_calls,
        untracked,
        define_hook: raw.define_hook,
        reload_timeout: Duration::from_secs(reload_timeout_s),
    })
}

/// A sound reaches the dialplan as a `Playback()` argument: only a plain
/// relative name (letters, digits, `_ - /`, no extension) may.
fn sound_name(key: &str, sound: Option<&str>) -> Result<(), String> {
    let Some(sound) = sound else {
        return Ok(());
    };
    let ok = (1..=100).contains(&sound.len())
        && !sound.contains("..")
        && !sound.starts_with('/')
        && sound
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key} {sound:?} is not a sound name; use letters, digits, _ - / without an extension, e.g. \"custom/limit-reached\""
        ))
    }
}
