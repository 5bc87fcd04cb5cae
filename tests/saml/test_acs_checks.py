"""One negative test per ACS check (issue 3, points 4 and 5), each next to a positive
control: the same factory settings without the fault are accepted, so no test can pass by
accident. Responses are built by samltest.ResponseFactory as the test IdP (its key), for an
AuthnRequest that samlgw really sent (so InResponseTo is outstanding)."""
import http.client
import urllib.parse

import pytest

import samltest
from conftest import SP_ENTITY, accepted, post, refused_with, start_request


# (reason, knobs of the bad response). The control is the same call without the knobs.
CASES = [
    ("status_not_success", dict(status=samltest.STATUS_RESPONDER)),
    ("assertion_count", dict(second_assertion={})),
    ("assertion_count", dict(assertion=False)),
    # XSW: a signed assertion plus an unsigned one (CVE-2021-28091's shape), and an
    # unsigned one hidden in the Response's Extensions.
    ("assertion_count", dict(sign="assertion",
                             second_assertion={"user": "mallory", "sign_assertion": False})),
    ("assertion_count", dict(sign="assertion", after_sign=lambda root: _hide_assertion(root))),
    ("unsigned", dict(sign="none")),
    # AES-CBC in an unsigned Response is refused before decryption (cbc_unsigned, see
    # test_cbc_*); with AES-GCM the same message is decrypted and found unsigned.
    ("unsigned", dict(sign="none", encrypt=True, data_alg="aes128-gcm")),
    ("unsigned", dict(after_sign=samltest.strip_signatures)),
    ("signature_invalid", dict(after_sign=lambda root: _tamper(root))),
    ("signature_invalid", dict(sign="assertion", after_sign=lambda root: _tamper(root))),
    ("xml_invalid", dict(sign="assertion", after_sign=lambda root: _duplicate_id(root))),
    # xs:ID is an NCName: white space in an ID (which libxml2 would keep past its node)
    ("xml_invalid", dict(sign="assertion",
                         after_sign=lambda root: root.set("ID", " " + root.get("ID")) or root)),
    ("issuer_mismatch", dict(assertion_issuer="https://other.example.org/idp")),
    ("destination", dict(destination="https://evil.example.org/saml/acs")),
    ("destination", dict(destination=None, sign="response")),
    ("in_response_to", dict(in_response_to="_not_outstanding_0123456789")),
    ("in_response_to", dict(subject_in_response_to="_another_request_0123456789")),
    ("unsolicited", dict(in_response_to=None)),
    ("subject_confirmation", dict(confirmation_method=samltest.CM_HOLDER_OF_KEY)),
    ("subject_confirmation", dict(subject_confirmation=False)),
    ("recipient", dict(recipient="https://evil.example.org/saml/acs")),
    ("recipient", dict(recipient=None)),
    ("confirmation_expired", dict(subject_not_on_or_after=None)),
    ("confirmation_expired", dict(subject_not_on_or_after=-600)),
    ("not_yet_valid", dict(not_before=3600)),
    ("not_yet_valid", dict(subject_not_before=3600)),
    ("expired", dict(not_on_or_after=-600)),
    ("audience", dict(audience="https://other.example.org/sp")),
    ("audience", dict(conditions=False)),
    ("unknown_condition", dict(extra_condition=True)),
    ("no_authn_statement", dict(authn_statement=False)),
    ("sha1", dict(sig_alg="rsa-sha1", digest_alg="sha1")),
    ("sha1", dict(digest_alg="sha1")),
    ("sha1", dict(sign="assertion", sig_alg="rsa-sha1")),
    ("dtd", dict(doctype=True)),
    ("dtd", dict(doctype='<!DOCTYPE samlp:Response [<!ENTITY x SYSTEM "file:///etc/passwd">]>')),
    ("decryption_failed", dict(encrypt=True, corrupt_encryption=True)),
    # RSA PKCS#1 v1.5 key transport is refused before any private-key operation
    # (a Bleichenbacher oracle otherwise), signed or not.
    ("decryption_failed", dict(encrypt=True, key_alg="rsa-1_5")),
    ("decryption_failed", dict(encrypt=True, sign="assertion", key_alg="rsa-1_5",
                               data_alg="aes128-gcm")),
    ("decryption_failed", dict(encrypt=True, sign="assertion", data_alg="aes128-gcm",
                               after_sign=lambda root: _no_encrypted_data(root))),
    ("scope", dict(attrs={"eduPersonPrincipalName": "alice@evil.example.net"})),
    ("scope", dict(attrs={"eduPersonPrincipalName": "alice@x@example.org"})),
    ("scope", dict(attrs={"eduPersonScopedAffiliation": "member@evil.example.net"})),
    ("no_domain", dict(attrs={"eduPersonPrincipalName": None})),
    ("localpart", dict(attrs={"eduPersonPrincipalName": "al/ice@example.org"})),
    # not a samlp:Response 2.0 with an ID, or its assertion without Version 2.0 and an ID
    # of at most 256 characters
    ("not_a_response", dict(after_sign=lambda root: samltest.find(root, "saml:Assertion"))),
    ("not_a_response", dict(after_sign=lambda root: root.set("Version", "1.1") or root)),
    ("not_a_response", dict(after_sign=lambda root: root.attrib.pop("ID") and root)),
    ("not_a_response", dict(sign="assertion", after_sign=lambda root: _assertion_version(root))),
    ("not_a_response", dict(assertion_id="_" + "a" * 256)),
]


