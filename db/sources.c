/*
 * sources.c - log sources (followed and imported files, stdin, syslog
 * listeners) and their committed offsets.
 *
 * A file is known by (dev, ino) and the fingerprint of its first bytes; the
 * collector computes both and decides what a match means (rotation,
 * truncation, a second import). This file must never guess identities from
 * the path alone for files: a path is only a label that follows renames.
 */
#include <string.h>

#include "db/db_internal.h"

static const char *const kind_names[] = {"follow", "import", "syslog", "stdin", "journal"};

const char *db_source_kind_name(enum db_source_kind k)
{
	return (unsigned)k < MXW_ARRAY_LEN(kind_names) ? kind_names[k] : "invalid";
}

static enum db_source_kind kind_from_name(const char *s)
{
	for (size_t i = 0; i < MXW_ARRAY_LEN(kind_names); i++)
		if (s && strcmp(s, kind_names[i]) == 0)
			return (enum db_source_kind)i;
	return DB_SRC_IMPORT;
}

/* Row in SOURCE_COLS order. */
static void source_from_row(sqlite3_stmt *st, struct db_source *s)
{
	memset(s, 0, sizeof(*s));
	s->id = sqlite3_column_int64(st, 0);
	s->kind = kind_from_name((const char *)sqlite3_column_text(st, 1));
	const char *path = (const char *)sqlite3_column_text(st, 2);
	if (path)
		str_copy(s->path, sizeof(s->path), path, (size_t)sqlite3_column_bytes(st, 2));
	s->dev = (uint64_t)sqlite3_column_int64(st, 3);
	s->ino = (uint64_t)sqlite3_column_int64(st, 4);
	s->fp_hash = (uint64_t)sqlite3_column_int64(st, 5);
	s->fp_len = sqlite3_column_int64(st, 6);
	s->offset = sqlite3_column_int64(st, 7);
	s->lines_read = sqlite3_column_int64(st, 8);
	s->first_seen = sqlite3_column_int64(st, 9);
	s->last_read = sqlite3_column_int64(st, 10);
}

/* Step a query that returns at most one source. 1 found, 0 none, -1. */
static int one_source(struct db *db, sqlite3_stmt *st, struct db_source *out)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		source_from_row(st, out);
		sqlite3_reset(st);
		return 1;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	return db_fail_sql(db, "find source");
}

int db_source_get_or_create(struct db *db, struct db_source *s, int64_t now)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if ((unsigned)s->kind >= MXW_ARRAY_LEN(kind_names))
		return db_fail(db, "bad source kind");
	bool by_name = s->kind == DB_SRC_SYSLOG || s->kind == DB_SRC_STDIN || s->kind == DB_SRC_JOURNAL;
	sqlite3_stmt *st = db_stmt(db, by_name ? Q_SOURCE_FIND_NAME : Q_SOURCE_FIND_ID);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, kind_names[s->kind], -1, SQLITE_STATIC);
	if (by_name) {
		sqlite3_bind_text(st, 2, s->path, -1, SQLITE_TRANSIENT);
	} else {
		sqlite3_bind_int64(st, 2, (int64_t)s->dev);
		sqlite3_bind_int64(st, 3, (int64_t)s->ino);
		sqlite3_bind_int64(st, 4, (int64_t)s->fp_hash);
		sqlite3_bind_int64(st, 5, s->fp_len);
	}
	struct db_source found;
	int rc = one_source(db, st, &found);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		if (strcmp(found.path, s->path) != 0) {
			if (!(st = db_stmt(db, Q_SOURCE_SET_PATH)))
				return -1;
			sqlite3_bind_text(st, 1, s->path, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 2, found.id);
			if (db_step_done(db, st, "update source path") < 0)
				return -1;
			memcpy(found.path, s->path, sizeof(found.path));
		}
		*s = found;
		return 0;
	}
	if (!(st = db_stmt(db, Q_SOURCE_INSERT)))
		return -1;
	sqlite3_bind_text(st, 1, kind_names[s->kind], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, s->path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (int64_t)s->dev);
	sqlite3_bind_int64(st, 4, (int64_t)s->ino);
	sqlite3_bind_int64(st, 5, (int64_t)s->fp_hash);
	sqlite3_bind_int64(st, 6, s->fp_len);
	sqlite3_bind_int64(st, 7, now);
	if (db_step_done(db, st, "insert source") < 0)
		return -1;
	s->id = sqlite3_last_insert_rowid(db->h);
	s->offset = 0;
	s->lines_read = 0;
	s->first_seen = now;
	s->last_read = 0;
	return 1;
}

