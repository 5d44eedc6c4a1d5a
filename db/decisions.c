/*
 * decisions.c - storing decisions with their evidence, ending them,
 * listing the active ones and the history of a prefix, escalation counts,
 * and the audit trail.
 *
 * It stores what the aggregator (or an operator) decided; it must never
 * make or change a decision on its own (no expiry rewriting, no merging).
 */
#include <stdio.h>
#include <string.h>

#include "db/db_internal.h"

int db_decision_insert(struct db *db, struct decision *d, const char *evidence_json, const char *who)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if (d->id != 0)
		return db_fail(db, "decision already stored (id %lld)", (long long)d->id);
	if (d->prefix.addr.family != IPADDR_V4 && d->prefix.addr.family != IPADDR_V6)
		return db_fail(db, "decision without a valid prefix");
	if ((unsigned)d->response >= RESP__COUNT)
		return db_fail(db, "decision with an invalid response");
	sqlite3_stmt *st = db_stmt(db, Q_DECISION_INSERT);
	if (!st)
		return -1;
	char text[PREFIX_STRLEN];
	size_t n = prefix_format(&d->prefix, text);
	sqlite3_bind_text(st, 1, text, (int)n, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, d->prefix.addr.family);
	sqlite3_bind_int(st, 3, d->prefix.len);
	sqlite3_bind_blob(st, 4, d->prefix.addr.a, 16, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, scope_name(d->scope), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, response_name(d->response), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, d->rule, (int)strnlen(d->rule, sizeof(d->rule)), SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 8, d->reason, (int)strnlen(d->reason, sizeof(d->reason)), SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 9, d->score);
	sqlite3_bind_int64(st, 10, d->since);
	sqlite3_bind_int64(st, 11, d->until);
	sqlite3_bind_int(st, 12, d->manual ? 1 : 0);
	if (who)
		sqlite3_bind_text(st, 13, who, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 14, clock_now());
	if (evidence_json)
		sqlite3_bind_text(st, 15, evidence_json, -1, SQLITE_TRANSIENT);
	if (db_step_done(db, st, "insert decision") < 0)
		return -1;
	d->id = sqlite3_last_insert_rowid(db->h);
	return 0;
}

int db_decision_end(struct db *db, int64_t id, int64_t at, const char *who, const char *why)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	sqlite3_stmt *st = db_stmt(db, Q_DECISION_END);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, at);
	if (who)
		sqlite3_bind_text(st, 2, who, -1, SQLITE_TRANSIENT);
	if (why)
		sqlite3_bind_text(st, 3, why, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, id);
	if (db_step_done(db, st, "end decision") < 0)
		return -1;
	return sqlite3_changes(db->h) == 1 ? 0 : 1;
}

static const char SQL_EXPIRED_ANY[] = "SELECT 1 FROM decisions WHERE ended_at IS NULL AND until <= ? LIMIT 1";
static const char SQL_EXPIRE[] =
    "UPDATE decisions SET ended_at = until, ended_by = ?2, end_reason = 'expired'"
    " WHERE ended_at IS NULL AND until <= ?1";

int64_t db_decisions_expire(struct db *db, int64_t now, const char *who)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	sqlite3_stmt *st = db_stmt_sql(db, SQL_EXPIRED_ANY);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return db_fail_sql(db, "expired decisions");
	st = db_stmt_sql(db, SQL_EXPIRE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_text(st, 2, who ? who : "engine", -1, SQLITE_TRANSIENT);
	if (db_step_done(db, st, "expire decisions") < 0)
		return -1;
	return sqlite3_changes(db->h);
}

static const char SQL_FIND[] =
    "SELECT id FROM decisions WHERE prefix = ?1 AND since = ?2 ORDER BY id DESC LIMIT 1";

int64_t db_decision_find(struct db *db, const struct prefix *p, int64_t since)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_FIND);
	if (!st)
		return -1;
	char px[PREFIX_STRLEN];
	prefix_format(p, px);
	sqlite3_bind_text(st, 1, px, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, since);
	int rc = sqlite3_step(st);
	int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, "find decision: %s", sqlite3_errmsg(db->h));
	return id;
}

static const char SQL_UPGRADE[] = "UPDATE decisions SET response = ?1, rule = ?2, reason = ?3, score = ?4,"
				  " until = max(until, ?5), evidence = coalesce(?6, evidence)"
				  " WHERE id = ?7 AND ended_at IS NULL";
