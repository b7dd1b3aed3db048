"""DKIM (RFC 6376, RFC 8463 Ed25519) against two other implementations,
through `postcell-engine dkim`:

    postcell-engine dkim keygen --algorithm rsa|ed25519 --out KEY.pem   (prints the TXT value)
    postcell-engine dkim sign --key KEY.pem --domain D --selector S
        [--canonicalization relaxed/relaxed] [--now T] [--body-length] < msg > signed
    postcell-engine dkim verify [--txt NAME=VALUE]... [--dns-server HOST:PORT]...
        [--now T] < signed      (one JSON line per signature; exit 0 when one passes, 4 if none)

- dkimpy (PyPI `dkimpy`, with `pynacl` for Ed25519), in this process: it
  verifies what we sign (its `dnsfunc` serves our key records, no network),
  and signs with our keys what we then verify, in all four canonicalization
  pairs and with l=.
- OpenDKIM 2.11 (Debian `opendkim`): `opendkim -t FILE -x CONF` verifies a
  message offline, taking keys from the file named by `TestPublicKeys`
  (lines "NAME VALUE"); the result is read from the Authentication-Results
  field it prints. (`opendkim-testmsg` can only ask live DNS, and the
  signature fields it writes come out garbled, so it is not used.)
- Knot DNS on 127.0.0.1 serves the key records to `dkim verify --dns-server`
  (TXT split into 255-octet strings, as published keys are); a server that
  never answers gives temperror.

Every tool missing is a failure, not a skip: scripts/test.sh installs them.
"""
import base64
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ENGINE
from helpers_dns import BlackHoleUDP, KnotServer, have_dns_tools

try:
    import dkim
    import nacl  # noqa: F401  (dkimpy's Ed25519)
    DKIMPY_ERROR = None
except ImportError as e:  # reported as a failure by the `tools` fixture
    dkim = None
    DKIMPY_ERROR = str(e)

OPENDKIM = shutil.which("opendkim") or ("/usr/sbin/opendkim" if os.path.exists("/usr/sbin/opendkim") else None)

DOMAIN = "example.test"
NOW = 1_700_000_000

MESSAGE = (
    "From: Alice Example <alice@example.test>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Cc: carol@example.org\r\n"
    "Subject: Quarterly  numbers,\r\n"
    "\tfolded\r\n"
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "Message-ID: <q4@example.test>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hello Bob,  \r\n"
    "\r\n"
    "\tthe numbers are in.\r\n"
    "\r\n"
    "\r\n"
).encode()

CANONICALIZATIONS = ["relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"]


@pytest.fixture(scope="module", autouse=True)
def tools():
    assert DKIMPY_ERROR is None, f"dkimpy/pynacl not importable: {DKIMPY_ERROR} (pip install dkimpy pynacl)"
    assert OPENDKIM, "opendkim not installed (apt-get install opendkim opendkim-tools)"
    r = subprocess.run([ENGINE, "dkim", "--help"], capture_output=True)
    assert r.returncode == 0, f"engine has no dkim command: {r.stderr.decode()}"


def run(args, data=b"", check=True):
    r = subprocess.run([ENGINE, "dkim"] + args, input=data, capture_output=True, timeout=60)
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stderr.decode())
    return r


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """One RSA and one Ed25519 key made by `dkim keygen`: {alg: (path, txt, selector)}."""
    d = tmp_path_factory.mktemp("dkimkeys")
    out = {}
    for alg in ("rsa", "ed25519"):
        path = d / f"{alg}.pem"
        txt = run(["keygen", "--algorithm", alg, "--out", str(path)]).stdout.decode().strip()
        assert txt.startswith(f"v=DKIM1; k={alg}; p="), txt
        assert (path.stat().st_mode & 0o777) == 0o600
        out[alg] = (path, txt, f"sel-{alg}")
    return out


def key_name(selector, domain=DOMAIN):
    return f"{selector}._domainkey.{domain}"


def sign(keys, alg, message=MESSAGE, canon="relaxed/relaxed", *extra):
    path, _, selector = keys[alg]
    return run(["sign", "--key", str(path), "--domain", DOMAIN, "--selector", selector,
                "--canonicalization", canon, "--now", str(NOW)] + list(extra), message).stdout


