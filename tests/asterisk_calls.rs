//! What callquota promises about calls, proven with real calls through a
//! real Asterisk (22 for FreePBX 17, 20 with app_macro for FreePBX 16) and a
//! FreePBX-shaped outbound path (see tests/common/asterisk.rs). Run one alone:
//!   cargo test --test asterisk_calls capped_freepbx17

mod common;

use common::asterisk::{CdrRow, Flavor, Pbx};
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
        refused.cause, "21/SUCCESS",
        "refused with cause 21 (call rejected) after saying why: {refused:?}"
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

/// FreePBX's "CID Num Alias": with AMPUSER/2055/cidnum set, FreePBX writes
/// the alias into the CDR's cnum. The hook names the payer there always, so
/// `run` charges 2055 (before, it charged the alias, nobody: no usage, no
/// notices, and a full day carried over every day).
fn a_cid_num_alias_is_charged_to_the_extension(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    pbx.cli("database put AMPUSER/2055 cidnum 5550100");
    site.ok_now(&["user", "add", "2055", "--name", "Aliased", "--daily-limit", "20"]);
    site.ok_now(&["run"]);
    let call = pbx.call("2055", MOBILE, 5);
    assert_eq!(call.cnum, "2055", "the payer, not the alias: {call:?}");
    assert_eq!(call.billsec, 5, "{call:?}");
    site.ok_now(&["run"]);
    let row = status_of(&site, "2055");
    assert_eq!(row["used_s"], 5, "{row}");
    // Asterisk's own count rounds its milliseconds up to the second.
    let live = row["live_used_s"].as_i64().unwrap_or(-1);
    assert!((5..=6).contains(&live), "Asterisk counted the call for 2055 too: {row}");
}

#[test]
fn a_cid_num_alias_is_charged_to_the_extension_freepbx17() {
    a_cid_num_alias_is_charged_to_the_extension(Flavor::FreePbx17);
}

#[test]
fn a_cid_num_alias_is_charged_to_the_extension_freepbx16() {
    a_cid_num_alias_is_charged_to_the_extension(Flavor::FreePbx16);
}

/// A refusal with a deny sound: the caller hears it as early media, and the
/// call is never answered, so it writes no ANSWERED row and nothing bills
/// (before, `Playback` answered it: a 3 s sound wrote 3 s rows that `run`
/// could charge).
fn a_refusal_plays_its_sound_without_answering(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    pbx.install_sound("custom/callquota-test-deny");
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&config.replace(
        "[dialplan]\n",
        "[dialplan]\ndeny_sound = \"custom/callquota-test-deny\"\n",
    ));
    site.ok_now(&["user", "add", "2055", "--name", "Vasya", "--daily-limit", "3"]);
    site.ok_now(&["run"]);
    let capped = pbx.call("2055", MOBILE, 10);
    assert!((2..=4).contains(&capped.billsec), "{capped:?}");
    site.ok_now(&["run"]);
    assert_eq!(status_of(&site, "2055")["blocked"], true);
    let used = status_of(&site, "2055")["used_s"].clone();

    let before = pbx.cdr_rows().len();
    for _ in 0..3 {
        let refused = pbx.call("2055", MOBILE, 10);
        assert_eq!(
            refused.cause, "21/SUCCESS",
            "the sound played, then cause 21: {refused:?}"
        );
        assert_ne!(refused.disposition, "ANSWERED", "never answered: {refused:?}");
        assert_eq!(refused.billsec, 0, "{refused:?}");
    }
    let rows: Vec<_> = pbx.cdr_rows().into_iter().skip(before).collect();
    assert!(
        rows.iter().all(|r| r.disposition != "ANSWERED" && r.billsec == 0),
        "a refusal writes no answered row: {rows:?}"
    );
    site.ok_now(&["run"]);
    assert_eq!(status_of(&site, "2055")["used_s"], used, "refusals charge nothing");
}

#[test]
fn a_refusal_plays_its_sound_without_answering_freepbx17() {
    a_refusal_plays_its_sound_without_answering(Flavor::FreePbx17);
}

#[test]
fn a_refusal_plays_its_sound_without_answering_freepbx16() {
    a_refusal_plays_its_sound_without_answering(Flavor::FreePbx16);
}

