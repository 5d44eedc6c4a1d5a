/*
 * hosts.c - the MX hosts a judge hears from (issue 18): the process-wide
 * table that interns host names to small ids for the batch accumulator,
 * the per-host line counts of a batch and their flush into `hosts` and
 * `host_minute`, and the read side: the host list (with silence) and one
 * host's summary.
 *
 * A host is the syslog host field of a line: whoever wrote the line's
 * envelope (the MX's syslog, or rsyslog on the central host keeping the
 * sender's HOSTNAME). It is text from the log, stored byte for byte and
 * shown through db_json_bytes(). It must never decide anything: it counts
 * and answers.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"

/* ------------------------------------------------------------ the table */

/*
 * Names are added under mu and never removed or moved, so a reader that
 * sees an id in a slot (acquire) sees its name. slots: open addressing by
 * the name's hash, 0 = free; 512 slots for at most 254 names keep probes
 * short.
 */
#define HOST_SLOTS 512
static struct {
	pthread_mutex_t mu;
	atomic_uint n; /* names 1..n are set */
	char name[DB_HOST_IDS][DB_HOST_NAME_MAX + 1];
	uint8_t len[DB_HOST_IDS];
	_Atomic uint8_t slot[HOST_SLOTS];
} reg = {
    .mu = PTHREAD_MUTEX_INITIALIZER, .name = {[DB_HOST_OTHER] = "(other)"}, .len = {[DB_HOST_OTHER] = 7}};

static uint32_t name_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

