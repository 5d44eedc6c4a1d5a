"""test_package.py - the Debian package on this machine, as a postmaster
gets it (issue 15): ./scripts/package builds it; `apt-get install
./mxwarden_*.deb` creates the user (a system user in adm), the directories
and the files with their owners and modes, and enables the unit (the
multi-user.target.wants link); the man pages are found by man(1). Then the
installed binary runs with the unit's ExecStart line under setpriv with
the unit's user, groups, capability bounding set (empty), no new privileges
and umask (systemd itself does not run here), with NOTIFY_SOCKET,
WATCHDOG_USEC and JOURNAL_STREAM as systemd would set them: it follows a
log readable only by group adm, tells READY, STATUS and the watchdog,
writes its blocklist, answers /healthz, logs with <N> priorities and no
time stamps, and stops on SIGTERM. As root: `run` under INVOCATION_ID is
refused; `mxwarden block`, `allow` and `unallow` switch to the database's
owner (the daemon leaves the allowed prefix out of its blocklist, and
blocks it again once the allow ends) and leave no root-owned file in
/var/lib/mxwarden. `apt-get remove` keeps the configuration and the state,
a reinstall (an upgrade) finds the database and the edited configuration;
a database of schema 8 (the release before the journal source and the
MX host tables) is migrated to the current schema by the first command
that writes it, as the database's owner. `apt-get purge` removes /etc/mxwarden and
/var/lib/mxwarden and the unit's link: nothing is left.

This test changes the system (a package, a user): suite system, not in
parallel. It purges an mxwarden package installed before it."""
import grp, os, pwd, re, shutil, signal, socket, stat, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

SRC = os.environ.get("MXW_SOURCE", ".")
BUILD = os.environ.get("MXW_BUILD", "build")
UNIT = "/lib/systemd/system/mxwarden.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/mxwarden.service"
CONF = "/etc/mxwarden/mxwarden.conf"
STATE = "/var/lib/mxwarden"
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
t_start = time.time()


def apt(*args):
    return run(["apt-get", "-y", "-q", "--no-install-recommends"] + list(args), env=APT_ENV, timeout=300)


def pkg_state():
    p = run(["dpkg-query", "-W", "-f=${Status}", "mxwarden"])
    return p.stdout.strip() if p.returncode == 0 else ""


def mode_owner(path):
    st = os.lstat(path)
    return oct(stat.S_IMODE(st.st_mode)), pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


def as_mxwarden_sql(db, sql):
    """Run sql on db as the user mxwarden (root would leave a -wal or -shm
    the daemon cannot open); the rows as text, one a line."""
    code = ("import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1])\n"
            "for r in c.execute(sys.argv[2]).fetchall():\n"
            "    print(*r)\n"
            "c.commit()\n")
    return run(["setpriv", "--reuid=mxwarden", "--regid=mxwarden", "--init-groups", "--", "/usr/bin/python3", "-c", code,
                db, sql])


def unit_settings(text):
    s = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            s.setdefault(m.group(1), []).append(m.group(2))
    return s


