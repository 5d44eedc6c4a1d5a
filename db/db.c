/*
 * db.c - connections, the schema and its migrations, the statement cache,
 * batches (transactions) and the helpers the other files of db/ share.
 *
 * The schema is versioned with PRAGMA user_version: migrations[i] takes a
 * database from version i to i + 1, each in its own transaction, so that an
 * interrupted upgrade leaves a consistent older version. It must never
 * rewrite or drop user data in a migration without saying so here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db_internal.h"

/*
 * Version 1. Enumerations are stored by name (base/event.c spells them), so
 * the file stays readable with `sqlite3` and survives reordered enums.
 * Only evidence events get a row; everything is counted in the rollups.
 * ip_bin is the 17-byte key (family, 16 address bytes) so that "inside a
 * prefix" is one index range.
 */
static const char *const migrations[] = {
    /* 0 -> 1 */
    ("CREATE TABLE sources("
     " id INTEGER PRIMARY KEY, kind TEXT NOT NULL, path TEXT NOT NULL,"
     " dev INTEGER NOT NULL DEFAULT 0, ino INTEGER NOT NULL DEFAULT 0,"
     " fp_hash INTEGER NOT NULL DEFAULT 0, fp_len INTEGER NOT NULL DEFAULT 0,"
     " offset INTEGER NOT NULL DEFAULT 0, lines_read INTEGER NOT NULL DEFAULT 0,"
     " first_seen INTEGER NOT NULL, last_read INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX sources_fp ON sources(fp_hash, fp_len);"
     "CREATE INDEX sources_ino ON sources(dev, ino);"
     "CREATE TABLE events("
     " id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, mta TEXT, host TEXT, program TEXT, pid INTEGER,"
     " queue_id TEXT, ip TEXT, ip_bin BLOB, cls TEXT, port INTEGER, rdns TEXT, helo TEXT,"
     " mail_from TEXT, rcpt_to TEXT, user TEXT, stage TEXT, kind TEXT NOT NULL, code INTEGER,"
     " dsn TEXT, category TEXT NOT NULL, text TEXT, raw BLOB, source_id INTEGER);"
     "CREATE INDEX events_ip ON events(ip_bin, ts);"
     "CREATE INDEX events_ts ON events(ts);"
     "CREATE TABLE rollup_minute(t INTEGER NOT NULL, kind TEXT NOT NULL, category TEXT NOT NULL,"
     " code_class TEXT NOT NULL, n INTEGER NOT NULL,"
     " PRIMARY KEY(t, kind, category, code_class)) WITHOUT ROWID;"
     "CREATE TABLE rollup_hour(t INTEGER NOT NULL, kind TEXT NOT NULL, category TEXT NOT NULL,"
     " code_class TEXT NOT NULL, n INTEGER NOT NULL,"
     " PRIMARY KEY(t, kind, category, code_class)) WITHOUT ROWID;"
     "CREATE TABLE top_hour(t INTEGER NOT NULL, scope TEXT NOT NULL, prefix TEXT NOT NULL,"
     " kind TEXT NOT NULL, category TEXT NOT NULL, n INTEGER NOT NULL,"
     " PRIMARY KEY(t, scope, prefix, kind, category)) WITHOUT ROWID;"
     "CREATE TABLE counters(name TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL,"
     " PRIMARY KEY(name, key)) WITHOUT ROWID;"
     "CREATE TABLE ingest_minute(t INTEGER PRIMARY KEY, lines INTEGER NOT NULL DEFAULT 0,"
     " unparsed INTEGER NOT NULL DEFAULT 0);"
     "CREATE TABLE decisions("
     " id INTEGER PRIMARY KEY, prefix TEXT NOT NULL, family INTEGER NOT NULL, prefix_len INTEGER NOT NULL,"
     " addr BLOB NOT NULL, scope TEXT NOT NULL, response TEXT NOT NULL, rule TEXT, reason TEXT,"
     " score REAL, since INTEGER NOT NULL, until INTEGER NOT NULL, manual INTEGER NOT NULL DEFAULT 0,"
     " created_by TEXT, created_at INTEGER, ended_at INTEGER, ended_by TEXT, end_reason TEXT,"
     " evidence TEXT);"
     "CREATE INDEX decisions_open ON decisions(until) WHERE ended_at IS NULL;"
     "CREATE INDEX decisions_prefix ON decisions(prefix, since);"
     "CREATE INDEX decisions_family ON decisions(family, since);"
     "CREATE TABLE audit(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, who TEXT, action TEXT NOT NULL,"
     " prefix TEXT, reason TEXT);"),
    /* 1 -> 2: event ids ordered by log time (DB_EVENT_ID), so that the
     * primary key serves time order and retention and the separate time
     * index goes; existing rows are renumbered in (ts, id) order. */
    ("CREATE TABLE events_v2("
     " id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, mta TEXT, host TEXT, program TEXT, pid INTEGER,"
     " queue_id TEXT, ip TEXT, ip_bin BLOB, cls TEXT, port INTEGER, rdns TEXT, helo TEXT,"
     " mail_from TEXT, rcpt_to TEXT, user TEXT, stage TEXT, kind TEXT NOT NULL, code INTEGER,"
     " dsn TEXT, category TEXT NOT NULL, text TEXT, raw BLOB, source_id INTEGER);"
     "INSERT INTO events_v2 SELECT"
     " ((ts / 1000000) << 20) + row_number() OVER (PARTITION BY ts / 1000000 ORDER BY ts, id) - 1,"
     " ts, mta, host, program, pid, queue_id, ip, ip_bin, cls, port, rdns, helo, mail_from, rcpt_to,"
     " user, stage, kind, code, dsn, category, text, raw, source_id FROM events;"
     "DROP TABLE events;"
     "ALTER TABLE events_v2 RENAME TO events;"
     "CREATE INDEX events_ip ON events(ip_bin, id);"),
    /* 2 -> 3: the number of event rows kept as a counter (count(*) reads
     * the whole index), maintained by db_commit() and retention. */
    ("INSERT INTO counters(name, key, n) SELECT 'rows', 'events', count(*) FROM events WHERE true"
     " ON CONFLICT DO UPDATE SET n = excluded.n;"),
    /* 3 -> 4: per-class rollups, minute and hour, by class x kind x
     * category x code class (the evidence kinds). cls is the
     * class network's 17-byte key (db_ip_key), so that "the classes inside
     * a prefix" is one range. History before the upgrade is rebuilt from
     * the evidence events still stored.
     * mxw_prefix_key() is a function of the migrating connection. */
    ("CREATE TABLE class_minute(t INTEGER NOT NULL, cls BLOB NOT NULL, plen INTEGER NOT NULL,"
     " kind TEXT NOT NULL, category TEXT NOT NULL, code_class TEXT NOT NULL, n INTEGER NOT NULL,"
     " PRIMARY KEY(t, cls, plen, kind, category, code_class)) WITHOUT ROWID;"
     "CREATE TABLE class_hour(t INTEGER NOT NULL, cls BLOB NOT NULL, plen INTEGER NOT NULL,"
     " kind TEXT NOT NULL, category TEXT NOT NULL, code_class TEXT NOT NULL, n INTEGER NOT NULL,"
     " PRIMARY KEY(t, cls, plen, kind, category, code_class)) WITHOUT ROWID;"
     "INSERT INTO class_minute SELECT t, k, CAST(substr(cls, instr(cls, '/') + 1) AS INTEGER) AS pl,"
     " kind, category, cc, count(*) FROM (SELECT ts / 60000000 * 60 AS t, mxw_prefix_key(cls) AS k, cls,"
     " kind, category, CASE WHEN code = 421 THEN '421' WHEN code = 451 THEN '451'"
     " WHEN code BETWEEN 400 AND 499 THEN '4xx' WHEN code BETWEEN 500 AND 599 THEN '5xx' ELSE 'none' END"
     " AS cc FROM events WHERE instr(cls, '/') > 0) WHERE k IS NOT NULL GROUP BY t, k, pl, kind, category, "
     "cc;"
     "INSERT INTO class_hour SELECT t / 3600 * 3600 AS h, cls, plen, kind, category, code_class, sum(n)"
     " FROM class_minute WHERE true GROUP BY h, cls, plen, kind, category, code_class;"),
    /* 4 -> 5: the life of a decision after it was made (upgrades of its
     * response, one row each), and the aggregator's checkpoint: its
     * in-memory state, written in the same transaction as a batch's file
     * offsets, so that a restart after a crash loads it and replays only the
     * evidence rows stored after it (max_event_id). One row (id 1). */
    ("CREATE TABLE IF NOT EXISTS decision_changes(id INTEGER PRIMARY KEY, decision_id INTEGER NOT NULL,"
     " at INTEGER NOT NULL, change TEXT NOT NULL, from_response TEXT, response TEXT, score REAL,"
     " rule TEXT, reason TEXT, until INTEGER);"
     "CREATE INDEX IF NOT EXISTS decision_changes_decision ON decision_changes(decision_id, id);"
     "CREATE TABLE IF NOT EXISTS agg_checkpoint(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, newest INTEGER "
     "NOT NULL,"
     " max_event_id INTEGER NOT NULL, lines INTEGER NOT NULL, data BLOB NOT NULL);"),
    /* 5 -> 6: where in its file an import stood when the checkpoint was
     * written (the batch's committed position), so that a restart after a
     * crash reads the lines after it again into the aggregator: the rows
     * stored after it lack the connects and accepted mail, and replaying
     * only them judges differently. One row (id 1) or none, replaced and
     * deleted with the checkpoint's row. */
    ("CREATE TABLE IF NOT EXISTS agg_checkpoint_source(id INTEGER PRIMARY KEY, source_id INTEGER NOT NULL,"
     " source_offset INTEGER NOT NULL, source_lines INTEGER NOT NULL);"),
    /* 6 -> 7: what the reports wrote and sent (issue 19). outbox: one row
     * per message written (an abuse report, a contact's summary, a mailed
     * digest): to whom, when written and to which file, the message itself
     * (dropped after [abuse] keep), when sent. abuse_reported: the
     * decisions an abuse report covered, so that no decision is reported
     * twice whatever the period or directory. rdap_cache: RDAP answers by
     * the address range they cover (17-byte keys, db_ip_key), with the
     * abuse contact found (NULL: none) until expires_at. decisions_since:
     * the decisions made in a period. */
    ("CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT,"
     " report_id TEXT, rcpt TEXT NOT NULL, subject TEXT, written_at INTEGER NOT NULL, file TEXT,"
     " message BLOB, sent_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);"
     "CREATE INDEX IF NOT EXISTS outbox_rcpt ON outbox(rcpt, written_at);"
     "CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox(written_at) WHERE sent_at IS NULL;"
     "CREATE UNIQUE INDEX IF NOT EXISTS outbox_key ON outbox(kind, key) WHERE key IS NOT NULL;"
     "CREATE TABLE IF NOT EXISTS abuse_reported(decision_id INTEGER PRIMARY KEY, outbox_id INTEGER NOT NULL,"
     " at INTEGER NOT NULL);"
     "CREATE INDEX IF NOT EXISTS abuse_reported_outbox ON abuse_reported(outbox_id);"
     "CREATE TABLE IF NOT EXISTS rdap_cache(id INTEGER PRIMARY KEY, lo BLOB NOT NULL, hi BLOB NOT NULL,"
     " contact TEXT, server TEXT, fetched_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
     "CREATE INDEX IF NOT EXISTS rdap_cache_lo ON rdap_cache(lo, hi);"
     "CREATE INDEX IF NOT EXISTS decisions_since ON decisions(since);"),
    /* 7 -> 8: allows made by hand (`mxwarden allow`, POST /api/v1/allows):
     * a prefix no decision may block until `until`, stored like a
     * decision (who, why, when it was ended early), read by the running
     * daemon every second. And the per-IP and per-class hourly counts by
     * prefix, for lookup's "seen N connections, M delivered" (the primary
     * key starts with the hour). */
    ("CREATE TABLE IF NOT EXISTS allows(id INTEGER PRIMARY KEY, prefix TEXT NOT NULL, family INTEGER NOT "
     "NULL,"
     " prefix_len INTEGER NOT NULL, addr BLOB NOT NULL, since INTEGER NOT NULL, until INTEGER NOT NULL,"
     " reason TEXT, created_by TEXT, created_at INTEGER, ended_at INTEGER, ended_by TEXT, end_reason TEXT);"
     "CREATE INDEX IF NOT EXISTS allows_open ON allows(until) WHERE ended_at IS NULL;"
     "CREATE INDEX IF NOT EXISTS top_hour_prefix ON top_hour(scope, prefix, t);"),
    /* 8 -> 9: the systemd journal as a source (kind 'journal', one row per
     * set of identifiers): its position is the journal's cursor, a text,
     * committed with the batch's events like a file's offset; one row per
     * journal source. */
    ("CREATE TABLE IF NOT EXISTS source_cursor(source_id INTEGER PRIMARY KEY, cursor TEXT NOT NULL);"),
    /* 9 -> 10: the MX hosts (issue 18), by the syslog host field of their
     * lines. hosts: one row per host, when its first and last line were
     * read (last_seen: by `run` only, NULL when only imported, so that an
     * import of old logs flags no host as silent), the log time (µs) of its
     * newest line, how late the newest line of the last batch was read
     * (lag, seconds), its lines. host_minute: lines read per host and wall
     * clock minute. host_rollup_minute / _hour: rollup_minute / _hour per
     * host (log time). host_top_hour: top_hour per host, the evidence kinds
     * (not connects: +20% import CPU). events_host: the events of one host, newest first.
     * The rollups of the history before the upgrade are rebuilt from the
     * evidence events still stored (their lines and connects are gone). */
    ("CREATE TABLE IF NOT EXISTS hosts(name TEXT PRIMARY KEY, first_seen INTEGER NOT NULL,"
     " last_seen INTEGER, last_ts INTEGER NOT NULL DEFAULT 0, lag INTEGER, lines INTEGER NOT NULL DEFAULT 0)"
     " WITHOUT ROWID;"
     "CREATE TABLE IF NOT EXISTS host_minute(t INTEGER NOT NULL, host TEXT NOT NULL, lines INTEGER NOT NULL,"
     " PRIMARY KEY(t, host)) WITHOUT ROWID;"
     "CREATE TABLE IF NOT EXISTS host_rollup_minute(t INTEGER NOT NULL, host TEXT NOT NULL, kind TEXT NOT "
     "NULL,"
     " category TEXT NOT NULL, code_class TEXT NOT NULL, n INTEGER NOT NULL,"
     " PRIMARY KEY(t, host, kind, category, code_class)) WITHOUT ROWID;"
     "CREATE TABLE IF NOT EXISTS host_rollup_hour(t INTEGER NOT NULL, host TEXT NOT NULL, kind TEXT NOT NULL,"
     " category TEXT NOT NULL, code_class TEXT NOT NULL, n INTEGER NOT NULL,"
     " PRIMARY KEY(t, host, kind, category, code_class)) WITHOUT ROWID;"
     "CREATE TABLE IF NOT EXISTS host_top_hour(t INTEGER NOT NULL, host TEXT NOT NULL, scope TEXT NOT NULL,"
     " prefix TEXT NOT NULL, kind TEXT NOT NULL, category TEXT NOT NULL, n INTEGER NOT NULL,"
     " PRIMARY KEY(t, host, scope, prefix, kind, category)) WITHOUT ROWID;"
     "CREATE INDEX IF NOT EXISTS events_host ON events(host, id);"
     "INSERT OR IGNORE INTO hosts(name, first_seen, last_ts) SELECT host, min(ts) / 1000000, max(ts)"
     " FROM events WHERE host IS NOT NULL AND host != '' GROUP BY host;"
     "INSERT OR IGNORE INTO host_rollup_minute SELECT ts / 60000000 * 60 AS m, host, kind, category,"
     " CASE WHEN code = 421 THEN '421' WHEN code = 451 THEN '451' WHEN code BETWEEN 400 AND 499 THEN '4xx'"
     " WHEN code BETWEEN 500 AND 599 THEN '5xx' ELSE 'none' END AS cc, count(*) FROM events"
     " WHERE host IS NOT NULL AND host != '' GROUP BY m, host, kind, category, cc;"
     "INSERT OR IGNORE INTO host_rollup_hour SELECT t / 3600 * 3600 AS h, host, kind, category, code_class,"
     " sum(n) FROM host_rollup_minute WHERE true GROUP BY h, host, kind, category, code_class;"
     "INSERT OR IGNORE INTO host_top_hour SELECT ts / 3600000000 * 3600 AS h, host, 'ip', ip, kind, category,"
     " count(*) FROM events WHERE host IS NOT NULL AND host != '' AND ip IS NOT NULL"
     " GROUP BY h, host, ip, kind, category;"
     "INSERT OR IGNORE INTO host_top_hour SELECT ts / 3600000000 * 3600 AS h, host, 'class', cls, kind,"
     " category, count(*) FROM events WHERE host IS NOT NULL AND host != '' AND cls IS NOT NULL"
     " GROUP BY h, host, cls, kind, category;"),
};

