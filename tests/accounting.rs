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

/// A paid call handed to a colleague after 3 s: the carrier's own row after
/// the transfer (dst 2066, cnum empty, the same linkedid) is charged to the
/// payer; an inbound call from that carrier is not; an aborted attended
/// transfer's two segments of one leg add up.
#[test]
fn the_carrier_leg_is_charged_after_a_transfer_and_per_segment() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    let mut before = Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 3);
    before.dstchannel = "PJSIP/kcell-00000012".into();
    let mut after = Call::answered("", "2066", "2026-11-26 09:00:03", 16);
    after.channel = "PJSIP/kcell-00000012".into();
    after.dstchannel = "PJSIP/2066-0000001c".into();
    let mut inbound = Call::answered("87019998877", "2066", "2026-11-26 09:30:00", 50);
    inbound.channel = "PJSIP/kcell-00000012".into();
    inbound.dstchannel = "PJSIP/2066-0000001d".into();
    let mut segment = Call::answered("2055", MOBILE2, "2026-11-26 10:00:00", 300);
    segment.dstchannel = "PJSIP/kcell-00000020".into();
    let mut again = segment.clone();
    again.calldate = "2026-11-26 10:05:00".into(); // as the first segment ends (answered 5 s in)
    again.billsec = 600;
    site.insert(&[before, after, inbound, segment, again]);
    // The two segments are one leg (uniqueid, dstchannel) in two records.
    for (at, uniqueid, linkedid, sequence) in [
        ("09:00:00", "100.1", "100.1", 1),
        ("09:00:03", "100.2", "100.1", 2),
        ("09:30:00", "200.1", "200.1", 3),
        ("10:00:00", "300.1", "300.1", 4),
        ("10:05:00", "300.1", "300.1", 5),
    ] {
        site.sql(&format!(
            "UPDATE cdr SET uniqueid = '{uniqueid}', linkedid = '{linkedid}', sequence = {sequence} \
             WHERE calldate = '2026-11-26 {at}'"
        ));
    }
    site.run("2026-11-26T11:00:00");
    assert_eq!(
        site.user_status("2026-11-26T11:00:00", "2055")["used_s"],
        3 + 16 + 300 + 600
    );
    // `calls` counts as `run` charges: the day's total equals the ledger's.
    let calls = site.ok("2026-11-26T11:00:00", &["calls", "2055"]);
    let day = calls
        .lines()
        .find(|l| l.starts_with("2026-11-26: counted"))
        .unwrap_or_default();
    assert!(day.contains("counted 15m 19s; the ledger has 15m 19s used"), "{calls}");
    assert!(
        calls.contains("16s more of the carrier leg after a transfer or hold"),
        "{calls}"
    );
}

/// Tables from before Asterisk 1.8 lack linkedid and sequence: runs and
/// `calls` go on (without tying a transfer's rows to the call).
#[test]
fn a_cdr_table_without_linkedid_and_sequence_still_works() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    site.sql("ALTER TABLE cdr DROP COLUMN linkedid, DROP COLUMN sequence");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 120)]);
    site.run("2026-11-26T10:00:00");
    assert_eq!(site.user_status("2026-11-26T10:00:00", "2055")["used_s"], 120);
    let calls = site.ok("2026-11-26T10:00:00", &["calls", "2055"]);
    assert!(calls.contains(MOBILE), "{calls}");
    let check = stdout(&site.at("2026-11-26T10:00:00", &["check"]));
    assert!(check.contains("has no linkedid and sequence columns"), "{check}");
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
fn late_rows_that_arrive_while_runs_fail_are_charged_by_the_next_run_that_works() {
    let site = Site::new();
    site.add_user("2026-11-25T08:00:00", "2055", "30m");
    site.run("2026-11-25T23:55:00");
    site.run("2026-11-26T00:00:00");
    // The 23:58 -> 00:23 call's row arrives while every run fails (the CDR is
    // out of reach) until after the 25th's settle deadline (30m + 15m: 00:45).
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-25 23:58:00", 1500)]);
    site.sql("RENAME TABLE cdr TO cdr_away");
    for now in ["2026-11-26T00:25:00", "2026-11-26T00:40:00"] {
        assert!(!site.at(now, &["run"]).status.success(), "the run at {now} must fail");
    }
    site.sql("RENAME TABLE cdr_away TO cdr");
    site.run("2026-11-26T01:00:00");
    let row = site.user_status("2026-11-26T01:00:00", "2055");
    assert_eq!(row["used_s"], 1500, "the late row is charged to the open day");
    assert_eq!(site.count("SELECT COUNT(*) FROM audit WHERE event = 'late_usage'"), 1);
    // Read once after the deadline, the 25th is settled: later runs change nothing.
    let dump = site.dump();
    site.run("2026-11-26T02:00:00");
    site.run("2026-11-26T09:00:00");
    assert_eq!(site.dump(), dump);
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

/// The hook caps a number by its digits when it has a dial pause, a
/// separator or a comma the route cut off; `run` charges the same calls,
/// though their `dst` does not start with a pattern's literal prefix (the
/// server-side prefilter lets any dst with a non-digit through). A number
/// that is not paid, digits and all, stays free.
#[test]
fn a_paid_number_with_pauses_or_separators_is_charged_by_its_digits() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    site.insert(&[
        Call::answered("2055", "8w7011234567", "2026-11-26 09:00:00", 60),
        Call::answered("2055", "870-112-345-67", "2026-11-26 09:10:00", 70),
        Call::answered("2055", "87011234567,1", "2026-11-26 09:20:00", 80),
        Call::answered("2055", "8w7172123456", "2026-11-26 09:30:00", 500),
        Call::answered("2055", "s", "2026-11-26 09:40:00", 600),
    ]);
    site.run("2026-11-26T10:00:00");
    assert_eq!(site.user_status("2026-11-26T10:00:00", "2055")["used_s"], 210);
}
