/*
 * manual.c - what operators do by hand besides blocking: allows (a prefix
 * no decision may block for a while, table allows), a manual block made
 * longer instead of doubled, and what the hourly counts say about a sender
 * (lookup's "seen N connections, M delivered").
 *
 * It stores and answers; it must never decide whether a prefix may be
 * allowed or blocked (the aggregator's manual actions do).
 */
#include <stdio.h>
#include <string.h>

#include "db/db_internal.h"

/* ----------------------------------------------------------------- allows */

#define ALLOW_COLS "id, prefix, since, until, reason, created_by, created_at, ended_at, ended_by, end_reason"

int db_allow_insert(struct db *db, struct db_allow *a)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if (a->prefix.addr.family != IPADDR_V4 && a->prefix.addr.family != IPADDR_V6)
		return db_fail(db, "allow without a valid prefix");
	sqlite3_stmt *st =
	    db_stmt_sql(db, "INSERT INTO allows(prefix, family, prefix_len, addr, since, until,"
			    " reason, created_by, created_at) VALUES(?,?,?,?,?,?,?,?,?)");
	if (!st)
		return -1;
	char text[PREFIX_STRLEN];
	size_t n = prefix_format(&a->prefix, text);
	sqlite3_bind_text(st, 1, text, (int)n, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, a->prefix.addr.family);
	sqlite3_bind_int(st, 3, a->prefix.len);
	sqlite3_bind_blob(st, 4, a->prefix.addr.a, 16, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 5, a->since);
	sqlite3_bind_int64(st, 6, a->until);
	if (a->reason)
		sqlite3_bind_text(st, 7, a->reason, -1, SQLITE_TRANSIENT);
	if (a->created_by)
		sqlite3_bind_text(st, 8, a->created_by, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 9, clock_now());
	if (db_step_done(db, st, "insert allow") < 0)
		return -1;
	a->id = sqlite3_last_insert_rowid(db->h);
	return 0;
}

int db_allow_extend(struct db *db, int64_t id, int64_t until, const char *reason)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	sqlite3_stmt *st =
	    db_stmt_sql(db, "UPDATE allows SET until = max(until, ?1), reason = coalesce(?2, reason)"
			    " WHERE id = ?3 AND ended_at IS NULL");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, until);
	if (reason)
		sqlite3_bind_text(st, 2, reason, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, id);
	if (db_step_done(db, st, "extend allow") < 0)
		return -1;
	return sqlite3_changes(db->h) == 1 ? 0 : 1;
}

int db_allow_end(struct db *db, int64_t id, int64_t at, const char *who, const char *why)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	sqlite3_stmt *st = db_stmt_sql(db, "UPDATE allows SET ended_at = ?1, ended_by = ?2, end_reason = ?3"
					   " WHERE id = ?4 AND ended_at IS NULL");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, at);
	if (who)
		sqlite3_bind_text(st, 2, who, -1, SQLITE_TRANSIENT);
	if (why)
		sqlite3_bind_text(st, 3, why, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, id);
	if (db_step_done(db, st, "end allow") < 0)
		return -1;
	return sqlite3_changes(db->h) == 1 ? 0 : 1;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static int each_allow(struct db *db, sqlite3_stmt *st, db_allow_cb cb, void *arg)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_allow a;
		memset(&a, 0, sizeof a);
		a.id = sqlite3_column_int64(st, 0);
		const char *p = col_text(st, 1);
		if (!p || prefix_parse(&a.prefix, p, (size_t)sqlite3_column_bytes(st, 1), false) < 0)
			continue;
		a.since = sqlite3_column_int64(st, 2);
		a.until = sqlite3_column_int64(st, 3);
		a.reason = col_text(st, 4);
		a.created_by = col_text(st, 5);
		a.created_at = sqlite3_column_int64(st, 6);
		a.ended_at = sqlite3_column_int64(st, 7);
		a.ended_by = col_text(st, 8);
		a.end_reason = col_text(st, 9);
		int r = cb(arg, &a);
		if (r) {
			sqlite3_reset(st);
			return r;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_fail_sql(db, "list allows");
}

int db_allows_active(struct db *db, int64_t now, db_allow_cb cb, void *arg)
{
	sqlite3_stmt *st =
	    db_stmt_sql(db, "SELECT " ALLOW_COLS " FROM allows WHERE ended_at IS NULL AND until > ?1"
			    " ORDER BY since, id");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	return each_allow(db, st, cb, arg);
}

int db_allows_list(struct db *db, int64_t now, bool active_only, int64_t since, db_allow_cb cb, void *arg)
{
	sqlite3_stmt *st =
	    db_stmt_sql(db, "SELECT " ALLOW_COLS " FROM allows WHERE (?1 = 0 OR (ended_at IS NULL AND"
			    " until > ?2)) AND (since >= ?3 OR (ended_at IS NULL AND until > ?2))"
			    " ORDER BY since DESC, id DESC");
	if (!st)
		return -1;
	sqlite3_bind_int(st, 1, active_only ? 1 : 0);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, since);
	return each_allow(db, st, cb, arg);
}

