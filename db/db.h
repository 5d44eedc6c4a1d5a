/*
 * db.h - mxwarden's storage: one SQLite database (WAL) holding evidence
 * events with their raw lines, per-minute and per-hour rollups (overall and
 * per IP class), per-IP and per-class hourly counts, the log sources and their offsets, decisions with
 * their evidence, an audit trail, and lifetime counters.
 *
 * Where it sits: beside the pipeline. It includes base/ only. It is the only
 * module that speaks SQL: other modules call the functions below, named for
 * what they need, and never build SQL text. It must never decide anything
 * (no rules, no thresholds): it stores and answers.
 *
 * Connections. A struct db is one SQLite connection with its own cache of
 * prepared statements; use it from one thread at a time. One process opens
 * ONE read-write connection (the engine thread: the collector, the
 * aggregator) and any number of read-only ones (web threads, the CLI). WAL
 * mode lets readers run beside the writer: a reader never blocks ingest, and
 * a writer waits (busy_timeout, 5 s) only for another writer, e.g. a
 * `mxwarden block` run while the daemon runs.
 *
 * Batches. The writer groups work in transactions: db_begin(), then any
 * number of db_event_insert(), db_unparsed_add(), db_source_update_offset(),
 * db_decision_insert()..., then db_commit(). Everything of the batch,
 * including the file offsets, becomes durable together or not at all; a
 * crash or db_rollback() leaves every table as it was before db_begin().
 * Counts (rollups, top, counters) are accumulated in memory during the batch
 * and written by db_commit() inside the same transaction. Write functions
 * called with no batch open run in a transaction of their own (autocommit).
 *
 * Errors. Functions return 0 (or a count, an id) on success and -1 on
 * failure; the message is then available from db_errmsg() until the next
 * call on that connection. Functions returning json_t * return a NEW
 * reference (the caller json_decref()s it), or NULL on failure. Bad
 * parameters (an unknown metric, a bad cursor) are failures with a message
 * saying so, never a crash. A failed write inside a batch leaves the batch
 * open; the caller should db_rollback() it.
 *
 * Bytes. Text taken from log lines (host, HELO, addresses, reply text, the
 * raw line) is stored byte for byte: NUL, invalid UTF-8 and control bytes
 * survive a round trip. JSON output converts them: invalid UTF-8 becomes
 * U+FFFD, NUL becomes \u0000 (jansson escapes controls).
 *
 * Time. Events carry the log's own time (ts_us). Rollups are keyed by that
 * time. Whether a decision is in force is judged against the caller's `now`
 * (seconds), so importing last month's log stores its history without
 * blocking anybody today.
 */
#ifndef MXWARDEN_DB_H
#define MXWARDEN_DB_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "base/base.h"

struct db;

enum db_flags {
	DB_RO = 0,	  /* read-only; the file must exist with a known schema */
	DB_RW = 1 << 0,	  /* read-write; creates the parent directory, the file, the schema */
	DB_FAST = 1 << 1, /* RW only: synchronous=OFF (bench/tests); default is NORMAL */
	DB_BULK = 1 << 2  /* RW only: a page cache of 256 MiB instead of 32 (import) */
};

/*
 * Open the database at path. DB_RW creates the parent directory (mode 0750)
 * and the file when missing and migrates the schema forward (PRAGMA
 * user_version); a file whose schema is newer than this program is refused.
 * DB_RO opens an existing database read-only (WAL readers never block the
 * writer). Returns a new handle, or NULL with a message in err (size errsz).
 */
struct db *db_open(const char *path, int flags, char *err, size_t errsz);
/* Close the connection; an open batch is rolled back. db_close(NULL) is a no-op. */
void db_close(struct db *db);
/* The last error message of this connection ("" when none). Borrowed. */
const char *db_errmsg(const struct db *db);
/* The schema version this program writes (PRAGMA user_version). */
#define DB_SCHEMA_VERSION 10
/* Size in bytes of the database file plus its WAL, or -1. */
int64_t db_size_bytes(const struct db *db);
/* Size in bytes of the database file (wal false) or of its write-ahead
 * log (true: 0 when there is none), or -1. */
int64_t db_file_bytes(const struct db *db, bool wal);

/*
 * Integrity. db_open(DB_RW) checks a database that was not closed cleanly
 * (the last writer died: SQLite recovered its write-ahead log) with PRAGMA
 * quick_check before anything else, and refuses a damaged one: NULL, and a
 * message in err that says so and how to recover (move the file aside,
 * rebuild it from the logs with `mxwarden import`; the blocklists keep their
 * last content meanwhile). quick_check reads the whole file (here 3.5 s for
 * 2.5 GB in the page cache, 47 s from a cold disk), so at start only after
 * an unclean stop. Any statement that meets a
 * damaged page fails with a message that says the database is damaged.
 *
 * db_quick_check(): PRAGMA quick_check, or integrity_check (slower: also
 * index contents) when full. Returns 0 when sound, 1 when damaged (the
 * problems found, about 20 at most, appended to problems one per entry,
 * printable ASCII), -1 when the check itself failed (db_errmsg()).
 * db_damaged_message(): the message for a damaged database at path: its
 * first problem, then how to recover; under 512 bytes for a path of 100.
 * db_unclean(): whether this open found an unclean stop, and how long its
 * check took (check_us may be NULL).
 */
