//! Email notices against a real SMTP server (python3-aiosmtpd).

mod common;

use common::{Call, MOBILE, Site, SmtpSink, read_mail, stderr, stdout};

const T: &str = "2026-11-26T10:00:00";

fn site_with(sink: &SmtpSink, extra: &str) -> Site {
    let mail = sink.config();
    Site::with(|c| {
        c.push_str(&mail);
        c.push_str(extra);
    })
}

/// Like [`site_with`], with more keys in the [mail] section.
fn site_with_mail_keys(sink: &SmtpSink, keys: &str) -> Site {
    let site = site_with(sink, "");
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&config.replace(
        "[mail]\ntransport = \"smtp\"\n",
        &format!("[mail]\ntransport = \"smtp\"\n{keys}"),
    ));
    site
}

fn subjects(sink: &SmtpSink) -> Vec<String> {
    sink.messages()
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_ladder_sends_one_message_per_threshold_and_none_on_rerun() {
    let sink = SmtpSink::start();
    let site = site_with(&sink, "");
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    for (time, billsec) in [("09:00", 500), ("10:00", 400), ("11:00", 100)] {
        site.insert(&[Call::answered(
            "2055",
            MOBILE,
            &format!("2026-11-26 {time}:00"),
            billsec,
        )]);
        site.run(&format!("2026-11-26T{time}:30"));
        site.run(&format!("2026-11-26T{time}:35")); // a rerun sends nothing new
    }
    let mut got = subjects(&sink);
    got.sort();
    assert_eq!(
        got,
        vec![
            "Paid calls blocked: today's allowance is used up (2055)",
            "Paid calls: 50% of today's allowance used (2055)",
            "Paid calls: 90% of today's allowance used (2055)",
        ]
    );
    let m = &sink.messages()[0];
    assert_eq!(m["to"], "User 2055 <u2055@example.com>");
    assert!(m["message_id"].is_string(), "{m}");
    assert_eq!(site.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'"), 3);
    assert_eq!(site.count("SELECT COUNT(*) FROM audit WHERE event = 'notice_sent'"), 3);
}

#[test]
fn a_jump_past_every_threshold_sends_one_exhaustion_message() {
    let sink = SmtpSink::start();
    let site = site_with(&sink, "");
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 1030)]);
    site.run(T);
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["subject"],
        "Paid calls blocked: today's allowance is used up (2055)"
    );
    let body = messages[0]["body"].as_str().unwrap();
    assert!(
        body.contains("You have used 17m 10s of your 16m 40s of paid call time for 2026-11-26."),
        "{body}"
    );
}

#[test]
fn supervisors_get_a_copy() {
    let sink = SmtpSink::start();
    let site = site_with(&sink, "");
    let text = std::fs::read_to_string(&site.config).unwrap();
    site.write_config(&text.replace(
        "from = \"callquota@example.com\"\n",
        "from = \"callquota@example.com\"\ncc = [\"audit@example.com\"]\n",
    ));
    site.ok(
        T,
        &[
            "user",
            "add",
            "2055",
            "--name",
            "Vasya",
            "--email",
            "vasya@example.com",
            "--cc",
            "boss@example.com",
            "--daily-limit",
            "1000",
        ],
    );
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 600)]);
    site.run(T);
    let m = &sink.messages()[0];
    assert_eq!(m["cc"], "audit@example.com, boss@example.com");
    assert_eq!(m["to"], "Vasya <vasya@example.com>");
}

