#!/usr/bin/env bash
# The test command: installs what the tests need (Debian and PyPI packages),
# builds, runs the Swift unit tests, then the black-box tests with real
# clients against the built engine. Run from anywhere; needs root for apt
# (CI and the development machines run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/deps.sh
need_apt=("${postcell_need_apt[@]}")
command -v swaks >/dev/null || need_apt+=(swaks)
command -v fetchmail >/dev/null || need_apt+=(fetchmail)
command -v mbsync >/dev/null || need_apt+=(isync)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v mutt >/dev/null || need_apt+=(mutt)
command -v offlineimap >/dev/null || need_apt+=(offlineimap3)
command -v tmux >/dev/null || need_apt+=(tmux)
[ -x /usr/sbin/knotd ] || command -v knotd >/dev/null || need_apt+=(knot)
command -v kdig >/dev/null || need_apt+=(knot-dnsutils)
[ -x /usr/sbin/unbound ] || command -v unbound >/dev/null || need_apt+=(unbound)
[ -x /usr/sbin/dovecot ] || need_apt+=(dovecot-imapd)
[ -x /usr/sbin/postfix ] || need_apt+=(postfix)
[ -x /usr/sbin/opendkim ] || command -v opendkim >/dev/null || need_apt+=(opendkim)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
command -v setpriv >/dev/null || need_apt+=(util-linux)
# The control plane's browser tests (Tests/Interop/test_control_browser.py)
# and its PostgreSQL runs (a private server started below).
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v zbarimg >/dev/null || need_apt+=(zbar-tools)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
command -v psql >/dev/null || need_apt+=(postgresql-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Postfix for Tests/Interop/test_outbound_*.py: installed unconfigured (no
  # /etc/postfix/main.cf, so no system instance starts); the tests run
  # private instances on 127.0.0.1 with their own configuration directories.
  if [[ " ${need_apt[*]} " == *" postfix "* ]]; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  fi
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # Had a configuration been preseeded otherwise: no system Postfix we
  # installed stays up listening on port 25.
  if [[ " ${need_apt[*]} " == *" postfix "* ]] && /usr/sbin/postfix status >/dev/null 2>&1; then
    /usr/sbin/postfix stop >/dev/null 2>&1 || true
    if command -v systemctl >/dev/null; then systemctl disable --now postfix >/dev/null 2>&1 || true; fi
  fi
fi
if ! python3 -c 'import pytest' 2>/dev/null; then
  echo "== installing pytest"
  python3 -m pip install -q pytest || python3 -m pip install -q --break-system-packages pytest
fi

if ! python3 -c 'import dkim, nacl' 2>/dev/null; then
  echo "== installing dkimpy and pynacl (DKIM interop)"
  python3 -m pip install -q dkimpy pynacl || python3 -m pip install -q --break-system-packages dkimpy pynacl
fi
if ! python3 -c 'import spf, dns.resolver' 2>/dev/null; then
  echo "== installing pyspf and dnspython (reference SPF for Tests/Interop/test_spf.py)"
  python3 -m pip install -q pyspf dnspython || python3 -m pip install -q --break-system-packages pyspf dnspython
fi

if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "== installing aiosmtpd (the provider's relay in Tests/Interop/test_control_outbox.py)"
  python3 -m pip install -q aiosmtpd || python3 -m pip install -q --break-system-packages aiosmtpd
fi

if ! python3 -c 'import selenium, pyotp, schemathesis, requests' 2>/dev/null; then
  echo "== installing selenium, pyotp, schemathesis and requests (control plane end-to-end tests)"
  python3 -m pip install -q selenium pyotp schemathesis requests || python3 -m pip install -q --break-system-packages selenium pyotp schemathesis requests
fi

# A private PostgreSQL for the run: initdb into a temporary directory as the
# postgres user, trust authentication, listening only on 127.0.0.1 (and a
# unix socket in that directory) on a free port; stopped and removed at exit.
# Both `swift test` (ControlServiceTests) and the control-plane pytest files
# make a fresh database per test or module from POSTCELL_TEST_POSTGRES_URL.
# An existing POSTCELL_TEST_POSTGRES_URL is used as it is; POSTCELL_TEST_NO_POSTGRES=1
# runs on SQLite only.
pg_dir=""
stop_postgres() {
  if [ -n "$pg_dir" ] && [ -d "$pg_dir" ]; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
if [ -z "${POSTCELL_TEST_POSTGRES_URL:-}" ] && [ "${POSTCELL_TEST_NO_POSTGRES:-0}" != 1 ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
  pg_dir=$(mktemp -d /tmp/postcell-pg.XXXXXX)
  chown postgres: "$pg_dir"
  trap stop_postgres EXIT
  pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "== starting a private PostgreSQL on 127.0.0.1:$pg_port"
  runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$pg_dir/initdb.log" 2>&1 \
    || { cat "$pg_dir/initdb.log"; exit 1; }
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { cat "$pg_dir/server.log"; exit 1; }
  export POSTCELL_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
fi

echo "== building"
swift build --build-tests 2>&1 | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }

echo "== unit tests"
swift test --skip-build 2>&1 | { grep -vE '^(◇|↳|Test Suite|Test Case)|^$' || true; }

echo "== black-box tests (real clients against postcell-engine)"
python3 -m pytest -q -p no:cacheprovider Tests/Interop "$@"
