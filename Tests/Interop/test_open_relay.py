"""Classic open-relay attempts: every one must be refused with a 5xx reply
(at RCPT, or at MAIL where the command itself is malformed), and nothing may
reach the store or the outbound queue.

Contract: docs/SMTP.md ("mx accepts mail for the cell's domains only: no
AUTH, no relaying"; submission requires AUTH, offered only over TLS)."""
import pytest

from conftest import Cell, USERS, smtp_dialog
from helpers_clients import HOST, RawSMTP, auth_plain_token, b64, stored_messages

REMOTE_SENDER = "<spammer@remote.test>"


@pytest.fixture(scope="module")
def relay_cell(tmp_path_factory):
    c = Cell(tmp_path_factory.mktemp("relay") / "cell").start()
    yield c
    c.stop()


def _snapshot(cell):
    return {
        "alice": len(stored_messages(cell, "alice@example.test")),
        "bob": len(stored_messages(cell, "bob@example.test")),
        "queue": len(cell.queued()),
        "spool": len(list((cell.dir / "queue" / "outbound").glob("*"))) if (cell.dir / "queue" / "outbound").exists() else 0,
    }


@pytest.fixture
def nothing_delivered(relay_cell):
    before = _snapshot(relay_cell)
    yield relay_cell
    after = _snapshot(relay_cell)
    assert after == before, f"something was stored or queued: {before} -> {after}"
    assert after["queue"] == 0 and after["spool"] == 0


def _is_5xx(reply):
    return reply[0][:1] == b"5" and reply[0][:3].isdigit()


# (id, MAIL FROM argument, RCPT TO argument)
RCPT_CASES = [
    ("plain-foreign-domain", REMOTE_SENDER, "<user@other.test>"),
    ("percent-hack", REMOTE_SENDER, "<user%other.test@example.test>"),
    ("percent-hack-known-user", REMOTE_SENDER, "<alice%other.test@example.test>"),
    ("percent-hack-reversed", REMOTE_SENDER, "<user%example.test@other.test>"),
    ("bang-path-at-local", REMOTE_SENDER, "<other.test!user@example.test>"),
    ("bang-path-bare", REMOTE_SENDER, "<other.test!user>"),
    ("bang-path-quoted", REMOTE_SENDER, '<"other.test!user">'),
    ("quoted-at", REMOTE_SENDER, '<"user@other.test"@example.test>'),
    ("quoted-percent", REMOTE_SENDER, '<"user%other.test"@example.test>'),
    ("quoted-escaped-at", REMOTE_SENDER, '<"user\\@other.test"@example.test>'),
    ("source-route", REMOTE_SENDER, "<@example.test:user@other.test>"),
    ("source-route-multi-hop", REMOTE_SENDER, "<@example.test,@mx.example.test:user@other.test>"),
    ("unqualified-user", REMOTE_SENDER, "<user>"),
    ("unqualified-known-user", REMOTE_SENDER, "<alice>"),
    ("ip-literal-v4", REMOTE_SENDER, "<user@[127.0.0.1]>"),
    ("ip-literal-v4-known-user", REMOTE_SENDER, "<alice@[127.0.0.1]>"),
    ("ip-literal-v6", REMOTE_SENDER, "<user@[IPv6:::1]>"),
    ("trailing-dot-foreign", REMOTE_SENDER, "<user@other.test.>"),
    ("trailing-dot-local", REMOTE_SENDER, "<alice@example.test.>"),
    ("uppercase-foreign", REMOTE_SENDER, "<USER@OTHER.TEST>"),
    ("mixed-case-foreign", REMOTE_SENDER, "<User@Other.Test>"),
    ("double-at", REMOTE_SENDER, "<user@@other.test>"),
    ("local-then-foreign", REMOTE_SENDER, "<user@example.test@other.test>"),
    ("foreign-then-local", REMOTE_SENDER, "<user@other.test@example.test>"),
    ("empty-local-part", REMOTE_SENDER, "<@example.test>"),
    ("empty-quoted-local-part", REMOTE_SENDER, '<""@example.test>'),
    ("subdomain-of-local", REMOTE_SENDER, "<alice@sub.example.test>"),
    ("local-domain-as-prefix", REMOTE_SENDER, "<alice@example.test.other.test>"),
    ("hostname-is-not-a-domain", REMOTE_SENDER, "<alice@mx.example.test>"),
    ("localhost", REMOTE_SENDER, "<alice@localhost>"),
    ("no-angle-brackets", REMOTE_SENDER, "user@other.test"),
    ("two-addresses", REMOTE_SENDER, "<alice@example.test>,<user@other.test>"),
    ("local-sender", "<alice@example.test>", "<user@other.test>"),
    ("local-sender-uppercase", "<ALICE@EXAMPLE.TEST>", "<user@other.test>"),
    ("null-sender", "<>", "<user@other.test>"),
    ("smtputf8-foreign", "<spammer@remote.test> SMTPUTF8", "<üser@other.test>"),
]


