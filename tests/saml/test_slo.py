"""Single logout with the pysaml2 test IdP: SP-initiated (POST /logout sends a signed
LogoutRequest; the IdP's LogoutResponse at /saml/slo is verified) and IdP-initiated (the
IdP's /logout sends a LogoutRequest that ends the matching web sessions, answered with a
signed LogoutResponse the IdP accepts), over HTTP-Redirect and HTTP-POST; forged messages
(unsigned, wrongly signed, wrong Destination, unknown InResponseTo, replayed) refused with
their logged reason and ending nothing; web.logout_revokes_tokens on and off."""
import base64
import re
import secrets
import time
import urllib.parse
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

import samltest
from conftest import SP_ENTITY, Gateway, free_port, post

NS = samltest.NS
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


# ---------------------------------------------------------------- stacks

def _start(tmp_path_factory, redis, metadata_edit=None, web_extra=""):
    base = tmp_path_factory.mktemp("slo")
    idp_port = free_port()
    idp_entity = "http://127.0.0.1:%d/idp" % idp_port
    gw = Gateway(base / "gw", redis, idp_entity)
    idp = samltest.IdPProcess(base / "idp", sp_metadata=[gw.url + "/saml/metadata"],
                              port=idp_port, entity_id=idp_entity)
    try:
        idp.start()
        md = Path(idp.metadata_path)
        if metadata_edit is not None:
            root = etree.fromstring(md.read_bytes())
            metadata_edit(root)
            md = base / "idp-edited.xml"
            md.write_bytes(etree.tostring(root))
        gw.write_config(md)
        if web_extra:
            gw.config.write_text(gw.config.read_text().replace("[web]\n", "[web]\n" + web_extra))
        gw.start()
    except Exception:
        try:
            gw.stop()
        finally:
            idp.stop()
        raise
    return gw, idp


def _stack(tmp_path_factory, redis, **kw):
    gw, idp = _start(tmp_path_factory, redis, **kw)
    try:
        yield gw, idp
    finally:
        try:
            gw.stop()
        finally:
            idp.stop()


@pytest.fixture(scope="module")
def slo_stack(tmp_path_factory, redis):
    yield from _stack(tmp_path_factory, redis)


def _post_only(root):
    for s in root.iter("{%s}SingleLogoutService" % NS["md"]):
        if s.get("Binding").endswith("HTTP-Redirect"):
            s.getparent().remove(s)


def _no_slo(root):
    for s in list(root.iter("{%s}SingleLogoutService" % NS["md"])):
        s.getparent().remove(s)


@pytest.fixture(scope="module")
def post_stack(tmp_path_factory, redis):
    """The IdP's SingleLogoutService with HTTP-POST only (in samlgw's copy of its metadata)."""
    yield from _stack(tmp_path_factory, redis, metadata_edit=_post_only)


@pytest.fixture(scope="module")
def noslo_stack(tmp_path_factory, redis):
    yield from _stack(tmp_path_factory, redis, metadata_edit=_no_slo)


@pytest.fixture(scope="module")
def revoke_stack(tmp_path_factory, redis):
    yield from _stack(tmp_path_factory, redis, web_extra="logout_revokes_tokens = yes\n")


# ---------------------------------------------------------------- helpers

def login(gw, user="alice", b=None):
    b = b or samltest.Browser()
    page = b.flow(gw.url + "/", user=user,
                  stop=lambda p: p.status == 200 and p.url == gw.url + "/")
    assert page.status == 200 and "%s@example.org" % user in page.text, (page.status,
                                                                          page.text[:500])
    return b, page


def signed_in(gw, b):
    return b.get(gw.url + "/", follow=False).status == 200


def logout_form(page, gw):
    return next(f for f in page.forms if f.action == gw.url + "/logout")


def issue(b, page, label):
    form = next(f for f in page.forms if f.action.endswith("/tokens"))
    issued = b.submit(form, label=label)
    assert issued.status == 200, issued.text[:300]
    return re.search(r'value="(samlgw_[A-Za-z0-9_-]+)"', issued.text).group(1)


