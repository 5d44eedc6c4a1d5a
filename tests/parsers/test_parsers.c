/*
 * test_parsers.c - the parsers module: the parser corpus (corpus.txt: real
 * lines of every shape with the expected event, lines that must yield
 * nothing), lines with bytes that are not UTF-8, NUL and controls, the
 * adversarial corpus (../shared/adversarial), the Postfix corpus check,
 * Exim mainlog+rejectlog de-duplication, year inference, time zones, JSON
 * validity and custom rules.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "base/base.h"
#include "parsers/parsers.h"

static struct config conf;
static struct parser *P;

static void set_now(const char *now)
{
	setenv("MXWARDEN_NOW", now, 1);
	setenv("MXWARDEN_NOW_FROZEN", "1", 1);
	clock_reset();
}

static int setup(void **state)
{
	set_now("2026-11-28T00:00:00Z");
	config_defaults(&conf);
	free(conf.timezone);
	conf.timezone = xstrdup("UTC");
	struct errlist e = {0};
	P = parser_new(&conf, &e);
	assert_non_null(P);
	errlist_free(&e);
	return 0;
}

static int teardown(void **state)
{
	parser_free(P);
	config_free(&conf);
	return 0;
}

static const char *shared_dir(void)
{
	const char *s = getenv("MXW_SHARED");
	return s ? s : "../shared";
}

static void check_span(const char *field, const char *line, struct span got, const char *want)
{
	if (!want)
		return; /* not checked */
	if (strcmp(want, "-") == 0) {
		if (got.p)
			fail_msg("%s: %s: got \"%.*s\", want null", line, field, (int)got.n, got.p);
		return;
	}
	if (!got.p || got.n != strlen(want) || memcmp(got.p, want, got.n) != 0)
		fail_msg("%s: %s: got \"%.*s\", want \"%s\"", line, field, got.p ? (int)got.n : 4,
			 got.p ? got.p : "null", want);
}

/*
 * The parser corpus (tests/parsers/corpus.txt): a log line, then the event
 * it must give as a JSON object (each key given is compared with the
 * event's `mxwarden parse` JSON; keys not given are not checked), "no
 * event" (understood, nothing about a client) or "unparsed REASON". The
 * pairs of one block (no blank line between them) share a source, as the
 * lines of one file do; "@format NAME" before a block sets its --format
 * hint. A line "bytes: ..." holds \xHH escapes for bytes a text file should
 * not hold ("\\" is a backslash). Adding a shape needs no C.
 */
static size_t corpus_unescape(const char *s, char *out)
{
	size_t n = 0;
	for (const char *c = s; *c; c++) {
		if (c[0] == '\\' && c[1] == '\\') {
			out[n++] = '\\';
			c++;
		} else if (c[0] == '\\' && c[1] == 'x' && isxdigit((unsigned char)c[2]) &&
			   isxdigit((unsigned char)c[3])) {
			char hex[3] = {c[2], c[3], 0};
			out[n++] = (char)strtol(hex, NULL, 16);
			c += 3;
		} else {
			out[n++] = *c;
		}
	}
	return n;
}

static void test_corpus(void **state)
{
	char path[4096];
	const char *srcdir = getenv("MXW_SOURCE");
	snprintf(path, sizeof path, "%s/tests/parsers/corpus.txt", srcdir ? srcdir : ".");
	FILE *fp = fopen(path, "r");
	if (!fp)
		fail_msg("cannot open %s", path);
	char *l = NULL, *raw = NULL;
	size_t cap = 0, rawlen = 0;
	ssize_t n;
	int lineno = 0, logline = 0, cases = 0, events = 0, failed = 0;
	enum mta hint = MTA_UNKNOWN;
	struct parser_source *src = NULL;
	struct buf b = BUF_INIT;
	while ((n = getline(&l, &cap, fp)) > 0) {
		lineno++;
		if (l[n - 1] == '\n')
			l[--n] = '\0';
		if (n == 0) { /* a blank line ends the block */
			parser_source_free(src);
			src = NULL;
			hint = MTA_UNKNOWN;
			continue;
		}
		if (l[0] == '#')
			continue;
		if (strncmp(l, "@format ", 8) == 0) {
			int m = mta_from_name(l + 8);
			if (m < 0)
				fail_msg("%s:%d: unknown format %s", path, lineno, l + 8);
			hint = (enum mta)m;
			continue;
		}
		bool expect = l[0] == '{' || strcmp(l, "no event") == 0 || strncmp(l, "unparsed ", 9) == 0;
		if (!expect) {
			if (raw)
				fail_msg("%s:%d: a log line follows the log line of line %d", path, lineno,
					 logline);
			raw = xmalloc((size_t)n + 1);
			rawlen = strncmp(l, "bytes: ", 7) == 0 ? corpus_unescape(l + 7, raw) : (size_t)n;
			if (strncmp(l, "bytes: ", 7) != 0)
				memcpy(raw, l, (size_t)n);
			logline = lineno;
			continue;
		}
		if (!raw)
			fail_msg("%s:%d: an expectation without a log line", path, lineno);
		if (!src)
			src = parser_source_new(P, "corpus", hint);
		struct event ev;
		int reason;
		int rc = parser_parse(P, src, raw, rawlen, &ev, &reason);
		cases++;
		if (strcmp(l, "no event") == 0) {
			if (rc != 0) {
				print_error("%s:%d: got rc %d (%s), want no event\n", path, logline, rc,
					    parser_reason_name(reason));
				failed++;
			}
		} else if (l[0] == 'u') {
			if (rc != -1 || strcmp(parser_reason_name(reason), l + 9) != 0) {
				print_error("%s:%d: got rc %d (%s), want %s\n", path, logline, rc,
					    parser_reason_name(reason), l);
				failed++;
			}
		} else {
			json_error_t err;
			json_t *want = json_loads(l, JSON_ALLOW_NUL, &err);
			if (!want || !json_is_object(want))
				fail_msg("%s:%d: bad JSON: %s", path, lineno, err.text);
			if (rc != 1) {
				print_error("%s:%d: got rc %d (%s), want an event\n", path, logline, rc,
					    parser_reason_name(reason));
				failed++;
				json_decref(want);
				free(raw);
				raw = NULL;
				continue;
			}
			buf_reset(&b);
			event_to_json(&ev, &b);
			json_t *got = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &err);
			if (!got)
				fail_msg("%s:%d: the event's JSON is invalid: %s", path, logline, err.text);
			const char *key;
			json_t *v;
			json_object_foreach(want, key, v)
			{
				json_t *g = json_object_get(got, key);
				if (!g)
					fail_msg("%s:%d: the event has no key %s", path, logline, key);
				if (!json_equal(g, v)) {
					char *gs = json_dumps(g, JSON_ENCODE_ANY);
					char *ws = json_dumps(v, JSON_ENCODE_ANY);
					print_error("%s:%d: %s: got %s, want %s\n", path, logline, key, gs,
						    ws);
					free(gs);
					free(ws);
					failed++;
				}
			}
			/* the class is always the configured /24 or /64 of the client */
			if (ev.has_ip) {
				struct prefix cls;
				ipaddr_class(&ev.ip, &conf.classes, &cls);
				assert_int_equal(prefix_cmp(&cls, &ev.cls), 0);
			}
			json_decref(got);
			json_decref(want);
			events++;
		}
		free(raw);
		raw = NULL;
	}
	if (raw)
		fail_msg("%s:%d: a log line without an expectation", path, logline);
	if (failed)
		fail_msg("%d of %d corpus cases differ (above)", failed, cases);
	parser_source_free(src);
	buf_free(&b);
	free(l);
	fclose(fp);
	assert_true(cases >= 150);
	assert_true(events >= 100);
}

