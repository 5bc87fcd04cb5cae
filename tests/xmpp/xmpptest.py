"""Client helpers for the xmpp-core tests: a slixmpp client driven from plain pytest
functions (each test runs its own asyncio loop), and a raw socket client for what a real
client would never send."""
import asyncio
import base64
import socket
import ssl

import slixmpp


class Client(slixmpp.ClientXMPP):
    """A slixmpp client that records what it receives. Never auto-answers subscriptions
    unless asked (auto=True)."""

    def __init__(self, jid, token, cafile, auto=False):
        super().__init__(jid, token, sasl_mech="PLAIN")
        self.ssl_context = ssl.create_default_context(cafile=cafile)
        self.auto_authorize = True if auto else None
        self.auto_subscribe = auto
        self.started = asyncio.Event()
        self.auth_failed = asyncio.Event()
        self.gone = asyncio.Event()
        self.failures = []
        self.stream_errors = []
        self.messages = asyncio.Queue()
        self.presences = []
        self.add_event_handler("session_start", self._on_start)
        self.add_event_handler("failed_auth", self._on_failed)
        self.add_event_handler("disconnected", lambda e: self.gone.set())
        self.add_event_handler("connection_failed", lambda e: self.gone.set())
        self.add_event_handler("stream_error", lambda e: self.stream_errors.append(e["condition"]))
        self.add_event_handler("message", lambda m: self.messages.put_nowait(m))
        self.add_event_handler("message_error", lambda m: self.messages.put_nowait(m))
        self.register_plugin("xep_0203")
        self.add_event_handler("presence", lambda p: self.presences.append(p))

    async def _on_start(self, event):
        await self.get_roster()
        self.send_presence()
        self.started.set()

    def _on_failed(self, stanza):
        self.failures.append(stanza["condition"])
        self.auth_failed.set()
        self.disconnect()


async def login(env, jid, token, direct=False, resource=None, auto=False, timeout=10):
    """Returns the client once its session started; raises AssertionError with the SASL
    failure conditions otherwise."""
    full = jid + "/" + resource if resource else jid
    c = Client(full, token, env.cafile, auto=auto)
    port = env.server.tls_port if direct else env.server.port
    c.connect(("127.0.0.1", port), use_ssl=direct, force_starttls=not direct)
    done = [asyncio.ensure_future(e.wait()) for e in (c.started, c.auth_failed, c.gone)]
    await asyncio.wait(done, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for f in done:
        f.cancel()
    if not c.started.is_set():
        c.disconnect()
        raise AssertionError("login failed: %r" % (c.failures,))
    return c


async def login_failure(env, jid, token, timeout=10):
    """The SASL failure condition a login gets (asserts that it does not succeed)."""
    c = Client(jid, token, env.cafile)
    c.connect(("127.0.0.1", env.server.port))
    done = [asyncio.ensure_future(e.wait()) for e in (c.started, c.auth_failed, c.gone)]
    await asyncio.wait(done, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for f in done:
        f.cancel()
    assert not c.started.is_set(), "login succeeded"
    c.disconnect()
    await asyncio.wait_for(c.gone.wait(), 5)
    return c.failures[0] if c.failures else None


async def wait_for(pred, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in %.1f s" % timeout)
        await asyncio.sleep(0.02)


async def close(*clients):
    for c in clients:
        c.disconnect()
    for c in clients:
        try:
            await asyncio.wait_for(c.gone.wait(), 5)
        except asyncio.TimeoutError:
            pass


class Raw:
    """A blocking raw client: plain connect, STARTTLS with SNI, then raw bytes."""

    def __init__(self, env, domain="example.org", direct=False):
        self.env = env
        self.domain = domain
        ctx = ssl.create_default_context(cafile=env.cafile)
        port = env.server.tls_port if direct else env.server.port
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if direct:
            ctx.set_alpn_protocols(["xmpp-client"])
            s = ctx.wrap_socket(s, server_hostname=domain)
        self.sock = s
        self.ctx = ctx
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def recv_until(self, marker, timeout=5):
        self.sock.settimeout(timeout)
        marker = marker.encode() if isinstance(marker, str) else marker
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed before %r; got %r" % (marker, self.buf[-400:]))
            self.buf += chunk
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out.decode(errors="replace")

    def read_to_close(self, timeout=5):
        self.sock.settimeout(timeout)
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            self.buf += chunk
        out, self.buf = self.buf, b""
        return out.decode(errors="replace")

    def header(self, to=None):
        self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>"
                  % (to or self.domain))
        return self.recv_until("</stream:features>")

    def starttls(self):
        feats = self.header()
        assert "starttls" in feats
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.recv_until("<proceed")
        self.recv_until("/>")
        self.sock = self.ctx.wrap_socket(self.sock, server_hostname=self.domain)
        return self.header()

    def auth(self, mech, payload):
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>"
                  % (mech, base64.b64encode(payload).decode()))
        self.sock.settimeout(5)
        while b"</success>" not in self.buf and b"<success" not in self.buf and \
                b"</failure>" not in self.buf and b"</challenge>" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        out, self.buf = self.buf.decode(errors="replace"), b""
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
