"""POP3 with real clients: Python's poplib (STLS, USER/PASS, STAT, LIST,
UIDL, TOP, RETR, DELE, QUIT, the maildrop lock) and fetchmail pulling the
INBOX over POP3 with STLS into a local file."""
import os
import poplib
import smtplib
import ssl
import subprocess
import time

import pytest

from helpers_clients import insecure_tls_context as tls
from conftest import Cell, USERS, base_config, strip_trace

ALICE = "alice@example.test"


@pytest.fixture
def pcell(tmp_path):
    cfg = base_config()
    cfg["listeners"] += [{"name": "pop3", "role": "pop3", "address": "127.0.0.1:0"},
                         {"name": "pop3s", "role": "pop3", "address": "127.0.0.1:0", "implicitTLS": True}]
    c = Cell(tmp_path / "cell", cfg).start()
    yield c
    c.stop()


def deliver(cell, n):
    s = smtplib.SMTP("127.0.0.1", cell.port("mx"))
    sent = []
    for i in range(n):
        msg = f"From: x@remote.test\r\nSubject: pop {i}\r\n\r\n.dotted line {i}\r\nsecond line\r\nthird line\r\n".encode()
        s.sendmail("x@remote.test", [ALICE], msg)
        sent.append(msg)
    s.quit()
    return sent


def test_poplib_session(pcell):
    sent = deliver(pcell, 3)
    p = poplib.POP3("127.0.0.1", pcell.port("pop3"))
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps
    with pytest.raises(poplib.error_proto):
        p.user(ALICE)
    p.stls(context=tls())
    assert "USER" in p.capa() and "UIDL" in p.capa()
    p.user(ALICE)
    p.pass_(USERS[ALICE])
    count, size = p.stat()
    assert count == 3
    _, listing, _ = p.list()
    assert sum(int(l.split()[1]) for l in listing) == size
    _, uidl, _ = p.uidl()
    uids = [l.split()[1] for l in uidl]
    assert len(set(uids)) == 3
    # RETR returns the stored bytes (dot-stuffing undone by the client).
    _, lines, _ = p.retr(2)
    assert strip_trace(b"\r\n".join(lines) + b"\r\n") == sent[1]
    _, top, _ = p.top(1, 1)
    assert top[-1] == b".dotted line 0" and b"Subject: pop 0" in top
    # The maildrop is locked while this session holds it (RFC 1939 §8).
    q = poplib.POP3_SSL("127.0.0.1", pcell.port("pop3s"), context=tls())
    q.user(ALICE)
    with pytest.raises(poplib.error_proto, match="IN-USE"):
        q.pass_(USERS[ALICE])
    q.quit()
    p.dele(1)
    with pytest.raises(poplib.error_proto):
        p.retr(1)
    p.quit()
    remaining = pcell.messages(ALICE)
    assert len(remaining) == 2
    # UIDL values are stable across sessions.
    r = poplib.POP3_SSL("127.0.0.1", pcell.port("pop3s"), context=tls())
    r.user(ALICE)
    r.pass_(USERS[ALICE])
    _, uidl2, _ = r.uidl()
    assert [l.split()[1] for l in uidl2] == uids[1:]
    r.quit()
    ok, report = pcell.check()
    assert ok, report


def test_wrong_password_and_no_quit_keeps_mail(pcell):
    deliver(pcell, 1)
    p = poplib.POP3_SSL("127.0.0.1", pcell.port("pop3s"), context=tls())
    p.user(ALICE)
    with pytest.raises(poplib.error_proto, match="AUTH"):
        p.pass_("wrong")
    p.user(ALICE)
    p.pass_(USERS[ALICE])
    p.dele(1)
    p.file.close()  # no QUIT: RFC 1939 §6, nothing is deleted
    p.sock.close()
    # The server releases the maildrop once it sees the connection gone.
    for attempt in range(50):
        p2 = poplib.POP3_SSL("127.0.0.1", pcell.port("pop3s"), context=tls())
        p2.user(ALICE)
        try:
            p2.pass_(USERS[ALICE])
            break
        except poplib.error_proto as e:
            assert b"IN-USE" in e.args[0]
            p2.quit()
            time.sleep(0.1)
    assert p2.stat()[0] == 1
    p2.quit()


def test_fetchmail_pulls_over_pop3(pcell, tmp_path):
    sent = deliver(pcell, 2)
    out = tmp_path / "fetched.mbox"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f'poll 127.0.0.1 service {pcell.port("pop3")} protocol pop3 uidl\n'
        f'  user "{ALICE}" there with password "{USERS[ALICE]}" is "root" here\n'
        f'  sslproto TLS1.2+ no sslcertck\n'
        f'  mda "/bin/sh -c \'cat >> {out}; echo ===END=== >> {out}\'"\n'
        f'  fetchall\n')
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    r = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog", "-v", "--idfile", str(tmp_path / "ids")],
                       capture_output=True, env=env, timeout=60)
    log = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, log
    assert "STLS" in log
    fetched = out.read_bytes().split(b"===END===\n")
    assert len([f for f in fetched if f.strip()]) == 2, log
    for msg, got in zip(sent, fetched):
        body = msg.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
        assert body in got.replace(b"\r\n", b"\n")
    # fetchmail deletes what it fetched (no "keep"): the INBOX is empty now.
    assert pcell.messages(ALICE) == []
