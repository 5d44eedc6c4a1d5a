/*
 * frame.c - line framing in one reused read buffer, and the fingerprint
 * hash. Lines are handed out as spans into the buffer; nothing is copied
 * per line and nothing is allocated after lineframe_init().
 *
 * It must never split an over-long line into several lines: bytes past
 * max_line are dropped up to the line's '\n' and the line is reported once
 * as overlong.
 */
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"

uint64_t coll_fp_hash(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void lineframe_init(struct lineframe *lf, size_t max_line, int64_t off)
{
	memset(lf, 0, sizeof *lf);
	lf->max_line = max_line ? max_line : COLL_LINE_MAX;
	/* room for a held partial line (< max_line + 1) plus a large read */
	lf->cap = lf->max_line * 2 + 256 * 1024;
	lf->buf = xmalloc(lf->cap);
	lf->off = off;
	lf->consumed = off;
}

void lineframe_free(struct lineframe *lf)
{
	free(lf->buf);
	lf->buf = NULL;
	lf->cap = lf->len = 0;
}

void lineframe_reset(struct lineframe *lf, int64_t off)
{
	lf->len = 0;
	lf->off = off;
	lf->consumed = off;
	lf->skipping = false;
}

char *lineframe_space(struct lineframe *lf, size_t *room)
{
	*room = lf->cap - lf->len;
	return lf->buf + lf->len;
}

static void deliver(struct lineframe *lf, const char *p, size_t n, int64_t off_after, lineframe_fn fn,
		    void *ctx)
{
	lf->consumed = off_after;
	if (lf->skipping || n > lf->max_line) {
		lf->skipping = false;
		fn(ctx, NULL, 0, off_after, true);
		return;
	}
	if (n && p[n - 1] == '\r')
		n--;
	fn(ctx, p, n, off_after, false);
}

void lineframe_commit(struct lineframe *lf, size_t n, lineframe_fn fn, void *ctx)
{
	size_t start = 0, scan = lf->len;
	lf->len += n;
	for (;;) {
		char *nl = memchr(lf->buf + scan, '\n', lf->len - scan);
		if (!nl)
			break;
		size_t end = (size_t)(nl - lf->buf);
		deliver(lf, lf->buf + start, end - start, lf->off + (int64_t)end + 1, fn, ctx);
		start = scan = end + 1;
	}
	size_t rest = lf->len - start;
	if (rest > lf->max_line) {
		/* an over-long line in progress: drop its bytes, remember to report it */
		lf->skipping = true;
		lf->off += (int64_t)lf->len;
		lf->len = 0;
		return;
	}
	if (start) {
		memmove(lf->buf, lf->buf + start, rest);
		lf->off += (int64_t)start;
		lf->len = rest;
	}
}

void lineframe_finish(struct lineframe *lf, lineframe_fn fn, void *ctx)
{
	if (lf->len == 0 && !lf->skipping)
		return;
	int64_t end = lf->off + (int64_t)lf->len;
	deliver(lf, lf->buf, lf->len, end, fn, ctx);
	lf->off = end;
	lf->len = 0;
}
