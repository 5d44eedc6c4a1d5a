#!/usr/bin/env python3
"""test_replay.py - `mxwarden run --replay data/sample-mail.log` (what
./scripts/run does without /var/log/mail.log): the sample is appended to
replay.log beside the database at the given rate with each line's time stamp
set to now, and that file is followed like any other: every line written is
read, and the stored events carry today's time, not the sample's."""
import os, shutil, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

sample = os.path.join(os.environ.get("MXW_SOURCE", os.path.join(os.path.dirname(__file__), "..", "..")),
                      "data", "sample-mail.log")
d = scratch()
db = os.path.join(d, "m.db")
dm = Daemon(db, [], ["--replay", sample, "--replay-rate", "1500"]).start()
time.sleep(2.5)
dm.stop()
rl = os.path.join(d, "replay.log")
with open(rl, "rb") as f:
    data = f.read()
n = data.count(b"\n")
check("about 1500 lines/s were written to replay.log beside the database (%d in 2.5 s)" % n, 1500 <= n <= 5000, n)
check("every line written was read", lines_read(db, rl) == n, (lines_read(db, rl), n))
today = time.strftime("%b %e", time.localtime()).encode()
first = data.split(b"\n", 1)[0]
with open(sample, "rb") as f:
    orig = f.readline()
check("time stamps are rewritten to now, the rest of the line is the sample's",
      first.startswith(today) and first[15:] == orig[15:].rstrip(b"\n"), (first[:60], orig[:60]))
r = q(db, "SELECT min(ts), max(ts) FROM events")
lo, hi = (r[0] if r and r[0][0] is not None else (0, 0))
if hi > 1e12:  # microseconds
    lo, hi = lo / 1e6, hi / 1e6
check("stored events carry the time of the replay, within the hour (the sample says %s)" % orig[:15].decode(),
      abs(lo - time.time()) < 3600 and abs(hi - time.time()) < 3600, r)
shutil.rmtree(d)
done()
