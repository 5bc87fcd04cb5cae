"""The token store going away and coming back, and revocation."""
import asyncio
import time

from xmpptest import close, login, login_failure


def test_redis_stopped_mid_run(env):
    async def main():
        tok_a = env.token("alice@example.org")
        tok_b = env.token("bob@example.org")
        tok_c = env.token("carol@example.org")
        a = await login(env, "alice@example.org", tok_a)
        b = await login(env, "bob@example.org", tok_b)
        env.redis.stop()
        assert await login_failure(env, "carol@example.org", tok_c) == "temporary-auth-failure"
        a.send_message(mto=b.boundjid.full, mbody="redis is down", mtype="chat")
        m = await asyncio.wait_for(b.messages.get(), 5)
        assert m["body"] == "redis is down"
        env.redis.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                c = await login(env, "carol@example.org", tok_c)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)
        await close(a, b, c)
    asyncio.run(main())


def test_redis_hung_gives_temporary_failure(env):
    async def main():
        tok = env.token("alice@example.org")
        env.redis.proc.send_signal(19)  # SIGSTOP
        try:
            assert await login_failure(env, "alice@example.org", tok) == \
                "temporary-auth-failure"
        finally:
            env.redis.proc.send_signal(18)  # SIGCONT
    asyncio.run(main())


def test_revocation_closes_the_session(env):
    async def main():
        tok = env.token("alice@example.org")
        other = env.token("alice@example.org")
        a = await login(env, "alice@example.org", tok, resource="one")
        keep = await login(env, "alice@example.org", other, resource="two")
        r = __import__("subprocess").run(
            [__import__("conftest").TOKEN_BIN, "--config", str(env.server.config), "list",
             "--jid", "alice@example.org"], capture_output=True, text=True)
        import hashlib
        tid = hashlib.sha256(tok.encode()).hexdigest()[:16]
        assert tid in r.stdout
        t0 = time.monotonic()
        r = __import__("subprocess").run(
            [__import__("conftest").TOKEN_BIN, "--config", str(env.server.config), "revoke",
             "--jid", "alice@example.org", "--id", tid], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        await asyncio.wait_for(a.gone.wait(), 1.5)
        assert time.monotonic() - t0 < 1.5
        assert "not-authorized" in a.stream_errors
        # The session with another token stays.
        await asyncio.sleep(0.3)
        assert not keep.gone.is_set()
        await close(keep)
    asyncio.run(main())