#[test]
fn utf8_names_and_templates_arrive_intact() {
    let sink = SmtpSink::start();
    let templates = "\n[mail.templates.50]\nsubject = \"Лимит звонков: {percent}% — {name}\"\nbody = \"Сәлеметсіз бе, {name}!\\nИзрасходовано {used} из {allowance}, осталось {remaining} ({day}).\\n\"\n";
    let site = site_with(&sink, templates);
    site.ok(
        T,
        &[
            "user",
            "add",
            "2055",
            "--name",
            "Әсел Нұрланқызы",
            "--email",
            "asel@example.kz",
            "--daily-limit",
            "1000",
        ],
    );
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 600)]);
    site.run(T);
    let m = &sink.messages()[0];
    assert_eq!(m["subject"], "Лимит звонков: 50% — Әсел Нұрланқызы");
    assert_eq!(
        m["body"],
        "Сәлеметсіз бе, Әсел Нұрланқызы!\nИзрасходовано 10m 00s из 16m 40s, осталось 6m 40s (2026-11-26).\n"
    );
    assert_eq!(m["to"], "Әсел Нұрланқызы <asel@example.kz>");
    assert_eq!(m["charset"], "utf-8");
}

#[test]
fn a_server_that_is_down_gets_the_notice_once_it_is_up() {
    let mut sink = SmtpSink::down();
    let site = site_with(&sink, "");
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 1000)]);
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("mail delivery failed") && err.contains(&format!("SMTP server 127.0.0.1:{}", sink.port)),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1);
    // The block did not wait for mail.
    assert!(site.include().contains("exten => 2055,1,Return(DENY)"));
    let pending: serde_json::Value =
        serde_json::from_str(&site.ok(T, &["mail", "list", "--pending", "--json"])).unwrap();
    assert_eq!(pending[0]["attempts"], 1);
    assert!(pending[0]["last_error"].as_str().unwrap().contains("127.0.0.1"));

    sink.up();
    site.run("2026-11-26T10:02:00"); // before the backoff: not retried yet
    assert_eq!(sink.messages().len(), 0);
    site.run("2026-11-26T10:06:00");
    site.run("2026-11-26T10:11:00");
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(site.count("SELECT attempts FROM outbox"), 2);
}

#[test]
fn a_rejected_recipient_is_given_up_and_logged_while_others_arrive() {
    let sink = SmtpSink::start();
    let site = site_with(&sink, "");
    site.ok(
        T,
        &[
            "user",
            "add",
            "2055",
            "--name",
            "A",
            "--email",
            "reject-me@example.com",
            "--daily-limit",
            "1000",
        ],
    );
    site.ok(
        T,
        &[
            "user",
            "add",
            "2066",
            "--name",
            "B",
            "--email",
            "b@example.com",
            "--daily-limit",
            "1000",
        ],
    );
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 600),
        Call::answered("2066", MOBILE, "2026-11-26 09:00:00", 600),
    ]);
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("recipient rejected"), "{}", stderr(&out));
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(site.count("SELECT COUNT(*) FROM outbox WHERE status = 'failed'"), 1);
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event = 'notice_given_up'"),
        1
    );
    site.run("2026-11-26T11:00:00"); // a given-up notice is not retried
    assert_eq!(sink.messages().len(), 1);
}

#[test]
fn the_dir_transport_writes_eml_files() {
    let site =
        Site::with(|c| c.push_str("\n[mail]\ntransport = \"dir\"\ndir = \"DIR\"\nfrom = \"callquota@example.com\"\n"));
    let dir = site.path("mail");
    std::fs::create_dir(&dir).unwrap();
    let text = std::fs::read_to_string(&site.config)
        .unwrap()
        .replace("\"DIR\"", &format!("{:?}", dir.display().to_string()));
    site.write_config(&text);
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 950)]);
    site.run(T);
    let messages = read_mail(&dir);
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["subject"],
        "Paid calls: 90% of today's allowance used (2055)"
    );
    assert!(stdout(&site.at(T, &["check"])).contains("is writable"));
}

