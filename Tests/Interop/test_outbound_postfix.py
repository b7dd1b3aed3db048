"""The outbound queue against a real Postfix, through a real DNS server.

One Knot DNS (helpers_postfix.LoopbackDNS) serves the test zones on
loopback: the engine asks it on 127.0.0.1:PORT (`dns.servers`), Postfix's
libc resolver on 127.53.x.y:53 (Postfix runs in a mount namespace of its own
whose /etc/resolv.conf names only that address). One private Postfix
(helpers_postfix.Postfix) is the MX of remote.test, fallback.test and
implicit.test: smtpd on 127.0.0.1 (STARTTLS offered with a self-signed
certificate; a second port without STARTTLS; a third, the "submission"
port, requiring STARTTLS and AUTH through a private Dovecot's auth socket
with a certificate from a test CA), virtual Maildir delivery under a
temporary directory, refusals scripted with a texthash access map. The
engine's `outbound.port` points at Postfix's port for every MX host.

  remote.test.    MX 10 mx.remote.test.     mx, relay A 127.0.0.1
                  TXT "v=spf1 ..."          TLSA (bogus, unsigned zone: ignored)
  fallback.test.  MX 10 mx1 (127.0.0.9, nothing listens), MX 20 mx2 (127.0.0.1)
  nullmx.test.    MX 0 .  and an A record on a listener counting connections
  implicit.test.  A 127.0.0.1, no MX (the implicit MX, RFC 5321 §5.1)
  example.test.   MX 10 mx.example.test.    mx A 127.2.x.y (the engine's MX
                  listener when Postfix delivers to the cell)

Contract: docs/CELL-CONFIG.md (`dns`, `outbound`), docs/DATA-DIR.md (queue
files), RFC 5321 §4.5.2 (dot-stuffing), §5.1 (MX), RFC 7505 (null MX),
RFC 3464 (DSN), RFC 3207 (STARTTLS), RFC 4954 (AUTH).
"""
import json
import re
import time
import uuid

import pytest

from conftest import USERS
from helpers_tls_peers import HTTPSFile
from helpers_clients import RawSMTP
from helpers_dovecot import Dovecot
from helpers_postfix import (
    HOST, CountingListener, LoopbackDNS, Postfix, body_of, dsns, engine_log_lines, flush, free_port, header_block,
    issue, lf, loopback_address, make_ca, outbound_lines, queue_state, require_tools, self_signed, spool_ids,
    submit, wait_dsns, wait_inbox, wait_outbound, wait_queue_empty, zone,
)

ALICE = "alice@example.test"
BOB = "bob@example.test"
RELAY_USER = "cellrelay@remote.test"
RELAY_PASSWORD = "relay-secret-" + uuid.uuid4().hex[:8]

# Access map of the MX port: scripted refusals (check_recipient_access).
ACCESS = {
    "later@remote.test": "450 4.2.0 try later",
    "busy@remote.test": "450 4.2.0 try later",
    "nouser@remote.test": "550 5.1.1 no such user",
    "nobody@remote.test": "550 5.1.1 no such user",
    "gone@remote.test": "550 5.1.1 no such user",
    "bouncer@remote.test": "550 5.1.1 no such user",
}
MAILBOXES = [f"{u}@remote.test" for u in (
    "t1a", "t1b", "tls", "plain", "later", "okay3", "nouser", "okay4", "nobody", "gone", "bouncer", "friend",
    "wrongpw", "untrusted", "carol")] + ["fb@fallback.test", "imp@implicit.test", "sts1@sts.test", "sts2@sts.test"]


