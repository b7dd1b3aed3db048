"""The engine's DNS stub resolver against real DNS servers on loopback,
through `postcell-engine resolve`:

    postcell-engine resolve --server 127.0.0.1:PORT [--server ...]
        [--timeout-ms N] [--attempts N] [--trust-ad] NAME TYPE
    postcell-engine resolve --server ... --stdin     ("NAME TYPE" lines in)

prints one JSON object per query: {"name", "type", "rcode", "authenticated",
"records": [{"name", "type", "ttl", "data"}], "tcp", "error"} (plus "cached"
in --stdin mode for answers from its TTL cache); exit status 0 when a
response came back (any rcode), 3 on timeout or network failure. `data` is
what `kdig +short` prints, so answers are compared with kdig's for the same
query rather than hard-coded.

Setup (helpers_dns.py; Debian packages knot, knot-dnsutils, unbound):
  - one Knot DNS 3.2 (knotd), authoritative for example.test. (unsigned),
    signed.test. (signed by Knot on load), shortneg.test. (negative TTL 2 s),
    the reverse zone 2.0.192.in-addr.arpa. and broken.test. (a zone file that
    does not parse: SERVFAIL);
  - one validating Unbound 1.17 whose only upstreams are stubs to that Knot
    (and a root stub to it too, so it never leaves loopback), with a trust
    anchor for signed.test. only, taken from Knot's DNSKEY;
  - BlackHoleUDP, a mock server that never answers, for timeouts;
  - tests that stop the server to prove an answer came from the cache get a
    Knot of their own.
Everything listens on 127.0.0.1 only, every process is stopped at the end.

The test_harness_* tests need only kdig and check the setup itself (AD from
Unbound, SERVFAIL from the broken zone, TC over 512 bytes). A missing
knotd, kdig or unbound, or an engine without `resolve`, fails the tests
(scripts/test.sh installs the tools).
"""
import json
import os
import select
import subprocess
import time

import pytest

from conftest import ENGINE
from helpers_dns import (BlackHoleUDP, KnotServer, UnboundResolver, fqdn, have_dns_tools,
                         kdig_records, kdig_status)


@pytest.fixture(scope="module", autouse=True)
def dns_tools():
    # scripts/test.sh installs knot, knot-dnsutils and unbound: a missing one is a failure, not a skip.
    missing = have_dns_tools()
    assert missing is None, f"not installed: {missing} (apt-get install knot knot-dnsutils unbound)"

SOA = "@ {ttl} IN SOA ns.{z} hostmaster.{z} 1 3600 600 86400 {minimum}\n@ 300 IN NS ns.{z}\n"


def big_txt(owner, count, length, ttl=300):
    """`count` TXT records of two strings each, about `length` bytes a record."""
    return "".join(f'{owner} {ttl} IN TXT "{chr(97 + i) * (length - 30)}" "record {i:02d} of {count}"\n'
                   for i in range(count))


EXAMPLE = SOA.format(z="example.test.", ttl=3600, minimum=300) + r"""
$TTL 300
ns          A     127.0.0.1
@           MX    10 mx1
@           MX    20 mx2
@           MX    5 mx0
@           TXT   "v=spf1 ip4:192.0.2.0/24" "ip6:2001:db8::/32" "-all"
mx0         A     192.0.2.5
mx1         A     192.0.2.1
mx1         A     192.0.2.11
mx1         AAAA  2001:0db8:0000:0000:0000:0000:0000:0025
mx2         AAAA  2001:db8:1:0:0:0:0:1
nonascii    TXT   "caf\195\169 \226\156\147" "\000\001\031\127\128\255" "tab\009 quote\" semi; back\\"
_25._tcp.mx1 TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
_25._tcp.mx1 TLSA 2 0 1 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
www         CNAME web
web         CNAME host.example.test.
host        A     192.0.2.80
zero      0 A     192.0.2.9
""" + big_txt("big", 3, 210) + big_txt("huge", 6, 300)

SIGNED = SOA.format(z="signed.test.", ttl=3600, minimum=300) + """
$TTL 300
ns   A   127.0.0.1
www  A   192.0.2.7
@    MX  10 mx.signed.test.
mx   A   192.0.2.8
"""

# Negative TTL is min(SOA TTL, SOA MINIMUM) (RFC 2308 §5): 2 s here.
SHORTNEG = SOA.format(z="shortneg.test.", ttl=3600, minimum=2) + "ns 300 A 127.0.0.1\nhost 300 A 192.0.2.3\n"

