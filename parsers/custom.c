/*
 * custom.c - the [parser NAME] rules of the configuration: a PCRE2 pattern
 * with named groups (ip required; port, code, dsn, helo, from, to, user,
 * rdns, queue_id, text optional), a program filter, a literal prefilter and
 * the kind and category to assign. Compiled once with JIT; every match is
 * bounded by a match limit, so no rule can take unbounded time on a line.
 *
 * A rule sees the message after the envelope ("prog[pid]: "), never the
 * envelope itself. Which group names the client is the administrator's
 * choice: the rule is trusted configuration.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>

#include "parsers/internal.h"

enum { G_IP, G_PORT, G_CODE, G_DSN, G_HELO, G_FROM, G_TO, G_USER, G_RDNS, G_QID, G_TEXT, G__COUNT };
static const char *const group_names[G__COUNT] = {"ip", "port", "code", "dsn",	    "helo", "from",
						  "to", "user", "rdns", "queue_id", "text"};

struct custom_rule {
	pcre2_code *re;
	pcre2_match_data *md;
	char *program; /* NULL = any */
	char *literal; /* NULL = none */
	size_t literal_len;
	enum ev_kind kind;
	enum ev_category cat;
	int group[G__COUNT]; /* capture numbers, -1 when absent */
};

static pcre2_match_context *mctx;
static bool jit_told; /* the JIT's absence was logged */

int custom_compile(struct parser *p, const struct config *conf, struct errlist *errs)
{
	int bad = 0;
	if (conf->n_parsers == 0)
		return 0;
	p->rules = xcalloc(conf->n_parsers, sizeof *p->rules);
	if (!mctx) {
		mctx = pcre2_match_context_create(NULL);
		if (!mctx)
			fatal("pcre2: out of memory");
		pcre2_set_match_limit(mctx, 100000);
		pcre2_set_depth_limit(mctx, 1000);
	}
	for (size_t i = 0; i < conf->n_parsers; i++) {
		const struct parser_rule_conf *rc = &conf->parsers[i];
		const char *file = rc->file ? rc->file : "(config)";
		if (!rc->pattern || !rc->category) {
			errlist_add(errs, file, rc->line, "[parser %s] needs a pattern and a category",
				    rc->name);
			bad++;
			continue;
		}
		int cat = ev_category_from_name(rc->category);
		if (cat <= 0) {
			errlist_add(errs, file, rc->line, "[parser %s] unknown category '%s'", rc->name,
				    rc->category);
			bad++;
		}
		int kind = rc->kind ? ev_kind_from_name(rc->kind) : EV_REJECT;
		if (kind <= 0) {
			errlist_add(errs, file, rc->line, "[parser %s] unknown kind '%s'", rc->name,
				    rc->kind);
			bad++;
		}
		int ec;
		PCRE2_SIZE eo;
		pcre2_code *re = pcre2_compile((PCRE2_SPTR)rc->pattern, PCRE2_ZERO_TERMINATED,
					       PCRE2_NO_UTF_CHECK, &ec, &eo, NULL);
		if (!re) {
			PCRE2_UCHAR msg[256];
			if (pcre2_get_error_message(ec, msg, sizeof msg) < 0)
				str_copy((char *)msg, sizeof msg, "unknown error", 13);
			errlist_add(errs, file, rc->pattern_line ? rc->pattern_line : rc->line,
				    "[parser %s] pattern error at offset %zu: %s", rc->name, (size_t)eo,
				    (const char *)msg);
			bad++;
			continue;
		}
		struct custom_rule *r = &p->rules[p->n_rules++];
		r->re = re;
		for (int g = 0; g < G__COUNT; g++) {
			int n = pcre2_substring_number_from_name(re, (PCRE2_SPTR)group_names[g]);
			r->group[g] = n > 0 ? n : -1;
		}
		if (r->group[G_IP] < 0) {
			errlist_add(errs, file, rc->pattern_line ? rc->pattern_line : rc->line,
				    "[parser %s] pattern has no (?<ip>...) group", rc->name);
			bad++;
		}
		/* JIT is an optimisation: without it (an unsupported CPU, or
		 * MemoryDenyWriteExecute=yes in the unit, which refuses the
		 * writable and executable memory it needs) the interpreter runs
		 * the same pattern with the same limits */
		int jrc = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
		if (jrc != 0 && !jit_told) {
			PCRE2_UCHAR msg[256];
			if (pcre2_get_error_message(jrc, msg, sizeof msg) < 0)
				str_copy((char *)msg, sizeof msg, "unknown error", 13);
			log_info("pcre2: no JIT (%s): custom rules run in the interpreter",
				 (const char *)msg);
			jit_told = true;
		}
		r->md = pcre2_match_data_create_from_pattern(re, NULL);
		if (!r->md)
			fatal("pcre2: out of memory");
		r->program = rc->program && rc->program[0] ? xstrdup(rc->program) : NULL;
		r->literal = rc->literal && rc->literal[0] ? xstrdup(rc->literal) : NULL;
		r->literal_len = r->literal ? strlen(r->literal) : 0;
		r->kind = kind > 0 ? (enum ev_kind)kind : EV_REJECT;
		r->cat = cat > 0 ? (enum ev_category)cat : CAT_OTHER;
	}
	return bad ? -1 : 0;
}

