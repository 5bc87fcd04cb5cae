"""The ways into a login and what samlgw publishes about itself, each negative test next to a
positive control:

1. the SP metadata carries every configured element, with URLs from http.public_url only;
2. every page template samlgw renders is checked when templates load (--check, start-up);
3. /login: unknown IdP, the IdP chooser, a discovery service, and return= through the whole
   flow (login -> IdP -> ACS -> Location), open-redirect forms refused;
4. a login started on one samlgw process is finished by another on the same Redis; the
   request state expires after saml.request_ttl;
5. the IdP metadata's validUntil, and SIGHUP re-reading the IdP metadata."""
import copy
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
from lxml import etree

import samltest
from conftest import (SAMLGW_BIN, SP_ENTITY, TEMPLATES, Gateway, accepted,
                      factory_idp_metadata, refused_with, start_request)

NS = dict(samltest.NS, remd="http://refeds.org/metadata",
          idpdisc="urn:oasis:names:tc:SAML:profiles:SSO:idp-discovery-protocol")
MDUI = "urn:oasis:names:tc:SAML:metadata:ui"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
EPPN_OID = samltest.ATTRIBUTE_OIDS["eduPersonPrincipalName"]
PUBLIC = "https://sso.example.net/chat"  # the metadata gateway's public_url (never contacted)
PAGES = ("account", "error", "idp-chooser", "logout", "logged-out", "token-issued")


# ------------------------------------------------------------------------- helpers


