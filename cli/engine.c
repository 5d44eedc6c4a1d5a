/*
 * engine.c - the one thread that owns all mutable state: it reads lines from
 * the collector, parses them, hands events to the aggregator, stages them in
 * the open database batch and commits each batch (events, rollups, counts
 * AND the file offsets) in one SQLite transaction. `mxwarden run` and
 * `mxwarden import` both feed lines through engine_line().
 *
 * The loop (engine_run): epoll over
 *   - the collector's fd (inotify on the followed files' directories, the
 *     syslog sockets),
 *   - a signalfd: SIGTERM/SIGINT flush the open batch and stop, SIGHUP
 *     reloads the configuration, SIGCHLD reaps children (emitters' reload
 *     commands),
 *   - a timerfd every TICK_MS: batch flush after batch_ms, collector polling
 *     and rotation switches, aggregator expiry ticks, retention, the replay
 *     writer.
 *
 * Hook points for the other modules are the functions named hook_*() below;
 * each says when it is called. The web server runs its own threads and reads
 * SQLite through read-only connections: the engine only starts and stops it.
 *
 * It must never commit an offset without the events of the lines before it,
 * nor the other way round; never block on anything but epoll_wait and
 * SQLite's busy timeout; never let a log line decide which IP is blamed
 * (that is the parser's job, from the MTA's own client field).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/aggregator.h"
#include "cli/cli.h"
#include "collector/collector.h"
#include "db/db.h"
#include "emitters/emitters.h"
#include "parsers/parsers.h"
#include "web/web.h"

#define TICK_MS		    50
#define RETENTION_EVERY_US  (60LL * 1000000)
#define AGG_TICK_EVERY_US   (1000LL * 1000)
#define REPLAY_ROTATE_BYTES (8 << 20)
#define IMPORT_BATCH_FACTOR 20 /* import commits every 20 x batch_lines lines */

/* What the engine keeps per collector source (a followed path). */
struct esrc {
	int64_t db_id;		  /* the db_source row of the file being read; 0 = none yet */
	struct coll_pos id;	  /* its identity */
	int64_t offset;		  /* offset after the last line of this file in the batch */
	int64_t lines;		  /* lines_read of the db row, this batch included */
	bool dirty;		  /* offset/lines changed since the last commit */
	struct parser_source *ps; /* parser state of this stream */
	/* how far the aggregator has seen this source (this file, and the one
	 * before it): lines read again after a refused batch are stored but not
	 * counted a second time */
	struct coll_pos agg_id, agg_prev_id;
	int64_t agg_off, agg_prev_off;
};

/* A decision change stored in the open batch: made again at the next batch
 * when this one is refused (the aggregator made it once and will not again). */
struct jchange {
	enum agg_change_kind kind;
	struct decision d;
	char *evidence;
	const char *end_reason;
	enum response from;
	int64_t at;
};

struct replay {
	char *path; /* var/replay.log */
	struct buf sample;
	size_t at;	 /* next line in sample */
	double rate;	 /* lines per second */
	double owed;	 /* lines due, not written yet */
	int64_t last_us; /* monotonic */
	int fd;
	int64_t written; /* bytes in the current file */
	uint64_t rounds;
};

struct engine {
	const struct engine_opts *o;
	struct config conf;
	size_t trusted_n; /* networks the MTA trusts, as last read (start, SIGHUP) */
	char *db_path;
	struct db *db;
	struct parser *parser;
	struct aggregator *agg;
	bool decisions_changed; /* since the emitters last ran */
	enum mta hint;
	struct collector *coll;
	struct esrc *src;
	size_t n_src;
	struct parser_source *syslog_ps;
	int64_t syslog_src_id; /* the db_source row of the syslog receiver */
	int64_t syslog_lines;
	bool syslog_dirty;
	uint64_t syslog_dropped_stored; /* collector's syslog_dropped already counted in the db */
	/* the known sources at start, for coll_lookup */
	struct db_source *known;
	size_t n_known, cap_known;
	/* the open batch */
	int64_t batch_lines;
	int64_t batch_start_us; /* monotonic, when the first line came */
	int64_t unparsed[64];	/* by parse reason (+ overlong at the end) */
	/* lifetime counters of this run */
	uint64_t lines, events, unparsed_total, commits, commit_errors;
	int64_t last_retention_us, last_agg_tick_us;
	int64_t clk_wall_us, clk_mono_us; /* at the last aggregator tick: clock steps */
	bool retention_more;
	bool drained; /* the collector had nothing more to read (the judge may take the wall clock) */
	volatile bool stop;
	/* the database refused a begin or commit: lines since the last commit are
	 * ignored, then read again from the committed positions after a pause */
	bool db_down;
	bool rewound;	     /* collector_rewind() done for this failure */
	int64_t db_retry_us; /* monotonic: when to try again */
	bool import_failed;
	struct replay replay;
	/* import */
	int64_t import_src_id;
	int64_t import_offset;
	int64_t import_lines;
	struct parser_source *import_ps;
	int64_t progress_t0_us, progress_last_us;
	bool progress_done; /* the 100% line was printed */
	bool importing;
	/* import: batches staged here and written by the pipe's writer thread
	 * (NULL: written by this thread, as `run` does). One pipe serves the
	 * whole import (pipe_keep; its row handles stay valid across files);
	 * pipe is set while a file's lines are read. */
	struct db_pipe *pipe, *pipe_keep;
	bool staging;	  /* a batch is being staged in the pipe */
	bool pipe_failed; /* pipe_keep refused a batch: no more pipelining */
	uint64_t decisions_made;
	const char *progress_name;
	/* the blocklists ([output NAME]), `run` only */
	struct emitters *em;
	bool em_synced; /* the outputs were written once */
	struct decision *em_active;
	size_t em_n, em_cap;
	struct web *web; /* the dashboard and API (run only) */
	/* the aggregator's checkpoint in the database ([storage] checkpoint_interval) */
	int64_t ckpt_last_us;	 /* monotonic, the last one committed */
	bool ckpt_in_batch;	 /* the open batch carries one */
	uint64_t ckpt_lines;	 /* e->lines when it was written */
	uint64_t ckpt_put_lines; /* ... the one in the open batch */
	bool ckpt_current;	 /* the stored checkpoint is the state: restored from it, nothing since */
	bool ckpt_written;	 /* ... or one written by this run (with ckpt_lines == lines) */
	bool ckpt_force;	 /* a checkpoint with the next batch (the end of an imported file) */
	/* exactness across a refused batch (db_failed) */
	bool agg_recover; /* lines the aggregator saw are being read again */
	bool no_agg;	  /* engine_line: store the line, do not count it again */
	struct jchange *journal;
	size_t n_journal, cap_journal;
	bool redo; /* the journal's changes were rolled back: store them again */
};

#define UNPARSED_OVERLONG 63

/* ---------------------------------------------------------------- hooks */

/*
 * hook_aggregator_event: called for every parsed event, in log order, inside
 * the open batch (after db_event_insert, so evidence rows exist). The
 * aggregator updates its windows here and may store decisions in the same
 * batch (db_decision_insert), so decisions commit with the lines that caused
 * them. evidence_id is the stored row (0 when the event is only counted).
 */
/* Store one change the aggregator queued, in the open batch. */
static int batch_begin(struct engine *e);

static void journal_add(struct engine *e, const struct agg_change *ch, int64_t id)
{
	if (!db_in_batch(e->db) || e->importing)
		return; /* autocommit: stored already; import: a refused batch stops it */
	if (e->n_journal == e->cap_journal) {
		e->cap_journal = e->cap_journal ? 2 * e->cap_journal : 16;
		e->journal = xrealloc(e->journal, e->cap_journal * sizeof *e->journal);
	}
	struct jchange *j = &e->journal[e->n_journal++];
	j->kind = ch->kind;
	j->d = *ch->d;
	if (id > 0)
		j->d.id = id;
	j->evidence = ch->evidence_json ? xstrdup(ch->evidence_json) : NULL;
	j->end_reason = ch->end_reason;
	j->from = ch->from;
	j->at = ch->at;
}

static void journal_clear(struct engine *e)
{
	for (size_t i = 0; i < e->n_journal; i++)
		free(e->journal[i].evidence);
	e->n_journal = 0;
	e->redo = false;
}

static int64_t store_change_db(struct engine *e, const struct agg_change *ch);

static int64_t store_change(void *arg, const struct agg_change *ch)
{
	struct engine *e = arg;
	int64_t id = store_change_db(e, ch);
	journal_add(e, ch, id);
	return id;
}

