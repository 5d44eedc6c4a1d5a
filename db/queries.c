/*
 * queries.c - the read side shared by the CLI and the web API: stats,
 * summary, timeseries, top senders, decisions, events, recent counts and
 * the audit trail, each returned as a new jansson object.
 *
 * Every query runs inside one read transaction so that its numbers agree
 * with each other (WAL: a snapshot, never blocking the writer). It must
 * never write, and never put a stored byte string into JSON except through
 * db_json_bytes().
 */
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"

/* Add n to obj[key] where key comes from the database: made valid UTF-8
 * first, so that a hand-edited row cannot make jansson refuse it. */
static void add_count(json_t *obj, const char *key, size_t keylen, int64_t n)
{
	json_t *k = db_json_bytes(key, keylen);
	const char *ks = json_string_value(k);
	db_json_set(obj, ks, json_integer(json_integer_value(json_object_get(obj, ks)) + n));
	json_decref(k);
}

/* The end of one page of a paginated query: reset st, then either the error
 * (rc is neither DONE nor ROW: o is dropped) or o with "next", the cursor
 * after last when more rows follow, else null. Ends the read transaction. */
static json_t *page_end(struct db *db, json_t *o, sqlite3_stmt *st, int rc, const char *what, bool more,
			char tag, int64_t last, bool started)
{
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_fail_sql(db, what);
		return db_read_fail(db, o, started);
	}
	if (more) {
		char c[64];
		db_cursor_format(c, sizeof(c), tag, last, 0, false);
		db_json_set(o, "next", json_string(c));
	} else {
		db_json_set(o, "next", json_null());
	}
	db_read_end(db, started);
	return o;
}

/* One integer from a query with up to two int64 parameters; -1 on error. */
static int64_t query_int(struct db *db, const char *sql, int nparams, int64_t a, int64_t b)
{
	sqlite3_stmt *st = db_stmt_sql(db, sql);
	if (!st)
		return -1;
	if (nparams > 0)
		sqlite3_bind_int64(st, 1, a);
	if (nparams > 1)
		sqlite3_bind_int64(st, 2, b);
	int64_t v = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		db_fail_sql(db, "query");
	sqlite3_reset(st);
	return v;
}

/* {key: n} from a (text, integer) query with one optional text parameter
 * and up to two integer parameters after it. NULL on error. */
static json_t *query_map(struct db *db, const char *sql, const char *text, int nints, int64_t a, int64_t b)
{
	sqlite3_stmt *st = db_stmt_sql(db, sql);
	if (!st)
		return NULL;
	int i = 1;
	if (text)
		sqlite3_bind_text(st, i++, text, -1, SQLITE_STATIC);
	if (nints > 0)
		sqlite3_bind_int64(st, i++, a);
	if (nints > 1)
		sqlite3_bind_int64(st, i++, b);
	json_t *m = json_object();
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		json_t *key = db_json_bytes(k ? k : "", k ? (size_t)sqlite3_column_bytes(st, 0) : 0);
		db_json_set(m, json_string_value(key), json_integer(sqlite3_column_int64(st, 1)));
		json_decref(key);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail_sql(db, "query");
		json_decref(m);
		return NULL;
	}
	return m;
}

/* ------------------------------------------------------------------ stats */

static const char SQL_COUNTERS[] = "SELECT key, n FROM counters WHERE name = ? ORDER BY key";
static const char SQL_LINES_READ[] = "SELECT coalesce(sum(lines_read), 0) FROM sources";
static const char SQL_ACTIVE[] = "SELECT count(*) FROM decisions WHERE ended_at IS NULL AND until > ?";
static const char SQL_DECISIONS_TOTAL[] = "SELECT count(*) FROM decisions";
static const char SQL_EVIDENCE_ROWS[] =
    "SELECT coalesce((SELECT n FROM counters WHERE name = 'rows' AND key = 'events'), 0)";

static int add_file(void *arg, const struct db_source *s)
{
	json_t *f = json_object();
	db_json_set(f, "id", json_integer(s->id));
	db_json_set(f, "path", db_json_bytes(s->path, strlen(s->path)));
	db_json_set(f, "kind", json_string(db_source_kind_name(s->kind)));
	db_json_set(f, "offset", json_integer(s->offset));
	db_json_set(f, "lines", json_integer(s->lines_read));
	db_json_set(f, "first_seen", db_json_time(s->first_seen));
	db_json_set(f, "last_read", s->last_read ? db_json_time(s->last_read) : json_null());
	db_json_append(arg, f);
	return 0;
}

