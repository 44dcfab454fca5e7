//! The admin's commands: classify, status, log, user, render, check.

mod common;

use common::{Call, LANDLINE, MOBILE, MOBILE2, Site, stderr, stdout};

const T: &str = "2026-11-26T10:00:00";

#[test]
fn classify_explains_why_a_number_is_paid() {
    let site = Site::new();
    let out = site.ok(
        T,
        &[
            "classify",
            "87011234567",
            "870-5123-4567",
            "87471234567",
            "87172123456",
            "2055",
        ],
    );
    assert_eq!(
        out,
        "87011234567: paid (direction mobile, pattern _870[5780-2]XXXXXXX)\n\
         870-5123-4567: paid (direction mobile, pattern _870[5780-2]XXXXXXX)\n\
         87471234567: paid (direction mobile, pattern _8747XXXXXXX)\n\
         87172123456: not paid (no pattern matches)\n\
         2055: not paid (no pattern matches)\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&site.ok(T, &["classify", "--json", "87711234567", "555"])).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"number": "87711234567", "paid": true, "direction": "mobile", "pattern": "_877[15-8]XXXXXXX"},
            {"number": "555", "paid": false, "direction": null, "pattern": null}
        ])
    );
}

#[test]
fn status_json_has_the_documented_fields() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1h");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 1800)]);
    site.run(T);
    let status = site.status(T);
    let row = &status[0];
    for key in [
        "extension",
        "name",
        "day",
        "allowance_s",
        "used_s",
        "remaining_s",
        "level",
        "blocked",
    ] {
        assert!(row.get(key).is_some(), "status --json lacks {key}: {row}");
    }
    assert_eq!(row["level"], 50);
    assert_eq!(row["remaining_s"], 1800);
    let text = site.ok(T, &["status"]);
    assert!(
        text.contains("2055") && text.contains("30m 00s") && text.contains("50%"),
        "{text}"
    );
}

#[test]
fn status_shows_a_user_added_after_the_last_run_with_the_full_base() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1h");
    site.run(T);
    site.add_user("2026-11-26T10:30:00", "2066", "20m");
    let s = site.user_status("2026-11-26T10:31:00", "2066");
    assert_eq!((s["allowance_s"].as_u64(), s["used_s"].as_u64()), (Some(1200), Some(0)));
}

#[test]
fn log_records_user_changes_and_filters_by_extension() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1h");
    site.add_user("2026-11-26T08:00:00", "2066", "1h");
    site.ok(
        T,
        &[
            "user",
            "set",
            "2055",
            "--daily-limit",
            "2h",
            "--email",
            "new@example.com",
        ],
    );
    site.ok(T, &["user", "remove", "2066"]);
    let log: serde_json::Value = serde_json::from_str(&site.ok(T, &["log", "--ext", "2055", "--json"])).unwrap();
    let events: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, vec!["user_added", "user_changed"]);
    // Durations as everywhere else (#22 item 8), not "daily limit 3600s".
    assert!(
        log[0]["detail"]
            .as_str()
            .unwrap()
            .contains(", daily limit 1h 00m 00s, active"),
        "{log}"
    );
    assert!(
        log[1]["detail"]
            .as_str()
            .unwrap()
            .contains("daily limit 1h 00m 00s -> 2h 00m 00s")
    );
    let all = site.ok(T, &["log"]);
    assert!(all.contains("user_removed"), "{all}");
    assert_eq!(
        site.ok(T, &["user", "set", "2055", "--daily-limit", "2h"]),
        "2055 unchanged\n"
    );
}

/// `user list` shows each user's cc, as `--json` does (#22 item 8).
#[test]
fn user_list_shows_the_cc() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1h");
    site.add_user("2026-11-26T08:00:00", "2066", "1h");
    site.ok(T, &["user", "set", "2055", "--cc", "boss@example.com"]);
    let text = site.ok(T, &["user", "list"]);
    let header = text.lines().next().unwrap();
    assert!(header.contains(" CC "), "{text}");
    let row = |ext: &str| text.lines().find(|l| l.starts_with(ext)).unwrap().to_string();
    assert!(row("2055").contains("boss@example.com"), "{text}");
    let cc_at = header.find(" CC ").unwrap() + 1;
    assert_eq!(&row("2066")[cc_at..cc_at + 2], "- ", "{text}");
    let json: serde_json::Value = serde_json::from_str(&site.ok(T, &["user", "list", "--json"])).unwrap();
    assert_eq!(json[0]["cc"], "boss@example.com");
}

