//! Golden files for the rendered include file, one per flavor. Regenerate
//! after an intended change with `UPDATE_GOLDEN=1 cargo test --test golden`
//! and review the diff: these bytes are what Asterisk loads.

use std::path::{Path, PathBuf};

use callquota::config::Config;
use callquota::core::dialplan::{Days, render};
use callquota::core::policy::Access;
use callquota::values::extension::Extension;

fn config(dialplan_extra: &str, flavor: &str) -> Config {
    let text = format!(
        r#"timezone = "Asia/Almaty"
state_db = "/var/lib/callquota/state.db"
[cdr]
url = "mysql://callquota:secret@127.0.0.1/asteriskcdrdb"
[[direction]]
name = "kcell"
patterns = ["_870[5780-2]XXXXXXX", "_8747XXXXXXX"]
[[direction]]
name = "beeline"
patterns = ["_877[15-8]XXXXXXX", "_8747XXXXXXX", "87172000000"]
[dialplan]
include_file = "/etc/asterisk/callquota.conf"
flavor = "{flavor}"
{dialplan_extra}
"#
    );
    Config::parse(&text, Path::new("golden.toml")).expect("golden config")
}

fn day() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 26).expect("day")
}

fn access() -> Vec<(Extension, Access)> {
    let e = |s: &str| Extension::parse(s).expect("extension");
    vec![
        (e("2077"), Access::Deny),
        (
            e("2055"),
            Access::Allow {
                remaining_ms: 1_800_000,
                allowance_ms: 1_800_000,
                used_ms: 0,
            },
        ),
        (
            e("2066"),
            Access::Allow {
                remaining_ms: 1000,
                allowance_ms: 600_000,
                used_ms: 599_000,
            },
        ),
    ]
}

/// Tomorrow (a Friday): 2055 and 2066 get their base allowance, 2077 has none.
fn tomorrow() -> Vec<(Extension, Access)> {
    let e = |s: &str| Extension::parse(s).expect("extension");
    let base = |ms| Access::Allow {
        remaining_ms: ms,
        allowance_ms: ms,
        used_ms: 0,
    };
    vec![
        (e("2055"), base(1_800_000)),
        (e("2066"), base(600_000)),
        (e("2077"), Access::Deny),
    ]
}

/// The golden day's file for `config`.
fn rendered(config: &Config, generation: u64) -> String {
    let (today, tomorrow) = (access(), tomorrow());
    let days = Days {
        directions: &[],
        day: day(),
        today: &today,
        tomorrow: &tomorrow,
    };
    render(
        &config.dialplan.options(config.timezone.name()),
        &config.paid,
        &days,
        generation,
    )
}

fn check(name: &str, config: &Config) {
    let text = rendered(config, 42);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        text, want,
        "{name} differs from its golden file; see the module doc to update it"
    );
}

#[test]
fn freepbx17() {
    check(
        "freepbx17.conf",
        &config("deny_sound = \"custom/limit-reached\"", "freepbx17"),
    );
}

#[test]
fn freepbx16() {
    check(
        "freepbx16.conf",
        &config("deny_sound = \"custom/limit-reached\"", "freepbx16"),
    );
}

#[test]
fn freepbx17_own_hook_untracked_deny_no_cap() {
    check(
        "freepbx17-own-hook.conf",
        &config(
            "define_hook = false\nuntracked = \"deny\"\ncap_calls = false",
            "freepbx17",
        ),
    );
}

#[test]
fn freepbx17_without_the_live_guard() {
    check(
        "freepbx17-no-live.conf",
        &config(
            "deny_sound = \"custom/limit-reached\"\nlive = false\nwarn_before = 0",
            "freepbx17",
        ),
    );
}

/// No deny_sound: the refusal says why with Asterisk's own prompts; the
/// warning plays the admin's sound 30 s before the cut; a heads-up before
/// the dial under 5 minutes left.
#[test]
fn freepbx17_spoken_refusal_and_own_warning() {
    check(
        "freepbx17-spoken.conf",
        &config(
            "warn_before = \"30s\"\nwarn_sound = \"custom/half-a-minute-left\"\nannounce_below = \"5m\"",
            "freepbx17",
        ),
    );
}

#[test]
fn plain() {
    check("plain.conf", &config("", "plain"));
}

#[test]
fn every_context_header_is_closed_and_every_line_is_known() {
    // An unclosed '[' silently truncates the file in Asterisk; a stray line is skipped.
    for flavor in ["freepbx16", "freepbx17", "plain"] {
        let c = config("deny_sound = \"custom/x\"", flavor);
        let text = rendered(&c, 1);
        for line in text.lines() {
            let ok = line.is_empty()
                || line.starts_with(';')
                || (line.starts_with('[') && line.ends_with(']') && line.matches('[').count() == 1)
                || line.starts_with("exten => ")
                || line.starts_with(" same => n");
            assert!(ok, "{flavor}: unexpected line {line:?}");
        }
    }
}

#[test]
fn freepbx16_hook_never_returns() {
    let c = config("", "freepbx16");
    let text = rendered(&c, 1);
    let hook = text.split("[macro-dialout-trunk-predial-hook]").nth(1).expect("hook");
    assert!(hook.contains("MacroExit()") && !hook.contains("Return()"), "{hook}");
}
