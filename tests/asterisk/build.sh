#!/usr/bin/env bash
# Builds the real Asterisks the tests call through, offline, from the
# tarballs in ../shared/asterisk/ (22.10.1 = FreePBX 17, 20.20.1 with
# app_macro = FreePBX 16), with only the modules a FreePBX-shaped outbound
# path and callquota's dialplan use, into a cache outside the checkout keyed
# by the tarball's sha256 and the module list, so a warm machine reuses it:
#
#   $CALLQUOTA_ASTERISK_CACHE (default /var/cache/callquota-test-asterisk)/<sha256>-<modules>/
#       sbin/asterisk, lib/asterisk/modules/, ...
#
#   tests/asterisk/build.sh            # every tarball found; prints one "VERSION PREFIX" line each
#   tests/asterisk/build.sh 22.10.1    # one version
#
# Installs its Debian build and ODBC packages itself. Without the tarballs
# (a clone outside this setup) it says so and exits 3; under CI=true that is
# a failure for whoever calls it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
sources=${CALLQUOTA_ASTERISK_SOURCES:-$repo/../shared/asterisk}
cache=${CALLQUOTA_ASTERISK_CACHE:-/var/cache/callquota-test-asterisk}
log() { printf '== asterisk: %s\n' "$*" >&2; }

shopt -s nullglob
tarballs=("$sources"/asterisk-*.tar.xz)
if [ ${#tarballs[@]} -eq 0 ]; then
  echo "asterisk: no Asterisk sources in $sources (asterisk-*.tar.xz): the real-Asterisk tests cannot run" >&2
  exit 3
fi
wanted=("$@")

build_deps=(build-essential pkg-config libedit-dev libjansson-dev libxml2-dev uuid-dev libsqlite3-dev libssl-dev
  unixodbc-dev unixodbc odbc-mariadb xz-utils)
missing=()
for p in "${build_deps[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

modules=(pbx_config app_dial app_stack app_exec app_playback app_cdr app_echo app_verbose func_callerid func_cdr
  func_cut func_logic func_strings func_dialplan func_db func_lock func_channel func_math func_groupcount
  bridge_builtin_interval_features bridge_builtin_features bridge_simple bridge_native_rtp res_odbc
  cdr_adaptive_odbc cdr_manager res_agi codec_ulaw codec_alaw format_wav format_pcm res_timing_timerfd
  res_musiconhold app_senddtmf func_global app_confbridge bridge_softmix res_parking bridge_holding func_timeout
  app_sayunixtime)
# The cache key names the tarball and this module list: adding a module builds anew.
recipe=$(printf '%s\n' "${modules[@]}" | sha256sum | cut -c1-12)

for tarball in "${tarballs[@]}"; do
  version=$(basename "$tarball" .tar.xz); version=${version#asterisk-}
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " == *" $version "* ]]; then continue; fi
  sha=$(sha256sum "$tarball" | cut -d' ' -f1)
  prefix=$cache/$sha-$recipe
  if [ -f "$prefix/.built" ]; then
    printf '%s %s\n' "$version" "$prefix"
    continue
  fi
  log "building $version into $prefix (about 2-4 minutes on 2 cores, once per machine)"
  started=$SECONDS
  work=$(mktemp -d)
  tar -xJf "$tarball" -C "$work"
  src=$work/asterisk-$version
  (
    cd "$src"
    log "$version: configure"
    ./configure --prefix="$prefix" --without-pjproject --with-jansson-bundled=no >"$work/configure.log" 2>&1 ||
      { tail -n 30 "$work/configure.log" >&2; exit 1; }
    make menuselect.makeopts >"$work/menuselect.log" 2>&1 || { tail -n 20 "$work/menuselect.log" >&2; exit 1; }
    menu=(--disable-all)
    for m in "${modules[@]}"; do menu+=(--enable "$m"); done
    case $version in 20.*) menu+=(--enable app_macro) ;; esac
    for c in MENUSELECT_CORE_SOUNDS MENUSELECT_MOH MENUSELECT_EXTRA_SOUNDS; do menu+=(--disable-category "$c"); done
    menuselect/menuselect "${menu[@]}" menuselect.makeopts >>"$work/menuselect.log" 2>&1
    log "$version: make -j$(nproc) (the longest step)"
    make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -n 40 "$work/make.log" >&2; exit 1; }
    rm -rf "$prefix"
    log "$version: make install"
    make install >"$work/install.log" 2>&1 || { tail -n 30 "$work/install.log" >&2; exit 1; }
  )
  ls "$prefix"/lib/asterisk/modules/ >"$prefix/.modules"
  touch "$prefix/.built"
  rm -rf "$work"
  log "$version built in $((SECONDS - started)) s"
  printf '%s %s\n' "$version" "$prefix"
done
