#!/usr/bin/env python3
"""test_config_doc.py - the README's configuration tables agree with the key
table (base/config.c), which `mxwarden check-config --keys` prints:

  * the reference between <!-- keys: ... --> and <!-- /keys --> is exactly
    what --keys prints (regenerate it with that command when a key changes);
  * every hand-written table of the README that names keys in its first
    column and their defaults in its second (the [rules] table, the
    [safety] mta_trusted table) gives each key the table's default;
  * every key the README names in such a table exists.
"""
import os, re, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import MXW, check, done  # noqa: E402

SRC = os.environ.get("MXW_SOURCE", ".")

readme = open(os.path.join(SRC, "README.md")).read()
md = subprocess.run([MXW, "check-config", "--keys"], capture_output=True, text=True, check=True).stdout
tsv = subprocess.run([MXW, "check-config", "--keys=tsv"], capture_output=True, text=True, check=True).stdout

m = re.search(r"<!-- keys: mxwarden check-config --keys -->\n(.*?)<!-- /keys -->", readme, re.S)
check("the README holds the key reference", m is not None)
if m:
    got, want = m.group(1).splitlines(), md.splitlines()
    diff = [(i + 1, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
    check("the README's key reference is what check-config --keys prints",
          got == want, "first difference (line, README, --keys): %s; %d lines vs %d" % (
              diff[:1], len(got), len(want)))

table = {}
for line in tsv.splitlines():
    sec, key, value, default, bounds, meaning = line.split("\t")
    table.setdefault(key, []).append((sec, default))
check("--keys=tsv lists every section's keys", len(table) > 100 and "batch_lines" in table, len(table))


def defaults_of(key):
    """The key's defaults as the README writes them (a name may stand in
    several sections: keep, timeout), parentheses dropped."""
    return [d[1:-1] if d.startswith("(") and d.endswith(")") else d for sec, d in table[key]]


def same_default(readme_says, key):
    """An unset key may be written "none", "unset" or left empty."""
    return any(readme_says == d or (d == "" and readme_says in ("none", "unset", "")) for d in defaults_of(key))


# hand-written tables: | `a`, `b` | da, db | meaning |
rows = 0
for line in readme[:m.start()].splitlines() + readme[m.end():].splitlines() if m else []:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) < 3 or not cells[0].startswith("`"):
        continue
    if not re.fullmatch(r"`[a-z0-9_]+`(, `[a-z0-9_]+`)*", cells[0]):
        continue  # not a cell of keys alone
    keys = re.findall(r"`([a-z0-9_]+)`", cells[0])
    if not all(k in table for k in keys):
        continue
    defaults = [d.strip() for d in cells[1].split(",")]
    if len(defaults) != len(keys):
        continue  # not a key/default table (its second column says something else)
    rows += 1
    for k, d in zip(keys, defaults):
        check("README: %s's default is %s" % (k, " or ".join(defaults_of(k)) or "unset"), same_default(d, k),
              "README says %r" % d)
check("the hand-written key tables were found (rules, mta_trusted)", rows >= 15, rows)
done()
