//! Bad input and failing surroundings: one clear line, the documented exit
//! code, and nothing lost or changed.

mod common;

use common::{Call, MOBILE, Site, stderr, stdout};

const T: &str = "2026-11-26T10:00:00";

fn one_line_error(out: &std::process::Output, code: i32, needle: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
    err
}

/// A site with one user, one paid call and one clean run behind it.
fn running_site() -> Site {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 300)]);
    site.run("2026-11-26T09:30:00");
    site
}

#[test]
fn config_errors_exit_78_naming_the_key() {
    let cases: [(&str, &str, &str); 8] = [
        ("[cdr]\n", "[cdr]\npasword = \"x\"\n", "unknown field `pasword`"),
        ("\"_8747XXXXXXX\"]", "\"_8747XXXX[XXX\"]", "unclosed '['"),
        ("Asia/Almaty", "Asia/Nowhere", "timezone \"Asia/Nowhere\""),
        ("[50, 90, 100]", "[90, 50, 100]", "ascending"),
        ("flavor = \"freepbx17\"", "flavor = \"asterisk\"", "dialplan.flavor"),
        ("reload_timeout_s = 5", "reload_timeout_s = 0", "reload_timeout_s"),
        ("enabled = true", "enabled = \"maybe\"", "expected a boolean"),
        (
            "\"_8747XXXXXXX\"]",
            "\"8747XXXXXXX\"]",
            "write \"_8747XXXXXXX\" for a pattern",
        ),
    ];
    for (from, to, needle) in cases {
        let site = Site::with(|c| *c = c.replacen(from, to, 1));
        let out = site.at(T, &["run"]);
        one_line_error(&out, 78, needle);
        assert!(!site.path("state.db").exists(), "a bad config must change nothing");
    }
}

#[test]
fn a_missing_config_says_how_to_fix_it() {
    let site = Site::new();
    std::fs::remove_file(&site.config).unwrap();
    one_line_error(&site.at(T, &["status"]), 78, "not found; copy config.example.toml");
}

#[test]
fn the_password_never_appears_in_errors() {
    let site = Site::with(|c| *c = common::with_cdr_userinfo(c, &format!("{}:Sup3rS3cret", common::url_user())));
    let out = site.at(T, &["run"]);
    let err = one_line_error(&out, 1, "cannot connect to the CDR database");
    assert!(!err.contains("Sup3rS3cret"), "{err}");
    assert!(
        err.contains(&format!("mysql://{}@127.0.0.1", common::url_user())),
        "{err}"
    );
}

#[test]
fn a_refused_login_names_the_account_and_host_the_server_saw() {
    // Over TCP the server sees 127.0.0.1, not the localhost of the README's
    // CREATE USER; the error names what it saw and the socket that fixes it.
    let site = Site::with(|c| *c = common::with_cdr_userinfo(c, "cq_no_such_account:pw"));
    let err = one_line_error(&site.at(T, &["run"]), 1, "cannot connect to the CDR database");
    assert!(
        err.contains("the server saw the login as 'cq_no_such_account'@'127.0.0.1'")
            && err.contains("host = \"localhost\""),
        "{err}"
    );
}

