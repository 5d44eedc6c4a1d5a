#!/usr/bin/env python3
"""test_mta_trusted.py (suite integration) - the clients Postfix itself trusts
(mynetworks), read through the real `postconf -c DIR`, are never judged:

  * check-config -v lists each network with its source (mynetworks itself, a
    $config_directory file, a cidr: table), cut around an exclusion
    ("!198.51.100.7"), and warns about the patterns it skips (a hash: table,
    a host name), naming them; mta_trusted = none lists nothing; a Postfix
    named explicitly that cannot be read is an error (exit 1);
  * `run`: trusted clients that harvest unknown recipients are never
    decided, strangers (and the excluded address) doing the same are;
  * SIGHUP reads mynetworks again: a network taken out of it is judged from
    then on, one put in is not;
  * `block` refuses a trusted network; `export` leaves out a decision that
    covers one; `lookup` says "trusted".
Skipped (77) when Postfix's postconf is not installed.
"""
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import mxwtest  # noqa: E402
from mxwtest import *  # noqa: E402,F403

POSTCONF = shutil.which("postconf") or ("/usr/sbin/postconf" if os.path.exists("/usr/sbin/postconf") else None)
if not POSTCONF:
    skip("postconf is not installed (scripts/install-deps test installs postfix)")

d = scratch("mxw-trusted-")
etc = os.path.join(d, "etc")
os.makedirs(etc)
main_cf = os.path.join(etc, "main.cf")


def mynetworks(value):
    with open(main_cf, "w") as f:
        f.write("compatibility_level = 3.6\nmynetworks = %s\n" % value)


with open(os.path.join(etc, "office"), "w") as f:
    f.write("# the office VPN\n[2001:db8:5::]/48\n")
with open(os.path.join(etc, "relays.cidr"), "w") as f:
    f.write("# the relays we serve\n203.0.113.32/27\tOK\n")
mynetworks("127.0.0.0/8 [::1]/128 !198.51.100.7 198.51.100.0/28,\n"
           "    cidr:$config_directory/relays.cidr hash:$config_directory/legacy mail.example.com\n"
           "    $config_directory/office")


def conf(name, safety):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write("[safety]\n" + safety)
    return p


cfg = conf("auto.conf", "postfix_config = %s\n" % etc)  # mta_trusted: the default, auto
cfg_none = conf("none.conf", "mta_trusted = none\npostfix_config = %s\n" % etc)


def mxw(*args):
    return subprocess.run([MXW] + list(args), capture_output=True, text=True, timeout=60)


# ------------------------------------------------------------- check-config
r = mxw("check-config", "-c", cfg, "-v")
check("check-config accepts the configuration", r.returncode == 0, r.stderr)
listed = re.findall(r"^#\s+(\S+)\s+# (.+)$", r.stdout[r.stdout.find("# allow-listed because"):], re.M)
want = [("127.0.0.0/8", "postfix mynetworks"), ("::1/128", "postfix mynetworks"),
        ("198.51.100.8/29", "postfix mynetworks"), ("198.51.100.0/30", "postfix mynetworks"),
        ("198.51.100.4/31", "postfix mynetworks"), ("198.51.100.6/32", "postfix mynetworks"),
        ("203.0.113.32/27", "postfix mynetworks cidr:%s/relays.cidr" % etc),
        ("2001:db8:5::/48", "postfix mynetworks %s/office" % etc)]
check("check-config -v lists the trusted networks with their sources, 198.51.100.7 cut out", listed == want,
      "\n got  %s\n want %s" % (listed, want))
check("check-config says how many: 'mta_trusted): 8'", "(mta_trusted): 8" in r.stdout, r.stdout[-800:])
check("the skipped hash: table is named in a warning",
      re.search(r"warning: .*'hash:%s/legacy' is not read" % re.escape(etc), r.stderr) is not None, r.stderr)
check("the skipped host name is named in a warning", "'mail.example.com' is not read" in r.stderr, r.stderr)

r = mxw("check-config", "-c", cfg_none, "-v")
check("mta_trusted = none: nothing read", r.returncode == 0 and "postfix mynetworks" not in r.stdout,
      (r.returncode, r.stdout[-500:]))
r = mxw("check-config", "-c", conf("bad.conf", "mta_trusted = postfix\npostfix_config = %s/nonexistent\n" % d))
check("mta_trusted = postfix with an unreadable postfix_config: exit 1, postconf's complaint shown",
      r.returncode == 1 and "postconf" in r.stderr, (r.returncode, r.stderr))
r = mxw("check-config", "-c", conf("typo.conf", "mta_trusted = postfix, qmail\n"))
check("mta_trusted = qmail is an error naming the value", r.returncode == 1 and "'qmail'" in r.stderr, r.stderr)
if not (shutil.which("exim4") or shutil.which("exim") or os.path.exists("/usr/sbin/exim4")):
    r = mxw("check-config", "-c", conf("exim.conf", "mta_trusted = exim\n"))
    check("mta_trusted = exim without Exim installed: exit 1", r.returncode == 1 and "exim" in r.stderr,
          (r.returncode, r.stderr))

