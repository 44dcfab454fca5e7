//! Asterisk extension patterns (`_870[5780-2]XXXXXXX`) and literal numbers,
//! matched with Asterisk's semantics:
//!
//! * `_` starts a pattern; without it the text is a literal number.
//! * `X` = 0-9, `Z` = 1-9, `N` = 2-9 (case-insensitive); other letters are
//!   literal and case-sensitive.
//! * `[...]` is a set, `a-b` inside it a range; an empty `[]` is ignored.
//! * `.` = one or more characters, `!` = zero or more; both end the pattern.
//! * `-` outside brackets is ignored, in the pattern and in the dialled number.
//!
//! Patterns are written into the dialplan, so the parser admits only the
//! characters above plus digits, letters, `*`, `#` and `+`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Element {
    Char(char),
    /// Inclusive character ranges; a single character is `(c, c)`.
    Set(Vec<(char, char)>),
    OneOrMore,
    ZeroOrMore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    elements: Vec<Element>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern is empty; write e.g. _870[5780-2]XXXXXXX or a literal number")]
    Empty,
    #[error("pattern {0:?} contains {1:?}; {2}")]
    BadChar(String, char, &'static str),
    #[error(
        "{0:?} has no leading _, so Asterisk reads it as the literal number {0}, which no dialled number is; write \"_{0}\" for a pattern"
    )]
    LiteralWithPatternChars(String),
    #[error("pattern {0:?} has an unclosed '['; close the set with ']'")]
    Unclosed(String),
    #[error("pattern {0:?} has a ']' without '['")]
    StrayClose(String),
    #[error("pattern {0:?} has a bad range in a set; write ranges low-high, e.g. [0-2]")]
    BadRange(String),
    #[error("pattern {0:?} has characters after '.' or '!'; these must end the pattern")]
    AfterWildcard(String),
    #[error("pattern {0:?} is longer than 80 characters")]
    TooLong(String),
}

const MAX_LEN: usize = 80;

const LITERAL_ALLOWS: &str = "a literal number may hold digits, letters, * # + and -";
const PATTERN_ALLOWS: &str = "a pattern may hold digits, letters, * # + - [ ] . and !";
const SET_ALLOWS: &str = "a [set] may hold digits, letters, * # + and ranges such as 0-2";

