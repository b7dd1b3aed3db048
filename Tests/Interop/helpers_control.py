"""Black-box helpers for the control plane (`postcell up`, docs/CONTROL-PLANE.md):
start it on free loopback ports with a temporary state directory (SQLite, or
a fresh PostgreSQL database when POSTCELL_TEST_POSTGRES_URL is set), wait for
it, read the demo logins it prints and the verification mail it writes to
STATE/outbox, talk HTTPS to it (self-signed certificate: no verification),
reach the cells' mail ports, and clean up: the control plane, every process
of its cells (found through the run records and their cgroups, and checked to
be ours), the database and the state directory.

Everything listens on and connects to 127.0.0.1 only.
"""
import hashlib
import contextlib
import email
import email.policy
import glob
import imaplib
import json
import os
import pathlib
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import pytest
import requests
import urllib3

from conftest import ENGINE, ROOT
from helpers_clients import insecure_tls_context

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

POSTCELL = os.environ.get("POSTCELL_BIN", str(pathlib.Path(ENGINE).with_name("postcell")))
PROVIDER_DOMAIN = "postcell.test"
HOST = "127.0.0.1"
ARTIFACTS = ROOT / "artifacts"
# Cell listeners: base + slot * 10 + offset (docs/CONTROL-PLANE.md, Cells).
PORT_OFFSETS = {"mx": 0, "submission": 1, "submissions": 2, "imap": 3, "imaps": 4, "pop3": 5, "pop3s": 6}
SLOTS_RESERVED = 16

_WORDS = ("velvet otter quarry lantern maple cobalt harbor pepper tundra walnut "
          "sparrow meadow glacier copper violet canyon biscuit falcon juniper pebble").split()


def strong_password():
    """A password the policy accepts: unrelated words and digits, unique per call.

    cracklib calls a password "too simplistic/systematic" when more than four
    neighbouring characters differ by one ("no", "ba", "8765"); candidates with
    more than two such steps are drawn again so that no draw is refused.
    """
    r = random.SystemRandom()
    while True:
        candidate = "-".join(r.sample(_WORDS, 3)).capitalize() + "-" + str(r.randint(1000, 9999))
        lower = candidate.lower()
        steps = sum(1 for a, b in zip(lower, lower[1:]) if abs(ord(a) - ord(b)) == 1)
        if steps <= 2:
            return candidate


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


# MARK: ports

def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _bindable(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port_base(slots=SLOTS_RESERVED):
    """A cell port base (multiple of 10) whose next slots*10 ports are free now."""
    r = random.SystemRandom()
    for _ in range(500):
        base = r.randrange(21000, 59000) // 10 * 10
        if all(_bindable(base + i) for i in range(slots * 10)):
            return base
    raise RuntimeError("no free block of cell ports on 127.0.0.1")


def port_answers(port, timeout=1.0):
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# MARK: databases

def postgres_url():
    return os.environ.get("POSTCELL_TEST_POSTGRES_URL")


def backends():
    """The databases every control-plane test module runs on."""
    return ["sqlite"] + (["postgres"] if postgres_url() else [])


def _psql(url, sql):
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True, capture_output=True, timeout=60)


def _with_database(url, name):
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


