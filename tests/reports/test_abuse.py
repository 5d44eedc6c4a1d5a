"""test_abuse.py - `mxwarden abuse-report` end to end on a mkmaillog corpus
(Exim, whose lines carry the client port) plus hostile lines of our own,
with a contact map covering some abusers' networks and a fake RDAP server
(loopback) for others:

- every message parses with Python's email package without defects: a
  multipart/report; report-type=feedback-report of text/plain,
  message/feedback-report (Feedback-Type: xarf, User-Agent, Version: 1) and
  application/json, whose JSON passes the XARF v4 checks for its type
  (xarf_check.py, written from the published schemas);
- its source_identifier lies in the networks of the contact it is addressed
  to (the map's, or the range the RDAP server answered), and each contact
  gets at most max_per_contact reports and one summary;
- exactly the decisions worth a report (reject or drop, not manual, two
  connections or more, no accepted mail) with a contact are covered, once;
- our users' local parts and AUTH names are masked;
- a hostile HELO, sender, recipient and AUTH name (<script>, CR, a fake Bcc:
  header, a MIME boundary) inject nothing: same headers, same parts, CRLF
  lines only;
- a second run for the same period, into another directory, writes nothing,
  sends nothing, asks RDAP nothing;
- with [abuse] smtp at a local SMTP server each message is delivered exactly
  once, to its contact only, also when the server refuses one at first;
- the digest lists what has no contact; check-config reports a bad map."""
import base64, email, glob, ipaddress, json, os, re, shutil, sqlite3, subprocess, sys, tempfile
from email import policy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers, xarf_check

MXW = os.environ.get("MXWARDEN", "build/cli/mxwarden")
SHARED = os.environ.get("MXW_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
NOW = "2026-11-28T12:00:00Z"
MAX_PER_CONTACT = 4
failures = 0


def check(name, cond, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)[:2000]), flush=True)
    if not cond:
        failures += 1


d = tempfile.mkdtemp(prefix="mxw-abuse-")
log = os.path.join(d, "mail.log")
subprocess.run([sys.executable, os.path.join(SHARED, "tools", "mkmaillog"), "--format", "exim", "--lines",
                "40000", "--seed", "5", "--start", "2026-11-27T00:00:00Z", "-o", log], check=True,
               capture_output=True)

# hostile lines of our own: a harvester and a password guesser in a mapped
# documentation network, with markup, CRs, a fake Bcc: header and a MIME
# boundary in HELO, sender, recipients and user names
HOSTILE_HELO = "<script>alert(1)</script>\rBcc: victim@evil.example\r--=_mxw_00\rContent-Type: text/html"
with open(log, "a") as f:
    for c in range(3):  # 3 connections of 5 unknown recipients each (pids far above mkmaillog's)
        pid, port, t = 931000 + c, 4000 + c, "2026-11-27 23:0%d:" % (c * 2)
        f.write("%s09 [%d] SMTP connection from [203.0.113.77]:%d (TCP/IP connection count = 3)\n" % (t, pid, port))
        for i in range(5):
            rcpt = "u%d%d@example.com" % (c, i) if i else "x%d\rBcc: hidden@evil.example" % c
            f.write("%s%02d [%d] H=(%s) [203.0.113.77]:%d F=<\"<b>Bcc: x\"@evil.example> "
                    "rejected RCPT <%s>: Unrouteable address\n" % (t, 10 + i, pid, HOSTILE_HELO, port, rcpt))
        f.write("%s20 [%d] SMTP connection from (%s) [203.0.113.77]:%d closed by QUIT\n" % (t, pid, HOSTILE_HELO, port))
    for c in range(2):  # 2 connections failing AUTH 3 times, hostile user names
        pid, port, t = 932000 + c, 5000 + c, "2026-11-27 23:1%d:" % (c * 2)
        f.write("%s09 [%d] SMTP connection from [203.0.113.88]:%d (TCP/IP connection count = 3)\n" % (t, pid, port))
        for i in range(3):
            f.write("%s%02d [%d] LOGIN authenticator failed for (%s) [203.0.113.88]:%d: "
                    "535 Incorrect authentication data (set_id=%s)\n"
                    % (t, 10 + i, pid, HOSTILE_HELO, port, ["admin.user", "<script>x", "Bcc: root"][i]))
        f.write("%s20 [%d] no MAIL in SMTP connection from (%s) [203.0.113.88]:%d D=11s C=EHLO,AUTH,AUTH,AUTH,QUIT\n"
                % (t, pid, HOSTILE_HELO, port))

