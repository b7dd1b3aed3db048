"""Hostile and broken clients against the MX role (docs/SMTP.md): malformed
commands, over-long and NUL-bearing lines, truncated and over-size data,
bare-LF smuggling, slow and idle clients, session limits and many concurrent
connections. After every scenario the engine must still accept a normal
message and `postcell-engine check` must pass."""
import asyncio
import socket
import struct
import threading
import time

import pytest

from conftest import strip_trace
from helpers_stress import (
    ALICE, BOB, CRLF, SENDER, RSSSampler, SMTPConn, assert_healthy, deliver,
    dot_stuff, engine_alive, expect, fetch_all, find_token, make_message,
    raise_nofile, store_tmp_files, token, wait_until,
)

SMALL_LIMITS = {
    "idleTimeoutSeconds": 3,
    "maxCommandsPerSession": 50,
    "maxErrorsPerSession": 5,
    "maxMessageBytes": 100000,
}


def limits(**extra):
    def mutate(cfg):
        cfg.setdefault("limits", {}).update(SMALL_LIMITS)
        cfg["limits"].update(extra)
    return mutate


@pytest.fixture
def mx(make_cell):
    return make_cell(limits())


# ---------------------------------------------------------------------------
# Malformed commands: the documented reply, then the session goes on.
# ---------------------------------------------------------------------------
# (id, EHLO first?, commands before the bad one, bad command, code, enhanced,
#  how to continue: "tx" = EHLO + full transaction, "rcpt" = the open
#  transaction continues with a valid RCPT and DATA)
MAIL_OK = b"MAIL FROM:<sender@remote.test>"
MALFORMED = [
    ("garbage", True, [], b"XYZZY plugh", 500, "5.5.2", "tx"),
    ("binary-garbage", True, [], b"\x01\x02\xff\xfe\x7f junk", 500, "5.5.2", "tx"),
    ("mail-without-brackets", True, [], b"MAIL FROM:sender@remote.test", 501, "5.1.7", "tx"),
    ("mail-unbalanced", True, [], b"MAIL FROM:<sender@remote.test", 501, "5.1.7", "tx"),
    ("rcpt-unbalanced-open", True, [MAIL_OK], b"RCPT TO:<alice@example.test", 501, "5.1.3", "rcpt"),
    ("rcpt-unbalanced-close", True, [MAIL_OK], b"RCPT TO:alice@example.test>", 501, "5.1.3", "rcpt"),
    ("size-abc", True, [], b"MAIL FROM:<sender@remote.test> SIZE=abc", 501, "5.5.4", "tx"),
    ("body-9bit", True, [], b"MAIL FROM:<sender@remote.test> BODY=9BIT", 555, "5.5.4", "tx"),
    ("mail-unknown-param", True, [], b"MAIL FROM:<sender@remote.test> FROBNICATE=yes", 555, "5.5.4", "tx"),
    ("rcpt-unknown-param", True, [MAIL_OK], b"RCPT TO:<alice@example.test> XFOO=1", 555, "5.5.4", "rcpt"),
    ("ehlo-without-domain", False, [], b"EHLO", 501, "5.5.4", "tx"),
    ("mail-before-ehlo", False, [], MAIL_OK, 503, "5.5.1", "tx"),
    ("rcpt-before-mail", True, [], b"RCPT TO:<alice@example.test>", 503, "5.5.1", "tx"),
    ("data-before-rcpt", True, [MAIL_OK], b"DATA", 503, "5.5.1", "rcpt"),
    ("nested-mail", True, [MAIL_OK], b"MAIL FROM:<other@remote.test>", 503, "5.5.1", "rcpt"),
    ("non-ascii-sender", True, [], "MAIL FROM:<jösé@remote.test>".encode(), 553, "5.6.7", "tx"),
    ("relay-denied", True, [MAIL_OK], b"RCPT TO:<someone@elsewhere.test>", 550, "5.7.1", "rcpt"),
    ("unknown-user", True, [MAIL_OK], b"RCPT TO:<nobody@example.test>", 550, "5.1.1", "rcpt"),
    ("vrfy", True, [], b"VRFY alice", 502, "5.5.1", "tx"),
    ("expn", True, [], b"EXPN staff", 502, "5.5.1", "tx"),
    ("auth-on-mx", True, [], b"AUTH PLAIN AGFsaWNlAHNlY3JldA==", 503, "5.5.1", "tx"),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_command_then_session_continues(mx, case):
    name, ehlo_first, before, bad, code, enh, cont = case
    tok = token()
    content = make_message(f"after {name} {tok}")
    with SMTPConn(mx.address()) as c:
        expect(c.greeting, 220, what="greeting")
        if ehlo_first:
            c.ehlo()
        for line in before:
            expect(c.cmd(line), 250, what=f"setup {line!r}")
        expect(c.cmd(bad), code, enh, what=f"malformed {bad!r}")
        if cont == "rcpt":
            expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250, what="valid RCPT after the error")
            final = c.data(content)
        else:
            c.ehlo()
            final = c.transaction(content)
        expect(final, 250, "2.0.0", what="end of data after the error")
        expect(c.cmd("QUIT"), 221, what="QUIT")
    found = find_token(mx, ALICE, tok)
    assert len(found) == 1 and strip_trace(found[0][1]) == content
    assert_healthy(mx)


