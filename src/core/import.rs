//! `user import`: what importing users from FreePBX's directory or from a
//! CSV file would change, decided by pure functions over plain data. The
//! shell reads the sources and applies the plan in one transaction.

use chrono::NaiveDate;

use crate::core::pattern::Pattern;
use crate::core::user::User;
use crate::values::contact::{normalize_email, validate_name};
use crate::values::duration::format as human;
use crate::values::extension::Extension;

/// The most one user may get per day (as `user add` allows).
pub const MAX_DAILY_LIMIT_S: u64 = 86_400;

/// One user as a source describes them, before any checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    /// The CSV line it came from (for messages); `None` from FreePBX.
    pub line: Option<usize>,
    pub extension: String,
    pub name: String,
    pub email: String,
    /// CSV only: the row's limit (empty cell: `None`).
    pub daily_limit_s: Option<u64>,
    /// CSV only: the row's cc (empty cell: `None`, leaves it as it is).
    pub cc: Option<String>,
}

/// Where the candidates came from decides what the import may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// FreePBX owns names and emails; limits, cc and the disabled state are
    /// callquota's and never overwritten. Unusable rows are skipped.
    Freepbx,
    /// The admin's own file: every cell given is applied; any bad row stops
    /// the whole import.
    Csv,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportPlan {
    pub add: Vec<User>,
    /// `(old, new)` of users whose fields change.
    pub change: Vec<(User, User)>,
    pub unchanged: usize,
    /// `(extension as the source has it, why)`: FreePBX rows left out.
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("{0} new extensions ({1}) need a limit: give --daily-limit (e.g. 30m){2}")]
    LimitNeeded(usize, String, &'static str),
    #[error("{0}")]
    BadRows(String),
}

/// The name FreePBX shows for a user: User Management's display name, else
/// its first and last name, else the extension's own name.
pub fn freepbx_name(displayname: &str, fname: &str, lname: &str, extension_name: &str) -> String {
    let full = format!("{} {}", fname.trim(), lname.trim()).trim().to_string();
    [displayname.trim(), full.as_str(), extension_name.trim()]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap_or_default()
        .to_string()
}

/// Decides the import. `existing` are callquota's users; `default_limit`
/// is `--daily-limit`; `only` narrows the extensions.
pub fn plan(
    existing: &[User],
    candidates: Vec<Candidate>,
    source: Source,
    default_limit: Option<u64>,
    only: Option<&Pattern>,
    today: NaiveDate,
) -> Result<ImportPlan, ImportError> {
    let mut plan = ImportPlan::default();
    let by_extension: std::collections::HashMap<&Extension, &User> =
        existing.iter().map(|u| (&u.extension, u)).collect();
    let mut bad_rows = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut need_limit = Vec::new();
    for c in candidates {
        let at = c.line.map_or(String::new(), |l| format!("line {l}: "));
        let mut refuse = |why: String| match source {
            Source::Csv => bad_rows.push(format!("{at}{why}")),
            Source::Freepbx => plan.skipped.push((c.extension.clone(), why)),
        };
        let Ok(extension) = Extension::parse(c.extension.trim()) else {
            refuse(format!(
                "extension {:?} is not one callquota accepts (1-32 letters or digits)",
                c.extension
            ));
            continue;
        };
        if only.is_some_and(|p| !p.matches(extension.as_str())) {
            continue;
        }
        if !seen.insert(extension.clone()) {
            // FreePBX: a second User Management row for one extension (ordered by id) adds nothing.
            if source == Source::Csv {
                refuse(format!("extension {extension} appears twice"));
            }
            continue;
        }
        let name = c.name.trim().to_string();
        let name = if name.is_empty() && source == Source::Freepbx {
            extension.to_string()
        } else {
            name
        };
        if let Err(e) = validate_name(&name) {
            refuse(format!("{extension}: {e}"));
            continue;
        }
        let email = match normalize_email(c.email.trim()) {
            Ok(email) => email,
            Err(e) => {
                refuse(format!("{extension}: {e}"));
                continue;
            }
        };
        let cc = match c.cc.as_deref().map(|cc| normalize_email(cc.trim())).transpose() {
            Ok(cc) => cc,
            Err(e) => {
                refuse(format!("{extension}: cc: {e}"));
                continue;
            }
        };
        if let Some(limit) = c.daily_limit_s.filter(|l| *l > MAX_DAILY_LIMIT_S) {
            refuse(format!(
                "{extension}: daily limit {} is more than a day (24h)",
                human(limit)
            ));
            continue;
        }
        match by_extension.get(&extension).copied() {
            Some(old) => {
                let mut new = old.clone();
                new.name = name;
                // An empty email in the source never erases one callquota has.
                if !email.is_empty() {
                    new.email = email;
                }
                if source == Source::Csv {
                    if let Some(limit) = c.daily_limit_s {
                        new.daily_limit_s = limit;
                    }
                    if let Some(cc) = cc {
                        new.cc = cc;
                    }
                }
                if &new == old {
                    plan.unchanged += 1;
                } else {
                    plan.change.push((old.clone(), new));
                }
            }
            None => {
                let Some(daily_limit_s) = c.daily_limit_s.or(default_limit) else {
                    need_limit.push(extension.to_string());
                    continue;
                };
                plan.add.push(User {
                    extension,
                    name,
                    email,
                    cc: cc.unwrap_or_default(),
                    daily_limit_s,
                    monthly_limit_s: None,
                    direction_limits: Default::default(),
                    direction_since: Default::default(),
                    active: true,
                    since: today,
                });
            }
        }
    }
    if !bad_rows.is_empty() {
        let count = bad_rows.len();
        let mut message = format!(
            "{count} bad rows, nothing imported: {}",
            bad_rows[..count.min(5)].join("; ")
        );
        if count > 5 {
            message.push_str(&format!("; and {} more", count - 5));
        }
        return Err(ImportError::BadRows(message));
    }
    if !need_limit.is_empty() {
        let mut names = need_limit[..need_limit.len().min(5)].join(", ");
        if need_limit.len() > 5 {
            names.push_str(", ...");
        }
        let hint = if source == Source::Csv {
            " or a daily_limit cell"
        } else {
            ""
        };
        return Err(ImportError::LimitNeeded(need_limit.len(), names, hint));
    }
    Ok(plan)
}

