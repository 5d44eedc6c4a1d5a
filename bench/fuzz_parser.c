/*
 * fuzz_parser.c - libFuzzer target for parsers/: the input is cut into lines,
 * each line goes through parser_parse() with an MTA hint taken from the
 * first byte, and every event must hold: a client address (but the Sendmail
 * rejection that names only its queue id), spans of client text inside the
 * line (program and text may be parser-owned constants), and JSON that
 * jansson accepts. Lines with bytes that are not UTF-8, NUL and controls
 * are parsed like any other. Any violation aborts (a finding).
 * Built with -Dfuzz=true (clang); run by bench/fuzz-parser.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/parsers.h"

static struct parser *P;
static struct parser_source *S[4];
static struct config conf;
static struct buf out;

static void check_span(struct span s, const char *line, size_t len)
{
	if (s.p == NULL)
		return;
	if (s.p < line || s.p + s.n > line + len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!P) {
		setenv("MXWARDEN_NOW", "2026-11-28T00:00:00Z", 1);
		config_defaults(&conf);
		conf.timezone = xstrdup("UTC");
		struct errlist e = {0};
		P = parser_new(&conf, &e);
		errlist_free(&e);
		if (!P)
			abort();
		S[0] = parser_source_new(P, "fuzz", MTA_UNKNOWN);
		S[1] = parser_source_new(P, "fuzz-postfix", MTA_POSTFIX);
		S[2] = parser_source_new(P, "fuzz-exim", MTA_EXIM);
		S[3] = parser_source_new(P, "fuzz-rejectlog", MTA_EXIM);
	}
	if (size == 0)
		return 0;
	struct parser_source *s = S[data[0] & 3];
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	while (p <= end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		struct event ev;
		int reason;
		int rc = parser_parse(P, s, p, (size_t)(le - p), &ev, &reason);
		if (rc == 1) {
			/* every event has a client but a Sendmail rejection that
			 * names only its queue id (parsers.h) */
			if (!ev.has_ip && !(ev.mta == MTA_SENDMAIL && ev.kind == EV_REJECT && ev.queue_id.n))
				abort();
			if (ev.kind <= EV_NONE || ev.kind >= EV__COUNT || ev.cat < CAT_NONE ||
			    ev.cat >= CAT__COUNT)
				abort();
			size_t len = (size_t)(le - p);
			check_span(ev.host, p, len);
			check_span(ev.rdns, p, len);
			check_span(ev.helo, p, len);
			check_span(ev.from, p, len);
			check_span(ev.to, p, len);
			check_span(ev.user, p, len);
			check_span(ev.dsn, p, len);
			check_span(ev.queue_id, p, len);
			buf_reset(&out);
			event_to_json(&ev, &out);
			json_error_t err;
			json_t *v = json_loadb(out.data, out.len, JSON_ALLOW_NUL, &err);
			if (!v)
				abort();
			json_decref(v);
		} else if (rc == -1) {
			if (reason <= 0 || reason >= parser_reason_count())
				abort();
		} else if (rc != 0) {
			abort();
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}
