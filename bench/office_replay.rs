//! Benchmark: a stretch of an office's paid calls replayed on the real test
//! Asterisk (22.10.1 with the FreePBX 17 shape, 20.20.1 with FreePBX 16),
//! with the live guard on and `run` every few seconds. See bench/README.md.
//! Run: `cargo bench --bench office_replay`.
//!
//! Each user places, one episode after another, single calls, back-to-back
//! calls, two calls at once, calls whose first trunk fails over, and calls
//! handed to a colleague's desk phone 2-5 s after they start (a blind
//! transfer, one episode in five); talk times are long enough that every
//! allowance runs out halfway through. The carrier side of the test PBX records each
//! leg's talk time (answer to hangup, by its own clock), billed per second
//! with each leg rounded up, as carriers bill; the replay reports:
//! - the seconds the carriers talked past each user's allowance (goal 0; the
//!   tolerance is 1 s per call, as the cap is applied when the bridge starts);
//! - the refusals of users who had time left (goal 0): a refusal while the
//!   user had no other call up (ringing, talking or transferred) and the
//!   carriers had billed less than the allowance minus 1 s;
//! - how far `run`'s figure is from the carriers' total, per user.
//!
//! BENCH_USERS (default 8), BENCH_SECONDS (default 150: how long users keep
//! starting episodes), BENCH_SEED (default 1) and BENCH_FLAVORS (default
//! `17,16`) change the replay.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::asterisk::{Flavor, Pbx};
use common::{MOBILE, MOBILE2, Site};

/// Each user's daily allowance in the replay.
const ALLOWANCE_S: i64 = 60;
/// Where transferred calls go: a colleague's desk phone, which answers.
const DESK: &str = "2099";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A small deterministic generator (xorshift64*), so a seed replays the same plan.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}

#[derive(Debug, Clone, Copy)]
enum Episode {
    Single,
    BackToBack,
    TwoAtOnce,
    Failover,
    Transfer { after_s: u64 },
}

fn pick(rng: &mut Rng) -> Episode {
    match rng.below(10) {
        0..=3 => Episode::Single,
        4 => Episode::BackToBack,
        5 => Episode::TwoAtOnce,
        6..=7 => Episode::Failover,
        _ => Episode::Transfer {
            after_s: rng.between(2, 5),
        },
    }
}

/// Whether `ext`'s phone has a call up (ringing or talking).
fn phone_busy(pbx: &Pbx, ext: &str) -> bool {
    let prefix = format!("Local/{ext}-");
    pbx.cli("core show channels concise")
        .lines()
        .any(|l| l.starts_with(&prefix) && l.contains("@phones-"))
}

