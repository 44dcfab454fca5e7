//! The MySQL/MariaDB CDR adapter: one read-only session, one `SELECT` over a
//! `calldate` range (so the index is used), streamed and summed in memory.

use anyhow::{Context, Result, anyhow};
use chrono::{NaiveDate, NaiveDateTime};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder, Row, Value};

use crate::config::Endpoint;

use crate::config::CdrSettings;
use crate::core::calendar::CdrClock;
use crate::core::usage::{CdrRow, Tally, UsageRule};

pub struct Cdr {
    conn: Conn,
    table: String,
    caller_column: &'static str,
    where_: String,
    /// The table has `linkedid` and `sequence` (older installs lack them:
    /// then a transferred call's rows after the transfer cannot be tied to
    /// it, and segments of one leg count as one).
    linkedid: bool,
}

/// MySQL's "unknown column" error.
const ER_BAD_FIELD_ERROR: u16 = 1054;

impl Cdr {
    /// Connects and makes the session read-only: any write is refused by the server.
    pub fn connect(settings: &CdrSettings) -> Result<Cdr> {
        let conn = read_only_session(&settings.connection, settings.timeout, "the CDR database", "[cdr]")?;
        Ok(Cdr {
            conn,
            table: quote_table(&settings.table),
            caller_column: settings.caller_column.column(),
            where_: settings.connection.describe(),
            linkedid: true,
        })
    }

    /// The columns [`decode`] reads, in its order.
    fn columns(&self) -> String {
        format!(
            "calldate, `{}`, dst, dstchannel, disposition, billsec, uniqueid, duration, channel, {}",
            self.caller_column,
            if self.linkedid {
                "linkedid, sequence"
            } else {
                "'' AS linkedid, 0 AS sequence"
            }
        )
    }

    /// Runs `query` (built from [`Cdr::columns`]) and hands each row to
    /// `each`; on a table without `linkedid` it says so once and asks again.
    fn each_row(&mut self, query: impl Fn(&Cdr) -> (String, Vec<Value>), mut each: impl FnMut(CdrRow)) -> Result<()> {
        loop {
            let (sql, params) = query(self);
            let failed = |e: &mysql::Error, what: &str| anyhow!("{what} on {} failed: {}", self.where_, one_line(e));
            let result = match self.conn.exec_iter(sql, mysql::Params::Positional(params)) {
                Ok(result) => result,
                Err(mysql::Error::MySqlError(e))
                    if e.code == ER_BAD_FIELD_ERROR
                        && self.linkedid
                        && (e.message.contains("linkedid") || e.message.contains("sequence")) =>
                {
                    self.linkedid = false;
                    continue;
                }
                Err(e) => return Err(failed(&e, "CDR query")),
            };
            for row in result {
                let row = row.map_err(|e| failed(&e, "reading CDR rows"))?;
                if let Some(row) = decode(row) {
                    each(row);
                }
            }
            return Ok(());
        }
    }

    /// Adds the rows of calls that started in `[from, until)` to `tally`
    /// (one tally for all of a run's ranges: a call's rows may straddle them).
    pub fn tally(
        &mut self,
        clock: &CdrClock,
        rule: &UsageRule<'_>,
        from: NaiveDateTime,
        until: NaiveDateTime,
        tally: &mut Tally,
    ) -> Result<()> {
        self.each_row(
            |cdr| {
                let mut params = vec![Value::from(format_datetime(from)), Value::from(format_datetime(until))];
                // Only rows that could matter travel to us: answered rows whose
                // number may be paid (a superset of the patterns' literal
                // prefixes, dashes removed as Asterisk ignores them; the
                // collation may fold case), and any row of a call in which a
                // trunk's channel took part (a carrier's rows after a transfer,
                // answered or ringing). The exact rules are `UsageRule::charge`
                // and `Tally`.
                let mut paid = "disposition = 'ANSWERED' AND billsec > 0".to_string();
                if let Some(prefixes) = rule.dst_prefixes() {
                    // A dst with anything but digits (a dial pause, a SIP
                    // URI) is judged by its digits in `is_paid`: it always
                    // travels (REGEXP, unlike REGEXP_REPLACE, is on every
                    // MySQL and MariaDB that FreePBX runs on).
                    let mut tests = vec!["REPLACE(dst, '-', '') LIKE ?"; prefixes.len()];
                    tests.push("dst NOT REGEXP '^[-0-9*#+]*$'");
                    let tests = tests.join(" OR ");
                    params.extend(prefixes.into_iter().map(|p| Value::from(format!("{p}%"))));
                    paid = format!("{paid} AND ({tests})");
                }
                let wanted = if cdr.linkedid {
                    let (carrier, trunks) = carrier_channel_test(rule.trunk_channels);
                    params.extend(trunks);
                    format!("(({paid}) OR {carrier})")
                } else {
                    format!("({paid})")
                };
                let sql = format!(
                    "SELECT {columns} FROM {table} WHERE calldate >= ? AND calldate < ? AND {wanted}",
                    columns = cdr.columns(),
                    table = cdr.table
                );
                (sql, params)
            },
            |row| tally.add(rule, &row, clock.day_of(row.calldate)),
        )
    }

