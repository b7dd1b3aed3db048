"""offlineimap (offlineimap3) against a cell over IMAPS, run headless the
way a person reading mail offline would: sync to a Maildir, read, flag, move
and delete there (renaming, moving and removing files as a Maildir client
does), sync again, and the cell's store shows exactly those changes; a
third sync finds nothing to do."""
import imaplib
import re
import ssl
import subprocess

import pytest

from conftest import Cell, USERS, base_config
from helpers_mua import FLAGGED, MAILBOXES, SEEN, deliver, engine_complaints, message_id, snapshot

ALICE = "alice@example.test"
BOB = "bob@example.test"


@pytest.fixture
def ocell(tmp_path):
    cfg = base_config()
    cfg["listeners"] += [{"name": "imaps", "role": "imap", "address": "127.0.0.1:0", "implicitTLS": True}]
    c = Cell(tmp_path / "cell", cfg).start()
    yield c
    c.stop()


class OfflineIMAP:
    """offlineimap for one user of a cell, with its own Maildir, metadata
    and logs under `root`."""

    def __init__(self, cell, root, user=ALICE):
        self.root = root
        self.maildir = root / "mail"
        self.maildir.mkdir(parents=True)
        (root / "meta").mkdir()
        self.logs = []
        # The certificate names mx.example.test while we connect to
        # 127.0.0.1: pin the cell's own certificate by its fingerprint.
        der = subprocess.run(["openssl", "x509", "-in", str(cell.dir / "tls" / "cert.pem"), "-noout",
                              "-fingerprint", "-sha256"], capture_output=True, check=True).stdout.decode()
        fingerprint = der.strip().split("=", 1)[1]
        self.rc = root / "offlineimaprc"
        self.rc.write_text(f"""\
[general]
accounts = cell
metadata = {root}/meta
ui = basic
maxsyncaccounts = 1

[Account cell]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {self.maildir}

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {cell.port('imaps')}
remoteuser = {user}
remotepass = {USERS[user].replace('%', '%%')}
ssl = yes
cert_fingerprint = {fingerprint}
auth_mechanisms = PLAIN
maxconnections = 1
holdconnectionopen = no
""")

    def sync(self):
        """One full sync with the IMAP exchange logged; returns the log."""
        r = subprocess.run(["offlineimap", "-c", str(self.rc), "-o", "-u", "basic", "-d", "imap"],
                           capture_output=True, timeout=60, cwd=self.root)
        log = (r.stdout + r.stderr).decode(errors="replace")
        self.logs.append(log)
        assert r.returncode == 0, self.imap_exchange(log)
        assert not re.search(r"^(ERROR|WARNING)", log, re.M), self.imap_exchange(log)
        return log

    @staticmethod
    def imap_exchange(log):
        """The commands and responses in an offlineimap debug log."""
        return "\n".join(m.group(0) for m in re.finditer(r"[<>] b'.*", log)) + "\n" + \
            "\n".join(line for line in log.splitlines() if not line.startswith("[imap]"))

    def files(self, box):
        d = self.maildir / box
        return sorted(list((d / "new").iterdir()) + list((d / "cur").iterdir()))

    def by_message_id(self, box):
        out = {}
        for p in self.files(box):
            m = re.search(rb"(?im)^message-id:\s*(<[^>\r\n]+>)", p.read_bytes())
            out[m.group(1).decode()] = p
        return out

    def tree(self):
        return sorted(str(p.relative_to(self.maildir)) for box in MAILBOXES for p in self.files(box))


@pytest.fixture
def offlineimap(ocell, tmp_path):
    made = []

    def start(user=ALICE):
        o = OfflineIMAP(ocell, tmp_path / f"oi{len(made)}", user)
        made.append(o)
        return o

    yield start
    for o in made:
        # Shown only when the test failed: each sync's IMAP exchange.
        for i, log in enumerate(o.logs, 1):
            print(f"--- offlineimap sync {i} ---\n{o.imap_exchange(log)[-20000:]}")


def info_flags(path):
    """The Maildir flags of a file: the letters after ':2,'."""
    return path.name.rsplit(":2,", 1)[1] if ":2," in path.name else ""


def with_flags(path, directory, flags):
    """The file's new path in directory `cur` of a folder with these flags."""
    base = path.name.rsplit(":2,", 1)[0]
    return directory / "cur" / (base + ":2," + "".join(sorted(set(flags))))


def lf(data):
    return data.replace(b"\r\n", b"\n")


SUBJECTS = ["read me", "flag me", "read and archive me", "delete me", "leave me alone"]
MID = {s: "<" + s.replace(" ", "-") + "@remote.test>" for s in SUBJECTS}


