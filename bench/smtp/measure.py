#!/usr/bin/env python3
"""Measurement helper for bench/smtp/run.sh.

  measure.py mem PID                      -> {"rss_kib":..,"pss_kib":..}
  measure.py load --server NAME ...       -> one JSON line appended to --out
  measure.py table RESULTS.jsonl META.json -> the summary table on stdout

Only ever connects to 127.0.0.1 (smtp-source is given 127.0.0.1:PORT).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time


# --- memory -----------------------------------------------------------------

def mem_of(pid):
    """VmRSS (status) and Pss (smaps_rollup) of one process, in KiB."""
    rss = pss = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                    break
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return rss, pss


def children_of(root):
    """root and all its descendants (by scanning /proc)."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            ppid = int(s[s.rindex(")") + 2:].split()[1])
            parent[int(d)] = ppid
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    tree = {root}
    changed = True
    while changed:
        changed = False
        for p, pp in parent.items():
            if pp in tree and p not in tree:
                tree.add(p)
                changed = True
    return tree


class Sampler(threading.Thread):
    """Samples the peak RSS/PSS of one pid (or, with tree=True, the summed PSS
    of a process tree) every `interval` seconds until stop()."""

    def __init__(self, pid, interval=0.1, tree=False):
        super().__init__(daemon=True)
        self.pid, self.interval, self.tree = pid, interval, tree
        self.peak_rss = self.peak_pss = 0
        self.samples = 0
        self._halt = threading.Event()

    def sample(self):
        if self.tree:
            rss = pss = 0
            for p in children_of(self.pid):
                r, s = mem_of(p)
                rss += r or 0
                pss += s or 0
        else:
            rss, pss = mem_of(self.pid)
        if rss:
            self.peak_rss = max(self.peak_rss, rss)
        if pss:
            self.peak_pss = max(self.peak_pss, pss)
        self.samples += 1

    def run(self):
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join()
        self.sample()


# --- machine load -------------------------------------------------------------

def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_cpu_jiffies(root):
    """utime+stime+cutime+cstime summed over root and its descendants: the CPU
    the tree has used, including children it has already reaped."""
    total = 0
    for pid in children_of(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
            v = s[s.rindex(")") + 2:].split()
            total += int(v[11]) + int(v[12]) + int(v[13]) + int(v[14])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return total


def cpu_jiffies():
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    total = sum(v[:8])  # without guest time, already in user
    return total - idle, total


# --- counting ---------------------------------------------------------------

def maildir_count(path):
    try:
        with os.scandir(path) as it:
            return sum(1 for e in it if e.is_file())
    except FileNotFoundError:
        return 0


def store_count(cmd):
    """Lines printed by a shell command (e.g. `postcell-engine mailbox list`)."""
    r = subprocess.run(cmd, shell=True, capture_output=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd!r} exited {r.returncode}: {r.stderr.decode(errors='replace')[-2000:]}")
    return sum(1 for line in r.stdout.splitlines() if line.strip())


# --- one load run -----------------------------------------------------------

def cmd_load(a):
    result = {"server": a.server, "size": a.size, "n": a.n, "sessions": a.sessions, "phase": a.phase}
    before_mailbox = maildir_count(a.maildir) if a.maildir else None
    before_store = None
    if a.store_count_cmd:
        try:
            before_store = store_count(a.store_count_cmd)
        except Exception as e:  # reported, not hidden
            result["store_error"] = f"before the run: {e}"

    sampler = None
    if a.pid:
        sampler = Sampler(a.pid, a.interval, tree=a.tree)
        sampler.start()

    result["loadavg_start"] = loadavg()
    cpu0 = cpu_jiffies()
    ours0 = tree_cpu_jiffies(a.pid) if a.pid else 0
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    argv = ["timeout", str(a.timeout), a.smtp_source, "-s", str(a.sessions), "-m", str(a.n),
            "-l", str(a.size), "-f", a.sender, "-t", a.recipient, "-M", a.helo,
            f"127.0.0.1:{a.port}"]
    result["command"] = " ".join(argv)
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True)
    t1 = time.monotonic()
    cpu1 = cpu_jiffies()
    ours1 = tree_cpu_jiffies(a.pid) if a.pid else 0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    total = max(1, cpu1[1] - cpu0[1])
    client_secs = sum((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime) for r0, r1 in zip(ru0, ru1))
    ours = (ours1 - ours0) + client_secs * CLK_TCK
    result["machine_cpu_busy_pct"] = 100.0 * (cpu1[0] - cpu0[0]) / total
    result["server_cpu_pct"] = 100.0 * (ours1 - ours0) / total
    # CPU used by anything but the server, smtp-source and this script (other
    # processes, interrupts): high values mean a shared, busy machine.
    result["foreign_cpu_pct"] = max(0.0, 100.0 * ((cpu1[0] - cpu0[0]) - ours) / total)
    result["smtp_source_rc"] = p.returncode
    result["smtp_source_stderr"] = (p.stdout + p.stderr).decode(errors="replace")[-2000:]
    result["accepted_secs"] = t1 - t0
    result["accepted_rate"] = a.n / (t1 - t0) if p.returncode == 0 else None

    if a.maildir:
        # Time until every message is in the Maildir (delivered), polled every 10 ms.
        target = before_mailbox + a.n
        deadline = t0 + a.timeout
        count = maildir_count(a.maildir)
        while count < target and time.monotonic() < deadline:
            time.sleep(0.01)
            count = maildir_count(a.maildir)
        t2 = time.monotonic()
        result["delivered"] = count - before_mailbox
        result["mailbox_secs"] = t2 - t0
        result["mailbox_rate"] = a.n / (t2 - t0) if count >= target else None

    if sampler:
        sampler.stop()
        result["peak_rss_kib"] = sampler.peak_rss
        result["peak_pss_kib"] = sampler.peak_pss
        result["mem_samples"] = sampler.samples

    if a.store_count_cmd:
        try:
            after = store_count(a.store_count_cmd)
            result["stored"] = after - before_store if before_store is not None else None
        except Exception as e:
            result["store_error"] = f"after the run: {e}"
            result["stored"] = None

    ok = p.returncode == 0
    if a.maildir:
        ok = ok and result["delivered"] == a.n
    if a.store_count_cmd:
        ok = ok and result["stored"] == a.n
    busy = bool(a.max_foreign_cpu) and result["foreign_cpu_pct"] > a.max_foreign_cpu
    if ok and busy and a.phase == "measure":
        result["phase"] = "discarded-busy"
    with open(a.out, "a") as f:
        f.write(json.dumps(result) + "\n")
    brief = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()
             if k not in ("smtp_source_stderr", "command")}
    print(json.dumps(brief), file=sys.stderr)
    if not ok:
        print(f"smtp-source output: {result['smtp_source_stderr']}", file=sys.stderr)
    if not ok:
        return 1
    return 3 if busy else 0


