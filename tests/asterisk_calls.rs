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
    let site = Site::new();
    let Some(pbx) = Pbx::start(&site, flavor) else { return };
    site.ok_now(&["user", "add", "2055", "--name", "Vasya", "--daily-limit", "12"]);
    site.ok_now(&["run"]);
    assert!(site.include().contains("exten => 2055,1,Return(12000)"));

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
