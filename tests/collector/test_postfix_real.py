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
import collections, os, re, shutil, smtplib, subprocess, sys, time

sys.path.insert(0, os.path.dirname(__file__))
from mxwlib import *  # noqa: E402,F403

if os.geteuid() != 0:
    skip("needs root to start a Postfix instance")
if not shutil.which("postfix") or not os.path.exists("/usr/lib/postfix/sbin/master"):
    skip("postfix is not installed (scripts/install-deps test installs it)")
try:
    import pwd, grp
    pwd.getpwnam("postfix")
    grp.getgrnam("postdrop")
except KeyError:
    skip("no postfix user or postdrop group")

d = scratch("mxw-postfix-")
os.chmod(d, 0o755)
etc, spool, data = (os.path.join(d, x) for x in ("etc", "spool", "data"))
for x in (etc, spool, data):
    os.makedirs(x)
shutil.chown(data, "postfix")
maillog = os.path.join(d, "maillog")
port = free_port()
with open(os.path.join(etc, "main.cf"), "w") as f:
    f.write("""compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.invalid
mydomain = test.invalid
myorigin = $myhostname
mydestination = mx.test.invalid, localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
maillog_file = {maillog}
maillog_file_prefixes = {prefix}
smtpd_peername_lookup = no
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unlisted_recipient
local_recipient_maps = proxy:unix:passwd.byname
alias_maps =
alias_database =
biff = no
default_transport = error:no outbound mail in tests
local_transport = discard:local
shlib_directory = /usr/lib/postfix
daemon_directory = /usr/lib/postfix/sbin
command_directory = /usr/sbin
meta_directory = /etc/postfix
""".format(spool=spool, data=data, maillog=maillog, prefix=d))
services = [("127.0.0.1:%d" % port, "inet", "n", "-", "n", "-", "-", "smtpd")] + [
    (n, t, "n" if n in ("pickup", "cleanup", "qmgr", "showq", "flush") else "-", "-", "n", w, lim, cmd)
    for n, t, w, lim, cmd in (
        ("pickup", "unix", "60", "1", "pickup"), ("cleanup", "unix", "-", "0", "cleanup"),
        ("qmgr", "unix", "300", "1", "qmgr"), ("rewrite", "unix", "-", "-", "trivial-rewrite"),
        ("bounce", "unix", "-", "0", "bounce"), ("defer", "unix", "-", "0", "bounce"),
        ("trace", "unix", "-", "0", "bounce"), ("verify", "unix", "-", "1", "verify"),
        ("flush", "unix", "1000?", "0", "flush"), ("proxymap", "unix", "-", "-", "proxymap"),
        ("showq", "unix", "-", "-", "showq"), ("error", "unix", "-", "-", "error"),
        ("retry", "unix", "-", "-", "error"), ("discard", "unix", "-", "-", "discard"),
        ("anvil", "unix", "-", "1", "anvil"), ("scache", "unix", "-", "1", "scache"))] + [
    ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd")]
with open(os.path.join(etc, "master.cf"), "w") as f:
    for s in services:
        f.write(" ".join(s) + "\n")

db = os.path.join(d, "m.db")
dm = Daemon(db, [maillog]).start()
time.sleep(0.5)


def postfix(cmd):
    return subprocess.run(["postfix", "-c", etc, cmd], capture_output=True, text=True, timeout=60)


r = postfix("start")
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
    postfix("stop")
    dm.stop()
    log = open(maillog).read()[-1500:] if os.path.exists(maillog) else ""
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
    postfix("stop")
    dm.stop()
    st = dm.stderr()
if failures == 0:
    shutil.rmtree(d, ignore_errors=True)
else:
    print("kept %s; mxwarden said:\n%s" % (d, st[-1500:]))
done()
