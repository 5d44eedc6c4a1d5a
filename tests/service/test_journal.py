"""test_journal.py - [collector] journal (issue 15): the journal read through
sd-journal, exactly once across restarts and kill -9. No journald runs
here: the journal files are made by systemd-journal-remote
--output=FILE.journal from the journal export format on stdin (Debian's
systemd-journal-remote), and [collector] journal_directory points the
reader at them. Entries of postfix/* are read (a glob) and sshd's are not;
entries appended while the daemon runs are followed; entries appended while
it is down are read at the restart after the stored cursor; a daemon killed
with SIGKILL in the middle of a large append stores each entry once after
the restart (the cursor is committed in the events' transaction); the
source row is of kind journal and counts every line read. A changed list
of identifiers: SIGHUP warns that it needs a restart and reads as before;
the restart goes on after the old set's cursor (nothing read twice) and
says so."""
import os, shutil, signal, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from mxwtest import *  # noqa: E402,F403

REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT = "0123456789abcdef0123456789abcdef"
mono = [1000]


def export(seqs, ident="postfix/smtpd"):
    """Journal export format: one entry per sequence number (the message of seq_line)."""
    out = []
    now = int(time.time() * 1e6)
    for n in seqs:
        mono[0] += 1
        msg = seq_line(n).split(": ", 1)[1].rstrip("\n")
        out.append("__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n_HOSTNAME=mx\n"
                   "SYSLOG_IDENTIFIER=%s\nSYSLOG_PID=%d\nMESSAGE=%s\n\n" % (now + mono[0], mono[0], BOOT, ident, 4000 + n % 7, msg))
    return "".join(out)


def append_journal(path, text):
    p = subprocess.run([REMOTE, "--output=" + path, "-"], input=text, capture_output=True, text=True, timeout=120)
    check("systemd-journal-remote writes %d entries" % text.count("\n\n"), p.returncode == 0, p.stderr)


def main():
    if not os.access(REMOTE, os.X_OK):
        skip("systemd-journal-remote is not installed")
    d = scratch("mxw-journal-")
    jdir = os.path.join(d, "journal")
    os.makedirs(jdir)
    jfile = os.path.join(jdir, "remote-mx.journal")
    db, conf = os.path.join(d, "m.db"), os.path.join(d, "m.conf")
    with open(conf, "w") as f:
        f.write("[collector]\njournal = postfix/*, exim4\njournal_directory = %s\nbatch_lines = 200\n" % jdir)
    try:
        append_journal(jfile, export(range(0, 100)) + export(range(5000, 5010), ident="sshd"))
        dm = Daemon(db, conf=conf).start()
        got = wait_for(lambda: len(seq_counts(db)), 100, 30)
        check("the first 100 postfix entries are stored", got == 100, (got, dm.stderr()[-1500:]))
        append_journal(jfile, export(range(100, 300), ident="postfix/postscreen"))
        got = wait_for(lambda: len(seq_counts(db)), 300, 30)
        check("entries appended while it runs are followed (postfix/* matches postfix/postscreen)", got == 300, got)
        ok, why = exact(seq_counts(db), 0, 300)
        check("each once, sshd's left out", ok, why)
        check("clean stop", dm.stop() == 0, dm.stderr()[-1000:])
        rows = q(db, "SELECT kind, path, lines_read, cursor IS NOT NULL FROM sources JOIN source_cursor ON source_id = sources.id")
        check("one source row of kind journal with its cursor and lines read",
              rows == [("journal", "journal:postfix/*,exim4", 300, 1)], rows)

        append_journal(jfile, export(range(300, 400)))
        dm = Daemon(db, conf=conf).start()
        got = wait_for(lambda: len(seq_counts(db)), 400, 30)
        ok, why = exact(seq_counts(db), 0, 400)
        check("entries appended while it was down are read after the stored cursor, each once", got == 400 and ok,
              (got, why))
        check("the restart says it goes on after the cursor", "going on after the stored cursor" in dm.stderr())

        # SIGKILL while entries keep coming (appends of 500 by a thread), three
        # times, each followed by a restart: every entry exactly once
        import threading
        top = [400]
        stop = threading.Event()

        def appender():
            while not stop.is_set() and top[0] < 400 + 60000:
                a = top[0]
                subprocess.run([REMOTE, "--output=" + jfile, "-"], input=export(range(a, a + 500)),
                               capture_output=True, text=True, timeout=120)
                top[0] = a + 500

        t = threading.Thread(target=appender)
        t.start()
        behind = []
        for k in range(3):
            time.sleep(0.5 + 0.37 * k)
            dm.kill9()
            behind.append(top[0] - lines_read(db))
            dm = Daemon(db, conf=conf).start()
        stop.set()
        t.join()
        print("entries not yet stored at each kill: %s" % behind, flush=True)
        got = wait_for(lambda: lines_read(db), top[0], 120)
        ok, why = exact(seq_counts(db), 0, top[0])
        check("after 3 kill -9 and restarts while entries came, each of %d entries is stored exactly once" % top[0],
              got == top[0] and ok, (got, why))

        # another list of identifiers
        with open(conf, "w") as f:
            f.write("[collector]\njournal = postfix/*, exim4, sendmail\njournal_directory = %s\nbatch_lines = 200\n"
                    % jdir)
        mark = len(dm.stderr())
        os.kill(dm.p.pid, signal.SIGHUP)
        ok = wait_for(lambda: "change only at a restart" in dm.stderr()[mark:], True, 10)
        check("SIGHUP with another journal list warns that it needs a restart", ok, dm.stderr()[mark:][-600:])
        check("clean stop", dm.stop() == 0)
        n0 = top[0]
        append_journal(jfile, export(range(n0, n0 + 100)))
        dm = Daemon(db, conf=conf).start()
        got = wait_for(lambda: len(seq_counts(db)), n0 + 100, 60)
        ok, why = exact(seq_counts(db), 0, n0 + 100)
        check("the new list goes on after the old list's cursor: %d entries, each once" % (n0 + 100),
              got == n0 + 100 and ok, (got, why))
        check("... and says so", "is a new set of identifiers" in dm.stderr()[dm.mark:], dm.stderr()[dm.mark:][-600:])
        rows = q(db, "SELECT lines_read FROM sources WHERE path = 'journal:postfix/*,exim4,sendmail'")
        check("the new list's source row counts the 100 entries after the cursor", rows == [(100,)], rows)
        check("clean stop", dm.stop() == 0)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    done()


main()
