"""The attack generator: valid IdP responses in, attacks out.

Every attack starts from a valid Response answering an AuthnRequest samlgw really sent, and
is paired with that unmodified Response as its positive control (test_attacks.py posts the
attack first, then the control for the same request: the attack must be refused with its
reason, the control accepted). The valid responses come from:

  idp        the pysaml2 test IdP (an implementation independent of samlgw and lasso), as it
             sent them: Response and assertion signed, RSA-SHA256, exclusive C14N
  idp-a      the same with the Response's signature removed, which anybody can do: the
             assertion alone is signed, and samlgw accepts that too
  factory-r  samltest.ResponseFactory with the test IdP's key, only the Response signed
  factory    ResponseFactory with the test IdP's key (or "partner", "unbound": other IdPs
             of the federation) and knobs: the fault is one the IdP signs itself
             (a misconfigured, malicious or compromised IdP); the control is the same call
             without the fault's knobs

An attack of the first three kinds is a function (root, ctx) -> root or bytes on the parsed
valid Response: what a network attacker, or a user holding their own valid Response, can
do without any IdP key. ctx gives the keys an attack may model (ctx.idp_key, ctx.rogue for
a key that is in no metadata, ctx.partner for another IdP of the federation) and a canary
URL that must never be fetched.

Each Attack names the reason samlgw must log (event=login_refused reason=…) and a piece of
the log line's detail that says which check refused it, so that an attack refused by an
accident (the wrong check) fails its test.

The catalogue of signature wrapping follows Somorovsky et al., "On Breaking SAML: Be Whoever
You Want to Be" (USENIX Security 2012), XSW1-XSW8, as SAML Raider implements them: the
clones keep their IDs where the catalogue keeps them (duplicates, refused before any
signature is read), and an "-unique" variant gives every copy a fresh ID, which is what an
attacker tries next."""
import copy
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable, Optional

from lxml import etree

import samltest
from samltest import DS, NS, SAML, SAMLP

XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
XSL = "http://www.w3.org/1999/XSL/Transform"
CM_SENDER_VOUCHES = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
XI = "http://www.w3.org/2001/XInclude"

# The details samlgw logs (samlgw/acs.c, xmlsig.c, xml.c, attributes.c), by the check that
# refuses.
DUPLICATE_ID = "an ID value is used twice"
NOT_ITS_ELEMENT = "does not point at the element it is in"
DIGEST = "digest does not match"
WRONG_KEY = "does not verify with any of the IdP's signing keys"
TWO_ASSERTIONS = "holds 2 assertions, not exactly one"
NESTED = "assertions outside its top level"
TRANSFORMS = "transforms are not enveloped-signature and one canonicalisation"
DTD = "carries a DTD"
SCOPE = "is not a shibmd:Scope of the IdP"
ONE_AT = "does not hold exactly one '@'"
UNSIGNED = "neither the Response nor the assertion is signed"


@dataclass
class Attack:
    name: str
    group: str
    source: str  # idp | idp-a | factory-r | factory
    reason: str  # expected reason= of the login_refused line
    detail: Optional[str]  # a piece of its detail=
    doc: str
    transform: Optional[Callable] = None  # (root, ctx) -> root | bytes (not "factory")
    # "factory": the attack's and the control's knobs, dicts or functions of ctx giving
    # one; the values "real" and "partner" of signing_key and assertion_issuer name an IdP.
    knobs: object = field(default_factory=dict)
    control: object = field(default_factory=dict)
    issuer: str = "real"  # "factory": which IdP's factory builds it (real, partner, unbound)
    control_issuer: Optional[str] = None  # the control's, when not issuer's
    # The attack's signature still verifies with xmlsec1 and this key ("idp" or "rogue"):
    # samlgw refuses a shape, not a broken signature.
    xmlsec_valid: Optional[str] = None
    canary: bool = False  # the attack names the canary URL: nobody may fetch it

    @property
    def id(self):
        return "%s[%s]" % (self.name, self.source)


# ------------------------------------------------------------------ tree helpers


def response_signature(root):
    return root.find(DS + "Signature")


def assertion(root):
    return root.find(SAML + "Assertion")


def drop(el):
    """Remove el from its parent, keeping the text that followed it in place."""
    parent = el.getparent()
    if el.tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


def unsign(el):
    """el without its own (direct child) ds:Signature."""
    for s in el.findall(DS + "Signature"):
        drop(s)
    return el


def strip_response_signature(root):
    s = response_signature(root)
    if s is not None:
        drop(s)
    return root


def make_evil(el):
    """The attacker (alice) becomes bob: every attribute value naming alice names bob."""
    for v in el.iter(SAML + "AttributeValue"):
        if v.text and "alice" in v.text:
            v.text = v.text.replace("alice", "bob")
    return el


def fresh_ids(el):
    """A fresh ID for el and every element inside it that has one."""
    for e in el.iter():
        if isinstance(e.tag, str) and e.get("ID") is not None:
            e.set("ID", samltest.new_id())
    return el


