"""mbsync (isync) syncing a cell's mailboxes both ways over IMAPS: mail in
the cell reaches the Maildir, a message and a flag made in the Maildir reach
the cell, and a further run finds nothing to do."""
import pathlib
import re
import smtplib
import subprocess

import pytest

from conftest import Cell, USERS, base_config

ALICE = "alice@example.test"


@pytest.fixture
def mcell(tmp_path):
    cfg = base_config()
    cfg["listeners"] += [{"name": "imaps", "role": "imap", "address": "127.0.0.1:0", "implicitTLS": True}]
    c = Cell(tmp_path / "cell", cfg).start()
    yield c
    c.stop()


def mbsync(rc):
    r = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, timeout=60)
    log = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, log
    return log


def state(cell, maildir):
    """Everything a sync could change: the cell's messages with UIDs, flags
    and MODSEQs in every mailbox, and the Maildir's file names."""
    server = {box: [(m["uid"], m["flags"], m["modseq"]) for m in cell.messages(ALICE, box)]
              for box in ["INBOX", "Sent", "Drafts", "Junk", "Trash", "Archive"]}
    files = sorted(str(p.relative_to(maildir)) for p in maildir.rglob("*") if p.is_file() and ("/cur/" in str(p) or "/new/" in str(p)))
    return server, files


def test_mbsync_both_ways_then_nothing_to_do(mcell, tmp_path):
    s = smtplib.SMTP("127.0.0.1", mcell.port("mx"))
    for i in range(3):
        s.sendmail("x@remote.test", [ALICE], f"Subject: m{i}\r\nMessage-ID: <m{i}@remote.test>\r\n\r\nbody {i}\r\n".encode())
    s.quit()
    maildir = tmp_path / "mail"
    maildir.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount cell
Host 127.0.0.1
Port {mcell.port('imaps')}
User {ALICE}
Pass "{USERS[ALICE]}"
SSLType IMAPS
CertificateFile {mcell.dir}/tls/cert.pem

IMAPStore remote
Account cell

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    mbsync(rc)
    inbox = maildir / "INBOX"
    local = sorted((inbox / "cur").iterdir()) + sorted((inbox / "new").iterdir())
    assert len(local) == 3
    assert {(maildir / n).is_dir() for n in ["Sent", "Drafts", "Junk", "Trash", "Archive"]} == {True}

    # Near side changes: a new message and a flag on an existing one.
    (inbox / "new" / "1700000000.local.host").write_bytes(b"Subject: written offline\r\n\r\nfrom the laptop\r\n")
    first = local[0]
    flagged = first.with_name(first.name.split(":2,")[0] + ":2,F") if ":2," in first.name else first.with_name(first.name + ":2,F")
    target = inbox / "cur" / flagged.name
    first.rename(target)
    log = mbsync(rc)
    msgs = mcell.messages(ALICE)
    assert len(msgs) == 4
    assert any(m["flags"] & 4 for m in msgs)  # \\Flagged reached the cell
    assert b"written offline" in mcell.message_bytes(ALICE, msgs[-1]["uid"])

    # A third run has nothing to propagate either way.
    before = state(mcell, maildir)
    mbsync(rc)
    assert state(mcell, maildir) == before
    ok, report = mcell.check()
    assert ok, report
