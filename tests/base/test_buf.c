/* test_buf.c - the growable buffer keeps its invariants; printable masking
 * can never produce a control byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"

static void test_append_grow(void **state)
{
	struct buf b = BUF_INIT;
	assert_string_equal(buf_str(&b), "");
	for (int i = 0; i < 1000; i++)
		buf_appendc(&b, (char)('a' + i % 26));
	assert_int_equal(b.len, 1000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[b.len], '\0');
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_str(&b), "");
	buf_append(&b, "a\0b", 3);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 4);
	buf_free(&b);
	assert_null(b.data);
	buf_free(&b); /* freeing twice is harmless */
}

static void test_printf_long(void **state)
{
	struct buf b = BUF_INIT;
	char big[5000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	buf_printf(&b, "<%s>%d", big, 42);
	assert_int_equal(b.len, 4999 + 4);
	assert_int_equal(b.data[0], '<');
	assert_string_equal(b.data + 5000, ">42");
	buf_free(&b);
}

static void test_printable_table(void **state)
{
	static const struct {
		const char *in;
		size_t n;
		const char *want;
	} cases[] = {
	    {"plain", 5, "plain"},	  {"a\nb", 3, "a\\x0ab"}, {"a\\b", 3, "a\\\\b"},
	    {"\x1b[31m", 5, "\\x1b[31m"}, {"n\0l", 3, "n\\x00l"}, {"\xc3\xa9", 2, "\\xc3\\xa9"},
	    {"nothing", 0, ""}, /* an empty buffer that gets memory is still a C string */
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct buf b = BUF_INIT;
		buf_append_printable(&b, cases[i].in, cases[i].n);
		if (strcmp(buf_str(&b), cases[i].want) != 0)
			fail_msg("printable case %zu: got %s, want %s", i, buf_str(&b), cases[i].want);
		buf_free(&b);
	}
}

static void test_str_copy(void **state)
{
	char d[4];
	assert_int_equal(str_copy(d, sizeof d, "abc", 3), 0);
	assert_string_equal(d, "abc");
	assert_int_equal(str_copy(d, sizeof d, "abcd", 4), -1);
	assert_string_equal(d, "abc");
}

static void test_split_command(void **state)
{
	static const struct {
		const char *in;
		const char *want[5];
		int rc;
	} cases[] = {
	    {"/usr/sbin/ipset restore -exist", {"/usr/sbin/ipset", "restore", "-exist"}, 0},
	    {"  /bin/echo   \"two words\"  x", {"/bin/echo", "two words", "x"}, 0},
	    {"/bin/echo \"a \\\"q\\\" b\"", {"/bin/echo", "a \"q\" b"}, 0},
	    {"/bin/echo \"unbalanced", {NULL}, -1},
	    {"", {NULL}, 0},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct strv sv = {0};
		char err[128];
		int rc = strv_split_command(&sv, cases[i].in, err, sizeof err);
		assert_int_equal(rc, cases[i].rc);
		size_t n = 0;
		while (n < 5 && cases[i].want[n])
			n++;
		if (rc == 0) {
			assert_int_equal(sv.n, n);
			for (size_t j = 0; j < n; j++)
				assert_string_equal(sv.v[j], cases[i].want[j]);
			if (n)
				assert_null(sv.v[n]);
		}
		strv_free(&sv);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_grow),	    cmocka_unit_test(test_printf_long),
	    cmocka_unit_test(test_printable_table), cmocka_unit_test(test_str_copy),
	    cmocka_unit_test(test_split_command),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
