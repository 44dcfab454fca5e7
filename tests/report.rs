//! `report`: a month of real runs, compared with a straightforward
//! recomputation from the ledger, grants and outbox rows.

mod common;

use common::*;

/// A deterministic mix of calls over November: each day some users call.
fn month_of_calls(site: &Site) {
    for ext in ["2055", "2066", "2077"] {
        site.add_user("2026-11-01T08:00:00", ext, "20m");
    }
    let mut seed: u64 = 7;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for day in 1..=26 {
        let date = format!("2026-11-{day:02}");
        let mut calls = Vec::new();
        for ext in ["2055", "2066", "2077"] {
            for _ in 0..next(4) {
                let at = format!("{date}T{:02}:{:02}:00", 9 + next(8), next(60));
                calls.push(Call::answered(ext, MOBILE, &at, (60 + next(900)) as i64));
            }
        }
        site.insert(&calls);
        if day % 9 == 0 {
            site.ok(
                &format!("{date}T12:00:00"),
                &["grant", "2066", "10m", "--reason", "deal"],
            );
        }
        site.run(&format!("{date}T23:55:00"));
    }
}

#[test]
fn a_month_report_equals_a_recomputation_from_the_ledgers() {
    let site = Site::new();
    month_of_calls(&site);
    let now = "2026-11-26T23:58:00";
    let report: serde_json::Value =
        serde_json::from_str(&site.ok(now, &["report", "--month", "2026-11", "--json"])).unwrap();
    assert_eq!(
        (report["from"].as_str(), report["to"].as_str()),
        (Some("2026-11-01"), Some("2026-11-30"))
    );

    let db = site.state();
    let sum = |sql: &str, ext: &str| -> i64 {
        db.query_row(sql, [ext], |r| r.get::<_, Option<i64>>(0))
            .unwrap()
            .unwrap_or(0)
    };
    let mut totals = [0i64; 4];
    for user in report["users"].as_array().unwrap() {
        let ext = user["extension"].as_str().unwrap();
        let expect = [
            (
                "days",
                sum(
                    "SELECT COUNT(*) FROM ledger WHERE extension = ?1 AND day LIKE '2026-11-%'",
                    ext,
                ),
            ),
            (
                "allowance_s",
                sum(
                    "SELECT SUM(allowance_s) FROM ledger WHERE extension = ?1 AND day LIKE '2026-11-%'",
                    ext,
                ),
            ),
            (
                "used_s",
                sum(
                    "SELECT SUM(used_s) FROM ledger WHERE extension = ?1 AND day LIKE '2026-11-%'",
                    ext,
                ),
            ),
            (
                "days_blocked",
                sum(
                    "SELECT COUNT(*) FROM ledger WHERE extension = ?1 AND day LIKE '2026-11-%' AND blocked = 1",
                    ext,
                ),
            ),
            (
                "grants",
                sum(
                    "SELECT COUNT(*) FROM grants WHERE extension = ?1 AND day LIKE '2026-11-%'",
                    ext,
                ),
            ),
            (
                "granted_s",
                sum(
                    "SELECT SUM(seconds) FROM grants WHERE extension = ?1 AND day LIKE '2026-11-%'",
                    ext,
                ),
            ),
            (
                "notices",
                sum(
                    "SELECT COUNT(*) FROM outbox WHERE extension = ?1 AND day LIKE '2026-11-%' AND status = 'sent'",
                    ext,
                ),
            ),
            // The month ends on the open 26th: what it has left.
            (
                "carried_out_s",
                sum(
                    "SELECT MAX(allowance_s - used_s, 0) FROM ledger WHERE extension = ?1 AND day = '2026-11-26'",
                    ext,
                ),
            ),
        ];
        for (field, want) in expect {
            assert_eq!(user[field].as_i64(), Some(want), "{ext} {field}: {user}");
        }
        let (a, u) = (user["allowance_s"].as_i64().unwrap(), user["used_s"].as_i64().unwrap());
        assert_eq!(
            user["percent_used"].as_i64(),
            Some(if a == 0 { 0 } else { u * 100 / a })
        );
        totals[0] += user["days"].as_i64().unwrap();
        totals[1] += a;
        totals[2] += u;
        totals[3] += user["granted_s"].as_i64().unwrap();
    }
    assert_eq!(report["users"].as_array().unwrap().len(), 3);
    let t = &report["totals"];
    assert_eq!(
        [
            t["days"].as_i64().unwrap(),
            t["allowance_s"].as_i64().unwrap(),
            t["used_s"].as_i64().unwrap(),
            t["granted_s"].as_i64().unwrap()
        ],
        totals
    );
    assert!(report["users"][1]["days_blocked"].as_i64().unwrap() >= 0);

    // A closed period: the carry is the next day's carried-in time.
    let week: serde_json::Value =
        serde_json::from_str(&site.ok(now, &["report", "--from", "2026-11-02", "--to", "2026-11-08", "--json"]))
            .unwrap();
    for user in week["users"].as_array().unwrap() {
        let ext = user["extension"].as_str().unwrap();
        assert_eq!(user["days"], 7);
        assert_eq!(
            user["carried_out_s"].as_i64(),
            Some(sum(
                "SELECT carried_in_s FROM ledger WHERE extension = ?1 AND day = '2026-11-09'",
                ext
            )),
            "{user}"
        );
    }

    let text = site.ok(now, &["report", "--month", "2026-11"]);
    assert!(
        text.starts_with(
            "Report 2026-11-01 to 2026-11-30 (1 day still open: figures may change); made 2026-11-26 23:58"
        ),
        "{text}"
    );
    assert!(text.contains("TOTAL    3 users"), "{text}");
    let csv = site.ok(now, &["report", "--month", "2026-11", "--csv"]);
    assert_eq!(csv.lines().count(), 5, "header, 3 users, totals: {csv}");
    assert!(csv.starts_with(
        "extension,name,days,allowance_s,used_s,percent_used,days_blocked,grants,granted_s,carried_out_s,notices,\
         monthly_limit_s,percent_of_monthly_limit\n"
    ));

    for bad in [
        &["report", "--month", "2026-13"][..],
        &["report", "--from", "2026-11-10", "--to", "2026-11-01"],
        &["report", "--json", "--csv"],
    ] {
        let out = site.at(now, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert_eq!(stderr(&out).lines().count(), 1, "{bad:?}: {}", stderr(&out));
    }
}

/// The HTML report is one self-contained page that renders: headless
/// Chromium (Debian's `chromium`) takes a screenshot that is not blank, and
/// the page holds every user's figures with names escaped.
#[test]
fn the_html_report_renders_in_chromium() {
    let site = Site::new();
    month_of_calls(&site);
    site.ok(
        "2026-11-26T23:56:00",
        &["user", "set", "2077", "--name", "<script>alert(1)</script> & Co"],
    );
    let now = "2026-11-26T23:58:00";
    let page = site.path("report.html");
    let out = site.at(now, &["report", "--month", "2026-11", "--html", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"),
        "escaped"
    );
    assert!(!html.contains("<script"), "no script at all");
    for external in ["src=", "href=", "url(", "@import"] {
        assert!(!html.contains(external), "{external}: the page must be self-contained");
    }
    let report: serde_json::Value =
        serde_json::from_str(&site.ok(now, &["report", "--month", "2026-11", "--json"])).unwrap();
    for user in report["users"].as_array().unwrap() {
        let used = callquota::values::duration::format(user["used_s"].as_u64().unwrap());
        let row = format!("<td class=\"l\">{}</td>", user["extension"].as_str().unwrap());
        assert!(html.contains(&row), "{row}");
        assert!(html.contains(&format!("<td>{used}</td>")), "{used}");
        assert!(html.contains(&format!("<td>{}%</td>", user["percent_used"])), "{user}");
    }
    assert!(html.contains("Paid calls, 2026-11-01 to 2026-11-30"));
    assert!(html.contains("Made 2026-11-26 23:58"));

    let shot = site.path("report.png");
    let chromium = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,900",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .env("HOME", site.path(""))
        .output()
        .expect("Debian's chromium is required for this test (.ci/run installs it)");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&chromium.stderr)
    );
    // Decode the PNG with Python's zlib and measure how much of it is drawn.
    let measure = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(PNG_INK)
        .arg(&shot)
        .output()
        .unwrap();
    let verdict = String::from_utf8_lossy(&measure.stdout).to_string();
    let mut it = verdict.split_whitespace().map(|v| v.parse::<f64>().unwrap());
    let (ink, colours) = (it.next().unwrap(), it.next().unwrap());
    assert!(ink > 0.02, "the screenshot is nearly blank: {verdict}");
    assert!(colours >= 5.0, "too few colours for bars and text: {verdict}");
}

/// Prints the share of pixels that are not white and the number of
/// distinct colours of an 8-bit RGB(A), non-interlaced PNG.
const PNG_INK: &str = r#"
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
pos, idat, ihdr = 8, b'', None
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
    if kind == b'IDAT': idat += body
    pos += 12 + n
w, h, depth, ctype = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
bpp = {2: 3, 6: 4}[ctype]
raw, stride = zlib.decompress(idat), w * bpp
prev, ink, colours = bytearray(stride), 0, set()
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        px = bytes(line[x:x + 3])
        colours.add(px)
        if px != b'\xff\xff\xff': ink += 1
    prev = line
print(ink / (w * h), len(colours))
"#;