/// Talk time of answered paid calls of `ext` in `rows`.
fn talked(rows: &[CdrRow]) -> i64 {
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
    assert_eq!(calls[2].cause, "21/SUCCESS", "{calls:?}");
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

/// `check` looks for every prompt the generated dialplan may play in the
/// real Asterisk's sounds folder, for its default language and each of
/// `dialplan.languages`: the test build has its prompts only in the
/// language-less folder (a warning: callers hear that version), and a
/// warning sound nobody installed fails, naming it.
#[test]
fn check_finds_the_prompts_callers_hear_on_real_asterisk() {
    let site = Site::new();
    let Some(pbx) = &site.pbx else { return };
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    site.run("2026-11-26T09:00:00");
    let out = site.at("2026-11-26T09:00:00", &["check"]);
    let text = stdout(&out);
    assert!(
        text.contains(
            "warn  en/vm-youhave, en/digits/0, en/queue-minutes, en/vm-goodbye, en/cannot-complete-as-dialed"
        ) && text.contains("only in the language-less folder"),
        "{text}"
    );
    assert!(!text.contains("callers would hear silence"), "{text}");

    pbx.install_sound("custom/callquota-test-deny");
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&config.replace(
        "[dialplan]\n",
        "[dialplan]\ndeny_sound = \"custom/callquota-test-deny\"\nwarn_sound = \"custom/nowhere\"\nlanguages = [\"ru\"]\n",
    ));
    let out = site.at("2026-11-26T09:00:00", &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("callers would hear silence"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.starts_with("FAIL") && line.contains("en/custom/nowhere") && line.contains("ru/custom/nowhere"),
        "{line}"
    );
    assert!(
        !line.contains("callquota-test-deny"),
        "the installed deny sound is found: {line}"
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
    assert_eq!(
        (refused.billsec, refused.cause.as_str()),
        (0, "21/SUCCESS"),
        "{refused:?}"
    );
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

/// From midnight to the day's first run the loaded file is yesterday's. A
/// call after midnight is judged by the new day's figures all the same (the
/// file carries them; the check picks by the call's local date): on a day
/// off a user with time left yesterday is refused, and on a workday a user
/// who used up yesterday gets the new day's allowance, capped at it; a file
/// two days old refuses tracked users. The files are made for past days
/// (`--now`); Asterisk's clock says today.
fn a_call_after_midnight_is_judged_by_the_new_day(flavor: Flavor) {
    use chrono::Datelike;
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    // A PBX for calls keeps the site's day in UTC (see `Pbx::start_for_calls`).
    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().unwrap();
    let name = |d: chrono::NaiveDate| {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][d.weekday().num_days_from_monday() as usize]
    };
    let config = std::fs::read_to_string(&site.config).unwrap();
    let with_workdays = |days: &str| config.replace("[limits]\n", &format!("[limits]\nworkdays = [{days}]\n"));
    let at = |time: &str| format!("{yesterday}T{time}");

    // A file two days old: runs have stopped, no day's figures are known, so
    // a tracked user's paid call is refused (an untracked one's is not).
    let before_yesterday = yesterday.pred_opt().unwrap();
    site.ok(
        &format!("{before_yesterday}T08:00:00"),
        &["user", "add", "2055", "--name", "A", "--daily-limit", "20"],
    );
    site.ok(&format!("{before_yesterday}T23:50:00"), &["run"]);
    let stale = pbx.call("2055", MOBILE, 10);
    assert_eq!((stale.billsec, stale.cause.as_str()), (0, "21/SUCCESS"), "{stale:?}");
    assert_eq!(pbx.call("2099", MOBILE, 3).billsec, 3, "an untracked caller");

    // Only yesterday is a workday: 2055 has 20 s left of it, today nothing.
    site.write_config(&with_workdays(&format!("\"{}\"", name(yesterday))));
    site.ok(&at("23:50:00"), &["run"]);
    // Yesterday (the file's day) 2055 has time left.
    let include = site.include();
    let yesterdays = include
        .split("[callquota-users]\n")
        .nth(1)
        .and_then(|t| t.lines().next());
    assert!(
        yesterdays.is_some_and(|l| l.starts_with("exten => 2055,1,Return(") && !l.contains("DENY")),
        "{include}"
    );
    let refused = pbx.call("2055", MOBILE, 10);
    assert_eq!(
        (refused.billsec, refused.cause.as_str()),
        (0, "21/SUCCESS"),
        "today is a day off: {refused:?}"
    );

    // Both days are workdays; 2066 used up yesterday's 8 s and is blocked in
    // yesterday's figures, but today is a new day.
    site.write_config(&with_workdays(&format!("\"{}\", \"{}\"", name(yesterday), name(today))));
    site.ok(
        &at("23:51:00"),
        &["user", "add", "2066", "--name", "B", "--daily-limit", "8"],
    );
    let mut used_up = Call::answered("2066", MOBILE, &at("23:52:00"), 8);
    used_up.dstchannel = format!("Local/{MOBILE}@carrier-1-000000ff;1"); // the test PBX's trunk
    site.insert(&[used_up]);
    site.ok(&at("23:55:00"), &["run"]);
    assert!(site.include().contains("exten => 2066,1,Return(DENY)"));
    let capped = pbx.call("2066", MOBILE, 30);
    assert!(
        (7..=9).contains(&capped.billsec),
        "today's 8 s, not yesterday's block: {capped:?}"
    );
    let counters = pbx.cli_until(
        &format!("database show callquota/{}", today.format("%Y%m%d")),
        std::time::Duration::from_secs(10),
        |out| out.contains("2066/used"),
    );
    assert!(
        counters.contains("2066/used"),
        "settled into today's counters: {counters}"
    );
}

#[test]
fn a_call_after_midnight_is_judged_by_the_new_day_freepbx17() {
    a_call_after_midnight_is_judged_by_the_new_day(Flavor::FreePbx17);
}

#[test]
fn a_call_after_midnight_is_judged_by_the_new_day_freepbx16() {
    a_call_after_midnight_is_judged_by_the_new_day(Flavor::FreePbx16);
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
/// IVR, a DISA). The carrier's leg is capped and counted live as usual, but
/// the phone's CDR row is billed from the PBX's answer, so the CDR figure
/// has the time before the dial too (an overcharge, never a leak); the next
/// call is refused.
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
    assert!(
        (10..=11).contains(&live["live_used_s"].as_i64().unwrap()),
        "the carrier's 10 s: {live}"
    );
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
    // A warning due 3 s before the cut would go to the caller: here an
    // outside customer, who must hear nothing of 2055's allowance.
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&config.replace("[dialplan]\n", "[dialplan]\nwarn_before = \"3s\"\n"));
    site.ok_now(&["user", "add", "2055", "--name", "Forwarder", "--daily-limit", "10"]);
    site.ok_now(&["run"]);
    pbx.cli(&format!("database put CF 2055 {MOBILE}"));

    let before = pbx.cdr_rows().len();
    let from = pbx.log_len();
    pbx.place("87005550000", "2055", 30);
    let rows = pbx.phone_rows_after(before, 1, std::time::Duration::from_secs(60));
    let played = pbx.played_since(from);
    assert!(played.is_empty(), "the outside caller hears no warning: {played:?}");
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

/// The carrier bills its channel for as long as it is answered, whoever it is
/// bridged to. 2055 (20 s a day) calls a mobile and, 3 s in, hands the call
/// to a colleague's desk phone (the transfer key: a blind transfer of the
/// caller's channel). The carrier talks on with 2066 and is cut when 2055's
/// 20 s are used; meanwhile 2055's next paid call finds the allowance still
/// reserved and is refused. Asterisk's live figure and `run`'s both equal the
/// carrier's talk time (its row before the transfer and its own row after
/// it), charged to 2055. Before, both counts stopped at the transfer.
fn a_transferred_paid_call_is_the_payers_until_the_carrier_hangs_up(flavor: Flavor) {
    let Some((_pbx, site, all, first_carrier)) = hand_over(flavor, 2, |pbx| {
        pbx.place("2055", MOBILE, 40);
        std::thread::sleep(std::time::Duration::from_secs(3));
        pbx.transfer_caller("2055", "2066");
        std::thread::sleep(std::time::Duration::from_secs(3));
        let second = pbx.call("2055", MOBILE, 10);
        assert_eq!(
            second.billsec, 0,
            "refused while the transferred call's carrier talks: {second:?}"
        );
    }) else {
        return;
    };
    assert!(
        all.iter().any(|r| r.channel == first_carrier.dstchannel),
        "the carrier's own row after the transfer: {all:?}"
    );
    carrier_leg_is_capped_and_counted(&site, &all);
}

/// 2055 (20 s a day) places a paid call and hands it to the desk phone of
/// 2066 as `call` does, ending with `phone_rows` calls of 2055's phone.
/// Returns the PBX (dropped first), the site, the call's CDR rows and the
/// first answered row to the carrier; `None` when the tests must skip.
/// The caller is warned 5 s before the cut, so Dial's `L()` is a feature of
/// the first bridge (not a hang-up time on the carrier), as on every call
/// with more than `warn_before` (1 minute by default) left.
fn hand_over(flavor: Flavor, phone_rows: usize, call: impl FnOnce(&Pbx)) -> Option<(Pbx, Site, Vec<CdrRow>, CdrRow)> {
    hand_over_with(flavor, phone_rows, "warn_before = \"5s\"", call)
}

/// [`hand_over`] with `dialplan_extra` added to the config's `[dialplan]`.
fn hand_over_with(
    flavor: Flavor,
    phone_rows: usize,
    dialplan_extra: &str,
    call: impl FnOnce(&Pbx),
) -> Option<(Pbx, Site, Vec<CdrRow>, CdrRow)> {
    let site = Site::without_pbx();
    let pbx = pbx_for_forwards(&site, flavor)?;
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&config.replace("[dialplan]\n", &format!("[dialplan]\n{dialplan_extra}\n")));
    site.ok_now(&["user", "add", "2055", "--name", "Caller", "--daily-limit", "20"]);
    site.ok_now(&["run"]);
    pbx.cli("database put DESK 2066 yes");
    let before = pbx.cdr_rows().len();
    call(&pbx);
    pbx.phone_rows_after(before, phone_rows, std::time::Duration::from_secs(90));
    let all: Vec<_> = pbx.cdr_rows().into_iter().skip(before).collect();
    let first_carrier = all
        .iter()
        .find(|r| r.dstchannel.contains("@carrier") && r.disposition == "ANSWERED" && r.billsec > 0)
        .cloned()
        .unwrap_or_else(|| panic!("no answered carrier leg: {all:?}"));
    Some((pbx, site, all, first_carrier))
}

#[test]
fn a_transferred_paid_call_is_the_payers_until_the_carrier_hangs_up_freepbx17() {
    a_transferred_paid_call_is_the_payers_until_the_carrier_hangs_up(Flavor::FreePbx17);
}

#[test]
fn a_transferred_paid_call_is_the_payers_until_the_carrier_hangs_up_freepbx16() {
    a_transferred_paid_call_is_the_payers_until_the_carrier_hangs_up(Flavor::FreePbx16);
}

/// 2055 (20 s) calls a mobile and, 3 s in, blind-transfers the carrier to
/// `to` (then `meanwhile` runs): the carrier's own row after the transfer is
/// there, and its leg stays capped and counted for 2055.
fn handed_to(flavor: Flavor, to: &str, meanwhile: impl FnOnce(&Pbx)) {
    let Some((_pbx, site, all, first_carrier)) = hand_over(flavor, 1, |pbx| {
        pbx.place("2055", MOBILE, 40);
        std::thread::sleep(std::time::Duration::from_secs(3));
        pbx.transfer_caller("2055", to);
        meanwhile(pbx);
    }) else {
        return;
    };
    assert!(
        all.iter().any(|r| r.channel == first_carrier.dstchannel),
        "the carrier's own row after the transfer to {to}: {all:?}"
    );
    carrier_leg_is_capped_and_counted(&site, &all);
}

/// A paid call handed into a conference room (2055 blind-transfers the
/// carrier to room 8300, ConfBridge): the carrier stays capped and counted.
fn a_paid_call_handed_into_a_conference_stays_the_payers(flavor: Flavor) {
    handed_to(flavor, "8300", |_| {});
}

#[test]
fn a_paid_call_handed_into_a_conference_stays_the_payers_freepbx17() {
    a_paid_call_handed_into_a_conference_stays_the_payers(Flavor::FreePbx17);
}

#[test]
fn a_paid_call_handed_into_a_conference_stays_the_payers_freepbx16() {
    a_paid_call_handed_into_a_conference_stays_the_payers(Flavor::FreePbx16);
}

/// A paid call parked (2055 blind-transfers the carrier to the parking lot's
/// 70 and nobody picks it up): the carrier waits answered and billed in the
/// lot's holding bridge, and stays capped at 2055's 20 s and counted, live
/// and by `run`, although the lot would hold it for a minute.
fn a_parked_paid_call_stays_capped_and_counted(flavor: Flavor) {
    handed_to(flavor, "70", |pbx| {
        std::thread::sleep(std::time::Duration::from_secs(2));
        let lot = pbx.cli("parking show default");
        assert!(
            lot.contains(&format!("Local/{MOBILE}@carrier")),
            "the carrier waits in the lot: {lot}"
        );
    });
}

#[test]
fn a_parked_paid_call_stays_capped_and_counted_freepbx17() {
    a_parked_paid_call_stays_capped_and_counted(Flavor::FreePbx17);
}

#[test]
fn a_parked_paid_call_stays_capped_and_counted_freepbx16() {
    a_parked_paid_call_stays_capped_and_counted(Flavor::FreePbx16);
}

/// The same hand-over with an attended transfer: 2055 (20 s) calls a mobile,
/// presses the transfer key 3 s in, consults 2066 for 4 s (the carrier waits
/// on hold, answered and billed, in no CDR row) and hangs up; the carrier
/// talks on with 2066 and stays capped and counted for 2055.
fn a_paid_call_handed_over_with_an_attended_transfer_stays_the_payers(flavor: Flavor) {
    let Some((_pbx, site, all, first_carrier)) = hand_over(flavor, 1, |pbx| {
        pbx.place_and_attended_transfer("2055", MOBILE, 40, "2066");
    }) else {
        return;
    };
    assert!(
        all.iter()
            .any(|r| r.dstchannel == first_carrier.dstchannel && r.channel != first_carrier.channel),
        "after the transfer completes, a row names the carrier: {all:?}"
    );
    carrier_leg_is_capped_and_counted(&site, &all);
}

/// The carrier of 2055's 20 s call was asked to talk 40 s, so the cap cut
/// it: Asterisk's live figure says 20 s (at most 1 s over), `run`'s the same
/// give or take the CDR's rounding: each row of the leg is whole seconds
/// (seen under load: 2 s + 16 s rows for a leg Asterisk counted as 19-20 s).
fn carrier_leg_is_capped_and_counted(site: &Site, rows: &[CdrRow]) {
    let live = status_of(site, "2055")["live_used_s"].as_i64().unwrap_or(-1);
    assert!((19..=21).contains(&live), "Asterisk counted {live} s: {rows:?}");
    site.ok_now(&["run"]);
    let used = status_of(site, "2055")["used_s"].as_i64().unwrap_or(-1);
    assert!((18..=21).contains(&used), "run charged 2055 {used} s: {rows:?}");
    assert!((used - live).abs() <= 2, "live {live} s, run {used} s: {rows:?}");
}

#[test]
fn a_paid_call_handed_over_with_an_attended_transfer_stays_the_payers_freepbx17() {
    a_paid_call_handed_over_with_an_attended_transfer_stays_the_payers(Flavor::FreePbx17);
}

#[test]
fn a_paid_call_handed_over_with_an_attended_transfer_stays_the_payers_freepbx16() {
    a_paid_call_handed_over_with_an_attended_transfer_stays_the_payers(Flavor::FreePbx16);
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
    let live = status_of(&site, "2055")["live_used_s"].as_i64().unwrap_or(-1);
    assert!(
        (paid.billsec - 1..=paid.billsec + 1).contains(&live),
        "live {live}: {all:?}"
    );
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
    let live = status_of(&site, "2055")["live_used_s"].as_i64().unwrap_or(-1);
    assert!(
        (paid.billsec - 1..=paid.billsec + 1).contains(&live),
        "Asterisk counted {live} s for the carrier's {} s after the consultation completed: {all:?}",
        paid.billsec
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

/// A dialled string that Asterisk's argument parsers would unescape or nest
/// (a SIP URI dialled through a `.` route: `\,`, `"`, `(`) cannot be capped
/// as dialled: the number the hook judges and what reaches the carrier
/// differ. A tracked user's call to one is refused (and charges nothing); an
/// untracked extension's still goes through. A bare comma, which the route's
/// own Gosub/Macro splits off, leaves the number before it: capped, and
/// charged by `run` as that number.
fn a_number_that_splits_arguments_is_refused_not_uncapped(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    site.ok_now(&["user", "add", "2055", "--name", "Vasya", "--daily-limit", "8"]);
    site.ok_now(&["run"]);
    let before = pbx.cdr_rows().len();
    for dialled in [
        format!("{MOBILE}\\,"),
        format!("{MOBILE}\"1,\""),
        format!("{MOBILE}(1,2)"),
    ] {
        let from = pbx.log_len();
        let refused = pbx.call_dialling("2055", &dialled, 20);
        assert_eq!(refused.cause, "21/SUCCESS", "{dialled} is refused: {refused:?}");
        let said: Vec<String> = pbx.played_since(from).into_iter().map(|(_, f)| f).collect();
        assert_eq!(said, ["cannot-complete-as-dialed"], "{dialled}: says why");
        assert_ne!(refused.disposition, "ANSWERED", "{dialled}: {refused:?}");
    }
    let rows: Vec<_> = pbx.cdr_rows().into_iter().skip(before).collect();
    assert!(
        !rows
            .iter()
            .any(|r| r.dstchannel.contains("@carrier") && r.disposition == "ANSWERED"),
        "no carrier answered a refused call: {rows:?}"
    );
    let untracked = pbx.call_dialling("2066", &format!("{MOBILE}\\,"), 3);
    assert_eq!(
        (untracked.disposition.as_str(), untracked.billsec),
        ("ANSWERED", 3),
        "an untracked extension is not refused: {untracked:?}"
    );
    let capped = pbx.call_dialling("2055", &format!("{MOBILE},1"), 20);
    assert_eq!(capped.disposition, "ANSWERED", "{capped:?}");
    assert!((7..=9).contains(&capped.billsec), "capped at 8 s: {capped:?}");
    site.ok_now(&["run"]);
    let used = status_of(&site, "2055")["used_s"].as_i64().unwrap_or(-1);
    assert_eq!(used, capped.billsec, "only the capped call is charged");
}

#[test]
fn a_number_that_splits_arguments_is_refused_not_uncapped_freepbx17() {
    a_number_that_splits_arguments_is_refused_not_uncapped(Flavor::FreePbx17);
}

#[test]
fn a_number_that_splits_arguments_is_refused_not_uncapped_freepbx16() {
    a_number_that_splits_arguments_is_refused_not_uncapped(Flavor::FreePbx16);
}

/// What the caller hears. With `warn_before = "5s"`, a call capped at 12 s
/// hears Asterisk's "you have 5 seconds" on the caller's channel only (never
/// the carrier's) about 5 s before the cut, and still ends at the cap; a
/// call with less than 5 s left hears no warning, but with `announce_below =
/// "10s"` hears "you have 4 seconds" before it is dialled, which costs no
/// talk time; a refusal says "you have 0 minutes, goodbye" as early media
/// and is never answered.
fn the_caller_is_warned_before_the_cut_and_told_why_when_refused(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    pbx.install_prompts();
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&config.replace(
        "[dialplan]\n",
        "[dialplan]\nwarn_before = \"5s\"\nannounce_below = \"10s\"\n",
    ));
    site.ok_now(&["user", "add", "2055", "--name", "Vasya", "--daily-limit", "12"]);
    site.ok_now(&["run"]);

    let from = pbx.log_len();
    let capped = pbx.call("2055", MOBILE, 30);
    assert_eq!(capped.disposition, "ANSWERED", "{capped:?}");
    assert!((11..=13).contains(&capped.billsec), "still cut at 12 s: {capped:?}");
    let played = pbx.played_since(from);
    let warned: Vec<_> = played.iter().filter(|(_, f)| f == "vm-youhave").collect();
    assert_eq!(warned.len(), 1, "one warning: {played:?}");
    assert!(
        warned[0].0.starts_with("Local/2055-") && warned[0].0.ends_with(";2"),
        "played to the employee's phone: {played:?}"
    );
    assert!(
        played.iter().all(|(c, _)| !c.contains("@carrier")),
        "the outside party hears nothing: {played:?}"
    );
    // Asterisk says the whole seconds left when the warning starts: 4 (of 4.99) or 5.
    assert!(
        played.iter().any(|(_, f)| f == "digits/5" || f == "digits/4")
            && played.iter().any(|(_, f)| f == "queue-seconds"),
        "\"you have 5 seconds\": {played:?}"
    );

    site.ok_now(&["grant", "2055", "4"]);
    let from = pbx.log_len();
    let short = pbx.call("2055", MOBILE, 30);
    assert!(
        (3..=5).contains(&short.billsec),
        "cut at the granted 4 s, the heads-up before the dial costs nothing: {short:?}"
    );
    let files: Vec<String> = pbx.played_since(from).into_iter().map(|(_, f)| f).collect();
    assert!(
        files == ["vm-youhave", "digits/4", "queue-seconds"] || files == ["vm-youhave", "digits/3", "queue-seconds"],
        "4 s left: the heads-up and no warning: {files:?}"
    );
    let live = status_of(&site, "2055")["live_used_s"].as_i64().unwrap_or(-1);
    assert!((15..=17).contains(&live), "Asterisk counted only talk: {live} s");

    site.ok_now(&["run"]);
    let from = pbx.log_len();
    let refused = pbx.call("2055", MOBILE, 30);
    assert_eq!(refused.cause, "21/SUCCESS", "said why, then cause 21: {refused:?}");
    assert_ne!(refused.disposition, "ANSWERED", "never answered: {refused:?}");
    let files: Vec<String> = pbx.played_since(from).into_iter().map(|(_, f)| f).collect();
    assert_eq!(
        files,
        ["vm-youhave", "digits/0", "queue-minutes", "vm-goodbye"],
        "\"you have 0 minutes, goodbye\""
    );
}

#[test]
fn the_caller_is_warned_before_the_cut_and_told_why_when_refused_freepbx17() {
    the_caller_is_warned_before_the_cut_and_told_why_when_refused(Flavor::FreePbx17);
}

#[test]
fn the_caller_is_warned_before_the_cut_and_told_why_when_refused_freepbx16() {
    the_caller_is_warned_before_the_cut_and_told_why_when_refused(Flavor::FreePbx16);
}

/// The caller's language (FreePBX sets it per extension): a Russian-speaking
/// phone hears the refusal from Asterisk's Russian prompts (`sounds/ru`,
/// 3 s each here, so the refusal lasts about 12 s where the default ones
/// take 4), with `SayNumber` in Russian; a language whose prompts are not
/// installed falls back to the default ones: the caller still hears why.
fn the_refusal_speaks_the_callers_language_or_falls_back(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    pbx.install_prompts_in("ru", 3);
    for ext in ["2055", "2066", "2077"] {
        site.ok_now(&["user", "add", ext, "--name", "Spent", "--daily-limit", "0"]);
    }
    site.ok_now(&["run"]);
    pbx.cli("database put LANG 2055 ru");
    pbx.cli("database put LANG 2066 kk");

    for (ext, language, seconds) in [("2055", "ru", 11..=16), ("2066", "kk", 3..=7), ("2077", "en", 3..=7)] {
        let from = pbx.log_len();
        let refused = pbx.call(ext, MOBILE, 10);
        assert_eq!(refused.cause, "21/SUCCESS", "{language}: said why: {refused:?}");
        assert_ne!(refused.disposition, "ANSWERED", "{language}: {refused:?}");
        assert!(
            seconds.contains(&refused.duration),
            "{language}: the refusal took {} s: {refused:?}",
            refused.duration
        );
        let files: Vec<String> = pbx.played_since(from).into_iter().map(|(_, f)| f).collect();
        assert_eq!(
            files,
            ["vm-youhave", "digits/0", "queue-minutes", "vm-goodbye"],
            "{language}"
        );
        let languages = pbx.languages_since(from);
        assert!(languages.iter().all(|l| l == language), "{language}: {languages:?}");
    }
}

#[test]
fn the_refusal_speaks_the_callers_language_or_falls_back_freepbx17() {
    the_refusal_speaks_the_callers_language_or_falls_back(Flavor::FreePbx17);
}

#[test]
fn the_refusal_speaks_the_callers_language_or_falls_back_freepbx16() {
    the_refusal_speaks_the_callers_language_or_falls_back(Flavor::FreePbx16);
}

/// What `SayNumber(n)` plays in English for a number below 60.
fn number_files(n: u64) -> Vec<String> {
    match n {
        0..=20 => vec![format!("digits/{n}")],
        _ if n.is_multiple_of(10) => vec![format!("digits/{n}")],
        _ => vec![format!("digits/{}", n / 10 * 10), format!("digits/{}", n % 10)],
    }
}

/// What the balance code says for `left_s` seconds: "you have N minutes M seconds".
fn balance_words(left_s: u64) -> Vec<String> {
    let (m, s) = (left_s / 60, left_s % 60);
    let mut words = vec!["vm-youhave".to_string()];
    if m > 0 {
        words.extend(number_files(m));
        words.push("queue-minutes".into());
    }
    if m == 0 || s > 0 {
        words.extend(number_files(s));
        words.push("queue-seconds".into());
    }
    words
}

/// The balance feature code (`*77`, wired in with one line under
/// `[from-internal-custom]`) reads back exactly what `status` shows as live
/// remaining: after a run, after a call Asterisk counted but no run has read
/// yet, and with a call in progress (which holds what is left). A spent
/// user hears 0; an extension without a limit hears that the feature does
/// not apply to it; a Ukrainian-speaking phone hears it in Ukrainian.
fn the_balance_code_says_what_status_shows_as_left(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    pbx.install_prompts();
    pbx.install_prompts_in("uk", 1);
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&config.replace("[dialplan]\n", "[dialplan]\nbalance_code = \"*77\"\n"));
    pbx.set_custom("#tryinclude callquota.conf\n\n[from-internal-custom]\ninclude => callquota-balance\n");
    // FreePBX keeps each device's user; a phone without one (2099) is nobody's.
    for ext in ["2055", "2066", "2077"] {
        pbx.cli(&format!("database put DEVICE/{ext} user {ext}"));
    }
    site.ok_now(&["user", "add", "2055", "--name", "Vasya", "--daily-limit", "200"]);
    site.ok_now(&["user", "add", "2066", "--name", "Spent", "--daily-limit", "0"]);
    site.ok_now(&["user", "add", "2077", "--name", "Ivan", "--daily-limit", "45"]);
    site.ok_now(&["run"]);
    let checked = site.strict_cmd().arg("check").output().unwrap();
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains("the balance code *77 is reachable from from-internal"),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );

    let ask = |ext: &str| {
        let from = pbx.log_len();
        let row = pbx.call(ext, "*77", 1);
        assert_eq!(row.disposition, "ANSWERED", "the feature code answers: {row:?}");
        let files: Vec<String> = pbx.played_since(from).into_iter().map(|(_, f)| f).collect();
        (files, pbx.languages_since(from))
    };
    let left = |ext: &str| status_of(&site, ext)["live_remaining_s"].as_u64().unwrap();

    assert_eq!(left("2055"), 200);
    assert_eq!(ask("2055").0, balance_words(200), "3 minutes 20 seconds");

    // A call Asterisk counted, which no run has read yet.
    let call = pbx.call("2055", MOBILE, 10);
    assert_eq!(call.disposition, "ANSWERED", "{call:?}");
    let after_call = left("2055");
    assert!((188..=190).contains(&after_call), "{after_call}");
    assert_eq!(ask("2055").0, balance_words(after_call));

    // A call in progress holds all that is left: a second call would be refused.
    let before = pbx.cdr_rows().len();
    pbx.place("2055", MOBILE, 12);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(left("2055"), 0, "{}", pbx.cli("database show callquota"));
    assert_eq!(ask("2055").0, balance_words(0));
    pbx.phone_rows_after(before, 1, std::time::Duration::from_secs(60));
    let settled = left("2055");
    assert!((175..=178).contains(&settled), "{settled}");
    assert_eq!(ask("2055").0, balance_words(settled), "after the call ends");

    assert_eq!(ask("2066").0, balance_words(0), "a spent allowance");
    assert_eq!(ask("2099").0, ["feature-not-avail-line"], "no limit, or no known user");
    // Ukrainian here: the sounds folder is shared by the tests running at once.
    pbx.cli("database put LANG 2077 uk");
    let (words, languages) = ask("2077");
    assert_eq!(words, balance_words(45));
    assert!(languages.iter().all(|l| l == "uk"), "{languages:?}");
}