def run(*args, timeout=30):
    return subprocess.run([SAMLGW_BIN] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def configure(gw, metadata, public_url=None, saml="", meta=None, domains=None, templates=None):
    """Write gw's configuration: conftest's, with public_url, [metadata] and the templates
    folder replaced when given."""
    gw.write_config(metadata, extra_saml=saml, domains=domains)
    text = gw.config.read_text()
    if public_url is not None:
        text = text.replace("public_url = %s\n" % gw.url, "public_url = %s\n" % public_url)
    if meta is not None:
        section = "".join("%s = %s\n" % kv for kv in meta.items())
        text = re.sub(r"\[metadata\]\n(?:[^\[\n][^\n]*\n)*", "[metadata]\n" + section, text)
    if templates is not None:
        text = text.replace("templates = %s\n" % TEMPLATES, "templates = %s\n" % templates)
    gw.config.write_text(text)


def spawn(base, redis, idp_entity, metadata, keys_of=None, **kw):
    """A started Gateway (see configure); gw.public is its public_url. keys_of: another
    Gateway whose SP key and certificate it shares. Started again on a new port when the
    free port was taken meanwhile."""
    for attempt in range(3):
        gw = Gateway(Path(base) / ("gw%d" % attempt), redis, idp_entity)
        if keys_of is not None:
            gw.sp_key, gw.sp_cert = keys_of.sp_key, keys_of.sp_cert
        configure(gw, metadata, **kw)
        gw.public = kw.get("public_url") or gw.url
        try:
            return gw.start()
        except RuntimeError as e:
            if "in use" not in str(e) or attempt == 2:
                raise


def idp_entity_xml(template, entity_id, cert, names=None, valid_until=None):
    """An IdP EntityDescriptor (conftest.factory_idp_metadata) whose SSO endpoints are
    ENTITY_ID/sso and whose mdui:UIInfo holds the DisplayNames names ({lang: text}; None:
    no UIInfo)."""
    root = factory_idp_metadata(template, entity_id, cert, ["example.org"])
    for sso in root.iterfind("md:IDPSSODescriptor/md:SingleSignOnService", NS):
        sso.set("Location", entity_id + "/sso")
    ext = root.find("md:IDPSSODescriptor/md:Extensions", NS)
    for ui in ext.findall("{%s}UIInfo" % MDUI):
        ext.remove(ui)
    if names:
        ui = etree.SubElement(ext, "{%s}UIInfo" % MDUI)
        for lang, text in names.items():
            etree.SubElement(ui, "{%s}DisplayName" % MDUI, {XML_LANG: lang}).text = text
    if valid_until is not None:
        root.set("validUntil", samltest.saml_time(valid_until))
    return root


def aggregate(path, entities, valid_until=None):
    agg = etree.Element("{%s}EntitiesDescriptor" % NS["md"], nsmap={"md": NS["md"]})
    if valid_until is not None:
        agg.set("validUntil", samltest.saml_time(valid_until))
    for e in entities:
        agg.append(copy.deepcopy(e))
    Path(path).write_bytes(etree.tostring(agg, xml_declaration=True, encoding="UTF-8"))
    return path


def template_of(idp):
    return etree.fromstring(Path(idp.metadata_path).read_bytes())


def local(gw, url):
    """url (built from gw's public_url) as sent to gw's own listening port (the reverse
    proxy's job)."""
    assert url.startswith(gw.public), url
    return gw.url + url[len(gw.public):]


def authn_request(page):
    """The AuthnRequest (lxml root) of a redirect to the IdP."""
    xml, _ = samltest.decode_redirect_message(page.location)
    return etree.fromstring(xml)


def saml_form_page(page):
    return samltest.saml_post_of(page)[0] is not None


def redis_ttl(gw, request_id):
    return gw.redis.call("TTL", "samlgw:request:" + request_id)


def send_sighup(gw, event):
    """SIGHUP, then wait for the next log line of event (reloaded or reload_failed)."""
    before = len(gw.log_lines(event))
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while len(gw.log_lines(event)) == before:
        assert time.monotonic() < deadline, gw.log()[-3000:]
        time.sleep(0.05)
    return gw.log_lines(event)[-1]


# ------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def factories(stack, tmp_path_factory):
    """Three factory-only IdPs (keys made here) for the multi-IdP gateways: "named" with an
    English and a German mdui:DisplayName, "german" with a German one only, "bare" with
    none."""
    gw, idp = stack
    base = tmp_path_factory.mktemp("factories")
    template = template_of(idp)
    out = {}
    for name, names in (("named", {"de": "Beispiel-Universität", "en": "Named University"}),
                        ("german", {"de": "Deutsche Hochschule"}), ("bare", None)):
        key, cert = samltest.make_keypair(base, name)
        entity = "https://%s.idp.example.net/idp" % name
        out[name] = (key, cert, entity, idp_entity_xml(template, entity, cert, names))
    return out


UNBOUND = "https://unbound.idp.example.net/idp"


def multi_domains(factories):
    return "[domain example.org]\nidp = %s\nscope = example.org\n" % ", ".join(
        f[2] for f in factories.values())


def make_factory(gw, f):
    key, cert, entity, _ = f
    return samltest.ResponseFactory(key, cert, entity, SP_ENTITY, gw.public + "/saml/acs",
                                    sp_enc_cert=gw.sp_cert)


@pytest.fixture(scope="module")
def multi(stack, factories, tmp_path_factory):
    """samlgw trusting the three factory IdPs, no discovery service: the chooser. Its
    metadata also holds UNBOUND, an IdP that no [domain] lists."""
    base = tmp_path_factory.mktemp("multi")
    _key, cert = samltest.make_keypair(base, "unbound")
    unbound = idp_entity_xml(template_of(stack[1]), UNBOUND, cert, {"en": "Unbound College"})
    md = aggregate(base / "agg.xml", [f[3] for f in factories.values()] + [unbound])
    gw = spawn(base, stack[0].redis, factories["named"][2], md,
               domains=multi_domains(factories))
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def disco(stack, factories, tmp_path_factory):
    """The same with saml.discovery_url (a URL that already has a query), and a public_url
    with a path, as behind a reverse proxy."""
    base = tmp_path_factory.mktemp("disco")
    md = aggregate(base / "agg.xml", [f[3] for f in factories.values()])
    gw = spawn(base, stack[0].redis, factories["named"][2], md,
               domains=multi_domains(factories), public_url="https://chat.example.net/chat",
               saml="discovery_url = https://ds.example.net/wayf?fed=test\n")
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def twin(stack, tmp_path_factory):
    """A second samlgw on the stack's Redis with the stack's public_url, entityID and SP
    key but its own listening port, and saml.request_ttl = 61 (the stack: the default 10m)."""
    gw, idp = stack
    base = tmp_path_factory.mktemp("twin")
    b = spawn(base, gw.redis, idp.entity_id, idp.metadata_path, keys_of=gw,
              public_url=gw.url, saml="request_ttl = 61\n")
    yield b
    b.stop()


# ------------------------------------------------------------------------- 1. SP metadata

META = {
    "display_name": "Campus Chat <Test>",
    "description": "Chat & mail tokens for members",
    "information_url": "https://info.example.org/chat",
    "privacy_url": "https://info.example.org/privacy",
    "logo_url": "https://info.example.org/logo.png",
    "logo_width": "120",
    "logo_height": "40",
    "organization": "Example University",
    "organization_url": "https://www.example.org/",
    "contact_technical": "tech@example.org",
    "contact_support": "https://help.example.org/",
    "contact_security": "cert@example.org",
    "required_attributes": "eduPersonPrincipalName subject-id",
    "requested_attributes": "mail displayName",
}


@pytest.fixture(scope="module")
def md_gw(stack, tmp_path_factory):
    gw, idp = stack
    base = tmp_path_factory.mktemp("md")
    g = spawn(base, gw.redis, idp.entity_id, idp.metadata_path, public_url=PUBLIC, meta=META)
    yield g
    g.stop()


def fetch_metadata(url, headers=None):
    page = samltest.Browser().get(url, headers=headers, follow=False)
    assert page.status == 200, page.text[:500]
    return page


def test_sp_metadata_every_configured_element(md_gw):
    gw = md_gw
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example",
              "X-Forwarded-Proto": "http", "Forwarded": "host=evil.example;proto=http"}
    page = fetch_metadata(gw.url + "/chat/saml/metadata", headers=forged)
    assert page.headers["Content-Type"] == "application/samlmetadata+xml"
    assert b"evil.example" not in page.body
    assert b"127.0.0.1" not in page.body and str(gw.port).encode() not in page.body
    # The same document without the forged headers and without the path prefix.
    assert fetch_metadata(gw.url + "/saml/metadata").body == page.body
    root = etree.fromstring(page.body)
    assert root.get("entityID") == SP_ENTITY
    sp = root.find("md:SPSSODescriptor", NS)
    assert sp.get("AuthnRequestsSigned") == "true" and sp.get("WantAssertionsSigned") == "true"

    ui = sp.find("md:Extensions/mdui:UIInfo", NS)
    for tag, value in (("DisplayName", META["display_name"]),
                       ("Description", META["description"]),
                       ("InformationURL", META["information_url"]),
                       ("PrivacyStatementURL", META["privacy_url"])):
        els = ui.findall("mdui:" + tag, NS)
        assert [(e.text, e.get(XML_LANG)) for e in els] == [(value, "en")], tag
    logo = ui.findall("mdui:Logo", NS)
    assert [(l.text, l.get("width"), l.get("height")) for l in logo] == \
        [(META["logo_url"], "120", "40")]

    acs = sp.findall("md:AssertionConsumerService", NS)
    assert [(a.get("Binding"), a.get("Location")) for a in acs] == \
        [("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", PUBLIC + "/saml/acs")]
    slo = sp.findall("md:SingleLogoutService", NS)
    assert sorted((s.get("Binding").rsplit(":", 1)[1], s.get("Location")) for s in slo) == \
        [("HTTP-POST", PUBLIC + "/saml/slo"), ("HTTP-Redirect", PUBLIC + "/saml/slo")]
    disc = sp.findall("md:Extensions/idpdisc:DiscoveryResponse", NS)
    assert [(d.get("Binding"), d.get("Location")) for d in disc] == \
        [(NS["idpdisc"], PUBLIC + "/login")]
    for el in root.iter():
        for name, value in el.attrib.items():
            if name in ("Location", "ResponseLocation"):
                assert value.startswith(PUBLIC + "/"), (el.tag, value)

    cert = samltest.cert_base64(gw.sp_cert)
    keys = {k.get("use"): k for k in sp.findall("md:KeyDescriptor", NS)}
    assert sorted(keys) == ["encryption", "signing"]
    for k in keys.values():
        assert [c.text for c in k.iter("{%s}X509Certificate" % NS["ds"])] == [cert]
    methods = [m.get("Algorithm") for m in keys["encryption"].findall("md:EncryptionMethod", NS)]
    assert methods == ["http://www.w3.org/2009/xmlenc11#aes256-gcm",
                       "http://www.w3.org/2009/xmlenc11#aes128-gcm",
                       "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
                       "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
                       "http://www.w3.org/2009/xmlenc11#rsa-oaep",
                       "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"]
    assert not keys["signing"].findall("md:EncryptionMethod", NS)
    assert [n.text for n in sp.findall("md:NameIDFormat", NS)] == [
        samltest.NAMEID_PERSISTENT, samltest.NAMEID_TRANSIENT]

    req = sp.findall("md:AttributeConsumingService/md:RequestedAttribute", NS)
    got = {(r.get("FriendlyName"), r.get("Name"), r.get("isRequired")) for r in req}
    assert got == {("eduPersonPrincipalName", EPPN_OID, "true"),
                   ("subject-id", "urn:oasis:names:tc:SAML:attribute:subject-id", "true"),
                   ("mail", samltest.ATTRIBUTE_OIDS["mail"], "false"),
                   ("displayName", samltest.ATTRIBUTE_OIDS["displayName"], "false")}
    assert sp.find("md:AttributeConsumingService/md:ServiceName", NS).text == META["display_name"]

    org = root.find("md:Organization", NS)
    assert org.find("md:OrganizationName", NS).text == META["organization"]
    assert org.find("md:OrganizationURL", NS).text == META["organization_url"]
    contacts = {}
    for c in root.findall("md:ContactPerson", NS):
        kind = c.get("{%s}contactType" % NS["remd"]) or c.get("contactType")
        contacts[kind] = (c.get("contactType"), [e.text for e in c.findall("md:EmailAddress", NS)])
    assert contacts == {
        "technical": ("technical", ["mailto:tech@example.org"]),
        "support": ("support", ["https://help.example.org/"]),
        "http://refeds.org/metadata/contactType/security": ("other", ["mailto:cert@example.org"]),
    }


