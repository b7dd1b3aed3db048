#!/usr/bin/env python3
"""IMAP load for bench/imap/run.sh: postcell-engine against a private Dovecot
on the same machine, in the same run, one user with N messages each.

  load.py --engine BIN --work DIR [--messages 10000] [--sessions "1 10"] ...

Steps: generate N messages (deterministic, ~4 KB, varied headers, a third
multipart); deliver them to the engine over SMTP (its mx listener) and write
them as Maildir files for Dovecot; first use of each operation on each server
(cold); one unmeasured warm-up pass; then, for each session count, every
operation as its own phase on both servers (alternating which goes first).
A phase starts all sessions together and ends when each has done its share
of the operation count or the phase's time is up. Prints the table (also
written to --table) and exits 1 when something failed.

Both servers speak implicit TLS on 127.0.0.1 with the same certificate and
key (the engine's generated P-256 pair). Only 127.0.0.1 is contacted.
"""
import argparse
import datetime
import json
import multiprocessing
import os
import pathlib
import platform
import random
import re
import resource
import shutil
import smtplib
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))
from helpers_dovecot import Dovecot, dovecot_version, ensure_mail_user  # noqa: E402
sys.path.insert(0, str(HERE))
from corpus import SEARCH_FROM, SEARCH_WORD, USER, make_messages  # noqa: E402

HOST = "127.0.0.1"
DOMAIN = "bench.test"
PASSWORD = "bench password, not a secret"

# --- the raw IMAP client --------------------------------------------------

LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n")


class ImapError(Exception):
    pass


