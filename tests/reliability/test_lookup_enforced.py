#!/usr/bin/env python3
"""test_lookup_enforced.py - lookup tells what is enforced (issue 17, item
6), in the lookup contract of issue 16 (docs/api.md): a decision no
blocklist can hold (a reserved range: ::a.b.c.d, the NAT64 64:ff9b::/96,
::ffff:0:a.b.c.d) answers blocked: false, state decided_not_enforced, reason
"reserved range", with an [output] and without one (it wins over "no
output"); a protected network or the allow list answers allowed with the
reason; an observe decision and a dry run decided_not_enforced with theirs;
what a blocklist file holds answers blocked: true, state blocked; the same
in the CLI (JSON and text) and the API; `block` and POST blocks refuse a
reserved range."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

d = scratch("mxw-lookup-")
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")


def harvest(ip, base, t):
    text = ""
    for c in range(3):
        when = stamp(t + c * 60)
        for k in range(6):
            text += seq_line(base + c * 6 + k, ip=ip, when=when)
        text += disconnect_line(ip, when, 6)
    return text


RESERVED = ["64:ff9b::cb00:7105", "::203.0.113.6", "::ffff:0:cb00:7107"]
NORMAL = "198.51.100.9"
t0 = time.time() - 900
append(log, "".join(harvest(ip, 100 * i, t0) for i, ip in enumerate(RESERVED + [NORMAL])), "w")
r = run([MXW, "import", "-q", "--db", db, log])
check("import", r.returncode == 0, r.stderr[-300:])


def lookup(q, cfg=None):
    args = [MXW, "lookup", "--db", db, "--json", q] + (["-c", cfg] if cfg else [])
    r = run(args)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"error": r.stderr[-300:]}


def config(name, text):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def write_output(cfg, db_path=None):
    """What `run` would write to the [output] of cfg: the file lookup reads."""
    r = run([MXW, "export", "-c", cfg, "--db", db_path or db, "--format", "plain", "-o", output_of[cfg]])
    check("export -o %s" % os.path.basename(output_of[cfg]), r.returncode == 0, r.stderr[-300:])


output_of = {}


def with_output(name, text=""):
    """A configuration with one [output fw] of its own (its file written by write_output)."""
    path = os.path.join(d, name + ".list")
    cfg = config(name, text + "\n[output fw]\nformat = plain\npath = %s\n" % path)
    output_of[cfg] = path
    return cfg


# "blocked" means enforced: a blocklist file holds it (the lookup contract, docs/api.md)
base = with_output("base.ini")
write_output(base)
for ip in RESERVED:
    o = lookup(ip, base)
    check("lookup %s: the judge decided, nothing enforces it: blocked false, decided_not_enforced "
          "(reserved range)" % ip,
          o.get("decision") is not None and o.get("blocked") is False and o.get("state") == "decided_not_enforced"
          and o.get("state_reason") == "reserved range" and (o.get("not_enforced") or {}).get("reason") == "reserved",
          {k: o.get(k) for k in ("blocked", "state", "state_reason", "not_enforced", "error")})
    o = lookup(ip)
    check("lookup %s without any [output]: still 'reserved range', not 'no output'" % ip,
          o.get("blocked") is False and o.get("state") == "decided_not_enforced"
          and o.get("state_reason") == "reserved range",
          {k: o.get(k) for k in ("blocked", "state", "state_reason", "error")})
o = lookup(NORMAL, base)
check("lookup %s: blocked, state blocked, enforced by the output whose file holds it" % NORMAL,
      o.get("blocked") is True and o.get("state") == "blocked" and o.get("state_reason") is None
      and o.get("enforced_by") == ["fw"], {k: o.get(k) for k in ("blocked", "state", "state_reason", "enforced_by")})
o = lookup(NORMAL)
check("lookup %s without any [output]: decided, not enforced (no output)" % NORMAL,
      o.get("blocked") is False and o.get("state") == "decided_not_enforced" and o.get("state_reason") == "no output",
      {k: o.get(k) for k in ("blocked", "state", "state_reason")})
o = lookup("203.0.113.200", base)
check("an address never seen: never_seen, not blocked", o.get("blocked") is False and o.get("state") == "never_seen",
      o.get("state"))
o = lookup("::203.0.113.200", base)
check("a reserved address without a decision: allowed (reserved range)",
      o.get("blocked") is False and o.get("state") == "allowed" and o.get("state_reason") == "reserved range",
      {k: o.get(k) for k in ("state", "state_reason")})
o = lookup("10.1.2.3", base)
check("a protected address without a decision: allowed (protected network)",
      o.get("state") == "allowed" and o.get("state_reason") == "protected network", o.get("state"))
r = run([MXW, "export", "--db", db, "--format", "plain"])
got = {l for l in r.stdout.splitlines() if l and not l.startswith("#")}
check("export carries only the enforced decision", got == {NORMAL + "/32"}, got)
r = run([MXW, "lookup", "-c", base, "--db", db, RESERVED[0]])
check("lookup text: 'state: decided_not_enforced (reserved range)'",
      "state:    decided_not_enforced (reserved range)" in r.stdout and "reserved range" in r.stdout, r.stdout[:300])

# a configuration that protects or allows the enforced one: its blocklist leaves it out, and lookup
# says what lets it through, naming the decision
for name, text, why in (("prot.ini", "[safety]\nprotected_networks = 198.51.100.0/24\n", "protected network"),
                        ("allow.ini", "[safety]\nallow = 198.51.100.9\n", "allow list")):
    cfg = with_output(name, text)
    write_output(cfg)
    o = lookup(NORMAL, cfg)
    check("with %s: not blocked, allowed (%s), the decision still named" % (name, why),
          o.get("blocked") is False and o.get("state") == "allowed" and o.get("state_reason") == why
          and o.get("decision") is not None and (o.get("not_enforced") or {}).get("reason") == "allowed",
          {k: o.get(k) for k in ("blocked", "state", "state_reason", "not_enforced")})
# an observe decision: flagged, in no blocklist
r = run([MXW, "block", "--db", db, "198.51.100.77", "--for", "1h", "--reason", "watch", "--response", "observe"])
check("block --response observe", r.returncode == 0, r.stderr[-300:])
o = lookup("198.51.100.77", base)
check("an observe decision: decided_not_enforced (observe)", o.get("blocked") is False and o.get("state") ==
      "decided_not_enforced" and (o.get("state_reason") or "").startswith("observe"),
      {k: o.get(k) for k in ("blocked", "state", "state_reason")})
# a dry run: the judge's decisions reach no blocklist
dry = with_output("dry.ini", "[rules]\ndry_run = on\n")
db2 = os.path.join(d, "dry.db")
run([MXW, "import", "-q", "-c", dry, "--db", db2, log])
write_output(dry, db2)
r = run([MXW, "lookup", "-c", dry, "--db", db2, "--json", NORMAL])
o = json.loads(r.stdout) if r.returncode == 0 else {}
check("dry run: decided_not_enforced (dry run)", o.get("blocked") is False and o.get("state") ==
      "decided_not_enforced" and o.get("state_reason") == "dry run" and o.get("decision") is not None, r.stdout[:300])

# block refuses a reserved range
for p in ("64:ff9b::/96", "::203.0.113.0/120", "64:ff9b::cb00:7105"):
    r = run([MXW, "block", "--db", db, p, "--for", "1h", "--reason", "x"])
    check("block %s refused: reserved range" % p, r.returncode == 1 and "reserved range" in r.stderr, r.stderr)

# the API says the same, and refuses the same
tok = os.path.join(d, "token")
with open(tok, "w") as f:
    f.write("0123456789abcdef0123456789abcdef\n")
os.chmod(tok, 0o600)
cfg = with_output("web.ini", "[web]\ntoken_file = %s\n" % tok)
write_output(cfg)
dm = Daemon(db, [], conf=cfg).start()
st, o = get_json(dm.port, "/api/v1/lookup/" + RESERVED[0])
check("API lookup %s: blocked false, decided_not_enforced (reserved range)" % RESERVED[0],
      st == 200 and o.get("blocked") is False and o.get("state") == "decided_not_enforced"
      and o.get("state_reason") == "reserved range", (st, o and {k: o.get(k) for k in ("blocked", "state")}))
st, o = get_json(dm.port, "/api/v1/lookup/" + NORMAL)
check("API lookup %s: blocked" % NORMAL, st == 200 and o.get("blocked") is True and o.get("state") == "blocked",
      (st, o and o.get("state")))
st, h, body = dm.http("POST", "/api/v1/blocks", headers={"Authorization": "Bearer 0123456789abcdef0123456789abcdef",
                                                          "Content-Type": "application/json"},
                      body=b'{"prefix": "64:ff9b::/96", "duration": "1h", "reason": "t"}')
check("API POST blocks on 64:ff9b::/96: 403, reserved range", st == 403 and b"reserved range" in body, (st, body))
dm.stop()
shutil.rmtree(d, ignore_errors=True)
done()
