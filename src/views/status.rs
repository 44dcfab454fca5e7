//! The `status` table: usage at a glance. A pure function of the rows and
//! the terminal's abilities, so its output is golden-tested byte for byte.

use crate::values::duration::format as human;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    Ok,
    Blocked,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRow {
    pub extension: String,
    pub name: String,
    pub allowance_s: u64,
    pub used_s: u64,
    pub remaining_s: u64,
    pub carried_in_s: u64,
    pub granted_s: u64,
    pub state: RowState,
    /// The live guard's (used, in calls) seconds, when Asterisk answered.
    pub live: Option<(u64, u64)>,
    /// A disabled user without a ledger that day: no figures to show.
    pub no_figures: bool,
    /// Local time a run first blocked the user that day while it was open
    /// (`core::blocked`), e.g. "14:05".
    pub blocked_at: Option<String>,
    /// A closed day whose usage reached its allowance only at the close:
    /// never blocked, but over.
    pub over_at_close: bool,
}

/// The STATE cell: `BLOCKED 14:05`, `ok (blocked 14:05)` for a user given
/// time after the block, `ok (over at close)`, `disabled`.
pub fn state_text(r: &ViewRow) -> String {
    match (r.state, &r.blocked_at) {
        (RowState::Disabled, _) => "disabled".into(),
        (RowState::Blocked, Some(at)) => format!("BLOCKED {at}"),
        (RowState::Blocked, None) => "BLOCKED".into(),
        (RowState::Ok, Some(at)) => format!("ok (blocked {at})"),
        (RowState::Ok, None) if r.over_at_close => "ok (over at close)".into(),
        (RowState::Ok, None) => "ok".into(),
    }
}

/// Below the table when a LIVE USED cell is under USED (marked `*`).
pub const LIVE_FOOTNOTE: &str = "* LIVE USED is what the live guard counted in Asterisk today, from the paid calls \
that passed its check; it is below USED when calls reached the CDR without it (made before its counters began, \
with the guard off, an AstDB wiped, or rows written into the CDR by something else). The check uses the larger of the two.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    /// By % used, highest first (the default).
    Used,
    Ext,
    Name,
}

/// How the table may be drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Unicode block bars (a terminal, unless --ascii); else `#`.
    pub unicode: bool,
    /// ANSI colour (a terminal without NO_COLOR).
    pub color: bool,
}

/// Cells in a usage bar.
const BAR_CELLS: u64 = 10;

/// Whole percent of the allowance used, rounded down; a day with no
/// allowance is 100 % used as soon as anything is used.
pub fn percent_used(used_s: u64, allowance_s: u64) -> u64 {
    match (used_s, allowance_s) {
        (0, _) => 0,
        (_, 0) => 100,
        (used, allowance) => used.saturating_mul(100) / allowance,
    }
}

/// A bar of `BAR_CELLS` cells, full at 100 % (more does not overflow it).
pub fn bar(percent: u64, unicode: bool) -> String {
    let eighths = (percent.min(100) * BAR_CELLS * 8) / 100;
    let (full, part) = ((eighths / 8) as usize, (eighths % 8) as usize);
    let cells = BAR_CELLS as usize;
    if unicode {
        const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
        let used = format!("{}{}", "█".repeat(full), PARTS[part]);
        let width = full + usize::from(part > 0);
        format!("▕{used}{}▏", " ".repeat(cells - width))
    } else {
        format!("[{}{}]", "#".repeat(full), " ".repeat(cells - full))
    }
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// The colour of a row's figures: green below 50 %, yellow below 90 %, red
/// from 90 % or when blocked; dim when disabled.
fn tone(percent: u64, state: RowState) -> &'static str {
    match state {
        RowState::Disabled => "2",
        RowState::Blocked => "31",
        RowState::Ok if percent >= 90 => "31",
        RowState::Ok if percent >= 50 => "33",
        RowState::Ok => "32",
    }
}

/// Sorts the rows: by % used (highest first; ties by extension), extension or name.
pub fn sort(rows: &mut [ViewRow], key: SortKey) {
    match key {
        SortKey::Used => rows.sort_by(|a, b| {
            let pa = (!a.no_figures).then(|| percent_used(a.used_s, a.allowance_s));
            let pb = (!b.no_figures).then(|| percent_used(b.used_s, b.allowance_s));
            pb.cmp(&pa).then_with(|| a.extension.cmp(&b.extension))
        }),
        SortKey::Ext => rows.sort_by(|a, b| a.extension.cmp(&b.extension)),
        SortKey::Name => rows.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.extension.cmp(&b.extension))),
    }
}

