#!/usr/bin/python3
"""Writes the hand-made seed inputs of the token, jid, authd and xmpp_sasl fuzz targets
into tests/fuzz/corpus/NAME/seed-* (what each input means is in the target's comment).
Run again after changing a target's input format; inputs the fuzzer found live beside
them (scripts/fuzz --merge NAME keeps the corpus minimal)."""
import base64
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def token(random: bytes) -> str:
    """A token as common/token.h describes it."""
    body = base64.urlsafe_b64encode(random).rstrip(b"=").decode()
    text = "samlgw_" + body
    check = hashlib.sha256(("samlgw-check:" + text).encode()).digest()[:4]
    return text + base64.urlsafe_b64encode(check).rstrip(b"=").decode()[:6]


TOKEN = token(bytes(range(32)))
TOKEN2 = token(b"\xff" * 32)


def write(target: str, seeds: dict) -> None:
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        if old.startswith("seed-"):
            os.unlink(os.path.join(folder, old))
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(folder, "seed-" + name), "wb") as f:
            f.write(data)


def frame(text: str) -> bytes:
    b = text.encode()
    return struct.pack(">H", len(b)) + b


def saslauthd(*fields: str) -> bytes:
    return b"".join(frame(f) for f in fields)


write("token", {
    "valid": TOKEN,
    "valid-ff": TOKEN2,
    "bad-check": TOKEN[:-1] + ("A" if TOKEN[-1] != "A" else "B"),
    "bad-last-body-char": TOKEN[:49] + "B" + TOKEN[50:],
    "short": TOKEN[:-1],
    "long": TOKEN + "A",
    "prefix-only": "samlgw_",
    "wrong-prefix": "SAMLGW_" + TOKEN[7:],
    "padding": TOKEN[:-2] + "==",
    "id": "0123456789abcdef",
    "hash": hashlib.sha256(TOKEN.encode()).hexdigest(),
    "id-upper": "0123456789ABCDEF",
    "empty": "",
})

write("jid", {
    "plain": "\x00alice@example.org",
    "upper-dot": "\x00Alice@Example.ORG.",
    "localpart-domain": "\x01alice",
    "localpart-mode": "\x02Alice",
    "localpart-other-domain": "\x02alice@example.net",
    "restricted": "\x03bob@example.net",
    "resource": "\x00alice@example.org/phone",
    "domain-only": "\x00example.org",
    "two-ats": "\x00a@b@example.org",
    "utf8": "\x00\xc3\xa9lise@example.org".encode("latin-1"),
    "bad-utf8": b"\x00\xc3(@example.org",
    "bad-label": "\x00a@-x.example.org",
    "long-label": "\x00a@" + "x" * 64 + ".org",
    "forbidden": "\x00a'b@example.org",
    "dot-only": "\x00a@.",
    "ipv4": "\x00a@127.0.0.1",
    "nul": b"\x00alice\x00@example.org",
})

ej = lambda *reqs: b"".join(frame(r) for r in reqs)
write("authd", {
    "ejabberd-auth": b"\x00" + ej("auth:alice:example.org:" + TOKEN),
    "ejabberd-isuser": b"\x00" + ej("isuser:alice:example.org"),
    "ejabberd-mixed": b"\x04" + ej("auth:alice:example.org:x", "setpass:a:b:c",
                                    "tryregister:a:b:c", "removeuser:a:b", "bogus", ""),
    "ejabberd-overlong": b"\x00" + struct.pack(">H", 5000) + b"auth:",
    "ejabberd-truncated": b"\x00\x00\x20auth:alice",
    "prosody-auth": b"\x01auth:alice:example.org:" + TOKEN.encode() + b"\n",
    "prosody-lines": b"\x09isuser:alice:example.org\r\nauth:bob@example.org:example.org:"
                     + TOKEN2.encode() + b"\nauth::x:y\nauth:a\n" + b"x" * 10 + b"\nlast",
    "prosody-localpart": b"\x09auth:alice@example.net:example.net:" + TOKEN.encode() + b"\n",
    "saslauthd": b"\x02" + saslauthd("alice", TOKEN, "imap", "example.org"),
    "saslauthd-five": b"\x06" + saslauthd("alice@example.org", TOKEN2, "smtp", "", "192.0.2.1"),
    "saslauthd-fixed-service": b"\x0f" + saslauthd("Alice", TOKEN, "", "example.org"),
    "saslauthd-bad-service": b"\x02" + saslauthd("alice", TOKEN, "*", "example.org"),
    "saslauthd-no-domain": b"\x02" + saslauthd("alice", "x", "imap", ""),
})

FF = b"\xff"
PLAIN, OAUTH, RESPONSE, ABORT, PLAIN_RAW, OAUTH_RAW, OTHER, NOMECH = range(8)


def el(sel: int, payload: bytes = b"") -> bytes:
    return bytes([sel]) + payload


def bearer(gs2: str, tok: str, extra: str = "") -> bytes:
    return (gs2 + "\x01" + extra + "auth=Bearer " + tok + "\x01\x01").encode()


t = TOKEN.encode()
write("xmpp_sasl", {
    "plain": el(PLAIN, b"\x00alice\x00" + t),
    "plain-authzid": el(PLAIN, b"alice@example.org\x00Alice\x00" + t),
    "plain-other-authzid": el(PLAIN, b"bob@example.org\x00alice\x00" + t),
    "plain-other-domain": el(PLAIN, b"\x00alice@example.net\x00" + t),
    "plain-net": el(PLAIN | 8, b"\x00alice\x00" + TOKEN2.encode()),
    "plain-malformed": el(PLAIN, b"\x00alice\x00x") + FF + el(PLAIN, b"alice") + FF + el(PLAIN, b""),
    "oauth-user": el(OAUTH, bearer("n,a=alice@example.org,", TOKEN)),
    "oauth-no-user": el(OAUTH, bearer("n,,", TOKEN, "host=example.org\x01port=5222\x01")),
    "oauth-escaped": el(OAUTH, bearer("y,a=al=2Cice=3D,", "x")) + FF + el(RESPONSE, b"\x01"),
    "oauth-channel-binding": el(OAUTH, bearer("p=tls-unique,,", TOKEN)),
    "raw-b64": el(PLAIN_RAW, base64.b64encode(b"\x00alice\x00" + t)),
    "raw-bad-b64": el(PLAIN_RAW, b"AGFsaWNlAHg") + FF + el(OAUTH_RAW, b"=") + FF
                   + el(PLAIN_RAW, b"A=BC") + FF + el(PLAIN_RAW, b"AB=C====")
                   + FF + el(PLAIN_RAW, b"!!!!"),
    "other-mechanisms": el(OTHER, b"SCRAM-SHA-1") + FF + el(OTHER, b"plain") + FF + el(NOMECH),
    "abort-response": el(ABORT) + FF + el(RESPONSE, b"x") + FF + el(PLAIN, b"\x00alice\x00" + t),
    "attempt-cap": FF.join([el(PLAIN, b"\x00alice\x00bad")] * 6),
    "too-long": el(PLAIN, b"\x00alice\x00" + b"x" * 3100),
})
