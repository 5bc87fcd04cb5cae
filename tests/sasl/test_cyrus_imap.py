"""End to end in a real mail server: Debian's Cyrus IMAP, started here on a free loopback
port with its configuration and spool in a temporary folder, logs alice in with PLAIN
through samlgw-authd (pwcheck_method: saslauthd) and with OAUTHBEARER and XOAUTH2 through
the plugin (found via SASL_PATH in the build folder), and refuses a revoked token. curl is
the IMAP client."""
import grp
import os
import pwd
import signal
import socket
import subprocess
import time

import pytest

from conftest import PLUGIN_DIR, SYSTEM_PLUGIN_DIR, TIMEOUT, host_env

MASTER = "/usr/lib/cyrus/bin/master"
CTL_CYRUSDB = "/usr/lib/cyrus/bin/ctl_cyrusdb"
ALICE = "alice@example.org"
CURL_LOGIN_DENIED = 67


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cyrus:
    def __init__(self, workdir, redis, authd_socket):
        self.dir = workdir / "cyrus"
        self.port = free_port()
        self.proc = None
        for sub in ("conf", "spool", "run"):
            (self.dir / sub).mkdir(parents=True)
        cyrus = pwd.getpwnam("cyrus")
        for root, dirs, _ in os.walk(self.dir):
            os.chown(root, cyrus.pw_uid, cyrus.pw_gid)
        self.imapd_conf = self.dir / "imapd.conf"
        self.imapd_conf.write_text("\n".join([
            "configdirectory: %s/conf" % self.dir,
            "partition-default: %s/spool" % self.dir,
            "servername: mail.example.org",
            "admins: cyrus",
            "allowplaintext: yes",
            "failedloginpause: 0",
            "virtdomains: off",
            "lmtpsocket: %s/run/lmtp" % self.dir,
            "idlesocket: %s/run/idle" % self.dir,
            "notifysocket: %s/run/notify" % self.dir,
            "sasl_mech_list: PLAIN OAUTHBEARER XOAUTH2",
            "sasl_pwcheck_method: saslauthd",
            "sasl_saslauthd_path: %s" % authd_socket,
            "sasl_samlgw_redis: %s" % redis.url,
            "sasl_samlgw_username: localpart",
            "sasl_samlgw_domain: example.org",
            ""]))
        self.cyrus_conf = self.dir / "cyrus.conf"
        self.cyrus_conf.write_text(
            "START {\n}\n"
            "SERVICES {\n  imap cmd=\"imapd -C %s\" listen=\"127.0.0.1:%d\" prefork=0\n}\n"
            "EVENTS {\n}\nDAEMON {\n}\n" % (self.imapd_conf, self.port))
        self.log = self.dir / "master.log"

    def start(self):
        # The database recovery Cyrus runs at START is run here instead, outside the
        # sanitizer preload of the asan setup (Cyrus's own tools hang under it); only the
        # processes that load the plugin need it.
        r = subprocess.run([CTL_CYRUSDB, "-r", "-C", str(self.imapd_conf)], capture_output=True,
                           text=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        env = host_env({"SASL_PATH": "%s:%s" % (PLUGIN_DIR, SYSTEM_PLUGIN_DIR)})
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [MASTER, "-C", str(self.imapd_conf), "-M", str(self.cyrus_conf),
                 "-p", str(self.dir / "run" / "master.pid"), "-D"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("cyrus master exited: " + self.log.read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    if s.recv(200).startswith(b"* OK"):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("Cyrus IMAP did not answer on port %d:\n%s" % (self.port, self.log.read_text()))

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # master and the imapd processes it forked share the session started above.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.killpg(proc.pid, signal.SIGKILL)

    def curl(self, *args):
        return subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args) +
                              ["imap://127.0.0.1:%d/" % self.port if "--oauth2-bearer" not in args
                               else "imap://alice@127.0.0.1:%d/" % self.port],
                              capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture
def cyrus(workdir, redis, authd_factory):
    if os.geteuid() != 0:
        pytest.fail("the Cyrus IMAP test starts cyrus-imapd's master as root")
    # imapd runs as user cyrus (group mail): the socket (mode 0660) is given to that group,
    # as a deployment gives it to the group of the services that check tokens.
    group = grp.getgrgid(pwd.getpwnam("cyrus").pw_gid).gr_name
    authd = authd_factory("--username", "localpart", "--domain", "example.org",
                          "--socket-group", group)
    server = Cyrus(workdir, redis, authd.socket)
    try:
        yield server.start()
    finally:
        server.stop()


def test_cyrus_imap_logins(cyrus, tokens):
    token = tokens.issue(ALICE, services="imap")
    plain = cyrus.curl("--login-options", "AUTH=PLAIN", "-u", "alice:" + token)
    assert plain.returncode == 0, plain.stderr
    bearer = cyrus.curl("--oauth2-bearer", token)
    assert bearer.returncode == 0, bearer.stderr
    xoauth2 = cyrus.curl("--login-options", "AUTH=XOAUTH2", "--oauth2-bearer", token)
    assert xoauth2.returncode == 0, xoauth2.stderr

    # Not for IMAP, not alice's, then revoked: all refused, by both paths.
    smtp_only = tokens.issue(ALICE, services="smtp")
    assert cyrus.curl("--oauth2-bearer", smtp_only).returncode == CURL_LOGIN_DENIED
    bob = tokens.issue("bob@example.org", services="imap")
    assert cyrus.curl("--login-options", "AUTH=PLAIN", "-u", "alice:" + bob).returncode == \
        CURL_LOGIN_DENIED
    tokens.revoke_all(ALICE)
    assert cyrus.curl("--oauth2-bearer", token).returncode == CURL_LOGIN_DENIED
    assert cyrus.curl("--login-options", "AUTH=PLAIN", "-u", "alice:" + token).returncode == \
        CURL_LOGIN_DENIED
