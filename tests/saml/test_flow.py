"""The whole flow through a real (pysaml2) IdP with a browser-like client:
login -> IdP -> ACS -> account page -> issue -> samlgw-token verify -> revoke -> verify fails,
for signed and for signed+encrypted assertions."""
import re
import urllib.parse

import samltest


def login(gw, idp, user="alice"):
    b = samltest.Browser()
    # Stop on the account page (its logout form holds only hidden fields).
    page = b.flow(gw.url + "/", user=user,
                  stop=lambda p: p.status == 200 and p.url == gw.url + "/")
    return b, page


def issue(b, gw, page, label="laptop"):
    form = next(f for f in page.forms if f.action.endswith("/tokens"))
    return b.submit(form, label=label)


def token_of(page):
    m = re.search(r'value="(samlgw_[A-Za-z0-9_-]+)"', page.text)
    assert m, page.text
    return m.group(1)


def run_flow(gw, idp):
    b, page = login(gw, idp)
    assert page.status == 200, (page.status, page.text, gw.log())
    assert page.url.startswith(gw.url + "/"), page.url
    assert "alice@example.org" in page.text
    assert b.cookie("samlgw_session")
    issued = issue(b, gw, page)
    assert issued.status == 200, (issued.text, gw.log())
    token = token_of(issued)
    assert "<svg" in issued.text
    assert token not in gw.log()
    ok = gw.token_cli("verify", "--jid", "alice@example.org", input=token + "\n")
    assert ok.returncode == 0, ok.stderr
    account = b.get(gw.url + "/")
    revoke = next(f for f in account.forms if f.get("id"))
    after = b.submit(revoke)
    assert after.status == 200, after.text
    bad = gw.token_cli("verify", "--jid", "alice@example.org", input=token + "\n")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    return b


def test_flow_signed(stack):
    gw, idp = stack
    run_flow(gw, idp)
    assert gw.log_lines("login_ok")


def test_flow_signed_encrypted(stack_encrypted):
    gw, idp = stack_encrypted
    run_flow(gw, idp)
    last = idp.last_response()
    assert b"EncryptedAssertion" in last["xml"].encode() if isinstance(last["xml"], str) \
        else b"EncryptedAssertion" in last["xml"]


def test_slo_asks_before_it_logs_out(stack):
    """A SAML logout message at /saml/slo that is unreadable or unsigned cannot end the
    session by itself (a link on another site could carry one): a signed-in user gets a
    page asking to confirm, whose form (CSRF token) then logs out (test_slo.py: verified
    messages). A bare link is a 400; signed out,
    the message leads on to the login."""
    gw, idp = stack
    b, page = login(gw, idp)
    assert page.status == 200, (page.status, page.text)
    for bare in (b.get(gw.url + "/saml/slo", follow=False),
                 b.post(gw.url + "/saml/slo", {}, follow=False)):
        assert bare.status == 400, (bare.status, bare.text[:300])
    for asked in (b.get(gw.url + "/saml/slo?SAMLRequest=x", follow=False),
                  b.post(gw.url + "/saml/slo", {"SAMLRequest": "x"}, follow=False)):
        assert asked.status == 200, (asked.status, asked.text[:300])
        assert "alice@example.org" in asked.text
        still = b.get(gw.url + "/", follow=False)
        assert still.status == 200 and "alice@example.org" in still.text
    assert gw.log_lines("logout_asked")
    logout_forms = [f for f in asked.forms if f.action.endswith("/logout") and f.get("csrf")]
    assert len(logout_forms) == 2  # the header's button and the page's own
    ended = b.submit(logout_forms[-1], follow=False)
    assert ended.status == 303, (ended.status, ended.text[:300])
    assert b.get(gw.url + "/", follow=False).status in (302, 303)
    gone = b.get(gw.url + "/saml/slo?SAMLRequest=x", follow=False)
    assert gone.status in (302, 303) and gone.headers["Location"].endswith("/login")


