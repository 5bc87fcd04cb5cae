"""EncryptedAssertion decryption (samlgw/xmlenc.c) through the ACS: each odd or broken
variant next to its control (the same encryption without the fault is accepted). The
Responses are signed on the assertion only, then encrypted by hand with
samltest.xmlenc_assertion, so any part of the XML Encryption can be altered. The Response
itself is not signed, so AES-CBC needs saml.allow_unsigned_cbc, which stack_cbc sets (the
default refusal is tested in test_acs_checks.py)."""
import pytest

import samltest
from conftest import accepted, post, refused_with

XENC = samltest.NS["xenc"]


def flip(i):
    def f(b):
        b = bytearray(b)
        b[i] ^= 0x01
        return bytes(b)
    return f


def zero_pad(data):
    return data + b"\x00" * (16 - len(data) % 16)


def pad_17(data):
    n = 16 - len(data) % 16
    return data + bytes([17]) * n


def enc_post(gw, idp, attrs=None, **enc):
    knobs = {"attrs": attrs} if attrs else {}
    return post(gw, idp, sign="assertion",
                after_sign=lambda root: samltest.xmlenc_assertion(root, gw.sp_cert, **enc),
                **knobs)[0]


@pytest.fixture(scope="module")
def other_cert(tmp_path_factory):
    return samltest.make_keypair(tmp_path_factory.mktemp("other"), "other")[1]


ACCEPTED = {
    "aes128-cbc": {}, "aes192-cbc": dict(data_alg="aes192-cbc"),
    "aes256-cbc": dict(data_alg="aes256-cbc"), "aes128-gcm": dict(data_alg="aes128-gcm"),
    "aes192-gcm": dict(data_alg="aes192-gcm"), "aes256-gcm": dict(data_alg="aes256-gcm"),
    "no-digest-method": dict(digest_element=False),
    "oaep-label": dict(label=b"samlgw label"),
    "type-content": dict(data_type=XENC + "Content"),
    "retrieval-method": dict(place="retrieval"),
    "base64-one-line": dict(wrap=0),
    "base64-short-lines": dict(wrap=7),
    "cbc-any-padding-bytes": dict(pad=lambda d: d + b"\xff" * (15 - len(d) % 16) +
                                  bytes([16 - len(d) % 16])),
}


@pytest.mark.parametrize("knobs", ACCEPTED.values(), ids=list(ACCEPTED))
def test_accepted(stack_cbc, knobs):
    gw, idp = stack_cbc
    accepted(enc_post(gw, idp, **knobs))


def test_two_keys_first_for_another_recipient(stack_cbc, other_cert):
    gw, idp = stack_cbc
    accepted(enc_post(gw, idp, keys=[other_cert, gw.sp_cert]))
    accepted(enc_post(gw, idp, keys=[other_cert, gw.sp_cert], place="retrieval"))
    refused_with(gw, enc_post(gw, idp, keys=[other_cert, other_cert]), "decryption_failed")


def test_at_most_four_keys(stack_cbc, other_cert):
    gw, idp = stack_cbc
    accepted(enc_post(gw, idp, keys=[other_cert] * 3 + [gw.sp_cert]))
    line = refused_with(gw, enc_post(gw, idp, keys=[other_cert] * 4 + [gw.sp_cert]),
                        "decryption_failed")
    assert "too many EncryptedKeys" in line, line


