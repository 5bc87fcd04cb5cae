"""The IdP chooser of a federation-sized deployment: names in the user's language, logos,
the search (?q=), the last choice remembered in a cookie, entities that ask to be hidden
from discovery, and the cap on how many one page lists. One samlgw trusts an aggregate of
factory IdPs (tests/idp/samltest.py ResponseFactory keys) with mdui:UIInfo and entity
categories written here."""
import re
import urllib.parse

import pytest
from lxml import etree

import samltest
from conftest import accepted
from test_login_paths import (MDUI, NS, aggregate, finish_login, idp_entity_xml,
                              make_factory, spawn, template_of)

HIDE = "http://refeds.org/category/hide-from-discovery"
MDATTR = "urn:oasis:names:tc:SAML:metadata:attribute"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42m"
       "P8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
# Beyond the most one page lists (200), so the rest needs a search.
FILLERS = 210


def with_ui(entity, logos=(), categories=()):
    """Adds mdui:Logo elements ((url, width, height, lang)) and entity categories."""
    ui = entity.find("md:IDPSSODescriptor/md:Extensions/{%s}UIInfo" % MDUI, NS)
    for url, w, h, lang in logos:
        logo = etree.SubElement(ui, "{%s}Logo" % MDUI, width=str(w), height=str(h))
        if lang:
            logo.set(XML_LANG, lang)
        logo.text = url
    if categories:
        ext = entity.find("md:Extensions", NS)
        if ext is None:
            ext = etree.Element("{%s}Extensions" % NS["md"])
            entity.insert(0, ext)
        attrs = etree.SubElement(ext, "{%s}EntityAttributes" % MDATTR)
        a = etree.SubElement(attrs, "{%s}Attribute" % SAML,
                             Name="http://macedir.org/entity-category",
                             NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri")
        for c in categories:
            etree.SubElement(a, "{%s}AttributeValue" % SAML).text = c
    return entity


@pytest.fixture(scope="module")
def fed(stack, tmp_path_factory):
    gw0, idp = stack
    base = tmp_path_factory.mktemp("discovery")
    template = template_of(idp)
    key, cert = samltest.make_keypair(base, "fed")
    ids = {}

    def entity(name, names, **ui):
        e = "https://%s.idp.example.net/idp" % name
        ids[name] = e
        return with_ui(idp_entity_xml(template, e, cert, names), **ui)

    entities = [
        entity("alpha", {"en": "Alpha University", "de": "Universität Alpha"},
               logos=[("https://alpha.example.net/logo-en.png", 200, 100, "en"),
                      ("https://alpha.example.net/logo-de.png", 200, 100, "de")]),
        entity("beta", {"en": "Beta Institute of Technology"},
               logos=[(PNG, 16, 16, None), ("http://beta.example.net/insecure.png", 16, 16,
                                            None)]),
        entity("gamma", {"en": "Gamma College"}, logos=[("http://gamma.example.net/l.png",
                                                         32, 32, None)]),
        entity("hidden", {"en": "Hidden Research Lab"}, categories=[HIDE]),
    ] + [entity("filler%03d" % i, {"en": "Zeta Filler %03d" % i}) for i in range(FILLERS)]
    md = aggregate(base / "agg.xml", entities)
    # one idp line per IdP (a list may go on over lines of the same key)
    domains = "[domain example.org]\n%sscope = example.org\n" % "".join(
        "idp = %s\n" % e for e in ids.values())
    gw = spawn(base, gw0.redis, ids["alpha"], md, domains=domains)
    gw.ids = ids
    gw.key, gw.cert = key, cert
    yield gw
    gw.stop()


def chooser(gw, browser=None, lang=None, **params):
    b = browser or samltest.Browser()
    headers = {"Accept-Language": lang} if lang else None
    page = b.get(gw.url + "/login", params=dict({"return": "/after"}, **params),
                 follow=False, headers=headers)
    assert page.status == 200, (page.status, page.text[:500])
    return page


def names(page):
    return re.findall(r'<span class="idp-name">([^<]*)</span>', page.text)


def listed(page):
    return re.findall(r'<li data-search="[^"]*"><a class="idp" href="([^"]*)"', page.text)


def test_names_in_the_users_language_sorted(fed):
    en = names(chooser(fed))
    assert en[:3] == ["Alpha University", "Beta Institute of Technology", "Gamma College"], en
    de = names(chooser(fed, lang="de-DE,de;q=0.9"))
    assert de[0] == "Beta Institute of Technology" and "Universität Alpha" in de, de[:4]
    assert "Alpha University" not in de


def test_hidden_entities_are_not_offered_but_work(fed):
    page = chooser(fed)
    assert "Hidden Research Lab" not in page.text and fed.ids["hidden"] not in page.text
    assert names(chooser(fed, q="hidden")) == []
    direct = samltest.Browser().get(fed.url + "/login", params={"idp": fed.ids["hidden"]},
                                    follow=False)
    assert direct.status == 302 and direct.location.startswith(fed.ids["hidden"] + "/sso?")


def test_search(fed):
    for q, want in (("alpha", ["Alpha University"]), ("ALPHA", ["Alpha University"]),
                    ("universität", ["Alpha University"]),  # the German name
                    ("technology", ["Beta Institute of Technology"]),
                    ("gamma.idp.example", ["Gamma College"]),  # the entityID
                    ("  college  ", ["Gamma College"])):
        page = chooser(fed, q=q)
        assert names(page) == want, (q, names(page))
        assert "Organisations found: %d" % len(want) in page.text
        assert 'value="%s"' % q.strip() in page.text
    none = chooser(fed, q="no such organisation")
    assert names(none) == [] and "No organisation matches this search." in none.text
    # The search form keeps the return path and works without JavaScript (GET /login).
    form = none.form("q")
    assert form.method.upper() == "GET" and form.action == fed.url + "/login"
    assert form.get("return") == "/after"
    # Hostile input is shown escaped and capped.
    evil = chooser(fed, q='"><script>alert(1)</script>' + "x" * 500)
    assert "<script>alert(1)" not in evil.text
    assert "&lt;script&gt;" in evil.text and "x" * 200 not in evil.text


def test_list_is_capped_and_search_reaches_the_rest(fed):
    page = chooser(fed)
    assert len(listed(page)) == 200
    total = 3 + FILLERS
    assert "Organisations found: %d" % total in page.text
    assert "(%d)" % (total - 200) in page.text and "make the search more precise" in page.text
    last = chooser(fed, q="filler 209")
    assert names(last) == ["Zeta Filler 209"]


def test_logos(fed):
    page = chooser(fed)
    imgs = re.findall(r'<a class="idp" href="[^"]*"><img class="idp-logo" src="([^"]*)" alt="" '
                      r'width="(\d+)" height="(\d+)"', page.text)
    by_src = {src: (int(w), int(h)) for src, w, h in imgs}
    # Alpha's English logo in English, scaled into 64 px keeping 2:1; Beta's data: URL;
    # no http: logo (Beta's second, Gamma's only).
    assert by_src.get("https://alpha.example.net/logo-en.png") == (64, 32), by_src
    assert by_src.get(PNG) == (16, 16), by_src
    assert not [s for s in by_src if s.startswith("http:")], by_src
    assert len(imgs) == 2
    de = chooser(fed, lang="de")
    assert 'src="https://alpha.example.net/logo-de.png"' in de.text
    # Only this page may load images from other sites.
    assert "img-src 'self' data: https:" in page.headers["Content-Security-Policy"]
    other = samltest.Browser().get(fed.url + "/saml/nothing", follow=False)
    assert "https:" not in other.headers.get("Content-Security-Policy", "")


def test_last_choice_is_remembered(fed):
    b = samltest.Browser()
    first = chooser(fed, browser=b)
    assert "Used last time in this browser" not in first.text
    href = [l for l in listed(first) if "gamma" in l][0]
    go = b.get(href.replace("&amp;", "&"), follow=False)
    assert go.status == 302 and go.location.startswith(fed.ids["gamma"] + "/sso?")
    cookie = go.headers["Set-Cookie"]
    assert cookie.startswith("samlgw_idp=") and "HttpOnly" in cookie and \
        "SameSite=Lax" in cookie and "Max-Age=31536000" in cookie, cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{32}", value) and "gamma" not in value
    again = chooser(fed, browser=b)
    head = again.text.split('<form class="idp-search"')[0]
    assert "Used last time in this browser" in head and "Gamma College" in head
    # The remembered IdP leads to its login with this page's return path.
    last = re.search(r'<section class="card last-idp".*?href="([^"]*)"', again.text, re.S)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(last.group(1).replace("&amp;", "&")).query)
    assert q == {"idp": [fed.ids["gamma"]], "return": ["/after"]}
    # A cookie naming nothing samlgw knows is ignored.
    other = samltest.Browser()
    other.get(fed.url + "/healthz")
    page = other.get(fed.url + "/login", follow=False,
                     headers={"Cookie": "samlgw_idp=" + "0" * 32})
    assert "Used last time" not in page.text


def test_login_from_the_chooser(fed):
    b = samltest.Browser()
    page = chooser(fed, browser=b, q="alpha")
    go = b.get(listed(page)[0].replace("&amp;", "&"), follow=False)
    done = finish_login(fed, make_factory(fed, (fed.key, fed.cert, fed.ids["alpha"], None)),
                        go)
    accepted(done)
    assert done.location == fed.public + "/after"
