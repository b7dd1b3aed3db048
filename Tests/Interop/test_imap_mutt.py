"""mutt driven headless over IMAPS against a cell: a person reads, flags,
saves to another folder and deletes messages in mutt's index, and every
effect shows up in the cell's store, with nothing else changed.

mutt runs in a pseudo-terminal of a private tmux server (helpers_mua.Terminal);
each step waits for what the screen shows before typing the next keys. mutt
keeps flag changes and deletions locally until the mailbox is synced (`$`) or
left (`q`, `c`), so the server is checked after those points.
"""
import imaplib
import re
import ssl

import pytest

from conftest import Cell, USERS, base_config
from helpers_mua import FLAGGED, SEEN, Terminal, deliver, engine_complaints, message_id, snapshot

ALICE = "alice@example.test"
BOB = "bob@example.test"

# The index line format the tests parse: number, status flags, subject.
INDEX_FORMAT = "%4C [%Z] %s"
# The end of mutt's status-line counters: the mailbox size, e.g. "0.6K]".
END = r" [0-9.]+[KMG]?\]"
INDEX_LINE = re.compile(r"^(?:->)?\s*(\d+) \[(.{3})\] (.*?)\s*$", re.M)


@pytest.fixture
def mcell(tmp_path):
    cfg = base_config()
    cfg["listeners"] += [{"name": "imaps", "role": "imap", "address": "127.0.0.1:0", "implicitTLS": True}]
    c = Cell(tmp_path / "cell", cfg).start()
    yield c
    c.stop()


class Mutt:
    """One mutt session for a user of a cell, with its own HOME (so no
    personal configuration or caches leak in) and a debug log of the IMAP
    exchange there."""

    def __init__(self, cell, home, user=ALICE):
        self.home = home
        home.mkdir(exist_ok=True)
        self.rc = home / "muttrc"
        port = cell.port("imaps")
        # The certificate names mx.example.test while mutt connects to
        # 127.0.0.1: trust the cell's own certificate, skip the name check.
        self.rc.write_text(f"""\
set folder="imaps://{user.replace('@', '%40')}@127.0.0.1:{port}/"
set spoolfile="+INBOX"
set imap_user="{user}"
set imap_pass="{USERS[user]}"
set ssl_force_tls=yes
set ssl_ca_certificates_file="{cell.dir}/tls/cert.pem"
set ssl_verify_host=no
set certificate_file="{home}/certificates"
set header_cache=""
set message_cachedir=""
set record=""
set sort=date-sent
set index_format="{INDEX_FORMAT}"
set arrow_cursor=yes
set resolve=no
set move=no
set mark_old=no
set delete=yes
set quit=yes
set confirmappend=no
set confirmcreate=no
set wait_key=no
set sleep_time=0
set pager_stop=yes
set help=no
set beep=no
set mail_check=60
set timeout=60
set mail_check_stats=no
ignore *
unignore from: subject: message-id:
""")
        self.term = Terminal(["mutt", "-n", "-F", str(self.rc), "-d", "2"],
                             env={"HOME": str(home), "TERM": "screen"}, cwd=home)

    def imap_log(self):
        """The IMAP commands and responses from mutt's debug log."""
        try:
            text = (self.home / ".muttdebug0").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(line for line in text.splitlines() if re.search(r"\d[<>] ", line) or not line.startswith("["))

    def index(self, screen):
        """The index as {number: (status, subject)} and the number under the cursor."""
        rows = {int(n): (st, subj) for n, st, subj in INDEX_LINE.findall(screen)}
        cur = re.search(r"^->\s*(\d+) ", screen, re.M)
        return rows, int(cur.group(1)) if cur else None

    def status(self, pattern, timeout=10):
        """Waits for mutt's status line to match, e.g. r"=INBOX \\[Msgs:5 "."""
        return self.term.wait_for(r"^-.-Mutt: " + pattern, timeout=timeout)

    def jump(self, n):
        self.term.type(str(n))
        self.term.send("Enter")
        return self.term.wait_for(rf"^->\s*{n} \[")

    def close(self):
        self.term.close()


@pytest.fixture
def mutt_session(mcell, tmp_path):
    made = []

    def start(user=ALICE):
        m = Mutt(mcell, tmp_path / f"home{len(made)}", user)
        made.append(m)
        return m

    yield start
    for m in made:
        # Shown only when the test failed: the IMAP exchange for diagnosis.
        print(f"--- mutt IMAP log ({m.home}) ---\n{m.imap_log()[-20000:]}")
        m.close()


