"""test_emit_full.py - RELIABILITY.md 20 with a real fault: the blocklist
lives on a 64 KiB tmpfs (private mount namespace, root; skipped otherwise)
that is then filled up, and a new block arrives. Pass: the target stays
byte-identical to the previous version (no truncated file), the failure is
logged, the reload command is not run for the failed write, the daemon stays
up, and once space returns the next change is written and reloaded."""
import os, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

private_mount_ns()

d = scratch()
small = os.path.join(d, "small")
os.mkdir(small)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", small], check=True)
target = os.path.join(small, "block.plain")
marker = os.path.join(d, "reloads")
script = os.path.join(d, "reload.sh")
with open(script, "w") as f:
    f.write("#!/bin/sh\necho x >> %s\n" % marker)
os.chmod(script, 0o755)
db = os.path.join(d, "m.db")
conf = os.path.join(d, "mxw.conf")
with open(conf, "w") as f:
    f.write("[output p]\nformat = plain\npath = %s\nreload = %s\n" % (target, script))


def reloads():
    try:
        return len(open(marker).read().split())
    except OSError:
        return 0


def block(p):
    return run([MXW, "block", p, "--for", "1h", "--reason", "emit fault", "--db", db, "-c", conf]).returncode


block("198.51.100.0/24")
dm = Daemon(db, conf=conf, log=os.path.join(d, "log")).start()
check("daemon started", dm.port is not None, dm.stderr()[-400:])
got = wait_for(lambda: os.path.exists(target) and "198.51.100.0/24" in open(target).read(), True, 10)
check("the first version is written", got is True)
check("and reloaded once", wait_for(reloads, 1, 10) == 1, reloads())
before = open(target, "rb").read()
# fill the tmpfs
fd = os.open(os.path.join(small, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
try:
    while True:
        os.write(fd, b"\0" * 1024)
except OSError:
    pass
os.close(fd)
mark = len(dm.stderr())
check("block 203.0.113.0/24 while the blocklist's disk is full", block("203.0.113.0/24") == 0)
time.sleep(3)
check("the target is byte-identical to the previous version", open(target, "rb").read() == before,
      open(target, "rb").read()[:200])
log = dm.stderr()[mark:]
print("log: %s" % [l for l in log.splitlines() if "error" in l][:3], flush=True)
check("the failed write is logged with its cause", "No space left" in log, log[-400:])
check("the reload command is not run for the failed write", reloads() == 1, reloads())
check("no temp file is left in the full directory", not [n for n in os.listdir(small) if n.startswith(".")],
      os.listdir(small))
check("the daemon is up", dm.alive())
os.remove(os.path.join(small, "filler"))
t0 = time.time()
got = wait_for(lambda: "203.0.113.0/24" in open(target).read(), True, 45, 0.5)
print("retried %.0f s after space returned (emitters retry a failed write after 30 s)" % (time.time() - t0), flush=True)
check("once space returns, the failed write is retried without another change (within 45 s)",
      got is True, open(target).read())
block("198.18.0.0/24")
got = wait_for(lambda: "203.0.113.0/24" in open(target).read() and "198.18.0.0/24" in open(target).read(), True, 10)
check("the next change writes every block", got is True, open(target).read())
check("each successful write was reloaded once (3)", wait_for(reloads, 3, 10) == 3, reloads())
rc = dm.stop()
check("clean stop", rc == 0, rc)
subprocess.run(["umount", small])
done()