/* The event of line (rc 1 wanted) as JSON, parsed back. */
static json_t *event_json(struct parser_source *s, const char *line, size_t n)
{
	struct event ev;
	int reason;
	int rc = parser_parse(P, s, line, n, &ev, &reason);
	if (rc != 1)
		fail_msg("%.*s: got rc %d (%s), want an event", (int)n, line, rc, parser_reason_name(reason));
	if (ev.line.p != line || ev.line.n != n)
		fail_msg("%.*s: the raw line is not the line given", (int)n, line);
	struct buf b = BUF_INIT;
	event_to_json(&ev, &b);
	json_error_t err;
	json_t *o = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &err);
	if (!o)
		fail_msg("event JSON invalid: %s: %s", err.text, b.data);
	buf_free(&b);
	return o;
}

/*
 * Bytes that are not valid UTF-8, NUL and control bytes inside a HELO, an
 * address or a reply text: the line gives the event the clean line gives
 * (same client, kind, stage, category, code), the raw line is kept
 * byte-exact, and the JSON shows each bad byte as U+FFFD.
 */
static void test_bytes(void **state)
{
	static const struct {
		const char *line;  /* '#' marks where the bytes go */
		const char *field; /* the JSON field that holds them */
	} base[] = {
	    {"Jan 10 10:00:53 mx1 postfix/smtpd[4711]: NOQUEUE: reject: RCPT from unknown[203.0.113.92]: 554 "
	     "5.7.1 "
	     "<x@example.org>: Relay access denied; from=<a#@example.net> to=<x@example.org> proto=ESMTP "
	     "helo=<bad#helo>",
	     "helo"},
	    {"Jan 10 10:00:53 mx1 postfix/smtpd[4711]: warning: unknown[203.0.113.93]: SASL LOGIN "
	     "authentication "
	     "failed: UGFzc3dvcmQ6, sasl_username=ad#min",
	     "user"},
	    {"2026-11-27 20:26:41 [3507] H=(spam#bot) [203.0.113.94]:52587 F=<jobs@example.net> rejected "
	     "RCPT "
	     "<paul@example.org>: Unrouteable address",
	     "helo"},
	    {"2026-11-27 20:26:42 [3534] LOGIN authenticator failed for (x) [203.0.113.95]:60487: 535 "
	     "Incorrect "
	     "authentication data (set_id=ro#ot)",
	     "user"},
	    {"Nov 27 20:30:01 mx sm-mta[5001]: 60AA3a1B005001: ruleset=check_rcpt, arg1=<x#@example.org>, "
	     "relay=mx.example.net [203.0.113.96], reject=550 5.7.1 <x#@example.org>... Relaying denied",
	     "to"},
	};
	static const struct {
		const char *b;
		size_t n;
		const char *shown; /* in the JSON string, decoded */
	} bad[] = {
	    {"\xff", 1, "\xef\xbf\xbd"},
	    {"\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd"},		 /* a cut sequence */
	    {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},		 /* overlong '/' */
	    {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate */
	    {"\0", 1, "\0"},
	    {"\x1b[31m", 5, "\x1b[31m"},
	    {"\x01\x7f", 2, "\x01\x7f"},
	    {"\xc3\xa9", 2, "\xc3\xa9"}, /* valid: kept */
	};
	static const char *const same[] = {"ip", "port", "class", "kind", "stage", "category", "code", "dsn"};
	for (size_t i = 0; i < MXW_ARRAY_LEN(base); i++) {
		char clean[1024], dirty[1024];
		size_t cn = 0;
		for (const char *c = base[i].line; *c; c++)
			if (*c != '#')
				clean[cn++] = *c;
		clean[cn] = '\0';
		struct parser_source *s = parser_source_new(P, "bytes", MTA_UNKNOWN);
		json_t *want = event_json(s, clean, strlen(clean));
		for (size_t k = 0; k < MXW_ARRAY_LEN(bad); k++) {
			/* every '#' of the line gets the bytes */
			size_t n = 0;
			for (const char *c = base[i].line; *c; c++) {
				if (*c == '#') {
					memcpy(dirty + n, bad[k].b, bad[k].n);
					n += bad[k].n;
				} else {
					dirty[n++] = *c;
				}
			}
			json_t *got = event_json(s, dirty, n);
			for (size_t f = 0; f < MXW_ARRAY_LEN(same); f++)
				if (!json_equal(json_object_get(got, same[f]),
						json_object_get(want, same[f])))
					fail_msg("%s with bytes %zu: %s differs from the clean line's",
						 base[i].line, k, same[f]);
			/* the field shows the bytes as the one rule says (once) */
			const char *fv = json_string_value(json_object_get(got, base[i].field));
			const char *cv = json_string_value(json_object_get(want, base[i].field));
			assert_non_null(fv);
			assert_non_null(cv);
			size_t fl = json_string_length(json_object_get(got, base[i].field));
			size_t cl = strlen(cv), sl = strlen(bad[k].shown) + (bad[k].shown[0] ? 0 : 1);
			if (fl != cl + sl || !memmem(fv, fl, bad[k].shown, sl))
				fail_msg("%s with bytes %zu: %s is not the clean value with them shown",
					 base[i].line, k, base[i].field);
			json_decref(got);
		}
		json_decref(want);
		parser_source_free(s);
	}
}

static void test_hygiene(void **state)
{
	struct parser_source *s = parser_source_new(P, "test", MTA_UNKNOWN);
	struct event ev;
	int reason;
	const char *good = "Jan 10 10:00:53 mx1 postfix/smtpd[4711]: connect from unknown[203.0.113.92]";
	size_t gl = strlen(good);
	char *buf = xmalloc(PARSER_LINE_MAX + 200);
	/* over-long */
	memcpy(buf, good, gl);
	memset(buf + gl, 'A', PARSER_LINE_MAX + 100 - gl);
	assert_int_equal(parser_parse(P, s, buf, PARSER_LINE_MAX + 100, &ev, &reason), -1);
	assert_int_equal(reason, PARSE_R_TOO_LONG);
	/* a trailing CR (CRLF file) is dropped; leading NULs are skipped */
	memcpy(buf, good, gl);
	buf[gl] = '\r';
	assert_int_equal(parser_parse(P, s, buf, gl + 1, &ev, &reason), 1);
	memset(buf, 0, 10);
	memcpy(buf + 10, good, gl);
	assert_int_equal(parser_parse(P, s, buf, gl + 10, &ev, &reason), 1);
	/* a CR inside a line is not a line end: the line keeps it as a byte
	 * and still gives its event (adversarial row PF28) */
	const char *cr =
	    "Jan 10 10:00:53 mx1 postfix/smtpd[4711]: connect from unknown[203.0.113.92]\rJan 10 "
	    "10:00:53 mx1 postfix/smtpd[4711]: connect from unknown[192.0.2.66]";
	assert_int_equal(parser_parse(P, s, cr, strlen(cr), &ev, &reason), 1);
	assert_int_equal(reason, PARSE_R_NONE);
	assert_int_equal(ev.line.n, strlen(cr));
	char ipbuf[IPADDR_STRLEN];
	ipbuf[ipaddr_format(&ev.ip, ipbuf)] = '\0';
	assert_string_equal(ipbuf, "203.0.113.92");
	free(buf);
	/* the reason names: every code has one, no reserved ones */
	static const char *const names[] = {"none",	   "too_long",	      "bad_envelope",
					    "bad_address", "unknown_program", "unknown_message",
					    "truncated"};
	assert_int_equal(parser_reason_count(), (int)MXW_ARRAY_LEN(names));
	for (int i = 0; i < parser_reason_count(); i++)
		assert_string_equal(parser_reason_name(i), names[i]);
	assert_string_equal(parser_reason_name(parser_reason_count()), "invalid");
	assert_string_equal(parser_reason_name(-1), "invalid");
	parser_source_free(s);
}

/* ../shared/adversarial/lines.jsonl under the rules of its README. */
static void test_adversarial(void **state)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/adversarial/lines.jsonl", shared_dir());
	FILE *fp = fopen(path, "r");
	if (!fp)
		fail_msg("cannot open %s", path);
	char *l = NULL;
	size_t cap = 0;
	ssize_t n;
	int rows = 0;
	while ((n = getline(&l, &cap, fp)) > 0) {
		json_error_t jerr;
		json_t *o = json_loadb(l, (size_t)n, JSON_ALLOW_NUL, &jerr);
		if (!o)
			fail_msg("%s: bad JSON: %s", path, jerr.text);
		const char *id = json_string_value(json_object_get(o, "id"));
		const char *mta = json_string_value(json_object_get(o, "mta"));
		json_t *jl = json_object_get(o, "line");
		json_t *b64 = json_object_get(o, "line_b64");
		assert_non_null(id);
		char *raw = NULL;
		size_t rawlen = 0;
		if (b64) {
			/* decode base64 */
			const char *t = json_string_value(b64);
			size_t tl = strlen(t);
			raw = xmalloc(tl);
			unsigned acc = 0;
			int bits = 0;
			for (size_t i = 0; i < tl; i++) {
				const char *pos = strchr(
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", t[i]);
				if (t[i] == '=' || !pos)
					continue;
				acc = (acc << 6) |
				      (unsigned)(pos - "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
						       "vwxyz0123456789+/");
				bits += 6;
				if (bits >= 8) {
					bits -= 8;
					raw[rawlen++] = (char)((acc >> bits) & 0xff);
				}
			}
		} else {
			rawlen = json_string_length(jl);
			raw = xmalloc(rawlen + 1);
			memcpy(raw, json_string_value(jl), rawlen);
		}
		enum mta hint = MTA_UNKNOWN;
		if (mta && strcmp(mta, "any") != 0)
			hint = (enum mta)mta_from_name(mta);
		struct parser_source *s = parser_source_new(P, "adversarial", hint);
		struct event ev;
		int reason;
		int rc = parser_parse(P, s, raw, rawlen, &ev, &reason);
		const char *expect = json_string_value(json_object_get(o, "expect_ip"));
		const char *also = json_string_value(json_object_get(o, "also_ok_ip"));
		const char *reserved = json_string_value(json_object_get(o, "reserved_ip"));
		const char *kind = json_string_value(json_object_get(o, "expect_kind"));
		bool null_ok = json_is_true(json_object_get(o, "null_ok"));
		if (rc == 1) {
			char ip[IPADDR_STRLEN], cls[PREFIX_STRLEN];
			ipaddr_format(&ev.ip, ip);
			prefix_format(&ev.cls, cls);
			bool ok = (expect && !strcmp(ip, expect)) || (also && !strcmp(ip, also)) ||
				  (reserved && !strcmp(ip, reserved));
			if (!ok)
				fail_msg("%s: got ip %s, want %s", id, ip, expect ? expect : "no event");
			json_t *never = json_object_get(o, "never_ips");
			size_t i;
			json_t *v;
			json_array_foreach(never, i, v)
			{
				struct ipaddr nip;
				const char *ns = json_string_value(v);
				assert_int_equal(ipaddr_parse(&nip, ns, strlen(ns)), 0);
				/* the right client's own class may hold a never ip
				 * (PF15: "2001:db8:1::26:4711" is in its /64) */
				struct ipaddr eip;
				struct prefix ecls;
				bool same_class = false;
				if (expect && ipaddr_parse(&eip, expect, strlen(expect)) == 0) {
					ipaddr_class(&eip, &conf.classes, &ecls);
					same_class = prefix_contains(&ecls, &nip);
				}
				if (prefix_contains(&ev.cls, &nip) && !same_class)
					fail_msg("%s: class %s contains never ip %s", id, cls, ns);
				if (ipaddr_cmp(&nip, &ev.ip) == 0)
					fail_msg("%s: event carries never ip %s", id, ns);
			}
			if (kind && strcmp(kind, ev_kind_name(ev.kind)) != 0)
				fail_msg("%s: got kind %s, want %s", id, ev_kind_name(ev.kind), kind);
		} else if (expect && !null_ok) {
			fail_msg("%s: got no event (rc %d, %s), want %s", id, rc, parser_reason_name(reason),
				 expect);
		}
		parser_source_free(s);
		free(raw);
		json_decref(o);
		rows++;
	}
	free(l);
	fclose(fp);
	assert_true(rows >= 50);
}

/* Independent extraction of the logged client for the corpus check: the first
 * "[ip]" after the fixed prefix (the corpus lines are benign). */
static bool logged_ip(const char *line, char *out, size_t outsz)
{
	const char *k = strstr(line, " reject: ");
	const char *w = strstr(line, "warning: ");
	const char *from = NULL;
	if (strstr(line, "/cleanup[") && k)
		from = strstr(k, " from ");
	else if (k)
		from = strstr(k, " from ");
	else if (w && strstr(line, "authentication failed"))
		from = w;
	if (!from)
		return false;
	const char *a = strchr(from, '[');
	const char *b = a ? strchr(a, ']') : NULL;
	if (!b || (size_t)(b - a) >= outsz)
		return false;
	memcpy(out, a + 1, (size_t)(b - a - 1));
	out[b - a - 1] = '\0';
	return true;
}

static void test_corpus_postfix(void **state)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/corpus/real/postfix-3.7-loopback.log", shared_dir());
	FILE *fp = fopen(path, "r");
	if (!fp)
		fail_msg("cannot open %s", path);
	struct parser_source *s = parser_source_new(P, path, MTA_UNKNOWN);
	char *l = NULL;
	size_t cap = 0;
	ssize_t n;
	int checked = 0, sasl = 0, rejects = 0;
	while ((n = getline(&l, &cap, fp)) > 0) {
		if (l[n - 1] == '\n')
			l[--n] = '\0';
		struct event ev;
		int reason;
		int rc = parser_parse(P, s, l, (size_t)n, &ev, &reason);
		bool is_reject = strstr(l, " reject: ") != NULL;
		bool is_sasl = strstr(l, "SASL") && strstr(l, "authentication failed");
		if (!is_reject && !is_sasl)
			continue;
		char want[64], got[IPADDR_STRLEN];
		if (!logged_ip(l, want, sizeof want))
			fail_msg("test cannot find the logged ip in: %s", l);
		if (rc != 1)
			fail_msg("%s: got no event (rc %d, %s), want ip %s", l, rc,
				 parser_reason_name(reason), want);
		ipaddr_format(&ev.ip, got);
		if (strcmp(got, want) != 0)
			fail_msg("%s: got ip %s, want %s", l, got, want);
		if (is_sasl)
			assert_int_equal(ev.kind, EV_AUTH_FAILURE), sasl++;
		else
			assert_int_equal(ev.kind, EV_REJECT), rejects++;
		checked++;
	}
	free(l);
	fclose(fp);
	parser_source_free(s);
	/* the corpus README counts 33 SASL failures */
	assert_int_equal(sasl, 33);
	assert_true(rejects > 300);
}