json_t *db_allow_json(const struct db_allow *a, int64_t now)
{
	json_t *o = json_object();
	char text[PREFIX_STRLEN];
	prefix_format(&a->prefix, text);
	json_object_set_new(o, "id", json_integer(a->id));
	json_object_set_new(o, "prefix", json_string(text));
	json_object_set_new(o, "scope", json_string(prefix_is_host(&a->prefix) ? "ip" : "class"));
	json_object_set_new(o, "since", db_json_time(a->since));
	json_object_set_new(o, "until", db_json_time(a->until));
	json_object_set_new(o, "reason",
			    a->reason ? db_json_bytes(a->reason, strlen(a->reason)) : json_null());
	json_object_set_new(
	    o, "by", a->created_by ? db_json_bytes(a->created_by, strlen(a->created_by)) : json_null());
	json_object_set_new(o, "active", json_boolean(!a->ended_at && a->until > now));
	json_object_set_new(o, "ended_at", a->ended_at ? db_json_time(a->ended_at) : json_null());
	json_object_set_new(o, "ended_by",
			    a->ended_by ? db_json_bytes(a->ended_by, strlen(a->ended_by)) : json_null());
	json_object_set_new(o, "end_reason",
			    a->end_reason ? db_json_bytes(a->end_reason, strlen(a->end_reason))
					  : json_null());
	return o;
}

/* ---------------------------------------------------------- manual blocks */

int db_decision_extend(struct db *db, int64_t id, int64_t until, enum response response, const char *reason,
		       int64_t at)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if ((unsigned)response >= RESP__COUNT)
		return db_fail(db, "invalid response");
	sqlite3_stmt *st = db_stmt_sql(db, "SELECT response FROM decisions WHERE id = ?1");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	char from[16] = "";
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && col_text(st, 0))
		snprintf(from, sizeof from, "%s", col_text(st, 0));
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail_sql(db, "decision");
	/* the stronger response of the two, the later until; the reason of
	 * the latest word */
	st = db_stmt_sql(
	    db,
	    "UPDATE decisions SET until = max(until, ?1), reason = coalesce(?2, reason), response ="
	    " CASE WHEN (CASE response WHEN 'observe' THEN 0 WHEN 'defer' THEN 1 WHEN 'reject' THEN 2 ELSE 3"
	    " END) >= ?3 THEN response ELSE ?4 END WHERE id = ?5 AND ended_at IS NULL AND manual != 0");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, until);
	if (reason)
		sqlite3_bind_text(st, 2, reason, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 3, (int)response);
	sqlite3_bind_text(st, 4, response_name(response), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, id);
	if (db_step_done(db, st, "extend decision") < 0)
		return -1;
	if (sqlite3_changes(db->h) != 1)
		return 1;
	/* its history says so, as an upgrade's does */
	st = db_stmt_sql(
	    db, "INSERT INTO decision_changes(decision_id, at, change, from_response, response, score,"
		" rule, reason, until) SELECT id, ?1, 'extend', ?2, response, score, rule, reason,"
		" until FROM decisions WHERE id = ?3");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, at);
	sqlite3_bind_text(st, 2, from, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, id);
	return db_step_done(db, st, "decision change");
}

/* ------------------------------------------------------------------- seen */

json_t *db_seen_json(struct db *db, const struct prefix *p, enum scope sc, int64_t since)
{
	sqlite3_stmt *st =
	    db_stmt_sql(db, "SELECT kind, sum(n), min(t), max(t) FROM top_hour WHERE scope = ?1"
			    " AND prefix = ?2 AND t >= ?3 GROUP BY kind");
	if (!st)
		return NULL;
	char text[PREFIX_STRLEN];
	if (sc == SCOPE_IP)
		ipaddr_format(&p->addr, text);
	else
		prefix_format(p, text);
	bool started = db_read_begin(db);
	sqlite3_bind_text(st, 1, scope_name(sc), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, since);
	int64_t conn = 0, acc = 0, refused = 0, other = 0, first = 0, last = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = col_text(st, 0);
		int64_t n = sqlite3_column_int64(st, 1);
		int64_t t0 = sqlite3_column_int64(st, 2), t1 = sqlite3_column_int64(st, 3);
		if (!k)
			continue;
		if (!strcmp(k, "connect"))
			conn += n;
		else if (!strcmp(k, "accept"))
			acc += n;
		else if (!strcmp(k, "reject"))
			refused += n;
		else
			other += n;
		if (!first || t0 < first)
			first = t0;
		if (t1 > last)
			last = t1;
	}
	sqlite3_reset(st);
	db_read_end(db, started);
	if (rc != SQLITE_DONE) {
		db_fail_sql(db, "seen");
		return NULL;
	}
	json_t *o = json_object();
	json_object_set_new(o, "scope", json_string(scope_name(sc)));
	json_object_set_new(o, "connections", json_integer(conn));
	json_object_set_new(o, "delivered", sc == SCOPE_IP ? json_integer(acc) : json_null());
	json_object_set_new(o, "refused", json_integer(refused));
	json_object_set_new(o, "other_evidence", json_integer(other));
	json_object_set_new(o, "first_hour", first ? db_json_time(first) : json_null());
	json_object_set_new(o, "last_hour", last ? db_json_time(last) : json_null());
	return o;
}

static int add_allow_prefix(void *arg, const struct db_allow *a)
{
	prefix_list_add(arg, &a->prefix);
	return 0;
}

int db_allows_prefixes(struct db *db, int64_t now, struct prefix_list *out)
{
	out->n = 0;
	return db_allows_active(db, now, add_allow_prefix, out);
}

int64_t db_audit_last_id(struct db *db)
{
	sqlite3_stmt *st = db_stmt_sql(db, "SELECT coalesce(max(id), 0) FROM audit");
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail_sql(db, "audit");
	return id;
}