fn wait_phone_idle(pbx: &Pbx, ext: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while phone_busy(pbx, ext) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The transfer key, pressed only if the call is still up (it may have been
/// refused or cut already).
fn transfer_if_up(pbx: &Pbx, ext: &str) {
    let channels = pbx.cli("core show channels concise");
    let phone = channels
        .lines()
        .filter_map(|l| l.split('!').next())
        .find(|c| c.starts_with(&format!("Local/{ext}-")) && c.contains("@phones-") && c.ends_with(";2"));
    if let Some(phone) = phone {
        let _ = pbx.ami(&[
            ("Action", "BlindTransfer"),
            ("Channel", phone),
            ("Context", "from-internal"),
            ("Exten", DESK),
        ]);
    }
}

fn user_plays(pbx: &Pbx, ext: &str, seed: u64, until: Instant) -> usize {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let number = |rng: &mut Rng| if rng.below(2) == 0 { MOBILE } else { MOBILE2 };
    let mut episodes = 0;
    std::thread::sleep(Duration::from_millis(rng.below(3000)));
    while Instant::now() < until {
        let talk = rng.between(4, 14) as u32;
        match pick(&mut rng) {
            Episode::Single => pbx.place(ext, number(&mut rng), talk),
            Episode::BackToBack => {
                pbx.place(ext, number(&mut rng), talk);
                wait_phone_idle(pbx, ext);
                pbx.place(ext, number(&mut rng), rng.between(4, 14) as u32);
            }
            Episode::TwoAtOnce => {
                pbx.place(ext, MOBILE, talk);
                pbx.place(ext, MOBILE2, rng.between(4, 14) as u32);
            }
            Episode::Failover => pbx.place_with_failover(ext, number(&mut rng), talk),
            Episode::Transfer { after_s } => {
                pbx.place(ext, number(&mut rng), talk + 10);
                std::thread::sleep(Duration::from_secs(after_s));
                transfer_if_up(pbx, ext);
            }
        }
        episodes += 1;
        wait_phone_idle(pbx, ext);
        std::thread::sleep(Duration::from_millis(rng.below(4000)));
    }
    episodes
}

/// What a carrier bills for a leg answered at `from` and hung up at `to`
/// (ms): per-second billing, each leg rounded up to the whole second.
fn bill_ms(from: i64, to: i64) -> i64 {
    ((to - from).max(0) + 999) / 1000 * 1000
}

/// A phone's call as the CDR has it: (extension, start ms, end ms, refused).
fn phone_calls(site: &Site) -> Vec<(String, i64, i64, bool)> {
    use mysql::prelude::Queryable;
    let mut conn = mysql::Conn::new(
        mysql::OptsBuilder::from_opts(mysql::Opts::from_url(&common::mysql_root_url()).expect("url"))
            .prefer_socket(false)
            .db_name(Some(&site.db)),
    )
    .expect("connect");
    conn.query_map(
        "SELECT channel, CAST(UNIX_TIMESTAMP(calldate) * 1000 AS SIGNED), duration, userfield FROM cdr \
         WHERE channel LIKE 'Local/%@phones-%;2'",
        |(channel, start, duration, cause): (String, i64, i64, String)| {
            let ext = channel
                .trim_start_matches("Local/")
                .split('-')
                .next()
                .unwrap_or("")
                .to_string();
            (ext, start, start + duration * 1000 + 999, cause.starts_with("21"))
        },
    )
    .expect("read cdr")
}

struct Outcome {
    flavor: Flavor,
    episodes: usize,
    carrier_legs: usize,
    over_ms: i64,
    over_users: usize,
    refusals: usize,
    wrongful_refusals: usize,
    max_run_gap_s: i64,
    carrier_total_s: f64,
}

fn replay(flavor: Flavor, users: usize, seconds: u64, seed: u64) -> Option<Outcome> {
    let site = Site::without_pbx();
    let pbx = Pbx::start_for_calls(&site, flavor)?;
    // Only the carrier's legs are paid (not the desk phone's Local legs).
    let config = std::fs::read_to_string(&site.config).expect("config");
    // The caller is warned 20 s before the cut: calls with more left run with
    // L(limit:warning), the others with a plain L(), as on a real day.
    site.write_config(
        &config
            .replace("trunk_channels = [\"Local/\"]", "trunk_channels = [\"Local/87\"]")
            .replace("[dialplan]\n", "[dialplan]\nwarn_before = \"20s\"\n"),
    );
    let exts: Vec<String> = (0..users).map(|i| format!("{}", 2001 + i)).collect();
    for ext in &exts {
        site.ok_now(&[
            "user",
            "add",
            ext,
            "--name",
            &format!("User {ext}"),
            "--daily-limit",
            &ALLOWANCE_S.to_string(),
        ]);
    }
    site.ok_now(&["run"]);
    pbx.cli(&format!("database put DESK {DESK} yes"));

    let until = Instant::now() + Duration::from_secs(seconds);
    let done = std::sync::atomic::AtomicBool::new(false);
    let episodes = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = site.strict_cmd().arg("run").output();
                std::thread::sleep(Duration::from_secs(4));
            }
        });
        let players: Vec<_> = exts
            .iter()
            .enumerate()
            .map(|(i, ext)| {
                let pbx = &pbx;
                scope.spawn(move || user_plays(pbx, ext, seed * 1000 + i as u64, until))
            })
            .collect();
        let episodes: usize = players.into_iter().map(|p| p.join().unwrap_or(0)).sum();
        pbx.phone_rows_after(0, 0, Duration::from_secs(180));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        episodes
    });
    site.ok_now(&["run"]);

    let legs = pbx.carrier_legs();
    let calls = phone_calls(&site);
    let status: serde_json::Value = serde_json::from_str(&site.ok_now(&["status", "--json"])).expect("status json");
    let allowance_ms = ALLOWANCE_S * 1000;
    let mut outcome = Outcome {
        flavor,
        episodes,
        carrier_legs: legs.len(),
        over_ms: 0,
        over_users: 0,
        refusals: 0,
        wrongful_refusals: 0,
        max_run_gap_s: 0,
        carrier_total_s: legs.iter().map(|(_, a, b)| bill_ms(*a, *b) as f64 / 1000.0).sum(),
    };
    let mut billed: BTreeMap<&str, (i64, usize)> = BTreeMap::new();
    for (caller, from, to) in &legs {
        let entry = billed.entry(caller.as_str()).or_default();
        entry.0 += bill_ms(*from, *to);
        entry.1 += 1;
    }
    for ext in &exts {
        let (total, count) = billed.get(ext.as_str()).copied().unwrap_or((0, 0));
        // Past the allowance, beyond the 1 s per call the cap may take to bite.
        let over = total - allowance_ms - 1000 * count as i64;
        if over > 0 {
            outcome.over_ms += over;
            outcome.over_users += 1;
            eprintln!("  {ext}: carriers billed {total} ms over {count} calls (allowance {allowance_ms} ms)");
        }
        let used = status
            .as_array()
            .and_then(|a| a.iter().find(|r| r["extension"] == ext.as_str()))
            .and_then(|r| r["used_s"].as_i64())
            .unwrap_or(-1);
        let gap = (used - total / 1000).abs();
        if gap > count as i64 {
            eprintln!("  {ext}: run charged {used} s, the carriers billed {total} ms over {count} calls");
        }
        outcome.max_run_gap_s = outcome.max_run_gap_s.max(gap);
    }
    for (i, (ext, at, _, refused)) in calls.iter().enumerate() {
        if !*refused {
            continue;
        }
        outcome.refusals += 1;
        let mine = |c: &str| c == ext.as_str();
        let other_up = calls
            .iter()
            .enumerate()
            .any(|(j, (e, from, to, _))| j != i && mine(e) && *from <= *at && *at <= *to)
            || legs.iter().any(|(c, from, to)| mine(c) && *from <= *at && *at <= *to);
        let billed_before: i64 = legs
            .iter()
            .filter(|(c, _, to)| mine(c) && *to < *at)
            .map(|(_, from, to)| bill_ms(*from, *to))
            .sum();
        if !other_up && billed_before < allowance_ms - 1000 {
            outcome.wrongful_refusals += 1;
            if outcome.wrongful_refusals <= 20 {
                eprintln!("  {ext}: refused at {at} with {billed_before} ms billed and no other call up");
            }
        }
    }
    Some(outcome)
}

