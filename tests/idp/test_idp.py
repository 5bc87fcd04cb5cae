"""Self-tests of the test IdP (idp.py) and the toolkit (samltest.py), without samlgw.

pysaml2's own SP client (saml2.client.Saml2Client) stands in for samlgw: it makes the
AuthnRequests and judges the Responses, so a green run means an independent SP accepts what
the IdP and the ResponseFactory produce.  Run: /usr/bin/python3 -m pytest -q tests/idp
"""
import base64
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import urllib.parse
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import samltest as st  # noqa: E402

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # noqa: E402
from saml2.client import Saml2Client  # noqa: E402
from saml2.config import SPConfig  # noqa: E402
from saml2.metadata import create_metadata_string  # noqa: E402
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT  # noqa: E402

SP_ENTITY = "https://sp.test.invalid/saml/metadata"
# The SP is never contacted over HTTP: the browser stops at the auto-POST form to the ACS and
# the test hands the SAMLResponse to pysaml2.  Port 9 (discard) on loopback, never listened on.
SP_BASE = "http://127.0.0.1:9"
ACS = SP_BASE + "/saml/acs"
SLO = SP_BASE + "/saml/slo"

EXPECTED_OIDS = {
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.6": "eduPersonPrincipalName",
    "urn:oasis:names:tc:SAML:attribute:subject-id": "subject-id",
    "urn:oasis:names:tc:SAML:attribute:pairwise-id": "pairwise-id",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.10": "eduPersonTargetedID",
    "urn:oid:0.9.2342.19200300.100.1.3": "mail",
    "urn:oid:2.16.840.1.113730.3.1.241": "displayName",
    "urn:oid:2.5.4.42": "givenName",
    "urn:oid:2.5.4.4": "sn",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.1": "eduPersonAffiliation",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.9": "eduPersonScopedAffiliation",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.7": "eduPersonEntitlement",
}


# --------------------------------------------------------------------------- the pysaml2 SP


def sp_config(keydir, idp_metadata=None, sign_requests=False, entity=SP_ENTITY, base=SP_BASE):
    key, cert = st.make_keypair(keydir, "sp", cn="sp.test.invalid")
    ekey, ecert = st.make_keypair(keydir, "sp-enc", cn="sp.test.invalid enc")
    conf = {
        "entityid": entity,
        "service": {"sp": {
            "endpoints": {
                "assertion_consumer_service": [(base + "/saml/acs", BINDING_HTTP_POST)],
                "single_logout_service": [(base + "/saml/slo", BINDING_HTTP_REDIRECT),
                                          (base + "/saml/slo/post", BINDING_HTTP_POST)],
            },
            "allow_unsolicited": True,
            "authn_requests_signed": sign_requests,
            "logout_requests_signed": True,
            "want_response_signed": False,
            "want_assertions_signed": False,
            "want_assertions_or_response_signed": True,
            "name_id_format": [NAMEID_FORMAT_TRANSIENT],
        }},
        "key_file": key,
        "cert_file": cert,
        "encryption_keypairs": [{"key_file": ekey, "cert_file": ecert}],
        "xmlsec_binary": st.XMLSEC1,
        "allow_unknown_attributes": True,
        "accepted_time_diff": 60,
        "signing_algorithm": st.SIG_ALGS["rsa-sha256"],
        "digest_algorithm": st.DIGEST_ALGS["sha256"],
        "delete_tmpfiles": True,
    }
    if idp_metadata:
        conf["metadata"] = {"local": [str(idp_metadata)]}
    c = SPConfig()
    c.load(conf)
    return c


def write_sp_metadata(keydir, sign_requests=False):
    path = Path(keydir) / ("sp-metadata%s.xml" % ("-signed-req" if sign_requests else ""))
    xml = create_metadata_string(None, config=sp_config(keydir, sign_requests=sign_requests))
    path.write_bytes(xml if isinstance(xml, bytes) else xml.encode())
    return path


def sp_client(keydir, idp, sign_requests=False):
    return Saml2Client(config=sp_config(keydir, idp.metadata_path, sign_requests))


def start_login(client, idp, relay_state="/account", **kw):
    """A Redirect-binding AuthnRequest from the pysaml2 SP: (request id, IdP URL)."""
    reqid, info = client.prepare_for_authenticate(
        entityid=idp.entity_id, relay_state=relay_state, binding=BINDING_HTTP_REDIRECT, **kw)
    return reqid, dict(info["headers"])["Location"]


def at_acs(page):
    return page.form(ACS) is not None


