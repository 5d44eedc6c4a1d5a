/*
 * follow.c - the collector object: follows files (and globs) through
 * rename/create rotation, copytruncate, delete and recreate, symlinks and
 * downtime, with inotify on the files' directories and a polling fallback;
 * owns the syslog receiver; and imports finished files.
 *
 * How a followed path is read:
 *   - The open descriptor is drained to its end on every inotify event in
 *     a watched directory and at every poll. The descriptor, not the name,
 *     is read, so a renamed file is finished before we switch.
 *   - A new file at the path (other device/inode) is switched to once the
 *     old descriptor is drained and either the new file already holds data
 *     (the writer moved over), the old file was deleted, or the old one has
 *     been quiet for rotate_grace_ms.
 *   - A file that shrank (or whose first bytes changed) was truncated: the
 *     lines we had not read yet are in its copy PATH.1 (or PATH.1.gz) when
 *     the copy's fingerprint matches ours; they are read from there, then
 *     the live file from 0.
 *   - At start, a stored position is looked for in PATH, then PATH.1,
 *     PATH.1.gz ... PATH.9.gz by fingerprint; reading resumes in the match,
 *     continues with every newer rotated file and ends in the live file.
 *
 * It must never deliver a line twice from one run, never split a line at a
 * buffer boundary, and never block: reads are bounded per call.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/internal.h"
#include "collector/stream.h"

#define MAX_ROTATED 9

struct fsrc {
	struct collector *c;
	int index;
	char *key;
	struct stream st;    /* fd -1 when nothing is open */
	bool finite;	     /* st is a rotated file or a copy: finish it at its end */
	struct stream *q;    /* files still to read after st, in order, already open */
	size_t qn, qi;	     /* entries, next entry */
	bool q_live;	     /* the last entry is the live file */
	struct lineframe lf; /* one reused read buffer per file */
	struct coll_pos pos; /* what has been delivered */
	bool started;	     /* the stored position was looked at */
	bool pending;	     /* read it at the next collector_run() */
	bool missing_logged;
	int64_t last_data_us;
};

struct collector {
	struct coll_opts o;
	coll_sink_fn sink;
	void *ctx;
	int epfd;
	struct fdh ino;
	struct fsrc **src;
	size_t n_src, cap_src;
	struct strv patterns;
	struct syslogd *sl;
	struct coll_stats st;
	int64_t last_poll_us;
	bool poll_now;
};

static bool is_glob(const char *p)
{
	return strpbrk(p, "*?[") != NULL;
}

static void watch_dir_of(struct collector *c, const char *path)
{
	if (c->ino.fd < 0)
		return;
	char tmp[PATH_MAX];
	if (str_copy(tmp, sizeof tmp, path, strlen(path)) < 0)
		return;
	const uint32_t mask = IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB |
			      IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF;
	/* the directory that holds the name, and the one that holds the target of a symlink */
	char *d = dirname(tmp);
	if (!is_glob(d))
		inotify_add_watch(c->ino.fd, d, mask); /* may fail: the directory may not exist yet; polled */
	char real[PATH_MAX];
	if (realpath(path, real)) {
		char *rd = dirname(real);
		if (strcmp(rd, d) != 0)
			inotify_add_watch(c->ino.fd, rd, mask);
	}
}

