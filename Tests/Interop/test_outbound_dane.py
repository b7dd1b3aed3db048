"""DANE for SMTP (RFC 7672) in outbound delivery: Knot signs the zone of the
destination, a validating Unbound on loopback answers the cell (trustAD),
and the MX is a TLS sink whose certificate each case picks. An unsigned zone
with the same records shows that unvalidated TLSA records are ignored.
"""
import hashlib
import subprocess
import time

import pytest

from conftest import Cell, base_config
from helpers_dns import KnotServer, UnboundResolver, have_dns_tools
from helpers_tls_peers import CertAuthority, TLSSMTPSink, submit, wait_for, queue_states as states, tlsrpt_rows as tlsrpt


def spki_sha256(cert):
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


def cert_sha256(cert):
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


def zone(origin, port, tlsa):
    return f"""$ORIGIN {origin}
@ 300 IN SOA ns. h. 1 3600 600 86400 300
@ 300 IN NS ns.
@ 300 IN MX 10 mx.{origin}
mx 300 IN A 127.0.0.1
_{port}._tcp.mx 300 IN TLSA {tlsa}
"""


@pytest.fixture
def run(tmp_path):
    assert have_dns_tools() is None, f"missing DNS tools: {have_dns_tools()}"
    ca = CertAuthority(tmp_path / "ca")
    cleanup = []

    def make(origin, tlsa_for, signed=True, self_signed=True):
        cert, key = ca.issue("mx." + origin.rstrip("."), self_signed=self_signed)
        if not self_signed:
            # DANE-TA: the server sends its chain, the anchor included (RFC 7672 §3.1.2).
            chain = tmp_path / f"chain-{origin}pem"
            chain.write_text(pathlib_read(cert) + pathlib_read(ca.cert))
            cert = chain
        sink = TLSSMTPSink(cert, key)
        knot = KnotServer(tmp_path / f"knot-{len(cleanup)}", {origin: zone(origin, sink.port, tlsa_for(cert))},
                          signed=[origin] if signed else [])
        anchors = knot.trust_anchors(origin) if signed else []
        unbound = UnboundResolver(tmp_path / f"unbound-{len(cleanup)}", {origin: knot.addr}, trust_anchors=anchors)
        cfg = base_config()
        cfg["dns"] = {"servers": [unbound.server], "trustAD": True}
        cfg["outbound"] = {"port": sink.port, "mtaSTSPort": 9, "retryBaseSeconds": 60, "commandTimeoutMs": 5000, "connectTimeoutMs": 2000}
        cell = Cell(tmp_path / f"cell-{len(cleanup)}", cfg)
        cell.start()
        cleanup.append((cell, sink, unbound, knot))
        return cell, sink
    yield make
    for cell, sink, unbound, knot in cleanup:
        cell.stop()
        sink.close()
        unbound.stop()
        knot.stop()


def pathlib_read(p):
    return open(p).read()


def test_dane_ee_match_delivers_over_tls_despite_a_self_signed_certificate(run):
    cell, sink = run("dane.test.", lambda cert: f"3 1 1 {spki_sha256(cert)}")
    submit(cell, "friend@dane.test")
    assert wait_for(lambda: len(sink.messages) == 1)
    assert sink.messages[0][3] is True
    assert any(r["policy"] == "tlsa" and r["result"] == "success" for r in tlsrpt(cell)), tlsrpt(cell)


def test_dane_ee_mismatch_blocks_delivery(run):
    cell, sink = run("dane.test.", lambda cert: "3 1 1 " + "00" * 32)
    submit(cell, "friend@dane.test")
    assert wait_for(lambda: any(r["recipients"][0].get("lastReply") for r in states(cell)))
    time.sleep(0.3)
    assert sink.messages == []
    assert states(cell)[0]["recipients"][0]["status"] == "pending"
    assert any(r["policy"] == "tlsa" and r["result"] == "dane-required" for r in tlsrpt(cell)), tlsrpt(cell)


def test_dane_ta_with_the_anchor_in_the_chain_delivers(run):
    cell, sink = run("ta.test.", lambda cert: f"2 0 1 {cert_sha256(cert_ca_of(cert))}", self_signed=False)
    submit(cell, "friend@ta.test")
    assert wait_for(lambda: len(sink.messages) == 1), states(cell)
    assert sink.messages[0][3] is True
    assert any(r["policy"] == "tlsa" and r["result"] == "success" for r in tlsrpt(cell)), tlsrpt(cell)


def test_unsigned_zone_tlsa_is_ignored(run):
    # Same mismatching record, but nothing validated: opportunistic TLS delivers.
    cell, sink = run("plain.test.", lambda cert: "3 1 1 " + "00" * 32, signed=False)
    submit(cell, "friend@plain.test")
    assert wait_for(lambda: len(sink.messages) == 1)
    assert all(r["policy"] == "no-policy-found" for r in tlsrpt(cell)), tlsrpt(cell)


def cert_ca_of(chain_path):
    # The anchor is the last certificate of the chain file.
    text = open(chain_path).read()
    last = text[text.rindex("-----BEGIN CERTIFICATE-----"):]
    out = str(chain_path) + ".anchor.pem"
    open(out, "w").write(last)
    return out
