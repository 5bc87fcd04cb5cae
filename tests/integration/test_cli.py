"""samlgw-token against a real, private Redis (see conftest.py)."""
import functools
import hashlib
import queue
import re
import subprocess
import threading
import time

import pytest

from conftest import (EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_USAGE, REDIS_TIMEOUT_MS,
                      SLOW, TOKEN_BIN, config_text)

TOKEN_RE = re.compile(r"^samlgw_[A-Za-z0-9_-]+$")
TOKEN_PREFIX = "samlgw_"
RANDOM_LEN = 43  # base64url of 32 random bytes, right after the prefix
REVOCATION_CHANNEL = "samlgw:revoked"


def issue(run, jid, *extra):
    """Issues a token and checks that stdout holds exactly it."""
    r = run(["issue", "--jid", jid] + list(extra))
    assert r.returncode == EXIT_OK, r.stderr
    lines = r.stdout.split("\n")
    assert len(lines) == 2 and lines[1] == "", "issue must print one line: %r" % r.stdout
    token = lines[0]
    assert TOKEN_RE.match(token), token
    assert 24 <= len(token) <= 64, token
    assert token not in r.stderr
    return token


def verify(run, jid, token, *extra, **kw):
    return run(["verify", "--jid", jid] + list(extra), input=token + "\n", **kw)


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def list_tokens(run, jid):
    r = run(["list", "--jid", jid])
    assert r.returncode == EXIT_OK, r.stderr
    return [line.split("\t") for line in r.stdout.splitlines()]


def assert_refused(r, *words):
    assert r.returncode == EXIT_REFUSED, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "a refusal must say why on stderr"
    for w in words:
        assert w in r.stderr.lower(), r.stderr


# 1 ------------------------------------------------------------------------------------------


def test_issue_verify_list_revoke(run):
    token = issue(run, "alice@example.org", "--label", "my laptop")

    r = verify(run, "alice@example.org", token)
    assert r.returncode == EXIT_OK, r.stderr

    rows = list_tokens(run, "alice@example.org")
    assert len(rows) == 1, rows
    row = rows[0]
    assert len(row) == 5, row
    tid, label, services, issued, expires = row
    assert re.fullmatch(r"[0-9a-f]{16}", tid), tid
    assert tid == token_hash(token)[:16]
    assert label == "my laptop"
    assert services == "xmpp"
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.fullmatch(stamp, issued) and re.fullmatch(stamp, expires), row
    assert issued < expires
    assert token not in run(["list", "--jid", "alice@example.org"]).stdout

    r = run(["revoke", "--jid", "alice@example.org", "--id", tid])
    assert r.returncode == EXIT_OK, r.stderr

    r = verify(run, "alice@example.org", token)
    assert_refused(r)
    assert list_tokens(run, "alice@example.org") == []


# 2 ------------------------------------------------------------------------------------------


def dump_value(redis, key):
    kind = redis.call("TYPE", key)
    if kind == "string":
        values = [redis.call("GET", key)]
    elif kind == "hash":
        values = redis.call("HGETALL", key)
    elif kind == "zset":
        values = redis.call("ZRANGE", key, "0", "-1", "WITHSCORES")
    elif kind == "set":
        values = redis.call("SMEMBERS", key)
    elif kind == "list":
        values = redis.call("LRANGE", key, "0", "-1")
    elif kind == "stream":
        values = [repr(redis.call("XRANGE", key, "-", "+")).encode()]
    else:
        pytest.fail("unexpected key type %s for %r" % (kind, key))
    # The serialised form too, in case a type above shows less than it holds.
    values.append(redis.call("DUMP", key))
    return kind, values


def test_no_token_text_in_redis(run, redis):
    tokens = []
    for i, jid in enumerate(["alice@example.org", "alice@example.org", "bob@example.org"]):
        tokens.append(issue(run, jid, "--label", "device %d" % i))
    tokens.append(issue(run, "carol@example.org", "--service", "xmpp,imap", "--uses", "2"))
    # Used once: its record now holds a use count; it must still hold no token text.
    assert verify(run, "carol@example.org", tokens[-1]).returncode == EXIT_OK

    keys = redis.keys()
    scanned = redis.cli("--scan")
    assert scanned.returncode == 0, scanned.stderr
    assert sorted(scanned.stdout.split()) == sorted(k.decode() for k in keys)

    blob = [scanned.stdout.encode()] + list(keys)
    types = {}
    for key in keys:
        kind, values = dump_value(redis, key)
        types[key] = kind
        blob.extend(v if isinstance(v, bytes) else str(v).encode() for v in values)
    everything = b"\n".join(blob)

    # The check looks at the right data: every token's hash and label is there.
    for t in tokens:
        assert ("samlgw:token:" + token_hash(t)).encode() in keys
    assert b"device 2" in everything
    assert types[b"samlgw:user:alice@example.org:tokens"] == "zset"

    for t in tokens:
        random_part = t[len(TOKEN_PREFIX):len(TOKEN_PREFIX) + RANDOM_LEN]
        assert len(random_part) == RANDOM_LEN
        assert t.encode() not in everything
        assert random_part.encode() not in everything
        assert t.encode().lower() not in everything.lower()