json_t *db_stats_json(struct db *db, int64_t now)
{
	bool started = db_read_begin(db);
	json_t *o = json_object();
	int64_t lines = query_int(db, SQL_LINES_READ, 0, 0, 0);
	if (lines < 0)
		return db_read_fail(db, o, started);
	db_json_set(o, "lines_read", json_integer(lines));
	static const char *const maps[][2] = {{"events", "kind"},
					      {"categories", "category"},
					      {"unparsed", "unparsed"},
					      {"attribution", "attribution"}};
	for (size_t i = 0; i < MXW_ARRAY_LEN(maps); i++) {
		json_t *m = query_map(db, SQL_COUNTERS, maps[i][1], 0, 0, 0);
		if (!m)
			return db_read_fail(db, o, started);
		db_json_set(o, maps[i][0], m);
	}
	json_t *files = json_array();
	db_json_set(o, "files", files);
	if (db_sources_list(db, add_file, files) < 0)
		return db_read_fail(db, o, started);
	int64_t active = query_int(db, SQL_ACTIVE, 1, now, 0);
	int64_t total = query_int(db, SQL_DECISIONS_TOTAL, 0, 0, 0);
	int64_t rows = query_int(db, SQL_EVIDENCE_ROWS, 0, 0, 0);
	if (active < 0 || total < 0 || rows < 0)
		return db_read_fail(db, o, started);
	db_json_set(o, "decisions_active", json_integer(active));
	db_json_set(o, "decisions_total", json_integer(total));
	db_json_set(o, "evidence_rows", json_integer(rows));
	db_json_set(o, "db_bytes", json_integer(db_size_bytes(db)));
	db_json_set(o, "db_file_bytes", json_integer(db_file_bytes(db, false)));
	db_json_set(o, "wal_bytes", json_integer(db_file_bytes(db, true)));
	/* the MX hosts heard from (silence is the daemon's business) */
	json_t *hosts = db_hosts_json(db, now, 0);
	if (!hosts)
		return db_read_fail(db, o, started);
	db_json_set(o, "hosts", json_incref(json_object_get(hosts, "items")));
	json_decref(hosts);
	db_read_end(db, started);
	return o;
}

/* ---------------------------------------------------------------- summary */

static const char SQL_SUMMARY[] =
    "SELECT"
    " (SELECT coalesce(sum(n), 0) FROM rollup_minute WHERE t >= ?1 - 3600 AND t <= ?1),"
    " (SELECT coalesce(sum(n), 0) FROM rollup_minute WHERE t >= ?1 - 86400 AND t <= ?1),"
    " (SELECT coalesce(sum(n), 0) FROM rollup_minute WHERE t >= ?1 - 3600 AND t <= ?1 AND kind = 'reject'),"
    " (SELECT coalesce(sum(n), 0) FROM rollup_minute WHERE t >= ?1 - 86400 AND t <= ?1 AND kind = 'reject'),"
    " (SELECT count(*) FROM decisions WHERE ended_at IS NULL AND until > ?1),"
    " (SELECT count(*) FROM decisions WHERE ended_at IS NULL AND until > ?1 AND scope = 'ip'),"
    " (SELECT count(*) FROM decisions WHERE ended_at IS NULL AND until > ?1 AND scope = 'class'),"
    " (SELECT count(*) FROM sources WHERE kind = 'follow'),"
    " (SELECT max(last_read) FROM sources WHERE kind IN ('follow', 'syslog') AND last_read > 0),"
    " (SELECT coalesce(sum(lines), 0) FROM ingest_minute WHERE t = ?2),"
    " (SELECT coalesce(sum(lines), 0) FROM ingest_minute WHERE t >= ?1 - 3600 AND t <= ?1),"
    " (SELECT coalesce(sum(unparsed), 0) FROM ingest_minute WHERE t >= ?1 - 3600 AND t <= ?1),"
    " (SELECT coalesce(sum(lines_read), 0) FROM sources),"
    " (SELECT coalesce(sum(n), 0) FROM counters WHERE name = 'unparsed')";
static const char SQL_CATS_DAY[] = "SELECT category, sum(n) FROM rollup_minute"
				   " WHERE t >= ?1 - 86400 AND t <= ?1 AND category != 'none'"
				   " GROUP BY category ORDER BY category";

json_t *db_summary_json(struct db *db, int64_t now)
{
	bool started = db_read_begin(db);
	sqlite3_stmt *st = db_stmt_sql(db, SQL_SUMMARY);
	if (!st)
		return db_read_fail(db, NULL, started);
	int64_t last_full_minute = now - ((now % 60) + 60) % 60 - 60;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, last_full_minute);
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_fail_sql(db, "summary");
		sqlite3_reset(st);
		return db_read_fail(db, NULL, started);
	}
	int64_t v[14];
	for (int i = 0; i < 14; i++)
		v[i] = sqlite3_column_int64(st, i);
	bool lag_null = sqlite3_column_type(st, 8) == SQLITE_NULL;
	sqlite3_reset(st);

	json_t *o = json_object();
	db_json_set(o, "now", db_json_time(now));
	json_t *ev = json_object();
	db_json_set(ev, "last_hour", json_integer(v[0]));
	db_json_set(ev, "last_day", json_integer(v[1]));
	db_json_set(o, "events", ev);
	json_t *rj = json_object();
	db_json_set(rj, "last_hour", json_integer(v[2]));
	db_json_set(rj, "last_day", json_integer(v[3]));
	db_json_set(o, "rejects", rj);
	json_t *rates = json_object();
	db_json_set(rates, "events_per_min_hour", json_real((double)v[0] / 60.0));
	db_json_set(rates, "events_per_min_day", json_real((double)v[1] / 1440.0));
	db_json_set(rates, "rejects_per_min_hour", json_real((double)v[2] / 60.0));
	db_json_set(o, "rates", rates);
	json_t *cats = query_map(db, SQL_CATS_DAY, NULL, 1, now, 0);
	if (!cats)
		return db_read_fail(db, o, started);
	db_json_set(o, "categories_last_day", cats);
	db_json_set(o, "blocks_active", json_integer(v[4]));
	db_json_set(o, "blocks_active_ip", json_integer(v[5]));
	db_json_set(o, "blocks_active_class", json_integer(v[6]));
	json_t *in = json_object();
	db_json_set(in, "files", json_integer(v[7]));
	db_json_set(in, "lag_seconds", lag_null ? json_null() : json_integer(MXW_MAX(0, now - v[8])));
	db_json_set(in, "lines_per_sec", json_real((double)v[9] / 60.0));
	db_json_set(in, "lines_last_hour", json_integer(v[10]));
	db_json_set(in, "parse_errors_last_hour", json_integer(v[11]));
	db_json_set(in, "lines_read", json_integer(v[12]));
	db_json_set(in, "unparsed", json_integer(v[13]));
	db_json_set(o, "ingest", in);
	/* where the data is (log time): an import of last week's logs has
	 * none in the last hour, and the dashboard says where to look */
	st = db_stmt_sql(db, "SELECT (SELECT min(t) FROM rollup_hour), (SELECT max(t) FROM rollup_hour),"
			     " (SELECT max(t) FROM rollup_minute)");
	if (!st)
		return db_read_fail(db, o, started);
	json_t *data = json_object();
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		int64_t last = sqlite3_column_int64(st, 1) + 3600;
		if (sqlite3_column_type(st, 2) != SQLITE_NULL)
			last = sqlite3_column_int64(st, 2) + 60;
		db_json_set(data, "first", db_json_time(sqlite3_column_int64(st, 0)));
		db_json_set(data, "last", db_json_time(last));
	} else {
		db_json_set(data, "first", json_null());
		db_json_set(data, "last", json_null());
	}
	sqlite3_reset(st);
	db_json_set(o, "data", data);
	db_read_end(db, started);
	return o;
}