def _tamper(root):
    """Change signed content after signing (the ePPN of the assertion)."""
    for v in root.iter(samltest.SAML + "AttributeValue"):
        if v.text and v.text.startswith("alice@"):
            v.text = "bob@example.org"
    return root


def _hide_assertion(root):
    """Put an unsigned copy of the assertion, for mallory, into samlp:Extensions."""
    a = samltest.find(root, "saml:Assertion")
    evil = samltest.parse(samltest.tostring(a))
    samltest.strip_signatures(evil)
    evil.set("ID", samltest.new_id())
    for v in evil.iter(samltest.SAML + "AttributeValue"):
        if v.text and v.text.startswith("alice@"):
            v.text = "mallory@example.org"
    ext = root.makeelement(samltest.SAMLP + "Extensions", {})
    ext.append(evil)
    root.insert(list(root).index(samltest.find(root, "saml:Issuer")) + 1, ext)
    return root


def _duplicate_id(root):
    """Give the Response the signed assertion's ID (a reference "#ID" is then ambiguous)."""
    root.set("ID", samltest.find(root, "saml:Assertion").get("ID"))
    return root


def _assertion_version(root):
    samltest.find(root, "saml:Assertion").set("Version", "1.0")
    return root


def _no_encrypted_data(root):
    ea = samltest.find(root, "saml:EncryptedAssertion")
    for c in list(ea):
        ea.remove(c)
    return root


@pytest.mark.parametrize("reason,knobs", CASES, ids=[c[0] for c in CASES])
def test_check(stack, reason, knobs):
    gw, idp = stack
    # The control keeps how the message is protected (unless that is the fault).
    control = {k: v for k, v in knobs.items()
               if k in ("encrypt", "data_alg") or (k == "sign" and v != "none")}
    accepted(post(gw, idp, **control)[0])
    page, _ = post(gw, idp, **knobs)
    refused_with(gw, page, reason)


def test_replay(stack):
    gw, idp = stack
    factory = idp.factory(SP_ENTITY, gw.acs, sp_enc_cert=gw.sp_cert)
    built = factory.build(in_response_to=start_request(gw, idp))
    accepted(samltest.Browser().post(gw.acs, built.form, follow=False))
    # The same assertion again, for a new outstanding request: the Response is re-signed.
    rid = start_request(gw, idp)
    again = factory.build(in_response_to=rid, assertion_id=built.assertion_id)
    refused_with(gw, samltest.Browser().post(gw.acs, again.form, follow=False), "replay")
    # The replay did not use the request up: its real answer still logs the user in.
    accepted(samltest.Browser().post(gw.acs, factory.build(in_response_to=rid).form,
                                     follow=False))


def test_request_consumed_once(stack):
    gw, idp = stack
    rid = start_request(gw, idp)
    accepted(post(gw, idp, in_response_to=rid)[0])
    refused_with(gw, post(gw, idp, in_response_to=rid)[0], "in_response_to")


def test_unknown_idp(stack, tmp_path):
    gw, idp = stack
    accepted(post(gw, idp)[0])
    other_key, other_cert = samltest.make_keypair(tmp_path, "other")
    f = samltest.ResponseFactory(other_key, other_cert, "https://unknown.example.org/idp",
                                 SP_ENTITY, gw.acs)
    page = samltest.Browser().post(gw.acs, f.build(in_response_to=start_request(gw, idp)).form,
                                   follow=False)
    refused_with(gw, page, "unknown_idp")


def test_wrong_signing_key(stack, tmp_path):
    gw, idp = stack
    key, cert = samltest.make_keypair(tmp_path, "rogue")
    accepted(post(gw, idp)[0])
    refused_with(gw, post(gw, idp, signing_key=(key, cert))[0], "signature_invalid")


def test_encrypted_to_another_key(stack, tmp_path):
    gw, idp = stack
    _key, other = samltest.make_keypair(tmp_path, "not-the-sp")
    accepted(post(gw, idp, encrypt=True)[0])
    refused_with(gw, post(gw, idp, encrypt=True, enc_cert=other)[0], "decryption_failed")


def test_clock_skew_default(stack):
    """Within the default clock_skew (180 s) a NotBefore in the future is accepted; the
    multi-IdP stack (30 s) refuses the same (test_multi_idp.py)."""
    gw, idp = stack
    accepted(post(gw, idp, not_before=120, subject_not_before=120)[0])
    accepted(post(gw, idp, not_on_or_after=-120, subject_not_on_or_after=-120)[0])
    refused_with(gw, post(gw, idp, not_before=240)[0], "not_yet_valid")


def test_encrypted_accepted(stack):
    gw, idp = stack
    accepted(post(gw, idp, encrypt=True)[0])  # AES-128-CBC, the Response signed
    accepted(post(gw, idp, encrypt=True, sign="assertion", data_alg="aes128-gcm")[0])
    accepted(post(gw, idp, encrypt=True, data_alg="aes256-gcm")[0])


