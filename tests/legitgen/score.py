"""score.py - judge mxwarden's decisions against a legitgen truth file.

Importable (bench/judge-quality uses it; other benches may too):

    decs = read_decisions("mxwarden.db")          # the decisions and decision_changes tables
    res = score(truth, decs)                      # per sender and per campaign
    rows = table([res, ...])                      # per scenario (kind) and address family

The four checks (issue 12):
  1. legit_blocked: a decision whose response was ever other than `observe` (`defer` counts) covers
     an address of a legitimate sender, at any time;
  2. legit_class: a decision of scope `class` (any response) covers an address of a legitimate sender;
  3. abuser_missed: a planted abuser that no blocking decision ever covered (an IP abuser: any of its
     addresses; a class abuser: its whole /24 or /64);
  4. campaign_late: a campaign of a planted abuser that no blocking decision covered at an instant
     within the campaign's first half and within 30 minutes of its start.

When a decision was in force and how strongly is read from `decisions` (since, until, ended_at) and
`decision_changes` (each upgrade: at, from_response, response, until). The `until` a decision had
before its first upgrade is not stored; it is taken as since + block_base x (1 - block_jitter) (the
shortest first duration: 54 minutes by default), and as continuing when the first upgrade came
before that. An upgrade after the decision had expired does not make it in force in between.
"""
import ipaddress
import sqlite3

RESP = {"observe": 0, "defer": 1, "reject": 2, "drop": 3}
EARLY_MAX = 1800.0          # within 30 minutes of the campaign's start ...
EARLY_HALF = 0.5            # ... and within its first half
MIN_FIRST_DURATION = 3240.0  # block_base 1h less block_jitter 0.1


class Decision:
    __slots__ = ("id", "prefix", "net", "scope", "rule", "reason", "response", "since", "until", "ended_at",
                 "end_reason", "manual", "changes", "segments", "max_resp", "min_first")

    def __init__(self, row, changes, min_first=MIN_FIRST_DURATION):
        self.min_first = min_first
        (self.id, self.prefix, self.scope, self.response, self.rule, self.reason, self.since, self.until,
         self.ended_at, self.end_reason, self.manual) = row
        self.net = ipaddress.ip_network(self.prefix, strict=False)
        self.changes = changes      # [(at, change, from_response, response, rule, reason, until)]
        self.segments = self._segments()
        self.max_resp = max([RESP.get(self.response, 0)] + [RESP.get(c[3], 0) for c in changes]
                            + [RESP.get(c[2], 0) for c in changes if c[2]])

    def _segments(self):
        """[(start, end, response, rule, reason)]: when the decision was in force, and how."""
        end_all = self.until
        if self.ended_at is not None and self.ended_at < end_all:
            end_all = self.ended_at
        chs = [c for c in self.changes if c[1] == "upgrade"]
        if not chs:
            return [(self.since, end_all, self.response, self.rule, self.reason)] if end_all > self.since else []
        first = chs[0]
        resp0 = first[2] or self.response
        # the first until: unknown; the upgrade extended it only if it came while in force
        if first[0] <= self.since + self.min_first:
            u0 = max(first[0], self.since)
        else:
            u0 = self.since + self.min_first
        segs = []
        pieces = [(self.since, u0, resp0, None, None)]
        for i, c in enumerate(chs):
            at, _, _, resp, rule, reason, until = c
            pieces.append((at, until if until is not None else self.until, resp, rule, reason))
        for i, (s, u, resp, rule, reason) in enumerate(pieces):
            nxt = pieces[i + 1][0] if i + 1 < len(pieces) else None
            e = min(u, end_all) if nxt is None else min(u, end_all, nxt)
            if i == 0 and nxt is not None and nxt <= u0:
                e = min(nxt, end_all)
            if e > s:
                segs.append((s, e, resp, rule or self.rule, reason or self.reason))
        return segs

    def blocking_at(self, t0, t1):
        """The first instant in [t0, t1] at which this decision blocked (a response above observe)."""
        for s, e, resp, rule, reason in self.segments:
            if RESP.get(resp, 0) == 0:
                continue
            lo, hi = max(s, t0), min(e, t1 + 1e-9)
            if lo < hi or (lo == hi and s <= lo < e):
                return lo
        return None

    def brief(self):
        return {"prefix": self.prefix, "scope": self.scope, "rule": self.rule, "response": self.response,
                "since": self.since, "until": self.until, "ended_at": self.ended_at,
                "reason": self.reason, "upgrades": len(self.changes)}


