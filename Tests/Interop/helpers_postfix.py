"""A private Postfix (Debian's postfix 3.7) and a Knot DNS on loopback for the
black-box tests of the outbound queue (test_outbound_postfix.py,
test_outbound_queue.py).

What runs, all bound to 127.0.0.0/8 only:

  - LoopbackDNS: Knot (helpers_dns.KnotServer) serving the test zones on
    127.0.0.1:PORT (the engine's `dns.servers`) and also on ADDR:53, ADDR a
    random 127.53.x.y, for Postfix: Postfix asks the libc resolver, which
    reads /etc/resolv.conf and only knows port 53;
  - Postfix: one instance with its own configuration directory, queue,
    data directory, log file (postlogd) and virtual Maildir mailboxes under
    a temporary directory; smtpd on 127.0.0.1 and a free port, optionally a
    second port without STARTTLS and a "submission" port requiring STARTTLS
    and AUTH through a Dovecot auth socket. Postfix refuses to bind an
    address no interface carries, and lo carries only 127.0.0.1; so when
    Postfix must reach the engine, the engine's MX listener sits on another
    127/8 address (an MX on 127.0.0.1 would be Postfix itself: "mail loops
    back to myself"). The master runs in a private mount namespace
    (`unshare --mount --propagation private`) where /etc/resolv.conf is a
    bind mount naming only the Knot address above, so neither Postfix's
    MX lookups nor anything else it resolves leaves loopback. Nothing is
    written to /etc/postfix; no system Postfix is started or touched.
    Recipient refusals are scripted through a texthash access map
    (`set_access` rewrites it and reloads Postfix).

Every tool missing is an error (RuntimeError), never a skip: scripts/test.sh
installs postfix (and knot, dovecot, openssl, util-linux come with it).
stop() (also at exit) ends the master with `postfix stop`, then SIGKILLs its
process group (the master is a session leader), so no Postfix process
outlives the test.
"""
import atexit
import email
import email.parser
import email.policy
import json
import os
import pathlib
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from helpers_clients import RawSMTP
from helpers_dns import HOST, KnotServer, dns_ping, stop_session
from helpers_dovecot import ensure_mail_user

POSTFIX = "/usr/sbin/postfix"
POSTFIX_DAEMONS = "/usr/lib/postfix/sbin"
_running = []


# --------------------------------------------------------------------------
# Tools and addresses
# --------------------------------------------------------------------------
def require_tools(*extra):
    """Fails (never skips) when a tool the tests need is not installed."""
    need = {
        "postfix": POSTFIX, "postfix master": f"{POSTFIX_DAEMONS}/master",
        "knotd": "/usr/sbin/knotd", "unshare": shutil.which("unshare") or "/usr/bin/unshare",
        "mount": shutil.which("mount") or "/usr/bin/mount", "openssl": shutil.which("openssl") or "/usr/bin/openssl",
    }
    for t in extra:
        need[t] = shutil.which(t) or f"/usr/sbin/{t}"
    missing = [name for name, path in need.items() if not os.access(path, os.X_OK)]
    if missing:
        raise RuntimeError(f"not installed: {', '.join(missing)} (scripts/test.sh installs postfix, knot, dovecot-imapd)")
    if os.geteuid() != 0:
        raise RuntimeError("these tests run Postfix and a DNS server on port 53: they need root")


def _bindable(host, port, udp=False):
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            if not udp:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            return True
        except OSError:
            return False


