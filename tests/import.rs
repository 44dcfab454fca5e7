//! `user import` from a real MariaDB holding FreePBX's `users` and
//! `userman_users` tables (tests/fixtures/freepbx-users-schema.sql), and from
//! CSV files.

mod common;

use common::*;
use mysql::prelude::Queryable;

const T: &str = "2026-11-26T10:00:00";

/// A FreePBX `asterisk` database of this test's own (dropped at the end),
/// and the site's config pointed at it.
struct FreePbx<'a> {
    site: &'a Site,
    db: String,
}

impl<'a> FreePbx<'a> {
    fn new(site: &'a Site) -> FreePbx<'a> {
        let db = format!("{}_fpbx", site.db);
        let mut conn = admin_conn();
        conn.query_drop(format!("CREATE DATABASE `{db}`")).unwrap();
        conn.query_drop(format!("USE `{db}`")).unwrap();
        conn.query_drop(include_str!("fixtures/freepbx-users-schema.sql"))
            .unwrap();
        let config = std::fs::read_to_string(&site.config).unwrap();
        site.write_config(&format!("{config}\n[freepbx]\nurl = \"{}/{db}\"\n", mysql_root_url()));
        FreePbx { site, db }
    }

    fn sql(&self, sql: &str) {
        let mut conn = admin_conn();
        conn.query_drop(format!("USE `{}`", self.db)).unwrap();
        conn.query_drop(sql).unwrap();
    }

    fn import(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["user", "import", "--freepbx"];
        all.extend_from_slice(args);
        self.site.at(T, &all)
    }
}

impl Drop for FreePbx<'_> {
    fn drop(&mut self) {
        let _ = admin_conn().query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.db));
    }
}

fn admin_conn() -> mysql::Conn {
    mysql::Conn::new(
        mysql::OptsBuilder::from_opts(mysql::Opts::from_url(&mysql_root_url()).unwrap()).prefer_socket(false),
    )
    .expect("MariaDB is required")
}

fn users(site: &Site) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&site.ok(T, &["user", "list", "--json"]))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn user(site: &Site, ext: &str) -> serde_json::Value {
    users(site)
        .into_iter()
        .find(|u| u["extension"] == ext)
        .unwrap_or_else(|| panic!("{ext} not imported"))
}