def valid(gw, jid, token):
    return gw.token_cli("verify", "--jid", jid, input=token + "\n").returncode == 0


def refused(gw, reason, before):
    lines = gw.log_lines("slo_refused")[before:]
    assert lines, gw.log()[-3000:]
    assert "reason=%s " % reason in lines[-1] + " ", lines[-1]
    return lines[-1]


def saml_time(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def logout_request(idp, gw, name_id, fmt=TRANSIENT, session_indexes=(), dest=None,
                   issue_instant=None, rid=None, spnq=SP_ENTITY):
    root = etree.Element("{%s}LogoutRequest" % NS["samlp"],
                         nsmap={"samlp": NS["samlp"], "saml": NS["saml"]})
    root.set("ID", rid or "_" + secrets.token_hex(16))
    root.set("Version", "2.0")
    root.set("IssueInstant", saml_time(issue_instant or time.time()))
    root.set("Destination", dest or gw.url + "/saml/slo")
    etree.SubElement(root, "{%s}Issuer" % NS["saml"]).text = idp.entity_id
    n = etree.SubElement(root, "{%s}NameID" % NS["saml"], Format=fmt,
                         NameQualifier=idp.entity_id)
    if spnq:
        n.set("SPNameQualifier", spnq)
    n.text = name_id
    for si in session_indexes:
        etree.SubElement(root, "{%s}SessionIndex" % NS["samlp"]).text = si
    return root


def logout_response(idp, gw, in_response_to, dest=None, status="Success"):
    root = etree.Element("{%s}LogoutResponse" % NS["samlp"],
                         nsmap={"samlp": NS["samlp"], "saml": NS["saml"]})
    root.set("ID", "_" + secrets.token_hex(16))
    root.set("Version", "2.0")
    root.set("IssueInstant", saml_time(time.time()))
    root.set("Destination", dest or gw.url + "/saml/slo")
    root.set("InResponseTo", in_response_to)
    etree.SubElement(root, "{%s}Issuer" % NS["saml"]).text = idp.entity_id
    st = etree.SubElement(root, "{%s}Status" % NS["samlp"])
    etree.SubElement(st, "{%s}StatusCode" % NS["samlp"],
                     Value="urn:oasis:names:tc:SAML:2.0:status:" + status)
    return root


def redirect_url(gw, root, key, field="SAMLRequest", sign=True, relay_state=None):
    """The HTTP-Redirect binding: DEFLATE, base64, a query signed with key (PEM path)."""
    xml = etree.tostring(root)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    b64 = base64.b64encode(c.compress(xml) + c.flush()).decode()
    q = field + "=" + urllib.parse.quote_plus(b64)
    if relay_state is not None:
        q += "&RelayState=" + urllib.parse.quote_plus(relay_state)
    if sign:
        q += "&SigAlg=" + urllib.parse.quote_plus(RSA_SHA256)
        k = serialization.load_pem_private_key(Path(key).read_bytes(), password=None)
        sig = k.sign(q.encode(), padding.PKCS1v15(), hashes.SHA256())
        q += "&Signature=" + urllib.parse.quote_plus(base64.b64encode(sig).decode())
    return gw.url + "/saml/slo?" + q


def post_value(root, key, cert, sign=True):
    if sign:
        sig = samltest.signature_template(root.get("ID"), samltest.cert_base64(cert))
        samltest.insert_signature(root, sig)
        xml = samltest.xmlsec_sign(etree.tostring(root), key, cert, root.get("ID"))
    else:
        xml = etree.tostring(root)
    return base64.b64encode(xml).decode()


def factory_login(gw, idp, name_id, session_index, fmt=PERSISTENT):
    """A login through a Response built with the IdP's key (chosen NameID and
    SessionIndex): the new session's cookie."""
    page, _ = post(gw, idp, name_id=name_id, name_id_format=fmt,
                   session_index=session_index)
    assert page.status == 303, (page.status, page.text[:500])
    cookie = page.headers["Set-Cookie"].split(";")[0]
    b = samltest.Browser(headers={"Cookie": cookie})
    assert signed_in(gw, b)
    return b


# ---------------------------------------------------------------- SP-initiated

def sp_logout(gw, idp, b, page):
    """POST /logout and go where it leads (the IdP and back): the last page."""
    out = b.submit(logout_form(page, gw), follow=False)
    assert out.status in (200, 303), (out.status, out.text[:500])
    return out


def test_sp_initiated_redirect(slo_stack):
    gw, idp = slo_stack
    b, page = login(gw)
    out = sp_logout(gw, idp, b, page)
    assert out.status == 303 and out.location.startswith(idp.url + "/slo/redirect?"), \
        out.headers
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(out.location).query)
    assert q["SigAlg"] == [RSA_SHA256] and q["Signature"]
    msg, _ = samltest.decode_redirect_message(out.location)
    req = etree.fromstring(msg)
    assert req.tag == "{%s}LogoutRequest" % NS["samlp"]
    assert req.find("saml:NameID", NS).text == idp.last_response()["name_id"]
    assert req.find("samlp:SessionIndex", NS).text == idp.last_response()["session_index"]
    assert not signed_in(gw, b)  # the local session ended before the IdP answered
    done = b.get(out.location)
    assert done.status == 200 and done.url.startswith(gw.url + "/saml/slo?"), (
        done.status, done.url, done.text[:500], idp.log()[-2000:])
    assert "You have logged out" in done.text
    assert "confirmed that you are logged out there too" in done.text, done.text
    assert gw.log_lines("slo_started") and gw.log_lines("slo_done")
    assert "confirmed=yes" in gw.log_lines("slo_done")[-1]
    assert "event=logout_request " in idp.log()
    assert not signed_in(gw, b)