struct collector *collector_new(const struct coll_opts *opts, coll_sink_fn sink, void *ctx)
{
	struct collector *c = xcalloc(1, sizeof *c);
	c->o = *opts;
	if (!c->o.max_line)
		c->o.max_line = COLL_LINE_MAX;
	if (c->o.poll_ms <= 0)
		c->o.poll_ms = 1000;
	if (c->o.rotate_grace_ms <= 0)
		c->o.rotate_grace_ms = 1000;
	if (!c->o.read_budget)
		c->o.read_budget = 4u << 20;
	c->sink = sink;
	c->ctx = ctx;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0) {
		log_error("epoll_create1: %s", strerror(errno));
		free(c);
		return NULL;
	}
	c->ino.kind = FDH_INOTIFY;
	c->ino.fd = -1;
	if (!c->o.no_inotify) {
		c->ino.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (c->ino.fd < 0)
			log_warn("inotify unavailable (%s): polling every %lld ms", strerror(errno),
				 (long long)c->o.poll_ms);
	}
	if (c->ino.fd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->ino};
		epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->ino.fd, &ev);
	}
	c->st.polling = c->ino.fd < 0;
	if (c->o.syslog_listen) {
		c->sl = syslogd_new(&c->o, c->epfd, sink, ctx, &c->st);
		if (!c->sl) {
			collector_free(c);
			return NULL;
		}
	}
	c->last_poll_us = clock_mono_us();
	return c;
}

static void src_close(struct fsrc *s)
{
	if (stream_is_open(&s->st))
		stream_close(&s->st);
}

static void queue_clear(struct fsrc *s)
{
	for (size_t i = s->qi; i < s->qn; i++)
		stream_close(&s->q[i]);
	free(s->q);
	s->q = NULL;
	s->qn = s->qi = 0;
	s->q_live = false;
}

/* Append an open stream to the queue (the queue takes it over). */
static void queue_push(struct fsrc *s, struct stream *st)
{
	s->q = xrealloc(s->q, (s->qn + 1) * sizeof *s->q);
	s->q[s->qn++] = *st;
	st->fd = -1;
	st->gz = NULL;
	st->name = NULL;
}

void collector_free(struct collector *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_src; i++) {
		struct fsrc *s = c->src[i];
		src_close(s);
		lineframe_free(&s->lf);
		queue_clear(s);
		free(s->key);
		free(s);
	}
	free(c->src);
	strv_free(&c->patterns);
	syslogd_free(c->sl);
	if (c->ino.fd >= 0)
		close(c->ino.fd);
	if (c->epfd >= 0)
		close(c->epfd);
	free(c);
}

int collector_fd(const struct collector *c)
{
	return c->epfd;
}

size_t collector_source_count(const struct collector *c)
{
	return c->n_src;
}

const char *collector_source_key(const struct collector *c, size_t i)
{
	return i < c->n_src ? c->src[i]->key : NULL;
}

void collector_source_pos(const struct collector *c, size_t i, struct coll_pos *pos)
{
	if (i < c->n_src)
		*pos = c->src[i]->pos;
	else
		memset(pos, 0, sizeof *pos);
}

void collector_stats(const struct collector *c, struct coll_stats *st)
{
	*st = c->st;
}

/* ------------------------------------------------------------ delivery */

static void on_line(void *ctx, const char *p, size_t n, int64_t off_after, bool overlong)
{
	struct fsrc *s = ctx;
	struct collector *c = s->c;
	s->pos.dev = s->st.dev;
	s->pos.ino = s->st.ino;
	s->pos.fp = s->st.fp;
	s->pos.fp_len = s->st.fp_len;
	s->pos.offset = off_after;
	s->pos.lines++;
	c->st.lines++;
	if (overlong)
		c->st.overlong++;
	struct coll_line ln = {
	    .p = p, .n = n, .source = s->index, .off_after = off_after, .overlong = overlong};
	c->sink(c->ctx, &ln);
}

/* ------------------------------------------------------------ opening */

/* Everything before the current file is delivered: the position to store
 * may name this file already, so that a restart before its first line
 * still finds it (by device/inode, or fingerprint) after a rotation. */
static void pos_here(struct fsrc *s)
{
	s->pos.dev = s->st.dev;
	s->pos.ino = s->st.ino;
	s->pos.fp = s->st.fp;
	s->pos.fp_len = s->st.fp_len;
	s->pos.offset = s->lf.consumed;
}

