"""Helpers for driving real mail user agents headless against a cell: a
terminal of our own (a private tmux server) that runs a curses client and
lets a test read its screen, plus SMTP delivery and a snapshot of a user's
whole store for "nothing else changed" checks.

Everything here talks only to 127.0.0.1 and to files under the test's
temporary directory.
"""
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time

MAILBOXES = ["INBOX", "Sent", "Drafts", "Junk", "Trash", "Archive"]

# The engine's system flag bits as `mailbox list` reports them.
SEEN, ANSWERED, FLAGGED, DELETED, DRAFT = 1, 2, 4, 8, 16


def deliver(cell, to, subjects, sender="x@remote.test"):
    """Delivers one plain message per subject through the cell's MX listener,
    with fixed dates one minute apart so a client sorting by date sees them in
    the order given. Returns the Message-IDs."""
    ids = []
    s = smtplib.SMTP("127.0.0.1", cell.port("mx"), timeout=10)
    try:
        for i, subject in enumerate(subjects):
            mid = "<" + re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-") + "@remote.test>"
            ids.append(mid)
            s.sendmail(sender, [to], (
                f"From: Sender {i} <{sender}>\r\n"
                f"To: {to}\r\n"
                f"Subject: {subject}\r\n"
                f"Message-ID: {mid}\r\n"
                f"Date: Mon, 1 Jan 2024 10:{i:02d}:00 +0000\r\n"
                f"\r\n"
                f"body of {subject}\r\n").encode())
    finally:
        s.quit()
    return ids


def message_id(cell, user, uid, mailbox):
    raw = cell.message_bytes(user, uid, mailbox)
    m = re.search(rb"(?im)^message-id:\s*(<[^>\r\n]+>)", raw)
    return m.group(1).decode() if m else None


def snapshot(cell, user, mailboxes=MAILBOXES):
    """Every mailbox of a user as {mailbox: {message_id: (uid, flags, keywords, modseq)}}."""
    out = {}
    for box in mailboxes:
        out[box] = {message_id(cell, user, m["uid"], box): (m["uid"], m["flags"], tuple(m["keywords"]), m["modseq"])
                    for m in cell.messages(user, box)}
    return out


def engine_complaints(cell):
    """Lines the engine logged at warning level or above."""
    try:
        text = cell.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines()
            if re.match(r"^\S+ (warning|error|critical) ", line)]


class Terminal:
    """A curses program in a pseudo-terminal owned by a private tmux server.

    The screen is read back as plain text with `capture-pane`, so a test can
    wait for what a person would see before typing the next keys."""

    def __init__(self, argv, env=None, cwd=None, width=120, height=30):
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed")
        # A short directory: unix socket paths are limited to ~108 bytes.
        self.dir = tempfile.mkdtemp(prefix="pcmua")
        self.sock = os.path.join(self.dir, "tmux.sock")
        self.status = os.path.join(self.dir, "status")
        # The program's exit status lands in a file; the shell then stays up
        # briefly so the last screen can still be captured.
        inner = " ".join(_quote(a) for a in argv)
        script = f"{inner}; echo $? > {_quote(self.status)}; sleep 30"
        base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        base_env.update(env or {})
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", "mua", "-x", str(width), "-y", str(height),
                   *[a for k, v in base_env.items() for a in ("-e", f"{k}={v}")],
                   *(["-c", str(cwd)] if cwd else []), "sh", "-c", script)

    def _tmux(self, *args, check=True):
        return subprocess.run(["tmux", "-S", self.sock, *args], capture_output=True, check=check)

    def send(self, *keys, literal=False):
        """Types keys; tmux key names (Enter, Escape, C-u) unless literal."""
        self._tmux("send-keys", "-t", "mua", *(["-l"] if literal else []), *keys)

    def type(self, text):
        self.send(text, literal=True)

    def screen(self):
        r = self._tmux("capture-pane", "-p", "-t", "mua", check=False)
        return r.stdout.decode("utf-8", "replace")

    def wait_for(self, pattern, timeout=10, absent=None):
        """Waits until the screen matches `pattern` (a regex) and, when given,
        no longer matches `absent`; returns the screen."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern, re.M)
        nx = re.compile(absent, re.M) if absent else None
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if rx.search(screen) and not (nx and nx.search(screen)):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"screen never showed {pattern!r}"
                             + (f" without {absent!r}" if absent else "") + f":\n{screen}")

    def exit_status(self, timeout=10):
        """The program's exit status once it has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                text = open(self.status).read().strip()
                if text:
                    return int(text)
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        raise AssertionError("program did not exit:\n" + self.screen())

    def close(self):
        self._tmux("kill-server", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def _quote(s):
    s = str(s)
    return "'" + s.replace("'", "'\"'\"'") + "'"
