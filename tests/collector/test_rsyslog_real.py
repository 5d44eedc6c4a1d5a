#!/usr/bin/env python3
"""test_rsyslog_real.py (suite system) - a REAL rsyslogd (Debian's package,
its own config, socket and work directory under a temporary directory; the
system's /dev/log is not touched) receives messages from `logger` with a
postfix/smtpd tag and forwards them with omfwd over TCP to mxwarden's syslog
listener: facility mail as RFC 5424 with octet counting, facility local0 in
the traditional format with newline framing (APP-NAME keeps "postfix/smtpd"
with parser.permitSlashInProgramName, as a fleet forwarding Postfix logs
would configure it). Each message arrives once,
with the host name rsyslog sent. Exit 77 when rsyslogd or logger is missing."""
import os, shutil, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

if not shutil.which("rsyslogd") or not shutil.which("logger"):
    skip("rsyslogd or logger not installed (scripts/install-deps test installs rsyslog)")

d = scratch("mxw-rsyslog-")
sock, conf, pidf = (os.path.join(d, x) for x in ("log.sock", "rs.conf", "rs.pid"))
port = free_port()
with open(conf, "w") as f:
    f.write('''global(workDirectory="{d}" localHostname="mxfleet1" maxMessageSize="16k"
       parser.permitSlashInProgramName="on")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}" CreatePath="on")
mail.* action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" TCP_Framing="octet-counted"
              template="RSYSLOG_SyslogProtocol23Format")
local0.* action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
                template="RSYSLOG_TraditionalForwardFormat")
'''.format(d=d, sock=sock, port=port))
db = os.path.join(d, "m.db")
dm = Daemon(db, [], ["--syslog-listen", "127.0.0.1:%d" % port]).start()
check("the syslog receiver listens", wait_port(port), dm.stderr()[-500:])
rs = subprocess.Popen(["rsyslogd", "-n", "-f", conf, "-i", pidf], stdout=subprocess.DEVNULL,
                      stderr=subprocess.PIPE, text=True)
for _ in range(50):
    if os.path.exists(sock):
        break
    time.sleep(0.1)
try:
    N = 200
    for i in range(2 * N):
        body = seq_line(i).split(": ", 1)[1].rstrip("\n")
        fac = "mail.info" if i < N else "local0.info"
        subprocess.run(["logger", "-u", sock, "-p", fac, "-t", "postfix/smtpd", "--id=%d" % (4000 + i % 7), body],
                       check=True)
    c = wait_for(lambda: seq_counts(db), {i: 1 for i in range(2 * N)}, timeout=20)
    ok, detail = exact(c or {}, 0, 2 * N)
    check("rsyslog omfwd TCP (octet-counted RFC 5424 and newline-framed traditional): %d messages once each" % (2 * N),
          ok, detail + dm.stderr()[-800:])
    hosts = q(db, "SELECT host, count(*) FROM events GROUP BY host")
    check("each event carries the host name rsyslog sent", hosts == [("mxfleet1", 2 * N)], hosts)
finally:
    rs.terminate()
    try:
        rs.wait(10)
    except subprocess.TimeoutExpired:
        rs.kill()
        rs.wait()
    dm.stop()
if failures == 0:
    shutil.rmtree(d, ignore_errors=True)
else:
    print("kept %s; rsyslogd said: %s" % (d, rs.stderr.read()[-800:] if rs.stderr else ""))
done()
