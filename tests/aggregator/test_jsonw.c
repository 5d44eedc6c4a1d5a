/*
 * test_jsonw.c - the JSON writer of the evidence (aggregator/jsonw.c)
 * writes the bytes jansson's json_dumps(v, JSON_COMPACT) writes for the
 * tree the same calls would build: table cases for escapes, numbers and
 * nesting; 2000 random trees (fixed seed) of strings with every control
 * character, quotes, backslashes and UTF-8, integers at the ends of their
 * range and reals from 1e-300 to 1e300, written through the writer by a
 * walk of the tree; byte strings valid and not valid UTF-8 (overlong forms,
 * surrogates, above U+10FFFF, truncated, NUL) as jansson's json_stringn
 * takes or refuses them, and as evidence lines (each bad byte shown as
 * U+FFFD when refused). Last, end to end: log lines with bad UTF-8 and
 * control characters in the HELO make a decision whose evidence jansson
 * reads back to the same bytes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/internal.h"
#include "parsers/parsers.h"

/* Write v (key: its member name, or NULL) through the writer. */
static void walk(struct jw *w, const char *key, json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		jw_obj_begin(w, key);
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x) walk(w, k, x);
		jw_obj_end(w);
		break;
	}
	case JSON_ARRAY: {
		jw_arr_begin(w, key);
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x) walk(w, NULL, x);
		jw_arr_end(w);
		break;
	}
	case JSON_STRING: jw_strn(w, key, json_string_value(v), json_string_length(v)); break;
	case JSON_INTEGER: jw_int(w, key, json_integer_value(v)); break;
	case JSON_REAL: jw_real(w, key, json_real_value(v)); break;
	case JSON_TRUE: jw_bool(w, key, true); break;
	case JSON_FALSE: jw_bool(w, key, false); break;
	case JSON_NULL: jw_null(w, key); break;
	}
}

static void check_text(const char *got, const char *want, const char *what)
{
	if (strcmp(want, got) != 0)
		print_error("%s:\ngot  %s\nwant %s\n", what, got, want);
	assert_string_equal(got, want);
}

/* The writer's text for v is json_dumps' text. Takes v. */
static void same(json_t *v)
{
	assert_non_null(v);
	char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	assert_non_null(want);
	struct buf b = BUF_INIT;
	struct jw w;
	jw_init(&w, &b);
	walk(&w, NULL, v);
	jw_free(&w);
	check_text(buf_str(&b), want, "tree");
	buf_free(&b);
	free(want);
	json_decref(v);
}

static void test_cases(void **state)
{
	(void)state;
	same(json_pack("{}"));
	same(json_pack("[]"));
	same(json_pack("{s:[], s:{}}", "a", "b"));
	same(json_pack("[[], {}, [[]], i, {s:[{}]}]", 1, "x"));
	same(json_string("plain"));
	same(json_string("quote \" backslash \\ slash / tab \t nl \n cr \r bs \b ff \f"));
	same(json_string("\x01\x02\x1f\x7f end"));
	same(json_string("UTF-8: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8"));
	same(json_stringn("nul\0inside", 10));
	same(json_stringn("\0", 1));
	same(json_string("<script>alert(1)</script>"));
	same(json_integer(0));
	same(json_integer(-1));
	same(json_integer(INT64_MAX));
	same(json_integer(INT64_MIN));
	static const double reals[] = {0.0,
				       -0.0,
				       1.0,
				       -2.5,
				       0.1,
				       1.0 / 3,
				       2.0 / 3 * 100,
				       1e15,
				       -1e15,
				       1e15 + 1,
				       1e16,
				       1e20,
				       1e21,
				       1e-7,
				       1e-5,
				       1.5e300,
				       -4.2e-300,
				       123456789012345678.0,
				       9.99,
				       2.67,
				       1e100,
				       5e-324,
				       -5e-324,
				       1.7976931348623157e308,
				       -1.7976931348623157e308};
	for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
		same(json_real(reals[i]));
	same(json_true());
	same(json_false());
	same(json_null());
	same(json_pack("{s:s, s:i, s:f, s:[s, n, b], s:{s:{s:[]}}}", "k\"ey", "v\n", "n", 7, "r", 0.25, "a",
		       "x", 1, "o", "p", "q"));
}

