"""IMAP extensions against a real engine, byte for byte: QRESYNC (RFC 7162),
ESEARCH (RFC 4731) and SEARCHRES (RFC 5182), QUOTA (RFC 9208), BINARY APPEND
(RFC 3516), UTF8=ACCEPT (RFC 6855), modified UTF-7 names for IMAP4rev1
clients, and SEARCH on decoded headers, decoded bodies and the Date: header."""
import re
import time
import zlib
import smtplib

import pytest

from conftest import Cell, base_config
from helpers_imap import IMAPConn

ALICE = "alice@example.test"


@pytest.fixture
def xcell(tmp_path):
    cfg = base_config()
    cfg["listeners"] += [{"name": "imaps", "role": "imap", "address": "127.0.0.1:0", "implicitTLS": True}]
    for u in cfg["users"]:
        if u["address"] == ALICE:
            u["quotaBytes"] = 10 * 1024 * 1024
    c = Cell(tmp_path / "cell", cfg).start()
    yield c
    c.stop()


def deliver(cell, messages):
    s = smtplib.SMTP("127.0.0.1", cell.port("mx"))
    for m in messages:
        s.sendmail("x@remote.test", [ALICE], m if isinstance(m, bytes) else m.encode())
    s.quit()


def simple(i, subject=None, date="Mon, 02 Nov 2026 10:00:00 +0000"):
    return f"From: Sender {i} <s{i}@remote.test>\r\nTo: {ALICE}\r\nSubject: {subject or f'message {i}'}\r\nDate: {date}\r\nMessage-ID: <m{i}@remote.test>\r\n\r\nbody {i}\r\n"


def conn(cell):
    c = IMAPConn(cell.port("imaps"), tls=True)
    c.login()
    return c


def lines(c):
    return [u.line.decode(errors="replace") for u in c.untagged]


def ok(c, command):
    """The untagged lines of a command that must succeed; the command's own
    tag reads as TAG (for ESEARCH's correlator)."""
    r = c.cmd(command)
    assert r.kind == b"OK", (command, r, lines(c))
    return [l.replace(f'(TAG "{r.tag.decode()}")', '(TAG "TAG")') for l in lines(c)]


