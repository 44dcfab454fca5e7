//! The daily digest: once a day closes, one mail to `[mail] digest_to`
//! with that day's table (who used what, who was blocked and when, grants,
//! their reasons and who made them), as plain text plus the same view in
//! HTML. A pure function of the day's facts.

use std::fmt::Write;

use chrono::NaiveDate;

use crate::views::html_report::escape;
use crate::views::language::Language;
use crate::views::status::percent_used;

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

/// One grant of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestGrant {
    pub extension: String,
    pub seconds: u64,
    pub reason: String,
    /// `grant --by`, when given.
    pub on_behalf_of: Option<String>,
    /// Who entered it, when recorded.
    pub by: Option<String>,
    /// Local time.
    pub at: String,
}

/// "+10 мин: reason (добавил(а) alice, по просьбе: I. Ivanova)".
fn grant_line(language: Language, g: &DigestGrant) -> String {
    let w = language.digest();
    let mut who = Vec::new();
    if let Some(by) = &g.by {
        who.push(w.by.replace("{who}", by));
    }
    if let Some(of) = &g.on_behalf_of {
        who.push(w.on_behalf.replace("{who}", of));
    }
    format!(
        "+{}{}{}",
        language.duration(g.seconds),
        if g.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", g.reason)
        },
        if who.is_empty() {
            String::new()
        } else {
            format!(" ({})", who.join(", "))
        }
    )
}

pub struct Digest {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Composes the digest of `day` in `language` (users by % used, highest first).
pub fn compose(language: Language, day: NaiveDate, mut rows: Vec<DigestRow>, grants: &[DigestGrant]) -> Digest {
    rows.sort_by(|a, b| {
        percent_used(b.used_s, b.allowance_s)
            .cmp(&percent_used(a.used_s, a.allowance_s))
            .then_with(|| a.extension.cmp(&b.extension))
    });
    let w = language.digest();
    let dur = |s: u64| language.duration(s);
    let pct = |p: u64| language.percent(p);
    let date = language.date(day);
    let blocked = rows.iter().filter(|r| r.blocked_at.is_some()).count();
    let used: u64 = rows.iter().map(|r| r.used_s).sum();
    let allowance: u64 = rows.iter().map(|r| r.allowance_s).sum();
    let subject = w
        .subject
        .replace("{day}", &date)
        .replace("{used}", &dur(used))
        .replace("{allowance}", &dur(allowance))
        .replace("{blocked}", &blocked.to_string());
    let heading = w.heading.replace("{day}", &date);
    let users = w.users.replace("{n}", &rows.len().to_string());
    let [c_ext, c_name, c_used, c_allow, c_pct, c_blocked] = w.columns;

    let mut text = format!(
        "{heading}. {}\n\n{c_ext:<8} {c_name:<24} {c_used:>13} {c_allow:>13} {c_pct:>7}  {c_blocked}\n",
        w.closed
    );
    for r in &rows {
        let _ = writeln!(
            text,
            "{:<8} {:<24} {:>13} {:>13} {:>7}  {}",
            r.extension,
            r.name.chars().take(24).collect::<String>(),
            dur(r.used_s),
            dur(r.allowance_s),
            pct(percent_used(r.used_s, r.allowance_s)),
            r.blocked_at.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(
        text,
        "{:<8} {:<24} {:>13} {:>13} {:>7}\n",
        w.total,
        users,
        dur(used),
        dur(allowance),
        pct(percent_used(used, allowance))
    );
    if grants.is_empty() {
        let _ = writeln!(text, "{}", w.no_grants);
    } else {
        let _ = writeln!(text, "{}:", w.grants);
        for g in grants {
            let _ = writeln!(text, "  {} {} {}", g.at, g.extension, grant_line(language, g));
        }
    }
    text.push_str("\n-- callquota\n");

    let [h_ext, h_name, h_used, h_allow, h_pct, h_blocked] = w.html_columns;
    let cell = "style=\"padding:4px 8px\"";
    let mut html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font:14px/1.45 system-ui,sans-serif;color:#1d1d1f\"><h2 style=\"margin:0 0 8px\">{}</h2>\
         <p style=\"color:#555\">{}</p><table style=\"border-collapse:collapse\"><tr style=\"background:#f5f5f7\">\
         <th align=\"left\">{h_ext}</th><th align=\"left\">{h_name}</th><th align=\"right\">{h_used}</th>\
         <th align=\"right\">{h_allow}</th><th align=\"right\">{h_pct}</th><th></th><th align=\"left\">{h_blocked}</th></tr>",
        escape(&subject),
        escape(&heading),
        escape(w.closed),
        lang = language.code()
    );
    for r in &rows {
        let p = percent_used(r.used_s, r.allowance_s);
        let color = if r.blocked_at.is_some() || p >= 90 {
            "#c62828"
        } else if p >= 50 {
            "#ef9f00"
        } else {
            "#2e7d32"
        };
        let _ = write!(
            html,
            "<tr><td {cell}>{}</td><td {cell}>{}</td><td align=\"right\" {cell}>{}</td>\
             <td align=\"right\" {cell}>{}</td><td align=\"right\" {cell}>{}</td><td {cell}>\
             <svg width=\"120\" height=\"10\"><rect width=\"120\" height=\"10\" fill=\"#e8e8ed\"/>\
             <rect width=\"{}\" height=\"10\" fill=\"{color}\"/></svg></td><td {cell}>{}</td></tr>",
            escape(&r.extension),
            escape(&r.name),
            dur(r.used_s),
            dur(r.allowance_s),
            pct(p),
            120 * p.min(100) / 100,
            escape(r.blocked_at.as_deref().unwrap_or("-"))
        );
    }
    let _ = write!(
        html,
        "<tr style=\"font-weight:700\"><td {cell}>{}</td><td {cell}>{}</td><td align=\"right\" {cell}>{}</td>\
         <td align=\"right\" {cell}>{}</td><td align=\"right\" {cell}>{}</td><td></td><td></td></tr></table>",
        w.html_total,
        escape(&users),
        dur(used),
        dur(allowance),
        pct(percent_used(used, allowance))
    );
    if grants.is_empty() {
        let _ = write!(html, "<p>{}</p>", w.no_grants);
    } else {
        let _ = write!(html, "<h3>{}</h3><ul>", w.grants);
        for g in grants {
            let _ = write!(
                html,
                "<li>{} {} {}</li>",
                escape(&g.at),
                escape(&g.extension),
                escape(&grant_line(language, g))
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
            seconds: 600,
            reason: "closing a deal".into(),
            on_behalf_of: Some("I. Ivanova".into()),
            by: Some("alice".into()),
            at: "15:31".into(),
        }];
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let d = compose(Language::En, day, rows.clone(), &grants);
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
                .contains("  15:31 2066 +10m 00s: closing a deal (by alice, on behalf of I. Ivanova)"),
            "{}",
            d.text
        );
        assert!(d.html.contains("&lt;b&gt;Asel&lt;/b&gt;"), "{}", d.html);
        assert!(!d.html.contains("<b>"));
        let ru = compose(Language::Ru, day, rows, &grants);
        assert_eq!(
            ru.subject,
            "Платные звонки за 26.11.2026: израсходовано 31 мин 40 с из 50 мин, закрыто: 1"
        );
        assert!(
            ru.text
                .contains("+10 мин: closing a deal (добавил(а) alice, по просьбе: I. Ivanova)"),
            "{}",
            ru.text
        );
    }
}
