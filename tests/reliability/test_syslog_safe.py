#!/usr/bin/env python3
"""test_syslog_safe.py - the syslog receiver is safe by default (issue 17,
item 3), in a network namespace of its own whose loopback also holds
192.0.2.1, 198.51.100.7 and 2001:db8::5 (root; skipped otherwise):
  - listening beyond loopback without syslog_allow is refused (check-config
    and run), naming syslog_allow;
  - without syslog_allow only loopback peers may send;
  - with it only its peers, and over UDP only loopback ones (a UDP source
    address can be forged) unless syslog_udp_remote = yes, which is a
    warning;
  - every refusal is counted (syslog_dropped) and logged once."""
import os, socket, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

private_net_ns(["192.0.2.1/32", "198.51.100.7/32", "2001:db8::5/128"])
d = scratch("mxw-syslog-")


def msg(n):
    return ("<22>" + seq_line(n)).encode()


def tcp(src, dst, port, a, b):
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    try:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.settimeout(5)
        s.connect((dst, port))
        for n in range(a, b):
            s.sendall(msg(n))
        s.close()
    except OSError:
        pass  # a refused peer's connection is closed at once


def udp(src, dst, port, a, b):
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((src, 0))
    for n in range(a, b):
        s.sendto(msg(n), (dst, port))
    s.close()


def conf(name, text):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write("[collector]\n" + text)
    return p


def start(name, listen, cfg=None):
    db = os.path.join(d, name + ".db")
    dm = Daemon(db, [], ["--syslog-listen", listen], conf=cfg).start()
    ok = wait_for(lambda: "syslog receiver on" in dm.stderr(), True, 20)
    check("%s: the receiver listens on %s" % (name, listen), ok and dm.alive(), dm.stderr()[-500:])
    return dm, db


def settle(db, marker_send, marker):
    """Send a marker over an allowed channel and wait for it: what was sent
    before it has been handled."""
    marker_send()
    ok = wait_for(lambda: seq_counts(db).get(marker) == 1, True, 20)
    time.sleep(0.5)
    return ok


def dropped(db):
    r = run([MXW, "stats", "--db", db, "--json"])
    try:
        return json.loads(r.stdout).get("unparsed", {}).get("syslog_dropped", 0)
    except ValueError:
        return None


# --- beyond loopback without syslog_allow: refused
P = free_port("0.0.0.0")
r = run([MXW, "check-config", "-c", conf("open.ini", "syslog_listen = 0.0.0.0:%d\n" % P)])
check("check-config: syslog_listen = 0.0.0.0 without syslog_allow is an error naming syslog_allow",
      r.returncode == 1 and "without syslog_allow" in r.stderr, r.stderr)
dm = Daemon(os.path.join(d, "open.db"), [], ["--syslog-listen", "0.0.0.0:%d" % P]).start(want_port=False)
try:
    dm.p.wait(30)
except subprocess.TimeoutExpired:
    pass
check("run --syslog-listen 0.0.0.0 without syslog_allow does not start, naming syslog_allow",
      dm.p.returncode not in (None, 0) and "syslog_allow" in dm.stderr(), (dm.p.returncode, dm.stderr()[-400:]))
dm.stop()

# --- no allow list: loopback only
P = free_port("0.0.0.0")
dm, db = start("lo", "127.0.0.1:%d" % P)
tcp("127.0.0.1", "127.0.0.1", P, 0, 10)
udp("127.0.0.1", "127.0.0.1", P, 10, 20)
tcp("192.0.2.1", "127.0.0.1", P, 20, 30)
udp("192.0.2.1", "127.0.0.1", P, 30, 40)
ok = settle(db, lambda: tcp("127.0.0.1", "127.0.0.1", P, 99, 100), 99)
c = seq_counts(db)
check("no syslog_allow: TCP and UDP from loopback arrive (20 messages)", ok and all(c.get(i) == 1 for i in range(20)),
      sorted(c)[:30])
