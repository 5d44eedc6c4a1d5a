"""test_load.py - the root-run loader (`mxwarden load FILE`, the command of
mxwarden-load@.service) in a network namespace of its own, with the real
ipset and nft: a blocklist the daemon wrote is loaded and FILE.status says
ok; the daemon reads that status as the output's reload result (/metrics);
a file that names another set, or holds a command the format never
writes, is refused, loads nothing, and the status says failed with why; a
file no [output] writes, and a symbolic link, are refused."""
import os, re, shutil, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403


def status(path):
    try:
        return dict(l.split("=", 1) for l in open(path + ".status").read().splitlines() if "=" in l)
    except OSError:
        return {}


def main():
    for tool in ("ipset", "nft"):
        if not shutil.which(tool):
            skip(tool + " is not installed")
    private_net_ns()
    d = scratch("mxw-load-")
    db = os.path.join(d, "m.db")
    fw, nf = os.path.join(d, "fw.ipset"), os.path.join(d, "fw.nft")
    conf = os.path.join(d, "m.conf")
    with open(conf, "w") as f:
        f.write("[output fw]\nformat = ipset\npath = %s\nset = mxwtest\n\n"
                "[output nf]\nformat = nft\npath = %s\nset = mxwtest\n" % (fw, nf))
    p = run([MXW, "block", "203.0.113.0/24", "--for", "2h", "--reason", "load test", "--db", db, "-c", conf])
    check("block by hand", p.returncode == 0, p.stderr)
    dm = Daemon(db, conf=conf).start()
    try:
        check("the daemon writes the ipset file", wait_for(lambda: os.path.exists(fw), True, 15), dm.stderr())
        check("the daemon writes the nft file", wait_for(lambda: os.path.exists(nf), True, 15), dm.stderr())

        p = run([MXW, "load", "-c", conf, fw])
        check("load ipset: exit 0", p.returncode == 0, p.stderr)
        s = status(fw)
        check("load ipset: FILE.status says ok with the command", s.get("status") == "ok" and s.get("command") == "ipset restore", s)
        l = run(["ipset", "list", "mxwtest4"])
        check("the set is in the kernel with the entry", "203.0.113.0/24" in l.stdout, l.stdout + l.stderr)
        check("FILE.status is 0640", oct(os.stat(fw + ".status").st_mode & 0o777) == "0o640")
        series = 'mxwarden_output_reload_status{output="fw",status="ok"}'
        check("the daemon shows the loader's result as the output's reload status",
              wait_for(lambda: metric(dm.port, series), 1.0, 10) == 1.0, dm.stderr()[-2000:])

        p = run([MXW, "load", "-c", conf, nf])
        check("load nft: exit 0", p.returncode == 0, p.stderr)
        l = run(["nft", "list", "table", "inet", "mxwtest"])
        check("the nft table is in the kernel with the entry", "203.0.113.0/24" in l.stdout, l.stdout + l.stderr)

        # a file that names another set: refused, nothing loaded
        good = open(fw).read()
        with open(fw, "w") as f:
            f.write(good.replace("mxwtest4-new", "other4-new"))
        p = run([MXW, "load", "-c", conf, fw])
        s = status(fw)
        check("another set's name: refused (exit 1)", p.returncode == 1 and "other4-new" in p.stderr, p.stderr)
        check("... the status says failed and why", s.get("status") == "failed" and "not the configured set" in s.get("message", ""), s)
        check("... no set 'other4-new' was made", run(["ipset", "list", "other4-new"]).returncode != 0)
        check("the daemon shows the failure",
              wait_for(lambda: metric(dm.port, 'mxwarden_output_reload_status{output="fw",status="failed"}'), 1.0, 10) == 1.0)
        # a command the format never writes
        with open(fw, "w") as f:
            f.write(good + "flush mxwtest4\n")
        p = run([MXW, "load", "-c", conf, fw])
        check("a command the format never writes: refused", p.returncode == 1 and "refused" in p.stderr, p.stderr)
        l = run(["ipset", "list", "mxwtest4"])
        check("... the set still holds its entry", "203.0.113.0/24" in l.stdout)
        # a file no [output] writes; a symbolic link
        other = os.path.join(d, "other.ipset")
        shutil.copy(nf, other)
        p = run([MXW, "load", "-c", conf, other])
        check("a file no [output] writes: refused", p.returncode == 1 and "no [output]" in p.stderr, p.stderr)
        os.unlink(fw)
        os.symlink(other, fw)
        p = run([MXW, "load", "-c", conf, fw])
        check("a symbolic link: refused", p.returncode == 1 and "cannot open" in p.stderr, p.stderr)
    finally:
        dm.stop()
        run(["ipset", "destroy"])
        shutil.rmtree(d, ignore_errors=True)
    done()


main()
