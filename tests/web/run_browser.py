#!/usr/bin/env python3
"""run_browser.py - set up and run the browser tests (test_browser.js).

Skips (exit 77) when Debian's chromium or node is missing. Installs the
pinned playwright-core with `npm ci` (tests/web/package-lock.json) when
tests/web/node_modules lacks it. Then two daemons:

  A: a mkmaillog log starting 40 minutes ago (so the data is near now,
     whatever today is), a database seeded by web-seed (planted
     decisions), `mxwarden run` following the log with one [output] (a
     plain blocklist), the dashboard on a free loopback port;
  B: a mkmaillog log of a week ago, imported with `mxwarden import` into
     a fresh database, served by `mxwarden run` with no [output] and
     nothing to follow (the dashboard after an import of older logs).

and the node test against both. Screenshots go to
BUILD/tests/web/screenshots/."""
import json
import os
import shutil
import sqlite3
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
env = dict(os.environ, TZ="UTC")
env.pop("MXWARDEN_NOW", None)
mkmaillog = os.path.join(SHARED, "tools", "mkmaillog")

# ---------------------------------------------------------------- daemon A
log = os.path.join(tmp, "mail.log")
db = os.path.join(tmp, "mxwarden.db")
start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 40 * 60))
truth = os.path.join(tmp, "truth.json")
subprocess.run([mkmaillog, "--lines", "8000", "--seed", "7", "--sim-rate", "4", "--start", start, "-o", log,
                "--truth", truth], check=True, env=env, capture_output=True, timeout=120)
with open(truth) as f:
    abusers = [a["ip"] for a in json.load(f).get("abusive_ips", [])]
subprocess.run([SEED, db, "300"], check=True, env=env, capture_output=True, timeout=120)
token_file = os.path.join(tmp, "token")
with open(token_file, "w") as f:
    f.write(TOKEN + "\n")
os.chmod(token_file, 0o600)  # a token readable by others is refused
blocklist = os.path.join(tmp, "blocklist.txt")
port = free_port()
conf = os.path.join(tmp, "mxwarden.ini")
with open(conf, "w") as f:
    f.write(f"[storage]\ndb = {db}\n\n[collector]\nfollow = {log}\n\n[web]\nlisten = 127.0.0.1:{port}\n"
            f"token_file = {token_file}\n\n[output fw]\nformat = plain\npath = {blocklist}\n")

# ---------------------------------------------------------------- daemon B
old_log = os.path.join(tmp, "old-mail.log")
old_db = os.path.join(tmp, "old.db")
week_ago = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 7 * 86400))
subprocess.run([mkmaillog, "--lines", "6000", "--seed", "11", "--sim-rate", "3", "--start", week_ago, "-o",
                old_log], check=True, env=env, capture_output=True, timeout=120)
port2 = free_port()
conf2 = os.path.join(tmp, "old.ini")
with open(conf2, "w") as f:
    f.write(f"[storage]\ndb = {old_db}\n\n[web]\nlisten = 127.0.0.1:{port2}\n")
r = subprocess.run([MXW, "import", "-q", "-c", conf2, old_log], env=env, capture_output=True, text=True,
                   timeout=120)
if r.returncode != 0:
    print("FAIL mxwarden import of the old log: " + r.stderr[-2000:])
    sys.exit(1)
with sqlite3.connect(f"file:{old_db}?mode=ro", uri=True) as c:
    old_decisions = c.execute("SELECT count(*) FROM decisions").fetchone()[0]

daemon = subprocess.Popen([MXW, "run", "-c", conf], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
daemon2 = subprocess.Popen([MXW, "run", "-c", conf2], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
base = f"http://127.0.0.1:{port}"
base2 = f"http://127.0.0.1:{port2}"


def summary(b):
    try:
        with urllib.request.urlopen(b + "/api/v1/summary", timeout=5) as r:
            return json.loads(r.read())
    except Exception:
        return None


def clean_sender():
    """An address that delivered mail and was never refused nor decided on."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        row = c.execute(
            "SELECT prefix FROM top_hour WHERE scope = 'ip' GROUP BY prefix"
            " HAVING sum(CASE WHEN kind = 'accept' THEN n ELSE 0 END) > 0"
            " AND sum(CASE WHEN kind = 'connect' THEN n ELSE 0 END) > 1"
            " AND sum(CASE WHEN kind NOT IN ('accept', 'connect') THEN n ELSE 0 END) = 0"
            " AND prefix NOT IN (SELECT substr(prefix, 1, instr(prefix, '/') - 1) FROM decisions)"
            " ORDER BY sum(CASE WHEN kind = 'connect' THEN n ELSE 0 END) DESC LIMIT 1").fetchone()
    return row[0] if row else ""


def stop(p):
    p.terminate()
    try:
        out, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return p.returncode, out


rc = 1
try:
    end = time.time() + 60
    s = None
    while time.time() < end:
        s = summary(base)
        if s and s.get("ingest", {}).get("lines_read", 0) >= 8000:
            break
        if daemon.poll() is not None:
            break
        time.sleep(0.5)
    if not s or s.get("ingest", {}).get("lines_read", 0) < 8000:
        print("FAIL mxwarden run did not ingest the log in 60 s: " + json.dumps(s))
    elif not summary(base2):
        print("FAIL the second mxwarden run (imported log) does not answer")
    else:
        shots = os.path.join(BUILD, "tests", "web", "screenshots")
        os.makedirs(shots, exist_ok=True)
        r = subprocess.run([node, os.path.join(HERE, "test_browser.js")], timeout=300,
                           env=dict(env, BASE=base, BASE2=base2, LOG=log, TOKEN=TOKEN, SHOTS=shots,
                                    ABUSERS=",".join(abusers), CLEAN_IP=clean_sender(),
                                    OLD_DECISIONS=str(old_decisions), BLOCKLIST=blocklist))
        rc = r.returncode
        print("screenshots: " + shots)
finally:
    for name, p in (("run (A)", daemon), ("run (B, imported)", daemon2)):
        code, out = stop(p)
        if code != 0:
            print(f"FAIL mxwarden {name} exited {code}")
            rc = 1
        if rc:
            print(f"--- mxwarden {name} output (tail) ---\n" + out[-3000:])
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(rc)
