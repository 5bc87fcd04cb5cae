#!/usr/bin/python3
"""samlgw's test IdP: a SAML 2.0 identity provider built on pysaml2, for tests and the demo.

It listens on 127.0.0.1 only, makes its own RSA-2048 key and self-signed certificate in the
state folder on first start, writes its metadata there (idp-metadata.xml), and serves:

  GET  /                     index page: users, links
  GET  /metadata             this IdP's metadata
  GET  /sso/redirect         SSO, HTTP-Redirect binding (AuthnRequest signed or not)
  POST /sso/post             SSO, HTTP-POST binding
  GET  /sso/unsolicited      IdP-initiated SSO: ?providerId=SP[&shire=ACS][&target=RelayState]
  POST /login                the login form's target
  GET  /autologin?user=U     log this browser in as U without the form (sets the IdP session)
  GET,POST /slo/redirect, /slo/post   single logout: LogoutRequest from an SP, or the SP's
                             LogoutResponse to a logout this IdP started
  GET  /logout               IdP-initiated single logout ([?binding=redirect|post][&user=U])
  GET  /healthz              "ok"
  GET  /debug/last           JSON about the last Response sent (XML, NameID, SessionIndex, ...)
  POST /reload               re-read the SP metadata sources

Once listening it writes STATEDIR/idp.json (url, port, entity_id, paths, pid) and prints one
line "READY <url>" on stdout.  See README.md beside this file for every flag.
"""
import argparse
import base64
import hashlib
import hmac
import html
import http.cookies
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from saml2 import (BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml, samlp)
from saml2.assertion import Policy
from saml2.authn_context import PASSWORDPROTECTEDTRANSPORT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor, metadata_tostring_fix
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
from saml2.samlp import LogoutRequest, LogoutResponse
from saml2.server import Server
from saml2.sigver import pem_format

HERE = os.path.dirname(os.path.abspath(__file__))
XMLSEC1 = "/usr/bin/xmlsec1"

SIG_ALGS = {
    "rsa-sha1": "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "rsa-sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "rsa-sha512": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
}
DIGEST_ALGS = {
    "sha1": "http://www.w3.org/2000/09/xmldsig#sha1",
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}
ENC_ALGS = {   # name -> (XML Enc URI, xmlsec1 --session-key)
    "aes128-cbc": ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "aes-128"),
    "aes256-cbc": ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "aes-256"),
    "aes128-gcm": ("http://www.w3.org/2009/xmlenc11#aes128-gcm", "aes-128"),
    "aes256-gcm": ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "aes-256"),
    "tripledes-cbc": ("http://www.w3.org/2001/04/xmlenc#tripledes-cbc", "des-192"),
}
NAMEID_FORMATS = {"transient": NAMEID_FORMAT_TRANSIENT, "persistent": NAMEID_FORMAT_PERSISTENT}