/* Names are short: a loop costs less than a call to memcmp. */
static inline bool same(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

static uint8_t find(const char *p, size_t n, uint32_t h, size_t *free_slot)
{
	for (size_t i = 0, j = h & (HOST_SLOTS - 1); i < HOST_SLOTS; i++, j = (j + 1) & (HOST_SLOTS - 1)) {
		uint8_t id = atomic_load_explicit(&reg.slot[j], memory_order_acquire);
		if (!id) {
			*free_slot = j;
			return 0;
		}
		if (reg.len[id] == n && same(reg.name[id], p, n))
			return id;
	}
	*free_slot = HOST_SLOTS;
	return 0;
}

uint8_t db_host_id(const char *p, size_t n)
{
	if (!p || !n)
		return 0;
	if (n > DB_HOST_NAME_MAX)
		n = DB_HOST_NAME_MAX;
	/* most lines come from the host of the line before */
	static __thread uint8_t last;
	if (last && reg.len[last] == n && same(reg.name[last], p, n))
		return last;
	uint32_t h = name_hash(p, n);
	size_t fs;
	uint8_t id = find(p, n, h, &fs);
	if (id)
		return last = id;
	pthread_mutex_lock(&reg.mu);
	id = find(p, n, h, &fs); /* another thread may have added it */
	if (!id) {
		unsigned k = atomic_load(&reg.n);
		if (k + 1 >= DB_HOST_OTHER || fs == HOST_SLOTS) {
			id = DB_HOST_OTHER;
		} else {
			id = (uint8_t)(k + 1);
			memcpy(reg.name[id], p, n);
			reg.name[id][n] = '\0';
			reg.len[id] = (uint8_t)n;
			atomic_store(&reg.n, k + 1);
			atomic_store_explicit(&reg.slot[fs], id, memory_order_release);
		}
	}
	pthread_mutex_unlock(&reg.mu);
	return last = id;
}

const char *db_host_name(uint8_t id, size_t *len)
{
	*len = reg.len[id];
	return reg.name[id];
}

/* ------------------------------------------------------------- counting */

static void agg_host_line(struct agg *a, const char *host, size_t n, int64_t ts_us)
{
	uint8_t id = db_host_id(host, n);
	if (!id)
		return;
	if (!a->host_lines[id] && !a->host_newest[id])
		a->hosts[a->nhosts++] = id;
	a->host_lines[id]++;
	if (ts_us > a->host_newest[id])
		a->host_newest[id] = ts_us;
}

void db_host_line(struct db *db, const char *host, size_t n, int64_t ts_us)
{
	agg_host_line(&db->agg, host, n, ts_us);
}

/* The pipe's staging side (pipe.c) counts into its stage's accumulator. */
void db_agg_host_line(struct agg *a, const char *host, size_t n, int64_t ts_us)
{
	agg_host_line(a, host, n, ts_us);
}

static const char SQL_HOST_UPSERT[] =
    "INSERT INTO hosts(name, first_seen, last_seen, last_ts, lag, lines) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT DO UPDATE SET last_seen = coalesce(excluded.last_seen, last_seen),"
    " last_ts = max(last_ts, excluded.last_ts), lag = coalesce(excluded.lag, lag),"
    " lines = lines + excluded.lines";
static const char SQL_HOST_MINUTE[] = "INSERT INTO host_minute(t, host, lines) VALUES(?1, ?2, ?3)"
				      " ON CONFLICT DO UPDATE SET lines = lines + excluded.lines";

int db_hosts_flush(struct db *db, int64_t now)
{
	struct agg *a = &db->agg;
	int64_t minute = now - ((now % 60) + 60) % 60;
	for (size_t i = 0; i < a->nhosts; i++) {
		uint8_t id = a->hosts[i];
		size_t hl;
		const char *h = db_host_name(id, &hl);
		int64_t newest = a->host_newest[id];
		sqlite3_stmt *st = db_stmt_sql(db, SQL_HOST_UPSERT);
		if (!st)
			return -1;
		sqlite3_bind_text(st, 1, h, (int)hl, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		if (db->hosts_live) {
			sqlite3_bind_int64(st, 3, now);
			sqlite3_bind_int64(st, 5, MXW_MAX(0, now - newest / 1000000));
		}
		sqlite3_bind_int64(st, 4, newest);
		sqlite3_bind_int64(st, 6, a->host_lines[id]);
		if (db_step_done(db, st, "hosts") < 0)
			return -1;
		if (!(st = db_stmt_sql(db, SQL_HOST_MINUTE)))
			return -1;
		sqlite3_bind_int64(st, 1, minute);
		sqlite3_bind_text(st, 2, h, (int)hl, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, a->host_lines[id]);
		if (db_step_done(db, st, "host lines") < 0)
			return -1;
	}
	return 0;
}

/* ?1 now, ?2 the start of the last full minute */
static const char SQL_HOSTS[] =
    "SELECT h.name, h.first_seen, h.last_seen, h.last_ts, h.lag, h.lines,"
    " (SELECT coalesce(sum(lines), 0) FROM host_minute m WHERE m.t = ?2 AND m.host = h.name),"
    " (SELECT coalesce(sum(lines), 0) FROM host_minute m WHERE m.t >= ?1 - 3600 AND m.t <= ?1"
    "  AND m.host = h.name),"
    " (SELECT coalesce(sum(n), 0) FROM host_rollup_minute r WHERE r.t >= ?1 - 3600 AND r.t <= ?1"
    "  AND r.host = h.name),"
    " (SELECT coalesce(sum(n), 0) FROM host_rollup_minute r WHERE r.t >= ?1 - 3600 AND r.t <= ?1"
    "  AND r.host = h.name AND r.kind = 'reject')"
    " FROM hosts h ORDER BY h.name";

json_t *db_hosts_json(struct db *db, int64_t now, int64_t silence)
{
	bool started = db_read_begin(db);
	sqlite3_stmt *st = db_stmt_sql(db, SQL_HOSTS);
	if (!st)
		return db_read_fail(db, NULL, started);
	int64_t last_full_minute = now - ((now % 60) + 60) % 60 - 60;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, last_full_minute);
	json_t *o = json_object();
	db_json_set(o, "now", db_json_time(now));
	db_json_set(o, "silence", json_integer(silence));
	json_t *items = json_array();
	db_json_set(o, "items", items);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *it = json_object();
		const char *name = (const char *)sqlite3_column_text(st, 0);
		db_json_set(it, "host", db_json_bytes(name ? name : "", (size_t)sqlite3_column_bytes(st, 0)));
		db_json_set(it, "first_seen", db_json_time(sqlite3_column_int64(st, 1)));
		bool live = sqlite3_column_type(st, 2) != SQLITE_NULL;
		int64_t last_seen = sqlite3_column_int64(st, 2);
		db_json_set(it, "last_seen", live ? db_json_time(last_seen) : json_null());
		char t[TIME_STRLEN];
		int64_t last_ts = sqlite3_column_int64(st, 3);
		if (last_ts > 0) {
			time_format_rfc3339(last_ts, false, t);
			db_json_set(it, "last_line", json_string(t));
		} else {
			db_json_set(it, "last_line", json_null());
		}
		db_json_set(it, "lag_seconds",
			    sqlite3_column_type(st, 4) == SQLITE_NULL
				? json_null()
				: json_integer(sqlite3_column_int64(st, 4)));
		db_json_set(it, "lines", json_integer(sqlite3_column_int64(st, 5)));
		db_json_set(it, "lines_per_sec", json_real((double)sqlite3_column_int64(st, 6) / 60.0));
		db_json_set(it, "lines_last_hour", json_integer(sqlite3_column_int64(st, 7)));
		db_json_set(it, "events_last_hour", json_integer(sqlite3_column_int64(st, 8)));
		db_json_set(it, "rejects_last_hour", json_integer(sqlite3_column_int64(st, 9)));
		int64_t quiet = live ? MXW_MAX(0, now - last_seen) : 0;
		bool silent = live && silence > 0 && quiet > silence;
		db_json_set(it, "silent", json_boolean(silent));
		db_json_set(it, "silent_seconds", silent ? json_integer(quiet) : json_null());
		if (json_array_append_new(items, it) < 0)
			fatal("out of memory (json)");
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail_sql(db, "hosts");
		return db_read_fail(db, o, started);
	}
	db_read_end(db, started);
	return o;
}

