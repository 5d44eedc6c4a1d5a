#!/usr/bin/env python3
"""test_serve.py - how the server is set up: [web] assets = DIR serves the
same fixed names from a directory (never a file outside it), listening on
IPv6 loopback, and clear start-up failures (port in use, bad token file)."""
import os
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import SERVE, Server, check, finish, request  # noqa: E402

NOW = "2026-11-27T20:00:00Z"

# ------------------------------------------------------------ assets = DIR
tmp = tempfile.mkdtemp(prefix="mxw-assets-")
assets = os.path.join(tmp, "assets")
os.mkdir(assets)
with open(os.path.join(assets, "app.js"), "w") as f:
    f.write("// dev copy 1\n")
with open(os.path.join(tmp, "outside.html"), "w") as f:
    f.write("OUTSIDE THE ASSETS DIRECTORY\n")
os.symlink("/etc/passwd", os.path.join(assets, "style.css"))
os.symlink(os.path.join(tmp, "outside.html"), os.path.join(assets, "index.html"))
with open(os.path.join(assets, "passwd"), "w") as f:
    f.write("not an asset name\n")

srv = Server(n_events=10, env={"MXWARDEN_NOW": NOW}, extra_web=f"assets = {assets}\n")
P = srv.port
try:
    st, h, body = request(P, "GET", "/static/app.js")
    etag1 = h.get("etag", "")
    check("assets dir: app.js comes from the directory", st == 200 and body == b"// dev copy 1\n", body[:60])
    with open(os.path.join(assets, "app.js"), "w") as f:
        f.write("// dev copy 2, longer\n")
    st, h, body = request(P, "GET", "/static/app.js")
    check("assets dir: an edit shows at once, with a new ETag",
          body == b"// dev copy 2, longer\n" and h.get("etag") != etag1, (body, etag1, h.get("etag")))
    st, h, body = request(P, "GET", "/static/app.js", headers={"If-None-Match": h.get("etag", "")})
    check("assets dir: If-None-Match gives 304", st == 304, st)
    st, h, body = request(P, "GET", "/static/style.css")
    check("assets dir: a symlink out of the directory is not followed (embedded copy served)",
          st == 200 and b"root:" not in body and b":root" in body, body[:80])
    st, h, body = request(P, "GET", "/")
    check("assets dir: index.html pointing outside is not served", st == 200 and b"OUTSIDE" not in body
          and b"/static/app.js" in body, body[:80])
    st, h, body = request(P, "GET", "/static/lookup.js")
    check("assets dir: a name missing from the directory falls back to the embedded copy",
          st == 200 and b"lookup" in body, st)
    st, h, body = request(P, "GET", "/static/passwd")
    check("assets dir: a file that is not an asset name is 404", st == 404, st)
finally:
    srv.stop()

# ------------------------------------------------------------ IPv6 loopback
try:
    s6 = socket.socket(socket.AF_INET6)
    s6.bind(("::1", 0))
    port6 = s6.getsockname()[1]
    s6.close()
    have_v6 = True
except OSError:
    have_v6 = False
if have_v6:
    d = tempfile.mkdtemp(prefix="mxw-v6-")
    conf = os.path.join(d, "c.ini")
    with open(conf, "w") as f:
        f.write(f"[storage]\ndb = {d}/none.db\n\n[web]\nlisten = [::1]:{port6}\n")
    p = subprocess.Popen([SERVE, "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    try:
        import http.client
        c = http.client.HTTPConnection("::1", port6, timeout=10)
        c.request("GET", "/", headers={"Host": f"[::1]:{port6}"})
        r = c.getresponse()
        check("IPv6: [::1]:PORT serves the dashboard", line.startswith("port ") and r.status == 200, (line, r.status))
        r.read()
        c.request("GET", "/api/v1/summary", headers={"Host": "evil.example"})
        r = c.getresponse()
        check("IPv6: a foreign Host is refused there too", r.status == 421, r.status)
        r.read()
        c.close()
        with open("/proc/net/tcp6") as f:
            rows = [l.split() for l in f.read().splitlines()[1:]]
        mine = [r for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == port6]
        check("IPv6: it listens on ::1 only", len(mine) == 1 and
              mine[0][1].split(":")[0] == "00000000000000000000000001000000", mine)
    finally:
        p.terminate()
        p.wait(timeout=10)
else:
    print("skip IPv6 checks: no ::1 on this machine")

# ------------------------------------------------------------ start-up failures
busy = socket.socket()
busy.bind(("127.0.0.1", 0))
busy.listen(1)
bport = busy.getsockname()[1]
d = tempfile.mkdtemp(prefix="mxw-fail-")
cases = [
    ("a port in use", f"listen = 127.0.0.1:{bport}\n", "cannot listen"),
    ("a missing token file", "listen = 127.0.0.1:1\ntoken_file = /nonexistent/token\n", "token_file"),
]
with open(os.path.join(d, "short"), "w") as f:
    f.write("short\n")
os.chmod(os.path.join(d, "short"), 0o600)
cases.append(("a token that is too short", f"listen = 127.0.0.1:1\ntoken_file = {d}/short\n", "16 to 256"))
for name, web, want in cases:
    conf = os.path.join(d, "c.ini")
    with open(conf, "w") as f:
        f.write(f"[storage]\ndb = {d}/x.db\n\n[web]\n{web}")
    r = subprocess.run([SERVE, "-c", conf], capture_output=True, text=True, timeout=20)
    check(f"start-up with {name} fails with a clear message", r.returncode == 1 and want in r.stderr,
          (r.returncode, r.stderr))
busy.close()
finish()
