//! What a `callquota run` costs on a large CDR table, against baselines
//! measured in the same run. `bench/README.md` explains how to run it.
//!
//!   cargo bench --bench run_cost                      # 100k and 1M rows
//!   BENCH_SIZES=100k,1M,10M cargo bench --bench run_cost
//!
//! Environment: BENCH_SIZES (default 100k,1M), BENCH_REPS (default 7),
//! BENCH_MYSQL_URL (default mysql://root@127.0.0.1:3306), BENCH_REBUILD=1 to
//! regenerate cached tables (databases `callquota_bench_<size>`),
//! BENCH_CALLQUOTA=PATH to time another build's binary in (c)-(e).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use callquota::adapters::include_file::write_atomically;
use callquota::adapters::state::State;
use callquota::config::Config;
use callquota::core::dialplan::{Days, render};
use callquota::core::policy::Access;
use callquota::core::user::User;
use callquota::values::extension::Extension;
use chrono::{NaiveDate, TimeZone, Utc};
use mysql::prelude::Queryable;

const ROWS_PER_DAY: u64 = 9_000;
const USERS: u64 = 1_000;
/// Bump when the generator changes, so cached tables are rebuilt.
const GENERATOR: &str = "v1";
const TODAY: &str = "2026-11-26";

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn parse_size(text: &str) -> u64 {
    let t = text.trim().to_ascii_lowercase();
    let (digits, factor) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1_000),
        Some('m') => (&t[..t.len() - 1], 1_000_000),
        _ => (t.as_str(), 1),
    };
    digits.parse::<u64>().expect("BENCH_SIZES: e.g. 100k,1M,10M") * factor
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    let millis = d.as_secs_f64() * 1000.0;
    if millis < 1.0 {
        format!("{:.0} µs", millis * 1000.0)
    } else {
        format!("{millis:.1} ms")
    }
}

fn server() -> mysql::Opts {
    let url = env("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306");
    mysql::OptsBuilder::from_opts(mysql::Opts::from_url(&url).expect("BENCH_MYSQL_URL"))
        .prefer_socket(false)
        .into()
}

fn connect(db: Option<&str>) -> mysql::Conn {
    let opts = mysql::OptsBuilder::from_opts(server()).db_name(db);
    mysql::Conn::new(opts).expect("MariaDB is required on 127.0.0.1:3306 (see .ci/run)")
}

/// Creates (or reuses) `callquota_bench_<rows>` with the FreePBX schema and
/// `rows` rows: 9,000 call legs a day going back from today, 1,000
/// extensions, 30 % to paid mobile numbers, 1 in 20 a failed trunk attempt
/// (a second row of the same call), unanswered and busy attempts.
fn prepare_cdr(rows: u64) -> String {
    let db = format!("callquota_bench_{rows}");
    let mut c = connect(None);
    let cached: Option<String> = c
        .query_first(format!(
            "SELECT generator FROM `{db}`.bench_meta WHERE row_count = {rows}"
        ))
        .unwrap_or(None);
    if cached.as_deref() == Some(GENERATOR) && std::env::var_os("BENCH_REBUILD").is_none() {
        return db;
    }
    eprintln!("generating {rows} CDR rows in {db} (cached for later runs)...");
    let started = Instant::now();
    c.query_drop(format!("DROP DATABASE IF EXISTS `{db}`")).unwrap();
    c.query_drop(format!("CREATE DATABASE `{db}`")).unwrap();
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop(include_str!("../tests/fixtures/cdr-schema.sql")).unwrap();
    let chunk = 500_000;
    let mut from = 0;
    while from < rows {
        let to = (from + chunk).min(rows) - 1;
        c.query_drop(format!(
            "INSERT INTO cdr (calldate, clid, src, dst, dcontext, channel, dstchannel, lastapp, lastdata,
                              duration, billsec, disposition, uniqueid, cnum, cnam, linkedid)
             SELECT TIMESTAMP('{TODAY}') - INTERVAL (seq DIV {ROWS_PER_DAY}) DAY
                      + INTERVAL ((seq MOD {ROWS_PER_DAY}) * 86400 DIV {ROWS_PER_DAY}) SECOND,
                    '\"Company\" <77172000000>', '77172000000',
                    IF(seq MOD 10 < 3, CONCAT('8701', LPAD(seq MOD 10000000, 7, '0')),
                                       CONCAT('8717', LPAD(seq MOD 10000000, 7, '0'))),
                    'from-internal', CONCAT('PJSIP/', 1000 + (seq * 7919) MOD {USERS}, '-', LPAD(HEX(seq), 8, '0')),
                    CONCAT('PJSIP/kcell-', LPAD(HEX(seq MOD 65536), 8, '0')), 'Dial', 'PJSIP/kcell,300,T',
                    @b := IF(seq MOD 20 = 19 OR seq MOD 7 = 0 OR seq MOD 13 = 0, 0, 1 + (seq * 37) MOD 240), @b,
                    CASE WHEN seq MOD 20 = 19 THEN 'FAILED' WHEN seq MOD 7 = 0 THEN 'NO ANSWER'
                         WHEN seq MOD 13 = 0 THEN 'BUSY' ELSE 'ANSWERED' END,
                    CONCAT(1700000000 + seq DIV 2, '.', seq), 1000 + (seq * 7919) MOD {USERS}, 'Agent',
                    CONCAT(1700000000 + seq DIV 2, '.', seq)
             FROM seq_{from}_to_{to}"
        ))
        .unwrap();
        from = to + 1;
    }
    c.query_drop("CREATE TABLE bench_meta (row_count BIGINT, generator VARCHAR(20))")
        .unwrap();
    c.query_drop(format!("INSERT INTO bench_meta VALUES ({rows}, '{GENERATOR}')"))
        .unwrap();
    eprintln!("generated in {:.0} s", started.elapsed().as_secs_f64());
    db
}