#[test]
fn the_balance_code_says_what_status_shows_as_left_freepbx17() {
    the_balance_code_says_what_status_shows_as_left(Flavor::FreePbx17);
}

#[test]
fn the_balance_code_says_what_status_shows_as_left_freepbx16() {
    the_balance_code_says_what_status_shows_as_left(Flavor::FreePbx16);
}

/// Billing increments on real calls (`billing = "60/60"`, per started
/// minute): a 5 s call costs a minute in the live guard and in `run`; with
/// 90 s left the next call is cut at the last whole minute that can be paid
/// (a second short of it, so the carrier's own clock stays inside the minute),
/// not at 90 s; with 30 s left no minute fits, so the call is refused.
/// `calls` shows each call's talk and its charge.
fn a_per_minute_direction_is_capped_and_charged_by_whole_minutes(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    let config = std::fs::read_to_string(&site.config).unwrap();
    let billed = config.replace("\"_8747XXXXXXX\"]\n", "\"_8747XXXXXXX\"]\nbilling = \"60/60\"\n");
    assert_ne!(billed, config);
    site.write_config(&billed);
    site.ok_now(&["user", "add", "2055", "--name", "Vasya", "--daily-limit", "150"]);
    site.ok_now(&["run"]);
    assert!(site.include().contains("Return(60/60)"), "{}", site.include());

    let short = pbx.call("2055", MOBILE, 5);
    assert!((4..=6).contains(&short.billsec), "{short:?}");
    let live = status_of(&site, "2055");
    assert_eq!(live["live_used_s"].as_u64(), Some(60), "a started minute: {live}");
    assert_eq!(live["live_remaining_s"].as_u64(), Some(90), "{live}");

    let capped = pbx.call("2055", MOBILE2, 100);
    assert_eq!(capped.disposition, "ANSWERED", "{capped:?}");
    assert!(
        (58..=59).contains(&capped.billsec),
        "90 s left: cut a second before the minute, not at 90 s: {capped:?}"
    );
    let legs = pbx.carrier_legs();
    assert!(
        legs.iter().all(|(_, answered, hangup)| hangup - answered < 60_000),
        "the carrier's own leg ended inside the minute: {legs:?}"
    );
    assert_eq!(status_of(&site, "2055")["live_used_s"].as_u64(), Some(120));

    let refused = pbx.call("2055", MOBILE, 10);
    assert_eq!(
        (refused.billsec, refused.cause.as_str()),
        (0, "21/SUCCESS"),
        "30 s left buys no started minute: {refused:?}"
    );

    site.ok_now(&["run"]);
    let read = status_of(&site, "2055");
    assert_eq!(
        read["used_s"].as_u64(),
        Some(120),
        "run charges whole minutes too: {read}"
    );
    let calls: serde_json::Value = serde_json::from_str(&site.ok_now(&["calls", "2055", "--json"])).unwrap();
    let charged: Vec<(u64, u64)> = calls
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["counted"] == true)
        .map(|c| (c["counted_s"].as_u64().unwrap(), c["charged_s"].as_u64().unwrap()))
        .collect();
    assert_eq!(charged.len(), 2, "{calls}");
    assert!(
        charged.iter().all(|&(talk, charge)| charge == 60 && talk <= 61),
        "{calls}"
    );
}