def run_login(client, idp, browser, user="alice", password=None, **kw):
    """Redirect AuthnRequest -> IdP -> login form -> auto-POST page; returns
    (reqid, ACS form fields, pysaml2 AuthnResponse)."""
    reqid, url = start_login(client, idp, **kw)
    page = browser.flow(url, user=user, password=password, stop=at_acs)
    action, fields = st.saml_post_of(page)
    assert action == ACS, (page.status, page.text[:2000])
    resp = client.parse_authn_request_response(fields["SAMLResponse"], BINDING_HTTP_POST,
                                               outstanding={reqid: "/account"})
    return reqid, fields, resp


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def sp_metadata(keydir):
    return write_sp_metadata(keydir)


class MiniSP:
    """A pysaml2 SP behind a real loopback HTTP server, shaped like samlgw: GET /login starts
    SSO, POST /saml/acs makes a session cookie and redirects to the RelayState, GET / is the
    account page (with a hidden-only form that the Browser must not auto-submit)."""

    def __init__(self, keydir):
        self.keydir = keydir
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.entity = self.base + "/saml/metadata"
        self.metadata = Path(keydir) / "minisp-metadata.xml"
        xml = create_metadata_string(None, config=sp_config(keydir, entity=self.entity,
                                                            base=self.base))
        self.metadata.write_bytes(xml if isinstance(xml, bytes) else xml.encode())
        self.client = None
        self.idp_entity = None
        self.outstanding = {}
        self.sessions = {}
        self.errors = []
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self, idp):
        self.client = Saml2Client(config=sp_config(self.keydir, idp.metadata_path,
                                                   entity=self.entity, base=self.base))
        self.idp_entity = idp.entity_id
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(sp_self):
        sp = sp_self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, status, body="", headers=()):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.startswith("/login"):
                    reqid, info = sp.client.prepare_for_authenticate(
                        entityid=sp.idp_entity, relay_state="/",
                        binding=BINDING_HTTP_REDIRECT)
                    sp.outstanding[reqid] = "/"
                    return self.reply(303, headers=[("Location",
                                                     dict(info["headers"])["Location"])])
                cookie = (self.headers.get("Cookie") or "").partition("sp=")[2].split(";")[0]
                who = sp.sessions.get(cookie)
                if self.path == "/" and who:
                    return self.reply(200, "<title>Account</title><p>Hello %s</p>"
                                      "<form method=post action=/revoke><input type=hidden "
                                      "name=csrf value=x><button>Revoke all</button></form>"
                                      % who)
                return self.reply(303, headers=[("Location", "/login")])

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
                if self.path != "/saml/acs":
                    return self.reply(404, "no")
                try:
                    resp = sp.client.parse_authn_request_response(
                        form["SAMLResponse"], BINDING_HTTP_POST, outstanding=sp.outstanding)
                except Exception as e:
                    sp.errors.append(repr(e))
                    return self.reply(400, "refused: %r" % e)
                sp.outstanding.pop(resp.in_response_to, None)
                cookie = os.urandom(8).hex()
                sp.sessions[cookie] = resp.get_identity()["eduPersonPrincipalName"][0]
                return self.reply(303, headers=[("Location", form.get("RelayState") or "/"),
                                                ("Set-Cookie", "sp=%s; Path=/" % cookie)])
        return H


@pytest.fixture(scope="module")
def minisp(keydir):
    sp = MiniSP(keydir)
    yield sp
    sp.stop()


@pytest.fixture(scope="module")
def idp(tmp_path_factory, sp_metadata, minisp):
    with st.running_idp(tmp_path_factory.mktemp("idp"),
                        sp_metadata=[sp_metadata, minisp.metadata]) as p:
        minisp.start(p)
        yield p


@pytest.fixture(scope="module")
def client(keydir, idp):
    return sp_client(keydir, idp)


# --------------------------------------------------------------------------- IdP: metadata