# (name, knobs, text the log's detail holds)
REFUSED = [
    ("wrong-key", dict(keys=["OTHER"]), "does not decrypt with the SP key"),
    ("rsa-ciphertext-changed", dict(tamper_key=flip(10)), "does not decrypt with the SP key"),
    ("label-changed", dict(label=b"x", tamper_label=True), "does not decrypt with the SP key"),
    ("truncated-cbc", dict(tamper=lambda b: b[:-5]), "not whole blocks"),
    ("truncated-cbc-block", dict(tamper=lambda b: b[:-16]), "AES-CBC"),
    ("truncated-gcm", dict(data_alg="aes128-gcm", tamper=lambda b: b[:-1]), "AES-GCM tag"),
    ("gcm-too-short", dict(data_alg="aes128-gcm", tamper=lambda b: b[:27]), "too short"),
    ("gcm-bad-tag", dict(data_alg="aes256-gcm", tamper=flip(-1)), "AES-GCM tag"),
    ("gcm-changed-ciphertext", dict(data_alg="aes128-gcm", tamper=flip(40)), "AES-GCM tag"),
    ("gcm-changed-iv", dict(data_alg="aes128-gcm", tamper=flip(0)), "AES-GCM tag"),
    ("cbc-pad-zero", dict(pad=zero_pad), "padding"),
    ("cbc-pad-17", dict(pad=pad_17), "padding"),
    ("base64-broken", dict(cipher_text="!!not base64!!"), "not base64"),
    ("key-wrong-size", dict(sym=b"12345678"), "wrong size"),
    ("rsa-1_5", dict(key_alg="rsa-1_5"), "not RSA-OAEP"),
    ("xmlenc11-rsa-oaep", dict(key_alg="rsa-oaep"), "not supported"),
    ("oaep-sha256-digest", dict(digest="sha256"), "not SHA-1"),
    ("tripledes", dict(data_alg=XENC + "tripledes-cbc"), "not AES-GCM or AES-CBC"),
    ("aes-key-wrap", dict(data_alg="http://www.w3.org/2001/04/xmlenc#kw-aes128"),
     "not AES-GCM or AES-CBC"),
    ("type-absent", dict(data_type=None), "not XML"),
    ("type-other", dict(data_type="http://www.w3.org/2001/04/xmlenc#EncryptedKey"), "not XML"),
    ("retrieval-elsewhere", dict(place="elsewhere"), "RetrievalMethod"),
    ("plaintext-not-xml", dict(plain=b"hello, world"), "not one element"),
    ("plaintext-two-elements", dict(plain="TWICE"), "not one element"),
    ("plaintext-entity", dict(plain=b'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:'
                              b'assertion">&xxe;</saml:Assertion>'), "not well-formed"),
    ("plaintext-doctype", dict(plain=b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                               b'<x>&xxe;</x>'), "not well-formed"),
    ("plaintext-xml-declaration", dict(plain="DECLARATION"), "not well-formed"),
    ("plaintext-not-assertion", dict(plain=b'<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:'
                                     b'2.0:assertion">x</saml:Issuer>'), "not one Assertion"),
]


def _shape(root, fn):
    """Apply fn to the EncryptedAssertion after xmlenc_assertion made it."""
    fn(samltest.find(root, "saml:EncryptedAssertion"))
    return root