#[test]
fn an_unknown_placeholder_is_a_config_error() {
    let sink = SmtpSink::start();
    let site = site_with(
        &sink,
        "\n[mail.templates.90]\nsubject = \"{nmae} reached {percent}%\"\n",
    );
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("mail.templates.90.subject: unknown placeholder {nmae}"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_user_without_email_is_limited_and_the_notice_skipped() {
    let sink = SmtpSink::start();
    let site = site_with(&sink, "");
    site.ok(
        T,
        &["user", "add", "2055", "--name", "No Mail", "--daily-limit", "1000"],
    );
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 1000)]);
    site.run(T);
    assert!(site.include().contains("2055,1,Return(DENY)"));
    assert_eq!(site.count("SELECT COUNT(*) FROM outbox WHERE status = 'skipped'"), 1);
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event = 'notice_skipped'"),
        1
    );
    assert!(sink.messages().is_empty());
}

#[test]
fn without_a_mail_section_notices_wait_and_runs_succeed() {
    let site = Site::new();
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 1000)]);
    site.run(T);
    assert_eq!(site.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"), 1);
    assert!(stdout(&site.at(T, &["check"])).contains("mail is off"));
    assert!(site.ok(T, &["mail", "list"]).contains("mail is off"));
}

#[test]
fn mail_test_and_flush() {
    let sink = SmtpSink::start();
    let site = site_with(&sink, "");
    let out = site.ok(T, &["mail", "test", "admin@example.com"]);
    assert!(out.contains("test message sent to admin@example.com"), "{out}");
    assert_eq!(subjects(&sink), vec!["callquota test message"]);
    let bad = site.at(T, &["mail", "test", "admin@example.com\r\nBcc: x@evil.com"]);
    assert_eq!(bad.status.code(), Some(2));
    // Flush delivers what a run queued while mail was failing (it needs a
    // state: only migrate, user add/import and a run create one).
    site.run(T);
    let out = site.ok(T, &["mail", "flush"]);
    assert!(out.contains("no notices pending"), "{out}");
    assert!(stdout(&site.at(T, &["check"])).contains(&format!("mail: SMTP server 127.0.0.1:{} answers", sink.port)));
}

#[test]
fn notices_are_given_up_after_max_attempts() {
    let sink = SmtpSink::down();
    let site = site_with(&sink, "");
    let text = std::fs::read_to_string(&site.config)
        .unwrap()
        .replace("[mail]\n", "[mail]\nmax_attempts = 2\n");
    site.write_config(&text);
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 600)]);
    assert_eq!(site.at("2026-11-26T10:00:00", &["run"]).status.code(), Some(1));
    assert_eq!(site.at("2026-11-26T10:30:00", &["run"]).status.code(), Some(1));
    assert_eq!(
        site.count("SELECT COUNT(*) FROM outbox WHERE status = 'failed' AND attempts = 2"),
        1
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event = 'notice_given_up'"),
        1
    );
    site.run("2026-11-26T11:00:00");
}

#[test]
fn starttls_and_implicit_tls_work_with_a_private_ca() {
    for (implicit, security) in [(false, "starttls"), (true, "tls")] {
        let (sink, ca) = SmtpSink::start_tls(implicit);
        let mail = sink.config().replace(
            "security = \"none\"",
            &format!("security = \"{security}\"\nca_file = {:?}", ca.display().to_string()),
        );
        let site = Site::with(|c| c.push_str(&mail));
        site.ok(T, &["mail", "test", "admin@example.com"]);
        assert_eq!(subjects(&sink), vec!["callquota test message"], "{security}");
        // Without the CA the certificate is not trusted: no silent downgrade.
        let untrusted = sink
            .config()
            .replace("security = \"none\"", &format!("security = \"{security}\""));
        let site = Site::with(|c| c.push_str(&untrusted));
        let out = site.at(T, &["mail", "test", "admin@example.com"]);
        assert_eq!(out.status.code(), Some(1), "{security}: {}", stdout(&out));
        assert_eq!(sink.messages().len(), 1);
    }
}