static const char SQL_CHANGE_ADD[] =
    "INSERT INTO decision_changes(decision_id, at, change, from_response, response, score, rule, reason,"
    " until) VALUES(?1, ?2, 'upgrade', ?3, ?4, ?5, ?6, ?7, ?8)";

int db_decision_upgrade(struct db *db, const struct decision *d, enum response from,
			const char *evidence_json, int64_t at)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if ((unsigned)d->response >= RESP__COUNT || (unsigned)from >= RESP__COUNT)
		return db_fail(db, "decision with an invalid response");
	sqlite3_stmt *st = db_stmt_sql(db, SQL_UPGRADE);
	if (!st)
		return -1;
	size_t rl = strnlen(d->rule, sizeof(d->rule)), rs = strnlen(d->reason, sizeof(d->reason));
	sqlite3_bind_text(st, 1, response_name(d->response), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, d->rule, (int)rl, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, d->reason, (int)rs, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 4, d->score);
	sqlite3_bind_int64(st, 5, d->until);
	if (evidence_json)
		sqlite3_bind_text(st, 6, evidence_json, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 7, d->id);
	if (db_step_done(db, st, "upgrade decision") < 0)
		return -1;
	if (sqlite3_changes(db->h) != 1)
		return 1;
	st = db_stmt_sql(db, SQL_CHANGE_ADD);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, d->id);
	sqlite3_bind_int64(st, 2, at);
	sqlite3_bind_text(st, 3, response_name(from), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, response_name(d->response), -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 5, d->score);
	sqlite3_bind_text(st, 6, d->rule, (int)rl, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 7, d->reason, (int)rs, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 8, d->until);
	if (db_step_done(db, st, "decision change") < 0)
		return -1;
	char why[320];
	snprintf(why, sizeof why, "%s -> %s (%s, score %.2f)", response_name(from),
		 response_name(d->response), d->rule, d->score);
	return db_audit_add(db, at, "engine", "upgrade", &d->prefix, why);
}

static const char SQL_CHANGES[] = "SELECT at, change, from_response, response, score, rule, reason, until"
				  " FROM decision_changes WHERE decision_id = ? ORDER BY id";

json_t *db_decision_changes_json(struct db *db, int64_t id)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_CHANGES);
	if (!st)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	json_t *a = json_array();
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_object();
		json_object_set_new(o, "at", db_json_time(sqlite3_column_int64(st, 0)));
		json_object_set_new(o, "change", db_json_column(st, 1));
		json_object_set_new(o, "from", db_json_column(st, 2));
		json_object_set_new(o, "response", db_json_column(st, 3));
		json_object_set_new(o, "score", json_real(sqlite3_column_double(st, 4)));
		json_object_set_new(o, "rule", db_json_column(st, 5));
		json_object_set_new(o, "reason", db_json_column(st, 6));
		json_object_set_new(o, "until", db_json_time(sqlite3_column_int64(st, 7)));
		json_array_append_new(a, o);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		db_fail_sql(db, "decision changes");
		return NULL;
	}
	return a;
}