def test_sp_metadata_follows_configuration(stack):
    """Control for the test above: the default stack's metadata has its own public_url in
    the URLs, the default texts and attributes, no Logo and no support contact."""
    gw, _ = stack
    body = fetch_metadata(gw.url + "/saml/metadata", headers={"Host": "evil.example"}).body
    assert b"evil.example" not in body
    root = etree.fromstring(body)
    acs = root.find(".//md:AssertionConsumerService", NS)
    assert acs.get("Location") == gw.url + "/saml/acs"
    assert root.find(".//mdui:UIInfo/mdui:InformationURL", NS).text == gw.url
    assert root.find(".//mdui:UIInfo/mdui:DisplayName", NS).text == "samlgw chat"
    assert root.find(".//mdui:UIInfo/mdui:Logo", NS) is None
    assert root.find("md:Organization", NS) is None
    types = sorted(c.get("contactType") for c in root.findall("md:ContactPerson", NS))
    assert types == ["other", "technical"]
    req = root.findall(".//md:RequestedAttribute", NS)
    assert {r.get("FriendlyName") for r in req if r.get("isRequired") == "true"} == \
        {"eduPersonPrincipalName"}
    assert len([r for r in req if r.get("isRequired") == "false"]) == 5


# ------------------------------------------------------------------------- 2. templates


