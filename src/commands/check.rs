//! `check`: is this installation able to do its job? Prints one line per
//! check (`ok`, `warn` or `FAIL`) and fails if any check failed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Result, anyhow};

use super::context::Context;
use crate::adapters::asterisk::loaded_generation;
use crate::adapters::cdr::Cdr;
use crate::adapters::include_file;
use crate::adapters::state::State;
use crate::core::dialplan::generation_in;
use crate::values::text::escape_controls;

/// More than any `extensions_custom.conf` holds.
const CUSTOM_LIMIT: u64 = 16 * 1024 * 1024;

#[derive(Default)]
struct Report {
    failures: usize,
}

impl Report {
    // Lines carry outside text (CDR numbers, Asterisk's and servers' replies): escaped.
    fn ok(&mut self, what: impl AsRef<str>) {
        println!("ok    {}", escape_controls(what.as_ref()));
    }
    fn warn(&mut self, what: impl AsRef<str>) {
        println!("warn  {}", escape_controls(what.as_ref()));
    }
    fn fail(&mut self, what: impl AsRef<str>) {
        self.failures += 1;
        println!("FAIL  {}", escape_controls(what.as_ref()));
    }
}

pub fn check(ctx: &Context) -> Result<()> {
    let config = &ctx.config;
    let mut r = Report::default();
    r.ok(format!(
        "config {} (time zone {})",
        config.path.display(),
        config.timezone
    ));
    check_file_modes(ctx, &mut r);

    match State::open(&config.state_db).and_then(|s| Ok(s.users()?.iter().filter(|u| u.active).count())) {
        Ok(n) => r.ok(format!("state {} ({n} active users)", config.state_db.display())),
        Err(e) => r.fail(format!("state: {e:#}")),
    }

    match Cdr::connect(&config.cdr) {
        Ok(mut cdr) => {
            r.ok(format!(
                "CDR database {} reachable, session read-only",
                config.cdr.connection.describe()
            ));
            match cdr.check_columns() {
                Ok(()) => r.ok(format!(
                    "CDR table {} has the columns callquota reads",
                    config.cdr.table
                )),
                Err(e) => r.fail(format!("{e:#}")),
            }
            if !cdr.has_call_ids() {
                r.warn(format!(
                    "CDR table {} has no linkedid and sequence columns (Asterisk before 1.8): the carrier's rows after \
                     a transfer cannot be tied to the call, nor a leg's segments told from copies",
                    config.cdr.table
                ));
            }
            check_numbers_agree(ctx, &mut cdr, &mut r);
            match cdr.write_privileges() {
                Ok(grants) if grants.is_empty() => r.ok("the CDR account can only read"),
                Ok(_) => r.warn(
                    "the CDR account may write; use an account with GRANT SELECT ON asteriskcdrdb.cdr only (see README)",
                ),
                Err(e) => r.warn(format!("cannot list the CDR account's grants: {e:#}")),
            }
        }
        Err(e) => r.fail(format!("{e:#}")),
    }

    if let Some(freepbx) = &config.freepbx {
        // Only `user import --freepbx` needs it: a problem there is a warning.
        match crate::adapters::freepbx::candidates(freepbx) {
            Ok(extensions) => r.ok(format!(
                "FreePBX database {} reachable ({} extensions for user import --freepbx)",
                freepbx.connection.describe(),
                extensions.len()
            )),
            Err(e) => r.warn(format!("{e:#}")),
        }
    }

    check_freshness(ctx, &mut r);
    let cli_runs = check_commands(ctx, &mut r);
    check_include(ctx, cli_runs, &mut r);
    match &config.mail {
        None => r.ok("mail is off (no [mail] section): notices wait in the outbox"),
        Some(settings) => match crate::adapters::mailer::Mailer::new(settings).and_then(|m| m.check()) {
            Ok(what) => r.ok(format!("mail: {what}")),
            Err(e) => r.fail(format!("mail: {e:#}")),
        },
    }

    if r.failures > 0 {
        return Err(anyhow!("{} check(s) failed", r.failures));
    }
    Ok(())
}

