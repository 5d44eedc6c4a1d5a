/*
 * schedule.h - the digest on a schedule ([report] digest = daily or HH:MM,
 * UTC): at each slot, the digest of the day before it is written into
 * [report] dir as digest-STAMP.txt and digest-STAMP.html (STAMP the slot,
 * YYYYMMDDTHHMMSSZ), mailed to [report] mail_to when set (through [abuse]
 * smtp, recorded in the outbox so it goes once), and files of both
 * [report] dir and older than [report] keep are removed. A slot whose
 * files exist is done: a restart neither writes it again nor skips it; a
 * daemon that was down at a slot writes the newest missed one when it
 * comes back (not every missed one).
 *
 * The digest lists the prefixes worth an abuse report that have no
 * contact (abuse_uncontacted_json).
 *
 * The engine's loop (not this module) owns a struct report_sched and calls
 * report_sched_tick() once a second; the work runs on a thread of its own
 * with its own database connections, so the tick never blocks. The same
 * work is report_digest_run(), for cron and tests.
 */
#ifndef MXWARDEN_REPORTS_SCHEDULE_H
#define MXWARDEN_REPORTS_SCHEDULE_H

#include "base/base.h"

/* The newest slot at or before now (UTC seconds), -1 when the digest is off. */
int64_t report_digest_slot(const struct report_conf *r, int64_t now);

/*
 * Do the slot: unless DIR/digest-STAMP.txt exists, write the digest of
 * [slot - 1 day, slot) (.html first, then .txt, each atomically, mode
 * 0640), mail it once when [report] mail_to is set, then prune files of
 * [report] dir older than keep. db_path is opened read-only (and
 * read-write for the outbox row when mailing). *written says whether the
 * files were written by this call. 0, or -1 with err set.
 */
int report_digest_run(const struct config *c, const char *db_path, int64_t slot, int64_t now, bool *written,
		      struct buf *err);

struct report_sched;
/* NULL when [report] digest is off. Copies what it needs of c (on SIGHUP,
 * free the old one and make a new one). */
struct report_sched *report_sched_new(const struct config *c, const char *db_path);
/* Called once a second with the wall clock: when a slot is due and not
 * done, start the worker thread; reap a finished one and log its result.
 * Never blocks. NULL is a no-op. */
void report_sched_tick(struct report_sched *s, int64_t now);
/* Whether the worker runs (tests). */
bool report_sched_busy(const struct report_sched *s);
/* Wait for a running worker, then free. NULL is a no-op. */
void report_sched_free(struct report_sched *s);

#endif
