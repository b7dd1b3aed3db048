#!/usr/bin/env python3
"""Signup -> first message in the INBOX, against a private `postcell up`
(local cells in bubblewrap, SQLite or --database URL).

For each of N sequential signups the clock starts right before the signup
request is sent and stops when IMAP shows the test message in the INBOX:

  signup    POST /api/v1/signup (new keep-alive HTTPS connection: TLS included)
  outbox    find the verification mail in STATE/outbox/ and read the link
  verify    GET /verify?token=...  (tenant active, cell row created)
  token     POST /api/v1/tokens  (owner's credentials -> bearer token)
  mailbox   POST /api/v1/mailboxes  (pushed to the cell if it already runs)
  setup     GET /api/v1/mailboxes/ADDR/setup  (the cell's ports)
  cell      until the cell's MX port gives its 220 greeting and its IMAPS
            port completes TLS and gives its * OK greeting
  send      smtplib to the MX port: EHLO, MAIL, RCPT, DATA until 250
            (RCPT refused because the mailbox has not reached the cell yet
            -> retried every 20 ms, counted)
  imap      IMAPS LOGIN (retried while refused), SELECT INBOX, then
            UID SEARCH HEADER Message-ID every 20 ms until the message is there

Usage: python3 bench/control/signup_to_inbox.py [--signups 10] [--database postgres] [--keep]
Writes bench/control/last-signup.txt.
"""

import argparse
import imaplib
import json
import os
import smtplib
import socket
import ssl
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

PHASES = ["signup", "outbox", "verify", "token", "mailbox", "setup", "cell", "send", "imap"]
POLL = 0.02
PHASE_LIMIT = 60.0  # a phase that takes longer fails the signup


class Failed(Exception):
    pass


def deadline_loop(what, limit=PHASE_LIMIT):
    t0 = time.monotonic()
    while True:
        yield
        if time.monotonic() - t0 > limit:
            raise Failed("%s: no success within %.0f s" % (what, limit))
        time.sleep(POLL)


