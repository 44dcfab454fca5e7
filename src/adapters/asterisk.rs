//! Runs the dialplan reload command and reads the loaded generation stamp
//! back through the Asterisk CLI, each with a timeout.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use crate::config::{ASTERISK, DialplanSettings, Flavor};
use crate::core::dialplan::{generation_in, stamp_query};

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

/// The PATH a cron run gets: the `PATH=` line of `cron_file`, else cron's default.
pub fn cron_path(cron_file: &std::path::Path) -> String {
    crate::config::read_bounded(cron_file, 64 * 1024)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
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
            let is_asterisk = std::path::Path::new(program)
                .file_name()
                .is_some_and(|n| n == "asterisk");
            let hint = if program.contains('/') && e.kind() == std::io::ErrorKind::NotFound && is_asterisk {
                "no such file: Asterisk is not installed on this host or lives elsewhere; set dialplan.reload_command \
                 and dialplan.asterisk_cli to its path"
                    .to_string()
            } else if program.contains('/') && e.kind() == std::io::ErrorKind::NotFound {
                "no such file (or its interpreter is missing); check the command in [dialplan]".to_string()
            } else if program.contains('/') {
                "check the command".to_string()
            } else {
                let path = std::env::var("PATH").unwrap_or_default();
                format!("`{program}` is not on this PATH ({path}); give its absolute path, e.g. {ASTERISK}")
            };
            anyhow!("cannot run `{shown}`: {e}; {hint}")
        })?;
    // Drain both pipes on threads so a chatty command cannot block on a full
    // pipe; keep the first 8 MiB (the `asterisk` group controls how much the
    // CLI prints: AstDB, the dialplan), discard the rest.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let mut bytes = Vec::new();
                let _ = (&mut p).take(8 << 20).read_to_end(&mut bytes);
                let _ = std::io::copy(&mut p, &mut std::io::sink());
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
    let user = crate::adapters::privileges::current_user_name();
    format!(
        "is Asterisk running, and may {user} use its control socket (/var/run/asterisk/asterisk.ctl)? It \
         needs the asterisk group: adduser {user} asterisk"
    )
}

/// Whether `error` (from an `asterisk_cli` command) says that no Asterisk
/// is running: its CLI found no control socket to connect to.
pub fn is_not_running(error: &anyhow::Error) -> bool {
    format!("{error:#}")
        .to_ascii_lowercase()
        .contains("unable to connect to remote asterisk")
}

/// The generation Asterisk has loaded, through `asterisk_cli`.
pub fn loaded_generation(settings: &DialplanSettings) -> Result<Option<u64>> {
    Ok(generation_in(&asterisk_cli(settings, &stamp_query())?))
}

/// The files that the live `[macro-dialout-trunk-predial-hook]` was loaded
/// from, as `dialplan show` names them (`[callquota.conf:52]`); empty when no
/// such context is loaded.
pub fn hook_sources(settings: &DialplanSettings) -> Result<Vec<String>> {
    let output = asterisk_cli(
        settings,
        &format!("dialplan show {}", crate::core::dialplan::HOOK_CONTEXT),
    )?;
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

/// The files whose dialplan answers `code` dialled in `context`, in the
/// order `dialplan show` lists them (the first is what a phone reaches).
pub fn code_sources(settings: &DialplanSettings, code: &str, context: &str) -> Result<Vec<String>> {
    let output = asterisk_cli(settings, &format!("dialplan show {code}@{context}"))?;
    Ok(sources_in(&output))
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
            crate::core::dialplan::HOOK_CONTEXT
        );
    }
    if sources.first() != Some(&ours) {
        bail!(
            "the live [{}] comes from {}, not {ours}, so calls are not checked; set dialplan.define_hook = false and add `same => n,Gosub(callquota-predial,s,1)` to that hook",
            crate::core::dialplan::HOOK_CONTEXT,
            sources.first().map_or("another file", String::as_str)
        );
    }
    Ok(())
}

/// The modules the live guard's dialplan needs: LOCK/UNLOCK, DB, the hangup
/// handler (CHANNEL), GROUP/GROUP_COUNT.
pub const LIVE_MODULES: [&str; 5] = [
    "func_lock.so",
    "func_db.so",
    "func_channel.so",
    "func_groupcount.so",
    "func_global.so",
];

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

