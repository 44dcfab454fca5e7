//! What callquota promises about calls, proven with real calls through a
//! real Asterisk (22 for FreePBX 17, 20 with app_macro for FreePBX 16) and a
//! FreePBX-shaped outbound path (see tests/common/asterisk.rs). Run one alone:
//!   cargo test --test asterisk_calls capped_freepbx17

mod common;

use common::asterisk::{Flavor, Pbx};
use common::*;

fn status_of(site: &Site, ext: &str) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_str(&site.ok_now(&["status", "--json"])).unwrap();
    all.as_array()
        .and_then(|a| a.iter().find(|r| r["extension"] == ext).cloned())
        .unwrap_or_else(|| panic!("{ext} not in status"))
}

/// A user with 12 s left is cut at about 12 s; after `run` reads that CDR row
/// the user is refused (no paid talk) while a non-paid number and an
/// untracked extension still connect; `grant` reopens at once with its cap.
fn capped_refused_then_granted(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    site.ok_now(&["user", "add", "2055", "--name", "Vasya", "--daily-limit", "12"]);
    site.ok_now(&["run"]);
    assert!(site.include().contains("exten => 2055,1,Return(12000:0)"));

    let capped = pbx.call("2055", MOBILE, 30);
    assert_eq!(
        (capped.cnum.as_str(), capped.dst.as_str()),
        ("2055", MOBILE),
        "{capped:?}"
    );
    assert_eq!(capped.disposition, "ANSWERED", "{capped:?}");
    assert!((11..=13).contains(&capped.billsec), "cut at about 12 s: {capped:?}");

    site.ok_now(&["run"]);
    let row = status_of(&site, "2055");
    assert_eq!(row["blocked"], true, "{row}");
    let refused = pbx.call("2055", MOBILE, 30);
    assert_eq!(refused.billsec, 0, "no paid talk once blocked: {refused:?}");
    assert_eq!(
        refused.cause, "21",
        "refused with cause 21 (call rejected): {refused:?}"
    );
    assert_ne!(refused.disposition, "ANSWERED", "{refused:?}");

    let landline = pbx.call("2055", LANDLINE, 3);
    assert_eq!(
        (landline.disposition.as_str(), landline.billsec),
        ("ANSWERED", 3),
        "{landline:?}"
    );
    let untracked = pbx.call("2066", MOBILE, 3);
    assert_eq!(
        (untracked.disposition.as_str(), untracked.billsec),
        ("ANSWERED", 3),
        "{untracked:?}"
    );

    site.ok_now(&["grant", "2055", "5"]);
    let granted = pbx.call("2055", MOBILE, 30);
    assert_eq!(granted.disposition, "ANSWERED", "{granted:?}");
    assert!(
        (4..=6).contains(&granted.billsec),
        "cut at the granted 5 s: {granted:?}"
    );
}

#[test]
fn capped_refused_then_granted_freepbx17() {
    capped_refused_then_granted(Flavor::FreePbx17);
}

#[test]
fn capped_refused_then_granted_freepbx16() {
    capped_refused_then_granted(Flavor::FreePbx16);
}

/// The FreePBX-16 and -17 shapes of a site's own pre-dial hook, defined in
/// extensions_custom.conf before our file, with `extra` as its first line.
fn site_hook(flavor: Flavor, extra: &str) -> String {
    let end = match flavor {
        Flavor::FreePbx17 => "Return()",
        Flavor::FreePbx16 => "MacroExit()",
    };
    format!(
        "[macro-dialout-trunk-predial-hook]\nexten => s,1,NoOp(the site's CRM tracking)\n{extra} same => n,{end}\n\n\
         #tryinclude callquota.conf\n"
    )
}

