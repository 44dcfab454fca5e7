#!/usr/bin/env bash
# Builds target/debian/callquota_*.deb: the release binary, a fully commented
# copy of config.example.toml as /etc/callquota/config.toml (so a fresh install
# is "not configured"), the man page, the cron file and the docs.
# Plain `cargo deb` builds the same package; this script also refreshes
# packaging/config.toml (the commented copy; a test keeps it in sync).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
{
  echo "# callquota configuration: not configured yet."
  echo "# Uncomment and edit the settings below (at least [cdr], [[direction]] and"
  echo "# [dialplan]), then run: callquota check"
  echo "# The full example is in /usr/share/doc/callquota/examples/config.example.toml."
  echo "#"
  # Settings get one `#`; comments and commented defaults stay as they are.
  sed -e '/^#/!s/^\(.\)/#\1/' config.example.toml
} > packaging/config.toml
cargo build --release --locked
cargo deb --no-build --output target/debian/ "$@"
ls target/debian/*.deb
