//! The languages of the mail users and managers read: English, Russian and
//! Kazakh (`[mail] language`). Every text exists in every language: each
//! table is a `match` without a fallback arm, so a missing translation does
//! not compile, and the mail tests check the Russian and Kazakh mails for
//! left-over English.

use chrono::NaiveDate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    En,
    Ru,
    Kk,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::En, Language::Ru, Language::Kk];

    pub fn parse(code: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.code() == code)
    }

    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ru => "ru",
            Language::Kk => "kk",
        }
    }

    /// A duration as that language writes it: `27m 50s`, `27 мин 50 с`,
    /// `27 мин 50 сек`.
    pub fn duration(self, seconds: u64) -> String {
        let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
        let (hu, mu, su) = match self {
            Language::En => return crate::values::duration::format(seconds),
            Language::Ru => ("ч", "мин", "с"),
            Language::Kk => ("сағ", "мин", "сек"),
        };
        let mut parts = Vec::new();
        if h > 0 {
            parts.push(format!("{h} {hu}"));
        }
        if m > 0 || (h > 0 && s > 0) {
            parts.push(format!("{m} {mu}"));
        }
        if s > 0 || parts.is_empty() {
            parts.push(format!("{s} {su}"));
        }
        parts.join(" ")
    }

    /// A day as that language writes it: `2026-11-26`, `26.11.2026`.
    pub fn date(self, day: NaiveDate) -> String {
        match self {
            Language::En => day.format("%Y-%m-%d").to_string(),
            Language::Ru | Language::Kk => day.format("%d.%m.%Y").to_string(),
        }
    }

    /// A share of the allowance: `90%`; Russian and Kazakh put a
    /// (no-break) space before the sign.
    pub fn percent(self, value: u64) -> String {
        match self {
            Language::En => format!("{value}%"),
            Language::Ru | Language::Kk => format!("{value}\u{a0}%"),
        }
    }

    /// The built-in notice texts for a threshold below 100 % or at it:
    /// (subject, body, subject once the day is over, body once it is over).
    pub fn notice_texts(self, exhausted: bool) -> [&'static str; 4] {
        match (self, exhausted) {
            (Language::En, false) => [
                "Paid calls: {percent}% of today's allowance used ({extension})",
                "Hello {name},\n\n\
                 You have used {used} of your {allowance} of paid call time for {day} ({percent}%).\n\
                 {remaining} remain.\n\n\
                 When the allowance is used up, calls to paid destinations from extension {extension}\n\
                 are blocked until tomorrow; all other calls keep working.\n\n-- callquota\n",
                "Paid calls: {percent}% of the allowance for {day} was used ({extension})",
                "Hello {name},\n\n\
                 On {day} you used {used} of your {allowance} of paid call time ({percent}%).\n\
                 That day is over; today's allowance applies now.\n\n-- callquota\n",
            ],
            (Language::En, true) => [
                "Paid calls blocked: today's allowance is used up ({extension})",
                "Hello {name},\n\n\
                 You have used {used} of your {allowance} of paid call time for {day}.\n\
                 Calls to paid destinations from extension {extension} are blocked until tomorrow;\n\
                 all other calls keep working. Ask your administrator if you need more time today.\n\n-- callquota\n",
                "Paid calls: the allowance for {day} was used up ({extension})",
                "Hello {name},\n\n\
                 On {day} you used {used} of your {allowance} of paid call time, and paid calls from\n\
                 extension {extension} were blocked for the rest of that day.\n\
                 That day is over; today's allowance applies now.\n\n-- callquota\n",
            ],
            (Language::Ru, false) => [
                "Платные звонки: израсходовано {percent}\u{a0}% дневного лимита ({extension})",
                "Здравствуйте, {name}!\n\n\
                 За {day} вы израсходовали {used} из {allowance} платного времени разговоров ({percent}\u{a0}%).\n\
                 Осталось: {remaining}.\n\n\
                 Когда лимит закончится, звонки на платные направления с номера {extension}\n\
                 будут закрыты до завтра; остальные звонки продолжат работать.\n\n-- callquota\n",
                "Платные звонки: за {day} израсходовано {percent}\u{a0}% лимита ({extension})",
                "Здравствуйте, {name}!\n\n\
                 {day} вы израсходовали {used} из {allowance} платного времени разговоров ({percent}\u{a0}%).\n\
                 Этот день закончился; теперь действует лимит на сегодня.\n\n-- callquota\n",
            ],
            (Language::Ru, true) => [
                "Платные звонки закрыты: дневной лимит израсходован ({extension})",
                "Здравствуйте, {name}!\n\n\
                 За {day} вы израсходовали {used} из {allowance} платного времени разговоров.\n\
                 Звонки на платные направления с номера {extension} закрыты до завтра;\n\
                 остальные звонки работают. Если сегодня нужно больше времени, обратитесь к администратору.\n\n\
                 -- callquota\n",
                "Платные звонки: лимит за {day} был израсходован ({extension})",
                "Здравствуйте, {name}!\n\n\
                 {day} вы израсходовали {used} из {allowance} платного времени разговоров, и звонки\n\
                 на платные направления с номера {extension} были закрыты до конца того дня.\n\
                 Этот день закончился; теперь действует лимит на сегодня.\n\n-- callquota\n",
            ],
            (Language::Kk, false) => [
                "Ақылы қоңыраулар: күндік лимиттің {percent}\u{a0}% жұмсалды ({extension})",
                "Сәлеметсіз бе, {name}!\n\n\
                 {day} күні сіз ақылы сөйлесу уақытының {allowance} лимитінен {used} жұмсадыңыз ({percent}\u{a0}%).\n\
                 Қалғаны: {remaining}.\n\n\
                 Лимит біткенде {extension} нөмірінен ақылы бағыттарға қоңырау шалуға\n\
                 ертеңге дейін тыйым салынады; басқа қоңыраулар жұмыс істей береді.\n\n-- callquota\n",
                "Ақылы қоңыраулар: {day} күнгі лимиттің {percent}\u{a0}% жұмсалды ({extension})",
                "Сәлеметсіз бе, {name}!\n\n\
                 {day} күні сіз ақылы сөйлесу уақытының {allowance} лимитінен {used} жұмсадыңыз ({percent}\u{a0}%).\n\
                 Бұл күн аяқталды; енді бүгінгі лимит қолданылады.\n\n-- callquota\n",
            ],
            (Language::Kk, true) => [
                "Ақылы қоңырауларға тыйым салынды: күндік лимит бітті ({extension})",
                "Сәлеметсіз бе, {name}!\n\n\
                 {day} күні сіз ақылы сөйлесу уақытының {allowance} лимитінен {used} жұмсадыңыз.\n\
                 {extension} нөмірінен ақылы бағыттарға қоңырау шалуға ертеңге дейін тыйым салынды;\n\
                 басқа қоңыраулар жұмыс істейді. Бүгін қосымша уақыт керек болса, әкімшіге хабарласыңыз.\n\n\
                 -- callquota\n",
                "Ақылы қоңыраулар: {day} күнгі лимит біткен ({extension})",
                "Сәлеметсіз бе, {name}!\n\n\
                 {day} күні сіз ақылы сөйлесу уақытының {allowance} лимитінен {used} жұмсадыңыз, және\n\
                 {extension} нөмірінен ақылы бағыттарға қоңырау шалуға сол күннің соңына дейін тыйым салынды.\n\
                 Бұл күн аяқталды; енді бүгінгі лимит қолданылады.\n\n-- callquota\n",
            ],
        }
    }

    /// How a notice about a direction allowance names it: a subject tag
    /// and the body's first line.
    pub fn direction_words(self, direction: &str) -> (String, String) {
        match self {
            Language::En => (
                format!("[{direction}]"),
                format!("This notice is about your {direction} allowance."),
            ),
            Language::Ru => (
                format!("[{direction}]"),
                format!("Это уведомление о вашем лимите по направлению {direction}."),
            ),
            Language::Kk => (
                format!("[{direction}]"),
                format!("Бұл хабарлама {direction} бағыты бойынша лимитіңіз туралы."),
            ),
        }
    }

    /// The built-in texts of a monthly-limit notice, below 100 % or at it:
    /// (subject, body, subject once the month is over, body once it is over).
    /// `{month}` is the month (2026-12), `{day}` the day it was reached.
    pub fn month_notice_texts(self, exhausted: bool) -> [&'static str; 4] {
        match (self, exhausted) {
            (Language::En, false) => [
                "Paid calls: {percent}% of this month's allowance used ({extension})",
                "Hello {name},\n\n\
                 By {day} you have used {used} of your {allowance} of paid call time for {month} ({percent}%).\n\
                 {remaining} remain for the rest of the month.\n\n\
                 When the monthly allowance is used up, calls to paid destinations from extension {extension}\n\
                 are blocked until the month ends; all other calls keep working.\n\n-- callquota\n",
                "Paid calls: {percent}% of the allowance for {month} was used ({extension})",
                "Hello {name},\n\n\
                 In {month} you used {used} of your {allowance} of paid call time ({percent}%).\n\
                 That month is over; this month's allowance applies now.\n\n-- callquota\n",
            ],
            (Language::En, true) => [
                "Paid calls blocked: this month's allowance is used up ({extension})",
                "Hello {name},\n\n\
                 By {day} you have used {used} of your {allowance} of paid call time for {month}.\n\
                 Calls to paid destinations from extension {extension} are blocked until the month ends;\n\
                 all other calls keep working. Ask your administrator if you need more time.\n\n-- callquota\n",
                "Paid calls: the allowance for {month} was used up ({extension})",
                "Hello {name},\n\n\
                 In {month} you used {used} of your {allowance} of paid call time, and paid calls from\n\
                 extension {extension} were blocked for the rest of that month.\n\
                 That month is over; this month's allowance applies now.\n\n-- callquota\n",
            ],
            (Language::Ru, false) => [
                "Платные звонки: израсходовано {percent}\u{a0}% месячного лимита ({extension})",
                "Здравствуйте, {name}!\n\n\
                 К {day} вы израсходовали {used} из {allowance} платного времени разговоров за {month} ({percent}\u{a0}%).\n\
                 До конца месяца осталось: {remaining}.\n\n\
                 Когда месячный лимит закончится, звонки на платные направления с номера {extension}\n\
                 будут закрыты до конца месяца; остальные звонки продолжат работать.\n\n-- callquota\n",
                "Платные звонки: за {month} израсходовано {percent}\u{a0}% лимита ({extension})",
                "Здравствуйте, {name}!\n\n\
                 За {month} вы израсходовали {used} из {allowance} платного времени разговоров ({percent}\u{a0}%).\n\
                 Этот месяц закончился; теперь действует лимит текущего месяца.\n\n-- callquota\n",
            ],
            (Language::Ru, true) => [
                "Платные звонки закрыты: месячный лимит израсходован ({extension})",
                "Здравствуйте, {name}!\n\n\
                 К {day} вы израсходовали {used} из {allowance} платного времени разговоров за {month}.\n\
                 Звонки на платные направления с номера {extension} закрыты до конца месяца;\n\
                 остальные звонки работают. Если нужно больше времени, обратитесь к администратору.\n\n\
                 -- callquota\n",
                "Платные звонки: лимит за {month} был израсходован ({extension})",
                "Здравствуйте, {name}!\n\n\
                 За {month} вы израсходовали {used} из {allowance} платного времени разговоров, и звонки\n\
                 на платные направления с номера {extension} были закрыты до конца того месяца.\n\
                 Этот месяц закончился; теперь действует лимит текущего месяца.\n\n-- callquota\n",
            ],
            (Language::Kk, false) => [
                "Ақылы қоңыраулар: айлық лимиттің {percent}\u{a0}% жұмсалды ({extension})",
                "Сәлеметсіз бе, {name}!\n\n\
                 {day} күнге дейін сіз {month} айындағы ақылы сөйлесу уақытының {allowance} лимитінен {used} жұмсадыңыз ({percent}\u{a0}%).\n\
                 Ай соңына дейін қалғаны: {remaining}.\n\n\
                 Айлық лимит біткенде {extension} нөмірінен ақылы бағыттарға қоңырау шалуға\n\
                 ай соңына дейін тыйым салынады; басқа қоңыраулар жұмыс істей береді.\n\n-- callquota\n",
                "Ақылы қоңыраулар: {month} айындағы лимиттің {percent}\u{a0}% жұмсалды ({extension})",
                "Сәлеметсіз бе, {name}!\n\n\
                 {month} айында сіз ақылы сөйлесу уақытының {allowance} лимитінен {used} жұмсадыңыз ({percent}\u{a0}%).\n\
                 Бұл ай аяқталды; енді ағымдағы айдың лимиті қолданылады.\n\n-- callquota\n",
            ],
            (Language::Kk, true) => [
                "Ақылы қоңырауларға тыйым салынды: айлық лимит бітті ({extension})",
                "Сәлеметсіз бе, {name}!\n\n\
                 {day} күнге дейін сіз {month} айындағы ақылы сөйлесу уақытының {allowance} лимитінен {used} жұмсадыңыз.\n\
                 {extension} нөмірінен ақылы бағыттарға қоңырау шалуға ай соңына дейін тыйым салынды;\n\
                 басқа қоңыраулар жұмыс істейді. Қосымша уақыт керек болса, әкімшіге хабарласыңыз.\n\n\
                 -- callquota\n",
                "Ақылы қоңыраулар: {month} айындағы лимит біткен ({extension})",
                "Сәлеметсіз бе, {name}!\n\n\
                 {month} айында сіз ақылы сөйлесу уақытының {allowance} лимитінен {used} жұмсадыңыз, және\n\
                 {extension} нөмірінен ақылы бағыттарға қоңырау шалуға сол айдың соңына дейін тыйым салынды.\n\
                 Бұл ай аяқталды; енді ағымдағы айдың лимиті қолданылады.\n\n-- callquota\n",
            ],
        }
    }

    /// The daily digest's words.
    pub fn digest(self) -> DigestWords {
        match self {
            Language::En => DigestWords {
                subject: "Paid calls on {day}: {used} used of {allowance}, {blocked} blocked",
                heading: "Paid calls on {day}",
                closed: "The day is closed: these are its final figures.",
                columns: ["EXT", "NAME", "USED", "ALLOWANCE", "%USED", "BLOCKED AT"],
                html_columns: ["Ext", "Name", "Used", "Allowance", "% used", "Blocked at"],
                total: "TOTAL",
                html_total: "Total",
                users: "{n} users",
                grants: "Grants",
                no_grants: "No grants.",
                by: "by {who}",
                on_behalf: "on behalf of {who}",
            },
            Language::Ru => DigestWords {
                subject: "Платные звонки за {day}: израсходовано {used} из {allowance}, закрыто: {blocked}",
                heading: "Платные звонки за {day}",
                closed: "День закрыт: это окончательные цифры.",
                columns: ["ВН.", "ИМЯ", "ИЗРАСХОД.", "ЛИМИТ", "%", "ЗАКРЫТ В"],
                html_columns: ["Внутр.", "Имя", "Израсходовано", "Лимит", "%", "Закрыт в"],
                total: "ИТОГО",
                html_total: "Итого",
                users: "сотрудников: {n}",
                grants: "Добавленное время",
                no_grants: "Время не добавлялось.",
                by: "добавил(а) {who}",
                on_behalf: "по просьбе: {who}",
            },
            Language::Kk => DigestWords {
                subject: "{day} күнгі ақылы қоңыраулар: {allowance} лимиттен {used} жұмсалды, тыйым салынғандар: {blocked}",
                heading: "{day} күнгі ақылы қоңыраулар",
                closed: "Күн жабылды: бұл соңғы көрсеткіштер.",
                columns: ["ІШКІ", "АТЫ", "ЖҰМСАЛДЫ", "ЛИМИТ", "%", "ТЫЙЫМ"],
                html_columns: ["Ішкі нөмір", "Аты", "Жұмсалды", "Лимит", "%", "Тыйым салынған уақыт"],
                total: "БАРЛЫҒЫ",
                html_total: "Барлығы",
                users: "қызметкерлер: {n}",
                grants: "Қосылған уақыт",
                no_grants: "Уақыт қосылмады.",
                by: "қосқан: {who}",
                on_behalf: "өтініш берген: {who}",
            },
        }
    }
}