/*
 * The batch that stored the journal's changes was refused: store them again
 * in the new batch (a new decision gets a new id, which the aggregator and
 * the later changes of the journal learn). Returns 0, or -1 (database error).
 */
static int journal_redo(struct engine *e)
{
	for (size_t i = 0; i < e->n_journal; i++) {
		struct jchange *j = &e->journal[i];
		struct agg_change ch = {.kind = j->kind,
					.d = &j->d,
					.evidence_json = j->evidence,
					.end_reason = j->end_reason,
					.from = j->from,
					.at = j->at};
		if (j->kind == AGG_CHANGE_NEW) {
			int64_t old = j->d.id;
			j->d.id = 0;
			int64_t id = store_change_db(e, &ch);
			if (id <= 0)
				return -1;
			j->d.id = id;
			aggregator_rebind(e->agg, old, id);
			for (size_t k = i + 1; k < e->n_journal; k++)
				if (e->journal[k].d.id == old)
					e->journal[k].d.id = id;
		} else {
			store_change_db(e, &ch);
		}
	}
	if (e->n_journal)
		log_info("database: %zu decision change(s) of the refused batch stored again", e->n_journal);
	e->redo = false;
	return 0;
}

static int64_t store_change_db(struct engine *e, const struct agg_change *ch)
{
	e->decisions_changed = true;
	char px[PREFIX_STRLEN];
	prefix_format(&ch->d->prefix, px);
	if (ch->kind == AGG_CHANGE_ENDED) {
		/* an end is an event: recorded, so that no later clock (a step
		 * back) makes the decision active again; at the judge's time (an
		 * expiry: its until), log time when judging an old log */
		const char *why = ch->end_reason ? ch->end_reason : "ended";
		if (e->pipe && ch->d->id <= 0) /* made by this import: the pipe finds it */
			db_pipe_decision_end(e->pipe, ch->d, ch->at, why);
		else if (ch->d->id > 0 && db_decision_end(e->db, ch->d->id, ch->at, "engine", why) < 0)
			log_warn("database: end of decision %lld: %s (the next tick tries again)",
				 (long long)ch->d->id, db_errmsg(e->db));
		(e->importing ? log_debug : log_info)("decision on %s ended (%s)", px, why);
		return 0;
	}
	if (ch->kind == AGG_CHANGE_UPGRADED) {
		if (e->pipe && ch->d->id <= 0) /* made by this import: the pipe finds it */
			db_pipe_decision_upgrade(e->pipe, ch->d, ch->from, ch->evidence_json, ch->at);
		else if (ch->d->id > 0 &&
			 db_decision_upgrade(e->db, ch->d, ch->from, ch->evidence_json, ch->at) < 0)
			log_error("database: upgrade of decision %lld: %s", (long long)ch->d->id,
				  db_errmsg(e->db));
		(e->importing ? log_debug : log_info)("%s %s upgraded %s -> %s (%s, score %.2f): %s",
						      ch->d->scope == SCOPE_CLASS ? "class" : "address", px,
						      response_name(ch->from), response_name(ch->d->response),
						      ch->d->rule, ch->d->score, ch->d->reason);
		return ch->d->id;
	}
	struct decision d = *ch->d;
	if (e->pipe) /* written with its batch; its id is not known here (import needs none) */
		db_pipe_decision(e->pipe, &d, ch->evidence_json, "engine");
	else if (db_decision_insert(e->db, &d, ch->evidence_json, "engine") < 0) {
		log_error("database: decision: %s", db_errmsg(e->db));
		return 0;
	}
	e->decisions_made++;
	/* an import of old logs may make thousands: one line each only when following */
	(e->importing ? log_debug : log_info)("%s%s %s (%s, %s, score %.2f): %s",
					      e->conf.rules.dry_run ? "dry-run: " : "",
					      d.scope == SCOPE_CLASS ? "class" : "address", px, d.rule,
					      response_name(d.response), d.score, d.reason);
	return d.id;
}

/* A stored row whose client a later line named: written in this batch. */
static void store_attribution(void *arg, const struct agg_attribution *x)
{
	struct engine *e = arg;
	if (e->pipe) { /* written by the pipe's writer, after the rows of its batch */
		if (x->row < 0)
			db_pipe_attribution_dropped(e->pipe, -x->row);
		else
			db_pipe_attribute(e->pipe, x->row, &x->ip, &x->cls);
		return;
	}
	if ((x->row < 0 ? db_attribution_dropped(e->db, -x->row)
			: db_event_attribute(e->db, x->row, &x->ip, &x->cls)) < 0)
		log_error("database: attribution: %s", db_errmsg(e->db));
}

static void hook_aggregator_event(struct engine *e, const struct event *ev, int64_t evidence_id)
{
	if (e->no_agg)
		return; /* seen before a refused batch: stored again, counted once */
	aggregator_event_row(e->agg, ev, evidence_id);
	aggregator_take_attributions(e->agg, store_attribution, e);
	aggregator_take_changes(e->agg, store_change, e);
}

/*
 * hook_aggregator_tick: called about once a second, outside of any line,
 * with the wall clock (clock_now()) when the sources are drained, else 0:
 * the judge's clock is log time (aggregator.h, "Time"), and the wall clock
 * moves it on only when no line waits (an idle server still ends blocks;
 * lines still to read are judged at their own time, as an import judges
 * them). Ends decisions, evicts idle state, picks up `mxwarden
 * block/unblock` from the database. Returns true when decisions changed
 * (the emitters then run).
 */
static bool hook_aggregator_tick(struct engine *e, int64_t now)
{
	aggregator_tick(e->agg, now);
	int64_t clk = aggregator_clock(e->agg);
	/* decisions whose until passed, also those the aggregator does not hold
	 * (they lapsed while mxwarden was stopped): ended for good */
	int64_t ended = clk > 0 ? db_decisions_expire(e->db, clk, "engine") : 0;
	if (ended < 0)
		log_warn("database: expiring decisions: %s", db_errmsg(e->db));
	else if (ended > 0)
		e->decisions_changed = true;
	/* changes of a refused batch go back in first: the sync below would
	 * take a decision missing from the database for an unblock */
	if (e->redo && batch_begin(e) < 0)
		return false;
	aggregator_take_changes(e->agg, store_change, e);
	if (aggregator_sync(e->agg, e->db, clk) > 0) {
		const struct decision *v;
		size_t n;
		aggregator_active(e->agg, &v, &n);
		log_info("decisions changed in the database (block/unblock): %zu in force", n);
		e->decisions_changed = true;
	}
	bool changed = e->decisions_changed;
	e->decisions_changed = false;
	return changed;
}

/*
 * hook_emitters: called after a batch committed whose events changed
 * decisions, and after a tick that expired some. Render the blocklists
 * (temp file, fsync, rename) and start reload commands (posix_spawn, no
 * shell); their exit is seen in hook_child_exited().
 */
static int em_collect(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct engine *e = arg;
	(void)info;
	if (e->conf.rules.dry_run && !d->manual)
		return 0; /* [rules] dry_run: decide and explain, emit nothing */
	if (e->em_n == e->em_cap) {
		e->em_cap = e->em_cap ? e->em_cap * 2 : 256;
		e->em_active = xrealloc(e->em_active, e->em_cap * sizeof *e->em_active);
	}
	e->em_active[e->em_n++] = *d;
	return 0;
}

static void hook_emitters(struct engine *e, bool decisions_changed)
{
	if (!e->em)
		return;
	emitters_poll(e->em);
	int64_t now = clock_now();
	/* also when a decision runs out or a capped ipset timeout needs a refresh */
	if (!decisions_changed && e->em_synced && now < emitters_next_due(e->em))
		return;
	e->em_n = 0;
	if (db_decisions_active(e->db, now, em_collect, e) < 0) {
		log_error("database: active decisions: %s", db_errmsg(e->db));
		return;
	}
	/* a failed output is logged and retried by the emitters (next_due) */
	emitters_update(e->em, e->em_active, e->em_n, now);
	e->em_synced = true;
}

/* hook_child_exited: SIGCHLD arrived; reap with waitpid(WNOHANG) in the
 * module that spawned the children (emitters). */
static void hook_child_exited(struct engine *e)
{
	if (e->em)
		emitters_poll(e->em);
}

/*
 * hook_web_start / hook_web_stop: the dashboard and API on listen ("ADDR:PORT",
 * NULL = the configuration's [web] listen). The web module runs its own
 * threads and opens its own read-only connections to db_path; it never
 * touches engine state. Returns 0, or -1 when it could not start (logged).
 */