/* ------------------------------------------------------------- timeseries */

#define TS_SQL(table, col) \
	"SELECT (t - ?1) / ?3, " col ", sum(n) FROM " table " WHERE t >= ?1 AND t < ?2 GROUP BY 1, 2"
static const char SQL_TS_MIN_CODES[] = TS_SQL("rollup_minute", "code_class");
static const char SQL_TS_MIN_CATS[] = TS_SQL("rollup_minute", "category");
static const char SQL_TS_MIN_KINDS[] = TS_SQL("rollup_minute", "kind");
static const char SQL_TS_HOUR_CODES[] = TS_SQL("rollup_hour", "code_class");
static const char SQL_TS_HOUR_CATS[] = TS_SQL("rollup_hour", "category");
static const char SQL_TS_HOUR_KINDS[] = TS_SQL("rollup_hour", "kind");
/* The classes inside a prefix: the key range [?4, ?5], at least as long as ?6. */
#define TS_CLASS_SQL(table, col)                                                        \
	"SELECT (t - ?1) / ?3, " col ", sum(n) FROM " table " WHERE t >= ?1 AND t < ?2" \
	" AND cls BETWEEN ?4 AND ?5 AND plen >= ?6 GROUP BY 1, 2"
static const char SQL_TSC_MIN_CODES[] = TS_CLASS_SQL("class_minute", "code_class");
static const char SQL_TSC_MIN_CATS[] = TS_CLASS_SQL("class_minute", "category");
static const char SQL_TSC_MIN_KINDS[] = TS_CLASS_SQL("class_minute", "kind");
static const char SQL_TSC_HOUR_CODES[] = TS_CLASS_SQL("class_hour", "code_class");
static const char SQL_TSC_HOUR_CATS[] = TS_CLASS_SQL("class_hour", "category");
static const char SQL_TSC_HOUR_KINDS[] = TS_CLASS_SQL("class_hour", "kind");
/* One MX host's (?4). */
#define TS_HOST_SQL(table, col)                                                         \
	"SELECT (t - ?1) / ?3, " col ", sum(n) FROM " table " WHERE t >= ?1 AND t < ?2" \
	" AND host = ?4 GROUP BY 1, 2"
static const char SQL_TSH_MIN_CODES[] = TS_HOST_SQL("host_rollup_minute", "code_class");
static const char SQL_TSH_MIN_CATS[] = TS_HOST_SQL("host_rollup_minute", "category");
static const char SQL_TSH_MIN_KINDS[] = TS_HOST_SQL("host_rollup_minute", "kind");
static const char SQL_TSH_HOUR_CODES[] = TS_HOST_SQL("host_rollup_hour", "code_class");
static const char SQL_TSH_HOUR_CATS[] = TS_HOST_SQL("host_rollup_hour", "category");
static const char SQL_TSH_HOUR_KINDS[] = TS_HOST_SQL("host_rollup_hour", "kind");

#define TS_MAX_BUCKETS 2000

json_t *db_timeseries_json(struct db *db, const char *metric, int64_t from, int64_t to, int64_t step)
{
	return db_timeseries_class_json(db, metric, from, to, step, NULL, NULL);
}

static json_t *timeseries(struct db *db, const char *metric, int64_t from, int64_t to, int64_t step,
			  const struct prefix *q, const struct class_conf *cc, const char *host);

json_t *db_timeseries_class_json(struct db *db, const char *metric, int64_t from, int64_t to, int64_t step,
				 const struct prefix *q, const struct class_conf *cc)
{
	return timeseries(db, metric, from, to, step, q, cc, NULL);
}

json_t *db_timeseries_host_json(struct db *db, const char *metric, int64_t from, int64_t to, int64_t step,
				const char *host)
{
	return timeseries(db, metric, from, to, step, NULL, NULL, host);
}

/* One of the three: overall (q and host NULL), the classes inside q, or
 * one host. */
