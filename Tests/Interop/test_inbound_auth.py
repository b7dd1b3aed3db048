"""Mail authentication wired into the engine, black-box:

- inbound (an `mx` listener): SPF (RFC 7208) for MAIL FROM and HELO, DKIM
  (RFC 6376) for every signature, DMARC (RFC 7489) for the From domain; one
  Authentication-Results field of ours on top (RFC 8601), forged ones with
  our authserv-id removed (§5); p=reject refused with 550 5.7.1 at the end of
  DATA, p=quarantine into Junk, `authentication.dmarcEnforcement` overriding;
  a DNS timeout never refuses mail;
- outbound: mail the cell's users submit for remote recipients is DKIM-signed
  (RSA and Ed25519, relaxed/relaxed) before it is spooled; dkimpy verifies the
  spooled bytes against the keys Knot publishes.

Setup (Debian knot, knot-dnsutils, publicsuffix; PyPI dkimpy, pynacl,
dnspython — scripts/test.sh installs them): one Knot DNS on 127.0.0.1 serves
the test domains' SPF, DKIM and DMARC records; the cells' `dns.servers`
point at it (or at BlackHoleUDP, which never answers). Mail comes from
127.0.0.2 and 127.0.0.3 with smtplib and is read back with imaplib. A missing
tool fails the tests; nothing here leaves loopback.
"""
import base64
import imaplib
import re
import smtplib
import subprocess

import pytest

from conftest import ENGINE, USERS
from helpers_clients import HOST, build_message, insecure_tls_context
from helpers_dns import BlackHoleUDP, KnotServer, have_dns_tools

try:
    import dkim
    import nacl  # noqa: F401  (dkimpy's Ed25519)
    import dns.resolver
    IMPORT_ERROR = None
except ImportError as e:  # reported as a failure by the `tools` fixture
    IMPORT_ERROR = str(e)

ALICE = "alice@example.test"
BOB = "bob@example.test"
AUTHSERV = "mx.example.test"   # the cell's hostname (conftest.base_config)
SOA = "@ 3600 IN SOA ns.{z} hostmaster.{z} 1 3600 600 86400 300\n@ 300 IN NS ns.{z}\nns 300 A 127.0.0.1\n$TTL 300\n"


def txt(owner, text):
    chunks = [text[i:i + 200] for i in range(0, len(text), 200)] or [""]
    return f"{owner} TXT " + " ".join('"' + c + '"' for c in chunks) + "\n"


@pytest.fixture(scope="module", autouse=True)
def tools():
    missing = have_dns_tools()
    assert missing is None, f"not installed: {missing} (apt-get install knot knot-dnsutils unbound)"
    assert IMPORT_ERROR is None, f"dkimpy/pynacl/dnspython not importable: {IMPORT_ERROR}"


def keygen(path, alg):
    r = subprocess.run([ENGINE, "dkim", "keygen", "--algorithm", alg, "--out", str(path)],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode().strip()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Keys made by `postcell-engine dkim keygen`: a sender's (good.test, which
    dkimpy signs with) and the cell's own (example.test, RSA and Ed25519)."""
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for name, alg in [("good", "rsa"), ("cell-rsa", "rsa"), ("cell-ed", "ed25519")]:
        out[name] = (d / f"{name}.pem", keygen(d / f"{name}.pem", alg))
    return out


@pytest.fixture(scope="module")
def knot(tmp_path_factory, keys):
    zones = {
        # (a) SPF pass from 127.0.0.2, a DKIM key, p=reject
        "good.test.": SOA.format(z="good.test.") + txt("@", "v=spf1 ip4:127.0.0.2 -all")
        + txt("sel._domainkey", keys["good"][1]) + txt("_dmarc", "v=DMARC1; p=reject"),
        # (b) fails SPF from anywhere on loopback, p=reject
        "reject.test.": SOA.format(z="reject.test.") + txt("@", "v=spf1 ip4:192.0.2.1 -all")
        + txt("_dmarc", "v=DMARC1; p=reject"),
        # (c) p=quarantine
        "quar.test.": SOA.format(z="quar.test.") + txt("@", "v=spf1 -all") + txt("_dmarc", "v=DMARC1; p=quarantine"),
        # no SPF, no DKIM, no DMARC
        "none.test.": SOA.format(z="none.test."),
        # the cell's signing keys, published
        "example.test.": SOA.format(z="example.test.") + txt("s-rsa._domainkey", keys["cell-rsa"][1])
        + txt("s-ed._domainkey", keys["cell-ed"][1]),
    }
    with KnotServer(tmp_path_factory.mktemp("knot-auth"), zones) as k:
        yield k


