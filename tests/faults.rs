//! Faults injected into real runs: crashes at every step, a hanging or
//! refusing MySQL, full and read-only disks, concurrent commands, an admin's
//! sqlite3 session, and the calendar's traps. Each must lose nothing and
//! leave the next healthy run correct.

mod common;

use std::path::Path;
use std::process::Command as Process;

use common::{Call, MOBILE, Site, stderr, stdout};
use mysql::prelude::Queryable;

const T: &str = "2026-11-26T10:00:00";

/// A site whose notices go to `.eml` files, so mail is part of every run.
fn mail_site() -> Site {
    let site =
        Site::with(|c| c.push_str("\n[mail]\ntransport = \"dir\"\ndir = \"MAILDIR\"\nfrom = \"cq@example.com\"\n"));
    std::fs::create_dir(site.path("mail")).unwrap();
    let text = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&text.replace("MAILDIR", &site.path("mail").display().to_string()));
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.add_user("2026-11-26T08:00:00", "2066", "1000");
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 950),
        Call::answered("2066", MOBILE, "2026-11-26 09:10:00", 1200),
    ]);
    site
}

/// The state with the site's own paths taken out, for comparing two sites.
fn normalized(site: &Site) -> String {
    site.dump().replace(&site.dir.path().display().to_string(), "<site>")
}

fn mails(site: &Site) -> usize {
    std::fs::read_dir(site.path("mail")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_run_killed_at_any_step_converges_to_one_clean_run() {
    let clean = mail_site();
    clean.run(T);
    let want_state = normalized(&clean);
    let want_include = clean.include();
    assert_eq!(mails(&clean), 2);

    for step in [
        "after-cdr-read",
        "in-state-transaction",
        "after-state-commit",
        "after-include-write",
        "after-reload",
        "during-mail",
    ] {
        let site = mail_site();
        let out = site
            .cmd()
            .args(["--now", T, "run"])
            .env("CALLQUOTA_CRASH_AT", step)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            None,
            "{step}: the run was not killed: {}",
            stderr(&out)
        );
        site.run(T); // the lock died with the process
        assert_eq!(normalized(&site), want_state, "{step}: state differs from a clean run");
        assert_eq!(site.include(), want_include, "{step}: include differs from a clean run");
        assert_eq!(
            site.loaded_generation(),
            site.include_generation(),
            "{step}: Asterisk has not loaded the final file"
        );
        // Only a crash between the server's acceptance and the mark may resend.
        let expected_mails = if step == "during-mail" { 3 } else { 2 };
        assert_eq!(mails(&site), expected_mails, "{step}: messages");
        site.run(T);
        assert_eq!(normalized(&site), want_state, "{step}: a further run changed the state");
    }
}

#[test]
fn a_hanging_cdr_query_times_out_and_changes_nothing() {
    let site = Site::with(|c| *c = c.replace("timeout_s = 5\n\n[[direction]]", "timeout_s = 1\n\n[[direction]]"));
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.run("2026-11-26T09:00:00");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:10:00", 1000)]);
    let dump = site.dump();
    let include = site.include();
    // Another session holds a write lock on the table: our SELECT waits.
    let url = format!("{}/{}", common::mysql_root_url(), site.db);
    let mut holder = mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).unwrap();
    holder.query_drop("LOCK TABLES cdr WRITE").unwrap();
    let started = std::time::Instant::now();
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("CDR"), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(site.dump(), dump);
    assert_eq!(site.include(), include);
    holder.query_drop("UNLOCK TABLES").unwrap();
    site.run(T);
    assert_eq!(site.user_status(T, "2055")["blocked"], true);
}

#[test]
fn a_refused_login_changes_nothing() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.run("2026-11-26T09:00:00");
    let dump = site.dump();
    let good = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&common::with_cdr_userinfo(&good, "nobody_here:wrong"));
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot connect to the CDR database") && !stderr(&out).contains("wrong@"));
    assert_eq!(site.dump(), dump);
}

