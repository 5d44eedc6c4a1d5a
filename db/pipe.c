/*
 * pipe.c - pipelined batches for bulk work (`mxwarden import`): the engine
 * thread stages a batch in memory (evidence events copied, every event's
 * counted fields, decisions, unparsed counts, offsets) while ONE writer thread
 * runs the SQLite writes of the previous batch on its own connection, each
 * batch in one transaction. Two stages alternate: the one being filled and
 * the one being written.
 *
 * The writer thread is the only thread that writes SQLite while a pipe is
 * open; the engine's own connection is then used for reads only (the
 * aggregator's count of past decisions), and those reads see the staged
 * decisions too (db_decisions_count()), consistently: a stage's COMMIT and
 * the "committed" mark are made under the pipe's lock, and a count runs
 * under it, so a decision is counted once, either from SQLite or from
 * memory.
 *
 * It must never commit part of a batch, write a batch after a failed one,
 * or let the engine thread touch a stage while the writer holds it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"

/* An evidence event; its spans hold offsets into the stage's arena + 1
 * (0 = NULL) until the writer rebases them. */
struct stage_ev {
	struct event ev;
	int64_t source_id;
};

enum stage_dec_kind { DEC_NEW, DEC_UPGRADE, DEC_END };
struct stage_dec {
	struct decision d;
	size_t json; /* arena offset + 1 of the evidence JSON text (NUL-terminated), 0 = none */
	size_t who;  /* likewise for the author; the end's reason for DEC_END */
	enum stage_dec_kind kind;
	enum response from; /* DEC_UPGRADE */
	int64_t at;	    /* DEC_UPGRADE, DEC_END */
};

struct stage_unparsed {
	char reason[48];
	int64_t n;
};

struct stage_off {
	int64_t id, offset, lines, now;
};

/* db_event_attribute() of row (a handle or a real id), or, with dropped >
 * 0, db_attribution_dropped(dropped). */
struct stage_attr {
	int64_t row, dropped;
	struct ipaddr ip;
	struct prefix cls;
};

struct db_stage {
	struct agg agg;		 /* the batch's counts (the writer adds cnt[] to them) */
	struct db_countrec *cnt; /* every event, to count: cheap to stage, counted by the writer */
	size_t ncnt, capcnt;
	struct buf arena;
	struct stage_ev *ev;
	size_t nev, capev;
	struct stage_dec *dec;
	size_t ndec, capdec;
	struct stage_unparsed unp[64];
	size_t nunp;
	struct stage_off *off;
	size_t noff, capoff;
	struct stage_attr *attr;
	size_t nattr, capattr;
	bool committed; /* under the pipe's lock: its decisions are in SQLite now */
	/* db_pipe_checkpoint(): written last in the batch (ckpt NULL = none) */
	char *ckpt;
	size_t ckpt_len;
	int64_t ckpt_at, ckpt_newest, ckpt_lines, ckpt_src, ckpt_off, ckpt_src_lines;
};

struct db_pipe {
	struct db *r; /* the engine's connection (reads only while the pipe is open) */
	struct db *w; /* the writer's connection */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct db_stage stages[2];
	struct db_stage *fill;	/* the engine fills it */
	struct db_stage *busy;	/* the writer writes it; NULL when idle */
	struct db_stage *spare; /* written and cleared; NULL while busy */
	bool stop;
	bool failed;	      /* a write failed: later batches are dropped */
	int wal_frames;	      /* frames in the writer's WAL after its last commit (wal hook) */
	uint64_t staged_rows; /* engine thread: rows staged over the pipe's life (handles) */
	int64_t *ids;	      /* writer thread: ids[h - 1] is the id of handle h's row */
	size_t nids, capids;
	char err[512];
	uint64_t commits;
};

static void stage_clear(struct db_stage *s)
{
	agg_clear(&s->agg);
	buf_reset(&s->arena);
	s->nev = s->ndec = s->nunp = s->noff = s->ncnt = s->nattr = 0;
	s->committed = false;
	free(s->ckpt);
	s->ckpt = NULL;
}

static void stage_free(struct db_stage *s)
{
	agg_free(&s->agg);
	buf_free(&s->arena);
	free(s->ev);
	free(s->cnt);
	free(s->dec);
	free(s->off);
	free(s->attr);
	free(s->ckpt);
}

