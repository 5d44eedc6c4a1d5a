#!/usr/bin/env python3
"""test_rotation.py - `mxwarden run` follows a file through rotation in the
middle of a burst written by mkmaillog --follow: its own rename and
copytruncate rotations, and logrotate's create mode (the writer reopens on
SIGHUP, with and without immediate compression). The lines read must equal
the lines written, exactly. With logrotate's own copytruncate, lines written
inside logrotate's copy->truncate window may be lost by logrotate itself:
none may be counted twice, and the loss is measured and printed."""
import os, re, shutil, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403


def mkmaillog_follow(path, rate, lines, rotate_every=0, mode="rename"):
    args = [sys.executable, MKMAILLOG, "--follow", "--rate", str(rate), "--lines", str(lines), "-o", path,
            "--seed", "5", "--rotate-keep", "9"]
    if rotate_every:
        args += ["--rotate-every", str(rotate_every), "--rotate-mode", mode]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def written(proc):
    err = proc.stderr.read()
    proc.wait()
    m = re.search(r"mkmaillog: (\d+) lines", err)
    return int(m.group(1)) if m else -1, err


def run_case(name, mode, rate=4000, lines=14000):
    d = scratch()
    log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
    dm = Daemon(db, [log]).start()
    gen = mkmaillog_follow(log, rate, lines, rotate_every=1.0, mode=mode)
    n, err = written(gen)
    got = wait_for(lambda: lines_read(db, log), n, timeout=20)
    dm.stop()
    rot = len(re.findall(r"rotated", err))
    check("%s: %d rotations, lines read %s == lines written %d" % (name, rot, got, n), got == n and rot >= 2,
          dm.stderr()[-2000:])
    shutil.rmtree(d)


def logrotate_case(name, directives, rate=4000, lines=16000, rotations=3):
    d = scratch()
    log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
    conf, state = os.path.join(d, "lr.conf"), os.path.join(d, "lr.state")
    pidfile = os.path.join(d, "gen.pid")
    post = ""
    if "copytruncate" not in directives:
        post = "    postrotate\n        kill -HUP $(cat %s)\n    endscript\n" % pidfile
    with open(conf, "w") as f:
        f.write("%s {\n    rotate 9\n    missingok\n%s%s}\n" % (log, "".join("    %s\n" % x for x in directives), post))
    dm = Daemon(db, [log]).start()
    gen = mkmaillog_follow(log, rate, lines)
    with open(pidfile, "w") as f:
        f.write(str(gen.pid))
    for i in range(rotations):
        time.sleep(1.2)
        subprocess.run(["logrotate", "-f", "-s", state, conf], check=False, capture_output=True)
    n, _ = written(gen)
    # copytruncate may lose lines: wait for the count to settle instead of for n
    last, stable = -1, 0
    end = time.time() + 20
    while time.time() < end and stable < 10:
        got = lines_read(db, log)
        stable = stable + 1 if got == last else 0
        last = got
        if got == n:
            break
        time.sleep(0.2)
    dm.stop()
    got = lines_read(db, log)
    if "copytruncate" in directives:
        # what logrotate lost: lines in none of the files it left (the window between copy and truncate)
        on_disk = 0
        for fn in os.listdir(d):
            if fn.startswith("mail.log"):
                p = os.path.join(d, fn)
                if fn.endswith(".gz"):
                    on_disk += int(subprocess.run("zcat %s | wc -l" % p, shell=True, capture_output=True,
                                                  text=True).stdout)
                else:
                    with open(p, "rb") as f:
                        on_disk += f.read().count(b"\n")
        lost_by_logrotate = n - on_disk
        check("%s: no line counted twice (read %d <= written %d); lost %d, logrotate's window lost %d" %
              (name, got, n, n - got, lost_by_logrotate), got <= n and got >= on_disk, dm.stderr()[-2000:])
        print("measured: logrotate copytruncate: written %d, read %d, lost %d (%.3f%%); not in any file left "
              "by logrotate: %d" % (n, got, n - got, 100.0 * (n - got) / max(n, 1), lost_by_logrotate))
    else:
        check("%s: lines read %d == lines written %d" % (name, got, n), got == n, dm.stderr()[-2000:])
    shutil.rmtree(d)


run_case("mkmaillog rename rotation", "rename")
run_case("mkmaillog copytruncate", "copytruncate")
if shutil.which("logrotate"):
    logrotate_case("logrotate create + SIGHUP", ["create"])
    logrotate_case("logrotate create + compress (no delaycompress)", ["create", "compress"])
    logrotate_case("logrotate copytruncate", ["copytruncate"])
else:
    print("logrotate not installed: its cases are not run (scripts/install-deps test installs it)")
done()
