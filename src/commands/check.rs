//! `check`: is this installation able to do its job? Prints one line per
//! check (`ok`, `warn` or `FAIL`) and fails if any check failed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Result, anyhow};

use super::Context;
use crate::cdr::Cdr;
use crate::dialplan::generation_in;
use crate::include_file;
use crate::reload::loaded_generation;
use crate::state::State;

#[derive(Default)]
struct Report {
    failures: usize,
}

impl Report {
    fn ok(&mut self, what: impl AsRef<str>) {
        println!("ok    {}", what.as_ref());
    }
    fn warn(&mut self, what: impl AsRef<str>) {
        println!("warn  {}", what.as_ref());
    }
    fn fail(&mut self, what: impl AsRef<str>) {
        self.failures += 1;
        println!("FAIL  {}", what.as_ref());
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
                config.cdr.redacted_url()
            ));
            match cdr.check_columns() {
                Ok(()) => r.ok(format!(
                    "CDR table {} has the columns callquota reads",
                    config.cdr.table
                )),
                Err(e) => r.fail(format!("{e:#}")),
            }
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

    check_include(ctx, &mut r);
    check_reload_command(ctx, &mut r);
    match &config.mail {
        None => r.ok("mail is off (no [mail] section): notices wait in the outbox"),
        Some(settings) => match crate::mailer::Mailer::new(settings).and_then(|m| m.check()) {
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
    if mode(&ctx.config.path).is_some_and(|m| m & 0o004 != 0) {
        r.warn(format!(
            "config {} is readable by every user and holds the CDR password; chmod 640 it",
            ctx.config.path.display()
        ));
    }
    for path in [&ctx.config.state_db, &ctx.config.lock_file] {
        if mode(path).is_some_and(|m| m & 0o002 != 0) {
            r.warn(format!("{} is writable by every user; chmod o-w it", path.display()));
        }
    }
}

fn check_include(ctx: &Context, r: &mut Report) {
    let settings = &ctx.config.dialplan;
    let path = &settings.include_file;
    let on_disk = match include_file::read(path) {
        Ok(Some(text)) => generation_in(&text),
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
    if settings.asterisk_cli.is_empty() {
        let custom = path.parent().unwrap_or(Path::new("/")).join("extensions_custom.conf");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let wired = std::fs::read_to_string(&custom).is_ok_and(|text| {
            text.lines()
                .any(|l| l.trim_start().starts_with('#') && l.contains("include") && l.contains(&name))
        });
        if wired {
            r.ok(format!("{} includes {name}", custom.display()));
        } else {
            r.warn(format!(
                "cannot confirm the include file is wired in (asterisk_cli = []); add `#include {}` to extensions_custom.conf",
                path.display()
            ));
        }
        return;
    }
    if settings.flavor != crate::config::Flavor::Plain {
        if !settings.define_hook {
            r.ok("define_hook = false: your own pre-dial hook must call Gosub(callquota-predial,s,1)");
        } else {
            match crate::reload::confirm_hook_is_ours(settings) {
                Ok(()) => r.ok("the live pre-dial hook is callquota's"),
                Err(e) => r.fail(format!("{e:#}")),
            }
        }
    }
    match loaded_generation(settings) {
        Ok(Some(loaded)) if Some(loaded) == on_disk => {
            r.ok(format!("Asterisk has generation {loaded} of {} loaded", path.display()))
        }
        Ok(Some(loaded)) => r.fail(format!(
            "Asterisk has generation {loaded} loaded but the file has {}; run `callquota run` to reload",
            on_disk.map_or("none".into(), |g| g.to_string())
        )),
        Ok(None) => r.fail(format!(
            "Asterisk has no callquota dialplan loaded; add `#include {}` to extensions_custom.conf and reload",
            path.display()
        )),
        Err(e) => r.fail(format!("{e:#}")),
    }
}

fn check_reload_command(ctx: &Context, r: &mut Report) {
    let program = &ctx.config.dialplan.reload_command[0];
    let found = if program.contains('/') {
        is_executable(Path::new(program))
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(program))))
            .unwrap_or(false)
    };
    if found {
        r.ok(format!(
            "reload command `{}` found",
            ctx.config.dialplan.reload_command.join(" ")
        ));
    } else {
        r.fail(format!(
            "reload command program {program:?} not found; set dialplan.reload_command"
        ));
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
