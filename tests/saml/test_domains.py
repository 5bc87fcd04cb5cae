"""Many domains (issue "federation-ready", point 3): logins from two IdPs land in two
domains, and every cross-domain attempt lands in the right domain or is refused, never in
another one. Also the configuration errors that keep a user from fitting two domains.

One gateway (fixture `doms`) trusts three IdPs that exist only as ResponseFactory keys:

- A: shibmd:Scope a.example, shared.example, b.example and y.example (its metadata lets it
  assert b.example and y.example, but no [domain] of those scopes lists it);
- B: shibmd:Scope b.example, shared.example and y.example;
- C: shibmd:Scope a.example, b.example and m.example; bound to two domains.

and five domains:

    [domain a.example]  idp = A, C   scope = a.example
    [domain b.example]  idp = B, C   scope = b.example
    [domain x.example]  idp = A      scope = x.example, shared.example
    [domain y.example]  idp = B      scope = y.example, shared.example
    [domain m.example]  idp = C      scope = m.example   localpart = mail

shared.example is a scope of x.example and of y.example, which list different IdPs."""
import re
import subprocess
from types import SimpleNamespace

import pytest
from lxml import etree

import samltest
from conftest import (started, REPO, SAMLGW_BIN, SP_ENTITY, Gateway, accepted,
                      factory_idp_metadata, post, refused_with)

TEMPLATE = REPO / "tests" / "fuzz" / "acs" / "idp-metadata.xml"
SHIBMD = {
    "A": ["a.example", "shared.example", "b.example", "y.example"],
    "B": ["b.example", "shared.example", "y.example"],
    "C": ["a.example", "b.example", "m.example"],
}
DOMAINS = """[domain a.example]
idp = {A}, {C}
scope = a.example

[domain b.example]
idp = {B}
idp = {C}
scope = b.example

[domain x.example]
idp = {A}
scope = x.example shared.example

[domain y.example]
idp = {B}
scope = y.example, shared.example

[domain m.example]
idp = {C}
scope = m.example
localpart = mail
"""
# (IdP, scope of every scoped identifier) -> the domain, or the refusal reason.
EXPECTED = {
    ("A", "a.example"): "a.example",
    ("A", "shared.example"): "x.example",
    ("A", "b.example"): "no_domain",       # a shibmd:Scope of A, but b.example lists B, C
    ("A", "y.example"): "no_domain",       # the same for y.example
    ("A", "x.example"): "scope",           # x.example lists A, but A's metadata lacks it
    ("A", "m.example"): "scope",
    ("A", "evil.example"): "scope",
    ("B", "b.example"): "b.example",
    ("B", "shared.example"): "y.example",
    ("B", "y.example"): "y.example",
    ("B", "a.example"): "scope",
    ("B", "x.example"): "scope",
    ("B", "m.example"): "scope",
    ("C", "a.example"): "a.example",
    ("C", "b.example"): "b.example",
    ("C", "m.example"): "m.example",       # by mail (localpart = mail of m.example)
    ("C", "shared.example"): "scope",
    ("C", "x.example"): "scope",
    ("C", "y.example"): "scope",
}
ALL_DOMAINS = {"a.example", "b.example", "x.example", "y.example", "m.example"}


@pytest.fixture(scope="module")
def doms(tmp_path_factory, redis):
    template = etree.fromstring(TEMPLATE.read_bytes())
    for attempt in range(3):
        base = tmp_path_factory.mktemp("doms")
        gw = Gateway(base / "gw", redis, None)
        factories, entities = {}, {}
        agg = etree.Element("{%s}EntitiesDescriptor" % samltest.NS["md"],
                            nsmap={"md": samltest.NS["md"]})
        for name, scopes in SHIBMD.items():
            key, cert = samltest.make_keypair(base / "keys", name)
            entity = "https://%s.idp.example.net/idp" % name.lower()
            agg.append(factory_idp_metadata(template, entity, cert, scopes))
            factories[name] = samltest.ResponseFactory(key, cert, entity, SP_ENTITY, gw.acs,
                                                       sp_enc_cert=gw.sp_cert, scope=scopes[0])
            entities[name] = entity
        federation = base / "federation.xml"
        federation.write_bytes(etree.tostring(agg, xml_declaration=True, encoding="UTF-8"))
        gw.write_config(federation, domains=DOMAINS.format(**entities))
        if started(gw, attempt):
            break
    try:
        yield SimpleNamespace(gw=gw, federation=federation, entities=entities, **factories)
    finally:
        gw.stop()


