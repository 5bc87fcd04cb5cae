"""samlgw as a program: --version/--help/--check, refusals to start, /healthz, /metrics and
the SP metadata it publishes, and the web server's handling of connections."""
import contextlib
import http.client
import os
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from lxml import etree

import samltest
from conftest import SAMLGW_BIN, SP_ENTITY, factory_idp_metadata


def run(*args, env=None):
    return subprocess.run([SAMLGW_BIN] + list(args), capture_output=True, text=True,
                          timeout=60, env=env)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_version_help():
    assert run("--version").stdout.startswith("samlgw ")
    assert "--config" in run("--help").stdout
    assert run("--bogus").returncode == 64


def test_check_ok_and_problems(stack, tmp_path):
    gw, idp = stack
    r = run("--config", str(gw.config), "--check")
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text(gw.config.read_text().replace("[saml]", "[saml]\nclock_skw = 5"))
    r = run("--config", str(bad), "--check")
    assert r.returncode == 1 and "bad.conf:" in r.stderr and "clock_skew" in r.stderr


def test_lasso_flag_refused(stack):
    gw, _ = stack
    env = dict(os.environ, LASSO_FLAG="no-verify-signature")
    r = run("--config", str(gw.config), "--check", env=env)
    assert r.returncode != 0 and "LASSO_FLAG" in r.stderr


@pytest.mark.parametrize("bits,ok", [(1024, False), (2048, True)])
def test_idp_signing_key_size(stack, tmp_path, bits, ok):
    """An IdP signing key from the metadata must be RSA of at least 2048 bits (or EC of
    256): samlgw --check names the IdP and the reason. Control: 2048 bits."""
    gw, idp = stack
    _, cert = samltest.make_keypair(tmp_path, "idp%d" % bits, bits=bits)
    template = etree.fromstring(Path(idp.metadata_path).read_bytes())
    md = tmp_path / "idp.xml"
    md.write_bytes(etree.tostring(factory_idp_metadata(template, idp.entity_id, cert,
                                                       ["example.org"])))
    conf = tmp_path / "key.conf"
    conf.write_text(gw.config.read_text().replace(str(idp.metadata_path), str(md)))
    r = run("--config", str(conf), "--check")
    if ok:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 1 and "shorter than 2048 bits" in r.stderr, r.stderr
        assert idp.entity_id in r.stderr


def test_metadata_cert_must_verify(stack, tmp_path):
    gw, idp = stack
    key, cert = samltest.make_keypair(tmp_path, "fed")
    conf = tmp_path / "fed.conf"
    text = gw.config.read_text().replace(
        "idp_metadata =", "metadata_cert = %s\nidp_metadata =" % cert)
    conf.write_text(text)
    r = run("--config", str(conf), "--check")
    assert r.returncode == 1 and "signature" in r.stderr, r.stderr
    # Signed with the federation key: accepted (positive control).
    root = etree.fromstring(open(idp.metadata_path, "rb").read())
    root.set("ID", "_md1")
    root.insert(0, samltest.signature_template("_md1", samltest.cert_base64(cert)))
    tmpl = tmp_path / "template.xml"
    tmpl.write_bytes(etree.tostring(root))
    md = tmp_path / "signed.xml"
    subprocess.run([samltest.XMLSEC1, "--sign", "--privkey-pem", "%s,%s" % (key, cert),
                    "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
                    "--output", str(md), str(tmpl)], check=True, capture_output=True)
    conf.write_text(text.replace("idp_metadata = %s" % idp.metadata_path,
                                 "idp_metadata = %s" % md))
    r = run("--config", str(conf), "--check")
    assert r.returncode == 0, r.stderr


def test_sp_metadata(stack):
    gw, _ = stack
    status, headers, body = get(gw.url + "/saml/metadata")
    assert status == 200
    assert headers["Content-Type"] == "application/samlmetadata+xml"
    root = etree.fromstring(body)
    ns = dict(samltest.NS, remd="http://refeds.org/metadata")
    assert root.get("entityID") == SP_ENTITY
    acs = root.find(".//md:AssertionConsumerService", ns)
    assert acs.get("Location") == gw.acs
    assert acs.get("Binding").endswith("HTTP-POST")
    assert root.findall(".//md:SingleLogoutService", ns)
    uses = sorted(k.get("use") for k in root.findall(".//md:KeyDescriptor", ns))
    assert uses == ["encryption", "signing"]
    assert root.findall(".//md:NameIDFormat", ns)
    assert root.find(".//mdui:UIInfo/mdui:DisplayName", ns) is not None
    assert root.find(".//mdui:UIInfo/mdui:PrivacyStatementURL", ns) is not None
    req = root.findall(".//md:RequestedAttribute", ns)
    assert any(r.get("isRequired") == "true" for r in req)
    sec = [c for c in root.findall(".//md:ContactPerson", ns)
           if c.get("{http://refeds.org/metadata}contactType", "").endswith("/security")]
    assert sec and sec[0].find("md:EmailAddress", ns).text == "mailto:security@example.org"