static json_t *timeseries(struct db *db, const char *metric, int64_t from, int64_t to, int64_t step,
			  const struct prefix *q, const struct class_conf *cc, const char *host)
{
	struct prefix cls;
	if (q) {
		if (q->addr.family != IPADDR_V4 && q->addr.family != IPADDR_V6) {
			db_fail(db, "class: not an IPv4 or IPv6 prefix");
			return NULL;
		}
		cls = *q;
		unsigned clen = !cc ? 0 : q->addr.family == IPADDR_V4 ? cc->v4_len : cc->v6_len;
		if (cc && q->len > clen)
			ipaddr_class(&q->addr, cc, &cls);
		else
			prefix_from_addr(&cls, &q->addr, q->len); /* host bits cleared */
	}
	int m = !metric				? -1
		: !strcmp(metric, "codes")	? 0
		: !strcmp(metric, "categories") ? 1
		: !strcmp(metric, "kinds")	? 2
						: -1;
	if (m < 0) {
		db_fail(db, "unknown metric '%s' (codes, categories, kinds)", metric ? metric : "");
		return NULL;
	}
	if (step < 60 || step % 60 != 0) {
		db_fail(db, "step must be a positive multiple of 60 seconds");
		return NULL;
	}
	bool hourly = step % 3600 == 0;
	int64_t gran = hourly ? 3600 : 60;
	from -= ((from % gran) + gran) % gran;
	if (to <= from) {
		db_fail(db, "empty time range");
		return NULL;
	}
	int64_t nb = (to - from + step - 1) / step;
	if (nb > TS_MAX_BUCKETS) {
		db_fail(db, "too many buckets (%lld, at most %d): use a larger step", (long long)nb,
			TS_MAX_BUCKETS);
		return NULL;
	}
	static const char *const sqls[3][2][3] = {
	    {{SQL_TS_MIN_CODES, SQL_TS_MIN_CATS, SQL_TS_MIN_KINDS},
	     {SQL_TS_HOUR_CODES, SQL_TS_HOUR_CATS, SQL_TS_HOUR_KINDS}},
	    {{SQL_TSC_MIN_CODES, SQL_TSC_MIN_CATS, SQL_TSC_MIN_KINDS},
	     {SQL_TSC_HOUR_CODES, SQL_TSC_HOUR_CATS, SQL_TSC_HOUR_KINDS}},
	    {{SQL_TSH_MIN_CODES, SQL_TSH_MIN_CATS, SQL_TSH_MIN_KINDS},
	     {SQL_TSH_HOUR_CODES, SQL_TSH_HOUR_CATS, SQL_TSH_HOUR_KINDS}}};
	bool started = db_read_begin(db);
	sqlite3_stmt *st = db_stmt_sql(db, sqls[q ? 1 : host ? 2 : 0][hourly][m]);
	if (!st)
		return db_read_fail(db, NULL, started);
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, to);
	sqlite3_bind_int64(st, 3, step);
	if (host && !q)
		sqlite3_bind_text(st, 4, host, -1, SQLITE_TRANSIENT);
	uint8_t lo[17], hi[17];
	if (q) {
		db_prefix_range(&cls, lo, hi);
		sqlite3_bind_blob(st, 4, lo, sizeof(lo), SQLITE_TRANSIENT);
		sqlite3_bind_blob(st, 5, hi, sizeof(hi), SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 6, (int)cls.len);
	}

	json_t *o = json_object();
	db_json_set(o, "metric", json_string(metric));
	db_json_set(o, "from", json_integer(from));
	db_json_set(o, "to", json_integer(to));
	db_json_set(o, "step", json_integer(step));
	if (q) {
		char text[PREFIX_STRLEN];
		size_t n = prefix_format(&cls, text);
		db_json_set(o, "class", json_stringn(text, n));
	} else if (host) {
		db_json_set(o, "host", db_json_bytes(host, strlen(host)));
	}
	json_t *t = json_array();
	for (int64_t i = 0; i < nb; i++)
		db_json_append(t, json_integer(from + i * step));
	db_json_set(o, "t", t);
	json_t *series = json_object();
	db_json_set(o, "series", series);
	if (m == 0)
		for (int c = 0; c < CC__COUNT; c++) {
			json_t *a = json_array();
			for (int64_t i = 0; i < nb; i++)
				db_json_append(a, json_integer(0));
			db_json_set(series, code_class_name((enum code_class)c), a);
		}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t b = sqlite3_column_int64(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		if (!name || b < 0 || b >= nb)
			continue;
		json_t *key = db_json_bytes(name, (size_t)sqlite3_column_bytes(st, 1));
		json_t *a = json_object_get(series, json_string_value(key));
		if (!a) {
			a = json_array();
			for (int64_t i = 0; i < nb; i++)
				db_json_append(a, json_integer(0));
			db_json_set(series, json_string_value(key), a);
		}
		json_decref(key);
		json_t *cell = json_array_get(a, (size_t)b);
		json_integer_set(cell, json_integer_value(cell) + sqlite3_column_int64(st, 2));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail_sql(db, "timeseries");
		return db_read_fail(db, o, started);
	}
	db_read_end(db, started);
	return o;
}

/* -------------------------------------------------------------------- top */

#define TOP_WHERE                                                                                     \
	" WHERE t >= ?1 AND t < ?2 AND scope = ?3"                                                    \
	" AND ((?4 IS NULL AND kind IN ('reject', 'auth_failure', 'protocol', 'lost')) OR kind = ?4)" \
	" AND (?5 IS NULL OR category = ?5)"
static const char SQL_TOP[] =
    "SELECT prefix, sum(n) AS c FROM top_hour" TOP_WHERE " GROUP BY prefix ORDER BY c DESC, prefix LIMIT ?6";
static const char SQL_TOP_CATS[] =
    "SELECT prefix, category, sum(n) FROM top_hour" TOP_WHERE
    " AND prefix IN (SELECT value FROM json_each(?6)) GROUP BY prefix, category";