def test_data_after_only_rejected_recipients(mx):
    with SMTPConn(mx.address()) as c:
        c.ehlo()
        expect(c.cmd(MAIL_OK), 250)
        expect(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1")
        expect(c.cmd("DATA"), 554, "5.5.1", what="DATA after only rejected RCPTs")
        expect(c.cmd("RSET"), 250, what="RSET")
        tok = token()
        content = make_message(f"after 554 {tok}")
        expect(c.transaction(content), 250, "2.0.0")
    assert len(find_token(mx, ALICE, tok)) == 1
    assert_healthy(mx)


# ---------------------------------------------------------------------------
# Over-long lines and NUL bytes
# ---------------------------------------------------------------------------
def test_overlong_command_line_one_reply_and_session_continues(mx):
    prefix, suffix = b"MAIL FROM:<", b"@remote.test>\r\n"
    line = prefix + b"a" * (10000 - len(prefix) - len(suffix)) + suffix
    assert len(line) == 10000
    tok = token()
    content = make_message(f"after long line {tok}")
    with SMTPConn(mx.address()) as c:
        c.ehlo()
        c.send(line)
        expect(c.read(), 500, "5.5.2", contains="too long", what="10,000-byte command line")
        # Exactly one reply for the whole line: the next replies must line up,
        # and the long MAIL must not have opened a transaction.
        expect(c.cmd("NOOP"), 250, what="NOOP after the long line")
        final = c.transaction(content)
        expect(final, 250, "2.0.0", what="transaction after the long line")
        expect(c.cmd("QUIT"), 221)
    found = find_token(mx, ALICE, tok)
    assert len(found) == 1 and strip_trace(found[0][1]) == content
    assert_healthy(mx)


@pytest.mark.parametrize("line", [
    b"EHLO cli\x00ent.remote.test",
    b"MAIL FROM:<sender@remote.test>\x00",
    b"\x00\x00\x00",
], ids=["ehlo", "mail", "only-nuls"])
def test_nul_byte_in_command(mx, line):
    tok = token()
    content = make_message(f"after NUL {tok}")
    with SMTPConn(mx.address()) as c:
        if not line.startswith(b"EHLO"):
            c.ehlo()
        expect(c.cmd(line), 500, "5.5.2", contains="NUL", what=f"command with NUL {line!r}")
        c.ehlo()
        expect(c.transaction(content), 250, "2.0.0", what="transaction after the NUL command")
    assert len(find_token(mx, ALICE, tok)) == 1
    assert_healthy(mx)


# ---------------------------------------------------------------------------
# Content stored as sent
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("params", ["", "BODY=8BITMIME"], ids=["no-params", "8bitmime"])
def test_8bit_header_bytes_without_smtputf8_stored_as_sent(mx, params):
    tok = token()
    content = make_message(
        b"caf\xc3\xa9 \xe9t\xe9 " + tok.encode(),
        extra_headers=[b"X-Latin1: \xfc\xf6\xe4\xdf", b"X-Raw: \x80\x81\xfe\xff"],
        body=b"Body with 8-bit: \xc3\xa4\xc3\xb6 \xe4\xf6\r\n")
    with SMTPConn(mx.address()) as c:
        c.ehlo()
        expect(c.transaction(content, mail_params=params), 250, "2.0.0", what="8-bit headers")
    found = find_token(mx, ALICE, tok)
    assert len(found) == 1
    assert strip_trace(found[0][1]) == content, "8-bit header bytes were not stored as sent"
    assert_healthy(mx)


def test_nul_bytes_in_content_stored_as_sent(mx):
    tok = token()
    content = make_message(f"nul content {tok}", extra_headers=[b"X-Nul: a\x00b"],
                           body=b"line with \x00 NUL\r\n\x00\r\n")
    with SMTPConn(mx.address()) as c:
        c.ehlo()
        expect(c.transaction(content), 250, "2.0.0")
    found = find_token(mx, ALICE, tok)
    assert len(found) == 1 and strip_trace(found[0][1]) == content
    assert_healthy(mx)


# ---------------------------------------------------------------------------
# Truncated and over-size data
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["fin-mid-data", "rst-mid-data", "fin-after-crlf-dot"])
def test_truncated_data_stores_nothing(mx, mode):
    tok = token()
    content = make_message(f"truncated {tok}", size=60000)
    before = len(mx.messages(ALICE))
    c = SMTPConn(mx.address())
    c.ehlo()
    expect(c.cmd(MAIL_OK), 250)
    expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
    expect(c.cmd("DATA"), 354)
    if mode == "fin-after-crlf-dot":
        # the whole message and "<CR><LF>." but not the final <CR><LF>
        c.send(dot_stuff(content)[:-2])
    else:
        c.send(dot_stuff(content)[:40000])
    time.sleep(0.3)
    if mode == "rst-mid-data":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    # give the engine time to notice the close (and to store wrongly, if it would)
    time.sleep(1.0)
    assert engine_alive(mx), mx.log()
    assert find_token(mx, ALICE, tok) == [], "a message cut off before <CRLF>.<CRLF> was stored"
    assert len(mx.messages(ALICE)) == before
    assert wait_until(lambda: store_tmp_files(mx) == [], 5), \
        f"store/tmp keeps leftovers of the aborted delivery: {store_tmp_files(mx)}"
    assert_healthy(mx)


