#!/usr/bin/env python3
"""test_integrity.py - a damaged database is never used as if sound (issue
17, item 4): `run` checks the database (PRAGMA quick_check) at start after an
unclean stop, and only then; `stats` and `check-db` check it always; a
damaged database is refused by run, import, stats and check-db with a
message that says so and how to recover, run after run; the blocklist keeps
its last content meanwhile; the recovery path (move aside, import the logs
again) works and keeps the blocklist."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

d = scratch("mxw-integ-")
log, db, out = os.path.join(d, "mail.log"), os.path.join(d, "m.db"), os.path.join(d, "plain.txt")
cfg = os.path.join(d, "c.ini")
with open(cfg, "w") as f:
    f.write("[output plain]\nformat = plain\npath = %s\n" % out)


def harvest(ip, base, t):
    text = ""
    for c in range(3):
        when = stamp(t + c * 60)
        for k in range(6):
            text += seq_line(base + c * 6 + k, ip=ip, when=when)
        text += disconnect_line(ip, when, 6)
    return text


t0 = time.time() - 900
append(log, harvest("198.51.100.9", 0, t0) + seq_lines(100, 3000), "w")
UNCLEAN = "was not closed cleanly"


def start():
    return Daemon(db, [log], conf=cfg).start()


# --- sound: check-db and stats say so
dm = start()
ok = wait_for(lambda: "198.51.100.9/32" in plain_entries(out), True, 30)
check("the daemon blocks the harvester (198.51.100.9 in the blocklist)", ok, dm.stderr()[-600:])
check("a fresh database is not checked at start", UNCLEAN not in dm.stderr(), dm.stderr()[-300:])
dm.stop()
r = run([MXW, "check-db", "--db", db])
check("check-db: ok, exit 0", r.returncode == 0 and re.search(r": ok \(quick_check of [\d.]+ MB in [\d.]+ s\)",
                                                             r.stdout), (r.returncode, r.stdout, r.stderr))
r = run([MXW, "check-db", "--db", db, "--full"])
check("check-db --full: ok (integrity_check)", r.returncode == 0 and "integrity_check" in r.stdout, r.stdout)
r = run([MXW, "stats", "--db", db, "--json"])
st = json.loads(r.stdout) if r.returncode == 0 else {}
check("stats --json says integrity ok", st.get("integrity") == "ok" and st.get("lines_read", 0) > 0,
      (r.returncode, r.stdout[:200], r.stderr[-200:]))
r = run([MXW, "stats", "--db", db])
check("stats (text) shows the check", "integrity:         ok (quick_check" in r.stdout, r.stdout[:300])

# --- a clean stop: no check at the next start; kill -9: a check, then it runs
dm = start()
time.sleep(1)
check("after a clean stop: no check at start", UNCLEAN not in dm.stderr()[dm.mark:], dm.stderr()[dm.mark:][-300:])
append(log, seq_lines(3000, 3100))
wait_for(lambda: len(seq_counts(db)) >= 3000, True, 20)
dm.kill9()
check("kill -9 leaves the write-ahead log behind", os.path.getsize(db + "-wal") > 0)
dm = start()
ok = wait_for(lambda: "quick_check ok in" in dm.stderr()[dm.mark:], True, 30)
check("after kill -9: checked at start (quick_check ok), then running", ok and dm.alive() and
      UNCLEAN in dm.stderr()[dm.mark:] and dm.http("GET", "/healthz")[0] == 200, dm.stderr()[dm.mark:][-400:])
dm.stop()
before = open(out, "rb").read()

# --- damage the stopped database's middle, then leave a hot log behind (as a crash would)
size = os.path.getsize(db)
with open(db, "r+b") as f:
    f.seek(size // 2)
    f.write(os.urandom(65536))
r = run([sys.executable, "-c", "import sqlite3, os\nc = sqlite3.connect(%r)\n"
         "c.execute(\"INSERT INTO audit(at, action) VALUES(1, 'x')\")\nc.commit()\nos._exit(0)" % db])
check("a writer died with a hot log", r.returncode == 0 and os.path.getsize(db + "-wal") > 0, r.stderr)
for n in (1, 2):
    dm = Daemon(db, [log], conf=cfg).start(want_port=False)
    try:
        dm.p.wait(60)
    except subprocess.TimeoutExpired:
        pass
    e = dm.stderr()[dm.mark:]
    check("run #%d refuses the damaged database: exit 1, saying so and how to recover" % n,
          dm.p.returncode == 1 and "the database is damaged (" in e and "move the file and its -wal and -shm aside"
          in e and "mxwarden import" in e and "blocklists keep their last content" in e, (dm.p.returncode, e[-600:]))
    dm.stop()
check("the blocklist keeps its last content", open(out, "rb").read() == before and b"198.51.100.9/32" in before)
r = run([MXW, "import", "-q", "--db", db, log])
check("import refuses it too", r.returncode == 1 and "the database is damaged" in r.stderr, r.stderr[-300:])
r = run([MXW, "stats", "--db", db, "--json"])
st = json.loads(r.stdout) if r.stdout.strip() else {}
check("stats: exit 1, integrity damaged with the problems", r.returncode == 1 and st.get("integrity") == "damaged"
      and st.get("problems") and "the database is damaged" in r.stderr, (r.returncode, r.stdout[:300]))
r = run([MXW, "check-db", "--db", db])
check("check-db: exit 1, the problems listed", r.returncode == 1 and "damaged: quick_check found" in r.stdout
      and "the database is damaged" in r.stderr, (r.returncode, r.stdout[:300], r.stderr[-300:]))

# --- damage found after a clean stop too, by stats and check-db (always checked)
for sfx in ("", "-wal", "-shm"):
    if os.path.exists(db + sfx):
        os.rename(db + sfx, os.path.join(d, "damaged.db" + sfx))
r = run([MXW, "check-db", "--db", os.path.join(d, "damaged.db")])
check("check-db finds the damage in the file moved aside", r.returncode == 1, r.stdout[:200])

# --- the recovery path: a new database from the logs; the blocklist is kept
r = run([MXW, "import", "-q", "--db", db, log])
check("recovery: import of the logs into a new database", r.returncode == 0, r.stderr[-300:])
dm = start()
time.sleep(2)
check("recovery: the daemon runs on it, and the blocklist still holds 198.51.100.9",
      dm.alive() and "198.51.100.9/32" in plain_entries(out), (plain_entries(out), dm.stderr()[-400:]))
dm.stop()
shutil.rmtree(d, ignore_errors=True)
done()
