"""The systemd units the build installs (samlgw.service, xmpp-core.service,
samlgw-authd.service and .socket) as the admin guide tells admins to use them: each
passes `systemd-analyze verify` with its commands pointed at this build's programs, and
every option its commands pass is one the program knows."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD

UNITS = {"samlgw.service": "samlgw", "xmpp-core.service": "xmpp-core",
         "samlgw-authd.service": "sasl-plugin", "samlgw-authd.socket": "sasl-plugin"}
PROGRAMS = {"samlgw": BUILD / "samlgw" / "samlgw",
            "xmpp-core": BUILD / "xmpp-core" / "xmpp-core",
            "samlgw-authd": BUILD / "sasl-plugin" / "samlgw-authd"}
EXEC = re.compile(r"^(ExecStartPre|ExecStart|ExecReload)=(\S+)(.*)$", re.M)


def unit_text(name):
    path = BUILD / UNITS[name] / name
    if not path.exists():  # the socket unit is installed from the source tree as it is
        path = Path(__file__).resolve().parents[2] / UNITS[name] / name
    return path.read_text()


def local_copy(text):
    """The unit with its installed program paths replaced by this build's programs."""
    def repl(m):
        prog = Path(m.group(2)).name
        return "%s=%s%s" % (m.group(1), PROGRAMS.get(prog, m.group(2)), m.group(3))
    return EXEC.sub(repl, text)


def test_units_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze missing: run scripts/install-deps"
    paths = []
    for name in UNITS:
        p = tmp_path / name
        p.write_text(local_copy(unit_text(name)))
        paths.append(str(p))
    r = subprocess.run([tool, "verify"] + paths, capture_output=True, text=True, timeout=60)
    ours = [ln for ln in (r.stdout + r.stderr).splitlines()
            if any(n in ln for n in UNITS) or "Unknown" in ln or "Failed" in ln]
    assert r.returncode == 0 and not ours, r.stdout + r.stderr


def test_verify_catches_a_broken_unit(tmp_path):
    """The check above is not vacuous: a misspelt setting fails it."""
    p = tmp_path / "samlgw.service"
    p.write_text(local_copy(unit_text("samlgw.service")).replace("ProtectSystem=", "ProtectSistem="))
    r = subprocess.run(["systemd-analyze", "verify", str(p)], capture_output=True, text=True,
                       timeout=60)
    assert "ProtectSistem" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("name", [n for n in UNITS if n.endswith(".service")])
def test_unit_commands_use_known_options(name):
    text = unit_text(name)
    commands = EXEC.findall(text)
    assert any(kind == "ExecStart" for kind, _, _ in commands), text
    for kind, prog, args in commands:
        prog = Path(prog).name
        if prog == "kill":
            assert args.strip() == "-HUP $MAINPID", args
            continue
        assert prog in PROGRAMS, (kind, prog)
        usage = subprocess.run([str(PROGRAMS[prog]), "--help"], capture_output=True,
                               text=True, timeout=30)
        usage = usage.stdout + usage.stderr
        for opt in re.findall(r"(--[a-z-]+)", args):
            assert re.search(r"(^|\s|\[)%s\b" % re.escape(opt), usage), (name, opt, usage)
