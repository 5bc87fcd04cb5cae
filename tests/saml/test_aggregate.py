"""samlgw fetching a signed federation aggregate of 3,000 IdPs (saml.metadata_url) from an
HTTP server run by this test: it loads, verifies and serves logins from one of its IdPs
(a ResponseFactory); a tampered copy (one byte changed) and an expired copy are refused
with event=metadata_fetch_failed while the last good copy stays in service and on disk; a
new good copy replaces it; an unchanged one is answered 304 (conditional GET)."""
import hashlib
import http.server
import threading
import time

import pytest

import aggregate
import samltest
from conftest import SP_ENTITY, WRAPPER, Gateway, accepted, post

# Under valgrind (SAMLGW_WRAPPER) loading 3,000 IdPs would take minutes per load; the
# paths are the same with fewer, and memory errors do not need the scale.
N_IDPS = 3000 if not WRAPPER else 200
MEMBER = "https://member.idp.example.net/idp"


class Publisher:
    """A one-file HTTP server on 127.0.0.1 with ETag / If-None-Match."""

    def __init__(self):
        self.body = b""
        self.requests = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                etag = '"%s"' % hashlib.sha256(owner.body).hexdigest()[:32]
                owner.requests.append(self.headers.get("If-None-Match"))
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/samlmetadata+xml")
                self.send_header("Content-Length", str(len(owner.body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/federation.xml" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for(gw, event, count, timeout=180):
    deadline = time.monotonic() + timeout
    while len(gw.log_lines(event)) < count:
        assert gw.proc.poll() is None, gw.log()[-3000:]
        assert time.monotonic() < deadline, "no %d× event=%s:\n%s" % (
            count, event, gw.log()[-3000:])
        time.sleep(0.05)
    return gw.log_lines(event)[count - 1]


@pytest.fixture(scope="module")
def fed(tmp_path_factory, redis):
    base = tmp_path_factory.mktemp("aggregate")
    fed_key, fed_cert = samltest.make_keypair(base / "keys", "federation")
    idp_key, idp_cert = samltest.make_keypair(base / "keys", "idp")
    member_key, member_cert = samltest.make_keypair(base / "keys", "member")
    members = [(MEMBER, member_cert, "example.org")]

    def make(valid_until=None):
        return aggregate.signed(N_IDPS, fed_key, fed_cert, idp_cert, members, valid_until)

    t0 = time.monotonic()
    good = make()
    gen_s = time.monotonic() - t0
    pub = Publisher()
    pub.body = good
    gw = Gateway(base / "gw", redis, MEMBER)
    backing = base / "gw" / "federation.xml"  # not there yet: fetched at start
    gw.write_config(backing, extra_saml="metadata_cert = %s\nmetadata_url = %s\n"
                    "metadata_refresh = 1h\n" % (fed_cert, pub.url))
    factory = samltest.ResponseFactory(member_key, member_cert, MEMBER, SP_ENTITY, gw.acs,
                                       sp_enc_cert=gw.sp_cert, scope="example.org")
    try:
        gw.start(timeout=120)
        yield dict(gw=gw, pub=pub, good=good, make=make, backing=backing, factory=factory,
                   gen_s=gen_s)
    finally:
        try:
            gw.stop()
        finally:
            pub.close()


def hup(gw):
    import signal
    gw.proc.send_signal(signal.SIGHUP)


def test_fetched_at_start_and_serves_logins(fed):
    gw = fed["gw"]
    assert fed["gen_s"] < 30, fed["gen_s"]  # string templates, one signature
    line = wait_for(gw, "metadata_fetched", 1)
    assert "when=start" in line and "idps=%d " % N_IDPS in line + " ", line
    assert "idps=%d " % N_IDPS in gw.log_lines("started")[0] + " "
    assert fed["backing"].read_bytes() == fed["good"]
    page, _ = post(gw, fed["factory"])
    accepted(page)


def test_tampered_is_refused_and_last_good_copy_stays(fed):
    gw, pub = fed["gw"], fed["pub"]
    failures = len(gw.log_lines("metadata_fetch_failed"))
    pub.body = aggregate.tamper(fed["good"])
    assert pub.body != fed["good"] and len(pub.body) == len(fed["good"])
    hup(gw)
    line = wait_for(gw, "metadata_fetch_failed", failures + 1)
    assert "signature" in line, line
    assert fed["backing"].read_bytes() == fed["good"]
    assert not list(fed["backing"].parent.glob("federation.xml.fetch-*"))
    page, _ = post(gw, fed["factory"])
    accepted(page)


def test_expired_is_refused(fed):
    gw, pub = fed["gw"], fed["pub"]
    failures = len(gw.log_lines("metadata_fetch_failed"))
    pub.body = fed["make"](valid_until=-3600)
    hup(gw)
    line = wait_for(gw, "metadata_fetch_failed", failures + 1)
    assert "expired" in line and "validUntil" in line, line
    assert fed["backing"].read_bytes() == fed["good"]
    page, _ = post(gw, fed["factory"])
    accepted(page)


def test_new_good_copy_replaces_and_unchanged_is_not_modified(fed):
    gw, pub = fed["gw"], fed["pub"]
    fetched = len(gw.log_lines("metadata_fetched"))
    fresh = fed["make"](valid_until=30 * 86400)
    pub.body = fresh
    hup(gw)
    line = wait_for(gw, "metadata_fetched", fetched + 1)
    assert "when=refresh" in line and "idps=%d " % N_IDPS in line + " ", line
    assert fed["backing"].read_bytes() == fresh
    page, _ = post(gw, fed["factory"])
    accepted(page)
    # Same copy again: a conditional GET answered 304, nothing reloaded.
    unchanged = len(gw.log_lines("metadata_not_modified"))
    hup(gw)
    wait_for(gw, "metadata_not_modified", unchanged + 1)
    assert pub.requests[-1] is not None  # If-None-Match was sent
    assert len(gw.log_lines("metadata_fetched")) == fetched + 1
    assert fed["backing"].read_bytes() == fresh
