#!/usr/bin/env python3
"""test_sendmail_real.py (suite system) - a REAL Sendmail (Debian's
sendmail-bin, its sendmail.cf built with m4 from sendmail-cf, both unpacked
with dpkg-deb -x from the cache `scripts/install-deps test` fills: installing
them would remove Postfix) in private mount, network and UTS namespaces,
listening on 192.0.2.25:25 and [2001:db8::25]:25 as Debian runs it (-L
sm-mta), with an access database (makemap) for connection and sender
refusals, greet_pause, ratecontrol and conncontrol, a DNSBL, Cyrus SASL
AUTH. Sendmail logs only through syslog(3): its /dev/log is the test's own
socket (bind-mounted in the private mount namespace), written as rsyslog
writes a file. A small DNS server answers its lookups (names, no names,
forged names, lookups that fail). Clients from 198.51.100.0/24,
203.0.113.0/24 and 2001:db8:6::/64 provoke every refusal shape this Sendmail
can be made to log (issue 13): unknown users, relaying (no PTR, PTR, forged
PTR, PTR lookup failing, IPv6), sender domains that do not exist or do not
resolve, access-database refusals at connect and MAIL, a DNSBL listing,
EXPN/VRFY, pre-greeting traffic, `possible SMTP attack`, AUTH failures, `did
not issue MAIL`, lost connections, a command timeout, the connection-rate
and open-connection limits, a RCPT flood, an HTTP request (open proxy), and
an accepted message.

Checks: every scenario's shape is in the log; every line naming a client
gives exactly one event (`mxwarden parse`) with that client and the kind its
shape calls for (the table SHAPES, from docs/events.md and issue 13);
`QID: <addr>... User unknown` (which names no client) gives one rejection
carrying its queue id, which `mxwarden run` attributes to the client of that
queue id; `mxwarden run` following the file stores each evidence event once
with its client. Exit 77 only when the machine cannot run it (not root, no
namespaces, packages not in the cache)."""
import base64, os, re, shutil, smtplib, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realmta as R  # noqa: E402
from realmta import Shape, check  # noqa: E402

R.enter_namespaces()
T0 = time.time()
if not shutil.which("m4"):
    R.skip("m4 is missing (scripts/install-deps test installs it): sendmail.cf is built with it")
d = R.scratch("mxw-sendmail-")
os.chmod(d, 0o755)
root = os.path.join(d, "root")
debs = R.unpack(["sendmail-bin", "sendmail-cf"], root)
SM = os.path.join(root, "usr/libexec/sendmail/sendmail")
MAKEMAP = os.path.join(root, "usr/libexec/sendmail/makemap")
libs = R.missing_libraries(SM)
if libs:
    R.skip("sendmail needs libraries that are not installed: %s (scripts/install-deps test)" % " ".join(libs))

MC = """divert(-1)
# Sendmail for test_sendmail_real.py: a private network namespace only
divert(0)dnl
VERSIONID(`mxwarden test')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `mx.example.test')dnl
define(`confLOG_LEVEL', `9')dnl
define(`confDONT_PROBE_INTERFACES', `true')dnl
define(`QUEUE_DIR', `@D@/mqueue')dnl
define(`confPID_FILE', `@D@/sendmail.pid')dnl
define(`confSTATUS_FILE', `')dnl
define(`confHELP_FILE', `')dnl
define(`ALIAS_FILE', `@D@/aliases')dnl
define(`confDEF_USER_ID', `8:8')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
define(`confPRIVACY_FLAGS', `authwarnings,noexpn,novrfy')dnl
define(`confTO_COMMAND', `3s')dnl
define(`confTO_IDENT', `0s')dnl
define(`confBAD_RCPT_THROTTLE', `3')dnl
define(`confDELIVERY_MODE', `queueonly')dnl
define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl
TRUST_AUTH_MECH(`PLAIN LOGIN')dnl
define(`confAUTH_OPTIONS', `')dnl
FEATURE(`no_default_msa')dnl
DAEMON_OPTIONS(`Family=inet, Name=MTA-v4, Port=25, Addr=192.0.2.25')dnl
DAEMON_OPTIONS(`Family=inet6, Name=MTA-v6, Port=25, Addr=2001:db8::25')dnl
FEATURE(`access_db', `hash -T<TMPF> @D@/access')dnl
FEATURE(`greet_pause', `0')dnl
FEATURE(`ratecontrol', `', `terminate')dnl
FEATURE(`conncontrol', `', `terminate')dnl
FEATURE(`dnsbl', `bl.example', `"550 Rejected: " $&{client_addr} " listed at bl.example"')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
""".replace("@D@", d)
ACCESS = """GreetPause:198.51.100.18	2000
ClientRate:198.51.100.27	2
ClientConn:198.51.100.26	2
Connect:203.0.113.66	REJECT
From:spammer.example	REJECT
"""
cfdir = os.path.join(root, "usr/share/sendmail/cf")
r = subprocess.run(["m4", "-D_CF_DIR_=" + cfdir + "/", os.path.join(cfdir, "m4/cf.m4"), "-"], input=MC,
                   capture_output=True, text=True)