/// A site's own hook shadows ours: `run` and `check` say so; with
/// `define_hook = false` and the one documented line in the site's hook,
/// calls are checked again.
fn a_site_hook_is_detected_and_the_one_line_fix_works(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    site.ok_now(&["user", "add", "2055", "--name", "Vasya", "--daily-limit", "20"]);
    pbx.set_custom(&site_hook(flavor, ""));
    let out = site.strict_cmd().arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("comes from extensions_custom.conf"),
        "{}",
        stderr(&out)
    );
    let out = site.strict_cmd().arg("check").output().unwrap();
    assert!(
        stdout(&out).contains("FAIL  the live [macro-dialout-trunk-predial-hook] comes from extensions_custom.conf")
    );
    // Unchecked: the paid call talks its full 6 s.
    assert_eq!(pbx.call("2055", MOBILE, 6).billsec, 6);

    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&config.replace("[dialplan]\n", "[dialplan]\ndefine_hook = false\n"));
    pbx.set_custom(&site_hook(flavor, " same => n,Gosub(callquota-predial,s,1)\n"));
    site.ok_now(&["run"]);
    // 20 s less the 6 s that went unchecked.
    let capped = pbx.call("2055", MOBILE, 30);
    assert!(
        (13..=15).contains(&capped.billsec),
        "checked again through the site's hook: {capped:?}"
    );
    assert!(stdout(&site.strict_cmd().arg("check").output().unwrap()).contains("define_hook = false"));
}

#[test]
fn a_site_hook_is_detected_and_the_one_line_fix_works_freepbx17() {
    a_site_hook_is_detected_and_the_one_line_fix_works(Flavor::FreePbx17);
}

#[test]
fn a_site_hook_is_detected_and_the_one_line_fix_works_freepbx16() {
    a_site_hook_is_detected_and_the_one_line_fix_works(Flavor::FreePbx16);
}

/// The generation is confirmed live after each reload, and a file that is
/// not wired in is reported; the wrong flavor is caught by `check` before it
/// reaches calls; the inert file that removal leaves lets every call through.
fn wiring_flavor_and_disarm(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    site.ok_now(&["user", "add", "2055", "--name", "Vasya", "--daily-limit", "4"]);
    pbx.set_custom("; callquota.conf is not wired in\n");
    let out = site.strict_cmd().arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("did not take effect"), "{}", stderr(&out));
    pbx.set_custom("#tryinclude callquota.conf\n");
    let out = site.ok_now(&["run", "--verbose"]);
    assert!(out.contains("reloaded and confirmed live"), "{out}");

    let wrong = match flavor {
        Flavor::FreePbx17 => "freepbx16",
        Flavor::FreePbx16 => "freepbx17",
    };
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&config.replace(
        &format!("flavor = \"{}\"", flavor.config_name()),
        &format!("flavor = \"{wrong}\""),
    ));
    let out = site.strict_cmd().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("FAIL  dialplan.flavor is {wrong} but FreePBX's trunk macro")),
        "{}",
        stdout(&out)
    );
    site.write_config(&config);
    assert!(stdout(&site.strict_cmd().arg("check").output().unwrap()).contains("matches the live trunk macro"));

    // Block 2055, then disarm: every call goes through uncapped.
    assert!((3..=5).contains(&pbx.call("2055", MOBILE, 30).billsec));
    site.ok_now(&["run"]);
    assert!(site.include().contains("Return(DENY)"));
    site.ok_now(&["disarm"]);
    assert_eq!(
        pbx.call("2055", MOBILE, 6).billsec,
        6,
        "the inert include limits nothing"
    );
    assert_eq!(pbx.call("2066", LANDLINE, 2).billsec, 2);
}

#[test]
fn wiring_flavor_and_disarm_freepbx17() {
    wiring_flavor_and_disarm(Flavor::FreePbx17);
}

#[test]
fn wiring_flavor_and_disarm_freepbx16() {
    wiring_flavor_and_disarm(Flavor::FreePbx16);
}

/// Talk time of answered paid calls of `ext` in `rows`.
fn talked(rows: &[common::asterisk::CdrRow]) -> i64 {
    rows.iter()
        .filter(|r| r.disposition == "ANSWERED")
        .map(|r| r.billsec)
        .sum()
}