static int hook_web_start(struct engine *e, const char *listen)
{
	if (listen) {
		free(e->conf.listen);
		e->conf.listen = xstrdup(listen);
	}
	struct buf err = BUF_INIT;
	e->web = web_start(&e->conf, e->db_path, &err);
	if (!e->web)
		log_error("%s", buf_str(&err));
	buf_free(&err);
	return e->web ? 0 : -1;
}

static void hook_web_stop(struct engine *e)
{
	web_stop(e->web);
	e->web = NULL;
}

/* ---------------------------------------------------------------- batches */

static void known_update(struct engine *e, size_t i);

/* The same file (a small file's fingerprint grows as it does). */
static bool same_ident(const struct coll_pos *a, const struct coll_pos *b)
{
	return a->dev == b->dev && a->ino == b->ino && (a->fp_len != b->fp_len || a->fp == b->fp) &&
	       (a->dev || a->ino || a->fp_len);
}

/*
 * A begin or commit failed (the database is locked by another writer past
 * the busy timeout, the disk is full, ...): nothing of the batch is stored.
 * Following: the lines since the last commit are read again from the
 * committed positions (collector_rewind, done by the loop outside of the
 * sink) after a pause of a second; syslog messages of the batch are lost
 * (logged). Importing: the import of this file stops; running it again
 * continues from the last committed offset.
 */
static void db_failed(struct engine *e)
{
	if (db_in_batch(e->db))
		db_rollback(e->db);
	memset(e->unparsed, 0, sizeof e->unparsed);
	bool saw = e->batch_lines > 0;
	e->batch_lines = 0;
	e->ckpt_in_batch = false;
	e->redo = e->n_journal > 0;
	if (e->importing) {
		e->import_failed = true;
		return;
	}
	if (!e->db_down)
		log_warn("database unavailable: the lines of the open batch will be read again in 1 s%s",
			 e->syslog_dirty ? " (its syslog messages are lost)" : "");
	e->db_down = true;
	if (saw)
		e->agg_recover = true; /* see on_line */
	e->db_retry_us = clock_mono_us() + 1000000;
	for (size_t i = 0; i < e->n_src; i++) {
		e->src[i].db_id = 0; /* resolved again from the database */
		e->src[i].dirty = false;
	}
	e->syslog_dirty = false;
}

static int batch_begin(struct engine *e)
{
	if (e->pipe) {
		if (e->import_failed)
			return -1;
		if (!e->staging) {
			e->staging = true;
			e->batch_lines = 0;
			e->batch_start_us = clock_mono_us();
		}
		return 0;
	}
	if (db_in_batch(e->db))
		return 0;
	if (e->db_down || e->import_failed)
		return -1;
	if (db_begin(e->db) < 0) {
		log_error("database: begin: %s", db_errmsg(e->db));
		web_set_ingest_error(e->web, db_errmsg(e->db));
		db_failed(e);
		return -1;
	}
	e->batch_lines = 0;
	e->batch_start_us = clock_mono_us();
	if (e->redo && journal_redo(e) < 0) {
		log_error("database: %s", db_errmsg(e->db));
		db_failed(e);
		return -1;
	}
	return 0;
}

/*
 * The aggregator's checkpoint, stored in the open batch: it then commits
 * with the batch's events and file offsets, so that it holds exactly the
 * committed lines. Returns 0, or -1 (a database error: the batch fails).
 */
static int checkpoint_put(struct engine *e)
{
	char *data;
	size_t len;
	int64_t newest;
	int64_t t0 = clock_mono_us();
	if (aggregator_checkpoint(e->agg, &data, &len, &newest) < 0)
		return 0; /* logged; the last checkpoint stays */
	int rc = db_checkpoint_put(e->db, clock_now(), newest, (int64_t)e->lines, data, len);
	free(data);
	/* an import: where in its file (refeed()) */
	if (rc == 0 && e->import_src_id)
		rc = db_checkpoint_set_source(e->db, e->import_src_id, e->import_offset, e->import_lines);
	if (rc < 0) {
		log_error("database: checkpoint: %s", db_errmsg(e->db));
		return -1;
	}
	e->ckpt_in_batch = true;
	e->ckpt_put_lines = e->lines;
	log_debug("aggregator: checkpoint of %zu bytes in %.3fs", len, (double)(clock_mono_us() - t0) / 1e6);
	return 0;
}

static bool checkpoint_due(const struct engine *e)
{
	/* not while lines the aggregator saw are being stored again: a crash
	 * would read them once more on top of the checkpoint */
	return e->conf.checkpoint_interval > 0 && e->lines != e->ckpt_lines && !e->agg_recover &&
	       (e->ckpt_force || clock_mono_us() - e->ckpt_last_us >= e->conf.checkpoint_interval * 1000000);
}

/* Stage the positions of every source that moved, then commit. Returns 0,
 * or -1 (the batch was rolled back: nothing of it is stored, and the
 * positions of the sources are not either, so the lines are read again). */
static int pipe_commit(struct engine *e);

static int batch_commit(struct engine *e)
{
	if (e->pipe)
		return pipe_commit(e);
	if (!db_in_batch(e->db))
		return 0;
	int64_t now = clock_now();
	for (int r = 0; r < (int)MXW_ARRAY_LEN(e->unparsed); r++) {
		if (!e->unparsed[r])
			continue;
		const char *name = r == UNPARSED_OVERLONG ? "overlong" : parser_reason_name(r);
		if (db_unparsed_add(e->db, name, e->unparsed[r]) < 0)
			goto fail;
	}
	for (size_t i = 0; i < e->n_src; i++) {
		struct esrc *s = &e->src[i];
		if (s->dirty && s->db_id &&
		    db_source_update_offset(e->db, s->db_id, s->offset, s->lines, now) < 0)
			goto fail;
	}
	if (e->coll) {
		/* syslog messages refused before they were lines (too big, bad framing, peer) */
		struct coll_stats cs;
		collector_stats(e->coll, &cs);
		if (cs.syslog_dropped > e->syslog_dropped_stored &&
		    db_unparsed_add(e->db, "syslog_dropped",
				    (int64_t)(cs.syslog_dropped - e->syslog_dropped_stored)) < 0)
			goto fail;
	}
	if (e->syslog_dirty && db_source_update_offset(e->db, e->syslog_src_id, 0, e->syslog_lines, now) < 0)
		goto fail;
	if (e->import_src_id &&
	    db_source_update_offset(e->db, e->import_src_id, e->import_offset, e->import_lines, now) < 0)
		goto fail;
	if (checkpoint_due(e) && checkpoint_put(e) < 0)
		goto fail;
	if (db_commit(e->db) < 0) {
		log_error("database: commit: %s", db_errmsg(e->db));
		web_set_ingest_error(e->web, db_errmsg(e->db));
		e->commit_errors++;
		db_failed(e);
		return -1;
	}
	journal_clear(e);
	bool behind = false; /* a source still below what the aggregator saw */
	for (size_t i = 0; i < e->n_src; i++) {
		struct esrc *s = &e->src[i];
		if (s->dirty)
			known_update(e, i);
		s->dirty = false;
		behind = behind || (same_ident(&s->id, &s->agg_id) && s->offset < s->agg_off) ||
			 (same_ident(&s->id, &s->agg_prev_id) && s->offset < s->agg_prev_off);
	}
	if (e->agg_recover && !behind) {
		e->agg_recover = false;
		log_info("database: the lines of the refused batch are stored again, each counted once");
	}
	e->syslog_dirty = false;
	if (e->coll) {
		struct coll_stats cs;
		collector_stats(e->coll, &cs);
		e->syslog_dropped_stored = cs.syslog_dropped;
	}
	memset(e->unparsed, 0, sizeof e->unparsed);
	if (e->ckpt_in_batch) {
		e->ckpt_last_us = clock_mono_us();
		e->ckpt_lines = e->ckpt_put_lines;
		e->ckpt_written = true;
	}
	e->ckpt_in_batch = false;
	e->ckpt_force = false;
	web_set_ingest_error(e->web, NULL); /* a few commits a second: one uncontended lock each */
	e->commits++;
	e->batch_lines = 0;
	hook_emitters(e, e->decisions_changed);
	e->decisions_changed = false;
	return 0;
fail:
	log_error("database: %s", db_errmsg(e->db));
	db_rollback(e->db);
	e->commit_errors++;
	db_failed(e);
	return -1;
}

/* The pipe's failure, seen at a submit or drain: the import of this file
 * stops (what was committed stays). */
