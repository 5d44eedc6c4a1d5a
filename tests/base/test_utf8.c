/*
 * test_utf8.c - base/utf8.c: what is valid UTF-8 (RFC 3629: the edges of
 * every sequence length, overlong forms, surrogates, above U+10FFFF, cut
 * sequences, lone continuation bytes), agreement with jansson's check on
 * every 1-, 2- and 3-byte string over an interesting alphabet, and the two
 * shown forms (U+FFFD per bad byte; the one-line text form).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "base/base.h"

static void test_seq(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		size_t want;
	} t[] = {
	    {"a", 1, 1},
	    {"\0", 1, 1},
	    {"\x7f", 1, 1},
	    {"\x80", 1, 0},		   /* lone continuation */
	    {"\xbf", 1, 0},		   /* lone continuation */
	    {"\xc0\x80", 2, 0},		   /* overlong NUL */
	    {"\xc1\xbf", 2, 0},		   /* overlong */
	    {"\xc2\x80", 2, 2},		   /* U+0080 */
	    {"\xdf\xbf", 2, 2},		   /* U+07FF */
	    {"\xc2", 1, 0},		   /* cut */
	    {"\xc2\x41", 2, 0},		   /* not a continuation */
	    {"\xe0\x9f\xbf", 3, 0},	   /* overlong U+07FF */
	    {"\xe0\xa0\x80", 3, 3},	   /* U+0800 */
	    {"\xed\x9f\xbf", 3, 3},	   /* U+D7FF */
	    {"\xed\xa0\x80", 3, 0},	   /* U+D800, a surrogate */
	    {"\xed\xbf\xbf", 3, 0},	   /* U+DFFF */
	    {"\xee\x80\x80", 3, 3},	   /* U+E000 */
	    {"\xef\xbf\xbd", 3, 3},	   /* U+FFFD */
	    {"\xef\xbf\xbf", 3, 3},	   /* U+FFFF */
	    {"\xe2\x82", 2, 0},		   /* cut */
	    {"\xf0\x8f\xbf\xbf", 4, 0},	   /* overlong U+FFFF */
	    {"\xf0\x90\x80\x80", 4, 4},	   /* U+10000 */
	    {"\xf4\x8f\xbf\xbf", 4, 4},	   /* U+10FFFF */
	    {"\xf4\x90\x80\x80", 4, 0},	   /* U+110000 */
	    {"\xf5\x80\x80\x80", 4, 0},	   /* above */
	    {"\xff", 1, 0},		   /* never in UTF-8 */
	    {"\xf0\x9f\x98", 3, 0},	   /* cut */
	    {"\xf0\x9f\x98\x80xyz", 7, 4}, /* followed by more */
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(t); i++) {
		size_t got = utf8_seq(t[i].s, t[i].n);
		if (got != t[i].want)
			fail_msg("case %zu: utf8_seq got %zu, want %zu", i, got, t[i].want);
	}
}

static void test_prefix(void **state)
{
	static const struct {
		const char *s;
		size_t n, want;
	} t[] = {
	    {"", 0, 0},
	    {"plain ascii, longer than eight bytes", 36, 36},
	    {"0123456789abcdef\xff", 17, 16},
	    {"0123456\xc3\xa9"
	     "89abcdef\xe2\x82",
	     19, 17},
	    {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 10, 10},
	    {"a\0b", 3, 3},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(t); i++) {
		size_t got = utf8_valid_prefix(t[i].s, t[i].n);
		if (got != t[i].want)
			fail_msg("case %zu: utf8_valid_prefix got %zu, want %zu", i, got, t[i].want);
		assert_int_equal(utf8_valid(t[i].s, t[i].n), t[i].want == t[i].n);
	}
}

/* Every string of 1 to 3 bytes over bytes at the edges of the classes:
 * the rule is jansson's (json_stringn refuses what is not valid). */