def templates_copy(tmp_path, missing=None):
    d = tmp_path / "templates"
    shutil.copytree(TEMPLATES, d)
    if missing is not None:
        (d / missing).unlink()
    return d


def test_templates_full_copy_passes(stack, tmp_path):
    gw, idp = stack
    d = templates_copy(tmp_path)
    g = Gateway(tmp_path / "gw", gw.redis, idp.entity_id)
    configure(g, idp.metadata_path, templates=d)
    r = run("--config", g.config, "--check")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("page", PAGES + ("client-settings", "layout"))
def test_templates_missing_page(stack, tmp_path, page):
    """A page samlgw renders (or the layout, or a partial) missing from the templates
    folder: --check and start-up fail and name the file."""
    gw, idp = stack
    d = templates_copy(tmp_path, page + ".html")
    g = Gateway(tmp_path / "gw", gw.redis, idp.entity_id)
    configure(g, idp.metadata_path, templates=d)
    r = run("--config", g.config, "--check")
    # a partial is named where it is used
    named = "unknown partial `%s`" % page if page == "client-settings" else \
        "%s/%s.html:1: missing" % (d, page)
    assert r.returncode == 1, r.stdout + r.stderr
    assert named in r.stderr, r.stderr
    try:
        r = run("--config", g.config, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("samlgw started without %s.html" % page)
    assert r.returncode == 78, r.stderr
    assert named in r.stderr, r.stderr


# ------------------------------------------------------------------------- 3. login paths


def test_login_unknown_idp(stack):
    gw, idp = stack
    b = samltest.Browser()
    page = b.get(gw.url + "/login", params={"idp": idp.entity_id}, follow=False)
    assert page.status == 302 and page.location.startswith(idp.sso_url + "?"), page.text
    for unknown in ("https://unknown.example/idp", idp.entity_id + "x", "",
                    '"><script>alert(1)</script>', "https://evil.example/"):
        page = b.get(gw.url + "/login", params={"idp": unknown, "return": "/x"},
                     follow=False)
        assert page.status == 400, (unknown, page.status, page.text[:300])
        assert page.location is None and "Location" not in page.headers
        assert "This organisation is not known to this service." in page.text
        assert "<script>alert" not in page.text
        ref = re.search(r"<code>([0-9a-z]{12})</code>", page.text).group(1)
        line = [l for l in gw.log_lines("login_start_refused") if "ref=%s " % ref in l + " "]
        assert line and "reason=unknown_idp" in line[0], gw.log()[-2000:]
    assert gw.log_lines("login_started")  # the control above got that far
    assert samltest.Browser().get(gw.url + "/healthz").status == 200


def test_single_idp_needs_no_chooser(stack):
    gw, idp = stack
    page = samltest.Browser().get(gw.url + "/login", follow=False)
    assert page.status == 302 and page.location.startswith(idp.sso_url + "?")


def finish_login(gw, factory, page):
    """page: samlgw's redirect to the IdP. Answer its AuthnRequest with a Response from
    factory, POSTed to gw's ACS: the ACS's answer."""
    req = authn_request(page)
    assert req.get("AssertionConsumerServiceURL") == gw.public + "/saml/acs"
    built = factory.build(in_response_to=req.get("ID"))
    return samltest.Browser().post(gw.url + "/saml/acs", built.form, follow=False)


def test_idp_chooser(multi, factories):
    gw = multi
    page = samltest.Browser().get(gw.url + "/login", params={"return": "/foo?x=1"},
                                  follow=False)
    assert page.status == 200, (page.status, page.text[:500])
    names = re.findall(r'<span class="idp-name">([^<]*)</span>', page.text)
    assert sorted(names) == sorted(["Named University", "Deutsche Hochschule",
                                    factories["bare"][2]])
    # An IdP that no [domain] takes users from is not offered (its login would be refused).
    assert UNBOUND not in page.text and "Unbound College" not in page.text
    links = {urllib.parse.parse_qs(urllib.parse.urlsplit(l).query)["idp"][0]: l
             for l in page.links if "/login?idp=" in l}
    assert sorted(links) == sorted(f[2] for f in factories.values())
    for name, f in factories.items():
        href = links[f[2]]
        assert href.startswith(gw.public + "/login?")
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)["return"] == ["/foo?x=1"]
        chosen = samltest.Browser().get(local(gw, href), follow=False)
        assert chosen.status == 302, chosen.text[:500]
        assert chosen.location.startswith(f[2] + "/sso?")
        req = authn_request(chosen)
        assert req.find("saml:Issuer", NS).text == SP_ENTITY
        assert req.get("Destination") == f[2] + "/sso"
        done = finish_login(gw, make_factory(gw, f), chosen)
        accepted(done)
        assert done.location == gw.public + "/foo?x=1", name