/* Open the live file at off. Returns 0, or -1 when it is not there. */
static int open_live(struct fsrc *s, int64_t off)
{
	src_close(s);
	s->finite = false;
	if (stream_open(&s->st, s->key, 0) < 0) {
		if (!s->missing_logged && errno != ENOENT)
			log_warn("%s: %s", s->key, strerror(errno));
		s->missing_logged = true;
		return -1;
	}
	if (s->st.gz) {
		log_warn("%s: a compressed file cannot be followed; use mxwarden import", s->key);
		stream_close(&s->st);
		s->missing_logged = true;
		return -1;
	}
	s->missing_logged = false;
	if (off > 0 && stream_seek(&s->st, off) < 0)
		off = 0;
	lineframe_reset(&s->lf, off);
	s->last_data_us = clock_mono_us();
	s->pending = true;
	pos_here(s);
	return 0;
}

/* The current file is finished: deliver its partial tail and go on with
 * the next file of the queue, or the live file at 0. */
static void finish_and_next(struct fsrc *s)
{
	lineframe_finish(&s->lf, on_line, s);
	src_close(s);
	if (s->qi < s->qn) {
		s->st = s->q[s->qi++];
		s->finite = !(s->qi == s->qn && s->q_live);
		lineframe_reset(&s->lf, s->st.read_off);
		s->last_data_us = clock_mono_us();
		s->pending = true;
		pos_here(s);
		if (s->qi == s->qn) {
			free(s->q);
			s->q = NULL;
			s->qn = s->qi = 0;
			s->q_live = false;
		}
		return;
	}
	queue_clear(s);
	open_live(s, 0);
}

/* Make st (open, positioned) the current finite file. */
static void use_finite(struct fsrc *s, struct stream *st)
{
	src_close(s);
	s->st = *st;
	s->finite = true;
	lineframe_reset(&s->lf, st->read_off);
	s->pending = true;
}

static bool pos_matches(const struct coll_pos *stored, const struct coll_pos *id)
{
	if (stored->fp_len == 0)
		return id->dev && id->dev == stored->dev && id->ino == stored->ino;
	return id->fp_len == stored->fp_len && id->fp == stored->fp;
}

static void rotated_name(char *out, size_t outsz, const char *key, int k, bool gz)
{
	snprintf(out, outsz, "%s.%d%s", key, k, gz ? ".gz" : "");
}

/* First open of a source: resume from the stored position, wherever the
 * file went. Every candidate (PATH, PATH.1, PATH.1.gz ... PATH.9.gz) is
 * opened first, so that a rotation while we look cannot shift the names
 * under us: the files are then read through these descriptors. */