class FreshPostgres:
    """A database of its own on the test server, dropped afterwards."""

    def __init__(self, url):
        self.admin_url = url
        self.name = "e2e_" + uuid.uuid4().hex[:16]
        _psql(url, f"CREATE DATABASE {self.name}")
        self.url = _with_database(url, self.name)

    def drop(self):
        with contextlib.suppress(Exception):
            _psql(self.admin_url, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


# MARK: processes and cgroups

def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def cmdline(pid):
    return [a.decode(errors="replace") for a in _read(f"/proc/{pid}/cmdline").split(b"\0") if a]


def ppid(pid):
    stat = _read(f"/proc/{pid}/stat").decode(errors="replace")
    if not stat:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


def pid_alive(pid):
    stat = _read(f"/proc/{pid}/stat").decode(errors="replace")
    return bool(stat) and stat[stat.rindex(")") + 2:].split()[0] != "Z"


def descendants(root):
    """root and every process below it (from /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            p = ppid(int(d))
            if p is not None:
                children.setdefault(p, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cgroup_procs(cgroup_dir):
    if not cgroup_dir:
        return []
    return [int(x) for x in _read(os.path.join(cgroup_dir, "cgroup.procs")).split()]


def own_cgroup_dirs(name):
    """Where the provisioner makes cgroup `name` (under this process's own
    cgroup in each hierarchy, docs/PROVISIONING.md Limits), where they exist."""
    out = []
    for line in _read("/proc/self/cgroup").decode().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in (controllers.split(",") if controllers else ["unified"]):
            if c.startswith("name="):
                continue
            root = f"/sys/fs/cgroup/{c}" if c != "unified" else "/sys/fs/cgroup/unified"
            d = os.path.join(root + path.rstrip("/"), name)
            if os.path.isdir(d) and d not in out:
                out.append(d)
    return out


def remove_cgroup(d, timeout=5):
    """rmdir of an emptied cgroup (its last processes may take a moment to go)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(d)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)


class CellRun:
    """A cell's run record (STATE/cells/run/ID.json) and its processes."""

    def __init__(self, state, cell_id):
        self.state = pathlib.Path(state)
        self.id = cell_id
        self.path = self.state / "cells" / "run" / f"{cell_id}.json"
        self.record = json.loads(self.path.read_text())

    @property
    def pid(self):
        return self.record["pid"]

    @property
    def data_directory(self):
        return self.record["dataDirectory"]

    def cgroups(self):
        return {k: v for k, v in (self.record.get("cgroups") or {}).items() if v}

    def ours(self, pid):
        """Whether pid belongs to this cell: the launcher (its command line
        names our data directory) or a process below it."""
        return pid in descendants(self.pid) and any(self.data_directory in a for a in cmdline(self.pid))

    def processes(self):
        """Every process of the cell: the recorded launcher (checked by its
        command line) and everything below it."""
        if not any(self.data_directory in a for a in cmdline(self.pid)):
            return []
        return sorted(descendants(self.pid))

    def engine_pids(self):
        """The engine(s) inside the sandbox (/engine serve ...) or, unsandboxed, ENGINE serve,
        found in the cell's cgroup among the processes below its launcher."""
        out = []
        if not any(self.data_directory in a for a in cmdline(self.pid)):
            return out
        ours = set(descendants(self.pid))
        for cg in ("unified", "pids", "memory"):
            d = self.cgroups().get(cg)
            for pid in cgroup_procs(d):
                if pid not in ours:
                    continue  # another control plane's cell of the same name (c-demo)
                args = cmdline(pid)
                if args and (args[0] == "/engine" or args[0].endswith("postcell-engine")) and "serve" in args and pid_alive(pid):
                    out.append(pid)
            if out:
                break
        return sorted(set(out))

    def kill(self):
        """SIGKILL to every process of this cell, verified to be ours."""
        victims = self.processes()
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # Members of our cgroups that did not show up in the tree (reparented
        # to init after the launcher died) but run our engine's data dir.
        for d in self.cgroups().values():
            for pid in cgroup_procs(d):
                args = cmdline(pid)
                if any(self.data_directory in a for a in args):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        return victims


# MARK: the control plane

