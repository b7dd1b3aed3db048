#!/usr/bin/env python3
"""Idle memory per cell: starts N engines (default 100) of the same binary,
each with its own data directory and loopback listeners, lets them settle,
and reports the mean PSS (proportional set size: shared pages split among
the processes that map them) and the mean private dirty memory per cell,
plus one cell's RSS for reference. Also reports start-up time: from exec to
run/listeners.json.

    python3 bench/memory/idle_cells.py [--cells 100] [--engine PATH]

PSS, not RSS, is the criterion: at scale, code pages of the shared binary
cost nothing per cell (see ../shared/design/ISOLATION.md).
"""
import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))


def rollup(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:", "Private_Dirty:"):
                out[parts[0][:-1]] = int(parts[1])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=100)
    ap.add_argument("--engine", default=str(ROOT / ".build" / "release" / "postcell-engine"))
    ap.add_argument("--settle", type=float, default=3.0)
    args = ap.parse_args()
    import conftest
    conftest.ENGINE = args.engine
    subprocess.run(["sync"])  # a freshly linked binary's dirty page-cache pages would count as private
    work = pathlib.Path(tempfile.mkdtemp(prefix="postcell-cells-"))
    cells, starts = [], []
    try:
        for i in range(args.cells):
            cfg = conftest.base_config()
            cell = conftest.Cell(work / f"cell{i}", cfg)
            t = time.monotonic()
            cell.start()
            starts.append((time.monotonic() - t) * 1000)
            cells.append(cell)
        time.sleep(args.settle)
        mems = [rollup(c.proc.pid) for c in cells]
        pss = statistics.mean(m["Pss"] for m in mems) / 1024
        dirty = statistics.mean(m["Private_Dirty"] for m in mems) / 1024
        rss = mems[0]["Rss"] / 1024
        threads = len(os.listdir(f"/proc/{cells[0].proc.pid}/task"))
        print(f"cells: {args.cells}  engine: {args.engine}")
        print(f"mean PSS per idle cell:           {pss:.2f} MiB")
        print(f"mean private dirty per idle cell: {dirty:.2f} MiB")
        print(f"one cell's RSS:                   {rss:.2f} MiB  (threads: {threads})")
        print(f"ready after exec (incl. polling): median {statistics.median(starts):.1f} ms, max {max(starts):.1f} ms")
    finally:
        for c in cells:
            c.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
