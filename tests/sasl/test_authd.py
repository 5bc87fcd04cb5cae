"""samlgw-authd: the saslauthd protocol (Debian's testsaslauthd and raw requests), many
clients at once, and the ejabberd extauth and Prosody mod_auth_external protocols."""
import grp
import os
import pwd
import socket
import stat
import struct
import subprocess
import threading
import time

import pytest

from conftest import AS_USER, AUTHD, RUN_AS, SLOW, TIMEOUT

ALICE = "alice@example.org"


def run_testsaslauthd(authd, user, password, service="imap", realm=None):
    args = ["testsaslauthd", "-f", str(authd.socket), "-u", user, "-p", password, "-s", service]
    if realm is not None:
        args += ["-r", realm]
    r = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    return r.stdout.strip()


def test_testsaslauthd(authd_factory, tokens):
    authd = authd_factory()
    token = tokens.issue(ALICE, services="imap,smtp")
    assert run_testsaslauthd(authd, ALICE, token) == '0: OK "Success."'
    assert run_testsaslauthd(authd, ALICE, token, service="smtp") == '0: OK "Success."'
    # The realm completes a bare localpart, as libsasl2 splits user@realm.
    assert run_testsaslauthd(authd, "alice", token, realm="example.org") == '0: OK "Success."'
    # Invalid token, wrong user, wrong service, no domain at all.
    assert run_testsaslauthd(authd, ALICE, "samlgw_nope").startswith("0: NO")
    assert run_testsaslauthd(authd, "bob@example.org", token).startswith("0: NO")
    assert run_testsaslauthd(authd, ALICE, token, service="ldap").startswith("0: NO")
    assert run_testsaslauthd(authd, "alice", token).startswith("0: NO")
    tokens.revoke_all(ALICE)
    assert run_testsaslauthd(authd, ALICE, token).startswith("0: NO")
    log = authd.log.read_text()
    assert token not in log
    assert "result=refused" in log and "the token is not valid for service ldap" in log


def test_socket_mode_and_group(authd_factory):
    # Only the socket's group may connect: never a socket any local user can reach.
    authd = authd_factory()
    assert stat.S_IMODE(os.stat(authd.socket).st_mode) == 0o660
    authd.stop()
    authd = authd_factory("--socket-group", "mail")
    st = os.stat(authd.socket)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == grp.getgrnam("mail").gr_gid


def test_service_override_and_domain(authd_factory, tokens):
    authd = authd_factory("--service", "imap", "--domain", "example.org")
    token = tokens.issue(ALICE, services="imap")
    # Whatever service the client names, imap is checked; bare names get the domain.
    assert run_testsaslauthd(authd, "alice", token, service="smtp") == '0: OK "Success."'


def test_localpart_mode_refuses_other_domains(authd_factory, tokens):
    authd = authd_factory("--username", "localpart", "--domain", "example.org")
    other = tokens.issue("alice@other.org", services="imap")
    assert run_testsaslauthd(authd, "alice", other, realm="other.org").startswith("0: NO")
    mine = tokens.issue(ALICE, services="imap")
    assert run_testsaslauthd(authd, "alice", mine) == '0: OK "Success."'


def test_five_field_request_and_bad_requests(authd_factory, tokens):
    authd = authd_factory()
    token = tokens.issue(ALICE, services="imap")
    # Newer libsasl2 sends the client's address as a fifth field.
    assert authd.request("alice", token, "imap", "example.org", "127.0.0.1;143") == "OK"
    assert authd.request("alice", token, "IMAP", "example.org") == "OK"
    assert authd.request("alice", token, "*", "example.org").startswith("NO")
    # Oversized field: the connection is closed without an answer; the daemon lives on.
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(authd.socket))
        s.sendall(b"\xff\xff" + b"a" * 100)
        assert s.recv(10) == b""
    assert authd.request("alice", token, "imap", "example.org") == "OK"


def test_many_clients_at_once(authd_factory, tokens):
    authd = authd_factory("--threads", "4")
    token = tokens.issue(ALICE, services="imap")
    # Three clients connect and say nothing: each holds a worker until the 5-second
    # request timeout. A server answering one client at a time would make everyone else
    # wait those 15 seconds; with 4 workers the 16 clients below are served meanwhile.
    idle = []
    for _ in range(3):
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(authd.socket))
        idle.append(s)
    results = []
    lock = threading.Lock()

    def client():
        for _ in range(10):
            r = authd.request("alice", token, "imap", "example.org")
            with lock:
                results.append(r)

    threads = [threading.Thread(target=client) for _ in range(16)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - started
    assert results == ["OK"] * 160
    assert elapsed < 4.5, elapsed
    # The idle clients are dropped after the timeout, without an answer.
    for s in idle:
        s.settimeout(10)
        assert s.recv(10) == b""
        s.close()
    assert "no complete request in time" in authd.log.read_text()


def connect_stalled(authd, first=b""):
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(authd.socket))
    if first:
        s.sendall(first)
    return s