class ControlPlane:
    """One `postcell up` on 127.0.0.1 with its own state directory."""

    leftover_cgroups = ()

    def __init__(self, state, database_url=None, sandbox=None, demo=True, port=None, cell_base=None, extra_args=()):
        self.state = pathlib.Path(state)
        self.state.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.sandbox = sandbox if sandbox is not None else os.environ.get("POSTCELL_TEST_SANDBOX")
        self.demo = demo
        self.port = port or free_port()
        self.cell_base = cell_base or free_port_base()
        self.extra_args = list(extra_args)
        self.proc = None
        self.staff = None      # (email, password) of the demo admin
        self.customer = None   # (email, password, mailbox) of the demo owner
        self.starts = 0
        self.known_cells = set()

    @property
    def url(self):
        return f"https://{HOST}:{self.port}"

    def log_paths(self):
        return self.state / f"up-{self.starts}.out", self.state / f"up-{self.starts}.err"

    def start(self, timeout=120):
        self.starts += 1
        out, err = self.log_paths()
        args = [POSTCELL, "up", "--state", str(self.state), "--port", str(self.port),
                "--cell-port-base", str(self.cell_base), "--engine", ENGINE]
        if self.database_url:
            args += ["--database", self.database_url]
        if self.sandbox:
            args += ["--sandbox", self.sandbox]
        if not self.demo:
            args.append("--no-demo")
        args += self.extra_args
        with open(out, "wb") as o, open(err, "wb") as e:
            # Run from the repository: templates/ and Billing/plans.json are relative.
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = out.read_text(errors="replace")
            if "Stop with Ctrl-C" in text:
                self._parse(text)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"postcell up exited with {self.proc.returncode}:\n{text}\n{self.stderr()}")
            time.sleep(0.1)
        raise RuntimeError("postcell up did not become ready:\n" + out.read_text(errors="replace") + self.stderr())

    def _parse(self, text):
        m = re.search(r"Staff:\s+(\S+) / (\S+)", text)
        self.staff = (m.group(1), m.group(2)) if m else None
        m = re.search(r"Customer:\s+(\S+) / (\S+)\s+\(mailbox (\S+),", text)
        self.customer = (m.group(1), m.group(2), m.group(3)) if m else None
        panel = re.search(r"Panel:\s+(https://\S+?)/?\s", text)
        assert panel and panel.group(1).rstrip("/") == self.url, text

    def stdout(self):
        out, _ = self.log_paths()
        return out.read_text(errors="replace") if out.exists() else ""

    def stderr(self, tail=12000):
        _, err = self.log_paths()
        return err.read_text(errors="replace")[-tail:] if err.exists() else ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the control plane only; cells keep running (by design)."""
        self.cell_runs()  # remember which cells existed, for teardown
        if self.running():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def restart(self, timeout=120):
        self.stop()
        return self.start(timeout)

    # Cells

    def cell_runs(self):
        runs = {}
        for p in glob.glob(str(self.state / "cells" / "run" / "*.json")):
            cid = pathlib.Path(p).stem
            with contextlib.suppress(Exception):
                runs[cid] = CellRun(self.state, cid)
                self.known_cells.add(cid)
        return runs

    def cell_ids(self):
        """Every cell this state has known: uids.json hands out one index per cell id."""
        ids = set(self.known_cells)
        with contextlib.suppress(Exception):
            ids.update(json.loads((self.state / "cells" / "uids.json").read_text()).get("cells", {}))
        with contextlib.suppress(OSError):
            ids.update(os.listdir(self.state / "cells" / "cells"))
        return ids

    def cell_run(self, cell_id, timeout=30):
        return wait_for(lambda: self.cell_runs().get(cell_id), timeout, what=f"run record of {cell_id}")

    def ports(self, slot):
        return {name: self.cell_base + slot * 10 + off for name, off in PORT_OFFSETS.items()}

    def cell_processes(self):
        procs = []
        for run in self.cell_runs().values():
            procs += run.processes()
        return procs

    def teardown(self):
        """Stops the control plane and every process of its cells; removes the state."""
        with contextlib.suppress(Exception):
            self.stop(timeout=20)
        for _ in range(3):
            runs = self.cell_runs()
            for run in runs.values():
                run.kill()
            time.sleep(0.3)
            if not any(run.processes() for run in self.cell_runs().values()):
                break
        # Leave nothing behind: our cells' cgroups, also those of cells whose
        # run record is gone (a crashed cell waiting to restart when the
        # control plane stopped). Cell ids of this state are random, except
        # the demo's, which another control plane may share: its cgroups go
        # only when its run record names them.
        # Cgroups named after the demo cell (c-demo) are shared with every
        # other control plane on this machine: only emptied ones are removed,
        # nobody else's processes are touched.
        # Cgroup names carry a hash of the state directory
        # (ControlPlaneApp.provisionerConfiguration), so all of these are ours.
        shared = {d for run in self.cell_runs().values() for d in run.cgroups().values()}
        prefix = "postcell-" + hashlib.sha256(str(self.state).encode()).hexdigest()[:8] + "-"
        own = set()
        for cid in self.cell_ids():
            own.update(own_cgroup_dirs(prefix + cid))
        for d in sorted(own):
            for pid in cgroup_procs(d):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            remove_cgroup(d)
        for d in sorted(shared - own):
            if os.path.isdir(d) and not cgroup_procs(d):
                with contextlib.suppress(OSError):
                    os.rmdir(d)
        cgroups = own
        self.leftover_cgroups = [d for d in cgroups if os.path.isdir(d)]
        left = [pid for run in self.cell_runs().values() for pid in run.processes() if pid_alive(pid)]
        shutil.rmtree(self.state, ignore_errors=True)
        return left

    # Outbox

    def verification_link(self, to, timeout=10):
        """The https://…/verify?token=… link of the newest mail to `to`."""
        def find():
            best = None
            for p in glob.glob(str(self.state / "outbox" / "*.eml")):
                msg = email.message_from_bytes(pathlib.Path(p).read_bytes(), policy=email.policy.default)
                if to.lower() not in str(msg.get("To", "")).lower():
                    continue
                body = msg.get_body(preferencelist=("plain",))
                text = body.get_content() if body else msg.get_payload()
                m = re.search(r"https://\S+/verify\?token=[A-Za-z0-9_\-]+", text)
                if m and (best is None or os.path.getmtime(p) >= best[0]):
                    best = (os.path.getmtime(p), m.group(0))
            return best and best[1]
        link = wait_for(find, timeout, what=f"verification mail to {to}")
        assert link.startswith(self.url + "/verify?token="), link
        return link


