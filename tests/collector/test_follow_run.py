#!/usr/bin/env python3
"""test_follow_run.py - `mxwarden run` end to end on the file cases: down
during two rotations (one rotated file compressed) then catch-up, a partial
line held until its newline, a file that appears after start, delete and
recreate, a 70 KiB line plus garbage among good lines, and the polling
fallback. Each check counts sequence numbers in SQLite: each exactly once."""
import gzip, os, shutil, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403


def settle(db, want, timeout=15):
    return wait_for(lambda: seq_counts(db), want, timeout=timeout)


def want_range(a, b):
    return {i: 1 for i in range(a, b)}


# ---- down during rotation, with the older rotated file compressed
d = scratch()
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
append(log, seq_lines(0, 1000))
dm = Daemon(db, [log]).start()
settle(db, want_range(0, 1000))
dm.stop()
append(log, seq_lines(1000, 2000))
os.rename(log, log + ".1")
append(log, seq_lines(2000, 3000))
os.rename(log + ".1", log + ".2")
os.rename(log, log + ".1")
with open(log + ".2", "rb") as fi, gzip.open(log + ".2.gz", "wb") as fo:
    fo.write(fi.read())
os.unlink(log + ".2")
append(log, seq_lines(3000, 3500))
dm = Daemon(db, [log]).start()
c = settle(db, want_range(0, 3500))
dm.stop()
ok, detail = exact(c, 0, 3500)
check("down across two rotations (.2 compressed): every line once", ok, detail + dm.stderr()[-1500:])
check("the resume was logged", "resuming in" in dm.stderr() and ".2.gz" in dm.stderr(), dm.stderr()[-800:])
# a restart after that adds nothing
dm = Daemon(db, [log]).start()
time.sleep(1.0)
dm.stop()
ok, detail = exact(seq_counts(db), 0, 3500)
check("restart after catch-up adds nothing", ok, detail)
shutil.rmtree(d)

# ---- partial line, file appearing later, delete + recreate, long and garbage; inotify and polling
for mode, extra in (("inotify", []), ("polling", ["--poll", "--poll-ms", "200"])):
    d = scratch()
    log, db = os.path.join(d, "later.log"), os.path.join(d, "m.db")
    dm = Daemon(db, [log], extra).start()
    time.sleep(0.5)
    append(log, seq_lines(0, 100))
    c = settle(db, want_range(0, 100), timeout=10)
    check("%s: a file created after start is read from its start" % mode, c == want_range(0, 100),
          exact(c or {}, 0, 100)[1])
    part = seq_line(100)
    append(log, part[:40])
    time.sleep(1.5)
    c1 = seq_counts(db)
    append(log, part[40:])
    c2 = settle(db, want_range(0, 101), timeout=10)
    check("%s: a partial line is held until its newline, then counted once" % mode,
          100 not in c1 and c2 == want_range(0, 101), exact(c2 or {}, 0, 101)[1])
    os.unlink(log)
    time.sleep(1.0)
    append(log, seq_lines(101, 1101))
    c = settle(db, want_range(0, 1101), timeout=10)
    check("%s: delete and recreate: the new file's 1000 lines once" % mode, c == want_range(0, 1101),
          exact(c or {}, 0, 1101)[1])
    with open(log, "ab") as f:
        f.write(b"L" * (70 * 1024) + b"\n")
        f.write(b"\0" * 512)
        f.write(os.urandom(1 << 20).replace(b"\n", b"n") + b"\n")
        f.write(seq_lines(1101, 1201).encode())
    c = settle(db, want_range(0, 1201), timeout=10)
    check("%s: a 70 KiB line, NULs and 1 MiB of junk, then 100 good lines: exactly those 100" % mode,
          c == want_range(0, 1201), exact(c or {}, 0, 1201)[1])
    dm.stop()
    st = stats_json(db)
    check("%s: the two over-long lines (70 KiB; NULs + 1 MiB) were counted as overlong" % mode,
          st.get("unparsed", {}).get("overlong") == 2, st.get("unparsed"))
    shutil.rmtree(d)
done()
