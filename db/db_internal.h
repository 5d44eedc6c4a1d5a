/*
 * db_internal.h - what the files of db/ share: the connection struct, the
 * prepared-statement cache, the batch accumulator and small helpers. Not
 * for use outside db/.
 */
#ifndef MXWARDEN_DB_INTERNAL_H
#define MXWARDEN_DB_INTERNAL_H

#include <sqlite3.h>

#include "db/db.h"

/* Every statement the module runs, prepared once per connection (lazily)
 * and reused. The SQL text lives in db.c's table, indexed by these ids. */
enum stmt_id {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_EVENT_MAX_ID,
	Q_EVENT_TOP_ID,
	Q_EVENT_INSERT,
	Q_ROLLUP_MINUTE_ADD,
	Q_ROLLUP_HOUR_ADD,
	Q_TOP_HOUR_ADD,
	Q_CLASS_MINUTE_ADD,
	Q_CLASS_HOUR_ADD,
	Q_HOST_MINUTE_ADD,
	Q_HOST_HOUR_ADD,
	Q_HOST_TOP_ADD,
	Q_COUNTER_ADD,
	Q_INGEST_ADD,
	Q_EVENTS_SCAN,
	Q_ACCEPTS_SCAN,
	Q_SOURCE_FIND_ID,
	Q_SOURCE_FIND_NAME,
	Q_SOURCE_FIND_FP,
	Q_SOURCE_INSERT,
	Q_SOURCE_SET_PATH,
	Q_SOURCE_GET,
	Q_SOURCE_LIST,
	Q_SOURCE_SET_OFFSET,
	Q_SOURCE_SET_IDENTITY,
	Q_DECISION_INSERT,
	Q_DECISION_END,
	Q_DECISIONS_ACTIVE,
	Q_DECISIONS_IN_FORCE_AT,
	Q_DECISIONS_FAMILY,
	Q_DECISIONS_COUNT,
	Q_DECISION_GET,
	Q_DECISIONS_MADE,
	Q_AUDIT_INSERT,
	Q__COUNT
};

/*
 * MX hosts (hosts.c). A process-wide table interns each host name (the
 * syslog host field, at most DB_HOST_NAME_MAX bytes: longer ones are cut)
 * to a small id, 1..DB_HOST_IDS - 2, in the order they come; the id
 * DB_HOST_OTHER stands for every host past that many ("(other)"); 0 is "no
 * host" (the line has no host field). Ids live in memory only (the tables
 * hold names), so two processes need not agree. Thread-safe: a name is
 * added under a lock, looked up without one.
 */
#define DB_HOST_IDS	 256
#define DB_HOST_OTHER	 (DB_HOST_IDS - 1)
#define DB_HOST_NAME_MAX 255
uint8_t db_host_id(const char *p, size_t n);
/* The name of id (NUL-terminated, borrowed, valid for the process's life)
 * and its length; "" for 0. */
const char *db_host_name(uint8_t id, size_t *len);
/* Write the host lines counted in db's batch (a->hosts) into hosts and
 * host_minute, at wall clock now (inside the open transaction). */
int db_hosts_flush(struct db *db, int64_t now);
struct agg;
/* Count a line of host into a (db_host_line() of the pipe's stage). */
void db_agg_host_line(struct agg *a, const char *host, size_t n, int64_t ts_us);

/* The batch accumulator: counts keyed by a fixed-size, zero-padded key so
 * that keys compare with memcmp. One open-addressing table for everything
 * a batch counts; flushed into SQLite by db_commit(). */
enum agg_table {
	AGG_MINUTE = 1,
	AGG_HOUR,
	AGG_TOP,
	AGG_KIND,
	AGG_CAT,
	AGG_CMIN,
	AGG_CHOUR,
	AGG_HMIN,  /* host_rollup_minute: host, t, kind, cat, cc */
	AGG_HHOUR, /* host_rollup_hour (derived from AGG_HMIN at flush) */
	AGG_HTOP   /* host_top_hour: host, t, scope, kind, cat, plen, fam, addr */
};

struct agg_key {
	int64_t t;
	uint8_t table; /* enum agg_table */
	uint8_t kind;
	uint8_t cat;
	uint8_t cc;
	uint8_t scope;
	uint8_t plen;
	uint8_t fam;
	uint8_t host; /* AGG_H*: the host's id (db_host_id()); 0 elsewhere */
	uint8_t addr[16];
};

struct agg_slot {
	struct agg_key key;
	int64_t n;
	uint64_t hash; /* of key, never 0; 0 = a free slot */
};

#define AGG_MIN_CELLS (EV__COUNT * CAT__COUNT * CC__COUNT)

