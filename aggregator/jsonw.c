/*
 * jsonw.c - the evidence of a decision written as compact JSON text straight
 * into a buffer: the bytes jansson's json_dumps(v, JSON_COMPACT) writes for
 * the tree the same calls would have built with json_object_set_new and
 * json_array_append_new, without building it. Building a tree of a few
 * hundred values, hashing every key and then walking it again to print it
 * was most of what a decision cost (one evidence object of a few KiB per
 * decision and per upgrade).
 *
 * Being the same bytes is the contract, so jansson's rules are copied, not
 * improved: only '"', '\\' and control characters are escaped ("\u00XX"
 * upper case), reals are "%.17g" with a ".0" when they would read back as
 * integers, a string that is not valid UTF-8 (jansson's check: no overlong
 * forms, surrogates or code points above U+10FFFF; NUL is valid) and a
 * real that is not finite are left out, as json_stringn and json_real give
 * NULL and setting a NULL member does nothing. tests/aggregator/test_jsonw.c
 * compares the two byte for byte.
 *
 * It must never write log text unchecked: log lines go through jw_line.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/internal.h"

void jw_init(struct jw *w, struct buf *b)
{
	w->b = b;
	w->more = false;
	w->tmp = (struct buf)BUF_INIT;
}

void jw_free(struct jw *w)
{
	buf_free(&w->tmp);
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
/* x holds no byte below 0x20, no '"', no '\\' and nothing above 0x7F */
static inline bool plain8(uint64_t x)
{
	uint64_t q = x ^ (ONES * '"'), bs = x ^ (ONES * '\\');
	return (((x - ONES * 0x20) | (q - ONES) | (bs - ONES) | x) & HIGHS) == 0;
}

/* Room for n more bytes at the end of b: the caller writes them and ends
 * with done(). */
static char *room(struct buf *b, size_t n)
{
	if (b->len + n >= b->cap)
		buf_grow(b, n);
	return b->data + b->len;
}
static void done(struct buf *b, char *end)
{
	*end = '\0';
	b->len = (size_t)(end - b->data);
}

/* s[0..n) as a JSON string at o (room for 6 * n + 2 bytes), escaped as
 * jansson escapes. Returns the end, or NULL when s is not valid UTF-8. */
static char *put_string(char *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	*o++ = '"';
	while (p < end) {
		/* the common case: plain ASCII, 8 bytes at a time, then byte
		 * by byte up to the next byte that is not */
		uint64_t x;
		while (end - p >= 8 && (memcpy(&x, p, 8), plain8(x))) {
			memcpy(o, p, 8);
			o += 8;
			p += 8;
		}
		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			*o++ = (char)*p++;
		if (p == end)
			break;
		unsigned c = *p;
		if (c >= 0x80) {
			/* base/utf8.c's rule is jansson's (utf8_check_full) */
			size_t k = utf8_seq((const char *)p, (size_t)(end - p));
			if (!k)
				return NULL;
			memcpy(o, p, k);
			o += k;
			p += k;
			continue;
		}
		p++;
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hex[c >> 4];
			o[4] = hex[c & 15];
			o += 5;
		}
	}
	*o++ = '"';
	return o;
}

/* v in decimal at o (room for 21 bytes); returns the end */
static char *put_integer(char *o, json_int_t v)
{
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	if (v < 0)
		*o++ = '-';
	size_t n = 1;
	for (unsigned long long t = u; t >= 10; t /= 10)
		n++;
	char *p = o + n;
	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	return o + n;
}

/*
 * jansson's real format at o (room for 48 bytes): %.17g, a ".0" when it
 * would read back as an integer, no '+' and no leading zeros in the
 * exponent. Returns the end.
 *
 * snprintf does the digits. A printer of our own (17 digits of the exact
 * value in 128-bit arithmetic) was measured against it and removed: on the
 * 2,000,000-line benchmark log (1,142 evidence texts, 24,809 reals that
 * are not whole) snprintf costs 6.4 M more instructions in decide() (46.1 M
 * instead of 39.7 M), 0.16 % of the run's 3.87 G, and CPU time did not
 * tell them apart (best of 7: 0.530 s with snprintf, 0.550 s without); the
 * evidence bytes are the same.
 */
