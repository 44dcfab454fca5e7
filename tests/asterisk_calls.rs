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
