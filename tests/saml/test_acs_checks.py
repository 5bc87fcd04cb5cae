"""One negative test per ACS check (issue 3, points 4 and 5), each next to a positive
control: the same factory settings without the fault are accepted, so no test can pass by
accident. Responses are built by samltest.ResponseFactory as the test IdP (its key), for an
AuthnRequest that samlgw really sent (so InResponseTo is outstanding)."""
import re
import time

import pytest

import samltest
from conftest import SP_ENTITY


def start_request(gw, idp):
    """GET /login without following: the AuthnRequest's ID."""
    b = samltest.Browser()
    page = b.get(gw.url + "/login", params={"idp": idp.entity_id}, follow=False)
    assert page.status == 302, page.text
    msg, _query = samltest.decode_redirect_message(page.location)
    m = re.search(rb'ID="([^"]+)"', msg)
    return m.group(1).decode()


def post(gw, idp, encrypt=False, fresh=True, **knobs):
    factory = idp.factory(SP_ENTITY, gw.acs, sp_enc_cert=gw.sp_cert)
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


# (reason, knobs of the bad response). The control is the same call without the knobs.
CASES = [
    ("status_not_success", dict(status=samltest.STATUS_RESPONDER)),
    ("assertion_count", dict(second_assertion={})),
    ("unsigned", dict(sign="none")),
    ("signature_invalid", dict(after_sign=lambda root: _tamper(root))),
    ("issuer_mismatch", dict(assertion_issuer="https://other.example.org/idp")),
    ("destination", dict(destination="https://evil.example.org/saml/acs")),
    ("destination", dict(destination=None, sign="response")),
    ("in_response_to", dict(in_response_to="_not_outstanding_0123456789")),
    ("unsolicited", dict(in_response_to=None)),
    ("subject_confirmation", dict(confirmation_method=samltest.CM_HOLDER_OF_KEY)),
    ("recipient", dict(recipient="https://evil.example.org/saml/acs")),
    ("confirmation_expired", dict(subject_not_on_or_after=None)),
    ("confirmation_expired", dict(subject_not_on_or_after=-600)),
    ("not_yet_valid", dict(not_before=3600)),
    ("expired", dict(not_on_or_after=-600)),
    ("audience", dict(audience="https://other.example.org/sp")),
    ("audience", dict(conditions=False)),
    ("unknown_condition", dict(extra_condition=True)),
    ("no_authn_statement", dict(authn_statement=False)),
    ("sha1", dict(sig_alg="rsa-sha1", digest_alg="sha1")),
    ("dtd", dict(doctype=True)),
    ("decryption_failed", dict(encrypt=True, corrupt_encryption=True)),
    ("scope", dict(attrs={"eduPersonPrincipalName": "alice@evil.example.net"})),
    ("scope", dict(attrs={"eduPersonPrincipalName": "alice@x@example.org"})),
    ("scope", dict(attrs={"eduPersonScopedAffiliation": "member@evil.example.net"})),
    ("no_domain", dict(attrs={"eduPersonPrincipalName": None})),
    ("localpart", dict(attrs={"eduPersonPrincipalName": "al/ice@example.org"})),
]


def _tamper(root):
    """Change signed content after signing (the ePPN of the assertion)."""
    for v in root.iter(samltest.SAML + "AttributeValue"):
        if v.text and v.text.startswith("alice@"):
            v.text = "bob@example.org"
    return root


@pytest.mark.parametrize("reason,knobs", CASES, ids=[c[0] for c in CASES])
def test_check(stack, reason, knobs):
    gw, idp = stack
    control = {k: v for k, v in knobs.items() if k in ("encrypt",)}
    accepted(post(gw, idp, **control)[0])
    page, _ = post(gw, idp, **knobs)
    refused_with(gw, page, reason)


def test_replay(stack):
    gw, idp = stack
    factory = idp.factory(SP_ENTITY, gw.acs, sp_enc_cert=gw.sp_cert)
    built = factory.build(in_response_to=start_request(gw, idp))
    accepted(samltest.Browser().post(gw.acs, built.form, follow=False))
    # The same assertion again, for a new outstanding request: the Response is re-signed.
    again = factory.build(in_response_to=start_request(gw, idp),
                          assertion_id=built.assertion_id)
    refused_with(gw, samltest.Browser().post(gw.acs, again.form, follow=False), "replay")


def test_request_consumed_once(stack):
    gw, idp = stack
    rid = start_request(gw, idp)
    accepted(post(gw, idp, in_response_to=rid)[0])
    refused_with(gw, post(gw, idp, in_response_to=rid)[0], "in_response_to")


def test_unknown_idp(stack, tmp_path):
    gw, idp = stack
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


def test_encrypted_accepted(stack):
    gw, idp = stack
    accepted(post(gw, idp, encrypt=True)[0])
    accepted(post(gw, idp, encrypt=True, sign="assertion")[0])


def test_body_cap(stack):
    gw, idp = stack
    page = samltest.Browser().post(gw.acs, {"SAMLResponse": "A" * (300 * 1024)}, follow=False)
    assert page.status == 413