static const char *const stmt_sql[Q__COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_EVENT_MAX_ID] = "SELECT max(id) FROM events WHERE id BETWEEN ? AND ?",
    [Q_EVENT_TOP_ID] = "SELECT max(id) FROM events",
    [Q_EVENT_INSERT] =
	"INSERT INTO events(id, ts, mta, host, program, pid, queue_id, ip, ip_bin, cls, port, rdns,"
	" helo, mail_from, rcpt_to, user, stage, kind, code, dsn, category, text, raw, source_id)"
	" VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [Q_ROLLUP_MINUTE_ADD] = "INSERT INTO rollup_minute(t, kind, category, code_class, n) VALUES(?,?,?,?,?)"
			    " ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [Q_ROLLUP_HOUR_ADD] = "INSERT INTO rollup_hour(t, kind, category, code_class, n) VALUES(?,?,?,?,?)"
			  " ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [Q_TOP_HOUR_ADD] = "INSERT INTO top_hour(t, scope, prefix, kind, category, n) VALUES(?,?,?,?,?,?)"
		       " ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [Q_CLASS_MINUTE_ADD] = "INSERT INTO class_minute(t, cls, plen, kind, category, code_class, n)"
			   " VALUES(?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [Q_CLASS_HOUR_ADD] = "INSERT INTO class_hour(t, cls, plen, kind, category, code_class, n)"
			 " VALUES(?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [Q_HOST_MINUTE_ADD] = "INSERT INTO host_rollup_minute(t, host, kind, category, code_class, n)"
			  " VALUES(?,?,?,?,?,?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [Q_HOST_HOUR_ADD] = "INSERT INTO host_rollup_hour(t, host, kind, category, code_class, n)"
			" VALUES(?,?,?,?,?,?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [Q_HOST_TOP_ADD] = "INSERT INTO host_top_hour(t, host, scope, prefix, kind, category, n)"
		       " VALUES(?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [Q_COUNTER_ADD] = "INSERT INTO counters(name, key, n) VALUES(?,?,?)"
		      " ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [Q_INGEST_ADD] = "INSERT INTO ingest_minute(t, lines, unparsed) VALUES(?,?,?)"
		     " ON CONFLICT DO UPDATE SET lines = lines + excluded.lines,"
		     " unparsed = unparsed + excluded.unparsed",
    [Q_ACCEPTS_SCAN] = "SELECT t, prefix, sum(n) FROM top_hour WHERE t >= ?1 AND scope = 'ip'"
		       " AND kind = 'accept' GROUP BY t, prefix ORDER BY t",
    [Q_EVENTS_SCAN] = "SELECT id, ts, mta, host, program, pid, queue_id, ip, ip_bin, cls, port, rdns, helo,"
		      " mail_from, rcpt_to, user, stage, kind, code, dsn, category, text, raw, source_id"
		      " FROM events WHERE id >= ?1 AND ts >= ?2 ORDER BY id",
