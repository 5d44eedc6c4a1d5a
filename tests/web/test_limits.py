#!/usr/bin/env python3
"""test_limits.py - a slow or hostile client cannot starve the server
(RELIABILITY.md 32, shortened): a loopback address is not held to the
per-address connection limit (the cap against remote slow clients; see
tests/reliability/test_web_reachable.py for both), idle half-sent requests
are closed at the configured timeout, clients from other addresses are served
meanwhile, and the live streams are bounded."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import Server, check, finish, request  # noqa: E402

NOW = "2026-11-27T20:00:00Z"
PER_IP = 8
TIMEOUT = 2


def connect(port, src="127.0.0.1"):
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))


def closed_within(s, seconds):
    """True when the server closes s (recv gives EOF or a reset) within seconds."""
    s.settimeout(seconds)
    try:
        while True:
            b = s.recv(4096)
            if not b:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


srv = Server(n_events=50, env={"MXWARDEN_NOW": NOW},
             extra_web=f"per_ip_connections = {PER_IP}\ntimeout = {TIMEOUT}s\nthreads = 2\n")
P = srv.port
try:
    # slowloris: PER_IP connections that never finish their headers
    slow = []
    for _ in range(PER_IP):
        s = connect(P)
        s.sendall(b"GET /api/v1/summary HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        slow.append(s)
    time.sleep(0.3)
    extra = connect(P)
    extra.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\nConnection: close\r\n\r\n".encode())
    extra.settimeout(5)
    try:
        got = extra.recv(65536)
    except OSError:
        got = b""
    check(f"connection {PER_IP + 1} from 127.0.0.1 is served: loopback has no per-address limit ({PER_IP})",
          got.startswith(b"HTTP/1.1 200"), got[:40])
    extra.close()
    t0 = time.time()
    c = connect(P, "127.0.0.2")
    c.sendall(f"GET /api/v1/summary HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\nConnection: close\r\n\r\n".encode())
    c.settimeout(5)
    data = b""
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
    except socket.timeout:
        pass
    c.close()
    check("a client from another address is served at once meanwhile",
          data.startswith(b"HTTP/1.1 200") and time.time() - t0 < 1.5, data[:40])
    t0 = time.time()
    gone = [closed_within(s, 2 * TIMEOUT + 1) for s in slow]
    check(f"the half-sent requests are closed at the {TIMEOUT}s timeout", all(gone) and
          time.time() - t0 < 2 * TIMEOUT + 2, (gone, time.time() - t0))
    for s in slow:
        s.close()
    # libmicrohttpd frees a timed-out connection's per-IP slot when the
    # worker thread that owned it next wakes up (a new connection wakes it,
    # and may be refused once meanwhile): RELIABILITY.md 32 allows 2x the
    # timeout for a normal client to get through
    st, end = None, time.time() + 2 * TIMEOUT
    while time.time() < end and st != 200:
        try:
            st, h, body = request(P, "GET", "/api/v1/summary")
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, OSError):
            time.sleep(0.1)
    check("afterwards the same address is served again (within 2x the timeout)", st == 200, st)

    # an idle keep-alive connection is closed too
    first, end = b"", time.time() + 2 * TIMEOUT
    while time.time() < end and not first.startswith(b"HTTP/1.1 200"):
        s = connect(P)
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\n\r\n".encode())
        time.sleep(0.3)
        try:
            first = s.recv(65536)
        except ConnectionResetError:
            s.close()
    check("a keep-alive request is answered", first.startswith(b"HTTP/1.1 200"), first[:40])
    t0 = time.time()
    check("an idle keep-alive connection is closed at the timeout", closed_within(s, 2 * TIMEOUT + 1)
          and time.time() - t0 >= TIMEOUT - 0.5, time.time() - t0)
    s.close()
finally:
    srv.stop()

# the live streams are bounded (64), whatever the connection limits allow
srv = Server(n_events=10, env={"MXWARDEN_NOW": NOW}, extra_web="per_ip_connections = 100\n")
P = srv.port
streams = []
try:
    for i in range(64):
        s = connect(P)
        s.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\n\r\n".encode())
        streams.append(s)
    ok = 0
    for s in streams:
        s.settimeout(5)
        if s.recv(4096).startswith(b"HTTP/1.1 200"):
            ok += 1
    check("64 live streams are served", ok == 64, ok)
    st, h, body = request(P, "GET", "/api/v1/stream")
    check("stream 65 is refused with 503 JSON", st == 503 and b"too many live streams" in body, (st, body))
    st, h, body = request(P, "GET", "/api/v1/summary")
    check("other requests are still served", st == 200, st)
    streams.pop().close()
    # the server notices the closed stream when a write to it fails (a tick
    # or two later): ask again until it answers 200, for at most 6 s
    got = None
    end = time.time() + 6
    while time.time() < end and got is None:
        s = connect(P)
        s.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\n\r\n".encode())
        s.settimeout(5)
        if s.recv(4096).startswith(b"HTTP/1.1 200"):
            got = s
        else:
            s.close()
            time.sleep(0.5)
    check("a closed stream frees its place within seconds", got is not None)
    if got:
        streams.append(got)
finally:
    for s in streams:
        s.close()
    rc = srv.stop()
check("the server stops cleanly with streams open", rc == 0, rc)
finish()
