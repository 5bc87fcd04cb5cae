#!/usr/bin/python3
"""Makes the ACS fuzz target's fixed SP and IdP (keys, IdP metadata, samlgw.conf) in this
folder when missing, and seeds tests/fuzz/corpus/acs with Responses from the test IdP's
ResponseFactory: valid ones (signed in each way, encrypted with each cipher and key placement, friendly
names, unsolicited, base64 form values) and attacks (XSW shapes, stripped or broken
signatures, SHA-1, DTDs, duplicate IDs, a foreign key, bad times and conditions).

Every time in them is fixed around 2030-01-01T00:00:00Z, the clock fuzz_acs.c runs at, so
the valid ones stay valid. Run: /usr/bin/python3 tests/fuzz/acs/make_corpus.py [CASE...]
(only the named cases when given)."""
import datetime
import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "tests" / "idp"))
import samltest  # noqa: E402

IDP = "https://idp.example.org/idp/shibboleth"
SP = "https://chat.example.org/saml/metadata"
ACS = "https://chat.example.org/saml/acs"
T0 = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
CORPUS = REPO / "tests" / "fuzz" / "corpus" / "acs"

METADATA = """<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
    xmlns:shibmd="urn:mace:shibboleth:metadata:1.0"
    xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" entityID="{idp}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:Extensions>
      <shibmd:Scope regexp="false">example.org</shibmd:Scope>
      <shibmd:Scope regexp="true">[a-z]+\\.dept\\.example\\.org</shibmd:Scope>
      <mdui:UIInfo><mdui:DisplayName xml:lang="en">Fuzz IdP</mdui:DisplayName></mdui:UIInfo>
    </md:Extensions>
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="https://idp.example.org/idp/profile/SAML2/Redirect/SSO"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""

CONFIG = """; samlgw settings for tests/fuzz/fuzz_acs.c (paths relative to this file)
[http]
public_url = https://chat.example.org

[saml]
entity_id = {sp}
key = sp-key.pem
cert = sp-cert.pem
idp_metadata = idp-metadata.xml

[web]
templates = ../../../templates

[domain example.org]
idp = {idp}
scope = example.org
"""


def setup():
    sp_key, sp_cert = samltest.make_keypair(HERE, "sp")
    idp_key, idp_cert = samltest.make_keypair(HERE, "idp")
    md = HERE / "idp-metadata.xml"
    if not md.exists():
        md.write_text(METADATA.format(idp=IDP, cert=samltest.cert_base64(idp_cert)))
    conf = HERE / "samlgw.conf"
    if not conf.exists():
        conf.write_text(CONFIG.format(idp=IDP, sp=SP))
    return sp_cert, idp_key, idp_cert


def t(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def main():
    sp_cert, idp_key, idp_cert = setup()
    f = samltest.ResponseFactory(idp_key, idp_cert, IDP, SP, ACS, sp_enc_cert=sp_cert)
    times = dict(issue_instant=t(0), authn_instant=t(-10), not_before=t(-5),
                 not_on_or_after=t(3600), subject_not_on_or_after=t(3600))
    rogue_key, rogue_cert = samltest.make_keypair(CORPUS.parent.parent / "acs", "rogue")

    def evil_extensions(root):
        a = samltest.find(root, "saml:Assertion")
        evil = samltest.parse(samltest.tostring(a))
        samltest.strip_signatures(evil)
        evil.set("ID", "_evil")
        ext = root.makeelement(samltest.SAMLP + "Extensions", {})
        ext.append(evil)
        root.insert(1, ext)
        return root

    def tamper(root):
        for v in root.iter(samltest.SAML + "AttributeValue"):
            if v.text and v.text.startswith("alice@"):
                v.text = "mallory@example.org"
        return root

    cases = {
        "valid-both": {},
        "valid-response": dict(sign="response"),
        "valid-assertion": dict(sign="assertion"),
        "valid-unsolicited": dict(in_response_to=None),
        "valid-friendly": dict(attribute_names="friendly"),
        "valid-regexp-scope": dict(attrs={"eduPersonScopedAffiliation": "staff@cs.dept.example.org"}),
        "valid-uid": dict(attrs={"eduPersonPrincipalName": None, "uid": "Carol"}),
        "valid-one-time-use": dict(one_time_use=True, audience=[SP, "https://other.example/"]),
        "enc-aes128-cbc": dict(encrypt=True),
        "enc-aes256-gcm": dict(encrypt=True, data_alg="aes256-gcm"),
        "enc-rsa15-assertion-only": dict(encrypt=True, sign="assertion", key_alg="rsa-1_5"),
        "enc-corrupt": dict(encrypt=True, corrupt_encryption=True),
        "enc-retrieval-method": dict(sign="assertion", after_sign=lambda r: samltest.xmlenc_assertion(
            r, sp_cert, place="retrieval")),
        "enc-gcm-label-two-keys": dict(sign="assertion", after_sign=lambda r: samltest.xmlenc_assertion(
            r, sp_cert, data_alg="aes192-gcm", label=b"label", keys=[rogue_cert, sp_cert])),
        "enc-bad-padding": dict(sign="assertion", after_sign=lambda r: samltest.xmlenc_assertion(
            r, sp_cert, pad=lambda d: d + bytes(16 - len(d) % 16))),
        "attack-second-assertion": dict(sign="assertion",
                                        second_assertion={"user": "mallory", "sign_assertion": False}),
        "attack-second-first": dict(sign="assertion", second_first=True,
                                    second_assertion={"user": "mallory", "sign_assertion": False}),
        "attack-extensions": dict(sign="assertion", after_sign=evil_extensions),
        "attack-stripped": dict(after_sign=samltest.strip_signatures),
        "attack-tampered": dict(after_sign=tamper),
        "attack-rogue-key": dict(signing_key=(rogue_key, rogue_cert)),
        "attack-sha1": dict(sig_alg="rsa-sha1", digest_alg="sha1"),
        "attack-dtd": dict(doctype='<!DOCTYPE samlp:Response [<!ENTITY x "y">]>'),
        "attack-duplicate-id": dict(sign="assertion", after_sign=lambda r: (
            r.set("ID", samltest.find(r, "saml:Assertion").get("ID")), r)[1]),
        "bad-audience": dict(audience="https://other.example/"),
        "bad-condition": dict(extra_condition=True),
        "bad-recipient": dict(recipient="https://evil.example/acs"),
        "bad-expired": dict(not_on_or_after=t(-600)),
        "bad-status": dict(status=samltest.STATUS_RESPONDER),
        "bad-scope": dict(attrs={"eduPersonPrincipalName": "alice@evil.example"}),
        "bad-localpart": dict(attrs={"eduPersonPrincipalName": "al/ice@example.org"}),
    }
    CORPUS.mkdir(parents=True, exist_ok=True)
    only = set(sys.argv[1:])
    for name, knobs in cases.items():
        if only and name not in only:
            continue
        k = dict(times, in_response_to="_fuzz_request_0001", response_id="_r-" + name,
                 assertion_id="_a-" + name, session_index="_s1", name_id="_nameid-" + name)
        k.update(knobs)
        built = f.build(**k)
        for data in (built.xml,) + ((built.b64.encode(),) if name in ("valid-both", "enc-aes128-cbc")
                                    else ()):
            (CORPUS / hashlib.sha1(data).hexdigest()).write_bytes(data)
    (HERE / "rogue-key.pem").unlink()
    (HERE / "rogue-cert.pem").unlink()


if __name__ == "__main__":
    main()