static void start_source(struct fsrc *s)
{
	struct collector *c = s->c;
	struct coll_pos stored;
	s->started = true;
	if (!c->o.lookup || c->o.lookup(c->o.lookup_ctx, s->key, &stored) < 0) {
		open_live(s, 0);
		return;
	}
	s->pos = stored;
	struct stream cand[1 + 2 * MAX_ROTATED];
	char name[PATH_MAX];
	int found = -1;
	for (int i = 0; i < (int)MXW_ARRAY_LEN(cand); i++) {
		int k = (i + 1) / 2;
		if (i == 0)
			str_copy(name, sizeof name, s->key, strlen(s->key));
		else
			rotated_name(name, sizeof name, s->key, k, i % 2 == 0);
		if (stream_open(&cand[i], name, stored.fp_len) < 0) {
			cand[i].fd = -1;
			continue;
		}
		if (i == 0 && cand[i].gz)
			stream_close(&cand[i]);
	}
	for (int i = 0; i < (int)MXW_ARRAY_LEN(cand) && found < 0; i++) {
		if (!stream_is_open(&cand[i]))
			continue;
		struct coll_pos id = {
		    .dev = cand[i].dev, .ino = cand[i].ino, .fp = cand[i].fp, .fp_len = cand[i].fp_len};
		if (pos_matches(&stored, &id) && (stored.fp_len || id.dev))
			found = i;
	}
	if (found == 0) {
		/* still in the live file */
		src_close(s);
		s->st = cand[0];
		s->finite = false;
		int64_t off = stored.offset;
		if (off > 0 && stream_seek(&s->st, off) < 0)
			off = 0;
		lineframe_reset(&s->lf, off);
		s->last_data_us = clock_mono_us();
		s->pending = true;
		for (int i = 1; i < (int)MXW_ARRAY_LEN(cand); i++)
			if (stream_is_open(&cand[i]))
				stream_close(&cand[i]);
		return;
	}
	if (found > 0) {
		int k = (found + 1) / 2;
		log_info("%s: resuming in %s at offset %lld, then %d newer rotated file(s) and the live file",
			 s->key, cand[found].name, (long long)stored.offset, k - 1);
		queue_clear(s);
		for (int j = k - 1; j >= 1; j--) {
			int plain = 2 * j - 1, gz = 2 * j;
			if (stream_is_open(&cand[plain]))
				queue_push(s, &cand[plain]);
			else if (stream_is_open(&cand[gz]))
				queue_push(s, &cand[gz]);
		}
		if (stream_is_open(&cand[0])) {
			queue_push(s, &cand[0]);
			s->q_live = true;
		}
		struct stream cur = cand[found];
		cand[found].fd = -1;
		cand[found].gz = NULL;
		for (int i = 0; i < (int)MXW_ARRAY_LEN(cand); i++)
			if (stream_is_open(&cand[i]))
				stream_close(&cand[i]);
		if (stored.offset > 0 && stream_seek(&cur, stored.offset) < 0) {
			log_warn("%s: cannot seek to %lld (shorter than the stored position)", cur.name,
				 (long long)stored.offset);
			stream_close(&cur);
			finish_and_next(s);
			return;
		}
		use_finite(s, &cur);
		return;
	}
	for (int i = 0; i < (int)MXW_ARRAY_LEN(cand); i++)
		if (stream_is_open(&cand[i]))
			stream_close(&cand[i]);
	if (stored.offset > 0 || stored.lines > 0) {
		c->st.gaps++;
		log_warn(
		    "%s: the file read up to offset %lld was not found (rotated away?); lines written to it "
		    "after that offset are lost; starting the current file at 0",
		    s->key, (long long)stored.offset);
	}
	open_live(s, 0);
}

static struct fsrc *add_source(struct collector *c, const char *key)
{
	for (size_t i = 0; i < c->n_src; i++)
		if (strcmp(c->src[i]->key, key) == 0)
			return c->src[i];
	if (c->n_src == c->cap_src) {
		c->cap_src = c->cap_src ? c->cap_src * 2 : 4;
		c->src = xrealloc(c->src, c->cap_src * sizeof *c->src);
	}
	struct fsrc *s = xcalloc(1, sizeof *s);
	s->c = c;
	s->index = (int)c->n_src;
	s->key = xstrdup(key);
	s->st.fd = -1;
	lineframe_init(&s->lf, c->o.max_line, 0);
	c->src[c->n_src++] = s;
	watch_dir_of(c, key);
	start_source(s);
	return s;
}

static void expand_pattern(struct collector *c, const char *pat)
{
	if (!is_glob(pat)) {
		add_source(c, pat);
		return;
	}
	watch_dir_of(c, pat);
	glob_t g;
	if (glob(pat, GLOB_NOSORT, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			struct stat sb;
			if (stat(g.gl_pathv[i], &sb) == 0 && S_ISREG(sb.st_mode))
				add_source(c, g.gl_pathv[i]);
		}
	}
	globfree(&g);
}

int collector_follow(struct collector *c, const char *path)
{
	if (!path || !*path || strlen(path) >= PATH_MAX - 8)
		return -1;
	strv_add(&c->patterns, path);
	expand_pattern(c, path);
	return 0;
}

void collector_rewind(struct collector *c)
{
	for (size_t i = 0; i < c->n_src; i++) {
		struct fsrc *s = c->src[i];
		src_close(s);
		queue_clear(s);
		lineframe_reset(&s->lf, 0);
		memset(&s->pos, 0, sizeof s->pos);
		s->finite = false;
		s->started = false;
		s->pending = true;
		s->missing_logged = false;
	}
}