def test_metadata_has_endpoints_key_scope_and_ui(idp):
    md = st.parse(idp.metadata_xml())
    assert md.get("entityID") == idp.entity_id == "https://idp.example.org/idp/shibboleth"
    d = st.find(md, "md:IDPSSODescriptor")
    sso = {(e.get("Binding").rsplit(":", 1)[-1], e.get("Location"))
           for e in st.findall(d, "md:SingleSignOnService")}
    slo = {(e.get("Binding").rsplit(":", 1)[-1], e.get("Location"))
           for e in st.findall(d, "md:SingleLogoutService")}
    assert sso == {("HTTP-Redirect", idp.url + "/sso/redirect"),
                   ("HTTP-POST", idp.url + "/sso/post")}
    assert slo == {("HTTP-Redirect", idp.url + "/slo/redirect"),
                   ("HTTP-POST", idp.url + "/slo/post")}
    kd = st.find(d, "md:KeyDescriptor")
    assert kd.get("use") == "signing"
    x509 = "".join(st.find(kd, ".//ds:X509Certificate").text.split())
    assert x509 == st.cert_base64(idp.cert)
    scopes = st.findall(d, "md:Extensions/shibmd:Scope")
    assert [(s.text, s.get("regexp")) for s in scopes] == [("example.org", "false")]
    assert st.find(d, "md:Extensions/mdui:UIInfo/mdui:DisplayName").text
    # The same document is served over HTTP.
    assert st.Browser().get(idp.url + "/metadata").body == idp.metadata_xml()


def test_state_file_and_key(idp):
    assert idp.port > 0 and idp.url == "http://127.0.0.1:%d" % idp.port
    out = subprocess.run(["openssl", "x509", "-in", idp.cert, "-noout", "-text"],
                         capture_output=True, text=True, check=True).stdout
    assert "Public-Key: (2048 bit)" in out
    assert oct(os.stat(idp.key).st_mode & 0o777) == "0o600"
    assert idp.users == {"alice": "alice-pass", "bob": "bob-pass"}


# --------------------------------------------------------------------------- IdP: SSO


def test_full_flow_pysaml2_sp_accepts(idp, client):
    b = st.Browser()
    reqid, fields, resp = run_login(client, idp, b)
    assert fields["RelayState"] == "/account"
    ava = resp.get_identity()
    assert ava["eduPersonPrincipalName"] == ["alice@example.org"]
    assert ava["mail"] == ["alice@example.org"]
    assert ava["givenName"] == ["Alice"] and ava["sn"] == ["Liddell"]
    assert sorted(ava["eduPersonAffiliation"]) == ["member", "student"]
    assert sorted(ava["eduPersonScopedAffiliation"]) == ["member@example.org",
                                                         "student@example.org"]
    assert resp.name_id.format == NAMEID_FORMAT_TRANSIENT
    assert resp.in_response_to == reqid

    # The wire format, checked directly.
    xml = base64.b64decode(fields["SAMLResponse"])
    r = st.parse(xml)
    assert r.get("Destination") == ACS and r.get("InResponseTo") == reqid
    a = st.find(r, "saml:Assertion")
    assert st.verify(xml, idp.cert)[0], "Response signature"
    assert st.verify(xml, idp.cert, node_id=a.get("ID"))[0], "Assertion signature"
    sc = st.find(a, "saml:Subject/saml:SubjectConfirmation")
    assert sc.get("Method") == st.CM_BEARER
    scd = st.find(sc, "saml:SubjectConfirmationData")
    assert scd.get("Recipient") == ACS and scd.get("InResponseTo") == reqid
    assert scd.get("NotOnOrAfter")
    assert st.find(a, "saml:Conditions/saml:AudienceRestriction/saml:Audience").text == SP_ENTITY
    assert st.find(a, "saml:AuthnStatement").get("SessionIndex")
    names = {at.get("Name"): at for at in st.findall(a, "saml:AttributeStatement/saml:Attribute")}
    assert set(EXPECTED_OIDS) <= set(names)
    for oid, friendly in EXPECTED_OIDS.items():
        assert names[oid].get("NameFormat") == st.NAME_FORMAT_URI
        assert names[oid].get("FriendlyName") == friendly
    eptid = st.find(names["urn:oid:1.3.6.1.4.1.5923.1.1.1.10"], "saml:AttributeValue/saml:NameID")
    assert eptid.get("Format") == NAMEID_FORMAT_PERSISTENT
    assert eptid.get("NameQualifier") == idp.entity_id and eptid.get("SPNameQualifier") == SP_ENTITY
    pairwise = st.find(names["urn:oasis:names:tc:SAML:attribute:pairwise-id"],
                       "saml:AttributeValue").text
    assert pairwise.endswith("@example.org") and pairwise.split("@")[0] == eptid.text

    last = idp.last_response()
    assert last["user"] == "alice" and last["in_response_to"] == reqid
    assert last["SAMLResponse"] == fields["SAMLResponse"]


