"""test_report.py - `mxwarden report digest|evidence` on a database made by
importing the real Postfix capture at a fixed clock: the digest's totals
equal the lifetime counters of `stats --json` (another path through the
database), its decisions equal the decisions table, an empty period is
empty; the evidence report holds exactly the stored lines of the network,
with our recipients' local parts and AUTH names redacted (and not with
--no-redact); attacker text is escaped in HTML; bad usage exits 2."""
import ipaddress, json, os, sqlite3, stat, subprocess, sys, tempfile

MXW = os.environ.get("MXWARDEN", "build/cli/mxwarden")
SHARED = os.environ.get("MXW_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
LOG = os.path.join(SHARED, "corpus", "real", "postfix-3.7-loopback.log")
NOW = "2026-11-27T20:40:00Z"
failures = 0


def check(name, cond, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)[:1500]), flush=True)
    if not cond:
        failures += 1


d = tempfile.mkdtemp(prefix="mxw-report-")
conf = os.path.join(d, "c.ini")
db = os.path.join(d, "r.db")
with open(conf, "w") as f:
    f.write("[safety]\nprotected_networks = none\n")
# one hostile line of our own: a HELO that is markup
hostile = os.path.join(d, "hostile.log")
with open(hostile, "w") as f:
    for i in range(3):
        f.write("Nov 27 20:30:0%d mx postfix/smtpd[9%d]: NOQUEUE: reject: RCPT from unknown[127.99.0.9]: 550 5.1.1 "
                "<victim%d@mx.example.test>: Recipient address rejected: User unknown in local recipient table; "
                "from=<x@spam.test> to=<victim%d@mx.example.test> proto=ESMTP helo=<<script>alert(1)</script>>\n"
                % (i, i, i, i))
env = dict(os.environ, MXWARDEN_NOW=NOW, MXWARDEN_NOW_FROZEN="1")


def mxw(*args, ok=0):
    p = subprocess.run([MXW] + list(args), env=env, capture_output=True, text=True, timeout=120)
    if ok is not None and p.returncode != ok:
        print("command %s exited %d: %s" % (args, p.returncode, p.stderr[-1500:]), flush=True)
    return p


mxw("import", "-q", "-c", conf, "--db", db, LOG, hostile)
stats = json.loads(mxw("stats", "-c", conf, "--db", db, "--json").stdout)
con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)

# -- digest over a period holding the whole log
p = mxw("report", "digest", "-c", conf, "--db", db, "--from", "2026-11-27T20:00:00Z", "--to", NOW,
        "--format", "json")
r = json.loads(p.stdout)
check("digest: type and period", r["type"] == "digest" and r["from"] == "2026-11-27T20:00:00Z"
      and r["to"] == NOW, (r.get("from"), r.get("to")))
kinds = {k: v for k, v in stats["events"].items() if v}
check("digest: events by kind equal the lifetime counters", r["totals"]["kinds"] == kinds,
      (r["totals"]["kinds"], kinds))
check("digest: total events", r["totals"]["events"] == sum(kinds.values()), r["totals"]["events"])
check("digest: nothing in the period before", r["previous"]["events"] == 0, r["previous"])
rules = dict(con.execute("select rule, count(*) from decisions group by rule").fetchall())
ndec = con.execute("select count(*) from decisions").fetchone()[0]
check("digest: new decisions equal the decisions table", r["decisions"]["new"] == ndec and ndec > 50,
      (r["decisions"]["new"], ndec))
check("digest: decisions by rule", r["decisions"]["by_rule"] == rules, (r["decisions"]["by_rule"], rules))
check("digest: in force now", r["active_now"] == ndec, r["active_now"])
tops = [x["prefix"] for x in r["top_ips"]]
worst = con.execute("select ip, count(*) n from events where ts >= 0 group by ip order by n desc, ip limit 1").fetchone()
check("digest: top sender is the one with most evidence rows", tops and tops[0] == worst[0], (tops[:3], worst))
check("digest: top connecting classes are counted", r["top_connecting_classes"]
      and r["top_connecting_classes"][0]["count"] > 100, r["top_connecting_classes"][:2])
