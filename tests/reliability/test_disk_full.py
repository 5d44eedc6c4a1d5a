"""test_disk_full.py - RELIABILITY.md 15: the database lives on a 4 MiB tmpfs
(mounted in a private mount namespace made with `unshare -m`; skipped when
that is not permitted) that also holds a 2.5 MiB filler file. Lines are fed
until SQLite reports the disk full, held HOLD seconds, then the filler is
removed. Pass: the daemon stays up, /healthz says degraded while full, after
space returns every line is stored exactly once, PRAGMA integrity_check =
ok."""
import os, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

private_mount_ns()

HOLD = float(os.environ.get("MXW_FULL_HOLD", "10"))
d = scratch()
small = os.path.join(d, "small")
os.mkdir(small)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", small], check=True)
filler = os.path.join(small, "filler")
with open(filler, "wb") as f:
    f.write(b"\0" * (2560 * 1024))
log, db = os.path.join(d, "mail.log"), os.path.join(small, "m.db")
append(log, seq_lines(0, 100), "w")
dm = Daemon(db, follow=[log], fast=False, log=os.path.join(d, "daemon.stderr")).start()
check("daemon started with its database on the small tmpfs", dm.port is not None, dm.stderr()[-500:])
check("the first 100 lines are stored", wait_for(lambda: len(seq_counts(db)), 100, 30) == 100)

n = 100
full = False
t0 = time.time()
while time.time() - t0 < 60 and not full:
    append(log, seq_lines(n, n + 1000))
    n += 1000
    time.sleep(0.3)
    full = "full" in dm.stderr()[dm.mark:].lower()
check("the disk fills up (SQLite says so in the log)", full,
      "%d lines, df: %s" % (n, subprocess.run(["df", "-k", small], capture_output=True, text=True).stdout))
print("full after %d lines; log: %s" % (n, [l for l in dm.stderr().splitlines() if "full" in l.lower()][:2]), flush=True)
# keep lines coming while the disk is full
t0 = time.time()
health = []
while time.time() - t0 < HOLD:
    append(log, seq_lines(n, n + 100))
    n += 100
    st, j = get_json(dm.port, "/healthz")
    health.append((st, (j or {}).get("status")))
    time.sleep(1)
check("the daemon stays up while the disk is full", dm.alive(), dm.stderr()[-800:])
print("healthz while full: %s" % sorted(set(health)), flush=True)
check("/healthz reports degraded while the database cannot be written (disk full)",
          any(s == 503 or h == "degraded" for s, h in health), sorted(set(health)))
os.remove(filler)
t1 = time.time()
last = wait_for(lambda: seq_counts(db).get(n - 1, 0), 1, 15, 0.3)
check("after space returns the lines read while the disk was full are stored (catch-up)", last == 1, last)
print("caught up %.1f s after space returned" % (time.time() - t1), flush=True)
time.sleep(1)
counts = seq_counts(db)
dups = [i for i, c in counts.items() if c > 1]
check("no line is stored twice", not dups, dups[:5])
lost = [i for i in range(n) if i not in counts]
check("no line is lost when a commit fails with 'database or disk is full'", not lost,
          "%d of %d lines lost, seq %d..%d" % (len(lost), n, lost[0], lost[-1]) if lost else "")
st, j = get_json(dm.port, "/healthz")
check("/healthz is ok again", st == 200 and (j or {}).get("status") == "ok", (st, j))
a = n
append(log, seq_lines(n, n + 100))
n += 100
ok = wait_for(lambda: exact({k: v for k, v in seq_counts(db).items() if k >= a}, a, n)[0], True, 30, 0.3)
check("new lines are stored exactly once afterwards", ok, exact(seq_counts(db), a, n)[1])
rc = dm.stop()
print("exit status after the full-disk episode: %s; last log lines:\n%s" % (rc, "\n".join(dm.stderr().splitlines()[-3:])))
check("stops on SIGTERM", rc is not None and rc >= 0, rc)
import sqlite3
con = sqlite3.connect(db)
ic = con.execute("PRAGMA integrity_check").fetchone()[0]
con.close()
check("PRAGMA integrity_check = ok", ic == "ok", ic)
subprocess.run(["umount", small])
done()
