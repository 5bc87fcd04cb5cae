"""SAML test toolkit for samlgw's pytest suites (tests/saml, tests/security, ...).

Three parts, standard library + python3-lxml + python3-cryptography + the xmlsec1 CLI:

* IdPProcess / running_idp(): start tests/idp/idp.py (the pysaml2 test IdP) as a subprocess on
  127.0.0.1 and always stop it.
* Browser: a small HTTP client with a cookie jar that follows redirects and submits HTML forms,
  so a test can walk "GET /login -> IdP -> log in -> POST to the ACS -> account page".
* ResponseFactory: builds SAML Responses directly (no browser) for negative tests, signed with
  the xmlsec1 CLI (exclusive C14N, enveloped signature, Reference to the element's ID) and
  optionally encrypted (XML Encryption done here with python3-cryptography), with knobs to alter
  any field before or after signing.

Import it from another test folder with:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "idp"))
    import samltest

Only loopback addresses are ever contacted: Browser refuses any other host.
"""
import atexit
import base64
import copy
import datetime as _dt
import html.parser
import http.cookiejar
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
IDP_PY = HERE / "idp.py"
PYTHON = "/usr/bin/python3"
XMLSEC1 = "/usr/bin/xmlsec1"

# The test IdP's built-in users (tests/idp/idp.py DEFAULT_USERS).
USERS = {"alice": "alice-pass", "bob": "bob-pass"}

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xs": "http://www.w3.org/2001/XMLSchema",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "shibmd": "urn:mace:shibboleth:metadata:1.0",
    "mdui": "urn:oasis:names:tc:SAML:metadata:ui",
}
SAMLP = "{%s}" % NS["samlp"]
SAML = "{%s}" % NS["saml"]
DS = "{%s}" % NS["ds"]
XENC = "{%s}" % NS["xenc"]

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
CM_HOLDER_OF_KEY = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
NAME_FORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
NAME_FORMAT_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
AC_PPT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"

C14N_EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIG_ALGS = {
    "rsa-sha1": "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "rsa-sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "rsa-sha384": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "rsa-sha512": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "rsa-md5": "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
}
DIGEST_ALGS = {
    "sha1": "http://www.w3.org/2000/09/xmldsig#sha1",
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha384": "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
    "md5": "http://www.w3.org/2001/04/xmldsig-more#md5",
}
XENC11 = "http://www.w3.org/2009/xmlenc11#"
XMLENC_DATA = {  # name -> (Algorithm URI, key bytes)
    "aes128-cbc": (NS["xenc"] + "aes128-cbc", 16), "aes192-cbc": (NS["xenc"] + "aes192-cbc", 24),
    "aes256-cbc": (NS["xenc"] + "aes256-cbc", 32), "aes128-gcm": (XENC11 + "aes128-gcm", 16),
    "aes192-gcm": (XENC11 + "aes192-gcm", 24), "aes256-gcm": (XENC11 + "aes256-gcm", 32),
}
XMLENC_KEY = {"rsa-oaep-mgf1p": NS["xenc"] + "rsa-oaep-mgf1p",
              "rsa-oaep": XENC11 + "rsa-oaep", "rsa-1_5": NS["xenc"] + "rsa-1_5"}
DATA_ENC_ALGS = {name: uri for name, (uri, _) in XMLENC_DATA.items()}
KEY_TRANSPORT_ALGS = XMLENC_KEY

# eduPerson & co: friendly name -> urn:oid / urn:oasis name.
ATTRIBUTE_OIDS = {
    "eduPersonPrincipalName": "urn:oid:1.3.6.1.4.1.5923.1.1.1.6",
    "eduPersonTargetedID": "urn:oid:1.3.6.1.4.1.5923.1.1.1.10",
    "eduPersonAffiliation": "urn:oid:1.3.6.1.4.1.5923.1.1.1.1",
    "eduPersonScopedAffiliation": "urn:oid:1.3.6.1.4.1.5923.1.1.1.9",
    "eduPersonEntitlement": "urn:oid:1.3.6.1.4.1.5923.1.1.1.7",
    "eduPersonUniqueId": "urn:oid:1.3.6.1.4.1.5923.1.1.1.13",
    "subject-id": "urn:oasis:names:tc:SAML:attribute:subject-id",
    "pairwise-id": "urn:oasis:names:tc:SAML:attribute:pairwise-id",
    "mail": "urn:oid:0.9.2342.19200300.100.1.3",
    "displayName": "urn:oid:2.16.840.1.113730.3.1.241",
    "givenName": "urn:oid:2.5.4.42",
    "sn": "urn:oid:2.5.4.4",
    "cn": "urn:oid:2.5.4.3",
    "uid": "urn:oid:0.9.2342.19200300.100.1.1",
}


def default_attributes(user="alice", scope="example.org"):
    """The attributes the test IdP releases for its built-in users (eduPersonTargetedID is
    a persistent NameID value; pairwise values are fixed strings here)."""
    given, sn, aff = {"alice": ("Alice", "Liddell", ["member", "student"]),
                      "bob": ("Bob", "Builder", ["member", "staff", "employee"])}.get(
        user, (user.capitalize(), "Test", ["member"]))
    pairwise = "pw" + secrets.token_hex(8) if user not in ("alice", "bob") else \
        {"alice": "alicepairwise0000000000000000000", "bob": "bobpairwise00000000000000000000"}[user]
    return {
        "eduPersonPrincipalName": ["%s@%s" % (user, scope)],
        "subject-id": ["%s@%s" % (user, scope)],
        "pairwise-id": ["%s@%s" % (pairwise, scope)],
        "eduPersonTargetedID": [{"nameid": pairwise}],
        "mail": ["%s@%s" % (user, scope)],
        "displayName": ["%s %s" % (given, sn)],
        "givenName": [given],
        "sn": [sn],
        "eduPersonAffiliation": list(aff),
        "eduPersonScopedAffiliation": ["%s@%s" % (a, scope) for a in aff],
        "eduPersonEntitlement": ["urn:mace:dir:entitlement:common-lib-terms"],
    }


# =========================================================================== keys


