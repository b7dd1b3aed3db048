"""The engine's admin API (docs/ADMIN-API.md) from the outside: HTTP/1.1
over the unix socket DATA/sockets/admin.sock, with real clients (imaplib,
poplib, smtplib) checking that each change takes effect, persists, and that
refused changes leave cell.json as it was. Also inherited-fd listeners and
suspension. Everything listens on 127.0.0.1 or unix sockets."""
import fcntl
import imaplib
import json
import mailbox
import os
import poplib
import smtplib
import socket
import stat
import subprocess
import tarfile
import time

import pytest

from conftest import ENGINE, USERS, Cell, base_config, hash_password
from helpers_clients import insecure_tls_context, unix_http_json

ALICE, BOB = "alice@example.test", "bob@example.test"


def admin(cell, method, path, body=None, raw=None):
    """One request; returns (status, decoded JSON or None)."""
    return unix_http_json(cell.dir / "sockets" / "admin.sock", method, path, body, raw)


def admin_config(cfg):
    cfg["admin"] = {"path": "sockets/admin.sock"}
    cfg["listeners"] += [
        {"name": "imap", "role": "imap", "address": "127.0.0.1:0"},
        {"name": "pop3", "role": "pop3", "address": "127.0.0.1:0"},
    ]


@pytest.fixture
def acell(make_cell):
    return make_cell(admin_config)


def imap_login(cell, user, password, listener="imap", port=None):
    """STARTTLS then LOGIN; returns the logged-in client or raises imaplib.IMAP4.error."""
    c = imaplib.IMAP4("127.0.0.1", port or cell.port(listener), timeout=10)
    c.starttls(ssl_context=insecure_tls_context())
    try:
        c.login(user, password)
    except imaplib.IMAP4.error:
        c.shutdown()
        raise
    return c


def imap_refusal(cell, user, password):
    """The tagged NO text of a refused LOGIN."""
    with pytest.raises(imaplib.IMAP4.error) as e:
        imap_login(cell, user, password).logout()
    return str(e.value)


def submit(cell, user, password, to, message):
    with smtplib.SMTP("127.0.0.1", cell.port("submission"), timeout=10) as s:
        s.starttls(context=insecure_tls_context())
        s.login(user, password)
        s.sendmail(user, [to], message)


def mx_send(cell, to, message, sender="someone@remote.test", port=None):
    with smtplib.SMTP("127.0.0.1", port or cell.port("mx"), timeout=10) as s:
        s.sendmail(sender, to if isinstance(to, list) else [to], message)


def msg(subject, body="Hello.\r\n", size=None):
    text = f"From: someone@remote.test\r\nTo: x@example.test\r\nSubject: {subject}\r\n\r\n{body}"
    if size:
        text += "x" * (size - len(text) - 2) + "\r\n"
    return text.encode()


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# --- the socket itself ---------------------------------------------------------

def test_socket_health_and_http_errors(acell):
    sock = acell.dir / "sockets" / "admin.sock"
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
    status, h = admin(acell, "GET", "/v1/health")
    assert status == 200
    assert h["status"] == "ok" and h["users"] == 2 and h["domains"] == 1 and h["suspended"] is False
    assert isinstance(h["uptimeSeconds"], int) and h["queuedMessages"] == 0
    assert admin(acell, "GET", "/v1/nothing")[0] == 404
    assert admin(acell, "DELETE", "/v1/health")[0] == 405
    status, body = admin(acell, "PUT", "/v1/users/carol@example.test", raw=b'{"password": ')
    assert status == 400 and "error" in body
    # Over 1 MiB: 413, however it arrives.
    big = b'{"targets": ["' + b"a" * (1 << 20) + b'@example.test"]}'
    assert admin(acell, "PUT", "/v1/aliases/big@example.test", raw=big)[0] == 413
    assert admin(acell, "GET", "/v1/health")[0] == 200


def test_stale_socket_file_is_replaced(make_cell):
    c = make_cell(admin_config, start=False)
    (c.dir / "sockets").mkdir(parents=True, exist_ok=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(c.dir / "sockets" / "admin.sock"))
    stale.close()
    c.start()
    assert admin(c, "GET", "/v1/health")[0] == 200


