"""test_long_garbage.py - RELIABILITY.md 13 through `mxwarden run`: a followed
file gets a 70 KiB line, 512 NUL bytes, 1 MiB of random bytes without a
newline (then its newline), then 100 valid lines. Pass: exactly the 100 valid
lines become events, the overlong lines are counted (stats and /metrics),
memory stays bounded (VmHWM), the daemon stays up and keeps following."""
import os, random, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

HWM_CAP_KIB = 96 * 1024
d = scratch()
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
append(log, seq_lines(0, 10), "w")
dm = Daemon(db, follow=[log]).start()
check("daemon started", dm.port is not None, dm.stderr()[-500:])
check("the first 10 lines are stored", wait_for(lambda: len(seq_counts(db)), 10, 30) == 10)
hwm0 = dm.status("VmHWM")

rnd = random.Random(13)
long_line = (stamp() + " mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.66]: 550 " +
             "A" * (70 * 1024) + "\n").encode()
nuls = b"\0" * 512 + b"\n"
garbage = bytes(b for b in rnd.randbytes(1 << 20) if b != 10) + b"\n"
append(log, long_line)
append(log, nuls)
# the megabyte arrives in pieces, as a slow writer would leave it
for i in range(0, len(garbage), 128 * 1024):
    append(log, garbage[i:i + 128 * 1024])
append(log, seq_lines(10, 110))
got = wait_for(lambda: len(seq_counts(db)), 110, 30)
ok, why = exact(seq_counts(db), 0, 110)
check("exactly the 110 valid lines are events", ok, why)
n_ev = q(db, "SELECT count(*) FROM events")[0][0]
check("no other event was made of the garbage", n_ev == 110, n_ev)
check("192.0.2.66 of the overlong line is never blamed",
      q(db, "SELECT count(*) FROM events WHERE ip = '192.0.2.66'")[0][0] == 0)
check("the daemon is still up", dm.alive(), dm.stderr()[-800:])
hwm = dm.status("VmHWM")
print("VmHWM before the garbage %s KiB, after %s KiB" % (hwm0, hwm), flush=True)
if sanitized():
    print("sanitizer build: VmHWM bounds not checked (shadow memory)", flush=True)
else:
    check("VmHWM stays under %d MiB" % (HWM_CAP_KIB // 1024), hwm is not None and hwm < HWM_CAP_KIB, hwm)
    check("the garbage costs under 8 MiB of extra high-water mark", hwm is not None and hwm0 is not None
          and hwm - hwm0 < 8 * 1024, (hwm0, hwm))

mtext = ""
for _ in range(30):
    st, h, body = dm.http("GET", "/metrics")
    mtext = body.decode(errors="replace")
    if 'reason="overlong"' in mtext:
        break
    time.sleep(0.2)
m = re.search(r'mxwarden_parse_failures_total\{reason="overlong"\} (\d+)', mtext)
check("/metrics counts at least 2 overlong lines (70 KiB and 1 MiB)", m and int(m.group(1)) >= 2,
      [l for l in mtext.splitlines() if "parse_failures" in l])
m = re.search(r"mxwarden_lines_read_total (\d+)", mtext)
check("/metrics lines_read counts every line (10 + 3 bad + 100)", m and int(m.group(1)) == 113,
      m and m.group(0))
append(log, seq_lines(110, 120))
check("still following afterwards", wait_for(lambda: len(seq_counts(db)), 120, 30) == 120)
rc = dm.stop()
check("clean stop", rc == 0, rc)
st = run([MXW, "stats", "--db", db, "--json"])
j = json.loads(st.stdout) if st.returncode == 0 else {}
print("stats unparsed: %s lines_read: %s" % (j.get("unparsed"), j.get("lines_read")), flush=True)
un = j.get("unparsed", {})
ov = un.get("overlong") if isinstance(un, dict) else None
check("stats --json: overlong >= 2", isinstance(ov, int) and ov >= 2, un)
done()