def test_oversize_data_without_size_rejected_and_session_continues(mx):
    big_tok, ok_tok = token(), token()
    big = make_message(f"oversize {big_tok}", size=150000)
    small = make_message(f"after oversize {ok_tok}")
    with SMTPConn(mx.address(), timeout=20) as c:
        c.ehlo()
        expect(c.cmd(MAIL_OK), 250, what="MAIL without SIZE")
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        final = c.data(big)
        expect(final, 552, "5.3.4", what="150,000 bytes of data with maxMessageBytes=100000")
        final = c.transaction(small)
        expect(final, 250, "2.0.0", what="transaction after the over-size one")
        expect(c.cmd("QUIT"), 221)
    assert find_token(mx, ALICE, big_tok) == [], "the over-size message was stored"
    assert len(find_token(mx, ALICE, ok_tok)) == 1
    assert store_tmp_files(mx) == []
    assert_healthy(mx)


def test_size_parameter_over_limit_rejected_at_mail(mx):
    tok = token()
    with SMTPConn(mx.address()) as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<sender@remote.test> SIZE=200000"), 552, "5.3.4", what="SIZE over the limit")
        content = make_message(f"after SIZE {tok}")
        expect(c.transaction(content, mail_params=f"SIZE={len(content)}"), 250, "2.0.0")
    assert len(find_token(mx, ALICE, tok)) == 1
    assert_healthy(mx)


