#!/usr/bin/python3
"""Seeds for fuzz_slo.c in tests/fuzz/corpus/slo: logout messages of the fixed IdP of
tests/fuzz/acs/ (its key signs them), timed around 2030-01-01T00:00:30Z (the target's
clock), in each form the target's first byte selects (see fuzz_slo.c): XML signed and
unsigned, base64, and the Redirect binding's raw DEFLATE + base64.
Run: /usr/bin/python3 tests/fuzz/make_slo_seeds.py"""
import base64
import hashlib
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "idp"))
import samltest  # noqa: E402
from lxml import etree  # noqa: E402

ACS = HERE / "acs"
OUT = HERE / "corpus" / "slo"
IDP = "https://idp.example.org/idp/shibboleth"
SP = "https://chat.example.org/saml/metadata"
SLO = "https://chat.example.org/saml/slo"
NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
      "saml": "urn:oasis:names:tc:SAML:2.0:assertion"}
REQUEST, REDIRECT, XML = 1, 2, 4


def message(request, n):
    tag = "LogoutRequest" if request else "LogoutResponse"
    root = etree.Element("{%s}%s" % (NS["samlp"], tag), nsmap=NS)
    root.set("ID", "_slo%02d" % n)
    root.set("Version", "2.0")
    root.set("IssueInstant", "2030-01-01T00:00:30Z")
    root.set("Destination", SLO)
    if not request:
        root.set("InResponseTo", "_pending")
    etree.SubElement(root, "{%s}Issuer" % NS["saml"]).text = IDP
    if request:
        root.set("NotOnOrAfter", "2030-01-01T00:05:00Z")
        nid = etree.SubElement(root, "{%s}NameID" % NS["saml"], NameQualifier=IDP,
                               SPNameQualifier=SP,
                               Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient")
        nid.text = "_transient-alice"
        etree.SubElement(root, "{%s}SessionIndex" % NS["samlp"]).text = "_session1"
    else:
        st = etree.SubElement(root, "{%s}Status" % NS["samlp"])
        etree.SubElement(st, "{%s}StatusCode" % NS["samlp"],
                         Value="urn:oasis:names:tc:SAML:2.0:status:Success")
    return root


def signed(root):
    return samltest.tostring(samltest.sign_element(root, root, ACS / "idp-key.pem",
                                                   ACS / "idp-cert.pem"))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    seeds = []
    for n, request in enumerate((True, False)):
        xml_signed = signed(message(request, n))
        xml_plain = etree.tostring(message(request, n + 10))
        kind = REQUEST if request else 0
        seeds += [bytes([kind | XML]) + xml_signed,
                  bytes([kind | XML]) + xml_plain,
                  bytes([kind]) + base64.b64encode(xml_signed)]
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        seeds.append(bytes([kind | REDIRECT]) +
                     base64.b64encode(c.compress(xml_plain) + c.flush()))
    seeds += [b"\x05<samlp:LogoutRequest/>", b"\x03not base64!", b"\x00"]
    for s in seeds:
        (OUT / hashlib.sha1(s).hexdigest()).write_bytes(s)
    print("%d seeds in %s" % (len(seeds), OUT))


if __name__ == "__main__":
    main()
