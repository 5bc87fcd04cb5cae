"""Login throttling never locks out a user with a valid token, and a revocation that
races a login in progress is not missed."""
import asyncio
import base64
import subprocess
import threading
import time

from conftest import TOKEN_BIN
from xmpptest import Raw, close, login, login_failure


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
