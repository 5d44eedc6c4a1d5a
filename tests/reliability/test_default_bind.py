"""test_default_bind.py - RELIABILITY.md 30: `mxwarden run` without --listen
and without a [web] section listens on 127.0.0.1:8025 only (no wildcard, no
IPv6, no other address), checked in /proc/net/tcp{,6} by the daemon's own
socket inodes; a Host naming another interface is refused. Uses the fixed
port 8025: is_parallel false, skipped when something else holds it."""
import os, socket, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

probe = socket.socket()
try:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind(("127.0.0.1", 8025))
except OSError as e:
    skip("port 8025 is busy (%s)" % e)
finally:
    probe.close()
d = scratch()
db = os.path.join(d, "m.db")
errf = open(os.path.join(d, "stderr"), "w")
p = subprocess.Popen([MXW, "run", "--db", db, "--db-fast"], stdout=subprocess.DEVNULL, stderr=errf)


def my_inodes():
    out = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % p.pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (p.pid, fd))
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]", t)
            if m:
                out.add(m.group(1))
    except OSError:
        pass
    return out


def listening():
    inodes = my_inodes()
    socks = []
    for fam in ("tcp", "tcp6"):
        with open("/proc/net/" + fam) as f:
            for line in f.readlines()[1:]:
                c = line.split()
                if c[3] == "0A" and c[9] in inodes:  # LISTEN
                    socks.append((fam, c[1]))
    return socks


end = time.time() + 20
while time.time() < end and not listening():
    time.sleep(0.2)
time.sleep(0.5)
socks = listening()
print("listening sockets of the daemon: %s" % socks, flush=True)
check("exactly one listening socket", len(socks) == 1, socks)
check("it is 127.0.0.1:8025", socks == [("tcp", "0100007F:%04X" % 8025)], socks)
st, h, body = request(8025, "GET", "/healthz")
check("GET /healthz on 127.0.0.1:8025 answers", st == 200, (st, body[:100]))
c = http.client.HTTPConnection("127.0.0.1", 8025, timeout=10)
c.putrequest("GET", "/api/v1/summary", skip_host=True)
c.putheader("Host", "192.0.2.2:8025")
c.endheaders()
r = c.getresponse()
check("a Host naming another interface is refused (421)", r.status == 421, r.status)
c.close()
p.terminate()
rc = p.wait(30)
check("clean stop", rc == 0, rc)
done()
