//! A state written by the previous release (schema V5, before the monthly
//! cap; made by `tests/fixtures/state-v5/make.sh` with that release's
//! binary) upgrades in place: every figure the old binary showed is shown
//! the same, and the new columns read as "no monthly limit".

mod common;

use common::Site;

const NOW: &str = "2026-11-24T12:00:00";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(common::fixture(&format!("state-v5/{name}"))).unwrap()
}

/// Fields whose meaning a later release changed on purpose, checked on
/// their own: `carried_out_s` is null while the period's last day is open
/// (#22 item 7: its remainder is not carried yet).
const REDEFINED: [&str; 1] = ["carried_out_s"];

/// Every field the old binary printed has the same value now.
fn assert_same_figures(old: &serde_json::Value, new: &serde_json::Value, what: &str) {
    match (old, new) {
        (serde_json::Value::Object(o), serde_json::Value::Object(n)) => {
            for (key, value) in o {
                let got = n.get(key).unwrap_or_else(|| panic!("{what}: {key} is gone: {new}"));
                if REDEFINED.contains(&key.as_str()) {
                    continue;
                }
                assert_same_figures(value, got, &format!("{what}.{key}"));
            }
        }
        (serde_json::Value::Array(o), serde_json::Value::Array(n)) => {
            assert_eq!(o.len(), n.len(), "{what}: {new}");
            for (i, (a, b)) in o.iter().zip(n).enumerate() {
                assert_same_figures(a, b, &format!("{what}[{i}]"));
            }
        }
        _ => assert_eq!(old, new, "{what}"),
    }
}

#[test]
fn a_state_from_the_previous_release_upgrades_in_place_with_identical_figures() {
    let site = Site::new();
    let state = site.path("state.db");
    rusqlite::Connection::open(&state)
        .unwrap()
        .execute_batch(&fixture("state.sql"))
        .unwrap();
    let before: i64 = site.count("SELECT MAX(version) FROM refinery_schema_history");
    assert_eq!(before, 5, "the fixture is a V5 state");

    for day in ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24"] {
        let old: serde_json::Value = serde_json::from_str(&fixture(&format!("status-{day}.json"))).unwrap();
        let new: serde_json::Value = serde_json::from_str(&site.ok(NOW, &["status", "--day", day, "--json"])).unwrap();
        assert_same_figures(&old, &new, &format!("status {day}"));
        for row in new.as_array().unwrap() {
            assert_eq!(row["monthly_limit_s"], serde_json::Value::Null, "{row}");
            assert_eq!(row["month_capped"], false, "{row}");
        }
    }
    let old: serde_json::Value = serde_json::from_str(&fixture("report.json")).unwrap();
    let new: serde_json::Value =
        serde_json::from_str(&site.ok(NOW, &["report", "--month", "2026-11", "--json"])).unwrap();
    assert_same_figures(&old, &new, "report");
    // The 24th is open: no carry-out is known yet, for anyone or in total.
    assert!(new["totals"]["carried_out_s"].is_null(), "{new}");
    assert!(
        new["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["carried_out_s"].is_null()),
        "{new}"
    );

    assert!(site.count("SELECT MAX(version) FROM refinery_schema_history") >= 6);
    assert_eq!(
        site.count("SELECT COUNT(*) FROM users WHERE monthly_limit_s IS NOT NULL"),
        0
    );
    assert_eq!(site.count("SELECT COUNT(*) FROM outbox WHERE period <> 'day'"), 0);
    // The upgraded state keeps working: the open day's figures after a run of the new binary.
    site.ok(NOW, &["user", "set", "2055", "--monthly-limit", "2h"]);
    let s = site.user_status(NOW, "2055");
    assert_eq!(s["monthly_limit_s"], 7200, "{s}");
    // November so far before the 24th: 700 + 400 + 90 (the 20th and the 22nd); the 24th used 500.
    assert_eq!(s["month_used_s"], 1190 + 500, "{s}");
}