int db_quick_check(struct db *db, bool full, struct strv *problems);
void db_damaged_message(const char *path, const char *problems, struct buf *out);
bool db_unclean(const struct db *db, int64_t *check_us);
/*
 * The check at open may outlast a supervisor's start-up timeout (systemd's
 * TimeoutStartSec=): fn, when set, is called as it begins and then about
 * once a second while it runs (SQLite's progress handler, on the opening
 * thread), with a line that says what is done ("checking ... MB after an
 * unclean stop"). Process-wide; set before db_open(); NULL: none.
 */
typedef void (*db_busy_fn)(void *arg, const char *what);
void db_set_busy_hook(db_busy_fn fn, void *arg);

/* -------------------------------------------------------------- batches */

/* Start a write transaction (BEGIN IMMEDIATE). A second db_begin() while
 * one is open is an error (-1). */
int db_begin(struct db *db);
/* Flush the batch's accumulated counts and commit. On failure the batch is
 * rolled back (nothing of it is stored) and -1 returned. */
int db_commit(struct db *db);
/* Drop the batch: every table is as before db_begin(). */
int db_rollback(struct db *db);
/* True between db_begin() and db_commit()/db_rollback(). */
bool db_in_batch(const struct db *db);

/* ------------------------------------------------------ pipelined batches */

/*
 * A pipe (bulk import): the calling thread stages a batch in memory while
 * one writer thread, on a connection of its own, writes the previous batch
 * in one transaction (its events, counts, decisions, unparsed counts and
 * offsets, exactly as db_begin() ... db_commit() would). So parsing and
 * SQLite run on two cores, and still only one thread writes SQLite.
 *
 * db_pipe_new(db, flags): opens the writer connection (flags as db_open(),
 * DB_RW implied) and starts the thread. db must be a RW connection with no
 * batch open; until db_pipe_free() it may only be used for reads, and its
 * db_decisions_count() also counts the decisions staged and not committed
 * yet (the same number a single connection's open batch would give).
 * NULL with a message in err on failure.
 *
 * Staging (calling thread): db_pipe_event() checks an event, keeps what
 * the rollups count of it (the writer counts it) and copies it when it
 * gets a row (the spans are read during the call only); it returns 0 for a
 * counted-only event, -1 for an invalid one (message on db), and for a row
 * a handle > 0 that stands for its id (DB_PIPE_ROW set: never a real id)
 * until the writer assigns it: db_pipe_attribute() (db_event_attribute()
 * of that row, by handle or by real id) and db_pipe_attribution_dropped()
 * are written in the batch after its events. Handles stay valid for the
 * pipe's life. db_pipe_decision() copies a
 * decision (it gets its id when written: callers see none);
 * db_pipe_unparsed() adds to a count by reason (-1 for a bad reason);
 * db_pipe_offset() sets a source's offset and lines_read for the batch
 * (the last call per source wins).
 *
 * db_pipe_submit(): waits until the writer finished the previous batch,
 * then hands it the staged one and returns 0 at once. Once a write failed
 * (database locked past the busy timeout, disk full), that batch is rolled
 * back, nothing later is written, and submit/drain return -1
 * (db_pipe_errmsg() says why): the committed batches stay, the staged one
 * is dropped. db_pipe_drain(): waits until the writer is idle; 0 or -1 as
 * submit; drained (and with nothing staged), db may be written again
 * (db_begin() ... db_commit()) before more is staged. db_pipe_free(): stops the thread after the batch it
 * writes and closes its connection; what was staged and not submitted is dropped. db_pipe_free(NULL) is a
 * no-op.
 */
struct db_pipe;
#define DB_PIPE_ROW ((int64_t)1 << 62)
struct db_pipe *db_pipe_new(struct db *db, int flags, char *err, size_t errsz);
void db_pipe_free(struct db_pipe *p);
int64_t db_pipe_event(struct db_pipe *p, const struct event *ev, int64_t source_id);
void db_pipe_attribute(struct db_pipe *p, int64_t row, const struct ipaddr *ip, const struct prefix *cls);
void db_pipe_attribution_dropped(struct db_pipe *p, int64_t n);
void db_pipe_decision(struct db_pipe *p, const struct decision *d, const char *evidence_json,
		      const char *who);
/* A change of a decision staged with db_pipe_decision() (the caller knows
 * no id): the writer finds it by prefix and since (db_decision_find()) and
 * applies db_decision_upgrade(d, from, evidence_json, at) or
 * db_decision_end(at, "engine", why), in staging order. */
void db_pipe_decision_upgrade(struct db_pipe *p, const struct decision *d, enum response from,
			      const char *evidence_json, int64_t at);
void db_pipe_decision_end(struct db_pipe *p, const struct decision *d, int64_t at, const char *why);
int db_pipe_unparsed(struct db_pipe *p, const char *reason, int64_t n);
void db_pipe_offset(struct db_pipe *p, int64_t source_id, int64_t offset, int64_t lines_read, int64_t now);
/* A checkpoint with the staged batch (db_checkpoint_put() and, with a
 * source_id, db_checkpoint_set_source() in its transaction). Takes data
 * (malloc'd). */
void db_pipe_checkpoint(struct db_pipe *p, int64_t at, int64_t newest_us, int64_t lines, char *data,
			size_t len, int64_t source_id, int64_t source_offset, int64_t source_lines);
int db_pipe_submit(struct db_pipe *p);
int db_pipe_drain(struct db_pipe *p);
const char *db_pipe_errmsg(struct db_pipe *p);
/* Evidence events staged in the open batch (tests). */
size_t db_pipe_staged_events(const struct db_pipe *p);

/* --------------------------------------------------------------- events */

