//! A wrong clock must never end enforcement: a future `--now`, a clock that
//! jumped ahead, and the way back (`rewind`).

mod common;

use common::*;

const T: &str = "2026-11-26T10:00:00";

fn site_with_user() -> Site {
    let site = Site::new();
    site.add_user(T, "2055", "30m");
    site.run(T);
    site
}

#[test]
fn a_future_now_is_refused_by_state_changing_commands_only() {
    let site = site_with_user();
    let future = "2099-01-01T10:00:00";
    let before = site.dump();
    for args in [
        &["run"][..],
        &["grant", "2055", "10m"],
        &["user", "add", "2066", "--name", "X", "--daily-limit", "10m"],
        &["user", "set", "2055", "--daily-limit", "1h"],
        &["user", "remove", "2055"],
        &["mail", "flush"],
        &["rewind"],
    ] {
        let out = site.strict_cmd().arg("--now").arg(future).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--allow-future"), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1);
    }
    assert_eq!(site.dump(), before, "nothing changed");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["log"],
        &["render"],
        &["classify", MOBILE],
        &["user", "list"],
        &["mail", "list"],
        &["run", "--dry-run", "--force"],
    ] {
        let out = site.strict_cmd().arg("--now").arg(future).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn read_only_commands_work_on_a_state_that_is_ahead_and_rewind_brings_it_back() {
    let site = site_with_user();
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 10:10:00", 600)]);
    // A mistaken run two days ahead closes the 26th and the 27th.
    site.run("2026-11-28T09:00:00");
    assert_eq!(site.status("2026-11-28T09:00:00")[0]["carried_in_s"], 1800 + 1200);
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["log"],
        &["render"],
        &["user", "list"],
        &["mail", "list"],
    ] {
        let out = site.at("2026-11-26T11:00:00", args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let out = site.at("2026-11-26T11:00:00", &["status"]);
    assert!(stderr(&out).contains("ahead of the clock"), "{}", stderr(&out));
    let out = site.at("2026-11-26T11:00:00", &["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("went backwards"), "{}", stderr(&out));

    // The way back: a call made after the mistaken run still counts on the 26th.
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 10:50:00", 300)]);
    let out = site.ok("2026-11-26T11:00:00", &["rewind"]);
    assert!(out.contains("rewound the state from 2026-11-28 to 2026-11-26"), "{out}");
    let row = site.user_status("2026-11-26T11:00:00", "2055");
    assert_eq!(row["used_s"], 900);
    assert_eq!(row["closed"], false);
    assert_eq!(site.count("SELECT COUNT(*) FROM ledger WHERE day > '2026-11-26'"), 0);
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event = 'clock_rewound'"),
        1
    );
    // Rewinding a state that is not ahead changes nothing.
    let before = site.dump();
    let out = site.ok("2026-11-26T11:00:00", &["rewind"]);
    assert!(out.contains("nothing to rewind"), "{out}");
    assert_eq!(site.dump(), before);
    // And the days then close normally, with the right carry.
    site.run("2026-11-27T09:00:00");
    assert_eq!(
        site.user_status("2026-11-27T09:00:00", "2055")["carried_in_s"],
        1800 - 900
    );
}

#[test]
fn a_clock_far_ahead_needs_force_and_a_forced_catch_up_is_bounded() {
    let site = site_with_user();
    site.add_user(T, "2066", "10m");
    site.run(T);
    let before = site.dump();
    let out = site.at("2126-11-26T10:00:00", &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("run --force"), "{}", stderr(&out));
    assert_eq!(site.dump(), before, "a refused jump changes nothing");
    // Three days off (a long weekend) is not a clock fault: the run closes each day in order.
    site.ok("2026-11-29T10:00:00", &["run"]);
    assert_eq!(site.count("SELECT COUNT(*) FROM ledger WHERE extension = '2055'"), 4);
    // Fifteen days past the last run (more than max_jump_days, 14) needs --force.
    let before = site.dump();
    let out = site.at("2026-12-14T10:00:00", &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("run --force"), "{}", stderr(&out));
    assert_eq!(site.dump(), before);
    // A hundred years: at most a year of ledger rows per user, and the user stays limited.
    site.ok("2126-11-26T10:00:00", &["run", "--force"]);
    let rows = site.count("SELECT COUNT(*) FROM ledger WHERE extension = '2055'");
    assert!(rows <= 4 + 367, "{rows} ledger rows");
    let row = site.user_status("2126-11-26T10:00:00", "2055");
    let allowance = row["allowance_s"].as_u64().unwrap();
    assert!(allowance <= 1800 * 367, "allowance {allowance}");
    assert!(site.include().contains("exten => 2055,1,Return("));
}