class World:
    pass


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    require_tools("dovecot")
    tmp = tmp_path_factory.mktemp("outbound-postfix")
    w = World()
    w.engine_addr = loopback_address(2)     # the engine's MX listener in the Postfix → engine test
    w.trap_addr = loopback_address(77)      # the null-MX domain's A record (counts connections)
    w.dead_addr = "127.0.0.9"               # MX 10 of fallback.test: nothing listens there
    certs = tmp / "certs"
    w.mx_cert = self_signed(certs, "mx.remote.test")
    w.ca = make_ca(certs / "ca", "Postcell Test CA")
    w.other_ca = make_ca(certs / "other", "Some Other CA")
    w.relay_cert = issue(certs / "ca", w.ca, names=["relay.remote.test"], ips=["127.0.0.1"])
    # Postfix's port is chosen now so the zone can name the TLSA owner.
    port = free_port(HOST)
    zones = {
        "remote.test.": zone("remote.test", [
            "@ MX 10 mx", f"mx A {HOST}", f"relay A {HOST}",
            '@ TXT "v=spf1 ip4:127.0.0.0/8 -all"',
            # DANE records in an unsigned zone must be ignored (RFC 7672 §2.2).
            f"_{port}._tcp.mx TLSA 3 1 1 {'00' * 32}", f"_25._tcp.mx TLSA 3 1 1 {'00' * 32}",
        ]),
        # MTA-STS (RFC 8461) for a domain served by the same Postfix.
        "sts.test.": zone("sts.test", [f"@ MX 10 mx.remote.test.", f"mta-sts A {HOST}", '_mta-sts TXT "v=STSv1; id=1"']),
        "fallback.test.": zone("fallback.test", ["@ MX 10 mx1", "@ MX 20 mx2", f"mx1 A {w.dead_addr}", f"mx2 A {HOST}"]),
        "nullmx.test.": zone("nullmx.test", ["@ MX 0 .", f"@ A {w.trap_addr}"]),
        "implicit.test.": zone("implicit.test", [f"@ A {HOST}"]),
        "example.test.": zone("example.test", ["@ MX 10 mx", f"mx A {w.engine_addr}",
                                               '@ TXT "v=spf1 ip4:127.0.0.0/8 -all"']),
    }
    w.dns = LoopbackDNS(tmp / "knot", zones)
    sts_cert = issue(certs / "ca", w.ca, names=["mta-sts.sts.test"])
    w.sts = HTTPSFile(sts_cert[0], sts_cert[1], "/.well-known/mta-sts.txt", "")
    w.dovecot = None
    w.pf = None
    try:
        w.dovecot = Dovecot({RELAY_USER: RELAY_PASSWORD},
                            extra="auth_failure_delay = 0\nservice auth {\n  unix_listener auth-postfix {\n    mode = 0666\n  }\n}\n")
        w.dovecot.start()
        sasl = w.dovecot.base_dir / "auth-postfix"
        w.pf = Postfix(MAILBOXES, w.dns, access=ACCESS, cert=w.mx_cert[0], key=w.mx_cert[1], port=port,
                       submission=(w.relay_cert[0], w.relay_cert[1], sasl), plain=True)
        w.pf.start()
        yield w
    finally:
        if w.pf:
            w.pf.cleanup()
        if w.dovecot:
            w.dovecot.cleanup()
        w.dns.stop()
        w.sts.close()


def engine_config(world, outbound=None, port=None, **extra):
    """A mutate() for make_cell: the Knot as resolver, delivery on."""
    def mutate(cfg):
        cfg["dns"] = {"servers": [world.dns.server], "timeoutMs": 1000, "attempts": 2}
        o = {"hold": False, "port": port or world.pf.port, "retryBaseSeconds": 300, "retryMaxSeconds": 600,
             "connectTimeoutMs": 3000, "commandTimeoutMs": 20000}
        o.update(outbound or {})
        cfg["outbound"] = o
        cfg.update(extra)
    return mutate


def message(subject, to, body=b"Hello.\r\n", extra=()):
    token = uuid.uuid4().hex[:12]
    headers = [("From", f"Alice <{ALICE}>"), ("To", ", ".join(to)), ("Subject", f"{subject} {token}"),
               ("Date", "Tue, 01 Oct 2024 10:00:00 +0000"), ("Message-ID", f"<{token}@example.test>"),
               *extra]
    head = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers)
    return head + b"\r\n" + body, token


def send_as_alice(cell, rcpts, msg):
    return submit(cell, ALICE, USERS[ALICE], rcpts, msg)


def postfix_queue_id(pf, token):
    """Postfix's queue id for the message whose Message-ID holds `token`."""
    lines = pf.wait_log(rf"cleanup\[\d+\]: \w+: message-id=<{token}@")
    return re.search(r"cleanup\[\d+\]: (\w+): message-id", lines[-1]).group(1)


def assert_headers_kept(delivered, sent):
    """Every header line we sent is in the delivered header, in order."""
    got = lf(header_block(delivered)).split(b"\n")
    want = lf(header_block(sent)).split(b"\n")
    pos = 0
    for line in want:
        assert line in got[pos:], f"header line {line!r} missing or out of order in:\n{lf(header_block(delivered)).decode(errors='replace')}"
        pos = got.index(line, pos) + 1


