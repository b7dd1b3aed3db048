"""Client-side helpers for the interop tests (raw SMTP, TLS, PROXY v2, message
inspection). Everything here talks only to 127.0.0.1 or unix sockets."""
import base64
import email.utils
import http.client
import json
import socket
import ssl
import struct
import time

HOST = "127.0.0.1"


def insecure_tls_context():
    """The cell's certificate is self-signed: no verification."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data)


def auth_plain_token(user, password, authzid=""):
    return b64(f"{authzid}\0{user}\0{password}".encode())


class Reply:
    def __init__(self, lines):
        self.lines = lines

    @property
    def code(self):
        first = self.lines[0] if self.lines else b""
        try:
            return int(first[:3])
        except ValueError:
            return None

    @property
    def closed(self):
        return self.lines == [b"<closed>"]

    @property
    def text(self):
        return b"\n".join(self.lines).decode("utf-8", "replace")

    def startswith(self, prefix):
        if isinstance(prefix, str):
            prefix = prefix.encode()
        return bool(self.lines) and self.lines[0].startswith(prefix)

    def __repr__(self):
        return f"Reply({self.text!r})"


class RawSMTP:
    """A minimal SMTP client over a TCP or unix socket with explicit control
    over every byte written (for pipelining, BDAT and PROXY headers)."""

    def __init__(self, host=HOST, port=None, path=None, timeout=10, tls=False, greet=True, preamble=b""):
        if path is not None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(str(path))
        else:
            s = socket.create_connection((host, port), timeout=timeout)
        if preamble:
            s.sendall(preamble)
        if tls:
            s = insecure_tls_context().wrap_socket(s, server_hostname="mx.example.test")
        self.sock = s
        self.buf = b""
        self.greeting = self.reply() if greet else None

    # --- reading -------------------------------------------------------
    def _readline(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                raise
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                chunk = b""
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def reply(self):
        lines = []
        while True:
            line = self._readline()
            if not line:
                return Reply(lines or [b"<closed>"])
            lines.append(line.rstrip(b"\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                return Reply(lines)

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def read_until_close(self, timeout=5):
        """All replies until the peer closes (or the timeout passes);
        returns (replies, closed)."""
        deadline = time.monotonic() + timeout
        out = []
        self.sock.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                r = self.reply()
            except (socket.timeout, TimeoutError):
                continue
            if r.closed:
                return out, True
            out.append(r)
        return out, False

    def is_closed(self, timeout=3):
        """True when the server has closed the connection (EOF or reset)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, OSError):
            return True
        return data == b""

    # --- writing -------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        if isinstance(line, str):
            line = line.encode()
        if not line.endswith(b"\n"):
            line += b"\r\n"
        self.send(line)
        return self.reply()

    def ehlo(self, name="client.example.org"):
        r = self.cmd(b"EHLO " + name.encode())
        assert r.code == 250, r
        return r

    def extensions(self, ehlo_reply):
        return {ln[4:].split(b" ")[0].decode().upper(): ln[4:].decode() for ln in ehlo_reply.lines[1:]}

    def starttls(self):
        r = self.cmd(b"STARTTLS")
        assert r.code == 220, r
        assert not self.buf, "data buffered before TLS handshake"
        self.sock = insecure_tls_context().wrap_socket(self.sock, server_hostname="mx.example.test")
        return r

    def auth_plain(self, user, password):
        return self.cmd(b"AUTH PLAIN " + auth_plain_token(user, password))

    def data(self, message):
        """DATA with dot-stuffing; message must end with CRLF."""
        r = self.cmd(b"DATA")
        if r.code != 354:
            return r
        body = b"\r\n".join((b"." + ln if ln.startswith(b".") else ln) for ln in message.split(b"\r\n"))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.send(body + b".\r\n")
        return self.reply()

    def quit(self):
        try:
            self.cmd(b"QUIT")
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def proxy_v2_header(src_ip, src_port, dst_ip, dst_port, command=0x21):
    """A binary PROXY protocol v2 header for TCP over IPv4."""
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip) + struct.pack("!HH", src_port, dst_port)
    return sig + bytes([command, 0x11]) + struct.pack("!H", len(addrs)) + addrs


# --- the store ---------------------------------------------------------
def uids(cell, user, mailbox="INBOX"):
    return [m["uid"] for m in cell.messages(user, mailbox)]


def stored_messages(cell, user, mailbox="INBOX"):
    return [cell.message_bytes(user, uid, mailbox) for uid in uids(cell, user, mailbox)]


def only_message(cell, user, mailbox="INBOX"):
    msgs = stored_messages(cell, user, mailbox)
    assert len(msgs) == 1, f"{user} has {len(msgs)} messages in {mailbox}, expected 1"
    return msgs[0]


def trace_headers(raw):
    """The Received: fields the engine put on top, unfolded."""
    out = []
    lines = raw.split(b"\r\n")
    i = 0
    while i < len(lines) and lines[i].lower().startswith(b"received:"):
        field = lines[i]
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            field += b" " + lines[i].strip()
            i += 1
        out.append(field)
    return out


def received_header(raw):
    t = trace_headers(raw)
    assert len(t) == 1, f"expected exactly one Received: header on top, got {t!r}"
    return t[0]


def split_header(raw):
    """(list of header fields as raw bytes incl. continuation lines, body)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    fields = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields, sep + body


def field_name(field):
    return field.split(b":", 1)[0].strip().lower()


def fields_named(raw, name):
    fields, _ = split_header(raw)
    return [f for f in fields if field_name(f) == name.lower().encode()]


def without_fields(raw, names):
    fields, rest = split_header(raw)
    names = {n.lower().encode() for n in names}
    return b"\r\n".join(f for f in fields if field_name(f) not in names) + rest


def parse_date_field(field):
    value = field.split(b":", 1)[1].decode().strip()
    return email.utils.parsedate_to_datetime(value)


def wait_until(fn, timeout=10, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def read_listeners(cell):
    p = cell.dir / "run" / "listeners.json"
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def queue_recipients(entry):
    """Recipient addresses of a `queue list` entry (strings or objects)."""
    out = []
    for r in entry.get("recipients", []):
        if isinstance(r, dict):
            r = r.get("address") or r.get("to") or r.get("recipient")
        out.append(r)
    return out


def build_message(headers, body=b"Hello.\r\n"):
    """headers: list of (name, value) tuples (str or bytes)."""
    out = b""
    for name, value in headers:
        if isinstance(name, str):
            name = name.encode()
        if isinstance(value, str):
            value = value.encode()
        out += name + b": " + value + b"\r\n"
    return out + b"\r\n" + body


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket (the engine's admin API has no TCP port)."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.socket_path)
        self.sock = s


def unix_http_json(path, method, url, body=None, raw=None):
    """One JSON request over the unix socket `path` (`raw`: bytes sent as
    they are); (status, decoded JSON or None)."""
    conn = UnixHTTPConnection(str(path))
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, url, body=data, headers={"Content-Type": "application/json"} if data is not None else {})
        r = conn.getresponse()
        payload = r.read()
        return r.status, (json.loads(payload) if payload else None)
    finally:
        conn.close()
