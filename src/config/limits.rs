//! `[[direction]]`, `[limits]` and `[carryover]`: what is paid, and the
//! rules of the day (thresholds, workdays, carry-over, catch-up).

use serde::Deserialize;

use crate::core::billing::Billing;
use crate::core::paid::{Direction, PaidDestinations, valid_direction_name};
use crate::core::pattern::Pattern;
use crate::core::policy::{MAX_CATCH_UP_DAYS, MAX_UNFORCED_JUMP_DAYS, Rules};
use crate::values::duration::Seconds;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDirection {
    name: String,
    patterns: Vec<String>,
    billing: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    thresholds: Option<Vec<i64>>,
    workdays: Option<Vec<String>>,
    max_jump_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCarryover {
    #[serde(default = "super::checks::yes")]
    enabled: bool,
    max_seconds: Option<Seconds>,
}

impl Default for RawCarryover {
    fn default() -> Self {
        RawCarryover {
            enabled: true,
            max_seconds: None,
        }
    }
}

/// The day's rules from `[limits]` and `[carryover]`.
pub(super) fn rules(limits: RawLimits, carryover: RawCarryover) -> Result<Rules, String> {
    Ok(Rules {
        thresholds: thresholds(limits.thresholds)?,
        workdays: workdays(limits.workdays)?,
        carry_enabled: carryover.enabled,
        // `Seconds` already refused negative and over-a-year values.
        carry_cap_s: carryover.max_seconds.map(|Seconds(s)| s),
        max_jump_days: match limits.max_jump_days {
            None => MAX_UNFORCED_JUMP_DAYS,
            Some(d) if (1..=MAX_CATCH_UP_DAYS).contains(&d) => d,
            Some(d) => return Err(format!("limits.max_jump_days = {d} is out of range; use 1 to 366")),
        },
    })
}

pub(super) fn directions(raw: Vec<RawDirection>) -> Result<PaidDestinations, String> {
    if raw.is_empty() {
        return Err("no [[direction]] is configured; add one with name and patterns (the paid destinations)".into());
    }
    let mut out = Vec::new();
    for d in raw {
        if !valid_direction_name(&d.name) {
            return Err(format!(
                "direction name {:?} is not valid; use 1-40 letters, digits, _ or -",
                d.name
            ));
        }
        if out.iter().any(|o: &Direction| o.name == d.name) {
            return Err(format!(
                "direction {:?} is defined twice; give each direction its own name",
                d.name
            ));
        }
        if d.patterns.is_empty() {
            return Err(format!(
                "direction {:?} has no patterns; add e.g. patterns = [\"_8747XXXXXXX\"]",
                d.name
            ));
        }
        let patterns = d
            .patterns
            .iter()
            .map(|p| Pattern::parse(p).map_err(|e| format!("direction {:?}: {e}", d.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let billing = match d.billing.as_deref() {
            None => Billing::PER_SECOND,
            Some(text) => Billing::parse(text).map_err(|e| format!("direction {:?}: {e}", d.name))?,
        };
        // A number is billed one way: the dialplan and the CDR pick a
        // direction by their own order, so differently billed ones may not share one.
        for other in out.iter().filter(|o: &&Direction| o.billing != billing) {
            for mine in &patterns {
                if let Some(theirs) = other.patterns.iter().find(|p| p.overlaps(mine)) {
                    return Err(format!(
                        "directions {:?} ({billing}) and {:?} ({}) bill differently but both match some numbers \
                         ({mine} and {theirs}); narrow one of the patterns so each number has one billing",
                        d.name, other.name, other.billing
                    ));
                }
            }
        }
        out.push(Direction {
            name: d.name,
            patterns,
            billing,
        });
    }
    Ok(PaidDestinations::new(out))
}

fn thresholds(raw: Option<Vec<i64>>) -> Result<Vec<u8>, String> {
    let Some(list) = raw else {
        return Ok(vec![50, 90, 100]);
    };
    let fix = "use ascending percents from 1 to 100 ending with 100, e.g. [50, 90, 100]";
    if list.is_empty() || list.len() > 10 {
        return Err(format!("limits.thresholds must hold 1 to 10 values; {fix}"));
    }
    if list.iter().any(|&t| !(1..=100).contains(&t)) {
        return Err(format!("limits.thresholds {list:?} has a value outside 1-100; {fix}"));
    }
    if list.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("limits.thresholds {list:?} is not in ascending order; {fix}"));
    }
    if list.last() != Some(&100) {
        return Err(format!("limits.thresholds {list:?} must end with 100; {fix}"));
    }
    Ok(list.into_iter().map(|t| t as u8).collect())
}

fn workdays(raw: Option<Vec<String>>) -> Result<[bool; 7], String> {
    let Some(list) = raw else {
        return Ok([true; 7]);
    };
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut days = [false; 7];
    for name in &list {
        let lower = name.to_ascii_lowercase();
        let index = NAMES
            .iter()
            .position(|n| lower.len() >= 3 && (lower == *n || full_name(n).is_some_and(|f| f == lower)))
            .ok_or_else(|| {
                format!("limits.workdays entry {name:?} is not a weekday; use mon, tue, wed, thu, fri, sat, sun")
            })?;
        days[index] = true;
    }
    Ok(days)
}

fn full_name(short: &str) -> Option<&'static str> {
    Some(match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        "sun" => "sunday",
        _ => return None,
    })
}
