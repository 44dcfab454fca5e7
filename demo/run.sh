#!/usr/bin/env bash
# A realistic day on a throw-away PBX: creates the CDR database
# `callquota_demo` in the local MariaDB (the account .ci/mariadb-up finds or
# makes, without changing any existing one; it also installs and starts MariaDB),
# inserts a simulated day of calls, runs `callquota run` at several moments
# with --now, and shows status, the generated include file, the queued
# notices and the audit log. No Asterisk is needed: a stand-in
# (tests/fixtures/fake-asterisk) plays the reload and the stamp query.
#
#   demo/run.sh            # everything lands in ./demo-out/
#   KEEP_DB=1 demo/run.sh  # keep the callquota_demo database afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/demo-out
db=callquota_demo
eval "$(.ci/mariadb-up)"
mysql=(.ci/sql)
echo "== building callquota (a debug build: about 5-7 minutes the first time on 2 cores, seconds after)" >&2
started=$SECONDS
cargo build
echo "== built in $((SECONDS - started)) s; the demo itself takes a few seconds" >&2
bin=$root/target/debug/callquota

rm -rf "$out" && mkdir -p "$out/asterisk" "$out/ast" "$out/mail"
"${mysql[@]}" -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
"${mysql[@]}" "$db" < tests/fixtures/cdr-schema.sql

fake=$root/tests/fixtures/fake-asterisk
cat > "$out/config.toml" <<TOML
timezone = "Asia/Almaty"
state_db = "$out/state.db"

[cdr]
url = "$CALLQUOTA_TEST_MYSQL_URL/$db"

[[direction]]
name = "mobile"
patterns = ["_870[5780-2]XXXXXXX", "_877[15-8]XXXXXXX", "_8747XXXXXXX"]

[limits]
thresholds = [50, 90, 100]

[carryover]
max_seconds = 1800

[dialplan]
include_file = "$out/asterisk/callquota.conf"
flavor = "freepbx17"
deny_sound = "custom/limit-reached"
reload_command = ["$fake", "$out/ast", "$out/asterisk/callquota.conf", "-rx", "module reload pbx_config.so"]
asterisk_cli = ["$fake", "$out/ast", "$out/asterisk/callquota.conf", "-rx"]

[mail]
transport = "dir"
dir = "$out/mail"
from = "callquota@example.com"
cc = ["telecom-admin@example.com"]
digest_to = ["boss@example.com"]

[mail.templates.100]
subject = "Лимит исчерпан: {name} ({extension})"
body = "Здравствуйте, {name}!\nЛимит платных звонков на {day} исчерпан: {used} из {allowance}.\nЗвонки на мобильные до завтра недоступны, остальные работают.\n"
TOML
export CALLQUOTA_CONFIG=$out/config.toml
# --allow-future: the demo replays a fixed day, which may lie ahead of the clock.
cq() { echo "\$ callquota $*"; "$bin" --allow-future "$@"; }
section() { printf '\n=== %s\n' "$*"; }

day=2026-11-26
section "Users (one command each)"
cq --now ${day}T08:00:00 user add 2055 --name "Vasya Pupkin" --email vasya@example.com --daily-limit 30m
cq --now ${day}T08:00:00 user add 2066 --name "Әсел Нұрланқызы" --email asel@example.kz --daily-limit 20m
cq --now ${day}T08:00:00 user add 2077 --name "Ivan Petrov" --email ivan@example.com --daily-limit 1h

# A simulated day: answered and unanswered paid calls, landline calls
# (free), a failover attempt, and calls from an extension nobody tracks.
calls() {
  "${mysql[@]}" "$db" -e "INSERT INTO cdr (calldate, cnum, src, channel, dst, dstchannel, disposition, billsec, duration, lastapp) VALUES $1"
}
row() { # time cnum dst disposition billsec
  printf "('%s %s','%s','77172000000','PJSIP/%s-0000001a','%s','PJSIP/kcell-00000012','%s',%s,%s,'Dial')" \
    "$day" "$1" "$2" "$2" "$3" "$4" "$5" "$(( $5 + 7 ))"
}
calls "$(row 09:05:00 2055 87011234567 ANSWERED 420),$(row 09:20:00 2055 87172123456 ANSWERED 900),$(row 09:40:00 2066 87751234567 ANSWERED 300),$(row 09:50:00 2077 87471234567 'NO ANSWER' 0)"
section "09:55: first run"
cq --now ${day}T09:55:00 run --verbose
cq --now ${day}T09:55:00 status

calls "$(row 10:30:00 2055 870-5123-4567 ANSWERED 600),$(row 11:00:00 2066 87011112233 ANSWERED 1000),$(row 11:10:00 3001 87011234567 ANSWERED 3000)"
section "11:30: 2055 passes 50 %, 2066 jumps past 100 % (one notice, blocked)"
cq --now ${day}T11:30:00 run --verbose
cq --now ${day}T11:30:00 status

calls "$(row 14:00:00 2055 87781234567 ANSWERED 650),$(row 15:00:00 2077 87471234567 ANSWERED 1200)"
section "15:30: 2055 reaches 90 %"
cq --now ${day}T15:30:00 run --verbose
section "15:31: the admin grants 2066 ten more minutes"
cq --now ${day}T15:31:00 grant 2066 10m --reason "closing a big deal" --by "Head of sales"
cq --now ${day}T15:31:00 status

section "Why was this call counted?"
cq classify 870-5123-4567 87172123456

section "The generated include file"
cat "$out/asterisk/callquota.conf"

calls "$(row 23:50:00 2055 87011234567 ANSWERED 200)"
section "Next day 00:05: the day closes with its final usage, unused time carries over (cap 30m)"
cq --now 2026-11-27T00:05:00 run --verbose
cq --now 2026-11-27T00:05:00 status
cq --now 2026-11-27T00:05:00 status --day $day

section "The month so far, per user"
cq --now 2026-11-27T00:05:00 report --month 2026-11 --html "$out/report.html"

section "Every CDR row of 2066 that day, as run judged it (the answer to \"why am I blocked?\")"
cq --now 2026-11-27T00:05:00 calls 2066 --day $day

section "The outbox"
cq --now 2026-11-27T00:05:00 mail list

section "The messages sent (dir transport: demo-out/mail/*.eml, decoded)"
/usr/bin/python3 - "$out/mail" <<'PY'
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("*.eml"), key=lambda p: p.stat().st_mtime):
    m = BytesParser(policy=policy.default).parse(open(path, "rb"))
    text = m.get_body(preferencelist=("plain",)).get_content().strip()
    print(f"To: {m['to']}\nCc: {m['cc']}\nSubject: {m['subject']}\n\n{text}\n---")
PY

section "Audit log"
cq --now 2026-11-27T00:05:00 log

if [ -z "${KEEP_DB:-}" ]; then
  "${mysql[@]}" -e "DROP DATABASE $db"
fi
printf '\nDemo files are in %s (state.db opens with sqlite3).\n' "$out"