def make_keypair(directory, name="sp", cn=None, days=3650, bits=2048):
    """RSA key + self-signed certificate via the openssl CLI: returns (key_path, cert_path)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / ("%s-key.pem" % name), directory / ("%s-cert.pem" % name)
    if not (key.exists() and cert.exists()):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:%d" % bits, "-nodes",
                        "-sha256", "-days", str(days), "-subj", "/CN=%s" % (cn or name),
                        "-keyout", str(key), "-out", str(cert)],
                       check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return str(key), str(cert)


def cert_base64(cert_path):
    """The base64 body of a PEM certificate (what goes into ds:X509Certificate)."""
    text = Path(cert_path).read_text()
    lines = [l for l in text.splitlines() if l and "-----" not in l]
    return "".join(lines)


# =========================================================================== IdP process

_running = set()


def _stop_all():
    for p in list(_running):
        p.stop()


atexit.register(_stop_all)


class IdPProcess:
    """tests/idp/idp.py as a subprocess.

    >>> with IdPProcess(tmp / "idp", sp_metadata=[sp_md]) as idp:
    ...     idp.url, idp.entity_id, idp.metadata_path, idp.cert, idp.key
    """

    def __init__(self, statedir, sp_metadata=(), port=0, entity_id=None, scope=None,
                 users=None, args=(), env=None):
        self.statedir = Path(statedir)
        self.cmd = [PYTHON, str(IDP_PY), "--dir", str(self.statedir), "--port", str(port)]
        for m in ([sp_metadata] if isinstance(sp_metadata, (str, Path)) else sp_metadata):
            self.cmd += ["--sp-metadata", str(m)]
        if entity_id:
            self.cmd += ["--entity-id", entity_id]
        for s in ([scope] if isinstance(scope, str) else scope or []):
            self.cmd += ["--scope", s]
        if users is not None:
            if isinstance(users, dict):
                self.statedir.mkdir(parents=True, exist_ok=True)
                path = self.statedir / "users.json"
                path.write_text(json.dumps(users, indent=1))
                users = path
            self.cmd += ["--users", str(users)]
        self.cmd += [str(a) for a in args]
        self.env = env
        self.proc = None
        self.state = {}

    # The IdP's facts, valid once started.
    url = property(lambda self: self.state["url"])
    port = property(lambda self: self.state["port"])
    entity_id = property(lambda self: self.state["entity_id"])
    scope = property(lambda self: self.state["scope"])
    metadata_path = property(lambda self: self.state["metadata"])
    cert = property(lambda self: self.state["cert"])
    key = property(lambda self: self.state["key"])
    users = property(lambda self: self.state["users"])
    sso_url = property(lambda self: self.url + "/sso/redirect")
    log_path = property(lambda self: self.statedir / "idp.log")

    def start(self, timeout=30):
        assert self.proc is None, "already started"
        self.statedir.mkdir(parents=True, exist_ok=True)
        state_file = self.statedir / "idp.json"
        if state_file.exists():
            state_file.unlink()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=log, env=self.env,
                                         start_new_session=True)
        finally:
            log.close()
        _running.add(self)
        ready = {}

        def reader():
            for line in self.proc.stdout:
                if line.startswith(b"READY "):
                    ready["url"] = line.split()[1].decode()
            # keep draining until EOF so the child never blocks on a full pipe

        threading.Thread(target=reader, daemon=True).start()
        deadline = time.monotonic() + timeout
        while "url" not in ready:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.stop()
                raise RuntimeError("test IdP exited with %s before it was ready:\n%s"
                                   % (rc, self.log()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("test IdP not ready after %ss:\n%s" % (timeout, self.log()))
            time.sleep(0.05)
        self.state = json.loads(state_file.read_text())
        return self

    def stop(self, timeout=5):
        p, self.proc = self.proc, None
        _running.discard(self)
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        if p.stdout:
            p.stdout.close()

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def metadata_xml(self):
        return Path(self.metadata_path).read_bytes()

    def _get(self, path, data=None):
        req = urllib.request.Request(self.url + path, data=data)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def last_response(self):
        """The IdP's record of its last Response: user, sp, acs, in_response_to, name_id,
        name_id_format, session_index, relay_state, xml, SAMLResponse."""
        return json.loads(self._get("/debug/last"))

    def reload(self):
        """Make the IdP re-read its --sp-metadata sources now."""
        self._get("/reload", data=b"")

    def unsolicited_url(self, sp_entity_id, acs=None, relay_state=None):
        q = {"providerId": sp_entity_id}
        if acs:
            q["shire"] = acs
        if relay_state:
            q["target"] = relay_state
        return self.url + "/sso/unsolicited?" + urllib.parse.urlencode(q)

    def logout_url(self, binding="redirect", user=None):
        q = {"binding": binding}
        if user:
            q["user"] = user
        return self.url + "/logout?" + urllib.parse.urlencode(q)

    def factory(self, sp_entity_id, acs_url, **kw):
        """A ResponseFactory signing as this IdP."""
        return ResponseFactory(self.key, self.cert, self.entity_id, sp_entity_id, acs_url,
                               scope=self.scope, **kw)


class running_idp:
    """Context manager: `with running_idp(dir, sp_metadata=[...], args=[...]) as idp:`;
    the IdP is stopped on exit, whatever happened."""

    def __init__(self, statedir, **kw):
        self.p = IdPProcess(statedir, **kw)

    def __enter__(self):
        return self.p.start()

    def __exit__(self, *exc):
        self.p.stop()


# =========================================================================== browser


def _is_loopback(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Form:
    """One HTML form: action (absolute URL), method, and fields as a list of (name, value)
    pairs (the values a browser would submit without user input)."""

    def __init__(self, action, method, base):
        self.action = urllib.parse.urljoin(base, action or base)
        self.method = (method or "get").upper()
        self.fields = []
        self.types = {}     # name -> input type
        self.buttons = []   # (name, value) of named submit buttons

    def get(self, name, default=None):
        for k, v in self.fields:
            if k == name:
                return v
        return default

    def __contains__(self, name):
        return name in self.types

    @property
    def only_hidden(self):
        return all(t == "hidden" for t in self.types.values()) and bool(self.types)

    @property
    def has_password(self):
        return "password" in self.types.values()

    def values(self, **override):
        out = [(k, v) for k, v in self.fields if k not in override]
        out += [(k, v) for k, v in override.items() if v is not None]
        return out

    def __repr__(self):
        return "Form(%s %s %r)" % (self.method, self.action, self.fields)


class _FormParser(html.parser.HTMLParser):
    def __init__(self, base):
        super().__init__(convert_charrefs=True)
        self.base = base
        self.forms = []
        self.links = []
        self.cur = None
        self.select = None
        self.textarea = None
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.cur = Form(a.get("action"), a.get("method"), self.base)
            self.forms.append(self.cur)
        elif tag == "a" and "href" in a:
            self.links.append(urllib.parse.urljoin(self.base, a["href"]))
        elif tag == "title":
            self._in_title = True
        elif self.cur is None or "name" not in a and tag != "option":
            return
        elif tag == "input":
            t = a.get("type", "text").lower()
            if t in ("submit", "image", "button", "reset"):
                if t == "submit" and a.get("name"):
                    self.cur.buttons.append((a["name"], a.get("value", "")))
                return
            if t in ("checkbox", "radio") and "checked" not in a:
                self.cur.types.setdefault(a["name"], t)
                return
            self.cur.types[a["name"]] = t
            self.cur.fields.append((a["name"], a.get("value", "")))
        elif tag == "button":
            if a.get("type", "submit") == "submit" and a.get("name"):
                self.cur.buttons.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self.textarea = a["name"]
            self.cur.types[a["name"]] = "textarea"
            self.cur.fields.append((a["name"], ""))
        elif tag == "select":
            self.select = {"name": a["name"], "first": None, "chosen": None}
            self.cur.types[a["name"]] = "select"
        elif tag == "option" and self.select is not None:
            v = a.get("value", "")
            if self.select["first"] is None:
                self.select["first"] = v
            if "selected" in a:
                self.select["chosen"] = v

    def handle_endtag(self, tag):
        if tag == "form":
            self.cur = None
        elif tag == "select" and self.select is not None and self.cur is not None:
            v = self.select["chosen"] if self.select["chosen"] is not None else self.select["first"]
            if v is not None:
                self.cur.fields.append((self.select["name"], v))
            self.select = None
        elif tag == "textarea":
            self.textarea = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self.textarea and self.cur is not None:
            k, v = self.cur.fields[-1]
            self.cur.fields[-1] = (k, v + data)
        if self._in_title:
            self.title += data


class Page:
    """One HTTP response: url, status, headers, body (bytes), text, forms, links, title;
    `hops` lists every (method, url, status) taken to get here."""

    def __init__(self, url, status, headers, body, method="GET", hops=None):
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body
        self.method = method
        self.hops = hops or []
        self._parsed = None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def _parse(self):
        if self._parsed is None:
            p = _FormParser(self.url)
            ctype = self.headers.get("Content-Type", "") if self.headers else ""
            if "html" in ctype or not ctype:
                try:
                    p.feed(self.text)
                    p.close()
                except Exception:
                    pass
            self._parsed = p
        return self._parsed

    @property
    def forms(self):
        return self._parse().forms

    @property
    def links(self):
        return self._parse().links

    @property
    def title(self):
        return self._parse().title.strip()

    def form(self, match=None):
        """The first form whose action contains `match`, or that has a field named `match`
        (any form when match is None); None if there is none."""
        for f in self.forms:
            if match is None or match in f.action or match in f:
                return f
        return None

    @property
    def location(self):
        return self.headers.get("Location") if self.headers else None

    def __repr__(self):
        return "Page(%s %s -> %s)" % (self.method, self.url, self.status)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A cookie-keeping HTTP client for loopback servers.

    get/post follow redirects (303/302/301 become GET, 307/308 keep the method) unless
    follow=False.  flow() also submits auto-POST forms (forms with only hidden inputs, as SAML
    bindings produce) and fills the IdP's login form once for `user`.
    """

    def __init__(self, timeout=15, max_hops=25, headers=None):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)
        self.timeout = timeout
        self.max_hops = max_hops
        self.headers = dict(headers or {})
        self.history = []

    def request(self, method, url, data=None, headers=None):
        """One request, no redirect following; returns a Page (any status)."""
        if not _is_loopback(url):
            raise ValueError("Browser only talks to loopback addresses, not %s" % url)
        body = None
        h = dict(self.headers)
        h.update(headers or {})
        if data is not None:
            if isinstance(data, (dict, list, tuple)):
                body = urllib.parse.urlencode(data).encode()
                h.setdefault("Content-Type", "application/x-www-form-urlencoded")
            else:
                body = data if isinstance(data, bytes) else data.encode()
        req = urllib.request.Request(url, data=body, method=method, headers=h)
        try:
            r = self.opener.open(req, timeout=self.timeout)
            page = Page(url, r.status, r.headers, r.read(), method)
            r.close()
        except urllib.error.HTTPError as e:
            page = Page(url, e.code, e.headers, e.read() if e.fp else b"", method)
            e.close()
        self.history.append(page)
        return page

    def _follow(self, page, follow):
        hops = [(page.method, page.url, page.status)]
        n = 0
        while follow and page.status in (301, 302, 303, 307, 308) and page.location:
            n += 1
            if n > self.max_hops:
                raise RuntimeError("too many redirects: %r" % hops)
            url = urllib.parse.urljoin(page.url, page.location)
            page = self.request("GET", url)
            hops.append((page.method, page.url, page.status))
        page.hops = hops
        return page

    def get(self, url, params=None, follow=True, headers=None):
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        return self._follow(self.request("GET", url, headers=headers), follow)

    def post(self, url, data, follow=True, headers=None):
        return self._follow(self.request("POST", url, data=data, headers=headers), follow)

    def submit(self, form, follow=True, **fields):
        """Submit a Form (from page.form()) with some fields overridden."""
        values = form.values(**fields)
        if form.method == "POST":
            return self.post(form.action, values, follow=follow)
        url = form.action.split("#")[0]
        url = url.split("?")[0] + "?" + urllib.parse.urlencode(values)
        return self.get(url, follow=follow)

    @staticmethod
    def is_saml_form(form):
        """The default auto-submit rule: a form carrying a SAML message (HTTP-POST binding)."""
        return "SAMLResponse" in form or "SAMLRequest" in form

    def flow(self, url, user=None, password=None, stop=None, max_steps=12, data=None,
             autosubmit=None):
        """Walk a login: GET (or POST `data` to) url, follow redirects, auto-submit SAML
        HTTP-POST forms (or the forms `autosubmit(form)` accepts), and fill the first password
        form with user/password (once; the password defaults to the built-in user's).
        `stop(page)` returning True ends the walk early (e.g. at the auto-POST page to the
        ACS, to capture the SAMLResponse).  Returns the last Page; `.steps` on it lists the
        pages of the walk, and each page's `.hops` its redirects."""
        if user is not None and password is None:
            password = USERS.get(user)
        autosubmit = autosubmit or self.is_saml_form
        page = self.get(url) if data is None else self.post(url, data)
        steps = [page]
        logged_in = False
        for _ in range(max_steps):
            if stop is not None and stop(page):
                break
            form = next((f for f in page.forms if autosubmit(f)), None)
            pw_form = next((f for f in page.forms if f.has_password), None)
            if form is not None and page.status < 400:
                page = self.submit(form)
            elif user is not None and not logged_in and pw_form is not None:
                user_field = next((k for k, t in pw_form.types.items()
                                   if t in ("text", "email") or k in ("username", "j_username")),
                                  "username")
                pw_field = next(k for k, t in pw_form.types.items() if t == "password")
                page = self.submit(pw_form, **{user_field: user, pw_field: password})
                logged_in = True
            else:
                break
            steps.append(page)
        page.steps = steps
        return page

    def start_sso(self, url):
        """GET url (e.g. samlgw's /login) without following redirects and decode the
        HTTP-Redirect AuthnRequest it sends the browser to: returns a dict with id, xml
        (bytes), relay_state, location (the IdP URL), query (dict) and page."""
        page = self.get(url, follow=False)
        if page.status not in (301, 302, 303, 307) or not page.location:
            raise AssertionError("%s did not redirect to an IdP: %s %s"
                                 % (url, page.status, page.text[:500]))
        location = urllib.parse.urljoin(url, page.location)
        xml, q = decode_redirect_message(location)
        return {"id": parse(xml).get("ID"), "xml": xml, "relay_state": q.get("RelayState"),
                "location": location, "query": q, "page": page}

    def cookie(self, name):
        for c in self.jar:
            if c.name == name:
                return c.value
        return None

    def clear_cookies(self):
        self.jar.clear()


