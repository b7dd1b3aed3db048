"""The outbound queue's own guarantees, against a real Postfix through a real
DNS server on loopback (helpers_postfix: Knot serves remote.test MX →
127.0.0.1, Postfix on 127.0.0.1 delivers to Maildirs):

  - crash safety under load: 300 messages submitted over six concurrent
    submission sessions while the engine is killed with SIGKILL after about
    100 were accepted, then restarted. Every message acknowledged with 250
    must reach Postfix at least once; duplicates may only come from SMTP's
    window (Postfix said 250, the engine died before writing it down), so at
    most one per connection open at the kill (`maxConnectionsPerDestination`);
    the spool ends empty with no corrupt file (docs/DATA-DIR.md, Durability
    and the queue state file);
  - the same window while the queue drains a backlog (mail held, then
    released while local mail keeps the store busy, SIGKILL after 40
    deliveries, three rounds): connections then carry one transaction after
    another, and still at most one duplicate per connection may follow the
    kill;
  - retries on the engine's own timer (no signal);
  - expiry: after `maxQueueSeconds` a recipient that keeps answering 450 is
    returned to the sender with Status 4.4.7;
  - the delay warning: one "delayed" DSN (RFC 3464 Action: delayed), once.

Every submission attempt carries its own tag (X-Load), so a message sent
again by its submitter after a lost reply never counts as a duplicate of
the queue's. Set LOAD_SEED to replay a run's timing choices.
"""
import os
import queue
import random
import re
import threading
import time

import pytest

from conftest import USERS
from helpers_clients import RawSMTP
from helpers_postfix import (
    HOST, LoopbackDNS, Postfix, corrupt_files, dsns, flush, free_port, outbound_lines, queue_state,
    require_tools, spool_ids, state_files, submit, wait_dsns, wait_outbound, wait_queue_empty, zone,
)

ALICE = "alice@example.test"
LOAD1 = "load1@remote.test"
LOAD2 = "load2@remote.test"
N = 300
THREADS = 6
KILL_AFTER = (100,)   # acknowledged messages before each SIGKILL (± 10)
PER_DESTINATION = 4
DRAIN_CONNECTIONS = 4
DRAIN_MESSAGES = 120
DRAIN_KILL_AFTER = 40
DRAIN_ROUNDS = 3
LOCAL_LOAD_THREADS = 6
RUN_BUDGET = 60.0
DRAIN_BUDGET = 60.0
ACCESS = {"busy@remote.test": "450 4.2.0 try later", "slow@remote.test": "450 4.2.0 try later"}


class World:
    pass


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    require_tools()
    tmp = tmp_path_factory.mktemp("outbound-queue")
    w = World()
    zones = {"remote.test.": zone("remote.test", ["@ MX 10 mx", f"mx A {HOST}"])}
    w.dns = LoopbackDNS(tmp / "knot", zones)
    w.pf = None
    try:
        w.pf = Postfix([LOAD1, LOAD2, "busy@remote.test", "slow@remote.test", "late@remote.test"], w.dns,
                       access=ACCESS, port=free_port(HOST),
                       # Room for the load: more smtpd and virtual processes at once.
                       extra_main="default_process_limit = 200\nvirtual_destination_concurrency_limit = 50\n")
        w.pf.start()
        yield w
    finally:
        if w.pf:
            w.pf.cleanup()
        w.dns.stop()


def engine_config(world, **outbound):
    def mutate(cfg):
        cfg["dns"] = {"servers": [world.dns.server], "timeoutMs": 1000, "attempts": 2}
        o = {"hold": False, "port": world.pf.port, "retryBaseSeconds": 300, "retryMaxSeconds": 600,
             "connectTimeoutMs": 3000, "commandTimeoutMs": 20000}
        o.update(outbound)
        cfg["outbound"] = o
    return mutate


def simple_message(subject, to):
    return (f"From: {ALICE}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Tue, 01 Oct 2024 10:00:00 +0000\r\n\r\nbody\r\n").encode()


# --------------------------------------------------------------------------
# 9. SIGKILL under load
# --------------------------------------------------------------------------
def _rcpts(i):
    return (LOAD1, LOAD2) if i % 5 == 0 else (LOAD1,)