/* Count events of the kinds a rejectlog repeats, over a list of sources fed
 * in timestamp order (as a collector following both files would). */
static int exim_rejections(const char *const *files, size_t nf)
{
	FILE *fp[2];
	struct parser_source *src[2];
	char *buf[2] = {NULL, NULL};
	size_t cap[2] = {0, 0};
	ssize_t len[2];
	struct parser *p = parser_new(&conf, &(struct errlist){0});
	for (size_t i = 0; i < nf; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/corpus/real/%s", shared_dir(), files[i]);
		fp[i] = fopen(path, "r");
		if (!fp[i])
			fail_msg("cannot open %s", path);
		src[i] = parser_source_new(p, path, MTA_EXIM);
		len[i] = getline(&buf[i], &cap[i], fp[i]);
	}
	int count = 0;
	for (;;) {
		int pick = -1;
		for (size_t i = 0; i < nf; i++) {
			if (len[i] <= 0)
				continue;
			/* "YYYY-MM-DD HH:MM:SS" sorts as text; header lines follow their own */
			if (!isdigit((unsigned char)buf[i][0])) {
				pick = (int)i;
				break;
			}
			if (pick < 0 || strncmp(buf[i], buf[pick], 19) < 0)
				pick = (int)i;
		}
		if (pick < 0)
			break;
		ssize_t n = len[pick];
		if (buf[pick][n - 1] == '\n')
			n--;
		struct event ev;
		int reason;
		if (parser_parse(p, src[pick], buf[pick], (size_t)n, &ev, &reason) == 1 &&
		    (ev.kind == EV_REJECT || ev.kind == EV_AUTH_FAILURE))
			count++;
		len[pick] = getline(&buf[pick], &cap[pick], fp[pick]);
	}
	for (size_t i = 0; i < nf; i++) {
		parser_source_free(src[i]);
		fclose(fp[i]);
		free(buf[i]);
	}
	parser_free(p);
	return count;
}

