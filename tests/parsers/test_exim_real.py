#!/usr/bin/env python3
"""test_exim_real.py (suite system) - a REAL Exim (Debian's exim4-daemon-light,
unpacked with dpkg-deb -x from the cache `scripts/install-deps test` fills:
installing it would remove Postfix) in private mount, network and UTS
namespaces, listening on 192.0.2.25:25 and [2001:db8::25]:25, its
configuration in a private /etc laid over the real one, logging to its own
files (mainlog, rejectlog) and to syslog (a /dev/log of the test's own,
written as rsyslog would write it: the form where Exim's own timestamp
follows the tag). A small DNS server answers its lookups. Clients from
198.51.100.0/24, 203.0.113.0/24 and 2001:db8:6::/64 provoke every refusal
shape this Exim can be made to log (issue 13): unknown recipients, relaying,
sender verify fail and defer, HELO refusals (ACL and syntax), connect-ACL
deny, drop and rate limit, AUTH failures under two authenticator names,
synchronization errors (pregreet, pipelining), too many unrecognized /
nonmail / syntax errors, protocol errors, lost connections, no MAIL, command
timeout, too many connections, refusals at MAIL and after DATA, a DROP,
a host-list lookup that finds no address,
reverse-DNS mismatch refusals, EXPN/VRFY refusals, a junk HELO holding a
bracketed address, and an accepted message.

Checks: every scenario's shape is in the log; every line of the mainlog,
the rejectlog and the syslog form that names a client gives exactly one
event (`mxwarden parse`) with that client and the kind the line's shape
calls for (the table SHAPES, from docs/events.md and issue 13); `mxwarden
run` following mainlog and rejectlog together stores each evidence event
once (the rejectlog's copies are not counted again), as does `mxwarden
import` of the syslog form. Exit 77 only when the machine cannot run it (not
root, no namespaces, packages not in the cache)."""
import base64, os, re, shutil, smtplib, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realmta as R  # noqa: E402
from realmta import Shape, check  # noqa: E402

R.enter_namespaces()
T0 = time.time()
d = R.scratch("mxw-exim-")
os.chmod(d, 0o755)
root = os.path.join(d, "root")
debs = R.unpack(["exim4-daemon-light"], root)
EXIM = os.path.join(root, "usr/sbin/exim4")
libs = R.missing_libraries(EXIM)
if libs:
    R.skip("exim4 needs libraries that are not installed: %s (scripts/install-deps test)" % " ".join(libs))