def timed_request(authd, token):
    started = time.monotonic()
    r = authd.request("alice", token, "imap", "example.org")
    return r, time.monotonic() - started


def test_stalled_clients_hold_no_worker(authd_factory, tokens):
    # Two workers; twenty clients that connect and say nothing, and ten that send their
    # request a byte at a time. Others are still answered at once: reading a request
    # takes no worker, only answering a complete one does.
    authd = authd_factory("--threads", "2")
    token = tokens.issue(ALICE, services="imap")
    silent = [connect_stalled(authd) for _ in range(20)]
    request = struct.pack(">H", 5) + b"alice"
    trickle = [connect_stalled(authd, request[:1]) for _ in range(10)]
    stop = threading.Event()

    def drip():
        for i in range(1, len(request)):
            if stop.wait(0.4):
                return
            for s in trickle:
                try:
                    s.send(request[i:i + 1])
                except OSError:
                    pass

    dripper = threading.Thread(target=drip)
    dripper.start()
    try:
        time.sleep(0.3)
        for _ in range(20):
            r, took = timed_request(authd, token)
            assert r == "OK"
            assert took < 1.0 * SLOW, took
    finally:
        stop.set()
        dripper.join()
    # Each stalled client is dropped once its 5 seconds are up, without an answer.
    started = time.monotonic()
    for s in silent + trickle:
        s.settimeout(10)
        assert s.recv(10) == b""
        s.close()
    assert time.monotonic() - started < 7
    assert "no complete request in time" in authd.log.read_text()


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_connection_cap(authd_factory, tokens):
    # More stalled connections than the cap (256): the oldest unfinished ones are dropped
    # to make room, so the daemon's descriptors stay bounded and new clients are served.
    authd = authd_factory("--threads", "2")
    token = tokens.issue(ALICE, services="imap")
    base = open_fds(authd.proc.pid)
    stalled = [connect_stalled(authd) for _ in range(300)]
    try:
        r, took = timed_request(authd, token)
        assert r == "OK"
        assert took < 1.0 * SLOW, took
        # (valgrind opens descriptors of its own in the same process as it goes)
        assert open_fds(authd.proc.pid) <= base + 256 + (16 if SLOW > 1 else 0)
        # The first ones in were the first pushed out: closed without an answer.
        for s in stalled[:40]:
            s.settimeout(2)
            assert s.recv(10) == b""
    finally:
        for s in stalled:
            s.close()
    assert "too many connections" in authd.log.read_text()


def test_redis_down_and_back(authd_factory, tokens, redis):
    authd = authd_factory()
    token = tokens.issue(ALICE, services="imap")
    redis.stop()
    r = authd.request(ALICE, token, "imap", "")
    assert r.startswith("NO") and "unavailable" in r
    redis.start()
    token = tokens.issue(ALICE, services="imap")
    assert authd.request(ALICE, token, "imap", "") == "OK"


def test_sigterm_stops_and_removes_the_socket(authd_factory):
    authd = authd_factory()
    assert authd.stop() == 0
    assert not authd.socket.exists()
    assert "event=stopped" in authd.log.read_text()


