"""Hostile and broken IMAP clients (RFC 9051, RFC 7888, RFC 2177): malformed
commands in every state, over-long lines, NUL and 8-bit bytes, unbalanced and
over-size literals, a client that never reads, 500 sessions in IDLE, the
connection cap, SASL and IDLE misuse, STARTTLS command injection, and inputs
that cost the server more than they cost the client.

Each scenario asserts the reply the RFC asks for and that the session (or the
engine) goes on. The limits under test are the IMAP codec's own
(Sources/IMAP/IMAPCommandAssembler.swift) and the engine's connection limits
(Sources/CellEngine/EngineState.swift)."""
import asyncio
import base64
import re
import ssl
import subprocess
import threading
import time

import pytest

from conftest import USERS, Cell, base_config
from helpers_clients import insecure_tls_context
from helpers_imap import Closed, IMAPConn
from helpers_stress import (
    ALICE, RSSSampler, SMTPConn, assert_healthy, deliver, engine_alive, expect,
    make_message, raise_nofile, token,
)

# IMAPCommandAssembler.maxLineLength: bytes of one line, CRLF not counted.
MAX_LINE = 8192
# IMAPCommandAssembler.maxLiteralLength.
MAX_LITERAL = 64 << 20

IMAP_LISTENERS = [
    {"name": "imap", "role": "imap", "address": "127.0.0.1:0"},
    {"name": "imaps", "role": "imap", "address": "127.0.0.1:0", "implicitTLS": True},
]


def with_imap(**limits):
    def mutate(cfg):
        cfg["listeners"] += [dict(l) for l in IMAP_LISTENERS]
        if limits:
            cfg.setdefault("limits", {}).update(limits)
    return mutate


