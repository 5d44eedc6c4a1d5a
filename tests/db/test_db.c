/* test_db.c - the db module through its header: schema creation and
 * migration idempotence, event round trips with exact bytes, JSON output of
 * hostile bytes, offsets committed atomically with events, pagination,
 * decisions (active, history, escalation counts), sources, rollup queries
 * and retention. Each test works in its own temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "db/db_internal.h"

/* 2026-11-27T20:00:00Z */
#define NOW 1795809600LL

struct fixture {
	char dir[64];
	char path[128];
	struct db *db;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/mxw-test-db-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	/* A parent directory that does not exist yet: db_open must create it. */
	snprintf(f->path, sizeof(f->path), "%s/sub/dir/test.db", f->dir);
	char err[256];
	f->db = db_open(f->path, DB_RW, err, sizeof(err));
	if (!f->db) {
		fprintf(stderr, "db_open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	db_close(f->db);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* An event with the given fields; text spans point into line. */
static struct event mk(int64_t ts, enum ev_kind kind, enum ev_category cat, const char *ip, int code,
		       const char *line, size_t line_len)
{
	struct event ev;
	memset(&ev, 0, sizeof(ev));
	ev.ts_us = ts * 1000000;
	ev.mta = MTA_POSTFIX;
	ev.kind = kind;
	ev.cat = cat;
	ev.stage = ST_RCPT;
	ev.code = (int16_t)code;
	ev.pid = -1;
	if (ip) {
		ev.has_ip = true;
		assert_int_equal(ipaddr_parse(&ev.ip, ip, strlen(ip)), 0);
		struct class_conf cc = {24, 64, 16, 48};
		ipaddr_class(&ev.ip, &cc, &ev.cls);
	}
	ev.line = (struct span){line, (uint32_t)line_len};
	return ev;
}

static int64_t jint(json_t *o, const char *path1, const char *path2)
{
	json_t *v = json_object_get(o, path1);
	if (path2)
		v = json_object_get(v, path2);
	return json_integer_value(v);
}

/* ------------------------------------------------------------------ tests */

/* A version-1 database with events written by version 1 (ids in insertion
 * order, out of time order) migrates to the current schema: same rows,
 * same bytes, ids in time order, nothing lost; a second open migrates nothing. */
static void test_migration_from_v1(void **state)
{
	char dir[] = "/tmp/mxw-test-mig-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/v1.db", dir);
	struct db *db = db_open_version(path, DB_RW, 1, err, sizeof(err));
	assert_non_null(db);
	db_close(db);
	sqlite3 *h;
	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(h,
					    "INSERT INTO events(id, ts, kind, category, ip, ip_bin, raw)"
					    " VALUES(?, ?, 'reject', 'dnsbl', '192.0.2.1', ?, ?)",
					    -1, &st, NULL),
			 SQLITE_OK);
	/* v1 ids 1..6; log times out of order, two pairs within one second */
	static const int64_t ts[] = {NOW + 10, NOW, NOW + 10, NOW - 3600, NOW, NOW + 5};
	struct ipaddr ip;
	ipaddr_parse(&ip, "192.0.2.1", 9);
	uint8_t key[17];
	key[0] = ip.family;
	memcpy(key + 1, ip.a, 16);
	for (int i = 0; i < 6; i++) {
		char raw[32];
		int n = snprintf(raw, sizeof(raw), "line %d\x01\xff", i);
		sqlite3_bind_int64(st, 1, i + 1);
		sqlite3_bind_int64(st, 2, ts[i] * 1000000);
		sqlite3_bind_blob(st, 3, key, 17, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, raw, n, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sqlite3_close(h);

	for (int pass = 0; pass < 2; pass++) {
		db = db_open(path, DB_RW, err, sizeof(err));
		assert_non_null(db);
		json_t *o = db_events_json(db, NULL, -1, 100, NULL);
		json_t *items = json_object_get(o, "items");
		assert_int_equal(json_array_size(items), 6 + pass);
		/* newest first; within a second in the old insertion order, reversed
		 * (the second pass also sees the row the first one added) */
		static const int want_line[] = {-1, 2, 0, 5, 4, 1, 3};
		for (size_t i = 0; i < json_array_size(items); i++) {
			json_t *it = json_array_get(items, i);
			int wl = want_line[i + 1 - (size_t)pass];
			char want[32];
			if (wl < 0)
				snprintf(want, sizeof(want), "new");
			else
				snprintf(want, sizeof(want), "line %d\x01\xef\xbf\xbd", wl);
			const char *got = json_string_value(json_object_get(it, "line"));
			if (strcmp(got, want) != 0)
				fail_msg("pass %d item %zu: got %s, want %s", pass, i, got, want);
			assert_int_equal(jint(it, "id", NULL) >> 20, jint(it, "ts_us", NULL) / 1000000);
		}
		json_decref(o);
		/* the row counter of version 3 starts from the migrated rows */
		o = db_stats_json(db, NOW);
		assert_int_equal(jint(o, "evidence_rows", NULL), 6 + pass);
		json_decref(o);
		/* new events take ids after the old ones of their second */
		assert_int_equal(db_begin(db), 0);
		struct event ev;
		memset(&ev, 0, sizeof(ev));
		ev.ts_us = (NOW + 10) * 1000000;
		ev.kind = EV_REJECT;
		ev.cat = CAT_DNSBL;
		ev.line = (struct span){"new", 3};
		int64_t id = db_event_insert(db, &ev, 0);
		assert_int_equal(id, ((NOW + 10) << 20) + 2 + pass);
		if (pass == 1)
			assert_int_equal(db_rollback(db), 0);
		else
			assert_int_equal(db_commit(db), 0);
		db_close(db);
	}
	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), DB_SCHEMA_VERSION);
	sqlite3_finalize(st);
	sqlite3_close(h);
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int user_version(const char *path)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static int count_allow(void *arg, const struct db_allow *a)
{
	(void)a;
	++*(int *)arg;
	return 0;
}

/* A version-8 database (allows, no journal cursors) migrates to 9: its
 * allow and its journal source are kept and the source takes a cursor. The
 * step 8 -> 9 is idempotent: a database marked 8 that has the table
 * already (an upgrade interrupted between its statements and the version,
 * or one made by a build that had it) migrates too and keeps its cursor. */
static void test_migration_from_v8(void **state)
{
	char dir[] = "/tmp/mxw-test-mig8-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], err[256], cur[64];
	snprintf(path, sizeof(path), "%s/v8.db", dir);
	struct db *db = db_open_version(path, DB_RW, 8, err, sizeof(err));
	assert_non_null(db);
	struct db_allow a = {
	    .since = NOW, .until = NOW + 3600, .reason = "partner", .created_by = "cli:test"};
	prefix_parse(&a.prefix, "192.0.2.0/24", 12, true);
	assert_int_equal(db_allow_insert(db, &a), 0);
	struct db_source src = {.kind = DB_SRC_JOURNAL};
	snprintf(src.path, sizeof(src.path), "journal:postfix/*");
	assert_int_equal(db_source_get_or_create(db, &src, NOW), 1);
	db_close(db);
	assert_int_equal(user_version(path), 8);

	for (int pass = 0; pass < 3; pass++) {
		if (pass == 2) { /* marked 8 again, the table and its row kept */
			sqlite3 *h;
			assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
			assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 8", NULL, NULL, NULL),
					 SQLITE_OK);
			sqlite3_close(h);
		}
		db = db_open(path, DB_RW, err, sizeof(err));
		assert_non_null(db);
		assert_int_equal(user_version(path), DB_SCHEMA_VERSION);
		int n = 0;
		assert_int_equal(db_allows_active(db, NOW + 60, count_allow, &n), 0);
		assert_int_equal(n, 1);
		struct db_source again = {.kind = DB_SRC_JOURNAL};
		snprintf(again.path, sizeof(again.path), "%s", src.path);
		assert_int_equal(db_source_get_or_create(db, &again, NOW), 0);
		assert_int_equal(again.id, src.id);
		if (pass == 0) {
			assert_int_equal(db_source_cursor(db, src.id, cur, sizeof cur), 0);
			assert_int_equal(db_begin(db), 0);
			assert_int_equal(db_source_set_cursor(db, src.id, "s=0123;i=2a", 42, NOW), 0);
			assert_int_equal(db_commit(db), 0);
		}
		assert_int_equal(db_source_cursor(db, src.id, cur, sizeof cur), 1);
		assert_string_equal(cur, "s=0123;i=2a");
		db_close(db);
	}
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Every row of a table as text, in order: "a|b|c;..." (NULL as "~"). */
static char *dump_rows(sqlite3 *h, const char *table)
{
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT * FROM %s", table);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	int nc = sqlite3_column_count(st);
	sqlite3_finalize(st);
	size_t o = (size_t)snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY 1", table);
	for (int i = 2; i <= nc; i++)
		o += (size_t)snprintf(sql + o, sizeof(sql) - o, ", %d", i);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	struct buf b = BUF_INIT;
	while (sqlite3_step(st) == SQLITE_ROW) {
		for (int i = 0; i < nc; i++) {
			const char *v = (const char *)sqlite3_column_text(st, i);
			buf_append(&b, v ? v : "~", strlen(v ? v : "~"));
			buf_append(&b, i + 1 < nc ? "|" : ";", 1);
		}
	}
	sqlite3_finalize(st);
	buf_append(&b, "", 1);
	return (char *)b.data;
}

/* A version-9 database (the journal's cursors, no MX host tables) migrates
 * to 10: its journal source keeps its cursor, and the host tables are
 * rebuilt from the evidence events stored: the same rollups and top
 * senders per host the live path wrote, and one hosts row per host (first
 * and newest line from its events, never seen by `run`, no lines counted).
 * The step 9 -> 10 is idempotent: marked 9 again with the tables kept, the
 * database migrates without counting anything twice. */
static void test_migration_from_v9(void **state)
{
	struct fixture *f = *state;
	char err[256], cur[64];
	struct db_source src = {.kind = DB_SRC_JOURNAL};
	snprintf(src.path, sizeof(src.path), "journal:postfix/*");
	assert_int_equal(db_source_get_or_create(f->db, &src, NOW), 1);
	static const struct {
		int64_t age;
		const char *host, *ip;
		enum ev_kind kind;
		enum ev_category cat;
		int code;
	} evs[] = {
	    {7200, "mx1", "192.0.2.9", EV_REJECT, CAT_DNSBL, 554},
	    {7170, "mx1", "192.0.2.9", EV_REJECT, CAT_UNKNOWN_RECIPIENT, 550},
	    {7150, "mx2", "192.0.2.10", EV_LOST, CAT_TOO_MANY_ERRORS, -1},
	    {3000, "mx2", "198.51.100.7", EV_AUTH_FAILURE, CAT_AUTH, 535},
	    {2990, "mx2", "2001:db8::5", EV_REJECT, CAT_DNSBL, 450},
	    {100, "mx1", "203.0.113.4", EV_REJECT, CAT_DNSBL, 421},
	    {90, "", "203.0.113.4", EV_REJECT, CAT_DNSBL, 554}, /* no host field */
	};
	assert_int_equal(db_begin(f->db), 0);
	for (size_t i = 0; i < MXW_ARRAY_LEN(evs); i++) {
		struct event ev =
		    mk(NOW - evs[i].age, evs[i].kind, evs[i].cat, evs[i].ip, evs[i].code, "l", 1);
		ev.host = (struct span){evs[i].host, (uint32_t)strlen(evs[i].host)};
		assert_true(db_event_insert(f->db, &ev, src.id) > 0);
	}
	assert_int_equal(db_source_set_cursor(f->db, src.id, "s=0123;i=2a", 7, NOW), 0);
	assert_int_equal(db_commit(f->db), 0);
	static const char *const tables[] = {"host_rollup_minute", "host_rollup_hour", "host_top_hour"};
	char *live[3];
	for (size_t i = 0; i < 3; i++) {
		live[i] = dump_rows(f->db->h, tables[i]);
		assert_non_null(strstr(live[i], "mx2"));
	}
	db_close(f->db);
	f->db = NULL;
	sqlite3 *h;
	assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(h,
			 "DROP TABLE hosts; DROP TABLE host_minute; DROP TABLE host_rollup_minute;"
			 " DROP TABLE host_rollup_hour; DROP TABLE host_top_hour; DROP INDEX events_host;"
			 " PRAGMA user_version = 9",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(user_version(f->path), 9);

	char want_hosts[160];
	snprintf(want_hosts, sizeof(want_hosts), "mx1|%lld|~|%lld|~|0;mx2|%lld|~|%lld|~|0;",
		 (long long)(NOW - 7200), (long long)(NOW - 100) * 1000000, (long long)(NOW - 7150),
		 (long long)(NOW - 2990) * 1000000);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) { /* marked 9 again, the host tables and their rows kept */
			assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
			assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 9", NULL, NULL, NULL),
					 SQLITE_OK);
			sqlite3_close(h);
		}
		f->db = db_open(f->path, DB_RW, err, sizeof(err));
		assert_non_null(f->db);
		assert_int_equal(user_version(f->path), DB_SCHEMA_VERSION);
		assert_int_equal(db_source_cursor(f->db, src.id, cur, sizeof cur), 1);
		assert_string_equal(cur, "s=0123;i=2a");
		for (size_t i = 0; i < 3; i++) {
			char *got = dump_rows(f->db->h, tables[i]);
			if (strcmp(got, live[i]) != 0)
				fail_msg("%s after the migration:\n%s\nlive:\n%s", tables[i], got, live[i]);
			free(got);
		}
		char *hosts = dump_rows(f->db->h, "hosts");
		assert_string_equal(hosts, want_hosts);
		free(hosts);
		char *hm = dump_rows(f->db->h, "host_minute");
		assert_string_equal(hm, ""); /* lines read: not in the events */
		free(hm);
		assert_int_equal(db_exec(f->db, "SELECT 1 FROM events INDEXED BY events_host LIMIT 1"), 0);
		db_close(f->db);
		f->db = NULL;
	}
	f->db = db_open(f->path, DB_RW, err, sizeof(err));
	assert_non_null(f->db);
	for (size_t i = 0; i < 3; i++)
		free(live[i]);
}

