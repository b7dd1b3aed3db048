"""Real SMTP clients against a running engine: smtplib (plain, STARTTLS,
implicit TLS, AUTH PLAIN/LOGIN), raw PIPELINING and BDAT, and swaks.

Contract: docs/SMTP.md, docs/CELL-CONFIG.md, docs/DATA-DIR.md."""
import datetime
import re
import shutil
import smtplib
import subprocess

import pytest

from conftest import USERS, strip_trace
from helpers_clients import (
    HOST, RawSMTP, build_message, fields_named, insecure_tls_context, only_message,
    parse_date_field, queue_recipients, received_header, stored_messages, without_fields,
)

ALICE = "alice@example.test"
BOB = "bob@example.test"
CLIENT_NAME = "secret-laptop.home.internal"   # EHLO name that must not leak on submission


def _msg(subject, extra=(), body=b"Hello.\r\n.a line starting with a dot\r\n..two dots\r\nbye\r\n"):
    headers = [("From", "Sender <sender@remote.test>"), ("To", ALICE), ("Subject", subject), *extra]
    return build_message(headers, body)


def _with_ids(subject, sender="sender@remote.test", to=ALICE):
    return build_message([
        ("From", sender), ("To", to), ("Subject", subject),
        ("Date", "Tue, 01 Oct 2024 10:00:00 +0000"),
        ("Message-ID", "<fixed-id-1234@client.example.org>"),
    ], b"Body text\r\n")


def _assert_submission_received(raw):
    rec = received_header(raw)
    assert b"127.0.0.1" not in rec, rec
    assert CLIENT_NAME.encode() not in rec.lower(), rec
    assert not re.match(rb"(?i)received:\s*from\b", rec), f"submission Received: has a from clause: {rec!r}"
    assert b"mx.example.test" in rec, rec


def _assert_added_ids(stored, sent):
    """Submission added exactly one Message-ID: and one Date:, and apart
    from those (and the trace header) the message is unchanged."""
    body = strip_trace(stored)
    mids = fields_named(body, "Message-ID")
    dates = fields_named(body, "Date")
    assert len(mids) == 1, f"Message-ID fields: {mids!r}"
    assert len(dates) == 1, f"Date fields: {dates!r}"
    assert re.match(rb"(?i)message-id:\s*<[^<>@\s]+@[^<>@\s]+>\s*$", mids[0]), mids[0]
    when = parse_date_field(dates[0])
    assert when.tzinfo is not None
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - when).total_seconds()) < 300, dates[0]
    assert without_fields(body, ["Message-ID", "Date"]) == sent


# ---------------------------------------------------------------- smtplib / MX

def test_smtplib_mx_plain_delivery(cell):
    msg = _msg("plain mx", [("Message-ID", "<mx-1@remote.test>"), ("Date", "Tue, 01 Oct 2024 10:00:00 +0000")])
    with smtplib.SMTP(HOST, cell.port("mx"), local_hostname="client.remote.test", timeout=10) as s:
        code, _ = s.ehlo()
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "chunking", "starttls"):
            assert s.has_extn(ext), f"EHLO on mx lacks {ext}: {s.esmtp_features}"
        assert not s.has_extn("auth"), "mx must not offer AUTH"
        refused = s.sendmail("sender@remote.test", [ALICE], msg)
        assert refused == {}
    stored = only_message(cell, ALICE)
    assert strip_trace(stored) == msg
    rec = received_header(stored)
    assert b"client.remote.test" in rec, rec
    assert b"127.0.0.1" in rec, rec
    assert b"mx.example.test" in rec, rec
    assert stored_messages(cell, BOB) == []


def test_smtplib_mx_multiple_local_recipients(cell):
    msg = _msg("to many", [("Cc", BOB)])
    with smtplib.SMTP(HOST, cell.port("mx"), local_hostname="client.remote.test", timeout=10) as s:
        refused = s.sendmail("sender@remote.test", [ALICE, "nobody@example.test", BOB], msg)
    assert set(refused) == {"nobody@example.test"}
    code, text = refused["nobody@example.test"]
    assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    a = only_message(cell, ALICE)
    b = only_message(cell, BOB)
    assert strip_trace(a) == msg
    assert strip_trace(b) == msg
    assert cell.queued() == []