# Attribute values may use {user}, {scope}, {idp}, {sp} and {pairwise} (a stable per-user,
# per-SP opaque value).  eduPersonTargetedID is sent as a persistent NameID
# (NameQualifier = IdP, SPNameQualifier = SP) when its value is a plain string.
DEFAULT_USERS = {
    "alice": {
        "password": "alice-pass",
        "attributes": {
            "eduPersonPrincipalName": ["{user}@{scope}"],
            "subject-id": ["{user}@{scope}"],
            "pairwise-id": ["{pairwise}@{scope}"],
            "eduPersonTargetedID": ["{pairwise}"],
            "mail": ["alice@{scope}"],
            "displayName": ["Alice Liddell"],
            "givenName": ["Alice"],
            "sn": ["Liddell"],
            "eduPersonAffiliation": ["member", "student"],
            "eduPersonScopedAffiliation": ["member@{scope}", "student@{scope}"],
            "eduPersonEntitlement": ["urn:mace:dir:entitlement:common-lib-terms"],
        },
    },
    "bob": {
        "password": "bob-pass",
        "attributes": {
            "eduPersonPrincipalName": ["{user}@{scope}"],
            "subject-id": ["{user}@{scope}"],
            "pairwise-id": ["{pairwise}@{scope}"],
            "eduPersonTargetedID": ["{pairwise}"],
            "mail": ["bob@{scope}"],
            "displayName": ["Bob Builder"],
            "givenName": ["Bob"],
            "sn": ["Builder"],
            "eduPersonAffiliation": ["member", "staff", "employee"],
            "eduPersonScopedAffiliation": ["member@{scope}", "staff@{scope}", "employee@{scope}"],
            "eduPersonEntitlement": ["urn:mace:dir:entitlement:common-lib-terms",
                                     "urn:geant:example.org:chat"],
        },
    },
}

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}
label{{display:block;margin-top:.8em}}input{{font-size:1em}}.err{{color:#a00}}
code{{background:#eee;padding:0 .2em}}</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""


def log(event, **fields):
    parts = ["event=%s" % event]
    for k, v in fields.items():
        v = str(v)
        if not v or any(c in v for c in ' "='):
            v = '"%s"' % v.replace('"', "'")
        parts.append("%s=%s" % (k, v))
    sys.stderr.write("idp: %s\n" % " ".join(parts))
    sys.stderr.flush()


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- keys, metadata


def ensure_keypair(statedir, cn):
    """Make key.pem (RSA-2048) and cert.pem (self-signed, 10 years) once; return their paths."""
    key = os.path.join(statedir, "key.pem")
    cert = os.path.join(statedir, "cert.pem")
    if not (os.path.exists(key) and os.path.exists(cert)):
        r = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
             "-days", "3650", "-subj", "/CN=%s" % cn.replace("/", "_")[:64],
             "-keyout", key + ".tmp", "-out", cert + ".tmp"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise SystemExit("idp: openssl req failed: %s" % r.stderr.decode(errors="replace"))
        os.chmod(key + ".tmp", 0o600)
        os.replace(key + ".tmp", key)
        os.replace(cert + ".tmp", cert)
    return key, cert


NS_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS_SHIBMD = "urn:mace:shibboleth:metadata:1.0"
METADATA_PREFIXES = {"md": NS_MD, "ds": "http://www.w3.org/2000/09/xmldsig#",
                     "shibmd": NS_SHIBMD, "mdui": "urn:oasis:names:tc:SAML:metadata:ui",
                     "xs": "http://www.w3.org/2001/XMLSchema"}


def renamespace(root, prefixes):
    """A copy of an lxml tree whose namespaces all use the given prefixes, declared once
    on the root (for unsigned documents only: it changes the serialisation)."""
    from lxml import etree
    new = etree.Element(root.tag, nsmap=prefixes)

    def copy(src, dst):
        for k, v in src.attrib.items():
            dst.set(k, v)
        dst.text = src.text
        for child in src:
            if not isinstance(child.tag, str):
                continue
            c = etree.SubElement(dst, child.tag)
            copy(child, c)
            c.tail = child.tail
    copy(root, new)
    return new


def is_loopback_url(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_source(src, timeout=5):
    """The text of a metadata source: a file path or an http(s) URL on loopback."""
    if src.startswith(("http://", "https://")):
        if not is_loopback_url(src):
            raise ValueError("refusing non-loopback metadata URL %s" % src)
        with urllib.request.urlopen(src, timeout=timeout) as r:
            return r.read().decode("utf-8")
    with open(src, encoding="utf-8") as f:
        return f.read()


# --------------------------------------------------------------------------- pysaml2 server


class IdPServer(Server):
    """pysaml2's Server with a hook on the Assertion object before it is signed/encrypted,
    so the IdP learns the SessionIndex it hands out (needed for SLO)."""

    assertion_hook = None
    enc_alg = "aes256-cbc"

    def _encrypt_assertion(self, encrypt_cert, sp_entity_id, response, node_xpath=None):
        """pysaml2's own, but with a chosen data cipher (pysaml2 defaults to 3DES)."""
        from saml2.sigver import get_pem_wrapped_unwrapped, make_temp, pre_encryption_part
        certs = [encrypt_cert] if encrypt_cert else \
            self.metadata.certs(sp_entity_id, "any", "encryption")
        if not certs:
            raise ValueError("SP %s has no encryption key in its metadata" % sp_entity_id)
        uri, session_key = ENC_ALGS[self.enc_alg]
        error = None
        for cert in certs:
            wrapped, unwrapped = get_pem_wrapped_unwrapped(cert)
            try:
                tmp = make_temp(wrapped.encode("ascii"), decode=False,
                                delete_tmpfiles=self.config.delete_tmpfiles)
                return self.sec.encrypt_assertion(
                    response, tmp.name,
                    pre_encryption_part(msg_enc=uri, encrypt_cert=unwrapped),
                    key_type=session_key, node_xpath=node_xpath)
            except Exception as e:
                error = e
        raise error

    def setup_assertion(self, *args, **kwargs):
        ast = super().setup_assertion(*args, **kwargs)
        if self.assertion_hook is not None and isinstance(ast, saml.Assertion):
            self.assertion_hook(ast)
        return ast


class IdP:
    def __init__(self, opts, base_url):
        self.opts = opts
        self.base = base_url.rstrip("/")
        self.entity_id = opts.entity_id or "https://idp.%s/idp/shibboleth" % opts.scope[0]
        self.scope = opts.scope[0]
        self.statedir = opts.dir
        self.key, self.cert = ensure_keypair(self.statedir, "samlgw test IdP %s" % self.scope)
        self.salt = self._salt()
        self.users = self._load_users(opts.users)
        self.lock = threading.RLock()
        self.pending = {}      # key -> pending AuthnRequest info
        self.sessions = {}     # cookie -> {"user", "sps": {sp: {"name_id", "session_index"}}}
        self.logouts = {}      # LogoutRequest id -> {"cookie"}
        self.last = {}
        self.metadata_path = os.path.join(self.statedir, "idp-metadata.xml")
        self.server = None
        self.sp_metadata_texts = []
        self.reload()
        self.write_metadata()

    def _salt(self):
        path = os.path.join(self.statedir, "salt")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(secrets.token_hex(16))
        with open(path) as f:
            return f.read().strip()

    @staticmethod
    def _load_users(path):
        if not path:
            return json.loads(json.dumps(DEFAULT_USERS))
        with open(path, encoding="utf-8") as f:
            users = json.load(f)
        for name, u in users.items():
            if "password" not in u:
                raise SystemExit("idp: user %s has no password in %s" % (name, path))
            u.setdefault("attributes", {})
        return users

    def config_dict(self, sp_metadata, for_metadata=False):
        o = self.opts
        ui = {"display_name": [{"text": o.display_name, "lang": "en"}],
              "description": [{"text": "samlgw test identity provider", "lang": "en"}]}
        conf = {
            "entityid": self.entity_id,
            "description": o.display_name,
            "service": {"idp": {
                "name": o.display_name,
                "endpoints": {
                    "single_sign_on_service": [
                        (self.base + "/sso/redirect", BINDING_HTTP_REDIRECT),
                        (self.base + "/sso/post", BINDING_HTTP_POST)],
                    "single_logout_service": [
                        (self.base + "/slo/redirect", BINDING_HTTP_REDIRECT),
                        (self.base + "/slo/post", BINDING_HTTP_POST)],
                },
                "policy": {"default": {"lifetime": {"minutes": o.lifetime},
                                       "attribute_restrictions": None,
                                       "name_form": NAME_FORMAT_URI}},
                "name_id_format": [NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_PERSISTENT],
                # pysaml2 would look for an XML signature even on the Redirect binding; the
                # IdP checks request signatures itself (verify_redirect_signature).
                "want_authn_requests_signed": bool(o.want_signed_requests and for_metadata),
                "scope": list(o.scope),
                "ui_info": ui,
            }},
            "key_file": self.key,
            "cert_file": self.cert,
            "xmlsec_binary": XMLSEC1,
            "crypto_backend": "xmlsec1",
            "metadata": {"inline": sp_metadata} if sp_metadata else {},
            "accepted_time_diff": 60,
            "signing_algorithm": SIG_ALGS[o.sign_alg],
            "digest_algorithm": DIGEST_ALGS[o.digest_alg],
            "organization": {"name": [(o.display_name, "en")],
                             "display_name": [(o.display_name, "en")],
                             "url": [(self.base + "/", "en")]},
            "contact_person": [{"contact_type": "technical", "given_name": "Test",
                                "email_address": ["mailto:idp-admin@%s" % self.scope]}],
            "delete_tmpfiles": True,
        }
        return conf

    def reload(self):
        """Re-read the SP metadata sources and rebuild the pysaml2 server."""
        texts = []
        for src in self.opts.sp_metadata or []:
            try:
                texts.append(read_source(src))
            except (OSError, ValueError) as e:
                log("sp_metadata_unavailable", source=src, error=e)
        conf = IdPConfig()
        conf.load(self.config_dict(texts))
        server = IdPServer(config=conf)
        server.assertion_hook = self._on_assertion
        server.enc_alg = self.opts.enc_alg
        with self.lock:
            self.server = server
            self.sp_metadata_texts = texts
        log("sp_metadata_loaded", sources=len(texts),
            sps=" ".join(sorted(server.metadata.keys())) or "-")

    def write_metadata(self):
        conf = IdPConfig()
        conf.load(self.config_dict([], for_metadata=True))
        ed = entity_descriptor(conf)
        xml = metadata_tostring_fix(ed, {"xs": "http://www.w3.org/2001/XMLSchema"})
        if isinstance(xml, bytes):
            xml = xml.decode("utf-8")
        xml = self._add_regexp_scopes(xml)
        tmp = self.metadata_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(xml)
        os.replace(tmp, self.metadata_path)

    def _add_regexp_scopes(self, xml):
        """Tidy pysaml2's metadata: conventional prefixes, no algorithm-support list (which
        would advertise MD5), plus any regexp="true" scopes."""
        from lxml import etree
        root = etree.fromstring(xml.encode("utf-8"))
        ns = {"md": NS_MD, "alg": "urn:oasis:names:tc:SAML:metadata:algsupport"}
        for ext in root.findall("md:Extensions", ns):
            for el in ext.findall("alg:*", ns):
                ext.remove(el)
            if len(ext) == 0:
                root.remove(ext)
        ext = root.find("md:IDPSSODescriptor/md:Extensions", ns)
        for r in self.opts.scope_regexp:
            el = etree.SubElement(ext, "{%s}Scope" % NS_SHIBMD)
            el.set("regexp", "true")
            el.text = r
        root = renamespace(root, METADATA_PREFIXES)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")

    def _on_assertion(self, ast):
        try:
            self._last_session_index = ast.authn_statement[0].session_index
        except (IndexError, AttributeError):
            self._last_session_index = None

    # -------------------------------------------------------------- identity

    def pairwise(self, user, sp):
        mac = hmac.new(self.salt.encode(), ("%s|%s|%s" % (self.entity_id, sp, user)).encode(),
                       hashlib.sha256).digest()
        return base64.b32encode(mac[:20]).decode().lower().rstrip("=")

    def identity(self, user, sp):
        u = self.users[user]
        subst = {"user": user, "scope": self.scope, "idp": self.entity_id, "sp": sp,
                 "pairwise": self.pairwise(user, sp)}
        ident = {}
        for name, values in u["attributes"].items():
            if isinstance(values, str):
                values = [values]
            out = []
            for v in values:
                if isinstance(v, str):
                    v = v.format(**subst)
                out.append(v)
            if name.lower() in ("edupersontargetedid",):
                out = [v if isinstance(v, dict) else
                       {"text": v, "NameQualifier": self.entity_id, "SPNameQualifier": sp}
                       for v in out]
            ident[name] = out
        return ident

    def name_id(self, user, sp, fmt):
        if fmt == NAMEID_FORMAT_PERSISTENT:
            text = self.pairwise(user, sp)
        else:
            fmt = NAMEID_FORMAT_TRANSIENT
            text = "_" + secrets.token_hex(16)
        return saml.NameID(format=fmt, text=text, name_qualifier=self.entity_id,
                           sp_name_qualifier=sp)

    def check_password(self, user, password):
        u = self.users.get(user)
        return u is not None and hmac.compare_digest(u["password"].encode(),
                                                     (password or "").encode())

    # -------------------------------------------------------------- SSO

    def _server_for(self, sp):
        """The pysaml2 server, re-reading SP metadata once when `sp` is unknown."""
        with self.lock:
            server = self.server
        if sp and sp not in server.metadata.keys():
            self.reload()
            with self.lock:
                server = self.server
        return server

    def parse_authn_request(self, saml_request, binding, raw_query=None):
        # Peek at the issuer so unknown SPs trigger one metadata reload before parsing.
        try:
            xml = self.server.unravel(saml_request, binding, "authn_request")
        except Exception as e:
            raise HttpError(400, "cannot decode SAMLRequest: %s" % e)
        try:
            areq = samlp.authn_request_from_string(xml)
        except Exception as e:
            raise HttpError(400, "not an AuthnRequest: %s" % e)
        if areq is None or areq.issuer is None or not areq.issuer.text:
            raise HttpError(400, "AuthnRequest without Issuer")
        sp = areq.issuer.text.strip()
        server = self._server_for(sp)
        if sp not in server.metadata.keys():
            raise HttpError(403, "unknown SP %s (not in --sp-metadata)" % sp)
        if binding == BINDING_HTTP_REDIRECT:
            self.verify_redirect_signature(server, raw_query, sp, "SAMLRequest")
        elif self.opts.want_signed_requests and areq.signature is None:
            raise HttpError(403, "unsigned AuthnRequest refused (--want-signed-requests)")
        with self.lock:
            try:
                req = server.parse_authn_request(saml_request, binding)
            except Exception as e:
                raise HttpError(400, "AuthnRequest refused: %s: %s" % (type(e).__name__, e))
            if req is None:
                raise HttpError(400, "AuthnRequest refused")
            msg = req.message
            try:
                rargs = server.response_args(msg, [BINDING_HTTP_POST])
            except Exception as e:
                raise HttpError(400, "no usable AssertionConsumerService: %s" % e)
        nip = msg.name_id_policy
        return {
            "id": msg.id,
            "sp": sp,
            "acs": rargs["destination"],
            "name_id_format": nip.format if nip is not None and nip.format else None,
            "force_authn": str(msg.force_authn).lower() in ("true", "1"),
            "is_passive": str(msg.is_passive).lower() in ("true", "1"),
        }

    def verify_redirect_signature(self, server, raw_query, sp, param):
        """HTTP-Redirect binding signature over the query string exactly as received."""
        pairs = [p.split("=", 1) for p in (raw_query or "").split("&") if p]
        raw = {k: (v[0] if v else "") for k, *v in pairs}
        if "Signature" not in raw:
            if self.opts.want_signed_requests and param == "SAMLRequest":
                raise HttpError(403, "unsigned %s refused (--want-signed-requests)" % param)
            return False
        if "SigAlg" not in raw:
            raise HttpError(400, "Signature without SigAlg")
        signed = "&".join("%s=%s" % (k, raw[k]) for k in (param, "RelayState", "SigAlg")
                          if k in raw).encode("ascii")
        sigalg = urllib.parse.unquote_plus(raw["SigAlg"])
        signature = base64.b64decode(urllib.parse.unquote_plus(raw["Signature"]))
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        hash_for = {SIG_ALGS["rsa-sha1"]: hashes.SHA1(), SIG_ALGS["rsa-sha256"]: hashes.SHA256(),
                    SIG_ALGS["rsa-sha512"]: hashes.SHA512()}
        if sigalg not in hash_for:
            raise HttpError(400, "unsupported SigAlg %s" % sigalg)
        certs = server.metadata.certs(sp, "spsso", "signing")
        if not certs:
            raise HttpError(403, "signed request, but SP %s has no signing key in metadata" % sp)
        for cert in certs:
            pem = pem_format(cert)
            if isinstance(pem, str):
                pem = pem.encode()
            try:
                key = x509.load_pem_x509_certificate(pem).public_key()
                key.verify(signature, signed, padding.PKCS1v15(), hash_for[sigalg])
                return True
            except (InvalidSignature, ValueError):
                continue
        raise HttpError(403, "bad signature on %s from %s" % (param, sp))

    def make_response(self, user, info, relay_state):
        """The HTML auto-POST page carrying a Response for `user` to info["acs"]."""
        sp = info["sp"]
        o = self.opts
        server = self._server_for(sp)
        fmt = info.get("name_id_format") or NAMEID_FORMATS[o.nameid_format]
        if fmt not in (NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_PERSISTENT):
            fmt = NAMEID_FORMATS[o.nameid_format]
        name_id = self.name_id(user, sp, fmt)
        policy = Policy(restrictions={"default": {"lifetime": {"minutes": o.lifetime},
                                                  "attribute_restrictions": None,
                                                  "name_form": NAME_FORMAT_URI}}, mds=None)
        kwargs = {}
        if o.encrypt_assertion:
            kwargs["encrypt_assertion"] = True
            kwargs["encrypt_assertion_self_contained"] = True
        with self.lock:
            self._last_session_index = None
            resp = server.create_authn_response(
                self.identity(user, sp), info.get("id"), info["acs"], sp,
                name_id=name_id,
                authn={"class_ref": PASSWORDPROTECTEDTRANSPORT,
                       "authn_auth": self.entity_id},
                sign_response=o.sign_response, sign_assertion=o.sign_assertion,
                sign_alg=SIG_ALGS[o.sign_alg], digest_alg=DIGEST_ALGS[o.digest_alg],
                release_policy=policy, **kwargs)
            session_index = self._last_session_index
        xml = str(resp)
        if not xml.startswith("<?xml"):
            xml = '<?xml version="1.0" encoding="UTF-8"?>' + xml
        b64 = base64.b64encode(xml.encode("utf-8")).decode("ascii")
        self.last = {"user": user, "sp": sp, "acs": info["acs"], "in_response_to": info.get("id"),
                     "name_id": name_id.text, "name_id_format": name_id.format,
                     "session_index": session_index, "relay_state": relay_state,
                     "xml": xml, "SAMLResponse": b64}
        log("sso_response", user=user, sp=sp, acs=info["acs"],
            in_response_to=info.get("id") or "-", nameid_format=fmt.rsplit(":", 1)[-1],
            signed_response=int(bool(o.sign_response)), signed_assertion=int(bool(o.sign_assertion)),
            encrypted=int(bool(o.encrypt_assertion)))
        return name_id, session_index, post_form(info["acs"], {"SAMLResponse": b64,
                                                               "RelayState": relay_state})

    # -------------------------------------------------------------- sessions

    def new_session(self, user):
        cookie = secrets.token_urlsafe(24)
        with self.lock:
            self.sessions[cookie] = {"user": user, "sps": {}}
        return cookie

    def session(self, cookie):
        with self.lock:
            return self.sessions.get(cookie) if cookie else None

    def remember_sp(self, cookie, sp, name_id, session_index):
        with self.lock:
            s = self.sessions.get(cookie)
            if s is not None:
                s["sps"][sp] = {"name_id": name_id, "session_index": session_index}


def post_form(action, fields):
    inputs = "".join('<input type="hidden" name="%s" value="%s">' %
                     (html.escape(k), html.escape(v)) for k, v in fields.items() if v)
    body = ('<form method="post" action="%s">%s'
            '<noscript><p>JavaScript is off: press Continue.</p></noscript>'
            '<button type="submit">Continue</button></form>'
            '<script>document.forms[0].submit()</script>' % (html.escape(action), inputs))
    return PAGE.format(title="Continue to the service", body=body)


def login_form(key, name, error="", user=""):
    err = '<p class="err">%s</p>' % html.escape(error) if error else ""
    body = ('%s<form method="post" action="/login">'
            '<input type="hidden" name="key" value="%s">'
            '<label for="username">Username</label>'
            '<input id="username" name="username" value="%s" autocomplete="username" autofocus>'
            '<label for="password">Password</label>'
            '<input id="password" name="password" type="password" autocomplete="current-password">'
            '<p><button type="submit">Log in</button></p></form>'
            % (err, html.escape(key), html.escape(user)))
    return PAGE.format(title=html.escape("Log in: %s" % name), body=body)


# --------------------------------------------------------------------------- HTTP


class Handler(BaseHTTPRequestHandler):
    server_version = "samlgw-test-idp/1"
    protocol_version = "HTTP/1.1"
    idp = None  # set on the class before serving
    MAX_BODY = 1 << 20

    def log_message(self, fmt, *args):
        log("http", client=self.client_address[0], line=fmt % args)

    # ------------------------------------------------------------ plumbing

    def _send(self, status, body, ctype="text/html; charset=utf-8", headers=()):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _redirect(self, url, headers=()):
        self._send(303, "", headers=[("Location", url)] + list(headers))

    def _error(self, status, message):
        log("refused", status=status, path=self.path.split("?")[0], reason=message)
        self._send(status, PAGE.format(title="Error", body="<p class=\"err\">%s</p>" %
                                       html.escape(message)))

    def _cookie(self):
        c = http.cookies.SimpleCookie()
        try:
            c.load(self.headers.get("Cookie", ""))
        except http.cookies.CookieError:
            return None
        m = c.get("idp_session")
        return m.value if m else None

    def _set_cookie(self, value):
        return ("Set-Cookie", "idp_session=%s; Path=/; HttpOnly; SameSite=Lax" % value)

    def _form(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > self.MAX_BODY:
            raise HttpError(413, "body too large")
        data = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        return {k: v[0] for k, v in urllib.parse.parse_qs(data, keep_blank_values=True).items()}

    def _dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        self.raw_query = url.query
        self.query = {k: v[0] for k, v in
                      urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        route = ROUTES.get((method, url.path))
        if route is None:
            if method == "POST":
                self._form()
            return self._error(404, "no such page: %s" % url.path)
        try:
            route(self)
        except HttpError as e:
            self._error(e.status, e.message)
        except Exception as e:  # a test IdP: report, don't die
            log("internal_error", path=url.path, error="%s: %s" % (type(e).__name__, e))
            self._error(500, "%s: %s" % (type(e).__name__, e))

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    # ------------------------------------------------------------ pages

    def index(self):
        idp = self.idp
        users = "".join("<li><code>%s</code> / <code>%s</code></li>" %
                        (html.escape(u), html.escape(d["password"])) for u, d in idp.users.items())
        body = ("<p>entityID <code>%s</code>, scope <code>%s</code></p>"
                "<p><a href=\"/metadata\">metadata</a></p><h2>Users</h2><ul>%s</ul>"
                % (html.escape(idp.entity_id), html.escape(idp.scope), users))
        self._send(200, PAGE.format(title="samlgw test IdP", body=body))

    def healthz(self):
        self._send(200, "ok\n", "text/plain")

    def metadata(self):
        with open(self.idp.metadata_path, "rb") as f:
            self._send(200, f.read(), "application/samlmetadata+xml")

    def debug_last(self):
        self._send(200, json.dumps(self.idp.last, indent=1), "application/json")

    def reload(self):
        self._form()
        self.idp.reload()
        self._send(200, "reloaded\n", "text/plain")

    # ------------------------------------------------------------ SSO

    def _sso(self, saml_request, relay_state, binding):
        if not saml_request:
            raise HttpError(400, "no SAMLRequest")
        info = self.idp.parse_authn_request(saml_request, binding, self.raw_query)
        log("authn_request", sp=info["sp"], id=info["id"], binding=binding.rsplit(":", 1)[-1],
            force_authn=int(info["force_authn"]))
        self._continue_sso(info, relay_state)

    def _continue_sso(self, info, relay_state):
        idp = self.idp
        cookie = self._cookie()
        sess = idp.session(cookie)
        user = None
        if idp.opts.autologin:
            user = idp.opts.autologin
            if not sess or sess["user"] != user:
                cookie = idp.new_session(user)
        elif sess and not info.get("force_authn"):
            user = sess["user"]
        if user is None:
            if info.get("is_passive"):
                raise HttpError(403, "IsPassive request and nobody logged in")
            key = secrets.token_urlsafe(18)
            with idp.lock:
                idp.pending[key] = dict(info, relay_state=relay_state, t=time.time())
            return self._send(200, login_form(key, self.idp.opts.display_name))
        self._respond(user, cookie, info, relay_state)

    def _respond(self, user, cookie, info, relay_state):
        name_id, session_index, page = self.idp.make_response(user, info, relay_state)
        self.idp.remember_sp(cookie, info["sp"], name_id, session_index)
        self._send(200, page, headers=[self._set_cookie(cookie)])

    def sso_redirect(self):
        self._sso(self.query.get("SAMLRequest"), self.query.get("RelayState", ""),
                  BINDING_HTTP_REDIRECT)

    def sso_post(self):
        f = self._form()
        self._sso(f.get("SAMLRequest"), f.get("RelayState", ""), BINDING_HTTP_POST)

    def sso_unsolicited(self):
        q = self.query
        sp = q.get("providerId") or q.get("sp")
        if not sp:
            raise HttpError(400, "providerId (the SP entityID) is required")
        server = self.idp._server_for(sp)
        if sp not in server.metadata.keys():
            raise HttpError(403, "unknown SP %s" % sp)
        acs = q.get("shire") or q.get("acs")
        known = [a["location"] for a in
                 server.metadata.assertion_consumer_service(sp, BINDING_HTTP_POST)]
        if not known:
            raise HttpError(400, "SP %s has no HTTP-POST AssertionConsumerService" % sp)
        if acs and acs not in known:
            raise HttpError(400, "ACS %s is not in the SP's metadata" % acs)
        info = {"id": None, "sp": sp, "acs": acs or known[0], "name_id_format": None,
                "force_authn": False, "is_passive": False}
        log("unsolicited", sp=sp, acs=info["acs"])
        self._continue_sso(info, q.get("target") or q.get("RelayState") or "")

    def login(self):
        f = self._form()
        idp = self.idp
        with idp.lock:
            info = idp.pending.get(f.get("key", ""))
        if info is None:
            raise HttpError(400, "unknown or expired login (start again at the service)")
        user = f.get("username", "").strip()
        if not idp.check_password(user, f.get("password")):
            log("login_failed", user=user)
            return self._send(401, login_form(f["key"], self.idp.opts.display_name,
                                              "Wrong username or password.", user))
        with idp.lock:
            idp.pending.pop(f["key"], None)
        log("login", user=user)
        cookie = idp.new_session(user)
        self._respond(user, cookie, info, info.get("relay_state", ""))

    def autologin(self):
        user = self.query.get("user", "")
        if user not in self.idp.users:
            raise HttpError(400, "unknown user %r" % user)
        cookie = self.idp.new_session(user)
        log("autologin", user=user)
        self._send(200, PAGE.format(title="Logged in", body="<p>Logged in as %s.</p>" %
                                    html.escape(user)), headers=[self._set_cookie(cookie)])

    # ------------------------------------------------------------ SLO

    def _slo(self, msg, binding, is_request, relay_state):
        idp = self.idp
        if is_request:
            self._slo_request(msg, binding, relay_state)
        else:
            server = idp.server
            with idp.lock:
                try:
                    resp = server.parse_logout_request_response(msg, binding)
                except Exception as e:
                    raise HttpError(400, "LogoutResponse refused: %s" % e)
            status = resp.response.status.status_code.value if resp else "?"
            irt = resp.response.in_response_to if resp else None
            log("logout_response", in_response_to=irt, status=status.rsplit(":", 1)[-1])
            with idp.lock:
                pending = idp.logouts.pop(irt, None)
            if pending and pending.get("cookie"):
                # Continue with the next SP of that session, if any.
                return self._logout_next(pending["cookie"], pending.get("binding"),
                                         pending.get("return"))
            self._send(200, PAGE.format(title="Logged out", body="<p>You are logged out.</p>"))

    def _slo_request(self, msg, binding, relay_state):
        idp = self.idp
        server = idp.server
        if binding == BINDING_HTTP_REDIRECT:
            # Who sent it?  Parse once unverified to find the issuer for the signature check.
            try:
                xml = server.unravel(msg, binding, "logout_request")
                lr = samlp.logout_request_from_string(xml)
                sp = lr.issuer.text.strip()
            except Exception as e:
                raise HttpError(400, "cannot decode LogoutRequest: %s" % e)
            self.idp.verify_redirect_signature(idp._server_for(sp), self.raw_query, sp,
                                               "SAMLRequest")
        with idp.lock:
            try:
                req = server.parse_logout_request(msg, binding)
            except Exception as e:
                raise HttpError(400, "LogoutRequest refused: %s" % e)
        message = req.message
        sp = message.issuer.text.strip()
        nid = message.name_id.text if message.name_id is not None else None
        # End every session that SP knows by this NameID.
        ended = 0
        with idp.lock:
            for cookie, s in list(idp.sessions.items()):
                e = s["sps"].get(sp)
                if e and e["name_id"].text == nid:
                    del s["sps"][sp]
                    if not s["sps"]:
                        del idp.sessions[cookie]
                    ended += 1
        log("logout_request", sp=sp, id=message.id, sessions_ended=ended)
        with idp.lock:
            bindings = [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST]
            if binding == BINDING_HTTP_POST:
                bindings = [BINDING_HTTP_POST, BINDING_HTTP_REDIRECT]
            rinfo = server.response_args(message, bindings)
            # The configured algorithms (pysaml2 would sign a LogoutResponse with SHA-1).
            resp = server.create_logout_response(message, [rinfo["binding"]],
                                                 sign=rinfo["binding"] == BINDING_HTTP_POST
                                                 and idp.opts.sign_response,
                                                 sign_alg=SIG_ALGS[idp.opts.sign_alg],
                                                 digest_alg=DIGEST_ALGS[idp.opts.digest_alg])
        self._send_message(rinfo["binding"], str(resp), rinfo["destination"], relay_state,
                           response=True)

    def _send_message(self, binding, xml, destination, relay_state, response):
        server = self.idp.server
        if binding == BINDING_HTTP_POST:
            b64 = base64.b64encode(xml.encode("utf-8")).decode("ascii")
            key = "SAMLResponse" if response else "SAMLRequest"
            return self._send(200, post_form(destination, {key: b64,
                                                           "RelayState": relay_state or ""}))
        with self.idp.lock:
            info = server.apply_binding(BINDING_HTTP_REDIRECT, xml, destination,
                                        relay_state or "", response=response, sign=True,
                                        sigalg=SIG_ALGS[self.idp.opts.sign_alg])
        location = dict(info["headers"])["Location"]
        self._redirect(location)

    def slo_redirect(self):
        q = self.query
        if "SAMLRequest" in q:
            self._slo(q["SAMLRequest"], BINDING_HTTP_REDIRECT, True, q.get("RelayState", ""))
        elif "SAMLResponse" in q:
            self._slo(q["SAMLResponse"], BINDING_HTTP_REDIRECT, False, q.get("RelayState", ""))
        else:
            raise HttpError(400, "no SAMLRequest or SAMLResponse")

    def slo_post(self):
        f = self._form()
        if "SAMLRequest" in f:
            self._slo(f["SAMLRequest"], BINDING_HTTP_POST, True, f.get("RelayState", ""))
        elif "SAMLResponse" in f:
            self._slo(f["SAMLResponse"], BINDING_HTTP_POST, False, f.get("RelayState", ""))
        else:
            raise HttpError(400, "no SAMLRequest or SAMLResponse")

    def logout(self):
        """IdP-initiated SLO: this browser's session (or ?user=U's sessions), one SP at a time."""
        idp = self.idp
        q = self.query
        binding = {"post": BINDING_HTTP_POST, "redirect": BINDING_HTTP_REDIRECT}.get(
            q.get("binding", "redirect"))
        if binding is None:
            raise HttpError(400, "binding must be redirect or post")
        cookie = self._cookie()
        if q.get("user"):
            with idp.lock:
                cands = [c for c, s in idp.sessions.items() if s["user"] == q["user"] and s["sps"]]
            if not cands:
                raise HttpError(404, "no session of user %s" % q["user"])
            cookie = cands[-1]
        if not idp.session(cookie):
            return self._send(200, PAGE.format(title="Logged out",
                                               body="<p>No session here.</p>"))
        self._logout_next(cookie, binding, q.get("return"), only_sp=q.get("sp"))

    def _logout_next(self, cookie, binding, ret, only_sp=None):
        idp = self.idp
        binding = binding or BINDING_HTTP_REDIRECT
        with idp.lock:
            s = idp.sessions.get(cookie)
            sps = dict(s["sps"]) if s else {}
            if only_sp:
                sps = {k: v for k, v in sps.items() if k == only_sp}
            if not sps:
                idp.sessions.pop(cookie, None)
        if not sps:
            log("logout_done")
            return self._send(200, PAGE.format(title="Logged out", body="<p>You are logged out.</p>"),
                              headers=[("Set-Cookie", "idp_session=; Path=/; Max-Age=0")])
        sp, entry = next(iter(sps.items()))
        server = idp._server_for(sp)
        srvs = server.metadata.single_logout_service(sp, binding, "spsso")
        if not srvs:
            other = BINDING_HTTP_POST if binding == BINDING_HTTP_REDIRECT else BINDING_HTTP_REDIRECT
            srvs = server.metadata.single_logout_service(sp, other, "spsso")
            binding = other
        with idp.lock:
            s = idp.sessions.get(cookie)
            if s:
                s["sps"].pop(sp, None)
        if not srvs:
            log("logout_skip", sp=sp, reason="no SingleLogoutService")
            return self._logout_next(cookie, binding, ret, only_sp)
        dest = srvs[0]["location"]
        with idp.lock:
            req_id, req = server.create_logout_request(
                dest, sp, name_id=entry["name_id"],
                session_indexes=[entry["session_index"]] if entry["session_index"] else None,
                sign=binding == BINDING_HTTP_POST and idp.opts.sign_response,
                sign_alg=SIG_ALGS[idp.opts.sign_alg], digest_alg=DIGEST_ALGS[idp.opts.digest_alg])
            idp.logouts[req_id] = {"cookie": cookie, "binding": binding, "return": ret}
        log("logout_start", sp=sp, id=req_id, binding=binding.rsplit(":", 1)[-1])
        self._send_message(binding, str(req), dest, ret or "", response=False)


ROUTES = {
    ("GET", "/"): Handler.index,
    ("GET", "/healthz"): Handler.healthz,
    ("GET", "/metadata"): Handler.metadata,
    ("GET", "/idp-metadata.xml"): Handler.metadata,
    ("GET", "/debug/last"): Handler.debug_last,
    ("POST", "/reload"): Handler.reload,
    ("GET", "/sso/redirect"): Handler.sso_redirect,
    ("POST", "/sso/post"): Handler.sso_post,
    ("GET", "/sso/unsolicited"): Handler.sso_unsolicited,
    ("POST", "/login"): Handler.login,
    ("GET", "/autologin"): Handler.autologin,
    ("GET", "/slo/redirect"): Handler.slo_redirect,
    ("POST", "/slo/post"): Handler.slo_post,
    ("GET", "/logout"): Handler.logout,
}


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="samlgw test IdP (pysaml2), loopback only")
    p.add_argument("--dir", required=True, help="state folder: key, cert, metadata, idp.json")
    p.add_argument("--host", default="127.0.0.1", help="listen address (loopback only)")
    p.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    p.add_argument("--base-url", help="URL in metadata and forms (default http://HOST:PORT)")
    p.add_argument("--entity-id", help="default https://idp.SCOPE/idp/shibboleth")
    p.add_argument("--scope", action="append",
                   help="shibmd:Scope (repeatable; the first is the users' scope; default example.org)")
    p.add_argument("--scope-regexp", action="append", default=[],
                   help="extra shibmd:Scope with regexp=\"true\" (repeatable)")
    p.add_argument("--display-name", default="Example University (test IdP)",
                   help="mdui:DisplayName and organization name")
    p.add_argument("--sp-metadata", action="append", default=[],
                   help="SP metadata file or loopback URL (repeatable; re-read when an unknown SP asks)")
    p.add_argument("--users", help="users JSON file (default: alice/alice-pass, bob/bob-pass)")
    p.add_argument("--sign-response", action=argparse.BooleanOptionalAction, default=True,
                   help="sign the Response (default on)")
    p.add_argument("--sign-assertion", action=argparse.BooleanOptionalAction, default=True,
                   help="sign the Assertion (default on)")
    p.add_argument("--encrypt-assertion", action=argparse.BooleanOptionalAction, default=False,
                   help="encrypt the Assertion to the SP's encryption key (default off)")
    p.add_argument("--enc-alg", choices=sorted(ENC_ALGS), default="aes256-cbc",
                   help="data cipher of encrypted assertions (key transport: RSA-OAEP-MGF1P)")
    p.add_argument("--sign-alg", choices=sorted(SIG_ALGS), default="rsa-sha256")
    p.add_argument("--digest-alg", choices=sorted(DIGEST_ALGS), default="sha256")
    p.add_argument("--nameid-format", choices=sorted(NAMEID_FORMATS), default="transient",
                   help="NameID format unless the AuthnRequest's NameIDPolicy asks for one")
    p.add_argument("--lifetime", type=int, default=5, help="assertion lifetime in minutes")
    p.add_argument("--want-signed-requests", action="store_true",
                   help="refuse unsigned AuthnRequests (and say so in metadata)")
    p.add_argument("--autologin", metavar="USER",
                   help="log every SSO request in as USER without the form")
    o = p.parse_args(argv)
    if not o.scope:
        o.scope = ["example.org"]
    try:
        if not ipaddress.ip_address(o.host).is_loopback:
            p.error("--host must be a loopback address")
    except ValueError:
        p.error("--host must be an IP address")
    return o


def main(argv=None):
    o = parse_args(argv)
    os.makedirs(o.dir, exist_ok=True)
    o.dir = os.path.abspath(o.dir)
    httpd = ThreadingHTTPServer((o.host, o.port), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    base = o.base_url or "http://%s:%d" % (o.host, port)
    idp = IdP(o, base)
    if o.autologin and o.autologin not in idp.users:
        raise SystemExit("idp: --autologin user %s is not a known user" % o.autologin)
    Handler.idp = idp
    state = {"url": base, "port": port, "entity_id": idp.entity_id, "scope": idp.scope,
             "metadata": idp.metadata_path, "cert": idp.cert, "key": idp.key, "pid": os.getpid(),
             "users": {u: d["password"] for u, d in idp.users.items()}}
    tmp = os.path.join(o.dir, "idp.json.tmp")
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, os.path.join(o.dir, "idp.json"))

    def stop(signum, frame):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for u, d in idp.users.items():
        log("user", name=u, password=d["password"])
    log("listening", url=base, entity_id=idp.entity_id, metadata=idp.metadata_path)
    print("READY %s" % base, flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