/// The live guard: with no run between them, back-to-back, simultaneous and
/// staggered calls of one user never talk longer, together, than the
/// allowance (plus at most 1 s per call); a run between calls changes nothing.
fn the_live_guard_holds_between_runs(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    for ext in ["2055", "2066", "2077", "2088"] {
        site.ok_now(&["user", "add", ext, "--name", "U", "--daily-limit", "20"]);
    }
    site.ok_now(&["run"]);

    // Back to back: 12 s, then the 8 s left, then nothing.
    let calls: Vec<_> = [12, 20, 5].iter().map(|&talk| pbx.call("2055", MOBILE, talk)).collect();
    assert_eq!(calls[0].billsec, 12, "{calls:?}");
    assert!((7..=9).contains(&calls[1].billsec), "{calls:?}");
    assert_eq!(calls[2].billsec, 0, "nothing left: refused at once: {calls:?}");
    assert_eq!(calls[2].cause, "21", "{calls:?}");
    assert!(talked(&calls) <= 20 + 2, "{calls:?}");

    // At the same time: the first reserves the allowance, the second is refused.
    let before = pbx.cdr_rows().len();
    pbx.place("2066", MOBILE, 20);
    pbx.place("2066", MOBILE2, 20);
    let rows = pbx.phone_rows_after(before, 2, std::time::Duration::from_secs(60));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        talked(&rows) <= 21,
        "simultaneous calls talked {} s: {rows:?}",
        talked(&rows)
    );
    assert_eq!(rows.iter().filter(|r| r.billsec > 0).count(), 1, "{rows:?}");

    // Staggered: a call placed 5 s into another finds the allowance reserved.
    let before = pbx.cdr_rows().len();
    pbx.place("2077", MOBILE, 15);
    std::thread::sleep(std::time::Duration::from_secs(5));
    pbx.place("2077", MOBILE2, 20);
    let rows = pbx.phone_rows_after(before, 2, std::time::Duration::from_secs(60));
    assert!(
        talked(&rows) <= 21,
        "staggered calls talked {} s: {rows:?}",
        talked(&rows)
    );

    // A run between calls: the CDR catches up, nothing is counted twice.
    assert_eq!(pbx.call("2088", MOBILE, 10).billsec, 10);
    site.ok_now(&["run"]);
    assert_eq!(status_of(&site, "2088")["used_s"], 10);
    let second = pbx.call("2088", MOBILE, 30);
    assert!((9..=11).contains(&second.billsec), "10 s left after a run: {second:?}");
    // Untracked users and non-paid calls are untouched by the guard.
    assert_eq!(pbx.call("2099", MOBILE, 3).billsec, 3);
    assert_eq!(pbx.call("2055", LANDLINE, 3).billsec, 3);
}

#[test]
fn the_live_guard_holds_between_runs_freepbx17() {
    the_live_guard_holds_between_runs(Flavor::FreePbx17);
}

#[test]
fn the_live_guard_holds_between_runs_freepbx16() {
    the_live_guard_holds_between_runs(Flavor::FreePbx16);
}

