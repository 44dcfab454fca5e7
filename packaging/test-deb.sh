#!/usr/bin/env bash
# Builds the .deb, checks its contents and control data, runs lintian, then
# installs, upgrades, removes and purges it on this machine (as root) and
# checks what remains at each step. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
step() { printf '== test-deb: %s\n' "$*"; }
[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs the package)"

# It installs, upgrades and purges callquota: never on a machine where an
# installation it did not make lives (a real PBX's config and history).
marker=/var/lib/callquota/.installed-by-test-deb
if dpkg-query -W -f='${Status}' callquota 2>/dev/null | grep -qE 'installed|config-files|unpacked' ||
  [ -e /etc/callquota ] || [ -e /var/lib/callquota ]; then
  if [ ! -e "$marker" ] && [ "${CI:-}" != true ]; then
    fail "callquota is installed here and this test did not install it; the test would purge its config and history. Run it on a throw-away machine (CI=true declares one)"
  fi
fi
# `--guard-only`: stop after that decision (the test below checks the guard).
[ "${1:-}" != --guard-only ] || exit 0

# The package creates the `callquota` system user and group and, as Debian
# does, keeps them on purge. This test removes them at its end when both are
# its own (absent when it started, or left by an earlier run of this test,
# which a marker file records), and otherwise says it left them.
made_marker=/var/tmp/callquota-test-deb.made-system-user
user_existed=false group_existed=false cleaned=false
if [ ! -e "$made_marker" ]; then
  getent passwd callquota >/dev/null && user_existed=true
  getent group callquota >/dev/null && group_existed=true
fi
$user_existed || $group_existed || touch "$made_marker"
left_behind() {
  if ! $cleaned && ! $user_existed && getent passwd callquota >/dev/null; then
    echo "test-deb: the callquota system user this test created is left on this machine (the next run of this test removes it; or remove the package, then: deluser --system callquota)" >&2
  fi
}
on_exit() {
  [ -z "$(type -t cleanup_site)" ] || cleanup_site
  left_behind
}
trap on_exit EXIT

step "build"
packaging/build-deb.sh >/dev/null
deb=$(ls -t target/debian/callquota_*_amd64.deb | head -n1)

