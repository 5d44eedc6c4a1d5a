"""test_emit_safety.py - RELIABILITY.md 22/23 through the CLI: `import` a log
made of every ../shared/adversarial line (5 times) plus 256 /24s of harvesters
inside 198.18.0.0/16 and 8 /64s inside 2001:db8:5::/48 whose HELOs carry shell,
nft and Postfix-map injection text, with an allow list that cuts into both;
then `export` every format. Pass: each line of each file matches its format's
whitelist; no file holds an injected string, a control or non-ASCII byte; no
prefix is shorter than the floor, none overlaps the allow list or a protected
network in either direction, 0.0.0.0/0, ::/0, ::/64, ::ffff:0:0/96 never
appear; every format lists the same prefixes as `plain` (nft: covers them);
a manual block with a hostile reason keeps every format well-formed and
round-trips through json."""
import base64, calendar, ipaddress, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

FLOOR4, FLOOR6 = 20, 32
ALLOW = ["198.18.77.0/24", "2001:db8:5:3::1/128"]
PROTECTED = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
             "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8"]
NEVER = ["0.0.0.0/0", "::/0", "::/64", "::ffff:0:0/96"]
INJ = ["flush ruleset", "0.0.0.0/0 OK", "#012", "`id`", "$(id)", "a;b", 'q"q', "x\\ny", "\\015"]
FORMATS = ["ipset", "nft", "iptables", "ip6tables", "postfix", "postscreen", "rbldnsd", "rbldnsd6", "plain", "json"]
PFX = r"[0-9a-f:.]+/\d{1,3}"
CMT = r'"[\x20\x21\x23-\x5b\x5d-\x7e]*"'  # printable ASCII without " and backslash
TXT = r"[\x20-\x7e]*"
LINE = {
    "ipset": [r"add mxwarden[46]-new (%s) timeout \d+ comment %s" % (PFX, CMT),
              r"(create|destroy|swap) mxwarden[46](-new)?( mxwarden[46])?( hash:net family inet6? hashsize \d+ "
              r"maxelem \d+ timeout 0 comment)?( -exist)?"],
    "nft": [r"\t\t\t(%s) timeout \d+s comment %s,?" % (PFX, CMT),
            r"(table|delete table) inet mxwarden( \{)?", r"\t*\}", r"\tset v[46] \{", r"\t\ttype ipv[46]_addr",
            r"\t\tflags interval, timeout", r"\t\telements = \{", r"\tchain input \{",
            r"\t\ttype filter hook input priority filter - 10; policy accept;",
            r"\t\tip6? saddr @v[46] tcp dport \{ 25, 465, 587 \} (drop|reject)"],
    "iptables": [r"-A mxwarden -s (%s) -p tcp -m multiport --dports 25,465,587 -m comment --comment %s "
                 r"-j (REJECT --reject-with tcp-reset|DROP|REJECT)" % (PFX, CMT),
                 r"\*filter", r":mxwarden - \[0:0\]", r"-A mxwarden -j RETURN", r"COMMIT"],
    "postfix": [r"(%s)\t(554 5\.7\.1|450 4\.7\.1) [\x20-\x7e]+" % PFX],
    "postscreen": [r"(%s)\t(reject|permit|dunno)" % PFX],
    "rbldnsd": [r"(%s) :127\.0\.0\.[23]:%s" % (PFX, TXT), r":127\.0\.0\.2:%s" % TXT],
    "plain": [r"(%s)" % PFX],
}
LINE["ip6tables"] = LINE["iptables"]
LINE["rbldnsd6"] = LINE["rbldnsd"]

