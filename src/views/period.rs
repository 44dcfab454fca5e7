//! `report`: each user's figures over a period, summed from the SQLite
//! ledgers, and the totals; rendered as a table, JSON or CSV.

use chrono::NaiveDate;
use serde::Serialize;

use crate::values::duration::format as human;
use crate::views::status::percent_used;

/// One user's sums over the period (JSON field names are the interface).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserPeriod {
    pub extension: String,
    pub name: String,
    /// Days the user had a ledger in the period.
    pub days: u64,
    pub allowance_s: u64,
    pub used_s: u64,
    pub percent_used: u64,
    /// Days on which a run blocked the user while the day was open
    /// (`core::blocked`, the one definition; a day found over only at its
    /// close does not count, a day blocked and then granted does).
    pub days_blocked: u64,
    pub grants: u64,
    pub granted_s: u64,
    /// What the period's last day carries into the next: the next day's
    /// carried-in time; null while that day is still open (not known until
    /// it closes: its remainder is not carried yet).
    pub carried_out_s: Option<u64>,
    /// Notices delivered for days of the period (daily and monthly).
    pub notices: u64,
    /// The monthly limit on the user's last day in the period (null: none).
    pub monthly_limit_s: Option<u64>,
    /// For a calendar month (`--month`, or the default: this month to date):
    /// whole percent of the monthly limit the month used; null for other
    /// periods or without a monthly limit.
    pub percent_of_monthly_limit: Option<u64>,
    /// The user's direction allowances over the period, one each.
    pub directions: Vec<DirectionPeriod>,
    /// Days of the period still open (their figures can still change).
    #[serde(skip)]
    pub open_days: u64,
}

/// One direction allowance's sums over the period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DirectionPeriod {
    pub direction: String,
    pub days: u64,
    pub allowance_s: u64,
    pub used_s: u64,
    pub percent_used: u64,
    pub days_blocked: u64,
    /// Grants to this direction allowance (`grant --direction`).
    pub grants: u64,
    pub granted_s: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub days: u64,
    pub allowance_s: u64,
    pub used_s: u64,
    pub percent_used: u64,
    pub days_blocked: u64,
    pub grants: u64,
    pub granted_s: u64,
    /// The users' carry-outs added up; null while any of them is not known
    /// (a last day still open): a partial sum is not the total.
    pub carried_out_s: Option<u64>,
    pub notices: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub users: Vec<UserPeriod>,
    pub totals: Totals,
}

/// Whether `from..=to` is one calendar month, or its start to date.
pub fn is_calendar_month(from: NaiveDate, to: NaiveDate) -> bool {
    from == crate::core::month::month_start(from) && from <= to && to <= crate::core::month::month_end(from)
}

/// Fills in each user's % used and the totals row; users by extension.
pub fn report(from: NaiveDate, to: NaiveDate, mut users: Vec<UserPeriod>) -> Report {
    let mut t = Totals {
        carried_out_s: Some(0),
        ..Totals::default()
    };
    let month = is_calendar_month(from, to);
    for u in &mut users {
        u.percent_used = percent_used(u.used_s, u.allowance_s);
        for d in &mut u.directions {
            d.percent_used = percent_used(d.used_s, d.allowance_s);
        }
        u.percent_of_monthly_limit = u
            .monthly_limit_s
            .filter(|_| month)
            .map(|limit| percent_used(u.used_s, limit));
        t.days += u.days;
        t.allowance_s = t.allowance_s.saturating_add(u.allowance_s);
        t.used_s = t.used_s.saturating_add(u.used_s);
        t.days_blocked += u.days_blocked;
        t.grants += u.grants;
        t.granted_s = t.granted_s.saturating_add(u.granted_s);
        t.carried_out_s = t.carried_out_s.zip(u.carried_out_s).map(|(a, b)| a.saturating_add(b));
        t.notices += u.notices;
    }
    t.percent_used = percent_used(t.used_s, t.allowance_s);
    users.sort_by(|a, b| a.extension.cmp(&b.extension));
    Report {
        from,
        to,
        users,
        totals: t,
    }
}

