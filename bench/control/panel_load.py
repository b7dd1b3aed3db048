#!/usr/bin/env python3
"""Panel and API latency with N seeded tenants (default 10,000).

Starts a private `postcell up` (SQLite, or a private PostgreSQL 15 with
--database postgres) on free loopback ports, seeds N tenants first with
`postcell seed`, adds a staff admin (`postcell staff-add`), signs one real
customer up through the API (verified, one mailbox, its cell running), logs
both in through the login form (session cookies) and makes bearer tokens,
then loads each target with wrk (fixed concurrency, fixed duration; closed
loop: each connection sends its next request when the previous answer is
in) and reports p50/p90/p99 and requests/s. Afterwards it prints the
database's plan and timing for the tenant-search query.

Usage: python3 bench/control/panel_load.py [--database sqlite|postgres] [--tenants 10000]
       [--connections 10] [--threads 2] [--duration 20] [--only NAME,...] [--keep]
Writes bench/control/last-load-DATABASE.txt.
"""

import argparse
import resource
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

SEARCH_SQL = """SELECT * FROM tenants t WHERE 1 = 1
 AND (LOWER(t.slug) LIKE {p} ESCAPE '\\' OR LOWER(t.name) LIKE {p} ESCAPE '\\' OR t.id = {q}
  OR EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = t.id AND u.email LIKE {p} ESCAPE '\\')
  OR EXISTS (SELECT 1 FROM mailboxes m WHERE m.tenant_id = t.id AND m.address LIKE {p} ESCAPE '\\'))
 ORDER BY t.created_at DESC, t.id LIMIT 50 OFFSET 0"""