/*
 * Reply-code classes used by rollups and timeseries: "421", "451", "4xx"
 * (any other 4xx), "5xx", "none" (no code, or a 2xx/3xx).
 */
enum code_class { CC_421, CC_451, CC_4XX, CC_5XX, CC_NONE, CC__COUNT };
enum code_class code_class_of(int code);
const char *code_class_name(enum code_class c);

/*
 * Record one event in the open batch (RW, inside db_begin()). Every event
 * counts in the rollups (minute and hour, by kind x category x code class)
 * and in the lifetime counters by kind and category; connects and evidence
 * kinds with an IP also count in the per-IP and per-class hourly counts
 * (db_top_json); evidence kinds with a class also count in the per-class
 * rollups (minute and hour, by class x kind x category x code class; the
 * class filter of db_timeseries_class_json). Events that can become evidence (EV_REJECT,
 * EV_AUTH_FAILURE, EV_PROTOCOL, EV_LOST) also get a row of their own with
 * every field and the raw line as a BLOB; connects, disconnects and accepts
 * do not (they are counted only).
 * source_id is the db_source the line came from, 0 when none.
 * Returns the new row id (> 0), 0 for a counted-only event, -1 on error
 * (also for an event time before 1970).
 *
 * Event ids follow log time: id = (ts in seconds) * 2^20 + n, n counting
 * the events of that second in the order they were inserted. So "newest
 * first" is "highest id first", and ids stay below 2^53 (exact in
 * JavaScript) until the year 2242.
 * The spans in ev are read during the call only.
 */
int64_t db_event_insert(struct db *db, const struct event *ev, int64_t source_id);

/*
 * Give the stored event id (stored without a client: a Sendmail rejection
 * logged before the line naming its client) the client ip and its class
 * cls, in the open batch (RW). Also counts it where db_event_insert() counts
 * events with a client (top_hour by IP and class, class_minute/hour).
 * Returns 1 when the row changed, 0 when it is gone or has a client
 * already (so a repeated attribution changes nothing), -1 on error.
 */
int db_event_attribute(struct db *db, int64_t id, const struct ipaddr *ip, const struct prefix *cls);
/* Count n events without a client that no line attributed (the
 * aggregator dropped them), in the open batch. Both counts are in
 * db_stats_json() as "attribution": {"attributed": N, "unattributed": N}.
 * Returns 0 or -1. */
int db_attribution_dropped(struct db *db, int64_t n);

/* Count n lines that gave no event or were refused, by reason (a short
 * ASCII word: "unparsed", "too_long", "bad_ip", ...). RW; in the batch when
 * one is open. */
int db_unparsed_add(struct db *db, const char *reason, int64_t n);

/*
 * Call cb for every stored evidence event with ts_us >= from_us (exactly),
 * oldest first: by id, i.e. by log second, then insertion order (e.g. to
 * rebuild the aggregator's windows after a restart). The event's spans point
 * into SQLite's memory and are valid during the call only; ev->line is the
 * raw line. cb returns 0 to go on, non-zero to stop (that value is
 * returned). Returns 0, the callback's value, or -1.
 */
typedef int (*db_event_cb)(void *arg, int64_t id, const struct event *ev);
int db_events_scan(struct db *db, int64_t from_us, db_event_cb cb, void *arg);
/* The log second of the newest stored event (by id, which follows log
 * time), 0 when there is none, or -1. */
int64_t db_events_newest(struct db *db);

/*
 * Call cb for the accepted messages counted per client and hour (top_hour)
 * from hour t >= from on, oldest first: n messages from ip in the hour
 * starting at t. Accepted mail is not stored row by row; this is what lets
 * a restart without a checkpoint know who delivered. Returns 0, the
 * callback's value, or -1.
 */
typedef int (*db_accept_cb)(void *arg, int64_t t, const struct ipaddr *ip, int64_t n);
int db_accepts_scan(struct db *db, int64_t from, db_accept_cb cb, void *arg);

/* -------------------------------------------------------------- sources */

enum db_source_kind { DB_SRC_FOLLOW, DB_SRC_IMPORT, DB_SRC_SYSLOG, DB_SRC_STDIN, DB_SRC_JOURNAL };
const char *db_source_kind_name(enum db_source_kind k);

/* The collector decides how many bytes the fingerprint covers (fp_len is
 * min(file size, its chosen N)); db_fingerprint() is the hash to use. */
uint64_t db_fingerprint(const void *p, size_t n);

/*
 * A log source: a followed or imported file, stdin, or a syslog listener.
 * A file is identified by (dev, ino) AND its fingerprint (fp_hash of its
 * first fp_len bytes), so that a recycled inode or a truncated-and-rewritten
 * file is a new source. offset is the byte offset after the last line
 * committed; lines_read the lines consumed from it so far.
 */
struct db_source {
	int64_t id;
	enum db_source_kind kind;
	char path[PATH_MAX];
	uint64_t dev, ino;
	uint64_t fp_hash;
	int64_t fp_len;
	int64_t offset;
	int64_t lines_read;
	int64_t first_seen; /* UTC seconds */
	int64_t last_read;  /* UTC seconds of the last db_source_update_offset(), 0 = never */
};

/*
 * Find the source with the same kind, dev, ino, fp_hash and fp_len as s
 * (for DB_SRC_SYSLOG, DB_SRC_STDIN and DB_SRC_JOURNAL: the same kind and path); when found,
 * fill s with the stored row (id, offset, lines_read, ...; path is updated
 * in the database when it changed, e.g. after a rename) and return 0. When
 * not found, insert s as a new source with offset 0, lines_read 0,
 * first_seen = now, set s->id and return 1. -1 on error. RW.
 */