fn check_file_modes(ctx: &Context, r: &mut Report) {
    let mode = |p: &Path| std::fs::metadata(p).ok().map(|m| m.permissions().mode() & 0o777);
    for (what, path) in secret_files(&ctx.config) {
        if mode(&path).is_some_and(|m| m & 0o004 != 0) {
            r.warn(format!(
                "{what} {} is readable by every user and holds a password; chmod 640 it",
                path.display()
            ));
        }
    }
    for path in [&ctx.config.state_db, &ctx.config.lock_file] {
        if mode(path).is_some_and(|m| m & 0o002 != 0) {
            r.warn(format!("{} is writable by every user; chmod o-w it", path.display()));
        }
    }
}

/// The hook matches the number a route sends to the trunk, the CDR keeps
/// the number as dialled: over the last two days' calls, both must judge
/// paid/unpaid alike, or blocks and counted usage disagree.
fn check_numbers_agree(ctx: &Context, cdr: &mut Cdr, r: &mut Report) {
    let clock = ctx.config.cdr_clock();
    let today = ctx.today();
    let from = clock.window(crate::core::calendar::previous_day(today)).0;
    let until = clock.window(today).1;
    let rule = ctx.config.usage_rule();
    let rows = match cdr.dialled(from, until, 20_000) {
        Ok(rows) => rows,
        Err(e) => return r.warn(format!("cannot compare the CDR with the dialplan: {e:#}")),
    };
    let differ: Vec<_> = rows
        .iter()
        .filter_map(|(dst, lastdata)| crate::core::usage::disagreement(&rule, dst, lastdata))
        .collect();
    let Some((dst, sent, by_cdr)) = differ.first() else {
        return r.ok(format!(
            "the CDR and the pre-dial hook judge the last two days' {} calls alike",
            rows.len()
        ));
    };
    // A route that strips digits leaves them in front of the dialled number.
    let hint = match dst.strip_suffix(sent.as_str()).filter(|p| !p.is_empty()) {
        Some(prefix) if !by_cdr => format!("set [cdr] route_prefixes = [\"{prefix}\"] (the digits your routes strip)"),
        _ => "write [[direction]] patterns that match the number as dialled and as sent to the trunk".to_string(),
    };
    r.warn(format!(
        "{} of the last two days' {} calls were judged differently by the CDR and the pre-dial hook, e.g. dialled \
         {dst} ({} by the CDR) was sent to the trunk as {sent} ({} by the hook): {hint}",
        differ.len(),
        rows.len(),
        if *by_cdr { "paid" } else { "not paid" },
        if *by_cdr { "not paid" } else { "paid" },
    ));
}

/// Runs must keep succeeding: stale figures mean enforcement is stuck.
fn check_freshness(ctx: &Context, r: &mut Report) {
    let last = State::open(&ctx.config.state_db).and_then(|s| ctx.last_run_at(&s));
    match last {
        Ok(None) => r.warn("no run has succeeded yet: run `sudo -u callquota callquota run` once"),
        Ok(Some(at)) if crate::core::policy::is_stale(Some(at), ctx.now) => r.fail(format!(
            "the last successful run was at {} ({} minutes ago): cron runs are failing; run `sudo -u callquota \
             callquota run --verbose` to see why",
            at.with_timezone(&ctx.config.timezone).format("%Y-%m-%d %H:%M"),
            (ctx.now - at).num_minutes()
        )),
        Ok(Some(at)) => r.ok(format!(
            "the last successful run was {} minutes ago",
            (ctx.now - at).num_minutes().max(0)
        )),
        Err(_) => {} // the state line above already failed
    }
}