class Conn:
    """One IMAP session over implicit TLS. cmd() returns (seconds from the
    first byte sent to the end of the tagged response, the whole response).
    The tagged line is found without a per-line Python loop: literals are
    located with a regex and skipped, the tag is searched with bytes.find."""

    def __init__(self, port, timeout=120):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        t0 = time.perf_counter()
        raw = socket.create_connection((HOST, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw)
        self.buf = bytearray()
        self.n = 0
        while b"\r\n" not in self.buf:
            self._recv()
        end = self.buf.index(b"\r\n") + 2
        if not self.buf.startswith(b"* OK"):
            raise ImapError("greeting: " + bytes(self.buf[:end]).decode(errors="replace"))
        del self.buf[:end]
        self.connect_seconds = time.perf_counter() - t0

    def _recv(self):
        data = self.sock.recv(1 << 18)
        if not data:
            raise ImapError("connection closed")
        self.buf += data

    def cmd(self, text):
        self.n += 1
        tag = b"b%d" % self.n
        line = tag + b" " + text.encode() + b"\r\n"
        t0 = time.perf_counter()
        self.sock.sendall(line)
        buf = self.buf
        needle = b"\r\n" + tag + b" "
        pos = 0
        while True:
            m = LITERAL.search(buf, pos)
            limit = m.start() if m else len(buf)
            if pos == 0 and buf.startswith(tag + b" "):
                i = -2
            else:
                i = buf.find(needle, max(pos - 2, 0), limit + 2)
            if i != -1:
                j = buf.find(b"\r\n", i + 2)
                if j != -1:
                    elapsed = time.perf_counter() - t0
                    resp = bytes(buf[:j + 2])
                    del buf[:j + 2]
                    status = resp[i + 2 + len(tag) + 1:].split(b" ", 1)[0]
                    if status != b"OK":
                        raise ImapError(f"{text[:40]}: " + resp[i + 2:].decode(errors="replace").strip())
                    return elapsed, resp
            elif m:
                end = m.end() + int(m.group(1))
                if len(buf) >= end:
                    pos = end
                    continue
            else:
                pos = max(pos, len(buf) - len(needle) - 24)
            self._recv()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def login(port):
    c = Conn(port)
    c.cmd(f'LOGIN "{USER}" "{PASSWORD}"')
    c.cmd("SELECT INBOX")
    return c


# --- phases -----------------------------------------------------------------

# name, label, total operations at 1 session, total at more sessions. The
# counts let the faster server run for a second or more; the phase's time
# limit (--seconds) bounds the slower one.
PHASES = [
    ("login", "LOGIN (cycle: connect+TLS, LOGIN, LOGOUT)", 300, 600),
    ("select", "SELECT INBOX", 3000, 6000),
    ("envelope", "UID FETCH 1:* (FLAGS ENVELOPE)", 40, 60),
    ("body", "UID FETCH <random> (BODY.PEEK[])", 5000, 10000),
    ("store", "UID STORE <random> +FLAGS/-FLAGS (\\Flagged)", 3000, 6000),
    ("search_from", f"UID SEARCH FROM {SEARCH_FROM}", 300, 600),
    ("search_unseen", "UID SEARCH UNSEEN", 2000, 4000),
    ("search_body", f"UID SEARCH BODY {SEARCH_WORD}", 30, 60),
]
SUBOPS = {"login": ["connect", "login", "logout"]}


def phase_op(conn, phase, rng, uids):
    """Runs one operation of a phase; returns {subop: seconds}."""
    if phase == "select":
        return {"select": conn.cmd("SELECT INBOX")[0]}
    if phase == "envelope":
        t, resp = conn.cmd("UID FETCH 1:* (FLAGS ENVELOPE)")
        return {"envelope": t, "_bytes": len(resp), "_count": resp.count(b" FETCH (")}
    if phase == "body":
        return {"body": conn.cmd(f"UID FETCH {rng.choice(uids)} (BODY.PEEK[])")[0]}
    if phase == "store":
        u = rng.choice(uids)
        sign = rng.choice("+-")
        return {"store": conn.cmd(f"UID STORE {u} {sign}FLAGS (\\Flagged)")[0]}
    if phase == "search_from":
        return {"search_from": conn.cmd(f"UID SEARCH FROM {SEARCH_FROM}")[0]}
    if phase == "search_unseen":
        return {"search_unseen": conn.cmd("UID SEARCH UNSEEN")[0]}
    if phase == "search_body":
        return {"search_body": conn.cmd(f"UID SEARCH BODY {SEARCH_WORD}")[0]}
    raise ValueError(phase)


def worker(port, phase, count, seconds, seed, uids, barrier, out):
    """One session's share of a phase; puts a result dict on `out`."""
    rng = random.Random(seed)
    res = {"lat": {}, "ops": 0, "error": None, "start": None, "end": None, "bytes": [], "counts": []}
    conn = None
    try:
        if phase != "login":
            conn = login(port)
        barrier.wait(timeout=120)
        res["start"] = time.monotonic()
        deadline = res["start"] + seconds
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            if phase == "login":
                c = Conn(port)
                r = {"connect": c.connect_seconds,
                     "login": c.cmd(f'LOGIN "{USER}" "{PASSWORD}"')[0],
                     "logout": c.cmd("LOGOUT")[0]}
                c.close()
            else:
                r = phase_op(conn, phase, rng, uids)
            for k, v in r.items():
                if k == "_bytes":
                    res["bytes"].append(v)
                elif k == "_count":
                    res["counts"].append(v)
                else:
                    res["lat"].setdefault(k, []).append(v)
            res["ops"] += 1
        res["end"] = time.monotonic()
        if conn:
            conn.cmd("LOGOUT")
    except Exception as e:  # reported, makes the run fail
        res["error"] = f"{type(e).__name__}: {e}"
        res["end"] = res["end"] or time.monotonic()
        try:
            barrier.abort()
        except Exception:
            pass
    finally:
        if conn:
            conn.close()
    out.put(res)


def proc_tree(root):
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = open(f"/proc/{d}/stat").read()
                parent[int(d)] = int(s[s.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    tree, changed = {root}, True
    while changed:
        changed = False
        for p, pp in parent.items():
            if pp in tree and p not in tree:
                tree.add(p)
                changed = True
    return tree


def tree_cpu(root):
    """CPU seconds (user+system, reaped children included) of a process tree."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in proc_tree(root):
        try:
            f = open(f"/proc/{p}/stat").read()
            v = f[f.rindex(")") + 2:].split()
            total += int(v[11]) + int(v[12]) + int(v[13]) + int(v[14])
        except (OSError, ValueError, IndexError):
            pass
    return total / tick


def machine_cpu():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return busy / os.sysconf("SC_CLK_TCK"), sum(v[:8]) / os.sysconf("SC_CLK_TCK")


def run_phase(server, phase, sessions, total, seconds, uids, seed):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(sessions)
    out = ctx.Queue()
    share = max(1, total // sessions)
    cpu0, (busy0, all0) = tree_cpu(server["pid"]), machine_cpu()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    procs = [ctx.Process(target=worker, args=(server["port"], phase, share, seconds, seed * 100 + k,
                                              uids, barrier, out)) for k in range(sessions)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    cpu1, (busy1, all1) = tree_cpu(server["pid"]), machine_cpu()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
                  + self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime)
    errors = [r["error"] for r in results if r["error"]]
    starts = [r["start"] for r in results if r["start"]]
    ends = [r["end"] for r in results if r["end"]]
    wall = (max(ends) - min(starts)) if starts and ends else float("nan")
    lat = {}
    for r in results:
        for k, v in r["lat"].items():
            lat.setdefault(k, []).extend(v)
    ops = sum(r["ops"] for r in results)
    server_cpu = cpu1 - cpu0
    busy, span = busy1 - busy0, all1 - all0
    return {
        "server": server["name"], "phase": phase, "sessions": sessions, "ops": ops, "wall": wall,
        "rate": ops / wall if wall and wall > 0 else 0.0, "lat": lat, "errors": errors,
        "bytes": [b for r in results for b in r["bytes"]], "counts": [c for r in results for c in r["counts"]],
        "server_cpu": server_cpu, "client_cpu": client_cpu,
        # /proc/stat counts in 10 ms ticks: meaningless for very short phases.
        "foreign_pct": 100 * max(0.0, busy - server_cpu - client_cpu) / span if span >= 2 * os.cpu_count() else 0.0,
        "timed_out": ops < share * sessions,
    }


# --- servers ----------------------------------------------------------------

def log(msg):
    print(f"[imap-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def start_engine(binary, work, log2n):
    d = work / "engine"
    d.mkdir(parents=True)
    h = subprocess.run([binary, "hash-password", "--log2n", str(log2n)], input=(PASSWORD + "\n").encode(),
                       capture_output=True, check=True).stdout.decode().strip()
    cfg = {
        "hostname": "mx." + DOMAIN, "dataDirectory": str(d / "data"), "domains": [DOMAIN],
        "users": [{"address": USER, "password": h, "addresses": []}], "aliases": {},
        "listeners": [{"name": "mx", "role": "mx", "address": f"{HOST}:0"},
                      {"name": "imaps", "role": "imap", "address": f"{HOST}:0", "implicitTLS": True}],
        # No resolver on loopback here: the inbound SPF/DKIM/DMARC checks stay off.
        "authentication": {"checks": False},
    }
    (d / "cell.json").write_text(json.dumps(cfg, indent=2))
    logf = open(d / "engine.log", "ab")
    proc = subprocess.Popen([binary, "serve", "--config", str(d / "cell.json")], stdout=logf, stderr=subprocess.STDOUT)
    ready = d / "data" / "run" / "listeners.json"
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"engine exited {proc.returncode}; see {d / 'engine.log'}")
        if ready.exists():
            try:
                listeners = json.loads(ready.read_text())
                break
            except json.JSONDecodeError:
                pass
        time.sleep(0.1)
    else:
        raise RuntimeError("engine not ready after 30 s")
    port = lambda n: int(listeners[n].rsplit(":", 1)[1])  # noqa: E731
    return {"name": "engine", "proc": proc, "pid": proc.pid, "port": port("imaps"), "mx": port("mx"),
            "dir": d, "config": d / "cell.json"}


def deliver_smtp(port, msgs, connections=4):
    """Every message over SMTP, `connections` sessions in parallel."""
    errors = []

    def send(chunk):
        try:
            s = smtplib.SMTP(HOST, port, timeout=120)
            for m in chunk:
                s.sendmail("loadgen@client.test", [USER], m)
            s.quit()
        except Exception as e:
            errors.append(repr(e))
    threads = [threading.Thread(target=send, args=(msgs[k::connections],)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("SMTP delivery failed: " + errors[0])


def engine_received(i, date):
    """A Received field shaped like the one the engine prepends, so both
    servers hold messages of about the same size."""
    return (f"Received: from [127.0.0.1] ([127.0.0.1])\r\n\tby mx.{DOMAIN} (Postcell) with ESMTP id "
            f"{i:020x};\r\n\t{date}\r\n").encode()


def write_maildir(dovecot, msgs):
    """Messages as Maildir files in cur/ (Dovecot indexes them on first use)."""
    md = dovecot.maildir(USER)
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    uid, gid = ensure_mail_user()
    now = int(time.time())
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    for i, m in enumerate(msgs):
        data = engine_received(i, date) + m
        name = f"{now - len(msgs) + i}.M{i}P{os.getpid()}.bench,S={len(data)},W={len(data)}:2,"
        (md / "cur" / name).write_bytes(data)
    if os.geteuid() == 0:
        for p in [dovecot.mail_root, md, *md.rglob("*")]:
            os.chown(p, uid, gid)
    subprocess.run(["sync"], check=False)


# --- report -------------------------------------------------------------------

def pct(values, q):
    """Nearest-rank percentile."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(-(-q * len(v) // 100)) - 1))
    return v[k]


def ms(x):
    return "—" if x != x else (f"{x * 1000:.1f}" if x < 10 else f"{x * 1000:.0f}")


def rate(x):
    return "—" if x != x else f"{x:.1f}"


def ratio(a, b):
    return "—" if not b or a != a or b != b else f"{a / b:.2f}"


def table(meta, results, cold, notes, problems):
    L = []
    L.append(f"Postcell IMAP bench — {meta['date']}")
    L.append(f"machine: {meta['machine']}")
    L.append(f"dovecot {meta['dovecot']}, engine {meta['engine']}")
    L.append(f"mailbox: {meta['messages']} messages, {meta['mailbox_mib']:.1f} MiB, mean {meta['mean_kib']:.1f} KiB "
             f"({meta['multipart_pct']:.0f}% multipart); both servers over implicit TLS, same P-256 certificate")
    L.append(f"sessions: {meta['sessions']}; each phase ends after its operation count or {meta['seconds']} s; "
             f"all figures warm (after one unmeasured pass) unless marked cold")
    L.append("")
    L.append("| operation | sessions | dovecot ops/s | engine ops/s | engine/dovecot ops/s | dovecot p99 ms | engine p99 ms | engine/dovecot p99 |")
    L.append("|---|---|---|---|---|---|---|---|")
    by = {(r["server"], r["phase"], r["sessions"]): r for r in results}
    for sessions in meta["session_list"]:
        for phase, label, _, _ in PHASES:
            d, e = by.get(("dovecot", phase, sessions)), by.get(("engine", phase, sessions))
            if not d and not e:
                continue
            for sub in SUBOPS.get(phase, [phase]):
                name = label if sub == phase or sub == "login" else {"connect": "  connect + TLS handshake + greeting",
                                                                    "logout": "  LOGOUT"}[sub]
                dr = d["rate"] if d else float("nan")
                er = e["rate"] if e else float("nan")
                dp = pct(d["lat"].get(sub, []), 99) if d else float("nan")
                ep = pct(e["lat"].get(sub, []), 99) if e else float("nan")
                rate_cols = (rate(dr), rate(er), ratio(er, dr)) if sub in (phase, "login") else ("—", "—", "—")
                L.append(f"| {name} | {sessions} | {rate_cols[0]} | {rate_cols[1]} | {rate_cols[2]} | "
                         f"{ms(dp)} | {ms(ep)} | {ratio(ep, dp)} |")
    L.append("")
    L.append(f"UID FETCH 1:* (FLAGS ENVELOPE) on {meta['messages']} messages, ms (goal: engine under 200 ms):")
    L.append("")
    L.append("| server | sessions | samples | min | median | p99 | response KiB |")
    L.append("|---|---|---|---|---|---|---|")
    for server in ("dovecot", "engine"):
        c = cold.get(server, {}).get("envelope")
        if c:
            L.append(f"| {server} (cold: first after delivery) | 1 | 1 | {ms(c[0])} | {ms(c[0])} | {ms(c[0])} | {c[1] / 1024:.0f} |")
        for sessions in meta["session_list"]:
            r = by.get((server, "envelope", sessions))
            if r:
                v = r["lat"].get("envelope", [])
                kib = statistics.mean(r["bytes"]) / 1024 if r["bytes"] else float("nan")
                L.append(f"| {server} | {sessions} | {len(v)} | {ms(min(v)) if v else '—'} | "
                         f"{ms(statistics.median(v)) if v else '—'} | {ms(pct(v, 99))} | {kib:.0f} |")
    L.append("")
    L.append("cold (first use after delivery, one session; the OS page cache holds the files), ms:")
    for op in ("select", "envelope", "body", "search_from", "search_unseen", "search_body"):
        d, e = cold.get("dovecot", {}).get(op), cold.get("engine", {}).get(op)
        if d or e:
            L.append(f"  {op:14} dovecot {ms(d[0]) if d else '—':>7}   engine {ms(e[0]) if e else '—':>7}")
    L.append("")
    L.append("server CPU per operation (ms, whole process tree) / other processes' CPU during the phase (% of machine):")
    for sessions in meta["session_list"]:
        parts = []
        for phase, _, _, _ in PHASES:
            d, e = by.get(("dovecot", phase, sessions)), by.get(("engine", phase, sessions))
            if d and e and d["ops"] and e["ops"]:
                parts.append(f"{phase} {1000 * d['server_cpu'] / d['ops']:.2f}/{1000 * e['server_cpu'] / e['ops']:.2f}"
                             f" ({max(d['foreign_pct'], e['foreign_pct']):.0f}%)")
        L.append(f"  {sessions} session(s), dovecot/engine: " + ", ".join(parts))
    L.append(f"search hits (dovecot/engine, expected): {meta['hits']}")
    if notes:
        L.append("notes:")
        L += [f"  - {n}" for n in notes]
    if problems:
        L.append("")
        L.append("PROBLEMS:")
        L += [f"  - {p}" for p in problems]
    return "\n".join(L) + "\n"


# --- main -------------------------------------------------------------------------

def busy_pct(seconds=2):
    b0, a0 = machine_cpu()
    time.sleep(seconds)
    b1, a1 = machine_cpu()
    return 100 * (b1 - b0) / (a1 - a0) if a1 > a0 else 0


def search_count(resp):
    for line in resp.split(b"\r\n"):
        if line.startswith(b"* SEARCH"):
            return len(line.split()) - 2
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--sessions", default="1 10")
    ap.add_argument("--seconds", type=float, default=20, help="time limit of one phase")
    ap.add_argument("--max-foreign-cpu", type=float, default=25,
                    help="a phase during which other processes used more than this %% of the machine is repeated")
    ap.add_argument("--busy-retries", type=int, default=2)
    ap.add_argument("--busy-pause", type=float, default=10)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every phase's operation count")
    ap.add_argument("--log2n", type=int, default=10, help="scrypt cost of the engine user's password hash")
    ap.add_argument("--phases", default=" ".join(p[0] for p in PHASES))
    ap.add_argument("--servers", default="dovecot engine")
    ap.add_argument("--quiet-wait", type=float, default=300)
    ap.add_argument("--table", help="also write the table here")
    a = ap.parse_args()

    work = pathlib.Path(a.work)
    session_list = [int(x) for x in a.sessions.split()]
    phases = [p for p in PHASES if p[0] in a.phases.split()]
    servers_wanted = a.servers.split()
    problems, notes = [], []

    log(f"generating {a.messages} messages")
    msgs, from_hits, word_hits = make_messages(a.messages)
    total_bytes = sum(len(m) for m in msgs)
    multipart = sum(1 for m in msgs if b"Content-Type: multipart/" in m)

    servers = []
    dovecot = None
    engine = None
    try:
        if "engine" in servers_wanted:
            engine = start_engine(a.engine, work, a.log2n)
            log(f"engine pid {engine['pid']} imaps 127.0.0.1:{engine['port']}; delivering over SMTP")
            t = time.monotonic()
            deliver_smtp(engine["mx"], msgs)
            log(f"delivered {len(msgs)} to the engine in {time.monotonic() - t:.1f} s")
            servers.append(engine)
        if "dovecot" in servers_wanted:
            tls = work / "engine" / "data" / "tls"
            cert, key = (tls / "cert.pem", tls / "key.pem") if engine else (None, None)
            if cert:
                shutil.copy(cert, work / "cert.pem")
                shutil.copy(key, work / "key.pem")
                cert, key = work / "cert.pem", work / "key.pem"
            dovecot = Dovecot({USER: PASSWORD}, directory=work / "dovecot", tls=True, cert=cert, key=key)
            write_maildir(dovecot, msgs)
            dovecot.start()
            d = {"name": "dovecot", "pid": dovecot.proc.pid, "port": dovecot.port, "obj": dovecot}
            log(f"dovecot pid {d['pid']} imaps 127.0.0.1:{d['port']} (dir {dovecot.dir})")
            servers.insert(0, d)

        waited = 0
        while True:
            b = busy_pct()
            if b < 15 or waited >= a.quiet_wait:
                if b >= 15:
                    notes.append(f"machine {b:.0f}% busy with other work at the start; figures less reliable")
                break
            log(f"machine {b:.0f}% busy with other work; waiting")
            time.sleep(8)
            waited += 10

        # Cold: first use of each operation after delivery, one session.
        cold, uids, hits = {}, {}, {}
        for s in servers:
            c = Conn(s["port"])
            c.cmd(f'LOGIN "{USER}" "{PASSWORD}"')
            t, resp = c.cmd("SELECT INBOX")
            cold.setdefault(s["name"], {})["select"] = (t, len(resp))
            exists = int(re.search(rb"\* (\d+) EXISTS", resp).group(1))
            if exists != len(msgs):
                problems.append(f"{s['name']}: INBOX has {exists} messages, expected {len(msgs)}")
            t, resp = c.cmd("UID FETCH 1:* (FLAGS ENVELOPE)")
            cold[s["name"]]["envelope"] = (t, len(resp))
            got = resp.count(b" FETCH (")
            if got != len(msgs):
                problems.append(f"{s['name']}: UID FETCH 1:* returned {got} messages, expected {len(msgs)}")
            _, resp = c.cmd("UID SEARCH ALL")
            uids[s["name"]] = [int(x) for x in resp.split(b"\r\n")[0].split()[2:]]
            t, resp = c.cmd(f"UID FETCH {uids[s['name']][len(msgs) // 2]} (BODY.PEEK[])")
            cold[s["name"]]["body"] = (t, len(resp))
            t, resp = c.cmd(f"UID SEARCH FROM {SEARCH_FROM}")
            cold[s["name"]]["search_from"] = (t, len(resp))
            nf = search_count(resp)
            # 30% of the messages stay unseen.
            seen_upto = uids[s["name"]][int(len(msgs) * 0.7) - 1]
            c.cmd(f"UID STORE 1:{seen_upto} +FLAGS.SILENT (\\Seen)")
            t, resp = c.cmd("UID SEARCH UNSEEN")
            cold[s["name"]]["search_unseen"] = (t, len(resp))
            nu = search_count(resp)
            t, resp = c.cmd(f"UID SEARCH BODY {SEARCH_WORD}")
            cold[s["name"]]["search_body"] = (t, len(resp))
            nb = search_count(resp)
            hits[s["name"]] = (nf, nu, nb)
            c.cmd("LOGOUT")
            c.close()
        expected = (from_hits, len(msgs) - int(len(msgs) * 0.7), word_hits)
        for name, h in hits.items():
            if h != expected:
                problems.append(f"{name}: SEARCH FROM/UNSEEN/BODY found {h}, expected {expected}")
        hits_text = ", ".join(f"{n} {h}" for n, h in hits.items()) + f", expected {expected} (FROM, UNSEEN, BODY)"
        log("cold pass done: " + json.dumps({k: {o: round(v[0] * 1000, 1) for o, v in ops.items()} for k, ops in cold.items()}))

        # Warm-up: one unmeasured pass of every phase, one session.
        for phase, _, n1, _ in phases:
            for s in servers:
                r = run_phase(s, phase, 1, max(2, int(n1 * a.scale) // 10), min(a.seconds, 10), uids[s["name"]], 7)
                if r["errors"]:
                    problems.append(f"{s['name']} warm-up {phase}: {r['errors'][0]}")
        log("warm-up done")

        results, limited, repeated = [], [], 0
        flip = False
        for sessions in session_list:
            for phase, label, n1, nmany in phases:
                total = max(sessions, int((n1 if sessions == 1 else nmany) * a.scale))
                order = servers[::-1] if flip else servers
                flip = not flip
                for s in order:
                    if s["name"] == "engine" and s["proc"].poll() is not None:
                        problems.append(f"engine exited ({s['proc'].returncode}) before {phase}/{sessions}")
                        continue
                    for attempt in range(a.busy_retries + 1):
                        r = run_phase(s, phase, sessions, total, a.seconds, uids[s["name"]], 11)
                        if r["foreign_pct"] <= a.max_foreign_cpu or attempt == a.busy_retries:
                            break
                        repeated += 1
                        log(f"{s['name']} {phase} x{sessions}: other processes used {r['foreign_pct']:.0f}% "
                            f"of the machine; repeating in {a.busy_pause:.0f} s")
                        time.sleep(a.busy_pause)
                    results.append(r)
                    main_lat = r["lat"].get("login" if phase == "login" else phase, [])
                    log(f"{s['name']:7} {phase:13} x{sessions:<3} {r['ops']:5} ops {r['rate']:8.1f}/s "
                        f"p50 {ms(pct(main_lat, 50))} p99 {ms(pct(main_lat, 99))} ms "
                        f"server cpu {r['server_cpu']:.1f}s foreign {r['foreign_pct']:.0f}%")
                    for err in r["errors"][:3]:
                        problems.append(f"{s['name']} {phase} x{sessions}: {err}")
                    if r["timed_out"]:
                        limited.append(f"{s['name']} {phase} x{sessions} ({r['ops']}/{total})")
                    bad = [c for c in r["counts"] if c != len(msgs)]
                    if bad:
                        problems.append(f"{s['name']} envelope x{sessions}: a FETCH returned {bad[0]} messages")
                    if r["foreign_pct"] > a.max_foreign_cpu:
                        notes.append(f"{s['name']} {phase} x{sessions}: other processes used "
                                     f"{r['foreign_pct']:.0f}% of the machine during the phase (kept after "
                                     f"{a.busy_retries} repeats)")
                time.sleep(0.5)

        if limited:
            notes.append(f"stopped by the {a.seconds:.0f} s limit (operations done/planned): " + ", ".join(limited))
        notes.append(f"{repeated} phase(s) repeated because other processes used more than "
                     f"{a.max_foreign_cpu:.0f}% of the machine")
        if engine:
            if engine["proc"].poll() is not None:
                problems.append(f"engine exited {engine['proc'].returncode} during the bench")
            else:
                chk = subprocess.run([a.engine, "check", "--config", str(engine["config"])], capture_output=True)
                if chk.returncode != 0:
                    problems.append("engine 'check' failed: " + (chk.stdout + chk.stderr).decode(errors="replace")[-300:])
        if dovecot and re.search(r"Panic|Fatal", dovecot.log()):
            problems.append("dovecot.log has Panic/Fatal lines")
    finally:
        if engine:
            engine["proc"].terminate()
            try:
                engine["proc"].wait(20)
            except subprocess.TimeoutExpired:
                engine["proc"].kill()
                problems.append("engine did not exit within 20 s of SIGTERM")
        if dovecot:
            dovecot.stop()

    eng = pathlib.Path(a.engine)
    try:
        rel = eng.resolve().relative_to(ROOT)
    except ValueError:
        rel = eng
    import hashlib
    sha = hashlib.sha256(eng.read_bytes()).hexdigest()[:12] if eng.exists() else "?"
    mem_gib = int(open("/proc/meminfo").readline().split()[1]) / 1048576
    fstype = subprocess.run(["findmnt", "-no", "FSTYPE", "-T", str(work)], capture_output=True, text=True).stdout.strip()
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {mem_gib:.0f} GiB, Linux {platform.release()}, {fstype} work directory",
        "dovecot": (dovecot_version() or "?").split()[0],
        "engine": f"{rel} (built {datetime.datetime.fromtimestamp(eng.stat().st_mtime, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%MZ')}, sha256 {sha})",
        "messages": len(msgs), "mailbox_mib": total_bytes / 1048576, "mean_kib": total_bytes / len(msgs) / 1024,
        "multipart_pct": 100 * multipart / len(msgs), "sessions": " and ".join(map(str, session_list)),
        "session_list": session_list, "seconds": int(a.seconds), "hits": hits_text if servers else "",
    }
    out = table(meta, results, cold, notes, problems)
    sys.stdout.write(out)
    if a.table:
        pathlib.Path(a.table).write_text(out)
    (work / "results.json").write_text(json.dumps({"meta": meta, "cold": cold, "results": [
        {k: v for k, v in r.items()} for r in results]}, default=str))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