def read_decisions(db, min_first=MIN_FIRST_DURATION):
    """min_first: the shortest first duration of a decision, block_base x (1 - block_jitter)."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        rows = con.execute("SELECT id, prefix, scope, response, rule, reason, since, until, ended_at, end_reason, "
                           "manual FROM decisions ORDER BY id").fetchall()
        try:
            ch = con.execute("SELECT decision_id, at, change, from_response, response, rule, reason, until "
                             "FROM decision_changes ORDER BY decision_id, at, id").fetchall()
        except sqlite3.OperationalError:
            ch = []
    finally:
        con.close()
    by = {}
    for c in ch:
        by.setdefault(c[0], []).append(tuple(c[1:]))
    return [Decision(r, by.get(r[0], []), min_first) for r in rows]


def _addr(a):
    return ipaddress.ip_address(a)


def covering(decs, addr):
    a = _addr(addr)
    return [d for d in decs if d.net.version == a.version and a in d.net]


def covering_net(decs, cidr):
    n = ipaddress.ip_network(cidr, strict=False)
    return [d for d in decs if d.net.version == n.version and n.subnet_of(d.net)]


def family(ent):
    f = ent.get("families") or sorted({"ipv6" if ":" in a else "ipv4" for a in ent["addresses"]})
    return f[0] if len(f) == 1 else "dual"


def score(truth, decs):
    """Check every sender of the truth against the decisions. Returns a dict with per-sender results
    and the violation lists."""
    legit, abusers = [], []
    v = {"legit_blocked": [], "legit_class": [], "abuser_missed": [], "campaign_late": []}
    for e in truth["legit"]:
        hit, cls = {}, {}
        for a in e["addresses"]:
            for d in covering(decs, a):
                if d.max_resp > 0:
                    hit[d.id] = d
                if d.scope == "class":
                    cls[d.id] = d
        r = {"id": e["id"], "kind": e["kind"], "family": family(e), "addresses": len(e["addresses"]),
             "blocked": [d.brief() for d in hit.values()], "class": [d.brief() for d in cls.values()]}
        legit.append(r)
        if hit:
            v["legit_blocked"].append(r)
        if cls:
            v["legit_class"].append(r)
    for e in truth["abusers"]:
        if e.get("scope") == "class":
            cand = [d for d in covering_net(decs, e["cidr"]) if d.max_resp > 0]
            camp_cand = lambda c, cand=cand: cand
        else:
            cand = {}
            for a in e["addresses"]:
                for d in covering(decs, a):
                    if d.max_resp > 0:
                        cand[d.id] = d
            cand = list(cand.values())

            def camp_cand(c, cand=cand):
                out = []
                for d in cand:
                    if any(_addr(a) in d.net for a in c["addresses"] if _addr(a).version == d.net.version):
                        out.append(d)
                return out
        camps = []
        for c in e["campaigns"]:
            s, en = c["start_ts"], c["end_ts"]
            hi = min(s + (en - s) * EARLY_HALF, s + EARLY_MAX)
            first = None
            for d in camp_cand(c):
                x = d.blocking_at(s, hi)
                if x is not None and (first is None or x < first[0]):
                    first = (x, d)
            cr = {"start": c["start"], "end": c["end"], "deadline_s": int(hi - s), "met": first is not None,
                  "blocked_after_s": None if first is None else int(first[0] - s),
                  "by": None if first is None else first[1].brief()}
            camps.append(cr)
        r = {"id": e["id"], "kind": e["kind"], "family": family(e), "scope": e.get("scope", "ip"),
             "blocked": bool(cand), "by": [d.brief() for d in cand[:3]], "campaigns": camps}
        abusers.append(r)
        if not cand:
            v["abuser_missed"].append(r)
        for cr in camps:
            if not cr["met"]:
                v["campaign_late"].append(dict(cr, id=e["id"], kind=e["kind"]))
    return {"legit": legit, "abusers": abusers, "violations": v, "decisions": len(decs),
            "counts": {k: len(x) for k, x in v.items()}}


def table(results):
    """Per (kind, family): legitimate senders, blocked, class-covered; planted abusers, blocked, campaigns,
    met early; summed over the results given."""
    rows = {}
    for res in results:
        for r in res["legit"]:
            k = ("legit", r["kind"], r["family"])
            x = rows.setdefault(k, {"senders": 0, "blocked": 0, "class": 0})
            x["senders"] += 1
            x["blocked"] += bool(r["blocked"])
            x["class"] += bool(r["class"])
        for r in res["abusers"]:
            k = ("abuser", r["kind"], r["family"])
            x = rows.setdefault(k, {"planted": 0, "blocked": 0, "campaigns": 0, "met": 0})
            x["planted"] += 1
            x["blocked"] += r["blocked"]
            x["campaigns"] += len(r["campaigns"])
            x["met"] += sum(c["met"] for c in r["campaigns"])
    return rows


def ok(res):
    return not any(res["counts"].values())