def test_refuses_a_socket_in_use(authd_factory, config, workdir):
    authd = authd_factory()
    r = subprocess.run(AUTHD + ["--config", str(config), "--socket", str(authd.socket)] +
                       AS_USER, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 1
    assert "another process is listening" in r.stderr


def test_usage_and_config_errors(workdir):
    r = subprocess.run(AUTHD + ["--protocol", "imap"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 64
    bad = workdir / "bad.conf"
    bad.write_text("[redis]\nurl = nowhere\n")
    r = subprocess.run(AUTHD + ["--config", str(bad)] + AS_USER, capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 78
    assert "bad.conf:2:" in r.stderr


def ejabberd_frame(text):
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def test_ejabberd_extauth(config, tokens):
    token = tokens.issue(ALICE, services="xmpp")
    requests = [
        "auth:alice:example.org:" + token,
        "auth:bob:example.org:" + token,
        "isuser:alice:example.org",
        "isuser:nobody:example.org",
        "setpass:alice:example.org:x",
        "garbage",
    ]
    r = subprocess.run(AUTHD + ["--config", str(config), "--protocol", "ejabberd"] + AS_USER,
                       input=b"".join(ejabberd_frame(x) for x in requests),
                       capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    answers = [r.stdout[i:i + 4] for i in range(0, len(r.stdout), 4)]
    assert answers == [b"\0\x02\0\x01", b"\0\x02\0\0", b"\0\x02\0\x01", b"\0\x02\0\0",
                       b"\0\x02\0\0", b"\0\x02\0\0"]
    assert token.encode() not in r.stderr


def test_ejabberd_truncated_input_fails(config):
    r = subprocess.run(AUTHD + ["--config", str(config), "--protocol", "ejabberd"] + AS_USER,
                       input=b"\x00\x10auth", capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 1


def test_prosody_external(config, tokens):
    token = tokens.issue(ALICE, services="xmpp")
    smtp_only = tokens.issue("carol@example.org", services="smtp")
    lines = [
        "auth:alice:example.org:" + token,
        "auth:alice:example.org:samlgw_wrong",
        "auth:carol:example.org:" + smtp_only,
        "isuser:alice:example.org",
        "x" * 5000,
        "tryregister:new:example.org:pw",
        "auth:alice:example.org:" + token + "\r",
    ]
    r = subprocess.run(AUTHD + ["--config", str(config), "--protocol", "prosody"] + AS_USER,
                       input="".join(l + "\n" for l in lines), capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["1", "0", "0", "1", "0", "0", "1"]


def proc_ids(pid):
    """Real, effective, saved and filesystem uids and gids, and the groups of a process."""
    status = open("/proc/%d/status" % pid).read().splitlines()
    field = {l.split(":")[0]: l.split(":")[1].split() for l in status if ":" in l}
    return ([int(x) for x in field["Uid"]], [int(x) for x in field["Gid"]],
            sorted(int(x) for x in field["Groups"]))


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="starts samlgw-authd as root")


@needs_root
@pytest.mark.parametrize("protocol", ["saslauthd", "prosody"])
def test_root_without_user_refuses_to_run(config, workdir, protocol):
    args = AUTHD + ["--config", str(config), "--protocol", protocol]
    if protocol == "saslauthd":
        args += ["--socket", str(workdir / "root.sock")]
    r = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 64, r
    assert "refusing to run as root" in r.stderr and "--user NAME" in r.stderr
    assert not (workdir / "root.sock").exists()


@needs_root
def test_root_drops_to_the_user_after_binding(authd_factory, tokens):
    authd = authd_factory()  # as root, with --user nobody (conftest)
    pw = pwd.getpwnam(RUN_AS)
    # The socket answers as soon as it listens; the switch follows right after.
    deadline = time.monotonic() + 2 * SLOW
    while proc_ids(authd.proc.pid)[0][0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    uids, gids, groups = proc_ids(authd.proc.pid)
    assert uids == [pw.pw_uid] * 4
    assert gids == [pw.pw_gid] * 4
    assert 0 not in groups
    assert groups == sorted({pw.pw_gid} | {g.gr_gid for g in grp.getgrall()
                                            if RUN_AS in g.gr_mem})
    # The socket was made as root before the drop; it still answers.
    token = tokens.issue(ALICE, services="imap")
    assert authd.request(ALICE, token, "imap", "") == "OK"
    assert authd.stop() == 0
    assert not authd.socket.exists()


@needs_root
def test_user_errors(config, workdir):
    r = subprocess.run(AUTHD + ["--config", str(config), "--protocol", "prosody",
                        "--user", "no-such-user-here"], capture_output=True, text=True,
                       timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "no such user" in r.stderr, r
    # Without root, --user can only name the user it already runs as.
    base = ["setpriv", "--reuid", RUN_AS, "--regid", str(pwd.getpwnam(RUN_AS).pw_gid),
            "--clear-groups"] + AUTHD + ["--config", str(config), "--protocol", "prosody"]
    r = subprocess.run(base + ["--user", "root"], capture_output=True, text=True,
                       timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert r.returncode == 64 and "only root can become another user" in r.stderr, r
    r = subprocess.run(base + ["--user", RUN_AS], capture_output=True, text=True,
                       timeout=TIMEOUT, input="isuser:alice:example.org\n")
    assert r.returncode == 0, r
    assert r.stdout == "0\n"
    r = subprocess.run(base, capture_output=True, text=True, timeout=TIMEOUT,
                       input="isuser:alice:example.org\n")
    assert r.returncode == 0, r
