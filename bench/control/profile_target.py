#!/usr/bin/env python3
"""Profiles postcell (perf, call graphs) while wrk loads one panel or API
target, with N seeded tenants on SQLite. Prints perf's top symbols (self
time) and the top callers, and writes the full report beside the work
directory's perf.data when --keep is given.

Usage: python3 bench/control/profile_target.py --path '/staff/tenants?q=' [--auth staff-cookie|staff-bearer]
       [--tenants 10000] [--seconds 8] [--keep]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", required=True)
    ap.add_argument("--auth", choices=["staff-cookie", "staff-bearer"], default="staff-cookie")
    ap.add_argument("--tenants", type=int, default=10000)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="postcell-bench-control-")
    os.chmod(work, 0o755)
    cp = None
    try:
        cp = lib.ControlPlane(work, slots=2)
        cp.cli("seed", "--tenants", str(a.tenants))
        pw = lib.strong_password()
        cp.cli("staff-add", "--email", "staff@bench.test", "--role", "admin", input=pw + "\n")
        cp.start()
        if a.auth == "staff-cookie":
            header = "Cookie: __Host-postcell=" + lib.login_cookie(cp.port, "staff@bench.test", pw)
        else:
            header = "Authorization: Bearer " + lib.api_token(cp.port, "staff@bench.test", pw)
        url = "https://127.0.0.1:%d%s" % (cp.port, a.path)
        wrk = subprocess.Popen(["timeout", str(a.seconds + 20), "wrk", "-t1", "-c4", "-d%ds" % (a.seconds + 4), "-H", header, url],
                               stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        data = os.path.join(work, "perf.data")
        subprocess.run(["perf", "record", "-q", "-F", "499", "-g", "-p", str(cp.proc.pid), "-o", data, "--", "sleep", str(a.seconds)],
                       check=True, capture_output=True)
        print(wrk.communicate()[0])
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--percent-limit", "1.5", "-g", "none",
                              "--sort", "symbol"], capture_output=True, text=True).stdout
        print("\n".join(l[:200] for l in rep.splitlines() if l and not l.startswith("#"))[:6000])
        rep = subprocess.run(["perf", "report", "-i", data, "--children", "--stdio", "--percent-limit", "5", "-g", "none",
                              "--sort", "symbol"], capture_output=True, text=True).stdout
        print("--- inclusive (children) ---")
        print("\n".join(l[:200] for l in rep.splitlines() if l and not l.startswith("#"))[:8000])
    finally:
        if cp:
            cp.stop()
        if a.keep:
            lib.log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