def after_issuer(root, el):
    root.find(SAML + "Issuer").addnext(el)


def attribute_value(root, name):
    """The first AttributeValue of the attribute called name (friendly or oid)."""
    oid = samltest.ATTRIBUTE_OIDS.get(name, name)
    for a in root.iter(SAML + "Attribute"):
        if a.get("Name") in (name, oid):
            return a.find(SAML + "AttributeValue")
    raise AssertionError("no attribute %s" % name)


# ------------------------------------------------------------------ re-signing


def reference(uri, transforms, digest_alg="sha256"):
    """A ds:Reference (DigestValue empty, xmlsec1 fills it); transforms: Algorithm URIs or
    ready ds:Transform elements."""
    ref = etree.Element(DS + "Reference", nsmap={"ds": NS["ds"]})
    ref.set("URI", uri)
    tr = etree.SubElement(ref, DS + "Transforms")
    for t in transforms:
        if isinstance(t, str):
            etree.SubElement(tr, DS + "Transform").set("Algorithm", t)
        else:
            tr.append(t)
    etree.SubElement(ref, DS + "DigestMethod").set("Algorithm", samltest.DIGEST_ALGS[digest_alg])
    etree.SubElement(ref, DS + "DigestValue")
    return ref


def resign(root, element, key, cert, uri=None, transforms=None, extra_refs=(), objects=(),
           keyinfo_cert=None, patch=None):
    """Replace element's signature by one made with xmlsec1 and key from a template: one
    Reference (URI "#ID" by default), transforms (default enveloped + exclusive C14N), more
    References and ds:Objects as given, KeyInfo with keyinfo_cert (default: cert); patch
    alters the serialised template before xmlsec1 signs it. Returns the new document
    root."""
    unsign(element)
    eid = element.get("ID")
    sig = samltest.signature_template(eid, samltest.cert_base64(keyinfo_cert or cert))
    si = sig.find(DS + "SignedInfo")
    si.remove(si.find(DS + "Reference"))
    si.append(reference("#" + eid if uri is None else uri,
                        transforms or [samltest.ENVELOPED, samltest.C14N_EXC]))
    for r in extra_refs:
        si.append(r)
    for o in objects:
        sig.append(o)
    samltest.insert_signature(element, sig)
    xml = samltest.tostring(root)
    if patch is not None:
        xml = patch(xml)
    return samltest.parse(samltest.xmlsec_sign(xml, key, cert, eid))


def xpath_transform(expr):
    t = etree.Element(DS + "Transform", nsmap={"ds": NS["ds"]})
    t.set("Algorithm", XPATH)
    x = etree.SubElement(t, DS + "XPath")
    x.text = expr
    return t


def declare_saml_on_xpath(xml):
    """xmlsec1 takes an XPath's namespace prefixes from the ds:XPath element itself only
    (lxml drops a declaration there that an ancestor already makes)."""
    return re.sub(rb"<((?:\w+:)?XPath)>", rb'<\1 xmlns:saml="%s">' % NS["saml"].encode(), xml)


def xslt_transform():
    """An XSLT transform whose output is a constant: the digest then covers nothing."""
    t = etree.Element(DS + "Transform", nsmap={"ds": NS["ds"]})
    t.set("Algorithm", XSLT)
    ss = etree.SubElement(t, "{%s}stylesheet" % XSL, nsmap={"xsl": XSL}, version="1.0")
    etree.SubElement(ss, "{%s}output" % XSL, method="text")
    tpl = etree.SubElement(ss, "{%s}template" % XSL, match="/")
    tpl.text = "nothing of the assertion"
    return t


# ------------------------------------------------------------------ XSW1-XSW8


def xsw1(root, ctx, unique=False):
    """The Response's signature, with a copy of the original Response (its own signature
    removed) inside it; the Response around it gets a new ID and the evil assertion."""
    sig = response_signature(root)
    sig.append(unsign(copy.deepcopy(root)))
    root.set("ID", samltest.new_id())
    a = make_evil(unsign(assertion(root)))
    if unique:
        a.set("ID", samltest.new_id())
    return root


def xsw2(root, ctx, unique=False):
    """As XSW1, the copy of the original Response placed before the signature (a detached
    signature's shape)."""
    sig = response_signature(root)
    sig.addprevious(unsign(copy.deepcopy(root)))
    root.set("ID", samltest.new_id())
    a = make_evil(unsign(assertion(root)))
    if unique:
        a.set("ID", samltest.new_id())
    return root


def xsw3(root, ctx):
    """An unsigned evil assertion (new ID) before the signed original."""
    a = assertion(root)
    evil = make_evil(unsign(fresh_ids(copy.deepcopy(a))))
    a.addprevious(evil)
    return root


