"""Logins: STARTTLS and direct TLS with the right certificate per domain (SNI), PLAIN and
OAUTHBEARER, and every kind of bad token refused."""
import asyncio
import socket
import ssl
import subprocess

from xmpptest import Raw, close, login, login_failure


def test_login_starttls_and_direct_tls(env):
    async def main():
        tok = env.token("alice@example.org")
        a = await login(env, "alice@example.org", tok, resource="st")
        b = await login(env, "alice@example.org", tok, direct=True, resource="dt")
        # The second domain is served with its own certificate (verified against the CA
        # for the name example.net).
        tok2 = env.token("carol@example.net")
        c = await login(env, "carol@example.net", tok2, direct=True)
        d = await login(env, "carol@example.net", tok2, resource="st2")
        await close(a, b, c, d)
    asyncio.run(main())


def test_bad_tokens_fail(make_env):
    env = make_env("auth_failures = 20")

    async def main():
        good = env.token("alice@example.org")
        assert await login_failure(env, "alice@example.org", corrupt(good)) == "not-authorized"
        other = env.token("bob@example.org")
        assert await login_failure(env, "alice@example.org", other) == "not-authorized"
        imap = env.token("alice@example.org", services="imap")
        assert await login_failure(env, "alice@example.org", imap) == "not-authorized"
        short = env.token("alice@example.org")
        env.redis.cli("HSET", "samlgw:token:" + _hash(short), "expires", "1")
        assert await login_failure(env, "alice@example.org", short) == "not-authorized"
        revoked = env.token("dave@example.org")
        env.revoke_all("dave@example.org")
        assert await login_failure(env, "dave@example.org", revoked) == "not-authorized"
        # A wildcard token works; the user is not locked out by the failures above.
        star = env.token("bob@example.org", services="*")
        b = await login(env, "bob@example.org", star)
        await close(b)
    asyncio.run(main())


def corrupt(token):
    """The token with its last character changed (so its check no longer matches)."""
    return token[:-1] + ("B" if token[-1] == "A" else "A")


def _hash(token):
    import hashlib
    return hashlib.sha256(token.encode()).hexdigest()


def test_no_plain_before_tls(env):
    r = Raw(env)
    feats = r.header()
    assert "starttls" in feats and "<required/>" in feats
    assert "PLAIN" not in feats and "mechanisms" not in feats
    tok = env.token("alice@example.org")
    out = r.auth("PLAIN", b"\0alice\0" + tok.encode())
    assert "encryption-required" in out and "success" not in out
    r.close()
    # After STARTTLS the mechanisms appear.
    r = Raw(env)
    feats = r.starttls()
    assert "<mechanism>PLAIN</mechanism>" in feats and "OAUTHBEARER" in feats
    assert "urn:xmpp:stream-limits:0" in feats and "<max-bytes>262144</max-bytes>" in feats
    r.close()


def test_oauthbearer(env):
    tok = env.token("alice@example.org")
    r = Raw(env)
    r.starttls()
    out = r.auth("OAUTHBEARER", b"n,a=alice@example.org,\x01auth=Bearer " + tok.encode() +
                 b"\x01\x01")
    assert "<success" in out
    r.close()
    r = Raw(env, direct=True)
    r.header()
    out = r.auth("OAUTHBEARER", b"n,a=alice@example.org,\x01auth=Bearer " + corrupt(tok).encode() +
                 b"\x01\x01")
    assert "<challenge" in out  # RFC 7628 error challenge
    r.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AQ==</response>")
    assert "not-authorized" in r.recv_until("</failure>")
    r.close()


def test_failed_logins_are_slowed_down(make_env):
    env = make_env("auth_failures = 3")

    async def main():
        tok = env.token("erin@example.org")
        for _ in range(3):
            assert await login_failure(env, "erin@example.org", corrupt(tok)) == \
                "not-authorized"
        # Further checks from this address wait first, but the right token still works.
        e = await login(env, "erin@example.org", tok, timeout=20)
        await close(e)
    asyncio.run(main())
    assert "auth_rate_limited" in env.server.log_text()