# ---------------------------------------------------------------- submission

def test_submission_starttls_adds_message_id_and_date(cell):
    msg = build_message([("From", ALICE), ("To", BOB), ("Subject", "no ids")], b"Hi Bob.\r\n")
    with smtplib.SMTP(HOST, cell.port("submission"), local_hostname=CLIENT_NAME, timeout=10) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        assert not s.has_extn("auth"), "AUTH must be offered only over TLS"
        s.starttls(context=insecure_tls_context())
        s.ehlo()
        assert not s.has_extn("starttls"), "STARTTLS advertised inside TLS"
        mechs = s.esmtp_features.get("auth", "").upper().split()
        assert "PLAIN" in mechs and "LOGIN" in mechs, s.esmtp_features
        s.login(ALICE, USERS[ALICE])
        assert s.sendmail(ALICE, [BOB], msg) == {}
    stored = only_message(cell, BOB)
    _assert_submission_received(stored)
    _assert_added_ids(stored, msg)
    assert cell.queued() == []


def test_submissions_implicit_tls_keeps_message_id_and_date(cell):
    msg = _with_ids("has ids", sender=ALICE, to=BOB)
    with smtplib.SMTP_SSL(HOST, cell.port("submissions"), local_hostname=CLIENT_NAME,
                          context=insecure_tls_context(), timeout=10) as s:
        s.ehlo()
        assert not s.has_extn("starttls"), "STARTTLS advertised on implicit TLS"
        s.login(ALICE, USERS[ALICE])
        assert s.sendmail(ALICE, [BOB], msg) == {}
    stored = only_message(cell, BOB)
    _assert_submission_received(stored)
    assert strip_trace(stored) == msg


def test_submissions_adds_only_missing_header(cell):
    """Only Date present: Message-ID added, Date kept as sent."""
    msg = build_message([("From", ALICE), ("To", BOB), ("Subject", "date only"),
                         ("Date", "Tue, 01 Oct 2024 10:00:00 +0000")], b"x\r\n")
    with smtplib.SMTP_SSL(HOST, cell.port("submissions"), local_hostname=CLIENT_NAME,
                          context=insecure_tls_context(), timeout=10) as s:
        s.login(ALICE, USERS[ALICE])
        s.sendmail(ALICE, [BOB], msg)
    body = strip_trace(only_message(cell, BOB))
    assert fields_named(body, "Date") == [b"Date: Tue, 01 Oct 2024 10:00:00 +0000"]
    assert len(fields_named(body, "Message-ID")) == 1
    assert without_fields(body, ["Message-ID"]) == msg


@pytest.mark.parametrize("listener", ["submission", "submissions"])
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("initial", [True, False], ids=["initial-response", "no-initial-response"])
def test_auth_mechanisms(cell, listener, mech, initial):
    ctx = insecure_tls_context()
    if listener == "submissions":
        s = smtplib.SMTP_SSL(HOST, cell.port(listener), local_hostname=CLIENT_NAME, context=ctx, timeout=10)
    else:
        s = smtplib.SMTP(HOST, cell.port(listener), local_hostname=CLIENT_NAME, timeout=10)
        s.ehlo()
        s.starttls(context=ctx)
    try:
        s.ehlo()
        s.user, s.password = BOB, USERS[BOB]
        authobj = s.auth_plain if mech == "PLAIN" else s.auth_login
        code, text = s.auth(mech, authobj, initial_response_ok=initial)
        assert code == 235 and text.startswith(b"2.7.0"), (code, text)
        msg = build_message([("From", BOB), ("To", ALICE), ("Subject", f"{mech} {initial}"),
                             ("Message-ID", "<a@b.test>"), ("Date", "Tue, 01 Oct 2024 10:00:00 +0000")])
        assert s.sendmail(BOB, [ALICE], msg) == {}
    finally:
        s.close()
    assert strip_trace(only_message(cell, ALICE)) == msg


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_wrong_password_refused(cell, mech):
    with smtplib.SMTP_SSL(HOST, cell.port("submissions"), context=insecure_tls_context(), timeout=10) as s:
        s.ehlo()
        s.user, s.password = ALICE, "not the password"
        authobj = s.auth_plain if mech == "PLAIN" else s.auth_login
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.auth(mech, authobj)
        assert e.value.smtp_code == 535 and e.value.smtp_error.startswith(b"5.7.8"), e.value
        # not authenticated: MAIL still needs AUTH
        code, text = s.mail(ALICE)
        assert code == 530 and text.startswith(b"5.7.0"), (code, text)