#[test]
fn a_per_minute_direction_is_capped_and_charged_by_whole_minutes_freepbx17() {
    a_per_minute_direction_is_capped_and_charged_by_whole_minutes(Flavor::FreePbx17);
}

#[test]
fn a_per_minute_direction_is_capped_and_charged_by_whole_minutes_freepbx16() {
    a_per_minute_direction_is_capped_and_charged_by_whole_minutes(Flavor::FreePbx16);
}

/// The monthly cap on real calls (#24 item 3): a user whose daily limit is
/// 10 minutes but whose month has 30 s left talks 30 s in all today: the
/// first call runs its 15 s, the second is cut when the month's 30 s are
/// used, the third is refused, while a landline still connects; removing
/// the monthly limit gives the day back at once (so it was the month).
fn a_monthly_cap_reached_mid_day_blocks(flavor: Flavor) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    site.ok_now(&[
        "user",
        "add",
        "2055",
        "--name",
        "Vasya",
        "--daily-limit",
        "10m",
        "--monthly-limit",
        "30",
    ]);
    site.ok_now(&["run"]);
    let row = status_of(&site, "2055");
    assert_eq!(
        (row["allowance_s"].as_u64(), row["month_capped"].as_bool()),
        (Some(30), Some(true)),
        "{row}"
    );

    let first = pbx.call("2055", MOBILE, 15);
    assert!((14..=16).contains(&first.billsec), "{first:?}");
    let second = pbx.call("2055", MOBILE2, 60);
    assert_eq!(second.disposition, "ANSWERED", "{second:?}");
    assert!(
        (first.billsec + second.billsec).abs_diff(30) <= 1,
        "cut when the month's 30 s are used: {first:?} {second:?}"
    );
    site.ok_now(&["run"]);
    let row = status_of(&site, "2055");
    // The CDR rounds each call's talk down (29 s of 30 may show), the live
    // guard counts milliseconds: nothing is left to talk either way.
    assert_eq!(row["live_remaining_s"].as_u64(), Some(0), "{row}");
    assert_eq!(
        row["month_left_s"].as_u64(),
        Some(30u64.saturating_sub(row["used_s"].as_u64().unwrap())),
        "{row}"
    );
    let refused = pbx.call("2055", MOBILE, 10);
    assert_eq!(
        (refused.billsec, refused.cause.as_str()),
        (0, "21/SUCCESS"),
        "{refused:?}"
    );
    let landline = pbx.call("2055", LANDLINE, 3);
    assert_eq!(landline.disposition, "ANSWERED", "{landline:?}");

    site.ok_now(&["user", "set", "2055", "--monthly-limit", "none"]);
    site.ok_now(&["run"]);
    let again = pbx.call("2055", MOBILE, 5);
    assert_eq!(
        (again.disposition.as_str(), again.billsec.abs_diff(5) <= 1),
        ("ANSWERED", true),
        "the day's own 10 minutes apply again: {again:?}"
    );
}

