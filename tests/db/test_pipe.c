/* test_pipe.c - pipelined batches (db/pipe.c) against the same work done
 * on one connection: every table ends up the same (events with exact
 * bytes, rollups, counters, decisions, offsets); decisions staged or being
 * written count in db_decisions_count() on the engine's connection exactly
 * once; a batch refused by a locked database leaves the committed batches
 * and nothing after them. Each test works in its own temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "db/db.h"

/* 2026-11-27T20:00:00Z */
#define NOW 1795809600LL

struct fixture {
	char dir[64];
	char a[128], b[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/mxw-test-pipe-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->a, sizeof(f->a), "%s/a.db", f->dir);
	snprintf(f->b, sizeof(f->b), "%s/b.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static struct db *open_rw(const char *path)
{
	char err[256];
	struct db *db = db_open(path, DB_RW, err, sizeof(err));
	if (!db)
		fail_msg("db_open %s: %s", path, err);
	return db;
}

/* Event number i of a deterministic mix: connects, accepts and rejections
 * (with a NUL byte and invalid UTF-8 in the raw line) from a few hundred
 * addresses of both families, over a few hours. */
static struct event mk(int i, char *line, size_t linesz)
{
	static const enum ev_kind kinds[] = {EV_CONNECT,      EV_REJECT,     EV_ACCEPT,	  EV_REJECT,
					     EV_AUTH_FAILURE, EV_DISCONNECT, EV_PROTOCOL, EV_CONNECT};
	static const enum ev_category cats[] = {
	    CAT_NONE, CAT_UNKNOWN_RECIPIENT, CAT_NONE, CAT_RELAY_DENIED, CAT_AUTH,
	    CAT_NONE, CAT_PREGREET,	     CAT_NONE};
	struct event ev;
	memset(&ev, 0, sizeof(ev));
	int k = i % 8;
	ev.ts_us = (NOW - 4 * 3600 + i * 7) * 1000000LL + i % 1000;
	ev.mta = MTA_POSTFIX;
	ev.kind = kinds[k];
	ev.cat = cats[k];
	ev.stage = ST_RCPT;
	ev.code = ev.kind == EV_REJECT ? (i % 3 ? 550 : 454) : -1;
	ev.pid = 100 + i % 50;
	char ip[64];
	if (i % 5 == 0)
		snprintf(ip, sizeof(ip), "2001:db8:%x::%x", i % 7, i % 300);
	else
		snprintf(ip, sizeof(ip), "192.0.%d.%d", i % 3, i % 250 + 1);
	ev.has_ip = true;
	assert_int_equal(ipaddr_parse(&ev.ip, ip, strlen(ip)), 0);
	struct class_conf cc = {24, 64, 16, 48};
	ipaddr_class(&ev.ip, &cc, &ev.cls);
	int n = snprintf(line, linesz, "line %d from [%s] to=<u%d@example.com> helo=<h\xff%c>", i, ip, i, 0);
	ev.line = (struct span){line, (uint32_t)n};
	const char *to = strstr(line, "u");
	ev.to = (struct span){to, (uint32_t)(strchr(to, '>') - to)};
	ev.helo = (struct span){strstr(line, "h\xff"), 3};
	return ev;
}

static struct decision mkdec(int i)
{
	struct decision d;
	memset(&d, 0, sizeof(d));
	char ip[32];
	snprintf(ip, sizeof(ip), "198.51.100.%d/32", i % 3 + 1);
	assert_int_equal(prefix_parse(&d.prefix, ip, strlen(ip), false), 0);
	d.scope = SCOPE_IP;
	d.response = RESP_REJECT;
	snprintf(d.rule, sizeof(d.rule), "relay");
	snprintf(d.reason, sizeof(d.reason), "tried to relay %d times", i);
	d.score = 2.5;
	d.since = NOW - 3600 + i;
	d.until = d.since + 600;
	return d;
}

/* Every table of path as text, in a stable order, without the wall-clock
 * columns (created_at, last_read, ingest minutes). */
static struct buf dump(const char *path)
{
	static const char *const qs[] = {
	    "SELECT * FROM events ORDER BY id",
	    "SELECT * FROM rollup_minute ORDER BY 1, 2, 3, 4",
	    "SELECT * FROM rollup_hour ORDER BY 1, 2, 3, 4",
	    "SELECT * FROM top_hour ORDER BY 1, 2, 3, 4, 5",
	    "SELECT * FROM counters ORDER BY 1, 2",
	    "SELECT * FROM class_minute ORDER BY 1, 2, 3, 4, 5, 6",
	    "SELECT * FROM class_hour ORDER BY 1, 2, 3, 4, 5, 6",
	    ("SELECT id, prefix, scope, response, rule, reason, score, since, until, created_by, evidence"
	     " FROM decisions ORDER BY id"),
	    "SELECT id, kind, path, offset, lines_read FROM sources ORDER BY id",
	    "SELECT sum(lines), sum(unparsed) FROM ingest_minute",
	};
	sqlite3 *h;
	assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	struct buf out = BUF_INIT;
	for (size_t q = 0; q < sizeof(qs) / sizeof(qs[0]); q++) {
		sqlite3_stmt *st;
		assert_int_equal(sqlite3_prepare_v2(h, qs[q], -1, &st, NULL), SQLITE_OK);
		buf_printf(&out, "== %s\n", qs[q]);
		while (sqlite3_step(st) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(st); c++) {
				const void *p = sqlite3_column_blob(st, c);
				int n = sqlite3_column_bytes(st, c);
				buf_printf(&out, "%d:", sqlite3_column_type(st, c));
				if (p)
					buf_append(&out, p, (size_t)n);
				buf_appendc(&out, '|');
			}
			buf_appendc(&out, '\n');
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return out;
}

static int64_t new_source(struct db *db, const char *name)
{
	struct db_source s;
	memset(&s, 0, sizeof(s));
	s.kind = DB_SRC_IMPORT;
	snprintf(s.path, sizeof(s.path), "%s", name);
	assert_true(db_source_get_or_create(db, &s, NOW) >= 0);
	return s.id;
}

/* The same batches through a pipe and on one connection: equal tables. */
static void test_pipe_same_tables(void **state)
{
	struct fixture *f = *state;
	enum { N = 6000, BATCH = 700 };
	char line[256];
	/* one connection, batch by batch */
	struct db *a = open_rw(f->a);
	int64_t src = new_source(a, "/var/log/mail.log");
	assert_int_equal(db_begin(a), 0);
	for (int i = 0; i < N; i++) {
		struct event ev = mk(i, line, sizeof(line));
		assert_true(db_event_insert(a, &ev, src) >= 0);
		if (i % 997 == 0) {
			struct decision d = mkdec(i);
			assert_int_equal(db_decision_insert(a, &d, "{\"n\":1}", "engine"), 0);
		}
		if ((i + 1) % BATCH == 0 || i == N - 1) {
			assert_int_equal(db_unparsed_add(a, "unparsed", i % 5 + 1), 0);
			assert_int_equal(db_source_update_offset(a, src, (i + 1) * 100LL, i + 1, NOW), 0);
			assert_int_equal(db_commit(a), 0);
			if (i < N - 1)
				assert_int_equal(db_begin(a), 0);
		}
	}
	db_close(a);
	/* through a pipe */
	struct db *b = open_rw(f->b);
	src = new_source(b, "/var/log/mail.log");
	char err[256];
	struct db_pipe *p = db_pipe_new(b, DB_RW, err, sizeof(err));
	assert_non_null(p);
	size_t staged = 0;
	for (int i = 0; i < N; i++) {
		struct event ev = mk(i, line, sizeof(line));
		assert_true(db_pipe_event(p, &ev, src) >= 0);
		memset(line, 'x', sizeof(line)); /* the pipe keeps its own copy */
		if (i % 997 == 0) {
			struct decision d = mkdec(i);
			db_pipe_decision(p, &d, "{\"n\":1}", "engine");
		}
		staged = db_pipe_staged_events(p);
		if ((i + 1) % BATCH == 0 || i == N - 1) {
			assert_true(staged > 0);
			assert_int_equal(db_pipe_unparsed(p, "unparsed", i % 5 + 1), 0);
			db_pipe_offset(p, src, (i + 1) * 100LL, i + 1, NOW);
			assert_int_equal(db_pipe_submit(p), 0);
			assert_int_equal(db_pipe_staged_events(p), 0);
		}
	}
	assert_int_equal(db_pipe_drain(p), 0);
	db_pipe_free(p);
	db_close(b);
	struct buf da = dump(f->a), db = dump(f->b);
	assert_true(da.len > 100000);
	if (da.len != db.len || memcmp(da.data, db.data, da.len) != 0)
		fail_msg("got different tables through the pipe (%zu vs %zu bytes of dump)", db.len, da.len);
	buf_free(&da);
	buf_free(&db);
}

/* A decision counts once whether it is staged, being written or committed. */
static void test_pipe_counts_staged_decisions(void **state)
{
	struct fixture *f = *state;
	struct db *db = open_rw(f->a);
	struct decision d0 = mkdec(0);
	assert_int_equal(db_decision_insert(db, &d0, NULL, "cli"), 0); /* committed before */
	char err[256];
	struct db_pipe *p = db_pipe_new(db, DB_RW, err, sizeof(err));
	assert_non_null(p);
	struct prefix q = d0.prefix;
	int64_t since = NOW - 86400;
	struct {
		const char *when;
		int staged;
		int64_t want;
	} steps[] = {{"before staging", 0, 1}, {"one staged", 1, 2}, {"two staged", 1, 3}};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i].staged) {
			struct decision d = mkdec(3 * (int)i); /* the same prefix */
			db_pipe_decision(p, &d, NULL, "engine");
		}
		int64_t got = db_decisions_count(db, &q, since);
		if (got != steps[i].want)
			fail_msg("%s: got %lld decisions, want %lld", steps[i].when, (long long)got,
				 (long long)steps[i].want);
	}
	/* submitted: being written or committed, counted once either way */
	assert_int_equal(db_pipe_submit(p), 0);
	for (int k = 0; k < 200; k++) {
		int64_t got = db_decisions_count(db, &q, since);
		if (got != 3)
			fail_msg("while writing (probe %d): got %lld decisions, want 3", k, (long long)got);
	}
	assert_int_equal(db_pipe_drain(p), 0);
	assert_int_equal(db_decisions_count(db, &q, since), 3);
	struct prefix other = mkdec(1).prefix;
	assert_int_equal(db_decisions_count(db, &other, since), 0);
	db_pipe_free(p);
	assert_int_equal(db_decisions_count(db, &q, since), 3);
	db_close(db);
}