int db_source_find_fp(struct db *db, uint64_t fp_hash, int64_t fp_len, struct db_source *out)
{
	sqlite3_stmt *st = db_stmt(db, Q_SOURCE_FIND_FP);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)fp_hash);
	sqlite3_bind_int64(st, 2, fp_len);
	return one_source(db, st, out);
}

int db_sources_list(struct db *db, db_source_cb cb, void *arg)
{
	sqlite3_stmt *st = db_stmt(db, Q_SOURCE_LIST);
	if (!st)
		return -1;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_source s;
		source_from_row(st, &s);
		int r = cb(arg, &s);
		if (r) {
			sqlite3_reset(st);
			return r;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_fail_sql(db, "list sources");
}

int db_source_update_offset(struct db *db, int64_t id, int64_t offset, int64_t lines_read, int64_t now)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if (offset < 0 || lines_read < 0)
		return db_fail(db, "negative offset or line count");
	sqlite3_stmt *st = db_stmt(db, Q_SOURCE_GET);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? db_fail(db, "no source with id %lld", (long long)id)
					 : db_fail_sql(db, "read source");
	}
	int64_t before = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (!(st = db_stmt(db, Q_SOURCE_SET_OFFSET)))
		return -1;
	sqlite3_bind_int64(st, 1, offset);
	sqlite3_bind_int64(st, 2, lines_read);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, id);
	if (db_step_done(db, st, "update offset") < 0)
		return -1;
	if (lines_read > before) {
		if (!(st = db_stmt(db, Q_INGEST_ADD)))
			return -1;
		int64_t minute = now - ((now % 60) + 60) % 60;
		sqlite3_bind_int64(st, 1, minute);
		sqlite3_bind_int64(st, 2, lines_read - before);
		sqlite3_bind_int64(st, 3, 0);
		return db_step_done(db, st, "ingest");
	}
	return 0;
}

int db_source_update_identity(struct db *db, const struct db_source *s)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	sqlite3_stmt *st = db_stmt(db, Q_SOURCE_SET_IDENTITY);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, s->path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, (int64_t)s->dev);
	sqlite3_bind_int64(st, 3, (int64_t)s->ino);
	sqlite3_bind_int64(st, 4, (int64_t)s->fp_hash);
	sqlite3_bind_int64(st, 5, s->fp_len);
	sqlite3_bind_int64(st, 6, s->id);
	if (db_step_done(db, st, "update source") < 0)
		return -1;
	if (sqlite3_changes(db->h) != 1)
		return db_fail(db, "no source with id %lld", (long long)s->id);
	return 0;
}

int db_source_set_cursor(struct db *db, int64_t id, const char *cursor, int64_t lines_read, int64_t now)
{
	if (db_source_update_offset(db, id, 0, lines_read, now) < 0)
		return -1;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h,
			       "INSERT INTO source_cursor(cursor, source_id) VALUES(?, ?) ON CONFLICT DO "
			       "UPDATE SET cursor = excluded.cursor",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail_sql(db, "prepare cursor update");
	sqlite3_bind_text(st, 1, cursor, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_fail_sql(db, "update cursor");
}

int db_source_cursor(struct db *db, int64_t id, char *out, size_t n)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h, "SELECT cursor FROM source_cursor WHERE source_id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail_sql(db, "prepare cursor");
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st), found = 0;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT) {
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		if (len < n) {
			memcpy(out, sqlite3_column_text(st, 0), len);
			out[len] = 0;
			found = 1;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : db_fail_sql(db, "read cursor");
}
