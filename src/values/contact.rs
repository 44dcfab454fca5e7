//! Names and email addresses of users. They never reach the dialplan, but
//! they reach mail headers and terminals: no control characters, no bidi
//! or zero-width characters (a spoofed name), bounded
//! length, and addresses that are addresses.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("name is empty; give the person's name, e.g. --name \"Vasya Pupkin\"")]
    EmptyName,
    #[error("name is longer than 100 characters")]
    LongName,
    #[error("name contains a control character ({0:?}); use printable text only")]
    ControlInName(char),
    #[error(
        "name contains an invisible character that reorders or hides text (U+{:04X}: a bidi control or zero-width \
         character), so it could pass for another name; use visible text only",
        *.0 as u32
    )]
    InvisibleInName(char),
    #[error("name contains \"=?\", which mail programs decode as another text (RFC 2047); write the name plainly")]
    EncodedWordInName,
    #[error("email {0:?} is not an address like user@example.com")]
    BadEmail(String),
    #[error(
        "email {0:?} has non-ASCII letters before the @, which most mail servers cannot deliver (no SMTPUTF8); use an ASCII address"
    )]
    NonAsciiLocalPart(String),
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
    // U+202E makes "2055 gpj.exe" read backwards; U+200B makes two names look alike.
    if let Some(c) = name.chars().find(|&c| crate::values::text::is_invisible_format(c)) {
        return Err(ContactError::InvisibleInName(c));
    }
    // `=?utf-8?q?CEO_<ceo@corp.example>?=` would reach headers raw and decode as someone else.
    if name.contains("=?") {
        return Err(ContactError::EncodedWordInName);
    }
    Ok(())
}

/// An empty email is allowed: the user is limited without notices.
pub fn validate_email(email: &str) -> Result<(), ContactError> {
    normalize_email(email).map(drop)
}

/// The form an address is stored and sent in: the local part ASCII (RFC 5321
/// without SMTPUTF8), an internationalized domain in punycode, so that a
/// look-alike letter (`exаmple.com` with a Cyrillic `а`) shows as `xn--`.
pub fn normalize_email(email: &str) -> Result<String, ContactError> {
    if email.is_empty() {
        return Ok(String::new());
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
    if !local.is_ascii() {
        return Err(ContactError::NonAsciiLocalPart(email.chars().take(80).collect()));
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || !local.chars().all(|c| atext(c) || c == '.')
    {
        return Err(bad());
    }
    let domain = if domain.is_ascii() {
        domain.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii_strict(domain).map_err(|_| bad())?
    };
    Ok(format!("{local}@{domain}"))
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
        assert_eq!(
            validate_name("=?utf-8?q?CEO_<ceo@corp.example>?="),
            Err(ContactError::EncodedWordInName)
        );
    }

    #[test]
    fn emails_must_be_addresses() {
        for ok in ["", "vasya@example.com", "a.b+c@mail.example.kz", "vasya@пример.рф"] {
            assert_eq!(validate_email(ok), Ok(()), "{ok}");
        }
        assert_eq!(normalize_email("Vasya@Example.COM").unwrap(), "Vasya@example.com");
        assert_eq!(
            normalize_email("vasya@пример.рф").unwrap(),
            "vasya@xn--e1afmkfd.xn--p1ai"
        );
        // A homograph: the Cyrillic а shows up as punycode.
        let homograph = normalize_email("bob@ex\u{0430}mple.com").unwrap();
        assert!(
            homograph.starts_with("bob@xn--") && homograph.ends_with(".com"),
            "{homograph}"
        );
        assert!(matches!(
            normalize_email("тест@пример.рф"),
            Err(ContactError::NonAsciiLocalPart(_))
        ));
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
            ".a@example.com",
            "a..b@example.com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad:?}");
        }
    }
}
