#!/usr/bin/env python3
"""test_stats_cli.py - `mxwarden stats`: the JSON object after importing a corpus
log agrees with the file (size, line count) and with `mxwarden parse --stats` of
the same file (events by kind and category); the text form shows the same
numbers; a missing database and bad flags give clear errors and the right exit
codes; stats never creates a database."""
import json, os, shutil, subprocess, sys, tempfile

MXW = os.environ["MXWARDEN"]
SHARED = os.environ["MXW_SHARED"]
LOG = os.path.join(SHARED, "corpus", "generated", "postfix-rfc3164-20k.log")
failures = 0


def run(*args):
    p = subprocess.run([MXW, *args], capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def check(name, cond, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)))
    if not cond:
        failures += 1


if not os.path.exists(LOG):
    print(f"SKIP: {LOG} missing (../shared not beside the checkout)")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="mxw-stats-")
try:
    db = os.path.join(tmp, "var", "m.db")

    rc, out, err = run("stats", "--db", db)
    check("missing database: exit 1", rc == 1, f"rc={rc}")
    check("missing database: says so", "no database yet" in err, err)
    check("stats does not create the database", not os.path.exists(db))

    rc, out, err = run("stats", "--bogus")
    check("unknown flag: exit 2 with usage", rc == 2 and "usage: mxwarden stats" in err, f"rc={rc} {err!r}")
    rc, out, err = run("stats", "--db", db, "extra")
    check("extra argument: exit 2", rc == 2, f"rc={rc}")

    # What parse sees in the file: the reference numbers.
    rc, out, err = run("parse", "--quiet", "--stats", LOG)
    want = {"kind": {}, "category": {}}
    for line in (out + err).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in want:
            want[parts[0]][parts[1]] = int(parts[2])
        elif len(parts) == 2 and parts[0] == "lines":
            want["lines"] = int(parts[1])
    check("parse --stats gives reference numbers", want.get("lines") == 20000 and want["kind"], out + err)

    rc, out, err = run("import", "-q", "--db", db, LOG)
    check("import succeeds", rc == 0, err)

    rc, out, err = run("stats", "--db", db, "--json")
    check("stats --json exits 0", rc == 0, err)
    try:
        o = json.loads(out)
    except ValueError as e:
        o = {}
        check("stats --json is one JSON object", False, e)
    check("output is ASCII", all(ord(c) < 128 for c in out), "non-ASCII byte")
    for key in ("lines_read", "events", "categories", "unparsed", "files", "decisions_active", "db_bytes"):
        check(f"field {key} present", key in o, sorted(o))
    check("lines_read equals the file's lines", o.get("lines_read") == 20000, o.get("lines_read"))
    files = o.get("files", [])
    check("one file", len(files) == 1, files)
    if files:
        f = files[0]
        check("file path", f.get("path", "").endswith("postfix-rfc3164-20k.log"), f)
        check("file offset is its size", f.get("offset") == os.path.getsize(LOG), f"{f.get('offset')} != {os.path.getsize(LOG)}")
        check("file lines", f.get("lines") == 20000, f)
    check("events by kind equal parse's", o.get("events") == want["kind"],
          f"got {o.get('events')} want {want['kind']}")
    want_cats = {k: v for k, v in want["category"].items() if k != "none"}
    check("categories equal parse's (none excluded)", o.get("categories") == want_cats,
          f"got {o.get('categories')} want {want_cats}")
    check("decisions_active is a count", isinstance(o.get("decisions_active"), int))
    check("db_bytes is the file size or more", o.get("db_bytes", 0) >= os.path.getsize(db), o.get("db_bytes"))

    # Importing the same file again adds nothing.
    rc, out2, err = run("import", "-q", "--db", db, LOG)
    rc, out3, err = run("stats", "--db", db, "--json")
    o2 = json.loads(out3) if rc == 0 else {}
    check("second import adds nothing", o2.get("lines_read") == 20000 and o2.get("events") == o.get("events"),
          f"{o2.get('lines_read')} {o2.get('events')}")

    rc, out, err = run("stats", "--db", db)
    check("text form exits 0", rc == 0, err)
    check("text form: lines read", "lines read:        20000" in out, out)
    check("text form: reject count", f"reject                   {want['kind'].get('reject')}" in out, out)
    check("text form: file with offset", f"offset {os.path.getsize(LOG)}, 20000 lines" in out, out)

    # A configuration file's [storage] db is used when --db is absent.
    conf = os.path.join(tmp, "m.ini")
    with open(conf, "w") as fp:
        fp.write(f"[storage]\ndb = {db}\n")
    rc, out, err = run("stats", "-c", conf, "--json")
    check("-c FILE: [storage] db is read", rc == 0 and json.loads(out).get("lines_read") == 20000, err)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

sys.exit(1 if failures else 0)