/// The daily digest's words in one language (`{day}`, `{used}`,
/// `{allowance}`, `{blocked}`, `{n}`, `{who}` are filled in).
pub struct DigestWords {
    pub subject: &'static str,
    pub heading: &'static str,
    pub closed: &'static str,
    pub columns: [&'static str; 6],
    pub html_columns: [&'static str; 6],
    pub total: &'static str,
    pub html_total: &'static str,
    pub users: &'static str,
    pub grants: &'static str,
    pub no_grants: &'static str,
    pub by: &'static str,
    pub on_behalf: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_dates_and_percents_in_each_language() {
        assert_eq!(Language::En.duration(1670), "27m 50s");
        assert_eq!(Language::Ru.duration(1670), "27 мин 50 с");
        assert_eq!(Language::Kk.duration(1670), "27 мин 50 сек");
        assert_eq!(Language::Ru.duration(1800), "30 мин");
        assert_eq!(Language::Ru.duration(3605), "1 ч 0 мин 5 с");
        assert_eq!(Language::Kk.duration(7200), "2 сағ");
        assert_eq!(Language::Ru.duration(0), "0 с");
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(Language::Ru.date(day), "26.11.2026");
        assert_eq!(Language::En.date(day), "2026-11-26");
        assert_eq!(Language::Kk.percent(90), "90\u{a0}%");
        for code in ["en", "ru", "kk"] {
            assert_eq!(Language::parse(code).map(Language::code), Some(code));
        }
        assert_eq!(Language::parse("de"), None);
    }

    /// The placeholders a text uses, e.g. {"day", "used"}.
    fn placeholders(text: &str) -> std::collections::BTreeSet<String> {
        text.split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
            .collect()
    }

    #[test]
    fn every_translation_says_what_the_english_says() {
        for lang in Language::ALL {
            for exhausted in [false, true] {
                let english = Language::En.notice_texts(exhausted);
                for (text, en) in lang.notice_texts(exhausted).iter().zip(english) {
                    assert!(
                        crate::views::template::Template::parse(text).is_ok(),
                        "{lang:?}: {text}"
                    );
                    assert_eq!(placeholders(text), placeholders(en), "{lang:?}: {text}");
                }
            }
            for exhausted in [false, true] {
                let english = Language::En.month_notice_texts(exhausted);
                for (text, en) in lang.month_notice_texts(exhausted).iter().zip(english) {
                    assert!(
                        crate::views::template::Template::parse(text).is_ok(),
                        "{lang:?}: {text}"
                    );
                    assert_eq!(placeholders(text), placeholders(en), "{lang:?}: {text}");
                }
            }
            let (d, en) = (lang.digest(), Language::En.digest());
            for (text, en) in [
                (d.subject, en.subject),
                (d.heading, en.heading),
                (d.users, en.users),
                (d.by, en.by),
                (d.on_behalf, en.on_behalf),
            ] {
                assert_eq!(placeholders(text), placeholders(en), "{lang:?}: {text}");
            }
        }
    }
}
