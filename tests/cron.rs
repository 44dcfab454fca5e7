//! callquota as cron runs it: `env -i`, cron's PATH, the service user.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;

const T: &str = "2026-11-26T10:00:00";
const CRON_PATH: &str = "/usr/bin:/bin";

/// A site whose Asterisk is an `asterisk` in its own `sbin/`, like
/// /usr/sbin/asterisk on FreePBX: on a root shell's PATH, not on cron's.
fn site_with_sbin_asterisk(program: &str) -> Site {
    // An `asterisk` of its own in `sbin/` (the fake behind a wrapper), to play cron's PATH.
    let site = Site::with_fake(|_| {});
    let sbin = site.path("sbin");
    fs::create_dir(&sbin).unwrap();
    let wrapper = sbin.join("asterisk");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} {} {} \"$@\"\n",
            fixture("fake-asterisk").display(),
            site.path("ast").display(),
            site.include_path().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let program = if program == "absolute" {
        wrapper.display().to_string()
    } else {
        "asterisk".into()
    };
    let mut config = fs::read_to_string(&site.config).unwrap();
    let start = config.find("reload_command =").unwrap();
    let end = config[start..].find("reload_timeout_s").unwrap() + start;
    config.replace_range(
        start..end,
        &format!(
            "reload_command = [\"{program}\", \"-rx\", \"module reload pbx_config.so\"]\nasterisk_cli = [\"{program}\", \"-rx\"]\n"
        ),
    );
    site.write_config(&config);
    site.hand_to(NOBODY);
    site.add_user(T, "2055", "30m");
    site
}

#[test]
fn a_bare_asterisk_works_from_a_root_shell_but_not_under_cron_and_check_says_so() {
    require_root();
    let site = site_with_sbin_asterisk("bare");
    let root_path = format!("{}:{CRON_PATH}", site.path("sbin").display());
    // What the admin sees at a root shell: the run works...
    let out = site.as_user("root", &root_path, &["--now", T, "run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // ...but check judges it the way cron will run it, and fails.
    let out = site.as_user("root", &root_path, &["--now", T, "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL  dialplan.reload_command and dialplan.asterisk_cli `asterisk` cannot be run by cron"),
        "{text}"
    );
    assert!(
        text.contains(&format!("it is at {}/asterisk", site.path("sbin").display())),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "give the absolute path, {}/asterisk",
            site.path("sbin").display()
        )),
        "{text}"
    );
    // And the cron run itself fails with a line that names the fix.
    let out = site.as_user(
        "nobody",
        CRON_PATH,
        &["--now", "2026-11-26T10:05:00", "grant", "2055", "1m"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("give its absolute path, e.g. /usr/sbin/asterisk"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn with_absolute_commands_run_and_check_pass_under_cron_as_the_service_user() {
    require_root();
    let site = site_with_sbin_asterisk("absolute");
    for args in [&["run"][..], &["check"]] {
        let out = site.as_user("nobody", CRON_PATH, &[&["--now", T][..], args].concat());
        assert!(out.status.success(), "{args:?}: {}{}", stdout(&out), stderr(&out));
    }
    let out = site.as_user("nobody", CRON_PATH, &["--now", T, "check"]);
    assert!(
        stdout(&out).contains("ok    dialplan.reload_command and dialplan.asterisk_cli: "),
        "{}",
        stdout(&out)
    );
    assert_eq!(site.allows_ms("2055"), Some(1_800_000));
}

#[test]
fn the_cron_file_gives_runs_the_sbin_directories() {
    let cron = fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/cron.d/callquota"))
        .unwrap();
    let path = cron.lines().find_map(|l| l.strip_prefix("PATH=")).expect("PATH line");
    assert!(path.split(':').any(|d| d == "/usr/sbin"), "{path}");
    let found = callquota::adapters::asterisk::cron_path(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/cron.d/callquota"),
    );
    assert_eq!(found, path);
    assert_eq!(
        callquota::adapters::asterisk::cron_path(std::path::Path::new("/nonexistent")),
        "/usr/bin:/bin"
    );
}

#[test]
fn a_user_who_may_not_touch_the_state_is_told_how_to_run_it() {
    require_root();
    let site = Site::new();
    site.add_user(T, "2055", "30m");
    site.run(T);
    // The site stays root's; "nobody" may read the config and enter the directory.
    fs::set_permissions(site.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&site.config, fs::Permissions::from_mode(0o644)).unwrap();
    for args in [
        &["status"][..],
        &["run"],
        &["grant", "2055", "1m"],
        &["user", "list"],
        &["log"],
        &["mail", "flush"],
    ] {
        let out = site.as_user("nobody", CRON_PATH, &[&["--now", T][..], args].concat());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("permission denied") && err.contains("sudo -u callquota callquota"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("cannot create"), "{args:?}: {err}");
    }
    // check names what this user could not do, each with its fix.
    let out = site.as_user("nobody", CRON_PATH, &["--now", T, "check"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  nobody cannot write") && text.contains("adduser nobody asterisk"),
        "{text}"
    );
    assert!(text.contains("FAIL  state: cannot open state_db"), "{text}");
}