#[test]
fn the_audit_log_is_append_only() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1h");
    let conn = site.state();
    assert!(conn.execute("DELETE FROM audit", []).is_err());
    assert!(conn.execute("UPDATE audit SET detail = 'x'", []).is_err());
}

#[test]
fn removing_and_re_adding_a_user_starts_fresh() {
    let site = Site::new();
    site.add_user("2026-11-25T08:00:00", "2055", "1000");
    site.run("2026-11-25T09:00:00");
    site.ok("2026-11-25T10:00:00", &["user", "remove", "2055"]);
    site.run("2026-11-26T09:00:00");
    site.add_user("2026-11-26T10:00:00", "2055", "500");
    site.run("2026-11-26T10:05:00");
    let s = site.user_status("2026-11-26T10:05:00", "2055");
    assert_eq!(
        (s["allowance_s"].as_u64(), s["carried_in_s"].as_u64()),
        (Some(500), Some(0))
    );
    assert_eq!(site.count("SELECT closed FROM ledger WHERE day = '2026-11-25'"), 1);
}

#[test]
fn render_prints_what_run_would_write() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1h");
    let rendered = site.ok(T, &["render"]);
    site.run(T);
    assert_eq!(rendered, site.include());
    assert_eq!(site.ok(T, &["render"]), site.include());
}

#[test]
fn check_reports_each_part() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1h");
    site.run(T);
    let out = site.at(T, &["check"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for needle in [
        "ok    config",
        "ok    state",
        "session read-only",
        "has the columns",
        "the CDR account may write",
        "Asterisk has generation 1",
        "the live pre-dial hook is callquota's",
        "ok    dialplan.reload_command",
        "runs under cron",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
}

/// With `asterisk_cli = []` the live guard's counters cannot be cleaned nor
/// read: `check` says so (and says nothing of it with live = false).
#[test]
fn check_says_the_live_guard_needs_the_asterisk_cli() {
    let site = Site::new();
    let config = std::fs::read_to_string(&site.config).unwrap();
    let start = config.find("asterisk_cli =").unwrap();
    let end = start + config[start..].find('\n').unwrap();
    let mut no_cli = config.clone();
    no_cli.replace_range(start..end, "asterisk_cli = []");
    site.write_config(&no_cli);
    let warned = stdout(&site.at(T, &["check"]));
    assert!(
        warned.contains("warn  the live guard is on but asterisk_cli = []: nothing deletes its AstDB counters"),
        "{warned}"
    );
    site.write_config(&no_cli.replace("[dialplan]\n", "[dialplan]\nlive = false\n"));
    let quiet = stdout(&site.at(T, &["check"]));
    assert!(!quiet.contains("the live guard is on"), "{quiet}");
}

fn fail_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("FAIL")).collect()
}