static void pipe_failed(struct engine *e)
{
	if (!e->import_failed)
		log_error("database: %s", db_pipe_errmsg(e->pipe));
	e->commit_errors++;
	e->import_failed = true;
}

/* batch_commit() of an import through the pipe: stage the unparsed counts
 * and the file's offset, then hand the batch to the writer thread (it
 * commits them in one transaction while the next batch is parsed). */
static int pipe_commit(struct engine *e)
{
	if (!e->staging)
		return 0;
	e->staging = false;
	int64_t now = clock_now();
	for (int r = 0; r < (int)MXW_ARRAY_LEN(e->unparsed); r++) {
		if (!e->unparsed[r])
			continue;
		const char *name = r == UNPARSED_OVERLONG ? "overlong" : parser_reason_name(r);
		if (db_pipe_unparsed(e->pipe, name, e->unparsed[r]) < 0)
			log_error("database: %s", db_errmsg(e->db));
	}
	memset(e->unparsed, 0, sizeof e->unparsed);
	e->batch_lines = 0;
	if (e->import_src_id)
		db_pipe_offset(e->pipe, e->import_src_id, e->import_offset, e->import_lines, now);
	if (!e->import_failed && checkpoint_due(e)) {
		/* with the batch, at its position in the file (refeed()) */
		char *data;
		size_t len;
		int64_t newest;
		if (aggregator_checkpoint(e->agg, &data, &len, &newest) == 0) {
			db_pipe_checkpoint(e->pipe, now, newest, (int64_t)e->lines, data, len,
					   e->import_src_id, e->import_offset, e->import_lines);
			e->ckpt_last_us = clock_mono_us();
			e->ckpt_lines = e->lines;
			e->ckpt_written = true;
		}
	}
	e->ckpt_force = false;
	if (e->import_failed || db_pipe_submit(e->pipe) < 0) {
		pipe_failed(e);
		return -1;
	}
	e->commits++;
	return 0;
}

/*
 * One line from any source: parse it, store the event, let the aggregator
 * see it, count what did not parse. ps is the stream's parser state,
 * source_id its db row (0 for syslog).
 */
static void engine_line(struct engine *e, struct parser_source *ps, int64_t source_id,
			const struct coll_line *ln)
{
	if (batch_begin(e) < 0)
		return;
	e->lines++;
	e->batch_lines++;
	if (ln->overlong) {
		e->unparsed[UNPARSED_OVERLONG]++;
		e->unparsed_total++;
		return;
	}
	struct event ev;
	int reason = 0;
	int r = parser_parse(e->parser, ps, ln->p, ln->n, &ev, &reason);
	if (r < 0) {
		if (reason < 0 || reason >= UNPARSED_OVERLONG)
			reason = 0;
		e->unparsed[reason]++;
		e->unparsed_total++;
		return;
	}
	if (r == 0)
		return;
	int64_t id =
	    e->pipe ? db_pipe_event(e->pipe, &ev, source_id) : db_event_insert(e->db, &ev, source_id);
	if (id < 0) {
		log_error("database: event: %s", db_errmsg(e->db));
		return;
	}
	e->events++;
	hook_aggregator_event(e, &ev, id);
}

static void maybe_commit(struct engine *e, bool force)
{
	if (!db_in_batch(e->db))
		return;
	if (force || e->batch_lines >= e->conf.batch_lines ||
	    clock_mono_us() - e->batch_start_us >= e->conf.batch_ms * 1000)
		batch_commit(e);
}

/* ---------------------------------------------------------------- sources */