# 3 ------------------------------------------------------------------------------------------


def test_expired_token_fails_without_ttl(run, redis):
    token = issue(run, "alice@example.org", "--ttl", "2")
    key = "samlgw:token:" + token_hash(token)
    token_keys = [k.decode() for k in redis.keys() if k.startswith(b"samlgw:token:")]
    assert token_keys == [key]
    assert 0 < redis.call("TTL", key) <= 2
    assert redis.call("PERSIST", key) == 1
    assert redis.call("PERSIST", "samlgw:user:alice@example.org:tokens") == 1
    assert redis.call("TTL", key) == -1

    # Wait until Redis' own clock has passed the stored expiry, and no longer.
    expires = int(redis.call("HGET", key, "expires"))
    deadline = time.monotonic() + 10
    while int(redis.call("TIME")[0]) < expires:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert redis.call("EXISTS", key) == 1, "the record must still be there for this test"

    r = verify(run, "alice@example.org", token)
    assert_refused(r, "expired")
    assert list_tokens(run, "alice@example.org") == []


# 4 ------------------------------------------------------------------------------------------


def test_service_binding(run):
    jid = "alice@example.org"
    xmpp = issue(run, jid, "--service", "xmpp")
    assert_refused(verify(run, jid, xmpp, "--service", "imap"), "imap")
    assert verify(run, jid, xmpp, "--service", "xmpp").returncode == EXIT_OK
    assert verify(run, jid, xmpp).returncode == EXIT_OK  # default: first of token.services

    wildcard = issue(run, jid, "--service", "*")
    assert verify(run, jid, wildcard, "--service", "imap").returncode == EXIT_OK
    assert verify(run, jid, wildcard, "--service", "smtp").returncode == EXIT_OK

    multi = issue(run, jid, "--service", "xmpp,imap")
    assert verify(run, jid, multi, "--service", "xmpp").returncode == EXIT_OK
    assert verify(run, jid, multi, "--service", "imap").returncode == EXIT_OK
    assert_refused(verify(run, jid, multi, "--service", "smtp"), "smtp")


def test_verify_default_service(run, redis, tmp_path):
    """verify without --service checks the first of token.services (written loosely, it is
    still found); when the list holds * there is no default: a usage error."""
    jid = "alice@example.org"
    for services, default in (("IMAP , xmpp", "imap"), ("xmpp, *", None), ("*", None)):
        conf = tmp_path / ("services-%d.conf" % len(services))
        conf.write_text(config_text(redis.url).replace("services = xmpp",
                                                      "services = " + services))
        token = issue(run, jid, "--service", "*")
        r = verify(run, jid, token, config=conf)
        if default is None:
            assert r.returncode == EXIT_USAGE, (services, r.stdout, r.stderr)
            assert "--service is needed" in r.stderr
        else:
            assert r.returncode == EXIT_OK, (services, r.stderr)
        assert verify(run, jid, token, "--service", "smtp", config=conf).returncode == EXIT_OK


# 5 ------------------------------------------------------------------------------------------


def test_jid_binding(run):
    token = issue(run, "alice@example.org")
    assert_refused(verify(run, "bob@example.org", token))
    assert verify(run, "alice@example.org", token).returncode == EXIT_OK


def test_jid_case_normalised(run):
    token = issue(run, "Alice@Example.ORG")
    assert verify(run, "alice@example.org", token).returncode == EXIT_OK
    assert verify(run, "ALICE@EXAMPLE.ORG", token).returncode == EXIT_OK
    assert len(list_tokens(run, "alice@example.org")) == 1


# 6 ------------------------------------------------------------------------------------------


def test_single_use_sequential(run):
    token = issue(run, "alice@example.org", "--uses", "1")
    assert verify(run, "alice@example.org", token).returncode == EXIT_OK
    assert_refused(verify(run, "alice@example.org", token))


