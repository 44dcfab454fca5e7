//! A real, private Asterisk for a test: its own directories, control socket
//! and CDR (into the test's own MariaDB `cdr` table through
//! `cdr_adaptive_odbc` and unixODBC, as on FreePBX), with a dialplan that
//! reproduces FreePBX's outbound path: `from-internal` → `outbound-allroutes`
//! → `outrt-1` → the trunk dial macro → the pre-dial hook → `Dial` of the
//! trunk with `${DIAL_TRUNK_OPTIONS}`, and FreePBX's stub hook after the
//! `#tryinclude`d callquota file.
//!
//! Phones and the carrier are Local channels: a call is placed over AMI (the
//! instance's own port) by originating `Local/EXT-NUMBER-TALK@phones`, whose `;2` half sets the
//! caller ID and enters `from-internal`; the "trunk" is
//! `Local/NUMBER@carrier`, which answers and talks TALK seconds. Their helper
//! legs write no CDR rows, so one call writes the rows a SIP phone would.
//!
//! The binaries come from `tests/asterisk/build.sh` (cached per tarball).
//! Without the Asterisk sources the tests print one loud line and return,
//! except under `CI=true`, where that fails them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Site, mysql_root_url};

/// FreePBX 17 (Asterisk 22, the hook entered with Gosub) or 16 (Asterisk 20, Macro).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    FreePbx17,
    FreePbx16,
}

impl Flavor {
    pub fn version(self) -> &'static str {
        match self {
            Flavor::FreePbx17 => "22.10.1",
            Flavor::FreePbx16 => "20.20.1",
        }
    }

    pub fn config_name(self) -> &'static str {
        match self {
            Flavor::FreePbx17 => "freepbx17",
            Flavor::FreePbx16 => "freepbx16",
        }
    }
}

/// The install prefix of a built Asterisk, building it on first use; `None`
/// (after one loud line) where the sources are absent outside CI.
pub fn asterisk_prefix(version: &str) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk/build.sh");
    let out = Command::new(&script)
        .arg(version)
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/asterisk/build.sh");
    if out.status.code() == Some(3) {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "the Asterisk sources (../shared/asterisk/) are missing: the real-Asterisk tests cannot run in CI"
        );
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            eprintln!(
                "!!! SKIPPED: real-Asterisk tests (the other tests use the fake): no Asterisk sources in \
                 ../shared/asterisk/ (see tests/asterisk/build.sh)"
            )
        });
        return None;
    }
    assert!(out.status.success(), "tests/asterisk/build.sh {version} failed");
    let line = String::from_utf8_lossy(&out.stdout);
    let prefix = line
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{version} ")))
        .unwrap_or_else(|| panic!("build.sh printed no prefix for {version}: {line}"));
    Some(PathBuf::from(prefix.trim()))
}

