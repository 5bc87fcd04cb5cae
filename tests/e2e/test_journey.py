"""The whole journey a newcomer makes, in real browsers against scripts/demo: the printed
URL leads to the test IdP's login; alice logs in, issues a token labelled "laptop" and
reads it from the page; bob does the same in his own browser; both log in to xmpp-core
with slixmpp and exchange messages; alice revokes her token in the browser, her XMPP
session is closed and a new login with it is refused; she logs out. axe-core checks
every samlgw page on the way (no serious or critical violation), the pages are checked at
phone width (390 px, no horizontal scrolling), and each page is saved as a screenshot.
Last, Ctrl-C stops everything the demo started and a second run comes up again."""
import asyncio
import copy
import http.client
import re
import subprocess
import time
import urllib.parse
from types import SimpleNamespace

from lxml import etree

import xmpptest
from browser import PHONE_WIDTH, DESKTOP
from conftest import BUILD, SLOW, alive, publish, sanitizer_reports
from wrapper import command, problems

TOKEN_RE = re.compile(r"^samlgw_[A-Za-z0-9_-]{43}[A-Za-z0-9_-]{6}$")
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
MDUI = "urn:oasis:names:tc:SAML:metadata:ui"


async def browser_step(fn, *args):
    """A blocking browser step, run in a thread so the XMPP clients keep being served."""
    return await asyncio.to_thread(fn, *args)


def check_page(b, page, shots=True, phone=True):
    """axe-core on the page (none serious or critical), a screenshot, and the page at phone
    width: no horizontal scrolling, a screenshot, and axe-core again (the narrow layout
    has its own rules, e.g. for target sizes and reflow)."""
    bad = b.axe(page)
    assert not bad, "accessibility of %s (%s):\n  %s" % (page, b.url, "\n  ".join(bad))
    if shots:
        publish(b.screenshot(page))
    if phone:
        b.set_width(PHONE_WIDTH)
        try:
            assert b.viewport_width() <= PHONE_WIDTH
            over, where = b.overflow()
            assert over <= 0, "%s scrolls sideways by %d px at %d px: %s" % (
                page, over, PHONE_WIDTH, where)
            bad = b.axe(page + "-phone")
            assert not bad, "accessibility of %s at phone width:\n  %s" % (
                page, "\n  ".join(bad))
            if shots:
                publish(b.screenshot(page + "-phone"))
        finally:
            b.set_width(*DESKTOP)


def sign_in(b, demo, user, password, shot=None):
    """From the printed URL through the test IdP's login form to the account page."""
    b.get(demo.url + "/")
    b.wait_url(lambda u: u.startswith(demo.idp_url + "/"), "the login page of the test IdP")
    assert b.find_all("input[type=password]"), b.driver.page_source[:2000]
    if shot:
        publish(b.screenshot(shot))
    b.fill("#username", user)
    b.fill("#password", password)
    b.click_to("button[type=submit]", lambda u: u == demo.url + "/",
               "the account page after the IdP login")
    assert b.find("h1").text == "Your chat account", b.text()
    assert "%s@localhost" % user in b.text()


def issue_token(b, demo, label):
    """Issues a token with the account page's form; returns it as the page shows it."""
    b.fill("#token-label", label)
    b.click_to("form[action='%s/tokens'] button[type=submit]" % demo.url,
               lambda u: u == demo.url + "/tokens", "the token page")
    assert b.find("h1").text == "Your new token", b.text()
    token = b.find("#issued-token").get_attribute("value")
    assert TOKEN_RE.match(token), token
    assert label in b.text("h2#issued-token-heading")
    # the copy button appears only when the page's script runs (CSP allows it)
    assert b.find("button[data-copy]").is_displayed(), b.console()
    assert b.find_all(".qr svg"), "no QR code on the token page"
    manual = b.text("section[aria-labelledby=manual-heading]")
    assert "alice@localhost" in manual or "bob@localhost" in manual, manual
    assert str(demo.xmpp) in manual.split(), manual
    return token