CONF = r"""# Exim for test_exim_real.py: a private network namespace only
primary_hostname = mx.example.test
qualify_domain = example.test
domainlist local_domains = mx.example.test : example.test
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
spool_directory = @D@/spool
exim_path = @EXIM@
log_file_path = @D@/log/%slog : syslog
syslog_duplication = false
syslog_processname = exim
daemon_smtp_ports = 25
local_interfaces = <; 192.0.2.25 ; 2001:db8::25
host_lookup = *
rfc1413_hosts =
tls_advertise_hosts =
keep_environment =
queue_only = true
smtp_banner = $smtp_active_hostname ESMTP Exim $version_number $tod_full
smtp_accept_max_per_host = 3
smtp_max_unknown_commands = 3
smtp_max_synprot_errors = 3
smtp_accept_max_nonmail = 4
smtp_enforce_sync = true
smtp_receive_timeout = 3s
pipelining_connect_advertise_hosts =
helo_accept_junk_hosts = 198.51.100.34
auth_advertise_hosts = *
acl_smtp_connect = acl_check_connect
acl_smtp_helo = acl_check_helo
acl_smtp_mail = acl_check_mail
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data
log_selector = +smtp_connection +smtp_protocol_error +smtp_syntax_error +smtp_no_mail \
               +smtp_incomplete_transaction +incoming_port +incoming_interface +pid \
               +lost_incoming_connection +received_recipients +smtp_confirmation

begin acl

acl_check_connect:
  deny    hosts = 203.0.113.66
          message = Your network is denylisted
          log_message = denylisted network
  drop    hosts = 203.0.113.67
          message = Go away
          log_message = dropped network
  defer   hosts = 198.51.100.27
          ratelimit = 2 / 1m / strict / per_conn / $sender_host_address
          message = Too many connections from your IP, slow down
          log_message = connection rate limit: $sender_rate / $sender_rate_period
  # a host list naming a host without addresses: Exim looks it up during the client's connection
  warn    condition = ${if eq{$sender_host_address}{198.51.100.36}}
          hosts = partner-gone.example
  # a banner delay, so that a client talking first is caught
  accept  hosts = 198.51.100.18
          delay = 2s
  accept

acl_check_helo:
  deny    condition = ${if match{$sender_helo_name}{\N\.\N}{no}{yes}}
          message = need fully-qualified hostname
          log_message = non-FQDN HELO $sender_helo_name
  accept

acl_check_mail:
  deny    senders = *@spammer.example
          message = Sender domain blocked by local policy
  accept

acl_check_rcpt:
  accept  hosts = :
  drop    condition = ${if >{$rcpt_fail_count}{4}}
          message = Too many failed recipients, closing connection
          log_message = too many failed recipients ($rcpt_fail_count)
  accept  authenticated = *
  deny    hosts = 198.51.100.32 : 198.51.100.33
          !verify = reverse_host_lookup
          message = Client host rejected: cannot find your reverse hostname, [$sender_host_address]
  require message = relay not permitted
          domains = +local_domains
  require verify = sender
  require verify = recipient
  accept

acl_check_data:
  deny    condition = ${if match{$h_subject:}{(?i)viagra|casino bonus}}
          message = Message content rejected (spam subject)
  accept

begin routers

dnslookup:
  driver = dnslookup
  domains = ! +local_domains
  transport = remote_smtp
  no_more

localuser:
  driver = accept
  domains = +local_domains
  local_parts = alice : bob : postmaster
  transport = local_delivery

begin transports

remote_smtp:
  driver = smtp

local_delivery:
  driver = appendfile
  file = @D@/mail/${local_part_data}
  user = mail

begin retry
*  *  F,1h,2m

begin authenticators

plain_server:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and {{eq{$auth2}{relayuser}}{eq{$auth3}{S3cret}}}}
  server_set_id = $auth2

login_server:
  driver = plaintext
  public_name = LOGIN
  server_prompts = <| Username: | Password:
  server_condition = ${if and {{eq{$auth1}{relayuser}}{eq{$auth2}{S3cret}}}}
  server_set_id = $auth1
""".replace("@D@", d).replace("@EXIM@", EXIM)

try:
    R.private_etc(d, users=[("Debian-exim", 990, 990, "/nonexistent")], files={"exim4/exim4.conf": CONF})
except subprocess.CalledProcessError as e:
    R.skip("cannot lay a private /etc over the real one (overlayfs): %s" % e)
for x in ("spool", "log", "mail"):
    os.makedirs(os.path.join(d, x))
    shutil.chown(os.path.join(d, x), "Debian-exim", "Debian-exim")
mainlog, rejectlog, syslog = (os.path.join(d, x) for x in ("log/mainlog", "log/rejectlog", "syslog"))
sink = R.private_devlog(d, syslog)
dns = R.MiniDNS({
    ("mail.goodsender.example", "A"): ["198.51.100.10"],
    (R.ptr_name("198.51.100.10"), "PTR"): ["mail.goodsender.example"],
    ("goodsender.example", "MX"): ["10 mail.goodsender.example"],
    (R.ptr_name("198.51.100.32"), "PTR"): ["ptr-noaddr.example"],
    ("ptr-noaddr.example", "MX"): ["10 mail.goodsender.example"],
    (R.ptr_name("198.51.100.33"), "PTR"): ["forged.example"],
    ("forged.example", "A"): ["198.51.100.99"],
}, servfail=["servfail.example"])
dns.start()

