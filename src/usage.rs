//! Which CDR rows cost a tracked extension money, and how much: a pure
//! function of one row, so the rule is unit-tested without a database.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};

use crate::config::CallerColumn;
use crate::extension::Extension;
use crate::paid::PaidDestinations;
use crate::policy::Usage;

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
    /// The calling channel's id: with `dstchannel`, it names one leg.
    pub uniqueid: String,
    /// Seconds from the start of the leg to its end (ringing included).
    pub duration: i64,
}

/// Why a row charges nothing, as `calls` explains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCharged {
    NotAnswered,
    /// A leg to a `Local/` channel: the leg that reached the carrier has its own row.
    LocalLeg,
    /// `[cdr] trunk_channels` is set and does not list this leg's channel.
    TrunkNotListed,
    NotPaid,
    /// The caller column names no extension.
    NoExtension,
}

impl NotCharged {
    pub fn reason(self) -> &'static str {
        match self {
            NotCharged::NotAnswered => "not answered",
            NotCharged::LocalLeg => "a Local/ leg: the leg to the trunk is charged",
            NotCharged::TrunkNotListed => "trunk not listed in [cdr] trunk_channels",
            NotCharged::NotPaid => "not paid",
            NotCharged::NoExtension => "no extension in the caller column",
        }
    }
}

/// The longest single row we believe: a day. Larger values are corrupt rows,
/// clamped so that one bad row cannot overflow a sum.
pub const MAX_BILLSEC: u64 = 86_400;

pub struct UsageRule<'a> {
    pub caller_column: CallerColumn,
    pub paid: &'a PaidDestinations,
    /// Prefixes of `dstchannel` that count; empty = every channel counts.
    pub trunk_channels: &'a [String],
    /// Digits the outbound routes strip before the trunk (FreePBX's route
    /// "prefix", e.g. `9`): the CDR keeps them in `dst`, the hook never sees them.
    pub route_prefixes: &'a [String],
}

impl UsageRule<'_> {
    /// The extension this row charges and its paid seconds, if it is a paid call.
    pub fn charge(&self, row: &CdrRow) -> Option<(Extension, u64)> {
        self.judge(row).ok()
    }

    /// Like [`UsageRule::charge`], saying why a row charges nothing.
    pub fn judge(&self, row: &CdrRow) -> Result<(Extension, u64), NotCharged> {
        if row.disposition != "ANSWERED" || row.billsec <= 0 {
            return Err(NotCharged::NotAnswered);
        }
        if self.trunk_channels.is_empty() {
            // A leg to a Local/ channel (follow-me, ring groups, FreePBX's own
            // dialplan hops) never reached a carrier; the leg that did has its
            // own row. (An empty dstchannel still counts: better charged than lost.)
            if row
                .dstchannel
                .get(..6)
                .is_some_and(|t| t.eq_ignore_ascii_case("local/"))
            {
                return Err(NotCharged::LocalLeg);
            }
        } else if !self
            .trunk_channels
            .iter()
            .any(|p| row.dstchannel.starts_with(p.as_str()))
        {
            // Only the listed trunks count (a site whose trunk is a Local channel lists it).
            return Err(NotCharged::TrunkNotListed);
        }
        if !self.is_paid(&row.dst) {
            return Err(NotCharged::NotPaid);
        }
        let extension = caller_extension(self.caller_column, &row.caller).ok_or(NotCharged::NoExtension)?;
        Ok((extension, (row.billsec as u64).min(MAX_BILLSEC)))
    }
}

impl UsageRule<'_> {
    /// Whether a CDR `dst` is paid: as dialled, or without a route prefix, so
    /// the CDR agrees with the hook, which sees the number the route sends.
    pub fn is_paid(&self, dst: &str) -> bool {
        self.paid.classify(dst).is_some()
            || self.route_prefixes.iter().any(|prefix| {
                let digits: String = dst.chars().filter(|&c| c != '-').collect();
                digits
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| self.paid.classify(rest).is_some())
            })
    }

    /// The literal prefixes a paid `dst` starts with, route prefixes included
    /// (for the server-side prefilter); `None` when any number may be paid.
    pub fn dst_prefixes(&self) -> Option<Vec<String>> {
        let plain = self.paid.prefixes()?;
        let mut all = plain.clone();
        for route in self.route_prefixes {
            all.extend(plain.iter().map(|p| format!("{route}{p}")));
        }
        Some(all)
    }
}

