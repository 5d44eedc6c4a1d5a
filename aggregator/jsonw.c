/*
 * jsonw.c - the evidence of a decision as compact JSON text, fast: the same
 * bytes as jansson's json_dumps(v, JSON_COMPACT), written into one growing
 * buffer. json_dumps goes through a callback per fragment and formats
 * every number with snprintf; on a busy log it was most of what deciding
 * costs (one evidence object of a few KiB per decision and per upgrade).
 * Strings in a json_t are valid UTF-8 (jansson checks it): only '"', '\\'
 * and control characters are escaped, as jansson does. A test compares the
 * two byte for byte.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/internal.h"

static void put_string(struct buf *b, const char *s, size_t n)
{
	buf_grow(b, n + 2);
	buf_appendc(b, '"');
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_append(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': buf_append(b, "\\\"", 2); break;
		case '\\': buf_append(b, "\\\\", 2); break;
		case '\b': buf_append(b, "\\b", 2); break;
		case '\f': buf_append(b, "\\f", 2); break;
		case '\n': buf_append(b, "\\n", 2); break;
		case '\r': buf_append(b, "\\r", 2); break;
		case '\t': buf_append(b, "\\t", 2); break;
		default: {
			static const char hex[] = "0123456789ABCDEF";
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			buf_append(b, u, 6);
		}
		}
	}
	buf_append(b, s + run, n - run);
	buf_appendc(b, '"');
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
	if (v == v && v >= -1e15 && v <= 1e15 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
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

static void put_value(struct buf *b, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		buf_appendc(b, '{');
		const char *k;
		json_t *x;
		bool first = true;
		json_object_foreach((json_t *)v, k, x)
		{
			if (!first)
				buf_appendc(b, ',');
			first = false;
			put_string(b, k, strlen(k));
			buf_appendc(b, ':');
			put_value(b, x);
		}
		buf_appendc(b, '}');
		break;
	}
	case JSON_ARRAY: {
		buf_appendc(b, '[');
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		{
			if (i)
				buf_appendc(b, ',');
			put_value(b, x);
		}
		buf_appendc(b, ']');
		break;
	}
	case JSON_STRING: put_string(b, json_string_value(v), json_string_length(v)); break;
	case JSON_INTEGER: put_integer(b, json_integer_value(v)); break;
	case JSON_REAL: put_real(b, json_real_value(v)); break;
	case JSON_TRUE: buf_append(b, "true", 4); break;
	case JSON_FALSE: buf_append(b, "false", 5); break;
	case JSON_NULL: buf_append(b, "null", 4); break;
	}
}

char *agg_json_text(const json_t *v)
{
	struct buf b = BUF_INIT;
	buf_grow(&b, 4096);
	put_value(&b, v);
	buf_appendc(&b, '\0');
	return b.data; /* malloc'd: free() it */
}
