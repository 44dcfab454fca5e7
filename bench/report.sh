#!/usr/bin/env bash
# Benchmark: `report` over a year of 1,000 users (365,000 ledger rows, with
# grants and sent notices) against a baseline measured in the same run: the
# bare ledger GROUP BY in Python's sqlite3 on the same file. Medians of REPS
# (default 5) runs.
#
#   bench/report.sh
#   USERS=2000 DAYS=730 bench/report.sh
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-1000}
DAYS=${DAYS:-365}
REPS=${REPS:-5}
cargo build --release --quiet
bin=$PWD/target/release/callquota
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" migrate --state-db "$work/state.db" >/dev/null
/usr/bin/python3 - "$work/state.db" "$USERS" "$DAYS" <<'PY'
import datetime, random, sqlite3, sys
db, users, days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(1)
c = sqlite3.connect(db)
start = datetime.date(2026, 1, 1)
now = "2026-01-01T00:00:00Z"
c.executemany("INSERT INTO users (extension, name, email, daily_limit_s, active, since_day, created_at, updated_at) VALUES (?, ?, '', 1800, 1, '2026-01-01', ?, ?)",
              [(str(2000 + u), f"User {u}", now, now) for u in range(users)])
rows, grants, notices = [], [], []
for d in range(days):
    day = (start + datetime.timedelta(days=d)).isoformat()
    for u in range(users):
        used = random.randint(0, 2400)
        rows.append((str(2000 + u), day, 1800, 0, 0, 1800, used, 100 if used >= 1800 else 0, 0, int(used >= 1800), int(d < days - 1)))
        if random.random() < 0.01:
            grants.append((str(2000 + u), day, 600, "bench", now))
        if used >= 900:
            notices.append((str(2000 + u), day, 50, used, 1800, now, "sent"))
c.executemany("INSERT INTO ledger (extension, day, base_s, carried_in_s, granted_s, allowance_s, used_s, level, notified_level, blocked, closed) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
c.executemany("INSERT INTO grants (extension, day, seconds, reason, created_at) VALUES (?,?,?,?,?)", grants)
c.executemany("INSERT INTO outbox (extension, day, threshold, used_s, allowance_s, created_at, status) VALUES (?,?,?,?,?,?,?)", notices)
c.commit()
PY
last=$(date -d "2026-01-01 + $((DAYS - 1)) days" +%F)
cat > "$work/config.toml" <<TOML
timezone = "UTC"
state_db = "$work/state.db"
[cdr]
url = "mysql://bench@127.0.0.1/none"
[[direction]]
name = "mobile"
patterns = ["_870[5780-2]XXXXXXX"]
[dialplan]
include_file = "$work/callquota.conf"
flavor = "plain"
reload_command = ["true"]
asterisk_cli = []
TOML
ms() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
report_ms=() floor_ms=()
for _ in $(seq "$REPS"); do
  t0=$(ms); "$bin" --config "$work/config.toml" --now "${last}T23:00:00" report --from 2026-01-01 --to "$last" --json >/dev/null; t1=$(ms)
  report_ms+=($(( (t1 - t0) / 1000000 )))
  t0=$(ms)
  /usr/bin/python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"SELECT extension, COUNT(*), SUM(allowance_s), SUM(used_s), SUM(blocked) FROM ledger WHERE day >= '2026-01-01' AND day <= '$last' GROUP BY extension\").fetchall()" "$work/state.db"
  t1=$(ms)
  floor_ms+=($(( (t1 - t0) / 1000000 )))
done
rep=$(printf '%s\n' "${report_ms[@]}" | median)
flo=$(printf '%s\n' "${floor_ms[@]}" | median)
echo "report over $DAYS days of $USERS users ($((DAYS * USERS)) ledger rows): ${rep} ms (median of $REPS)"
echo "baseline, the ledger GROUP BY alone in python3 sqlite3: ${flo} ms"
awk -v a="$rep" -v b="$flo" 'BEGIN { printf "report / baseline: %.1fx\n", (b > 0 ? a / b : 0) }'
