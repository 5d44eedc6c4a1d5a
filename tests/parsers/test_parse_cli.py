#!/usr/bin/env python3
"""Integration test of `mxwarden parse`: every output line is strict JSON with the
documented fields, --stats counts add up, --format and bad flags behave, and the
events of the real corpora carry the logged client addresses."""
import json
import os
import subprocess
import sys

exe = os.environ["MXWARDEN"]
shared = os.environ.get("MXW_SHARED", "../shared")
env = dict(os.environ, MXWARDEN_NOW="2026-11-28T00:00:00Z", TZ="UTC")
FIELDS = ["ts", "host", "mta", "program", "pid", "queue_id", "ip", "port", "class", "rdns", "helo",
          "from", "to", "user", "stage", "kind", "code", "dsn", "category", "text", "nrcpt", "stats", "line"]
STATS = ["ehlo", "mail", "rcpt", "data", "auth", "commands"]
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def run(args, data=None):
    return subprocess.run([exe, "parse"] + args, input=data, capture_output=True, env=env, timeout=60)


for name in ["postfix-3.7-loopback.log", "postfix-3.7-rsyslog.log", "exim-4.96-loopback-mainlog.log"]:
    path = os.path.join(shared, "corpus", "real", name)
    r = run(["--stats", path])
    check(r.returncode == 0, f"{name}: exit {r.returncode}: {r.stderr[:200]!r}")
    events = []
    ndisc = 0
    for ln in r.stdout.decode("utf-8").splitlines():
        try:
            ev = json.loads(ln)
        except ValueError as e:
            failures.append(f"{name}: invalid JSON {e}: {ln[:200]}")
            continue
        check(list(ev.keys()) == FIELDS, f"{name}: fields {list(ev.keys())}")
        check(ev["ip"] and ev["ip"] in ev["line"], f"{name}: ip {ev['ip']} not in its line")
        check(ev["ts"].endswith("Z"), f"{name}: ts {ev['ts']}")
        if ev["kind"] == "disconnect" and "commands=" in ev["line"]:
            st = ev["stats"]
            check(isinstance(st, dict) and list(st.keys()) == STATS, f"{name}: stats {st!r}")
            if isinstance(st, dict):
                # commands=N[/M] in the line is the "commands" pair
                c = ev["line"].split("commands=")[1].split()[0].split("/")
                want = [int(c[0]), int(c[-1])]
                check(st["commands"] == want, f"{name}: stats commands {st['commands']} want {want}")
            ndisc += 1
        else:
            check(ev["stats"] is None, f"{name}: stats on a {ev['kind']} event: {ev['stats']!r}")
        events.append(ev)
    stats = dict(l.rsplit(" ", 1) for l in r.stderr.decode().splitlines())
    lines = sum(1 for _ in open(path, "rb"))
    check(int(stats["lines"]) == lines, f"{name}: stats lines {stats['lines']} want {lines}")
    check(int(stats["events"]) == len(events), f"{name}: stats events {stats['events']} want {len(events)}")
    check(int(stats["events"]) + int(stats["nothing"]) + int(stats["unparsed"]) == lines,
          f"{name}: counts do not add up")
    check(len(events) > 500, f"{name}: only {len(events)} events")
    if name.startswith("postfix"):
        check(ndisc > 10, f"{name}: only {ndisc} disconnect events with stats")

# --quiet --stats prints no events; a line with bytes that are not UTF-8 gives
# its event, as valid JSON
bad = b"Nov 27 20:23:14 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]\n" \
      b"Nov 27 20:23:14 mx postfix/smtpd[1]: connect from unknown[192.0.2.2] \xc3\xa9\n" \
      b"\x00\x00Nov 27 20:23:14 mx postfix/smtpd[1]: connect from unknown[192.0.2.3]\n" \
      b"Nov 27 20:23:14 mx postfix/smtpd[1]: connect from unknown[192.0.2.4] \xff\n" \
      b"Nov 27 20:23:14 mx postfix/smtpd[1]: connect from unknown[192.0.2.5]"
r = run(["--quiet", "--stats", "-"], bad)
check(r.returncode == 0 and r.stdout == b"", f"--quiet printed {r.stdout[:100]!r}")
check(b"unparsed 0" in r.stderr, f"--stats: {r.stderr!r}")
check(b"events 5" in r.stderr, f"--stats events: {r.stderr!r}")
r = run(["-"], bad)
out = [json.loads(l) for l in r.stdout.decode("utf-8").splitlines()]
check([e["ip"] for e in out] == ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"], f"ips {out}")
check(out[1]["line"].endswith("\u00e9"), "utf-8 kept")
check(out[3]["line"].endswith(" \ufffd"), f"a bad byte shown as U+FFFD: {out[3]['line']!r}")

# usage errors
r = run(["--format", "qmail", "-"], b"")
check(r.returncode == 2, f"bad format exit {r.returncode}")
r = run(["--bogus"])
check(r.returncode == 2, f"bad flag exit {r.returncode}")
r = run(["/nonexistent/file"])
check(r.returncode == 1 and b"/nonexistent/file" in r.stderr, f"missing file: {r.returncode} {r.stderr!r}")

# check-config compiles the [parser] patterns and reports a bad one with its
# offset, at the line of the pattern key (not the section's)
import tempfile
with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as t:
    t.write("[parser broken]\ncategory = other\npattern = ^x (?<ip>[0-9.]+\n")
r = subprocess.run([exe, "check-config", "-c", t.name], capture_output=True, env=env, timeout=60)
check(r.returncode == 1, f"check-config bad pattern: exit {r.returncode}")
want = f"{t.name}:3: [parser broken] pattern error at offset 16: missing closing parenthesis"
check(want.encode() in r.stderr, f"check-config message: {r.stderr!r}")
r = run(["-c", t.name, "-"], b"")
check(r.returncode == 1 and b"pattern error at offset 16" in r.stderr, f"parse with bad rule: {r.returncode}")
os.unlink(t.name)

# an unknown [collector] timezone is a check-config error at the key's line;
# a known one converts local stamps (Berlin, summer: UTC+2)
with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as t:
    t.write("[collector]\ntimezone = Mars/Olympus_Mons\n")
r = subprocess.run([exe, "check-config", "-c", t.name], capture_output=True, env=env, timeout=60)
want = f"{t.name}:2: [collector] timezone: unknown time zone 'Mars/Olympus_Mons'"
check(r.returncode == 1 and want.encode() in r.stderr, f"check-config bad zone: {r.returncode} {r.stderr!r}")
with open(t.name, "w") as f:
    f.write("[collector]\ntimezone = Europe/Berlin\n")
r = subprocess.run([exe, "check-config", "-c", t.name], capture_output=True, env=env, timeout=60)
check(r.returncode == 0, f"check-config Europe/Berlin: {r.returncode} {r.stderr!r}")
r = run(["-c", t.name, "-"], b"Jul  4 12:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]\n")
got = [json.loads(l)["ts"] for l in r.stdout.decode().splitlines()]
check(got == ["2026-07-04T10:00:00Z"], f"parse in Europe/Berlin: {got} {r.stderr!r}")
os.unlink(t.name)

for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