static void test_code_class_table(void **state)
{
	static const struct {
		int code;
		const char *want;
	} cases[] = {{421, "421"}, {451, "451"},  {450, "4xx"}, {454, "4xx"}, {499, "4xx"}, {550, "5xx"},
		     {554, "5xx"}, {250, "none"}, {-1, "none"}, {0, "none"},  {600, "none"}};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		const char *got = code_class_name(code_class_of(cases[i].code));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("code %d: got %s, want %s", cases[i].code, got, cases[i].want);
	}
}

static void test_schema_idempotent(void **state)
{
	struct fixture *f = *state;
	char err[256];
	assert_int_equal(access(f->path, F_OK), 0);
	/* Re-opening read-write migrates nothing and keeps data. */
	struct decision d = {.scope = SCOPE_IP, .response = RESP_REJECT, .since = NOW, .until = NOW + 600};
	prefix_parse(&d.prefix, "192.0.2.7", 9, true);
	assert_int_equal(db_decision_insert(f->db, &d, NULL, "test"), 0);
	for (int i = 0; i < 3; i++) {
		struct db *again = db_open(f->path, DB_RW, err, sizeof(err));
		assert_non_null(again);
		assert_int_equal(db_decisions_count(again, &d.prefix, 0), 1);
		db_close(again);
	}
	struct db *ro = db_open(f->path, DB_RO, err, sizeof(err));
	assert_non_null(ro);
	assert_int_equal(db_begin(ro), -1); /* read-only refuses writes */
	db_close(ro);

	/* A schema newer than ours is refused, with a message. */
	sqlite3 *h;
	assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	struct db *newer = db_open(f->path, DB_RW, err, sizeof(err));
	assert_null(newer);
	assert_non_null(strstr(err, "newer"));
	newer = db_open(f->path, DB_RO, err, sizeof(err));
	assert_null(newer);

	/* A file that is not a database, and a missing file read-only. */
	char junk[160];
	snprintf(junk, sizeof(junk), "%s/junk.db", f->dir);
	FILE *fp = fopen(junk, "w");
	fputs("this is not sqlite, it is long enough to have a header of sorts....................\n", fp);
	fclose(fp);
	assert_null(db_open(junk, DB_RW, err, sizeof(err)));
	snprintf(junk, sizeof(junk), "%s/missing.db", f->dir);
	assert_null(db_open(junk, DB_RO, err, sizeof(err)));
	assert_non_null(strstr(err, "no database"));
}

struct scan_got {
	int n;
	struct buf line, helo;
	struct event ev;
};

static int scan_cb(void *arg, int64_t rid, const struct event *e)
{
	struct scan_got *g = arg;
	g->n++;
	buf_append(&g->line, e->line.p, e->line.n);
	buf_append(&g->helo, e->helo.p, e->helo.n);
	g->ev = *e; /* scalars only are used after the callback */
	return 0;
}

static void test_event_bytes_roundtrip(void **state)
{
	struct fixture *f = *state;
	/* NUL, invalid UTF-8 (lone continuation, overlong, truncated), ESC. */
	static const char line[] =
	    "Nov 27 20:00:00 mx postfix/smtpd[1]: NOQUEUE: reject: \x00 \xff\xfe \xc0\xaf "
	    "\x1b[31m \xe2\x82";
	static const char helo[] = "evil\x00helo\xff";
	struct event ev =
	    mk(NOW, EV_REJECT, CAT_UNKNOWN_RECIPIENT, "203.0.113.9", 550, line, sizeof(line) - 1);
	ev.helo = (struct span){helo, sizeof(helo) - 1};
	ev.host = (struct span){"mx1", 3};
	ev.program = (struct span){"postfix/smtpd", 13};
	ev.queue_id = (struct span){"ABC123", 6};
	ev.from = (struct span){"<a@b>", 5};
	ev.to = (struct span){"x@example.org", 13};
	ev.dsn = (struct span){"5.1.1", 5};
	ev.text = (struct span){"User unknown", 12};
	ev.port = 2525;
	ev.pid = 4242;
	assert_int_equal(db_begin(f->db), 0);
	int64_t id = db_event_insert(f->db, &ev, 0);
	assert_true(id > 0);
	assert_int_equal(db_commit(f->db), 0);

	struct scan_got got = {0, BUF_INIT, BUF_INIT, {0}};
	assert_int_equal(db_events_scan(f->db, 0, scan_cb, &got), 0);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.line.len, sizeof(line) - 1);
	assert_memory_equal(got.line.data, line, sizeof(line) - 1);
	assert_int_equal(got.helo.len, sizeof(helo) - 1);
	assert_memory_equal(got.helo.data, helo, sizeof(helo) - 1);
	assert_int_equal(got.ev.kind, EV_REJECT);
	assert_int_equal(got.ev.cat, CAT_UNKNOWN_RECIPIENT);
	assert_int_equal(got.ev.code, 550);
	assert_int_equal(got.ev.port, 2525);
	assert_int_equal(got.ev.pid, 4242);
	assert_int_equal(got.ev.ts_us, NOW * 1000000);
	assert_int_equal(ipaddr_cmp(&got.ev.ip, &ev.ip), 0);
	assert_int_equal(prefix_cmp(&got.ev.cls, &ev.cls), 0);
	buf_free(&got.line);
	buf_free(&got.helo);

	/* JSON: valid, NUL kept as \u0000, bad bytes as U+FFFD. */
	json_t *o = db_events_json(f->db, NULL, -1, 10, NULL);
	assert_non_null(o);
	json_t *it = json_array_get(json_object_get(o, "items"), 0);
	assert_non_null(it);
	json_t *jl = json_object_get(it, "line");
	const char *s = json_string_value(jl);
	size_t n = json_string_length(jl);
	assert_non_null(memchr(s, '\0', n));
	assert_non_null(memmem(s, n, "\xef\xbf\xbd", 3));
	char *dump = json_dumps(o, JSON_COMPACT);
	assert_non_null(dump);
	assert_non_null(strstr(dump, "\\u0000"));
	assert_non_null(strstr(dump, "\"ip\":\"203.0.113.9\""));
	assert_non_null(strstr(dump, "\"class\":\"203.0.113.0/24\""));
	/* Re-parsing the dump gives the same object: the output is valid JSON. */
	json_t *back = json_loads(dump, JSON_ALLOW_NUL, NULL);
	assert_non_null(back);
	assert_true(json_equal(back, o));
	json_decref(back);
	free(dump);
	json_decref(o);
}

static void test_json_bytes_table(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *in;
		size_t n;
		const char *want_dump; /* json_dumps of the string, ENSURE_ASCII */
	} cases[] = {
	    {"plain", 5, "\"plain\""},
	    {"a\x00z", 3, "\"a\\u0000z\""},
	    {"\xff", 1, "\"\\uFFFD\""},
	    {"\xc3\xa9", 2, "\"\\u00E9\""},				 /* valid é */
	    {"\xc0\xaf", 2, "\"\\uFFFD\\uFFFD\""},			 /* overlong '/' */
	    {"\xed\xa0\x80", 3, "\"\\uFFFD\\uFFFD\\uFFFD\""},		 /* surrogate */
	    {"\xf4\x90\x80\x80", 4, "\"\\uFFFD\\uFFFD\\uFFFD\\uFFFD\""}, /* > U+10FFFF */
	    {"\xe2\x82", 2, "\"\\uFFFD\\uFFFD\""},			 /* truncated */
	    {"\xf0\x9f\x98\x80", 4, "\"\\uD83D\\uDE00\""},		 /* valid emoji */
	    {"\x1b[0m", 4, "\"\\u001B[0m\""},
	};
	/* Stored as the raw line of a reject, then read back as JSON. */
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		assert_int_equal(db_begin(f->db), 0);
		struct event ev =
		    mk(NOW + (int64_t)i, EV_REJECT, CAT_OTHER, "198.51.100.1", 554, cases[i].in, cases[i].n);
		assert_true(db_event_insert(f->db, &ev, 0) > 0);
		assert_int_equal(db_commit(f->db), 0);
		json_t *o = db_events_json(f->db, NULL, -1, 1, NULL);
		assert_non_null(o);
		json_t *line = json_object_get(json_array_get(json_object_get(o, "items"), 0), "line");
		char *got = json_dumps(line, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
		assert_non_null(got);
		if (strcmp(got, cases[i].want_dump) != 0)
			fail_msg("case %zu: got %s, want %s", i, got, cases[i].want_dump);
		free(got);
		json_decref(o);
	}
}

static void test_counted_only_and_stats(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(db_begin(f->db), 0);
	struct event c = mk(NOW, EV_CONNECT, CAT_NONE, "192.0.2.1", -1, "connect", 7);
	struct event a = mk(NOW, EV_ACCEPT, CAT_NONE, "192.0.2.1", 250, "accept", 6);
	struct event r = mk(NOW, EV_REJECT, CAT_RELAY_DENIED, "192.0.2.1", 554, "reject", 6);
	struct event p = mk(NOW, EV_AUTH_FAILURE, CAT_AUTH, "192.0.2.2", 535, "authfail", 8);
	assert_int_equal(db_event_insert(f->db, &c, 0), 0);
	assert_int_equal(db_event_insert(f->db, &c, 0), 0);
	assert_int_equal(db_event_insert(f->db, &a, 0), 0);
	assert_true(db_event_insert(f->db, &r, 0) > 0);
	assert_true(db_event_insert(f->db, &p, 0) > 0);
	assert_int_equal(db_unparsed_add(f->db, "unparsed", 3), 0);
	assert_int_equal(db_unparsed_add(f->db, "too_long", 1), 0);
	assert_int_equal(db_unparsed_add(f->db, "unparsed", 2), 0);
	assert_int_equal(db_commit(f->db), 0);

	json_t *o = db_stats_json(f->db, NOW);
	assert_non_null(o);
	static const struct {
		const char *a, *b;
		int64_t want;
	} cases[] = {
	    {"events", "connect", 2},	   {"events", "accept", 1},	      {"events", "reject", 1},
	    {"events", "auth_failure", 1}, {"categories", "relay_denied", 1}, {"categories", "auth", 1},
	    {"unparsed", "unparsed", 5},   {"unparsed", "too_long", 1},	      {"evidence_rows", NULL, 2},
	    {"decisions_active", NULL, 0}, {"lines_read", NULL, 0},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		int64_t got = jint(o, cases[i].a, cases[i].b);
		if (got != cases[i].want)
			fail_msg("%s.%s: got %lld, want %lld", cases[i].a, cases[i].b ? cases[i].b : "",
				 (long long)got, (long long)cases[i].want);
	}
	assert_null(json_object_get(json_object_get(o, "categories"), "none"));
	assert_true(jint(o, "db_bytes", NULL) > 0);
	json_decref(o);
	/* An event outside a batch is refused, not half-stored. */
	assert_int_equal(db_event_insert(f->db, &r, 0), -1);
	assert_non_null(strstr(db_errmsg(f->db), "no batch"));
}