def bodies(cell, user, box="INBOX"):
    return {message_id(cell, user, m["uid"], box): cell.message_bytes(user, m["uid"], box)
            for m in cell.messages(user, box)}


SUBJECTS = ["read me", "flag me", "archive me", "delete me", "leave me alone"]
MID = {s: "<" + s.replace(" ", "-") + "@remote.test>" for s in SUBJECTS}


def test_mutt_reads_flags_moves_and_deletes(mcell, mutt_session):
    deliver(mcell, ALICE, SUBJECTS)
    deliver(mcell, BOB, ["for bob only"])
    before = snapshot(mcell, ALICE)
    bob_before = snapshot(mcell, BOB)
    raw_before = bodies(mcell, ALICE)
    assert set(before["INBOX"]) == set(MID.values())
    assert all(flags == 0 for _, flags, _, _ in before["INBOX"].values())

    mutt = mutt_session()
    t = mutt.term

    # The index lists every subject, all new, in date order.
    screen = mutt.status(r"=INBOX \[Msgs:5 New:5" + END)
    rows, cursor = mutt.index(screen)
    assert {n: subj for n, (_, subj) in rows.items()} == dict(enumerate(SUBJECTS, 1))
    assert all(st.startswith("N") for st, _ in rows.values())
    assert cursor == 1

    # Read: display message 1 in the pager, then back to the index.
    mutt.jump(1)
    t.send("Enter")
    screen = t.wait_for(r"^body of read me")
    assert re.search(r"^Subject: read me", screen, re.M)
    t.send("q")
    screen = mutt.status(r"=INBOX \[Msgs:5 New:4" + END)
    assert mutt.index(screen)[0][1][0].strip() == ""

    # Flag message 2.
    mutt.jump(2)
    t.send("F")
    screen = mutt.status(r"=INBOX \[Msgs:5 New:4 Flag:1 ")
    assert mutt.index(screen)[0][2][0] == "N !"

    # Save message 3 to Archive: mutt copies it there at once and marks the
    # original deleted.
    mutt.jump(3)
    t.send("s")
    t.wait_for(r"^Save to mailbox")
    t.send("C-u")
    t.type("=Archive")
    t.send("Enter")
    screen = mutt.status(r"=INBOX \[Msgs:5 New:4 Del:1 Flag:1 ")
    assert mutt.index(screen)[0][3][0][1] == "D"
    assert [message_id(mcell, ALICE, m["uid"], "Archive") for m in mcell.messages(ALICE, "Archive")] == [MID["archive me"]]

    # Delete message 4.
    mutt.jump(4)
    t.send("d")
    screen = mutt.status(r"=INBOX \[Msgs:5 New:4 Del:2 Flag:1 ")
    assert mutt.index(screen)[0][4][0][1] == "D"

    # Nothing but the saved copy has reached the server before the sync.
    mid_sync = snapshot(mcell, ALICE)
    assert mid_sync["INBOX"] == before["INBOX"]

    # Sync: flags are stored and the deleted messages expunged.
    t.send("$")
    screen = mutt.status(r"=INBOX \[Msgs:3 New:2 Flag:1" + END)
    rows, _ = mutt.index(screen)
    assert [subj for _, (_, subj) in sorted(rows.items())] == ["read me", "flag me", "leave me alone"]

    after = snapshot(mcell, ALICE)
    inbox = after["INBOX"]
    assert set(inbox) == {MID["read me"], MID["flag me"], MID["leave me alone"]}
    # Same messages (same UIDs), exactly the flags mutt set.
    for s in ["read me", "flag me", "leave me alone"]:
        assert inbox[MID[s]][0] == before["INBOX"][MID[s]][0], s
    assert inbox[MID["read me"]][1] == SEEN
    assert inbox[MID["flag me"]][1] == FLAGGED
    assert inbox[MID["leave me alone"]] == before["INBOX"][MID["leave me alone"]]
    assert all(kw == () for _, _, kw, _ in inbox.values())
    # The saved message is in Archive, unread and byte for byte the same.
    archive = after["Archive"]
    assert list(archive) == [MID["archive me"]]
    assert archive[MID["archive me"]][1] == 0
    assert bodies(mcell, ALICE, "Archive")[MID["archive me"]] == raw_before[MID["archive me"]]
    # The deleted message is nowhere; the other mailboxes did not change.
    assert all(MID["delete me"] not in msgs for msgs in after.values())
    for box in ["Sent", "Drafts", "Junk", "Trash"]:
        assert after[box] == before[box], box
    assert snapshot(mcell, BOB) == bob_before
    # Messages kept their content.
    kept = bodies(mcell, ALICE)
    assert all(kept[mid] == raw_before[mid] for mid in kept)

    # mutt itself finds the saved message in Archive.
    t.send("c")
    t.wait_for(r"^Open mailbox")
    t.send("C-u")
    t.type("=Archive")
    t.send("Enter")
    screen = mutt.status(r"=Archive \[Msgs:1 New:1" + END)
    assert {n: subj for n, (_, subj) in mutt.index(screen)[0].items()} == {1: "archive me"}

    # Leaving changes nothing more.
    t.send("q")
    assert t.exit_status() == 0
    assert snapshot(mcell, ALICE) == after
    ok, report = mcell.check()
    assert ok, report
    assert engine_complaints(mcell) == []


