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
                // Days a run blocked while the day was open (before its local
                // midnight; Almaty is UTC+5), never by the close.
                sum(
                    "SELECT COUNT(DISTINCT day) FROM audit WHERE event = 'blocked' AND extension = ?1 \
                     AND day LIKE '2026-11-%' AND at < strftime('%Y-%m-%dT%H:%M:%SZ', day, '+1 day', '-5 hours')",
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
        ];
        // The month ends on the open 26th: its carry-out is not known yet.
        assert!(user["carried_out_s"].is_null(), "{user}");
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
    site.ok(
        "2026-11-26T23:56:00",
        &[
            "user",
            "set",
            "2066",
            "--name",
            "Әсел Нұрланқызы Байжанова, head of the regional sales department",
        ],
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

    // At 1200 px wide the page does not scroll sideways and the last column,
    // Notices, is in view (#22 item 8). A copy of the page gets a script that
    // writes Chromium's own layout figures into the DOM, which --dump-dom prints.
    let probe = site.path("report-probe.html");
    std::fs::write(
        &probe,
        html.replace(
            "</body>",
            "<script>var d=document.documentElement,h=[...document.querySelectorAll('th')].pop();\
             document.body.setAttribute('data-layout',d.scrollWidth+' '+d.clientWidth+' '+\
             Math.ceil(h.getBoundingClientRect().right)+' '+h.textContent)</script></body>",
        ),
    )
    .unwrap();
    let dom = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,900",
            "--dump-dom",
        ])
        .arg(format!("file://{}", probe.display()))
        .env("HOME", site.path(""))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    let layout = dom
        .split("data-layout=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no layout figures in the dumped DOM: {dom}"));
    let figures: Vec<&str> = layout.splitn(4, ' ').collect();
    let n = |i: usize| figures[i].parse::<u64>().unwrap();
    let (scroll, client, last_right) = (n(0), n(1), n(2));
    assert_eq!(figures[3], "Notices", "{layout}");
    assert!(client <= 1200 && client > 1000, "the window is 1200 px wide: {layout}");
    assert!(scroll <= client, "the page scrolls sideways at 1200 px: {layout}");
    assert!(last_right <= client, "Notices is cut off at 1200 px: {layout}");
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