# --------------------------------------------------------------------------
# 1. Engine → Postfix: intact, two recipients, one transaction, queue empty
# --------------------------------------------------------------------------
def test_delivers_to_postfix_intact(world, make_cell):
    pf = world.pf
    cell = make_cell(engine_config(world))
    rcpts = ["t1a@remote.test", "t1b@remote.test"]
    body = ("Hello Postfix.\r\n"
            ".a line starting with a dot\r\n"
            "..two dots\r\n"
            ".\r\n"
            " .\r\n"
            "Grüße aus Zürich – 8-bit: ÄÖÜ ß € 日本語\r\n"
            "From the start of a line\r\n"
            "last line\r\n").encode("utf-8")
    small, t_small = message("interop small", rcpts, body,
                             extra=[("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8"),
                                    ("Content-Transfer-Encoding", "8bit")])
    big_body = b"".join(f"{i:07d} ".encode() + b"x" * 68 + b"\r\n" + (b".dot line\r\n" if i % 1000 == 0 else b"")
                        for i in range(13200))
    big, t_big = message("interop 1MB", rcpts, big_body)
    assert len(big) > 1_000_000
    send_as_alice(cell, rcpts, small)
    send_as_alice(cell, rcpts, big)

    for r in rcpts:
        msgs = pf.wait_messages(r, 2)
        assert len(msgs) == 2, f"{r}: {len(msgs)} messages"
        by_token = {}
        for m in msgs:
            for t in (t_small, t_big):
                if f"<{t}@example.test>".encode() in header_block(m):
                    by_token.setdefault(t, []).append(m)
        assert sorted(by_token) == sorted([t_small, t_big]), f"{r}: got {list(by_token)}"
        for t, sent in ((t_small, small), (t_big, big)):
            (got,) = by_token[t]
            assert lf(body_of(got)) == lf(body_of(sent)), f"{r}: body of {t} changed in transit"
            assert_headers_kept(got, sent)
            head = lf(header_block(got))
            assert re.search(rb"\nReceived: from mx\.example\.test ", head), head[:600]
    # One transaction for both recipients of each message.
    for t in (t_small, t_big):
        qid = postfix_queue_id(pf, t)
        assert pf.log_lines(rf"qmgr\[\d+\]: {qid}: from=<{ALICE}>, size=\d+, nrcpt=2 "), pf.log()
    wait_queue_empty(cell, timeout=10)
    delivered = outbound_lines(cell, result="delivered")
    assert len(delivered) == 4, "\n".join(delivered)
    assert all("mx.remote.test[127.0.0.1]" in ln for ln in delivered), "\n".join(delivered)
    assert not outbound_lines(cell, result="(deferred|failed)")
    assert dsns(cell) == []


# --------------------------------------------------------------------------
# 2. Opportunistic STARTTLS (and delivery in clear when none is offered)
# --------------------------------------------------------------------------
def test_opportunistic_starttls_is_used(world, make_cell):
    pf = world.pf
    cell = make_cell(engine_config(world))
    msg, token = message("tls", ["tls@remote.test"])
    send_as_alice(cell, ["tls@remote.test"], msg)
    (got,) = pf.wait_messages("tls@remote.test", 1)
    head = lf(header_block(got)).decode()
    postfix_received = re.search(r"Received: from mx\.example\.test .*?(?=\n\S)", head, re.S)
    assert postfix_received, head
    text = postfix_received.group(0)
    assert "with ESMTPS" in text and "using TLSv1." in text, f"Postfix's Received shows no TLS: {text}"
    qid = postfix_queue_id(pf, token)
    assert pf.log_lines(r"smtpd\[\d+\]: Anonymous TLS connection established from"), pf.log()
    assert pf.log_lines(rf"qmgr\[\d+\]: {qid}: from=<{ALICE}>")
    wait_queue_empty(cell, timeout=10)


