#!/usr/bin/env python3
"""test_import.py - `mxwarden import`: a mkmaillog file imported twice adds
nothing the second time; the .gz of a log gives the same database content
as the log itself; standard input works; a grown file adds only its new
lines; a missing file is an error (exit 1) that names it; a damaged .gz
keeps the lines before the damage."""
import gzip, json, os, shutil, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

d = scratch()
log = os.path.join(d, "mail.log")
subprocess.run([sys.executable, MKMAILLOG, "--lines", "30000", "--seed", "11", "-o", log], check=True,
               capture_output=True)
with open(log, "rb") as f:
    raw = f.read()
with gzip.open(log + ".gz", "wb") as f:
    f.write(raw)
nlines = raw.count(b"\n")


def imp(db, *files, stdin=None):
    p = subprocess.run([MXW, "import", "--db", db, *files], input=stdin, capture_output=True, timeout=120)
    return p.returncode, p.stderr.decode(errors="replace")


def content(db):
    s = stats_json(db)
    for k in ("files", "db_bytes"):
        s.pop(k, None)
    return s, q(db, "SELECT ts, ip, kind, category, code, rcpt_to, raw FROM events ORDER BY ts, id")


a, b, c = (os.path.join(d, n) for n in ("a.db", "b.db", "c.db"))
rc, err = imp(a, log)
check("import exits 0", rc == 0, err)
s1 = stats_json(a)
check("lines_read = the file's lines", s1.get("lines_read") == nlines, (s1.get("lines_read"), nlines))
rc, err = imp(a, log)
s2 = stats_json(a)
check("the same file again adds nothing", rc == 0 and s2["lines_read"] == s1["lines_read"] and
      s2["events"] == s1["events"] and "already imported" in err, err)
rc, err = imp(a, log + ".gz")
s3 = stats_json(a)
check("its .gz twin adds nothing either", rc == 0 and s3["events"] == s1["events"], err)
rc, err = imp(b, log + ".gz")
check(".gz import equals plain import (counts and every stored event)", rc == 0 and content(b) == content(a), err)
# the pipelined import (SQLite on a writer thread) against --no-pipeline, with
# small batches (20 x 20 lines) so that many batches and decisions cross
def tables(db):
    out = {}
    for t, cols in (("events", "*"), ("rollup_minute", "*"), ("rollup_hour", "*"), ("top_hour", "*"),
                    ("counters", "*"), ("class_minute", "*"), ("class_hour", "*"),
                    ("decisions", "id, prefix, rule, reason, score, since, until, evidence, response, ended_at, "
                                  "end_reason"),
                    # upgrades of decisions the import made (the pipe finds them by prefix and since)
                    ("decision_changes", "decision_id, change, from_response, response, score, rule, reason, until"),
                    ("sources", "id, path, offset, lines_read")):
        out[t] = q(db, "SELECT %s FROM %s ORDER BY 1, 2, 3" % (cols, t))
    return out


small = os.path.join(d, "small.ini")
with open(small, "w") as f:
    # score_reject above score_defer: decisions start at defer and some are upgraded
    f.write("[collector]\nbatch_lines = 20\n[rules]\nscore_reject = 3\n")
pp, npp = os.path.join(d, "pipe.db"), os.path.join(d, "nopipe.db")
r1 = subprocess.run([MXW, "import", "-q", "-c", small, "--db", pp, log], capture_output=True, timeout=120)
r2 = subprocess.run([MXW, "import", "-q", "-c", small, "--no-pipeline", "--db", npp, log], capture_output=True,
                    timeout=120)
tp, tn = tables(pp), tables(npp)
check("pipelined import = one-thread import: every table (events, rollups, decisions, offsets)",
      r1.returncode == 0 and r2.returncode == 0 and tp == tn and len(tp["decisions"]) > 0 and
      len(tp["decision_changes"]) > 0 and len(tp["events"]) > 1000,
      ([k for k in tp if tp[k] != tn[k]], len(tp["decision_changes"])))
# Sendmail: rows stored before the line naming their client are attributed
# later (by the row's handle in the pipe), also across batches and files
sm = os.path.join(d, "sm.log")
subprocess.run([sys.executable, MKMAILLOG, "--format", "sendmail", "--lines", "30000", "--seed", "4", "-o", sm],
               check=True, capture_output=True)
with open(sm) as f:
    sml = f.readlines()
with open(sm + ".a", "w") as f:
    f.writelines(sml[:15000])
