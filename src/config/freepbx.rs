//! The `[freepbx]` section: FreePBX's own database (`asterisk`), read-only,
//! for `user import --freepbx`. The connection keys are `[cdr]`'s: a `url`,
//! or host, port, user, password or password_file, database (default
//! `asterisk`). Give callquota its own SELECT-only account there.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::cdr::{CdrConnection, ConnectionKeys, mysql_connection};
use crate::values::duration::Seconds;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFreepbx {
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    socket: Option<PathBuf>,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    database: Option<String>,
    #[serde(default = "default_timeout")]
    timeout_s: Seconds,
}

fn default_timeout() -> Seconds {
    Seconds(10)
}

#[derive(Debug, Clone)]
pub struct FreepbxSettings {
    pub connection: CdrConnection,
    pub timeout: Duration,
}

pub(super) fn freepbx_settings(raw: RawFreepbx) -> Result<FreepbxSettings, String> {
    let connection = mysql_connection(ConnectionKeys {
        section: "freepbx",
        url: &raw.url,
        host: &raw.host,
        port: raw.port,
        socket: &raw.socket,
        user: &raw.user,
        password: &raw.password,
        password_file: &raw.password_file,
        database: &raw.database,
        default_database: "asterisk",
    })?;
    if raw.timeout_s.0 == 0 {
        return Err("freepbx.timeout_s must be at least 1".into());
    }
    Ok(FreepbxSettings {
        connection,
        timeout: Duration::from_secs(raw.timeout_s.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Result<FreepbxSettings, String> {
        freepbx_settings(toml::from_str(text).unwrap())
    }

    #[test]
    fn defaults_to_the_asterisk_database_and_names_its_own_keys() {
        let s = settings("user = \"cq\"").unwrap();
        assert_eq!(s.connection.describe(), "mysql://cq@127.0.0.1:3306/asterisk");
        let s = settings("url = \"mysql://cq:pw@db:3307\"").unwrap();
        assert_eq!(s.connection.describe(), "mysql://cq@db:3307/asterisk");
        assert_eq!(
            settings("host = \"db\"").unwrap_err(),
            "freepbx.user is missing; e.g. user = \"callquota\" (or give freepbx.url)"
        );
        let err = settings("url = \"postgres://x@y\"").unwrap_err();
        assert!(err.starts_with("freepbx.url must start with mysql://"), "{err}");
        assert!(settings("user = \"cq\"\ndatabase = \"a;b\"").is_err());
    }
}