#[test]
fn addresses_are_checked_at_entry_and_stored_as_servers_take_them() {
    let sink = SmtpSink::start();
    let site = site_with(&sink, "");
    let add = |ext: &str, email: &str| {
        site.at(
            T,
            &[
                "user",
                "add",
                ext,
                "--name",
                "X",
                "--email",
                email,
                "--daily-limit",
                "100",
            ],
        )
    };
    let out = add("2055", "тест@пример.рф");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("non-ASCII letters before the @"),
        "{}",
        stderr(&out)
    );
    let out = site.at(
        T,
        &[
            "user",
            "add",
            "2055",
            "--name",
            "=?utf-8?q?CEO?=",
            "--daily-limit",
            "100",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // A homograph domain is stored in punycode, where the odd letter shows.
    let out = add("2066", "bob@ex\u{0430}mple.com");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("email stored as bob@xn--"), "{}", stdout(&out));
    assert_eq!(site.count("SELECT COUNT(*) FROM users WHERE email LIKE 'bob@xn--%'"), 1);
}

#[test]
fn an_unusable_stored_address_gives_up_its_own_notice_only() {
    let sink = SmtpSink::start();
    let site = site_with(&sink, "");
    for ext in ["2055", "2066", "2077"] {
        site.add_user(T, ext, "1000");
    }
    // As an older release stored it, before addresses were checked at entry.
    site.state()
        .execute("UPDATE users SET email = 'тест@пример.рф' WHERE extension = '2055'", [])
        .unwrap();
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 600),
        Call::answered("2066", MOBILE, "2026-11-26 09:00:00", 600),
        Call::answered("2077", MOBILE, "2026-11-26 09:00:00", 600),
    ]);
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(1), "the admin hears of it once");
    assert!(stderr(&out).contains("non-ASCII"), "{}", stderr(&out));
    assert_eq!(sink.messages().len(), 2, "the others arrive in the same run");
    assert_eq!(
        site.count("SELECT COUNT(*) FROM outbox WHERE status = 'failed' AND extension = '2055'"),
        1
    );
    assert_eq!(site.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"), 0);
    site.run("2026-11-26T10:05:00");
}

#[test]
fn a_grant_while_mail_is_down_says_applied_and_warns_about_mail() {
    let sink = SmtpSink::down();
    let site = site_with(&sink, "");
    site.add_user(T, "2055", "100");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 120)]);
    assert_eq!(site.at(T, &["run"]).status.code(), Some(1), "the notice cannot go out");
    assert!(site.include().contains("exten => 2055,1,Return(DENY)"));
    // 2066 stays blocked: their notice still holds (2055's, lifted by the
    // grant, is dropped, not tried).
    site.add_user(T, "2066", "100");
    site.insert(&[Call::answered("2066", MOBILE, "2026-11-26 09:00:00", 120)]);
    assert_eq!(site.at(T, &["run"]).status.code(), Some(1));
    // Ten minutes on, the notices are due again and the server is still down.
    let out = site.at("2026-11-26T10:10:00", &["grant", "2055", "10m"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("granted 10m 00s to 2055 for 2026-11-26; applied"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("not applied") && !stderr(&out).contains("run failed"));
    assert!(
        stderr(&out).contains("warning: mail delivery failed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(site.allows_ms("2055"), Some(580_000));
    assert_eq!(site.count("SELECT COUNT(*) FROM grants"), 1, "granted once");
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit WHERE event = 'notice_dropped' AND extension = '2055'"),
        1
    );
}

#[test]
fn a_refused_sender_keeps_every_notice_pending_until_the_relay_is_fixed() {
    let sink = SmtpSink::start();
    let site = site_with(&sink, "");
    for ext in ["2055", "2066"] {
        site.add_user(T, ext, "100");
    }
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 120),
        Call::answered("2066", MOBILE, "2026-11-26 09:00:00", 120),
    ]);
    std::fs::write(sink.dir.path().join("refuse-sender"), "").unwrap();
    let out = site.at(T, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("the sender was refused"), "{}", stderr(&out));
    assert_eq!(
        site.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"),
        2,
        "nothing given up"
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM outbox WHERE attempts > 0"),
        1,
        "the loop stopped at the first"
    );
    // The relay is fixed: both notices arrive, once.
    std::fs::remove_file(sink.dir.path().join("refuse-sender")).unwrap();
    site.ok("2026-11-26T10:10:00", &["mail", "flush"]);
    assert_eq!(sink.messages().len(), 2);
    assert_eq!(site.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'"), 2);
}