check("no syslog_allow: TCP and UDP from 192.0.2.1 are refused", not any(i in c for i in range(20, 40)), sorted(c))
check("the refusal is logged once, naming the peer and syslog_allow",
      dm.stderr().count("from 192.0.2.1 refused: not in syslog_allow (empty: loopback only)") == 1, dm.stderr()[-800:])
dm.stop()
check("refusals counted as syslog_dropped (1 connection + 10 datagrams)", dropped(db) == 11, dropped(db))

# --- an allow list: its peers, TCP; UDP only from loopback peers
P = free_port("0.0.0.0")
cfg = conf("allow.ini", "syslog_allow = 192.0.2.0/24, 127.0.0.1\n")
dm, db = start("allow", "0.0.0.0:%d" % P, cfg)
tcp("192.0.2.1", "192.0.2.1", P, 0, 10)
udp("192.0.2.1", "192.0.2.1", P, 10, 20)
tcp("198.51.100.7", "192.0.2.1", P, 20, 30)
udp("127.0.0.1", "127.0.0.1", P, 30, 40)
ok = settle(db, lambda: tcp("192.0.2.1", "192.0.2.1", P, 99, 100), 99)
c = seq_counts(db)
check("syslog_allow 192.0.2.0/24: TCP from 192.0.2.1 arrives", ok and all(c.get(i) == 1 for i in range(10)), sorted(c))
check("... UDP from 192.0.2.1 is refused (forgeable)", not any(i in c for i in range(10, 20)), sorted(c))
check("... TCP from 198.51.100.7 is refused", not any(i in c for i in range(20, 30)), sorted(c))
check("... UDP from an allowed loopback peer arrives", all(c.get(i) == 1 for i in range(30, 40)), sorted(c))
check("the UDP refusal is logged once with the way out",
      dm.stderr().count("a UDP datagram from 192.0.2.1 refused: UDP source addresses can be forged") == 1
      and "syslog_udp_remote = yes" in dm.stderr(), dm.stderr()[-800:])
dm.stop()

# --- IPv6: the same rules
P = free_port("0.0.0.0")
cfg = conf("v6.ini", "syslog_allow = 2001:db8::/32\n")
dm, db = start("v6", "[::]:%d" % P, cfg)
tcp("2001:db8::5", "2001:db8::5", P, 0, 10)
udp("2001:db8::5", "2001:db8::5", P, 10, 20)
tcp("192.0.2.1", "192.0.2.1", P, 20, 30)
ok = settle(db, lambda: tcp("2001:db8::5", "2001:db8::5", P, 99, 100), 99)
c = seq_counts(db)
check("IPv6: TCP from an allowed 2001:db8::5 arrives, its UDP and an unlisted IPv4 peer are refused",
      ok and all(c.get(i) == 1 for i in range(10)) and not any(i in c for i in range(10, 30)), sorted(c))
dm.stop()

# --- syslog_udp_remote = yes: a warning, and UDP from allowed peers
P = free_port("0.0.0.0")
cfg = conf("udp.ini", "syslog_listen = 0.0.0.0:%d\nsyslog_allow = 192.0.2.0/24\nsyslog_udp_remote = yes\n" % P)
r = run([MXW, "check-config", "-c", cfg])
check("check-config: syslog_udp_remote = yes loads with a warning that UDP can be forged",
      r.returncode == 0 and "can be forged" in r.stderr, r.stderr)
dm, db = start("udp", "0.0.0.0:%d" % P, cfg)
check("run warns at start", "can be forged" in dm.stderr(), dm.stderr()[-500:])
udp("192.0.2.1", "192.0.2.1", P, 0, 10)
udp("198.51.100.7", "192.0.2.1", P, 10, 20)
ok = settle(db, lambda: tcp("192.0.2.1", "192.0.2.1", P, 99, 100), 99)
c = seq_counts(db)
check("syslog_udp_remote = yes: UDP from an unlisted peer is still refused", not any(i in c for i in range(10, 20)),
      sorted(c))
check("syslog_udp_remote = yes: UDP from the allow-listed 192.0.2.1 arrives, each line once",
      ok and all(c.get(i) == 1 for i in range(10)), sorted(c))
dm.stop()
shutil.rmtree(d, ignore_errors=True)
done()