def test_browser_walks_login_to_account_page(idp, minisp):
    """The pattern samlgw's tests use: GET /login -> IdP form -> alice -> ACS -> account."""
    b = st.Browser()
    page = b.flow(minisp.base + "/login", user="alice")
    assert page.status == 200 and page.url == minisp.base + "/", (page, minisp.errors)
    assert "Hello alice@example.org" in page.text and page.title == "Account"
    hops = [(m, u.split("?")[0], s) for p in page.steps for m, u, s in p.hops]
    assert hops == [("GET", minisp.base + "/login", 303), ("GET", idp.url + "/sso/redirect", 200),
                    ("POST", idp.url + "/login", 200), ("POST", minisp.base + "/saml/acs", 303),
                    ("GET", minisp.base + "/", 200)], hops
    assert b.cookie("sp") and b.cookie("idp_session")
    # start_sso decodes the AuthnRequest an SP redirects to.
    sso = b.start_sso(minisp.base + "/login")
    assert sso["location"].startswith(idp.sso_url) and sso["relay_state"] == "/"
    assert st.parse(sso["xml"]).tag == st.SAMLP + "AuthnRequest" and sso["id"] in minisp.outstanding
    # ...and a factory response answering it is accepted by the SP.
    f = idp.factory(minisp.entity, minisp.base + "/saml/acs")
    page = f.build(in_response_to=sso["id"], relay_state="/", user="bob").post(b, f.acs)
    assert "Hello bob@example.org" in page.text, page.text


def test_bob_and_session_reuse_and_force_authn(idp, client):
    b = st.Browser()
    _, _, resp = run_login(client, idp, b, user="bob")
    assert resp.get_identity()["eduPersonPrincipalName"] == ["bob@example.org"]
    assert "staff" in resp.get_identity()["eduPersonAffiliation"]
    # Second login in the same browser: the IdP session answers without a form.
    _, url = start_login(client, idp)
    page = b.get(url)
    assert page.form(ACS) is not None and not any(f.has_password for f in page.forms)
    # ForceAuthn shows the form again.
    _, url = start_login(client, idp, force_authn="true")
    page = b.get(url)
    assert any(f.has_password for f in page.forms)


def test_wrong_password_shows_form_again(idp, client):
    b = st.Browser()
    _, url = start_login(client, idp)
    page = b.get(url)
    form = page.form("/login")
    assert form is not None and form.has_password
    page = b.submit(form, username="alice", password="nope")
    assert page.status == 401 and "Wrong username or password" in page.text
    page = b.submit(page.form("/login"), username="alice", password="alice-pass")
    assert page.status == 200 and page.form(ACS) is not None


def test_persistent_nameid_is_stable(idp, client):
    ids = []
    for _ in range(2):
        _, _, resp = run_login(client, idp, st.Browser(), nameid_format=NAMEID_FORMAT_PERSISTENT)
        assert resp.name_id.format == NAMEID_FORMAT_PERSISTENT
        ids.append(resp.name_id.text)
    assert ids[0] == ids[1]
    _, _, resp = run_login(client, idp, st.Browser())
    assert resp.name_id.format == NAMEID_FORMAT_TRANSIENT and resp.name_id.text != ids[0]


def test_unsolicited_sso(idp, client):
    b = st.Browser()
    page = b.flow(idp.unsolicited_url(SP_ENTITY, relay_state="/x"), user="alice", stop=at_acs)
    action, fields = st.saml_post_of(page)
    assert action == ACS and fields["RelayState"] == "/x"
    r = st.parse(base64.b64decode(fields["SAMLResponse"]))
    assert r.get("InResponseTo") is None
    resp = client.parse_authn_request_response(fields["SAMLResponse"], BINDING_HTTP_POST)
    assert resp.get_identity()["eduPersonPrincipalName"] == ["alice@example.org"]


def test_unknown_sp_and_bad_request_refused(idp):
    b = st.Browser()
    page = b.get(idp.url + "/sso/redirect?SAMLRequest=notbase64!!")
    assert page.status == 400
    page = b.get(idp.unsolicited_url("https://unknown.invalid/sp"))
    assert page.status == 403
    assert b.get(idp.url + "/healthz").text == "ok\n"


def test_slo_sp_initiated(idp, client):
    b = st.Browser()
    _, _, resp = run_login(client, idp, b)
    # pysaml2's SP: LogoutRequest over the Redirect binding (signed query).
    out = client.global_logout(resp.name_id)
    (binding, http_args), = [v for v in out.values()]
    assert binding == BINDING_HTTP_REDIRECT
    url = dict(http_args["headers"])["Location"]
    assert url.startswith(idp.url + "/slo/redirect?")
    page = b.get(url, follow=False)
    assert page.status == 303 and page.location.startswith(SLO + "?")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.location).query))
    assert "Signature" in q and "SAMLResponse" in q
    lr = client.parse_logout_request_response(q["SAMLResponse"], BINDING_HTTP_REDIRECT)
    assert lr.response.status.status_code.value == st.STATUS_SUCCESS
    # The IdP session is gone: the next SSO asks for the password again.
    _, url = start_login(client, idp)
    assert any(f.has_password for f in b.get(url).forms)