#define SOURCE_COLS "id, kind, path, dev, ino, fp_hash, fp_len, offset, lines_read, first_seen, last_read"
    [Q_SOURCE_FIND_ID] = "SELECT " SOURCE_COLS " FROM sources WHERE kind = ? AND dev = ? AND ino = ?"
			 " AND fp_hash = ? AND fp_len = ? ORDER BY last_read DESC, id DESC LIMIT 1",
    [Q_SOURCE_FIND_NAME] = "SELECT " SOURCE_COLS " FROM sources WHERE kind = ? AND path = ?"
			   " ORDER BY id DESC LIMIT 1",
    [Q_SOURCE_FIND_FP] = "SELECT " SOURCE_COLS " FROM sources WHERE fp_hash = ? AND fp_len = ?"
			 " ORDER BY last_read DESC, id DESC LIMIT 1",
    [Q_SOURCE_INSERT] = "INSERT INTO sources(kind, path, dev, ino, fp_hash, fp_len, first_seen)"
			" VALUES(?,?,?,?,?,?,?)",
    [Q_SOURCE_SET_PATH] = "UPDATE sources SET path = ? WHERE id = ?",
    [Q_SOURCE_GET] = "SELECT lines_read FROM sources WHERE id = ?",
    [Q_SOURCE_LIST] = "SELECT " SOURCE_COLS " FROM sources ORDER BY id",
    [Q_SOURCE_SET_OFFSET] = "UPDATE sources SET offset = ?, lines_read = ?, last_read = ? WHERE id = ?",
    [Q_SOURCE_SET_IDENTITY] = "UPDATE sources SET path = ?, dev = ?, ino = ?, fp_hash = ?, fp_len = ?"
			      " WHERE id = ?",
    [Q_DECISION_INSERT] = "INSERT INTO decisions(prefix, family, prefix_len, addr, scope, response, rule,"
			  " reason, score, since, until, manual, created_by, created_at, evidence)"
			  " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [Q_DECISION_END] = "UPDATE decisions SET ended_at = ?, ended_by = ?, end_reason = ?"
		       " WHERE id = ? AND ended_at IS NULL",