#[test]
fn hostile_extensions_are_refused_before_anything_changes() {
    let site = running_site();
    let dump = site.dump();
    let include = site.include();
    for bad in [
        "20;55", "[x]", "20)", "_X.", "${EXTEN}", "20 55", "20\n55", "", "2055,1",
    ] {
        let out = site.at(T, &["user", "add", bad, "--name", "X", "--daily-limit", "10m"]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("extension"), "{bad:?}: {}", stderr(&out));
        let out = site.at(T, &["grant", bad, "10m"]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    assert_eq!(site.dump(), dump);
    assert_eq!(site.include(), include);
}

#[test]
fn unknown_extensions_and_bad_values_are_usage_errors() {
    let site = running_site();
    let dump = site.dump();
    let long_name = "Я".repeat(101);
    let long_email = format!("{}@example.com", "a".repeat(250));
    let too_long_ext = "9".repeat(33);
    let add = |name: &'static str, extra: &[&'static str]| -> Vec<String> {
        let mut args = vec!["user", "add", "2077", "--name", name];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect()
    };
    let owned = |args: &[&str]| -> Vec<String> { args.iter().map(|a| a.to_string()).collect() };
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (
            owned(&["user", "set", "2056", "--daily-limit", "1h"]),
            "unknown extension 2056",
        ),
        (owned(&["user", "remove", "2056"]), "unknown extension 2056"),
        (owned(&["grant", "2056", "10m"]), "unknown extension 2056"),
        (
            owned(&["user", "add", "2055", "--name", "X", "--daily-limit", "1h"]),
            "already a user",
        ),
        (add("Evil\r\nBcc: x@y.z", &["--daily-limit", "1h"]), "control character"),
        (
            add("X", &["--email", "a@b.c\r\nBcc: x@y.z", "--daily-limit", "1h"]),
            "is not an address",
        ),
        (add("X", &["--daily-limit", "2d"]), "not valid"),
        (add("X", &["--daily-limit", "25h"]), "more than a day"),
        (add("Tab\there", &["--daily-limit", "1h"]), "control"),
        (owned(&["grant", "2055", "0"]), "more than 0"),
        (owned(&["grant", "2055", "10m", "--reason", "a\nb"]), "--reason"),
        (owned(&["status", "--day", "26.11.2026"]), "--day"),
    ];
    let mut name_too_long = owned(&["user", "add", "2077", "--name"]);
    name_too_long.extend(owned(&[&long_name, "--daily-limit", "1h"]));
    cases.push((name_too_long, "longer than 100"));
    cases.push((
        add("X", &["--daily-limit", "1h"])
            .into_iter()
            .chain(owned(&["--email", &long_email]))
            .collect(),
        "is not an address",
    ));
    cases.push((
        owned(&["user", "add", &too_long_ext, "--name", "X", "--daily-limit", "1h"]),
        "longer than 32",
    ));
    for (args, needle) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        one_line_error(&site.at(T, &args), 2, needle);
    }
    one_line_error(&site.at("yesterday", &["run"]), 2, "--now");
    assert_eq!(site.dump(), dump);
}

#[test]
fn names_may_hold_any_printable_unicode() {
    let site = Site::new();
    let name = "Әсел Нұрланқызы, \"Аса\" O'Brien";
    site.ok(
        T,
        &[
            "user",
            "add",
            "2055",
            "--name",
            name,
            "--email",
            "asel@example.kz",
            "--daily-limit",
            "30m",
        ],
    );
    let list: serde_json::Value = serde_json::from_str(&site.ok(T, &["user", "list", "--json"])).unwrap();
    assert_eq!(list[0]["name"], name);
    assert_eq!(list[0]["daily_limit_s"], 1800);
    site.run(T);
    assert!(!site.include().contains("Әсел"), "names never reach the dialplan");
}

#[test]
fn unreachable_mysql_changes_nothing() {
    let site = running_site();
    let dump = site.dump();
    let include = site.include();
    let text = std::fs::read_to_string(&site.config)
        .unwrap()
        .replace("127.0.0.1:3306", "127.0.0.1:1");
    site.write_config(&text);
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:40:00", 900)]);
    one_line_error(
        &site.at(T, &["run"]),
        1,
        &format!(
            "cannot connect to the CDR database mysql://{}@127.0.0.1:1/",
            common::url_user()
        ),
    );
    assert_eq!(site.dump(), dump);
    assert_eq!(site.include(), include);
    // The next healthy run is correct.
    site.write_config(&text.replace("127.0.0.1:1", "127.0.0.1:3306"));
    site.run(T);
    assert_eq!(site.user_status(T, "2055")["blocked"], true);
}

#[test]
fn a_cdr_table_missing_a_column_changes_nothing() {
    let site = running_site();
    let dump = site.dump();
    site.sql("ALTER TABLE cdr DROP COLUMN cnum");
    one_line_error(&site.at(T, &["run"]), 1, "CDR query");
    assert_eq!(site.dump(), dump);
}