def test_slo_sp_initiated_post(idp, client):
    b = st.Browser()
    _, _, resp = run_login(client, idp, b)
    req_id, req = client.create_logout_request(
        idp.url + "/slo/post", idp.entity_id, name_id=resp.name_id,
        session_indexes=[resp.assertion.authn_statement[0].session_index], sign=True)
    page = b.post(idp.url + "/slo/post",
                  {"SAMLRequest": base64.b64encode(str(req).encode()).decode(),
                   "RelayState": "/bye"})
    action, fields = st.saml_post_of(page)
    assert action == SLO + "/post" and fields["RelayState"] == "/bye"
    xml = base64.b64decode(fields["SAMLResponse"])
    assert st.verify(xml, idp.cert)[0]
    lr = client.parse_logout_request_response(fields["SAMLResponse"], BINDING_HTTP_POST)
    assert lr.response.status.status_code.value == st.STATUS_SUCCESS
    assert lr.response.in_response_to == req_id
    _, url = start_login(client, idp)
    assert any(f.has_password for f in b.get(url).forms)


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_slo_idp_initiated(idp, client, binding):
    b = st.Browser()
    _, _, resp = run_login(client, idp, b)
    page = b.get(idp.logout_url(binding), follow=False)
    if binding == "redirect":
        assert page.status == 303 and page.location.startswith(SLO + "?")
        xml, q = st.decode_redirect_message(page.location)
        assert "Signature" in q
        req_b64, sp_binding = q["SAMLRequest"], BINDING_HTTP_REDIRECT
    else:
        action, fields = st.saml_post_of(page)
        assert action == SLO + "/post"
        xml = base64.b64decode(fields["SAMLRequest"])
        req_b64, sp_binding = fields["SAMLRequest"], BINDING_HTTP_POST
        assert st.verify(xml, idp.cert)[0]
    lreq = st.parse(xml)
    assert st.find(lreq, "saml:NameID").text == resp.name_id.text
    assert st.find(lreq, "samlp:SessionIndex").text == resp.assertion.authn_statement[0].session_index
    # pysaml2's SP answers; the browser brings the answer back to the IdP.
    parsed = client.parse_logout_request(req_b64, sp_binding)
    assert parsed.message.name_id.text == resp.name_id.text
    answer = client.create_logout_response(parsed.message, [BINDING_HTTP_REDIRECT])
    info = client.apply_binding(BINDING_HTTP_REDIRECT, str(answer),
                                idp.url + "/slo/redirect", "", response=True)
    page = b.get(dict(info["headers"])["Location"])
    assert page.status == 200 and "logged out" in page.text


# --------------------------------------------------------------------------- IdP: variants


@pytest.mark.parametrize("enc_alg", ["aes256-cbc", "aes128-gcm"])
def test_encrypted_assertion_flow(tmp_path, keydir, sp_metadata, enc_alg):
    with st.running_idp(tmp_path / "idp", sp_metadata=[sp_metadata],
                        args=["--encrypt-assertion", "--no-sign-response",
                              "--enc-alg", enc_alg]) as idp:
        client = sp_client(keydir, idp)
        _, fields, resp = run_login(client, idp, st.Browser())
        r = st.parse(base64.b64decode(fields["SAMLResponse"]))
        assert st.find(r, "saml:EncryptedAssertion") is not None
        assert st.find(r, "saml:EncryptedAssertion/xenc:EncryptedData/xenc:EncryptionMethod").get(
            "Algorithm") == st.DATA_ENC_ALGS[enc_alg]
        assert st.find(r, "saml:Assertion") is None and st.find(r, "ds:Signature") is None
        assert resp.get_identity()["eduPersonPrincipalName"] == ["alice@example.org"]
        # The decrypted assertion carries the IdP's signature.
        a = st.decrypt_assertion(r, Path(keydir) / "sp-enc-key.pem")
        assert st.verify(a, idp.cert)[0]


