//! The text of a threshold notice: the configured template filled with one
//! outbox entry's figures. Pure.

use std::collections::BTreeMap;

use crate::config::{NoticeTemplate, default_texts};
use crate::template::Template;

/// The figures a notice reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures<'a> {
    pub name: &'a str,
    pub extension: &'a str,
    pub day: &'a str,
    pub threshold: u8,
    pub used_s: u64,
    pub allowance_s: u64,
    /// The day is over when the notice goes out: past tense, no "until tomorrow".
    pub day_over: bool,
    /// How durations and the day are written, and the built-in texts' language.
    pub language: crate::language::Language,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub subject: String,
    pub body: String,
}

/// Fills the template for the notice's threshold; a threshold that is no
/// longer configured falls back to the built-in English text.
pub fn compose(templates: &BTreeMap<u8, NoticeTemplate>, figures: &Figures<'_>) -> Text {
    let values: BTreeMap<&'static str, String> = [
        ("name", figures.name.to_string()),
        ("extension", figures.extension.to_string()),
        ("percent", figures.threshold.to_string()),
        ("used", figures.language.duration(figures.used_s)),
        ("allowance", figures.language.duration(figures.allowance_s)),
        (
            "remaining",
            figures
                .language
                .duration(figures.allowance_s.saturating_sub(figures.used_s)),
        ),
        (
            "day",
            chrono::NaiveDate::parse_from_str(figures.day, "%Y-%m-%d")
                .map_or_else(|_| figures.day.to_string(), |d| figures.language.date(d)),
        ),
    ]
    .into_iter()
    .collect();
    let fill = |t: &Template| t.fill(&values);
    match templates.get(&figures.threshold) {
        Some(t) if figures.day_over => Text {
            subject: fill(&t.subject_past),
            body: fill(&t.body_past),
        },
        Some(t) => Text {
            subject: fill(&t.subject),
            body: fill(&t.body),
        },
        None => {
            let [subject, body, subject_past, body_past] = default_texts(figures.threshold, figures.language);
            let (subject, body) = if figures.day_over {
                (subject_past, body_past)
            } else {
                (subject, body)
            };
            let parse = |s: &str| Template::parse(s).map(|t| fill(&t)).unwrap_or_else(|_| s.to_string());
            Text {
                subject: parse(subject),
                body: parse(body),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(threshold: u8) -> Figures<'static> {
        Figures {
            name: "Vasya",
            extension: "2055",
            day: "2026-11-26",
            threshold,
            used_s: 1650,
            allowance_s: 1800,
            day_over: false,
            language: crate::language::Language::En,
        }
    }

    #[test]
    fn fills_the_default_texts() {
        let t = compose(&BTreeMap::new(), &figures(90));
        assert_eq!(t.subject, "Paid calls: 90% of today's allowance used (2055)");
        assert!(t.body.starts_with("Hello Vasya,"), "{}", t.body);
        assert!(
            t.body
                .contains("You have used 27m 30s of your 30m 00s of paid call time for 2026-11-26 (90%).")
        );
        assert!(t.body.contains("2m 30s remain."));
        let t = compose(&BTreeMap::new(), &figures(100));
        assert_eq!(t.subject, "Paid calls blocked: today's allowance is used up (2055)");
    }

    #[test]
    fn a_notice_for_a_day_that_is_over_speaks_of_it_in_the_past() {
        for threshold in [50, 90, 100] {
            let t = compose(
                &BTreeMap::new(),
                &Figures {
                    day_over: true,
                    ..figures(threshold)
                },
            );
            for text in [&t.subject, &t.body] {
                assert!(
                    !text.contains("today's allowance is") && !text.contains("until tomorrow"),
                    "{text}"
                );
            }
            assert!(t.subject.contains("for 2026-11-26 was"), "{}", t.subject);
            assert!(t.body.contains("On 2026-11-26 you used 27m 30s"), "{}", t.body);
            assert!(t.body.contains("That day is over"), "{}", t.body);
        }
    }

    #[test]
    fn uses_the_configured_template_for_its_threshold() {
        let mut templates = BTreeMap::new();
        templates.insert(
            90,
            NoticeTemplate {
                subject: Template::parse("Лимит {percent}% — {name}").unwrap(),
                body: Template::parse("Осталось {remaining}.").unwrap(),
                subject_past: Template::parse("{day}: лимит {percent}%").unwrap(),
                body_past: Template::parse("День {day} закончился.").unwrap(),
            },
        );
        let t = compose(&templates, &figures(90));
        assert_eq!(t.subject, "Лимит 90% — Vasya");
        assert_eq!(t.body, "Осталось 2m 30s.");
        let t = compose(
            &templates,
            &Figures {
                day_over: true,
                ..figures(90)
            },
        );
        assert_eq!(t.subject, "2026-11-26: лимит 90%");
        assert_eq!(t.body, "День 2026-11-26 закончился.");
    }
}

/// When to try a failed notice again: 5 minutes after the first failure,
/// doubling up to an hour.
pub fn retry_delay(attempts_so_far: u32) -> chrono::Duration {
    let minutes = 5i64.saturating_mul(1 << attempts_so_far.saturating_sub(1).min(4));
    chrono::Duration::minutes(minutes.min(60))
}

/// Whether a notice that just failed its `attempts`-th time should be given up.
pub fn give_up(attempts: u32, max_attempts: u32, age: chrono::Duration, max_age_hours: u32) -> bool {
    attempts >= max_attempts || age >= chrono::Duration::hours(i64::from(max_age_hours))
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn backs_off_to_an_hour() {
        let minutes: Vec<i64> = (1..=7).map(|a| retry_delay(a).num_minutes()).collect();
        assert_eq!(minutes, vec![5, 10, 20, 40, 60, 60, 60]);
        assert_eq!(retry_delay(0).num_minutes(), 5);
    }

    #[test]
    fn gives_up_after_attempts_or_age() {
        let h = chrono::Duration::hours;
        assert!(!give_up(1, 3, h(1), 48));
        assert!(give_up(3, 3, h(1), 48));
        assert!(give_up(1, 3, h(48), 48));
    }
}