# MARK: HTTPS clients

def session():
    s = requests.Session()
    s.verify = False
    s.trust_env = False  # never a proxy: everything is on 127.0.0.1
    return s


CSRF_RE = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_of(html):
    m = CSRF_RE.search(html)
    assert m, "no CSRF field in the page"
    return m.group(1)


class Panel:
    """The HTML panel through requests: forms with their CSRF tokens."""

    def __init__(self, cp):
        self.cp = cp
        self.s = session()

    def get(self, path, **kw):
        return self.s.get(self.cp.url + path, timeout=60, **kw)

    def post(self, path, data, **kw):
        return self.s.post(self.cp.url + path, data=data, timeout=60, **kw)

    def form(self, page, action, data, **kw):
        """GETs `page` for its CSRF token, then POSTs `data` to `action`."""
        r = self.get(page)
        r.raise_for_status()
        return self.post(action, {"csrf": csrf_of(r.text), **data}, **kw)

    def signup(self, email, password, slug, name="The Test family", plan="family-mini"):
        return self.form("/signup", "/signup", {"name": name, "slug": slug, "plan": plan, "email": email, "password": password})

    def login(self, email, password, totp=None):
        r = self.form("/login", "/login", {"email": email, "password": password}, allow_redirects=False)
        if r.status_code == 303 and r.headers["Location"] == "/login/totp" and totp is not None:
            r = self.form("/login/totp", "/login/totp", {"code": totp}, allow_redirects=False)
        return r

    def logged_in(self):
        r = self.get("/", allow_redirects=False)
        return r.status_code == 303 and r.headers["Location"] in ("/panel", "/staff")