/// Every prompt the generated dialplan may play (the refusal, the warning,
/// the heads-up) is in Asterisk's sounds folder, for Asterisk's default
/// language and each of `dialplan.languages`: a missing one is silence where
/// the caller should hear why.
fn check_sounds(ctx: &Context, r: &mut Report) {
    let settings = &ctx.config.dialplan;
    let options = settings.options(ctx.config.timezone.name());
    let (sounds, default_language) = match crate::adapters::asterisk::sound_settings(settings) {
        Ok(found) => found,
        Err(e) => {
            r.warn(format!("cannot tell where Asterisk keeps its sounds: {e:#}"));
            return;
        }
    };
    let mut languages = vec![default_language];
    for language in &settings.languages {
        if !languages.contains(language) {
            languages.push(language.clone());
        }
    }
    let played = crate::core::dialplan::sounds_played(&options);
    let mut missing = Vec::new();
    let mut fallback = Vec::new();
    for language in &languages {
        for name in &played {
            match crate::adapters::asterisk::sound_exists(&sounds, language, name) {
                Ok(Some(true)) => {}
                Ok(Some(false)) => fallback.push(format!("{language}/{name}")),
                Ok(None) => missing.push(format!("{language}/{name}")),
                Err(e) => {
                    r.warn(format!(
                        "cannot look for the prompts callers hear: {}; run check as root to see them",
                        crate::values::text::escape_controls(&e.to_string())
                    ));
                    return;
                }
            }
        }
    }
    let shown = |list: &[String]| crate::values::text::escape_controls(&list.join(", ")).into_owned();
    if !missing.is_empty() {
        r.fail(format!(
            "callers would hear silence: {} not in {} (any format); install those sounds (FreePBX: Admin > Sound \
             Languages; your own recordings under custom/) or fix dialplan.deny_sound / warn_sound",
            shown(&missing),
            sounds.display()
        ));
    } else if !fallback.is_empty() {
        r.warn(format!(
            "{} only in the language-less folder {}: callers of those languages hear that version",
            shown(&fallback),
            sounds.display()
        ));
    } else {
        r.ok(format!(
            "the prompts callers hear are installed ({})",
            languages.join(", ")
        ));
    }
}

/// The balance code is reachable only once the site includes our context
/// into `from-internal` (through `from-internal-custom`).
fn check_balance_code(settings: &crate::config::DialplanSettings, code: &str, r: &mut Report) {
    let ours = settings
        .include_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match crate::adapters::asterisk::code_sources(settings, code, "from-internal") {
        Ok(sources) if sources.first() == Some(&ours) => {
            r.ok(format!("the balance code {code} is reachable from from-internal"))
        }
        Ok(sources) if sources.is_empty() => r.warn(format!(
            "dialplan.balance_code {code} is not reachable from from-internal: add `include => callquota-balance` \
             under [from-internal-custom] in extensions_custom.conf"
        )),
        Ok(sources) => r.warn(format!(
            "{code} dialled from from-internal reaches {} before {ours}: pick another dialplan.balance_code or \
             remove that feature code",
            sources[0]
        )),
        Err(e) => r.warn(format!("cannot tell whether the balance code is reachable: {e:#}")),
    }
}

fn flavor_name(flavor: crate::config::Flavor) -> &'static str {
    match flavor {
        crate::config::Flavor::FreePbx16 => "freepbx16",
        crate::config::Flavor::FreePbx17 => "freepbx17",
        crate::config::Flavor::Plain => "plain",
    }
}

/// Every file that holds a secret: the config and the password files.
fn secret_files(config: &crate::config::Config) -> Vec<(&'static str, std::path::PathBuf)> {
    let mut files = vec![("config", config.path.clone())];
    files.extend(config.cdr.password_file.clone().map(|p| ("cdr.password_file", p)));
    if let Some(crate::config::MailSettings {
        transport: crate::config::MailTransport::Smtp(smtp),
        ..
    }) = &config.mail
    {
        files.extend(smtp.password_file.clone().map(|p| ("smtp.password_file", p)));
    }
    files
}

