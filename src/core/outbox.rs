//! Whether a queued notice still says what is true when it goes out: send
//! it as queued, drop it, or rewrite its figures to the state's. Pure.
//!
//! A notice waits in the outbox while the server is down; meanwhile a grant
//! may unblock its user, a limit may change, the user may be disabled or
//! removed, or a later notice may say more. Delivery (`run`, `mail flush`)
//! asks [`judge`] first, so a "blocked until tomorrow" mail never reaches a
//! user a grant has unblocked.

use std::fmt;

use crate::values::duration::format as human;

/// A notice's figures as queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub threshold: u8,
    pub used_s: u64,
    pub allowance_s: u64,
}

/// The allowance's figures in the state now (for a monthly notice: the
/// month's level, charge and limit as of its latest day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    pub level: u8,
    pub used_s: u64,
    pub allowance_s: u64,
}

/// What the state says now about the notice's user and allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// `None`: the user was removed.
    pub user: Option<UserNow>,
    /// A later notice about the same allowance and day (month), pending or sent.
    pub newer: Option<i64>,
    /// `None`: no figures stored for the notice's day (nothing to compare).
    pub figures: Option<Current>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserNow {
    pub active: bool,
    /// The user still has the allowance the notice is about (a direction
    /// allowance or the monthly limit can be taken away; the daily one cannot).
    pub has_allowance: bool,
}

/// What to do with a notice about to go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Not sent: what it says is no longer true.
    Drop(Stale),
    /// Still true in its threshold, but its figures moved: send these.
    Rewrite(Current),
}

/// Why a notice no longer fits the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    Removed,
    Disabled,
    NoAllowance,
    Superseded {
        by: i64,
    },
    /// A grant or a larger allowance lowered the level below the notice's threshold.
    Lifted {
        level: u8,
    },
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stale::Removed => write!(f, "the user was removed"),
            Stale::Disabled => write!(f, "the user is disabled"),
            Stale::NoAllowance => write!(f, "the user no longer has this allowance"),
            Stale::Superseded { by } => write!(f, "notice #{by} is newer and says what is true"),
            Stale::Lifted { level } => write!(
                f,
                "no longer true: a grant or a larger allowance lowered the level to {level}%"
            ),
        }
    }
}

/// Send, drop or rewrite a notice, given the state now.
pub fn judge(queued: Queued, now: Now) -> Verdict {
    let Some(user) = now.user else {
        return Verdict::Drop(Stale::Removed);
    };
    if !user.active {
        return Verdict::Drop(Stale::Disabled);
    }
    if !user.has_allowance {
        return Verdict::Drop(Stale::NoAllowance);
    }
    if let Some(by) = now.newer {
        return Verdict::Drop(Stale::Superseded { by });
    }
    match now.figures {
        None => Verdict::Send,
        Some(current) if current.level < queued.threshold => Verdict::Drop(Stale::Lifted { level: current.level }),
        Some(current) if (current.used_s, current.allowance_s) != (queued.used_s, queued.allowance_s) => {
            Verdict::Rewrite(current)
        }
        Some(_) => Verdict::Send,
    }
}

/// The audit log's words for a rewrite: the figures before and after.
pub fn rewrite_words(queued: Queued, current: Current) -> String {
    format!(
        "used {} of {} -> {} of {}",
        human(queued.used_s),
        human(queued.allowance_s),
        human(current.used_s),
        human(current.allowance_s)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCKED: Queued = Queued {
        threshold: 100,
        used_s: 1800,
        allowance_s: 1800,
    };
    const ACTIVE: Option<UserNow> = Some(UserNow {
        active: true,
        has_allowance: true,
    });

    fn now(figures: Option<(u8, u64, u64)>) -> Now {
        Now {
            user: ACTIVE,
            newer: None,
            figures: figures.map(|(level, used_s, allowance_s)| Current {
                level,
                used_s,
                allowance_s,
            }),
        }
    }

    fn check(queued: Queued, now: Now, expected: Verdict) {
        assert_eq!(judge(queued, now), expected, "{queued:?} {now:?}");
    }

    #[test]
    fn a_notice_that_still_holds_goes_as_queued() {
        check(BLOCKED, now(Some((100, 1800, 1800))), Verdict::Send);
        check(BLOCKED, now(None), Verdict::Send);
    }

    #[test]
    fn a_blocked_notice_for_a_user_a_grant_unblocked_is_dropped() {
        check(
            BLOCKED,
            now(Some((50, 1800, 3000))),
            Verdict::Drop(Stale::Lifted { level: 50 }),
        );
        check(
            BLOCKED,
            now(Some((0, 1800, 9000))),
            Verdict::Drop(Stale::Lifted { level: 0 }),
        );
    }

    #[test]
    fn moved_figures_at_the_same_threshold_are_rewritten() {
        let current = Current {
            level: 100,
            used_s: 2000,
            allowance_s: 1900,
        };
        check(BLOCKED, now(Some((100, 2000, 1900))), Verdict::Rewrite(current));
        assert_eq!(
            rewrite_words(BLOCKED, current),
            "used 30m 00s of 30m 00s -> 33m 20s of 31m 40s"
        );
        let ninety = Queued {
            threshold: 90,
            used_s: 1620,
            allowance_s: 1800,
        };
        check(
            ninety,
            now(Some((90, 1700, 1800))),
            Verdict::Rewrite(Current {
                level: 90,
                used_s: 1700,
                allowance_s: 1800,
            }),
        );
    }

    #[test]
    fn the_user_and_later_notices_come_first() {
        let figures = Some((100, 1800, 1800));
        let removed = Now {
            user: None,
            ..now(figures)
        };
        check(BLOCKED, removed, Verdict::Drop(Stale::Removed));
        let disabled = Now {
            user: Some(UserNow {
                active: false,
                has_allowance: true,
            }),
            ..now(figures)
        };
        check(BLOCKED, disabled, Verdict::Drop(Stale::Disabled));
        let gone = Now {
            user: Some(UserNow {
                active: true,
                has_allowance: false,
            }),
            ..now(figures)
        };
        check(BLOCKED, gone, Verdict::Drop(Stale::NoAllowance));
        let newer = Now {
            newer: Some(7),
            ..now(figures)
        };
        check(BLOCKED, newer, Verdict::Drop(Stale::Superseded { by: 7 }));
        assert_eq!(
            Stale::Lifted { level: 0 }.to_string(),
            "no longer true: a grant or a larger allowance lowered the level to 0%"
        );
    }
}