static void test_offsets_atomic(void **state)
{
	struct fixture *f = *state;
	struct db_source s = {.kind = DB_SRC_FOLLOW, .dev = 8, .ino = 1234, .fp_hash = 77, .fp_len = 1024};
	snprintf(s.path, sizeof(s.path), "/var/log/mail.log");
	assert_int_equal(db_source_get_or_create(f->db, &s, NOW), 1);
	int64_t sid = s.id;

	/* A committed batch: 3 lines, offset 300. */
	assert_int_equal(db_begin(f->db), 0);
	struct event r = mk(NOW, EV_REJECT, CAT_UNKNOWN_RECIPIENT, "192.0.2.9", 550, "r", 1);
	for (int i = 0; i < 3; i++)
		assert_true(db_event_insert(f->db, &r, sid) > 0);
	assert_int_equal(db_source_update_offset(f->db, sid, 300, 3, NOW), 0);
	assert_int_equal(db_commit(f->db), 0);

	/* A rolled-back batch leaves events, counters and offset unchanged. */
	assert_int_equal(db_begin(f->db), 0);
	for (int i = 0; i < 5; i++)
		assert_true(db_event_insert(f->db, &r, sid) > 0);
	assert_int_equal(db_unparsed_add(f->db, "unparsed", 9), 0);
	assert_int_equal(db_source_update_offset(f->db, sid, 800, 8, NOW), 0);
	assert_int_equal(db_rollback(f->db), 0);

	/* What a restart sees: a fresh connection. */
	char err[256];
	struct db *ro = db_open(f->path, DB_RO, err, sizeof(err));
	assert_non_null(ro);
	json_t *o = db_stats_json(ro, NOW);
	assert_int_equal(jint(o, "evidence_rows", NULL), 3);
	assert_int_equal(jint(o, "events", "reject"), 3);
	assert_int_equal(jint(o, "lines_read", NULL), 3);
	assert_null(json_object_get(json_object_get(o, "unparsed"), "unparsed"));
	json_t *file = json_array_get(json_object_get(o, "files"), 0);
	assert_int_equal(jint(file, "offset", NULL), 300);
	assert_int_equal(jint(file, "lines", NULL), 3);
	assert_string_equal(json_string_value(json_object_get(file, "path")), "/var/log/mail.log");
	json_decref(o);
	db_close(ro);

	struct db_source again = {
	    .kind = DB_SRC_FOLLOW, .dev = 8, .ino = 1234, .fp_hash = 77, .fp_len = 1024};
	snprintf(again.path, sizeof(again.path), "/var/log/mail.log");
	assert_int_equal(db_source_get_or_create(f->db, &again, NOW + 5), 0);
	assert_int_equal(again.id, sid);
	assert_int_equal(again.offset, 300);
	assert_int_equal(again.lines_read, 3);

	/* A batch whose commit fails (here: the writer closes mid-batch) is
	 * not half-applied either: db_close rolls back. */
	assert_int_equal(db_begin(f->db), 0);
	assert_true(db_event_insert(f->db, &r, sid) > 0);
	assert_int_equal(db_source_update_offset(f->db, sid, 400, 4, NOW), 0);
	db_close(f->db);
	f->db = db_open(f->path, DB_RW, err, sizeof(err));
	assert_non_null(f->db);
	assert_int_equal(db_source_get_or_create(f->db, &again, NOW + 5), 0);
	assert_int_equal(again.offset, 300);
	o = db_stats_json(f->db, NOW);
	assert_int_equal(jint(o, "evidence_rows", NULL), 3);
	json_decref(o);
}

struct src_list {
	int n;
	int64_t ids[8];
};
static int list_cb(void *arg, const struct db_source *s)
{
	struct src_list *l = arg;
	if (l->n < 8)
		l->ids[l->n] = s->id;
	l->n++;
	return 0;
}

static void test_sources(void **state)
{
	struct fixture *f = *state;
	struct db_source a = {
	    .kind = DB_SRC_FOLLOW, .dev = 1, .ino = 10, .fp_hash = 0xfeedface12345678ULL, .fp_len = 1024};
	snprintf(a.path, sizeof(a.path), "/var/log/mail.log");
	assert_int_equal(db_source_get_or_create(f->db, &a, NOW), 1);
	assert_true(a.id > 0);
	assert_int_equal(db_source_update_offset(f->db, a.id, 5000, 50, NOW + 10), 0);

	/* After rotation: same dev/ino/fingerprint under a new name -> same source, path follows. */
	struct db_source rot = a;
	rot.id = 0;
	snprintf(rot.path, sizeof(rot.path), "/var/log/mail.log.1");
	assert_int_equal(db_source_get_or_create(f->db, &rot, NOW + 20), 0);
	assert_int_equal(rot.id, a.id);
	assert_int_equal(rot.offset, 5000);
	assert_string_equal(rot.path, "/var/log/mail.log.1");

	/* A recycled inode with other first bytes is a new source. */
	struct db_source recycled = a;
	recycled.id = 0;
	recycled.fp_hash = 1;
	snprintf(recycled.path, sizeof(recycled.path), "/var/log/mail.log");
	assert_int_equal(db_source_get_or_create(f->db, &recycled, NOW + 30), 1);
	assert_true(recycled.id != a.id);
	assert_int_equal(recycled.offset, 0);

	/* Lookup by fingerprint alone (a .gz copy of the rotated file). */
	struct db_source byfp;
	assert_int_equal(db_source_find_fp(f->db, 0xfeedface12345678ULL, 1024, &byfp), 1);
	assert_int_equal(byfp.id, a.id);
	assert_int_equal(byfp.lines_read, 50);
	assert_int_equal(byfp.fp_hash, 0xfeedface12345678ULL);
	assert_int_equal(db_source_find_fp(f->db, 0xfeedface12345678ULL, 512, &byfp), 0);

	/* A small file's fingerprint grows. */
	recycled.fp_hash = 2;
	recycled.fp_len = 200;
	assert_int_equal(db_source_update_identity(f->db, &recycled), 0);
	assert_int_equal(db_source_find_fp(f->db, 2, 200, &byfp), 1);
	assert_int_equal(byfp.id, recycled.id);

	/* syslog sources are found by name. */
	struct db_source sl = {.kind = DB_SRC_SYSLOG};
	snprintf(sl.path, sizeof(sl.path), "syslog:127.0.0.1:5514");
	assert_int_equal(db_source_get_or_create(f->db, &sl, NOW), 1);
	struct db_source sl2 = {.kind = DB_SRC_SYSLOG};
	snprintf(sl2.path, sizeof(sl2.path), "syslog:127.0.0.1:5514");
	assert_int_equal(db_source_get_or_create(f->db, &sl2, NOW), 0);
	assert_int_equal(sl2.id, sl.id);

	struct src_list l = {0};
	assert_int_equal(db_sources_list(f->db, list_cb, &l), 0);
	assert_int_equal(l.n, 3);
	assert_true(l.ids[0] < l.ids[1] && l.ids[1] < l.ids[2]);

	/* Errors: unknown id, negative offset. */
	assert_int_equal(db_source_update_offset(f->db, 9999, 1, 1, NOW), -1);
	assert_non_null(strstr(db_errmsg(f->db), "9999"));
	assert_int_equal(db_source_update_offset(f->db, a.id, -1, 1, NOW), -1);
	struct db_source ghost = {.id = 9999};
	assert_int_equal(db_source_update_identity(f->db, &ghost), -1);
}

static void test_pagination(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(db_begin(f->db), 0);
	char lines[25][16];
	for (int i = 0; i < 25; i++) {
		int n = snprintf(lines[i], sizeof(lines[i]), "line %d", i);
		/* Pairs of equal timestamps: the cursor must break ties by id. */
		struct event ev = mk(NOW + i / 2, EV_REJECT, i % 3 ? CAT_UNKNOWN_RECIPIENT : CAT_DNSBL,
				     i % 2 ? "192.0.2.10" : "192.0.2.20", 550, lines[i], (size_t)n);
		assert_true(db_event_insert(f->db, &ev, 0) > 0);
	}
	struct event other = mk(NOW, EV_REJECT, CAT_DNSBL, "198.51.100.5", 554, "other", 5);
	assert_true(db_event_insert(f->db, &other, 0) > 0);
	assert_int_equal(db_commit(f->db), 0);

	static const struct {
		const char *q;
		int cat;
		int limit;
		int want_total;
		int want_pages;
	} cases[] = {
	    {NULL, -1, 10, 26, 3},
	    {NULL, -1, 26, 26, 1},
	    {NULL, -1, 25, 26, 2},
	    {"192.0.2.10", -1, 4, 12, 3},
	    {"192.0.2.0/24", -1, 7, 25, 4},
	    {"192.0.2.0/24", CAT_DNSBL, 3, 9, 3},
	    {"198.51.100.0/24", -1, 10, 1, 1},
	    {"2001:db8::/32", -1, 10, 0, 1},
	};
	for (size_t c = 0; c < MXW_ARRAY_LEN(cases); c++) {
		struct prefix q, *qp = NULL;
		if (cases[c].q) {
			assert_int_equal(prefix_parse(&q, cases[c].q, strlen(cases[c].q), true), 0);
			qp = &q;
		}
		char cursor[64] = "";
		int total = 0, pages = 0;
		int64_t prev_ts = INT64_MAX, prev_id = INT64_MAX;
		for (;;) {
			json_t *o =
			    db_events_json(f->db, qp, cases[c].cat, cases[c].limit, pages ? cursor : NULL);
			assert_non_null(o);
			pages++;
			size_t i;
			json_t *it;
			json_array_foreach(json_object_get(o, "items"), i, it)
			{
				int64_t ts = jint(it, "ts_us", NULL), id = jint(it, "id", NULL);
				/* strictly descending (ts, id): no duplicates across pages */
				assert_true(ts < prev_ts || (ts == prev_ts && id < prev_id));
				prev_ts = ts;
				prev_id = id;
				total++;
			}
			json_t *next = json_object_get(o, "next");
			if (json_is_null(next)) {
				json_decref(o);
				break;
			}
			snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
			json_decref(o);
			assert_true(pages < 100);
		}
		if (total != cases[c].want_total || pages != cases[c].want_pages)
			fail_msg("case %zu: got %d items in %d pages, want %d in %d", c, total, pages,
				 cases[c].want_total, cases[c].want_pages);
	}
	static const char *const bad[] = {"",	  "x",	   "e.",  "b.5",
					  "e.1x", "e.1.2", "e.-", "e.99999999999999999999"};
	for (size_t i = 0; i < MXW_ARRAY_LEN(bad); i++) {
		json_t *o = db_events_json(f->db, NULL, -1, 10, bad[i]);
		if (o)
			fail_msg("cursor '%s': got a page, want an error", bad[i]);
		assert_non_null(strstr(db_errmsg(f->db), "cursor"));
	}
}

struct dlist {
	int n;
	int64_t ids[16];
	char prefixes[16][PREFIX_STRLEN];
	char evidence[16][64];
};
static int dcb(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct dlist *l = arg;
	if (l->n < 16) {
		l->ids[l->n] = d->id;
		prefix_format(&d->prefix, l->prefixes[l->n]);
		snprintf(l->evidence[l->n], sizeof(l->evidence[0]), "%s",
			 info->evidence_json ? info->evidence_json : "");
	}
	l->n++;
	return 0;
}

static int64_t add_decision(struct db *db, const char *prefix, enum scope scope, int64_t since, int64_t until,
			    const char *evidence)
{
	struct decision d = {
	    .scope = scope, .response = RESP_REJECT, .since = since, .until = until, .score = 2.5};
	assert_int_equal(prefix_parse(&d.prefix, prefix, strlen(prefix), true), 0);
	snprintf(d.rule, sizeof(d.rule), "retry");
	snprintf(d.reason, sizeof(d.reason), "retried after 5xx, HELO \"<script>\"");
	assert_int_equal(db_decision_insert(db, &d, evidence, "engine"), 0);
	assert_true(d.id > 0);
	return d.id;
}

