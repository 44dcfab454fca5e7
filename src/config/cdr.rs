//! The `[cdr]` section: where the CDR lives and how to read it.
//!
//! The connection is given as a `url`, or as `host`, `port`, `user`,
//! `password` or `password_file`, `database` (the same form as `[smtp]`),
//! which needs no percent-encoding. Neither the password nor the url (which
//! may hold it) ever appears in a message.
//!
//! As with the MySQL tools, `host = "localhost"` (or a `socket` key) means
//! the server's Unix socket, where the server sees the login as
//! `user@localhost`, the account the README creates and FreePBX's own
//! accounts use; any other host means TCP.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::core::usage::CallerColumn;
use crate::values::duration::Seconds;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCdr {
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    socket: Option<PathBuf>,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    database: Option<String>,
    #[serde(default = "default_table")]
    table: String,
    #[serde(default = "default_caller_column")]
    caller_column: String,
    #[serde(default)]
    utc: bool,
    #[serde(default)]
    trunk_channels: Vec<String>,
    #[serde(default)]
    route_prefixes: Vec<String>,
    #[serde(default = "default_cdr_timeout")]
    timeout_s: Seconds,
}

fn default_table() -> String {
    "cdr".into()
}
fn default_caller_column() -> String {
    "cnum".into()
}
fn default_cdr_timeout() -> Seconds {
    Seconds(10)
}

/// Where Debian's MariaDB and MySQL put their socket (`/var/run` links here).
pub const DEFAULT_SOCKET: &str = "/run/mysqld/mysqld.sock";

/// How the server is reached: the login's host part depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp {
        host: String,
        port: u16,
    },
    /// The Unix socket: the server sees `user@localhost`.
    Socket(PathBuf),
}

/// How to reach the CDR database. `Debug` and [`CdrConnection::describe`]
/// leave the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct CdrConnection {
    pub endpoint: Endpoint,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
}

impl CdrConnection {
    /// `mysql://user@host:port/database`, or `mysql://user@localhost/database
    /// (socket /run/mysqld/mysqld.sock)` (no password), for messages.
    pub fn describe(&self) -> String {
        match &self.endpoint {
            Endpoint::Tcp { host, port } => format!("mysql://{}@{host}:{port}/{}", self.user, self.database),
            Endpoint::Socket(path) => format!(
                "mysql://{}@localhost/{} (socket {})",
                self.user,
                self.database,
                path.display()
            ),
        }
    }
}

impl fmt::Debug for CdrConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[derive(Debug, Clone)]
pub struct CdrSettings {
    pub connection: CdrConnection,
    /// `cdr.password_file`, whose mode `check` looks at.
    pub password_file: Option<PathBuf>,
    pub table: String,
    pub caller_column: CallerColumn,
    pub utc: bool,
    pub trunk_channels: Vec<String>,
    /// Digits outbound routes strip (FreePBX route "prefix"), removed from `dst`.
    pub route_prefixes: Vec<String>,
    pub timeout: Duration,
}

const URL_FIX: &str = "write it as mysql://user:password@host:3306/asteriskcdrdb with special characters of the \
                       password percent-encoded (@ %40, # %23, / %2F, : %3A, % %25), or use host, user, \
                       password_file and database instead of url";

/// The connection keys `[cdr]` and `[freepbx]` share: a `url`, or host,
/// port, user, password or password_file, and database.
pub(super) struct ConnectionKeys<'a> {
    pub section: &'a str,
    pub url: &'a Option<String>,
    pub host: &'a Option<String>,
    pub port: Option<u16>,
    pub socket: &'a Option<PathBuf>,
    pub user: &'a Option<String>,
    pub password: &'a Option<String>,
    pub password_file: &'a Option<PathBuf>,
    pub database: &'a Option<String>,
    pub default_database: &'a str,
}