/// The original article's query, adapted to 1,000 users: a scan.
fn seed_query(db: &str) -> Duration {
    let users: Vec<String> = (1000..1000 + USERS).map(|u| u.to_string()).collect();
    let likes = [
        "8700", "8701", "8702", "8705", "8707", "8708", "8747", "8771", "8775", "8776", "8777", "8778",
    ]
    .iter()
    .map(|p| format!("dst LIKE '{p}%'"))
    .collect::<Vec<_>>()
    .join(" OR ");
    let sql = format!(
        "SELECT SUM(billsec) AS sec, src FROM cdr WHERE disposition = 'ANSWERED' AND ({likes})
         AND DATE(calldate) = DATE('{TODAY} 23:59:59') AND cnum IN ({}) GROUP BY cnum",
        users.join(",")
    );
    let started = Instant::now();
    let mut c = connect(Some(db));
    let rows: Vec<mysql::Row> = c.query(sql).unwrap();
    assert!(!rows.is_empty());
    started.elapsed()
}

/// The floor: one connection and today's rows over the calldate index, fetched.
fn floor_query(db: &str) -> Duration {
    let started = Instant::now();
    let mut c = connect(Some(db));
    let rows: Vec<mysql::Row> = c
        .query(format!(
            "SELECT calldate, cnum, dst, dstchannel, disposition, billsec FROM cdr
             WHERE calldate >= '{TODAY} 00:00:00' AND calldate < '{TODAY} 23:59:59' + INTERVAL 1 SECOND"
        ))
        .unwrap();
    assert!(rows.len() as u64 >= ROWS_PER_DAY - 1);
    started.elapsed()
}

/// The issue's floor: a `mariadb` client process (the one the package's
/// host has) fetching today's answered rows, start to exit, as `run` is.
fn client_floor(db: &str) -> Duration {
    let opts = server();
    let client = ["mariadb", "mysql"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("the mariadb client (Debian: mariadb-client)");
    let mut command = Command::new(client);
    command
        .arg("--no-defaults")
        .arg(format!("--host={}", opts.get_ip_or_hostname()))
        .arg(format!("--port={}", opts.get_tcp_port()))
        .arg(format!("--user={}", opts.get_user().unwrap_or("root")))
        .args(["--batch", "--skip-column-names", db, "-e"])
        .arg(format!(
            "SELECT calldate, cnum, dst, dstchannel, disposition, billsec FROM cdr
             WHERE calldate >= '{TODAY} 00:00:00' AND calldate < '{TODAY} 23:59:59' + INTERVAL 1 SECOND
             AND disposition = 'ANSWERED'"
        ));
    if let Some(password) = opts.get_pass() {
        command.env("MYSQL_PWD", password);
    }
    let started = Instant::now();
    let out = command.output().unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.iter().filter(|&&b| b == b'\n').count() as u64 >= ROWS_PER_DAY / 2);
    took
}

fn com_select() -> u64 {
    let mut c = connect(None);
    let row: Option<(String, String)> = c.query_first("SHOW GLOBAL STATUS LIKE 'Com_select'").unwrap();
    row.map(|(_, v)| v.parse().unwrap_or(0)).unwrap_or(0)
}

struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
}

