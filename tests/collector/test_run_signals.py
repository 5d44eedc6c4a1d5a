#!/usr/bin/env python3
"""test_run_signals.py - `mxwarden run` and its signals: SIGTERM commits the
open batch before exiting 0 (batch_ms is set to a minute, so nothing else
would have committed it); SIGHUP reloads the configuration file and starts
following a file added to [collector] follow; a SIGHUP with a broken file
keeps the running configuration (and says so); an unusable database path
or an unknown flag fails cleanly."""
import os, shutil, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

d = scratch()
a, b, db, conf = (os.path.join(d, x) for x in ("a.log", "b.log", "m.db", "m.ini"))
with open(conf, "w") as f:
    f.write("[collector]\nfollow = %s\nbatch_ms = 60000\nbatch_lines = 1000000\n" % a)
dm = Daemon(db, [], ["-c", conf]).start()
time.sleep(0.7)
append(a, seq_lines(0, 500))
time.sleep(1.0)
early = len(seq_counts(db))
dm.p.send_signal(signal.SIGTERM)
rc = dm.p.wait(20)
ok, detail = exact(seq_counts(db), 0, 500)
check("SIGTERM: the open batch (not yet due) is committed, exit 0", early == 0 and ok and rc == 0,
      "before: %d, rc %s, %s" % (early, rc, detail))
dm.errf.close()

dm = Daemon(db, [], ["-c", conf]).start()
time.sleep(0.7)
with open(conf, "w") as f:
    f.write("[collector]\nfollow = %s, %s\nbatch_ms = 100\n" % (a, b))
append(b, seq_lines(500, 600))
dm.p.send_signal(signal.SIGHUP)
c = wait_for(lambda: seq_counts(db), {i: 1 for i in range(600)}, timeout=10)
ok, detail = exact(c or {}, 0, 600)
check("SIGHUP: a file added to [collector] follow is followed", ok and "now following" in dm.stderr(), detail)
with open(conf, "w") as f:
    f.write("[collector]\nfollow = %s\nbatch_ms = soon\n" % a)
dm.p.send_signal(signal.SIGHUP)
time.sleep(0.5)
append(b, seq_lines(600, 650))
c = wait_for(lambda: seq_counts(db), {i: 1 for i in range(650)}, timeout=10)
check("SIGHUP with a broken file: an error naming it, the running configuration kept",
      dm.p.poll() is None and "keeping the running configuration" in dm.stderr() and
      exact(c or {}, 0, 650)[0], dm.stderr()[-600:])
check("stop: exit 0", dm.stop() == 0)

p = subprocess.run([MXW, "run", "--db", "/proc/nope/m.db", "--follow", a], capture_output=True, text=True,
                   timeout=30)
check("an unusable database path: exit 1 with a message", p.returncode == 1 and "nope" in p.stderr, p.stderr)
p = subprocess.run([MXW, "run", "--bogus"], capture_output=True, text=True, timeout=30)
check("an unknown flag: exit 2 with usage", p.returncode == 2 and "usage: mxwarden run" in p.stderr, p.stderr)
p = subprocess.run([MXW, "import"], capture_output=True, text=True, timeout=30)
check("import without files: exit 2 with usage", p.returncode == 2 and "usage: mxwarden import" in p.stderr,
      p.stderr)
shutil.rmtree(d)
done()
