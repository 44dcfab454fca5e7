//! Benchmark: what the live guard adds to a paid call, on the real test
//! Asterisk (22.10.1 with the FreePBX 17 shape, 20.20.1 with FreePBX 16).
//! See bench/README.md. Run: `cargo bench --bench live_guard`.
//!
//! Each mode runs the generated `[callquota-check]` (and, for a paid call,
//! what its hangup handler does) BENCH_CALLS times in a loop inside one
//! Asterisk channel; Asterisk's own clock times the loop. The loop's own cost
//! (a Gosub to an empty context) is measured in the same run and taken off.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::asterisk::{Flavor, Pbx};
use common::{LANDLINE, MOBILE, Site};

/// The modes, each a context the loop calls once per iteration.
fn bench_contexts(calls: u32, day: &str) -> String {
    format!(
        "\
#tryinclude callquota.conf

; Loop MODE-EXT: Gosub(bench-MODE,s,1(EXT)) {calls} times, timed by Asterisk's clock.
[bench]
exten => _[a-z].,1,Set(MODE=${{CUT(EXTEN,-,1)}})
 same => n,Set(USER=${{CUT(EXTEN,-,2)}})
 same => n,Set(i=0)
 same => n,Set(t0=${{STRFTIME(,,%s%6q)}})
 same => n(loop),GotoIf($[${{i}} >= {calls}]?done)
 same => n,Gosub(bench-${{MODE}},s,1(${{USER}}))
 same => n,Set(i=$[${{i}} + 1])
 same => n,Goto(loop)
 same => n(done),Set(DB(bench/${{EXTEN}})=${{t0}}:${{STRFTIME(,,%s%6q)}})
 same => n,Hangup()

[bench-nop]
exten => s,1,Return()

; A tracked user dials a number that is not paid.
[bench-nonpaid]
exten => s,1,Gosub(callquota-check,s,1(${{ARG1}},{LANDLINE}))
 same => n,Return()

; An untracked extension dials a paid number.
[bench-untracked]
exten => s,1,Gosub(callquota-check,s,1(9${{ARG1}},{MOBILE}))
 same => n,Return()

; A tracked user's paid call: the check (post-dial delay); the reservation
; is dropped again so every iteration finds the same allowance.
[bench-check]
exten => s,1,Gosub(callquota-check,s,1(${{ARG1}},{MOBILE}))
 same => n,GotoIf($[\"${{CALLQUOTA_RESERVED}}\" = \"\"]?done)
 same => n,Set(CHANNEL(hangup_handler_pop)=)
 same => n,Set(DB(callquota/{day}/${{ARG1}}/reserved)=0)
 same => n,Set(CALLQUOTA_RESERVED=)
 same => n(done),Return()

; The whole paid call: the check, then what its hangup handler does.
[bench-call]
exten => s,1,Gosub(callquota-check,s,1(${{ARG1}},{MOBILE}))
 same => n,GotoIf($[\"${{CALLQUOTA_RESERVED}}\" = \"\"]?done)
 same => n,Set(CHANNEL(hangup_handler_pop)=)
 same => n,Gosub(callquota-settle,s,1(${{ARG1}},${{CALLQUOTA_RESERVED}},{day}))
 same => n,Set(CALLQUOTA_RESERVED=)
 same => n(done),Return()
"
    )
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Bench<'a> {
    pbx: &'a Pbx,
    calls: u32,
}

impl Bench<'_> {
    /// Starts the loops `names` (MODE-EXT) at once; µs per iteration of each.
    fn loops(&self, names: &[String]) -> Vec<f64> {
        for name in names {
            self.pbx.cli(&format!("database del bench {name}"));
            let answer = self.pbx.ami(&[
                ("Action", "Originate"),
                ("Channel", &format!("Local/{name}@bench")),
                ("Context", "hold"),
                ("Exten", "s"),
                ("Priority", "1"),
                ("Async", "true"),
            ]);
            assert!(answer.contains("Success"), "originate: {answer}");
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        names
            .iter()
            .map(|name| {
                loop {
                    let value = self.pbx.cli(&format!("database get bench {name}"));
                    if let Some(stamps) = value.trim().strip_prefix("Value: ") {
                        let (t0, t1) = stamps.split_once(':').expect("t0:t1");
                        let (t0, t1): (f64, f64) = (t0.parse().expect("t0"), t1.parse().expect("t1"));
                        break (t1 - t0) / f64::from(self.calls);
                    }
                    assert!(Instant::now() < deadline, "the loop {name} did not finish");
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
            .collect()
    }

    /// The median of `reps` runs of one loop, in µs per iteration.
    fn median(&self, name: &str, reps: u32) -> f64 {
        let mut all: Vec<f64> = (0..reps).map(|_| self.loops(&[name.to_string()])[0]).collect();
        all.sort_by(f64::total_cmp);
        all[all.len() / 2]
    }
}

fn bench(flavor: Flavor, calls: u32, reps: u32) {
    let site = Site::without_pbx();
    let Some(pbx) = Pbx::start_for_calls(&site, flavor) else {
        eprintln!("no Asterisk sources in ../shared/asterisk/: the live guard benchmark needs them");
        std::process::exit(2);
    };
    let users: Vec<String> = (3000..3020).map(|e| e.to_string()).collect();
    for ext in users.iter().map(String::as_str).chain(["2055"]) {
        site.ok_now(&["user", "add", ext, "--name", "Bench", "--daily-limit", "8h"]);
    }
    site.ok_now(&["run"]);
    let day = chrono::Utc::now().format("%Y%m%d").to_string();
    pbx.set_custom(&bench_contexts(calls, &day));
    pbx.cli("dialplan reload");
    let b = Bench { pbx: &pbx, calls };

    let nop = b.median("nop-2055", reps);
    let modes = ["nonpaid", "untracked", "check", "call"];
    let live: Vec<f64> = modes.iter().map(|m| b.median(&format!("{m}-2055"), reps)).collect();
    // Twenty users' paid calls at the same moment, each in its own channel.
    let names: Vec<String> = users.iter().map(|u| format!("call-{u}")).collect();
    let mut together = b.loops(&names);
    together.sort_by(f64::total_cmp);
    let together_median = together[together.len() / 2];

    // The same check with the live guard off: the baseline.
    let text = std::fs::read_to_string(&site.config).expect("config");
    site.write_config(&text.replace("[dialplan]\n", "[dialplan]\nlive = false\n"));
    site.ok_now(&["run"]);
    let off = b.median("check-2055", reps) - nop;

    println!(
        "\nAsterisk {} ({}), {calls} iterations per loop, median of {reps}; µs per call, the loop's own {nop:.0} µs taken off",
        flavor.version(),
        flavor.config_name()
    );
    println!("{:<52} {:>10} {:>14}", "what runs", "µs", "vs live off");
    let row = |label: &str, us: f64| println!("{label:<52} {us:>10.0} {:>13.2}×", us / off);
    row("tracked paid call, check, live guard off (baseline)", off);
    row("tracked user, number not paid", live[0] - nop);
    row("untracked extension, paid number", live[1] - nop);
    row("tracked paid call, check (post-dial delay)", live[2] - nop);
    row("tracked paid call, check + hangup handler", live[3] - nop);
    row("same, 20 users at once (median per call)", together_median - nop);
    println!(
        "added post-dial delay of the live guard: {:.1} ms per paid call",
        (live[2] - nop - off) / 1000.0
    );
}

fn main() {
    // `cargo bench` passes --bench; a filter argument picks one flavor.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let calls = env_u32("BENCH_CALLS", 200);
    let reps = env_u32("BENCH_REPS", 3);
    for flavor in [Flavor::FreePbx17, Flavor::FreePbx16] {
        if filter.is_empty() || filter.iter().any(|f| flavor.config_name().contains(f.as_str())) {
            bench(flavor, calls, reps);
        }
    }
}
