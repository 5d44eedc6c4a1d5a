"""realmta.py - what the real-Exim and real-Sendmail tests share: a private
mount, network and UTS namespace for the whole test (so nothing of the
machine is touched: documentation addresses on the namespace's loopback, a
private /etc and /dev laid over the real ones), the Debian packages unpacked
from the cache `scripts/install-deps test` fills (dpkg-deb -x; installing
either MTA would remove Postfix), a small DNS server the MTAs ask, a
/dev/log that writes what it receives as syslog file lines (RFC 3164 with a
host field, as rsyslog's default file format has them), raw SMTP clients,
and the check: every line the MTA wrote about a client gives exactly one
event with that client and the kind its shape calls for.

The expectations (which shape gives which kind) are the test's own table,
written from docs/events.md and issue 13, not read back from the parser."""
import glob, json, os, re, shutil, signal, smtplib, socket, struct, subprocess, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import mxwtest  # noqa: E402
from mxwtest import MXW, Daemon, check, done, q, scratch, skip, wait_for  # noqa: E402,F401

DEB_CACHE = os.environ.get("MXW_DEB_CACHE", "/var/cache/mxwarden-test")
SERVER4 = "192.0.2.25"  # the MTA listens here (and on SERVER6)
SERVER6 = "2001:db8::25"
HOSTNAME = "mx"  # the UTS namespace's host name: the syslog host field
FQDN = "mx.example.test"
CLIENT6 = ["2001:db8:6::%x" % i for i in range(1, 9)]


# ---------------------------------------------------------------- namespaces

