/* test_emit_formats.c - every format against its golden file (reviewed by
 * hand and loaded into the real consumer by the system tests), plus a table
 * of facts per format ("this line must be there / must not"), the
 * validators (they accept our output and refuse broken text), the sanitizer
 * and the lookup URL template. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "emitters/emitters.h"
#include "fixture.h"

static char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t k;
	while ((k = fread(tmp, 1, sizeof tmp, fp)) > 0)
		buf_append(&b, tmp, k);
	fclose(fp);
	*len = b.len;
	return b.data ? b.data : xstrdup("");
}

static void render(const char *format, struct buf *out)
{
	struct decision d[FIX_N];
	fix_make(d);
	struct config c;
	fix_config(&c);
	struct buf err = BUF_INIT;
	if (emitters_render(format, d, FIX_N, &c, NULL, FIX_NOW, out, &err) < 0)
		fail_msg("render %s: got error %s, want success", format, buf_str(&err));
	buf_free(&err);
	config_free(&c);
}

static void test_golden(void **state)
{
	const char *src = getenv("MXW_SOURCE");
	if (!src)
		src = ".";
	size_t nf;
	const struct emit_format *const *f = emit_formats(&nf);
	assert_int_equal(nf, 10);
	for (size_t i = 0; i < nf; i++) {
		struct buf out = BUF_INIT, path = BUF_INIT;
		render(f[i]->name, &out);
		buf_printf(&path, "%s/tests/emitters/golden/%s", src, f[i]->name);
		size_t wlen;
		char *want = read_file(buf_str(&path), &wlen);
		if (!want)
			fail_msg("cannot read %s", buf_str(&path));
		if (wlen != out.len || memcmp(want, out.data, wlen) != 0)
			fail_msg("%s: got\n%s\nwant (%s)\n%s", f[i]->name, buf_str(&out), buf_str(&path),
				 want);
		free(want);
		buf_free(&out);
		buf_free(&path);
	}
}

static void test_facts(void **state)
{
	static const struct {
		const char *format;
		const char *text;
		bool present;
	} cases[] = {
	    {"postfix", "198.51.100.9/32\t450 4.7.1 mxwarden backoff: ", true},
	    {"postfix", "198.51.100.7/32\t554 5.7.1 mxwarden retry: ", true},
	    {"postfix", "see https://postmaster.example.net/lookup/198.51.100.7\n", true},
	    {"postfix", "203.0.113.77", false},
	    {"postfix", "198.51.100.200", false},
	    {"postfix", "10.9.9.9", false},
	    {"postfix", "198.50.0.0", false},
	    {"postfix", "198.51.100.50", false},
	    {"postfix", "\"", false},
	    /* first match wins: the /32 inside the /24 comes before it */
	    {"postfix",
	     "203.0.113.5/32\t554 5.7.1 mxwarden auth: AUTH brute force, 40 users see "
	     "https://postmaster.example.net/lookup/203.0.113.5\n203.0.113.0/24\t",
	     true},
	    {"postscreen", "198.51.100.9/32\treject\n", true},
	    {"postscreen", "554", false},
	    {"ipset", "add mxwarden4-new 198.51.100.7/32 timeout 600 comment \"mxwarden retry: ", true},
	    {"ipset", "add mxwarden6-new 2001:db8:5::/64 timeout 2147483 comment", true},
	    {"ipset", "HELO mx.example see", true},
	    {"ipset", "swap mxwarden4-new mxwarden4\n", true},
	    {"nft", "203.0.113.0/24 timeout 3600s", true},
	    {"nft", "203.0.113.5", false}, /* inside the /24: intervals may not overlap */
	    {"nft", "2001:db8:5::/64 timeout 2147483s", true},
	    {"iptables", "-A mxwarden -s 198.51.100.7/32 ", true},
	    {"iptables", "-j DROP\n", true},
	    {"iptables", "2001:db8", false},
	    {"ip6tables", "-A mxwarden -s 2001:db8:5::/64 ", true},
	    {"ip6tables", "198.51.100", false},
	    {"rbldnsd", "198.51.100.9/32 :127.0.0.3:mxwarden backoff", true},
	    {"rbldnsd", "203.0.113.0/24 :127.0.0.2:mxwarden class", true},
	    {"rbldnsd", "lookup/$\n", true},
	    {"rbldnsd", "127.255.255", false},
	    {"rbldnsd", "2001:db8", false},
	    {"rbldnsd6", "2001:db8:5::/64 :127.0.0.2:", true},
	    {"rbldnsd6", "198.51.100", false},
	    {"plain", "198.51.100.7/32\n198.51.100.9/32\n203.0.113.0/24\n203.0.113.5/32\n2001:db8:5::/64\n",
	     true},
	    {"json", "\"generated\":\"2027-01-01T10:40:00Z\"", true},
	    {"json", "\"scope\":\"class\",\"response\":\"reject\"", true},
	    {"json", "\"lookup_url\":\"https://postmaster.example.net/lookup/198.51.100.9\"", true},
	    {"json", "HELO \\\"mx.example\\\"", true},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct buf out = BUF_INIT;
		render(cases[i].format, &out);
		bool got = strstr(buf_str(&out), cases[i].text) != NULL;
		if (got != cases[i].present)
			fail_msg("%s: \"%s\": got present=%d, want %d in\n%s", cases[i].format, cases[i].text,
				 got, cases[i].present, buf_str(&out));
		buf_free(&out);
	}
	/* plain is exactly the prefixes */
	struct buf out = BUF_INIT;
	render("plain", &out);
	assert_string_equal(
	    buf_str(&out),
	    "198.51.100.7/32\n198.51.100.9/32\n203.0.113.0/24\n203.0.113.5/32\n2001:db8:5::/64\n");
	buf_free(&out);
}

