//! Durations as admins type them (`1800`, `30m`, `1h30m`, `45s`) and as people
//! read them (`1h 05m 12s`).

/// Upper bound for any duration typed by an admin: one year. Keeps sums far
/// from overflow and catches typos such as an extra zero run wild.
pub const MAX_SECONDS: u64 = 366 * 86_400;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("duration {0:?} is not valid; write seconds (1800) or units h/m/s in that order (30m, 1h30m, 90s)")]
    Invalid(String),
    #[error("duration {0:?} is longer than one year")]
    TooLong(String),
}

/// A duration in the config: whole seconds (`1800`) or what the command line
/// accepts (`"30m"`, `"2h"`). Its errors never repeat the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl<'de> serde::Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("seconds (1800) or a duration such as \"30m\" or \"1h30m\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a duration cannot be negative; write seconds or e.g. \"30m\""))
                    .and_then(|s| self.visit_u64(s))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                check_max(v, "")
                    .map(Seconds)
                    .map_err(|_| E::custom("a duration must be at most one year"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Seconds, E> {
                parse(v).map(Seconds).map_err(|e| {
                    E::custom(match e {
                        DurationError::TooLong(_) => "a duration must be at most one year",
                        DurationError::Invalid(_) => {
                            "not a duration; write seconds (1800) or units h/m/s in that order (\"30m\", \"1h30m\")"
                        }
                    })
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Parses `1800`, `30m`, `1h30m`, `2h`, `1h5m30s`. Units appear at most once,
/// largest first.
pub fn parse(text: &str) -> Result<u64, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid());
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: u64 = trimmed.parse().map_err(|_| DurationError::TooLong(text.into()))?;
        return check_max(seconds, text);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut last_rank = 0; // h=3, m=2, s=1: each unit must be smaller than the one before
    for c in trimmed.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let (rank, factor) = match c.to_ascii_lowercase() {
            'h' => (3, 3600),
            'm' => (2, 60),
            's' => (1, 1),
            _ => return Err(invalid()),
        };
        if digits.is_empty() || (last_rank != 0 && rank >= last_rank) {
            return Err(invalid());
        }
        let value: u64 = digits.parse().map_err(|_| DurationError::TooLong(text.into()))?;
        total = value
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError::TooLong(text.into()))?;
        digits.clear();
        last_rank = rank;
    }
    if !digits.is_empty() {
        return Err(invalid());
    }
    check_max(total, text)
}

fn check_max(seconds: u64, text: &str) -> Result<u64, DurationError> {
    if seconds > MAX_SECONDS {
        Err(DurationError::TooLong(text.to_string()))
    } else {
        Ok(seconds)
    }
}

/// `3912` → `1h 05m 12s`, `312` → `5m 12s`, `7` → `7s`.
pub fn format(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        for (text, want) in [
            ("0", 0),
            ("1800", 1800),
            ("30m", 1800),
            ("1h30m", 5400),
            ("1h", 3600),
            ("45s", 45),
            ("1h5m30s", 3930),
            ("2H", 7200),
            (" 90s ", 90),
            ("90m", 5400),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_malformed_input() {
        for text in [
            "", "h", "1x", "30m1h", "1h1h", "-5", "1.5h", "1h 30m", "m30", "1hm", "s",
        ] {
            assert!(matches!(parse(text), Err(DurationError::Invalid(_))), "{text:?}");
        }
    }

    #[test]
    fn refuses_overlong_and_overflowing_values() {
        for text in ["31708801", "99999999999999999999999", "9000h", "99999999999999999h"] {
            assert!(matches!(parse(text), Err(DurationError::TooLong(_))), "{text}");
        }
        assert_eq!(parse("8784h"), Ok(MAX_SECONDS));
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format(0), "0s");
        assert_eq!(format(7), "7s");
        assert_eq!(format(312), "5m 12s");
        assert_eq!(format(3912), "1h 05m 12s");
        assert_eq!(format(36000), "10h 00m 00s");
    }
}
