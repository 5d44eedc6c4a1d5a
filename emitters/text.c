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
		/* quotes only quote: dropping them keeps "MTA's" and HELO "x" readable */
		if (c == '\'' || c == '"' || c == '`')
			continue;
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
	/* a class keeps its length: the page of 203.0.113.0 is not the page
	 * of 203.0.113.0/24 (the lookup answers for the address alone) */
	char ip[PREFIX_STRLEN] = "";
	if (!dollar && p->addr.family) {
		if (prefix_is_host(p))
			ipaddr_format(&p->addr, ip);
		else
			prefix_format(p, ip);
	}
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
	/* Only a URL the operator wrote: the listen address is where the
	 * dashboard is reachable from this host (loopback by default), and an
	 * SMTP reply, a DNS TXT record or a firewall comment is read by
	 * strangers, to whom http://127.0.0.1:8025/ means their own machine. */
	if (c->lookup_url)
		emit_url_template(out, c->lookup_url);
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
	/* the lookup URL is what a blocked postmaster needs most: room for it
	 * first, the reason is cut instead (unless the room is tiny) */
	struct buf u = BUF_INIT;
	if (ctx->lookup_url && ctx->lookup_url[0])
		emit_url(&u, ctx->lookup_url, &d->prefix, dollar);
	size_t avail = max;
	if (u.len && u.len + 5 + 24 <= max)
		avail = max - u.len - 5;
	else
		buf_reset(&u);
	/* "mxwarden" first: the MTA logs this text with each refusal, and the
	 * judge tells its own blocks' refusals by it (aggregator.c names_us) */
	buf_appends(out, "mxwarden ");
	emit_sanitize(out, rule[0] ? rule : "blocked", MXW_MIN(avail, (size_t)32));
	if (reason[0] && out->len - start + 3 < avail) {
		buf_appends(out, ": ");
		emit_sanitize(out, reason, avail - (out->len - start));
	}
	if (u.len) {
		buf_appends(out, " see ");
		buf_append(out, u.data, u.len);
	}
	buf_free(&u);
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

/* The field-th blank-separated token of line (leading blanks skipped). */
static bool field_at(const char *line, int field, const char **t, size_t *n)
{
	const char *p = line;
	for (int i = 0;; i++) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			return false;
		const char *e = p;
		while (*e && *e != ' ' && *e != '\t')
			e++;
		if (i == field) {
			*t = p;
			*n = (size_t)(e - p);
			return true;
		}
		p = e;
	}
}

int emit_validate_lines(const char *text, size_t len, struct buf *err, const char *comment_lead,
			const char *entry_re, int prefix_field, const char *other_re)
{
	regex_t rx_entry, rx_other;
	if (regcomp(&rx_entry, entry_re, REG_EXTENDED | REG_NOSUB) != 0)
		BUG("bad validation expression %s", entry_re);
	if (other_re && regcomp(&rx_other, other_re, REG_EXTENDED | REG_NOSUB) != 0)
		BUG("bad validation expression %s", other_re);
	int rc = 0;
	size_t lineno = 0;
	char line[2048];
	if (len > 0 && text[len - 1] != '\n') {
		buf_appends(err, "the text does not end with a newline");
		rc = -1;
	}
	size_t lead = comment_lead ? strlen(comment_lead) : 0;
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
		if (lead && strncmp(line, comment_lead, lead) == 0)
			continue;
		if (regexec(&rx_entry, line, 0, NULL, 0) == 0) {
			const char *t;
			size_t tn;
			if (!field_at(line, prefix_field, &t, &tn) || !emit_is_canonical_prefix(t, tn)) {
				buf_printf(err, "line %zu: no canonical prefix in field %d: ", lineno,
					   prefix_field);
				buf_append_printable(err, line, MXW_MIN(n, (size_t)120));
				rc = -1;
			}
			continue;
		}
		if (other_re && regexec(&rx_other, line, 0, NULL, 0) == 0)
			continue;
		buf_printf(err, "line %zu: not of the format's grammar: ", lineno);
		buf_append_printable(err, line, MXW_MIN(n, (size_t)120));
		rc = -1;
	}
	regfree(&rx_entry);
	if (other_re)
		regfree(&rx_other);
	return rc;
}

void emit_dashboard_template(const struct config *c, struct buf *out)
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