static void test_validators(void **state)
{
	size_t nf;
	const struct emit_format *const *f = emit_formats(&nf);
	for (size_t i = 0; i < nf; i++) {
		struct buf out = BUF_INIT, err = BUF_INIT;
		render(f[i]->name, &out);
		if (f[i]->validate(out.data, out.len, &err) < 0)
			fail_msg("%s: own output refused: %s", f[i]->name, buf_str(&err));
		/* no final newline */
		buf_reset(&err);
		if (f[i]->validate(out.data, out.len - 1, &err) == 0)
			fail_msg("%s: text without its final newline: got accepted, want refused",
				 f[i]->name);
		buf_free(&out);
		buf_free(&err);
	}
	static const struct {
		const char *format;
		const char *text;
		int want;
	} cases[] = {
	    {"plain", "198.51.100.7/32\n", 0},
	    {"plain", "198.51.100.07/32\n", -1},
	    {"plain", "198.51.100.7/24\n", -1}, /* host bits */
	    {"plain", "2001:DB8::/64\n", -1},	/* not canonical */
	    {"plain", "198.51.100.7/32\r\n", -1},
	    {"postfix", "198.51.100.7/32\t554 5.7.1 x\n", 0},
	    {"postfix", "198.51.100.7/32\tOK\n", -1},
	    {"postfix", "198.51.100.7/32\t554 5.7.1 x\"y\n", -1},
	    {"postfix", "198.51.100.7/32\t554 5.7.1 x\x01y\n", -1},
	    {"postscreen", "198.51.100.7/32\tpermit\n", 0},
	    {"postscreen", "198.51.100.7/32\t554 5.7.1 x\n", -1},
	    {"rbldnsd", "198.51.100.7/32 :127.0.0.2:mxwarden x see $\n", 0},
	    {"rbldnsd", "$TTL 0\n", -1},
	    {"rbldnsd", "198.51.100.7/32 :127.255.255.254:x\n", -1},
	    {"ipset", "add mxwarden4-new 198.51.100.7/32 timeout 5 comment \"x\"\n", 0},
	    {"ipset", "add mxwarden4-new 198.51.100.7/32 timeout 5 comment \"x\" y\"\n", -1},
	    {"ipset", "destroy mxwarden4\n", -1},
	    {"ipset", "flush mxwarden4\n", -1},
	    {"ipset", "destroy mxwarden4-new -exist\n", 0},
	    {"nft", "\t\t\t198.51.100.7/32 timeout 5s comment \"x\",\n", 0},
	    {"nft", "\t\t\t198.51.100.7/32 timeout 5s comment \"x\"; flush ruleset\",\n", -1},
	    {"iptables", "-A mxwarden -j RETURN\n", 0},
	    {"iptables", "-A INPUT -j ACCEPT\n", -1},
	    {"json", "{\"generated\":\"x\",\"entries\":[]}\n", 0},
	    {"json", "{\"generated\":\"x\",\"entries\":[{\"prefix\":\"0.0.0.1/0\"}]}\n", -1},
	    {"json", "{\"generated\":\"x\",\"entries\":[\n", -1},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct buf err = BUF_INIT;
		const struct emit_format *fmt = emit_format_find(cases[i].format);
		assert_non_null(fmt);
		int got = fmt->validate(cases[i].text, strlen(cases[i].text), &err);
		if (got != cases[i].want)
			fail_msg("%s validate(\"%s\"): got %d (%s), want %d", cases[i].format, cases[i].text,
				 got, buf_str(&err), cases[i].want);
		buf_free(&err);
	}
}