static int cmp_known(const struct db_source *a, const struct db_source *b)
{
	if (a->last_read != b->last_read)
		return a->last_read < b->last_read ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static int collect_known(void *arg, const struct db_source *s)
{
	struct engine *e = arg;
	if (s->kind != DB_SRC_FOLLOW)
		return 0;
	/* keep only the newest row per path */
	for (size_t i = 0; i < e->n_known; i++)
		if (strcmp(e->known[i].path, s->path) == 0) {
			if (cmp_known(&e->known[i], s) < 0)
				e->known[i] = *s;
			return 0;
		}
	if (e->n_known == e->cap_known) {
		e->cap_known = e->cap_known ? 2 * e->cap_known : 8;
		e->known = xrealloc(e->known, e->cap_known * sizeof *e->known);
	}
	e->known[e->n_known++] = *s;
	return 0;
}

/* The collector asks where a followed path was left. */
static int coll_lookup(void *ctx, const char *key, struct coll_pos *pos)
{
	struct engine *e = ctx;
	for (size_t i = 0; i < e->n_known; i++) {
		const struct db_source *s = &e->known[i];
		if (strcmp(s->path, key) != 0)
			continue;
		memset(pos, 0, sizeof *pos);
		pos->dev = s->dev;
		pos->ino = s->ino;
		pos->fp = s->fp_hash;
		pos->fp_len = (uint32_t)s->fp_len;
		pos->offset = s->offset;
		pos->lines = s->lines_read;
		return 0;
	}
	return -1;
}

/* A commit stored source i's position: the next rewind resumes there. */
static void known_update(struct engine *e, size_t i)
{
	const struct esrc *s = &e->src[i];
	const char *key = collector_source_key(e->coll, i);
	if (!key)
		return;
	struct db_source *k = NULL;
	for (size_t j = 0; j < e->n_known && !k; j++)
		if (strcmp(e->known[j].path, key) == 0)
			k = &e->known[j];
	if (!k) {
		if (e->n_known == e->cap_known) {
			e->cap_known = e->cap_known ? 2 * e->cap_known : 8;
			e->known = xrealloc(e->known, e->cap_known * sizeof *e->known);
		}
		k = &e->known[e->n_known++];
		memset(k, 0, sizeof *k);
		k->kind = DB_SRC_FOLLOW;
		str_copy(k->path, sizeof k->path, key, strlen(key));
	}
	k->id = s->db_id;
	k->dev = s->id.dev;
	k->ino = s->id.ino;
	k->fp_hash = s->id.fp;
	k->fp_len = s->id.fp_len;
	k->offset = s->offset;
	k->lines_read = s->lines;
}

static struct esrc *esrc_get(struct engine *e, int index)
{
	if ((size_t)index >= e->n_src) {
		size_t n = (size_t)index + 1;
		e->src = xrealloc(e->src, n * sizeof *e->src);
		memset(e->src + e->n_src, 0, (n - e->n_src) * sizeof *e->src);
		e->n_src = n;
	}
	struct esrc *s = &e->src[index];
	if (!s->ps)
		s->ps = parser_source_new(e->parser, collector_source_key(e->coll, (size_t)index), e->hint);
	return s;
}

static bool same_file(const struct coll_pos *a, const struct coll_pos *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->fp == b->fp && a->fp_len == b->fp_len;
}

/* The line came from another file than the one this source was reading
 * (rotation, a catch-up file, a fingerprint that grew): find its db row. */
static void esrc_switch(struct engine *e, struct esrc *s, size_t index, const struct coll_pos *pos)
{
	const char *key = collector_source_key(e->coll, index);
	bool grew = s->db_id && pos->dev && pos->dev == s->id.dev && pos->ino == s->id.ino &&
		    pos->fp_len > s->id.fp_len;
	struct db_source ds;
	memset(&ds, 0, sizeof ds);
	ds.kind = DB_SRC_FOLLOW;
	str_copy(ds.path, sizeof ds.path, key, strlen(key));
	ds.dev = pos->dev;
	ds.ino = pos->ino;
	ds.fp_hash = pos->fp;
	ds.fp_len = pos->fp_len;
	if (grew) {
		ds.id = s->db_id;
		if (db_source_update_identity(e->db, &ds) < 0)
			log_error("database: source identity: %s", db_errmsg(e->db));
		s->id = *pos;
		return;
	}
	/* the old file's final position goes into this batch before we leave it */
	if (s->db_id && s->dirty &&
	    db_source_update_offset(e->db, s->db_id, s->offset, s->lines, clock_now()) < 0)
		log_error("database: source offset: %s", db_errmsg(e->db));
	int rc = db_source_get_or_create(e->db, &ds, clock_now());
	if (rc < 0) {
		log_error("database: source: %s", db_errmsg(e->db));
		s->db_id = 0;
		return;
	}
	s->db_id = ds.id;
	s->id = *pos;
	s->lines = ds.lines_read;
	s->offset = ds.offset;
}

/* A followed file was opened (or switched to) and no line of it has come
 * yet: register it now, so that a restart finds it even when it is rotated
 * away before its first line is committed. */
static void sync_sources(struct engine *e)
{
	size_t n = collector_source_count(e->coll);
	for (size_t i = 0; i < n; i++) {
		struct coll_pos pos;
		collector_source_pos(e->coll, i, &pos);
		if (!pos.dev && !pos.fp_len)
			continue; /* nothing open yet */
		struct esrc *s = esrc_get(e, (int)i);
		if (s->db_id && same_file(&pos, &s->id))
			continue;
		if (batch_begin(e) < 0)
			return;
		esrc_switch(e, s, i, &pos);
		if (s->db_id && pos.offset > s->offset) {
			s->offset = pos.offset;
			s->dirty = true;
		}
	}
}

/* The collector's sink. */
static void on_line(void *ctx, const struct coll_line *ln)
{
	struct engine *e = ctx;
	if (e->db_down)
		return;	      /* read again after collector_rewind() */
	if (ln->source < 0) { /* syslog */
		engine_line(e, e->syslog_ps, e->syslog_src_id, ln);
		e->syslog_lines++;
		e->syslog_dirty = e->syslog_src_id != 0;
		if (e->batch_lines >= e->conf.batch_lines)
			batch_commit(e);
		return;
	}
	if (batch_begin(e) < 0)
		return;
	struct esrc *s = esrc_get(e, ln->source);
	struct coll_pos pos;
	collector_source_pos(e->coll, (size_t)ln->source, &pos);
	if (!s->db_id || !same_file(&pos, &s->id))
		esrc_switch(e, s, (size_t)ln->source, &pos);
	if (e->agg_recover && ((same_ident(&pos, &s->agg_id) && ln->off_after <= s->agg_off) ||
			       (same_ident(&pos, &s->agg_prev_id) && ln->off_after <= s->agg_prev_off))) {
		e->no_agg = true; /* counted before the refused batch */
		engine_line(e, s->ps, s->db_id, ln);
		e->no_agg = false;
	} else {
		if (!same_ident(&pos, &s->agg_id)) {
			s->agg_prev_id = s->agg_id;
			s->agg_prev_off = s->agg_off;
			s->agg_id = pos;
		}
		s->agg_off = ln->off_after;
		engine_line(e, s->ps, s->db_id, ln);
	}
	s->offset = ln->off_after;
	s->lines++;
	s->dirty = true;
	if (e->batch_lines >= e->conf.batch_lines)
		batch_commit(e);
}

/* ---------------------------------------------------------------- replay */

/* The sample log is replayed into var/replay.log at a steady rate with each
 * line's syslog time stamp ("Mmm dd hh:mm:ss") replaced by now, looping. */
static int replay_open(struct engine *e)
{
	struct replay *r = &e->replay;
	r->fd = open(r->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (r->fd < 0) {
		log_error("replay: %s: %s", r->path, strerror(errno));
		return -1;
	}
	struct stat sb;
	r->written = fstat(r->fd, &sb) == 0 ? (int64_t)sb.st_size : 0;
	return 0;
}

static int replay_init(struct engine *e)
{
	struct replay *r = &e->replay;
	FILE *f = fopen(e->o->replay, "rb");
	if (!f) {
		log_error("replay: %s: %s", e->o->replay, strerror(errno));
		return -1;
	}
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_append(&r->sample, tmp, n);
	fclose(f);
	if (r->sample.len == 0) {
		log_error("replay: %s is empty", e->o->replay);
		return -1;
	}
	if (r->sample.data[r->sample.len - 1] != '\n')
		buf_appendc(&r->sample, '\n');
	/* var/replay.log beside the database, as an absolute path (the source key) */
	char dir[PATH_MAX], real[PATH_MAX];
	str_copy(dir, sizeof dir, e->db_path, strlen(e->db_path));
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		str_copy(dir, sizeof dir, ".", 1);
	struct buf p = BUF_INIT;
	buf_printf(&p, "%s/replay.log", realpath(dir, real) ? real : dir);
	r->path = xstrdup(buf_str(&p));
	buf_free(&p);
	r->rate = e->o->replay_rate > 0 ? e->o->replay_rate : 50;
	r->last_us = clock_mono_us();
	if (replay_open(e) < 0)
		return -1;
	log_info("replaying %s into %s at %.0f lines/s, time stamps set to now", e->o->replay, r->path,
		 r->rate);
	return 0;
}

static void replay_tick(struct engine *e)
{
	struct replay *r = &e->replay;
	int64_t now_us = clock_mono_us();
	r->owed += r->rate * (double)(now_us - r->last_us) / 1e6;
	r->last_us = now_us;
	if (r->owed < 1)
		return;
	time_t t = (time_t)clock_now();
	struct tm tm;
	localtime_r(&t, &tm);
	char stamp[32];
	strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
	struct buf out = BUF_INIT;
	int n = (int)r->owed;
	r->owed -= n;
	for (int i = 0; i < n; i++) {
		const char *p = r->sample.data + r->at;
		const char *nl = memchr(p, '\n', r->sample.len - r->at);
		size_t len = (size_t)(nl - p);
		/* a classic syslog stamp is 15 bytes; other lines are copied as they are */
		if (len > 16 && p[3] == ' ' && p[6] == ' ' && p[9] == ':' && p[12] == ':' && p[15] == ' ') {
			buf_appends(&out, stamp);
			buf_append(&out, p + 15, len - 15 + 1);
		} else {
			buf_append(&out, p, len + 1);
		}
		r->at += len + 1;
		if (r->at >= r->sample.len) {
			r->at = 0;
			r->rounds++;
		}
	}
	if (r->written + (int64_t)out.len > REPLAY_ROTATE_BYTES) {
		/* rename rotation, exactly like logrotate's create mode */
		struct buf old = BUF_INIT;
		buf_printf(&old, "%s.1", r->path);
		close(r->fd);
		if (rename(r->path, buf_str(&old)) < 0)
			log_warn("replay: rotate: %s", strerror(errno));
		buf_free(&old);
		if (replay_open(e) < 0) {
			buf_free(&out);
			return;
		}
	}
	ssize_t w = write(r->fd, out.data, out.len);
	if (w > 0)
		r->written += w;
	buf_free(&out);
}

/* ---------------------------------------------------------------- setup */

static int engine_db_flags(const struct engine *e)
{
	return DB_RW | (e->o->db_fast ? DB_FAST : 0) | (e->importing ? DB_BULK : 0);
}

static int engine_open(struct engine *e, const struct engine_opts *o, bool importing)
{
	memset(e, 0, sizeof *e);
	e->o = o;
	e->importing = importing; /* import: a bulk database connection, quieter logs */
	e->replay.fd = -1;
	if (cli_load_config(&e->conf, o->config_path) < 0)
		return -1;
	if (cli_load_trusted(&e->conf) < 0)
		return -1;
	e->trusted_n = e->conf.trusted_nets.n;
	if (e->trusted_n)
		log_info("mta_trusted: %zu network(s) the MTA trusts are allow-listed", e->trusted_n);
	if (e->conf.log_syslog)
		log_set_syslog(true, "mxwarden");
	e->db_path = xstrdup(o->db_path ? o->db_path : e->conf.db_path);
	const char *fmt = o->format ? o->format : e->conf.format;
	int m = fmt && strcmp(fmt, "auto") != 0 ? mta_from_name(fmt) : MTA_UNKNOWN;
	if (m < 0) {
		log_error("unknown log format '%s' (auto, postfix, exim, sendmail)", fmt);
		return -1;
	}
	e->hint = (enum mta)m;
	struct errlist errs = {0};
	e->parser = parser_new(&e->conf, &errs);
	for (size_t i = 0; i < errs.msgs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs.v[i]);
	errlist_free(&errs);
	if (!e->parser)
		return -1;
	char err[512];
	e->db = db_open(e->db_path, engine_db_flags(e), err, sizeof err);
	if (!e->db) {
		log_error("%s", err);
		return -1;
	}
	e->agg = aggregator_new(&e->conf);
	struct buf sp = BUF_INIT;
	buf_printf(&sp, "%s.aggstate", e->db_path);
	aggregator_set_state_path(e->agg, buf_str(&sp));
	buf_free(&sp);
	return 0;
}

/* refeed(): the lines of one file between a checkpoint and the committed
 * position, into the aggregator only (they are stored already). */
struct refeed {
	struct engine *e;
	struct aggregator *a;
	struct parser_source *ps;
	int64_t upto;  /* the committed offset: the import goes on from there */
	int64_t lines; /* lines fed */
};

static void refeed_line(void *ctx, const struct coll_line *ln)
{
	struct refeed *r = ctx;
	if (ln->off_after > r->upto)
		return; /* not committed: the import reads it */
	r->lines++;
	struct event ev;
	int reason = 0;
	if (ln->overlong || parser_parse(r->e->parser, r->ps, ln->p, ln->n, &ev, &reason) <= 0)
		return;
	aggregator_event_row(r->a, &ev, 0);
	aggregator_take_attributions(r->a, NULL, NULL); /* stored with the lines already */
}

static int find_source(void *arg, const struct db_source *s)
{
	struct db_source *want = arg;
	if (s->id != want->id)
		return 0;
	*want = *s;
	return 1;
}

/*
 * The aggregator's feeder at a restart (agg_feed_fn): the checkpoint stands
 * at a position of an imported file and later batches of that file were
 * committed (a crash, kill -9 or SIGTERM, during the import): read those
 * lines again from the file, so that the state is the one the import had
 * (the rows stored after the checkpoint lack the connects, accepted mail
 * and ends of sessions, and judge differently). Returns 1 when fed, 0 when
 * the stored rows must do (no file position, the file is gone or changed,
 * rows of another source were stored after it), -1 on a database error.
 */
static int refeed(void *arg, struct aggregator *a, const struct db_checkpoint *c)
{
	struct engine *e = arg;
	if (c->source_id <= 0)
		return 0;
	struct db_source s;
	memset(&s, 0, sizeof s);
	s.id = c->source_id;
	int rc = db_sources_list(e->db, find_source, &s);
	if (rc < 0)
		return -1;
	if (rc == 0 || s.offset <= c->source_offset || s.kind == DB_SRC_STDIN || s.kind == DB_SRC_SYSLOG)
		return 0;
	rc = db_events_other_source_after(e->db, c->max_event_id, s.id);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	struct coll_pos id;
	if (collector_identify(s.path, (uint32_t)s.fp_len, &id) < 0 || id.fp != s.fp_hash ||
	    (int64_t)id.fp_len != s.fp_len) {
		log_warn("%s: not the file the checkpoint was taken in any more: replaying the stored events "
			 "instead",
			 s.path);
		return 0;
	}
	struct coll_pos stored, pos;
	memset(&stored, 0, sizeof stored);
	stored.fp = s.fp_hash;
	stored.fp_len = (uint32_t)s.fp_len;
	stored.offset = c->source_offset;
	struct refeed r = {e, a, parser_source_new(e->parser, s.path, e->hint), s.offset, 0};
	char err[512] = "";
	int64_t n = collector_import(s.path, c->source_offset ? &stored : NULL, &pos, 0, refeed_line, NULL,
				     &r, err, sizeof err);
	parser_source_free(r.ps);
	if (n < 0)
		log_warn("%s", err);
	if (r.lines != s.lines_read - c->source_lines)
		log_warn("%s: read %lld lines again after the checkpoint, the database says %lld", s.path,
			 (long long)r.lines, (long long)(s.lines_read - c->source_lines));
	else
		log_info("%s: %lld lines after the checkpoint read again", s.path, (long long)r.lines);
	return 1;
}

/* Rebuild the aggregator's state (saved state, else a replay of the
 * database) and log how long it took. `run` calls it after the web server
 * started (the dashboard reads SQLite only, so it is up during a long
 * restore); `import` right after engine_open(). */
static void engine_restore(struct engine *e)
{
	int64_t t0 = clock_mono_us();
	/* the judge's clock goes on from the saved state's log time, not from
	 * the wall clock of this start: `run` moves it to the wall clock once
	 * the lines written while it was stopped are read (what lapsed
	 * meanwhile ends then, at its until) */
	int rc = aggregator_restore(e->agg, e->db, clock_now(), refeed, e);
	double secs = (double)(clock_mono_us() - t0) / 1e6;
	/* rows replayed: a checkpoint at the first batch, so that the next
	 * crash does not replay them again */
	struct agg_stats st;
	aggregator_stats(e->agg, &st);
	e->ckpt_last_us = clock_mono_us() - (st.restored ? e->conf.checkpoint_interval * 1000000 : 0);
	e->ckpt_current = rc == 0 && st.from_checkpoint && st.restored == 0;
	if (rc < 0)
		log_warn("aggregator: restore failed after %.2fs: starting with an empty state", secs);
	else if (!e->importing)
		log_info("aggregator: state restored in %.2fs", secs);
}

/* A clean stop (or the end of an import) leaves a checkpoint of the state
 * after the last committed line, in a transaction of its own. Returns true
 * when it is stored; false when the state does not match the committed
 * lines (a refused batch not stored again) or the database refused it. */
static bool checkpoint_final(struct engine *e)
{
	if (!e->db || !e->agg || db_in_batch(e->db) || e->db_down || e->import_failed || e->agg_recover)
		return false;
	if (e->ckpt_current && e->lines == 0)
		return true; /* nothing read since the checkpoint it was restored from */
	if (e->ckpt_written && e->lines == e->ckpt_lines)
		return true; /* the last one holds it (the end of an imported file) */
	int64_t t0 = clock_mono_us();
	if (db_begin(e->db) < 0) {
		log_warn("database: final checkpoint: %s", db_errmsg(e->db));
		return false;
	}
	bool ok = checkpoint_put(e) == 0 && db_commit(e->db) == 0;
	if (!ok) {
		log_warn("database: final checkpoint: %s", db_errmsg(e->db));
		if (db_in_batch(e->db))
			db_rollback(e->db);
	} else {
		log_info("aggregator: state saved in the database in %.2fs",
			 (double)(clock_mono_us() - t0) / 1e6);
	}
	e->ckpt_in_batch = false;
	return ok;
}

static void engine_close(struct engine *e)
{
	e->pipe = NULL;
	db_pipe_free(e->pipe_keep); /* drained at the end of each file */
	e->pipe_keep = NULL;
	if (e->db && db_in_batch(e->db))
		batch_commit(e);
	bool saved = checkpoint_final(e);
	collector_free(e->coll);
	for (size_t i = 0; i < e->n_src; i++)
		parser_source_free(e->src[i].ps);
	free(e->src);
	parser_source_free(e->syslog_ps);
	parser_source_free(e->import_ps);
	parser_free(e->parser);
	/* the file of a clean stop only when the database refused the checkpoint */
	if (!saved && e->agg && e->db && !e->commit_errors)
		aggregator_save(e->agg); /* after the last commit: the next start continues here */
	aggregator_free(e->agg);
	db_close(e->db);
	journal_clear(e);
	free(e->journal);
	free(e->known);
	free(e->db_path);
	buf_free(&e->replay.sample);
	free(e->replay.path);
	if (e->replay.fd >= 0)
		close(e->replay.fd);
	config_free(&e->conf);
}

/* SIGHUP: read the configuration again. What can change while running:
 * batch sizes, new files to follow, the outputs and [safety] (emitters),
 * the allow lists and the MTA's trusted clients (read again from the MTA);
 * the rest needs a restart (logged). */
static void engine_reload(struct engine *e)
{
	if (!e->o->config_path) {
		log_info("SIGHUP: no configuration file to reload (running on the defaults)");
		return;
	}
	struct config nc;
	if (cli_load_config(&nc, e->o->config_path) < 0) {
		log_error("SIGHUP: %s has errors (above); keeping the running configuration",
			  e->o->config_path);
		config_free(&nc);
		return;
	}
	e->conf.batch_lines = nc.batch_lines;
	e->conf.batch_ms = nc.batch_ms;
	for (size_t i = 0; i < nc.follow.n; i++) {
		bool known = false;
		for (size_t j = 0; j < e->conf.follow.n; j++)
			known = known || strcmp(nc.follow.v[i], e->conf.follow.v[j]) == 0;
		if (!known) {
			strv_add(&e->conf.follow, nc.follow.v[i]);
			collector_follow(e->coll, nc.follow.v[i]);
			log_info("SIGHUP: now following %s", nc.follow.v[i]);
		}
	}
	if (cli_load_trusted(&nc) < 0) {
		log_error("SIGHUP: the MTA's trusted clients cannot be read (above); keeping the running "
			  "configuration");
		config_free(&nc);
		return;
	}
	if (e->em) /* outputs and [safety]: emitters keep copies */
		emitters_reconfigure(e->em, &nc);
	/* the aggregator's allow list: allow, allow_files and the MTA's
	 * trusted clients as they are now. e->conf keeps its start values:
	 * the web threads read it (lookup's "allowed", "trusted") */
	aggregator_allow_reload(e->agg, &nc);
	if (nc.trusted_nets.n != e->trusted_n)
		log_info("SIGHUP: mta_trusted: %zu network(s) the MTA trusts are allow-listed (were %zu)",
			 nc.trusted_nets.n, e->trusted_n);
	e->trusted_n = nc.trusted_nets.n;
	config_free(&nc);
	log_info("SIGHUP: configuration %s reloaded (batch sizes, follow list, outputs, allow lists and the "
		 "MTA's trusted clients; other changes need a restart)",
		 e->o->config_path);
}

static void periodic(struct engine *e)
{
	int64_t now_us = clock_mono_us();
	if (e->replay.path)
		replay_tick(e);
	if (e->db_down)
		return; /* the loop brings the collector back at db_retry_us */
	collector_tick(e->coll);
	sync_sources(e);
	maybe_commit(e, false);
	/* a quiet input: the state of the last lines is saved all the same */
	if (!db_in_batch(e->db) && checkpoint_due(e) && batch_begin(e) == 0)
		batch_commit(e);
	if (now_us - e->last_agg_tick_us >= AGG_TICK_EVERY_US) {
		e->last_agg_tick_us = now_us;
		/* a wall clock that steps is logged: a block keeps its UTC until,
		 * an ended one stays ended (README, "Decisions and the clock") */
		int64_t wall_us = clock_now_us();
		int64_t step = (wall_us - e->clk_wall_us) - (now_us - e->clk_mono_us);
		if (e->clk_wall_us && (step > 10000000 || step < -10000000))
			log_warn(
			    "the wall clock stepped %+llds: running blocks keep their until, ended ones stay "
			    "ended",
			    (long long)(step / 1000000));
		e->clk_wall_us = wall_us;
		e->clk_mono_us = now_us;
		/* every tick: expiries, timeout refreshes, reload timeouts */
		hook_emitters(e, hook_aggregator_tick(e, e->drained ? clock_now() : 0));
	}
	if (!db_in_batch(e->db) &&
	    (e->retention_more || now_us - e->last_retention_us >= RETENTION_EVERY_US)) {
		e->last_retention_us = now_us;
		int64_t n = db_retention_run(e->db, clock_now(), &e->conf);
		if (n < 0)
			log_warn("retention: %s", db_errmsg(e->db));
		e->retention_more = n > 0;
	}
}

int engine_run(const struct engine_opts *o)
{
	struct engine *e = xcalloc(1, sizeof *e);
	int rc = 1;
	int sfd = -1, tfd = -1, epfd = -1;
	if (engine_open(e, o, false) < 0)
		goto out;
	/* signals are blocked before any thread starts (threads inherit the
	 * mask) and read from a signalfd in the loop */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* the dashboard first (it reads SQLite only), then the restore, which
	 * may take a while on a big database */
	if (hook_web_start(e, o->listen) < 0)
		goto out;
	engine_restore(e);
	if (db_sources_list(e->db, collect_known, e) < 0) {
		log_error("database: sources: %s", db_errmsg(e->db));
		goto out;
	}
	if (o->replay && replay_init(e) < 0)
		goto out;
	if (e->conf.n_outputs) {
		if (e->conf.rules.dry_run)
			log_info("dry run: the %zu output(s) carry manual decisions only", e->conf.n_outputs);
		struct buf err = BUF_INIT;
		e->em = emitters_new(&e->conf, &err);
		if (!e->em) {
			log_error("outputs: %s", buf_str(&err));
			buf_free(&err);
			goto out;
		}
		buf_free(&err);
		emitters_set_new_database(e->em, db_created(e->db));
	}
	struct prefix_list allow = {0};
	for (size_t i = 0; i < e->conf.syslog_allow.n; i++) {
		struct prefix p;
		const char *s = e->conf.syslog_allow.v[i];
		if (prefix_parse(&p, s, strlen(s), false) == 0)
			prefix_list_add(&allow, &p);
	}
	struct coll_opts co = {
	    .poll_ms = e->conf.poll_interval * 1000,
	    .no_inotify = o->no_inotify,
	    .syslog_listen = o->syslog_listen ? o->syslog_listen : e->conf.syslog_listen,
	    .syslog_max_msg = (size_t)e->conf.syslog_max_msg,
	    .syslog_max_conn = (int)e->conf.syslog_max_conn,
	    .syslog_allow = &allow,
	    .lookup = coll_lookup,
	    .lookup_ctx = e,
	};
	if (o->poll_ms > 0)
		co.poll_ms = o->poll_ms;
	e->coll = collector_new(&co, on_line, e);
	if (!e->coll)
		goto out_allow;
	e->syslog_ps = parser_source_new(e->parser, "syslog", e->hint);
	if (co.syslog_listen) {
		struct db_source ds;
		memset(&ds, 0, sizeof ds);
		ds.kind = DB_SRC_SYSLOG;
		snprintf(ds.path, sizeof ds.path, "syslog:%s", co.syslog_listen);
		if (db_source_get_or_create(e->db, &ds, clock_now()) < 0) {
			log_error("database: source: %s", db_errmsg(e->db));
			goto out_allow;
		}
		e->syslog_src_id = ds.id;
		e->syslog_lines = ds.lines_read;
	}
	size_t nfollow = 0;
	for (size_t i = 0; i < e->conf.follow.n; i++, nfollow++)
		collector_follow(e->coll, e->conf.follow.v[i]);
	for (size_t i = 0; i < o->follow.n; i++, nfollow++)
		collector_follow(e->coll, o->follow.v[i]);
	if (e->replay.path) {
		collector_follow(e->coll, e->replay.path);
		nfollow++;
	}
	if (nfollow == 0 && !co.syslog_listen)
		log_warn("nothing to follow: give --follow FILE, [collector] follow or a syslog listener");

	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || tfd < 0 || epfd < 0) {
		log_error("engine: %s", strerror(errno));
		goto out_allow;
	}
	struct itimerspec its = {{0, TICK_MS * 1000000L}, {0, TICK_MS * 1000000L}};
	timerfd_settime(tfd, 0, &its, NULL);
	struct epoll_event ev = {.events = EPOLLIN};
	ev.data.fd = sfd;
	epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.fd = tfd;
	epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);
	ev.data.fd = collector_fd(e->coll);
	epoll_ctl(epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);

	/* files that exist now are registered at once, before any line */
	sync_sources(e);
	batch_commit(e);
	log_info("running: database %s, %zu file(s) followed%s", e->db_path, collector_source_count(e->coll),
		 co.syslog_listen ? ", syslog receiver on" : "");
	int more = 1;
	while (!e->stop) {
		struct epoll_event evs[8];
		int n = epoll_wait(epfd, evs, MXW_ARRAY_LEN(evs), more ? 0 : -1);
		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == sfd) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
					if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
						log_info("signal %u: flushing the open batch and stopping",
							 si.ssi_signo);
						e->stop = true;
					} else if (si.ssi_signo == SIGHUP) {
						engine_reload(e);
					} else if (si.ssi_signo == SIGCHLD) {
						hook_child_exited(e);
					}
				}
			} else if (evs[i].data.fd == tfd) {
				uint64_t ticks;
				while (read(tfd, &ticks, sizeof ticks) > 0)
					;
				periodic(e);
			}
		}
		if (e->stop)
			break;
		if (e->db_down) {
			if (!e->rewound) {
				/* outside the sink: drop what was read since the last commit */
				collector_rewind(e->coll);
				epoll_ctl(epfd, EPOLL_CTL_DEL, collector_fd(e->coll), NULL);
				e->rewound = true;
			}
			more = 0;
			if (clock_mono_us() < e->db_retry_us)
				continue;
			e->db_down = false;
			e->rewound = false;
			ev.data.fd = collector_fd(e->coll);
			epoll_ctl(epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
			log_info("database: trying again from the committed positions");
		}
		more = collector_run(e->coll);
		e->drained = !more;
		/* lines wait at most batch_ms (a busy loop must not starve the timer's
		 * flush); when the input is drained, a batch a quarter that old is
		 * committed already: low latency when idle, big batches under load */
		if (!more && db_in_batch(e->db) &&
		    clock_mono_us() - e->batch_start_us >= e->conf.batch_ms * 1000 / 4)
			batch_commit(e);
		else
			maybe_commit(e, false);
	}
	hook_web_stop(e);
	if (db_in_batch(e->db))
		batch_commit(e);
	struct coll_stats cs;
	collector_stats(e->coll, &cs);
	log_info("stopped: %llu lines, %llu events, %llu unparsed, %llu overlong, %llu rotations, %llu "
		 "truncations, "
		 "%llu commits",
		 (unsigned long long)e->lines, (unsigned long long)e->events,
		 (unsigned long long)e->unparsed_total, (unsigned long long)cs.overlong,
		 (unsigned long long)cs.rotations, (unsigned long long)cs.truncations,
		 (unsigned long long)e->commits);
	rc = e->commit_errors ? 1 : 0;
