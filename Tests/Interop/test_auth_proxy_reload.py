"""AUTH failure limits, sender ownership, PROXY protocol v2 (TCP and unix
listeners), SIGHUP reload and graceful shutdown.

Contract: docs/CELL-CONFIG.md and docs/SMTP.md."""
import os
import signal
import socket
import time

from conftest import USERS, hash_password, strip_trace
from helpers_clients import (
    HOST, RawSMTP, b64, only_message, proxy_v2_header, read_listeners,
    received_header, stored_messages, wait_until,
)

ALICE = "alice@example.test"
BOB = "bob@example.test"


# ---------------------------------------------------------------- AUTH limits

def _auth_session(cell, user, password):
    """One fresh implicit-TLS submission session, one AUTH PLAIN; returns the reply."""
    with RawSMTP(port=cell.port("submissions"), tls=True) as c:
        c.ehlo()
        r = c.auth_plain(user, password)
        c.quit()
    return r


def test_auth_lockout_per_ip(make_cell):
    cell = make_cell(lambda cfg: cfg.update(auth={
        "maxFailuresPerIP": 3, "windowSeconds": 60, "lockoutSeconds": 30, "maxFailuresPerAccount": 100}))
    r = _auth_session(cell, ALICE, USERS[ALICE])
    assert r.startswith("235 2.7.0"), r
    for i in range(3):
        r = _auth_session(cell, ALICE, f"wrong password {i}")
        assert r.startswith("535 5.7.8"), (i, r)
    # The brief expects the lock after the 3rd failure; docs/CELL-CONFIG.md says
    # "more than N failures". The 4th wrong attempt may be 535 or already 454;
    # either way the IP is locked from here on.
    r = _auth_session(cell, ALICE, "wrong password 3")
    assert r.startswith("454 4.7.0") or r.startswith("535 5.7.8"), r
    r = _auth_session(cell, ALICE, USERS[ALICE])
    assert r.startswith("454 4.7.0"), f"right password after the lockout: {r!r}"
    # it is the IP that is locked: another account with its right password too
    r = _auth_session(cell, BOB, USERS[BOB])
    assert r.startswith("454 4.7.0"), f"other account from the locked IP: {r!r}"


def test_auth_lockout_after_three_failures_fourth_is_locked(make_cell):
    """The brief's reading: after 3 failures (maxFailuresPerIP 3) the 4th AUTH,
    even with the right password, gets 454 4.7.0."""
    cell = make_cell(lambda cfg: cfg.update(auth={
        "maxFailuresPerIP": 3, "windowSeconds": 60, "lockoutSeconds": 30, "maxFailuresPerAccount": 100}))
    for i in range(3):
        r = _auth_session(cell, ALICE, f"wrong password {i}")
        assert r.startswith("535 5.7.8"), (i, r)
    r = _auth_session(cell, ALICE, USERS[ALICE])
    assert r.startswith("454 4.7.0"), f"4th AUTH after 3 failures: {r!r}"


def test_auth_lockout_per_account(make_cell):
    cell = make_cell(lambda cfg: cfg.update(auth={
        "maxFailuresPerIP": 100, "windowSeconds": 60, "lockoutSeconds": 30, "maxFailuresPerAccount": 2}))
    for i in range(2):
        r = _auth_session(cell, ALICE, f"wrong {i}")
        assert r.startswith("535 5.7.8"), (i, r)
    r = _auth_session(cell, ALICE, "wrong 2")
    assert r.startswith("454 4.7.0") or r.startswith("535 5.7.8"), r
    r = _auth_session(cell, ALICE, USERS[ALICE])
    assert r.startswith("454 4.7.0"), f"locked account with the right password: {r!r}"
    # the account, not the IP, is locked: bob still logs in from the same IP
    r = _auth_session(cell, BOB, USERS[BOB])
    assert r.startswith("235 2.7.0"), r
    # the account is locked on the other submission listener (STARTTLS) as well
    with RawSMTP(port=cell.port("submission")) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.auth_plain(ALICE.upper(), USERS[ALICE])
        assert r.startswith("454 4.7.0"), r


def test_third_failure_in_one_session_closes(cell):
    with RawSMTP(port=cell.port("submissions"), tls=True) as c:
        c.ehlo()
        r = c.auth_plain(ALICE, "bad 1")
        assert r.startswith("535 5.7.8"), r
        # AUTH LOGIN, the two-step way
        r = c.cmd("AUTH LOGIN")
        assert r.startswith("334"), r
        r = c.cmd(b64(ALICE))
        assert r.startswith("334"), r
        r = c.cmd(b64("bad 2"))
        assert r.startswith("535 5.7.8"), r
        r = c.auth_plain(ALICE, "bad 3")
        assert r.startswith("421 4.7.0"), r
        assert c.is_closed(), "connection not closed after 421"


