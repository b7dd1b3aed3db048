"""Mail the control plane sends to customers (the sign-up verification link)
travels through the provider's SMTP relay: here a real SMTP server (aiosmtpd)
on loopback. Accepted mail leaves the outbox; a refused one moves to
outbox/failed; with the relay down the mail waits and goes later."""
import json, os, pathlib, re, shutil, signal, socket, ssl, subprocess, tempfile, time, urllib.request

import pytest

import aiosmtpd.controller as aiosmtpd  # scripts/test.sh installs it
from aiosmtpd.smtp import SMTP as _SMTPServer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
POSTCELL = os.environ.get("POSTCELL", str(ROOT / ".build" / "debug" / "postcell"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """An SMTP server that keeps what it accepts; RCPT to refused@ gets 550."""
    def __init__(self):
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 queued"


def start_sink(port):
    sink = Sink()
    c = aiosmtpd.Controller(sink, hostname="127.0.0.1", port=port)
    c.start()
    return sink, c


def api(base, path, body):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def get(base, path):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(base + path, context=ctx, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(cond, seconds=20, what="condition"):
    end = time.time() + seconds
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture
def control(request):
    if not os.path.exists(POSTCELL):
        pytest.skip("postcell not built")
    state = tempfile.mkdtemp(prefix="pc-outbox-")
    relay_port, panel_port = free_port(), free_port()
    proc = subprocess.Popen([POSTCELL, "up", "--state", state, "--port", str(panel_port), "--cell-port-base", str(30000 + (os.getpid() % 900) * 10),
                             "--no-demo", "--mail-relay", f"127.0.0.1:{relay_port}",
                             "--plans", str(ROOT / "Billing" / "plans.json"), "--templates", str(ROOT / "templates")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT))
    base = f"https://127.0.0.1:{panel_port}"
    wait_for(lambda: _answers(base), 30, "the panel")
    yield {"base": base, "state": pathlib.Path(state), "relay_port": relay_port, "proc": proc}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    stop_cells(pathlib.Path(state))
    shutil.rmtree(state, ignore_errors=True)


def stop_cells(state):
    """Cells outlive the control plane by design: kill each one's cgroup."""
    for f in (state / "cells" / "run").glob("*.json"):
        info = json.loads(f.read_text())
        groups = info.get("cgroups") or {}
        unified = groups.get("unified")
        if unified and os.path.exists(unified + "/cgroup.kill"):
            pathlib.Path(unified + "/cgroup.kill").write_text("1")
        elif info.get("pid"):
            try:
                os.killpg(info["pid"], signal.SIGKILL)
            except OSError:
                pass
        for g in groups.values():
            for _ in range(50):
                try:
                    os.rmdir(g)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def _answers(base):
    try:
        return get(base, "/healthz")[0] == 200
    except OSError:
        return False


def signup(base, email, slug):
    status, body = api(base, "/api/v1/signup", {"email": email, "password": "Velvet-otter-quarry-7193", "name": "Relay family",
                                                "slug": slug, "plan": "family-mini"})
    assert status == 201, body


def outbox_files(state):
    return sorted(p.name for p in (state / "outbox").glob("*.eml"))


def test_verification_mail_goes_through_the_relay_and_its_link_works(control):
    sink, c = start_sink(control["relay_port"])
    try:
        signup(control["base"], "anna@family.example", "relayed")
        msg = wait_for(lambda: sink.messages and sink.messages[0], 20, "the relay to receive the mail")
        mail_from, rcpts, content = msg
        assert rcpts == ["anna@family.example"]
        assert mail_from.startswith("noreply@")
        text = content.decode()
        assert "Subject: Confirm your Postcell account" in text
        link = re.search(r"https://\S+/verify\?token=(\S+)", text)
        assert link, text
        wait_for(lambda: not outbox_files(control["state"]), 10, "the outbox to empty")
        status, page = get(control["base"], "/verify?token=" + link.group(1))
        assert status == 200 and "relayed.postcell.test" in page
        # The link is a secret: with a relay configured it is not logged.
        control["proc"].send_signal(signal.SIGTERM)
        _, err = control["proc"].communicate(timeout=15)
        assert link.group(1).encode() not in err
    finally:
        c.stop()


def test_refused_mail_moves_to_failed_and_a_down_relay_keeps_it(control):
    # Relay down: the mail waits in the outbox.
    signup(control["base"], "refused@family.example", "refusedone")
    signup(control["base"], "later@family.example", "laterone")
    time.sleep(6)
    assert len(outbox_files(control["state"])) == 2
    sink, c = start_sink(control["relay_port"])
    try:
        wait_for(lambda: not outbox_files(control["state"]), 20, "the outbox to drain")
        assert [m[1] for m in sink.messages] == [["later@family.example"]]
        failed = list((control["state"] / "outbox" / "failed").glob("*.eml"))
        assert len(failed) == 1 and b"To: refused@family.example" in failed[0].read_bytes()
    finally:
        c.stop()
