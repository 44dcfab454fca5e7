//! Which CDR rows cost a tracked extension money, and how much: a pure
//! function of one row, so the rule is unit-tested without a database.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};

use crate::core::billing::Billing;
use crate::core::paid::{Direction, PaidDestinations};
use crate::core::policy::{DirectionUsage, Usage};
use crate::values::extension::Extension;

/// Which CDR column identifies the calling extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerColumn {
    /// FreePBX puts the extension here for outbound calls (the default).
    Cnum,
    Src,
    /// The endpoint parsed from `channel` (`PJSIP/2055-0000001a` → `2055`).
    Channel,
}

impl CallerColumn {
    pub fn column(self) -> &'static str {
        match self {
            CallerColumn::Cnum => "cnum",
            CallerColumn::Src => "src",
            CallerColumn::Channel => "channel",
        }
    }
}

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
    /// The row's own channel: the carrier's, in the rows a call writes after
    /// it was transferred.
    pub channel: String,
    /// The call every row of it shares (empty on installs without the column).
    pub linkedid: String,
    /// Asterisk's number of the CDR record (0 on installs without the column):
    /// two copies of one record share it, two segments of one leg do not.
    pub sequence: i64,
}

impl CdrRow {
    /// One segment of one leg: the same `uniqueid` and `dstchannel` name the
    /// leg; a leg that leaves and re-enters a bridge (an aborted attended
    /// transfer) writes a row per segment, each with its own `sequence`, and
    /// the carrier bills them all. Two back ends writing the same record give
    /// equal keys, counted once.
    pub fn segment(&self) -> (String, String, i64) {
        (self.uniqueid.clone(), self.dstchannel.clone(), self.sequence)
    }
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
    /// No channel was dialled (`dstchannel` empty): the PBX answered the
    /// caller itself (a refusal's sound, an IVR) and no carrier billed it.
    NoTrunk,
}

impl NotCharged {
    pub fn reason(self) -> &'static str {
        match self {
            NotCharged::NotAnswered => "not answered",
            NotCharged::LocalLeg => "a Local/ leg: the leg to the trunk is charged",
            NotCharged::TrunkNotListed => "trunk not listed in [cdr] trunk_channels",
            NotCharged::NotPaid => "not paid",
            NotCharged::NoExtension => "no extension in the caller column",
            NotCharged::NoTrunk => "reached no trunk (no dstchannel)",
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
        if row.disposition != "ANSWERED" || row.billsec < 0 {
            return Err(NotCharged::NotAnswered);
        }
        // Answered for less than a second (billsec 0): free per second, the
        // first step for a carrier that rounds (see `Billing::charge_answered`).
        if row.billsec == 0 && self.billing_of(&row.dst).is_none_or(Billing::is_per_second) {
            return Err(NotCharged::NotAnswered);
        }
        if row.dstchannel.trim().is_empty() {
            return Err(NotCharged::NoTrunk);
        }
        self.trunk(&row.dstchannel)?;
        if !self.is_paid(&row.dst) {
            return Err(NotCharged::NotPaid);
        }
        let extension = caller_extension(self.caller_column, &row.caller).ok_or(NotCharged::NoExtension)?;
        Ok((extension, (row.billsec as u64).min(MAX_BILLSEC)))
    }
}