def test_delivers_in_clear_when_starttls_not_offered(world, make_cell):
    pf = world.pf
    cell = make_cell(engine_config(world, port=pf.plain_port))
    msg, _ = message("plain", ["plain@remote.test"])
    send_as_alice(cell, ["plain@remote.test"], msg)
    (got,) = pf.wait_messages("plain@remote.test", 1)
    head = lf(header_block(got)).decode()
    received = re.search(r"Received: from mx\.example\.test .*?(?=\n\S)", head, re.S)
    assert received, head
    assert "with ESMTP id" in received.group(0), received.group(0)
    wait_queue_empty(cell, timeout=10)


# --------------------------------------------------------------------------
# 3. 450 is retried; the recipient that was delivered is not sent again
# --------------------------------------------------------------------------
def test_temporary_refusal_is_retried(world, make_cell):
    pf = world.pf
    cell = make_cell(engine_config(world))
    rcpts = ["later@remote.test", "okay3@remote.test"]
    msg, token = message("retry", rcpts)
    send_as_alice(cell, rcpts, msg)
    try:
        wait_outbound(cell, "later@remote.test", "deferred")
        wait_outbound(cell, "okay3@remote.test", "delivered")
        (qid,) = spool_ids(cell)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            st = queue_state(cell, qid)
            if st and st.get("attempts") == 1:
                break
            time.sleep(0.05)
        st = queue_state(cell, qid)
        assert st is not None, f"no state file for {qid}"
        by = {r["address"]: r for r in st["recipients"]}
        assert by["later@remote.test"]["status"] == "pending", st
        assert "450" in (by["later@remote.test"].get("lastReply") or ""), st
        assert by["okay3@remote.test"]["status"] == "delivered", st
        assert st["attempts"] == 1, st
        assert st["nextAttempt"] >= time.time() + 200, f"retry due too soon (retryBaseSeconds 300): {st}"
        assert [e for e in cell.queued()], "queue list shows nothing while a recipient is pending"
        assert len(pf.messages("okay3@remote.test")) == 1
        assert pf.messages("later@remote.test") == []

        pf.set_access({k: v for k, v in ACCESS.items() if k != "later@remote.test"})
        flush(cell)
        wait_outbound(cell, "later@remote.test", "delivered")
        pf.wait_messages("later@remote.test", 1)
        wait_queue_empty(cell, timeout=10)
        time.sleep(0.5)
        assert len(pf.messages("okay3@remote.test")) == 1, "okay3 got the message twice"
        assert len(outbound_lines(cell, to="okay3@remote.test")) == 1, outbound_lines(cell)
        assert len(pf.messages("later@remote.test")) == 1
        assert dsns(cell) == [], "a DSN for a message that was delivered in the end"
    finally:
        pf.set_access(ACCESS)


# --------------------------------------------------------------------------
# 4. 550 bounces: a DSN (RFC 3464) to the sender; the other one delivered
# --------------------------------------------------------------------------
def test_permanent_refusal_bounces_with_dsn(world, make_cell):
    pf = world.pf
    cell = make_cell(engine_config(world))
    rcpts = ["nouser@remote.test", "okay4@remote.test"]
    msg, token = message("bounce me", rcpts)
    subject = re.search(rb"Subject: ([^\r\n]+)", msg).group(1).decode()
    send_as_alice(cell, rcpts, msg)
    (dsn,) = wait_dsns(cell, 1)
    pf.wait_messages("okay4@remote.test", 1)

    top = dsn.msg
    assert "MAILER-DAEMON@" in (top["From"] or ""), top["From"]
    assert ALICE in (top["To"] or ""), top["To"]
    assert (dsn.per_message.get("Reporting-MTA") or "").strip() == "dns; mx.example.test", dsn.per_message.items()
    assert len(dsn.recipients) == 1, [r.items() for r in dsn.recipients]
    r = dsn.recipient("nouser@remote.test")
    assert r["Action"].strip() == "failed"
    assert r["Status"].strip() == "5.1.1"
    assert r["Final-Recipient"].strip() == "rfc822; nouser@remote.test"
    diag = re.sub(r"\s+", " ", r["Diagnostic-Code"]).strip()
    assert diag.startswith("smtp; 550 5.1.1 "), diag
    assert "no such user" in diag, diag
    remote = (r["Remote-MTA"] or "").strip()
    assert remote.startswith("dns; mx.remote.test"), remote
    assert dsn.original_headers is not None, dsn.types
    assert dsn.types[-1] == "text/rfc822-headers", dsn.types
    assert dsn.original_headers["Subject"] == subject
    assert dsn.original_headers["Message-ID"] == f"<{token}@example.test>"
    assert b"Hello." not in dsn.raw.split(b"text/rfc822-headers", 1)[1], "the DSN carries the body"

    assert pf.messages("nouser@remote.test") == []
    assert len(pf.messages("okay4@remote.test")) == 1
    wait_queue_empty(cell, timeout=10)
    assert len(outbound_lines(cell, to="nouser@remote.test", result="failed")) == 1


