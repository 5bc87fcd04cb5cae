"""samlgw with several IdPs and domains (conftest.stack_multi): attributes to identity
(issue 3, point 5) and the ACS checks whose outcome depends on configuration, each
negative test next to a positive control; and the signed HTTP-Redirect AuthnRequest an IdP
with WantAuthnRequestsSigned gets (RSA-SHA256, verified here and by the IdP)."""
import base64
import re
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

import samltest
from conftest import SP_ENTITY, accepted, post, refused_with

EPPN_OID = samltest.ATTRIBUTE_OIDS["eduPersonPrincipalName"]
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def jid_of(gw, page):
    """The JID of the login that page (the ACS's answer) completed."""
    accepted(page)
    line = gw.log_lines("login_ok")[-1]
    return re.search(r" jid=(\S+)", line).group(1)


def rename_attribute(old, new, friendly=None):
    """A before_sign hook: the Attribute named old gets Name new (and FriendlyName)."""
    def hook(root):
        for a in root.iter(samltest.SAML + "Attribute"):
            if a.get("Name") == old:
                a.set("Name", new)
                if friendly is not None:
                    a.set("FriendlyName", friendly)
        return root
    return hook


# ------------------------------------------------------------------ point 5: scopes


def test_scope_regexp(stack_multi):
    s = stack_multi
    assert jid_of(s.gw, post(s.gw, s.idp)[0]) == "alice@example.org"
    # shibmd:Scope regexp="true" [a-z]+\.dept\.example\.org, matched whole
    accepted(post(s.gw, s.idp, attrs={"eduPersonScopedAffiliation": "member@cs.dept.example.org"})[0])
    for bad in ("member@dept.example.org", "member@cs.dept.example.org.evil.net",
                "member@evil.net/cs.dept.example.org"):
        refused_with(s.gw, post(s.gw, s.idp, attrs={"eduPersonScopedAffiliation": bad})[0],
                     "scope")


def test_scope_literal_is_case_insensitive_and_exact(stack_multi):
    s = stack_multi
    accepted(post(s.gw, s.idp, attrs={"eduPersonScopedAffiliation": "member@SUB.Example.org"})[0])
    refused_with(s.gw, post(s.gw, s.idp,
                            attrs={"eduPersonScopedAffiliation": "member@xsub.example.org"})[0],
                 "scope")


def test_scope_exactly_one_at(stack_multi):
    s = stack_multi
    accepted(post(s.gw, s.idp)[0])
    for bad in ("alice@x@example.org", "alice", "@example.org", "alice@"):
        refused_with(s.gw, post(s.gw, s.idp, attrs={"eduPersonPrincipalName": bad})[0], "scope")


def test_scope_of_another_idp_refused(stack_multi):
    """sub.example.org is the test IdP's scope, not the mail IdP's."""
    s = stack_multi
    accepted(post(s.gw, s.mail)[0])
    refused_with(s.gw, post(s.gw, s.mail,
                            attrs={"eduPersonPrincipalName": "alice@sub.example.org"})[0], "scope")


# ------------------------------------------------------------------ point 5: domains


def test_domain_chosen_by_idp_and_scope(stack_multi):
    s = stack_multi
    assert jid_of(s.gw, post(s.gw, s.idp)[0]) == "alice@example.org"
    assert jid_of(s.gw, post(s.gw, s.idp, scope="sub.example.org")[0]) == "alice@sub.example.org"
    assert jid_of(s.gw, post(s.gw, s.mail)[0]) == "alice@mail.example.org"
    # example.org is a shibmd:Scope of the mail IdP, but [domain example.org] does not list
    # that IdP: no domain.
    refused_with(s.gw, post(s.gw, s.mail, scope="example.org")[0], "no_domain")


def test_idp_not_bound(stack_multi):
    s = stack_multi
    accepted(post(s.gw, s.mail)[0])
    page = post(s.gw, s.unbound)[0]
    refused_with(s.gw, page, "idp_not_bound")
    assert "not connected to any chat domain" in page.text
    assert s.unbound.idp in page.text


