"""Offline storage: kept only for users that exist, with an expiry, never bounced when
stored, delivered at the next login; oversize stanzas and full queues are bounced."""
import asyncio

from xmpptest import close, login


async def bounce_for(client, to, timeout=5):
    """Waits for the error reply to a message sent to `to`; returns its condition."""
    while True:
        m = await asyncio.wait_for(client.messages.get(), timeout)
        if m["type"] == "error" and m["from"].bare == to:
            return m["error"]["condition"]


def test_stored_message_is_not_bounced_expires_and_arrives(env):
    async def main():
        tok_b = env.token("bob@example.org")
        a = await login(env, "alice@example.org", env.token("alice@example.org"))
        a.send_message(mto="bob@example.org", mbody="kept for bob", mtype="chat")
        # Nobody by that name: bounced (RFC 6121 §8.5.2). Its answer comes after the
        # first message's, which travels the same Redis connection first.
        a.send_message(mto="nobody@example.org", mbody="lost", mtype="chat")
        m = await asyncio.wait_for(a.messages.get(), 10)
        assert m["type"] == "error", m
        assert m["from"].bare == "nobody@example.org", m
        assert m["error"]["condition"] == "service-unavailable"
        assert a.messages.empty(), "the stored message was bounced"
        ttl = int(env.redis.cli("TTL", "samlgw:xmpp:offline:bob@example.org").stdout)
        assert 0 < ttl <= 30 * 86400, ttl
        ttl = int(env.redis.cli("TTL", "samlgw:xmpp:offline-bytes:bob@example.org").stdout)
        assert 0 < ttl <= 30 * 86400, ttl
        assert env.redis.cli("EXISTS", "samlgw:xmpp:offline:nobody@example.org").stdout \
            .strip() == "0"
        await close(a)
        b = await login(env, "bob@example.org", tok_b)
        m = await asyncio.wait_for(b.messages.get(), 10)
        assert m["body"] == "kept for bob"
        await close(b)
    asyncio.run(main())


def test_offline_caps_on_bytes(make_env):
    env = make_env("max_offline_bytes = 65536")

    async def main():
        env.token("bob@example.org")
        a = await login(env, "alice@example.org", env.token("alice@example.org"))
        # One stanza over 64 KiB is never stored.
        a.send_message(mto="bob@example.org", mbody="x" * 70000, mtype="chat")
        assert await bounce_for(a, "bob@example.org") == "service-unavailable"
        # 40 KiB fits once, not twice.
        for ident in ("y", "z"):
            m = a.make_message(mto="bob@example.org", mbody=ident * 40000, mtype="chat")
            m["id"] = ident
            m.send()
        m = await asyncio.wait_for(a.messages.get(), 10)
        assert m["type"] == "error" and m["id"] == "z", m
        assert a.messages.empty()
        await close(a)
    asyncio.run(main())