impl UsageRule<'_> {
    /// Whether `channel` is a carrier's (a trunk): a listed trunk when
    /// `trunk_channels` is set, else any channel but a `Local/` one (follow-me,
    /// ring groups, FreePBX's own dialplan hops never reach a carrier; the leg
    /// that does has its own row).
    fn trunk(&self, channel: &str) -> Result<(), NotCharged> {
        if self.trunk_channels.is_empty() {
            if channel.get(..6).is_some_and(|t| t.eq_ignore_ascii_case("local/")) {
                return Err(NotCharged::LocalLeg);
            }
            Ok(())
        } else if self.trunk_channels.iter().any(|p| channel.starts_with(p.as_str())) {
            Ok(())
        } else {
            // Only the listed trunks count (a site whose trunk is a Local channel lists it).
            Err(NotCharged::TrunkNotListed)
        }
    }

    /// Whether a CDR `dst` is paid: as dialled, or without a route prefix, so
    /// the CDR agrees with the hook, which sees the number the route sends.
    pub fn is_paid(&self, dst: &str) -> bool {
        self.billing_of(dst).is_some()
    }

    /// How a paid `dst` is billed (its direction's increments); `None` when
    /// it is not paid. Judged as in [`UsageRule::is_paid`].
    pub fn billing_of(&self, dst: &str) -> Option<Billing> {
        self.direction_of(dst).map(|d| d.billing)
    }

    /// The direction a paid `dst` belongs to, judged as the hook judges the
    /// number: as dialled, by its digits, or without a route prefix.
    pub fn direction_of(&self, dst: &str) -> Option<&Direction> {
        let dst = route_number(dst);
        let dialable = |c: char| c.is_ascii_digit() || "*#+".contains(c);
        let of = |number: &str| self.paid.classify(number).map(|m| m.direction);
        // The hook also judges the number by its digits (a trunk dials
        // `870w1...` or `870-1...` as 8701...); most numbers are digits only.
        let by_digits = || {
            let digits: String = dst.chars().filter(|&c| dialable(c)).collect();
            of(&digits)
        };
        of(dst)
            .or_else(|| (!dst.chars().all(dialable)).then(by_digits).flatten())
            .or_else(|| {
                let digits: String = dst.chars().filter(|&c| c != '-').collect();
                self.route_prefixes
                    .iter()
                    .find_map(|prefix| of(digits.strip_prefix(prefix.as_str())?))
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

/// The number an outbound route hands its trunk for a dialled `dst`: FreePBX
/// passes `${EXTEN}` as an argument of `Macro`/`Gosub`, which ends it at the
/// first comma (a SIP URI dialled through a `.` route), and the pre-dial hook
/// caps the call by that part. (A number whose comma survives the route, or
/// with quotes, backslashes or brackets, is refused by the hook.)
fn route_number(dst: &str) -> &str {
    dst.split(',').next().unwrap_or(dst)
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

/// Sums the paid seconds per day and extension.
///
/// The carrier bills its channel for as long as it is answered, whoever it
/// is bridged to: after a transfer the call goes on in rows whose `channel`
/// (blind transfer) or `dstchannel` (a completed attended transfer) is the
/// carrier's, and while the caller consults a colleague the carrier waits on
/// hold in no row at all. So in a call with a `linkedid`, each carrier
/// channel of a paid row is charged, to the payer of its first paid row,
/// from that row's answer to the end of the last row of the call that names
/// the channel: the segments of one leg, the hold between them and the rows
/// after a transfer. Two back ends' copies of one record change nothing.
///
/// Without a `linkedid` (older tables) each record is charged its own
/// `billsec`, and copies of one record (see [`CdrRow::segment`]) count once.
#[derive(Debug, Default)]
///
/// Each leg is charged as its carrier bills it: its talk time rounded by
/// its direction's increments ([`Billing`]), once per leg.
pub struct Tally {
    legs: HashMap<(String, String, i64), LegTalk>,
    unnamed: Vec<LegTalk>,
    carriers: CarrierLegs,
}

/// One leg's day, payer, talk seconds and how it is charged, before rounding.
type LegTalk = (NaiveDate, Extension, u64, Charged);

/// How a leg is charged: its direction's billing, and the direction's name
/// (for the users who have an allowance of that direction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charged {
    pub billing: Billing,
    pub direction: String,
}

impl Tally {
    pub fn add(&mut self, rule: &UsageRule<'_>, row: &CdrRow, day: NaiveDate) {
        self.carriers.see(row);
        let Some((extension, seconds)) = rule.charge(row) else {
            return;
        };
        let charged = rule.direction_of(&row.dst).map_or_else(
            || Charged {
                billing: Billing::PER_SECOND,
                direction: String::new(),
            },
            |d| Charged {
                billing: d.billing,
                direction: d.name.clone(),
            },
        );
        if !self.carriers.charge(row, day, &extension, &charged) {
            self.add_record(row, day, extension, seconds, charged);
        }
    }

    fn add_record(&mut self, row: &CdrRow, day: NaiveDate, extension: Extension, seconds: u64, charged: Charged) {
        if row.uniqueid.is_empty() {
            self.unnamed.push((day, extension, seconds, charged));
            return;
        }
        let leg = self
            .legs
            .entry(row.segment())
            .or_insert((day, extension.clone(), 0, charged.clone()));
        if seconds > leg.2 {
            *leg = (day, extension, seconds, charged);
        }
    }

    /// The charges per day and extension.
    pub fn finish(self) -> Usage {
        self.finish_by_direction().0
    }

    /// The charges per day and extension, and the same per direction (each
    /// leg charged to its direction too: a direction's figure is part of the
    /// shared one).
    pub fn finish_by_direction(&self) -> (Usage, DirectionUsage) {
        // Runs after the CDR's last row, so on every run's critical path: no
        // string is cloned for a leg whose extension or direction was seen.
        fn add<K: std::hash::Hash + Eq + Clone>(sums: &mut HashMap<K, u64>, key: &K, charge: u64) {
            match sums.get_mut(key) {
                Some(total) => *total = total.saturating_add(charge),
                None => {
                    sums.insert(key.clone(), charge);
                }
            }
        }
        let mut usage = Usage::new();
        let mut by_direction = DirectionUsage::new();
        let carriers = self.carriers.charges();
        let legs = self
            .legs
            .values()
            .chain(&self.unnamed)
            .map(|(day, e, s, c)| (*day, e, *s, c));
        for (day, extension, seconds, charged) in legs.chain(carriers) {
            let charge = charged.billing.charge_answered(seconds);
            add(usage.entry(day).or_default(), extension, charge);
            let of_direction = match by_direction.get_mut(&charged.direction) {
                Some(days) => days,
                None => by_direction.entry(charged.direction.clone()).or_default(),
            };
            add(of_direction.entry(day).or_default(), extension, charge);
        }
        (usage, by_direction)
    }
}

/// The carrier legs of paid calls (see [`Tally`]): which carrier channel of
/// which call (`linkedid`), who pays it, and how long it was answered.
#[derive(Debug, Default)]
pub struct CarrierLegs {
    carriers: HashMap<(String, String), Carrier>,
    /// When each channel of a call was last seen in a row.
    seen: HashMap<(String, String), NaiveDateTime>,
}

#[derive(Debug)]
struct Carrier {
    day: NaiveDate,
    payer: Extension,
    answered: NaiveDateTime,
    end: NaiveDateTime,
    /// The paid row it was answered in: `(uniqueid, dstchannel, sequence)`.
    first: (String, String, i64),
    /// How the first paid row's direction is charged.
    charged: Charged,
}

/// One carrier leg, charged whole to its payer on the day of its first paid row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierLeg {
    pub linkedid: String,
    pub channel: String,
    pub day: NaiveDate,
    pub payer: Extension,
    pub seconds: u64,
    /// The paid row that carries the charge (see [`CdrRow::segment`]).
    pub first: (String, String, i64),
    /// How the carrier bills it (its first paid row's direction).
    pub charged: Charged,
}

fn answered_span(row: &CdrRow) -> (NaiveDateTime, NaiveDateTime) {
    let talk = row.billsec.clamp(0, MAX_BILLSEC as i64);
    let end = row.calldate + chrono::Duration::seconds(row.duration.clamp(talk, MAX_BILLSEC as i64));
    (end - chrono::Duration::seconds(talk), end)
}

impl CarrierLegs {
    /// Notes when the row's channels were last up in their call (ringing
    /// counts: a carrier transferred to a phone that rings is still billed).
    /// Only rows of a call another channel began can carry a paid call on
    /// (the paid row's own end is its carrier's already).
    pub fn see(&mut self, row: &CdrRow) {
        if row.linkedid.is_empty() || row.linkedid == row.uniqueid || row.duration.max(row.billsec) <= 0 {
            return;
        }
        let (_, end) = answered_span(row);
        for channel in [&row.channel, &row.dstchannel] {
            if !channel.is_empty() {
                let last = self.seen.entry((row.linkedid.clone(), channel.clone())).or_insert(end);
                *last = (*last).max(end);
            }
        }
    }

    /// Takes a charged paid row into its carrier leg; `false` when the row
    /// has no call id (then it is charged on its own).
    pub fn charge(&mut self, row: &CdrRow, day: NaiveDate, payer: &Extension, charged: &Charged) -> bool {
        if row.linkedid.is_empty() || row.uniqueid.is_empty() {
            return false;
        }
        let (answered, end) = answered_span(row);
        let carrier = self
            .carriers
            .entry((row.linkedid.clone(), row.dstchannel.clone()))
            .or_insert_with(|| Carrier {
                day,
                payer: payer.clone(),
                answered,
                end,
                first: row.segment(),
                charged: charged.clone(),
            });
        if answered < carrier.answered {
            (carrier.day, carrier.payer, carrier.answered) = (day, payer.clone(), answered);
            (carrier.first, carrier.charged) = (row.segment(), charged.clone());
        }
        carrier.end = carrier.end.max(end);
        true
    }

    /// What [`CarrierLegs::legs`] gives, without the call ids and without
    /// copying a string: (day, payer, seconds, how it is charged).
    fn charges(&self) -> impl Iterator<Item = (NaiveDate, &Extension, u64, &Charged)> {
        self.carriers.iter().map(|(key, c)| {
            let end = self.seen.get(key).map_or(c.end, |&last| last.max(c.end));
            let seconds = (end - c.answered).num_seconds().clamp(0, MAX_BILLSEC as i64) as u64;
            (c.day, &c.payer, seconds, &c.charged)
        })
    }

    /// Each leg from its answer to the last row of the call that names it.
    pub fn legs(&self) -> impl Iterator<Item = CarrierLeg> + '_ {
        self.carriers.iter().map(|((linkedid, channel), c)| {
            let key = (linkedid.clone(), channel.clone());
            let end = self.seen.get(&key).map_or(c.end, |&seen| seen.max(c.end));
            CarrierLeg {
                linkedid: linkedid.clone(),
                channel: channel.clone(),
                day: c.day,
                payer: c.payer.clone(),
                seconds: (end - c.answered).num_seconds().clamp(0, MAX_BILLSEC as i64) as u64,
                first: c.first.clone(),
                charged: c.charged.clone(),
            }
        })
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
    use crate::core::paid::Direction;
    use crate::core::pattern::Pattern;

    fn paid() -> PaidDestinations {
        PaidDestinations::new(vec![Direction {
            name: "mobile".into(),
            patterns: vec![Pattern::parse("_870[5780-2]XXXXXXX").unwrap()],
            billing: Billing::PER_SECOND,
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
            channel: format!("PJSIP/{caller}-0000001a"),
            linkedid: "1764140000.17".into(),
            sequence: 17,
        }
    }

    #[test]
    fn an_answer_shorter_than_a_second_is_charged_only_where_the_carrier_rounds() {
        let paid = PaidDestinations::new(vec![
            Direction {
                name: "mobile".into(),
                patterns: vec![Pattern::parse("_870[5780-2]XXXXXXX").unwrap()],
                billing: Billing::PER_SECOND,
            },
            Direction {
                name: "intl".into(),
                patterns: vec![Pattern::parse("_810X.").unwrap()],
                billing: Billing::parse("60/60").unwrap(),
            },
        ]);
        let rule = cnum_rule(&paid);
        assert_eq!(
            rule.judge(&row("2055", "87011234567", "ANSWERED", 0)),
            Err(NotCharged::NotAnswered)
        );
        assert!(rule.judge(&row("2055", "81049301234567", "ANSWERED", 0)).is_ok());
        let mut tally = Tally::default();
        tally.add(
            &rule,
            &row("2055", "81049301234567", "ANSWERED", 0),
            NaiveDate::default(),
        );
        let usage = tally.finish();
        assert_eq!(usage[&NaiveDate::default()][&Extension::parse("2055").unwrap()], 60);
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

    /// An aborted attended transfer: the carrier leg leaves the bridge and
    /// comes back, writing two segments (300 s and 600 s) with the same
    /// uniqueid and dstchannel: 900 s billed. A second back end's copy of a
    /// segment adds nothing; without a linkedid, each record is charged.
    #[test]
    fn segments_of_one_leg_add_up_and_copies_count_once() {
        let paid = paid();
        let rule = cnum_rule(&paid);
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let mut first = row("2055", "87011234567", "ANSWERED", 300);
        first.sequence = 41;
        let mut second = first.clone();
        (second.sequence, second.billsec, second.duration) = (44, 600, 600);
        // The second segment starts as the first ends (its answer, 5 s in).
        second.calldate = first.calldate + chrono::Duration::seconds(305);
        for linkedid in ["1764140000.17", ""] {
            let mut tally = Tally::default();
            for r in [&first, &second, &first, &second] {
                let mut r = r.clone();
                r.linkedid = linkedid.into();
                tally.add(&rule, &r, day);
            }
            assert_eq!(
                tally.finish()[&day][&Extension::parse("2055").unwrap()],
                900,
                "{linkedid:?}"
            );
        }
    }

    /// A paid call transferred after 3 s: its row (the phone to the carrier)
    /// and the carrier's own row after the transfer (to 2066, cnum empty)
    /// together are the carrier's talk time, charged to the payer, whatever
    /// order the rows come in; an inbound call from that carrier and a reused
    /// channel name in another call are nobody's.
    #[test]
    fn the_carrier_leg_after_a_transfer_is_charged_to_the_payer() {
        let paid = paid();
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let mut first = row("2055", "87011234567", "ANSWERED", 3);
        (first.uniqueid, first.linkedid) = ("100.1".into(), "100.1".into());
        first.dstchannel = "PJSIP/kcell-00000007".into();
        // Handed over as the first row ends (5 s ringing, 3 s talk).
        let mut rest = row("", "2066", "ANSWERED", 16);
        (rest.uniqueid, rest.linkedid) = ("100.2".into(), "100.1".into());
        rest.channel = "PJSIP/kcell-00000007".into();
        rest.dstchannel = "PJSIP/2066-00000009".into();
        (rest.calldate, rest.duration) = (first.calldate + chrono::Duration::seconds(8), 16);
        let mut inbound = row("87019998877", "2066", "ANSWERED", 50);
        (inbound.uniqueid, inbound.linkedid) = ("200.1".into(), "200.1".into());
        inbound.channel = "PJSIP/kcell-00000007".into();
        let mut other_call = rest.clone();
        (other_call.uniqueid, other_call.linkedid) = ("300.2".into(), "300.1".into());
        let ext = Extension::parse("2055").unwrap();
        // Blind-transferred again, to a phone that rings 12 s unanswered: billed too.
        let mut ringing = row("", "2077", "NO ANSWER", 0);
        (ringing.uniqueid, ringing.linkedid) = ("100.2".into(), "100.1".into());
        ringing.channel = rest.channel.clone();
        ringing.dstchannel = "PJSIP/2077-0000000a".into();
        (ringing.calldate, ringing.duration) = (rest.calldate + chrono::Duration::seconds(16), 12);
        let listed = ["PJSIP/kcell-".to_string()];
        let elsewhere = ["PJSIP/beeline-".to_string()];
        for (trunk_channels, expected) in [(&[][..], 31), (&listed[..], 31), (&elsewhere[..], 0)] {
            let rule = UsageRule {
                trunk_channels,
                ..cnum_rule(&paid)
            };
            for order in [
                vec![&first, &rest, &inbound, &other_call, &ringing],
                vec![&ringing, &other_call, &rest, &inbound, &first],
            ] {
                let mut tally = Tally::default();
                for r in order {
                    tally.add(&rule, r, day);
                }
                let usage = tally.finish();
                let got = usage.get(&day).and_then(|u| u.get(&ext)).copied().unwrap_or(0);
                assert_eq!(got, expected, "trunk_channels {trunk_channels:?}");
                assert_eq!(usage.get(&day).map_or(0, |u| u.len()), usize::from(expected > 0));
            }
        }
        // Without linkedid (older installs) nothing ties the rest to the call.
        let rule = cnum_rule(&paid);
        let mut tally = Tally::default();
        for mut r in [first.clone(), rest.clone(), ringing.clone()] {
            r.linkedid.clear();
            tally.add(&rule, &r, day);
        }
        assert_eq!(tally.finish()[&day][&ext], 3);

        // Per started minute, the carrier leg is rounded once, whole (31 s
        // over two rows: one minute, not a minute per row).
        let minute = PaidDestinations::new(vec![Direction {
            name: "mobile".into(),
            patterns: vec![Pattern::parse("_870[5780-2]XXXXXXX").unwrap()],
            billing: Billing {
                first_s: 60,
                step_s: 60,
            },
        }]);
        let rule = cnum_rule(&minute);
        let mut tally = Tally::default();
        for r in [&first, &rest, &ringing] {
            tally.add(&rule, r, day);
        }
        assert_eq!(tally.finish()[&day][&ext], 60);
        // Each leg of its own (no linkedid), and copies of one record once.
        let mut tally = Tally::default();
        let mut second = first.clone();
        (second.uniqueid, second.billsec) = ("100.9".into(), 61);
        for mut r in [first.clone(), first.clone(), second] {
            r.linkedid.clear();
            tally.add(&rule, &r, day);
        }
        assert_eq!(tally.finish()[&day][&ext], 60 + 120);
    }

    #[test]
    fn a_row_that_reached_no_trunk_is_never_charged() {
        // A refusal's sound played after an answer, or an IVR that answered
        // and never dialled: one-party rows that no carrier billed.
        let paid = paid();
        let listed = ["PJSIP/kcell-".to_string()];
        for trunk_channels in [&[][..], &listed[..]] {
            let rule = UsageRule {
                trunk_channels,
                ..cnum_rule(&paid)
            };
            for empty in ["", "  "] {
                let mut r = row("2055", "87011234567", "ANSWERED", 3);
                r.dstchannel = empty.into();
                assert_eq!(rule.judge(&r), Err(NotCharged::NoTrunk));
            }
        }
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
        // It begins as the first leg ends (its answer is 5 s after calldate).
        (second_segment.billsec, second_segment.duration) = (200, 200);
        second_segment.calldate = leg.calldate + chrono::Duration::seconds(305);
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
    fn a_dst_with_a_comma_is_judged_by_the_number_the_route_sends() {
        let paid = paid();
        let rule = cnum_rule(&paid);
        assert!(rule.is_paid("87011234567,1"), "the route sends 87011234567");
        assert!(rule.is_paid("87011234567,"));
        assert!(!rule.is_paid("1,87011234567"), "the route sends 1");
        assert!(!rule.is_paid(",87011234567"));
    }

    #[test]
    fn a_dst_is_paid_by_its_digits_too() {
        let paid = paid();
        let rule = cnum_rule(&paid);
        assert!(rule.is_paid("870w11234567"), "a dial pause");
        assert!(rule.is_paid("870-112-345-67"));
        assert!(rule.is_paid("87011234567@carrier.example"));
        assert!(!rule.is_paid("8701123456"), "one digit short");
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