#define DECISION_COLS                                                                                   \
	"id, prefix, scope, response, rule, reason, score, since, until, manual, evidence, created_by," \
	" created_at, ended_at, ended_by, end_reason"
    [Q_DECISIONS_ACTIVE] = "SELECT " DECISION_COLS " FROM decisions WHERE ended_at IS NULL AND until > ?"
			   " ORDER BY since, id",
    [Q_DECISIONS_IN_FORCE_AT] = "SELECT " DECISION_COLS " FROM decisions WHERE until > ?1"
				" AND (ended_at IS NULL OR ended_at > ?1) AND (manual != 0 OR since <= ?1)"
				" ORDER BY since, id",
    [Q_DECISIONS_FAMILY] = "SELECT " DECISION_COLS " FROM decisions WHERE family = ?"
			   " ORDER BY since DESC, id DESC",
    [Q_DECISIONS_COUNT] = "SELECT count(*) FROM decisions WHERE prefix = ? AND since >= ?",
    [Q_DECISION_GET] = "SELECT " DECISION_COLS " FROM decisions WHERE id = ?",
    [Q_DECISIONS_MADE] = "SELECT " DECISION_COLS " FROM decisions WHERE since >= ?1 AND since < ?2"
			 " ORDER BY since, id",
    [Q_AUDIT_INSERT] = "INSERT INTO audit(at, who, action, prefix, reason) VALUES(?,?,?,?,?)",
};

