"""Access rules (issue "federation-ready", point 5): `require = ATTRIBUTE: VALUE …` in a
[domain], checked once the domain is chosen. Values within one rule: any of them; several
rules: all of them. A user who fails gets the access_denied page (message and reference),
a log line `event=login_refused reason=access_denied domain=… rule=…` without the user's
values, no session and no token. Every refusal sits next to an accepted control.

One gateway (fixture `acc`) trusts one IdP that exists only as a ResponseFactory key, with
a shibmd:Scope per domain; the scope of the user's eppn picks the domain:

    [domain aff.example]     require = eduPersonAffiliation: student staff employee
    [domain ent.example]     require = urn:oid:1.3.6.1.4.1.5923.1.1.1.7: urn:mace:dir:entitlement:common-lib-terms
    [domain scoped.example]  require = eduPersonScopedAffiliation: staff@scoped.example faculty
    [domain multi.example]   require = eduPersonAffiliation : student staff
                             require = eduPersonEntitlement: https://chat.example/entitled urn:x:chat
    [domain open.example]    (no rule)"""
import re
import subprocess
from types import SimpleNamespace

import pytest
from lxml import etree

import samltest
from conftest import (started, REPO, SAMLGW_BIN, SP_ENTITY, Gateway, accepted,
                      factory_idp_metadata, refused_with, start_request)

TEMPLATE = REPO / "tests" / "fuzz" / "acs" / "idp-metadata.xml"
SCOPES = ["aff.example", "ent.example", "scoped.example", "multi.example", "open.example",
          "other.example"]
LIB = "urn:mace:dir:entitlement:common-lib-terms"
RULES = {
    "aff.example": ["eduPersonAffiliation: student staff employee"],
    "ent.example": ["urn:oid:1.3.6.1.4.1.5923.1.1.1.7: " + LIB],
    "scoped.example": ["eduPersonScopedAffiliation: staff@scoped.example faculty"],
    "multi.example": ["eduPersonAffiliation : student staff",
                      "eduPersonEntitlement: https://chat.example/entitled urn:x:chat"],
    "open.example": [],
}


@pytest.fixture(scope="module")
def acc(tmp_path_factory, redis):
    template = etree.fromstring(TEMPLATE.read_bytes())
    for attempt in range(3):
        base = tmp_path_factory.mktemp("acc")
        gw = Gateway(base / "gw", redis, None)
        key, cert = samltest.make_keypair(base / "keys", "idp")
        entity = "https://uni.idp.example.net/idp"
        agg = etree.Element("{%s}EntitiesDescriptor" % samltest.NS["md"],
                            nsmap={"md": samltest.NS["md"]})
        agg.append(factory_idp_metadata(template, entity, cert, SCOPES))
        federation = base / "federation.xml"
        federation.write_bytes(etree.tostring(agg, xml_declaration=True, encoding="UTF-8"))
        domains = "".join("[domain %s]\nidp = %s\n%s\n" % (
            d, entity, "".join("require = %s\n" % r for r in rules))
            for d, rules in RULES.items())
        gw.write_config(federation, domains=domains)
        if started(gw, attempt):
            break
    idp = samltest.ResponseFactory(key, cert, entity, SP_ENTITY, gw.acs,
                                   sp_enc_cert=gw.sp_cert, scope="aff.example")
    try:
        yield SimpleNamespace(gw=gw, idp=idp, redis=redis)
    finally:
        gw.stop()


def login(s, domain, headers=None, **attrs):
    """POST a Response for a user of domain (the eppn's scope) with the given attributes
    (merged into the defaults; None removes one): the ACS's answer."""
    built = s.idp.build(in_response_to=start_request(s.gw, s.idp), scope=domain,
                        attrs=attrs or None)
    return samltest.Browser().post(s.gw.acs, built.form, follow=False, headers=headers)


def allowed(s, domain, **attrs):
    page = login(s, domain, **attrs)
    accepted(page)
    line = s.gw.log_lines("login_ok")[-1]
    assert " domain=%s " % domain in line + " ", line
    assert "Set-Cookie" in page.headers
    return page


def denied(s, domain, rule, **attrs):
    """The login is refused for access; returns the page and its log line."""
    page = login(s, domain, **attrs)
    line = refused_with(s.gw, page, "access_denied")
    assert page.status == 403
    assert " domain=%s " % domain in line, line
    assert ' rule="%s" ' % rule in line or " rule=%s " % rule in line, line
    assert "jid=alice@%s" % domain in line, line
    assert "Set-Cookie" not in page.headers, page.headers
    assert "does not give access to this chat domain" in page.text, page.text
    assert domain in page.text
    return page, line