@pytest.mark.parametrize("mail_from,rcpt", [c[1:] for c in RCPT_CASES], ids=[c[0] for c in RCPT_CASES])
def test_mx_refuses_relay(nothing_delivered, mail_from, rcpt):
    cell = nothing_delivered
    body = (b"From: spammer@remote.test\r\nTo: victim@other.test\r\nSubject: relay test\r\n\r\n"
            b"this must never be relayed\r\n.\r\n")
    replies = smtp_dialog(HOST, cell.port("mx"), [
        b"EHLO relay-tester.remote.test",
        b"MAIL FROM:" + mail_from.encode(),
        b"RCPT TO:" + rcpt.encode(),
        b"DATA",
        body,          # only meaningful (and harmful) if DATA was wrongly accepted
    ])
    greeting, ehlo, mail, rcpt_r, data = replies[:5]
    assert greeting[0].startswith(b"220 "), greeting
    assert ehlo[0].startswith(b"250"), ehlo
    if _is_5xx(mail):
        # only a malformed MAIL may be refused; a refused MAIL is not a relay
        pass
    else:
        assert mail[0].startswith(b"250"), mail
        assert _is_5xx(rcpt_r), f"RCPT TO:{rcpt} was not refused: {rcpt_r!r}"
    assert not data[0].startswith(b"354"), f"DATA accepted after a refused recipient: {data!r}"
    assert data[0][:3] in (b"503", b"554"), data


def test_mx_unknown_user_via_percent_and_bang_is_user_unknown(nothing_delivered):
    """Addresses at the local domain whose local part is a routing trick are
    just unknown users."""
    cell = nothing_delivered
    replies = smtp_dialog(HOST, cell.port("mx"), [
        b"EHLO relay-tester.remote.test",
        b"MAIL FROM:<spammer@remote.test>",
        b"RCPT TO:<user%other.test@example.test>",
        b"RCPT TO:<other.test!user@example.test>",
        b'RCPT TO:<"user@other.test"@example.test>',
        b"QUIT",
    ])
    for r in replies[3:6]:
        assert r[0].startswith(b"550 5.1.1"), r


def test_mx_plain_foreign_is_relaying_denied(nothing_delivered):
    cell = nothing_delivered
    replies = smtp_dialog(HOST, cell.port("mx"), [
        b"EHLO relay-tester.remote.test",
        b"MAIL FROM:<alice@example.test>",
        b"RCPT TO:<user@other.test>",
        b"RCPT TO:<USER@OTHER.TEST>",
        b"QUIT",
    ])
    assert replies[3][0].startswith(b"550 5.7.1"), replies[3]
    assert replies[4][0].startswith(b"550 5.7.1"), replies[4]


def test_mx_refuses_relay_over_starttls(nothing_delivered):
    cell = nothing_delivered
    with RawSMTP(port=cell.port("mx")) as c:
        c.ehlo("relay-tester.remote.test")
        c.starttls()
        c.ehlo("relay-tester.remote.test")
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        r = c.cmd("RCPT TO:<user@other.test>")
        assert r.startswith("550 5.7.1"), r
        r = c.cmd("RCPT TO:<user%other.test@example.test>")
        assert r.code is not None and 500 <= r.code < 600, r
        r = c.cmd("DATA")
        assert r.code in (503, 554), r


