"""The account pages' guarantees, each seen failing and passing: the session cookie's flags
(http and https public_url), the session's idle and absolute timeouts, CSRF (and Origin) on
the state-changing POSTs, the token form's validation, "revoke all" (only this user's), the
token page (copy button, manual settings, shown once, the QR code's exact content), the
/metrics counters and the page language from Accept-Language.

Two gateways share this module's Redis: `stack` (public_url http://127.0.0.1:PORT, real
browser flow through the pysaml2 IdP) and `https_gw` (public_url https://chat.example.org,
still served on plain http loopback as behind a TLS proxy; logins are Responses signed with
the test IdP's key and POSTed to its ACS). Session timeouts cannot be configured below 60 s,
so the tests age a session in Redis (its TTL, its `created` field) instead of sleeping."""
import hashlib
import json
import re
import shutil
import subprocess
import time
import urllib.request
from datetime import datetime
from types import SimpleNamespace

import pytest
from lxml import html as lhtml

import samltest
from conftest import SP_ENTITY, Gateway, accepted, config_text, refused_with, start_request

ALICE, BOB = "alice@example.org", "bob@example.org"
PUBLIC = "https://chat.example.org"
HOST_COOKIE, PLAIN_COOKIE = "__Host-samlgw_session", "samlgw_session"
IDLE, MAX = 90, 300  # https_gw's web.session_idle and web.session_max


# ---------------------------------------------------------------- helpers

def login(gw, user="alice"):
    """The real flow in a new Browser, stopping on the account page: (browser, page)."""
    b = samltest.Browser()
    page = b.flow(gw.url + "/", user=user,
                  stop=lambda p: p.status == 200 and p.url == gw.url + "/")
    assert page.status == 200 and page.url == gw.url + "/", (page.status, page.text[:500])
    return b, page


def issue_form(page):
    return next(f for f in page.forms if f.action.endswith("/tokens"))


def live(gw, jid=ALICE):
    """The ids of jid's live tokens, by samlgw-token list."""
    r = gw.token_cli("list", "--jid", jid)
    assert r.returncode == 0, r.stderr
    return [line.split("\t") for line in r.stdout.splitlines() if line.strip()]


def live_ids(gw, jid=ALICE):
    return sorted(t[0] for t in live(gw, jid))


def cli_issue(gw, jid, label):
    r = gw.token_cli("issue", "--jid", jid, "--label", label)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    ids = [t[0] for t in live(gw, jid) if t[1] == label]
    assert len(ids) == 1, live(gw, jid)
    return token, ids[0]


def verifies(gw, jid, token):
    r = gw.token_cli("verify", "--jid", jid, input=token + "\n")
    assert r.returncode in (0, 1), r.stderr
    return r.returncode == 0


def token_of(page):
    m = re.search(r'value="(samlgw_[A-Za-z0-9_-]+)"', page.text)
    assert m, page.text[:3000]
    return m.group(1)


def set_cookie(page):
    """The one Set-Cookie of page: (name, value, {attribute (lower case): value or True})."""
    values = page.headers.get_all("Set-Cookie") or []
    assert len(values) == 1, values
    first, *rest = [p.strip() for p in values[0].split(";")]
    name, _, value = first.partition("=")
    attrs = {}
    for a in rest:
        k, eq, v = a.partition("=")
        attrs[k.lower()] = v if eq else True
    return name, value, attrs


def session_key(sid):
    """kv.c's key of a session: prefix, "session:", SHA-256 of "session\\0" + id."""
    return "samlgw:session:" + hashlib.sha256(b"session\0" + sid.encode()).hexdigest()


def metrics(gw):
    with urllib.request.urlopen(gw.url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def refused_reason(reason):
    return 'samlgw_logins_total{result="refused",reason="%s"}' % reason


def decode_qr(svg, directory):
    """The text of the QR code drawn by svg: rendered by rsvg-convert (librsvg2-bin) and
    read by zbarimg (zbar-tools), both independent of samlgw's libqrencode."""
    missing = [t for t in ("rsvg-convert", "zbarimg") if shutil.which(t) is None]
    if missing:
        pytest.fail("%s not installed (Debian librsvg2-bin, zbar-tools)" % ", ".join(missing))
    src, png = directory / "qr.svg", directory / "qr.png"
    src.write_text(svg)
    subprocess.run(["rsvg-convert", "--background-color=white", "-w", "600", "-o", str(png),
                    str(src)], check=True, capture_output=True, timeout=20)
    r = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable",
                        str(png)], capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.endswith("\n") and out.count("\n") == 1, out  # one symbol
    return out[:-1]


