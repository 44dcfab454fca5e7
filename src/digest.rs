//! The daily digest: once a day closes, one mail to `[mail] digest_to`
//! with that day's table (who used what, who was blocked and when, grants,
//! their reasons and who made them), as plain text plus the same view in
//! HTML. A pure function of the day's facts.

use std::fmt::Write;

use crate::duration::format as human;
use crate::html_report::escape;
use crate::status_view::percent_used;

/// One user's closed day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRow {
    pub extension: String,
    pub name: String,
    pub allowance_s: u64,
    pub used_s: u64,
    /// Local time the user was first blocked that day.
    pub blocked_at: Option<String>,
}

/// One grant of the day, as the audit log recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestGrant {
    pub extension: String,
    /// "+10m 00s for 2026-11-26: reason (on behalf of ...)".
    pub detail: String,
    /// Who made it, when recorded.
    pub by: Option<String>,
    /// Local time.
    pub at: String,
}

pub struct Digest {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Composes the digest of `day` (users by % used, highest first).
pub fn compose(day: &str, mut rows: Vec<DigestRow>, grants: &[DigestGrant]) -> Digest {
    rows.sort_by(|a, b| {
        percent_used(b.used_s, b.allowance_s)
            .cmp(&percent_used(a.used_s, a.allowance_s))
            .then_with(|| a.extension.cmp(&b.extension))
    });
    let blocked = rows.iter().filter(|r| r.blocked_at.is_some()).count();
    let used: u64 = rows.iter().map(|r| r.used_s).sum();
    let allowance: u64 = rows.iter().map(|r| r.allowance_s).sum();
    let subject = format!(
        "Paid calls on {day}: {} used of {}, {blocked} blocked",
        human(used),
        human(allowance)
    );

    let mut text = format!(
        "Paid calls on {day} (the day is closed: these are its final figures).\n\n\
         {:<8} {:<24} {:>11} {:>11} {:>6}  BLOCKED AT\n",
        "EXT", "NAME", "USED", "ALLOWANCE", "%USED"
    );
    for r in &rows {
        let _ = writeln!(
            text,
            "{:<8} {:<24} {:>11} {:>11} {:>5}%  {}",
            r.extension,
            r.name.chars().take(24).collect::<String>(),
            human(r.used_s),
            human(r.allowance_s),
            percent_used(r.used_s, r.allowance_s),
            r.blocked_at.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(
        text,
        "{:<8} {:<24} {:>11} {:>11} {:>5}%\n",
        "TOTAL",
        format!("{} users", rows.len()),
        human(used),
        human(allowance),
        percent_used(used, allowance)
    );
    if grants.is_empty() {
        text.push_str("No grants.\n");
    } else {
        text.push_str("Grants:\n");
        for g in grants {
            let _ = writeln!(
                text,
                "  {} {} {}{}",
                g.at,
                g.extension,
                g.detail,
                g.by.as_deref().map(|b| format!(" (by {b})")).unwrap_or_default()
            );
        }
    }
    text.push_str("\n-- callquota\n");

    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font:14px/1.45 system-ui,sans-serif;color:#1d1d1f\"><h2 style=\"margin:0 0 8px\">Paid calls on {}</h2>\
         <p style=\"color:#555\">The day is closed: these are its final figures.</p>\
         <table style=\"border-collapse:collapse\"><tr style=\"background:#f5f5f7\"><th align=\"left\">Ext</th>\
         <th align=\"left\">Name</th><th align=\"right\">Used</th><th align=\"right\">Allowance</th>\
         <th align=\"right\">% used</th><th align=\"left\"></th><th align=\"left\">Blocked at</th></tr>",
        escape(&subject),
        escape(day)
    );
    for r in &rows {
        let pct = percent_used(r.used_s, r.allowance_s);
        let color = if r.blocked_at.is_some() || pct >= 90 {
            "#c62828"
        } else if pct >= 50 {
            "#ef9f00"
        } else {
            "#2e7d32"
        };
        let _ = write!(
            html,
            "<tr><td style=\"padding:4px 8px\">{}</td><td style=\"padding:4px 8px\">{}</td>\
             <td align=\"right\" style=\"padding:4px 8px\">{}</td><td align=\"right\" style=\"padding:4px 8px\">{}</td>\
             <td align=\"right\" style=\"padding:4px 8px\">{pct}%</td><td style=\"padding:4px 8px\">\
             <svg width=\"120\" height=\"10\"><rect width=\"120\" height=\"10\" fill=\"#e8e8ed\"/>\
             <rect width=\"{}\" height=\"10\" fill=\"{color}\"/></svg></td><td style=\"padding:4px 8px\">{}</td></tr>",
            escape(&r.extension),
            escape(&r.name),
            human(r.used_s),
            human(r.allowance_s),
            120 * pct.min(100) / 100,
            escape(r.blocked_at.as_deref().unwrap_or("-"))
        );
    }
    let _ = write!(
        html,
        "<tr style=\"font-weight:700;border-top:2px solid #999\"><td style=\"padding:4px 8px\">Total</td>\
         <td style=\"padding:4px 8px\">{} users</td><td align=\"right\" style=\"padding:4px 8px\">{}</td>\
         <td align=\"right\" style=\"padding:4px 8px\">{}</td><td align=\"right\" style=\"padding:4px 8px\">{}%</td>\
         <td></td><td></td></tr></table>",
        rows.len(),
        human(used),
        human(allowance),
        percent_used(used, allowance)
    );
    if grants.is_empty() {
        html.push_str("<p>No grants.</p>");
    } else {
        html.push_str("<h3>Grants</h3><ul>");
        for g in grants {
            let _ = write!(
                html,
                "<li>{} {} {}{}</li>",
                escape(&g.at),
                escape(&g.extension),
                escape(&g.detail),
                g.by.as_deref()
                    .map(|b| format!(" (by {})", escape(b)))
                    .unwrap_or_default()
            );
        }
        html.push_str("</ul>");
    }
    html.push_str("<p style=\"color:#555\">-- callquota</p></body></html>\n");
    Digest { subject, text, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_in_text_and_html() {
        let rows = vec![
            DigestRow {
                extension: "2055".into(),
                name: "Vasya".into(),
                allowance_s: 1800,
                used_s: 600,
                blocked_at: None,
            },
            DigestRow {
                extension: "2066".into(),
                name: "<b>Asel</b>".into(),
                allowance_s: 1200,
                used_s: 1300,
                blocked_at: Some("14:05".into()),
            },
        ];
        let grants = [DigestGrant {
            extension: "2066".into(),
            detail: "+10m 00s for 2026-11-26: closing a deal".into(),
            by: Some("alice".into()),
            at: "15:31".into(),
        }];
        let d = compose("2026-11-26", rows, &grants);
        assert_eq!(
            d.subject,
            "Paid calls on 2026-11-26: 31m 40s used of 50m 00s, 1 blocked"
        );
        let first_row = d.text.lines().nth(3).unwrap();
        assert!(
            first_row.starts_with("2066") && first_row.ends_with("14:05"),
            "{}",
            d.text
        );
        assert!(
            d.text
                .contains("  15:31 2066 +10m 00s for 2026-11-26: closing a deal (by alice)"),
            "{}",
            d.text
        );
        assert!(d.html.contains("&lt;b&gt;Asel&lt;/b&gt;"), "{}", d.html);
        assert!(!d.html.contains("<b>"));
    }
}