/// What `check` confirms through `asterisk_cli`, for the line that says
/// they are off.
fn cli_confirmations(settings: &crate::config::DialplanSettings) -> String {
    let mut list = vec!["that Asterisk loaded the include file (here and after each run's reload)"];
    let freepbx = settings.flavor != crate::config::Flavor::Plain;
    if freepbx {
        list.push("dialplan.flavor");
        if settings.define_hook {
            list.push("that the live pre-dial hook is callquota's");
        }
    }
    if settings.live {
        list.push("the live guard's modules");
    }
    list.push("the prompts callers hear");
    if freepbx && settings.live {
        list.push("FreePBX's trunk Dial options");
    }
    if freepbx && settings.balance_code.is_some() {
        list.push("the balance code");
    }
    list.join(", ")
}

fn check_include(ctx: &Context, cli_runs: bool, r: &mut Report) {
    let settings = &ctx.config.dialplan;
    let path = &settings.include_file;
    // Replacing the file means creating a temp file beside it and renaming it.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let writable = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        // SAFETY: a NUL-terminated path; access(2) has no other preconditions.
        .is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0);
    let user = crate::adapters::privileges::current_user_name();
    if writable {
        r.ok(format!("{user} can replace files in {}", dir.display()));
    } else if !dir.exists() {
        r.fail(format!(
            "the folder {} of dialplan.include_file does not exist; create it (on FreePBX it is /etc/asterisk) or set \
             dialplan.include_file",
            dir.display()
        ));
    } else {
        r.fail(format!(
            "{user} cannot write {}, so the include file cannot be replaced; make the directory writable for a \
             group {user} is in (on FreePBX: adduser {user} asterisk, /etc/asterisk is 0775 asterisk:asterisk)",
            dir.display()
        ));
    }
    let on_disk = match include_file::read(path) {
        Ok(Some(text)) if !include_file::is_ours(&text) => {
            r.fail(format!(
                "include file {} was not generated by callquota; point include_file at a file of its own, e.g. \
                 /etc/asterisk/callquota.conf",
                path.display()
            ));
            None
        }
        Ok(Some(text)) => {
            match include_file::readable_by_others(path) {
                Ok(Some((false, mode))) => r.fail(format!(
                    "include file {} is mode {mode:04o}: Asterisk (another user) cannot read it, so #tryinclude \
                     drops it and no limit applies; run `sudo -u callquota callquota run`, which rewrites it 0644",
                    path.display()
                )),
                Ok(_) => {}
                Err(e) => r.fail(format!("{e:#}")),
            }
            generation_in(&text)
        }
        Ok(None) => {
            r.warn(format!(
                "include file {} does not exist yet; `callquota run` writes it",
                path.display()
            ));
            None
        }
        Err(e) => {
            r.fail(format!("{e:#}"));
            None
        }
    };
    let custom = path.parent().unwrap_or(Path::new("/")).join("extensions_custom.conf");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Bounded, regular files only: a FIFO there cannot hang check, nor a link to /dev/zero eat the memory.
    let custom_text = match crate::config::read_bounded(&custom, CUSTOM_LIMIT) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            r.warn(format!("cannot read {}: {e}", custom.display()));
            None
        }
    };
    let wiring = custom_text.and_then(|text| {
        text.lines()
            .map(str::trim_start)
            .find(|l| l.starts_with('#') && l.contains("include") && l.contains(&name))
            .map(str::to_string)
    });
    if wiring.as_deref().is_some_and(|l| l.starts_with("#include")) {
        r.warn(format!(
            "{} wires {name} with #include: should the file ever be missing, Asterisk loads no dialplan at all at \
             its next start; write #tryinclude {name} instead",
            custom.display()
        ));
    }
    if settings.asterisk_cli.is_empty() || !cli_runs {
        if wiring.is_some() {
            r.ok(format!("{} includes {name}", custom.display()));
        } else {
            r.warn(format!(
                "cannot confirm the include file is wired in without the Asterisk CLI; add `#tryinclude {}` to \
                 extensions_custom.conf",
                path.display()
            ));
        }
        r.warn(format!(
            "not confirmed {}: {}",
            if settings.asterisk_cli.is_empty() {
                "(asterisk_cli = [])"
            } else {
                "(asterisk_cli cannot be run here, above)"
            },
            cli_confirmations(settings)
        ));
        if settings.live && settings.asterisk_cli.is_empty() {
            r.warn(
                "the live guard is on but asterisk_cli = []: nothing deletes its AstDB counters of past days and \
                 status shows no live figures; set asterisk_cli = [\"/usr/sbin/asterisk\", \"-rx\"] or live = false",
            );
        }
        return;
    }
    // The first CLI query: when Asterisk does not answer, one line says so
    // instead of one per confirmation.
    match loaded_generation(settings) {
        Ok(Some(loaded)) if Some(loaded) == on_disk => {
            r.ok(format!("Asterisk has generation {loaded} of {} loaded", path.display()))
        }
        Ok(Some(loaded)) => r.fail(format!(
            "Asterisk has generation {loaded} loaded but the file has {}; run `callquota run` to reload",
            on_disk.map_or("none".into(), |g| g.to_string())
        )),
        Ok(None) => r.fail(format!(
            "Asterisk has no callquota dialplan loaded; add `#tryinclude {}` to extensions_custom.conf and reload",
            path.display()
        )),
        Err(e) => {
            r.fail(format!("{e:#}"));
            r.warn(format!(
                "not confirmed while Asterisk does not answer: {}",
                cli_confirmations(settings)
            ));
            return;
        }
    }
    check_sounds(ctx, r);
    if settings.live {
        match crate::adapters::asterisk::missing_modules(settings, &crate::adapters::asterisk::LIVE_MODULES) {
            Ok(missing) if missing.is_empty() => r.ok("the live guard's modules are loaded (func_lock, func_db, func_channel, func_groupcount, func_global)"),
            Ok(missing) => r.fail(format!(
                "the live guard needs {} loaded: load them (module load NAME, and in modules.conf) or set dialplan.live = false",
                missing.join(", ")
            )),
            Err(e) => r.fail(format!("{e:#}")),
        }
    }
    if settings.flavor != crate::config::Flavor::Plain {
        // A hook ending with Return() entered by Macro kills every outbound call, and vice versa.
        match crate::adapters::asterisk::live_flavor(settings) {
            Ok(Some(live)) if live != settings.flavor => r.fail(format!(
                "dialplan.flavor is {} but FreePBX's trunk macro enters the pre-dial hook with {}: set flavor = \"{}\" \
                 before the next run, or every outbound call fails",
                flavor_name(settings.flavor),
                if live == crate::config::Flavor::FreePbx16 {
                    "Macro (FreePBX 16)"
                } else {
                    "Gosub (FreePBX 17)"
                },
                flavor_name(live)
            )),
            Ok(Some(_)) => r.ok(format!(
                "dialplan.flavor {} matches the live trunk macro",
                flavor_name(settings.flavor)
            )),
            Ok(None) => r.warn("no FreePBX [macro-dialout-trunk] is loaded; cannot confirm dialplan.flavor"),
            Err(e) => r.fail(format!("{e:#}")),
        }
        let own_u = settings.live && crate::adapters::asterisk::trunk_dial_has_own_u(settings).unwrap_or(false);
        if own_u && !settings.warn_before.is_zero() {
            r.fail(
                "FreePBX's trunk Dial carries its own U() (an outbound route's email notification): Dial keeps only \
                 that one, and with dialplan.warn_before a transferred paid call then has no cap on those routes \
                 (with a warning, L() ends with the bridge); set warn_before = 0 or turn the route's email \
                 notification off",
            );
        } else if own_u {
            r.warn(
                "FreePBX's trunk Dial carries its own U() (an outbound route's email notification): Dial keeps only \
                 that one, so on those routes a transferred paid call is settled when the caller hangs up, not when \
                 the carrier does; turn the route's email notification off to keep transfers counted",
            );
        }
        if let Some(code) = settings.balance_code.as_deref() {
            check_balance_code(settings, code, r);
        }
        if !settings.define_hook {
            r.ok("define_hook = false: your own pre-dial hook must call Gosub(callquota-predial,s,1)");
        } else {
            match crate::adapters::asterisk::confirm_hook_is_ours(settings) {
                Ok(()) => r.ok("the live pre-dial hook is callquota's"),
                Err(e) => r.fail(format!("{e:#}")),
            }
        }
    }
}