def smtp_greets(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(2)
            return s.recv(512).startswith(b"220")
    except OSError:
        return False


def imaps_greets(port, ctx):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.settimeout(2)
                return s.recv(512).startswith(b"* OK")
    except (OSError, ssl.SSLError):
        return False


def one_signup(cp, i, ctx):
    slug = lib.rand_slug("bs")
    email = "owner-%s@client.test" % slug
    password = lib.strong_password()
    mbox_password = lib.strong_password()
    t = {}
    extra = {"rcpt_retries": 0, "login_retries": 0, "searches": 0}
    mark = time.monotonic()
    start = mark

    def lap(name):
        nonlocal mark
        now = time.monotonic()
        t[name] = now - mark
        mark = now

    http = lib.HTTPS(cp.port)
    st, _, body = http.request("POST", "/api/v1/signup", json_body={
        "email": email, "password": password, "name": "Bench family %d" % i, "slug": slug, "plan": "family"})
    if st != 201:
        raise Failed("signup: %d %s" % (st, body[:300]))
    lap("signup")

    link = None
    for _ in deadline_loop("outbox"):
        link = lib.read_link(cp.state, email)
        if link:
            break
    lap("outbox")

    path = link.split("://", 1)[1].split("/", 1)[1]
    st, _, body = http.request("GET", "/" + path)
    if st != 200:
        raise Failed("verify: %d" % st)
    lap("verify")

    st, _, body = http.request("POST", "/api/v1/tokens", json_body={"email": email, "password": password, "name": "bench"})
    if st != 201:
        raise Failed("token: %d %s" % (st, body[:300]))
    auth = {"Authorization": "Bearer " + json.loads(body)["token"]}
    lap("token")

    st, _, body = http.request("POST", "/api/v1/mailboxes", headers=auth,
                               json_body={"local": "anna", "displayName": "Anna", "password": mbox_password})
    if st != 201:
        raise Failed("mailbox: %d %s" % (st, body[:300]))
    address = json.loads(body)["address"]
    lap("mailbox")

    st, _, body = http.request("GET", "/api/v1/mailboxes/%s/setup" % address, headers=auth)
    if st != 200:
        raise Failed("setup: %d %s" % (st, body[:300]))
    setup = json.loads(body)
    http.close()
    mx = setup["imapPort"] - 3  # mx = base + slot*10 + 0, imap = +3 (docs/CONTROL-PLANE.md)
    imaps = setup["imapsPort"]
    lap("setup")

    for _ in deadline_loop("cell"):
        if smtp_greets(mx) and imaps_greets(imaps, ctx):
            break
    lap("cell")

    msgid = "<%s@bench.client.test>" % uuid.uuid4()
    msg = ("From: Bench <bench@client.test>\r\nTo: <%s>\r\nSubject: first message %d\r\nMessage-ID: %s\r\n"
           "Date: %s\r\n\r\nHello from the control-plane bench.\r\n") % (
        address, i, msgid, time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()))
    for _ in deadline_loop("send"):
        try:
            with smtplib.SMTP("127.0.0.1", mx, local_hostname="client.test", timeout=10) as s:
                refused = s.sendmail("bench@client.test", [address], msg)
                if not refused:
                    break
        except smtplib.SMTPRecipientsRefused as e:
            extra["rcpt_retries"] += 1
            extra["last_refusal"] = str(e.recipients)[:200]
        except (smtplib.SMTPException, OSError) as e:
            extra["rcpt_retries"] += 1
            extra["last_refusal"] = repr(e)[:200]
    lap("send")

    im = None
    for _ in deadline_loop("imap login"):
        try:
            im = imaplib.IMAP4_SSL("127.0.0.1", imaps, ssl_context=ctx, timeout=10)
            im.login(address, mbox_password)
            break
        except (imaplib.IMAP4.error, OSError) as e:
            extra["login_retries"] += 1
            extra["last_login_error"] = repr(e)[:200]
            try:
                im and im.shutdown()
            except Exception:
                pass
            im = None
    im.select("INBOX")
    for _ in deadline_loop("imap search"):
        extra["searches"] += 1
        typ, data = im.uid("SEARCH", None, "HEADER", "Message-ID", '"%s"' % msgid)
        if typ == "OK" and data and data[0] and data[0].split():
            break
        im.noop()
    lap("imap")
    total = time.monotonic() - start
    try:
        im.logout()
    except Exception:
        pass
    return {"slug": slug, "phases": t, "total": total, **extra}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--signups", type=int, default=int(os.environ.get("SIGNUPS", 10)))
    ap.add_argument("--database", choices=["sqlite", "postgres"], default=os.environ.get("DATABASE", "sqlite"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "last-signup.txt"))
    a = ap.parse_args()
    if not os.access(lib.POSTCELL, os.X_OK):
        sys.exit("no %s: flock /tmp/swift-build.lock swift build -c release --product postcell (and postcell-engine)" % lib.POSTCELL)

    work = tempfile.mkdtemp(prefix="postcell-bench-control-")
    os.chmod(work, 0o755)
    pg = cp = None
    results, failures = [], []
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    busy_before = lib.wait_quiet()
    busy_during = float("nan")
    try:
        if a.database == "postgres":
            pg = lib.PostgresServer(work).start()
        cp = lib.ControlPlane(work, slots=a.signups + 2, database=pg.url if pg else None)
        t0 = time.monotonic()
        cp.start()
        lib.log("postcell up ready in %.2f s on :%d, cells from :%d" % (time.monotonic() - t0, cp.port, cp.cell_base))
        m0 = lib.machine_ticks()
        for i in range(a.signups):
            try:
                r = one_signup(cp, i, ctx)
                results.append(r)
                lib.log("signup %2d: total %.3f s  %s  rcpt retries %d, login retries %d" % (
                    i + 1, r["total"], " ".join("%s %.3f" % (p, r["phases"][p]) for p in PHASES), r["rcpt_retries"], r["login_retries"]))
            except Failed as e:
                failures.append("signup %d: %s" % (i + 1, e))
                lib.log("signup %d FAILED: %s" % (i + 1, e))
        m1 = lib.machine_ticks()
        busy_during = 1 - (m1[1] - m0[1]) / max(1, m1[0] - m0[0])
    finally:
        lib.finish(cp, pg, work, a.keep or failures)

    lines = ["Postcell signup -> first message bench — %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
             lib.machine_line(), lib.build_line(),
             "database: %s; local cells (bubblewrap); %d sequential signups on one control plane; goal: total < 5 s" % (a.database, a.signups),
             "machine busy before the runs (after waiting up to QUIET_WAIT s for < 25%%): %.0f%%; during the runs (everything, this bench included): %.0f%%" % (busy_before * 100, busy_during * 100), ""]
    hdr = "| run | " + " | ".join(PHASES) + " | total s | RCPT retries | LOGIN retries |"
    lines += [hdr, "|" + "---|" * (len(PHASES) + 4)]
    for i, r in enumerate(results):
        lines.append("| %d | %s | %.3f | %d | %d |" % (i + 1, " | ".join("%.3f" % r["phases"][p] for p in PHASES), r["total"],
                                                        r["rcpt_retries"], r["login_retries"]))
    if results:
        lines.append("| **median** | %s | **%.3f** | | |" % (" | ".join("%.3f" % lib.median([r["phases"][p] for r in results]) for p in PHASES),
                                                               lib.median([r["total"] for r in results])))
        lines.append("| **max** | %s | **%.3f** | | |" % (" | ".join("%.3f" % max(r["phases"][p] for r in results) for p in PHASES),
                                                            max(r["total"] for r in results)))
        notes = [r.get("last_refusal") for r in results if r.get("last_refusal")] + [r.get("last_login_error") for r in results if r.get("last_login_error")]
        if notes:
            lines += ["", "examples of refusals that were retried: " + "; ".join(sorted(set(notes))[:3])]
    lines += ["", "all phases in seconds; total = from sending the signup request until UID SEARCH finds the message"]
    if failures:
        lines += ["", "FAILURES:"] + ["  " + f for f in failures]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(a.out, "w") as f:
        f.write(text)
    sys.exit(1 if failures or not results else 0)


if __name__ == "__main__":
    main()
