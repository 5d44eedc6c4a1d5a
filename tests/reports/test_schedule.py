"""test_schedule.py - the library functions the engine's loop calls, driven
the way it calls them (tests/reports/reports_drive.c):

- the scheduled digest ([report] digest = 06:00, UTC; the clock set with
  MXWARDEN_NOW): the previous day's slot is written at start, nothing new
  before 06:00, the new one at 06:00 and not again; both files whole (text
  and a standalone HTML page), mode 0640; files older than [report] keep
  are removed and nothing else; mailed once to [report] mail_to through a
  local SMTP server;
- the notify command: one JSON document per decision on its stdin (each
  checked against the decisions table), ASCII JSON Lines; a decision
  upgraded twice before the next start is one document (coalesced 2), at
  most one start per interval, the breaker document escaped."""
import email, json, os, sqlite3, stat, subprocess, sys, tempfile, time
from email import policy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers

MXW = os.environ.get("MXWARDEN", "build/cli/mxwarden")
DRIVE = os.path.join(os.environ.get("MXW_BUILD", "build"), "tests", "reports", "reports_drive")
SHARED = os.environ.get("MXW_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
LOG = os.path.join(SHARED, "corpus", "real", "postfix-3.7-loopback.log")
failures = 0


def check(name, cond, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)[:1500]), flush=True)
    if not cond:
        failures += 1


d = tempfile.mkdtemp(prefix="mxw-sched-")
db = os.path.join(d, "r.db")
reports = os.path.join(d, "reports")
smtp = peers.SMTPServer()
conf = os.path.join(d, "c.ini")
with open(conf, "w") as f:
    f.write("[safety]\nprotected_networks = none\nmta_trusted = none\n"
            "[report]\ndigest = 06:00\ndir = %s\nkeep = 4d\nmail_to = postmaster@mx.example.org\n"
            "[abuse]\nreporter_org = Example Mail\nreporter_contact = abuse@mx.example.org\n"
            "reporter_domain = mx.example.org\nsmtp = 127.0.0.1:%d\n" % (reports, smtp.port))


def run(args, now):
    env = dict(os.environ, MXWARDEN_NOW=now)
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


p = run([MXW, "import", "-q", "-c", conf, "--db", db, LOG], "2026-11-27T20:40:00Z")
check("import the real capture", p.returncode == 0, p.stderr[-500:])

# old files of ours and files that are not
os.makedirs(reports)
for name in ("digest-20261120T060000Z.txt", "digest-20261120T060000Z.html", "digest-20261124T120000Z.txt",
             "notes.txt", "digest-latest.txt", "abuse-20261101T000000Z-x.eml"):
    with open(os.path.join(reports, name), "w") as f:
        f.write("x\n")


def ours():
    return sorted(n for n in os.listdir(reports) if n.startswith("digest-2026112") and ".tmp" not in n)


p = run([DRIVE, "digest", conf, db], "2026-11-28T05:59:00Z")
check("05:59: the driver ran", p.returncode == 0, p.stderr[-800:])
check("05:59: yesterday's slot written at start, old files pruned, others kept",
      ours() == ["digest-20261124T120000Z.txt", "digest-20261127T060000Z.html", "digest-20261127T060000Z.txt"]
      and {"notes.txt", "digest-latest.txt", "abuse-20261101T000000Z-x.eml"} <= set(os.listdir(reports)),
      sorted(os.listdir(reports)))
first = {n: os.stat(os.path.join(reports, n)).st_mtime_ns for n in ours()}
p = run([DRIVE, "digest", conf, db], "2026-11-28T05:59:50Z")
check("05:59:50: nothing new, nothing rewritten",
      p.returncode == 0 and {n: os.stat(os.path.join(reports, n)).st_mtime_ns for n in ours()} == first,
      (ours(), p.stderr[-300:]))
p = run([DRIVE, "digest", conf, db], "2026-11-28T06:00:00Z")
check("06:00: today's digest appears", p.returncode == 0 and "digest-20261128T060000Z.txt" in ours()
      and "digest-20261128T060000Z.html" in ours(), (ours(), p.stderr[-300:]))
p = run([DRIVE, "digest", conf, db], "2026-11-28T06:30:00Z")
check("06:30: not again", p.returncode == 0 and len(ours()) == 5, ours())
p = run([DRIVE, "digest", conf, db], "2026-11-28T07:00:00Z")
check("keep 4d: the 24th's file stays while younger than 4 days", "digest-20261124T120000Z.txt" in ours(), ours())
p = run([DRIVE, "digest", conf, db], "2026-11-29T06:00:01Z")
check("the next day: the 29th written, the 24th pruned",
      "digest-20261129T060000Z.txt" in ours() and "digest-20261124T120000Z.txt" not in ours(), ours())

txt = open(os.path.join(reports, "digest-20261128T060000Z.txt")).read()
html = open(os.path.join(reports, "digest-20261128T060000Z.html")).read()
con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
ndec = con.execute("select count(*) from decisions").fetchone()[0]
check("the digest covers the day before its slot", "Period 2026-11-27T06:00:00Z to 2026-11-28T06:00:00Z" in txt
      and "%d new (0 manual)" % ndec in txt, txt[:400])
