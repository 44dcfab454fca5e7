//! Notice texts: templates with `{name}`-style placeholders, checked when the
//! config is read (an unknown placeholder is a config error), filled when a
//! notice is sent. `{{` and `}}` stand for literal braces.

use std::collections::BTreeMap;

pub const PLACEHOLDERS: [&str; 8] = [
    "name",
    "extension",
    "percent",
    "used",
    "allowance",
    "remaining",
    "day",
    "month",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Placeholder(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown placeholder {{{0}}}; use {{name}} {{extension}} {{percent}} {{used}} {{allowance}} {{remaining}} {{day}}"
    )]
    Unknown(String),
    #[error("unclosed '{{'; write {{{{ for a literal brace")]
    Unclosed,
    #[error("stray '}}'; write }}}} for a literal brace")]
    StrayClose,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(TemplateError::StrayClose),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(TemplateError::Unclosed),
                        }
                    }
                    let known = PLACEHOLDERS
                        .iter()
                        .find(|p| **p == name)
                        .ok_or(TemplateError::Unknown(name))?;
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Placeholder(known));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template { pieces })
    }

    /// Fills the placeholders; every placeholder has a value by construction.
    pub fn fill(&self, values: &BTreeMap<&'static str, String>) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Placeholder(name) => values.get(name).map_or("", String::as_str),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_and_escapes() {
        let t = Template::parse("Hi {name}: {percent}% of {allowance} {{not}} }}").unwrap();
        let values: BTreeMap<&'static str, String> = [("name", "Әсел"), ("percent", "90"), ("allowance", "1h 00m 00s")]
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        assert_eq!(t.fill(&values), "Hi Әсел: 90% of 1h 00m 00s {not} }");
    }

    #[test]
    fn refuses_unknown_and_unbalanced_placeholders() {
        assert_eq!(Template::parse("{nmae}"), Err(TemplateError::Unknown("nmae".into())));
        assert_eq!(Template::parse("{name"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("name}"), Err(TemplateError::StrayClose));
        assert!(Template::parse("{}").is_err());
    }
}
