/*
 * retention.c - pruning old rows in bounded chunks, each table in its own
 * short transaction, so that the writer (and the engine's batches between
 * two calls) never waits long. It must never delete a decision still in
 * force or one that ended within retention_decisions (nor its upgrades).
 */
#include <string.h>

#include "db/db_internal.h"

#define HOUR_KEEP_MIN (365 * 86400LL)

static const char SQL_PRUNE_EVENTS[] =
    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id < ?1 ORDER BY id LIMIT ?2)";
static const char SQL_PRUNE_MINUTE[] =
    "DELETE FROM rollup_minute WHERE (t, kind, category, code_class) IN"
    " (SELECT t, kind, category, code_class FROM rollup_minute WHERE t < ?1 LIMIT ?2)";
static const char SQL_PRUNE_HOUR[] =
    "DELETE FROM rollup_hour WHERE (t, kind, category, code_class) IN"
    " (SELECT t, kind, category, code_class FROM rollup_hour WHERE t < ?1 LIMIT ?2)";
static const char SQL_PRUNE_TOP[] =
    "DELETE FROM top_hour WHERE (t, scope, prefix, kind, category) IN"
    " (SELECT t, scope, prefix, kind, category FROM top_hour WHERE t < ?1 LIMIT ?2)";
static const char SQL_PRUNE_CLASS_MINUTE[] =
    "DELETE FROM class_minute WHERE (t, cls, plen, kind, category, code_class) IN"
    " (SELECT t, cls, plen, kind, category, code_class FROM class_minute WHERE t < ?1 LIMIT ?2)";
static const char SQL_PRUNE_CLASS_HOUR[] =
    "DELETE FROM class_hour WHERE (t, cls, plen, kind, category, code_class) IN"
    " (SELECT t, cls, plen, kind, category, code_class FROM class_hour WHERE t < ?1 LIMIT ?2)";
static const char SQL_PRUNE_INGEST[] = "DELETE FROM ingest_minute WHERE t IN"
				       " (SELECT t FROM ingest_minute WHERE t < ?1 LIMIT ?2)";
static const char SQL_PRUNE_HOST_LINES[] =
    "DELETE FROM host_minute WHERE (t, host) IN (SELECT t, host FROM host_minute WHERE t < ?1 LIMIT ?2)";
static const char SQL_PRUNE_HOST_MINUTE[] =
    "DELETE FROM host_rollup_minute WHERE (t, host, kind, category, code_class) IN"
    " (SELECT t, host, kind, category, code_class FROM host_rollup_minute WHERE t < ?1 LIMIT ?2)";
static const char SQL_PRUNE_HOST_HOUR[] =
    "DELETE FROM host_rollup_hour WHERE (t, host, kind, category, code_class) IN"
    " (SELECT t, host, kind, category, code_class FROM host_rollup_hour WHERE t < ?1 LIMIT ?2)";
static const char SQL_PRUNE_HOST_TOP[] =
    "DELETE FROM host_top_hour WHERE (t, host, scope, prefix, kind, category) IN"
    " (SELECT t, host, scope, prefix, kind, category FROM host_top_hour WHERE t < ?1 LIMIT ?2)";
/* a host not heard from for as long as minute rollups are kept is gone
 * (decommissioned): no longer listed, nor flagged silent */
static const char SQL_PRUNE_HOSTS[] =
    "DELETE FROM hosts WHERE name IN (SELECT name FROM hosts WHERE max(coalesce(last_seen, 0),"
    " first_seen, last_ts / 1000000) < ?1 LIMIT ?2)";
static const char SQL_PRUNE_DECISIONS[] =
    "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions WHERE"
    " (ended_at IS NOT NULL AND ended_at < ?1) OR (ended_at IS NULL AND until < ?1) LIMIT ?2)";

/* the upgrades of decisions that are gone (pruned above, or deleted by hand) */
static const char SQL_PRUNE_CHANGES[] =
    "DELETE FROM decision_changes WHERE id IN (SELECT c.id FROM decision_changes c"
    " LEFT JOIN decisions d ON d.id = c.decision_id WHERE d.id IS NULL AND c.at < ?1 LIMIT ?2)";

/* One chunk of one table in its own transaction; rows deleted or -1. */
static int64_t prune(struct db *db, const char *sql, int64_t cutoff, bool event_rows)
{
	if (db_exec(db, "BEGIN IMMEDIATE") < 0)
		return -1;
	sqlite3_stmt *st = db_stmt_sql(db, sql);
	if (!st || (sqlite3_bind_int64(st, 1, cutoff), sqlite3_bind_int(st, 2, DB_RETENTION_CHUNK),
		    db_step_done(db, st, "retention")) < 0) {
		char keep[sizeof(db->err)];
		memcpy(keep, db->err, sizeof(keep));
		db_exec(db, "ROLLBACK");
		memcpy(db->err, keep, sizeof(keep));
		return -1;
	}
	int64_t n = sqlite3_changes(db->h);
	if (event_rows && db_rows_add(db, -n) < 0) {
		db_exec(db, "ROLLBACK");
		return -1;
	}
	if (db_exec(db, "COMMIT") < 0) {
		db_exec(db, "ROLLBACK");
		return -1;
	}
	return n;
}

int64_t db_retention_run(struct db *db, int64_t now, const struct config *conf)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if (db->in_batch)
		return db_fail(db, "db_retention_run: a batch is open");
	int64_t keep_hour = MXW_MAX(HOUR_KEEP_MIN, conf->retention_rollups);
	const struct {
		const char *sql;
		int64_t cutoff;
	} jobs[] = {
	    {SQL_PRUNE_EVENTS, MXW_MAX(0, now - conf->retention_events) << EVENT_ID_BITS},
	    {SQL_PRUNE_MINUTE, now - conf->retention_rollups},
	    {SQL_PRUNE_HOUR, now - keep_hour},
	    {SQL_PRUNE_TOP, now - keep_hour},
	    {SQL_PRUNE_CLASS_MINUTE, now - conf->retention_rollups},
	    {SQL_PRUNE_CLASS_HOUR, now - keep_hour},
	    {SQL_PRUNE_INGEST, now - conf->retention_rollups},
	    {SQL_PRUNE_HOST_LINES, now - conf->retention_rollups},
	    {SQL_PRUNE_HOST_MINUTE, now - conf->retention_rollups},
	    {SQL_PRUNE_HOST_HOUR, now - keep_hour},
	    {SQL_PRUNE_HOST_TOP, now - keep_hour},
	    {SQL_PRUNE_HOSTS, now - conf->retention_rollups},
	    {SQL_PRUNE_DECISIONS, now - conf->retention_decisions},
	    {SQL_PRUNE_CHANGES, INT64_MAX}, /* whenever their decision is gone */
	};
	int64_t total = 0;
	for (size_t i = 0; i < MXW_ARRAY_LEN(jobs); i++) {
		int64_t n = prune(db, jobs[i].sql, jobs[i].cutoff, jobs[i].sql == SQL_PRUNE_EVENTS);
		if (n < 0)
			return -1;
		total += n;
	}
	return total;
}