class API:
    """The REST API (JSON, bearer tokens)."""

    def __init__(self, cp, token=None):
        self.cp = cp
        self.token = token
        self.s = session()

    def call(self, method, path, body=None, token=None, raw=None, headers=None):
        h = dict(headers or {})
        t = token if token is not None else self.token
        if t:
            h["Authorization"] = "Bearer " + t
        if raw is not None:
            h.setdefault("Content-Type", "application/json")
            return self.s.request(method, self.cp.url + path, data=raw, headers=h, timeout=60)
        return self.s.request(method, self.cp.url + path, json=body, headers=h, timeout=60)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def token_for(self, email, password, code=None):
        body = {"email": email, "password": password, "name": "e2e"}
        if code:
            body["code"] = code
        r = self.call("POST", "/api/v1/tokens", body, token="")
        assert r.status_code == 201, (r.status_code, r.text)
        return r.json()["token"]

    def as_user(self, email, password, code=None):
        return API(self.cp, self.token_for(email, password, code))


class Tenant:
    """A signed-up, verified tenant with an owner API token."""

    def __init__(self, cp, slug, email, password, tenant_id, api):
        self.cp, self.slug, self.email, self.password, self.id, self.api = cp, slug, email, password, tenant_id, api

    @property
    def domain(self):
        return f"{self.slug}.{PROVIDER_DOMAIN}"

    @property
    def cell_id(self):
        return "c-" + self.slug

    def add_mailbox(self, local, password=None, name=""):
        password = password or strong_password()
        r = self.api.post("/api/v1/mailboxes", {"local": local, "displayName": name, "password": password})
        assert r.status_code == 201, (r.status_code, r.text)
        return r.json()["address"], password

    def setup(self, address):
        r = self.api.get(f"/api/v1/mailboxes/{address}/setup")
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def slot(self, address):
        s = self.setup(address)
        return (s["imapsPort"] - 4 - self.cp.cell_base) // 10

    def ports(self, address):
        return self.cp.ports(self.slot(address))


def signup_tenant(cp, slug=None, plan="family-mini", password=None):
    """Signs up through the API, opens the link from the outbox, gets a token."""
    slug = slug or unique("t")
    email_addr = f"owner@{slug}.example"
    password = password or strong_password()
    api = API(cp)
    r = api.post("/api/v1/signup", {"email": email_addr, "password": password, "name": f"The {slug} family", "slug": slug, "plan": plan})
    assert r.status_code == 201, (r.status_code, r.text)
    tid = r.json()["id"]
    link = cp.verification_link(email_addr)
    v = session().get(link, timeout=60)
    assert v.status_code == 200 and 'id="verified"' in v.text, (v.status_code, v.text[:500])
    return Tenant(cp, slug, email_addr, password, tid, api.as_user(email_addr, password))


class Kicker:
    """A signed-up tenant whose verification is held back: opening the link
    activates it and kicks the reconciler (ControlService.verifyEmail), which
    runs a round at once; `kick()` returns once that round has started the new
    cell (its run record exists), so the next periodic round is about 2 s away."""

    def __init__(self, cp):
        self.cp = cp
        self.slug = unique("kick")
        email_addr = f"owner@{self.slug}.example"
        r = API(cp).post("/api/v1/signup", {"email": email_addr, "password": strong_password(), "name": "Kicker",
                                            "slug": self.slug, "plan": "family-mini"})
        assert r.status_code == 201, r.text
        self.link = cp.verification_link(email_addr)

    def kick(self):
        r = session().get(self.link, timeout=60)
        assert r.status_code == 200, r.text[:300]
        record = self.cp.state / "cells" / "run" / f"c-{self.slug}.json"
        wait_for(record.exists, 10, interval=0.01, what="the kicked round")


def staff_api(cp):
    return API(cp).as_user(*cp.staff)


# MARK: mail clients

def imaps_login(port, user, password, timeout=10):
    c = imaplib.IMAP4_SSL(HOST, port, ssl_context=insecure_tls_context(), timeout=timeout)
    try:
        c.login(user, password)
    except Exception:
        with contextlib.suppress(Exception):
            c.shutdown()
        raise
    return c