# ---------------------------------------------------------------- the https gateway

@pytest.fixture(scope="module")
def https_gw(tmp_path_factory, stack):
    """A second samlgw on this module's Redis trusting the stack's IdP, with public_url
    https://chat.example.org, web.session_idle = IDLE, web.session_max = MAX,
    token.max_ttl = 30d and token.services written loosely ("XMPP, imap")."""
    _, idp = stack
    for attempt in range(3):
        gw = Gateway(tmp_path_factory.mktemp("https") / "gw", stack[0].redis, idp.entity_id)
        text = config_text(gw, idp.metadata_path)
        for old, new in (("public_url = %s\n" % gw.url, "public_url = %s\n" % PUBLIC),
                         ("[token]\nservices = xmpp,imap\n",
                          "[token]\nservices = XMPP, imap\nmax_ttl = 30d\n"),
                         ("[web]\n", "[web]\nsession_idle = %d\nsession_max = %d\n"
                          "xmpp_port = 5223\n" % (IDLE, MAX))):
            assert old in text, old
            text = text.replace(old, new)
        gw.config.write_text(text)
        try:
            gw.start()
            break
        except RuntimeError as e:
            gw.stop()
            if "in use" not in str(e) or attempt == 2:
                raise
    try:
        yield SimpleNamespace(gw=gw, idp=idp)
    finally:
        gw.stop()


def https_login(h, user="alice"):
    """A login at https_gw: its ACS's 303 page."""
    rid = start_request(h.gw, h.idp)
    factory = h.idp.factory(SP_ENTITY, PUBLIC + "/saml/acs", sp_enc_cert=h.gw.sp_cert)
    built = factory.build(in_response_to=rid, user=user)
    page = samltest.Browser().post(h.gw.url + "/saml/acs", built.form, follow=False)
    accepted(page)
    return page


def https_sid(h, user="alice"):
    name, sid, _ = set_cookie(https_login(h, user))
    assert name == HOST_COOKIE
    return sid


def https_get(h, path, sid, name=HOST_COOKIE):
    return samltest.Browser().get(h.gw.url + path, follow=False,
                                  headers={"Cookie": "%s=%s" % (name, sid)})


def https_post(h, action, sid, data):
    """POST data to a form action of https_gw (an https://chat.example.org URL, sent to
    its loopback port) with the session cookie."""
    assert action.startswith(PUBLIC + "/"), action
    return samltest.Browser().post(h.gw.url + action[len(PUBLIC):], data, follow=False,
                                   headers={"Cookie": "%s=%s" % (HOST_COOKIE, sid)})


# ---------------------------------------------------------------- 1. cookie and timeouts

def test_cookie_flags_https(https_gw):
    """public_url https: the ACS's cookie is __Host-samlgw_session, Secure, HttpOnly,
    SameSite=Lax, Path=/, no Domain, Max-Age = web.session_max. Only that name opens the
    session (a sibling host can set the unprefixed one)."""
    h = https_gw
    page = https_login(h)
    assert page.location == PUBLIC + "/", page.location
    name, sid, attrs = set_cookie(page)
    assert name == HOST_COOKIE and len(sid) >= 22, (name, sid)
    assert attrs.get("secure") is True and attrs.get("httponly") is True, attrs
    assert attrs.get("samesite") == "Lax" and attrs.get("path") == "/", attrs
    assert "domain" not in attrs and attrs.get("max-age") == str(MAX), attrs
    ok = https_get(h, "/", sid)
    assert ok.status == 200 and ALICE in ok.text, (ok.status, ok.text[:300])
    plain = https_get(h, "/", sid, name=PLAIN_COOKIE)
    assert plain.status == 302 and plain.location == PUBLIC + "/login", plain.status


