//! A throw-away PBX site for integration tests: its own MariaDB database with
//! the FreePBX `cdr` schema, its own state, include file and fake Asterisk.
//! Tests fail (never skip) when MariaDB is not reachable.

#![allow(dead_code)]

pub mod asterisk;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};

use assert_cmd::Command;
use mysql::prelude::Queryable;
use tempfile::TempDir;

pub const SCHEMA: &str = include_str!("../fixtures/cdr-schema.sql");

pub fn mysql_root_url() -> String {
    std::env::var("CALLQUOTA_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// `mysql://USERINFO@host:port` of the test server, with other credentials.
pub fn url_with_userinfo(userinfo: &str) -> String {
    let url = mysql_root_url();
    let host = url
        .rsplit_once('@')
        .map_or(url.trim_start_matches("mysql://"), |(_, h)| h);
    format!("mysql://{userinfo}@{host}")
}

/// The user name the tests connect as (root in CI, or a dedicated account).
pub fn url_user() -> String {
    let url = mysql_root_url();
    let userinfo = url
        .trim_start_matches("mysql://")
        .rsplit_once('@')
        .map_or("", |(u, _)| u)
        .to_string();
    userinfo.split(':').next().unwrap_or("").to_string()
}

/// The site's config text with other CDR credentials.
pub fn with_cdr_userinfo(config: &str, userinfo: &str) -> String {
    config.replace(&mysql_root_url(), &url_with_userinfo(userinfo))
}

fn admin() -> mysql::Conn {
    let url = mysql_root_url();
    let opts = mysql::OptsBuilder::from_opts(mysql::Opts::from_url(&url).expect("CALLQUOTA_TEST_MYSQL_URL"))
        .prefer_socket(false);
    mysql::Conn::new(opts).unwrap_or_else(|e| {
        panic!(
            "MariaDB is required for the integration tests and is not reachable at {url}: {e}; start it (see .ci/run)"
        )
    })
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// One CDR row; fields default to an answered outbound call from 2055.
#[derive(Clone, Debug)]
pub struct Call {
    pub calldate: String,
    pub cnum: String,
    pub src: String,
    pub channel: String,
    pub dst: String,
    pub dstchannel: String,
    pub disposition: String,
    pub billsec: i64,
    /// The Dial argument, as FreePBX's trunk macro writes it.
    pub lastdata: String,
}

impl Call {
    /// An answered call from `ext` to `dst` at local `time` lasting `billsec`.
    pub fn answered(ext: &str, dst: &str, time: &str, billsec: i64) -> Call {
        Call {
            calldate: time.replace('T', " "),
            cnum: ext.into(),
            src: "77172000000".into(), // the company's outbound CID, as FreePBX writes it
            channel: format!("PJSIP/{ext}-0000001a"),
            dst: dst.into(),
            dstchannel: "PJSIP/kcell-00000012".into(),
            disposition: "ANSWERED".into(),
            billsec,
            lastdata: format!("PJSIP/{dst}@kcell,300,T"),
        }
    }

    pub fn disposition(mut self, d: &str) -> Call {
        self.disposition = d.into();
        if d != "ANSWERED" {
            self.billsec = 0;
        }
        self
    }
}

pub struct Site {
    /// The site's real Asterisk; declared first, so it stops before its
    /// directory goes. `None` on a site that uses the fake.
    pub pbx: Option<asterisk::Pbx>,
    pub dir: TempDir,
    pub db: String,
    pub config: PathBuf,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub const MOBILE: &str = "87011234567";
pub const MOBILE2: &str = "87771234567";
pub const LANDLINE: &str = "87172123456";

impl Site {
    pub fn new() -> Site {
        Site::with(|_| {})
    }

    /// A site whose config text `edit` may change before it is written, with
    /// a real Asterisk (22, FreePBX 17 shape) as its reload and CLI command.
    /// Where the Asterisk sources are absent (outside CI), the fake serves.
    pub fn with(edit: impl FnOnce(&mut String)) -> Site {
        let mut site = Site::with_fake(edit);
        site.pbx = asterisk::Pbx::start(&site, asterisk::Flavor::FreePbx17);
        site
    }

    /// A site with no Asterisk of its own yet, for a test that starts one
    /// itself (`Pbx::start_for_calls`, another flavor).
    pub fn without_pbx() -> Site {
        Site::with_fake(|_| {})
    }

    /// A site whose reload and CLI go to `tests/fixtures/fake-asterisk`: only
    /// for faults a real Asterisk cannot be made to show on demand (a reload
    /// that fails, hangs or is not confirmed, Asterisk down), for counting
    /// reloads, and where a test mounts a disk over Asterisk's config directory.
    pub fn with_fake(edit: impl FnOnce(&mut String)) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let db = format!(
            "cq_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            nanos
        );
        let mut conn = admin();
        conn.query_drop(format!("CREATE DATABASE `{db}`"))
            .expect("create database");
        conn.query_drop(format!("USE `{db}`")).expect("use database");
        conn.query_drop(SCHEMA).expect("create cdr table");
        std::fs::create_dir_all(dir.path().join("asterisk")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("ast")).expect("mkdir");
        let config = dir.path().join("config.toml");
        let site = Site {
            pbx: None,
            dir,
            db,
            config,
        };
        let mut text = site.default_config();
        edit(&mut text);
        site.write_config(&text);
        site
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn include_path(&self) -> PathBuf {
        self.path("asterisk/callquota.conf")
    }

    pub fn default_config(&self) -> String {
        let fake = fixture("fake-asterisk");
        let ast = self.path("ast");
        let include = self.include_path();
        format!(
            r#"timezone = "Asia/Almaty"
state_db = "{state}"

[cdr]
url = "{url}/{db}"
timeout_s = 5

[[direction]]
name = "mobile"
patterns = ["_870[5780-2]XXXXXXX", "_877[15-8]XXXXXXX", "_8747XXXXXXX"]

[limits]
thresholds = [50, 90, 100]

[carryover]
enabled = true

[dialplan]
include_file = "{include}"
flavor = "freepbx17"
reload_command = ["{fake}", "{ast}", "{include}", "-rx", "module reload pbx_config.so"]
asterisk_cli = ["{fake}", "{ast}", "{include}", "-rx"]
reload_timeout_s = 5
"#,
            state = self.path("state.db").display(),
            url = mysql_root_url(),
            db = self.db,
            include = include.display(),
            fake = fake.display(),
            ast = ast.display(),
        )
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("write config");
    }

    /// The binary on this site's config. Tests replay fixed days with
    /// `--now`, which may lie ahead of the real clock: hence `--allow-future`.
    pub fn cmd(&self) -> Command {
        let mut c = self.strict_cmd();
        c.arg("--allow-future");
        c
    }

    /// The binary as an admin runs it, without `--allow-future`.
    pub fn strict_cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_callquota"));
        // A test run through sudo must not make every command a delegated one.
        c.arg("--config")
            .arg(&self.config)
            .env_remove("CALLQUOTA_CONFIG")
            .env_remove("SUDO_UID")
            .env_remove("DOAS_USER")
            .env_remove("PKEXEC_UID");
        c
    }

    /// A plain process (for spawning several at once).
    pub fn process(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_callquota"));
        c.arg("--config")
            .arg(&self.config)
            .arg("--allow-future")
            .env_remove("CALLQUOTA_CONFIG")
            .env_remove("SUDO_UID")
            .env_remove("DOAS_USER")
            .env_remove("PKEXEC_UID");
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    }

    /// Runs callquota at local time `now` with `args`; returns the output.
    pub fn at(&self, now: &str, args: &[&str]) -> Output {
        self.cmd()
            .arg("--now")
            .arg(now)
            .args(args)
            .output()
            .expect("run callquota")
    }

    /// Like [`Site::at`] but insists on success.
    pub fn ok(&self, now: &str, args: &[&str]) -> String {
        let out = self.at(now, args);
        assert!(
            out.status.success(),
            "callquota {args:?} at {now} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs callquota on the real clock (tests against a real Asterisk, whose
    /// CDR rows carry the real time).
    pub fn ok_now(&self, args: &[&str]) -> String {
        let out = self.strict_cmd().args(args).output().expect("run callquota");
        assert!(
            out.status.success(),
            "callquota {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn run(&self, now: &str) -> String {
        self.ok(now, &["run"])
    }

    pub fn add_user(&self, now: &str, ext: &str, limit: &str) {
        self.ok(
            now,
            &[
                "user",
                "add",
                ext,
                "--name",
                &format!("User {ext}"),
                "--email",
                &format!("u{ext}@example.com"),
                "--daily-limit",
                limit,
            ],
        );
    }

    pub fn insert(&self, calls: &[Call]) {
        let mut conn = admin();
        conn.query_drop(format!("USE `{}`", self.db)).expect("use");
        for c in calls {
            conn.exec_drop(
                "INSERT INTO cdr (calldate, cnum, src, channel, dst, dstchannel, disposition, billsec, duration, lastapp, lastdata)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'Dial', ?)",
                (&c.calldate, &c.cnum, &c.src, &c.channel, &c.dst, &c.dstchannel, &c.disposition, c.billsec, c.billsec.saturating_add(5).min(i64::from(i32::MAX)), &c.lastdata),
            )
            .expect("insert cdr row");
        }
    }

    /// Runs raw SQL against this site's CDR database (fault injection).
    pub fn sql(&self, sql: &str) {
        let mut conn = admin();
        conn.query_drop(format!("USE `{}`", self.db)).expect("use");
        conn.query_drop(sql).expect("sql");
    }

    /// What the include file lets `ext` talk on paid calls now, in ms:
    /// allowance - CDR usage (the live guard's `a:u`) or the remaining time;
    /// `None` for DENY or an extension it does not list.
    pub fn allows_ms(&self, ext: &str) -> Option<u64> {
        let text = self.include();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("exten => {ext},1,Return(")))?;
        let value = line.split("Return(").nth(1)?.trim_end_matches(')');
        match value.split_once(':') {
            Some((allowance, used)) => Some(allowance.parse::<u64>().ok()? - used.parse::<u64>().ok()?),
            None => value.parse().ok(),
        }
    }

    pub fn include(&self) -> String {
        std::fs::read_to_string(self.include_path()).unwrap_or_default()
    }

    pub fn status(&self, now: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(now, &["status", "--json"])).expect("status json")
    }

    /// `status --json` of one extension at `now`.
    pub fn user_status(&self, now: &str, ext: &str) -> serde_json::Value {
        self.status(now)
            .as_array()
            .and_then(|a| a.iter().find(|r| r["extension"] == ext).cloned())
            .unwrap_or_else(|| panic!("{ext} not in status"))
    }

    pub fn state(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path("state.db")).expect("open state")
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.state().query_row(sql, [], |r| r.get(0)).expect("count")
    }

    /// Every table of the state as text, for before/after comparisons (the
    /// time of the last successful run is bookkeeping, not state, and left out).
    pub fn dump(&self) -> String {
        let conn = self.state();
        let mut out = String::new();
        for (table, order) in [
            ("users", "extension"),
            ("ledger", "extension, day"),
            ("grants", "id"),
            ("outbox", "id"),
            ("audit", "id"),
            ("meta", "key"),
        ] {
            // Read progress, not figures: when the last run was, which closed
            // day a run last read after its settle deadline, from which day
            // Asterisk keeps live counters.
            let filter = if table == "meta" {
                " WHERE key NOT IN ('last_run_at', 'settled_day', 'live_counters_from')"
            } else {
                ""
            };
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {table}{filter} ORDER BY {order}"))
                .expect("prepare");
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let mut cells = Vec::new();
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        cells.push(format!("{v:?}"));
                    }
                    Ok(cells.join("|"))
                })
                .expect("query");
            for row in rows {
                out.push_str(&format!("{table}: {}\n", row.expect("row")));
            }
        }
        out
    }

    /// The commands the fake Asterisk received.
    pub fn asterisk_commands(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("ast/commands.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Hands the site to `uid` the way the package sets up the service user:
    /// the state moves to `var/` owned by `uid`, the include and fake-Asterisk
    /// directories become theirs, the rest stays root's but readable.
    /// Returns the new config text (also written).
    pub fn hand_to(&self, uid: u32) -> String {
        use std::os::unix::fs::PermissionsExt;
        let state_dir = self.path("var");
        std::fs::create_dir_all(&state_dir).expect("mkdir var");
        for dir in [self.dir.path(), &state_dir, &self.path("asterisk"), &self.path("ast")] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        for dir in [&state_dir, &self.path("asterisk"), &self.path("ast")] {
            std::os::unix::fs::chown(dir, Some(uid), Some(uid)).expect("chown");
        }
        let config = std::fs::read_to_string(&self.config).expect("config").replace(
            &format!("state_db = \"{}\"", self.path("state.db").display()),
            &format!("state_db = \"{}\"", state_dir.join("state.db").display()),
        );
        self.write_config(&config);
        config
    }

    /// Runs the binary as `user` in cron's environment: `env -i`, the given PATH.
    pub fn as_user(&self, user: &str, path: &str, args: &[&str]) -> Output {
        std::process::Command::new("runuser")
            .args(["-u", user, "--", "env", "-i", &format!("PATH={path}")])
            .arg(env!("CARGO_BIN_EXE_callquota"))
            .arg("--config")
            .arg(&self.config)
            .arg("--allow-future")
            .args(args)
            .current_dir("/")
            .output()
            .expect("runuser")
    }

    /// The generation of the include file that (real or fake) Asterisk has loaded.
    pub fn loaded_generation(&self) -> Option<u64> {
        match &self.pbx {
            Some(pbx) => pbx.loaded_generation(),
            None => callquota::core::dialplan::generation_in(&self.loaded()),
        }
    }

    /// The generation of the include file on disk.
    pub fn include_generation(&self) -> Option<u64> {
        callquota::core::dialplan::generation_in(&self.include())
    }

    /// The fake Asterisk's "loaded" copy of the include file.
    pub fn loaded(&self) -> String {
        std::fs::read_to_string(self.path("ast/loaded.conf")).unwrap_or_default()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Ok(mut conn) = std::panic::catch_unwind(admin) {
            let _ = conn.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.db));
        }
    }
}

