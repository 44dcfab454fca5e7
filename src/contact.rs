//! Names and email addresses of users. They never reach the dialplan, but
//! they reach mail headers and terminals: no control characters, bounded
//! length, and addresses that are addresses.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("name is empty; give the person's name, e.g. --name \"Vasya Pupkin\"")]
    EmptyName,
    #[error("name is longer than 100 characters")]
    LongName,
    #[error("name contains a control character ({0:?}); use printable text only")]
    ControlInName(char),
    #[error("email {0:?} is not an address like user@example.com")]
    BadEmail(String),
}

pub fn validate_name(name: &str) -> Result<(), ContactError> {
    if name.trim().is_empty() {
        return Err(ContactError::EmptyName);
    }
    if name.chars().count() > 100 {
        return Err(ContactError::LongName);
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(ContactError::ControlInName(c));
    }
    Ok(())
}

/// An empty email is allowed: the user is limited without notices.
pub fn validate_email(email: &str) -> Result<(), ContactError> {
    if email.is_empty() {
        return Ok(());
    }
    let bad = || ContactError::BadEmail(email.chars().take(80).collect());
    if email.len() > 254
        || email
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>,;\"()[]\\".contains(c))
    {
        return Err(bad());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty() && !label.starts_with('-') && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_may_be_any_printable_text() {
        for ok in [
            "Vasya Pupkin",
            "Иванов, Иван \"Ваня\"",
            "Әсел Нұрланқызы",
            "O'Brien; Jr.",
        ] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_name(" "), Err(ContactError::EmptyName));
        assert_eq!(validate_name("a\r\nBcc: x@y.z"), Err(ContactError::ControlInName('\r')));
        assert_eq!(validate_name(&"я".repeat(101)), Err(ContactError::LongName));
    }

    #[test]
    fn emails_must_be_addresses() {
        for ok in ["", "vasya@example.com", "a.b+c@mail.example.kz", "тест@пример.рф"] {
            assert_eq!(validate_email(ok), Ok(()), "{ok}");
        }
        for bad in [
            "vasya",
            "@example.com",
            "vasya@",
            "vasya@localhost",
            "a@b@example.com",
            "vasya@example.com\r\nBcc: x@y.z",
            "Vasya <vasya@example.com>",
            "a b@example.com",
            "a@exa_mple.com",
            "a@.example.com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad:?}");
        }
    }
}