def test_signed_requests_and_options(tmp_path, keydir):
    md = write_sp_metadata(keydir, sign_requests=True)
    users = {"carol": {"password": "c", "attributes": {
        "eduPersonPrincipalName": "{user}@{scope}", "mail": ["carol@{scope}"]}}}
    with st.running_idp(tmp_path / "idp", sp_metadata=[md], users=users,
                        scope=["uni.example", "example.net"], entity_id="https://idp.uni.example/",
                        args=["--want-signed-requests", "--no-sign-response",
                              "--sign-alg", "rsa-sha512", "--autologin", "carol",
                              "--scope-regexp", r"^.*\.uni\.example$"]) as idp:
        mdx = st.parse(idp.metadata_xml())
        assert mdx.find(".//md:IDPSSODescriptor", st.NS).get("WantAuthnRequestsSigned") == "true"
        assert [(s.text, s.get("regexp")) for s in mdx.findall(".//shibmd:Scope", st.NS)] == [
            ("uni.example", "false"), ("example.net", "false"), (r"^.*\.uni\.example$", "true")]
        signed = sp_client(keydir, idp, sign_requests=True)
        b = st.Browser()
        reqid, url = start_login(signed, idp)
        assert "Signature=" in url
        page = b.get(url)       # autologin: straight to the ACS form
        action, fields = st.saml_post_of(page)
        assert action == ACS
        r = st.parse(base64.b64decode(fields["SAMLResponse"]))
        assert st.find(r, "ds:Signature") is None                      # --no-sign-response
        a = st.find(r, "saml:Assertion")
        assert st.find(a, ".//ds:SignatureMethod").get("Algorithm") == st.SIG_ALGS["rsa-sha512"]
        resp = signed.parse_authn_request_response(fields["SAMLResponse"], BINDING_HTTP_POST,
                                                   outstanding={reqid: "/"})
        assert resp.get_identity()["eduPersonPrincipalName"] == ["carol@uni.example"]
        # Unsigned, and tampered, requests are refused.
        _, url = start_login(sp_client(keydir, idp, sign_requests=False), idp)
        assert "Signature=" not in url and b.get(url).status == 403
        _, url = start_login(signed, idp, relay_state="/a")
        assert b.get(url.replace("RelayState=%2Fa", "RelayState=%2Fb")).status == 403


def test_idp_process_stopped_on_failure(tmp_path, sp_metadata):
    p = st.IdPProcess(tmp_path / "idp", sp_metadata=[sp_metadata])
    with pytest.raises(RuntimeError):
        with p:
            pid = p.state["pid"]
            raise RuntimeError("test body failed")
    assert p.proc is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # A broken start reports the IdP's own error and leaves nothing running.
    bad = st.IdPProcess(tmp_path / "bad", args=["--autologin", "nobody"])
    with pytest.raises(RuntimeError, match="not a known user"):
        bad.start()
    assert bad.proc is None


# --------------------------------------------------------------------------- factory


@pytest.fixture(scope="module")
def factory(idp, keydir):
    return idp.factory(SP_ENTITY, ACS, sp_enc_cert=str(Path(keydir) / "sp-enc-cert.pem"))


def sp_accepts(client, built, reqid=None):
    outstanding = {reqid: "/"} if reqid else None
    return client.parse_authn_request_response(built.b64, BINDING_HTTP_POST,
                                               outstanding=outstanding)


@pytest.mark.parametrize("sign", ["response", "assertion", "both"])
@pytest.mark.parametrize("encrypt", [False, True])
def test_factory_valid_responses_verify_and_pysaml2_accepts(factory, client, idp, keydir,
                                                            sign, encrypt):
    reqid, _ = start_login(client, idp)
    built = factory.build(in_response_to=reqid, sign=sign, encrypt=encrypt, relay_state="/rs")
    assert built.form == {"SAMLResponse": built.b64, "RelayState": "/rs"}
    r = built.root
    if sign in ("response", "both"):
        assert st.verify(built.xml, idp.cert)[0]
    else:
        assert st.find(r, "ds:Signature") is None
    if encrypt:
        assert st.find(r, "saml:Assertion") is None
        a = st.decrypt_assertion(r, Path(keydir) / "sp-enc-key.pem")
        # xmlsec1 (an independent XML-Enc implementation) decrypts it too.
        rc, out, err = st._run([st.XMLSEC1, "--decrypt", "--privkey-pem",
                                str(Path(keydir) / "sp-enc-key.pem"), "/dev/stdin"], built.xml)
        assert rc == 0, err
        assert b"alice@example.org" in out
    else:
        a = st.find(r, "saml:Assertion")
    if sign in ("assertion", "both"):
        assert st.verify(a, idp.cert)[0]
    else:
        assert st.find(a, "ds:Signature") is None
    resp = sp_accepts(client, built, reqid)
    assert resp.get_identity()["eduPersonPrincipalName"] == ["alice@example.org"]
    assert resp.get_identity()["eduPersonTargetedID"]


