#!/usr/bin/env python3
"""mkman.py MXWARDEN IN.scd.in OUT.scd - fill a man page's scdoc source
from the program itself, so that the page cannot drift from it:

  @COMMANDS@  every command's --help, as `mxwarden --help` lists them
              (usage, each flag with an example, notes), verbatim;
  @KEYS@      every section and key of the configuration with its type,
              default, bounds and meaning (`check-config --keys=tsv`, the
              key table of base/config.c).

The rest of the page is prose written in IN.scd.in. Run by meson at build
time (docs/man/meson.build); tests/service/test_man.py checks the result.
"""
import subprocess
import sys


def run(exe, *args):
    p = subprocess.run([exe, *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"mkman: {exe} {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def literal(text):
    # scdoc copies a ``` block as it is (no * or _ formatting)
    return "```\n" + text.rstrip("\n") + "\n```\n"


def commands(exe):
    names, on = [], False
    for line in run(exe, "--help").splitlines():
        if line.startswith("commands:"):
            on = True
        elif on and line.startswith("  ") and line[2:3].isalpha():
            names.append(line.split()[0])
        elif on and line.strip() == "":
            if names:
                break
    out = []
    for n in names:
        out.append(f"## mxwarden {n}\n\n" + literal(run(exe, n, "--help")))
    return "\n".join(out)


def escape(s):
    # scdoc formatting characters in running text
    return s.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")


SECTION_TEXT = {
    "storage": "The database and how long it keeps what.",
    "collector": "Where the lines come from: followed files, the journal, the syslog receiver.",
    "parser": "A custom rule, one section per rule (PCRE2), named as you like.",
    "classes": "How addresses are grouped into IP classes.",
    "rules": "The judge's rules, their thresholds and windows.",
    "safety": "What is never blocked, and the limits on what a blocklist may change.",
    "output": "One blocklist file per section, named as you like.",
    "web": "The dashboard and the API.",
    "abuse": "Abuse reports to the offenders' networks.",
    "report": "The digest on a schedule.",
    "notify": "The command told of each decision.",
}


def keys(exe):
    tsv = run(exe, "check-config", "--keys=tsv")
    out, section = [], None
    for line in tsv.splitlines():
        if not line.strip():
            continue
        f = line.split("\t")
        f += [""] * (6 - len(f))
        sec, key, typ, default, bounds, help_ = f[:6]
        if sec != section:
            section = sec
            head = f"[{sec} NAME]" if sec in ("parser", "output") else f"[{sec}]"
            out.append(f"## {head}\n\n{escape(SECTION_TEXT.get(sec, ''))}\n")
        desc = f"*{escape(key)}* = _{escape(typ)}_"
        attrs = []
        attrs.append("default: " + (escape(default) if default else "unset"))
        if bounds:
            attrs.append(escape(bounds))
        out.append(f"{desc}\n\t{escape(help_)} ({'; '.join(attrs)}).\n")
    return "\n".join(out)


def main():
    exe, src, dst = sys.argv[1:4]
    text = open(src, encoding="utf-8").read()
    if "@COMMANDS@" in text:
        text = text.replace("@COMMANDS@", commands(exe))
    if "@KEYS@" in text:
        text = text.replace("@KEYS@", keys(exe))
    with open(dst, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