    /// Every row that started in `[from, until)` whose caller column holds
    /// `caller` (server-side for `cnum` and `src`; a `channel` caller is
    /// matched by the caller, from all rows of the range), in `calldate` order.
    pub fn rows_of(
        &mut self,
        from: NaiveDateTime,
        until: NaiveDateTime,
        caller: Option<&str>,
        keep: impl Fn(&CdrRow) -> bool,
        at_most: usize,
    ) -> Result<Vec<CdrRow>> {
        let mut rows = Vec::new();
        self.each_row(
            |cdr| {
                let mut params = vec![Value::from(format_datetime(from)), Value::from(format_datetime(until))];
                // Matched on the server, the caller's rows can be limited there too.
                let (by_caller, limit) = match caller {
                    Some(c) => {
                        params.push(Value::from(c));
                        (format!(" AND `{}` = ?", cdr.caller_column), format!(" LIMIT {at_most}"))
                    }
                    None => (String::new(), String::new()),
                };
                let sql = format!(
                    "SELECT {columns} FROM {table} WHERE calldate >= ? AND calldate < ?{by_caller} ORDER BY \
                     calldate{limit}",
                    columns = cdr.columns(),
                    table = cdr.table
                );
                (sql, params)
            },
            // Never more than `at_most` rows in memory, however many the table holds.
            |row| {
                if rows.len() < at_most && keep(&row) {
                    rows.push(row);
                }
            },
        )?;
        Ok(rows)
    }

    /// The rows of the calls `linkedids` that started in `[from,
    /// until)` (a transferred call's rows of other channels); none on a
    /// table without `linkedid`.
    pub fn rows_of_calls(
        &mut self,
        from: NaiveDateTime,
        until: NaiveDateTime,
        linkedids: &[String],
    ) -> Result<Vec<CdrRow>> {
        let mut rows = Vec::new();
        for chunk in linkedids.chunks(500) {
            if !self.linkedid {
                break;
            }
            self.each_row(
                |cdr| {
                    let mut params = vec![Value::from(format_datetime(from)), Value::from(format_datetime(until))];
                    params.extend(chunk.iter().map(|id| Value::from(id.as_str())));
                    let sql = format!(
                        "SELECT {columns} FROM {table} WHERE calldate >= ? AND calldate < ? AND {filter}",
                        columns = cdr.columns(),
                        table = cdr.table,
                        // Asked of a table without linkedid, this fails and is asked again without it: nothing.
                        filter = if cdr.linkedid {
                            format!("linkedid IN ({})", vec!["?"; chunk.len()].join(", "))
                        } else {
                            "FALSE".to_string()
                        },
                    );
                    (sql, if cdr.linkedid { params } else { params[..2].to_vec() })
                },
                |row| rows.push(row),
            )?;
        }
        Ok(rows)
    }

    /// `(dst, lastdata)` of answered `Dial` rows that started in
    /// `[from, until)`, at most `limit` (for `check`'s comparison with the hook).
    pub fn dialled(&mut self, from: NaiveDateTime, until: NaiveDateTime, limit: u32) -> Result<Vec<(String, String)>> {
        let sql = format!(
            "SELECT dst, lastdata FROM {} WHERE calldate >= ? AND calldate < ? AND disposition = 'ANSWERED' \
             AND lastapp = 'Dial' LIMIT {limit}",
            self.table
        );
        let rows: Vec<Row> = self
            .conn
            .exec(sql, (format_datetime(from), format_datetime(until)))
            .map_err(|e| anyhow!("CDR query on {} failed: {}", self.where_, one_line(&e)))?;
        Ok(rows
            .into_iter()
            .map(|mut r| (text(r.take(0)), text(r.take(1))))
            .collect())
    }