#[test]
fn a_refused_copy_address_does_not_stop_the_notice() {
    let sink = SmtpSink::start();
    let site = site_with(&sink, "");
    site.ok(
        T,
        &[
            "user",
            "add",
            "2055",
            "--name",
            "A",
            "--email",
            "a@example.com",
            "--cc",
            "reject-boss@example.com",
            "--daily-limit",
            "100",
        ],
    );
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 120)]);
    site.run(T);
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(site.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'"), 1);
}

/// The daily digest: once a day closes, one mail to [mail] digest_to with
/// the day's table (plain text and the same view in HTML), grants and who
/// made them; exactly once, across reruns and a crash after the day closed.
#[test]
fn the_daily_digest_goes_once_per_closed_day() {
    let sink = SmtpSink::start();
    let site = site_with_mail_keys(&sink, "digest_to = [\"boss@example.com\", \"cfo@example.com\"]\n");
    site.add_user("2026-11-26T08:00:00", "2055", "10m");
    site.add_user("2026-11-26T08:00:00", "2066", "30m");
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 700),
        Call::answered("2066", MOBILE, "2026-11-26 10:00:00", 300),
    ]);
    site.run("2026-11-26T11:00:00");
    let out = site
        .cmd()
        .env("SUDO_USER", "alice")
        .args([
            "--now",
            "2026-11-26T12:00:00",
            "grant",
            "2066",
            "5m",
            "--reason",
            "big <deal>",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    site.run("2026-11-26T23:00:00");
    let digests = |sink: &SmtpSink| -> Vec<serde_json::Value> {
        sink.messages()
            .into_iter()
            .filter(|m| m["subject"].as_str().unwrap_or("").starts_with("Paid calls on "))
            .collect()
    };
    assert!(digests(&sink).is_empty(), "no digest before the day closes");

    // The day closes, but the run dies right after committing: the digest is
    // queued with the close and goes with the next run, once.
    let crash = site
        .cmd()
        .env("CALLQUOTA_CRASH_AT", "after-state-commit")
        .args(["--now", "2026-11-27T00:05:00", "run"])
        .output()
        .unwrap();
    assert!(!crash.status.success());
    assert!(digests(&sink).is_empty());
    site.run("2026-11-27T00:10:00");
    site.run("2026-11-27T00:15:00");
    site.run("2026-11-27T09:00:00");
    let got = digests(&sink);
    assert_eq!(got.len(), 1, "exactly one digest: {got:?}");
    let d = &got[0];
    assert_eq!(
        d["subject"],
        "Paid calls on 2026-11-26: 16m 40s used of 45m 00s, 1 blocked"
    );
    assert_eq!(d["to"], "boss@example.com, cfo@example.com");
    assert_eq!(d["content_type"], "multipart/alternative");
    let body = d["body"].as_str().unwrap();
    assert!(
        body.contains("2055     User 2055                      11m 40s       10m 00s    116%  11:00"),
        "blocked by the 11:00 run: {body}"
    );
    assert!(body.contains("  12:00 2066 +5m 00s: big <deal> (by alice)"), "{body}");
    let html = d["html"].as_str().unwrap();
    assert!(html.contains("+5m 00s: big &lt;deal&gt; (by alice)"), "{html}");
    assert!(
        html.contains("<td align=\"right\" style=\"padding:4px 8px\">116%</td>"),
        "{html}"
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM outbox WHERE kind = 'digest' AND status = 'sent'"),
        1
    );
    let list = site.ok("2026-11-27T09:00:00", &["mail", "list"]);
    assert!(list.contains("digest"), "{list}");
}

/// `[mail] language = "ru" | "kk"`: the notices and the digest are written in
/// that language, durations and dates in its usual form, with no English
/// left (every Latin word must be a name, an address or "callquota").
#[test]
fn notices_and_digests_speak_russian_and_kazakh() {
    for (code, day, used) in [
        ("ru", "26.11.2026", "27 мин 50 с"),
        ("kk", "26.11.2026", "27 мин 50 сек"),
    ] {
        let sink = SmtpSink::start();
        let site = site_with_mail_keys(
            &sink,
            &format!("language = \"{code}\"\ndigest_to = [\"boss@example.com\"]\n"),
        );
        site.ok(
            "2026-11-26T08:00:00",
            &[
                "user",
                "add",
                "2055",
                "--name",
                "Әсел Нұрланқызы",
                "--email",
                "asel@example.kz",
                "--daily-limit",
                "30m",
            ],
        );
        for (time, billsec) in [("09:00", 900), ("10:00", 770), ("11:00", 200)] {
            site.insert(&[Call::answered(
                "2055",
                MOBILE,
                &format!("2026-11-26 {time}:00"),
                billsec,
            )]);
            site.run(&format!("2026-11-26T{time}:30"));
        }
        let grant = site
            .cmd()
            .env("SUDO_USER", "admin")
            .args([
                "--now",
                "2026-11-26T12:00:00",
                "grant",
                "2055",
                "5m",
                "--reason",
                "клиент",
                "--by",
                "Ержан",
            ])
            .output()
            .unwrap();
        assert!(grant.status.success(), "{}", stderr(&grant));
        site.run("2026-11-27T00:05:00");
        let messages = sink.messages();
        assert_eq!(messages.len(), 4, "3 notices and the digest: {messages:?}");
        let mut texts = String::new();
        for m in &messages {
            for field in ["subject", "body"] {
                texts.push_str(m[field].as_str().unwrap_or(""));
                texts.push('\n');
            }
            if let Some(html) = m["html"].as_str() {
                // The text of the page, without its tags.
                let mut inside = false;
                for c in html.chars() {
                    match c {
                        '<' => inside = true,
                        '>' => inside = false,
                        c if !inside => texts.push(c),
                        _ => {}
                    }
                }
            }
        }
        let mut left = texts.clone();
        for allowed in ["callquota", "asel@example.kz", "boss@example.com", "admin"] {
            left = left.replace(allowed, "");
        }
        let english: Vec<&str> = left
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| w.len() > 1)
            .collect();
        assert!(english.is_empty(), "{code}: untranslated {english:?} in:\n{texts}");
        assert!(texts.contains(day), "{code}: the day as {day}:\n{texts}");
        assert!(texts.contains(used), "{code}: durations as {used}:\n{texts}");
    }
}

