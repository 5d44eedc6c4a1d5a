"""test_restart_blocks.py - RELIABILITY.md 18: blocks with a 1 h expiry (two
manual ones from `mxwarden block`, one the daemon decides from a harvest)
survive restarts 10 minutes later (clean stop, then kill -9) with their
original expiry: the emitted plain/json files and the database show ~50
minutes left, not a fresh hour and not nothing; a manual unblock stays
unblocked across a restart; at T0+2h everything has expired from the files.
The clock is set with MXWARDEN_NOW."""
import calendar, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

T0 = calendar.timegm((2026, 11, 27, 20, 0, 0))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def at(t):
    return {"MXWARDEN_NOW": iso(t)}


d = scratch()
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
plain, js = os.path.join(d, "out.plain"), os.path.join(d, "out.json")
conf = os.path.join(d, "mxw.conf")
with open(conf, "w") as f:
    f.write("[output p]\nformat = plain\npath = %s\n\n[output j]\nformat = json\npath = %s\n" % (plain, js))

env = dict(os.environ)
for pfx, why in (("198.51.100.0/24", "support ticket 1"), ("203.0.113.0/24", "support ticket 2")):
    r = run([MXW, "block", pfx, "--for", "1h", "--reason", why, "--db", db, "-c", conf], env=dict(env, **at(T0)))
    check("block %s --for 1h" % pfx, r.returncode == 0, r.stderr)

# a harvester seen at T0 + 1 min: 12 unknown recipients in 12 s
harvest = "".join(seq_line(i, ip="192.0.2.77", when=stamp(T0 + 60 + i)) for i in range(12))
harvest += disconnect_line("192.0.2.77", stamp(T0 + 72), 12)
append(log, harvest, "w")


def entries():
    try:
        with open(js) as f:
            j = json.load(f)
        return {e["prefix"]: e for e in j.get("entries", [])}
    except (OSError, ValueError):
        return {}


def plain_set():
    return plain_entries(plain)


dm = Daemon(db, follow=[log], conf=conf, env=at(T0 + 60)).start()
check("daemon started at T0+1m", dm.port is not None, dm.stderr()[-500:])
want3 = {"198.51.100.0/24", "203.0.113.0/24", "192.0.2.77"}
got = wait_for(lambda: {p.split("/32")[0] for p in plain_set()}, want3, 30)
check("the plain file lists both manual blocks and the harvester", got == want3, (got, dm.stderr()[-600:]))
wait_for(lambda: any(k.startswith("192.0.2.77") for k in entries()), True, 10)
e = entries()
hv = [k for k in e if k.startswith("192.0.2.77")]
h_until = e[hv[0]]["until"] if hv else None
print("harvester decision: %s" % (e[hv[0]] if hv else None), flush=True)
wait_for(lambda: len(q(db, "SELECT id FROM decisions")), 3, 10)
rows0 = q(db, "SELECT id, prefix, until FROM decisions ORDER BY id")
check("the database holds 3 decisions", len(rows0) == 3, rows0)
rc = dm.stop()
check("clean stop", rc == 0, rc)

# restart ten minutes later
os.remove(plain)
os.remove(js)
dm = Daemon(db, follow=[log], conf=conf, env=at(T0 + 600)).start()
got = wait_for(lambda: {p.split("/32")[0] for p in plain_set()}, want3, 30)
check("after a restart at T0+10m the plain file is rewritten with the 3 blocks", got == want3, got)
wait_for(lambda: len(entries()), 3, 10)
e = entries()
check("the manual blocks keep until = T0+1h (~50 min left, not reset)",
      all(e.get(p, {}).get("until") == iso(T0 + 3600) for p in ("198.51.100.0/24", "203.0.113.0/24")),
      {p: e.get(p, {}).get("until") for p in e})
hv = [k for k in e if k.startswith("192.0.2.77")]
check("the harvester's block keeps its expiry", hv and e[hv[0]]["until"] == h_until,
      (h_until, e[hv[0]]["until"] if hv else None))
rows1 = q(db, "SELECT id, prefix, until FROM decisions ORDER BY id")
check("no decision was added or changed by the restart", rows1 == rows0, (rows0, rows1))

# a crash: kill -9 and restart at T0+12m (evidence replayed from the database)
time.sleep(1)
dm.kill9()
dm = Daemon(db, follow=[log], conf=conf, env=at(T0 + 720)).start()
time.sleep(2)
rows2 = q(db, "SELECT id, prefix, until FROM decisions ORDER BY id")
check("after kill -9 and a restart at T0+12m: the same decisions, same expiry", rows2 == rows0, (rows0, rows2))
live = q(db, "SELECT prefix FROM decisions WHERE ended_at IS NULL AND until > ?", T0 + 720)
check("3 decisions still in force", len(live) == 3, live)

# manual unblock while running; survives a restart
r = run([MXW, "unblock", "203.0.113.0/24", "--reason", "customer called", "--db", db, "-c", conf],
        env=dict(env, **at(T0 + 780)))
check("unblock 203.0.113.0/24", r.returncode == 0, r.stderr)
got = wait_for(lambda: "203.0.113.0/24" in plain_set(), False, 10)
check("the running daemon drops the unblocked prefix from its files", got is False, plain_set())
rc = dm.stop()
check("clean stop", rc == 0, rc)
dm = Daemon(db, follow=[log], conf=conf, env=at(T0 + 900)).start()
time.sleep(2)
got = plain_set()
check("after a restart at T0+15m the unblocked prefix stays out", "203.0.113.0/24" not in got
      and "198.51.100.0/24" in got, got)
r = run([MXW, "lookup", "203.0.113.9", "--db", db, "--json"], env=dict(env, **at(T0 + 900)))
j = json.loads(r.stdout) if r.returncode == 0 else {}
check("lookup: 203.0.113.9 is not blocked", j.get("blocked") is False, r.stdout[:300])
rc = dm.stop()

# at T0 + 2h everything has expired (harvester: 1h +-10%)
dm = Daemon(db, follow=[log], conf=conf, env=at(T0 + 7200)).start()
got = wait_for(lambda: plain_set(), set(), 10)
check("at T0+2h the plain file is empty", got == set(), got)
r = run([MXW, "export", "--format", "plain", "--db", db], env=dict(env, **at(T0 + 7200)))
check("export at T0+2h is empty", r.returncode == 0 and not [l for l in r.stdout.splitlines()
                                                             if l and not l.startswith("#")], r.stdout)
dm.stop()
done()
