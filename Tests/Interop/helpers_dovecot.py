"""A private Dovecot instance (Debian's dovecot-imapd 2.3) for comparisons:
its own configuration file, base/state directories, passwd-file users and
Maildir storage, all in one temporary directory; IMAP on 127.0.0.1 only.

    with Dovecot({"alice@example.test": "secret"}) as d:
        imaplib.IMAP4("127.0.0.1", d.port).login(...)

Runs as root (as CI does): Dovecot refuses to access mail as root, so mail is
owned by a dedicated system user (`postcell-bench`, created when missing, the
same one bench/smtp uses), logins run as Debian's `dovenull` and internal
services as `dovecot`. Run as another user, every service runs as that user
with no chroot.

The master runs in the foreground (`dovecot -F -c FILE`) in a process group
of its own; stop() sends SIGTERM to the master named by its pid file (and by
the process we started), waits, then SIGKILLs the group, so no Dovecot
process outlives the test. Durability settings (mail_fsync) stay at their
defaults. Nothing here talks to any address but 127.0.0.1.
"""
import atexit
import grp
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HOST = "127.0.0.1"
MAIL_USER = "postcell-bench"
_SEARCH = ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]


def dovecot_binary():
    """The dovecot master binary, or None when Dovecot is not installed."""
    found = shutil.which("dovecot")
    for p in ([found] if found else []) + _SEARCH:
        if p and os.access(p, os.X_OK) and pathlib.Path("/usr/lib/dovecot/imap").exists():
            return p
    return None


