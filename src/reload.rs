//! Runs the dialplan reload command and reads the loaded generation stamp
//! back through the Asterisk CLI, each with a timeout.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use crate::config::{DialplanSettings, Flavor};
use crate::dialplan::{generation_in, stamp_query};

/// Output of a finished command.
struct Finished {
    success: bool,
    status: String,
    output: String,
}

/// The cron file the package installs; its `PATH=` line is the PATH runs get.
pub const CRON_FILE: &str = "/etc/cron.d/callquota";
/// cron's own PATH when a crontab sets none.
pub const CRON_DEFAULT_PATH: &str = "/usr/bin:/bin";
/// Where FreePBX and source installs put Asterisk.
pub const ASTERISK: &str = "/usr/sbin/asterisk";

/// The PATH a cron run gets: the `PATH=` line of `cron_file`, else cron's default.
pub fn cron_path(cron_file: &std::path::Path) -> String {
    std::fs::read_to_string(cron_file)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix("PATH=").map(|p| p.trim().to_string()))
        })
        .unwrap_or_else(|| CRON_DEFAULT_PATH.to_string())
}

/// Where `program` is found with `path` (as `execvp` would), if this user may run it.
pub fn resolve(program: &str, path: &str) -> Option<std::path::PathBuf> {
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file())
            && std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
                // SAFETY: a NUL-terminated path; access(2) has no other preconditions.
                .is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0)
    };
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return runnable(&p).then_some(p);
    }
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|p| runnable(p))
}