def saml_post_of(page):
    """The (action, {SAMLResponse|SAMLRequest, RelayState}) of a SAML HTTP-POST form page."""
    for f in page.forms:
        if "SAMLResponse" in f or "SAMLRequest" in f:
            return f.action, dict(f.fields)
    return None, None


def decode_redirect_message(url):
    """The XML (bytes) carried by an HTTP-Redirect binding URL (SAMLRequest or SAMLResponse),
    plus the decoded query dict."""
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))
    msg = q.get("SAMLRequest") or q.get("SAMLResponse")
    return zlib.decompress(base64.b64decode(msg), -15), q


# =========================================================================== XML helpers


def _now():
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)


def saml_time(t):
    """A SAML dateTime: int/float are seconds relative to now, datetimes are converted,
    strings are used verbatim (so malformed values can be tested)."""
    if isinstance(t, str):
        return t
    if isinstance(t, (int, float)):
        t = _now() + _dt.timedelta(seconds=t)
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id():
    return "_" + secrets.token_hex(20)


def parse(xml):
    """lxml tree of a document (bytes/str), keeping DTDs unresolved and entities unexpanded."""
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_blank_text=False)
    return etree.fromstring(xml, parser)


def tostring(root):
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def find(root, path):
    """root.find with the NS prefixes above, e.g. find(r, "saml:Assertion/saml:Subject")."""
    return root.find(path, NS)