def dovecot_version():
    b = dovecot_binary()
    if not b:
        return None
    r = subprocess.run([b, "--version"], capture_output=True, text=True, timeout=10)
    return r.stdout.strip() or None


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def ensure_mail_user(name=MAIL_USER):
    """(uid, gid) of the mail owner: the system user `name` under root
    (created like bench/smtp/lib.sh does when missing), else ourselves."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
        pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


def self_signed(directory, name="localhost"):
    """A throwaway self-signed certificate and key (openssl CLI)."""
    cert, key = pathlib.Path(directory) / "cert.pem", pathlib.Path(directory) / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Dovecot:
    """One private Dovecot instance.

    users: {login: password}; passwords are stored with the PLAIN scheme.
    tls: False = plain IMAP (plaintext LOGIN allowed, `ssl = no`);
         True = implicit TLS only (like port 993), with cert/key given or a
         generated self-signed pair.
    extra: further dovecot.conf lines appended verbatim (e.g. limits).
    """

    def __init__(self, users, directory=None, tls=False, cert=None, key=None, extra="", port=None):
        self.users = dict(users)
        for u, p in self.users.items():
            if ":" in u + p or "\n" in u + p:
                raise ValueError("passwd-file users/passwords may not contain ':' or newlines")
        self.binary = dovecot_binary()
        if self.binary is None:
            raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd)")
        self._own_dir = directory is None
        # Not under pytest's tmp_path: that is mode 0700 and the mail user
        # must reach the Maildir.
        self.dir = pathlib.Path(directory or tempfile.mkdtemp(prefix="postcell-dovecot-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.tls = tls
        self.cert, self.key = cert, key
        self.extra = extra
        self.port = port
        self.proc = None
        self.conf = self.dir / "dovecot.conf"
        self.base_dir = self.dir / "run"
        self.log_path = self.dir / "dovecot.log"
        self.mail_root = self.dir / "mail"

    # -- configuration ------------------------------------------------------
    def _write_config(self):
        uid, gid = ensure_mail_user()
        root = os.geteuid() == 0
        me = pwd.getpwuid(os.geteuid()).pw_name
        for d in (self.dir / "state", self.mail_root):
            d.mkdir(parents=True, exist_ok=True)
        if root:
            os.chown(self.mail_root, uid, gid)
        os.chmod(self.mail_root, 0o755)
        passwd = self.dir / "passwd"
        passwd.write_text("".join(
            f"{u}:{{PLAIN}}{p}:{uid}:{gid}::{self.mail_root}/{u}::\n" for u, p in self.users.items()))
        os.chmod(passwd, 0o644)  # test passwords only; the auth process reads it
        if self.tls and not (self.cert and self.key):
            self.cert, self.key = self_signed(self.dir)
        if self.port is None:
            self.port = free_port()

        lines = [
            "# Private Dovecot instance for Postcell's comparison tests and bench",
            "# (generated by Tests/Interop/helpers_dovecot.py).",
            f"base_dir = {self.base_dir}",
            f"state_dir = {self.dir / 'state'}",
            f"instance_name = postcell-dovecot-{self.dir.name}",
            "protocols = imap",
            f"listen = {HOST}",
            f"log_path = {self.log_path}",
            f"info_log_path = {self.log_path}",
            "auth_mechanisms = plain login",
            "mail_location = maildir:%h",
            f"first_valid_uid = {uid}",
            "last_valid_uid = 0",
            f"mail_uid = {uid}",
            f"mail_gid = {gid}",
            "passdb {",
            "  driver = passwd-file",
            f"  args = scheme=PLAIN username_format=%u {passwd}",
            "}",
            "userdb {",
            "  driver = passwd-file",
            f"  args = username_format=%u {passwd}",
            "}",
            # Ten or more parallel sessions of one user from 127.0.0.1
            # (the default is 10).
            "protocol imap {",
            "  mail_max_userip_connections = 1000",
            "}",
            "service stats {",
            "  unix_listener stats-writer {",
            "    mode = 0666",
            "  }",
            "}",
        ]
        if self.tls:
            lines += ["ssl = required", f"ssl_cert = <{self.cert}", f"ssl_key = <{self.key}",
                      "disable_plaintext_auth = yes"]
            imap_port, imaps_port = 0, self.port
        else:
            lines += ["ssl = no", "disable_plaintext_auth = no"]
            imap_port, imaps_port = self.port, 0
        lines += [
            "service imap-login {",
            "  inet_listener imap {",
            f"    address = {HOST}",
            f"    port = {imap_port}",
            "  }",
            "  inet_listener imaps {",
            f"    address = {HOST}",
            f"    port = {imaps_port}",
            f"    ssl = {'yes' if self.tls else 'no'}",
            "  }",
        ]
        if not root:
            lines += ["  chroot ="]
        lines += ["}"]
        if not root:
            group = grp.getgrgid(os.getegid()).gr_name
            lines += [f"default_login_user = {me}", f"default_internal_user = {me}",
                      f"default_internal_group = {group}", "service anvil {", "  chroot =", "}"]
        self.conf.write_text("\n".join(lines) + "\n" + self.extra + "\n")

    # -- lifecycle ------------------------------------------------------------
    def start(self, timeout=30):
        self._write_config()
        self._log = open(self.dir / "master.out", "ab")
        self.proc = subprocess.Popen([self.binary, "-F", "-c", str(self.conf)],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _running.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc, out = self.proc.returncode, self.log()
                self.cleanup()
                raise RuntimeError(f"dovecot exited with {rc}:\n{out}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        out = self.log()
        self.cleanup()
        raise RuntimeError("dovecot did not listen in time:\n" + out)

    def master_pid(self):
        """The master's pid from its pid file (base_dir/master.pid)."""
        try:
            return int((self.base_dir / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, timeout=10):
        if self.proc is None:
            return None
        pids = {p for p in (self.master_pid(), self.proc.pid) if p}
        for pid in pids:
            if pid == self.proc.pid or _is_dovecot(pid):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        # The group is the one made for this master (start_new_session): its
        # children (logins, imap, auth) go with it.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait()
        self._log.close()
        self.proc = None
        _running.discard(self)
        return rc

    def cleanup(self):
        """stop(), then remove the directory when this object made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        out = []
        for p in (self.dir / "master.out", self.log_path):
            try:
                out.append(p.read_text(errors="replace")[-8000:])
            except FileNotFoundError:
                pass
        return "\n".join(out)

    def maildir(self, user):
        return self.mail_root / user

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def _is_dovecot(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/comm").read_text().strip() == "dovecot"
    except OSError:
        return False


_running = set()


@atexit.register
def _stop_all():
    for d in list(_running):
        try:
            d.stop()
        except Exception:
            pass
