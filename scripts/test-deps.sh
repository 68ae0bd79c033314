#!/usr/bin/env bash
# Installs what the integration tests need and a fresh machine lacks:
# PostgreSQL's server binaries (initdb, pg_ctl) for the harness's throwaway
# clusters, and Chromium for the browser tests. The pinned MinIO server is
# built by the Makefile.
set -euo pipefail

have_pg() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

if ! have_pg; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing PostgreSQL (Debian package) for the test harness"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL's initdb/pg_ctl are missing: install Debian's 'postgresql' package or set DATABASE_URL" >&2
    exit 1
  fi
fi
# bash, curl and jq for TestReadmeTryIt, which runs the README's "Try it"
# blocks as written.
if ! command -v curl >/dev/null 2>&1 || ! command -v jq >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing curl and jq (Debian packages) for the README test"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq curl jq >/dev/null
  else
    echo "curl or jq is missing (the README test runs the README's curl blocks): install Debian's 'curl' and 'jq'" >&2
    exit 1
  fi
fi
# Headless Chromium for the browser tests of the web pages (chromedp).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Chromium (Debian package) for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is missing: install Debian's 'chromium' package" >&2
    exit 1
  fi
fi
# CJK fonts, so that the Chinese pages render (and their screenshots show)
# Chinese characters rather than empty boxes.
if ! { command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q . ; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing CJK fonts (Debian package fonts-noto-cjk) for the Chinese pages' screenshots"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq fontconfig fonts-noto-cjk >/dev/null
  else
    echo "no CJK font: install Debian's 'fonts-noto-cjk' package (the Chinese pages' screenshots need it)" >&2
    exit 1
  fi
fi
# axe-core for the pages' accessibility check (web/a11y_browser_test.go), pinned
# and checked by its SHA-256, kept in the git-ignored .cache/axe-core/. The
# tarball comes from the npm registry through npm (Debian's npm is installed
# when it is missing).
AXE_VERSION=4.10.3
AXE_SHA256=0f2b4d7dcdf7d1219df8d1959ad68e565f51d14c3f0d88bb71cd59abeb956292
AXE_DIR="$(cd "$(dirname "$0")/.." && pwd)/.cache/axe-core"
if [ ! -s "$AXE_DIR/axe-$AXE_VERSION.min.js" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing npm (Debian package) to fetch axe-core"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq npm >/dev/null
    else
      echo "npm is missing (needed once to fetch axe-core $AXE_VERSION): install Debian's 'npm' package" >&2
      exit 1
    fi
  fi
  mkdir -p "$AXE_DIR"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null)
  echo "$AXE_SHA256  $tmp/axe-core-$AXE_VERSION.tgz" | sha256sum -c --quiet -
  tar -xzf "$tmp/axe-core-$AXE_VERSION.tgz" -C "$tmp" package/axe.min.js
  mv "$tmp/package/axe.min.js" "$AXE_DIR/axe-$AXE_VERSION.min.js"
  rm -rf "$tmp"
  echo "axe-core $AXE_VERSION in $AXE_DIR"
fi
echo "test deps: PostgreSQL $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | head -1 || command -v initdb)"
