/* bench_db_insert.c - events/s through db_event_insert() in batches, with
 * the offset update of each batch, into a fresh database. Run by
 * bench/db-insert; not a test.
 *
 * usage: bench_db_insert DB_PATH EVENTS BATCH EVIDENCE_PERCENT DISTINCT_IPS [fast]
 * Prints one line: events, seconds, events/s, bytes, bytes per event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "db/db.h"

#define POOL 4096

struct pooled {
	struct event ev;
	char line[320];
	char helo[40], to[40];
};

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: %s DB_PATH EVENTS BATCH EVIDENCE_PERCENT DISTINCT_IPS [fast]\n",
			argv[0]);
		return 2;
	}
	const char *path = argv[1];
	long total = atol(argv[2]), batch = atol(argv[3]), pct = atol(argv[4]), nips = atol(argv[5]);
	bool fast = argc > 6 && strcmp(argv[6], "fast") == 0;
	if (total <= 0 || batch <= 0 || pct < 0 || pct > 100 || nips < 1 || nips > 65536)
		return 2;
	char err[512];
	struct db *db = db_open(path, DB_RW | (fast ? DB_FAST : 0), err, sizeof(err));
	if (!db) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	struct db_source src = {.kind = DB_SRC_IMPORT, .dev = 1, .ino = 1, .fp_hash = 42, .fp_len = 1024};
	snprintf(src.path, sizeof(src.path), "bench.log");
	if (db_source_get_or_create(db, &src, 1795809600) < 0) {
		fprintf(stderr, "%s\n", db_errmsg(db));
		return 1;
	}
	/* A pool of prepared events (log lines ~250 bytes), so that the timing
	 * measures the database, not the generator. */
	struct class_conf cc = {24, 64, 16, 48};
	static const enum ev_category cats[] = {CAT_UNKNOWN_RECIPIENT, CAT_RELAY_DENIED, CAT_GREYLISTED,
						CAT_DNSBL, CAT_NO_RDNS};
	static const int codes[] = {550, 554, 451, 554, 450};
	struct pooled *pool = xcalloc(POOL, sizeof(*pool));
	uint32_t rnd = 12345;
	for (int i = 0; i < POOL; i++) {
		struct pooled *p = &pool[i];
		struct event *ev = &p->ev;
		rnd = rnd * 1103515245u + 12345u;
		uint32_t ipn = (rnd >> 8) % (uint32_t)nips;
		ev->mta = MTA_POSTFIX;
		ev->pid = 1000 + (int)(rnd % 5000);
		ev->has_ip = true;
		ev->ip.family = IPADDR_V4;
		ev->ip.a[0] = 198;
		ev->ip.a[1] = 51;
		ev->ip.a[2] = (uint8_t)(ipn >> 8);
		ev->ip.a[3] = (uint8_t)ipn;
		ipaddr_class(&ev->ip, &cc, &ev->cls);
		bool evidence = (long)((rnd >> 3) % 100) < pct;
		int c = (int)((rnd >> 20) % 5);
		ev->kind = evidence ? EV_REJECT : ((rnd >> 24) & 1) ? EV_CONNECT : EV_DISCONNECT;
		ev->cat = evidence ? cats[c] : CAT_NONE;
		ev->code = (int16_t)(evidence ? codes[c] : -1);
		ev->stage = ST_RCPT;
		int hl = snprintf(p->helo, sizeof(p->helo), "host%u.example.net", rnd % 1000);
		int tl = snprintf(p->to, sizeof(p->to), "user%u@example.org", (rnd >> 10) % 5000);
		int ll = snprintf(p->line, sizeof(p->line),
				  "Nov 27 20:00:00 mx1 postfix/smtpd[%d]: NOQUEUE: reject: RCPT from "
				  "unknown[198.51.%u.%u]: %d 5.1.1 <%s>: Recipient address rejected: User "
				  "unknown in virtual mailbox table; from=<a@b.example> to=<%s> proto=ESMTP "
				  "helo=<%s>",
				  ev->pid, ev->ip.a[2], ev->ip.a[3], ev->code, p->to, p->to, p->helo);
		ev->line = (struct span){p->line, (uint32_t)ll};
		ev->helo = (struct span){p->helo, (uint32_t)hl};
		ev->to = (struct span){p->to, (uint32_t)tl};
		ev->from = (struct span){"a@b.example", 11};
		ev->host = (struct span){"mx1", 3};
		ev->program = (struct span){"postfix/smtpd", 13};
		ev->text = (struct span){"Recipient address rejected: User unknown", 40};
		ev->dsn = (struct span){"5.1.1", 5};
	}
	int64_t t0 = clock_mono_us();
	int64_t ts = 1795809600LL * 1000000;
	long k = 0;
	for (long done = 0; done < total;) {
		if (db_begin(db) < 0)
			goto fail;
		long n = MXW_MIN(batch, total - done);
		for (long i = 0; i < n; i++) {
			struct event *ev = &pool[k++ % POOL].ev;
			ev->ts_us = ts;
			ts += 10000; /* 100 lines/s of log time */
			if (db_event_insert(db, ev, src.id) < 0)
				goto fail;
		}
		done += n;
		if (db_source_update_offset(db, src.id, done * 250, done, 1795809600) < 0 ||
		    db_commit(db) < 0)
			goto fail;
	}
	double secs = (double)(clock_mono_us() - t0) / 1e6;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	db_close(db); /* checkpoints the WAL into the file */
	free(pool);
	struct stat sb;
	int64_t bytes = stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
	printf(
	    "events=%ld batch=%ld evidence=%ld%% ips=%ld seconds=%.3f events_per_sec=%.0f cpu_seconds=%.3f "
	    "events_per_cpu_sec=%.0f db_bytes=%lld bytes_per_event=%.1f\n",
	    total, batch, pct, nips, secs, (double)total / secs, cpu, (double)total / cpu, (long long)bytes,
	    (double)bytes / (double)total);
	return 0;
fail:
	fprintf(stderr, "bench: %s\n", db_errmsg(db));
	db_close(db);
	free(pool);
	return 1;
}