/// A server down at the run: the notice waits for its retry time. `mail
/// list` says when that is, and `mail flush` (the admin's "send now") does
/// not wait for it; a run still does.
#[test]
fn mail_flush_sends_a_notice_waiting_for_its_retry_now() {
    let mut sink = SmtpSink::down();
    let site = site_with(&sink, "");
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 600)]);
    assert_eq!(site.at(T, &["run"]).status.code(), Some(1));
    let list = site.ok("2026-11-26T10:01:00", &["mail", "list"]);
    assert!(
        list.contains("NEXT ATTEMPT") && list.contains("2026-11-26 10:05"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&site.ok("2026-11-26T10:01:00", &["mail", "list", "--json"])).unwrap();
    assert_eq!(json[0]["next_attempt_at"], "2026-11-26T05:05:00Z", "{json}");
    sink.up();
    site.run("2026-11-26T10:01:00"); // a run keeps to the backoff
    assert_eq!(sink.messages().len(), 0);
    let out = site.ok("2026-11-26T10:01:30", &["mail", "flush"]);
    assert!(out.contains("1 notice(s) sent"), "{out}");
    assert_eq!(
        subjects(&sink),
        vec!["Paid calls: 50% of today's allowance used (2055)"]
    );
    let list = site.ok("2026-11-26T10:02:00", &["mail", "list"]);
    assert!(list.contains(" sent ") && !list.contains("10:05"), "{list}");
    assert!(
        site.ok("2026-11-26T10:02:00", &["mail", "flush"])
            .contains("no notices pending")
    );
}

