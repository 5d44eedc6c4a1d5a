/*
 * import.c - `mxwarden import`: files read to their end one after another
 * through the same batches as `run` (bigger ones), a progress line on a
 * terminal, and the re-feed of a checkpoint's file at a restart after a
 * crash during an import.
 *
 * The checkpoint stands at the start of each file and goes with the last
 * batch of each file, recording the position in it: a crash in a file reads
 * only that file again into the aggregator (eng_refeed), not the rows
 * stored after the checkpoint, which lack connects and accepted mail.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/internal.h"

static void import_line(void *ctx, const struct coll_line *ln)
{
	struct engine *e = ctx;
	if (e->import_failed)
		return; /* nothing more of this file: the rest is read by the next import */
	eng_line(e, e->import_ps, e->import_src_id, ln);
	e->import_offset = ln->off_after;
	e->import_lines++;
	if (e->batch_lines >= e->conf.batch_lines)
		eng_batch_commit(e);
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

int eng_db_flags(const struct engine *e);

static int import_one(struct engine *e, const char *path, bool tty)
{
	bool is_stdin = strcmp(path, "-") == 0;
	char real[PATH_MAX];
	if (!is_stdin && !realpath(path, real)) {
		log_error("%s: %s", path, errno == EACCES ? "permission denied" : strerror(errno));
		return -1;
	}
	struct stat sb;
	if (!is_stdin && stat(real, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		log_error("%s: is a directory (give the log files in it, e.g. %s/mail.log*)", path, path);
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
	if (eng_batch_begin(e) < 0)
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
	 * it reads the file again from here (eng_refeed()), not the stored rows:
	 * re-pointed when it holds the state already, else written */
	if (e->conf.checkpoint_interval > 0) {
		bool exact = e->lines == e->ckpt_lines && (e->ckpt_written || e->ckpt_current);
		int r = exact ? db_checkpoint_set_source(e->db, e->import_src_id, e->import_offset,
							 e->import_lines)
			      : eng_checkpoint_put(e);
		if (r < 0) {
			log_error("database: checkpoint: %s", db_errmsg(e->db));
			eng_db_failed(e);
			return -1;
		}
	}
	if (!e->o->no_pipeline && !e->pipe_failed) {
		/* the source row first, in a transaction of its own (the pipe is
		 * drained); then the lines through the pipe: parsing here, SQLite
		 * on the writer thread */
		if (eng_batch_commit(e) < 0)
			return -1;
		char err[512];
		if (!e->pipe_keep && !(e->pipe_keep = db_pipe_new(e->db, eng_db_flags(e), err, sizeof err)))
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
	uint64_t lines0 = e->lines, unparsed0 = e->unparsed_total;
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
	 * in the next file reads only that one again (eng_refeed()) */
	if (!e->import_failed && n > 0 && e->conf.checkpoint_interval > 0 && eng_batch_begin(e) == 0)
		e->ckpt_force = true;
	if (eng_batch_commit(e) < 0)
		rc = -1;
	if (e->pipe) {
		if (!e->import_failed && db_pipe_drain(e->pipe) < 0)
			eng_pipe_failed(e);
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
	/* a file of which no line is a mail log line (a binary, a web log, the
	 * wrong file) is a mistake to say, not a silent success */
	uint64_t read = e->lines - lines0, understood = read - (e->unparsed_total - unparsed0);
	if (rc == 0 && read > 0 && understood == 0) {
		log_error("%s: not a mail log (0 of %llu lines understood; see `mxwarden parse --stats %s`)",
			  path, (unsigned long long)read, path);
		rc = -1;
	} else if (rc == 0 && read >= 100 && understood * 100 < read) {
		log_warn(
		    "%s: only %llu of %llu lines understood: is it a mail log of Postfix, Exim or Sendmail?",
		    path, (unsigned long long)understood, (unsigned long long)read);
	}
	return rc;
}

struct engine *engine_import_open(const struct engine_opts *o)
{
	struct engine *e = xcalloc(1, sizeof *e);
	if (eng_open(e, o, true) < 0) {
		engine_free(e);
		return NULL;
	}
	eng_restore(e);
	/* bigger batches for bulk work (IMPORT_BATCH_FACTOR x batch_lines,
	 * 100,000 lines by default): fewer commits and fewer rollup upserts
	 * (one per key and batch), the same exactly-once; import needs no low
	 * latency. Two batches are in memory at a time (one staged, one being
	 * written): a few MB each. */
	if (e->conf.batch_lines < INT64_MAX / IMPORT_BATCH_FACTOR)
		e->conf.batch_lines *= IMPORT_BATCH_FACTOR;
	e->progress_tty = isatty(2) && !o->quiet;
	return e;
}

int engine_import_file(struct engine *e, const char *path)
{
	return import_one(e, path, e->progress_tty);
}

int engine_import(const struct engine_opts *o, char **files, int nfiles)
{
	struct engine *e = engine_import_open(o);
	if (!e)
		return 1;
	int rc = 0;
	int64_t t0 = clock_mono_us();
	uint64_t l0 = e->lines;
	for (int i = 0; i < nfiles; i++)
		if (engine_import_file(e, files[i]) < 0)
			rc = 1;
	double secs = (double)(clock_mono_us() - t0) / 1e6;
	log_info("import: %llu lines, %llu events, %llu unparsed, %llu decisions in %.2fs (%.0f lines/s)",
		 (unsigned long long)(e->lines - l0), (unsigned long long)e->events,
		 (unsigned long long)e->unparsed_total, (unsigned long long)e->decisions_made, secs,
		 secs > 0 ? (double)(e->lines - l0) / secs : 0.0);
	engine_free(e);
	return rc;
}

/* eng_refeed(): the lines of one file between a checkpoint and the committed
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
int eng_refeed(void *arg, struct aggregator *a, const struct db_checkpoint *c)
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
