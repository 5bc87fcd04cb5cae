"""Open redirects through /login's return= and the ACS's RelayState.

return= is kept in Redis with the AuthnRequest and is where the ACS sends the browser after
the login. A value that is not a local path of this site, or could turn into another site
for a proxy or a browser that decodes it once more, is refused: samlgw logs
`event=return_refused reason=return_not_local detail=<the rule it breaks>` and the login
ends on public_url + "/". Each value is sent as the query encodes it and, where it fits a
URL as it is, raw (samlgw then sees it percent-decoded once). The control: /foo?x=1 is kept.

RelayState is never read: the ACS sends the browser where the stored request says, so an
evil RelayState changes nothing (control: the same login without RelayState)."""
import re
import urllib.parse

import pytest

import samltest
from conftest import logfmt, outcome, post_xml, record, start_login

# (value, the rule samlgw names in the detail)
EVIL = [
    ("//evil.example", "starts with '//'"),
    ("///evil.example", "starts with '//'"),
    ("\\\\evil.example", "does not start with '/'"),
    ("/\\evil.example", "backslash"),
    ("http:evil.example", "does not start with '/'"),
    ("https://evil.example/", "does not start with '/'"),
    ("%2F%2Fevil.example", "does not start with '/'"),
    ("/%2F/evil.example", "starts with '//'"),
    ("/%2f%2fevil.example", "starts with '//'"),
    ("/%5Cevil.example", "escaped control character or backslash"),
    ("/%5C%5Cevil.example", "escaped control character or backslash"),
    ("/\t/evil.example", "control character"),
    ("/%09/evil.example", "escaped control character"),
    ("/.//evil.example", "'.' or '..' segment"),
    ("/%2e%2e/%2e%2e/x", "'.' or '..' segment"),
    ("/%zz", "malformed percent escape"),
    ("/" + "a" * 600, "longer than 512 bytes"),
]
RAW_DECODED = {  # what samlgw sees of a raw value, when that breaks another rule
    "%2F%2Fevil.example": "starts with '//'",
    "/%2F/evil.example": "starts with '//'",
    "/%2f%2fevil.example": "starts with '//'",
    "/%5Cevil.example": "backslash",
    "/%5C%5Cevil.example": "backslash",
    "/%09/evil.example": "control character",
    "/%2e%2e/%2e%2e/x": "'.' or '..' segment",
}


def _cases():
    out = []
    for value, rule in EVIL:
        out.append((value, "encoded", rule))
        if not re.search(r"[\x00-\x20\x7f]|%zz", value):
            out.append((value, "raw", RAW_DECODED.get(value, rule)))
    return out


CASES = _cases()


def _login(fed, query):
    """GET /login?query (query: a ready query string), answer the AuthnRequest with a
    Response of the test IdP's key: the ACS's outcome."""
    gw = fed.gw
    page = samltest.Browser().get(gw.url + "/login?" + query, follow=False)
    assert page.status == 302, (page.status, page.text[:300])
    xml, _ = samltest.decode_redirect_message(page.location)
    rid = samltest.parse(xml).get("ID")
    return outcome(gw, post_xml(gw, fed.real.build(in_response_to=rid).xml))


def _short(value):
    v = value if len(value) <= 24 else value[:20] + "...(%d)" % len(value)
    return v.replace("\t", "\\t")


@pytest.mark.parametrize("value,form,rule", CASES,
                         ids=["%s-%s" % (_short(v), f) for v, f, _ in CASES])
def test_return_open_redirect(fed, value, form, rule):
    gw = fed.gw
    idp = "idp=" + urllib.parse.quote(fed.real.idp, safe="")
    seen = len(gw.log_lines("return_refused"))
    if form == "encoded":
        got = _login(fed, idp + "&return=" + urllib.parse.quote(value, safe=""))
    else:
        got = _login(fed, idp + "&return=" + value)
    lines = gw.log_lines("return_refused")[seen:]
    ctl = _login(fed, idp + "&return=" + urllib.parse.quote("/foo?x=1", safe=""))
    f = logfmt(lines[-1]) if lines else {}
    ok = (got.accepted and got.location == gw.url + "/" and len(lines) == 1 and
          f.get("reason") == "return_not_local" and rule in f.get("detail", "") and
          ctl.accepted and ctl.location == gw.url + "/foo?x=1")
    record("return=%s (%s)" % (_short(value), form), "factory", "return_not_local, to /",
           "%s, to %s" % (f.get("reason", "no return_refused line"),
                          (got.location or "-").replace(gw.url, "") or "-"),
           "to %s" % (ctl.location or "-").replace(gw.url, ""), ok, f.get("detail", ""))
    assert got.accepted and got.location == gw.url + "/", (value, got.location, got.line)
    assert len(lines) == 1, lines
    assert f["reason"] == "return_not_local" and rule in f["detail"], lines[0]
    assert ctl.accepted and ctl.location == gw.url + "/foo?x=1", ctl.location


RELAY = ["//evil.example", "\\\\evil.example", "http:evil.example", "///evil.example",
         "https://evil.example/", "/%2F/evil.example", "%2F%2Fevil.example"]


@pytest.mark.parametrize("relay", RELAY, ids=[_short(r) for r in RELAY])
def test_relay_state_not_followed(fed, relay):
    """The login started with return=/kept/path; its Response comes back with an evil
    RelayState: the browser goes to /kept/path all the same."""
    gw = fed.gw
    query = "idp=%s&return=%%2Fkept%%2Fpath" % urllib.parse.quote(fed.real.idp, safe="")
    results = []
    for relay_state in (relay, None):  # the attack, then the control
        page = samltest.Browser().get(gw.url + "/login?" + query, follow=False)
        xml, _ = samltest.decode_redirect_message(page.location)
        rid = samltest.parse(xml).get("ID")
        built = fed.real.build(in_response_to=rid).xml
        results.append(outcome(gw, post_xml(gw, built, relay_state=relay_state)))
    got, ctl = results
    want = gw.url + "/kept/path"
    ok = got.accepted and got.location == want and ctl.accepted and ctl.location == want
    record("RelayState=%s" % _short(relay), "factory", "ignored, to /kept/path",
           "to %s" % (got.location or describe_refusal(got)).replace(gw.url, ""),
           "to %s" % (ctl.location or "-").replace(gw.url, ""), ok)
    assert got.accepted and got.location == want, (got.location, got.line)
    assert ctl.accepted and ctl.location == want


def describe_refusal(o):
    return "refused %s" % o.reason