fn main() {
    let users = env_or("BENCH_USERS", 8) as usize;
    let seconds = env_or("BENCH_SECONDS", 150);
    let seed = env_or("BENCH_SEED", 1);
    let flavors: Vec<Flavor> = std::env::var("BENCH_FLAVORS")
        .unwrap_or_else(|_| "17,16".into())
        .split(',')
        .filter_map(|f| match f.trim() {
            "17" => Some(Flavor::FreePbx17),
            "16" => Some(Flavor::FreePbx16),
            _ => None,
        })
        .collect();
    println!(
        "# office replay: {users} users, {ALLOWANCE_S} s a day each, warned 20 s before the cut, {seconds} s of episodes, seed {seed}, run every 4 s\n"
    );
    println!(
        "| Asterisk | episodes | carrier legs | carriers billed | seconds past allowances | users over | refusals | refusals with time left | max gap run vs carriers |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let started = Instant::now();
    for flavor in flavors {
        let Some(o) = replay(flavor, users, seconds, seed) else {
            eprintln!("no test Asterisk for {flavor:?} (tests/asterisk/build.sh)");
            std::process::exit(2);
        };
        println!(
            "| {} | {} | {} | {:.1} s | {:.1} s | {} | {} | {} | {} s |",
            o.flavor.version(),
            o.episodes,
            o.carrier_legs,
            o.carrier_total_s,
            o.over_ms as f64 / 1000.0,
            o.over_users,
            o.refusals,
            o.wrongful_refusals,
            o.max_run_gap_s
        );
    }
    println!("\n(took {:.0} s)", started.elapsed().as_secs_f64());
}