def parse_wrk(out):
    def secs(v):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
        n, u = float(m.group(1)), m.group(2)
        return n * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[u]
    r = {}
    for p in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % p, out, re.M)
        r["p" + p] = secs(m.group(1)) * 1000 if m else float("nan")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    r["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    r["errors"] = m.group(1).strip() if m else ""
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    r["max"] = secs(m.group(3)) * 1000 if m else float("nan")
    return r


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid):
    """CPU seconds of a process and its direct children (the postmaster and
    its backends; the backends of postcell's pool live as long as it does)."""
    total = 0.0
    pids = [pid]
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            total += proc_cpu(p)
        except OSError:
            pass
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", choices=["sqlite", "postgres"], default=os.environ.get("DATABASE", "sqlite"))
    ap.add_argument("--tenants", type=int, default=int(os.environ.get("TENANTS", 10000)))
    ap.add_argument("--connections", type=int, default=int(os.environ.get("CONNECTIONS", 10)))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", 2)))
    ap.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", 20)))
    ap.add_argument("--only", default=os.environ.get("ONLY", ""))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    out_path = a.out or os.path.join(HERE, "last-load-%s.txt" % a.database)
    if not os.access(lib.POSTCELL, os.X_OK):
        sys.exit("no %s: build it first (release)" % lib.POSTCELL)
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")

    quiet = lib.wait_quiet()
    work = tempfile.mkdtemp(prefix="postcell-bench-control-")
    os.chmod(work, 0o755)
    pg = cp = None
    rows, notes, explain = [], [], []
    ok = True
    try:
        if a.database == "postgres":
            pg = lib.PostgresServer(work).start()
            lib.log("postgres on 127.0.0.1:%d" % pg.port)
        cp = lib.ControlPlane(work, slots=4, database=pg.url if pg else None)

        t0 = time.monotonic()
        cp.cli("seed", "--tenants", str(a.tenants))
        seed_s = time.monotonic() - t0
        lib.log("seeded %d tenants in %.1f s" % (a.tenants, seed_s))
        notes.append("postcell seed --tenants %d took %.1f s" % (a.tenants, seed_s))
        if pg and os.environ.get("ANALYZE", "1") == "1":
            # Autovacuum would analyze the new rows within a minute or so;
            # without statistics the first targets measure other plans.
            pg.psql("ANALYZE")
            notes.append("ANALYZE run after seeding (ANALYZE=0 to measure without statistics)")
        staff_email, staff_pw = "staff@bench.test", lib.strong_password()
        cp.cli("staff-add", "--email", staff_email, "--role", "admin", input=staff_pw + "\n")

        cp.start()
        lib.log("postcell up on :%d" % cp.port)

        # One real customer: signup, verify, token, mailbox; its cell runs.
        slug = lib.rand_slug("bl")
        owner_email, owner_pw = "owner-%s@client.test" % slug, lib.strong_password()
        h = lib.HTTPS(cp.port)
        st, _, body = h.request("POST", "/api/v1/signup", json_body={"email": owner_email, "password": owner_pw, "name": "Load family",
                                                                     "slug": slug, "plan": "family"})
        assert st == 201, (st, body)
        link = lib.read_link(cp.state, owner_email)
        st, _, _ = h.request("GET", "/" + link.split("://", 1)[1].split("/", 1)[1])
        assert st == 200
        owner_token = lib.api_token(cp.port, owner_email, owner_pw)
        for local in ("anna", "ben"):
            st, _, body = h.request("POST", "/api/v1/mailboxes", headers={"Authorization": "Bearer " + owner_token},
                                    json_body={"local": local, "displayName": local, "password": lib.strong_password()})
            assert st == 201, (st, body)
        t0 = time.monotonic()
        healthy = False
        while time.monotonic() - t0 < 30:
            st, _, body = h.request("GET", "/api/v1/cell", headers={"Authorization": "Bearer " + owner_token})
            if st == 200 and json.loads(body).get("healthy"):
                healthy = True
                break
            time.sleep(0.2)
        notes.append("the customer's cell is %s (the dashboard asks a healthy cell for its usage on every request)" %
                     ("healthy" if healthy else "NOT healthy after 30 s"))
        staff_token = lib.api_token(cp.port, staff_email, staff_pw)
        staff_cookie = lib.login_cookie(cp.port, staff_email, staff_pw)
        owner_cookie = lib.login_cookie(cp.port, owner_email, owner_pw)
        mid = "seed%06d" % (a.tenants * 4242 // 10000)
        st, _, body = h.request("GET", "/api/v1/staff/tenants?q=" + mid, headers={"Authorization": "Bearer " + staff_token})
        found = json.loads(body)
        assert st == 200 and found, (st, body[:200])
        seeded_id = found[0]["id"]
        h.close()

        base = "https://127.0.0.1:%d" % cp.port
        sc = {"Cookie": "__Host-postcell=" + staff_cookie}
        oc = {"Cookie": "__Host-postcell=" + owner_cookie}
        sb = {"Authorization": "Bearer " + staff_token}
        ob = {"Authorization": "Bearer " + owner_token}
        last = "seed%06d" % (a.tenants - 1)
        targets = [
            # name, method, path, headers, body, what the answer must contain
            ("staff search q=%s (1 hit) [panel]" % mid, "GET", "/staff/tenants?q=" + mid, sc, None, mid.encode()),
            ("staff search q=%s (1 hit) [API]" % mid, "GET", "/api/v1/staff/tenants?q=" + mid, sb, None, mid.encode()),
            ("staff search q=nohit-xyz (0 hits) [panel]", "GET", "/staff/tenants?q=nohit-xyz", sc, None, b"<"),
            ("staff search q=nohit-xyz (0 hits) [API]", "GET", "/api/v1/staff/tenants?q=nohit-xyz", sb, None, b"[]"),
            ("staff search q=anna@%s (mailbox) [API]" % last, "GET", "/api/v1/staff/tenants?q=anna@" + last, sb, None, last.encode()),
            ("staff search q= (newest 50) [panel]", "GET", "/staff/tenants?q=", sc, None, b"seed"),
            ("staff search q= (newest 50) [API]", "GET", "/api/v1/staff/tenants", sb, None, b"seed"),
            ("staff fleet overview [panel]", "GET", "/staff", sc, None, b"seeded"),
            ("staff fleet overview [API]", "GET", "/api/v1/staff/fleet", sb, None, b"seeded"),
            ("staff tenant detail (seeded) [panel]", "GET", "/staff/tenants/" + seeded_id, sc, None, mid.encode()),
            ("staff tenant detail (seeded) [API]", "GET", "/api/v1/staff/tenants/" + seeded_id, sb, None, mid.encode()),
            ("customer dashboard /panel", "GET", "/panel", oc, None, slug.encode()),
            ("GET /api/v1/mailboxes (customer)", "GET", "/api/v1/mailboxes", ob, None, b"anna@"),
            ("POST /api/v1/password-check", "POST", "/api/v1/password-check", {"Content-Type": "application/json"},
             json.dumps({"password": "Correct-Horse-7-Battery", "user": "anna@example.org"}), b"accepted"),
        ]
        if a.only:
            keys = [k.strip() for k in a.only.split(",") if k.strip()]
            targets = [t for t in targets if any(k in t[0] for k in keys)]

        # Idle cost with N tenants: the reconciler runs every 2 s.
        pid = cp.proc.pid
        c0, w0 = proc_cpu(pid), time.monotonic()
        time.sleep(10)
        idle_pct = (proc_cpu(pid) - c0) / (time.monotonic() - w0) * 100
        notes.append("postcell idle CPU (10 s, no requests): %.1f%% of one core" % idle_pct)

        for name, method, path, headers, body, expect in targets:
            hc = lib.HTTPS(cp.port)
            for k, v in headers.items():
                if k == "Cookie":
                    hc.cookies["__Host-postcell"] = v.split("=", 1)[1]
            st, _, data = hc.request(method, path, body=body, headers={k: v for k, v in headers.items() if k != "Cookie"})
            t1 = time.monotonic()
            for _ in range(20):
                hc.request(method, path, body=body, headers={k: v for k, v in headers.items() if k != "Cookie"})
            single_ms = (time.monotonic() - t1) / 20 * 1000
            hc.close()
            if st != 200 or expect not in data:
                ok = False
                rows.append((name, None, "check failed: %d %r" % (st, data[:120])))
                continue
            lua = os.path.join(work, "req.lua")
            with open(lua, "w") as f:
                f.write("wrk.method = %s\n" % json.dumps(method))
                if body is not None:
                    f.write("wrk.body = %s\n" % json.dumps(body))
                for k, v in headers.items():
                    f.write("wrk.headers[%s] = %s\n" % (json.dumps(k), json.dumps(v)))
            c0, w0 = proc_cpu(pid), time.monotonic()
            d0 = tree_cpu(pg.proc.pid) if pg else 0.0
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            m0 = machine_ticks()
            cmd = ["timeout", str(a.duration + 30), "wrk", "-t", str(a.threads), "-c", str(a.connections), "-d", "%ds" % a.duration,
                   "--timeout", "10s", "--latency", "-s", lua, base + path]
            r = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.monotonic() - w0
            server_cpu = (proc_cpu(pid) - c0) / wall * 100
            db_cpu = (tree_cpu(pg.proc.pid) - d0) / wall * 100 if pg else 0.0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            m1 = machine_ticks()
            busy = 1 - (m1[1] - m0[1]) / max(1, m1[0] - m0[0])  # share of the whole machine
            wrk_cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall * 100
            res = parse_wrk(r.stdout)
            res["wrk_cpu"] = wrk_cpu
            res["foreign"] = max(0.0, busy * 100 * os.cpu_count() - server_cpu - wrk_cpu - db_cpu) / os.cpu_count()
            res["db_cpu"] = db_cpu
            res["db_ms_per_req"] = (db_cpu / 100) * wall / max(1, res["requests"]) * 1000
            res["single_ms"] = single_ms
            res["server_cpu"] = server_cpu
            res["cpu_ms_per_req"] = (server_cpu / 100) * (time.monotonic() - w0) / max(1, res["requests"]) * 1000
            if r.returncode != 0 or res["non2xx"] or res["errors"]:
                ok = False
            rows.append((name, res, r.stdout if r.returncode != 0 else ""))
            lib.log("%-48s p50 %7.2f  p90 %7.2f  p99 %7.2f ms  %8.1f req/s  server %3.0f%% db %3.0f%% wrk %3.0f%% other %3.0f%%  %s%s" % (
                name, res["p50"], res["p90"], res["p99"], res["rps"], server_cpu, db_cpu, wrk_cpu, res["foreign"],
                "non-2xx %d " % res["non2xx"] if res["non2xx"] else "", res["errors"]))

        # The search query itself, straight on the database.
        for q in (mid, "nohit-xyz"):
            like = "%" + q + "%"
            if pg:
                sql = SEARCH_SQL.format(p="'%s'" % like, q="'%s'" % q)
                try:
                    runs = [pg.psql("EXPLAIN (ANALYZE, BUFFERS) " + sql) for _ in range(3)]
                    explain.append("PostgreSQL, q=%s, EXPLAIN ANALYZE (third of 3 runs; execution times: %s):\n%s" % (
                        q, ", ".join(re.findall(r"Execution Time: ([\d.]+ ms)", "".join(runs))), runs[-1]))
                except subprocess.CalledProcessError as e:
                    explain.append("PostgreSQL EXPLAIN failed: %s" % e.stderr)
            else:
                db = os.path.join(cp.state, "control.db")
                sql = SEARCH_SQL.format(p="'%s'" % like, q="'%s'" % q)
                plan = subprocess.run(["sqlite3", "-readonly", db, "EXPLAIN QUERY PLAN " + sql], capture_output=True, text=True).stdout
                timing = subprocess.run(["sqlite3", "-readonly", db], input=".timer on\n" + sql + ";\n" + sql + ";\n" + sql + ";\n",
                                        capture_output=True, text=True).stdout
                times = re.findall(r"Run Time: real ([\d.]+)", timing)
                explain.append("SQLite, q=%s: EXPLAIN QUERY PLAN\n%s  run time (sqlite3 CLI, 3 runs): %s s" % (q, plan, ", ".join(times)))
    finally:
        lib.finish(cp, pg, work, a.keep or not ok)

    lines = ["Postcell panel/API load bench — %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
             lib.machine_line(), lib.build_line(),
             "database: %s with %d seeded tenants (2 mailboxes each) + 1 real tenant + 1 staff admin" % (a.database, a.tenants),
             "machine busy before the start (after waiting up to QUIET_WAIT s for < 25%%): %.0f%%" % (quiet * 100),
             "load: wrk -t%d -c%d -d%ds --latency (closed loop, keep-alive HTTPS) per target, one after another; wrk shares the 2 cores"
             % (a.threads, a.connections, a.duration), ""]
    lines += ["| target | p50 ms | p90 ms | p99 ms | max ms | req/s | 1 client ms | server CPU ms/req | PostgreSQL CPU ms/req | server CPU % | others % | errors |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, res, extra in rows:
        if res is None:
            lines.append("| %s | — | — | — | — | — | — | — | — | — | — | %s |" % (name, extra))
        else:
            err = ", ".join(x for x in ["non-2xx %d" % res["non2xx"] if res["non2xx"] else "", res["errors"]] if x) or "0"
            lines.append("| %s | %.2f | %.2f | %.2f | %.1f | %.0f | %.2f | %.2f | %s | %.0f | %.0f | %s |" % (
                name, res["p50"], res["p90"], res["p99"], res["max"], res["rps"], res["single_ms"], res["cpu_ms_per_req"],
                "%.2f" % res["db_ms_per_req"] if pg else "(in process)",
                res["server_cpu"], res["foreign"], err))
    lines += ["", "1 client ms: mean of 20 sequential requests on one keep-alive connection before the load (no contention)",
              "server CPU ms/req: postcell's CPU time during the wrk run / requests (the cell's work for /panel not included)",
              "server CPU %: postcell's CPU during the run, % of one core (200 = both cores); others %: CPU used by everything",
              "but postcell, PostgreSQL and wrk during the run, % of the whole machine (other agents' builds and tests share it)"]
    lines += [""] + notes + [""] + explain
    text = "\n".join(lines) + "\n"
    print(text)
    with open(out_path, "w") as f:
        f.write(text)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
