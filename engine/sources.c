/*
 * sources.c - the followed files as the engine sees them: the database row
 * of the file each collector source is reading (a rotation, a catch-up file
 * or a grown fingerprint switches rows), where each path was left (the
 * collector asks at start and at a rewind), and the collector's line sink.
 *
 * After a refused batch the collector is rewound to the committed offsets;
 * the lines up to where the aggregator had read (agg_off, per file) are
 * stored again but not counted again.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* The same file (a small file's fingerprint grows as it does). */
bool eng_same_ident(const struct coll_pos *a, const struct coll_pos *b)
{
	return a->dev == b->dev && a->ino == b->ino && (a->fp_len != b->fp_len || a->fp == b->fp) &&
	       (a->dev || a->ino || a->fp_len);
}

static int cmp_known(const struct db_source *a, const struct db_source *b)
{
	if (a->last_read != b->last_read)
		return a->last_read < b->last_read ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

int eng_collect_known(void *arg, const struct db_source *s)
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
int eng_coll_lookup(void *ctx, const char *key, struct coll_pos *pos)
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
void eng_known_update(struct engine *e, size_t i)
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
void eng_sync_sources(struct engine *e)
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
		if (eng_batch_begin(e) < 0)
			return;
		esrc_switch(e, s, i, &pos);
		if (s->db_id && pos.offset > s->offset) {
			s->offset = pos.offset;
			s->dirty = true;
		}
	}
}

struct prev_set {
	int64_t skip_id, id, last_read;
	char path[PATH_MAX];
};

static int newest_journal(void *arg, const struct db_source *s)
{
	struct prev_set *p = arg;
	if (s->kind == DB_SRC_JOURNAL && s->id != p->skip_id && s->last_read > p->last_read) {
		p->id = s->id;
		p->last_read = s->last_read;
		snprintf(p->path, sizeof p->path, "%s", s->path);
	}
	return 0;
}

/*
 * [collector] journal: one source row per set of identifiers ("journal:"
 * and the patterns), its cursor read back, the reader opened after it. A
 * set without a cursor of its own (the list was changed) goes on after the
 * cursor of the set read last, so that what was stored is not read again:
 * the added names are read from there on, not their past entries. 0, or
 * -1 (logged).
 */
int eng_journal_start(struct engine *e)
{
	const struct strv *pat = &e->conf.journal;
	if (pat->n == 0)
		return 0;
	struct db_source ds;
	memset(&ds, 0, sizeof ds);
	ds.kind = DB_SRC_JOURNAL;
	size_t at = (size_t)snprintf(ds.path, sizeof ds.path, "journal:");
	for (size_t i = 0; i < pat->n && at < sizeof ds.path; i++)
		at += (size_t)snprintf(ds.path + at, sizeof ds.path - at, "%s%s", i ? "," : "", pat->v[i]);
	if (db_source_get_or_create(e->db, &ds, clock_now()) < 0) {
		log_error("database: source: %s", db_errmsg(e->db));
		return -1;
	}
	char cursor[1024];
	int have = db_source_cursor(e->db, ds.id, cursor, sizeof cursor);
	struct prev_set prev = {.skip_id = ds.id};
	if (have == 0 && db_sources_list(e->db, newest_journal, &prev) == 0 && prev.id &&
	    (have = db_source_cursor(e->db, prev.id, cursor, sizeof cursor)) > 0)
		log_warn(
		    "journal: %s is a new set of identifiers: going on after the cursor of %s (the entries "
		    "before it of names it lacked are not read)",
		    ds.path, prev.path);
	if (have < 0) {
		log_error("database: journal cursor: %s", db_errmsg(e->db));
		return -1;
	}
	char err[512] = "";
	e->sdj = coll_journal_open(pat, e->conf.journal_directory, have ? cursor : NULL, 0, err, sizeof err);
	if (!e->sdj) {
		log_error("%s", err);
		return -1;
	}
	if (err[0])
		log_warn("%s", err);
	e->sdj_ps = parser_source_new(e->parser, ds.path, e->hint);
	e->sdj_src_id = ds.id;
	e->sdj_lines = e->sdj_committed_lines = e->sdj_agg_lines = ds.lines_read;
	e->sdj_committed = have ? xstrdup(cursor) : NULL;
	log_info("journal: %s%s, %s", e->conf.journal_directory ? "the files in " : "the system journal",
		 e->conf.journal_directory ? e->conf.journal_directory : "",
		 have ? "going on after the stored cursor" : "from its first entry");
	return 0;
}

void eng_journal_stop(struct engine *e)
{
	coll_journal_free(e->sdj);
	e->sdj = NULL;
	parser_source_free(e->sdj_ps);
	e->sdj_ps = NULL;
	free(e->sdj_committed);
	e->sdj_committed = NULL;
}

/* A line of the journal: like a file's, its position is counted in lines
 * (sdj_lines) and committed with the cursor. */
static void journal_line(struct engine *e, const struct coll_line *ln)
{
	e->sdj_lines++;
	bool seen = e->agg_recover && e->sdj_lines <= e->sdj_agg_lines;
	e->no_agg = seen; /* counted before the refused batch */
	eng_line(e, e->sdj_ps, e->sdj_src_id, ln);
	e->no_agg = false;
	if (!seen)
		e->sdj_agg_lines = e->sdj_lines;
	if (e->batch_lines >= e->conf.batch_lines)
		eng_batch_commit(e);
}

/* The collector's sink. */
void eng_on_line(void *ctx, const struct coll_line *ln)
{
	struct engine *e = ctx;
	if (e->db_down)
		return; /* read again after collector_rewind() */
	if (ln->source == COLL_SOURCE_JOURNAL) {
		journal_line(e, ln);
		return;
	}
	if (ln->source < 0) { /* syslog */
		eng_line(e, e->syslog_ps, e->syslog_src_id, ln);
		e->syslog_lines++;
		e->syslog_dirty = e->syslog_src_id != 0;
		if (e->batch_lines >= e->conf.batch_lines)
			eng_batch_commit(e);
		return;
	}
	if (eng_batch_begin(e) < 0)
		return;
	struct esrc *s = esrc_get(e, ln->source);
	struct coll_pos pos;
	collector_source_pos(e->coll, (size_t)ln->source, &pos);
	if (!s->db_id || !same_file(&pos, &s->id))
		esrc_switch(e, s, (size_t)ln->source, &pos);
	if (e->agg_recover && ((eng_same_ident(&pos, &s->agg_id) && ln->off_after <= s->agg_off) ||
			       (eng_same_ident(&pos, &s->agg_prev_id) && ln->off_after <= s->agg_prev_off))) {
		e->no_agg = true; /* counted before the refused batch */
		eng_line(e, s->ps, s->db_id, ln);
		e->no_agg = false;
	} else {
		if (!eng_same_ident(&pos, &s->agg_id)) {
			s->agg_prev_id = s->agg_id;
			s->agg_prev_off = s->agg_off;
			s->agg_id = pos;
		}
		s->agg_off = ln->off_after;
		eng_line(e, s->ps, s->db_id, ln);
	}
	s->offset = ln->off_after;
	s->lines++;
	s->dirty = true;
	if (e->batch_lines >= e->conf.batch_lines)
		eng_batch_commit(e);
}
