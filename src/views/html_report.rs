//! `report --html FILE`: one self-contained page for managers (inline CSS
//! and SVG only: no scripts, fonts or images from anywhere), a pure function
//! of the period's figures. Every text from the state is escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::NaiveDate;

use crate::values::duration::format as human;
use crate::views::period::Report;
use crate::views::status::percent_used;

/// One user's ledger on one day, for the day-by-day strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFigure {
    pub extension: String,
    pub day: NaiveDate,
    pub allowance_s: u64,
    pub used_s: u64,
    pub blocked: bool,
    pub closed: bool,
}

/// Text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn tone(percent: u64, blocked: bool) -> &'static str {
    if blocked || percent >= 90 {
        "#c62828"
    } else if percent >= 50 {
        "#ef9f00"
    } else {
        "#2e7d32"
    }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:28px;color:#1d1d1f;background:#fff}\
h1{font-size:22px;margin:0 0 4px}p.meta{color:#555;margin:0 0 18px}\
table{border-collapse:collapse;width:100%;max-width:1400px}th,td{padding:6px 8px;white-space:nowrap;text-align:right;border-bottom:1px solid #e3e3e3;vertical-align:middle}\
th{font-weight:600;background:#f5f5f7;border-bottom:2px solid #ccc;white-space:normal}td.l,th.l{text-align:left}\
td.name{white-space:normal;overflow-wrap:anywhere;min-width:8em}svg.bar{width:100%;max-width:180px;min-width:60px}\
tr.strip td{border-bottom:1px solid #ccc;padding-top:0}tr.total td{font-weight:700;border-top:2px solid #999;background:#fafafa}\
.open{color:#8a6d00}.legend{color:#555;margin-top:14px;max-width:1100px}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}";

/// The page: a bar per user for the period, a strip of the period's days
/// per user (used against allowance; blocked days red with a dark cap, open
/// days paler), the totals, the period and when it was made.
pub fn render(report: &Report, days: &[DayFigure], made: &str) -> String {
    let mut by_user: BTreeMap<&str, BTreeMap<NaiveDate, &DayFigure>> = BTreeMap::new();
    for d in days {
        by_user.entry(d.extension.as_str()).or_default().insert(d.day, d);
    }
    let period: Vec<NaiveDate> = report.from.iter_days().take_while(|d| *d <= report.to).collect();
    let open: u64 = report.users.iter().map(|u| u.open_days).max().unwrap_or(0);
    let title = format!("Paid calls, {} to {}", report.from, report.to);
    let mut h = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>callquota: {}</title>\
         <style>{STYLE}</style></head>\n<body>\n<h1>{}</h1>\n<p class=\"meta\">Made {}. {} users, {} days.{}</p>\n",
        escape(&title),
        escape(&title),
        escape(made),
        report.users.len(),
        period.len(),
        if open > 0 {
            " <span class=\"open\">Some days are still open: their figures may change.</span>"
        } else {
            " All days closed."
        }
    );
    h.push_str(
        "<table>\n<thead><tr><th class=\"l\">Ext</th><th class=\"l\">Name</th><th>Used</th><th>Allowance</th>\
         <th>% used</th><th class=\"l\">Period</th><th>Days</th><th>Days blocked</th><th>Grants</th>\
         <th>Carry-over</th><th>Notices</th></tr></thead>\n<tbody>\n",
    );
    let strip_width = (period.len() * 12).max(12);
    for u in &report.users {
        let width = 220 * u.percent_used.min(100) / 100;
        let _ = write!(
            h,
            "<tr><td class=\"l\">{ext}</td><td class=\"l name\">{name}</td><td>{used}</td><td>{allow}</td><td>{pct}%</td>\
             <td class=\"l\"><svg class=\"bar\" viewBox=\"0 0 220 16\" preserveAspectRatio=\"none\" height=\"16\" \
             role=\"img\" aria-label=\"{pct}% used\"><rect width=\"220\" height=\"16\" rx=\"3\" fill=\"#e8e8ed\"/>\
             <rect width=\"{width}\" height=\"16\" rx=\"3\" fill=\"{color}\"/></svg></td>\
             <td>{days}</td><td>{blocked}</td><td>{grants} ({granted})</td><td>{carry}</td><td>{notices}</td></tr>",
            ext = escape(&u.extension),
            name = escape(&u.name),
            used = human(u.used_s),
            allow = human(u.allowance_s),
            pct = u.percent_used,
            color = tone(u.percent_used, false),
            days = u.days,
            blocked = u.days_blocked,
            grants = u.grants,
            granted = human(u.granted_s),
            carry = u.carried_out_s.map_or_else(|| "open".to_string(), human),
            notices = u.notices,
        );
        h.push('\n');
        let _ = write!(
            h,
            "<tr class=\"strip\"><td></td><td class=\"l\" colspan=\"10\"><svg width=\"{strip_width}\" height=\"30\" \
             role=\"img\" aria-label=\"day by day, {}\">",
            escape(&u.extension)
        );
        let user_days = by_user.get(u.extension.as_str());
        for (i, day) in period.iter().enumerate() {
            let x = i * 12;
            match user_days.and_then(|m| m.get(day)) {
                None => {
                    let _ = write!(
                        h,
                        "<rect x=\"{x}\" y=\"26\" width=\"10\" height=\"2\" fill=\"#d0d0d5\"><title>{day}: not tracked</title></rect>"
                    );
                }
                Some(d) => {
                    let pct = percent_used(d.used_s, d.allowance_s);
                    let height = (24 * pct.min(100) / 100).max(1);
                    let y = 28 - height;
                    let opacity = if d.closed { "1" } else { "0.45" };
                    let _ = write!(
                        h,
                        "<rect x=\"{x}\" y=\"4\" width=\"10\" height=\"24\" fill=\"#f0f0f3\"/>\
                         <rect x=\"{x}\" y=\"{y}\" width=\"10\" height=\"{height}\" fill=\"{color}\" opacity=\"{opacity}\">\
                         <title>{day}: {used} of {allow} ({pct}%){blocked}{open}</title></rect>",
                        color = tone(pct, d.blocked),
                        used = human(d.used_s),
                        allow = human(d.allowance_s),
                        blocked = if d.blocked { ", blocked" } else { "" },
                        open = if d.closed { "" } else { ", open" },
                    );
                    if d.blocked {
                        let _ = write!(
                            h,
                            "<rect x=\"{x}\" y=\"0\" width=\"10\" height=\"3\" fill=\"#5b0000\"/>"
                        );
                    }
                }
            }
        }
        h.push_str("</svg></td></tr>\n");
    }
    let t = &report.totals;
    let _ = write!(
        h,
        "<tr class=\"total\"><td class=\"l\">Total</td><td class=\"l\">{} users</td><td>{}</td><td>{}</td><td>{}%</td>\
         <td></td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td></tr>\n</tbody></table>\n",
        report.users.len(),
        human(t.used_s),
        human(t.allowance_s),
        t.percent_used,
        t.days,
        t.days_blocked,
        t.grants,
        human(t.granted_s),
        t.carried_out_s.map_or_else(|| "open".to_string(), human),
        t.notices
    );
    h.push_str(
        "<p class=\"legend\">Each small bar is one day, its height the share of that day's allowance used:\
         <span style=\"background:#2e7d32\"></span>under 50 %<span style=\"background:#ef9f00\"></span>50 % to 90 %\
         <span style=\"background:#c62828\"></span>90 % or more, or blocked (dark cap)\
         <span style=\"background:#c62828;opacity:.45\"></span>a day still open\
         <span style=\"background:#d0d0d5\"></span>not tracked.</p>\n</body></html>\n",
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::period::{UserPeriod, report};

    #[test]
    fn escapes_names_and_is_self_contained() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let r = report(
            d("2026-11-01"),
            d("2026-11-03"),
            vec![UserPeriod {
                extension: "2055".into(),
                name: "<script>alert('x')</script> & \"co\"".into(),
                days: 2,
                allowance_s: 3600,
                used_s: 1800,
                ..UserPeriod::default()
            }],
        );
        let days = [DayFigure {
            extension: "2055".into(),
            day: d("2026-11-02"),
            allowance_s: 1800,
            used_s: 1800,
            blocked: true,
            closed: true,
        }];
        let page = render(&r, &days, "2026-11-26 10:00 +05");
        assert!(
            page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;"),
            "{page}"
        );
        assert!(!page.contains("<script"), "no scripts at all");
        for external in ["src=", "href=", "url(", "@import", "<link", "<img"] {
            assert!(!page.contains(external), "{external} in the page");
        }
        assert!(
            page.contains("2026-11-02: 30m 00s of 30m 00s (100%), blocked"),
            "{page}"
        );
        assert!(page.contains("2026-11-01: not tracked"));
        assert_eq!(page.matches("<svg").count(), 2);
    }
}