check("m4 builds sendmail.cf from the .mc", r.returncode == 0 and "ERROR" not in r.stderr, r.stderr[-500:])
try:
    R.private_etc(d, users=[("alice", 1501, 1501, "/nonexistent"), ("bob", 1502, 1502, "/nonexistent")], files={
        "mail/sendmail.cf": r.stdout,
        "sasl2/Sendmail.conf": "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s/sasldb2\n"
                               "mech_list: PLAIN LOGIN\n" % d})
except subprocess.CalledProcessError as e:
    R.skip("cannot lay a private /etc over the real one (overlayfs): %s" % e)
os.makedirs(os.path.join(d, "mqueue"), mode=0o700)
with open(os.path.join(d, "aliases"), "w") as f:
    f.write("postmaster: alice\n")
with open(os.path.join(d, "access"), "w") as f:
    f.write(ACCESS)
with open(os.path.join(d, "access")) as f:
    r = subprocess.run([MAKEMAP, "hash", os.path.join(d, "access")], stdin=f, capture_output=True, text=True)
check("makemap builds the access database", r.returncode == 0, r.stderr)
r = subprocess.run([SM, "-bi"], capture_output=True, text=True)
check("newaliases", r.returncode == 0, r.stdout + r.stderr)

syslog = os.path.join(d, "syslog")
sink = R.private_devlog(d, syslog)
dns = R.MiniDNS({
    ("mail.goodsender.example", "A"): ["198.51.100.10"],
    (R.ptr_name("198.51.100.10"), "PTR"): ["mail.goodsender.example"],
    ("goodsender.example", "MX"): ["10 mail.goodsender.example"],
    (R.ptr_name("198.51.100.13"), "PTR"): ["client13.goodsender.example"],
    ("client13.goodsender.example", "A"): ["198.51.100.13"],
    (R.ptr_name("198.51.100.33"), "PTR"): ["forged.example"],
    ("forged.example", "A"): ["198.51.100.99"],
    ("40.100.51.198.bl.example", "A"): ["127.0.0.2"],
}, servfail=["servfail.example", R.ptr_name("198.51.100.34")])
dns.start()

db = os.path.join(d, "m.db")
dm = R.Daemon(db, [syslog]).start()
sm = R.Proc([SM, "-L", "sm-mta", "-bD", "-q30m"], os.path.join(d, "sendmail.stderr"))
PROBE = "198.51.100.9"  # the connections that wait for the daemon come from here
up = R.wait_listen(R.SERVER4, PROBE, timeout=20) and R.wait_listen(R.SERVER6, R.CLIENT6[7], timeout=5)
if not up:
    sm.stop()
    dm.stop()
    check("Sendmail starts and listens", False, open(os.path.join(d, "sendmail.stderr"), errors="replace").read()[
        -1500:] + "".join(R.read_lines(syslog)[-10:]) + " (kept %s)" % d)
    R.finish(d, root)


# ------------------------------------------------------------------ scenarios

def accepted():
    s = R.smtp("198.51.100.10", "mail.goodsender.example")
    s.sendmail("bob@goodsender.example", ["alice@mx.example.test"], "Subject: hello\r\n\r\nhello\r\n")
    s.quit()