/* one MX host's (?7) */
static const char SQL_TOP_HOST[] = "SELECT prefix, sum(n) AS c FROM host_top_hour" TOP_WHERE
				   " AND host = ?7 GROUP BY prefix ORDER BY c DESC, prefix LIMIT ?6";
static const char SQL_TOP_HOST_CATS[] =
    "SELECT prefix, category, sum(n) FROM host_top_hour" TOP_WHERE
    " AND host = ?7 AND prefix IN (SELECT value FROM json_each(?6)) GROUP BY prefix, category";

static void top_bind(sqlite3_stmt *st, enum scope by, int64_t from, int64_t to, int kind, int category,
		     const char *host)
{
	if (host)
		sqlite3_bind_text(st, 7, host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 1, from - ((from % 3600) + 3600) % 3600);
	sqlite3_bind_int64(st, 2, to);
	sqlite3_bind_text(st, 3, scope_name(by), -1, SQLITE_STATIC);
	if (kind >= 0)
		sqlite3_bind_text(st, 4, ev_kind_name((enum ev_kind)kind), -1, SQLITE_STATIC);
	if (category >= 0)
		sqlite3_bind_text(st, 5, ev_category_name((enum ev_category)category), -1, SQLITE_STATIC);
}

json_t *db_top_json(struct db *db, enum scope by, int64_t from, int64_t to, int kind, int category, int limit)
{
	return db_top_host_json(db, by, from, to, kind, category, limit, NULL);
}

json_t *db_top_host_json(struct db *db, enum scope by, int64_t from, int64_t to, int kind, int category,
			 int limit, const char *host)
{
	if (host && kind >= 0 && !db_kind_is_evidence((enum ev_kind)kind)) {
		db_fail(db, "host: the top of one host counts the evidence kinds only");
		return NULL;
	}
	if (kind >= EV__COUNT || category >= CAT__COUNT) {
		db_fail(db, "bad kind or category");
		return NULL;
	}
	limit = db_clamp_limit(limit);
	bool started = db_read_begin(db);
	sqlite3_stmt *st = db_stmt_sql(db, host ? SQL_TOP_HOST : SQL_TOP);
	if (!st)
		return db_read_fail(db, NULL, started);
	top_bind(st, by, from, to, kind, category, host);
	sqlite3_bind_int(st, 6, limit);
	json_t *o = json_object();
	db_json_set(o, "by", json_string(scope_name(by)));
	if (host)
		db_json_set(o, "host", db_json_bytes(host, strlen(host)));
	db_json_set(o, "from", json_integer(from));
	db_json_set(o, "to", json_integer(to));
	json_t *items = json_array();
	db_json_set(o, "items", items);
	json_t *index = json_object(); /* prefix -> its categories object (borrowed) */
	json_t *keys = json_array();
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);
		if (!p)
			continue;
		json_t *it = json_object();
		json_t *pj = db_json_bytes(p, (size_t)sqlite3_column_bytes(st, 0));
		db_json_set(it, "prefix", pj);
		db_json_set(it, "count", json_integer(sqlite3_column_int64(st, 1)));
		json_t *cats = json_object();
		db_json_set(it, "categories", cats);
		/* (a prefix that was not valid UTF-8 just gets no categories) */
		json_object_set(index, json_string_value(pj), cats);
		db_json_append(keys, json_copy(pj));
		db_json_append(items, it);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail_sql(db, "top");
		json_decref(index);
		json_decref(keys);
		return db_read_fail(db, o, started);
	}
	char *keytext = json_dumps(keys, JSON_COMPACT);
	json_decref(keys);
	if (!keytext)
		fatal("out of memory (json)");
	st = db_stmt_sql(db, host ? SQL_TOP_HOST_CATS : SQL_TOP_CATS);
	if (st) {
		top_bind(st, by, from, to, kind, category, host);
		sqlite3_bind_text(st, 6, keytext, -1, SQLITE_TRANSIENT);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *p = (const char *)sqlite3_column_text(st, 0);
			const char *c = (const char *)sqlite3_column_text(st, 1);
			json_t *cats = p ? json_object_get(index, p) : NULL;
			if (cats && c)
				add_count(cats, c, (size_t)sqlite3_column_bytes(st, 1),
					  sqlite3_column_int64(st, 2));
		}
		sqlite3_reset(st);
	}
	free(keytext);
	json_decref(index);
	if (!st || rc != SQLITE_DONE) {
		if (st)
			db_fail_sql(db, "top categories");
		return db_read_fail(db, o, started);
	}
	db_read_end(db, started);
	return o;
}

/* -------------------------------------------------------------- decisions */