d = scratch()
src = os.path.join(d, "adv.log")
never_ips, expect_ips = set(), set()
with open(src, "wb") as out:
    with open(os.path.join(SHARED, "adversarial", "lines.jsonl")) as f:
        for l in f:
            r = json.loads(l)
            b = base64.b64decode(r["line_b64"]) if r.get("line_b64") else r["line"].encode()
            out.write((b + b"\n") * 5)
            never_ips.update(r.get("never_ips") or [])
            for k in ("expect_ip", "also_ok_ip", "reserved_ip"):
                if r.get(k):
                    expect_ips.add(r[k])

    def rej(sec, ip, rcpt, helo):
        return ("Jan 10 10:%02d:%02d mx1 postfix/smtpd[4711]: NOQUEUE: reject: RCPT from unknown[%s]: 550 5.1.1 <%s>: "
                "Recipient address rejected: User unknown in local recipient table; from=<a@example.org> to=<%s> "
                "proto=ESMTP helo=<%s>\n" % (sec // 60, sec % 60, ip, rcpt, rcpt, helo)).encode()
    s = 0
    for x in range(256):
        for h in (1, 2, 3):
            for k in range(8):
                out.write(rej(s % 3000, "198.18.%d.%d" % (x, h), "u%d_%d_%d@example.com" % (x, h, k), INJ[k]))
                s += 1
    for x in range(8):
        for h in (1, 2, 3):
            for k in range(8):
                out.write(rej(s % 3000, "2001:db8:5:%x::%x" % (x, h), "v%d_%d_%d@example.com" % (x, h, k), INJ[k]))
                s += 1
forbidden_ips = never_ips - expect_ips
conf = os.path.join(d, "mxw.conf")
with open(conf, "w") as f:
    f.write("[safety]\nallow = %s\nipv4_floor = %d\nipv6_floor = %d\n" % (", ".join(ALLOW), FLOOR4, FLOOR6))
db = os.path.join(d, "m.db")
env = dict(os.environ, TZ="UTC", MXWARDEN_NOW="2027-01-10T11:00:00Z")
r = run([MXW, "import", "-c", conf, "--db", db, "-q", src], env=env)
check("import of the adversarial-heavy log", r.returncode == 0, r.stderr[-500:])
ndec = q(db, "SELECT count(*) FROM decisions")[0][0]
nwide = q(db, "SELECT count(*) FROM decisions WHERE family = 4 AND prefix_len < 24")[0][0]
print("%d decisions, %d of them wider than /24" % (ndec, nwide), flush=True)
check("the import decided many blocks, some widened past /24", ndec > 500 and nwide > 0, (ndec, nwide))
bad_ev = q(db, "SELECT DISTINCT ip FROM events WHERE ip IN (%s)" % ",".join("?" * len(forbidden_ips)),
           *sorted(forbidden_ips)) if forbidden_ips else []
check("no stored event blames an address the adversarial lines only mention", not bad_ev, bad_ev)

allow = [ipaddress.ip_network(a) for a in ALLOW]
prot = [ipaddress.ip_network(a) for a in PROTECTED]
forb = [ipaddress.ip_network(a) for a in sorted(forbidden_ips)]


def prefixes_of(fmt, text):
    """(prefixes, bad lines) of one emitted file."""
    if fmt == "json":
        j = json.loads(text)
        return [e["prefix"] for e in j["entries"]], []
    pats = [re.compile(p + r"\Z") for p in LINE[fmt]]
    got, bad = [], []
    for line in text.split("\n"):
        if line == "" or line.startswith("#"):
            continue
        m = next((m for m in (p.match(line) for p in pats) if m), None)
        if not m:
            bad.append(line)
        elif m.groups() and m.group(1) and "/" in m.group(1):
            got.append(m.group(1))
    return got, bad


def audit(label, dbpath, fmt_sets=None):
    sets = {}
    for fmt in FORMATS:
        out = os.path.join(d, label + "." + fmt)
        r = run([MXW, "export", "-c", conf, "--db", dbpath, "--format", fmt, "-o", out], env=env)
        if not check("%s: export --format %s" % (label, fmt), r.returncode == 0, r.stderr):
            continue
        raw = open(out, "rb").read()
        ctrl = [c for c in raw if (c < 0x20 and c not in (9, 10)) or c > 0x7e]
        check("%s %s: only printable ASCII, tabs and newlines" % (label, fmt), not ctrl, ctrl[:10])
        text = raw.decode("ascii", "replace")
        inj = [x for x in INJ if x in text]
        if label == "events":
            check("%s %s: no injected HELO text" % (label, fmt), not inj, inj)
        pfx, bad = prefixes_of(fmt, text)
        check("%s %s: every line matches the format's whitelist" % (label, fmt), not bad, bad[:3])
        nets, unparsable, short, overl, never = [], [], [], [], []
        for p in pfx:
            try:
                n = ipaddress.ip_network(p)
            except ValueError:
                unparsable.append(p)
                continue
            nets.append(n)
            if n.prefixlen < (FLOOR4 if n.version == 4 else FLOOR6):
                short.append(p)
            if p in NEVER or str(n) in NEVER:
                never.append(p)
            for a in allow + prot:
                if a.version == n.version and (a.subnet_of(n) or n.subnet_of(a)):
                    overl.append((p, str(a)))
            # an address a line only mentions is never blocked on its own (its class may be, for others)
            if n.num_addresses == 1 and n in forb:
                overl.append((p, "never-blamed"))
        check("%s %s: every prefix is canonical CIDR" % (label, fmt), not unparsable, unparsable[:5])
        check("%s %s: nothing shorter than the floors (/%d, /%d)" % (label, fmt, FLOOR4, FLOOR6), not short, short[:5])
        check("%s %s: nothing overlaps the allow list, a protected network or a never-blamed address"
              % (label, fmt), not overl, overl[:5])
        check("%s %s: no catch-all prefix" % (label, fmt), not never, never)
        sets[fmt] = nets
    plain = set(sets.get("plain", []))
    check("%s: plain lists something" % label, len(plain) > 0, len(plain))
    for fmt, nets in sets.items():
        if fmt in ("plain",):
            continue
        fam = {"ip6tables": 6, "rbldnsd6": 6, "iptables": 4, "rbldnsd": 4}.get(fmt)
        want = {n for n in plain if fam is None or n.version == fam}
        if fmt == "nft":
            uncovered = [str(n) for n in want if not any(n.subnet_of(m) for m in nets if m.version == n.version)]
            check("%s nft: covers every prefix of plain" % label, not uncovered, uncovered[:5])
        else:
            check("%s %s: the same prefixes as plain" % (label, fmt), set(nets) == want,
                  (sorted(map(str, set(nets) - want))[:5], sorted(map(str, want - set(nets)))[:5]))
    return sets


audit("events", db)

# a manual block whose reason is hostile text
hostile = 'a"b;$(id)`id` 0.0.0.0/0 OK #012 \\n {}\'x<end>&'
db2 = os.path.join(d, "m2.db")
r = run([MXW, "block", "198.51.100.0/24", "--for", "1h", "--reason", hostile, "--db", db2, "-c", conf], env=env)
check("block with a hostile reason", r.returncode == 0, r.stderr)
r = run([MXW, "block", "198.51.101.0/24", "--for", "1h", "--reason", "line one\nflush ruleset", "--db", db2,
         "-c", conf], env=env)
check("block with a newline in the reason (refused or stored)", r.returncode in (0, 1), r.stderr)
audit("manual", db2)
j = json.load(open(os.path.join(d, "manual.json")))
reasons = {e["prefix"]: e["reason"] for e in j["entries"]}
check("json keeps the hostile reason exactly (escaped, not altered)", reasons.get("198.51.100.0/24") == hostile,
      reasons.get("198.51.100.0/24"))
done()
