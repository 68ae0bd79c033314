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
# CJK fonts so screenshots of pages with Chinese names are legible.
if command -v fc-list >/dev/null 2>&1 && ! fc-list :lang=zh 2>/dev/null | grep -q . ; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing CJK fonts (Debian package fonts-noto-cjk) for legible screenshots"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null || echo "fonts-noto-cjk not installed; screenshots show boxes for Chinese text" >&2
  fi
fi
echo "test deps: PostgreSQL $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | head -1 || command -v initdb)"