pub(super) fn mysql_connection(keys: ConnectionKeys<'_>) -> Result<CdrConnection, String> {
    let section = keys.section;
    let connection = match keys.url {
        Some(url) => {
            if keys.host.is_some()
                || keys.port.is_some()
                || keys.socket.is_some()
                || keys.user.is_some()
                || keys.database.is_some()
            {
                return Err(format!(
                    "set {section}.url or {section}.host/port/socket/user/database, not both"
                ));
            }
            if keys.password.is_some() || keys.password_file.is_some() {
                return Err(format!(
                    "{section}.url carries the password; drop {section}.password/password_file, or use host, user \
                     and database instead of url"
                ));
            }
            from_url(url, keys.default_database).map_err(|e| e.replacen("cdr.", &format!("{section}."), 1))?
        }
        None => {
            let host = keys.host.clone().unwrap_or_else(|| "127.0.0.1".into());
            if host.is_empty()
                || host
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "/@#".contains(c))
            {
                return Err(format!("{section}.host is not a host name; e.g. host = \"localhost\""));
            }
            let host = match (keys.host, keys.socket) {
                (None, Some(_)) => "localhost".to_string(),
                _ => host,
            };
            let endpoint = endpoint(section, host, keys.port, keys.socket.clone())?;
            let user = keys.user.clone().filter(|u| !u.is_empty()).ok_or(format!(
                "{section}.user is missing; e.g. user = \"callquota\" (or give {section}.url)"
            ))?;
            let password = match (keys.password, keys.password_file) {
                (Some(_), Some(_)) => {
                    return Err(format!("set {section}.password or {section}.password_file, not both"));
                }
                (Some(p), None) => Some(p.clone()),
                (None, Some(file)) => Some(super::checks::read_password_file(
                    &format!("{section}.password_file"),
                    file,
                )?),
                (None, None) => None,
            };
            CdrConnection {
                endpoint,
                user,
                password,
                database: keys.database.clone().unwrap_or_else(|| keys.default_database.into()),
            }
        }
    };
    if matches!(connection.endpoint, Endpoint::Tcp { port: 0, .. }) {
        return Err(format!("{section}.port must be 1 to 65535"));
    }
    if !is_identifier(&connection.database) {
        return Err(format!(
            "{section}.database is not a database name; use letters, digits and _"
        ));
    }
    Ok(connection)
}