REVERSE = SOA.format(z="2.0.192.in-addr.arpa.", ttl=3600, minimum=300) + """
$TTL 300
1    PTR  mx1.example.test.
11   PTR  mx1.example.test.
80   PTR  host.example.test.
"""

ZONES = {"example.test.": EXAMPLE, "signed.test.": SIGNED, "shortneg.test.": SHORTNEG,
         "2.0.192.in-addr.arpa.": REVERSE}


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    with KnotServer(tmp_path_factory.mktemp("knot"), ZONES, signed=["signed.test."],
                    broken=["broken.test."]) as k:
        yield k


@pytest.fixture(scope="module")
def unbound(knot, tmp_path_factory):
    stubs = {z: knot.addr for z in [*ZONES, "broken.test."]}
    with UnboundResolver(tmp_path_factory.mktemp("unbound"), stubs,
                         trust_anchors=knot.trust_anchors("signed.test.")) as u:
        yield u


@pytest.fixture
def own_knot(tmp_path):
    """A Knot for one test (to be stopped in the middle of it)."""
    k = KnotServer(tmp_path / "knot", ZONES)
    yield k
    k.stop()


@pytest.fixture
def engine():
    r = subprocess.run([ENGINE, "resolve", "--help"], capture_output=True, timeout=20)
    assert r.returncode == 0, f"`{ENGINE} resolve --help` fails: {(r.stdout + r.stderr).decode(errors='replace')[-300:]}"
    return ENGINE


# --- running the CLI ----------------------------------------------------------

class Resolved:
    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.elapsed = elapsed
        self.stdout = proc.stdout.decode(errors="replace")
        self.stderr = proc.stderr.decode(errors="replace")
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one JSON line, got rc={self.rc}:\n{self.stdout}\n{self.stderr}"
        self.json = json.loads(lines[0])

    def __getitem__(self, key):
        return self.json[key]

    def __repr__(self):
        return f"rc={self.rc} {self.elapsed:.2f}s {self.json} {self.stderr[-500:]}"


def resolve(servers, name, rtype, *opts, timeout=30):
    args = [ENGINE, "resolve"]
    for s in servers if isinstance(servers, (list, tuple)) else [servers]:
        args += ["--server", s]
    start = time.monotonic()
    proc = subprocess.run(args + list(opts) + [name, rtype], capture_output=True, timeout=timeout)
    return Resolved(proc, time.monotonic() - start)


class Session:
    """`resolve --stdin`: one query per line written, one JSON line read."""

    def __init__(self, servers, *opts, log=None):
        args = [ENGINE, "resolve", "--stdin"]
        for s in servers:
            args += ["--server", s]
        self.stderr = open(log or os.devnull, "wb")
        self.proc = subprocess.Popen(args + list(opts), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr)
        self.buf = b""

    def ask(self, name, rtype, timeout=15):
        self.proc.stdin.write(f"{name} {rtype}\n".encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no answer line for {name} {rtype} within {timeout}s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"resolve --stdin exited ({self.proc.poll()}) before answering")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def session(engine, tmp_path):
    made = []

    def factory(servers, *opts):
        s = Session(servers, *opts, log=tmp_path / f"session{len(made)}.log")
        made.append(s)
        return s

    yield factory
    for s in made:
        s.close()


# --- comparisons --------------------------------------------------------------

def ours(result):
    return [{"name": fqdn(r["name"]).lower(), "type": r["type"].upper(), "ttl": r["ttl"], "data": r["data"]}
            for r in result["records"]]


def theirs(port, name, rtype, *opts):
    return [dict(r, name=r["name"].lower()) for r in kdig_records(port, name, rtype, *opts)]


def assert_answer(result, port, name, rtype, *kdig_opts, rcode="NOERROR", exact_ttl=True):
    """rc 0, the rcode, and the answer records equal to kdig's for the same
    query to the same server (TTLs too, unless exact_ttl is False: a
    resolver's cache counts them down)."""
    assert result.rc == 0, result
    assert result["error"] is None, result
    assert result["rcode"] == rcode, result
    assert fqdn(result["name"]).lower() == fqdn(name).lower(), result
    assert result["type"].upper() == rtype, result
    expected, got = theirs(port, name, rtype, *kdig_opts), ours(result)
    if not exact_ttl:
        for e, g in zip(expected, got):
            assert 0 <= g["ttl"] <= e["ttl"] + 1, (e, g)
            e["ttl"] = g["ttl"]
        # A resolver may rotate the records of an RRset (Unbound's
        # rrset-roundrobin); the order between RRsets must stay.
        key = lambda r: (r["type"], r["data"])  # noqa: E731
        assert [r["type"] for r in got] == [r["type"] for r in expected], (expected, got)
        expected, got = sorted(expected, key=key), sorted(got, key=key)
    assert got == expected, f"\nengine: {got}\nkdig:   {expected}"
    return got


