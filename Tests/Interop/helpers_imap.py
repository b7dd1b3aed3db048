"""A raw IMAP client for the hostile-client tests: every byte written is the
caller's, responses are read line by line with server literals (`{n}` and
`~{n}`, RFC 9051 §4.3, RFC 3516) taken inline, and every read is bounded by a
deadline. Only 127.0.0.1 is ever contacted."""
import re
import socket
import ssl
import time

from conftest import USERS
from helpers_clients import insecure_tls_context

HOST = "127.0.0.1"
CRLF = b"\r\n"
_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\}\r?\n$")


class Closed(Exception):
    """The server closed the connection before a whole response arrived."""


class Response:
    """One server response: a line with its literals inline. `raw` keeps the
    bytes exactly as received (CRLF included)."""

    def __init__(self, raw):
        self.raw = raw

    @property
    def line(self):
        return self.raw.rstrip(b"\r\n")

    @property
    def tag(self):
        return self.line.split(b" ", 1)[0]

    @property
    def kind(self):
        """OK / NO / BAD / BYE / PREAUTH for status responses, else the second word."""
        parts = self.line.split(b" ", 2)
        return parts[1].upper() if len(parts) > 1 else b""

    @property
    def code(self):
        """The response code in brackets (`[TOOBIG]` -> b"TOOBIG"), or None."""
        m = re.match(rb"^\S+ \S+ \[([^\]]*)\]", self.line)
        return m.group(1).split(b" ", 1)[0].upper() if m else None

    @property
    def text(self):
        """The human-readable text after the status word and code."""
        m = re.match(rb"^\S+ \S+(?: \[[^\]]*\])? ?(.*)$", self.line, re.S)
        return m.group(1) if m else b""

    def is_(self, tag, kind, code=None):
        if isinstance(tag, str):
            tag = tag.encode()
        if isinstance(kind, str):
            kind = kind.encode()
        if self.tag != tag or self.kind != kind.upper():
            return False
        return code is None or self.code == (code.encode() if isinstance(code, str) else code)

    def __repr__(self):
        shown = self.raw if len(self.raw) <= 300 else self.raw[:200] + b"...(%d bytes)" % len(self.raw)
        return f"Response({shown!r})"


class IMAPConn:
    """One IMAP connection. `tls=True` for implicit TLS (the imaps listener)."""

    def __init__(self, port, tls=False, timeout=10, greet=True, host=HOST):
        self.timeout = timeout
        s = socket.create_connection((host, port), timeout=timeout)
        if tls:
            s = insecure_tls_context().wrap_socket(s, server_hostname="mx.example.test")
        self.sock = s
        self.buf = b""
        self.greeting = self.read() if greet else None
        self._n = 0

    # --- low level ------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete response before the deadline")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise TimeoutError("no complete response before the deadline")
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            chunk = b""
        if not chunk:
            raise Closed(self.buf)
        self.buf += chunk

    def _line(self, deadline):
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def _exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read(self, timeout=None):
        """The next response (literals inline). Raises Closed or TimeoutError."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        raw = self._line(deadline)
        while True:
            m = _LITERAL_AT_END.search(raw)
            if not m:
                return Response(raw)
            raw += self._exact(int(m.group(1)), deadline)
            raw += self._line(deadline)

    def read_tagged(self, tag, timeout=None):
        """(untagged and continuation responses, the tagged one)."""
        if isinstance(tag, str):
            tag = tag.encode()
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        before = []
        while True:
            r = self.read(max(0.001, deadline - time.monotonic()))
            if r.tag == tag:
                return before, r
            before.append(r)

    def next_tag(self):
        self._n += 1
        return f"t{self._n}"

    # --- commands ---------------------------------------------------------
    def cmd(self, text, tag=None, timeout=None):
        """Sends `tag text CRLF` and returns the tagged response (the untagged
        ones are in `self.untagged`)."""
        tag = tag or self.next_tag()
        if isinstance(text, str):
            text = text.encode()
        self.send(tag.encode() + b" " + text + CRLF)
        self.untagged, r = self.read_tagged(tag, timeout)
        return r

    def login(self, user="alice@example.test", password=None):
        password = USERS[user] if password is None else password
        r = self.cmd(f'LOGIN {user} "{password}"')
        assert r.kind == b"OK", f"LOGIN failed: {r!r}"
        return r

    def select(self, mailbox="INBOX"):
        r = self.cmd(f"SELECT {mailbox}")
        assert r.kind == b"OK", f"SELECT failed: {r!r}"
        exists = [int(u.line.split()[1]) for u in self.untagged if u.line.endswith(b" EXISTS")]
        return exists[-1] if exists else None

    def starttls(self):
        r = self.cmd("STARTTLS")
        assert r.kind == b"OK", f"STARTTLS refused: {r!r}"
        assert not self.buf, f"bytes after the STARTTLS OK before the handshake: {self.buf!r}"
        self.sock = insecure_tls_context().wrap_socket(self.sock, server_hostname="mx.example.test")
        return r

    def noop_ok(self, timeout=None):
        """True when a NOOP gets its tagged OK (the session is in step)."""
        r = self.cmd("NOOP", timeout=timeout)
        return r.kind == b"OK"

    def wait_closed(self, timeout=5):
        """Reads and returns (bytes, closed) until EOF or the timeout."""
        deadline = time.monotonic() + timeout
        got = self.buf
        self.buf = b""
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                return got, True
            if not chunk:
                return got, True
            got += chunk
        return got, False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