def checking(dns_server, **authentication):
    """A make_cell mutation: checks on, DNS at `dns_server`, an imaps listener."""
    def mutate(cfg):
        cfg["dns"] = {"servers": [dns_server], "timeoutMs": 300, "attempts": 1}
        cfg["authentication"] = {"checks": True, **authentication}
        cfg["listeners"].append({"name": "imaps", "role": "imap", "address": "127.0.0.1:0", "implicitTLS": True})
    return mutate


def send_mx(cell, source, mail_from, message, rcpts=(ALICE,), helo="mail.none.test"):
    """One transaction from `source` (a 127.0.0.x address); the DATA reply (code, text)."""
    with smtplib.SMTP(HOST, cell.port("mx"), local_hostname=helo, source_address=(source, 0), timeout=20) as s:
        s.ehlo()
        code, text = s.mail(mail_from)
        assert code == 250, text
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, text
        return s.data(message)


def imap_messages(cell, user=ALICE, mailbox="INBOX"):
    """Every message of a mailbox, read with imaplib over implicit TLS."""
    host, port = cell.address("imaps")
    with imaplib.IMAP4_SSL(host, port, ssl_context=insecure_tls_context(), timeout=20) as m:
        m.login(user, USERS[user])
        typ, data = m.select(mailbox, readonly=True)
        assert typ == "OK", data
        typ, data = m.search(None, "ALL")
        out = []
        for num in data[0].split():
            typ, parts = m.fetch(num, "(BODY.PEEK[])")
            out.append(parts[0][1])
        return out


def auth_results(raw):
    """The unfolded values of the message's Authentication-Results fields, top to bottom."""
    header = raw.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    unfolded = re.sub(r"\r\n[ \t]+", " ", header)
    return [line.split(":", 1)[1].strip() for line in unfolded.split("\r\n")
            if line.lower().startswith("authentication-results:")]


def method_results(value, method):
    return re.findall(rf"(?:^|;)\s*{method}=(\w+)", value)


def message(from_addr, subject, extra=()):
    return build_message([("From", from_addr), ("To", ALICE), ("Subject", subject),
                          ("Date", "Tue, 01 Oct 2024 10:00:00 +0000"),
                          ("Message-ID", f"<{subject.replace(' ', '-')}@client.test>"), *extra],
                         b"Hello from the test.\r\n")


def test_spf_dkim_dmarc_pass(make_cell, knot, keys):
    cell = make_cell(checking(knot.server))
    msg = message("Good Sender <sender@good.test>", "all pass")
    signed = dkim.sign(msg, b"sel", b"good.test", keys["good"][0].read_bytes()) + msg
    code, text = send_mx(cell, "127.0.0.2", "bounce@good.test", signed)
    assert code == 250, text
    [raw] = imap_messages(cell)
    assert raw.startswith(b"Authentication-Results: "), raw[:200]
    [ar] = auth_results(raw)
    assert ar.startswith(AUTHSERV + ";"), ar
    assert re.search(r"spf=pass \(good\.test: ip4:127\.0\.0\.2 matched\) smtp\.mailfrom=bounce@good\.test", ar), ar
    assert re.search(r"spf=\w+ [^;]*smtp\.helo=mail\.none\.test", ar), ar
    assert method_results(ar, "dkim") == ["pass"], ar
    assert "header.d=good.test" in ar and "header.s=sel" in ar, ar
    assert method_results(ar, "dmarc") == ["pass"], ar
    assert "header.from=good.test" in ar, ar
    # The signature still verifies after our fields were added on top.
    assert dkim.DKIM(raw).verify(dnsfunc=lambda name, timeout=5: keys["good"][1].encode())


