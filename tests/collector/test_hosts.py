#!/usr/bin/env python3
"""test_hosts.py (suite integration) - MX hosts are first-class (issue 18).

`mxwarden run` follows three files, one per MX host, as a central rsyslog
writes them (each line keeps its sender's host field), with
[collector] host_silence = 3s and a blocklist listener with a read token.
Asserted:
  * /api/v1/hosts lists each host with exactly the lines written for it
    (parsed or not), its last line's log time, a lag, and the rate;
  * host= on summary, timeseries, top and events answers for that host
    alone (the abuser's rejects on each host are counted on that host);
    an unknown host is 404 on summary and empty elsewhere; a bad one 400;
  * `mxwarden stats --json` and /metrics carry the hosts;
  * a host that stops sending for longer than host_silence is flagged on
    /healthz (200, status "warning", silent_hosts names it, not the others)
    and on /metrics, and is no longer once it sends again;
  * the blocklist listener serves /api/v1/blocklist and /healthz only, with
    the token (401 without), and answers 304 to If-None-Match until a
    decision changes, a minute later as well (the header's time is not
    part of the tag);
  * an import of old lines counts its hosts' lines but flags no host silent.
"""
import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mxwtest  # noqa: E402
from mxwtest import MXW, Daemon, check, done, request, scratch  # noqa: E402

TOKEN = "pull-token-0123456789abcdef"
HOSTS = ["mx1.example.net", "mx2.example.net", "mx3.example.net"]
ABUSER = "203.0.113.50"
GOOD = "198.51.100.25"

d = scratch("mxw-hosts-")
files = {h: os.path.join(d, h + ".log") for h in HOSTS}
for f in files.values():
    open(f, "w").close()
tokf = os.path.join(d, "pull.token")
with open(tokf, "w") as f:
    f.write(TOKEN + "\n")
os.chmod(tokf, 0o600)
conf = os.path.join(d, "m.conf")
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
BL_PORT = sock.getsockname()[1]
sock.close()
with open(conf, "w") as f:
    f.write("[collector]\nhost_silence = 3s\nbatch_ms = 50\n\n[web]\nblocklist_listen = 127.0.0.1:%d\n"
            "blocklist_token_file = %s\n" % (BL_PORT, tokf))
db = os.path.join(d, "m.db")
written = {h: 0 for h in HOSTS}
rejects = {h: 0 for h in HOSTS}
pid = [3000]


def stamp():
    return time.strftime("%b %e %H:%M:%S", time.localtime())


def write(host, ip, n, reject=True):
    """n session lines of ip on host: connect, a refused RCPT (or an
    accepted message), disconnect; and one line no parser knows."""
    out = []
    for _ in range(n):
        pid[0] += 1
        s = stamp()
        out.append("%s %s postfix/smtpd[%d]: connect from unknown[%s]\n" % (s, host, pid[0], ip))
        if reject:
            out.append("%s %s postfix/smtpd[%d]: NOQUEUE: reject: RCPT from unknown[%s]: 550 5.1.1 "
                       "<nobody%d@example.org>: Recipient address rejected: User unknown in local recipient "
                       "table; from=<x@spam.example> to=<nobody%d@example.org> proto=ESMTP helo=<x>\n"
                       % (s, host, pid[0], ip, pid[0], pid[0]))
            rejects[host] += 1
        out.append("%s %s postfix/smtpd[%d]: disconnect from unknown[%s] ehlo=1 mail=1 rcpt=0/1 quit=1 "
                   "commands=3/4\n" % (s, host, pid[0], ip))
        out.append("%s %s postfix/anvil[99]: statistics: max connection rate 1/60s for (smtp:%s) at %s\n"
                   % (s, host, ip, s))
    with open(files[host], "a") as f:
        f.write("".join(out))
    written[host] += len(out)


def api(port, path, headers=None):
    st, h, body = request(port, "GET", path, headers=headers)
    try:
        return st, h, json.loads(body)
    except ValueError:
        return st, h, body


def bl_port(dm):
    import re
    m = re.search(r"blocklists \(only\) on http://127\.0\.0\.1:(\d+)/", dm.stderr())
    return int(m.group(1)) if m else None


