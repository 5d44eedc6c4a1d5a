"""test_db_loss.py - RELIABILITY.md 24 (the "empty result after DB loss"
half): a daemon keeps a plain blocklist of 3 manual blocks; it stops, its
database (and saved state) is lost, and it starts again on a new, empty one.
Pass: the old blocklist file is kept (not silently emptied, which would lift
every block) and the log says loudly why; new decisions still get written."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

d = scratch()
db = os.path.join(d, "m.db")
plain = os.path.join(d, "out.plain")
conf = os.path.join(d, "mxw.conf")
with open(conf, "w") as f:
    f.write("[output p]\nformat = plain\npath = %s\n" % plain)
want = {"198.18.0.0/24", "198.51.100.0/24", "203.0.113.0/24"}
for p in sorted(want):
    r = run([MXW, "block", p, "--for", "1h", "--reason", "db loss test", "--db", db, "-c", conf])
    check("block %s" % p, r.returncode == 0, r.stderr)


def plain_set():
    return plain_entries(plain, none_if_missing=True)


dm = Daemon(db, conf=conf, log=os.path.join(d, "log1")).start()
check("the daemon writes the 3 blocks", wait_for(plain_set, want, 10) == want, plain_set())
check("clean stop", dm.stop() == 0)
for n in os.listdir(d):
    if n.startswith("m.db"):
        os.remove(os.path.join(d, n))
dm = Daemon(db, conf=conf, log=os.path.join(d, "log2")).start()
time.sleep(2)
got = plain_set()
print("blocklist after the database was lost: %s" % sorted(got or []), flush=True)
print("log: %s" % [l for l in dm.stderr().splitlines() if "output" in l or "warn" in l], flush=True)
check("a new empty database does not silently empty an existing blocklist (RELIABILITY 24: keep the old "
          "file, raise an alert)", got == want, sorted(got or []))
r = run([MXW, "block", "198.19.0.0/24", "--for", "1h", "--reason", "new", "--db", db,
         "-c", conf])
got = wait_for(lambda: "198.19.0.0/24" in (plain_set() or set()), True, 10)
check("a new block on the new database is written", got is True, plain_set())
check("the daemon is up", dm.alive(), dm.stderr()[-400:])
dm.stop()
done()