def test_remote_recipient_via_submission_is_queued(cell):
    msg = build_message([("From", ALICE), ("To", "carol@remote.test, bob@example.test"),
                         ("Subject", "mixed"), ("Message-ID", "<q@x.test>"),
                         ("Date", "Tue, 01 Oct 2024 10:00:00 +0000")], b"for everybody\r\n")
    with smtplib.SMTP_SSL(HOST, cell.port("submissions"), context=insecure_tls_context(), timeout=10) as s:
        s.login(ALICE, USERS[ALICE])
        assert s.sendmail(ALICE, ["carol@remote.test", BOB], msg) == {}
    # local recipient: the store
    assert strip_trace(only_message(cell, BOB)) == msg
    # remote recipient: the outbound queue, right envelope
    q = cell.queued()
    assert len(q) == 1, q
    entry = q[0]
    assert entry["from"] == ALICE, entry
    assert [r.lower() for r in queue_recipients(entry)] == ["carol@remote.test"], entry
    assert entry.get("user", ALICE).lower() == ALICE, entry
    spool = list((cell.dir / "queue" / "outbound").glob("*.msg"))
    assert len(spool) == 1, spool
    raw = spool[0].read_bytes()
    assert raw.startswith(b"PCQ1 ") and raw.endswith(b"\nPCQ1-END\n")
    assert msg in raw


# ---------------------------------------------------------------- raw PIPELINING

def test_pipelining_raw_socket(cell):
    with RawSMTP(port=cell.port("mx")) as c:
        assert c.greeting.startswith("220 mx.example.test ESMTP Postcell"), c.greeting
        ext = c.extensions(c.ehlo("client.remote.test"))
        assert "PIPELINING" in ext
        c.send(b"MAIL FROM:<p@remote.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<nobody@example.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\n"
               b"DATA\r\n")
        r = c.replies(5)
        assert [x.code for x in r] == [250, 250, 550, 250, 354], r
        assert r[2].startswith("550 5.1.1"), r[2]
        m1 = b"Subject: first\r\n\r\nfirst body\r\n"
        m2 = b"Subject: second\r\n\r\nsecond body\r\n..dotted\r\n"
        # RFC 2920: the message content may start a new group; the next
        # transaction is pipelined right behind the end of data.
        c.send(m1 + b".\r\n"
               b"MAIL FROM:<p2@remote.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\n"
               b"DATA\r\n")
        r = c.replies(4)
        assert [x.code for x in r] == [250, 250, 250, 354], r
        assert r[0].startswith("250 2.0.0 Ok: queued as "), r[0]
        c.send(m2 + b".\r\nRSET\r\nNOOP\r\nQUIT\r\n")
        r = c.replies(4)
        assert [x.code for x in r] == [250, 250, 250, 221], r
    assert strip_trace(only_message(cell, ALICE)) == m1
    bobs = sorted(strip_trace(m) for m in stored_messages(cell, BOB))
    assert bobs == sorted([m1, b"Subject: second\r\n\r\nsecond body\r\n.dotted\r\n"])


# ---------------------------------------------------------------- raw BDAT

def _bdat(c, chunk, last=False):
    c.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
    return c.reply()