static json_t *decision_json(const struct decision *d, const struct db_decision_info *info, int64_t now)
{
	json_t *o = json_object();
	char text[PREFIX_STRLEN];
	prefix_format(&d->prefix, text);
	db_json_set(o, "id", json_integer(d->id));
	db_json_set(o, "prefix", json_string(text));
	db_json_set(o, "family", json_integer(d->prefix.addr.family));
	db_json_set(o, "len", json_integer(d->prefix.len));
	db_json_set(o, "scope", json_string(scope_name(d->scope)));
	db_json_set(o, "response", json_string(response_name(d->response)));
	db_json_set(o, "rule", db_json_bytes(d->rule, strlen(d->rule)));
	db_json_set(o, "reason", db_json_bytes(d->reason, strlen(d->reason)));
	db_json_set(o, "score", json_real(d->score));
	db_json_set(o, "since", db_json_time(d->since));
	db_json_set(o, "until", db_json_time(d->until));
	db_json_set(o, "manual", json_boolean(d->manual));
	db_json_set(o, "active", json_boolean(!info->ended_at && d->until > now));
	db_json_set(o, "created_by",
		    info->created_by ? db_json_bytes(info->created_by, strlen(info->created_by))
				     : json_null());
	db_json_set(o, "created_at", info->created_at ? db_json_time(info->created_at) : json_null());
	db_json_set(o, "ended_at", info->ended_at ? db_json_time(info->ended_at) : json_null());
	db_json_set(o, "ended_by",
		    info->ended_by ? db_json_bytes(info->ended_by, strlen(info->ended_by)) : json_null());
	db_json_set(o, "end_reason",
		    info->end_reason ? db_json_bytes(info->end_reason, strlen(info->end_reason))
				     : json_null());
	json_t *ev = NULL;
	if (info->evidence_json) {
		ev = json_loads(info->evidence_json, JSON_DECODE_ANY, NULL);
		if (!ev)
			ev = db_json_bytes(info->evidence_json, strlen(info->evidence_json));
	}
	db_json_set(o, "evidence", ev ? ev : json_null());
	return o;
}

#define DECISION_SELECT                                                                             \
	"SELECT id, prefix, scope, response, rule, reason, score, since, until, manual, evidence, " \
	"created_by,"                                                                               \
	" created_at, ended_at, ended_by, end_reason FROM decisions"
static const char SQL_BLOCKS[] =
    DECISION_SELECT " WHERE id < ?1 AND (?2 = 0 OR (ended_at IS NULL AND until > ?3))"
		    " ORDER BY id DESC LIMIT ?4";

/* One page of decision rows from st (bound, asking limit + 1 rows), each
 * item made by item(): {"items": [...], "next": cursor or null}. */
static json_t *decisions_page(struct db *db, sqlite3_stmt *st, int limit, int64_t now,
			      json_t *(*item)(const struct decision *, const struct db_decision_info *,
					      int64_t),
			      const char *what, char tag, bool started)
{
	json_t *o = json_object();
	json_t *items = json_array();
	db_json_set(o, "items", items);
	int rc, n = 0;
	int64_t last = 0;
	bool more = false;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			more = true;
			break;
		}
		struct decision d;
		struct db_decision_info info;
		db_decision_from_row(st, &d, &info);
		db_json_append(items, item(&d, &info, now));
		last = d.id;
		n++;
	}
	return page_end(db, o, st, rc, what, more, tag, last, started);
}

json_t *db_blocks_json(struct db *db, int64_t now, bool active_only, int limit, const char *cursor)
{
	int64_t after = INT64_MAX, unused;
	if (cursor && db_cursor_parse(cursor, 'b', &after, &unused, false) < 0) {
		db_fail(db, "bad cursor");
		return NULL;
	}
	limit = db_clamp_limit(limit);
	bool started = db_read_begin(db);
	sqlite3_stmt *st = db_stmt_sql(db, SQL_BLOCKS);
	if (!st)
		return db_read_fail(db, NULL, started);
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int(st, 2, active_only ? 1 : 0);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int(st, 4, limit + 1);
	return decisions_page(db, st, limit, now, decision_json, "blocks", 'b', started);
}

static const char SQL_DECISIONS_LIST[] =
    DECISION_SELECT " WHERE id < ?1 AND (?2 = 0 OR (ended_at IS NULL AND until > ?3)) AND since >= ?4"
		    " AND (?5 IS NULL OR rule = ?5) AND (?6 IS NULL OR scope = ?6)"
		    " AND (?7 < 0 OR manual = ?7) ORDER BY id DESC LIMIT ?8";

/* The compact form of a decision for listings. */
static json_t *decision_brief(const struct decision *d, const struct db_decision_info *info, int64_t now)
{
	json_t *o = json_object();
	char text[PREFIX_STRLEN];
	prefix_format(&d->prefix, text);
	db_json_set(o, "id", json_integer(d->id));
	db_json_set(o, "prefix", json_string(text));
	db_json_set(o, "scope", json_string(scope_name(d->scope)));
	db_json_set(o, "rule", db_json_bytes(d->rule, strlen(d->rule)));
	db_json_set(o, "response", json_string(response_name(d->response)));
	db_json_set(o, "since", db_json_time(d->since));
	db_json_set(o, "until", db_json_time(d->until));
	db_json_set(o, "ended_at", info->ended_at ? db_json_time(info->ended_at) : json_null());
	db_json_set(o, "end_reason",
		    info->end_reason ? db_json_bytes(info->end_reason, strlen(info->end_reason))
				     : json_null());
	db_json_set(o, "by",
		    info->created_by ? db_json_bytes(info->created_by, strlen(info->created_by))
				     : json_null());
	json_t *events = json_null();
	if (info->evidence_json && !d->manual) {
		json_t *ev = json_loads(info->evidence_json, 0, NULL);
		json_t *n = json_object_get(ev, "lines_seen");
		if (json_is_integer(n))
			events = json_integer(json_integer_value(n));
		json_decref(ev);
	}
	db_json_set(o, "events", events);
	db_json_set(o, "reason", db_json_bytes(d->reason, strlen(d->reason)));
	db_json_set(o, "manual", json_boolean(d->manual));
	db_json_set(o, "active", json_boolean(!info->ended_at && d->until > now));
	return o;
}