def xsw4(root, ctx):
    """The evil assertion (new ID, unsigned) in the original's place, the signed original
    inside it."""
    a = assertion(root)
    evil = make_evil(unsign(fresh_ids(copy.deepcopy(a))))
    a.addprevious(evil)
    evil.append(a)
    return root


def xsw5(root, ctx):
    """The signed assertion turned evil (new ID, the signature kept, its Reference naming the
    old ID), and an unsigned copy of the original at the end of the Response."""
    a = assertion(root)
    original = unsign(copy.deepcopy(a))
    root.append(original)
    a.set("ID", samltest.new_id())
    make_evil(a)
    return root


def xsw6(root, ctx):
    """As XSW5, the unsigned copy of the original inside the evil assertion's signature."""
    a = assertion(root)
    original = unsign(copy.deepcopy(a))
    a.find(DS + "Signature").append(original)
    a.set("ID", samltest.new_id())
    make_evil(a)
    return root


def xsw7(root, ctx, unique=False):
    """A samlp:Extensions holding a copy of the signed original; the assertion at the top
    level turned evil (with -unique: under a new ID)."""
    a = assertion(root)
    ext = etree.Element(SAMLP + "Extensions")
    ext.append(copy.deepcopy(a))
    a.addprevious(ext)
    make_evil(a)
    if unique:
        a.set("ID", samltest.new_id())
    return root


def xsw8(root, ctx, unique=False):
    """The assertion turned evil, its signature holding a ds:Object with an unsigned copy
    of the original (with -unique: the evil one under a new ID)."""
    a = assertion(root)
    original = unsign(copy.deepcopy(a))
    obj = etree.SubElement(a.find(DS + "Signature"), DS + "Object")
    obj.append(original)
    make_evil(a)
    if unique:
        a.set("ID", samltest.new_id())
    return root


def _unique(fn):
    return lambda root, ctx: fn(root, ctx, unique=True)


# ------------------------------------------------------------------ other wrapping shapes


def signed_then_unsigned(root, ctx):
    """CVE-2021-28091's shape: the valid signed assertion, then an unsigned evil one."""
    a = assertion(root)
    a.addnext(make_evil(unsign(fresh_ids(copy.deepcopy(a)))))
    return root


def response_signature_into_assertion(root, ctx):
    """The Response's (valid) signature moved into the evil, unsigned assertion."""
    sig = response_signature(root)
    drop(sig)
    a = make_evil(unsign(assertion(root)))
    samltest.insert_signature(a, sig)
    return root


def assertion_signature_onto_response(root, ctx):
    """The assertion's (valid) signature moved up to the Response; the assertion turned
    evil."""
    a = assertion(root)
    sig = a.find(DS + "Signature")
    drop(sig)
    after_issuer(root, sig)
    make_evil(a)
    return root


def duplicate_id_response(root, ctx):
    """The Response takes the signed assertion's ID ("#ID" is then ambiguous)."""
    root.set("ID", assertion(root).get("ID"))
    return root


def duplicate_id_elsewhere(root, ctx):
    """An element in samlp:Extensions with the assertion's ID."""
    ext = etree.Element(SAMLP + "Extensions")
    etree.SubElement(ext, "{urn:example:evil}data", ID=assertion(root).get("ID"))
    after_issuer(root, ext)
    return root


def duplicate_xml_id(root, ctx):
    """An xml:id (libxml2 registers those as IDs while parsing) with the assertion's ID."""
    ext = etree.Element(SAMLP + "Extensions")
    el = etree.SubElement(ext, "{urn:example:evil}data")
    el.set("{http://www.w3.org/XML/1998/namespace}id", assertion(root).get("ID"))
    after_issuer(root, ext)
    return root


# ------------------------------------------------------------------ signatures


def strip_all(root, ctx):
    return samltest.strip_signatures(root)


def strip_all_evil(root, ctx):
    return make_evil(samltest.strip_signatures(root))


def strip_assertion_signature(root, ctx):
    """The assertion's signature removed, the Response's kept."""
    unsign(assertion(root))
    return root


def tamper(root, ctx):
    """The evil change alone, signatures left as they are."""
    return make_evil(root)


def uri_empty(root, ctx):
    """The assertion signed by the IdP's key with Reference URI="" (the whole document)."""
    return resign(root, assertion(root), *ctx.idp_key, uri="")


def two_references(root, ctx):
    """The assertion signed by the IdP's key with a second Reference (to the Response)."""
    second = reference("#" + root.get("ID"), [samltest.ENVELOPED, samltest.C14N_EXC])
    return resign(root, assertion(root), *ctx.idp_key, extra_refs=[second])


def ds_object(root, ctx):
    """The assertion signed by the IdP's key, a ds:Object (not referenced) after
    KeyInfo, holding an evil identity."""
    obj = etree.Element(DS + "Object", nsmap={"ds": NS["ds"]})
    obj.set("Id", "_o" + samltest.new_id())
    etree.SubElement(obj, "{urn:example:evil}eppn").text = "bob@example.org"
    return resign(root, assertion(root), *ctx.idp_key, objects=[obj])