static void test_jansson(void **state)
{
	static const unsigned char alpha[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0,
					      0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
	size_t na = sizeof alpha;
	char s[4];
	size_t checked = 0;
	for (size_t len = 1; len <= 3; len++) {
		size_t total = 1;
		for (size_t k = 0; k < len; k++)
			total *= na;
		for (size_t x = 0; x < total; x++) {
			size_t v = x;
			for (size_t k = 0; k < len; k++) {
				s[k] = (char)alpha[v % na];
				v /= na;
			}
			json_t *j = json_stringn(s, len);
			bool ok = utf8_valid(s, len);
			if ((j != NULL) != ok)
				fail_msg("%02x %02x %02x (%zu bytes): jansson %s, utf8_valid %s",
					 (unsigned char)s[0], len > 1 ? (unsigned char)s[1] : 0,
					 len > 2 ? (unsigned char)s[2] : 0, len,
					 j ? "takes it" : "refuses it", ok ? "true" : "false");
			json_decref(j);
			checked++;
		}
	}
	assert_true(checked > 8000);
}

static void test_clean(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		const char *want;
		size_t wn;
	} t[] = {
	    {"plain", 5, "plain", 5},
	    {"a\0b", 3, "a\0b", 3},
	    {"caf\xc3\xa9", 5, "caf\xc3\xa9", 5},
	    {"x\xffy", 3, "x\xef\xbf\xbdy", 5},
	    {"\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6},		    /* one per byte */
	    {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9}, /* a surrogate */
	    {"\xe2\x82\xac\xe2", 4, "\xe2\x82\xac\xef\xbf\xbd", 6},	    /* cut at the end */
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(t); i++) {
		struct buf b = BUF_INIT;
		buf_appends(&b, "<");
		utf8_append_clean(&b, t[i].s, t[i].n);
		if (b.len != t[i].wn + 1 || memcmp(b.data + 1, t[i].want, t[i].wn) != 0)
			fail_msg("case %zu: utf8_append_clean gave %zu bytes, want %zu", i, b.len - 1,
				 t[i].wn);
		assert_true(utf8_valid(b.data, b.len));
		buf_free(&b);
	}
}

static void test_text(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		const char *want;
	} t[] = {
	    {"plain text", 10, "plain text"},
	    {"back\\slash", 10, "back\\\\slash"},
	    {"caf\xc3\xa9 \xe2\x82\xac", 9, "caf\xc3\xa9 \xe2\x82\xac"},
	    {"bad \xff byte", 10, "bad \xef\xbf\xbd byte"},
	    {"esc\x1b[31m", 8, "esc\\x1b[31m"},
	    {"nl\nnul\0del\x7f", 11, "nl\\x0anul\\x00del\\x7f"},
	    {"c1 \xc2\x85", 5, "c1 \\xc2\\x85"},	  /* NEL */
	    {"ls \xe2\x80\xa8", 6, "ls \\xe2\\x80\\xa8"}, /* U+2028 */
	    {"rlo \xe2\x80\xae"
	     "abc",
	     10,
	     "rlo \\xe2\\x80\\xae"
	     "abc"},					    /* U+202E */
	    {"iso \xe2\x81\xa6", 7, "iso \\xe2\\x81\\xa6"}, /* U+2066 */
	    {"nbsp \xc2\xa0", 7, "nbsp \xc2\xa0"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(t); i++) {
		struct buf b = BUF_INIT;
		utf8_append_text(&b, t[i].s, t[i].n);
		if (strcmp(buf_str(&b), t[i].want) != 0 || b.len != strlen(t[i].want))
			fail_msg("case %zu: utf8_append_text got \"%s\", want \"%s\"", i, buf_str(&b),
				 t[i].want);
		assert_true(utf8_valid(b.data, b.len));
		buf_free(&b);
	}
	/* whatever goes in, what comes out is valid UTF-8 with no control byte */
	char s[256];
	for (int i = 0; i < 256; i++)
		s[i] = (char)i;
	struct buf b = BUF_INIT;
	utf8_append_text(&b, s, sizeof s);
	assert_true(utf8_valid(b.data, b.len));
	for (size_t i = 0; i < b.len; i++)
		assert_true((unsigned char)b.data[i] >= 0x20 && (unsigned char)b.data[i] != 0x7f);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seq),	  cmocka_unit_test(test_prefix), cmocka_unit_test(test_jansson),
	    cmocka_unit_test(test_clean), cmocka_unit_test(test_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