# --- the table --------------------------------------------------------------

def mib(kib):
    return "-" if not kib else f"{kib / 1024:.1f}"


def fmt_rate(x):
    return "FAILED" if x is None else f"{x:.0f}"


def median(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return statistics.median(xs)


def size_label(n):
    return f"{n // 1024} KB" if n % 1024 == 0 else f"{n} B"


def cmd_table(a):
    rows = [json.loads(l) for l in open(a.results) if l.strip()]
    meta = json.load(open(a.meta))
    discarded = sum(1 for r in rows if r.get("phase") == "discarded-busy")
    rows = [r for r in rows if r.get("phase") == "measure"]
    sizes = sorted({r["size"] for r in rows})
    idle = meta.get("engine_idle", {})
    out = []
    out.append(f"Postcell SMTP bench — {meta.get('date', '')}")
    out.append(f"machine: {meta.get('machine', '')}")
    out.append(f"postfix {meta.get('postfix_version', '?')}, engine {meta.get('engine', '?')}")
    out.append(f"load: smtp-source -s {meta.get('sessions')} (one connection per message), "
               f"median of {meta.get('repeats')} runs per cell; N = {meta.get('counts')}")
    out.append("")
    hdr = ["size", "N", "postfix msgs/s (accepted)", "postfix msgs/s (in mailbox)",
           "engine msgs/s (stored)", "engine/postfix-in-mailbox",
           "engine RSS idle/peak MiB", "engine PSS idle/peak MiB"]
    table = []
    problems = []
    for s in sizes:
        pf = [r for r in rows if r["size"] == s and r["server"] == "postfix"]
        en = [r for r in rows if r["size"] == s and r["server"] == "engine"]
        pf_acc = median([r.get("accepted_rate") for r in pf])
        pf_box = median([r.get("mailbox_rate") for r in pf])
        en_rate = median([r.get("accepted_rate") if r.get("stored") == r["n"] else None for r in en])
        for r in pf:
            if r.get("smtp_source_rc") != 0 or r.get("delivered") != r["n"]:
                problems.append(f"postfix {size_label(s)}: smtp-source rc={r.get('smtp_source_rc')}, "
                                f"delivered {r.get('delivered')}/{r['n']}")
        for r in en:
            if r.get("smtp_source_rc") != 0 or r.get("stored") != r["n"]:
                rate = r.get("accepted_rate")
                problems.append(f"engine {size_label(s)}: smtp-source rc={r.get('smtp_source_rc')} after "
                                f"{r['accepted_secs']:.1f} s" + (f" ({rate:.0f} msgs/s)" if rate else "") +
                                f", stored {r.get('stored')}/{r['n']}"
                                + (f": {r['smtp_source_stderr'].strip()[-300:]}" if r.get('smtp_source_stderr', '').strip() else "")
                                + (f"; mailbox list failed {r['store_error']}" if r.get("store_error") else ""))
        ratio = f"{en_rate / pf_box:.2f}" if en_rate and pf_box else "-"
        peak_rss = max([r.get("peak_rss_kib") or 0 for r in en] or [0])
        peak_pss = max([r.get("peak_pss_kib") or 0 for r in en] or [0])
        n = pf[0]["n"] if pf else (en[0]["n"] if en else "?")
        table.append([size_label(s), str(n), fmt_rate(pf_acc), fmt_rate(pf_box),
                      fmt_rate(en_rate) if en else "-", ratio,
                      f"{mib(idle.get('rss_kib'))} / {mib(peak_rss)}",
                      f"{mib(idle.get('pss_kib'))} / {mib(peak_pss)}"])
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(hdr)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    out.append(line(hdr))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in table:
        out.append(line(r))
    out.append("")
    for s in sizes:
        def rng(server, key):
            xs = [r.get(key) for r in rows if r["size"] == s and r["server"] == server and r.get(key)]
            return f"{min(xs):.0f}-{max(xs):.0f}" if xs else "-"
        out.append(f"range over runs, {size_label(s)}: postfix accepted {rng('postfix', 'accepted_rate')}, "
                   f"postfix in mailbox {rng('postfix', 'mailbox_rate')}, engine stored {rng('engine', 'accepted_rate')} msgs/s")
    cpu = {srv: [r["server_cpu_pct"] for r in rows if r["server"] == srv and r.get("server_cpu_pct") is not None]
           for srv in ("postfix", "engine")}
    if cpu["postfix"] or cpu["engine"]:
        out.append("server CPU during the runs (% of the whole machine, 100 = all cores): " + ", ".join(
            f"{srv} {min(v):.0f}-{max(v):.0f}%" for srv, v in cpu.items() if v))
    foreign = [r["foreign_cpu_pct"] for r in rows if r.get("foreign_cpu_pct") is not None]
    if foreign:
        out.append(f"machine: CPU used by other processes during the runs {min(foreign):.0f}-{max(foreign):.0f}% "
                   f"of the machine; {discarded} run(s) discarded and repeated because it was over "
                   f"{meta.get('max_foreign_cpu')}%")
    pf_idle = meta.get("postfix_idle_pss_kib")
    pf_peaks = [r.get("peak_pss_kib") for r in rows if r["server"] == "postfix" and r.get("peak_pss_kib")]
    if pf_idle:
        out.append(f"for comparison, Postfix (master + all its processes) PSS: idle {mib(pf_idle)} MiB, "
                   f"peak {mib(max(pf_peaks) if pf_peaks else 0)} MiB")
    if idle.get("rssanon_kib") is not None:
        out.append(f"engine idle RSS = {mib(idle['rssanon_kib'])} MiB anonymous + {mib(idle.get('rssfile_kib'))} MiB "
                   f"file-backed (executable and shared libraries), {idle.get('threads')} threads")
    out.append("goal: engine/postfix-in-mailbox >= 1.0 at every size, engine idle RSS <= 16 MiB")
    for extra in meta.get("notes", []):
        out.append(extra)
    if problems:
        out.append("PROBLEMS:")
        out.extend("  " + p for p in problems)
    print("\n".join(out))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mem")
    m.add_argument("pid", type=int)
    m.add_argument("--tree", action="store_true")
    l = sub.add_parser("load")
    l.add_argument("--server", required=True)
    l.add_argument("--phase", default="measure")
    l.add_argument("--port", type=int, required=True)
    l.add_argument("--n", type=int, required=True)
    l.add_argument("--size", type=int, required=True)
    l.add_argument("--sessions", type=int, default=20)
    l.add_argument("--smtp-source", required=True)
    l.add_argument("--sender", required=True)
    l.add_argument("--recipient", required=True)
    l.add_argument("--helo", default="client.test")
    l.add_argument("--timeout", type=int, default=300)
    l.add_argument("--maildir")
    l.add_argument("--store-count-cmd")
    l.add_argument("--pid", type=int)
    l.add_argument("--tree", action="store_true")
    l.add_argument("--interval", type=float, default=0.1)
    l.add_argument("--out", required=True)
    l.add_argument("--max-foreign-cpu", type=float, default=0,
                   help="exit 3 (after recording the run) when other processes used more than this %% of the machine")
    t = sub.add_parser("table")
    t.add_argument("results")
    t.add_argument("meta")
    a = ap.parse_args()
    if a.cmd == "mem":
        if a.tree:
            s = Sampler(a.pid, tree=True)
            s.sample()
            print(json.dumps({"rss_kib": s.peak_rss, "pss_kib": s.peak_pss}))
        else:
            rss, pss = mem_of(a.pid)
            out = {"rss_kib": rss, "pss_kib": pss}
            with open(f"/proc/{a.pid}/status") as f:
                for line in f:
                    if line.startswith(("RssAnon:", "RssFile:", "RssShmem:", "Threads:")):
                        k, v = line.split(":", 1)
                        out[k.lower() + ("" if k == "Threads" else "_kib")] = int(v.split()[0])
            print(json.dumps(out))
        return 0
    if a.cmd == "load":
        return cmd_load(a)
    return cmd_table(a)


if __name__ == "__main__":
    sys.exit(main())
