"""Oversize bodies: an ACS POST over the 256 KiB cap is answered 413, announced by its
Content-Length (answered before the body is read) or sent in chunks without one (cut off
at the cap), and logged as `event=request_refused reason=body_too_large`. The control: a
valid Response with padding that keeps the body just under the cap, sent the same way, is
accepted."""
import base64
import http.client
import time
import urllib.parse

import pytest

from conftest import logfmt, record, start_login

CAP = 256 * 1024


def _send(gw, body, chunked):
    """POST body to the ACS: (status, Location). chunked: Transfer-Encoding chunked
    without a Content-Length; else a Content-Length and the body, as far as samlgw
    reads it."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
    try:
        conn.putrequest("POST", "/saml/acs")
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            for i in range(0, len(body), 16384):
                part = body[i:i + 16384]
                conn.send(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # samlgw answered (413) and closed before the whole body was sent
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Location")
    finally:
        conn.close()


def _body(fed, size):
    """A form body of exactly size bytes: a valid Response for a fresh request, then
    padding in another field."""
    rid, _ = start_login(fed.gw, fed.real.idp)
    b64 = base64.b64encode(fed.real.build(in_response_to=rid).xml).decode()
    body = b"SAMLResponse=" + urllib.parse.quote(b64, safe="").encode() + b"&pad="
    assert len(body) < size
    return body + b"x" * (size - len(body))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversize_body(fed, chunked):
    gw = fed.gw
    seen = len(gw.log_lines("request_refused"))
    status, _ = _send(gw, _body(fed, CAP + 1024), chunked)
    # Logged once the reply is sent (the request's completion): wait for it.
    deadline = time.monotonic() + 30
    while not gw.log_lines("request_refused")[seen:] and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = gw.log_lines("request_refused")[seen:]
    ctl, location = _send(gw, _body(fed, CAP - 64), chunked)
    f = logfmt(lines[0]) if lines else {}
    ok = status == 413 and len(lines) == 1 and f.get("reason") == "body_too_large" and \
        f.get("path") == "/saml/acs" and ctl == 303
    record("body of 257 KiB (%s)" % ("chunked" if chunked else "Content-Length"), "factory",
           "413, body_too_large", "%d, %s" % (status, f.get("reason", "no request_refused line")),
           "accepted" if ctl == 303 else str(ctl), ok, f.get("detail", ""))
    assert status == 413
    assert len(lines) == 1 and f["reason"] == "body_too_large" and f["path"] == "/saml/acs", \
        lines
    assert ctl == 303 and location == gw.url + "/", (ctl, location)