out_allow:
	prefix_list_free(&allow);
out:
	hook_web_stop(e); /* after an early failure; a no-op when stopped */
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	if (epfd >= 0)
		close(epfd);
	if (e->em && emitters_drain(e->em, 2000) < 0)
		log_warn("outputs: a reload command still runs at exit; killed");
	emitters_free(e->em);
	free(e->em_active);
	engine_close(e);
	free(e);
	return rc;
}

/* ---------------------------------------------------------------- import */

static void import_line(void *ctx, const struct coll_line *ln)
{
	struct engine *e = ctx;
	if (e->import_failed)
		return; /* nothing more of this file: the rest is read by the next import */
	engine_line(e, e->import_ps, e->import_src_id, ln);
	e->import_offset = ln->off_after;
	e->import_lines++;
	if (e->batch_lines >= e->conf.batch_lines)
		batch_commit(e);
}

static void import_progress(void *ctx, int64_t disk_read, int64_t disk_size, int64_t lines)
{
	struct engine *e = ctx;
	int64_t now = clock_mono_us();
	bool last = disk_size > 0 && disk_read >= disk_size;
	if ((!last && now - e->progress_last_us < 250000) || (last && e->progress_done))
		return;
	e->progress_done = last;
	e->progress_last_us = now;
	double secs = (double)(now - e->progress_t0_us) / 1e6;
	double rate = secs > 0 ? (double)lines / secs : 0;
	char eta[32] = "?";
	if (disk_size > 0 && disk_read > 0 && secs > 0) {
		double left = secs * (double)(disk_size - disk_read) / (double)disk_read;
		snprintf(eta, sizeof eta, "%.0fs", left);
	}
	fprintf(stderr, "\r%s: %lld lines, %.0f lines/s, %3.0f%%, ETA %s   %s", e->progress_name,
		(long long)lines, rate, disk_size > 0 ? 100.0 * (double)disk_read / (double)disk_size : 0.0,
		eta, last ? "\n" : "");
}