with open(sm + ".b", "w") as f:
    f.writelines(sml[15000:])
sp_, sn_ = os.path.join(d, "smp.db"), os.path.join(d, "smn.db")
r1 = subprocess.run([MXW, "import", "-q", "-c", small, "--db", sp_, sm + ".a", sm + ".b"], capture_output=True,
                    timeout=120)
r2 = subprocess.run([MXW, "import", "-q", "-c", small, "--no-pipeline", "--db", sn_, sm + ".a", sm + ".b"],
                    capture_output=True, timeout=120)
ts_, tn_ = tables(sp_), tables(sn_)
attributed = q(sp_, "SELECT coalesce(sum(n), 0) FROM counters WHERE name = 'attribution' AND key = 'attributed'")
check("Sendmail in two files, pipelined = one thread, attributions included (%d attributed rows)" %
      attributed[0][0], r1.returncode == 0 and r2.returncode == 0 and ts_ == tn_ and attributed[0][0] > 0,
      ([k for k in ts_ if ts_[k] != tn_[k]], r1.stderr[-300:]))

# kill -9 of a pipelined import at several moments, then an import to the end:
# every line counted once (events, rollups, counters, offsets as one clean import;
# decisions may differ: a killed import saves no aggregator state)
kk = os.path.join(d, "killed.db")
kills, mid = 0, []
for delay in (0.03, 0.04, 0.05, 0.06, 0.08):
    p = subprocess.Popen([MXW, "import", "-q", "-c", small, "--db", kk, log], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(delay)
    if p.poll() is None:
        p.kill()
        kills += 1
    p.wait()
    if os.path.exists(kk):
        mid.append(lines_read(kk))
rk = subprocess.run([MXW, "import", "-q", "-c", small, "--db", kk, log], capture_output=True, timeout=120)
tk = tables(kk)
same = [t for t in tp if t not in ("decisions", "decision_changes") and tp[t] != tk[t]]
check("pipelined import killed %d times (kill -9), then run to the end: every table but decisions as one "
      "clean import" % kills, rk.returncode == 0 and kills >= 2 and not same and
      any(0 < m < nlines for m in mid), (same, mid, rk.stderr[-300:]))
rc, err = imp(c, "-", stdin=raw)
sc = stats_json(c)
check("stdin import equals file import", rc == 0 and sc["events"] == s1["events"] and
      sc["lines_read"] == nlines, err)

# a grown file: only the new lines
with open(log, "ab") as f:
    f.write(seq_lines(0, 10).encode())
rc, err = imp(a, log)
s4 = stats_json(a)
check("a grown file adds only its 10 new lines", s4["lines_read"] == nlines + 10 and
      s4["events"].get("reject", 0) == s1["events"].get("reject", 0) + 10, (s4["lines_read"], err))

rc, err = imp(a, os.path.join(d, "nope.log"))
check("a missing file: exit 1 and its name", rc == 1 and "nope.log" in err, (rc, err))
bad = os.path.join(d, "bad.gz")
with open(log + ".gz", "rb") as f, open(bad, "wb") as o:
    o.write(f.read()[: 200000])
e = os.path.join(d, "e.db")
rc, err = imp(e, bad)
se = stats_json(e)
check("a truncated .gz: exit 1, an error naming it, the lines before kept", rc == 1 and "bad.gz" in err and
      0 < se.get("lines_read", 0) < nlines, (rc, err[-300:], se.get("lines_read")))
# the progress line on a terminal (script(1) gives the import a pty)
if shutil.which("script"):
    f = os.path.join(d, "f.db")
    p = subprocess.run(["script", "-q", "-e", "-c", "%s import --db %s %s" % (MXW, f, log), "/dev/null"],
                       capture_output=True, timeout=120)
    out = p.stdout.decode(errors="replace").replace("\r", "\n")
    prog = [l for l in out.splitlines() if "lines/s" in l and "ETA" in l]
    check("on a terminal: a progress line with lines, lines/s, percent and ETA, ending at 100%",
          p.returncode == 0 and prog and "%d lines" % (nlines + 10) in prog[-1] and "100%" in prog[-1], out[-500:])
    p = subprocess.run([MXW, "import", "--db", os.path.join(d, "g.db"), log], capture_output=True, timeout=120)
    check("not on a terminal: no progress line", "ETA" not in p.stderr.decode(errors="replace"))
shutil.rmtree(d)
done()