static void test_decisions(void **state)
{
	struct fixture *f = *state;
	int64_t d1 = add_decision(f->db, "203.0.113.5", SCOPE_IP, NOW - 100, NOW + 3600,
				  "{\"rule\":\"retry\",\"n\":7}");
	int64_t d2 = add_decision(f->db, "203.0.113.0/24", SCOPE_CLASS, NOW - 50, NOW + 7200, NULL);
	int64_t d3 =
	    add_decision(f->db, "203.0.113.5", SCOPE_IP, NOW - 86400 * 30, NOW - 86400 * 29, "not json");
	int64_t d4 = add_decision(f->db, "2001:db8:1:2::/64", SCOPE_CLASS, NOW - 10, NOW + 60, NULL);
	int64_t d5 = add_decision(f->db, "198.51.100.7", SCOPE_IP, NOW - 10, NOW + 60, NULL);
	assert_int_equal(db_begin(f->db), 0); /* also inside a batch */
	int64_t d6 = add_decision(f->db, "203.0.113.77", SCOPE_IP, NOW - 5, NOW + 60, NULL);
	assert_int_equal(db_commit(f->db), 0);

	/* Stored once: inserting a stored decision again is refused. */
	struct decision again = {.id = d1};
	assert_int_equal(db_decision_insert(f->db, &again, NULL, "x"), -1);

	assert_int_equal(db_decision_end(f->db, d5, NOW, "cli:root", "false positive"), 0);
	assert_int_equal(db_decision_end(f->db, d5, NOW, "cli:root", "again"), 1);
	assert_int_equal(db_decision_end(f->db, 12345, NOW, "cli:root", "none"), 1);

	struct dlist act = {0};
	assert_int_equal(db_decisions_active(f->db, NOW, dcb, &act), 0);
	/* d3 expired (an import of old logs blocks nobody today), d5 ended. */
	assert_int_equal(act.n, 4);
	int64_t want_act[] = {d1, d2, d4, d6}; /* oldest first */
	for (int i = 0; i < 4; i++)
		assert_int_equal(act.ids[i], want_act[i]);
	assert_string_equal(act.evidence[0], "{\"rule\":\"retry\",\"n\":7}");
	/* Later, all but d2 have expired. */
	struct dlist later = {0};
	assert_int_equal(db_decisions_active(f->db, NOW + 3600, dcb, &later), 0);
	assert_int_equal(later.n, 1);
	assert_int_equal(later.ids[0], d2);

	const struct {
		const char *q;
		int want_n;
		int64_t want_first;
	} hist[] = {
	    {"203.0.113.5", 3, d2},	/* its /24 contains it, and two on the IP itself */
	    {"203.0.113.0/24", 4, d6},	/* the class and every IP inside */
	    {"203.0.0.0/16", 4, d6},	/* wider: everything inside */
	    {"203.0.113.6", 1, d2},	/* only the class */
	    {"198.51.100.7", 1, d5},	/* ended ones too */
	    {"2001:db8:1:2::1", 1, d4}, /* v6 host inside the /64 */
	    {"2001:db8:1:3::1", 0, 0},	/* another /64 */
	    {"192.0.2.1", 0, 0},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(hist); i++) {
		struct prefix q;
		assert_int_equal(prefix_parse(&q, hist[i].q, strlen(hist[i].q), true), 0);
		struct dlist l = {0};
		assert_int_equal(db_decisions_history(f->db, &q, dcb, &l), 0);
		if (l.n != hist[i].want_n || (l.n && l.ids[0] != hist[i].want_first))
			fail_msg("history %s: got %d (first %lld), want %d (first %lld)", hist[i].q, l.n,
				 (long long)(l.n ? l.ids[0] : 0), hist[i].want_n,
				 (long long)hist[i].want_first);
	}

	static const struct {
		const char *p;
		int64_t since;
		int64_t want;
	} counts[] = {
	    {"203.0.113.5", 0, 2},
	    {"203.0.113.5", NOW - 86400, 1},
	    {"203.0.113.0/24", 0, 1},
	    {"203.0.113.9", 0, 0},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(counts); i++) {
		struct prefix p;
		assert_int_equal(prefix_parse(&p, counts[i].p, strlen(counts[i].p), true), 0);
		int64_t got = db_decisions_count(f->db, &p, counts[i].since);
		if (got != counts[i].want)
			fail_msg("count %s since %lld: got %lld, want %lld", counts[i].p,
				 (long long)counts[i].since, (long long)got, (long long)counts[i].want);
	}

	/* blocks_json: active only, paginated by 2, newest first. */
	json_t *o = db_blocks_json(f->db, NOW, true, 2, NULL);
	assert_non_null(o);
	json_t *items = json_object_get(o, "items");
	assert_int_equal(json_array_size(items), 2);
	assert_int_equal(jint(json_array_get(items, 0), "id", NULL), d6);
	assert_int_equal(jint(json_array_get(items, 1), "id", NULL), d4);
	char cursor[64];
	snprintf(cursor, sizeof(cursor), "%s", json_string_value(json_object_get(o, "next")));
	json_decref(o);
	o = db_blocks_json(f->db, NOW, true, 2, cursor);
	items = json_object_get(o, "items");
	assert_int_equal(json_array_size(items), 2);
	assert_int_equal(jint(json_array_get(items, 0), "id", NULL), d2);
	assert_int_equal(jint(json_array_get(items, 1), "id", NULL), d1);
	json_t *first = json_array_get(items, 1);
	assert_int_equal(jint(json_object_get(first, "evidence"), "n", NULL), 7);
	assert_string_equal(json_string_value(json_object_get(first, "since")), "2026-11-27T19:58:20Z");
	assert_true(json_is_true(json_object_get(first, "active")));
	assert_true(json_is_null(json_object_get(o, "next")));
	json_decref(o);
	/* All of them, including the ended and expired ones. */
	o = db_blocks_json(f->db, NOW, false, 100, NULL);
	items = json_object_get(o, "items");
	assert_int_equal(json_array_size(items), 6);
	json_t *ended = json_array_get(items, 1);
	assert_int_equal(jint(ended, "id", NULL), d5);
	assert_true(json_is_false(json_object_get(ended, "active")));
	assert_string_equal(json_string_value(json_object_get(ended, "end_reason")), "false positive");
	json_t *old = json_array_get(items, 5);
	assert_int_equal(jint(old, "id", NULL), d1);
	json_t *notjson = json_array_get(items, 3);
	assert_int_equal(jint(notjson, "id", NULL), d3);
	assert_string_equal(json_string_value(json_object_get(notjson, "evidence")), "not json");
	json_decref(o);

	struct prefix q;
	prefix_parse(&q, "203.0.113.5", 11, true);
	o = db_history_json(f->db, &q, NOW);
	assert_int_equal(json_array_size(json_object_get(o, "items")), 3);
	json_decref(o);

	/* Audit trail. */
	assert_int_equal(db_audit_add(f->db, NOW, "cli:root", "unblock", &q, "false positive"), 0);
	assert_int_equal(db_audit_add(f->db, NOW + 1, "web:admin", "reload", NULL, NULL), 0);
	assert_int_equal(db_audit_add(f->db, NOW + 1, "web:admin", "", NULL, NULL), -1);
	o = db_audit_json(f->db, 1, NULL);
	assert_int_equal(json_array_size(json_object_get(o, "items")), 1);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(json_object_get(o, "items"), 0), "action")),
	    "reload");
	snprintf(cursor, sizeof(cursor), "%s", json_string_value(json_object_get(o, "next")));
	json_decref(o);
	o = db_audit_json(f->db, 1, cursor);
	json_t *a = json_array_get(json_object_get(o, "items"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "prefix")), "203.0.113.5/32");
	assert_true(json_is_null(json_object_get(o, "next")));
	json_decref(o);

	o = db_stats_json(f->db, NOW);
	assert_int_equal(jint(o, "decisions_active", NULL), 4);
	assert_int_equal(jint(o, "decisions_total", NULL), 6);
	json_decref(o);
}

static int64_t changes_of(struct db *db, int64_t id)
{
	json_t *a = db_decision_changes_json(db, id);
	assert_non_null(a);
	int64_t n = (int64_t)json_array_size(a);
	json_decref(a);
	return n;
}

/* The life of a decision after it was made: an expiry is recorded once and
 * survives a clock that steps back; an upgrade raises the response, never
 * shortens until, keeps its history and an audit row, and leaves an ended
 * decision alone; the upgrades of a pruned decision are pruned with it;
 * the checkpoint row round-trips. */
