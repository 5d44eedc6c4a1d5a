/* test_emit_inject.c - hostile reasons (newlines, quotes, each format's
 * directives, '$', control and non-UTF-8 bytes) and every line of
 * ../shared/adversarial/lines.jsonl as the reason of a decision: every
 * output line must match the format's whitelist expression (written here,
 * independently of the emitters' own validators), each decision must give
 * exactly one entry line, and JSON must carry the text back intact. */
#include <regex.h>
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

#define Q "[^\"\\\\$`]*" /* inside double quotes: no quote, backslash, '$', backquote */

static const struct {
	const char *format;
	const char *line_re;  /* every line */
	const char *entry_re; /* the entry lines (a subset) */
	int minus;	      /* entries of the fixture's 5 the format leaves out */
	bool v6_only;
} formats[] = {
    {"ipset",
     "^(#.*|create mxwarden[46] hash:net family inet6? hashsize 1024 maxelem [0-9]+ timeout 0 comment "
     "-exist|create mxwarden[46]-new hash:net family inet6? hashsize 1024 maxelem [0-9]+ timeout 0 "
     "comment|swap "
     "mxwarden[46]-new mxwarden[46]|destroy mxwarden[46]-new( -exist)?|add "
     "mxwarden[46]-new [0-9a-f.:/]+ timeout [0-9]+ comment \"" Q "\")$",
     "^add ", 0, false},
    {"nft",
     "^(#.*|table inet mxwarden( \\{)?|delete table inet mxwarden|\tset v[46] \\{|\t\ttype "
     "ipv[46]_addr|\t\tflags "
     "interval, timeout|\t\telements = \\{|\t\t\\}|\t\\}|\\}|\tchain input \\{|\t\ttype filter hook input "
     "priority "
     "filter - 10; policy accept;|\t\tip6? saddr @v[46] tcp dport \\{ 25, 465, 587 \\} "
     "drop|\t\t\t[0-9a-f.:/]+ "
     "timeout [0-9]+s comment \"[^\"\\\\$`{}]*\",)$",
     "^\t\t\t[0-9]", 1, false},
    {"iptables",
     "^(#.*|\\*filter|COMMIT|:mxwarden - \\[0:0\\]|-A mxwarden -j RETURN|-A mxwarden -s [0-9.]+/[0-9]+ -p "
     "tcp -m "
     "multiport --dports 25,465,587 -m comment --comment \"" Q
     "\" -j (DROP|REJECT --reject-with tcp-reset))$",
     "^-A mxwarden -s", 1, false},
    {"ip6tables",
     "^(#.*|\\*filter|COMMIT|:mxwarden - \\[0:0\\]|-A mxwarden -j RETURN|-A mxwarden -s [0-9a-f:]+/[0-9]+ -p "
     "tcp "
     "-m multiport --dports 25,465,587 -m comment --comment \"" Q
     "\" -j (DROP|REJECT --reject-with tcp-reset))$",
     "^-A mxwarden -s", 0, true},
    {"postfix", "^(#.*|[0-9a-f.:/]+\t(450 4\\.7\\.1|554 5\\.7\\.1|WARN) [^\t\"\\\\$`]+)$", "^[0-9]", 0,
     false},
    {"postscreen", "^(#.*|[0-9a-f.:/]+\t(reject|dunno|permit))$", "^[0-9]", 0, false},
    /* rbldnsd: '$' only as the last byte, right after the lookup URL */
    {"rbldnsd",
     "^(#.*|:127\\.0\\.0\\.2:[^$\"\\\\]*/lookup/\\$|[0-9.]+/[0-9]+ "
     ":127\\.0\\.0\\.[234]:[^$\"\\\\]*/lookup/\\$)$",
     "^[0-9]", 1, false},
    {"rbldnsd6",
     "^(#.*|:127\\.0\\.0\\.2:[^$\"\\\\]*/lookup/\\$|[0-9a-f:]+/[0-9]+ "
     ":127\\.0\\.0\\.[234]:[^$\"\\\\]*/lookup/\\$)$",
     "^[0-9]", 0, true},
    {"plain", "^[0-9a-f.:]+/[0-9]+$", "^[0-9]", 0, false},
};

static void make(struct decision **d, size_t *n, size_t *nh)
{
	*n = FIX_N;
	*d = xcalloc(FIX_N, sizeof **d);
	fix_make(*d);
	const char *shared = getenv("MXW_SHARED");
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/adversarial/lines.jsonl", shared ? shared : "../shared");
	FILE *fp = fopen(buf_str(&path), "r");
	if (!fp)
		fail_msg("cannot read %s (MXW_SHARED)", buf_str(&path));
	fclose(fp);
	*nh = fix_hostile(d, n, buf_str(&path), FIX_NOW);
	buf_free(&path);
	assert_true(*nh > 50);
}

