"""test_valgrind.py - RELIABILITY.md 36: memcheck over the one-shot commands
on the 20k-line corpora: `parse` (Postfix, Exim, Sendmail), `import` into a
new database, a second `import` (nothing new), `stats`, `lookup`, `export`.
Pass: each exits 0, no memcheck error and no "definitely lost" block.
Skipped without valgrind or on a sanitizer build."""
import os, shutil, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

if not shutil.which("valgrind"):
    skip("valgrind is not installed (scripts/install-deps test)")
if sanitized():
    skip("the binary is built with ASan; valgrind needs the plain build")
gen = os.path.join(SHARED, "corpus", "generated")
pf = os.path.join(gen, "postfix-rfc3164-20k.log")
if not os.path.exists(pf):
    skip("corpus missing: " + pf)
d = scratch()
db = os.path.join(d, "m.db")
VG = ["valgrind", "--tool=memcheck", "--leak-check=full", "--errors-for-leak-kinds=definite",
      "--error-exitcode=99", "--track-fds=no", "--num-callers=30"]
runs = [
    ("parse postfix", ["parse", "--quiet", "--stats", pf]),
    ("parse exim", ["parse", "--quiet", "--stats", os.path.join(gen, "exim-20k.log")]),
    ("parse sendmail", ["parse", "--quiet", "--stats", os.path.join(gen, "sendmail-10k.log")]),
    ("import", ["import", "-q", "--db", db, pf]),
    ("import again", ["import", "-q", "--db", db, pf]),
    ("stats", ["stats", "--db", db, "--json"]),
    ("lookup", ["lookup", "198.51.100.7", "--db", db, "--json"]),
    ("export json", ["export", "--format", "json", "--db", db, "-o", os.path.join(d, "out.json")]),
    ("export nft", ["export", "--format", "nft", "--db", db, "-o", os.path.join(d, "out.nft")]),
]
for name, args in runs:
    t = time.time()
    r = run(VG + [MXW] + args, timeout=600)
    el = time.time() - t
    err = r.stderr
    m = re.search(r"ERROR SUMMARY: (\d+) errors", err)
    lost = re.search(r"definitely lost: ([\d,]+) bytes", err)
    summary = (m.group(0) if m else "no summary") + "; " + (lost.group(0) if lost else "definitely lost: 0")
    print("%-14s %5.1f s  exit %d  %s" % (name, el, r.returncode, summary), flush=True)
    check("valgrind %s: exit 0, no memcheck error, nothing definitely lost" % name,
          r.returncode == 0 and m and m.group(1) == "0" and (not lost or lost.group(1) == "0"),
          "\n".join([l for l in err.splitlines() if l.startswith("==")][-40:]))

# the daemon: follow a file, answer a few API requests, stop on SIGTERM
log = os.path.join(d, "mail.log")
append(log, seq_lines(0, 200), "w")
vlog = os.path.join(d, "run.valgrind")
dm = Daemon(os.path.join(d, "run.db"), follow=[log], prefix=VG + ["--log-file=" + vlog]).start()
check("valgrind run: the daemon starts and serves", dm.port is not None, dm.stderr()[-600:])
if dm.port:
    append(log, seq_lines(200, 400))
    got = wait_for(lambda: len(seq_counts(dm.db)), 400, 60, 0.5)
    check("valgrind run: 400 lines stored", got == 400, got)
    for path in ("/api/v1/summary", "/metrics", "/api/v1/blocks", "/api/v1/lookup/198.51.100.7",
                 "/api/v1/blocklist?format=nft", "/healthz", "/../../etc/passwd", "/api/v1/top?limit=0"):
        st, h, body = dm.http("GET", path, timeout=60)
        check("valgrind run: GET %s answered" % path, st is not None and st < 500, (st, body[:200]))
rc = dm.stop(timeout=120)
with open(vlog, errors="replace") as f:
    err = f.read()
m = re.search(r"ERROR SUMMARY: (\d+) errors", err)
lost = re.search(r"definitely lost: ([\d,]+) bytes", err)
print("run: exit %s, %s; %s" % (rc, m and m.group(0), lost and lost.group(0)), flush=True)
check("valgrind run: exit 0, no memcheck error, nothing definitely lost",
      rc == 0 and m and m.group(1) == "0" and (not lost or lost.group(1) == "0"),
      "\n".join([l for l in err.splitlines() if l.startswith("==")][-60:]))
done()
