"""test_jit.py - custom parser rules under MemoryDenyWriteExecute=yes
(issue 15). The unit forbids memory that is both writable and executable,
which PCRE2's JIT needs; the kernel's own form of that setting
(prctl PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN: the same refusal of
PROT_WRITE|PROT_EXEC mappings and of mprotect adding PROT_EXEC) is set on
`mxwarden parse` here. The rule must still match: the same events as
without the setting, and the log says the interpreter runs them."""
import ctypes, os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
libc = ctypes.CDLL(None, use_errno=True)


def mdwe():
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        os._exit(77)


def main():
    probe = subprocess.run(["true"], preexec_fn=mdwe)
    if probe.returncode == 77:
        skip("the kernel has no PR_SET_MDWE (Linux 6.3 or later)")
    d = scratch("mxw-jit-")
    conf = os.path.join(d, "m.conf")
    with open(conf, "w") as f:
        f.write("[parser tarpit]\ncategory = non_smtp\nkind = protocol\nprogram = tarpitd\n"
                "pattern = ^client (?<ip>[0-9.]+) dropped after (?<n>[0-9]+)s in the tarpit$\n")
    lines = "".join("Dec  6 10:00:%02d mx tarpitd[7]: client 192.0.2.%d dropped after %ds in the tarpit\n"
                    % (i, i + 1, 30 + i) for i in range(20))
    lines += "Dec  6 10:01:00 mx tarpitd[7]: client 192.0.2.99 said hello\n"
    plain = run([MXW, "parse", "-c", conf, "-"], input=lines)
    guarded = subprocess.run([MXW, "parse", "-c", conf, "-"], input=lines, capture_output=True, text=True,
                             preexec_fn=mdwe, timeout=60)
    n = len(plain.stdout.splitlines())
    check("without the setting the rule gives 20 events", plain.returncode == 0 and n == 20, plain.stdout + plain.stderr)
    check("under MDWE parse exits 0", guarded.returncode == 0, guarded.stderr)
    check("under MDWE the same events", guarded.stdout == plain.stdout,
          (guarded.stdout[:500], plain.stdout[:500]))
    check("under MDWE the log says the interpreter runs the rules", "no JIT" in guarded.stderr, guarded.stderr)
    check("without it the JIT runs (no such message)", "no JIT" not in plain.stderr, plain.stderr)
    done()


main()