/* ------------------------------------------------------------ reading */

/* Read up to the budget. Returns 1 when the budget ran out (more to read). */
static int read_source(struct fsrc *s, size_t budget)
{
	size_t got = 0;
	while (stream_is_open(&s->st)) {
		if (got >= budget)
			return 1;
		size_t room;
		char *sp = lineframe_space(&s->lf, &room);
		if (room > budget - got + 4096)
			room = budget - got + 4096;
		ssize_t r = stream_read(&s->st, sp, room);
		if (r > 0) {
			got += (size_t)r;
			s->last_data_us = clock_mono_us();
			if (s->st.fp_len < COLL_FP_MAX && !s->finite)
				stream_refresh_fp(&s->st);
			lineframe_commit(&s->lf, (size_t)r, on_line, s);
			continue;
		}
		if (s->finite) {
			finish_and_next(s);
			continue;
		}
		if (r < 0)
			src_close(s);
		break;
	}
	return 0;
}

/* The live file shrank or was rewritten: read what we missed from its copy. */
static void truncated(struct fsrc *s)
{
	struct collector *c = s->c;
	c->st.truncations++;
	int64_t consumed = s->lf.consumed;
	struct coll_pos old = {.dev = s->st.dev, .ino = s->st.ino, .fp = s->st.fp, .fp_len = s->st.fp_len};
	char name[PATH_MAX];
	for (int gz = 0; gz < 2 && old.fp_len; gz++) {
		rotated_name(name, sizeof name, s->key, 1, gz);
		struct stream copy;
		if (stream_open(&copy, name, old.fp_len) < 0)
			continue;
		struct coll_pos id = {.dev = copy.dev, .ino = copy.ino, .fp = copy.fp, .fp_len = copy.fp_len};
		if (!pos_matches(&old, &id) || (!gz && id.dev == old.dev && id.ino == old.ino) ||
		    (consumed > 0 && stream_seek(&copy, consumed) < 0)) {
			/* not a copy of our file (or our own file under another name) */
			stream_close(&copy);
			continue;
		}
		log_info("%s: truncated (copytruncate); reading the rest from %s at offset %lld", s->key,
			 name, (long long)consumed);
		/* after the copy: the live file (the descriptor we hold) from 0 */
		queue_clear(s);
		struct stream live = s->st;
		s->st.fd = -1;
		s->st.gz = NULL;
		s->st.name = NULL;
		if (stream_seek(&live, 0) == 0) {
			live.fp_len = 0;
			stream_refresh_fp(&live);
			queue_push(s, &live);
			s->q_live = true;
		} else {
			stream_close(&live);
		}
		use_finite(s, &copy);
		return;
	}
	log_warn(
	    "%s: truncated at offset %lld with no matching copy in %s.1; lines written after the last read "
	    "and before the truncation are lost; reading again from 0",
	    s->key, (long long)consumed, s->key);
	open_live(s, 0);
}