def enter_namespaces():
    """Run this test again inside new mount, network and UTS namespaces
    (unshare -m -n -u), as root; exit 77 when that is not possible. Returns
    inside, with loopback up, 192.0.2.0/24, 198.51.100.0/24 and
    203.0.113.0/24 local (any address of them can be bound), the addresses
    of SERVER6 and CLIENT6 on lo, and the host name HOSTNAME."""
    if os.environ.get("MXW_IN_NS") != "1":
        if os.geteuid() != 0:
            skip("needs root: the MTAs run as root in private mount and network namespaces")
        if not shutil.which("unshare") or not shutil.which("ip"):
            skip("unshare(1) or ip(8) missing (scripts/install-deps test installs util-linux and iproute2)")
        probe = subprocess.run(["unshare", "-m", "-n", "-u", "--propagation", "private", "true"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            skip("cannot create mount/network/UTS namespaces: " + probe.stderr.strip())
        os.execvpe("unshare", ["unshare", "-m", "-n", "-u", "--propagation", "private", sys.executable] + sys.argv,
                   dict(os.environ, MXW_IN_NS="1"))
    cmds = [["ip", "link", "set", "lo", "up"]]
    for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"):
        cmds.append(["ip", "route", "add", "local", net, "dev", "lo"])
    for a in [SERVER6] + CLIENT6:
        cmds.append(["ip", "-6", "addr", "add", a + "/128", "dev", "lo", "nodad"])
    cmds.append(["hostname", HOSTNAME])
    for c in cmds:
        r = subprocess.run(c, capture_output=True, text=True)
        if r.returncode != 0:
            skip("namespace set-up failed: %s: %s" % (" ".join(c), r.stderr.strip()))


MOUNTS = []  # what this test mounted in its namespace, in order


def overlay(target, upper_root):
    """Lay a writable overlay over TARGET (in this mount namespace only):
    writes land in UPPER_ROOT/upper. Returns the upper directory."""
    up, work = os.path.join(upper_root, "upper"), os.path.join(upper_root, "work")
    os.makedirs(up, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=%s,upperdir=%s,workdir=%s" % (target, up, work), target], check=True)
    MOUNTS.append(target)
    return up


def private_etc(d, users=(), files=None):
    """A private /etc: an overlay over the real one with USERS added
    ((name, uid, gid, home) system accounts, each with a group of its own),
    /etc/hosts naming the server, a resolv.conf pointing at the test's DNS
    server on 127.0.0.1, and FILES ({path under /etc: text})."""
    overlay("/etc", os.path.join(d, "etc-ovl"))
    with open("/etc/passwd", "a") as pw, open("/etc/group", "a") as gr:
        for name, uid, gid, home in users:
            pw.write("%s:x:%d:%d::%s:/usr/sbin/nologin\n" % (name, uid, gid, home))
            gr.write("%s:x:%d:\n" % (name, gid))
    with open("/etc/hosts", "w") as f:
        f.write("127.0.0.1 localhost\n%s %s %s\n%s %s %s\n" % (SERVER4, FQDN, HOSTNAME, SERVER6, FQDN, HOSTNAME))
    with open("/etc/resolv.conf", "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    for path, text in (files or {}).items():
        p = os.path.join("/etc", path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)


# ---------------------------------------------------------------- packages

def unpack(names, dest):
    """dpkg-deb -x each cached package NAME_*.deb into DEST; exit 77 naming
    the missing ones when the cache lacks any."""
    debs, missing = [], []
    for n in names:
        g = sorted(glob.glob(os.path.join(DEB_CACHE, n + "_*.deb")))
        if g:
            debs.append(g[-1])
        else:
            missing.append(n)
    if missing:
        skip("not in %s: %s (scripts/install-deps test downloads them)" % (DEB_CACHE, " ".join(missing)))
    os.makedirs(dest, exist_ok=True)
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", deb, dest], check=True)
    return [os.path.basename(x) for x in debs]


def missing_libraries(binary):
    """The shared libraries BINARY needs that the machine lacks (ldd)."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    return [ln.split()[0] for ln in r.stdout.splitlines() if "not found" in ln]


# ---------------------------------------------------------------- DNS

class MiniDNS(threading.Thread):
    """A DNS server on 127.0.0.1:53 (UDP) answering from a table:
    records {(name, qtype): [value, ...]} with qtype "A", "AAAA", "PTR",
    "MX" (value "pref host"); names in SERVFAIL get SERVFAIL; anything else
    NXDOMAIN. Names are lower case, without the final dot."""
    TYPES = {"A": 1, "PTR": 12, "MX": 15, "AAAA": 28, "TXT": 16}

    def __init__(self, records, servfail=()):
        super().__init__(daemon=True)
        self.records = {(k[0].lower(), self.TYPES[k[1]]): v for k, v in records.items()}
        self.names = {k[0].lower() for k in records}
        self.servfail = {n.lower() for n in servfail}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 53))
        self.stopped = False

    @staticmethod
    def _qname(pkt, off):
        labels = []
        while pkt[off]:
            n = pkt[off]
            labels.append(pkt[off + 1:off + 1 + n].decode("ascii", "replace"))
            off += 1 + n
        return ".".join(labels), off + 1

    @staticmethod
    def _encode(name):
        out = b""
        for lab in name.rstrip(".").split("."):
            out += bytes([len(lab)]) + lab.encode()
        return out + b"\0"

    def _rdata(self, qtype, value):
        if qtype == 1:
            return socket.inet_pton(socket.AF_INET, value)
        if qtype == 28:
            return socket.inet_pton(socket.AF_INET6, value)
        if qtype == 12:
            return self._encode(value)
        if qtype == 15:
            pref, host = value.split()
            return struct.pack("!H", int(pref)) + self._encode(host)
        if qtype == 16:
            return bytes([len(value)]) + value.encode()
        return b""

    def answer(self, pkt):
        qid, flags = struct.unpack("!HH", pkt[:4])
        name, off = self._qname(pkt, 12)
        qtype, _ = struct.unpack("!HH", pkt[off:off + 4])
        question = pkt[12:off + 4]
        lname = name.lower()
        rcode, answers = 0, []
        if lname in self.servfail:
            rcode = 2
        elif (lname, qtype) in self.records:
            answers = self.records[(lname, qtype)]
        elif lname not in self.names:
            rcode = 3
        hdr = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100) | 0x0080 | rcode, 1, len(answers), 0, 0)
        body = b""
        for v in answers:
            rd = self._rdata(qtype, v)
            body += struct.pack("!HHHIH", 0xC00C, qtype, 1, 60, len(rd)) + rd
        return hdr + question + body

    def run(self):
        while not self.stopped:
            try:
                pkt, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                self.sock.sendto(self.answer(pkt), peer)
            except (IndexError, struct.error, OSError, ValueError):
                pass

    def stop(self):
        self.stopped = True
        self.sock.close()


def ptr_name(ip):
    """The reverse-lookup name of IP (in-addr.arpa / ip6.arpa)."""
    if ":" in ip:
        h = socket.inet_pton(socket.AF_INET6, ip).hex()
        return ".".join(reversed(h)) + ".ip6.arpa"
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


# ---------------------------------------------------------------- /dev/log

class SyslogSink(threading.Thread):
    """A /dev/log of the test's own: binds a unix datagram socket at PATH
    and appends each message to OUT as a syslog file line the way rsyslog
    writes it (`Mmm dd HH:MM:SS host tag[pid]: msg`; the <PRI> dropped, the
    host field added). glibc's syslog(3) sends `<PRI>Mmm dd HH:MM:SS
    tag[pid]: msg` with no host field."""

    def __init__(self, path, out, host=HOSTNAME):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if os.path.lexists(path):
            os.unlink(path)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.out, self.host = open(out, "ab", buffering=0), host.encode()
        self.count, self.stopped = 0, False

    def run(self):
        while not self.stopped:
            try:
                msg = self.sock.recv(65536)
            except OSError:
                return
            m = re.match(rb"<(\d{1,3})>", msg)
            if m:
                msg = msg[m.end():]
            msg = msg.rstrip(b"\n").replace(b"\n", b" ")
            # glibc: "Mmm dd HH:MM:SS tag: msg"; insert the host after the stamp
            if re.match(rb"[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d ", msg):
                line = msg[:16] + self.host + b" " + msg[16:]
            else:
                line = time.strftime("%b %e %H:%M:%S ").encode() + self.host + b" " + msg
            self.out.write(line + b"\n")
            self.count += 1

    def stop(self):
        self.stopped = True
        self.sock.close()
        self.out.close()


def private_devlog(d, out):
    """A /dev/log of the test's own: when the machine has one, a bind mount
    of the test's socket over it; when it has none (no syslog daemon), an
    overlay over /dev (this namespace only) so the test's socket can be
    created at /dev/log. Returns the running SyslogSink."""
    sockpath = os.path.join(d, "devlog.sock")
    sink = SyslogSink(sockpath, out)
    sink.start()
    if not os.path.lexists("/dev/log"):
        overlay("/dev", os.path.join(d, "dev-ovl"))
        open("/dev/log", "w").close()
    subprocess.run(["mount", "--bind", sockpath, "/dev/log"], check=True)
    MOUNTS.append("/dev/log")
    return sink


def finish(d, root):
    """Undo this namespace's mounts; remove the scratch directory D when
    every check passed, else keep it (less ROOT, the unpacked packages) and
    say where."""
    while MOUNTS:
        subprocess.run(["umount", MOUNTS.pop()], capture_output=True)
    if mxwtest.failures == 0:
        shutil.rmtree(d, ignore_errors=True)
    else:
        shutil.rmtree(root, ignore_errors=True)
        print("kept %s" % d)
    done()


# ---------------------------------------------------------------- SMTP

class Raw:
    """A raw SMTP client (the protocol abuse smtplib will not do): a TCP
    connection from SRC to the server, line reads with a deadline."""

    def __init__(self, src, port=25, server=None, wait_banner=True, timeout=10):
        fam = socket.AF_INET6 if ":" in src else socket.AF_INET
        server = server or (SERVER6 if fam == socket.AF_INET6 else SERVER4)
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.bind((src, 0))
        self.s.connect((server, port))
        self.buf = b""
        self.banner = self.reply() if wait_banner else None

    def send(self, data):
        """Send DATA; False when the server has closed the connection."""
        try:
            self.s.sendall(data.encode() if isinstance(data, str) else data)
            return True
        except OSError:
            return False

    def line(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.s.recv(4096)
            except (socket.timeout, OSError):
                chunk = b""
            if not chunk:
                out, self.buf = self.buf, b""
                return out.decode(errors="replace") if out else None
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.decode(errors="replace").rstrip("\r")

    def reply(self):
        """One (possibly multi-line) reply: (code, text), or (None, '') on EOF."""
        lines = []
        while True:
            ln = self.line()
            if ln is None:
                return (None, "\n".join(lines))
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                break
        try:
            return (int(lines[-1][:3]), "\n".join(lines))
        except ValueError:
            return (None, "\n".join(lines))

    def cmd(self, c):
        if not self.send(c + "\r\n"):
            return (None, "")
        return self.reply()

    def drain(self, t=5):
        """Read until the server closes (or T seconds)."""
        end = time.time() + t
        self.s.settimeout(0.5)
        while time.time() < end:
            try:
                if not self.s.recv(4096):
                    return True
            except socket.timeout:
                continue
            except OSError:
                return True
        return False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def smtp(src, helo="client.example"):
    """smtplib from SRC to the server (v4 or v6 by SRC), after EHLO HELO."""
    s = smtplib.SMTP(SERVER6 if ":" in src else SERVER4, 25, source_address=(src, 0), timeout=10)
    s.ehlo(helo)
    return s


class Proc:
    """A daemon started in a session of its own (so that what it forks is
    in one process group), stopped with SIGTERM to that group, then SIGKILL."""

    def __init__(self, args, log):
        self.errf = open(log, "ab")
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.errf, stderr=self.errf,
                                  start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.p.wait(10)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # children of the daemon still in its group
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.errf.close()
        return self.p.returncode


def wait_listen(addr, src, port=25, timeout=30):
    """Until something accepts TCP connections on ADDR:PORT (connecting
    from SRC, so that the MTA logs a client of the test's table)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((addr, port), timeout=1, source_address=(src, 0)).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def settle(paths, quiet=0.6, timeout=15):
    """Until none of PATHS has grown for QUIET seconds."""
    end = time.time() + timeout
    last, since = None, time.time()
    while time.time() < end:
        cur = tuple(os.path.getsize(p) if os.path.exists(p) else -1 for p in paths)
        if cur != last:
            last, since = cur, time.time()
        elif time.time() - since >= quiet:
            return
        time.sleep(0.1)


def run_scenarios(scenarios, caps, files):
    """Run each scenario (name, clients, function, shapes), waiting after
    each until FILES stop growing and capturing what they gained; a
    scenario whose client raised fails its check."""
    settle(files, quiet=0.3)
    caps.mark()
    for name, _, fn, _ in scenarios:
        try:
            fn()
        except (OSError, smtplib.SMTPException) as e:
            check("scenario %s ran" % name, False, repr(e))
        settle(files, quiet=0.3)
        caps.scenario(name)


def check_scenarios(mta, scenarios, seen):
    """Each scenario's client(s) have each of its shapes in SEEN ({shape:
    [client, ...]}, from check_lines)."""
    for name, ips, _, want in scenarios:
        missing = [w for w in want if not any(ip in seen.get(w, ()) for ip in ips)]
        check("scenario %s: %s logged %s" % (name, mta, ", ".join(want)), not missing, "missing %s" % missing)


def scenario_notes(mta, debs, scenarios, shapes):
    """The README of a capture directory: what ran, which client did what,
    and the shapes with their expected events."""
    out = ["%s from %s, driven by tests/parsers/test_%s_real.py on %s." % (
        mta, ", ".join(debs), mta.lower(), time.strftime("%Y-%m-%d")),
        "Files NN-SCENARIO.SUFFIX hold the lines each scenario added; all.SUFFIX the whole run.", "",
        "scenario: clients -> shapes it must log"]
    out += ["  %s: %s -> %s" % (n, ", ".join(ips), ", ".join(w)) for n, ips, _, w in scenarios]
    out += ["", "shape: regex -> expected event kinds / category (why)"]
    out += ["  %s: %s -> %s (%s)" % (s.name, s.rx.pattern, s.want() or "no event", s.why) for s in shapes]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- checking

def spellings(ip):
    """The ways an MTA may write IP: as given (canonical) and, for IPv6,
    uncompressed without leading zeros (Sendmail's `IPv6:2001:db8:6:0:0:0:0:1`)."""
    out = [ip]
    if ":" in ip:
        b = socket.inet_pton(socket.AF_INET6, ip)
        out.append(":".join("%x" % x for x in struct.unpack("!8H", b)))
    return out


def parse_file(path, fmt="auto"):
    """{raw line: [event, ...]} from `mxwarden parse` of PATH, and its
    --stats text."""
    r = subprocess.run([MXW, "parse", "--stats", "--format", fmt, path], capture_output=True, timeout=120)
    by_line = {}
    for ln in r.stdout.decode("utf-8", "replace").splitlines():
        ev = json.loads(ln)
        by_line.setdefault(ev["line"], []).append(ev)
    return by_line, r.stderr.decode("utf-8", "replace")


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return [ln.decode("utf-8", "replace") for ln in f.read().split(b"\n") if ln]


class Shape:
    """A kind of log line: NAME, a regex found in the line, the event KINDS
    it may give (() = no event), the CATEGORY it must have (None = any; a
    tuple: one of them),
    and WHY: where the expectation comes from (docs/events.md, issue 13,
    or the test's reading of a line neither names)."""

    def __init__(self, name, rx, kinds, category=None, why="docs"):
        self.name, self.rx, self.kinds, self.category, self.why = name, re.compile(rx), kinds, category, why

    def categories(self):
        return self.category if isinstance(self.category, tuple) else (self.category,)

    def want(self):
        """What a line of this shape must give, in words."""
        return "|".join(self.kinds) + ("" if self.category is None else "/" + "|".join(self.categories()))


def client_re(clients):
    """A regex finding any spelling of CLIENTS in a line, and the map from
    spelling to canonical address."""
    canon = {}
    for c in clients:
        for sp in spellings(c):
            canon[sp] = c
    rx = re.compile(r"(?<![0-9A-Za-z.])(%s)(?![0-9A-Za-z:]|\.\d)" % "|".join(
        re.escape(x) for x in sorted(canon, key=len, reverse=True)))
    return rx, canon


def check_lines(lines, by_line, shapes, clients, skip_rx=None, record=None):
    """Each of LINES that names one of CLIENTS must match a Shape and give
    exactly one event whose ip is that client and whose kind (and category,
    where the shape names one) the shape allows; a shape with no kinds
    must give no event. Lines matching SKIP_RX are left to the caller.
    Returns {shape name: (clients of its lines, [failure text, ...])}, with
    the lines of no known shape under None; appends (client, shape name,
    expected event, line) to RECORD for each line checked."""
    rx, canon = client_re(clients)
    out = {}
    for ln in lines:
        if skip_rx is not None and skip_rx.search(ln):
            continue
        ips = {canon[m] for m in rx.findall(ln)}
        if not ips:
            continue
        evs = by_line.get(ln, [])
        sh = next((s for s in shapes if s.rx.search(ln)), None)
        seen, bad = out.setdefault(sh.name if sh else None, ([], []))
        if sh is None:
            bad.append("a line of a shape the test does not know: " + ln)
            continue
        if len(ips) != 1:
            bad.append("names several clients %s: %s" % (sorted(ips), ln))
            continue
        ip = ips.pop()
        seen.append(ip)
        if record is not None:
            record.append((ip, sh.name, sh.want() or "no event", ln))
        got = [(e["kind"], e["ip"], e["category"]) for e in evs]
        if not sh.kinds:
            if evs:
                bad.append("want no event, got %s: %s" % (got, ln))
            continue
        ok = (len(evs) == 1 and evs[0]["ip"] == ip and evs[0]["kind"] in sh.kinds
              and (sh.category is None or evs[0]["category"] in sh.categories()))
        if not ok:
            bad.append("want one %s event for %s, got %s: %s" % (sh.want(), ip, got, ln))
    return out


def report_lines(label, result, shapes):
    """One check per shape of RESULT (from check_lines): its lines give
    the events it calls for."""
    if None in result:
        bad = result[None][1]
        check("%s: every line naming a client has a shape the test knows" % label, not bad,
              "\n  " + "\n  ".join(bad[:5]))
    for sh in shapes:
        if sh.name not in result:
            continue
        seen, bad = result[sh.name]
        want = "no event" if not sh.kinds else "one %s event with its client" % sh.want()
        check("%s [%s]: %d of %d lines give %s" % (label, sh.name, len(seen) - len(bad), len(seen), want),
              not bad, "\n  " + "\n  ".join(bad[:3]) + ("\n  ... %d more" % (len(bad) - 3) if len(bad) > 3 else ""))


EVIDENCE = ("reject", "auth_failure", "protocol", "lost")


def stored_counts(db):
    """{(ip, kind): n} of the evidence rows stored."""
    return {(ip, kind): n for ip, kind, n in q(
        db, "SELECT ip, kind, count(*) FROM events WHERE kind IN (%s) GROUP BY ip, kind" % ",".join(
            "'%s'" % k for k in EVIDENCE))}


def event_counts(by_line, lines, ip_of=None):
    """{(ip, kind): n} of the evidence events `mxwarden parse` gave for
    LINES (each line once per occurrence); IP_OF(event) names the client
    of an event without one (Sendmail's per-queue-id rejections)."""
    out = {}
    for ln in lines:
        for e in by_line.get(ln, []):
            if e["kind"] not in EVIDENCE:
                continue
            ip = e["ip"] if e["ip"] is not None or ip_of is None else ip_of(e)
            out[(ip, e["kind"])] = out.get((ip, e["kind"]), 0) + 1
    return out


class Captures:
    """Per-scenario copies of what the MTA wrote, for the parser work: when
    MXW_CAPTURE_DIR is set, after each scenario the lines each of FILES
    ({suffix: path}) gained are written to DIR/MTA/NN-SCENARIO.SUFFIX, and
    the whole files to DIR/MTA/all.SUFFIX at the end."""

    def __init__(self, mta, files):
        base = os.environ.get("MXW_CAPTURE_DIR")
        self.dir = os.path.join(base, mta) if base else None
        self.files, self.n = files, 0
        self.marks = {k: 0 for k in files}
        if self.dir:
            os.makedirs(self.dir, exist_ok=True)
            for f in glob.glob(os.path.join(self.dir, "*")):
                os.unlink(f)

    def _size(self, p):
        return os.path.getsize(p) if os.path.exists(p) else 0

    def mark(self):
        for k, p in self.files.items():
            self.marks[k] = self._size(p)

    def scenario(self, name):
        self.n += 1
        if not self.dir:
            return
        for k, p in self.files.items():
            end = self._size(p)
            if end > self.marks[k]:
                with open(p, "rb") as f:
                    f.seek(self.marks[k])
                    data = f.read(end - self.marks[k])
                with open(os.path.join(self.dir, "%02d-%s.%s" % (self.n, name, k)), "wb") as o:
                    o.write(data)
            self.marks[k] = end

    def finish(self, notes="", expected=None):
        """Copy the whole files, write NOTES as README and, for each suffix
        of EXPECTED ({suffix: [(client, shape, expected event, line)]}),
        all.SUFFIX.expected: those four fields per line, tab-separated."""
        if not self.dir:
            return
        for k, p in self.files.items():
            if os.path.exists(p):
                shutil.copyfile(p, os.path.join(self.dir, "all." + k))
        for k, rows in (expected or {}).items():
            with open(os.path.join(self.dir, "all.%s.expected" % k), "w") as f:
                f.write("# client\tshape\texpected event\tline (lines naming a client, in log order)\n")
                for row in rows:
                    f.write("\t".join(row) + "\n")
        if notes:
            with open(os.path.join(self.dir, "README"), "w") as f:
                f.write(notes)
