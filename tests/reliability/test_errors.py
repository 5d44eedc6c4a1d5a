#!/usr/bin/env python3
"""test_errors.py - errors in words (issue 17, item 7): an over-long URI
gets 414 with a JSON error, path or query alike; a database directory or
file the user cannot write, a privileged port, a port in use and an address
the host does not have are refused at start with a message that says so and
what to do. The unprivileged cases run as `nobody` (setpriv) when the test
runs as root, as the current user otherwise."""
import os, pwd, shutil, socket, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

d = scratch("mxw-err-")
os.chmod(d, 0o755)
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
append(log, seq_lines(0, 20), "w")
os.chmod(log, 0o644)

# --- 414 for an over-long URI, path or query
dm = Daemon(db, [log]).start()
for what, path in (("a 9 KB path", "/api/v1/lookup/" + "a" * 9000), ("a 20 KB path", "/" + "b" * 20000),
                   ("a 100 KB path", "/static/" + "c" * 100000), ("a 20 KB query", "/api/v1/summary?x=" + "d" * 20000)):
    st, h, body = dm.http("GET", path)
    check("%s: 414 with a JSON error" % what, st == 414 and body[:10] == b'{"error":"' and b"longer than" in body,
          (st, body[:120]))
st, h, body = dm.http("GET", "/api/v1/lookup/" + "a" * 7000)
check("a 7 KB path is not refused for its length (400: not an address)", st == 400 and b"longer" not in body,
      (st, body[:100]))
dm.stop()

# --- unprivileged: run as nobody when root
if os.geteuid() == 0 and shutil.which("setpriv"):
    nobody = pwd.getpwnam("nobody")
    as_user = ["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid, "--clear-groups"]
    uid = nobody.pw_uid
else:
    as_user, uid = [], os.geteuid()


def mxw(*args):
    return run(as_user + [MXW] + list(args))


if uid != 0:
    # a directory the user cannot write: the database cannot be created there
    r = mxw("import", "--db", os.path.join(d, "new.db"), log)
    check("a database in a directory the user cannot write: refused in words, with the uid",
          r.returncode == 1 and "permission denied: the directory %s is not writable by this user (uid %d)"
          % (d, uid) in r.stderr, r.stderr[-400:])
    # a parent that cannot be created
    r = mxw("import", "--db", os.path.join(d, "sub", "new.db"), log)
    check("a database directory that cannot be made: refused in words", r.returncode == 1 and
          "is not writable by this user" in r.stderr, r.stderr[-400:])
    # a database file the user cannot write, in a directory the user can
    w = scratch("mxw-err-w-")
    os.chmod(w, 0o777)
    wdb = os.path.join(w, "m.db")
    run([MXW, "import", "-q", "--db", wdb, log])
    os.chmod(wdb, 0o644)
    r = mxw("import", "--db", wdb, log)
    check("a database file the user cannot write: refused in words", r.returncode == 1 and
          "not writable by this user (uid %d)" % uid in r.stderr, r.stderr[-400:])
    # a privileged port, where the kernel keeps ports below 1024 for root
    try:
        start = int(open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read())
    except (OSError, ValueError):
        start = 1024
    if start > 80:
        os.chmod(wdb, 0o666)
        r = mxw("run", "--db", wdb, "--listen", "127.0.0.1:80", "--follow", log)
        check("web on port 80 without privilege: refused, naming the port and the ways out",
              r.returncode != 0 and "port 80 is privileged (below 1024)" in r.stderr
              and "CAP_NET_BIND_SERVICE" in r.stderr, r.stderr[-400:])
        r = mxw("run", "--db", wdb, "--listen", "127.0.0.1:0", "--syslog-listen", "127.0.0.1:514", "--follow", log)
        check("syslog on port 514 without privilege: refused the same way",
              r.returncode != 0 and "port 514 is privileged (below 1024)" in r.stderr, r.stderr[-400:])
    else:
        print("SKIP privileged port: ip_unprivileged_port_start is %d here" % start, flush=True)
    shutil.rmtree(w, ignore_errors=True)
else:
    print("SKIP the unprivileged cases: running as root without setpriv", flush=True)

# --- a port in use, an address this host does not have
busy = socket.socket()
busy.bind(("127.0.0.1", 0))
busy.listen(1)
bport = busy.getsockname()[1]
r = run([MXW, "run", "--db", db, "--listen", "127.0.0.1:%d" % bport, "--follow", log])
check("web on a port in use: refused, saying so", r.returncode != 0 and "the address is in use" in r.stderr,
      r.stderr[-300:])
r = run([MXW, "run", "--db", db, "--listen", "127.0.0.1:0", "--syslog-listen", "127.0.0.1:%d" % bport, "--follow",
         log])
check("syslog on a port in use: refused, saying so", r.returncode != 0 and "the address is in use" in r.stderr,
      r.stderr[-300:])
busy.close()
r = run([MXW, "run", "--db", db, "--listen", "203.0.113.77:0", "--follow", log])
check("web on an address the host does not have: refused, saying so",
      r.returncode != 0 and "this host has no interface with that address" in r.stderr, r.stderr[-300:])
shutil.rmtree(d, ignore_errors=True)
done()
