//! The MySQL/MariaDB CDR adapter: one read-only session, one `SELECT` over a
//! `calldate` range (so the index is used), streamed and summed in memory.

use anyhow::{Context, Result, anyhow};
use chrono::{NaiveDate, NaiveDateTime};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder, Row, Value};

use crate::calendar::CdrClock;
use crate::config::CdrSettings;
use crate::policy::Usage;
use crate::usage::{CdrRow, Tally, UsageRule};

pub struct Cdr {
    conn: Conn,
    table: String,
    caller_column: &'static str,
    where_: String,
}

impl Cdr {
    /// Connects and makes the session read-only: any write is refused by the server.
    pub fn connect(settings: &CdrSettings) -> Result<Cdr> {
        let conn = read_only_session(&settings.connection, settings.timeout, "the CDR database", "[cdr]")?;
        Ok(Cdr {
            conn,
            table: quote_table(&settings.table),
            caller_column: settings.caller_column.column(),
            where_: settings.connection.describe(),
        })
    }

    /// Paid seconds per day and extension for calls that started in `[from, until)`.
    pub fn usage(
        &mut self,
        clock: &CdrClock,
        rule: &UsageRule<'_>,
        from: NaiveDateTime,
        until: NaiveDateTime,
    ) -> Result<Usage> {
        let mut params = vec![Value::from(format_datetime(from)), Value::from(format_datetime(until))];
        // Only rows whose number could be paid travel to us: a superset of the
        // patterns' literal prefixes (dashes removed, as Asterisk ignores them;
        // the collation may fold case). The exact match is `rule.charge`.
        let prefilter = match rule.dst_prefixes() {
            Some(prefixes) => {
                let tests = vec!["REPLACE(dst, '-', '') LIKE ?"; prefixes.len()].join(" OR ");
                params.extend(prefixes.into_iter().map(|p| Value::from(format!("{p}%"))));
                format!(" AND ({tests})")
            }
            None => String::new(),
        };
        let sql = format!(
            "SELECT calldate, `{caller}`, dst, dstchannel, disposition, billsec, uniqueid, duration FROM {table} \
             WHERE calldate >= ? AND calldate < ? AND disposition = 'ANSWERED' AND billsec > 0{prefilter}",
            caller = self.caller_column,
            table = self.table
        );
        let params = mysql::Params::Positional(params);
        let mut tally = Tally::default();
        let result = self
            .conn
            .exec_iter(sql, params)
            .map_err(|e| anyhow!("CDR query on {} failed: {}", self.where_, one_line(&e)))?;
        for row in result {
            let row = row.map_err(|e| anyhow!("reading CDR rows from {} failed: {}", self.where_, one_line(&e)))?;
            let Some(row) = decode(row) else { continue };
            tally.add(rule, &row, clock.day_of(row.calldate));
        }
        Ok(tally.finish())
    }

    /// Every row that started in `[from, until)` whose caller column holds
    /// `caller` (server-side for `cnum` and `src`; a `channel` caller is
    /// matched by the caller, from all rows of the range), in `calldate` order.
    pub fn rows_of(&mut self, from: NaiveDateTime, until: NaiveDateTime, caller: Option<&str>) -> Result<Vec<CdrRow>> {
        let mut params = vec![Value::from(format_datetime(from)), Value::from(format_datetime(until))];
        let by_caller = match caller {
            Some(c) => {
                params.push(Value::from(c));
                format!(" AND `{}` = ?", self.caller_column)
            }
            None => String::new(),
        };
        let sql = format!(
            "SELECT calldate, `{caller}`, dst, dstchannel, disposition, billsec, uniqueid, duration FROM {table} \
             WHERE calldate >= ? AND calldate < ?{by_caller} ORDER BY calldate",
            caller = self.caller_column,
            table = self.table
        );
        let rows: Vec<Row> = self
            .conn
            .exec(sql, mysql::Params::Positional(params))
            .map_err(|e| anyhow!("CDR query on {} failed: {}", self.where_, one_line(&e)))?;
        Ok(rows.into_iter().filter_map(decode).collect())
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
        .ip_or_hostname(Some(c.host.clone()))
        .tcp_port(c.port)
        .user(Some(c.user.clone()))
        .pass(c.password.clone())
        .db_name(Some(c.database.clone()))
        // A TCP address means TCP: do not silently switch to the local socket.
        .prefer_socket(false)
        .tcp_connect_timeout(timeout)
        .read_timeout(timeout)
        .write_timeout(timeout);
    let mut conn = Conn::new(opts).map_err(|e| {
        anyhow!(
            "cannot connect to {what} {where_}: {}; check the {section} settings and that MySQL is running",
            one_line(&e)
        )
    })?;
    conn.query_drop("SET SESSION TRANSACTION READ ONLY")
        .and_then(|_| conn.query_drop("START TRANSACTION READ ONLY"))
        .map_err(|e| anyhow!("cannot open a read-only session on {where_}: {}", one_line(&e)))?;
    Ok(conn)
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

/// A row we cannot read (NULL or unparsable `calldate`) is skipped.
fn decode(mut row: Row) -> Option<CdrRow> {
    let calldate = match row.take::<Value, _>(0)? {
        Value::Date(y, mo, d, h, mi, s, _) => NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d))?
            .and_hms_opt(u32::from(h), u32::from(mi), u32::from(s))?,
        Value::Bytes(b) => NaiveDateTime::parse_from_str(&String::from_utf8_lossy(&b), "%Y-%m-%d %H:%M:%S").ok()?,
        _ => return None,
    };
    let billsec = match row.take::<Value, _>(5) {
        Some(Value::Int(i)) => i,
        Some(Value::UInt(u)) => i64::try_from(u).unwrap_or(i64::MAX),
        Some(Value::Bytes(b)) => String::from_utf8_lossy(&b).trim().parse().unwrap_or(0),
        _ => 0,
    };
    Some(CdrRow {
        calldate,
        caller: text(row.take(1)),
        dst: text(row.take(2)),
        dstchannel: text(row.take(3)),
        disposition: text(row.take(4)),
        billsec,
        uniqueid: text(row.take(6)),
        duration: match row.take::<Value, _>(7) {
            Some(Value::Int(i)) => i,
            Some(Value::UInt(u)) => i64::try_from(u).unwrap_or(i64::MAX),
            Some(Value::Bytes(b)) => String::from_utf8_lossy(&b).trim().parse().unwrap_or(0),
            _ => 0,
        },
    })
}