# --- users, passwords, aliases, domains -----------------------------------------

def test_put_user_then_imap_and_submission_work(acell):
    pw = "carol's long password"
    status, user = admin(acell, "PUT", "/v1/users/carol%40example.test",
                         {"password": hash_password(pw), "addresses": ["c@example.test"]})
    assert status == 201 and user == {"address": "carol@example.test", "addresses": ["c@example.test"]}
    assert admin(acell, "PUT", "/v1/users/carol@example.test",
                 {"password": hash_password(pw), "addresses": ["c@example.test"]})[0] == 200
    status, users = admin(acell, "GET", "/v1/users")
    assert [u["address"] for u in users] == [ALICE, BOB, "carol@example.test"]
    assert all("password" not in u for u in users)
    imap_login(acell, "carol@example.test", pw).logout()
    submit(acell, "carol@example.test", pw, ALICE, msg("from carol"))
    assert wait_for(lambda: len(acell.messages(ALICE)) == 1)
    assert b"Subject: from carol" in acell.message_bytes(ALICE, 1)


def test_plaintext_password_refused(acell):
    status, body = admin(acell, "PUT", "/v1/users/carol@example.test", {"password": "plaintext password"})
    assert status == 400 and "hash" in body["error"]


def test_alias_delivery(acell):
    status, _ = admin(acell, "PUT", "/v1/aliases/team@example.test", {"targets": [ALICE, BOB]})
    assert status == 201
    assert admin(acell, "GET", "/v1/aliases")[1] == {"team@example.test": [ALICE, BOB]}
    mx_send(acell, "team@example.test", msg("to the team"))
    assert len(acell.messages(ALICE)) == 1 and len(acell.messages(BOB)) == 1
    assert admin(acell, "DELETE", "/v1/aliases/team@example.test")[0] == 204
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        mx_send(acell, "team@example.test", msg("nobody now"))


def test_domain_add_delete_and_conflict(acell):
    assert admin(acell, "PUT", "/v1/domains/new.test")[0] == 201
    assert admin(acell, "PUT", "/v1/domains/new.test")[0] == 200
    assert admin(acell, "GET", "/v1/domains")[1] == ["example.test", "new.test"]
    assert admin(acell, "PUT", "/v1/users/dave@new.test", {"password": hash_password("dave's password")})[0] == 201
    mx_send(acell, "dave@new.test", msg("new domain"))
    assert len(acell.messages("dave@new.test")) == 1
    status, body = admin(acell, "DELETE", "/v1/domains/new.test")
    assert status == 409 and "in use" in body["error"]
    assert admin(acell, "DELETE", "/v1/users/dave@new.test")[0] == 204
    assert admin(acell, "DELETE", "/v1/domains/new.test")[0] == 204
    assert admin(acell, "DELETE", "/v1/domains/new.test")[0] == 404
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        mx_send(acell, "dave@new.test", msg("gone"))


def test_password_change(acell):
    new = "a brand new password"
    assert admin(acell, "PUT", f"/v1/users/{ALICE}/password", {"password": hash_password(new)})[0] == 200
    assert "AUTHENTICATIONFAILED" in imap_refusal(acell, ALICE, USERS[ALICE])
    imap_login(acell, ALICE, new).logout()
    assert admin(acell, "PUT", "/v1/users/nobody@example.test/password", {"password": hash_password(new)})[0] == 404


def test_quota_then_over_quota_delivery_refused(acell):
    assert admin(acell, "PUT", f"/v1/users/{ALICE}/quota", {"quotaBytes": 3000})[0] == 200
    assert admin(acell, "GET", "/v1/users")[1][0]["quotaBytes"] == 3000
    mx_send(acell, ALICE, msg("fits", size=2000))
    with pytest.raises((smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError)) as e:
        mx_send(acell, ALICE, msg("does not fit", size=2000))
    code = e.value.smtp_code if isinstance(e.value, smtplib.SMTPDataError) else e.value.recipients[ALICE][0]
    assert code in (452, 552), e.value
    assert len(acell.messages(ALICE)) == 1
    # null: the cell's default again (none here), and the mail fits.
    assert admin(acell, "PUT", f"/v1/users/{ALICE}/quota", {"quotaBytes": None})[0] == 200
    mx_send(acell, ALICE, msg("fits again", size=2000))


