/*
 * test_jsonw.c - agg_json_text() writes the same bytes as jansson's
 * json_dumps(v, JSON_COMPACT): table cases for escapes, numbers and
 * nesting, then 2000 random trees (fixed seed) of strings with every
 * control character, quotes, backslashes and UTF-8, integers at the ends
 * of their range and reals from 1e-300 to 1e300.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/internal.h"

static void same(json_t *v)
{
	char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	char *got = agg_json_text(v);
	assert_non_null(want);
	assert_non_null(got);
	if (strcmp(want, got) != 0)
		print_error("got  %s\nwant %s\n", got, want);
	assert_string_equal(got, want);
	free(want);
	free(got);
	json_decref(v);
}

static void test_cases(void **state)
{
	(void)state;
	same(json_pack("{}"));
	same(json_pack("[]"));
	same(json_pack("{s:[], s:{}}", "a", "b"));
	same(json_string("plain"));
	same(json_string("quote \" backslash \\ slash / tab \t nl \n cr \r bs \b ff \f"));
	same(json_string("\x01\x02\x1f\x7f end"));
	same(json_string("UTF-8: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8"));
	same(json_stringn("nul\0inside", 10));
	same(json_string("<script>alert(1)</script>"));
	same(json_integer(0));
	same(json_integer(-1));
	same(json_integer(INT64_MAX));
	same(json_integer(INT64_MIN));
	static const double reals[] = {0.0,	      -0.0,
				       1.0,	      -2.5,
				       0.1,	      1.0 / 3,
				       2.0 / 3 * 100, 1e20,
				       1e21,	      1e-7,
				       1e-5,	      1.5e300,
				       -4.2e-300,     123456789012345678.0,
				       9.99,	      1e100,
				       5e-324,	      1.7976931348623157e308};
	for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
		same(json_real(reals[i]));
	same(json_true());
	same(json_false());
	same(json_null());
	same(json_pack("{s:s, s:i, s:f, s:[s, n, b], s:{s:{s:[]}}}", "k\"ey", "v\n", "n", 7, "r", 0.25, "a",
		       "x", 1, "o", "p", "q"));
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
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
	return json_stringn(s, n);
}

static json_t *rand_value(int depth)
{
	switch (next() % (depth > 3 ? 6 : 8)) {
	case 0: return rand_string();
	case 1: return json_integer((json_int_t)next() >> (next() % 64));
	case 2: {
		double m = (double)(next() % 1000000) / 997.0;
		int e = (int)(next() % 600) - 300;
		return json_real(m * pow(10, e) * (next() & 1 ? -1 : 1));
	}
	case 3: return json_true();
	case 4: return json_null();
	case 5: return json_false();
	case 6: {
		json_t *a = json_array();
		for (size_t i = next() % 5; i > 0; i--)
			json_array_append_new(a, rand_value(depth + 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		for (size_t i = next() % 5; i > 0; i--) {
			json_t *k = rand_string();
			json_object_set_new(o, json_string_value(k), rand_value(depth + 1));
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