contacts = os.path.join(d, "contacts.txt")
MAP = {"0.0.0.0/2": "abuse@net-a.example", "64.0.0.0/2": "abuse@net-b.example",
       "203.0.113.0/24": "abuse@doc.example", "2001:db8::/32": "abuse@v6.example"}
with open(contacts, "w") as f:
    f.write("# networks we know\n")
    for k, v in MAP.items():
        f.write("%-16s %s\n" % (k, v))
RDAP_NETS = {"128.0.0.0/3": "abuse@rdap-c.example", "160.0.0.0/3": None}  # the second names no abuse contact
rdap = peers.RDAPServer(RDAP_NETS)
boot = os.path.join(d, "ipv4.json")
rdap.bootstrap(boot, ["128.0.0.0/2"])


def config(path, smtp=None):
    with open(path, "w") as f:
        f.write("[safety]\nprotected_networks = none\nmta_trusted = none\n"
                "[abuse]\ncontacts = %s\nreporter_org = Example Mail \"Ops\" <Team>\n"
                "reporter_contact = abuse@mx.example.org\nreporter_domain = mx.example.org\n"
                "max_per_contact = %d\nrdap = yes\nrdap_bootstrap = %s\n" % (contacts, MAX_PER_CONTACT, boot))
        if smtp:
            f.write("smtp = 127.0.0.1:%d\nsmtp_timeout = 10s\n" % smtp)
    return path


conf = config(os.path.join(d, "a.ini"))
env = dict(os.environ, MXWARDEN_NOW=NOW, MXWARDEN_NOW_FROZEN="1")


def mxw(*args):
    return subprocess.run([MXW] + list(args), env=env, capture_output=True, text=True, timeout=300)


db0 = os.path.join(d, "pristine.db")
p = mxw("import", "-q", "-c", conf, "--db", db0, log)
check("import", p.returncode == 0, p.stderr[-800:])
db = os.path.join(d, "r.db")
shutil.copy(db0, db)


def decisions(path):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    rows = con.execute("select id, prefix, scope, rule, response, manual, since, evidence from decisions").fetchall()
    con.close()
    return rows


def worth(row):
    """The criteria, written independently of the C code."""
    _, prefix, scope, rule, response, manual, since, ev = row
    if response not in ("reject", "drop") or manual:
        return False
    e = json.loads(ev) if ev else {}
    n = e.get("numbers", {})
    s = max((e.get("sessions") or {}).get("bad", 0), n.get("bad_connections", 0))
    if rule == "flood" or scope == "class":
        s = max(s, n.get("connections", 0))
    if rule == "returned":
        s = max(s, n.get("returned", 0))
    return s >= 2 and n.get("accepted") == 0


def contact_nets(contact):
    nets = [ipaddress.ip_network(k) for k, v in MAP.items() if v == contact]
    nets += [ipaddress.ip_network(k) for k, v in RDAP_NETS.items() if v == contact]
    return nets


def contact_of(prefix):
    net = ipaddress.ip_network(prefix)
    best = None
    for k, v in MAP.items():
        n = ipaddress.ip_network(k)
        if n.version == net.version and net.subnet_of(n) and (not best or n.prefixlen > best[0].prefixlen):
            best = (n, v)
    if best:
        return best[1]
    for k, v in RDAP_NETS.items():  # the bootstrap covers 128.0.0.0/2
        n = ipaddress.ip_network(k)
        if n.version == net.version and net.subnet_of(n):
            return v
    return None


