//! The text of a threshold notice: the configured template filled with one
//! outbox entry's figures. Pure.

use std::collections::BTreeMap;

use crate::views::template::Template;

/// The texts of one threshold's notice, as configured (or built in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeTemplate {
    pub subject: Template,
    pub body: Template,
    /// For a notice delivered after its day ended (e.g. queued as the day closed).
    pub subject_past: Template,
    pub body_past: Template,
}

/// The built-in texts for a threshold in `language`: (subject, body, past
/// subject, past body); at 100 % the "blocked" texts.
pub fn default_texts(threshold: u8, language: crate::views::language::Language) -> [&'static str; 4] {
    language.notice_texts(threshold >= 100)
}

/// The figures a notice reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures<'a> {
    pub name: &'a str,
    pub extension: &'a str,
    pub day: &'a str,
    pub threshold: u8,
    pub used_s: u64,
    pub allowance_s: u64,
    /// The day (for a monthly notice: the month) is over when the notice
    /// goes out: past tense, no "until tomorrow".
    pub day_over: bool,
    /// A notice about the monthly limit: `used_s` is the month's charge,
    /// `allowance_s` the limit; always the built-in texts of the language.
    pub month: bool,
    /// How durations and the day are written, and the built-in texts' language.
    pub language: crate::views::language::Language,
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
        ("month", figures.day.get(..7).unwrap_or(figures.day).to_string()),
    ]
    .into_iter()
    .collect();
    let fill = |t: &Template| t.fill(&values);
    if figures.month {
        let [subject, body, subject_past, body_past] = figures.language.month_notice_texts(figures.threshold >= 100);
        let (subject, body) = if figures.day_over {
            (subject_past, body_past)
        } else {
            (subject, body)
        };
        let parse = |s: &str| Template::parse(s).map(|t| fill(&t)).unwrap_or_else(|_| s.to_string());
        return Text {
            subject: parse(subject),
            body: parse(body),
        };
    }
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
            month: false,
            language: crate::views::language::Language::En,
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
    fn a_monthly_notice_speaks_of_the_month() {
        let t = compose(
            &BTreeMap::new(),
            &Figures {
                month: true,
                used_s: 28_800,
                allowance_s: 28_800,
                ..figures(100)
            },
        );
        assert_eq!(
            t.subject,
            "Paid calls blocked: this month's allowance is used up (2055)"
        );
        assert!(
            t.body
                .contains("By 2026-11-26 you have used 8h 00m 00s of your 8h 00m 00s of paid call time for 2026-11."),
            "{}",
            t.body
        );
        assert!(t.body.contains("blocked until the month ends"), "{}", t.body);
        let t = compose(
            &BTreeMap::new(),
            &Figures {
                month: true,
                day_over: true,
                used_s: 14_400,
                allowance_s: 28_800,
                ..figures(50)
            },
        );
        assert_eq!(
            t.subject,
            "Paid calls: 50% of the allowance for 2026-11 was used (2055)"
        );
        assert!(t.body.contains("That month is over"), "{}", t.body);
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
