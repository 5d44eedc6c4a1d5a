#!/usr/bin/env python3
"""test_operator.py - what an operator and a support person meet on the
command line (issue 16), each with its message:

  - `lookup` of every input form (ip, prefix, ip:port, [v6], name[ip], an
    e-mail address, a sender domain, --id N) and every state (blocked,
    partly_blocked, decided_not_enforced, allowed, clean, never_seen);
  - `decisions` (table with headings, --json, filters) and `allow` /
    `unallow` (the blocklists leave an allowed prefix out, `block` refuses
    it);
  - the mistakes: --for without a unit, a second block of a prefix,
    check-config's single pass (time zone, token file, score order, a
    relative output path, a missing followed file, a misspelt key, a
    loopback lookup_url), 300.1.2.3, a directory as the database, a binary
    file imported, a relative --db, the database size with the WAL apart;
  - no URL in blocklists without [web] lookup_url, and a class's URL with
    its length;
  - the reports: the spammer's own sender is not redacted, no epoch date,
    the digest's tables with headings and columns that fit IPv6;
  - `run` warns at start and on SIGHUP when decisions reach no output.
The clock is fixed (MXWARDEN_NOW)."""
import json, os, re, signal, sqlite3, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

NOW = "2026-11-27T21:00:00Z"

d = tempfile.mkdtemp(prefix="mxw-operator-")
env = dict(os.environ, MXWARDEN_NOW=NOW, MXWARDEN_NOW_FROZEN="1", TZ="UTC")


def mxw(*args, cwd=None, conf=True):
    a = [MXW] + list(args)
    return subprocess.run(a, env=env, capture_output=True, text=True, timeout=120, cwd=cwd or d)


def js(p):
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"error": p.stderr[-600:], "rc": p.returncode}


# ------------------------------------------------------------------ the log
HARV, V6, SPAM, CLEAN = "203.0.113.77", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1234", "198.51.100.50", "192.0.2.10"
lines = []
pid = 900


def conn(ip, t, rcpts, sender, host="unknown"):
    global pid
    pid += 1
    lines.append(f"Nov 27 20:{t:02d}:00 mx postfix/smtpd[{pid}]: connect from {host}[{ip}]")
    for r in rcpts:
        lines.append(f"Nov 27 20:{t:02d}:01 mx postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from {host}[{ip}]: 550 5.1.1 "
                     f"<{r}>: Recipient address rejected: User unknown in local recipient table; "
                     f"from=<{sender}> to=<{r}> proto=ESMTP helo=<h.example>")
    lines.append(f"Nov 27 20:{t:02d}:02 mx postfix/smtpd[{pid}]: disconnect from {host}[{ip}] ehlo=1 mail=1 "
                 f"rcpt=0/{len(rcpts)} quit=1 commands=3/{len(rcpts) + 3}")


for c in range(2):
    conn(HARV, 10 + c, [f"user{c}{k}@mx.example.test" for k in range(8)], "x@harvest.example")
    conn(V6, 12 + c, [f"v{c}{k}@mx.example.test" for k in range(8)], "y@v6.example")
    conn(SPAM, 14 + c, ["info@mx.example.test"] + [f"s{c}{k}@mx.example.test" for k in range(7)], "info@spam.example")
for c in range(5):
    pid += 1
    lines.append(f"Nov 27 20:{20 + c:02d}:00 mx postfix/smtpd[{pid}]: connect from mail.good.example[{CLEAN}]")
    lines.append(f"Nov 27 20:{20 + c:02d}:01 mx postfix/smtpd[{pid}]: 4F00A10{c:02d}: client=mail.good.example[{CLEAN}]")
    lines.append(f"Nov 27 20:{20 + c:02d}:02 mx postfix/smtpd[{pid}]: disconnect from mail.good.example[{CLEAN}] ehlo=1 "
                 "mail=1 rcpt=1 data=1 quit=1 commands=5")
log = os.path.join(d, "mail.log")
with open(log, "w") as f:
    f.write("\n".join(lines) + "\n")
db = os.path.join(d, "m.db")
bl = os.path.join(d, "blocklist.txt")
conf = os.path.join(d, "c.ini")
with open(conf, "w") as f:
    f.write(f"[storage]\ndb = {db}\n\n[output fw]\nformat = plain\npath = {bl}\n")
