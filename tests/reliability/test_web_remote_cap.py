#!/usr/bin/env python3
"""test_web_remote_cap.py - the per-address connection cap still guards
against remote slow clients (issue 17, item 5), in a network namespace of
its own whose loopback also holds 192.0.2.1 and 198.51.100.7 (root; skipped
otherwise): an address that is not loopback may hold per_ip_connections,
its next connection is refused; other addresses, loopback among them, are
served meanwhile."""
import os, socket, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

private_net_ns(["192.0.2.1/32", "198.51.100.7/32"])
d = scratch("mxw-remote-")
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
conf = os.path.join(d, "c.ini")
with open(conf, "w") as f:
    f.write("[web]\nper_ip_connections = 4\ntimeout = 60s\n")
append(log, seq_lines(0, 10), "w")
dm = Daemon(db, [log], ["--listen", "0.0.0.0:0"], conf=conf)
dm.start()
P = dm.port
check("the daemon listens on 0.0.0.0", P is not None, dm.stderr()[-400:])


def conn(src, dst="192.0.2.1"):
    return socket.create_connection((dst, P), timeout=5, source_address=(src, 0))


def get(src, dst="192.0.2.1"):
    try:
        c = conn(src, dst)
        c.sendall(("GET /api/v1/summary HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (dst, P)).encode())
        c.settimeout(5)
        data = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
        c.close()
        return data[:12]
    except OSError as e:
        return str(e).encode()


slow = []
for _ in range(4):
    c = conn("192.0.2.1")
    c.sendall(b"GET /api/v1/summary HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    slow.append(c)
time.sleep(0.3)
check("the 5th connection from 192.0.2.1 (per_ip_connections 4) is refused", get("192.0.2.1") != b"HTTP/1.1 200",
      get("192.0.2.1"))
check("198.51.100.7 is served meanwhile", get("198.51.100.7") == b"HTTP/1.1 200")
lo = []
for _ in range(8):
    c = conn("127.0.0.1", "127.0.0.1")
    c.sendall(b"GET /api/v1/summary HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    lo.append(c)
check("8 slow loopback connections, and loopback is still served (no per-address cap)",
      get("127.0.0.1", "127.0.0.1") == b"HTTP/1.1 200")
for c in slow:
    c.close()
time.sleep(0.5)
st = wait_for(lambda: get("192.0.2.1"), b"HTTP/1.1 200", 10, 0.3)
check("once its slow connections close, 192.0.2.1 is served again", st == b"HTTP/1.1 200", st)
for c in lo:
    c.close()
rc = dm.stop()
check("clean stop", rc == 0, rc)
shutil.rmtree(d, ignore_errors=True)
done()