/* A write lock held by another connection past the busy timeout: the
 * batch is refused, later ones are not written, the earlier one stays. */
static void test_pipe_locked(void **state)
{
	struct fixture *f = *state;
	struct db *db = open_rw(f->a);
	int64_t src = new_source(db, "/var/log/x.log");
	char err[256], line[256];
	struct db_pipe *p = db_pipe_new(db, DB_RW, err, sizeof(err));
	assert_non_null(p);
	struct event ev = mk(1, line, sizeof(line));
	assert_true(db_pipe_event(p, &ev, src) > 0);
	db_pipe_offset(p, src, 100, 1, NOW);
	assert_int_equal(db_pipe_submit(p), 0);
	assert_int_equal(db_pipe_drain(p), 0);
	sqlite3 *h;
	assert_int_equal(sqlite3_open(f->a, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	ev = mk(3, line, sizeof(line));
	assert_true(db_pipe_event(p, &ev, src) > 0);
	db_pipe_offset(p, src, 200, 2, NOW);
	assert_int_equal(db_pipe_submit(p), 0); /* accepted: the writer finds the lock (5 s) */
	ev = mk(11, line, sizeof(line));
	assert_true(db_pipe_event(p, &ev, src) > 0);
	db_pipe_offset(p, src, 300, 3, NOW);
	assert_int_equal(db_pipe_submit(p), -1);
	assert_int_equal(db_pipe_drain(p), -1);
	assert_non_null(strstr(db_pipe_errmsg(p), "locked"));
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(h);
	db_pipe_free(p);
	db_close(db);
	struct buf got = dump(f->a);
	char want[128];
	snprintf(want, sizeof(want), "1:%lld|3:import|3:/var/log/x.log|1:100|1:1|", (long long)src);
	if (!memmem(got.data, got.len, want, strlen(want)))
		fail_msg("sources after the refused batch: want the first batch's offset (%s)", want);
	/* and the first batch's one event only */
	assert_null(memmem(got.data, got.len, "line 3 ", 7));
	assert_non_null(memmem(got.data, got.len, "line 1 ", 7));
	buf_free(&got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pipe_same_tables, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipe_counts_staged_decisions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipe_locked, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