# ------------------------------------------------------------ first run
out1 = os.path.join(d, "out1")
p = mxw("abuse-report", "-c", conf, "--db", db, "--since", "2d", "--out", out1)
check("run 1: exit 0", p.returncode == 0, p.stderr[-2000:])
print(p.stderr.splitlines()[-1] if p.stderr else "", flush=True)
files = sorted(glob.glob(os.path.join(out1, "*.eml")))
con = sqlite3.connect(db)
outbox = con.execute("select id, kind, rcpt, file, message, report_id from outbox").fetchall()
reported = dict(con.execute("select decision_id, outbox_id from abuse_reported").fetchall())
con.close()
check("run 1: one outbox row per file written", len(files) == len(outbox) >= 12 and
      sorted(r[3] for r in outbox) == files, (len(files), len(outbox)))
check("run 1: the stored message is the file", all(open(r[3], "rb").read() == r[4] for r in outbox), "")

rows = decisions(db)
by_id = {r[0]: r for r in rows}
want = {r[0] for r in rows if worth(r) and contact_of(r[1])}
check("exactly the decisions worth a report with a contact are covered",
      set(reported) == want, (sorted(set(reported) - want)[:10], sorted(want - set(reported))[:10]))
check("some decisions are not worth a report, some have no contact",
      any(not worth(r) for r in rows) and any(worth(r) and not contact_of(r[1]) for r in rows), len(rows))
check("RDAP was asked", len(rdap.requests) > 0, rdap.requests)

EXPECTED_HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Auto-Submitted",
                    "Content-Type"]
per_contact = {}
types = set()
masked_ok = True
mask_detail = None
hostile = {}
con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
for oid, kind, rcpt, path, raw, rid in outbox:
    name = os.path.basename(path)
    m = email.message_from_bytes(raw, policy=policy.default)
    defects = list(m.defects) + [x for part in m.walk() for x in part.defects]
    if defects:
        check("%s parses without defects" % name, False, defects)
        continue
    lines = raw.split(b"\r\n")
    if not (raw.endswith(b"\r\n") and all(b"\r" not in l and b"\n" not in l and len(l) <= 998 for l in lines)):
        check("%s: CRLF lines only, at most 998 bytes" % name, False, "")
    want_headers = EXPECTED_HEADERS + (["Content-Transfer-Encoding"] if kind == "summary" else [])
    if list(m.keys()) != want_headers or len(m.get_all("To")) != 1:
        check("%s: exactly the expected header fields" % name, False, list(m.keys()))
    to = m["To"].addresses
    if len(to) != 1 or to[0].addr_spec != rcpt:
        check("%s: To is its contact" % name, False, (m["To"], rcpt))
    c = per_contact.setdefault(rcpt, {"xarf": 0, "summary": 0})
    c[kind] += 1
    if kind == "summary":
        if m.get_content_type() != "text/plain":
            check("%s: a summary is text/plain" % name, False, m.get_content_type())
        continue
    parts = list(m.iter_parts()) if m.is_multipart() else []
    if not (m.get_content_type() == "multipart/report" and m.get_param("report-type") == "feedback-report"
            and [x.get_content_type() for x in parts] ==
            ["text/plain", "message/feedback-report", "application/json"]):
        check("%s: multipart/report of the three parts" % name, False,
              (m.get_content_type(), [x.get_content_type() for x in parts]))
        continue
    fb = parts[1].get_payload()[0]
    if not (fb["Feedback-Type"] == "xarf" and fb["User-Agent"].startswith("mxwarden/") and fb["Version"] == "1"):
        check("%s: the feedback-report fields" % name, False, dict(fb))
    x = json.loads(parts[2].get_content())
    errs = xarf_check.check(x)
    if errs:
        check("%s: XARF v4 %s/%s" % (name, x.get("category"), x.get("type")), False, errs)
    types.add((x["category"], x["type"]))
    if x["report_id"] != rid or m["Message-ID"] != "<%s@mx.example.org>" % rid:
        check("%s: report_id recorded and in the Message-ID" % name, False, (x["report_id"], rid))
    src = ipaddress.ip_network(x["source_identifier"])
    if not any(src.version == n.version and src.subnet_of(n) for n in contact_nets(rcpt)):
        check("%s: source %s in the networks of %s" % (name, src, rcpt), False, contact_nets(rcpt))
    # our users: no recipient address of the source's stored events, no AUTH name
    text = parts[0].get_content()
    shown = text + "".join(base64.b64decode(e["payload"]).decode("utf-8", "replace")
                           for e in x.get("evidence", []))
    users = set()
    for ip, rc, user in con.execute("select ip, rcpt_to, user from events where ip is not null"):
        if ipaddress.ip_address(ip) in src:
            if rc and "@" in rc and len(rc.split("@")[0]) >= 3:
                users.add(rc)
            if user and len(user) >= 3:
                users.add("set_id=" + user)
    leak = [u for u in users if u in shown] + re.findall(r"set_id=(?!\[redacted\])[^)]*", shown)
    if leak:
        masked_ok, mask_detail = False, (name, leak[:5])
    if x["source_identifier"] in ("203.0.113.77", "203.0.113.88"):
        hostile[x["source_identifier"]] = (m, raw, text, x)