static void test_sanitize(void **state)
{
	static const struct {
		const char *in;
		size_t max;
		const char *want;
	} cases[] = {
	    {"plain text, 5.7.1 <a@b.example>", 100, "plain text, 5.7.1 <a@b.example>"},
	    {"quote\"d 'x' `y`", 100, "quoted x y"},
	    {"MTA's policy", 100, "MTAs policy"},
	    {"new\nline", 100, "new line"},
	    {"  lead and trail  ", 100, "lead and trail"},
	    {"tabs\t\tand\r\nCRLF", 100, "tabs and CRLF"},
	    {"$TTL 0", 100, "?TTL 0"},
	    {"back\\slash `cmd` {x} a|b a&b ~ #c", 100, "back?slash cmd ?x? a?b a?b ? ?c"},
	    {"\xc3\xbc\xc3\xa9 utf8", 100, "? utf8"},
	    {"\x1b[31mred", 100, "?[31mred"},
	    {"abcdefghij", 4, "abcd"},
	    {"ab cd", 3, "ab"},
	    {"", 10, ""},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct buf out = BUF_INIT;
		emit_sanitize(&out, cases[i].in, cases[i].max);
		if (strcmp(buf_str(&out), cases[i].want) != 0)
			fail_msg("sanitize(\"%s\", %zu): got \"%s\", want \"%s\"", cases[i].in, cases[i].max,
				 buf_str(&out), cases[i].want);
		buf_free(&out);
	}
}

