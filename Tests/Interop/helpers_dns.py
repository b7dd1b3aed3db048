"""Private DNS servers for the resolver tests, all on 127.0.0.1 only:

  - KnotServer: an authoritative Knot DNS (knotd, Debian's `knot`, 3.2) with
    zones given as text, optionally signed by Knot itself (automatic DNSSEC
    signing, ECDSA P-256, NSEC) and optionally "broken" (a zone file that does
    not parse: Knot keeps the zone configured but unloaded and answers
    SERVFAIL for it);
  - UnboundResolver: a validating Unbound (Debian's `unbound`, 1.17) whose
    only upstreams are stub zones on loopback, including the root, so it can
    never query the internet; trust anchors only for the zones given;
  - BlackHoleUDP: a mock DNS server that reads queries and never answers;
  - kdig helpers for reference answers (Debian's `knot-dnsutils`).

Each server runs in the foreground as a child in a session of its own, with
its configuration, state and log in one directory; stop() (also at exit, and
through `with`) terminates it and SIGKILLs its process group. Nothing here
sends a packet to any address but 127.0.0.1.

    with KnotServer(tmp / "knot", {"example.test.": ZONE}, signed=["signed.test."]) as knot:
        with UnboundResolver(tmp / "unbound", {"example.test.": knot.addr},
                             trust_anchors=knot.trust_anchors("signed.test.")) as ub:
            kdig(ub.port, "example.test.", "SOA")
"""
import atexit
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

HOST = "127.0.0.1"
_running = []


def have_dns_tools():
    """None when knotd, kdig and unbound are all installed, else what is missing."""
    missing = [t for t in ("knotd", "kdig", "unbound") if not _which(t)]
    return ", ".join(missing) or None


def _which(tool):
    return shutil.which(tool) or next((p for p in (f"/usr/sbin/{tool}", f"/usr/bin/{tool}")
                                       if os.access(p, os.X_OK)), None)


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (DNS servers bind both)."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind((HOST, 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


def stop_session(proc, ask, timeout=10):
    """Stops a daemon started with start_new_session: `ask()` asks it to end,
    then after `timeout` its whole process group is SIGKILLed and reaped."""
    if proc.poll() is None:
        ask()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def fqdn(name):
    return name if name.endswith(".") else name + "."


_QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
           "AAAA": 28, "DS": 43, "DNSKEY": 48, "TLSA": 52}


def dns_ping(port, name, rtype="SOA", qclass=1, timeout=0.2, host=HOST):
    """One small UDP query (no EDNS, RD set) with a short timeout, for
    readiness checks: (rcode, ancount) or None when nothing came back.
    kdig's shortest timeout is 1 s, and a datagram sent before the server
    binds is simply lost, which made every start take a second longer."""
    qid = int.from_bytes(os.urandom(2), "big")
    wire = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in fqdn(name).split(".")[:-1]:
        wire += bytes([len(label)]) + label.encode()
    wire += b"\x00" + _QTYPES[rtype].to_bytes(2, "big") + qclass.to_bytes(2, "big")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(wire, (host, port))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data = s.recv(65535)
                if len(data) >= 12 and data[:2] == wire[:2]:
                    return data[3] & 0x0F, int.from_bytes(data[6:8], "big")
        except OSError:  # timeout, or ICMP port unreachable
            return None
    return None


# --- kdig -------------------------------------------------------------------

def kdig(port, name, rtype, *opts, host=HOST, timeout=10):
    """Runs `kdig @host -p port OPTS NAME TYPE` (+time=1 +retry=0 first, so
    later options win); returns the CompletedProcess (text)."""
    cmd = [_which("kdig") or "kdig", f"@{host}", "-p", str(port), "+time=1", "+retry=0",
           *opts, name, rtype]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def kdig_records(port, name, rtype, *opts):
    """The answer section as kdig prints it, parsed into the resolver CLI's
    record form: [{"name", "type", "ttl", "data"}] in answer order. `data` is
    kdig's presentation form (what `kdig +short` prints)."""
    r = kdig(port, name, rtype, "+noall", "+answer", *opts)
    if r.returncode != 0:
        raise RuntimeError(f"kdig failed ({r.returncode}): {r.stderr}{r.stdout}")
    records = []
    for line in r.stdout.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        owner, ttl, cls, typ, data = line.split(None, 4)
        assert cls == "IN", line
        records.append({"name": owner, "type": typ, "ttl": int(ttl), "data": data.strip()})
    return records