def test_usage_counts_delivered_bytes(acell):
    mx_send(acell, ALICE, msg("one"))
    mx_send(acell, ALICE, msg("two", size=5000))
    stored = sum(len(acell.message_bytes(ALICE, uid)) for uid in (1, 2))
    assert admin(acell, "PUT", "/v1/quota", {"cellBytes": 10_000_000})[0] == 200
    status, usage = admin(acell, "GET", "/v1/usage")
    assert status == 200
    by = {u["address"]: u for u in usage["users"]}
    assert by[ALICE]["usedBytes"] == stored and by[ALICE]["messages"] == 2
    assert by[BOB]["usedBytes"] == 0 and by[BOB]["messages"] == 0
    assert usage["cellBytes"] == stored and usage["cellQuotaBytes"] == 10_000_000


def test_delete_user_with_purge_removes_mail(acell):
    mx_send(acell, BOB, msg("to be purged", size=3000))
    assert len(acell.messages(BOB)) == 1
    assert admin(acell, "DELETE", f"/v1/users/{BOB}?purge=true")[0] == 204
    assert BOB not in [u["address"] for u in admin(acell, "GET", "/v1/users")[1]]
    assert admin(acell, "GET", "/v1/usage")[1]["cellBytes"] == 0
    ok, report = acell.check()
    assert ok, report
    # Back as a new, empty user.
    assert admin(acell, "PUT", f"/v1/users/{BOB}", {"password": hash_password(USERS[BOB])})[0] == 201
    assert acell.messages(BOB) == []


# --- suspension ------------------------------------------------------------------

def test_suspension_refuses_logins_but_mx_still_stores(acell):
    assert admin(acell, "PUT", "/v1/suspension", {"suspended": True})[0] == 200
    assert admin(acell, "GET", "/v1/health")[1]["suspended"] is True
    assert json.loads(acell.config_path.read_text())["suspended"] is True

    assert "[UNAVAILABLE] account suspended" in imap_refusal(acell, ALICE, USERS[ALICE])
    # A wrong password is told nothing more than that.
    assert "AUTHENTICATIONFAILED" in imap_refusal(acell, ALICE, "wrong password")

    p = poplib.POP3("127.0.0.1", acell.port("pop3"), timeout=10)
    p.stls(context=insecure_tls_context())
    p.user(ALICE)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(USERS[ALICE])
    assert b"-ERR [AUTH] account suspended" in e.value.args[0]
    p.close()

    with smtplib.SMTP("127.0.0.1", acell.port("submission"), timeout=10) as s:
        s.starttls(context=insecure_tls_context())
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login(ALICE, USERS[ALICE])
        assert e.value.smtp_code == 525 and b"5.7.13" in e.value.smtp_error and b"account suspended" in e.value.smtp_error

    mx_send(acell, ALICE, msg("while suspended"))
    assert len(acell.messages(ALICE)) == 1

    assert admin(acell, "PUT", "/v1/suspension", {"suspended": False})[0] == 200
    c = imap_login(acell, ALICE, USERS[ALICE])
    typ, data = c.select("INBOX")
    assert typ == "OK" and data[0] == b"1"
    c.logout()
    submit(acell, ALICE, USERS[ALICE], BOB, msg("after resume"))


# --- export ----------------------------------------------------------------------