noout = os.path.join(d, "noout.ini")
with open(noout, "w") as f:
    f.write(f"[storage]\ndb = {db}\n")
r = mxw("import", "-q", "-c", conf, log)
check("import of the handmade log", r.returncode == 0, r.stderr[-800:])
r = mxw("export", "-c", conf, "--format", "plain", "-o", bl)  # what `run` would write
check("export -o writes the output's file", r.returncode == 0 and HARV + "/32" in open(bl).read(), r.stderr)

# ------------------------------------------------------------------ lookup: every input form
forms = {HARV: HARV + "/32", HARV + ":25": HARV + "/32", f"unknown[{HARV}]": HARV + "/32",
         f"mail.example.net[{HARV}]:25": HARV + "/32", f"[{V6}]": V6 + "/128", f"[{V6}]:587": V6 + "/128",
         f"  {HARV}  ": HARV + "/32"}
for q, want in forms.items():
    o = js(mxw("lookup", "-c", conf, "--json", q))
    check(f"lookup {q!r}: read as {want}, blocked (enforced by fw)", o.get("prefix") == want
          and o.get("state") == "blocked" and o.get("enforced_by") == ["fw"], {k: o.get(k) for k in
                                                                                ("prefix", "state", "error")})
r = mxw("lookup", "-c", conf, HARV + ":25")
check("lookup text: the state, the sentence, the output that holds it", "state:    blocked" in r.stdout
      and "enforced by fw" in r.stdout and "holds 203.0.113.77/32" in r.stdout, r.stdout[:800])
o = js(mxw("lookup", "-c", conf, "--json", "info@spam.example"))
check("lookup of an e-mail address (CLI): the client that used it, with its state",
      o.get("kind") == "email" and [s["ip"] for s in o.get("senders", [])] == [SPAM]
      and o["senders"][0]["role"] == "sender" and o["senders"][0]["state"] in ("blocked", "decided_not_enforced"), o)
o = js(mxw("lookup", "-c", conf, "--json", "<info@mx.example.test>"))
check("lookup of our recipient's address: the client that wrote to it", o.get("kind") == "email"
      and any(s["ip"] == SPAM and s["role"] == "recipient" for s in o.get("senders", [])), o)
o = js(mxw("lookup", "-c", conf, "--json", "spam.example"))
check("lookup of a sender domain (CLI)", o.get("kind") == "domain" and [s["ip"] for s in o.get("senders", [])] == [SPAM], o)
r = mxw("lookup", "-c", conf, "harvest.example")
check("lookup of a domain, text: a table of clients", "CLIENT" in r.stdout and HARV in r.stdout, r.stdout)
dec = js(mxw("decisions", "-c", conf, "--json", "--rule", "harvest"))
hid = [x["id"] for x in dec if x["prefix"] == HARV + "/32"] if isinstance(dec, list) else []
check("decisions --rule harvest: the harvester's decision", len(hid) == 1, dec)
if hid:
    o = js(mxw("lookup", "-c", conf, "--json", "--id", str(hid[0])))
    check("lookup --id N: that decision in full, with its prefix's state", o.get("requested", {}).get("id") == hid[0]
          and o.get("prefix") == HARV + "/32" and o.get("state") == "blocked", o)
for q, why in (("300.1.2.3", "300 is more than 255"), ("300.1.2.3:25", "300 is more than 255"),
               ("1.2.3", "four numbers"), ("198.51.100.0/33", "0 to 32"), ("unknown[300.1.2.3]", "300 is more than 255"),
               ("not an address", "not an address, a prefix, an e-mail address or a domain")):
    r = mxw("lookup", "-c", conf, q)
    check(f"lookup {q!r}: refused (2), saying what is wrong", r.returncode == 2 and why in r.stderr
          and "host bits" not in r.stderr, r.stderr)
r = mxw("block", "300.1.2.3", "--for", "1d", "--reason", "x", "-c", conf)
check("block 300.1.2.3: the mistake in words, not 'host bits'", r.returncode == 2 and "300 is more than 255" in r.stderr
      and "host bits" not in r.stderr, r.stderr)
r = mxw("block", "198.51.100.7/24", "--for", "1d", "--reason", "x", "-c", conf)
check("block 198.51.100.7/24: the host bits, with the network meant", r.returncode == 2
      and "the network is 198.51.100.0/24" in r.stderr, r.stderr)

