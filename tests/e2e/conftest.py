"""Fixtures for the end-to-end tests: scripts/demo itself, run as a user runs it (its own
state folder and free loopback ports, the build under test), stopped with the signal
Ctrl-C sends, and checked to leave nothing running; real browsers (browser.py).

Environment: SAMLGW_E2E_BUILD (the build folder; default build/), SAMLGW_E2E_ARTIFACTS
(where screenshots and accessibility reports go; default BUILD/e2e-artifacts),
SAMLGW_E2E_DOCS=1 (also copy the screenshots docs/getting-started.md shows into
docs/images/); SAMLGW_WRAPPER (tests/wrapper.py: samlgw and xmpp-core run behind it, as
SAMLGW_DEMO_WRAPPER of scripts/demo)."""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "xmpp"))
sys.path.insert(0, str(REPO / "tests"))
from browser import Browser  # noqa: E402
from wrapper import REPORT, SLOW, WRAPPER  # noqa: E402

BUILD = Path(os.environ.get("SAMLGW_E2E_BUILD") or REPO / "build").resolve()
ARTIFACTS = Path(os.environ.get("SAMLGW_E2E_ARTIFACTS") or BUILD / "e2e-artifacts")
DOCS_IMAGES = REPO / "docs" / "images" if os.environ.get("SAMLGW_E2E_DOCS") == "1" else None
DAEMONS = ("redis", "idp", "samlgw", "xmpp-core")


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Demo:
    """scripts/demo in its own session (process group), as a terminal would run it."""

    def __init__(self, state):
        self.state = Path(state)
        # Screenshots for the docs show the ports a newcomer's demo has.
        self.http, self.idp, self.xmpp, self.xmpps = \
            (8080, 8081, 5222, 5223) if DOCS_IMAGES is not None else free_ports(4)
        self.url = "http://127.0.0.1:%d" % self.http
        self.idp_url = "http://127.0.0.1:%d" % self.idp
        self.proc = None
        self.output = ""

    def env(self):
        env = dict(os.environ)
        env.update(SAMLGW_DEMO_DIR=str(self.state), SAMLGW_DEMO_BUILD=str(BUILD),
                   SAMLGW_DEMO_HTTP_PORT=str(self.http), SAMLGW_DEMO_IDP_PORT=str(self.idp),
                   SAMLGW_DEMO_XMPP_PORT=str(self.xmpp), SAMLGW_DEMO_XMPPS_PORT=str(self.xmpps),
                   SAMLGW_DEMO_WRAPPER=" ".join(WRAPPER))
        return env

    def _read(self, stream):
        for line in stream:
            self.output += line
        stream.close()

    def start(self, timeout=120 * SLOW):
        """Runs scripts/demo until it prints "Press Ctrl-C to stop."; returns its output."""
        self.output = ""
        self.proc = subprocess.Popen([str(REPO / "scripts" / "demo")], cwd=str(REPO),
                                     env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,),
                                       daemon=True)
        self.reader.start()
        deadline = time.monotonic() + timeout
        while "Press Ctrl-C to stop." not in self.output:
            if self.proc.poll() is not None:
                self.reader.join(5)
                raise AssertionError("scripts/demo exited with %d:\n%s\n%s" % (
                    self.proc.returncode, self.output, self.logs()))
            if time.monotonic() > deadline:
                raise AssertionError("scripts/demo not ready in %d s:\n%s\n%s" % (
                    timeout, self.output, self.logs()))
            time.sleep(0.1)
        return self.output

    def pids(self):
        """The daemons' pids from their pid files (while the demo runs)."""
        out = {}
        for d in DAEMONS:
            try:
                out[d] = int((self.state / (d + ".pid")).read_text().strip())
            except (OSError, ValueError):
                pass
        return out

    def interrupt(self, timeout=30 * SLOW):
        """Ctrl-C: SIGINT to the demo's whole process group, as the terminal sends it.
        Returns the rest of its output and its exit status."""
        before = len(self.output)
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("scripts/demo did not stop %d s after Ctrl-C" % timeout)
        self.reader.join(10)
        return self.output[before:], self.proc.returncode

    def kill(self):
        """Last resort after a failure: the demo and everything in its process group."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for pid in self.pids().values():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass

    def logs(self):
        out = []
        for name in ("samlgw.log", "idp.log", "xmpp-core.log", "redis.log"):
            p = self.state / name
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()[-15:]
                out.append("--- %s\n%s" % (name, "\n".join(lines)))
        return "\n".join(out)

    def log_lines(self, daemon, event):
        p = self.state / (daemon + ".log")
        return [ln for ln in p.read_text(errors="replace").splitlines()
                if re.search(r"\bevent=%s\b" % re.escape(event), ln)]


def sanitizer_reports(demo):
    """Reports of the sanitizers (the asan setup runs the demo on build-asan/) or of
    valgrind (the valgrind setup) in samlgw's and xmpp-core's logs."""
    out = []
    for name in ("samlgw.log", "xmpp-core.log"):
        p = demo.state / name
        if p.exists() and REPORT.search(p.read_text(errors="replace")):
            out.append("%s:\n%s" % (name, p.read_text(errors="replace")[-4000:]))
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone as far as its service goes
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = Demo(tmp_path_factory.mktemp("demo") / "state")
    try:
        d.start()
        yield d
    finally:
        d.kill()


@pytest.fixture
def browsers(request):
    """browsers(name) opens a Chromium; every one opened is closed after the test."""
    opened = []

    def open_browser(name):
        b = Browser(name, ARTIFACTS)
        opened.append(b)
        return b
    yield open_browser
    for b in opened:
        b.close()


# The screenshots docs/getting-started.md shows.
DOC_SHOTS = ("01-idp-login", "02-account", "03-token-issued", "04-account-with-token",
             "04-account-with-token-phone", "05-account-revoked", "06-logged-out",
             "08-idp-chooser")


def publish(path):
    """Copies a screenshot docs/getting-started.md shows into docs/images/ when
    SAMLGW_E2E_DOCS=1."""
    if DOCS_IMAGES is not None and Path(path).stem in DOC_SHOTS:
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        (DOCS_IMAGES / Path(path).name).write_bytes(Path(path).read_bytes())