/* Sendmail's from= line says whether the client authenticated (auth=MECH,
 * auth=NONE); the judge weighs AUTH failures per user name from such an
 * address (not in the event JSON: checked on the struct). */
static void test_sendmail_auth(void **state)
{
	static const struct {
		const char *line;
		bool auth_ok;
		unsigned nrcpt;
	} t[] = {
	    {"Nov 20 00:01:05 mx sm-mta[8973]: 6AK015F5008973: from=<a@b.example>, size=1, class=0, "
	     "nrcpts=2, "
	     "msgid=<x@y>, proto=ESMTPSA, daemon=MTA-v4, auth=PLAIN, relay=c.example [203.0.113.9]",
	     true, 2},
	    {"Nov 20 00:01:05 mx sm-mta[8973]: 6AK015F5008974: from=<a@b.example>, size=1, class=0, "
	     "nrcpts=1, "
	     "msgid=<x@y>, proto=ESMTP, daemon=MTA-v4, auth=NONE, relay=c.example [203.0.113.9]",
	     false, 1},
	    {"Nov 20 00:01:05 mx sm-mta[8973]: 6AK015F5008975: from=<a@b.example>, size=1, class=0, "
	     "nrcpts=1, "
	     "msgid=<x@y>, proto=ESMTP, daemon=MTA-v4, relay=c.example [203.0.113.9]",
	     false, 1},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(t); i++) {
		struct parser_source *src = parser_source_new(P, "test", MTA_UNKNOWN);
		struct event ev;
		int reason;
		assert_int_equal(parser_parse(P, src, t[i].line, strlen(t[i].line), &ev, &reason), 1);
		if (ev.kind != EV_ACCEPT || ev.auth_ok != t[i].auth_ok || ev.nrcpt != t[i].nrcpt)
			fail_msg("%s: got kind %s auth_ok %d nrcpt %u, want accept %d %u", t[i].line,
				 ev_kind_name(ev.kind), ev.auth_ok, ev.nrcpt, t[i].auth_ok, t[i].nrcpt);
		parser_source_free(src);
	}
}