def test_offlineimap_read_flag_move_delete_then_nothing_to_do(ocell, offlineimap):
    deliver(ocell, ALICE, SUBJECTS)
    deliver(ocell, BOB, ["for bob only"])
    before = snapshot(ocell, ALICE)
    bob_before = snapshot(ocell, BOB)
    raw = {message_id(ocell, ALICE, m["uid"], "INBOX"): ocell.message_bytes(ALICE, m["uid"], "INBOX")
           for m in ocell.messages(ALICE)}
    assert set(before["INBOX"]) == set(MID.values())

    oi = offlineimap()
    oi.sync()

    # Every mailbox became a Maildir folder; INBOX holds the five messages,
    # unread and byte for byte what the cell stores.
    assert all((oi.maildir / box / "cur").is_dir() for box in MAILBOXES)
    local = oi.by_message_id("INBOX")
    assert set(local) == set(MID.values())
    assert all(info_flags(p) == "" for p in local.values())
    assert all(lf(p.read_bytes()) == lf(raw[mid]) for mid, p in local.items())
    assert all(oi.files(box) == [] for box in MAILBOXES if box != "INBOX")
    assert snapshot(ocell, ALICE) == before  # fetching marked nothing read

    # Work in the Maildir as a client would.
    inbox, archive = oi.maildir / "INBOX", oi.maildir / "Archive"
    p = local[MID["read me"]]
    p.rename(with_flags(p, inbox, "S"))
    p = local[MID["flag me"]]
    p.rename(with_flags(p, inbox, "F"))
    p = local[MID["read and archive me"]]
    p.rename(with_flags(p, archive, "S"))
    local[MID["delete me"]].unlink()

    oi.sync()
    after = snapshot(ocell, ALICE)
    box = after["INBOX"]
    assert set(box) == {MID["read me"], MID["flag me"], MID["leave me alone"]}
    for s in ["read me", "flag me", "leave me alone"]:
        assert box[MID[s]][0] == before["INBOX"][MID[s]][0], s  # same UID
    assert box[MID["read me"]][1] == SEEN
    assert box[MID["flag me"]][1] == FLAGGED
    assert box[MID["leave me alone"]] == before["INBOX"][MID["leave me alone"]]
    assert all(kw == () for _, _, kw, _ in box.values())
    # The moved message is in Archive, read, with the same content.
    assert list(after["Archive"]) == [MID["read and archive me"]]
    uid, flags, kws, _ = after["Archive"][MID["read and archive me"]]
    assert (flags, kws) == (SEEN, ())
    assert lf(ocell.message_bytes(ALICE, uid, "Archive")) == lf(raw[MID["read and archive me"]])
    # The deleted message is nowhere; nothing else changed.
    assert all(MID["delete me"] not in msgs for msgs in after.values())
    for b in ["Sent", "Drafts", "Junk", "Trash"]:
        assert after[b] == before[b], b
    assert snapshot(ocell, BOB) == bob_before
    # Kept messages kept their content.
    for m in ocell.messages(ALICE):
        mid = message_id(ocell, ALICE, m["uid"], "INBOX")
        assert ocell.message_bytes(ALICE, m["uid"], "INBOX") == raw[mid]

    # The Maildir now knows the Archive copy by its new UID.
    moved = oi.files("Archive")
    assert len(moved) == 1 and f",U={uid}," in moved[0].name and info_flags(moved[0]) == "S"

    # A third sync has nothing to do either way.
    tree = oi.tree()
    oi.sync()
    assert oi.tree() == tree
    assert snapshot(ocell, ALICE) == after
    ok, report = ocell.check()
    assert ok, report
    assert engine_complaints(ocell) == []


def test_offlineimap_unflag_unread_and_server_side_changes(ocell, offlineimap):
    """Flags cleared in the Maildir are cleared in the cell, and what another
    client does in the cell (flag, move, delete) reaches the Maildir."""
    subjects = ["was flagged", "was read", "moved on server", "deleted on server"]
    mids = {s: "<" + s.replace(" ", "-") + "@remote.test>" for s in subjects}
    deliver(ocell, ALICE, subjects)
    uid_of = {message_id(ocell, ALICE, m["uid"], "INBOX"): m["uid"] for m in ocell.messages(ALICE)}

    oi = offlineimap()
    oi.sync()
    local = oi.by_message_id("INBOX")
    inbox = oi.maildir / "INBOX"
    p = local[mids["was flagged"]]
    p.rename(with_flags(p, inbox, "FS"))
    p = local[mids["was read"]]
    p.rename(with_flags(p, inbox, "S"))
    oi.sync()
    assert ocell.messages(ALICE)[0]["flags"] == SEEN | FLAGGED
    assert ocell.messages(ALICE)[1]["flags"] == SEEN

    # Clear them again locally: unflag one, mark the other unread.
    local = oi.by_message_id("INBOX")
    p = local[mids["was flagged"]]
    p.rename(with_flags(p, inbox, "S"))
    p = local[mids["was read"]]
    p.rename(with_flags(p, inbox, ""))

    # Meanwhile another client moves one message and deletes another.
    ctx = ssl.create_default_context(cafile=str(ocell.dir / "tls" / "cert.pem"))
    ctx.check_hostname = False
    imap = imaplib.IMAP4_SSL("127.0.0.1", ocell.port("imaps"), ssl_context=ctx)
    imap.login(ALICE, USERS[ALICE])
    imap.select("INBOX")
    assert imap.uid("MOVE", str(uid_of[mids["moved on server"]]), "Archive")[0] == "OK"
    assert imap.uid("STORE", str(uid_of[mids["deleted on server"]]), "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
    assert imap.expunge()[0] == "OK"
    imap.logout()

    oi.sync()
    msgs = {message_id(ocell, ALICE, m["uid"], "INBOX"): m["flags"] for m in ocell.messages(ALICE)}
    assert msgs == {mids["was flagged"]: SEEN, mids["was read"]: 0}
    local = oi.by_message_id("INBOX")
    assert set(local) == {mids["was flagged"], mids["was read"]}
    assert (info_flags(local[mids["was flagged"]]), info_flags(local[mids["was read"]])) == ("S", "")
    assert set(oi.by_message_id("Archive")) == {mids["moved on server"]}

    tree, server = oi.tree(), snapshot(ocell, ALICE)
    oi.sync()
    assert (oi.tree(), snapshot(ocell, ALICE)) == (tree, server)
    ok, report = ocell.check()
    assert ok, report
    assert engine_complaints(ocell) == []