def test_sp_initiated_post(post_stack):
    gw, idp = post_stack
    b, page = login(gw)
    out = sp_logout(gw, idp, b, page)
    assert out.status == 200, (out.status, out.text[:500])
    form = out.form()
    assert form.action == idp.url + "/slo/post" and "SAMLRequest" in form
    assert "data-autosubmit" in out.text
    # The page's script (allowed by the CSP's hash) submits the form.
    csp = out.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in csp and "form-action" not in csp
    xml = base64.b64decode(form.get("SAMLRequest"))
    ok, err = samltest.verify(xml, gw.sp_cert, node="LogoutRequest")
    assert ok, err
    assert not signed_in(gw, b)
    back = b.submit(form)  # to the IdP, which answers with an auto-POST form
    assert back.status == 200, (back.status, back.text[:500], idp.log()[-2000:])
    done = b.submit(back.form())
    assert done.status == 200 and done.url == gw.url + "/saml/slo", (done.status, done.text[:500])
    assert "confirmed that you are logged out there too" in done.text
    assert "binding=post" in gw.log_lines("slo_started")[-1]


def test_no_idp_slo_is_local_logout(noslo_stack):
    gw, idp = noslo_stack
    b, page = login(gw)
    out = sp_logout(gw, idp, b, page)
    assert out.status == 303 and out.location == gw.url + "/logout"
    assert not gw.log_lines("slo_started")
    assert not signed_in(gw, b)


# ---------------------------------------------------------------- IdP-initiated

@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_idp_initiated(slo_stack, binding):
    gw, idp = slo_stack
    alice, _ = login(gw, "alice")
    bob, _ = login(gw, "bob")
    n_before = idp.log().count("event=logout_response ")
    ib = samltest.Browser()
    page = ib.flow(idp.logout_url(binding, user="alice"), max_steps=4)
    assert page.status == 200, (page.status, page.text[:500], gw.log()[-2000:])
    assert "You are logged out" in page.text, (page.text[:500], idp.log()[-2000:])
    assert not signed_in(gw, alice)
    assert signed_in(gw, bob)
    line = gw.log_lines("slo_request")[-1]
    assert "sessions_ended=1 " in line and "status=Success" in line, line
    assert "binding=%s" % binding in line
    answers = [l for l in idp.log().splitlines() if "event=logout_response " in l]
    assert len(answers) == n_before + 1 and "status=Success" in answers[-1], idp.log()[-2000:]


