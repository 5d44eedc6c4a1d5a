#!/usr/bin/env python3
"""test_agg_cli.py - the aggregator through the real binary:

  * import of corpus/real/postfix-3.7-loopback.log blocks every abusive
    scenario sender and no legitimate one (protected_networks = none);
  * the same decisions whether the log is imported in one go, in two parts
    with a restart between them (state rebuilt from the database), or
    followed line by line by `mxwarden run`;
  * `lookup --json` answers with the decision, the sentence, evidence lines,
    history and recent counts; an unblocked sender says blocked: false;
  * `block` / `unblock` record manual decisions, refuse protected networks,
    and a running daemon picks them up.
"""
import ipaddress
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

MXW = os.environ["MXWARDEN"]
SHARED = os.environ["MXW_SHARED"]
BUILD = os.environ["MXW_BUILD"]
DUMP = os.path.join(BUILD, "tests", "aggregator", "agg_dbdump")
LOG = os.path.join(SHARED, "corpus", "real", "postfix-3.7-loopback.log")
SCEN = json.load(open(os.path.join(SHARED, "corpus", "real", "scenarios.json")))
ENV = dict(os.environ, MXWARDEN_NOW="2026-11-27T20:40:00Z")
fails = []


def check(cond, msg):
    if not cond:
        fails.append(msg)
        print("FAIL:", msg)


def run(args, ok=(0,), env=None, **kw):
    p = subprocess.run([MXW] + args, capture_output=True, text=True, env=env or ENV, **kw)
    if p.returncode not in ok:
        print(p.stdout, p.stderr)
        raise SystemExit("mxwarden %s: exit %d" % (" ".join(args), p.returncode))
    return p


def dump(db):
    out = subprocess.run([DUMP, db], capture_output=True, text=True, check=True).stdout
    return sorted(tuple(l.split()[:5]) for l in out.splitlines() if l.split()[6] == "0")