# the text form carries the same numbers
t = mxw("report", "digest", "-c", conf, "--db", db, "--from", "2026-11-27T20:00:00Z", "--to", NOW).stdout
check("digest text: decisions line", "%d new (0 manual)" % ndec in t, t[:600])

# -- an empty period
r0 = json.loads(mxw("report", "digest", "-c", conf, "--db", db, "--from", "2026-11-26T00:00:00Z", "--to",
                    "2026-11-26T06:00:00Z", "--format", "json").stdout)
check("digest of an earlier period is empty", r0["totals"]["events"] == 0 and r0["decisions"]["new"] == 0,
      (r0["totals"], r0["decisions"]["new"]))
# -- a long period goes by hours and still counts everything
r7 = json.loads(mxw("report", "digest", "-c", conf, "--db", db, "--since", "90d", "--format", "json").stdout)
check("digest of 90 days (hourly rollups) counts the same events", r7["totals"]["kinds"] == kinds,
      r7["totals"]["kinds"])

# -- evidence report for a class
net = ipaddress.ip_network("127.40.0.0/24")
rows = [(ip, rc, u, raw) for ip, rc, u, raw in con.execute("select ip, rcpt_to, user, raw from events")
        if ip and ipaddress.ip_address(ip) in net]
e = json.loads(mxw("report", "evidence", "127.40.0.0/24", "-c", conf, "--db", db, "--lines", "1000",
                   "--format", "json").stdout)
check("evidence: every stored line of the network, no other", len(e["lines"]) == len(rows) == e["lines_total"]
      and all(any("[%s]" % a in l for a in ("127.40.0.1", "127.40.0.2")) for l in e["lines"]),
      (len(e["lines"]), len(rows), e["lines_total"]))
# (two members, both blocked on their own: a class needs several members)
check("evidence: decisions on the class's addresses",
      {x["prefix"] for x in e["decisions"]} >= {"127.40.0.1/32", "127.40.0.2/32"} and all(
          ipaddress.ip_network(x["prefix"]).overlaps(net) for x in e["decisions"]), e["decisions"])
rcpts = {rc for _, rc, _, _ in rows if rc and "@" in rc}  # our users (the sender's from= stays)
check("evidence: recipients' local parts are redacted, their domains kept",
      rcpts and not any(rc in l for l in e["lines"] for rc in rcpts)
      and "[redacted]@mx.example.test" in "".join(e["lines"]), sorted(rcpts)[:5])
raw = json.loads(mxw("report", "evidence", "127.40.0.0/24", "-c", conf, "--db", db, "--lines", "1000",
                     "--no-redact", "--format", "json").stdout)
check("evidence --no-redact keeps the stored lines byte for byte",
      sorted(raw["lines"]) == sorted(r_[3].decode() for r_ in rows), "differs")
e5 = json.loads(mxw("report", "evidence", "127.40.0.0/24", "-c", conf, "--db", db, "--lines", "5",
                    "--no-redact", "--format", "json").stdout)
check("evidence --lines 5 keeps the 5 newest, oldest first", e5["lines"] == raw["lines"][-5:], e5["lines"])
auth = json.loads(mxw("report", "evidence", "127.77.0.2", "-c", conf, "--db", db, "--format", "json").stdout)
users = {u for ip, _, u, _ in con.execute("select ip, rcpt_to, user, raw from events where ip = '127.77.0.2'")
         if u and len(u) >= 3}
check("evidence: AUTH user names are redacted", auth["lines"] and users
      and not any(u in l for l in auth["lines"] for u in users), (sorted(users)[:5], auth["lines"][:2]))