def test_idp_request_ends_every_matching_session(slo_stack):
    """A LogoutRequest naming a persistent NameID without SessionIndex ends each session
    with that NameID (alice in two browsers), none of another NameID (bob); with a
    SessionIndex only the session it names."""
    gw, idp = slo_stack
    nid = "alice-" + secrets.token_hex(4)
    a1 = factory_login(gw, idp, nid, "_s1")
    a2 = factory_login(gw, idp, nid, "_s2")
    a3 = factory_login(gw, idp, nid, "_s3")
    bob = factory_login(gw, idp, "bob-" + secrets.token_hex(4), "_s1")
    # SessionIndex _s3 only
    r = samltest.Browser().get(redirect_url(
        gw, logout_request(idp, gw, nid, PERSISTENT, ["_s3"]), idp.key), follow=False)
    assert r.status == 303 and r.location.startswith(idp.url + "/slo/redirect?"), r.text[:300]
    assert signed_in(gw, a1) and signed_in(gw, a2) and not signed_in(gw, a3)
    resp, q = samltest.decode_redirect_message(r.location)
    assert b"status:Success" in resp and "Signature" in q
    # No SessionIndex: every session of the NameID.
    r = samltest.Browser().get(redirect_url(
        gw, logout_request(idp, gw, nid, PERSISTENT), idp.key, relay_state="rs-1"),
        follow=False)
    assert r.status == 303
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(r.location).query)["RelayState"] == \
        ["rs-1"]
    assert not signed_in(gw, a1) and not signed_in(gw, a2)
    assert signed_in(gw, bob)
    assert "sessions_ended=2 " in gw.log_lines("slo_request")[-1]


# ---------------------------------------------------------------- refused messages

def test_forged_requests_end_nothing(slo_stack, tmp_path):
    gw, idp = slo_stack
    nid = "alice-" + secrets.token_hex(4)
    a = factory_login(gw, idp, nid, "_x")
    rogue_key, rogue_cert = samltest.make_keypair(tmp_path, "rogue")
    cases = [
        ("unsigned redirect", lambda: redirect_url(
            gw, logout_request(idp, gw, nid, PERSISTENT), idp.key, sign=False), "unsigned"),
        ("wrong key redirect", lambda: redirect_url(
            gw, logout_request(idp, gw, nid, PERSISTENT), rogue_key), "signature_invalid"),
        ("wrong destination", lambda: redirect_url(
            gw, logout_request(idp, gw, nid, PERSISTENT, dest="https://other.example/slo"),
            idp.key), "destination"),
        ("too old", lambda: redirect_url(
            gw, logout_request(idp, gw, nid, PERSISTENT, issue_instant=time.time() - 3600),
            idp.key), "expired"),
    ]
    for name, url, reason in cases:
        before = len(gw.log_lines("slo_refused"))
        r = samltest.Browser().get(url(), follow=False)
        assert r.status in (302, 400), (name, r.status, r.text[:300])
        refused(gw, reason, before)
        assert signed_in(gw, a), name
    for name, value, reason in [
        ("unsigned post", post_value(logout_request(idp, gw, nid, PERSISTENT), None, None,
                                     sign=False), "unsigned"),
        ("wrong key post", post_value(logout_request(idp, gw, nid, PERSISTENT), rogue_key,
                                      rogue_cert), "signature_invalid"),
    ]:
        before = len(gw.log_lines("slo_refused"))
        r = samltest.Browser().post(gw.url + "/saml/slo", {"SAMLRequest": value}, follow=False)
        assert r.status in (302, 400), (name, r.status, r.text[:300])
        refused(gw, reason, before)
        assert signed_in(gw, a), name
    # A signed-in browser that carries an unsigned message gets the confirm page, not a
    # logout.
    r = a.get(redirect_url(gw, logout_request(idp, gw, nid, PERSISTENT), idp.key, sign=False),
              follow=False)
    assert r.status == 200 and "asked to end your session" in r.text and signed_in(gw, a)
    # Replay: the same signed request twice; the second ends nothing more.
    req = logout_request(idp, gw, nid, PERSISTENT, ["_other"])
    url = redirect_url(gw, req, idp.key)
    assert samltest.Browser().get(url, follow=False).status == 303
    before = len(gw.log_lines("slo_refused"))
    assert samltest.Browser().get(url, follow=False).status == 400
    refused(gw, "replay", before)
    assert signed_in(gw, a)