static char *put_real(char *o, double v)
{
	/* most reals here are whole (thresholds): %.17g prints their digits */
	if (v >= -1e15 && v <= 1e15 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
		o = put_integer(o, (json_int_t)v);
		memcpy(o, ".0", 2);
		return o + 2;
	}
	char t[48];
	int n = snprintf(t, sizeof t, "%.17g", v);
	if (n <= 0 || (size_t)n >= sizeof t - 3)
		return o;
	if (!strchr(t, '.') && !strchr(t, 'e')) {
		t[n++] = '.';
		t[n++] = '0';
		t[n] = '\0';
	}
	char *e = strchr(t, 'e');
	if (e) {
		char *p = e + 1, *q = e + 1;
		if (*p == '+')
			p++;
		else if (*p == '-')
			*q++ = *p++;
		while (*p == '0' && p[1])
			p++;
		memmove(q, p, strlen(p) + 1);
	}
	n = (int)strlen(t);
	memcpy(o, t, (size_t)n);
	return o + n;
}

/* The comma before a value or member and the member's name at o (room for
 * 6 * strlen(key) + 3 bytes). Returns the end. */
static char *begin_at(struct jw *w, char *o, const char *key, size_t klen)
{
	if (w->more)
		*o++ = ',';
	if (!key)
		return o;
	/* names are fixed words: copied as they are unless one needs more */
	char *start = o;
	*o++ = '"';
	const unsigned char *k = (const unsigned char *)key;
	while (*k >= 0x20 && *k < 0x80 && *k != '"' && *k != '\\')
		*o++ = (char)*k++;
	if (*k) {
		o = put_string(start, key, klen);
		if (!o)
			BUG("JSON key not UTF-8");
	} else {
		*o++ = '"';
	}
	*o++ = ':';
	return o;
}

static size_t klen_of(const char *key)
{
	return key ? strlen(key) : 0;
}

/* Open an object or array: the comma, the name and c. */
static void open_(struct jw *w, const char *key, char c)
{
	size_t kl = klen_of(key);
	char *o = begin_at(w, room(w->b, 6 * kl + 4), key, kl);
	*o++ = c;
	done(w->b, o);
	w->more = false;
}

static void close_(struct jw *w, char c)
{
	char *o = room(w->b, 1);
	*o++ = c;
	done(w->b, o);
	w->more = true;
}

void jw_obj_begin(struct jw *w, const char *key)
{
	open_(w, key, '{');
}

void jw_obj_end(struct jw *w)
{
	close_(w, '}');
}

void jw_arr_begin(struct jw *w, const char *key)
{
	open_(w, key, '[');
}

void jw_arr_end(struct jw *w)
{
	close_(w, ']');
}

/* The member or element s[0..n); false (nothing written) when s is not
 * valid UTF-8. */
static bool put_member_string(struct jw *w, const char *key, const char *s, size_t n)
{
	size_t kl = klen_of(key);
	char *o = begin_at(w, room(w->b, 6 * kl + 3 + 6 * n + 2), key, kl);
	o = put_string(o, s, n);
	if (!o) {
		done(w->b, w->b->data + w->b->len); /* undone */
		return false;
	}
	done(w->b, o);
	w->more = true;
	return true;
}

void jw_strn(struct jw *w, const char *key, const char *s, size_t n)
{
	put_member_string(w, key, s, n);
}

void jw_str(struct jw *w, const char *key, const char *s)
{
	put_member_string(w, key, s, strlen(s));
}

void jw_line(struct jw *w, const char *key, const char *s, size_t n)
{
	if (put_member_string(w, key, s, n))
		return;
	buf_reset(&w->tmp); /* not UTF-8: shown as everywhere else (base/utf8.c) */
	utf8_append_clean(&w->tmp, s, n);
	put_member_string(w, key, w->tmp.data, w->tmp.len);
}

void jw_int(struct jw *w, const char *key, json_int_t v)
{
	size_t kl = klen_of(key);
	char *o = begin_at(w, room(w->b, 6 * kl + 3 + 21), key, kl);
	done(w->b, put_integer(o, v));
	w->more = true;
}

void jw_real(struct jw *w, const char *key, double v)
{
	if (!isfinite(v))
		return;
	size_t kl = klen_of(key);
	char *o = begin_at(w, room(w->b, 6 * kl + 3 + 48), key, kl);
	done(w->b, put_real(o, v));
	w->more = true;
}

static void put_word(struct jw *w, const char *key, const char *word, size_t n)
{
	size_t kl = klen_of(key);
	char *o = begin_at(w, room(w->b, 6 * kl + 3 + n), key, kl);
	memcpy(o, word, n);
	done(w->b, o + n);
	w->more = true;
}

void jw_bool(struct jw *w, const char *key, bool v)
{
	if (v)
		put_word(w, key, "true", 4);
	else
		put_word(w, key, "false", 5);
}

void jw_null(struct jw *w, const char *key)
{
	put_word(w, key, "null", 4);
}