static void test_decision_lifecycle(void **state)
{
	struct fixture *f = *state;
	int64_t live = add_decision(f->db, "203.0.113.5", SCOPE_IP, NOW - 100, NOW + 3600, "{}");
	int64_t lapsed = add_decision(f->db, "203.0.113.6", SCOPE_IP, NOW - 7200, NOW - 10, NULL);
	int64_t ended = add_decision(f->db, "203.0.113.7", SCOPE_IP, NOW - 100, NOW + 3600, NULL);
	assert_int_equal(db_decision_end(f->db, ended, NOW, "cli:root", "unblocked"), 0);

	static const struct {
		int64_t now;
		int64_t want_ended;
	} ex[] = {{NOW - 86400, 0}, {NOW, 1}, {NOW, 0}, {NOW - 86400, 0}};
	for (size_t i = 0; i < MXW_ARRAY_LEN(ex); i++) {
		int64_t got = db_decisions_expire(f->db, ex[i].now, "engine");
		if (got != ex[i].want_ended)
			fail_msg("expire #%zu at now%+lld: got %lld ended, want %lld", i,
				 (long long)(ex[i].now - NOW), (long long)got, (long long)ex[i].want_ended);
	}
	/* a day back: the lapsed decision stays ended, the live one is active */
	struct dlist act = {0};
	assert_int_equal(db_decisions_active(f->db, NOW - 86400 + 200, dcb, &act), 0);
	assert_int_equal(act.n, 1);
	assert_int_equal(act.ids[0], live);
	sqlite3_stmt *st;
	assert_int_equal(
	    sqlite3_prepare_v2(f->db->h,
			       "SELECT ended_at = until, ended_by, end_reason FROM decisions WHERE id = ?",
			       -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(st, 1, lapsed);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	assert_string_equal((const char *)sqlite3_column_text(st, 1), "engine");
	assert_string_equal((const char *)sqlite3_column_text(st, 2), "expired");
	sqlite3_finalize(st);

	/* upgrades */
	const struct {
		int64_t id;
		enum response from, to;
		int64_t until;
		int want_rc;
		int64_t want_until, want_changes;
	} up[] = {
	    {live, RESP_REJECT, RESP_DROP, NOW + 1800, 0, NOW + 3600, 1},  /* until never earlier */
	    {live, RESP_DROP, RESP_DROP, NOW + 9000, 0, NOW + 9000, 2},	   /* ...later is taken */
	    {ended, RESP_REJECT, RESP_DROP, NOW + 9000, 1, NOW + 3600, 0}, /* an ended one: untouched */
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(up); i++) {
		struct decision d = {
		    .id = up[i].id, .response = up[i].to, .until = up[i].until, .score = 4.5};
		prefix_parse(&d.prefix, "203.0.113.5", 11, true);
		snprintf(d.rule, sizeof d.rule, "flood");
		snprintf(d.reason, sizeof d.reason, "opened 90 connections in 10m");
		int rc = db_decision_upgrade(f->db, &d, up[i].from, "{\"upgraded\":1}", NOW + (int64_t)i);
		if (rc != up[i].want_rc)
			fail_msg("upgrade #%zu: got %d, want %d", i, rc, up[i].want_rc);
		struct dlist one = {0};
		assert_int_equal(db_decision_get(f->db, up[i].id, dcb, &one), 1);
		(void)one;
		assert_int_equal(sqlite3_prepare_v2(f->db->h,
						    "SELECT until, response FROM decisions WHERE id = ?", -1,
						    &st, NULL),
				 SQLITE_OK);
		sqlite3_bind_int64(st, 1, up[i].id);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		if (sqlite3_column_int64(st, 0) != up[i].want_until)
			fail_msg("upgrade #%zu: got until %lld, want %lld", i,
				 (long long)sqlite3_column_int64(st, 0), (long long)up[i].want_until);
		if (up[i].want_rc == 0)
			assert_string_equal((const char *)sqlite3_column_text(st, 1), "drop");
		sqlite3_finalize(st);
		assert_int_equal(changes_of(f->db, up[i].id), up[i].want_changes);
	}
	json_t *ch = db_decision_changes_json(f->db, live);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 0), "from")), "reject");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 0), "response")), "drop");
	json_decref(ch);
	assert_int_equal(sqlite3_prepare_v2(f->db->h, "SELECT count(*) FROM audit WHERE action = 'upgrade'",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 2);
	sqlite3_finalize(st);

	/* retention: the live decision, once ended long ago, goes with its upgrades */
	assert_int_equal(db_decision_end(f->db, live, NOW - 500 * 86400, "cli:root", "old"), 0);
	struct config conf;
	config_defaults(&conf);
	int64_t n;
	while ((n = db_retention_run(f->db, NOW + 10, &conf)) > 0)
		;
	assert_int_equal(n, 0);
	config_free(&conf);
	assert_int_equal(changes_of(f->db, live), 0);
	struct dlist gone = {0};
	assert_int_equal(db_decision_get(f->db, live, dcb, &gone), 0);

	/* the checkpoint row */
	struct db_checkpoint c;
	assert_int_equal(db_checkpoint_get(f->db, &c), 0);
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(db_checkpoint_put(f->db, NOW, 123, 7, "image\0bytes", 11), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(db_checkpoint_get(f->db, &c), 1);
	assert_int_equal(c.len, 11);
	assert_memory_equal(c.data, "image\0bytes", 11);
	assert_int_equal(c.newest_us, 123);
	assert_int_equal(c.lines, 7);
	assert_int_equal(c.max_event_id, 0);
	assert_int_equal(c.source_id, 0);
	free(c.data);
	/* an import's position in its file goes with it, and a new image
	 * stands at none until it is set again */
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(db_checkpoint_set_source(f->db, 3, 4096, 40), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(db_checkpoint_get(f->db, &c), 1);
	if (c.source_id != 3 || c.source_offset != 4096 || c.source_lines != 40)
		fail_msg("checkpoint position: got %lld %lld %lld, want 3 4096 40", (long long)c.source_id,
			 (long long)c.source_offset, (long long)c.source_lines);
	free(c.data);
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(db_checkpoint_put(f->db, NOW, 124, 8, "x", 1), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(db_checkpoint_get(f->db, &c), 1);
	assert_int_equal(c.source_id, 0);
	assert_int_equal(c.source_offset, 0);
	free(c.data);
	assert_int_equal(db_events_other_source_after(f->db, 0, 1), 0);
	assert_int_equal(db_events_newest(f->db), 0);
}

static void test_rollup_queries(void **state)
{
	struct fixture *f = *state;
	setenv("MXWARDEN_NOW", "@1795809600", 1);
	setenv("MXWARDEN_NOW_FROZEN", "1", 1);
	clock_reset();
	/* Over the last hour: minute m gets m%3+1 rejects from 192.0.2.1 (550),
	 * 2 greylistings from 192.0.2.2 (451) and 1 accept; one old 421 a day ago. */
	int64_t want_rejects = 0;
	assert_int_equal(db_begin(f->db), 0);
	for (int m = 0; m < 60; m++) {
		int64_t t = NOW - 3600 + m * 60 + 7;
		for (int k = 0; k < m % 3 + 1; k++) {
			struct event r = mk(t, EV_REJECT, CAT_UNKNOWN_RECIPIENT, "192.0.2.1", 550, "r", 1);
			assert_true(db_event_insert(f->db, &r, 0) > 0);
			want_rejects++;
		}
		for (int k = 0; k < 2; k++) {
			struct event g = mk(t, EV_REJECT, CAT_GREYLISTED, "192.0.2.2", 451, "g", 1);
			assert_true(db_event_insert(f->db, &g, 0) > 0);
		}
		struct event a = mk(t, EV_ACCEPT, CAT_NONE, "198.51.100.9", 250, "a", 1);
		assert_int_equal(db_event_insert(f->db, &a, 0), 0);
	}
	struct event old = mk(NOW - 86400 + 30, EV_REJECT, CAT_RATE_LIMITED, "2001:db8::5", 421, "o", 1);
	assert_true(db_event_insert(f->db, &old, 0) > 0);
	for (int i = 0; i < 3; i++) {
		struct event c =
		    mk(NOW - 2 * 86400 - 100 * i, EV_CONNECT, CAT_NONE, "2001:db8::77", -1, "c", 1);
		assert_int_equal(db_event_insert(f->db, &c, 0), 0);
	}
	struct db_source s = {.kind = DB_SRC_FOLLOW, .dev = 1, .ino = 2, .fp_hash = 3, .fp_len = 4};
	snprintf(s.path, sizeof(s.path), "/var/log/mail.log");
	assert_int_equal(db_source_get_or_create(f->db, &s, NOW - 120), 1);
	assert_int_equal(db_source_update_offset(f->db, s.id, 1000, 600, NOW - 90), 0);
	assert_int_equal(db_source_update_offset(f->db, s.id, 2000, 1200, NOW - 30), 0);
	assert_int_equal(db_unparsed_add(f->db, "unparsed", 4), 0);
	assert_int_equal(db_commit(f->db), 0);

	/* timeseries of code classes, 10-minute buckets over the last hour */
	json_t *o = db_timeseries_json(f->db, "codes", NOW - 3600, NOW, 600);
	assert_non_null(o);
	json_t *series = json_object_get(o, "series");
	assert_int_equal(json_array_size(json_object_get(o, "t")), 6);
	for (size_t b = 0; b < 6; b++) {
		int64_t want5 = 0;
		for (int m = (int)b * 10; m < (int)b * 10 + 10; m++)
			want5 += m % 3 + 1;
		int64_t got5 = json_integer_value(json_array_get(json_object_get(series, "5xx"), b));
		int64_t got451 = json_integer_value(json_array_get(json_object_get(series, "451"), b));
		int64_t gotnone = json_integer_value(json_array_get(json_object_get(series, "none"), b));
		int64_t got421 = json_integer_value(json_array_get(json_object_get(series, "421"), b));
		if (got5 != want5 || got451 != 20 || gotnone != 10 || got421 != 0)
			fail_msg("bucket %zu: got 5xx=%lld 451=%lld none=%lld 421=%lld, want %lld 20 10 0", b,
				 (long long)got5, (long long)got451, (long long)gotnone, (long long)got421,
				 (long long)want5);
	}
	json_decref(o);
	/* hourly over two days: the old 421 is in its hour */
	o = db_timeseries_json(f->db, "categories", NOW - 2 * 86400, NOW, 3600);
	assert_non_null(o);
	json_t *rl = json_object_get(json_object_get(o, "series"), "rate_limited");
	assert_int_equal(json_array_size(rl), 48);
	assert_int_equal(json_integer_value(json_array_get(rl, 24)), 1);
	json_t *ur = json_object_get(json_object_get(o, "series"), "unknown_recipient");
	assert_int_equal(json_integer_value(json_array_get(ur, 47)), want_rejects);
	json_decref(o);
	/* bad parameters */
	static const struct {
		const char *metric;
		int64_t from, to, step;
	} bad[] = {{"nope", NOW - 60, NOW, 60},
		   {NULL, NOW - 60, NOW, 60},
		   {"codes", NOW - 60, NOW, 30},
		   {"codes", NOW, NOW - 60, 60},
		   {"codes", NOW - 86400 * 30, NOW, 60}};
	for (size_t i = 0; i < MXW_ARRAY_LEN(bad); i++) {
		o = db_timeseries_json(f->db, bad[i].metric, bad[i].from, bad[i].to, bad[i].step);
		if (o)
			fail_msg("bad timeseries case %zu: got a result, want an error", i);
		assert_true(strlen(db_errmsg(f->db)) > 0);
	}

	/* top by ip and by class */
	o = db_top_json(f->db, SCOPE_IP, NOW - 3600, NOW, -1, -1, 10);
	json_t *items = json_object_get(o, "items");
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "prefix")),
			    "192.0.2.1");
	assert_int_equal(jint(json_array_get(items, 0), "count", NULL), want_rejects);
	assert_int_equal(jint(json_object_get(json_array_get(items, 1), "categories"), "greylisted", NULL),
			 120);
	json_decref(o);
	o = db_top_json(f->db, SCOPE_CLASS, NOW - 3600, NOW, -1, -1, 10);
	items = json_object_get(o, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "prefix")),
			    "192.0.2.0/24");
	assert_int_equal(jint(json_array_get(items, 0), "count", NULL), want_rejects + 120);
	json_decref(o);
	/* accepts and connects are counted per IP (accepts not per class) */
	o = db_top_json(f->db, SCOPE_IP, NOW - 3600, NOW, EV_ACCEPT, -1, 10);
	items = json_object_get(o, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_int_equal(jint(json_array_get(items, 0), "count", NULL), 60);
	json_decref(o);
	o = db_top_json(f->db, SCOPE_CLASS, NOW - 3600, NOW, EV_ACCEPT, -1, 10);
	assert_int_equal(json_array_size(json_object_get(o, "items")), 0);
	json_decref(o);
	o = db_top_json(f->db, SCOPE_IP, NOW - 3 * 86400, NOW, EV_CONNECT, -1, 10);
	items = json_object_get(o, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "prefix")),
			    "2001:db8::77");
	assert_int_equal(jint(json_array_get(items, 0), "count", NULL), 3);
	json_decref(o);
	o = db_top_json(f->db, SCOPE_CLASS, NOW - 2 * 86400, NOW, -1, CAT_RATE_LIMITED, 10);
	items = json_object_get(o, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "prefix")),
			    "2001:db8::/64");
	json_decref(o);

	/* summary */
	o = db_summary_json(f->db, NOW);
	assert_non_null(o);
	assert_int_equal(jint(o, "events", "last_hour"), want_rejects + 120 + 60);
	assert_int_equal(jint(o, "events", "last_day"), want_rejects + 120 + 60 + 1);
	assert_int_equal(jint(o, "rejects", "last_hour"), want_rejects + 120);
	json_t *in = json_object_get(o, "ingest");
	assert_int_equal(jint(in, "files", NULL), 1);
	assert_int_equal(jint(in, "lag_seconds", NULL), 30);
	assert_int_equal(jint(in, "lines_last_hour", NULL), 1200);
	assert_int_equal(jint(in, "parse_errors_last_hour", NULL), 4);
	assert_int_equal(jint(in, "lines_read", NULL), 1200);
	/* the last full minute [NOW-60, NOW) read 600 lines: 10/s */
	assert_true(json_real_value(json_object_get(in, "lines_per_sec")) == 10.0);
	json_decref(o);

	/* recent counts for lookup */
	struct prefix q;
	prefix_parse(&q, "192.0.2.0/24", 12, true);
	o = db_recent_counts_json(f->db, &q, NOW - 600);
	assert_int_equal(jint(o, "categories", "greylisted"), 20);
	int64_t want_recent = 0;
	for (int m = 50; m < 60; m++)
		want_recent += m % 3 + 1;
	assert_int_equal(jint(o, "categories", "unknown_recipient"), want_recent);
	assert_int_equal(jint(o, "total", NULL), want_recent + 20);
	json_decref(o);
	unsetenv("MXWARDEN_NOW");
	unsetenv("MXWARDEN_NOW_FROZEN");
	clock_reset();
}

/* Enough distinct keys that the flush goes through its multi-row upserts
 * (and their remainders), over two batches that add to the same rows. */
static void test_flush_many_keys(void **state)
{
	struct fixture *f = *state;
	for (int batch = 0; batch < 2; batch++) {
		assert_int_equal(db_begin(f->db), 0);
		for (int ip = 0; ip < 300; ip++) {
			char text[32];
			snprintf(text, sizeof(text), "10.%d.%d.%d", ip % 3, ip / 100, ip % 100);
			for (int k = 0; k <= ip % 7; k++) {
				/* minutes spread over 5 hours: 300 minute keys */
				struct event r = mk(NOW - 18000 + ip * 60 + k, EV_REJECT,
						    (enum ev_category)(1 + k % 5), text, 550, "r", 1);
				assert_true(db_event_insert(f->db, &r, 0) > 0);
			}
		}
		assert_int_equal(db_commit(f->db), 0);
	}
	json_t *o = db_top_json(f->db, SCOPE_IP, NOW - 86400, NOW, -1, -1, 1000);
	json_t *items = json_object_get(o, "items");
	assert_int_equal(json_array_size(items), 300);
	size_t i;
	json_t *it;
	int64_t sum = 0;
	json_array_foreach(items, i, it)
	{
		const char *p = json_string_value(json_object_get(it, "prefix"));
		int a, b, c;
		assert_int_equal(sscanf(p, "10.%d.%d.%d", &a, &b, &c), 3);
		int ip = b * 100 + c;
		int64_t want = 2 * (ip % 7 + 1);
		if (jint(it, "count", NULL) != want)
			fail_msg("%s: got %lld, want %lld", p, (long long)jint(it, "count", NULL),
				 (long long)want);
		int64_t cats = 0;
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(it, "categories"), k, v) cats += json_integer_value(v);
		assert_int_equal(cats, want);
		sum += want;
	}
	json_decref(o);
	o = db_timeseries_json(f->db, "kinds", NOW - 18000, NOW, 60);
	json_t *rej = json_object_get(json_object_get(o, "series"), "reject");
	assert_int_equal(json_array_size(rej), 300);
	for (size_t m = 0; m < 300; m++)
		if (json_integer_value(json_array_get(rej, m)) != (int64_t)(2 * (m % 7 + 1)))
			fail_msg("minute %zu: got %lld, want %d", m,
				 (long long)json_integer_value(json_array_get(rej, m)),
				 (int)(2 * (m % 7 + 1)));
	json_decref(o);
	o = db_stats_json(f->db, NOW);
	assert_int_equal(jint(o, "events", "reject"), sum);
	json_decref(o);
}