def findall(root, path):
    return root.findall(path, NS)


def _el(parent, tag, text=None, **attrs):
    e = etree.SubElement(parent, tag) if parent is not None else etree.Element(tag, nsmap={
        "samlp": NS["samlp"], "saml": NS["saml"]})
    for k, v in attrs.items():
        if v is not None:
            e.set(k, str(v))
    if text is not None:
        e.text = text
    return e


def _run(cmd, input_bytes=None):
    r = subprocess.run(cmd, input=input_bytes, capture_output=True)
    return r.returncode, r.stdout, r.stderr


# =========================================================================== signing


def signature_template(ref_id, cert_b64, sig_alg="rsa-sha256", digest_alg="sha256",
                       c14n=C14N_EXC, transforms=None):
    """An empty ds:Signature (xmlsec1 fills DigestValue and SignatureValue)."""
    sig = etree.Element(DS + "Signature", nsmap={"ds": NS["ds"]})
    si = etree.SubElement(sig, DS + "SignedInfo")
    etree.SubElement(si, DS + "CanonicalizationMethod").set("Algorithm", c14n)
    etree.SubElement(si, DS + "SignatureMethod").set("Algorithm", SIG_ALGS.get(sig_alg, sig_alg))
    ref = etree.SubElement(si, DS + "Reference")
    ref.set("URI", "#" + ref_id if ref_id is not None else "")
    tr = etree.SubElement(ref, DS + "Transforms")
    for t in (transforms or [ENVELOPED, C14N_EXC]):
        etree.SubElement(tr, DS + "Transform").set("Algorithm", t)
    etree.SubElement(ref, DS + "DigestMethod").set("Algorithm",
                                                   DIGEST_ALGS.get(digest_alg, digest_alg))
    etree.SubElement(ref, DS + "DigestValue")
    etree.SubElement(sig, DS + "SignatureValue")
    if cert_b64:
        ki = etree.SubElement(sig, DS + "KeyInfo")
        xd = etree.SubElement(ki, DS + "X509Data")
        etree.SubElement(xd, DS + "X509Certificate").text = cert_b64
    return sig


def insert_signature(element, sig):
    """Place a ds:Signature where SAML's schema wants it: right after the element's Issuer
    (protocol messages, assertions), else first (metadata)."""
    issuer = element.find(SAML + "Issuer")
    if issuer is not None:
        issuer.addnext(sig)
    else:
        element.insert(0, sig)


def sign_metadata(xml, key, cert, sig_alg="rsa-sha256", digest_alg="sha256"):
    """Sign a metadata document (EntitiesDescriptor or EntityDescriptor; an ID is added when
    missing) as a federation operator would; returns the signed bytes."""
    root = parse(xml) if not isinstance(xml, etree._Element) else xml
    if not root.get("ID"):
        root.set("ID", new_id())
    return tostring(sign_element(root, root, key, cert, sig_alg, digest_alg))


# Elements whose ID attribute xmlsec1 may resolve a Reference URI="#..." to.
ID_ATTRS = [
    "urn:oasis:names:tc:SAML:2.0:protocol:Response",
    "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
    "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest",
    "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest",
    "urn:oasis:names:tc:SAML:2.0:protocol:LogoutResponse",
    "urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor",
    "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
]


def _id_attr_args():
    out = []
    for n in ID_ATTRS:
        out += ["--id-attr:ID", n]
    return out


def xmlsec_sign(xml, key, cert, node_id):
    """Sign the ds:Signature template inside the element whose ID is node_id (xmlsec1 CLI)."""
    with tempfile.NamedTemporaryFile(suffix=".xml") as f:
        f.write(xml)
        f.flush()
        rc, out, err = _run([XMLSEC1, "--sign", "--privkey-pem", "%s,%s" % (key, cert)]
                            + _id_attr_args() + ["--node-id", node_id, f.name])
    if rc != 0:
        raise RuntimeError("xmlsec1 --sign failed: %s" % err.decode(errors="replace"))
    return out