#[test]
fn a_failed_reload_is_logged_and_retried_next_run() {
    // A reload that fails: only the fake does that on demand.
    let site = Site::with_fake(|_| {});
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    std::fs::write(site.path("ast/fail-reload"), "").unwrap();
    one_line_error(&site.at(T, &["run"]), 1, "failed to reload");
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event = 'reload_failed'"),
        1
    );
    assert!(
        site.include().contains("Return(1)"),
        "the file is written before the reload"
    );
    std::fs::remove_file(site.path("ast/fail-reload")).unwrap();
    site.run("2026-11-26T10:05:00"); // nothing changed, but the reload is retried
    assert_eq!(site.count("SELECT COUNT(*) FROM audit WHERE event = 'reload_ok'"), 1);
    assert_eq!(site.loaded(), site.include());
}

#[test]
fn asterisk_down_or_hung_fails_the_run_and_names_it() {
    let site = Site::with_fake(|c| *c = c.replace("reload_timeout_s = 5", "reload_timeout_s = 1"));
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    std::fs::write(site.path("ast/down"), "").unwrap();
    one_line_error(&site.at(T, &["run"]), 1, "Unable to connect to remote asterisk");
    std::fs::remove_file(site.path("ast/down")).unwrap();
    std::fs::write(site.path("ast/hang"), "").unwrap();
    let started = std::time::Instant::now();
    one_line_error(&site.at(T, &["run"]), 1, "did not finish within 1s");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event = 'reload_failed'"),
        2
    );
}

#[test]
fn an_unconfirmed_stamp_fails_the_run() {
    // The reload succeeds but Asterisk never loads our file: it is not wired in.
    let site = Site::new();
    let Some(pbx) = &site.pbx else {
        return; // no Asterisk sources outside CI: asterisk::asterisk_prefix said so loudly
    };
    pbx.set_custom("; the #tryinclude line is missing\n");
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    one_line_error(&site.at(T, &["run"]), 1, "did not take effect");
}

#[test]
fn a_second_run_exits_75_while_the_lock_is_held() {
    let site = running_site();
    let dump = site.dump();
    let lock = std::fs::File::create(site.path("state.db.lock")).unwrap();
    lock.try_lock().unwrap();
    one_line_error(&site.at(T, &["run"]), 75, "holds the lock");
    assert_eq!(site.dump(), dump);
    drop(lock);
    site.run(T);
}

#[test]
fn the_clock_going_backwards_does_not_reopen_a_closed_day() {
    let site = running_site();
    site.run("2026-11-27T09:00:00");
    let dump = site.dump();
    one_line_error(&site.at("2026-11-26T23:00:00", &["run"]), 1, "the clock went backwards");
    assert_eq!(site.dump(), dump);
}

#[test]
fn an_unwritable_include_file_names_the_path_and_keeps_the_old_file() {
    let site = running_site();
    let before = site.include();
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:40:00", 100)]);
    let dir = site.path("asterisk");
    let blocked = site.path("asterisk-ro");
    std::fs::rename(&dir, &blocked).unwrap();
    // A plain file where the directory was: no temp file can be created (works as root too).
    std::fs::write(&dir, "").unwrap();
    let out = site.at(T, &["run"]);
    one_line_error(&out, 1, "asterisk/callquota.conf");
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&blocked, &dir).unwrap();
    assert_eq!(site.include(), before);
    site.run(T);
    assert_eq!(site.allows_ms("2055"), Some(600_000), "{}", site.include());
}

#[test]
fn a_missing_state_directory_is_named() {
    let site = Site::with(|c| *c = c.replace("/state.db\"", "/no-such-dir/state.db\""));
    one_line_error(&site.at(T, &["run"]), 1, "no-such-dir does not exist; create it");
}