def get_no_follow(url, cookies):
    """GET url with the browser's cookies, not following a redirect: (status, Location)."""
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=10)
    try:
        conn.request("GET", urllib.parse.urlsplit(url).path, headers={
            "Cookie": "; ".join("%s=%s" % (c["name"], c["value"]) for c in cookies)})
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Location")
    finally:
        conn.close()


def token_rows(b):
    """The account page's token table: {label: row text}."""
    return {r.find_element("css selector", "th").text: r.text
            for r in b.find_all("table.tokens tbody tr")}


def test_journey(demo, browsers):
    out = demo.output
    assert "Open %s/ in a browser" % demo.url in out, out
    assert "alice  password alice-pass" in out and "bob    password bob-pass" in out, out
    assert "port %d (STARTTLS) or %d (direct" % (demo.xmpp, demo.xmpps) in out, out
    cafile = str(demo.state / "ca.pem")
    assert cafile in out, out
    env = SimpleNamespace(cafile=cafile,
                          server=SimpleNamespace(port=demo.xmpp, tls_port=demo.xmpps))

    async def main():
        alice_b = await browser_step(browsers, "alice")
        bob_b = await browser_step(browsers, "bob")

        # 1. alice: the printed URL, the IdP's login, the account page.
        await browser_step(sign_in, alice_b, demo, "alice", "alice-pass", "01-idp-login")
        await browser_step(check_page, alice_b, "02-account")

        # 2. a token labelled "laptop", read from the page; listed on the account page.
        alice_token = await browser_step(issue_token, alice_b, demo, "laptop")
        await browser_step(check_page, alice_b, "03-token-issued")
        await browser_step(alice_b.click_to, "main a[href='%s/']" % demo.url,
                           lambda u: u == demo.url + "/", "back to the account page")
        rows = await browser_step(token_rows, alice_b)
        assert list(rows) == ["laptop"], rows
        assert "xmpp" in rows["laptop"], rows
        await browser_step(check_page, alice_b, "04-account-with-token")

        # 3. bob, in his own browser.
        await browser_step(sign_in, bob_b, demo, "bob", "bob-pass")
        bob_token = await browser_step(issue_token, bob_b, demo, "phone")
        assert bob_token != alice_token

        # 4. both log in to xmpp-core (STARTTLS and direct TLS, the demo CA verified)
        #    and exchange messages.
        alice = await xmpptest.login(env, "alice@localhost", alice_token, resource="laptop",
                                      timeout=10 * SLOW)
        bob = await xmpptest.login(env, "bob@localhost", bob_token, direct=True,
                                   resource="phone", timeout=10 * SLOW)
        try:
            alice.send_message(mto="bob@localhost", mbody="Hello Bob, it's Alice.",
                               mtype="chat")
            m = await asyncio.wait_for(bob.messages.get(), 10 * SLOW)
            assert m["body"] == "Hello Bob, it's Alice.", m
            assert str(m["from"]) == "alice@localhost/laptop", m
            bob.send_message(mto="alice@localhost/laptop", mbody="Hi Alice!", mtype="chat")
            m = await asyncio.wait_for(alice.messages.get(), 10 * SLOW)
            assert m["body"] == "Hi Alice!" and str(m["from"]) == "bob@localhost/phone", m

            # 5. alice revokes "laptop" in the browser: her session is closed, a new
            #    login with the token is refused; bob's session goes on.
            await browser_step(alice_b.click_to, "form[action='%s/tokens/revoke'] "
                               "input[name=id] ~ button" % demo.url,
                               lambda u: u == demo.url + "/", "the account page after revoking")
            text = await browser_step(alice_b.text)
            assert "You have no valid tokens." in text, text
            await asyncio.wait_for(alice.gone.wait(), 10 * SLOW)
            assert "not-authorized" in alice.stream_errors, alice.stream_errors
            failure = await xmpptest.login_failure(env, "alice@localhost", alice_token,
                                                    timeout=10 * SLOW)
            assert failure == "not-authorized", failure
            assert not bob.gone.is_set()
            bob.send_message(mto="bob@localhost", mbody="still here", mtype="chat")
            m = await asyncio.wait_for(bob.messages.get(), 10 * SLOW)
            assert m["body"] == "still here"
            await browser_step(publish, await browser_step(alice_b.screenshot,
                                                           "05-account-revoked"))
        finally:
            await xmpptest.close(alice, bob)

        # 6. bob opens /logout while signed in: the confirm page.
        await browser_step(bob_b.get, demo.url + "/logout")
        text = await browser_step(bob_b.text)
        assert "Log out of this service?" in text and "bob@localhost" in text, text
        await browser_step(check_page, bob_b, "logout-confirm", False)

        # 7. alice logs out with the header's button: single logout through the demo IdP
        #    (a signed LogoutRequest there, its LogoutResponse back at /saml/slo) ends on
        #    the logged-out page; the account page is gone for this browser.
        await browser_step(alice_b.click_to, "header form.logout button",
                           lambda u: u == demo.url + "/logout" or
                           u.startswith(demo.url + "/saml/slo?"), "the logged-out page")
        text = await browser_step(alice_b.text)
        assert "You have logged out" in text, text
        # single logout went through the test IdP and back
        assert "login service confirmed that you are logged out there too" in text, text
        assert not await browser_step(alice_b.find_all, "header form.logout")
        await browser_step(check_page, alice_b, "06-logged-out")
        # The browser's cookie no longer opens the account page (it redirects to /login;
        # following that would log alice straight in again through the IdP's session).
        cookies = await browser_step(alice_b.driver.get_cookies)
        assert cookies, "the browser holds no cookie of samlgw's"
        status, where = await browser_step(get_no_follow, demo.url + "/", cookies)
        assert (status, where) == (302, demo.url + "/login"), (status, where)

        # 8. the error page (an unknown path) passes the same checks.
        await browser_step(alice_b.get, demo.url + "/no-such-page")
        text = await browser_step(alice_b.text)
        assert "This page does not exist." in text, text
        await browser_step(check_page, alice_b, "07-error")

    asyncio.run(main())
    assert len(demo.log_lines("samlgw", "tokens_revoked")) == 1
    revoked = demo.log_lines("xmpp-core", "token_revoked")
    assert len(revoked) == 1 and "jid=alice@localhost" in revoked[0], revoked


