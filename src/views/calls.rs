//! The `calls EXT` table: one line per CDR row in fixed columns, so a long
//! number, direction or trunk channel never pushes the columns after it
//! aside. A cell too long for its column is cut with `…` (the channel keeps
//! its head, the trunk, and its tail, the call's id); `--json` has every
//! text whole. Pure: the command prints it.

/// One CDR row as the table shows it (texts already made safe to print).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallLine {
    pub time: String,
    pub number: String,
    /// "kcell _870XXXXXXXX" or "not paid".
    pub paid: String,
    pub disposition: String,
    pub billsec: i64,
    pub channel: String,
    /// "yes, 5m 00s" or "no: why"; the last column, as long as it needs.
    pub counted: String,
}

const NUMBER: usize = 16;
const PAID: usize = 28;
const DISPOSITION: usize = 11;
const CHANNEL: usize = 26;

/// `text` padded to `width` characters, or cut to it with `…` at the end.
pub fn fit(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        format!("{text}{}", " ".repeat(width - n))
    } else {
        let head: String = text.chars().take(width.saturating_sub(1)).collect();
        format!("{head}…")
    }
}

/// Like [`fit`], but a cut keeps both ends: `PJSIP/a-very-lo…-0000001a`.
pub fn fit_middle(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width || width < 3 {
        return fit(text, width);
    }
    let tail_len = (width - 1) / 2;
    let head_len = width - 1 - tail_len;
    let head: String = text.chars().take(head_len).collect();
    let tail: String = text.chars().skip(n - tail_len).collect();
    format!("{head}…{tail}")
}

pub fn header() -> String {
    format!(
        "{:<19}  {} {} {} {:>7}  {} COUNTED",
        "TIME",
        fit("NUMBER", NUMBER),
        fit("PAID (DIRECTION, PATTERN)", PAID),
        fit("DISPOSITION", DISPOSITION),
        "BILLSEC",
        fit("TRUNK CHANNEL", CHANNEL)
    )
}

pub fn line(l: &CallLine) -> String {
    format!(
        "{:<19}  {} {} {} {:>7}  {} {}",
        l.time,
        fit(&l.number, NUMBER),
        fit(&l.paid, PAID),
        fit(&l.disposition, DISPOSITION),
        l.billsec,
        fit_middle(&l.channel, CHANNEL),
        l.counted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cells_are_cut_so_columns_stay_put() {
        let short = CallLine {
            time: "2026-11-26 09:00:00".into(),
            number: "87011234567".into(),
            paid: "kcell _870XXXXXXXX".into(),
            disposition: "ANSWERED".into(),
            billsec: 60,
            channel: "PJSIP/kcell-00000012".into(),
            counted: "yes, 1m 00s".into(),
        };
        let long = CallLine {
            number: "sip:87011234567@carrier.example.com".into(),
            paid: "a-very-long-direction-name _870XXXXXXXX".into(),
            channel: "PJSIP/a-very-long-trunk-name-for-the-carrier-0000001a".into(),
            ..short.clone()
        };
        let (a, b) = (line(&short), line(&long));
        let counted_at = |s: &str| s[..s.find("yes, 1m 00s").unwrap()].chars().count();
        assert_eq!(counted_at(&a), counted_at(&b), "\n{a}\n{b}");
        assert_eq!(header().find("COUNTED"), Some(a.chars().count() - "yes, 1m 00s".len()));
        assert!(b.contains("PJSIP/a-very-…ier-0000001a"), "{b}");
        assert!(b.contains("sip:87011234567…"), "{b}");
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(fit_middle("abcdefgh", 5), "ab…gh");
    }
}