con.close()
check("every XARF message parses and validates (%d messages, types %s)" % (len(outbox), sorted(types)),
      failures == 0, "")
check("the four XARF types occur", types >= {("connection", "login_attack"), ("messaging", "spam"),
                                               ("connection", "reconnaissance"), ("reputation", "blocklist")},
      types)
check("our users' local parts and AUTH names are masked", masked_ok, mask_detail)
check("at most max_per_contact reports and one summary per contact",
      all(v["xarf"] <= MAX_PER_CONTACT and v["summary"] <= 1 for v in per_contact.values())
      and any(v["summary"] for v in per_contact.values()), per_contact)
check("an RDAP contact got its reports", "abuse@rdap-c.example" in per_contact, sorted(per_contact))
check("no report for the network whose RDAP answer names no abuse contact",
      not any(r.endswith("@org.example") for r in per_contact), sorted(per_contact))

# the hostile ones
check("the hostile harvester and guesser were reported", set(hostile) == {"203.0.113.77", "203.0.113.88"},
      sorted(hostile))
for ip, (m, raw, text, x) in hostile.items():
    check("%s: no Bcc header anywhere" % ip, all(part.get("Bcc") is None for part in m.walk()), "")
    check("%s: the CRs are shown masked, none raw" % ip, "\\x0d" in text and "\r" not in text.replace("\r\n", "\n"), text[:300])
    check("%s: the fake boundary is text of the body only" % ip,
          raw.count(b"--" + m.get_boundary().encode()) == 4 and b"\r\n--=_mxw_00\r\n" not in raw, "")
    check("%s: the XARF report is still valid" % ip, xarf_check.check(x) == [], xarf_check.check(x))
x77 = hostile.get("203.0.113.77", (None, None, None, {}))[3]
x88 = hostile.get("203.0.113.88", (None, None, None, {}))[3]
check("the hostile sender is not taken as smtp_from", "smtp_from" not in x77, x77.get("smtp_from"))
check("the guesser is a login_attack with its port", x88.get("type") == "login_attack" and
      x88.get("source_port") in (5000, 5001), (x88.get("type"), x88.get("source_port")))

