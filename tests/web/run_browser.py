#!/usr/bin/env python3
"""run_browser.py - set up and run the browser tests (test_browser.js).

Skips (exit 77) when Debian's chromium or node is missing. Installs the
pinned playwright-core with `npm ci` (tests/web/package-lock.json) when
tests/web/node_modules lacks it. Then: a mkmaillog log starting 40 minutes
ago (so the data is near now, whatever today is), a database seeded by
web-seed (planted decisions), `mxwarden run` following the log with the
dashboard on a free loopback port, and the node test against it.
Screenshots go to BUILD/tests/web/screenshots/."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import SEED, TOKEN, free_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ["MXW_BUILD"]
SHARED = os.environ["MXW_SHARED"]
MXW = os.environ["MXWARDEN"]


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(77)


if not os.access("/usr/bin/chromium", os.X_OK):
    skip("Debian's chromium is not installed (scripts/install-deps test)")
node = shutil.which("node")
npm = shutil.which("npm")
if not node:
    skip("node is not installed (scripts/install-deps test)")
if not os.path.isfile(os.path.join(HERE, "node_modules", "playwright-core", "package.json")):
    if not npm:
        skip("npm is not installed, so playwright-core cannot be installed")
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=HERE, capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        skip("npm ci of playwright-core failed (no registry access?): " + r.stderr[-500:])

tmp = tempfile.mkdtemp(prefix="mxw-browser-")
log = os.path.join(tmp, "mail.log")
db = os.path.join(tmp, "mxwarden.db")
start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 40 * 60))
env = dict(os.environ, TZ="UTC")
env.pop("MXWARDEN_NOW", None)
truth = os.path.join(tmp, "truth.json")
subprocess.run([os.path.join(SHARED, "tools", "mkmaillog"), "--lines", "8000", "--seed", "7", "--sim-rate", "4",
                "--start", start, "-o", log, "--truth", truth], check=True, env=env, capture_output=True, timeout=120)
with open(truth) as f:
    abusers = [a["ip"] for a in json.load(f).get("abusive_ips", [])]
subprocess.run([SEED, db, "300"], check=True, env=env, capture_output=True, timeout=120)
token_file = os.path.join(tmp, "token")
with open(token_file, "w") as f:
    f.write(TOKEN + "\n")
os.chmod(token_file, 0o600)  # a token readable by others is refused
port = free_port()
conf = os.path.join(tmp, "mxwarden.ini")
with open(conf, "w") as f:
    f.write(f"[storage]\ndb = {db}\n\n[collector]\nfollow = {log}\n\n[web]\nlisten = 127.0.0.1:{port}\n"
            f"token_file = {token_file}\n")
daemon = subprocess.Popen([MXW, "run", "-c", conf], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
base = f"http://127.0.0.1:{port}"


def summary():
    try:
        with urllib.request.urlopen(base + "/api/v1/summary", timeout=5) as r:
            return json.loads(r.read())
    except Exception:
        return None


rc = 1
try:
    end = time.time() + 60
    s = None
    while time.time() < end:
        s = summary()
        if s and s.get("ingest", {}).get("lines_read", 0) >= 8000:
            break
        if daemon.poll() is not None:
            break
        time.sleep(0.5)
    if not s or s.get("ingest", {}).get("lines_read", 0) < 8000:
        print("FAIL mxwarden run did not ingest the log in 60 s: " + json.dumps(s))
    else:
        shots = os.path.join(BUILD, "tests", "web", "screenshots")
        os.makedirs(shots, exist_ok=True)
        r = subprocess.run([node, os.path.join(HERE, "test_browser.js")], timeout=240,
                           env=dict(env, BASE=base, LOG=log, TOKEN=TOKEN, SHOTS=shots, ABUSERS=",".join(abusers)))
        rc = r.returncode
        print("screenshots: " + shots)
finally:
    daemon.terminate()
    try:
        out, _ = daemon.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        daemon.kill()
        out, _ = daemon.communicate()
    if daemon.returncode != 0:
        print(f"FAIL mxwarden run exited {daemon.returncode}")
        rc = 1
    if rc:
        print("--- mxwarden run output (tail) ---\n" + out[-3000:])
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(rc)