# --------------------------------------------------------------------------
# 5. The null sender is never bounced (no DSN of a DSN)
# --------------------------------------------------------------------------
def _mx_transaction(cell, mail_from, rcpt, msg):
    with RawSMTP(*cell.address("mx"), timeout=20) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo("mx.remote.test")
        r = c.cmd(f"MAIL FROM:<{mail_from}>")
        assert r.code == 250, r
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        assert r.code == 250, r
        r = c.data(msg)
        assert r.code == 250, r
        c.quit()


def _snapshot(world, cell):
    return ({u: len(cell.messages(u)) for u in (ALICE, BOB)},
            {m: len(world.pf.messages(m)) for m in MAILBOXES})


def test_null_sender_is_never_bounced(world, make_cell):
    pf = world.pf
    cell = make_cell(engine_config(world, aliases={"fwd@example.test": ["nobody@remote.test"],
                                                   "fwd2@example.test": ["gone@remote.test"]}))
    before = _snapshot(world, cell)

    # a) A report (null sender) forwarded to a remote address that refuses it.
    report, _ = message("a report", ["fwd@example.test"], extra=[("Auto-Submitted", "auto-replied")])
    _mx_transaction(cell, "", "fwd@example.test", report)
    wait_outbound(cell, "nobody@remote.test", "failed")
    # b) A bounce of a bounce: mail from bouncer@remote.test to an alias whose
    #    target refuses it; the DSN goes (from <>) to bouncer@remote.test,
    #    which refuses it too: that must be the end of it.
    msg, _ = message("to a dead alias", ["fwd2@example.test"])
    _mx_transaction(cell, "bouncer@remote.test", "fwd2@example.test", msg)
    wait_outbound(cell, "gone@remote.test", "failed")
    wait_outbound(cell, "bouncer@remote.test", "failed")
    rejected = pf.wait_log(r"reject: RCPT from .*<bouncer@remote\.test>.*from=<> ")
    assert rejected, "the DSN was not sent from the null sender"
    pf.wait_log(r"reject: RCPT from .*<nobody@remote\.test>.*from=<> ")

    wait_queue_empty(cell, timeout=10)
    time.sleep(1.5)
    flush(cell)
    time.sleep(1.0)
    assert spool_ids(cell) == [] and cell.queued() == []
    assert _snapshot(world, cell) == before, "a message appeared somewhere after the failures"
    lines = outbound_lines(cell)
    assert len(lines) == 3, "expected exactly nobody, gone and bouncer:\n" + "\n".join(lines)
    assert engine_log_lines(cell, r"cannot queue DSN") == []


# --------------------------------------------------------------------------
# 6. MX fallback, null MX, NXDOMAIN, implicit MX
# --------------------------------------------------------------------------
def test_mx_fallback_to_second_preference(world, make_cell):
    pf = world.pf
    cell = make_cell(engine_config(world))
    msg, _ = message("fallback", ["fb@fallback.test"])
    send_as_alice(cell, ["fb@fallback.test"], msg)
    pf.wait_messages("fb@fallback.test", 1)
    wait_queue_empty(cell, timeout=10)
    (line,) = outbound_lines(cell, to="fb@fallback.test")
    assert "result=delivered" in line and "mx2.fallback.test[127.0.0.1]" in line, line
    assert dsns(cell) == []


def test_null_mx_bounces_without_connecting(world, make_cell):
    with CountingListener(world.trap_addr, world.pf.port) as trap:
        cell = make_cell(engine_config(world))
        msg, token = message("null mx", ["x@nullmx.test"])
        t0 = time.monotonic()
        send_as_alice(cell, ["x@nullmx.test"], msg)
        (dsn,) = wait_dsns(cell, 1, timeout=10)
        assert time.monotonic() - t0 < 8, "the null-MX DSN was not immediate"
        r = dsn.recipient("x@nullmx.test")
        assert r["Action"].strip() == "failed"
        assert r["Status"].strip() == "5.1.10", r.items()
        assert dsn.original_headers["Message-ID"] == f"<{token}@example.test>"
        wait_queue_empty(cell, timeout=5)
        time.sleep(0.5)
        assert trap.accepted == 0, "the engine connected to the A record of a null-MX domain"


