"""test_clock.py - RELIABILITY.md 26, clock trouble through `mxwarden run`:
(a) year-less RFC 3164 lines across Dec 31 -> Jan 1, read by a daemon whose
clock (MXWARDEN_NOW) is early in January, are stored with the right year and
the decision they cause is in force; (b) with libfaketime (skipped when it
is missing or on a sanitizer build) the wall clock jumps 2 h forward while
the daemon runs: the 1 h block expires from the emitted file, the 3 h block
stays, nothing crashes and lines keep flowing; then it jumps a day back: no
expired block comes back."""
import calendar, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


# (a) the turn of the year
d = scratch()
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
NEWYEAR = calendar.timegm((2027, 1, 1, 0, 0, 0))
text = ""
for i in range(12):  # 6 before midnight, 6 after, one a minute
    t = NEWYEAR - 360 + 60 * i
    text += seq_line(i, ip="192.0.2.88", when=time.strftime("%b %e %H:%M:%S", time.gmtime(t)))
text += disconnect_line("192.0.2.88", time.strftime("%b %e %H:%M:%S", time.gmtime(NEWYEAR + 300)), 12)
append(log, text, "w")
env = {"TZ": "UTC", "MXWARDEN_NOW": iso(NEWYEAR + 1800)}
dm = Daemon(db, follow=[log], env=env).start()
check("daemon started at 2027-01-01T00:30Z", dm.port is not None, dm.stderr()[-500:])
got = wait_for(lambda: len(seq_counts(db)), 12, 30)
check("the 12 lines across midnight are stored", got == 12, got)
rows = q(db, "SELECT ts FROM events WHERE rcpt_to LIKE 'u%@example.com' ORDER BY ts")
tss = [r[0] // 1000000 if r[0] > 10**12 else r[0] for r in rows]  # seconds (or microseconds)
want = [NEWYEAR - 360 + 60 * i for i in range(12)]
check("Dec 31 lines are in 2026 and Jan 1 lines in 2027 (exact times)", tss == want,
      [iso(t) for t in tss][:12])
time.sleep(1.5)
dec = q(db, "SELECT prefix, since, until FROM decisions WHERE prefix LIKE '192.0.2.88%'")
check("the harvest across midnight is decided", len(dec) >= 1, dec)
if dec:
    check("its decision is in force now (since within the last hour, until after now)",
          NEWYEAR - 3600 <= dec[0][1] <= NEWYEAR + 1800 < dec[0][2], [(p, iso(s), iso(u)) for p, s, u in dec])
st, j = get_json(dm.port, "/api/v1/lookup/192.0.2.88")
# no [output] here: decided and in force, enforced by no blocklist (the lookup contract)
check("the API says 192.0.2.88 has a decision in force", st == 200 and j and j.get("decision") is not None
      and j.get("state") == "decided_not_enforced", (st, j and j.get("state")))
dm.stop()

# (b) wall-clock jumps with libfaketime
lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
if not os.path.exists(lib):
    print("SKIP part (b): libfaketime is not installed (apt-get install faketime)", flush=True)
    done()
if sanitized():
    print("SKIP part (b): libfaketime cannot be preloaded before the ASan runtime", flush=True)
    done()
d = scratch()
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
plain = os.path.join(d, "out.plain")
conf = os.path.join(d, "mxw.conf")
with open(conf, "w") as f:
    f.write("[output p]\nformat = plain\npath = %s\n" % plain)
tsfile = os.path.join(d, "faketime")
with open(tsfile, "w") as f:
    f.write("+0\n")
for pfx, dur in (("198.51.100.0/24", "1h"), ("203.0.113.0/24", "3h")):
    r = run([MXW, "block", pfx, "--for", dur, "--reason", "clock test", "--db", db])
    check("block %s --for %s" % (pfx, dur), r.returncode == 0, r.stderr)
append(log, seq_lines(0, 50), "w")
fenv = {"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": tsfile, "FAKETIME_CACHE_DURATION": "1",
        "DONT_FAKE_MONOTONIC": "1"}
dm = Daemon(db, follow=[log], conf=conf, env=fenv).start()
check("daemon started under libfaketime", dm.port is not None, dm.stderr()[-500:])
both = {"198.51.100.0/24", "203.0.113.0/24"}
check("both blocks are emitted", wait_for(lambda: plain_entries(plain), both, 20) == both, plain_entries(plain))
check("50 lines stored", wait_for(lambda: len(seq_counts(db)), 50, 20) == 50)
with open(tsfile, "w") as f:
    f.write("+2h\n")
got = wait_for(lambda: plain_entries(plain), {"203.0.113.0/24"}, 20)
check("after a 2 h jump forward the 1 h block expires and the 3 h block stays", got == {"203.0.113.0/24"}, got)
append(log, seq_lines(50, 100))
check("lines keep flowing after the jump", wait_for(lambda: len(seq_counts(db)), 100, 20) == 100,
      len(seq_counts(db)))
check("the daemon is up", dm.alive(), dm.stderr()[-600:])
with open(tsfile, "w") as f:
    f.write("-1d\n")
time.sleep(3)
append(log, seq_lines(100, 150))
check("lines keep flowing after a jump a day back", wait_for(lambda: len(seq_counts(db)), 150, 20) == 150,
      len(seq_counts(db)))
got = plain_entries(plain)
check("an expired block does not come back when the clock steps back a day", "198.51.100.0/24" not in got, got)
check("the running block stays across the step back", "203.0.113.0/24" in got, got)
ended = q(db, "SELECT end_reason, ended_at = until FROM decisions WHERE prefix = '198.51.100.0/24'")
check("the expiry is recorded in the database (ended_at = until, 'expired')", ended == [("expired", 1)], ended)
st, j = get_json(dm.port, "/api/v1/lookup/198.51.100.99")
check("lookup after the step back: not blocked", st == 200 and j and j.get("blocked") is False,
      (st, j and j.get("blocked")))
check("the step is logged", "wall clock stepped" in dm.stderr(), dm.stderr()[-400:])
check("the daemon is still up", dm.alive(), dm.stderr()[-600:])
rc = dm.stop()
check("clean stop", rc == 0, (rc, dm.stderr()[-400:]))
ok, why = exact(seq_counts(db), 0, 150)
check("every line exactly once", ok, why)
done()