/// A `socket`, or `localhost` without a port, means the Unix socket, as
/// with the MySQL tools; any other host, or a port, means TCP.
fn endpoint(section: &str, host: String, port: Option<u16>, socket: Option<PathBuf>) -> Result<Endpoint, String> {
    let local = host.eq_ignore_ascii_case("localhost");
    match socket {
        Some(path) => {
            if !local || port.is_some() {
                return Err(format!(
                    "{section}: a socket and a TCP host or port are both set; drop the host and port (or the socket, to use TCP)"
                ));
            }
            if !path.is_absolute() {
                return Err(format!(
                    "{section}: the socket must be an absolute path; e.g. socket = \"{DEFAULT_SOCKET}\""
                ));
            }
            Ok(Endpoint::Socket(path))
        }
        None if local && port.is_none() => Ok(Endpoint::Socket(PathBuf::from(DEFAULT_SOCKET))),
        None => Ok(Endpoint::Tcp {
            host,
            port: port.unwrap_or(3306),
        }),
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn cdr_settings(raw: RawCdr) -> Result<CdrSettings, String> {
    let connection = mysql_connection(ConnectionKeys {
        section: "cdr",
        url: &raw.url,
        host: &raw.host,
        port: raw.port,
        socket: &raw.socket,
        user: &raw.user,
        password: &raw.password,
        password_file: &raw.password_file,
        database: &raw.database,
        default_database: "asteriskcdrdb",
    })?;
    let table_ok = match raw.table.split_once('.') {
        Some((db, t)) => is_identifier(db) && is_identifier(t),
        None => is_identifier(&raw.table),
    };
    if !table_ok {
        return Err(format!(
            "cdr.table {:?} is not a table name; use letters, digits and _ (optionally db.table)",
            raw.table
        ));
    }
    let caller_column = match raw.caller_column.as_str() {
        "cnum" => CallerColumn::Cnum,
        "src" => CallerColumn::Src,
        "channel" => CallerColumn::Channel,
        other => {
            return Err(format!(
                "cdr.caller_column {other:?} is not one of \"cnum\", \"src\", \"channel\""
            ));
        }
    };
    if let Some(bad) = raw
        .trunk_channels
        .iter()
        .find(|p| p.is_empty() || p.chars().any(|c| c.is_control()))
    {
        return Err(format!(
            "cdr.trunk_channels entry {bad:?} is empty or holds control characters"
        ));
    }
    if let Some(bad) = raw
        .route_prefixes
        .iter()
        .find(|p| p.is_empty() || p.len() > 10 || !p.chars().all(|c| c.is_ascii_digit() || "*#+".contains(c)))
    {
        return Err(format!(
            "cdr.route_prefixes entry {bad:?} is not a dial prefix; use digits (and * # +), e.g. [\"9\"]"
        ));
    }
    let Seconds(timeout_s) = raw.timeout_s;
    if !(1..=600).contains(&timeout_s) {
        return Err(format!("cdr.timeout_s = {timeout_s} is out of range; use 1 to 600"));
    }
    Ok(CdrSettings {
        connection,
        password_file: raw.password_file,
        table: raw.table,
        caller_column,
        utc: raw.utc,
        trunk_channels: raw.trunk_channels,
        route_prefixes: raw.route_prefixes,
        timeout: Duration::from_secs(timeout_s),
    })
}

/// Parses `mysql://user:password@host:port/database` without ever echoing it:
/// a `#`, a second `@` or a `/` in the password would otherwise be split off
/// silently and a piece of the password named as the host.
fn from_url(url: &str, default_database: &str) -> Result<CdrConnection, String> {
    let Some(rest) = url.strip_prefix("mysql://") else {
        return Err(format!("cdr.url must start with mysql://; {URL_FIX}"));
    };
    let authority = rest.split('/').next().unwrap_or("");
    if rest.contains('#') || authority.matches('@').count() != 1 || rest.chars().any(char::is_whitespace) {
        return Err(format!("cdr.url cannot be read unambiguously; {URL_FIX}"));
    }
    let opts = mysql::Opts::from_url(url).map_err(|_| format!("cdr.url cannot be read; {URL_FIX}"))?;
    let host = opts.get_ip_or_hostname().to_string();
    let user = opts.get_user().unwrap_or("").to_string();
    if host.is_empty() || user.is_empty() {
        return Err(format!("cdr.url needs a user and a host; {URL_FIX}"));
    }
    let host_part = authority.rsplit_once('@').map_or("", |(_, h)| h);
    let port = host_part.contains(':').then(|| opts.get_tcp_port());
    let socket = opts.get_socket().map(PathBuf::from);
    let endpoint = endpoint("cdr.url", host, port, socket)?;
    Ok(CdrConnection {
        endpoint,
        user,
        password: opts.get_pass().map(str::to_string),
        database: opts.get_db_name().unwrap_or(default_database).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawCdr {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn a_url_and_separate_keys_give_the_same_connection() {
        let a = cdr_settings(raw(r#"url = "mysql://cq:p%40ss%23w@db.example:3307/cdrdb""#)).unwrap();
        let b = cdr_settings(raw(
            "host = \"db.example\"\nport = 3307\nuser = \"cq\"\npassword = \"p@ss#w\"\ndatabase = \"cdrdb\"",
        ))
        .unwrap();
        assert_eq!(a.connection, b.connection);
        assert_eq!(a.connection.password.as_deref(), Some("p@ss#w"));
        assert_eq!(format!("{:?}", a.connection), "mysql://cq@db.example:3307/cdrdb");
        let c = cdr_settings(raw("user = \"cq\"")).unwrap().connection;
        assert_eq!(c.describe(), "mysql://cq@127.0.0.1:3306/asteriskcdrdb");
    }

    #[test]
    fn an_unencoded_password_is_refused_without_echoing_it() {
        for url in [
            "mysql://cq:p@ss@127.0.0.1/asteriskcdrdb",
            "mysql://cq:pa#ss@127.0.0.1/asteriskcdrdb",
            "mysql://cq:pa/ss@127.0.0.1/asteriskcdrdb",
            "mysql://cq:pass127.0.0.1/asteriskcdrdb",
            "mysq://cq:pass@127.0.0.1/asteriskcdrdb",
        ] {
            let err = cdr_settings(raw(&format!("url = {url:?}"))).unwrap_err();
            assert!(err.contains("percent-encoded"), "{url}: {err}");
            for piece in ["pass", "ss", "pa"] {
                assert!(!err.contains(piece) || err.contains("password"), "{url}: {err}");
            }
            assert!(!err.contains("127.0.0.1"), "{url}: {err}");
        }
    }

    #[test]
    fn localhost_or_a_socket_means_the_unix_socket_as_with_the_mysql_tools() {
        let socket = |text: &str| cdr_settings(raw(text)).map(|s| s.connection.endpoint);
        let default = Endpoint::Socket(PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(socket("host = \"localhost\"\nuser = \"cq\""), Ok(default.clone()));
        assert_eq!(socket("host = \"LocalHost\"\nuser = \"cq\""), Ok(default.clone()));
        assert_eq!(socket("url = \"mysql://cq:pw@localhost/asteriskcdrdb\""), Ok(default));
        let own = Endpoint::Socket(PathBuf::from("/var/lib/mysql/mysql.sock"));
        assert_eq!(
            socket("socket = \"/var/lib/mysql/mysql.sock\"\nuser = \"cq\""),
            Ok(own.clone())
        );
        assert_eq!(
            socket("host = \"localhost\"\nsocket = \"/var/lib/mysql/mysql.sock\"\nuser = \"cq\""),
            Ok(own.clone())
        );
        assert_eq!(
            socket("url = \"mysql://cq:pw@localhost/cdr?socket=%2Fvar%2Flib%2Fmysql%2Fmysql.sock\""),
            Ok(own)
        );
        // A port, or any other host, is TCP: an explicit address is never rerouted.
        let tcp = |host: &str, port| {
            Ok(Endpoint::Tcp {
                host: host.into(),
                port,
            })
        };
        assert_eq!(
            socket("host = \"localhost\"\nport = 3306\nuser = \"cq\""),
            tcp("localhost", 3306)
        );
        assert_eq!(
            socket("url = \"mysql://cq:pw@localhost:3307/cdr\""),
            tcp("localhost", 3307)
        );
        assert_eq!(socket("user = \"cq\""), tcp("127.0.0.1", 3306));
        let c = cdr_settings(raw("host = \"localhost\"\nuser = \"cq\""))
            .unwrap()
            .connection;
        assert_eq!(
            c.describe(),
            "mysql://cq@localhost/asteriskcdrdb (socket /run/mysqld/mysqld.sock)"
        );
        for bad in [
            "host = \"127.0.0.1\"\nsocket = \"/run/mysqld/mysqld.sock\"\nuser = \"cq\"",
            "port = 3306\nsocket = \"/run/mysqld/mysqld.sock\"\nuser = \"cq\"",
        ] {
            let err = socket(bad).unwrap_err();
            assert!(err.contains("a socket and a TCP host or port are both set"), "{err}");
        }
        let err = socket("socket = \"mysqld.sock\"\nuser = \"cq\"").unwrap_err();
        assert!(err.contains("absolute path"), "{err}");
    }

    #[test]
    fn conflicting_or_missing_keys_are_named() {
        let err = cdr_settings(raw("url = \"mysql://a:b@h/d\"\nhost = \"h\"")).unwrap_err();
        assert!(err.contains("not both"), "{err}");
        let err = cdr_settings(raw("host = \"h\"")).unwrap_err();
        assert!(err.contains("cdr.user is missing"), "{err}");
        let err = cdr_settings(raw("user = \"u\"\npassword = \"x\"\npassword_file = \"/x\"")).unwrap_err();
        assert!(err.contains("not both"), "{err}");
    }
}