fn plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '*' | '#' | '+')
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.len() > MAX_LEN {
            return Err(PatternError::TooLong(text.to_string()));
        }
        let elements = match text.strip_prefix('_') {
            Some(body) => parse_pattern(text, body)?,
            None => parse_literal(text)?,
        };
        if elements.is_empty() {
            return Err(PatternError::Empty);
        }
        Ok(Pattern {
            text: text.to_string(),
            elements,
        })
    }

    /// The pattern as written in the config (and in the dialplan).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The literal characters every matching number starts with (dashes
    /// aside): `_870[5780-2]XXXXXXX` → `870`. Empty for `_X.`.
    pub fn literal_prefix(&self) -> String {
        self.elements
            .iter()
            .map_while(|e| match e {
                Element::Char(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    pub fn matches(&self, number: &str) -> bool {
        // Asterisk ignores dashes in the dialled string.
        let chars: Vec<char> = number.chars().filter(|&c| c != '-').collect();
        let mut pos = 0;
        for element in &self.elements {
            match element {
                Element::OneOrMore => return chars.len() > pos,
                Element::ZeroOrMore => return true,
                Element::Char(want) => {
                    if chars.get(pos) != Some(want) {
                        return false;
                    }
                }
                Element::Set(ranges) => match chars.get(pos) {
                    Some(&c) if ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) => {}
                    _ => return false,
                },
            }
            pos += 1;
        }
        pos == chars.len()
    }
}

impl Pattern {
    /// Whether some number matches both patterns (two directions that bill
    /// differently must not share a number: the dialplan and the CDR would
    /// each pick one by their own order).
    pub fn overlaps(&self, other: &Pattern) -> bool {
        overlap(&self.elements, &other.elements)
    }
}

fn overlap(a: &[Element], b: &[Element]) -> bool {
    use Element::{OneOrMore, ZeroOrMore};
    match (a.first(), b.first()) {
        (None, None) => true,
        // `!` takes any rest, and the other side always matches some rest.
        (Some(ZeroOrMore), _) | (_, Some(ZeroOrMore)) => true,
        // `.` takes one or more: the other side's rest must be non-empty.
        (Some(OneOrMore), other) | (other, Some(OneOrMore)) => other.is_some(),
        (None, Some(_)) | (Some(_), None) => false,
        (Some(x), Some(y)) => {
            ranges(x)
                .iter()
                .any(|&(lo, hi)| ranges(y).iter().any(|&(lo2, hi2)| lo.max(lo2) <= hi.min(hi2)))
                && overlap(&a[1..], &b[1..])
        }
    }
}

fn ranges(element: &Element) -> Vec<(char, char)> {
    match element {
        Element::Char(c) => vec![(*c, *c)],
        Element::Set(r) => r.clone(),
        Element::OneOrMore | Element::ZeroOrMore => Vec::new(),
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_literal(text: &str) -> Result<Vec<Element>, PatternError> {
    // `870XXXXXXXX` without `_` is a literal that nothing dials: almost
    // surely a forgotten `_`, which would silently make every call free.
    if text.chars().any(|c| "XZNxzn[].!".contains(c)) {
        return Err(PatternError::LiteralWithPatternChars(text.to_string()));
    }
    let mut elements = Vec::new();
    for c in text.chars() {
        match c {
            '-' => {}
            c if plain_char(c) => elements.push(Element::Char(c)),
            c => return Err(PatternError::BadChar(text.to_string(), c, LITERAL_ALLOWS)),
        }
    }
    Ok(elements)
}

fn parse_pattern(text: &str, body: &str) -> Result<Vec<Element>, PatternError> {
    let mut elements = Vec::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if matches!(elements.last(), Some(Element::OneOrMore | Element::ZeroOrMore)) {
            return Err(PatternError::AfterWildcard(text.to_string()));
        }
        match c {
            'X' | 'x' => elements.push(Element::Set(vec![('0', '9')])),
            'Z' | 'z' => elements.push(Element::Set(vec![('1', '9')])),
            'N' | 'n' => elements.push(Element::Set(vec![('2', '9')])),
            '.' => elements.push(Element::OneOrMore),
            '!' => elements.push(Element::ZeroOrMore),
            '-' => {}
            '[' => {
                let set = parse_set(text, &mut chars)?;
                if !set.is_empty() {
                    elements.push(Element::Set(set));
                }
            }
            ']' => return Err(PatternError::StrayClose(text.to_string())),
            c if plain_char(c) => elements.push(Element::Char(c)),
            c => return Err(PatternError::BadChar(text.to_string(), c, PATTERN_ALLOWS)),
        }
    }
    Ok(elements)
}

/// Reads a set after its `[` up to and including the `]`.
fn parse_set(text: &str, chars: &mut std::str::Chars<'_>) -> Result<Vec<(char, char)>, PatternError> {
    let mut members: Vec<char> = Vec::new();
    let mut ranges = Vec::new();
    let mut pending_range = false;
    loop {
        match chars.next() {
            None => return Err(PatternError::Unclosed(text.to_string())),
            Some(']') => break,
            Some('-') => {
                if members.is_empty() || pending_range {
                    return Err(PatternError::BadRange(text.to_string()));
                }
                pending_range = true;
            }
            Some(c) if plain_char(c) => {
                if pending_range {
                    let low = members.pop().ok_or_else(|| PatternError::BadRange(text.into()))?;
                    if low > c {
                        return Err(PatternError::BadRange(text.to_string()));
                    }
                    ranges.push((low, c));
                    pending_range = false;
                } else {
                    members.push(c);
                }
            }
            Some(c) => return Err(PatternError::BadChar(text.to_string(), c, SET_ALLOWS)),
        }
    }
    if pending_range {
        return Err(PatternError::BadRange(text.to_string()));
    }
    ranges.extend(members.into_iter().map(|c| (c, c)));
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, number: &str, want: bool) {
        let p = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        assert_eq!(p.matches(number), want, "{pattern} vs {number:?}");
    }

    #[test]
    fn matches_like_asterisk() {
        let table = [
            // The article's Kazakhstan mobile masks.
            ("_870[5780-2]XXXXXXX", "87051234567", true),
            ("_870[5780-2]XXXXXXX", "87071234567", true),
            ("_870[5780-2]XXXXXXX", "87001234567", true),
            ("_870[5780-2]XXXXXXX", "87021234567", true),
            ("_870[5780-2]XXXXXXX", "87031234567", false),
            ("_870[5780-2]XXXXXXX", "87061234567", false),
            ("_870[5780-2]XXXXXXX", "8705123456", false),
            ("_870[5780-2]XXXXXXX", "870512345678", false),
            ("_877[15-8]XXXXXXX", "87711234567", true),
            ("_877[15-8]XXXXXXX", "87761234567", true),
            ("_877[15-8]XXXXXXX", "87741234567", false),
            ("_8747XXXXXXX", "87471234567", true),
            ("_8747XXXXXXX", "87481234567", false),
            // Dashes are ignored in the number and outside brackets in the pattern.
            ("_870[5780-2]XXXXXXX", "870-1123-4567", true),
            ("_870-[5780-2]XXX-XXXX", "87011234567", true),
            // X Z N and their lower-case forms.
            ("_Z", "0", false),
            ("_Z", "1", true),
            ("_N", "1", false),
            ("_N", "2", true),
            ("_n", "9", true),
            ("_x", "5", true),
            ("_X", "a", false),
            // Wildcards.
            ("_9.", "9", false),
            ("_9.", "91", true),
            ("_9.", "9123456789", true),
            ("_9!", "9", true),
            ("_9!", "912", true),
            ("_9!", "8", false),
            ("_!", "", true),
            // Literal letters are case-sensitive; + * # are ordinary.
            ("_+7XXX", "+7123", true),
            ("_*72X", "*725", true),
            ("_#1", "#1", true),
            ("_aX", "a1", true),
            ("_aX", "A1", false),
            // An empty set is ignored.
            ("_1[]2", "12", true),
            // Literal numbers, with dashes ignored.
            ("87011234567", "87011234567", true),
            ("8701-123-4567", "87011234567", true),
            ("87011234567", "8701123456", false),
            ("87011234567", "870112345678", false),
            // Garbage never matches a digit pattern.
            ("_X.", "", false),
            ("_XXX", "1\u{0}3", false),
        ];
        for (pattern, number, want) in table {
            check(pattern, number, want);
        }
    }

    #[test]
    fn refuses_malformed_patterns() {
        let bad = [
            ("", PatternError::Empty),
            ("_", PatternError::Empty),
            ("-", PatternError::Empty),
            ("_870[57", PatternError::Unclosed("_870[57".into())),
            ("_87]0", PatternError::StrayClose("_87]0".into())),
            ("_8[9-0]", PatternError::BadRange("_8[9-0]".into())),
            ("_8[-1]", PatternError::BadRange("_8[-1]".into())),
            ("_8[1-]", PatternError::BadRange("_8[1-]".into())),
            ("_8.X", PatternError::AfterWildcard("_8.X".into())),
            ("_8!.", PatternError::AfterWildcard("_8!.".into())),
            ("_8X,1", PatternError::BadChar("_8X,1".into(), ',', PATTERN_ALLOWS)),
            ("_8X;c", PatternError::BadChar("_8X;c".into(), ';', PATTERN_ALLOWS)),
            (
                "_8X/2055",
                PatternError::BadChar("_8X/2055".into(), '/', PATTERN_ALLOWS),
            ),
            ("_8${X}", PatternError::BadChar("_8${X}".into(), '$', PATTERN_ALLOWS)),
            ("87 01", PatternError::BadChar("87 01".into(), ' ', LITERAL_ALLOWS)),
            ("870\n1", PatternError::BadChar("870\n1".into(), '\n', LITERAL_ALLOWS)),
            ("_8[1;]", PatternError::BadChar("_8[1;]".into(), ';', SET_ALLOWS)),
            ("870.", PatternError::LiteralWithPatternChars("870.".into())),
            (
                "870XXXXXXXX",
                PatternError::LiteralWithPatternChars("870XXXXXXXX".into()),
            ),
            ("8747[0-9]", PatternError::LiteralWithPatternChars("8747[0-9]".into())),
            (
                "8701234567!",
                PatternError::LiteralWithPatternChars("8701234567!".into()),
            ),
        ];
        for (text, want) in bad {
            let got = Pattern::parse(text);
            // The message never lists the refused character among the allowed ones.
            if let Err(PatternError::BadChar(_, c, allowed)) = &got {
                assert!(
                    !allowed.split_whitespace().any(|w| w == c.to_string()),
                    "{text:?}: {allowed}"
                );
            }
            assert_eq!(got, Err(want), "{text:?}");
        }
        assert!(matches!(
            Pattern::parse(&format!("_{}", "X".repeat(80))),
            Err(PatternError::TooLong(_))
        ));
    }

    #[test]
    fn literal_prefixes() {
        for (pattern, prefix) in [
            ("_870[5780-2]XXXXXXX", "870"),
            ("_8747XXXXXXX", "8747"),
            ("_87-47X", "8747"),
            ("_X.", ""),
            ("_1[]2X", "12"),
            ("8701-123", "8701123"),
        ] {
            assert_eq!(Pattern::parse(pattern).unwrap().literal_prefix(), prefix, "{pattern}");
        }
    }

    #[test]
    fn keeps_the_text_as_written() {
        let p = Pattern::parse("_870[5780-2]XXXXXXX").unwrap();
        assert_eq!(p.as_str(), "_870[5780-2]XXXXXXX");
        assert_eq!(p.to_string(), "_870[5780-2]XXXXXXX");
    }

    #[test]
    fn overlap_means_some_number_matches_both() {
        let p = |t: &str| Pattern::parse(t).unwrap();
        let yes = [
            ("_870[5780-2]XXXXXXX", "_8701XXXXXXX"),
            ("_8X.", "_870XXXXXXXX"),
            ("_X!", "2055"),
            ("_870.", "_87!"),
            ("_87.", "_8701"),
            ("87011234567", "_870XXXXXXXX"),
        ];
        for (a, b) in yes {
            assert!(p(a).overlaps(&p(b)) && p(b).overlaps(&p(a)), "{a} {b}");
        }
        let no = [
            ("_870[5780-2]XXXXXXX", "_8703XXXXXXX"),
            ("_870XXXXXXX", "_870XXXXXXXX"),
            ("_00X.", "_8X."),
            ("_870.", "870"),
            ("_NXXXXXX", "_1XXXXXX"),
        ];
        for (a, b) in no {
            assert!(!p(a).overlaps(&p(b)) && !p(b).overlaps(&p(a)), "{a} {b}");
        }
    }

    proptest::proptest! {
        #[test]
        fn overlap_agrees_with_matching(number in "[0-9]{1,6}") {
            let patterns = ["_1X.", "_12!", "_1[2-4]X", "_XX", "_N.", "123", "_1ZZ"].map(|t| Pattern::parse(t).unwrap());
            for a in &patterns {
                for b in &patterns {
                    if a.matches(&number) && b.matches(&number) {
                        proptest::prop_assert!(a.overlaps(b), "{} {} {}", a, b, number);
                    }
                }
            }
        }
    }
}
