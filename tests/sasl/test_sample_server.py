"""The SASL plugin inside Debian's sasl-sample-server: OAUTHBEARER and XOAUTH2 against a
private Redis, driven line by line."""
import json
import os
import subprocess

import pytest

from conftest import (PLUGIN_DIR, SYSTEM_PLUGIN_DIR, TIMEOUT, host_env, oauthbearer,
                      sample_server, xoauth2)

ALICE = "alice@example.org"


@pytest.fixture
def conf_dir(workdir):
    """Folder of sample.conf (libsasl reads APPNAME.conf; the sample's app name is sample)."""
    d = workdir / "sasl-conf"
    d.mkdir()
    return d


@pytest.fixture
def configure(conf_dir, redis, config):
    def write(**options):
        if "samlgw_redis" not in options and "samlgw_config" not in options:
            options["samlgw_redis"] = redis.url
        (conf_dir / "sample.conf").write_text(
            "".join("%s: %s\n" % (k, v) for k, v in options.items()))
        return conf_dir
    return write


def error_json(result):
    """The JSON error challenge (the exchange's second server message)."""
    assert len(result.challenges) >= 2, result
    return json.loads(result.challenges[1])


def test_pluginviewer_lists_both_without_config(workdir):
    env = host_env({"SASL_CONF_PATH": str(workdir)})
    r = subprocess.run(["saslpluginviewer", "-s", "-p", "%s:%s" % (PLUGIN_DIR, SYSTEM_PLUGIN_DIR)],
                       capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert r.returncode == 0, r.stderr
    listed = r.stdout.split("Installed and properly configured")[1].splitlines()[1]
    assert "OAUTHBEARER" in listed.split() and "XOAUTH2" in listed.split()
    # The other mechanisms still work next to the unconfigured plugin.
    assert "PLAIN" in listed.split()


def test_unconfigured_is_not_offered_and_breaks_nothing(conf_dir, tokens):
    (conf_dir / "sample.conf").write_text("mech_list: PLAIN OAUTHBEARER XOAUTH2\n")
    token = tokens.issue(ALICE)
    r = sample_server(conf_dir, "OAUTHBEARER", oauthbearer(token, ALICE))
    assert not r.ok
    assert "no mechanism available" in r.stderr, r


@pytest.mark.parametrize("via", ["samlgw_redis", "samlgw_config"])
def test_oauthbearer_valid(configure, tokens, config, via):
    conf = configure(samlgw_config=str(config)) if via == "samlgw_config" else configure()
    token = tokens.issue(ALICE)
    r = sample_server(conf, "OAUTHBEARER", oauthbearer(token, ALICE))
    assert r.ok, r
    assert r.username == ALICE
    assert token not in r.stderr.replace("got '", "")  # the plugin never logs it


def test_xoauth2_valid(configure, tokens):
    conf = configure()
    token = tokens.issue(ALICE)
    r = sample_server(conf, "XOAUTH2", xoauth2(ALICE, token))
    assert r.ok, r
    assert r.username == ALICE


def test_oauthbearer_case_insensitive_scheme_and_escaped_authzid(configure, tokens):
    conf = configure()
    jid = "a=b,c@example.org"
    token = tokens.issue(jid)
    msg = oauthbearer(token, jid).replace(b"auth=Bearer ", b"auth=bEARER ")
    assert b"a=a=3Db=2Cc@example.org," in msg
    r = sample_server(conf, "OAUTHBEARER", msg)
    assert r.ok, r
    assert r.username == jid


def refused(conf, mech, msg, status):
    """The exchange must end in the mechanism's error challenge, then fail."""
    ack = b"\x01" if mech == "OAUTHBEARER" else b""
    r = sample_server(conf, mech, msg, replies=[ack])
    assert not r.ok, r
    body = error_json(r)
    assert body["status"] == status
    assert body["schemes"] == "bearer"
    assert body["scope"] == "imap"
    assert "authentication failure" in r.stderr, r
    return r


@pytest.mark.parametrize("mech", ["OAUTHBEARER", "XOAUTH2"])
@pytest.mark.parametrize("case", ["malformed", "unknown", "expired", "revoked", "wrong_user",
                                  "wrong_service"])
def test_refused_tokens(configure, tokens, mech, case):
    conf = configure()
    user = ALICE
    if case == "malformed":
        token = "samlgw_notatoken"
    elif case == "unknown":
        real = tokens.issue(ALICE)
        token = real[:-8] + ("A" if real[-8] != "A" else "B") + real[-7:]
    elif case == "wrong_service":
        token = tokens.issue(ALICE, services="xmpp,smtp")
    else:
        token = tokens.issue(ALICE)
    if case == "expired":
        tokens.expire(token)
    elif case == "revoked":
        tokens.revoke_all(ALICE)
    elif case == "wrong_user":
        user = "bob@example.org"
    msg = oauthbearer(token, user) if mech == "OAUTHBEARER" else xoauth2(user, token)
    refused(conf, mech, msg, "invalid_token" if mech == "OAUTHBEARER" else "401")


def test_wrong_service_then_samlgw_service_override(configure, tokens):
    token = tokens.issue(ALICE, services="smtp")
    refused(configure(), "OAUTHBEARER", oauthbearer(token, ALICE), "invalid_token")
    r = sample_server(configure(samlgw_service="smtp"), "OAUTHBEARER", oauthbearer(token, ALICE))
    assert r.ok, r


def test_no_authzid_logs_in_the_tokens_owner(configure, tokens):
    # RFC 7628: the authzid is optional; the token then names the user.
    token = tokens.issue(ALICE)
    r = sample_server(configure(), "OAUTHBEARER", oauthbearer(token, None))
    assert r.ok, r
    assert r.username == ALICE
    # Still bound to the service, and still refused once revoked.
    refused(configure(), "OAUTHBEARER", oauthbearer(tokens.issue(ALICE, services="xmpp"), None),
            "invalid_token")
    tokens.revoke_all(ALICE)
    refused(configure(), "OAUTHBEARER", oauthbearer(token, None), "invalid_token")


def test_no_authzid_owner_must_be_a_local_user(configure, tokens):
    conf = configure(samlgw_username="localpart", samlgw_domain="example.org")
    r = sample_server(conf, "OAUTHBEARER", oauthbearer(tokens.issue(ALICE), None))
    assert r.ok, r
    assert r.username == "alice"
    # alice@other.org's token must not log in the local user alice.
    refused(conf, "OAUTHBEARER", oauthbearer(tokens.issue("alice@other.org"), None),
            "invalid_token")


@pytest.mark.parametrize("mode", [None, "jid", "localpart"])
def test_domain_restricts_in_every_username_mode(configure, tokens, mode):
    # samlgw_domain names this application's users: another domain's user is refused
    # whatever samlgw_username says, whether named by the client or by the token.
    options = {"samlgw_domain": "example.org"}
    if mode is not None:
        options["samlgw_username"] = mode
    conf = configure(**options)
    local = "alice" if mode == "localpart" else ALICE
    token = tokens.issue(ALICE)
    for msg in (oauthbearer(token, "alice"), oauthbearer(token, ALICE), oauthbearer(token, None)):
        r = sample_server(conf, "OAUTHBEARER", msg)
        assert r.ok, r
        assert r.username == local
    r = sample_server(conf, "XOAUTH2", xoauth2("alice", token))
    assert r.ok, r
    assert r.username == local
    other = tokens.issue("alice@other.org")
    refused(conf, "OAUTHBEARER", oauthbearer(other, "alice@other.org"), "invalid_token")
    refused(conf, "OAUTHBEARER", oauthbearer(other, None), "invalid_token")
    refused(conf, "XOAUTH2", xoauth2("alice@other.org", other), "401")
    # Without samlgw_domain, jid names of any domain are served.
    if mode != "localpart":
        r = sample_server(configure(), "OAUTHBEARER", oauthbearer(other, None))
        assert r.ok, r
        assert r.username == "alice@other.org"


@pytest.mark.parametrize("mode", ["jid", "localpart"])
def test_refused_owner_keeps_its_uses(configure, tokens, mode):
    # Without an authzid the token names its owner; an owner outside samlgw_domain is
    # refused before the token's use is counted, so the refusal costs its owner nothing.
    conf = configure(samlgw_username=mode, samlgw_domain="example.org")
    other = tokens.issue("bob@other.org", uses=2)
    refused(conf, "OAUTHBEARER", oauthbearer(other, None), "invalid_token")
    assert tokens.uses(other) == 0
    mine = tokens.issue(ALICE, uses=2)
    r = sample_server(conf, "OAUTHBEARER", oauthbearer(mine, None))
    assert r.ok, r
    assert tokens.uses(mine) == 1


def test_channel_binding_refused(configure, tokens):
    token = tokens.issue(ALICE)
    msg = b"p=tls-unique" + oauthbearer(token, ALICE)[1:]
    r = sample_server(configure(), "OAUTHBEARER", msg)
    assert not r.ok
    assert "bad protocol" in r.stderr, r  # SASL_BADPROT, no challenge
    assert len(r.challenges) == 1


def test_localpart_usernames(configure, tokens):
    conf = configure(samlgw_username="localpart", samlgw_domain="example.org")
    token = tokens.issue(ALICE)
    r = sample_server(conf, "OAUTHBEARER", oauthbearer(token, "alice"))
    assert r.ok, r
    assert r.username == "alice"
    r = sample_server(conf, "XOAUTH2", xoauth2(ALICE, token))
    assert r.ok, r
    assert r.username == "alice"
    # A user of another domain must not turn into the local user alice.
    other = tokens.issue("alice@other.org")
    refused(conf, "OAUTHBEARER", oauthbearer(other, "alice@other.org"), "invalid_token")


def test_broken_config_disables_the_mechanisms(configure, tokens):
    conf = configure(samlgw_redis="rediss://tls.example.org")
    r = sample_server(conf, "OAUTHBEARER", oauthbearer(tokens.issue(ALICE), ALICE))
    assert not r.ok
    assert "no mechanism available" in r.stderr, r
    # The reason reaches the application's log, not only syslog.
    assert "OAUTHBEARER and XOAUTH2 are disabled: samlgw_redis:" in r.stderr, r


def test_redis_down_is_a_temporary_failure(configure, tokens, redis):
    conf = configure()
    token = tokens.issue(ALICE)
    redis.stop()
    for mech, msg in (("OAUTHBEARER", oauthbearer(token, ALICE)), ("XOAUTH2", xoauth2(ALICE, token))):
        r = sample_server(conf, mech, msg)
        assert not r.ok, r
        assert "authentication server unavailable" in r.stderr, r  # SASL_UNAVAIL
        assert len(r.challenges) == 1  # no error challenge: this is not the token's fault
    redis.start()
    r = sample_server(conf, "OAUTHBEARER", oauthbearer(tokens.issue(ALICE), ALICE))
    assert r.ok, r


def test_oversized_message_is_refused(configure, tokens):
    msg = oauthbearer(tokens.issue(ALICE), ALICE)
    big = msg[:-1] + b"x=" + b"a" * 9000 + b"\x01\x01"
    r = sample_server(configure(), "OAUTHBEARER", big)
    assert not r.ok
    assert "bad protocol" in r.stderr, r