# ------------------------------------------------------------ block, export
db2 = os.path.join(d, "manual.db")
r = mxw("block", "198.51.100.3", "--for", "1h", "--reason", "test", "-c", cfg, "--db", db2)
check("block refuses an address Postfix trusts", r.returncode == 1 and "refusing" in r.stderr,
      (r.returncode, r.stderr))
r = mxw("block", "198.51.100.0/24", "--for", "1h", "--reason", "test", "-c", cfg_none, "--db", db2)
check("with mta_trusted = none the same network can be blocked", r.returncode == 0, r.stderr)
r1 = mxw("export", "--format", "plain", "-c", cfg_none, "--db", db2)
r2 = mxw("export", "--format", "plain", "-c", cfg, "--db", db2)
check("export lists it with mta_trusted = none", "198.51.100.0/24" in r1.stdout, r1.stdout + r1.stderr)
check("export leaves it out when mynetworks is read (it covers trusted clients)",
      r2.returncode == 0 and "198.51.100.0/24" not in r2.stdout, r2.stdout + r2.stderr)

# --------------------------------------------------------------------- run
log = os.path.join(d, "mail.log")
db = os.path.join(d, "m.db")
pid = [5000]


def harvest(ip, sessions=4, per=5):
    """sessions of an unknown-recipient harvest from ip, one smtpd pid each"""
    out = []
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime())
    for s in range(sessions):
        pid[0] += 1
        out.append("%s mx postfix/smtpd[%d]: connect from unknown[%s]\n" % (stamp, pid[0], ip))
        for k in range(per):
            out.append("%s mx postfix/smtpd[%d]: NOQUEUE: reject: RCPT from unknown[%s]: 550 5.1.1 "
                       "<h%d_%d_%d@example.com>: Recipient address rejected: User unknown in local recipient "
                       "table; from=<a@b.example> to=<h%d_%d_%d@example.com> proto=ESMTP helo=<x>\n"
                       % (stamp, pid[0], ip, pid[0], s, k, pid[0], s, k))
        out.append("%s mx postfix/smtpd[%d]: disconnect from unknown[%s] ehlo=1 mail=1 rcpt=0/%d quit=1 "
                   "commands=3/%d\n" % (stamp, pid[0], ip, per, per + 3))
    return "".join(out)


def decided(ip):
    """the decisions that cover ip"""
    return [r for r in q(db, "SELECT prefix, response, rule FROM decisions")
            if ipaddress.ip_address(ip) in ipaddress.ip_network(r[0])]


TRUSTED = ["198.51.100.3", "203.0.113.40", "2001:db8:5::9"]
STRANGERS = ["198.51.100.7", "192.0.2.50"]
append(log, "")
dm = Daemon(db, [log], extra=["-c", cfg]).start()
try:
    time.sleep(0.5)
    for ip in TRUSTED + STRANGERS:
        append(log, harvest(ip))
    got = wait_for(lambda: all(decided(ip) for ip in STRANGERS), True, timeout=20)
    check("the strangers (198.51.100.7 excluded from mynetworks, 192.0.2.50) are decided", got,
          q(db, "SELECT prefix, rule FROM decisions"))
    for ip in TRUSTED:
        check("trusted %s harvested the same and is not decided" % ip, not decided(ip), decided(ip))
    n_ev = q(db, "SELECT count(*) FROM events WHERE ip = ?", TRUSTED[0])[0][0]
    check("the trusted client's events are stored all the same (%d)" % n_ev, n_ev == 20, n_ev)

    for ip, want in (("198.51.100.3", True), ("192.0.2.50", False)):
        r = mxw("lookup", ip, "--json", "-c", cfg, "--db", db)
        check("lookup %s says trusted: %s" % (ip, want),
              r.returncode == 0 and json.loads(r.stdout).get("trusted") is want, r.stdout[-300:] + r.stderr)

    # SIGHUP: 198.51.100.0/28 leaves mynetworks, 192.0.2.48/28 joins it
    mynetworks("127.0.0.0/8 192.0.2.48/28")
    dm.p.send_signal(signal.SIGHUP)
    ok = wait_for(lambda: "mta_trusted: 2 network(s) the MTA trusts are allow-listed (were 8)" in dm.stderr(),
                  True, timeout=15)
    check("SIGHUP reads mynetworks again (2 networks, were 8)", ok, dm.stderr()[-1500:])
    append(log, harvest("198.51.100.3", sessions=2) + harvest("192.0.2.55"))
    got = wait_for(lambda: bool(decided("198.51.100.3")), True, timeout=20)
    check("after SIGHUP 198.51.100.3 (no longer in mynetworks) is judged", got,
          q(db, "SELECT prefix, rule FROM decisions"))
    wait_for(lambda: q(db, "SELECT count(*) FROM events WHERE ip = '192.0.2.55'")[0][0], 20, timeout=20)
    check("after SIGHUP 192.0.2.55 (now in mynetworks) is not", not decided("192.0.2.55"), decided("192.0.2.55"))
finally:
    dm.stop()
if mxwtest.failures == 0:
    shutil.rmtree(d, ignore_errors=True)
else:
    print("kept %s; mxwarden said:\n%s" % (d, dm.stderr()[-2000:]))
done()