def sign_element(doc_root, element, key, cert, sig_alg="rsa-sha256", digest_alg="sha256",
                 cert_in_keyinfo=True):
    """Sign `element` (an Assertion or Response inside doc_root) in place; returns the new
    document root (xmlsec1 round-trips the whole document)."""
    eid = element.get("ID")
    sig = signature_template(eid, cert_base64(cert) if cert_in_keyinfo else None,
                             sig_alg, digest_alg)
    insert_signature(element, sig)
    return parse(xmlsec_sign(tostring(doc_root), key, cert, eid))


def verify(xml, cert, node_id=None, node="Response"):
    """Verify with xmlsec1 the signature inside the element whose ID is node_id (default: the
    document root's ID), trusting only `cert`.  Returns (ok, xmlsec1 stderr)."""
    root = parse(xml) if not isinstance(xml, etree._Element) else xml
    if node_id is None:
        node_id = root.get("ID")
    data = tostring(root) if isinstance(xml, etree._Element) else \
        (xml.encode() if isinstance(xml, str) else xml)
    with tempfile.NamedTemporaryFile(suffix=".xml") as f:
        f.write(data)
        f.flush()
        rc, out, err = _run([XMLSEC1, "--verify", "--enabled-reference-uris", "same-doc",
                             "--enabled-key-data", "raw-x509-cert",
                             "--pubkey-cert-pem", str(cert)]
                            + _id_attr_args() + ["--node-id", node_id, f.name])
    return rc == 0, err.decode(errors="replace")


# =========================================================================== encryption


def encrypt_element(element, cert_path, data_alg="aes128-cbc", key_alg="rsa-oaep-mgf1p",
                    key_info_cert=True, corrupt=False):
    """XML-encrypt `element` (serialised with its in-scope namespaces) to the RSA key in
    cert_path; returns a new xenc:EncryptedData element (Type=Element).  `corrupt=True`
    flips a byte of the ciphertext, giving an undecryptable but well-formed EncryptedData."""
    uri, klen = XMLENC_DATA.get(data_alg, (data_alg, 16))
    sym = secrets.token_bytes(klen)
    cipher = xmlenc_cipher(data_alg, sym, etree.tostring(element))
    if corrupt:
        b = bytearray(cipher)
        b[len(b) // 2] ^= 0xFF
        cipher = bytes(b)
    ed = etree.Element(XENC + "EncryptedData", nsmap={"xenc": NS["xenc"], "ds": NS["ds"]})
    ed.set("Type", "http://www.w3.org/2001/04/xmlenc#Element")
    ed.set("Id", "_" + secrets.token_hex(12))
    etree.SubElement(ed, XENC + "EncryptionMethod").set("Algorithm", uri)
    ki = etree.SubElement(ed, DS + "KeyInfo")
    ki.append(xmlenc_key(cert_path, sym, key_alg, key_info_cert=key_info_cert))
    cd = etree.SubElement(ed, XENC + "CipherData")
    etree.SubElement(cd, XENC + "CipherValue").text = base64.b64encode(cipher).decode()
    return ed


def xmlenc_pkcs7(data, block=16):
    """XML Encryption padding: random bytes, the last one their count."""
    n = block - len(data) % block
    return data + secrets.token_bytes(n - 1) + bytes([n])


def xmlenc_cipher(data_alg, key, plain, pad=xmlenc_pkcs7):
    """IV + ciphertext (+ tag) of plain under key: AES-GCM when data_alg ends in "gcm", else
    AES-CBC with pad."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if data_alg.endswith("gcm"):
        iv = secrets.token_bytes(12)
        return iv + AESGCM(key).encrypt(iv, plain, None)
    iv = secrets.token_bytes(16)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + enc.update(pad(plain)) + enc.finalize()


def xmlenc_key(cert_path, sym, key_alg="rsa-oaep-mgf1p", digest=None, digest_element=True,
               label=None, key_id=None, tamper=None, key_info_cert=False):
    """An xenc:EncryptedKey holding `sym` for the RSA key of cert_path. digest: OAEP digest
    name for the DigestMethod (None: SHA-1, and no element when digest_element is False);
    label: OAEPparams bytes; tamper(bytes) -> bytes alters the RSA ciphertext;
    key_info_cert: a ds:KeyInfo with the certificate, as IdPs add."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    pub = x509.load_pem_x509_certificate(Path(cert_path).read_bytes()).public_key()
    hashes_ = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha512": hashes.SHA512}
    if key_alg == "rsa-1_5":
        ek = pub.encrypt(sym, padding.PKCS1v15())
    else:
        h = hashes_[digest or "sha1"]
        ek = pub.encrypt(sym, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=h(),
                                           label=label))
    if tamper:
        ek = tamper(ek)
    eke = etree.Element(XENC + "EncryptedKey", nsmap={"xenc": NS["xenc"], "ds": NS["ds"]})
    if key_id:
        eke.set("Id", key_id)
    m = etree.SubElement(eke, XENC + "EncryptionMethod")
    m.set("Algorithm", XMLENC_KEY.get(key_alg, key_alg))
    if key_alg != "rsa-1_5":
        if label is not None:
            etree.SubElement(m, XENC + "OAEPparams").text = base64.b64encode(label).decode()
        if digest_element or digest:
            etree.SubElement(m, DS + "DigestMethod").set("Algorithm",
                                                         DIGEST_ALGS[digest or "sha1"])
    if key_info_cert:
        xd = etree.SubElement(etree.SubElement(eke, DS + "KeyInfo"), DS + "X509Data")
        etree.SubElement(xd, DS + "X509Certificate").text = cert_base64(cert_path)
    cd = etree.SubElement(eke, XENC + "CipherData")
    etree.SubElement(cd, XENC + "CipherValue").text = base64.b64encode(ek).decode()
    return eke


