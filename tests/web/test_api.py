#!/usr/bin/env python3
"""test_api.py - every endpoint of the web API, every parameter error, the
token (missing, wrong, right), Host/Origin checks, ETag / If-None-Match,
the SSE stream, static serving with traversal attempts, request limits and
the security headers. The database is seeded by web-seed at a fixed clock
(MXWARDEN_NOW), so nothing depends on today's date."""
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import (TOKEN, Server, check, finish, get_json, raw, request, wait_for)  # noqa: E402

NOW = "2026-11-27T20:00:00Z"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

srv = Server(n_events=600, env={"MXWARDEN_NOW": NOW})
P = srv.port
AUTH = {"Authorization": "Bearer " + TOKEN}


def security_headers_ok(h):
    return (h.get("content-security-policy") == CSP and h.get("x-content-type-options") == "nosniff"
            and h.get("referrer-policy") == "no-referrer" and "access-control-allow-origin" not in h)


try:
    # ------------------------------------------------------------ static
    st, h, body = request(P, "GET", "/")
    check("GET / is the dashboard", st == 200 and h.get("content-type", "").startswith("text/html")
          and b"/static/app.js" in body, (st, h))
    check("GET / carries the security headers", security_headers_ok(h), h)
    check("the dashboard has no inline script or style",
          b"<script>" not in body and b"style=" not in body and b"<style" not in body)
    st, h, body = request(P, "GET", "/static/chart.min.js")
    check("Chart.js is served from the binary", st == 200 and b"Chart.js v3" in body[:200]
          and len(body) > 100000, (st, len(body)))
    st, h, body = request(P, "GET", "/static/app.js")
    etag = h.get("etag")
    check("app.js has an ETag and a JS type", st == 200 and etag and "javascript" in h.get("content-type", ""), h)
    st, h, body = request(P, "GET", "/static/app.js", headers={"If-None-Match": etag})
    check("app.js If-None-Match gives 304 with no body", st == 304 and body == b"", (st, body[:80]))
    st, h, body = request(P, "GET", "/lookup/198.51.100.23")
    check("/lookup/IP is the lookup page", st == 200 and b"/static/lookup.js" in body, st)
    st, h, body = request(P, "GET", "/lookup/203.0.113.0/24")
    check("/lookup/PREFIX (with its slash) is the lookup page", st == 200 and b"lookup.js" in body, st)
    for path in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fetc%2fpasswd",
                 "/static/app.js%00.html", "//etc/passwd", "/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
                 "/static/../../../../etc/passwd", "/static/", "/static/.", "/static/web_assets.c",
                 "/static//etc/passwd", "/static/app.js/", "/etc/passwd"]:
        st, h, body = request(P, "GET", path)
        check(f"traversal {path} is 404 JSON with the security headers",
              st == 404 and b"root:" not in body and json.loads(body).get("error") and security_headers_ok(h),
              (st, body[:100]))
    st, h, body = request(P, "PUT", "/")
    check("PUT / is 405", st == 405, st)

    # ------------------------------------------------------------ health, metrics
    st, h, j = get_json(P, "/healthz")
    check("/healthz is ok", st == 200 and j and j.get("status") == "ok", j)
    st, h, body = request(P, "GET", "/metrics")
    text = body.decode()
    check("/metrics is Prometheus text", st == 200 and h.get("content-type", "").startswith("text/plain")
          and "# TYPE mxwarden_lines_read_total counter" in text, (st, text[:300]))
    check("/metrics counts the lines read", "mxwarden_lines_read_total 642\n" in text, text[:500])
    check("/metrics has active blocks by response", 'mxwarden_blocks_active{response="reject",scope="ip"} 2' in text
          and 'mxwarden_blocks_active{response="defer",scope="class"} 1' in text, text)
    check("/metrics has events by category", 'mxwarden_events_by_category_total{category="helo"} 12' in text, text)
    check("/metrics has parse failures by reason", 'mxwarden_parse_failures_total{reason="unparsed"} 3' in text,
          text)
    check("/metrics has events by code class", 'mxwarden_events_last_hour{code_class="5xx"}' in text, text)
    check("/metrics has the database size", "mxwarden_database_bytes " in text, text)

    # ------------------------------------------------------------ summary
    st, h, j = get_json(P, "/api/v1/summary")
    check("summary: 200 JSON with the security headers", st == 200 and isinstance(j, dict)
          and h.get("content-type") == "application/json" and security_headers_ok(h), (st, h))
    check("summary: 3 active blocks (one expired)", j and j.get("blocks_active") == 3, j)
    check("summary: ingest health", j and j.get("ingest", {}).get("files") == 1
          and j["ingest"].get("lines_read") == 642, j and j.get("ingest"))
    for _ in range(3):  # two requests may straddle the one-second boundary: retry
        st1, _, b1 = request(P, "GET", "/api/v1/summary")
        st2, _, b2 = request(P, "GET", "/api/v1/summary")
        if b1 == b2:
            break
    st, h, body = request(P, "GET", "/metrics")
    m = re.search(r'mxwarden_web_cache_total\{result="hit"\} (\d+)', body.decode())
    check("summary: a repeated request within a second is served from the cache",
          st1 == st2 == 200 and b1 == b2 and m and int(m.group(1)) >= 1, m and m.group(0))
    st, h, j = get_json(P, "/api/v1/summary?x=1")
    check("summary: an unknown parameter is 400 naming it", st == 400 and "'x'" in j.get("error", ""), j)

    # ------------------------------------------------------------ timeseries
    st, h, j = get_json(P, "/api/v1/timeseries?metric=codes")
    ok = st == 200 and j and "series" in j and j.get("step") == 60 and len(j.get("t", [])) == 60
    check("timeseries: the last hour by minute by default", ok, (st, j and {k: j[k] for k in j if k != "series"}))
    s5 = sum(j["series"].get("5xx", [])) if ok else -1
    check("timeseries: 5xx of the last hour include the 42 planted rejects", s5 >= 42, s5)
    st, h, j = get_json(P, "/api/v1/timeseries?metric=categories&from=2026-11-20T20:00:00Z&to=2026-11-27T21:00:00Z")
    check("timeseries: 7 days by category, RFC 3339 bounds, hourly steps",
          st == 200 and j.get("step") == 3600 and "unknown_recipient" in j.get("series", {}),
          (st, j and j.get("step")))
    # class filter: the planted harvester is alone in 198.51.100.0/24 (30 rejects, 550), the HELO
    # sender alone in 203.0.113.0/24 (12 rejects, 504, helo)
    for q, want_class, name, want in [
            ("metric=codes&class=198.51.100.0/24", "198.51.100.0/24", "5xx", 30),
            ("metric=codes&class=198.51.100.23", "198.51.100.0/24", "5xx", 30),  # an IP: its class
            ("metric=codes&class=198.51.100.128/25", "198.51.100.0/24", "5xx", 30),  # widened to its class
            ("metric=kinds&class=198.51.0.0/16", "198.51.0.0/16", "reject", 30),  # the classes inside
            ("metric=categories&class=203.0.113.0/24", "203.0.113.0/24", "helo", 12),
            ("metric=categories&class=203.0.113.0/24", "203.0.113.0/24", "unknown_recipient", 0),
            ("metric=codes&class=192.0.2.0/24", "192.0.2.0/24", "5xx", 0),
            ("metric=kinds&class=2001:db8:bad::/64", "2001:db8:bad::/64", "reject", 0)]:
        st, h, j = get_json(P, "/api/v1/timeseries?" + q)
        got = sum(j["series"].get(name, [])) if st == 200 and j else None
        check(f"timeseries: {q} gives class {want_class} and {want} {name}",
              st == 200 and j.get("class") == want_class and got == want and len(j.get("t", [])) == 60,
              (st, j and j.get("class"), got))
    st, h, j = get_json(P, "/api/v1/timeseries?metric=codes&class=45.64.0.0/16&from=2026-11-20T20:00:00Z"
                        "&to=2026-11-27T21:00:00Z")
    st2, h, j2 = get_json(P, "/api/v1/timeseries?metric=codes&from=2026-11-20T20:00:00Z&to=2026-11-27T21:00:00Z")
    bg = sum(sum(v) for v in j["series"].values()) if st == 200 else -1
    allv = sum(sum(v) for v in j2["series"].values()) if st2 == 200 else -1
    check("timeseries: 7 days of the background classes by hour, fewer than all events",
          st == 200 and j.get("step") == 3600 and 0 < bg < allv, (st, bg, allv))
    week = "&from=2026-11-20T20:00:00Z&to=2026-11-27T21:00:00Z"
    st, h, j = get_json(P, "/api/v1/timeseries?metric=kinds&class=2001:db8:2::1" + week)
    st2, h, j2 = get_json(P, "/api/v1/timeseries?metric=kinds&class=2001:db8::/32" + week)
    one = sum(j["series"].get("reject", [])) if st == 200 else -1
    v6 = sum(j2["series"].get("reject", [])) if st2 == 200 else -1
    check("timeseries: an IPv6 address means its /64; a /32 sums the background /64s",
          st == 200 and j.get("class") == "2001:db8:2::/64" and st2 == 200 and 0 < one < v6 < allv,
          (st, j and j.get("class"), one, v6, allv))
    for q, why in [("metric=bogus", "metric"), ("from=yesterday", "from"), ("to=12:00", "to"),
                   ("class=198.51.100.1/24", "host bits"), ("class=bogus", "class"), ("class=10.0.0.0/33", "len"),
                   ("class=", "empty"), ("class=198.51.100.0/24&class=10.0.0.0/8", "twice"),
                   ("from=1764270000&to=1764270000", "before"), ("step=61", "step"), ("step=0", "step"),
                   ("from=0&to=1764270000&step=60", "range"), ("from=1764000000&to=1764270000&step=60", "buckets"),
                   ("metric=codes&metric=kinds", "twice"), ("color=red", "unknown")]:
        st, h, j = get_json(P, "/api/v1/timeseries?" + q)
        check(f"timeseries: {q} is 400", st == 400 and j and j.get("error"), (st, j))

    # ------------------------------------------------------------ top
    st, h, j = get_json(P, "/api/v1/top?by=ip&window=1h")
    items = j.get("items", []) if j else []
    check("top by ip: the harvester leads", st == 200 and items and items[0]["prefix"] == "198.51.100.23"
          and items[0]["count"] == 30, items[:3])
    st, h, j = get_json(P, "/api/v1/top?by=class&window=1h&category=helo")
    items = j.get("items", []) if j else []
    check("top by class and category: 203.0.113.0/24 with 12 HELO rejects",
          st == 200 and items and items[0]["prefix"] == "203.0.113.0/24" and items[0]["count"] == 12, items)
    st, h, j = get_json(P, "/api/v1/top?by=ip&window=7d&limit=5")
    check("top: limit=5 gives 5", st == 200 and len(j.get("items", [])) == 5, j)
    for q in ["by=asn", "window=forever", "window=10s", "category=spam", "kind=smoke", "limit=0",
              "limit=1000000000", "limit=ten", "by=ip&by=class"]:
        st, h, j = get_json(P, "/api/v1/top?" + q)
        check(f"top: {q} is 400", st == 400 and j and j.get("error"), (st, j))

    # ------------------------------------------------------------ blocks
    st, h, j = get_json(P, "/api/v1/blocks")
    prefixes = [b["prefix"] for b in j.get("items", [])] if j else []
    check("blocks: the 3 active ones by default", st == 200 and sorted(prefixes) ==
          sorted(["45.67.89.0/24", "198.51.100.23/32", "203.0.113.66/32"]), prefixes)
    st, h, j = get_json(P, "/api/v1/blocks?active=false")
    check("blocks: active=false adds the expired one", st == 200 and len(j.get("items", [])) == 4, j)
    st, h, j = get_json(P, "/api/v1/blocks?active=false&limit=3")
    nxt = j.get("next") if j else None
    check("blocks: limit=3 of 4 gives a cursor", st == 200 and len(j["items"]) == 3 and nxt, j)
    if nxt:
        st, h, j2 = get_json(P, "/api/v1/blocks?active=false&limit=3&cursor=" + nxt)
        check("blocks: the cursor gives the last one and no further cursor",
              st == 200 and len(j2["items"]) == 1 and j2.get("next") is None
              and j2["items"][0]["id"] not in [x["id"] for x in j["items"]], j2)
    for q in ["active=maybe", "limit=-1", "limit=1001", "cursor=%01", "cursor=not-a-cursor", "page=2"]:
        st, h, j = get_json(P, "/api/v1/blocks?" + q)
        check(f"blocks: {q} is 400", st == 400 and j and j.get("error"), (st, j))

    # ------------------------------------------------------------ events
    st, h, j = get_json(P, "/api/v1/events?ip=198.51.100.23&limit=100")
    check("events by ip: the 30 harvester rejects", st == 200 and len(j.get("items", [])) == 30
          and all(e["ip"] == "198.51.100.23" for e in j["items"]), (st, j and len(j.get("items", []))))
    st, h, body = request(P, "GET", "/api/v1/events?class=203.0.113.0/24")
    j = json.loads(body)
    check("events by class: 12 with the hostile HELO intact",
          st == 200 and len(j["items"]) == 12 and j["items"][0]["helo"] == "<script>alert(1)</script>",
          j["items"][:1])
    check("JSON never carries a raw <, > or &", b"<" not in body and b">" not in body and b"&" not in body)
    st, h, j = get_json(P, "/api/v1/events?category=helo&limit=5")
    check("events by category with limit", st == 200 and len(j["items"]) == 5 and j.get("next"), j)
    if j and j.get("next"):
        st, h, j2 = get_json(P, "/api/v1/events?category=helo&limit=5&cursor=" + j["next"])
        check("events: the next page continues", st == 200 and len(j2["items"]) == 5
              and j2["items"][0]["id"] != j["items"][0]["id"], j2)
    for q in ["ip=300.1.1.1", "ip=198.51.100.23&class=198.51.100.0/24", "class=198.51.100.7/24",
              "class=banana", "category=nope", "limit=abc", "cursor=%7f", "ip=1.2.3.4&ip=1.2.3.5"]:
        st, h, j = get_json(P, "/api/v1/events?" + q)
        check(f"events: {q} is 400", st == 400 and j and j.get("error"), (st, j))

    # ------------------------------------------------------------ lookup
    st, h, j = get_json(P, "/api/v1/lookup/198.51.100.23")
    # no [output] here: decided, and the answer says it reaches no blocklist
    check("lookup: the harvester is decided, not enforced (no output)", st == 200 and j
          and j.get("blocked") is False and j.get("state") == "decided_not_enforced"
          and (j.get("not_enforced") or {}).get("reason") == "no_output", j)
    dec = (j or {}).get("decision") or {}
    check("lookup: the decision's reason explains it", "30 unknown recipients" in json.dumps(j), dec)
    st, h, j = get_json(P, "/api/v1/lookup/45.67.89.77")
    check("lookup: an IP inside a blocked class has the class's decision",
          st == 200 and j.get("state") == "decided_not_enforced"
          and (j.get("decision") or {}).get("prefix") == "45.67.89.0/24", j)
    st, h, j = get_json(P, "/api/v1/lookup/203.0.113.0/24")
    check("lookup: a prefix is answered", st == 200 and j and "query" in j, j)
    st, h, j = get_json(P, "/api/v1/lookup/100.100.100.100")
    check("lookup: a protected address is allowed", st == 200 and j.get("state") == "allowed"
          and "protected" in j.get("summary", ""), j)
    st, h, j = get_json(P, "/api/v1/lookup/192.0.2.222")
    check("lookup: an address never seen is never_seen", st == 200 and j.get("blocked") is False
          and j.get("state") == "never_seen", j)
    for q in ["not-an-ip", "300.1.2.3", "1.2.3.4/33", "%01"]:
        st, h, j = get_json(P, "/api/v1/lookup/" + q)
        check(f"lookup: {q} is 400", st == 400 and j and j.get("error"), (st, j))
    st, h, j = get_json(P, "/api/v1/lookup/nobody05@example.com")
    snd = (j or {}).get("senders", [])
    check("lookup of an e-mail address: the client that used it, blocked",
          st == 200 and j.get("kind") == "email" and len(snd) == 1 and snd[0]["ip"] == "198.51.100.23"
          and snd[0]["count"] == 1 and snd[0]["role"] == "recipient"
          and snd[0]["state"] == "decided_not_enforced" and snd[0]["decision"]["rule"] == "harvest", j)
    st, h, j = get_json(P, "/api/v1/lookup/POSTMASTER@example.com")
    snd = (j or {}).get("senders", [])
    check("lookup of an e-mail address is case-insensitive and counts",
          st == 200 and snd and snd[0]["ip"] == "203.0.113.66" and snd[0]["count"] == 12, snd[:2])
    st, h, j = get_json(P, "/api/v1/lookup/nobody@nowhere.example")
    check("lookup of an unseen e-mail address: no sender", st == 200 and j.get("senders") == []
          and j.get("blocked") is False, j)
    for q in ["a@b@c", "@example.com", "user@", "us%20er@example.com"]:
        st, h, j = get_json(P, "/api/v1/lookup/" + q)
        check(f"lookup: bad e-mail {q} is 400", st == 400 and j and j.get("error"), (st, j))
    st, h, j = get_json(P, "/api/v1/lookup/198.51.100.23?verbose=1")
    check("lookup: unknown parameter is 400", st == 400, st)

    # ------------------------------------------------------------ blocklist
    st, h, body = request(P, "GET", "/api/v1/blocklist?format=plain")
    et = h.get("etag")
    check("blocklist plain: lists the active blocks", st == 200 and b"198.51.100.23" in body
          and b"45.67.89.0/24" in body and b"2001:db8:bad::" not in body and et, (st, body[:300]))
    st, h, body = request(P, "GET", "/api/v1/blocklist?format=plain", headers={"If-None-Match": et})
    check("blocklist: If-None-Match gives 304", st == 304 and body == b"", st)
    st, h, body = request(P, "GET", "/api/v1/blocklist?format=plain", headers={"If-None-Match": '"nope"'})
    check("blocklist: a stale ETag gives the body", st == 200 and body, st)
    for fmt in ["postfix", "rbldnsd", "json", "ipset", "nft"]:
        st, h, body = request(P, "GET", "/api/v1/blocklist?format=" + fmt)
        check(f"blocklist {fmt}: 200 with content", st == 200 and len(body) > 0, (st, body[:200]))
    st, h, body = request(P, "GET", "/api/v1/blocklist?format=json")
    check("blocklist json is JSON", h.get("content-type") == "application/json" and json.loads(body) is not None)
    st, h, j = get_json(P, "/api/v1/blocklist?format=excel")
    check("blocklist: unknown format is 400 listing the formats", st == 400 and "plain" in j.get("error", ""), j)

    # ------------------------------------------------------------ audit (empty so far)
    st, h, j = get_json(P, "/api/v1/audit")
    check("audit: 200 with items", st == 200 and isinstance(j.get("items"), list), j)

    # ------------------------------------------------------------ stream
    s = socket.create_connection(("127.0.0.1", P), timeout=10)
    s.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\nAccept: text/event-stream\r\n\r\n".encode())
    buf = b""
    end = time.time() + 6
    while time.time() < end and buf.count(b"event: tick") < 2:
        try:
            buf += s.recv(65536)
        except socket.timeout:
            break
    check("stream: text/event-stream with the security headers",
          b"text/event-stream" in buf and b"Content-Security-Policy" in buf, buf[:400])
    check("stream: per-second ticks arrive", buf.count(b"event: tick") >= 2, buf[-400:])

    # ------------------------------------------------------------ manual block: auth
    blk = json.dumps({"prefix": "198.18.7.0/24", "duration": "2d", "reason": "spam run <b>seen</b> by support"})
    JSON_CT = {"Content-Type": "application/json"}
    st, h, body = request(P, "POST", "/api/v1/blocks", headers=JSON_CT, body=blk)
    check("POST blocks without a token is 401", st == 401 and b"token" in body, (st, body))
    st, h, body = request(P, "POST", "/api/v1/blocks", headers={**JSON_CT, "Authorization": "Bearer wrong"},
                          body=blk)
    check("POST blocks with a wrong token is 401", st == 401, st)
    st, h, body = request(P, "POST", "/api/v1/blocks",
                          headers={**JSON_CT, "Authorization": "Bearer " + TOKEN + "x"}, body=blk)
    check("POST blocks with a longer token is 401", st == 401, st)
    st, h, body = request(P, "POST", "/api/v1/blocks", headers={**JSON_CT, "Authorization": "Basic " + TOKEN},
                          body=blk)
    check("POST blocks with Basic auth is 401", st == 401, st)
    st, h, body = request(P, "POST", "/api/v1/blocks",
                          headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
                          body="prefix=198.18.7.0/24&duration=2d&reason=x")
    check("POST blocks as a form is refused (415)", st == 415, st)
    st, h, body = request(P, "POST", "/api/v1/blocks", headers={**AUTH, "Content-Type": "text/plain"}, body=blk)
    check("POST blocks as text/plain is refused (415)", st == 415, st)
    st, h, body = request(P, "POST", "/api/v1/blocks", headers={**AUTH, **JSON_CT, "Origin": "http://evil.example"},
                          body=blk)
    check("POST blocks from a foreign Origin is 403", st == 403, st)
    st, h, body = request(P, "POST", "/api/v1/blocks", headers={**AUTH, **JSON_CT}, body=blk, host="evil.example")
    check("POST blocks with a foreign Host is 421", st == 421, st)
    st, h, j = get_json(P, "/api/v1/blocks?active=false&limit=1000")
    check("refused requests changed nothing", len(j["items"]) == 4, len(j["items"]))
    for bad, why in [({"prefix": "198.18.7.1/24", "duration": "2d", "reason": "x"}, "host bits"),
                     ({"prefix": "banana", "duration": "2d", "reason": "x"}, "prefix"),
                     ({"prefix": "10.0.0.0/4", "duration": "2d", "reason": "x"}, "floor"),
                     ({"prefix": "198.18.7.0/24", "duration": "soon", "reason": "x"}, "duration"),
                     ({"prefix": "198.18.7.0/24", "duration": "400d", "reason": "x"}, "too long"),
                     ({"prefix": "198.18.7.0/24", "duration": "2d"}, "no reason"),
                     ({"prefix": "198.18.7.0/24", "duration": "2d", "reason": "x", "response": "nuke"}, "response"),
                     ({"prefix": "198.18.7.0/24", "duration": "2d", "reason": "x", "colour": 1}, "unknown field"),
                     ([1, 2], "not an object")]:
        st, h, body = request(P, "POST", "/api/v1/blocks", headers={**AUTH, **JSON_CT}, body=json.dumps(bad))
        check(f"POST blocks: {why} is 400", st == 400 and json.loads(body).get("error"), (st, body))
    st, h, body = request(P, "POST", "/api/v1/blocks", headers={**AUTH, **JSON_CT}, body="{not json")
    check("POST blocks: broken JSON is 400", st == 400, st)
    st, h, body = request(P, "POST", "/api/v1/blocks", headers={**AUTH, **JSON_CT},
                          body=json.dumps({"prefix": "127.0.0.1", "duration": "1h", "reason": "oops"}))
    check("POST blocks: a protected network is refused (403)", st == 403, (st, body))
    st, h, body = request(P, "POST", "/api/v1/blocks", headers={**AUTH, **JSON_CT}, body="x" * (70 * 1024))
    check("POST blocks: a body over 64 KiB is 413", st == 413, st)

    # the stream must show the new decision
    st, h, body = request(P, "POST", "/api/v1/blocks", headers={**AUTH, **JSON_CT,
                                                                 "Origin": f"http://127.0.0.1:{P}"}, body=blk)
    j = json.loads(body)
    check("POST blocks with the token: 201 and the decision", st == 201 and j.get("prefix") == "198.18.7.0/24"
          and j.get("id", 0) > 0 and j.get("response") == "reject", (st, j))
    new_id = j.get("id")
    end = time.time() + 6
    while time.time() < end and b"198.18.7.0/24" not in buf:
        try:
            buf += s.recv(65536)
        except socket.timeout:
            break
    s.close()
    check("stream: the new decision arrives as an event", b"event: decision" in buf and b"198.18.7.0/24" in buf,
          buf[-600:])
    st, h, j = get_json(P, "/api/v1/blocks")
    mine = [b for b in j["items"] if b["id"] == new_id]
    check("the manual block is listed, manual, with its reason", mine and mine[0]["manual"] is True
          and mine[0]["reason"] == "spam run <b>seen</b> by support", mine)
    st, h, j = get_json(P, "/api/v1/lookup/198.18.7.9")
    check("lookup sees the manual block, by whom", st == 200 and j.get("state") == "decided_not_enforced"
          and (j.get("decision") or {}).get("created_by") == "web:127.0.0.1", j)

    # ------------------------------------------------------------ unblock
    st, h, body = request(P, "DELETE", "/api/v1/blocks/198.18.7.0/24")
    check("DELETE without a token is 401", st == 401, st)
    st, h, body = request(P, "DELETE", "/api/v1/blocks/198.18.7.0/24", headers={"Authorization": "Bearer nope"})
    check("DELETE with a wrong token is 401", st == 401, st)
    st, h, body = request(P, "DELETE", "/api/v1/blocks/198.18.7.0/24", headers=AUTH, host="evil.example")
    check("DELETE with a foreign Host is 421", st == 421, st)
    st, h, body = request(P, "DELETE", "/api/v1/blocks/banana", headers=AUTH)
    check("DELETE of a non-prefix is 400", st == 400, st)
    st, h, body = request(P, "DELETE", "/api/v1/blocks/198.18.7.0/24?reason=customer%20called", headers=AUTH)
    j = json.loads(body)
    check("DELETE with the token ends the block", st == 200 and j.get("ended") == [new_id], (st, j))
    st, h, body = request(P, "DELETE", "/api/v1/blocks/198.18.7.0/24", headers=AUTH)
    check("DELETE again is 404", st == 404, st)
    st, h, j = get_json(P, "/api/v1/lookup/198.18.7.9")
    check("lookup: no longer blocked", st == 200 and j.get("blocked") is False
          and j.get("decision") is None, j)
    st, h, j = get_json(P, "/api/v1/audit")
    acts = [(a["action"], a["prefix"]) for a in j.get("items", [])]
    check("audit: the block and the unblock are recorded", ("block", "198.18.7.0/24") in acts
          and ("unblock", "198.18.7.0/24") in acts, acts)
    st, h, body = request(P, "GET", "/api/v1/blocks/198.18.7.0/24")
    check("GET blocks/PREFIX is 405", st == 405, st)
    st, h, body = request(P, "POST", "/api/v1/summary", headers={**AUTH, **JSON_CT}, body="{}")
    check("POST summary is 405", st == 405, st)
    st, h, j = get_json(P, "/api/v1/nothing")
    check("unknown endpoint is 404 JSON", st == 404 and j.get("error"), j)

    # ------------------------------------------------------------ Host (DNS rebinding), limits
    st, h, body = request(P, "GET", "/api/v1/summary", host="evil.example")
    check("GET with a foreign Host is 421", st == 421, st)
    st, h, body = request(P, "GET", "/api/v1/summary", host=f"localhost:{P}")
    check("GET with Host localhost:PORT is fine", st == 200, st)
    out = raw(P, b"GET /api/v1/summary HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")
    check("64 KiB of headers is refused with 431/413", out[:12] in (b"HTTP/1.1 431", b"HTTP/1.1 413"), out[:60])
    many = "&".join(f"p{i}=1" for i in range(10000))
    out = raw(P, f"GET /api/v1/summary?{many} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    check("10^4 query parameters are refused", out[:10] == b"HTTP/1.1 4", out[:60])
    st, h, j = get_json(P, "/api/v1/summary")
    check("the server still answers after the abuse", st == 200, st)

    # ------------------------------------------------------------ bind address
    with open("/proc/net/tcp") as f:
        rows = [l.split() for l in f.read().splitlines()[1:]]
    mine = [r for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == P]
    check("it listens on 127.0.0.1 only", len(mine) == 1 and mine[0][1].split(":")[0] == "0100007F", mine)
finally:
    rc = srv.stop()
check("web-serve stops cleanly on SIGTERM", rc == 0, rc)

# ---------------------------------------------------------------- no token file
srv2 = Server(n_events=10, token=False, env={"MXWARDEN_NOW": NOW})
try:
    st, h, body = request(srv2.port, "POST", "/api/v1/blocks",
                          headers={**AUTH, "Content-Type": "application/json"},
                          body=json.dumps({"prefix": "198.18.7.0/24", "duration": "2d", "reason": "x"}))
    check("no token_file: POST blocks is 403 saying why", st == 403 and b"token_file" in body, (st, body))
    st, h, body = request(srv2.port, "DELETE", "/api/v1/blocks/198.51.100.23", headers=AUTH)
    check("no token_file: DELETE is 403", st == 403, st)
finally:
    srv2.stop()

# ---------------------------------------------------------------- no database yet
srv3 = Server(token=False, seed=False, env={"MXWARDEN_NOW": NOW})
try:
    st, h, j = get_json(srv3.port, "/api/v1/summary")
    check("no database yet: summary is 503 JSON", st == 503 and j.get("error"), (st, j))
    st, h, j = get_json(srv3.port, "/healthz")
    check("no database yet: healthz is 503", st == 503 and j.get("status") == "degraded", (st, j))
    st, h, body = request(srv3.port, "GET", "/")
    check("no database yet: the dashboard still loads", st == 200, st)
finally:
    srv3.stop()
finish()