static void test_retention(void **state)
{
	struct fixture *f = *state;
	struct config conf;
	config_defaults(&conf);
	conf.retention_events = 14 * 86400;
	conf.retention_rollups = 35 * 86400;
	conf.retention_decisions = 30 * 86400;
	/* 12,000 old rejects (more than two chunks) and 10 recent ones. */
	assert_int_equal(db_begin(f->db), 0);
	for (int i = 0; i < 12000; i++) {
		struct event r = mk(NOW - 20 * 86400 + i, EV_REJECT, CAT_DNSBL, "192.0.2.3", 554, "old", 3);
		assert_true(db_event_insert(f->db, &r, 0) > 0);
	}
	for (int i = 0; i < 10; i++) {
		struct event r = mk(NOW - 60 + i, EV_REJECT, CAT_DNSBL, "192.0.2.3", 554, "new", 3);
		assert_true(db_event_insert(f->db, &r, 0) > 0);
	}
	struct event ancient = mk(NOW - 40 * 86400, EV_REJECT, CAT_DNSBL, "192.0.2.4", 554, "x", 1);
	assert_true(db_event_insert(f->db, &ancient, 0) > 0);
	assert_int_equal(db_commit(f->db), 0);
	int64_t keep_active =
	    add_decision(f->db, "192.0.2.3", SCOPE_IP, NOW - 100 * 86400, NOW + 86400, NULL);
	int64_t expired_old =
	    add_decision(f->db, "192.0.2.4", SCOPE_IP, NOW - 100 * 86400, NOW - 40 * 86400, NULL);
	int64_t expired_new =
	    add_decision(f->db, "192.0.2.5", SCOPE_IP, NOW - 20 * 86400, NOW - 10 * 86400, NULL);
	int64_t ended_old = add_decision(f->db, "192.0.2.6", SCOPE_IP, NOW - 100 * 86400, NOW + 86400, NULL);
	assert_int_equal(db_decision_end(f->db, ended_old, NOW - 31 * 86400, "t", "t"), 0);

	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(db_retention_run(f->db, NOW, &conf), -1); /* not inside a batch */
	assert_int_equal(db_rollback(f->db), 0);

	int64_t total = 0, n, calls = 0;
	while ((n = db_retention_run(f->db, NOW, &conf)) > 0) {
		assert_true(n <= 6 * DB_RETENTION_CHUNK);
		total += n;
		calls++;
	}
	assert_true(total >= 12001); /* every old event went, in chunks */
	assert_int_equal(n, 0);
	assert_true(total >= 12001 + 2); /* the old events and two decisions, plus rollup rows */
	assert_true(calls >= 3);	 /* 12,001 events need three chunks */
	json_t *o = db_stats_json(f->db, NOW);
	assert_int_equal(jint(o, "evidence_rows", NULL), 10);
	/* lifetime counters are not lowered by retention */
	assert_int_equal(jint(o, "events", "reject"), 12011);
	assert_int_equal(jint(o, "decisions_total", NULL), 2);
	json_decref(o);
	struct dlist l = {0};
	assert_int_equal(db_decision_get(f->db, keep_active, dcb, &l), 1);
	assert_int_equal(db_decision_get(f->db, expired_new, dcb, &l), 1);
	assert_int_equal(db_decision_get(f->db, expired_old, dcb, &l), 0);
	assert_int_equal(db_decision_get(f->db, ended_old, dcb, &l), 0);
	/* minute rollups of the 40-day-old event are gone, its hourly one stays */
	o = db_timeseries_json(f->db, "kinds", NOW - 41 * 86400, NOW - 39 * 86400, 3600);
	json_t *rej = json_object_get(json_object_get(o, "series"), "reject");
	int64_t sum = 0;
	for (size_t i = 0; i < json_array_size(rej); i++)
		sum += json_integer_value(json_array_get(rej, i));
	assert_int_equal(sum, 1);
	json_decref(o);
	o = db_timeseries_json(f->db, "kinds", NOW - 40 * 86400 - 600, NOW - 40 * 86400 + 600, 60);
	assert_null(json_object_get(json_object_get(o, "series"), "reject"));
	json_decref(o);
	config_free(&conf);
}

/* ------------------------------------------------------ per-class rollups */

static const struct class_conf test_cc = {24, 64, 16, 48};

/*
 * Seeded events over three hours from addresses in a few /24s, /16s and
 * /64s: every evidence kind, several categories and codes, plus connects
 * (which the class rollups do not count). Inserted in batches of varying
 * size, so that keys cross batch boundaries.
 */
static int seed_class_events(struct db *db, int64_t t0, uint32_t seed)
{
	static const char *const ips[] = {"192.0.2.1",	    "192.0.2.77",      "192.0.2.200",
					  "192.0.3.5",	    "192.0.9.9",       "198.51.100.7",
					  "198.51.100.8",   "203.0.113.250",   "2001:db8::1",
					  "2001:db8::ffff", "2001:db8:0:1::5", "2001:db8:1::9"};
	static const enum ev_kind kinds[] = {EV_REJECT,	  EV_REJECT, EV_AUTH_FAILURE,
					     EV_PROTOCOL, EV_LOST,   EV_CONNECT};
	static const enum ev_category cats[] = {CAT_DNSBL, CAT_UNKNOWN_RECIPIENT, CAT_GREYLISTED,
						CAT_RELAY_DENIED};
	static const int codes[] = {554, 550, 451, 450, 421, -1, 250};
	uint32_t r = seed;
	int n = 0;
	for (int batch = 0; n < 3000; batch++) {
		assert_int_equal(db_begin(db), 0);
		int size = 50 + (batch * 37) % 400;
		for (int i = 0; i < size && n < 3000; i++, n++) {
			r = r * 1103515245u + 12345u;
			const char *ip = ips[(r >> 8) % MXW_ARRAY_LEN(ips)];
			enum ev_kind k = kinds[(r >> 12) % MXW_ARRAY_LEN(kinds)];
			enum ev_category c =
			    k == EV_CONNECT ? CAT_NONE : cats[(r >> 16) % MXW_ARRAY_LEN(cats)];
			int code = k == EV_CONNECT ? -1 : codes[(r >> 20) % MXW_ARRAY_LEN(codes)];
			/* roughly in time order, with some going back a few minutes */
			int64_t ts = t0 + n * 3 - (int64_t)((r >> 24) % 300);
			struct event ev = mk(ts, k, c, ip, code, "l", 1);
			assert_true(db_event_insert(db, &ev, 0) >= 0);
		}
		assert_int_equal(db_commit(db), 0);
	}
	return n;
}

/* What db_timeseries_class_json() should answer, counted directly from the
 * stored events whose address lies in cls. */
static json_t *ts_expected(struct db *db, const char *metric, int64_t from, int64_t to, int64_t step,
			   const struct prefix *cls)
{
	uint8_t lo[17], hi[17];
	db_prefix_range(cls, lo, hi);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db->h,
					    "SELECT ts / 1000000, kind, category, code FROM events"
					    " WHERE ip_bin BETWEEN ?1 AND ?2 AND cls IS NOT NULL"
					    " AND ts >= ?3 * 1000000 AND ts < ?4 * 1000000",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_blob(st, 1, lo, 17, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, hi, 17, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, from);
	sqlite3_bind_int64(st, 4, to);
	int64_t nb = (to - from + step - 1) / step;
	json_t *series = json_object();
	if (!strcmp(metric, "codes"))
		for (int c = 0; c < CC__COUNT; c++) {
			json_t *a = json_array();
			for (int64_t i = 0; i < nb; i++)
				json_array_append_new(a, json_integer(0));
			json_object_set_new(series, code_class_name((enum code_class)c), a);
		}
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t b = (sqlite3_column_int64(st, 0) - from) / step;
		const char *name =
		    !strcmp(metric, "kinds") ? (const char *)sqlite3_column_text(st, 1)
		    : !strcmp(metric, "categories")
			? (const char *)sqlite3_column_text(st, 2)
			: code_class_name(code_class_of(
			      sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 3)));
		json_t *a = json_object_get(series, name);
		if (!a) {
			a = json_array();
			for (int64_t i = 0; i < nb; i++)
				json_array_append_new(a, json_integer(0));
			json_object_set_new(series, name, a);
		}
		json_t *cell = json_array_get(a, (size_t)b);
		json_integer_set(cell, json_integer_value(cell) + 1);
	}
	sqlite3_finalize(st);
	return series;
}

/* The per-class series equal direct counts from the events table, for
 * prefixes that sum several classes, single classes, and addresses or long
 * prefixes widened to their class; minute and hourly steps. */
static void test_class_rollups_match_events(void **state)
{
	struct fixture *f = *state;
	int64_t t0 = NOW - 3 * 3600;
	assert_int_equal(seed_class_events(f->db, t0, 7), 3000);
	static const struct {
		const char *q;
		const char *want_class; /* the prefix answered */
		int64_t want_total;	/* -1: not checked, just the per-bucket equality */
	} cases[] = {
	    {"192.0.2.0/24", "192.0.2.0/24", -1},
	    {"192.0.2.77", "192.0.2.0/24", -1},	   /* an IP: its class */
	    {"192.0.2.64/26", "192.0.2.0/24", -1}, /* longer than a class: widened */
	    {"192.0.0.0/16", "192.0.0.0/16", -1},  /* sums 192.0.2/24, 192.0.3/24, 192.0.9/24 */
	    {"198.51.100.0/24", "198.51.100.0/24", -1},
	    {"0.0.0.0/0", "0.0.0.0/0", -1},
	    {"10.0.0.0/8", "10.0.0.0/8", 0}, /* nothing there */
	    {"2001:db8::/64", "2001:db8::/64", -1},
	    {"2001:db8::ffff", "2001:db8::/64", -1},
	    {"2001:db8::/48", "2001:db8::/48", -1}, /* sums two /64s */
	    {"2001:db8::/32", "2001:db8::/32", -1},
	    {"2001:db9::/32", "2001:db9::/32", 0},
	};
	static const char *const metrics[] = {"codes", "kinds", "categories"};
	static const int64_t steps[] = {60, 300, 3600};
	int64_t nonzero_cases = 0;
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct prefix q;
		assert_int_equal(prefix_parse(&q, cases[i].q, strlen(cases[i].q), false), 0);
		struct prefix want;
		assert_int_equal(prefix_parse(&want, cases[i].want_class, strlen(cases[i].want_class), true),
				 0);
		for (size_t m = 0; m < MXW_ARRAY_LEN(metrics); m++)
			for (size_t s = 0; s < MXW_ARRAY_LEN(steps); s++) {
				int64_t from = t0 - 3600, to = NOW + 3600;
				json_t *o = db_timeseries_class_json(f->db, metrics[m], from, to, steps[s],
								     &q, &test_cc);
				if (!o)
					fail_msg("%s %s: %s", cases[i].q, metrics[m], db_errmsg(f->db));
				const char *cls = json_string_value(json_object_get(o, "class"));
				if (!cls || strcmp(cls, cases[i].want_class) != 0)
					fail_msg("%s: class got %s, want %s", cases[i].q,
						 cls ? cls : "(none)", cases[i].want_class);
				int64_t f0 = json_integer_value(json_object_get(o, "from"));
				json_t *want_series = ts_expected(f->db, metrics[m], f0, to, steps[s], &want);
				json_t *got_series = json_object_get(o, "series");
				if (!json_equal(got_series, want_series)) {
					char *g = json_dumps(got_series, JSON_COMPACT | JSON_SORT_KEYS);
					char *w = json_dumps(want_series, JSON_COMPACT | JSON_SORT_KEYS);
					fail_msg("%s %s step %lld:\n got  %.600s\n want %.600s", cases[i].q,
						 metrics[m], (long long)steps[s], g, w);
				}
				int64_t total = 0;
				const char *name;
				json_t *a;
				json_object_foreach(got_series, name, a)
				{
					size_t k;
					json_t *v;
					json_array_foreach(a, k, v) total += json_integer_value(v);
				}
				if (cases[i].want_total >= 0 && total != cases[i].want_total)
					fail_msg("%s: total got %lld, want %lld", cases[i].q,
						 (long long)total, (long long)cases[i].want_total);
				nonzero_cases += total > 0;
				json_decref(want_series);
				json_decref(o);
			}
	}
	/* the comparison above is not vacuous: most cases have counts */
	assert_true(nonzero_cases >= 9 * 9);

	/* connects are not in the class rollups: all classes sum to the evidence rows */
	struct prefix all;
	prefix_parse(&all, "0.0.0.0/0", 9, true);
	json_t *o = db_timeseries_class_json(f->db, "kinds", t0 - 3600, NOW + 3600, 3600, &all, NULL);
	assert_non_null(o);
	assert_null(json_object_get(json_object_get(o, "series"), "connect"));
	json_decref(o);

	/* no filter: the same answer as db_timeseries_json() (which counts connects) */
	json_t *a = db_timeseries_json(f->db, "kinds", t0, NOW, 600);
	json_t *b = db_timeseries_class_json(f->db, "kinds", t0, NOW, 600, NULL, &test_cc);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(json_equal(a, b));
	assert_non_null(json_object_get(json_object_get(a, "series"), "connect"));
	json_decref(a);
	json_decref(b);

	/* a prefix of no family is refused with a message */
	struct prefix bad;
	memset(&bad, 0, sizeof(bad));
	assert_null(db_timeseries_class_json(f->db, "codes", t0, NOW, 60, &bad, &test_cc));
	assert_non_null(strstr(db_errmsg(f->db), "class"));
	/* and the other parameters are checked as without a class */
	assert_null(db_timeseries_class_json(f->db, "nope", t0, NOW, 60, &all, &test_cc));
	assert_null(db_timeseries_class_json(f->db, "codes", t0, NOW, 61, &all, &test_cc));
}

/* Rows of a table as one text, in key order (to compare two states). */
static char *dump_table(sqlite3 *h, const char *table)
{
	char sql[320];
	snprintf(sql, sizeof(sql),
		 "SELECT group_concat(t || ',' || hex(cls) || ',' || plen || ',' || kind || ',' || category"
		 " || ',' || code_class || '=' || n, ';') FROM (SELECT * FROM %s ORDER BY 1, 2, 3, 4, 5, 6)",
		 table);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	const char *s = (const char *)sqlite3_column_text(st, 0);
	char *out = strdup(s ? s : "");
	sqlite3_finalize(st);
	return out;
}

/* A version-3 database (no class rollups) migrates to 4 with its class
 * rollups rebuilt from the stored events: the same rows the live path
 * writes. Then new events add to them. */