AFF = "eduPersonAffiliation"
SAFF = "eduPersonScopedAffiliation"
ENT = "eduPersonEntitlement"


# ------------------------------------------------------------------ eduPersonAffiliation


def test_affiliation_any_value_of_the_rule(acc):
    s, rule = acc, RULES["aff.example"][0]
    for values in (["student"], ["member", "staff"], ["employee"], ["alum", "Student"],
                   ["STAFF"]):
        allowed(s, "aff.example", **{AFF: values})
    denied(s, "aff.example", rule, **{AFF: ["member", "alum"]})
    denied(s, "aff.example", rule, **{AFF: None})
    # A value the rule names, but in another attribute.
    denied(s, "aff.example", rule, **{AFF: ["member"], SAFF: ["student@aff.example"]})
    # The whole value, not a part of it.
    denied(s, "aff.example", rule, **{AFF: ["students", "xstaff"]})


def test_refusal_logs_the_rule_not_the_users_values(acc):
    s, rule = acc, RULES["aff.example"][0]
    _page, line = denied(s, "aff.example", rule,
                         **{AFF: ["alum", "affiliate"], SAFF: ["alum@aff.example"],
                            "displayName": "Mallory Personal"})
    for personal in ("alum", "affiliate", "Mallory", "Personal", LIB):
        assert personal not in line, line
    assert "reason=access_denied domain=aff.example rule=" in line, line


def test_refusal_leaves_no_session_and_no_trace(acc):
    s = acc
    sessions = lambda: len(s.redis.call("KEYS", "samlgw:session:*") or [])
    before = sessions()
    built = s.idp.build(in_response_to=start_request(s.gw, s.idp), scope="aff.example",
                        attrs={AFF: ["alum"]})
    b = samltest.Browser()
    page = b.post(s.gw.acs, built.form, follow=False)
    refused_with(s.gw, page, "access_denied")
    assert sessions() == before
    home = b.get(s.gw.url + "/", follow=False)
    assert home.status in (302, 303) and "/login" in home.location
    # The same Response is refused the same way again (nothing was consumed).
    page = b.post(s.gw.acs, built.form, follow=False)
    refused_with(s.gw, page, "access_denied")


def test_refusal_page_in_german(acc):
    s = acc
    page = login(s, "aff.example", headers={"Accept-Language": "de"}, **{AFF: ["alum"]})
    refused_with(s.gw, page, "access_denied")
    assert "gibt keinen Zugang zu dieser Chat-Domain" in page.text, page.text
    assert re.search(r"<code>[0-9a-z]{12}</code>", page.text)


# ------------------------------------------------------------------ eduPersonEntitlement


def test_entitlement_exact(acc):
    s, rule = acc, RULES["ent.example"][0]
    allowed(s, "ent.example", **{ENT: [LIB]})
    allowed(s, "ent.example", **{ENT: ["urn:x:other", LIB]})
    for bad in (LIB.upper(), LIB + ":x", LIB[:-1], "x" + LIB):
        denied(s, "ent.example", rule, **{ENT: [bad]})
    denied(s, "ent.example", rule, **{ENT: None})


@pytest.mark.parametrize("form", ["oid", "oid-no-friendly", "friendly"])
def test_rule_names_match_every_attribute_naming(acc, form):
    """The rule names the attribute by urn:oid; the IdP may send it by urn:oid (with or
    without FriendlyName) or by its friendly name as a basic Name."""
    s = acc
    built = s.idp.build(in_response_to=start_request(s.gw, s.idp), scope="ent.example",
                        attribute_names=form)
    accepted(samltest.Browser().post(s.gw.acs, built.form, follow=False))
    built = s.idp.build(in_response_to=start_request(s.gw, s.idp), scope="ent.example",
                        attribute_names=form, attrs={ENT: ["urn:x:other"]})
    refused_with(s.gw, samltest.Browser().post(s.gw.acs, built.form, follow=False),
                 "access_denied")


# ------------------------------------------------------------------ eduPersonScopedAffiliation


