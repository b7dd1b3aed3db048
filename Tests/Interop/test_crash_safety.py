"""Crash safety (docs/DATA-DIR.md, Durability): while four client threads
deliver 300 distinct messages to the MX role, the engine is killed with
SIGKILL at random moments four times and restarted. Afterwards every message
acknowledged with 250 must be in the store exactly once and intact, nothing
refused or cut off may be stored, UIDs must be unique and follow the order of
acknowledgement, and `postcell-engine check` must pass.

Every delivery attempt carries its own subject ("crash <n> attempt <k>"), so a
retry after a lost reply never makes an acknowledged message look duplicated.
Set CRASH_SEED to replay a run."""
import os
import random
import re
import socket
import threading
import time

from conftest import strip_trace
from helpers_stress import (
    ALICE, BOB, SENDER, SMTPConn, assert_check_ok, dot_stuff, fetch_all,
    header, make_message, store_tmp_files, uid_of,
)

N = 300
THREADS = 4
KILLS = 4
RUN_BUDGET = 60.0
SUBJECT_RE = re.compile(rb"^crash (\d{4}) attempt (\d+) ")


def _rcpts(i):
    # every fifth message goes to two local users (one shared message file)
    return (ALICE, BOB) if i % 5 == 0 else (ALICE,)


def _attempt(cell, i, a, run_tag):
    """One delivery attempt. state: acked (250 after data), unknown (the end
    of data was sent but no reply came back), refused (a reply other than 250
    after data) or failed (stopped before the end of data was sent)."""
    rcpts = _rcpts(i)
    content = make_message(f"crash {i:04d} attempt {a} {run_tag}",
                           body=(f"message {i} attempt {a}\r\n" + "z" * (i % 97) + "\r\n").encode())
    rec = {"i": i, "a": a, "rcpts": rcpts, "content": content, "state": "failed",
           "t_sent": None, "t_reply": None, "why": None}
    c = None
    try:
        c = SMTPConn(cell.address("mx"), timeout=5)
        if c.greeting.code != 220:
            rec["why"] = f"greeting {c.greeting!r}"
            return rec
        r = c.cmd("EHLO crash.remote.test")
        if r.code != 250:
            rec["why"] = f"EHLO {r!r}"
            return rec
        r = c.cmd(f"MAIL FROM:<{SENDER}>")
        if r.code != 250:
            rec["why"] = f"MAIL {r!r}"
            return rec
        for rc in rcpts:
            r = c.cmd(f"RCPT TO:<{rc}>")
            if r.code != 250:
                rec["why"] = f"RCPT {r!r}"
                return rec
        r = c.cmd("DATA")
        if r.code != 354:
            rec["why"] = f"DATA {r!r}"
            return rec
        c.send(dot_stuff(content))
        rec["state"] = "unknown"                       # the engine may have it now
        rec["t_sent"] = time.monotonic()
        r = c.read()
        rec["t_reply"] = time.monotonic()
        if r.code == 250:
            rec["state"] = "acked"
        elif r.closed:
            rec["why"] = "closed before the final reply"
        else:
            rec["state"] = "refused"
            rec["why"] = repr(r)
        try:
            c.cmd("QUIT")
        except OSError:
            pass
        return rec
    except (OSError, ValueError) as e:                 # refused, reset, timeout
        rec["why"] = rec["why"] or repr(e)
        return rec
    finally:
        if c is not None:
            try:
                c.close()
            except OSError:
                pass