def _load_message(i, tag):
    to = ", ".join(_rcpts(i))
    body = (f"message {i}, attempt tag {tag}\r\n" + "y" * (i % 113) + "\r\n.dot line\r\n").encode()
    return (f"From: {ALICE}\r\nTo: {to}\r\nSubject: load {tag}\r\nX-Load: {tag}\r\n"
            f"Message-ID: <load-{tag}@example.test>\r\nDate: Tue, 01 Oct 2024 10:00:00 +0000\r\n\r\n").encode() + body


class Submitter(threading.Thread):
    """Takes message numbers from `work` and submits each until one attempt
    is acknowledged with 250 (each attempt with its own tag); reconnects
    when the engine goes away."""

    def __init__(self, cell, work, log, deadline, rng):
        super().__init__(daemon=True)
        self.cell, self.work, self.log, self.deadline, self.rng = cell, work, log, deadline, rng
        self.conn = None

    def session(self):
        c = RawSMTP(port=self.cell.port("submission"), timeout=10)
        try:
            if c.greeting.code != 220:
                raise OSError(f"greeting {c.greeting!r}")
            for step in ("ehlo", "starttls", "ehlo", "auth"):
                if step == "ehlo":
                    r = c.cmd(b"EHLO load.example.test")
                    ok = r.code == 250
                elif step == "starttls":
                    r = c.cmd(b"STARTTLS")
                    ok = r.code == 220
                    if ok:
                        from helpers_clients import insecure_tls_context
                        c.sock = insecure_tls_context().wrap_socket(c.sock, server_hostname="mx.example.test")
                else:
                    r = c.auth_plain(ALICE, USERS[ALICE])
                    ok = r.code == 235
                if not ok:
                    raise OSError(f"{step}: {r!r}")
        except BaseException:
            c.close()
            raise
        return c

    def attempt(self, i, tag):
        """'acked', 'refused' or 'unknown' (the reply to the end of data never came)."""
        sent_data = False
        try:
            if self.conn is None:
                self.conn = self.session()
            c = self.conn
            r = c.cmd(f"MAIL FROM:<{ALICE}>")
            if r.code != 250:
                raise OSError(f"MAIL {r!r}")
            for rc in _rcpts(i):
                r = c.cmd(f"RCPT TO:<{rc}>")
                if r.code != 250:
                    raise OSError(f"RCPT {r!r}")
            r = c.cmd(b"DATA")
            if r.code != 354:
                raise OSError(f"DATA {r!r}")
            msg = _load_message(i, tag)
            stuffed = b"\r\n".join((b"." + ln if ln.startswith(b".") else ln) for ln in msg.split(b"\r\n"))
            sent_data = True
            c.send(stuffed + b".\r\n")
            r = c.reply()
            if r.code == 250:
                return "acked"
            if r.code is not None:
                self.drop()
                return "refused"
            raise OSError("no reply after data")
        except (OSError, ValueError):  # ssl errors are OSErrors
            self.drop()
            return "unknown" if sent_data else "failed"

    def drop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def run(self):
        while time.monotonic() < self.deadline:
            try:
                i = self.work.get_nowait()
            except queue.Empty:
                break
            a = 0
            while time.monotonic() < self.deadline:
                a += 1
                tag = f"{i:04d}.{a}"
                state = self.attempt(i, tag)
                self.log.append((i, tag, state, time.monotonic()))
                if state == "acked":
                    break
                time.sleep(0.05 + self.rng.random() * 0.1)
        if self.conn is not None:
            try:
                self.conn.cmd(b"QUIT")
            except OSError:
                pass
            self.drop()


def _arrivals(pf):
    """{(tag, mailbox): count} over the load mailboxes."""
    counts = {}
    for box in (LOAD1, LOAD2):
        for raw in pf.messages(box):
            m = re.search(rb"^X-Load: (\S+)", raw, re.M)
            assert m, f"a message without X-Load in {box}: {raw[:300]!r}"
            key = (m.group(1).decode(), box)
            counts[key] = counts.get(key, 0) + 1
    return counts


def _duplicates(counts, before=None):
    """{tag: extra copies} (the most over the message's recipients)."""
    dup = {}
    for (tag, box), n in counts.items():
        n -= (before or {}).get((tag, box), 0)
        if n > 1:
            dup[tag] = max(dup.get(tag, 0), n - 1)
    return dup