def test_idp_chooser_page(demo, browsers, tmp_path):
    """With two IdPs, /login shows the chooser: a second samlgw on the demo's Redis, its
    IdP metadata the demo IdP's plus a copy under another entityID, both bound to the
    domain localhost. The chooser passes the same checks as every other page, and its
    entry for the demo IdP leads to that IdP's login."""
    root = etree.parse(str(demo.state / "idp" / "idp-metadata.xml")).getroot()
    agg = etree.Element("{%s}EntitiesDescriptor" % MD, nsmap={"md": MD})
    agg.append(copy.deepcopy(root))
    other = copy.deepcopy(root)
    other.set("entityID", "https://idp.second-university.example/idp")
    names = other.findall(".//{%s}DisplayName" % MDUI)
    assert names, "the demo IdP's metadata has no mdui:DisplayName"
    for n in names:
        n.text = "Second University"
    agg.append(other)
    (tmp_path / "federation.xml").write_bytes(etree.tostring(agg, xml_declaration=True,
                                                             encoding="UTF-8"))
    port = __import__("conftest").free_ports(1)[0]
    url = "http://127.0.0.1:%d" % port
    conf = (demo.state / "samlgw.conf").read_text()
    conf = conf.replace("listen = 127.0.0.1:%d\n" % demo.http, "listen = 127.0.0.1:%d\n" % port)
    conf = conf.replace("public_url = %s\n" % demo.url, "public_url = %s\n" % url)
    conf = conf.replace("idp_metadata = idp/idp-metadata.xml", "idp_metadata = %s" %
                        (tmp_path / "federation.xml"))
    conf = re.sub(r"\nidp = (\S+)\n", r"\nidp = \1, https://idp.second-university.example/idp\n",
                  conf)
    for name in ("sp-key.pem", "sp-cert.pem", "localhost.pem", "localhost.key"):
        conf = conf.replace(" = %s\n" % name, " = %s\n" % (demo.state / name))
    (tmp_path / "samlgw.conf").write_text(conf)
    log = open(tmp_path / "samlgw.log", "w")
    gw = subprocess.Popen(command([BUILD / "samlgw" / "samlgw", "--config",
                                   tmp_path / "samlgw.conf"]),
                          stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30 * SLOW
        while "event=started" not in (tmp_path / "samlgw.log").read_text():
            assert gw.poll() is None, (tmp_path / "samlgw.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "samlgw.log").read_text()
            time.sleep(0.1)
        b = browsers("chooser")
        b.get(url + "/login")
        assert b.find("h1").text == "Choose your organisation", b.text()
        text = b.text()
        assert "Second University" in text and "Demo University" in text, text
        check_page(b, "08-idp-chooser")
        # The page's script filters the list while one types (no round trip).
        b.fill("#idp-search", "second")
        visible = [li.text for li in b.find_all("#idp-list li") if li.is_displayed()]
        assert len(visible) == 1 and "Second University" in visible[0], visible
        assert b.text("#idp-count") == "Organisations found: 1", b.console()
        b.fill("#idp-search", "")
        b.find("#idp-search").send_keys(" ")
        assert len([li for li in b.find_all("#idp-list li") if li.is_displayed()]) == 2
        b.click_to("main a.idp", lambda u: u.startswith(demo.idp_url + "/"),
                   "the demo IdP's login", text="Demo University")
    finally:
        gw.terminate()
        gw.wait(timeout=30 * SLOW)
        log.close()
    bad = problems(gw.returncode, (tmp_path / "samlgw.log").read_text(errors="replace"))
    assert bad is None, "samlgw " + bad


def test_the_checks_can_fail(browsers):
    """The page checks are not vacuous: on a page with an unlabelled field, an image
    without alt text, no language and a box wider than a phone, axe-core reports serious
    or critical violations and the overflow check sees the sideways scrolling."""
    b = browsers("control")
    b.get("data:text/html,<!DOCTYPE html><title>x</title><body><main><img src='x.png'>"
          "<input type='text'><div style='width:600px'>wide</div></main></body>")
    bad = b.axe("control")
    rules = {v.split(" ")[0] for v in bad}
    assert {"image-alt", "label", "html-has-lang"} <= rules, bad
    b.set_width(PHONE_WIDTH)
    over, where = b.overflow()
    assert over > 0 and any(w.startswith("div") for w in where), (over, where)


def test_ctrl_c_stops_everything_and_a_second_run_works(demo):
    """Ctrl-C ends the demo and every daemon it started; running it again (same state
    folder: keys, CA and certificates kept) brings everything up again."""
    for attempt in (1, 2):
        pids = demo.pids()
        assert set(pids) == {"redis", "idp", "samlgw", "xmpp-core"}, pids
        assert all(alive(p) for p in pids.values()), pids
        ca = (demo.state / "ca.pem").read_bytes()
        rest, rc = demo.interrupt()
        assert rc == 0, (rc, demo.output)
        assert "demo stopped" in rest, demo.output
        deadline = time.monotonic() + 10 * SLOW
        while any(alive(p) for p in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [d for d, p in pids.items() if alive(p)], pids
        assert not sanitizer_reports(demo), sanitizer_reports(demo)
        for daemon in ("samlgw", "xmpp-core"):
            assert demo.log_lines(daemon, "stopping") or demo.log_lines(daemon, "stopped"), \
                (demo.state / (daemon + ".log")).read_text()[-2000:]
        if attempt == 2:
            break
        demo.start()
        assert (demo.state / "ca.pem").read_bytes() == ca
        page = subprocess.run(["curl", "--noproxy", "*", "-sS", "-o", "/dev/null", "-w",
                               "%{http_code} %{redirect_url}", demo.url + "/login"],
                              capture_output=True, text=True, timeout=30 * SLOW)
        assert page.stdout.startswith("302 " + demo.idp_url + "/"), page
