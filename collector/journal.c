/*
 * journal.c - the systemd journal as a source ([collector] journal), read
 * with libsystemd's sd-journal (collector.h, "The journal").
 *
 * Each entry whose SYSLOG_IDENTIFIER matches one of the configured names or
 * globs (fnmatch: "postfix/<star>" matches postfix/smtpd) becomes one line in the
 * form the parsers read from rsyslog's files:
 *   2026-12-06T10:00:01.123456Z HOST IDENT[PID]: MESSAGE
 * (the entry's own time, UTC, so no time zone is guessed). A newline inside
 * MESSAGE becomes a blank; a message longer than max_line is delivered as
 * overlong. The position is the journal's cursor of the last entry
 * delivered: the engine stores it with the events of the batch, like a
 * file's offset, and seeks back to it after a restart or a refused batch.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>

#include "collector/collector.h"

struct coll_journal {
	sd_journal *j;
	struct strv patterns;
	size_t max_line;
	char *cursor; /* of the last entry delivered (malloc'd), NULL = none */
	int fd;
	struct buf line;
	uint64_t lines, overlong;
};

/* The value of field (NAME=...) of the current entry: *p, *n; 0 or -1. */
static int field(sd_journal *j, const char *name, const char **p, size_t *n)
{
	const void *d;
	size_t len;
	if (sd_journal_get_data(j, name, &d, &len) < 0)
		return -1;
	size_t k = strlen(name) + 1; /* "NAME=" */
	if (len < k)
		return -1;
	*p = (const char *)d + k;
	*n = len - k;
	return 0;
}

static bool wanted(const struct coll_journal *cj, const char *ident, size_t n)
{
	char name[256];
	if (n >= sizeof name)
		return false;
	memcpy(name, ident, n);
	name[n] = 0;
	for (size_t i = 0; i < cj->patterns.n; i++)
		if (fnmatch(cj->patterns.v[i], name, 0) == 0)
			return true;
	return false;
}

/* Place the read pointer so that sd_journal_next() gives the entry after
 * cursor (NULL: the first entry). 0 or -1. */
static int seek(struct coll_journal *cj, const char *cursor)
{
	if (!cursor)
		return sd_journal_seek_head(cj->j) < 0 ? -1 : 0;
	if (sd_journal_seek_cursor(cj->j, cursor) < 0)
		return -1;
	/* the entry at the cursor itself was delivered: step onto it, so that
	 * the next call moves past it; when it is gone (vacuumed) the journal
	 * goes on from the nearest entry after it */
	if (sd_journal_next(cj->j) > 0 && sd_journal_test_cursor(cj->j, cursor) <= 0)
		sd_journal_previous(cj->j);
	return 0;
}

struct coll_journal *coll_journal_open(const struct strv *patterns, const char *dir, const char *cursor,
				       size_t max_line, char *err, size_t errsz)
{
	struct coll_journal *cj = xcalloc(1, sizeof *cj);
	cj->fd = -1;
	cj->max_line = max_line ? max_line : COLL_LINE_MAX;
	for (size_t i = 0; i < patterns->n; i++)
		strv_add(&cj->patterns, patterns->v[i]);
	int r =
	    dir ? sd_journal_open_directory(&cj->j, dir, 0) : sd_journal_open(&cj->j, SD_JOURNAL_LOCAL_ONLY);
	if (r < 0) {
		snprintf(err, errsz, "journal: cannot open %s: %s", dir ? dir : "the system journal",
			 strerror(-r));
		coll_journal_free(cj);
		return NULL;
	}
	if (seek(cj, cursor) < 0) {
		snprintf(err, errsz, "journal: the stored cursor is not valid: reading from the start");
		sd_journal_seek_head(cj->j);
	}
	cj->cursor = cursor ? xstrdup(cursor) : NULL;
	cj->fd = sd_journal_get_fd(cj->j); /* inotify on the journal's directories */
	return cj;
}

void coll_journal_free(struct coll_journal *cj)
{
	if (!cj)
		return;
	if (cj->j)
		sd_journal_close(cj->j);
	strv_free(&cj->patterns);
	free(cj->cursor);
	buf_free(&cj->line);
	free(cj);
}

int coll_journal_fd(const struct coll_journal *cj)
{
	return cj->fd;
}

const char *coll_journal_cursor(const struct coll_journal *cj)
{
	return cj->cursor;
}

int coll_journal_seek(struct coll_journal *cj, const char *cursor)
{
	free(cj->cursor);
	cj->cursor = cursor ? xstrdup(cursor) : NULL;
	return seek(cj, cursor);
}

int coll_journal_run(struct coll_journal *cj, size_t max, coll_sink_fn sink, void *ctx)
{
	sd_journal_process(cj->j); /* take in new and rotated files */
	for (size_t done = 0; done < max; done++) {
		int r = sd_journal_next(cj->j);
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		char *c = NULL;
		if (sd_journal_get_cursor(cj->j, &c) < 0)
			return -1;
		free(cj->cursor);
		cj->cursor = c;
		const char *ident, *msg, *host, *pid;
		size_t ni, nm, nh, np;
		if (field(cj->j, "SYSLOG_IDENTIFIER", &ident, &ni) < 0 || !wanted(cj, ident, ni))
			continue;
		if (field(cj->j, "MESSAGE", &msg, &nm) < 0)
			continue;
		if (field(cj->j, "_HOSTNAME", &host, &nh) < 0) {
			host = "localhost";
			nh = 9;
		}
		if (field(cj->j, "SYSLOG_PID", &pid, &np) < 0 && field(cj->j, "_PID", &pid, &np) < 0)
			np = 0;
		uint64_t us = 0;
		sd_journal_get_realtime_usec(cj->j, &us);
		struct coll_line ln = {.source = COLL_SOURCE_JOURNAL};
		cj->lines++;
		if (nm > cj->max_line) {
			cj->overlong++;
			ln.overlong = true;
			sink(ctx, &ln);
			continue;
		}
		char ts[TIME_STRLEN];
		size_t nt = time_format_rfc3339((int64_t)us, true, ts);
		buf_reset(&cj->line);
		buf_append(&cj->line, ts, nt);
		buf_appendc(&cj->line, ' ');
		buf_append(&cj->line, host, nh);
		buf_appendc(&cj->line, ' ');
		buf_append(&cj->line, ident, ni);
		if (np) {
			buf_appendc(&cj->line, '[');
			buf_append(&cj->line, pid, np);
			buf_appendc(&cj->line, ']');
		}
		buf_append(&cj->line, ": ", 2);
		size_t at = cj->line.len;
		buf_append(&cj->line, msg, nm);
		for (size_t i = at; i < cj->line.len; i++)
			if (cj->line.data[i] == '\n' || cj->line.data[i] == '\r')
				cj->line.data[i] = ' ';
		ln.p = cj->line.data;
		ln.n = cj->line.len;
		sink(ctx, &ln);
	}
	return 1;
}

void coll_journal_stats(const struct coll_journal *cj, uint64_t *lines, uint64_t *overlong)
{
	*lines = cj->lines;
	*overlong = cj->overlong;
}
