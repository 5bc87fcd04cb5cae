"""Attributes to identity (issue 3, point 5), the parts test_multi_idp.py leaves open: the
scope check on subject-id and pairwise-id, what refuses as attributes_invalid, the JID
localpart from each `localpart` source, recognition of every attribute by urn:oid and by
friendly name (seen in login_ok's attributes= field and on the account page), and how long
the replay cache keeps an assertion. Every negative test sits next to a positive control:
the same Response without the fault is accepted.

One gateway (fixture `ident`) trusts four IdPs that exist only as ResponseFactory keys
(their metadata is tests/fuzz/acs/idp-metadata.xml with another entityID, key and
shibmd:Scope list), each bound to its own [domain] with its own `localpart`, and runs with
clock_skew = 45 (not the default 180)."""
import copy
import datetime
import hashlib
import re
import time
from types import SimpleNamespace

import pytest
from lxml import etree

import samltest
from conftest import (started, REPO, SP_ENTITY, Gateway, accepted, factory_idp_metadata,
                      post, refused_with, start_request)

TEMPLATE = REPO / "tests" / "fuzz" / "acs" / "idp-metadata.xml"
SKEW = 45
DEPT_REGEXP = r"[a-z]+\.dept\.example\.org"
# A sloppy regexp (as found in federation metadata): it also matches "x@y.wild.example.org",
# so only the one-'@' rule refuses a second '@' under it.
WILD_REGEXP = r".+\.wild\.example\.org"
# name -> (literal shibmd:Scopes, regexp shibmd:Scopes, its [domain], that domain's localpart)
IDPS = {
    "eppn": (["eppn.example.org"], [DEPT_REGEXP, WILD_REGEXP], "eppn.example.org", None),
    "sid": (["sid.example.org"], [], "sid.example.org", "subject-id"),
    "mail": (["mail.example.org"], [], "mail.example.org", "mail"),
    "uid": (["uid.example.org"], [], "uid.example.org", "uid"),
}
# Every attribute samlgw knows, canonical names in the order login_ok lists them.
CANONICAL = ["eduPersonPrincipalName", "subject-id", "pairwise-id", "eduPersonTargetedID",
             "mail", "displayName", "givenName", "sn", "eduPersonAffiliation",
             "eduPersonScopedAffiliation", "eduPersonEntitlement", "uid"]
FORMS = ["oid", "oid-no-friendly", "friendly"]  # ResponseFactory attribute_names
# Characters RFC 7622 forbids in a localpart ('@' is tested on its own).
BAD_LOCAL_CHARS = ['"', "&", "'", "/", ":", "<", ">", " "]


@pytest.fixture(scope="module")
def ident(tmp_path_factory, redis):
    template = etree.fromstring(TEMPLATE.read_bytes())
    for attempt in range(3):
        base = tmp_path_factory.mktemp("ident")
        gw = Gateway(base / "gw", redis, None)
        factories, domains = {}, []
        agg = etree.Element("{%s}EntitiesDescriptor" % samltest.NS["md"],
                            nsmap={"md": samltest.NS["md"]})
        for name, (scopes, regexps, domain, localpart) in IDPS.items():
            key, cert = samltest.make_keypair(base / "keys", name)
            entity = "https://%s.idp.example.net/idp" % name
            agg.append(factory_idp_metadata(template, entity, cert, scopes, regexps))
            factories[name] = samltest.ResponseFactory(key, cert, entity, SP_ENTITY, gw.acs,
                                                       sp_enc_cert=gw.sp_cert, scope=scopes[0])
            domains.append("[domain %s]\nidp = %s\nscope = %s\n%s" % (
                domain, entity, domain, "localpart = %s\n" % localpart if localpart else ""))
        federation = base / "federation.xml"
        federation.write_bytes(etree.tostring(agg, xml_declaration=True, encoding="UTF-8"))
        gw.write_config(federation, domains="\n".join(domains),
                        extra_saml="clock_skew = %d\n" % SKEW)
        if started(gw, attempt):
            break
    try:
        yield SimpleNamespace(gw=gw, redis=redis, **factories)
    finally:
        gw.stop()


def login_ok(gw, page):
    """The login_ok line of the login that page (the ACS's answer) completed."""
    accepted(page)
    return gw.log_lines("login_ok")[-1]


def jid_of(gw, page):
    return re.search(r" jid=(\S+)", login_ok(gw, page)).group(1)


def attributes_of(gw, page):
    """login_ok's attributes= field as a list of names."""
    line = login_ok(gw, page)
    m = re.search(r' attributes=("?)([^" ]*)\1(?: |$)', line)
    assert m, line
    return [n for n in m.group(2).split(",") if n]


# ------------------------------------------------------------- subject-id, pairwise-id scope