/// One cause, one FAIL line: a missing Asterisk binary is named as missing,
/// and the confirmations it would have made are listed as not made.
#[test]
fn check_says_once_that_asterisk_is_missing() {
    let site = Site::with_fake(|c| {
        let start = c.find("reload_command =").unwrap();
        let end = c.find("reload_timeout_s").unwrap();
        c.replace_range(
            start..end,
            "reload_command = [\"/nonexistent/sbin/asterisk\", \"-rx\", \"module reload pbx_config.so\"]\n\
             asterisk_cli = [\"/nonexistent/sbin/asterisk\", \"-rx\"]\n",
        );
    });
    site.add_user("2026-11-26T08:00:00", "2055", "1h");
    let out = site.at(T, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert_eq!(
        fail_lines(&text),
        [
            "FAIL  dialplan.reload_command and dialplan.asterisk_cli `/nonexistent/sbin/asterisk`: no such file; \
             Asterisk is not installed on this host, or lives elsewhere (`command -v asterisk` as root finds it): set \
             dialplan.reload_command and dialplan.asterisk_cli to its path"
        ],
        "{text}"
    );
    assert!(
        text.contains(
            "warn  not confirmed (asterisk_cli cannot be run here, above): that Asterisk loaded the include file"
        ),
        "{text}"
    );
    assert!(!text.contains("give the absolute path"), "{text}");
    // The run says the same in its one line.
    let run = site.at(T, &["run"]);
    assert!(
        stderr(&run).contains("no such file: Asterisk is not installed on this host"),
        "{}",
        stderr(&run)
    );
}

/// Asterisk installed but not answering: one FAIL, not one per question asked.
#[test]
fn check_says_once_that_asterisk_does_not_answer() {
    let site = Site::with_fake(|_| {});
    site.add_user("2026-11-26T08:00:00", "2055", "1h");
    site.run(T);
    std::fs::write(site.path("ast/down"), "").unwrap();
    let text = stdout(&site.at(T, &["check"]));
    let fails = fail_lines(&text);
    assert_eq!(fails.len(), 1, "{text}");
    assert!(fails[0].contains("Unable to connect to remote asterisk"), "{text}");
    assert!(
        text.contains("warn  not confirmed while Asterisk does not answer:"),
        "{text}"
    );
}

/// Without the CLI, check says which confirmations are off, and that a
/// reload command that is not Asterisk's is confirmed by nothing.
#[test]
fn check_says_which_confirmations_are_off() {
    let site = Site::with_fake(|c| {
        let start = c.find("reload_command =").unwrap();
        let end = c.find("reload_timeout_s").unwrap();
        c.replace_range(start..end, "reload_command = [\"true\"]\nasterisk_cli = []\n");
    });
    let text = stdout(&site.at(T, &["check"]));
    for needle in [
        "warn  not confirmed (asterisk_cli = []): that Asterisk loaded the include file (here and after each run's \
         reload), dialplan.flavor, that the live pre-dial hook is callquota's, the live guard's modules, the prompts \
         callers hear, FreePBX's trunk Dial options",
        "warn  dialplan.reload_command `true` is not Asterisk's CLI and asterisk_cli = []: nothing confirms",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    // With the CLI the reload is confirmed whatever runs it.
    let full = stdout(&Site::with_fake(|_| {}).at(T, &["check"]));
    assert!(
        full.contains("is not Asterisk's CLI: each run confirms through dialplan.asterisk_cli"),
        "{full}"
    );
    assert!(!full.contains("not confirmed"), "{full}");
}

#[test]
fn the_readme_cdr_account_logs_in_through_the_unix_socket() {
    // README: host = "localhost" is the socket, where the server sees
    // user@localhost (the account CREATE USER callquota@localhost makes).
    let url = common::mysql_root_url();
    let userinfo = url
        .trim_start_matches("mysql://")
        .rsplit_once('@')
        .map_or("", |(u, _)| u);
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let site = Site::new();
    let keys = format!(
        "host = \"localhost\"\nuser = \"{user}\"\npassword = \"{password}\"\ndatabase = \"{}\"",
        site.db
    );
    let text = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&text.replace(&format!("url = \"{url}/{}\"", site.db), &keys));
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 70)]);
    site.add_user(T, "2055", "30m");
    site.run(T);
    let status = site.ok(T, &["status", "--json"]);
    assert!(
        status.contains("\"used_s\": 70") || status.contains("\"used_s\":70"),
        "{status}"
    );
    let check = stdout(&site.at(T, &["check"]));
    assert!(
        check.contains(&format!(
            "ok    CDR database mysql://{user}@localhost/{} (socket /run/mysqld/mysqld.sock)",
            site.db
        )),
        "{check}"
    );
}