/* The live file is drained: look for truncation, rotation, deletion. */
static void check_source(struct fsrc *s, bool verify)
{
	struct collector *c = s->c;
	struct stat fsb, psb;
	if (fstat(s->st.fd, &fsb) < 0)
		return;
	if (fsb.st_size < s->st.read_off) {
		truncated(s);
		return;
	}
	if (verify && stream_fp_still(&s->st) == 0) {
		truncated(s);
		return;
	}
	int64_t now = clock_mono_us();
	bool quiet = now - s->last_data_us >= c->o.rotate_grace_ms * 1000;
	if (stat(s->key, &psb) < 0) {
		if (fsb.st_nlink == 0 && quiet) {
			lineframe_finish(&s->lf, on_line, s);
			log_info("%s: deleted; waiting for it to come back", s->key);
			src_close(s);
		}
		return;
	}
	if ((uint64_t)psb.st_dev == s->st.dev && (uint64_t)psb.st_ino == s->st.ino)
		return;
	/* a new file at the path: switch once the old one is finished */
	if (!(psb.st_size > 0 || fsb.st_nlink == 0 || quiet))
		return;
	if (read_source(s, SIZE_MAX) || !stream_is_open(&s->st) || s->finite)
		return;
	lineframe_finish(&s->lf, on_line, s);
	c->st.rotations++;
	log_info("%s: rotated; finished the old file at %lld bytes, now reading the new one", s->key,
		 (long long)s->st.read_off);
	uint64_t odev = s->st.dev, oino = s->st.ino;
	src_close(s);
	/* rotated more than once since we opened it (we were behind): ours is
	 * now PATH.k, and PATH.(k-1) .. PATH.1 came after it */
	int k = 0;
	char name[PATH_MAX];
	for (int j = 1; j <= MAX_ROTATED && !k; j++) {
		struct stat rsb;
		rotated_name(name, sizeof name, s->key, j, false);
		if (stat(name, &rsb) == 0 && (uint64_t)rsb.st_dev == odev && (uint64_t)rsb.st_ino == oino)
			k = j;
	}
	if (k > 1) {
		log_warn("%s: rotated %d times while we read the old file; reading the %d file(s) in between",
			 s->key, k, k - 1);
		queue_clear(s);
		for (int j = k - 1; j >= 1; j--) {
			struct stream st;
			for (int gz = 0; gz < 2; gz++) {
				rotated_name(name, sizeof name, s->key, j, gz);
				if (stream_open(&st, name, 0) == 0) {
					queue_push(s, &st);
					break;
				}
			}
		}
		struct stream live;
		if (stream_open(&live, s->key, 0) == 0) {
			if (live.gz) {
				stream_close(&live);
			} else {
				queue_push(s, &live);
				s->q_live = true;
			}
		}
		finish_and_next(s);
		return;
	}
	open_live(s, 0);
}

static int run_sources(struct collector *c, bool verify)
{
	int more = 0;
	for (size_t i = 0; i < c->n_src; i++) {
		struct fsrc *s = c->src[i];
		if (!s->started)
			start_source(s);
		if (!stream_is_open(&s->st)) {
			if (!s->pending)
				continue;
			s->pending = false;
			if (open_live(s, 0) < 0)
				continue;
		}
		if (!s->pending && !verify)
			continue;
		s->pending = false;
		if (read_source(s, c->o.read_budget)) {
			s->pending = true;
			more = 1;
			continue;
		}
		if (stream_is_open(&s->st) && !s->finite)
			check_source(s, verify);
		if (s->pending)
			more = 1;
	}
	return more;
}

static void drain_inotify(struct collector *c)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;
	for (;;) {
		ssize_t r = read(c->ino.fd, buf, sizeof buf);
		if (r <= 0)
			break;
		any = true;
		for (char *p = buf; p < buf + r;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED))
				c->poll_now = true;
			if (ev->mask & (IN_CREATE | IN_MOVED_TO))
				c->poll_now = c->poll_now || c->patterns.n != c->n_src;
			p += sizeof *ev + ev->len;
		}
	}
	if (any)
		for (size_t i = 0; i < c->n_src; i++)
			c->src[i]->pending = true;
}

int collector_run(struct collector *c)
{
	struct epoll_event evs[32];
	int n = epoll_wait(c->epfd, evs, MXW_ARRAY_LEN(evs), 0);
	for (int i = 0; i < n; i++) {
		struct fdh *h = evs[i].data.ptr;
		if (h->kind == FDH_INOTIFY)
			drain_inotify(c);
		else
			syslogd_handle(c->sl, h, evs[i].events);
	}
	bool verify = false;
	if (c->poll_now) {
		c->poll_now = false;
		for (size_t i = 0; i < c->patterns.n; i++)
			if (is_glob(c->patterns.v[i]))
				expand_pattern(c, c->patterns.v[i]);
		for (size_t i = 0; i < c->n_src; i++)
			c->src[i]->pending = true;
		verify = true;
	}
	int more = run_sources(c, verify);
	return more || n == (int)MXW_ARRAY_LEN(evs);
}

