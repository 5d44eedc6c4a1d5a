#!/usr/bin/env python3
"""test_syslog_rx.py - the syslog receiver of `mxwarden run` on a loopback
port: RFC 3164 over UDP, RFC 5424 over TCP with octet counting, RFC 3164
over TCP with newline framing, a message without a host; each arrives once
with the sending host kept; an over-long message is dropped and does not
disturb the next ones."""
import os, shutil, socket, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

d = scratch()
db = os.path.join(d, "m.db")
port = free_port()
dm = Daemon(db, [], ["--syslog-listen", "127.0.0.1:%d" % port]).start()
# a fixed sleep lost the UDP datagrams on a loaded machine: wait for the port
check("the syslog receiver listens", wait_port(port), dm.stderr()[-500:])


def body(n):
    return seq_line(n)[16:].rstrip("\n")  # without the time stamp: "mx postfix/smtpd[...]: ..."


stamp = time.strftime("%b %e %H:%M:%S")
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(0, 100):
    u.sendto(("<22>%s mxudp %s" % (stamp, body(i)[3:])).encode(), ("127.0.0.1", port))
    if i % 20 == 0:
        time.sleep(0.01)
t = socket.create_connection(("127.0.0.1", port))
for i in range(100, 200):
    msg = ("<22>1 %s mxoct postfix/smtpd 1234 - - %s" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                                         body(i).split(": ", 1)[1])).encode()
    t.sendall(b"%d " % len(msg) + msg)
t.sendall(b"99999 " + b"x" * 99999)  # larger than syslog_max_message: skipped by its count
for i in range(200, 300):
    t.sendall(("<22>%s mxnl %s\n" % (stamp, body(i)[3:])).encode())
t.close()
t = socket.create_connection(("127.0.0.1", port))
for i in range(300, 310):
    t.sendall(("<22>%s %s\n" % (stamp, body(i)[3:])).encode())  # no host: the peer's address stands in
t.close()
c = wait_for(lambda: seq_counts(db), {i: 1 for i in range(310)}, timeout=15)
dm.stop()
ok, detail = exact(c or {}, 0, 310)
check("UDP 3164, TCP octet-counted 5424, TCP newline 3164: each of 310 messages once", ok,
      detail + dm.stderr()[-1000:])
hosts = dict(q(db, "SELECT host, count(*) FROM events GROUP BY host"))
check("the sending host is kept on each event", hosts == {"mxudp": 100, "mxoct": 100, "mxnl": 100,
                                                          "127.0.0.1": 10}, hosts)
st = stats_json(db)
check("the syslog source is listed with its line count",
      any(f["kind"] == "syslog" and f["lines"] == 310 for f in st.get("files", [])), st.get("files"))
check("the over-long message is counted as syslog_dropped", st.get("unparsed", {}).get("syslog_dropped") == 1,
      st.get("unparsed"))
# a bare port listens on loopback
db2 = os.path.join(d, "b.db")
port2 = free_port()
dm = Daemon(db2, [], ["--syslog-listen", str(port2)]).start()
check("the syslog receiver listens on a bare port", wait_port(port2), dm.stderr()[-500:])
u.sendto(("<22>%s mxbare %s" % (stamp, body(500)[3:])).encode(), ("127.0.0.1", port2))
c = wait_for(lambda: seq_counts(db2), {500: 1}, timeout=10)
dm.stop()
check("--syslog-listen PORT listens on 127.0.0.1", c == {500: 1}, (c, dm.stderr()[-300:]))
shutil.rmtree(d)
done()
