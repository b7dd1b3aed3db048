"""ENVELOPE, BODYSTRUCTURE, BODY and RFC822.SIZE of every MIME test vector,
served by postcell-engine and by Dovecot (the reference IMAP server most
clients are tested against), compared message by message.

Each message file under Tests/Vectors/MIME (the set MIMETests sweeps: .msg,
.eml and .txt other than licences/readmes) is APPENDed, with its line ends
made CRLF as a client sends a file, to INBOX on both servers; then
`FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE)` on each. The replies are
parsed into values and only what the RFCs leave open is made equal:
  - a string sent quoted or as a literal (RFC 9051 §4.3) is the same string;
  - media type, subtype, transfer encoding, parameter names, the charset
    value, disposition type and language tags are case-insensitive
    (RFC 2045 §5.1, §6.1; RFC 2046 §4.1.2; RFC 2183 §2; RFC 5646 §2.1.1);
  - a text/* part other than text/plain without a charset parameter:
    Dovecot writes charset=us-ascii, the engine writes nothing (RFC 6657 §3
    lets such subtypes name their charset in the content); both write the
    us-ascii default for text/plain (RFC 2046 §4.1.2, RFC 6657 §4), Dovecot
    also beside an RFC 2231 `charset*`, which already names the charset;
  - one language tag may be a string or a list of one (body-fld-lang);
  - absent extension data equals NIL extension data (body-ext-1part and
    body-ext-mpart are optional);
  - body-fld-lines: RFC 9051 does not say whether a last line without a line
    end counts. The engine counts it (MIMEPart.bodyLines), Dovecot counts line
    ends. The engine's count is converted where the part's last octet, read
    back with a partial FETCH, is not LF; any other miscount still shows.
Everything else must be equal, except for the vectors in KNOWN_DIFFERENCES;
each of those must really differ, so the list cannot go stale.

Skipped when Dovecot is not installed (apt-get install dovecot-imapd).
"""
import pathlib
import socket
import ssl

import pytest

from conftest import Cell, USERS, base_config
from helpers_dovecot import Dovecot, dovecot_binary

ALICE = "alice@example.test"
VECTORS = pathlib.Path(__file__).resolve().parents[1] / "Vectors" / "MIME"
ITEMS = ("ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE")

# vector (path under Tests/Vectors/MIME) -> why the two servers may differ.
# Only deliberate choices of ours or deviations of Dovecot's from the RFCs
# belong here; an engine bug is fixed, not listed.

_NO_SUBTYPE = ("'Content-Type: text' has no subtype: RFC 2045 §5.2 makes an invalid Content-Type "
               "text/plain; charset=us-ascii (engine); Dovecot reports the type/subtype as empty strings")
_NOT_A_FIELD = ("the first line is not a header field: the engine reads the whole entity as body "
                "(RFC5322Header; Mime4j's *-noheader vectors expect that), Dovecot reads up to the "
                "first empty line as a header")
_SAME_BOUNDARY = ("a nested multipart reuses its parent's boundary; RFC 2046 §5.1.2 says the delimiter cannot "
                  "occur inside a part, so the engine splits on the outer multipart first; Dovecot lets the "
                  "inner one claim the lines")
_NO_BOUNDARY = ("multipart without a boundary parameter (RFC 2046 §5.1.1 requires one): the engine serves a "
                "text/plain leaf (MIMEPart.Demotion.missingBoundary), Dovecot an empty multipart")
_ENCODED_MESSAGE = ("base64-encoded message/rfc822 (RFC 2046 §5.2.1 forbids it): the engine serves an "
                    "application/octet-stream leaf so that sections point into stored bytes "
                    "(MIMEPart.Demotion.encodedMessage); Dovecot reports an empty envelope and body")
_LONG_BOUNDARY = ("boundary longer than RFC 2046's 70 characters: the engine matches the whole boundary "
                  "(Mime4j's .xml expects one part holding the near-miss line); Dovecot matches a prefix and "
                  "splits on the near-miss line")