#[test]
fn imports_freepbx_users_with_odd_data_once() {
    let site = Site::new();
    let fpbx = FreePbx::new(&site);
    fpbx.sql(
        "INSERT INTO users (extension, name) VALUES \
         ('2055', 'Vasya ext'), ('2066', 'Asel ext'), ('2077', 'No userman row'), ('2088', 'Empty email'), \
         ('2099', 'Quotes'), ('20A1', 'Letters'), ('20*5', 'Star'), ('2100', 'Two userman rows')",
    );
    fpbx.sql(
        "INSERT INTO userman_users (username, default_extension, fname, lname, displayname, email) VALUES \
         ('vasya', '2055', 'Vasya', 'Pupkin', '', 'vasya@example.com'), \
         ('asel', '2066', 'Әсел', 'Нұрланқызы', 'Әсел Нұрланқызы', 'asel@example.kz'), \
         ('empty', '2088', 'E', 'Mail', NULL, ''), \
         ('quotes', '2099', '', '', 'Pupkin, Vasya \"the boss\"', NULL), \
         ('letters', '20A1', 'L', 'Etters', NULL, 'l@example.com'), \
         ('first', '2100', 'First', 'Row', NULL, 'first@example.com'), \
         ('second', '2100', 'Second', 'Row', NULL, 'second@example.com'), \
         ('nobody', 'none', 'No', 'Extension', NULL, 'x@example.com')",
    );
    // New extensions need a limit: nothing is imported without one.
    let out = fpbx.import(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("new extensions (2055, 2066, 2077, 2088, 2099, ...) need a limit"),
        "{}",
        stderr(&out)
    );
    assert!(users(&site).is_empty());

    let check = stdout(&site.at(T, &["check"]));
    assert!(
        check.contains("reachable (8 extensions for user import --freepbx)"),
        "{check}"
    );
    let dry = fpbx.import(&["--daily-limit", "30m", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let text = stdout(&dry);
    assert!(
        text.contains("add 2055 \"Vasya Pupkin\" <vasya@example.com>, daily limit 30m"),
        "{text}"
    );
    assert!(
        text.contains("add 2099 \"Pupkin, Vasya \\\"the boss\\\"\" <>, daily limit 30m"),
        "{text}"
    );
    assert!(
        text.contains("skip 20*5: extension \"20*5\" is not one callquota accepts"),
        "{text}"
    );
    assert!(
        text.ends_with("7 to add, 0 to change, 0 unchanged, 1 skipped (dry run: nothing changed)\n"),
        "{text}"
    );
    assert!(users(&site).is_empty(), "a dry run changes nothing");

    let out = fpbx.import(&["--daily-limit", "30m"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("imported: 7 to add, 0 to change, 0 unchanged, 1 skipped\n"));
    assert_eq!(user(&site, "2066")["name"], "Әсел Нұрланқызы");
    assert_eq!(user(&site, "2077")["name"], "No userman row");
    assert_eq!(user(&site, "2088")["email"], "");
    assert_eq!(
        user(&site, "2100")["email"],
        "first@example.com",
        "the first User Management row"
    );
    assert_eq!(user(&site, "20A1")["daily_limit_s"], 1800);
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event = 'user_added'"),
        7,
        "audited per user"
    );

    // Idempotent; then FreePBX renames one user, callquota's own settings stay.
    let again = fpbx.import(&[]);
    assert!(
        stdout(&again).ends_with("imported: 0 to add, 0 to change, 7 unchanged, 1 skipped\n"),
        "{}",
        stdout(&again)
    );
    site.ok(
        T,
        &[
            "user",
            "set",
            "2055",
            "--daily-limit",
            "1h",
            "--cc",
            "boss@example.com",
            "--disable",
        ],
    );
    fpbx.sql(
        "UPDATE userman_users SET displayname = 'V. Pupkin', email = 'v.pupkin@example.com' WHERE username = 'vasya'",
    );
    let refresh = fpbx.import(&["--only", "_205X"]);
    assert!(
        stdout(&refresh).contains(
            "change 2055: name \"Vasya Pupkin\" -> \"V. Pupkin\", email \"vasya@example.com\" -> \"v.pupkin@example.com\""
        ),
        "{}",
        stdout(&refresh)
    );
    let vasya = user(&site, "2055");
    assert_eq!(
        (&vasya["daily_limit_s"], &vasya["cc"], &vasya["active"]),
        (
            &serde_json::json!(3600),
            &serde_json::json!("boss@example.com"),
            &serde_json::json!(false)
        )
    );
}

#[test]
fn imports_five_thousand_extensions_in_one_transaction() {
    let site = Site::new();
    let fpbx = FreePbx::new(&site);
    fpbx.sql(
        "INSERT INTO users (extension, name) SELECT CONCAT('5', LPAD(seq, 4, '0')), CONCAT('User ', seq) FROM seq_0_to_4999",
    );
    fpbx.sql(
        "INSERT INTO userman_users (username, default_extension, displayname, email) \
         SELECT CONCAT('u', seq), CONCAT('5', LPAD(seq, 4, '0')), CONCAT('Person ', seq), CONCAT('u', seq, '@example.com') \
         FROM seq_0_to_4999",
    );
    let out = fpbx.import(&["--daily-limit", "30m"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("imported: 5000 to add, 0 to change, 0 unchanged, 0 skipped\n"));
    assert_eq!(site.count("SELECT COUNT(*) FROM users"), 5000);
    assert_eq!(user(&site, "54999")["email"], "u4999@example.com");
}

#[test]
fn freepbx_import_needs_its_section_and_a_reachable_database() {
    let site = Site::new();
    let out = site.at(T, &["user", "import", "--freepbx", "--daily-limit", "30m"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("needs a [freepbx] section"), "{}", stderr(&out));
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&format!(
        "{config}\n[freepbx]\nurl = \"mysql://nobody@127.0.0.1:1/asterisk\"\ntimeout_s = 2\n"
    ));
    let out = site.at(T, &["user", "import", "--freepbx", "--daily-limit", "30m"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot connect to the FreePBX database mysql://nobody@127.0.0.1:1/asterisk"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn csv_import_applies_everything_or_nothing() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "30m");
    let file = site.path("staff.csv");
    std::fs::write(
        &file,
        "extension,name,email,daily_limit,cc\n\
         2055,\"Pupkin, Vasya\",vasya@example.com,45m,boss@example.com\n\
         2066,Әсел Нұрланқызы,asel@example.kz,1h,\n\
         2077,Bad Limit,,soon,\n\
         20*8,Star,,1h,\n",
    )
    .unwrap();
    let out = site.at(T, &["user", "import", "--csv", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("line 4: daily_limit"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(users(&site).len(), 1, "nothing applied");

    std::fs::write(
        &file,
        "extension,name,email,daily_limit,cc\n\
         2055,\"Pupkin, Vasya\",vasya@example.com,45m,boss@example.com\n\
         2066,Әсел Нұрланқызы,asel@example.kz,1h,\n\
         20*8,Star,,1h,\n",
    )
    .unwrap();
    let out = site.at(T, &["user", "import", "--csv", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 4: extension \"20*8\" is not one callquota accepts"),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        &file,
        "extension,name,email,daily_limit,cc\n\
         2055,\"Pupkin, Vasya\",vasya@example.com,45m,boss@example.com\n\
         2066,Әсел Нұрланқызы,asel@example.kz,1h,\n",
    )
    .unwrap();
    let out = site.ok(T, &["user", "import", "--csv", file.to_str().unwrap()]);
    assert!(
        out.ends_with("imported: 1 to add, 1 to change, 0 unchanged, 0 skipped\n"),
        "{out}"
    );
    let vasya = user(&site, "2055");
    assert_eq!(
        (&vasya["name"], &vasya["daily_limit_s"], &vasya["cc"]),
        (
            &serde_json::json!("Pupkin, Vasya"),
            &serde_json::json!(2700),
            &serde_json::json!("boss@example.com")
        )
    );
    let again = site.ok(T, &["user", "import", "--csv", file.to_str().unwrap()]);
    assert!(
        again.ends_with("imported: 0 to add, 0 to change, 2 unchanged, 0 skipped\n"),
        "{again}"
    );
}