def xpath_hides_attributes(root, ctx):
    """Signed by the IdP's key through an XPath transform that leaves the AttributeStatement
    out of the digest, then the attributes turned evil (xmlsec1 still verifies it)."""
    t = [samltest.ENVELOPED, xpath_transform("not(ancestor-or-self::saml:AttributeStatement)"),
         samltest.C14N_EXC]
    root = resign(root, assertion(root), *ctx.idp_key, transforms=t,
                  patch=declare_saml_on_xpath)
    return make_evil(root)


def xslt_constant(root, ctx):
    """Signed by the IdP's key through an XSLT transform whose output is a constant, then
    turned evil (xmlsec1 still verifies it)."""
    root = resign(root, assertion(root), *ctx.idp_key,
                  transforms=[samltest.ENVELOPED, xslt_transform()])
    return make_evil(root)


def rogue_key(root, ctx):
    """Turned evil and signed again (assertion and Response) by a key that is in no
    metadata, its certificate in KeyInfo."""
    make_evil(root)
    root = resign(root, assertion(root), *ctx.rogue)
    return resign(root, root, *ctx.rogue)


def rogue_key_idp_cert(root, ctx):
    """As rogue_key, KeyInfo carrying the IdP's own certificate."""
    make_evil(root)
    root = resign(root, assertion(root), *ctx.rogue, keyinfo_cert=ctx.idp_key[1])
    return resign(root, root, *ctx.rogue, keyinfo_cert=ctx.idp_key[1])


def partner_wraps_assertion(root, ctx):
    """The IdP's signed assertion in a Response from "partner" (another IdP of the
    federation), signed with partner's key."""
    strip_response_signature(root)
    root.find(SAML + "Issuer").text = ctx.partner.idp
    return resign(root, root, ctx.partner.key, ctx.partner.cert)


# ------------------------------------------------------------------ XML and parser


def _doctype(dtd, text_in_eppn=None):
    def attack(root, ctx):
        if text_in_eppn is not None:
            attribute_value(root, "eduPersonPrincipalName").text = "@@ENTITY@@"
        xml = samltest.tostring(root)
        xml = samltest.add_doctype(xml, dtd.format(canary=ctx.canary))
        return xml.replace(b"@@ENTITY@@", text_in_eppn.encode()) if text_in_eppn else xml
    return attack


BILLION_LAUGHS = ('<!DOCTYPE samlp:Response [<!ENTITY lol "lol">'
                  + "".join('<!ENTITY lol%d "%s">' % (i, ("&lol%s;" % ("" if i == 1 else i - 1)) * 10)
                            for i in range(1, 10))
                  + "]>")
QUADRATIC = ('<!DOCTYPE samlp:Response [<!ENTITY a "%s">]>' % ("x" * 20000))


def quadratic(root, ctx):
    """One 20 kB entity referenced 2000 times (40 MB once expanded)."""
    attribute_value(root, "eduPersonPrincipalName").text = "@@ENTITY@@"
    xml = samltest.add_doctype(samltest.tostring(root), QUADRATIC)
    return xml.replace(b"@@ENTITY@@", b"&a;" * 2000)


def _extensions(build):
    def attack(root, ctx):
        ext = etree.Element(SAMLP + "Extensions")
        build(ext)
        after_issuer(root, ext)
        return root
    return attack


def _nest(depth):
    def build(ext):
        cur = ext
        for _ in range(depth):
            cur = etree.SubElement(cur, "{urn:example:evil}a")
    return build


def deep_text(depth):
    """Nesting too deep for libxml2 itself (built as text: lxml refuses to serialise it)."""
    def attack(root, ctx):
        ext = etree.Element(SAMLP + "Extensions")
        ext.text = "@@NEST@@"
        after_issuer(root, ext)
        nest = b"<a>" * depth + b"</a>" * depth
        return samltest.tostring(root).replace(b"@@NEST@@", nest)
    return attack


def _namespaces(n):
    def build(ext):
        etree.SubElement(ext, "{urn:example:evil}ns",
                         nsmap={"p%d" % i: "urn:example:ns:%d" % i for i in range(n)})
    return build


# ------------------------------------------------------------------ encryption


def undecryptable_beside(root, ctx):
    """An EncryptedAssertion that cannot be decrypted next to the signed cleartext one."""
    a = assertion(root)
    ed = samltest.encrypt_element(fresh_ids(copy.deepcopy(a)), ctx.sp_cert, corrupt=True)
    ea = etree.Element(SAML + "EncryptedAssertion")
    ea.append(ed)
    a.addnext(ea)
    return root


def _undecryptable_before_sign(sp_cert):
    def hook(root):
        return undecryptable_beside(root, SimpleNamespace(sp_cert=sp_cert))
    return hook


