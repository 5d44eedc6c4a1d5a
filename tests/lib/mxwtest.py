"""mxwtest.py - what the Python tests share (integration, reliability and
system tests, and the benchmarks that drive the binary): checks that print
"ok"/"FAIL"/"KNOWN BUG" and count, a scratch directory, `mxwarden run` as a
child process (its web port read from its log), log lines carrying a unique
sequence number, read-only queries of the database, small HTTP requests,
free ports, and a private Postfix instance for the system tests.

A test puts tests/lib on sys.path and imports it as `from mxwtest import *`
(so it also runs by hand: MXWARDEN=build/cli/mxwarden python3 tests/...)."""
import http.client, json, os, random, re, shutil, signal, socket, sqlite3, subprocess, sys, tempfile, time

MXW = os.environ.get("MXWARDEN", "build/cli/mxwarden")
SHARED = os.environ.get("MXW_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared"))
MKMAILLOG = os.path.join(SHARED, "tools", "mkmaillog")

failures = 0
known = []


def check(name, cond, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + name + ("" if cond or not detail else ": " + str(detail)[:2000]), flush=True)
    if not cond:
        failures += 1
    return cond


def known_bug(name, cond, detail=""):
    """A check that exposes a reported bug: printed, never fails the suite."""
    if cond:
        print("ok   " + name + " (a KNOWN BUG check now passes: remove the marker)", flush=True)
    else:
        print("KNOWN BUG: " + name + ("" if not detail else ": " + str(detail)[:2000]), flush=True)
        known.append(name)
    return cond


def done():
    if known:
        print("%d known bug(s) marked as expected failures" % len(known), flush=True)
    sys.exit(1 if failures else 0)


def private_mount_ns():
    """Run this test again inside a private mount namespace (`unshare -m`),
    where it may mount a tmpfs of its own; exit 77 (skipped) when that is
    not permitted. Returns in the namespace."""
    if os.environ.get("MXW_IN_NS") == "1":
        return
    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("SKIP: needs root and unshare(1) for a private tmpfs", flush=True)
        sys.exit(77)
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d && rmdir $d"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        print("SKIP: cannot mount a tmpfs in a private mount namespace: " + probe.stderr.strip(), flush=True)
        sys.exit(77)
    os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", sys.executable] + sys.argv,
               dict(os.environ, MXW_IN_NS="1"))


def private_net_ns(addrs=()):
    """Run this test again inside a network namespace of its own (`unshare
    -n`) whose loopback interface is up and also holds addrs (documentation
    addresses a test sends from, e.g. "192.0.2.1/32"); exit 77 (skipped) when
    that is not permitted. Returns in the namespace."""
    if os.environ.get("MXW_IN_NETNS") != "1":
        if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
            print("SKIP: needs root, unshare(1) and ip(8) for a network namespace", flush=True)
            sys.exit(77)
        probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
        if probe.returncode != 0:
            print("SKIP: cannot make a network namespace: " + probe.stderr.strip(), flush=True)
            sys.exit(77)
        os.execvpe("unshare", ["unshare", "-n", sys.executable] + sys.argv, dict(os.environ, MXW_IN_NETNS="1"))
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for a in addrs:
        subprocess.run(["ip", "addr", "add", a, "dev", "lo"], check=True)


def plain_entries(path, none_if_missing=False):
    """The entries of a plain blocklist (comment and blank lines left out):
    an empty set, or None with none_if_missing, when it cannot be read."""
    try:
        with open(path) as f:
            return {l.strip() for l in f if l.strip() and not l.startswith("#")}
    except OSError:
        return None if none_if_missing else set()


def skip(why):
    print("SKIP: " + why, flush=True)
    sys.exit(77)


def scratch(prefix="mxw-test-"):
    return tempfile.mkdtemp(prefix=prefix)


def stamp(t=None):
    return time.strftime("%b %e %H:%M:%S", time.localtime(t if t is not None else time.time()))


def seq_line(n, ip="198.51.100.7", when=None):
    """A Postfix RCPT reject whose recipient carries the sequence number."""
    return ("%s mx postfix/smtpd[1234]: NOQUEUE: reject: RCPT from unknown[%s]: 550 5.1.1 <u%010d@example.com>: "
            "Recipient address rejected: User unknown in local recipient table; from=<a@b.example> "
            "to=<u%010d@example.com> proto=ESMTP helo=<x>\n" % (when or stamp(), ip, n, n))


def disconnect_line(ip, when, rcpts):
    """The end of seq_line's connection (smtpd[1234]) after rcpts refused RCPTs: the judge weighs a
    connection's refusals once it ends."""
    return "%s mx postfix/smtpd[1234]: disconnect from unknown[%s] ehlo=1 mail=1 rcpt=0/%d commands=2/%d\n" % (
        when, ip, rcpts, rcpts + 2)