db = os.path.join(d, "m.db")
dm = R.Daemon(db, [mainlog, rejectlog]).start()
exim = R.Proc([EXIM, "-bdf", "-oP", os.path.join(d, "exim.pid")], os.path.join(d, "exim.stderr"))
PROBE = "198.51.100.9"  # the connections that wait for the daemon come from here
up = R.wait_listen(R.SERVER4, PROBE, timeout=20) and R.wait_listen(R.SERVER6, R.CLIENT6[7], timeout=5)
if not up:
    exim.stop()
    dm.stop()
    check("Exim starts and listens", False, open(os.path.join(d, "exim.stderr"), errors="replace").read()[-1500:]
          + "".join(R.read_lines(mainlog)[-10:]) + " (kept %s)" % d)
    R.finish(d, root)


# ------------------------------------------------------------------ scenarios
# Each: a name, the client address(es), what it does, and the shapes (names
# in SHAPES) its client must have in the mainlog.

def accepted():
    s = R.smtp("198.51.100.10", "mail.goodsender.example")
    s.sendmail("bob@goodsender.example", ["alice@mx.example.test"], "Subject: hello\r\n\r\nhello\r\n")
    s.quit()


def unknown_rcpt(src="198.51.100.11", n=3):
    s = R.smtp(src)
    s.mail("bob@goodsender.example")
    for i in range(n):
        s.rcpt("nouser%d@mx.example.test" % i)
    s.quit()


def relay():
    s = R.smtp("198.51.100.12")
    s.mail("bob@goodsender.example")
    s.rcpt("someone@elsewhere.example")
    s.quit()


def sender_verify(src, domain):
    s = R.smtp(src)
    s.mail("bob@" + domain)
    s.rcpt("alice@mx.example.test")
    s.quit()


def raw(src, *cmds, banner=True):
    c = R.Raw(src, wait_banner=banner)
    for x in cmds:
        c.cmd(x)
    c.drain(3)
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


def pregreet():
    c = R.Raw("198.51.100.18", wait_banner=False)  # the banner comes after 2 s
    c.send("EHLO pregreet.example\r\n")
    c.drain(5)
    c.close()


def pipelining():
    c = R.Raw("198.51.100.19")
    c.cmd("HELO pipe.example")  # HELO: PIPELINING not advertised
    c.send("MAIL FROM:<bob@goodsender.example>\r\nRCPT TO:<alice@mx.example.test>\r\n")
    c.drain(3)
    c.close()


def repeat(src, helo, cmds):
    c = R.Raw(src)
    c.cmd("EHLO " + helo)
    for x in cmds:
        code, _ = c.cmd(x)
        if code is None or code in (421, 554):
            break
    c.drain(3)
    c.close()


def lost():
    c = R.Raw("198.51.100.24")
    c.cmd("EHLO lost.example")
    c.cmd("MAIL FROM:<bob@goodsender.example>")
    c.close()  # no QUIT


def too_many_conns():
    held = [R.Raw("198.51.100.26") for _ in range(3)]  # smtp_accept_max_per_host = 3
    R.Raw("198.51.100.26").close()  # the fourth is refused
    for c in held:
        c.cmd("QUIT")
        c.close()


def conn_rate():
    for _ in range(4):  # ratelimit 2 / 1m: the third and fourth are deferred
        c = R.Raw("198.51.100.27")
        c.cmd("QUIT")
        c.close()


def after_data():
    s = R.smtp("198.51.100.28")
    try:
        s.sendmail("bob@goodsender.example", ["alice@mx.example.test"], "Subject: cheap viagra\r\n\r\nbuy\r\n")
    except smtplib.SMTPDataError:
        pass
    s.quit()


def mail_refused():
    s = R.smtp("198.51.100.29")
    s.mail("x@spammer.example")
    s.quit()


def drop():
    s = R.smtp("198.51.100.30")
    s.mail("bob@goodsender.example")
    try:
        for i in range(8):
            s.rcpt("nobody%d@mx.example.test" % i)
    except smtplib.SMTPServerDisconnected:
        pass


def rdns(src):
    s = R.smtp(src)
    s.mail("bob@goodsender.example")
    s.rcpt("alice@mx.example.test")
    s.quit()


