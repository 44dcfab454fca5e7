//! A tracked employee as the state stores them, and how a change to one is
//! described in the audit log. Plain data.

use chrono::NaiveDate;

use crate::core::policy::Member;
use crate::values::duration::format as human;
use crate::values::extension::Extension;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub extension: Extension,
    pub name: String,
    pub email: String,
    /// A supervisor copied on this user's notices ("" = none).
    pub cc: String,
    pub daily_limit_s: u64,
    /// The most a calendar month may charge (`None`: no monthly cap).
    pub monthly_limit_s: Option<u64>,
    /// Separate daily limits per direction name, alongside the shared one.
    pub direction_limits: std::collections::BTreeMap<String, u64>,
    /// The day each direction allowance was given (it applies from then on).
    pub direction_since: std::collections::BTreeMap<String, NaiveDate>,
    pub active: bool,
    pub since: NaiveDate,
}

impl User {
    pub fn member(&self) -> Member {
        Member {
            extension: self.extension.clone(),
            daily_limit_s: self.daily_limit_s,
            monthly_limit_s: self.monthly_limit_s,
            direction_limits: self.direction_limits.clone(),
            direction_since: self.direction_since.clone(),
            since: self.since,
        }
    }
}

/// A new user, as the audit log's `user_added` row says it: durations as
/// everything else shows them (`30m 00s`, not `1800s`). Rows stored before
/// this wording keep theirs: the log is append-only.
pub fn user_added_words(user: &User) -> String {
    let mut words = format!(
        "name {:?}, email {:?}, cc {:?}, daily limit {}",
        user.name,
        user.email,
        user.cc,
        human(user.daily_limit_s)
    );
    if let Some(m) = user.monthly_limit_s {
        words.push_str(&format!(", monthly limit {}", human(m)));
    }
    for (name, limit) in &user.direction_limits {
        words.push_str(&format!(", {name} daily limit {}", human(*limit)));
    }
    words.push_str(if user.active { ", active" } else { ", disabled" });
    words
}

/// Each changed field of a user, as the audit log says it.
pub fn user_changes(old: &User, new: &User) -> Vec<String> {
    let mut changes = Vec::new();
    if old.name != new.name {
        changes.push(format!("name {:?} -> {:?}", old.name, new.name));
    }
    if old.email != new.email {
        changes.push(format!("email {:?} -> {:?}", old.email, new.email));
    }
    if old.cc != new.cc {
        changes.push(format!("cc {:?} -> {:?}", old.cc, new.cc));
    }
    if old.daily_limit_s != new.daily_limit_s {
        changes.push(format!(
            "daily limit {} -> {}",
            human(old.daily_limit_s),
            human(new.daily_limit_s)
        ));
    }
    if old.monthly_limit_s != new.monthly_limit_s {
        let say = |m: Option<u64>| m.map_or_else(|| "none".to_string(), human);
        changes.push(format!(
            "monthly limit {} -> {}",
            say(old.monthly_limit_s),
            say(new.monthly_limit_s)
        ));
    }
    let names: std::collections::BTreeSet<&String> =
        old.direction_limits.keys().chain(new.direction_limits.keys()).collect();
    for name in names {
        let (was, is) = (old.direction_limits.get(name), new.direction_limits.get(name));
        if was != is {
            let say = |m: Option<&u64>| m.map_or_else(|| "none".to_string(), |&s| human(s));
            changes.push(format!("{name} daily limit {} -> {}", say(was), say(is)));
        }
    }
    if old.active != new.active {
        changes.push(if new.active { "enabled" } else { "disabled" }.into());
    }
    if old.since != new.since {
        changes.push(format!("tracked since {}", new.since.format("%Y-%m-%d")));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_user_is_worded_with_durations_as_shown_everywhere() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let user = User {
            extension: Extension::parse("2055").unwrap(),
            name: "Vasya".into(),
            email: "v@example.com".into(),
            cc: String::new(),
            daily_limit_s: 1800,
            monthly_limit_s: Some(8 * 3600),
            direction_limits: [("international".to_string(), 600)].into(),
            direction_since: Default::default(),
            active: true,
            since: day,
        };
        assert_eq!(
            user_added_words(&user),
            "name \"Vasya\", email \"v@example.com\", cc \"\", daily limit 30m 00s, monthly limit 8h 00m 00s, \
             international daily limit 10m 00s, active"
        );
    }
}
