"""Fixtures for the samlgw-token integration tests.

Every test gets a private redis-server listening only on a unix socket inside a pytest
temporary folder (no TCP port, no persistence), a configuration file pointing at it, and
`run`, which runs samlgw-token with that configuration.

Redis is spoken to through the tiny RESP client below (`RedisServer.call`); nothing outside
the standard library and pytest is used.
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
from wrapper import SLOW, command  # noqa: E402
TOKEN_BIN = os.environ.get("SAMLGW_TOKEN_BIN") or str(REPO / "build" / "samlgw" / "samlgw-token")

CLI_TIMEOUT = 30
REDIS_TIMEOUT_MS = 300

# Exit statuses of samlgw-token (token_cli.c).
EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNAVAILABLE = 2
EXIT_USAGE = 64
EXIT_CONFIG = 78


# --------------------------------------------------------------------------- RESP client


class RedisError(Exception):
    """Redis answered with an error reply."""


class Resp:
    """A minimal RESP2 client over a unix socket (one connection, blocking)."""

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError:
            self.sock.close()
            raise
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def send(self, *args):
        self.sock.sendall(self.encode(args))

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("Redis closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        """One reply: str (status), bytes (bulk), int, list, or None (nil)."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ConnectionError("bad RESP reply: %r" % line)

    def command(self, *args):
        self.send(*args)
        return self.read()


# --------------------------------------------------------------------------- redis-server


class RedisServer:
    """A private redis-server on a unix socket; can be stopped, restarted on the same socket
    path, hung with SIGSTOP and resumed with SIGCONT."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.socket = self.dir / "redis.sock"
        if len(str(self.socket)) > 100:
            raise RuntimeError("socket path too long for a unix socket: %s" % self.socket)
        self.url = "unix://%s" % self.socket
        self.proc = None
        self.paused = False
        self.starts = 0

    def start(self, timeout=10.0):
        assert self.proc is None, "redis-server already running"
        self.starts += 1
        log = open(self.dir / ("redis-%d.log" % self.starts), "wb")
        try:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", "0", "--bind", "127.0.0.1",
                 "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                 "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                 "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=str(self.dir))
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError("redis-server exited with %s:\n%s" % (code, self.log_text()))
            try:
                if self.call("PING", timeout=1.0) == "PONG":
                    return
            except (OSError, ConnectionError, RedisError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not answer PING:\n" + self.log_text())
            time.sleep(0.01)

    def log_text(self):
        return "".join(p.read_text(errors="replace") for p in sorted(self.dir.glob("redis-*.log")))

    def stop(self):
        """Stop the server (resuming it first when paused) and wait for it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                if self.paused:
                    proc.send_signal(signal.SIGCONT)
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        finally:
            self.paused = False
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def restart(self):
        self.stop()
        self.start()

    def pause(self):
        """SIGSTOP: the socket still accepts connections but nothing is answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def call(self, *args, timeout=5.0):
        with Resp(self.socket, timeout=timeout) as r:
            return r.command(*args)

    def connect(self, timeout=5.0):
        return Resp(self.socket, timeout=timeout)

    def cli(self, *args, timeout=10):
        """redis-cli against this server (text output)."""
        return subprocess.run(["redis-cli", "-s", str(self.socket)] + list(args),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def keys(self):
        """Every key, by SCAN."""
        out, cursor = [], b"0"
        while True:
            cursor, batch = self.call("SCAN", cursor, "COUNT", "1000")
            out.extend(batch)
            if cursor == b"0":
                return out


@pytest.fixture
def redis(tmp_path_factory):
    """A running private redis-server; always stopped afterwards."""
    # tmp_path_factory's numbered folders stay short, well under the unix socket limit.
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- configuration


def config_text(redis_url, timeout_ms=REDIS_TIMEOUT_MS, token_extra=""):
    return ("[redis]\n"
            "url = %s\n"
            "timeout_ms = %d\n"
            "\n"
            "[token]\n"
            "services = xmpp\n"
            "%s" % (redis_url, timeout_ms, token_extra))


@pytest.fixture
def make_config(redis, tmp_path):
    """Writes a configuration for the fixture's Redis; extra lines go into [token]."""
    counter = [0]

    def make(token_extra="", timeout_ms=REDIS_TIMEOUT_MS):
        counter[0] += 1
        path = tmp_path / ("samlgw-%d.conf" % counter[0])
        path.write_text(config_text(redis.url, timeout_ms, token_extra))
        return path

    return make


@pytest.fixture
def config(make_config):
    """Path of a configuration file for the fixture's Redis."""
    return make_config()


def run_cli(config_path, args, input=None, timeout=CLI_TIMEOUT, wrap=True):
    """Runs samlgw-token --config CONFIG ARGS... (behind SAMLGW_WRAPPER unless wrap is
    false, see tests/wrapper.py); returns the CompletedProcess (text)."""
    cmd = command([TOKEN_BIN]) if wrap else [TOKEN_BIN]
    if config_path is not None:
        cmd += ["--config", str(config_path)]
    return subprocess.run(cmd + [str(a) for a in args], input=input if input is not None else "",
                          capture_output=True, text=True, timeout=timeout * SLOW)


@pytest.fixture
def run(config):
    """run(args, input=None, config=None): samlgw-token with the fixture's configuration."""

    default = config

    def _run(args, input=None, config=None, timeout=CLI_TIMEOUT):
        return run_cli(config if config is not None else default, args, input, timeout)

    return _run


@pytest.fixture(scope="session", autouse=True)
def _check_binary():
    if not os.access(TOKEN_BIN, os.X_OK):
        pytest.exit("samlgw-token not found at %s (set SAMLGW_TOKEN_BIN or build it)"
                    % TOKEN_BIN, returncode=1)


def pytest_collection_modifyitems(config, items):
    """SAMLGW_TEST_SHARD=I/N keeps every N-th test from the I-th (0-based): meson runs a
    long module as N tests at once (tests/integration/meson.build)."""
    shard = os.environ.get("SAMLGW_TEST_SHARD")
    if not shard:
        return
    i, n = (int(x) for x in shard.split("/"))
    keep = [t for k, t in enumerate(items) if k % n == i]
    config.hook.pytest_deselected(items=[t for k, t in enumerate(items) if k % n != i])
    items[:] = keep