int db_source_get_or_create(struct db *db, struct db_source *s, int64_t now);
/*
 * Find a source by fingerprint alone (fp_hash and fp_len; any kind, dev,
 * ino), the most recently read first: a rotated, compressed or copied file
 * whose first bytes match. Returns 1 and fills out, 0 when none, -1.
 */
int db_source_find_fp(struct db *db, uint64_t fp_hash, int64_t fp_len, struct db_source *out);
/* Call cb for every source, by id. cb returns non-zero to stop. Returns 0,
 * the callback's value, or -1. */
typedef int (*db_source_cb)(void *arg, const struct db_source *s);
int db_sources_list(struct db *db, db_source_cb cb, void *arg);
/*
 * Set the committed position of a source: offset (bytes) and lines_read
 * (the absolute total, not a delta), last_read = now. Call it in the batch
 * that holds the events of those lines, so both commit together. The
 * increase of lines_read also feeds the per-minute ingest counts (lines/s in
 * db_summary_json). Returns 0, or -1 (also for an unknown id). RW.
 */
int db_source_update_offset(struct db *db, int64_t id, int64_t offset, int64_t lines_read, int64_t now);
/*
 * The journal's position (DB_SRC_JOURNAL): set the cursor of the last entry
 * read and lines_read (as db_source_update_offset, with offset 0), in the
 * batch that holds the events of those entries. db_source_cursor() copies
 * the stored cursor into out (n bytes): 1, 0 when none is stored (or it
 * does not fit), -1 on error.
 */
int db_source_set_cursor(struct db *db, int64_t id, const char *cursor, int64_t lines_read, int64_t now);
int db_source_cursor(struct db *db, int64_t id, char *out, size_t n);
/* Record a new identity of a source: its path, dev, ino and fingerprint
 * (a small file's fingerprint grows until it reaches the collector's N).
 * Returns 0, or -1. RW. */
int db_source_update_identity(struct db *db, const struct db_source *s);

/* ------------------------------------------------------------ decisions */

/* What is stored with a decision besides struct decision. Strings are
 * borrowed, valid during a callback only; NULL when not set. */
struct db_decision_info {
	const char *evidence_json; /* the aggregator's evidence object, as text */
	const char *created_by;	   /* "engine", "cli:root", "web:admin" */
	int64_t created_at;	   /* wall-clock seconds when stored */
	int64_t ended_at;	   /* 0 when not ended early */
	const char *ended_by;
	const char *end_reason;
};

/*
 * Store d (id must be 0) with its evidence (a JSON text, may be NULL) and
 * who made it; set d->id. created_at is the wall clock (clock_now()).
 * Returns 0, or -1. RW, in the batch when one is open.
 */
int db_decision_insert(struct db *db, struct decision *d, const char *evidence_json, const char *who);
/*
 * End decision id before its until: ended_at = at, ended_by = who,
 * end_reason = why. Returns 0 when it was ended now, 1 when there is no
 * such decision or it was already ended, -1 on error. RW.
 */
int db_decision_end(struct db *db, int64_t id, int64_t at, const char *who, const char *why);
/*
 * End every decision whose until has passed at now and that is not ended
 * yet: ended_at = until, ended_by = who, end_reason = "expired". An expiry
 * is an event: once recorded, no later clock (a step back) makes the
 * decision active again. Reads first and writes only when something
 * expired, so an idle call takes no write lock. Returns how many were
 * ended, or -1. RW, in the batch when one is open.
 */
int64_t db_decisions_expire(struct db *db, int64_t now, const char *who);
/*
 * An automatic decision in force was upgraded (its response rose, e.g.
 * defer -> reject): d holds the new response, score, rule, reason and until
 * (never earlier than before), evidence_json the refreshed explanation.
 * Updates the decision row (only while it is not ended), appends a row to
 * its change history (db_decision_changes_json) and to the audit trail.
 * Returns 0, 1 when the decision is unknown or ended, -1. RW, in the batch
 * when one is open.
 */
int db_decision_upgrade(struct db *db, const struct decision *d, enum response from,
			const char *evidence_json, int64_t at);
/* The changes of decision id after it was made, oldest first:
 * [{"at", "change": "upgrade", "from", "response", "score", "rule",
 * "reason", "until"}]. A new array, or NULL on error. */
json_t *db_decision_changes_json(struct db *db, int64_t id);
/* Callback for decision listings: non-zero stops the listing. */
typedef int (*db_decision_cb)(void *arg, const struct decision *d, const struct db_decision_info *info);
/*
 * Every decision in force at now (now < until, not ended early), oldest
 * first (by since, then id). Returns 0, the callback's value, or -1.
 */
int db_decisions_active(struct db *db, int64_t now, db_decision_cb cb, void *arg);
/*
 * Every decision that was in force at the instant at: made by then (manual
 * ones whenever: they carry wall-clock times), until after it, not ended by
 * then (ended_at later or none), oldest first. What a judge whose clock
 * stood at `at` held (aggregator_restore): a decision ended since is in it.
 * Returns 0, the callback's value, or -1.
 */
int db_decisions_in_force_at(struct db *db, int64_t at, db_decision_cb cb, void *arg);
/*
 * Every decision whose prefix contains q or lies inside q (same family),
 * active or not, newest first (by since, then id). Returns 0, the
 * callback's value, or -1.
 */
int db_decisions_history(struct db *db, const struct prefix *q, db_decision_cb cb, void *arg);
/* How many decisions (any state, manual or not) were made on exactly p with
 * since >= since: the escalation count. Returns the count, or -1. */
