#!/usr/bin/env python3
"""test_files.py - files and secrets (issue 17, item 2): the database and
its -wal and -shm files, which hold raw log lines, are created 0640 (never
world-readable, whatever the umask); a world-readable database found at
start is narrowed with a warning; a report written with -o is 0640; a token
file readable by others is refused by `run` and `check-config` with a
message naming the file and the fix (chmod 600)."""
import os, stat, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

d = scratch("mxw-files-")
log = os.path.join(d, "mail.log")
append(log, seq_lines(0, 50), "w")


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def umask0():
    os.umask(0)


# --- created 0640 even under umask 000
db = os.path.join(d, "sub", "m.db")
r = run([MXW, "import", "-q", "--db", db, log], preexec_fn=umask0)
check("import under umask 000 works", r.returncode == 0, r.stderr[-300:])
check("the database is created 0640", mode(db) == 0o640, oct(mode(db)))
check("its directory is created 0750", mode(os.path.dirname(db)) == 0o750, oct(mode(os.path.dirname(db))))
dm = Daemon(db, [log]).start()
old = os.umask(0)
os.umask(old)
ok = wait_for(lambda: os.path.exists(db + "-wal") and os.path.exists(db + "-shm"), True, 15)
check("run: -wal and -shm exist", ok, dm.stderr()[-300:])
if ok:
    check("-wal and -shm are 0640 like the database", (mode(db + "-wal"), mode(db + "-shm")) == (0o640, 0o640),
          (oct(mode(db + "-wal")), oct(mode(db + "-shm"))))
dm.stop()

# --- a world-readable database is narrowed, with a warning
os.chmod(db, 0o644)
r = run([MXW, "import", "-q", "--db", db, log])
check("a world-readable database is made 0640 with a warning naming it",
      mode(db) == 0o640 and "was readable by every user" in r.stderr and db in r.stderr, (oct(mode(db)), r.stderr))
os.chmod(db, 0o660)
r = run([MXW, "import", "-q", "--db", db, log])
check("a group-writable one is left as it is, silently", mode(db) == 0o660 and "readable by every" not in r.stderr,
      (oct(mode(db)), r.stderr))

# --- a report written with -o is 0640
rep = os.path.join(d, "digest.txt")
r = run([MXW, "report", "digest", "--db", db, "--since", "30d", "-o", rep], preexec_fn=umask0)
check("report -o writes a 0640 file", r.returncode == 0 and mode(rep) == 0o640,
      (r.returncode, r.stderr[-200:], oct(mode(rep)) if os.path.exists(rep) else None))

# --- the token file must not be readable by others
tok = os.path.join(d, "token")
with open(tok, "w") as f:
    f.write("0123456789abcdef0123456789abcdef\n")
cfg = os.path.join(d, "tok.ini")
with open(cfg, "w") as f:
    f.write("[web]\ntoken_file = %s\n" % tok)
os.chmod(tok, 0o644)
r = run([MXW, "check-config", "-c", cfg])
check("check-config refuses a world-readable token file, naming it and the fix",
      r.returncode == 1 and tok in r.stderr and "chmod 600 " + tok in r.stderr, r.stderr)
dm = Daemon(os.path.join(d, "t.db"), [log], conf=cfg).start(want_port=False)
try:
    dm.p.wait(30)
except subprocess.TimeoutExpired:
    pass
check("run refuses to start with it, naming the file and the fix",
      dm.p.returncode not in (None, 0) and "chmod 600 " + tok in dm.stderr(), (dm.p.returncode, dm.stderr()[-400:]))
dm.stop()
for m in (0o600, 0o640):
    os.chmod(tok, m)
    r = run([MXW, "check-config", "-c", cfg])
    check("a token file of mode %04o is accepted" % m, r.returncode == 0, r.stderr)
dm = Daemon(os.path.join(d, "t.db"), [log], conf=cfg).start()
st, h, body = dm.http("POST", "/api/v1/blocks", headers={"Authorization": "Bearer 0123456789abcdef0123456789abcdef",
                                                          "Content-Type": "application/json"},
                      body=b'{"prefix": "198.51.100.0/24", "duration": "1h", "reason": "t"}')
check("with a 0640 token file the daemon runs and the token works", dm.port and st in (200, 201), (st, body[:200]))
dm.stop()
shutil.rmtree(d, ignore_errors=True)
done()