def test_mx_auth_not_enabled_even_over_tls(nothing_delivered):
    cell = nothing_delivered
    user, pw = "alice@example.test", USERS["alice@example.test"]
    with RawSMTP(port=cell.port("mx")) as c:
        c.ehlo()
        c.starttls()
        ext = c.extensions(c.ehlo())
        assert "AUTH" not in ext, ext
        r = c.cmd(b"AUTH PLAIN " + auth_plain_token(user, pw))
        assert r.startswith("503 5.5.1"), r
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        r = c.cmd("RCPT TO:<user@other.test>")
        assert r.startswith("550 5.7.1"), r


def test_submission_relay_without_auth(nothing_delivered):
    cell = nothing_delivered
    replies = smtp_dialog(HOST, cell.port("submission"), [
        b"EHLO relay-tester.remote.test",
        b"MAIL FROM:<alice@example.test>",
        b"RCPT TO:<user@other.test>",
        b"DATA",
        b"QUIT",
    ])
    assert replies[2][0].startswith(b"530 5.7.0"), replies[2]
    assert _is_5xx(replies[3]), replies[3]
    assert replies[4][0][:3] in (b"503", b"530", b"554"), replies[4]


def test_submission_relay_after_starttls_without_auth(nothing_delivered):
    cell = nothing_delivered
    with RawSMTP(port=cell.port("submission")) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.cmd("MAIL FROM:<alice@example.test>")
        assert r.startswith("530 5.7.0"), r
        r = c.cmd("RCPT TO:<user@other.test>")
        assert r.code is not None and 500 <= r.code < 600, r
    with RawSMTP(port=cell.port("submissions"), tls=True) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<>")
        assert r.startswith("530 5.7.0"), r


@pytest.mark.parametrize("mech", ["PLAIN-initial", "PLAIN", "LOGIN"])
def test_submission_auth_on_plaintext_refused(nothing_delivered, mech):
    cell = nothing_delivered
    user, pw = "alice@example.test", USERS["alice@example.test"]
    with RawSMTP(port=cell.port("submission")) as c:
        ext = c.extensions(c.ehlo())
        assert "AUTH" not in ext, ext
        if mech == "PLAIN-initial":
            r = c.cmd(b"AUTH PLAIN " + auth_plain_token(user, pw))
        else:
            r = c.cmd(b"AUTH " + mech.encode())
        assert r.startswith("538 5.7.11"), r
        if r.code == 334:      # wrongly continued: finish it, it must still not authenticate
            c.cmd(b64(user))
            c.cmd(b64(pw))
        r = c.cmd("MAIL FROM:<alice@example.test>")
        assert r.startswith("530 5.7.0"), r
        r = c.cmd("RCPT TO:<user@other.test>")
        assert r.code is not None and 500 <= r.code < 600, r


def test_bare_postmaster_is_local_not_relayed(relay_cell):
    """RFC 5321 §4.5.1: <Postmaster> without a domain must be accepted; it is
    delivered to the cell's first user and never leaves the cell."""
    before = _snapshot(relay_cell)
    replies = smtp_dialog(HOST, relay_cell.port("mx"), [
        b"EHLO relay-tester.remote.test",
        b"MAIL FROM:" + REMOTE_SENDER.encode(),
        b"RCPT TO:<Postmaster>",
        b"DATA",
        b"Subject: to postmaster\r\n\r\nhello\r\n.\r\n",
    ])
    assert replies[3][0].startswith(b"250"), replies[3]
    assert replies[5][0].startswith(b"250"), replies[5]
    after = _snapshot(relay_cell)
    assert after["queue"] == before["queue"] and after["spool"] == before["spool"]
    first_user = next(iter(USERS))
    assert b"Subject: to postmaster" in relay_cell.message_bytes(first_user, relay_cell.messages(first_user)[-1]["uid"])
