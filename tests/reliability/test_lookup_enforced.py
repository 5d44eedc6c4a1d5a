#!/usr/bin/env python3
"""test_lookup_enforced.py - lookup tells what is enforced (issue 17, item
6): a decision no blocklist can hold (a reserved range: ::a.b.c.d, the NAT64
64:ff9b::/96, ::ffff:0:a.b.c.d; a protected network; the allow list; an
observe decision) answers blocked: false with state decided_not_enforced and
its reason, in the CLI (JSON and text) and the API alike; what is enforced
answers blocked: true, state blocked; `block` and POST blocks refuse a
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


for ip in RESERVED:
    o = lookup(ip)
    check("lookup %s: the judge decided, nothing enforces it: blocked false, decided_not_enforced "
          "(reserved range)" % ip,
          o.get("decision") is not None and o.get("blocked") is False and o.get("state") == "decided_not_enforced"
          and o.get("state_reason") == "reserved range",
          {k: o.get(k) for k in ("blocked", "state", "state_reason", "error")})
o = lookup(NORMAL)
check("lookup %s: blocked, state blocked" % NORMAL,
      o.get("blocked") is True and o.get("state") == "blocked" and o.get("state_reason") is None,
      {k: o.get(k) for k in ("blocked", "state", "state_reason")})
o = lookup("203.0.113.200")
check("an address never seen: clean", o.get("blocked") is False and o.get("state") == "clean", o.get("state"))
o = lookup("10.1.2.3")
check("a protected address without a decision: allowed (protected network)",
      o.get("state") == "allowed" and o.get("state_reason") == "protected network", o.get("state"))
r = run([MXW, "export", "--db", db, "--format", "plain"])
got = {l for l in r.stdout.splitlines() if l and not l.startswith("#")}
check("export carries only the enforced decision", got == {NORMAL + "/32"}, got)
r = run([MXW, "lookup", "--db", db, RESERVED[0]])
check("lookup text: 'decided but not enforced (reserved range)'",
      "blocked:  no: decided but not enforced (reserved range)" in r.stdout, r.stdout[:300])

# a configuration that protects or allows the enforced one, or a dry run: not enforced either
for name, text, why in (("prot.ini", "[safety]\nprotected_networks = 198.51.100.0/24\n", "protected network"),
                        ("allow.ini", "[safety]\nallow = 198.51.100.9\n", "allow list")):
    cfg = os.path.join(d, name)
    with open(cfg, "w") as f:
        f.write(text)
    o = lookup(NORMAL, cfg)
    check("with %s: decided_not_enforced (%s)" % (name, why),
          o.get("blocked") is False and o.get("state") == "decided_not_enforced" and o.get("state_reason") == why,
          {k: o.get(k) for k in ("blocked", "state", "state_reason")})
cfg = os.path.join(d, "dry.ini")
with open(cfg, "w") as f:
    f.write("[rules]\ndry_run = on\n")
db2 = os.path.join(d, "dry.db")
run([MXW, "import", "-q", "-c", cfg, "--db", db2, log])
r = run([MXW, "lookup", "-c", cfg, "--db", db2, "--json", NORMAL])
o = json.loads(r.stdout) if r.returncode == 0 else {}
check("dry run: decided_not_enforced (observe)", o.get("blocked") is False and o.get("state") ==
      "decided_not_enforced" and (o.get("state_reason") or "").startswith("observe"), r.stdout[:300])

# block refuses a reserved range
for p in ("64:ff9b::/96", "::203.0.113.0/120", "64:ff9b::cb00:7105"):
    r = run([MXW, "block", "--db", db, p, "--for", "1h", "--reason", "x"])
    check("block %s refused: reserved range" % p, r.returncode == 1 and "reserved range" in r.stderr, r.stderr)

# the API says the same, and refuses the same
tok = os.path.join(d, "token")
with open(tok, "w") as f:
    f.write("0123456789abcdef0123456789abcdef\n")
os.chmod(tok, 0o600)
cfg = os.path.join(d, "web.ini")
with open(cfg, "w") as f:
    f.write("[web]\ntoken_file = %s\n" % tok)
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