# -- HTML escapes attacker text and loads nothing
out = os.path.join(d, "r.html")
p = mxw("report", "evidence", "127.99.0.9", "-c", conf, "--db", db, "--format", "html", "-o", out)
h = open(out).read()
check("html: the HELO markup is escaped", "<script" not in h and "&lt;script&gt;alert(1)&lt;/script&gt;" in h,
      h[-600:])
check("html: no external resource", "http://" not in h and "https://" not in h and "src=" not in h, "")
check("html: -o writes a file not readable by others", stat.S_IMODE(os.stat(out).st_mode) & 0o007 == 0,
      oct(os.stat(out).st_mode))
hd = mxw("report", "digest", "-c", conf, "--db", db, "--since", "1d", "--format", "html").stdout
check("html digest: a whole page", hd.startswith("<!DOCTYPE html>") and hd.rstrip().endswith("</html>"), hd[:80])

# -- the same reports through the web API of `mxwarden run` on that database
import http.client, re, time
dm = subprocess.Popen([MXW, "run", "-c", conf, "--db", db, "--listen", "127.0.0.1:0", "--follow",
                       os.path.join(d, "none.log")], env=env, stderr=subprocess.PIPE, text=True)
port = None
t0 = time.time()
while port is None and time.time() - t0 < 60:
    line = dm.stderr.readline()
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
    if m:
        port = int(m.group(1))
    if not line and dm.poll() is not None:
        break


def get(path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    resp = c.getresponse()
    return resp.status, resp.getheader("content-type"), resp.read()


try:
    check("web: the daemon is up", port is not None, "no port")
    st, ct, body = get("/api/v1/report/digest?top=20&from=2026-11-27T20:00:00Z&to=" + NOW)
    w = json.loads(body) if st == 200 else {}
    diff = [k for k in set(w) | set(r) if k != "generated" and w.get(k) != r.get(k)]
    check("web digest: the CLI's answer", st == 200 and ct == "application/json" and not diff,
          (st, ct, diff, body[:200]))
    st, ct, body = get("/api/v1/report/evidence?prefix=127.99.0.9&format=html")
    check("web evidence html: escaped, as text/html", st == 200 and ct.startswith("text/html")
          and b"<script" not in body and b"&lt;script&gt;" in body, (st, ct, body[:200]))
    st, ct, body = get("/api/v1/report/evidence?prefix=127.40.0.0/24&format=json&lines=1000")
    we = json.loads(body) if st == 200 else {}
    check("web evidence: the CLI's lines, redacted", st == 200 and we.get("lines") == e["lines"], (st, body[:200]))
    for path in ("/api/v1/report/evidence?prefix=nope", "/api/v1/report/digest?since=1d&from=0",
                 "/api/v1/report/digest?format=pdf", "/api/v1/report/evidence?prefix=127.0.0.1&lines=0",
                 "/api/v1/report/digest?color=red"):
        st, ct, body = get(path)
        check("web: %s is a 400 JSON error" % path[15:], st == 400 and body[:1] == b"{", (st, body[:120]))
    st, ct, body = get("/api/v1/report/weekly")
    check("web: an unknown report is 404 JSON", st == 404 and body[:1] == b"{", (st, body[:120]))
finally:
    dm.terminate()
    dm.wait(timeout=30)

# -- usage errors
for args in (["report"], ["report", "weekly"], ["report", "evidence", "not-an-ip"], ["report", "digest", "x"],
             ["report", "digest", "--format", "xml"], ["report", "digest", "--since", "1d", "--from", NOW],
             ["report", "digest", "--to", NOW], ["report", "evidence", "127.0.0.1", "--lines", "0"]):
    p = mxw(*args, "--db", db, ok=None)
    check("usage error: %s exits 2 with a message" % " ".join(args[1:]), p.returncode == 2 and p.stderr,
          (p.returncode, p.stderr))
p = mxw("report", "digest", "--db", os.path.join(d, "missing", "x.db"), ok=None)
check("a missing database: exit 1 with a message", p.returncode == 1 and "mxwarden report" in p.stderr,
      (p.returncode, p.stderr))
sys.exit(1 if failures else 0)
