"""Stream-level protection: restricted XML, oversize stanzas, bad addressing and other
violations get the right stream error, and the server keeps serving everyone else."""
import asyncio

import pytest

from xmpptest import Raw, close, login

VIOLATIONS = [
    ("<!-- a comment -->", "restricted-xml"),
    ("<?pi data?>", "restricted-xml"),
    ("<message to='bob@example.org'><body>&unknown;</body></message>", "restricted-xml"),
    ("<message><body>\xff</body></message>".encode("latin-1"), "not-well-formed"),
    ("<message><body></message>", "not-well-formed"),
    ("<foo xmlns='urn:example'/>", "unsupported-stanza-type"),
]


def authed_raw(env, user="mallory@example.org"):
    tok = env.token(user)
    r = Raw(env)
    r.starttls()
    assert "<success" in r.auth("PLAIN", b"\0" + user.encode() + b"\0" + tok.encode())
    r.header()
    r.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    out = r.recv_until("</iq>")
    r.bound = out.split("<jid>")[1].split("</jid>")[0]
    return r


@pytest.mark.parametrize("payload,condition", VIOLATIONS)
def test_violations_close_the_stream(env, payload, condition):
    async def main():
        a = await login(env, "alice@example.org", env.token("alice@example.org"))
        b = await login(env, "bob@example.org", env.token("bob@example.org"))
        r = await asyncio.get_running_loop().run_in_executor(None, authed_raw, env)
        r.send(payload)
        out = await asyncio.get_running_loop().run_in_executor(None, r.read_to_close)
        assert "<%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" % condition in out, out
        assert out.rstrip().endswith("</stream:stream>")
        r.close()
        # Everyone else is still served.
        a.send_message(mto=b.boundjid.full, mbody="still here", mtype="chat")
        m = await asyncio.wait_for(b.messages.get(), 5)
        assert m["body"] == "still here"
        await close(a, b)
    asyncio.run(main())


def test_doctype_before_stream(env):
    r = Raw(env)
    r.send("<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>")
    out = r.read_to_close()
    assert "restricted-xml" in out


def test_oversize_stanza(make_env):
    env = make_env("max_stanza_size = 10000")
    r = authed_raw(env)
    r.send("<message to='bob@example.org'><body>" + "x" * 20000 + "</body></message>")
    out = r.read_to_close()
    assert "<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in out
    # A huge unfinished start tag is capped as well.
    r = authed_raw(env)
    r.send("<message " + "a" * 20000)
    assert "policy-violation" in r.read_to_close()


def test_deep_nesting(env):
    r = authed_raw(env)
    r.send("<message>" + "<x>" * 100)
    assert "policy-violation" in r.read_to_close()


def test_unknown_host(env):
    r = Raw(env)
    r.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>")
    out = r.read_to_close()
    assert "<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in out
    assert "<stream:stream" in out