/// A crash of Asterisk mid-call (kill -9: no hangup handler runs) must not
/// leave the user locked out; a wiped AstDB degrades to the CDR figure, never
/// to "unlimited".
fn a_crash_or_a_wiped_astdb_never_locks_out_or_unlimits(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(mut pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    site.ok_now(&["user", "add", "2055", "--name", "Vasya", "--daily-limit", "20"]);
    site.ok_now(&["run"]);
    // A call that reserves all 20 s, then Asterisk is killed under it.
    pbx.place("2055", MOBILE, 60);
    std::thread::sleep(std::time::Duration::from_secs(3));
    pbx.crash_and_restart();
    let after_crash = pbx.call("2055", MOBILE, 5);
    assert_eq!(
        after_crash.billsec, 5,
        "the dead call's reservation does not lock the user out: {after_crash:?}"
    );

    // The CDR now shows 5 s; AstDB is wiped: the CDR figure still holds.
    site.ok_now(&["run"]);
    pbx.cli("database deltree callquota");
    let capped = pbx.call("2055", MOBILE, 30);
    assert!((14..=16).contains(&capped.billsec), "20 - 5 by the CDR: {capped:?}");
}

#[test]
fn a_crash_or_a_wiped_astdb_never_locks_out_or_unlimits_freepbx17() {
    a_crash_or_a_wiped_astdb_never_locks_out_or_unlimits(Flavor::FreePbx17);
}

#[test]
fn a_crash_or_a_wiped_astdb_never_locks_out_or_unlimits_freepbx16() {
    a_crash_or_a_wiped_astdb_never_locks_out_or_unlimits(Flavor::FreePbx16);
}

/// Trunk failover: FreePBX runs the hook once per trunk; the call keeps its
/// one reservation (trunk 2 is not refused by the call's own reservation)
/// and is settled once. Five calls at once from one user whose allowance
/// fits one: exactly one gets through. Twenty users at once: nobody blocks
/// anybody else.
fn failover_and_concurrency(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    site.ok_now(&["user", "add", "2055", "--name", "A", "--daily-limit", "20"]);
    site.ok_now(&["user", "add", "2056", "--name", "B", "--daily-limit", "10"]);
    let many: Vec<String> = (3000..3020).map(|e| e.to_string()).collect();
    for ext in &many {
        site.ok_now(&["user", "add", ext, "--name", "C", "--daily-limit", "30"]);
    }
    site.ok_now(&["run"]);

    let before = pbx.cdr_rows().len();
    pbx.place_with_failover("2055", MOBILE, 30);
    let rows = pbx.phone_rows_after(before, 2, std::time::Duration::from_secs(60));
    let answered: Vec<_> = rows.iter().filter(|r| r.disposition == "ANSWERED").collect();
    assert_eq!(answered.len(), 1, "trunk 2 carried the call: {rows:?}");
    assert!(
        (19..=21).contains(&answered[0].billsec),
        "capped once, at 20 s: {rows:?}"
    );
    // Settled once: nothing is left, the next call is refused at once.
    assert_eq!(pbx.call("2055", MOBILE, 5).billsec, 0);

    let before = pbx.cdr_rows().len();
    for _ in 0..5 {
        pbx.place("2056", MOBILE, 8);
    }
    let rows = pbx.phone_rows_after(before, 5, std::time::Duration::from_secs(60));
    assert_eq!(
        rows.iter().filter(|r| r.billsec > 0).count(),
        1,
        "exactly one of five: {rows:?}"
    );
    assert!(talked(&rows) <= 10, "{rows:?}");

    let before = pbx.cdr_rows().len();
    for ext in &many {
        pbx.place(ext, MOBILE, 3);
    }
    let rows = pbx.phone_rows_after(before, many.len(), std::time::Duration::from_secs(90));
    let connected = rows.iter().filter(|r| r.billsec == 3).count();
    assert_eq!(connected, many.len(), "every user's call connects: {rows:?}");
}

#[test]
fn failover_and_concurrency_freepbx17() {
    failover_and_concurrency(Flavor::FreePbx17);
}

#[test]
fn failover_and_concurrency_freepbx16() {
    failover_and_concurrency(Flavor::FreePbx16);
}

#[test]
fn check_verifies_the_live_guard_modules_on_real_asterisk() {
    let site = Site::new();
    let Some(pbx) = &site.pbx else { return };
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    site.run("2026-11-26T09:00:00");
    let out = site.at("2026-11-26T09:00:00", &["check"]);
    assert!(
        stdout(&out).contains("ok    the live guard's modules are loaded"),
        "{}",
        stdout(&out)
    );
    pbx.cli("module unload func_lock.so");
    let out = site.at("2026-11-26T09:00:00", &["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL  the live guard needs func_lock.so loaded"),
        "{}",
        stdout(&out)
    );
}

/// Busy, unanswered and caller-cancelled paid calls release what they
/// reserved and add no talk time. While a call rings it holds what it
/// reserved (all that is left), so a second call of the user is refused;
/// `status` shows that beside the CDR's figure, and the live talk time
/// before the next run has read the CDR.
fn an_unanswered_call_settles_to_zero(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    site.ok_now(&["user", "add", "2055", "--name", "A", "--daily-limit", "10"]);
    site.ok_now(&["run"]);
    let busy = pbx.call("2055", MOBILE, 0);
    assert_ne!(busy.disposition, "ANSWERED", "{busy:?}");
    assert_eq!(busy.billsec, 0);
    let no_answer = pbx.call_unanswered("2055", MOBILE, 3);
    assert_eq!(no_answer.disposition, "NO ANSWER", "{no_answer:?}");

    // A ringing call holds the whole allowance until it ends.
    pbx.place_ringing("2055", MOBILE, 60);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let ringing = status_of(&site, "2055");
    assert_eq!(
        (ringing["reserved_s"].as_u64(), ringing["live_used_s"].as_u64()),
        (Some(10), Some(0)),
        "{ringing}\n{}\n{}",
        pbx.cli("database show callquota"),
        pbx.cli("group show channels")
    );
    let refused = pbx.call("2055", MOBILE2, 5);
    assert_eq!((refused.billsec, refused.cause.as_str()), (0, "21"), "{refused:?}");
    let before = pbx.cdr_rows().len();
    pbx.hang_up_caller("2055");
    let cancelled = pbx.phone_rows_after(before, 1, std::time::Duration::from_secs(30));
    assert_ne!(cancelled[0].disposition, "ANSWERED", "{cancelled:?}");
    let after = status_of(&site, "2055");
    assert_eq!(
        (after["reserved_s"].as_u64(), after["live_used_s"].as_u64()),
        (Some(0), Some(0)),
        "{after}"
    );

    let next = pbx.call("2055", MOBILE, 30);
    assert!(
        (9..=11).contains(&next.billsec),
        "busy, unanswered and cancelled calls left the allowance whole: {next:?}"
    );
    let live = status_of(&site, "2055");
    assert_eq!(live["used_s"], 0, "no run has read the CDR yet: {live}");
    assert_eq!(live["live_used_s"].as_u64(), Some(next.billsec as u64), "{live}");
    site.ok_now(&["run"]);
    let read = status_of(&site, "2055");
    assert_eq!(read["used_s"].as_u64(), read["live_used_s"].as_u64(), "{read}");
    let table = site.ok_now(&["status"]);
    assert!(table.contains("LIVE USED") && table.contains("IN CALLS"), "{table}");
}

#[test]
fn an_unanswered_call_settles_to_zero_freepbx17() {
    an_unanswered_call_settles_to_zero(Flavor::FreePbx17);
}

#[test]
fn an_unanswered_call_settles_to_zero_freepbx16() {
    an_unanswered_call_settles_to_zero(Flavor::FreePbx16);
}

/// Midnight, with calls on both sides. The live counters are per day, and
/// the include's day decides: a run after midnight gives the new day a
/// clean start (no counters of the old day), while a call of the old day
/// still talking holds its reservation against the new day too, because its
/// CDR row arrives after the old day closed and is charged to the new one.
/// The run that closes the next day deletes the old day's counters.
/// Asterisk keeps the real clock, so "midnight" is the next real day given
/// to `run --now`; every row lands on the real day and reaches the new day
/// as a late row, as rows of calls in progress at midnight do.
fn midnight_with_calls_on_both_sides(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let at = |day: chrono::NaiveDate, time: &str| format!("{day}T{time}");
    let day_key = |day: chrono::NaiveDate| day.format("%Y%m%d").to_string();
    site.ok_now(&["user", "add", "2055", "--name", "A", "--daily-limit", "20"]);
    site.ok_now(&["run"]);
    assert_eq!(pbx.call("2055", MOBILE, 5).billsec, 5);

    // A call that reserves the 15 s left is talking when the new day's file arrives.
    let before = pbx.cdr_rows().len();
    pbx.place("2055", MOBILE, 40);
    std::thread::sleep(std::time::Duration::from_secs(2));
    site.ok(&at(tomorrow, "00:00:30"), &["run"]);
    let new_day: serde_json::Value =
        serde_json::from_str(&site.ok(&at(tomorrow, "00:00:31"), &["status", "--json"])).unwrap();
    let allowance = new_day[0]["allowance_s"].as_i64().unwrap();
    assert!(allowance > 20, "the unused 15 s were carried: {new_day}");
    // 15 s less the few hundred ms by which ANSWEREDTIME_MS exceeds the first call's billsec.
    let held = new_day[0]["reserved_s"].as_i64().unwrap();
    assert!(
        (14..=15).contains(&held),
        "the old day's call holds its 15 s: {new_day}"
    );
    assert_eq!(new_day[0]["live_used_s"].as_u64(), Some(0), "a clean start: {new_day}");

    // A new-day call gets the new allowance less what the old day's call holds.
    pbx.place("2055", MOBILE2, 60);
    let rows = pbx.phone_rows_after(before, 2, std::time::Duration::from_secs(120));
    let old_call = rows.iter().find(|r| r.dst == MOBILE).unwrap();
    let new_call = rows.iter().find(|r| r.dst == MOBILE2).unwrap();
    assert!((14..=16).contains(&old_call.billsec), "capped on the old day: {rows:?}");
    let expected = allowance - held;
    assert!(
        (expected - 1..=expected + 1).contains(&new_call.billsec),
        "{allowance} s less the old call's {held}: {rows:?}"
    );
    // Both settled into the new day (the old call too: its row is the new day's late row).
    let db = pbx.cli(&format!("database show callquota/{}", day_key(tomorrow)));
    let live: serde_json::Value =
        serde_json::from_str(&site.ok(&at(tomorrow, "00:05:00"), &["status", "--json"])).unwrap();
    let live_used = live[0]["live_used_s"].as_i64().unwrap();
    assert!(
        (old_call.billsec + new_call.billsec - 1..=old_call.billsec + new_call.billsec + 1).contains(&live_used),
        "{live}\n{db}"
    );
    site.ok(&at(tomorrow, "00:05:00"), &["run"]);
    let read: serde_json::Value =
        serde_json::from_str(&site.ok(&at(tomorrow, "00:05:01"), &["status", "--json"])).unwrap();
    assert_eq!(
        read[0]["used_s"].as_i64(),
        Some(old_call.billsec + new_call.billsec),
        "the CDR agrees: both calls charged once, to the new day: {read}"
    );
    // Billsec rounds down what ANSWEREDTIME_MS holds: nothing is left either way.
    let refused = pbx.call("2055", MOBILE, 5);
    assert_eq!(
        refused.billsec, 0,
        "the new day's allowance is spent: {refused:?} {read}"
    );

    // The old day's counters stay while its calls could hold reservations, and
    // go when the next day closes.
    assert!(pbx.cli("database show callquota").contains(&day_key(today)));
    let after = tomorrow.succ_opt().unwrap();
    site.ok(&at(after, "00:00:30"), &["run"]);
    let left = pbx.cli("database show callquota");
    assert!(!left.contains(&day_key(today)), "{left}");
    assert!(left.contains(&day_key(tomorrow)), "{left}");
}

#[test]
fn midnight_with_calls_on_both_sides_freepbx17() {
    midnight_with_calls_on_both_sides(Flavor::FreePbx17);
}

#[test]
fn midnight_with_calls_on_both_sides_freepbx16() {
    midnight_with_calls_on_both_sides(Flavor::FreePbx16);
}

/// A documented limit, measured: a call the PBX answered before `Dial` (an
/// IVR, a DISA) is billed from that answer, like `ANSWEREDTIME_MS`, but
/// `L()` caps only the dialled part, so that one call overruns by the time
/// before the dial; the live figure has it, so the next call is refused.
fn a_call_answered_before_dial_overruns_by_the_time_before_it(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    site.ok_now(&["user", "add", "2055", "--name", "A", "--daily-limit", "10"]);
    site.ok_now(&["run"]);
    let early = pbx.call_answered_first("2055", MOBILE, 30, 4);
    assert!(
        (14..=15).contains(&early.billsec),
        "10 s capped talk + 4 s answered before the dial: {early:?}"
    );
    let live = status_of(&site, "2055");
    assert!((14..=15).contains(&live["live_used_s"].as_i64().unwrap()), "{live}");
    assert_eq!(pbx.call("2055", MOBILE, 5).billsec, 0, "nothing left");
}

#[test]
fn a_call_answered_before_dial_overruns_by_the_time_before_it_freepbx17() {
    a_call_answered_before_dial_overruns_by_the_time_before_it(Flavor::FreePbx17);
}

#[test]
fn a_call_answered_before_dial_overruns_by_the_time_before_it_freepbx16() {
    a_call_answered_before_dial_overruns_by_the_time_before_it(Flavor::FreePbx16);
}

/// A PBX for calls that pass through more than one Local channel (forwards,
/// transfers): only the carrier's leg to MOBILE counts as the trunk.
fn pbx_for_forwards(site: &Site, flavor: Flavor) -> Option<Pbx> {
    let pbx = Pbx::start_for_calls(site, flavor)?;
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&config.replace(
        "trunk_channels = [\"Local/\"]",
        &format!("trunk_channels = [\"Local/{MOBILE}@carrier-\"]"),
    ));
    Some(pbx)
}