@pytest.mark.parametrize("data_alg", ["aes128-cbc", "aes256-cbc"])
def test_cbc_in_an_unsigned_response_refused(stack, data_alg):
    """An AES-CBC assertion is decrypted only when the Response's signature (checked
    first) covers its ciphertext: in an unsigned Response it is refused before any
    private-key operation (saml.allow_unsigned_cbc is off by default). Controls: the same
    assertion in a signed Response, and the unsigned Response with AES-GCM."""
    gw, idp = stack
    accepted(post(gw, idp, encrypt=True, sign="both", data_alg=data_alg)[0])
    accepted(post(gw, idp, encrypt=True, sign="assertion", data_alg="aes128-gcm")[0])
    line = refused_with(gw, post(gw, idp, encrypt=True, sign="assertion",
                                 data_alg=data_alg)[0], "cbc_unsigned")
    assert "saml.allow_unsigned_cbc" in line
    # Nothing signed at all: refused the same way, still before decryption.
    refused_with(gw, post(gw, idp, encrypt=True, sign="none", data_alg=data_alg)[0],
                 "cbc_unsigned")


def test_body_cap(stack):
    gw, idp = stack
    page = samltest.Browser().post(gw.acs, {"SAMLResponse": "A" * (300 * 1024)}, follow=False)
    assert page.status == 413


def _extensions(root, ext):
    root.insert(list(root).index(samltest.find(root, "saml:Issuer")) + 1, ext)
    return root


def _namespaces(n):
    """samlp:Extensions declaring n namespaces (canonicalisation cost grows with them)."""
    def hook(root):
        nsmap = {"p%d" % i: "urn:x:%d" % i for i in range(n)}
        return _extensions(root, root.makeelement(samltest.SAMLP + "Extensions", {}, nsmap))
    return hook


def _nested(depth):
    """samlp:Extensions holding elements nested depth deep."""
    def hook(root):
        ext = cur = root.makeelement(samltest.SAMLP + "Extensions", {})
        for _ in range(depth):
            child = cur.makeelement("{urn:x}a", {})
            cur.append(child)
            cur = child
        return _extensions(root, ext)
    return hook


@pytest.mark.parametrize("fault,control", [
    (_namespaces(200), _namespaces(100)),
    (_nested(60), _nested(30)),
], ids=["namespaces_in_scope", "depth"])
def test_canonicalisation_caps(stack, fault, control):
    """What C14N work grows with is capped before any signature check: namespace
    declarations in scope (128) and element depth (48); signed Responses within them pass."""
    gw, idp = stack
    accepted(post(gw, idp, before_sign=control)[0])
    refused_with(gw, post(gw, idp, before_sign=fault)[0], "xml_invalid")


def _chunked_post(gw, body, chunk=7000):
    """POST body to the ACS in chunks without a Content-Length: (status, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    try:
        conn.putrequest("POST", "/saml/acs")
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(body), chunk):
            part = body[i:i + chunk]
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        r.read()
        return r.status, dict(r.getheaders())
    finally:
        conn.close()


def test_chunked_body(stack):
    """A body sent in chunks without a Content-Length grows past the first buffer and is read
    whole (a Response after 100 KB of other fields is accepted); past 256 KiB it is 413."""
    gw, idp = stack
    factory = idp.factory(SP_ENTITY, gw.acs, sp_enc_cert=gw.sp_cert)
    b64 = factory.build(in_response_to=start_request(gw, idp)).b64
    body = b"pad=" + b"x" * 100000 + b"&SAMLResponse=" + urllib.parse.quote(b64, safe="").encode()
    status, headers = _chunked_post(gw, body)
    assert status == 303, status
    status, _ = _chunked_post(gw, b"SAMLResponse=" + b"A" * (257 * 1024))
    assert status == 413, status


# (case, the POST body, its Content-Type); "{}" stands for a valid Response's base64, which
# the control posts as it is.
BAD_REQUESTS = [
    ("no_saml_response", "RelayState=%2F", None),
    ("not_base64", "SAMLResponse={}%2A", None),
    ("bad_percent_encoding", "SAMLResponse={}&RelayState=%zz", None),
    ("not_a_form", "SAMLResponse={}", "text/plain"),
]


@pytest.mark.parametrize("case,body,ctype", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request(stack, case, body, ctype):
    """A POST to the ACS that carries no readable SAMLResponse (the form or its base64)."""
    gw, idp = stack
    factory = idp.factory(SP_ENTITY, gw.acs, sp_enc_cert=gw.sp_cert)

    def send(text, content_type):
        b64 = factory.build(in_response_to=start_request(gw, idp)).b64
        data = text.format(urllib.parse.quote(b64, safe="")).encode()
        return samltest.Browser().post(gw.acs, data, follow=False, headers={
            "Content-Type": content_type or "application/x-www-form-urlencoded"})

    accepted(send("SAMLResponse={}", None))
    refused_with(gw, send(body, ctype), "bad_request")
