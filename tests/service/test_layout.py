"""test_layout.py - what `meson install` lays out (issue 15), in a scratch
DESTDIR: the binary in sbin, the two man pages, the example configuration
(which `check-config` accepts), the units, the sysusers and tmpfiles
entries. The man pages render without a warning; mxwarden(8) names every
command and every long flag of each (from `mxwarden --help` and each
command's --help, the usage table of cli/main.c) and mxwarden.conf(5) every
section and key of the key table (`check-config --keys=tsv`) with its
default. The unit's `systemd-analyze security --offline=yes` exposure is at
most 2.5 (printed)."""
import json, os, re, shutil, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

BUILD = os.environ.get("MXW_BUILD", "build")
SCORE_MAX = 2.5


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


def man_text(path):
    p = run("man", "--warnings", "-l", path, env=dict(os.environ, MANWIDTH="200", MAN_KEEP_FORMATTING="0"))
    # backspace overstriking (bold, underline) removed
    return p.returncode, re.sub(r".\x08", "", p.stdout), p.stderr


def main():
    if not os.path.exists(os.path.join(BUILD, "docs", "man", "mxwarden.8")):
        skip("no man pages in this build (scdoc missing)")
    dest = scratch("mxw-layout-")
    try:
        p = run("meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", dest)
        check("meson install into a DESTDIR", p.returncode == 0, p.stderr[-2000:])
        opts = {o["name"]: o["value"] for o in json.loads(run("meson", "introspect", "--buildoptions", BUILD).stdout)}
        prefix = opts["prefix"]
        sysconf = opts["sysconfdir"]
        sysconf = sysconf if sysconf.startswith("/") else os.path.join(prefix, sysconf)

        def at(*parts):
            return os.path.join(dest, *(x.lstrip("/") for x in parts))

        sbin = at(prefix, opts["sbindir"], "mxwarden")
        man8 = at(prefix, opts["mandir"], "man8", "mxwarden.8")
        man5 = at(prefix, opts["mandir"], "man5", "mxwarden.conf.5")
        conf = at(sysconf, "mxwarden", "mxwarden.conf")
        for f in (sbin, man8, man5, conf):
            check("installed: " + os.path.relpath(f, dest), os.path.isfile(f))
        check("the binary is executable", os.access(sbin, os.X_OK))
        units = {}
        for root, _, files in os.walk(dest):
            for f in files:
                units[f] = os.path.join(root, f)
        for u in ("mxwarden.service", "mxwarden-load@.service", "mxwarden-load@.path"):
            check("installed unit " + u, u in units and "/systemd/system/" in units[u])
        sysusers = [os.path.join(r, f) for r, _, fs in os.walk(dest) for f in fs if r.endswith("sysusers.d")]
        tmpfiles = [os.path.join(r, f) for r, _, fs in os.walk(dest) for f in fs if r.endswith("tmpfiles.d")]
        su = open(sysusers[0]).read() if sysusers else ""
        check("sysusers: the mxwarden system user", re.search(r"^u mxwarden -", su, re.M), su)
        check("sysusers: mxwarden is a member of adm", re.search(r"^m mxwarden adm$", su, re.M), su)
        tf = open(tmpfiles[0]).read() if tmpfiles else ""
        check("tmpfiles: /var/lib/mxwarden 0750 mxwarden", re.search(r"^d /var/lib/mxwarden 0750 mxwarden mxwarden", tf, re.M), tf)
        unit = open(units.get("mxwarden.service", "/dev/null")).read()
        check("the unit runs the installed binary", "ExecStart=%s " % os.path.join(prefix, opts["sbindir"], "mxwarden") in unit, unit[:300])
        check("the unit runs as mxwarden, in adm", "User=mxwarden" in unit and "SupplementaryGroups=adm" in unit)
        check("the unit is Type=notify with a watchdog", "Type=notify" in unit and "WatchdogSec=" in unit)
        raf = re.findall(r"^RestrictAddressFamilies=(.*)$", unit, re.M)
        check("the unit lets [web] blocklist_listen serve the MX hosts: AF_INET and AF_INET6, no IPAddressDeny, "
              "no PrivateNetwork", raf and {"AF_INET", "AF_INET6"} <= set(raf[-1].split())
              and not re.search(r"^(IPAddressDeny|PrivateNetwork)=", unit, re.M), raf)

        # the example configuration is accepted as it is
        p = run(MXW, "check-config", "-c", conf)
        check("check-config accepts the example configuration", p.returncode == 0, p.stdout + p.stderr)

        # the man pages render, without a warning
        rc8, t8, e8 = man_text(man8)
        rc5, t5, e5 = man_text(man5)
        check("mxwarden(8) renders without a warning", rc8 == 0 and not e8.strip() and "SYNOPSIS" in t8, e8)
        check("mxwarden.conf(5) renders without a warning", rc5 == 0 and not e5.strip() and "SYNOPSIS" in t5, e5)
        for s in ("EXIT STATUS", "FILES", "SIGNALS", "EXAMPLES", "ENVIRONMENT"):
            check("mxwarden(8) has a section " + s, re.search(r"^" + s + "$", t8, re.M))

        # every command and every long flag
        helptext = run(MXW, "--help").stdout
        cmds = re.findall(r"^  ([a-z][a-z-]+) ", helptext.split("commands:", 1)[1], re.M)
        check("the usage table lists commands", len(cmds) >= 10, cmds)
        check("... among them those that change decisions and load them",
              {"block", "unblock", "allow", "unallow", "decisions", "load"} <= set(cmds), cmds)
        missing = []
        for c in cmds:
            if not re.search(r"^\s*mxwarden %s\s*$" % re.escape(c), t8, re.M):
                missing.append(c)
            h = run(MXW, c, "--help").stdout
            for flag in sorted(set(re.findall(r"(--[a-z][a-z-]+)", h))):
                # the flag in this command's own part of the page
                part = t8.split("mxwarden %s\n" % c, 1)[-1].split("\n   mxwarden ", 1)[0]
                if flag not in part:
                    missing.append(c + " " + flag)
        check("mxwarden(8) has every command and each of its long flags", not missing, missing)

        # every key of the key table, under its section, with its default
        sec = None
        found = set()
        keys_part = t5.split("\nSECTIONS AND KEYS\n", 1)[-1].split("\nEXAMPLE\n", 1)[0]
        for line in keys_part.splitlines():
            m = re.match(r"^\s+\[(\w+)( NAME)?\]\s*$", line)
            if m:
                sec = m.group(1)
                continue
            m = re.match(r"^\s+(\w+) = ", line)
            if m and sec:
                found.add((sec, m.group(1)))
        table = [l.split("\t") for l in run(MXW, "check-config", "--keys=tsv").stdout.splitlines() if l.strip()]
        want = {(f[0], f[1]) for f in table}
        check("the key table has keys", len(want) > 50, len(want))
        check("mxwarden.conf(5) has every key of the table, under its section", want <= found, sorted(want - found))
        check("mxwarden.conf(5) has no key the table lacks", found <= want, sorted(found - want))
        flat = re.sub(r"\s+", " ", t5)
        nodefault = [f[1] for f in table if f[3] and "(default: %s" % re.sub(r"\s+", " ", f[3]) not in flat]
        check("mxwarden.conf(5) gives every key's default", not nodefault, nodefault)

        # the unit's exposure, offline
        if shutil.which("systemd-analyze"):
            p = run("systemd-analyze", "security", "--offline=yes", "--threshold=%d" % (SCORE_MAX * 10),
                    units["mxwarden.service"])
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout)
            score = float(m.group(1)) if m else 99
            print("systemd-analyze security --offline=yes mxwarden.service: %.1f" % score, flush=True)
            check("the unit's exposure is at most %.1f" % SCORE_MAX, p.returncode == 0 and score <= SCORE_MAX,
                  p.stdout[-1500:] + p.stderr[-500:])
            p = run("systemd-analyze", "security", "--offline=yes", units["mxwarden-load@.service"].replace("@.", "@x."))
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    done()


main()