/* Copy n bytes at p into the arena: the offset + 1, or 0 for NULL. */
static size_t arena_put(struct db_stage *s, const char *p, size_t n, bool nul)
{
	if (!p)
		return 0;
	size_t at = s->arena.len;
	buf_append(&s->arena, p, n);
	if (nul)
		buf_appendc(&s->arena, '\0');
	return at + 1;
}

static struct span span_put(struct db_stage *s, struct span sp)
{
	size_t at = arena_put(s, sp.p, sp.n, false);
	return (struct span){(const char *)(uintptr_t)at, sp.n};
}

static struct span span_at(const struct db_stage *s, struct span sp)
{
	uintptr_t at = (uintptr_t)sp.p;
	return at ? (struct span){s->arena.data + at - 1, sp.n} : SPAN_NULL;
}

/* ------------------------------------------------------------ the writer */

/* Checkpoint the writer's WAL once it holds this many frames (pages):
 * 16 MiB with 4 KiB pages. */
#define PIPE_CHECKPOINT_FRAMES 4096

static int wal_hook(void *arg, sqlite3 *h, const char *name, int frames)
{
	(void)h;
	(void)name;
	((struct db_pipe *)arg)->wal_frames = frames;
	return SQLITE_OK;
}

static int stage_write(struct db_pipe *p, struct db_stage *s)
{
	struct db *w = p->w;
	if (db_begin(w) < 0)
		return -1;
	/* the stage's counts become the batch's (swapped back below) */
	struct agg keep = w->agg;
	w->agg = s->agg;
	s->agg = keep;
	for (size_t i = 0; i < s->ncnt; i++)
		db_count_rec(&w->agg, &s->cnt[i]);
	for (size_t i = 0; i < s->nev; i++) {
		struct event ev = s->ev[i].ev;
		ev.host = span_at(s, ev.host);
		ev.program = span_at(s, ev.program);
		ev.queue_id = span_at(s, ev.queue_id);
		ev.rdns = span_at(s, ev.rdns);
		ev.helo = span_at(s, ev.helo);
		ev.from = span_at(s, ev.from);
		ev.to = span_at(s, ev.to);
		ev.user = span_at(s, ev.user);
		ev.dsn = span_at(s, ev.dsn);
		ev.text = span_at(s, ev.text);
		ev.line = span_at(s, ev.line);
		int64_t id = db_event_row(w, &ev, s->ev[i].source_id);
		if (id < 0)
			goto fail;
		if (p->nids == p->capids) {
			p->capids = p->capids ? 2 * p->capids : 4096;
			p->ids = xrealloc(p->ids, p->capids * sizeof(*p->ids));
		}
		p->ids[p->nids++] = id;
	}
	for (size_t i = 0; i < s->nattr; i++) {
		const struct stage_attr *x = &s->attr[i];
		if (x->dropped > 0) {
			if (db_attribution_dropped(w, x->dropped) < 0)
				goto fail;
			continue;
		}
		int64_t row = x->row;
		if (row & DB_PIPE_ROW) {
			uint64_t h = (uint64_t)(row & ~DB_PIPE_ROW);
			if (h == 0 || h > p->nids) {
				db_fail(w, "attribution of an unknown staged row");
				goto fail;
			}
			row = p->ids[h - 1];
		}
		if (db_event_attribute(w, row, &x->ip, &x->cls) < 0)
			goto fail;
	}
	for (size_t i = 0; i < s->ndec; i++) {
		const struct stage_dec *x = &s->dec[i];
		struct decision d = x->d;
		d.id = 0;
		const char *json = x->json ? s->arena.data + x->json - 1 : NULL;
		const char *who = x->who ? s->arena.data + x->who - 1 : NULL;
		if (x->kind == DEC_NEW) {
			if (db_decision_insert(w, &d, json, who) < 0)
				goto fail;
			continue;
		}
		/* a change of a decision written by this pipe: found by prefix
		 * and since (an upgrade keeps both) */
		d.id = db_decision_find(w, &d.prefix, d.since);
		if (d.id < 0)
			goto fail;
		if (d.id == 0)
			continue; /* not stored (pruned meanwhile): nothing to change */
		if (x->kind == DEC_UPGRADE
			? db_decision_upgrade(w, &d, x->from, json, x->at) < 0
			: db_decision_end(w, d.id, x->at, "engine", who ? who : "ended") < 0)
			goto fail;
	}
	for (size_t i = 0; i < s->nunp; i++)
		if (db_unparsed_add(w, s->unp[i].reason, s->unp[i].n) < 0)
			goto fail;
	for (size_t i = 0; i < s->noff; i++)
		if (db_source_update_offset(w, s->off[i].id, s->off[i].offset, s->off[i].lines,
					    s->off[i].now) < 0)
			goto fail;
	if (db_agg_flush(w) < 0)
		goto fail;
	/* after the batch's events: its max_event_id counts them */
	if (s->ckpt &&
	    (db_checkpoint_put(w, s->ckpt_at, s->ckpt_newest, s->ckpt_lines, s->ckpt, s->ckpt_len) < 0 ||
	     (s->ckpt_src && db_checkpoint_set_source(w, s->ckpt_src, s->ckpt_off, s->ckpt_src_lines) < 0)))
		goto fail;
	sqlite3_stmt *st = db_stmt(w, Q_COMMIT);
	if (!st)
		goto fail;
	pthread_mutex_lock(&p->mu);
	int rc = db_step_done(w, st, "commit");
	if (rc == 0)
		s->committed = true;
	pthread_mutex_unlock(&p->mu);
	if (rc < 0)
		goto fail;
	w->in_batch = false;
	agg_clear(&w->agg);
	keep = w->agg;
	w->agg = s->agg;
	s->agg = keep;
	return 0;
fail:;
	char msg[sizeof(w->err)];
	memcpy(msg, w->err, sizeof(msg));
	db_rollback(w);
	memcpy(w->err, msg, sizeof(msg));
	keep = w->agg;
	w->agg = s->agg;
	s->agg = keep;
	return -1;
}