def concurrent_verify(config, jid, token, n):
    """Starts n verifiers at once, then feeds each the token; returns their results."""
    procs = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen(
                [TOKEN_BIN, "--config", str(config), "verify", "--jid", jid],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True))
        for p in procs:
            p.stdin.write(token + "\n")
            p.stdin.close()
        results = []
        for p in procs:
            # Their output is a line or two: it fits in the pipes, so waiting first is safe.
            p.wait(timeout=30)
            results.append((p.returncode, p.stdout.read(), p.stderr.read()))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdin, p.stdout, p.stderr):
                if f is not None and not f.closed:
                    f.close()


@pytest.mark.parametrize("uses", [1, 3])
def test_limited_uses_concurrent(run, config, uses):
    token = issue(run, "alice@example.org", "--uses", str(uses))
    results = concurrent_verify(config, "alice@example.org", token, 20)
    codes = [c for c, _, _ in results]
    assert codes.count(EXIT_OK) == uses, results
    assert codes.count(EXIT_REFUSED) == 20 - uses, results
    assert EXIT_UNAVAILABLE not in codes
    # Used up: nothing left.
    assert_refused(verify(run, "alice@example.org", token))


# 7 ------------------------------------------------------------------------------------------


def test_redis_down_then_back(run, redis):
    token = issue(run, "alice@example.org")
    redis.stop()

    start = time.monotonic()
    r = verify(run, "alice@example.org", token)
    elapsed = time.monotonic() - start
    assert r.returncode == EXIT_UNAVAILABLE, (r.returncode, r.stderr)
    assert "redis" in r.stderr.lower(), r.stderr
    assert r.stdout == ""
    assert elapsed < 3 * SLOW, elapsed

    r = run(["issue", "--jid", "alice@example.org"])
    assert r.returncode == EXIT_UNAVAILABLE, (r.returncode, r.stderr)
    assert r.stdout == "", "no token may be shown when it was not stored"

    redis.start()  # same socket path, empty (no persistence)
    r = verify(run, "alice@example.org", token)
    assert r.returncode in (EXIT_OK, EXIT_REFUSED), (r.returncode, r.stderr)
    if r.returncode == EXIT_REFUSED:
        token = issue(run, "alice@example.org")
    assert verify(run, "alice@example.org", token).returncode == EXIT_OK


def test_redis_hung(run, redis):
    token = issue(run, "alice@example.org")
    redis.pause()
    try:
        start = time.monotonic()
        r = verify(run, "alice@example.org", token)
        elapsed = time.monotonic() - start
    finally:
        redis.resume()
    assert r.returncode == EXIT_UNAVAILABLE, (r.returncode, r.stderr)
    assert "redis" in r.stderr.lower(), r.stderr
    assert REDIS_TIMEOUT_MS == 300
    assert elapsed < 3 * SLOW, elapsed
    # Resumed: the same configuration works again.
    assert verify(run, "alice@example.org", token).returncode == EXIT_OK


# 8 ------------------------------------------------------------------------------------------


def test_revoke_all(run):
    alice = [issue(run, "alice@example.org") for _ in range(3)]
    bob = issue(run, "bob@example.org")
    r = run(["revoke", "--jid", "alice@example.org", "--all"])
    assert r.returncode == EXIT_OK, r.stderr
    assert "3" in r.stdout, r.stdout
    for t in alice:
        assert_refused(verify(run, "alice@example.org", t))
    assert list_tokens(run, "alice@example.org") == []
    assert verify(run, "bob@example.org", bob).returncode == EXIT_OK
    assert len(list_tokens(run, "bob@example.org")) == 1


def test_revoke_unknown_id(run):
    issue(run, "alice@example.org")
    r = run(["revoke", "--jid", "alice@example.org", "--id", "0123456789abcdef"])
    assert_refused(r)
    assert len(list_tokens(run, "alice@example.org")) == 1


def test_revoke_other_users_id(run):
    token = issue(run, "alice@example.org")
    tid = token_hash(token)[:16]
    assert_refused(run(["revoke", "--jid", "bob@example.org", "--id", tid]))
    assert verify(run, "alice@example.org", token).returncode == EXIT_OK


def test_ttl_above_max_refused(run, redis):
    r = run(["issue", "--jid", "alice@example.org", "--ttl", "7776001"])
    assert r.returncode == EXIT_USAGE, (r.returncode, r.stderr)
    assert "max_ttl" in r.stderr
    assert r.stdout == ""
    assert redis.keys() == []


@pytest.mark.parametrize("jid", ["alice", "a@b/c", "@example.org", "alice@", ""])
def test_bad_jid(run, jid):
    for args in (["issue", "--jid", jid], ["list", "--jid", jid]):
        r = run(args)
        assert r.returncode == EXIT_USAGE, (args, r.returncode, r.stderr)
        assert r.stdout == ""
        assert r.stderr.strip()