static void test_url(void **state)
{
	static const struct {
		const char *tmpl;
		const char *prefix;
		bool dollar;
		const char *want;
	} cases[] = {
	    {"https://pm.example/lookup/$ip", "198.51.100.7/32", false,
	     "https://pm.example/lookup/198.51.100.7"},
	    {"https://pm.example/lookup/$ip", "203.0.113.0/24", false,
	     "https://pm.example/lookup/203.0.113.0/24"},
	    {"https://pm.example/lookup/$ip", "2001:db8::/64", false,
	     "https://pm.example/lookup/2001:db8::/64"},
	    {"https://pm.example/lookup/$ip", "198.51.100.7/32", true, "https://pm.example/lookup/$"},
	    {"https://pm.example/?q=$ip&x=$ip", "198.51.100.7/32", false,
	     "https://pm.example/?q=198.51.100.7&x=198.51.100.7"},
	    {"http://x/\"a b\n$HOME$ip", "198.51.100.7/32", false, "http://x/abHOME198.51.100.7"},
	    {"http://x/`id`'", "198.51.100.7/32", true, "http://x/id"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct buf t = BUF_INIT, out = BUF_INIT;
		struct prefix p;
		assert_int_equal(prefix_parse(&p, cases[i].prefix, strlen(cases[i].prefix), true), 0);
		emit_url_template(&t, cases[i].tmpl);
		emit_url(&out, buf_str(&t), &p, cases[i].dollar);
		if (strcmp(buf_str(&out), cases[i].want) != 0)
			fail_msg("url(\"%s\", %s): got \"%s\", want \"%s\"", cases[i].tmpl, cases[i].prefix,
				 buf_str(&out), cases[i].want);
		buf_free(&t);
		buf_free(&out);
	}
	/* without [web] lookup_url no URL at all: the listen address (loopback
	 * by default) means nothing to a stranger reading a reply */
	struct config c;
	config_defaults(&c);
	struct buf t = BUF_INIT;
	emit_lookup_template(&c, &t);
	assert_int_equal(t.len, 0);
	free(c.listen);
	c.listen = xstrdup("0.0.0.0:8025");
	emit_lookup_template(&c, &t);
	assert_int_equal(t.len, 0);
	c.lookup_url = xstrdup("http://127.0.0.1:8025/lookup/$ip"); /* set explicitly: kept */
	emit_lookup_template(&c, &t);
	assert_string_equal(buf_str(&t), "http://127.0.0.1:8025/lookup/$ip");
	buf_free(&t);
	config_free(&c);
}

static void test_unknown_format(void **state)
{
	struct config c;
	fix_config(&c);
	struct buf out = BUF_INIT, err = BUF_INIT;
	assert_int_equal(emitters_render("exim", NULL, 0, &c, NULL, FIX_NOW, &out, &err), -1);
	assert_non_null(strstr(buf_str(&err), "unknown format 'exim'"));
	assert_int_equal(out.len, 0);
	/* an empty list is a valid file in every format */
	size_t nf;
	const struct emit_format *const *f = emit_formats(&nf);
	for (size_t i = 0; i < nf; i++) {
		buf_reset(&out);
		buf_reset(&err);
		assert_int_equal(emitters_render(f[i]->name, NULL, 0, &c, NULL, FIX_NOW, &out, &err), 0);
		if (f[i]->validate(out.data ? out.data : "", out.len, &err) < 0)
			fail_msg("%s: empty list refused: %s", f[i]->name, buf_str(&err));
	}
	buf_free(&out);
	buf_free(&err);
	config_free(&c);
}

/* The configuration's [output] formats are checked against the registry,
 * the only list of names; the message lists them in the registry's order. */
static void test_config_formats(void **state)
{
	size_t nf;
	const struct emit_format *const *f = emit_formats(&nf);
	struct buf names = BUF_INIT;
	for (size_t i = 0; i < nf; i++)
		buf_printf(&names, "%s%s", i ? ", " : "", f[i]->name);
	struct buf got = BUF_INIT;
	emit_format_names(&got);
	assert_string_equal(buf_str(&got), buf_str(&names));
	static const struct {
		const char *format; /* NULL: no format key (config_validate's to report) */
		bool ok;
	} cases[] = {{"plain", true},  {"rbldnsd6", true}, {"nosuch", false},
		     {"PLAIN", false}, {"", false},	   {NULL, true}};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct config c;
		config_defaults(&c);
		c.source = xstrdup("/etc/mxwarden.ini");
		c.n_outputs = 1;
		c.outputs = xcalloc(1, sizeof *c.outputs);
		c.outputs[0].name = xstrdup("a");
		c.outputs[0].format = cases[i].format ? xstrdup(cases[i].format) : NULL;
		c.outputs[0].defined_line = 7;
		struct errlist e = {0};
		int rc = emitters_check_config(&c, &e);
		struct buf want = BUF_INIT;
		buf_printf(&want, "/etc/mxwarden.ini:7: [output a] unknown format '%s' (%s)",
			   cases[i].format ? cases[i].format : "", buf_str(&names));
		if (cases[i].ok ? (rc != 0 || e.msgs.n != 0)
				: (rc != -1 || e.msgs.n != 1 || strcmp(e.msgs.v[0], buf_str(&want)) != 0))
			fail_msg("format '%s': got %d, %zu message(s) (%s), want %s", cases[i].format, rc,
				 e.msgs.n, e.msgs.n ? e.msgs.v[0] : "",
				 cases[i].ok ? "none" : buf_str(&want));
		buf_free(&want);
		errlist_free(&e);
		config_free(&c);
	}
	buf_free(&got);
	buf_free(&names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden),
	    cmocka_unit_test(test_facts),
	    cmocka_unit_test(test_validators),
	    cmocka_unit_test(test_sanitize),
	    cmocka_unit_test(test_url),
	    cmocka_unit_test(test_unknown_format),
	    cmocka_unit_test(test_config_formats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