static void *writer_main(void *arg)
{
	struct db_pipe *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->busy && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->busy)
			break;
		struct db_stage *s = p->busy;
		bool skip = p->failed;
		pthread_mutex_unlock(&p->mu);
		int rc = skip ? -1 : stage_write(p, s);
		pthread_mutex_lock(&p->mu);
		if (rc < 0 && !p->failed) {
			p->failed = true;
			str_copy(p->err, sizeof(p->err), p->w->err, strlen(p->w->err));
		}
		if (rc == 0)
			p->commits++;
		/* cleared under the lock: a decision count may look at busy */
		stage_clear(s);
		p->spare = s;
		p->busy = NULL;
		pthread_cond_broadcast(&p->cv);
		/* Checkpoint here, on the writer thread, with the stage handed
		 * back, while the engine parses on: otherwise the whole import's
		 * WAL is copied and synced at the last close, after the parsing
		 * ended. PASSIVE: never waits for readers. */
		if (rc == 0 && p->wal_frames >= PIPE_CHECKPOINT_FRAMES) {
			p->wal_frames = 0;
			pthread_mutex_unlock(&p->mu);
			sqlite3_wal_checkpoint_v2(p->w->h, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
			pthread_mutex_lock(&p->mu);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* --------------------------------------------------------------- the API */

struct db_pipe *db_pipe_new(struct db *db, int flags, char *err, size_t errsz)
{
	if (!db->rw || db->in_batch || db->pipe) {
		snprintf(err, errsz, "db_pipe_new: needs a read-write connection with no batch or pipe open");
		return NULL;
	}
	struct db_pipe *p = xcalloc(1, sizeof(*p));
	p->w = db_open(db->path, flags | DB_RW, err, errsz);
	if (!p->w) {
		free(p);
		return NULL;
	}
	p->r = db;
	p->w->hosts_live = false; /* an import: hosts seen, not heard from now */
	/* our hook replaces SQLite's auto-checkpoint on this connection */
	sqlite3_wal_hook(p->w->h, wal_hook, p);
	p->fill = &p->stages[0];
	p->spare = &p->stages[1];
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	int rc = pthread_create(&p->th, NULL, writer_main, p);
	if (rc != 0) {
		snprintf(err, errsz, "db_pipe_new: cannot start the writer thread: %s", strerror(rc));
		db_close(p->w);
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
		return NULL;
	}
	db->pipe = p;
	return p;
}

void db_pipe_free(struct db_pipe *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	p->r->pipe = NULL;
	db_close(p->w);
	stage_free(&p->stages[0]);
	stage_free(&p->stages[1]);
	free(p->ids);
	free(p);
}

int64_t db_pipe_event(struct db_pipe *p, const struct event *ev, int64_t source_id)
{
	struct db_stage *s = p->fill;
	if (db_event_check(p->r, ev) < 0)
		return -1;
	if (s->ncnt == s->capcnt) {
		s->capcnt = s->capcnt ? 2 * s->capcnt : 4096;
		s->cnt = xrealloc(s->cnt, s->capcnt * sizeof(*s->cnt));
	}
	db_countrec_of(&s->cnt[s->ncnt++], ev);
	if (!db_event_is_evidence(ev))
		return 0;
	if (s->nev == s->capev) {
		s->capev = s->capev ? 2 * s->capev : 1024;
		s->ev = xrealloc(s->ev, s->capev * sizeof(*s->ev));
	}
	struct stage_ev *x = &s->ev[s->nev++];
	x->ev = *ev;
	x->source_id = source_id;
	x->ev.host = span_put(s, ev->host);
	x->ev.program = span_put(s, ev->program);
	x->ev.queue_id = span_put(s, ev->queue_id);
	x->ev.rdns = span_put(s, ev->rdns);
	x->ev.helo = span_put(s, ev->helo);
	x->ev.from = span_put(s, ev->from);
	x->ev.to = span_put(s, ev->to);
	x->ev.user = span_put(s, ev->user);
	x->ev.dsn = span_put(s, ev->dsn);
	x->ev.text = span_put(s, ev->text);
	x->ev.line = span_put(s, ev->line);
	return DB_PIPE_ROW | (int64_t)++p->staged_rows;
}

static struct stage_attr *attr_new(struct db_stage *s)
{
	if (s->nattr == s->capattr) {
		s->capattr = s->capattr ? 2 * s->capattr : 64;
		s->attr = xrealloc(s->attr, s->capattr * sizeof(*s->attr));
	}
	struct stage_attr *x = &s->attr[s->nattr++];
	memset(x, 0, sizeof(*x));
	return x;
}

void db_pipe_attribute(struct db_pipe *p, int64_t row, const struct ipaddr *ip, const struct prefix *cls)
{
	struct stage_attr *x = attr_new(p->fill);
	x->row = row;
	x->ip = *ip;
	x->cls = *cls;
}

void db_pipe_attribution_dropped(struct db_pipe *p, int64_t n)
{
	if (n > 0)
		attr_new(p->fill)->dropped = n;
}

void db_pipe_decision(struct db_pipe *p, const struct decision *d, const char *evidence_json, const char *who)
{
	struct db_stage *s = p->fill;
	if (s->ndec == s->capdec) {
		s->capdec = s->capdec ? 2 * s->capdec : 16;
		s->dec = xrealloc(s->dec, s->capdec * sizeof(*s->dec));
	}
	struct stage_dec *x = &s->dec[s->ndec];
	x->d = *d;
	x->json = evidence_json ? arena_put(s, evidence_json, strlen(evidence_json), true) : 0;
	x->who = who ? arena_put(s, who, strlen(who), true) : 0;
	x->kind = DEC_NEW;
	x->from = RESP_OBSERVE;
	x->at = 0;
	s->ndec++; /* counted only once complete */
}

void db_pipe_decision_upgrade(struct db_pipe *p, const struct decision *d, enum response from,
			      const char *evidence_json, int64_t at)
{
	db_pipe_decision(p, d, evidence_json, NULL);
	struct stage_dec *x = &p->fill->dec[p->fill->ndec - 1];
	x->kind = DEC_UPGRADE;
	x->from = from;
	x->at = at;
}

void db_pipe_decision_end(struct db_pipe *p, const struct decision *d, int64_t at, const char *why)
{
	db_pipe_decision(p, d, NULL, why);
	struct stage_dec *x = &p->fill->dec[p->fill->ndec - 1];
	x->kind = DEC_END;
	x->at = at;
}

int db_pipe_unparsed(struct db_pipe *p, const char *reason, int64_t n)
{
	struct db_stage *s = p->fill;
	if (!reason || !*reason || n < 0 || strlen(reason) >= sizeof(s->unp[0].reason))
		return db_fail(p->r, "db_pipe_unparsed: bad reason or count");
	if (n == 0)
		return 0;
	for (size_t i = 0; i < s->nunp; i++)
		if (strcmp(s->unp[i].reason, reason) == 0) {
			s->unp[i].n += n;
			return 0;
		}
	if (s->nunp == MXW_ARRAY_LEN(s->unp))
		return db_fail(p->r, "db_pipe_unparsed: too many reasons in one batch");
	str_copy(s->unp[s->nunp].reason, sizeof(s->unp[0].reason), reason, strlen(reason));
	s->unp[s->nunp++].n = n;
	return 0;
}

void db_pipe_offset(struct db_pipe *p, int64_t source_id, int64_t offset, int64_t lines_read, int64_t now)
{
	struct db_stage *s = p->fill;
	for (size_t i = 0; i < s->noff; i++)
		if (s->off[i].id == source_id) {
			s->off[i] = (struct stage_off){source_id, offset, lines_read, now};
			return;
		}
	if (s->noff == s->capoff) {
		s->capoff = s->capoff ? 2 * s->capoff : 4;
		s->off = xrealloc(s->off, s->capoff * sizeof(*s->off));
	}
	s->off[s->noff++] = (struct stage_off){source_id, offset, lines_read, now};
}

void db_pipe_checkpoint(struct db_pipe *p, int64_t at, int64_t newest_us, int64_t lines, char *data,
			size_t len, int64_t source_id, int64_t source_offset, int64_t source_lines)
{
	struct db_stage *s = p->fill;
	free(s->ckpt);
	s->ckpt = data;
	s->ckpt_len = len;
	s->ckpt_at = at;
	s->ckpt_newest = newest_us;
	s->ckpt_lines = lines;
	s->ckpt_src = source_id;
	s->ckpt_off = source_offset;
	s->ckpt_src_lines = source_lines;
}

int db_pipe_submit(struct db_pipe *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->busy)
		pthread_cond_wait(&p->cv, &p->mu);
	if (p->failed) {
		stage_clear(p->fill);
		pthread_mutex_unlock(&p->mu);
		return -1;
	}
	p->busy = p->fill;
	p->fill = p->spare;
	p->spare = NULL;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int db_pipe_drain(struct db_pipe *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->busy)
		pthread_cond_wait(&p->cv, &p->mu);
	int rc = p->failed ? -1 : 0;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

const char *db_pipe_errmsg(struct db_pipe *p)
{
	pthread_mutex_lock(&p->mu);
	const char *m = p->err[0] ? p->err : "no error";
	pthread_mutex_unlock(&p->mu);
	return m;
}

size_t db_pipe_staged_events(const struct db_pipe *p)
{
	return p->fill->nev;
}

/* Decisions on exactly q since since in a stage not committed yet. */
static int64_t stage_count(const struct db_stage *s, const struct prefix *q, int64_t since)
{
	int64_t n = 0;
	for (size_t i = 0; i < s->ndec; i++) /* new decisions: an upgrade or end is no other decision */
		if (s->dec[i].kind == DEC_NEW && s->dec[i].d.since >= since &&
		    prefix_cmp(&s->dec[i].d.prefix, q) == 0)
			n++;
	return n;
}

int64_t db_pipe_count_decisions(struct db_pipe *p, const struct prefix *q, int64_t since)
{
	pthread_mutex_lock(&p->mu);
	int64_t n = db_decisions_count_sql(p->r, q, since);
	if (n >= 0) {
		n += stage_count(p->fill, q, since);
		if (p->busy && !p->busy->committed)
			n += stage_count(p->busy, q, since);
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}

void db_pipe_host_line(struct db_pipe *p, const char *host, size_t n, int64_t ts_us)
{
	db_agg_host_line(&p->fill->agg, host, n, ts_us);
}