# ------------------------------------------------------------------ point 5: localpart


def test_localpart_from_configured_attribute(stack_multi):
    """[domain mail.example.org] has localpart = mail: the eppn does not name the user."""
    s = stack_multi
    page = post(s.gw, s.mail, attrs={"eduPersonPrincipalName": "bob@mail.example.org",
                                     "mail": "Carol.Smith@mail.example.org"})[0]
    assert jid_of(s.gw, page) == "carol.smith@mail.example.org"
    refused_with(s.gw, post(s.gw, s.mail, attrs={"mail": None})[0], "no_domain")


def test_localpart_scope_must_be_the_idps(stack_multi):
    """[domain mail.example.org] lists both IdPs with localpart = mail: only the IdP whose
    shibmd:Scope holds mail.example.org may name its users, although mail is unscoped."""
    s = stack_multi
    mail_only = {"eduPersonPrincipalName": None, "eduPersonScopedAffiliation": None,
                 "subject-id": None, "mail": "carol@mail.example.org"}
    page = post(s.gw, s.mail, attrs=mail_only)[0]
    assert jid_of(s.gw, page) == "carol@mail.example.org"
    refused_with(s.gw, post(s.gw, s.idp, attrs=mail_only)[0], "scope")


def test_localpart_lowercased(stack_multi):
    s = stack_multi
    page = post(s.gw, s.idp, attrs={"eduPersonPrincipalName": "Alice.LIDDELL@Example.ORG"})[0]
    assert jid_of(s.gw, page) == "alice.liddell@example.org"


def test_localpart_characters(stack_multi):
    s = stack_multi
    accepted(post(s.gw, s.idp, attrs={"eduPersonPrincipalName": "al.ice-1_x+y@example.org"})[0])
    for bad in ("al/ice", "al:ice", "al'ice", "al ice", "al&ice", 'al"ice', "al<ice"):
        refused_with(s.gw, post(s.gw, s.idp,
                                attrs={"eduPersonPrincipalName": bad + "@example.org"})[0],
                     "localpart")
    accepted(post(s.gw, s.mail, attrs={"mail": "carol@mail.example.org"})[0])
    refused_with(s.gw, post(s.gw, s.mail, attrs={"mail": "car'ol@mail.example.org"})[0],
                 "localpart")


# ------------------------------------------------------------------ point 5: attribute names


def test_attributes_by_oid_name(stack_multi):
    s = stack_multi
    page = post(s.gw, s.idp, attribute_names="oid-no-friendly")[0]
    assert jid_of(s.gw, page) == "alice@example.org"
    # An unknown URI name is another attribute, whatever its FriendlyName says.
    hook = rename_attribute(EPPN_OID, EPPN_OID + ".99", friendly="eduPersonPrincipalName")
    refused_with(s.gw, post(s.gw, s.idp, before_sign=hook)[0], "no_domain")


def test_attributes_by_friendly_name(stack_multi):
    s = stack_multi
    page = post(s.gw, s.idp, attribute_names="friendly")[0]
    assert jid_of(s.gw, page) == "alice@example.org"
    hook = rename_attribute("eduPersonPrincipalName", "eduPersonPrincipalNameX")
    refused_with(s.gw, post(s.gw, s.idp, attribute_names="friendly", before_sign=hook)[0],
                 "no_domain")


def test_scope_checked_by_friendly_name_too(stack_multi):
    s = stack_multi
    accepted(post(s.gw, s.idp, attribute_names="friendly")[0])
    refused_with(s.gw, post(s.gw, s.idp, attribute_names="friendly",
                            attrs={"eduPersonScopedAffiliation": "member@evil.example.net"})[0],
                 "scope")


# ------------------------------------------------------------------ point 4, configured


def test_signed_by_the_issuers_key(stack_multi):
    """A key from the metadata of another IdP does not sign for this one."""
    s = stack_multi
    accepted(post(s.gw, s.mail)[0])
    page = post(s.gw, s.mail, issuer=s.idp.entity_id)[0]
    refused_with(s.gw, page, "signature_invalid")