def test_no_records_at_all(make_cell, knot):
    cell = make_cell(checking(knot.server))
    code, text = send_mx(cell, "127.0.0.2", "x@none.test", message("x@none.test", "no records"))
    assert code == 250, text
    [raw] = imap_messages(cell)
    [ar] = auth_results(raw)
    assert method_results(ar, "spf")[0] == "none", ar
    assert method_results(ar, "dkim") == ["none"], ar
    assert method_results(ar, "dmarc") == ["none"], ar


def test_dmarc_reject_refuses_at_end_of_data(make_cell, knot):
    cell = make_cell(checking(knot.server))
    code, text = send_mx(cell, "127.0.0.3", "ceo@reject.test", message("The CEO <ceo@reject.test>", "wire money"))
    assert code == 550, text
    assert text.startswith(b"5.7.1"), text
    assert cell.messages("alice@example.test") == []
    assert cell.messages("alice@example.test", "Junk") == []
    assert not list((cell.dir / "store" / "tmp").iterdir())


def test_dmarc_quarantine_goes_to_junk(make_cell, knot):
    cell = make_cell(checking(knot.server))
    code, text = send_mx(cell, "127.0.0.3", "news@quar.test", message("news@quar.test", "maybe spam"))
    assert code == 250, text
    assert imap_messages(cell) == []
    [raw] = imap_messages(cell, mailbox="Junk")
    [ar] = auth_results(raw)
    assert method_results(ar, "dmarc") == ["fail"], ar
    assert "dis=quarantine" in ar, ar


def test_monitor_override_delivers_to_inbox(make_cell, knot):
    cell = make_cell(checking(knot.server, dmarcEnforcement="monitor"))
    for domain in ("reject.test", "quar.test"):
        code, text = send_mx(cell, "127.0.0.3", f"x@{domain}", message(f"x@{domain}", f"monitored {domain}"))
        assert code == 250, text
    inbox = imap_messages(cell)
    assert len(inbox) == 2 and imap_messages(cell, mailbox="Junk") == []
    for raw in inbox:
        [ar] = auth_results(raw)
        assert method_results(ar, "spf")[0] == "fail", ar
        assert method_results(ar, "dmarc") == ["fail"], ar
        assert "dis=none" in ar, ar


def test_quarantine_only_override(make_cell, knot):
    cell = make_cell(checking(knot.server, dmarcEnforcement="quarantine-only"))
    code, text = send_mx(cell, "127.0.0.3", "ceo@reject.test", message("ceo@reject.test", "softened"))
    assert code == 250, text
    [raw] = imap_messages(cell, mailbox="Junk")
    assert "dis=quarantine" in auth_results(raw)[0]


def test_forged_authentication_results_removed(make_cell, knot):
    cell = make_cell(checking(knot.server))
    forged = ("Authentication-Results", f"{AUTHSERV.upper()}; spf=pass smtp.mailfrom=x@none.test;\r\n dkim=pass header.d=bank.test")
    kept = ("Authentication-Results", "relay.other.test; spf=pass smtp.mailfrom=x@none.test")
    code, text = send_mx(cell, "127.0.0.2", "x@none.test", message("x@none.test", "forged", [forged, kept]))
    assert code == 250, text
    [raw] = imap_messages(cell)
    values = auth_results(raw)
    assert len(values) == 2, values
    assert values[0].startswith(AUTHSERV + ";") and method_results(values[0], "dkim") == ["none"], values
    assert values[1] == "relay.other.test; spf=pass smtp.mailfrom=x@none.test", values
    assert b"bank.test" not in raw


def test_dns_timeout_is_temperror_and_delivered(make_cell, knot):
    with BlackHoleUDP() as hole:
        cell = make_cell(checking(hole.server))
        code, text = send_mx(cell, "127.0.0.3", "ceo@reject.test", message("ceo@reject.test", "dns down"))
        assert code == 250, text
        assert hole.received >= 1
    [raw] = imap_messages(cell)
    [ar] = auth_results(raw)
    assert method_results(ar, "spf")[0] == "temperror", ar
    assert method_results(ar, "dmarc") == ["temperror"], ar