int db_fail(struct db *db, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(db->err, sizeof(db->err), fmt, ap);
	va_end(ap);
	return -1;
}

static bool code_damaged(int xc)
{
	int c = xc & 0xff;
	return c == SQLITE_CORRUPT || c == SQLITE_NOTADB;
}

int db_fail_sql(struct db *db, const char *what)
{
	if (db->h && code_damaged(sqlite3_extended_errcode(db->h)))
		return db_fail(db, "%s: %s: the database is damaged (run `mxwarden check-db`)", what,
			       sqlite3_errmsg(db->h));
	return db_fail(db, "%s: %s", what, db->h ? sqlite3_errmsg(db->h) : "no connection");
}

/*
 * Unclean stops. SQLite tells through its log callback (process-wide,
 * installed once before its first use) when a connection rebuilt the
 * index of a write-ahead log that still held committed frames: that
 * happens only to the first connection after the last writer died without
 * closing (kill -9, a crash, a power cut). The flag is per thread: a
 * connection is opened and first read in one thread.
 */
static __thread bool wal_recovered;

static void sqlite_log(void *arg, int code, const char *msg)
{
	(void)arg;
	(void)msg;
	if (code == SQLITE_NOTICE_RECOVER_WAL)
		wal_recovered = true;
}

static void sqlite_log_setup(void)
{
	/* fails only when SQLite is in use already (then no unclean-stop check) */
	if (sqlite3_config(SQLITE_CONFIG_LOG, sqlite_log, NULL) != SQLITE_OK)
		log_debug("database: SQLite's log callback cannot be set: no check after an unclean stop");
}

/* Each line of a check's answer is a problem, but its header. */
static void add_problems(struct strv *problems, const char *t)
{
	while (t && *t) {
		size_t n = strcspn(t, "\n");
		if (n && strncmp(t, "*** in database", 15) != 0) {
			struct buf b = BUF_INIT;
			buf_append_printable(&b, t, n);
			strv_add(problems, buf_str(&b));
			buf_free(&b);
		}
		t += n + (t[n] == '\n');
	}
}

int db_quick_check(struct db *db, bool full, struct strv *problems)
{
	sqlite3_stmt *st = db_prepare(db, full ? "PRAGMA integrity_check(20)" : "PRAGMA quick_check(20)");
	if (!st)
		return -1;
	int rc;
	size_t n0 = problems->n;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		if (!t || strcmp(t, "ok") != 0)
			add_problems(problems, t ? t : "?");
	}
	int r = 0;
	if (rc != SQLITE_DONE) {
		if (code_damaged(sqlite3_extended_errcode(db->h)))
			add_problems(problems, sqlite3_errmsg(db->h));
		else
			r = db_fail_sql(db, "check");
	}
	sqlite3_finalize(st);
	return r < 0 ? -1 : problems->n > n0 ? 1 : 0;
}

void db_damaged_message(const char *path, const char *problems, struct buf *out)
{
	/* short enough for a caller's 512-byte buffer with a path of 100 bytes */
	buf_printf(
	    out,
	    "%s: the database is damaged (%.100s%s). mxwarden will not use it. To recover: stop mxwarden, "
	    "move the file and its -wal and -shm aside, rebuild it from the mail logs with `mxwarden import "
	    "LOG...` (rotated and .gz logs too), start again; the blocklists keep their last content "
	    "meanwhile",
	    path, problems && *problems ? problems : "?", problems && strlen(problems) > 100 ? "..." : "");
}

bool db_unclean(const struct db *db, int64_t *check_us)
{
	if (check_us)
		*check_us = db->check_us;
	return db->unclean;
}

const char *db_errmsg(const struct db *db)
{
	return db ? db->err : "no database";
}

int db_exec(struct db *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		db_fail(db, "%s", msg ? msg : sqlite3_errmsg(db->h));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

sqlite3_stmt *db_prepare(struct db *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
		db_fail_sql(db, "prepare");
		return NULL;
	}
	return st;
}

sqlite3_stmt *db_stmt(struct db *db, enum stmt_id id)
{
	sqlite3_stmt *st = db->st[id];
	if (!st) {
		if (sqlite3_prepare_v3(db->h, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
		    SQLITE_OK) {
			db_fail_sql(db, "prepare");
			return NULL;
		}
		db->st[id] = st;
		return st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

sqlite3_stmt *db_stmt_sql(struct db *db, const char *sql)
{
	for (size_t i = 0; i < db->nq; i++)
		if (db->qsql[i] == sql) {
			sqlite3_reset(db->qst[i]);
			sqlite3_clear_bindings(db->qst[i]);
			return db->qst[i];
		}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		db_fail_sql(db, "prepare");
		return NULL;
	}
	if (db->nq == MXW_ARRAY_LEN(db->qst))
		BUG("db: more cached query statements than slots");
	db->qsql[db->nq] = sql;
	db->qst[db->nq++] = st;
	return st;
}

int db_step_done(struct db *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_fail_sql(db, what);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

int db_bind_span(sqlite3_stmt *st, int i, const char *p, size_t n)
{
	if (!p || n == 0)
		return sqlite3_bind_null(st, i);
	/* STATIC: every caller steps the statement before p goes away, and
	 * db_stmt() clears the bindings before the next use. */
	return sqlite3_bind_text(st, i, p, (int)n, SQLITE_STATIC);
}

/* A message for a database file or directory that cannot be written,
 * saying what is wrong in words and who we are. */
static void db_path_error(const char *path, int e, char *err, size_t errsz)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (e == EACCES || e == EPERM)
		snprintf(
		    err, errsz,
		    "%s: permission denied: the directory %s is not writable by this user (uid %u); the "
		    "database and its -wal and -shm files live there: give the user write access to it or "
		    "choose another [storage] db / --db",
		    path, dir, (unsigned)geteuid());
	else if (e == EROFS)
		snprintf(
		    err, errsz,
		    "%s: the directory %s is on a read-only file system; choose a writable [storage] db / "
		    "--db",
		    path, dir);
	else if (e == EISDIR)
		snprintf(err, errsz, "%s is a directory, not a database file", path);
	else
		snprintf(err, errsz, "%s: %s", path, strerror(e));
}

/* A directory on the way to the database that mkdir refused: who may not
 * write where, or what else went wrong. */
static void dir_error(const char *dir, int e, char *err, size_t errsz)
{
	if (e == EACCES || e == EPERM || e == EROFS)
		db_path_error(dir, e, err, errsz);
	else
		snprintf(err, errsz, "%s: cannot create the database's directory: %s", dir, strerror(e));
}

/* mkdir -p of the directory part of path. */
static int make_parent(const char *path, char *err, size_t errsz)
{
	char dir[PATH_MAX];
	if (str_copy(dir, sizeof(dir), path, strlen(path)) < 0) {
		snprintf(err, errsz, "%s: path too long", path);
		return -1;
	}
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
			dir_error(dir, errno, err, errsz);
			return -1;
		}
		*p = '/';
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		dir_error(dir, errno, err, errsz);
		return -1;
	}
	return 0;
}

