#!/usr/bin/env python3
"""test_cli.py - the command line contract: --help, --version, usage errors
exit 2, and check-config reports every mistake as FILE:LINE: message."""
import os, re, subprocess, sys, tempfile

MXW = os.environ["MXWARDEN"]
SRC = os.environ["MXW_SOURCE"]
FILES = {"unblock": "block", "allow": "block", "unallow": "block"}  # commands that share a cmd_*.c
NOT_FOR = {("unblock", "for"), ("unblock", "response"), ("allow", "response"), ("unallow", "for"),
           ("unallow", "response")}  # flags of cmd_block.c's table these commands refuse
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

# every command: --help shows the same synopsis a usage error shows, then
# its summary and flags (one text per command, cli/main.c's table)
rc, out, err = run("--help")
commands = [l.split()[0] for l in out.split("commands:\n")[1].split("\n\n")[0].splitlines()]
check("--help lists the commands (ten or more)", len(commands) >= 10, repr(commands))
for name in commands:
    rc, out, err = run(name, "--help")
    erc, eout, eerr = run(name, "--no-such-flag")
    synopsis = [l for l in eerr.splitlines() if not l.startswith("mxwarden") and "unrecognized" not in l]
    check(name + " --help: exit 0, the usage error's synopsis, then more",
          rc == 0 and err == "" and out.startswith("usage: mxwarden " + name + " ") and
          out.splitlines()[:len(synopsis)] == synopsis and erc == 2 and len(out.splitlines()) > len(synopsis) + 3,
          f"rc={rc} out={out!r} usage error={eerr!r}")
    # the long options of the command's getopt table (its cmd_*.c), each described
    src = open(os.path.join(SRC, "cli", "cmd_" + FILES.get(name, name).replace("-", "_") + ".c")).read()
    table = src[src.index("struct option opts[]"):]
    table = table[:table.index("};")]
    flags = [f for f in re.findall(r'\{"([a-z-]+)",', table) if f != "help" and (name, f) not in NOT_FOR]
    missing = [f for f in flags if "--" + f not in out]
    check(name + " --help: each of its %d long options is described" % len(flags), flags and not missing,
          "missing: %s" % missing)
rc, out, err = run("export", "--help")
check("export --help lists the formats of the registry",
      "ipset, nft, iptables, ip6tables, postfix, postscreen, rbldnsd, rbldnsd6, plain, json" in out, out)

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

total = 15 + 2 * len(commands)
print(f"{total - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
