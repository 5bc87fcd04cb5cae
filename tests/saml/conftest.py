"""Fixtures for samlgw's SAML suites: a private redis-server on a unix socket, the pysaml2
test IdP (tests/idp), and samlgw itself on a free 127.0.0.1 port with keys made at test
time. Everything is started by the fixtures and always stopped."""
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "idp"))
import samltest  # noqa: E402

_spec = importlib.util.spec_from_file_location("integration_conftest",
                                               REPO / "tests" / "integration" / "conftest.py")
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)
RedisServer = _integration.RedisServer

SAMLGW_BIN = os.environ.get("SAMLGW_BIN") or str(REPO / "build" / "samlgw" / "samlgw")
TOKEN_BIN = os.environ.get("SAMLGW_TOKEN_BIN") or str(REPO / "build" / "samlgw" / "samlgw-token")
TEMPLATES = os.environ.get("SAMLGW_TEMPLATES") or str(REPO / "templates")
SP_ENTITY = "https://chat.example.org/saml/metadata"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def config_text(gw, idp_metadata, extra_saml="", extra_domain="", domains=None):
    dom = domains if domains is not None else (
        "[domain example.org]\nidp = %s\nscope = example.org\n%s" % (gw.idp_entity, extra_domain))
    return ("[log]\nlevel = debug\n\n"
            "[redis]\nurl = %s\ntimeout_ms = 1000\n\n"
            "[token]\nservices = xmpp,imap\n\n"
            "[http]\nlisten = 127.0.0.1:%d\npublic_url = %s\nthreads = 2\n\n"
            "[saml]\nentity_id = %s\nkey = %s\ncert = %s\nidp_metadata = %s\n%s\n"
            "[web]\ntemplates = %s\n\n"
            "[metadata]\ncontact_technical = admin@example.org\n"
            "contact_security = security@example.org\nprivacy_url = https://example.org/privacy\n\n"
            "%s\n" % (gw.redis.url, gw.port, gw.url, SP_ENTITY, gw.sp_key, gw.sp_cert,
                      idp_metadata, extra_saml, TEMPLATES, dom))


class Gateway:
    """samlgw as a subprocess with its own configuration file."""

    def __init__(self, directory, redis, idp_entity):
        self.dir = Path(directory)
        self.redis = redis
        self.idp_entity = idp_entity
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.acs = self.url + "/saml/acs"
        self.sp_key, self.sp_cert = samltest.make_keypair(self.dir / "keys", "sp")
        self.proc = None
        self.config = self.dir / "samlgw.conf"
        self.log_path = self.dir / "samlgw.log"

    def write_config(self, idp_metadata, **kw):
        self.config.write_text(config_text(self, idp_metadata, **kw))

    def start(self, timeout=20):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([SAMLGW_BIN, "--config", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise RuntimeError("samlgw exited with %s:\n%s" % (code, self.log()))
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("samlgw did not answer /healthz:\n" + self.log())
            time.sleep(0.05)

    def stop(self):
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self, event):
        return [l for l in self.log().splitlines() if "event=%s " % event in l + " "]

    def token_cli(self, *args, input=None):
        return subprocess.run([TOKEN_BIN, "--config", str(self.config)] + list(args),
                              input=input or "", capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _stack(tmp_path_factory, redis, idp_args=(), extra_saml=""):
    """Start the IdP (reading our metadata from samlgw's URL) and samlgw; yields (gw, idp)."""
    base = tmp_path_factory.mktemp("stack")
    idp_port = free_port()
    idp_entity = "http://127.0.0.1:%d/idp" % idp_port
    gw = Gateway(base / "gw", redis, idp_entity)
    idp = samltest.IdPProcess(base / "idp", sp_metadata=[gw.url + "/saml/metadata"],
                              port=idp_port, entity_id=idp_entity, args=list(idp_args))
    try:
        idp.start()
        gw.write_config(idp.metadata_path, extra_saml=extra_saml)
        gw.start()
        yield gw, idp
    finally:
        gw.stop()
        idp.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis):
    yield from _stack(tmp_path_factory, redis)


@pytest.fixture(scope="module")
def stack_encrypted(tmp_path_factory, redis):
    yield from _stack(tmp_path_factory, redis, idp_args=["--encrypt-assertion"])


@pytest.fixture(scope="module", autouse=True)
def _binaries():
    for b in (SAMLGW_BIN, TOKEN_BIN):
        if not os.access(b, os.X_OK):
            pytest.exit("%s not found (set SAMLGW_BIN / SAMLGW_TOKEN_BIN or build)" % b,
                        returncode=1)
