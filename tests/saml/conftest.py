"""Fixtures for samlgw's SAML suites: a private redis-server on a unix socket, the pysaml2
test IdP (tests/idp), and samlgw itself on a free 127.0.0.1 port with keys made at test
time. Everything is started by the fixtures and always stopped.

SAMLGW_WRAPPER (e.g. "valgrind --error-exitcode=99 --leak-check=full") prefixes the samlgw
command. When samlgw stops, its exit status must be 0 and its stderr must hold no report of
AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer or valgrind, else the fixture
that started it fails."""
import copy
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

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
sys.path.insert(0, str(REPO / "tests"))
from wrapper import REPORT as _REPORT, WRAPPER  # noqa: E402


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

    def start(self, timeout=20 if not WRAPPER else 120):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(WRAPPER + [SAMLGW_BIN, "--config", str(self.config)],
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
        """Stop samlgw (SIGTERM); raises when it did not exit cleanly or reported memory
        errors, leaks or undefined behaviour."""
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(60 if WRAPPER else 10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log = self.log()
        report = _REPORT.search(log)
        if p.returncode != 0 or report:
            raise AssertionError("samlgw exited with %s%s:\n%s" % (
                p.returncode, " and reported " + report.group(0) if report else "", log[-20000:]))

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


# ---------------------------------------------------------------- ACS helpers

def start_request(gw, idp):
    """GET /login without following: the AuthnRequest's ID. idp: an IdPProcess or a
    ResponseFactory (its entityID is then .idp)."""
    entity = idp.idp if isinstance(idp, samltest.ResponseFactory) else idp.entity_id
    b = samltest.Browser()
    page = b.get(gw.url + "/login", params={"idp": entity}, follow=False)
    assert page.status == 302, page.text
    msg, _query = samltest.decode_redirect_message(page.location)
    m = re.search(rb'ID="([^"]+)"', msg)
    return m.group(1).decode()


def post(gw, idp, encrypt=False, fresh=True, **knobs):
    """Build a Response with the factory of idp (an IdPProcess or a ResponseFactory) for a
    fresh AuthnRequest and POST it to the ACS: (page, built)."""
    factory = idp if isinstance(idp, samltest.ResponseFactory) else \
        idp.factory(SP_ENTITY, gw.acs, sp_enc_cert=gw.sp_cert)
    if fresh and "in_response_to" not in knobs:
        knobs["in_response_to"] = start_request(gw, idp)
    built = factory.build(encrypt=encrypt, **knobs)
    page = samltest.Browser().post(gw.acs, built.form, follow=False)
    return page, built


def refused_with(gw, page, reason):
    assert page.status in (403, 503), (page.status, page.text[:500])
    m = re.search(r"<code>([0-9a-z]{12})</code>", page.text)
    assert m, page.text
    ref = m.group(1)
    lines = [l for l in gw.log_lines("login_refused") if "ref=%s " % ref in l + " "]
    assert lines, gw.log()[-2000:]
    assert "reason=%s " % reason in lines[0] + " ", lines[0]
    return lines[0]


def accepted(page):
    assert page.status == 303, (page.status, page.text[:2000])



@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _port_taken(error):
    """A start failed because a port that free_port() saw free was taken meanwhile (by
    another test's client, say)."""
    return "in use" in str(error)


def started(gw, attempt, attempts=3):
    """Start gw (in a loop over attempt in range(attempts) that makes a new Gateway, on a
    new free port, each time round): True when it runs; False when its port was taken
    meanwhile and another attempt is left. Any other failure is raised."""
    try:
        gw.start()
        return True
    except RuntimeError as e:
        gw.stop()
        if not _port_taken(e) or attempt == attempts - 1:
            raise
        return False


def _stack(tmp_path_factory, redis, idp_args=(), extra_saml="", attempts=3):
    """Start the IdP (reading our metadata from samlgw's URL) and samlgw; yields (gw, idp).
    Both are started again on new ports when a port was taken before they bound it."""
    for attempt in range(attempts):
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
            break
        except RuntimeError as e:
            try:
                gw.stop()
            finally:
                idp.stop()
            if not _port_taken(e) or attempt == attempts - 1:
                raise
    try:
        yield gw, idp
    finally:
        try:
            gw.stop()
        finally:
            idp.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis):
    yield from _stack(tmp_path_factory, redis)


@pytest.fixture(scope="module")
def stack_cbc(tmp_path_factory, redis):
    """The default stack with saml.allow_unsigned_cbc = yes."""
    yield from _stack(tmp_path_factory, redis, extra_saml="allow_unsigned_cbc = yes\n")


@pytest.fixture(scope="module")
def stack_encrypted(tmp_path_factory, redis):
    yield from _stack(tmp_path_factory, redis, idp_args=["--encrypt-assertion"])


def factory_idp_metadata(template, entity_id, cert, scopes, regexp_scopes=()):
    """An IdP EntityDescriptor for an IdP that exists only as a ResponseFactory key: the test
    IdP's metadata (template, an lxml root) with another entityID, signing certificate and
    shibmd:Scope list."""
    ns = samltest.NS
    root = copy.deepcopy(template)
    root.set("entityID", entity_id)
    for c in root.iter("{%s}X509Certificate" % ns["ds"]):
        c.text = samltest.cert_base64(cert)
    role = root.find("md:IDPSSODescriptor", ns)
    role.attrib.pop("WantAuthnRequestsSigned", None)
    ext = role.find("md:Extensions", ns)
    for old in ext.findall("shibmd:Scope", ns):
        ext.remove(old)
    for value, regexp in [(v, "false") for v in scopes] + [(v, "true") for v in regexp_scopes]:
        el = etree.SubElement(ext, "{%s}Scope" % ns["shibmd"], regexp=regexp)
        el.text = value
    return root


@pytest.fixture(scope="module")
def stack_multi(tmp_path_factory, redis):
    """samlgw trusting an aggregate of three IdPs, with three domains:

    - the test IdP (process; scopes example.org, sub.example.org and the regexp
      [a-z]+\\.dept\\.example\\.org; wants signed AuthnRequests), bound to [domain example.org]
      and [domain sub.example.org] (localpart from eppn);
    - "mail", a factory-only IdP (scopes mail.example.org and example.org) bound to
      [domain mail.example.org] with localpart = mail, which also lists the test IdP (whose
      scopes do not include mail.example.org);
    - "unbound", a factory-only IdP no domain lists.

    saml.allow_sha1 and saml.allow_unsolicited are on and clock_skew is 30 s, the
    opposite of the default stack, so each of those checks is seen both ways."""
    base = tmp_path_factory.mktemp("multi")
    idp_port = free_port()
    idp_entity = "http://127.0.0.1:%d/idp" % idp_port
    gw = Gateway(base / "gw", redis, idp_entity)
    idp = samltest.IdPProcess(base / "idp", sp_metadata=[gw.url + "/saml/metadata"],
                              port=idp_port, entity_id=idp_entity,
                              scope=["example.org", "sub.example.org"],
                              args=["--scope-regexp", r"[a-z]+\.dept\.example\.org",
                                    "--want-signed-requests"])
    try:
        idp.start()
        template = etree.fromstring(Path(idp.metadata_path).read_bytes())
        others = {}
        agg = etree.Element("{%s}EntitiesDescriptor" % samltest.NS["md"],
                            nsmap={"md": samltest.NS["md"]})
        agg.append(copy.deepcopy(template))
        for name, scopes in (("mail", ["mail.example.org", "example.org"]),
                             ("unbound", ["example.org"])):
            key, cert = samltest.make_keypair(base / "keys", name)
            entity = "https://%s.idp.example.net/idp" % name
            agg.append(factory_idp_metadata(template, entity, cert, scopes))
            others[name] = samltest.ResponseFactory(key, cert, entity, SP_ENTITY, gw.acs,
                                                    sp_enc_cert=gw.sp_cert, scope=scopes[0])
        federation = base / "federation.xml"
        federation.write_bytes(etree.tostring(agg, xml_declaration=True, encoding="UTF-8"))
        domains = ("[domain example.org]\nidp = {real}\nscope = example.org\n\n"
                   "[domain sub.example.org]\nidp = {real}\nscope = sub.example.org\n\n"
                   "[domain mail.example.org]\nidp = {mail}, {real}\nscope = mail.example.org\n"
                   "localpart = mail\n").format(real=idp_entity,
                                                 mail=others["mail"].idp)
        gw.write_config(federation, domains=domains,
                        extra_saml="allow_sha1 = yes\nallow_unsolicited = yes\nclock_skew = 30\n")
        gw.start()
        yield SimpleNamespace(gw=gw, idp=idp, mail=others["mail"], unbound=others["unbound"])
    finally:
        try:
            gw.stop()
        finally:
            idp.stop()


@pytest.fixture(scope="module", autouse=True)
def _binaries():
    for b in (SAMLGW_BIN, TOKEN_BIN):
        if not os.access(b, os.X_OK):
            pytest.exit("%s not found (set SAMLGW_BIN / SAMLGW_TOKEN_BIN or build)" % b,
                        returncode=1)
