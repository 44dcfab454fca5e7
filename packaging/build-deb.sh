#!/usr/bin/env bash
# Builds target/debian/callquota_*.deb: the release binary, a fully commented
# copy of config.example.toml as /etc/callquota/config.toml (so a fresh install
# is "not configured"), the man page, the cron file and the docs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
cargo build --release --locked
mkdir -p target/deb-assets
{
  echo "# callquota configuration: not configured yet."
  echo "# Uncomment and edit the settings below (at least [cdr], [[direction]] and"
  echo "# [dialplan]), then run: callquota check"
  echo "# The full example is in /usr/share/doc/callquota/examples/config.example.toml."
  echo "#"
  sed -e 's/^\(.\)/# \1/' -e 's/^$/#/' config.example.toml
} > target/deb-assets/config.toml
gzip -9n -c packaging/callquota.1 > target/deb-assets/callquota.1.gz
cargo deb --no-build --output target/debian/ "$@"
ls target/debian/*.deb