/// The number a `Dial` row sent to its trunk, from `lastdata`:
/// `PJSIP/87011234567@kcell,300,T`, `SIP/kcell/87011234567`,
/// `DAHDI/g0/87011234567`, `PJSIP/kcell/sip:87011234567@host`. This is what
/// the pre-dial hook saw as `DIAL_NUMBER`. `None` for a Local/ leg or text
/// that names no number.
pub fn trunk_number(lastdata: &str) -> Option<String> {
    let target = lastdata.split(['&', ',']).next()?.trim();
    let (tech, rest) = target.split_once('/')?;
    if tech.eq_ignore_ascii_case("local") {
        return None;
    }
    let rest = if rest.contains('@') && !rest.contains('/') {
        rest.split('@').next()?
    } else {
        rest.rsplit('/').next()?
    };
    let rest = rest
        .strip_prefix("sip:")
        .or_else(|| rest.strip_prefix("tel:"))
        .unwrap_or(rest);
    let number = rest.split('@').next()?;
    (!number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || "+*#-".contains(c))).then(|| number.to_string())
}

/// How the CDR side and the pre-dial hook judged one call, when they differ:
/// `(dst, trunk number, CDR says paid)`. The hook matches the patterns
/// against the number the route sent to the trunk.
pub fn disagreement(rule: &UsageRule<'_>, dst: &str, lastdata: &str) -> Option<(String, String, bool)> {
    let sent = trunk_number(lastdata)?;
    let by_cdr = rule.is_paid(dst);
    let by_hook = rule.paid.classify(&sent).is_some();
    (by_cdr != by_hook).then(|| (dst.to_string(), sent, by_cdr))
}

/// Sums charged rows per day and extension. The same leg written twice (the
/// same `uniqueid` and `dstchannel`, e.g. two CDR back ends writing into one
/// table) counts once; different legs of one call (a transfer's segments to
/// the same carrier channel) add up, as the carrier bills them all.
#[derive(Debug, Default)]
pub struct Tally {
    legs: HashMap<(String, String), (NaiveDate, Extension, u64)>,
    unnamed: Vec<(NaiveDate, Extension, u64)>,
}

impl Tally {
    pub fn add(&mut self, rule: &UsageRule<'_>, row: &CdrRow, day: NaiveDate) {
        let Some((extension, seconds)) = rule.charge(row) else {
            return;
        };
        if row.uniqueid.is_empty() {
            self.unnamed.push((day, extension, seconds));
            return;
        }
        let leg = self
            .legs
            .entry((row.uniqueid.clone(), row.dstchannel.clone()))
            .or_insert((day, extension.clone(), 0));
        if seconds > leg.2 {
            *leg = (day, extension, seconds);
        }
    }

    pub fn finish(self) -> Usage {
        let mut usage = Usage::new();
        for (day, extension, seconds) in self.legs.into_values().chain(self.unnamed) {
            let total = usage.entry(day).or_default().entry(extension).or_insert(0);
            *total = total.saturating_add(seconds);
        }
        usage
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

    fn cnum_rule(paid: &PaidDestinations) -> UsageRule<'_> {
        UsageRule {
            caller_column: CallerColumn::Cnum,
            paid,
            trunk_channels: &[],
            route_prefixes: &[],
        }
    }

    fn row(caller: &str, dst: &str, disposition: &str, billsec: i64) -> CdrRow {
        CdrRow {
            calldate: NaiveDateTime::default(),
            caller: caller.into(),
            dst: dst.into(),
            dstchannel: "PJSIP/kcell-0000001".into(),
            disposition: disposition.into(),
            billsec,
            uniqueid: "1764140000.17".into(),
            duration: billsec.max(0) + 5,
        }
    }

