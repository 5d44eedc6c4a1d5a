"""webtest.py - shared helpers of the web tests: a seeded database, a
server (web-serve or mxwarden run) on a free loopback port, raw HTTP
requests with full control over headers, and a check() that counts."""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import free_port  # noqa: E402,F401 (run_browser.py takes it from here)

BUILD = os.environ.get("MXW_BUILD", ".")
SERVE = os.path.join(BUILD, "tests", "web", "web-serve")
SEED = os.path.join(BUILD, "tests", "web", "web-seed")
TOKEN = "s3cret-token-for-tests-0123456789"

failures = 0
passed = 0


def check(name, cond, detail=""):
    global failures, passed
    if cond:
        passed += 1
        print("ok   " + name)
    else:
        failures += 1
        print("FAIL " + name + (": " + str(detail)[:600] if detail != "" else ""))
    return cond


def finish():
    print(f"{passed} passed, {failures} failed")
    sys.exit(1 if failures else 0)


class Server:
    """web-serve on a seeded database in a temporary directory."""

    def __init__(self, n_events=600, token=True, env=None, extra_web="", seed=True):
        self.dir = tempfile.mkdtemp(prefix="mxw-web-")
        self.db = os.path.join(self.dir, "mxwarden.db")
        self.env = dict(os.environ)
        if env:
            self.env.update(env)
        self.planted = {}
        if seed:
            out = subprocess.run([SEED, self.db, str(n_events)], env=self.env, capture_output=True,
                                 text=True, timeout=120)
            if out.returncode != 0:
                raise RuntimeError("web-seed failed: " + out.stderr)
            self.planted = json.loads(out.stdout)
        self.token_file = os.path.join(self.dir, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(self.token_file, 0o600)  # a token readable by others is refused
        self.port = free_port()
        self.conf = os.path.join(self.dir, "mxwarden.ini")
        with open(self.conf, "w") as f:
            f.write(f"[storage]\ndb = {self.db}\n\n[web]\nlisten = 127.0.0.1:{self.port}\n")
            if token:
                f.write(f"token_file = {self.token_file}\n")
            f.write(extra_web)
        self.proc = subprocess.Popen([SERVE, "-c", self.conf], env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError("web-serve did not start: " + line + self.proc.stderr.read())

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = -9
        return rc


def request(port, method, path, headers=None, body=None, host=None, timeout=15):
    """One request on a fresh connection. Returns (status, headers dict
    with lower-case names, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    c.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
    for k, v in (headers or {}).items():
        c.putheader(k, v)
    if body is not None:
        if isinstance(body, str):
            body = body.encode()
        c.putheader("Content-Length", str(len(body)))
    c.endheaders(body)
    r = c.getresponse()
    data = r.read()
    h = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, h, data


def get_json(port, path, **kw):
    st, h, data = request(port, "GET", path, **kw)
    try:
        return st, h, json.loads(data)
    except ValueError:
        return st, h, None


def raw(port, payload, timeout=10):
    """Send raw bytes, return everything the server answers until it closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(payload)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return out


def wait_for(fn, timeout=10, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None