def imaps_refusal(port, user, password):
    """The tagged reply text of a refused LOGIN (bytes), or None if it worked."""
    try:
        c = imaps_login(port, user, password)
    except imaplib.IMAP4.error as e:
        return str(e).encode()
    c.logout()
    return None


def wait_imaps(port, user, password, timeout=30):
    """Waits until the mailbox answers a LOGIN (the cell starts or the change arrives)."""
    def attempt():
        c = imaps_login(port, user, password, timeout=5)
        c.logout()
        return True
    return wait_for(attempt, timeout, interval=0.5, what=f"IMAPS login of {user} on {port}")


def submission_login(port, user, password, timeout=10):
    """STARTTLS then AUTH on the submission port; returns the logged-in client."""
    s = smtplib.SMTP(HOST, port, timeout=timeout, local_hostname="client.example")
    s.starttls(context=insecure_tls_context())
    s.ehlo("client.example")
    try:
        s.login(user, password)
    except Exception:
        with contextlib.suppress(Exception):
            s.close()
        raise
    return s


def mx_send(port, rcpts, message, sender="sender@elsewhere.example", timeout=10):
    """Delivers through the cell's MX listener; returns the refused recipients."""
    with smtplib.SMTP(HOST, port, timeout=timeout, local_hostname="mx.elsewhere.example") as s:
        return s.sendmail(sender, rcpts, message)


def make_message(to, subject, body=None, sender="sender@elsewhere.example"):
    body = body or f"Hello {to}.\r\nThis is {subject} ({uuid.uuid4().hex}).\r\n"
    headers = (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
               f"Message-ID: <{uuid.uuid4().hex}@elsewhere.example>\r\nDate: Mon, 01 Jan 2029 10:00:00 +0000\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
    return (headers + body).encode(), body.encode()


def fetch_by_subject(conn, subject, mailbox="INBOX"):
    """RFC822 bytes of the messages with this subject."""
    conn.select(mailbox)
    typ, data = conn.uid("SEARCH", None, "SUBJECT", f'"{subject}"')
    assert typ == "OK", data
    out = []
    for uid in data[0].split():
        typ, msg = conn.uid("FETCH", uid, "(BODY.PEEK[])")
        assert typ == "OK", msg
        out.append(msg[0][1])
    return out


def wait_message(port, user, password, subject, timeout=15):
    def look():
        c = imaps_login(port, user, password, timeout=5)
        try:
            return fetch_by_subject(c, subject)
        finally:
            c.logout()
    return wait_for(look, timeout, interval=0.3, what=f"message {subject!r} for {user}")


def body_of(raw):
    return raw.split(b"\r\n\r\n", 1)[1]


# MARK: the fixture

def start_control_plane(tmp_root, backend, **kw):
    db = FreshPostgres(postgres_url()) if backend == "postgres" else None
    cp = ControlPlane(pathlib.Path(tmp_root) / "state", database_url=db.url if db else None, **kw)
    cp.database = db
    cp.backend = backend
    try:
        cp.start()
    except Exception:
        cp.teardown()
        if db:
            db.drop()
        raise
    return cp


def stop_control_plane(cp):
    left = cp.teardown()
    if cp.database:
        cp.database.drop()
    assert not left, f"cell processes left behind: {left}"
    assert not cp.leftover_cgroups, f"cgroups left behind: {cp.leftover_cgroups}"


@pytest.fixture(scope="module", params=backends())
def control_plane(request):
    """A running `postcell up` for the test module, on each database backend."""
    tmp = tempfile.mkdtemp(prefix="postcell-e2e-")
    # Cells run as their own uids and must reach their data directories.
    os.chmod(tmp, 0o711)
    # The modules sign up dozens of tenants from 127.0.0.1; the limit itself
    # is tested with a control plane of its own (test_control_api).
    cp = start_control_plane(tmp, request.param, extra_args=["--signups-per-hour", "0"])
    yield cp
    try:
        stop_control_plane(cp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def screenshot(driver, test, step):
    d = ARTIFACTS / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{test}-{step}.png"
    driver.save_screenshot(str(path))
    return path
