//! The monthly cap (`--monthly-limit`), end to end on a real MariaDB CDR and
//! a real SMTP server: the day's allowance never passes what the month has
//! left, the month's thresholds are mailed once, status and report show the
//! month, and a new month starts afresh.

mod common;

use common::{Call, MOBILE, Site, SmtpSink, stderr};

fn site_with_mail(sink: &SmtpSink) -> Site {
    let mail = sink.config();
    Site::with(|c| c.push_str(&mail))
}

fn subjects(sink: &SmtpSink) -> Vec<String> {
    let mut s: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or_default().to_string())
        .collect();
    s.sort();
    s
}

#[test]
fn a_monthly_limit_caps_the_days_mails_the_month_once_and_resets_with_the_next_month() {
    let sink = SmtpSink::start();
    let site = site_with_mail(&sink);
    // 1000 s a day, 2500 s a month (41m 40s).
    site.ok(
        "2026-11-28T08:00:00",
        &[
            "user",
            "add",
            "2055",
            "--name",
            "Vasya",
            "--email",
            "u2055@example.com",
            "--daily-limit",
            "1000",
            "--monthly-limit",
            "2500",
        ],
    );
    let list = site.ok("2026-11-28T08:00:00", &["user", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["monthly_limit_s"], 2500, "{list}");

    site.insert(&[Call::answered("2055", MOBILE, "2026-11-28 09:00:00", 1000)]);
    site.run("2026-11-28T10:00:00");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-29 09:00:00", 900)]);
    site.run("2026-11-29T10:00:00");
    site.run("2026-11-29T10:05:00"); // a rerun mails nothing new
    assert!(
        subjects(&sink).contains(&"Paid calls: 50% of this month's allowance used (2055)".to_string()),
        "{:?}",
        subjects(&sink)
    );

    // The 30th: 1900 of 2500 used, so the day gets 600 (not 1000 + 100 carried).
    site.run("2026-11-30T08:00:00");
    let s = site.user_status("2026-11-30T08:00:00", "2055");
    assert_eq!(s["allowance_s"], 600, "{s}");
    assert_eq!(s["monthly_limit_s"], 2500, "{s}");
    assert_eq!(s["month_used_s"], 1900, "{s}");
    assert_eq!(s["month_left_s"], 600, "{s}");
    assert_eq!(s["month_capped"], true, "{s}");
    assert_eq!(
        site.allows_ms("2055"),
        Some(600_000),
        "the include file caps at the month's remainder"
    );

    // Reached mid-day: blocked, one monthly exhaustion mail besides the day's.
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-30 09:00:00", 600)]);
    site.run("2026-11-30T10:00:00");
    site.run("2026-11-30T10:05:00");
    assert_eq!(site.allows_ms("2055"), None, "blocked when the month is used up");
    let text = site.ok("2026-11-30T10:06:00", &["status"]);
    assert!(
        text.contains("2055 month 2026-11: used 41m 40s of 41m 40s (100%), 0s left; the month sets today's allowance"),
        "{text}"
    );
    assert_eq!(
        subjects(&sink),
        [
            "Paid calls blocked: this month's allowance is used up (2055)",
            "Paid calls blocked: today's allowance is used up (2055)",
            "Paid calls blocked: today's allowance is used up (2055)",
            "Paid calls: 50% of this month's allowance used (2055)",
            "Paid calls: 90% of today's allowance used (2055)",
        ],
        "the 28th and the 30th exhausted their days, the 29th reached 90 %; the month mailed 50 % and 100 % once each"
    );
    let monthly = sink
        .messages()
        .into_iter()
        .find(|m| m["subject"] == "Paid calls blocked: this month's allowance is used up (2055)")
        .unwrap();
    let body = monthly["body"].as_str().unwrap();
    assert!(
        body.contains("you have used 41m 40s of your 41m 40s of paid call time for 2026-11"),
        "{body}"
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM outbox WHERE period = 'month' AND status = 'sent'"),
        2
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event = 'month_threshold_crossed'"),
        3,
        "50 % on the 29th, 90 % and 100 % on the 30th"
    );

    let report = site.ok("2026-11-30T12:00:00", &["report", "--month", "2026-11", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let user = &report["users"][0];
    assert_eq!(user["used_s"], 2500, "{user}");
    assert_eq!(user["monthly_limit_s"], 2500, "{user}");
    assert_eq!(user["percent_of_monthly_limit"], 100, "{user}");
    let text = site.ok("2026-11-30T12:00:00", &["report", "--month", "2026-11"]);
    assert!(
        text.contains("2055     monthly limit 41m 40s: used 41m 40s (100%), 0s left"),
        "{text}"
    );
    let week = site.ok(
        "2026-11-30T12:00:00",
        &["report", "--from", "2026-11-28", "--to", "2026-11-29", "--json"],
    );
    let week: serde_json::Value = serde_json::from_str(&week).unwrap();
    assert_eq!(
        week["users"][0]["percent_of_monthly_limit"],
        serde_json::Value::Null,
        "a period that is not a month has no monthly percent: {week}"
    );

    // A grant cannot pass the month: it is stored, and the admin is told why it adds nothing.
    let out = site.at("2026-11-30T12:30:00", &["grant", "2055", "10m"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2055's monthly limit leaves 10m 00s for today")
            && stderr(&out).contains("callquota user set 2055 --monthly-limit DURATION"),
        "{}",
        stderr(&out)
    );

    // December starts afresh: its own full day; nothing carries from a month-capped 30th.
    site.run("2026-12-01T08:00:00");
    let s = site.user_status("2026-12-01T08:00:00", "2055");
    assert_eq!(
        (s["allowance_s"].as_u64(), s["month_used_s"].as_u64()),
        (Some(1000), Some(0)),
        "{s}"
    );
    assert_eq!(site.allows_ms("2055"), Some(1_000_000));

    // Removing the cap is audited and leaves the daily limit alone.
    site.ok(
        "2026-12-01T09:00:00",
        &["user", "set", "2055", "--monthly-limit", "none"],
    );
    let log = site.ok("2026-12-01T09:01:00", &["log", "--event", "user_changed"]);
    assert!(log.contains("monthly limit 41m 40s -> none"), "{log}");
    site.run("2026-12-01T09:02:00");
    let s = site.user_status("2026-12-01T09:02:00", "2055");
    assert_eq!(s["monthly_limit_s"], serde_json::Value::Null, "{s}");
    assert_eq!(s["allowance_s"], 1000, "{s}");
}

#[test]
fn a_monthly_limit_is_checked_like_the_daily_one() {
    let site = Site::new();
    site.add_user("2026-11-28T08:00:00", "2055", "1000");
    for (bad, says) in [
        ("800h", "--monthly-limit 800h 00m 00s is more than a month (744h)"),
        ("-3", "\"-3\" is negative"),
        ("lots", "--monthly-limit"),
    ] {
        let out = site.at("2026-11-28T08:01:00", &["user", "set", "2055", "--monthly-limit", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{bad}: {}", stderr(&out));
    }
    site.ok("2026-11-28T08:02:00", &["user", "set", "2055", "--monthly-limit", "8h"]);
    let list = site.ok("2026-11-28T08:03:00", &["user", "list"]);
    assert!(list.contains("MONTHLY LIMIT"), "{list}");
    assert!(list.contains("8h 00m"), "{list}");
}