/// The table, with a line naming the period, its open days and when it was made.
pub fn render_text(report: &Report, made: &str) -> String {
    let open: u64 = report.users.iter().map(|u| u.open_days).max().unwrap_or(0);
    let mut out = format!(
        "Report {} to {}{}; made {made}\n",
        report.from,
        report.to,
        if open > 0 {
            format!(
                " ({open} day{} still open: figures may change)",
                if open == 1 { "" } else { "s" }
            )
        } else {
            " (all days closed)".to_string()
        }
    );
    out.push_str(&format!(
        "{:<8} {:<24} {:>5} {:>12} {:>12} {:>6} {:>7} {:>6} {:>11} {:>11} {:>7}\n",
        "EXT", "NAME", "DAYS", "ALLOWANCE", "USED", "%USED", "BLOCKED", "GRANTS", "GRANTED", "CARRY OUT", "NOTICES"
    ));
    let line =
        |ext: &str, name: &str, days: u64, a: u64, u: u64, p: u64, b: u64, g: u64, gs: u64, c: Option<u64>, n: u64| {
            let name: String = name.chars().take(24).collect();
            format!(
                "{ext:<8} {name:<24} {days:>5} {:>12} {:>12} {:>5}% {b:>7} {g:>6} {:>11} {:>11} {n:>7}\n",
                human(a),
                human(u),
                p,
                human(gs),
                c.map_or_else(|| "open".to_string(), human)
            )
        };
    for u in &report.users {
        let name = if u.open_days > 0 {
            format!("{}*", u.name)
        } else {
            u.name.clone()
        };
        out.push_str(&line(
            &u.extension,
            &name,
            u.days,
            u.allowance_s,
            u.used_s,
            u.percent_used,
            u.days_blocked,
            u.grants,
            u.granted_s,
            u.carried_out_s,
            u.notices,
        ));
    }
    let t = &report.totals;
    out.push_str(&line(
        "TOTAL",
        &format!("{} users", report.users.len()),
        t.days,
        t.allowance_s,
        t.used_s,
        t.percent_used,
        t.days_blocked,
        t.grants,
        t.granted_s,
        t.carried_out_s,
        t.notices,
    ));
    if open > 0 {
        out.push_str("* has an open day; CARRY OUT says open while the period's last day is open (its remainder is not carried yet)\n");
    }
    for u in &report.users {
        for d in &u.directions {
            out.push_str(&format!(
                "{:<8} {}: used {} of {} ({}%), {} days blocked, {} grants ({})\n",
                u.extension,
                d.direction,
                human(d.used_s),
                human(d.allowance_s),
                d.percent_used,
                d.days_blocked,
                d.grants,
                human(d.granted_s)
            ));
        }
    }
    for u in &report.users {
        if let (Some(limit), Some(percent)) = (u.monthly_limit_s, u.percent_of_monthly_limit) {
            out.push_str(&format!(
                "{:<8} monthly limit {}: used {} ({percent}%), {} left\n",
                u.extension,
                human(limit),
                human(u.used_s),
                human(limit.saturating_sub(u.used_s))
            ));
        }
    }
    out
}

/// CSV (RFC 4180) with a header row and a totals row; seconds as numbers.
/// A text cell as a spreadsheet reads it safely: a cell that begins with
/// `=`, `+`, `-`, `@`, a tab or a carriage return would be taken for a
/// formula (`=HYPERLINK(...)`), so it gets a leading `'`; then RFC 4180 quoting.
pub fn csv_cell(s: &str) -> String {
    // Spreadsheets skip leading blanks and read fullwidth signs as formulas too.
    let formula = s.starts_with(['\t', '\r'])
        || s.trim_start()
            .starts_with(['=', '+', '-', '@', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}']);
    let s = if formula { format!("'{s}") } else { s.to_string() };
    // A `;` starts a new cell where the locale's list separator is `;` (ru, kk, de).
    if s.contains([',', ';', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub fn render_csv(report: &Report) -> String {
    let quote = |s: &str| csv_cell(s);
    let mut out = String::from(
        "extension,name,days,allowance_s,used_s,percent_used,days_blocked,grants,granted_s,carried_out_s,notices,\
         monthly_limit_s,percent_of_monthly_limit\n",
    );
    let optional = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    for u in &report.users {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            quote(&u.extension),
            quote(&u.name),
            u.days,
            u.allowance_s,
            u.used_s,
            u.percent_used,
            u.days_blocked,
            u.grants,
            u.granted_s,
            optional(u.carried_out_s),
            u.notices,
            optional(u.monthly_limit_s),
            optional(u.percent_of_monthly_limit)
        ));
    }
    let t = &report.totals;
    out.push_str(&format!(
        "TOTAL,,{},{},{},{},{},{},{},{},{},,\n",
        t.days,
        t.allowance_s,
        t.used_s,
        t.percent_used,
        t.days_blocked,
        t.grants,
        t.granted_s,
        optional(t.carried_out_s),
        t.notices
    ));
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_neutralised() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("+7 701"), "'+7 701");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(csv_cell("Vasya Pupkin"), "Vasya Pupkin");
        assert_eq!(csv_cell("Pupkin, V."), "\"Pupkin, V.\"");
        assert_eq!(csv_cell(" =1+1"), "' =1+1");
        assert_eq!(csv_cell("\u{FF1D}1+1"), "'\u{FF1D}1+1");
        assert_eq!(csv_cell("a;=1+1"), "\"a;=1+1\"");
    }

    use super::*;

    #[test]
    fn totals_and_csv_quoting() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let users = vec![
            UserPeriod {
                extension: "2066".into(),
                name: "Pupkin, \"V\"".into(),
                days: 2,
                allowance_s: 1000,
                used_s: 900,
                days_blocked: 1,
                grants: 1,
                granted_s: 100,
                notices: 2,
                ..UserPeriod::default()
            },
            UserPeriod {
                extension: "2055".into(),
                name: "A".into(),
                days: 1,
                allowance_s: 1000,
                used_s: 100,
                ..UserPeriod::default()
            },
        ];
        let r = report(d("2026-11-01"), d("2026-11-30"), users);
        assert_eq!(r.users[0].extension, "2055");
        assert_eq!(r.users[1].percent_used, 90);
        assert_eq!((r.totals.days, r.totals.used_s, r.totals.percent_used), (3, 1000, 50));
        let csv = render_csv(&r);
        assert!(
            csv.contains("2066,\"Pupkin, \"\"V\"\"\",2,1000,900,90,1,1,100,,2,,\n"),
            "{csv}"
        );
        assert!(csv.ends_with("TOTAL,,3,2000,1000,50,1,1,100,,2,,\n"), "{csv}");
        let text = render_text(&r, "now");
        assert!(
            text.starts_with("Report 2026-11-01 to 2026-11-30 (all days closed); made now\n"),
            "{text}"
        );
    }
}