def preset_flags(cell, user, flags_by_mid):
    """Sets flags on INBOX messages directly over IMAP before mutt opens it."""
    ctx = ssl.create_default_context(cafile=str(cell.dir / "tls" / "cert.pem"))
    ctx.check_hostname = False
    imap = imaplib.IMAP4_SSL("127.0.0.1", cell.port("imaps"), ssl_context=ctx)
    try:
        imap.login(user, USERS[user])
        imap.select("INBOX")
        for m in cell.messages(user):
            flags = flags_by_mid.get(message_id(cell, user, m["uid"], "INBOX"))
            if flags:
                typ, _ = imap.uid("STORE", str(m["uid"]), "+FLAGS.SILENT", f"({flags})")
                assert typ == "OK"
        imap.logout()
    finally:
        try:
            imap.shutdown()
        except OSError:
            pass


def test_mutt_unflags_marks_unread_undeletes_and_syncs_on_quit(mcell, mutt_session):
    subjects = ["seen and flagged", "deleted then kept", "deleted on quit", "untouched"]
    mids = {s: "<" + s.replace(" ", "-") + "@remote.test>" for s in subjects}
    deliver(mcell, ALICE, subjects)
    preset_flags(mcell, ALICE, {mids["seen and flagged"]: r"\Seen \Flagged", mids["untouched"]: r"\Seen"})
    before = snapshot(mcell, ALICE)
    assert before["INBOX"][mids["seen and flagged"]][1] == SEEN | FLAGGED

    mutt = mutt_session()
    t = mutt.term
    screen = mutt.status(r"=INBOX \[Msgs:4 New:2 Flag:1 ")
    rows, _ = mutt.index(screen)
    assert rows[1] == ("  !", "seen and flagged")
    assert rows[4] == ("   ", "untouched")

    # Unflag message 1 and mark it unread again.
    mutt.jump(1)
    t.send("F")
    mutt.status(r"=INBOX \[Msgs:4 New:2" + END)
    t.send("N")
    screen = mutt.status(r"=INBOX \[Msgs:4 New:3" + END)
    assert mutt.index(screen)[0][1][0] == "N  "

    # Delete message 2 and take it back; delete message 3 for good.
    mutt.jump(2)
    t.send("d")
    mutt.status(r"=INBOX \[Msgs:4 New:3 Del:1 ")
    t.send("u")
    mutt.status(r"=INBOX \[Msgs:4 New:3" + END)
    mutt.jump(3)
    t.send("d")
    mutt.status(r"=INBOX \[Msgs:4 New:3 Del:1 ")
    assert snapshot(mcell, ALICE) == before

    # Quitting syncs the mailbox.
    t.send("q")
    assert t.exit_status() == 0
    after = snapshot(mcell, ALICE)
    inbox = after["INBOX"]
    assert set(inbox) == {mids["seen and flagged"], mids["deleted then kept"], mids["untouched"]}
    assert inbox[mids["seen and flagged"]][:2] == (before["INBOX"][mids["seen and flagged"]][0], 0)
    assert inbox[mids["deleted then kept"]] == before["INBOX"][mids["deleted then kept"]]
    assert inbox[mids["untouched"]] == before["INBOX"][mids["untouched"]]
    for box in ["Sent", "Drafts", "Junk", "Trash", "Archive"]:
        assert after[box] == before[box], box
    ok, report = mcell.check()
    assert ok, report
    assert engine_complaints(mcell) == []