# ------------------------------------------------------------ second run
asked = len(rdap.requests)
out2 = os.path.join(d, "out2")
p = mxw("abuse-report", "-c", conf, "--db", db, "--since", "2d", "--out", out2)
con = sqlite3.connect(db)
n_out = con.execute("select count(*) from outbox").fetchone()[0]
con.close()
check("run 2: exit 0", p.returncode == 0, p.stderr[-1000:])
check("run 2 (same period, another directory) writes nothing", glob.glob(os.path.join(out2, "*")) == [] and
      n_out == len(outbox), (os.listdir(out2) if os.path.isdir(out2) else None, n_out))
check("run 2 asks RDAP nothing (the answers are cached)", len(rdap.requests) == asked,
      rdap.requests[asked:])

# ------------------------------------------------------------ sending
smtp = peers.SMTPServer(fail_next=1)
conf_s = config(os.path.join(d, "s.ini"), smtp=smtp.port)
dbs = os.path.join(d, "s.db")
shutil.copy(db0, dbs)
outs = os.path.join(d, "outs")
p1 = mxw("abuse-report", "-c", conf_s, "--db", dbs, "--since", "2d", "--out", outs)
p2 = mxw("abuse-report", "-c", conf_s, "--db", dbs, "--since", "2d", "--out", outs)
p3 = mxw("abuse-report", "-c", conf_s, "--db", dbs, "--since", "2d", "--out", outs)
con = sqlite3.connect(dbs)
sent = con.execute("select id, rcpt, message, sent_at, attempts from outbox").fetchall()
con.close()
check("with smtp: one refusal makes run 1 exit 1, run 2 sends it, run 3 has nothing to do",
      p1.returncode == 1 and "1 messages not sent" in p1.stderr and p2.returncode == 0 and p3.returncode == 0
      and smtp.refused == 1, (p1.returncode, p2.returncode, p3.returncode, p1.stderr[-400:]))
check("every message is marked sent", sent and all(r[3] for r in sent) and sum(r[4] for r in sent) == 1,
      [(r[0], r[3], r[4]) for r in sent][:5])
delivered = {}
for mail_from, rcpts, data in smtp.messages:
    delivered.setdefault(data, []).append((mail_from, rcpts))
check("each message delivered exactly once, to its contact only, from the reporter",
      len(smtp.messages) == len(sent) and all(delivered.get(r[2]) == [("<abuse@mx.example.org>",
                                                                      ["<%s>" % r[1]])] for r in sent),
      (len(smtp.messages), len(sent)))
p = mxw("abuse-report", "--list", "-c", conf_s, "--db", dbs)
lst = json.loads(p.stdout).get("items", []) if p.returncode == 0 else []
check("--list shows each message, to whom, when written and sent, the decisions it covers",
      len(lst) == len(sent) and all(x["sent_at"] and x["written_at"] == NOW and x["rcpt"] and
                                    (x["decisions"] if x["kind"] == "xarf" else True) for x in lst)
      and {x["id"]: x["attempts"] for x in lst} == {r[0]: r[4] for r in sent}, lst[:2])
check("nobody from a message's text got mail", {r for _, rs, _ in smtp.messages for r in rs} <=
      {"<%s>" % v for v in list(MAP.values()) + ["abuse@rdap-c.example"]},
      {r for _, rs, _ in smtp.messages for r in rs})
smtp.close()
rdap.close()

# ------------------------------------------------------------ the digest lists what has no contact
p = mxw("report", "digest", "-c", conf, "--db", db, "--since", "2d", "--format", "json")
dj = json.loads(p.stdout) if p.returncode == 0 else {}
lacking = {r[1] for r in rows if worth(r) and not contact_of(r[1])}
listed = {x["prefix"] if "/" in x["prefix"] else x["prefix"] + ("/32" if ":" not in x["prefix"] else "/128")
          for x in dj.get("abuse_no_contact", [])}
check("the digest lists the prefixes worth a report that have no contact", listed == lacking and lacking,
      (sorted(listed - lacking)[:5], sorted(lacking - listed)[:5]))

