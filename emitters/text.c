/*
 * text.c - the only way text reaches a blocklist: a character whitelist for
 * reasons, a URL whitelist for the lookup template, the shared header and
 * the shared line validator.
 *
 * It must never pass through a byte outside its whitelist: every format
 * relies on it to keep quotes, newlines, '$' and directives out.
 */
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "emitters/emit_int.h"

static bool reason_char_ok(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr(" .,:;_@/+=()<>[]%!?*-", c) != NULL;
}

void emit_sanitize(struct buf *out, const char *s, size_t max)
{
	size_t start = out->len;
	bool space = false, last_bad = false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			space = out->len > start;
			last_bad = false;
			continue;
		}
		bool bad = !reason_char_ok(c);
		if (bad && last_bad)
			continue;
		if (out->len - start + (space ? 2 : 1) > max)
			break;
		if (space)
			buf_appendc(out, ' ');
		space = false;
		buf_appendc(out, bad ? '?' : (char)c);
		last_bad = bad;
	}
}

static bool url_char_ok(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("-._~:/?[]@!&()*+,;=%", c) != NULL;
}

void emit_url_template(struct buf *out, const char *tmpl)
{
	for (const char *p = tmpl; *p; p++) {
		if (*p == '$') {
			if (strncmp(p, "$ip", 3) == 0) {
				buf_appends(out, "$ip");
				p += 2;
			}
			continue;
		}
		if (url_char_ok((unsigned char)*p))
			buf_appendc(out, *p);
	}
}

void emit_url(struct buf *out, const char *tmpl, const struct prefix *p, bool dollar)
{
	char ip[IPADDR_STRLEN] = "";
	if (!dollar)
		ipaddr_format(&p->addr, ip);
	for (const char *s = tmpl; *s; s++) {
		if (strncmp(s, "$ip", 3) == 0) {
			buf_appends(out, dollar ? "$" : ip);
			s += 2;
		} else if (*s != '$') {
			buf_appendc(out, *s);
		}
	}
}

void emit_lookup_template(const struct config *c, struct buf *out)
{
	if (c->lookup_url) {
		emit_url_template(out, c->lookup_url);
		return;
	}
	struct buf raw = BUF_INIT;
	buf_printf(&raw, "http://%s/lookup/$ip", c->listen ? c->listen : "127.0.0.1:8025");
	emit_url_template(out, buf_str(&raw));
	buf_free(&raw);
}

void emit_header(struct buf *out, const char *lead, const char *format, const struct emit_ctx *ctx, size_t n)
{
	char ts[TIME_STRLEN];
	time_format_rfc3339(ctx->now * 1000000, false, ts);
	buf_printf(out, "%s mxwarden %s blocklist: %zu entries, generated %s; do not edit (rewritten)\n",
		   lead, format, n, ts);
}

int64_t emit_timeout(const struct emit_ctx *ctx, const struct decision *d)
{
	int64_t t = d->until - ctx->now;
	if (t < 1)
		t = 1;
	if (t > EMIT_MAX_TIMEOUT)
		t = EMIT_MAX_TIMEOUT;
	return t;
}

void emit_text(struct buf *out, const struct emit_ctx *ctx, const struct decision *d, size_t max, bool dollar)
{
	size_t start = out->len;
	char rule[sizeof d->rule + 1];
	memcpy(rule, d->rule, sizeof d->rule);
	rule[sizeof d->rule] = '\0';
	char reason[sizeof d->reason + 1];
	memcpy(reason, d->reason, sizeof d->reason);
	reason[sizeof d->reason] = '\0';
	emit_sanitize(out, rule[0] ? rule : "blocked", max > 40 ? 32 : max);
	if (reason[0] && out->len - start + 3 < max) {
		buf_appends(out, ": ");
		emit_sanitize(out, reason, max - (out->len - start));
	}
	if (ctx->lookup_url && ctx->lookup_url[0]) {
		struct buf u = BUF_INIT;
		emit_url(&u, ctx->lookup_url, &d->prefix, dollar);
		if (out->len - start + 5 + u.len <= max) {
			buf_appends(out, " see ");
			buf_append(out, u.data, u.len);
		}
		buf_free(&u);
	}
}

bool emit_is_canonical_prefix(const char *t, size_t n)
{
	struct prefix p;
	if (prefix_parse(&p, t, n, true) < 0)
		return false;
	char canon[PREFIX_STRLEN];
	size_t cn = prefix_format(&p, canon);
	if (cn == n && memcmp(canon, t, n) == 0)
		return true;
	/* a host prefix may be written bare */
	char ip[IPADDR_STRLEN];
	size_t in = ipaddr_format(&p.addr, ip);
	return prefix_is_host(&p) && in == n && memcmp(ip, t, n) == 0 && memchr(t, '/', n) == NULL;
}

int emit_validate_lines(const char *text, size_t len, struct buf *err, const char *comment_lead,
			const char *re, int pgroup)
{
	regex_t rx;
	if (regcomp(&rx, re, REG_EXTENDED) != 0)
		BUG("bad validation expression %s", re);
	int rc = 0;
	size_t lineno = 0;
	char line[2048];
	if (len > 0 && text[len - 1] != '\n') {
		buf_appends(err, "the text does not end with a newline");
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
		lineno++;
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)text[i + k];
			if (!(c == '\t' || (c >= 0x20 && c < 0x7f))) {
				buf_printf(err, "line %zu: byte 0x%02x is not printable ASCII", lineno, c);
				rc = -1;
				break;
			}
		}
		if (rc < 0)
			break;
		if (n >= sizeof line) {
			buf_printf(err, "line %zu: longer than %zu bytes", lineno, sizeof line - 1);
			rc = -1;
			break;
		}
		memcpy(line, text + i, n);
		line[n] = '\0';
		i += n + 1;
		if (comment_lead && strncmp(line, comment_lead, strlen(comment_lead)) == 0)
			continue;
		regmatch_t m[10];
		if (regexec(&rx, line, 10, m, 0) != 0) {
			buf_printf(err, "line %zu: not of the format's grammar: ", lineno);
			buf_append_printable(err, line, MXW_MIN(n, (size_t)120));
			rc = -1;
			break;
		}
		regmatch_t *g = &m[pgroup];
		if (pgroup > 0 && g->rm_so >= 0 &&
		    !emit_is_canonical_prefix(line + g->rm_so, (size_t)(g->rm_eo - g->rm_so))) {
			buf_printf(err, "line %zu: '%.*s' is not a canonical prefix", lineno,
				   (int)(g->rm_eo - g->rm_so), line + g->rm_so);
			rc = -1;
		}
	}
	regfree(&rx);
	return rc;
}