def unknown_user(src, n):
    s = R.smtp(src)
    s.mail("bob@goodsender.example")
    for i in range(n):
        s.rcpt("nouser%d@mx.example.test" % i)
    s.quit()


def relay(src):
    s = R.smtp(src)
    s.mail("bob@goodsender.example")
    s.rcpt("someone@elsewhere.example")
    s.quit()


def sender(src, addr):
    s = R.smtp(src)
    s.mail(addr)
    s.quit()


def raw(src, *cmds, banner=True):
    c = R.Raw(src, wait_banner=banner)
    for x in cmds:
        c.cmd(x)
    c.drain(3)
    c.close()


def pregreet():
    c = R.Raw("198.51.100.18", wait_banner=False)  # GreetPause 2000 ms for this client
    c.send("EHLO pregreet.example\r\n")
    c.reply()
    c.cmd("QUIT")
    c.drain(4)
    c.close()


def auth_fail():
    c = R.Raw("198.51.100.17")
    c.cmd("EHLO auth.example")
    c.cmd("AUTH PLAIN " + base64.b64encode(b"\0relayuser\0wrong").decode())
    c.cmd("AUTH LOGIN")
    c.cmd(base64.b64encode(b"admin").decode())
    c.cmd(base64.b64encode(b"guess").decode())
    c.cmd("QUIT")
    c.close()


def lost():
    c = R.Raw("198.51.100.24")
    c.cmd("EHLO lost.example")
    c.cmd("MAIL FROM:<bob@goodsender.example>")
    c.close()  # no QUIT


def conn_limit():
    held = [R.Raw("198.51.100.26") for _ in range(2)]  # ClientConn 2
    raw("198.51.100.26", "EHLO third.example")
    for c in held:
        c.cmd("QUIT")
        c.close()


def conn_rate():
    for _ in range(4):  # ClientRate 2: the third and fourth are refused
        raw("198.51.100.27", "EHLO rate.example", "QUIT")


def timeout():
    c = R.Raw("198.51.100.38")
    c.cmd("EHLO slow.example")
    c.drain(6)  # Timeout.command = 3s
    c.close()


SCENARIOS = [
    ("probe", [PROBE, R.CLIENT6[7]], lambda: R.Raw(PROBE).close(), ["no_mail"]),
    ("accepted", ["198.51.100.10"], accepted, ["from_accept"]),
    ("unknown-user", ["198.51.100.11"], lambda: unknown_user("198.51.100.11", 3),
     ["user_unknown", "from_no_rcpt"]),
    ("relay-no-ptr", ["198.51.100.12"], lambda: relay("198.51.100.12"), ["relay_denied", "from_no_rcpt"]),
    ("relay", ["198.51.100.13"], lambda: relay("198.51.100.13"), ["relay_denied"]),
    ("relay-forged-ptr", ["198.51.100.33"], lambda: relay("198.51.100.33"), ["relay_denied"]),
    ("relay-ptr-tempfail", ["198.51.100.34"], lambda: relay("198.51.100.34"), ["relay_ptr_tempfail"]),
    ("relay-ipv6", [R.CLIENT6[0]], lambda: relay(R.CLIENT6[0]), ["relay_denied"]),
    ("sender-domain-nxdomain", ["198.51.100.14"], lambda: sender("198.51.100.14", "bob@nxdomain.example"),
     ["ruleset"]),
    ("sender-domain-tempfail", ["198.51.100.15"], lambda: sender("198.51.100.15", "bob@servfail.example"),
     ["ruleset"]),
    ("sender-access", ["198.51.100.29"], lambda: sender("198.51.100.29", "bob@spammer.example"), ["ruleset"]),
    ("connect-access", ["203.0.113.66"],
     lambda: raw("203.0.113.66", "EHLO x.example", "MAIL FROM:<a@goodsender.example>", "QUIT"), ["ruleset"]),
    ("dnsbl", ["198.51.100.40"],
     lambda: raw("198.51.100.40", "EHLO x.example", "MAIL FROM:<a@goodsender.example>", "QUIT"), ["ruleset"]),
    ("vrfy-expn", ["198.51.100.35"],
     lambda: raw("198.51.100.35", "EHLO vrfy.example", "VRFY root", "EXPN postmaster", "QUIT"), ["vrfy_expn"]),
    ("pregreet", ["198.51.100.18"], pregreet, ["pregreet"]),
    ("helo-flood", ["198.51.100.21"],
     lambda: raw("198.51.100.21", *["HELO h%d.example" % i for i in range(4)] + ["QUIT"]), ["smtp_attack"]),
    ("auth-failure", ["198.51.100.17"], auth_fail, ["auth_failed", "no_mail"]),
    ("no-mail", ["198.51.100.25"], lambda: raw("198.51.100.25", "EHLO nomail.example", "QUIT"), ["no_mail"]),
    ("lost-connection", ["198.51.100.24"], lost, ["lost"]),
    ("connection-limit", ["198.51.100.26"], conn_limit, ["limit_exceeded"]),
    ("connection-rate", ["198.51.100.27"], conn_rate, ["limit_exceeded"]),
    ("rcpt-flood", ["198.51.100.30"], lambda: unknown_user("198.51.100.30", 5),
     ["rcpt_flood", "user_unknown"]),
    ("open-proxy", ["198.51.100.41"], lambda: raw("198.51.100.41", "GET / HTTP/1.0"), ["open_proxy"]),
    ("command-timeout", ["198.51.100.38"], timeout, ["timeout"]),
]