with tempfile.TemporaryDirectory(prefix="mxw-agg-") as tmp:
    cfg = os.path.join(tmp, "cfg.ini")
    with open(cfg, "w") as f:
        f.write("[safety]\nprotected_networks = none\n")

    # -- import in one go
    db_a = os.path.join(tmp, "a.db")
    run(["import", "-q", "-c", cfg, "--db", db_a, LOG])
    a = dump(db_a)
    nets = [ipaddress.ip_network(d[0]) for d in a]
    print("import: %d decisions" % len(a))
    for ip, s in SCEN["ips"].items():
        addr = ipaddress.ip_address(ip)
        covered = any(addr in n for n in nets if n.version == addr.version)
        if s["abusive"]:
            check(covered, "abusive %s (%s) not blocked" % (ip, s["behaviour"]))
        else:
            check(not covered, "legitimate %s (%s) blocked" % (ip, s["behaviour"]))
    for cidr in ("127.40.1.0/24", "127.77.1.0/24", "127.89.0.0/24"):
        check(any(d[0] == cidr and d[1] == "class" for d in a), "distributed class %s not blocked as a class" % cidr)

    # -- two parts with a restart in between
    lines = open(LOG, "rb").read().split(b"\n")
    half = len(lines) // 2
    p1, p2 = os.path.join(tmp, "part1.log"), os.path.join(tmp, "part2.log")
    open(p1, "wb").write(b"\n".join(lines[:half]) + b"\n")
    open(p2, "wb").write(b"\n".join(lines[half:]))
    db_b = os.path.join(tmp, "b.db")
    run(["import", "-q", "-c", cfg, "--db", db_b, p1])
    run(["import", "-q", "-c", cfg, "--db", db_b, p2])
    b = dump(db_b)
    check(a == b, "import in two parts with a restart differs: only one-go %s, only two-part %s" % (
        sorted(set(a) - set(b))[:5], sorted(set(b) - set(a))[:5]))

    # -- followed line by line
    db_c = os.path.join(tmp, "c.db")
    live = os.path.join(tmp, "live.log")
    open(live, "wb").close()
    # the wall clock starts at the log's first line, as when the log is being
    # written: the judge's clock is log time, and a drained follow moves it
    # on to the wall clock (never back), so a wall clock after the log would
    # decide at its own time (aggregator.h, "Time")
    d = subprocess.Popen([MXW, "run", "-c", cfg, "--db", db_c, "--follow", live, "--listen", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(ENV, MXWARDEN_NOW="2026-11-27T20:23:14Z"))
    time.sleep(0.5)
    with open(live, "ab") as f:
        for i, l in enumerate(lines):
            if not l:
                continue
            f.write(l + b"\n")
            if i % 200 == 0:
                f.flush()
                time.sleep(0.02)
    want_lines = sum(1 for l in lines if l)
    deadline = time.time() + 90
    while time.time() < deadline:
        time.sleep(0.5)
        p = subprocess.run([MXW, "stats", "--db", db_c, "--json"], capture_output=True, text=True, env=ENV)
        if p.returncode == 0 and json.loads(p.stdout)["lines_read"] >= want_lines:
            break
    time.sleep(1.5)  # the batch commits within batch_ms
    # a running daemon picks up a manual block
    run(["block", "-c", cfg, "--db", db_c, "203.0.113.0/24", "--for", "1h", "--reason", "test"])
    time.sleep(4)
    d.send_signal(signal.SIGTERM)
    out, err = d.communicate(timeout=20)
    c = dump(db_c)
    check(a == c, "followed differs from imported: only import %s, only follow %s" % (
        sorted(set(a) - set(c))[:5], sorted(set(c) - set(a))[:5]))
    check("decisions changed in the database" in err, "the daemon did not pick up the manual block")

    # -- lookup
    o = json.loads(run(["lookup", "-c", cfg, "--db", db_a, "--json", "127.30.0.1"]).stdout)
    # the capture's senders are on loopback: decided (protected_networks = none), but no blocklist can
    # hold 127/8 (and no [output] is configured here): the reserved range is the reason given
    check(o["blocked"] is False and o["decision"] and o.get("state") == "decided_not_enforced" and
          o.get("state_reason") == "reserved range",
          "lookup 127.30.0.1: got blocked %s, state %s (%s)" % (o["blocked"], o.get("state"), o.get("state_reason")))
    dec = o["decision"] or {}
    for k in ("prefix", "scope", "rule", "reason", "score", "response", "since", "until", "evidence", "counts"):
        check(k in dec, "lookup decision lacks %s" % k)
    # the retries made the decision; the MTA's rate limit, hit later, made it drop (an upgrade)
    ups = [ch for ch in dec.get("changes") or [] if ch.get("change") == "upgrade"]
    check(dec.get("reason", "").startswith("retried") or
          (dec.get("rule") == "flood" and ups and ups[0]["from"] == "reject" and
           dec.get("reason", "").startswith("hit the MTA's connection rate limit")),
          "lookup reason: got %r, changes %r" % (dec.get("reason"), dec.get("changes")))
    check(any("127.30.0.1" in l for l in dec.get("evidence", [])), "lookup evidence lines lack the address")
    check(isinstance(o["history"], list) and o["recent"]["total"] > 0, "lookup history/recent")
    # the session: smtpd[1279] refused 4 RCPTs 550 5.1.1 in one connection (rcpt=0/4 commands=3/7)
    o = json.loads(run(["lookup", "-c", cfg, "--db", db_a, "--json", "127.40.1.1"]).stdout)
    dec = o["decision"] or {}
    w = ((dec.get("sessions") or {}).get("worst")) or {}
    check((w.get("rcpts"), w.get("rejected"), w.get("unknown_recipients"), w.get("code"), w.get("dsn"),
           w.get("commands")) == (4, 4, 4, 550, "5.1.1", [3, 7]),
          "lookup 127.40.1.1: decision.sessions.worst: got %s" % w)
    check("one connection had 4 RCPTs, 4 rejected 550 5.1.1" in dec.get("reason", ""),
          "lookup 127.40.1.1 reason: got %r" % dec.get("reason"))
    p = run(["lookup", "-c", cfg, "--db", db_a, "127.40.1.1"])
    check("worst connection: 4 RCPTs, 4 rejected (4 unknown)" in p.stdout, "lookup text: got %r" % p.stdout)
    o = json.loads(run(["lookup", "-c", cfg, "--db", db_a, "--json", "127.10.0.5"]).stdout)
    check(o["blocked"] is False and o["decision"] is None, "lookup of a good sender: got %s" % o["decision"])
    p = run(["lookup", "--db", db_a, "not-an-ip"], ok=(2,))
    check("not an address" in p.stderr, "lookup of garbage: got %r" % p.stderr)

    # -- dry run: decided and explained, flagged only
    cfg_dry = os.path.join(tmp, "dry.ini")
    with open(cfg_dry, "w") as f:
        f.write("[rules]\ndry_run = on\n[safety]\nprotected_networks = none\n")
    db_d = os.path.join(tmp, "d.db")
    run(["import", "-q", "-c", cfg_dry, "--db", db_d, LOG])
    dd = dump(db_d)
    check(len(dd) == len(a) and all(x[3] == "observe" for x in dd),
          "dry run: got %d decisions, responses %s" % (len(dd), sorted(set(x[3] for x in dd))))
    o = json.loads(run(["lookup", "-c", cfg_dry, "--db", db_d, "--json", "127.30.0.1"]).stdout)
    check(o["blocked"] is False and o["decision"] and o["decision"]["response"] == "observe",
          "dry run lookup: got blocked %s decision %s" % (o["blocked"], (o["decision"] or {}).get("response")))

    # -- block / unblock
    p = run(["block", "-c", cfg, "--db", db_a, "198.51.100.0/24", "--for", "2d", "--reason", "wave\x1b[31m"])
    check("blocked 198.51.100.0/24 for 2d" in p.stdout, "block output: %r" % p.stdout)
    o = json.loads(run(["lookup", "-c", cfg, "--db", db_a, "--json", "198.51.100.9"]).stdout)
    check(o["state"] == "decided_not_enforced" and o["decision"]["manual"] and o["decision"]["rule"] == "manual",
          "manual block not in force")
    check("\x1b" not in o["decision"]["reason"], "control character stored in a manual reason")
    check(o["decision"]["created_by"].startswith("cli:"), "manual block without its author")
    p = run(["block", "--db", db_a, "10.1.2.3", "--for", "1h", "--reason", "x"], ok=(1,))
    check("protected network" in p.stderr, "block of a protected address: got %r" % p.stderr)
    run(["block", "--db", db_a, "198.51.100.0/24", "--reason", "x"], ok=(2,))  # --for missing
    p = run(["unblock", "-c", cfg, "--db", db_a, "198.51.100.0/24", "--reason", "false alarm"])
    check("ended 1 decision" in p.stdout, "unblock output: %r" % p.stdout)
    o = json.loads(run(["lookup", "-c", cfg, "--db", db_a, "--json", "198.51.100.9"]).stdout)
    check(not o["blocked"] and o["history"] and o["history"][0]["end_reason"] == "false alarm",
          "after unblock: got %s" % json.dumps(o)[:300])
    run(["unblock", "-c", cfg, "--db", db_a, "198.51.100.0/24", "--reason", "again"], ok=(1,))

    # -- Sendmail: rejections logged before the line naming the client get its
    # address, in the database too, whether imported in one go or in two parts
    # with a kill -9 between (no saved state: the replay holds them again)
    SM = os.path.join(SHARED, "corpus", "generated", "sendmail-10k.log")
    env_sm = dict(ENV, MXWARDEN_NOW="2026-11-27T00:30:00Z")

    def rows(db):
        import sqlite3
        con = sqlite3.connect(db)
        r = con.execute("SELECT count(*), sum(ip IS NULL), count(DISTINCT ip) FROM events"
                        " WHERE category = 'unknown_recipient'").fetchone()
        con.close()
        return r

    db_s1 = os.path.join(tmp, "s1.db")
    run(["import", "-q", "--db", db_s1, SM], env=env_sm)
    want_unknown = sum(1 for l in open(SM, errors="replace") if l.rstrip().endswith("... User unknown"))
    r1 = rows(db_s1)
    check(r1[0] == want_unknown and r1[1] == 0, "sendmail import: unknown_recipient rows/without client: got %s, "
          "want %d/0" % (r1[:2], want_unknown))
    st = json.loads(run(["stats", "--db", db_s1, "--json"], env=env_sm).stdout)
    check(st.get("attribution", {}).get("attributed") == want_unknown,
          "stats attribution: got %s, want attributed %d" % (st.get("attribution"), want_unknown))
    sm = open(SM, "rb").read().split(b"\n")
    cut = next(i for i, l in enumerate(sm) if i > len(sm) // 3 and l.endswith(b"... User unknown")) + 1
    s1, s2 = os.path.join(tmp, "sm1.log"), os.path.join(tmp, "sm2.log")
    open(s1, "wb").write(b"\n".join(sm[:cut]) + b"\n")
    open(s2, "wb").write(b"\n".join(sm[cut:]))
    db_s2 = os.path.join(tmp, "s2.db")
    run(["import", "-q", "--db", db_s2, s1], env=env_sm)
    held = rows(db_s2)[1]
    check(held > 0, "sendmail part 1: no row waits for its client (bad cut)")
    # as after a kill -9 before any checkpoint: no saved state at all
    if os.path.exists(db_s2 + ".aggstate"):
        os.unlink(db_s2 + ".aggstate")
    con = sqlite3.connect(db_s2)
    con.execute("DELETE FROM agg_checkpoint")
    con.commit()
    con.close()
    run(["import", "-q", "--db", db_s2, s2], env=env_sm)
    check(rows(db_s2) == r1, "sendmail in two parts with a crash: got %s, want %s" % (rows(db_s2), r1))
    # Without any saved state the replay knows the evidence rows and the
    # accepted mail per hour, not each connection's: a retry may be judged a
    # few seconds apart. Every difference must concern a planted abuser, and
    # no legitimate sender of the truth file may be blocked.
    truth = json.load(open(SM.replace(".log", ".truth.json")))
    abusive = {ipaddress.ip_address(x["ip"]) for x in truth["abusive_ips"]}
    abusive |= {ipaddress.ip_address(m["ip"]) for c in truth["abusive_classes"] for m in c["members"]}
    legit = [ipaddress.ip_network(x["cidr_or_ip"]) for x in truth["legit_noisy"]]
    d1, d2 = set(dump(db_s1)), set(dump(db_s2))
    odd = [x for x in d1 ^ d2 if not (ipaddress.ip_network(x[0]).prefixlen in (32, 128) and
                                      ipaddress.ip_network(x[0]).network_address in abusive)]
    check(not odd, "sendmail in two parts: decisions differ on senders that are not planted abusers: %s" % odd[:5])
    hit = [x for x in d2 if any(ipaddress.ip_network(x[0]).overlaps(n) for n in legit
                                if n.version == ipaddress.ip_network(x[0]).version)]
    check(not hit, "sendmail in two parts: legitimate senders blocked: %s" % hit[:5])
    o = json.loads(run(["lookup", "--db", db_s1, "--json", "42.147.116.84"], env=env_sm).stdout)
    ev = (o["decision"] or {}).get("evidence", [])
    check(any(l.endswith("... User unknown") for l in ev), "sendmail lookup: no User unknown line in %s" % ev)

if fails:
    print("%d failure(s)" % len(fails))
    sys.exit(1)
print("ok")
