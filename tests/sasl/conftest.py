"""Fixtures for the SASL plugin and samlgw-authd integration tests.

Every test gets a private redis-server on a unix socket in its own temporary folder (no TCP
port, no persistence; the folder and socket are open to other users so that a server
running as another user, such as Cyrus IMAP's `cyrus`, can reach it), tokens issued with
samlgw-token, and helpers that run Debian's SASL tools against the plugin in the build
folder (never the installed one). Everything started here is stopped afterwards.

Under SAMLGW_WRAPPER (tests/wrapper.py: valgrind) samlgw-authd runs behind it, and one that
reports an error or a leak when it stops fails the test that started it. Debian's SASL
programs and Cyrus IMAP, which load the plugin, run as they are (the plugin's code runs
under valgrind in its C tests).
"""
import base64
import hashlib
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from wrapper import SLOW, command, problems  # noqa: E402
BUILD = Path(os.environ.get("SAMLGW_BUILD_DIR") or REPO / "build")
TOKEN_BIN = os.environ.get("SAMLGW_TOKEN_BIN") or str(BUILD / "samlgw" / "samlgw-token")
AUTHD_BIN = os.environ.get("SAMLGW_AUTHD_BIN") or str(BUILD / "sasl-plugin" / "samlgw-authd")
AUTHD = command([AUTHD_BIN])  # behind SAMLGW_WRAPPER
PLUGIN_DIR = os.environ.get("SAMLGW_SASL_PLUGIN_DIR") or str(BUILD / "sasl-plugin")
SYSTEM_PLUGIN_DIR = os.environ.get("SAMLGW_SASL_SYSTEM_DIR") or "/usr/lib/x86_64-linux-gnu/sasl2"
TEST_SETUP = os.environ.get("SAMLGW_TEST_SETUP", "")

TIMEOUT = 30 * SLOW

# Started as root, samlgw-authd refuses to run without --user: the tests then run it as
# nobody (the private Redis socket and the config file are open to everyone).
RUN_AS = "nobody"
AS_USER = ["--user", RUN_AS] if os.geteuid() == 0 else []


def host_env(extra=None):
    """Environment for programs we did not build (sasl-sample-server, cyrus-imapd) that load
    our plugin: under the ASan setup the sanitizer runtime must be loaded first."""
    env = dict(os.environ)
    if TEST_SETUP == "asan":
        libs = []
        for name in ("libasan.so", "libubsan.so"):
            out = subprocess.run(["cc", "-print-file-name=" + name], capture_output=True,
                                 text=True).stdout.strip()
            if out and os.path.isabs(out):
                libs.append(out)
        env["LD_PRELOAD"] = ":".join(libs)
        # The host programs themselves leak at exit; the plugin's own frees are checked by
        # the unit tests and by valgrind.
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0:verify_asan_link_order=0"
    env.update(extra or {})
    return env


class Redis:
    """A private redis-server on a unix socket."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.socket = self.dir / "redis.sock"
        self.url = "unix://%s" % self.socket
        self.proc = None

    def start(self):
        log = open(self.dir / "redis.log", "ab")
        try:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", "0", "--unixsocket", str(self.socket),
                 "--unixsocketperm", "777", "--save", "", "--appendonly", "no",
                 "--dir", str(self.dir), "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.cli("PING").stdout.strip() == "PONG":
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-s", str(self.socket)] + list(args),
                              capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)


@pytest.fixture
def workdir():
    """A temporary folder others may enter (Cyrus IMAP drops to its own user)."""
    d = tempfile.mkdtemp(prefix="samlgw-sasl-", dir="/tmp")
    os.chmod(d, 0o755)
    try:
        yield Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def redis(workdir):
    server = Redis(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def config(redis, workdir):
    """The shared samlgw config for the private Redis."""
    path = workdir / "samlgw.conf"
    path.write_text("[log]\nlevel = debug\n\n[redis]\nurl = %s\ntimeout_ms = 300\n" % redis.url)
    os.chmod(path, 0o644)
    return path


class Tokens:
    """Issues, expires and revokes tokens through samlgw-token and Redis."""

    def __init__(self, config, redis):
        self.config = config
        self.redis = redis

    def run(self, *args, input=""):
        return subprocess.run([TOKEN_BIN, "--config", str(self.config)] + list(args),
                              capture_output=True, text=True, timeout=TIMEOUT, input=input)

    def issue(self, jid, services="imap,smtp,sample", ttl=None, uses=None):
        args = ["issue", "--jid", jid, "--service", services]
        if ttl is not None:
            args += ["--ttl", str(ttl)]
        if uses is not None:
            args += ["--uses", str(uses)]
        r = self.run(*args)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    @staticmethod
    def key(token):
        return "samlgw:token:" + hashlib.sha256(token.encode()).hexdigest()

    def uses(self, token):
        """The uses counted so far for a limited token (None once its record is gone)."""
        r = self.redis.cli("HGET", self.key(token), "uses")
        assert r.returncode == 0, r.stderr
        return int(r.stdout) if r.stdout.strip() else None

    def expire(self, token):
        """Move a token's stored expiry into the past (its key TTL still runs)."""
        assert self.redis.cli("HSET", self.key(token), "expires", "1").returncode == 0

    def revoke_all(self, jid):
        r = self.run("revoke", "--jid", jid, "--all")
        assert r.returncode == 0, r.stderr