@pytest.fixture
def icell(make_cell):
    return make_cell(with_imap())


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One cell for the table-driven cases, which change no mailbox: INBOX
    holds "note 0", "note 1", "note 2"."""
    cfg = base_config()
    with_imap()(cfg)
    c = Cell(tmp_path_factory.mktemp("imap-bad") / "cell", cfg).start()
    for i in range(3):
        assert deliver(c, make_message(f"note {i}")).ok
    yield c
    c.stop()


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
def imaps(cell, **kw):
    return IMAPConn(cell.port("imaps"), tls=True, **kw)


def session(cell, state="pre", **kw):
    """A connection in the given state: pre (not authenticated), auth, sel (INBOX)."""
    c = imaps(cell, **kw)
    assert c.greeting.is_("*", "OK"), c.greeting
    if state in ("auth", "sel"):
        c.login()
    if state == "sel":
        c.select("INBOX")
    return c


def readable(r):
    """A human-readable response text: printable ASCII with words in it."""
    t = r.text
    return len(t) >= 3 and all(32 <= b < 127 for b in t) and re.search(rb"[A-Za-z]{2}", t) is not None


def expect_refusal(conn, tags, kinds=(b"BAD",), what="", timeout=5):
    """The next response is a status response with one of `tags` and `kinds`
    and readable text (never a continuation request)."""
    tags = {t.encode() if isinstance(t, str) else t for t in tags}
    try:
        r = conn.read(timeout)
    except (Closed, TimeoutError) as e:
        raise AssertionError(f"{what}: no response ({e!r})")
    assert not r.line.startswith(b"+"), f"{what}: got a continuation request {r!r}"
    assert r.tag in tags and r.kind in kinds, f"{what}: expected {sorted(tags)} {kinds}, got {r!r}"
    assert readable(r), f"{what}: response text is not human-readable: {r!r}"
    return r


def assert_in_step(conn, what=""):
    """A NOOP gets its own tagged OK and nothing left over from earlier input
    (no stray BAD/NO, no response to a command that should have been
    swallowed) comes before it."""
    r = conn.cmd("NOOP")
    stray = [u for u in conn.untagged if u.kind in (b"BAD", b"NO", b"BYE") or not u.line.startswith(b"*")]
    assert r.kind == b"OK", f"{what}: NOOP after it got {r!r}"
    assert not stray, f"{what}: stray responses before the NOOP's OK: {stray!r}"


def imap_healthy(cell):
    """The engine runs and serves a normal IMAP session."""
    assert engine_alive(cell), f"engine is not running:\n{cell.log()}"
    with session(cell, "sel") as c:
        assert c.noop_ok()
        c.cmd("LOGOUT")


def mailbox_names(conn):
    r = conn.cmd('LIST "" "*"')
    assert r.kind == b"OK", r
    return [u.line.rsplit(b" ", 1)[1] for u in conn.untagged if u.line.startswith(b"* LIST")]


def count_messages(conn, mailbox="INBOX"):
    r = conn.cmd(f"STATUS {mailbox} (MESSAGES)")
    assert r.kind == b"OK", r
    m = re.search(rb"MESSAGES (\d+)", b"".join(u.line for u in conn.untagged))
    return int(m.group(1))


# ---------------------------------------------------------------------------
# 1. Malformed commands: BAD (tagged when a tag can be read), readable text,
#    and the session goes on in the state it was in.
# ---------------------------------------------------------------------------
A, STAR = {b"a"}, {b"*"}
BAD, BAD_NO = (b"BAD",), (b"BAD", b"NO")
MALFORMED = [
    # (id, state, line without CRLF, acceptable tags, acceptable kinds)
    ("empty-line", "pre", b"", STAR, BAD),
    ("leading-space", "pre", b" NOOP", STAR, BAD),
    ("star-as-tag", "pre", b"* NOOP", STAR, BAD),
    ("plus-as-tag", "pre", b"+ NOOP", STAR, BAD),
    # "NOOP" is a well-formed tag; the command is then missing.
    ("command-without-tag", "pre", b"NOOP", {b"*", b"NOOP"}, BAD),
    ("tag-only", "pre", b"a", {b"*", b"a"}, BAD),
    ("unknown-command", "pre", b"a FROBNICATE now", A, BAD),
    ("8bit-garbage", "pre", b"\xff\xfe\x80\x81 junk \xc3\x28", STAR, BAD),
    ("8bit-in-command", "pre", b"a N\xc3\x96OP", A, BAD),
    ("nul-in-command", "pre", b"a NO\x00OP", A, BAD),
    ("nul-after-tag", "pre", b"a\x00 NOOP", {b"*", b"a"}, BAD),
    ("only-nuls", "pre", b"\x00\x00\x00", STAR, BAD),
    ("control-chars", "pre", b"a NOOP\x01\x02", A, BAD),
    ("login-missing-password", "pre", b"a LOGIN alice@example.test", A, BAD),
    ("login-unbalanced-quote", "pre", b'a LOGIN "alice@example.test secret', A, BAD),
    ("login-bad-escape", "pre", b'a LOGIN "al\\ice@example.test" "x"', A, BAD),
    ("fetch-before-login", "pre", b"a FETCH 1 FLAGS", A, BAD_NO),
    ("select-before-login", "pre", b"a SELECT INBOX", A, BAD_NO),
    ("idle-before-login", "pre", b"a IDLE", A, BAD_NO),
    ("select-without-mailbox", "auth", b"a SELECT", A, BAD),
    ("select-unknown-parameter", "auth", b"a SELECT INBOX (QRESYNC)", A, BAD),
    ("fetch-before-select", "auth", b"a FETCH 1 FLAGS", A, BAD_NO),
    ("store-before-select", "auth", b"a STORE 1 +FLAGS (\\Seen)", A, BAD_NO),
    ("login-after-login", "auth", b'a LOGIN alice@example.test "x"', A, BAD_NO),
    ("authenticate-after-login", "auth", b"a AUTHENTICATE PLAIN", A, BAD_NO),
    ("starttls-on-tls", "auth", b"a STARTTLS", A, BAD_NO),
    ("status-unknown-item", "auth", b"a STATUS INBOX (BOGUS)", A, BAD),
    ("list-missing-pattern", "auth", b'a LIST ""', A, BAD),
    ("enable-nothing", "auth", b"a ENABLE", A, BAD),
    ("create-without-name", "auth", b"a CREATE", A, BAD),
    ("rename-one-name", "auth", b"a RENAME Sent", A, BAD),
    ("fetch-bad-range", "sel", b"a FETCH 1:x FLAGS", A, BAD),
    ("fetch-seq-zero", "sel", b"a FETCH 0 FLAGS", A, BAD),
    ("fetch-star-colon", "sel", b"a FETCH *: FLAGS", A, BAD),
    ("fetch-empty-set-item", "sel", b"a FETCH 1,,2 FLAGS", A, BAD),
    ("fetch-seq-over-32-bits", "sel", b"a FETCH 4294967296 FLAGS", A, BAD),
    ("fetch-unbalanced-open", "sel", b"a FETCH 1 (FLAGS UID", A, BAD),
    ("fetch-unbalanced-close", "sel", b"a FETCH 1 FLAGS)", A, BAD),
    ("fetch-nested-parens", "sel", b"a FETCH 1 ((FLAGS))", A, BAD),
    ("fetch-open-section", "sel", b"a FETCH 1 BODY[", A, BAD),
    ("fetch-zero-length-partial", "sel", b"a FETCH 1 BODY[]<0.0>", A, BAD),
    ("fetch-bad-partial", "sel", b"a FETCH 1 BODY[]<abc>", A, BAD),
    ("fetch-unknown-item", "sel", b"a FETCH 1 FROB", A, BAD),
    ("fetch-without-arguments", "sel", b"a FETCH", A, BAD),
    ("store-unbalanced", "sel", b"a STORE 1 +FLAGS (\\Seen", A, BAD),
    ("store-unknown-operation", "sel", b"a STORE 1 FROB (\\Seen)", A, BAD),
    ("search-unbalanced-open", "sel", b"a SEARCH ((ALL)", A, BAD),
    ("search-unbalanced-close", "sel", b"a SEARCH ALL)", A, BAD),
    ("search-unknown-key", "sel", b"a SEARCH FROB", A, BAD),
    ("search-without-key", "sel", b"a SEARCH", A, BAD),
    ("search-bad-date", "sel", b"a SEARCH BEFORE 32-Jan-2026", A, BAD),
    ("search-100-nested-parens", "sel", b"a SEARCH " + b"(" * 100 + b"ALL" + b")" * 100, A, BAD),
    ("search-200-nots", "sel", b"a SEARCH " + b"NOT " * 200 + b"ALL", A, BAD),
    ("uid-unknown-subcommand", "sel", b"a UID FROB 1", A, BAD),
    ("copy-without-mailbox", "sel", b"a COPY 1", A, BAD),
    ("append-without-literal", "sel", b'a APPEND INBOX "hello"', A, BAD),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_command_then_session_continues(shared, case):
    name, state, line, tags, kinds = case
    with session(shared, state) as c:
        c.send(line + b"\r\n")
        expect_refusal(c, tags, kinds, what=f"{name} {line[:60]!r}")
        assert_in_step(c, what=name)
        # still in the state it was in
        if state == "pre":
            c.login()
        elif state == "sel":
            r = c.cmd("FETCH 1 (UID)")
            assert r.kind == b"OK" and any(u.line == b"* 1 FETCH (UID 1)" for u in c.untagged), \
                f"{name}: the mailbox is no longer selected: {r!r} {c.untagged!r}"
        else:
            assert c.select("INBOX") == 3


# ---------------------------------------------------------------------------
# Over-long lines
# ---------------------------------------------------------------------------
def _search_line(total):
    """`a SEARCH SUBJECT "xxx..."` of exactly `total` bytes before CRLF."""
    head, tail = b'a SEARCH SUBJECT "', b'"'
    return head + b"x" * (total - len(head) - len(tail)) + tail


def test_line_at_the_limit_accepted_one_byte_more_refused(shared):
    with session(shared, "sel") as c:
        c.send(_search_line(MAX_LINE) + b"\r\n")
        untagged, r = c.read_tagged("a")
        assert r.kind == b"OK" and untagged and untagged[0].line == b"* SEARCH", \
            f"a {MAX_LINE}-byte line must be served: {untagged!r} {r!r}"
        c.send(_search_line(MAX_LINE + 1) + b"\r\n")
        r = expect_refusal(c, A, BAD, what=f"{MAX_LINE + 1}-byte line")
        assert b"too long" in r.text.lower(), r
        assert_in_step(c, "after the over-long line")


@pytest.mark.parametrize("state", ["pre", "sel"])
@pytest.mark.parametrize("tagged", [True, False], ids=["tagged", "untagged"])
def test_megabyte_line_in_pieces_gets_one_reply(shared, state, tagged):
    """1 MiB without a line end, written in 64 KiB pieces: one BAD, the rest
    of the line skipped, and none of it is taken as commands (the filler is
    itself a command line, so mis-framing would show)."""
    filler = b" x NOOP " * 8192                                  # 64 KiB
    with session(shared, state) as c:
        c.send(b"a SELECT INBOX" if tagged else b"")
        for _ in range(16):
            c.send(filler)
        c.send(b"\r\n")
        r = expect_refusal(c, A if tagged else STAR, BAD, what="1 MiB line")
        assert b"too long" in r.text.lower(), r
        assert_in_step(c, "after the 1 MiB line")


def test_overlong_line_after_a_literal(shared):
    """The line that follows a literal is held to the same limit."""
    with session(shared, "sel") as c:
        c.send(b"a SEARCH SUBJECT {4}\r\n")
        assert c.read().line.startswith(b"+"), "continuation for a 4-byte literal"
        c.send(b"note SUBJECT " + b"y" * (MAX_LINE + 10) + b"\r\n")
        r = expect_refusal(c, A, BAD, what="over-long continuation line")
        assert b"too long" in r.text.lower(), r
        assert_in_step(c, "after the over-long continuation line")


# ---------------------------------------------------------------------------
# 2. Literals
# ---------------------------------------------------------------------------
def test_unbalanced_literal_consumes_exactly_the_announced_bytes(shared):
    """{10} announced, 5 bytes sent, then a new command: the server takes the
    first 10 bytes as the literal (so "b NOO" is literal data), fails the
    command built from what is left ("P"), never answers "b", and the next
    command is in step."""
    with session(shared, "pre") as c:
        c.send(b"a LOGIN alice@example.test {10}\r\n")
        assert c.read().line.startswith(b"+"), "continuation for the literal"
        c.send(b"12345b NOOP\r\n")
        expect_refusal(c, A, BAD_NO, what="the command that absorbed the next one")
        r = c.cmd("NOOP", tag="c")
        assert r.is_("c", "OK"), r
        assert c.untagged == [], f"a response to the swallowed command: {c.untagged!r}"
        c.login()


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "non-sync"])
def test_login_with_literals(icell, sync):
    user, pw = ALICE.encode(), USERS[ALICE].encode()
    with session(icell, "pre") as c:
        if sync:
            c.send(b"a LOGIN {%d}\r\n" % len(user))
            assert c.read().line.startswith(b"+")
            c.send(user + b" {%d}\r\n" % len(pw))
            assert c.read().line.startswith(b"+")
            c.send(pw + b"\r\n")
        else:
            c.send(b"a LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(user), user, len(pw), pw))
        _, r = c.read_tagged("a")
        assert r.is_("a", "OK"), r
        assert c.select("INBOX") == 0


def test_search_with_literals(icell):
    utf8_subject = "Grüße aus Köln".encode()
    for s in ("alpha one", "beta two"):
        assert deliver(icell, make_message(s)).ok
    assert deliver(icell, make_message(utf8_subject)).ok
    with session(icell, "sel") as c:
        # synchronizing, dripped one byte at a time
        c.send(b"a SEARCH SUBJECT {8}\r\n")
        assert c.read().line.startswith(b"+")
        for b in b"beta two":
            c.send(bytes([b]))
            time.sleep(0.02)
        c.send(b"\r\n")
        untagged, r = c.read_tagged("a")
        assert r.kind == b"OK" and [u.line for u in untagged] == [b"* SEARCH 2"], (untagged, r)
        # non-synchronizing, 8-bit, with CHARSET
        word = "Grüße".encode()
        c.send(b"b SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n%s\r\n" % (len(word), word))
        untagged, r = c.read_tagged("b")
        assert r.kind == b"OK" and [u.line for u in untagged] == [b"* SEARCH 3"], (untagged, r)
        # a literal that holds a CRLF and a quote: data, not syntax
        odd = b'one"\r\nc LOGOUT'
        c.send(b"c SEARCH OR SUBJECT {%d+}\r\n%s SUBJECT {3+}\r\none\r\n" % (len(odd), odd))
        untagged, r = c.read_tagged("c")
        assert r.kind == b"OK" and [u.line for u in untagged] == [b"* SEARCH 1"], (untagged, r)
        # an empty literal
        c.send(b"d SEARCH SUBJECT {0}\r\n")
        assert c.read().line.startswith(b"+")
        c.send(b"\r\n")
        untagged, r = c.read_tagged("d")
        assert r.kind == b"OK" and [u.line for u in untagged] == [b"* SEARCH 1 2 3"], (untagged, r)
        assert_in_step(c, "after the literals")


@pytest.mark.parametrize("size", [MAX_LITERAL + 1, 4294967296, 9999999999],
                         ids=["limit+1", "2^32", "10-digits"])
@pytest.mark.parametrize("state", ["pre", "sel"])
def test_oversized_sync_literal_refused_before_the_data(shared, size, state):
    """The client waits for "+" before sending a synchronizing literal: the
    server must refuse at once, and the next line is a new command."""
    with session(shared, state) as c:
        c.send(b"a APPEND INBOX {%d}\r\n" % size)
        expect_refusal(c, A, BAD_NO, what=f"APPEND {{{size}}}")
        assert_in_step(c, "after the refused literal")


def test_oversized_literal_refusal_says_toobig(shared):
    """RFC 9051 §7.1 TOOBIG (and RFC 7888 §4 for non-synchronizing literals)."""
    with session(shared, "sel") as c:
        c.send(b"a APPEND INBOX {%d}\r\n" % (MAX_LITERAL + 1))
        r = expect_refusal(c, A, BAD_NO, what="over-size literal")
        assert r.code == b"TOOBIG", f"no [TOOBIG] code: {r!r}"


def test_oversized_non_sync_literal_error_and_skipped(icell):
    """{N+} over the limit: RFC 7888 §4 lets the server reject and either
    read and discard the literal or close. The engine answers at once and
    skips exactly N bytes: the skipped bytes are command lines that must not
    run, RSS does not grow by the literal, and the session goes on (or, if
    the server chose to close, it closed cleanly)."""
    n = MAX_LITERAL + 1
    line = b"z CREATE Smuggled\r\n"
    chunk = line * (65536 // len(line) + 1)
    with session(icell, "auth") as c:
        base = icell.rss_kib()
        peak = base
        c.send(b"a APPEND INBOX {%d+}\r\n" % n)
        r = expect_refusal(c, A, BAD_NO, what="non-synchronizing literal over the limit")
        sent, closed = 0, False
        try:
            while sent < n:
                piece = chunk[:min(len(chunk), n - sent)]
                c.send(piece)
                sent += len(piece)
                if sent % (8 << 20) < len(piece):
                    peak = max(peak, icell.rss_kib())
            c.send(b" trailing text of the refused command\r\n")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if closed:
            _, eof = c.wait_closed(5)
            assert eof, "the server stopped reading but did not close"
        else:
            assert_in_step(c, "after skipping the over-size literal")
            assert b"Smuggled" not in mailbox_names(c), "bytes of the refused literal ran as commands"
        peak = max(peak, icell.rss_kib())
    assert peak - base < 32 * 1024, f"RSS grew {peak - base} KiB while a refused literal was skipped"
    print(f"\nrefused {n}-byte literal: {r.line!r}; closed={closed}; RSS {base} -> peak {peak} KiB")
    imap_healthy(icell)


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "non-sync"])
def test_append_literal_stored_as_sent(icell, sync):
    msg = make_message("appended " + token(), body=b"8-bit \xe9\xff and a long line " + b"x" * 2000 + b"\r\n")
    with session(icell, "auth") as c:
        head = b'a APPEND Drafts (\\Draft) " 1-Jun-2026 12:00:00 +0000" {%d%s}\r\n' % (len(msg), b"" if sync else b"+")
        c.send(head)
        if sync:
            assert c.read().line.startswith(b"+")
        c.send(msg + b"\r\n")
        _, r = c.read_tagged("a")
        assert r.is_("a", "OK", "APPENDUID"), r
        c.select("Drafts")
        r = c.cmd("FETCH 1 (FLAGS INTERNALDATE BODY.PEEK[])")
        data = c.untagged[0].raw
        assert r.kind == b"OK" and data.endswith(msg + b")\r\n"), data[-200:]
        assert b"\\Draft" in data and b'" 1-Jun-2026 12:00:00 +0000"' in data


def test_client_gone_mid_literal_stores_nothing(icell):
    msg = make_message("cut off", size=100000)
    with session(icell, "auth") as c:
        before = count_messages(c)
        c.send(b"a APPEND INBOX {%d}\r\n" % len(msg))
        assert c.read().line.startswith(b"+")
        c.send(msg[:50000])
    time.sleep(0.5)
    with session(icell, "auth") as c:
        assert count_messages(c) == before
    imap_healthy(icell)
    ok, report = icell.check()
    assert ok, report


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "non-sync"])
def test_append_over_message_limit_refused(make_cell, sync):
    """A synchronizing APPEND over the limit should be refused before the
    data; a non-synchronizing one refused after it (or the connection
    closed, RFC 7888 §4). Either way nothing is stored."""
    cell = make_cell(with_imap(maxMessageBytes=100000))
    msg = make_message(f"too big {token()}", size=200000)
    with session(cell, "auth") as c:
        before = count_messages(c)
    r, closed = None, False
    with session(cell, "auth") as c:
        try:
            c.send(b"a APPEND INBOX {%d%s}\r\n" % (len(msg), b"" if sync else b"+"))
            if sync:
                r = c.read()
                if r.line.startswith(b"+"):
                    c.send(msg + b"\r\n")
                    _, r = c.read_tagged("a", timeout=15)
            else:
                c.send(msg + b"\r\n")
                _, r = c.read_tagged("a", timeout=15)
        except (Closed, BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            assert r.tag == b"a", r
            if r.kind == b"OK":
                pass                     # judged by the store below
            else:
                assert r.kind in BAD_NO and readable(r), r
                assert_in_step(c, "after the refused APPEND")
    with session(cell, "auth") as c:
        after = count_messages(c)
    assert after == before, f"a 200000-byte APPEND was stored with maxMessageBytes=100000 ({r!r})"
    assert r is not None or closed


def test_unauthenticated_client_cannot_make_the_server_buffer_megabytes(icell):
    """Before authentication nothing needs more than LOGIN's credentials.
    The engine answers "+" to a 32 MiB synchronizing literal from an
    unauthenticated client and buffers whatever it sends (four
    unauthenticated connections each sending 60 MB of one literal took the
    engine from 65 MB to 331 MB RSS; 50 connections per IP are allowed)."""
    with session(icell, "pre") as c:
        c.send(b"a LOGIN {%d}\r\n" % (32 << 20))
        r = c.read()
        assert not r.line.startswith(b"+"), f"pre-auth 32 MiB literal accepted: {r!r}"
        assert r.tag == b"a" and r.kind in BAD_NO, r
        assert_in_step(c, "after the refused pre-auth literal")


# ---------------------------------------------------------------------------
# 3. A client that never reads
# ---------------------------------------------------------------------------
BACKLOG_MESSAGES = 200
BACKLOG_SIZE = 50000
PIPELINED = 50
# One FETCH 1:* BODY.PEEK[] answer is ~10 MB. Measured growth with the answers
# left unread: 1 FETCH +36 MiB (the answer built as an array, copied into a
# buffer, encrypted, plus socket buffers), 10 +123 MiB, 25 +267 MiB, 50 +506 MiB.
# A server that stops reading or executing while output is unsent holds one
# or two answers whatever the client pipelines; 96 MiB allows that with slack
# and is a fifth of what buffering all 50 takes.
BACKLOG_RSS_BOUND_KIB = 96 * 1024


def test_client_that_never_reads_does_not_grow_memory(make_cell):
    """The server must stop reading and executing while its output is unsent
    (before the backpressure in IMAPServerHandler, RSS grew ~10 MiB per
    pipelined FETCH: +506 MiB for 50)."""
    cell = make_cell(with_imap())
    with SMTPConn(cell.address("mx"), timeout=30) as m:
        m.ehlo()
        for i in range(BACKLOG_MESSAGES):
            expect(m.transaction(make_message(f"bulk {i}", size=BACKLOG_SIZE)), 250, what=f"bulk {i}")
    # Warm up with one whole answer read by a normal client, then measure.
    with session(cell, "sel", timeout=30) as w:
        r = w.cmd("FETCH 1:* BODY.PEEK[]", timeout=30)
        assert r.kind == b"OK" and len(w.untagged) == BACKLOG_MESSAGES
    time.sleep(0.5)
    base = cell.rss_kib()
    hog = session(cell, "sel", timeout=30)
    sampler = RSSSampler(cell, 0.1)
    sampler.start()
    t0 = time.monotonic()
    try:
        hog.send(b"".join(b"f%d FETCH 1:* BODY.PEEK[]\r\n" % i for i in range(PIPELINED)))
        time.sleep(2.0)
        # The server is not stuck: a new client logs in and fetches promptly.
        t1 = time.monotonic()
        with session(cell, "sel", timeout=10) as other:
            r = other.cmd("FETCH 1:5 BODY.PEEK[]", timeout=10)
            assert r.kind == b"OK" and len(other.untagged) == 5, r
            other.cmd("LOGOUT")
        other_s = time.monotonic() - t1
        assert other_s < 5, f"another client needed {other_s:.1f}s for LOGIN+SELECT+FETCH"
        # Let the backlog do its worst (unbounded buffering had grown for 8 s
        # here), or stop as soon as the bound is clearly passed.
        while time.monotonic() - t0 < 10 and (sampler.peak_kib or 0) - base < 2 * BACKLOG_RSS_BOUND_KIB:
            time.sleep(0.2)
    finally:
        sampler.stop()
        hog.close()
    peak = sampler.peak_kib
    print(f"\nnon-reading client, {PIPELINED} x FETCH of {BACKLOG_MESSAGES} x {BACKLOG_SIZE} B: "
          f"RSS {base} -> peak {peak} KiB (+{(peak - base) / 1024:.0f} MiB); other client {other_s:.2f}s")
    # After the socket is gone the engine is healthy.
    time.sleep(1.0)
    imap_healthy(cell)
    assert_healthy(cell)
    assert peak - base < BACKLOG_RSS_BOUND_KIB, (
        f"RSS grew by {(peak - base) / 1024:.0f} MiB (bound {BACKLOG_RSS_BOUND_KIB // 1024} MiB) "
        f"for {PIPELINED} pipelined FETCHes nobody reads")


# ---------------------------------------------------------------------------
# 4. 500 sessions in IDLE over TLS
# ---------------------------------------------------------------------------
IDLERS = 500
# Measured 28 KiB per TLS session in IDLE; 128 KiB leaves 4x headroom.
IDLE_RSS_PER_SESSION_KIB = 128


async def _until(reader, pred, timeout):
    lines = []

    async def go():
        while True:
            line = await reader.readline()
            if not line:
                raise EOFError(f"closed after {lines!r}")
            lines.append(line)
            if pred(line):
                return lines
    return await asyncio.wait_for(go(), timeout)


async def _idle_storm(cell, n):
    ctx = insecure_tls_context()
    port = cell.port("imaps")
    sem = asyncio.Semaphore(50)
    conns = [None] * n
    # LOGIN, SELECT and IDLE pipelined in one write.
    opening = (f'a LOGIN {ALICE} "{USERS[ALICE]}"\r\nb SELECT INBOX\r\nc IDLE\r\n').encode()
    report = {}

    async def open_one(i):
        async with sem:
            r, w = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", port, ssl=ctx, server_hostname="mx.example.test"), 30)
            conns[i] = (r, w)
            await _until(r, lambda l: l.startswith(b"* OK"), 30)
            w.write(opening)
            await w.drain()
            lines = await _until(r, lambda l: l.startswith(b"+ ") or
                                 (l[:2] in (b"a ", b"b ", b"c ") and not l[2:].startswith(b"OK")), 60)
            if not lines[-1].startswith(b"+ "):
                raise AssertionError(f"session {i}: {lines[-1]!r}")

    base = cell.rss_kib()
    t0 = time.monotonic()
    res = await asyncio.gather(*(open_one(i) for i in range(n)), return_exceptions=True)
    problems = [f"open {i}: {x!r}" for i, x in enumerate(res) if x is not None]
    report["open_s"] = time.monotonic() - t0
    if problems:
        return problems, report, conns
    await asyncio.sleep(1.0)
    report["rss_base"], report["rss_idle"] = base, cell.rss_kib()

    t1 = time.monotonic()
    out = await asyncio.to_thread(deliver, cell, make_message("wake up " + token()))
    if not out.ok:
        return [f"delivery: {out!r}"], report, conns

    async def sees(i):
        r, _ = conns[i]
        await _until(r, lambda l: l == b"* 1 EXISTS\r\n", 10)
        return time.monotonic() - t1

    res = await asyncio.gather(*(sees(i) for i in range(n)), return_exceptions=True)
    problems = [f"EXISTS {i}: {x!r}" for i, x in enumerate(res) if not isinstance(x, float)]
    late = [x for x in res if isinstance(x, float)]
    report["exists_max_s"] = max(late) if late else None
    report["rss_after_exists"] = cell.rss_kib()
    if problems:
        return problems, report, conns

    async def finish(i):
        r, w = conns[i]
        w.write(b"DONE\r\nd LOGOUT\r\n")
        await w.drain()
        lines = await _until(r, lambda l: l.startswith(b"d "), 20)
        if not any(l.startswith(b"c OK") for l in lines) or not any(l.startswith(b"* BYE") for l in lines) \
                or not lines[-1].startswith(b"d OK"):
            raise AssertionError(f"session {i} DONE/LOGOUT: {lines!r}")
        rest = await asyncio.wait_for(r.read(), 10)
        if rest:
            raise AssertionError(f"session {i}: bytes after LOGOUT: {rest!r}")
        w.close()

    res = await asyncio.gather(*(finish(i) for i in range(n)), return_exceptions=True)
    problems = [f"finish {i}: {x!r}" for i, x in enumerate(res) if x is not None]
    return problems, report, conns


def test_500_sessions_in_idle_all_see_new_mail(make_cell):
    soft, _ = raise_nofile()
    assert soft >= 2 * IDLERS + 100, f"RLIMIT_NOFILE {soft} too low"
    # The default maxConnectionsPerIP (50) would refuse most of them: every
    # client here is 127.0.0.1.
    cell = make_cell(with_imap(maxConnections=1000, maxConnectionsPerIP=600))
    t0 = time.monotonic()
    conns = []
    try:
        problems, rep, conns = asyncio.run(_idle_storm(cell, IDLERS))
    finally:
        for c in conns:
            if c:
                c[1].close()
    elapsed = time.monotonic() - t0
    print(f"\n{IDLERS} IDLE sessions: {rep}, total {elapsed:.1f}s")
    assert engine_alive(cell), cell.log()
    assert problems == [], f"{len(problems)} problems, first: {problems[:5]}"
    assert rep["exists_max_s"] < 10, f"the last session saw EXISTS after {rep['exists_max_s']:.1f}s"
    per = (rep["rss_idle"] - rep["rss_base"]) / IDLERS
    assert per < IDLE_RSS_PER_SESSION_KIB, f"{per:.0f} KiB per IDLE session"
    imap_healthy(cell)
    assert_healthy(cell)


@pytest.mark.parametrize("listener", ["imap", "imaps"])
def test_connection_cap_refuses_with_bye(make_cell, listener):
    cap = 5
    cell = make_cell(with_imap(maxConnectionsPerIP=cap))
    tls = listener == "imaps"
    held = [IMAPConn(cell.port(listener), tls=tls) for _ in range(cap)]
    try:
        for c in held:
            assert c.greeting.is_("*", "OK"), c.greeting
        try:
            extra = IMAPConn(cell.port(listener), tls=tls, greet=False)
            got, closed = extra.wait_closed(5)
            extra.close()
        except (ssl.SSLError, ConnectionResetError) as e:
            got, closed = f"TLS handshake failed: {e!r}".encode(), True
        assert got.startswith(b"* BYE"), f"connection {cap + 1} with maxConnectionsPerIP={cap} got {got!r}"
        assert closed, "the refused connection was not closed"
        assert held[0].noop_ok(), "a held session suffered"
    finally:
        for c in held:
            c.close()


# ---------------------------------------------------------------------------
# 5. IDLE, SASL and STARTTLS misuse; inputs that cost the server
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("garbage", [b"x CREATE Injected", b"\xff\xfe\x00 garbage", b"DONE now", b""],
                         ids=["command", "binary", "done-with-text", "empty"])
def test_idle_then_garbage_instead_of_done(icell, garbage):
    """RFC 2177: only DONE ends IDLE. Anything else ends it with a tagged BAD
    for the IDLE command and is not run as a command."""
    with session(icell, "sel") as c:
        c.send(b"i IDLE\r\n")
        assert c.read().line.startswith(b"+"), "IDLE continuation"
        c.send(garbage + b"\r\n")
        expect_refusal(c, {b"i"}, BAD, what=f"IDLE then {garbage!r}")
        assert_in_step(c, "after IDLE")
        assert b"Injected" not in mailbox_names(c)


def test_idle_survives_an_overlong_line_and_ends_with_done(icell):
    with session(icell, "sel") as c:
        c.send(b"i IDLE\r\n")
        assert c.read().line.startswith(b"+")
        c.send(b"y" * (MAX_LINE + 100) + b"\r\n")
        r = c.read()
        assert r.kind == b"BAD" and r.tag in (b"*", b"i"), r
        if r.tag == b"*":
            c.send(b"DONE\r\n")
            _, r = c.read_tagged("i")
            assert r.is_("i", "OK"), r
        assert_in_step(c, "after IDLE")


@pytest.mark.parametrize("response, kind", [
    (b"*", b"BAD"),                                  # RFC 9051 §6.2.2: cancel -> tagged BAD
    (b"!!!not base64!!!", b"BAD"),                   # invalid base64 -> tagged BAD
    (b"AGFsaWNlQGV4YW1wbGUudGVzdA", b"BAD"),         # padding missing
    (b"AGFsaWNlQGV4YW1wbGUudGVzdA==", b"BAD"),       # RFC 4616: "\0user", no password field
    (b"AGFsaWNlQGV4YW1wbGUudGVzdAA=", b"NO"),        # "\0user\0": an empty password, just wrong
    (b"Ym9iQGV4YW1wbGUudGVzdABhbGljZUBleGFtcGxlLnRlc3QAeA==", b"NO"),  # acting as another user
], ids=["cancel", "bad-base64", "no-padding", "two-fields", "empty-password", "other-authzid"])
def test_authenticate_broken_responses(icell, response, kind):
    with session(icell, "pre") as c:
        c.send(b"a AUTHENTICATE PLAIN\r\n")
        r = c.read()
        assert r.line.startswith(b"+"), f"SASL continuation: {r!r}"
        c.send(response + b"\r\n")
        expect_refusal(c, A, (kind,), what=f"SASL response {response!r}")
        assert_in_step(c, "after the failed AUTHENTICATE")
        # and a correct exchange still works
        ir = base64.b64encode(f"\0{ALICE}\0{USERS[ALICE]}".encode())
        r = c.cmd(b"AUTHENTICATE PLAIN " + ir)
        assert r.kind == b"OK", r


@pytest.mark.parametrize("line, kinds", [
    (b"a AUTHENTICATE PLAIN ===", BAD),
    (b"a AUTHENTICATE PLAIN", None),                  # followed by the cancel below
    (b"a AUTHENTICATE X-UNKNOWN-MECH", BAD_NO),
    (b"a AUTHENTICATE", BAD),
], ids=["ir-bad-base64", "then-cancel", "unknown-mechanism", "no-mechanism"])
def test_authenticate_malformed_commands(icell, line, kinds):
    with session(icell, "pre") as c:
        c.send(line + b"\r\n")
        if kinds is None:
            assert c.read().line.startswith(b"+")
            c.send(b"*\r\n")
            kinds = BAD
        expect_refusal(c, A, kinds, what=repr(line))
        assert_in_step(c, "after AUTHENTICATE")
        c.login()


def test_authenticate_without_tls_is_refused(icell):
    c = IMAPConn(icell.port("imap"))
    with c:
        c.send(b"a AUTHENTICATE PLAIN\r\n")
        r = expect_refusal(c, A, BAD_NO, what="AUTHENTICATE before STARTTLS")
        assert r.code == b"PRIVACYREQUIRED", r
        assert_in_step(c, "after the refused AUTHENTICATE")


def test_overlong_sasl_response_ends_the_exchange(icell):
    with session(icell, "pre") as c:
        c.send(b"a AUTHENTICATE PLAIN\r\n")
        assert c.read().line.startswith(b"+")
        c.send(b"A" * (MAX_LINE + 100) + b"\r\n")
        r = c.read()
        assert r.kind == b"BAD", r
        assert r.tag == b"a", f"over-long SASL response answered {r!r}, AUTHENTICATE still open"
        assert_in_step(c, "after the over-long SASL response")


def test_starttls_discards_pipelined_commands(icell):
    """RFC 9051 §6.2.1 / RFC 3207 §4.2 (CVE-2011-0411 class): commands sent
    in the same packet as STARTTLS must not run after the handshake."""
    c = IMAPConn(icell.port("imap"))
    with c:
        login = f'b LOGIN {ALICE} "{USERS[ALICE]}"\r\n'.encode()
        c.send(b"a STARTTLS\r\n" + login + b"c SELECT INBOX\r\nd CREATE Injected\r\n")
        r = c.read()
        assert r.is_("a", "OK"), r
        assert not c.buf, f"bytes after the STARTTLS OK before the handshake: {c.buf!r}"
        c.sock = insecure_tls_context().wrap_socket(c.sock, server_hostname="mx.example.test")
        r = c.cmd("CAPABILITY", tag="e")
        assert r.is_("e", "OK"), r
        assert [u.line.split(b" ")[1] for u in c.untagged] == [b"CAPABILITY"], \
            f"responses to injected commands after the handshake: {c.untagged!r}"
        caps = c.untagged[0].line
        assert b"AUTH=PLAIN" in caps and b"STARTTLS" not in caps, caps
        # not logged in by the injected LOGIN
        r = c.cmd("SELECT INBOX", tag="f")
        assert r.tag == b"f" and r.kind in BAD_NO, f"the injected LOGIN took effect: {r!r}"
        c.login()
        assert b"Injected" not in mailbox_names(c)


def test_starttls_then_plaintext_closes_cleanly(icell):
    c = IMAPConn(icell.port("imap"))
    with c:
        r = c.cmd("STARTTLS")
        assert r.kind == b"OK", r
        c.send(b"b NOOP\r\nc LOGIN alice@example.test secret\r\n")
        got, closed = c.wait_closed(5)
        assert closed, "the server kept a connection that sent plaintext after STARTTLS"
        assert b" OK" not in got and b"BAD" not in got, f"IMAP responses to plaintext: {got!r}"
    imap_healthy(icell)


def test_logout_then_pipelined_commands_are_not_run(icell):
    with session(icell, "auth") as c:
        c.send(b"q LOGOUT\r\nr CREATE AfterLogout\r\ns NOOP\r\n")
        untagged, r = c.read_tagged("q")
        assert r.is_("q", "OK") and any(u.kind == b"BYE" for u in untagged), (untagged, r)
        got, closed = c.wait_closed(5)
        assert closed and got == b"", f"after LOGOUT: {got!r}, closed={closed}"
    with session(icell, "auth") as c:
        assert b"AfterLogout" not in mailbox_names(c)


def test_pipelined_login_select_fetch_answered_in_order(shared):
    with session(shared, "pre") as c:
        c.send(f'a LOGIN {ALICE} "{USERS[ALICE]}"\r\nb SELECT INBOX\r\nc FETCH 2 (UID)\r\n'
               "d LOGIN again x\r\ne NOOP\r\n".encode())
        tags = []
        deadline = time.monotonic() + 10
        while len(tags) < 5 and time.monotonic() < deadline:
            r = c.read()
            if not r.line.startswith(b"*"):
                tags.append((r.tag, r.kind))
        assert tags == [(b"a", b"OK"), (b"b", b"OK"), (b"c", b"OK"), (b"d", b"BAD"), (b"e", b"OK")], tags


def test_pipelined_burst_during_deliveries_answered_in_order(icell):
    """Short commands may be answered on the event loop while the store
    thread is idle and are handed to it otherwise (IMAPSession.isQuick):
    bursts of pipelined commands, short and long mixed, with deliveries going
    on meanwhile, are answered in order, once each, and every flag change is
    kept."""
    for i in range(20):
        assert deliver(icell, make_message(f"seed {i}")).ok
    stop, problems, delivered = threading.Event(), [], [0]

    def deliveries():
        while not stop.is_set() and delivered[0] < 150:
            o = deliver(icell, make_message(f"during {delivered[0]}"))
            if not o.ok:
                problems.append(o)
            delivered[0] += 1

    t = threading.Thread(target=deliveries)
    t.start()
    flagged = {u: False for u in range(1, 21)}
    try:
        with session(icell, "sel") as c:
            for burst in range(10):
                commands = []
                for k in range(200):
                    uid = (burst * 200 + k) % 20 + 1
                    other = {1: "NOOP", 2: f"UID FETCH {uid} (FLAGS)", 4: "UID SEARCH FLAGGED", 5: "SELECT INBOX",
                             6: "UID SEARCH BODY seed"}.get(k % 7)
                    if other is None:
                        on = (burst + k) % 3 != 0
                        flagged[uid] = on
                        other = f"UID STORE {uid} {'+' if on else '-'}FLAGS.SILENT (\\Flagged)"
                    commands.append(other)
                tags = [f"b{burst}k{k}" for k in range(len(commands))]
                c.send(b"".join(f"{t} {cmd}\r\n".encode() for t, cmd in zip(tags, commands)))
                answered = []
                while len(answered) < len(tags):
                    r = c.read(20)
                    if not r.line.startswith(b"*"):
                        answered.append((r.tag.decode(), r.kind))
                assert answered == [(t, b"OK") for t in tags], [a for a in answered if a[1] != b"OK"][:5]
            r = c.cmd("UID SEARCH FLAGGED")
            got = {int(x) for u in c.untagged if u.line.startswith(b"* SEARCH") for x in u.line.split()[2:]}
            assert r.kind == b"OK" and got == {u for u, on in flagged.items() if on}, (got, flagged)
    finally:
        stop.set()
        t.join(60)
    assert not problems, problems[:3]
    assert delivered[0] > 0


@pytest.mark.parametrize("item", [b"BODY.PEEK[]<9223372036854775807.2>",
                                  b"BINARY.PEEK[]<9223372036854775800.100>",
                                  b"BODY[]<9223372036854775807.4294967295>"],
                         ids=["body-peek", "binary-peek", "body-max-count"])
def test_huge_partial_offset_does_not_crash(icell, item):
    with session(icell, "pre") as c:
        c.send(b"a FETCH 1 " + item + b"\r\n")
        try:
            r = c.read(5)
        except (Closed, TimeoutError) as e:
            r = e
    if not isinstance(r, Exception):
        time.sleep(0.5)
    else:                          # no answer: let a dying engine finish its backtrace
        try:
            icell.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
    assert engine_alive(icell), f"engine died on {item!r} (rc={icell.proc.returncode}); response {r!r}"
    assert getattr(r, "tag", None) == b"a" and r.kind in BAD_NO, r
    imap_healthy(icell)


def test_huge_partial_within_range_is_empty(shared):
    with session(shared, "sel") as c:
        # The largest 32-bit offset (RFC 9051 §9 `number`) is past the end: empty.
        r = c.cmd("FETCH 1 (BODY.PEEK[]<4294967295.4294967295>)")
        assert r.kind == b"OK", r
        assert c.untagged and c.untagged[0].raw.endswith(b"BODY[]<4294967295> {0}\r\n)\r\n"), c.untagged
        # One more does not fit the grammar's 32 bits: BAD, and the session goes on.
        r = c.cmd("FETCH 1 (BODY.PEEK[]<4294967296.1>)")
        assert r.kind == b"BAD" and b"range" in r.text, r
        assert c.noop_ok()


def test_pathological_list_pattern_does_not_stall_the_engine(icell):
    """`*` repeated 60 times and a letter no mailbox has: a greedy matcher
    tries C(60+len(name), len(name)) splits per mailbox (minutes here; 30
    stars took 2.8 s, 25 took 0.85 s). The reply must come promptly and other
    sessions and deliveries must not wait for it."""
    c = session(icell, "auth", timeout=5)
    results = {}

    def other_client():
        time.sleep(0.5)
        t = time.monotonic()
        try:
            with session(icell, "auth", timeout=3) as o:
                results["noop"] = o.noop_ok(timeout=3)
        except Exception as e:
            results["noop"] = repr(e)
        results["noop_s"] = time.monotonic() - t
        t = time.monotonic()
        try:
            results["smtp"] = deliver(icell, make_message("during LIST"), timeout=3).ok
        except Exception as e:
            results["smtp"] = repr(e)
        results["smtp_s"] = time.monotonic() - t

    th = threading.Thread(target=other_client)
    th.start()
    t0 = time.monotonic()
    try:
        c.send(b'a LIST "" "' + b"*" * 60 + b'X"\r\n')
        try:
            _, r = c.read_tagged("a", timeout=4)
        except (TimeoutError, Closed) as e:
            r = e
        list_s = time.monotonic() - t0
        th.join(20)
    finally:
        c.close()
    stalled = getattr(r, "kind", None) != b"OK"
    if stalled:
        icell.kill9()     # the store thread would otherwise run for minutes
    assert not stalled, f"no LIST reply after {list_s:.1f}s ({r!r}); meanwhile {results}"
    assert results.get("noop") is True and results["noop_s"] < 3, results
    assert results.get("smtp") is True and results["smtp_s"] < 3, results
    imap_healthy(icell)


def _nested_multipart(depth):
    head = b"From: <a@remote.test>\r\nTo: <alice@example.test>\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
    body = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for d in range(depth, 0, -1):
        body = (b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (d, d)) + body + b"\r\n--b%d--\r\n" % d
    return head + body


def test_deeply_nested_mime_is_served_within_bounds(icell):
    """A hostile sender's message (2,000 nested multiparts, via MX without
    authentication) must not take the owner's session or the engine down."""
    assert deliver(icell, _nested_multipart(2000)).ok
    with session(icell, "sel", timeout=10) as c:
        t0 = time.monotonic()
        r = c.cmd("FETCH 1 (BODYSTRUCTURE ENVELOPE BODY.PEEK[1.1.1.1.1.1.1.1] BINARY.SIZE[1])", timeout=10)
        assert r.kind in (b"OK", b"NO"), r
        assert time.monotonic() - t0 < 5
        assert_in_step(c, "after the nested message")
    imap_healthy(icell)