/// Whose call is it: the extension whose settings placed the paid call pays.
/// A customer (an outside caller, untracked) calls 2055, whose call forward
/// sends the call to a mobile through FreePBX's Local/NUMBER@from-internal/n:
/// the forwarded leg is capped at 2055's allowance, counted for 2055 live and
/// in the CDR (its row names 2055 in cnum), and refused once 2055 is spent.
/// A follow-me of 2077 to a mobile is 2077's.
fn a_forward_is_charged_to_the_forwarding_extension(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = pbx_for_forwards(&site, flavor) else {
        return;
    };
    site.ok_now(&["user", "add", "2055", "--name", "Forwarder", "--daily-limit", "10"]);
    site.ok_now(&["run"]);
    pbx.cli(&format!("database put CF 2055 {MOBILE}"));

    let before = pbx.cdr_rows().len();
    pbx.place("87005550000", "2055", 30);
    let rows = pbx.phone_rows_after(before, 1, std::time::Duration::from_secs(60));
    let all: Vec<_> = pbx.cdr_rows().into_iter().skip(before).collect();
    let forwarded = all
        .iter()
        .find(|r| r.dstchannel.contains("@carrier") && r.disposition == "ANSWERED")
        .unwrap_or_else(|| panic!("no forwarded leg: {all:?} {rows:?}"));
    assert!((9..=11).contains(&forwarded.billsec), "capped at 2055's 10 s: {all:?}");
    assert_eq!(
        forwarded.cnum, "2055",
        "the leg names the forwarding extension: {all:?}"
    );
    let live = status_of(&site, "2055");
    assert!((9..=11).contains(&live["live_used_s"].as_i64().unwrap()), "{live}");
    site.ok_now(&["run"]);
    let charged = status_of(&site, "2055");
    assert_eq!(charged["used_s"].as_i64(), Some(forwarded.billsec), "{charged}");

    // 2055 is spent: the next forwarded call is refused, the caller's own calls are not limited.
    let before = pbx.cdr_rows().len();
    pbx.place("87005550000", "2055", 30);
    pbx.phone_rows_after(before, 1, std::time::Duration::from_secs(60));
    let again: Vec<_> = pbx.cdr_rows().into_iter().skip(before).collect();
    assert!(
        again.iter().all(|r| r.dst != MOBILE || r.billsec == 0),
        "refused once 2055 is spent: {again:?}"
    );
    assert_eq!(pbx.call("2066", MOBILE, 3).billsec, 3, "an untracked caller's own call");

    // Follow-me (no DIVERSION_REASON, a Local channel): 2077 pays for it too.
    site.ok_now(&["user", "add", "2077", "--name", "Follower", "--daily-limit", "6"]);
    site.ok_now(&["run"]);
    pbx.cli(&format!("database put FM 2077 {MOBILE}"));
    let before = pbx.cdr_rows().len();
    pbx.place("87005550000", "2077", 30);
    pbx.phone_rows_after(before, 1, std::time::Duration::from_secs(60));
    let all: Vec<_> = pbx.cdr_rows().into_iter().skip(before).collect();
    let followed = all
        .iter()
        .find(|r| r.dstchannel.contains("@carrier") && r.disposition == "ANSWERED")
        .unwrap_or_else(|| panic!("no follow-me leg: {all:?}"));
    assert!((5..=7).contains(&followed.billsec), "capped at 2077's 6 s: {all:?}");
    assert_eq!(followed.cnum, "2077", "{all:?}");
}