def junk_helo():
    # helo_accept_junk_hosts: the HELO holds a bracketed address of its own
    raw("198.51.100.34", "HELO x) [192.0.2.66] (y", "MAIL FROM:<bob@goodsender.example>",
        "RCPT TO:<nouser@mx.example.test>", "QUIT")


def timeout():
    c = R.Raw("198.51.100.38")
    c.cmd("EHLO slow.example")
    c.drain(6)  # smtp_receive_timeout = 3s
    c.close()


SCENARIOS = [
    ("probe", [PROBE, R.CLIENT6[7]], lambda: R.Raw(PROBE).close(), ["connect", "lost", "no_mail"]),
    ("accepted", ["198.51.100.10"], accepted, ["connect", "accept", "closed_quit"]),
    ("unknown-recipient", ["198.51.100.11"], unknown_rcpt,
     ["connect", "no_rdns", "rcpt_refused", "incomplete", "closed_quit"]),
    ("relay", ["198.51.100.12"], relay, ["relay_denied"]),
    ("sender-verify-fail", ["198.51.100.13"], lambda: sender_verify("198.51.100.13", "nxdomain.example"),
     ["sender_verify", "rcpt_refused"]),
    ("sender-verify-defer", ["198.51.100.14"], lambda: sender_verify("198.51.100.14", "servfail.example"),
     ["sender_verify", "rcpt_refused"]),
    ("helo-acl", ["198.51.100.15"], lambda: raw("198.51.100.15", "EHLO localhost", "QUIT"), ["helo_refused"]),
    ("helo-syntax", ["198.51.100.16"], lambda: raw("198.51.100.16", "EHLO bad..name!!", "QUIT"),
     ["helo_refused"]),
    ("connect-acl-deny", ["203.0.113.66"], lambda: raw("203.0.113.66"), ["connect_acl"]),
    ("connect-acl-drop", ["203.0.113.67"], lambda: raw("203.0.113.67"), ["connect_acl", "closed_drop"]),
    ("auth-failure", ["198.51.100.17"], auth_fail, ["auth_failed"]),
    ("pregreet", ["198.51.100.18"], pregreet, ["pregreet"]),
    ("pipelining", ["198.51.100.19"], pipelining, ["pipelining"]),
    ("unrecognized-commands", ["198.51.100.20"],
     lambda: repeat("198.51.100.20", "unk.example", ["XYZZY%d" % i for i in range(6)]),
     ["syntax_error", "too_many"]),
    ("nonmail-commands", ["198.51.100.21"],
     lambda: repeat("198.51.100.21", "nonmail.example", ["HELP", "NOOP"] * 4), ["too_many"]),
    ("syntax-errors", ["198.51.100.22"],
     lambda: repeat("198.51.100.22", "syn.example", ["MAIL FROM:bad address %d" % i for i in range(6)]),
     ["syntax_error", "too_many"]),
    ("protocol-errors", ["198.51.100.23"],
     lambda: raw("198.51.100.23", "EHLO proto.example", "RCPT TO:<alice@mx.example.test>", "DATA", "QUIT"),
     ["protocol_error"]),
    ("lost-connection", ["198.51.100.24"], lost, ["unexpected_disconnect", "incomplete"]),
    ("no-mail", ["198.51.100.25"], lambda: raw("198.51.100.25", "EHLO nomail.example", "QUIT"), ["no_mail"]),
    ("too-many-connections", ["198.51.100.26"], too_many_conns, ["too_many_connections"]),
    ("connection-rate", ["198.51.100.27"], conn_rate, ["connect_acl"]),
    ("rejected-after-data", ["198.51.100.28"], after_data, ["after_data"]),
    ("mail-refused", ["198.51.100.29"], mail_refused, ["mail_refused"]),
    ("drop-in-rcpt-acl", ["198.51.100.30"], drop, ["rcpt_refused", "closed_drop"]),
    ("rdns-no-address", ["198.51.100.32"], lambda: rdns("198.51.100.32"), ["rdns_mismatch"]),
    ("rdns-mismatch", ["198.51.100.33"], lambda: rdns("198.51.100.33"), ["rdns_mismatch"]),
    ("junk-helo", ["198.51.100.34"], junk_helo, ["rcpt_refused"]),
    ("vrfy-expn", ["198.51.100.35"],
     lambda: raw("198.51.100.35", "EHLO vrfy.example", "VRFY root", "EXPN postmaster", "QUIT"),
     ["vrfy_expn"]),
    ("ipv6-unknown-recipient", [R.CLIENT6[0]], lambda: unknown_rcpt(R.CLIENT6[0], 2), ["rcpt_refused"]),
    ("command-timeout", ["198.51.100.38"], timeout, ["command_timeout"]),
    ("hostlist-lookup", ["198.51.100.36"], lambda: raw("198.51.100.36", "EHLO list.example", "QUIT"),
     ["no_address"]),
]

