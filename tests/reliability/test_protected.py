#!/usr/bin/env python3
"""test_protected.py - protected_networks adds to the built-in ranges and
the host's own addresses, never silently replaces them (issue 17, item 1):
check-config -v prints the effective list with the source of each entry; a
dropped built-in range is a warning naming it; a cut that takes out nothing
is an error; `block`, `export` and an import's automatic decisions all
honour the effective list."""
import os, re, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

d = scratch("mxw-prot-")


def conf(name, text):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write("[safety]\nmta_trusted = none\n" + text)
    return p


def listed(out):
    """The effective list of check-config -v: {prefix: source}."""
    sec = out[out.find("# protected (never blocked)"):]
    sec = sec[:sec.find("# allow-listed")] if "# allow-listed" in sec else sec
    return dict(re.findall(r"^#\s+(\S+/\d+)\s+# (.+)$", sec, re.M))


# --- a custom list adds: the built-in ranges and this host's addresses stay
add = conf("add.ini", "protected_networks = 203.0.113.0/24\n")
r = run([MXW, "check-config", "-c", add, "-v"])
eff = listed(r.stdout)
# (other warnings, such as "no [output] is configured", are not this test's business)
warns = [l for l in r.stderr.splitlines() if "warning:" in l]
check("a custom list: check-config OK, no warning about what is protected", r.returncode == 0
      and not [l for l in warns if "protected" in l or "this host" in l], r.stderr)
check("the value reads back with the built-in ranges kept",
      "protected_networks = default, local, 203.0.113.0/24" in r.stdout, r.stdout[:400])
check("the effective list holds the built-in ranges with their source",
      eff.get("10.0.0.0/8") == "built-in: RFC 1918 private" and eff.get("127.0.0.0/8") == "built-in: loopback"
      and eff.get("fc00::/7") == "built-in: unique local", eff)
check("... and the configured one with its file and line",
      eff.get("203.0.113.0/24") == "protected_networks (%s:3)" % add, eff)
host = [p for p, s in eff.items() if s.startswith("this host (")]
print("this host's own addresses outside the built-in ranges: %s" % (host or "none"), flush=True)
check("every entry names its source", all(s.startswith(("built-in: ", "this host (", "protected_networks"))
                                           for s in eff.values()), eff)

# --- block honours the effective list
db = os.path.join(d, "b.db")


def block(cfg, prefix):
    return run([MXW, "block", "-c", cfg, "--db", db, prefix, "--for", "1h", "--reason", "test"])


for p in ("10.0.0.0/24", "192.168.7.0/24", "fd00::/64", "203.0.113.0/24") + tuple(host[:1]):
    r = block(add, p)
    check("block %s refused with a custom list (built-in, this host or configured)" % p,
          r.returncode == 1 and "protected" in r.stderr, (r.returncode, r.stderr[-300:]))
r = block(add, "198.51.100.0/24")
check("block 198.51.100.0/24 accepted", r.returncode == 0, r.stderr[-300:])

# --- a cut drops part of a built-in range, with a warning naming it
cut = conf("cut.ini", "protected_networks = !10.20.0.0/16\n")
r = run([MXW, "check-config", "-c", cut, "-v"])
eff = listed(r.stdout)
check("a cut: check-config OK with a warning naming the range and its built-in range",
      r.returncode == 0 and "!10.20.0.0/16 takes 10.20.0.0/16 out of the built-in range 10.0.0.0/8" in r.stderr,
      r.stderr)
check("the cut range is gone, the rest of 10/8 stays",
      "10.0.0.0/8" not in eff and "10.21.0.0/16" in eff and "10.128.0.0/9" in eff and "127.0.0.0/8" in eff, eff)
r = block(cut, "10.20.1.0/24")
check("block inside the cut accepted", r.returncode == 0, r.stderr[-300:])
r = block(cut, "10.21.1.0/24")
check("block beside the cut refused", r.returncode == 1 and "protected" in r.stderr, r.stderr[-300:])
r = run([MXW, "export", "-c", cut, "--db", db, "--format", "plain"])
got = {l for l in r.stdout.splitlines() if l and not l.startswith("#")}
check("export writes the blocks outside the effective list only", got == {"10.20.1.0/24", "198.51.100.0/24"},
      (got, r.stderr[-300:]))
r = run([MXW, "export", "-c", add, "--db", db, "--format", "plain"])
got = {l for l in r.stdout.splitlines() if l and not l.startswith("#")}
check("... and with the custom list, 10.20.1.0/24 stays out (a built-in range)", got == {"198.51.100.0/24"}, got)

# --- explicit drops and mistakes
r = run([MXW, "check-config", "-c", conf("none.ini", "protected_networks = none\n"), "-v"])
check("none: OK, warnings name the built-in ranges and this host's addresses",
      r.returncode == 0 and "10.0.0.0/8 (RFC 1918 private)" in r.stderr
      and "this host's own addresses are not protected" in r.stderr and listed(r.stdout) == {}, r.stderr)
r = run([MXW, "check-config", "-c", conf("nodef.ini", "protected_networks = !default, 203.0.113.0/24\n"), "-v"])
eff = listed(r.stdout)
check("!default: only this host's and the configured networks",
      r.returncode == 0 and "the built-in ranges 0.0.0.0/8" in r.stderr and "10.0.0.0/8" not in eff
      and "203.0.113.0/24" in eff and all(s.startswith(("this host", "protected_networks")) for s in eff.values()),
      (r.stderr, eff))
r = run([MXW, "check-config", "-c", conf("bad.ini", "protected_networks = !local, !198.51.100.0/24\n")])
check("a cut that takes out nothing is an error with its line", r.returncode == 1 and re.search(
    r"bad\.ini:3: protected_networks: !198\.51\.100\.0/24 takes out nothing", r.stderr), r.stderr)

# --- automatic decisions: an abuser in a built-in range is never decided with a custom list
def harvest(ip, base, t):
    out = ""
    for c in range(3):
        when = stamp(t + c * 60)
        for k in range(6):
            n = base + c * 6 + k
            out += seq_line(n, ip=ip, when=when)
        out += disconnect_line(ip, when, 6)
    return out


log = os.path.join(d, "mail.log")
t0 = time.time() - 600
append(log, harvest("10.0.0.9", 0, t0) + harvest("198.51.100.9", 100, t0), "w")
db2 = os.path.join(d, "i.db")
r = run([MXW, "import", "-q", "-c", add, "--db", db2, log])
rows = q(db2, "SELECT prefix FROM decisions")
check("import: the same harvest decides 198.51.100.9 and not 10.0.0.9 (built-in range kept)",
      r.returncode == 0 and any(p.startswith("198.51.100.") for p, in rows)
      and not any(p.startswith("10.") for p, in rows), (rows, r.stderr[-300:]))
shutil.rmtree(d, ignore_errors=True)
done()
