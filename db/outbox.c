/*
 * outbox.c - the record of what the reports wrote and sent (the outbox
 * and abuse_reported tables), and the RDAP answers cached by address
 * range (rdap_cache). Schema 7.
 *
 * It stores and answers; it must never decide what is reported or to
 * whom (reports/ does), and never lose the fact that a message was sent:
 * db_outbox_sent() is its own statement, run right after the MTA accepted.
 */
#include <string.h>

#include "db/db_internal.h"

/* Run a write as its own transaction unless a batch is open. */
static int tx_begin(struct db *db, bool *own)
{
	*own = !db->in_batch;
	return *own ? db_exec(db, "BEGIN IMMEDIATE") : 0;
}

static int tx_end(struct db *db, bool own, int rc)
{
	if (!own)
		return rc;
	if (rc < 0) {
		char keep[sizeof(db->err)];
		memcpy(keep, db->err, sizeof(keep));
		db_exec(db, "ROLLBACK");
		memcpy(db->err, keep, sizeof(keep));
		return -1;
	}
	return db_exec(db, "COMMIT");
}

static void bind_opt(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static const char SQL_OUTBOX_ADD[] =
    "INSERT INTO outbox(kind, key, report_id, rcpt, subject, written_at, file, message)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_REPORTED_ADD[] =
    "INSERT INTO abuse_reported(decision_id, outbox_id, at) VALUES(?1, ?2, ?3)";

int db_outbox_add(struct db *db, struct db_outbox_msg *m, const int64_t *ids, size_t n)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if (!m->kind || !m->rcpt)
		return db_fail(db, "outbox: a message needs a kind and a recipient");
	bool own;
	if (tx_begin(db, &own) < 0)
		return -1;
	int rc = -1;
	sqlite3_stmt *st = db_stmt_sql(db, SQL_OUTBOX_ADD);
	if (st) {
		sqlite3_bind_text(st, 1, m->kind, -1, SQLITE_TRANSIENT);
		bind_opt(st, 2, m->key);
		bind_opt(st, 3, m->report_id);
		sqlite3_bind_text(st, 4, m->rcpt, -1, SQLITE_TRANSIENT);
		bind_opt(st, 5, m->subject);
		sqlite3_bind_int64(st, 6, m->written_at);
		bind_opt(st, 7, m->file);
		if (m->message)
			sqlite3_bind_blob(st, 8, m->message, (int)m->len, SQLITE_TRANSIENT);
		rc = db_step_done(db, st, "outbox insert");
	}
	if (rc == 0)
		m->id = sqlite3_last_insert_rowid(db->h);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		st = db_stmt_sql(db, SQL_REPORTED_ADD);
		if (!st) {
			rc = -1;
			break;
		}
		sqlite3_bind_int64(st, 1, ids[i]);
		sqlite3_bind_int64(st, 2, m->id);
		sqlite3_bind_int64(st, 3, m->written_at);
		rc = db_step_done(db, st, "abuse_reported insert");
	}
	return tx_end(db, own, rc);
}

static const char SQL_OUTBOX_SENT[] = "UPDATE outbox SET sent_at = ?2 WHERE id = ?1 AND sent_at IS NULL";
static const char SQL_OUTBOX_FAILED[] =
    "UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1";

int db_outbox_sent(struct db *db, int64_t id, int64_t at)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	sqlite3_stmt *st = db_stmt_sql(db, SQL_OUTBOX_SENT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, at);
	return db_step_done(db, st, "outbox sent");
}

int db_outbox_failed(struct db *db, int64_t id, const char *error)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	sqlite3_stmt *st = db_stmt_sql(db, SQL_OUTBOX_FAILED);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	bind_opt(st, 2, error);
	return db_step_done(db, st, "outbox failed");
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

#define OUTBOX_COLS                                                                                  \
	"id, kind, key, report_id, rcpt, subject, file, message, written_at, coalesce(sent_at, 0), " \
	"attempts,"                                                                                  \
	" last_error"

static void outbox_from_row(sqlite3_stmt *st, struct db_outbox_msg *m)
{
	memset(m, 0, sizeof *m);
	m->id = sqlite3_column_int64(st, 0);
	m->kind = col_text(st, 1);
	m->key = col_text(st, 2);
	m->report_id = col_text(st, 3);
	m->rcpt = col_text(st, 4);
	m->subject = col_text(st, 5);
	m->file = col_text(st, 6);
	m->message = sqlite3_column_blob(st, 7);
	m->len = (size_t)sqlite3_column_bytes(st, 7);
	m->written_at = sqlite3_column_int64(st, 8);
	m->sent_at = sqlite3_column_int64(st, 9);
	m->attempts = sqlite3_column_int64(st, 10);
	m->last_error = col_text(st, 11);
}

