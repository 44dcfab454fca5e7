//! Text from outside callquota (CDR fields, Asterisk's and SMTP servers'
//! replies, audit details written from them) made safe to print on a
//! terminal: control characters (C0, DEL, C1: escape sequences such as OSC 52,
//! which writes the clipboard) and the invisible characters that reorder or
//! hide text (bidi controls, zero-width characters) are shown escaped, never
//! sent raw. JSON output needs nothing: serde escapes control characters.

use std::borrow::Cow;

/// Bidi controls and zero-width characters: invisible, but they reorder or
/// hide what a reader sees (a name that reads backwards, two names that look
/// the same).
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' // zero-width space/non-joiner/joiner, LRM, RLM
            | '\u{202A}'..='\u{202E}' // LRE, RLE, PDF, LRO, RLO
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, LRI..PDI, deprecated format controls
            | '\u{061C}' // Arabic letter mark
            | '\u{FEFF}' // zero-width no-break space (BOM)
            | '\u{00AD}' // soft hyphen
            | '\u{034F}' // combining grapheme joiner
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers: blank "letters"
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors, vowel separator
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{2800}' // braille blank
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{FFF0}'..='\u{FFFB}' // interlinear annotations
            | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
            | '\u{1D173}'..='\u{1D17A}' // musical format controls
            | '\u{E0000}'..='\u{E0FFF}' // tags, variation selectors supplement
    )
}

/// Whether `c` must not reach a terminal raw.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// `text` with every control or invisible character escaped (`\n`, `\t`,
/// `\r`, else `\u{1b}`); borrowed when there is none.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_invisible_characters_are_shown_not_sent() {
        let osc52 = "ok\x1b]52;c;ZXZpbA==\x07 done";
        assert_eq!(escape_controls(osc52), "ok\\u{1b}]52;c;ZXZpbA==\\u{7} done");
        assert_eq!(escape_controls("a\u{9b}31m\u{7f}"), "a\\u{9b}31m\\u{7f}");
        assert_eq!(escape_controls("line\nnext\ttab\r"), "line\\nnext\\ttab\\r");
        assert_eq!(escape_controls("user\u{202E}gpj.exe"), "user\\u{202e}gpj.exe");
        assert_eq!(escape_controls("a\u{200B}b\u{FEFF}"), "a\\u{200b}b\\u{feff}");
        assert!(matches!(escape_controls("Әсел Нұрланқызы 2055"), Cow::Borrowed(_)));
        for c in [
            '\u{1b}', '\u{7}', '\u{85}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{2060}',
        ] {
            assert!(needs_escape(c), "{c:?}");
            assert!(!escape_controls(&c.to_string()).contains(c));
        }
    }
}