/// A blind transfer: 2055 answers a customer at the desk and transfers the
/// customer to a mobile. The transferring extension pays: the leg is capped
/// at 2055's allowance and its CDR row names 2055.
fn a_blind_transfer_is_charged_to_the_transferring_extension(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = pbx_for_forwards(&site, flavor) else {
        return;
    };
    site.ok_now(&["user", "add", "2055", "--name", "Transferrer", "--daily-limit", "8"]);
    site.ok_now(&["run"]);
    pbx.cli("database put DESK 2055 yes");
    pbx.cli("database put DEVICE/2055 user 2055");

    let before = pbx.cdr_rows().len();
    pbx.place("87005550000", "2055", 30);
    std::thread::sleep(std::time::Duration::from_secs(2));
    pbx.blind_transfer("2055", MOBILE);
    pbx.phone_rows_after(before, 1, std::time::Duration::from_secs(60));
    let all: Vec<_> = pbx.cdr_rows().into_iter().skip(before).collect();
    let paid = all
        .iter()
        .find(|r| r.dstchannel.contains("@carrier") && r.disposition == "ANSWERED")
        .unwrap_or_else(|| panic!("no transferred leg: {all:?}"));
    assert!((7..=9).contains(&paid.billsec), "capped at 2055's 8 s: {all:?}");
    assert_eq!(paid.cnum, "2055", "the leg names the transferring extension: {all:?}");
    site.ok_now(&["run"]);
    assert_eq!(status_of(&site, "2055")["used_s"].as_i64(), Some(paid.billsec));
}

