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

/* jansson's utf8_check_string: true when s[0..n) is valid UTF-8 */
static bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned c = *p;
		if (c < 0x80) {
			p++;
			continue;
		}
		size_t len;
		uint32_t cp;
		if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false; /* a continuation byte, 0xC0, 0xC1 or above 0xF4 */
		}
		if ((size_t)(end - p) < len)
			return false;
		for (size_t i = 1; i < len; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3Fu);
		}
		static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		p += len;
	}
	return true;
}

/* s[0..n) as a JSON string (valid UTF-8: checked by the caller), written at
 * the end of b in one pass: at most 6 bytes per input byte. */
static void put_string(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	buf_grow(b, 6 * n + 2);
	char *o = b->data + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\') {
			*o++ = (char)c;
			continue;
		}
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
	*o = '\0';
	b->len = (size_t)(o - b->data);
}

static void put_integer(struct buf *b, json_int_t v)
{
	char t[24];
	size_t i = sizeof t;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		t[--i] = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		t[--i] = '-';
	buf_append(b, t + i, sizeof t - i);
}

/* jansson's real format: %.17g, a ".0" when it would read back as an
 * integer, no '+' and no leading zeros in the exponent */
static void put_real(struct buf *b, double v)
{
	/* most reals here are whole (thresholds): %.17g prints their digits */
	if (v >= -1e15 && v <= 1e15 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
		put_integer(b, (json_int_t)v);
		buf_append(b, ".0", 2);
		return;
	}
	char t[48];
	int n = snprintf(t, sizeof t, "%.17g", v);
	if (n <= 0 || (size_t)n >= sizeof t - 3)
		return;
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
	buf_appends(b, t);
}

/* The comma before a value or member, and the member's name. */
static void begin(struct jw *w, const char *key)
{
	if (w->more)
		buf_appendc(w->b, ',');
	if (key) {
		put_string(w->b, key, strlen(key));
		buf_appendc(w->b, ':');
	}
}

void jw_obj_begin(struct jw *w, const char *key)
{
	begin(w, key);
	buf_appendc(w->b, '{');
	w->more = false;
}

void jw_obj_end(struct jw *w)
{
	buf_appendc(w->b, '}');
	w->more = true;
}

void jw_arr_begin(struct jw *w, const char *key)
{
	begin(w, key);
	buf_appendc(w->b, '[');
	w->more = false;
}

void jw_arr_end(struct jw *w)
{
	buf_appendc(w->b, ']');
	w->more = true;
}

void jw_strn(struct jw *w, const char *key, const char *s, size_t n)
{
	if (!utf8_valid(s, n))
		return;
	begin(w, key);
	put_string(w->b, s, n);
	w->more = true;
}

void jw_str(struct jw *w, const char *key, const char *s)
{
	jw_strn(w, key, s, strlen(s));
}

void jw_line(struct jw *w, const char *key, const char *s, size_t n)
{
	if (utf8_valid(s, n)) {
		begin(w, key);
		put_string(w->b, s, n);
	} else { /* masked: printable ASCII */
		buf_reset(&w->tmp);
		buf_append_printable(&w->tmp, s, n);
		begin(w, key);
		put_string(w->b, w->tmp.data, w->tmp.len);
	}
	w->more = true;
}

void jw_int(struct jw *w, const char *key, json_int_t v)
{
	begin(w, key);
	put_integer(w->b, v);
	w->more = true;
}

void jw_real(struct jw *w, const char *key, double v)
{
	if (!isfinite(v))
		return;
	begin(w, key);
	put_real(w->b, v);
	w->more = true;
}

void jw_bool(struct jw *w, const char *key, bool v)
{
	begin(w, key);
	if (v)
		buf_append(w->b, "true", 4);
	else
		buf_append(w->b, "false", 5);
	w->more = true;
}

void jw_null(struct jw *w, const char *key)
{
	begin(w, key);
	buf_append(w->b, "null", 4);
	w->more = true;
}