def kdig_status(port, name, rtype, *opts):
    """(rcode, flags) from kdig's header line, e.g. ("NOERROR", {"qr","aa","tc"})."""
    r = kdig(port, name, rtype, *opts)
    status, flags = None, set()
    for line in r.stdout.splitlines():
        if ";; ->>HEADER<<-" in line:
            status = line.split("status:")[1].split(";")[0].split(",")[0].strip()
        elif line.startswith(";; Flags:"):
            flags = set(line.split(";;", 1)[1].split(":", 1)[1].split(";")[0].split())
    if status is None:
        raise RuntimeError(f"no header in kdig output ({r.returncode}): {r.stdout}{r.stderr}")
    return status, flags


# --- processes --------------------------------------------------------------

class _Daemon:
    name = "daemon"

    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.log_path = self.dir / f"{self.name}.log"

    def _spawn(self, cmd):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        _running.append(self)

    def log(self):
        text = ""
        for p in {self.log_path, getattr(self, "extra_log", self.log_path)}:
            try:
                text += pathlib.Path(p).read_text(errors="replace")[-6000:]
            except FileNotFoundError:
                pass
        return text

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        stop_session(proc, lambda: proc.send_signal(signal.SIGTERM), timeout)
        self._log.close()
        if self in _running:
            _running.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@atexit.register
def _stop_all():
    for d in list(_running):
        d.stop(timeout=2)


# --- Knot -------------------------------------------------------------------