@pytest.mark.parametrize("name,knobs,detail", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused(stack_cbc, other_cert, name, knobs, detail):
    gw, idp = stack_cbc
    knobs = dict(knobs)
    if knobs.get("keys") == ["OTHER"]:
        knobs["keys"] = [other_cert]
    if "tamper_key" in knobs:
        knobs["tamper"] = None
        key_tamper = knobs.pop("tamper_key")
    else:
        key_tamper = None
    if knobs.pop("tamper_label", False):
        knobs["label"] = b"x"
    plain = knobs.get("plain")

    def hook(root):
        a = samltest.find(root, "saml:Assertion")
        kw = dict(knobs)
        if plain == "TWICE":
            kw["plain"] = samltest.etree.tostring(a) * 2
        elif plain == "DECLARATION":
            kw["plain"] = b"<?xml version='1.0' encoding='UTF-8'?>" + samltest.etree.tostring(a)
        if key_tamper is not None:
            kw.pop("tamper", None)
            root = samltest.xmlenc_assertion(root, gw.sp_cert, **kw)
            cv = root.find(".//{%s}EncryptedKey/{%s}CipherData/{%s}CipherValue" % (XENC, XENC, XENC))
            raw = samltest.base64.b64decode(cv.text)
            cv.text = samltest.base64.b64encode(key_tamper(raw)).decode()
            return root
        if name == "label-changed":
            root = samltest.xmlenc_assertion(root, gw.sp_cert, **kw)
            p = root.find(".//{%s}OAEPparams" % XENC)
            p.text = samltest.base64.b64encode(b"y").decode()
            return root
        return samltest.xmlenc_assertion(root, gw.sp_cert, **kw)

    # The control: the same encryption without the fault.
    accepted(enc_post(gw, idp, data_alg=knobs.get("data_alg", "aes128-cbc")
                      if knobs.get("data_alg", "aes128-cbc") in samltest.XMLENC_DATA
                      else "aes128-cbc"))
    page = post(gw, idp, sign="assertion", after_sign=hook)[0]
    line = refused_with(gw, page, "decryption_failed")
    assert detail in line, line


STRUCTURE = [
    ("no-encrypted-data", lambda ea: [ea.remove(c) for c in list(ea)], "no EncryptedData"),
    ("two-encrypted-data", lambda ea: ea.append(samltest.etree.fromstring(
        samltest.etree.tostring(ea[0]))), "more than one EncryptedData"),
    ("foreign-element", lambda ea: ea.append(samltest.etree.Element("{urn:x}y")),
     "more than one EncryptedData"),
    ("no-key-info", lambda ea: ea[0].remove(ea[0].find("{%s}KeyInfo" % samltest.NS["ds"])),
     "no KeyInfo"),
    ("cipher-reference", lambda ea: _cipher_reference(ea), "CipherReference"),
    ("encryption-method-child", lambda ea: samltest.etree.SubElement(
        ea[0].find("{%s}EncryptionMethod" % XENC), "{%s}KeySize" % XENC), "holds an element"),
    ("retrieval-missing", lambda ea: ea[0].find(".//{%s}RetrievalMethod" % samltest.NS["ds"])
     .set("URI", "#_nowhere"), "RetrievalMethod"),
    ("retrieval-transforms", lambda ea: samltest.etree.SubElement(
        ea[0].find(".//{%s}RetrievalMethod" % samltest.NS["ds"]),
        "{%s}Transforms" % samltest.NS["ds"]), "Transforms"),
    ("retrieval-wrong-type", lambda ea: ea[0].find(".//{%s}RetrievalMethod" % samltest.NS["ds"])
     .set("Type", "http://www.w3.org/2000/09/xmldsig#X509Data"), "Type"),
    ("retrieval-to-encrypted-data", lambda ea: _retrieve_data(ea), "RetrievalMethod"),
]


def _cipher_reference(ea):
    cd = ea[0].find("{%s}CipherData" % XENC)
    for c in list(cd):
        cd.remove(c)
    samltest.etree.SubElement(cd, "{%s}CipherReference" % XENC).set("URI", "http://x/")


def _retrieve_data(ea):
    ea[0].set("Id", "_data")
    ea[0].find(".//{%s}RetrievalMethod" % samltest.NS["ds"]).set("URI", "#_data")


@pytest.mark.parametrize("name,fn,detail", STRUCTURE, ids=[s[0] for s in STRUCTURE])
def test_structure_refused(stack_cbc, name, fn, detail):
    gw, idp = stack_cbc
    place = "retrieval" if name.startswith("retrieval") else "keyinfo"
    accepted(enc_post(gw, idp, place=place))
    page = post(gw, idp, sign="assertion", after_sign=lambda root: _shape(
        samltest.xmlenc_assertion(root, gw.sp_cert, place=place), fn))[0]
    line = refused_with(gw, page, "decryption_failed")
    assert detail in line, line


def test_plaintext_is_utf8_in_a_latin1_response(stack_cbc):
    """XML Encryption serialises the assertion in UTF-8, whatever the Response declares."""
    gw, idp = stack_cbc

    def hook(root):
        a = samltest.find(root, "saml:Assertion")
        plain = samltest.etree.tostring(a, encoding="unicode").encode("utf-8")
        root = samltest.xmlenc_assertion(root, gw.sp_cert, plain=plain)
        return samltest.etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)

    page = post(gw, idp, sign="assertion", attrs={"displayName": "J\u00fcrgen Gro\u00df"},
                after_sign=hook)[0]
    accepted(page)


def _tamper_then_encrypt(gw, data_alg):
    def f(root):
        for v in root.iter(samltest.SAML + "AttributeValue"):
            if v.text and v.text.startswith("alice@"):
                v.text = "bob@example.org"  # after signing: the signature no longer holds
        return samltest.xmlenc_assertion(root, gw.sp_cert, data_alg=data_alg)
    return f


def test_unsigned_cbc_refusals_read_alike_until_the_signature_holds(stack_cbc):
    """With saml.allow_unsigned_cbc, an AES-CBC assertion of an unsigned Response is
    decrypted before any signature covers it; until the assertion's signature verifies,
    every refusal reads as decryption_failed (the log line keeps the real reason), so the
    page does not tell whether changed ciphertext decrypted to well-formed XML. Controls:
    the same with AES-GCM shows the real reason; after the signature holds, reasons are
    the checks' own again."""
    gw, idp = stack_cbc
    accepted(enc_post(gw, idp))
    line = refused_with(gw, post(gw, idp, sign="assertion",
                                 after_sign=_tamper_then_encrypt(gw, "aes128-cbc"))[0],
                        "decryption_failed")
    assert "assertion signature" in line, line
    refused_with(gw, post(gw, idp, sign="assertion",
                          after_sign=_tamper_then_encrypt(gw, "aes128-gcm"))[0],
                 "signature_invalid")
    refused_with(gw, post(gw, idp, sign="assertion", audience="https://other.example.org/sp",
                          after_sign=lambda root: samltest.xmlenc_assertion(root, gw.sp_cert))[0],
                 "audience")