    #[test]
    fn charges_answered_paid_calls_only() {
        let paid = paid();
        let rule = cnum_rule(&paid);
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
            route_prefixes: &[],
        };
        let mut r = row("2055", "87011234567", "ANSWERED", 60);
        assert!(rule.charge(&r).is_some());
        r.dstchannel = "Local/87011234567@from-internal-00000001;1".into();
        assert!(rule.charge(&r).is_none());
        // A site whose trunk is a Local channel lists it.
        let local = vec!["Local/".to_string()];
        let rule = UsageRule {
            trunk_channels: &local,
            ..rule
        };
        assert!(rule.charge(&r).is_some());
    }

    #[test]
    fn legs_to_local_channels_are_not_charged_and_a_leg_counts_once() {
        let paid = paid();
        let rule = cnum_rule(&paid);
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let ext = |s: &str| Extension::parse(s).unwrap();
        // FreePBX follow-me: PJSIP/2055 -> Local/...;1, then Local/...;2 -> the trunk.
        let mut to_local = row("2055", "87011234567", "ANSWERED", 600);
        to_local.dstchannel = "Local/87011234567@from-internal-0000000a;1".into();
        assert_eq!(rule.charge(&to_local), None);
        let mut from_local = row("2055", "87011234567", "ANSWERED", 600);
        from_local.uniqueid = "1764140000.18".into();
        let mut tally = Tally::default();
        for r in [&to_local, &from_local] {
            tally.add(&rule, r, day);
        }
        assert_eq!(tally.finish()[&day][&ext("2055")], 600, "one call, one charge");

        // The same leg written twice counts once; two legs (a transfer) add up.
        let leg = row("2055", "87011234567", "ANSWERED", 300);
        let mut second_segment = leg.clone();
        second_segment.uniqueid = "1764140000.31".into();
        second_segment.billsec = 200;
        let mut tally = Tally::default();
        for r in [&leg, &leg, &second_segment] {
            tally.add(&rule, r, day);
        }
        assert_eq!(tally.finish()[&day][&ext("2055")], 500);
    }

    #[test]
    fn a_route_prefix_is_removed_before_matching_the_cdr_number() {
        let paid = paid();
        let nine = vec!["9".to_string()];
        let rule = UsageRule {
            caller_column: CallerColumn::Cnum,
            paid: &paid,
            trunk_channels: &[],
            route_prefixes: &nine,
        };
        assert!(rule.is_paid("987011234567"));
        assert!(rule.is_paid("9870-1123-4567"));
        assert!(rule.is_paid("87011234567"), "a route without the prefix");
        assert!(!rule.is_paid("93001"));
        assert_eq!(rule.dst_prefixes(), Some(vec!["870".to_string(), "9870".to_string()]));
        assert_eq!(
            rule.charge(&row("2055", "987011234567", "ANSWERED", 60)).map(|c| c.1),
            Some(60)
        );
    }

    #[test]
    fn reads_the_number_a_trunk_was_dialled() {
        for (lastdata, want) in [
            ("PJSIP/87011234567@kcell,300,Tt", Some("87011234567")),
            ("SIP/kcell/87011234567,300", Some("87011234567")),
            ("DAHDI/g0/87011234567", Some("87011234567")),
            ("PJSIP/kcell/sip:87011234567@10.0.0.1,60", Some("87011234567")),
            ("PJSIP/87011234567@kcell&PJSIP/87011234567@beeline", Some("87011234567")),
            ("Local/87011234567@from-internal,,", None),
            ("PJSIP/2066,20,Ttr", Some("2066")),
            ("", None),
            ("Playback(x)", None),
        ] {
            assert_eq!(trunk_number(lastdata).as_deref(), want, "{lastdata}");
        }
    }

    #[test]
    fn a_route_that_strips_a_prefix_makes_the_cdr_and_the_hook_disagree_until_configured() {
        let paid = paid();
        let mut rule = cnum_rule(&paid);
        let lastdata = "PJSIP/87011234567@kcell,300,T";
        assert_eq!(
            disagreement(&rule, "987011234567", lastdata),
            Some(("987011234567".into(), "87011234567".into(), false))
        );
        assert_eq!(disagreement(&rule, "87011234567", lastdata), None);
        let nine = vec!["9".to_string()];
        rule.route_prefixes = &nine;
        assert_eq!(disagreement(&rule, "987011234567", lastdata), None);
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