# ------------------------------------------------------------------ shapes
# First match wins; see Shape in realmta.py.
SHAPES = [
    Shape("relay_ptr_tempfail", r"ruleset=check_rcpt, .*, reject=4\d\d \d\.\d\.\d <[^>]*>\.\.\. Relaying temporarily "
          r"denied\. Cannot resolve PTR record", ("reject",), ("relay_denied", "no_rdns"),
          why="issue; a relay attempt refused because the PTR lookup failed: either category"),
    Shape("relay_denied", r"ruleset=check_rcpt, .*, reject=\d{3} \d\.\d\.\d <[^>]*>\.\.\. Relaying (temporarily )?"
          r"denied", ("reject",), "relay_denied", why="issue; the category is relaying"),
    Shape("limit_exceeded", r"ruleset=check_relay, .*, reject=421 4\.3\.2 (Connection rate limit exceeded|"
          r"Too many open connections)", ("reject",), "rate_limited",
          why="issue (rate and connection controls); category as docs give Postfix's limits"),
    Shape("ruleset", r"ruleset=check_(rcpt|mail|relay), arg1=", ("reject",)),
    Shape("vrfy_expn", r"\]: (VRFY|EXPN) .* \[rejected\]", ("reject", "protocol"),
          why="issue names the shape, not its kind: a refused command"),
    Shape("pregreet", r"rejecting commands from .* due to pre-greeting traffic", ("protocol",), "pregreet"),
    Shape("smtp_attack", r"possible SMTP attack: command=", ("protocol",)),
    Shape("open_proxy", r"probable open proxy: command=", ("protocol",), "non_smtp"),
    Shape("rcpt_flood", r"Possible SMTP RCPT flood, throttling", ("protocol",),
          why="the test's reading: the MTA slows a client for refused recipients (as 'too many errors')"),
    Shape("lost", r"lost input channel from ", ("lost",)),
    Shape("timeout", r"timeout waiting for input from ", ("lost",)),
    Shape("no_mail", r" did not issue MAIL/EXPN/VRFY/ETRN during connection to ", ("protocol",)),
    Shape("auth_failed", r"AUTH failure \(", ("auth_failure",), "auth"),
    Shape("from_no_rcpt", r": from=<[^>]*>, .*nrcpts=0, .*relay=", ("note",),
          why="issue: per-message from= lines are not connections; nrcpts=0 is no mail either: a note"),
    Shape("from_accept", r": from=<[^>]*>, .*nrcpts=[1-9]\d*, .*relay=", ("accept",)),
]
UNKNOWN = re.compile(r"sm-mta\[\d+\]: (\w+): <([^>]*)>\.\.\. User unknown$")
SHAPE_NAMES = {s.name for s in SHAPES}
for sc in SCENARIOS:
    assert set(sc[3]) <= SHAPE_NAMES | {"user_unknown"}, sc