@pytest.mark.parametrize("args", [
    ["frobnicate", "--jid", "alice@example.org"],
    ["issue", "--jid", "alice@example.org", "--frob"],
    ["issue", "--jid", "alice@example.org", "--uses"],
    ["verify", "--jid", "alice@example.org", "--ttl", "60"],
    ["revoke", "--jid", "alice@example.org"],
    ["revoke", "--jid", "alice@example.org", "--all", "--id", "0123456789abcdef"],
    ["revoke", "--jid", "alice@example.org", "--id", "0123abcd"],
    ["revoke", "--jid", "alice@example.org", "--id", "0123456789ABCDEF"],
    ["issue"],
    [],
], ids=["unknown-command", "unknown-option", "missing-value", "option-not-taken",
        "revoke-neither", "revoke-both", "short-id", "uppercase-id", "no-jid", "no-command"])
def test_usage_errors(run, args):
    r = run(args)
    assert r.returncode == EXIT_USAGE, (args, r.returncode, r.stderr)
    assert r.stdout == ""
    assert r.stderr.strip()


def test_malformed_token_needs_no_redis(run, redis):
    good = issue(run, "alice@example.org")
    flipped = good[:20] + ("A" if good[20] != "A" else "B") + good[21:]
    redis.stop()
    for bad in ["samlgw_xyz", "not a token at all", good[:-1], good + "A", flipped,
                good.replace("samlgw_", "samlgx_")]:
        r = verify(run, "alice@example.org", bad)
        assert r.returncode == EXIT_REFUSED, (bad, r.returncode, r.stderr)
        assert r.stderr.strip()
    # The well-formed one does need Redis.
    assert verify(run, "alice@example.org", good).returncode == EXIT_UNAVAILABLE


# 9 ------------------------------------------------------------------------------------------


def test_max_per_user(run, make_config):
    conf = make_config(token_extra="max_per_user = 3\n")
    run_conf = functools.partial(run, config=conf)
    jid = "alice@example.org"
    tokens = [issue(run_conf, jid) for _ in range(3)]

    r = run(["issue", "--jid", jid], config=conf)
    assert_refused(r, "max_per_user")
    assert r.stdout == ""
    assert len(list_tokens(run, jid)) == 3

    # Another user is not affected.
    issue(run_conf, "bob@example.org")

    tid = token_hash(tokens[0])[:16]
    assert run(["revoke", "--jid", jid, "--id", tid], config=conf).returncode == EXIT_OK
    issue(run_conf, jid)
    r = run(["issue", "--jid", jid], config=conf)
    assert_refused(r, "max_per_user")


# 10 -----------------------------------------------------------------------------------------


class Subscriber:
    """redis-cli SUBSCRIBE in the background; lines arrive on a queue."""

    def __init__(self, redis, channel):
        self.proc = subprocess.Popen(
            ["redis-cli", "-s", str(redis.socket), "SUBSCRIBE", channel],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        self.lines = queue.Queue()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next(self, timeout=5):
        line = self.lines.get(timeout=timeout)
        assert line is not None, "redis-cli ended: %s" % self.proc.stderr.read()
        return line

    def messages(self, count, timeout=5):
        """The next count published payloads (after the subscribe confirmation)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            kind = self.next(max(0.1, deadline - time.monotonic()))
            if kind == "message":
                self.next()  # channel
                out.append(self.next())
            elif kind == "subscribe":
                self.next()
                self.next()
        return out

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()


def wait_subscribed(redis, channel):
    deadline = time.monotonic() + 5
    while redis.call("PUBSUB", "NUMSUB", channel)[1] < 1:
        assert time.monotonic() < deadline, "the subscriber never subscribed"
        time.sleep(0.01)


def test_revocation_published(run, redis):
    token = issue(run, "alice@example.org")
    others = [issue(run, "bob@example.org") for _ in range(2)]
    sub = Subscriber(redis, REVOCATION_CHANNEL)
    try:
        wait_subscribed(redis, REVOCATION_CHANNEL)
        tid = list_tokens(run, "alice@example.org")[0][0]
        r = run(["revoke", "--jid", "alice@example.org", "--id", tid])
        assert r.returncode == EXIT_OK, r.stderr
        (msg,) = sub.messages(1)
        assert re.fullmatch(r"[0-9a-f]{64}", msg), msg
        assert msg == token_hash(token)
        assert msg[:16] == tid

        r = run(["revoke", "--jid", "bob@example.org", "--all"])
        assert r.returncode == EXIT_OK, r.stderr
        assert sorted(sub.messages(2)) == sorted(token_hash(t) for t in others)
    finally:
        sub.close()
