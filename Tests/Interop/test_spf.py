"""SPF (RFC 7208) through `postcell-engine spf`, compared with pyspf, both
asking the same Knot DNS on loopback; and DMARC (RFC 7489) discovery through
`postcell-engine dmarc` against records Knot serves.

    postcell-engine spf --ip IP --sender S [--helo H] --dns-server 127.0.0.1:PORT
        → {"result", "mechanism", "explanation", "domain", "problem", "authenticationResults"}
    postcell-engine dmarc --from-domain D --spf RESULT:DOMAIN [--dkim RESULT:DOMAIN[:SEL]]...
        --dns-server 127.0.0.1:PORT → {"result", "disposition", "policyDomain", ...}

Setup (helpers_dns.py; Debian packages knot, knot-dnsutils, publicsuffix;
PyPI pyspf and dnspython — scripts/test.sh installs them all):
  - one Knot DNS authoritative for spf.test. (the records below),
    2.0.192.in-addr.arpa. (PTR for the ptr mechanism), nodmarc.test. (no
    records at all) and broken.test. (a zone
    file that does not parse: SERVFAIL);
  - BlackHoleUDP, a server that never answers, for a DNS timeout;
  - pyspf runs in this process with dnspython's default resolver pointed at
    the same server (127.0.0.1 and the server's port, nothing else).
Every case names the result both must give; the engine's result is also
compared with pyspf's, and for a fail with exp= the explanations too. A
missing tool fails the tests, it does not skip them. Loopback only.
"""
import json
import subprocess

import pytest

from conftest import ENGINE
from helpers_dns import BlackHoleUDP, KnotServer, have_dns_tools

# pyspf calls dnspython's deprecated query(); not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SOA = "@ 3600 IN SOA ns.{z} hostmaster.{z} 1 3600 600 86400 300\n@ 300 IN NS ns.{z}\n"


def txt(owner, text):
    """A TXT record, split into strings of at most 255 octets (RFC 7208 §3.3)."""
    chunks = [text[i:i + 200] for i in range(0, len(text), 200)] or [""]
    return f"{owner} TXT " + " ".join('"' + c.replace('"', '\\"') + '"' for c in chunks) + "\n"


BIG = "v=spf1 " + " ".join(f"ip4:198.51.100.{i}/32" for i in range(1, 70)) + " ip4:203.0.113.77 -all"
assert len(BIG) > 1300  # over EDNS's 1232 octets as well as 512: TCP for everyone

SPF_ZONE = SOA.format(z="spf.test.") + "$TTL 300\nns A 127.0.0.1\n" + "".join([
    txt("plain", "v=spf1 ip4:192.0.2.0/25 ip6:2001:db8:1::/48 -all"),
    txt("soft", "v=spf1 ip4:192.0.2.200 ~all"),
    txt("neutral", "v=spf1 ?all"),
    txt("amx", "v=spf1 a mx/30 -all"),
    "amx A 198.51.100.10\namx MX 10 mail.amx\namx MX 20 mail2.amx\nmail.amx A 198.51.100.20\nmail2.amx AAAA 2001:db8:2::25\n",
    txt("chain1", "v=spf1 include:chain2.spf.test -all"),
    txt("chain2", "v=spf1 -ip4:203.0.113.9 include:chain3.spf.test ?all"),
    txt("chain3", "v=spf1 ip4:203.0.113.0/24 -all"),
    txt("macro", "v=spf1 exists:%{ir}.%{l1r+-}.allow.spf.test -exists:%{d2}.deny.spf.test ~all"),
    "10.2.0.192.alice.allow A 127.0.0.2\nspf.test.deny A 127.0.0.2\n",
    txt("helomacro", "v=spf1 a:%{h} -all exp=why.spf.test"),
    txt("exp", "v=spf1 ip4:192.0.2.1 -all exp=why.spf.test"),
    txt("why", "%{i} is not one of %{d}'s senders (%{l} at %{o}, %{v})"),
    txt("expmacro", "v=spf1 -all exp=%{l}.exps.spf.test"),
    txt("bob.exps", "Go away, %{L}."),
    txt("voids", "v=spf1 a:nx1.spf.test a:nx2.spf.test a:nx3.spf.test +all"),
    txt("twovoids", "v=spf1 a:nx1.spf.test a:nx2.spf.test +all"),
    txt("loop1", "v=spf1 include:loop2.spf.test -all"),
    txt("loop2", "v=spf1 include:loop1.spf.test -all"),
    txt("big", BIG),
    txt("redirect", "v=spf1 redirect=plain.spf.test"),
    txt("redirectnone", "v=spf1 redirect=nospf.spf.test"),
    txt("nospf", "just some text"),
    txt("two", "v=spf1 -all"), txt("two", "v=spf1 +all"),
    txt("syntax", "v=spf1 ip4:192.0.2.300 -all"),
    txt("unknownmech", "v=spf1 frobnicate -all"),
    txt("ptr", "v=spf1 ptr:spf.test -all"),
    "host A 192.0.2.10\n",
    txt("manymx", "v=spf1 mx -all"),
    "".join(f"manymx MX {i} mx{i}.manymx\nmx{i}.manymx A 198.51.100.{100 + i}\n" for i in range(11)),
    txt("eleven", "v=spf1 " + " ".join(f"a:h{i}.spf.test" for i in range(1, 12)) + " -all"),
    "".join(f"h{i} A 203.0.113.{i}\n" for i in range(1, 12)),
    txt("tobroken", "v=spf1 include:x.broken.test -all"),
    txt("helo", "v=spf1 ip4:192.0.2.55 -all"),
    txt("modifiers", "v=spf1 ip4:192.0.2.66 foo=bar.%{d} -all"),
    '_dmarc TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@spf.test"\n',
    '_dmarc.lax TXT "v=DMARC1; p=bogus; rua=mailto:d@spf.test"\n',
    '_dmarc.half TXT "v=DMARC1; p=reject; pct=0"\n',
])