# ------------------------------------------------------------------ shapes
# First match wins. kinds: what the line may give (() = no event);
# category: checked where docs/events.md or issue 13 names it.
SHAPES = [
    # the rejectlog's copy of the headers (in syslog: a continuation "[n\m] " of the refusal's message)
    Shape("rejectlog_header", r"(^|\]: \[\d+\\\d+\] )(\S |\s+)?Received: from ", (),
          why="docs: rejectlog headers give no event"),
    Shape("pregreet", r"SMTP protocol synchronization error \(input sent without waiting for greeting\)",
          ("protocol",), "pregreet"),
    Shape("pipelining", r"SMTP protocol synchronization error \(next input sent too soon", ("protocol",),
          "pipelining"),
    Shape("too_many", r"SMTP call from .* dropped: too many ", ("protocol",), why="issue"),
    Shape("syntax_error", r"SMTP syntax error in \"", ("protocol",), why="issue (as SMTP protocol error)"),
    Shape("protocol_error", r"SMTP protocol error in \"", ("protocol",), why="issue"),
    Shape("auth_failed", r" authenticator failed for ", ("auth_failure",), "auth"),
    Shape("connect_acl", r"rejected connection in \"connect\" ACL", ("reject",), why="issue"),
    Shape("too_many_connections", r"Connection from .* refused: too many connections", ("reject",),
          "rate_limited"),
    Shape("sender_verify", r" sender verify (fail|defer) for <", ("reject", "note"),
          why="issue names the shape, not its kind: a refusal or a note on the refusal that follows"),
    Shape("relay_denied", r" rejected RCPT <[^>]*>: relay not permitted", ("reject",), "relay_denied",
          why="docs: reject; the category is relaying"),
    Shape("rdns_mismatch", r" rejected RCPT <[^>]*>: host lookup failed \(.* does not match any IP address",
          ("reject",), why="issue (reverse DNS does not match), refused by the ACL"),
    Shape("rcpt_refused", r" (temporarily )?rejected RCPT <", ("reject",)),
    Shape("mail_refused", r" rejected MAIL <", ("reject",)),
    Shape("after_data", r" rejected after DATA", ("reject",)),
    Shape("helo_refused", r" rejected (EHLO or HELO|EHLO|HELO) ", ("reject",), "helo",
          why="issue; the category is helo"),
    Shape("vrfy_expn", r"( rejected (VRFY|EXPN) | unqualified verify rejected: )", ("reject", "protocol"),
          why="the test's reading, as for Sendmail's EXPN/VRFY (issue): a refused command"),
    Shape("closed_drop", r"SMTP connection from .* closed by DROP in ACL", ("disconnect", "lost"),
          why="issue names the shape; the server ended the connection"),
    Shape("closed_quit", r"SMTP connection from .* closed by QUIT", ("disconnect",)),
    Shape("lost", r"SMTP connection from .* lost( |$)", ("lost",)),
    Shape("connect", r"SMTP connection from .*\(TCP/IP connection count = \d+\)", ("connect",)),
    Shape("no_mail", r"no MAIL in SMTP connection from ", ("protocol",),
          why="issue; kind as docs give Sendmail's 'did not issue MAIL'"),
    Shape("unexpected_disconnect", r"unexpected disconnection while reading SMTP command from ", ("lost",),
          why="issue"),
    Shape("command_timeout", r"SMTP command timeout on connection from ", ("lost",),
          why="the test's reading, as docs give Postfix 'timeout after' and Sendmail 'timeout waiting'"),
    Shape("incomplete", r" incomplete transaction \(", ("note",),
          why="the test's reading: a signal about the transaction, not a refusal"),
    Shape("no_address", r"no IP address found for host \S+ \(during SMTP connection from ", ("note",), "no_rdns",
          why="issue: a no-rDNS signal, not a refusal (in Exim 4.96 it comes from a host list naming a host "
              "without addresses, looked up during the client's connection)"),
    Shape("no_rdns", r"no host name found for IP address ", ("note",), "no_rdns",
          why="issue + base: a no-rDNS signal (EV_NOTE)"),
    Shape("accept", r" <= \S+ H=", ("accept",)),
]
SHAPE_NAMES = {s.name for s in SHAPES}
for sc in SCENARIOS:
    assert set(sc[3]) <= SHAPE_NAMES, sc

