/*
 * batch.c - one line in, and the batch it goes into. eng_line() parses a
 * line, stores its event in the open batch and lets the aggregator see it;
 * the aggregator's decision changes and attributions are stored in the same
 * batch, so they commit with the lines that caused them. eng_batch_commit()
 * adds the unparsed counts, every source's offset and, when due, the
 * aggregator's checkpoint, then commits: all of it or nothing.
 *
 * A refused begin or commit (eng_db_failed) drops the batch. The decision
 * changes made in it are kept in the journal and stored again at the next
 * begin (the aggregator made them once and will not again); `run` reads
 * the lines again from the committed offsets (sources.c), `import` stops
 * the file.
 *
 * An import stages its batches in a db_pipe instead: parsed here, written
 * by the pipe's writer thread (pipe_commit).
 *
 * It must never commit an offset without the events before it, or the
 * aggregator's checkpoint with a state that holds lines not committed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* Remember a change stored in the open batch (the journal). */
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

void eng_journal_clear(struct engine *e)
{
	for (size_t i = 0; i < e->n_journal; i++)
		free(e->journal[i].evidence);
	e->n_journal = 0;
	e->redo = false;
}

static int64_t store_change_db(struct engine *e, const struct agg_change *ch);

/* Store one change the aggregator queued, in the open batch. */
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
		else if (ch->d->id > 0)
			eng_notify_add(e, ch, ch->d);
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
	if (!e->pipe)
		eng_notify_add(e, ch, &d);
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

/*
 * hook_aggregator_event: called for every parsed event, in log order, inside
 * the open batch (after db_event_insert, so evidence rows exist). The
 * aggregator updates its windows here and may store decisions in the same
 * batch (db_decision_insert), so decisions commit with the lines that caused
 * them. evidence_id is the stored row (0 when the event is only counted).
 */
static void hook_aggregator_event(struct engine *e, const struct event *ev, int64_t evidence_id)
{
	if (e->no_agg)
		return; /* seen before a refused batch: stored again, counted once */
	aggregator_event_row(e->agg, ev, evidence_id);
	aggregator_take_attributions(e->agg, store_attribution, e);
	aggregator_take_changes(e->agg, store_change, e);
}

/*
 * eng_aggregator_tick: called about once a second, outside of any line,
 * with the wall clock (clock_now()) when the sources are drained, else 0:
 * the judge's clock is log time (aggregator.h, "Time"), and the wall clock
 * moves it on only when no line waits (an idle server still ends blocks;
 * lines still to read are judged at their own time, as an import judges
 * them). Ends decisions, evicts idle state, picks up `mxwarden
 * block/unblock` from the database. Returns true when decisions changed
 * (the emitters then run).
 */
bool eng_aggregator_tick(struct engine *e, int64_t now)
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
	if (e->redo && eng_batch_begin(e) < 0)
		return false;
	aggregator_take_changes(e->agg, store_change, e);
	if (aggregator_sync(e->agg, e->db, clk) > 0) {
		const struct decision *v;
		size_t n;
		aggregator_active(e->agg, &v, &n);
		log_info("decisions changed in the database (block/unblock): %zu in force", n);
		e->decisions_changed = true;
		/* an operator's block or unblock (the audit trail says so) is
		 * deliberate: the blocklists take it whatever it changes (an
		 * unblock of the last decision must not wait for the breaker) */
		int64_t audit = db_audit_last_id(e->db);
		if (audit > e->audit_seen && e->em)
			emitters_breaker_release(e->em);
		if (audit >= 0)
			e->audit_seen = audit;
	}
	if (eng_allows_sync(e) > 0)
		e->decisions_changed = true;
	bool changed = e->decisions_changed;
	e->decisions_changed = false;
	return changed;
}

/* ---------------------------------------------------------------- batches */

/*
 * A begin or commit failed (the database is locked by another writer past
 * the busy timeout, the disk is full, ...): nothing of the batch is stored.
 * Following: the lines since the last commit are read again from the
 * committed positions (collector_rewind, done by the loop outside of the
 * sink) after a pause of a second; syslog messages of the batch are lost
 * (logged). Importing: the import of this file stops; running it again
 * continues from the last committed offset.
 */
void eng_db_failed(struct engine *e)
{
	if (db_in_batch(e->db))
		db_rollback(e->db);
	memset(e->unparsed, 0, sizeof e->unparsed);
	bool saw = e->batch_lines > 0;
	e->batch_lines = 0;
	e->ckpt_in_batch = false;
	e->redo = e->n_journal > 0;
	eng_notify_flush(e, false); /* the journal stores them again, and they are told then */
	if (e->importing) {
		e->import_failed = true;
		return;
	}
	if (!e->db_down)
		log_warn("database unavailable: the lines of the open batch will be read again in 1 s%s",
			 e->syslog_dirty ? " (its syslog messages are lost)" : "");
	e->db_down = true;
	if (saw)
		e->agg_recover = true; /* see eng_on_line */
	e->db_retry_us = clock_mono_us() + 1000000;
	for (size_t i = 0; i < e->n_src; i++) {
		e->src[i].db_id = 0; /* resolved again from the database */
		e->src[i].dirty = false;
	}
	e->syslog_dirty = false;
}

int eng_batch_begin(struct engine *e)
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
		eng_db_failed(e);
		return -1;
	}
	e->batch_lines = 0;
	e->batch_start_us = clock_mono_us();
	if (e->redo && journal_redo(e) < 0) {
		log_error("database: %s", db_errmsg(e->db));
		eng_db_failed(e);
		return -1;
	}
	return 0;
}