def test_bdat_chunks_binary_exact(cell):
    chunks = [
        b"From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: bdat\r\n\r\n",
        b"NUL:\x00:bare CR:\r:bare LF:\n:8bit:\xff\xfe\r",     # ends in the middle of CRLF
        b"\nline after split CRLF\r\n.\r\n.. not a terminator\r\n",
        b"\x00" * 10 + b"\r\rtail-without-newline",
    ]
    with RawSMTP(port=cell.port("mx")) as c:
        ext = c.extensions(c.ehlo())
        assert "CHUNKING" in ext
        assert c.cmd("MAIL FROM:<b@remote.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        total = 0
        for ch in chunks:
            total += len(ch)
            r = _bdat(c, ch)
            # docs: "<n> octets received"; n is the chunk's size or, as in
            # RFC 3030's examples, the running total
            assert (r.startswith(f"250 2.0.0 {len(ch)} octets received")
                    or r.startswith(f"250 2.0.0 {total} octets received")), (len(ch), total, r)
        r = c.cmd("BDAT 0 LAST")
        assert r.startswith("250 2.0.0 Ok: queued as "), r
        c.quit()
    assert strip_trace(only_message(cell, ALICE)) == b"".join(chunks)


def test_bdat_pipelined_and_data_after_bdat(cell):
    body1 = b"Subject: one\r\n\r\n\x00\x01\x02 binary \r bits\n"
    body2 = b"Subject: two\r\n\r\nsingle chunk with LAST\r\n"
    with RawSMTP(port=cell.port("mx")) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<b@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
               + b"BDAT 10\r\n" + body1[:10]
               + b"BDAT %d LAST\r\n" % (len(body1) - 10) + body1[10:]
               + b"MAIL FROM:<b@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
               + b"BDAT %d LAST\r\n" % len(body2) + body2)
        r = c.replies(7)
        assert [x.code for x in r] == [250] * 7, r
        assert r[2].startswith("250 2.0.0 10 octets received"), r[2]
        assert r[3].startswith("250 2.0.0 Ok: queued as"), r[3]
        assert r[6].startswith("250 2.0.0 Ok: queued as"), r[6]
        # DATA is not allowed after BDAT in the same transaction
        assert c.cmd("MAIL FROM:<b@remote.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert _bdat(c, b"Subject: x\r\n").code == 250
        r = c.cmd("DATA")
        assert r.startswith("503 5.5.1"), r
        c.quit()
    got = sorted(strip_trace(m) for m in stored_messages(cell, BOB))
    assert got == sorted([body1, body2])


# ---------------------------------------------------------------- swaks

def _swaks(*args, data):
    assert shutil.which("swaks"), "swaks is not installed (apt-get install -y swaks)"
    r = subprocess.run(["swaks", "--timeout", "15", *args, "--data", "-"], input=data,
                       capture_output=True, timeout=60)
    return r


# swaks sends the data followed by CRLF . CRLF; data without a final newline
# is stored with one CRLF appended.
SWAKS_MX = b"From: swaks@remote.test\r\nTo: alice@example.test\r\nSubject: swaks mx\r\n" \
           b"Message-ID: <swaks-mx@remote.test>\r\nDate: Tue, 01 Oct 2024 10:00:00 +0000\r\n\r\n" \
           b"hello from swaks\r\n.leading dot"


@pytest.mark.parametrize("pipeline", [False, True], ids=["lockstep", "pipeline"])
def test_swaks_mx_plain(cell, pipeline):
    args = ["--server", f"127.0.0.1:{cell.port('mx')}", "--to", ALICE, "--from", "swaks@remote.test",
            "--ehlo", "swaks.remote.test"]
    if pipeline:
        args.append("--pipeline")
    r = _swaks(*args, data=SWAKS_MX)
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-3000:]
    stored = only_message(cell, ALICE)
    assert strip_trace(stored) == SWAKS_MX + b"\r\n"
    assert b"swaks.remote.test" in received_header(stored)


SWAKS_SUB = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: swaks submission\r\n\r\n" \
            b"no ids here, the engine adds them"


def test_swaks_submission_starttls_auth_plain(cell):
    r = _swaks("--server", f"127.0.0.1:{cell.port('submission')}", "--to", BOB, "--from", ALICE,
               "--ehlo", CLIENT_NAME, "--tls", "--auth", "PLAIN",
               "--auth-user", ALICE, "--auth-password", USERS[ALICE], data=SWAKS_SUB)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out[-3000:]
    assert "235 2.7.0" in out
    stored = only_message(cell, BOB)
    _assert_submission_received(stored)
    _assert_added_ids(stored, SWAKS_SUB + b"\r\n")


