"""test_refused_exact.py - a refused batch is counted once (issue 5): the
database lives on a 4 MiB tmpfs (private mount namespace, root; skipped
otherwise) that fills up, so SQLite refuses the commits; while it is full a
connection flood over 203.0.113.0/24 arrives (50 connections from 25 addresses,
under flood_class_count 80 for the class), read again from the committed
offsets every second while the commits are refused; after space returns 35
more arrive (85: over the threshold).
Pass: after space returns, the decisions on 203.0.113.0/24 equal those of a
run on a roomy disk with the same lines (prefix, rule, connections counted,
response): the aggregator counted each line once, however often the lines
were read. Also:
every line exactly once in the database."""
import json, os, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

private_mount_ns()

HOLD = float(os.environ.get("MXW_FULL_HOLD", "5"))
FILLER_IP = "10.9.9.9"  # a protected network: stored, never decided


def flood(a, b, ips):
    """Connections that say nothing: connect and disconnect (under Postfix a
    flood is judged as its connections end)."""
    return "".join("%s mx postfix/smtpd[%d]: connect from unknown[203.0.113.%d]\n"
                   "%s mx postfix/smtpd[%d]: disconnect from unknown[203.0.113.%d] commands=0\n" %
                   (stamp(), 4000 + i, 1 + i % ips, stamp(), 4000 + i, 1 + i % ips) for i in range(a, b))


def decisions(db):
    rows = q(db, "SELECT prefix, rule, response, evidence FROM decisions WHERE prefix LIKE '203.0.113.%' ORDER BY id")
    return [(p, r, resp, json.loads(e).get("numbers", {}).get("connections")) for p, r, resp, e in rows]


def scenario(small):
    d = scratch()
    filler = None
    if small:
        sm = os.path.join(d, "small")
        os.mkdir(sm)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", sm], check=True)
        filler = os.path.join(sm, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (2560 * 1024))
        db = os.path.join(sm, "m.db")
    else:
        db = os.path.join(d, "m.db")
    log = os.path.join(d, "mail.log")
    append(log, seq_lines(0, 100, ip=FILLER_IP), "w")
    dm = Daemon(db, follow=[log], fast=False, log=os.path.join(d, "daemon.stderr")).start()
    name = "full disk" if small else "roomy disk"
    check("%s: daemon started" % name, dm.port is not None, dm.stderr()[-500:])
    check("%s: the first 100 lines are stored" % name, wait_for(lambda: len(seq_counts(db)), 100, 30) == 100)
    n = 100
    if small:
        full = False
        t0 = time.time()
        while time.time() - t0 < 60 and not full:
            append(log, seq_lines(n, n + 1000, ip=FILLER_IP))
            n += 1000
            time.sleep(0.3)
            full = "full" in dm.stderr()[dm.mark:].lower()
        check("the disk fills up (SQLite says so)", full, n)
        refused0 = dm.stderr().lower().count("trying again")
    else:
        append(log, seq_lines(n, n + 8000, ip=FILLER_IP))
        n += 8000
    append(log, flood(0, 50, 25))  # 50 connects from 25 addresses: under the class threshold
    if small:
        time.sleep(HOLD)
        retries = dm.stderr().lower().count("trying again") - refused0
        check("the batch with the flood was refused and read again several times", retries >= 2, retries)
        os.remove(filler)
    check("%s: every line stored" % name, wait_for(lambda: seq_counts(db).get(n - 1, 0), 1, 30, 0.3) == 1)
    time.sleep(2)
    check("%s: no decision under the threshold" % name, decisions(db) == [], decisions(db))
    append(log, flood(50, 85, 60))  # 35 more from other addresses: 85, over 80
    wait_for(lambda: len(decisions(db)) >= 1, True, 15)
    time.sleep(2)
    ok, why = exact(seq_counts(db), 0, n)
    check("%s: every line exactly once" % name, ok, why)
    dec = decisions(db)
    rc = dm.stop()
    # exit status 1 after refused commits (README), 0 otherwise
    check("%s: stops on SIGTERM" % name, rc == (1 if small else 0), (rc, dm.stderr()[-400:]))
    if small:
        subprocess.run(["umount", os.path.dirname(db)])
    return dec


ref = scenario(False)
check("roomy disk: the class flood is decided", ref[:1] and ref[0][:2] == ("203.0.113.0/24", "flood"), ref)
got = scenario(True)
check("full disk: the same decisions as on a roomy disk (each refused line counted once)", got == ref, (got, ref))
done()
