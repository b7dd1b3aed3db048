#!/usr/bin/env bash
# SMTP throughput/memory benchmark: postcell-engine vs. a private Postfix
# instance, both on 127.0.0.1, loaded by Postfix's smtp-source.
#
#   bash bench/smtp/run.sh
#
# Environment knobs (defaults in brackets):
#   N_4K [4000] N_64K [1000]  messages per run for 4 KB and 64 KB bodies
#   SESSIONS [20]             parallel smtp-source sessions
#   REPEATS [5]               runs per (server, size); the table shows the median
#   WARMUP [500]              unmeasured 4 KB messages sent to each server first
#   POSTFIX_PORT [2600]       Postfix's smtpd, on 127.0.0.1 only
#   ENGINE [.build/release/postcell-engine]  built if missing
#   SERVERS ["postfix engine"]  "postfix" alone measures only Postfix
#   BENCH_TMP [/tmp]          where the work directory is made
#   KEEP [0]                  1 keeps the work directory (logs, stores)
#   MAX_FOREIGN_CPU [10]      a run during which other processes used more than
#                             this % of the machine's CPU is discarded and
#                             repeated (BUSY_RETRIES [3] times, BUSY_PAUSE [20] s apart)
#   QUIET_WAIT [300]          seconds to wait at the start for a quiet machine
#   AUTH_CHECKS [off]         the engine's inbound SPF/DKIM/DMARC checks: off; none (on,
#                             a Knot on 127.0.0.1 answers for client.test, which publishes
#                             nothing); spf (on, client.test publishes SPF that passes
#                             and DMARC p=reject, which then passes)
#
# See bench/README.md. Writes the table to bench/smtp/last-run.txt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

N_4K=${N_4K:-4000}
N_64K=${N_64K:-1000}
SESSIONS=${SESSIONS:-20}
REPEATS=${REPEATS:-5}
WARMUP=${WARMUP:-500}
POSTFIX_PORT=${POSTFIX_PORT:-2600}
ENGINE=${ENGINE:-$ROOT/.build/release/postcell-engine}
SERVERS=${SERVERS:-postfix engine}
BENCH_TMP=${BENCH_TMP:-/tmp}
KEEP=${KEEP:-0}
MAX_FOREIGN_CPU=${MAX_FOREIGN_CPU:-10}
BUSY_RETRIES=${BUSY_RETRIES:-3}
BUSY_PAUSE=${BUSY_PAUSE:-20}
QUIET_WAIT=${QUIET_WAIT:-300}
AUTH_CHECKS=${AUTH_CHECKS:-off}
PYTHON=${PYTHON:-python3}
TIMEOUT=300
DOMAIN=bench.test
RCPT=bench@$DOMAIN
SENDER=loadgen@client.test
MEASURE=("$PYTHON" "$HERE/measure.py")