REVERSE = SOA.format(z="2.0.192.in-addr.arpa.") + "$TTL 300\n10 PTR host.spf.test.\n11 PTR nohost.spf.test.\n"

# (case id, ip, sender, helo, expected result)
CASES = [
    ("ip4-pass", "192.0.2.10", "alice@plain.spf.test", "h.example", "pass"),
    ("ip4-fail", "192.0.2.200", "alice@plain.spf.test", "h.example", "fail"),
    ("ip6-pass", "2001:db8:1::5", "alice@plain.spf.test", "h.example", "pass"),
    ("ipv4-mapped", "::ffff:192.0.2.10", "alice@plain.spf.test", "h.example", "pass"),
    ("softfail", "192.0.2.201", "x@soft.spf.test", "h.example", "softfail"),
    ("neutral", "192.0.2.1", "x@neutral.spf.test", "h.example", "neutral"),
    ("a-pass", "198.51.100.10", "x@amx.spf.test", "h.example", "pass"),
    ("mx-cidr-pass", "198.51.100.22", "x@amx.spf.test", "h.example", "pass"),
    ("mx-ip6", "2001:db8:2::25", "x@amx.spf.test", "h.example", "pass"),
    ("amx-fail", "198.51.100.30", "x@amx.spf.test", "h.example", "fail"),
    ("include-chain-pass", "203.0.113.5", "x@chain1.spf.test", "h.example", "pass"),
    ("include-chain-fail-inside", "203.0.113.9", "x@chain1.spf.test", "h.example", "fail"),
    ("macro-exists-pass", "192.0.2.10", "alice@macro.spf.test", "h.example", "pass"),
    ("macro-exists-fail", "192.0.2.11", "bob@macro.spf.test", "h.example", "fail"),
    ("macro-helo", "203.0.113.3", "x@helomacro.spf.test", "h3.spf.test", "pass"),
    ("exp", "192.0.2.99", "carol@exp.spf.test", "h.example", "fail"),
    ("exp-macro-name", "192.0.2.99", "bob@expmacro.spf.test", "h.example", "fail"),
    ("void-lookups", "192.0.2.1", "x@voids.spf.test", "h.example", "permerror"),
    ("two-void-lookups", "192.0.2.1", "x@twovoids.spf.test", "h.example", "pass"),
    ("include-loop", "192.0.2.1", "x@loop1.spf.test", "h.example", "permerror"),
    ("oversized-txt-tcp", "203.0.113.77", "x@big.spf.test", "h.example", "pass"),
    ("oversized-txt-fail", "203.0.113.78", "x@big.spf.test", "h.example", "fail"),
    ("redirect", "192.0.2.10", "x@redirect.spf.test", "h.example", "pass"),
    ("redirect-to-none", "192.0.2.10", "x@redirectnone.spf.test", "h.example", "permerror"),
    ("no-spf-record", "192.0.2.10", "x@nospf.spf.test", "h.example", "none"),
    ("nxdomain", "192.0.2.10", "x@nowhere.spf.test", "h.example", "none"),
    ("two-records", "192.0.2.10", "x@two.spf.test", "h.example", "permerror"),
    ("syntax-error", "192.0.2.10", "x@syntax.spf.test", "h.example", "permerror"),
    ("unknown-mechanism", "192.0.2.10", "x@unknownmech.spf.test", "h.example", "permerror"),
    ("ptr-pass", "192.0.2.10", "x@ptr.spf.test", "h.example", "pass"),
    ("ptr-unvalidated", "192.0.2.11", "x@ptr.spf.test", "h.example", "fail"),
    ("mx-limit", "198.51.100.100", "x@manymx.spf.test", "h.example", "permerror"),
    ("ten-lookups", "203.0.113.10", "x@eleven.spf.test", "h.example", "pass"),
    ("eleven-lookups", "203.0.113.11", "x@eleven.spf.test", "h.example", "permerror"),
    ("servfail", "192.0.2.10", "x@x.broken.test", "h.example", "temperror"),
    ("include-servfail", "192.0.2.10", "x@tobroken.spf.test", "h.example", "temperror"),
    ("null-sender-helo", "192.0.2.55", "", "helo.spf.test", "pass"),
    ("null-sender-helo-fail", "192.0.2.56", "", "helo.spf.test", "fail"),
    ("unknown-modifier", "192.0.2.66", "x@modifiers.spf.test", "h.example", "pass"),
]