@pytest.fixture
def tokens(config, redis):
    return Tokens(config, redis)


# --------------------------------------------------------------------------- sasl-sample-server


class SampleResult:
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.challenges = [base64.b64decode(line[3:]) for line in proc.stdout.splitlines()
                           if line.startswith("S: ")]

    @property
    def ok(self):
        return "Negotiation complete" in self.stdout

    @property
    def username(self):
        for line in self.stdout.splitlines():
            if line.startswith("Username: "):
                return line[len("Username: "):]
        return None

    def __repr__(self):
        return "rc=%s\nstdout:\n%s\nstderr:\n%s" % (self.returncode, self.stdout, self.stderr)


def sample_server(conf_dir, mech, initial, replies=(), service="imap", plugin_path=None):
    """One exchange with sasl-sample-server: the client's first message (mech + initial
    response), then each reply in turn; after success the sample's own final message."""
    lines = [base64.b64encode(mech.encode() + b"\0" + initial).decode()]
    lines += [base64.b64encode(r).decode() for r in replies]
    lines.append(base64.b64encode(b"client message 1").decode())
    env = host_env({"SASL_CONF_PATH": str(conf_dir)})
    path = plugin_path or "%s:%s" % (PLUGIN_DIR, SYSTEM_PLUGIN_DIR)
    proc = subprocess.run(["sasl-sample-server", "-p", path, "-s", service, "-m", mech],
                          input="".join("C: %s\n" % l for l in lines), capture_output=True,
                          text=True, timeout=TIMEOUT, env=env)
    return SampleResult(proc)


def oauthbearer(token, authzid=None, host="127.0.0.1", port=143):
    gs2 = b"n," + (b"a=" + authzid.replace("=", "=3D").replace(",", "=2C").encode()
                   if authzid is not None else b"") + b","
    return (gs2 + b"\x01host=" + host.encode() + b"\x01port=" + str(port).encode() +
            b"\x01auth=Bearer " + token.encode() + b"\x01\x01")


def xoauth2(user, token):
    return b"user=" + user.encode() + b"\x01auth=Bearer " + token.encode() + b"\x01\x01"


# --------------------------------------------------------------------------- samlgw-authd


class Authd:
    """samlgw-authd on a unix socket; stopped with SIGTERM."""

    def __init__(self, config, workdir, *extra):
        self.socket = workdir / "authd" / "mux"
        self.socket.parent.mkdir(exist_ok=True)
        os.chmod(self.socket.parent, 0o755)
        if AS_USER and "--user" not in extra:
            # Its folder belongs to the user it runs as (systemd's RuntimeDirectory=), so
            # that it can remove its socket when it stops.
            pw = pwd.getpwnam(RUN_AS)
            os.chown(self.socket.parent, pw.pw_uid, pw.pw_gid)
            extra = tuple(AS_USER) + tuple(extra)
        self.log = workdir / "authd.log"
        self.args = command([AUTHD_BIN, "--config", config, "--socket", self.socket] +
                            list(extra))
        self.proc = None
        self.reported = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20 * SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("samlgw-authd exited: " + self.log.read_text())
            if self.socket.exists():
                try:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(str(self.socket))
                    return self
                except OSError:
                    pass
            time.sleep(0.02)
        raise RuntimeError("samlgw-authd did not start: " + self.log.read_text())

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10 * SLOW)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
        self.reported = self.reported or problems(0, self.log.read_text(errors="replace"))
        return code

    def request(self, *fields, timeout=10):
        """One raw saslauthd request; returns the response text."""
        data = b"".join(struct.pack(">H", len(f)) + f for f in
                        (x.encode() if isinstance(x, str) else x for x in fields))
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(str(self.socket))
            s.sendall(data)
            head = b""
            while len(head) < 2:
                chunk = s.recv(2 - len(head))
                if not chunk:
                    return None
                head += chunk
            n = struct.unpack(">H", head)[0]
            body = b""
            while len(body) < n:
                chunk = s.recv(n - len(body))
                if not chunk:
                    break
                body += chunk
            return body.decode()


@pytest.fixture
def authd_factory(config, workdir):
    started = []

    def make(*extra):
        a = Authd(config, workdir, *extra)
        started.append(a)
        return a.start()

    try:
        yield make
    finally:
        for a in started:
            a.stop()
    for a in started:
        if a.reported:
            pytest.fail("samlgw-authd " + a.reported)


@pytest.fixture(scope="session", autouse=True)
def _check_binaries():
    for b in (TOKEN_BIN, AUTHD_BIN):
        if not os.access(b, os.X_OK):
            pytest.exit("%s not found (build first, or set the SAMLGW_* variables)" % b,
                        returncode=1)