BAD_SCOPED = [
    ("scope_outside", "{}@evil.example.net"),
    ("regexp_not_whole", "{}@dept.example.org"),
    ("second_at", "{}@x@eppn.example.org"),
    ("second_at_regexp", "{}@x@y.wild.example.org"),
    ("empty_scope", "{}@"),
    ("empty_value", "@eppn.example.org"),
    ("no_at", "{}"),
]


@pytest.mark.parametrize("case,bad", BAD_SCOPED, ids=[c[0] for c in BAD_SCOPED])
@pytest.mark.parametrize("name", ["subject-id", "pairwise-id"])
def test_scoped_identifier_checked(ident, name, case, bad):
    """The eppn IdP names its users by eppn: only the scope check can refuse these."""
    s = ident
    accepted(post(s.gw, s.eppn)[0])
    refused_with(s.gw, post(s.gw, s.eppn, attrs={name: bad.format("x1234")})[0], "scope")


@pytest.mark.parametrize("name", ["subject-id", "pairwise-id"])
def test_scoped_identifier_accepted_scopes(ident, name):
    """Controls for the refusals above: a literal scope case-insensitively, and a scope
    the shibmd:Scope regexp matches whole."""
    s = ident
    for good in ("x1234@EPPN.Example.ORG", "x1234@cs.dept.example.org",
                 "x1234@x.y.wild.example.org"):
        accepted(post(s.gw, s.eppn, attrs={name: good})[0])


# ------------------------------------------------------------------ attributes_invalid


def _insert_into_statement(element_xml):
    def hook(root):
        st = root.find(".//" + samltest.SAML + "AttributeStatement")
        st.insert(0, etree.fromstring(element_xml))
        return root
    return hook


ENCRYPTED_ATTRIBUTE = ('<saml:EncryptedAttribute xmlns:saml="%s"><xenc:EncryptedData '
                       'xmlns:xenc="%s"/></saml:EncryptedAttribute>'
                       % (samltest.NS["saml"], samltest.NS["xenc"]))
FOREIGN_ELEMENT = '<saml:Foo xmlns:saml="%s"/>' % samltest.NS["saml"]


def _attrs_with_unknown(total):
    """eppn plus unknown attributes: total Attribute elements."""
    a = {"eduPersonPrincipalName": ["alice@eppn.example.org"]}
    a.update({"x-unknown-%d" % i: ["v"] for i in range(total - 1)})
    return a


# (case, control knobs, bad knobs): the control differs from the fault only in the fault.
INVALID = [
    ("value_control_character",
     dict(attrs={"displayName": "Alice Liddell"}),
     dict(attrs={"displayName": "Alice\nLiddell"})),
    ("value_too_long",
     dict(attrs={"displayName": "x" * 1024}),
     dict(attrs={"displayName": "x" * 1025})),
    ("value_not_text",
     dict(attrs={"displayName": "Alice"}),
     dict(attrs={"displayName": [etree.fromstring("<b>Alice</b>")]})),
    ("too_many_values",
     dict(attrs={"eduPersonEntitlement": ["urn:x:%d" % i for i in range(64)]}),
     dict(attrs={"eduPersonEntitlement": ["urn:x:%d" % i for i in range(65)]})),
    ("too_many_attributes",
     dict(attributes=_attrs_with_unknown(128)),
     dict(attributes=_attrs_with_unknown(129))),
    ("not_an_attribute",
     dict(before_sign=_insert_into_statement(ENCRYPTED_ATTRIBUTE)),
     dict(before_sign=_insert_into_statement(FOREIGN_ELEMENT))),
]


@pytest.mark.parametrize("case,control,bad", INVALID, ids=[c[0] for c in INVALID])
def test_attributes_invalid(ident, case, control, bad):
    s = ident
    accepted(post(s.gw, s.eppn, **control)[0])
    refused_with(s.gw, post(s.gw, s.eppn, **bad)[0], "attributes_invalid")


def test_values_trimmed(ident):
    """White space around a value (a pretty-printing IdP) is not part of it; inside a
    value a line break is refused (test_attributes_invalid)."""
    s = ident
    page = post(s.gw, s.eppn, attrs={"eduPersonPrincipalName": "\n   Alice@eppn.example.org\n  "})[0]
    assert jid_of(s.gw, page) == "alice@eppn.example.org"


