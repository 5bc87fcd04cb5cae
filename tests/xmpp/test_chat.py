"""Rosters, presence and messages between two users; offline delivery with delay; a
second login with the same resource replaces the first; disco, ping and version."""
import asyncio

import slixmpp

from xmpptest import close, login, wait_for


def test_add_each_other_presence_and_messages(env):
    async def main():
        a = await login(env, "alice@example.org", env.token("alice@example.org"), auto=True)
        b = await login(env, "bob@example.org", env.token("bob@example.org"), auto=True)
        a.send_presence(pto="bob@example.org", ptype="subscribe")
        await wait_for(lambda: a.client_roster["bob@example.org"]["subscription"] == "both" and
                       b.client_roster["alice@example.org"]["subscription"] == "both")
        # Each sees the other's presence.
        await wait_for(lambda: any(p["from"].bare == "bob@example.org" and p["type"] == "available"
                                   for p in a.presences))
        await wait_for(lambda: any(p["from"].bare == "alice@example.org" and
                                   p["type"] == "available" for p in b.presences))
        a.send_message(mto="bob@example.org", mbody="hello bob", mtype="chat")
        m = await asyncio.wait_for(b.messages.get(), 5)
        assert m["body"] == "hello bob" and m["from"].bare == "alice@example.org"
        b.send_message(mto=a.boundjid.full, mbody="hi alice", mtype="chat")
        m = await asyncio.wait_for(a.messages.get(), 5)
        assert m["body"] == "hi alice"
        # Bob leaving is seen by Alice.
        await close(b)
        await wait_for(lambda: any(p["from"].bare == "bob@example.org" and
                                   p["type"] == "unavailable" for p in a.presences))
        await close(a)
    asyncio.run(main())
    # The roster survives a restart of xmpp-core (it lives in Redis).
    assert env.server.stop() == 0
    env.server.start()

    async def again():
        a = await login(env, "alice@example.org", env.token("alice@example.org"))
        assert a.client_roster["bob@example.org"]["subscription"] == "both"
        await close(a)
    asyncio.run(again())


def test_offline_message_with_delay(env):
    async def main():
        tok_b = env.token("bob@example.org")  # bob exists: he holds a token
        a = await login(env, "alice@example.org", env.token("alice@example.org"))
        a.send_message(mto="bob@example.org", mbody="while you were away", mtype="chat")
        await asyncio.sleep(0.3)
        await close(a)
        b = await login(env, "bob@example.org", tok_b)
        m = await asyncio.wait_for(b.messages.get(), 5)
        assert m["body"] == "while you were away"
        assert m["delay"]["stamp"] is not None
        await close(b)
        # Delivered once only.
        b = await login(env, "bob@example.org", env.token("bob@example.org"))
        await asyncio.sleep(0.5)
        assert b.messages.empty()
        await close(b)
    asyncio.run(main())


def test_offline_queue_is_capped(make_env):
    env = make_env("max_offline = 2")

    async def main():
        env.token("bob@example.org")
        a = await login(env, "alice@example.org", env.token("alice@example.org"))
        for i in range(3):
            a.send_message(mto="bob@example.org", mbody="m%d" % i, mtype="chat")
        m = await asyncio.wait_for(a.messages.get(), 5)
        assert m["type"] == "error" and m["error"]["condition"] == "service-unavailable"
        await close(a)
    asyncio.run(main())


def test_same_resource_kicks_the_first(env):
    async def main():
        tok = env.token("alice@example.org")
        first = await login(env, "alice@example.org", tok, resource="phone")
        second = await login(env, "alice@example.org", tok, resource="phone")
        await asyncio.wait_for(first.gone.wait(), 5)
        assert "conflict" in first.stream_errors
        assert second.boundjid.full == "alice@example.org/phone"
        await close(second)
    asyncio.run(main())


def test_disco_ping_version(env):
    async def main():
        a = await login(env, "alice@example.org", env.token("alice@example.org"))
        a.register_plugin("xep_0030")
        a.register_plugin("xep_0199")
        a.register_plugin("xep_0092")
        info = await a["xep_0030"].get_info(jid="example.org")
        feats = info["disco_info"]["features"]
        assert "urn:xmpp:ping" in feats and "jabber:iq:version" in feats
        await a["xep_0199"].ping(jid="example.org", timeout=5)
        v = await a["xep_0092"].get_version("example.org")
        assert v["software_version"]["name"] == "xmpp-core"
        acct = await a["xep_0030"].get_info(jid="bob@example.org")
        assert ("account", "registered", None, None) in acct["disco_info"]["identities"]
        try:
            await a["xep_0030"].get_info(jid="example.com")
            raise AssertionError("a domain not hosted answered")
        except slixmpp.exceptions.IqError as e:
            assert e.iq["error"]["condition"] == "remote-server-not-found"
        await close(a)
    asyncio.run(main())


def test_version_can_be_switched_off(make_env):
    env = make_env("version = no")

    async def main():
        a = await login(env, "alice@example.org", env.token("alice@example.org"))
        a.register_plugin("xep_0092")
        try:
            await a["xep_0092"].get_version("example.org")
            raise AssertionError("version answered")
        except slixmpp.exceptions.IqError as e:
            assert e.iq["error"]["condition"] == "service-unavailable"
        await close(a)
    asyncio.run(main())


def test_probe_answered_from_the_contacts_roster(env):
    async def main():
        b = await login(env, "bob@example.org", env.token("bob@example.org"))
        # Alice's stored roster claims a subscription to Bob that Bob never granted.
        env.redis.cli("HSET", "samlgw:xmpp:roster:alice@example.org", "bob@example.org",
                      "t-001\t")
        a = await login(env, "alice@example.org", env.token("alice@example.org"))
        a.register_plugin("xep_0199")
        await a["xep_0199"].ping(jid="example.org", timeout=10)  # after the probe answers
        assert not any(p["from"].bare == "bob@example.org" for p in a.presences), \
            [str(p) for p in a.presences]
        await close(a, b)
    asyncio.run(main())