impl Site {
    fn new(db: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let reloads = root.join("reloads");
        let config = root.join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"timezone = "Asia/Almaty"
state_db = "{root}/state.db"
[cdr]
url = "{url}/{db}"
[[direction]]
name = "mobile"
patterns = ["_870[5780-2]XXXXXXX", "_877[15-8]XXXXXXX", "_8747XXXXXXX"]
# (e) measures a 7-day catch-up: allowed without `run --force`.
[limits]
max_jump_days = 8
[dialplan]
include_file = "{root}/callquota.conf"
flavor = "freepbx17"
reload_command = ["sh", "-c", "echo >> {reloads}"]
asterisk_cli = []
"#,
                root = root.display(),
                url = env("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306"),
                reloads = reloads.display(),
            ),
        )
        .unwrap();
        Site {
            _dir: dir,
            root,
            config,
        }
    }

    fn add_users(&self, since: NaiveDate) {
        // A new state is created explicitly, as `user add` does (open never creates one).
        State::create_if_missing(&self.root.join("state.db")).unwrap();
        let mut state = State::open(&self.root.join("state.db")).unwrap();
        let now = Utc::now();
        for i in 0..USERS {
            let user = User {
                extension: Extension::parse(&(1000 + i).to_string()).unwrap(),
                name: format!("Agent {i}"),
                email: format!("agent{i}@example.com"),
                cc: String::new(),
                daily_limit_s: 600 + 60 * (i % 10),
                monthly_limit_s: None,
                direction_limits: Default::default(),
                direction_since: Default::default(),
                active: true,
                since,
            };
            state.insert_user(&user, now).unwrap();
        }
    }

    fn run(&self, now: &str) -> Duration {
        // BENCH_CALLQUOTA: another build's binary, to compare two versions
        // on the same tables in the same conditions.
        let binary = std::env::var("BENCH_CALLQUOTA").unwrap_or_else(|_| env!("CARGO_BIN_EXE_callquota").to_string());
        let started = Instant::now();
        let out = Command::new(binary)
            .arg("--config")
            .arg(&self.config)
            .args(["--now", now, "--allow-future", "run"])
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "run at {now}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    fn reloads(&self) -> usize {
        std::fs::read_to_string(self.root.join("reloads"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn save(&self, name: &str) {
        for file in ["state.db", "callquota.conf"] {
            std::fs::copy(self.root.join(file), self.root.join(format!("{name}.{file}"))).unwrap();
        }
    }

    fn restore(&self, name: &str) {
        for file in ["state.db", "callquota.conf"] {
            std::fs::copy(self.root.join(format!("{name}.{file}")), self.root.join(file)).unwrap();
        }
    }
}

fn day(offset: i64) -> String {
    let today = NaiveDate::parse_from_str(TODAY, "%Y-%m-%d").unwrap();
    (today + chrono::Duration::days(offset)).to_string()
}

fn peak_rss_kib() -> i64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    }
}

struct Row {
    rows: u64,
    seed: Duration,
    floor: Duration,
    client: Duration,
    run: Duration,
    close: Duration,
    catch_up: Duration,
    selects_per_run: u64,
    writes: usize,
    reloads: usize,
}

fn measure(rows: u64, reps: usize) -> Row {
    let db = prepare_cdr(rows);
    let site = Site::new(&db);
    // State open on D-7: a run on D catches up 7 missed days.
    site.add_users(NaiveDate::parse_from_str(&day(-7), "%Y-%m-%d").unwrap());
    site.run(&format!("{}T23:59:00", day(-7)));
    site.save("catch-up");
    site.run(&format!("{}T23:59:00", day(-1)));
    site.save("close");
    let now = format!("{TODAY}T23:59:59");
    site.run(&now);
    // The first run after that reads the closed day once more, past its
    // settle deadline (late rows that came while runs failed); the steady
    // state is every run after it.
    site.run(&now);

    // Warm the server's caches for every query alike.
    seed_query(&db);
    floor_query(&db);
    let seed = median((0..reps.min(5)).map(|_| seed_query(&db)).collect());
    let floor = median((0..reps).map(|_| floor_query(&db)).collect());

    let include = site.root.join("callquota.conf");
    let modified = std::fs::metadata(&include).unwrap().modified().unwrap();
    let reloads_before = site.reloads();
    let before = com_select();
    site.run(&now);
    let selects_per_run = com_select().saturating_sub(before + 1);
    // Side by side: each repetition times the run and the client floor
    // back to back, so a slower moment of the machine weighs on both.
    client_floor(&db);
    let (runs, clients): (Vec<Duration>, Vec<Duration>) =
        (0..reps).map(|_| (site.run(&now), client_floor(&db))).unzip();
    let (run, client) = (median(runs), median(clients));
    let writes = usize::from(std::fs::metadata(&include).unwrap().modified().unwrap() != modified);
    let reloads = site.reloads() - reloads_before;

    let close = median(
        (0..reps)
            .map(|_| {
                site.restore("close");
                site.run(&format!("{TODAY}T00:05:00"))
            })
            .collect(),
    );
    let catch_up = median(
        (0..reps)
            .map(|_| {
                site.restore("catch-up");
                site.run(&format!("{TODAY}T00:05:00"))
            })
            .collect(),
    );
    Row {
        rows,
        seed,
        floor,
        client,
        run,
        close,
        catch_up,
        selects_per_run,
        writes,
        reloads,
    }
}

