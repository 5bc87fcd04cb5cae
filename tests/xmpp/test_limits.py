"""Resource limits: a client that does not read is cut off and the server's memory stays
bounded; connection caps (global and per address), the deadline to authenticate, the
smaller stanza cap before binding, namespace declarations counted as attributes, and
Redis calls in flight per connection."""
import asyncio
import socket
import time

from xmpptest import Raw, close, login


def authed_raw(env, user, resource="r"):
    tok = env.token(user)
    r = Raw(env)
    r.starttls()
    assert "<success" in r.auth("PLAIN", b"\0" + user.encode() + b"\0" + tok.encode())
    r.header()
    r.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           "<resource>%s</resource></bind></iq>" % resource)
    r.recv_until("</iq>")
    return r


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def wait_log(env, text, timeout=20):
    deadline = time.monotonic() + timeout
    while text not in env.server.log_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_client_that_does_not_read_is_cut_off(env):
    pid = env.server.proc.pid
    sink = authed_raw(env, "sink@example.org", "s")
    flood = authed_raw(env, "flood@example.org", "f")
    before = rss_kib(pid)
    body = "x" * 200000
    stanza = ("<message to='sink@example.org/s' type='chat'><body>%s</body></message>"
              % body).encode()
    cut = False
    for i in range(400):  # up to 80 MB
        flood.send(stanza)
        grown = rss_kib(pid) - before
        assert grown < 64 * 1024, "RSS grew by %d KiB after %d messages" % (grown, i + 1)
        if i % 10 == 9 and "output_overflow" in env.server.log_text():
            cut = True
            break
    assert cut or wait_log(env, "output_overflow"), "the reader was never cut off"
    # The flooder is still served.
    flood.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
    flood.recv_until("id='p1'", timeout=20)
    # The sink's stream ends (its socket reaches EOF once read).
    sink.sock.settimeout(20)
    total = 0
    while True:
        try:
            chunk = sink.sock.recv(1 << 20)
        except (ConnectionResetError, OSError):
            break
        if not chunk:
            break
        total += len(chunk)
        assert total < 200 * 1024 * 1024
    assert rss_kib(pid) - before < 64 * 1024
    flood.close()
    sink.close()
