#!/usr/bin/env python3
"""test_legitgen.py - the legitimate-traffic generator keeps its promises, for every format:
the same seed gives the same bytes, another seed another log; mxwarden parses every line; the
truth file names every client address the log holds (and nothing it does not), each address belongs
to one sender, every abuser comes back in two or more campaigns inside the log, and every scenario is
there with IPv4 and IPv6 senders."""
import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile

SRC = os.environ.get("MXW_SOURCE", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
import mxwtest  # noqa: E402
from mxwtest import check  # noqa: E402

GEN = os.path.join(SRC, "tests", "legitgen", "legitgen")
MXW = mxwtest.MXW
LEGIT_KINDS = {"background", "big_provider", "greylist", "retry_postfix", "retry_exim", "retry_sendmail",
               "retry_provider", "mailing_list", "srs_forwarder", "backup_mx", "office_nat", "hosting_neighbour",
               "shared_relay", "pregreet_once", "flaky_network", "full_mailbox", "stale_list", "no_rdns",
               "new_correspondent"}
ABUSE_KINDS = {"retry_after_5xx", "dictionary_harvest", "relay_probe", "auth_bruteforce", "protocol_bot",
               "dnsbl_spam_run", "hosting_spammer", "snowshoe_class", "rotating_class6"}


def gen(tmp, name, args):
    log, truth = os.path.join(tmp, name + ".log"), os.path.join(tmp, name + ".json")
    subprocess.run([sys.executable, GEN, "-o", log, "--truth", truth] + args, check=True, capture_output=True)
    with open(log, "rb") as f:
        data = f.read()
    with open(truth) as f:
        return data, json.load(f), log


def parse(log):
    p = subprocess.run([MXW, "parse", "--stats", log], capture_output=True, text=True, timeout=120)
    ips = set()
    for line in p.stdout.splitlines():
        o = json.loads(line)
        if o["ip"]:
            ips.add(str(ipaddress.ip_address(o["ip"])))
    unparsed = int(re.search(r"^unparsed (\d+)$", p.stderr, re.M).group(1))
    return p.returncode, ips, unparsed


def main():
    tmp = tempfile.mkdtemp(prefix="mxw-legitgen-")
    for fmt, extra in [("postfix", []), ("postfix-nops", ["--no-postscreen", "--timestamp", "iso8601"]),
                       ("exim", []), ("sendmail", [])]:
        args = ["--format", fmt.split("-")[0], "--days", "2", "--mix", "lean", "--seed", "5"] + extra
        a, truth, log = gen(tmp, fmt + "-a", args)
        b, truth_b, _ = gen(tmp, fmt + "-b", args)
        c, _, _ = gen(tmp, fmt + "-c", args[:-len(extra) or None][:-1] + ["6"] + extra)
        check("%s: the same seed gives the same log and truth" % fmt, a == b and truth == truth_b)
        check("%s: another seed gives another log" % fmt, a != c)
        lines = a.count(b"\n")
        check("%s: the truth counts the lines (%d)" % (fmt, lines), truth["lines"] == lines)
        rc, ips, unparsed = parse(log)
        check("%s: mxwarden parses every line" % fmt, rc == 0 and unparsed == 0, "rc %d, unparsed %d" % (rc, unparsed))
        owner = {}
        dup = []
        for e in truth["legit"] + truth["abusers"]:
            for ip in e["addresses"]:
                if ip in owner:
                    dup.append(ip)
                owner[ip] = e["id"]
        check("%s: every address belongs to one sender" % fmt, not dup, dup[:5])
        # relay= hosts of our outbound deliveries are not clients: parse gives no event for them
        missing = sorted(ips - set(owner))
        unseen = sorted(set(owner) - ips)
        check("%s: every client in the log is in the truth" % fmt, not missing, missing[:5])
        check("%s: every address in the truth is in the log" % fmt, not unseen, unseen[:5])
        kinds = {e["kind"] for e in truth["legit"]}
        check("%s: every legitimate scenario is there" % fmt, kinds >= LEGIT_KINDS, sorted(LEGIT_KINDS - kinds))
        akinds = {e["kind"] for e in truth["abusers"]}
        check("%s: every abuser kind is there" % fmt, akinds >= ABUSE_KINDS, sorted(ABUSE_KINDS - akinds))
        fams = {f for e in truth["legit"] for f in e["families"]}
        check("%s: IPv4 and IPv6 senders" % fmt, fams == {"ipv4", "ipv6"}, fams)
        t0, t1 = truth["first_line_ts"], truth["last_line_ts"]
        bad = [e["id"] for e in truth["abusers"] if len(e["campaigns"]) < 2 or any(
            not (t0 <= c["start_ts"] <= c["end_ts"] <= t1 + 1) for c in e["campaigns"])]
        check("%s: every abuser comes back (2+ campaigns inside the log)" % fmt, not bad, bad)
        gaps = [b2["start_ts"] - b1["end_ts"] for e in truth["abusers"] for b1, b2 in
                zip(e["campaigns"], e["campaigns"][1:])]
        check("%s: campaigns are hours apart" % fmt, gaps and min(gaps) >= 3600, min(gaps) if gaps else None)
        cls = [e for e in truth["abusers"] if e["scope"] == "class"]
        check("%s: class abusers are many light members" % fmt,
              all(len(e["addresses"]) >= 20 and all(ipaddress.ip_address(a) in ipaddress.ip_network(e["cidr"])
                                                    for a in e["addresses"]) for e in cls) and cls)
    mxwtest.done()


if __name__ == "__main__":
    main()