/// Each configured command must be runnable the way the cron job runs it:
/// as this user (a root `check` has become the service user) with cron's
/// PATH. One line per program (the two keys usually name the same one).
/// Returns whether `asterisk_cli` can run.
fn check_commands(ctx: &Context, r: &mut Report) -> bool {
    let settings = &ctx.config.dialplan;
    let cron_file = Path::new(crate::adapters::asterisk::CRON_FILE);
    let path = crate::adapters::asterisk::cron_path(cron_file);
    let source = if cron_file.exists() {
        format!("the PATH of {}", cron_file.display())
    } else {
        "cron's default PATH".to_string()
    };
    let mut programs: Vec<(&str, Vec<&str>)> = Vec::new();
    for (key, argv) in [
        ("dialplan.reload_command", &settings.reload_command),
        ("dialplan.asterisk_cli", &settings.asterisk_cli),
    ] {
        let Some(program) = argv.first() else { continue };
        match programs.iter_mut().find(|(p, _)| p == program) {
            Some((_, keys)) => keys.push(key),
            None => programs.push((program, vec![key])),
        }
    }
    let mut cli_runs = false;
    for (program, keys) in programs {
        let label = keys.join(" and ");
        let runs = match crate::adapters::asterisk::resolve(program, &path) {
            Some(found) => {
                r.ok(format!("{label}: `{program}` runs under cron ({})", found.display()));
                true
            }
            None if program.contains('/')
                && std::fs::symlink_metadata(program).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
            {
                let whose = if Path::new(program).file_name().is_some_and(|n| n == "asterisk") {
                    "Asterisk is not installed on this host, or lives elsewhere (`command -v asterisk` as root finds it)"
                } else {
                    "nothing is installed there"
                };
                r.fail(format!(
                    "{label} `{program}`: no such file; {whose}: set {label} to its path"
                ));
                false
            }
            None if program.contains('/') => {
                r.fail(format!(
                    "{label} `{program}` is not a program {} may run; make it executable for that user, or point \
                     {label} at Asterisk's binary",
                    crate::adapters::privileges::current_user_name()
                ));
                false
            }
            None => {
                let elsewhere = std::env::var("PATH")
                    .ok()
                    .and_then(|p| crate::adapters::asterisk::resolve(program, &p));
                let fix = match (&elsewhere, program) {
                    (Some(found), _) => format!("give the absolute path, {}", found.display()),
                    (None, "asterisk") => format!("give the absolute path, e.g. {}", crate::config::ASTERISK),
                    (None, _) => "give its absolute path".to_string(),
                };
                // It still answers this check when this shell finds it.
                let here = elsewhere.is_some();
                r.fail(format!(
                    "{label} `{program}` cannot be run by cron ({source} is {path}){}: every cron run would fail; {fix}",
                    elsewhere.map_or(String::new(), |p| format!(" (it is at {})", p.display())),
                ));
                here
            }
        };
        cli_runs |= runs && keys.contains(&"dialplan.asterisk_cli");
    }
    // A reload that is not Asterisk's own is only as good as its confirmation.
    let is_asterisk = settings
        .reload_command
        .iter()
        .any(|a| Path::new(a).file_name().is_some_and(|n| n == "asterisk"));
    if !is_asterisk {
        let shown = settings.reload_command.join(" ");
        if settings.asterisk_cli.is_empty() {
            r.warn(format!(
                "dialplan.reload_command `{shown}` is not Asterisk's CLI and asterisk_cli = []: nothing confirms that \
                 it reloads the dialplan, and a run whose reload does nothing still succeeds; set asterisk_cli = \
                 [\"{}\", \"-rx\"]",
                crate::config::ASTERISK
            ));
        } else {
            r.ok(format!(
                "dialplan.reload_command `{shown}` is not Asterisk's CLI: each run confirms through \
                 dialplan.asterisk_cli that it loaded the new generation"
            ));
        }
    }
    cli_runs
}
