/*
 * reports_drive.c - drives the library functions the engine's loop will
 * call, the way the loop calls them, for tests/reports/test_schedule.py:
 *
 *   reports_drive digest CONF DB
 *       report_sched_tick() once a second-ish (every 50 ms here) with the
 *       wall clock (MXWARDEN_NOW) until its worker is done; prints
 *       {"slot": N, "busy_ticks": N}.
 *   reports_drive notify CONF DB
 *       notify_decision() for every decision of DB (oldest first), ticks
 *       until the command ran and nothing is pending; then two upgrades of
 *       the first decision and a breaker opening, ticks until idle again;
 *       prints the notify stats and the first decision's key as JSON.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "reports/notify.h"
#include "reports/schedule.h"

static int load(struct config *c, const char *path)
{
	struct errlist errs = {0};
	config_defaults(c);
	config_load(c, path, &errs);
	config_validate(c, &errs);
	for (size_t i = 0; i < errs.msgs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs.v[i]);
	int rc = errs.msgs.n ? -1 : 0;
	errlist_free(&errs);
	return rc;
}

static void nap(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int digest(const struct config *c, const char *db)
{
	struct report_sched *s = report_sched_new(c, db);
	if (!s) {
		fprintf(stderr, "digest is off\n");
		return 1;
	}
	int64_t slot = report_digest_slot(&c->report, clock_now());
	int busy = 0;
	report_sched_tick(s, clock_now());
	for (int i = 0; i < 600 && report_sched_busy(s); i++) {
		nap(50);
		busy++;
		report_sched_tick(s, clock_now());
	}
	bool done = !report_sched_busy(s);
	report_sched_free(s);
	printf("{\"slot\": %lld, \"busy_ticks\": %d, \"done\": %s}\n", (long long)slot, busy,
	       done ? "true" : "false");
	return done ? 0 : 1;
}

struct feed {
	struct notify *n;
	struct decision first;
	int count;
};

static int feed_one(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct feed *f = arg;
	if (!f->count)
		f->first = *d;
	f->count++;
	notify_decision(f->n, d, NOTIFY_DECISION, RESP_OBSERVE, d->since);
	return 0;
}

static void until_idle(struct notify *n)
{
	struct notify_stats st;
	for (int i = 0; i < 2000; i++) {
		notify_tick(n);
		notify_stats(n, &st);
		if (!st.running && !st.pending)
			return;
		nap(20);
	}
}

static int notify(const struct config *c, const char *dbpath)
{
	char err[512];
	struct db *db = db_open(dbpath, DB_RO, err, sizeof err);
	if (!db) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	struct notify *n = notify_new(c);
	if (!n) {
		fprintf(stderr, "notify is off\n");
		db_close(db);
		return 1;
	}
	struct feed f = {n, {0}, 0};
	if (db_decisions_made(db, 0, INT64_MAX, feed_one, &f) < 0) {
		fprintf(stderr, "%s\n", db_errmsg(db));
		return 1;
	}
	db_close(db);
	until_idle(n);
	/* the first decision upgraded twice, and a breaker, before the next start */
	struct decision d = f.first;
	enum response from = d.response;
	d.response = RESP_DROP;
	d.until += 3600;
	notify_decision(n, &d, NOTIFY_UPGRADE, from, d.since + 60);
	d.until += 3600;
	notify_decision(n, &d, NOTIFY_UPGRADE, RESP_DROP, d.since + 120);
	notify_breaker(n, "fw\"<x>", 120, 80, d.since + 120);
	until_idle(n);
	struct notify_stats st;
	notify_stats(n, &st);
	char p[PREFIX_STRLEN];
	prefix_format(&f.first.prefix, p);
	printf("{\"fed\": %d, \"runs\": %llu, \"docs\": %llu, \"failed\": %llu, \"dropped\": %llu, "
	       "\"first\": \"%s\", \"first_response\": \"%s\"}\n",
	       f.count, (unsigned long long)st.runs, (unsigned long long)st.docs,
	       (unsigned long long)st.failed, (unsigned long long)st.dropped, p, response_name(from));
	notify_free(n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: reports_drive digest|notify CONF DB\n");
		return 2;
	}
	struct config c;
	if (load(&c, argv[2]) < 0)
		return 1;
	int rc = strcmp(argv[1], "digest") == 0	  ? digest(&c, argv[3])
		 : strcmp(argv[1], "notify") == 0 ? notify(&c, argv[3])
						  : 2;
	config_free(&c);
	return rc;
}
