//! Per-direction allowances (`user set 2055 --limit international=5m`), end
//! to end on a real MariaDB CDR and a real SMTP server: each direction
//! allowance is kept beside the shared one (thresholds, notices, blocking,
//! grants, carry-over), the include file carries its figures, and status,
//! report and the audit log show one line per allowance.

mod common;

use common::{Call, MOBILE, Site, SmtpSink, stderr};

const INTL: &str = "81049301234567";

fn site(sink: &SmtpSink) -> Site {
    let mail = sink.config();
    let site = Site::with(|c| c.push_str(&mail));
    let config = std::fs::read_to_string(&site.config).unwrap();
    let with_intl = config.replace(
        "[limits]",
        "[[direction]]\nname = \"international\"\npatterns = [\"_810X.\"]\n\n[limits]",
    );
    assert_ne!(with_intl, config);
    site.write_config(&with_intl);
    site
}

/// The include file's line for `ext` in `context`, as `allowance:used` or DENY.
fn figure_in(site: &Site, context: &str, ext: &str) -> Option<String> {
    let text = site.include();
    let section = text.split(&format!("[{context}]\n")).nth(1)?;
    section
        .lines()
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| l.strip_prefix(&format!("exten => {ext},1,Return(")))
        .map(|v| v.trim_end_matches(')').to_string())
}