def test_cookie_flags_http(stack):
    """public_url http: samlgw_session, HttpOnly, SameSite=Lax, Path=/, and not Secure."""
    gw, _ = stack
    b, _ = login(gw)
    acs = [p for p in b.history if p.method == "POST" and p.url == gw.acs]
    assert len(acs) == 1 and acs[0].status == 303, acs
    name, sid, attrs = set_cookie(acs[0])
    assert name == PLAIN_COOKIE and sid == b.cookie(PLAIN_COOKIE), name
    assert attrs.get("httponly") is True and attrs.get("samesite") == "Lax", attrs
    assert attrs.get("path") == "/" and "secure" not in attrs, attrs


def test_session_idle_timeout(https_gw):
    """A new session lives web.session_idle in Redis; a request within that window renews
    it to the full idle time; once idle that long, GET / sends the browser to /login.
    Control: a fresh session works."""
    h = https_gw
    sid = https_sid(h)
    key = session_key(sid)
    assert IDLE - 10 < h.gw.redis.call("TTL", key) <= IDLE
    h.gw.redis.call("EXPIRE", key, 5)  # 85 s without a request
    page = https_get(h, "/", sid)
    assert page.status == 200 and ALICE in page.text
    assert IDLE - 10 < h.gw.redis.call("TTL", key) <= IDLE  # renewed
    h.gw.redis.call("PEXPIRE", key, 200)  # idle for web.session_idle
    time.sleep(0.4)
    gone = https_get(h, "/", sid)
    assert gone.status == 302 and gone.location == PUBLIC + "/login", gone.status
    fresh = https_sid(h)
    assert https_get(h, "/", fresh).status == 200


def test_session_absolute_timeout(https_gw):
    """web.session_max after the login the session ends however active it is: GET / then
    redirects to /login and the session is deleted. Control: just inside the limit it
    still works."""
    h = https_gw
    sid = https_sid(h)
    key = session_key(sid)
    h.gw.redis.call("HSET", key, "created", str(int(time.time()) - MAX + 20))
    page = https_get(h, "/", sid)
    assert page.status == 200 and ALICE in page.text, page.status
    h.gw.redis.call("HSET", key, "created", str(int(time.time()) - MAX - 1))
    gone = https_get(h, "/", sid)
    assert gone.status == 302 and gone.location == PUBLIC + "/login", gone.status
    assert h.gw.redis.call("EXISTS", key) == 0


# ---------------------------------------------------------------- 2. CSRF