/// A small tmpfs mounted inside the site (root only, like CI), unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let ok = Process::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(ok.success(), "mounting a tmpfs needs root (CI runs as root)");
        SmallDisk(at.to_path_buf())
    }

    /// Fills the disk to the last byte.
    fn fill(&self) {
        let _ = Process::new("dd")
            .args(["if=/dev/zero", "bs=4096"])
            .arg(format!("of={}", self.0.join("filler").display()))
            .stderr(std::process::Stdio::null())
            .status();
    }

    fn read_only(&self) {
        assert!(
            Process::new("mount")
                .args(["-o", "remount,ro"])
                .arg(&self.0)
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Process::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_or_read_only_disk_under_the_include_file_keeps_the_old_file_whole() {
    // The disk is mounted over Asterisk's config directory: the fake serves.
    let site = Site::with_fake(|_| {});
    let disk = SmallDisk::mount(&site.path("asterisk"), "64k");
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.run("2026-11-26T09:00:00");
    let before = site.include();
    disk.fill();
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:10:00", 1000)]);
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("asterisk/callquota.conf") && err.contains("No space left"),
        "{err}"
    );
    assert_eq!(site.include(), before, "a truncated include file reached Asterisk");
    std::fs::remove_file(site.path("asterisk/filler")).unwrap();
    disk.read_only();
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("asterisk/callquota.conf") && stderr(&out).contains("Read-only"),
        "{}",
        stderr(&out)
    );
    assert_eq!(site.include(), before);
    assert!(
        Process::new("mount")
            .args(["-o", "remount,rw"])
            .arg(site.path("asterisk"))
            .status()
            .unwrap()
            .success()
    );
    site.run(T);
    assert!(site.include().contains("2055,1,Return(DENY)"));
}

#[test]
fn a_full_or_read_only_disk_under_the_state_changes_nothing() {
    let site = Site::with(|c| *c = c.replace("/state.db\"", "/var/state.db\""));
    let disk = SmallDisk::mount(&site.path("var"), "1m");
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.run("2026-11-26T09:00:00");
    let bytes = |site: &Site| std::fs::read(site.path("var/state.db")).unwrap();
    let before = bytes(&site);
    let include = site.include();
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:10:00", 1000)]);
    disk.fill();
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("var/state.db"), "{}", stderr(&out));
    std::fs::remove_file(site.path("var/filler")).unwrap();
    assert_eq!(bytes(&site), before, "the state changed on a full disk");
    assert_eq!(site.include(), include);
    disk.read_only();
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("var/state.db"), "{}", stderr(&out));
    assert_eq!(bytes(&site), before);
    assert_eq!(site.include(), include);
}

#[test]
fn an_admin_holding_sqlite3_open_does_not_break_runs() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.run("2026-11-26T09:00:00");
    // A reader in an open transaction, as `sqlite3` with BEGIN would hold.
    let reader = site.state();
    reader.execute_batch("BEGIN; SELECT COUNT(*) FROM ledger;").unwrap();
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:10:00", 600)]);
    site.run("2026-11-26T09:20:00");
    // A writer that holds its lock for a moment is absorbed by the busy timeout.
    let writer = site.state();
    writer
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO meta (key, value) VALUES ('admin', 'x');")
        .unwrap();
    let run = site
        .process()
        .args(["--now", "2026-11-26T09:30:00", "run"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    writer.execute_batch("COMMIT").unwrap();
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(site.user_status("2026-11-26T09:30:00", "2055")["used_s"], 600);
}

#[test]
fn runs_grants_and_user_changes_at_once_lose_no_update() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 900)]);
    let mut children = Vec::new();
    for i in 0..6 {
        let now = format!("2026-11-26T10:00:0{i}");
        children.push(site.process().args(["--now", &now, "run"]).spawn().unwrap());
        children.push(
            site.process()
                .args(["--now", &now, "grant", "2055", "100"])
                .spawn()
                .unwrap(),
        );
        children.push(
            site.process()
                .args(["--now", &now, "status", "--json"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        children.push(
            site.process()
                .args([
                    "--now",
                    &now,
                    "user",
                    "add",
                    &format!("30{i}"),
                    "--name",
                    "N",
                    "--daily-limit",
                    "60",
                ])
                .spawn()
                .unwrap(),
        );
    }
    let mut lock_busy = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => {}
            Some(75) => lock_busy += 1, // a concurrent cron run: refused, changes nothing
            other => panic!("failed ({other:?}): {}", stderr(&out)),
        }
    }
    assert!(lock_busy <= 6);
    assert!(!stderr(&site.at(T, &["log"])).contains("locked"));
    site.run("2026-11-26T10:01:00");
    let s = site.user_status("2026-11-26T10:01:00", "2055");
    assert_eq!(s["granted_s"], 600, "every grant counted");
    assert_eq!(site.count("SELECT COUNT(*) FROM users"), 7);
    assert_eq!(site.count("SELECT COUNT(*) FROM ledger WHERE day = '2026-11-26'"), 7);
}