def test_healthz_and_metrics(stack):
    gw, _ = stack
    assert get(gw.url + "/healthz")[0] == 200
    status, _, body = get(gw.url + "/metrics")
    assert status == 200
    text = body.decode()
    assert "samlgw_logins_total{result=\"ok\"" in text
    assert "samlgw_acs_duration_seconds_bucket{le=\"+Inf\"}" in text


def test_healthz_without_redis(stack):
    gw, _ = stack
    gw.redis.pause()
    try:
        assert get(gw.url + "/healthz")[0] == 503
    finally:
        gw.redis.resume()
    assert get(gw.url + "/healthz")[0] == 200


def test_account_needs_session(stack):
    gw, _ = stack
    b = samltest.Browser()
    page = b.get(gw.url + "/", follow=False)
    assert page.status == 302 and page.location == gw.url + "/login"
    page = b.post(gw.url + "/tokens", {"csrf": "x"}, follow=False)
    assert page.status == 403


def _raw_request(gw, head, body=b"", timeout=10):
    """Send head (and body) on a new connection; the reply's status line and the seconds
    it took."""
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=timeout)
    try:
        t0 = time.monotonic()
        s.sendall(head + body)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode(), time.monotonic() - t0
    finally:
        s.close()


def test_oversize_body_refused_before_it_is_sent(stack):
    """A declared Content-Length over 256 KiB is answered 413 at once: samlgw does not wait
    for (or read) the body. A second request right after works."""
    gw, _ = stack
    head = (b"POST /saml/acs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 10000000\r\n\r\n")
    status, took = _raw_request(gw, head)
    assert status.startswith("HTTP/1.1 413"), status
    assert took < 5, took
    # At the cap exactly, the body is read and the request handled (not a 413).
    body = b"SAMLResponse=" + b"A" * (256 * 1024 - len("SAMLResponse="))
    head = (b"POST /saml/acs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    status, _ = _raw_request(gw, head, body)
    assert status.startswith("HTTP/1.1 4") and " 413" not in status, status
    assert get(gw.url + "/healthz")[0] == 200


def _start_waiting(gw, n, results):
    """n requests on new connections that wait on the (paused) Redis, started one by one so
    that each is in its handler before the next connects."""
    threads = []
    for _ in range(n):
        t = threading.Thread(target=lambda: results.append(get(gw.url + "/healthz")[0]))
        t.start()
        threads.append(t)
        time.sleep(0.1)
    return threads


def _metadata(conn):
    """GET /saml/metadata on an open connection: the status and the body."""
    conn.request("GET", "/saml/metadata")
    r = conn.getresponse()
    return r.status, r.read()


@contextlib.contextmanager
def _hung_redis(gw):
    """Redis paused for the block. Yields (results, wait): wait(n) starts n requests that
    wait on it (see _start_waiting), results collects their statuses. On leaving, Redis
    resumes and each of them must have ended with 200 or 503."""
    results, threads = [], []
    gw.redis.pause()
    try:
        yield results, lambda n: threads.extend(_start_waiting(gw, n, results))
    finally:
        gw.redis.resume()
        for t in threads:
            t.join()
    assert len(results) == len(threads) and set(results) <= {200, 503}, results


def test_blocked_handlers_do_not_hold_up_other_requests(stack):
    """Requests waiting on a hung Redis (up to redis.timeout_ms each) hold up no other
    connection: one epoll thread always stays free to accept and answer (a handler runs on
    an epoll thread only while another one is free, else on a worker)."""
    gw, _ = stack
    with _hung_redis(gw) as (results, wait):
        wait(3)
        status, _, body = get(gw.url + "/saml/metadata")
        assert status == 200 and b"EntityDescriptor" in body
        assert results == []  # answered while the three still wait on Redis
    assert get(gw.url + "/healthz")[0] == 200


def test_blocked_handlers_do_not_hold_up_an_open_connection(stack):
    """A keep-alive connection is answered at once on its next request while others wait
    on a hung Redis: a handler runs on its epoll thread only while that thread serves no
    other connection. The first waiting request occupies one of the two epoll threads, so
    the kept connection and the later waiting ones share the other."""
    gw, _ = stack
    kept = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        with _hung_redis(gw) as (results, wait):
            wait(1)
            status, body = _metadata(kept)
            assert status == 200 and b"EntityDescriptor" in body
            wait(2)
            status, body = _metadata(kept)  # the same connection, now
            assert status == 200 and b"EntityDescriptor" in body
            assert results == []  # answered while the three still wait on Redis
    finally:
        kept.close()


def test_stops_cleanly_under_load(stack):
    """SIGTERM while keep-alive clients keep sending requests: every request that completes
    while the workers stop is still answered, and samlgw exits 0 (libmicrohttpd aborts
    when it is stopped with a connection suspended for a worker that is gone)."""
    gw, _ = stack
    for _ in range(5):
        stop = threading.Event()

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
            try:
                while not stop.is_set():
                    conn.request("GET", "/healthz")
                    conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                pass  # the server went away
            finally:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(12)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        try:
            gw.stop()  # raises unless samlgw exited 0 with nothing reported
        finally:
            stop.set()
            for t in threads:
                t.join()
        gw.start()