/* ?1 now, ?2 the last full minute, ?3 the host */
static const char SQL_HOST_SUMMARY[] =
    "SELECT"
    " (SELECT coalesce(sum(n), 0) FROM host_rollup_minute WHERE t >= ?1 - 3600 AND t <= ?1 AND host = ?3),"
    " (SELECT coalesce(sum(n), 0) FROM host_rollup_minute WHERE t >= ?1 - 86400 AND t <= ?1 AND host = ?3),"
    " (SELECT coalesce(sum(n), 0) FROM host_rollup_minute WHERE t >= ?1 - 3600 AND t <= ?1 AND host = ?3"
    "  AND kind = 'reject'),"
    " (SELECT coalesce(sum(n), 0) FROM host_rollup_minute WHERE t >= ?1 - 86400 AND t <= ?1 AND host = ?3"
    "  AND kind = 'reject'),"
    " (SELECT count(*) FROM decisions WHERE ended_at IS NULL AND until > ?1),"
    " (SELECT count(*) FROM decisions WHERE ended_at IS NULL AND until > ?1 AND scope = 'ip'),"
    " (SELECT count(*) FROM decisions WHERE ended_at IS NULL AND until > ?1 AND scope = 'class'),"
    " (SELECT coalesce(sum(lines), 0) FROM host_minute WHERE t = ?2 AND host = ?3),"
    " (SELECT coalesce(sum(lines), 0) FROM host_minute WHERE t >= ?1 - 3600 AND t <= ?1 AND host = ?3),"
    " (SELECT lines FROM hosts WHERE name = ?3),"
    " (SELECT last_seen FROM hosts WHERE name = ?3),"
    " (SELECT count(*) FROM hosts WHERE name = ?3)";
static const char SQL_HOST_CATS_DAY[] =
    "SELECT category, sum(n) FROM host_rollup_minute"
    " WHERE t >= ?1 - 86400 AND t <= ?1 AND host = ?2 AND category != 'none'"
    " GROUP BY category ORDER BY category";

json_t *db_summary_host_json(struct db *db, int64_t now, const char *host)
{
	bool started = db_read_begin(db);
	sqlite3_stmt *st = db_stmt_sql(db, SQL_HOST_SUMMARY);
	if (!st)
		return db_read_fail(db, NULL, started);
	int64_t last_full_minute = now - ((now % 60) + 60) % 60 - 60;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, last_full_minute);
	sqlite3_bind_text(st, 3, host, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_fail_sql(db, "summary");
		sqlite3_reset(st);
		return db_read_fail(db, NULL, started);
	}
	int64_t v[12];
	for (int i = 0; i < 12; i++)
		v[i] = sqlite3_column_int64(st, i);
	bool never_live = sqlite3_column_type(st, 10) == SQLITE_NULL;
	sqlite3_reset(st);
	if (v[11] == 0) {
		db_fail(db, "host: no lines of a host named so");
		db_read_end(db, started);
		return NULL;
	}
	json_t *o = json_object();
	db_json_set(o, "now", db_json_time(now));
	db_json_set(o, "host", db_json_bytes(host, strlen(host)));
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
	/* categories_last_day from its own rollups */
	json_t *cats = json_object();
	sqlite3_stmt *cs = db_stmt_sql(db, SQL_HOST_CATS_DAY);
	if (!cs) {
		json_decref(cats);
		return db_read_fail(db, o, started);
	}
	sqlite3_bind_int64(cs, 1, now);
	sqlite3_bind_text(cs, 2, host, -1, SQLITE_TRANSIENT);
	int rc;
	while ((rc = sqlite3_step(cs)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(cs, 0);
		json_t *key = db_json_bytes(k ? k : "", k ? (size_t)sqlite3_column_bytes(cs, 0) : 0);
		db_json_set(cats, json_string_value(key), json_integer(sqlite3_column_int64(cs, 1)));
		json_decref(key);
	}
	sqlite3_reset(cs);
	db_json_set(o, "categories_last_day", cats);
	if (rc != SQLITE_DONE) {
		db_fail_sql(db, "summary categories");
		return db_read_fail(db, o, started);
	}
	db_json_set(o, "blocks_active", json_integer(v[4]));
	db_json_set(o, "blocks_active_ip", json_integer(v[5]));
	db_json_set(o, "blocks_active_class", json_integer(v[6]));
	json_t *in = json_object();
	db_json_set(in, "files", json_null());
	db_json_set(in, "lag_seconds", never_live ? json_null() : json_integer(MXW_MAX(0, now - v[10])));
	db_json_set(in, "lines_per_sec", json_real((double)v[7] / 60.0));
	db_json_set(in, "lines_last_hour", json_integer(v[8]));
	db_json_set(in, "lines_read", json_integer(v[9]));
	db_json_set(o, "ingest", in);
	db_read_end(db, started);
	return o;
}