def test_discovery_service(disco, factories):
    gw = disco
    page = samltest.Browser().get(gw.url + "/login", params={"return": "/foo?x=1"},
                                  follow=False)
    assert page.status == 302, page.text[:500]
    ds = urllib.parse.urlsplit(page.location)
    assert (ds.scheme, ds.netloc, ds.path) == ("https", "ds.example.net", "/wayf")
    q = urllib.parse.parse_qs(ds.query)
    assert q["fed"] == ["test"] and q["entityID"] == [SP_ENTITY]
    assert q["returnIDParam"] == ["idp"]
    ret = q["return"][0]
    assert ret == gw.public + "/login?return=%2Ffoo%3Fx%3D1", ret
    assert "isPassive" not in q and "policy" not in q
    # An open-redirect return is not carried through the discovery service.
    q2 = urllib.parse.parse_qs(urllib.parse.urlsplit(samltest.Browser().get(
        gw.url + "/login", params={"return": "//evil.example"}, follow=False).location).query)
    assert q2["return"] == [gw.public + "/login?return=%2F"]
    # The discovery service sends the user back with the chosen IdP.
    f = factories["german"]
    back = samltest.Browser().get(local(gw, ret) + "&" + urllib.parse.urlencode({"idp": f[2]}),
                                  follow=False)
    assert back.status == 302 and back.location.startswith(f[2] + "/sso?"), back.text[:500]
    done = finish_login(gw, make_factory(gw, f), back)
    accepted(done)
    assert done.location == gw.public + "/foo?x=1"
    # ... or with an IdP samlgw does not know: the error page, not a redirect.
    bad = samltest.Browser().get(local(gw, ret) + "&idp=https%3A%2F%2Fevil.example%2F",
                                 follow=False)
    assert bad.status == 400 and bad.location is None


