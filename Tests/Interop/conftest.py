"""Shared fixtures for the black-box tests: a real postcell-engine process
with a cell of its own in a temporary data directory, listening on loopback.

Every server here binds 127.0.0.1 with port 0; the engine reports the ports it
got in DATA/run/listeners.json.
"""
import copy
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENGINE = os.environ.get("POSTCELL_ENGINE", str(ROOT / ".build" / "debug" / "postcell-engine"))

DOMAIN = "example.test"
USERS = {
    "alice@example.test": "correct horse battery staple",
    "bob@example.test": "Tr0ub4dor&3-but-longer",
}

_hash_cache = {}


def hash_password(password, log2n=10):
    """A scrypt hash made by the engine itself (cheap cost for tests)."""
    key = (password, log2n)
    if key not in _hash_cache:
        out = subprocess.run([ENGINE, "hash-password", "--log2n", str(log2n)],
                             input=password.encode() + b"\n", capture_output=True, check=True)
        _hash_cache[key] = out.stdout.decode().strip()
    return _hash_cache[key]


def base_config():
    return {
        "hostname": "mx.example.test",
        "domains": [DOMAIN],
        "users": [
            {"address": a, "password": hash_password(p), "addresses": []}
            for a, p in USERS.items()
        ],
        "aliases": {},
        # Nothing leaves unless a test means it to (tests of delivery set their own outbound section).
        "outbound": {"hold": True},
        "listeners": [
            {"name": "mx", "role": "mx", "address": "127.0.0.1:0"},
            {"name": "submission", "role": "submission", "address": "127.0.0.1:0"},
            {"name": "submissions", "role": "submission", "address": "127.0.0.1:0", "implicitTLS": True},
        ],
        # Inbound SPF/DKIM/DMARC checks are on by default and ask DNS; these
        # cells configure no resolver (the system's is not on loopback), so
        # they are off here. test_inbound_auth.py turns them on against Knot.
        "authentication": {"checks": False},
    }


class Cell:
    """One engine process and its data directory."""

    def __init__(self, directory, config=None):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = config if config is not None else base_config()
        self.config_path = self.dir / "cell.json"
        self.proc = None
        self.listeners = {}
        self.log_path = self.dir / "engine.log"
        self.write_config()

    def write_config(self):
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.config, indent=2))
        os.replace(tmp, self.config_path)

    def start(self, timeout=30, extra_env=None):
        ready = self.dir / "run" / "listeners.json"
        if ready.exists():
            ready.unlink()
        env = dict(os.environ)
        env.update(extra_env or {})
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([ENGINE, "serve", "--config", str(self.config_path)],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited with {self.proc.returncode}:\n{self.log()}")
            if ready.exists():
                try:
                    self.listeners = json.loads(ready.read_text())
                    return self
                except json.JSONDecodeError:
                    pass
            time.sleep(0.02)
        raise RuntimeError("engine did not become ready:\n" + self.log())

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except FileNotFoundError:
            return ""

    def port(self, name="mx"):
        return int(self.listeners[name].rsplit(":", 1)[1])

    def address(self, name="mx"):
        host, port = self.listeners[name].rsplit(":", 1)
        return host, int(port)

    def reload(self):
        self.write_config()
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    # Store inspection through the engine's own CLI.
    def cli(self, *args, check=True):
        return subprocess.run([ENGINE, *args, "--config", str(self.config_path)],
                              capture_output=True, check=check)

    def messages(self, user, mailbox="INBOX"):
        out = self.cli("mailbox", "list", "--user", user, "--mailbox", mailbox).stdout.decode()
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def message_bytes(self, user, uid, mailbox="INBOX"):
        return self.cli("mailbox", "show", "--user", user, "--mailbox", mailbox, "--uid", str(uid)).stdout

    def queued(self):
        out = self.cli("queue", "list").stdout.decode()
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def check(self):
        """Runs the store consistency check; returns (ok, report)."""
        r = self.cli("check", check=False)
        return r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")


@pytest.fixture
def cell(tmp_path):
    c = Cell(tmp_path / "cell").start()
    yield c
    c.stop()


@pytest.fixture
def make_cell(tmp_path):
    """Factory for tests that need a custom configuration: make_cell(mutate)."""
    made = []

    def factory(mutate=None, start=True, name="cell"):
        cfg = base_config()
        if mutate:
            mutate(cfg)
        c = Cell(tmp_path / f"{name}{len(made)}", cfg)
        made.append(c)
        return c.start() if start else c

    yield factory
    for c in made:
        c.stop()


def strip_trace(raw: bytes) -> bytes:
    """The message as the client sent it: drops the Received: header the engine
    prepends (and its folded continuation lines)."""
    lines = raw.split(b"\r\n")
    i = 0
    while i < len(lines) and lines[i].lower().startswith(b"received:"):
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\r\n".join(lines[i:])


def smtp_dialog(host, port, lines, timeout=10):
    """Sends raw lines (bytes, CRLF added when missing) one at a time and
    returns the list of full replies (each a list of reply lines)."""
    s = socket.create_connection((host, port), timeout=timeout)
    f = s.makefile("rb")
    replies = [read_reply(f)]
    for line in lines:
        if not line.endswith(b"\n"):
            line += b"\r\n"
        s.sendall(line)
        replies.append(read_reply(f))
    s.close()
    return replies


def read_reply(f):
    reply = []
    while True:
        line = f.readline()
        if not line:
            return reply or [b"<closed>"]
        reply.append(line.rstrip(b"\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return reply
