#!/usr/bin/env python3
"""test_web_reachable.py - the dashboard stays reachable (issue 17, item 5):
slow loopback clients past the per-address limit (16) do not lock the API
out (any local user could, and a reverse proxy on the host is one address);
past max_connections the connection idle the longest (half-sent headers)
makes room for a new one, while live streams are never taken."""
import os, socket, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

MAXC = 48
d = scratch("mxw-reach-")
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
conf = os.path.join(d, "c.ini")
with open(conf, "w") as f:
    f.write("[web]\nmax_connections = %d\ntimeout = 60s\n" % MAXC)
append(log, seq_lines(0, 100), "w")
dm = Daemon(db, [log], conf=conf).start()
P = dm.port
check("the daemon serves", P and dm.http("GET", "/healthz")[0] == 200, dm.stderr()[-400:])


def slow(n, src="127.0.0.1"):
    out = []
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", P), timeout=5, source_address=(src, 0))
        c.sendall(b"GET /api/v1/summary HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        out.append(c)
    return out


def api_round(n=15):
    worst, fails = 0.0, []
    for _ in range(n):
        t = time.time()
        st, h, body = dm.http("GET", "/api/v1/summary", timeout=5)
        worst = max(worst, time.time() - t)
        if st != 200:
            fails.append((st, body[:80]))
    return fails, worst


def closed(c):
    c.setblocking(False)
    try:
        return c.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        c.setblocking(True)


# live streams first: they must outlive the flood
streams = []
for _ in range(4):
    s = socket.create_connection(("127.0.0.1", P), timeout=10)
    s.sendall(("GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n\r\n" % P).encode())
    streams.append(s)
heads = []
for s in streams:
    try:
        heads.append(s.recv(65536))
    except OSError:
        heads.append(b"")
check("4 live streams open", all(h.startswith(b"HTTP/1.1 200") for h in heads), [h[:20] for h in heads])

# 24 slow loopback connections: past the per-address limit (16)
first = slow(24)
time.sleep(0.3)
fails, worst = api_round()
check("24 slow connections from 127.0.0.1 (per-address limit 16): the API answers 15 of 15 within 2 s",
      not fails and worst < 2, (fails, worst))
check("none of the 24 is closed (room is left)", not any(closed(c) for c in first))

# past max_connections (48): the oldest half-sent connections make room
more = slow(60)
time.sleep(0.3)
fails, worst = api_round()
check("84 slow loopback connections (max_connections %d): the API answers 15 of 15 within 2 s" % MAXC,
      not fails and worst < 2, (fails, worst))
gone = [closed(c) for c in first + more]
check("the oldest slow connections were closed to make room (the first 24 among them)",
      all(gone[:24]) and sum(gone) >= 84 - (MAXC - 4), (sum(gone), gone[:30]))
st, h, body = dm.http("GET", "/metrics")
m = re.search(rb"mxwarden_web_connections_closed_idle_total (\d+)", body or b"")
check("/metrics counts the connections closed to make room", st == 200 and m and 20 <= int(m.group(1)) <= sum(gone),
      (st, m and m.group(0)))
# the streams are never taken: each still gets its ticks
for c in first + more:
    c.close()
alive = 0
for s in streams:
    s.settimeout(3)
    try:
        alive += len(s.recv(65536)) > 0
    except OSError:
        pass
check("the 4 live streams still tick after the flood", alive == 4, alive)
for s in streams:
    s.close()
check("the daemon is up", dm.alive(), dm.stderr()[-400:])
rc = dm.stop()
check("clean stop", rc == 0, rc)
shutil.rmtree(d, ignore_errors=True)
done()