dm = Daemon(db, list(files.values()), conf=conf).start()
try:
    P = dm.port
    check("the daemon serves its API", P is not None, dm.stderr()[-800:])
    BP = bl_port(dm)
    check("the blocklist listener is up on its own port", BP and BP != P, dm.stderr()[-800:])
    # the abuser spread over the three hosts, a good sender on one
    for h in HOSTS:
        write(h, ABUSER, 2)
    write(HOSTS[0], GOOD, 3, reject=False)

    def hosts_now():
        st, _, j = api(P, "/api/v1/hosts")
        return {it["host"]: it for it in j["items"]} if st == 200 else {}

    got = mxwtest.wait_for(lambda: {h: it["lines"] for h, it in hosts_now().items()}, dict(written), timeout=20)
    check("/api/v1/hosts: every line counted once for its host, parsed or not", got == written, (got, written))
    hs = hosts_now()
    for h in HOSTS:
        it = hs.get(h, {})
        check("%s: last line, last seen, a small lag, not silent" % h,
              it.get("last_line") and it.get("last_seen") and it.get("lag_seconds") is not None
              and 0 <= it["lag_seconds"] <= 5 and it.get("silent") is False, it)
        check("%s: events and rejects of the last hour" % h,
              it.get("rejects_last_hour") == rejects[h] and it.get("events_last_hour", 0) >= 3 * rejects[h], it)

    # ---------------------------------------------------------------- host=
    for h in HOSTS:
        st, _, s = api(P, "/api/v1/summary?host=" + h)
        check("summary?host=%s: its rejects only" % h, st == 200 and s.get("host") == h
              and s["rejects"]["last_hour"] == rejects[h] and s["ingest"]["lines_read"] == written[h], s)
        st, _, t = api(P, "/api/v1/timeseries?metric=kinds&host=" + h)
        check("timeseries?host=%s: its rejects only" % h, st == 200 and t.get("host") == h
              and sum(t["series"].get("reject", [])) == rejects[h], t)
        st, _, top = api(P, "/api/v1/top?by=ip&host=" + h)
        items = {it["prefix"]: it["count"] for it in top.get("items", [])} if st == 200 else None
        check("top?host=%s: the abuser with its evidence on that host" % h, items == {ABUSER: rejects[h]}, top)
        st, _, ev = api(P, "/api/v1/events?host=" + h)
        check("events?host=%s: that host's rows only" % h, st == 200 and len(ev["items"]) == rejects[h]
              and all(e["host"] == h for e in ev["items"]), ev)
    st, _, top = api(P, "/api/v1/top?by=ip&kind=reject&host=" + HOSTS[0])
    items = {it["prefix"]: it["count"] for it in top.get("items", [])} if st == 200 else None
    check("top?kind=reject&host=: that host's refusals", items == {ABUSER: rejects[HOSTS[0]]}, top)
    st, _, j = api(P, "/api/v1/top?by=ip&kind=connect&host=" + HOSTS[0])
    check("top?kind=connect&host= is 400 (connects are not counted per host)", st == 400, (st, j))
    st, _, top = api(P, "/api/v1/top?by=ip")
    items = {it["prefix"]: it["count"] for it in top.get("items", [])} if st == 200 else None
    check("top without host: the abuser over every host", items == {ABUSER: sum(rejects.values())}, top)
    st, _, s = api(P, "/api/v1/summary")
    check("summary without host: every host", st == 200 and s["rejects"]["last_hour"] == sum(rejects.values()), s)
    st, _, j = api(P, "/api/v1/summary?host=nosuch.example")
    check("summary?host=unknown is 404", st == 404 and "no lines" in j.get("error", ""), (st, j))
    st, _, j = api(P, "/api/v1/events?host=nosuch.example")
    check("events?host=unknown is empty", st == 200 and j["items"] == [], j)
    for bad in ["", "%01x", "a%20b%0a"]:
        st, _, j = api(P, "/api/v1/top?host=" + bad)
        check("top?host=%r is 400" % bad, st == 400 and "host" in j.get("error", ""), (st, j))
    st, _, j = api(P, "/api/v1/timeseries?host=mx1.example.net&class=203.0.113.0/24")
    check("timeseries with class and host is 400", st == 400, (st, j))
    st, _, j = api(P, "/api/v1/top?host=mx1.example.net&kind=accept")
    check("top?host=&kind=accept is 400 (not counted per host)", st == 400, (st, j))

    # ---------------------------------------------------------------- stats, metrics
    r = subprocess.run([MXW, "stats", "--db", db, "--json"], capture_output=True, text=True, timeout=30)
    sj = json.loads(r.stdout) if r.returncode == 0 else {}
    check("stats --json lists the hosts with their lines",
          {it["host"]: it["lines"] for it in sj.get("hosts", [])} == written, (r.stderr[-300:], sj.get("hosts")))
    r = subprocess.run([MXW, "stats", "--db", db], capture_output=True, text=True, timeout=30)
    check("stats names each host", r.returncode == 0 and all(h in r.stdout for h in HOSTS), r.stdout[-800:])
    st, _, body = request(P, "GET", "/metrics")
    text = body.decode()
    check("/metrics: lines per host", all('mxwarden_host_lines_total{host="%s"} %d' % (h, written[h]) in text
                                          for h in HOSTS), text[-2500:])
    check("/metrics: silence per host", 'mxwarden_host_silent{host="mx3.example.net"} 0' in text, text[-2500:])

    # ---------------------------------------------------------------- silence
    st, _, j = api(P, "/healthz")
    check("/healthz ok while every host sends", st == 200 and j.get("status") == "ok", j)
    end = time.time() + 5.5  # mx3 stays quiet past host_silence (3 s)
    while time.time() < end:
        write(HOSTS[0], GOOD, 1, reject=False)
        write(HOSTS[1], GOOD, 1, reject=False)
        time.sleep(0.5)
    st, _, j = api(P, "/healthz")
    silent = [x["host"] for x in j.get("silent_hosts", [])] if isinstance(j, dict) else None
    check("/healthz flags the quiet host, 200 with status warning", st == 200 and j.get("status") == "warning"
          and silent == [HOSTS[2]], (st, j))
    st, _, body = request(P, "GET", "/metrics")
    check("/metrics: the quiet host is silent", 'mxwarden_host_silent{host="mx3.example.net"} 1' in body.decode())
    write(HOSTS[2], GOOD, 1, reject=False)

    def health():
        st, _, j = api(P, "/healthz")
        return j.get("status") if isinstance(j, dict) else None

    check("once it sends again, /healthz is ok", mxwtest.wait_for(health, "ok", timeout=10) == "ok")

    # ---------------------------------------------------------------- blocklist listener
    auth = {"Authorization": "Bearer " + TOKEN}
    st, h1, b1 = request(BP, "GET", "/api/v1/blocklist?format=rbldnsd", headers=auth)
    check("blocklist listener: the zone with the token, with an ETag", st == 200 and h1.get("etag")
          and b1.startswith(b"# mxwarden rbldnsd blocklist"), (st, h1, b1[:200]))
    st, _, _ = request(BP, "GET", "/api/v1/blocklist?format=rbldnsd")
    check("blocklist listener: 401 without the token", st == 401, st)
    st, _, _ = request(BP, "GET", "/api/v1/blocklist?format=rbldnsd", headers={"Authorization": "Bearer nope"})
    check("blocklist listener: 401 with a wrong token", st == 401, st)
    for path in ["/", "/api/v1/summary", "/api/v1/hosts", "/metrics", "/static/app.js", "/api/v1/blocks",
                 "/lookup/" + ABUSER, "/api/v1/lookup/" + ABUSER]:
        st, _, _ = request(BP, "GET", path, headers=auth)
        check("blocklist listener: %s is 404 (the dashboard is not exposed)" % path, st == 404, st)
    st, _, _ = request(BP, "POST", "/api/v1/blocks", headers=auth, body=b"{}")
    check("blocklist listener: POST is 405", st == 405, st)
    st, _, j = api(BP, "/healthz", headers=auth)
    check("blocklist listener: /healthz", st == 200 and j.get("status") in ("ok", "warning"), (st, j))
    time.sleep(1.2)  # the header's "generated" second changes
    st, h2, b2 = request(BP, "GET", "/api/v1/blocklist?format=rbldnsd", headers=dict(auth, **{
        "If-None-Match": h1["etag"]}))
    check("blocklist listener: 304 to If-None-Match while no decision changed", st == 304 and b2 == b"", (st, b2))
    r = subprocess.run([MXW, "block", "203.0.113.128/25", "--for", "1h", "--reason", "test", "--db", db],
                       capture_output=True, text=True, timeout=30)
    check("mxwarden block", r.returncode == 0, r.stderr)
    st, h3, b3 = request(BP, "GET", "/api/v1/blocklist?format=rbldnsd", headers=dict(auth, **{
        "If-None-Match": h1["etag"]}))
    check("blocklist listener: 200 with a new ETag after a decision changed", st == 200
          and h3.get("etag") != h1["etag"] and b"203.0.113.128/25 :127.0.0.2:" in b3, (st, h3, b3[:400]))
finally:
    dm.stop()

# ---------------------------------------------------------------- an import flags nothing
old = os.path.join(d, "old.log")
with open(old, "w") as f:
    for i in range(20):
        f.write("Jan  5 10:00:%02d mxold.example.net postfix/smtpd[7]: connect from unknown[%s]\n" % (i, GOOD))
db2 = os.path.join(d, "imp.db")
r = subprocess.run([MXW, "import", "--db", db2, "-q", old], capture_output=True, text=True, timeout=60)
check("import of an old log", r.returncode == 0, r.stderr)
dm2 = Daemon(db2, [], conf=conf).start()
try:
    st, _, j = api(dm2.port, "/api/v1/hosts")
    it = j["items"][0] if st == 200 and j.get("items") else {}
    check("an imported host: its lines, never seen live, not silent", it.get("host") == "mxold.example.net"
          and it.get("lines") == 20 and it.get("last_seen") is None and it.get("silent") is False, j)
    st, _, j = api(dm2.port, "/healthz")
    check("/healthz after an import of old logs is ok", st == 200 and j.get("status") == "ok", j)
finally:
    dm2.stop()
if mxwtest.failures == 0:
    import shutil
    shutil.rmtree(d, ignore_errors=True)
else:
    print("kept " + d)
done()