def _nest_in_advice(root):
    """(before_sign) a second assertion inside the first one's Advice."""
    a = assertion(root)
    advice = etree.Element(SAML + "Advice")
    advice.append(make_evil(fresh_ids(copy.deepcopy(a))))
    a.find(SAML + "Subject").addprevious(advice)
    return root


# ------------------------------------------------------------------ comments


def _comment_in(attr, before, after):
    """(after_sign) attr's value becomes before<!---->after: exclusive C14N drops the
    comment, so the IdP's signature over before+after still verifies."""
    def hook(root):
        v = attribute_value(root, attr)
        assert v.text == before + after, (v.text, before + after)
        samltest.set_text_with_comment(v, before, after)
        return root
    return hook


def _comment_in_nameid(before, after):
    def hook(root):
        nid = root.find("saml:Assertion/saml:Subject/saml:NameID", NS)
        assert nid.text == before + after
        samltest.set_text_with_comment(nid, before, after)
        return root
    return hook


def _cdata_in(before, after):
    def hook(root):
        return samltest.tostring(root).replace(
            (before + after).encode(), before.encode() + b"<![CDATA[" + after.encode() + b"]]>")
    return hook


def _xinclude(canary):
    def hook(root):
        v = attribute_value(root, "eduPersonPrincipalName")
        v.text = None
        inc = etree.SubElement(v, "{%s}include" % XI, nsmap={"xi": XI})
        inc.set("href", canary + "/xinclude")
        inc.set("parse", "text")
        return root
    return hook


# ------------------------------------------------------------------ the catalogue

VICTIM = "alice@example.org"
SUFFIXED = "alice@example.org.evil.example.net"
IDENTIFYING = {"eduPersonPrincipalName": None, "subject-id": None, "pairwise-id": None,
               "mail": None, "eduPersonScopedAffiliation": None, "eduPersonTargetedID": None}