static void test_whitelist(void **state)
{
	struct decision *d;
	size_t n, nh;
	make(&d, &n, &nh);
	struct config c;
	fix_config(&c);
	for (size_t f = 0; f < MXW_ARRAY_LEN(formats); f++) {
		regex_t line_re, entry_re;
		if (regcomp(&line_re, formats[f].line_re, REG_EXTENDED | REG_NOSUB) != 0 ||
		    regcomp(&entry_re, formats[f].entry_re, REG_EXTENDED | REG_NOSUB) != 0)
			fail_msg("%s: bad test expression", formats[f].format);
		struct buf out = BUF_INIT, err = BUF_INIT;
		assert_int_equal(emitters_render(formats[f].format, d, n, &c, NULL, FIX_NOW, &out, &err), 0);
		size_t entries = 0, lineno = 0;
		char *save = NULL;
		for (char *line = strtok_r(out.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			lineno++;
			if (regexec(&line_re, line, 0, NULL, 0) != 0)
				fail_msg("%s line %zu breaks the whitelist: %s", formats[f].format, lineno,
					 line);
			entries += regexec(&entry_re, line, 0, NULL, 0) == 0;
		}
		/* the fixture gives 4 IPv4 + 1 IPv6 entries; the hostile ones are IPv4 */
		size_t want = formats[f].v6_only ? 1 : nh + 5 - (size_t)formats[f].minus;
		if (entries != want)
			fail_msg("%s: got %zu entry lines, want %zu (one per decision)", formats[f].format,
				 entries, want);
		buf_free(&out);
		buf_free(&err);
		regfree(&line_re);
		regfree(&entry_re);
	}
	config_free(&c);
	free(d);
}

/* JSON escapes rather than filters: the text must come back byte for byte
 * when it was valid UTF-8 without NUL, and the document must parse. */
static void test_json_roundtrip(void **state)
{
	struct decision *d;
	size_t n, nh;
	make(&d, &n, &nh);
	struct config c;
	fix_config(&c);
	struct buf out = BUF_INIT, err = BUF_INIT;
	assert_int_equal(emitters_render("json", d, n, &c, NULL, FIX_NOW, &out, &err), 0);
	for (size_t i = 0; i < out.len; i++)
		if ((unsigned char)out.data[i] >= 0x7f ||
		    ((unsigned char)out.data[i] < 0x20 && out.data[i] != '\n'))
			fail_msg("json: byte 0x%02x at %zu is not printable ASCII",
				 (unsigned char)out.data[i], i);
	json_error_t je;
	json_t *root = json_loadb(out.data, out.len, 0, &je);
	if (!root)
		fail_msg("json does not parse: line %d: %s", je.line, je.text);
	json_t *entries = json_object_get(root, "entries");
	assert_int_equal(json_array_size(entries), nh + 5);
	size_t exact = 0;
	for (size_t i = 0; i < json_array_size(entries); i++) {
		json_t *e = json_array_get(entries, i);
		const char *p = json_string_value(json_object_get(e, "prefix"));
		const char *r = json_string_value(json_object_get(e, "reason"));
		assert_non_null(p);
		assert_non_null(r);
		for (size_t k = 0; k < n; k++) {
			char t[PREFIX_STRLEN];
			prefix_format(&d[k].prefix, t);
			if (strcmp(t, p) != 0)
				continue;
			struct buf b = BUF_INIT;
			buf_append(&b, d[k].reason, strnlen(d[k].reason, sizeof d[k].reason));
			json_t *probe = json_stringn(b.data ? b.data : "", b.len);
			if (probe) { /* valid UTF-8: must be intact */
				if (strcmp(r, buf_str(&b)) != 0)
					fail_msg("json reason of %s: got \"%s\", want \"%s\"", p, r,
						 buf_str(&b));
				exact++;
			} else if (!strstr(r, "\xef\xbf\xbd")) {
				fail_msg("json reason of %s: invalid UTF-8 without U+FFFD: %s", p, r);
			}
			json_decref(probe);
			buf_free(&b);
		}
	}
	assert_true(exact > nh / 2);
	json_decref(root);
	buf_free(&out);
	buf_free(&err);
	config_free(&c);
	free(d);
}

/* The emitters' own validators accept all of it too (emitters_update
 * refuses to write what they refuse). */
static void test_validators_accept(void **state)
{
	struct decision *d;
	size_t n, nh;
	make(&d, &n, &nh);
	struct config c;
	fix_config(&c);
	size_t nf;
	const struct emit_format *const *f = emit_formats(&nf);
	for (size_t i = 0; i < nf; i++) {
		struct buf out = BUF_INIT, err = BUF_INIT;
		assert_int_equal(emitters_render(f[i]->name, d, n, &c, NULL, FIX_NOW, &out, &err), 0);
		if (f[i]->validate(out.data, out.len, &err) < 0)
			fail_msg("%s: hostile output refused by its validator: %s", f[i]->name,
				 buf_str(&err));
		buf_free(&out);
		buf_free(&err);
	}
	config_free(&c);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_whitelist),
	    cmocka_unit_test(test_json_roundtrip),
	    cmocka_unit_test(test_validators_accept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