int64_t db_decisions_count(struct db *db, const struct prefix *p, int64_t since);
/* The id of the newest decision on exactly p made at since: the id, 0 when
 * there is none, -1 on error. */
int64_t db_decision_find(struct db *db, const struct prefix *p, int64_t since);
/* Fetch one decision by id. Returns 1 and calls cb once, 0 when unknown, -1. */
int db_decision_get(struct db *db, int64_t id, db_decision_cb cb, void *arg);

/* Every decision made in [from, to) (since, UTC seconds), manual or not,
 * active or ended, oldest first (by since, then id). Returns 0, the
 * callback's value, or -1. */
int db_decisions_made(struct db *db, int64_t from, int64_t to, db_decision_cb cb, void *arg);
/*
 * A manual block given again (the same prefix, `mxwarden block` or POST
 * blocks) makes the one in force last longer instead of adding a second:
 * until = max(until, until), the stronger of the two responses, the new
 * reason (when not NULL); a row "extend" in its changes (from_response:
 * the response before). Only a manual decision that is not ended. Returns
 * 0, 1 when there is no such decision, -1. RW.
 */
int db_decision_extend(struct db *db, int64_t id, int64_t until, enum response response, const char *reason,
		       int64_t at);

/* A decision listing for `mxwarden decisions` and the dashboard's panel. */
struct db_decision_filter {
	bool active_only; /* in force at now */
	int64_t since;	  /* made at or after (0: any) */
	const char *rule; /* NULL: any */
	int scope;	  /* SCOPE_IP, SCOPE_CLASS, -1: any */
	int manual;	  /* 1 manual only, 0 automatic only, -1 both */
};
/*
 * Decisions matching f, newest first (by id): {"items": [...], "next":
 * cursor|null}. An item is compact: {"id", "prefix", "scope", "rule",
 * "response", "since", "until", "ended_at", "end_reason", "by" (who made
 * it), "events" (evidence lines seen, null for manual ones), "reason",
 * "manual", "active"}.
 */
json_t *db_decisions_json(struct db *db, int64_t now, const struct db_decision_filter *f, int limit,
			  const char *cursor);

/* ----------------------------------------------------------------- allows */

/*
 * An allow made by hand (schema 8): no decision may block a prefix that
 * overlaps it until `until`; the running daemon reads the active ones
 * every second (the emitters drop entries that overlap them, the
 * aggregator decides nothing on them). Strings are borrowed in callbacks;
 * on insert reason and created_by are the caller's.
 */
struct db_allow {
	int64_t id;
	struct prefix prefix;
	int64_t since, until; /* UTC seconds (wall clock) */
	const char *reason;
	const char *created_by; /* "cli:root", "web:192.0.2.7" */
	int64_t created_at;
	int64_t ended_at; /* 0: not ended early */
	const char *ended_by, *end_reason;
};
/* Store a (id 0); set a->id. 0 or -1. RW. */
int db_allow_insert(struct db *db, struct db_allow *a);
/* The allow id lasts until max(until, until), with reason when not NULL.
 * 0, 1 when it is unknown or ended, -1. RW. */
int db_allow_extend(struct db *db, int64_t id, int64_t until, const char *reason);
/* End allow id at `at`. 0, 1 when it is unknown or ended already, -1. RW. */
int db_allow_end(struct db *db, int64_t id, int64_t at, const char *who, const char *why);
typedef int (*db_allow_cb)(void *arg, const struct db_allow *a);
/* The allows in force at now, oldest first. 0, the callback's value, or -1. */
int db_allows_active(struct db *db, int64_t now, db_allow_cb cb, void *arg);
/* The prefixes of the allows in force at now, in out (emptied first;
 * prefix_list_free() it). 0 or -1. */
int db_allows_prefixes(struct db *db, int64_t now, struct prefix_list *out);
/* Allows newest first: active_only those in force, else those made at or
 * after since and those in force. 0, the callback's value, or -1. */
int db_allows_list(struct db *db, int64_t now, bool active_only, int64_t since, db_allow_cb cb, void *arg);
/* {"id", "prefix", "scope", "since", "until", "reason", "by", "active",
 * "ended_at", "ended_by", "end_reason"}: a new object. */
json_t *db_allow_json(const struct db_allow *a, int64_t now);

/*
 * What the hourly counts say about one client (sc SCOPE_IP, p a host) or
 * one class (SCOPE_CLASS, p a class network) since the hour `since`:
 * {"scope", "connections", "delivered" (accepted messages; null for a
 * class), "refused" (rejections), "other_evidence" (AUTH failures,
 * protocol errors, lost connections), "first_hour", "last_hour" (RFC 3339
 * starts of the hours, null when never seen)}. NULL on error.
 */
json_t *db_seen_json(struct db *db, const struct prefix *p, enum scope sc, int64_t since);

/* The id of the newest audit row (0: none), or -1: an operator acted
 * since it was last read (the engine lets a deliberate change through the
 * circuit breaker). */
int64_t db_audit_last_id(struct db *db);

/* Append to the audit trail (manual blocks, unblocks, config reloads).
 * prefix may be NULL. Strings are stored as given. Returns 0, or -1. RW. */
int db_audit_add(struct db *db, int64_t when, const char *who, const char *action,
		 const struct prefix *prefix, const char *reason);

/* ----------------------------------------------- aggregator checkpoint */