def free_port(host):
    """A TCP port free on `host` (and on every other address: no wildcard
    listener has it, since binding would then fail)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if _bindable("0.0.0.0", port):
            return port
    raise RuntimeError(f"no free port on {host}")


def loopback_address(second, port=None, udp=False):
    """A random 127.SECOND.x.y where `port` (if given) is free."""
    for _ in range(100):
        addr = f"127.{second}.{random.randint(0, 255)}.{random.randint(2, 254)}"
        if port is None or (_bindable(addr, port) and (not udp or _bindable(addr, port, udp=True))):
            return addr
    raise RuntimeError(f"no free loopback address 127.{second}.x.y")


# --------------------------------------------------------------------------
# DNS
# --------------------------------------------------------------------------
class LoopbackDNS(KnotServer):
    """KnotServer that also listens on `resolver_address`:53 (for the libc
    resolver of a Postfix in its own mount namespace)."""

    def __init__(self, directory, zones, resolver_address=None, **kw):
        self.resolver_address = resolver_address or loopback_address(53, 53, udp=True)
        super().__init__(directory, zones, **kw)

    def _write(self):
        super()._write()
        text = self.conf.read_text()
        one = f"listen: {HOST}@{self.port}"
        assert one in text, "helpers_dns.KnotServer changed its listen line"
        self.conf.write_text(text.replace(one, f"listen: [ {HOST}@{self.port}, {self.resolver_address}@53 ]"))

    def _ready(self, zone):
        if not super()._ready(zone):
            return False
        answer = dns_ping(53, zone, "SOA", host=self.resolver_address)
        return answer is not None and answer[0] == 0 and answer[1] > 0

    def resolv_conf(self):
        return f"nameserver {self.resolver_address}\noptions timeout:1 attempts:2\n"


def zone(origin, records, ttl=5):
    """Zone file text: SOA and NS, then `records` (lines relative to origin)."""
    origin = origin if origin.endswith(".") else origin + "."
    head = (f"$ORIGIN {origin}\n$TTL {ttl}\n"
            f"@ SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 {ttl}\n"
            f"@ NS ns.{origin}\nns A 127.0.0.1\n")
    return head + "".join(r + "\n" for r in records)


# --------------------------------------------------------------------------
# Certificates (openssl CLI)
# --------------------------------------------------------------------------
def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr}{r.stdout}")
    return r.stdout


def self_signed(directory, name):
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / f"{name}.crt", d / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
             "-keyout", str(key), "-out", str(cert))
    return cert, key


def make_ca(directory, name="Postcell Test CA"):
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tag = re.sub(r"\W+", "-", name.lower())
    cert, key = d / f"{tag}.crt", d / f"{tag}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", str(key), "-out", str(cert))
    return cert, key


def issue(directory, ca, names=(), ips=()):
    """A server certificate signed by `ca` (cert, key) for the DNS names and IP addresses given."""
    d = pathlib.Path(directory)
    tag = (names or ips)[0]
    cert, key, csr, ext = d / f"{tag}.crt", d / f"{tag}.key", d / f"{tag}.csr", d / f"{tag}.ext"
    san = ",".join([f"DNS:{n}" for n in names] + [f"IP:{i}" for i in ips])
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", f"/CN={tag}", "-keyout", str(key), "-out", str(csr))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return cert, key


# --------------------------------------------------------------------------
# Postfix
# --------------------------------------------------------------------------
MASTER_CF = """\
# Private Postfix instance (generated by Tests/Interop/helpers_postfix.py).
# service type  private unpriv  chroot  wakeup  maxproc command + args
{smtpd}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """One private Postfix instance.

    mailboxes: addresses with a Maildir (virtual delivery), e.g.
      ["ok@remote.test"]; their domains are the virtual mailbox domains
      (plus `domains`).
    access: {address: "450 4.2.0 try later" | "550 5.1.1 no such user" | "OK"}
      (check_recipient_access, texthash); set_access() changes it live.
    transports: {domain: nexthop} (transport_maps, texthash), e.g.
      {"example.test": "smtp:example.test:2525"} (an MX lookup, then that port).
    dns: a LoopbackDNS whose port-53 address Postfix's resolver asks.
    cert/key: the MX port's certificate (STARTTLS offered, `may`); None: no TLS.
    submission: (cert, key, sasl_socket_path) for a second smtpd that
      requires STARTTLS and AUTH (Dovecot SASL), or None.
    plain: a third smtpd (`plain_port`) that offers no STARTTLS.
    """

    def __init__(self, mailboxes, dns, access=None, transports=None, domains=(), cert=None, key=None,
                 submission=None, plain=False, address=None, port=None, hostname="mx.remote.test", extra_main=""):
        require_tools()
        # Postfix only binds addresses configured on an interface: on lo,
        # that is 127.0.0.1 (other 127/8 addresses are routed, not assigned).
        self.address = address or HOST
        self.port = port or free_port(self.address)
        self.submission = submission
        self.submission_port = free_port(self.address) if submission else None
        self.plain_port = free_port(self.address) if plain else None
        self.mailboxes = list(mailboxes)
        self.domains = sorted({m.split("@", 1)[1] for m in self.mailboxes} | set(domains))
        self.access = dict(access or {})
        self.transports = dict(transports or {})
        self.dns = dns
        self.cert, self.key = cert, key
        self.hostname = hostname
        self.extra_main = extra_main
        # Not under pytest's tmp_path (0700): postfix and the mailbox owner must reach it.
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="postcell-postfix-"))
        os.chmod(self.dir, 0o755)
        self.etc = self.dir / "etc"
        self.spool = self.dir / "spool"
        self.data = self.dir / "data"
        self.mail = self.dir / "mail"
        self.log_path = self.dir / "maillog"
        self.proc = None
        self._out = None

    # -- configuration ----------------------------------------------------
    def _write(self):
        uid, gid = ensure_mail_user()
        for d in (self.etc, self.spool, self.data, self.mail):
            d.mkdir(parents=True, exist_ok=True)
        os.chown(self.mail, uid, gid)
        # The master keeps its lock (and tlsmgr its PRNG state) here, as mail_owner.
        pw = pwd.getpwnam("postfix")
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        os.chmod(self.data, 0o700)
        (self.etc / "resolv.conf").write_text(self.dns.resolv_conf())
        (self.etc / "vmailbox").write_text("".join(
            f"{m} {m.split('@')[1]}/{m.split('@')[0]}/\n" for m in self.mailboxes))
        self._write_access()
        (self.etc / "transport").write_text("".join(f"{d} {t}\n" for d, t in self.transports.items()))
        tls = ""
        if self.cert:
            tls = (f"smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {self.cert}\n"
                   f"smtpd_tls_key_file = {self.key}\nsmtpd_tls_loglevel = 1\n"
                   "smtpd_tls_received_header = yes\n")
        sasl = ""
        if self.submission:
            sasl = (f"smtpd_sasl_type = dovecot\nsmtpd_sasl_path = {self.submission[2]}\n"
                    "smtpd_sasl_auth_enable = no\nsmtpd_tls_auth_only = yes\n")
        (self.etc / "main.cf").write_text(f"""\
# Private Postfix instance (generated by Tests/Interop/helpers_postfix.py).
compatibility_level = 3.6
queue_directory = {self.spool}
data_directory = {self.data}
command_directory = /usr/sbin
daemon_directory = {POSTFIX_DAEMONS}
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-postcell-test
maillog_file = {self.log_path}
maillog_file_prefixes = {self.dir}
myhostname = {self.hostname}
mydomain = remote.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
alias_maps =
alias_database =
relayhost =
relay_domains =
inet_interfaces = {self.address}
inet_protocols = ipv4
smtp_bind_address = {self.address}
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP
smtpd_peername_lookup = no
# Headers from SMTP clients stay as they came (no rewriting, nothing added).
local_header_rewrite_clients =
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
biff = no
append_dot_mydomain = no
message_size_limit = 20971520
virtual_mailbox_domains = {' '.join(self.domains)}
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = texthash:{self.etc}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
virtual_mailbox_limit = 0
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:{self.etc}/access, permit
transport_maps = texthash:{self.etc}/transport
smtp_host_lookup = dns
smtp_dns_support_level = enabled
smtp_tls_security_level = may
smtp_tls_loglevel = 1
smtp_connect_timeout = 5s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
{tls}{sasl}{self.extra_main}
""")
        smtpd = f"{self.address}:{self.port} inet n - n - - smtpd"
        if self.submission:
            cert, key, _ = self.submission
            smtpd += (f"\n{self.address}:{self.submission_port} inet n - n - - smtpd"
                      f"\n  -o syslog_name=postfix-postcell-test/submission"
                      f"\n  -o smtpd_tls_security_level=encrypt"
                      f"\n  -o smtpd_tls_cert_file={cert}\n  -o smtpd_tls_key_file={key}"
                      f"\n  -o smtpd_sasl_auth_enable=yes"
                      f"\n  -o smtpd_client_restrictions=permit_sasl_authenticated,reject"
                      f"\n  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject")
        if self.plain_port:
            smtpd += (f"\n{self.address}:{self.plain_port} inet n - n - - smtpd"
                      f"\n  -o syslog_name=postfix-postcell-test/plain -o smtpd_tls_security_level=none")
        (self.etc / "master.cf").write_text(MASTER_CF.format(smtpd=smtpd))

    def _write_access(self):
        tmp = self.etc / "access.tmp"
        tmp.write_text("".join(f"{a} {v}\n" for a, v in self.access.items()))
        os.replace(tmp, self.etc / "access")

    # -- life cycle -------------------------------------------------------
    def postfix(self, *args, check=True, timeout=30):
        cmd = [POSTFIX, "-c", str(self.etc), *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"postfix {' '.join(args)} failed ({r.returncode}): {r.stdout}{r.stderr}"
                               f"{_tty_diagnostics(cmd)}\n{self.log()}")
        return r

    def start(self, timeout=30):
        self._write()
        # Creates the queue's directories with their owners (post-install create-missing).
        self.postfix("check")
        self._out = open(self.dir / "master.out", "ab")
        # The master, in a mount namespace of its own where /etc/resolv.conf
        # names only the Knot on loopback; its children inherit it.
        script = (f"mount --bind {self.etc}/resolv.conf /etc/resolv.conf && "
                  f"exec {POSTFIX_DAEMONS}/master -c {self.etc}")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                     stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        _running.append(self)
        deadline = time.monotonic() + timeout
        ports = [p for p in (self.port, self.submission_port, self.plain_port) if p]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.log()
                self.stop()
                raise RuntimeError(f"postfix master exited with {self.proc_rc}:\n{out}")
            if all(self._listening(p) for p in ports):
                return self
            time.sleep(0.05)
        out = self.log()
        self.stop()
        raise RuntimeError(f"postfix did not listen in time:\n{out}")

    def _listening(self, port):
        try:
            with socket.create_connection((self.address, port), timeout=1) as s:
                s.settimeout(5)
                return s.recv(4).startswith(b"220")
        except OSError:
            return False

    def reload(self, timeout=10):
        """Re-reads main.cf and the maps (new smtpd processes). Returns once
        smtpd greets promptly again: right after a reload the first
        connection can wait a second or more for its greeting, which would
        shift the timing of the test that follows."""
        self.postfix("reload")
        deadline = time.monotonic() + timeout
        ports = [p for p in (self.port, self.submission_port, self.plain_port) if p]
        fast = 0
        while time.monotonic() < deadline and fast < 2:
            t = time.monotonic()
            ok = all(self._listening(p) for p in ports)
            fast = fast + 1 if ok and time.monotonic() - t < 0.2 * len(ports) else 0
            time.sleep(0.05)

    def set_access(self, access):
        self.access = dict(access)
        self._write_access()
        self.reload()

    def set_transports(self, transports):
        self.transports = dict(transports)
        (self.etc / "transport").write_text("".join(f"{d} {t}\n" for d, t in self.transports.items()))
        self.reload()

    proc_rc = None

    def stop(self, timeout=10):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # The master is a session leader (setsid); its children share its group.
        stop_session(proc, lambda: self.postfix("stop", check=False, timeout=timeout), timeout)
        self.proc_rc = proc.returncode
        if self._out:
            self._out.close()
        if self in _running:
            _running.remove(self)

    def cleanup(self):
        self.stop()
        if not os.environ.get("POSTCELL_KEEP_POSTFIX"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- inspection -------------------------------------------------------
    def log(self, tail=12000):
        out = []
        for p in (self.dir / "master.out", self.log_path):
            try:
                out.append(p.read_text(errors="replace")[-tail:])
            except FileNotFoundError:
                pass
        return "\n".join(out)

    def log_lines(self, pattern):
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        rx = re.compile(pattern)
        return [ln for ln in text.splitlines() if rx.search(ln)]

    def wait_log(self, pattern, timeout=15, count=1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.log_lines(pattern)
            if len(lines) >= count:
                return lines
            time.sleep(0.05)
        raise AssertionError(f"postfix log has no {count}x /{pattern}/ after {timeout}s:\n{self.log()}")

    def maildir(self, address):
        local, domain = address.split("@", 1)
        return self.mail / domain / local

    def messages(self, address):
        """The messages delivered to `address` (bytes, LF line ends as Maildir stores them), oldest first."""
        d = self.maildir(address)
        files = []
        for sub in ("new", "cur"):
            p = d / sub
            if p.is_dir():
                files += [f for f in p.iterdir() if f.is_file()]
        files.sort(key=lambda f: (f.stat().st_mtime, f.name))
        return [f.read_bytes() for f in files]

    def all_messages(self):
        out = {}
        for m in self.mailboxes:
            out[m] = self.messages(m)
        return out

    def wait_messages(self, address, count, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.messages(address)
            if len(msgs) >= count:
                return msgs
            time.sleep(0.05)
        raise AssertionError(f"{address} has {len(self.messages(address))} messages in Postfix, "
                             f"expected {count} within {timeout}s\n{self.log()}")

    def queue_files(self):
        """Messages still in Postfix's own queue (incoming/active/deferred/hold)."""
        n = []
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            p = self.spool / sub
            if p.is_dir():
                n += [f for f in p.rglob("*") if f.is_file()]
        return n

    def inject(self, mail_from, rcpts, message):
        """Hands a message to this Postfix over SMTP (its MX port)."""
        with RawSMTP(self.address, self.port, timeout=20) as c:
            assert c.greeting.code == 220, c.greeting
            c.ehlo("client.remote.test")
            r = c.cmd(f"MAIL FROM:<{mail_from}>")
            assert r.code == 250, r
            for rc in rcpts:
                r = c.cmd(f"RCPT TO:<{rc}>")
                assert r.code == 250, r
            r = c.data(message)
            assert r.code == 250, r
            c.quit()
        return r


def _tty_diagnostics(cmd):
    """Postfix commands report errors to syslog, or to stderr only when it
    is a terminal; with no syslog here, run the command again under
    script(1) to read why it failed."""
    if not shutil.which("script"):
        return ""
    r = subprocess.run(["script", "-qec", " ".join(cmd), "/dev/null"], capture_output=True, text=True, timeout=30)
    return "\n" + (r.stdout + r.stderr).strip()


@atexit.register
def _stop_all():
    for p in list(_running):
        try:
            p.stop(timeout=3)
        except Exception:
            pass


# --------------------------------------------------------------------------
# A TCP listener that counts connections (to prove none were made)
# --------------------------------------------------------------------------
class CountingListener:
    def __init__(self, host, port, greeting=b"554 5.7.1 not here\r\n"):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.accepted = 0
        self.greeting = greeting
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            self.accepted += 1
            try:
                c.sendall(self.greeting)
            except OSError:
                pass
            c.close()

    def stop(self):
        self._stop.set()
        self._t.join(2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# The engine's side
# --------------------------------------------------------------------------
def submit(cell, user, password, rcpts, message, mail_from=None, timeout=20):
    """Submission as a cell user: STARTTLS, AUTH PLAIN, one transaction that
    must be accepted; returns the final reply."""
    with RawSMTP(port=cell.port("submission"), timeout=timeout) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo("laptop.example.test")
        c.starttls()
        c.ehlo("laptop.example.test")
        r = c.auth_plain(user, password)
        assert r.code == 235, r
        eight = any(b >= 0x80 for b in message)
        r = c.cmd(f"MAIL FROM:<{mail_from or user}>" + (" BODY=8BITMIME" if eight else ""))
        assert r.code == 250, r
        for rc in rcpts:
            r = c.cmd(f"RCPT TO:<{rc}>")
            assert r.code == 250, (rc, r)
        r = c.data(message)
        assert r.code == 250, r
        c.quit()
        return r


def engine_log_lines(cell, pattern):
    try:
        text = cell.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    rx = re.compile(pattern)
    return [ln for ln in text.splitlines() if rx.search(ln)]


def wait_engine_log(cell, pattern, timeout=15, count=1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = engine_log_lines(cell, pattern)
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"engine log has {len(engine_log_lines(cell, pattern))}x /{pattern}/, "
                         f"expected {count} within {timeout}s:\n{cell.log()}")


def outbound_lines(cell, to=None, result=None):
    """The engine's per-recipient outcome lines, e.g.
    `... queue=ID relay=mx.remote.test[127.0.0.1] reply=250 ... result=delivered to=a@b [MailQueue] outbound`."""
    lines = [ln for ln in engine_log_lines(cell, r"\boutbound\s*$") if re.search(r"\bresult=", ln)]
    if to:
        lines = [ln for ln in lines if re.search(r"\bto=<?" + re.escape(to) + r"(?=[>\s])", ln)]
    if result:
        lines = [ln for ln in lines if re.search(r"\bresult=(?:" + result + r")\b", ln)]
    return lines


def wait_outbound(cell, to=None, result=None, count=1, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = outbound_lines(cell, to, result)
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"engine log has {len(outbound_lines(cell, to, result))} outbound lines to={to} "
                         f"result={result}, expected {count} within {timeout}s:\n{cell.log()}")


def spool_ids(cell):
    d = cell.dir / "queue" / "outbound"
    return sorted(f.name[:-4] for f in d.glob("*.msg")) if d.is_dir() else []


def state_files(cell):
    d = cell.dir / "queue" / "state"
    return sorted(d.glob("*.json")) if d.is_dir() else []


def queue_state(cell, qid):
    p = cell.dir / "queue" / "state" / f"{qid}.json"
    return json.loads(p.read_text()) if p.exists() else None


def corrupt_files(cell):
    d = cell.dir / "queue" / "corrupt"
    return sorted(f.name for f in d.iterdir()) if d.is_dir() else []


def wait_queue_empty(cell, timeout=20, flush_every=None):
    """Waits until the spool holds no message (`queue list` agrees)."""
    deadline = time.monotonic() + timeout
    last_flush = time.monotonic()
    while time.monotonic() < deadline:
        if not spool_ids(cell) and not cell.queued():
            return
        if flush_every and time.monotonic() - last_flush > flush_every and cell.proc:
            cell.proc.send_signal(signal.SIGUSR1)
            last_flush = time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"queue not empty after {timeout}s: {spool_ids(cell)}\n{cell.queued()}\n{cell.log()}")


def flush(cell):
    """SIGUSR1: every deferred message is due now."""
    cell.proc.send_signal(signal.SIGUSR1)


def inbox(cell, user):
    """[(uid, bytes)] of the user's INBOX."""
    return [(m["uid"], cell.message_bytes(user, m["uid"])) for m in cell.messages(user)]


def wait_inbox(cell, user, count, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = cell.messages(user)
        if len(msgs) >= count:
            return inbox(cell, user)
        time.sleep(0.1)
    raise AssertionError(f"{user} has {len(cell.messages(user))} messages, expected {count}:\n{cell.log()}")


# --------------------------------------------------------------------------
# DSNs (RFC 3464 in RFC 6522 multipart/report)
# --------------------------------------------------------------------------
class ParsedDSN:
    def __init__(self, raw):
        self.raw = raw
        self.msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        ct = self.msg.get_content_type()
        assert ct == "multipart/report", f"DSN is {ct}:\n{raw[:2000]!r}"
        assert self.msg.get_param("report-type") == "delivery-status", self.msg["Content-Type"]
        parts = self.msg.get_payload()
        self.types = [p.get_content_type() for p in parts]
        assert self.types[0] == "text/plain", self.types
        assert "message/delivery-status" in self.types, self.types
        self.text = parts[0].get_payload(decode=True).decode("utf-8", "replace")
        ds = parts[self.types.index("message/delivery-status")]
        groups = ds.get_payload()
        # The email package reads message/delivery-status as a list of header blocks.
        assert isinstance(groups, list) and len(groups) >= 2, f"delivery-status blocks: {groups!r}"
        self.per_message = groups[0]
        self.recipients = groups[1:]
        self.original_headers = None
        for p in parts:
            if p.get_content_type() in ("text/rfc822-headers", "message/rfc822"):
                payload = p.get_payload(decode=True)
                if payload is None:  # message/rfc822 parsed as a message
                    payload = p.get_payload()[0].as_bytes()
                self.original_headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(payload)

    def recipient(self, address):
        for r in self.recipients:
            fr = (r.get("Final-Recipient") or "").strip()
            if fr.lower() == f"rfc822; {address}".lower() or fr.lower().endswith(";" + address.lower()):
                return r
        raise AssertionError(f"no per-recipient block for {address}: "
                             f"{[r.get('Final-Recipient') for r in self.recipients]}")

    @property
    def actions(self):
        return [(r.get("Action") or "").strip().lower() for r in self.recipients]


def dsns(cell, user="alice@example.test"):
    """The DSNs in the user's INBOX, parsed."""
    out = []
    for _, raw in inbox(cell, user):
        m = email.message_from_bytes(raw, policy=email.policy.compat32)
        if m.get_content_type() == "multipart/report":
            out.append(ParsedDSN(raw))
    return out


def wait_dsns(cell, count, user="alice@example.test", timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = dsns(cell, user)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{user} has {len(dsns(cell, user))} DSNs, expected {count} within {timeout}s:\n{cell.log()}")


def header_block(raw):
    """The header section of a message (bytes), LF or CRLF."""
    m = re.search(rb"\r?\n\r?\n", raw)
    return raw[:m.start()] if m else raw


def body_of(raw):
    m = re.search(rb"\r?\n\r?\n", raw)
    return raw[m.end():] if m else b""


def lf(data):
    return data.replace(b"\r\n", b"\n")
