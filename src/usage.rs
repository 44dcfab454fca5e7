//! Which CDR rows cost a tracked extension money, and how much: a pure
//! function of one row, so the rule is unit-tested without a database.

use chrono::NaiveDateTime;

use crate::config::CallerColumn;
use crate::extension::Extension;
use crate::paid::PaidDestinations;

/// The columns of one CDR row that the rule needs. Text is lossily decoded:
/// a non-UTF-8 `dst` simply matches no pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdrRow {
    pub calldate: NaiveDateTime,
    /// The value of the configured caller column.
    pub caller: String,
    pub dst: String,
    pub dstchannel: String,
    pub disposition: String,
    pub billsec: i64,
}

/// The longest single row we believe: a day. Larger values are corrupt rows,
/// clamped so that one bad row cannot overflow a sum.
pub const MAX_BILLSEC: u64 = 86_400;

pub struct UsageRule<'a> {
    pub caller_column: CallerColumn,
    pub paid: &'a PaidDestinations,
    /// Prefixes of `dstchannel` that count; empty = every channel counts.
    pub trunk_channels: &'a [String],
}

impl UsageRule<'_> {
    /// The extension this row charges and its paid seconds, if it is a paid call.
    pub fn charge(&self, row: &CdrRow) -> Option<(Extension, u64)> {
        if row.disposition != "ANSWERED" || row.billsec <= 0 {
            return None;
        }
        if !self.trunk_channels.is_empty()
            && !self
                .trunk_channels
                .iter()
                .any(|p| row.dstchannel.starts_with(p.as_str()))
        {
            return None;
        }
        self.paid.classify(&row.dst)?;
        let extension = caller_extension(self.caller_column, &row.caller)?;
        Some((extension, (row.billsec as u64).min(MAX_BILLSEC)))
    }
}

/// The extension named by the caller column. For `channel`, the endpoint of
/// `TECH/endpoint-suffix`; `Local/` legs name no endpoint and are skipped.
pub fn caller_extension(column: CallerColumn, raw: &str) -> Option<Extension> {
    match column {
        CallerColumn::Cnum | CallerColumn::Src => Extension::parse(raw.trim()).ok(),
        CallerColumn::Channel => {
            let (tech, rest) = raw.split_once('/')?;
            if tech.eq_ignore_ascii_case("local") {
                return None;
            }
            let endpoint = rest.rsplit_once('-').map_or(rest, |(endpoint, _)| endpoint);
            Extension::parse(endpoint).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paid::Direction;
    use crate::pattern::Pattern;

    fn paid() -> PaidDestinations {
        PaidDestinations::new(vec![Direction {
            name: "mobile".into(),
            patterns: vec![Pattern::parse("_870[5780-2]XXXXXXX").unwrap()],
        }])
    }

    fn row(caller: &str, dst: &str, disposition: &str, billsec: i64) -> CdrRow {
        CdrRow {
            calldate: NaiveDateTime::default(),
            caller: caller.into(),
            dst: dst.into(),
            dstchannel: "PJSIP/kcell-0000001".into(),
            disposition: disposition.into(),
            billsec,
        }
    }

    #[test]
    fn charges_answered_paid_calls_only() {
        let paid = paid();
        let rule = UsageRule {
            caller_column: CallerColumn::Cnum,
            paid: &paid,
            trunk_channels: &[],
        };
        let ext = |s: &str| Extension::parse(s).unwrap();
        assert_eq!(
            rule.charge(&row("2055", "87011234567", "ANSWERED", 60)),
            Some((ext("2055"), 60))
        );
        assert_eq!(
            rule.charge(&row("2055", "870-1123-4567", "ANSWERED", 60)),
            Some((ext("2055"), 60))
        );
        assert_eq!(rule.charge(&row("2055", "87011234567", "NO ANSWER", 0)), None);
        assert_eq!(rule.charge(&row("2055", "87011234567", "BUSY", 5)), None);
        assert_eq!(rule.charge(&row("2055", "3001", "ANSWERED", 60)), None);
        assert_eq!(rule.charge(&row("2055", "87011234567", "ANSWERED", -4)), None);
        assert_eq!(rule.charge(&row("2055", "87011234567", "ANSWERED", 0)), None);
        assert_eq!(
            rule.charge(&row("2055", "87011234567", "ANSWERED", i64::from(i32::MAX))),
            Some((ext("2055"), MAX_BILLSEC))
        );
        assert_eq!(rule.charge(&row("", "87011234567", "ANSWERED", 60)), None);
        assert_eq!(rule.charge(&row("\"Bob\" <2055>", "87011234567", "ANSWERED", 60)), None);
        assert_eq!(rule.charge(&row("2055", "8701\u{fffd}234567", "ANSWERED", 60)), None);
    }

    #[test]
    fn trunk_channel_prefixes_filter_legs() {
        let paid = paid();
        let prefixes = vec!["PJSIP/kcell-".to_string()];
        let rule = UsageRule {
            caller_column: CallerColumn::Cnum,
            paid: &paid,
            trunk_channels: &prefixes,
        };
        let mut r = row("2055", "87011234567", "ANSWERED", 60);
        assert!(rule.charge(&r).is_some());
        r.dstchannel = "Local/87011234567@from-internal-00000001;1".into();
        assert!(rule.charge(&r).is_none());
    }

    #[test]
    fn parses_the_endpoint_from_a_channel() {
        let ch = |s| caller_extension(CallerColumn::Channel, s).map(|e| e.to_string());
        assert_eq!(ch("PJSIP/2055-0000001a"), Some("2055".into()));
        assert_eq!(ch("SIP/2055-00000003"), Some("2055".into()));
        assert_eq!(ch("PJSIP/2055"), Some("2055".into()));
        assert_eq!(ch("Local/2055@from-internal-00000001;2"), None);
        assert_eq!(ch("DAHDI/1-1"), Some("1".into()));
        assert_eq!(ch("garbage"), None);
    }
}