# --- the harness itself (kdig only) ------------------------------------------

def test_harness_knot_answers_and_fails_as_configured(knot):
    assert kdig_status(knot.port, "example.test.", "SOA")[0] == "NOERROR"
    assert kdig_status(knot.port, "broken.test.", "SOA")[0] == "SERVFAIL"
    assert kdig_status(knot.port, "www.broken.test.", "A")[0] == "SERVFAIL"
    # Over 512 bytes: truncated without EDNS or with a 512-byte buffer,
    # whole with EDNS 1232 (Knot's default udp-max-payload); over 1232: TC.
    assert "tc" in kdig_status(knot.port, "big.example.test.", "TXT", "+notcp", "+ignore", "+bufsize=512")[1]
    assert "tc" in kdig_status(knot.port, "big.example.test.", "TXT", "+notcp", "+ignore", "+noedns")[1]
    assert "tc" not in kdig_status(knot.port, "big.example.test.", "TXT", "+notcp", "+ignore", "+bufsize=1232")[1]
    assert "tc" in kdig_status(knot.port, "huge.example.test.", "TXT", "+notcp", "+ignore", "+bufsize=1232")[1]
    assert len(kdig_records(knot.port, "huge.example.test.", "TXT", "+tcp")) == 6
    # Authoritative: never AD, even for the signed zone asked with DO.
    assert "ad" not in kdig_status(knot.port, "www.signed.test.", "A", "+dnssec", "+adflag")[1]


def test_harness_unbound_validates(knot, unbound):
    # kdig 3.2 sets AD in its queries by default; be explicit about it.
    status, flags = kdig_status(unbound.port, "www.signed.test.", "A", "+adflag")
    assert (status, "ad" in flags) == ("NOERROR", True)
    assert "ad" in kdig_status(unbound.port, "www.signed.test.", "A", "+noadflag", "+dnssec")[1]
    assert "ad" not in kdig_status(unbound.port, "www.signed.test.", "A", "+noadflag")[1]
    status, flags = kdig_status(unbound.port, "mx1.example.test.", "A", "+adflag", "+dnssec")
    assert (status, "ad" in flags) == ("NOERROR", False)
    assert kdig_status(unbound.port, "1.2.0.192.in-addr.arpa.", "PTR")[0] == "NOERROR"
    assert kdig_status(unbound.port, "broken.test.", "SOA")[0] == "SERVFAIL"
    # Anything outside the stubs goes to the root stub (Knot, which refuses).
    assert kdig_status(unbound.port, "example.com.", "A")[0] == "SERVFAIL"


# --- record types -------------------------------------------------------------

def test_a(engine, knot):
    got = assert_answer(resolve(knot.server, "mx1.example.test.", "A"), knot.port, "mx1.example.test.", "A")
    assert sorted(r["data"] for r in got) == ["192.0.2.1", "192.0.2.11"]


def test_aaaa_compressed(engine, knot):
    got = assert_answer(resolve(knot.server, "mx1.example.test.", "AAAA"), knot.port, "mx1.example.test.", "AAAA")
    assert [r["data"] for r in got] == ["2001:db8::25"]
    got = assert_answer(resolve(knot.server, "mx2.example.test.", "AAAA"), knot.port, "mx2.example.test.", "AAAA")
    assert [r["data"] for r in got] == ["2001:db8:1::1"]


def test_mx_several_preferences(engine, knot):
    got = assert_answer(resolve(knot.server, "example.test.", "MX"), knot.port, "example.test.", "MX")
    assert sorted(r["data"] for r in got) == ["10 mx1.example.test.", "20 mx2.example.test.", "5 mx0.example.test."]


def test_txt_several_strings(engine, knot):
    got = assert_answer(resolve(knot.server, "example.test.", "TXT"), knot.port, "example.test.", "TXT")
    assert got[0]["data"] == '"v=spf1 ip4:192.0.2.0/24" "ip6:2001:db8::/32" "-all"'


