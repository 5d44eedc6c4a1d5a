/*
 * attribute.c - giving a stored event the client that a later line named:
 * a Sendmail recipient rejection is logged (and stored) before the line of
 * the same queue id that names the client; the aggregator attributes it
 * and the engine writes the client here, in the batch of that later line,
 * so that the row and the line that named its client commit together.
 *
 * It must never change a row that already has a client (a replayed
 * attribution changes nothing) nor any field but the client's.
 */
#include <string.h>

#include "db/db_internal.h"

static const char *const sql_update =
    "UPDATE events SET ip = ?2, ip_bin = ?3, cls = ?4 WHERE id = ?1 AND ip_bin IS NULL"
    " RETURNING ts, kind, category, code";

/* The per-IP and per-class counts db_event_insert() makes for an event with
 * a client (top_hour by IP and class, the class's minute and hour). */
static int count_row(struct db *db, const struct ipaddr *ip, const struct prefix *cls, int64_t ts_us,
		     const char *kind, const char *cat, int code)
{
	int64_t secs = ts_us / 1000000;
	int64_t hour = secs - ((secs % 3600) + 3600) % 3600;
	int64_t minute = secs - ((secs % 60) + 60) % 60;
	char text[PREFIX_STRLEN];
	for (int scope = 0; scope < 2; scope++) {
		if (scope == 1 && !cls->addr.family)
			break;
		sqlite3_stmt *st = db_stmt(db, Q_TOP_HOUR_ADD);
		if (!st)
			return -1;
		size_t n = scope == 0 ? ipaddr_format(ip, text) : prefix_format(cls, text);
		sqlite3_bind_int64(st, 1, hour);
		sqlite3_bind_text(st, 2, scope_name(scope ? SCOPE_CLASS : SCOPE_IP), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, text, (int)n, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, cat, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, 1);
		if (db_step_done(db, st, "attribute: top") < 0)
			return -1;
	}
	if (!cls->addr.family)
		return 0;
	uint8_t key[17];
	key[0] = cls->addr.family;
	memcpy(key + 1, cls->addr.a, 16);
	for (int h = 0; h < 2; h++) {
		sqlite3_stmt *st = db_stmt(db, h ? Q_CLASS_HOUR_ADD : Q_CLASS_MINUTE_ADD);
		if (!st)
			return -1;
		sqlite3_bind_int64(st, 1, h ? hour : minute);
		sqlite3_bind_blob(st, 2, key, sizeof key, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, cls->len);
		sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, cat, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, code_class_name(code_class_of(code)), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, 1);
		if (db_step_done(db, st, "attribute: class") < 0)
			return -1;
	}
	return 0;
}

static int count_add(struct db *db, const char *key, int64_t n)
{
	return db_counter_add(db, "attribution", key, n);
}

int db_attribution_dropped(struct db *db, int64_t n)
{
	if (!db->in_batch)
		return db_fail(db, "db_attribution_dropped: no batch open");
	return n > 0 ? count_add(db, "unattributed", n) : 0;
}

int db_event_attribute(struct db *db, int64_t id, const struct ipaddr *ip, const struct prefix *cls)
{
	if (!db->in_batch)
		return db_fail(db, "db_event_attribute: no batch open");
	if (ip->family != IPADDR_V4 && ip->family != IPADDR_V6)
		return db_fail(db, "db_event_attribute: invalid address");
	sqlite3_stmt *st = db_stmt_sql(db, sql_update);
	if (!st)
		return -1;
	char text[IPADDR_STRLEN], ctext[PREFIX_STRLEN];
	uint8_t key[17];
	size_t n = ipaddr_format(ip, text);
	db_ip_key(ip, key);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, text, (int)n, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, key, sizeof key, SQLITE_STATIC);
	if (cls->addr.family) {
		size_t cn = prefix_format(cls, ctext);
		sqlite3_bind_text(st, 4, ctext, (int)cn, SQLITE_STATIC);
	}
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0; /* gone (retention) or attributed already */
	}
	if (rc != SQLITE_ROW) {
		db_fail_sql(db, "attribute event");
		sqlite3_reset(st);
		return -1;
	}
	int64_t ts = sqlite3_column_int64(st, 0);
	char kind[32], cat[32];
	const unsigned char *k = sqlite3_column_text(st, 1), *c = sqlite3_column_text(st, 2);
	str_copy(kind, sizeof kind, k ? (const char *)k : "", k ? strlen((const char *)k) : 0);
	str_copy(cat, sizeof cat, c ? (const char *)c : "", c ? strlen((const char *)c) : 0);
	int code = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 3);
	/* RETURNING: the row changes when the statement runs to its end */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail_sql(db, "attribute event");
	if (count_row(db, ip, cls, ts, kind, cat, code) < 0 || count_add(db, "attributed", 1) < 0)
		return -1;
	return 1;
}