KNOWN_DIFFERENCES = {
    "cpython-test_email-data/msg_14.txt": _NO_SUBTYPE,
    "mimekit-messages/missing-subtype.txt": _NO_SUBTYPE,
    "mime4j/mimetools-testmsgs/multi-digest.msg": _NO_SUBTYPE + " (here 'text' and '')",
    "cpython-test_email-data/msg_19.txt": _NOT_A_FIELD,
    "mime4j/testmsgs/malformedHeader-noheader.msg": _NOT_A_FIELD,
    "mime4j/testmsgs/malformedHeaderStartsBody-noheader.msg": _NOT_A_FIELD,
    # Boundary lines with transport padding end parts early; the parts that
    # follow start with text, not fields.
    "cpython-test_email-data/msg_38.txt": _NOT_A_FIELD,
    "cpython-test_email-data/msg_15.txt": _SAME_BOUNDARY,
    "cpython-test_email-data/msg_39.txt": _SAME_BOUNDARY,
    "cpython-test_email-data/msg_41.txt": _NO_BOUNDARY,
    "cpython-test_email-data/msg_33.txt": (
        "boundary in RFC 2231 form (boundary*=ansi-x3.4-1968''EeQf...): the engine decodes it (RFC 2231 §4) "
        "and finds both parts; Dovecot ignores boundary* and serves an empty multipart"),
    "cpython-test_email-data/msg_25.txt": (
        "two To fields: the engine's ENVELOPE uses the first (RFC 5322 §3.6 allows one; Envelope.init), "
        "Dovecot joins them; and its multipart/report boundary is cut off ('bo'): " + _NO_BOUNDARY),
    "cpython-test_email-data/msg_20.txt": (
        "three Cc fields: the engine's ENVELOPE uses the first (RFC 5322 §3.6 allows one; Envelope.init), "
        "Dovecot joins them"),
    "mime4j/mimetools-testmsgs/double-semicolon.msg": (
        "'multipart/alternative;; boundary=\"foo\"': the engine skips the empty parameter and finds the "
        "boundary (as Mime4j's .xml expects); Dovecot stops at ';;' and sees no boundary"),
    "cpython-test_email-data/msg_27.txt": (
        "Dovecot turns the TAB of a folded Subject into a space; RFC 5322 §2.2.3 unfolding removes only "
        "the CRLF, which is what the engine returns"),
    "mime4j/mimetools-testmsgs/frag.msg": (
        "Dovecot collapses the double space in the Subjects ('Priceless  Moment'); the engine returns the "
        "value as written, as ENVELOPE's subject is the raw field value"),
    "mime4j/testmsgs/obsolete.msg": (
        "Subject folded with a white-space-only line (RFC 5322 §4.2 obs-FWS): the engine returns the "
        "unfolded value with its spaces, Dovecot collapses them into one"),
    "mime4j/testmsgs/basic-plain-with-bad-header-separator.msg": (
        "the Date field ends with a white-space-only continuation line: the engine trims the trailing "
        "space of the unfolded value, Dovecot keeps it"),
    "mime4j/mimetools-testmsgs/multi-2gifs-base64.msg": _ENCODED_MESSAGE,
    "mime4j/testmsgs/bad-newlines-multiple-parts-base64.msg": _ENCODED_MESSAGE,
    "mime4j/testmsgs/base64encoded-rfc822message.msg": _ENCODED_MESSAGE,
    "mime4j/testmsgs/base64encoded-rfc822message-nested.msg": _ENCODED_MESSAGE,
    "mime4j/testmsgs/very-long-boundary.msg": _LONG_BOUNDARY,
    "mime4j/testmsgs/very-very-long-boundary.msg": _LONG_BOUNDARY,
    "mimekit-messages/rfc2060.txt": (
        "a message/rfc822 part whose multipart's close delimiter is directly followed by the outer "
        "boundary: Dovecot counts the CRLF that RFC 2046 §5.1.1 gives to that boundary into the part "
        "(BODY[3] is 320 octets there, 318 here; lines +1)"),
}


def vector_files():
    """Every message file, as MIMETests' VectorFiles.allMessages() picks them."""
    out = []
    for p in VECTORS.rglob("*"):
        if not p.is_file() or p.suffix not in (".msg", ".eml", ".txt"):
            continue
        if "LICENSE" in p.name.upper() or "README" in p.name.upper():
            continue
        out.append(str(p.relative_to(VECTORS)))
    return sorted(out)


