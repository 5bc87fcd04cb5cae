"""Login throttling never locks out a user with a valid token, and a revocation that
races a login in progress is not missed (whichever of the check's answer and the
revocation xmpp-core sees first; tests/unit/test_xmpp_core.c covers the revocation
arriving first, which this test cannot force)."""
import asyncio
import base64
import subprocess
import time

from conftest import TOKEN_BIN
from xmpptest import Raw, close, login


def corrupt(token):
    return token[:-1] + ("B" if token[-1] == "A" else "A")


def fail_many(env, jid, tokens):
    """Failed PLAIN logins naming jid, five per connection."""
    n = 0
    for i in range(0, len(tokens), 5):
        r = Raw(env)
        r.starttls()
        for tok in tokens[i:i + 5]:
            out = r.auth("PLAIN", b"\0" + jid.encode() + b"\0" + tok.encode())
            assert "not-authorized" in out, out
            n += 1
        r.close()
    return n


def test_failures_against_a_jid_do_not_lock_out_its_owner(make_env):
    env = make_env("auth_failures = 3")
    good = env.token("alice@example.org")
    other = env.token("bob@example.org")  # well formed, checked in Redis, wrong user
    fail_many(env, "alice@example.org", [corrupt(good), other] * 3)

    async def main():
        a = await login(env, "alice@example.org", good, timeout=20)
        await close(a)
    asyncio.run(main())
    assert "auth_rate_limited" in env.server.log_text()


def test_revocation_racing_a_login_is_not_missed(make_env):
    # Redis stopped while both the login's check and the revocation wait for it: on SIGCONT
    # it runs the check (still valid) and then the revocation, and its answers reach
    # xmpp-core on different connections, the revocation's message typically first.
    env = make_env(redis_timeout=10000)
    warm = env.token("rita@example.org")

    async def warm_up():  # loads the verify script into Redis
        a = await login(env, "rita@example.org", warm)
        await close(a)
    asyncio.run(warm_up())
    env.revoke_all("nobody@example.org")  # loads the revoke script
    tok = env.token("rita@example.org")
    r = Raw(env)
    r.starttls()
    env.redis.proc.send_signal(19)  # SIGSTOP
    try:
        r.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>"
               % base64.b64encode(b"\0rita@example.org\0" + tok.encode()).decode())
        time.sleep(0.3)  # xmpp-core reads it and queues the check
        p = subprocess.Popen([TOKEN_BIN, "--config", str(env.server.config), "revoke",
                              "--jid", "rita@example.org", "--all"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # samlgw-token connects and queues the revocation
    finally:
        env.redis.proc.send_signal(18)  # SIGCONT
    assert p.wait(timeout=30) == 0
    r.sock.settimeout(20)
    buf = b""
    while b"</failure>" not in buf and b"<success" not in buf:
        chunk = r.sock.recv(65536)
        assert chunk, buf
        buf += chunk
    if b"<success" in buf:
        # The check's answer came first: then the revocation must end the stream.
        r.buf = buf
        try:
            r.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                   "xmlns:stream='http://etherx.jabber.org/streams' to='example.org' "
                   "version='1.0'>")
        except OSError:
            pass
        try:
            out = r.read_to_close(timeout=5)
        except OSError as e:
            raise AssertionError("the revoked login's stream stayed open") from e
        assert "the token was revoked" in out, out
    else:
        assert b"not-authorized" in buf, buf
    r.close()


def test_base64_padding_is_strict(env):
    r = Raw(env)
    r.starttls()
    for bad in ("AA=A", "A=AA", "AAAA=AAA"):
        r.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>"
               % bad)
        assert "incorrect-encoding" in r.recv_until("</failure>"), bad
    r.close()
