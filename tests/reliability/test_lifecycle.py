"""test_lifecycle.py - the life of a decision through `mxwarden run` (issue 5):
an address whose decision is in force keeps misbehaving and crosses the rule
with a higher score: the same decision is upgraded defer -> reject -> drop
(one decision row, its history of changes, audit rows, until never earlier),
the emitters see the change (an output with min_response = reject gets the
address only after the upgrade), `lookup --json` shows the current response,
until and the upgrades, and `unblock` of the upgraded decision ends it
everywhere. Relay probing (a clear attack, severity 4: the one kind of rule
that may drop a first offender), each attempt a connection of its own:
relay_count 2 (2 attempts = score 4), score_reject 6, score_drop 10."""
import json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403


def retry_line(n):
    """A relay attempt from 198.51.100.50 in a connection of its own."""
    return ("%s mx postfix/smtpd[%d]: NOQUEUE: reject: RCPT from unknown[198.51.100.50]: 554 5.7.1 "
            "<x%d@elsewhere.example>: Relay access denied; "
            "from=<a@b.example> to=<x%d@elsewhere.example> proto=ESMTP helo=<x>\n" % (stamp(), 2000 + n, n, n))


d = scratch()
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
out_all, out_rej, out_drop = (os.path.join(d, n) for n in ("all.plain", "rej.plain", "drop.plain"))
conf = os.path.join(d, "mxw.conf")
with open(conf, "w") as f:
    f.write("[rules]\nrelay_count = 2\nscore_defer = 1\nscore_reject = 6\nscore_drop = 10\nblock_jitter = 0\n"
            "[output all]\nformat = plain\npath = %s\nmin_response = defer\n"
            "[output rej]\nformat = plain\npath = %s\nmin_response = reject\n"
            "[output drop]\nformat = plain\npath = %s\nmin_response = drop\n" % (out_all, out_rej, out_drop))
append(log, "", "w")
dm = Daemon(db, follow=[log], conf=conf).start()
check("daemon started", dm.port is not None, dm.stderr()[-800:])
IP = "198.51.100.50/32"

# 2 relay attempts = score 4: defer
append(log, retry_line(0) + retry_line(1))
check("defer: in the defer output", wait_for(lambda: IP in plain_entries(out_all), True, 20), plain_entries(out_all))
check("defer: not in the reject output", IP not in plain_entries(out_rej), plain_entries(out_rej))
rows = q(db, "SELECT id, response, since, until FROM decisions WHERE prefix = ?", IP)
check("one decision, response defer", len(rows) == 1 and rows[0][1] == "defer", rows)
did, _, since0, until0 = rows[0] if rows else (0, 0, 0, 0)

# a third = score 6: reject
append(log, retry_line(2))
check("upgraded to reject: now in the reject output", wait_for(lambda: IP in plain_entries(out_rej), True, 20),
      plain_entries(out_rej))
check("...not yet in the drop output", IP not in plain_entries(out_drop), plain_entries(out_drop))
# a fourth and fifth = score 10: drop
append(log, retry_line(3) + retry_line(4))
check("upgraded to drop: now in the drop output", wait_for(lambda: IP in plain_entries(out_drop), True, 20),
      plain_entries(out_drop))
rows = q(db, "SELECT id, response, since, until, score, ended_at FROM decisions WHERE prefix = ?", IP)
check("still one decision row, same id and since, response drop, until not earlier",
      len(rows) == 1 and rows[0][0] == did and rows[0][1] == "drop" and rows[0][2] == since0 and
      rows[0][3] >= until0 and rows[0][5] is None, (rows, did, since0, until0))
ch = q(db, "SELECT from_response, response FROM decision_changes WHERE decision_id = ? ORDER BY id", did)
check("its history: defer -> reject, reject -> drop", ch == [("defer", "reject"), ("reject", "drop")], ch)
au = q(db, "SELECT who, action FROM audit WHERE prefix = ? AND action = 'upgrade'", IP)
check("two audit rows for the upgrades", len(au) == 2, au)

# more of the same changes nothing (never downgraded, no churn)
append(log, retry_line(5) + retry_line(6))
time.sleep(2)
ch2 = q(db, "SELECT count(*) FROM decision_changes WHERE decision_id = ?", did)
check("no further change at the top response", ch2 == [(2,)], ch2)

# -c: the lookup reads the outputs' files to say what is enforced
r = run([MXW, "lookup", "--json", "-c", conf, "--db", db, "198.51.100.50"])
j = json.loads(r.stdout) if r.returncode == 0 else {}
dec = j.get("decision") or {}
check("lookup: blocked, the current response drop", j.get("blocked") is True and dec.get("response") == "drop",
      r.stdout[:600])
check("lookup: the upgrades in order", [(c.get("from"), c.get("response")) for c in dec.get("changes", [])] ==
      [("defer", "reject"), ("reject", "drop")], dec.get("changes"))
want_until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rows[0][3])) if rows else None
check("lookup: until is the upgraded decision's until", dec.get("until") == want_until, (dec.get("until"), want_until))
st, api = get_json(dm.port, "/api/v1/lookup/198.51.100.50")
check("the API says the same", st == 200 and api and (api.get("decision") or {}).get("response") == "drop" and
      (api.get("decision") or {}).get("until") == want_until, (st, api and api.get("decision")))
r = run([MXW, "lookup", "--db", db, "198.51.100.50"])
check("lookup (text) prints the upgrades", r.returncode == 0 and "defer -> reject" in r.stdout and
      "reject -> drop" in r.stdout, r.stdout[:800])

# unblock the upgraded decision: ended everywhere
r = run([MXW, "unblock", IP, "--reason", "lifecycle test", "--db", db])
check("unblock exits 0", r.returncode == 0, r.stderr)
check("unblocked: gone from every output (an unblock is deliberate: not held by the breaker)",
      wait_for(lambda: any(IP in plain_entries(p) for p in (out_all, out_rej, out_drop)), False, 20) is False,
      [plain_entries(p) for p in (out_all, out_rej, out_drop)])
rows = q(db, "SELECT end_reason FROM decisions WHERE id = ?", did)
check("the decision row is ended", rows and rows[0][0] is not None, rows)
# (answers are cached for a second)
got = wait_for(lambda: get_json(dm.port, "/api/v1/lookup/198.51.100.50")[1].get("blocked"), False, 5)
check("the API says not blocked", got is False, get_json(dm.port, "/api/v1/lookup/198.51.100.50"))
check("the daemon is up", dm.alive(), dm.stderr()[-600:])
rc = dm.stop()
check("clean stop", rc == 0, (rc, dm.stderr()[-400:]))
done()