def test_swaks_submissions_tls_on_connect_auth_login(cell):
    r = _swaks("--server", f"127.0.0.1:{cell.port('submissions')}", "--to", ALICE, "--from", BOB,
               "--ehlo", CLIENT_NAME, "--tls-on-connect", "--auth", "LOGIN",
               "--auth-user", BOB, "--auth-password", USERS[BOB], data=SWAKS_SUB)
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-3000:]
    stored = only_message(cell, ALICE)
    _assert_submission_received(stored)
    _assert_added_ids(stored, SWAKS_SUB + b"\r\n")


def test_swaks_submission_without_tls_cannot_auth(cell):
    r = _swaks("--server", f"127.0.0.1:{cell.port('submission')}", "--to", BOB, "--from", ALICE,
               "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", USERS[ALICE], data=SWAKS_SUB)
    assert r.returncode != 0
    assert stored_messages(cell, BOB) == []


# ---------------------------------------------------------------- aliases

def _alias_config(cfg):
    cfg["aliases"] = {
        "family@example.test": ["alice@example.test", "bob@example.test"],
        "forward@example.test": ["carol@remote.test"],
        "@example.test": ["alice@example.test"],
    }


def _deliver_mx(cell, rcpts, msg, sender="s@remote.test"):
    with RawSMTP(port=cell.port("mx")) as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
        for rc in rcpts:
            r = c.cmd(f"RCPT TO:<{rc}>")
            assert r.code == 250, (rc, r)
        r = c.data(msg)
        assert r.startswith("250 2.0.0 Ok: queued as"), r
        c.quit()


def test_aliases_catch_all_and_plus_addressing(make_cell):
    cell = make_cell(_alias_config)
    m_family = b"Subject: family\r\n\r\nto the family\r\n"
    _deliver_mx(cell, ["family@example.test"], m_family)
    assert [strip_trace(m) for m in stored_messages(cell, ALICE)] == [m_family]
    assert [strip_trace(m) for m in stored_messages(cell, BOB)] == [m_family]

    m_catch = b"Subject: catch-all\r\n\r\nto nobody in particular\r\n"
    _deliver_mx(cell, ["whoever-this-is@example.test"], m_catch)
    assert [strip_trace(m) for m in stored_messages(cell, ALICE)][-1] == m_catch
    assert len(stored_messages(cell, BOB)) == 1

    m_plus = b"Subject: plus\r\n\r\nto bob+lists\r\n"
    _deliver_mx(cell, ["bob+lists@example.test"], m_plus)
    bobs = [strip_trace(m) for m in stored_messages(cell, BOB)]
    assert bobs == [m_family, m_plus], "bob+lists@ must be delivered to bob@, not the catch-all"

    m_case = b"Subject: case\r\n\r\nupper case address\r\n"
    _deliver_mx(cell, ["BOB@Example.TEST"], m_case)
    assert [strip_trace(m) for m in stored_messages(cell, BOB)][-1] == m_case

    m_fwd = b"Subject: forward\r\n\r\nforwarded outside\r\n"
    _deliver_mx(cell, ["forward@example.test"], m_fwd)
    q = cell.queued()
    assert len(q) == 1, q
    assert [r.lower() for r in queue_recipients(q[0])] == ["carol@remote.test"], q[0]
    assert len(stored_messages(cell, ALICE)) == 2   # the forward alias is not caught by the catch-all


def test_plus_addressing_without_catch_all(make_cell):
    cell = make_cell()
    m = b"Subject: plus\r\n\r\nalice+tag\r\n"
    _deliver_mx(cell, ["alice+tag@example.test"], m)
    assert strip_trace(only_message(cell, ALICE)) == m
    with RawSMTP(port=cell.port("mx")) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        r = c.cmd("RCPT TO:<nobody+tag@example.test>")
        assert r.startswith("550 5.1.1"), r


def test_recipient_delimiter_disabled(make_cell):
    cell = make_cell(lambda cfg: cfg.update(recipientDelimiter=""))
    with RawSMTP(port=cell.port("mx")) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        r = c.cmd("RCPT TO:<alice+tag@example.test>")
        assert r.startswith("550 5.1.1"), r
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250