def test_export_is_a_maildir_tar(acell, tmp_path):
    original = msg("exported", body="Bytes \xe9 kept\r\n.leading dot\r\n")
    mx_send(acell, ALICE, original)
    stored = acell.message_bytes(ALICE, 1)
    c = imap_login(acell, ALICE, USERS[ALICE])
    c.select("INBOX")
    c.store("1", "+FLAGS", r"(\Seen \Flagged)")
    c.create("Lists/Swift")
    c.copy("1", "Lists/Swift")
    c.logout()

    status, out = admin(acell, "POST", "/v1/export")
    assert status == 200 and out["path"].startswith("exports/") and out["path"].endswith(".tar")
    path = acell.dir / out["path"]
    assert path.stat().st_size == out["bytes"]
    assert list((acell.dir / "exports" / "tmp").iterdir()) == []
    with tarfile.open(path) as t:
        names = t.getnames()
        assert f"{ALICE}/Maildir/cur" in names and f"{BOB}/Maildir/.Sent/new" in names
        t.extractall(tmp_path / "x", filter="data") if hasattr(tarfile, "data_filter") else t.extractall(tmp_path / "x")
    md = mailbox.Maildir(tmp_path / "x" / ALICE / "Maildir", factory=None, create=False)
    keys = md.keys()
    assert len(keys) == 1
    m = md[keys[0]]
    assert m.get_flags() == "FS"
    with md.get_file(keys[0]) as f:
        assert f.read() == stored
    assert sorted(md.list_folders()) == sorted(["Sent", "Drafts", "Junk", "Trash", "Archive", "Lists", "Lists.Swift"])
    folder = md.get_folder("Lists.Swift")
    assert len(folder) == 1
    assert [mm.get_flags() for mm in folder] == ["FS"]
    assert len(mailbox.Maildir(tmp_path / "x" / BOB / "Maildir", create=False)) == 0


# --- persistence and refused changes ----------------------------------------------

def test_changes_persist_across_restart(acell):
    pw = "persisting password"
    assert admin(acell, "PUT", "/v1/domains/kept.test")[0] == 201
    assert admin(acell, "PUT", "/v1/users/erin@kept.test", {"password": hash_password(pw), "quotaBytes": 123456})[0] == 201
    assert admin(acell, "PUT", "/v1/aliases/@kept.test", {"targets": ["erin@kept.test"]})[0] == 201
    assert admin(acell, "PUT", "/v1/quota", {"cellBytes": 99_000_000})[0] == 200
    acell.stop()
    acell.start()
    assert admin(acell, "GET", "/v1/domains")[1] == ["example.test", "kept.test"]
    users = {u["address"]: u for u in admin(acell, "GET", "/v1/users")[1]}
    assert users["erin@kept.test"]["quotaBytes"] == 123456
    assert admin(acell, "GET", "/v1/aliases")[1] == {"@kept.test": ["erin@kept.test"]}
    assert admin(acell, "GET", "/v1/usage")[1]["cellQuotaBytes"] == 99_000_000
    imap_login(acell, "erin@kept.test", pw).logout()
    mx_send(acell, "anything@kept.test", msg("catch-all"))
    assert len(acell.messages("erin@kept.test")) == 1


def test_refused_changes_leave_the_file_byte_identical(acell):
    assert admin(acell, "PUT", "/v1/domains/other.test")[0] == 201
    before = acell.config_path.read_bytes()
    refused = [
        ("PUT", "/v1/users/carol@example.test", {"password": "plaintext"}, 400),
        ("PUT", "/v1/users/carol@example.test", {"password": hash_password("x"), "extra": 1}, 400),
        ("PUT", "/v1/users/carol@elsewhere.test", {"password": hash_password("x")}, 400),
        ("PUT", "/v1/users/carol@example.test", {"password": hash_password("x"), "addresses": [BOB]}, 400),
        ("PUT", "/v1/domains/bad..domain", None, 400),
        ("PUT", "/v1/aliases/x@example.test", {"targets": []}, 400),
        ("PUT", f"/v1/aliases/{ALICE}", {"targets": [BOB]}, 409),
        ("DELETE", "/v1/domains/example.test", None, 409),
        ("PUT", "/v1/quota", {"cellBytes": -5}, 400),
        ("PUT", "/v1/suspension", {"suspended": "yes"}, 400),
        ("DELETE", "/v1/users/nobody@example.test", None, 404),
    ]
    for method, path, body, expected in refused:
        status, reply = admin(acell, method, path, body)
        assert status == expected, (method, path, status, reply)
        assert acell.config_path.read_bytes() == before, (method, path)
    # The comparison can fail: an accepted change does rewrite the file.
    assert admin(acell, "DELETE", "/v1/domains/other.test")[0] == 204
    assert acell.config_path.read_bytes() != before
    assert json.loads(acell.config_path.read_text())["domains"] == ["example.test"]


