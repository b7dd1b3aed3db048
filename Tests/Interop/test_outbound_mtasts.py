"""MTA-STS (RFC 8461) and TLS-RPT recording (RFC 8460) in outbound delivery.

Knot on loopback serves remote.test: MX, the `_mta-sts` TXT record and the
address of `mta-sts.remote.test`; an HTTPS server on loopback serves the
policy with a certificate from a test CA the cell trusts (`trustRoots`); the
MX is a small SMTP sink whose certificate each case chooses.
"""
import time

import pytest

from conftest import Cell, base_config
from helpers_dns import KnotServer, have_dns_tools
from helpers_tls_peers import CertAuthority, TLSSMTPSink, HTTPSFile, submit, wait_for, queue_states as states, tlsrpt_rows as tlsrpt

ZONE = """$ORIGIN remote.test.
@ 300 IN SOA ns. h. 1 3600 600 86400 300
@ 300 IN NS ns.
@ 300 IN MX 10 mx.remote.test.
mx 300 IN A 127.0.0.1
mta-sts 300 IN A 127.0.0.1
_mta-sts 300 IN TXT "v=STSv1; id=20261124a"
"""


def policy(mode, mx="mx.remote.test"):
    return f"version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"


@pytest.fixture
def env(tmp_path):
    missing = have_dns_tools()
    assert missing is None, f"missing DNS tools: {missing}"
    ca = CertAuthority(tmp_path / "ca")
    with KnotServer(tmp_path / "knot", {"remote.test.": ZONE}) as knot:
        opened = []

        def make(mode, mx_cert="good", starttls=True, mx_pattern="mx.remote.test"):
            sts_cert, sts_key = ca.issue("mta-sts.remote.test")
            https = HTTPSFile(sts_cert, sts_key, "/.well-known/mta-sts.txt", policy(mode, mx_pattern))
            if mx_cert == "good":
                cert, key = ca.issue("mx.remote.test")
            elif mx_cert == "self-signed":
                cert, key = ca.issue("mx.remote.test", self_signed=True)
            else:  # a CA certificate for another name
                cert, key = ca.issue("other.remote.test")
            sink = TLSSMTPSink(cert, key, starttls=starttls)
            cfg = base_config()
            cfg["dns"] = {"servers": [knot.server]}
            cfg["outbound"] = {"port": sink.port, "mtaSTSPort": https.port, "trustRoots": str(ca.cert),
                               "retryBaseSeconds": 60, "commandTimeoutMs": 5000, "connectTimeoutMs": 2000}
            cell = Cell(tmp_path / f"cell-{len(opened)}", cfg)
            cell.start()
            opened.append((cell, sink, https))
            return cell, sink, https
        yield make
        for cell, sink, https in opened:
            cell.stop()
            sink.close()
            https.close()


def test_enforce_with_a_valid_certificate_delivers_over_tls(env):
    cell, sink, https = env("enforce")
    submit(cell, "friend@remote.test")
    assert wait_for(lambda: len(sink.messages) == 1)
    assert sink.messages[0][3] is True, "delivered without TLS"
    assert https.hits >= 1
    assert wait_for(lambda: not states(cell) and not list((cell.dir / "queue" / "outbound").glob("*.msg")))
    rows = tlsrpt(cell)
    assert any(r["policy"] == "sts" and r["mode"] == "enforce" and r["result"] == "success" and r["mx"] == "mx.remote.test" for r in rows), rows


@pytest.mark.parametrize("cert,kind", [("self-signed", "validation-failure"), ("wrong-name", "certificate-host-mismatch")])
def test_enforce_with_a_bad_certificate_blocks_delivery(env, cert, kind):
    cell, sink, _ = env("enforce", mx_cert=cert)
    submit(cell, "friend@remote.test")
    assert wait_for(lambda: any(r["recipients"][0].get("lastReply") for r in states(cell)))
    time.sleep(0.5)
    assert sink.messages == [], "a policy in enforce mode must stop delivery to a host with a bad certificate"
    st = states(cell)
    assert st[0]["recipients"][0]["status"] == "pending"
    assert st[0]["recipients"][0]["lastReply"].startswith("454 4.7.5"), st
    assert list((cell.dir / "queue" / "outbound").glob("*.msg")), "the message must stay queued"
    rows = tlsrpt(cell)
    assert any(r["policy"] == "sts" and r["result"] in (kind, "validation-failure") for r in rows), rows
    # Nothing was bounced: alice has no report.
    assert cell.messages("alice@example.test") == []


def test_enforce_without_starttls_blocks_delivery(env):
    cell, sink, _ = env("enforce", starttls=False)
    submit(cell, "friend@remote.test")
    assert wait_for(lambda: any(r["recipients"][0].get("lastReply") for r in states(cell)))
    assert sink.messages == []
    assert any(r["result"] == "starttls-not-supported" for r in tlsrpt(cell))


def test_enforce_with_no_matching_mx_blocks_delivery(env):
    cell, sink, _ = env("enforce", mx_pattern="*.elsewhere.test")
    submit(cell, "friend@remote.test")
    assert wait_for(lambda: any(r["recipients"][0].get("lastReply") for r in states(cell)))
    assert sink.messages == []
    assert "MTA-STS" in states(cell)[0]["recipients"][0]["lastReply"]


def test_testing_mode_delivers_despite_a_bad_certificate(env):
    cell, sink, _ = env("testing", mx_cert="self-signed")
    submit(cell, "friend@remote.test")
    assert wait_for(lambda: len(sink.messages) == 1)
    assert sink.messages[0][3] is True  # opportunistic TLS still used
