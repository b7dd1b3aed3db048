"""Small TLS peers for the outbound tests, on 127.0.0.1 only:

  - CertAuthority: a CA made with openssl(1) that issues server certificates for names;
  - TLSSMTPSink: a minimal SMTP server (EHLO, STARTTLS, MAIL, RCPT, DATA, QUIT)
    that records messages and whether they came over TLS; STARTTLS and the
    certificate are up to the test;
  - HTTPSFile: an HTTPS server answering one path (an MTA-STS policy).

The SMTP sink is a test server written here, not a mail system: the issue's
real peer for delivery is Postfix (test_outbound_postfix.py); this one lets a
test choose a certificate per case without reconfiguring an MTA.
"""
import http.server
import json
import smtplib
import time
import pathlib
import socket
import socketserver
import ssl
import subprocess
import threading

HOST = "127.0.0.1"


class CertAuthority:
    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = self.dir / "ca.key"
        self.cert = self.dir / "ca.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=Postcell Test CA"],
                       check=True, capture_output=True)

    def issue(self, name, self_signed=False):
        """(cert, key) paths for `name` (a DNS SAN); self_signed skips the CA."""
        key = self.dir / f"{name}.key"
        cert = self.dir / f"{name}{'.self' if self_signed else ''}.pem"
        ext = self.dir / f"{name}.ext"
        ext.write_text(f"subjectAltName=DNS:{name}\n")
        if self_signed:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
                            "-addext", f"subjectAltName=DNS:{name}"], check=True, capture_output=True)
            return cert, key
        csr = self.dir / f"{name}.csr"
        subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", csr, "-subj", f"/CN={name}"], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                        "-out", cert, "-days", "2", "-extfile", ext], check=True, capture_output=True)
        return cert, key


class TLSSMTPSink:
    def __init__(self, cert=None, key=None, starttls=True):
        self.messages = []  # (mail_from, [rcpts], data bytes, tls: bool)
        self.starttls = starttls and cert is not None
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(20)
        f = conn.makefile("rwb")
        tls = False

        def say(line):
            f.write(line.encode() + b"\r\n")
            f.flush()
        try:
            say("220 sink.test ESMTP")
            mail, rcpts = None, []
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode("utf-8", "replace").strip()
                up = cmd.upper()
                if up.startswith("EHLO"):
                    exts = ["250-sink.test", "250-PIPELINING", "250-8BITMIME"]
                    if self.starttls and not tls:
                        exts.append("250-STARTTLS")
                    exts.append("250 SIZE 0")
                    f.write(("\r\n".join(exts) + "\r\n").encode())
                    f.flush()
                elif up == "STARTTLS" and self.starttls and not tls:
                    say("220 2.0.0 go ahead")
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rwb")
                    tls = True
                elif up.startswith("MAIL FROM:"):
                    mail, rcpts = cmd[10:].split()[0].strip("<>"), []
                    say("250 2.1.0 ok")
                elif up.startswith("RCPT TO:"):
                    rcpts.append(cmd[8:].split()[0].strip("<>"))
                    say("250 2.1.5 ok")
                elif up == "DATA":
                    say("354 go")
                    data = b""
                    while True:
                        l = f.readline()
                        if l in (b".\r\n", b""):
                            break
                        data += l[1:] if l.startswith(b".") else l
                    self.messages.append((mail, rcpts, data, tls))
                    say("250 2.0.0 queued")
                elif up == "RSET" or up == "NOOP":
                    say("250 2.0.0 ok")
                elif up == "QUIT":
                    say("221 2.0.0 bye")
                    return
                else:
                    say("502 5.5.2 not here")
        except (OSError, ssl.SSLError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.sock.close()


class HTTPSFile:
    """Answers GET `path` with `body` (text/plain) over TLS; 404 otherwise."""

    def __init__(self, cert, key, path, body):
        self.hits = 0
        self.body = body
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                if self.path != path:
                    self.send_error(404)
                    return
                data = outer.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = socketserver.ThreadingTCPServer((HOST, 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# What the outbound tests share: submit as alice, wait, read the queue's files.

def submit(cell, rcpt, subject="outbound", password=None):
    from conftest import USERS
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(HOST, cell.port("submission"), timeout=10) as s:
        s.starttls(context=ctx)
        s.login("alice@example.test", password or USERS["alice@example.test"])
        s.sendmail("alice@example.test", [rcpt], f"From: alice@example.test\r\nSubject: {subject}\r\n\r\nhello\r\n".encode())


def wait_for(pred, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def queue_states(cell):
    return [json.loads(p.read_text()) for p in (cell.dir / "queue" / "state").glob("*.json")]


def tlsrpt_rows(cell):
    rows = []
    for p in (cell.dir / "queue" / "tlsrpt").glob("*.jsonl"):
        rows += [json.loads(line) for line in p.read_text().splitlines()]
    return rows
