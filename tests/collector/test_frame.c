/*
 * test_frame.c - line framing in one reused buffer: complete lines, partial
 * lines held across reads, CRLF, over-long lines counted and skipped (never
 * split), offsets after each line, and the fingerprint hash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/collector.h"

struct got {
	struct buf text; /* lines joined with '|', overlong shown as <LONG> */
	int64_t offs[64];
	int n;
};

static void on_line(void *ctx, const char *p, size_t n, int64_t off_after, bool overlong)
{
	struct got *g = ctx;
	if (g->n)
		buf_appendc(&g->text, '|');
	if (overlong)
		buf_appends(&g->text, "<LONG>");
	else
		buf_append(&g->text, p, n);
	if (g->n < 64)
		g->offs[g->n] = off_after;
	g->n++;
}

/* Feed s in chunks of `chunk` bytes (0 = all at once). */
static void feed(struct lineframe *lf, const char *s, size_t len, size_t chunk, struct got *g)
{
	size_t at = 0;
	while (at < len) {
		size_t room;
		char *sp = lineframe_space(lf, &room);
		size_t k = len - at;
		if (chunk && k > chunk)
			k = chunk;
		if (k > room)
			k = room;
		memcpy(sp, s + at, k);
		lineframe_commit(lf, k, on_line, g);
		at += k;
	}
}

static void test_framing_table(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t max_line;
		bool finish;
		const char *want;
		int want_n;
		int64_t want_consumed;
	} cases[] = {
	    {"a\nbb\nccc\n", 0, false, "a|bb|ccc", 3, 9},
	    {"a\nbb\npartial", 0, false, "a|bb", 2, 5},
	    {"a\nbb\npartial", 0, true, "a|bb|partial", 3, 12},
	    {"crlf\r\nx\n", 0, false, "crlf|x", 2, 8},
	    {"\n\n", 0, false, "|", 2, 2},
	    {"short\n0123456789ABC\nok\n", 8, false, "short|<LONG>|ok", 3, 23},
	    {"0123456789ABCDEF", 8, false, "", 0, 0},
	    {"0123456789ABCDEF\nok\n", 8, false, "<LONG>|ok", 2, 20},
	    {"exactly8\n", 8, false, "exactly8", 1, 9},
	    {"nine_byte\n", 8, false, "<LONG>", 1, 10},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		for (size_t chunk = 0; chunk <= 3; chunk++) {
			struct lineframe lf;
			struct got g = {0};
			lineframe_init(&lf, cases[i].max_line, 0);
			feed(&lf, cases[i].in, strlen(cases[i].in), chunk, &g);
			if (cases[i].finish)
				lineframe_finish(&lf, on_line, &g);
			if (strcmp(buf_str(&g.text), cases[i].want) != 0 || g.n != cases[i].want_n ||
			    lf.consumed != cases[i].want_consumed)
				fail_msg("case %zu chunk %zu: got '%s' (%d lines, consumed %lld), want '%s' "
					 "(%d, %lld)",
					 i, chunk, buf_str(&g.text), g.n, (long long)lf.consumed,
					 cases[i].want, cases[i].want_n, (long long)cases[i].want_consumed);
			buf_free(&g.text);
			lineframe_free(&lf);
		}
	}
}

static void test_offsets(void **state)
{
	(void)state;
	struct lineframe lf;
	struct got g = {0};
	lineframe_init(&lf, 0, 1000); /* resuming at offset 1000 */
	const char *in = "one\ntwo\nthree\n";
	feed(&lf, in, strlen(in), 2, &g);
	int64_t want[] = {1004, 1008, 1014};
	assert_int_equal(g.n, 3);
	for (int i = 0; i < 3; i++)
		if (g.offs[i] != want[i])
			fail_msg("line %d: got offset %lld, want %lld", i, (long long)g.offs[i],
				 (long long)want[i]);
	buf_free(&g.text);
	lineframe_free(&lf);
}

/* A 70 KiB line, 512 NULs without newline, 1 MiB of junk, then 100 good lines:
 * 100 good lines come out, the long stuff as overlong markers, never split. */
static void test_long_and_garbage(void **state)
{
	(void)state;
	struct buf in = BUF_INIT;
	for (int i = 0; i < 70 * 1024; i++)
		buf_appendc(&in, 'x');
	buf_appendc(&in, '\n');
	for (int i = 0; i < 512; i++)
		buf_appendc(&in, '\0');
	uint32_t r = 12345;
	for (int i = 0; i < (1 << 20); i++) {
		r = r * 1103515245 + 12345;
		char ch = (char)(r >> 16);
		buf_appendc(&in, ch == '\n' ? 'n' : ch);
	}
	buf_appendc(&in, '\n');
	for (int i = 0; i < 100; i++)
		buf_printf(&in, "good line %d\n", i);
	struct lineframe lf;
	struct got g = {0};
	lineframe_init(&lf, 0, 0);
	feed(&lf, in.data, in.len, 100000, &g);
	assert_int_equal(g.n, 102);
	const char *t = buf_str(&g.text);
	if (strncmp(t, "<LONG>|<LONG>|good line 0|", 26) != 0)
		fail_msg("got '%.60s', want two overlong markers then the good lines", t);
	assert_int_equal(lf.consumed, (int64_t)in.len);
	buf_free(&g.text);
	buf_free(&in);
	lineframe_free(&lf);
}

static void test_fp_hash(void **state)
{
	(void)state;
	/* FNV-1a 64 reference values */
	static const struct {
		const char *in;
		uint64_t want;
	} cases[] = {
	    {"", 0xcbf29ce484222325ULL},
	    {"a", 0xaf63dc4c8601ec8cULL},
	    {"foobar", 0x85944171f73967e8ULL},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		uint64_t got = coll_fp_hash(cases[i].in, strlen(cases[i].in));
		if (got != cases[i].want)
			fail_msg("fp('%s'): got %016llx, want %016llx", cases[i].in, (unsigned long long)got,
				 (unsigned long long)cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_framing_table),
	    cmocka_unit_test(test_offsets),
	    cmocka_unit_test(test_long_and_garbage),
	    cmocka_unit_test(test_fp_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