/// Where Asterisk looks for sounds and its default language, as `core show
/// settings` says ("Data directory:", "Default language:").
pub fn sound_settings(settings: &DialplanSettings) -> Result<(std::path::PathBuf, String)> {
    let output = asterisk_cli(settings, "core show settings")?;
    let field = |label: &str| {
        output
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(label).map(|v| v.trim().to_string()))
            .filter(|v| !v.is_empty())
    };
    let data = field("Data directory:")
        .ok_or_else(|| anyhow!("`core show settings` names no data directory; is this Asterisk?"))?;
    let language = field("Default language:").unwrap_or_else(|| "en".into());
    Ok((std::path::PathBuf::from(data).join("sounds"), language))
}

/// Whether Asterisk has `name` (any format) in `sounds` for `language`:
/// `sounds/LANG/NAME.*`, else the language-less `sounds/NAME.*` it falls back to.
/// `Some(false)` means only the fallback has it. A folder this user may not
/// read is an error, never taken for a missing sound.
pub fn sound_exists(sounds: &std::path::Path, language: &str, name: &str) -> std::io::Result<Option<bool>> {
    let has = |dir: &std::path::Path| -> std::io::Result<bool> {
        let path = dir.join(name);
        let (Some(folder), Some(stem)) = (path.parent(), path.file_name()) else {
            return Ok(false);
        };
        let stem = format!("{}.", stem.to_string_lossy());
        match std::fs::read_dir(folder) {
            Ok(entries) => Ok(entries.flatten().take(100_000).any(|e| {
                e.file_name().to_string_lossy().starts_with(&stem) && e.file_type().is_ok_and(|t| t.is_file())
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(std::io::Error::new(e.kind(), format!("{}: {e}", folder.display()))),
        }
    };
    Ok(if has(&sounds.join(language))? {
        Some(true)
    } else if has(sounds)? {
        Some(false)
    } else {
        None
    })
}

/// The live guard's counters and the users with a call in progress, as
/// Asterisk answers `database show callquota` and `group show channels`.
pub fn live_figures(settings: &DialplanSettings) -> Result<(String, String)> {
    let counters = asterisk_cli(
        settings,
        &format!("database show {}", crate::core::dialplan::LIVE_FAMILY),
    )?;
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
    let output = asterisk_cli(
        settings,
        &format!("database show {}", crate::core::dialplan::LIVE_FAMILY),
    )?;
    let old: Vec<chrono::NaiveDate> = crate::core::live::days_in(&output)
        .into_iter()
        .filter(|day| *day < keep_from)
        .collect();
    for day in &old {
        asterisk_cli(
            settings,
            &format!(
                "database deltree {} {}",
                crate::core::dialplan::LIVE_FAMILY,
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

/// Whether FreePBX's live `[macro-dialout-trunk]` puts a `U()` of its own
/// into the trunk `Dial` after `DIAL_TRUNK_OPTIONS` (an outbound route's
/// email notification): `Dial` keeps only the last `U()`, so on such routes
/// the carrier's channel does not settle the call (see `core::dialplan`).
pub fn trunk_dial_has_own_u(settings: &DialplanSettings) -> Result<bool> {
    Ok(own_u_in(&asterisk_cli(settings, "dialplan show macro-dialout-trunk")?))
}

fn own_u_in(output: &str) -> bool {
    output
        .lines()
        .any(|line| line.contains("Dial(") && line.contains("U(sub-send-obroute-email"))
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
    fn sees_a_trunk_dial_that_brings_its_own_u() {
        let with = "  'answered' =>  1. Dial(${DIAL_TRUNK}...,${DIAL_TRUNK_OPTIONS}U(sub-send-obroute-email^${OUTNUM})b(func-apply-sipheaders^s^1,(1)))  [extensions_additional.conf:12]";
        assert!(own_u_in(with));
        assert!(!own_u_in(
            "     5. Dial(${DSTRING},300,${DIAL_TRUNK_OPTIONS}b(func-apply-sipheaders^s^1,(1)))"
        ));
        assert!(!own_u_in(
            "[ Context 'sub-send-obroute-email' created by 'pbx_config' ]"
        ));
    }

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