# ---------------------------------------------------------------- 8BITMIME / SMTPUTF8

def _utf8_config(cfg):
    for u in cfg["users"]:
        if u["address"] == ALICE:
            u["addresses"] = ["jörg@example.test"]


def test_smtputf8_and_8bitmime(make_cell):
    cell = make_cell(_utf8_config)
    msg = ("From: Müller <müller@remote.test>\r\nTo: Jörg <jörg@example.test>\r\n"
           "Subject: Grüße aus Köln ✉\r\n\r\nKäsekuchen für alle. 日本語\r\n").encode()
    with smtplib.SMTP(HOST, cell.port("mx"), timeout=10) as s:
        s.ehlo()
        assert s.has_extn("smtputf8") and s.has_extn("8bitmime")
        refused = s.sendmail("müller@remote.test", ["jörg@example.test"], msg,
                             mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert refused == {}
    assert strip_trace(only_message(cell, ALICE)) == msg

    # without SMTPUTF8 a non-ASCII address is refused
    with RawSMTP(port=cell.port("mx")) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<müller@remote.test>".encode())
        assert r.startswith("553 5.6.7"), r
        assert c.cmd("MAIL FROM:<m@remote.test> BODY=8BITMIME").code == 250
        r = c.cmd("RCPT TO:<jörg@example.test>".encode())
        assert r.startswith("553 5.6.7"), r
    # 8-bit body with BODY=8BITMIME and ASCII addresses
    msg2 = "Subject: =?utf-8?q?x?=\r\n\r\n8bit body: naïve café\r\n".encode()
    with smtplib.SMTP(HOST, cell.port("mx"), timeout=10) as s:
        assert s.sendmail("m@remote.test", [ALICE], msg2, mail_options=["BODY=8BITMIME"]) == {}
    assert strip_trace(stored_messages(cell, ALICE)[-1]) == msg2


# ---------------------------------------------------------------- SIZE

def test_size_declared_too_large(cell):
    with RawSMTP(port=cell.port("mx")) as c:
        ext = c.extensions(c.ehlo())
        assert ext.get("SIZE") == "SIZE 36700160", ext
        r = c.cmd("MAIL FROM:<s@remote.test> SIZE=36700161")
        assert r.startswith("552 5.3.4"), r
        r = c.cmd("MAIL FROM:<s@remote.test> SIZE=36700160")
        assert r.code == 250, r
    with smtplib.SMTP(HOST, cell.port("mx"), timeout=10) as s:
        s.ehlo()
        code, text = s.mail("s@remote.test", ["SIZE=99999999999"])
        assert code == 552 and text.startswith(b"5.3.4"), (code, text)
    assert stored_messages(cell, ALICE) == []


def test_size_limit_enforced_on_data(make_cell):
    cell = make_cell(lambda cfg: cfg.setdefault("limits", {}).update(maxMessageBytes=2000))
    big = b"Subject: big\r\n\r\n" + b"x" * 78 + b"\r\n" + (b"y" * 78 + b"\r\n") * 40
    with smtplib.SMTP(HOST, cell.port("mx"), timeout=10) as s:
        s.ehlo()
        assert s.esmtp_features.get("size") == "2000", s.esmtp_features
        with pytest.raises(smtplib.SMTPSenderRefused) as e:   # smtplib declares SIZE=
            s.sendmail("s@remote.test", [ALICE], big)
        assert e.value.smtp_code == 552 and e.value.smtp_error.startswith(b"5.3.4")
    with RawSMTP(port=cell.port("mx")) as c:      # no SIZE=: refused after the data
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        r = c.data(big)
        assert r.startswith("552 5.3.4"), r
        assert c.cmd("NOOP").code == 250        # the session goes on
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        r = _bdat(c, big, last=True)
        assert r.startswith("552 5.3.4"), r
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        small = b"Subject: small\r\n\r\nfits\r\n"
        assert c.data(small).code == 250
    assert [strip_trace(m) for m in stored_messages(cell, ALICE)] == [small]
