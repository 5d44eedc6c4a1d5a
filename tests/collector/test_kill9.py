#!/usr/bin/env python3
"""test_kill9.py - exactly once across kill -9 (RELIABILITY.md test 7, short
form): a generator appends lines with unique sequence numbers at a steady
rate, renaming the file away now and then; `mxwarden run` is killed with
SIGKILL at random moments and restarted each time. At the end every
sequence number is in the database exactly once and PRAGMA integrity_check
is ok.

Environment: KILL9_LINES (default 30000), KILL9_RATE (lines/s, default
3000), KILL9_KILLS (default 10), KILL9_GAP_MIN/KILL9_GAP_MAX (seconds between
kills, uniform, default 0.1-1.2), KILL9_ROTATE (seconds between rotations,
0 = none; default 2). bench/soak-kill9 runs the long version."""
import os, random, shutil, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

LINES = int(os.environ.get("KILL9_LINES", "30000"))
RATE = float(os.environ.get("KILL9_RATE", "3000"))
KILLS = int(os.environ.get("KILL9_KILLS", "10"))
ROTATE = float(os.environ.get("KILL9_ROTATE", "2"))
GAP_MIN = float(os.environ.get("KILL9_GAP_MIN", "0.1"))
GAP_MAX = float(os.environ.get("KILL9_GAP_MAX", "1.2"))
SEED = int(os.environ.get("KILL9_SEED", str(int(time.time()))))

rnd = random.Random(SEED)
print("seed %d: %d lines at %.0f lines/s, %d kills, rotation every %.1fs" % (SEED, LINES, RATE, KILLS, ROTATE))
d = scratch()
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")


def generate():
    t0 = time.time()
    n, chunk = 0, max(1, int(RATE / 100))
    next_rot = t0 + ROTATE if ROTATE else None
    f = open(log, "a")
    while n < LINES:
        k = min(chunk, LINES - n)
        f.write(seq_lines(n, n + k))
        f.flush()
        n += k
        if next_rot and time.time() >= next_rot:
            f.close()
            for i in range(8, 0, -1):
                if os.path.exists("%s.%d" % (log, i)):
                    os.replace("%s.%d" % (log, i), "%s.%d" % (log, i + 1))
            os.replace(log, log + ".1")
            f = open(log, "a")
            next_rot = time.time() + ROTATE
        due = t0 + n / RATE
        if due > time.time():
            time.sleep(due - time.time())
    f.close()


gen = threading.Thread(target=generate)
open(log, "a").close()
dm = Daemon(db, [log]).start()
wait_for(lambda: len(q(db, "SELECT id FROM sources")) > 0, True, timeout=10)
gen.start()
kills = 0
while kills < KILLS:
    time.sleep(rnd.uniform(GAP_MIN, GAP_MAX))
    dm.kill9()
    kills += 1
    dm = Daemon(db, [log]).start(want_port=False)  # the next kill may come during its start
gen.join()
counts = wait_for(lambda: len(seq_counts(db)), LINES, timeout=40)
dm.stop()
c = seq_counts(db)
ok, detail = exact(c, 0, LINES)
check("%d kills: each of %d lines stored exactly once" % (kills, LINES), ok, detail + "\n" + dm.stderr()[-3000:])
ic = q(db, "PRAGMA integrity_check")
check("integrity_check ok", ic and ic[0][0] == "ok", ic)
check("lines_read over all files == lines written", lines_read(db, log) == LINES, lines_read(db, log))
if ok:
    shutil.rmtree(d)
else:
    print("kept %s for inspection" % d)
done()