/* A real that is not finite is left out, member or element, as jansson
 * leaves out the NULL json_real gives for it. */
static void test_not_finite(void **state)
{
	(void)state;
	static const double bad[] = {NAN, INFINITY, -INFINITY};
	for (size_t i = 0; i < 3; i++) {
		json_t *o = json_object(), *a = json_array();
		json_object_set_new(o, "a", json_integer(1));
		json_object_set_new(o, "r", json_real(bad[i]));
		json_object_set_new(o, "b", a);
		json_array_append_new(a, json_real(bad[i]));
		json_array_append_new(a, json_null());
		char *want = json_dumps(o, JSON_COMPACT);
		struct buf b = BUF_INIT;
		struct jw w;
		jw_init(&w, &b);
		jw_obj_begin(&w, NULL);
		jw_int(&w, "a", 1);
		jw_real(&w, "r", bad[i]);
		jw_arr_begin(&w, "b");
		jw_real(&w, NULL, bad[i]);
		jw_null(&w, NULL);
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_free(&w);
		check_text(buf_str(&b), want, "not finite");
		buf_free(&b);
		free(want);
		json_decref(o);
	}
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The writer's text of real v is json_dumps' text. */
static void same_real(double v)
{
	json_t *j = json_real(v);
	char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	assert_non_null(want);
	struct buf b = BUF_INIT;
	struct jw w;
	jw_init(&w, &b);
	jw_real(&w, NULL, v);
	jw_free(&w);
	if (strcmp(buf_str(&b), want) != 0)
		fail_msg("real %a: got %s, want %s", v, buf_str(&b), want);
	buf_free(&b);
	free(want);
}

/* Reals are printed as jansson prints them: random ones across the decimal
 * exponents of both notations, the thresholds of the rules (counts times
 * weights), the neighbours of powers of ten and exact ties at the 17th
 * digit (rounded to even, as glibc does). */
static void test_reals(void **state)
{
	(void)state;
	for (int i = 0; i < 100000; i++) {
		uint64_t m = next() >> 11 | 1ULL << 52;
		int e = (int)(next() % 130) - 80; /* about 1e-8 to 1e23 */
		same_real(ldexp((double)m, e - 52) * (next() & 1 ? -1 : 1));
	}
	static const double weights[] = {1.5, 2.0 / 3, 0.75, 0.1, 1.0 / 7, 3.0, 0.3};
	for (int k = 1; k <= 5000; k++)
		for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++) {
			same_real(k * weights[i]);
			same_real(k / weights[i]);
			same_real(round(k * weights[i] * 100.0) / 100.0); /* scores */
		}
	for (int j = -6; j <= 17; j++) {
		double p = pow(10, j), v = p;
		for (int u = 0; u < 4; u++) {
			same_real(v);
			same_real(-v);
			v = nextafter(v, 0);
		}
		v = p;
		for (int u = 0; u < 4; u++)
			same_real(v = nextafter(v, INFINITY));
	}
	for (int d = 1; d <= 15; d++) { /* d integer digits, 18 - d binary fraction digits */
		int j = 18 - d;
		double lo = ldexp(pow(10, d - 1), j), span = ldexp(pow(10, d), j) - lo;
		for (int i = 0; i < 2000; i++) {
			uint64_t m = ((uint64_t)lo + next() % (uint64_t)span) | 1;
			same_real(ldexp((double)m, -j));
		}
	}
	for (int j = 1; j <= 20; j++) /* 0.5, 0.25, ... 2^-20: short exact expansions */
		same_real(ldexp(1, -j));
}

