/*
 * test_web_unit.c - unit tests of web/ internals: the strict URL decoding
 * (table of cases), the JSON text sent to browsers (table of cases plus a
 * deterministic fuzz: always ASCII, never a raw <, > or &, and it parses
 * back to the same value), and the embedded asset table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "web/assets.h"
#include "web/web_internal.h"

static void test_unescape(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"/static/app.js", "/static/app.js"},
	    {"/%2e%2e/%2e%2e/etc/passwd", "/../../etc/passwd"},
	    {"/static/..%2f..%2fetc", "/static/../../etc"},
	    {"/lookup/203.0.113.0%2F24", "/lookup/203.0.113.0/24"},
	    {"a%20b", "a b"},
	    {"%41%42%43", "ABC"},
	    {"/static/app.js%00.html", "/static/app.js%00.html"}, /* NUL: left alone */
	    {"%c0%ae%c0%ae/", "%c0%ae%c0%ae/"},			  /* >= 0x80: left alone */
	    {"%zz", "%zz"},
	    {"100%", "100%"},
	    {"%4", "%4"},
	    {"%7e", "~"},
	    {"", ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[128];
		snprintf(buf, sizeof buf, "%s", cases[i].in);
		size_t n = web_unescape(buf);
		if (strcmp(buf, cases[i].want) != 0 || n != strlen(cases[i].want))
			fail_msg("web_unescape(\"%s\"): got \"%s\" (%zu), want \"%s\"", cases[i].in, buf, n,
				 cases[i].want);
	}
}

static void check_dump(const char *s)
{
	json_t *v = json_object();
	json_object_set_new(v, "k", json_string(s));
	struct buf out = BUF_INIT;
	assert_int_equal(web_json_dump(v, &out), 0);
	for (size_t i = 0; i < out.len; i++) {
		unsigned char c = (unsigned char)out.data[i];
		if (c >= 0x80 || c == '<' || c == '>' || c == '&' || (c < 0x20 && c != '\n'))
			fail_msg("dump of \"%s\": got byte 0x%02x at %zu in %s", s, c, i, out.data);
	}
	json_error_t e;
	json_t *back = json_loads(out.data, JSON_REJECT_DUPLICATES, &e);
	if (!back || !json_equal(back, v))
		fail_msg("dump of \"%s\" does not parse back: %s", s, out.data);
	json_decref(back);
	json_decref(v);
	buf_free(&out);
}

static void test_json_cases(void **state)
{
	static const char *const cases[] = {
	    "<script>alert(1)</script>",
	    "a & b > c < d",
	    "\xe2\x80\xa8 line separator \xe2\x80\xa9 paragraph separator",
	    "quote \" backslash \\ slash / tab \t newline \n",
	    "\xf0\x9f\x98\x80 emoji and \xc3\xa9",
	    "</script><!--",
	    "",
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_dump(cases[i]);
	/* the exact text of the classic case */
	json_t *v = json_string("<b>&</b>");
	struct buf out = BUF_INIT;
	assert_int_equal(web_json_dump(v, &out), 0);
	assert_string_equal(out.data, "\"\\u003cb\\u003e\\u0026\\u003c/b\\u003e\"\n");
	buf_free(&out);
	json_decref(v);
}

/* Append code point cp as UTF-8. */
static size_t put_utf8(char *p, unsigned cp)
{
	if (cp < 0x80) {
		p[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		p[0] = (char)(0xc0 | (cp >> 6));
		p[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		p[0] = (char)(0xe0 | (cp >> 12));
		p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		p[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	p[0] = (char)(0xf0 | (cp >> 18));
	p[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	p[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	p[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static void test_json_fuzz(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	static const unsigned special[] = {'<', '>', '&', '"', '\\', 0x2028, 0x2029, 0x7f, 0x1b, 0};
	for (int round = 0; round < 20000; round++) {
		char s[256];
		size_t n = 0;
		int len = (int)(x % 40);
		for (int k = 0; k < len; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			unsigned cp;
			switch (x % 4) {
			case 0: cp = special[(x >> 8) % (sizeof special / sizeof special[0] - 1)]; break;
			case 1: cp = 1 + (unsigned)((x >> 8) % 0x7f); break;
			case 2: cp = 0x80 + (unsigned)((x >> 8) % 0xd780); break; /* below the surrogates */
			default: cp = 0xe000 + (unsigned)((x >> 8) % 0x102000); break;
			}
			if (cp > 0x10ffff)
				cp = 0x10ffff;
			n += put_utf8(s + n, cp);
		}
		s[n] = '\0';
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		check_dump(s);
	}
}

static void test_assets_table(void **state)
{
	static const char *const names[] = {"index.html", "lookup.html", "app.js",	"lookup.js",
					    "common.js",  "style.css",	 "chart.min.js"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const struct web_asset *a = web_asset_find(names[i]);
		if (!a || a->len == 0 || a->data[a->len] != '\0' || a->etag[0] != '"')
			fail_msg("asset %s: missing, empty or malformed", names[i]);
	}
	assert_null(web_asset_find("../index.html"));
	assert_null(web_asset_find(""));
	assert_null(web_asset_find("INDEX.HTML"));
	const struct web_asset *h = web_asset_find("index.html");
	assert_string_equal(h->type, "text/html; charset=utf-8");
	assert_non_null(strstr((const char *)h->data, "/static/app.js"));
	assert_null(strstr((const char *)h->data, "<script>")); /* no inline script: CSP */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unescape),
	    cmocka_unit_test(test_json_cases),
	    cmocka_unit_test(test_json_fuzz),
	    cmocka_unit_test(test_assets_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