# return= values that are not a local path of this site, or could become another site in a
# browser or a proxy (browsers drop tabs and newlines from URLs, and treat '\' as '/').
EVIL = ["//evil.example", "\\\\evil.example", "/\\evil.example", "http:evil.example",
        "https://evil.example", "///evil.example", "%2F%2Fevil.example", "/%2F/evil.example",
        "/%5Cevil.example", "/%2f%2fevil.example", "/\t/evil.example", "/\n/evil.example",
        "\t//evil.example", "/\r\nLocation: https://evil.example", "/%09/evil.example",
        "/%0d%0aSet-Cookie:%20x=1", "evil.example", "@evil.example", " /foo",
        "/" + "a" * 600,
        # dot segments, which a browser resolves: to "//evil.example", or out of public_url's
        # path (plain, escaped, after a first segment)
        "/.//evil.example", "/%2e//evil.example", "/a/..//evil.example", "/../x", "/%2e%2e/x",
        "/a/%2E%2E/%2E%2E/x", "/a/./b", "/a/..",
        # an escaped '?' or '#' is part of the path for a browser: the dots after it count
        "/%3F/../../x", "/%23/../../x"]
# Local paths: kept as they are (an escaped '/' or space past the first segment is fine;
# dots inside a segment and in the query are no dot segments).
GOOD = ["/foo?x=1", "/", "/a%20b/%C3%A9?q=%2F&r=1", "/a.b/..c/x.?q=/../..#.."]


@pytest.fixture(scope="module")
def idp_browser(stack):
    """A Browser that logged in at the IdP once (its IdP session makes later logins quick)."""
    return samltest.Browser()


def through_idp(gw, browser, query):
    """GET /login?query, log in at the real IdP, and POST its Response to the ACS: the
    ACS's answer (not followed)."""
    page = browser.flow(gw.url + "/login?" + query, user="alice", stop=saml_form_page)
    action, fields = samltest.saml_post_of(page)
    assert action == gw.acs, (action, page.status, page.text[:500])
    return browser.post(action, fields, follow=False)


@pytest.mark.parametrize("value", GOOD)
def test_return_kept(stack, idp_browser, value):
    """Control for the next test: the browser lands on the local path it asked for."""
    gw, idp = stack
    query = urllib.parse.urlencode({"idp": idp.entity_id, "return": value})
    page = through_idp(gw, idp_browser, query)
    accepted(page)
    assert page.location == gw.url + value


@pytest.mark.parametrize("value", EVIL, ids=[repr(v)[:30] for v in EVIL])
def test_return_open_redirect_refused(stack, idp_browser, value):
    """Each form sent as it is (the server sees the value) and, when it fits a URL as it
    is, raw (the server sees it percent-decoded once): the ACS sends the browser to "/"."""
    gw, idp = stack
    queries = [urllib.parse.urlencode({"idp": idp.entity_id, "return": value})]
    # Raw, an escaped '?' or '#' reaches samlgw decoded: a query or fragment after "/",
    # which is harmless, so those are sent as they are only.
    if not re.search(r"[\x00-\x20\x7f]|%3F|%23", value):
        queries.append(urllib.parse.urlencode({"idp": idp.entity_id}) + "&return=" + value)
    for query in queries:
        page = through_idp(gw, idp_browser, query)
        accepted(page)
        assert page.location == gw.url + "/", (query, page.location)


# ------------------------------------------------------------------------- 4. shared Redis


def test_login_finished_by_another_process(stack, twin):
    """/login on A, the IdP's Response POSTed to B (same public_url, own port): B finishes
    the login A started, lands on A's return path, and A honours B's session."""
    a, idp = stack
    b = twin
    browser = samltest.Browser()
    page = browser.flow(a.url + "/login?" + urllib.parse.urlencode(
        {"idp": idp.entity_id, "return": "/foo?x=1"}), user="alice", stop=saml_form_page)
    action, fields = samltest.saml_post_of(page)
    assert action == a.acs
    oks_a, oks_b = len(a.log_lines("login_ok")), len(b.log_lines("login_ok"))
    done = browser.post(b.url + "/saml/acs", fields, follow=False)
    accepted(done)
    assert done.location == a.url + "/foo?x=1"
    assert len(b.log_lines("login_ok")) == oks_b + 1
    assert len(a.log_lines("login_ok")) == oks_a
    account = browser.get(a.url + "/", follow=False)
    assert account.status == 200 and "alice@example.org" in account.text, account.text[:500]
    # The request is used up everywhere: the same Response again, to A, is refused.
    refused_with(a, samltest.Browser().post(a.acs, fields, follow=False), "in_response_to")