#[test]
fn check_fails_when_the_database_or_asterisk_is_missing() {
    let site = Site::with(|c| *c = c.replace("127.0.0.1:3306", "127.0.0.1:1"));
    let out = site.at(T, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL  cannot connect to the CDR database"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("FAIL  Asterisk has no callquota dialplan loaded"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("check(s) failed"));
}

#[test]
fn config_can_come_from_the_environment() {
    let site = Site::new();
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_callquota"))
        .env("CALLQUOTA_CONFIG", &site.config)
        .args(["classify", "87011234567"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn help_documents_every_command_and_exit_code() {
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_callquota"))
        .arg("--help")
        .output()
        .unwrap();
    let help = stdout(&out);
    for word in [
        "run", "status", "user", "grant", "log", "render", "classify", "check", "75", "78",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}

#[test]
fn run_if_configured_is_silent_only_while_unconfigured() {
    let site = Site::new();
    site.write_config("# callquota: not configured yet\n#[cdr]\n#url = \"mysql://...\"\n");
    let out = site.at(T, &["run", "--if-configured"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).is_empty() && stderr(&out).is_empty());
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("not configured"), "{}", stderr(&out));
    // A real mistake is never silenced.
    site.write_config(&site.default_config().replace("[cdr]\n", "[cdr]\nulr = 1\n"));
    assert_eq!(site.at(T, &["run", "--if-configured"]).status.code(), Some(78));
    std::fs::remove_file(&site.config).unwrap();
    assert_eq!(site.at(T, &["run", "--if-configured"]).status.code(), Some(0));
}

#[test]
fn migrate_creates_the_state_file_0640_without_a_config() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_callquota"))
        .args(["--config", "/nonexistent/config.toml", "migrate", "--state-db"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let versions: i64 = conn
        .query_row("SELECT MAX(version) FROM refinery_schema_history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(versions, 8);
}

#[test]
fn the_man_page_and_readme_document_every_command_and_flag() {
    use clap::CommandFactory;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let man = std::fs::read_to_string(root.join("packaging/callquota.1"))
        .unwrap()
        .replace("\\-", "-");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let cli = callquota::cli::Cli::command();
    let mut missing = Vec::new();
    let mut visit = |cmd: &clap::Command, prefix: &str| {
        let name = format!("{prefix}{}", cmd.get_name());
        for arg in cmd.get_arguments().filter(|a| !a.is_global_set()) {
            if let Some(long) = arg.get_long().filter(|l| !["help", "version"].contains(l))
                && !man.contains(&format!("--{long}"))
            {
                missing.push(format!("man: {name} --{long}"));
            }
        }
        if !man.contains(&format!("fB{}", cmd.get_name())) && !man.contains(&name) {
            missing.push(format!("man: {name}"));
        }
        if !readme.contains(&format!("callquota {name}")) && name != "migrate" {
            missing.push(format!("README: callquota {name}"));
        }
    };
    for cmd in cli.get_subcommands() {
        if cmd.has_subcommands() {
            for sub in cmd.get_subcommands() {
                visit(sub, &format!("{} ", cmd.get_name()));
            }
        } else {
            visit(cmd, "");
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}

#[test]
fn the_packaged_config_is_the_example_all_commented() {
    // What `cargo deb` ships as /etc/callquota/config.toml; packaging/build-deb.sh regenerates it.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("config.example.toml")).unwrap();
    let packaged = std::fs::read_to_string(root.join("packaging/config.toml")).unwrap();
    let mut want = String::from(
        "# callquota configuration: not configured yet.\n\
         # Uncomment and edit the settings below (at least [cdr], [[direction]] and\n\
         # [dialplan]), then run: callquota check\n\
         # The full example is in /usr/share/doc/callquota/examples/config.example.toml.\n#\n",
    );
    // Comments stay as they are (never `# #key`); settings get one `#`.
    for line in example.lines() {
        if !line.is_empty() && !line.starts_with('#') {
            want.push('#');
        }
        want.push_str(line);
        want.push('\n');
    }
    assert!(
        packaged == want,
        "packaging/config.toml is stale: run packaging/build-deb.sh (or its first step) and commit it"
    );
    assert!(
        packaged.lines().all(|l| l.is_empty() || l.starts_with('#')),
        "the packaged config must configure nothing"
    );
    assert!(!packaged.contains("# #"), "commented twice");
}

#[test]
fn the_readme_config_table_is_one_table_naming_every_section() {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| key | default | meaning |"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    for section in [
        "`[cdr]",
        "`[limits]",
        "`[carryover]",
        "`[dialplan]",
        "`[mail]",
        "`[smtp]",
        "`run_timeout_s`",
    ] {
        assert!(
            table.iter().any(|l| l.contains(section)),
            "{section} missing from the config table (or the table is split)"
        );
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "10m");
    site.run(T);
    // Far more than a pipe buffer (64 KiB) of output.
    site.state()
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO audit (at, extension, day, event, detail)
             SELECT '2026-11-26T04:00:00Z', '2055', '2026-11-26', 'grant', 'padding ' || i FROM n;",
        )
        .unwrap();
    for command in ["log --json", "log", "user list --json", "status --json"] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -o pipefail; {} --config {} --allow-future --now {T} {command} | head -1 >/dev/null; echo \"status ${{PIPESTATUS[0]}}\" >&2",
                env!("CARGO_BIN_EXE_callquota"),
                site.config.display()
            ))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{command}: {err}"
        );
        assert!(!err.contains("status 101"), "{command}: {err}");
    }
}

#[test]
fn stale_figures_are_flagged_by_status_and_fail_check() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    let out = site.ok("2026-11-26T08:00:00", &["status"]);
    assert!(
        out.lines().next().unwrap().contains("STALE: no successful run yet"),
        "{out}"
    );
    site.run("2026-11-26T10:00:00");
    let row = site.user_status("2026-11-26T10:10:00", "2055");
    assert_eq!(row["stale"], false);
    assert_eq!(row["last_run_at"], "2026-11-26T05:00:00+00:00");
    let out = site.ok("2026-11-26T10:10:00", &["status"]);
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains("last successful run 2026-11-26 10:00 (10m 00s ago)"),
        "{out}"
    );
    // A wrong password from now on: every run fails, the figures age.
    let good = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&common::with_cdr_userinfo(&good, "nobody_here:wrong"));
    for now in [
        "2026-11-26T10:05:00",
        "2026-11-26T10:10:00",
        "2026-11-26T10:15:00",
        "2026-11-26T10:20:00",
    ] {
        assert_eq!(site.at(now, &["run"]).status.code(), Some(1));
    }
    let row = site.user_status("2026-11-26T10:20:00", "2055");
    assert_eq!(row["stale"], true);
    let out = site.ok("2026-11-26T10:20:00", &["status"]);
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains("STALE: the last successful run was at 2026-11-26 10:00"),
        "{out}"
    );
    site.write_config(&good);
    let out = site.at("2026-11-26T10:20:00", &["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL  the last successful run was at 2026-11-26 10:00 (20 minutes ago)"),
        "{}",
        stdout(&out)
    );
    site.run("2026-11-26T10:25:00");
    let out = site.at("2026-11-26T10:25:00", &["check"]);
    assert!(
        stdout(&out).contains("ok    the last successful run was 0 minutes ago"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn log_shows_local_times_and_durations_read_one_way() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    let out = site.ok(
        "2026-11-26T10:00:00",
        &["grant", "2055", "1h30m", "--reason", "customer"],
    );
    assert!(out.contains("granted 1h 30m 00s to 2055"), "{out}");
    let log = site.ok("2026-11-26T10:00:00", &["log"]);
    // Asia/Almaty is UTC+5: 10:00 local, stored as 05:00Z.
    assert!(log.contains("2026-11-26 10:00:00+05:00  2055"), "{log}");
    assert!(log.contains("+1h 30m 00s for 2026-11-26: customer"), "{log}");
    let utc = site.ok("2026-11-26T10:00:00", &["log", "--utc"]);
    assert!(utc.contains("2026-11-26T05:00:00Z  2055"), "{utc}");
    let json: serde_json::Value = serde_json::from_str(&site.ok("2026-11-26T10:00:00", &["log", "--json"])).unwrap();
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .all(|e| e["at"].as_str().unwrap().ends_with('Z'))
    );
    let status = site.ok("2026-11-26T10:00:00", &["status"]);
    assert!(status.contains("2h 00m 00s"), "{status}");
}