def verify(message, txt=(), servers=(), extra=()):
    args = ["verify", "--now", str(NOW + 60)] + list(extra)
    for name, value in txt:
        args += ["--txt", f"{name}={value}"]
    for s in servers:
        args += ["--dns-server", s]
    r = run(args, message, check=False)
    assert r.returncode in (0, 4), r.stderr.decode()
    return [json.loads(line) for line in r.stdout.decode().splitlines()]


def all_txt(keys):
    return [(key_name(sel), txt) for _, txt, sel in keys.values()]


def dnsfunc_for(keys):
    records = {key_name(sel).encode() + b".": txt.encode() for _, txt, sel in keys.values()}

    def dnsfunc(name, timeout=5):
        return records.get(name)
    return dnsfunc


def dkimpy_results(message, keys):
    """dkimpy's verdict for every signature, top to bottom."""
    d = dkim.DKIM(message)
    count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
    results = []
    for i in range(count):
        try:
            results.append(dkim.DKIM(message).verify(idx=i, dnsfunc=dnsfunc_for(keys)))
        except dkim.DKIMException:  # DKIM.verify raises on a body hash mismatch
            results.append(False)
    return results


def ed25519_seed_b64(pem_path):
    """dkimpy takes an Ed25519 key as the base64 of its 32-octet seed (the
    last octets of our PKCS#8 file)."""
    body = "".join(l for l in pem_path.read_text().splitlines() if not l.startswith("-----"))
    return base64.b64encode(base64.b64decode(body)[-32:])


# --- ours -> dkimpy ----------------------------------------------------------

@pytest.mark.parametrize("canon", CANONICALIZATIONS)
@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_our_signature_verifies_with_dkimpy(keys, alg, canon):
    signed = sign(keys, alg, MESSAGE, canon)
    assert signed.endswith(MESSAGE)
    assert dkimpy_results(signed, keys) == [True]
    # ... and with ourselves.
    assert [r["result"] for r in verify(signed, all_txt(keys))] == ["pass"]


def test_both_algorithms_on_one_message_verify_with_dkimpy(keys):
    signed = sign(keys, "ed25519", sign(keys, "rsa"))
    assert dkimpy_results(signed, keys) == [True, True]
    ours = verify(signed, all_txt(keys))
    assert [(r["result"], r["algorithm"]) for r in ours] == [("pass", "ed25519-sha256"), ("pass", "rsa-sha256")]


def test_our_body_length_signature_verifies_with_dkimpy(keys):
    signed = sign(keys, "rsa", MESSAGE, "relaxed/relaxed", "--body-length")
    assert b"l=" in signed.split(b"\r\n\r\n")[0]
    assert dkimpy_results(signed + b"appended by a list\r\n", keys) == [True]


def test_tampering_fails_in_both(keys):
    signed = sign(keys, "ed25519", sign(keys, "rsa"))
    for old, new in [(b"the numbers are in.", b"the numbers are out."), (b"Subject: Quarterly", b"Subject: Yearly")]:
        bad = signed.replace(old, new, 1)
        assert dkimpy_results(bad, keys) == [False, False]
        assert [r["result"] for r in verify(bad, all_txt(keys))] == ["fail", "fail"]


# --- dkimpy -> ours ----------------------------------------------------------

@pytest.mark.parametrize("canon", CANONICALIZATIONS)
@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_dkimpy_signature_verifies_with_ours(keys, alg, canon):
    path, _, selector = keys[alg]
    private = path.read_bytes() if alg == "rsa" else ed25519_seed_b64(path)
    header, body = (c.encode() for c in canon.split("/"))
    sig = dkim.sign(MESSAGE, selector.encode(), DOMAIN.encode(), private, canonicalize=(header, body),
                    signature_algorithm=b"rsa-sha256" if alg == "rsa" else b"ed25519-sha256")
    results = verify(sig + MESSAGE, all_txt(keys))
    assert [r["result"] for r in results] == ["pass"], results
    assert results[0]["domain"] == DOMAIN and results[0]["selector"] == selector


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_dkimpy_length_and_identity_verify_with_ours(keys, alg):
    path, _, selector = keys[alg]
    private = path.read_bytes() if alg == "rsa" else ed25519_seed_b64(path)
    sig = dkim.sign(MESSAGE, selector.encode(), DOMAIN.encode(), private, identity=b"alice@mail." + DOMAIN.encode(),
                    length=True, signature_algorithm=b"rsa-sha256" if alg == "rsa" else b"ed25519-sha256")
    results = verify(sig + MESSAGE + b"footer added later\r\n", all_txt(keys))
    assert [r["result"] for r in results] == ["pass"], results
    assert results[0]["identity"] == "alice@mail." + DOMAIN