def crlf(raw):
    """Lone LF -> CRLF, as a client APPENDing a file from disk sends it."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# ---------------------------------------------------------------------------
# A small IMAP client: literals both ways, replies parsed into values.
# ---------------------------------------------------------------------------
class Str(bytes):
    """An IMAP string (quoted or literal); compares by its bytes."""

    def __repr__(self):
        return '"' + self.decode("utf-8", "replace") + '"'


class Atom(str):
    def __repr__(self):
        return str(self)


class Client:
    def __init__(self, port, tls, timeout=60):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock)
        self.sock = sock
        self.f = sock.makefile("rb")
        self.n = 0
        greeting = self.f.readline()
        assert greeting.startswith(b"* OK"), greeting

    def _response(self):
        """One response (a line plus any literals it carries), as bytes
        with the literals kept in place: [(text, literal), ...]."""
        parts = []
        while True:
            line = self.f.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            line = line.rstrip(b"\r\n")
            if line.endswith(b"}") and b"{" in line:
                head, _, count = line[:-1].rpartition(b"{")
                if count.isdigit():
                    data = self.f.read(int(count))
                    parts.append((head, data))
                    continue
            parts.append((line, None))
            return parts

    def command(self, cmd, literal=None):
        """Sends `cmd` (with a LITERAL+ literal appended when given) and
        returns (untagged responses, tagged status line)."""
        self.n += 1
        tag = f"t{self.n}".encode()
        if literal is None:
            self.sock.sendall(tag + b" " + cmd + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + cmd + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        untagged = []
        while True:
            parts = self._response()
            if parts[0][0].startswith(tag + b" "):
                return untagged, parts[0][0]
            untagged.append(parts)

    def ok(self, cmd, literal=None):
        untagged, status = self.command(cmd, literal)
        assert status.split(b" ")[1] == b"OK", (cmd[:60], status)
        return untagged

    def close(self):
        try:
            self.command(b"LOGOUT")
        except (OSError, ConnectionError):
            pass
        self.sock.close()


def parse(parts):
    """Parses one response's [(text, literal)] into a list of values:
    nested lists for parenthesised lists, Str, int, None (NIL), Atom."""
    tokens = []
    for text, literal in parts:
        tokens.extend(_tokens(text))
        if literal is not None:
            tokens.append(Str(literal))
    stack = [[]]
    for t in tokens:
        if t == "(":
            stack.append([])
        elif t == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(t)
    assert len(stack) == 1, parts
    return stack[0]


def _tokens(text):
    i, n = 0, len(text)
    while i < n:
        c = text[i:i + 1]
        if c == b" ":
            i += 1
        elif c in (b"(", b")"):
            yield c.decode()
            i += 1
        elif c == b'"':
            out = bytearray()
            i += 1
            while text[i:i + 1] != b'"':
                if text[i:i + 1] == b"\\":
                    i += 1
                out += text[i:i + 1]
                i += 1
            i += 1
            yield Str(bytes(out))
        else:
            j = i
            while j < n and text[j:j + 1] not in (b" ", b"(", b")"):
                # BODY[...] style atoms keep their brackets together
                if text[j:j + 1] == b"[":
                    j = text.index(b"]", j)
                j += 1
            word = text[i:j].decode("utf-8", "replace")
            if word.isdigit():
                yield int(word)
            elif word.upper() == "NIL":
                yield None
            else:
                yield Atom(word)
            i = j


def fetch_all(client, count):
    """{sequence number: {item: value}} from FETCH 1:* of the four items."""
    out = {}
    for parts in client.ok(b"FETCH 1:* (" + " ".join(ITEMS).encode() + b")"):
        v = parse(parts)
        if len(v) == 4 and v[0] == "*" and isinstance(v[1], int) and str(v[2]).upper() == "FETCH":
            items = v[3]
            out[v[1]] = {str(items[k]).upper(): items[k + 1] for k in range(0, len(items), 2)}
    assert sorted(out) == list(range(1, count + 1))
    return out


def load(client, user, password, messages):
    client.ok(b"LOGIN " + _quoted(user) + b" " + _quoted(password))
    for raw in messages:
        client.ok(b"APPEND INBOX", crlf(raw))
    client.ok(b"SELECT INBOX")
    return fetch_all(client, len(messages))


def _quoted(s):
    return b'"' + s.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


# ---------------------------------------------------------------------------
# Normalisation: only what RFC 9051 and the MIME RFCs leave open.
# ---------------------------------------------------------------------------
def _lower(v):
    return Str(v.lower()) if isinstance(v, Str) else v


def _params(v, mtype=None, subtype=None):
    """Attribute names lowered; the charset value lowered. The pair
    charset=us-ascii is dropped where only Dovecot writes it: in text/*
    other than text/plain, and in text/plain beside a `charset*`."""
    if not isinstance(v, list):
        return v
    names = {_lower(v[k]) for k in range(0, len(v) - 1, 2)}
    if mtype == b"text":
        implicit = subtype != b"plain" or b"charset*" in names
    else:
        implicit = False
    out = []
    for k in range(0, len(v) - 1, 2):
        name, value = _lower(v[k]), v[k + 1]
        if name == b"charset":
            value = _lower(value)
            if implicit and value == b"us-ascii":
                continue
        out += [name, value]
    return out or None


def _disposition(v):
    if isinstance(v, list) and len(v) == 2:
        return [_lower(v[0]), _params(v[1])]
    return v


def _languages(v):
    """body-fld-lang is `nstring / "(" string *(SP string) ")"`: one tag
    alone may come either way."""
    if isinstance(v, list):
        v = [_lower(x) for x in v]
        return v[0] if len(v) == 1 else v
    return _lower(v)


def _extension(ext, count, extended):
    """Extension data (RFC 9051 body-ext-1part / body-ext-mpart) is
    optional: absent fields compare as NIL inside BODYSTRUCTURE."""
    if not extended:
        return ext
    ext = list(ext) + [None] * (count - len(ext))
    ext[count - 3] = _disposition(ext[count - 3])
    ext[count - 2] = _languages(ext[count - 2])
    return ext


def norm_body(b, extended, last=None, path=(), root=True):
    """A BODY / BODYSTRUCTURE value with what the RFCs leave open made equal.

    `last` maps a part's section ("1.2") to the last octet of its body; when
    given, body-fld-lines is converted from the engine's count (line ends,
    plus one for a final line without one: MIMEPart.bodyLines) to Dovecot's
    (line ends only). RFC 9051 does not say whether a final partial line
    counts."""
    if not isinstance(b, list) or not b:
        return b
    if isinstance(b[0], list):  # multipart: parts..., subtype, [ext...]
        k = 0
        while k < len(b) and isinstance(b[k], list):
            k += 1
        out = [norm_body(p, extended, last, path + (i + 1,), False) for i, p in enumerate(b[:k])]
        rest = b[k:]
        out.append(_lower(rest[0]) if rest else None)
        if extended:
            ext = _extension(rest[1:], 4, True)
            ext[0] = _params(ext[0])
            out += ext
        return out
    # single part: type subtype params id description encoding size ...
    section = path + (1,) if root else path
    mtype, subtype = _lower(b[0]), _lower(b[1])
    out = [mtype, subtype, _params(b[2], mtype, subtype)] + b[3:5] + [_lower(b[5])] + b[6:7]
    rest = list(b[7:])
    if mtype == b"message" and subtype in (b"rfc822", b"global") and len(rest) >= 3:
        rest[1] = norm_body(rest[1], extended, last, section, True)
        lines_at, ext_at = 2, 3
    elif mtype == b"text" and rest:
        lines_at, ext_at = 0, 1
    else:
        lines_at, ext_at = None, 0
    if lines_at is not None and last is not None and isinstance(rest[lines_at], int):
        octet = last.get(".".join(map(str, section)))
        if octet is not None and octet != b"\n" and rest[lines_at] > 0:
            rest[lines_at] -= 1
    ext = _extension(rest[ext_at:], 4, extended)
    return out + rest[:ext_at] + ext


def leaf_sections(b, path=(), root=True):
    """(section, octets) of every part that has a line count (text/*,
    message/rfc822, message/global), as FETCH BODY[section] names them."""
    if not isinstance(b, list) or not b:
        return []
    if isinstance(b[0], list):
        out, i = [], 0
        while i < len(b) and isinstance(b[i], list):
            out += leaf_sections(b[i], path + (i + 1,), False)
            i += 1
        return out
    section = path + (1,) if root else path
    mtype, subtype = bytes(b[0]).lower(), bytes(b[1]).lower()
    name = ".".join(map(str, section))
    if mtype == b"message" and subtype in (b"rfc822", b"global") and len(b) > 9:
        return [(name, b[6])] + leaf_sections(b[8], section, True)
    if mtype == b"text":
        return [(name, b[6])]
    return []


def normalise(items, last=None):
    return {
        "ENVELOPE": items.get("ENVELOPE"),
        "BODYSTRUCTURE": norm_body(items.get("BODYSTRUCTURE"), True, last),
        "BODY": norm_body(items.get("BODY"), False, last),
        "RFC822.SIZE": items.get("RFC822.SIZE"),
    }


def differing_items(engine, reference, last=None):
    ne, nr = normalise(engine, last), normalise(reference)
    return [k for k in ITEMS if ne[k] != nr[k]]


# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------
def last_octets(client, fetched):
    """{seq: {section: last octet}} for every part with a line count, read
    with partial FETCHes (`BODY.PEEK[1.2]<316.1>`)."""
    out = {}
    for seq, items in fetched.items():
        wanted = [(s, n) for s, n in leaf_sections(items["BODYSTRUCTURE"]) if isinstance(n, int) and n > 0]
        out[seq] = {}
        if not wanted:
            continue
        spec = " ".join(f"BODY.PEEK[{s}]<{n - 1}.1>" for s, n in wanted)
        for parts in client.ok(f"FETCH {seq} ({spec})".encode()):
            v = parse(parts)
            if len(v) == 4 and str(v[2]).upper() == "FETCH":
                kv = v[3]
                for k in range(0, len(kv), 2):
                    key = str(kv[k])
                    if key.upper().startswith("BODY[") and isinstance(kv[k + 1], bytes):
                        out[seq][key[5:key.index("]")]] = bytes(kv[k + 1])
    return out


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """Every vector APPENDed to a cell and to Dovecot; returns (names,
    engine fetch, engine last octets, dovecot fetch)."""
    # scripts/test.sh installs dovecot-imapd: a missing Dovecot is a failure, not a skip.
    assert dovecot_binary() is not None, "dovecot is not installed (apt-get install dovecot-imapd)"
    names = vector_files()
    messages = [(VECTORS / n).read_bytes() for n in names]
    cfg = base_config()
    cfg["listeners"] += [{"name": "imaps", "role": "imap", "address": "127.0.0.1:0", "implicitTLS": True}]
    cell = Cell(tmp_path_factory.mktemp("structure") / "cell", cfg).start()
    dovecot = Dovecot({ALICE: USERS[ALICE]})
    try:
        dovecot.start()
        c = Client(cell.port("imaps"), tls=True)
        engine = load(c, ALICE, USERS[ALICE], messages)
        last = last_octets(c, engine)
        c.close()
        c = Client(dovecot.port, tls=False)
        reference = load(c, ALICE, USERS[ALICE], messages)
        c.close()
    finally:
        dovecot.cleanup()
        cell.stop()
    return names, engine, last, reference


def show(name, engine, last, reference):
    ne, nr = normalise(engine, last), normalise(reference)
    lines = [f"{name} (normalised):"]
    for k in differing_items(engine, reference, last):
        lines += [f"  {k}", f"    engine:  {ne[k]!r}", f"    dovecot: {nr[k]!r}"]
    return "\n".join(lines)


def test_vector_list():
    assert len(vector_files()) >= 150
    assert set(KNOWN_DIFFERENCES) <= set(vector_files()), "KNOWN_DIFFERENCES names a missing vector"


@pytest.mark.parametrize("name", vector_files())
def test_structure_matches_dovecot(both, name):
    names, engine, last, reference = both
    seq = names.index(name) + 1
    differs = differing_items(engine[seq], reference[seq], last[seq])
    if name in KNOWN_DIFFERENCES:
        assert differs, f"{name} is listed in KNOWN_DIFFERENCES but both servers now agree: remove it"
    else:
        assert not differs, show(name, engine[seq], last[seq], reference[seq])