pub const NOBODY: u32 = 65534;

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test plays root or another user; run the suite as root (CI does)"
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A real SMTP server (Debian's python3-aiosmtpd) on its own port, storing
/// what it accepts in a Maildir. Killed when dropped.
pub struct SmtpSink {
    pub port: u16,
    pub dir: TempDir,
    child: Option<std::process::Child>,
    /// aiosmtpd flags for TLS (`--tlscert`... or `--smtpscert`...).
    tls_args: Vec<String>,
}

/// A port no other test process on this machine will take while this one
/// lives. A port from `bind(:0)` is free only at that instant: a server that a
/// test starts later (aiosmtpd after `SmtpSink::down`, Asterisk's manager) can
/// find it taken by a parallel test's server. So ports come from below the
/// kernel's ephemeral range, each one held by a lock file that lives as long
/// as this test process does.
pub fn free_port() -> u16 {
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("callquota-test-ports");
    if std::fs::create_dir(&dir).is_ok() {
        use std::os::unix::fs::PermissionsExt;
        // Shared by whichever user runs tests next, like /tmp itself.
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
    }
    const FIRST: u16 = 20_000;
    const COUNT: u32 = 12_000; // up to 31999, below Linux's ephemeral 32768
    let seed = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for i in 0..COUNT {
        let port = FIRST + ((seed.wrapping_add(i)) % COUNT) as u16;
        let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
        else {
            continue; // another user's lock file
        };
        if file.try_lock().is_err() {
            continue; // a live test process holds it
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue; // something outside the tests listens there
        }
        HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
        return port;
    }
    panic!("no free test port in {FIRST}..{}", u32::from(FIRST) + COUNT);
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let mut sink = SmtpSink::down();
        sink.up();
        sink
    }

    /// A server with a fresh self-signed certificate for 127.0.0.1, speaking
    /// STARTTLS (`implicit = false`) or implicit TLS. Returns the CA file too.
    pub fn start_tls(implicit: bool) -> (SmtpSink, PathBuf) {
        let mut sink = SmtpSink::down();
        let (cert, key) = (sink.dir.path().join("cert.pem"), sink.dir.path().join("key.pem"));
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .args([
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl req failed");
        let (c, k) = if implicit {
            ("--smtpscert", "--smtpskey")
        } else {
            ("--tlscert", "--tlskey")
        };
        sink.tls_args = vec![
            c.into(),
            cert.display().to_string(),
            k.into(),
            key.display().to_string(),
        ];
        sink.up();
        (sink, cert)
    }

    /// A port with no server behind it (yet): `up()` starts one there.
    pub fn down() -> SmtpSink {
        SmtpSink {
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
            tls_args: Vec::new(),
        }
    }

    pub fn up(&mut self) {
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{}", self.port)])
            .args(&self.tls_args)
            .args(["-c", "smtp_handlers.RejectingMailbox"])
            .arg(self.maildir())
            .env("PYTHONPATH", fixture(""))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is required: apt-get install python3-aiosmtpd (.ci/run does)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !self.greets() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("aiosmtpd exited at start ({status}); is python3-aiosmtpd installed?");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "aiosmtpd did not greet on port {} (is another server there?)",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Whether an SMTP server answers on the port: a `220` greeting, plain or
    /// inside TLS. Any listener at all is not enough, it may be someone else's.
    fn greets(&self) -> bool {
        use std::io::Read;
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls_args.first().is_some_and(|a| a == "--smtpscert") {
            return true; // implicit TLS: no plain greeting; the port is ours
        }
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let mut greeting = [0u8; 3];
        stream.read_exact(&mut greeting).is_ok() && &greeting == b"220"
    }

    /// Where aiosmtpd stores messages (it creates the Maildir itself).
    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// The messages received so far, decoded by Python's email package.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        if !self.maildir().exists() {
            return Vec::new();
        }
        read_mail(&self.maildir())
    }

    pub fn config(&self) -> String {
        format!(
            "\n[mail]\ntransport = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"callquota@example.com\"\ntimeout_s = 5\n",
            self.port
        )
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Messages in a Maildir or a folder of .eml files, decoded.
pub fn read_mail(dir: &Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(fixture("read_mail.py"))
        .arg(dir)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "read_mail.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .expect("json")
        .as_array()
        .cloned()
        .unwrap_or_default()
}