/// The table under its `header` line, rows in the order given.
pub fn render(header: &str, rows: &[ViewRow], style: Style) -> String {
    let live = rows.iter().any(|r| r.live.is_some());
    let mut lagging = false;
    let mut out = format!("{header}\n");
    let live_header = if live {
        format!(" {:>11} {:>11}", "LIVE USED", "IN CALLS")
    } else {
        String::new()
    };
    out.push_str(&format!(
        "{:<8} {:<24} {:>11} {:>11} {:>11} {:>6} {:<12} {:>11} {:>11}{live_header}  STATE\n",
        "EXT", "NAME", "ALLOWANCE", "USED", "REMAINING", "%USED", "", "CARRIED IN", "GRANTED"
    ));
    for r in rows {
        let name: String = r.name.chars().take(24).collect();
        let state = state_text(r);
        if r.no_figures {
            out.push_str(&format!(
                "{:<8} {name:<24} {:>11} {:>11} {:>11} {:>6} {:<12} {:>11} {:>11}{}  {}\n",
                r.extension,
                "-",
                "-",
                "-",
                "-",
                "",
                "-",
                "-",
                if live {
                    format!(" {:>11} {:>11}", "-", "-")
                } else {
                    String::new()
                },
                paint(&state, tone(0, r.state), style.color)
            ));
            continue;
        }
        let percent = percent_used(r.used_s, r.allowance_s);
        let code = tone(percent, r.state);
        let live_cells = match (live, r.live) {
            (true, Some((used, held))) if used < r.used_s => {
                lagging = true;
                format!(" {:>10}* {:>11}", human(used), human(held))
            }
            (true, Some((used, held))) => format!(" {:>11} {:>11}", human(used), human(held)),
            (true, None) => format!(" {:>11} {:>11}", "-", "-"),
            (false, _) => String::new(),
        };
        out.push_str(&format!(
            "{:<8} {name:<24} {:>11} {:>11} {:>11} {} {} {:>11} {:>11}{live_cells}  {}\n",
            r.extension,
            human(r.allowance_s),
            human(r.used_s),
            human(r.remaining_s),
            paint(&format!("{percent:>5}%"), code, style.color),
            paint(&bar(percent, style.unicode), code, style.color),
            human(r.carried_in_s),
            human(r.granted_s),
            paint(&state, code, style.color)
        ));
    }
    if lagging {
        out.push_str(LIVE_FOOTNOTE);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_bars() {
        assert_eq!(percent_used(0, 0), 0);
        assert_eq!(percent_used(5, 0), 100);
        assert_eq!(percent_used(900, 1800), 50);
        assert_eq!(percent_used(1799, 1800), 99);
        assert_eq!(percent_used(2000, 1800), 111);
        assert_eq!(percent_used(u64::MAX, 1), u64::MAX, "saturates, never wraps");
        assert_eq!(bar(0, false), "[          ]");
        assert_eq!(bar(55, false), "[#####     ]");
        assert_eq!(bar(150, false), "[##########]");
        assert_eq!(bar(0, true), "▕          ▏");
        assert_eq!(bar(55, true), "▕█████▌    ▏");
        assert_eq!(bar(100, true), "▕██████████▏");
        for p in 0..=120 {
            assert_eq!(bar(p, true).chars().count(), 12, "{p}");
            assert_eq!(bar(p, false).chars().count(), 12, "{p}");
        }
    }

    fn row(ext: &str, name: &str, used: u64, allowance: u64, state: RowState) -> ViewRow {
        ViewRow {
            extension: ext.into(),
            name: name.into(),
            allowance_s: allowance,
            used_s: used,
            remaining_s: allowance.saturating_sub(used),
            carried_in_s: 0,
            granted_s: 0,
            state,
            live: None,
            no_figures: false,
            blocked_at: None,
            over_at_close: false,
        }
    }

    #[test]
    fn sorts_by_percent_used_then_extension() {
        let mut rows = vec![
            row("2001", "B", 100, 1000, RowState::Ok),
            row("2002", "A", 900, 1000, RowState::Ok),
            row("2000", "C", 100, 1000, RowState::Ok),
        ];
        sort(&mut rows, SortKey::Used);
        let order: Vec<&str> = rows.iter().map(|r| r.extension.as_str()).collect();
        assert_eq!(order, ["2002", "2000", "2001"]);
        sort(&mut rows, SortKey::Name);
        assert_eq!(rows[0].name, "A");
        sort(&mut rows, SortKey::Ext);
        assert_eq!(rows[0].extension, "2000");
    }

    #[test]
    fn a_live_figure_under_the_cdrs_is_marked_and_explained() {
        let mut r = row("2066", "Asel", 1300, 1200, RowState::Blocked);
        r.blocked_at = Some("14:05".into());
        r.live = Some((0, 0));
        let style = Style {
            unicode: false,
            color: false,
        };
        let out = render("h", &[r.clone()], style);
        assert!(out.contains("         0s*"), "{out}");
        assert!(out.contains("BLOCKED 14:05"), "{out}");
        assert!(out.ends_with(&format!("{LIVE_FOOTNOTE}\n")), "{out}");
        r.live = Some((1300, 0));
        assert!(!render("h", &[r], style).contains("* LIVE"));
    }

    #[test]
    fn colour_only_when_asked() {
        let rows = [row("2055", "Vasya", 1700, 1800, RowState::Ok)];
        let plain = render(
            "h",
            &rows,
            Style {
                unicode: false,
                color: false,
            },
        );
        assert!(!plain.contains('\x1b'), "{plain}");
        let colored = render(
            "h",
            &rows,
            Style {
                unicode: true,
                color: true,
            },
        );
        assert!(colored.contains("\x1b[31m   94%\x1b[0m"), "{colored}");
    }
}