# --- inherited-fd listeners ----------------------------------------------------------

def start_with_fds(cell, socks, timeout=30):
    """Cell.start, but with listening sockets handed over as fd 3, 4, ...
    (as the control plane's local backend does)."""
    ready = cell.dir / "run" / "listeners.json"
    if ready.exists():
        ready.unlink()
    log = open(cell.log_path, "ab")
    sources = [s.fileno() for s in socks]
    targets = list(range(3, 3 + len(socks)))
    assert min(sources) > max(targets)

    def hand_over():
        # In the child, before the descriptors not in pass_fds are closed.
        for src, dst in zip(sources, targets):
            os.dup2(src, dst)

    cell.proc = subprocess.Popen([ENGINE, "serve", "--config", str(cell.config_path)], stdout=log, stderr=subprocess.STDOUT,
                                 pass_fds=targets, preexec_fn=hand_over)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cell.proc.poll() is not None:
            raise RuntimeError(f"engine exited with {cell.proc.returncode}:\n{cell.log()}")
        if ready.exists():
            try:
                cell.listeners = json.loads(ready.read_text())
                return cell
            except json.JSONDecodeError:
                pass
        time.sleep(0.02)
    raise RuntimeError("engine did not become ready:\n" + cell.log())


def bound_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Far above 3 and 4, where the child is to find them.
    high = fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 50)
    os.close(s.detach())
    s = socket.socket(fileno=high)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def test_fd_listeners(tmp_path):
    mx_sock, imap_sock = bound_socket(), bound_socket()
    mx_port, imap_port = mx_sock.getsockname()[1], imap_sock.getsockname()[1]
    cfg = base_config()
    admin_config(cfg)
    cfg["listeners"] += [{"name": "mx-fd", "role": "mx", "fd": 3}, {"name": "imap-fd", "role": "imap", "fd": 4}]
    cell = Cell(tmp_path / "fdcell", cfg)
    try:
        start_with_fds(cell, [mx_sock, imap_sock])
        # The engine has its own copies now; ours can go.
        mx_sock.close()
        imap_sock.close()
        assert cell.listeners["mx-fd"] == f"127.0.0.1:{mx_port}"
        mx_send(cell, ALICE, msg("through fd 3"), port=mx_port)
        c = imap_login(cell, ALICE, USERS[ALICE], port=imap_port)
        typ, data = c.select("INBOX")
        assert typ == "OK" and data[0] == b"1"
        typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"through fd 3" in data[0][1]
        c.logout()
        # A reload (here through the admin API, and a SIGHUP with a changed
        # fd listener) keeps the inherited sockets: they cannot be bound again.
        assert admin(cell, "PUT", "/v1/domains/more.test")[0] == 201
        cell.config = json.loads(cell.config_path.read_text())
        for l in cell.config["listeners"]:
            if l["name"] == "mx-fd":
                l["proxyProtocol"] = True
        reloads = cell.log_path.read_bytes().count(b"reloaded")
        cell.reload()
        assert wait_for(lambda: cell.log_path.read_bytes().count(b"reloaded") > reloads), cell.log()
        mx_send(cell, BOB, msg("after reload"), port=mx_port)
        assert len(cell.messages(BOB)) == 1
        assert cell.stop() == 0
    finally:
        cell.stop()


@pytest.mark.parametrize("listener,why", [
    ({"name": "bad", "role": "mx", "fd": 2}, "fd must be 3 or more"),
    ({"name": "bad", "role": "mx", "fd": 3, "address": "127.0.0.1:0"}, "exactly one of address, path and fd"),
    ({"name": "bad", "role": "mx", "fd": 200}, "fd 200 is not open"),
])
def test_bad_fd_listeners_refused(tmp_path, listener, why):
    cfg = base_config()
    cfg["listeners"].append(listener)
    cell = Cell(tmp_path / "badfd", cfg)
    r = subprocess.run([ENGINE, "serve", "--config", str(cell.config_path)], capture_output=True, timeout=30)
    assert r.returncode != 0
    assert why in r.stderr.decode(), r.stderr.decode()