fn odbc_driver() -> PathBuf {
    [
        "/usr/lib/x86_64-linux-gnu/odbc/libmaodbc.so",
        "/usr/lib/aarch64-linux-gnu/odbc/libmaodbc.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("the MariaDB ODBC driver (odbc-mariadb) is missing; tests/asterisk/build.sh installs it")
}

pub struct Pbx {
    pub flavor: Flavor,
    prefix: PathBuf,
    conf: PathBuf,
    child: Option<Child>,
    db: String,
    log: PathBuf,
    ami_port: u16,
    root: PathBuf,
}

/// How long a parked call waits in the test's parking lot (extension 70).
pub const PARK_S: u32 = 60;

/// The FreePBX outbound path around the pre-dial hook, per flavor.
fn dialplan(flavor: Flavor) -> String {
    let trunk_macro = match flavor {
        Flavor::FreePbx17 => {
            "\
[macro-dialout-trunk]
exten => s,1,Set(DIAL_TRUNK=${ARG1})
 same => n,Set(DIAL_NUMBER=${ARG2})
 same => n,Set(OUTNUM=${ARG2})
 same => n,Set(DIAL_TRUNK_OPTIONS=T)
 same => n(gocall),Gosub(macro-dialout-trunk-predial-hook,s,1())
 same => n,GotoIf($[\"${PREDIAL_HOOK_RET}\" = \"BYPASS\"]?bypass)
 same => n,Dial(Local/${OUTNUM}@carrier-${DIAL_TRUNK},300,${DIAL_TRUNK_OPTIONS})
 same => n,GotoIf($[\"${DIALSTATUS}\" = \"ANSWER\"]?answered)
 same => n(bypass),Return()
 same => n(answered),Hangup()

; A route with two trunks: the second is tried when the first fails.
[outrt-1]
exten => _X.,1,Gosub(sub-user-callerid,s,1())
 same => n,Set(_ROUTEID=1)
 same => n,Set(_ROUTENAME=all)
 same => n,Gosub(macro-dialout-trunk,s,1(1,${EXTEN},,off))
 same => n,Gosub(macro-dialout-trunk,s,1(2,${EXTEN},,off))
 same => n,Hangup()

[func-apply-sipheaders]
exten => s,1,Return()

; FreePBX 17's stub, after extensions_custom.conf: a hook loaded before it wins.
[macro-dialout-trunk-predial-hook]
exten => s,1,Return()
"
        }
        Flavor::FreePbx16 => {
            "\
[macro-dialout-trunk]
exten => s,1,Set(DIAL_TRUNK=${ARG1})
 same => n,Set(DIAL_NUMBER=${ARG2})
 same => n,Set(OUTNUM=${ARG2})
 same => n,Set(DIAL_TRUNK_OPTIONS=T)
 same => n(gocall),Macro(dialout-trunk-predial-hook,)
 same => n,GotoIf($[\"${PREDIAL_HOOK_RET}\" = \"BYPASS\"]?bypass,1)
 same => n,Dial(Local/${OUTNUM}@carrier-${DIAL_TRUNK},300,${DIAL_TRUNK_OPTIONS}b(func-apply-sipheaders^s^1,(1)))
 same => n,GotoIf($[\"${DIALSTATUS}\" = \"ANSWER\"]?answered,1)
 same => n,MacroExit()
exten => answered,1,Hangup()
exten => bypass,1,MacroExit()

; A route with two trunks: the second is tried when the first fails.
[outrt-1]
exten => _X.,1,Gosub(sub-user-callerid,s,1())
 same => n,Set(_ROUTEID=1)
 same => n,Set(_ROUTENAME=all)
 same => n,Macro(dialout-trunk,1,${EXTEN},,off)
 same => n,Macro(dialout-trunk,2,${EXTEN},,off)
 same => n,Hangup()

[func-apply-sipheaders]
exten => s,1,Return()

; FreePBX 16's stub, after extensions_custom.conf: a hook loaded before it wins.
[macro-dialout-trunk-predial-hook]
exten => s,1,MacroExit()
"
        }
    };
    format!(
        "\
[general]
static=yes
writeprotect=no

#include extensions_custom.conf

; A phone: Local/EXT-NUMBER-TALK@phones. Its ;2 half is the caller (its CDR
; row is the one FreePBX writes for a SIP phone).
[phones]
exten => _X.,1,Set(CHANNEL(hangup_handler_push)=hangup-cause,s,1)
 same => n,Set(CALLERID(num)=${{CUT(EXTEN,-,1)}})
; The phone's language, as FreePBX sets it per extension (LANG/EXT in AstDB here).
 same => n,ExecIf($[\"${{DB(LANG/${{CALLERID(num)}})}}\" != \"\"]?Set(CHANNEL(language)=${{DB(LANG/${{CALLERID(num)}})}}))
 same => n,Set(__TALK=${{CUT(EXTEN,-,3)}})
 same => n,Set(__FAILOVER=${{CUT(EXTEN,-,4)}})
; A fifth field PRE: the PBX answers the phone and waits PRE seconds before the route (an IVR).
 same => n,ExecIf($[\"${{CUT(EXTEN,-,5)}}\" != \"\"]?Answer())
 same => n,ExecIf($[\"${{CUT(EXTEN,-,5)}}\" != \"\"]?Wait(${{CUT(EXTEN,-,5)}}))
; A sixth field XFER: where the phone's transfer key (*2, pressed by [hold-atxfer]) sends the call.
 same => n,ExecIf($[\"${{CUT(EXTEN,-,6)}}\" != \"\"]?Set(TRANSFER_EXTEN=${{CUT(EXTEN,-,6)}}))
 same => n,Set(TRANSFER_CONTEXT=from-internal)
; NUMBER redirect: the phone waits to be sent (AMI Redirect) to a dialled
; string that a Goto could not carry (a SIP URI's user part with commas).
 same => n,GotoIf($[\"${{CUT(EXTEN,-,2)}}\" = \"redirect\"]?redirect)
 same => n,Goto(from-internal,${{CUT(EXTEN,-,2)}},1)
 same => n(redirect),Wait(20)
 same => n,Hangup()

; The phone's hang-up cause lands in its CDR row's userfield (for the tests),
; followed by /SUCCESS or /FAILED when a Playback ran on the phone's channel.
[hangup-cause]
exten => s,1,Set(CDR(userfield)=${{HANGUPCAUSE}}${{IF($[\"${{PLAYBACKSTATUS}}\" = \"\"]?:/${{PLAYBACKSTATUS}})}})
 same => n,Return()

; The originating half holds the line until the call ends; it writes no row.
[hold]
exten => s,1,Set(CDR_PROP(disable)=1)
 same => n,Wait(3600)
 same => n,Hangup()

; The phone's user presses the transfer key 3 s into the call, talks with
; the new party for 4 s and hangs up, which completes the attended transfer.
[hold-atxfer]
exten => s,1,Set(CDR_PROP(disable)=1)
 same => n,Wait(3)
 same => n,SendDTMF(*2)
 same => n,Wait(4)
 same => n,Hangup()

; A four-digit number is an extension (ext-local); anything else goes to the
; outbound routes, included as FreePBX does (so the dialled string, commas and
; all, is the route's EXTEN: no Goto splits it).
[from-internal]
; A conference room (FreePBX's conferences module dials ConfBridge the same way).
exten => 8300,1,ConfBridge(8300,quiet_bridge,quiet_user)
exten => _XXXX,1,Goto(ext-local,${{EXTEN}},1)
; The site's own dialplan (feature codes) comes first, as in FreePBX.
include => from-internal-custom
include => parkedcalls
include => outbound-allroutes

; A parked call nobody picked up hangs up (FreePBX would ring the parker).
[parked-timeout]
exten => _X.,1,Hangup()

; FreePBX's macro-user-callerid, which each route runs first: AMPUSER and the
; CDR's cnum are the extension, or its CID Num Alias (AMPUSER/EXT/cidnum).
[sub-user-callerid]
exten => s,1,Set(AMPUSER=${{CALLERID(num)}})
 same => n,ExecIf($[\"${{DB(AMPUSER/${{AMPUSER}}/cidnum)}}\" != \"\"]?Set(CALLERID(num)=${{DB(AMPUSER/${{AMPUSER}}/cidnum)}}))
 same => n,Set(CDR(cnum)=${{CALLERID(num)}})
 same => n,Return()

[outbound-allroutes]
include => outrt-1

; FreePBX's sub-dial-one for extension EXTEN, reduced to forwards: the first
; extension a call reaches is EXTTOCALL (inherited); with CF/EXTEN set in
; AstDB the call goes on to that number through Local/NUMBER@from-internal/n,
; marked with DIVERSION_REASON, as FreePBX does when a ring timer is set; with
; FM/EXTEN (follow-me) the same without DIVERSION_REASON; with DESK/EXTEN a
; desk phone answers. Otherwise nobody answers.
[ext-local]
exten => _XXXX,1,ExecIf($[\"${{EXTTOCALL}}\" = \"\"]?Set(__EXTTOCALL=${{EXTEN}}))
 same => n,GotoIf($[\"${{DB(CF/${{EXTEN}})}}\" = \"\"]?absent)
 same => n,Set(__DIVERSION_REASON=unconditional)
 same => n,Dial(Local/${{DB(CF/${{EXTEN}})}}@from-internal/n,300)
 same => n,Hangup()
 same => n(absent),GotoIf($[\"${{DB(FM/${{EXTEN}})}}\" = \"\"]?desk)
; Follow-me: the external number is rung through a Local channel, no DIVERSION_REASON.
 same => n,Dial(Local/${{DB(FM/${{EXTEN}})}}@from-internal/n,300)
 same => n,Hangup()
 same => n(desk),GotoIf($[\"${{DB(DESK/${{EXTEN}})}}\" = \"\"]?busy)
 same => n,Set(__TRANSFER_CONTEXT=from-internal)
; XFER/EXT = NUMBER: where the desk phone's attended transfer goes (FreePBX's
; phones dial it; here Asterisk's TRANSFER_EXTEN stands for those digits).
 same => n,ExecIf($[\"${{DB(XFER/${{EXTEN}})}}\" != \"\"]?Set(__TRANSFER_EXTEN=${{DB(XFER/${{EXTEN}})}}))
 same => n,Dial(Local/${{EXTEN}}-desk@desk/n,300,t)
 same => n,Hangup()
 same => n(busy),Busy(5)

; A desk phone that answers and stays on the line (for transfers); its channel
; is named Local/EXT-desk@desk-..., so its device is EXT, as PJSIP/EXT-... is.
[desk]
exten => _X.,1,Set(CDR_PROP(disable)=1)
 same => n,Answer()
 same => n,GotoIf($[\"${{DB(XFER/${{CUT(EXTEN,-,1)}})}}\" = \"\"]?hold)
; With an attended transfer set up (XFER/EXT): press the transfer key (*2),
; talk with the new party for 6 s, hang up, which completes the transfer.
 same => n,Wait(2)
 same => n,SendDTMF(*2)
 same => n,Wait(6)
 same => n,Hangup()
 same => n(hold),Wait(3600)
 same => n,Hangup()

; Trunk 1 is congested for a call placed with FAILOVER=1; trunk 2 always works.
; A carrier connects the digits of whatever it is sent (a SIP URI's `,` or `(` included).
[carrier-1]
exten => _X.,1,GotoIf($[\"${{FAILOVER}}\" = \"1\"]?down)
 same => n,Goto(carrier,${{FILTER(0-9,${{EXTEN}})}},1)
 same => n(down),Set(CDR_PROP(disable)=1)
 same => n,Congestion(1)

[carrier-2]
exten => _X.,1,Goto(carrier,${{FILTER(0-9,${{EXTEN}})}},1)

; The carrier: answers, talks TALK seconds, hangs up; writes no row of its own.
; TALK 0: busy. TALK rN: rings N seconds, then gives up unanswered (cause 19).
; What it bills lands in AstDB: carrier/UNIQUEID = CALLER:ANSWERED MS:HANGUP MS.
[carrier]
exten => _X.,1,Set(CDR_PROP(disable)=1)
 same => n,ExecIf($[\"${{TALK}}\" = \"0\"]?Busy(5))
 same => n,GotoIf($[\"${{TALK:0:1}}\" = \"r\"]?ring)
 same => n,Answer()
 same => n,Set(BILL_FROM=${{STRFTIME(,,%s%3q)}})
 same => n,Set(CHANNEL(hangup_handler_push)=carrier-bill,s,1)
 same => n,Wait(${{TALK}})
 same => n,Hangup()
 same => n(ring),Ringing()
 same => n,Wait(${{TALK:1}})
 same => n,Hangup(19)

[carrier-bill]
exten => s,1,Set(DB(carrier/${{UNIQUEID}})=${{CALLERID(num)}}:${{BILL_FROM}}:${{STRFTIME(,,%s%3q)}})
 same => n,Return()

{trunk_macro}"
    )
}

impl Pbx {
    /// Starts a private Asterisk for `site` (whose `asterisk/` directory is
    /// its config directory) and points the site's config at it. `None` when
    /// the tests must skip (no sources, not CI).
    pub fn start(site: &Site, flavor: Flavor) -> Option<Pbx> {
        let prefix = asterisk_prefix(flavor.version())?;
        let root = site.path("pbx");
        for sub in ["lib", "spool", "run", "log", "agi", "odbc"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir pbx");
        }
        let etc = site.path("asterisk");
        let conf = etc.join("asterisk.conf");
        let write = |name: &str, text: String| std::fs::write(etc.join(name), text).expect("write pbx config");
        write(
            "asterisk.conf",
            format!(
                "[directories]\nastetcdir => {etc}\nastmoddir => {prefix}/lib/asterisk/modules\nastvarlibdir => {root}/lib\n\
                 astdbdir => {root}/lib\nastkeydir => {root}/lib\nastdatadir => {prefix}/var/lib/asterisk\n\
                 astagidir => {root}/agi\nastspooldir => {root}/spool\nastrundir => {root}/run\nastlogdir => {root}/log\n\
                 astsbindir => {prefix}/sbin\n\n[options]\ncache_record_files = no\n\n\
                 ; the service user of the cron-like tests runs the CLI too\n[files]\nastctlpermissions = 0666\n",
                etc = etc.display(),
                prefix = prefix.display(),
                root = root.display()
            ),
        );
        let ami_port = super::free_port();
        write(
            "manager.conf",
            format!(
                "[general]\nenabled = yes\nport = {ami_port}\nbindaddr = 127.0.0.1\n\n[callquota-test]\nsecret = test\n\
                 read = all\nwrite = all\n"
            ),
        );
        write(
            "modules.conf",
            "[modules]\nautoload = yes\nnoload => res_musiconhold.so\n".into(),
        );
        // A conference room without prompts (the test build has no sounds).
        write(
            "confbridge.conf",
            "[general]\n[quiet_bridge]\ntype = bridge\n[quiet_user]\ntype = user\nquiet = yes\n\
             announce_only_user = no\n"
                .into(),
        );
        // A parking lot as FreePBX's parking module makes one: 70 parks, the
        // call waits in 71-79 until picked up or PARK_S seconds go by.
        write(
            "res_parking.conf",
            format!(
                "[general]\n[default]\nparkext => 70\nparkpos => 71-79\ncontext => parkedcalls\n\
                 parkingtime => {PARK_S}\ncomebacktoorigin = no\ncomebackcontext = parked-timeout\n"
            ),
        );
        write(
            "logger.conf",
            // verbose(3): the prompts each channel plays ("<CHANNEL> Playing 'FILE...'").
            "[general]\n[logfiles]\nmessages.log => notice,warning,error,verbose(3)\n".into(),
        );
        write(
            "cdr.conf",
            "[general]\nenable = yes\nunanswered = yes\nbatch = no\n".into(),
        );
        write(
            "cdr_adaptive_odbc.conf",
            "[callquota]\nconnection = cdrdb\ntable = cdr\nalias start => calldate\n".into(),
        );
        let opts = mysql::Opts::from_url(&mysql_root_url()).expect("CALLQUOTA_TEST_MYSQL_URL");
        write(
            "res_odbc.conf",
            format!(
                "[cdrdb]\nenabled => yes\ndsn => callquota-test\nusername => {}\npassword => {}\npre-connect => yes\n",
                opts.get_user().unwrap_or("root"),
                opts.get_pass().unwrap_or("")
            ),
        );
        std::fs::write(
            root.join("odbc/odbc.ini"),
            format!(
                "[callquota-test]\nDriver = {}\nServer = 127.0.0.1\nPort = {}\nDatabase = {}\n",
                odbc_driver().display(),
                opts.get_tcp_port(),
                site.db
            ),
        )
        .expect("write odbc.ini");
        std::fs::write(root.join("odbc/odbcinst.ini"), "").expect("write odbcinst.ini");
        // The desk phones' transfer key.
        write(
            "features.conf",
            "[general]\ntransferdigittimeout = 2\n\n[featuremap]\natxfer => *2\n".into(),
        );
        // FreePBX's own extensions_custom.conf has an empty [from-internal-custom].
        write(
            "extensions_custom.conf",
            "#tryinclude callquota.conf\n\n[from-internal-custom]\n".into(),
        );
        write("extensions.conf", dialplan(flavor));

        let mut pbx = Pbx {
            flavor,
            prefix,
            conf,
            child: None,
            db: site.db.clone(),
            log: root.join("log/messages.log"),
            ami_port,
            root,
        };
        // Every Asterisk install has its core prompts; the refusal speaks with them.
        pbx.install_prompts();
        pbx.boot();
        site.write_config(&pbx.site_config(site));
        Some(pbx)
    }

    /// Starts the Asterisk process and waits until it is fully booted.
    fn boot(&mut self) {
        let child = Command::new(self.prefix.join("sbin/asterisk"))
            .arg("-C")
            .arg(&self.conf)
            .args(["-f", "-n", "-q"])
            .env("TZ", "UTC")
            .env("ODBCSYSINI", self.root.join("odbc"))
            .env("ODBCINI", self.root.join("odbc/odbc.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start asterisk");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .try_cli("core waitfullybooted")
            .is_some_and(|o| o.contains("fully booted"))
        {
            assert!(
                Instant::now() < deadline,
                "Asterisk did not boot; see {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `kill -9` of Asterisk (calls in progress die without hangup handlers
    /// or CDR rows), then a fresh start on the same directories and AstDB.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.root.join("run/asterisk.ctl"));
        let _ = std::fs::remove_file(self.root.join("run/asterisk.pid"));
        self.boot();
    }

    /// Starts a PBX for tests that place calls: the site's day follows UTC
    /// (Asterisk's clock for `calldate`) and the Local-channel "trunk" counts.
    pub fn start_for_calls(site: &Site, flavor: Flavor) -> Option<Pbx> {
        let pbx = Pbx::start(site, flavor)?;
        let text = std::fs::read_to_string(&site.config).expect("config");
        site.write_config(
            &text
                .replace("timezone = \"Asia/Almaty\"", "timezone = \"UTC\"")
                .replacen("timeout_s = 5", "timeout_s = 5\ntrunk_channels = [\"Local/\"]", 1),
        );
        Some(pbx)
    }

    /// The generation of callquota's file that this Asterisk has loaded.
    pub fn loaded_generation(&self) -> Option<u64> {
        callquota::core::dialplan::generation_in(&self.try_cli("dialplan show stamp@callquota-stamp")?)
    }

    /// The site's config, with this Asterisk as its reload and CLI command.
    fn site_config(&self, site: &Site) -> String {
        let asterisk = self.prefix.join("sbin/asterisk");
        let cli = format!(
            "\"{}\", \"-C\", \"{}\", \"-rx\"",
            asterisk.display(),
            self.conf.display()
        );
        let text = std::fs::read_to_string(&site.config).expect("config");
        let start = text.find("reload_command =").expect("reload_command");
        let end = text[start..].find("reload_timeout_s").expect("reload_timeout_s") + start;
        let mut text = text.clone();
        text.replace_range(
            start..end,
            &format!("reload_command = [{cli}, \"module reload pbx_config.so\"]\nasterisk_cli = [{cli}]\n"),
        );
        text.replace(
            "flavor = \"freepbx17\"",
            &format!("flavor = \"{}\"", self.flavor.config_name()),
        )
    }

    /// Makes `name` (e.g. `custom/deny`) a sound this Asterisk can play: one
    /// second of silence as μ-law, in the test build's own sounds folder.
    pub fn install_sound(&self, name: &str) {
        self.install_sound_at(name, 1);
    }

    /// Like [`Pbx::install_sound`], `seconds` long, at `name` below the
    /// sounds folder (e.g. `ru/vm-youhave` for a language's own prompt).
    fn install_sound_at(&self, name: &str, seconds: usize) {
        let path = self.prefix.join("var/lib/asterisk/sounds").join(format!("{name}.ulaw"));
        if path.exists() {
            return;
        }
        let dir = path.parent().expect("a sounds folder");
        std::fs::create_dir_all(dir).expect("create the sounds folder");
        // Written beside it and renamed: tests running at once see all or nothing.
        let temp = tempfile::NamedTempFile::new_in(dir).expect("temp sound");
        std::fs::write(temp.path(), vec![0xFFu8; 8000 * seconds]).expect("write the sound");
        temp.persist(&path).expect("install the sound");
    }

    /// The prompts a caller hears (a second of silence each, in the
    /// language-less folder Asterisk falls back to): Asterisk's own
    /// "you have N minutes M seconds" and the refusal's words.
    pub fn install_prompts(&self) {
        self.install_prompts_at("", 1);
    }

    /// The same prompts in `language`'s own folder, `seconds` long each (so a
    /// call's duration tells which folder Asterisk played from).
    pub fn install_prompts_in(&self, language: &str, seconds: usize) {
        self.install_prompts_at(&format!("{language}/"), seconds);
    }

    fn install_prompts_at(&self, folder: &str, seconds: usize) {
        let words = [
            "feature-not-avail-line",
            "vm-youhave",
            "queue-minutes",
            "queue-seconds",
            "vm-goodbye",
            "vm-and",
            "cannot-complete-as-dialed",
        ];
        let numbers = (0..=20).chain([30, 40, 50]).map(|n| format!("digits/{n}"));
        for name in words.into_iter().map(String::from).chain(numbers) {
            self.install_sound_at(&format!("{folder}{name}"), seconds);
        }
    }

    /// The languages the prompts played since the log was `from` bytes long were asked in.
    pub fn languages_since(&self, from: usize) -> Vec<String> {
        let log = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(log.get(from..).unwrap_or_default())
            .lines()
            .filter(|l| l.contains("> Playing '"))
            .filter_map(|l| Some(l.rsplit_once("(language '")?.1.split('\'').next()?.to_string()))
            .collect()
    }

    /// How much Asterisk has logged so far (see [`Pbx::played_since`]).
    pub fn log_len(&self) -> usize {
        std::fs::metadata(&self.log).map(|m| m.len() as usize).unwrap_or(0)
    }

    /// The prompts played since the log was `from` bytes long: (channel, file without extension).
    pub fn played_since(&self, from: usize) -> Vec<(String, String)> {
        let log = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(log.get(from..).unwrap_or_default())
            .lines()
            .filter_map(|l| {
                // `[date] VERBOSE[tid][C-id] file.c: <CHANNEL> Playing 'FILE.FORMAT' (language 'en')`
                let (head, rest) = l.split_once("> Playing '")?;
                let channel = head.rsplit_once('<')?.1;
                let file = rest.split('\'').next()?;
                let file = file.rsplit_once('.').map_or(file, |(f, _)| f);
                Some((channel.to_string(), file.to_string()))
            })
            .collect()
    }

    fn try_cli(&self, command: &str) -> Option<String> {
        let out = Command::new(self.prefix.join("sbin/asterisk"))
            .arg("-C")
            .arg(&self.conf)
            .args(["-rx", command])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn cli(&self, command: &str) -> String {
        self.try_cli(command)
            .unwrap_or_else(|| panic!("asterisk -rx {command:?} failed"))
    }

    /// Runs `command` until its output satisfies `done` or `within` passes,
    /// and returns the last output: what a hangup handler writes lands a
    /// moment after the CDR row that ends [`Pbx::call`].
    pub fn cli_until(&self, command: &str, within: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let out = self.cli(command);
            if done(&out) || Instant::now() >= deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Replaces `extensions_custom.conf` (the site's own file that wires ours in).
    pub fn set_custom(&self, text: &str) {
        let path = self.conf.with_file_name("extensions_custom.conf");
        std::fs::write(path, text).expect("write extensions_custom.conf");
    }

    /// Rows in this test's CDR table.
    pub fn cdr_rows(&self) -> Vec<CdrRow> {
        use mysql::prelude::Queryable;
        let mut conn = mysql::Conn::new(
            mysql::OptsBuilder::from_opts(mysql::Opts::from_url(&mysql_root_url()).expect("url"))
                .prefer_socket(false)
                .db_name(Some(&self.db)),
        )
        .expect("connect");
        conn.query_map(
            "SELECT cnum, dst, channel, dstchannel, disposition, billsec, lastdata, userfield, duration FROM cdr \
             ORDER BY calldate, sequence",
            |(cnum, dst, channel, dstchannel, disposition, billsec, lastdata, cause, duration)| CdrRow {
                cnum,
                dst,
                channel,
                dstchannel,
                disposition,
                billsec,
                lastdata,
                cause,
                duration,
            },
        )
        .expect("read cdr")
    }

    /// Extension `ext` dials `number`; the carrier talks `talk_s` seconds.
    /// Returns once the call has ended and its CDR row is written.
    pub fn call(&self, ext: &str, number: &str, talk_s: u32) -> CdrRow {
        self.call_phone(
            &format!("{ext}-{number}-{talk_s}"),
            Duration::from_secs(u64::from(talk_s) + 30),
        )
    }

    /// Like [`Pbx::call`], but the carrier rings `ring_s` seconds and gives up unanswered.
    pub fn call_unanswered(&self, ext: &str, number: &str, ring_s: u32) -> CdrRow {
        self.call_phone(
            &format!("{ext}-{number}-r{ring_s}"),
            Duration::from_secs(u64::from(ring_s) + 30),
        )
    }

    /// Like [`Pbx::call`], but the PBX answers the phone `pre_s` seconds
    /// before it dials out (an IVR or a DISA in front of the route).
    pub fn call_answered_first(&self, ext: &str, number: &str, talk_s: u32, pre_s: u32) -> CdrRow {
        self.call_phone(
            &format!("{ext}-{number}-{talk_s}--{pre_s}"),
            Duration::from_secs(u64::from(talk_s + pre_s) + 30),
        )
    }

    /// `ext` dials `dialled` exactly as given (commas, quotes, backslashes):
    /// its phone is sent there by AMI Redirect, as a SIP phone's request URI
    /// lands in `from-internal`. The carrier talks `talk_s` seconds.
    pub fn call_dialling(&self, ext: &str, dialled: &str, talk_s: u32) -> CdrRow {
        let phone = format!("{ext}-redirect-{talk_s}");
        let channel_prefix = format!("Local/{phone}@phones-");
        self.call_phone_with(&phone, Duration::from_secs(u64::from(talk_s) + 30), || {
            self.originate(&phone);
            let deadline = Instant::now() + Duration::from_secs(10);
            let channel = loop {
                let channels = self.cli("core show channels concise");
                if let Some(c) = channels
                    .lines()
                    .filter_map(|l| l.split('!').next())
                    .find(|c| c.starts_with(&channel_prefix) && c.ends_with(";2"))
                {
                    break c.to_string();
                }
                assert!(Instant::now() < deadline, "no phone {phone}:\n{channels}");
                std::thread::sleep(Duration::from_millis(100));
            };
            let answer = self.ami(&[
                ("Action", "Redirect"),
                ("Channel", &channel),
                ("Context", "from-internal"),
                ("Exten", dialled),
                ("Priority", "1"),
            ]);
            assert!(answer.contains("Success"), "redirect: {answer}\n{}", self.diagnostics());
        })
    }

    fn call_phone(&self, phone: &str, within: Duration) -> CdrRow {
        self.call_phone_with(phone, within, || self.originate(phone))
    }

    fn call_phone_with(&self, phone: &str, within: Duration, start: impl FnOnce()) -> CdrRow {
        let before = self.cdr_rows().len();
        start();
        let deadline = Instant::now() + within;
        let ours = format!("Local/{phone}@phones-");
        // When the channels are gone, the ;2 row may still be on its way to
        // MySQL (the backend writes each row on its own): it is waited for a
        // few seconds before the ;1 row stands in for it.
        let mut gone_at: Option<Instant> = None;
        loop {
            let new: Vec<CdrRow> = self
                .cdr_rows()
                .into_iter()
                .skip(before)
                .filter(|r| r.channel.starts_with(&ours))
                .collect();
            if gone_at.is_none() && !self.cli("core show channels concise").contains(&ours) {
                gone_at = Some(Instant::now());
            }
            // The phone's ;2 leg is the caller; a ;1 row appears only when nothing answered.
            if let (Some(gone), false) = (gone_at, new.is_empty()) {
                if let Some(phone) = new.iter().find(|r| r.channel.ends_with(";2")) {
                    return phone.clone();
                }
                if gone.elapsed() > Duration::from_secs(5) {
                    return new[0].clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "the call {phone} wrote no CDR row\n{}",
                self.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts a call whose carrier rings `ring_s` seconds unanswered; returns at once.
    pub fn place_ringing(&self, ext: &str, number: &str, ring_s: u32) {
        self.originate(&format!("{ext}-{number}-r{ring_s}"));
    }

    /// The desk phone of `ext` (answering calls to it) blind-transfers its
    /// caller to `number` (AMI BlindTransfer, as a phone's transfer key does).
    pub fn blind_transfer(&self, ext: &str, number: &str) {
        let channels = self.cli("core show channels concise");
        let desk = channels
            .lines()
            .filter_map(|l| l.split('!').next())
            .find(|c| c.starts_with(&format!("Local/{ext}-desk@desk-")) && c.ends_with(";1"))
            .unwrap_or_else(|| panic!("no desk phone of {ext} on a call:\n{channels}"))
            .to_string();
        let answer = self.ami(&[
            ("Action", "BlindTransfer"),
            ("Channel", &desk),
            ("Context", "from-internal"),
            ("Exten", number),
        ]);
        assert!(
            answer.contains("Success"),
            "blind transfer: {answer}\n{}",
            self.diagnostics()
        );
    }

    /// The phone of `ext`, on a call it placed, hands that call to `number`
    /// (AMI BlindTransfer of the phone's channel, as its transfer key does):
    /// the other party (e.g. the carrier) goes on with `number`.
    pub fn transfer_caller(&self, ext: &str, number: &str) {
        let channels = self.cli("core show channels concise");
        let phone = channels
            .lines()
            .filter_map(|l| l.split('!').next())
            .find(|c| c.starts_with(&format!("Local/{ext}-")) && c.contains("@phones-") && c.ends_with(";2"))
            .unwrap_or_else(|| panic!("no call of {ext}'s phone:\n{channels}"))
            .to_string();
        let answer = self.ami(&[
            ("Action", "BlindTransfer"),
            ("Channel", &phone),
            ("Context", "from-internal"),
            ("Exten", number),
        ]);
        assert!(answer.contains("Success"), "transfer: {answer}\n{}", self.diagnostics());
    }

    /// The caller of `ext`'s call in progress hangs up (AMI Hangup of its phone leg).
    pub fn hang_up_caller(&self, ext: &str) {
        let answer = self.ami(&[("Action", "Hangup"), ("Channel", &format!("/^Local/{ext}-.*;2$/"))]);
        assert!(answer.contains("Success"), "hangup: {answer}\n{}", self.diagnostics());
    }

    /// Logs in to this instance's AMI, sends one action, returns its response.
    pub fn ami(&self, action: &[(&str, &str)]) -> String {
        use std::io::{BufRead, BufReader, Write};
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.ami_port)).expect("connect to AMI");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        let mut banner = String::new();
        reader.read_line(&mut banner).expect("AMI banner");
        let mut response = |fields: &[(&str, &str)]| -> String {
            let mut text: String = fields.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
            text.push_str("\r\n");
            writer.write_all(text.as_bytes()).expect("AMI write");
            // The next block that is a response (events may come in between).
            loop {
                let mut answer = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    answer.push_str(&line);
                }
                if answer.is_empty() || answer.starts_with("Response:") {
                    break answer;
                }
            }
        };
        let login = response(&[
            ("Action", "Login"),
            ("Username", "callquota-test"),
            ("Secret", "test"),
            ("Events", "off"),
        ]);
        assert!(login.contains("Success"), "AMI login: {login}");
        let answer = response(action);
        let _ = response(&[("Action", "Logoff")]);
        answer
    }

    /// What Asterisk says about itself, for failure messages.
    pub fn diagnostics(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!(
            "--- messages.log (tail)\n{}\n--- odbc show\n{}\n--- cdr show status\n{}\n--- channels\n{}",
            tail.join("\n"),
            self.try_cli("odbc show").unwrap_or_default(),
            self.try_cli("cdr show status").unwrap_or_default(),
            self.try_cli("core show channels").unwrap_or_default()
        )
    }

    /// What the carrier billed, call by call: (caller, answered at ms,
    /// hung up at ms), from its own clock, whatever callquota thinks.
    pub fn carrier_legs(&self) -> Vec<(String, i64, i64)> {
        self.cli("database show carrier")
            .lines()
            .filter(|l| l.starts_with("/carrier/"))
            .filter_map(|l| {
                let value = l.split_once(':')?.1.trim();
                let mut parts = value.split(':');
                let caller = parts.next()?.to_string();
                let from = parts.next()?.parse().ok()?;
                let to = parts.next()?.parse().ok()?;
                Some((caller, from, to))
            })
            .collect()
    }

    /// Starts a call and returns at once (for calls at the same time).
    pub fn place(&self, ext: &str, number: &str, talk_s: u32) {
        self.originate(&format!("{ext}-{number}-{talk_s}"));
    }

    /// A call whose first trunk is congested, so the route fails over to the second.
    pub fn place_with_failover(&self, ext: &str, number: &str, talk_s: u32) {
        self.originate(&format!("{ext}-{number}-{talk_s}-1"));
    }

    /// `ext` calls `number` (the carrier talks `talk_s`), and 3 s in hands
    /// the call to `to` with the transfer key (an attended transfer); returns at once.
    pub fn place_and_attended_transfer(&self, ext: &str, number: &str, talk_s: u32, to: &str) {
        self.originate_into(&format!("{ext}-{number}-{talk_s}---{to}"), "hold-atxfer");
    }

    fn originate(&self, phone: &str) {
        self.originate_into(phone, "hold");
    }

    fn originate_into(&self, phone: &str, context: &str) {
        let answer = self.ami(&[
            ("Action", "Originate"),
            ("Channel", &format!("Local/{phone}@phones")),
            ("Context", context),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Async", "true"),
        ]);
        assert!(answer.contains("Success"), "originate: {answer}");
    }

    /// Waits until `calls` phone rows (the callers' `;2` legs) follow the
    /// first `before` CDR rows and no call is up; returns them, in order.
    /// A call's rows reach MySQL one by one after its channels are gone (a
    /// transferred call's first row long before its last), so the calls must
    /// have been over for a moment before the rows are taken.
    pub fn phone_rows_after(&self, before: usize, calls: usize, within: Duration) -> Vec<CdrRow> {
        const SETTLE: Duration = Duration::from_secs(2);
        let deadline = Instant::now() + within;
        let mut idle_since: Option<Instant> = None;
        loop {
            idle_since = match (self.active_calls(), idle_since) {
                (0, Some(t)) => Some(t),
                (0, None) => Some(Instant::now()),
                _ => None,
            };
            let phones: Vec<CdrRow> = self
                .cdr_rows()
                .into_iter()
                .skip(before)
                .filter(|r| r.channel.ends_with(";2"))
                .collect();
            if phones.len() >= calls && idle_since.is_some_and(|t| t.elapsed() >= SETTLE) {
                return phones;
            }
            assert!(
                Instant::now() < deadline,
                "calls did not end in time\n{}",
                self.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn active_calls(&self) -> usize {
        self.try_cli("core show channels count")
            .and_then(|o| {
                o.lines()
                    .find(|l| l.contains("active channel"))
                    .and_then(|l| l.split_whitespace().next()?.parse().ok())
            })
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdrRow {
    pub cnum: String,
    pub dst: String,
    pub channel: String,
    pub dstchannel: String,
    pub disposition: String,
    pub billsec: i64,
    pub lastdata: String,
    /// The phone's hang-up cause (Q.850), from the CDR's userfield.
    pub cause: String,
    /// Seconds from the start of the row to its end, answered or not.
    pub duration: i64,
}

impl Drop for Pbx {
    fn drop(&mut self) {
        let _ = self.try_cli("core stop now");
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