@pytest.fixture(scope="module", autouse=True)
def tools():
    # scripts/test.sh installs all of these: a missing one is a failure, not a skip.
    missing = have_dns_tools()
    assert missing is None, f"not installed: {missing} (apt-get install knot knot-dnsutils unbound)"
    try:
        import dns.resolver  # noqa: F401
        import spf  # noqa: F401
    except ImportError as e:
        pytest.fail(f"pyspf/dnspython missing ({e}): pip install pyspf dnspython")
    r = subprocess.run([ENGINE, "spf", "--help"], capture_output=True, timeout=20)
    assert r.returncode == 0, f"`{ENGINE} spf --help` fails: {(r.stdout + r.stderr).decode(errors='replace')[-300:]}"


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    zones = {"spf.test.": SPF_ZONE, "2.0.192.in-addr.arpa.": REVERSE,
             "nodmarc.test.": SOA.format(z="nodmarc.test.") + "ns 300 A 127.0.0.1\n"}
    with KnotServer(tmp_path_factory.mktemp("knot-spf"), zones, broken=["broken.test."]) as k:
        yield k


def ours(server, ip, sender, helo, *extra):
    args = [ENGINE, "spf", "--ip", ip, "--sender", sender, "--helo", helo, "--dns-server", server,
            "--dns-timeout-ms", "500", "--dns-attempts", "1", *extra]
    p = subprocess.run(args, capture_output=True, timeout=60)
    lines = [line for line in p.stdout.decode().splitlines() if line.strip()]
    assert p.returncode == 0 and len(lines) == 1, f"rc={p.returncode} {p.stdout!r} {p.stderr.decode()[-500:]}"
    return json.loads(lines[0])


def pyspf(port, ip, sender, helo, timeout=2):
    """pyspf's (result, explanation) with dnspython asking 127.0.0.1:port only."""
    import dns.resolver
    import spf
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.lifetime = timeout
    resolver.timeout = timeout
    saved = dns.resolver.default_resolver
    dns.resolver.default_resolver = resolver
    try:
        q = spf.query(i=ip, s=sender, h=helo, timeout=timeout)
        result, _code, explanation = q.check()
        return result, explanation
    finally:
        dns.resolver.default_resolver = saved


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_spf_matches_pyspf(knot, case):
    _name, ip, sender, helo, expected = case
    got = ours(knot.server, ip, sender, helo)
    reference, _ = pyspf(knot.port, ip, sender, helo)
    assert (got["result"], reference) == (expected, expected), f"engine {got}, pyspf {reference}"