def catalogue():
    A = Attack
    out = []

    # --- XML Signature Wrapping, XSW1-XSW8 (USENIX Security 2012).
    xsw = [
        ("xsw1", xsw1, {"idp": ("xml_invalid", DUPLICATE_ID),
                        "factory-r": ("xml_invalid", DUPLICATE_ID)}),
        ("xsw1-unique", _unique(xsw1), {"idp": ("signature_invalid", NOT_ITS_ELEMENT),
                                        "factory-r": ("signature_invalid", NOT_ITS_ELEMENT)}),
        ("xsw2", xsw2, {"idp": ("xml_invalid", DUPLICATE_ID),
                        "factory-r": ("xml_invalid", DUPLICATE_ID)}),
        ("xsw2-unique", _unique(xsw2), {"idp": ("signature_invalid", NOT_ITS_ELEMENT),
                                        "factory-r": ("signature_invalid", NOT_ITS_ELEMENT)}),
        ("xsw3", xsw3, {"idp": ("signature_invalid", DIGEST),
                        "idp-a": ("assertion_count", TWO_ASSERTIONS)}),
        ("xsw4", xsw4, {"idp": ("signature_invalid", DIGEST),
                        "idp-a": ("assertion_count", NESTED)}),
        ("xsw5", xsw5, {"idp": ("signature_invalid", DIGEST),
                        "idp-a": ("assertion_count", TWO_ASSERTIONS)}),
        ("xsw6", xsw6, {"idp": ("signature_invalid", DIGEST),
                        "idp-a": ("assertion_count", NESTED)}),
        ("xsw7", xsw7, {"idp": ("xml_invalid", DUPLICATE_ID),
                        "idp-a": ("xml_invalid", DUPLICATE_ID)}),
        ("xsw7-unique", _unique(xsw7), {"idp": ("signature_invalid", DIGEST),
                                        "idp-a": ("assertion_count", NESTED)}),
        ("xsw8", xsw8, {"idp": ("xml_invalid", DUPLICATE_ID),
                        "idp-a": ("xml_invalid", DUPLICATE_ID)}),
        ("xsw8-unique", _unique(xsw8), {"idp": ("signature_invalid", DIGEST),
                                        "idp-a": ("assertion_count", NESTED)}),
    ]
    for name, fn, expect in xsw:
        for source, (reason, detail) in expect.items():
            out.append(A(name, "wrapping", source, reason, detail,
                         (fn.__doc__ or "").strip() or name, transform=fn))

    out += [
        A("signed-then-unsigned-assertion", "wrapping", "idp-a", "assertion_count",
          TWO_ASSERTIONS, "CVE-2021-28091's shape: an unsigned evil assertion after the valid "
          "signed one", transform=signed_then_unsigned),
        A("unsigned-then-signed-assertion", "wrapping", "idp-a", "assertion_count",
          TWO_ASSERTIONS, "an unsigned evil assertion before the valid signed one",
          transform=xsw3),
        A("response-signature-into-assertion", "wrapping", "idp", "signature_invalid",
          NOT_ITS_ELEMENT, response_signature_into_assertion.__doc__,
          transform=response_signature_into_assertion),
        A("assertion-signature-onto-response", "wrapping", "idp-a", "signature_invalid",
          NOT_ITS_ELEMENT, assertion_signature_onto_response.__doc__,
          transform=assertion_signature_onto_response),
        A("duplicate-id-response", "wrapping", "idp", "xml_invalid", DUPLICATE_ID,
          duplicate_id_response.__doc__, transform=duplicate_id_response),
        A("duplicate-id-extensions", "wrapping", "idp-a", "xml_invalid", DUPLICATE_ID,
          duplicate_id_elsewhere.__doc__, transform=duplicate_id_elsewhere),
        A("duplicate-xml-id", "wrapping", "idp-a", "xml_invalid", DUPLICATE_ID,
          duplicate_xml_id.__doc__, transform=duplicate_xml_id),
    ]

    # --- signatures: stripped, reshaped, other keys, weak algorithms.
    out += [
        A("signature-stripped", "signature", "idp", "unsigned", UNSIGNED,
          "every signature removed", transform=strip_all),
        A("signature-stripped-evil", "signature", "idp", "unsigned", UNSIGNED,
          "every signature removed, then turned evil", transform=strip_all_evil),
        A("assertion-signature-stripped", "signature", "idp", "signature_invalid", DIGEST,
          "the assertion's signature removed, the Response's kept (it covers it)",
          transform=strip_assertion_signature),
        A("tampered", "signature", "idp-a", "signature_invalid", DIGEST,
          "turned evil, the signature left as it was", transform=tamper),
        A("reference-uri-empty", "signature", "idp-a", "signature_invalid", NOT_ITS_ELEMENT,
          uri_empty.__doc__, transform=uri_empty, xmlsec_valid="idp"),
        A("two-references", "signature", "idp-a", "signature_invalid",
          "does not have exactly one Reference", two_references.__doc__,
          transform=two_references, xmlsec_valid="idp"),
        A("ds-object", "signature", "idp-a", "signature_invalid",
          "holds more than SignedInfo, SignatureValue and KeyInfo", ds_object.__doc__,
          transform=ds_object, xmlsec_valid="idp"),
        A("xpath-transform", "signature", "idp-a", "signature_invalid", TRANSFORMS,
          xpath_hides_attributes.__doc__, transform=xpath_hides_attributes,
          xmlsec_valid="idp"),
        A("xslt-transform", "signature", "idp-a", "signature_invalid", TRANSFORMS,
          xslt_constant.__doc__, transform=xslt_constant, xmlsec_valid="idp"),
        A("keyinfo-key-not-in-metadata", "signature", "idp", "signature_invalid", WRONG_KEY,
          rogue_key.__doc__, transform=rogue_key, xmlsec_valid="rogue"),
        A("keyinfo-claims-idp-cert", "signature", "idp", "signature_invalid", WRONG_KEY,
          rogue_key_idp_cert.__doc__, transform=rogue_key_idp_cert),
        A("signed-by-another-federation-idp", "signature", "factory", "signature_invalid",
          WRONG_KEY, "partner's key signs a Response (and assertion) whose Issuer is the "
          "test IdP", knobs={"signing_key": "partner"}),
        A("rsa-sha1", "signature", "factory", "sha1", "SHA-1",
          "RSA-SHA1 signatures with SHA-1 digests", knobs={"sig_alg": "rsa-sha1",
                                                           "digest_alg": "sha1"}),
        A("sha1-digest", "signature", "factory", "sha1", "SHA-1",
          "RSA-SHA256 signatures over SHA-1 digests", knobs={"digest_alg": "sha1"}),
        A("rsa-md5", "signature", "factory", "signature_invalid",
          "SignatureMethod is not RSA or ECDSA with SHA-256",
          "RSA-MD5 signatures with MD5 digests", knobs={"sig_alg": "rsa-md5",
                                                        "digest_alg": "md5"}),
        A("md5-digest", "signature", "factory", "signature_invalid",
          "DigestMethod is not SHA-256", "RSA-SHA256 signatures over MD5 digests",
          knobs={"digest_alg": "md5"}),
    ]

    # --- issuers: the assertion's against the Response's.
    out += [
        A("assertion-issuer-differs", "issuer", "factory", "issuer_mismatch",
          "assertion's Issuer is not the Response's", "the test IdP signs an assertion "
          "whose Issuer is partner", knobs={"assertion_issuer": "partner"}),
        A("assertion-spliced-into-partner-response", "issuer", "idp", "issuer_mismatch",
          "assertion's Issuer is not the Response's", partner_wraps_assertion.__doc__,
          transform=partner_wraps_assertion),
    ]

    # --- comments and CDATA inside signed values (the IdP signed the whole value).
    out += [
        A("comment-in-eppn", "comments", "factory", "scope", "'example.org.evil.example.net'",
          "eppn alice@example.org<!---->.evil.example.net: the whole value is read (a "
          "reader stopping at the comment would see alice@example.org)",
          knobs={"attrs": {"eduPersonPrincipalName": SUFFIXED},
                 "after_sign": _comment_in("eduPersonPrincipalName", VICTIM,
                                           ".evil.example.net")}),
        A("comment-in-scoped-value", "comments", "factory", "scope", "'evil.example.org'",
          "eppn alice@evil<!---->.example.org",
          knobs={"attrs": {"eduPersonPrincipalName": "alice@evil.example.org"},
                 "after_sign": _comment_in("eduPersonPrincipalName", "alice@evil",
                                           ".example.org")}),
        A("comment-in-scoped-affiliation", "comments", "factory", "scope",
          "'example.org.evil.example.net'",
          "eduPersonScopedAffiliation member@example.org<!---->.evil.example.net",
          knobs={"attrs": {"eduPersonScopedAffiliation": "member@example.org.evil.example.net"},
                 "after_sign": _comment_in("eduPersonScopedAffiliation", "member@example.org",
                                           ".evil.example.net")}),
        A("comment-in-mail-localpart", "comments", "factory", "no_domain",
          "no [domain] bound to this IdP has a scope matching",
          "partner's mail (its localpart source) carol@partner.example.net<!---->"
          ".evil.example.com", issuer="partner",
          knobs={"attrs": {"mail": "carol@partner.example.net.evil.example.com"},
                 "after_sign": _comment_in("mail", "carol@partner.example.net",
                                           ".evil.example.com")}),
        A("cdata-in-eppn", "comments", "factory", "scope", "'example.org.evil.example.net'",
          "eppn alice@example.org<![CDATA[.evil.example.net]]>",
          knobs={"attrs": {"eduPersonPrincipalName": SUFFIXED},
                 "after_sign": _cdata_in(VICTIM, ".evil.example.net")}),
        A("comment-in-nameid", "comments", "factory", "no_domain",
          "sent no eduPersonPrincipalName",
          "only a NameID alice@example.org<!---->.evil.example.net names the user: samlgw "
          "never takes the user from the NameID",
          knobs={"name_id": SUFFIXED, "name_id_format": NAMEID_EMAIL, "attrs": IDENTIFYING,
                 "after_sign": _comment_in_nameid(VICTIM, ".evil.example.net")}),
    ]

    # --- DTDs, entities, size and depth (unsigned additions: anybody can send them).
    out += [
        A("doctype", "xml", "idp", "dtd", DTD, "an internal DTD subset",
          transform=_doctype('<!DOCTYPE samlp:Response [<!ELEMENT samlp:Response ANY>]>')),
        A("xxe-file", "xml", "idp", "dtd", DTD, "an external entity file:///etc/passwd in "
          "the eppn", transform=_doctype(
              '<!DOCTYPE samlp:Response [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;")),
        A("xxe-http", "xml", "idp", "dtd", DTD, "an external entity from the canary URL in "
          "the eppn", canary=True, transform=_doctype(
              '<!DOCTYPE samlp:Response [<!ENTITY x SYSTEM "{canary}/xxe">]>', "&x;")),
        A("external-dtd", "xml", "idp", "dtd", DTD, "an external DTD at the canary URL",
          canary=True, transform=_doctype('<!DOCTYPE samlp:Response SYSTEM "{canary}/dtd">')),
        A("parameter-entity", "xml", "idp", "dtd", DTD, "a parameter entity from the canary "
          "URL", canary=True, transform=_doctype(
              '<!DOCTYPE samlp:Response [<!ENTITY % p SYSTEM "{canary}/pe"> %p;]>')),
        A("billion-laughs", "xml", "idp", "dtd", DTD, "10^9 lols in the eppn",
          transform=_doctype(BILLION_LAUGHS, "&lol9;")),
        A("quadratic-blowup", "xml", "idp", "dtd", DTD, quadratic.__doc__,
          transform=quadratic),
        A("nesting-past-cap", "xml", "idp", "xml_invalid", "nested more than 48 elements",
          "samlp:Extensions nested 60 deep", transform=_extensions(_nest(60))),
        A("nesting-past-parser", "xml", "idp", "xml_invalid", "Excessive depth in document",
          "samlp:Extensions nested 3000 deep", transform=deep_text(3000)),
        A("namespace-flood", "xml", "idp", "xml_invalid",
          "more than 128 namespace declarations in scope",
          "200 namespace declarations on one element", transform=_extensions(_namespaces(200))),
        A("xinclude", "xml", "factory", "attributes_invalid", "not printable text",
          "the IdP signs an eppn that is an xi:include of the canary URL", canary=True,
          knobs=lambda ctx: {"before_sign": _xinclude(ctx.canary)}),
        A("oversize-value", "xml", "factory", "attributes_invalid", "at most 1024 bytes",
          "an eppn of 2000 bytes", knobs={"attrs": {"eduPersonPrincipalName":
                                                   "a" * 1983 + "@example.org"}}),
        A("too-many-values", "xml", "factory", "attributes_invalid",
          "more than 64 values", "65 eduPersonAffiliation values",
          knobs={"attrs": {"eduPersonAffiliation": ["v%d" % i for i in range(65)]}}),
        A("too-many-attributes", "xml", "factory", "attributes_invalid",
          "at most 128 Attributes", "129 Attributes",
          knobs={"attrs": {"urn:example:a%d" % i: "x" for i in range(129)}}),
    ]

    # --- status, encryption, subject confirmation.
    out += [
        A("status-not-success-with-assertion", "protocol", "factory", "status_not_success",
          "status urn:oasis:names:tc:SAML:2.0:status:Responder",
          "status Responder, and a signed assertion all the same",
          knobs={"status": samltest.STATUS_RESPONDER}),
        A("undecryptable-beside-cleartext", "protocol", "idp-a", "assertion_count",
          TWO_ASSERTIONS, undecryptable_beside.__doc__, transform=undecryptable_beside),
        A("undecryptable-beside-cleartext-signed", "protocol", "factory", "assertion_count",
          TWO_ASSERTIONS, "as above, the IdP's Response signature over both",
          knobs=lambda ctx: {"before_sign": _undecryptable_before_sign(ctx.sp_cert)}),
        A("assertion-nested-in-encrypted", "protocol", "factory", "assertion_count",
          "decrypted assertion holds assertions", "an evil assertion in the Advice of the "
          "encrypted one", knobs={"encrypt": True, "data_alg": "aes128-gcm",
                                  "before_sign": _nest_in_advice},
          control={"encrypt": True, "data_alg": "aes128-gcm"}),
        A("rsa-1_5-key-transport", "protocol", "factory", "decryption_failed",
          "algorithm is not RSA-OAEP",
          "RSA PKCS#1 v1.5 key transport (a Bleichenbacher oracle)",
          knobs={"encrypt": True, "key_alg": "rsa-1_5"}, control={"encrypt": True}),
        A("holder-of-key", "protocol", "factory", "subject_confirmation",
          "no bearer SubjectConfirmation",
          "SubjectConfirmation holder-of-key", knobs={"confirmation_method":
                                                      samltest.CM_HOLDER_OF_KEY}),
        A("sender-vouches", "protocol", "factory", "subject_confirmation",
          "no bearer SubjectConfirmation",
          "SubjectConfirmation sender-vouches",
          knobs={"confirmation_method": CM_SENDER_VOUCHES}),
    ]

    # --- scopes and domains.
    out += [
        A("eppn-outside-scope", "scope", "factory", "scope", SCOPE,
          "eppn alice@evil.example.net", knobs={"attrs": {"eduPersonPrincipalName":
                                                          "alice@evil.example.net"}}),
        A("eppn-suffix-of-scope", "scope", "factory", "scope", SCOPE,
          "eppn alice@notexample.org (ends with the scope)",
          knobs={"attrs": {"eduPersonPrincipalName": "alice@notexample.org"}}),
        A("eppn-second-at", "scope", "factory", "scope", ONE_AT,
          "eppn alice@evil.example.net@example.org",
          knobs={"attrs": {"eduPersonPrincipalName": "alice@evil.example.net@example.org"}}),
        A("subject-id-outside-scope", "scope", "factory", "scope", SCOPE,
          "subject-id alice@evil.example.net",
          knobs={"attrs": {"subject-id": "alice@evil.example.net"}}),
        A("pairwise-id-second-at", "scope", "factory", "scope", ONE_AT,
          "pairwise-id x@y@example.org", knobs={"attrs": {"pairwise-id": "x@y@example.org"}}),
        A("affiliation-outside-scope", "scope", "factory", "scope", SCOPE,
          "eduPersonScopedAffiliation member@evil.example.net",
          knobs={"attrs": {"eduPersonScopedAffiliation": "member@evil.example.net"}}),
        A("partner-outside-its-scope", "scope", "factory", "scope", SCOPE,
          "partner asserts alice@sub.example.org, which is not its shibmd:Scope",
          issuer="partner", knobs={"attrs": {"eduPersonPrincipalName": "alice@sub.example.org"}}),
        A("partner-into-unbound-domain", "scope", "factory", "no_domain",
          "no [domain] bound to this IdP has a scope matching",
          "partner (its shibmd:Scope lists example.org) logs alice@example.org in: "
          "[domain example.org] does not list partner", issuer="partner",
          knobs={"scope": "example.org"}),
        A("idp-bound-to-no-domain", "scope", "factory", "idp_not_bound",
          "no [domain] lists this IdP", "a valid login from an IdP of the metadata that no "
          "[domain] lists (control: the same from the test IdP)", issuer="unbound",
          control_issuer="real"),
    ]
    return out