def main():
    if os.geteuid() != 0:
        skip("needs root (apt-get install)")
    for tool in ("apt-get", "setpriv", "dpkg-buildpackage"):
        if not shutil.which(tool):
            skip(tool + " is missing (scripts/install-deps test)")
    if pkg_state():
        apt("purge", "mxwarden")

    # -------------------------------------------------------------- build
    t0 = time.time()
    p = run([os.path.join(SRC, "scripts", "package"), os.path.join(BUILD, "deb")], timeout=900)
    deb = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    check("scripts/package builds the .deb and prints its path last", p.returncode == 0 and deb.endswith(".deb")
          and os.path.isfile(deb), p.stderr[-3000:])
    if not os.path.isfile(deb):
        done()
    print("package built in %.0f s: %s" % (time.time() - t0, deb), flush=True)
    check("lintian reports no error", " E: " not in p.stderr and "\nE: " not in "\n" + p.stderr, p.stderr[-2000:])
    listing = run(["dpkg-deb", "-c", deb]).stdout
    print("package files:\n" + "\n".join(l.split()[-1] for l in listing.splitlines() if not l.endswith("/")),
          flush=True)

    # ------------------------------------------------------------ install
    p = apt("install", os.path.abspath(deb))
    check("apt-get install ./mxwarden_*.deb", p.returncode == 0 and pkg_state() == "install ok installed",
          p.stdout[-1500:] + p.stderr[-1500:])
    try:
        pw = pwd.getpwnam("mxwarden")
    except KeyError:
        pw = None
    check("the user mxwarden exists, a system user", pw is not None and pw.pw_uid < 1000, pw)
    if pw is None:
        done()
    check("its home is /var/lib/mxwarden, it has no login shell",
          pw.pw_dir == STATE and pw.pw_shell.endswith("nologin"), pw)
    check("mxwarden is a member of adm", "mxwarden" in grp.getgrnam("adm").gr_mem, grp.getgrnam("adm"))
    want = {
        "/usr/sbin/mxwarden": ("0o755", "root", "root"),
        "/etc/mxwarden": ("0o755", "root", "root"),
        CONF: ("0o644", "root", "root"),
        STATE: ("0o750", "mxwarden", "mxwarden"),
        UNIT: ("0o644", "root", "root"),
        "/lib/systemd/system/mxwarden-load@.service": ("0o644", "root", "root"),
        "/lib/systemd/system/mxwarden-load@.path": ("0o644", "root", "root"),
        "/usr/lib/sysusers.d/mxwarden.conf": ("0o644", "root", "root"),
        "/usr/lib/tmpfiles.d/mxwarden.conf": ("0o644", "root", "root"),
        "/usr/share/man/man8/mxwarden.8.gz": ("0o644", "root", "root"),
        "/usr/share/man/man5/mxwarden.conf.5.gz": ("0o644", "root", "root"),
    }
    for path, w in want.items():
        got = mode_owner(path) if os.path.lexists(path) else None
        check("%s is %s %s:%s" % (path, w[0], w[1], w[2]), got == w, got)
    check("the unit is enabled: the multi-user.target.wants link",
          os.path.islink(WANTS) and os.readlink(WANTS) == UNIT, os.readlink(WANTS) if os.path.islink(WANTS) else None)
    for page in ("mxwarden", "mxwarden.conf"):
        p = run(["man", "-w", page])
        check("man finds %s" % page, p.returncode == 0 and p.stdout.startswith("/usr/share/man/"), p.stdout + p.stderr)
    p = run(["man", "mxwarden.conf"], env=dict(os.environ, MANWIDTH="100"))
    check("man mxwarden.conf renders the key reference", "max_tracked_ips" in re.sub(r".\x08", "", p.stdout), p.stderr)
    p = run(["systemd-analyze", "verify", UNIT])
    check("systemd-analyze verify accepts the installed unit", p.returncode == 0 and not p.stderr.strip(),
          p.stdout + p.stderr)
    p = run(["systemd-analyze", "security", "--offline=yes", UNIT])
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout)
    check("the installed unit's exposure is at most 2.5", m and float(m.group(1)) <= 2.5, p.stdout[-400:])
    p = run(["/usr/sbin/mxwarden", "check-config", "-c", CONF])
    check("check-config accepts the installed example", p.returncode == 0, p.stderr)

    # ------------------------------------------------- run as the unit does
    unit = unit_settings(open(UNIT).read())
    execstart = unit["ExecStart"][0].split()
    check("the unit's ExecStart runs the installed binary with the configuration",
          execstart[:2] == ["/usr/sbin/mxwarden", "run"] and CONF in execstart, execstart)
    user, group = unit["User"][0], unit["Group"][0]
    groups = " ".join(unit.get("SupplementaryGroups", [])).split()
    check("the unit's capability bounding set is empty", unit.get("CapabilityBoundingSet") == [""], unit.get("CapabilityBoundingSet"))
    umask = int(unit.get("UMask", ["0022"])[0], 8)

    logdir = "/var/log/mxw-pkgtest"
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(logdir, 0o755)
    log = os.path.join(logdir, "mail.log")
    open(log, "w").close()
    os.chown(log, 0, grp.getgrnam("adm").gr_gid)
    os.chmod(log, 0o640)
    port = free_port()
    example = open(CONF).read()
    conf = re.sub(r"(?m)^journal = .*$", "follow = " + log, example)
    conf = re.sub(r"(?m)^listen = .*$", "listen = 127.0.0.1:%d" % port, conf)
    with open(CONF, "w") as f:
        f.write(conf)

    sockdir = scratch("mxw-notify-")
    os.chmod(sockdir, 0o755)
    nsock_path = os.path.join(sockdir, "notify")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(nsock_path)
    os.chmod(nsock_path, 0o777)
    nsock.settimeout(0.2)
    errpath = os.path.join(sockdir, "stderr")
    errf = open(errpath, "w")
    st = os.fstat(errf.fileno())
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "INVOCATION_ID": "0123456789abcdef0123456789abcdef",
           "NOTIFY_SOCKET": nsock_path, "WATCHDOG_USEC": "2000000", "JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}
    cmd = ["setpriv", "--reuid=" + user, "--regid=" + group, "--groups=" + ",".join(groups),
           "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--"] + execstart
    daemon = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf, env=env, cwd=unit["WorkingDirectory"][0],
                              preexec_fn=lambda: os.umask(umask))
    msgs = []

    def notified(pred, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if any(pred(m) for m in msgs):
                return True
            try:
                msgs.append(nsock.recv(4096).decode())
            except socket.timeout:
                if daemon.poll() is not None:
                    break
        return any(pred(m) for m in msgs)

    try:
        check("READY=1 on the notification socket", notified(lambda m: "READY=1" in m.split("\n"), 30),
              (msgs, open(errpath).read()[-1500:]))
        check("a STATUS line with lines/s, events and decisions",
              notified(lambda m: re.search(r"STATUS=.*lines/s.*events.*decisions in force", m), 10), msgs)
        check("WATCHDOG=1 pings (WatchdogSec halved)", notified(lambda m: "WATCHDOG=1" in m, 5), msgs)
        ps = {l.split(":")[0]: l.split(":", 1)[1].strip() for l in open("/proc/%d/status" % daemon.pid)}
        check("it runs as mxwarden (uid, gid)", ps["Uid"].split() == [str(pw.pw_uid)] * 4
              and ps["Gid"].split() == [str(pw.pw_gid)] * 4, (ps["Uid"], ps["Gid"]))
        check("with the group adm", str(grp.getgrnam("adm").gr_gid) in ps["Groups"].split(), ps["Groups"])
        check("with no capability at all", int(ps["CapBnd"], 16) == 0 and int(ps["CapEff"], 16) == 0,
              (ps["CapBnd"], ps["CapEff"]))
        check("with no new privileges", ps["NoNewPrivs"] == "1")

        st_, h, body = request(port, "GET", "/healthz")
        check("/healthz answers 200", st_ == 200, (st_, body[:200]))
        harvest = "".join(seq_line(i, ip="192.0.2.77") for i in range(12)) + disconnect_line("192.0.2.77", stamp(), 12)
        append(log, harvest)
        blocklist = os.path.join(STATE, "blocklist.txt")
        got = wait_for(lambda: any(e.startswith("192.0.2.77") for e in plain_entries(blocklist)), True, 30)
        check("the log readable only by adm is followed and the blocklist written", got,
              (plain_entries(blocklist), open(errpath).read()[-1500:]))
        if os.path.exists(blocklist):
            check("the blocklist belongs to mxwarden", mode_owner(blocklist)[1] == "mxwarden", mode_owner(blocklist))

        # the command line as root beside the daemon
        p = run(["/usr/sbin/mxwarden", "block", "203.0.113.0/24", "--for", "2h", "--reason", "package test", "-c", CONF])
        check("sudo mxwarden block: done as the database's owner, and said",
              p.returncode == 0 and "running as mxwarden" in p.stderr, p.stderr)
        got = wait_for(lambda: "203.0.113.0/24" in plain_entries(blocklist), True, 15)
        check("the daemon picks the manual block up", got, plain_entries(blocklist))
        p = run(["/usr/sbin/mxwarden", "allow", "203.0.113.0/24", "--for", "1h", "--reason", "package allow", "-c", CONF])
        check("sudo mxwarden allow: done as the database's owner, and said",
              p.returncode == 0 and "running as mxwarden" in p.stderr, p.stderr)
        got = wait_for(lambda: "203.0.113.0/24" in plain_entries(blocklist), False, 15)
        check("the daemon leaves the allowed prefix out of the blocklist", got is False, plain_entries(blocklist))
        p = run(["/usr/sbin/mxwarden", "unallow", "203.0.113.0/24", "--reason", "package unallow", "-c", CONF])
        check("sudo mxwarden unallow: done as the database's owner, and said",
              p.returncode == 0 and "running as mxwarden" in p.stderr, p.stderr)
        got = wait_for(lambda: "203.0.113.0/24" in plain_entries(blocklist), True, 15)
        check("the allow ended, the daemon blocks the prefix again", got, plain_entries(blocklist))
        rooted = [os.path.join(r, f) for r, ds, fs in os.walk(STATE) for f in fs + ds
                  if os.lstat(os.path.join(r, f)).st_uid == 0]
        check("no file in /var/lib/mxwarden belongs to root", not rooted, rooted)
        p = run(["/usr/sbin/mxwarden", "run", "-c", CONF], env=dict(os.environ, INVOCATION_ID="x"), timeout=30)
        check("run as root under systemd is refused", p.returncode == 1 and "refusing to run as root" in p.stderr
              and "--allow-root" in p.stderr, p.stderr)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            rc = daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            rc = daemon.wait()
        errf.close()
    check("SIGTERM stops it cleanly (exit 0)", rc == 0, rc)
    check("STOPPING=1 told", notified(lambda m: "STOPPING=1" in m, 2), msgs)
    err = open(errpath).read()
    lines = [l for l in err.splitlines() if l]
    check("stderr lines carry a syslog priority <N>", lines and all(re.match(r"^<[0-7]>", l) for l in lines),
          lines[:10])
    check("... and no time stamp or program name", not any(re.match(r"^<\d>(\d{4}-|\w{3} [ \d]\d |mxwarden:)", l)
                                                          for l in lines), lines[:5])
    check("... informational lines are <6>, warnings <4>", any(l.startswith("<6>running:") for l in lines), lines[:5])
    db = os.path.join(STATE, "mxwarden.db")
    check("the database is mxwarden's, 0640", os.path.exists(db) and mode_owner(db)[:2] == ("0o640", "mxwarden"),
          mode_owner(db) if os.path.exists(db) else None)
    nsock.close()
    shutil.rmtree(sockdir, ignore_errors=True)

    # a database of the release before this one: schema 8, without the
    # journal's cursors (8 -> 9) and the MX host tables (9 -> 10); the
    # upgrade must carry it forward
    ps = [as_mxwarden_sql(db, sql) for sql in
          ["DROP TABLE source_cursor"] +
          ["DROP TABLE " + t for t in ("hosts", "host_minute", "host_rollup_minute", "host_rollup_hour",
                                       "host_top_hour")] +
          ["DROP INDEX events_host", "PRAGMA user_version = 8"]]
    check("the database made schema 8 (as mxwarden)", all(p.returncode == 0 for p in ps),
          "".join(p.stderr for p in ps))

    # ------------------------------------------------- remove, reinstall, purge
    p = apt("remove", "mxwarden")
    check("apt-get remove", p.returncode == 0 and pkg_state() == "deinstall ok config-files", pkg_state())
    check("remove: the binary is gone", not os.path.exists("/usr/sbin/mxwarden"))
    check("remove keeps the configuration and the state", os.path.exists(CONF) and os.path.exists(db))
    p = apt("install", os.path.abspath(deb))
    check("install again (an upgrade)", p.returncode == 0 and pkg_state() == "install ok installed", p.stderr[-1000:])
    check("the edited configuration is kept", "follow = " + log in open(CONF).read())
    p = run(["/usr/sbin/mxwarden", "lookup", "203.0.113.9", "-c", CONF, "--json"])
    check("the database is kept: the manual block is found", p.returncode == 0 and "package test" in p.stdout,
          p.stdout[-500:] + p.stderr)
    p = run(["/usr/sbin/mxwarden", "allow", "198.51.100.0/24", "--for", "1h", "--reason", "after the upgrade",
             "-c", CONF])
    check("sudo mxwarden allow after the upgrade, as the owner", p.returncode == 0 and "running as mxwarden" in p.stderr,
          p.stderr)
    p = as_mxwarden_sql(db, "PRAGMA user_version")
    v = p.stdout.strip()
    p = as_mxwarden_sql(db, "SELECT count(*) FROM source_cursor")
    check("... which migrated the schema-8 database forward (source_cursor, 8 -> 9)",
          v.isdigit() and int(v) >= 10 and p.returncode == 0,
          (v, p.stderr))
    p = as_mxwarden_sql(db, "SELECT name, last_seen IS NULL FROM hosts")
    q = as_mxwarden_sql(db, "SELECT sum(n) FROM host_rollup_hour WHERE host = 'mx' AND kind = 'reject'")
    check("... and on (the MX host tables, 9 -> 10, rebuilt from the events: host mx, its 12 rejects)",
          p.returncode == 0 and p.stdout.split() == ["mx", "1"] and q.stdout.strip() == "12",
          (p.stdout, p.stderr, q.stdout, q.stderr))
    rooted = [os.path.join(r, f) for r, ds, fs in os.walk(STATE) for f in fs + ds
              if os.lstat(os.path.join(r, f)).st_uid == 0]
    check("still no file in /var/lib/mxwarden belongs to root", not rooted, rooted)
    p = apt("purge", "mxwarden")
    check("apt-get purge", p.returncode == 0 and pkg_state() == "", pkg_state())
    left = [x for x in ("/etc/mxwarden", STATE, WANTS, UNIT, "/usr/sbin/mxwarden",
                        "/usr/lib/sysusers.d/mxwarden.conf", "/usr/share/man/man8/mxwarden.8.gz") if os.path.lexists(x)]
    check("purge leaves nothing: /etc/mxwarden, /var/lib/mxwarden, the link, the files", not left, left)
    shutil.rmtree(logdir, ignore_errors=True)
    print("test_package: %.0f s" % (time.time() - t_start), flush=True)
    done()


main()