/*
 * The database holds raw log lines (recipients, SASL user names): it is
 * created 0640 (group-readable for the service's group, never world), and
 * SQLite gives its -wal and -shm files the database file's mode. A file
 * found readable or writable by others (made by an older version, or by
 * hand) is narrowed to the same, with a warning; when that fails, the
 * warning says how to fix it. Returns -1 with a message in err only when the
 * file cannot be created.
 */
static int db_files_private(const char *path, char *err, size_t errsz)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != EEXIST) {
		db_path_error(path, errno, err, errsz);
		return -1;
	}
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		db_path_error(path, EISDIR, err, errsz);
		return -1;
	}
	/* SQLite opens a read-only file read-only without a word, then fails
	 * at the first write; and it creates -wal and -shm beside the file */
	if (access(path, W_OK) < 0) {
		snprintf(err, errsz,
			 "%s: not writable by this user (uid %u): %s; mxwarden writes its database (fix the "
			 "file's "
			 "owner or mode)",
			 path, (unsigned)geteuid(), strerror(errno));
		return -1;
	}
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path + 1) : 1, slash ? path : ".");
	if (access(dir, W_OK | X_OK) < 0) {
		db_path_error(path, errno, err, errsz);
		return -1;
	}
	static const char *const sfx[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < MXW_ARRAY_LEN(sfx); i++) {
		char f[PATH_MAX + 8];
		snprintf(f, sizeof(f), "%s%s", path, sfx[i]);
		struct stat sb;
		if (stat(f, &sb) < 0 || !S_ISREG(sb.st_mode) || !(sb.st_mode & (S_IROTH | S_IWOTH)))
			continue;
		mode_t m = sb.st_mode & 0770;
		if (chmod(f, m) == 0)
			log_warn(
			    "%s was readable by every user of this host (mode %04o): now %04o (it holds raw "
			    "log lines with recipients and user names)",
			    f, (unsigned)(sb.st_mode & 07777), (unsigned)m);
		else
			log_warn(
			    "%s is readable by every user of this host (mode %04o) and holds raw log lines: "
			    "run chmod o-rwx %s (%s)",
			    f, (unsigned)(sb.st_mode & 07777), f, strerror(errno));
	}
	return 0;
}

static int64_t pragma_int(struct db *db, const char *sql)
{
	sqlite3_stmt *st = db_prepare(db, sql);
	if (!st)
		return -1;
	int64_t v = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		db_fail_sql(db, sql);
	sqlite3_finalize(st);
	return v;
}

/* mxw_prefix_key(text): the 17-byte key (db_ip_key) of a prefix's network,
 * NULL when the text is not a prefix. For the 3 -> 4 migration. */
static void sql_prefix_key(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	const unsigned char *s = sqlite3_value_text(argv[0]);
	struct prefix p;
	if (!s || prefix_parse(&p, (const char *)s, (size_t)sqlite3_value_bytes(argv[0]), false) < 0) {
		sqlite3_result_null(ctx);
		return;
	}
	uint8_t key[17];
	db_ip_key(&p.addr, key);
	sqlite3_result_blob(ctx, key, sizeof(key), SQLITE_TRANSIENT);
}

static int migrate(struct db *db, int target)
{
	if (sqlite3_create_function(db->h, "mxw_prefix_key", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
				    sql_prefix_key, NULL, NULL) != SQLITE_OK)
		return db_fail_sql(db, "create function");
	int64_t v = pragma_int(db, "PRAGMA user_version");
	if (v < 0)
		return -1;
	if (v > DB_SCHEMA_VERSION)
		return db_fail(db, "schema version %lld is newer than this program's %d", (long long)v,
			       DB_SCHEMA_VERSION);
	if (v == 0)
		db->created = true;
	for (; v < target; v++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %lld", (long long)v + 1);
		if (db_exec(db, "BEGIN IMMEDIATE") < 0)
			return -1;
		/* Another writer may have migrated while we waited for the lock. */
		int64_t now_v = pragma_int(db, "PRAGMA user_version");
		if (now_v != v) {
			db_exec(db, "ROLLBACK");
			if (now_v < 0)
				return -1;
			v = now_v - 1;
			continue;
		}
		if (db_exec(db, migrations[v]) < 0 || db_exec(db, pragma) < 0) {
			char keep[sizeof(db->err)];
			memcpy(keep, db->err, sizeof(keep));
			db_exec(db, "ROLLBACK");
			memcpy(db->err, keep, sizeof(keep));
			return -1;
		}
		if (db_exec(db, "COMMIT") < 0)
			return -1;
	}
	return 0;
}

static db_busy_fn busy_fn;
static void *busy_arg;

void db_set_busy_hook(db_busy_fn fn, void *arg)
{
	busy_fn = fn;
	busy_arg = arg;
}

