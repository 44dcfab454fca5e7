//! `status` at a glance, end to end: golden files of the table on a
//! terminal (a real pty from util-linux `script`, with and without colour)
//! and with `--ascii`; and of the `calls` table. Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test --test status_view` and review the diff.

mod common;

use common::*;

const T: &str = "2026-11-26T15:00:00";

/// Four users at different levels of use, one blocked, one disabled.
fn office() -> Site {
    let site = Site::with(|c| *c = c.replace("[dialplan]\n", "[dialplan]\nlive = false\n"));
    for (ext, name, limit) in [
        ("2055", "Vasya Pupkin", "30m"),
        ("2066", "Әсел Нұрланқызы", "20m"),
        ("2077", "Ivan Petrov", "1h"),
        ("2088", "A very long name that does not fit the column", "10m"),
        ("2099", "Gone Home", "10m"),
    ] {
        site.ok(
            "2026-11-26T08:00:00",
            &["user", "add", ext, "--name", name, "--daily-limit", limit],
        );
    }
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-26T09:00:00", 1000),
        Call::answered("2066", MOBILE, "2026-11-26T10:00:00", 1300),
        Call::answered("2077", MOBILE, "2026-11-26T11:00:00", 300),
        Call::answered("2088", MOBILE2, "2026-11-26T12:00:00", 700),
    ]);
    site.ok("2026-11-26T13:00:00", &["grant", "2055", "5m"]);
    site.ok("2026-11-26T13:00:00", &["user", "set", "2099", "--disable"]);
    site.run("2026-11-26T14:55:00");
    site
}

fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(actual, expected, "{name} differs; UPDATE_GOLDEN=1 to accept:\n{actual}");
}

/// `status` run inside a pseudo-terminal, as an admin sees it.
fn on_a_terminal(site: &Site, no_color: bool) -> String {
    let bin = env!("CARGO_BIN_EXE_callquota");
    let command = format!(
        "{bin} --config {} --allow-future --now {T} status",
        site.config.display()
    );
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &command, "/dev/null"]).env_remove("NO_COLOR");
    if no_color {
        script.env("NO_COLOR", "1");
    }
    let out = script.output().expect("util-linux script");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().replace("\r\n", "\n")
}

#[test]
fn status_table_golden_files() {
    let site = office();
    let ascii = site.ok(T, &["status", "--ascii"]);
    golden("status-ascii.txt", &ascii);
    assert_eq!(site.ok(T, &["status"]), ascii, "not a terminal: plain bars, no colour");
    golden("status-terminal.txt", &on_a_terminal(&site, false));
    let plain = on_a_terminal(&site, true);
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain}");
    assert!(plain.contains('█'), "{plain}");
    golden("status-terminal-no-color.txt", &plain);

    let by_name = site.ok(T, &["status", "--sort", "name"]);
    let order: Vec<&str> = by_name.lines().skip(2).map(|l| &l[..4]).collect();
    assert_eq!(order, ["2088", "2099", "2077", "2055", "2066"], "{by_name}");
    let json: serde_json::Value = serde_json::from_str(&site.ok(T, &["status", "--json"])).unwrap();
    let vasya = json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["extension"] == "2055")
        .unwrap();
    assert_eq!(vasya["percent_used"], 47, "1000 of 35m: {vasya}");
}

/// `calls` keeps its columns where they are whatever the row holds: a long
/// trunk channel, a long number (#22 item 8).
#[test]
fn calls_table_golden_file() {
    let site = Site::with(|c| *c = c.replace("[dialplan]\n", "[dialplan]\nlive = false\n"));
    site.ok(
        "2026-11-26T08:00:00",
        &["user", "add", "2055", "--name", "Vasya", "--daily-limit", "30m"],
    );
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-26T09:00:00", 125),
        Call {
            dstchannel: "PJSIP/a-very-long-trunk-name-for-the-second-carrier-0000001b".into(),
            ..Call::answered("2055", MOBILE2, "2026-11-26T10:00:00", 61)
        },
        Call::answered("2055", "87011234567890123456", "2026-11-26T11:00:00", 30),
        Call::answered("2055", MOBILE, "2026-11-26T12:00:00", 0).disposition("NO ANSWER"),
    ]);
    site.run("2026-11-26T14:55:00");
    let table = site.ok(T, &["calls", "2055"]);
    golden("calls.txt", &table);
    let rows: Vec<&str> = table.lines().take(5).collect();
    let counted: Vec<usize> = rows
        .iter()
        .map(|l| {
            let at = l
                .find(" yes, ")
                .or_else(|| l.find(" no: "))
                .or_else(|| l.find(" COUNTED"))
                .unwrap();
            l[..at].chars().count()
        })
        .collect();
    assert!(counted.iter().all(|c| *c == counted[0]), "columns shifted:\n{table}");
}