caps = R.Captures("exim", {"mainlog": mainlog, "rejectlog": rejectlog, "syslog": syslog})
try:
    R.run_scenarios(SCENARIOS, caps, [mainlog, syslog])
finally:
    exim.stop()
    dns.stop()
R.settle([mainlog, syslog], quiet=0.3)
caps.scenario("shutdown")

# ------------------------------------------------------------------ checks
clients = sorted({ip for sc in SCENARIOS for ip in sc[1]})
main_lines, reject_lines, sys_lines = R.read_lines(mainlog), R.read_lines(rejectlog), R.read_lines(syslog)
check("Exim wrote its mainlog, rejectlog and syslog (%d, %d, %d lines)" % (
    len(main_lines), len(reject_lines), len(sys_lines)), main_lines and reject_lines and sys_lines)
# a message of several lines goes to syslog as several, each "[n\m] " after the tag
sys_msgs = {re.sub(r"^\[\d+\\\d+\] ", "", ln.split("]: ", 1)[1]) for ln in sys_lines if "]: " in ln}
check("the syslog form carries every mainlog line, after Exim's tag",
      all(ln in sys_msgs for ln in main_lines), [ln for ln in main_lines if ln not in sys_msgs][:3])

seen, expected = {}, {}
for label, path, lines in (("mainlog", mainlog, main_lines), ("rejectlog", rejectlog, reject_lines),
                           ("syslog", syslog, sys_lines)):
    by_line, _ = R.parse_file(path)
    res = R.check_lines(lines, by_line, SHAPES, clients, record=expected.setdefault(label, []))
    R.report_lines(label, res, SHAPES)
    if label == "mainlog":
        seen, main_by_line = {k: v[0] for k, v in res.items()}, by_line

R.check_scenarios("Exim", SCENARIOS, seen)

# mxwarden run followed mainlog and rejectlog: each evidence event once
want = R.event_counts(main_by_line, main_lines)
got = R.wait_for(lambda: R.stored_counts(db), want, timeout=20)
check("mxwarden run (mainlog + rejectlog) stored each evidence event once (%d)" % sum(want.values()),
      got == want and sum(want.values()) > 30, {k: (got.get(k), want.get(k)) for k in set(got) | set(want)
                                                if got.get(k) != want.get(k)})
dm.stop()
db2 = os.path.join(d, "sys.db")
r = subprocess.run([R.MXW, "import", "--db", db2, syslog], capture_output=True, text=True, timeout=120)
got2 = R.stored_counts(db2)
check("mxwarden import of the syslog form stores the same evidence", r.returncode == 0 and got2 == want,
      (r.stderr[-300:], {k: (got2.get(k), want.get(k)) for k in set(got2) | set(want) if got2.get(k) != want.get(k)}))

sink.stop()
caps.finish(R.scenario_notes("Exim", debs, SCENARIOS, SHAPES), expected)
print("ran in %.1f s" % (time.time() - T0))
R.finish(d, root)