static void test_exim_dedup(void **state)
{
	static const char *const main_only[] = {"exim-4.96-loopback-mainlog.log"};
	static const char *const both[] = {"exim-4.96-loopback-mainlog.log",
					   "exim-4.96-loopback-rejectlog.log"};
	static const char *const rej_only[] = {"exim-4.96-loopback-rejectlog.log"};
	int m = exim_rejections(main_only, 1);
	int b = exim_rejections(both, 2);
	int r = exim_rejections(rej_only, 1);
	if (m != b)
		fail_msg("mainlog alone: %d rejections, mainlog+rejectlog: %d (want equal)", m, b);
	assert_true(r > 300);
	assert_true(m >= r);
}

static void parse_ts(const char *line, const char *want)
{
	struct parser_source *s = parser_source_new(P, "ts", MTA_UNKNOWN);
	struct event ev;
	int reason;
	assert_int_equal(parser_parse(P, s, line, strlen(line), &ev, &reason), 1);
	char ts[TIME_STRLEN];
	time_format_rfc3339(ev.ts_us, false, ts);
	if (strcmp(ts, want) != 0)
		fail_msg("%s: ts got %s, want %s", line, ts, want);
	parser_source_free(s);
}

static void test_year_inference(void **state)
{
	/* a December line read in January belongs to last year */
	set_now("2027-01-02T10:00:00Z");
	parse_ts("Dec 31 23:59:59 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]",
		 "2026-12-31T23:59:59Z");
	parse_ts("Jan  2 09:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]",
		 "2027-01-02T09:00:00Z");
	/* a stream that crosses New Year */
	set_now("2026-12-31T23:59:00Z");
	struct parser_source *s = parser_source_new(P, "ny", MTA_UNKNOWN);
	const char *l1 = "Dec 31 23:59:58 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]";
	const char *l2 = "Jan  1 00:00:02 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]";
	struct event ev;
	int reason;
	char ts[TIME_STRLEN];
	assert_int_equal(parser_parse(P, s, l1, strlen(l1), &ev, &reason), 1);
	time_format_rfc3339(ev.ts_us, false, ts);
	assert_string_equal(ts, "2026-12-31T23:59:58Z");
	assert_int_equal(parser_parse(P, s, l2, strlen(l2), &ev, &reason), 1);
	time_format_rfc3339(ev.ts_us, false, ts);
	assert_string_equal(ts, "2027-01-01T00:00:02Z");
	parser_source_free(s);
	set_now("2026-11-28T00:00:00Z");
}