def xmlenc_assertion(root, cert_path, data_alg="aes128-cbc", place="keyinfo", keys=None,
                     plain=None, sym=None, pad=xmlenc_pkcs7, tamper=None, cipher_text=None,
                     data_type=NS["xenc"] + "Element", wrap=76, **key_kw):
    """Replace root's saml:Assertion (already signed) by a saml:EncryptedAssertion built by
    hand, for after_sign hooks that need odd or broken XML Encryption:

      data_alg    aes128/192/256-cbc or -gcm (or any Algorithm URI, encrypted as AES-128-CBC)
      place       "keyinfo": EncryptedKeys in the EncryptedData's KeyInfo; "retrieval": next
                  to the EncryptedData, named by ds:RetrievalMethod; "elsewhere": the
                  RetrievalMethod names an EncryptedKey put at the end of the Response
      keys        certificates to make an EncryptedKey for, in order (default [cert_path])
      plain       the plaintext bytes (default: the serialised Assertion)
      sym         the AES key put in the EncryptedKeys (default random of the right size;
                  the data is encrypted with a random key of the right size if it is not)
      pad         CBC padding function; tamper(bytes) alters IV + ciphertext (+ tag);
                  cipher_text replaces the CipherValue text
      data_type   the EncryptedData's Type (None: absent); wrap: base64 line length (0: one
                  line); other keywords go to xmlenc_key (key_alg, digest, label, tamper...)
    """
    a = root.find(SAML + "Assertion")
    if plain is None:
        plain = etree.tostring(a)
    uri, klen = XMLENC_DATA.get(data_alg, (data_alg, 16))
    if sym is None:
        sym = secrets.token_bytes(klen)
    data_key = sym if len(sym) == klen else secrets.token_bytes(klen)
    cipher = xmlenc_cipher(data_alg, data_key, plain, pad)
    if tamper:
        cipher = tamper(cipher)
    ea = etree.Element(SAML + "EncryptedAssertion")
    ed = etree.SubElement(ea, XENC + "EncryptedData", nsmap={"xenc": NS["xenc"], "ds": NS["ds"]})
    if data_type is not None:
        ed.set("Type", data_type)
    ed.set("Id", "_" + secrets.token_hex(12))
    etree.SubElement(ed, XENC + "EncryptionMethod").set("Algorithm", uri)
    ki = etree.SubElement(ed, DS + "KeyInfo")
    made = [xmlenc_key(c, sym, key_id="_k" + secrets.token_hex(8), **key_kw)
            for c in (keys or [cert_path])]
    for k in made:
        if place == "keyinfo":
            ki.append(k)
            continue
        rm = etree.SubElement(ki, DS + "RetrievalMethod")
        rm.set("Type", NS["xenc"] + "EncryptedKey")
        rm.set("URI", "#" + k.get("Id"))
        (ea if place == "retrieval" else root).append(k)
    cd = etree.SubElement(ed, XENC + "CipherData")
    text = base64.b64encode(cipher).decode() if cipher_text is None else cipher_text
    if wrap:
        text = "\n".join(text[i:i + wrap] for i in range(0, len(text), wrap))
    etree.SubElement(cd, XENC + "CipherValue").text = text
    a.addprevious(ea)
    root.remove(a)
    return root