def test_check_and_version(env):
    from conftest import XMPP_BIN
    r = subprocess.run([XMPP_BIN, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("xmpp-core ")
    r = subprocess.run([XMPP_BIN, "--config", str(env.server.config), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    bad = env.server.dir / "bad.conf"
    bad.write_text("[xmpp]\nmax_stanza_size = 5\nlisten = nowhere\n\n[domain example.org]\n")
    r = subprocess.run([XMPP_BIN, "--config", str(bad), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert any(l.startswith(str(bad) + ":2:") for l in lines), lines
    assert any(l.startswith(str(bad) + ":3:") for l in lines), lines


def test_sighup_rereads_certificates(env):
    import signal
    import time
    env.server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "tls_reloaded" not in env.server.log_text():
        assert time.monotonic() < deadline, env.server.log_text()
        time.sleep(0.05)

    async def main():
        a = await login(env, "alice@example.org", env.token("alice@example.org"), direct=True)
        await close(a)
    asyncio.run(main())


def test_alpn_and_sni_per_listener(env):
    """Direct TLS: xmpp-client is selected, and a client offering only other protocols is
    refused; STARTTLS carries on without ALPN. Either way SNI picks the domain's
    certificate (checked against the name), and the server's first choice of cipher is
    ChaCha20-Poly1305."""
    def handshake(direct, protocols, domain):
        ctx = ssl.create_default_context(cafile=env.cafile)
        ctx.set_alpn_protocols(protocols)
        if direct:
            s = socket.create_connection(("127.0.0.1", env.server.tls_port), timeout=5)
        else:
            r = Raw(env, domain=domain)
            r.header()
            r.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            r.recv_until("<proceed")
            r.recv_until("/>")
            s = r.sock
        try:
            t = ctx.wrap_socket(s, server_hostname=domain)
        except ssl.SSLError:
            s.close()
            return "refused"
        proto = t.selected_alpn_protocol()
        assert t.cipher()[0] == "TLS_CHACHA20_POLY1305_SHA256"
        t.close()
        return proto

    assert handshake(True, ["h2", "xmpp-client"], "example.net") == "xmpp-client"
    assert handshake(True, ["h2"], "example.org") == "refused"
    assert handshake(False, ["h2"], "example.net") is None
    assert handshake(False, ["xmpp-client"], "example.org") == "xmpp-client"


def test_oauthbearer_without_authzid(env):
    """RFC 7628 lets the GS2 header name no user ("n,,"): the token names its owner, who is
    then the authenticated user; a token of another domain's user is refused on this
    domain's stream, before a use of a limited token is counted."""
    tok = env.token("alice@example.org")
    r = Raw(env)
    r.starttls()
    assert "<success" in r.auth("OAUTHBEARER", b"n,,\x01auth=Bearer " + tok.encode() +
                                b"\x01\x01")
    r.header()
    r.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    out = r.recv_until("</iq>")
    assert "<jid>alice@example.org/" in out, out
    r.close()

    once = env.token("carol@example.net", extra=("--uses", "1"))
    r = Raw(env)  # a stream to example.org
    r.starttls()
    out = r.auth("OAUTHBEARER", b"n,,\x01auth=Bearer " + once.encode() + b"\x01\x01")
    assert "<challenge" in out, out
    r.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AQ==</response>")
    assert "not-authorized" in r.recv_until("</failure>")
    r.close()
    # The refused attempt used nothing: the token still logs carol in on her own domain.
    r = Raw(env, domain="example.net")
    r.starttls()
    out = r.auth("OAUTHBEARER", b"n,,\x01auth=Bearer " + once.encode() + b"\x01\x01")
    assert "<success" in out, env.server.log_text()[-2000:]
    r.close()
    # Malformed GS2 headers are still refused.
    r = Raw(env)
    r.starttls()
    assert "malformed-request" in r.auth("OAUTHBEARER", b"n,b=x,\x01auth=Bearer " +
                                         tok.encode() + b"\x01\x01")
    r.close()