def test_nxdomain_bounces(world, make_cell):
    cell = make_cell(engine_config(world))
    msg, _ = message("nxdomain", ["x@nosuch.remote.test"])
    send_as_alice(cell, ["x@nosuch.remote.test"], msg)
    (dsn,) = wait_dsns(cell, 1, timeout=10)
    r = dsn.recipient("x@nosuch.remote.test")
    assert r["Action"].strip() == "failed"
    assert r["Status"].strip() == "5.1.2", r.items()
    wait_queue_empty(cell, timeout=5)


def test_implicit_mx_delivers_to_a_record(world, make_cell):
    pf = world.pf
    cell = make_cell(engine_config(world))
    msg, _ = message("implicit", ["imp@implicit.test"])
    send_as_alice(cell, ["imp@implicit.test"], msg)
    pf.wait_messages("imp@implicit.test", 1)
    wait_queue_empty(cell, timeout=10)
    (line,) = outbound_lines(cell, to="imp@implicit.test")
    assert "result=delivered" in line and "implicit.test[127.0.0.1]" in line, line


# --------------------------------------------------------------------------
# 7. Postfix → engine, by MX lookup through Knot
# --------------------------------------------------------------------------
def test_postfix_delivers_to_engine_by_mx(world, make_cell):
    pf = world.pf

    def mutate(cfg):
        engine_config(world)(cfg)
        cfg["outbound"]["hold"] = True
        for lst in cfg["listeners"]:
            if lst["name"] == "mx":
                lst["address"] = f"{world.engine_addr}:0"

    cell = make_cell(mutate)
    port = cell.port("mx")
    assert cell.address("mx")[0] == world.engine_addr
    # An MX lookup for example.test (no brackets), then that port.
    pf.set_transports({"example.test": f"smtp:example.test:{port}"})
    try:
        msg, token = message("from postfix", [ALICE], body=b"Hello from Postfix.\r\n.dot line\r\n")
        msg = msg.replace(f"From: Alice <{ALICE}>".encode(), b"From: Carol <carol@remote.test>")
        pf.inject("carol@remote.test", [ALICE], msg)
        ((uid, got),) = wait_inbox(cell, ALICE, 1, timeout=20)
        assert lf(body_of(got)) == lf(body_of(msg))
        assert f"<{token}@example.test>".encode() in header_block(got)
        assert re.search(rb"Received: from mx\.remote\.test \(", got), header_block(got)[:800]
        qid = postfix_queue_id(pf, token)
        sent = pf.wait_log(rf"smtp\[\d+\]: {qid}: to=<{ALICE}>, relay=mx\.example\.test\[{re.escape(world.engine_addr)}\]:{port},.*status=sent")
        assert sent
    finally:
        pf.set_transports({})


# --------------------------------------------------------------------------
# 8. Relay (smarthost) with STARTTLS, a verified certificate and AUTH
# --------------------------------------------------------------------------
def relay_cell(world, make_cell, password, roots):
    def mutate(cfg):
        engine_config(world, outbound={
            "trustRoots": str(roots),
            "relay": {"host": "relay.remote.test", "port": world.pf.submission_port, "tls": "starttls",
                      "username": RELAY_USER, "passwordFile": "relay.pass", "verifyCertificate": True},
        })(cfg)
    cell = make_cell(mutate, start=False)
    (cell.dir / "relay.pass").write_text(password + "\n")
    return cell.start()


def test_relay_with_auth(world, make_cell):
    pf = world.pf
    cell = relay_cell(world, make_cell, RELAY_PASSWORD, world.ca[0])
    msg, token = message("via relay", ["friend@remote.test"])
    send_as_alice(cell, ["friend@remote.test"], msg)
    (got,) = pf.wait_messages("friend@remote.test", 1)
    assert lf(body_of(got)) == lf(body_of(msg))
    head = lf(header_block(got)).decode()
    assert re.search(r"Received: from mx\.example\.test .*?with ESMTPSA", head, re.S), head
    qid = postfix_queue_id(pf, token)
    assert pf.log_lines(rf"submission/smtpd\[\d+\]: {qid}: client=.*sasl_method=PLAIN, sasl_username={re.escape(RELAY_USER)}"), pf.log()
    wait_queue_empty(cell, timeout=10)
    (line,) = outbound_lines(cell, to="friend@remote.test")
    assert "result=delivered" in line and "relay.remote.test" in line, line


