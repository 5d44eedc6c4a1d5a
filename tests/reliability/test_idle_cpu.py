"""test_idle_cpu.py - RELIABILITY.md 10: while a followed file is absent
(deleted, or its whole directory missing) the daemon does not busy-loop
(CPU < 5% over IDLE seconds, from /proc/PID/stat), and when the file comes
back its 1000 lines are counted exactly once within 2x poll_interval plus
slack."""
import os, shutil, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

IDLE = float(os.environ.get("MXW_IDLE_SECONDS", "5"))
HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        c = f.read().rsplit(")", 1)[1].split()
    return (int(c[11]) + int(c[12])) / HZ


def idle_share(dm):
    a, t = cpu_seconds(dm.p.pid), time.time()
    time.sleep(IDLE)
    return (cpu_seconds(dm.p.pid) - a) / (time.time() - t)


limit = 0.05 if not sanitized() else 0.10
d = scratch()
sub = os.path.join(d, "logs")
os.mkdir(sub)
log, db = os.path.join(sub, "mail.log"), os.path.join(d, "m.db")
append(log, seq_lines(0, 100), "w")
dm = Daemon(db, follow=[log]).start()
check("daemon started", dm.port is not None, dm.stderr()[-300:])
check("100 lines", wait_for(lambda: len(seq_counts(db)), 100, 20) == 100)
share = idle_share(dm)
print("CPU while idle with the file present: %.1f%%" % (100 * share), flush=True)
check("idle CPU < %.0f%%" % (100 * limit), share < limit, share)
os.remove(log)
time.sleep(1)
share = idle_share(dm)
print("CPU while the file is absent: %.1f%%" % (100 * share), flush=True)
check("CPU < %.0f%% while the file is absent" % (100 * limit), share < limit, share)
t0 = time.time()
append(log, seq_lines(100, 1100), "w")
ok = wait_for(lambda: exact(seq_counts(db), 0, 1100)[0], True, 10, 0.1)
el = time.time() - t0
check("the recreated file's 1000 lines once, within 3 s (2x poll_interval 1s + slack)", ok and el <= 3,
      "%.1f s, %s" % (el, exact(seq_counts(db), 0, 1100)[1]))
shutil.rmtree(sub)
time.sleep(1)
share = idle_share(dm)
print("CPU while the directory is gone: %.1f%%" % (100 * share), flush=True)
check("CPU < %.0f%% while the directory is gone" % (100 * limit), share < limit, share)
os.mkdir(sub)
t0 = time.time()
append(log, seq_lines(1100, 2100), "w")
ok = wait_for(lambda: exact(seq_counts(db), 0, 2100)[0], True, 10, 0.1)
el = time.time() - t0
check("after the directory returns, the new file's 1000 lines once, within 3 s", ok and el <= 3,
      "%.1f s, %s" % (el, exact(seq_counts(db), 0, 2100)[1]))
check("the daemon is up", dm.alive())
rc = dm.stop()
check("clean stop", rc == 0, rc)
done()
