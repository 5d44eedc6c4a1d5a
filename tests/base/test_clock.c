/* test_clock.c - the settable clock, RFC 3339 round trips, calendar edge
 * cases and durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"

static void test_rfc3339_table(void **state)
{
	static const struct {
		const char *in;
		int64_t want_s; /* -1 = refused */
		int64_t want_frac;
		const char *canon;
	} cases[] = {
	    {"1970-01-01T00:00:00Z", 0, 0, "1970-01-01T00:00:00Z"},
	    {"2026-11-27T20:04:37Z", 1795809877, 0, "2026-11-27T20:04:37Z"},
	    {"2026-11-27T20:04:37.123456+00:00", 1795809877, 123456, "2026-11-27T20:04:37Z"},
	    {"2026-11-27T21:04:37+01:00", 1795809877, 0, "2026-11-27T20:04:37Z"},
	    {"2026-11-27 20:04:37", 1795809877, 0, "2026-11-27T20:04:37Z"},
	    {"2024-02-29T00:00:00Z", 1709164800, 0, "2024-02-29T00:00:00Z"},
	    {"2026-02-29T00:00:00Z", -1, 0, NULL},
	    {"2026-13-01T00:00:00Z", -1, 0, NULL},
	    {"2026-11-31T00:00:00Z", -1, 0, NULL},
	    {"2026-11-27T24:00:00Z", -1, 0, NULL},
	    {"2026-11-27", -1, 0, NULL},
	    {"2026-11-27T20:04:37.5Z", 1795809877, 500000, "2026-11-27T20:04:37Z"},
	    {"2026-12-31T23:59:59-05:00", 1798779599, 0, "2027-01-01T04:59:59Z"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		int64_t us;
		int rc = time_parse_rfc3339(cases[i].in, strlen(cases[i].in), &us);
		if (cases[i].want_s < 0) {
			if (rc >= 0 && (size_t)rc == strlen(cases[i].in))
				fail_msg("parse(%s): got ok, want refused", cases[i].in);
			continue;
		}
		if (rc != (int)strlen(cases[i].in))
			fail_msg("parse(%s): consumed %d of %zu", cases[i].in, rc, strlen(cases[i].in));
		if (us != cases[i].want_s * 1000000 + cases[i].want_frac)
			fail_msg("parse(%s): got %lld, want %lld", cases[i].in, (long long)us,
				 (long long)(cases[i].want_s * 1000000 + cases[i].want_frac));
		char out[TIME_STRLEN];
		time_format_rfc3339(us, false, out);
		if (strcmp(out, cases[i].canon) != 0)
			fail_msg("format(%s): got %s, want %s", cases[i].in, out, cases[i].canon);
	}
	char out[TIME_STRLEN];
	time_format_rfc3339(1795809877123456LL, true, out);
	assert_string_equal(out, "2026-11-27T20:04:37.123456Z");
}

static void test_days_from_civil(void **state)
{
	assert_int_equal(days_from_civil(1970, 1, 1), 0);
	assert_int_equal(days_from_civil(2000, 3, 1), 11017);
	assert_int_equal(days_from_civil(1969, 12, 31), -1);
}

static void test_settable_clock(void **state)
{
	setenv("MXWARDEN_NOW", "2031-05-06T07:08:09Z", 1);
	setenv("MXWARDEN_NOW_FROZEN", "1", 1);
	clock_reset();
	int64_t want;
	time_parse_rfc3339("2031-05-06T07:08:09Z", 20, &want);
	assert_true(clock_now_us() == want);
	assert_true(clock_now() == want / 1000000);
	setenv("MXWARDEN_NOW", "@1000", 1);
	clock_reset();
	assert_true(clock_now() == 1000);
	unsetenv("MXWARDEN_NOW_FROZEN");
	clock_reset();
	int64_t a = clock_now_us();
	int64_t b = clock_now_us();
	assert_true(a >= 1000 * 1000000LL && b >= a && b < 1010 * 1000000LL); /* ticking from 1000 */
	unsetenv("MXWARDEN_NOW");
	clock_reset();
	assert_true(clock_now() > 1700000000); /* the real clock again */
}

static void test_duration_table(void **state)
{
	static const struct {
		const char *in;
		int64_t want; /* -1 = refused */
		const char *canon;
	} cases[] = {
	    {"90s", 90, "1m30s"}, {"10m", 600, "10m"},
	    {"2h", 7200, "2h"},	  {"7d", 604800, "7d"},
	    {"1w", 604800, "7d"}, {"1h30m", 5400, "1h30m"},
	    {"45", 45, "45s"},	  {"0s", 0, "0s"},
	    {"", -1, NULL},	  {"3 days", -1, NULL},
	    {"1h30", -1, NULL},	  {"-5m", -1, NULL},
	    {"5x", -1, NULL},	  {"99999999999999999999d", -1, NULL},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		int64_t v = -7;
		int rc = duration_parse(cases[i].in, &v);
		if (cases[i].want < 0) {
			if (rc == 0)
				fail_msg("duration(%s): got %lld, want refused", cases[i].in, (long long)v);
			continue;
		}
		if (rc != 0 || v != cases[i].want)
			fail_msg("duration(%s): got rc=%d v=%lld, want %lld", cases[i].in, rc, (long long)v,
				 (long long)cases[i].want);
		char out[32];
		duration_format(v, out, sizeof out);
		if (strcmp(out, cases[i].canon) != 0)
			fail_msg("duration_format(%lld): got %s, want %s", (long long)v, out, cases[i].canon);
	}
}

static void test_enum_names(void **state)
{
	for (int k = 0; k < EV__COUNT; k++)
		assert_int_equal(ev_kind_from_name(ev_kind_name(k)), k);
	for (int c = 0; c < CAT__COUNT; c++)
		assert_int_equal(ev_category_from_name(ev_category_name(c)), c);
	for (int s = 0; s < ST__COUNT; s++)
		assert_int_equal(ev_stage_from_name(ev_stage_name(s)), s);
	for (int r = 0; r < RESP__COUNT; r++)
		assert_int_equal(response_from_name(response_name(r)), r);
	assert_string_equal(ev_category_name(CAT_UNKNOWN_RECIPIENT), "unknown_recipient");
	assert_string_equal(ev_stage_name(ST_END_OF_DATA), "end-of-data");
	assert_int_equal(ev_category_from_name("nope"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc3339_table),  cmocka_unit_test(test_days_from_civil),
	    cmocka_unit_test(test_settable_clock), cmocka_unit_test(test_duration_table),
	    cmocka_unit_test(test_enum_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