def _assertion(built):
    return st.find(built.root, "saml:Assertion")


def _attr(built, name):
    for at in st.findall(_assertion(built), "saml:AttributeStatement/saml:Attribute"):
        if at.get("Name") == name:
            return [v.text for v in st.findall(at, "saml:AttributeValue")]
    return None


EPPN = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"

# knob -> check on the built response (positive control is the unmodified response above).
ALTERATIONS = {
    "status": (dict(status=st.STATUS_RESPONDER, sub_status=st.STATUS_AUTHN_FAILED),
               lambda b: st.find(b.root, "samlp:Status/samlp:StatusCode").get("Value")
               == st.STATUS_RESPONDER
               and st.find(b.root, "samlp:Status/samlp:StatusCode/samlp:StatusCode") is not None),
    "issuer": (dict(issuer="https://evil.example/idp"),
               lambda b: st.find(b.root, "saml:Issuer").text == "https://evil.example/idp"
               and st.find(_assertion(b), "saml:Issuer").text == "https://evil.example/idp"),
    "assertion_issuer": (dict(assertion_issuer="https://other.example/idp"),
                         lambda b: st.find(b.root, "saml:Issuer").text != "https://other.example/idp"
                         and st.find(_assertion(b), "saml:Issuer").text == "https://other.example/idp"),
    "destination": (dict(destination="http://127.0.0.1:9/elsewhere"),
                    lambda b: b.root.get("Destination") == "http://127.0.0.1:9/elsewhere"),
    "no_destination": (dict(destination=None), lambda b: b.root.get("Destination") is None),
    "recipient": (dict(recipient="http://127.0.0.1:9/other"),
                  lambda b: st.find(_assertion(b), ".//saml:SubjectConfirmationData")
                  .get("Recipient") == "http://127.0.0.1:9/other"),
    "no_subject_not_on_or_after": (
        dict(subject_not_on_or_after=None),
        lambda b: st.find(_assertion(b), ".//saml:SubjectConfirmationData")
        .get("NotOnOrAfter") is None),
    "expired": (dict(not_before=-3600, not_on_or_after=-1800, subject_not_on_or_after=-1800),
                lambda b: st.find(_assertion(b), "saml:Conditions").get("NotOnOrAfter")
                < st.saml_time(0)),
    "not_yet_valid": (dict(not_before=3600),
                      lambda b: st.find(_assertion(b), "saml:Conditions").get("NotBefore")
                      > st.saml_time(0)),
    "audience": (dict(audience="https://other-sp.example/"),
                 lambda b: [a.text for a in st.findall(_assertion(b), ".//saml:Audience")]
                 == ["https://other-sp.example/"]),
    "no_audience": (dict(audience=None),
                    lambda b: st.find(_assertion(b), ".//saml:AudienceRestriction") is None),
    "no_authn_statement": (dict(authn_statement=False),
                           lambda b: st.find(_assertion(b), "saml:AuthnStatement") is None),
    "extra_condition": (dict(extra_condition=True),
                        lambda b: st.find(_assertion(b), "saml:Conditions/saml:Condition")
                        is not None),
    "two_assertions": (dict(second_assertion={"user": "bob"}),
                       lambda b: len(st.findall(b.root, "saml:Assertion")) == 2
                       and all(st.find(a, "ds:Signature") is not None
                               for a in st.findall(b.root, "saml:Assertion"))),
    "unsigned_second_assertion_first": (
        dict(second_assertion={"user": "bob", "sign_assertion": False}, second_first=True,
             sign="assertion"),
        lambda b: st.find(st.findall(b.root, "saml:Assertion")[0], "ds:Signature") is None
        and st.find(st.findall(b.root, "saml:Assertion")[1], "ds:Signature") is not None),
    "sha1": (dict(sig_alg="rsa-sha1", digest_alg="sha1"),
             lambda b: {e.get("Algorithm") for e in b.root.iter(st.DS + "SignatureMethod")}
             == {st.SIG_ALGS["rsa-sha1"]}
             and {e.get("Algorithm") for e in b.root.iter(st.DS + "DigestMethod")}
             == {st.DIGEST_ALGS["sha1"]}),
    "doctype": (dict(doctype=True), lambda b: b"<!DOCTYPE samlp:Response" in b.xml),
    "other_scope": (dict(attrs={"eduPersonPrincipalName": "alice@other.org"}),
                    lambda b: _attr(b, EPPN) == ["alice@other.org"]),
    "two_at_signs": (dict(attrs={"eduPersonPrincipalName": "a@b@example.org"}),
                     lambda b: _attr(b, EPPN) == ["a@b@example.org"]),
    "friendly_names_only": (
        dict(attribute_names="friendly"),
        lambda b: _attr(b, EPPN) is None
        and _attr(b, "eduPersonPrincipalName") == ["alice@example.org"]),
    "attribute_removed": (dict(attrs={"eduPersonPrincipalName": None}),
                          lambda b: _attr(b, EPPN) is None),
    "holder_of_key": (dict(confirmation_method=st.CM_HOLDER_OF_KEY),
                      lambda b: st.find(_assertion(b), ".//saml:SubjectConfirmation")
                      .get("Method") == st.CM_HOLDER_OF_KEY),
    "in_response_to": (dict(in_response_to="_other"),
                       lambda b: b.root.get("InResponseTo") == "_other"
                       and st.find(_assertion(b), ".//saml:SubjectConfirmationData")
                       .get("InResponseTo") == "_other"),
    "before_sign_hook": (
        dict(before_sign=lambda r: st.find(r, "saml:Assertion/saml:Subject/saml:NameID")
             .set("Format", "urn:x")),
        lambda b: st.find(_assertion(b), ".//saml:NameID").get("Format") == "urn:x"),
}


