"""SAMLGW_WRAPPER: the test suites run this project's programs (samlgw, xmpp-core,
samlgw-authd, samlgw-token) behind the command it names, e.g. valgrind; the valgrind test
setup sets it for every Python suite (tests/valgrind-wrap). Shared by every conftest.py:

- command(argv): argv behind the wrapper;
- SLOW: how much longer waits must be (1 normally, 10 under valgrind);
- problems(returncode, log): what a program that stopped reported (a non-zero exit,
  valgrind's error exit 99, or a report of ASan, LSan, UBSan or valgrind in its log)."""
import os
import re
import shlex

WRAPPER = shlex.split(os.environ.get("SAMLGW_WRAPPER", ""))
SLOW = 10 if WRAPPER else 1

# Reports of the sanitizers and of valgrind in a program's stderr.
REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: |"
                    r"^==\d+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|"
                    r"Source and destination|Invalid free|ERROR SUMMARY: [1-9]|"
                    r"\d+ bytes in \d+ blocks are definitely lost)",
                    re.M)


def command(argv):
    return WRAPPER + [str(a) for a in argv]


def problems(returncode, log, expected=0):
    """None when the program exited with `expected` and its log holds no report; else
    what went wrong, with the end of the log."""
    report = REPORT.search(log or "")
    if returncode == expected and not report:
        return None
    return "exited with %s%s:\n%s" % (returncode, " and reported " + report.group(0)
                                      if report else "", (log or "")[-20000:])
