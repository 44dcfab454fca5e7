//! Paid destinations: named directions, each a list of Asterisk patterns.

use crate::core::billing::Billing;
use crate::core::pattern::Pattern;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direction {
    pub name: String,
    pub patterns: Vec<Pattern>,
    /// How its carrier rounds a call (per second unless configured).
    pub billing: Billing,
}

/// Why a number counts as paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaidMatch<'a> {
    pub direction: &'a Direction,
    pub pattern: &'a Pattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidDestinations {
    directions: Vec<Direction>,
}

/// Direction names appear in comments of the generated dialplan.
pub fn valid_direction_name(name: &str) -> bool {
    (1..=40).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl PaidDestinations {
    pub fn new(directions: Vec<Direction>) -> Self {
        PaidDestinations { directions }
    }

    /// The first direction and pattern (in config order) that match `number`.
    pub fn classify(&self, number: &str) -> Option<PaidMatch<'_>> {
        self.directions.iter().find_map(|direction| {
            direction
                .patterns
                .iter()
                .find(|p| p.matches(number))
                .map(|pattern| PaidMatch { direction, pattern })
        })
    }

    /// How a paid number is billed: its direction's increments. Config
    /// makes sure that directions that bill differently share no number.
    pub fn billing(&self, number: &str) -> Option<Billing> {
        self.classify(number).map(|m| m.direction.billing)
    }

    /// Whether any direction is billed other than per second (the dialplan
    /// then rounds caps and charges).
    pub fn rounds(&self) -> bool {
        self.directions.iter().any(|d| !d.billing.is_per_second())
    }

    pub fn directions(&self) -> &[Direction] {
        &self.directions
    }

    /// Prefixes that every paid number starts with, shortest first and none
    /// covered by another, for a database-side prefilter; `None` when some
    /// pattern has no literal prefix (`_X.`) and so any number may be paid.
    pub fn prefixes(&self) -> Option<Vec<String>> {
        let mut all: Vec<String> = self.patterns().iter().map(|p| p.literal_prefix()).collect();
        if all.iter().any(String::is_empty) {
            return None;
        }
        all.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
        let mut kept: Vec<String> = Vec::new();
        for prefix in all {
            if !kept.iter().any(|k| prefix.starts_with(k.as_str())) {
                kept.push(prefix);
            }
        }
        Some(kept)
    }

    /// Every distinct pattern, in config order.
    pub fn patterns(&self) -> Vec<&Pattern> {
        let mut seen = std::collections::BTreeSet::new();
        self.directions
            .iter()
            .flat_map(|d| d.patterns.iter())
            .filter(|p| seen.insert(p.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dests() -> PaidDestinations {
        let d = |name: &str, ps: &[&str]| Direction {
            name: name.into(),
            patterns: ps.iter().map(|p| Pattern::parse(p).unwrap()).collect(),
            billing: Billing::PER_SECOND,
        };
        PaidDestinations::new(vec![
            d("kcell", &["_870[5780-2]XXXXXXX", "_8747XXXXXXX"]),
            d("beeline", &["_877[15-8]XXXXXXX", "_8747XXXXXXX"]),
        ])
    }

    #[test]
    fn classifies_by_first_matching_direction() {
        let d = dests();
        let m = d.classify("87471234567").unwrap();
        assert_eq!(
            (m.direction.name.as_str(), m.pattern.as_str()),
            ("kcell", "_8747XXXXXXX")
        );
        let m = d.classify("87751234567").unwrap();
        assert_eq!(m.direction.name, "beeline");
        assert!(d.classify("2055").is_none());
        assert!(d.classify("87271234567").is_none());
    }

    #[test]
    fn lists_each_pattern_once() {
        let d = dests();
        let names: Vec<&str> = d.patterns().iter().map(|p| p.as_str()).collect();
        assert_eq!(names, vec!["_870[5780-2]XXXXXXX", "_8747XXXXXXX", "_877[15-8]XXXXXXX"]);
    }

    #[test]
    fn prefixes_cover_every_pattern_without_overlap() {
        assert_eq!(
            dests().prefixes(),
            Some(vec!["870".to_string(), "877".into(), "8747".into()])
        );
        let any = PaidDestinations::new(vec![Direction {
            name: "all".into(),
            patterns: vec![Pattern::parse("_8747X").unwrap(), Pattern::parse("_X.").unwrap()],
            billing: Billing::PER_SECOND,
        }]);
        assert_eq!(any.prefixes(), None);
    }

    #[test]
    fn direction_names_are_restricted() {
        assert!(valid_direction_name("kcell-mobile_2"));
        for bad in ["", "a b", "x;y", "a\nb", &"a".repeat(41)] {
            assert!(!valid_direction_name(bad), "{bad:?}");
        }
    }
}
