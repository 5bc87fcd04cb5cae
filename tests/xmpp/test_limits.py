"""Resource limits: a client that does not read is cut off and the server's memory stays
bounded; connection caps (global and per address), the deadline to authenticate, the
smaller stanza cap before binding, namespace declarations counted as attributes, and
Redis calls in flight per connection."""
import os
import socket
import time

from conftest import SLOW
from xmpptest import Raw


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


# Under ASan freed memory sits in quarantine (256 MB by default) and counts as resident.
RSS_BOUND_KIB = (512 if os.environ.get("SAMLGW_TEST_SETUP") == "asan" else 64) * 1024


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
        assert grown < RSS_BOUND_KIB, "RSS grew by %d KiB after %d messages" % (grown, i + 1)
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
    assert rss_kib(pid) - before < RSS_BOUND_KIB
    flood.close()
    sink.close()


def open_raw(env):
    s = socket.create_connection(("127.0.0.1", env.server.port), timeout=10)
    s.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              b"xmlns:stream='http://etherx.jabber.org/streams' to='example.org' "
              b"version='1.0'>")
    return s


def answered(s):
    """True when the server sends stream features, False when it closes the socket."""
    buf = b""
    while b"</stream:features>" not in buf:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return False
        if not chunk:
            return False
        buf += chunk
    return True


def check_cap(env, cap):
    # The fixture's own probes (connect, close) may still be counted for a moment.
    deadline = time.monotonic() + 10
    while True:
        held = [open_raw(env) for _ in range(cap)]
        if all(answered(s) for s in held):
            break
        for s in held:
            s.close()
        assert time.monotonic() < deadline, "the first connections were refused"
        time.sleep(0.2)
    extra = open_raw(env)
    assert not answered(extra), "a connection past the cap was served"
    extra.close()
    held.pop().close()
    deadline = time.monotonic() + 10
    while True:  # a slot frees up once the server saw the close
        s = open_raw(env)
        if answered(s):
            s.close()
            break
        s.close()
        assert time.monotonic() < deadline, "the freed slot was never reused"
        time.sleep(0.1)
    for s in held:
        s.close()


def test_connection_cap_global(make_env):
    env = make_env("max_connections = 3\nmax_connections_per_ip = 0")
    check_cap(env, 3)
    assert "max_connections" in env.server.log_text()


def test_connection_cap_per_address(make_env):
    env = make_env("max_connections = 100\nmax_connections_per_ip = 3")
    check_cap(env, 3)
    assert "max_connections_per_ip" in env.server.log_text()


def test_deadline_to_authenticate(make_env):
    deadline = 2 * SLOW
    env = make_env("auth_timeout = %d\ntls_timeout = %d" % (deadline, SLOW))
    r = Raw(env)
    r.starttls()
    t0 = time.monotonic()
    # Whitespace keeps a connection from idling out, but not past the deadline. It stops
    # a second before the deadline: whitespace still unread when the server closes would
    # make the close a TCP reset, which loses the stream error in flight.
    r.sock.settimeout(0.3)
    out = b""
    closed = False
    while time.monotonic() - t0 < 30 * SLOW:
        try:
            if time.monotonic() - t0 < deadline - 1:
                r.sock.sendall(b" ")
            chunk = r.sock.recv(65536)
            if not chunk:
                closed = True
                break
            out += chunk
        except socket.timeout:
            continue
        except (ssl_errors()):
            closed = True
            break
    assert closed, "still open after 30 s"
    assert b"connection-timeout" in out, out
    # A TLS handshake that never starts is dropped as well.
    s = socket.create_connection(("127.0.0.1", env.server.tls_port), timeout=30)
    assert s.recv(100) == b""
    s.close()
    assert "tls_timeout" in env.server.log_text()


def ssl_errors():
    import ssl
    return (ssl.SSLError, ConnectionResetError, BrokenPipeError)


def test_small_stanza_cap_before_bind(env):
    r = Raw(env)
    r.starttls()
    r.send("<message><body>" + "x" * 20000 + "</body></message>")
    assert "<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in r.read_to_close()
    r.close()
    # Once bound, the full max_stanza_size applies.
    r = authed_raw(env, "big@example.org")
    r.send("<message to='big@example.org/r' id='m1'><body>" + "x" * 20000 +
           "</body></message>")
    assert "id='m1'" in r.recv_until("</message>", timeout=10)
    r.close()


def test_namespace_declarations_count_as_attributes(env):
    r = authed_raw(env, "ns@example.org")
    decls = " ".join("xmlns:p%d='urn:x:%d'" % (i, i) for i in range(70))
    r.send("<message %s to='ns@example.org/r'><body>x</body></message>" % decls)
    assert "<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in r.read_to_close()


def test_redis_calls_in_flight_pause_the_client(make_env):
    env = make_env(redis_timeout=10000)
    r = authed_raw(env, "busy@example.org")
    sets = "".join("<iq type='set' id='s%d'><query xmlns='jabber:iq:roster'>"
                   "<item jid='c%d@example.org'/></query></iq>" % (i, i) for i in range(40))
    env.redis.proc.send_signal(19)  # SIGSTOP: every roster set waits for Redis
    try:
        r.send(sets + "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        # The ping needs no Redis, but it sits behind more calls than one client may have
        # in flight, so it is not even read until Redis answers.
        r.sock.settimeout(1.0)
        got = b""
        try:
            while True:
                chunk = r.sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, TimeoutError):
            pass
        assert b"id='p1'" not in got, "read past the in-flight cap"
        r.buf = got
    finally:
        env.redis.proc.send_signal(18)  # SIGCONT
    r.sock.settimeout(20)
    while any(("id='s%d'" % i).encode() not in r.buf for i in range(40)) or \
            b"id='p1'" not in r.buf:
        chunk = r.sock.recv(65536)
        assert chunk, r.buf[-300:]
        r.buf += chunk
    r.close()