/// One definition of "blocked" and of each column (#22 item 7): status,
/// report (text, JSON, CSV, HTML) and the digest agree on who was blocked
/// on a day, and when. A user blocked during the day counts; one found over
/// only when the next day's run closed the day does not (the close is no
/// time of day); one blocked and then granted time counts. The open day's
/// carry-out is not known yet, and nowhere shown as carried.
#[test]
fn status_report_digest_and_html_agree_on_blocked_days() {
    let site = Site::new();
    let mail = site.path("mail");
    std::fs::create_dir(&mail).unwrap();
    site.write_config(&format!(
        "{}\n[mail]\ntransport = \"dir\"\ndir = \"{}\"\nfrom = \"callquota@example.com\"\ndigest_to = [\"boss@example.com\"]\n",
        site.default_config(),
        mail.display()
    ));
    for ext in ["2055", "2066", "2077", "2088"] {
        site.add_user("2026-11-25T08:00:00", ext, "10m");
    }
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-25T09:00:00", 700), // blocked during the day
        Call::answered("2066", MOBILE, "2026-11-25T10:00:00", 500), // over only at the close
        Call::answered("2077", MOBILE, "2026-11-25T09:30:00", 650), // blocked, then granted
        Call::answered("2088", MOBILE, "2026-11-25T09:45:00", 100), // never
    ]);
    site.run("2026-11-25T11:00:00");
    site.ok("2026-11-25T12:00:00", &["grant", "2077", "5m"]);
    site.run("2026-11-25T23:00:00");
    // Ends at 23:53:20, after the day's last run: only the close sees it.
    site.insert(&[Call::answered("2066", MOBILE, "2026-11-25T23:50:00", 200)]);
    site.run("2026-11-26T00:05:00");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26T09:00:00", 700)]);
    site.run("2026-11-26T10:00:00");
    let now = "2026-11-26T12:00:00";
    let day = "2026-11-25";
    let blocked_on_25 = ["2055", "2077"];

    // status of the closed day: blocked_at (JSON) and the STATE text.
    let status: serde_json::Value = serde_json::from_str(&site.ok(now, &["status", "--day", day, "--json"])).unwrap();
    let mut with_time: Vec<&str> = status
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["blocked_at"].is_null())
        .map(|r| r["extension"].as_str().unwrap())
        .collect();
    with_time.sort();
    assert_eq!(with_time, blocked_on_25, "{status}");
    let of = |ext: &str| {
        status
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["extension"] == ext)
            .unwrap()
            .clone()
    };
    assert_eq!(
        of("2055")["blocked_at"],
        "2026-11-25T06:00:00Z",
        "the 11:00 run, Almaty time"
    );
    let text = site.ok(now, &["status", "--day", day]);
    let line = |ext: &str| text.lines().find(|l| l.starts_with(ext)).unwrap().to_string();
    assert!(line("2055").ends_with("BLOCKED 11:00"), "{text}");
    assert!(line("2077").ends_with("ok (blocked 11:00)"), "{text}");
    assert!(line("2066").ends_with("ok (over at close)"), "{text}");
    assert!(line("2088").ends_with("ok"), "{text}");
    // Today's status: blocked by the 10:00 run.
    assert!(
        site.ok(now, &["status"])
            .lines()
            .any(|l| l.starts_with("2055") && l.ends_with("BLOCKED 10:00"))
    );

    // report of that one day, as JSON, CSV and text.
    let one: serde_json::Value =
        serde_json::from_str(&site.ok(now, &["report", "--from", day, "--to", day, "--json"])).unwrap();
    for u in one["users"].as_array().unwrap() {
        let ext = u["extension"].as_str().unwrap();
        let want = u64::from(blocked_on_25.contains(&ext));
        assert_eq!(u["days_blocked"].as_u64(), Some(want), "{ext}: {u}");
        // The 25th is closed: its carry-out is the 26th's carried-in time.
        assert!(u["carried_out_s"].is_u64(), "{u}");
    }
    assert_eq!(one["totals"]["days_blocked"], 2);
    let csv = site.ok(now, &["report", "--from", day, "--to", day, "--csv"]);
    let blocked_col: Vec<(String, String)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[6].to_string())
        })
        .collect();
    assert_eq!(
        blocked_col,
        [
            ("2055", "1"),
            ("2066", "0"),
            ("2077", "1"),
            ("2088", "0"),
            ("TOTAL", "2")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
        "{csv}"
    );
    let table = site.ok(now, &["report", "--from", day, "--to", day]);
    let header = table.lines().nth(1).unwrap();
    let at = header.find("BLOCKED").unwrap() + "BLOCKED".len();
    let cell = |ext: &str| {
        let l = table.lines().find(|l| l.starts_with(ext)).unwrap();
        l[..at].split_whitespace().last().unwrap().to_string()
    };
    assert_eq!(
        ["2055", "2066", "2077", "2088", "TOTAL"].map(cell),
        ["1", "0", "1", "0", "2"],
        "{table}"
    );

    // The digest of the 25th, mailed by the run that closed it.
    let digests: Vec<serde_json::Value> = read_mail(&mail)
        .into_iter()
        .filter(|m| m["subject"].as_str().unwrap_or("").starts_with("Paid calls on "))
        .collect();
    assert_eq!(digests.len(), 1);
    let subject = digests[0]["subject"].as_str().unwrap();
    assert!(subject.ends_with(", 2 blocked"), "{subject}");
    let body = digests[0]["body"].as_str().unwrap();
    for (ext, when) in [("2055", "11:00"), ("2077", "11:00"), ("2066", "-"), ("2088", "-")] {
        let row = body.lines().find(|l| l.starts_with(ext)).unwrap();
        assert!(row.ends_with(&format!("  {when}")), "{ext}: {body}");
    }

    // The month: the open 26th counts for 2055 (blocked at 10:00); its
    // carry-out is not known while the 26th is open.
    let month: serde_json::Value =
        serde_json::from_str(&site.ok(now, &["report", "--month", "2026-11", "--json"])).unwrap();
    let days_blocked = |ext: &str| {
        month["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["extension"] == ext)
            .unwrap()["days_blocked"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(["2055", "2066", "2077", "2088"].map(days_blocked), [2, 0, 1, 0]);
    assert!(
        month["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["carried_out_s"].is_null()),
        "{month}"
    );
    assert!(
        month["totals"]["carried_out_s"].is_null(),
        "a partial sum is no total: {month}"
    );
    let text = site.ok(now, &["report", "--month", "2026-11"]);
    assert!(
        text.lines().find(|l| l.starts_with("2055")).unwrap().contains(" open "),
        "{text}"
    );
    let csv = site.ok(now, &["report", "--month", "2026-11", "--csv"]);
    assert!(csv.lines().nth(1).unwrap().split(',').nth(9) == Some(""), "{csv}");

    // The HTML page of the month: a dark cap per blocked day, and the same counts.
    let page = site.path("month.html");
    site.ok(now, &["report", "--month", "2026-11", "--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("fill=\"#5b0000\"").count(), 3, "{html}");
    assert_eq!(
        html.matches(", blocked</title>").count(),
        2,
        "closed blocked days: {html}"
    );
    assert!(
        html.contains("<td>8</td><td>3</td>"),
        "totals: 8 days, 3 blocked: {html}"
    );
}