json_t *db_decisions_json(struct db *db, int64_t now, const struct db_decision_filter *f, int limit,
			  const char *cursor)
{
	int64_t after = INT64_MAX, unused;
	if (cursor && db_cursor_parse(cursor, 'd', &after, &unused, false) < 0) {
		db_fail(db, "bad cursor");
		return NULL;
	}
	limit = db_clamp_limit(limit);
	bool started = db_read_begin(db);
	sqlite3_stmt *st = db_stmt_sql(db, SQL_DECISIONS_LIST);
	if (!st)
		return db_read_fail(db, NULL, started);
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int(st, 2, f->active_only ? 1 : 0);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, f->since);
	if (f->rule)
		sqlite3_bind_text(st, 5, f->rule, -1, SQLITE_TRANSIENT);
	if (f->scope >= 0)
		sqlite3_bind_text(st, 6, scope_name((enum scope)f->scope), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, f->manual);
	sqlite3_bind_int(st, 8, limit + 1);
	return decisions_page(db, st, limit, now, decision_brief, "decisions", 'd', started);
}

struct history_arg {
	json_t *items;
	int64_t now;
};

static int add_history(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct history_arg *h = arg;
	db_json_append(h->items, decision_json(d, info, h->now));
	return 0;
}

json_t *db_history_json(struct db *db, const struct prefix *q, int64_t now)
{
	bool started = db_read_begin(db);
	json_t *o = json_object();
	char text[PREFIX_STRLEN];
	prefix_format(q, text);
	db_json_set(o, "prefix", json_string(text));
	struct history_arg h = {json_array(), now};
	db_json_set(o, "items", h.items);
	if (db_decisions_history(db, q, add_history, &h) < 0)
		return db_read_fail(db, o, started);
	db_read_end(db, started);
	return o;
}

/* ----------------------------------------------------------------- events */

#define EVENTS_FILTER " AND id < ?2 AND (?1 IS NULL OR category = ?1) AND (?3 IS NULL OR host = ?3)"
static const char SQL_EVENTS_ALL[] =
    "SELECT " DB_EVENT_COLS " FROM events WHERE 1" EVENTS_FILTER " ORDER BY id DESC LIMIT ?4";
/* one host: its index (host, id) */
static const char SQL_EVENTS_HOST[] =
    "SELECT " DB_EVENT_COLS " FROM events WHERE host = ?3" EVENTS_FILTER " ORDER BY id DESC LIMIT ?4";
static const char SQL_EVENTS_IN[] =
    "SELECT " DB_EVENT_COLS " FROM events WHERE ip_bin BETWEEN ?5 AND ?6" EVENTS_FILTER
    " ORDER BY id DESC LIMIT ?4";

static json_t *span_json(struct span s)
{
	return s.p ? db_json_bytes(s.p, s.n) : json_null();
}

static json_t *event_json(int64_t id, const struct event *ev, int64_t source_id)
{
	json_t *o = json_object();
	char ts[TIME_STRLEN];
	time_format_rfc3339(ev->ts_us, ev->ts_us % 1000000 != 0, ts);
	db_json_set(o, "id", json_integer(id));
	db_json_set(o, "ts", json_string(ts));
	db_json_set(o, "ts_us", json_integer(ev->ts_us));
	db_json_set(o, "mta", json_string(mta_name(ev->mta)));
	db_json_set(o, "host", span_json(ev->host));
	db_json_set(o, "program", span_json(ev->program));
	db_json_set(o, "pid", ev->pid >= 0 ? json_integer(ev->pid) : json_null());
	db_json_set(o, "queue_id", span_json(ev->queue_id));
	if (ev->has_ip) {
		char ip[IPADDR_STRLEN];
		ipaddr_format(&ev->ip, ip);
		db_json_set(o, "ip", json_string(ip));
	} else {
		db_json_set(o, "ip", json_null());
	}
	if (ev->cls.addr.family) {
		char cls[PREFIX_STRLEN];
		prefix_format(&ev->cls, cls);
		db_json_set(o, "class", json_string(cls));
	} else {
		db_json_set(o, "class", json_null());
	}
	db_json_set(o, "port", ev->port ? json_integer(ev->port) : json_null());
	db_json_set(o, "rdns", span_json(ev->rdns));
	db_json_set(o, "helo", span_json(ev->helo));
	db_json_set(o, "from", span_json(ev->from));
	db_json_set(o, "to", span_json(ev->to));
	db_json_set(o, "user", span_json(ev->user));
	db_json_set(o, "stage", json_string(ev_stage_name(ev->stage)));
	db_json_set(o, "kind", json_string(ev_kind_name(ev->kind)));
	db_json_set(o, "code", ev->code >= 0 ? json_integer(ev->code) : json_null());
	db_json_set(o, "dsn", span_json(ev->dsn));
	db_json_set(o, "category", json_string(ev_category_name(ev->cat)));
	db_json_set(o, "text", span_json(ev->text));
	db_json_set(o, "line", db_json_bytes(ev->line.p, ev->line.n));
	db_json_set(o, "source_id", source_id > 0 ? json_integer(source_id) : json_null());
	return o;
}

json_t *db_events_json(struct db *db, const struct prefix *q, int category, int limit, const char *cursor)
{
	return db_events_host_json(db, q, category, limit, cursor, NULL);
}