def test_submission_is_not_checked(make_cell, knot):
    cell = make_cell(checking(knot.server))
    with smtplib.SMTP_SSL(HOST, cell.port("submissions"), context=insecure_tls_context(), timeout=20) as s:
        s.login(BOB, USERS[BOB])
        assert s.sendmail(BOB, [ALICE], build_message([("From", BOB), ("To", ALICE), ("Subject", "internal")])) == {}
    [raw] = imap_messages(cell)
    assert auth_results(raw) == []


# --- DKIM signing of submitted mail -------------------------------------------

def signing_cell(make_cell, keys, knot):
    def mutate(cfg):
        cfg["dkim"] = [
            {"domain": "example.test", "selector": "s-rsa", "keyFile": "dkim/s-rsa.pem", "algorithm": "rsa-sha256"},
            {"domain": "example.test", "selector": "s-ed", "keyFile": "dkim/s-ed.pem", "algorithm": "ed25519-sha256"},
        ]
    cell = make_cell(mutate, start=False)
    (cell.dir / "dkim").mkdir()
    for name, sel in [("cell-rsa", "s-rsa"), ("cell-ed", "s-ed")]:
        (cell.dir / "dkim" / f"{sel}.pem").write_bytes(keys[name][0].read_bytes())
    return cell.start()


def spooled_messages(cell):
    """The message bytes of every outbound spool file (docs/DATA-DIR.md format)."""
    out = []
    for path in sorted((cell.dir / "queue" / "outbound").glob("*.msg")):
        raw = path.read_bytes()
        head, rest = raw.split(b"\n", 1)
        magic, jl, ml = head.split()
        assert magic == b"PCQ1" and rest.endswith(b"\nPCQ1-END\n")
        out.append(rest[int(jl):int(jl) + int(ml)])
    return out


def published_key(knot):
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = knot.port

    def dnsfunc(name, timeout=5):
        answer = resolver.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        return b"".join(b"".join(r.strings) for r in answer)
    return dnsfunc


def test_submission_to_remote_is_signed_rsa_and_ed25519(make_cell, keys, knot):
    cell = signing_cell(make_cell, keys, knot)
    msg = build_message([("From", f"Alice <{ALICE}>"), ("To", "carol@remote.test"), ("Subject", "signed")],
                        b"Hello Carol,  \r\n\r\nsee you.\r\n")
    with smtplib.SMTP_SSL(HOST, cell.port("submissions"), context=insecure_tls_context(), timeout=20) as s:
        s.login(ALICE, USERS[ALICE])
        assert s.sendmail(ALICE, ["carol@remote.test"], msg) == {}
    [spooled] = spooled_messages(cell)
    d = dkim.DKIM(spooled)
    sigs = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
    assert len(sigs) == 2, spooled[:600]
    assert b"a=rsa-sha256" in sigs[0] and b"s=s-rsa" in sigs[0], sigs[0]
    assert b"a=ed25519-sha256" in sigs[1] and b"s=s-ed" in sigs[1], sigs[1]
    assert all(b"c=relaxed/relaxed" in s and b"d=example.test" in s for s in sigs)
    lookup = published_key(knot)
    for i in range(2):
        assert dkim.DKIM(spooled).verify(idx=i, dnsfunc=lookup), f"signature {i} does not verify"
    # Message-ID and Date added by submission are covered.
    assert re.search(rb"h=[^;]*message-id", sigs[0].replace(b"\r\n\t", b"")), sigs[0]


def test_local_only_submission_is_not_signed(make_cell, keys, knot):
    cell = signing_cell(make_cell, keys, knot)
    msg = build_message([("From", ALICE), ("To", BOB), ("Subject", "local")])
    with smtplib.SMTP_SSL(HOST, cell.port("submissions"), context=insecure_tls_context(), timeout=20) as s:
        s.login(ALICE, USERS[ALICE])
        assert s.sendmail(ALICE, [BOB], msg) == {}
    [m] = cell.messages(BOB)
    assert b"DKIM-Signature" not in cell.message_bytes(BOB, m["uid"])


