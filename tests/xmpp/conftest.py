"""Fixtures for the xmpp-core integration tests.

Each test gets a private redis-server on a unix socket in a temporary folder, test
certificates made with openssl at test time (a CA and one certificate per domain), an
xmpp-core listening on free 127.0.0.1 ports, and helpers to issue tokens with
samlgw-token. Everything started is stopped afterwards, also on failure.

Under SAMLGW_WRAPPER (tests/wrapper.py: valgrind) xmpp-core runs behind it, waits are
SLOW times longer, and a server that reports an error or a leak when it stops fails the
test that started it.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from wrapper import SLOW, command, problems  # noqa: E402
XMPP_BIN = os.environ.get("XMPP_CORE_BIN") or str(REPO / "build" / "xmpp-core" / "xmpp-core")
TOKEN_BIN = os.environ.get("SAMLGW_TOKEN_BIN") or str(REPO / "build" / "samlgw" / "samlgw-token")
DOMAINS = ("example.org", "example.net")


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=60, **kw)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A test CA and a certificate for each hosted domain (ECDSA P-256)."""
    d = tmp_path_factory.mktemp("certs")
    _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2",
          "-subj", "/CN=xmpp-core test CA"])
    for name in DOMAINS:
        _run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", str(d / (name + ".key")), "-out", str(d / (name + ".csr")),
              "-subj", "/CN=" + name])
        (d / (name + ".ext")).write_text("subjectAltName=DNS:%s\n" % name)
        _run(["openssl", "x509", "-req", "-in", str(d / (name + ".csr")), "-CA", str(d / "ca.pem"),
              "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out", str(d / (name + ".pem")),
              "-days", "2", "-extfile", str(d / (name + ".ext"))])
    return d


class Redis:
    """A private redis-server on a unix socket; stop() saves first so that a restart keeps
    the data (tokens, rosters, offline messages)."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.socket = self.dir / "redis.sock"
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(self.dir / ("redis-%d.log" % self.starts), "wb")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--dbfilename", "dump.rdb", "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.cli("PING").stdout.strip() == "PONG":
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-s", str(self.socket)] + list(args),
                              capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)

    def stop(self, save=True):
        if self.proc is None:
            return
        if save and self.proc.poll() is None:
            self.cli("SAVE")
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """xmpp-core with a configuration for the fixture's Redis and certificates."""

    def __init__(self, directory, redis, certs, extra="", redis_timeout=300):
        self.dir = Path(directory)
        self.port = free_port()
        self.tls_port = free_port()
        self.config = self.dir / "samlgw.conf"
        domains = "".join("[domain %s]\ncert = %s\nkey = %s\n\n" % (
            d, certs / (d + ".pem"), certs / (d + ".key")) for d in DOMAINS)
        self._config_text = lambda: (
            "[log]\nlevel = debug\n\n"
            "[redis]\nurl = unix://%s\ntimeout_ms = %d\n\n"
            "[token]\nservices = xmpp\n\n"
            "[xmpp]\nlisten = 127.0.0.1:%d\nlisten_tls = 127.0.0.1:%d\n%s\n\n%s"
            % (redis.socket, redis_timeout, self.port, self.tls_port, extra, domains))
        self.config.write_text(self._config_text())
        self.log_path = self.dir / "xmpp-core.log"
        self.proc = None

    def start(self, attempts=5):
        """Start xmpp-core and wait until both ports answer. A port that free_port() saw
        free may be taken by another process (another test's client) before xmpp-core
        binds it: then the server is started again on new ports."""
        for attempt in range(attempts):
            try:
                return self._start_once()
            except RuntimeError as e:
                if "Address already in use" not in str(e) or attempt == attempts - 1:
                    raise
                self.port, self.tls_port = free_port(), free_port()
                self.config.write_text(self._config_text())

    def _start_once(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(command([XMPP_BIN, "--config", self.config]),
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15 * SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                self.log.close()
                raise RuntimeError("xmpp-core exited:\n" + self.log_text())
            try:
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=1).close()
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("xmpp-core did not start:\n" + self.log_text())

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        """SIGTERM; returns the exit status. A report of valgrind or a sanitizer in the
        log is kept in self.reported (checked when the fixture ends)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10 * SLOW)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.log.close()
        self.reported = getattr(self, "reported", None) or problems(0, self.log_text())
        return proc.returncode


class Env:
    def __init__(self, redis, server, certs):
        self.redis = redis
        self.server = server
        self.certs = certs
        self.cafile = str(certs / "ca.pem")

    def token(self, jid, services="xmpp", extra=()):
        r = subprocess.run([TOKEN_BIN, "--config", str(self.server.config), "issue", "--jid", jid,
                            "--service", services] + list(extra), capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def revoke_all(self, jid):
        r = subprocess.run([TOKEN_BIN, "--config", str(self.server.config), "revoke", "--jid", jid,
                            "--all"], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr


@pytest.fixture
def make_env(tmp_path_factory, certs):
    made = []

    def make(extra="", redis_timeout=300):
        d = tmp_path_factory.mktemp("xmpp")
        redis = Redis(d)
        redis.start()
        made.append(redis)
        server = Server(d, redis, certs, extra, redis_timeout)
        made.append(server)
        server.start()
        return Env(redis, server, certs)

    try:
        yield make
    finally:
        for thing in reversed(made):
            thing.stop()
    for thing in made:
        if getattr(thing, "reported", None):
            pytest.fail("xmpp-core " + thing.reported)


@pytest.fixture
def env(make_env):
    return make_env()


@pytest.fixture(scope="session", autouse=True)
def _check_binaries():
    for b in (XMPP_BIN, TOKEN_BIN):
        if not os.access(b, os.X_OK):
            pytest.exit("%s not found (set XMPP_CORE_BIN / SAMLGW_TOKEN_BIN)" % b, returncode=1)
