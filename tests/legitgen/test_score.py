#!/usr/bin/env python3
"""test_score.py - the scorer of bench/judge-quality reads a decision's history as it was: which
decisions block (any response but observe, at any time), which cover a sender or a whole class,
and when a decision was in force (since, until, ended_at, upgrades; an upgrade after expiry does not
fill the gap before it)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import score  # noqa: E402
from mxwtest import check, done  # noqa: E402

H = 3600


def dec(i, prefix, resp, since, until, scope="ip", ended=None, changes=()):
    """changes: (at, from_response, response, until)"""
    row = (i, prefix, scope, resp, "rule", "reason", since, until, ended, None, 0)
    ch = [(at, "upgrade", fr, to, "rule", "reason", u) for at, fr, to, u in changes]
    return score.Decision(row, ch)


def camp(start, end, addrs):
    return {"start": "s", "end": "e", "start_ts": start, "end_ts": end, "addresses": addrs}


def main():
    T = 1_000_000
    truth = {
        "legit": [{"id": "a", "kind": "k", "addresses": ["192.0.2.10"], "families": ["ipv4"]},
                  {"id": "b", "kind": "k", "addresses": ["192.0.2.11"], "families": ["ipv4"]},
                  {"id": "c", "kind": "k", "addresses": ["2001:db8:1::5"], "families": ["ipv6"]}],
        "abusers": [
            {"id": "x", "kind": "ab", "scope": "ip", "addresses": ["198.51.100.1"], "families": ["ipv4"],
             "campaigns": [camp(T, T + 2 * H, ["198.51.100.1"]),            # met at its start
                           camp(T + 10 * H, T + 12 * H, ["198.51.100.1"]),  # the old block expired
                           camp(T + 30 * H, T + 31 * H, ["198.51.100.1"]),  # blocked only after 40 min
                           camp(T + 50 * H, T + 51 * H, ["198.51.100.1"])]},  # a zombie upgrade 50 min in
            {"id": "y", "kind": "cls", "scope": "class", "cidr": "203.0.113.0/24",
             "addresses": ["203.0.113.7", "203.0.113.9"], "families": ["ipv4"],
             "campaigns": [camp(T, T + H, ["203.0.113.7", "203.0.113.9"])]},
            {"id": "z", "kind": "cls", "scope": "class", "cidr": "2001:db8:9::/64",
             "addresses": ["2001:db8:9::1"], "families": ["ipv6"],
             "campaigns": [camp(T, T + 1800, ["2001:db8:9::1"])]},
        ]}
    decs = [
        dec(1, "192.0.2.10/32", "observe", T, T + H),                       # observe: spares a
        dec(2, "192.0.2.11/32", "observe", T, T + H, changes=[(T + 60, "observe", "defer", T + 2 * H)]),
        dec(3, "2001:db8:1::/64", "observe", T, T + H, scope="class"),      # a class decision over c
        dec(4, "198.51.100.1/32", "drop", T + 60, T + 2 * H),               # x campaign 1: 60s in
        dec(5, "198.51.100.1/32", "reject", T + 8 * H, T + 9 * H + 1800),   # ends before campaign 2
        dec(6, "198.51.100.1/32", "observe", T + 30 * H, T + 33 * H,
            changes=[(T + 30 * H + 2400, "observe", "reject", T + 33 * H)]),  # blocks only 40 min in
        dec(7, "198.51.100.1/32", "reject", T + 45 * H, T + 53 * H,
            changes=[(T + 50 * H + 3000, "reject", "drop", T + 53 * H)]),    # expired at 45h54m, revived
        dec(8, "203.0.113.7/32", "drop", T, T + H),                          # a member only: not the class
        dec(9, "2001:db8:9::/64", "reject", T + 100, T + H, scope="class", ended=T + 200),
    ]
    res = score.score(truth, decs)
    legit = {r["id"]: r for r in res["legit"]}
    check("an observe-only decision does not count as a block", not legit["a"]["blocked"])
    check("an upgrade from observe to defer counts as a block", bool(legit["b"]["blocked"]))
    check("a class decision covering a sender counts, whatever its response", bool(legit["c"]["class"]))
    check("... and an observe one is no block", not legit["c"]["blocked"])
    ab = {r["id"]: r for r in res["abusers"]}
    met = [c["met"] for c in ab["x"]["campaigns"]]
    check("campaign met by a block made 60 s in", met[0] and ab["x"]["campaigns"][0]["blocked_after_s"] == 60)
    check("campaign late when the earlier block had ended", not met[1])
    check("campaign late when the upgrade to a blocking response came after 30 minutes", not met[2])
    check("a zombie upgrade does not put the decision in force before it", not met[3])
    check("a member's /32 does not block its class", not ab["y"]["blocked"] and not ab["y"]["campaigns"][0]["met"])
    check("a /64 class decision blocks and meets the campaign (ended early, still in force at +100 s)",
          ab["z"]["blocked"] and ab["z"]["campaigns"][0]["met"])
    check("violation counts", res["counts"] == {"legit_blocked": 1, "legit_class": 1, "abuser_missed": 1,
                                                 "campaign_late": 4}, res["counts"])
    seg = decs[6].segments
    check("segments of the zombie: the first 54 minutes, then from the upgrade on",
          seg[0][:2] == (T + 45 * H, T + 45 * H + score.MIN_FIRST_DURATION) and seg[1][0] == T + 50 * H + 3000,
          seg)
    tab = score.table([res])
    check("the table counts per kind and family", tab[("legit", "k", "ipv4")] == {"senders": 2, "blocked": 1,
                                                                                  "class": 0} and
          tab[("abuser", "cls", "ipv4")]["blocked"] == 0, tab)
    done()


if __name__ == "__main__":
    main()