def test_txt_non_ascii_bytes(engine, knot):
    got = assert_answer(resolve(knot.server, "nonascii.example.test.", "TXT"),
                        knot.port, "nonascii.example.test.", "TXT")
    assert "\\195\\169" in got[0]["data"] and "\\000" in got[0]["data"] and "\\255" in got[0]["data"]


def test_txt_over_512_bytes(engine, knot):
    assert "tc" in kdig_status(knot.port, "big.example.test.", "TXT", "+notcp", "+ignore", "+bufsize=512")[1]
    r = resolve(knot.server, "big.example.test.", "TXT")
    # Whether this needed TCP depends on the buffer size the engine
    # advertises; the records must be whole either way.
    assert r["tcp"] in (True, False), r
    got = assert_answer(r, knot.port, "big.example.test.", "TXT", "+tcp")
    assert len(got) == 3


def test_txt_over_1232_bytes_comes_over_tcp(engine, knot):
    assert "tc" in kdig_status(knot.port, "huge.example.test.", "TXT", "+notcp", "+ignore", "+bufsize=1232")[1]
    r = resolve(knot.server, "huge.example.test.", "TXT")
    assert r["tcp"] is True, r
    got = assert_answer(r, knot.port, "huge.example.test.", "TXT", "+tcp")
    assert len(got) == 6


def test_cname_chain_to_a(engine, knot):
    got = assert_answer(resolve(knot.server, "www.example.test.", "A"), knot.port, "www.example.test.", "A")
    assert [(r["name"], r["type"], r["data"]) for r in got] == [
        ("www.example.test.", "CNAME", "web.example.test."),
        ("web.example.test.", "CNAME", "host.example.test."),
        ("host.example.test.", "A", "192.0.2.80"),
    ]


def test_ptr(engine, knot):
    name = "80.2.0.192.in-addr.arpa."
    got = assert_answer(resolve(knot.server, name, "PTR"), knot.port, name, "PTR")
    assert [r["data"] for r in got] == ["host.example.test."]


def test_tlsa(engine, knot):
    name = "_25._tcp.mx1.example.test."
    got = assert_answer(resolve(knot.server, name, "TLSA"), knot.port, name, "TLSA")
    assert sorted(r["data"].split()[:3] for r in got) == [["2", "0", "1"], ["3", "1", "1"]]


# --- negative answers and failures -------------------------------------------

def test_nxdomain(engine, knot):
    r = resolve(knot.server, "nope.example.test.", "A")
    assert_answer(r, knot.port, "nope.example.test.", "A", rcode="NXDOMAIN")
    assert r["records"] == []


def test_nodata(engine, knot):
    r = resolve(knot.server, "mx1.example.test.", "TXT")
    assert_answer(r, knot.port, "mx1.example.test.", "TXT")
    assert r["records"] == []


def test_servfail_from_broken_zone(engine, knot):
    r = resolve(knot.server, "www.broken.test.", "A", "--timeout-ms", "1000", "--attempts", "1")
    assert r.rc == 0, r
    assert (r["rcode"], r["records"], r["error"]) == ("SERVFAIL", [], None), r


def test_timeout_against_black_hole(engine):
    timeout_ms, attempts = 300, 2
    with BlackHoleUDP() as bh:
        r = resolve(bh.server, "mx1.example.test.", "A", "--timeout-ms", str(timeout_ms),
                    "--attempts", str(attempts))
        received = bh.received
    assert r.rc == 3, r
    assert r["error"] == "timeout", r
    assert r["records"] == [], r
    # Process start-up included in the slack.
    assert timeout_ms / 1000 <= r.elapsed <= timeout_ms * attempts / 1000 + 2.0, r
    assert received == attempts, f"black hole got {received} queries for --attempts {attempts}"


def test_second_server_when_first_is_black_hole(engine, knot):
    with BlackHoleUDP() as bh:
        r = resolve([bh.server, knot.server], "mx1.example.test.", "A", "--timeout-ms", "300", "--attempts", "2")
        received = bh.received
    assert_answer(r, knot.port, "mx1.example.test.", "A")
    assert received >= 1, "the first server was never asked"
    assert r.elapsed <= 0.3 * 2 + 2.0, r


# --- the cache (--stdin) ------------------------------------------------------

FAST = ("--timeout-ms", "300", "--attempts", "1")


