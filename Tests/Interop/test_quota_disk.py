"""Storage limits (docs/SMTP.md, docs/CELL-CONFIG.md): per-user and per-cell
quotas answer 452 4.2.2 (may clear) or 552 5.2.2 (larger than the whole
quota) and are never exceeded; a full disk answers 452 4.3.1 with nothing
stored, and the engine recovers once space is freed."""
import pathlib
import subprocess
import time

import pytest

from conftest import Cell, base_config, strip_trace
from helpers_stress import (
    ALICE, BOB, SENDER, SMTPConn, assert_check_ok, assert_healthy, deliver,
    engine_alive, expect, fetch_all, find_token, make_message, size_of,
    store_tmp_files, token,
)

QUOTA = 20000


def _user_quota(cfg):
    for u in cfg["users"]:
        u["quotaBytes"] = QUOTA


def _stored_total(cell, users):
    return sum(size_of(m) for u in users for m in cell.messages(u))


def _sized_attempt(c, rcpt, content, size_param=True):
    """MAIL (+SIZE)/RCPT/DATA on an open session; returns (stage, reply)."""
    params = f" SIZE={len(content)}" if size_param else ""
    r = c.cmd(f"MAIL FROM:<{SENDER}>{params}")
    if r.code != 250:
        return "mail", r
    r = c.cmd(f"RCPT TO:<{rcpt}>")
    if r.code != 250:
        expect(c.cmd("RSET"), 250)
        return "rcpt", r
    return "end", c.data(content)


# ---------------------------------------------------------------------------
# Per-user quota
# ---------------------------------------------------------------------------
def test_user_quota(make_cell):
    cell = make_cell(_user_quota)
    tok = token()

    with SMTPConn(cell.address()) as c:
        c.ehlo()
        # A message larger than the whole quota can never fit: 552 5.2.2,
        # at RCPT when SIZE announces it, at the end of data otherwise.
        expect(c.cmd(f"MAIL FROM:<{SENDER}> SIZE=30000"), 250, what="MAIL SIZE=30000 (under maxMessageBytes)")
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 552, "5.2.2", what="RCPT, SIZE larger than the user's whole quota")
        expect(c.cmd("RSET"), 250)
        huge = make_message(f"huge {tok}", size=30000)
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250, what="RCPT without SIZE into an empty mailbox")
        expect(c.data(huge), 552, "5.2.2", what="30,000 bytes of data, quota 20,000")

        # Fill alice with 3,000-byte messages announced with SIZE until RCPT refuses.
        accepted, data_refusals, rcpt_refusal = [], [], None
        for k in range(15):
            content = make_message(f"fill {tok} #{k}", size=3000)
            stage, r = _sized_attempt(c, ALICE, content)
            if stage == "rcpt":
                rcpt_refusal = r
                break
            assert stage == "end", f"fill #{k}: refused at {stage}: {r!r}"
            if r.code == 250:
                accepted.append(content)
            else:
                expect(r, 452, "4.2.2", what=f"fill #{k} at end of data")
                data_refusals.append(r)
        assert rcpt_refusal is not None, "15 x 3,000 bytes accepted under a 20,000-byte quota"
        expect(rcpt_refusal, 452, "4.2.2", what="RCPT with SIZE over the remaining quota")
        assert len(accepted) >= 5, f"only {len(accepted)} x 3,000 bytes fit in a 20,000-byte quota"
        expect(c.cmd("QUIT"), 221)

    # bob: 15,000 bytes stored, then an unannounced 8,000-byte message:
    # RCPT is accepted (the size is unknown), the end of data gets 452 4.2.2.
    with SMTPConn(cell.address()) as c:
        c.ehlo()
        first = make_message(f"bob base {tok}", size=15000)
        expect(c.transaction(first, rcpts=(BOB,)), 250, what="15,000 bytes into an empty 20,000 quota")
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{BOB}>"), 250, what="RCPT without SIZE, mailbox at 75%")
        over = make_message(f"bob over {tok}", size=8000)
        expect(c.data(over), 452, "4.2.2", what="8,000 bytes at the end of data with ~5,000 left")
        expect(c.cmd(f"MAIL FROM:<{SENDER}> SIZE=8000"), 250)
        expect(c.cmd(f"RCPT TO:<{BOB}>"), 452, "4.2.2", what="RCPT SIZE=8000 with ~5,000 left")
        expect(c.cmd("RSET"), 250)
        small = make_message(f"bob small {tok}", size=1000)
        expect(c.transaction(small, rcpts=(BOB,), mail_params="SIZE=1000"), 250,
               what="a message that still fits after the refusals")
        expect(c.cmd("QUIT"), 221)

    assert engine_alive(cell)
    assert_check_ok(cell)
    alice = [raw for _, raw in fetch_all(cell, ALICE) if tok.encode() in raw]
    assert sorted(strip_trace(r) for r in alice) == sorted(accepted), "alice's store differs from what got 250"
    bob = [strip_trace(raw) for _, raw in fetch_all(cell, BOB) if tok.encode() in raw]
    assert sorted(bob) == sorted([first, small])
    for u in (ALICE, BOB):
        total = _stored_total(cell, [u])
        print(f"{u}: {total} bytes stored, quota {QUOTA}")
        assert total <= QUOTA, f"{u}: {total} bytes stored over a {QUOTA}-byte quota"
    assert store_tmp_files(cell) == []
    assert_healthy(cell, user=BOB)                     # bob still has room for a small message


# ---------------------------------------------------------------------------
# Cell quota
# ---------------------------------------------------------------------------
CELL_QUOTA = 30000


