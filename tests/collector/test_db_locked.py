#!/usr/bin/env python3
"""test_db_locked.py - another process holds the database's write lock
(BEGIN IMMEDIATE) longer than the busy timeout while lines arrive
(RELIABILITY.md test 16, short form). `mxwarden run` must not lose or repeat
a line: the refused batch is read again from the committed positions once
the lock is gone. `mxwarden import` refused mid-way exits 1 with a message and keeps exactly
the batches it committed (a file import run again continues after them:
see test_import.py for the resume)."""
import os, shutil, sqlite3, subprocess, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

d = scratch()
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
append(log, seq_lines(0, 1000))
dm = Daemon(db, [log]).start()
wait_for(lambda: len(seq_counts(db)), 1000, timeout=15)


def hold(seconds, started, path=db):
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    con.execute("ROLLBACK")
    con.close()


started = threading.Event()
t = threading.Thread(target=hold, args=(7, started))
t.start()
started.wait(10)
for k in range(10):
    append(log, seq_lines(1000 + k * 200, 1200 + k * 200))
    time.sleep(0.3)
t.join()
c = wait_for(lambda: seq_counts(db), {i: 1 for i in range(3000)}, timeout=30)
dm.stop()
ok, detail = exact(c or {}, 0, 3000)
check("run: a write lock held 7 s (busy timeout 5 s): every line once afterwards", ok,
      detail + dm.stderr()[-1500:])
check("run: the refusal was logged", "database unavailable" in dm.stderr(), dm.stderr()[-800:])

db2 = os.path.join(d, "i.db")
subprocess.run([MXW, "import", "-q", "--db", db2, log], check=True, capture_output=True)  # creates the schema
cfg = os.path.join(d, "small.ini")
with open(cfg, "w") as f:
    f.write("[collector]\nbatch_lines = 50\n")  # import commits every 20 x 50 lines (IMPORT_BATCH_FACTOR)
# standard input paces the import: two batches committed, then the lock, then more lines
p = subprocess.Popen([MXW, "import", "-q", "-c", cfg, "--db", db2, "-"], stdin=subprocess.PIPE,
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
p.stdin.write(seq_lines(10000, 12000))
p.stdin.flush()
wait_for(lambda: len([k for k in seq_counts(db2) if k >= 10000]), 2000, timeout=20)
started = threading.Event()
t = threading.Thread(target=hold, args=(7, started, db2))
t.start()
started.wait(10)
p.stdin.write(seq_lines(12000, 14000))
p.stdin.close()
err = p.stderr.read()
p.wait(60)
t.join()
c = {k: v for k, v in seq_counts(db2).items() if k >= 10000}
ok, detail = exact(c, 10000, 12000)
check("import locked out mid-stream: exit 1, a message, exactly the committed batches kept",
      p.returncode == 1 and "database" in err and ok, (p.returncode, detail, err[-400:]))
shutil.rmtree(d)
done()