    /// Checks the table has the columns we read (a `LIMIT 0` query).
    pub fn check_columns(&mut self) -> Result<()> {
        let sql = format!(
            "SELECT calldate, `{}`, dst, dstchannel, disposition, billsec, uniqueid, duration FROM {} LIMIT 0",
            self.caller_column, self.table
        );
        self.conn.query_drop(sql).map_err(|e| {
            anyhow!(
                "the CDR table {} on {} is not usable: {}",
                self.table,
                self.where_,
                one_line(&e)
            )
        })
    }

    /// Whether the table has `linkedid` and `sequence` (a `LIMIT 0` query).
    pub fn has_call_ids(&mut self) -> bool {
        let sql = format!("SELECT linkedid, sequence FROM {} LIMIT 0", self.table);
        self.conn.query_drop(sql).is_ok()
    }

    /// Privileges that would let this account change the CDR.
    pub fn write_privileges(&mut self) -> Result<Vec<String>> {
        let grants: Vec<String> = self.conn.query("SHOW GRANTS").context("SHOW GRANTS failed")?;
        Ok(grants
            .into_iter()
            .filter(|g| {
                let upper = g.to_ascii_uppercase();
                ["ALL PRIVILEGES", "INSERT", "UPDATE", "DELETE", "DROP", "ALTER"]
                    .iter()
                    .any(|p| upper.contains(p))
            })
            .collect())
    }
}

/// A MySQL session on `c` in which the server refuses any write. `what`
/// and `section` name the database and its config section in errors.
pub fn read_only_session(
    c: &crate::config::CdrConnection,
    timeout: std::time::Duration,
    what: &str,
    section: &str,
) -> Result<Conn> {
    let where_ = c.describe();
    let timeout = Some(timeout);
    let opts = OptsBuilder::new()
        .user(Some(c.user.clone()))
        .pass(c.password.clone())
        .db_name(Some(c.database.clone()))
        // A TCP address means TCP: do not silently switch to the local socket.
        .prefer_socket(false)
        .tcp_connect_timeout(timeout)
        .read_timeout(timeout)
        .write_timeout(timeout);
    let opts = match &c.endpoint {
        Endpoint::Tcp { host, port } => opts.ip_or_hostname(Some(host.clone())).tcp_port(*port),
        Endpoint::Socket(path) => opts.socket(Some(path.to_string_lossy().into_owned())),
    };
    let mut conn = Conn::new(opts).map_err(|e| {
        let advice = login_advice(&e, &c.endpoint, section)
            .unwrap_or_else(|| format!("check the {section} settings and that MySQL is running"));
        anyhow!("cannot connect to {what} {where_}: {}; {advice}", one_line(&e))
    })?;
    conn.query_drop("SET SESSION TRANSACTION READ ONLY")
        .and_then(|_| conn.query_drop("START TRANSACTION READ ONLY"))
        .map_err(|e| anyhow!("cannot open a read-only session on {where_}: {}", one_line(&e)))?;
    Ok(conn)
}

/// The server-side test for the rows that may carry on a transferred paid
/// call (see `core::usage::Tally`): rows of a call that another channel
/// began (`linkedid`; most rows are of calls their own channel began) whose
/// `channel` or `dstchannel` is a listed trunk (or, with none listed, is not
/// a `Local/` one), in any disposition.
fn carrier_channel_test(trunk_channels: &[String]) -> (String, Vec<Value>) {
    let of_another = "(linkedid <> '' AND linkedid <> uniqueid";
    if trunk_channels.is_empty() {
        return (
            format!("{of_another} AND (channel NOT LIKE 'Local/%' OR dstchannel NOT LIKE 'Local/%'))"),
            Vec::new(),
        );
    }
    let mut tests = Vec::new();
    let mut params = Vec::new();
    for column in ["channel", "dstchannel"] {
        for prefix in trunk_channels {
            tests.push(format!("{column} LIKE ? ESCAPE '!'"));
            let escaped = prefix.replace('!', "!!").replace('%', "!%").replace('_', "!_");
            params.push(Value::from(format!("{escaped}%")));
        }
    }
    (format!("{of_another} AND ({}))", tests.join(" OR ")), params)
}

