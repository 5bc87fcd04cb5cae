"""samlgw refuses to start, --check included, when its environment sets LASSO_FLAG: lasso
reads that variable when it initialises, and "no-verify-signature" turns its signature
checks off ("no-sign-messages", "no-add-signature", "no-strict-checking" weaken what it
signs and parses). samlgw uses none of lasso's flags, so any non-empty value is refused,
with a message naming LASSO_FLAG on stderr: exit 1 for --check, 78 (EX_CONFIG) for a start.
The control: the same configuration without LASSO_FLAG (or with it empty) checks fine and
starts. samlgw runs under SAMLGW_WRAPPER (valgrind, say) here too."""
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import SAMLGW_BIN, WRAPPER, record

VALUES = ["no-verify-signature", "no-sign-messages", "no-add-signature", "no-strict-checking",
          "memory-debug", "verify-signature,no-strict-checking", "  :no-verify-signature",
          "NO-VERIFY-SIGNATURE"]
TIMEOUT = 120 if WRAPPER else 30


def _env(value):
    env = {k: v for k, v in os.environ.items() if k != "LASSO_FLAG"}
    if value is not None:
        env["LASSO_FLAG"] = value
    return env


def _run(gw, value, check):
    return subprocess.run(WRAPPER + [SAMLGW_BIN, "--config", str(gw.config)]
                          + (["--check"] if check else []),
                          env=_env(value), capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)


def _refused(r, code):
    return r.returncode == code and "LASSO_FLAG" in r.stderr and \
        "refusing to start" in r.stderr and "event=started" not in r.stderr


@pytest.mark.parametrize("value", VALUES)
def test_lasso_flag_check(fed, value):
    r = _run(fed.gw, value, check=True)
    ctl = _run(fed.gw, None, check=True)
    ok = _refused(r, 1) and ctl.returncode == 0
    record("LASSO_FLAG=%s samlgw --check" % value.strip(), "environment",
           "exit 1, refused", "exit %d%s" % (r.returncode, ", refused" if _refused(r, 1) else ""),
           "exit %d" % ctl.returncode, ok, r.stderr.strip().splitlines()[-1] if r.stderr else "")
    assert _refused(r, 1), (r.returncode, r.stderr)
    assert ctl.returncode == 0, ctl.stderr


@pytest.mark.parametrize("value", ["no-verify-signature", "memory-debug"])
def test_lasso_flag_start(fed, tmp_path, value):
    """A real start (not --check) with its own port: refused before it listens. The
    control starts and answers /healthz (and stops cleanly)."""
    gw = fed.gw
    r = _run(gw, value, check=False)
    started = _starts(gw, tmp_path)
    record("LASSO_FLAG=%s samlgw" % value, "environment", "exit 78, refused",
           "exit %d%s" % (r.returncode, ", refused" if _refused(r, 78) else ""),
           "started" if started else "did not start", _refused(r, 78) and started,
           r.stderr.strip().splitlines()[-1] if r.stderr else "")
    assert _refused(r, 78), (r.returncode, r.stderr)
    assert started, (tmp_path / "control.log").read_text()


def _starts(gw, tmp_path):
    """samlgw starts with gw's configuration on another port and without LASSO_FLAG."""
    import saml_conftest as saml
    port = saml.free_port()
    conf = tmp_path / "control.conf"
    conf.write_text(gw.config.read_text().replace(
        "listen = 127.0.0.1:%d\n" % gw.port, "listen = 127.0.0.1:%d\n" % port))
    log = open(tmp_path / "control.log", "wb")
    p = subprocess.Popen(WRAPPER + [SAMLGW_BIN, "--config", str(conf)], env=_env(None),
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and p.poll() is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                            timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except OSError:
                time.sleep(0.05)
        return False
    finally:
        p.terminate()
        p.wait(60)
        assert p.returncode == 0, (tmp_path / "control.log").read_text()