def test_targeted_id_trimmed_and_capped(ident):
    """eduPersonTargetedID's NameID is trimmed like any value; its qualifiers are capped
    like values (1024 bytes)."""
    s = ident
    tid = lambda **kw: {"uid": ["alice"], "eduPersonTargetedID": [dict(nameid="\n  t1d\n ", **kw)]}
    page = post(s.gw, s.uid, attributes=tid())[0]
    assert attributes_of(s.gw, page) == ["eduPersonTargetedID", "uid"]
    accepted(post(s.gw, s.uid, attributes=tid(name_qualifier="q" * 1024))[0])
    refused_with(s.gw, post(s.gw, s.uid, attributes=tid(name_qualifier="q" * 1025))[0],
                 "attributes_invalid")
    refused_with(s.gw, post(s.gw, s.uid, attributes=tid(sp_name_qualifier="q" * 1025))[0],
                 "attributes_invalid")


# ------------------------------------------------------------------ localpart sources

# (IdP and its [domain]'s localpart source, the attribute, a value template)
SOURCES = [("eppn", "eduPersonPrincipalName", "{}@eppn.example.org"),
           ("sid", "subject-id", "{}@sid.example.org"),
           ("mail", "mail", "{}@mail.example.org"),
           ("uid", "uid", "{}")]


def _others(idp, attr):
    """Every other identifier names someone else, so the JID shows which one was used."""
    scope = IDPS[idp][2]
    a = {n: "mallory@%s" % scope for n in ("eduPersonPrincipalName", "subject-id", "mail")}
    a["uid"] = "mallory"
    a.pop(attr)
    return a


@pytest.mark.parametrize("idp,attr,value", SOURCES, ids=[s[0] for s in SOURCES])
def test_localpart_source_and_lowercase(ident, idp, attr, value):
    s, f = ident, getattr(ident, idp)
    attrs = dict(_others(idp, attr), **{attr: value.format("Carol.SMITH-1")})
    page = post(s.gw, f, attrs=attrs)[0]
    assert jid_of(s.gw, page) == "carol.smith-1@%s" % IDPS[idp][2]
    # Without the configured attribute the others do not stand in for it.
    refused_with(s.gw, post(s.gw, f, attrs=dict(attrs, **{attr: None}))[0], "no_domain")


@pytest.mark.parametrize("idp,attr,value", SOURCES, ids=[s[0] for s in SOURCES])
def test_localpart_forbidden_characters(ident, idp, attr, value):
    s, f = ident, getattr(ident, idp)
    accepted(post(s.gw, f, attrs={attr: value.format("c.a-r_o+l")})[0])
    for ch in BAD_LOCAL_CHARS:
        refused_with(s.gw, post(s.gw, f, attrs={attr: value.format("ca" + ch + "rol")})[0],
                     "localpart")
    # '@': a scoped attribute holds one only (scope); in mail and uid it reaches the JID.
    refused_with(s.gw, post(s.gw, f, attrs={attr: value.format("ca@rol")})[0],
                 "scope" if attr in ("eduPersonPrincipalName", "subject-id") else "localpart")


# ------------------------------------------------------------------ recognised attributes


def _values(name):
    a = samltest.default_attributes("alice", "uid.example.org")
    a["uid"] = ["alice"]
    return a[name]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", CANONICAL)
def test_attribute_recognised(ident, name, form):
    """The uid IdP names its users by uid, so any other attribute may come alone."""
    s = ident
    page = post(s.gw, s.uid, attribute_names=form,
                attributes={"uid": ["alice"], name: _values(name)})[0]
    assert attributes_of(s.gw, page) == [n for n in CANONICAL if n in (name, "uid")]


@pytest.mark.parametrize("form", FORMS)
def test_attributes_listed_in_fixed_order_without_values(ident, form):
    s = ident
    attrs = {n: _values(n) for n in reversed(CANONICAL)}
    page = post(s.gw, s.uid, attribute_names=form, attributes=attrs)[0]
    assert attributes_of(s.gw, page) == CANONICAL
    line = s.gw.log_lines("login_ok")[-1]
    for personal in ("Liddell", "student", "common-lib-terms", "alicepairwise"):
        assert personal not in line, line