def outcome(gw, page):
    """The domain the login landed in (from login_ok), or the refusal reason."""
    if page.status == 303:
        line = gw.log_lines("login_ok")[-1]
        jid = re.search(r" jid=(\S+)", line).group(1)
        domain = re.search(r" domain=(\S+)", line).group(1)
        assert jid.endswith("@" + domain), line
        return domain
    m = re.search(r"<code>([0-9a-z]{12})</code>", page.text)
    assert m, (page.status, page.text[:500])
    line = [l for l in gw.log_lines("login_refused") if "ref=%s " % m.group(1) in l + " "][0]
    return re.search(r" reason=(\S+)", line).group(1)


def test_two_idps_two_domains(doms):
    s = doms
    page = post(s.gw, s.A, scope="a.example")[0]
    assert outcome(s.gw, page) == "a.example"
    line = s.gw.log_lines("login_ok")[-1]
    assert "jid=alice@a.example " in line and "idp=%s " % s.A.idp in line, line
    page = post(s.gw, s.B, user="bob", scope="b.example")[0]
    assert outcome(s.gw, page) == "b.example"
    line = s.gw.log_lines("login_ok")[-1]
    assert "jid=bob@b.example " in line and "idp=%s " % s.B.idp in line, line


@pytest.mark.parametrize("idp,scope", sorted(EXPECTED), ids=["%s-%s" % k for k in sorted(EXPECTED)])
def test_every_idp_and_scope(doms, idp, scope):
    """Right domain or refused: never another domain."""
    s = doms
    got = outcome(s.gw, post(s.gw, getattr(s, idp), scope=scope)[0])
    assert got == EXPECTED[(idp, scope)]


def test_idp_asserting_another_domains_scope(doms):
    """A's metadata lists b.example, yet [domain b.example] does not list A: refused, not
    placed in b.example, nor in A's own domain."""
    s = doms
    assert outcome(s.gw, post(s.gw, s.A, scope="a.example")[0]) == "a.example"
    page = post(s.gw, s.A, scope="b.example")[0]
    refused_with(s.gw, page, "no_domain")
    # B's metadata does not list a.example at all: the scope check refuses.
    refused_with(s.gw, post(s.gw, s.B, scope="a.example")[0], "scope")


def test_shared_scope_follows_the_idp(doms):
    """shared.example is a scope of x.example (A) and of y.example (B)."""
    s = doms
    assert outcome(s.gw, post(s.gw, s.A, scope="shared.example")[0]) == "x.example"
    assert outcome(s.gw, post(s.gw, s.B, scope="shared.example")[0]) == "y.example"
    # Only the eppn's scope picks the domain; a scoped affiliation elsewhere does not.
    page = post(s.gw, s.B, scope="b.example",
                attrs={"eduPersonScopedAffiliation": "member@shared.example"})[0]
    assert outcome(s.gw, page) == "b.example"


def test_idp_bound_to_two_domains(doms):
    """C serves a.example and b.example: the user's scope picks exactly one."""
    s = doms
    assert outcome(s.gw, post(s.gw, s.C, scope="a.example")[0]) == "a.example"
    assert outcome(s.gw, post(s.gw, s.C, scope="b.example")[0]) == "b.example"
    refused_with(s.gw, post(s.gw, s.C, scope="evil.example")[0], "scope")


def test_two_domains_fit_one_user_refused(doms):
    """C's user whose eppn fits a.example and whose mail fits m.example (localpart =
    mail) would fit two domains: neither is chosen."""
    s = doms
    only_mail = {"eduPersonPrincipalName": None, "subject-id": None, "pairwise-id": None,
                 "eduPersonScopedAffiliation": None, "mail": "carol@m.example"}
    assert outcome(s.gw, post(s.gw, s.C, attrs=only_mail)[0]) == "m.example"
    assert outcome(s.gw, post(s.gw, s.C, scope="a.example",
                              attrs={"mail": "carol@c.invalid"})[0]) == "a.example"
    page = post(s.gw, s.C, scope="a.example", attrs={"mail": "carol@m.example"})[0]
    line = refused_with(s.gw, page, "domain_ambiguous")
    assert "a.example" in line and "m.example" in line, line
    assert "more than one chat domain" in page.text