/// `cdr` → `` `cdr` ``; `db.cdr` → `` `db`.`cdr` `` (names were validated by config).
fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(|part| format!("`{part}`"))
        .collect::<Vec<_>>()
        .join(".")
}

fn format_datetime(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// What to do when the server refused the login: it names the account as it
/// saw it (`'callquota'@'127.0.0.1'`), and an account made for another host
/// part (`callquota@localhost`, which only a socket login or name resolution
/// matches) is the usual cause.
fn login_advice(e: &mysql::Error, endpoint: &Endpoint, section: &str) -> Option<String> {
    let mysql::Error::MySqlError(server) = e else {
        return None;
    };
    if server.code != 1045 {
        return None;
    }
    let seen = seen_account(&server.message)?;
    Some(match endpoint {
        Endpoint::Tcp { .. } => format!(
            "the server saw the login as {seen}: check the password, and that an account exists for that host part \
             (CREATE USER callquota@localhost matches only logins through the Unix socket: set {section}.host = \
             \"localhost\" to use it, or create the account for the address above)"
        ),
        Endpoint::Socket(_) => format!(
            "the server saw the login as {seen}: check the password, and that the account exists for 'localhost' \
             (a login through the socket is always @'localhost')"
        ),
    })
}

/// `'callquota'@'127.0.0.1'` out of "Access denied for user 'callquota'@'127.0.0.1' (using password: YES)".
fn seen_account(message: &str) -> Option<&str> {
    let start = message.find("for user '")? + "for user ".len();
    let rest = &message[start..];
    let end = rest.find(" (").unwrap_or(rest.len());
    let account = &rest[..end];
    account.contains("'@'").then_some(account)
}

/// A MySQL error as one plain sentence (the driver's `Display` is a debug dump
/// such as `MySqlError { ERROR 1045 (28000): ... }`).
pub fn one_line(e: &mysql::Error) -> String {
    let text = match e {
        mysql::Error::MySqlError(e) => format!("the server said: {} (error {})", e.message, e.code),
        mysql::Error::IoError(e)
            if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock =>
        {
            "no answer within [cdr] timeout_s".to_string()
        }
        mysql::Error::IoError(e) => e.to_string(),
        mysql::Error::DriverError(e) => e.to_string(),
        mysql::Error::CodecError(e) => e.to_string(),
        other => other.to_string(),
    };
    text.replace(['\n', '\r'], " ")
}

fn text(value: Option<Value>) -> String {
    match value {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::UInt(u)) => u.to_string(),
        _ => String::new(),
    }
}

/// An integer column; NULL or text that is no number reads as 0.
fn number(value: Option<Value>) -> i64 {
    match value {
        Some(Value::Int(i)) => i,
        Some(Value::UInt(u)) => i64::try_from(u).unwrap_or(i64::MAX),
        Some(Value::Bytes(b)) => String::from_utf8_lossy(&b).trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// A row we cannot read (NULL or unparsable `calldate`) is skipped.
fn decode(mut row: Row) -> Option<CdrRow> {
    let calldate = match row.take::<Value, _>(0)? {
        Value::Date(y, mo, d, h, mi, s, _) => NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d))?
            .and_hms_opt(u32::from(h), u32::from(mi), u32::from(s))?,
        Value::Bytes(b) => NaiveDateTime::parse_from_str(&String::from_utf8_lossy(&b), "%Y-%m-%d %H:%M:%S").ok()?,
        _ => return None,
    };
    let billsec = number(row.take(5));
    Some(CdrRow {
        channel: text(row.take(8)),
        linkedid: text(row.take(9)),
        sequence: number(row.take(10)),
        calldate,
        caller: text(row.take(1)),
        dst: text(row.take(2)),
        dstchannel: text(row.take(3)),
        disposition: text(row.take(4)),
        billsec,
        uniqueid: text(row.take(6)),
        duration: number(row.take(7)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_login_names_the_account_the_server_saw() {
        assert_eq!(
            seen_account("Access denied for user 'callquota'@'127.0.0.1' (using password: YES)"),
            Some("'callquota'@'127.0.0.1'")
        );
        assert_eq!(
            seen_account("Access denied for user 'a'@'localhost'"),
            Some("'a'@'localhost'")
        );
        assert_eq!(seen_account("Unknown database 'x'"), None);
    }
}