json_t *db_events_host_json(struct db *db, const struct prefix *q, int category, int limit,
			    const char *cursor, const char *host)
{
	int64_t cid = INT64_MAX, unused;
	if (cursor && db_cursor_parse(cursor, 'e', &cid, &unused, false) < 0) {
		db_fail(db, "bad cursor");
		return NULL;
	}
	if (category >= CAT__COUNT) {
		db_fail(db, "bad category");
		return NULL;
	}
	limit = db_clamp_limit(limit);
	bool started = db_read_begin(db);
	sqlite3_stmt *st = db_stmt_sql(db, q ? SQL_EVENTS_IN : host ? SQL_EVENTS_HOST : SQL_EVENTS_ALL);
	if (!st)
		return db_read_fail(db, NULL, started);
	if (category >= 0)
		sqlite3_bind_text(st, 1, ev_category_name((enum ev_category)category), -1, SQLITE_STATIC);
	if (host)
		sqlite3_bind_text(st, 3, host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, cid);
	sqlite3_bind_int(st, 4, limit + 1);
	if (q) {
		uint8_t lo[17], hi[17];
		db_prefix_range(q, lo, hi);
		sqlite3_bind_blob(st, 5, lo, 17, SQLITE_TRANSIENT);
		sqlite3_bind_blob(st, 6, hi, 17, SQLITE_TRANSIENT);
	}
	json_t *o = json_object();
	json_t *items = json_array();
	db_json_set(o, "items", items);
	int rc, n = 0;
	bool more = false;
	int64_t last_id = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			more = true;
			break;
		}
		struct event ev;
		int64_t id, src;
		db_event_from_row(st, &ev, &id, &src);
		db_json_append(items, event_json(id, &ev, src));
		last_id = id;
		n++;
	}
	return page_end(db, o, st, rc, "events", more, 'e', last_id, started);
}

static const char SQL_RECENT[] = "SELECT kind, category, count(*), min(ts), max(ts) FROM events"
				 " WHERE ip_bin BETWEEN ?1 AND ?2 AND id >= ?3 GROUP BY kind, category";

json_t *db_recent_counts_json(struct db *db, const struct prefix *q, int64_t since)
{
	bool started = db_read_begin(db);
	sqlite3_stmt *st = db_stmt_sql(db, SQL_RECENT);
	if (!st)
		return db_read_fail(db, NULL, started);
	uint8_t lo[17], hi[17];
	db_prefix_range(q, lo, hi);
	sqlite3_bind_blob(st, 1, lo, 17, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 2, hi, 17, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, since <= 0 ? INT64_MIN : since << EVENT_ID_BITS);
	json_t *o = json_object();
	json_t *kinds = json_object(), *cats = json_object();
	int64_t total = 0, first = INT64_MAX, last = INT64_MIN;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		const char *c = (const char *)sqlite3_column_text(st, 1);
		int64_t n = sqlite3_column_int64(st, 2);
		total += n;
		first = MXW_MIN(first, sqlite3_column_int64(st, 3));
		last = MXW_MAX(last, sqlite3_column_int64(st, 4));
		if (k)
			add_count(kinds, k, (size_t)sqlite3_column_bytes(st, 0), n);
		/* an event without a category (a lost connection) is named by
		 * its kind, never "none" */
		if (c && strcmp(c, "none") == 0 && k)
			add_count(cats, k, (size_t)sqlite3_column_bytes(st, 0), n);
		else if (c)
			add_count(cats, c, (size_t)sqlite3_column_bytes(st, 1), n);
	}
	sqlite3_reset(st);
	db_json_set(o, "since", db_json_time(since));
	db_json_set(o, "total", json_integer(total));
	db_json_set(o, "kinds", kinds);
	db_json_set(o, "categories", cats);
	char t[TIME_STRLEN];
	if (total) {
		time_format_rfc3339(first, false, t);
		db_json_set(o, "first", json_string(t));
		time_format_rfc3339(last, false, t);
		db_json_set(o, "last", json_string(t));
	} else {
		db_json_set(o, "first", json_null());
		db_json_set(o, "last", json_null());
	}
	if (rc != SQLITE_DONE) {
		db_fail_sql(db, "recent counts");
		return db_read_fail(db, o, started);
	}
	db_read_end(db, started);
	return o;
}

/* ------------------------------------------------------------------ audit */

static const char SQL_AUDIT[] = "SELECT id, at, who, action, prefix, reason FROM audit WHERE id < ?1"
				" ORDER BY id DESC LIMIT ?2";

json_t *db_audit_json(struct db *db, int limit, const char *cursor)
{
	int64_t after = INT64_MAX, unused;
	if (cursor && db_cursor_parse(cursor, 'a', &after, &unused, false) < 0) {
		db_fail(db, "bad cursor");
		return NULL;
	}
	limit = db_clamp_limit(limit);
	bool started = db_read_begin(db);
	sqlite3_stmt *st = db_stmt_sql(db, SQL_AUDIT);
	if (!st)
		return db_read_fail(db, NULL, started);
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int(st, 2, limit + 1);
	json_t *o = json_object();
	json_t *items = json_array();
	db_json_set(o, "items", items);
	int rc, n = 0;
	int64_t last = 0;
	bool more = false;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			more = true;
			break;
		}
		json_t *a = json_object();
		last = sqlite3_column_int64(st, 0);
		db_json_set(a, "id", json_integer(last));
		db_json_set(a, "when", db_json_time(sqlite3_column_int64(st, 1)));
		db_json_set(a, "who", db_json_column(st, 2));
		db_json_set(a, "action", db_json_column(st, 3));
		db_json_set(a, "prefix", db_json_column(st, 4));
		db_json_set(a, "reason", db_json_column(st, 5));
		db_json_append(items, a);
		n++;
	}
	return page_end(db, o, st, rc, "audit", more, 'a', last, started);
}