def decrypt_assertion(xml, key_path):
    """The first EncryptedAssertion of a Response, decrypted with the SP key (Python
    implementation of what encrypt_element does); returns the Assertion element."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    root = parse(xml) if not isinstance(xml, etree._Element) else xml
    ed = root.find("saml:EncryptedAssertion/xenc:EncryptedData", NS)
    alg = ed.find("xenc:EncryptionMethod", NS).get("Algorithm")
    eke = ed.find(".//xenc:EncryptedKey", NS)
    kalg = eke.find("xenc:EncryptionMethod", NS).get("Algorithm")
    priv = serialization.load_pem_private_key(Path(key_path).read_bytes(), None)
    ek = base64.b64decode(eke.find("xenc:CipherData/xenc:CipherValue", NS).text)
    if kalg == KEY_TRANSPORT_ALGS["rsa-1_5"]:
        sym = priv.decrypt(ek, padding.PKCS1v15())
    else:
        sym = priv.decrypt(ek, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                            algorithm=hashes.SHA1(), label=None))
    data = base64.b64decode(ed.find("xenc:CipherData/xenc:CipherValue", NS).text)
    if alg.endswith("gcm"):
        plain = AESGCM(sym).decrypt(data[:12], data[12:], None)
    elif alg.endswith("tripledes-cbc"):
        dec = Cipher(algorithms.TripleDES(sym), modes.CBC(data[:8])).decryptor()
        plain = dec.update(data[8:]) + dec.finalize()
        plain = plain[:-plain[-1]]
    else:
        dec = Cipher(algorithms.AES(sym), modes.CBC(data[:16])).decryptor()
        plain = dec.update(data[16:]) + dec.finalize()
        plain = plain[:-plain[-1]]
    return parse(plain)


# =========================================================================== responses


class Built:
    """A built Response: xml (bytes), root (lxml, re-parsed from xml), b64 (SAMLResponse),
    relay_state, form (dict ready to POST), and the IDs used."""

    def __init__(self, xml, relay_state, response_id, assertion_ids):
        self.xml = xml
        self.relay_state = relay_state
        self.response_id = response_id
        self.assertion_ids = assertion_ids
        self.b64 = base64.b64encode(xml).decode("ascii")

    @property
    def assertion_id(self):
        return self.assertion_ids[0] if self.assertion_ids else None

    @property
    def root(self):
        return parse(self.xml)

    @property
    def text(self):
        return self.xml.decode("utf-8")

    @property
    def form(self):
        f = {"SAMLResponse": self.b64}
        if self.relay_state is not None:
            f["RelayState"] = self.relay_state
        return f

    def post(self, browser, url, follow=True):
        """POST this response to url (the ACS) with the given Browser."""
        return browser.post(url, self.form, follow=follow)


class ResponseFactory:
    """Builds SAML 2.0 Responses as the IdP (key, cert, entity_id) for one SP.

    factory = ResponseFactory(idp_key, idp_cert, idp_entity_id, sp_entity_id, acs_url,
                              sp_enc_cert=..., scope="example.org")
    r = factory.build(in_response_to="_abc", sign="both")          # valid, signed twice
    browser.post(acs_url, r.form)

    build() knobs (all optional; see README.md for the whole list):
      user, scope, in_response_to, relay_state
      sign: "response" | "assertion" | "both" | "none";  sig_alg, digest_alg
      signing_key=(key, cert): sign with another key;  cert_in_keyinfo
      encrypt (bool), enc_cert, data_alg, key_alg, corrupt_encryption
      status, status_message, sub_status
      issuer, assertion_issuer (None omits), issuer_format
      destination (None omits), version, issue_instant, response_id, assertion_id
      name_id, name_id_format, name_qualifier, sp_name_qualifier
      recipient, subject_not_on_or_after, subject_not_before, subject_in_response_to,
      confirmation_method, subject_address
      conditions (False omits), not_before, not_on_or_after, audience (str|list|None),
      extra_condition (True, or an lxml element / XML string), one_time_use
      authn_statement (False omits), authn_instant, session_index,
      session_not_on_or_after, authn_context
      attributes (dict: full set), attrs (dict merged into the defaults; None removes a name),
      attribute_names: "oid" | "friendly" | "oid-no-friendly"; attribute_statement (False omits)
      second_assertion: dict of knobs for a second Assertion (signed like the first unless it
      holds sign_assertion=False); second_first (bool)
      before_sign(root), after_sign(root): callables that alter the lxml tree (after_sign may
      return a new root or bytes)
      doctype (True, or a DOCTYPE string), added after signing
    """

    def __init__(self, idp_key, idp_cert, idp_entity_id, sp_entity_id, acs_url,
                 sp_enc_cert=None, scope="example.org"):
        self.key = str(idp_key)
        self.cert = str(idp_cert)
        self.idp = idp_entity_id
        self.sp = sp_entity_id
        self.acs = acs_url
        self.enc_cert = sp_enc_cert
        self.scope = scope

    KNOBS = {
        "user", "scope", "in_response_to", "relay_state", "sign", "sig_alg", "digest_alg",
        "signing_key", "cert_in_keyinfo", "encrypt", "enc_cert", "data_alg", "key_alg",
        "corrupt_encryption", "status", "status_message", "sub_status", "issuer",
        "assertion_issuer", "issuer_format", "destination", "version", "issue_instant",
        "response_id", "assertion_id", "name_id", "name_id_format", "name_qualifier",
        "sp_name_qualifier", "recipient", "subject_not_on_or_after", "subject_not_before",
        "subject_in_response_to", "confirmation_method", "subject_address", "conditions",
        "not_before", "not_on_or_after", "audience", "extra_condition", "one_time_use",
        "authn_statement", "authn_instant", "session_index", "session_not_on_or_after",
        "authn_context", "attributes", "attrs", "attribute_names", "attribute_statement",
        "second_assertion", "second_first", "before_sign", "after_sign", "doctype",
        "sign_assertion", "assertion", "subject_confirmation",
    }

    _UNSET = object()

    def _opts(self, kw):
        bad = set(kw) - self.KNOBS
        if bad:
            raise TypeError("unknown ResponseFactory knob(s): %s" % ", ".join(sorted(bad)))
        o = {
            "user": "alice", "scope": self.scope, "in_response_to": None, "relay_state": None,
            "sign": "both", "sig_alg": "rsa-sha256", "digest_alg": "sha256",
            "signing_key": None, "cert_in_keyinfo": True,
            "encrypt": False, "enc_cert": self.enc_cert, "data_alg": "aes128-cbc",
            "key_alg": "rsa-oaep-mgf1p", "corrupt_encryption": False,
            "status": STATUS_SUCCESS, "status_message": None, "sub_status": None,
            "issuer": self.idp, "assertion_issuer": self._UNSET, "issuer_format": None,
            "destination": self.acs, "version": "2.0", "issue_instant": 0,
            "response_id": None, "assertion_id": None,
            "name_id": None, "name_id_format": NAMEID_TRANSIENT, "name_qualifier": self.idp,
            "sp_name_qualifier": self.sp,
            "recipient": self.acs, "subject_not_on_or_after": 300, "subject_not_before": None,
            "subject_in_response_to": self._UNSET, "confirmation_method": CM_BEARER,
            "subject_address": None, "subject_confirmation": True,
            "conditions": True, "not_before": 0, "not_on_or_after": 300,
            "audience": self.sp, "extra_condition": None, "one_time_use": False,
            "authn_statement": True, "authn_instant": 0, "session_index": None,
            "session_not_on_or_after": None, "authn_context": AC_PPT,
            "attributes": None, "attrs": None, "attribute_names": "oid",
            "attribute_statement": True, "second_assertion": None, "second_first": False,
            "before_sign": None, "after_sign": None, "doctype": None,
            "sign_assertion": None, "assertion": True,
        }
        o.update(kw)
        if o["assertion_issuer"] is self._UNSET:
            o["assertion_issuer"] = o["issuer"]
        if o["subject_in_response_to"] is self._UNSET:
            o["subject_in_response_to"] = o["in_response_to"]
        if o["name_id"] is None:
            o["name_id"] = "_" + secrets.token_hex(16)
        if o["session_index"] is None:
            o["session_index"] = "_" + secrets.token_hex(12)
        return o

    # ------------------------------------------------------------------ pieces

    def _attribute_values(self, o):
        attrs = o["attributes"]
        if attrs is None:
            attrs = default_attributes(o["user"], o["scope"])
        attrs = dict(attrs)
        for k, v in (o["attrs"] or {}).items():
            if v is None:
                attrs.pop(k, None)
            else:
                attrs[k] = v if isinstance(v, (list, tuple)) else [v]
        return attrs

    def _assertion(self, o):
        a = etree.Element(SAML + "Assertion", nsmap={"saml": NS["saml"], "xs": NS["xs"],
                                                       "xsi": NS["xsi"]})
        aid = o["assertion_id"] or new_id()
        a.set("ID", aid)
        a.set("Version", o["version"])
        a.set("IssueInstant", saml_time(o["issue_instant"]))
        if o["assertion_issuer"] is not None:
            _el(a, SAML + "Issuer", o["assertion_issuer"], Format=o["issuer_format"])
        subj = _el(a, SAML + "Subject")
        if o["name_id"] is not False:
            _el(subj, SAML + "NameID", o["name_id"], Format=o["name_id_format"],
                NameQualifier=o["name_qualifier"], SPNameQualifier=o["sp_name_qualifier"])
        if o["subject_confirmation"]:
            sc = _el(subj, SAML + "SubjectConfirmation", Method=o["confirmation_method"])
            scd = _el(sc, SAML + "SubjectConfirmationData",
                      NotBefore=None if o["subject_not_before"] is None
                      else saml_time(o["subject_not_before"]),
                      NotOnOrAfter=None if o["subject_not_on_or_after"] is None
                      else saml_time(o["subject_not_on_or_after"]),
                      Recipient=o["recipient"], InResponseTo=o["subject_in_response_to"],
                      Address=o["subject_address"])
            del scd  # noqa
        if o["conditions"]:
            c = _el(a, SAML + "Conditions",
                    NotBefore=None if o["not_before"] is None else saml_time(o["not_before"]),
                    NotOnOrAfter=None if o["not_on_or_after"] is None
                    else saml_time(o["not_on_or_after"]))
            aud = o["audience"]
            if aud is not None:
                ar = _el(c, SAML + "AudienceRestriction")
                for x in ([aud] if isinstance(aud, str) else aud):
                    _el(ar, SAML + "Audience", x)
            if o["one_time_use"]:
                _el(c, SAML + "OneTimeUse")
            ec = o["extra_condition"]
            if ec is True:
                e = etree.SubElement(c, SAML + "Condition",
                                     nsmap={"unk": "urn:example:unknown-condition"})
                e.set("{%s}type" % NS["xsi"], "unk:UnknownConditionType")
            elif isinstance(ec, (str, bytes)):
                c.append(etree.fromstring(ec))
            elif ec is not None:
                c.append(ec)
        if o["authn_statement"]:
            st = _el(a, SAML + "AuthnStatement", AuthnInstant=saml_time(o["authn_instant"]),
                     SessionIndex=o["session_index"],
                     SessionNotOnOrAfter=None if o["session_not_on_or_after"] is None
                     else saml_time(o["session_not_on_or_after"]))
            ac = _el(st, SAML + "AuthnContext")
            _el(ac, SAML + "AuthnContextClassRef", o["authn_context"])
        if o["attribute_statement"]:
            attrs = self._attribute_values(o)
            if attrs:
                ats = _el(a, SAML + "AttributeStatement")
                for name, values in attrs.items():
                    self._attribute(ats, name, values, o)
        return a

    def _attribute(self, parent, name, values, o):
        mode = o["attribute_names"]
        oid = ATTRIBUTE_OIDS.get(name)
        if mode == "friendly" or oid is None:
            at = _el(parent, SAML + "Attribute", Name=name,
                     NameFormat=NAME_FORMAT_BASIC if oid is not None or ":" not in name
                     else NAME_FORMAT_URI)
        else:
            at = _el(parent, SAML + "Attribute", Name=oid, NameFormat=NAME_FORMAT_URI,
                     FriendlyName=name if mode == "oid" else None)
        for v in ([values] if isinstance(values, (str, dict)) else values):
            av = _el(at, SAML + "AttributeValue")
            if isinstance(v, dict) and "nameid" in v:
                _el(av, SAML + "NameID", v["nameid"], Format=v.get("format", NAMEID_PERSISTENT),
                    NameQualifier=v.get("name_qualifier", self.idp),
                    SPNameQualifier=v.get("sp_name_qualifier", self.sp))
            elif isinstance(v, etree._Element):
                av.append(v)
            else:
                av.set("{%s}type" % NS["xsi"], "xs:string")
                av.text = v

    # ------------------------------------------------------------------ build

    def build(self, **kw):
        """A Built response; see the class docstring for the knobs."""
        o = self._opts(kw)
        key, cert = o["signing_key"] or (self.key, self.cert)
        sign = o["sign"]
        sign_assertion = sign in ("assertion", "both") if o["sign_assertion"] is None \
            else o["sign_assertion"]
        sign_response = sign in ("response", "both")

        root = etree.Element(SAMLP + "Response", nsmap={"samlp": NS["samlp"],
                                                        "saml": NS["saml"]})
        rid = o["response_id"] or new_id()
        root.set("ID", rid)
        root.set("Version", o["version"])
        root.set("IssueInstant", saml_time(o["issue_instant"]))
        if o["destination"] is not None:
            root.set("Destination", o["destination"])
        if o["in_response_to"] is not None:
            root.set("InResponseTo", o["in_response_to"])
        if o["issuer"] is not None:
            _el(root, SAML + "Issuer", o["issuer"], Format=o["issuer_format"])
        st = _el(root, SAMLP + "Status")
        sc = _el(st, SAMLP + "StatusCode", Value=o["status"])
        if o["sub_status"]:
            _el(sc, SAMLP + "StatusCode", Value=o["sub_status"])
        if o["status_message"]:
            _el(st, SAMLP + "StatusMessage", o["status_message"])

        assertions = []
        if o["assertion"]:
            assertions.append((self._assertion(o), sign_assertion))
        if o["second_assertion"] is not None:
            o2 = self._opts(dict({k: v for k, v in kw.items()
                                  if k not in ("assertion_id", "second_assertion",
                                               "before_sign", "after_sign")},
                                 **o["second_assertion"]))
            s2 = o2["sign_assertion"] if "sign_assertion" in o["second_assertion"] \
                else sign_assertion
            second = (self._assertion(o2), s2)
            if o["second_first"]:
                assertions.insert(0, second)
            else:
                assertions.append(second)
        for a, _ in assertions:
            root.append(a)
        if o["before_sign"]:
            r = o["before_sign"](root)
            if r is not None:
                root = r

        # Sign assertions (innermost first), then encrypt, then sign the Response.
        aids = []
        for i, (_, signed) in enumerate(assertions):
            a = root.findall(SAML + "Assertion")[i]
            aids.append(a.get("ID"))
            if signed:
                root = sign_element(root, a, key, cert, o["sig_alg"], o["digest_alg"],
                                    o["cert_in_keyinfo"])
        if o["encrypt"]:
            enc_cert = o["enc_cert"]
            if not enc_cert:
                raise ValueError("encrypt=True needs the SP's encryption cert (sp_enc_cert)")
            for a in root.findall(SAML + "Assertion"):
                ed = encrypt_element(a, enc_cert, o["data_alg"], o["key_alg"],
                                     corrupt=o["corrupt_encryption"])
                ea = etree.Element(SAML + "EncryptedAssertion")
                ea.append(ed)
                a.addprevious(ea)
                root.remove(a)
        if sign_response:
            root = sign_element(root, root, key, cert, o["sig_alg"], o["digest_alg"],
                                o["cert_in_keyinfo"])
        xml = tostring(root)
        if o["after_sign"]:
            r = o["after_sign"](parse(xml))
            if isinstance(r, bytes):
                xml = r
            elif r is not None:
                xml = tostring(r)
            else:
                raise ValueError("after_sign must return the (new) root or bytes")
        if o["doctype"]:
            dt = o["doctype"] if isinstance(o["doctype"], str) else \
                '<!DOCTYPE samlp:Response [<!ELEMENT samlp:Response ANY>]>'
            xml = add_doctype(xml, dt)
        return Built(xml, o["relay_state"], rid, aids)


def set_text_with_comment(element, before, after, comment=""):
    """Make element's text `before<!--comment-->after` (e.g. alice@evil<!---->.example.org):
    exclusive C14N drops the comment, so a signature over it stays valid."""
    for child in list(element):
        element.remove(child)
    element.text = before
    c = etree.Comment(comment)
    c.tail = after
    element.append(c)
    return element


def strip_signatures(root):
    """Remove every ds:Signature (for after_sign); returns root."""
    for s in list(root.iter(DS + "Signature")):
        s.getparent().remove(s)
    return root


def add_doctype(xml, doctype):
    """Insert a DOCTYPE right after the XML declaration (string-level, after signing)."""
    if isinstance(doctype, str):
        doctype = doctype.encode()
    if xml.startswith(b"<?xml"):
        end = xml.index(b"?>") + 2
        return xml[:end] + b"\n" + doctype + xml[end:]
    return doctype + b"\n" + xml