/*
 * The aggregator's checkpoint, stored in the open batch: it then commits
 * with the batch's events and file offsets, so that it holds exactly the
 * committed lines. Returns 0, or -1 (a database error: the batch fails).
 */
int eng_checkpoint_put(struct engine *e)
{
	char *data;
	size_t len;
	int64_t newest;
	int64_t t0 = clock_mono_us();
	if (aggregator_checkpoint(e->agg, &data, &len, &newest) < 0)
		return 0; /* logged; the last checkpoint stays */
	int rc = db_checkpoint_put(e->db, clock_now(), newest, (int64_t)e->lines, data, len);
	free(data);
	/* an import: where in its file (eng_refeed()) */
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

bool eng_checkpoint_due(const struct engine *e)
{
	/* not while lines the aggregator saw are being stored again: a crash
	 * would read them once more on top of the checkpoint */
	return e->conf.checkpoint_interval > 0 && e->lines != e->ckpt_lines && !e->agg_recover &&
	       !e->ckpt_pid &&
	       (e->ckpt_force || clock_mono_us() - e->ckpt_last_us >= e->conf.checkpoint_interval * 1000000);
}

/* Stage the positions of every source that moved, then commit. Returns 0,
 * or -1 (the batch was rolled back: nothing of it is stored, and the
 * positions of the sources are not either, so the lines are read again). */
static int pipe_commit(struct engine *e);

int eng_batch_commit(struct engine *e)
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
	/* the journal's cursor: after the entries whose events are in the batch */
	const char *cur = e->sdj ? coll_journal_cursor(e->sdj) : NULL;
	bool sdj_moved = cur && (!e->sdj_committed || strcmp(cur, e->sdj_committed) != 0);
	if (sdj_moved && db_source_set_cursor(e->db, e->sdj_src_id, cur, e->sdj_lines, now) < 0)
		goto fail;
	if (e->import_src_id &&
	    db_source_update_offset(e->db, e->import_src_id, e->import_offset, e->import_lines, now) < 0)
		goto fail;
	if (!eng_checkpoint_forks(e) && eng_checkpoint_due(e) && eng_checkpoint_put(e) < 0)
		goto fail;
	if (db_commit(e->db) < 0) {
		log_error("database: commit: %s", db_errmsg(e->db));
		web_set_ingest_error(e->web, db_errmsg(e->db));
		e->commit_errors++;
		eng_db_failed(e);
		return -1;
	}
	eng_journal_clear(e);
	eng_notify_flush(e, true);
	bool behind = false; /* a source still below what the aggregator saw */
	for (size_t i = 0; i < e->n_src; i++) {
		struct esrc *s = &e->src[i];
		if (s->dirty)
			eng_known_update(e, i);
		s->dirty = false;
		behind = behind || (eng_same_ident(&s->id, &s->agg_id) && s->offset < s->agg_off) ||
			 (eng_same_ident(&s->id, &s->agg_prev_id) && s->offset < s->agg_prev_off);
	}
	if (sdj_moved) {
		free(e->sdj_committed);
		e->sdj_committed = xstrdup(cur);
		e->sdj_committed_lines = e->sdj_lines;
	}
	behind = behind || (e->sdj && e->sdj_lines < e->sdj_agg_lines);
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
	if (eng_checkpoint_forks(e) && eng_checkpoint_due(e))
		eng_checkpoint_fork(e);	    /* the state holds exactly what was committed */
	web_set_ingest_error(e->web, NULL); /* a few commits a second: one uncontended lock each */
	e->commits++;
	e->batch_lines = 0;
	eng_outputs_update(e, e->decisions_changed);
	e->decisions_changed = false;
	return 0;
fail:
	log_error("database: %s", db_errmsg(e->db));
	db_rollback(e->db);
	e->commit_errors++;
	eng_db_failed(e);
	return -1;
}

/* The pipe's failure, seen at a submit or drain: the import of this file
 * stops (what was committed stays). */
void eng_pipe_failed(struct engine *e)
{
	if (!e->import_failed)
		log_error("database: %s", db_pipe_errmsg(e->pipe));
	e->commit_errors++;
	e->import_failed = true;
}

/* eng_batch_commit() of an import through the pipe: stage the unparsed counts
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
	if (!e->import_failed && eng_checkpoint_due(e)) {
		/* with the batch, at its position in the file (eng_refeed()) */
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
		eng_pipe_failed(e);
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
void eng_line(struct engine *e, struct parser_source *ps, int64_t source_id, const struct coll_line *ln)
{
	if (eng_batch_begin(e) < 0)
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
	if (ev.host.n) /* its envelope named the MX host: counted per host, parsed or not */
		e->pipe ? db_pipe_host_line(e->pipe, ev.host.p, ev.host.n, ev.ts_us)
			: db_host_line(e->db, ev.host.p, ev.host.n, ev.ts_us);
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

void eng_maybe_commit(struct engine *e, bool force)
{
	if (!db_in_batch(e->db))
		return;
	if (force || e->batch_lines >= e->conf.batch_lines ||
	    clock_mono_us() - e->batch_start_us >= e->conf.batch_ms * 1000)
		eng_batch_commit(e);
}

/* A clean stop (or the end of an import) leaves a checkpoint of the state
 * after the last committed line, in a transaction of its own. Returns true
 * when it is stored; false when the state does not match the committed
 * lines (a refused batch not stored again) or the database refused it. */
bool eng_checkpoint_final(struct engine *e)
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
	bool ok = eng_checkpoint_put(e) == 0 && db_commit(e->db) == 0;
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