static void test_class_migration_from_v3(void **state)
{
	struct fixture *f = *state;
	int64_t t0 = NOW - 2 * 3600;
	seed_class_events(f->db, t0, 99);
	char *live_min = dump_table(f->db->h, "class_minute");
	char *live_hour = dump_table(f->db->h, "class_hour");
	assert_true(strlen(live_min) > 1000);
	assert_true(strlen(live_hour) > 100);
	db_close(f->db);
	/* Make it a version-3 file: no class tables. */
	sqlite3 *h;
	assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(h, "DROP TABLE class_minute; DROP TABLE class_hour; PRAGMA user_version = 3", NULL,
			 NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(h);
	char err[256];
	/* A read-only open does not migrate: the v3 file still answers the old queries. */
	struct db *ro = db_open(f->path, DB_RO, err, sizeof(err));
	assert_non_null(ro);
	json_t *o = db_timeseries_json(ro, "kinds", t0, NOW, 3600);
	assert_non_null(o);
	json_decref(o);
	db_close(ro);
	f->db = db_open(f->path, DB_RW, err, sizeof(err));
	assert_non_null(f->db);
	char *mig_min = dump_table(f->db->h, "class_minute");
	char *mig_hour = dump_table(f->db->h, "class_hour");
	assert_string_equal(mig_min, live_min);
	assert_string_equal(mig_hour, live_hour);
	free(mig_min);
	free(mig_hour);
	/* new events count on top of the migrated rows */
	struct prefix q;
	prefix_parse(&q, "192.0.2.0/24", 12, true);
	o = db_timeseries_class_json(f->db, "kinds", t0, t0 + 60, 60, &q, &test_cc);
	int64_t before =
	    json_integer_value(json_array_get(json_object_get(json_object_get(o, "series"), "lost"), 0));
	json_decref(o);
	assert_int_equal(db_begin(f->db), 0);
	struct event ev = mk(t0 + 30, EV_LOST, CAT_TOO_MANY_ERRORS, "192.0.2.9", -1, "x", 1);
	assert_true(db_event_insert(f->db, &ev, 0) > 0);
	assert_int_equal(db_commit(f->db), 0);
	o = db_timeseries_class_json(f->db, "kinds", t0, t0 + 60, 60, &q, &test_cc);
	int64_t after =
	    json_integer_value(json_array_get(json_object_get(json_object_get(o, "series"), "lost"), 0));
	json_decref(o);
	assert_int_equal(after, before + 1);
	free(live_min);
	free(live_hour);
}

/* Retention: class minute rows go after retention_rollups, class hour rows
 * after max(365 days, retention_rollups). */
static void test_class_retention(void **state)
{
	struct fixture *f = *state;
	struct config conf;
	config_defaults(&conf);
	conf.retention_events = 14 * 86400;
	conf.retention_rollups = 35 * 86400;
	conf.retention_decisions = 30 * 86400;
	static const struct {
		int64_t age;
		bool want_minute, want_hour;
	} cases[] = {
	    {600, true, true},
	    {20 * 86400, true, true},
	    {40 * 86400, false, true},
	    {400 * 86400, false, false},
	};
	assert_int_equal(db_begin(f->db), 0);
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct event ev = mk(NOW - cases[i].age, EV_REJECT, CAT_DNSBL, "198.51.100.3", 554, "r", 1);
		assert_true(db_event_insert(f->db, &ev, 0) > 0);
	}
	assert_int_equal(db_commit(f->db), 0);
	while (db_retention_run(f->db, NOW, &conf) > 0)
		;
	struct prefix q;
	prefix_parse(&q, "198.51.100.3", 12, false);
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		int64_t t = NOW - cases[i].age;
		for (int hourly = 0; hourly < 2; hourly++) {
			int64_t step = hourly ? 3600 : 60;
			json_t *o =
			    db_timeseries_class_json(f->db, "codes", t - 3600, t + 3600, step, &q, &test_cc);
			assert_non_null(o);
			json_t *a = json_object_get(json_object_get(o, "series"), "5xx");
			int64_t sum = 0;
			size_t k;
			json_t *v;
			json_array_foreach(a, k, v) sum += json_integer_value(v);
			bool want = hourly ? cases[i].want_hour : cases[i].want_minute;
			if (sum != (want ? 1 : 0))
				fail_msg("age %lld %s: got %lld, want %d", (long long)cases[i].age,
					 hourly ? "hourly" : "minute", (long long)sum, want ? 1 : 0);
			json_decref(o);
		}
	}
	config_free(&conf);
}

/* A child writes a batch and dies without closing (the write-ahead log
 * stays behind, as after kill -9). */
static void write_and_die(const char *path, int rows, const char *ip)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];
		struct db *db = db_open(path, DB_RW, err, sizeof(err));
		if (!db || db_begin(db) < 0)
			_exit(1);
		for (int i = 0; i < rows; i++) {
			struct event r = mk(NOW + i, EV_REJECT, CAT_DNSBL, ip, 554, "x", 1);
			if (db_event_insert(db, &r, 0) <= 0)
				_exit(1);
		}
		_exit(db_commit(db) == 0 ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Integrity: an open after an unclean stop checks the file (and only
 * then); a damaged one is refused with the recovery path, again and again;
 * the file is created 0640. */
static void test_unclean_and_damaged(void **state)
{
	struct fixture *f = *state;
	char err[512];
	struct stat sb;
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
	int64_t us = -1;
	assert_false(db_unclean(f->db, &us));
	/* enough rows for pages that the next small write does not touch */
	assert_int_equal(db_begin(f->db), 0);
	static char line[400];
	memset(line, 'L', sizeof line);
	for (int i = 0; i < 3000; i++) {
		struct event r = mk(NOW + i, EV_REJECT, CAT_DNSBL, "192.0.2.3", 554, line, sizeof line);
		assert_true(db_event_insert(f->db, &r, 0) > 0);
	}
	assert_int_equal(db_commit(f->db), 0);
	db_close(f->db);
	f->db = db_open(f->path, DB_RW, err, sizeof(err));
	assert_non_null(f->db);
	assert_false(db_unclean(f->db, NULL)); /* closed cleanly */
	struct strv probs = {0};
	assert_int_equal(db_quick_check(f->db, false, &probs), 0);
	assert_int_equal(db_quick_check(f->db, true, &probs), 0);
	assert_int_equal(probs.n, 0);
	db_close(f->db);
	f->db = NULL;
	write_and_die(f->path, 1, "192.0.2.4");
	struct db *db = db_open(f->path, DB_RW, err, sizeof(err));
	assert_non_null(db);
	assert_true(db_unclean(db, &us)); /* checked, sound */
	assert_true(us >= 0);
	db_close(db);
	/* a second writer beside the first never counts as unclean */
	db = db_open(f->path, DB_RW, err, sizeof(err));
	write_and_die(f->path, 1, "192.0.2.5");
	struct db *second = db_open(f->path, DB_RW, err, sizeof(err));
	assert_non_null(second);
	assert_false(db_unclean(second, NULL));
	db_close(second);
	db_close(db);
	/* damage the middle of the file, then leave a hot log behind */
	assert_int_equal(stat(f->path, &sb), 0);
	FILE *fp = fopen(f->path, "r+b");
	assert_non_null(fp);
	fseek(fp, sb.st_size / 2, SEEK_SET);
	for (int i = 0; i < 65536; i++)
		fputc((i * 7919 + 13) & 0xff, fp);
	fclose(fp);
	write_and_die(f->path, 1, "192.0.2.6");
	for (int round = 0; round < 2; round++) {
		db = db_open(f->path, DB_RW, err, sizeof(err));
		if (db)
			fail_msg("round %d: a damaged database opened", round);
		if (!strstr(err, "the database is damaged (") || !strstr(err, "mxwarden import") ||
		    strncmp(err, f->path, strlen(f->path)) != 0)
			fail_msg("round %d: got '%s'", round, err);
	}
	/* read-only: the check says so */
	db = db_open(f->path, DB_RO, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(db_quick_check(db, false, &probs), 1);
	assert_true(probs.n >= 1);
	for (size_t i = 0; i < probs.n; i++)
		for (const char *c = probs.v[i]; *c; c++)
			assert_true(*c >= ' ' && *c <= '~');
	struct buf m = BUF_INIT;
	db_damaged_message(f->path, probs.v[0], &m);
	assert_true(m.len < 512 - 100 + strlen(f->path));
	buf_free(&m);
	strv_free(&probs);
	db_close(db);
}

static void test_reader_beside_writer(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct db *ro = db_open(f->path, DB_RO, err, sizeof(err));
	assert_non_null(ro);
	assert_int_equal(db_begin(f->db), 0);
	struct event r = mk(NOW, EV_REJECT, CAT_DNSBL, "192.0.2.3", 554, "r", 1);
	assert_true(db_event_insert(f->db, &r, 0) > 0);
	/* The writer holds an open write transaction: the reader answers at once, from the last commit. */
	int64_t t0 = clock_mono_us();
	json_t *o = db_stats_json(ro, NOW);
	assert_non_null(o);
	assert_true(clock_mono_us() - t0 < 1000000);
	assert_int_equal(jint(o, "evidence_rows", NULL), 0);
	json_decref(o);
	/* A reader holding a snapshot does not stop the writer's commit. */
	o = db_events_json(ro, NULL, -1, 5, NULL);
	assert_non_null(o);
	json_decref(o);
	assert_int_equal(db_commit(f->db), 0);
	o = db_stats_json(ro, NOW);
	assert_int_equal(jint(o, "evidence_rows", NULL), 1);
	json_decref(o);
	/* Nested begin refused; read-only connection refuses writes. */
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(db_begin(f->db), -1);
	assert_int_equal(db_rollback(f->db), 0);
	assert_int_equal(db_unparsed_add(ro, "x", 1), -1);
	struct decision d = {.response = RESP_REJECT};
	prefix_parse(&d.prefix, "192.0.2.1", 9, true);
	assert_int_equal(db_decision_insert(ro, &d, NULL, "x"), -1);
	db_close(ro);
}

/* While a reader is in the middle of a query (its snapshot held open by a
 * running statement), the writer commits batch after batch, and the reader
 * keeps seeing its snapshot; afterwards it sees everything. */
struct hold_arg {
	struct db *w;
	int rows_seen;
	int commits_ok;
	int64_t reader_total_during;
};

static int hold_cb(void *arg, int64_t id, const struct event *ev)
{
	struct hold_arg *h = arg;
	if (h->rows_seen++ > 0)
		return 0;
	for (int b = 0; b < 20; b++) {
		if (db_begin(h->w) < 0)
			return 1;
		for (int i = 0; i < 500; i++) {
			struct event r = mk(NOW + b, EV_REJECT, CAT_DNSBL, "192.0.2.99", 554, "during", 6);
			if (db_event_insert(h->w, &r, 0) <= 0)
				return 1;
		}
		if (db_commit(h->w) == 0)
			h->commits_ok++;
	}
	return 0;
}

static void test_reader_holds_snapshot(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(db_begin(f->db), 0);
	for (int i = 0; i < 3; i++) {
		struct event r = mk(NOW - 100 + i, EV_REJECT, CAT_DNSBL, "192.0.2.98", 554, "before", 6);
		assert_true(db_event_insert(f->db, &r, 0) > 0);
	}
	assert_int_equal(db_commit(f->db), 0);
	char err[256];
	struct db *ro = db_open(f->path, DB_RO, err, sizeof(err));
	assert_non_null(ro);
	struct hold_arg h = {.w = f->db};
	int64_t t0 = clock_mono_us();
	assert_int_equal(db_events_scan(ro, 0, hold_cb, &h), 0);
	assert_int_equal(h.commits_ok, 20);
	/* the scan began before the commits: it saw its 3 rows (plus, at most,
	 * nothing else) */
	assert_int_equal(h.rows_seen, 3);
	assert_true(clock_mono_us() - t0 < 30 * 1000000);
	json_t *o = db_stats_json(ro, NOW);
	assert_int_equal(jint(o, "evidence_rows", NULL), 3 + 20 * 500);
	json_decref(o);
	db_close(ro);
}

/* Evidence without an IP, events_scan from the middle, and sources by fingerprint preferring the latest read.
 */
/* The outbox (schema 7): a message recorded with the decisions it covers,
 * (kind, key) unique, unsent listing by window and attempts, sent once,
 * counts per recipient and kind, pruned bodies; the RDAP cache finds the
 * narrowest unexpired range. */
static int collect_unsent(void *arg, const struct db_outbox_msg *m)
{
	int64_t *ids = arg;
	ids[++ids[0]] = m->id;
	assert_non_null(m->message);
	return 0;
}

static void test_outbox(void **state)
{
	struct fixture *f = *state;
	const int64_t ids[] = {11, 12};
	struct db_outbox_msg a = {.kind = "xarf",
				  .report_id = "r1",
				  .rcpt = "abuse@a.example",
				  .subject = "s",
				  .file = "/x/a.eml",
				  .message = "M1",
				  .len = 2,
				  .written_at = NOW};
	assert_int_equal(db_outbox_add(f->db, &a, ids, 2), 0);
	assert_true(a.id > 0);
	assert_int_equal(db_abuse_reported(f->db, 11), 1);
	assert_int_equal(db_abuse_reported(f->db, 12), 1);
	assert_int_equal(db_abuse_reported(f->db, 13), 0);
	/* a decision reported twice is refused, and nothing of that message stays */
	struct db_outbox_msg b = {
	    .kind = "xarf", .rcpt = "abuse@a.example", .message = "M2", .len = 2, .written_at = NOW + 10};
	const int64_t again[] = {13, 12};
	assert_int_equal(db_outbox_add(f->db, &b, again, 2), -1);
	assert_int_equal(db_abuse_reported(f->db, 13), 0);
	assert_int_equal(db_outbox_count(f->db, "abuse@a.example", "xarf", 0), 1);
	struct db_outbox_msg g = {.kind = "digest",
				  .key = "digest-1",
				  .rcpt = "pm@b.example",
				  .message = "D",
				  .len = 1,
				  .written_at = NOW + 20};
	assert_int_equal(db_outbox_add(f->db, &g, NULL, 0), 0);
	assert_int_equal(db_outbox_has_key(f->db, "digest", "digest-1"), 1);
	assert_int_equal(db_outbox_has_key(f->db, "digest", "digest-2"), 0);
	int64_t gid = g.id;
	assert_int_equal(db_outbox_add(f->db, &g, NULL, 0), -1); /* (kind, key) once */
	/* unsent within the window, fewer failures than the limit */
	int64_t got[8] = {0};
	assert_int_equal(db_outbox_unsent(f->db, NOW, 5, NULL, collect_unsent, got), 0);
	assert_int_equal(got[0], 2);
	memset(got, 0, sizeof got);
	assert_int_equal(db_outbox_unsent(f->db, NOW + 5, 5, NULL, collect_unsent, got), 0);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], gid);
	memset(got, 0, sizeof got);
	assert_int_equal(db_outbox_unsent(f->db, 0, 5, "xarf", collect_unsent, got), 0);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], a.id);
	assert_int_equal(db_outbox_failed(f->db, a.id, "451 later"), 0);
	memset(got, 0, sizeof got);
	assert_int_equal(db_outbox_unsent(f->db, 0, 1, NULL, collect_unsent, got), 0);
	assert_int_equal(got[0], 1); /* a failed once: over a limit of 1 */
	assert_int_equal(db_outbox_sent(f->db, gid, NOW + 30), 0);
	memset(got, 0, sizeof got);
	assert_int_equal(db_outbox_unsent(f->db, 0, 5, NULL, collect_unsent, got), 0);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], a.id);
	json_t *j = db_outbox_json(f->db, 10);
	assert_non_null(j);
	json_t *first = json_array_get(json_object_get(j, "items"), 1);
	assert_string_equal(json_string_value(json_object_get(first, "rcpt")), "abuse@a.example");
	assert_int_equal(json_array_size(json_object_get(first, "decisions")), 2);
	assert_int_equal(json_integer_value(json_object_get(first, "attempts")), 1);
	json_decref(j);
	/* bodies older than the cut go; the rows stay */
	assert_int_equal(db_outbox_prune(f->db, NOW + 15), 1);
	memset(got, 0, sizeof got);
	assert_int_equal(db_outbox_unsent(f->db, 0, 5, NULL, collect_unsent, got), 0);
	assert_int_equal(got[0], 0);
	assert_int_equal(db_abuse_reported(f->db, 11), 1);

	/* RDAP cache: nested ranges, the narrowest wins; expired ones do not count */
	struct ipaddr lo, hi, ip;
	char out[64];
	ipaddr_parse(&ip, "198.51.100.7", 12);
	assert_int_equal(db_rdap_get(f->db, &ip, NOW, out, sizeof out), 0);
	ipaddr_parse(&lo, "198.0.0.0", 9);
	ipaddr_parse(&hi, "198.255.255.255", 15);
	assert_int_equal(db_rdap_put(f->db, &lo, &hi, "abuse@wide.example", "s", NOW, NOW + 100), 0);
	ipaddr_parse(&lo, "198.51.100.0", 12);
	ipaddr_parse(&hi, "198.51.100.255", 14);
	assert_int_equal(db_rdap_put(f->db, &lo, &hi, "abuse@narrow.example", "s", NOW, NOW + 50), 0);
	assert_int_equal(db_rdap_get(f->db, &ip, NOW, out, sizeof out), 1);
	assert_string_equal(out, "abuse@narrow.example");
	assert_int_equal(db_rdap_get(f->db, &ip, NOW + 60, out, sizeof out), 1);
	assert_string_equal(out, "abuse@wide.example");
	assert_int_equal(db_rdap_get(f->db, &ip, NOW + 100, out, sizeof out), 0);
	ipaddr_parse(&ip, "198.51.101.1", 12);
	ipaddr_parse(&lo, "198.51.101.0", 12);
	ipaddr_parse(&hi, "198.51.101.255", 14);
	assert_int_equal(db_rdap_put(f->db, &lo, &hi, NULL, "s", NOW, NOW + 100),
			 0); /* no contact: cached too */
	assert_int_equal(db_rdap_get(f->db, &ip, NOW, out, sizeof out), 1);
	assert_string_equal(out, "");
	assert_int_equal(db_rdap_put(f->db, &hi, &lo, "x@y.example", "s", NOW, NOW + 100), -1);
}

