"""test_emit_kill.py - RELIABILITY.md 19 through `mxwarden run`: the daemon
keeps plain, nft and json blocklists (about 1000 entries, growing as new
harvesters arrive every moment) and is killed with SIGKILL at random times
KILLS times, restarted each time. Pass: after every kill each target file is
complete (json parses, every plain line is a prefix, nft is closed), and
after each restart no temp file of a killed write is left beside them."""
import ipaddress, os, random, sys, threading
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

KILLS = int(os.environ.get("MXW_KILLS", "12"))
d = scratch()
out = os.path.join(d, "out")
os.mkdir(out)
log, db = os.path.join(d, "mail.log"), os.path.join(d, "m.db")
conf = os.path.join(d, "mxw.conf")
with open(conf, "w") as f:
    for fmt in ("plain", "nft", "json"):
        f.write("[output %s]\nformat = %s\npath = %s/%s\n\n" % (fmt, fmt, out, fmt))


def harvest(ip, t0, tag):
    return "".join(seq_line(0, ip=ip, when=stamp(t0 + k)).replace("u0000000000@", "%s_%d@" % (tag, k))
                   for k in range(8))


now = time.time()
pre = os.path.join(d, "pre.log")
with open(pre, "w") as f:
    for x in range(128):
        for h in (1, 2, 3, 4):
            f.write(harvest("198.18.%d.%d" % (x, h), now - 300, "p%d_%d" % (x, h)))
r = run([MXW, "import", "-q", "-c", conf, "--db", db, pre])
check("import of 512 harvesters", r.returncode == 0, r.stderr[-300:])
append(log, "", "w")
stop = threading.Event()


def writer():
    i = 0
    while not stop.is_set():
        append(log, harvest("198.19.%d.%d" % (i // 200, 1 + i % 200), time.time(), "w%d" % i))
        i += 1
        time.sleep(0.02)


th = threading.Thread(target=writer, daemon=True)
th.start()


def complete(fmt):
    p = os.path.join(out, fmt)
    try:
        text = open(p).read()
    except OSError as e:
        return False, str(e)
    try:
        if fmt == "json":
            j = json.loads(text)
            return len(j["entries"]) == j["count"], "count %s vs %d entries" % (j["count"], len(j["entries"]))
        if fmt == "plain":
            lines = [l for l in text.split("\n") if l and not l.startswith("#")]
            for l in lines:
                ipaddress.ip_network(l)
            return text.endswith("\n") and len(lines) > 0, "%d lines" % len(lines)
        if fmt == "nft":
            return text.rstrip().endswith("}") and text.count("{") == text.count("}"), text[-80:]
    except (ValueError, KeyError) as e:
        return False, str(e)
    return False, "?"


rnd = random.Random(19)
bad, temps = [], []
seen_left = [0]
dm = Daemon(db, follow=[log], conf=conf).start()
wait_for(lambda: complete("json")[0], True, 20)
sizes = []
for k in range(KILLS):
    time.sleep(rnd.uniform(0.3, 1.5))
    dm.kill9()
    for fmt in ("plain", "nft", "json"):
        ok, why = complete(fmt)
        if not ok:
            bad.append((k, fmt, why))
    sizes.append(os.path.getsize(os.path.join(out, "json")))
    left = [n for n in os.listdir(out) if n.startswith(".")]
    seen_left[0] += len(left)
    dm = Daemon(db, follow=[log], conf=conf).start()
    # the new daemon removes them when it sets up its outputs, a moment after it starts
    if left:
        wait_for(lambda: not any(os.path.exists(os.path.join(out, n)) for n in left), True, 10, 0.1)
    temps += [(k, n) for n in left if os.path.exists(os.path.join(out, n))]
stop.set()
th.join()
print("json size after each kill: %s; %d temp files of killed writes seen" % (sizes, seen_left[0]), flush=True)
check("after each of %d kills every target file is complete" % KILLS, not bad, bad[:5])
check("after each restart the killed writes' temp files are gone", not temps, temps[:5])
check("the blocklist grew while the daemon was killed and restarted", sizes and sizes[-1] > sizes[0], sizes)
rc = dm.stop()
check("clean stop at the end", rc == 0, rc)
check("no temp file at the end", not [n for n in os.listdir(out) if n.startswith(".")], os.listdir(out))
done()