def test_unknown_attributes_not_listed(ident):
    s = ident
    page = post(s.gw, s.uid, attributes={
        "uid": ["alice"], "cn": ["Alice Liddell"], "eduPersonUniqueId": ["a1@uid.example.org"],
        "favouriteColour": ["blue"],
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.6.99": ["alice@uid.example.org"]})[0]
    assert attributes_of(s.gw, page) == ["uid"]


def _rename(old, new, friendly):
    def hook(root):
        for a in root.iter(samltest.SAML + "Attribute"):
            if a.get("Name") == old:
                a.set("Name", new)
                a.set("FriendlyName", friendly)
                a.set("NameFormat", samltest.NAME_FORMAT_URI if ":" in new
                      else samltest.NAME_FORMAT_BASIC)
        return root
    return hook


def test_friendly_name_only_beside_a_basic_name(ident):
    """FriendlyName counts when the Name is a basic name samlgw does not know, never when
    the Name is a URI (another attribute, whatever it is called)."""
    s = ident
    oid = samltest.ATTRIBUTE_OIDS["displayName"]
    attrs = {"uid": ["alice"], "displayName": ["Alice"]}
    page = post(s.gw, s.uid, attributes=attrs,
                before_sign=_rename(oid, "fullName", "displayName"))[0]
    assert attributes_of(s.gw, page) == ["displayName", "uid"]
    for uri in ("http://schemas.example.org/claims/fullname", oid + ".1"):
        page = post(s.gw, s.uid, attributes=attrs,
                    before_sign=_rename(oid, uri, "displayName"))[0]
        assert attributes_of(s.gw, page) == ["uid"]


def _account_page(gw, factory, **knobs):
    """Log in with a forged Response and follow to the account page."""
    built = factory.build(in_response_to=start_request(gw, factory), **knobs)
    page = samltest.Browser().post(gw.acs, built.form)
    assert page.status == 200 and page.url == gw.url + "/", (page.status, page.url)
    return page.text


@pytest.mark.parametrize("form", FORMS)
def test_account_page_name(ident, form):
    s = ident
    base = {"uid": ["alice"], "givenName": ["Alicia"], "sn": ["Pleasance"]}
    text = _account_page(s.gw, s.uid, attribute_names=form,
                         attributes=dict(base, displayName=["Dr Alice Liddell"]))
    assert "<dd>Dr Alice Liddell</dd>" in text
    text = _account_page(s.gw, s.uid, attribute_names=form, attributes=base)
    assert "<dd>Alicia Pleasance</dd>" in text
    # Neither displayName nor both givenName and sn: the JID.
    text = _account_page(s.gw, s.uid, attribute_names=form,
                         attributes={"uid": ["alice"], "givenName": ["Alicia"]})
    assert "<dd>alice@uid.example.org</dd>" in text


def test_scoped_affiliation_with_a_foreign_scope_refuses_the_login(ident):
    """One eduPersonScopedAffiliation value outside the IdP's scopes refuses the login
    (samlgw does not drop it silently); eduPersonAffiliation is not scoped."""
    s = ident
    good = ["member@uid.example.org", "staff@uid.example.org"]
    bad = ["member@uid.example.org", "staff@evil.example.net"]
    accepted(post(s.gw, s.uid, attrs={"uid": "alice", "eduPersonScopedAffiliation": good})[0])
    refused_with(s.gw, post(s.gw, s.uid, attrs={"uid": "alice",
                                                "eduPersonScopedAffiliation": bad})[0], "scope")
    accepted(post(s.gw, s.uid, attrs={"uid": "alice", "eduPersonAffiliation": bad})[0])


# ------------------------------------------------------------------ replay cache lifetime


def _at(epoch):
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)


def replay_expiry(s, factory, assertion_id):
    """EXPIRETIME of the replay cache key of (factory's IdP, assertion_id)."""
    digest = hashlib.sha256(factory.idp.encode() + b"\0" + assertion_id.encode()).hexdigest()
    return s.redis.call("EXPIRETIME", "samlgw:assertion:" + digest)


@pytest.mark.parametrize("cond,subj", [(300, 200), (200, 400), (None, 250)],
                         ids=["conditions_later", "confirmation_later", "no_conditions_limit"])
def test_replay_entry_lives_until_latest_not_on_or_after_plus_skew(ident, cond, subj):
    s = ident
    now = int(time.time())
    page, built = post(s.gw, s.eppn,
                       not_on_or_after=None if cond is None else _at(now + cond),
                       subject_not_on_or_after=_at(now + subj))
    accepted(page)
    expected = now + max(cond or 0, subj) + SKEW
    assert abs(replay_expiry(s, s.eppn, built.assertion_id) - expected) <= 2



def test_replay_entry_outlives_a_later_subject_confirmation(ident):
    """With two bearer SubjectConfirmations the entry lasts until the later one's
    NotOnOrAfter, whichever of them accepted the assertion first."""
    s = ident
    now = int(time.time())

    def second_confirmation(root):
        subj = root.find(".//" + samltest.SAML + "Subject")
        first = subj.find(samltest.SAML + "SubjectConfirmation")
        later = copy.deepcopy(first)
        later.find(samltest.SAML + "SubjectConfirmationData").set(
            "NotOnOrAfter", samltest.saml_time(_at(now + 1800)))
        first.addnext(later)
        return root

    page, built = post(s.gw, s.eppn, not_on_or_after=_at(now + 300),
                       subject_not_on_or_after=_at(now + 300), before_sign=second_confirmation)
    accepted(page)
    assert abs(replay_expiry(s, s.eppn, built.assertion_id) - (now + 1800 + SKEW)) <= 2