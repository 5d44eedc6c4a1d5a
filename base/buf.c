/*
 * buf.c - memory helpers that die on exhaustion, and the growable byte
 * buffer every module reuses instead of allocating per line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

static void oom(size_t n)
{
	fprintf(stderr, "mxwarden: out of memory (%zu bytes)\n", n);
	exit(1);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom(nmemb * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* Makes room for extra bytes plus the terminating NUL, doubling so that a
 * run of appends costs amortised O(1) per byte. */
void buf_grow(struct buf *b, size_t extra)
{
	if (extra > SIZE_MAX / 2 - b->len)
		oom(SIZE_MAX);
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
	buf_grow(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_appends(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void buf_appendc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	buf_grow(b, 64);
	int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, cp);
	va_end(cp);
	if (n < 0)
		BUG("vsnprintf failed for format %s", fmt);
	if ((size_t)n >= b->cap - b->len) {
		buf_grow(b, (size_t)n);
		int m = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		if (m != n)
			BUG("vsnprintf gave %d then %d", n, m);
	}
	b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

void buf_append_printable(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	buf_grow(b, n);
	b->data[b->len] = '\0'; /* also when n is 0: buf_grow may have just allocated */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\') {
			buf_append(b, "\\\\", 2);
		} else if (c >= 0x20 && c < 0x7f) {
			buf_appendc(b, (char)c);
		} else {
			char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
			buf_append(b, e, 4);
		}
	}
}

int str_copy(char *dst, size_t dstsz, const char *s, size_t n)
{
	if (dstsz == 0)
		return -1;
	size_t k = n < dstsz ? n : dstsz - 1;
	memcpy(dst, s, k);
	dst[k] = '\0';
	return k == n ? 0 : -1;
}