struct busy {
	const char *what;
	int64_t last_us;
};

/* SQLite's progress handler during the check: the hook once a second. */
static int busy_progress(void *arg)
{
	struct busy *b = arg;
	int64_t now = clock_mono_us();
	if (now - b->last_us >= 1000000) {
		b->last_us = now;
		busy_fn(busy_arg, b->what);
	}
	return 0; /* go on */
}

/* The last writer died without closing: check the file before using it
 * (linear in its size: 3.5 s for 2.5 GB in the page cache, 47 s from a cold
 * disk here; the size is logged first), refuse it damaged. */
static int check_after_crash(struct db *db)
{
	db->unclean = true;
	log_info(
	    "database %s was not closed cleanly (its write-ahead log was recovered): checking its %.1f MB "
	    "(PRAGMA quick_check; up to a minute per 2 GB from a cold disk)",
	    db->path, (double)db_size_bytes(db) / 1e6);
	int64_t t0 = clock_mono_us();
	char what[160];
	snprintf(what, sizeof what, "checking the database (%.1f MB) after an unclean stop",
		 (double)db_size_bytes(db) / 1e6);
	struct busy b = {what, t0};
	if (busy_fn) {
		busy_fn(busy_arg, what);
		sqlite3_progress_handler(db->h, 10000, busy_progress, &b);
	}
	struct strv probs = {0};
	int r = db_quick_check(db, false, &probs);
	if (busy_fn)
		sqlite3_progress_handler(db->h, 0, NULL, NULL);
	db->check_us = clock_mono_us() - t0;
	if (r == 0)
		log_info("database %s: quick_check ok in %.2f s", db->path, (double)db->check_us / 1e6);
	else if (r > 0) {
		struct buf m = BUF_INIT;
		db_damaged_message(db->path, probs.v[0], &m);
		db_fail(db, "%s", buf_str(&m));
		buf_free(&m);
	}
	strv_free(&probs);
	/* Refused, the connection must not fold the log into the file when it
	 * closes (the last one does): the next start must find the unclean stop
	 * again and refuse again, not a quiet file with the damage inside. */
	if (r != 0)
		sqlite3_db_config(db->h, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	return r == 0 ? 0 : -1; /* -1: db->err holds the whole message (or the check failed) */
}

struct db *db_open_version(const char *path, int flags, int target, char *err, size_t errsz)
{
	_Static_assert(MXW_ARRAY_LEN(migrations) == DB_SCHEMA_VERSION, "one migration per version");
	bool rw = flags & DB_RW;
	if (!path || !*path) {
		snprintf(err, errsz, "no database path");
		return NULL;
	}
	/* messages name the file absolutely: a relative path means another
	 * database in each directory a command is run from */
	char shown[PATH_MAX], cwd[PATH_MAX];
	bool rel = path[0] != '/' && getcwd(cwd, sizeof cwd);
	if (!rel || snprintf(shown, sizeof shown, "%s/%s", cwd, path) >= (int)sizeof shown)
		snprintf(shown, sizeof shown, "%s", path);
	struct stat sb;
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		snprintf(err, errsz, "%s: is a directory (give the database file, e.g. %s/mxwarden.db)",
			 shown, shown);
		return NULL;
	}
	if (rw && make_parent(path, err, errsz) < 0)
		return NULL;
	if (!rw && stat(path, &sb) < 0) {
		snprintf(err, errsz, "%s: %s", shown,
			 errno == ENOENT   ? "no database yet (nothing followed or imported)"
			 : errno == EACCES ? "permission denied"
					   : strerror(errno));
		return NULL;
	}
	if (rw && db_files_private(path, err, errsz) < 0)
		return NULL;
	struct db *db = xcalloc(1, sizeof(*db));
	db->hosts_live = true;
	db->rw = rw;
	if (str_copy(db->path, sizeof(db->path), path, strlen(path)) < 0) {
		snprintf(err, errsz, "%s: path too long", path);
		free(db);
		return NULL;
	}
	int oflags =
	    SQLITE_OPEN_NOMUTEX | (rw ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
	static pthread_once_t log_once = PTHREAD_ONCE_INIT;
	pthread_once(&log_once, sqlite_log_setup);
	wal_recovered = false;
	if (sqlite3_open_v2(path, &db->h, oflags, NULL) != SQLITE_OK) {
		snprintf(err, errsz, "%s: %s", shown, db->h ? sqlite3_errmsg(db->h) : "cannot open");
		db_close(db);
		return NULL;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, 5000);
	int rc = 0;
	bool whole = false; /* db->err is the whole message, path included */
	if (rw) {
		rc = db_exec(db, "PRAGMA journal_mode = WAL");
		if (rc == 0)
			rc = db_exec(db, (flags & DB_FAST) ? "PRAGMA synchronous = OFF"
							   : "PRAGMA synchronous = NORMAL");
		if (rc == 0)
			rc = db_exec(db, "PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;"
					 " PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 16384; "
					 "PRAGMA journal_size_limit = 67108864");
		/* bulk import: the events indexes outgrow 32 MiB after ~1M lines,
		 * and every batch then reads their pages back */
		if (rc == 0 && (flags & DB_BULK))
			rc = db_exec(db, "PRAGMA cache_size = -262144");
		/* the first read: SQLite recovers a write-ahead log left behind */
		if (rc == 0 && pragma_int(db, "SELECT count(*) FROM sqlite_master") < 0)
			rc = -1;
		if (rc == 0 && wal_recovered && check_after_crash(db) < 0) {
			rc = -1;
			whole = true;
		}
		if (rc == 0)
			rc = migrate(db, target);
	} else {
		int64_t v = pragma_int(db, "PRAGMA user_version");
		if (v < 0)
			rc = -1;
		else if (v == 0)
			rc = db_fail(db, "no mxwarden schema (not created yet, or not an mxwarden database)");
		else if (v > DB_SCHEMA_VERSION)
			rc = db_fail(db, "schema version %lld is newer than this program's %d", (long long)v,
				     DB_SCHEMA_VERSION);
	}
	if (rc < 0) {
		if (whole) {
			snprintf(err, errsz, "%s", db->err); /* check_after_crash's whole message */
		} else if (db->h && code_damaged(sqlite3_extended_errcode(db->h))) {
			struct buf m = BUF_INIT;
			db_damaged_message(shown, sqlite3_errmsg(db->h), &m);
			snprintf(err, errsz, "%s", buf_str(&m));
			buf_free(&m);
		} else {
			snprintf(err, errsz, "%s: %s", shown, db->err);
		}
		db_close(db);
		return NULL;
	}
	return db;
}

struct db *db_open(const char *path, int flags, char *err, size_t errsz)
{
	return db_open_version(path, flags, DB_SCHEMA_VERSION, err, errsz);
}

void db_close(struct db *db)
{
	if (!db)
		return;
	if (db->in_batch)
		db_rollback(db);
	/* Keep the query planner's statistics fresh, bounded in time
	 * (analysis_limit samples rows instead of reading whole tables). */
	if (db->rw && db->h)
		db_exec(db, "PRAGMA analysis_limit = 1000; PRAGMA optimize");
	for (size_t i = 0; i < Q__COUNT; i++)
		sqlite3_finalize(db->st[i]);
	for (size_t i = 0; i < db->nq; i++)
		sqlite3_finalize(db->qst[i]);
	for (size_t i = 0; i < MXW_ARRAY_LEN(db->multi); i++)
		sqlite3_finalize(db->multi[i]);
	if (db->h)
		sqlite3_close_v2(db->h);
	agg_free(&db->agg);
	free(db);
}

int64_t db_file_bytes(const struct db *db, bool wal)
{
	char p[PATH_MAX + 8];
	snprintf(p, sizeof p, "%s%s", db->path, wal ? "-wal" : "");
	struct stat sb;
	if (stat(p, &sb) < 0)
		return wal && errno == ENOENT ? 0 : -1;
	return (int64_t)sb.st_size;
}

int64_t db_size_bytes(const struct db *db)
{
	struct stat sb;
	if (stat(db->path, &sb) < 0)
		return -1;
	int64_t n = (int64_t)sb.st_size;
	char wal[PATH_MAX + 8];
	snprintf(wal, sizeof(wal), "%s-wal", db->path);
	if (stat(wal, &sb) == 0)
		n += (int64_t)sb.st_size;
	return n;
}

/* ---------------------------------------------------------------- batches */

int db_begin(struct db *db)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if (db->in_batch)
		return db_fail(db, "a batch is already open");
	sqlite3_stmt *st = db_stmt(db, Q_BEGIN);
	if (!st || db_step_done(db, st, "begin") < 0)
		return -1;
	db->in_batch = true;
	db->last_event_id = -1;
	db->top_event_id = -2;
	db->batch_rows = 0;
	agg_clear(&db->agg);
	return 0;
}