def test_other_from_domain_is_not_signed(make_cell, keys):
    def mutate(cfg):
        cfg["domains"] = ["example.test", "other.test"]
        cfg["users"][0]["addresses"] = ["alice@other.test"]
        # An absolute key path, for once.
        cfg["dkim"] = [{"domain": "example.test", "selector": "s-ed", "keyFile": str(keys["cell-ed"][0])}]
    cell = make_cell(mutate)
    with smtplib.SMTP_SSL(HOST, cell.port("submissions"), context=insecure_tls_context(), timeout=20) as s:
        s.login(ALICE, USERS[ALICE])
        msg = build_message([("From", "alice@other.test"), ("To", "carol@remote.test"), ("Subject", "other")])
        assert s.sendmail("alice@other.test", ["carol@remote.test"], msg) == {}
    [spooled] = spooled_messages(cell)
    assert b"DKIM-Signature" not in spooled


def test_bad_key_file_fails_the_load(make_cell, tmp_path):
    def mutate(cfg):
        cfg["dkim"] = [{"domain": "example.test", "selector": "s1", "keyFile": "dkim/broken.pem"}]
    cell = make_cell(mutate, start=False)
    (cell.dir / "dkim").mkdir()
    (cell.dir / "dkim" / "broken.pem").write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    with pytest.raises(RuntimeError) as e:
        cell.start(timeout=20)
    assert "dkim[0]" in str(e.value) and "broken.pem" in str(e.value), str(e.value)
    cell.proc = None


def test_bad_authentication_section_is_refused(make_cell):
    cell = make_cell(lambda cfg: cfg.__setitem__("authentication", {"dmarcEnforcement": "sometimes"}), start=False)
    with pytest.raises(RuntimeError) as e:
        cell.start(timeout=20)
    assert "dmarcEnforcement" in str(e.value), str(e.value)
    cell.proc = None


# --- messages over the in-memory limit (1 MiB): written as they come, then rewritten

def big_body():
    line = b"0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\r\n"
    return line * (1_600_000 // len(line))


def test_large_inbound_message_is_checked(make_cell, knot, keys):
    cell = make_cell(checking(knot.server))
    forged = ("Authentication-Results", f"{AUTHSERV}; dmarc=pass header.from=good.test")
    msg = build_message([("From", "sender@good.test"), ("To", ALICE), ("Subject", "big"), forged], big_body())
    signed = dkim.sign(msg, b"sel", b"good.test", keys["good"][0].read_bytes()) + msg
    code, text = send_mx(cell, "127.0.0.2", "bounce@good.test", signed)
    assert code == 250, text
    [m] = cell.messages(ALICE)
    raw = cell.message_bytes(ALICE, m["uid"])
    [ar] = auth_results(raw)
    assert (method_results(ar, "dkim"), method_results(ar, "dmarc")) == (["pass"], ["pass"]), ar
    assert raw.endswith(big_body()) and raw.count(b"Authentication-Results:") == 1
    assert m["size"] == len(raw)
    assert not list((cell.dir / "store" / "tmp").iterdir())
    ok, report = cell.check()
    assert ok, report


def test_large_submission_is_signed(make_cell, keys, knot):
    cell = signing_cell(make_cell, keys, knot)
    msg = build_message([("From", ALICE), ("To", "carol@remote.test"), ("Subject", "big signed")], big_body())
    with smtplib.SMTP_SSL(HOST, cell.port("submissions"), context=insecure_tls_context(), timeout=30) as s:
        s.login(ALICE, USERS[ALICE])
        assert s.sendmail(ALICE, ["carol@remote.test", BOB], msg) == {}
    [spooled] = spooled_messages(cell)
    lookup = published_key(knot)
    for i in range(2):
        assert dkim.DKIM(spooled).verify(idx=i, dnsfunc=lookup), f"signature {i} does not verify"
    # The local copy is the same signed file.
    [m] = cell.messages(BOB)
    assert cell.message_bytes(BOB, m["uid"]) == spooled
    assert not list((cell.dir / "store" / "tmp").iterdir())