static const char SQL_OUTBOX_UNSENT[] = "SELECT " OUTBOX_COLS " FROM outbox WHERE sent_at IS NULL"
					" AND written_at >= ?1 AND message IS NOT NULL AND attempts < ?2"
					" AND (?3 IS NULL OR kind = ?3)"
					" ORDER BY written_at, id";

int db_outbox_unsent(struct db *db, int64_t since, int64_t max_attempts, const char *kind, db_outbox_cb cb,
		     void *arg)
{
	/* a statement of its own: the callback writes (db_outbox_sent) on
	 * this connection while the listing is open */
	sqlite3_stmt *st = db_prepare(db, SQL_OUTBOX_UNSENT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, max_attempts);
	bind_opt(st, 3, kind);
	/* read the ids first: the callback's writes must not move the cursor */
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			ids = xrealloc(ids, cap * sizeof *ids);
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(ids);
		return db_fail_sql(db, "outbox unsent");
	}
	int out = 0;
	st = db_prepare(db, "SELECT " OUTBOX_COLS " FROM outbox WHERE id = ?1 AND sent_at IS NULL");
	for (size_t i = 0; st && i < n && out == 0; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, ids[i]);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			struct db_outbox_msg m;
			outbox_from_row(st, &m);
			out = cb(arg, &m);
		} else if (rc != SQLITE_DONE) {
			out = db_fail_sql(db, "outbox message");
		}
	}
	if (!st)
		out = -1;
	sqlite3_finalize(st);
	free(ids);
	return out;
}

static const char SQL_OUTBOX_COUNT[] = "SELECT count(*) FROM outbox WHERE rcpt = ?1 AND written_at >= ?2"
				       " AND (?3 IS NULL OR kind = ?3)";

int64_t db_outbox_count(struct db *db, const char *rcpt, const char *kind, int64_t since)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_OUTBOX_COUNT);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, rcpt, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, since);
	bind_opt(st, 3, kind);
	int rc = sqlite3_step(st);
	int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	return n < 0 ? db_fail_sql(db, "outbox count") : n;
}

static int exists(struct db *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : db_fail_sql(db, what);
}

static const char SQL_OUTBOX_KEY[] = "SELECT 1 FROM outbox WHERE kind = ?1 AND key = ?2";
static const char SQL_REPORTED[] = "SELECT 1 FROM abuse_reported WHERE decision_id = ?1";

int db_outbox_has_key(struct db *db, const char *kind, const char *key)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_OUTBOX_KEY);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	return exists(db, st, "outbox key");
}

int db_abuse_reported(struct db *db, int64_t decision_id)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_REPORTED);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, decision_id);
	return exists(db, st, "abuse reported");
}

static const char SQL_OUTBOX_PRUNE[] =
    "UPDATE outbox SET message = NULL WHERE written_at < ?1 AND message IS NOT NULL";

int64_t db_outbox_prune(struct db *db, int64_t before)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	sqlite3_stmt *st = db_stmt_sql(db, SQL_OUTBOX_PRUNE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, before);
	if (db_step_done(db, st, "outbox prune") < 0)
		return -1;
	return sqlite3_changes(db->h);
}

static const char SQL_OUTBOX_LIST[] = "SELECT " OUTBOX_COLS " FROM outbox ORDER BY id DESC LIMIT ?1";
static const char SQL_OUTBOX_DECISIONS[] =
    "SELECT decision_id FROM abuse_reported WHERE outbox_id = ?1 ORDER BY decision_id";