void custom_free(struct parser *p)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		pcre2_match_data_free(p->rules[i].md);
		pcre2_code_free(p->rules[i].re);
		free(p->rules[i].program);
		free(p->rules[i].literal);
	}
	free(p->rules);
	p->rules = NULL;
	p->n_rules = 0;
}

static struct span group(const struct custom_rule *r, int g, const char *subj)
{
	if (r->group[g] < 0)
		return SPAN_NULL;
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
	PCRE2_SIZE a = ov[2 * r->group[g]], b = ov[2 * r->group[g] + 1];
	if (a == PCRE2_UNSET || b < a)
		return SPAN_NULL;
	return (struct span){subj + a, (uint32_t)(b - a)};
}

int custom_parse(struct parser *p, const struct envelope *e, struct event *ev)
{
	const char *subj = e->msg;
	size_t n = (size_t)(e->end - e->msg);
	for (size_t i = 0; i < p->n_rules; i++) {
		struct custom_rule *r = &p->rules[i];
		if (r->program &&
		    (strlen(r->program) != e->program.n || memcmp(r->program, e->program.p, e->program.n)))
			continue;
		if (r->literal && !memmem(subj, n, r->literal, r->literal_len))
			continue;
		int rc = pcre2_match(r->re, (PCRE2_SPTR)subj, n, 0, PCRE2_NO_UTF_CHECK, r->md, mctx);
		if (rc <= 0)
			continue;
		struct event out = *ev;
		out.has_ip = false;
		struct span ip = group(r, G_IP, subj);
		if (!ip.p || ev_set_ip(p, &out, ip.p, ip.n) < 0)
			continue;
		out.mta = MTA_CUSTOM;
		out.kind = r->kind;
		out.cat = r->cat;
		out.stage = r->kind == EV_AUTH_FAILURE ? ST_AUTH : ST_OTHER;
		out.rdns = SPAN_NULL;
		out.port = 0;
		struct span s = group(r, G_PORT, subj);
		if (s.p) {
			const char *q = s.p;
			if (parse_port(&q, s.p + s.n, &out.port) < 0)
				out.port = 0;
		}
		s = group(r, G_CODE, subj);
		if (s.n == 3) {
			char c[] = {s.p[0], s.p[1], s.p[2], ' '}; /* parse_code wants "NNN " */
			const char *q = c;
			parse_code(&q, c + sizeof c, &out);
		}
		out.dsn = group(r, G_DSN, subj);
		out.helo = group(r, G_HELO, subj);
		out.from = group(r, G_FROM, subj);
		out.to = group(r, G_TO, subj);
		out.user = group(r, G_USER, subj);
		out.rdns = group(r, G_RDNS, subj);
		out.queue_id = group(r, G_QID, subj);
		out.text = group(r, G_TEXT, subj);
		*ev = out;
		return 1;
	}
	return 0;
}