def test_kill9_during_deliveries_loses_nothing_acknowledged(make_cell):
    seed = int(os.environ.get("CRASH_SEED", time.time_ns() % (1 << 32)))
    rng = random.Random(seed)
    print(f"\nCRASH_SEED={seed}")
    run_tag = f"{seed:08x}"
    cell = make_cell()

    lock = threading.Lock()
    attempts = []
    next_i = [0]
    acked = set()
    stop = threading.Event()
    deadline = time.monotonic() + RUN_BUDGET

    def sender(tid):
        trng = random.Random(seed * 31 + tid)
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                if next_i[0] >= N:
                    return
                i = next_i[0]
                next_i[0] += 1
            a = 0
            while not stop.is_set() and time.monotonic() < deadline:
                rec = _attempt(cell, i, a, run_tag)
                a += 1
                with lock:
                    attempts.append(rec)
                    if rec["state"] == "acked":
                        acked.add(i)
                        break
                time.sleep(trng.uniform(0.02, 0.1))

    threads = [threading.Thread(target=sender, args=(t,), daemon=True) for t in range(THREADS)]
    for t in threads:
        t.start()

    try:
        # four kills at random points spread over the run
        thresholds = [rng.randint(lo, hi) for lo, hi in ((15, 65), (85, 135), (155, 205), (225, 275))]
        kills = []
        for th in thresholds:
            while time.monotonic() < deadline:
                with lock:
                    if len(acked) >= th:
                        break
                time.sleep(0.002)
            if time.monotonic() >= deadline:
                break
            time.sleep(rng.uniform(0, 0.03))
            with lock:
                n_acked = len(acked)
            cell.kill9()
            kills.append(n_acked)
            time.sleep(rng.uniform(0, 0.2))
            cell.start()

    except BaseException:
        stop.set()
        raise

    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 10)
    stop.set()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads), "sender threads did not finish"

    states = {}
    for rec in attempts:
        states[rec["state"]] = states.get(rec["state"], 0) + 1
    print(f"kills after {kills} acknowledged messages; attempts: {states}")
    assert len(kills) == KILLS, f"only {len(kills)} kills happened before the deadline"
    missing = sorted(set(range(N)) - acked)
    assert not missing, (f"{len(missing)} messages never acknowledged within {RUN_BUDGET}s, e.g. {missing[:10]}; "
                         f"last failures: {[r['why'] for r in attempts[-5:]]}\n{cell.log()}")

    rc = cell.stop()
    assert rc == 0, f"engine exit status after SIGTERM: {rc}"
    assert store_tmp_files(cell) == [], f"store/tmp not empty after a clean stop: {store_tmp_files(cell)}"
    assert_check_ok(cell)

    by_key = {(r["i"], r["a"]): r for r in attempts}
    counts = {}                                        # (i, a, user) -> times stored
    uids = {}                                          # (i, a, user) -> [uid]
    for user in (ALICE, BOB):
        entries = fetch_all(cell, user, cache=False)
        seen_uids = [uid_of(m) for m, _ in entries]
        assert len(seen_uids) == len(set(seen_uids)), f"{user}: duplicate UIDs {sorted(seen_uids)}"
        assert all(u > 0 for u in seen_uids)
        for m, raw in entries:
            subj = header(raw, "Subject") or b""
            mt = SUBJECT_RE.match(subj)
            assert mt, f"{user}: stored message uid {uid_of(m)} that the test never sent: {raw[:300]!r}"
            key = (int(mt.group(1)), int(mt.group(2)))
            rec = by_key.get(key)
            assert rec is not None, f"{user}: stored attempt {key} that was never made"
            assert user in rec["rcpts"], f"{user}: got attempt {key} addressed to {rec['rcpts']}"
            assert strip_trace(raw) == rec["content"], \
                f"{user}: attempt {key} (state {rec['state']}) stored damaged: {len(raw)} bytes"
            counts[key + (user,)] = counts.get(key + (user,), 0) + 1
            uids.setdefault(key + (user,), []).append(uid_of(m))

    unknown_stored = unknown_lost = 0
    for key, rec in by_key.items():
        n = [counts.get(key + (u,), 0) for u in rec["rcpts"]]
        if rec["state"] == "acked":
            assert n == [1] * len(n), f"acknowledged attempt {key} stored {n} times for {rec['rcpts']}"
        elif rec["state"] == "unknown":
            assert all(x <= 1 for x in n), f"unacknowledged attempt {key} stored {n} times"
            assert len(set(n)) == 1, \
                f"attempt {key} to {rec['rcpts']} delivered to some recipients only: {n}"
            if n[0]:
                unknown_stored += 1
            else:
                unknown_lost += 1
        else:
            assert sum(n) == 0, \
                f"attempt {key} in state {rec['state']} ({rec['why']}) was stored {n} times"
    print(f"replies lost in crashes: {unknown_stored} stored anyway, {unknown_lost} not stored")

    # UIDs follow acknowledgement: a message acknowledged before another one's
    # end of data was sent must have the smaller UID (no reuse after a crash).
    for user in (ALICE, BOB):
        acked_recs = sorted(
            (r for r in attempts if r["state"] == "acked" and user in r["rcpts"]),
            key=lambda r: r["t_reply"])
        send_order = sorted(acked_recs, key=lambda r: r["t_sent"])
        max_uid_acked = 0
        j = 0
        for r in send_order:
            while j < len(acked_recs) and acked_recs[j]["t_reply"] < r["t_sent"]:
                max_uid_acked = max(max_uid_acked, uids[(acked_recs[j]["i"], acked_recs[j]["a"], user)][0])
                j += 1
            u = uids[(r["i"], r["a"], user)][0]
            assert u > max_uid_acked, (
                f"{user}: attempt {(r['i'], r['a'])} got UID {u}, not above UID {max_uid_acked} of a message "
                f"acknowledged before it was sent")
