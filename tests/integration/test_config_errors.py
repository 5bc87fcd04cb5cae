"""Broken configuration files: every problem reported as FILE:LINE: message, in line order,
and nothing starts (issue exits 78 and shows no token; check exits 1)."""
import functools
import os
import re
import subprocess
import textwrap

import pytest

import conftest
from conftest import EXIT_CONFIG, EXIT_OK, TOKEN_BIN

# samlgw-token runs here as it is, also in the valgrind setup: what these cases drive is
# the configuration loader, which runs under valgrind in tests/unit/test_config.c and the
# config fuzz corpus (a hundred more valgrind starts would add minutes, not coverage).
run_cli = functools.partial(conftest.run_cli, wrap=False)

PROBLEM_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<msg>.+)$")


def write(tmp_path, text, name="samlgw.conf"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems(path, stderr):
    """The FILE:LINE: message lines of stderr as (line, message); checks the file name and
    that nothing else but the closing summary is there."""
    out = []
    lines = stderr.splitlines()
    assert lines, "no problem reported"
    assert lines[-1].startswith("samlgw-token: ") and str(path) in lines[-1], lines[-1]
    for text in lines[:-1]:
        m = PROBLEM_RE.match(text)
        assert m, "not FILE:LINE: message: %r" % text
        assert m.group("file") == str(path), text
        out.append((int(m.group("line")), m.group("msg")))
    n = len(out)
    assert lines[-1] == "samlgw-token: %d problem%s in %s" % (n, "" if n == 1 else "s", path)
    return out


def assert_broken(path, redis=None):
    """check exits 1 and lists the problems; issue exits 78, prints no token, writes nothing."""
    chk = run_cli(path, ["check"])
    assert chk.returncode == 1, (chk.returncode, chk.stdout, chk.stderr)
    assert chk.stdout == ""
    found = problems(path, chk.stderr)
    assert [ln for ln, _ in found] == sorted(ln for ln, _ in found), "not in line order"

    same = run_cli(path, ["--check"])
    assert same.returncode == 1 and same.stderr == chk.stderr

    for args in (["issue", "--jid", "alice@example.org"],
                 ["list", "--jid", "alice@example.org"],
                 ["revoke", "--jid", "alice@example.org", "--all"]):
        r = run_cli(path, args)
        assert r.returncode == EXIT_CONFIG, (args, r.returncode, r.stderr)
        assert r.stdout == "", "nothing may be printed on stdout: %r" % r.stdout
        assert problems(path, r.stderr) == found
    r = run_cli(path, ["verify", "--jid", "alice@example.org"],
                input="samlgw_" + "A" * 49 + "\n")
    assert r.returncode == EXIT_CONFIG
    if redis is not None:
        assert redis.keys() == [], "a broken configuration must not touch the store"
    return found


def test_every_problem_with_its_line(tmp_path, redis):
    path = write(tmp_path, """
        level = debug
        ; a comment, then a blank line

        [redis]
        url = %s
        timeout_ms = fast
        prefix = samlgw:
        prefix = other:
        colour = blue
        this line is not a setting

        [tokn]
        services = xmpp

        [token]
        max_per_user = 0
        default_ttl = 2h
        max_ttl = 1h
        services = xmpp

        [domain]
        cert = a.pem
        [domain example.org]
        cert = certs/example.org.pem
        [domain example.org]
        key = certs/example.org.key
        """ % redis.url)
    found = assert_broken(path, redis)
    expected = [
        (1, ["'level'", "outside any [section]"]),
        (6, ["[redis] timeout_ms", "whole number"]),
        (8, ["[redis] prefix", "already set on line 7"]),
        (9, ["unknown key 'colour'", "[redis]"]),
        (10, ["expected 'key = value' or '[section]'"]),
        (12, ["unknown section [tokn]", "did you mean [token]"]),
        (16, ["[token] max_per_user", "from 1 to 10000"]),
        (17, ["default_ttl (7200)", "max_ttl (3600)"]),
        (21, ["[domain] needs a name"]),
        (25, ["[domain example.org]", "already defined on line 23"]),
    ]
    assert [ln for ln, _ in found] == [ln for ln, _ in expected], found
    for (ln, msg), (_, words) in zip(found, expected):
        for w in words:
            assert w in msg, (ln, msg, w)


# One problem per file: (the file, the line it is on, words its message holds).
SINGLE = {
    "unknown_section": ("[redis]\nurl = {url}\n\n[tokn]\nservices = xmpp\n", 4,
                        ["unknown section [tokn]", "(did you mean [token]?)"]),
    "unknown_section_far": ("[frobnicator]\n", 1, ["unknown section [frobnicator]"]),
    "unknown_key": ("[redis]\nurl = {url}\ncolour = blue\n", 3,
                    ["unknown key 'colour' in [redis]"]),
    "misspelt_key": ("[redis]\nurl = {url}\ntimout_ms = 300\n", 3,
                     ["unknown key 'timout_ms'", "did you mean 'timeout_ms'"]),
    "unknown_domain_key": ("[redis]\nurl = {url}\n[domain example.org]\ncertificate = x\n", 4,
                           ["unknown key 'certificate' in [domain example.org]"]),
    "bad_number": ("[redis]\nurl = {url}\ntimeout_ms = 3OO\n", 3,
                   ["[redis] timeout_ms", "whole number"]),
    "bad_duration": ("[redis]\nurl = {url}\n[token]\ndefault_ttl = 5x\n", 4,
                     ["[token] default_ttl"]),
    "out_of_range_low": ("[redis]\nurl = {url}\ntimeout_ms = 5\n", 3,
                         ["[redis] timeout_ms", "from 10 to 60000"]),
    "out_of_range_high": ("[redis]\nurl = {url}\n[token]\nmax_per_user = 10001\n", 4,
                          ["[token] max_per_user", "from 1 to 10000"]),
    "duplicate_key": ("[redis]\nurl = {url}\n\n[token]\nservices = xmpp\n\nservices = imap\n",
                      7, ["[token] services", "already set on line 5"]),
    "not_key_value": ("[redis]\nurl = {url}\njust some words\n", 3,
                      ["expected 'key = value' or '[section]'"]),
    "key_before_section": ("timeout_ms = 300\n[redis]\nurl = {url}\n", 1,
                           ["'timeout_ms' is outside any [section]"]),
    "domain_without_name": ("[redis]\nurl = {url}\n[domain]\n", 3,
                            ["[domain] needs a name"]),
    "duplicate_domain": ("[redis]\nurl = {url}\n[domain example.org]\n[domain example.net]\n"
                         "[domain example.org]\n", 5,
                         ["[domain example.org]", "already defined on line 3"]),
    "bad_domain_name": ("[redis]\nurl = {url}\n[domain Bad_Domain!]\n", 3, ["[domain"]),
    "invalid_redis_url": ("[redis]\nurl = http://127.0.0.1:6379\n", 2, ["[redis] url"]),
    "relative_unix_socket": ("[redis]\nurl = unix://redis.sock\n", 2,
                             ["[redis] url", "absolute"]),
    "rediss_refused": ("[redis]\nurl = rediss://127.0.0.1:6380\n", 2,
                       ["[redis] url", "rediss://"]),
    "empty_value": ("[redis]\nurl =\n", 2, ["[redis] url", "no value"]),
    "bad_services": ("[redis]\nurl = {url}\n[token]\nservices = XMPP!\n", 4,
                     ["[token] services"]),
    "bad_log_level": ("[log]\nlevel = loud\n[redis]\nurl = {url}\n", 2, ["[log] level"]),
    "bad_bool": ("[log]\nsyslog = maybe\n[redis]\nurl = {url}\n", 2,
                 ["[log] syslog", "yes or no"]),
    "default_ttl_above_max": ("[redis]\nurl = {url}\n[token]\nmax_ttl = 2h\n"
                              "default_ttl = 3h\n", 5,
                              ["default_ttl (10800)", "longer than max_ttl (7200)"]),
    "default_ttl_above_default_max": ("[redis]\nurl = {url}\n[token]\ndefault_ttl = 13w\n",
                                      4, ["default_ttl", "max_ttl (7776000)"]),
    "unclosed_section": ("[redis\nurl = {url}\n", 1, ["']'"]),
}


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_single_problem(tmp_path, redis, name):
    text, line, words = SINGLE[name]
    path = tmp_path / "samlgw.conf"
    path.write_text(text.replace("{url}", redis.url))
    found = assert_broken(path, redis)
    assert len(found) == 1, found
    ln, msg = found[0]
    assert ln == line, (ln, msg)
    for w in words:
        assert w in msg, (msg, w)


def valid_text(url):
    return textwrap.dedent("""
        ; every section of the shared file, everything right
        [log]
        level = warn
        syslog = no

        [redis]
        url = %s
        prefix = samlgw:
        timeout_ms = 300

        [token]
        default_ttl = 1h
        max_ttl = 90d
        services = xmpp, imap
        max_per_user = 10

        [http]
        listen = 127.0.0.1:8080
        public_url = https://chat.example.org

        [saml]
        entity_id = https://chat.example.org/saml/metadata
        key = sp-key.pem
        cert = sp-cert.pem
        idp_metadata = idp.xml

        [xmpp]
        listen = 127.0.0.1:5222
        listen_tls = none

        [domain example.org]
        cert = certs/example.org.pem
        key = certs/example.org.key
        idp = https://idp.example.org/idp/shibboleth
        scope = example.org

        [domain example.net]
        cert = ../elsewhere/example.net.pem
        key = example.net.key
        """).lstrip("\n") % url


def test_valid_config_passes(tmp_path, redis):
    """The combined file with every problem fixed; its relative certificate paths name files
    that do not exist, which samlgw-token does not need."""
    path = tmp_path / "samlgw.conf"
    path.write_text(valid_text(redis.url))
    assert not (tmp_path / "certs").exists()
    r = run_cli(path, ["check"])
    assert r.returncode == EXIT_OK, r.stderr
    assert r.stderr == ""
    assert r.stdout == "%s: no problems\n" % path
    r = run_cli(path, ["--check"])
    assert r.returncode == EXIT_OK, r.stderr

    # And it is used: the default services come from it.
    r = run_cli(path, ["issue", "--jid", "alice@example.org"])
    assert r.returncode == EXIT_OK, r.stderr
    token = r.stdout.strip()
    r = run_cli(path, ["verify", "--jid", "alice@example.org", "--service", "imap"],
                input=token + "\n")
    assert r.returncode == EXIT_OK, r.stderr


def test_relative_paths_from_another_directory(tmp_path, redis):
    """check from another working directory, with a relative --config path."""
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    (conf_dir / "samlgw.conf").write_text(valid_text(redis.url))
    other = tmp_path / "elsewhere"
    other.mkdir()
    r = subprocess.run([TOKEN_BIN, "--config", "../etc/samlgw.conf", "check"], cwd=str(other),
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == EXIT_OK, r.stderr


def test_missing_config_file(tmp_path):
    path = tmp_path / "nowhere" / "samlgw.conf"
    r = run_cli(path, ["check"])
    assert r.returncode == 1
    assert str(path) in r.stderr and "cannot read" in r.stderr, r.stderr
    for args in (["issue", "--jid", "alice@example.org"], ["list", "--jid", "alice@example.org"]):
        r = run_cli(path, args)
        assert r.returncode == EXIT_CONFIG, (r.returncode, r.stderr)
        assert r.stdout == ""
        assert str(path) in r.stderr and "cannot read" in r.stderr, r.stderr


def test_config_from_environment(tmp_path, redis):
    """Without --config, $SAMLGW_CONFIG names the file."""
    bad = tmp_path / "bad.conf"
    bad.write_text("[tokn]\n")
    env = dict(os.environ, SAMLGW_CONFIG=str(bad))
    r = subprocess.run([TOKEN_BIN, "check"], env=env, capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert r.stderr.startswith("%s:1: unknown section [tokn]" % bad), r.stderr
