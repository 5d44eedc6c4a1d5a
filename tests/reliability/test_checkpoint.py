"""test_checkpoint.py - restart exactness after a crash (issue 4): the
aggregator's state is checkpointed into the database with a batch's file
offsets, so `kill -9` without the saved-state file of a clean stop loses no
connection count. A connection flood spread over 203.0.113.0/24 (one connection
per address, far under the per-IP limit) stays under the class threshold
(flood_class_count 80) before the kill (50 connects) and crosses it after the
restart (40 more): the decision equals that of one uninterrupted run (prefix,
rule, connections counted), and the restart replays no stored row.

The image is a file of its own beside the database (m.db.ckpt-SEQ, 0640),
written by a forked child while `run` reads on; the row names it (16
bytes: the database does not grow by an image per checkpoint); at most the
committed image and a new one exist. A damaged image is refused at the
restart (its CRC), which replays the stored events instead."""
import json, os, re, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

CONF = "[storage]\ncheckpoint_interval = 1s\n"


def connect(i, n):
    """One connection of a flood: connect, nothing said, disconnect (a flood
    is judged as its connections end)."""
    return ("%s mx postfix/smtpd[%d]: connect from unknown[203.0.113.%d]\n"
            "%s mx postfix/smtpd[%d]: disconnect from unknown[203.0.113.%d] commands=0\n" %
            (stamp(), 3000 + n, i, stamp(), 3000 + n, i))


PART1 = "".join(connect(1 + i % 50, i) for i in range(50))
PART2 = "".join(connect(51 + i % 40, 50 + i) for i in range(40))


def flood_decisions(db):
    rows = q(db, "SELECT prefix, rule, evidence FROM decisions WHERE prefix LIKE '203.0.113.%' ORDER BY id")
    return [(p, r, json.loads(e).get("numbers", {}).get("connections")) for p, r, e in rows]


def lines_read(db):
    r = q(db, "SELECT coalesce(sum(lines_read), 0) FROM sources")
    return r[0][0] if r else 0


def ckpt_lines(db):
    try:
        r = q(db, "SELECT lines FROM agg_checkpoint WHERE id = 1")
    except Exception:
        return -1
    return r[0][0] if r else -1


def ckpt_files(d):
    return sorted(f for f in os.listdir(d) if f.startswith("m.db.ckpt-"))


def scenario(kill, damage=False):
    d = scratch()
    log, db, conf = os.path.join(d, "mail.log"), os.path.join(d, "m.db"), os.path.join(d, "mxw.conf")
    with open(conf, "w") as f:
        f.write(CONF)
    append(log, "", "w")
    dm = Daemon(db, follow=[log], conf=conf).start()
    check("%s: daemon started" % ("kill" if kill else "reference"), dm.port is not None, dm.stderr()[-600:])
    append(log, PART1)
    check("part 1 read", wait_for(lambda: lines_read(db), 100, 20) == 100, lines_read(db))
    check("no decision under the threshold", flood_decisions(db) == [], flood_decisions(db))
    restart_log = ""
    if kill:
        check("a checkpoint holds part 1", wait_for(lambda: ckpt_lines(db) >= 100, True, 20), ckpt_lines(db))
        ref = q(db, "SELECT length(data), hex(substr(data, 9, 8)) FROM agg_checkpoint WHERE id = 1")[0]
        seq = int.from_bytes(bytes.fromhex(ref[1]), "little")
        files = ckpt_files(d)
        img = os.path.join(d, "m.db.ckpt-%d" % seq)
        check("the row names the image file (%d bytes in the row)" % ref[0], ref[0] == 16 and os.path.exists(img),
              (ref, files))
        check("the image is 0640", os.path.exists(img) and os.stat(img).st_mode & 0o777 == 0o640,
              oct(os.stat(img).st_mode) if os.path.exists(img) else files)
        check("at most the committed image and a new one", 1 <= len(files) <= 2, files)
        dm.kill9()
        if damage:
            with open(img, "r+b") as f:
                f.seek(200)
                f.write(b"\xff" * 64)
        check("no saved-state file after kill -9", not os.path.exists(db + ".aggstate"))
        dm = Daemon(db, follow=[log], conf=conf).start()
        check("restarted after kill -9", dm.port is not None, dm.stderr()[-600:])
        if damage:  # the connects of part 1 are not stored: no decision to wait for
            dm.stop()
            return None, dm.stderr()
    append(log, PART2)
    got = wait_for(lambda: len(flood_decisions(db)), 1, 20)
    time.sleep(1.5)
    dec = flood_decisions(db)
    if kill:
        restart_log = dm.stderr()  # the restore is logged after the web server starts
    rc = dm.stop()
    check("clean stop", rc == 0, (rc, dm.stderr()[-400:]))
    return dec, restart_log


ref, _ = scenario(False)
check("reference run: the class flood is decided", ref[:1] and ref[0][:2] == ("203.0.113.0/24", "flood"), ref)
got, rlog = scenario(True)
_, dlog = scenario(True, damage=True)
check("a damaged image is refused at the restart, the stored events replayed instead",
      "is damaged (its CRC does not match)" in dlog and "replayed instead" in dlog, dlog[-1200:])
check("after kill -9 and restart: the same decision (prefix, rule, connections)", got == ref, (got, ref))
m = re.search(r"aggregator: .*checkpoint of .* loaded.*replayed (\d+) events", rlog)
check("the restart loaded the checkpoint", m is not None, rlog[-800:])
check("...and replayed no row (nothing was stored after it)", m is not None and m.group(1) == "0",
      m and m.group(0))
done()