/*
 * The aggregator's state (an opaque image, aggregator/state.c) kept so
 * that a restart after a crash loads it and replays only the evidence rows
 * stored after it. The image is a file of its own beside the database,
 * DB.ckpt-SEQ (0640, written whole, fsync'd and renamed into place, with
 * its length and a hash in a header); the database's one agg_checkpoint
 * row names it, with max_event_id, the largest event id the image holds.
 * So the database stays proportional to the events (an image of a million
 * tracked addresses is hundreds of MB, rewritten at each checkpoint), and
 * the image can be written by another process (the engine forks one, so
 * that a big image never stalls ingestion). A file the committed row does
 * not name (an image whose batch was refused, the one before) goes at the
 * next checkpoint. A database in memory keeps the image in its row.
 */
struct db_checkpoint {
	int64_t at;	      /* wall clock when written */
	int64_t newest_us;    /* the newest event time the image holds */
	int64_t max_event_id; /* events with a larger id were stored after it */
	int64_t lines;	      /* lines read by the writer when written (for logs) */
	void *data;	      /* the image (malloc'd by db_checkpoint_get) */
	size_t len;
	/* the file source whose lines the image holds up to source_offset
	 * (source_lines lines), 0 = none (db_checkpoint_set_source; table
	 * agg_checkpoint_source) */
	int64_t source_id, source_offset, source_lines;
};
/* Write the image (through the returned FILE, then db_ckpt_file_finish)
 * to DB.ckpt-SEQ of the database at db_path. Uses no database connection,
 * so a forked child can write it. NULL with err set when it cannot. */
struct db_ckpt_file;
struct db_ckpt_file *db_ckpt_file_begin(const char *db_path, uint64_t seq, char *err, size_t errsz);
FILE *db_ckpt_file_stream(struct db_ckpt_file *f);
/* Close the stream, write the header (length, hash, newest_us), fsync and
 * rename into place. 0, or -1 with err set (the file is removed). Frees f. */
int db_ckpt_file_finish(struct db_ckpt_file *f, int64_t newest_us, char *err, size_t errsz);
/* Store the checkpoint with image data (replacing the last one): the image
 * is written to a new file, then the row names it; call it inside a batch,
 * before db_commit(), so that the image and the batch's offsets commit
 * together (max_event_id: as stored up to this batch). 0, or -1. RW. */
int db_checkpoint_put(struct db *db, int64_t at, int64_t newest_us, int64_t lines, const void *data,
		      size_t len);
/* Store the checkpoint whose image another process wrote to DB.ckpt-SEQ
 * (db_ckpt_file_*) when the events up to max_event_id were stored. Checks
 * its header. 0, or -1. RW. */
int db_checkpoint_put_file(struct db *db, int64_t at, int64_t lines, int64_t max_event_id, uint64_t seq);
/* The largest event id stored (committed or in this batch). -1 on error. */
int64_t db_max_event_id(struct db *db);
/* Load the last checkpoint into *c (c->data to be freed by the caller).
 * Returns 1, 0 when there is none or its file is missing or damaged
 * (logged: the events are replayed instead), -1 on error. */
int db_checkpoint_get(struct db *db, struct db_checkpoint *c);
/* Record, after db_checkpoint_put() in the same batch, that the image
 * holds the lines of file source source_id up to offset (lines lines, the
 * batch's committed position): a restart reads that file again from there
 * (aggregator_restore's feeder). Returns 0, or -1. RW. */
int db_checkpoint_set_source(struct db *db, int64_t source_id, int64_t offset, int64_t lines);
/* Whether an event stored after the event id after_id came from another
 * source than source_id: 1, 0, or -1. */
int db_events_other_source_after(struct db *db, int64_t after_id, int64_t source_id);
/* Every stored event with an id above after_id, in id order (see
 * db_events_scan). Returns 0, the callback's value, or -1. */
int db_events_scan_after(struct db *db, int64_t after_id, db_event_cb cb, void *arg);

/* -------------------------------------------- queries (CLI and web share) */

/*
 * Cursors are opaque ASCII strings returned as "next" in paginated output
 * (null on the last page); pass NULL for the first page. A cursor that does
 * not parse is an error ("bad cursor"). limit is clamped to 1..1000.
 */

/*
 * `mxwarden stats --json`: {"lines_read": N, "events": {kind: N, ...},
 * "categories": {category: N, ...}, "unparsed": {reason: N, ...},
 * "files": [{"id", "path", "kind", "offset", "lines", "first_seen",
 * "last_read"}], "decisions_active": N, "decisions_total": N,
 * "evidence_rows": N, "db_bytes": N (file and WAL), "db_file_bytes", "wal_bytes"}. Counts are lifetime totals
 * (retention does not lower them); decisions_active is judged at now.
 */
json_t *db_stats_json(struct db *db, int64_t now);

/*
 * The dashboard's summary at now: {"now", "events": {"last_hour": N,
 * "last_day": N}, "rejects": {...}, "rates": {"events_per_min_hour": x,
 * ...}, "categories_last_day": {...}, "blocks_active": N, "blocks_active_ip":
 * N, "blocks_active_class": N, "ingest": {"files": N, "lag_seconds": N
 * (now - newest last_read, null if never), "lines_per_sec": x (last full
 * minute), "lines_last_hour": N, "parse_errors_last_hour": N, "lines_read":
 * N, "unparsed": N}, "data": {"first", "last"} (the log time span of the
 * stored counts: the start of the oldest hour, the end of the newest
 * minute; null when empty)}. Time windows use event (log) time for events
 * and the wall clock for ingest.
 */
json_t *db_summary_json(struct db *db, int64_t now);

