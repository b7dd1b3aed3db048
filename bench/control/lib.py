"""Shared helpers for the control-plane benches: a private `postcell up` on
free loopback ports with a temporary state directory (SQLite or a private
PostgreSQL), an HTTPS client for the panel and API, and cleanup of every
process the run started (postcell, the cells' sandboxes and engines, the
PostgreSQL server)."""

import glob
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POSTCELL = os.environ.get("POSTCELL", os.path.join(REPO, ".build/release/postcell"))
PG_BIN = "/usr/lib/postgresql/15/bin"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def port_free(p):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port_block(n):
    """A base B such that B .. B+n-1 are all free on 127.0.0.1 now."""
    rnd = random.Random()
    for _ in range(200):
        base = rnd.randrange(30000, 60000 - n) // 10 * 10
        if all(port_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free port block of %d" % n)


def rand_slug(prefix="bx"):
    return prefix + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def strong_password():
    """Random, no dictionary words, passes the policy (length, classes).
    cracklib refuses more than four neighbouring characters one apart
    ("ab", "87") as systematic; such draws (about 1 in 100) are drawn again."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    while True:
        pw = "-".join("".join(random.choice(alphabet) for _ in range(5)) for _ in range(4)) + "#7"
        low = pw.lower()
        if sum(1 for x, y in zip(low, low[1:]) if abs(ord(x) - ord(y)) == 1) <= 2:
            return pw


class HTTPS:
    """One keep-alive HTTPS connection to the panel (self-signed certificate)."""

    def __init__(self, port, host="127.0.0.1"):
        self.host, self.port = host, port
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.conn = None
        self.cookies = {}

    def _c(self):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        return self.conn

    def request(self, method, path, body=None, headers=None, json_body=None):
        h = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            h["Content-Type"] = "application/json"
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        for attempt in (0, 1):
            c = self._c()
            try:
                c.request(method, path, body=body, headers=h)
                r = c.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn = None
                if attempt:
                    raise
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


def login_cookie(port, email, password):
    """Logs in through the form (GET /login for the CSRF cookie, POST /login);
    returns the session cookie's value."""
    c = HTTPS(port)
    st, _, body = c.request("GET", "/login")
    assert st == 200, st
    m = re.search(rb'name="csrf" value="([^"]+)"', body)
    assert m, "no csrf field on /login"
    form = urllib.parse.urlencode({"csrf": m.group(1).decode(), "email": email, "password": password})
    st, h, _ = c.request("POST", "/login", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 303, ("login", st)
    sid = c.cookies.get("__Host-postcell")
    assert sid, "no session cookie"
    c.close()
    return sid


def api_token(port, email, password):
    c = HTTPS(port)
    st, _, body = c.request("POST", "/api/v1/tokens", json_body={"email": email, "password": password, "name": "bench"})
    c.close()
    assert st == 201, (st, body)
    return json.loads(body)["token"]


def read_link(state, email, after=0.0):
    """The verification link mailed to `email` (newest .eml in the outbox)."""
    for path in sorted(glob.glob(os.path.join(state, "outbox", "*.eml")), reverse=True):
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        if ("\r\nTo: %s\r\n" % email) in text:
            m = re.search(r"^(https://\S+/verify\?token=\S+)\s*$", text, re.M)
            if m:
                return m.group(1)
    return None


class PostgresServer:
    """A private PostgreSQL 15 on 127.0.0.1:PORT in a temporary directory,
    run as the system user postgres, trust authentication."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")
        self.port = free_port()
        self.proc = None

    def start(self):
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(os.path.dirname(self.dir), 0o755)
        def as_pg(*cmd, **kw):
            return subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + list(cmd),
                                  cwd="/", check=True, capture_output=True, **kw)
        as_pg(PG_BIN + "/initdb", "-D", self.dir + "/data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.proc = subprocess.Popen(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
                                      PG_BIN + "/postgres", "-D", self.dir + "/data", "-h", "127.0.0.1", "-p", str(self.port),
                                      "-k", self.dir, "-c", "fsync=on", "-c", "shared_buffers=128MB"],
                                     cwd="/", stdout=subprocess.DEVNULL, stderr=open(os.path.join(os.path.dirname(self.dir), "pg.log"), "w"),
                                     start_new_session=True)
        for _ in range(300):
            r = subprocess.run([PG_BIN + "/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True)
            if r.returncode == 0:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited")
            time.sleep(0.1)
        raise RuntimeError("postgres did not start")

    @property
    def url(self):
        return "postgres://postgres@127.0.0.1:%d/postgres" % self.port

    def psql(self, sql):
        return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-X", "-q",
                               "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, check=True).stdout

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class ControlPlane:
    """`postcell up` with its own state directory and ports."""

    def __init__(self, workdir, slots=20, database=None, demo=False):
        self.work = workdir
        self.state = os.path.join(workdir, "state")
        self.port = free_port()
        self.cell_base = free_port_block(slots * 10)
        self.database = database
        self.demo = demo
        self.proc = None

    def args(self):
        a = ["--state", self.state]
        if self.database:
            a += ["--database", self.database]
        return a

    def cli(self, *cmd, input=None, timeout=3600):
        r = subprocess.run([POSTCELL] + list(cmd) + self.args(), cwd=REPO, input=input, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("postcell %s failed: %s" % (cmd[0], r.stderr[-2000:]))
        return r.stdout

    def start(self, timeout=120):
        # The benches sign up many tenants from 127.0.0.1.
        cmd = [POSTCELL, "up", "--port", str(self.port), "--cell-port-base", str(self.cell_base), "--signups-per-hour", "0"] + self.args()
        if not self.demo:
            cmd.append("--no-demo")
        self.stdout = open(os.path.join(self.work, "postcell.out"), "w")
        self.stderr = open(os.path.join(self.work, "postcell.log"), "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self.stdout, stderr=self.stderr, start_new_session=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("postcell up exited %s; see %s" % (self.proc.returncode, self.stderr.name))
            with open(self.stdout.name) as f:
                if "Postcell is running." in f.read():
                    return self
            time.sleep(0.05)
        raise RuntimeError("postcell up not ready after %ds" % timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        kill_cells(self.state)


def kill_cells(state):
    """Ends the cells of this state directory: their cgroups (named after the
    cell, recorded in cells/run/ID.json) and every process whose command line
    names the state directory; then removes the cgroup directories."""
    records = []
    for path in glob.glob(os.path.join(state, "cells", "run", "*.json")):
        try:
            with open(path) as f:
                records.append(json.load(f))
        except (OSError, ValueError):
            pass
    for rec in records:
        # The cgroups are named after the cell (c-SLUG); the benches make
        # random slugs and run without the demo tenant, so these are ours.
        for d in (rec.get("cgroups") or {}).values():
            if not d or not os.path.basename(d).startswith("c-"):
                continue
            kill_file = os.path.join(d, "cgroup.kill")
            if os.path.exists(kill_file):
                try:
                    with open(kill_file, "w") as f:
                        f.write("1")
                except OSError:
                    pass
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    for line in f:
                        try:
                            os.kill(int(line), signal.SIGKILL)
                        except (ValueError, ProcessLookupError):
                            pass
            except OSError:
                pass
    for pid in pids_with(state):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.3)
    for rec in records:
        for d in (rec.get("cgroups") or {}).values():
            if d and "/c-" in d:
                for _ in range(20):
                    try:
                        os.rmdir(d)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.1)


def open_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except (OSError, TypeError):
        return ""


def finish(cp, pg, work, keep):
    """Stops the control plane and PostgreSQL of a bench run; removes the
    work directory unless `keep`; warns about processes left behind."""
    if cp:
        cp.stop()
    if pg:
        pg.stop()
    left = pids_with(work)
    if keep:
        log("work directory kept: %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    if left:
        log("WARNING: processes left: %s" % left)


def pids_with(text):
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != me and text in open_cmdline(int(d)):
            out.append(int(d))
    return out


def machine_ticks():
    """(total, idle) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def cpu_busy_sample(seconds=1.0):
    """Share of the machine busy over `seconds` (from /proc/stat)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v), idle
    t1, i1 = read()
    time.sleep(seconds)
    t2, i2 = read()
    return 1.0 - (i2 - i1) / max(1, (t2 - t1))


def machine_line():
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    return "machine: %d cores, %.0f GiB, Linux %s" % (os.cpu_count(), mem, os.uname().release)


def build_line():
    st = os.stat(POSTCELL)
    cfg = "release" if "/release/" in os.path.realpath(POSTCELL) else "debug"
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return "postcell %s build (%s, built %s UTC), work tree at %s when run" % (
        cfg, os.path.relpath(POSTCELL, REPO), time.strftime("%Y-%m-%d %H:%M", time.gmtime(st.st_mtime)), rev)


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, int(round(q * (len(xs) - 1)))))
    return xs[k]


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return float("nan")
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def wait_quiet(max_seconds=None, threshold=0.25):
    """Waits up to QUIET_WAIT seconds (default 120) for the machine to be
    under `threshold` busy over a 2 s sample; returns the last sample."""
    if max_seconds is None:
        max_seconds = float(os.environ.get("QUIET_WAIT", 120))
    t0 = time.monotonic()
    while True:
        b = cpu_busy_sample(2.0)
        if b < threshold or time.monotonic() - t0 >= max_seconds:
            if b >= threshold:
                log("machine still %.0f%% busy after %.0f s; measuring anyway" % (b * 100, max_seconds))
            return b
        log("machine %.0f%% busy; waiting for it to be under %.0f%%" % (b * 100, threshold * 100))