check("the HTML is a whole page", html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>"), html[:80])
mode = stat.S_IMODE(os.stat(os.path.join(reports, "digest-20261128T060000Z.txt")).st_mode)
check("digest files are not readable by others", mode & 0o007 == 0, oct(mode))
check("[abuse] used: the digest lists what has no contact", "no contact known" in txt, txt[-600:])

digests = [(mf, rc, data) for mf, rc, data in smtp.messages]
check("each digest mailed once, to mail_to", len(digests) == 3 and
      all(rc == ["<postmaster@mx.example.org>"] and mf == "<abuse@mx.example.org>" for mf, rc, data in digests),
      [(mf, rc) for mf, rc, _ in digests])
m = email.message_from_bytes(digests[1][2], policy=policy.default) if len(digests) > 1 else None
check("the digest mail: multipart/alternative, text and HTML, no defects",
      m is not None and m.get_content_type() == "multipart/alternative" and not m.defects
      and [x.get_content_type() for x in m.iter_parts()] == ["text/plain", "text/html"]
      and "Period 2026-11-27T06:00:00Z" in list(m.iter_parts())[0].get_content(),
      m and [x.get_content_type() for x in m.iter_parts()])
outbox = con.execute("select kind, key, sent_at is not null from outbox order by id").fetchall()
check("the outbox records each digest mail as sent", outbox == [
    ("digest", "digest-20261127T060000Z", 1), ("digest", "digest-20261128T060000Z", 1),
    ("digest", "digest-20261129T060000Z", 1)], outbox)
smtp.close()

# ------------------------------------------------------------------ notify
record = os.path.join(d, "record.py")
runs = os.path.join(d, "runs.jsonl")
with open(record, "w") as f:
    f.write("import json, sys, time\n"
            "raw = sys.stdin.buffer.read()\n"
            "with open(sys.argv[1], 'a') as out:\n"
            "    out.write(json.dumps({'t': time.monotonic(), 'raw': raw.decode('latin-1')}) + '\\n')\n")
nconf = os.path.join(d, "n.ini")
with open(nconf, "w") as f:
    f.write("[notify]\ncommand = %s %s %s\ninterval = 2s\ntimeout = 10s\n" % (sys.executable, record, runs))
p = run([DRIVE, "notify", nconf, db], "2026-11-27T20:40:00Z")
check("notify: the driver ran", p.returncode == 0, p.stderr[-800:])
st = json.loads(p.stdout) if p.returncode == 0 else {}
rs = [json.loads(l) for l in open(runs)] if os.path.exists(runs) else []
check("notify: two starts, at least the interval apart", len(rs) == 2 and rs[1]["t"] - rs[0]["t"] >= 1.9
      and st.get("runs") == 2 and st.get("failed") == 0, (len(rs), st))
docs = []
ascii_lines = True
for r in rs:
    lines = r["raw"].split("\n")
    ascii_lines &= lines[-1] == "" and all(l.isascii() for l in lines)
    docs.append([json.loads(l) for l in lines[:-1]])
check("notify: JSON Lines, ASCII", ascii_lines and rs, "")
rows = con.execute("select id, prefix, scope, rule, response, reason, since, until, manual from decisions"
                   " order by since, id").fetchall()


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


first = docs[0] if docs else []
want = [{"event": "decision", "prefix": r[1], "scope": r[2], "rule": r[3], "response": r[4], "from": None,
         "reason": r[5], "since": iso(r[6]), "until": iso(r[7]), "manual": bool(r[8]), "coalesced": 1,
         "id": r[0]} for r in rows]
got = [{k: x.get(k) for k in want[0]} for x in first] if want else []
check("notify: one document per decision, as stored", got == want and len(want) > 50,
      [(a, b) for a, b in zip(got, want) if a != b][:2] or (len(got), len(want)))
check("notify: every decision document has its lookup URL and score",
      all(x["lookup"].startswith("http://127.0.0.1:8025/lookup/") and isinstance(x["score"], (int, float))
          and x["at"] == x["since"] for x in first), first[:1])
second = docs[1] if len(docs) > 1 else []
up = [x for x in second if x["event"] == "upgrade"]
br = [x for x in second if x["event"] == "breaker"]
check("notify: two upgrades before the next start are one document, coalesced 2",
      len(second) == 2 and len(up) == 1 and up[0]["prefix"] == st.get("first") and up[0]["coalesced"] == 2
      and up[0]["response"] == "drop" and up[0]["from"] == st.get("first_response"), second)
check("notify: the breaker document, its output name escaped",
      len(br) == 1 and br[0]["output"] == "fw\"<x>" and br[0]["entries"] == 120 and br[0]["change"] == 80, br)
con.close()

if not failures:
    import shutil
    shutil.rmtree(d, ignore_errors=True)
sys.exit(1 if failures else 0)