int db_commit(struct db *db)
{
	if (!db->in_batch)
		return db_fail(db, "no batch open");
	sqlite3_stmt *st;
	if (db_agg_flush(db) < 0 || !(st = db_stmt(db, Q_COMMIT)) || db_step_done(db, st, "commit") < 0) {
		char keep[sizeof(db->err)];
		memcpy(keep, db->err, sizeof(keep));
		db_rollback(db);
		memcpy(db->err, keep, sizeof(keep));
		return -1;
	}
	db->in_batch = false;
	agg_clear(&db->agg);
	return 0;
}

int db_rollback(struct db *db)
{
	if (!db->in_batch)
		return db_fail(db, "no batch open");
	db->in_batch = false;
	agg_clear(&db->agg);
	sqlite3_stmt *st = db_stmt(db, Q_ROLLBACK);
	if (!st)
		return -1;
	int rc = db_step_done(db, st, "rollback");
	/* A failed statement may already have ended the transaction. */
	if (rc < 0 && sqlite3_get_autocommit(db->h))
		return 0;
	return rc;
}

bool db_in_batch(const struct db *db)
{
	return db->in_batch;
}

/* ----------------------------------------------------------------- helpers */

void db_ip_key(const struct ipaddr *ip, uint8_t out[17])
{
	out[0] = ip->family;
	memcpy(out + 1, ip->a, 16);
}

void db_prefix_range(const struct prefix *p, uint8_t lo[17], uint8_t hi[17])
{
	db_ip_key(&p->addr, lo);
	memcpy(hi, lo, 17);
	unsigned bits = ipaddr_bits(&p->addr);
	for (unsigned b = p->len; b < bits; b++)
		hi[1 + b / 8] |= (uint8_t)(0x80u >> (b % 8));
}

void db_cursor_format(char *out, size_t outsz, char tag, int64_t a, int64_t b, bool two)
{
	if (two)
		snprintf(out, outsz, "%c.%lld.%lld", tag, (long long)a, (long long)b);
	else
		snprintf(out, outsz, "%c.%lld", tag, (long long)a);
}

static int parse_num(const char **s, int64_t *v)
{
	const char *p = *s;
	bool neg = false;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (*p < '0' || *p > '9')
		return -1;
	int64_t x = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (x > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		x = x * 10 + (*p - '0');
	}
	*v = neg ? -x : x;
	*s = p;
	return 0;
}

int db_cursor_parse(const char *s, char tag, int64_t *a, int64_t *b, bool two)
{
	if (!s || s[0] != tag || s[1] != '.')
		return -1;
	s += 2;
	if (parse_num(&s, a) < 0)
		return -1;
	if (two) {
		if (*s != '.')
			return -1;
		s++;
		if (parse_num(&s, b) < 0)
			return -1;
	}
	return *s == '\0' ? 0 : -1;
}

uint64_t db_fingerprint(const void *p, size_t n)
{
	/* FNV-1a, 64 bits: stable across builds and machines. */
	const uint8_t *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

bool db_created(const struct db *db)
{
	return db->created;
}