#[test]
fn dst_days_in_berlin_are_23_and_25_hours_long() {
    let site = Site::with(|c| {
        *c = c
            .replace("Asia/Almaty", "Europe/Berlin")
            .replace("[cdr]\n", "[cdr]\nutc = true\n");
    });
    site.add_user("2026-10-24T08:00:00", "2055", "1000");
    site.insert(&[
        // calldate in UTC (CDRUSEGMT). Berlin local 2026-10-25 00:30 CEST = 10-24 22:30 UTC.
        Call::answered("2055", MOBILE, "2026-10-24 22:30:00", 100),
        // 02:30 local happens twice on 10-25; the second (CET) is 01:30 UTC.
        Call::answered("2055", MOBILE, "2026-10-25 01:30:00", 100),
        // 23:30 CET local on 10-25 = 22:30 UTC: still the 25th.
        Call::answered("2055", MOBILE, "2026-10-25 22:30:00", 100),
        // 00:30 CET on 10-26 = 10-25 23:30 UTC: the 26th.
        Call::answered("2055", MOBILE, "2026-10-25 23:30:00", 7),
        // Spring forward 2026-03-29: 01:59 CET = 00:59 UTC, 03:00 CEST = 01:00 UTC.
    ]);
    site.run("2026-10-24T12:00:00");
    site.run("2026-10-26T12:00:00+01:00");
    let day: serde_json::Value =
        serde_json::from_str(&site.ok("2026-10-26T12:00:00", &["status", "--day", "2026-10-25", "--json"])).unwrap();
    assert_eq!(day[0]["used_s"], 300);
    assert_eq!(site.user_status("2026-10-26T12:00:00", "2055")["used_s"], 7);

    let spring = Site::with(|c| *c = c.replace("Asia/Almaty", "Europe/Berlin"));
    spring.add_user("2026-03-29T00:10:00", "2055", "1000");
    spring.insert(&[
        Call::answered("2055", MOBILE, "2026-03-29 01:59:00", 10), // local time, CET
        Call::answered("2055", MOBILE, "2026-03-29 03:00:00", 20), // local time, CEST
        Call::answered("2055", MOBILE, "2026-03-29 23:59:59", 40),
    ]);
    // 02:30 does not exist that day.
    let out = spring.at("2026-03-29T02:30:00", &["run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    spring.run("2026-03-30T00:01:00");
    let day: serde_json::Value =
        serde_json::from_str(&spring.ok("2026-03-30T00:01:00", &["status", "--day", "2026-03-29", "--json"])).unwrap();
    assert_eq!(day[0]["used_s"], 70);
}

#[test]
fn runs_just_before_and_after_midnight_split_the_days() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-26 23:59:58", 100),
        Call::answered("2055", MOBILE, "2026-11-27 00:00:00", 50),
    ]);
    site.run("2026-11-26T23:59:59");
    assert_eq!(site.user_status("2026-11-26T23:59:59", "2055")["used_s"], 100);
    site.run("2026-11-27T00:00:01");
    let s = site.user_status("2026-11-27T00:00:01", "2055");
    assert_eq!(
        (s["used_s"].as_u64(), s["carried_in_s"].as_u64()),
        (Some(50), Some(900))
    );
}

