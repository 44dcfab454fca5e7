//! Exact accounting: every paid second charged once, on the right day, to
//! the right person (the accounting issue's reproductions).

mod common;

use common::*;

#[test]
fn a_dst_fall_back_never_takes_usage_back() {
    let site = Site::with(|c| *c = c.replace("Asia/Almaty", "Europe/Berlin"));
    site.add_user("2026-10-25T00:30:00+02:00", "2055", "10m");
    site.insert(&[Call::answered("2055", MOBILE, "2026-10-25 02:30:00", 700)]);
    site.run("2026-10-25T02:45:00+02:00");
    let blocked = |now: &str| site.user_status(now, "2055")["blocked"].as_bool().unwrap();
    assert!(blocked("2026-10-25T02:45:00+02:00"));
    // The clock repeats 02:00-03:00: local "now" is earlier than the call's start.
    site.run("2026-10-25T02:05:00+01:00");
    assert!(blocked("2026-10-25T02:05:00+01:00"));
    assert_eq!(site.user_status("2026-10-25T02:05:00+01:00", "2055")["used_s"], 700);
    site.run("2026-10-25T02:35:00+01:00");
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event IN ('level_lowered', 'unblocked')"),
        0
    );
    assert_eq!(site.count("SELECT COUNT(*) FROM outbox WHERE threshold = 100"), 1);
    assert!(site.include().contains("exten => 2055,1,Return(DENY)"));
}

#[test]
fn a_user_disabled_mid_day_is_closed_with_the_final_cdr_usage() {
    let site = Site::new();
    site.add_user("2026-11-25T08:00:00", "2055", "30m");
    site.run("2026-11-25T09:00:00");
    // A 1,500 s call that ends after the last run; then the user is disabled.
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-25 09:10:00", 1500)]);
    site.ok("2026-11-25T10:00:00", &["user", "set", "2055", "--disable"]);
    site.run("2026-11-26T09:00:00");
    let used: i64 = site
        .state()
        .query_row(
            "SELECT used_s FROM ledger WHERE extension = '2055' AND day = '2026-11-25'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(used, 1500, "the 25th closes with its final CDR usage");
    // Re-enabled the next day: the carry reflects the call (1,800 - 1,500).
    site.ok("2026-11-26T09:05:00", &["user", "set", "2055", "--enable"]);
    site.run("2026-11-26T09:10:00");
    assert_eq!(site.user_status("2026-11-26T09:10:00", "2055")["carried_in_s"], 300);
}

#[test]
fn calls_made_while_disabled_count_for_the_day_once_re_enabled() {
    // The rule (README, Rules): a day's usage is every paid call of that
    // extension that day; disabling lifts the limit, it does not erase calls.
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    site.ok("2026-11-26T08:01:00", &["user", "set", "2055", "--disable"]);
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 1200)]);
    site.run("2026-11-26T09:30:00");
    site.ok("2026-11-26T10:00:00", &["user", "set", "2055", "--enable"]);
    site.run("2026-11-26T10:05:00");
    let row = site.user_status("2026-11-26T10:05:00", "2055");
    assert_eq!(row["used_s"], 1200);
    assert_eq!(row["remaining_s"], 600);
}

#[test]
fn a_call_through_a_local_channel_is_charged_once() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    // One 600 s call, as FreePBX writes it when it passes a Local channel.
    let mut to_local = Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 600);
    to_local.dstchannel = "Local/87011234567@from-internal-0000000a;1".into();
    let mut from_local = Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 600);
    from_local.channel = "Local/87011234567@from-internal-0000000a;2".into();
    site.insert(&[to_local, from_local]);
    site.run("2026-11-26T09:30:00");
    assert_eq!(site.user_status("2026-11-26T09:30:00", "2055")["used_s"], 600);
}

#[test]
fn the_same_leg_written_twice_is_charged_once() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 300)]);
    // A second CDR back end writing the same rows into the same table.
    site.sql("UPDATE cdr SET uniqueid = '1764140000.17'");
    site.sql("INSERT INTO cdr SELECT * FROM cdr");
    site.run("2026-11-26T09:30:00");
    assert_eq!(site.user_status("2026-11-26T09:30:00", "2055")["used_s"], 300);
}