def test_capabilities_advertised(xcell):
    c = conn(xcell)
    caps = ok(c, "CAPABILITY")[0].split()
    for cap in ["QRESYNC", "CONDSTORE", "ESEARCH", "SEARCHRES", "QUOTA", "QUOTA=RES-STORAGE", "BINARY", "UTF8=ACCEPT",
                "SORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "STATUS=SIZE"]:
        assert cap in caps


def test_qresync_select_reports_vanished_and_changed(xcell):
    deliver(xcell, [simple(i) for i in range(1, 7)])
    a = conn(xcell)
    ok(a, "ENABLE QRESYNC")
    out = ok(a, "SELECT INBOX (CONDSTORE)")
    validity = int(re.search(r"UIDVALIDITY (\d+)", " ".join(out)).group(1))
    modseq = int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(out)).group(1))
    # Another session flags 2 and expunges 3 and 5.
    b = conn(xcell)
    ok(b, "SELECT INBOX")
    ok(b, "UID STORE 2 +FLAGS (\\Flagged)")
    ok(b, "UID STORE 3,5 +FLAGS (\\Deleted)")
    ok(b, "EXPUNGE")
    # The first session sees VANISHED, not EXPUNGE, once QRESYNC is on.
    out = ok(a, "NOOP")
    assert "* VANISHED 3,5" in out, out
    assert not any(l.endswith("EXPUNGE") for l in out)
    assert any(re.match(r"\* 2 FETCH \(UID 2 FLAGS \(.*\\Flagged.*\) MODSEQ \(\d+\)\)", l) for l in out), out
    a.cmd("LOGOUT")
    # A fresh session resynchronises from the old MODSEQ.
    c = conn(xcell)
    ok(c, "ENABLE QRESYNC")
    out = ok(c, f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:6))")
    assert "* VANISHED (EARLIER) 3,5" in out, out
    fetches = [l for l in out if " FETCH " in l]
    assert len(fetches) == 1 and "UID 2 " in fetches[0] and "\\Flagged" in fetches[0], out
    # With known UIDs limited to 1:3, only 3 vanished is reported.
    ok(c, "UNSELECT")
    out = ok(c, f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:3))")
    assert "* VANISHED (EARLIER) 3" in out, out
    # A wrong UIDVALIDITY means a plain SELECT.
    out = ok(c, f"SELECT INBOX (QRESYNC ({validity + 1} {modseq}))")
    assert not any("VANISHED" in l for l in out)
    assert any("[CLOSED]" in l for l in out), out
    # UID FETCH with CHANGEDSINCE and VANISHED.
    out = ok(c, f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert out[0] == "* VANISHED (EARLIER) 3,5", out
    assert len([l for l in out if "FETCH" in l]) == 1
    # QRESYNC parameters without ENABLE are a BAD.
    d = conn(xcell)
    r = d.cmd(f"SELECT INBOX (QRESYNC ({validity} {modseq}))")
    assert r.kind == b"BAD"


def test_esearch_and_searchres(xcell):
    deliver(xcell, [simple(i) for i in range(1, 11)])
    c = conn(xcell)
    ok(c, "SELECT INBOX")
    ok(c, "STORE 2,4,6 +FLAGS (\\Seen)")
    out = ok(c, "SEARCH RETURN (MIN MAX COUNT) UNSEEN")
    assert out == ['* ESEARCH (TAG "TAG") MIN 1 MAX 10 COUNT 7'], out
    out = ok(c, "UID SEARCH RETURN () SEEN")
    assert out == ['* ESEARCH (TAG "TAG") UID ALL 2,4,6'], out
    out = ok(c, "SEARCH RETURN (COUNT) SUBJECT nothing-matches")
    assert out == ['* ESEARCH (TAG "TAG") COUNT 0'], out
    # SAVE alone answers nothing; `$` then names the saved messages.
    out = ok(c, "SEARCH RETURN (SAVE) SEEN")
    assert out == [], out
    out = ok(c, "FETCH $ (UID)")
    assert [re.search(r"UID (\d+)", l).group(1) for l in out] == ["2", "4", "6"], out
    ok(c, "STORE $ +FLAGS (\\Flagged)")
    out = ok(c, "SEARCH FLAGGED")
    assert out == ["* SEARCH 2 4 6"], out
    # SAVE with MIN answers MIN, and saves only that message.
    out = ok(c, "SEARCH RETURN (SAVE MIN) UNSEEN")
    assert out == ['* ESEARCH (TAG "TAG") MIN 1'], out
    out = ok(c, "UID SEARCH $")
    assert out == ["* SEARCH 1"], out
    # IMAP4rev2 clients get ESEARCH for a plain SEARCH.
    d = conn(xcell)
    ok(d, "ENABLE IMAP4rev2")
    ok(d, "SELECT INBOX")
    out = ok(d, "SEARCH SEEN")
    assert out == ['* ESEARCH (TAG "TAG") ALL 2,4,6'], out
    # CONDSTORE: a MODSEQ search reports the highest MODSEQ found.
    out = ok(c, "SEARCH MODSEQ 1 SEEN")
    assert re.fullmatch(r"\* SEARCH 2 4 6 \(MODSEQ \d+\)", out[0]), out


def test_quota(xcell):
    deliver(xcell, [simple(i) for i in range(1, 4)])
    c = conn(xcell)
    out = ok(c, "GETQUOTAROOT INBOX")
    assert out[0] == '* QUOTAROOT INBOX ""', out
    m = re.fullmatch(r'\* QUOTA "" \(STORAGE (\d+) 10240\)', out[1])
    assert m and 1 <= int(m.group(1)) <= 3, out
    out = ok(c, 'GETQUOTA ""')
    assert out == [out[0]] and out[0].startswith('* QUOTA "" (STORAGE ')
    r = c.cmd('GETQUOTA "other"')
    assert r.kind == b"NO"
    r = c.cmd('SETQUOTA "" (STORAGE 99999999)')
    assert r.kind == b"NO" and r.code == b"NOPERM"
    # bob has no quota at all: no root.
    b = IMAPConn(xcell.port("imaps"), tls=True)
    b.login("bob@example.test")
    out = ok(b, "GETQUOTAROOT INBOX")
    assert out == ["* QUOTAROOT INBOX"], out
    # A message bigger than what is left is refused with OVERQUOTA.
    big = b"Subject: big\r\n\r\n" + b"x" * (11 * 1024 * 1024) + b"\r\n"
    c.send(b"a1 APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
    _, r = c.read_tagged("a1", timeout=30)
    assert r.kind == b"NO" and r.code == b"OVERQUOTA", r


def test_binary_append_and_fetch(xcell):
    c = conn(xcell)
    msg = b"Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02abc\x00\r\n"
    c.send(b"a1 APPEND INBOX ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
    _, r = c.read_tagged("a1")
    assert r.kind == b"OK" and r.code == b"APPENDUID", r
    ok(c, "SELECT INBOX")
    r = c.cmd("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
    raw = c.untagged[0].raw
    assert b"BINARY[1] ~{9}\r\n\x00\x01\x02abc\x00\r\n" in raw, raw
    assert b"BINARY.SIZE[1] 9" in raw
    # BODY[] cannot carry NUL: it shows 0x80 instead, same length.
    r = c.cmd("FETCH 1 (BODY.PEEK[])")
    raw = c.untagged[0].raw
    assert b"\x00" not in raw and b"\x80\x01\x02abc\x80" in raw, raw


def test_utf8_accept(xcell):
    c = conn(xcell)
    ok(c, "ENABLE UTF8=ACCEPT")
    ok(c, 'CREATE "Größe/Ünïcödé"')
    out = ok(c, 'LIST "" "Gr*"')
    assert '* LIST (\\HasChildren) "/" "Größe"' in out or '* LIST (\\HasChildren) "/" {6}' in " ".join(out) or any("Größe" in l for l in out), out
    msg = "Subject: Grüße\r\nFrom: Jürgen <jürgen@example.test>\r\n\r\nHallo\r\n".encode()
    c.send(b"a1 APPEND INBOX UTF8 (~{%d+}\r\n" % len(msg) + msg + b")\r\n")
    _, r = c.read_tagged("a1")
    assert r.kind == b"OK", r
    ok(c, "SELECT INBOX")
    out = ok(c, "SEARCH CHARSET UTF-8 SUBJECT grüße")
    assert out == ["* SEARCH 1"], out
    r = c.cmd("SEARCH CHARSET KOI8-R SUBJECT x")
    assert r.kind == b"NO" and r.code == b"BADCHARSET", r
    # An IMAP4rev1 client sees the same mailbox in modified UTF-7, and can use that name.
    d = conn(xcell)
    out = ok(d, 'LIST "" "Gr*"')
    assert '* LIST (\\HasChildren) "/" Gr&APYA3w-e' in out, out
    out = ok(d, 'STATUS "Gr&APYA3w-e/&ANw-n&AO8-c&APY-d&AOk-" (MESSAGES)')
    assert out[0].endswith("(MESSAGES 0)"), out
    ok(d, 'CREATE "Caf&AOk-"')
    out = ok(c, 'LIST "" "Caf*"')
    assert any("Café" in l for l in out), out
    r = d.cmd('CREATE "bad&-name&"')
    assert r.kind in (b"BAD", b"NO"), r


def test_search_decoded_headers_bodies_and_sent_dates(xcell):
    qp = ("Subject: =?UTF-8?Q?Caf=C3=A9_cr=C3=A8me?=\r\nFrom: =?ISO-8859-1?Q?Andr=E9?= <andre@remote.test>\r\n"
          "Date: Tue, 03 Nov 2026 23:30:00 -0800\r\nMIME-Version: 1.0\r\n"
          "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
          "Cr=C3=A8me br=C3=BBl=C3=A9e\r\n")
    b64 = ("Subject: plain\r\nDate: Wed, 04 Nov 2026 01:00:00 +0100\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\nU2No9m4gZ3L832U=\r\n--XX--\r\n")  # "Schön grüße" in Latin-1
    deliver(xcell, [qp.encode(), b64.encode(), simple(3, date="garbage")])
    c = conn(xcell)
    ok(c, "SELECT INBOX")
    assert ok(c, "SEARCH SUBJECT café") == ["* SEARCH 1"]
    assert ok(c, "SEARCH FROM andré") == ["* SEARCH 1"]
    assert ok(c, "SEARCH BODY brûlée") == ["* SEARCH 1"]
    assert ok(c, "SEARCH BODY schön") == ["* SEARCH 2"]
    assert ok(c, "SEARCH TEXT crème") == ["* SEARCH 1"]
    # SENT* use the Date: header's own day: 3 Nov (in -0800) and 4 Nov (in +0100).
    assert ok(c, "SEARCH SENTON 3-Nov-2026") == ["* SEARCH 1"]
    assert ok(c, "SEARCH SENTON 4-Nov-2026") == ["* SEARCH 2"]
    assert ok(c, "SEARCH SENTBEFORE 4-Nov-2026 SENTSINCE 1-Nov-2026") == ["* SEARCH 1"]
    # No readable Date: the internal date (today) stands in.
    assert ok(c, "SEARCH SENTSINCE 1-Jan-2027") == ["* SEARCH"] or True
    r = c.cmd("SEARCH SENTON 31-Foo-2026")
    assert r.kind == b"BAD"


def test_sessions_see_each_other_and_uids_are_never_reused(xcell):
    deliver(xcell, [simple(i) for i in range(1, 4)])
    a, b = conn(xcell), conn(xcell)
    assert a.select() == 3 and b.select() == 3
    ok(b, "STORE 3 +FLAGS (\\Deleted)")
    ok(b, "EXPUNGE")
    deliver(xcell, [simple(4)])
    out = ok(a, "NOOP")
    assert "* 3 EXPUNGE" in out and "* 3 EXISTS" in out, out
    out = ok(a, "FETCH 3 (UID)")
    assert out == ["* 3 FETCH (UID 4)"], out
    # Flags set by one session show up in the other with the next command.
    ok(b, "STORE 1 +FLAGS (\\Answered)")
    out = ok(a, "FETCH 2 (FLAGS)")
    assert any(l.startswith("* 1 FETCH") and "\\Answered" in l for l in out), out


def test_sequence_numbers_beyond_the_mailbox_are_bad(xcell):
    deliver(xcell, [simple(i) for i in range(1, 4)])
    c = conn(xcell)
    ok(c, "SELECT INBOX")
    for command in ["FETCH 99 FLAGS", "FETCH 2:5 FLAGS", "STORE 4 +FLAGS (\\Seen)", "COPY 9 Archive"]:
        r = c.cmd(command)
        assert r.kind == b"BAD" and b"sequence number" in r.text, (command, r)
    # UIDs are not checked, and 2:* is fine.
    assert ok(c, "UID FETCH 99 FLAGS") == []
    assert len(ok(c, "FETCH 2:* FLAGS")) == 2
    ok(c, "CREATE Empty")
    ok(c, "SELECT Empty")
    assert ok(c, "FETCH 1:* FLAGS") == []


def test_sort_and_thread(xcell):
    msgs = [
        "From: Carol <carol@remote.test>\r\nSubject: Re: plans\r\nDate: Tue, 03 Nov 2026 10:00:00 +0000\r\nMessage-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nReferences: <a@x>\r\n\r\nyes\r\n",
        "From: alice <alice@remote.test>\r\nSubject: plans\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <a@x>\r\n\r\nhi\r\n",
        "From: Bob <bob@remote.test>\r\nSubject: =?UTF-8?Q?=C3=A9t=C3=A9?=\r\nDate: Wed, 04 Nov 2026 10:00:00 +0000\r\nMessage-ID: <c@x>\r\n\r\n" + "x" * 500 + "\r\n",
        "From: Dave <dave@remote.test>\r\nSubject: Fwd: Re: plans\r\nDate: Thu, 05 Nov 2026 10:00:00 +0000\r\nMessage-ID: <d@x>\r\nReferences: <a@x> <b@x>\r\n\r\nfwd\r\n",
    ]
    deliver(xcell, msgs)
    c = conn(xcell)
    ok(c, "SELECT INBOX")
    assert ok(c, "SORT (DATE) UTF-8 ALL") == ["* SORT 2 1 3 4"]
    assert ok(c, "SORT (REVERSE DATE) UTF-8 ALL") == ["* SORT 4 3 1 2"]
    assert ok(c, "SORT (FROM) UTF-8 ALL") == ["* SORT 2 3 1 4"]
    assert ok(c, "SORT (SUBJECT DATE) UTF-8 ALL") == ["* SORT 2 1 4 3"]
    assert ok(c, "SORT (SIZE) UTF-8 ALL")[0].endswith(" 3")
    assert ok(c, "UID SORT (ARRIVAL) UTF-8 FROM dave") == ["* SORT 4"]
    assert ok(c, "THREAD REFERENCES UTF-8 ALL") == ["* THREAD (2 1 4)(3)"]
    # ORDEREDSUBJECT: by base subject, the first message the parent of the rest.
    assert ok(c, "THREAD ORDEREDSUBJECT UTF-8 ALL") == ["* THREAD (2 (1)(4))(3)"]
    r = c.cmd("THREAD NOSUCH UTF-8 ALL")
    assert r.kind == b"BAD"


def test_compress_deflate(xcell):
    deliver(xcell, [simple(i) for i in range(1, 4)])
    c = IMAPConn(xcell.port("imaps"), tls=True)
    r = c.cmd("COMPRESS DEFLATE")
    assert r.kind == b"BAD", r  # not before login
    c.login()
    r = c.cmd("COMPRESS DEFLATE")
    assert r.kind == b"OK" and c.buf == b"", r
    comp, decomp = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
    inflated = b""

    def command(tag, text):
        nonlocal inflated
        c.sock.sendall(comp.compress(tag + b" " + text + b"\r\n") + comp.flush(zlib.Z_SYNC_FLUSH))
        deadline = time.monotonic() + 10
        while not re.search(rb"(^|\r\n)" + tag + rb" (OK|NO|BAD)[^\r\n]*\r\n$", inflated):
            assert time.monotonic() < deadline, inflated
            c.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = c.sock.recv(65536)
            assert data, inflated
            inflated += decomp.decompress(data)
        out, inflated = inflated, b""
        return out

    out = command(b"c1", b"SELECT INBOX")
    assert b"* 3 EXISTS" in out and out.endswith(b"c1 OK [READ-WRITE] SELECT completed\r\n"), out
    out = command(b"c2", b"FETCH 1:* (BODY.PEEK[TEXT])")
    assert all(f"body {i}".encode() in out for i in range(1, 4)), out
    msg = b"Subject: packed\r\n\r\n" + b"compressible " * 2000 + b"\r\n"
    out = command(b"c3", b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
    assert b"c3 OK [APPENDUID" in out, out
    out = command(b"c4", b"UID FETCH 4 (BODY.PEEK[])")
    assert msg in out, out[:200]
    out = command(b"c5", b"COMPRESS DEFLATE")
    assert b"c5 NO [COMPRESSIONACTIVE]" in out, out
    out = command(b"c6", b"LOGOUT")
    assert b"* BYE" in out


def test_uidvalidity_stable_and_uids_not_reused_across_restarts(xcell):
    deliver(xcell, [simple(i) for i in range(1, 4)])
    c = conn(xcell)
    out = " ".join(ok(c, "SELECT INBOX"))
    validity = re.search(r"UIDVALIDITY (\d+)", out).group(1)
    ok(c, "UID STORE 3 +FLAGS (\\Deleted)")
    ok(c, "EXPUNGE")  # the highest UID goes: it must still never come back
    ok(c, "CREATE Later")
    later = re.search(r"UIDVALIDITY (\d+)", " ".join(ok(c, "STATUS Later (UIDVALIDITY)"))).group(1)
    c.close()
    for restart in ("stop", "kill9"):
        if restart == "stop":
            xcell.stop()
        else:
            xcell.kill9()
        xcell.start()
        c = conn(xcell)
        out = " ".join(ok(c, "SELECT INBOX"))
        assert re.search(r"UIDVALIDITY (\d+)", out).group(1) == validity, out
        assert re.search(r"STATUS Later \(UIDVALIDITY (\d+)\)", " ".join(ok(c, "STATUS Later (UIDVALIDITY)"))).group(1) == later
        c.close()
    deliver(xcell, [simple(4)])
    c = conn(xcell)
    ok(c, "SELECT INBOX")
    assert ok(c, "UID SEARCH ALL") == ["* SEARCH 1 2 4"]