static void test_edges(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(db_begin(f->db), 0);
	struct event noip = mk(NOW, EV_PROTOCOL, CAT_NON_SMTP, NULL, -1, "noip", 4);
	assert_true(db_event_insert(f->db, &noip, 0) > 0);
	for (int i = 0; i < 5; i++) {
		struct event r = mk(NOW + 10 * i, EV_LOST, CAT_OTHER, "2001:db8::1", -1, "lost", 4);
		assert_true(db_event_insert(f->db, &r, 7) > 0);
	}
	struct event bad = mk(NOW, EV_REJECT, CAT_OTHER, "192.0.2.1", 550, "x", 1);
	bad.ts_us = -5;
	assert_int_equal(db_event_insert(f->db, &bad, 0), -1);
	bad = mk(NOW, (enum ev_kind)99, CAT_OTHER, "192.0.2.1", 550, "x", 1);
	assert_int_equal(db_event_insert(f->db, &bad, 0), -1);
	assert_int_equal(db_commit(f->db), 0);

	json_t *o = db_events_json(f->db, NULL, CAT_NON_SMTP, 10, NULL);
	json_t *it = json_array_get(json_object_get(o, "items"), 0);
	assert_non_null(it);
	assert_true(json_is_null(json_object_get(it, "ip")));
	assert_true(json_is_null(json_object_get(it, "class")));
	assert_true(json_is_null(json_object_get(it, "code")));
	assert_string_equal(json_string_value(json_object_get(it, "kind")), "protocol");
	json_decref(o);
	struct prefix q;
	prefix_parse(&q, "2001:db8::/64", 13, true);
	o = db_events_json(f->db, &q, -1, 10, NULL);
	assert_int_equal(json_array_size(json_object_get(o, "items")), 5);
	it = json_array_get(json_object_get(o, "items"), 0);
	assert_string_equal(json_string_value(json_object_get(it, "class")), "2001:db8::/64");
	assert_int_equal(jint(it, "source_id", NULL), 7);
	json_decref(o);

	struct scan_got got = {0, BUF_INIT, BUF_INIT, {0}};
	assert_int_equal(db_events_scan(f->db, (NOW + 20) * 1000000, scan_cb, &got), 0);
	assert_int_equal(got.n, 3);
	buf_free(&got.line);
	buf_free(&got.helo);

	/* The start is exact to the microsecond, not rounded to the second
	 * (a restart replays only what came after the last event it saw). */
	assert_int_equal(db_begin(f->db), 0);
	static const int64_t frac[] = {200000, 700000, 500000, 500001};
	for (int i = 0; i < 4; i++) {
		struct event r = mk(NOW + 100, EV_REJECT, CAT_OTHER, "192.0.2.50", 550, "sub", 3);
		r.ts_us += frac[i];
		assert_true(db_event_insert(f->db, &r, 0) > 0);
	}
	assert_int_equal(db_commit(f->db), 0);
	static const struct {
		int64_t from_frac;
		int want;
	} starts[] = {{0, 4}, {200000, 4}, {200001, 3}, {500000, 3}, {500001, 2}, {700000, 1}, {700001, 0}};
	for (size_t i = 0; i < MXW_ARRAY_LEN(starts); i++) {
		struct scan_got g = {0, BUF_INIT, BUF_INIT, {0}};
		assert_int_equal(
		    db_events_scan(f->db, (NOW + 100) * 1000000 + starts[i].from_frac, scan_cb, &g), 0);
		if (g.n != starts[i].want)
			fail_msg("scan from +%lld us: got %d events, want %d", (long long)starts[i].from_frac,
				 g.n, starts[i].want);
		buf_free(&g.line);
		buf_free(&g.helo);
	}

	/* Two sources with the same first bytes: the one read last wins. */
	struct db_source a = {.kind = DB_SRC_IMPORT, .dev = 1, .ino = 1, .fp_hash = 99, .fp_len = 1024};
	struct db_source b = {.kind = DB_SRC_IMPORT, .dev = 1, .ino = 2, .fp_hash = 99, .fp_len = 1024};
	snprintf(a.path, sizeof(a.path), "a.log");
	snprintf(b.path, sizeof(b.path), "b.log.gz");
	assert_int_equal(db_source_get_or_create(f->db, &a, NOW), 1);
	assert_int_equal(db_source_get_or_create(f->db, &b, NOW), 1);
	assert_int_equal(db_source_update_offset(f->db, a.id, 10, 1, NOW + 50), 0);
	assert_int_equal(db_source_update_offset(f->db, b.id, 20, 2, NOW + 10), 0);
	struct db_source out;
	assert_int_equal(db_source_find_fp(f->db, 99, 1024, &out), 1);
	assert_int_equal(out.id, a.id);
	assert_string_equal(out.path, "a.log");
	assert_string_equal(db_source_kind_name(out.kind), "import");
	/* stdin is found by name */
	struct db_source s1 = {.kind = DB_SRC_STDIN}, s2 = {.kind = DB_SRC_STDIN};
	snprintf(s1.path, sizeof(s1.path), "-");
	snprintf(s2.path, sizeof(s2.path), "-");
	assert_int_equal(db_source_get_or_create(f->db, &s1, NOW), 1);
	assert_int_equal(db_source_get_or_create(f->db, &s2, NOW), 0);
	assert_int_equal(s1.id, s2.id);

	/* Rows edited by hand with bytes that are not UTF-8: queries still answer. */
	sqlite3 *h;
	assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(
		h,
		"INSERT INTO top_hour VALUES(1795809600, 'ip', CAST(x'3139ff' AS TEXT), 'reject',"
		" CAST(x'6361ff74' AS TEXT), 5);"
		"INSERT INTO rollup_minute VALUES(1795809600, 'reject', CAST(x'6361ff74' AS TEXT),"
		" '5xx', 2);"
		"INSERT INTO counters VALUES('unparsed', CAST(x'62616400ff' AS TEXT), 1);"
		"INSERT INTO events(id, ts, kind, category, ip_bin, raw) VALUES(1, 1795809600000000,"
		" CAST(x'6bff' AS TEXT), CAST(x'6361ff74' AS TEXT), x'04c000020100000000000000000000'"
		" || x'0000', x'00')",
		NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(h);
	o = db_top_json(f->db, SCOPE_IP, NOW - 3600, NOW + 3600, -1, -1, 10);
	assert_non_null(o);
	json_decref(o);
	o = db_timeseries_json(f->db, "categories", NOW - 600, NOW + 600, 60);
	assert_non_null(o);
	assert_non_null(json_object_get(json_object_get(o, "series"), "ca\xef\xbf\xbdt"));
	json_decref(o);
	o = db_stats_json(f->db, NOW);
	assert_non_null(o);
	json_decref(o);
	prefix_parse(&q, "192.0.2.0/24", 12, true);
	o = db_recent_counts_json(f->db, &q, 0);
	assert_non_null(o);
	char *dump = json_dumps(o, 0);
	assert_non_null(dump);
	free(dump);
	json_decref(o);

	/* the fingerprint hash is FNV-1a 64 (stable across builds) */
	assert_int_equal(db_fingerprint("", 0), 0xcbf29ce484222325ULL);
	assert_int_equal(db_fingerprint("a", 1), 0xaf63dc4c8601ec8cULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_code_class_table),
	    cmocka_unit_test(test_migration_from_v1),
	    cmocka_unit_test(test_migration_from_v8),
	    cmocka_unit_test_setup_teardown(test_migration_from_v9, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema_idempotent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_bytes_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_json_bytes_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counted_only_and_stats, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_offsets_atomic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sources, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pagination, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_decisions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_decision_lifecycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollup_queries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_many_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_class_rollups_match_events, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_class_migration_from_v3, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_class_retention, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reader_beside_writer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unclean_and_damaged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reader_holds_snapshot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_edges, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