want() { case " $SERVERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

[ "$(id -u)" = 0 ] || die "run as root: it installs postfix and runs a private instance of it"
command -v "$PYTHON" >/dev/null || die "python3 is needed"

# --- tools -------------------------------------------------------------------
install_postfix
SMTP_SOURCE=$(find_smtp_source)
log "smtp-source: $SMTP_SOURCE"

if want engine && [ ! -x "$ENGINE" ]; then
    log "building the engine: swift build -c release --static-swift-stdlib --product postcell-engine"
    (cd "$ROOT" && swift build -c release --static-swift-stdlib --product postcell-engine) >&2
    [ -x "$ENGINE" ] || die "no engine binary at $ENGINE after the build"
fi

# --- work directory and cleanup ----------------------------------------------
W=$(mktemp -d "$BENCH_TMP/postcell-bench.XXXXXX")
chmod 755 "$W"
RESULTS=$W/results.jsonl
NOTES=$W/notes.txt
: >"$RESULTS"
: >"$NOTES"
ENGINE_PID=
FAILED=0
note() { echo "$*" >>"$NOTES"; log "$*"; }

cleanup() {
    local rc=$?
    if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then
        kill -TERM "$ENGINE_PID" 2>/dev/null || true
        for _ in $(seq 1 200); do kill -0 "$ENGINE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$ENGINE_PID" 2>/dev/null && kill -KILL "$ENGINE_PID" 2>/dev/null
    fi
    if [ -n "${KNOT_PID:-}" ]; then kill -TERM "$KNOT_PID" 2>/dev/null || true; fi
    postfix_stop "$W/postfix"
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
        log "work directory kept: $W"
    else
        rm -rf "$W"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Postfix -----------------------------------------------------------------
PF=$W/postfix
MAILDIR=$PF/vmail/bench/new
if want postfix; then
    if (exec 3<>"/dev/tcp/127.0.0.1/$POSTFIX_PORT") 2>/dev/null; then
        die "127.0.0.1:$POSTFIX_PORT is already in use; set POSTFIX_PORT"
    fi
    postfix_setup "$PF" "$POSTFIX_PORT" "$DOMAIN"
    postfix_start "$PF" "$POSTFIX_PORT"
    log "postfix listening on 127.0.0.1:$POSTFIX_PORT (config $PF/etc, log $PF/maillog)"
fi

# --- DNS for the engine's inbound checks (AUTH_CHECKS) -------------------------
# The engine checks SPF/DKIM/DMARC by default and asks DNS; the bench allows
# only loopback, so the checks are off unless a Knot on 127.0.0.1 answers.
KNOT_PID=
DNS_SERVER=
case $AUTH_CHECKS in
    off) ;;
    none|spf)
        KNOTD=$(command -v knotd || echo /usr/sbin/knotd)
        [ -x "$KNOTD" ] || die "AUTH_CHECKS=$AUTH_CHECKS needs knotd (apt-get install knot)"
        K=$W/knot
        mkdir -p "$K/zones" "$K/db" "$K/run"
        KNOT_PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        {
            echo '$ORIGIN client.test.'
            echo '@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300'
            echo '@ 300 IN NS ns'
            echo 'ns 300 IN A 127.0.0.1'
            if [ "$AUTH_CHECKS" = spf ]; then
                echo '@ 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"'
                echo '_dmarc 300 IN TXT "v=DMARC1; p=reject"'
            fi
        } >"$K/zones/client.test.zone"
        cat >"$K/knot.conf" <<KNOTCONF
server:
    rundir: "$K/run"
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$K/db"
template:
  - id: default
    storage: "$K/zones"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: client.test.
KNOTCONF
        "$KNOTD" -c "$K/knot.conf" >"$K/knot.log" 2>&1 &
        KNOT_PID=$!
        for _ in $(seq 1 100); do
            kdig @127.0.0.1 -p "$KNOT_PORT" +time=1 +retry=0 +short client.test SOA 2>/dev/null | grep -q hostmaster && break
            sleep 0.1
        done
        DNS_SERVER=127.0.0.1:$KNOT_PORT
        log "knot (for the inbound checks) on $DNS_SERVER, client.test publishes: $([ "$AUTH_CHECKS" = spf ] && echo 'SPF pass, DMARC p=reject' || echo nothing)"
        ;;
    *) die "AUTH_CHECKS is off, none or spf" ;;
esac

# --- the engine --------------------------------------------------------------
EN=$W/engine
CFG=$EN/cell.json
if want engine; then
    mkdir -p "$EN"
    note "engine inbound checks (AUTH_CHECKS): $AUTH_CHECKS"
    HASH=$(printf '%s\n' "bench password, not a secret" | "$ENGINE" hash-password --log2n 10) \
        || die "postcell-engine hash-password failed"
    HASH=$HASH RCPT=$RCPT DOMAIN=$DOMAIN DATA=$EN/data DNS_SERVER=$DNS_SERVER "$PYTHON" - "$CFG" <<'PY'
import json, os, sys
cfg = {
    "hostname": "mx." + os.environ["DOMAIN"],
    "dataDirectory": os.environ["DATA"],
    "domains": [os.environ["DOMAIN"]],
    "users": [{"address": os.environ["RCPT"], "password": os.environ["HASH"], "addresses": []}],
    "aliases": {},
    "listeners": [{"name": "mx", "role": "mx", "address": "127.0.0.1:0"}],
    "authentication": {"checks": bool(os.environ["DNS_SERVER"])},
}
if os.environ["DNS_SERVER"]:
    cfg["dns"] = {"servers": [os.environ["DNS_SERVER"]]}
with open(sys.argv[1], "w") as f:
    json.dump(cfg, f, indent=2)