def test_relay_wrong_password_keeps_mail_queued(world, make_cell):
    pf = world.pf
    cell = relay_cell(world, make_cell, "not-the-password", world.ca[0])
    msg, _ = message("wrong password", ["wrongpw@remote.test"])
    send_as_alice(cell, ["wrongpw@remote.test"], msg)
    wait_outbound(cell, "wrongpw@remote.test", "deferred")
    pf.wait_log(r"submission/smtpd\[\d+\]: warning: .*SASL PLAIN authentication failed")
    flush(cell)
    wait_outbound(cell, "wrongpw@remote.test", "deferred", count=2)
    time.sleep(0.5)
    assert outbound_lines(cell, result="failed") == []
    assert dsns(cell) == [], "a wrong relay password bounced the mail"
    (qid,) = spool_ids(cell)
    st = queue_state(cell, qid)
    assert st and st["recipients"][0]["status"] == "pending", st
    assert len(cell.queued()) == 1
    assert pf.messages("wrongpw@remote.test") == []


def test_relay_untrusted_certificate_keeps_mail_queued(world, make_cell):
    pf = world.pf
    logins = len(pf.log_lines(r"sasl_username="))
    cell = relay_cell(world, make_cell, RELAY_PASSWORD, world.other_ca[0])
    msg, _ = message("untrusted relay", ["untrusted@remote.test"])
    send_as_alice(cell, ["untrusted@remote.test"], msg)
    wait_outbound(cell, "untrusted@remote.test", "deferred")
    time.sleep(0.5)
    assert dsns(cell) == []
    assert len(cell.queued()) == 1
    assert pf.messages("untrusted@remote.test") == []
    # The password never reached a server whose certificate did not verify.
    # (Postfix logs sasl_username= for every AUTH, accepted or not.)
    assert len(pf.log_lines(r"sasl_username=")) == logins
    assert pf.log_lines(r"submission/smtpd\[\d+\]: .*(unknown ca|certificate unknown|bad certificate)"), pf.log()


# 9. MTA-STS: Postfix's certificate is self-signed, so under an `enforce`
#    policy delivery must stop; under `testing` it goes on with STARTTLS.

def sts_cell(world, make_cell, mode):
    world.sts.body = f"version: STSv1\r\nmode: {mode}\r\nmx: mx.remote.test\r\nmax_age: 86400\r\n"
    return make_cell(engine_config(world, outbound={"mtaSTSPort": world.sts.port, "trustRoots": str(world.ca[0])}))


def test_mta_sts_enforce_with_a_bad_certificate_blocks_delivery(world, make_cell):
    cell = sts_cell(world, make_cell, "enforce")
    msg, token = message("sts-enforce", ["sts1@sts.test"])
    send_as_alice(cell, ["sts1@sts.test"], msg)
    deadline = time.time() + 15
    while time.time() < deadline and not outbound_lines(cell, to="sts1@sts.test"):
        time.sleep(0.1)
    (line,) = outbound_lines(cell, to="sts1@sts.test")
    assert "result=deferred" in line and "4.7.5" in line, line
    time.sleep(0.5)
    assert not world.pf.log_lines(re.escape(token)), "the message reached Postfix"
    assert world.pf.messages("sts1@sts.test") == []
    assert dsns(cell) == []
    rows = [json.loads(l) for p in (cell.dir / "queue" / "tlsrpt").glob("*.jsonl") for l in p.read_text().splitlines()]
    assert any(r["domain"] == "sts.test" and r["policy"] == "sts" and r["result"] != "success" for r in rows), rows


def test_mta_sts_testing_mode_delivers(world, make_cell):
    cell = sts_cell(world, make_cell, "testing")
    msg, _ = message("sts-testing", ["sts2@sts.test"])
    send_as_alice(cell, ["sts2@sts.test"], msg)
    world.pf.wait_messages("sts2@sts.test", 1)
    wait_queue_empty(cell, timeout=10)
