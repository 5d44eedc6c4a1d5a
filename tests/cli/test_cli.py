#!/usr/bin/env python3
"""test_cli.py - the command line contract: --help, --version, usage errors
exit 2, and check-config reports every mistake as FILE:LINE: message."""
import os, subprocess, sys, tempfile

MXW = os.environ["MXWARDEN"]
failures = 0


def run(*args):
    p = subprocess.run([MXW, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def check(name, cond, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + detail))
    if not cond:
        failures += 1


rc, out, err = run("--help")
check("--help exits 0 and lists check-config", rc == 0 and "check-config" in out, f"rc={rc} out={out!r}")
rc, out, err = run("--version")
check("--version prints the version", rc == 0 and out.startswith("mxwarden "), out)
rc, out, err = run("no-such-command")
check("unknown command: exit 2, usage on stderr", rc == 2 and "usage:" in err and out == "", f"rc={rc}")
rc, out, err = run("--no-such-flag")
check("unknown global flag: exit 2", rc == 2 and "usage:" in err, f"rc={rc}")
rc, out, err = run("check-config", "--bogus")
check("unknown subcommand flag: exit 2 with usage", rc == 2 and "usage: mxwarden check-config" in err, err)
rc, out, err = run()
check("no command: exit 2", rc == 2, f"rc={rc}")

with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
    f.write("[storage]\nretention_events = three days\n\n[rules]\nharvest_distinct = 10\nno_such_key = 5\n"
            "[safety]\nipv4_floor = 40\n")
    path = f.name
rc, out, err = run("check-config", "-c", path)
lines = [l for l in err.splitlines() if l.startswith(path + ":") and not l.startswith(path + ": warning:")]
check("three mistakes: exit 1", rc == 1, f"rc={rc}")
check("three mistakes: three FILE:LINE messages", len(lines) == 3, err)
check("mistakes carry lines 2, 6, 8",
      [l.split(":")[1] for l in lines] == ["2", "6", "8"], err)
os.unlink(path)

with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
    f.write("[web]\nlisten = 127.0.0.1:9999\n")
    path = f.name
rc, out, err = run("check-config", "-c", path, "-v")
check("a good file: exit 0 and the effective value shown", rc == 0 and "listen = 127.0.0.1:9999" in out, err)
os.unlink(path)

total = 13
print(f"{total - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