static int engine_db_flags(const struct engine *e);

static int import_one(struct engine *e, const char *path, bool tty)
{
	bool is_stdin = strcmp(path, "-") == 0;
	char real[PATH_MAX];
	if (!is_stdin && !realpath(path, real)) {
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	struct db_source ds;
	memset(&ds, 0, sizeof ds);
	struct coll_pos stored, *sp = NULL;
	if (is_stdin) {
		ds.kind = DB_SRC_STDIN;
		str_copy(ds.path, sizeof ds.path, "-", 1);
	} else {
		struct coll_pos id;
		if (collector_identify(real, 0, &id) < 0) {
			log_error("%s: %s", path, strerror(errno));
			return -1;
		}
		/* read before, as this file or under another name (rotated, compressed)? */
		struct db_source prev;
		if (id.fp_len && db_source_find_fp(e->db, id.fp, id.fp_len, &prev) == 1) {
			memset(&stored, 0, sizeof stored);
			stored.fp = prev.fp_hash;
			stored.fp_len = (uint32_t)prev.fp_len;
			stored.offset = prev.offset;
			sp = &stored;
		}
		ds.kind = DB_SRC_IMPORT;
		str_copy(ds.path, sizeof ds.path, real, strlen(real));
		ds.dev = id.dev;
		ds.ino = id.ino;
		ds.fp_hash = id.fp;
		ds.fp_len = id.fp_len;
	}
	e->import_failed = false;
	if (batch_begin(e) < 0)
		return -1;
	if (db_source_get_or_create(e->db, &ds, clock_now()) < 0) {
		log_error("database: source: %s", db_errmsg(e->db));
		return -1;
	}
	e->import_src_id = ds.id;
	e->import_lines = ds.lines_read;
	e->import_offset = ds.offset;
	if (sp && sp->offset > e->import_offset)
		e->import_offset = sp->offset;
	/* the checkpoint stands at the start of this file, so that a crash in
	 * it reads the file again from here (refeed()), not the stored rows:
	 * re-pointed when it holds the state already, else written */
	if (e->conf.checkpoint_interval > 0) {
		bool exact = e->lines == e->ckpt_lines && (e->ckpt_written || e->ckpt_current);
		int r = exact ? db_checkpoint_set_source(e->db, e->import_src_id, e->import_offset,
							 e->import_lines)
			      : checkpoint_put(e);
		if (r < 0) {
			log_error("database: checkpoint: %s", db_errmsg(e->db));
			db_failed(e);
			return -1;
		}
	}
	if (!e->o->no_pipeline && !e->pipe_failed) {
		/* the source row first, in a transaction of its own (the pipe is
		 * drained); then the lines through the pipe: parsing here, SQLite
		 * on the writer thread */
		if (batch_commit(e) < 0)
			return -1;
		char err[512];
		if (!e->pipe_keep &&
		    !(e->pipe_keep = db_pipe_new(e->db, engine_db_flags(e), err, sizeof err)))
			log_warn("%s: importing on one thread", err);
		e->pipe = e->pipe_keep;
	}
	parser_source_free(e->import_ps);
	e->import_ps = parser_source_new(e->parser, path, e->hint);
	e->progress_t0_us = e->progress_last_us = clock_mono_us();
	e->progress_done = false;
	e->progress_name = path;
	struct coll_pos pos;
	char err[512] = "";
	int64_t n = collector_import(path, sp, &pos, 0, import_line, tty ? import_progress : NULL, e, err,
				     sizeof err);
	int rc = 0;
	if (n < 0) {
		if (tty)
			fputc('\n', stderr);
		log_error("%s", err);
		rc = -1;
	}
	/* the state at the end of each file goes with its last batch: a crash
	 * in the next file reads only that one again (refeed()) */
	if (!e->import_failed && n > 0 && e->conf.checkpoint_interval > 0 && batch_begin(e) == 0)
		e->ckpt_force = true;
	if (batch_commit(e) < 0)
		rc = -1;
	if (e->pipe) {
		if (!e->import_failed && db_pipe_drain(e->pipe) < 0)
			pipe_failed(e);
		if (e->import_failed) {
			/* a refused batch: the pipe writes nothing more; the next
			 * files are read on one thread */
			e->pipe_failed = true;
		}
		e->pipe = NULL;
	}
	e->import_src_id = 0;
	if (e->import_failed) {
		if (tty)
			fputc('\n', stderr);
		log_error(
		    "%s: stopped: the database refused a batch; what was committed stays, and importing the "
		    "file again continues after it",
		    path);
		rc = -1;
		n = -1;
	}
	double secs = (double)(clock_mono_us() - e->progress_t0_us) / 1e6;
	if (n >= 0)
		log_info("%s: %lld new lines in %.2fs (%.0f lines/s)%s", path, (long long)n, secs,
			 secs > 0 ? (double)n / secs : 0.0, n == 0 && sp ? ", already imported" : "");
	return rc;
}

int engine_import(const struct engine_opts *o, char **files, int nfiles)
{
	struct engine *e = xcalloc(1, sizeof *e);
	int rc = 1;
	if (engine_open(e, o, true) < 0)
		goto out;
	engine_restore(e);
	/* bigger batches for bulk work (IMPORT_BATCH_FACTOR x batch_lines,
	 * 100,000 lines by default): fewer commits and fewer rollup upserts
	 * (one per key and batch), the same exactly-once; import needs no low
	 * latency. Two batches are in memory at a time (one staged, one being
	 * written): a few MB each. */
	if (e->conf.batch_lines < INT64_MAX / IMPORT_BATCH_FACTOR)
		e->conf.batch_lines *= IMPORT_BATCH_FACTOR;
	bool tty = isatty(2) && !o->quiet;
	rc = 0;
	int64_t t0 = clock_mono_us();
	uint64_t l0 = e->lines;
	for (int i = 0; i < nfiles; i++)
		if (import_one(e, files[i], tty) < 0)
			rc = 1;
	double secs = (double)(clock_mono_us() - t0) / 1e6;
	log_info("import: %llu lines, %llu events, %llu unparsed, %llu decisions in %.2fs (%.0f lines/s)",
		 (unsigned long long)(e->lines - l0), (unsigned long long)e->events,
		 (unsigned long long)e->unparsed_total, (unsigned long long)e->decisions_made, secs,
		 secs > 0 ? (double)(e->lines - l0) / secs : 0.0);
out:
	engine_close(e);
	free(e);
	return rc;
}
