"""Fixtures of the adversarial suite (tests/security), and its table.

One federation serves the whole session:

- a private redis-server;
- the pysaml2 test IdP (tests/idp, `--autologin alice`): its answers to samlgw's real
  AuthnRequests are the valid responses most attacks start from;
- "partner", an IdP that exists only as a key (samltest.ResponseFactory), bound to
  [domain partner.example.net] (localpart = mail); its shibmd:Scope lists
  partner.example.net and example.org, as a hosted IdP's may;
- "unbound", another key-only IdP of the metadata that no [domain] lists;
- samlgw "A" trusting the three, with the default settings (no SHA-1, no unsolicited
  responses, clock_skew 180 s).

For the replay attacks, started when first used: "B", a second samlgw on the same Redis
with A's key and public_url; "C" and "D", two more sharing a key with
saml.allow_unsolicited = yes.

Gateway, RedisServer, factory_idp_metadata and SAMLGW_WRAPPER (samlgw under valgrind, say)
come from tests/saml/conftest.py; every samlgw must exit 0 without a sanitizer or valgrind
report when the session ends. outcome() reads a refusal's login_refused line as
refused_with() there does, but returns what it found instead of asserting, so that the
table can show what samlgw did with an attack that was not refused as expected.

Each test adds rows to TABLE (attack | input | expected | got | control); the table is
printed at the end of the run, so it is in `meson test`'s log too."""
import base64
import copy
import importlib.util
import re
import socket
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

_spec = importlib.util.spec_from_file_location("saml_conftest",
                                               REPO / "tests" / "saml" / "conftest.py")
saml = importlib.util.module_from_spec(_spec)
sys.modules["saml_conftest"] = saml
_spec.loader.exec_module(saml)

import samltest  # noqa: E402  (tests/idp, put on sys.path by tests/saml/conftest.py)

SP_ENTITY = saml.SP_ENTITY
SAMLGW_BIN = saml.SAMLGW_BIN
WRAPPER = saml.WRAPPER
Gateway = saml.Gateway
_binaries = saml._binaries  # autouse: the binaries exist

PARTNER = "https://idp.partner.example.net/idp"
UNBOUND = "https://idp.unbound.example.net/idp"


# ------------------------------------------------------------------ the table

TABLE = []
DETAIL_WIDTH = 72


def record(attack, source, expected, got, control, ok, detail=""):
    """A row of the table: the attack, its input, the expected outcome, what samlgw did
    (and the detail it logged), what it did with the positive control."""
    if len(detail) > DETAIL_WIDTH:
        detail = detail[:DETAIL_WIDTH - 3] + "..."
    TABLE.append((attack, source, expected, got, control, "ok" if ok else "FAIL", detail))