def test_logout_ends_on_a_logged_out_page(stack):
    """The header's logout button ends the session and leads to GET /logout, which says so
    and offers a new login; it does not go on to /login by itself (the IdP still knows the
    user and would log them straight back in). GET /logout while still signed in asks to
    confirm instead (without the sentence about the IdP asking)."""
    gw, idp = stack
    b, page = login(gw, idp)
    assert page.status == 200, (page.status, page.text)
    confirm = b.get(gw.url + "/logout", follow=False)
    assert confirm.status == 200 and "alice@example.org" in confirm.text, confirm.text[:300]
    assert "asked to end your session" not in confirm.text
    logout = [f for f in page.forms if f.action == gw.url + "/logout"]
    assert len(logout) == 1 and logout[0].get("csrf")
    ended = b.submit(logout[0], follow=False)
    # The test IdP takes single logout: the browser goes there with a LogoutRequest and
    # comes back to /saml/slo, which shows the logged-out page (details: test_slo.py).
    assert ended.status == 303 and ended.location.startswith(idp.url + "/slo/redirect?"), \
        ended.headers
    done = b.get(ended.location)
    assert done.status == 200, (done.status, done.text[:300])
    assert "You have logged out" in done.text
    assert "alice@example.org" not in done.text
    assert not [f for f in done.forms if f.action.endswith("/logout")]
    assert [a for a in done.links if a == gw.url + "/login"], done.links
    assert b.get(gw.url + "/", follow=False).status in (302, 303)
    assert "You have logged out" in b.get(gw.url + "/logout", follow=False).text
    # A forged logout (no CSRF token) ends nothing.
    b2, page2 = login(gw, idp, user="bob")
    forged = b2.post(gw.url + "/logout", {}, follow=False)
    assert forged.status == 403
    assert b2.get(gw.url + "/", follow=False).status == 200


def test_new_login_ends_the_previous_session(stack):
    gw, idp = stack
    b, page = login(gw, idp)
    assert page.status == 200, (page.status, page.text)
    first = b.cookie("samlgw_session")
    # Log in again in the same browser (the IdP remembers alice).
    page = b.flow(gw.url + "/login", user="alice",
                  stop=lambda p: p.status == 200 and p.url == gw.url + "/")
    assert page.status == 200, (page.status, page.text)
    second = b.cookie("samlgw_session")
    assert second and second != first
    # The current session id opens the account page from anywhere; the first no longer does.
    ok = samltest.Browser().get(gw.url + "/", follow=False,
                                headers={"Cookie": "samlgw_session=" + second})
    assert ok.status == 200 and "alice@example.org" in ok.text, (ok.status, ok.text[:300])
    r = samltest.Browser().get(gw.url + "/", follow=False,
                               headers={"Cookie": "samlgw_session=" + first})
    assert r.status in (302, 303), (r.status, r.text[:300])


def test_malformed_form_refused(stack):
    """A state-changing POST whose body is not a well-formed form (here a %00 in the label)
    is refused as a whole with 400, not acted on with the fields read so far. Control: the
    same form, well formed, issues a token."""
    gw, idp = stack
    b, page = login(gw, idp)
    form = next(f for f in page.forms if f.action.endswith("/tokens"))
    values = dict(form.values(label="laptop"))
    body = urllib.parse.urlencode(values).replace("label=laptop", "label=lap%00top")

    def labels():
        r = gw.token_cli("list", "--jid", "alice@example.org")
        assert r.returncode == 0, r.stderr
        return r.stdout.count("laptop")
    before = labels()
    bad = b.post(form.action, body, follow=False,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert bad.status == 400, (bad.status, bad.text)
    assert labels() == before
    assert issue(b, gw, page).status == 200
    assert labels() == before + 1


def test_page_policy_headers(stack):
    """Pages carry a Content-Security-Policy that allows nothing but their own stylesheet and
    script (by hash) and images from here, and no framing. It has no form-action: browsers
    apply that to the redirects after a form, and logging out ends at /login, which sends
    the browser on to the IdP."""
    gw, idp = stack
    _, page = login(gw, idp)
    csp = {d.split()[0]: d.split()[1:] for d in
           (x.strip() for x in page.headers["Content-Security-Policy"].split(";")) if d}
    assert csp["default-src"] == ["'none'"]
    assert "form-action" not in csp
    assert csp["frame-ancestors"] == ["'none'"]
    assert all(s.startswith("'sha256-") for s in csp["style-src"] + csp["script-src"])
