#!/usr/bin/env python3
"""test_notify_run.py - `mxwarden run` tells what it decides ([notify]) and
writes the digest on its schedule ([report] digest), end to end:

- the [notify] command (here tee, appending its stdin to a file) gets one
  document per decision the judge stored, each with the id, prefix, rule and
  response of its row in the decisions table, and the upgrades the audit
  table records (coalesced counts included), all after their commit;
- a circuit breaker that opens (40 blocks at once on an output of 10) is one
  "breaker" document naming the output;
- the digest of the newest slot is written at start ([report] digest =
  daily: the slot is today's 00:00 UTC), once: a restart does not write it
  again;
- SIGHUP with [notify] removed stops the documents: a second breaker
  opening after it tells nothing;
- `import` tells nothing."""
import calendar, json, os, shutil, signal, sqlite3, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import mxwtest  # noqa: E402
from mxwtest import MKMAILLOG, MXW, check, q  # noqa: E402,F401


def docs(path):
    try:
        with open(path) as f:
            return [json.loads(x) for x in f if x.strip()]
    except FileNotFoundError:
        return []


def wait(fn, timeout=30):
    """fn() until it gives the same truthy value twice, 1 s apart."""
    end, last = time.time() + timeout, None
    while time.time() < end:
        v = fn()
        if v and v == last:
            return v
        last = v
        time.sleep(1.0)
    return last


d = tempfile.mkdtemp(prefix="mxw-notify-")
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
out, reports, bl = os.path.join(d, "notify.jsonl"), os.path.join(d, "reports"), os.path.join(d, "bl.txt")
conf = os.path.join(d, "c.ini")
base_conf = ("[safety]\nmta_trusted = none\nmax_change = 20%%\nbreaker_min = 5\nbreaker_hold = 2s\n"
             "[output bl]\nformat = plain\npath = %s\n"
             "[report]\ndigest = daily\ndir = %s\n" % (bl, reports))
with open(conf, "w") as f:
    f.write(base_conf + "[notify]\ncommand = /usr/bin/tee -a %s\ninterval = 1s\n" % out)

p = subprocess.run([sys.executable, MKMAILLOG, "--lines", "30000", "--seed", "5", "--timestamp", "iso8601",
                    "-o", log], capture_output=True, text=True)
check("mkmaillog", p.returncode == 0, p.stderr)


def pf(t, pid, text):
    return "%s mx postfix/smtpd[%d]: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t)), pid, text)


# after the generated day: one harvester, then the same address coming back
# 35 times while our block refuses it (an upgrade to drop, rule returned)
t, ip, extra = calendar.timegm((2026, 11, 27, 1, 0, 0)), "203.0.113.77", []
for c in range(3):
    extra.append(pf(t, 900 + c, "connect from unknown[%s]" % ip))
    for r in range(5):
        extra.append(pf(t, 900 + c, "NOQUEUE: reject: RCPT from unknown[%s]: 550 5.1.1 <h%d%d@mx.example.org>: "
                        "Recipient address rejected: User unknown in local recipient table; from=<a@b.example> "
                        "to=<h%d%d@mx.example.org> proto=ESMTP helo=<h.example>" % (ip, c, r, c, r)))
    extra.append(pf(t + 5, 900 + c, "disconnect from unknown[%s] ehlo=1 mail=1 rcpt=0/5 quit=1 commands=3/8" % ip))
    t += 120
for c in range(35):
    extra.append(pf(t, 1000 + c, "connect from unknown[%s]" % ip))
    extra.append(pf(t, 1000 + c, "NOQUEUE: reject: RCPT from unknown[%s]: 554 5.7.1 <unknown[%s]>: Client host "
                    "rejected: mxwarden harvest: tried 15 unknown recipients; from=<a@b.example> "
                    "to=<x@mx.example.org> proto=ESMTP helo=<h.example>" % (ip, ip)))
    extra.append(pf(t + 1, 1000 + c, "disconnect from unknown[%s] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4" % ip))
    t += 60
with open(log, "a") as f:
    f.writelines(extra)

# ---- import tells nothing
idb = os.path.join(d, "i.db")
p = subprocess.run([MXW, "import", "-q", "-c", conf, "--db", idb, log], capture_output=True, text=True)
n_imported = q(idb, "SELECT count(*) FROM decisions")[0][0]
check("import: decisions taken (%d), nothing told" % n_imported, p.returncode == 0 and n_imported > 0 and
      not docs(out), p.stderr[-800:])


def daemon():
    errf = open(db + ".stderr", "a")
    return subprocess.Popen([MXW, "run", "-c", conf, "--db", db, "--db-fast", "--listen", "127.0.0.1:0",
                             "--follow", log], stdout=subprocess.DEVNULL, stderr=errf)


def stderr():
    with open(db + ".stderr", errors="replace") as f:
        return f.read()


