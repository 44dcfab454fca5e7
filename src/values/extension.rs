//! The internal extension number that identifies a user (e.g. `2055`).
//!
//! Extensions reach the generated dialplan, so the only way to build one is
//! through [`Extension::parse`], which admits 1-32 ASCII letters and digits.

use std::fmt;

pub const MAX_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Extension(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error("extension is empty; use 1-32 letters or digits, e.g. 2055")]
    Empty,
    #[error("extension {0:?} is longer than 32 characters; use 1-32 letters or digits")]
    TooLong(String),
    #[error("extension {0:?} contains {1:?}; use only letters A-Z, a-z and digits 0-9")]
    BadChar(String, char),
}

impl Extension {
    pub fn parse(text: &str) -> Result<Self, ExtensionError> {
        if text.is_empty() {
            return Err(ExtensionError::Empty);
        }
        if let Some(bad) = text.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(ExtensionError::BadChar(text.to_string(), bad));
        }
        if text.len() > MAX_LEN {
            return Err(ExtensionError::TooLong(text.to_string()));
        }
        Ok(Extension(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Extension {
    type Err = ExtensionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Extension::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_and_digits() {
        for ok in ["2055", "1", "abcXYZ09", &"9".repeat(32)] {
            assert_eq!(Extension::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_anything_that_could_reach_the_dialplan() {
        for bad in [
            "", "20;55", "[x]", "20)", "_X.", "${EXTEN}", "20 55", "20\n55", "2055-", "é1", "20,1", "a/b",
        ] {
            assert!(Extension::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            Extension::parse(&"1".repeat(33)),
            Err(ExtensionError::TooLong(_))
        ));
    }

    #[test]
    fn error_names_the_offending_character() {
        let err = Extension::parse("20;55").unwrap_err().to_string();
        assert!(err.contains("';'"), "{err}");
    }
}