def test_bad_to_in_stanza(env):
    r = authed_raw(env)
    r.send("<message to='a@b@c' id='m1'><body>x</body></message>")
    assert "jid-malformed" in r.recv_until("</message>")
    r.send("<iq type='get' id='i1' to='nobody@example.com'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert "remote-server-not-found" in r.recv_until("</iq>")
    r.close()


def test_stanza_before_auth(env):
    r = Raw(env)
    r.starttls()
    r.send("<message to='bob@example.org'><body>x</body></message>")
    assert "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in r.read_to_close()


def test_sigterm_sends_system_shutdown(env):
    r = authed_raw(env)
    assert env.server.stop() == 0
    assert "<system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in r.read_to_close()


def test_namespaced_attributes_are_not_routed(env):
    recv = authed_raw(env, "recv@example.org")
    send = authed_raw(env, "send@example.org")
    send.send("<message xmlns:f='urn:example:forged' f:evil='1' xml:lang='de' "
              "to='%s' id='m1'><body>x</body></message>" % recv.bound)
    out = recv.recv_until("</message>", timeout=10)
    assert "id='m1'" in out and "evil" not in out and "urn:example:forged" not in out, out
    assert "xml:lang='de'" in out, out
    recv.close()
    send.close()


def test_directed_presence_past_the_cap_is_not_delivered(env):
    recv = authed_raw(env, "recv@example.org")
    recv.send("<presence/>")
    send = authed_raw(env, "send@example.org")
    send.send("".join("<presence to='x%d@example.org'/>" % i for i in range(100)))
    send.send("<presence to='%s'/>" % recv.bound)
    send.send("<message to='%s' id='barrier'><body>b</body></message>" % recv.bound)
    out = recv.recv_until("id='barrier'", timeout=10)
    assert "<presence from='send@example.org" not in out, out
    recv.close()
    send.close()


def test_roster_item_size_is_capped(env):
    r = authed_raw(env, "groups@example.org")
    groups = "".join("<group>%s</group>" % (("g%02d" % i) * 60) for i in range(30))
    r.send("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'>"
           "<item jid='big@example.org'>%s</item></query></iq>" % groups)
    out = r.recv_until("</iq>", timeout=10)
    assert "type='error'" in out and "not-acceptable" in out, out
    r.send("<iq type='set' id='r2'><query xmlns='jabber:iq:roster'>"
           "<item jid='small@example.org' name='Small'><group>friends</group></item>"
           "</query></iq>")
    assert "type='result'" in r.recv_until("id='r2'", timeout=10) + r.recv_until(">")
    r.close()


def test_roster_total_size_is_capped(make_env):
    """A roster holds at most max_roster * 256 bytes in all (here 10 * 256): an item that
    would pass it gets not-acceptable (type modify); shortening, removing and then
    adding within the cap work, and the item count cap still answers not-allowed. The
    byte count kept in Redis matches the roster."""
    env = make_env("max_roster = 10")
    user = "rita@example.org"
    r = authed_raw(env, user)
    key = "samlgw:xmpp:roster:" + user

    def roster_set(n, jid, name=None, remove=False):
        attrs = " name='%s'" % name if name else ""
        attrs += " subscription='remove'" if remove else ""
        r.send("<iq type='set' id='s%d'><query xmlns='jabber:iq:roster'>"
               "<item jid='%s'%s/></query></iq>" % (n, jid, attrs))
        out = r.recv_until("id='s%d'" % n, timeout=10) + r.recv_until(">", timeout=10)
        if "type='error'" in out:
            out += r.recv_until("</iq>", timeout=10)
        return out

    def stored_bytes():
        fields = env.redis.cli("HGETALL", key).stdout.splitlines()
        return sum(len(f.encode()) for f in fields)

    long_name = "n" * 1000
    assert "type='result'" in roster_set(1, "a@example.org", long_name)
    assert "type='result'" in roster_set(2, "b@example.org", long_name)
    out = roster_set(3, "c@example.org", long_name)
    assert "type='error'" in out and "type='modify'" in out and "not-acceptable" in out, out
    assert "type='result'" in roster_set(4, "a@example.org", "short")
    assert "type='result'" in roster_set(5, "c@example.org", long_name)
    assert "type='result'" in roster_set(6, "b@example.org", remove=True)
    for i in range(8):
        assert "type='result'" in roster_set(10 + i, "x%d@example.org" % i)
    out = roster_set(20, "y@example.org")
    assert "type='error'" in out and "not-allowed" in out, out
    bytes_key = key.replace(":roster:", ":roster-bytes:")
    assert int(env.redis.cli("GET", bytes_key).stdout) == stored_bytes()
    # A roster stored without its count (older data) gets it computed on the next change.
    env.redis.cli("DEL", bytes_key)
    assert "type='result'" in roster_set(21, "x0@example.org", remove=True)
    assert int(env.redis.cli("GET", bytes_key).stdout) == stored_bytes()
    r.close()


def test_idle_stream_after_its_parser_is_freed(make_env):
    """A stream silent for a few seconds between stanzas has its parser freed; what comes
    next is parsed as before: the stream's own prefix and a namespace it declared in its
    header still apply, and its end tag (with that prefix) still closes it. Meanwhile
    the server sends whitespace keepalives."""
    env = make_env("keepalive = 5")
    user = "ivan@example.org"
    tok = env.token(user)
    r = Raw(env)
    r.starttls()
    assert "<success" in r.auth("PLAIN", b"\0" + user.encode() + b"\0" + tok.encode())
    r.send("<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client' "
           "xmlns:p='urn:xmpp:ping' to='example.org' version='1.0'>")
    r.recv_until("</stream:features>")
    r.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    r.recv_until("</iq>")
    r.sock.settimeout(8)
    assert r.sock.recv(100) == b" "  # a keepalive, after 5 s of silence (parser freed by then)
    r.send("<iq type='get' id='p1'><p:ping/></iq>")
    out = r.recv_until("id='p1'") + r.recv_until(">")
    assert "type='result'" in out and "error" not in out, out
    r.sock.settimeout(8)
    assert r.sock.recv(100) == b" "
    r.send("</s:stream>")
    out = r.read_to_close()
    assert out.rstrip().endswith("</stream:stream>"), out
    assert "error" not in out, out
