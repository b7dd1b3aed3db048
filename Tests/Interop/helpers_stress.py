"""Helpers for the bad-input, crash-safety and quota/disk tests: a small raw
SMTP client with explicit control over every byte, message builders and store
inspection through the engine's own CLI. Only 127.0.0.1 is ever contacted."""
import concurrent.futures
import os
import re
import resource
import socket
import threading
import time
import uuid

from conftest import strip_trace

SENDER = "sender@remote.test"
ALICE = "alice@example.test"
BOB = "bob@example.test"
CRLF = b"\r\n"


# --------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------
class Reply:
    """One SMTP reply (possibly multi-line). `eof` is set when the server
    closed the connection before or while sending it."""

    _ENH = re.compile(rb"^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})(?:\s|$)")

    def __init__(self, lines, eof=False):
        self.lines = lines
        self.eof = eof

    @property
    def closed(self):
        return not self.lines

    @property
    def code(self):
        if not self.lines:
            return None
        try:
            return int(self.lines[0][:3])
        except ValueError:
            return None

    @property
    def enhanced(self):
        if not self.lines:
            return None
        m = self._ENH.match(self.lines[-1])
        return m.group(1).decode() if m else None

    @property
    def text(self):
        return b"\n".join(self.lines).decode("utf-8", "replace")

    def is_(self, code, enhanced=None, contains=None):
        if self.code != code:
            return False
        if enhanced is not None and self.enhanced != enhanced:
            return False
        if contains is not None and contains.lower() not in self.text.lower():
            return False
        return True

    def __repr__(self):
        if not self.lines:
            return "Reply(<connection closed>)"
        return f"Reply({self.text!r}{', then closed' if self.eof else ''})"