static const char *col_str(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

static void copy_col(char *dst, size_t dstsz, sqlite3_stmt *st, int col)
{
	const char *s = col_str(st, col);
	if (s)
		str_copy(dst, dstsz, s, (size_t)sqlite3_column_bytes(st, col));
	else
		dst[0] = '\0';
}

void db_decision_from_row(sqlite3_stmt *st, struct decision *d, struct db_decision_info *info)
{
	memset(d, 0, sizeof(*d));
	memset(info, 0, sizeof(*info));
	d->id = sqlite3_column_int64(st, 0);
	const char *p = col_str(st, 1);
	if (p)
		prefix_parse(&d->prefix, p, (size_t)sqlite3_column_bytes(st, 1), false);
	const char *sc = col_str(st, 2);
	d->scope = sc && strcmp(sc, "class") == 0 ? SCOPE_CLASS : SCOPE_IP;
	const char *r = col_str(st, 3);
	int resp = r ? response_from_name(r) : -1;
	d->response = resp < 0 ? RESP_OBSERVE : (enum response)resp;
	copy_col(d->rule, sizeof(d->rule), st, 4);
	copy_col(d->reason, sizeof(d->reason), st, 5);
	d->score = sqlite3_column_double(st, 6);
	d->since = sqlite3_column_int64(st, 7);
	d->until = sqlite3_column_int64(st, 8);
	d->manual = sqlite3_column_int(st, 9) != 0;
	info->evidence_json = col_str(st, 10);
	info->created_by = col_str(st, 11);
	info->created_at = sqlite3_column_int64(st, 12);
	info->ended_at = sqlite3_column_int64(st, 13);
	info->ended_by = col_str(st, 14);
	info->end_reason = col_str(st, 15);
}

/* Run a decision query, calling cb for each row that keep() accepts. */
static int each_decision(struct db *db, sqlite3_stmt *st, const struct prefix *q, db_decision_cb cb,
			 void *arg)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct decision d;
		struct db_decision_info info;
		db_decision_from_row(st, &d, &info);
		if (q && !prefix_contains_prefix(q, &d.prefix) && !prefix_contains_prefix(&d.prefix, q))
			continue;
		int r = cb(arg, &d, &info);
		if (r) {
			sqlite3_reset(st);
			return r;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_fail_sql(db, "list decisions");
}

int db_decisions_active(struct db *db, int64_t now, db_decision_cb cb, void *arg)
{
	sqlite3_stmt *st = db_stmt(db, Q_DECISIONS_ACTIVE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	return each_decision(db, st, NULL, cb, arg);
}

int db_decisions_in_force_at(struct db *db, int64_t at, db_decision_cb cb, void *arg)
{
	sqlite3_stmt *st = db_stmt(db, Q_DECISIONS_IN_FORCE_AT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, at);
	return each_decision(db, st, NULL, cb, arg);
}

int db_decisions_history(struct db *db, const struct prefix *q, db_decision_cb cb, void *arg)
{
	sqlite3_stmt *st = db_stmt(db, Q_DECISIONS_FAMILY);
	if (!st)
		return -1;
	sqlite3_bind_int(st, 1, q->addr.family);
	return each_decision(db, st, q, cb, arg);
}

int64_t db_decisions_count(struct db *db, const struct prefix *p, int64_t since)
{
	/* an import's pipe holds decisions not committed yet: they count too */
	if (db->pipe)
		return db_pipe_count_decisions(db->pipe, p, since);
	return db_decisions_count_sql(db, p, since);
}

int64_t db_decisions_count_sql(struct db *db, const struct prefix *p, int64_t since)
{
	sqlite3_stmt *st = db_stmt(db, Q_DECISIONS_COUNT);
	if (!st)
		return -1;
	char text[PREFIX_STRLEN];
	size_t n = prefix_format(p, text);
	sqlite3_bind_text(st, 1, text, (int)n, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, since);
	int64_t v = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		db_fail_sql(db, "count decisions");
	sqlite3_reset(st);
	return v;
}

int db_decision_get(struct db *db, int64_t id, db_decision_cb cb, void *arg)
{
	sqlite3_stmt *st = db_stmt(db, Q_DECISION_GET);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct decision d;
		struct db_decision_info info;
		db_decision_from_row(st, &d, &info);
		cb(arg, &d, &info);
		sqlite3_reset(st);
		return 1;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_fail_sql(db, "get decision");
}

int db_audit_add(struct db *db, int64_t when, const char *who, const char *action,
		 const struct prefix *prefix, const char *reason)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if (!action || !*action)
		return db_fail(db, "audit entry without an action");
	sqlite3_stmt *st = db_stmt(db, Q_AUDIT_INSERT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, when);
	if (who)
		sqlite3_bind_text(st, 2, who, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_TRANSIENT);
	if (prefix) {
		char text[PREFIX_STRLEN];
		size_t n = prefix_format(prefix, text);
		sqlite3_bind_text(st, 4, text, (int)n, SQLITE_TRANSIENT);
	}
	if (reason)
		sqlite3_bind_text(st, 5, reason, -1, SQLITE_TRANSIENT);
	return db_step_done(db, st, "audit");
}

int db_decisions_made(struct db *db, int64_t from, int64_t to, db_decision_cb cb, void *arg)
{
	sqlite3_stmt *st = db_stmt(db, Q_DECISIONS_MADE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, to);
	return each_decision(db, st, NULL, cb, arg);
}