/// The records of a CSV text (RFC 4180: commas, `"quoted"` fields with `""`
/// for a quote, line breaks inside quotes), each with the line it starts on.
pub fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut start = 1;
    let mut quoted = false;
    let mut chars = text.strip_prefix('\u{feff}').unwrap_or(text).chars().peekable();
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
            }
            '"' => {
                return Err(format!(
                    "line {line}: a quote inside an unquoted field; quote the whole field"
                ));
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                if !(record.len() == 1 && record[0].is_empty()) {
                    records.push((start, std::mem::take(&mut record)));
                }
                record.clear();
                line += 1;
                start = line;
                at_field_start = true;
            }
            _ => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if quoted {
        return Err(format!("line {start}: a quoted field is not closed"));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push((start, record));
    }
    Ok(records)
}

/// The header `user import --csv` expects (in this order; `cc` may be left out).
pub const CSV_HEADER: [&str; 5] = ["extension", "name", "email", "daily_limit", "cc"];

/// CSV text → candidates; any malformed row (wrong cell count, a bad
/// duration) is an error naming its line.
pub fn csv_candidates(text: &str) -> Result<Vec<Candidate>, ImportError> {
    let records = parse_csv(text).map_err(ImportError::BadRows)?;
    let Some(((_, header), rows)) = records.split_first() else {
        return Err(ImportError::BadRows(format!(
            "the file is empty; its first line must be the header {}",
            CSV_HEADER.join(",")
        )));
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
    if header != CSV_HEADER[..4] && header != CSV_HEADER {
        return Err(ImportError::BadRows(format!(
            "line 1: the header must be {} (cc may be left out)",
            CSV_HEADER.join(",")
        )));
    }
    let mut bad = Vec::new();
    let mut candidates = Vec::new();
    for (line, cells) in rows {
        if cells.len() != header.len() {
            bad.push(format!(
                "line {line}: {} cells, the header has {}",
                cells.len(),
                header.len()
            ));
            continue;
        }
        let limit = cells[3].trim();
        let daily_limit_s = if limit.is_empty() {
            None
        } else {
            match crate::values::duration::parse(limit) {
                Ok(s) => Some(s),
                Err(e) => {
                    bad.push(format!("line {line}: daily_limit: {e}"));
                    continue;
                }
            }
        };
        candidates.push(Candidate {
            line: Some(*line),
            extension: cells[0].clone(),
            name: cells[1].clone(),
            email: cells[2].clone(),
            daily_limit_s,
            cc: cells.get(4).filter(|c| !c.trim().is_empty()).cloned(),
        });
    }
    if !bad.is_empty() {
        return Err(ImportError::BadRows(format!(
            "{} bad rows, nothing imported: {}",
            bad.len(),
            bad.join("; ")
        )));
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        "2026-11-26".parse().unwrap()
    }

    fn user(ext: &str, name: &str, email: &str, limit: u64) -> User {
        User {
            extension: Extension::parse(ext).unwrap(),
            name: name.into(),
            email: email.into(),
            cc: String::new(),
            daily_limit_s: limit,
            monthly_limit_s: None,
            direction_limits: Default::default(),
            direction_since: Default::default(),
            active: true,
            since: day(),
        }
    }

    fn from_freepbx(ext: &str, name: &str, email: &str) -> Candidate {
        Candidate {
            extension: ext.into(),
            name: name.into(),
            email: email.into(),
            ..Candidate::default()
        }
    }

    #[test]
    fn freepbx_refreshes_names_and_emails_and_never_limits_cc_or_state() {
        let mut kept = user("2055", "Old Name", "old@example.com", 600);
        kept.cc = "boss@example.com".into();
        kept.active = false;
        let existing = vec![kept.clone(), user("2066", "Same", "same@example.com", 600)];
        let plan = plan(
            &existing,
            vec![
                from_freepbx("2055", "New Name", "new@example.com"),
                from_freepbx("2066", "Same", ""),
                from_freepbx("2077", "Әсел Нұрланқызы", ""),
                from_freepbx("20*7", "Star", ""),
                from_freepbx("2088", "=?utf-8?q?x?=", ""),
                from_freepbx("2099", "", "not an address"),
                from_freepbx("2077", "Second userman row", ""),
            ],
            Source::Freepbx,
            Some(1800),
            None,
            day(),
        )
        .unwrap();
        assert_eq!(plan.change.len(), 1);
        let (old, new) = &plan.change[0];
        assert_eq!(old, &kept);
        assert_eq!((new.name.as_str(), new.email.as_str()), ("New Name", "new@example.com"));
        assert_eq!(
            (new.cc.as_str(), new.daily_limit_s, new.active),
            ("boss@example.com", 600, false)
        );
        assert_eq!(plan.unchanged, 1, "an empty FreePBX email keeps ours");
        assert_eq!(plan.add.len(), 1);
        assert_eq!(
            (plan.add[0].name.as_str(), plan.add[0].daily_limit_s),
            ("Әсел Нұрланқызы", 1800)
        );
        let skipped: Vec<&str> = plan.skipped.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(skipped, ["20*7", "2088", "2099"]);
    }

    #[test]
    fn new_extensions_need_a_limit_and_only_narrows() {
        let only = Pattern::parse("_20XX").unwrap();
        let candidates = vec![from_freepbx("2055", "A", ""), from_freepbx("3001", "B", "")];
        let err = plan(&[], candidates.clone(), Source::Freepbx, None, None, day()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "2 new extensions (2055, 3001) need a limit: give --daily-limit (e.g. 30m)"
        );
        let narrowed = plan(&[], candidates, Source::Freepbx, Some(60), Some(&only), day()).unwrap();
        assert_eq!(narrowed.add.len(), 1);
        assert_eq!(freepbx_name("", " Ivan ", "Petrov", "ext"), "Ivan Petrov");
        assert_eq!(freepbx_name("Display", "Ivan", "", "ext"), "Display");
        assert_eq!(freepbx_name("", "", "", "From users"), "From users");
    }

    #[test]
    fn csv_parses_quotes_and_refuses_any_bad_row() {
        let text = "extension,name,email,daily_limit,cc\r\n\
                    2055,\"Pupkin, Vasya \"\"the boss\"\"\",vasya@example.com,30m,\r\n\
                    2066,\"Two\nlines\",,1h,boss@example.com\n";
        let c = csv_candidates(text).unwrap();
        assert_eq!(c[0].name, "Pupkin, Vasya \"the boss\"");
        assert_eq!(
            (c[0].line, c[0].daily_limit_s, c[0].cc.as_deref()),
            (Some(2), Some(1800), None)
        );
        assert_eq!((c[1].line, c[1].cc.as_deref()), (Some(3), Some("boss@example.com")));
        let err = plan(&[], c, Source::Csv, None, None, day()).unwrap_err();
        assert!(
            err.to_string().starts_with("1 bad rows, nothing imported: line 3: "),
            "{err}"
        );

        let bad = "extension,name,email,daily_limit\n2055,A,a@example.com,soon\n2066,B\n";
        assert_eq!(
            csv_candidates(bad).unwrap_err().to_string(),
            "2 bad rows, nothing imported: line 2: daily_limit: invalid duration \"soon\"; line 3: 2 cells, the header has 4"
                .replace("invalid duration \"soon\"", &crate::values::duration::parse("soon").unwrap_err().to_string())
        );
        assert!(
            csv_candidates("ext,name\n")
                .unwrap_err()
                .to_string()
                .starts_with("line 1: the header must be")
        );
        assert!(parse_csv("a,\"open\n").is_err());
        let dup = "extension,name,email,daily_limit\n2055,A,,1m\n2055,B,,1m\n";
        let err = plan(&[], csv_candidates(dup).unwrap(), Source::Csv, None, None, day()).unwrap_err();
        assert!(
            err.to_string().contains("line 3: extension 2055 appears twice"),
            "{err}"
        );
    }
}