static json_t *rand_string(void)
{
	static const char *const pieces[] = {"a",
					     "\"",
					     "\\",
					     "/",
					     "\n",
					     "\t",
					     "\x01",
					     "\x1f",
					     "\x7f",
					     " ",
					     "\xc3\xa9",
					     "\xe2\x82\xac",
					     "\xf0\x9f\x98\x80",
					     "<",
					     ">",
					     "&",
					     "'",
					     "0",
					     "}",
					     "]"};
	char s[128];
	size_t n = 0, k = next() % 12;
	for (size_t i = 0; i < k; i++) {
		const char *p = pieces[next() % (sizeof pieces / sizeof pieces[0])];
		size_t l = strlen(p);
		if (n + l >= sizeof s)
			break;
		memcpy(s + n, p, l);
		n += l;
	}
	if (next() % 8 == 0) /* a NUL inside (values only: keys are C strings) */
		s[n++] = '\0';
	return json_stringn(s, n);
}

static json_t *rand_value(int depth)
{
	switch (next() % (depth > 3 ? 7 : 9)) {
	case 0: return rand_string();
	case 1: return json_integer((json_int_t)next() >> (next() % 64));
	case 2: return json_integer(-(json_int_t)(next() % 100000));
	case 3: {
		double m = (double)(next() % 1000000) / 997.0;
		int e = (int)(next() % 600) - 300;
		return json_real(m * pow(10, e) * (next() & 1 ? -1 : 1));
	}
	case 4: return json_true();
	case 5: return json_null();
	case 6: return json_false();
	case 7: {
		json_t *a = json_array();
		for (size_t i = next() % 5; i > 0; i--)
			json_array_append_new(a, rand_value(depth + 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		for (size_t i = next() % 5; i > 0; i--) {
			json_t *k = rand_string();
			const char *ks = json_string_value(k);
			if (strlen(ks) == json_string_length(k)) /* no NUL in a key */
				json_object_set_new(o, ks, rand_value(depth + 1));
			json_decref(k);
		}
		return o;
	}
	}
}

static void test_random(void **state)
{
	(void)state;
	for (int i = 0; i < 2000; i++)
		same(rand_value(0));
}

/* What an evidence line must be: the string if jansson takes it, else the
 * text with each byte that is not valid UTF-8 shown as U+FFFD (the one rule
 * of base/utf8.c, the same in every sink). */
static json_t *line_ref(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (j)
		return j;
	struct buf b = BUF_INIT;
	utf8_append_clean(&b, s, n);
	j = json_stringn(buf_str(&b), b.len);
	buf_free(&b);
	return j;
}

/* s[0..n) as a member (jw_strn: left out when jansson refuses it) and as
 * an evidence line (jw_line) is what jansson writes. */
static void same_bytes(const char *s, size_t n)
{
	json_t *o = json_object(), *a = json_array();
	json_object_set_new(o, "k", json_stringn(s, n));
	json_object_set_new(o, "lines", a);
	json_array_append_new(a, line_ref(s, n));
	json_array_append_new(a, line_ref(s, n));
	char *want = json_dumps(o, JSON_COMPACT);
	struct buf b = BUF_INIT;
	struct jw w;
	jw_init(&w, &b);
	jw_obj_begin(&w, NULL);
	jw_strn(&w, "k", s, n);
	jw_arr_begin(&w, "lines");
	jw_line(&w, NULL, s, n);
	jw_line(&w, NULL, s, n);
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_free(&w);
	struct buf hex = BUF_INIT;
	buf_append_printable(&hex, s, n);
	check_text(buf_str(&b), want, buf_str(&hex));
	buf_free(&hex);
	buf_free(&b);
	free(want);
	json_decref(o);
}

static void test_utf8(void **state)
{
	(void)state;
#define S(lit) lit, sizeof lit - 1
	static const struct {
		const char *s;
		size_t n;
		bool valid; /* what jansson says: checked, so the table cannot lie */
	} cases[] = {
	    {S(""), true},
	    {S("ascii"), true},
	    {S("nul\0mid"), true},
	    {S("\0"), true},
	    {S("\x7f"), true},
	    {S("\xc2\x80"), true},		   /* U+0080, the least 2-byte form */
	    {S("\xdf\xbf"), true},		   /* U+07FF */
	    {S("\xe0\xa0\x80"), true},		   /* U+0800 */
	    {S("\xed\x9f\xbf"), true},		   /* U+D7FF, below the surrogates */
	    {S("\xee\x80\x80"), true},		   /* U+E000, above them */
	    {S("\xef\xbf\xbf"), true},		   /* U+FFFF */
	    {S("\xf0\x90\x80\x80"), true},	   /* U+10000 */
	    {S("\xf4\x8f\xbf\xbf"), true},	   /* U+10FFFF */
	    {S("\xe2\x80\xa8\xe2\x80\xa9"), true}, /* line and paragraph separators: not escaped */
	    {S("\xc0\x80"), false},		   /* overlong NUL */
	    {S("\xc1\xbf"), false},		   /* overlong */
	    {S("\xe0\x9f\xbf"), false},		   /* overlong 3-byte */
	    {S("\xf0\x8f\xbf\xbf"), false},	   /* overlong 4-byte */
	    {S("\xed\xa0\x80"), false},		   /* U+D800 surrogate */
	    {S("\xed\xbf\xbf"), false},		   /* U+DFFF */
	    {S("\xf4\x90\x80\x80"), false},	   /* U+110000 */
	    {S("\xf5\x80\x80\x80"), false},
	    {S("\xff"), false},
	    {S("\xfe\xff"), false},
	    {S("\x80"), false}, /* lone continuation */
	    {S("a\xbf"), false},
	    {S("\xe2\x82"), false}, /* truncated */
	    {S("\xf0\x9f\x98"), false},
	    {S("\xc3"), false},
	    {S("\xc3("), false}, /* bad continuation */
	    {S("\xe2(\xa1"), false},
	    {S("ok \xc3\xa9 then \xff \"quoted\" \\ \x01\x1b[31m"), false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *j = json_stringn(cases[i].s, cases[i].n);
		if ((j != NULL) != cases[i].valid)
			fail_msg("case %zu: jansson says %s, the table %s", i, j ? "valid" : "invalid",
				 cases[i].valid ? "valid" : "invalid");
		json_decref(j);
		same_bytes(cases[i].s, cases[i].n);
	}
	/* random bytes, mostly in the shapes UTF-8 checks trip on */
	static const unsigned char shapes[] = {'a',  '"',  '\\', 0,    1,    0x1f, 0x7f, 0x80,
					       0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef,
					       0xf0, 0xf4, 0xf5, 0xff, 0x90, 0xa0, 0x8f, 0x9f};
	for (int i = 0; i < 20000; i++) {
		unsigned char s[16];
		size_t n = next() % sizeof s;
		for (size_t k = 0; k < n; k++)
			s[k] = next() & 1 ? shapes[next() % sizeof shapes] : (unsigned char)next();
		same_bytes((const char *)s, n);
	}
}

/* --------------------------------------------------------- end to end */

static int64_t keep_change(void *arg, const struct agg_change *ch)
{
	json_t *list = arg;
	if (ch->kind != AGG_CHANGE_ENDED)
		json_array_append_new(list, json_pack("{s:s, s:s}", "kind",
						      ch->kind == AGG_CHANGE_NEW ? "new" : "up", "text",
						      ch->evidence_json));
	return 0;
}

static void test_evidence(void **state)
{
	(void)state;
	setenv("MXWARDEN_NOW", "2026-11-28T00:00:00Z", 1);
	setenv("MXWARDEN_NOW_FROZEN", "1", 1);
	clock_reset();
	struct config c;
	config_defaults(&c);
	free(c.timezone);
	c.timezone = xstrdup("UTC");
	struct errlist e = {0};
	config_validate(&c, &e);
	struct parser *p = parser_new(&c, &e);
	assert_non_null(p);
	c.protected_local = false;
	config_protected_build(&c, NULL);
	c.rules.relay_count = 8; /* more lines before the decision */
	struct aggregator *a = aggregator_new(&c);
	struct parser_source *src = parser_source_new(p, "test", MTA_POSTFIX);
	/* HELO names an attacker chose (escapes, quotes, control characters),
	 * padded so that a 3-byte character starts at byte 399, 398 or 397 of
	 * the line: the evidence keeps 400 bytes, cut inside it (not UTF-8:
	 * masked) or not; NULs before the line (the parser skips them, the
	 * evidence keeps them) and a CR at its end. */
	static const char *const helos[] = {"esc\x1b[31mred\x01", "q\"uo\\te", "caf\xc3\xa9",
					    "tab\there\x7f"};
	struct buf lines[16];
	for (size_t i = 0; i < 16; i++) {
		struct buf *b = &lines[i];
		*b = (struct buf)BUF_INIT;
		if (i % 4 == 1)
			buf_append(b, "\0\0", 2);
		buf_printf(b,
			   "Nov 27 20:%02zu:00 mx postfix/smtpd[1300]: NOQUEUE: reject: RCPT from "
			   "unknown[203.0.113.7]: 554 5.7.1 <v%zu@remote.test>: Relay access denied; "
			   "from=<x@spam.test> to=<v%zu@remote.test> proto=ESMTP helo=<%s",
			   i, i, i, helos[i % 4]);
		assert_true(b->len < 397);
		while (b->len < 399 - (2 * i) % 3)
			buf_appendc(b, 'a');
		buf_appends(b, "\xe2\x82\xac\xe2\x82\xac>");
		if (i % 4 == 3)
			buf_appendc(b, '\r');
		struct event ev;
		int reason;
		if (parser_parse(p, src, b->data, b->len, &ev, &reason) != 1)
			fail_msg("line %zu not parsed (%s)", i, parser_reason_name(reason));
		aggregator_event(a, &ev);
	}
	json_t *changes = json_array();
	aggregator_take_changes(a, keep_change, changes);
	if (json_array_size(changes) == 0)
		fail_msg("got no decision on 16 relay attempts, want one");
	size_t i;
	json_t *ch;
	size_t masked = 0, nul = 0;
	json_array_foreach(changes, i, ch)
	{
		const char *text = json_string_value(json_object_get(ch, "text"));
		json_error_t err;
		json_t *v = json_loads(text, JSON_ALLOW_NUL, &err);
		if (!v)
			fail_msg("evidence %zu does not parse: %s\n%s", i, err.text, text);
		char *again = json_dumps(v, JSON_COMPACT);
		check_text(text, again, "evidence read back by jansson");
		free(again);
		/* the first lines, as the tree code wrote them */
		json_t *first = json_object_get(v, "first");
		assert_true(json_array_size(first) > 0);
		size_t k;
		json_t *l;
		json_array_foreach(first, k, l)
		{
			size_t n = MXW_MIN(lines[k].len, (size_t)EV_LINE_MAX);
			json_t *want = line_ref(lines[k].data, n);
			if (!json_equal(l, want))
				fail_msg("evidence %zu line %zu: got %s, want %s", i, k, json_string_value(l),
					 json_string_value(want));
			json_t *as_is = json_stringn(lines[k].data, n);
			masked += as_is ? 0 : 1;
			json_decref(as_is);
			json_decref(want);
		}
		nul += strstr(text, "\\u0000") ? 1 : 0;
		if (strcmp(json_string_value(json_object_get(ch, "kind")), "up") == 0)
			assert_non_null(json_object_get(v, "upgraded_from"));
		json_decref(v);
	}
	if (!masked || !nul)
		fail_msg("got %zu masked lines and %zu texts with a NUL, want some of each", masked, nul);
	for (size_t k = 0; k < 16; k++)
		buf_free(&lines[k]);
	json_decref(changes);
	parser_source_free(src);
	aggregator_free(a);
	parser_free(p);
	config_free(&c);
	errlist_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),  cmocka_unit_test(test_not_finite), cmocka_unit_test(test_reals),
	    cmocka_unit_test(test_random), cmocka_unit_test(test_utf8),	      cmocka_unit_test(test_evidence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