# ------------------------------------------------------------------ lookup: every state
o = js(mxw("lookup", "-c", conf, "--json", "203.0.113.0/24"))
check("a prefix with a blocked address inside: partly_blocked", o.get("state") == "partly_blocked"
      and any(x["prefix"] == HARV + "/32" for x in o.get("inside", [])) and o.get("blocked") is False, o)
o = js(mxw("lookup", "-c", conf, "--json", CLEAN))
check("a sender that delivered: clean, 'seen 5 connections, 5 messages delivered, 0 refused'",
      o.get("state") == "clean" and "seen 5 connections, 5 messages delivered, 0 refused" in o.get("summary", "")
      and o.get("seen", {}).get("delivered") == 5, o)
o = js(mxw("lookup", "-c", conf, "--json", "192.0.2.99"))
check("an address never seen: never_seen", o.get("state") == "never_seen" and o.get("blocked") is False, o)
o = js(mxw("lookup", "-c", noout, "--json", HARV))
check("no [output]: decided_not_enforced (no_output)", o.get("state") == "decided_not_enforced"
      and o.get("not_enforced", {}).get("reason") == "no_output" and o.get("state_reason") == "no output"
      and o.get("blocked") is False, {k: o.get(k) for k in ("state", "not_enforced", "state_reason")})
drop = os.path.join(d, "drop.ini")
with open(drop, "w") as f:
    f.write(f"[storage]\ndb = {db}\n\n[output fw]\nformat = plain\npath = {bl}.drop\nmin_response = drop\n")
o = js(mxw("lookup", "-c", drop, "--json", V6))
check("a response below min_response: decided_not_enforced (min_response, with the output)",
      o.get("state") == "decided_not_enforced" and o.get("not_enforced", {}).get("reason") == "min_response"
      and "below its min_response drop" in o.get("summary", ""), o.get("summary"))

# ------------------------------------------------------------------ block twice, allow, unallow
r = mxw("block", "192.0.2.66", "--for", "2", "--reason", "x", "-c", conf)
check("block --for 2: refused, a duration needs a unit", r.returncode == 2 and "has no unit" in r.stderr
      and "2h" in r.stderr, r.stderr)
r1 = mxw("block", "192.0.2.66", "--for", "2h", "--reason", "first report", "-c", conf)
r2 = mxw("block", "192.0.2.66", "--for", "1d", "--reason", "second report", "-c", conf)
dd = [x for x in js(mxw("decisions", "-c", conf, "--json", "--manual")) if x["prefix"] == "192.0.2.66/32"]
check("block twice: one decision, made longer, and it says so", r1.returncode == 0 and r2.returncode == 0
      and "no second decision" in r2.stdout and len(dd) == 1 and dd[0]["until"] == "2026-11-28T21:00:00Z"
      and dd[0]["reason"] == "second report" and dd[0]["by"].startswith("cli:"), (r2.stdout, dd))
o = js(mxw("lookup", "-c", conf, "--json", "192.0.2.66"))
check("a decision the file does not hold yet: decided_not_enforced (not_written)",
      o.get("state") == "decided_not_enforced" and o.get("not_enforced", {}).get("reason") == "not_written"
      and "mxwarden run" in o.get("summary", ""), o.get("summary"))
r = mxw("allow", HARV, "--for", "1d", "--reason", "customer fixed it", "-c", conf)
check("allow: done, says the decision in force is left out", r.returncode == 0 and "allowed 203.0.113.77/32" in r.stdout
      and "leave it out" in r.stdout, r.stdout + r.stderr)
r = mxw("allow", HARV, "--for", "2d", "--reason", "again", "-c", conf)
check("allow twice: the allow lasts longer", r.returncode == 0 and "allowed by hand already" in r.stdout, r.stdout)
o = js(mxw("lookup", "-c", conf, "--json", HARV))
check("allowed, but the file still holds it (no daemon rewrote it): still blocked, truthfully",
      o.get("state") == "blocked", o.get("state"))