step "plain cargo deb builds the same package"
# cargo deb empties target/debian/ as it starts: keep build-deb.sh's package aside.
saved=$(mktemp -d) direct=$(mktemp -d)
cp "$deb" "$saved/"
cargo deb --no-build --output "$direct/" >/dev/null || fail "cargo deb on its own failed"
diff <(dpkg-deb -c "$saved"/*.deb | awk '{print $1, $6}') <(dpkg-deb -c "$direct"/*.deb | awk '{print $1, $6}') ||
  fail "cargo deb and build-deb.sh build different packages"
mkdir -p "$(dirname "$deb")" && cp "$saved"/*.deb "$deb"
rm -rf "$saved" "$direct"

step "contents and control data"
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/callquota ./etc/callquota/config.toml ./etc/cron.d/callquota \
  ./usr/share/man/man1/callquota.1.gz ./usr/share/doc/callquota/README.md \
  ./usr/share/doc/callquota/copyright ./usr/share/doc/callquota/changelog.Debian.gz; do
  grep -q " $path\$" <<<"$contents" || fail "$path missing from the package"
done
grep -q -- '-rwxr-xr-x .* ./usr/bin/callquota$' <<<"$contents" || fail "binary not 0755"
[ "$(dpkg-deb -f "$deb" Package)" = callquota ] || fail "Package field"
dpkg-deb -f "$deb" Depends | grep -q 'libc6' || fail "Depends not derived (\$auto)"
dpkg-deb -f "$deb" Depends | grep -q 'adduser' || fail "Depends lacks adduser"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
grep -qx /etc/callquota/config.toml <<<"$conffiles" || fail "config is not a conffile"
grep -qx /etc/cron.d/callquota <<<"$conffiles" || fail "cron file is not a conffile"

step "cron.d file"
cron=$(mktemp)
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./etc/cron.d/callquota >"$cron"
[ "$(tail -c1 "$cron" | od -An -c | tr -d ' ')" = '\n' ] || fail "cron file lacks a final newline (cron would ignore it)"
grep -q '^PATH=' "$cron" || fail "cron file sets no PATH"
grep -Eq '^\*/5 \* \* \* \*[[:space:]]+callquota[[:space:]]+.*callquota run' "$cron" || fail "no 5-minute run line as user callquota"
grep -q '%' "$cron" && fail "unescaped % in cron file"
rm -f "$cron"

step "the package creates the lock file as the service user"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst | grep -q 'state.db.lock' || fail "postinst does not create the lock"

step "lintian (no errors)"
if command -v lintian >/dev/null; then
  lintian --allow-root --fail-on error "$deb" || fail "lintian reported errors"
else
  fail "lintian is not installed (apt-get install lintian)"
fi

step "install"
dpkg --purge callquota >/dev/null 2>&1 || true
dpkg -i "$deb" >/dev/null
touch "$marker"
/usr/bin/callquota --version | grep -q '^callquota ' || fail "--version"
getent passwd callquota >/dev/null || fail "system user not created"
[ "$(stat -c '%a %U %G' /var/lib/callquota)" = "750 callquota callquota" ] || fail "/var/lib/callquota mode/owner"
[ "$(stat -c '%a %U %G' /var/lib/callquota/state.db)" = "640 callquota callquota" ] || fail "state.db mode/owner"
[ "$(stat -c '%a %U %G' /var/lib/callquota/state.db.lock)" = "640 callquota callquota" ] || fail "lock file mode/owner"
[ "$(stat -c '%a %U %G' /etc/callquota/config.toml)" = "640 root callquota" ] || fail "config mode/owner"
# The day's zone is the host's, written into the config (never the caller's TZ).
host_zone=$(readlink /etc/localtime | sed -n 's|^.*zoneinfo/||p')
[ -z "$host_zone" ] || grep -qx "timezone = \"$host_zone\"" /etc/callquota/config.toml ||
  fail "postinst did not write the host's zone ($host_zone) into the config"
[ "$(grep -c '^timezone' /etc/callquota/config.toml)" -le 1 ] || fail "timezone written twice"
if getent group asterisk >/dev/null; then
  id -nG callquota | grep -qw asterisk || fail "callquota not in group asterisk"
fi
man -w callquota >/dev/null 2>&1 || [ -f /usr/share/man/man1/callquota.1.gz ] || fail "man page"

step "unconfigured: check exits 78 with one line, the cron command is silent"
set +e
out=$(runuser -u callquota -- /usr/bin/callquota check 2>&1); code=$?
set -e
[ "$code" -eq 78 ] || fail "check on the default config exited $code, not 78: $out"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "not one line: $out"
grep -q 'not configured' <<<"$out" || fail "message does not say 'not configured': $out"
cronline=$(grep -E '^\*/5' /etc/cron.d/callquota | cut -f3-)
out=$(cd / && runuser -u callquota -- /bin/sh -c "PATH=/usr/bin:/bin; $cronline" 2>&1) || fail "cron command failed: $out"
[ -z "$out" ] || fail "cron command printed (cron would mail it): $out"

step "configured like a FreePBX host, attacked by a member of the include directory's group"
# A site of our own: a CDR database, an "asterisk" directory writable by a
# group (like /etc/asterisk), the fake Asterisk, and an unprivileged attacker
# in that group. Cron's environment throughout: env -i, PATH=/usr/bin:/bin.
mysql_url=${CALLQUOTA_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}
sql() { CALLQUOTA_TEST_MYSQL_URL=$mysql_url .ci/sql "$@"; }
db=cq_pkgtest_$$ # a name the dedicated test account may create
work=$(mktemp -d /var/tmp/callquota-pkgtest.XXXXXX)
chmod 755 "$work"
made_group="" made_user=""
getent group cqpkgast >/dev/null || { groupadd --system cqpkgast; made_group=1; }
getent passwd cqattacker >/dev/null || {
  useradd --system --no-create-home --gid cqpkgast --shell /usr/sbin/nologin cqattacker; made_user=1
}
usermod -aG cqpkgast callquota
cleanup_site() {
  sql -e "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  rm -rf "$work"
  gpasswd -d callquota cqpkgast >/dev/null 2>&1 || true
  [ -z "$made_user" ] || userdel cqattacker 2>/dev/null || true
  [ -z "$made_group" ] || groupdel cqpkgast 2>/dev/null || true
}
sql -e "CREATE DATABASE $db"
sql "$db" <tests/fixtures/cdr-schema.sql
install -d -o root -g cqpkgast -m 0775 "$work/asterisk"
install -d -o callquota -g callquota -m 0755 "$work/ast"
install -d -o root -g cqpkgast -m 0775 "$work/mail"
fake=$PWD/tests/fixtures/fake-asterisk
cat >/etc/callquota/config.toml <<CONF
timezone = "UTC"
[cdr]
url = "$mysql_url/$db"
[[direction]]
name = "mobile"
patterns = ["_870[5780-2]XXXXXXX"]
[dialplan]
include_file = "$work/asterisk/callquota.conf"
flavor = "freepbx17"
reload_command = ["$fake", "$work/ast", "$work/asterisk/callquota.conf", "-rx", "module reload pbx_config.so"]
asterisk_cli = ["$fake", "$work/ast", "$work/asterisk/callquota.conf", "-rx"]
[mail]
transport = "dir"
dir = "$work/mail"
from = "callquota@example.com"
CONF
as_cron() { (cd / && runuser -u callquota -- env -i PATH=/usr/bin:/bin "$@"); }
as_attacker() { runuser -u cqattacker -- "$@"; }
owner() { stat -c '%U' "$1"; }
/usr/bin/callquota user add 2055 --name "Vasya" --daily-limit 30m >/dev/null
as_cron /usr/bin/callquota run || fail "cron run on a configured site"
[ "$(owner "$work/asterisk/callquota.conf")" = callquota ] || fail "include not written by callquota"
# The attack of the security issue: links at the old fixed temp name and
# at likely new ones, aimed at the state and at the config.
as_attacker ln -s /var/lib/callquota/state.db "$work/asterisk/.callquota.conf.callquota-tmp"
as_attacker ln -s /etc/callquota/config.toml "$work/asterisk/.callquota.tmp"
rm -f /var/lib/callquota/state.db.lock
/usr/bin/callquota grant 2055 5m --reason "root at the console" >/dev/null || fail "root grant"
as_cron /usr/bin/callquota run || fail "cron run after a root grant (root-owned files left behind?)"
[ "$(stat -c '%a %U %G' /etc/callquota/config.toml)" = "640 root callquota" ] || fail "config mode/owner changed"
head -c 15 /var/lib/callquota/state.db | grep -q 'SQLite format 3' || fail "state overwritten"
/usr/bin/callquota user list | grep -q 2055 || fail "users lost"
for f in /var/lib/callquota/state.db* "$work/asterisk/callquota.conf"; do
  [ "$(owner "$f")" = callquota ] || fail "$f is owned by $(owner "$f"), not callquota"
done
grep -q 'exten => 2055,1,Return(2100000:0)' "$work/asterisk/callquota.conf" || fail "grant not in the include"
# The include itself replaced by a link: refused, the target untouched.
as_attacker sh -c "rm -f '$work/asterisk/callquota.conf' && ln -s /var/lib/callquota/state.db '$work/asterisk/callquota.conf'"
/usr/bin/callquota grant 2055 1m >/dev/null 2>&1 && fail "a grant through a linked include succeeded"
out=$(as_cron /usr/bin/callquota run 2>&1) && fail "a run through a linked include succeeded"
grep -q 'symbolic link' <<<"$out" || fail "run did not name the link: $out"
head -c 15 /var/lib/callquota/state.db | grep -q 'SQLite format 3' || fail "state overwritten through the include link"
rm -f "$work/asterisk/callquota.conf"
as_cron /usr/bin/callquota run || fail "run after the link was removed"
# Issue #21, 1: a link at the mail probe's name, aimed at the state; root runs check.
as_attacker ln -s /var/lib/callquota/state.db "$work/mail/.callquota-probe"
/usr/bin/callquota check >/dev/null 2>&1 || true
head -c 16 /var/lib/callquota/state.db | grep -q 'SQLite format 3' || fail "check truncated the state through the probe link"
/usr/bin/callquota user list | grep -q 2055 || fail "users lost through the probe link"
[ -L "$work/mail/.callquota-probe" ] || fail "the planted probe link was replaced"
# An empty state is never taken for a new one: cron's run refuses, the file stays.
cp -p /var/lib/callquota/state.db "$work/state.db.saved"
: >/var/lib/callquota/state.db
out=$(as_cron /usr/bin/callquota run --if-configured 2>&1) && fail "a run took an empty state for a new one"
grep -q 'is empty' <<<"$out" || fail "the run did not name the empty state: $out"
[ ! -s /var/lib/callquota/state.db ] || fail "the empty state was filled"
cat "$work/state.db.saved" >/var/lib/callquota/state.db
as_cron /usr/bin/callquota run || fail "run after the state was restored"
# Issue #21, 4: the asterisk group swaps in a 0640 copy Asterisk cannot read.
as_attacker sh -c "cp '$work/asterisk/callquota.conf' '$work/asterisk/x' && chmod 640 '$work/asterisk/x' && mv '$work/asterisk/x' '$work/asterisk/callquota.conf'"
out=$(/usr/bin/callquota check 2>&1) && fail "check passed with an include Asterisk cannot read"
grep -q 'mode 0640' <<<"$out" || fail "check did not name the unreadable include: $out"
as_cron /usr/bin/callquota run || fail "run over the 0640 include"
[ "$(stat -c '%a %U' "$work/asterisk/callquota.conf")" = "644 callquota" ] || fail "the run left the include $(stat -c '%a %U' "$work/asterisk/callquota.conf")"

step "remove leaves an inert include and reloads Asterisk"
sql "$db" -e "INSERT INTO cdr (calldate, cnum, src, channel, dst, dstchannel, disposition, billsec, duration, lastapp) VALUES (UTC_TIMESTAMP(), '2055', '2055', 'PJSIP/2055-1', '87011234567', 'PJSIP/kcell-1', 'ANSWERED', 4000, 4005, 'Dial')"
as_cron /usr/bin/callquota run || fail "run with 2055 over the limit"
grep -q 'exten => 2055,1,Return(DENY)' "$work/asterisk/callquota.conf" || fail "2055 not blocked before removal"
dpkg --remove callquota >/dev/null
include=$work/asterisk/callquota.conf
[ -f "$include" ] || fail "removal deleted the include file (a #include of it would break Asterisk)"
for word in DENY 'L(' macro-dialout-trunk-predial-hook 2055; do
  grep -qF "$word" "$include" && fail "the include still holds $word after removal"
done
grep -q '^\[callquota-check\]' "$include" || fail "the inert include lacks callquota-check"
cmp -s "$include" "$work/ast/loaded.conf" || fail "Asterisk was not reloaded with the inert include"
dpkg -i "$deb" >/dev/null </dev/null

# Back to the unconfigured package config for the steps below.
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./etc/callquota/config.toml >/etc/callquota/config.toml

step "upgrade over itself keeps state and config edits"
echo "# edited by the admin" >>/etc/callquota/config.toml
before=$(sha256sum /var/lib/callquota/state.db | cut -d' ' -f1)
echo "keep" >/var/lib/callquota/marker
# As `sudo dpkg -i` runs it: sudo's variables must not make postinst's migrate a delegated command.
SUDO_UID=1000 SUDO_USER=admin dpkg -i "$deb" >/dev/null </dev/null || fail "upgrade under sudo's environment"
grep -q 'edited by the admin' /etc/callquota/config.toml || fail "upgrade lost the config edit"
[ -f /var/lib/callquota/marker ] || fail "upgrade lost state"
[ "$(sha256sum /var/lib/callquota/state.db | cut -d' ' -f1)" = "$before" ] || fail "upgrade changed the state db"

step "remove keeps config and state"
dpkg --remove callquota >/dev/null
[ ! -e /usr/bin/callquota ] || fail "binary left after remove"
[ -f /etc/callquota/config.toml ] || fail "remove deleted the config"
[ -f /var/lib/callquota/state.db ] || fail "remove deleted the state"

step "purge deletes config and state, keeps the system user"
dpkg --purge callquota >/dev/null
[ ! -e /etc/callquota ] || fail "purge left /etc/callquota"
[ ! -e /var/lib/callquota ] || fail "purge left /var/lib/callquota"
[ ! -e /etc/cron.d/callquota ] || fail "purge left the cron file"
dpkg-statoverride --list /etc/callquota/config.toml >/dev/null 2>&1 && fail "statoverride left behind"
getent passwd callquota >/dev/null || fail "purge removed the system user (Debian keeps it)"

step "the test refuses an installation it did not make"
dpkg -i "$deb" >/dev/null </dev/null
rm -f "$marker"
out=$(CI=false packaging/test-deb.sh --guard-only 2>&1) && fail "the guard let the test touch a foreign installation"
grep -q 'did not install it' <<<"$out" || fail "guard message: $out"
CI=true packaging/test-deb.sh --guard-only || fail "CI=true did not pass the guard"
touch "$marker"
dpkg --purge callquota >/dev/null
CI=false packaging/test-deb.sh --guard-only || fail "the guard refused a clean machine"

step "remove the system user and group this test created"
# Only when both were this test's: a group that was there before may be the
# user's primary group, which deleting the user could take with it.
if ! $user_existed && ! $group_existed; then
  deluser --system --quiet callquota >/dev/null 2>&1 || fail "deluser --system callquota failed"
  ! getent passwd callquota >/dev/null || fail "the callquota user is still there"
  ! getent group callquota >/dev/null || delgroup --system --quiet callquota >/dev/null
  rm -f "$made_marker"
  echo "test-deb: removed the callquota system user and group it created"
else
  echo "test-deb: the callquota system user or group was here before this test: left in place"
fi
cleaned=true

echo "test-deb: 1 passed, 0 failed"