struct agg {
	struct agg_slot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t used;
	uint32_t *order; /* indexes of the used slots, in insertion order */
	uint32_t last;	 /* the slot agg_add() hit last (valid while used > 0) */
	/* The overall minute rollup of one minute (min_t), dense by kind x
	 * category x code class: every event counts there, so it costs an
	 * increment instead of a hash probe. Moved into the table (agg_spill)
	 * when another minute comes and before a flush. */
	int64_t min_t;
	uint32_t min_n[AGG_MIN_CELLS];
	uint16_t min_cells[AGG_MIN_CELLS]; /* the non-zero cells of min_n */
	size_t min_used;
	/* The host of every event of the dense minute so far (min_host_set),
	 * until one of another host (or none) comes (min_mixed): while one
	 * host has them all, its own minute rollup (AGG_HMIN) is the dense one
	 * and costs nothing per event; from the first other host on, the
	 * minute's events are counted per host in the table. */
	uint8_t min_host;
	bool min_host_set, min_mixed;
	/* Lines per host (db_host_line()): how many, and the log time of the
	 * newest, by host id; hosts[0..nhosts) are the ids touched. */
	int64_t host_lines[DB_HOST_IDS];
	int64_t host_newest[DB_HOST_IDS];
	uint8_t hosts[DB_HOST_IDS];
	size_t nhosts;
};

void agg_add(struct agg *a, const struct agg_key *k, int64_t n);
/* Count one event of minute t (seconds) in the overall minute rollup. */
void agg_minute(struct agg *a, int64_t t, unsigned kind, unsigned cat, unsigned cc);
/* Move the dense minute into the table (agg_add). */
void agg_spill(struct agg *a);
void agg_clear(struct agg *a);
void agg_free(struct agg *a);

/* Event ids: (second of log time) << EVENT_ID_BITS | number in that second. */
#define EVENT_ID_BITS 20

/* Rows per multi-row upsert when a batch's counts are flushed. */
#define FLUSH_ROWS 64

struct db {
	sqlite3 *h;
	bool rw;
	bool created; /* this open made the schema from nothing */
	bool in_batch;
	char path[PATH_MAX];
	char err[512];
	sqlite3_stmt *st[Q__COUNT];
	/* Statements of the queries (queries.c), cached by their SQL text's
	 * address: each is a static string. */
	const char *qsql[96];
	sqlite3_stmt *qst[96];
	size_t nq;
	struct agg agg;
	/* The last event id given in this batch (-1: none yet); see next_event_id(). */
	int64_t last_event_id;
	/* The highest id in the events table as of the last look in this
	 * batch (-1: none; -2: not looked yet). Only this connection inserts
	 * while the batch is open, so a newer second above it needs no lookup;
	 * a value too high (rows deleted meanwhile) only costs a lookup. */
	int64_t top_event_id;
	/* Event rows inserted in this batch (the 'rows' counter). */
	int64_t batch_rows;
	/* Multi-row upserts of the flush (events.c), one per destination table,
	 * and room for the prefix texts of one statement's rows. */
	sqlite3_stmt *multi[9];
	char flush_text[FLUSH_ROWS][PREFIX_STRLEN];
	/* The pipe whose writer this connection's reader side waits on
	 * (pipe.c): db_decisions_count() adds its staged decisions. */
	struct db_pipe *pipe;
	/* Lines of hosts come from `run` (true) or an import (false, the
	 * pipe's writer): only live lines set hosts.last_seen and lag. */
	bool hosts_live;
	/* This open found the database not closed cleanly (SQLite recovered
	 * its write-ahead log) and checked it (PRAGMA quick_check, check_us). */
	bool unclean;
	int64_t check_us;
};

/* The cached statement for a static SQL string, reset and unbound; NULL
 * (error set) when it does not prepare. */
sqlite3_stmt *db_stmt_sql(struct db *db, const char *sql);

/* db_open() that migrates a RW database only up to version target (for the
 * migration tests). */
struct db *db_open_version(const char *path, int flags, int target, char *err, size_t errsz);

/* The statement id, reset and with its bindings cleared; NULL (and the
 * error set) when it does not prepare. */
sqlite3_stmt *db_stmt(struct db *db, enum stmt_id id);
/* Set the error from a format, or from SQLite's last message (what: the
 * operation that failed). Both return -1. */