def test_request_state_expires(stack, twin):
    """The request state lives saml.request_ttl in Redis (61 s on B, 600 s on A); once it
    is gone, a Response answering that request is refused with in_response_to. (The
    setting's minimum is 60 s, so its end is brought forward with PEXPIRE.)"""
    a, idp = stack
    b = twin
    factory = idp.factory(SP_ENTITY, a.acs, sp_enc_cert=a.sp_cert)
    rid_b, rid_a = start_request(b, idp), start_request(a, idp)
    assert 50 <= redis_ttl(b, rid_b) <= 61, redis_ttl(b, rid_b)
    assert 590 <= redis_ttl(a, rid_a) <= 600, redis_ttl(a, rid_a)
    # Control: within its lifetime, the request started on B is answered at A.
    accepted(samltest.Browser().post(a.acs, factory.build(in_response_to=rid_b).form,
                                     follow=False))
    assert b.redis.call("PEXPIRE", "samlgw:request:" + rid_a, 1) == 1
    deadline = time.monotonic() + 5
    while redis_ttl(a, rid_a) != -2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    page = samltest.Browser().post(b.url + "/saml/acs",
                                   factory.build(in_response_to=rid_a).form, follow=False)
    refused_with(b, page, "in_response_to")


# ------------------------------------------------------------------------- 5. metadata


def check_with_metadata(stack, tmp_path, md):
    gw, idp = stack
    g = Gateway(tmp_path / "gw", gw.redis, idp.entity_id)
    configure(g, md)
    return g, run("--config", g.config, "--check")


def with_valid_until(idp, path, when):
    root = template_of(idp)
    root.set("validUntil", samltest.saml_time(when))
    Path(path).write_bytes(etree.tostring(root))
    return path


def test_metadata_valid_until(stack, tmp_path):
    gw, idp = stack
    g, r = check_with_metadata(stack, tmp_path,
                               with_valid_until(idp, tmp_path / "future.xml", 3600))
    assert r.returncode == 0, r.stderr
    past = with_valid_until(idp, tmp_path / "past.xml", -60)
    g, r = check_with_metadata(stack, tmp_path, past)
    assert r.returncode == 1, r.stdout
    assert "%s: the metadata expired at" % past in r.stderr and "validUntil" in r.stderr, r.stderr
    r = run("--config", g.config, timeout=15)
    assert r.returncode == 78 and "the metadata expired" in r.stderr, r.stderr
    # An aggregate whose own validUntil passed.
    agg = aggregate(tmp_path / "agg.xml", [template_of(idp)], valid_until=-60)
    g, r = check_with_metadata(stack, tmp_path, agg)
    assert r.returncode == 1 and "expired" in r.stderr, r.stderr


def test_metadata_scope_regexp_must_compile_alone(stack, tmp_path):
    """A shibmd:Scope regexp is matched whole: one that only compiles inside samlgw's
    anchoring group ("x)|(.*" would close it and match every scope) is refused."""
    gw, idp = stack
    for pattern, ok in (("[a-z]+\\.example\\.org", True), ("example\\.org)|(.*", False)):
        root = template_of(idp)
        ext = root.find(".//{%s}IDPSSODescriptor/{%s}Extensions" % (NS["md"], NS["md"]))
        scope = etree.SubElement(ext, "{urn:mace:shibboleth:metadata:1.0}Scope", regexp="true")
        scope.text = pattern
        path = tmp_path / ("scope-%s.xml" % ok)
        path.write_bytes(etree.tostring(root))
        _g, r = check_with_metadata(stack, tmp_path / ("c-%s" % ok), path)
        if ok:
            assert r.returncode == 0, r.stderr
        else:
            assert r.returncode == 1 and "regular expression" in r.stderr, r.stderr