def test_cell_quota(make_cell):
    cell = make_cell(lambda cfg: cfg.update({"quota": {"cellBytes": CELL_QUOTA, "userBytes": 0}}))
    tok = token()
    with SMTPConn(cell.address()) as c:
        c.ehlo()
        # larger than the whole cell quota: 552 5.2.2 at MAIL or RCPT
        r = c.cmd(f"MAIL FROM:<{SENDER}> SIZE=40000")
        if r.code == 250:
            r = c.cmd(f"RCPT TO:<{ALICE}>")
        expect(r, 552, "5.2.2", what="SIZE=40000 with cellBytes=30000")
        expect(c.cmd("RSET"), 250)

        accepted, refusal = [], None
        for k in range(20):
            user = (ALICE, BOB)[k % 2]
            content = make_message(f"cellfill {tok} #{k}", size=4000, to=user)
            stage, r = _sized_attempt(c, user, content)
            if stage in ("mail", "rcpt"):
                refusal = (stage, r)
                if stage == "mail":
                    expect(c.cmd("RSET"), 250)
                break
            if r.code == 250:
                accepted.append(content)
            else:
                expect(r, 452, "4.2.2", what=f"cell fill #{k} at end of data")
        assert refusal is not None, "20 x 4,000 bytes accepted under a 30,000-byte cell quota"
        expect(refusal[1], 452, "4.2.2", what=f"cell quota reached, refusal at {refusal[0]}")
        assert len(accepted) >= 6, f"only {len(accepted)} x 4,000 bytes fit in a 30,000-byte cell quota"

        # unannounced 8,000 bytes with less than 4,000 left: 452 4.2.2 at the end of data
        over = make_message(f"cell over {tok}", size=8000)
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250, what="MAIL without SIZE")
        r = c.cmd(f"RCPT TO:<{BOB}>")
        if r.code == 250:
            r = c.data(over)
        expect(r, 452, "4.2.2", what="8,000 bytes over the remaining cell quota")
        expect(c.cmd("QUIT"), 221)

    assert engine_alive(cell)
    assert_check_ok(cell)
    stored = [strip_trace(raw) for u in (ALICE, BOB) for _, raw in fetch_all(cell, u) if tok.encode() in raw]
    assert sorted(stored) == sorted(accepted), "the store differs from what got 250"
    total = _stored_total(cell, [ALICE, BOB])
    print(f"cell: {total} bytes stored, quota {CELL_QUOTA}")
    assert total <= CELL_QUOTA, f"{total} bytes stored over a {CELL_QUOTA}-byte cell quota"
    assert store_tmp_files(cell) == []


# ---------------------------------------------------------------------------
# Disk full
# ---------------------------------------------------------------------------
def _mounted(path):
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


def test_disk_full(tmp_path):
    mnt = tmp_path / "smallfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
    cell = None
    try:
        assert _mounted(mnt)
        filler = mnt / "filler.bin"
        filler.write_bytes(b"\0" * (1024 * 1024))       # 1 MiB to free later
        cell = Cell(mnt / "cell", base_config())       # no quotas: only the disk limits
        cell.log_path = tmp_path / "engine.log"          # keep the log off the small disk
        cell.start()
        tok = token()

        sent, full = [], None
        for k in range(25):
            content = make_message(f"disk {tok} #{k}", size=200_000)
            out = deliver(cell, content)
            if out.ok:
                sent.append(content)
                continue
            full = out
            break
        assert full is not None, "25 x 200 KB accepted on a 3 MB disk"
        assert len(sent) >= 2, f"only {len(sent)} messages fit before the disk was full: {full!r}"
        assert not full.reply.is_(452, "4.2.2"), f"disk full answered as over quota (no quota set): {full!r}"
        expect(full.reply, 452, "4.3.1", what=f"disk full ({full.stage})")
        print(f"disk full after {len(sent)} x 200 KB, at {full.stage}: {full.reply!r}")

        # nothing partial, nothing left over, still consistent and serving
        stored = [strip_trace(raw) for _, raw in fetch_all(cell, ALICE, cache=False) if tok.encode() in raw]
        assert len(stored) == len(sent), f"{len(stored)} stored, {len(sent)} acknowledged"
        assert sorted(stored) == sorted(sent), "a stored message differs from what was sent (partial?)"
        assert store_tmp_files(cell) == [], f"store/tmp leftovers: {store_tmp_files(cell)}"
        assert_check_ok(cell)
        assert engine_alive(cell), cell.log()
        with SMTPConn(cell.address()) as c:
            expect(c.greeting, 220)
            c.ehlo()
            expect(c.cmd("NOOP"), 250)
            expect(c.cmd("QUIT"), 221)

        # free space: delivery works again
        filler.unlink()
        again = make_message(f"disk {tok} after free", size=200_000)
        out = None
        for _ in range(6):
            out = deliver(cell, again)
            if out.ok or not out.reply.is_(452, "4.3.1"):
                break
            time.sleep(0.5)
        assert out.ok, f"delivery still refused after freeing 1 MiB: {out!r}"
        sent.append(again)
        stored = [strip_trace(raw) for _, raw in fetch_all(cell, ALICE, cache=False) if tok.encode() in raw]
        assert sorted(stored) == sorted(sent)
        assert store_tmp_files(cell) == []
        assert_healthy(cell)
    finally:
        if cell is not None:
            cell.stop()
        if _mounted(mnt):
            r = subprocess.run(["umount", str(mnt)])
            if r.returncode != 0:
                subprocess.run(["umount", "-l", str(mnt)])