mxw("export", "-c", conf, "--format", "plain", "-o", bl)  # what `run` does within a second
o = js(mxw("lookup", "-c", conf, "--json", HARV))
check("an allowed address with a decision in force: allowed (by hand), who and why",
      o.get("state") == "allowed" and o.get("state_reason") == "allowed by hand"
      and o.get("allows", [{}])[0].get("reason") == "again", o)
r = mxw("export", "-c", conf, "--format", "plain")
check("export: an allowed prefix is left out", r.returncode == 0 and HARV not in r.stdout
      and "192.0.2.66/32" in r.stdout, r.stdout)
r = mxw("block", HARV, "--for", "1d", "--reason", "x", "-c", conf)
check("block of an allowed prefix: refused, with who allowed it", r.returncode == 1
      and "allowed by hand" in r.stderr and "unallow" in r.stderr, r.stderr)
t = mxw("decisions", "-c", conf)
head = t.stdout.splitlines()[0].split() if t.stdout else []
check("decisions: a table with headings", head == ["ID", "PREFIX", "SCOPE", "RULE", "RESPONSE", "SINCE", "UNTIL", "BY",
                                                    "EVENTS", "REASON"], t.stdout[:400])
check("decisions: the allow is listed (A1, response allow)", re.search(r"^A1 +203\.0\.113\.77/32 +ip +manual +allow", t.stdout,
                                                                       re.M) is not None, t.stdout)
rows = js(mxw("decisions", "-c", conf, "--json", "--since", "7d"))
keys = {"id", "prefix", "scope", "rule", "response", "since", "until", "ended_at", "by", "events", "reason"}
check("decisions --json: objects with the documented keys", isinstance(rows, list) and rows
      and all(keys <= set(x) for x in rows), rows[:1] if isinstance(rows, list) else rows)
check("decisions --json: the harvest decision counts its evidence events", any(x["rule"] == "harvest" and x["events"] == 8
                                                                              for x in rows), rows)
cls = js(mxw("decisions", "-c", conf, "--json", "--since", "7d", "--scope", "class"))
check("decisions --scope class: none here", cls == [], cls)
r = mxw("decisions", "-c", conf, "--since", "7")
check("decisions --since 7: a unit is needed", r.returncode == 2 and "has no unit" in r.stderr, r.stderr)
r = mxw("unallow", HARV, "--reason", "done", "-c", conf)
o = js(mxw("lookup", "-c", conf, "--json", HARV))
check("unallow: the allow ends, the decision is enforceable again", r.returncode == 0 and "ended 1 allow" in r.stdout,
      r.stdout)
check("after unallow: decided_not_enforced until the daemon writes it", o.get("state") in ("blocked", "decided_not_enforced")
      and o.get("state") != "allowed", o.get("state"))
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
acts = [a for (a,) in con.execute("SELECT action FROM audit ORDER BY id")]
check("audit: block, block again, allow, allow again, unallow", acts == ["block", "block again", "allow", "allow again",
                                                                        "unallow"], acts)

# ------------------------------------------------------------------ no loopback URL leaves the host
for fmt in ("postfix", "rbldnsd", "ipset", "nft", "json", "iptables"):
    r = mxw("export", "-c", conf, "--format", fmt)
    check(f"export {fmt} without [web] lookup_url: no URL, no loopback address", r.returncode == 0
          and "http" not in r.stdout and "127.0.0.1" not in r.stdout, r.stdout[:400])
mxw("block", "198.51.100.0/24", "--for", "1d", "--reason", "a class by hand", "-c", conf)
url = os.path.join(d, "url.ini")
with open(url, "w") as f:
    f.write(f"[storage]\ndb = {db}\n\n[web]\nlookup_url = https://pm.example/lookup/$ip\n")
r = mxw("export", "-c", url, "--format", "postfix")
check("with lookup_url: the URL, and a class's URL keeps its length",
      "see https://pm.example/lookup/198.51.100.0/24" in r.stdout and "see https://pm.example/lookup/192.0.2.66\n" in r.stdout,
      r.stdout)

# ------------------------------------------------------------------ check-config in one pass
bad = os.path.join(d, "bad.ini")
with open(bad, "w") as f:
    f.write("[collector]\ntimezone = Mars/Olympus\nfollow = /nonexistent/mail.log\n\n[rules]\nharvest_distnct = 5\n"
            "score_reject = 5\nscore_drop = 4\n\n[output fw]\nformat = plain\npath = relative/list.txt\n\n"
            "[web]\ntoken_file = /nonexistent/token\nlookup_url = http://127.0.0.1:8025/lookup/$ip\n")