fn run_with_timeout(argv: &[String], timeout: Duration) -> Result<Finished> {
    let shown = argv.join(" ");
    let (program, args) = argv.split_first().ok_or_else(|| anyhow!("empty command"))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            let hint = if program.contains('/') {
                "check the command".to_string()
            } else {
                let path = std::env::var("PATH").unwrap_or_default();
                format!("`{program}` is not on this PATH ({path}); give its absolute path, e.g. {ASTERISK}")
            };
            anyhow!("cannot run `{shown}`: {e}; {hint}")
        })?;
    // Drain both pipes on threads so a chatty command cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let mut bytes = Vec::new();
                let _ = p.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{shown}` did not finish within {}s; is Asterisk hung?",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = format!("{}{}", out.join().unwrap_or_default(), err.join().unwrap_or_default());
    Ok(Finished {
        success: status.success(),
        status: status.to_string(),
        output,
    })
}

fn summary(output: &str) -> String {
    let joined = output.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.chars().take(200).collect()
}

/// Reloads the dialplan; when `asterisk_cli` is set, confirms that
/// `generation` is the one now loaded. Returns a one-line summary.
pub fn reload_and_confirm(settings: &DialplanSettings, generation: u64) -> Result<String> {
    let shown = settings.reload_command.join(" ");
    let reload = run_with_timeout(&settings.reload_command, settings.reload_timeout)?;
    let lowered = reload.output.to_ascii_lowercase();
    if !reload.success || lowered.contains("fail") || lowered.contains("unable to connect") {
        let hint = if lowered.contains("unable to connect") {
            format!("; {}", cli_hint())
        } else {
            String::new()
        };
        bail!(
            "dialplan reload `{shown}` failed ({}): {}{hint}",
            reload.status,
            summary(&reload.output)
        );
    }
    if settings.asterisk_cli.is_empty() {
        return Ok(format!(
            "generation {generation} reloaded, not confirmed (asterisk_cli = [])"
        ));
    }
    let loaded = loaded_generation(settings)?;
    if loaded != Some(generation) {
        bail!(
            "dialplan reload did not take effect: Asterisk has generation {} loaded, the file has {generation}; is the include file wired into extensions_custom.conf?",
            loaded.map_or("none".to_string(), |g| g.to_string())
        );
    }
    Ok(format!("generation {generation} reloaded and confirmed live"))
}

/// The output of one Asterisk CLI command (`asterisk -rx COMMAND`).
fn asterisk_cli(settings: &DialplanSettings, command: &str) -> Result<String> {
    let mut argv = settings.asterisk_cli.clone();
    argv.push(command.to_string());
    let answer = run_with_timeout(&argv, settings.reload_timeout)?;
    if !answer.success {
        bail!(
            "`{}` failed ({}): {}; {}",
            argv.join(" "),
            answer.status,
            summary(&answer.output),
            cli_hint()
        );
    }
    Ok(answer.output)
}

/// What to check when the Asterisk CLI cannot be reached: it runs, and this
/// user may use its control socket (root or the asterisk group).
fn cli_hint() -> String {
    let user = crate::privileges::current_user_name();
    format!(
        "is Asterisk running, and may {user} use its control socket (/var/run/asterisk/asterisk.ctl)? It \
         needs the asterisk group: adduser {user} asterisk"
    )
}

/// The generation Asterisk has loaded, through `asterisk_cli`.
pub fn loaded_generation(settings: &DialplanSettings) -> Result<Option<u64>> {
    Ok(generation_in(&asterisk_cli(settings, &stamp_query())?))
}

/// The files that the live `[macro-dialout-trunk-predial-hook]` was loaded
/// from, as `dialplan show` names them (`[callquota.conf:52]`); empty when no
/// such context is loaded.
pub fn hook_sources(settings: &DialplanSettings) -> Result<Vec<String>> {
    let output = asterisk_cli(settings, &format!("dialplan show {}", crate::dialplan::HOOK_CONTEXT))?;
    Ok(sources_in(&output))
}

fn sources_in(output: &str) -> Vec<String> {
    let mut files: Vec<String> = output
        .lines()
        .filter_map(|line| {
            let tag = line.trim_end().strip_suffix(']')?;
            let (file, number) = tag[tag.rfind('[')? + 1..].rsplit_once(':')?;
            number.bytes().all(|b| b.is_ascii_digit()).then(|| file.to_string())
        })
        .collect();
    files.dedup();
    files
}

/// Fails unless the live pre-dial hook starts with ours. With two definitions
/// Asterisk keeps the first file's priorities and merges in only the other's
/// priorities that do not clash (with a log warning), so the live hook can
/// list both files: what runs is whichever file priority 1 came from.
pub fn confirm_hook_is_ours(settings: &DialplanSettings) -> Result<()> {
    let ours = settings
        .include_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sources = hook_sources(settings)?;
    if sources.is_empty() {
        bail!(
            "no [{}] is loaded; is the include file wired into extensions_custom.conf?",
            crate::dialplan::HOOK_CONTEXT
        );
    }
    if sources.first() != Some(&ours) {
        bail!(
            "the live [{}] comes from {}, not {ours}, so calls are not checked; set dialplan.define_hook = false and add `same => n,Gosub(callquota-predial,s,1)` to that hook",
            crate::dialplan::HOOK_CONTEXT,
            sources.first().map_or("another file", String::as_str)
        );
    }
    Ok(())
}

/// The modules the live guard's dialplan needs: LOCK/UNLOCK, DB, the hangup
/// handler (CHANNEL), GROUP/GROUP_COUNT.
pub const LIVE_MODULES: [&str; 4] = ["func_lock.so", "func_db.so", "func_channel.so", "func_groupcount.so"];

/// The modules of `names` that Asterisk does not have running.
pub fn missing_modules(settings: &DialplanSettings, names: &[&str]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for name in names {
        let output = asterisk_cli(settings, &format!("module show like {name}"))?;
        if !output.lines().any(|l| l.starts_with(name) && l.contains("Running")) {
            missing.push((*name).to_string());
        }
    }
    Ok(missing)
}

/// The live guard's counters and the users with a call in progress, as
/// Asterisk answers `database show callquota` and `group show channels`.
pub fn live_figures(settings: &DialplanSettings) -> Result<(String, String)> {
    let counters = asterisk_cli(settings, &format!("database show {}", crate::dialplan::LIVE_FAMILY))?;
    let groups = asterisk_cli(settings, "group show channels")?;
    Ok((counters, groups))
}

/// Deletes the live guard's AstDB counters of the days before `keep_from`
/// (`database deltree callquota YYYYMMDD`): the CDR has the final say on
/// days that are over. The day before the open one is kept, because its
/// calls still in progress hold reservations the check counts. Returns the
/// days deleted.
pub fn forget_live_days_before(
    settings: &DialplanSettings,
    keep_from: chrono::NaiveDate,
) -> Result<Vec<chrono::NaiveDate>> {
    let output = asterisk_cli(settings, &format!("database show {}", crate::dialplan::LIVE_FAMILY))?;
    let old: Vec<chrono::NaiveDate> = crate::live::days_in(&output)
        .into_iter()
        .filter(|day| *day < keep_from)
        .collect();
    for day in &old {
        asterisk_cli(
            settings,
            &format!(
                "database deltree {} {}",
                crate::dialplan::LIVE_FAMILY,
                day.format("%Y%m%d")
            ),
        )?;
    }
    Ok(old)
}

/// How FreePBX's trunk macro enters the pre-dial hook, read from the live
/// `[macro-dialout-trunk]`: `Macro(dialout-trunk-predial-hook...)` is
/// FreePBX 16, `Gosub(macro-dialout-trunk-predial-hook...)` FreePBX 17.
/// `None` when that context is not loaded (plain Asterisk) or says neither.
pub fn live_flavor(settings: &DialplanSettings) -> Result<Option<Flavor>> {
    Ok(flavor_in(&asterisk_cli(settings, "dialplan show macro-dialout-trunk")?))
}

fn flavor_in(output: &str) -> Option<Flavor> {
    let lower = output.to_ascii_lowercase();
    if lower.contains("macro(dialout-trunk-predial-hook") {
        Some(Flavor::FreePbx16)
    } else if lower.contains("gosub(macro-dialout-trunk-predial-hook") {
        Some(Flavor::FreePbx17)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_flavor_from_the_trunk_macro() {
        let sixteen = "  's' => 5. Macro(dialout-trunk-predial-hook,)   [extensions_additional.conf:80]";
        let seventeen = "  's' => 5. Gosub(macro-dialout-trunk-predial-hook,s,1())   [extensions_additional.conf:80]";
        assert_eq!(flavor_in(sixteen), Some(Flavor::FreePbx16));
        assert_eq!(flavor_in(seventeen), Some(Flavor::FreePbx17));
        assert_eq!(
            flavor_in("There is no existence of 'macro-dialout-trunk' context"),
            None
        );
    }

    #[test]
    fn reads_the_files_a_context_came_from() {
        let output = "[ Context 'macro-dialout-trunk-predial-hook' created by 'pbx_config' ]\n  \
            's' =>            1. NoOp(x)                 [extensions_custom.conf:12]\n  \
            2. Gosub(y)    [extensions_custom.conf:13]\n\n-= 1 extension (2 priorities) in 1 context. =-\n";
        assert_eq!(sources_in(output), vec!["extensions_custom.conf"]);
        assert!(sources_in("There is no existence of 'macro-dialout-trunk-predial-hook' context").is_empty());
        // A site's hook loaded first: ours only adds the priorities that do not clash.
        let merged = "[ Context 'macro-dialout-trunk-predial-hook' created by 'pbx_config' ]\n  \
            's' =>            1. NoOp(CRM)                 [extensions_custom.conf:2]\n  \
            2. Return()    [extensions_custom.conf:3]\n  \
            3. Set(DIAL_TRUNK_OPTIONS=x)    [callquota.conf:52]\n";
        assert_eq!(sources_in(merged), vec!["extensions_custom.conf", "callquota.conf"]);
        assert_eq!(
            sources_in(merged).first().map(String::as_str),
            Some("extensions_custom.conf")
        );
    }
}
