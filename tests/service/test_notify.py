"""test_notify.py - what `run` tells systemd (sd_notify, issue 15), on a
notification socket of the test's own (NOTIFY_SOCKET, as systemd sets it
for Type=notify): READY=1 and a STATUS line at start; RELOADING=1 then
READY=1 around SIGHUP; STOPPING=1 at SIGTERM. A start that checks the
database after an unclean stop (kill -9 left its write-ahead log) asks for
more time first (EXTEND_TIMEOUT_USEC with a STATUS that says why), before
READY=1, since a large database takes longer than TimeoutStartSec=; a start
after a clean stop does not."""
import os, shutil, signal, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

d = scratch("mxw-notify-")
log, db, conf = os.path.join(d, "mail.log"), os.path.join(d, "m.db"), os.path.join(d, "m.conf")
with open(conf, "w") as f:
    f.write("[collector]\nbatch_lines = 100\n")
append(log, seq_lines(0, 500), "w")
path = os.path.join(d, "notify")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.settimeout(0.2)


class Notes:
    def __init__(self):
        self.msgs = []

    def wait(self, pred, timeout=30, after=-1):
        """The index of the first message after index `after` that pred
        accepts, or None."""
        end = time.time() + timeout
        while True:
            for i, m in enumerate(self.msgs):
                if i > after and pred(m):
                    return i
            if time.time() > end:
                return None
            try:
                self.msgs.append(sock.recv(4096).decode())
            except socket.timeout:
                pass


def start():
    n = Notes()
    return Daemon(db, [log], conf=conf, env={"NOTIFY_SOCKET": path}).start(), n


def ready(m):
    return "READY=1" in m.split("\n")


def extend(m):
    return "EXTEND_TIMEOUT_USEC=" in m


try:
    dm, n = start()
    i = n.wait(ready)
    check("READY=1 with a STATUS line", i is not None and "STATUS=" in n.msgs[i], (n.msgs, dm.stderr()[-600:]))
    check("a new database: no extra time asked", not any(extend(m) for m in n.msgs), n.msgs)
    k = len(n.msgs)
    dm.p.send_signal(signal.SIGHUP)
    r = n.wait(lambda m: "RELOADING=1" in m, 10)
    check("SIGHUP: RELOADING=1, then READY=1",
          r is not None and r >= k and n.wait(ready, 10, after=r) is not None, n.msgs[k:])
    got = wait_for(lambda: len(seq_counts(db)), 500, 30)
    check("the lines are stored", got == 500, got)
    append(log, seq_lines(500, 700))
    wait_for(lambda: len(seq_counts(db)), 700, 30)
    dm.kill9()
    check("kill -9 leaves the write-ahead log behind", os.path.getsize(db + "-wal") > 0)

    dm, n = start()
    i = n.wait(ready)
    e = n.wait(extend, 0)
    check("after kill -9: READY=1", i is not None, (n.msgs, dm.stderr()[-600:]))
    check("... after EXTEND_TIMEOUT_USEC (60 s) while the database is checked",
          e is not None and i is not None and e < i and "EXTEND_TIMEOUT_USEC=60000000" in n.msgs[e]
          and "STATUS=checking the database" in n.msgs[e], n.msgs)
    check("the check was made", "quick_check ok in" in dm.stderr()[dm.mark:], dm.stderr()[dm.mark:][-600:])
    dm.p.send_signal(signal.SIGTERM)
    check("SIGTERM: STOPPING=1", n.wait(lambda m: "STOPPING=1" in m, 30) is not None, n.msgs[-3:])
    check("... and a clean exit", dm.stop() == 0)

    dm, n = start()
    check("after a clean stop: READY=1 and no extra time asked",
          n.wait(ready) is not None and not any(extend(m) for m in n.msgs), n.msgs)
    dm.stop()
finally:
    sock.close()
    shutil.rmtree(d, ignore_errors=True)
done()
