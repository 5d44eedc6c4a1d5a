#!/usr/bin/env python3
"""Differential test: our strict address parser against Python's ipaddress on
random and edge-case strings (leading zeros, short forms, hex, overlong,
zones, brackets, embedded IPv4). Same accept/reject decisions and the same
canonical text after our IPv4-mapped fold. Deterministic (fixed seed)."""
import ipaddress, os, random, subprocess, sys

tool = sys.argv[1]
rng = random.Random(20261127)
N = int(os.environ.get("MXW_IPDIFF_N", "200000"))


def rand_v4():
    parts = []
    for _ in range(rng.choice([3, 4, 4, 4, 4, 5])):
        r = rng.random()
        if r < 0.6:
            parts.append(str(rng.randrange(256)))
        elif r < 0.7:
            parts.append("0" + str(rng.randrange(100)))
        elif r < 0.8:
            parts.append(str(rng.randrange(256, 1000)))
        elif r < 0.85:
            parts.append("")
        elif r < 0.9:
            parts.append("0x" + format(rng.randrange(256), "x"))
        else:
            parts.append(str(rng.randrange(10)))
    return ".".join(parts)


def rand_v6():
    groups = []
    for _ in range(rng.choice([2, 3, 5, 7, 8, 8, 8, 9])):
        r = rng.random()
        if r < 0.5:
            groups.append(format(rng.randrange(65536), "x"))
        elif r < 0.7:
            groups.append("0")
        elif r < 0.75:
            groups.append(format(rng.randrange(65536), "05x"))
        elif r < 0.8:
            groups.append("")
        elif r < 0.85:
            groups.append(format(rng.randrange(65536), "X"))
        else:
            groups.append(format(rng.randrange(16), "x"))
    s = ":".join(groups)
    r = rng.random()
    if r < 0.15:
        s = s.rsplit(":", 2)[0] + ":" + rand_v4() if ":" in s else s
    elif r < 0.25:
        s = "::ffff:" + rand_v4()
    elif r < 0.3:
        s = "[" + s + "]"
    elif r < 0.35:
        s = s + " "
    elif r < 0.45:
        i = rng.randrange(len(s) + 1)
        s = s[:i] + "::" + s[i:]
    return s


edge = ["0.0.0.0", "255.255.255.255", "1.2.3.4", "01.2.3.4", "1.2.3", "1.2.3.4.", ".1.2.3.4", "::", "::1",
        "1::", "::ffff:1.2.3.4", "::ffff:0:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "fe80::1", "2001:db8::",
        "2001:db8:0:0:1:0:0:1", "2001:0:0:1::1", "0:0:0:0:0:0:0:0", "::0:0", "1:0::", "1::0:0"]
cands = edge + [rand_v4() if rng.random() < 0.4 else rand_v6() for _ in range(N)]


def python_canon(s):
    if "%" in s or s != s.strip():
        return None  # zones are compared by the unit tests; whitespace always refused
    try:
        a = ipaddress.ip_address(s)
    except ValueError:
        return None
    if a.version == 6 and a.ipv4_mapped is not None:
        return str(a.ipv4_mapped)
    return str(a)


p = subprocess.run([tool], input="\n".join(cands) + "\n", capture_output=True, text=True, check=True)
ours = p.stdout.split("\n")[:-1]
assert len(ours) == len(cands), (len(ours), len(cands))
bad = 0
for s, o in zip(cands, ours):
    want = python_canon(s)
    got = None if o == "ERR" else o
    if want != got:
        bad += 1
        if bad <= 20:
            print(f"FAIL {s!r}: ours {got!r}, python {want!r}")
acc = sum(1 for o in ours if o != "ERR")
print(f"{len(cands)} strings, {acc} accepted by both, {bad} disagreements")
print(f"{len(cands) - bad} passed, {bad} failed")
sys.exit(1 if bad else 0)