def seq_lines(a, b, **kw):
    return "".join(seq_line(i, **kw) for i in range(a, b))


def append(path, data, mode="a"):
    with open(path, mode + ("b" if isinstance(data, bytes) else "")) as f:
        f.write(data)


class Daemon:
    """`mxwarden run` in the background on its own database, its web server on
    a port the kernel picks (tests run side by side); stderr goes to a file.
    start() waits for the "web: listening on" line and reads the port from it
    (want_port=False: returns at once, e.g. to kill it during its start)."""

    def __init__(self, db, follow=(), extra=(), env=None, conf=None, log=None, fast=True, prefix=()):
        self.db, self.follow, self.extra, self.conf = db, list(follow), list(extra), conf
        self.env = dict(os.environ, **(env or {}))
        self.log = log or db + ".stderr"
        self.fast, self.prefix = fast, list(prefix)
        self.p = None
        self.port = None

    def start(self, want_port=True):
        args = self.prefix + [MXW, "run", "--db", self.db, "--listen", "127.0.0.1:0"]
        if self.fast:
            args.append("--db-fast")
        if self.conf:
            args += ["-c", self.conf]
        for f in self.follow:
            args += ["--follow", f]
        args += self.extra
        self.errf = open(self.log, "a")
        self.mark = os.path.getsize(self.log)
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.errf, env=self.env)
        if want_port:
            end = time.time() + 60
            while time.time() < end and self.p.poll() is None:
                m = re.search(r"web: listening on http://[^:]+:(\d+)/", self.stderr()[self.mark:])
                if m:
                    self.port = int(m.group(1))
                    break
                time.sleep(0.05)
        return self

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self.errf.close()

    def stop(self, timeout=30):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self.p:
            self.errf.close()
        return self.p.returncode

    def stderr(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def status(self, key):
        """A line of /proc/PID/status (e.g. VmHWM) in KiB, or None."""
        try:
            with open("/proc/%d/status" % self.p.pid) as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def http(self, method, path, **kw):
        return request(self.port, method, path, **kw)


def request(port, method, path, headers=None, body=None, timeout=15):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        c.putheader("Host", "127.0.0.1:%d" % port)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except (OSError, http.client.HTTPException) as e:
        return None, {}, str(e).encode()
    finally:
        c.close()


def get_json(port, path):
    st, h, data = request(port, "GET", path)
    try:
        return st, json.loads(data)
    except ValueError:
        return st, None


def metric(port, name):
    """The value of a Prometheus sample line that starts with NAME (exact
    series text, labels included), or None."""
    st, h, data = request(port, "GET", "/metrics")
    if st != 200:
        return None
    for line in data.decode(errors="replace").splitlines():
        if line.startswith(name + " "):
            try:
                return float(line.split()[-1])
            except ValueError:
                return None
    return None


def q(db, sql, *args):
    """Rows of a read-only query, retried while the database is not there
    yet, locked or busy (10 s at most)."""
    mode = "ro"
    for attempt in range(100):
        try:
            con = sqlite3.connect("file:%s?mode=%s" % (db, mode), uri=True, timeout=10)
            try:
                return con.execute(sql, args).fetchall()
            finally:
                con.close()
        except sqlite3.OperationalError as e:
            if any(s in str(e) for s in ("no such table", "unable to open", "locked", "busy")):
                time.sleep(0.1)
                continue
            if "readonly" in str(e) and mode == "ro":
                # a writer killed while it updated the WAL index: only a
                # read-write connection may rebuild it (reading changes nothing)
                mode = "rw"
                continue
            raise
    return []


def seq_counts(db):
    """{seq: count} over stored events whose recipient is u<seq>@example.com."""
    rows = q(db, "SELECT rcpt_to, count(*) FROM events WHERE rcpt_to LIKE 'u%@example.com' GROUP BY rcpt_to")
    out = {}
    for r, c in rows:
        m = re.match(r"u(\d+)@", r if isinstance(r, str) else r.decode())
        if m:
            out[int(m.group(1))] = c
    return out


def exact(counts, a, b):
    """(ok, detail): every seq in [a, b) exactly once and nothing else."""
    missing = [i for i in range(a, b) if counts.get(i, 0) == 0]
    dups = [i for i, c in counts.items() if c > 1]
    extra = [i for i in counts if i < a or i >= b]
    ok = not missing and not dups and not extra
    return ok, "missing %d (e.g. %s), duplicated %d (e.g. %s), unexpected %d" % (
        len(missing), missing[:5], len(dups), dups[:5], len(extra))


def lines_read(db, path_like="%"):
    r = q(db, "SELECT coalesce(sum(lines_read),0) FROM sources WHERE path LIKE ?", path_like)
    return r[0][0] if r else 0


def wait_for(fn, want, timeout=30, step=0.1):
    end = time.time() + timeout
    got = None
    while time.time() < end:
        got = fn()
        if got == want:
            return got
        time.sleep(step)
    return got


def run(args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(args, **kw)


def sanitized():
    """True when the binary was built with ASan (its memory figures and speed differ)."""
    try:
        with open(MXW, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def stats_json(db):
    import json
    p = subprocess.run([MXW, "stats", "--db", db, "--json"], capture_output=True, text=True, timeout=30)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def wait_port(port, timeout=30):
    """Until something accepts TCP connections on 127.0.0.1:port (the syslog
    receiver binds its UDP socket first, so UDP is ready then too)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def free_port(addr="127.0.0.1"):
    """A TCP port free on addr ("0.0.0.0": on every IPv4 address)."""
    s = socket.socket()
    s.bind((addr, 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ------------------------------------------------------------ a real Postfix

def postfix_missing():
    """Why a private Postfix instance cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "needs root to start a Postfix instance"
    import shutil
    if not shutil.which("postfix") or not os.path.exists("/usr/lib/postfix/sbin/master"):
        return "postfix is not installed (scripts/install-deps test installs it)"
    try:
        import grp, pwd
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "no postfix user or postdrop group"
    return None


class Postfix:
    """Debian's Postfix with its own configuration directory, queue and log
    file under d (`postfix -c d/etc`): smtpd on each address of listen
    ("127.0.0.1:2525", "[2001:db8::1]:25"), the log in maillog_file d/maillog
    with d as its prefix, local mail discarded, nothing sent out, no DNS.
    main is extra main.cf text (restrictions, mynetworks, inet_interfaces).
    wrap runs the postfix command (and so the master) under a prefix, e.g.
    ["ip", "netns", "exec", NS]."""

    def __init__(self, d, listen, main="", wrap=()):
        import shutil
        os.chmod(d, 0o755)
        self.etc, self.spool, self.data = (os.path.join(d, x) for x in ("etc", "spool", "data"))
        for x in (self.etc, self.spool, self.data):
            os.makedirs(x, exist_ok=True)
        shutil.chown(self.data, "postfix")
        self.maillog = os.path.join(d, "maillog")
        self.wrap = list(wrap)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("""compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.invalid
mydomain = test.invalid
myorigin = $myhostname
mydestination = mx.test.invalid, localhost
maillog_file = {maillog}
maillog_file_prefixes = {prefix}
smtpd_peername_lookup = no
alias_maps =
alias_database =
biff = no
default_transport = error:no outbound mail in tests
local_transport = discard:local
shlib_directory = /usr/lib/postfix
daemon_directory = /usr/lib/postfix/sbin
command_directory = /usr/sbin
meta_directory = /etc/postfix
""".format(spool=self.spool, data=self.data, maillog=self.maillog, prefix=d) + main)
        services = [(a, "inet", "n", "-", "n", "-", "-", "smtpd") for a in listen] + [
            (n, t, "n" if n in ("pickup", "cleanup", "qmgr", "showq", "flush") else "-", "-", "n", w, lim, cmd)
            for n, t, w, lim, cmd in (
                ("pickup", "unix", "60", "1", "pickup"), ("cleanup", "unix", "-", "0", "cleanup"),
                ("qmgr", "unix", "300", "1", "qmgr"), ("rewrite", "unix", "-", "-", "trivial-rewrite"),
                ("bounce", "unix", "-", "0", "bounce"), ("defer", "unix", "-", "0", "bounce"),
                ("trace", "unix", "-", "0", "bounce"), ("verify", "unix", "-", "1", "verify"),
                ("flush", "unix", "1000?", "0", "flush"), ("proxymap", "unix", "-", "-", "proxymap"),
                ("showq", "unix", "-", "-", "showq"), ("error", "unix", "-", "-", "error"),
                ("retry", "unix", "-", "-", "error"), ("discard", "unix", "-", "-", "discard"),
                ("anvil", "unix", "-", "1", "anvil"), ("scache", "unix", "-", "1", "scache"))] + [
            ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd")]
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            for s in services:
                f.write(" ".join(s) + "\n")

    def command(self, cmd):
        """The argv of `postfix -c ETC cmd` (for a reload = line, say)."""
        return ["/usr/sbin/postfix", "-c", self.etc, cmd]

    def run(self, cmd):
        return subprocess.run(self.wrap + self.command(cmd), capture_output=True, text=True, timeout=60)

    def master_pid(self):
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def log_tail(self, n=1500):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self):
        """postfix stop, then wait for the master to be gone (SIGKILL to that
        pid after 10 s), so that nothing of this instance outlives the test."""
        pid = self.master_pid()
        self.run("stop")
        end = time.time() + 10
        while pid and time.time() < end:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.1)
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