def test_forged_responses_refused(slo_stack):
    gw, idp = slo_stack
    # Unknown InResponseTo.
    before = len(gw.log_lines("slo_refused"))
    r = samltest.Browser().get(redirect_url(
        gw, logout_response(idp, gw, "_nosuchrequest"), idp.key, field="SAMLResponse"),
        follow=False)
    assert r.status == 400, r.text[:300]
    refused(gw, "in_response_to", before)
    # A real logout; its LogoutResponse replayed afterwards.
    b, page = login(gw)
    out = sp_logout(gw, idp, b, page)
    answer = b.get(out.location, follow=False)  # the IdP's redirect back to /saml/slo
    assert answer.status == 303 and "/saml/slo?" in answer.location, answer.text[:300]
    assert b.get(answer.location).status == 200
    before = len(gw.log_lines("slo_refused"))
    again = samltest.Browser().get(answer.location, follow=False)
    assert again.status == 400
    refused(gw, "replay", before)
    # Unsigned and wrongly addressed answers to a pending request.
    b, page = login(gw)
    out = sp_logout(gw, idp, b, page)
    msg, _ = samltest.decode_redirect_message(out.location)
    rid = etree.fromstring(msg).get("ID")
    for resp, sign, reason in [
        (logout_response(idp, gw, rid), False, "unsigned"),
        (logout_response(idp, gw, rid, dest="https://other.example/slo"), True, "destination"),
    ]:
        before = len(gw.log_lines("slo_refused"))
        r = samltest.Browser().get(redirect_url(gw, resp, idp.key, field="SAMLResponse",
                                                sign=sign), follow=False)
        assert r.status in (302, 400)
        refused(gw, reason, before)
    # The request is still pending: the real answer goes through.
    done = b.get(out.location)
    assert done.status == 200 and "confirmed that you are logged out" in done.text


# ---------------------------------------------------------------- tokens

def test_logout_keeps_tokens_by_default(slo_stack):
    gw, idp = slo_stack
    b, page = login(gw)
    token = issue(b, page, "kept")
    page = b.get(gw.url + "/")
    b.get(sp_logout(gw, idp, b, page).location)
    assert valid(gw, "alice@example.org", token)
    assert "tokens_revoked=0" in gw.log_lines("logout")[-1]


def test_logout_revokes_tokens(revoke_stack):
    gw, idp = revoke_stack
    other, opage = login(gw)  # another session of alice: its token stays
    kept = issue(other, opage, "other")
    b, page = login(gw)
    t1 = issue(b, page, "one")
    page = b.get(gw.url + "/")
    t2 = issue(b, page, "two")
    page = b.get(gw.url + "/")
    b.get(sp_logout(gw, idp, b, page).location)
    assert not valid(gw, "alice@example.org", t1)
    assert not valid(gw, "alice@example.org", t2)
    assert valid(gw, "alice@example.org", kept)
    assert "tokens_revoked=2" in [l for l in gw.log_lines("logout") if "via=web" in l][-1]
    # IdP-initiated logout revokes too.
    ib = samltest.Browser()
    page = ib.flow(idp.logout_url("redirect", user="alice"), max_steps=4)
    assert page.status == 200, page.text[:300]
    assert not signed_in(gw, other)
    assert not valid(gw, "alice@example.org", kept)
    assert "tokens_revoked=1" in [l for l in gw.log_lines("logout") if "via=slo" in l][-1]