#[test]
fn a_monthly_cap_reached_mid_day_blocks_freepbx17() {
    a_monthly_cap_reached_mid_day_blocks(Flavor::FreePbx17);
}

#[test]
fn a_monthly_cap_reached_mid_day_blocks_freepbx16() {
    a_monthly_cap_reached_mid_day_blocks(Flavor::FreePbx16);
}

/// A direction allowance on real calls (#24 item 2): a user with 10 minutes
/// a day and 20 s of international talks 20 s abroad, is then refused
/// international calls while mobile calls still connect; `run` and `status`
/// charge both allowances.
fn an_international_limited_user_is_refused_abroad_while_mobiles_connect(flavor: Flavor) {
    const INTL: &str = "81049301234567";
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        return;
    };
    let config = std::fs::read_to_string(&site.config).unwrap();
    let with_intl = config.replace(
        "[limits]",
        "[[direction]]\nname = \"international\"\npatterns = [\"_810X.\"]\n\n[limits]",
    );
    assert_ne!(with_intl, config);
    site.write_config(&with_intl);
    site.ok_now(&[
        "user",
        "add",
        "2055",
        "--name",
        "Vasya",
        "--daily-limit",
        "10m",
        "--limit",
        "international=20",
    ]);
    site.ok_now(&["run"]);

    let abroad = pbx.call("2055", INTL, 60);
    assert_eq!(abroad.disposition, "ANSWERED", "{abroad:?}");
    assert!(
        (19..=21).contains(&abroad.billsec),
        "cut at the international 20 s, not the shared 10 minutes: {abroad:?}"
    );
    let mobile = pbx.call("2055", MOBILE, 5);
    assert_eq!(
        (mobile.disposition.as_str(), mobile.billsec.abs_diff(5) <= 1),
        ("ANSWERED", true),
        "{mobile:?}"
    );
    let refused = pbx.call("2055", INTL, 10);
    assert_eq!(
        (refused.billsec, refused.cause.as_str()),
        (0, "21/SUCCESS"),
        "no international time left: {refused:?}"
    );

    site.ok_now(&["run"]);
    let row = status_of(&site, "2055");
    let intl = &row["directions"][0];
    assert_eq!(intl["direction"], "international", "{row}");
    assert_eq!(intl["used_s"].as_u64(), Some(abroad.billsec as u64), "{row}");
    assert_eq!(
        row["used_s"].as_u64(),
        Some((abroad.billsec + mobile.billsec) as u64),
        "the shared allowance counts both: {row}"
    );
    assert_eq!(intl["live_remaining_s"].as_u64(), Some(0), "{row}");
    let again = pbx.call("2055", MOBILE2, 3);
    assert_eq!(again.disposition, "ANSWERED", "mobiles still connect: {again:?}");
    let refused = pbx.call("2055", INTL, 10);
    assert_eq!(refused.billsec, 0, "still refused after the run: {refused:?}");
}

#[test]
fn an_international_limited_user_is_refused_abroad_while_mobiles_connect_freepbx17() {
    an_international_limited_user_is_refused_abroad_while_mobiles_connect(Flavor::FreePbx17);
}

#[test]
fn an_international_limited_user_is_refused_abroad_while_mobiles_connect_freepbx16() {
    an_international_limited_user_is_refused_abroad_while_mobiles_connect(Flavor::FreePbx16);
}