json_t *db_outbox_json(struct db *db, int limit)
{
	sqlite3_stmt *st = db_prepare(db, SQL_OUTBOX_LIST);
	sqlite3_stmt *ds = st ? db_prepare(db, SQL_OUTBOX_DECISIONS) : NULL;
	if (!st || !ds) {
		sqlite3_finalize(st);
		return NULL;
	}
	sqlite3_bind_int(st, 1, db_clamp_limit(limit));
	json_t *items = json_array();
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_outbox_msg m;
		outbox_from_row(st, &m);
		json_t *o = json_object();
		json_object_set_new(o, "id", json_integer(m.id));
		json_object_set_new(o, "kind", db_json_column(st, 1));
		json_object_set_new(o, "report_id", db_json_column(st, 3));
		json_object_set_new(o, "rcpt", db_json_column(st, 4));
		json_object_set_new(o, "subject", db_json_column(st, 5));
		json_object_set_new(o, "file", db_json_column(st, 6));
		json_object_set_new(o, "written_at", db_json_time(m.written_at));
		json_object_set_new(o, "sent_at", m.sent_at ? db_json_time(m.sent_at) : json_null());
		json_object_set_new(o, "attempts", json_integer(m.attempts));
		json_object_set_new(o, "last_error", db_json_column(st, 11));
		json_t *ids = json_array();
		sqlite3_reset(ds);
		sqlite3_bind_int64(ds, 1, m.id);
		while (sqlite3_step(ds) == SQLITE_ROW)
			json_array_append_new(ids, json_integer(sqlite3_column_int64(ds, 0)));
		json_object_set_new(o, "decisions", ids);
		json_array_append_new(items, o);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(ds);
	if (rc != SQLITE_DONE) {
		json_decref(items);
		db_fail_sql(db, "outbox list");
		return NULL;
	}
	json_t *r = json_object();
	json_object_set_new(r, "items", items);
	return r;
}

/* --------------------------------------------------------------- RDAP */

/* The narrowest containing range: among the ranges starting at or below
 * the key, the one starting highest that still reaches it (RDAP networks
 * nest, so that is the most specific). */
static const char SQL_RDAP_GET[] = "SELECT hi, contact FROM rdap_cache WHERE lo <= ?1 AND expires_at > ?2"
				   " ORDER BY lo DESC, hi LIMIT 256";
static const char SQL_RDAP_PUT[] = "INSERT INTO rdap_cache(lo, hi, contact, server, fetched_at, expires_at)"
				   " VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_RDAP_DROP[] = "DELETE FROM rdap_cache WHERE (lo = ?1 AND hi = ?2) OR expires_at <= ?3";

int db_rdap_get(struct db *db, const struct ipaddr *ip, int64_t now, char *out, size_t outsz)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_RDAP_GET);
	if (!st)
		return -1;
	uint8_t key[17];
	db_ip_key(ip, key);
	sqlite3_bind_blob(st, 1, key, sizeof key, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now);
	int rc, found = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *hi = sqlite3_column_blob(st, 0);
		if (sqlite3_column_bytes(st, 0) != 17 || memcmp(hi, key, 17) < 0)
			continue;
		const char *c = col_text(st, 1);
		str_copy(out, outsz, c ? c : "", c ? strlen(c) : 0);
		found = 1;
		break;
	}
	sqlite3_reset(st);
	if (!found && rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_fail_sql(db, "rdap cache");
	return found;
}

int db_rdap_put(struct db *db, const struct ipaddr *lo, const struct ipaddr *hi, const char *contact,
		const char *server, int64_t now, int64_t expires_at)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if (lo->family != hi->family || ipaddr_cmp(lo, hi) > 0)
		return db_fail(db, "rdap cache: not a range");
	uint8_t l[17], h[17];
	db_ip_key(lo, l);
	db_ip_key(hi, h);
	bool own;
	if (tx_begin(db, &own) < 0)
		return -1;
	int rc = -1;
	sqlite3_stmt *st = db_stmt_sql(db, SQL_RDAP_DROP);
	if (st) {
		sqlite3_bind_blob(st, 1, l, 17, SQLITE_TRANSIENT);
		sqlite3_bind_blob(st, 2, h, 17, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, now);
		rc = db_step_done(db, st, "rdap cache drop");
	}
	if (rc == 0 && (st = db_stmt_sql(db, SQL_RDAP_PUT))) {
		sqlite3_bind_blob(st, 1, l, 17, SQLITE_TRANSIENT);
		sqlite3_bind_blob(st, 2, h, 17, SQLITE_TRANSIENT);
		bind_opt(st, 3, contact && *contact ? contact : NULL);
		bind_opt(st, 4, server);
		sqlite3_bind_int64(st, 5, now);
		sqlite3_bind_int64(st, 6, expires_at);
		rc = db_step_done(db, st, "rdap cache put");
	} else if (rc == 0) {
		rc = -1;
	}
	return tx_end(db, own, rc);
}