/// A grant typed at 23:59:59 that waited while the midnight run closed the
/// day would be stored for a closed day and never apply: it is refused
/// plainly instead, and nothing is stored.
#[test]
fn a_grant_for_a_day_a_run_closed_meanwhile_is_refused_and_stores_nothing() {
    let site = Site::new();
    site.add_user("2026-11-25T08:00:00", "2055", "30m");
    site.run("2026-11-26T00:00:30");
    let before = site.dump();
    // The grant's clock read 23:59:59 on the 25th; the run already closed it.
    let out = site.at("2026-11-25T23:59:59", &["grant", "2055", "10m"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("nothing granted: 2026-11-25 was closed") && err.contains("for 2026-11-26"),
        "{err}"
    );
    assert!(!err.contains("recorded"), "{err}");
    assert_eq!(site.dump(), before, "no grant row, no audit row");
    assert_eq!(site.count("SELECT COUNT(*) FROM grants"), 0);
}

/// A corrupt `open_day` (an admin's sqlite3 edit) fails a grant in one line
/// and stores nothing, rather than being taken for "no day closed yet".
#[test]
fn a_grant_over_a_corrupt_open_day_fails_and_stores_nothing() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    site.run("2026-11-26T09:00:00");
    site.state()
        .execute("UPDATE meta SET value = 'soon' WHERE key = 'open_day'", [])
        .unwrap();
    let out = site.at("2026-11-26T09:05:00", &["grant", "2055", "10m"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("meta open_day is corrupt"), "{}", stderr(&out));
    assert_eq!(site.count("SELECT COUNT(*) FROM grants"), 0);
}

/// Who did it: every audit row names the person behind the command
/// (`SUDO_USER` through sudo), and `grant --by` names whom it was for.
#[test]
fn audit_rows_name_the_sudo_user_and_grants_whom_they_were_for() {
    let site = Site::new();
    let as_sudo = |user: &str, now: &str, args: &[&str]| {
        let out = site
            .cmd()
            .env("SUDO_USER", user)
            .arg("--now")
            .arg(now)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    as_sudo(
        "alice",
        "2026-11-26T08:00:00",
        &["user", "add", "2055", "--name", "Vasya", "--daily-limit", "30m"],
    );
    as_sudo(
        "bob",
        "2026-11-26T09:00:00",
        &["grant", "2055", "10m", "--reason", "ticket 42", "--by", "Ivanova A."],
    );
    // Not an account name: not believed, the real account is named instead.
    as_sudo(
        "x;rm -rf /",
        "2026-11-26T09:30:00",
        &["user", "set", "2055", "--daily-limit", "40m"],
    );
    let log: serde_json::Value = serde_json::from_str(&site.ok(T, &["log", "--ext", "2055", "--json"])).unwrap();
    let actor_of = |event: &str| {
        log.as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == event)
            .map(|e| e["actor"].as_str().unwrap_or("").to_string())
            .unwrap()
    };
    assert_eq!(actor_of("user_added"), "alice", "{log}");
    assert_eq!(actor_of("grant"), "bob", "{log}");
    let grant = log.as_array().unwrap().iter().find(|e| e["event"] == "grant").unwrap();
    assert!(
        grant["detail"]
            .as_str()
            .unwrap()
            .ends_with(": ticket 42 (on behalf of Ivanova A.)"),
        "{grant}"
    );
    let changed = actor_of("user_changed");
    assert!(!changed.is_empty() && !changed.contains(';'), "{changed}");
    assert!(site.ok(T, &["log", "--ext", "2055"]).contains(" bob "));

    let out = site.at(T, &["grant", "2055", "1m", "--by", "=?utf-8?q?x?="]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--by"), "{}", stderr(&out));
}

/// `log` filters: by extension, local day or since a day, event (repeatable),
/// and the newest N first; an unknown event name is refused with the list.
#[test]
fn log_filters_by_day_event_and_limit() {
    let site = Site::new();
    site.add_user("2026-11-24T10:00:00", "2055", "30m");
    site.add_user("2026-11-25T10:00:00", "2066", "30m");
    site.ok("2026-11-26T00:30:00", &["grant", "2055", "5m"]);
    site.ok("2026-11-26T10:00:00", &["user", "set", "2066", "--daily-limit", "1h"]);
    let events = |args: &[&str]| -> Vec<(String, String)> {
        let mut all = vec!["log", "--json"];
        all.extend_from_slice(args);
        let log: serde_json::Value = serde_json::from_str(&site.ok(T, &all)).unwrap();
        log.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["event"].as_str().unwrap().to_string(),
                    e["extension"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect()
    };
    let pair = |e: &str, x: &str| (e.to_string(), x.to_string());
    assert_eq!(
        events(&["--event", "user_added"]),
        [pair("user_added", "2055"), pair("user_added", "2066")]
    );
    // 00:30 in Almaty is still the 25th in UTC: the day is the site's.
    assert_eq!(
        events(&["--day", "2026-11-26", "--event", "grant", "--event", "user_changed"]),
        [pair("grant", "2055"), pair("user_changed", "2066")]
    );
    assert!(events(&["--day", "2026-11-25", "--event", "grant"]).is_empty());
    assert_eq!(
        events(&["--since", "2026-11-25", "--event", "user_added"]),
        [pair("user_added", "2066")]
    );
    assert_eq!(
        events(&[
            "--limit",
            "2",
            "--event",
            "user_added",
            "--event",
            "grant",
            "--event",
            "user_changed"
        ]),
        [pair("user_changed", "2066"), pair("grant", "2055")],
        "newest first"
    );
    assert!(events(&["--ext", "2066"]).iter().all(|(_, x)| x == "2066"));
    let out = site.at(T, &["log", "--event", "granted"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--event granted: no such event; the events are blocked,"),
        "{}",
        stderr(&out)
    );
    let out = site.at(T, &["log", "--day", "2026-11-26", "--since", "2026-11-25"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `user set --all` and `--only PATTERN` change many users in one
/// transaction, one audit row per user that changed, with a count.
#[test]
fn bulk_user_set_changes_many_users_at_once() {
    let site = Site::new();
    for ext in ["2001", "2002", "2055", "3001"] {
        site.add_user("2026-11-26T08:00:00", ext, "30m");
    }
    site.ok(T, &["user", "set", "2002", "--daily-limit", "45m"]);
    let out = site.ok(T, &["user", "set", "--only", "_20XX", "--daily-limit", "45m"]);
    assert_eq!(out, "2 of 3 users matching _20XX updated\n");
    let users: serde_json::Value = serde_json::from_str(&site.ok(T, &["user", "list", "--json"])).unwrap();
    let limit = |ext: &str| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["extension"] == ext)
            .unwrap()["daily_limit_s"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        [limit("2001"), limit("2002"), limit("2055"), limit("3001")],
        [2700, 2700, 2700, 1800]
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event = 'user_changed'"),
        3,
        "one row per user that changed"
    );
    assert_eq!(
        site.ok(T, &["user", "set", "--all", "--disable"]),
        "4 of 4 users in all updated\n"
    );
    assert_eq!(
        site.ok(T, &["user", "set", "--all", "--disable"]),
        "0 of 4 users in all updated\n"
    );
    for bad in [
        &["user", "set", "--all", "--name", "X"][..],
        &["user", "set", "--all"],
        &["user", "set", "--daily-limit", "1h"],
        &["user", "set", "2055", "--all", "--daily-limit", "1h"],
        &["user", "set", "--only", "_20[", "--daily-limit", "1h"],
        &["user", "set", "--all", "--daily-limit", "25h"],
    ] {
        let out = site.at(T, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{bad:?}: {}", stderr(&out));
    }
    // A refused bulk change changed nobody.
    assert_eq!(limit("3001"), 1800);
}

/// `calls EXT` lists every CDR row of the extension the way `run` judged
/// it: counted, or why not. A closed day's counted total equals its
/// ledger; the open day's difference is the calls since the last run.
#[test]
fn calls_explains_every_row_and_matches_the_ledger() {
    let site = Site::new();
    site.add_user("2026-11-25T08:00:00", "2055", "30m");
    let mut local_leg = Call::answered("2055", MOBILE, "2026-11-25T13:00:00", 200);
    local_leg.dstchannel = "Local/87011234567@from-internal-00000003;1".into();
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-25T10:00:00", 600),
        Call::answered("2055", MOBILE, "2026-11-25T11:00:00", 0).disposition("NO ANSWER"),
        Call::answered("2055", LANDLINE, "2026-11-25T12:00:00", 300),
        local_leg,
        Call::answered("2066", MOBILE, "2026-11-25T14:00:00", 100),
    ]);
    site.run("2026-11-25T20:00:00");
    site.run("2026-11-26T00:05:00");
    // A call across midnight: its row appears at 00:08, after the 25th closed.
    site.insert(&[Call::answered("2055", MOBILE2, "2026-11-25T23:58:00", 600)]);
    site.run("2026-11-26T00:10:00");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26T09:00:00", 120)]);
    site.run("2026-11-26T09:30:00");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26T09:40:00", 60)]);

    let rows: serde_json::Value =
        serde_json::from_str(&site.ok(T, &["calls", "2055", "--day", "2026-11-25", "--json"])).unwrap();
    let rows = rows.as_array().unwrap();
    let fields: Vec<&str> = rows[0].as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = fields.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "billsec",
            "calldate",
            "charged_s",
            "counted",
            "counted_s",
            "direction",
            "disposition",
            "dstchannel",
            "note",
            "number",
            "pattern",
            "reason"
        ]
    );
    let verdicts: Vec<(&str, bool, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["calldate"].as_str().unwrap(),
                r["counted"].as_bool().unwrap(),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("2026-11-25 10:00:00", true, ""),
            ("2026-11-25 11:00:00", false, "not answered"),
            ("2026-11-25 12:00:00", false, "not paid"),
            (
                "2026-11-25 13:00:00",
                false,
                "a Local/ leg: the leg to the trunk is charged"
            ),
            (
                "2026-11-25 23:58:00",
                false,
                "day already closed when it ended: charged to the next open day (late row)"
            ),
        ],
        "2066's row is not 2055's"
    );
    assert_eq!(rows[0]["direction"], "mobile");
    assert_eq!(rows[0]["pattern"], "_870[5780-2]XXXXXXX");
    assert_eq!(rows[2]["direction"], serde_json::Value::Null);
    for r in rows {
        // Without a billing key a direction charges the answered seconds as they are.
        assert_eq!(r["charged_s"], r["counted_s"], "{r}");
    }
    let counted: i64 = rows
        .iter()
        .filter(|r| r["counted"] == true)
        .map(|r| r["billsec"].as_i64().unwrap())
        .sum();
    let closed = site.ok(T, &["status", "--day", "2026-11-25", "--json"]);
    let closed: serde_json::Value = serde_json::from_str(&closed).unwrap();
    assert_eq!(Some(counted), closed[0]["used_s"].as_i64(), "{closed}");

    let text = site.ok(
        "2026-11-26T10:00:00",
        &["calls", "2055", "--from", "2026-11-25", "--to", "2026-11-26"],
    );
    assert!(
        text.contains("2026-11-25: counted 10m 00s; the ledger has 10m 00s used, closed"),
        "{text}"
    );
    assert!(
        text.contains(
            "2026-11-26: counted 3m 00s; the ledger has 12m 00s used (10m 00s of it late rows of the day before), \
             open: the difference is calls that ended after the last run at 09:30; the next run counts them"
        ),
        "{text}"
    );
    assert!(text.contains("no: not paid"), "{text}");

    let untracked: serde_json::Value =
        serde_json::from_str(&site.ok(T, &["calls", "2066", "--day", "2026-11-25", "--json"])).unwrap();
    assert_eq!(untracked[0]["reason"], "not a tracked user that day");

    for bad in [
        &["calls", "2055", "--from", "2026-11-26", "--to", "2026-11-25"][..],
        &["calls", "2055", "--to", "2026-11-25"],
        &["calls", "2055", "--day", "2026-11-25", "--from", "2026-11-24"],
        &["calls", "2055", "--from", "2024-01-01", "--to", "2026-11-25"],
        &["calls", "20;55"],
    ] {
        let out = site.at(T, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{bad:?}: {}", stderr(&out));
    }
}

/// A limit of 0 is allowed (no paid call at all) but never passes unsaid.
#[test]
fn a_zero_daily_limit_warns_that_it_blocks_every_paid_call() {
    let site = Site::with_fake(|_| {});
    let out = site.at(T, &["user", "add", "2055", "--name", "A", "--daily-limit", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: --daily-limit 0 blocks every paid call of the users it was given to"),
        "{}",
        stderr(&out)
    );
    let out = site.at(T, &["user", "set", "2055", "--daily-limit", "10m"]);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}