int collector_tick(struct collector *c)
{
	int64_t now = clock_mono_us();
	if (now - c->last_poll_us >= c->o.poll_ms * 1000) {
		c->last_poll_us = now;
		c->poll_now = true;
		for (size_t i = 0; i < c->patterns.n; i++)
			watch_dir_of(c, c->patterns.v[i]);
	} else {
		/* a pending switch after rotate_grace_ms needs no event to happen */
		for (size_t i = 0; i < c->n_src; i++) {
			struct fsrc *s = c->src[i];
			if (stream_is_open(&s->st) && !s->finite)
				s->pending = true;
		}
	}
	return collector_run(c);
}

/* ------------------------------------------------------------ import */

struct import_ctx {
	coll_sink_fn sink;
	void *ctx;
	int64_t lines;
};

static void import_line(void *ctx, const char *p, size_t n, int64_t off_after, bool overlong)
{
	struct import_ctx *ic = ctx;
	struct coll_line ln = {.p = p, .n = n, .source = -1, .off_after = off_after, .overlong = overlong};
	ic->lines++;
	ic->sink(ic->ctx, &ln);
}

int64_t collector_import(const char *path, const struct coll_pos *stored, struct coll_pos *pos,
			 size_t max_line, coll_sink_fn sink, coll_progress_fn progress, void *ctx, char *err,
			 size_t errsz)
{
	struct stream st;
	memset(pos, 0, sizeof *pos);
	if (stream_open(&st, path, 0) < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	int64_t start = 0;
	if (stored && stored->fp_len) {
		/* the same file when its first stored->fp_len bytes hash the same */
		struct coll_pos id;
		if (stored->fp_len == st.fp_len) {
			if (stored->fp == st.fp)
				start = stored->offset;
		} else if (strcmp(path, "-") != 0 && collector_identify(path, stored->fp_len, &id) == 0 &&
			   pos_matches(stored, &id)) {
			start = stored->offset;
		}
	}
	pos->dev = st.dev;
	pos->ino = st.ino;
	pos->fp = st.fp;
	pos->fp_len = st.fp_len;
	pos->offset = start;
	if (start > 0 && stream_seek(&st, start) < 0) {
		snprintf(err, errsz, "%s: cannot seek to the stored offset %lld", path, (long long)start);
		stream_close(&st);
		return -1;
	}
	struct stat sb;
	int64_t disk_size = 0;
	if (strcmp(path, "-") != 0 && fstat(st.fd, &sb) == 0 && S_ISREG(sb.st_mode))
		disk_size = (int64_t)sb.st_size;
	struct lineframe lf;
	lineframe_init(&lf, max_line, start);
	struct import_ctx ic = {.sink = sink, .ctx = ctx};
	int64_t next_progress = 0;
	int rc = 0;
	for (;;) {
		size_t room;
		char *sp = lineframe_space(&lf, &room);
		ssize_t r = stream_read(&st, sp, room);
		if (r < 0) {
			snprintf(err, errsz, "%s: read error after %lld bytes", path, (long long)st.read_off);
			rc = -1;
			break;
		}
		if (r == 0)
			break;
		lineframe_commit(&lf, (size_t)r, import_line, &ic);
		if (progress && st.read_off >= next_progress) {
			int64_t disk = st.gz ? (int64_t)gzoffset(st.gz) : st.read_off;
			progress(ctx, disk, disk_size, ic.lines);
			next_progress = st.read_off + (256 << 10);
		}
	}
	if (rc == 0)
		lineframe_finish(&lf, import_line, &ic);
	pos->offset = lf.consumed;
	pos->lines = (stored && start ? stored->lines : 0) + ic.lines;
	if (progress && rc == 0)
		progress(ctx, disk_size, disk_size, ic.lines);
	lineframe_free(&lf);
	stream_close(&st);
	return rc < 0 ? -1 : ic.lines;
}