#[test]
fn a_cdr_row_arriving_after_its_day_settled_is_ignored() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.run("2026-11-26T12:00:00");
    site.run("2026-11-27T00:05:00");
    site.run("2026-11-27T01:00:00");
    let dump = site.dump();
    // The 26th settled 1,000 s + 15 min after midnight (no capped call can
    // end later); a row of it that shows up only now changes nothing.
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 23:58:00", 500)]);
    site.run("2026-11-27T02:00:00");
    assert_eq!(site.dump(), dump, "a settled day changed");
}

#[test]
fn hostile_cdr_rows_are_skipped_or_clamped() {
    let site = Site::new();
    site.sql(
        "ALTER TABLE cdr MODIFY cnum VARCHAR(80) NULL, MODIFY dst VARBINARY(80) NULL, MODIFY billsec INT(11) NULL, \
         MODIFY dstchannel VARCHAR(80) NULL",
    );
    site.add_user("2026-11-26T08:00:00", "2055", "24h");
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 60),
        Call::answered("2055", MOBILE, "2026-11-26 09:01:00", -500),
        Call::answered("2055", MOBILE, "2026-11-26 09:02:00", 2_147_483_647),
        Call::answered("2055", "8701'; DROP TABLE cdr; --", "2026-11-26 09:03:00", 60),
        Call::answered("20;55", MOBILE, "2026-11-26 09:04:00", 60),
    ]);
    site.sql("INSERT INTO cdr (calldate, cnum, dst, disposition, billsec) VALUES ('2026-11-26 09:05:00', NULL, NULL, 'ANSWERED', NULL)");
    site.sql("INSERT INTO cdr (calldate, cnum, dst, disposition, billsec) VALUES ('2026-11-26 09:06:00', '2055', X'383730FF3131323334353637', 'ANSWERED', 30)");
    site.sql("INSERT INTO cdr (calldate, cnum, dst, disposition, billsec, dstchannel) VALUES ('2026-11-26 09:07:00', '2055', '87011234567', 'ANSWERED', 30, NULL)");
    site.run(T);
    // 60 + one day (a huge billsec is clamped); a NULL dstchannel reached no
    // trunk (a refusal answered by the PBX itself), so no carrier billed it.
    assert_eq!(site.user_status(T, "2055")["used_s"], 60 + 86_400);
    assert!(!site.include().contains("20;55"));
}

#[test]
fn check_warns_about_loose_permissions_and_a_writable_cdr_account() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.run(T);
    std::fs::set_permissions(&site.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(site.path("state.db"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let text = stdout(&site.at(T, &["check"]));
    assert!(
        text.contains("config") && text.contains("is readable by every user and holds a password"),
        "{text}"
    );
    assert!(text.contains("state.db is writable by every user"), "{text}");
    assert!(text.contains("the CDR account may write"), "{text}");

    // A dedicated SELECT-only account passes: the one .ci/mariadb-up made, or one made here as root.
    let good = std::fs::read_to_string(&site.config).unwrap();
    let (userinfo, made) = match std::env::var("CALLQUOTA_TEST_MYSQL_RO_URL") {
        Ok(url) => (
            url.trim_start_matches("mysql://")
                .rsplit_once('@')
                .map(|(u, _)| u.to_string())
                .unwrap(),
            None,
        ),
        Err(_) => {
            let user = format!("ro_{}", &site.db[3..].replace('_', "")[..12]);
            site.sql(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"));
            site.sql(&format!("GRANT SELECT ON `{}`.`cdr` TO '{user}'@'%'", site.db));
            (format!("{user}:pw"), Some(user))
        }
    };
    site.write_config(&common::with_cdr_userinfo(&good, &userinfo));
    std::fs::set_permissions(&site.config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = site.at(T, &["check"]);
    if let Some(user) = made {
        site.sql(&format!("DROP USER '{user}'@'%'"));
    }
    let text = stdout(&out);
    assert!(text.contains("ok    the CDR account can only read"), "{text}");
    assert!(!text.contains("readable by every user"), "{text}");
}