def test_answer_cached_after_server_stops(session, own_knot):
    s = session([own_knot.server], *FAST)
    first = s.ask("mx1.example.test.", "A")
    assert first["rcode"] == "NOERROR" and not first.get("cached"), first
    own_knot.stop()
    again = s.ask("mx1.example.test.", "A")
    assert again.get("cached") is True and again["rcode"] == "NOERROR", again
    assert [r["data"] for r in again["records"]] == [r["data"] for r in first["records"]]
    assert all(0 <= r["ttl"] <= 300 for r in again["records"]), again


def test_ttl_zero_not_cached(session, own_knot):
    s = session([own_knot.server], *FAST)
    first = s.ask("zero.example.test.", "A")
    assert first["rcode"] == "NOERROR" and [r["ttl"] for r in first["records"]] == [0], first
    own_knot.stop()
    again = s.ask("zero.example.test.", "A")
    assert not again.get("cached"), again
    assert again["error"] in ("timeout", "network"), again


def test_nxdomain_cached_for_negative_ttl(session, own_knot):
    s = session([own_knot.server], *FAST)
    first = s.ask("nope.example.test.", "A")
    assert first["rcode"] == "NXDOMAIN" and not first.get("cached"), first
    own_knot.stop()
    again = s.ask("nope.example.test.", "A")
    assert again.get("cached") is True, again
    assert (again["rcode"], again["records"], again["error"]) == ("NXDOMAIN", [], None), again


def test_negative_ttl_is_soa_minimum(session, own_knot):
    # shortneg.test.: SOA TTL 3600, MINIMUM 2, so NXDOMAIN lives 2 s.
    s = session([own_knot.server], *FAST)
    assert s.ask("nope.shortneg.test.", "A")["rcode"] == "NXDOMAIN"
    soon = s.ask("nope.shortneg.test.", "A")
    assert soon["rcode"] == "NXDOMAIN" and soon.get("cached") is True, soon
    time.sleep(2.5)
    later = s.ask("nope.shortneg.test.", "A")
    assert later["rcode"] == "NXDOMAIN" and not later.get("cached"), later


# --- the AD bit -----------------------------------------------------------------

def test_ad_trusted_from_validating_resolver(engine, unbound):
    r = resolve(unbound.server, "www.signed.test.", "A", "--trust-ad")
    assert_answer(r, unbound.port, "www.signed.test.", "A", exact_ttl=False)
    assert r["authenticated"] is True, r


def test_ad_not_trusted_without_flag(engine, unbound):
    r = resolve(unbound.server, "www.signed.test.", "A")
    assert_answer(r, unbound.port, "www.signed.test.", "A", exact_ttl=False)
    assert r["authenticated"] is False, r


def test_unsigned_zone_not_authenticated(engine, unbound):
    r = resolve(unbound.server, "example.test.", "MX", "--trust-ad")
    assert_answer(r, unbound.port, "example.test.", "MX", exact_ttl=False)
    assert r["authenticated"] is False, r


def test_authoritative_server_never_authenticated(engine, knot):
    r = resolve(knot.server, "www.signed.test.", "A", "--trust-ad")
    assert_answer(r, knot.port, "www.signed.test.", "A")
    assert r["authenticated"] is False, r


# --- the cell configuration's dns section ------------------------------------

def test_resolver_settings_from_the_cell_configuration(engine, knot, tmp_path):
    from conftest import base_config
    cfg = base_config()
    cfg["dns"] = {"servers": [knot.server], "timeoutMs": 500, "attempts": 1}
    path = tmp_path / "cell.json"
    path.write_text(json.dumps(cfg))
    start = time.monotonic()
    proc = subprocess.run([ENGINE, "resolve", "--config", str(path), "mx1.example.test.", "A"], capture_output=True, timeout=30)
    assert_answer(Resolved(proc, time.monotonic() - start), knot.port, "mx1.example.test.", "A")
    # A bad server address is refused when the configuration is read.
    cfg["dns"]["servers"] = ["not-an-address"]
    path.write_text(json.dumps(cfg))
    proc = subprocess.run([ENGINE, "resolve", "--config", str(path), "mx1.example.test.", "A"], capture_output=True, timeout=30)
    assert proc.returncode != 0 and b"dns: bad server address" in proc.stderr, proc
    cfg["dns"] = {"servers": [knot.server], "retries": 3}
    path.write_text(json.dumps(cfg))
    proc = subprocess.run([ENGINE, "resolve", "--config", str(path), "mx1.example.test.", "A"], capture_output=True, timeout=30)
    assert proc.returncode != 0 and b"unknown key dns.retries" in proc.stderr, proc