# ---------------------------------------------------------------------------
# SMTP smuggling with bare LF
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r\n.\n", b"\n.\r\n"],
                         ids=["lf-dot-lf", "crlf-dot-lf", "lf-dot-crlf"])
def test_bare_lf_smuggling_is_content(mx, fake_end):
    tok = token()
    smuggled = (b"MAIL FROM:<evil@remote.test>\r\n"
                b"RCPT TO:<bob@example.test>\r\n"
                b"DATA\r\n"
                b"From: <evil@remote.test>\r\n"
                b"Subject: smuggled " + tok.encode() + b"\r\n"
                b"\r\n"
                b"smuggled body\r\n")
    head = make_message(f"smuggle carrier {tok}", body=b"legit body")
    raw_data = head + fake_end + smuggled + b".\r\n"      # the only real <CRLF>.<CRLF> is at the end
    with SMTPConn(mx.address()) as c:
        c.ehlo()
        expect(c.cmd(MAIL_OK), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        expect(c.cmd("DATA"), 354)
        c.send(raw_data)
        expect(c.read(), 250, "2.0.0", what="end of data")
        c.settimeout(3)
        quit_reply = c.cmd("QUIT")
        expect(quit_reply, 221, what="QUIT right after the single end of data (replies out of step?)")
    time.sleep(0.3)
    alice = find_token(mx, ALICE, tok)
    bob = find_token(mx, BOB, tok)
    assert bob == [], "the smuggled message was delivered to bob"
    assert len(alice) == 1, f"expected one message for alice, found {len(alice)}"
    stored = strip_trace(alice[0][1])
    assert b"MAIL FROM:<evil@remote.test>" in stored, "smuggled commands are not part of the content"
    assert b"RCPT TO:<bob@example.test>" in stored
    assert b"smuggled " + tok.encode() in stored
    assert stored.endswith(b"smuggled body\r\n"), "content after the bare-LF dot is missing"
    assert b"\n" not in stored.replace(b"\r\n", b""), "stored message has bare LF line endings"
    assert_healthy(mx)


# ---------------------------------------------------------------------------
# Slow and idle clients
# ---------------------------------------------------------------------------
def test_slow_drip_is_not_idle_but_silence_times_out(mx):
    t_start = time.monotonic()
    results = {}

    def idle_client():
        try:
            with SMTPConn(mx.address(), timeout=12) as c:
                results["idle_greeting"] = c.greeting
                t0 = time.monotonic()
                r = c.read()
                results["idle_elapsed"] = time.monotonic() - t0
                results["idle_reply"] = r
                results["idle_closed"] = r.eof or c.wait_closed(3)
        except Exception as e:                         # reported below
            results["idle_error"] = repr(e)

    t = threading.Thread(target=idle_client)
    t.start()
    drip_problem = None
    with SMTPConn(mx.address(), timeout=12) as c:
        expect(c.greeting, 220)
        t0 = time.monotonic()
        try:
            for i, b in enumerate(b"EHLO a\r\n"):
                if i:
                    time.sleep(1.0)
                c.send(bytes([b]))
        except OSError as e:
            c.settimeout(1)
            try:
                got = c.read()
            except OSError:
                got = "nothing"
            drip_problem = (f"slow-drip client cut off after {time.monotonic() - t0:.1f}s while sending a byte "
                            f"every second ({e!r}); the engine sent {got!r}")
        if drip_problem is None:
            r = c.read()
            if not r.is_(250):
                drip_problem = f"EHLO dripped one byte a second (idleTimeoutSeconds=3) got {r!r}"
            else:
                expect(c.cmd("NOOP"), 250, what="NOOP after the slow EHLO")
    t.join(15)
    assert not t.is_alive()
    print(f"idle client: {results}")
    assert "idle_error" not in results, f"idle client: {results['idle_error']}"
    expect(results["idle_greeting"], 220, what="idle client's greeting")
    r = results["idle_reply"]
    expect(r, 421, "4.4.2", what="fully idle client")
    assert 2.5 <= results["idle_elapsed"] <= 8.0, f"idle timeout after {results['idle_elapsed']:.1f}s (limit 3s)"
    assert results["idle_closed"], "connection not closed after 421 4.4.2"
    assert drip_problem is None, drip_problem
    assert time.monotonic() - t_start < 15
    assert_healthy(mx)


# ---------------------------------------------------------------------------
# Session limits
# ---------------------------------------------------------------------------
def test_too_many_commands(mx):
    with SMTPConn(mx.address()) as c:
        c.ehlo()                                       # command 1
        for i in range(2, 51):                         # commands 2..50
            expect(c.cmd("NOOP"), 250, what=f"command {i} of 50")
        r = c.cmd("NOOP")                              # command 51
        expect(r, 421, "4.7.0", contains="too many commands", what="command 51 (maxCommandsPerSession=50)")
        assert r.eof or c.wait_closed(3), "connection not closed after 421"
    assert_healthy(mx)


def test_too_many_errors(mx):
    errors = [(b"BOGUS1", 500), (b"MAIL FROM:nobrackets@remote.test", 501), (b"BOGUS2", 500),
              (b"EHLO", 501), (b"XYZ", 500)]
    with SMTPConn(mx.address()) as c:
        c.ehlo()
        for line, code in errors:
            expect(c.cmd(line), code, what=f"error {line!r}")
        c.settimeout(5)
        r = c.cmd(b"BOGUS3")                           # error 6 > maxErrorsPerSession=5
        if r.code == 500:                              # the error reply may precede the 421
            r = c.read()
        expect(r, 421, "4.7.0", contains="too many errors", what="sixth error (maxErrorsPerSession=5)")
        assert r.eof or c.wait_closed(3), "connection not closed after 421"
    assert_healthy(mx)


# ---------------------------------------------------------------------------
# Many connections
# ---------------------------------------------------------------------------
async def _aread_reply(reader):
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            return lines, True
        lines.append(line.rstrip(b"\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return lines, False


def _code(lines):
    try:
        return int(lines[0][:3])
    except (IndexError, ValueError):
        return None


async def _load(host, port, n, n_tx, tok):
    sem = asyncio.Semaphore(100)
    conns = [None] * n
    problems = []

    async def opener(i):
        async with sem:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
            lines, _ = await asyncio.wait_for(_aread_reply(r), 30)
            conns[i] = (r, w)
            return lines

    greetings = await asyncio.gather(*(opener(i) for i in range(n)), return_exceptions=True)
    for i, g in enumerate(greetings):
        if isinstance(g, BaseException) or _code(g) != 220:
            problems.append(f"conn {i} greeting: {g!r}")
    if problems:
        return problems, 0

    async def ehlo(i):
        r, w = conns[i]
        w.write(b"EHLO c%d.remote.test\r\n" % i)
        await w.drain()
        lines, _ = await asyncio.wait_for(_aread_reply(r), 60)
        return lines

    ehlos = await asyncio.gather(*(ehlo(i) for i in range(n)), return_exceptions=True)
    for i, e in enumerate(ehlos):
        if isinstance(e, BaseException) or _code(e) != 250:
            problems.append(f"conn {i} EHLO: {e!r}")
    if problems:
        return problems, 0

    async def tx(i):
        r, w = conns[i]

        async def step(line, want):
            w.write(line)
            await w.drain()
            lines, _ = await asyncio.wait_for(_aread_reply(r), 60)
            if _code(lines) != want:
                raise AssertionError(f"{line[:30]!r} -> {lines!r}")
        await step(b"MAIL FROM:<sender@remote.test>\r\n", 250)
        await step(b"RCPT TO:<alice@example.test>\r\n", 250)
        await step(b"DATA\r\n", 354)
        await step(dot_stuff(make_message(f"load {tok} #{i}", size=2000)), 250)
        return True

    step = n // n_tx
    results = await asyncio.gather(*(tx(i * step) for i in range(n_tx)), return_exceptions=True)
    done = sum(1 for x in results if x is True)
    for x in results:
        if x is not True:
            problems.append(f"transaction: {x!r}")

    async def quit_(i):
        r, w = conns[i]
        try:
            w.write(b"QUIT\r\n")
            await w.drain()
            await asyncio.wait_for(_aread_reply(r), 30)
        finally:
            w.close()

    await asyncio.gather(*(quit_(i) for i in range(n)), return_exceptions=True)
    return problems, done


def test_1000_concurrent_connections(make_cell):
    soft, hard = raise_nofile()
    assert soft >= 2100, f"RLIMIT_NOFILE too low for 1000 connections: {soft}/{hard}"
    cell = make_cell(lambda cfg: cfg.setdefault("limits", {}).update(
        {"maxConnections": 2000, "maxConnectionsPerIP": 2000}))
    host, port = cell.address()
    tok = token()
    sampler = RSSSampler(cell)
    sampler.start()
    t0 = time.monotonic()
    try:
        problems, done = asyncio.run(_load(host, port, 1000, 100, tok))
    finally:
        sampler.stop()
    elapsed = time.monotonic() - t0
    peak = sampler.peak_kib
    print(f"\n1000 connections: {elapsed:.1f}s, engine peak RSS {peak} KiB "
          f"({(peak or 0) / 1024:.1f} MiB) over {len(sampler.samples)} samples")
    assert engine_alive(cell), f"engine died under load:\n{cell.log()}"
    assert problems == [], f"{len(problems)} problems, first: {problems[:5]}"
    assert done == 100
    assert peak is not None and peak < 256 * 1024, f"engine RSS {peak} KiB >= 256 MiB"
    stored = [raw for _, raw in fetch_all(cell, ALICE) if f"load {tok} #".encode() in raw]
    assert len(stored) == 100, f"{len(stored)} of 100 load messages stored"
    assert_healthy(cell)


def _open_n(addr, n):
    conns = []
    for i in range(n):
        c = SMTPConn(addr, timeout=10)
        expect(c.greeting, 220, what=f"connection {i + 1} of {n}")
        conns.append(c)
    return conns


@pytest.mark.parametrize("which", ["maxConnections", "maxConnectionsPerIP"])
def test_connection_limit(make_cell, which):
    raise_nofile()
    lim = {"maxConnections": 2000, "maxConnectionsPerIP": 2000}
    lim[which] = 50 if which == "maxConnections" else 10
    n = lim[which]
    cell = make_cell(lambda cfg: cfg.setdefault("limits", {}).update(lim))
    conns = _open_n(cell.address(), n)
    try:
        extra = SMTPConn(cell.address(), timeout=10)
        try:
            expect(extra.greeting, 421, "4.7.0", contains="too many connections",
                   what=f"connection {n + 1} with {which}={n}")
            assert extra.greeting.eof or extra.wait_closed(3), "over-limit connection not closed"
        finally:
            extra.close()
        # the others are unaffected
        for c in conns[:3]:
            expect(c.cmd("NOOP"), 250, what="NOOP on an accepted connection")
        # a freed slot is reusable
        conns.pop().close()

        def try_again():
            c = SMTPConn(cell.address(), timeout=10)
            if c.greeting.code == 220:
                return c
            c.close()
            time.sleep(0.1)
            return None
        again = wait_until(try_again, 5, 0.05)
        assert again, "no connection accepted after one was closed"
        conns.append(again)
    finally:
        for c in conns:
            c.close()
    time.sleep(0.3)
    assert_healthy(cell)
