"""The ACS's one Redis step (kv_login's Lua script): InResponseTo consumed once and only for
the IdP it went to, the replay cache, the session written only after both, and a Redis
that is gone or hung answered with 503, never a login. This module's stack has a Redis of
its own, so stopping it here touches no other test."""
import time

import samltest
from conftest import (SP_ENTITY, accepted, post, refused_with, start_request)


def session_keys(gw):
    return sorted(gw.redis.call("KEYS", "samlgw:session:*"))


def test_login_writes_one_session(stack):
    gw, idp = stack
    before = session_keys(gw)
    page, _ = post(gw, idp)
    accepted(page)
    assert "samlgw_session=" in page.headers.get("Set-Cookie", "")
    assert len(session_keys(gw)) == len(before) + 1


def test_replay_creates_no_session_and_keeps_the_old_one(stack):
    gw, idp = stack
    factory = idp.factory(SP_ENTITY, gw.acs, sp_enc_cert=gw.sp_cert)
    b = samltest.Browser()
    built = factory.build(in_response_to=start_request(gw, idp))
    page = b.post(gw.acs, built.form, follow=False)
    accepted(page)
    cookie = b.cookie("samlgw_session")
    keys = session_keys(gw)
    # The same assertion again, for a new outstanding request, from the same browser.
    again = factory.build(in_response_to=start_request(gw, idp), assertion_id=built.assertion_id)
    page = b.post(gw.acs, again.form, follow=False)
    refused_with(gw, page, "replay")
    assert "samlgw_session=" not in page.headers.get("Set-Cookie", "")
    assert session_keys(gw) == keys
    # The browser's session from the first login is still there.
    account = samltest.Browser().get(gw.url + "/", follow=False,
                                     headers={"Cookie": "samlgw_session=" + cookie})
    assert account.status == 200, account.status


def test_request_answered_by_another_idp(stack_multi):
    """A request sent to the test IdP, answered (validly signed) by another IdP of the
    metadata: refused, and the request is used up."""
    gw, idp, mail = stack_multi.gw, stack_multi.idp, stack_multi.mail
    rid = start_request(gw, idp)
    keys = session_keys(gw)
    page, _ = post(gw, mail, in_response_to=rid)
    line = refused_with(gw, page, "in_response_to")
    assert "another IdP" in line, line
    assert session_keys(gw) == keys
    refused_with(gw, post(gw, idp, in_response_to=rid)[0], "in_response_to")
    # The control: a request to the mail IdP, answered by it.
    accepted(post(gw, mail, in_response_to=start_request(gw, mail))[0])


def test_script_reloaded_after_flush(stack):
    """EVALSHA falls back to EVAL when Redis lost its script cache."""
    gw, idp = stack
    accepted(post(gw, idp)[0])
    gw.redis.call("SCRIPT", "FLUSH")
    accepted(post(gw, idp)[0])


def test_redis_hung_is_unavailable(stack):
    gw, idp = stack
    rid = start_request(gw, idp)
    factory = idp.factory(SP_ENTITY, gw.acs, sp_enc_cert=gw.sp_cert)
    built = factory.build(in_response_to=rid)
    keys = session_keys(gw)
    gw.redis.pause()
    try:
        page = samltest.Browser(timeout=30).post(gw.acs, built.form, follow=False)
    finally:
        gw.redis.resume()
    refused_with(gw, page, "store_unavailable")
    assert page.status == 503
    # No cookie: whatever Redis does with the script once it runs again (it was sent), the
    # session's id never left samlgw.
    assert "samlgw_session=" not in page.headers.get("Set-Cookie", "")
    assert len(session_keys(gw)) <= len(keys) + 1


def test_redis_down_is_unavailable(stack):
    gw, idp = stack
    factory = idp.factory(SP_ENTITY, gw.acs, sp_enc_cert=gw.sp_cert)
    built = factory.build(in_response_to=start_request(gw, idp))
    gw.redis.stop()
    try:
        page = samltest.Browser().post(gw.acs, built.form, follow=False)
    finally:
        gw.redis.start()
    refused_with(gw, page, "store_unavailable")
    assert page.status == 503
    assert "samlgw_session=" not in page.headers.get("Set-Cookie", "")
    # Redis is back (empty): samlgw reconnects (each worker's stale connection fails once)
    # and logs in again.
    deadline = time.monotonic() + 10
    while True:
        try:
            page, _ = post(gw, idp)  # its GET /login asserts a 302
        except AssertionError:
            page = None
        if page is not None and page.status == 303:
            break
        assert time.monotonic() < deadline, page and page.status
        time.sleep(0.1)
