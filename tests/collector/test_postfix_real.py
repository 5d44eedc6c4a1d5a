#!/usr/bin/env python3
"""test_postfix_real.py (suite system) - a REAL Postfix (Debian's package) on
127.0.0.1:<free port>, its own configuration directory and queue under a
temporary directory, logging to a file (maillog_file), rejecting unknown
users and relaying. Python's smtplib sends from several 127.0.0.x source
addresses while `mxwarden run` follows the log (started before Postfix, so
the file appears after start). Every rejection Postfix logged must be in the
database exactly once with the right client IP and reply code. Postfix is
stopped at the end. Exit 77 (skip) when Postfix is missing or cannot start
(not root, no postfix user)."""
import collections, os, re, shutil, smtplib, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import mxwtest  # noqa: E402
from mxwtest import *  # noqa: E402,F403

why = postfix_missing()
if why:
    skip(why)

d = scratch("mxw-postfix-")
port = free_port()
pf = Postfix(d, ["127.0.0.1:%d" % port], """inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unlisted_recipient
local_recipient_maps = proxy:unix:passwd.byname
""")
maillog = pf.maillog
db = os.path.join(d, "m.db")
dm = Daemon(db, [maillog]).start()
time.sleep(0.5)

r = pf.run("start")
ok_start = r.returncode == 0
for _ in range(50):
    try:
        smtplib.SMTP("127.0.0.1", port, timeout=2).quit()
        break
    except OSError:
        time.sleep(0.2)
else:
    ok_start = False
if not ok_start:
    pf.stop()
    dm.stop()
    log = pf.log_tail()
    shutil.rmtree(d, ignore_errors=True)
    skip("postfix could not start: %s %s %s" % (r.stdout[-500:], r.stderr[-500:], log))

try:
    sent = collections.Counter()
    for i in range(6):
        src = "127.0.0.%d" % (70 + i)
        s = smtplib.SMTP("127.0.0.1", port, source_address=(src, 0), timeout=10)
        s.ehlo("client%d.test" % i)
        s.mail("sender%d@sender.test" % i)
        for k in range(3 + i):
            code, _ = s.rcpt("nouser%d_%d@mx.test.invalid" % (i, k))
            sent[(src, code)] += 1
        code, _ = s.rcpt("someone@elsewhere.example")
        sent[(src, code)] += 1
        code, _ = s.rcpt("root@mx.test.invalid")
        s.quit()
    time.sleep(1.0)
    with open(maillog, errors="replace") as f:
        logged = collections.Counter()
        for line in f:
            m = re.search(r"NOQUEUE: reject: RCPT from [^\[]*\[([0-9.]+)\]: (\d{3}) ", line)
            if m:
                logged[(m.group(1), int(m.group(2)))] += 1

    def stored():
        return collections.Counter({(ip, code): n for ip, code, n in q(
            db, "SELECT ip, code, count(*) FROM events WHERE kind = 'reject' GROUP BY ip, code")})

    got = wait_for(stored, logged, timeout=15)
    check("Postfix logged every rejection smtplib saw (%d)" % sum(sent.values()),
          logged == collections.Counter({k: v for k, v in sent.items() if k[1] >= 400}), (logged, sent))
    check("each rejection Postfix logged is stored once with its IP and code (%d)" % sum(logged.values()),
          got == logged and sum(logged.values()) > 20, (got, logged))
    hosts = q(db, "SELECT DISTINCT host FROM events")
    check("the host is Postfix's own (maillog_file prefix)", hosts == [("mx",)] or len(hosts) == 1, hosts)
finally:
    pf.stop()
    dm.stop()
    st = dm.stderr()
if mxwtest.failures == 0:
    shutil.rmtree(d, ignore_errors=True)
else:
    print("kept %s; mxwarden said:\n%s" % (d, st[-1500:]))
done()