class KnotServer(_Daemon):
    """knotd serving `zones` ({"example.test.": "zone file text"}) on
    127.0.0.1:port (a free port unless given), from `directory`.

    signed: names of zones (also in `zones`) Knot signs itself on load
      (policy "test": ECDSAP256SHA256, NSEC, keys in the KASP database in
      `directory`); trust_anchors()/ds() give what a validator needs.
    broken: names of zones whose file is garbage: configured, never loaded,
      Knot answers SERVFAIL for any name in them.
    Returns once every good zone answers SOA (and each signed zone DNSKEY)."""

    name = "knot"

    def __init__(self, directory, zones, signed=(), broken=(), port=None, start=True):
        super().__init__(directory)
        self.zones = {fqdn(z): text for z, text in zones.items()}
        self.signed = [fqdn(z) for z in signed]
        self.broken = [fqdn(z) for z in broken]
        for z in self.signed:
            assert z in self.zones, f"signed zone {z} has no zone text"
        self.port = port or free_port()
        self.conf = self.dir / "knot.conf"
        # The control socket lives in rundir; a Unix socket path must fit in
        # 108 bytes, which a deep pytest tmp_path may not.
        rundir = self.dir / "run"
        if len(str(rundir / "knot.sock")) > 100:
            rundir = pathlib.Path(tempfile.mkdtemp(prefix="knot-run-"))
        self.rundir = rundir
        self.rundir.mkdir(parents=True, exist_ok=True)
        self._write()
        if start:
            self.start()

    @property
    def addr(self):
        """The stub address form Unbound and the engine take: 127.0.0.1@PORT."""
        return f"{HOST}@{self.port}"

    @property
    def server(self):
        return f"{HOST}:{self.port}"

    def _write(self):
        zdir = self.dir / "zones"
        zdir.mkdir(exist_ok=True)
        # Knot 3.2 does not create its database directory: without it the
        # KASP database cannot open and signed zones fail to load.
        (self.dir / "db").mkdir(exist_ok=True)
        for z, text in self.zones.items():
            (zdir / f"{z}zone").write_text(text)
        for z in self.broken:
            (zdir / f"{z}zone").write_text(
                "$ORIGIN " + z + "\n@ 300 IN SOA this is ( not a zone file\n"
                "garbage ))) IN A 999.1.2.3.4\n")
        zone_lines = []
        for z in list(self.zones) + self.broken:
            zone_lines.append(f"  - domain: {z}")
            if z in self.signed:
                zone_lines += ["    dnssec-signing: on", "    dnssec-policy: test"]
        self.conf.write_text(f"""\
# Written by Tests/Interop/helpers_dns.py (Knot DNS 3.2 syntax).
server:
    rundir: "{self.rundir}"
    listen: {HOST}@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

control:
    listen: "{self.rundir}/knot.sock"

database:
    storage: "{self.dir}/db"

log:
  - target: stderr
    any: info

policy:
  - id: test
    algorithm: ecdsap256sha256
    nsec3: off
    signing-threads: 1

template:
  - id: default
    storage: "{zdir}"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    semantic-checks: off

zone:
""" + "\n".join(zone_lines) + "\n")

    def start(self, timeout=20):
        knotd = _which("knotd")
        if not knotd:
            raise RuntimeError("knotd is not installed (apt-get install knot)")
        knotc = _which("knotc")
        if knotc:
            r = subprocess.run([knotc, "-c", str(self.conf), "conf-check"],
                               capture_output=True, text=True, timeout=20)
            if r.returncode != 0:
                raise RuntimeError(f"knotc conf-check: {r.stdout}{r.stderr}")
        self._spawn([knotd, "-c", str(self.conf)])
        deadline = time.monotonic() + timeout
        pending = [z for z in self.zones]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"knotd exited with {self.proc.returncode}:\n{self.log()}")
            pending = [z for z in pending if not self._ready(z)]
            if not pending:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"knotd did not serve {pending}:\n{self.log()}")

    def _ready(self, zone):
        answer = dns_ping(self.port, zone, "DNSKEY" if zone in self.signed else "SOA")
        return answer is not None and answer[0] == 0 and answer[1] > 0

    def dnskeys(self, zone):
        """The zone's DNSKEY RRset as served: ["257 3 13 BASE64", ...]."""
        r = kdig(self.port, fqdn(zone), "DNSKEY", "+short")
        keys = [line.strip() for line in r.stdout.splitlines() if line.strip()]
        if not keys:
            raise RuntimeError(f"no DNSKEY for {zone}: {r.stdout}{r.stderr}")
        return keys

    def trust_anchors(self, zone, use_ds=False):
        """Trust anchors in Unbound's `trust-anchor:` form, e.g.
        'signed.test. DNSKEY 257 3 13 BASE64' (the KSKs), or the DS records
        keymgr derives from them with use_ds=True."""
        zone = fqdn(zone)
        if use_ds:
            return self.ds(zone)
        return [f"{zone} DNSKEY {k}" for k in self.dnskeys(zone) if k.split()[0] == "257"]

    def ds(self, zone):
        """DS records of the zone's KSK(s), from `keymgr CONF ZONE ds`
        (e.g. 'signed.test. DS 12345 13 2 HEX')."""
        keymgr = _which("keymgr")
        r = subprocess.run([keymgr, "-c", str(self.conf), fqdn(zone), "ds"],
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise RuntimeError(f"keymgr ds failed: {r.stderr}{r.stdout}")
        return [" ".join(line.split()) for line in r.stdout.splitlines() if " DS " in line]

    def stop(self, timeout=10):
        super().stop(timeout)
        if self.rundir.parent != self.dir and self.rundir.name.startswith("knot-run-"):
            shutil.rmtree(self.rundir, ignore_errors=True)


# --- Unbound ----------------------------------------------------------------

class UnboundResolver(_Daemon):
    """A validating Unbound on 127.0.0.1:port whose only upstreams are
    `stubs` ({"example.test.": "127.0.0.1@PORT"}) plus a root stub (by default
    the first stub's address; Knot refuses it), so it never leaves loopback.
    Only the zones under `trust_anchors` (Unbound `trust-anchor:` strings)
    are validated; answers from them carry AD to clients that set DO or AD,
    everything else is insecure (no AD)."""

    name = "unbound"

    def __init__(self, directory, stubs, trust_anchors=(), port=None, root=None,
                 extra="", start=True):
        super().__init__(directory)
        self.stubs = {fqdn(z): a for z, a in stubs.items()}
        self.trust_anchors = list(trust_anchors)
        self.port = port or free_port()
        self.root = root or next(iter(self.stubs.values()))
        self.conf = self.dir / "unbound.conf"
        self.extra_log = self.dir / "unbound-file.log"
        self.extra = extra
        self._write()
        if start:
            self.start()

    @property
    def server(self):
        return f"{HOST}:{self.port}"

    def _write(self):
        # Unbound answers the special-use names itself (RFC 6761 "test.",
        # RFC 6303 reverse zones such as 2.0.192.in-addr.arpa. and
        # 127.in-addr.arpa.) from built-in local zones, as NXDOMAIN with AA;
        # a transparent local zone per stub lets those names through.
        local_zones = "".join(f'    local-zone: "{z}" transparent\n' for z in self.stubs)
        stub_lines = []
        for z, a in list(self.stubs.items()) + [(".", self.root)]:
            stub_lines += ["stub-zone:", f'    name: "{z}"', f"    stub-addr: {a}",
                           "    stub-prime: no", ""]
        anchors = "".join(f'    trust-anchor: "{t}"\n' for t in self.trust_anchors)
        self.conf.write_text(f"""\
# Written by Tests/Interop/helpers_dns.py (Unbound 1.17 syntax).
server:
    directory: "{self.dir}"
    chroot: ""
    username: ""
    pidfile: "{self.dir}/unbound.pid"
    use-syslog: no
    logfile: "{self.extra_log}"
    log-time-ascii: yes
    verbosity: 1
    val-log-level: 2
    interface: {HOST}@{self.port}
    port: {self.port}
    outgoing-interface: {HOST}
    access-control: 127.0.0.0/8 allow
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    num-threads: 1
    so-reuseport: no
    outgoing-range: 64
    num-queries-per-thread: 32
    do-not-query-localhost: no
    module-config: "validator iterator"
    val-permissive-mode: no
    harden-dnssec-stripped: yes
    qname-minimisation: no
    prefetch: no
    trust-anchor-signaling: no
    root-key-sentinel: no
    minimal-responses: no
    hide-identity: no
    hide-version: no
{anchors}{local_zones}{self.extra}
remote-control:
    control-enable: no

""" + "\n".join(stub_lines))

    def start(self, timeout=20):
        unbound = _which("unbound")
        if not unbound:
            raise RuntimeError("unbound is not installed (apt-get install unbound)")
        checkconf = _which("unbound-checkconf")
        if checkconf:
            r = subprocess.run([checkconf, str(self.conf)], capture_output=True, text=True, timeout=20)
            if r.returncode != 0:
                raise RuntimeError(f"unbound-checkconf: {r.stdout}{r.stderr}")
        self._spawn([unbound, "-d", "-c", str(self.conf)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"unbound exited with {self.proc.returncode}:\n{self.log()}")
            # Answered locally (CHAOS class), so the cache stays empty.
            answer = dns_ping(self.port, "version.server", "TXT", qclass=3)
            if answer is not None and answer[1] > 0:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"unbound did not answer:\n{self.log()}")


# --- a mock that never answers ----------------------------------------------

class BlackHoleUDP:
    """A mock DNS server for timeout tests: a UDP socket on 127.0.0.1 that
    reads every datagram (counting them in .received) and never answers.
    Nothing listens on TCP at the same port."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self._stop = threading.Event()
        self.sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def server(self):
        return f"{HOST}:{self.port}"

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sock.recvfrom(65535)
                self.received += 1
            except socket.timeout:
                continue
            except OSError:
                return

    def stop(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