int db_fail(struct db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int db_fail_sql(struct db *db, const char *what);
/* Run SQL text (no results) once; for schema work and one-off statements. */
int db_exec(struct db *db, const char *sql);
/* Step a statement that returns no rows, then reset it. 0 or -1. */
int db_step_done(struct db *db, sqlite3_stmt *st, const char *what);
/* Prepare a one-off statement (freed by the caller with sqlite3_finalize). */
sqlite3_stmt *db_prepare(struct db *db, const char *sql);

/* Decode an events row selected with the column order of Q_EVENTS_SCAN
 * (id, ts, mta, ..., raw, source_id); spans point into the statement. */
void db_event_from_row(sqlite3_stmt *st, struct event *ev, int64_t *id, int64_t *source_id);
/* Step st (bound, selecting the event columns) and call cb for each row;
 * reset it. 0, cb's non-zero return, or -1 on an SQLite error (logged). */
int db_events_scan_rows(struct db *db, sqlite3_stmt *st, db_event_cb cb, void *arg);
/* Add n to counters(name, key) (name a literal, key copied); 0 or -1. */
int db_counter_add(struct db *db, const char *name, const char *key, int64_t n);
#define DB_EVENT_COLS                                                                                       \
	"id, ts, mta, host, program, pid, queue_id, ip, ip_bin, cls, port, rdns, helo, mail_from, rcpt_to," \
	" user, stage, kind, code, dsn, category, text, raw, source_id"

/* Decode a decisions row (DECISION_COLS order, see db.c). */
void db_decision_from_row(sqlite3_stmt *st, struct decision *d, struct db_decision_info *info);

/* Add n (may be negative) to the count of event rows, in the open transaction. */
int db_rows_add(struct db *db, int64_t n);

/* Flush the accumulator into the tables (inside the open transaction). */
int db_agg_flush(struct db *db);

/* The pieces of db_event_insert() (events.c), for the pipe (pipe.c):
 * check an event (0, or -1 with the error set on db), count it into a, say
 * whether it gets a row, and insert its row in db's open batch (the id, or
 * -1). */
int db_event_check(struct db *db, const struct event *ev);
void db_count_event(struct agg *a, const struct event *ev);
/* What db_count_event() reads of an event, for counting it later (the
 * pipe's writer thread counts what the engine thread staged). */
struct db_countrec {
	int64_t ts_us;
	int16_t code;
	uint8_t kind, cat;
	uint8_t host; /* db_host_id() of the event's host field */
	bool has_ip;
	struct ipaddr ip;
	struct prefix cls;
};
void db_countrec_of(struct db_countrec *r, const struct event *ev);
void db_count_rec(struct agg *a, const struct db_countrec *r);
bool db_event_is_evidence(const struct event *ev);
/* The kinds that get an events row (and per-class counts). */
static inline bool db_kind_is_evidence(enum ev_kind k)
{
	return k == EV_REJECT || k == EV_AUTH_FAILURE || k == EV_PROTOCOL || k == EV_LOST;
}
int64_t db_event_row(struct db *db, const struct event *ev, int64_t source_id);

/* db_decisions_count() by SQL only, and with a pipe's staged decisions. */
int64_t db_decisions_count_sql(struct db *db, const struct prefix *p, int64_t since);
int64_t db_pipe_count_decisions(struct db_pipe *pipe, const struct prefix *p, int64_t since);

/* The 17-byte key of an address in the events table (family, 16 bytes),
 * and the [lo, hi] keys of every address inside a prefix. */
void db_ip_key(const struct ipaddr *ip, uint8_t out[17]);
void db_prefix_range(const struct prefix *p, uint8_t lo[17], uint8_t hi[17]);

/* JSON helpers: a string from log bytes (invalid UTF-8 -> U+FFFD, NUL kept
 * as \u0000), never NULL; a time as RFC 3339 text; a column as a string or
 * null. All return new references. */
json_t *db_json_bytes(const char *p, size_t n);
json_t *db_json_time(int64_t secs);
json_t *db_json_column(sqlite3_stmt *st, int col);

/* Cursors: "<tag>.<a>[.<b>]" with decimal numbers. Parse returns 0 or -1. */
void db_cursor_format(char *out, size_t outsz, char tag, int64_t a, int64_t b, bool two);
int db_cursor_parse(const char *s, char tag, int64_t *a, int64_t *b, bool two);

/* A read snapshot when no batch is open (the writer's own batch already is
 * one). Returns whether a transaction was started here, for db_read_end(). */
static inline bool db_read_begin(struct db *db)
{
	if (db->in_batch || !sqlite3_get_autocommit(db->h))
		return false;
	return db_exec(db, "BEGIN") == 0;
}

static inline void db_read_end(struct db *db, bool started)
{
	if (started)
		db_exec(db, "COMMIT");
}

/* obj[key] = v and arr += v, taking v's reference; out of memory is fatal. */
static inline void db_json_set(json_t *obj, const char *key, json_t *v)
{
	if (!v || json_object_set_new(obj, key, v) < 0)
		fatal("out of memory (json)");
}

static inline void db_json_append(json_t *arr, json_t *v)
{
	if (!v || json_array_append_new(arr, v) < 0)
		fatal("out of memory (json)");
}

/* A failed read: drop what was built, end the snapshot, return NULL. */
static inline json_t *db_read_fail(struct db *db, json_t *partial, bool started)
{
	json_decref(partial);
	db_read_end(db, started);
	return NULL;
}

/* Clamp a page size to 1..1000. */
static inline int db_clamp_limit(int limit)
{
	return limit < 1 ? 1 : limit > 1000 ? 1000 : limit;
}

/* Bind a possibly-empty byte string as TEXT (NULL when empty). */
int db_bind_span(sqlite3_stmt *st, int i, const char *p, size_t n);

#endif