/// A "blocked until tomorrow" notice waiting while the server was down is
/// not sent once a grant has unblocked its user: it is dropped, and the
/// audit log says so. One whose user stays blocked with other figures is
/// rewritten to them; one whose user was disabled is dropped.
#[test]
fn a_notice_that_no_longer_fits_the_state_is_dropped_or_rewritten() {
    let mut sink = SmtpSink::down();
    let site = site_with(&sink, "");
    for ext in ["2055", "2066", "2077"] {
        site.add_user(T, ext, "100");
    }
    site.insert(&[
        Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 120),
        Call::answered("2066", MOBILE, "2026-11-26 09:00:00", 120),
        Call::answered("2077", MOBILE, "2026-11-26 09:00:00", 120),
    ]);
    assert_eq!(site.at(T, &["run"]).status.code(), Some(1));
    assert_eq!(site.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"), 3);
    // Before the retry time: the grants' runs do not try the mail.
    site.ok("2026-11-26T10:01:00", &["grant", "2055", "10m"]); // unblocked
    site.ok("2026-11-26T10:01:00", &["grant", "2066", "10s"]); // still blocked: 2m of 1m 50s
    site.ok("2026-11-26T10:01:00", &["user", "set", "2077", "--disable"]);
    sink.up();
    let out = site.ok("2026-11-26T10:02:00", &["mail", "flush"]);
    assert!(out.contains("1 notice(s) sent") && out.contains("2 dropped"), "{out}");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["to"], "User 2066 <u2066@example.com>");
    let body = messages[0]["body"].as_str().unwrap();
    assert!(body.contains("2m 00s of your 1m 50s"), "{body}");
    assert_eq!(
        site.count("SELECT allowance_s FROM outbox WHERE extension = '2066' AND status = 'sent'"),
        110
    );
    let log = site.ok("2026-11-26T10:03:00", &["log", "--event", "notice_dropped"]);
    assert!(log.contains("2055") && log.contains("lowered the level to 0%"), "{log}");
    assert!(log.contains("2077") && log.contains("the user is disabled"), "{log}");
    let log = site.ok("2026-11-26T10:03:00", &["log", "--event", "notice_rewritten"]);
    assert!(
        log.contains("2066") && log.contains("used 2m 00s of 1m 40s -> 2m 00s of 1m 50s"),
        "{log}"
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM outbox WHERE status = 'skipped' AND last_error LIKE '%user is disabled%'"),
        1
    );
    // Nothing is left to send, and nothing is sent twice.
    site.ok("2026-11-26T10:30:00", &["mail", "flush"]);
    site.ok("2026-11-26T10:30:00", &["run"]);
    assert_eq!(sink.messages().len(), 1);
}

/// A notice still waiting when a later one about the same day is queued says
/// less than the truth: only the later one goes out.
#[test]
fn a_notice_overtaken_by_a_later_one_is_dropped() {
    let mut sink = SmtpSink::down();
    let site = site_with(&sink, "");
    site.add_user("2026-11-26T08:00:00", "2055", "1000");
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 09:00:00", 600)]);
    assert_eq!(site.at(T, &["run"]).status.code(), Some(1));
    site.insert(&[Call::answered("2055", MOBILE, "2026-11-26 10:00:00", 500)]);
    sink.up();
    site.run("2026-11-26T10:20:00");
    assert_eq!(
        subjects(&sink),
        vec!["Paid calls blocked: today's allowance is used up (2055)"]
    );
    let log = site.ok("2026-11-26T10:21:00", &["log", "--event", "notice_dropped"]);
    assert!(log.contains("50% notice #1 not sent: notice #2 is newer"), "{log}");
}