caps = R.Captures("sendmail", {"syslog": syslog})
try:
    R.run_scenarios(SCENARIOS, caps, [syslog])
finally:
    sm.stop()
    dns.stop()
R.settle([syslog], quiet=0.3)
caps.scenario("shutdown")

# ------------------------------------------------------------------ checks
clients = sorted({ip for sc in SCENARIOS for ip in sc[1]})
lines = R.read_lines(syslog)
check("Sendmail logged through the test's /dev/log (%d lines)" % len(lines), len(lines) > 40)
check("every line is a syslog file line from sm-mta with the host field",
      all(re.match(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mx sm-mta\[\d+\]: ", ln) for ln in lines),
      [ln for ln in lines if not re.match(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mx sm-mta\[\d+\]: ", ln)][:3])
by_line, _ = R.parse_file(syslog)
expected = []
res = R.check_lines(lines, by_line, SHAPES, clients, skip_rx=UNKNOWN, record=expected)
R.report_lines("syslog", res, SHAPES)
seen = {k: v[0] for k, v in res.items()}

# the client of each queue id, from the line that names it
rx, canon = R.client_re(clients)
qid_ip = {}
for ln in lines:
    m = re.search(r"sm-mta\[\d+\]: (\w+): .*relay=", ln) or re.search(r"sm-mta\[\d+\]: (\w+): .*\[", ln)
    ips = {canon[x] for x in rx.findall(ln)}
    if m and len(ips) == 1:
        qid_ip.setdefault(m.group(1), ips.pop())
unknown = [(ln, UNKNOWN.search(ln)) for ln in lines if UNKNOWN.search(ln)]
bad = []
for ln, m in unknown:
    evs = by_line.get(ln, [])
    if not (len(evs) == 1 and evs[0]["kind"] == "reject" and evs[0]["category"] == "unknown_recipient"
            and evs[0]["ip"] is None and evs[0]["queue_id"] == m.group(1) and evs[0]["to"] == m.group(2)):
        bad.append("want one reject/unknown_recipient event without a client for queue id %s, got %s: %s" % (
            m.group(1), [(e["kind"], e["ip"], e["category"], e["queue_id"]) for e in evs], ln))
    if m.group(1) in qid_ip:
        seen.setdefault("user_unknown", []).append(qid_ip[m.group(1)])
check("syslog [user_unknown]: %d of %d 'QID: <addr>... User unknown' lines give one rejection by queue id" % (
    len(unknown) - len(bad), len(unknown)), unknown and not bad, "\n  " + "\n  ".join(bad[:3]))
R.check_scenarios("Sendmail", SCENARIOS, seen)

# mxwarden run followed the file: each evidence event once, User unknown with its client
want = R.event_counts(by_line, lines, ip_of=lambda e: qid_ip.get(e["queue_id"]))
got = R.wait_for(lambda: R.stored_counts(db), want, timeout=20)
check("mxwarden run stored each evidence event once, with its client (%d)" % sum(want.values()),
      got == want and sum(want.values()) > 20, {k: (got.get(k), want.get(k)) for k in set(got) | set(want)
                                                if got.get(k) != want.get(k)})
rows = R.q(db, "SELECT ip, rcpt_to FROM events WHERE kind = 'reject' AND category = 'unknown_recipient'")
want_rows = sorted((qid_ip.get(m.group(1)), m.group(2)) for _, m in unknown)
check("each 'User unknown' row carries the client of its queue id (%d)" % len(want_rows),
      sorted((ip, t if isinstance(t, str) else t.decode()) for ip, t in rows) == want_rows, (rows, want_rows))
dm.stop()
sink.stop()
expected += [(qid_ip.get(m.group(1), "?"), "user_unknown",
              "reject/unknown_recipient, ip null, queue_id %s (run: the client of that queue id)" % m.group(1), ln)
             for ln, m in unknown]
order = {ln: i for i, ln in reversed(list(enumerate(lines)))}
expected.sort(key=lambda row: order[row[3]])
caps.finish(R.scenario_notes("Sendmail", debs, SCENARIOS, SHAPES), {"syslog": expected})
print("ran in %.1f s" % (time.time() - T0))
R.finish(d, root)
