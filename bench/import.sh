#!/usr/bin/env bash
# Benchmark: `user import --freepbx` of N extensions (default 5,000) from a
# FreePBX-shaped `asterisk` database into a fresh state, against a baseline
# measured in the same run: the same two SELECTs by the mariadb client (the
# floor of reading FreePBX's directory). Medians of REPS (default 5) runs.
#
#   bench/import.sh            # 5,000 extensions
#   N=20000 bench/import.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
REPS=${REPS:-5}
eval "$(.ci/mariadb-up)"
cargo build --release --quiet
bin=$PWD/target/release/callquota
db=callquota_bench_fpbx
work=$(mktemp -d)
trap 'rm -rf "$work"; .ci/sql -e "DROP DATABASE IF EXISTS $db"' EXIT
.ci/sql -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
.ci/sql "$db" < tests/fixtures/freepbx-users-schema.sql
last=$((N - 1))
.ci/sql "$db" -e "INSERT INTO users (extension, name) SELECT CONCAT('5', LPAD(seq, 5, '0')), CONCAT('User ', seq) FROM seq_0_to_$last;
  INSERT INTO userman_users (username, default_extension, displayname, email)
  SELECT CONCAT('u', seq), CONCAT('5', LPAD(seq, 5, '0')), CONCAT('Person ', seq), CONCAT('u', seq, '@example.com') FROM seq_0_to_$last"
cat > "$work/config.toml" <<TOML
timezone = "Asia/Almaty"
state_db = "$work/state.db"
[cdr]
url = "$CALLQUOTA_TEST_MYSQL_URL/$db"
[freepbx]
url = "$CALLQUOTA_TEST_MYSQL_URL/$db"
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
import_ms=() select_ms=()
for _ in $(seq "$REPS"); do
  rm -f "$work"/state.db*
  t0=$(ms); "$bin" --config "$work/config.toml" user import --freepbx --daily-limit 30m >/dev/null; t1=$(ms)
  import_ms+=($(( (t1 - t0) / 1000000 )))
  t0=$(ms)
  .ci/sql "$db" -e "SELECT extension, name FROM users ORDER BY extension;
    SELECT default_extension, displayname, fname, lname, email FROM userman_users WHERE default_extension <> 'none' ORDER BY id" >/dev/null
  t1=$(ms)
  select_ms+=($(( (t1 - t0) / 1000000 )))
done
imp=$(printf '%s\n' "${import_ms[@]}" | median)
sel=$(printf '%s\n' "${select_ms[@]}" | median)
echo "user import --freepbx of $N extensions into a fresh state: ${imp} ms (median of $REPS)"
echo "baseline, the same two SELECTs by the mariadb client: ${sel} ms"
awk -v a="$imp" -v b="$sel" 'BEGIN { printf "import / baseline: %.1fx\n", (b > 0 ? a / b : 0) }'