/// An attended transfer with the in-call transfer key (Asterisk's atxfer,
/// FreePBX's *2): 2055 answers a customer at the desk, presses the key, the
/// consultation call reaches a mobile, 2055 hangs up and the customer talks
/// on. The carrier leg is 2055's call throughout: the consultation channel
/// dialled it through the hook, so it stays capped at 2055's allowance after
/// the transfer, its CDR row names 2055, and `run` charges 2055 for it alone.
fn an_attended_transfer_is_charged_to_the_transferring_extension(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = pbx_for_forwards(&site, flavor) else {
        return;
    };
    site.ok_now(&["user", "add", "2055", "--name", "Transferrer", "--daily-limit", "12"]);
    site.ok_now(&["run"]);
    pbx.cli("database put DESK 2055 yes");
    pbx.cli(&format!("database put XFER 2055 {MOBILE}"));
    let before = pbx.cdr_rows().len();
    pbx.place("87005550000", "2055", 40);
    pbx.phone_rows_after(before, 1, std::time::Duration::from_secs(90));
    let all: Vec<_> = pbx.cdr_rows().into_iter().skip(before).collect();
    let carrier: Vec<_> = all.iter().filter(|r| r.dstchannel.contains("@carrier")).collect();
    assert_eq!(carrier.len(), 1, "{all:?}");
    let paid = carrier[0];
    assert_eq!(paid.cnum, "2055", "the leg names the transferring extension: {all:?}");
    assert!(
        (11..=13).contains(&paid.billsec),
        "capped at 2055's 12 s through the transfer (the carrier talks 40): {all:?}"
    );
    site.ok_now(&["run"]);
    assert_eq!(
        status_of(&site, "2055")["used_s"].as_i64(),
        Some(paid.billsec),
        "{all:?}"
    );
}

#[test]
fn an_attended_transfer_is_charged_to_the_transferring_extension_freepbx17() {
    an_attended_transfer_is_charged_to_the_transferring_extension(Flavor::FreePbx17);
}

#[test]
fn an_attended_transfer_is_charged_to_the_transferring_extension_freepbx16() {
    an_attended_transfer_is_charged_to_the_transferring_extension(Flavor::FreePbx16);
}

#[test]
fn a_blind_transfer_is_charged_to_the_transferring_extension_freepbx17() {
    a_blind_transfer_is_charged_to_the_transferring_extension(Flavor::FreePbx17);
}

#[test]
fn a_blind_transfer_is_charged_to_the_transferring_extension_freepbx16() {
    a_blind_transfer_is_charged_to_the_transferring_extension(Flavor::FreePbx16);
}

#[test]
fn a_forward_is_charged_to_the_forwarding_extension_freepbx17() {
    a_forward_is_charged_to_the_forwarding_extension(Flavor::FreePbx17);
}

#[test]
fn a_forward_is_charged_to_the_forwarding_extension_freepbx16() {
    a_forward_is_charged_to_the_forwarding_extension(Flavor::FreePbx16);
}
