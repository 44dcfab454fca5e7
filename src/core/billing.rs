//! Carrier billing increments: how a carrier rounds a call's talk time
//! into what it charges ("60/60": per started minute; "60/1": a first
//! minute, then per second; "1/1": per second, the default).

use std::fmt;

/// A first billed step, then each next step, in seconds (both ≥ 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Billing {
    pub first_s: u64,
    pub step_s: u64,
}

/// Steps longer than an hour are no carrier's; they would only hide typos.
pub const MAX_STEP_S: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "billing {0:?} is not FIRST/STEP in seconds (1 to 3600 each); write e.g. \"60/60\" (per started minute), \"60/1\" or \"1/1\""
)]
pub struct BillingError(pub String);

impl Billing {
    /// Per second: the charge is the talk time itself.
    pub const PER_SECOND: Billing = Billing { first_s: 1, step_s: 1 };

    pub fn parse(text: &str) -> Result<Billing, BillingError> {
        let bad = || BillingError(text.to_string());
        let (first, step) = text.split_once('/').ok_or_else(bad)?;
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_STEP_S).contains(n))
                .ok_or_else(bad)
        };
        Ok(Billing {
            first_s: number(first)?,
            step_s: number(step)?,
        })
    }

    pub fn is_per_second(self) -> bool {
        self == Billing::PER_SECOND
    }

    /// What the carrier charges for an answered leg of `talk_s` seconds: as
    /// [`Billing::charge`], except that a leg answered for less than a
    /// second (the CDR's billsec 0) still costs a rounding carrier its first
    /// step; per second it costs nothing.
    pub fn charge_answered(self, talk_s: u64) -> u64 {
        if self.is_per_second() {
            self.charge(talk_s)
        } else {
            self.charge(talk_s.max(1))
        }
    }

    /// What the carrier charges for `talk_s` answered seconds: nothing for
    /// none, the first step for up to it, then each started step.
    pub fn charge(self, talk_s: u64) -> u64 {
        if talk_s == 0 {
            return 0;
        }
        if talk_s <= self.first_s {
            return self.first_s;
        }
        let rest = talk_s - self.first_s;
        let steps = rest.div_ceil(self.step_s);
        self.first_s.saturating_add(steps.saturating_mul(self.step_s))
    }

    /// The longest talk whose charge fits in `left_s`: a step boundary, so
    /// the cap never starts a step that cannot be paid. `None` when not even
    /// the first step fits (the call is refused).
    pub fn cap(self, left_s: u64) -> Option<u64> {
        let rest = left_s.checked_sub(self.first_s)?;
        Some(self.first_s + rest / self.step_s * self.step_s)
    }
}

impl fmt::Display for Billing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.first_s, self.step_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(text: &str) -> Billing {
        Billing::parse(text).unwrap_or(Billing::PER_SECOND)
    }

    #[test]
    fn an_answer_shorter_than_a_second_costs_a_rounding_carrier_its_first_step() {
        let minute = Billing::parse("60/60").unwrap();
        assert_eq!(minute.charge(0), 0);
        assert_eq!(minute.charge_answered(0), 60);
        assert_eq!(minute.charge_answered(61), 120);
        assert_eq!(Billing::PER_SECOND.charge_answered(0), 0);
        assert_eq!(Billing::parse("60/1").unwrap().charge_answered(0), 60);
    }

    #[test]
    fn rounds_as_the_carrier_does() {
        let minute = b("60/60");
        assert_eq!(
            [0, 1, 5, 59, 60, 61, 119, 120, 121].map(|t| minute.charge(t)),
            [0, 60, 60, 60, 60, 120, 120, 120, 180]
        );
        let first_minute = b("60/1");
        assert_eq!([0, 5, 60, 61, 95].map(|t| first_minute.charge(t)), [0, 60, 60, 61, 95]);
        let six = b("30/6");
        assert_eq!([1, 30, 31, 36, 37].map(|t| six.charge(t)), [30, 30, 36, 36, 42]);
        assert_eq!([0, 1, 61].map(|t| Billing::PER_SECOND.charge(t)), [0, 1, 61]);
        assert_eq!(minute.charge(u64::MAX), u64::MAX, "saturates, never wraps");
    }

    #[test]
    fn caps_at_the_last_step_that_fits() {
        let minute = b("60/60");
        assert_eq!(minute.cap(90), Some(60), "90 s left: cut at 60 s");
        assert_eq!(minute.cap(120), Some(120));
        assert_eq!(minute.cap(59), None, "not even the first minute");
        assert_eq!(b("60/1").cap(90), Some(90));
        assert_eq!(Billing::PER_SECOND.cap(0), None);
        assert_eq!(Billing::PER_SECOND.cap(17), Some(17));
    }

    #[test]
    fn parses_first_and_step() {
        assert_eq!(
            b("60/60"),
            Billing {
                first_s: 60,
                step_s: 60
            }
        );
        assert_eq!(b("60/1").to_string(), "60/1");
        for bad in ["", "60", "0/60", "60/0", "60/60/60", "-1/1", "a/b", "3601/1", "60 60"] {
            let e = Billing::parse(bad).unwrap_err().to_string();
            assert!(e.contains("\"60/60\""), "{bad}: {e}");
        }
    }

    proptest! {
        #[test]
        fn a_charge_is_never_below_the_talk_and_is_the_carriers_rounding(
            first in 1u64..=3600, step in 1u64..=3600, talk in 0u64..200_000
        ) {
            let billing = Billing { first_s: first, step_s: step };
            let charge = billing.charge(talk);
            prop_assert!(charge >= talk);
            if talk > 0 {
                // A whole number of steps after the first, less than one step over.
                prop_assert!(charge >= first);
                prop_assert_eq!((charge - first) % step, 0);
                prop_assert!(charge - talk < first.max(step));
            }
        }

        #[test]
        fn a_capped_call_is_never_charged_past_what_is_left(
            first in 1u64..=3600, step in 1u64..=3600, left in 0u64..200_000, talk in 0u64..200_000
        ) {
            let billing = Billing { first_s: first, step_s: step };
            match billing.cap(left) {
                None => prop_assert!(left < first),
                Some(cap) => {
                    prop_assert!(billing.charge(cap.min(talk)) <= left);
                    // And no longer cap would still fit.
                    prop_assert!(billing.charge(cap + 1) > left);
                }
            }
        }
    }
}