/// Rendering and writing the include file for 1,000 users, in process.
fn include_cost(reps: usize) -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[cdr]\nurl = \"mysql://x@127.0.0.1/x\"\n[[direction]]\nname = \"m\"\npatterns = [\"_870[5780-2]XXXXXXX\", \"_8747XXXXXXX\"]\n\
         [dialplan]\ninclude_file = \"{}/callquota.conf\"\nflavor = \"freepbx17\"\n",
        dir.path().display()
    );
    let config = Config::parse(&text, Path::new("bench.toml")).unwrap();
    let access: Vec<(Extension, Access)> = (0..USERS)
        .map(|i| {
            let e = Extension::parse(&(1000 + i).to_string()).unwrap();
            (
                e,
                if i % 7 == 0 {
                    Access::Deny
                } else {
                    Access::Allow {
                        remaining_ms: 1000 * (i + 1),
                        allowance_ms: 1000 * (i + 1) + 60_000,
                        used_ms: 60_000,
                    }
                },
            )
        })
        .collect();
    let mut rendered = String::new();
    let render_time = median(
        (0..reps * 10)
            .map(|g| {
                let started = Instant::now();
                let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
                let days = Days {
                    directions: &[],
                    day,
                    today: &access,
                    tomorrow: &access,
                };
                rendered = render(
                    &config.dialplan.options(config.timezone.name()),
                    &config.paid,
                    &days,
                    g as u64,
                );
                started.elapsed()
            })
            .collect(),
    );
    let write_time = median(
        (0..reps * 10)
            .map(|_| {
                let started = Instant::now();
                write_atomically(&config.dialplan.include_file, &rendered).unwrap();
                started.elapsed()
            })
            .collect(),
    );
    (render_time, write_time)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list: nothing to list.
    }
    let sizes: Vec<u64> = env("BENCH_SIZES", "100k,1M").split(',').map(parse_size).collect();
    let reps: usize = env("BENCH_REPS", "7").parse().expect("BENCH_REPS");
    let mut c = connect(None);
    let version: String = c.query_first("SELECT VERSION()").unwrap().unwrap_or_default();
    let pool: u64 = c.query_first("SELECT @@innodb_buffer_pool_size").unwrap().unwrap_or(0);
    let started = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    println!("# callquota run cost, {started}");
    println!();
    println!(
        "MariaDB {version}, buffer pool {} MiB; {} CPUs; {reps} repetitions, medians; {USERS} users, {ROWS_PER_DAY} CDR rows a day.",
        pool / 1024 / 1024,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!();
    println!(
        "| CDR rows | (a) seed query | (b) floor | (b') client floor | (c) run | (d) day close | (e) 7-day catch-up | c/a | c/b | c/b' | SELECTs per run | no-op run: writes, reloads |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut results = Vec::new();
    for &rows in &sizes {
        let r = measure(rows, reps);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | 1/{:.0} | {:.2} | {:.2} | {} | {}, {} |",
            r.rows,
            ms(r.seed),
            ms(r.floor),
            ms(r.client),
            ms(r.run),
            ms(r.close),
            ms(r.catch_up),
            r.seed.as_secs_f64() / r.run.as_secs_f64(),
            r.run.as_secs_f64() / r.floor.as_secs_f64(),
            r.run.as_secs_f64() / r.client.as_secs_f64(),
            r.selects_per_run,
            r.writes,
            r.reloads
        );
        results.push(r);
    }
    println!();
    if let (Some(first), Some(last)) = (results.iter().find(|r| r.rows >= 1_000_000), results.last())
        && last.rows > first.rows
    {
        println!(
            "run time {} rows vs {} rows: {:.2}x (flat = within 1.20x)",
            last.rows,
            first.rows,
            last.run.as_secs_f64() / first.run.as_secs_f64()
        );
    }
    println!(
        "peak RSS of callquota (all runs): {:.1} MB",
        peak_rss_kib() as f64 / 1024.0
    );
    let (render_time, write_time) = include_cost(reps);
    println!(
        "include file for {USERS} users: render {}, atomic write {}",
        ms(render_time),
        ms(write_time)
    );
}