# ------------------------------------------------------------------ configuration errors


def check(gw, domains, tmp_path, name):
    """samlgw --check over the gateway's configuration with other [domain] sections:
    (exit status, stderr, the config path)."""
    g = Gateway(tmp_path / name, gw.redis, None)
    text = gw.config.read_text()
    text = text[:text.index("[domain ")] + domains
    g.config.write_text(text)
    r = subprocess.run([SAMLGW_BIN, "--config", str(g.config), "--check"],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stderr, str(g.config)


def line_of(config, needle, nth=1):
    lines = open(config).read().splitlines()
    hits = [i + 1 for i, l in enumerate(lines) if needle in l]
    return hits[nth - 1]


def test_config_shared_idp_and_scope_refused(doms, tmp_path):
    s, e = doms, doms.entities
    ok = "[domain a.example]\nidp = %s\n\n[domain b.example]\nidp = %s\n" % (e["A"], e["A"])
    code, err, _ = check(s.gw, ok, tmp_path, "ok")
    assert code == 0, err
    bad = ("[domain a.example]\nidp = %s\nscope = a.example, shared.example\n\n"
           "[domain b.example]\nidp = %s, %s\nscope = b.example shared.example\n"
           % (e["A"], e["B"], e["A"]))
    code, err, path = check(s.gw, bad, tmp_path, "bad")
    assert code == 1, err
    want = "%s:%d: [domain b.example] scope shared.example is also a scope of [domain " \
           "a.example] (line %d), and both list the IdP %s" % (
               path, line_of(path, "scope = b.example"), line_of(path, "[domain a.example]"),
               e["A"])
    assert want in err, err


def test_config_default_scope_collides(doms, tmp_path):
    """A domain's default scope is its name: another domain of the same IdP listing it
    collides, reported on the line of the section without a scope line."""
    s, e = doms, doms.entities
    bad = ("[domain a.example]\nidp = %s\nscope = b.example\n\n"
           "[domain b.example]\nidp = %s\n" % (e["C"], e["C"]))
    code, err, path = check(s.gw, bad, tmp_path, "dflt")
    assert code == 1, err
    assert "%s:%d: [domain b.example] scope b.example is also a scope of [domain a.example]" % (
        path, line_of(path, "[domain b.example]")) in err, err


def test_config_uid_domain_must_own_its_idp(doms, tmp_path):
    s, e = doms, doms.entities
    ok = ("[domain a.example]\nidp = %s\nlocalpart = uid\n\n"
          "[domain b.example]\nidp = %s\n" % (e["A"], e["B"]))
    assert check(s.gw, ok, tmp_path, "uid-ok")[0] == 0
    bad = ("[domain a.example]\nidp = %s\n\n"
           "[domain b.example]\nidp = %s\nlocalpart = uid\n" % (e["A"], e["A"]))
    code, err, path = check(s.gw, bad, tmp_path, "uid-bad")
    assert code == 1, err
    assert "%s:%d: [domain b.example] and [domain a.example] (line %d) both list the IdP %s, " \
           "and [domain b.example] takes the localpart from uid" % (
               path, line_of(path, "localpart = uid"), line_of(path, "[domain a.example]"),
               e["A"]) in err, err


def test_config_error_stops_the_server(doms, tmp_path):
    s, e = doms, doms.entities
    bad = ("[domain a.example]\nidp = %s\n\n[domain b.example]\nidp = %s\nscope = a.example\n"
           % (e["A"], e["A"]))
    g = Gateway(tmp_path / "srv", s.gw.redis, None)
    text = s.gw.config.read_text()
    g.config.write_text(text[:text.index("[domain ")] + bad)
    r = subprocess.run([SAMLGW_BIN, "--config", str(g.config)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 78, r.stderr
    assert "[domain b.example] scope a.example is also a scope of [domain a.example]" in r.stderr