#[test]
fn clap_usage_errors_exit_2() {
    let site = Site::new();
    let out = site.at(T, &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}

#[test]
fn a_site_hook_that_shadows_ours_fails_the_run_until_define_hook_is_off() {
    // The fake plays a site hook here; asterisk_calls proves it on real Asterisk.
    let site = Site::with_fake(|_| {});
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    std::fs::write(site.path("ast/site-hook"), "").unwrap();
    one_line_error(
        &site.at(T, &["run"]),
        1,
        "comes from extensions_custom.conf, not callquota.conf",
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event = 'reload_failed'"),
        1
    );
    let check = site.at(T, &["check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(stdout(&check).contains("define_hook = false"), "{}", stdout(&check));
    // The site keeps its hook and calls ours from it.
    let text = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&text.replace("flavor = \"freepbx17\"", "flavor = \"freepbx17\"\ndefine_hook = false"));
    site.run(T);
    assert!(!site.include().contains("[macro-dialout-trunk-predial-hook]"));
    assert!(site.include().contains("[callquota-predial]"));
    assert!(stdout(&site.at(T, &["check"])).contains("your own pre-dial hook must call"));
}

/// The reading commands added for admins and managers fail in one line and
/// change nothing: an HTML report to a folder that is not there, a CSV file
/// that is not there, `calls` without MySQL; `status` without Asterisk still
/// shows the CDR figures and says in one line why the live ones are missing.
#[test]
fn reports_imports_and_calls_fail_in_one_line_and_change_nothing() {
    let site = running_site();
    let before = site.dump();
    let page = site.path("no/such/dir/report.html");
    let err = one_line_error(
        &site.at(T, &["report", "--html", page.to_str().unwrap()]),
        1,
        "cannot write",
    );
    assert!(
        err.contains("report.html") && err.contains("/no/such/dir does not exist; create it"),
        "{err}"
    );
    assert!(!page.exists());
    let missing = site.path("staff.csv");
    one_line_error(
        &site.at(T, &["user", "import", "--csv", missing.to_str().unwrap()]),
        2,
        "staff.csv: cannot be read",
    );
    let good = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&good.replace(&common::mysql_root_url(), "mysql://nobody@127.0.0.1:1"));
    one_line_error(&site.at(T, &["calls", "2055"]), 1, "cannot connect to the CDR database");
    site.write_config(&good);
    assert_eq!(site.dump(), before, "nothing changed");

    // Asterisk's CLI fails: the table still shows, one line says why the live figures are missing.
    let start = good.find("asterisk_cli =").unwrap();
    let end = good[start..].find('\n').unwrap() + start;
    let mut no_cli = good.clone();
    no_cli.replace_range(start..end, "asterisk_cli = [\"/bin/false\"]");
    site.write_config(&no_cli);
    let out = site.at(T, &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("2055"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("LIVE USED"), "{}", stdout(&out));
    let note = stderr(&out);
    assert_eq!(note.trim_end().lines().count(), 1, "{note}");
    assert!(note.contains("live figures unavailable"), "{note}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&site.at(T, &["status", "--json"]))).unwrap();
    assert_eq!(json[0]["live_used_s"], serde_json::Value::Null, "{json}");
}

/// The error names the folder that is missing and the key to set, never the
/// random temp file the write would have used.
#[test]
fn a_missing_include_folder_is_named_not_the_temp_file() {
    let site = Site::with_fake(|c| *c = c.replace("/asterisk/callquota.conf", "/gone/callquota.conf"));
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    let err = one_line_error(
        &site.at(T, &["run"]),
        1,
        &format!(
            "the folder {} does not exist; create it (on FreePBX it is /etc/asterisk) or set dialplan.include_file",
            site.path("gone").display()
        ),
    );
    assert!(!err.contains(".callquota."), "{err}");
}

/// Output to a full disk: one line and exit 1, not a panic and a backtrace.
#[test]
fn output_to_a_full_disk_is_one_line() {
    let site = running_site();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = site
        .process()
        .args(["--now", T, "report", "--csv"])
        .stdout(full)
        .output()
        .unwrap();
    one_line_error(&out, 1, "cannot write the output: No space left on device");
}