def test_csrf_on_issue(stack):
    """POST /tokens needs this session's CSRF token, and a cross-site Origin is refused
    even with it: each is a 403 and issues nothing. Controls: the right token, with no
    Origin and with public_url's origin, issue one each."""
    gw, _ = stack
    b, page = login(gw)
    _, bob_page = login(gw, "bob")
    form = issue_form(page)
    csrf = form.get("csrf")
    bob_csrf = issue_form(bob_page).get("csrf")
    assert csrf and bob_csrf and csrf != bob_csrf
    before = live_ids(gw)
    wrong = "A" * len(csrf) if csrf != "A" * len(csrf) else "B" * len(csrf)
    for fields, headers in (({"csrf": wrong}, {}),
                            ({"csrf": None}, {}),
                            ({"csrf": ""}, {}),
                            ({"csrf": csrf[:-1]}, {}),
                            ({"csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}, {}),
                            ({"csrf": csrf + "A"}, {}),
                            ({"csrf": bob_csrf}, {}),
                            ({}, {"Origin": "https://evil.example.net"}),
                            ({}, {"Origin": "null"}),
                            ({}, {"Origin": gw.url + ".evil.example.net"})):
        r = b.post(form.action, form.values(label="csrf", **fields), follow=False,
                   headers=headers)
        assert r.status == 403, (fields, headers, r.status, r.text[:300])
        assert live_ids(gw) == before, (fields, headers)
    ok = b.post(form.action, form.values(label="csrf"), follow=False)
    assert ok.status == 200, (ok.status, ok.text[:300])
    ok = b.post(form.action, form.values(label="csrf"), follow=False,
                headers={"Origin": gw.url})
    assert ok.status == 200, (ok.status, ok.text[:300])
    assert len(live_ids(gw)) == len(before) + 2


def test_csrf_on_revoke(stack):
    """POST /tokens/revoke (one id, or all) with a wrong, missing or other session's CSRF
    token, or a cross-site Origin: 403 and the token lives. Control: the right token
    revokes it."""
    gw, _ = stack
    b, _ = login(gw)
    _, bob_page = login(gw, "bob")
    token, tid = cli_issue(gw, ALICE, "csrf-revoke")
    account = b.get(gw.url + "/")
    form = next(f for f in account.forms if f.get("id") == tid)
    all_form = next(f for f in account.forms if f.get("all"))
    csrf = form.get("csrf")
    bob_csrf = issue_form(bob_page).get("csrf")
    before = live_ids(gw)
    for f in (form, all_form):
        for fields, headers in (({"csrf": "x" * len(csrf)}, {}),
                                ({"csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}, {}),
                                ({"csrf": None}, {}),
                                ({"csrf": bob_csrf}, {}),
                                ({}, {"Origin": "https://evil.example.net"})):
            r = b.post(f.action, f.values(**fields), follow=False, headers=headers)
            assert r.status == 403, (f, fields, headers, r.status)
            assert live_ids(gw) == before and verifies(gw, ALICE, token)
    r = b.post(form.action, form.values(), follow=False, headers={"Origin": gw.url})
    assert r.status == 303 and r.location == gw.url + "/", r.status
    assert tid not in live_ids(gw) and not verifies(gw, ALICE, token)


# ---------------------------------------------------------------- 3. the token form

def test_token_form_validation(stack):
    """A lifetime that is not one of the offered ones (or not a number, or above
    token.max_ttl) and a service not in token.services (or "*") are refused with 400 and
    issue nothing. Control: an offered lifetime and one service of token.services issue a
    token with exactly those."""
    gw, _ = stack
    b, page = login(gw)
    form = issue_form(page)
    offered = re.findall(r'<option value="(\d+)"', page.text)
    assert offered == ["86400", "604800", "2592000", "7776000"], offered
    before = live_ids(gw)
    for fields in ({"ttl": "7200"}, {"ttl": "7776001"}, {"ttl": "86400s"}, {"ttl": ""},
                   {"ttl": "-86400"}, {"service": "smtp"}, {"service": "*"},
                   {"service": "XMPP"}):
        r = b.post(form.action, form.values(label="bad-form", **fields), follow=False)
        assert r.status == 400, (fields, r.status, r.text[:300])
        assert live_ids(gw) == before, fields
    r = b.post(form.action, [(k, v) for k, v in form.values(label="good-form", ttl="86400")
                             if k != "service"] + [("service", "imap")], follow=False)
    assert r.status == 200, (r.status, r.text[:500])
    new = [t for t in live(gw) if t[1] == "good-form"]
    assert len(new) == 1 and new[0][2] == "imap", new
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    lifetime = datetime.strptime(new[0][4], fmt) - datetime.strptime(new[0][3], fmt)
    assert lifetime.total_seconds() == 86400, new
    assert verifies(gw, ALICE, token_of(r)) is False  # issued for imap only ...
    ok = gw.token_cli("verify", "--jid", ALICE, "--service", "imap",
                      input=token_of(r) + "\n")
    assert ok.returncode == 0, ok.stderr  # ... and valid there


def test_token_form_max_ttl_and_loose_services(https_gw):
    """token.max_ttl = 30d: the page offers no longer lifetime, and 90d (one of
    web.token_ttls) is refused. token.services = "XMPP, imap": the page's checkboxes
    (xmpp, imap) are accepted as offered. Control: 30d with the page's services issues."""
    h = https_gw
    sid = https_sid(h)
    page = https_get(h, "/", sid)
    assert page.status == 200
    offered = re.findall(r'<option value="(\d+)"', page.text)
    assert offered == ["86400", "604800", "2592000"], offered
    form = issue_form(page)
    assert [v for k, v in form.values() if k == "service"] == ["xmpp", "imap"], form
    before = live_ids(h.gw)
    r = https_post(h, form.action, sid, form.values(label="too-long", ttl="7776000"))
    assert r.status == 400, (r.status, r.text[:300])
    assert live_ids(h.gw) == before
    r = https_post(h, form.action, sid, form.values(label="month", ttl="2592000"))
    assert r.status == 200, (r.status, r.text[:500], h.gw.log()[-1500:])
    new = [t for t in live(h.gw) if t[1] == "month"]
    assert len(new) == 1 and new[0][2] == "xmpp,imap", new
    assert "5223" in r.text  # web.xmpp_port on the manual settings


def test_revoke_all_only_this_user(stack):
    """"Revoke all" revokes every live token of the user, issued on the web or by the
    CLI, and none of another user's; revoking another user's token by its id is refused
    (404) and leaves it valid."""
    gw, _ = stack
    b, page = login(gw)
    tokens = [token_of(b.submit(issue_form(page), label="web-%d" % i)) for i in range(2)]
    tokens.append(cli_issue(gw, ALICE, "cli-alice")[0])
    bob_token, bob_id = cli_issue(gw, BOB, "cli-bob")
    assert all(verifies(gw, ALICE, t) for t in tokens)
    account = b.get(gw.url + "/")
    one = next(f for f in account.forms if f.get("id"))
    r = b.post(one.action, one.values(id=bob_id), follow=False)
    assert r.status == 404, (r.status, r.text[:300])
    assert verifies(gw, BOB, bob_token) and bob_id in live_ids(gw, BOB)
    assert len(live_ids(gw)) >= 3
    all_form = next(f for f in account.forms if f.get("all"))
    r = b.submit(all_form, follow=False)
    assert r.status == 303, (r.status, r.text[:300])
    assert live_ids(gw) == []
    assert not any(verifies(gw, ALICE, t) for t in tokens)
    assert verifies(gw, BOB, bob_token) and bob_id in live_ids(gw, BOB)
    after = b.get(gw.url + "/")
    assert after.status == 200 and not any(f.get("all") for f in after.forms)
    gw.token_cli("revoke", "--jid", BOB, "--all")


# ---------------------------------------------------------------- 4. the token page

def test_token_page(stack, tmp_path):
    """The page after issuing: a copy button bound to the read-only token field, the
    server and port to enter by hand, no caching, and a QR code that encodes exactly
    {"protocol":"xmpp","address":JID,"password":TOKEN}. The token is shown once: the
    account page after it does not hold it."""
    gw, _ = stack
    b, page = login(gw)
    issued = b.submit(issue_form(page), label="phone")
    assert issued.status == 200, (issued.status, issued.text[:500])
    assert "no-store" in issued.headers.get("Cache-Control", "")
    token = token_of(issued)
    doc = lhtml.fromstring(issued.text)
    buttons = doc.xpath("//button[@data-copy]")
    assert len(buttons) == 1 and buttons[0].get("type") == "button", buttons
    field = doc.get_element_by_id(buttons[0].get("data-copy"))
    assert field.tag == "input" and field.get("value") == token
    assert field.get("readonly") is not None
    manual = doc.xpath('//section[@aria-labelledby="manual-heading"]')
    assert len(manual) == 1
    pairs = {dt.text_content().strip(): dt.getnext().text_content().strip()
             for dt in manual[0].xpath(".//dt")}
    assert pairs.get("Server") == "example.org" and pairs.get("Port") == "5222", pairs
    assert pairs.get("Chat address (username)") == ALICE, pairs
    svgs = re.findall(r"<svg\b.*?</svg>", issued.text, re.S)
    assert len(svgs) == 1, len(svgs)
    text = decode_qr(svgs[0], tmp_path)
    assert text == '{"protocol":"xmpp","address":"%s","password":"%s"}' % (ALICE, token), text
    assert json.loads(text) == {"protocol": "xmpp", "address": ALICE, "password": token}
    again = b.get(gw.url + "/")
    assert again.status == 200 and "phone" in again.text
    assert token not in again.text and 'id="issued-token"' not in again.text
    assert "<svg" not in again.text


# ---------------------------------------------------------------- 5. /metrics

def test_metrics_counters(stack):
    """After a login, a login and the same assertion replayed, an unsigned Response, one
    token issued, one revoked and "revoke all" over N >= 2: logins ok +2, refused{replay} +1,
    refused{unsigned} +1 (no other reason moves), tokens issued +1, revoked +1+N, and the
    ACS histogram counted the four POSTs."""
    gw, idp = stack
    m0 = metrics(gw)
    b, page = login(gw)
    factory = idp.factory(SP_ENTITY, gw.acs, sp_enc_cert=gw.sp_cert)
    first = factory.build(in_response_to=start_request(gw, idp))
    accepted(samltest.Browser().post(gw.acs, first.form, follow=False))
    replay = factory.build(in_response_to=start_request(gw, idp),
                           assertion_id=first.assertion_id)
    refused_with(gw, samltest.Browser().post(gw.acs, replay.form, follow=False), "replay")
    unsigned = factory.build(in_response_to=start_request(gw, idp), sign="none")
    refused_with(gw, samltest.Browser().post(gw.acs, unsigned.form, follow=False), "unsigned")
    assert b.submit(issue_form(page), label="metrics").status == 200
    account = b.get(gw.url + "/")
    one = next(f for f in account.forms if f.get("id"))
    assert b.submit(one, follow=False).status == 303
    cli_issue(gw, ALICE, "metrics-cli-1")
    cli_issue(gw, ALICE, "metrics-cli-2")
    n = len(live_ids(gw))
    assert n >= 2
    all_form = next(f for f in b.get(gw.url + "/").forms if f.get("all"))
    assert b.submit(all_form, follow=False).status == 303
    m1 = metrics(gw)
    delta = {k: m1[k] - m0.get(k, 0) for k in m1}
    assert delta['samlgw_logins_total{result="ok",reason=""}'] == 2
    assert delta[refused_reason("replay")] == 1
    assert delta[refused_reason("unsigned")] == 1
    others = {k: v for k, v in delta.items() if 'result="refused"' in k and v}
    assert set(others) == {refused_reason("replay"), refused_reason("unsigned")}, others
    assert delta["samlgw_tokens_issued_total"] == 1  # the CLI's token is not the web's
    assert delta["samlgw_tokens_revoked_total"] == 1 + n
    assert delta["samlgw_acs_duration_seconds_count"] == 4
    assert delta['samlgw_acs_duration_seconds_bucket{le="+Inf"}'] == 4
    assert delta["samlgw_acs_duration_seconds_sum"] > 0


# ---------------------------------------------------------------- 6. Accept-Language

@pytest.fixture(scope="module")
def alice_browser(stack):
    return login(stack[0])[0]


@pytest.mark.parametrize("header,lang", [
    (None, "en"), ("en", "en"), ("de", "de"), ("de-DE,de;q=0.9", "de"),
    ("en;q=0.5, de", "de"), ("de;q=0.5, en", "en"), ("fr, de;q=0.8, en;q=0.7", "de"),
    ("de;q=0, en;q=0.1", "en"), ("fr", "en")])
def test_accept_language(stack, alice_browser, header, lang):
    """Pages come in the language the browser prefers (q-values honoured, unknown ones
    skipped, English by default): the account page and the error page of a refused
    POST."""
    gw, _ = stack
    b = alice_browser
    headers = {"Accept-Language": header} if header else {}
    heading = {"en": "Your chat account", "de": "Ihr Chat-Konto"}
    expired = {"en": "Your session has ended.", "de": "Ihre Sitzung ist abgelaufen."}
    page = b.get(gw.url + "/", follow=False, headers=headers)
    assert page.status == 200
    assert '<html lang="%s">' % lang in page.text
    assert "<h1>%s</h1>" % heading[lang] in page.text, page.text[:800]
    error = samltest.Browser().post(gw.url + "/tokens", {"csrf": "x"}, follow=False,
                                    headers=headers)
    assert error.status == 403 and '<html lang="%s">' % lang in error.text
    assert expired[lang] in error.text, error.text[:800]