def read_reply_file(f):
    lines = []
    while True:
        line = f.readline(1 << 20)
        if not line:
            return Reply(lines, eof=True)
        lines.append(line.rstrip(b"\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return Reply(lines)


def expect(reply, code, enhanced=None, contains=None, what=""):
    assert reply.is_(code, enhanced, contains), (
        f"{what}: expected {code} {enhanced or ''}{(' ~' + repr(contains)) if contains else ''}, got {reply!r}")
    return reply


# --------------------------------------------------------------------------
# A raw SMTP connection
# --------------------------------------------------------------------------
class SMTPConn:
    def __init__(self, addr, timeout=10, greet=True):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.f = self.sock.makefile("rb")
        self.greeting = self.read() if greet else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        self.sock.sendall(data)

    def read(self):
        return read_reply_file(self.f)

    def cmd(self, line):
        if isinstance(line, str):
            line = line.encode()
        if not line.endswith(b"\n"):
            line += CRLF
        self.send(line)
        return self.read()

    def ehlo(self, name="client.remote.test"):
        return expect(self.cmd(f"EHLO {name}"), 250, what="EHLO")

    def data(self, content):
        """DATA with dot-stuffing; returns the final reply."""
        expect(self.cmd("DATA"), 354, what="DATA")
        self.send(dot_stuff(content))
        return self.read()

    def transaction(self, content, rcpts=(ALICE,), mail_from=SENDER, mail_params=""):
        """MAIL/RCPT/DATA that must all be accepted; returns the final reply."""
        expect(self.cmd(f"MAIL FROM:<{mail_from}>{(' ' + mail_params) if mail_params else ''}"), 250, what="MAIL")
        for r in rcpts:
            expect(self.cmd(f"RCPT TO:<{r}>"), 250, what=f"RCPT {r}")
        return self.data(content)

    def wait_closed(self, timeout=5):
        """True when the server closes the connection within `timeout`
        (any further bytes it sends are returned as failure)."""
        self.sock.settimeout(timeout)
        try:
            rest = self.f.read()
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True
        return rest == b""

    def close(self):
        try:
            self.f.close()
        finally:
            self.sock.close()


class Outcome:
    """Result of one delivery attempt: the stage at which it stopped and the
    reply received there."""

    def __init__(self, stage, reply):
        self.stage = stage
        self.reply = reply

    @property
    def ok(self):
        return self.stage == "end" and self.reply.code == 250

    def __repr__(self):
        return f"Outcome({self.stage}, {self.reply!r})"


def deliver(cell, content, rcpts=(ALICE,), mail_from=SENDER, mail_params="", listener="mx", timeout=20):
    """One full session. Stops at the first refused step and reports it."""
    with SMTPConn(cell.address(listener), timeout=timeout) as c:
        if c.greeting.code != 220:
            return Outcome("greeting", c.greeting)
        r = c.cmd("EHLO client.remote.test")
        if r.code != 250:
            return Outcome("ehlo", r)
        r = c.cmd(f"MAIL FROM:<{mail_from}>{(' ' + mail_params) if mail_params else ''}")
        if r.code != 250:
            return Outcome("mail", r)
        for rc in rcpts:
            r = c.cmd(f"RCPT TO:<{rc}>")
            if r.code != 250:
                return Outcome("rcpt", r)
        r = c.cmd("DATA")
        if r.code != 354:
            return Outcome("data", r)
        c.send(dot_stuff(content))
        final = c.read()
        try:
            c.cmd("QUIT")
        except OSError:
            pass
        return Outcome("end", final)


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------
def token():
    return uuid.uuid4().hex[:16]


def dot_stuff(content):
    """Content (CRLF lines, ending in CRLF) -> DATA bytes including the
    terminating '.CRLF'."""
    assert content.endswith(CRLF), "content must end with CRLF"
    lines = content[:-2].split(CRLF)
    stuffed = [b"." + l if l.startswith(b".") else l for l in lines]
    return CRLF.join(stuffed) + CRLF + b"." + CRLF


def make_message(subject, size=None, body=None, to=ALICE, extra_headers=()):
    """A CRLF message; with `size`, padded with body lines to exactly that
    many bytes."""
    if isinstance(subject, str):
        subject = subject.encode()
    headers = [
        b"From: <" + SENDER.encode() + b">",
        b"To: <" + to.encode() + b">",
        b"Subject: " + subject,
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@remote.test>",
        b"Date: Mon, 1 Jun 2026 12:00:00 +0000",
        *extra_headers,
    ]
    msg = CRLF.join(headers) + CRLF + CRLF
    msg += body if body is not None else b"Hello, this is a test message.\r\n"
    if size is not None:
        assert size >= len(msg) + 2, "size too small for the headers"
        line = b"x" * 76 + CRLF
        while len(msg) + len(line) <= size:
            msg += line
        rest = size - len(msg)
        if rest >= 2:
            msg += b"y" * (rest - 2) + CRLF
        elif rest == 1:
            # replace the last body line by one a byte longer
            msg = msg[:-2] + b"z" + CRLF
        assert len(msg) == size, (len(msg), size)
    return msg


def header(raw, name):
    """First value of a header (unfolded) in raw message bytes, or None."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"(?im)^" + re.escape(name.encode()) + rb":[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", head)
    if not m:
        return None
    return re.sub(rb"\r?\n[ \t]+", b" ", m.group(1)).strip()


# --------------------------------------------------------------------------
# Store inspection (engine CLI)
# --------------------------------------------------------------------------
_body_cache = {}
_cache_lock = threading.Lock()


def uid_of(m):
    return int(m["uid"])


def size_of(m):
    return int(m["size"])


def fetch_all(cell, user, mailbox="INBOX", cache=True, workers=8):
    """[(listing entry, raw bytes)] for every message of a mailbox."""
    listing = cell.messages(user, mailbox)

    def get(m):
        key = (str(cell.dir), user.lower(), mailbox, uid_of(m))
        if cache:
            with _cache_lock:
                if key in _body_cache:
                    return _body_cache[key]
        raw = cell.message_bytes(user, uid_of(m), mailbox)
        if cache:
            with _cache_lock:
                _body_cache[key] = raw
        return raw

    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        bodies = list(ex.map(get, listing))
    return list(zip(listing, bodies))


def find_token(cell, user, tok, mailbox="INBOX"):
    """Stored messages containing the token bytes."""
    if isinstance(tok, str):
        tok = tok.encode()
    return [(m, raw) for m, raw in fetch_all(cell, user, mailbox) if tok in raw]


def store_tmp_files(cell):
    tmp = cell.dir / "store" / "tmp"
    if not tmp.exists():
        return []
    return [p for p in tmp.rglob("*") if p.is_file()]


def wait_until(pred, timeout=5.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def engine_alive(cell):
    return cell.proc is not None and cell.proc.poll() is None


def assert_check_ok(cell):
    ok, report = cell.check()
    assert ok, f"postcell-engine check reported a problem:\n{report}"


def assert_healthy(cell, user=ALICE, check=True):
    """The engine still runs, accepts a normal message (stored exactly as
    sent, exactly once) and the store check passes."""
    assert engine_alive(cell), f"engine is not running (rc={cell.proc and cell.proc.returncode}):\n{cell.log()}"
    tok = token()
    content = make_message(f"health check {tok}")
    out = deliver(cell, content, rcpts=(user,))
    assert out.ok, f"a normal message was not accepted: {out!r}"
    found = find_token(cell, user, tok)
    assert len(found) == 1, f"health message stored {len(found)} times"
    assert strip_trace(found[0][1]) == content, "health message not stored as sent"
    if check:
        assert_check_ok(cell)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class RSSSampler(threading.Thread):
    """Samples the engine's VmRSS every `interval` seconds."""

    def __init__(self, cell, interval=0.05):
        super().__init__(daemon=True)
        self.cell = cell
        self.interval = interval
        self.samples = []
        self.errors = []
        self._stop_ev = threading.Event()

    def run(self):
        pid = self.cell.proc.pid
        while not self._stop_ev.is_set():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.samples.append(int(line.split()[1]))
                            break
            except OSError as e:
                self.errors.append(repr(e))
            self._stop_ev.wait(self.interval)

    def stop(self):
        self._stop_ev.set()
        self.join(5)

    @property
    def peak_kib(self):
        return max(self.samples) if self.samples else None