def test_scoped_affiliation(acc):
    s, rule = acc, RULES["scoped.example"][0]
    allowed(s, "scoped.example", **{SAFF: ["staff@scoped.example"]})
    allowed(s, "scoped.example", **{SAFF: ["Staff@SCOPED.example"]})   # case-insensitive
    allowed(s, "scoped.example", **{SAFF: ["faculty@other.example"]})  # "faculty": any scope
    allowed(s, "scoped.example", **{SAFF: ["FACULTY@scoped.example"]})
    # staff, but at another scope than the rule's
    denied(s, "scoped.example", rule, **{SAFF: ["staff@other.example"]})
    denied(s, "scoped.example", rule, **{SAFF: ["member@scoped.example"]})
    # eduPersonAffiliation does not stand in for the scoped attribute
    denied(s, "scoped.example", rule, **{SAFF: None, AFF: ["staff", "faculty"]})


# ------------------------------------------------------------------ several rules


def test_several_rules_all_must_hold(acc):
    s = acc
    aff_rule, ent_rule = RULES["multi.example"]
    allowed(s, "multi.example", **{AFF: ["staff"], ENT: ["urn:x:chat"]})
    allowed(s, "multi.example", **{AFF: ["student"], ENT: [LIB, "https://chat.example/entitled"]})
    denied(s, "multi.example", ent_rule, **{AFF: ["staff"], ENT: [LIB]})
    denied(s, "multi.example", aff_rule, **{AFF: ["alum"], ENT: ["urn:x:chat"]})
    # Both fail: the first rule is the one reported.
    denied(s, "multi.example", aff_rule, **{AFF: None, ENT: None})


def test_domain_without_rules_unaffected(acc):
    s = acc
    allowed(s, "open.example")
    allowed(s, "open.example", **{AFF: None, SAFF: None, ENT: None})
    allowed(s, "open.example", **{AFF: ["alum"]})


def test_rules_checked_after_the_domain_is_chosen(acc):
    """A user no domain takes is refused for that, not for access."""
    s = acc
    built = s.idp.build(in_response_to=start_request(s.gw, s.idp), scope="other.example",
                        attrs={AFF: ["alum"]})
    refused_with(s.gw, samltest.Browser().post(s.gw.acs, built.form, follow=False),
                 "no_domain")


# ------------------------------------------------------------------ configuration errors


BAD_RULES = [
    ("no_colon", "eduPersonAffiliation student", "must be 'ATTRIBUTE: VALUE"),
    ("no_value", "eduPersonAffiliation:", "names no value"),
    ("unknown_attribute", "eduPersonOrgUnitDN: x", "is not an attribute samlgw knows"),
    ("unknown_oid", "urn:oid:1.2.3: x", "is not an attribute samlgw knows"),
    ("commas", "eduPersonAffiliation: student, staff", "separated by spaces, not commas"),
    ("scoped_plain_affiliation", "eduPersonAffiliation: staff@example.org",
     "eduPersonAffiliation values carry no scope"),
    ("scoped_bad_scope", "eduPersonScopedAffiliation: staff@Example..org",
     "VALUE@SCOPE with one '@'"),
    ("scoped_empty_value", "eduPersonScopedAffiliation: @example.org",
     "VALUE@SCOPE with one '@'"),
    ("empty", "", "has no value"),
]


def run_check(s, tmp_path, domain_text):
    """samlgw --check with the gateway's configuration and other [domain] sections:
    (the result, the config path, the number of the line domain_text starts on)."""
    g = Gateway(tmp_path, s.gw.redis, None)
    text = s.gw.config.read_text()
    head = text[:text.index("[domain ")]
    g.config.write_text(head + domain_text)
    r = subprocess.run([SAMLGW_BIN, "--config", str(g.config), "--check"],
                       capture_output=True, text=True, timeout=60)
    return r, str(g.config), head.count("\n") + 1


@pytest.mark.parametrize("case,rule,message", BAD_RULES, ids=[b[0] for b in BAD_RULES])
def test_config_errors(acc, tmp_path, case, rule, message):
    s = acc
    head = "[domain aff.example]\nidp = %s\n" % s.idp.idp
    r, _path, _first = run_check(s, tmp_path / "ok",
                                 head + "require = eduPersonAffiliation: staff\n")
    assert r.returncode == 0, r.stderr
    r, path, first = run_check(s, tmp_path / "bad", head + "require = eduPersonAffiliation: "
                               "staff\nrequire = %s\n" % rule)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "%s:%d: [domain aff.example] require: " % (path, first + 3) in r.stderr, r.stderr
    assert message in r.stderr, r.stderr