def test_metadata_nested_valid_until(stack, factories, tmp_path):
    """In an aggregate, an EntityDescriptor (or inner EntitiesDescriptor) whose validUntil
    passed, or is no UTC dateTime, is not trusted; the others are. All of them expired: no
    IdP, --check fails."""
    gw, idp = stack
    template = template_of(idp)
    fresh = idp_entity_xml(template, "https://fresh.idp.example.net/idp", factories["named"][1],
                           valid_until=3600)
    stale = idp_entity_xml(template, "https://stale.idp.example.net/idp", factories["named"][1],
                           valid_until=-60)
    inner = etree.Element("{%s}EntitiesDescriptor" % NS["md"], nsmap={"md": NS["md"]},
                          validUntil=samltest.saml_time(-60))
    inner.append(idp_entity_xml(template, "https://inner.idp.example.net/idp",
                                factories["named"][1]))
    # A validUntil that is no UTC dateTime (an offset) leaves that member out, not the
    # whole aggregate.
    odd = idp_entity_xml(template, "https://odd.idp.example.net/idp", factories["named"][1])
    odd.set("validUntil", "2099-01-01T00:00:00+01:00")
    md = aggregate(tmp_path / "agg.xml", [fresh, stale, inner, odd])
    domains = "[domain example.org]\nidp = https://fresh.idp.example.net/idp\n"
    g = spawn(tmp_path, gw.redis, "https://fresh.idp.example.net/idp", md, domains=domains)
    try:
        started = g.log_lines("started")[-1]
        assert "idps=1 " in started and "expired_entries=3" in started, started
        b = samltest.Browser()
        ok = b.get(g.url + "/login", params={"idp": "https://fresh.idp.example.net/idp"},
                   follow=False)
        assert ok.status == 302
        for name in ("stale", "inner", "odd"):
            no = b.get(g.url + "/login", params={"idp": "https://%s.idp.example.net/idp" % name},
                       follow=False)
            assert no.status == 400, (name, no.status)
    finally:
        g.stop()
    aggregate(tmp_path / "stale.xml", [stale, inner])
    g2, r = check_with_metadata(stack, tmp_path / "x", tmp_path / "stale.xml")
    assert r.returncode == 1 and "no SAML 2.0 IdP" in r.stderr, r.stderr


def test_sighup_rereads_idp_metadata(stack, factories, tmp_path):
    """SIGHUP: a new signing key and a second IdP apply without a restart; a broken or
    expired file keeps the old metadata in service, with an error logged."""
    gw, idp = stack
    template = template_of(idp)
    k1, c1 = samltest.make_keypair(tmp_path / "keys", "one")
    k2, c2 = samltest.make_keypair(tmp_path / "keys", "two")
    one = "https://one.idp.example.net/idp"
    two = "https://two.idp.example.net/idp"
    md = tmp_path / "idp.xml"
    md.write_bytes(etree.tostring(idp_entity_xml(template, one, c1)))
    domains = "[domain example.org]\nidp = %s, %s\nscope = example.org\n" % (one, two)
    g = spawn(tmp_path, gw.redis, one, md, domains=domains)

    def post_as(key, cert, entity):
        factory = samltest.ResponseFactory(key, cert, entity, SP_ENTITY, g.acs,
                                           sp_enc_cert=g.sp_cert)
        return samltest.Browser().post(g.acs, factory.build(
            in_response_to=start_request(g, factory)).form, follow=False)

    def login_status(entity):
        return samltest.Browser().get(g.url + "/login", params={"idp": entity},
                                      follow=False).status

    try:
        accepted(post_as(k1, c1, one))
        assert login_status(two) == 400
        # Key of "one" replaced, "two" added.
        aggregate(md, [idp_entity_xml(template, one, c2), idp_entity_xml(template, two, c1)])
        assert "idps=2" in send_sighup(g, "reloaded")
        refused_with(g, post_as(k1, c1, one), "signature_invalid")
        accepted(post_as(k2, c2, one))
        accepted(post_as(k1, c1, two))
        assert login_status(two) == 302
        # A broken file, then an expired one: logged, and the last good metadata stays.
        for bad, why in ((b"<md:EntitiesDescriptor", "%s: " % md),
                         (etree.tostring(idp_entity_xml(template, one, c1, valid_until=-60)),
                          "the metadata expired")):
            md.write_bytes(bad)
            line = send_sighup(g, "reload_failed")
            assert "setting=saml.idp_metadata" in line and why in line, line
            accepted(post_as(k2, c2, one))
            refused_with(g, post_as(k1, c1, one), "signature_invalid")
            assert login_status(two) == 302
    finally:
        g.stop()