static char *write_tmp(const char *text)
{
	char *path = xstrdup("/tmp/mxw-parsers-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *fp = fdopen(fd, "w");
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* One stream of lines in one zone: each line's UTC time, in order. */
struct tz_case {
	const char *line, *want;
};

static void run_tz_stream(const char *zone, const struct tz_case *t, size_t n)
{
	struct config c;
	config_defaults(&c);
	free(c.timezone);
	c.timezone = zone ? xstrdup(zone) : NULL;
	struct errlist e = {0};
	struct parser *p = parser_new(&c, &e);
	if (!p)
		fail_msg("%s: parser_new: %s", zone, e.msgs.n ? e.msgs.v[0] : "?");
	struct parser_source *s = parser_source_new(p, "tz", MTA_UNKNOWN);
	for (size_t i = 0; i < n; i++) {
		struct event ev;
		int reason;
		if (parser_parse(p, s, t[i].line, strlen(t[i].line), &ev, &reason) != 1)
			fail_msg("%s: %s: no event (%s)", zone, t[i].line, parser_reason_name(reason));
		char ts[TIME_STRLEN];
		time_format_rfc3339(ev.ts_us, false, ts);
		if (strcmp(ts, t[i].want) != 0)
			fail_msg("%s case %zu: %s: got %s, want %s", zone, i, t[i].line, ts, t[i].want);
	}
	parser_source_free(s);
	parser_free(p);
	config_free(&c);
	errlist_free(&e);
}

/* Whether parser_new() accepts the zone. */
static bool zone_loads(const char *zone)
{
	struct config c;
	struct errlist e = {0};
	config_defaults(&c);
	free(c.timezone);
	c.timezone = xstrdup(zone);
	struct parser *p = parser_new(&c, &e);
	bool ok = p != NULL;
	parser_free(p);
	config_free(&c);
	errlist_free(&e);
	return ok;
}

#define CONNECT		   " mx postfix/smtpd[1]: connect from unknown[192.0.2.1]"
#define TZ_STREAM(zone, t) run_tz_stream((zone), (t), MXW_ARRAY_LEN(t))

/*
 * Time zones, read from TZif files (no setenv/tzset): both DST changes of
 * 2026 in Europe/Berlin and America/New_York, the skipped hour (offset
 * before the gap), the repeated hour (first occurrence, or the second once
 * the stream has passed the first), a year rollover, a year past the
 * file's explicit transitions (the POSIX footer), the southern hemisphere,
 * a POSIX TZ string, and the system zone from $TZ.
 */
static void test_timezone(void **state)
{
	set_now("2026-11-28T00:00:00Z");
	static const struct tz_case berlin[] = {
	    /* Exim's own stamps are local time too */
	    {"2026-07-01 12:00:00 [1] SMTP connection from [192.0.2.1]:1 (TCP/IP connection count = 1)",
	     "2026-07-01T10:00:00Z"},
	    /* a zoned stamp is not converted twice */
	    {"2026-07-01T12:00:00+00:00" CONNECT, "2026-07-01T12:00:00Z"},
	    /* spring forward: 02:00 CET -> 03:00 CEST on 29 March */
	    {"Mar 29 01:59:59" CONNECT, "2026-03-29T00:59:59Z"},
	    {"Mar 29 02:30:00" CONNECT, "2026-03-29T01:30:00Z"}, /* skipped: as CET */
	    {"Mar 29 03:00:00" CONNECT, "2026-03-29T01:00:00Z"},
	    {"Mar 29 03:30:00" CONNECT, "2026-03-29T01:30:00Z"},
	    {"Jul  4 12:00:00" CONNECT, "2026-07-04T10:00:00Z"},
	    /* fall back: 03:00 CEST -> 02:00 CET on 25 October; a log running
	     * through the repeated hour stays in order */
	    {"Oct 25 01:59:59" CONNECT, "2026-10-24T23:59:59Z"},
	    {"Oct 25 02:00:00" CONNECT, "2026-10-25T00:00:00Z"},
	    {"Oct 25 02:59:59" CONNECT, "2026-10-25T00:59:59Z"},
	    {"Oct 25 02:00:00" CONNECT, "2026-10-25T01:00:00Z"},
	    {"Oct 25 02:00:01" CONNECT, "2026-10-25T01:00:01Z"},
	    {"Oct 25 02:59:59" CONNECT, "2026-10-25T01:59:59Z"},
	    {"Oct 25 03:00:00" CONNECT, "2026-10-25T02:00:00Z"},
	    {"Nov 27 20:00:00" CONNECT, "2026-11-27T19:00:00Z"},
	    {"Nov 27 20:30:00" CONNECT, "2026-11-27T19:30:00Z"},
	    /* beyond the file's explicit transitions (the footer's rule) */
	    {"2045-03-26 02:30:00 [1] SMTP connection from [192.0.2.1]:1 (TCP/IP connection count = 1)",
	     "2045-03-26T01:30:00Z"},
	    {"2045-07-01 12:00:00 [1] SMTP connection from [192.0.2.1]:1 (TCP/IP connection count = 1)",
	     "2045-07-01T10:00:00Z"},
	    {"2150-12-01 12:00:00 [1] SMTP connection from [192.0.2.1]:1 (TCP/IP connection count = 1)",
	     "2150-12-01T11:00:00Z"},
	};
	TZ_STREAM("Europe/Berlin", berlin);
	static const struct tz_case berlin_fold[] = {
	    /* the repeated hour with no line before it: the first occurrence */
	    {"Oct 25 02:30:00" CONNECT, "2026-10-25T00:30:00Z"},
	    /* a line a few seconds out of order stays in the first occurrence */
	    {"Oct 25 02:31:00" CONNECT, "2026-10-25T00:31:00Z"},
	    {"Oct 25 02:30:58" CONNECT, "2026-10-25T00:30:58Z"},
	};
	TZ_STREAM("Europe/Berlin", berlin_fold);

	static const struct tz_case new_york[] = {
	    /* spring forward: 02:00 EST -> 03:00 EDT on 8 March */
	    {"Mar  8 01:59:59" CONNECT, "2026-03-08T06:59:59Z"},
	    {"Mar  8 02:30:00" CONNECT, "2026-03-08T07:30:00Z"}, /* skipped: as EST */
	    {"Mar  8 03:00:00" CONNECT, "2026-03-08T07:00:00Z"},
	    {"Jul  4 12:00:00" CONNECT, "2026-07-04T16:00:00Z"},
	    /* fall back: 02:00 EDT -> 01:00 EST on 1 November */
	    {"Nov  1 00:59:59" CONNECT, "2026-11-01T04:59:59Z"},
	    {"Nov  1 01:30:00" CONNECT, "2026-11-01T05:30:00Z"},
	    {"Nov  1 01:59:59" CONNECT, "2026-11-01T05:59:59Z"},
	    {"Nov  1 01:00:00" CONNECT, "2026-11-01T06:00:00Z"},
	    {"Nov  1 01:30:00" CONNECT, "2026-11-01T06:30:00Z"},
	    {"Nov  1 02:00:00" CONNECT, "2026-11-01T07:00:00Z"},
	    {"Nov 27 20:00:00" CONNECT, "2026-11-28T01:00:00Z"},
	};
	TZ_STREAM("America/New_York", new_york);
	/* the same rules as a POSIX TZ string */
	TZ_STREAM("EST5EDT,M3.2.0,M11.1.0", new_york);

	/* year rollover: the first line is last year's December */
	set_now("2027-01-01T06:00:00Z");
	static const struct tz_case rollover[] = {
	    {"Dec 31 23:59:59" CONNECT, "2027-01-01T04:59:59Z"},
	    {"Jan  1 00:00:01" CONNECT, "2027-01-01T05:00:01Z"},
	    {"Jan  1 00:59:00" CONNECT, "2027-01-01T05:59:00Z"},
	};
	TZ_STREAM("America/New_York", rollover);
	static const struct tz_case rollover_berlin[] = {
	    {"Dec 31 23:59:59" CONNECT, "2026-12-31T22:59:59Z"},
	    {"Jan  1 00:00:01" CONNECT, "2026-12-31T23:00:01Z"},
	    {"Jan  1 06:00:00" CONNECT, "2027-01-01T05:00:00Z"},
	};
	TZ_STREAM("Europe/Berlin", rollover_berlin);
	set_now("2026-11-28T00:00:00Z");

	/* southern hemisphere: DST across New Year (AEDT +11, AEST +10) */
	static const struct tz_case sydney[] = {
	    {"Jan 15 12:00:00" CONNECT, "2026-01-15T01:00:00Z"},
	    {"Apr  5 02:30:00" CONNECT, "2026-04-04T15:30:00Z"}, /* repeated: first */
	    {"Jul 15 12:00:00" CONNECT, "2026-07-15T02:00:00Z"},
	    {"Oct  4 02:30:00" CONNECT, "2026-10-03T16:30:00Z"}, /* skipped: as AEST */
	};
	TZ_STREAM("Australia/Sydney", sydney);
	static const struct tz_case utc[] = {{"Jul  4 12:00:00" CONNECT, "2026-07-04T12:00:00Z"}};
	TZ_STREAM("UTC", utc);

	/* the system zone (no [collector] timezone) is $TZ, read at
	 * parser_new(); the parser never changes TZ */
	const char *old = getenv("TZ");
	char *saved = old ? xstrdup(old) : NULL;
	setenv("TZ", "America/New_York", 1);
	TZ_STREAM(NULL, new_york);
	assert_string_equal(getenv("TZ"), "America/New_York");
	setenv("TZ", ":Europe/Berlin", 1);
	static const struct tz_case sys_berlin[] = {{"Jul  4 12:00:00" CONNECT, "2026-07-04T10:00:00Z"}};
	TZ_STREAM(NULL, sys_berlin);
	/* a configured zone wins over $TZ */
	TZ_STREAM("America/New_York", new_york);
	if (saved)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	free(saved);

	/* $TZDIR is honoured; a truncated or garbled TZif file is an unknown
	 * zone, not a crash or a wrong offset */
	char dir[] = "/tmp/mxw-tzdir-XXXXXX";
	assert_non_null(mkdtemp(dir));
	FILE *in = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
	assert_non_null(in);
	static unsigned char tzif[65536];
	size_t tzn = fread(tzif, 1, sizeof tzif, in);
	fclose(in);
	assert_true(tzn > 100);
	static const struct {
		const char *name;
		size_t n; /* bytes of the Berlin file written */
		bool ok;
	} files[] = {{"Copy", 0, true}, {"Head", 44, false}, {"Half", 0, false}, {"Empty", 1, false}};
	const char *oldtzdir = getenv("TZDIR");
	char *savedtzdir = oldtzdir ? xstrdup(oldtzdir) : NULL;
	setenv("TZDIR", dir, 1);
	for (size_t i = 0; i < MXW_ARRAY_LEN(files); i++) {
		size_t n = files[i].n ? files[i].n : tzn;
		if (strcmp(files[i].name, "Half") == 0)
			n = tzn / 2;
		if (strcmp(files[i].name, "Empty") == 0)
			n = 0;
		char path[256];
		snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
		FILE *out = fopen(path, "wb");
		assert_non_null(out);
		assert_int_equal(fwrite(tzif, 1, n, out), n);
		fclose(out);
		if (files[i].ok)
			TZ_STREAM(files[i].name, sys_berlin);
		else if (zone_loads(files[i].name))
			fail_msg("TZif %s (%zu bytes): loaded, want an error", files[i].name, n);
		unlink(path);
	}
	if (savedtzdir)
		setenv("TZDIR", savedtzdir, 1);
	else
		unsetenv("TZDIR");
	free(savedtzdir);
	rmdir(dir);

	/* an unknown zone is a configuration error, at the key's line */
	static const char *const bad[] = {"Mars/Olympus_Mons", "../../etc/passwd", "/etc/passwd",
					  "Nowhere5Later,M13"};
	for (size_t i = 0; i < MXW_ARRAY_LEN(bad); i++) {
		char text[256];
		snprintf(text, sizeof text, "[collector]\nformat = auto\ntimezone = %s\n", bad[i]);
		char *path = write_tmp(text);
		struct config c;
		struct errlist e = {0};
		config_defaults(&c);
		assert_int_equal(config_load(&c, path, &e), 0);
		assert_int_equal(c.timezone_line, 3);
		assert_null(parser_new(&c, &e));
		assert_int_equal(e.msgs.n, 1);
		char want[4200];
		snprintf(want, sizeof want, "%s:3: [collector] timezone: unknown time zone '%s'", path,
			 bad[i]);
		if (strncmp(e.msgs.v[0], want, strlen(want)) != 0)
			fail_msg("got %s, want %s...", e.msgs.v[0], want);
		config_free(&c);
		errlist_free(&e);
		unlink(path);
		free(path);
	}
}

/* JSON output: valid for jansson, invalid UTF-8 -> U+FFFD, NUL -> \u0000. */
static void test_json(void **state)
{
	static const struct {
		const char *in;
		size_t n;
		const char *want; /* the decoded string */
		size_t wn;
	} t[] = {
	    {"plain", 5, "plain", 5},
	    {"q\"b\\s/", 6, "q\"b\\s/", 6},
	    {"a\0b", 3, "a\0b", 3},
	    {"\x01\x1f\n\t\r", 5, "\x01\x1f\n\t\r", 5},
	    {"\xc3\xa9", 2, "\xc3\xa9", 2},
	    {"\xc3(", 2, "\xef\xbf\xbd(", 4},
	    {"\xff\xfe", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6},
	    {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9},
	    {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80", 4},
	    {"\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(t); i++) {
		struct buf b = BUF_INIT;
		json_append_string(&b, t[i].in, t[i].n);
		json_error_t err;
		json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
		if (!v)
			fail_msg("case %zu: %s is not valid JSON: %s", i, b.data, err.text);
		if (json_string_length(v) != t[i].wn || memcmp(json_string_value(v), t[i].want, t[i].wn) != 0)
			fail_msg("case %zu: got %s", i, b.data);
		json_decref(v);
		buf_free(&b);
	}
	/* a whole event */
	struct parser_source *s = parser_source_new(P, "json", MTA_UNKNOWN);
	const char *l =
	    "Nov 27 20:23:19 mx postfix/smtpd[1280]: NOQUEUE: reject: RCPT from unknown[127.40.1.15]: 550 "
	    "5.1.1 "
	    "<paul@mx.example.test>: Recipient address rejected: User unknown in local recipient table; "
	    "from=<jobs@spamco.test> to=<paul@mx.example.test> proto=ESMTP helo=<smtp.spamco.test>";
	struct event ev;
	int reason;
	assert_int_equal(parser_parse(P, s, l, strlen(l), &ev, &reason), 1);
	struct buf b = BUF_INIT;
	event_to_json(&ev, &b);
	json_error_t err;
	json_t *o = json_loadb(b.data, b.len, 0, &err);
	if (!o)
		fail_msg("event JSON invalid: %s: %s", err.text, b.data);
	assert_string_equal(json_string_value(json_object_get(o, "ip")), "127.40.1.15");
	assert_string_equal(json_string_value(json_object_get(o, "class")), "127.40.1.0/24");
	assert_true(json_is_null(json_object_get(o, "rdns")));
	assert_int_equal(json_integer_value(json_object_get(o, "code")), 550);
	assert_string_equal(json_string_value(json_object_get(o, "category")), "unknown_recipient");
	assert_string_equal(json_string_value(json_object_get(o, "stage")), "rcpt");
	assert_string_equal(json_string_value(json_object_get(o, "ts")), "2026-11-27T20:23:19Z");
	assert_string_equal(json_string_value(json_object_get(o, "line")), l);
	assert_true(json_is_null(json_object_get(o, "stats")));
	json_decref(o);
	buf_free(&b);

	/* "stats" on disconnect events: [ok,total] per command, null otherwise */
	static const struct {
		const char *line;
		const char *want; /* the "stats" value, compact JSON */
	} st[] = {
	    {"Nov 27 20:23:37 mx postfix/smtpd[1272]: disconnect from unknown[127.77.0.2] ehlo=1 auth=0/3 "
	     "quit=1 "
	     "commands=2/5",
	     "{\"ehlo\": [1, 1], \"mail\": [0, 0], \"rcpt\": [0, 0], \"data\": [0, 0], \"auth\": [0, 3], "
	     "\"commands\": [2, 5]}"},
	    {"Nov 27 20:23:38 mx postfix/smtpd[1272]: disconnect from a.test[127.77.0.3] helo=1 mail=1 "
	     "rcpt=0/1 "
	     "data=0/1 quit=1 commands=3/5",
	     "{\"ehlo\": [1, 1], \"mail\": [1, 1], \"rcpt\": [0, 1], \"data\": [0, 1], \"auth\": [0, 0], "
	     "\"commands\": [3, 5]}"},
	    {"Nov 27 20:23:39 mx postfix/smtpd[1272]: disconnect from a.test[127.77.0.4] ehlo=2 bdat=1 "
	     "rcpt=65535/70000 "
	     "commands=70000",
	     "{\"ehlo\": [2, 2], \"mail\": [0, 0], \"rcpt\": [65535, 65535], \"data\": [1, 1], \"auth\": [0, "
	     "0], "
	     "\"commands\": [65535, 65535]}"},
	    {"Nov 27 20:23:40 mx postfix/smtpd[1272]: disconnect from a.test[127.77.0.5]", "null"},
	    {"Nov 27 20:23:41 mx postfix/smtpd[1272]: connect from a.test[127.77.0.5]", "null"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(st); i++) {
		assert_int_equal(parser_parse(P, s, st[i].line, strlen(st[i].line), &ev, &reason), 1);
		buf_reset(&b);
		event_to_json(&ev, &b);
		o = json_loadb(b.data, b.len, 0, &err);
		if (!o)
			fail_msg("case %zu: event JSON invalid: %s: %s", i, err.text, b.data);
		char *got = json_dumps(json_object_get(o, "stats"), JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
		if (!got || strcmp(got, st[i].want) != 0)
			fail_msg("stats case %zu: got %s, want %s", i, got ? got : "(none)", st[i].want);
		free(got);
		json_decref(o);
	}
	buf_free(&b);
	parser_source_free(s);
}

static void test_custom_rules(void **state)
{
	char *path = write_tmp("[parser dovecot]\n"
			       "program = dovecot\n"
			       "literal = auth failed\n"
			       "pattern = ^imap-login: Disconnected \\(auth "
			       "failed.*user=<(?<user>[^>]*)>.*rip=(?<ip>[0-9a-f.:]+),\n"
			       "category = auth\n"
			       "kind = auth_failure\n");
	struct config c;
	struct errlist e = {0};
	config_defaults(&c);
	assert_int_equal(config_load(&c, path, &e), 0);
	struct parser *p = parser_new(&c, &e);
	assert_non_null(p);
	struct parser_source *s = parser_source_new(p, "custom", MTA_UNKNOWN);
	const char *l =
	    "Jan 10 10:00:57 mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): "
	    "user=<bob>, method=PLAIN, rip=203.0.113.130, lip=198.51.100.1, session=<abc>";
	struct event ev;
	int reason;
	assert_int_equal(parser_parse(p, s, l, strlen(l), &ev, &reason), 1);
	char ip[IPADDR_STRLEN];
	ipaddr_format(&ev.ip, ip);
	assert_string_equal(ip, "203.0.113.130");
	assert_int_equal(ev.kind, EV_AUTH_FAILURE);
	assert_int_equal(ev.cat, CAT_AUTH);
	assert_int_equal(ev.mta, MTA_CUSTOM);
	check_span("user", l, ev.user, "bob");
	/* the program filter: another program does not match */
	const char *l2 =
	    "Jan 10 10:00:57 mx1 other: imap-login: Disconnected (auth failed, 1 attempts): user=<b>, "
	    "rip=203.0.113.130, lip=1";
	assert_int_equal(parser_parse(p, s, l2, strlen(l2), &ev, &reason), -1);
	parser_source_free(s);
	parser_free(p);
	config_free(&c);
	errlist_free(&e);
	unlink(path);
	free(path);

	/* a bad pattern is reported with its offset, at the pattern's own
	 * line (not the section's); a pattern without an ip group too */
	path =
	    write_tmp("\n[parser broken]\nprogram = foo\n\npattern = ^foo (?<ip>[0-9.]+\ncategory = other\n"
		      "[parser noip]\ncategory = other\npattern = ^foo (?<x>[0-9.]+)\n");
	config_defaults(&c);
	assert_int_equal(config_load(&c, path, &e), 0);
	assert_int_equal(c.parsers[0].line, 2);
	assert_int_equal(c.parsers[0].pattern_line, 5);
	assert_int_equal(c.parsers[1].pattern_line, 9);
	assert_null(parser_new(&c, &e));
	assert_int_equal(e.msgs.n, 2);
	char want[4200];
	snprintf(want, sizeof want,
		 "%s:5: [parser broken] pattern error at offset 18: missing closing parenthesis", path);
	assert_string_equal(e.msgs.v[0], want);
	snprintf(want, sizeof want, "%s:9: [parser noip] pattern has no (?<ip>...) group", path);
	assert_string_equal(e.msgs.v[1], want);
	config_free(&c);
	errlist_free(&e);
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_corpus),	   cmocka_unit_test(test_hygiene),
	    cmocka_unit_test(test_bytes),	   cmocka_unit_test(test_adversarial),
	    cmocka_unit_test(test_corpus_postfix), cmocka_unit_test(test_exim_dedup),
	    cmocka_unit_test(test_sendmail_auth),  cmocka_unit_test(test_year_inference),
	    cmocka_unit_test(test_timezone),	   cmocka_unit_test(test_json),
	    cmocka_unit_test(test_custom_rules),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