PY
    "$ENGINE" serve --config "$CFG" >"$EN/engine.log" 2>&1 &
    ENGINE_PID=$!
    ENGINE_PORT=
    for _ in $(seq 1 300); do
        kill -0 "$ENGINE_PID" 2>/dev/null || { tail -50 "$EN/engine.log" >&2; ENGINE_PID=; die "engine exited before it was ready"; }
        if [ -s "$EN/data/run/listeners.json" ]; then
            ENGINE_PORT=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["mx"].rsplit(":",1)[1])' \
                "$EN/data/run/listeners.json" 2>/dev/null) && break
        fi
        sleep 0.1
    done
    [ -n "$ENGINE_PORT" ] || { tail -50 "$EN/engine.log" >&2; die "engine not ready after 30 s"; }
    log "engine pid $ENGINE_PID listening on 127.0.0.1:$ENGINE_PORT (data $EN/data, log $EN/engine.log)"
    STORE_COUNT_CMD="$(printf '%q mailbox list --config %q --user %q --mailbox INBOX' "$ENGINE" "$CFG" "$RCPT")"
fi

# --- idle memory ---------------------------------------------------------------
sleep 2
ENGINE_IDLE='{}'
POSTFIX_IDLE='{}'
if want engine; then
    ENGINE_IDLE=$("${MEASURE[@]}" mem "$ENGINE_PID")
    log "engine idle: $ENGINE_IDLE"
fi
POSTFIX_MASTER=
if want postfix; then
    POSTFIX_MASTER=$(tr -d ' ' <"$PF/spool/pid/master.pid")
    POSTFIX_IDLE=$("${MEASURE[@]}" mem --tree "$POSTFIX_MASTER")
    log "postfix idle (all processes): $POSTFIX_IDLE"
fi

# --- load runs ---------------------------------------------------------------
settle() { sync; sleep 1; }

# measured: NAME ARGS... runs one measure.py load; a run during which other
# processes used more than MAX_FOREIGN_CPU % of the machine is recorded as
# discarded and repeated (up to BUSY_RETRIES times, after a pause).
measured() {
    local name=$1 phase=$2; shift 2
    local attempt rc max=$MAX_FOREIGN_CPU retries=$BUSY_RETRIES
    [ "$phase" = measure ] || { max=0; retries=0; }
    for attempt in $(seq 0 "$retries"); do
        rc=0
        "${MEASURE[@]}" load --phase "$phase" "$@" --max-foreign-cpu "$max" --out "$RESULTS" || rc=$?
        [ "$rc" = 3 ] || break
        if [ "$attempt" -lt "$retries" ]; then
            log "$name: other processes were busy during the run; repeating it in ${BUSY_PAUSE}s"
            sleep "$BUSY_PAUSE"
        fi
    done
    return "$rc"
}

run_postfix() { # phase size n
    local rc=0
    measured postfix "$1" --server postfix --size "$2" --n "$3" --port "$POSTFIX_PORT" \
        --sessions "$SESSIONS" --smtp-source "$SMTP_SOURCE" --sender "$SENDER" --recipient "$RCPT" \
        --timeout "$TIMEOUT" --maildir "$MAILDIR" --pid "$POSTFIX_MASTER" --tree --interval 1 || rc=$?
    case $rc in
        0) ;;
        3) note "postfix $1 run (size $2): the machine stayed busy; the last attempt was kept out of the table" ;;
        *) FAILED=1; note "postfix $1 run (size $2, n $3) failed; see $PF/maillog" ;;
    esac
    local q; q=$(postfix_queue_count "$PF")
    [ "$q" = 0 ] || note "postfix: $q messages still queued after a $1 run ($(postfix_deferred_count "$PF") deferred)"
}

run_engine() { # phase size n
    if ! kill -0 "$ENGINE_PID" 2>/dev/null; then
        FAILED=1; note "engine process $ENGINE_PID is gone before the $1 run (size $2); see engine.log"
        return
    fi
    local rc=0
    measured engine "$1" --server engine --size "$2" --n "$3" --port "$ENGINE_PORT" \
        --sessions "$SESSIONS" --smtp-source "$SMTP_SOURCE" --sender "$SENDER" --recipient "$RCPT" \
        --timeout "$TIMEOUT" --store-count-cmd "$STORE_COUNT_CMD" --pid "$ENGINE_PID" || rc=$?
    case $rc in
        0) ;;
        3) note "engine $1 run (size $2): the machine stayed busy; the last attempt was kept out of the table" ;;
        *) FAILED=1; note "engine $1 run (size $2, n $3) failed: smtp-source error or stored count != sent" ;;
    esac
}

