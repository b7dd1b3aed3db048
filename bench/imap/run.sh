#!/usr/bin/env bash
# IMAP benchmark: postcell-engine vs. a private Dovecot instance, both on
# 127.0.0.1 over implicit TLS, one user with a 10,000-message INBOX on each,
# loaded by bench/imap/load.py (raw-socket IMAP client, 1 and 10 sessions).
#
#   bash bench/imap/run.sh
#
# Environment knobs (defaults in brackets):
#   MESSAGES [10000]          messages in the user's INBOX on each server
#   SESSIONS ["1 10"]         concurrent sessions, one measured round per value
#   PHASE_SECONDS [20]        time limit of one phase (one operation, one server)
#   SCALE [1]                 multiplies every phase's operation count
#   PHASES [all]              e.g. "envelope store" (login select envelope body
#                             store search_from search_unseen search_body)
#   LOG2N [10]                scrypt cost (log2 N) of the engine user's password hash
#   ENGINE [.build/release/postcell-engine]  built if missing
#   SERVERS ["dovecot engine"] one of them alone measures only that one
#   BENCH_TMP [/tmp]          where the work directory is made
#   KEEP [0]                  1 keeps the work directory (logs, stores, results.json)
#   QUIET_WAIT [300]          seconds to wait at the start for a quiet machine
#   MAX_FOREIGN_CPU [25]      a phase during which other processes used more than
#                             this % of the machine is repeated (BUSY_RETRIES [2]
#                             times, BUSY_PAUSE [10] s apart)
#
# See bench/README.md. Writes the table to bench/imap/last-run.txt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-1 10}
PHASE_SECONDS=${PHASE_SECONDS:-20}
SCALE=${SCALE:-1}
PHASES=${PHASES:-login select envelope body store search_from search_unseen search_body}
LOG2N=${LOG2N:-10}
ENGINE=${ENGINE:-$ROOT/.build/release/postcell-engine}
SERVERS=${SERVERS:-dovecot engine}
BENCH_TMP=${BENCH_TMP:-/tmp}
KEEP=${KEEP:-0}
QUIET_WAIT=${QUIET_WAIT:-300}
MAX_FOREIGN_CPU=${MAX_FOREIGN_CPU:-25}
BUSY_RETRIES=${BUSY_RETRIES:-2}
BUSY_PAUSE=${BUSY_PAUSE:-10}
PYTHON=${PYTHON:-python3}

log() { printf '[imap-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: it installs dovecot-imapd and runs a private instance as a system user"
command -v "$PYTHON" >/dev/null || die "python3 is needed"

# --- tools -------------------------------------------------------------------
# dovecot-imapd without recommends; Debian's package starts no instance here
# (no init system), and the bench's instance uses its own configuration only.
if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/lib/dovecot/imap ]; then
    log "installing dovecot-imapd"
    if ! apt-cache show dovecot-imapd >/dev/null 2>&1; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
        dovecot-imapd >&2 || die "could not install dovecot-imapd"
fi
command -v openssl >/dev/null || log "note: openssl CLI missing (only needed with SERVERS=dovecot)"

if [[ " $SERVERS " == *" engine "* ]] && [ ! -x "$ENGINE" ]; then
    log "building the engine: swift build -c release --static-swift-stdlib --product postcell-engine"
    (cd "$ROOT" && swift build -c release --static-swift-stdlib --product postcell-engine) >&2
    [ -x "$ENGINE" ] || die "no engine binary at $ENGINE after the build"
fi

# --- work directory ------------------------------------------------------------
W=$(mktemp -d "$BENCH_TMP/postcell-imap-bench.XXXXXX")
chmod 755 "$W"   # Dovecot's mail processes run as the bench system user
cleanup() {
    local rc=$?
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
        log "work directory kept: $W"
    else
        rm -rf "$W"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "work directory $W; engine $ENGINE"
RC=0
# Everything (both servers, population, load, table) runs in load.py, which
# stops both servers on its way out. Bounded: every phase by PHASE_SECONDS.
timeout 3600 "$PYTHON" "$HERE/load.py" --engine "$ENGINE" --work "$W" --messages "$MESSAGES" \
    --sessions "$SESSIONS" --seconds "$PHASE_SECONDS" --scale "$SCALE" --phases "$PHASES" \
    --log2n "$LOG2N" --servers "$SERVERS" --quiet-wait "$QUIET_WAIT" \
    --max-foreign-cpu "$MAX_FOREIGN_CPU" --busy-retries "$BUSY_RETRIES" --busy-pause "$BUSY_PAUSE" \
    --table "$W/table.txt" || RC=$?
if [ -s "$W/table.txt" ]; then
    cp "$W/table.txt" "$HERE/last-run.txt"
    log "table written to bench/imap/last-run.txt"
fi
exit "$RC"