def test_sha1_allowed_when_configured(stack_multi):
    """saml.allow_sha1 = yes here; the default stack refuses the same (sha1 cases)."""
    s = stack_multi
    accepted(post(s.gw, s.idp, sig_alg="rsa-sha1", digest_alg="sha1")[0])
    accepted(post(s.gw, s.idp, sig_alg="rsa-sha1", digest_alg="sha1", encrypt=True)[0])


def test_unsolicited_allowed_when_configured(stack_multi):
    """saml.allow_unsolicited = yes here; the default stack refuses (unsolicited case)."""
    s = stack_multi
    accepted(post(s.gw, s.idp, in_response_to=None)[0])
    accepted(post(s.gw, s.idp, in_response_to=None, encrypt=True)[0])
    # IdP-initiated through the real IdP, ending on the account page.
    page = samltest.Browser().flow(s.idp.unsolicited_url(SP_ENTITY), user="alice",
                                   stop=lambda p: p.status == 200 and p.url == s.gw.url + "/")
    assert page.status == 200 and "alice@example.org" in page.text, page.text[:2000]


def test_clock_skew_configured(stack_multi):
    """clock_skew = 30 here: 120 s early or late is refused (the default stack, 180 s,
    accepts it: test_acs_checks.test_clock_skew_default)."""
    s = stack_multi
    accepted(post(s.gw, s.idp, not_before=20)[0])
    refused_with(s.gw, post(s.gw, s.idp, not_before=120)[0], "not_yet_valid")
    refused_with(s.gw, post(s.gw, s.idp, not_on_or_after=-120)[0], "expired")
    refused_with(s.gw, post(s.gw, s.idp, subject_not_on_or_after=-120)[0],
                 "confirmation_expired")


# ------------------------------------------------------------------ signed AuthnRequests


def test_authn_request_signed_rsa_sha256(stack_multi):
    """The test IdP says WantAuthnRequestsSigned: the Redirect-binding request carries
    SigAlg RSA-SHA256 and a signature by the SP key over the query as sent."""
    s = stack_multi
    page = samltest.Browser().get(s.gw.url + "/login", params={"idp": s.idp.entity_id},
                                  follow=False)
    assert page.status == 302, s.gw.log()[-3000:]
    raw = urllib.parse.urlsplit(page.location).query
    parts = dict(p.split("=", 1) for p in raw.split("&"))
    assert urllib.parse.unquote_plus(parts["SigAlg"]) == RSA_SHA256
    signed = "&".join("%s=%s" % (k, parts[k]) for k in ("SAMLRequest", "RelayState", "SigAlg")
                      if k in parts).encode()
    signature = base64.b64decode(urllib.parse.unquote_plus(parts["Signature"]))
    cert = x509.load_pem_x509_certificate(open(s.gw.sp_cert, "rb").read())
    cert.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    tampered = signed.replace(b"SigAlg=", b"SigAlg=x")
    try:
        cert.public_key().verify(signature, tampered, padding.PKCS1v15(), hashes.SHA256())
        raise AssertionError("a tampered query verified")
    except Exception as e:  # cryptography's InvalidSignature
        assert type(e).__name__ == "InvalidSignature"


def test_login_through_idp_wanting_signed_requests(stack_multi):
    """The IdP checks the signature itself and refuses unsigned requests."""
    s = stack_multi
    b = samltest.Browser()
    page = b.flow(s.gw.url + "/login?" + urllib.parse.urlencode({"idp": s.idp.entity_id}),
                  user="alice", stop=lambda p: p.status == 200 and p.url == s.gw.url + "/")
    assert page.status == 200 and "alice@example.org" in page.text, page.text[:2000]
    unsigned = samltest.Browser().get(s.idp.sso_url, params={
        "SAMLRequest": urllib.parse.parse_qs(urllib.parse.urlsplit(
            samltest.Browser().get(s.gw.url + "/login", params={"idp": s.idp.entity_id},
                                   follow=False).location).query)["SAMLRequest"][0]},
        follow=False)
    assert unsigned.status >= 400