/*
 * Counts over [from, to) (UTC seconds) in buckets of step seconds (a
 * multiple of 60, at most 2000 buckets; steps of an hour or more read the
 * hourly rollups). metric: "codes" (series per code class), "categories"
 * (per category seen), "kinds" (per event kind).
 * {"metric", "from", "to", "step", "t": [bucket starts], "series": {name: [N...]}}.
 */
json_t *db_timeseries_json(struct db *db, const char *metric, int64_t from, int64_t to, int64_t step);
/*
 * db_timeseries_json() restricted to the IP classes inside q (q NULL: no
 * filter, the same answer as db_timeseries_json()). It reads the per-class
 * rollups, which count the evidence kinds (reject, auth_failure, protocol,
 * lost; not connects) of events with a class: the sum over every
 * class whose network lies inside q (a /16 sums its /24s, a /48 its /64s).
 * A q longer than its family's class length in cc (an address, a /28) is
 * first widened to its class: "the class of this IP". cc may be NULL (no
 * widening). The answer also has "class": the prefix used, as text.
 */
json_t *db_timeseries_class_json(struct db *db, const char *metric, int64_t from, int64_t to, int64_t step,
				 const struct prefix *q, const struct class_conf *cc);

/*
 * The top senders over [from, to) by scope (SCOPE_IP or SCOPE_CLASS),
 * counting events of kind `kind` (-1: reject, auth_failure, protocol and
 * lost together; EV_CONNECT for connection counts; other kinds are not
 * counted per IP and give no items) and category `category` (-1: any),
 * hourly granularity (from is rounded down to the hour).
 * {"by": "ip"|"class", "from", "to", "items": [{"prefix", "count",
 * "categories": {name: N}}]} ordered by count, then prefix.
 */
json_t *db_top_json(struct db *db, enum scope by, int64_t from, int64_t to, int kind, int category,
		    int limit);

/*
 * Decisions, newest first: {"items": [decision objects], "next": cursor|null}.
 * active_only keeps those in force at now. A decision object is {"id",
 * "prefix", "family", "len", "scope", "response", "rule", "reason",
 * "score", "since", "until", "manual", "active", "created_by", "created_at",
 * "ended_at", "ended_by", "end_reason", "evidence" (parsed JSON, or the text
 * when it does not parse)}; since/until/... are RFC 3339 strings.
 */
json_t *db_blocks_json(struct db *db, int64_t now, bool active_only, int limit, const char *cursor);
/* {"prefix": q, "items": [decision objects]}: db_decisions_history()'s set,
 * newest first (lookup). */
json_t *db_history_json(struct db *db, const struct prefix *q, int64_t now);

/*
 * Stored evidence events, newest first (by id: log time to the second, then
 * insertion order), whose IP lies
 * in q (NULL: any; a host prefix is one IP, a /24 a class) and whose
 * category is `category` (-1: any). {"items": [{"id", "ts", "mta", "host",
 * "program", "pid", "queue_id", "ip", "class", "port", "rdns", "helo",
 * "from", "to", "user", "stage", "kind", "code", "dsn", "category", "text",
 * "line", "source_id"}], "next": cursor|null}.
 */
json_t *db_events_json(struct db *db, const struct prefix *q, int category, int limit, const char *cursor);

/*
 * Counts of stored evidence events whose IP lies in q with ts >= since
 * (seconds): {"since", "total": N, "kinds": {...}, "categories": {...},
 * "first": ts|null, "last": ts|null}. For lookup's "recent".
 */
json_t *db_recent_counts_json(struct db *db, const struct prefix *q, int64_t since);

/* ------------------------------------------------------------ MX hosts */

/*
 * Every line whose envelope has a host field (the syslog host: the MX that
 * logged it) is counted per host: db_host_line() in a batch of `run`,
 * db_pipe_host_line() in an import's. The host's name is the field's bytes
 * (at most 255: longer ones are cut); past 254 distinct names in one
 * process, further hosts count under "(other)". Events are counted per
 * host too (rollups and top senders by the event's host field), so that
 * the queries below answer for one host. A line without a host field
 * (Exim's own log files) counts under no host.
 */
void db_host_line(struct db *db, const char *host, size_t n, int64_t ts_us);
void db_pipe_host_line(struct db_pipe *p, const char *host, size_t n, int64_t ts_us);

/*
 * The hosts at now, by name: {"now", "silence" (seconds, 0 = off),
 * "items": [{"host", "first_seen", "last_seen" (when `run` last read a
 * line of it; null when only imported), "last_line" (the log time of its
 * newest line), "lag_seconds" (how late the newest line of the last batch
 * was read: transport delay, queues, clock skew; null when only
 * imported), "lines", "lines_per_sec" (the last full minute),
 * "lines_last_hour", "events_last_hour", "rejects_last_hour" (log time),
 * "silent" (last_seen is more than silence ago), "silent_seconds"}]}.
 */
json_t *db_hosts_json(struct db *db, int64_t now, int64_t silence);

/* db_summary_json() of one host: events, rejects, rates and categories
 * from its own lines; ingest from its lines (files: null, lag its lag);
 * blocks are global (one judge decides for every host). "host": the
 * name. */
json_t *db_summary_host_json(struct db *db, int64_t now, const char *host);
/* db_timeseries_json() of the events of one host ("host" in the answer). */
json_t *db_timeseries_host_json(struct db *db, const char *metric, int64_t from, int64_t to, int64_t step,
				const char *host);
/* db_top_json() of the events of one host (the evidence kinds only:
 * connects are not counted per host, another kind is an error). host
 * NULL: db_top_json(). */