def test_dkimpy_signature_with_wrong_key_fails_with_ours(keys):
    path, _, selector = keys["rsa"]
    sig = dkim.sign(MESSAGE, selector.encode(), DOMAIN.encode(), path.read_bytes())
    other = run(["keygen", "--algorithm", "rsa", "--out", str(path.parent / "other.pem")]).stdout.decode().strip()
    results = verify(sig + MESSAGE, [(key_name(selector), other)])
    assert [r["result"] for r in results] == ["fail"], results


# --- ours -> OpenDKIM --------------------------------------------------------

def opendkim_verify(tmp_path, message, keys):
    """Runs `opendkim -t` offline; returns {selector: result} from the
    Authentication-Results field it would add."""
    keyfile = tmp_path / "keys"
    keyfile.write_text("".join(f"{key_name(sel)} {txt}\n" for _, txt, sel in keys.values()))
    conf = tmp_path / "opendkim.conf"
    conf.write_text(f"Mode v\nSyslog no\nAlwaysAddARHeader yes\nTestPublicKeys {keyfile}\n")
    msg = tmp_path / "msg.eml"
    msg.write_bytes(message)
    r = subprocess.run([OPENDKIM, "-x", str(conf), "-t", str(msg), "-vv"], capture_output=True, timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace")
    found = dict((s, res) for res, s in re.findall(r"dkim=(\w+)[^;']*?header\.s=([\w.-]+)", out))
    assert found, f"no dkim result from opendkim (rc {r.returncode}):\n{out}"
    return found


@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple"])
def test_our_signatures_verify_with_opendkim(tmp_path, keys, canon):
    signed = sign(keys, "ed25519", sign(keys, "rsa", MESSAGE, canon), canon)
    assert opendkim_verify(tmp_path, signed, keys) == {"sel-rsa": "pass", "sel-ed25519": "pass"}


def test_opendkim_sees_tampering(tmp_path, keys):
    signed = sign(keys, "ed25519", sign(keys, "rsa")).replace(b"numbers are in", b"numbers are IN")
    assert opendkim_verify(tmp_path, signed, keys) == {"sel-rsa": "fail", "sel-ed25519": "fail"}


# --- keys from a real DNS server ---------------------------------------------

def txt_strings(value):
    """A TXT value as zone-file character-strings of at most 255 octets."""
    return " ".join('"' + value[i:i + 255] + '"' for i in range(0, len(value), 255))


def test_keys_from_knot(tmp_path, keys):
    assert have_dns_tools() is None, f"not installed: {have_dns_tools()}"
    zone = (f"@ 300 IN SOA ns.{DOMAIN}. hostmaster.{DOMAIN}. 1 3600 600 86400 300\n"
            f"@ 300 IN NS ns.{DOMAIN}.\nns 300 IN A 127.0.0.1\n")
    for _, txt, sel in keys.values():
        zone += f"{sel}._domainkey 300 IN TXT {txt_strings(txt)}\n"
    zone += 'revoked._domainkey 300 IN TXT "v=DKIM1; k=rsa; p="\n'
    with KnotServer(tmp_path / "knot", {DOMAIN + ".": zone}) as knot:
        signed = sign(keys, "ed25519", sign(keys, "rsa"))
        results = verify(signed, servers=[knot.server])
        assert [r["result"] for r in results] == ["pass", "pass"], results
        assert results[1]["keyBits"] == 2048
        # A selector with no record (NXDOMAIN) and a revoked key: permerror.
        missing = signed.replace(b"s=sel-rsa;", b"s=nothere;")
        assert [r["result"] for r in verify(missing, servers=[knot.server])][1] == "permerror"
        path, _, _ = keys["rsa"]
        revoked = run(["sign", "--key", str(path), "--domain", DOMAIN, "--selector", "revoked"], MESSAGE).stdout
        r = verify(revoked, servers=[knot.server])
        assert [(x["result"], x["reason"]) for x in r] == [("permerror", "key revoked")]


def test_dns_timeout_is_temperror(keys):
    with BlackHoleUDP() as bh:
        results = verify(sign(keys, "rsa"), servers=[bh.server], extra=["--timeout-ms", "200", "--attempts", "1"])
    assert [r["result"] for r in results] == ["temperror"], results