@pytest.mark.parametrize("name", sorted(ALTERATIONS))
def test_factory_alterations(factory, idp, name):
    kw, check = ALTERATIONS[name]
    base = factory.build(in_response_to="_req")
    built = factory.build(**dict({"in_response_to": "_req"}, **kw))
    assert check(built), built.text
    assert not check(base), "the unmodified response already shows the alteration"
    # Alterations made before signing keep the signatures valid.
    assert st.verify(built.xml, idp.cert)[0]
    for a in st.findall(built.root, "saml:Assertion"):
        if st.find(a, "ds:Signature") is not None:
            assert st.verify(built.xml, idp.cert, node_id=a.get("ID"))[0]


def test_factory_after_sign_breaks_signature(factory, idp):
    def tamper(root):
        for v in root.iter(st.SAML + "AttributeValue"):
            if v.text == "alice@example.org":
                v.text = "mallory@example.org"
        return root
    built = factory.build(after_sign=tamper, sign="both")
    assert b"mallory@example.org" in built.xml
    ok_resp, _ = st.verify(built.xml, idp.cert)
    ok_assertion, _ = st.verify(built.xml, idp.cert, node_id=built.assertion_id)
    assert not ok_resp and not ok_assertion


def test_factory_comment_and_strip_helpers(factory, idp):
    def comment(root):
        for v in root.iter(st.SAML + "AttributeValue"):
            if v.text == "alice@example.org":
                st.set_text_with_comment(v, "alice@evil", ".example.org")
    built = factory.build(before_sign=comment)
    assert b"alice@evil<!---->.example.org" in built.xml
    assert st.verify(built.xml, idp.cert)[0]
    assert st.verify(built.xml, idp.cert, node_id=built.assertion_id)[0]
    stripped = factory.build(after_sign=st.strip_signatures)
    assert b"Signature" not in stripped.xml


def test_factory_other_signing_key_and_corrupt_encryption(factory, idp, keydir, client):
    other = st.make_keypair(keydir, "evil", cn="evil")
    built = factory.build(signing_key=other)
    assert not st.verify(built.xml, idp.cert)[0]
    assert st.verify(built.xml, other[1])[0]
    with pytest.raises(Exception):
        sp_accepts(client, built)
    bad = factory.build(encrypt=True, corrupt_encryption=True, sign="assertion")
    with pytest.raises(Exception):
        st.decrypt_assertion(bad.root, Path(keydir) / "sp-enc-key.pem")


def test_sign_metadata_aggregate(idp, keydir, sp_metadata):
    fed_key, fed_cert = st.make_keypair(keydir, "federation", cn="federation")
    agg = st.parse(b'<md:EntitiesDescriptor xmlns:md="%s" Name="test"/>' % st.NS["md"].encode())
    agg.append(st.parse(idp.metadata_xml()))
    agg.append(st.parse(sp_metadata.read_bytes()))
    signed = st.sign_metadata(agg, fed_key, fed_cert)
    assert st.verify(signed, fed_cert)[0]
    assert not st.verify(signed.replace(b"example.org", b"example.com"), fed_cert)[0]


def test_browser_refuses_non_loopback():
    with pytest.raises(ValueError):
        st.Browser().get("http://192.0.2.1/")