r = mxw("check-config", "-c", bad)
e = r.stderr
for what, text in (("the time zone", "unknown time zone 'Mars/Olympus'"),
                   ("the misspelt key, with the nearest", "did you mean 'harvest_distinct'"),
                   ("the score order", "score_reject (5) is above score_drop (4)"),
                   ("a relative output path", "path 'relative/list.txt' is relative"),
                   ("a token file that cannot be read", "token_file: /nonexistent/token: No such file"),
                   ("a missing followed file (a warning)", "warning: [collector] follow: /nonexistent/mail.log matches no file"),
                   ("a loopback lookup_url (a warning)", "warning: [web] lookup_url names a loopback address"),
                   ("the count", "5 errors in " + bad)):
    check(f"check-config, one pass: {what}", text in e, e)
check("check-config: exit 1", r.returncode == 1, r.returncode)
r = mxw("check-config", "-c", noout)
check("check-config: no [output] is a warning, not an error", r.returncode == 0 and
      "warning: no [output] is configured" in r.stderr, r.stderr)
r = mxw("check-config", "-v")
check("the default database is an absolute path", "db = /var/lib/mxwarden/mxwarden.db" in r.stdout, r.stdout[:300])

# ------------------------------------------------------------------ files and the database
os.mkdir(os.path.join(d, "adir"))
r = mxw("stats", "--db", os.path.join(d, "adir"))
check("a directory as the database: said so", r.returncode == 1 and "is a directory" in r.stderr, r.stderr)
r = mxw("import", "-q", "--db", os.path.join(d, "adir"), log)
check("import into a directory: said so", r.returncode == 1 and "is a directory" in r.stderr, r.stderr[-300:])
binf = os.path.join(d, "binary.log")
with open(binf, "wb") as f:
    f.write(bytes(range(256)) * 200)
r = mxw("import", "-q", "--db", os.path.join(d, "b.db"), binf)
check("importing a binary file: exit 1, 'not a mail log (0 of N lines understood)'", r.returncode == 1
      and re.search(r"not a mail log \(0 of \d+ lines understood", r.stderr) is not None, r.stderr[-400:])
r = mxw("import", "-q", "--db", os.path.join(d, "b.db"), d)
check("importing a directory: said so", r.returncode == 1 and "is a directory" in r.stderr, r.stderr[-300:])
sub = os.path.join(d, "elsewhere")
os.mkdir(sub)
r = mxw("stats", "--db", "rel.db", cwd=sub)
check("a relative --db: the message names the absolute path", r.returncode == 1 and os.path.join(sub, "rel.db") in r.stderr,
      r.stderr)
r = mxw("stats", "-c", conf)
m = re.search(r"database size: +([0-9.]+ (KiB|MiB)) \((\d+) bytes\), and (\d+ bytes|[0-9.]+ (KiB|MiB) \(\d+ bytes\)) of "
              r"write-ahead log", r.stdout)
check("stats: the size in human units, the WAL apart", m is not None, r.stdout[:400])
st = js(mxw("stats", "-c", conf, "--json"))
check("stats --json: file and WAL apart, adding up", st.get("db_file_bytes", 0) > 0 and "wal_bytes" in st
      and st["db_bytes"] == st["db_file_bytes"] + st["wal_bytes"], {k: st.get(k) for k in ("db_bytes", "db_file_bytes",
                                                                                              "wal_bytes")})

# ------------------------------------------------------------------ reports
e = js(mxw("report", "evidence", SPAM, "-c", conf, "--format", "json"))
joined = "\n".join(e.get("lines", []))
check("evidence: the spammer's own sender is not redacted", "from=<info@spam.example>" in joined, joined[:600])
check("evidence: our recipient with the same local part is", "to=<[redacted]@mx.example.test>" in joined
      and "info@mx.example.test" not in joined, joined[:600])