#[test]
fn a_call_in_progress_at_midnight_is_charged_once_to_the_open_day() {
    let site = Site::new();
    site.add_user("2026-11-25T08:00:00", "2055", "30m");
    site.run("2026-11-25T23:55:00");
    site.run("2026-11-26T00:00:00");
    // The 23:58 -> 00:23 call's row is written when it ends.
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-25 23:58:00", 1500)]);
    site.run("2026-11-26T00:25:00");
    let row = site.user_status("2026-11-26T00:25:00", "2055");
    assert_eq!(row["used_s"], 1500, "charged to the open day");
    assert_eq!(row["carried_in_s"], 1800, "the 25th closed unused at midnight");
    let dump = site.dump();
    site.run("2026-11-26T00:30:00");
    site.run("2026-11-26T10:00:00");
    assert_eq!(site.dump(), dump, "charged exactly once; reruns change nothing");
    assert_eq!(site.count("SELECT COUNT(*) FROM audit WHERE event = 'late_usage'"), 1);
    let late: (i64, i64) = site
        .state()
        .query_row(
            "SELECT (SELECT late_out_s FROM ledger WHERE day = '2026-11-25'), \
                    (SELECT late_in_s FROM ledger WHERE day = '2026-11-26')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(late, (1500, 1500));
    // And the carry into the 27th reflects it: 3600 - 1500.
    site.run("2026-11-27T09:00:00");
    assert_eq!(site.user_status("2026-11-27T09:00:00", "2055")["carried_in_s"], 2100);
}

#[test]
fn rows_written_late_in_batches_are_charged_once_too() {
    let site = Site::new();
    site.add_user("2026-11-25T08:00:00", "2055", "30m");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-25 22:00:00", 600)]);
    site.run("2026-11-25T23:59:00");
    site.run("2026-11-26T00:01:00");
    // Two more rows of the 25th arrive in later batches (CDR batch mode).
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-25 23:50:00", 120)]);
    site.run("2026-11-26T00:06:00");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-25 23:55:00", 60)]);
    site.run("2026-11-26T00:11:00");
    site.run("2026-11-26T00:16:00");
    let row = site.user_status("2026-11-26T00:16:00", "2055");
    assert_eq!(row["used_s"], 180);
    assert_eq!(row["carried_in_s"], 1200);
}

#[test]
fn a_route_prefix_makes_check_warn_until_the_cdr_side_strips_it_too() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    // A FreePBX route `9|870XXXXXXXX`: dialled 987011234567, sent to the trunk as 87011234567.
    let mut call = Call::answered("2055", &format!("9{MOBILE}"), "2026-11-26 09:00:00", 600);
    call.lastdata = format!("PJSIP/{MOBILE}@kcell,300,T");
    site.insert(&[call]);
    site.run("2026-11-26T09:30:00");
    assert_eq!(
        site.user_status("2026-11-26T09:30:00", "2055")["used_s"],
        0,
        "the hook blocks, the CDR never counts"
    );
    let out = site.at("2026-11-26T09:30:00", &["check"]);
    assert!(
        stdout(&out).contains("warn  1 of the last two days' 1 calls were judged differently")
            && stdout(&out).contains("route_prefixes = [\"9\"]"),
        "{}",
        stdout(&out)
    );
    let config = std::fs::read_to_string(&site.config).unwrap().replacen(
        "timeout_s = 5",
        "timeout_s = 5\nroute_prefixes = [\"9\"]",
        1,
    );
    site.write_config(&config);
    site.run("2026-11-26T09:35:00");
    assert_eq!(site.user_status("2026-11-26T09:35:00", "2055")["used_s"], 600);
    let out = site.at("2026-11-26T09:35:00", &["check"]);
    assert!(
        stdout(&out).contains("ok    the CDR and the pre-dial hook judge the last two days' 1 calls alike"),
        "{}",
        stdout(&out)
    );
}