def _wait_postfix_idle(pf, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end and pf.queue_files():
        time.sleep(0.1)
    assert pf.queue_files() == [], f"Postfix still holds {len(pf.queue_files())} messages\n{pf.log()}"


def _assert_queue_clean(cell):
    assert spool_ids(cell) == [] and state_files(cell) == [], (spool_ids(cell), state_files(cell))
    assert corrupt_files(cell) == [], f"corrupt spool files: {corrupt_files(cell)}"
    tmp = cell.dir / "queue" / "tmp"
    assert not tmp.is_dir() or list(tmp.iterdir()) == [], list(tmp.iterdir())


def test_sigkill_under_load_loses_nothing(world, make_cell):
    pf = world.pf
    seed = int(os.environ.get("LOAD_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    cell = make_cell(engine_config(world, retryBaseSeconds=1, retryMaxSeconds=2,
                                   maxConnectionsPerDestination=PER_DESTINATION))
    work = queue.Queue()
    for i in range(N):
        work.put(i)
    log = []
    deadline = time.monotonic() + RUN_BUDGET
    threads = [Submitter(cell, work, log, deadline, random.Random(rng.random())) for _ in range(THREADS)]
    for t in threads:
        t.start()
    kill_at = [k + rng.randrange(-10, 11) for k in KILL_AFTER]
    kills = []   # what each kill left behind, for the report
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        acked_now = sum(1 for e in log if e[2] == "acked")
        if len(kills) < len(kill_at) and acked_now >= kill_at[len(kills)]:
            cell.kill9()
            kills.append({"acknowledged": acked_now, "delivered": len(outbound_lines(cell, result="delivered")),
                          "logged delivered, still spooled": len(_unrecorded(cell))})
            time.sleep(rng.random() * 0.3)
            cell.start()
        time.sleep(0.01)
    for t in threads:
        t.join(5)
    assert len(kills) == len(kill_at), f"the load ended before {kill_at} messages were accepted (seed {seed})"
    assert not any(t.is_alive() for t in threads), f"submitters still running after {RUN_BUDGET}s (seed {seed})"
    acked = {tag: i for i, tag, state, _ in log if state == "acked"}
    acked_numbers = {i for i in acked.values()}
    assert acked_numbers == set(range(N)), (
        f"not every message got accepted within the budget: missing {sorted(set(range(N)) - acked_numbers)[:20]} "
        f"(seed {seed})\n{cell.log()}")

    # Drain: the queue empties, and Postfix has delivered what it took.
    wait_queue_empty(cell, timeout=DRAIN_BUDGET, flush_every=2)
    _wait_postfix_idle(pf)

    counts = _arrivals(pf)
    missing = [(tag, box) for tag, i in acked.items() for box in _rcpts(i) if counts.get((tag, box), 0) == 0]
    dup = _duplicates(counts)
    unknown = [tag for _, tag, state, _ in log if state == "unknown"]
    report = (f"seed {seed}; kills {kills}; {len(acked)} acknowledged in all; "
              f"{len(unknown)} attempts without a reply to the end of data ({unknown[:10]}); "
              f"{sum(dup.values())} duplicate deliveries {sorted(dup.items())[:20]}")
    assert missing == [], f"acknowledged but never delivered: {missing[:20]} ({len(missing)})\n{report}"
    # Attempts without a reply may or may not have been spooled; nothing else may arrive.
    assert {tag for tag, _ in counts} <= {tag for _, tag, _, _ in log}
    _assert_queue_clean(cell)
    assert dsns(cell) == [], "a DSN although every recipient was deliverable"
    ok, check_report = cell.check()
    assert ok, check_report
    # SMTP's window: at most the transactions whose 250 was on its way at the kill, one per connection.
    assert sum(dup.values()) <= PER_DESTINATION * len(kills), (
        f"more messages sent twice than connections were open at the kill: {report}")
    print(report)


# --------------------------------------------------------------------------
# Retries on the queue's own timer
# --------------------------------------------------------------------------
def test_deferred_mail_is_retried_by_the_timer(world, make_cell):
    pf = world.pf
    cell = make_cell(engine_config(world, retryBaseSeconds=1, retryMaxSeconds=2))
    submit(cell, ALICE, USERS[ALICE], ["slow@remote.test"], simple_message("timer", "slow@remote.test"))
    try:
        wait_outbound(cell, "slow@remote.test", "deferred")
        pf.set_access({k: v for k, v in ACCESS.items() if k != "slow@remote.test"})
        # No signal: the retry comes after 1 s (plus up to a tenth), or 2 s after the second deferral.
        wait_outbound(cell, "slow@remote.test", "delivered", timeout=10)
        pf.wait_messages("slow@remote.test", 1)
        wait_queue_empty(cell, timeout=5)
        deferred = outbound_lines(cell, "slow@remote.test", "deferred")
        assert 1 <= len(deferred) <= 4, deferred
    finally:
        pf.set_access(ACCESS)


# --------------------------------------------------------------------------
# 10. Expiry (4.4.7) and the delay warning (Action: delayed, once)
# --------------------------------------------------------------------------
def test_expired_message_is_returned_with_4_4_7(world, make_cell):
    lifetime = 3
    cell = make_cell(engine_config(world, maxQueueSeconds=lifetime, delayWarningSeconds=0))
    accepted = time.time()
    submit(cell, ALICE, USERS[ALICE], ["busy@remote.test"], simple_message("expire me", "busy@remote.test"))
    wait_outbound(cell, "busy@remote.test", "deferred")
    assert time.time() - accepted < lifetime - 0.5, "the first attempt came too late to test expiry after it"
    (qid,) = spool_ids(cell)
    st = queue_state(cell, qid)
    assert st and st["recipients"][0]["status"] == "pending", st
    assert dsns(cell) == []
    # Arrival is kept in whole seconds: wait past the lifetime, then make the retry due.
    time.sleep(max(0.0, accepted + lifetime + 1.1 - time.time()))
    flush(cell)
    (dsn,) = wait_dsns(cell, 1, timeout=10)
    r = dsn.recipient("busy@remote.test")
    assert r["Action"].strip() == "failed", r.items()
    assert r["Status"].strip() == "4.4.7", r.items()
    diag = " ".join((r["Diagnostic-Code"] or "").split())
    assert "450" in diag and "try later" in diag, diag
    assert dsn.original_headers["Subject"] == "expire me"
    wait_queue_empty(cell, timeout=5)
    assert queue_state(cell, qid) is None
    time.sleep(0.5)
    assert len(dsns(cell)) == 1


def test_delay_warning_is_sent_once(world, make_cell):
    cell = make_cell(engine_config(world, delayWarningSeconds=1, maxQueueSeconds=3600))
    submit(cell, ALICE, USERS[ALICE], ["busy@remote.test"], simple_message("delay me", "busy@remote.test"))
    wait_outbound(cell, "busy@remote.test", "deferred")
    (qid,) = spool_ids(cell)
    # The first attempt came before the warning time: no warning yet.
    time.sleep(0.5)
    assert dsns(cell) == []
    time.sleep(1.6)
    flush(cell)
    wait_outbound(cell, "busy@remote.test", "deferred", count=2)
    (dsn,) = wait_dsns(cell, 1, timeout=10)
    r = dsn.recipient("busy@remote.test")
    assert r["Action"].strip() == "delayed", r.items()
    assert r["Status"].strip().startswith("4."), r.items()
    assert r["Will-Retry-Until"], r.items()
    assert dsn.original_headers["Subject"] == "delay me"
    # Two more retries: still only the one warning, and the message stays queued.
    for n in (3, 4):
        time.sleep(0.3)
        flush(cell)
        wait_outbound(cell, "busy@remote.test", "deferred", count=n)
    time.sleep(0.8)
    found = dsns(cell)
    assert [d.actions for d in found] == [["delayed"]], [d.actions for d in found]
    assert spool_ids(cell) == [qid]
    st = queue_state(cell, qid)
    assert st["delayWarned"] is True and st["recipients"][0]["status"] == "pending", st
    assert outbound_lines(cell, result="failed") == []


def _submit_many(cell, count, tag_prefix):
    """`count` messages over one submission session; returns their tags."""
    tags = []
    with RawSMTP(port=cell.port("submission"), timeout=20) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo("load.example.test")
        c.starttls()
        c.ehlo("load.example.test")
        assert c.auth_plain(ALICE, USERS[ALICE]).code == 235
        for i in range(count):
            tag = f"{tag_prefix}{i:04d}"
            assert c.cmd(f"MAIL FROM:<{ALICE}>").code == 250
            for rc in _rcpts(i):
                assert c.cmd(f"RCPT TO:<{rc}>").code == 250
            r = c.data(_load_message(i, tag))
            assert r.code == 250, r
            tags.append((tag, i))
        c.quit()
    return tags


def _submit_local(cell, stop):
    """Submits small messages to bob (a local user) until `stop`."""
    with RawSMTP(port=cell.port("submission"), timeout=10) as c:
        if c.greeting.code != 220:
            raise OSError(c.greeting)
        c.ehlo("busy.example.test")
        c.starttls()
        c.ehlo("busy.example.test")
        assert c.auth_plain(ALICE, USERS[ALICE]).code == 235
        while not stop.is_set():
            if c.cmd(f"MAIL FROM:<{ALICE}>").code != 250 or c.cmd("RCPT TO:<bob@example.test>").code != 250:
                raise OSError("refused")
            if c.data(simple_message("local", "bob@example.test")).code != 250:
                raise OSError("refused")


def _unrecorded(cell):
    """Messages every recipient of which the engine logged as delivered,
    yet still spooled with no state file saying so: after a crash they are
    sent again."""
    done = {}
    for ln in outbound_lines(cell, result="delivered"):
        m = re.search(r"\bqueue=(\w+)", ln)
        done.setdefault(m.group(1), 0)
        done[m.group(1)] += 1
    out = []
    for qid in spool_ids(cell):
        if qid not in done:
            continue
        st = queue_state(cell, qid)
        if st is None or any(r["status"] == "pending" for r in st["recipients"]):
            out.append(qid)
    return out


def _drain_and_kill(world, make_cell, prefix):
    """One round: returns (missing, duplicates, report)."""
    pf = world.pf
    before = _arrivals(pf)
    cell = make_cell(engine_config(world, hold=True, maxConnectionsPerDestination=DRAIN_CONNECTIONS))
    tags = _submit_many(cell, DRAIN_MESSAGES, prefix)
    assert len(spool_ids(cell)) == DRAIN_MESSAGES
    stop = threading.Event()

    def local_load():
        while not stop.is_set():
            try:
                _submit_local(cell, stop)
            except (OSError, AssertionError):
                time.sleep(0.05)

    busy = [threading.Thread(target=local_load, daemon=True) for _ in range(LOCAL_LOAD_THREADS)]
    for t in busy:
        t.start()
    time.sleep(0.5)
    cell.config["outbound"]["hold"] = False
    cell.reload()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(outbound_lines(cell, result="delivered")) < DRAIN_KILL_AFTER:
        time.sleep(0.002)
    cell.kill9()
    stop.set()
    delivered_at_kill = len(outbound_lines(cell, result="delivered"))
    assert delivered_at_kill >= DRAIN_KILL_AFTER, f"the queue did not drain: {cell.log()}"
    left_at_kill = len(spool_ids(cell))
    unrecorded = _unrecorded(cell)
    for t in busy:
        t.join(5)
    cell.start()
    wait_queue_empty(cell, timeout=DRAIN_BUDGET, flush_every=2)
    _wait_postfix_idle(pf)
    _assert_queue_clean(cell)
    counts = _arrivals(pf)
    missing = [(tag, box) for tag, i in tags for box in _rcpts(i)
               if counts.get((tag, box), 0) - before.get((tag, box), 0) == 0]
    dup = _duplicates(counts, before)
    report = (f"{delivered_at_kill} recipients logged result=delivered at the kill, {left_at_kill} messages still "
              f"spooled then, {len(unrecorded)} of them logged delivered for every recipient yet with no state "
              f"file saying so ({sorted(unrecorded)[:12]}); {sum(dup.values())} sent twice: {sorted(dup)}")
    cell.stop()
    return missing, sum(dup.values()), report


def test_sigkill_while_draining_a_backlog(world, make_cell):
    """DRAIN_MESSAGES messages queued while outbound is held, then released
    (a reload with hold false) while local mail keeps the store busy
    (sessions submitting to bob); SIGKILL once DRAIN_KILL_AFTER recipients
    were delivered; restart; in DRAIN_ROUNDS rounds. Each connection open at
    the kill (at most maxConnectionsPerDestination) may have had one
    transaction in SMTP's window; every message delivered before that must
    have been recorded, so no more may be sent twice."""
    reports = []
    for r in range(DRAIN_ROUNDS):
        missing, duplicates, report = _drain_and_kill(world, make_cell, f"drain{r}-")
        reports.append(f"round {r}: {report}")
        assert missing == [], f"never delivered: {missing[:20]}; {report}"
        assert duplicates <= DRAIN_CONNECTIONS, (
            "more messages sent twice than connections were open at the kill:\n" + "\n".join(reports))
    print("\n".join(reports))