since = e.get("activity", {}).get("since")
check("evidence: no 1970 date ('since' is the first event)", since and not since.startswith("1970"), since)
h = mxw("report", "evidence", SPAM, "-c", conf, "--format", "html").stdout
check("evidence html: log lines wrap (pre-wrap)", "white-space:pre-wrap" in h, h[:600])
t = mxw("report", "digest", "-c", conf, "--since", "1d").stdout
blocks = re.findall(r"\n(  sender +events +categories\n  -+ +-+ +-+\n(?:  .*\n)+)", t)
check("digest text: the top tables have headings and a rule", len(blocks) >= 2, t)
ok = True
for b in blocks:
    rows_ = b.splitlines()
    col = rows_[0].index("events")
    for row in rows_[2:]:
        f_ = row[2:].split()
        ok &= len(row) > col and row[col - 2:col] == "  " and row[col] != " " and f_[1].isdigit()
check("digest text: an IPv6 address never runs into the next column", ok and V6 in t, blocks[:1])
dec_head = re.search(r"\n  prefix +rule +response +since +until +why\n", t)
check("digest text: the decisions table has headings", dec_head is not None, t[:1500])


# ------------------------------------------------------------------ --help explains every flag
SRC = os.environ.get("MXW_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
for cmd, src in (("check-config", "cmd_check_config"), ("parse", "cmd_parse"), ("stats", "cmd_stats"),
                 ("run", "cmd_run"), ("import", "cmd_import"), ("lookup", "cmd_lookup"), ("block", "cmd_block"),
                 ("unblock", "cmd_block"), ("allow", "cmd_block"), ("unallow", "cmd_block"),
                 ("decisions", "cmd_decisions"), ("export", "cmd_export"), ("report", "cmd_report"),
                 ("abuse-report", "cmd_abuse_report")):
    r = mxw(cmd, "--help")
    text = open(os.path.join(SRC, "cli", src + ".c")).read()
    longs = set(re.findall(r'\{"([a-z][a-z-]+)", (?:no|required)_argument', text)) - {"help"}
    if src == "cmd_block":  # one getopt table for four commands: what each takes
        longs = {"config", "db", "reason"} | ({"for"} if cmd in ("block", "allow") else set()) | \
            ({"response"} if cmd == "block" else set())
    missing = [o for o in sorted(longs) if "--" + o not in r.stdout]
    check(f"{cmd} --help: exit 0, more than a usage line, every flag explained", r.returncode == 0
          and len(r.stdout.splitlines()) >= 6 and not missing, (missing, r.stdout[:300]))
    body = r.stdout.split("\n\n", 2)[-1]  # past the synopsis and the summary
    examples = re.findall(r"mxwarden [a-z]|(?:--[a-z-]+|-c) [0-9/'a-zA-Z.][^ ]*  |--[a-z-]+ [0-9/'a-zA-Z.][^ ]*$", body, re.M)
    check(f"{cmd} --help: with examples", len(examples) >= 2, body)

# ------------------------------------------------------------------ run: enforcement warnings
rundb = os.path.join(d, "run.db")
runconf = os.path.join(d, "run.ini")
with open(runconf, "w") as f:
    f.write(f"[storage]\ndb = {rundb}\n\n[collector]\nfollow = {os.path.join(d, 'nothere.log')}\n\n"
            f"[web]\nlisten = 127.0.0.1:{free_port()}\n")
renv = dict(env)
renv.pop("MXWARDEN_NOW", None)
renv.pop("MXWARDEN_NOW_FROZEN", None)
p = subprocess.Popen([MXW, "run", "-c", runconf], env=renv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
out = ""
end = time.time() + 15
os.set_blocking(p.stderr.fileno(), False)


def read_until(pat):
    global out
    while time.time() < end:
        try:
            chunk = p.stderr.read() or ""
        except TypeError:  # nothing to read yet (non-blocking)
            chunk = ""
        out += chunk
        if re.search(pat, out):
            return True
        time.sleep(0.1)
    return False


check("run: warns at start that no [output] is configured", read_until(r"warning: no \[output\] is configured"), out)
check("run: says a followed file does not exist", re.search(r"nothere\.log matches no file", out) is not None, out)
read_until(r"running:")
with open(runconf, "a") as f:
    f.write("\n[rules]\n")  # still no output: SIGHUP warns again
p.send_signal(signal.SIGHUP)
check("run: warns again on SIGHUP", read_until(r"SIGHUP: no \[output\] is configured"), out[-800:])
p.terminate()
p.wait(timeout=20)

done()