json_t *db_top_host_json(struct db *db, enum scope by, int64_t from, int64_t to, int kind, int category,
			 int limit, const char *host);
/* db_events_json() of the events of one host (host NULL: any). */
json_t *db_events_host_json(struct db *db, const struct prefix *q, int category, int limit,
			    const char *cursor, const char *host);

/* The audit trail, newest first: {"items": [{"id", "when", "who",
 * "action", "prefix", "reason"}], "next": cursor|null}. */
json_t *db_audit_json(struct db *db, int limit, const char *cursor);

/* -------------------------------------------------- outbox (reports/) */

/*
 * What the reports wrote and sent (schema 7): one row per message (an abuse
 * report, a contact's summary, a mailed digest) with its envelope recipient,
 * when it was written and to which file, the message itself, and when it
 * was sent; and which decisions each abuse report covered, so that a
 * decision is reported once, whatever the period or output directory.
 * These are the only rows the reports write: "reports change nothing but
 * this record".
 */
struct db_outbox_msg {
	int64_t id;	       /* set by db_outbox_add() */
	const char *kind;      /* "xarf", "summary", "digest" */
	const char *key;       /* unique within kind (a digest's file name), NULL = none */
	const char *report_id; /* XARF report_id, NULL = none */
	const char *rcpt;      /* the envelope recipient */
	const char *subject;   /* for listings */
	const char *file;      /* the file written, NULL = none */
	const char *message;   /* the whole message (RFC 5322), NULL once pruned */
	size_t len;
	int64_t written_at;	/* UTC seconds */
	int64_t sent_at;	/* 0 = not sent */
	int64_t attempts;	/* SMTP attempts that failed */
	const char *last_error; /* the last failure, NULL = none */
};
/*
 * Record m (written) and mark the decisions ids[0..n) as reported by it, in
 * one transaction (or in the open batch). A (kind, key) recorded before is
 * an error. Sets m->id. Returns 0, or -1. RW.
 */
int db_outbox_add(struct db *db, struct db_outbox_msg *m, const int64_t *ids, size_t n);
/* The message id was sent at `at` (0 when it was already marked), or -1. RW. */
int db_outbox_sent(struct db *db, int64_t id, int64_t at);
/* Sending message id failed with error (attempts + 1). 0 or -1. RW. */
int db_outbox_failed(struct db *db, int64_t id, const char *error);
/* Callback for outbox listings; strings borrowed for the call. Non-zero stops. */
typedef int (*db_outbox_cb)(void *arg, const struct db_outbox_msg *m);
/* The messages of kind (NULL: any) not sent yet, written at or after
 * since, with their message still stored and fewer than max_attempts
 * failures, oldest first. The callback may write (db_outbox_sent). 0, the
 * callback's value, or -1. */
int db_outbox_unsent(struct db *db, int64_t since, int64_t max_attempts, const char *kind, db_outbox_cb cb,
		     void *arg);
/* How many messages of kind (NULL: any) to rcpt were written at or after
 * since, or -1. */
int64_t db_outbox_count(struct db *db, const char *rcpt, const char *kind, int64_t since);
/* 1 when a message of kind with key is recorded, 0 when not, -1. */
int db_outbox_has_key(struct db *db, const char *kind, const char *key);
/* 1 when decision id was covered by an abuse report, 0 when not, -1. */
int db_abuse_reported(struct db *db, int64_t decision_id);
/* Forget the message bodies of rows written before `before` (the row,
 * who and when, stays). Returns how many, or -1. RW. */
int64_t db_outbox_prune(struct db *db, int64_t before);
/* The outbox, newest first: {"items": [{"id", "kind", "report_id", "rcpt",
 * "subject", "file", "written_at", "sent_at", "attempts", "last_error",
 * "decisions": [ids]}]} (at most limit rows). NULL on error. */
json_t *db_outbox_json(struct db *db, int limit);

/*
 * The RDAP cache: the abuse contact found for the range [lo, hi] of
 * addresses (one RDAP network), valid until expires_at. db_rdap_get()
 * finds the narrowest unexpired range holding ip: 1 with its contact in out
 * ("" when the registry named none), 0 when none is cached, -1. RW for put.
 */
int db_rdap_get(struct db *db, const struct ipaddr *ip, int64_t now, char *out, size_t outsz);
int db_rdap_put(struct db *db, const struct ipaddr *lo, const struct ipaddr *hi, const char *contact,
		const char *server, int64_t now, int64_t expires_at);

/* ------------------------------------------------------------ retention */

/* Rows deleted per table per db_retention_run() call: short transactions. */
#define DB_RETENTION_CHUNK 5000
/*
 * Delete, at most DB_RETENTION_CHUNK rows per table per call, each table in
 * its own short transaction: evidence events older than
 * conf->retention_events (log time), minute rollups older than
 * conf->retention_rollups, hourly rollups and per-IP hourly counts older
 * than max(365 days, retention_rollups) (per-class minute and hourly
 * rollups likewise), decisions that ended (until or
 * ended_at) more than conf->retention_decisions ago, ingest counts older
 * than retention_rollups. Must be called with no batch open. Returns the
 * number of rows deleted (call again while it is > 0, between batches), or -1.
 */
int64_t db_retention_run(struct db *db, int64_t now, const struct config *conf);

/* True when this open created the schema: the database was new (or lost and
 * made again). The engine tells the emitters, so that an empty decision set
 * from a new database does not silently empty the blocklists. */
bool db_created(const struct db *db);

#endif