# ------------------------------------------------------------ a Postfix corpus: no client ports logged
plog = os.path.join(d, "postfix.log")
subprocess.run([sys.executable, os.path.join(SHARED, "tools", "mkmaillog"), "--lines", "30000", "--seed", "7",
                "--start", "2026-11-27T00:00:00Z", "-o", plog], check=True, capture_output=True)
allmap = os.path.join(d, "all.txt")
with open(allmap, "w") as f:
    f.write("0.0.0.0/0 abuse@any4.example\n::/0 abuse@any6.example\n")
pconf = os.path.join(d, "p.ini")
with open(pconf, "w") as f:
    f.write("[safety]\nprotected_networks = none\nmta_trusted = none\n[abuse]\ncontacts = %s\n"
            "reporter_org = X\nreporter_contact = abuse@mx.example.org\nreporter_domain = mx.example.org\n"
            "max_per_contact = 1000\n" % allmap)
pdb = os.path.join(d, "p.db")
p = mxw("import", "-q", "-c", pconf, "--db", pdb, plog)
p = mxw("abuse-report", "-c", pconf, "--db", pdb, "--since", "2d", "--out", os.path.join(d, "outp"))
check("postfix corpus: exit 0", p.returncode == 0, p.stderr[-800:])
con = sqlite3.connect("file:%s?mode=ro" % pdb, uri=True)
pmsgs = [r[0] for r in con.execute("select message from outbox where kind = 'xarf'")]
con.close()
pbad, ptypes = [], {}
for raw in pmsgs:
    m = email.message_from_bytes(raw, policy=policy.default)
    parts = list(m.iter_parts())
    x = json.loads(parts[2].get_content()) if len(parts) == 3 else {}
    if m.defects or len(parts) != 3 or xarf_check.check(x):
        pbad.append((m.defects, len(parts), xarf_check.check(x)))
    key = (x.get("type"), x.get("threat_type"))
    ptypes[key] = ptypes.get(key, 0) + 1
check("postfix corpus: every message parses and validates (%d, %s)" % (len(pmsgs), sorted(ptypes.items(),
      key=str)), pmsgs and not pbad, pbad[:3])
check("postfix corpus: AUTH without a logged port is reputation/blocklist, threat login_attack",
      ("blocklist", "login_attack") in ptypes and ("login_attack", None) not in ptypes, ptypes)

# ------------------------------------------------------------ check-config
bad = os.path.join(d, "bad-contacts.txt")
with open(bad, "w") as f:
    f.write("198.51.100.0/24 abuse@ok.example\n198.51.100.1/24 abuse@x.example\n203.0.113.0/24 not-an-address\n"
            "198.51.100.0/24 abuse@dup.example\n2001:db8::/32\n")
badconf = os.path.join(d, "bad.ini")
with open(badconf, "w") as f:
    f.write("[abuse]\ncontacts = %s\nreporter_contact = abuse@mx.example.org\n" % bad)
p = mxw("check-config", "-c", badconf)
lines = [l for l in p.stderr.splitlines() if l.startswith(badconf + ":") or l.startswith(bad + ":")]
check("check-config: [abuse] needs reporter_org and reporter_domain",
      p.returncode == 1 and sum("reporter_org" in l or "reporter_domain" in l for l in lines) == 2, p.stderr)
with open(badconf, "w") as f:
    f.write("[abuse]\ncontacts = %s\nreporter_org = X\nreporter_contact = abuse@mx.example.org\n"
            "reporter_domain = mx.example.org\n" % bad)
p = mxw("check-config", "-c", badconf)
check("check-config: every bad line of the contact map as FILE:LINE",
      p.returncode == 1 and [l.split(":")[1] for l in p.stderr.splitlines() if l.startswith(bad + ":")]
      == ["2", "3", "4", "5"], p.stderr)

shutil.rmtree(d, ignore_errors=True) if not failures else print("kept", d)
sys.exit(1 if failures else 0)