def stop(dm):
    dm.send_signal(signal.SIGTERM)
    dm.wait(60)


dm = daemon()
engine_ids = wait(lambda: sorted(r[0] for r in q(db, "SELECT id FROM decisions WHERE created_by = 'engine'"))
                  if os.path.exists(db) else None, 60)
got = wait(lambda: len(docs(out)), 30)
told = docs(out)
rows = {r[0]: r[1:] for r in q(db, "SELECT id, prefix, rule, response, scope FROM decisions")}
dec = [x for x in told if x["event"] == "decision"]
upg = [x for x in told if x["event"] == "upgrade"]
check("one decision document per stored decision (%d)" % len(engine_ids or []),
      engine_ids and sorted(x["id"] for x in dec) == engine_ids,
      (engine_ids, sorted(x.get("id") for x in dec)))
bad = [x for x in dec if rows.get(x["id"], ())[:2] != (x["prefix"], x["rule"])]
check("each document names its row's prefix and rule", not bad, bad[:3])
n_upgrades = q(db, "SELECT count(*) FROM audit WHERE action = 'upgrade'")[0][0]
# an upgrade before the command's next start is folded into the pending
# document of its decision ("coalesced": changes it stands for)
folded = sum(x.get("coalesced", 1) - 1 for x in dec) + sum(x.get("coalesced", 1) for x in upg)
latest = {x["id"]: x for x in dec + upg}
check("upgrades told as the audit records them (%d), each document with its row's last response" % n_upgrades,
      n_upgrades > 0 and folded == n_upgrades and
      all(rows[i][2] == x["response"] for i, x in latest.items()), (n_upgrades, upg[:3]))

# ---- the digest of the newest slot, written once
now = int(time.time())
slot = now - now % 86400
stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(slot))
txt = os.path.join(reports, "digest-%s.txt" % stamp)
got = wait(lambda: os.path.exists(txt) and os.path.exists(txt[:-4] + ".html"), 20)
check("the newest slot's digest is written at start (%s)" % os.path.basename(txt), got, os.listdir(d))
mode = os.stat(txt).st_mode & 0o777 if got else None
check("the digest is 0640", mode == 0o640, oct(mode or 0))

# ---- a breaker opening: 10 blocks, then 40 more in one go
def block_all(ips):
    """manual blocks in one transaction (as `mxwarden block` writes them): one update of the outputs"""
    con = sqlite3.connect(db, timeout=10)
    with con:
        for ip in ips:
            con.execute("INSERT INTO decisions(prefix, family, prefix_len, addr, scope, response, rule, reason,"
                        " since, until, manual, created_by, created_at) VALUES(?, 4, 32, ?, 'ip', 'drop',"
                        " 'manual', 'test', ?, ?, 1, 'test', ?)",
                        (ip + "/32", bytes(int(x) for x in ip.split(".")) + bytes(12), now, now + 86400, now))
    con.close()


# (not 192.0.2.0/24: a test machine may hold an address there, which is protected)
block_all(["198.51.100.%d" % i for i in range(10)])
held = wait(lambda: open(bl).read().count("198.51.100.") if os.path.exists(bl) else None, 20)
check("10 blocks in the output (below breaker_min before: not held)", held == 10, held)
block_all(["203.0.113.%d" % i for i in range(100, 140)])
brk = wait(lambda: [x for x in docs(out) if x["event"] == "breaker"], 20)
check("a breaker opening is one document naming the output",
      brk and len(brk) == 1 and brk[0]["output"] == "bl" and brk[0]["change"] >= 40, brk)

# the held change goes through after breaker_hold: the breaker closes and
# could open again
released = wait(lambda: open(bl).read().count("203.0.113.1"), 20)
check("the held change is written after breaker_hold", released == 40, released)

# ---- SIGHUP without [notify]: the next opening tells nothing
with open(conf, "w") as f:
    f.write(base_conf)
dm.send_signal(signal.SIGHUP)
time.sleep(1.5)
n_before = len(docs(out))
block_all(["203.0.113.%d" % i for i in range(140, 240)])
time.sleep(3)
check("the breaker opened again", stderr().count("CIRCUIT BREAKER OPEN") == 2, stderr()[-1500:])
check("after SIGHUP without [notify], nothing more is told", len(docs(out)) == n_before,
      docs(out)[n_before:][:3])
stop(dm)
check("run stopped cleanly", dm.returncode == 0, stderr()[-1500:])

# ---- a restart does not write the slot again
before = os.stat(txt).st_mtime_ns
dm = daemon()
time.sleep(3)
stop(dm)
check("a restart writes the done slot again never", os.stat(txt).st_mtime_ns == before and
      sorted(x for x in os.listdir(reports) if x.endswith(".txt")) == [os.path.basename(txt)],
      os.listdir(reports))

if mxwtest.failures:
    print(stderr()[-3000:])
else:
    shutil.rmtree(d)
mxwtest.done()
