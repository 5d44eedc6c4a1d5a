/*
 * checkpoint.c - the aggregator's checkpoint in the database: one row of
 * agg_checkpoint holding the state image with the largest event id stored
 * when it was written, and the scan of the events stored after it.
 *
 * It stores and returns the image as opaque bytes: it must never look
 * inside it, nor write a checkpoint outside the caller's batch.
 */
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"

static const char SQL_MAX_ID[] = "SELECT coalesce(max(id), 0) FROM events";
static const char SQL_PUT[] =
    "INSERT OR REPLACE INTO agg_checkpoint(id, at, newest, max_event_id, lines, data)"
    " VALUES(1, ?1, ?2, ?3, ?4, ?5)";
static const char SQL_GET[] =
    "SELECT c.at, c.newest, c.max_event_id, c.lines, c.data, s.source_id, s.source_offset, s.source_lines"
    " FROM agg_checkpoint c LEFT JOIN agg_checkpoint_source s ON s.id = c.id WHERE c.id = 1";
static const char SQL_CLEAR_SOURCE[] = "DELETE FROM agg_checkpoint_source";
static const char SQL_SET_SOURCE[] =
    "INSERT OR REPLACE INTO agg_checkpoint_source(id, source_id, source_offset,"
    " source_lines) VALUES(1, ?1, ?2, ?3)";
static const char SQL_OTHER_AFTER[] = "SELECT 1 FROM events WHERE id > ?1 AND source_id IS NOT ?2 LIMIT 1";
static const char SQL_SCAN_AFTER[] = "SELECT " DB_EVENT_COLS " FROM events WHERE id > ? ORDER BY id";

int db_checkpoint_put(struct db *db, int64_t at, int64_t newest_us, int64_t lines, const void *data,
		      size_t len)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if (len > (size_t)INT32_MAX - 1)
		return db_fail(db, "checkpoint of %zu bytes is too large", len);
	sqlite3_stmt *st = db_stmt_sql(db, SQL_MAX_ID);
	if (!st)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_fail_sql(db, "checkpoint: max event id");
	}
	int64_t max_id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	st = db_stmt_sql(db, SQL_PUT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, at);
	sqlite3_bind_int64(st, 2, newest_us);
	sqlite3_bind_int64(st, 3, max_id);
	sqlite3_bind_int64(st, 4, lines);
	sqlite3_bind_blob(st, 5, len ? data : "", (int)len, SQLITE_STATIC);
	if (db_step_done(db, st, "checkpoint") < 0)
		return -1;
	/* a new image stands at no file position until one is set */
	st = db_stmt_sql(db, SQL_CLEAR_SOURCE);
	return st ? db_step_done(db, st, "checkpoint source") : -1;
}

int db_checkpoint_get(struct db *db, struct db_checkpoint *c)
{
	memset(c, 0, sizeof *c);
	sqlite3_stmt *st = db_stmt_sql(db, SQL_GET);
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_fail_sql(db, "checkpoint");
	}
	c->at = sqlite3_column_int64(st, 0);
	c->newest_us = sqlite3_column_int64(st, 1);
	c->max_event_id = sqlite3_column_int64(st, 2);
	c->lines = sqlite3_column_int64(st, 3);
	const void *p = sqlite3_column_blob(st, 4);
	int n = sqlite3_column_bytes(st, 4);
	c->len = n > 0 ? (size_t)n : 0;
	c->data = xmalloc(c->len ? c->len : 1);
	if (c->len)
		memcpy(c->data, p, c->len);
	c->source_id = sqlite3_column_int64(st, 5);
	c->source_offset = sqlite3_column_int64(st, 6);
	c->source_lines = sqlite3_column_int64(st, 7);
	sqlite3_reset(st);
	return 1;
}

int db_checkpoint_set_source(struct db *db, int64_t source_id, int64_t offset, int64_t lines)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	sqlite3_stmt *st = db_stmt_sql(db, SQL_SET_SOURCE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, source_id);
	sqlite3_bind_int64(st, 2, offset);
	sqlite3_bind_int64(st, 3, lines);
	return db_step_done(db, st, "checkpoint source");
}

int db_events_other_source_after(struct db *db, int64_t after_id, int64_t source_id)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_OTHER_AFTER);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int64(st, 2, source_id);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : db_fail_sql(db, "events after the checkpoint");
}

int db_events_scan_after(struct db *db, int64_t after_id, db_event_cb cb, void *arg)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_SCAN_AFTER);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, after_id);
	return db_events_scan_rows(db, st, cb, arg);
}