def pytest_terminal_summary(terminalreporter):
    if not TABLE:
        return
    head = ("attack", "input", "expected", "got", "control", "", "logged detail")
    rows = [head] + TABLE
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    tr = terminalreporter
    tr.write_sep("=", "samlgw under attack: %d attacks, %d refused as expected with the "
                 "control accepted" % (len(TABLE), sum(1 for r in TABLE if r[5] == "ok")))
    for i, r in enumerate(rows):
        tr.write_line(" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            tr.write_line("-+-".join("-" * w for w in widths))


# ------------------------------------------------------------------ outcomes

_LOGFMT = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def logfmt(line):
    """The key=value pairs of a samlgw log line (quoted values unescaped)."""
    out = {}
    for k, v in _LOGFMT.findall(line):
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        out[k] = v
    return out


def outcome(gw, page):
    """What the ACS did with a POST: accepted (303, with its Location) or refused (403 or
    503 with the reason and detail of the login_refused line its reference names)."""
    if page.status == 303:
        return SimpleNamespace(accepted=True, status=303, reason=None, detail=None,
                               location=page.location, line=None)
    m = re.search(r"<code>([0-9a-z]{12})</code>", page.text)
    line = None
    if m:
        ref = m.group(1)
        lines = [l for l in gw.log_lines("login_refused") if "ref=%s " % ref in l + " "]
        line = lines[0] if lines else None
    f = logfmt(line) if line else {}
    return SimpleNamespace(accepted=False, status=page.status, reason=f.get("reason"),
                           detail=f.get("detail"), location=page.location, line=line)


def describe(o):
    if o.accepted:
        return "ACCEPTED (303 %s)" % o.location
    if o.reason is None:
        return "%d, no login_refused line" % o.status
    return o.reason


# ------------------------------------------------------------------ ACS helpers


def post_xml(gw, xml, relay_state=None, url=None):
    """POST a Response (bytes) to gw's ACS (or url) as the HTTP-POST binding does."""
    form = {"SAMLResponse": base64.b64encode(xml).decode("ascii")}
    if relay_state is not None:
        form["RelayState"] = relay_state
    return samltest.Browser().post(url or gw.acs, form, follow=False)


def start_login(gw, entity, **params):
    """GET /login?idp=entity&params without following: (AuthnRequest ID, the redirect)."""
    page = samltest.Browser().get(gw.url + "/login", params=dict(params, idp=entity),
                                  follow=False)
    assert page.status == 302, (page.status, page.text[:500])
    xml, _ = samltest.decode_redirect_message(page.location)
    return samltest.parse(xml).get("ID"), page


def idp_response(fed, gw=None, **params):
    """A login at gw (default A) answered by the test IdP: (AuthnRequest ID, the IdP's
    Response as it sent it, bytes)."""
    gw = gw or fed.gw
    rid, page = start_login(gw, fed.idp.entity_id, **params)
    page = samltest.Browser().get(page.location)  # the IdP logs alice in at once
    action, fields = samltest.saml_post_of(page)
    assert action == gw.public_acs, (action, page.status, page.text[:500])
    xml = base64.b64decode(fields["SAMLResponse"])
    assert samltest.parse(xml).get("InResponseTo") == rid
    return rid, xml


# ------------------------------------------------------------------ processes


def _config(gw, metadata, domains, extra_saml="", public_url=None):
    gw.write_config(metadata, extra_saml=extra_saml, domains=domains)
    if public_url is not None:
        text = gw.config.read_text()
        gw.config.write_text(text.replace("public_url = %s\n" % gw.url,
                                          "public_url = %s\n" % public_url))


def spawn(base, redis, idp_entity, metadata, domains, extra_saml="", keys_of=None,
          public_url_of=None):
    """A started samlgw (a Gateway); keys_of: a Gateway whose SP key and certificate it
    shares; public_url_of: a Gateway whose public_url (and so ACS URL) it takes. Started
    again on another port when the free port was taken meanwhile."""
    for attempt in range(3):
        gw = Gateway(Path(base) / ("gw%d" % attempt), redis, idp_entity)
        if keys_of is not None:
            gw.sp_key, gw.sp_cert = keys_of.sp_key, keys_of.sp_cert
        public = public_url_of.url if public_url_of is not None else None
        _config(gw, metadata, domains, extra_saml, public)
        if public is not None:
            gw.public_acs = public + "/saml/acs"
        else:
            gw.public_acs = gw.acs
        try:
            return gw.start()
        except RuntimeError as e:
            if "in use" not in str(e) or attempt == 2:
                raise


def _stop_all(things):
    """Stop each (Gateway, IdPProcess or RedisServer), all of them even when one fails;
    re-raise the first failure."""
    first = None
    for t in things:
        try:
            if t is not None:
                t.stop()
        except BaseException as e:  # noqa: BLE001 (re-raised below)
            first = first or e
    if first is not None:
        raise first


DOMAINS = ("[domain example.org]\nidp = {real}\nscope = example.org\n\n"
           "[domain partner.example.net]\nidp = {partner}\nscope = partner.example.net\n"
           "localpart = mail\n")


def _federation(base, idp):
    """The aggregate samlgw trusts: the test IdP's metadata, "partner" and "unbound" (keys
    made here). Returns (path, {name: (key, cert, entityID, first scope)})."""
    template = etree.fromstring(Path(idp.metadata_path).read_bytes())
    agg = etree.Element("{%s}EntitiesDescriptor" % samltest.NS["md"],
                        nsmap={"md": samltest.NS["md"]})
    agg.append(copy.deepcopy(template))
    others = {}
    for name, entity, scopes in (("partner", PARTNER, ["partner.example.net", "example.org"]),
                                 ("unbound", UNBOUND, ["example.org"])):
        key, cert = samltest.make_keypair(base / "keys", name)
        agg.append(saml.factory_idp_metadata(template, entity, cert, scopes))
        others[name] = (key, cert, entity, scopes[0])
    path = base / "federation.xml"
    path.write_bytes(etree.tostring(agg, xml_declaration=True, encoding="UTF-8"))
    return path, others


@pytest.fixture(scope="session")
def fed(tmp_path_factory):
    base = tmp_path_factory.mktemp("fed")
    (base / "redis").mkdir()
    redis = saml.RedisServer(base / "redis")
    procs = [redis]  # stopped in reverse order, whatever happens
    try:
        redis.start()
        for attempt in range(3):
            idp_port = saml.free_port()
            real = "http://127.0.0.1:%d/idp" % idp_port
            gw = Gateway(base / ("A%d" % attempt), redis, real)
            idp = samltest.IdPProcess(base / ("idp%d" % attempt),
                                      sp_metadata=[gw.url + "/saml/metadata"], port=idp_port,
                                      entity_id=real, args=["--autologin", "alice"])
            try:
                idp.start()
                federation, others = _federation(base / ("A%d" % attempt), idp)
                domains = DOMAINS.format(real=real, partner=PARTNER)
                _config(gw, federation, domains)
                gw.public_acs = gw.acs
                gw.start()
                break
            except RuntimeError as e:
                _stop_all([gw, idp])
                if "in use" not in str(e) or attempt == 2:
                    raise
        procs += [idp, gw]
        rogue = samltest.make_keypair(base / "keys", "rogue")

        def factory(key, cert, entity, scope):
            return samltest.ResponseFactory(key, cert, entity, SP_ENTITY, gw.acs,
                                            sp_enc_cert=gw.sp_cert, scope=scope)

        yield SimpleNamespace(
            base=base, redis=redis, idp=idp, gw=gw, federation=federation, domains=domains,
            real=factory(idp.key, idp.cert, real, "example.org"),
            partner=factory(*others["partner"]), unbound=factory(*others["unbound"]),
            rogue=rogue, procs=procs)
    finally:
        _stop_all(procs[::-1])


@pytest.fixture(scope="session")
def twin(fed):
    """B: a second samlgw on A's Redis, with A's key, configuration and public_url."""
    b = spawn(fed.base / "B", fed.redis, fed.idp.entity_id, fed.federation, fed.domains,
              keys_of=fed.gw, public_url_of=fed.gw)
    fed.procs.append(b)
    return b


@pytest.fixture(scope="session")
def unsolicited_pair(fed):
    """C and D: two samlgw on A's Redis with one key and one public_url (C's), accepting
    unsolicited responses (saml.allow_unsolicited = yes); and a factory signing as the
    test IdP for C's ACS."""
    c = spawn(fed.base / "C", fed.redis, fed.idp.entity_id, fed.federation, fed.domains,
              extra_saml="allow_unsolicited = yes\n")
    fed.procs.append(c)
    d = spawn(fed.base / "D", fed.redis, fed.idp.entity_id, fed.federation, fed.domains,
              extra_saml="allow_unsolicited = yes\n", keys_of=c, public_url_of=c)
    fed.procs.append(d)
    f = samltest.ResponseFactory(fed.idp.key, fed.idp.cert, fed.idp.entity_id, SP_ENTITY,
                                 c.acs, sp_enc_cert=c.sp_cert)
    return SimpleNamespace(c=c, d=d, factory=f)


class Canary:
    """A TCP listener on 127.0.0.1 that counts connections: attacks name its URL where an
    XML processor that fetches things (DTDs, entities, XInclude) would connect."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.hits = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            conn.close()

    def stop(self):
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="session")
def canary():
    c = Canary()
    yield c
    c.stop()
