#!/usr/bin/env python3
"""test_logtime.py - time in replay is log time (aggregator.h, "Time"): the
same multi-day log, with abusers that come back day after day, gives the same
decisions (prefix, scope, rule, response, score, since, until, how and when
each ended, and every change with its time) whether it is

  * imported in one go (the reference),
  * imported in parts: four files in one import, or the file split in two
    imports with a restart between them,
  * followed while it is written (`run`, lines appended in chunks, the wall
    clock starting a minute before the log's first line),
  * imported and interrupted, then imported again until done: kill -9 or
    SIGTERM while a checkpoint is stored, in the middle of a batch's COMMIT
    (a torn write), right after a COMMIT, at page writes spread over the
    import, twice in a row.

The kills come from killshim.so (LD_PRELOAD), which sends the signal at the
chosen database write. The log is two weeks older than the wall clock
(MXWARDEN_NOW), as when old logs are imported: nothing may be judged,
expired or stamped by the wall clock. And on the reference itself: returning
abusers got new decisions after their decisions expired (ended_at = until,
"expired"), escalated (past_decisions counts the earlier ones), every time
stamp is log time, and every change is at a time inside the log.

test_agg_cli.py holds the same equality on the real Postfix capture (one
go, two parts, followed); this one holds it over days and interruptions.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

MXW = os.environ["MXWARDEN"]
SHARED = os.environ["MXW_SHARED"]
BUILD = os.environ["MXW_BUILD"]
SHIM = sys.argv[1] if len(sys.argv) > 1 else os.path.join(BUILD, "tests", "aggregator", "killshim.so")
MKMAILLOG = os.path.join(SHARED, "tools", "mkmaillog")
START = "2026-11-20T00:00:00Z"
WALL = "2026-12-06T00:00:00Z"  # two weeks after the log
# the follow's wall clock starts a minute before the log's first line, as
# when the log is being written (a slow start must not put it past the
# first decision, 3 s into the log: the drained daemon moves the judge's
# clock on to the wall clock)
FOLLOW_NOW = "2026-11-19T23:59:00Z"
ENV = dict(os.environ, MXWARDEN_NOW=WALL)
ENV["ASAN_OPTIONS"] = (ENV.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
fails = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        fails.append(msg)
    return cond


def run(args, kill=None, sig="KILL"):
    env = dict(ENV)
    if kill:
        env.update(LD_PRELOAD=SHIM, MXW_KILL=kill, MXW_KILL_SIG=sig)
    p = subprocess.run([MXW] + args, capture_output=True, text=True, env=env, timeout=120)
    if kill:
        return p
    if p.returncode != 0:
        print(p.stdout, p.stderr)
        raise SystemExit("mxwarden %s: exit %d" % (" ".join(args), p.returncode))
    return p


def dump(db):
    """Every automatic decision with how it ended and its changes, sorted."""
    con = sqlite3.connect(db)
    ch = {}
    for r in con.execute("SELECT decision_id, at, change, from_response, response, rule, until"
                         " FROM decision_changes ORDER BY id"):
        ch.setdefault(r[0], []).append(r[1:])
    rows = con.execute("SELECT id, prefix, scope, rule, response, score, since, until, ended_at, end_reason"
                       " FROM decisions WHERE manual = 0").fetchall()
    con.close()
    return sorted(r[1:] + (tuple(ch.get(r[0], ())),) for r in rows)


def figures(d):
    return "%d decisions on %d prefixes, %d changes" % (len(d), len({x[0] for x in d}),
                                                          sum(len(x[-1]) for x in d))


def same(name, ref, db, total):
    got = dump(db)
    con = sqlite3.connect(db)
    lines = con.execute("SELECT sum(lines_read) FROM sources").fetchone()[0]
    con.close()
    check(lines == total, "%s: every line read once (%s of %d)" % (name, lines, total))
    ok = check(got == ref, "%s: %s, the same as in one go" % (name, figures(got)))
    if not ok:
        for x in sorted(set(ref) - set(got))[:3]:
            print("   only in one go:", x)
        for x in sorted(set(got) - set(ref))[:3]:
            print("   only here:     ", x)


def interrupted(tmp, name, files, kills, sig="KILL"):
    """Import files, interrupted at each point of kills in turn, then again
    until done; returns the database."""
    db = os.path.join(tmp, name + ".db")
    args = ["import", "-q", "-c", CFG, "--db", db] + files
    for k in kills:
        p = run(args, kill=k, sig=sig)
        want = -signal.SIGKILL if sig == "KILL" else -signal.SIGTERM
        check(p.returncode == want and "killshim: killed" in p.stderr,
              "%s: the import was stopped by SIG%s at %s (exit %d)" % (name, sig, k, p.returncode))
    run(args)
    return db


with tempfile.TemporaryDirectory(prefix="mxw-logtime-") as tmp:
    # three days of mail, 20 abusers and 3 abusive classes that keep coming
    # back, 80,000 lines (ISO time stamps: no year to infer)
    log = os.path.join(tmp, "mail.log")
    subprocess.run([MKMAILLOG, "--lines", "80000", "--seed", "3", "--start", START[:-1], "--sim-rate", "0.3",
                    "--timestamp", "iso8601", "--abusers", "20", "--abuser-classes", "3", "-o", log],
                   check=True, capture_output=True)
    lines = open(log, "rb").read().split(b"\n")[:-1]
    total = len(lines)
    parts = []
    for i in range(4):
        parts.append(os.path.join(tmp, "part%d.log" % i))
        with open(parts[-1], "wb") as f:
            f.write(b"".join(l + b"\n" for l in lines[i * total // 4:(i + 1) * total // 4]))
    halves = [os.path.join(tmp, "half%d.log" % i) for i in range(2)]
    for i, h in enumerate(halves):
        with open(h, "wb") as f:
            f.write(b"".join(l + b"\n" for l in lines[i * total // 2:(i + 1) * total // 2]))
    # batches of 5,000 lines in an import (20 x batch_lines): 16 commits
    CFG = os.path.join(tmp, "cfg.ini")
    with open(CFG, "w") as f:
        # score_reject above score_defer: decisions start at defer and some are upgraded (changes)
        f.write("[collector]\nbatch_lines = 250\n[rules]\nscore_reject = 3\n")

    # -- the reference: one go
    t0 = time.time()
    db_a = os.path.join(tmp, "a.db")
    run(["import", "-q", "-c", CFG, "--db", db_a, log])
    ref = dump(db_a)
    print("one go: %s (%.1fs)" % (figures(ref), time.time() - t0))

    # returning abusers: decisions that ended at their until, then new ones,
    # escalated; every time stamp is log time
    con = sqlite3.connect(db_a)
    first, last = (int(x) for x in con.execute("SELECT min(ts), max(ts) FROM events").fetchone())
    first, last = first // 1000000, last // 1000000
    byp = {}
    for pfx, since, until, ended, why, ev in con.execute(
            "SELECT prefix, since, until, ended_at, end_reason, evidence FROM decisions ORDER BY since, id"):
        byp.setdefault(pfx, []).append((since, until, ended, why, json.loads(ev).get("past_decisions")))
    at_min, at_max = con.execute("SELECT min(at), max(at) FROM decision_changes").fetchone()
    con.close()
    back = {p: v for p, v in byp.items() if len(v) >= 3}
    check(len(back) >= 10, "%d prefixes got 3 or more decisions over the days (abusers who came back)" % len(back))
    bad = [(p, v) for p, v in byp.items()
           if any(v[i][2] != v[i][1] or v[i][3] != "expired" or v[i + 1][0] < v[i][1] for i in range(len(v) - 1))]
    check(not bad, "each earlier decision ended at its until (expired) before the next one began: %s" % bad[:2])
    # (an upgrade's evidence replaces the first and has no past_decisions)
    bad = [(p, [x[4] for x in v]) for p, v in byp.items()
           if any(x[4] is not None and x[4] != i for i, x in enumerate(v))]
    counted = sum(1 for v in back.values() for i, x in enumerate(v) if i >= 2 and x[4] == i)
    check(not bad and counted >= 10, "each new decision on a prefix counts the earlier ones (past_decisions 0, 1, "
          "2...; %d third or later decisions say so): %s" % (counted, bad[:2]))
    esc = [p for p, v in back.items() if v[2][1] - v[2][0] >= 3 * (v[0][1] - v[0][0])]
    check(len(esc) >= len(back) // 2, "%d of %d returning prefixes: the third decision lasts 3x the first or more"
          % (len(esc), len(back)))
    stamps = [x for v in byp.values() for d in v for x in d[:3] if x is not None]
    check(all(first <= s <= last + 40 * 86400 for s in stamps) and first <= at_min and at_max <= last,
          "every since, until, ended_at and change time is log time (changes %d..%d inside the log %d..%d)"
          % (at_min, at_max, first, last))

    # -- in parts
    db = os.path.join(tmp, "parts.db")
    run(["import", "-q", "-c", CFG, "--db", db] + parts)
    same("four files in one import", ref, db, total)
    db = os.path.join(tmp, "halves.db")
    for h in halves:
        run(["import", "-q", "-c", CFG, "--db", db, h])
    same("the file in two imports", ref, db, total)

    # -- followed while it is written
    db = os.path.join(tmp, "follow.db")
    live = os.path.join(tmp, "live.log")
    open(live, "wb").close()
    d = subprocess.Popen([MXW, "run", "-c", CFG, "--db", db, "--follow", live, "--listen", "127.0.0.1:0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=dict(ENV, MXWARDEN_NOW=FOLLOW_NOW))
    time.sleep(0.3)
    with open(live, "ab") as f:
        for i in range(0, total, 4000):
            f.write(b"".join(l + b"\n" for l in lines[i:i + 4000]))
            f.flush()
            time.sleep(0.05)
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            con = sqlite3.connect(db)
            n = con.execute("SELECT sum(lines_read) FROM sources").fetchone()[0] or 0
            con.close()
        except sqlite3.Error:
            n = 0
        if n >= total:
            break
    d.send_signal(signal.SIGTERM)
    d.communicate(timeout=30)
    same("followed while written", ref, db, total)

    # -- interrupted, then imported again until done
    n = 0
    for name, files, kills, sig in [
            ("kill -9 storing the first checkpoint", parts, ["checkpoint:1"], "KILL"),
            ("kill -9 storing the checkpoint at the end of the 2nd file", parts, ["checkpoint:3"], "KILL"),
            ("kill -9 in the 4th commit's 3rd page write", parts, ["commit:4:3"], "KILL"),
            ("kill -9 in the 9th commit's 1st page write", parts, ["commit:9:1"], "KILL"),
            ("kill -9 right after the 14th commit", parts, ["commit:14:100000"], "KILL"),
            ("SIGTERM in the 7th commit", parts, ["commit:7:2"], "TERM"),
            ("SIGTERM storing the checkpoint at the end of the 1st file", parts, ["checkpoint:2"], "TERM"),
            ("kill -9 writing the 2nd checkpoint image (its 2nd write)", parts, ["image:2:2"], "KILL"),
            ("kill -9 with the 1st checkpoint image written, before it is renamed into place", parts,
             ["image:1:0"], "KILL"),
            ("kill -9 at the 1,500th page write, one file", [log], ["pwrite:1500"], "KILL"),
            ("kill -9 at the 4,000th page write, one file", [log], ["pwrite:4000"], "KILL"),
            ("kill -9 twice: in the 6th commit, then in the 3rd after the restart", parts,
             ["commit:6:2", "commit:3:1"], "KILL"),
            ("kill -9 twice, one file: in a commit, then storing a checkpoint", [log],
             ["commit:5:4", "checkpoint:1"], "KILL")]:
        n += 1
        db = interrupted(tmp, "k%d" % n, files, kills, sig)
        same(name, ref, db, total)
    print("%.1fs in all" % (time.time() - t0))

if fails:
    print("%d failure(s)" % len(fails))
    sys.exit(1)