#[test]
fn a_direction_allowance_is_kept_beside_the_shared_one() {
    let sink = SmtpSink::start();
    let site = site(&sink);
    let t0 = "2026-11-26T08:00:00";
    site.add_user(t0, "2066", "1000");
    site.run(t0);
    assert!(
        !site.include().contains("callquota-dir-"),
        "nobody has a direction allowance: the file is as before"
    );
    site.ok(
        t0,
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
            "--limit",
            "international=300",
        ],
    );
    site.run(t0);
    assert_eq!(
        figure_in(&site, "callquota-users-d-international", "2055").as_deref(),
        Some("300000:0")
    );
    assert_eq!(figure_in(&site, "callquota-users-d-international", "2066"), None);
    assert_eq!(
        figure_in(&site, "callquota-users", "2055").as_deref(),
        Some("1000000:0")
    );

    // 200 s international and 100 s mobile: the shared allowance counts both,
    // the international one its own.
    site.insert(&[
        Call::answered("2055", INTL, "2026-11-26 09:00:00", 200),
        Call::answered("2055", MOBILE, "2026-11-26 09:10:00", 100),
    ]);
    site.run("2026-11-26T09:30:00");
    let s = site.user_status("2026-11-26T09:30:00", "2055");
    assert_eq!(s["used_s"], 300, "{s}");
    let d = &s["directions"][0];
    assert_eq!(
        (d["direction"].as_str(), d["used_s"].as_u64(), d["remaining_s"].as_u64()),
        (Some("international"), Some(200), Some(100)),
        "{s}"
    );
    let text = site.ok("2026-11-26T09:31:00", &["status"]);
    assert!(
        text.contains("2055 international: used 3m 20s of 5m 00s (66%), 1m 40s left"),
        "{text}"
    );

    // 150 s more: the international allowance is used up, the shared one is not.
    site.insert(&[Call::answered("2055", INTL, "2026-11-26 10:00:00", 150)]);
    site.run("2026-11-26T10:30:00");
    assert_eq!(
        figure_in(&site, "callquota-users-d-international", "2055").as_deref(),
        Some("DENY")
    );
    assert_eq!(
        figure_in(&site, "callquota-users", "2055").as_deref(),
        Some("1000000:450000")
    );
    let calls = site.ok("2026-11-26T10:31:00", &["calls", "2055"]);
    assert!(
        calls.contains("2026-11-26 international: counted 5m 50s; its ledger has 5m 50s used of 5m 00s, open"),
        "{calls}"
    );
    let log = site.ok(
        "2026-11-26T10:31:00",
        &["log", "--ext", "2055", "--event", "direction_blocked"],
    );
    assert!(log.contains("international: paid calls denied"), "{log}");
    let shared = site.ok("2026-11-26T10:31:00", &["log", "--ext", "2055", "--event", "blocked"]);
    assert!(
        !shared.contains("2055"),
        "the shared allowance is not blocked: {shared}"
    );
    let mut subjects: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or_default().to_string())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Paid calls blocked: today's allowance is used up (2055) [international]",
            "Paid calls: 50% of today's allowance used (2055) [international]",
        ],
        "the direction's thresholds, once each; the shared allowance is at 45 %"
    );

    // A grant to the direction reopens it at once; the shared allowance is unchanged.
    site.ok(
        "2026-11-26T11:00:00",
        &["grant", "2055", "2m", "--direction", "international"],
    );
    assert_eq!(
        figure_in(&site, "callquota-users-d-international", "2055").as_deref(),
        Some("420000:350000")
    );
    assert_eq!(
        figure_in(&site, "callquota-users", "2055").as_deref(),
        Some("1000000:450000")
    );
    let out = site.at(
        "2026-11-26T11:01:00",
        &["grant", "2066", "1m", "--direction", "international"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2066 has no international allowance; give one with `callquota user set 2066 --limit international=DURATION`"),
        "{}",
        stderr(&out)
    );

    // The next day carries each allowance's own remainder.
    site.run("2026-11-27T08:00:00");
    let s = site.user_status("2026-11-27T08:00:00", "2055");
    assert_eq!(s["carried_in_s"], 550, "{s}");
    assert_eq!(s["directions"][0]["carried_in_s"], 70, "{s}");
    assert_eq!(s["directions"][0]["allowance_s"], 370, "{s}");

    let report = site.ok("2026-11-27T09:00:00", &["report", "--month", "2026-11", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let user = report["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["extension"] == "2055")
        .unwrap();
    assert_eq!(user["directions"][0]["direction"], "international", "{user}");
    assert_eq!(user["directions"][0]["used_s"], 350, "{user}");
    assert_eq!(
        user["directions"][0]["days_blocked"], 1,
        "blocked on the 26th before the grant unblocked it: a blocked day all the same (core::blocked): {user}"
    );
    let text = site.ok("2026-11-27T09:00:00", &["report", "--month", "2026-11"]);
    assert!(text.contains("2055     international: used 5m 50s of"), "{text}");

    // Removing the direction limit leaves the shared one alone, audited.
    site.ok(
        "2026-11-27T09:10:00",
        &["user", "set", "2055", "--limit", "international=none"],
    );
    let log = site.ok("2026-11-27T09:11:00", &["log", "--event", "user_changed"]);
    assert!(log.contains("international daily limit 5m 00s -> none"), "{log}");
    site.run("2026-11-27T09:12:00");
    assert!(
        !site.include().contains("callquota-users-d-international"),
        "{}",
        site.include()
    );
}

#[test]
fn a_direction_limit_must_name_a_configured_direction() {
    let sink = SmtpSink::start();
    let site = site(&sink);
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    for (bad, says) in [
        (
            "satellite=10m",
            "no [[direction]] named \"satellite\" in the config (there are: mobile, international)",
        ),
        ("international", "write DIRECTION=DURATION"),
        ("inter national=1m", "is not a direction name"),
        ("international=lots", "is not valid"),
    ] {
        let out = site.at("2026-11-26T08:01:00", &["user", "set", "2055", "--limit", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn a_direction_allowance_starts_the_day_it_is_given_and_a_vanished_direction_stops_the_run() {
    let sink = SmtpSink::start();
    let site = site(&sink);
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 100)]);
    site.run("2026-11-26T10:00:00");
    // Given after midnight, before the run that closes the 26th.
    site.ok(
        "2026-11-27T00:02:00",
        &["user", "set", "2055", "--limit", "international=300"],
    );
    site.run("2026-11-27T00:05:00");
    assert_eq!(
        site.count("SELECT COUNT(*) FROM direction_ledger WHERE day = '2026-11-26'"),
        0,
        "the 26th had no international allowance"
    );
    let s = site.user_status("2026-11-27T00:06:00", "2055");
    assert_eq!(
        (
            s["directions"][0]["allowance_s"].as_u64(),
            s["directions"][0]["carried_in_s"].as_u64()
        ),
        (Some(300), Some(0)),
        "nothing carries into its first day: {s}"
    );

    // The direction renamed in the config: its allowance could not be told
    // apart, so runs stop with the fix, and the last include file stays.
    let include = site.include();
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&config.replace("name = \"international\"", "name = \"intl\""));
    let out = site.at("2026-11-27T00:10:00", &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("2055 has a international allowance but the config has no [[direction]] named \"international\"")
            && stderr(&out).contains("callquota user set 2055 --limit international=none"),
        "{}",
        stderr(&out)
    );
    assert_eq!(site.include(), include);
    site.ok(
        "2026-11-27T00:11:00",
        &["user", "set", "2055", "--limit", "international=none"],
    );
    site.run("2026-11-27T00:12:00");
}