# Wait (up to QUIET_WAIT seconds) for the machine to be quiet: under 15% busy
# over 2 s, with both servers idle.
machine_busy_pct() {
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 2
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    echo "$a $b" | awk '{ t = $4 - $2; print (t > 0 ? int(100 * ($3 - $1) / t) : 0) }'
}
waited=0
while :; do
    BUSY=$(machine_busy_pct)
    [ "$BUSY" -lt 15 ] && break
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
        note "WARNING: the machine was ${BUSY}% busy before the bench started (other processes); figures are less reliable"
        break
    fi
    log "machine ${BUSY}% busy with other work; waiting for it to quiet down"
    sleep 10; waited=$((waited + 12))
done

if [ "$WARMUP" -gt 0 ]; then
    log "warm-up: $WARMUP x 4 KB to each server"
    want postfix && run_postfix warmup 4096 "$WARMUP"
    want engine && run_engine warmup 4096 "$WARMUP"
    settle
fi

for spec in "4096:$N_4K" "65536:$N_64K"; do
    size=${spec%%:*}; n=${spec##*:}
    for rep in $(seq 1 "$REPEATS"); do
        if want postfix; then
            log "postfix: $n x $size bytes (run $rep/$REPEATS)"
            run_postfix measure "$size" "$n"; settle
        fi
        if want engine; then
            log "engine: $n x $size bytes (run $rep/$REPEATS)"
            run_engine measure "$size" "$n"; settle
        fi
    done
done

# --- engine consistency and shutdown -------------------------------------------
if want engine; then
    if kill -0 "$ENGINE_PID" 2>/dev/null; then
        set +e
        CHECK_OUT=$("$ENGINE" check --config "$CFG" 2>&1); CHECK_RC=$?
        kill -TERM "$ENGINE_PID"
        wait "$ENGINE_PID"; ENGINE_RC=$?
        set -e
        ENGINE_PID=
        [ "$CHECK_RC" = 0 ] || { FAILED=1; note "engine 'check' exited $CHECK_RC: $(echo "$CHECK_OUT" | tail -5 | tr '\n' ' ')"; }
        [ "$ENGINE_RC" = 0 ] || { FAILED=1; note "engine exited $ENGINE_RC on SIGTERM (expected 0)"; }
        if grep -qiE 'error|fatal|panic|crash' "$EN/engine.log"; then
            note "engine.log has error lines, e.g.: $(grep -iE 'error|fatal|panic|crash' "$EN/engine.log" | head -3 | tr '\n' ' ')"
        fi
    else
        FAILED=1; note "engine process died during the bench; last log lines: $(tail -5 "$EN/engine.log" | tr '\n' ' ')"
        ENGINE_PID=
    fi
fi

# --- table -------------------------------------------------------------------
ENGINE_DESC=$ENGINE
if [ -x "$ENGINE" ]; then
    ENGINE_DESC="${ENGINE#"$ROOT"/} (built $(date -u -r "$ENGINE" +%Y-%m-%dT%H:%MZ), sha256 $(sha256sum "$ENGINE" | cut -c1-12))"
fi
ENGINE_IDLE=$ENGINE_IDLE POSTFIX_IDLE=$POSTFIX_IDLE ENGINE_DESC=$ENGINE_DESC SESSIONS=$SESSIONS \
REPEATS=$REPEATS N_4K=$N_4K N_64K=$N_64K NOTES=$NOTES MAX_FOREIGN_CPU=$MAX_FOREIGN_CPU "$PYTHON" - "$W/meta.json" <<'PY'
import json, os, platform, subprocess, sys, datetime
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"
mem_gib = int(sh("awk '/MemTotal/ {print $2}' /proc/meminfo") or 0) / 1048576
meta = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "machine": f"{os.cpu_count()} cores, {mem_gib:.0f} GiB, Linux {platform.release()}, "
               f"{sh('findmnt -no FSTYPE -T ' + os.path.dirname(sys.argv[1]))} work directory",
    "postfix_version": sh("postconf -d -h mail_version"),
    "engine": os.environ["ENGINE_DESC"],
    "sessions": os.environ["SESSIONS"],
    "repeats": os.environ["REPEATS"],
    "counts": f"{os.environ['N_4K']} (4 KB), {os.environ['N_64K']} (64 KB)",
    "engine_idle": json.loads(os.environ["ENGINE_IDLE"]),
    "max_foreign_cpu": os.environ["MAX_FOREIGN_CPU"],
    "postfix_idle_pss_kib": json.loads(os.environ["POSTFIX_IDLE"]).get("pss_kib"),
    "notes": [l.rstrip() for l in open(os.environ["NOTES"]) if l.strip()],
}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
PY
"${MEASURE[@]}" table "$RESULTS" "$W/meta.json" | tee "$HERE/last-run.txt"
exit "$FAILED"