def test_auth_cancelled_and_malformed(cell):
    with RawSMTP(port=cell.port("submissions"), tls=True) as c:
        c.ehlo()
        r = c.cmd("AUTH PLAIN")
        assert r.code == 334, r
        r = c.cmd("*")
        assert r.startswith("501 5.0.0"), r
        r = c.auth_plain(ALICE, USERS[ALICE])
        assert r.startswith("235 2.7.0"), r
        r = c.auth_plain(ALICE, USERS[ALICE])
        assert r.startswith("503"), f"second AUTH in an authenticated session: {r!r}"


# ---------------------------------------------------------------- sender ownership

def test_submission_sender_ownership(make_cell):
    def mutate(cfg):
        for u in cfg["users"]:
            if u["address"] == ALICE:
                u["addresses"] = ["al@example.test"]
    cell = make_cell(mutate)
    with RawSMTP(port=cell.port("submissions"), tls=True) as c:
        c.ehlo()
        assert c.auth_plain(ALICE, USERS[ALICE]).startswith("235")
        for sender in ("bob@example.test", "someone@remote.test", "al@remote.test", "alice@other.test"):
            r = c.cmd(f"MAIL FROM:<{sender}>")
            assert r.startswith("553 5.7.1"), (sender, r)
        for sender in ("alice@example.test", "ALICE@Example.Test", "al@example.test", ""):
            r = c.cmd(f"MAIL FROM:<{sender}>")
            assert r.code == 250, (sender, r)
            assert c.cmd("RSET").code == 250
        # a full transaction with the extra address
        assert c.cmd("MAIL FROM:<al@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        msg = (b"From: al@example.test\r\nTo: bob@example.test\r\nSubject: owned\r\n"
               b"Date: Tue, 01 Oct 2024 10:00:00 +0000\r\nMessage-ID: <own@x.test>\r\n\r\nhi\r\n")
        assert c.data(msg).startswith("250 2.0.0")
        # a null-sender transaction is allowed too
        assert c.cmd("MAIL FROM:<>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.data(msg).startswith("250 2.0.0")
        c.quit()
    assert [strip_trace(m) for m in stored_messages(cell, BOB)] == [msg, msg]
    # bob may not use alice's extra address
    with RawSMTP(port=cell.port("submissions"), tls=True) as c:
        c.ehlo()
        assert c.auth_plain(BOB, USERS[BOB]).startswith("235")
        r = c.cmd("MAIL FROM:<al@example.test>")
        assert r.startswith("553 5.7.1"), r


# ---------------------------------------------------------------- PROXY protocol v2

PROXY_SRC = "203.0.113.7"   # documentation range; only ever written inside a header


def _proxy_listener_config(trusted, path=None):
    def mutate(cfg):
        cfg["trustedProxies"] = trusted
        lst = {"name": "edge-mx", "role": "mx", "proxyProtocol": True}
        if path:
            lst["path"] = path
        else:
            lst["address"] = "127.0.0.1:0"
        cfg["listeners"].append(lst)
    return mutate


def _mx_transaction(c, msg, ehlo="edge-client.remote.test"):
    c.ehlo(ehlo)
    assert c.cmd("MAIL FROM:<p@remote.test>").code == 250
    assert c.cmd("RCPT TO:<alice@example.test>").code == 250
    r = c.data(msg)
    assert r.startswith("250 2.0.0 Ok: queued as"), r
    c.quit()


def test_proxy_v2_trusted_tcp(make_cell):
    cell = make_cell(_proxy_listener_config(["127.0.0.1/32"]))
    port = cell.port("edge-mx")
    hdr = proxy_v2_header(PROXY_SRC, 4444, "127.0.0.1", 25)
    assert len(hdr) == 28
    msg = b"Subject: via proxy\r\n\r\nproxied\r\n"
    with RawSMTP(port=port, preamble=hdr) as c:
        assert c.greeting.startswith("220 mx.example.test"), c.greeting
        _mx_transaction(c, msg)
    stored = only_message(cell, ALICE)
    assert strip_trace(stored) == msg
    rec = received_header(stored)
    assert PROXY_SRC.encode() in rec, rec
    assert b"127.0.0.1" not in rec, rec
    assert b"edge-client.remote.test" in rec, rec


def test_proxy_v2_trusted_peer_without_header_is_not_served(make_cell):
    cell = make_cell(_proxy_listener_config(["127.0.0.1/32"]))
    s = socket.create_connection((HOST, cell.port("edge-mx")), timeout=5)
    try:
        s.sendall(b"EHLO no-proxy-header.remote.test\r\nMAIL FROM:<p@remote.test>\r\n")
        s.settimeout(5)
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    finally:
        s.close()
    assert b"\n250" not in b"\n" + got, f"served without a PROXY header: {got!r}"


def test_proxy_v2_untrusted_peer_cannot_spoof(make_cell):
    cell = make_cell(_proxy_listener_config([]))
    port = cell.port("edge-mx")
    hdr = proxy_v2_header(PROXY_SRC, 4444, "127.0.0.1", 25)
    c = RawSMTP(port=port, greet=False, preamble=hdr)
    try:
        replies, closed = c.read_until_close(timeout=5)
    finally:
        c.close()
    codes = [r.code for r in replies]
    # an untrusted peer is a direct client: the header is garbage to it
    if replies and replies[0].code == 220:
        rest = replies[1:]
    else:
        rest = replies
    assert closed or any(r.code == 500 for r in rest), f"PROXY header from untrusted peer: {replies!r}"
    for r in rest:
        assert r.code == 221 or (r.code is not None and 500 <= r.code < 600), f"unexpected reply {r!r} in {codes}"
    # a valid transaction on a fresh connection names the real peer
    msg = b"Subject: direct\r\n\r\nnot proxied\r\n"
    with RawSMTP(port=port) as c2:
        _mx_transaction(c2, msg)
    stored = only_message(cell, ALICE)
    rec = received_header(stored)
    assert b"127.0.0.1" in rec, rec
    assert PROXY_SRC.encode() not in rec, rec


def test_proxy_v2_unix_socket(make_cell):
    cell = make_cell(_proxy_listener_config(["unix"], path="sockets/mx.sock"), start=False)
    (cell.dir / "sockets").mkdir(exist_ok=True)
    cell.start()
    path = cell.listeners["edge-mx"]
    assert os.path.isabs(path), cell.listeners
    assert os.path.samefile(path, cell.dir / "sockets" / "mx.sock"), path
    hdr = proxy_v2_header("203.0.113.9", 5555, "127.0.0.1", 25)
    msg = b"Subject: via unix\r\n\r\nproxied over a unix socket\r\n"
    with RawSMTP(path=path, preamble=hdr) as c:
        assert c.greeting.startswith("220 mx.example.test"), c.greeting
        _mx_transaction(c, msg)
    stored = only_message(cell, ALICE)
    assert strip_trace(stored) == msg
    rec = received_header(stored)
    assert b"203.0.113.9" in rec, rec


# ---------------------------------------------------------------- SIGHUP reload

def _rcpt_code(cell, rcpt, listener="mx"):
    with RawSMTP(port=cell.port(listener)) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<r@remote.test>")
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        c.quit()
    return r


def _settle():
    """The engine installs its signal handlers a moment after writing
    run/listeners.json (see test_signals_right_after_ready, which checks that
    race on its own); the other signal tests wait that moment out so each one
    fails only for its own behaviour."""
    time.sleep(0.5)


def _not_served(port, tls=False):
    """True when a new connection to the port is refused or gets no greeting."""
    try:
        s = socket.create_connection((HOST, port), timeout=1)
    except OSError:
        return True
    try:
        if tls:
            return False     # a TLS handshake would be needed to see a greeting: it accepted
        return not s.recv(4).startswith(b"220")
    except OSError:
        return True
    finally:
        s.close()


def test_reload_mid_transaction_keeps_session(cell):
    old = RawSMTP(port=cell.port("mx"))
    try:
        old.ehlo("old-session.remote.test")
        assert old.cmd("MAIL FROM:<r@remote.test>").code == 250
        assert old.cmd("RCPT TO:<alice@example.test>").code == 250
        assert _rcpt_code(cell, "carol@example.test").startswith("550 5.1.1")
        assert _rcpt_code(cell, "dave@new.test").startswith("550 5.7.1")

        cell.config["users"].append({"address": "carol@example.test",
                                     "password": hash_password("carol's password"), "addresses": []})
        cell.config["domains"].append("new.test")
        cell.config["users"].append({"address": "dave@new.test",
                                     "password": hash_password("dave's password"), "addresses": []})
        _settle()
        cell.reload()
        wait_until(lambda: _rcpt_code(cell, "carol@example.test").code == 250, timeout=10,
                   what="the new user after SIGHUP")
        assert cell.proc.poll() is None, "engine exited on SIGHUP"

        # the old session is still there, and sees the new config on its next command
        r = old.cmd("RCPT TO:<carol@example.test>")
        assert r.code == 250, r
        msg = b"Subject: across a reload\r\n\r\nstarted before SIGHUP\r\n"
        r = old.data(msg)
        assert r.startswith("250 2.0.0 Ok: queued as"), r
        assert old.cmd("NOOP").code == 250
        assert old.cmd("QUIT").code == 221
    finally:
        old.close()
    assert strip_trace(only_message(cell, ALICE)) == msg
    assert strip_trace(only_message(cell, "carol@example.test")) == msg
    # a new session sees the new domain and user
    assert _rcpt_code(cell, "dave@new.test").code == 250
    # and the new user can log in on submission
    with RawSMTP(port=cell.port("submissions"), tls=True) as c:
        c.ehlo()
        assert c.auth_plain("carol@example.test", "carol's password").startswith("235")


def test_reload_adds_and_removes_listeners(cell):
    before = read_listeners(cell)
    assert set(before) == {"mx", "submission", "submissions"}, before
    idle = RawSMTP(port=cell.port("submissions"), tls=True)
    try:
        idle.ehlo()
        cell.config["listeners"].append({"name": "mx2", "role": "mx", "address": "127.0.0.1:0"})
        cell.config["listeners"] = [l for l in cell.config["listeners"] if l["name"] != "submissions"]
        _settle()
        cell.reload()
        wait_until(lambda: "mx2" in (read_listeners(cell) or {}), timeout=10,
                   what="mx2 in run/listeners.json")
        time.sleep(0.2)
        now = read_listeners(cell)
        assert now["mx"] == before["mx"] and now["submission"] == before["submission"], (before, now)
        assert "submissions" not in now, f"removed listener still in run/listeners.json: {now}"
        host, port = now["mx2"].rsplit(":", 1)
        with RawSMTP(host=host, port=int(port)) as c:
            assert c.greeting.startswith("220 mx.example.test ESMTP Postcell"), c.greeting
            c.quit()
        # the removed listener no longer accepts
        old_port = int(before["submissions"].rsplit(":", 1)[1])
        wait_until(lambda: _not_served(old_port, tls=True), timeout=5, what="the removed listener to stop accepting")
        # a session on the removed listener is kept
        assert idle.cmd("NOOP").code == 250
        assert idle.auth_plain(ALICE, USERS[ALICE]).startswith("235")
        idle.quit()
    finally:
        idle.close()


# ---------------------------------------------------------------- shutdown

def test_sigterm_idle_session(cell):
    c = RawSMTP(port=cell.port("mx"))
    try:
        c.ehlo()
        _settle()
        t0 = time.monotonic()
        rc = cell.stop(signal.SIGTERM, timeout=20)
        elapsed = time.monotonic() - t0
        assert rc == 0, f"engine exit status {rc}\n{cell.log()}"
        assert elapsed < 10, f"idle session held shutdown for {elapsed:.1f}s"
        r = c.reply()
        assert r.closed or r.startswith("421 4.3.2"), r
    finally:
        c.close()


def test_sigterm_lets_transaction_in_flight_finish(cell):
    port = cell.port("mx")
    c = RawSMTP(port=port)
    try:
        c.ehlo()
        assert c.cmd("MAIL FROM:<t@remote.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
        _settle()
        cell.proc.send_signal(signal.SIGTERM)
        # new connections are no longer accepted
        wait_until(lambda: _not_served(port), timeout=5, what="the listener to close after SIGTERM")
        c.send(b"second half\r\n.\r\n")
        r = c.reply()
        assert r.startswith("250 2.0.0 Ok: queued as"), r
        after = c.reply()       # now idle: 421 4.3.2 or a close
        assert after.closed or after.startswith("421 4.3.2"), after
    finally:
        c.close()
    rc = cell.proc.wait(15)
    assert rc == 0, f"engine exit status {rc}"
    cell.proc = None
    assert strip_trace(only_message(cell, ALICE)) == b"Subject: in flight\r\n\r\nfirst half\r\nsecond half\r\n"


def test_signals_right_after_ready(make_cell):
    """run/listeners.json is the readiness signal: from then on SIGHUP reloads
    and SIGTERM shuts down cleanly (exit 0), never the default action."""
    for i in range(8):
        c = make_cell()
        rc = c.stop(signal.SIGTERM, timeout=5)     # -9: it ignored SIGTERM and was killed
        assert rc == 0, f"start #{i}: SIGTERM right after listeners.json was written: exit status {rc}"
    for i in range(5):
        c = make_cell()
        c.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert c.proc.poll() is None, f"start #{i}: SIGHUP right after ready killed the engine ({c.proc.returncode})"
        assert c.stop(timeout=5) == 0