def test_explanations_match_pyspf(knot):
    for ip, sender in [("192.0.2.99", "carol@exp.spf.test"), ("192.0.2.99", "bob@expmacro.spf.test")]:
        got = ours(knot.server, ip, sender, "h.example")
        reference, explanation = pyspf(knot.port, ip, sender, "h.example")
        assert got["result"] == reference == "fail"
        assert got["explanation"] == explanation, (got, explanation)
    assert got["explanation"] == "Go away, bob."
    got = ours(knot.server, "192.0.2.99", "carol@exp.spf.test", "h.example")
    assert got["explanation"] == "192.0.2.99 is not one of exp.spf.test's senders (carol at exp.spf.test, in-addr)"


def test_verdict_names_the_mechanism_and_the_header(knot):
    got = ours(knot.server, "203.0.113.5", "x@chain1.spf.test", "h.example")
    assert got["mechanism"] == "include:chain2.spf.test" and got["domain"] == "chain1.spf.test"
    assert got["authenticationResults"] == \
        "spf=pass (chain1.spf.test: include:chain2.spf.test matched) smtp.mailfrom=x@chain1.spf.test"
    got = ours(knot.server, "192.0.2.56", "", "helo.spf.test")
    assert got["authenticationResults"].endswith("smtp.helo=helo.spf.test")


def test_dns_timeout_is_temperror():
    with BlackHoleUDP() as hole:
        got = ours(hole.server, "192.0.2.10", "x@plain.spf.test", "h.example")
        reference, _ = pyspf(hole.port, "192.0.2.10", "x@plain.spf.test", "h.example", timeout=1)
        assert (got["result"], reference) == ("temperror", "temperror"), got
        assert hole.received >= 1


# --- DMARC against the same server --------------------------------------------

def dmarc(server, from_domain, spf, *dkim):
    args = [ENGINE, "dmarc", "--from-domain", from_domain, "--spf", spf, "--dns-server", server,
            "--dns-timeout-ms", "500", "--dns-attempts", "1", "--seed", "1"]
    for d in dkim:
        args += ["--dkim", d]
    p = subprocess.run(args, capture_output=True, timeout=60)
    assert p.returncode == 0, f"rc={p.returncode} {p.stdout!r} {p.stderr.decode()[-500:]}"
    return json.loads(p.stdout.decode().strip())


def test_dmarc_discovery_and_alignment(knot):
    v = dmarc(knot.server, "spf.test", "pass:bounce.spf.test")
    assert (v["result"], v["disposition"], v["spfAligned"]) == ("pass", "none", True), v
    v = dmarc(knot.server, "spf.test", "pass:other.example", "fail:spf.test:s1")
    assert (v["result"], v["disposition"], v["policy"]) == ("fail", "reject", "reject"), v
    assert v["authenticationResults"] == "dmarc=fail (p=reject sp=quarantine dis=reject) header.from=spf.test"
    # A subdomain without a record of its own: the Organizational Domain's, with sp=.
    v = dmarc(knot.server, "news.spf.test", "fail:news.spf.test", "pass:other.example:s1")
    assert (v["result"], v["policyDomain"], v["disposition"]) == ("fail", "spf.test", "quarantine"), v
    v = dmarc(knot.server, "news.spf.test", "none:x", "pass:spf.test:s1")
    assert (v["result"], v["dkimAlignedDomain"]) == ("pass", "spf.test"), v


def test_dmarc_invalid_records_errors_and_sampling(knot):
    v = dmarc(knot.server, "lax.spf.test", "fail:lax.spf.test")
    assert (v["result"], v["disposition"], v["policyDomain"]) == ("fail", "none", "lax.spf.test"), v
    v = dmarc(knot.server, "half.spf.test", "fail:half.spf.test")
    assert (v["result"], v["disposition"], v["sampledOut"]) == ("fail", "quarantine", True), v
    v = dmarc(knot.server, "x.broken.test", "pass:x.broken.test")
    assert v["result"] == "temperror", v
    v = dmarc(knot.server, "x.nodmarc.test", "pass:x.nodmarc.test")
    assert v["result"] == "none", v
