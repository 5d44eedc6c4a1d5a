/*
 * config.c - the INI configuration: defaults, a small line-numbering
 * parser of our own, typed keys from one table per section, and the error
 * list that `mxwarden check-config` prints as FILE:LINE: message.
 *
 * Why our own parser: Debian's libinih cuts lines at 200 bytes and gives
 * its handler no line numbers; PCRE2 patterns in [parser NAME] are longer
 * than that, and every error must carry its line. The format is small:
 *   [section] or [section NAME]; key = value; comments on lines of their
 *   own starting with '#' or ';'. A value runs to the end of the line
 *   (blanks around it trimmed) so a pattern may contain '#' or ';'.
 * Lines longer than CONFIG_LINE_MAX are refused, never cut.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#define CONFIG_LINE_MAX 8192

/* ------------------------------------------------------------- word lists */

void strv_add(struct strv *sv, const char *s)
{
	sv->v = xrealloc(sv->v, (sv->n + 2) * sizeof *sv->v);
	sv->v[sv->n++] = xstrdup(s);
	sv->v[sv->n] = NULL;
}

void strv_free(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

int strv_split_command(struct strv *out, const char *s, char *err, size_t errsz)
{
	struct buf w = BUF_INIT;
	const char *p = s;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		buf_reset(&w);
		bool any = false;
		while (*p && *p != ' ' && *p != '\t') {
			if (*p == '"') {
				p++;
				any = true;
				while (*p && *p != '"') {
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					buf_appendc(&w, *p++);
				}
				if (*p != '"') {
					snprintf(err, errsz, "unbalanced double quote");
					buf_free(&w);
					strv_free(out);
					return -1;
				}
				p++;
			} else {
				buf_appendc(&w, *p++);
				any = true;
			}
		}
		if (any)
			strv_add(out, buf_str(&w));
	}
	buf_free(&w);
	return 0;
}

/* ---------------------------------------------------------------- errors */

void errlist_add(struct errlist *e, const char *file, int line, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	if (line > 0)
		buf_printf(&b, "%s:%d: ", file, line);
	else
		buf_printf(&b, "%s: ", file);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	strv_add(&e->msgs, buf_str(&b));
	buf_free(&b);
}

void errlist_free(struct errlist *e)
{
	strv_free(&e->msgs);
}

/* ---------------------------------------------------------------- defaults */

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	c->db_path = xstrdup("var/mxwarden.db");
	c->retention_events = 14 * 86400;
	c->retention_rollups = 35 * 86400;
	c->retention_decisions = 400 * 86400;
	c->checkpoint_interval = 60;
	c->format = xstrdup("auto");
	c->syslog_max_conn = 64;
	c->syslog_max_msg = 8192;
	c->batch_lines = 5000;
	c->batch_ms = 200;
	c->poll_interval = 1;
	c->classes = (struct class_conf){24, 64, 16, 48};

	struct rules_conf *r = &c->rules;
	r->retry_enabled = true;
	r->retry_count = 3;
	r->retry_window = 3600;
	r->harvest_enabled = true;
	r->harvest_distinct = 10;
	r->harvest_window = 3600;
	r->harvest_ratio = 0.8;
	r->harvest_min_attempts = 10;
	r->backoff_enabled = true;
	r->backoff_min_interval = 60;
	r->backoff_count = 5;
	r->backoff_window = 3600;
	r->relay_enabled = true;
	r->relay_count = 2;
	r->relay_window = 3600;
	r->auth_enabled = true;
	r->auth_count = 5;
	r->auth_users = 3;
	r->auth_window = 600;
	r->protocol_enabled = true;
	r->protocol_count = 3;
	r->protocol_window = 3600;
	r->no_rdns_weight = 1.5;
	r->no_mx_weight = 1.5;
	r->policy_enabled = true;
	r->policy_count = 3;
	r->policy_window = 3600;
	r->flood_enabled = true;
	r->flood_ip_count = 60;
	r->flood_class_count = 80;
	r->flood_window = 600;
	r->flood_limit_weight = 20;
	r->class_enabled = true;
	r->class_flagged_ips = 3;
	r->class_min_members = 3;
	r->min_sessions = 2;
	r->returned_count = 30;
	r->class_widen_classes = 4;
	r->success_factor = 3.0;
	r->success_window = 86400;
	r->block_base = 3600;
	r->block_max = 30 * 86400;
	r->block_factor = 2.0;
	r->block_jitter = 0.1;
	r->score_defer = 1.0;
	r->score_reject = 1.0;
	r->score_drop = 4.0;
	r->max_tracked_ips = 2000000;
	r->idle_evict = 86400;
	r->evidence_lines = 5;

	c->protected_default = true;
	c->mta_trusted = TRUST_AUTO;
	c->v4_floor = 16;
	c->v6_floor = 32;
	c->max_entries = 100000;
	c->max_change = 50;
	c->breaker_min = 20;
	c->breaker_hold = 600;
	c->breaker_confirm = 3;

	c->listen = xstrdup("127.0.0.1:8025");
	c->web_max_conn = 256;
	c->web_per_ip_conn = 16;
	c->web_timeout = 30;
	c->web_threads = 4;
}

/* ------------------------------------------------------------ key tables */

enum ktype {
	K_STR,	     /* char * */
	K_BOOL,	     /* bool */
	K_INT,	     /* int64_t, >= 0 */
	K_PERCENT,   /* int64_t, 0..100, "50" or "50%" */
	K_DUR,	     /* int64_t seconds */
	K_DOUBLE,    /* double, >= 0 */
	K_PLEN4,     /* unsigned, 0..32 */
	K_PLEN6,     /* unsigned, 0..128 */
	K_STRLIST,   /* struct strv, comma-separated, accumulates */
	K_PREFIXES,  /* struct prefix_list, comma-separated CIDRs */
	K_PROTECTED, /* the protected list: CIDRs, "default", "local" or "none" */
	K_COMMAND,   /* struct strv from a command line */
	K_RESPONSE,  /* enum response */
	K_FAMILIES,  /* unsigned FAMILY_* bits */
	K_OSCOPE,    /* bool class_only: "all" or "class" */
	K_CATEGORY,  /* char *, a category name */
	K_KIND,	     /* char *, an event kind name */
	K_ADDRPORT,  /* char *, ADDR:PORT */
	K_TRUST,     /* unsigned TRUST_* bits: auto, none, or postfix and/or exim */
	K_OBSOLETE,  /* a key that no longer does anything: a warning, not an error */
};

struct key {
	const char *name;
	enum ktype type;
	size_t off;
	const char *help;
};

#define CK(name, type, field, help)                              \
	{                                                        \
		name, type, offsetof(struct config, field), help \
	}
#define RK(name, type, field, help)                                    \
	{                                                              \
		name, type, offsetof(struct config, rules.field), help \
	}
#define OK(name, type, field, help)                                   \
	{                                                             \
		name, type, offsetof(struct output_conf, field), help \
	}
#define PK(name, type, field, help)                                        \
	{                                                                  \
		name, type, offsetof(struct parser_rule_conf, field), help \
	}

static const struct key storage_keys[] = {
    CK("db", K_STR, db_path, "SQLite database file"),
    CK("retention_events", K_DUR, retention_events, "keep raw events this long"),
    CK("retention_rollups", K_DUR, retention_rollups, "keep per-minute rollups this long"),
    CK("retention_decisions", K_DUR, retention_decisions, "keep expired decisions this long"),
    CK("checkpoint_interval", K_DUR, checkpoint_interval,
       "save the aggregator's state in the database this often (0: at a clean stop only)"),
    {NULL, 0, 0, NULL}};

static const struct key collector_keys[] = {
    CK("follow", K_STRLIST, follow, "files or globs to follow"),
    CK("format", K_STR, format, "auto, postfix, exim or sendmail"),
    CK("timezone", K_STR, timezone, "time zone of RFC 3164 stamps (default: the system's)"),
    CK("syslog_listen", K_ADDRPORT, syslog_listen, "ADDR:PORT of the syslog receiver"),
    CK("syslog_allow", K_STRLIST, syslog_allow, "CIDRs allowed to send syslog"),
    CK("syslog_max_connections", K_INT, syslog_max_conn, "TCP syslog connection limit"),
    CK("syslog_max_message", K_INT, syslog_max_msg, "largest syslog message in bytes"),
    CK("batch_lines", K_INT, batch_lines, "lines per database transaction"),
    CK("batch_ms", K_INT, batch_ms, "longest time a batch stays open, in ms"),
    CK("poll_interval", K_DUR, poll_interval, "polling interval when inotify is unavailable"),
    CK("log_syslog", K_BOOL, log_syslog, "also log our own messages to syslog"),
    {NULL, 0, 0, NULL}};

static const struct key classes_keys[] = {
    CK("ipv4", K_PLEN4, classes.v4_len, "IPv4 class length"),
    CK("ipv6", K_PLEN6, classes.v6_len, "IPv6 class length"),
    CK("ipv4_widen", K_PLEN4, classes.v4_widen_len, "adaptive widening stops at this IPv4 length"),
    CK("ipv6_widen", K_PLEN6, classes.v6_widen_len, "adaptive widening stops at this IPv6 length"),
    {NULL, 0, 0, NULL}};

static const struct key rules_keys[] = {
    RK("retry", K_BOOL, retry_enabled, "rule 1: retries a permanent failure"),
    RK("retry_count", K_INT, retry_count, ""),
    RK("retry_window", K_DUR, retry_window, ""),
    RK("harvest", K_BOOL, harvest_enabled, "rule 2: harvests recipients"),
    RK("harvest_distinct", K_INT, harvest_distinct, ""),
    RK("harvest_window", K_DUR, harvest_window, ""),
    RK("harvest_ratio", K_DOUBLE, harvest_ratio, ""),
    RK("harvest_min_attempts", K_INT, harvest_min_attempts, ""),
    RK("backoff", K_BOOL, backoff_enabled, "rule 3: ignores back-off"),
    RK("backoff_min_interval", K_DUR, backoff_min_interval, ""),
    RK("backoff_count", K_INT, backoff_count, ""),
    RK("backoff_window", K_DUR, backoff_window, ""),
    RK("relay", K_BOOL, relay_enabled, "rule 4: relay attempts"),
    RK("relay_count", K_INT, relay_count, ""),
    RK("relay_window", K_DUR, relay_window, ""),
    RK("auth", K_BOOL, auth_enabled, "rule 5: auth brute force"),
    RK("auth_count", K_INT, auth_count, ""),
    RK("auth_users", K_INT, auth_users, ""),
    RK("auth_window", K_DUR, auth_window, ""),
    RK("protocol", K_BOOL, protocol_enabled, "rule 6: protocol abuse"),
    RK("protocol_count", K_INT, protocol_count, ""),
    RK("protocol_window", K_DUR, protocol_window, ""),
    {"protocol_bot_weight", K_OBSOLETE, 0, "obsolete: each protocol violation counts once"},
    RK("no_rdns_weight", K_DOUBLE, no_rdns_weight, "rule 7: multiplier on evidence"),
    RK("no_mx_weight", K_DOUBLE, no_mx_weight, "rule 7: multiplier on evidence"),
    RK("policy", K_BOOL, policy_enabled, "rule 8: persists after policy rejections"),
    RK("policy_count", K_INT, policy_count, ""),
    RK("policy_window", K_DUR, policy_window, ""),
    {"policy_client_weight", K_OBSOLETE, 0, "obsolete: each policy refusal counts once"},
    RK("flood", K_BOOL, flood_enabled, "rule 9: connection floods"),
    RK("flood_ip_count", K_INT, flood_ip_count, ""),
    RK("flood_class_count", K_INT, flood_class_count, ""),
    RK("flood_window", K_DUR, flood_window, ""),
    RK("flood_limit_weight", K_INT, flood_limit_weight, "a rate-limit warning counts this many"),
    RK("class", K_BOOL, class_enabled, "rule 10: class escalation"),
    RK("class_flagged_ips", K_INT, class_flagged_ips, ""),
    RK("class_widen_classes", K_INT, class_widen_classes, ""),
    RK("class_min_members", K_INT, class_min_members,
       "members that misbehaved each before a class crosses rules 1-9 as a whole"),
    RK("min_sessions", K_INT, min_sessions,
       "connections with abuse signals a rule needs (clear attacks: one at twice the threshold)"),
    RK("returned_count", K_INT, returned_count,
       "connections refused by our own block that make a block drop (0: off)"),
    RK("success_factor", K_DOUBLE, success_factor, "threshold multiplier for senders with accepted mail"),
    RK("success_window", K_DUR, success_window, ""),
    RK("block_base", K_DUR, block_base, "first block duration"),
    RK("block_max", K_DUR, block_max, "longest block duration"),
    RK("block_factor", K_DOUBLE, block_factor, "escalation factor for repeat offenders"),
    RK("block_jitter", K_DOUBLE, block_jitter, "random spread of durations (fraction)"),
    RK("score_defer", K_DOUBLE, score_defer, "score from which the response is defer"),
    RK("score_reject", K_DOUBLE, score_reject, "score from which the response is reject"),
    RK("score_drop", K_DOUBLE, score_drop, "score from which the response is drop"),
    RK("max_tracked_ips", K_INT, max_tracked_ips, "bound on per-IP state"),
    RK("idle_evict", K_DUR, idle_evict, "forget idle senders after this long"),
    RK("evidence_lines", K_INT, evidence_lines, "first and last raw lines kept per decision"),
    RK("dry_run", K_BOOL, dry_run, "decide and explain, emit nothing"),
    {NULL, 0, 0, NULL}};

static const struct key safety_keys[] = {
    CK("protected_networks", K_PROTECTED, protected_networks, "never blocked"),
    CK("allow", K_PREFIXES, allow, "allow list (addresses and CIDRs)"),
    CK("allow_files", K_STRLIST, allow_files, "files with one address or CIDR per line"),
    CK("mta_trusted", K_TRUST, mta_trusted,
       "allow-list the clients the MTA trusts: auto, none, postfix, exim (Postfix mynetworks, Exim "
       "relay_from_hosts)"),
    CK("postfix_config", K_STR, postfix_config,
       "Postfix configuration directory (postconf -c), empty = default"),
    CK("exim_config", K_STR, exim_config, "Exim configuration file (exim -C), empty = default"),
    CK("ipv4_floor", K_PLEN4, v4_floor, "shortest IPv4 prefix ever emitted"),
    CK("ipv6_floor", K_PLEN6, v6_floor, "shortest IPv6 prefix ever emitted"),
    CK("max_entries", K_INT, max_entries, "cap on entries per output"),
    CK("max_change", K_PERCENT, max_change, "circuit breaker: most entries one update may change (0 = off)"),
    CK("breaker_min", K_INT, breaker_min, "the breaker applies to outputs with at least this many entries"),
    CK("breaker_hold", K_DUR, breaker_hold, "a tripped breaker keeps the old file this long"),
    CK("breaker_confirm", K_INT, breaker_confirm,
       "consecutive updates that confirm a held change (0 = hold only)"),
    {NULL, 0, 0, NULL}};

static const struct key web_keys[] = {
    CK("listen", K_ADDRPORT, listen, "dashboard and API address"),
    CK("token_file", K_STR, token_file, "file holding the API token for mutating requests"),
    CK("assets", K_STR, assets_dir, "serve static/ from this directory instead of the embedded copy"),
    CK("lookup_url", K_STR, lookup_url, "lookup URL template; $ip is replaced by the address"),
    CK("max_connections", K_INT, web_max_conn, "concurrent HTTP connections"),
    CK("per_ip_connections", K_INT, web_per_ip_conn,
       "concurrent HTTP connections per client address (keeps slots free from slow clients)"),
    CK("timeout", K_DUR, web_timeout, "connection timeout"),
    CK("threads", K_INT, web_threads, "HTTP worker threads"),
    {NULL, 0, 0, NULL}};

static const struct key output_keys[] = {
    OK("format", K_STR, format, ""),
    OK("path", K_STR, path, ""),
    OK("families", K_FAMILIES, families, "ipv4, ipv6"),
    OK("scope", K_OSCOPE, class_only, "all or class"),
    OK("min_response", K_RESPONSE, min_response, "observe, defer, reject or drop"),
    OK("reload", K_COMMAND, reload, "command run after a rewrite (no shell)"),
    OK("reload_timeout", K_DUR, reload_timeout, ""),
    OK("set", K_STR, set_name, "ipset/nft set or iptables chain name"),
    {NULL, 0, 0, NULL}};

static const struct key parser_keys[] = {
    PK("pattern", K_STR, pattern, "PCRE2 pattern with named groups"),
    PK("program", K_STR, program, "program-name filter"),
    PK("literal", K_STR, literal, "literal that must appear (prefilter)"),
    PK("category", K_CATEGORY, category, "category of the event"),
    PK("kind", K_KIND, kind, "kind of the event (default reject)"),
    {NULL, 0, 0, NULL}};

/* ------------------------------------------------------------------ values */

struct ctx {
	struct config *c;
	const char *file;
	int line;
	struct errlist *errs;
};

#define ERR(x, ...) errlist_add((x)->errs, (x)->file, (x)->line, __VA_ARGS__)

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int parse_int(const char *v, int64_t *out)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < 0)
		return -1;
	*out = x;
	return 0;
}

/* Calls fn for each comma-separated, trimmed, non-empty item. */
static int each_item(struct ctx *x, const char *key, char *v, int (*fn)(struct ctx *, void *, const char *),
		     void *arg)
{
	int rc = 0;
	char *save = NULL;
	for (char *t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		t = trim(t);
		if (!*t) {
			ERR(x, "%s: empty item in list", key);
			rc = -1;
			continue;
		}
		if (fn(x, arg, t) < 0)
			rc = -1;
	}
	return rc;
}

static int add_str(struct ctx *x, void *arg, const char *t)
{
	strv_add(arg, t);
	return 0;
}

static int add_prefix(struct ctx *x, void *arg, const char *t)
{
	struct prefix p;
	if (prefix_parse(&p, t, strlen(t), true) < 0) {
		ERR(x, "'%s' is not an address or a CIDR prefix with zero host bits", t);
		return -1;
	}
	prefix_list_add(arg, &p);
	return 0;
}

static int add_protected(struct ctx *x, void *arg, const char *t)
{
	if (strcmp(t, "default") == 0) {
		config_protected_default(arg);
		x->c->protected_default = true; /* "local" addresses are added at run time */
		return 0;
	}
	if (strcmp(t, "none") == 0) {
		ERR(x, "protected_networks: 'none' must stand alone");
		return -1;
	}
	return add_prefix(x, arg, t);
}

static int add_family(struct ctx *x, void *arg, const char *t)
{
	unsigned *f = arg;
	if (strcmp(t, "ipv4") == 0)
		*f |= FAMILY_V4;
	else if (strcmp(t, "ipv6") == 0)
		*f |= FAMILY_V6;
	else {
		ERR(x, "families: '%s' is not ipv4 or ipv6", t);
		return -1;
	}
	return 0;
}

static int add_trust(struct ctx *x, void *arg, const char *t)
{
	unsigned *f = arg;
	if (strcmp(t, "postfix") == 0)
		*f |= TRUST_POSTFIX;
	else if (strcmp(t, "exim") == 0)
		*f |= TRUST_EXIM;
	else {
		ERR(x, "mta_trusted: '%s' is not auto, none, postfix or exim", t);
		return -1;
	}
	return 0;
}

static int check_addrport(const char *v)
{
	const char *colon = strrchr(v, ':');
	if (!colon || colon == v)
		return -1;
	int64_t port;
	if (parse_int(colon + 1, &port) < 0 || port < 1 || port > 65535)
		return -1;
	const char *h = v;
	size_t n = (size_t)(colon - v);
	if (h[0] == '[') {
		if (n < 2 || h[n - 1] != ']')
			return -1;
		h++;
		n -= 2;
	}
	if (n == 1 && h[0] == '*')
		return 0;
	struct ipaddr ip;
	return ipaddr_parse(&ip, h, n);
}

static void set_value(struct ctx *x, const struct key *k, void *base, char *v)
{
	void *f = (char *)base + k->off;
	int64_t i64;
	char msg[256];
	switch (k->type) {
	case K_OBSOLETE: log_warn("%s:%d: %s: %s, ignored", x->file, x->line, k->name, k->help); return;
	case K_STR:
	case K_CATEGORY:
	case K_KIND:
		if (!*v) {
			ERR(x, "%s: empty value", k->name);
			return;
		}
		if (k->type == K_CATEGORY && (ev_category_from_name(v) <= 0)) {
			ERR(x, "%s: unknown category '%s'", k->name, v);
			return;
		}
		if (k->type == K_KIND && ev_kind_from_name(v) <= 0) {
			ERR(x, "%s: unknown event kind '%s'", k->name, v);
			return;
		}
		free(*(char **)f);
		*(char **)f = xstrdup(v);
		return;
	case K_ADDRPORT:
		if (check_addrport(v) < 0) {
			ERR(x, "%s: '%s' is not ADDR:PORT (e.g. 127.0.0.1:8025 or [::1]:8025)", k->name, v);
			return;
		}
		free(*(char **)f);
		*(char **)f = xstrdup(v);
		return;
	case K_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
			*(bool *)f = true;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
			*(bool *)f = false;
		else
			ERR(x, "%s: '%s' is not yes or no", k->name, v);
		return;
	case K_INT:
		if (parse_int(v, &i64) < 0)
			ERR(x, "%s: '%s' is not a non-negative integer", k->name, v);
		else
			*(int64_t *)f = i64;
		return;
	case K_PERCENT: {
		char pct[32];
		size_t pl = strlen(v);
		if (pl && v[pl - 1] == '%')
			pl--;
		bool fits = pl < sizeof pct;
		if (fits) {
			memcpy(pct, v, pl);
			pct[pl] = '\0';
		}
		if (!fits || parse_int(pct, &i64) < 0 || i64 > 100)
			ERR(x, "%s: '%s' is not a percentage (0 to 100, e.g. 50%%)", k->name, v);
		else
			*(int64_t *)f = i64;
		return;
	}
	case K_DUR:
		if (duration_parse(v, &i64) < 0)
			ERR(x, "%s: '%s' is not a duration (e.g. 90s, 10m, 2h, 7d)", k->name, v);
		else
			*(int64_t *)f = i64;
		return;
	case K_DOUBLE: {
		char *end;
		errno = 0;
		double d = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(d) || d < 0)
			ERR(x, "%s: '%s' is not a non-negative number", k->name, v);
		else
			*(double *)f = d;
		return;
	}
	case K_PLEN4:
	case K_PLEN6: {
		int64_t max = k->type == K_PLEN4 ? 32 : 128;
		const char *s = v[0] == '/' ? v + 1 : v;
		if (parse_int(s, &i64) < 0 || i64 > max)
			ERR(x, "%s: '%s' is not a prefix length 0..%lld", k->name, v, (long long)max);
		else
			*(unsigned *)f = (unsigned)i64;
		return;
	}
	case K_STRLIST: each_item(x, k->name, v, add_str, f); return;
	case K_PREFIXES: each_item(x, k->name, v, add_prefix, f); return;
	case K_PROTECTED:
		prefix_list_free(f);
		x->c->protected_default = false;
		if (strcmp(v, "none") == 0)
			return;
		each_item(x, k->name, v, add_protected, f);
		return;
	case K_COMMAND:
		strv_free(f);
		if (strv_split_command(f, v, msg, sizeof msg) < 0)
			ERR(x, "%s: %s", k->name, msg);
		else if (((struct strv *)f)->n && ((struct strv *)f)->v[0][0] != '/')
			ERR(x, "%s: the command must be an absolute path, got '%s'", k->name,
			    ((struct strv *)f)->v[0]);
		return;
	case K_RESPONSE: {
		int r = response_from_name(v);
		if (r < 0)
			ERR(x, "%s: '%s' is not observe, defer, reject or drop", k->name, v);
		else
			*(enum response *)f = (enum response)r;
		return;
	}
	case K_FAMILIES:
		*(unsigned *)f = 0;
		each_item(x, k->name, v, add_family, f);
		return;
	case K_TRUST:
		*(unsigned *)f = 0;
		if (strcmp(v, "auto") == 0)
			*(unsigned *)f = TRUST_AUTO;
		else if (strcmp(v, "none") != 0)
			each_item(x, k->name, v, add_trust, f);
		return;
	case K_OSCOPE:
		if (strcmp(v, "all") == 0)
			*(bool *)f = false;
		else if (strcmp(v, "class") == 0)
			*(bool *)f = true;
		else
			ERR(x, "%s: '%s' is not all or class", k->name, v);
		return;
	}
	BUG("unhandled key type %d", (int)k->type);
}

/* ------------------------------------------------------------------ parser */

enum section {
	SEC_NONE,
	SEC_STORAGE,
	SEC_COLLECTOR,
	SEC_PARSER,
	SEC_CLASSES,
	SEC_RULES,
	SEC_SAFETY,
	SEC_OUTPUT,
	SEC_WEB
};

static const struct {
	const char *name;
	enum section sec;
	bool named;
	const struct key *keys;
} sections[] = {
    {"storage", SEC_STORAGE, false, storage_keys}, {"collector", SEC_COLLECTOR, false, collector_keys},
    {"parser", SEC_PARSER, true, parser_keys},	   {"classes", SEC_CLASSES, false, classes_keys},
    {"rules", SEC_RULES, false, rules_keys},	   {"safety", SEC_SAFETY, false, safety_keys},
    {"output", SEC_OUTPUT, true, output_keys},	   {"web", SEC_WEB, false, web_keys},
};

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

/* Seen keys per section instance, to refuse a scalar key set twice. */
struct seen {
	size_t inst;
	const struct key *key;
	int line;
};

int config_load(struct config *c, const char *path, struct errlist *errs)
{
	size_t nerr0 = errs->msgs.n;
	FILE *fp = fopen(path, "r");
	if (!fp) {
		errlist_add(errs, path, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	free(c->source);
	c->source = xstrdup(path);
	struct ctx x = {c, path, 0, errs};
	int sec = -1; /* index into sections[], -1 = before any section */
	void *base = NULL;
	bool skip_section = false;
	struct seen *seen = NULL;
	size_t nseen = 0;
	char *line = xmalloc(CONFIG_LINE_MAX + 2);

	while (fgets(line, CONFIG_LINE_MAX + 2, fp)) {
		x.line++;
		size_t len = strlen(line);
		if (len == CONFIG_LINE_MAX + 1 && line[len - 1] != '\n') {
			ERR(&x, "line longer than %d bytes", CONFIG_LINE_MAX);
			int ch;
			while ((ch = fgetc(fp)) != EOF && ch != '\n')
				;
			continue;
		}
		if (memchr(line, '\0', len) != NULL && strlen(line) != len) {
			ERR(&x, "NUL byte in line");
			continue;
		}
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		char *s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			skip_section = true;
			if (!end || trim(end + 1)[0] != '\0') {
				ERR(&x, "malformed section header (want [section] or [section NAME])");
				continue;
			}
			*end = '\0';
			char *inner = trim(s + 1);
			char *name = NULL;
			char *sp = strpbrk(inner, " \t");
			if (sp) {
				*sp = '\0';
				name = trim(sp + 1);
			}
			sec = -1;
			for (size_t i = 0; i < MXW_ARRAY_LEN(sections); i++)
				if (strcmp(sections[i].name, inner) == 0)
					sec = (int)i;
			if (sec < 0) {
				ERR(&x, "unknown section [%s]", inner);
				continue;
			}
			if (sections[sec].named && (!name || !valid_name(name))) {
				ERR(&x,
				    "[%s] needs a name of letters, digits, '_', '-' or '.' (e.g. [%s main])",
				    inner, inner);
				continue;
			}
			if (!sections[sec].named && name) {
				ERR(&x, "[%s] takes no name", inner);
				continue;
			}
			skip_section = false;
			if (sections[sec].sec == SEC_OUTPUT) {
				for (size_t i = 0; i < c->n_outputs; i++)
					if (strcmp(c->outputs[i].name, name) == 0) {
						ERR(&x, "[output %s] already defined at line %d", name,
						    c->outputs[i].defined_line);
						skip_section = true;
					}
				if (skip_section)
					continue;
				c->outputs = xrealloc(c->outputs, (c->n_outputs + 1) * sizeof *c->outputs);
				struct output_conf *o = &c->outputs[c->n_outputs++];
				memset(o, 0, sizeof *o);
				o->name = xstrdup(name);
				o->families = FAMILY_V4 | FAMILY_V6;
				o->min_response = RESP_DEFER;
				o->reload_timeout = 30;
				o->defined_line = x.line;
				base = NULL; /* outputs may move on realloc: resolved per key */
			} else if (sections[sec].sec == SEC_PARSER) {
				for (size_t i = 0; i < c->n_parsers; i++)
					if (strcmp(c->parsers[i].name, name) == 0) {
						ERR(&x, "[parser %s] already defined at line %d", name,
						    c->parsers[i].line);
						skip_section = true;
					}
				if (skip_section)
					continue;
				c->parsers = xrealloc(c->parsers, (c->n_parsers + 1) * sizeof *c->parsers);
				struct parser_rule_conf *p = &c->parsers[c->n_parsers++];
				memset(p, 0, sizeof *p);
				p->name = xstrdup(name);
				p->file = xstrdup(path);
				p->line = x.line;
				base = NULL;
			} else {
				base = c;
			}
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			ERR(&x, "expected 'key = value', '[section]' or a comment");
			continue;
		}
		*eq = '\0';
		char *key = trim(s);
		char *val = trim(eq + 1);
		if (sec < 0) {
			if (!skip_section)
				ERR(&x, "key '%s' outside of any section", key);
			continue;
		}
		if (skip_section)
			continue;
		void *b = base;
		if (sections[sec].sec == SEC_OUTPUT)
			b = &c->outputs[c->n_outputs - 1];
		else if (sections[sec].sec == SEC_PARSER)
			b = &c->parsers[c->n_parsers - 1];
		const struct key *k = NULL;
		for (const struct key *t = sections[sec].keys; t->name; t++)
			if (strcmp(t->name, key) == 0)
				k = t;
		if (!k) {
			ERR(&x, "unknown key '%s' in [%s]", key, sections[sec].name);
			continue;
		}
		if (k->type != K_STRLIST && k->type != K_PREFIXES) {
			/* identify the instance by section index and, for named ones, position */
			size_t inst =
			    (size_t)sec * 1000000 + (sections[sec].sec == SEC_OUTPUT   ? c->n_outputs
						     : sections[sec].sec == SEC_PARSER ? c->n_parsers
										       : 0);
			int dup = 0;
			for (size_t i = 0; i < nseen; i++)
				if (seen[i].inst == inst && seen[i].key == k)
					dup = seen[i].line;
			if (dup) {
				ERR(&x, "'%s' already set at line %d", key, dup);
				continue;
			}
			seen = xrealloc(seen, (nseen + 1) * sizeof *seen);
			seen[nseen++] = (struct seen){inst, k, x.line};
		}
		set_value(&x, k, b, val);
		if (sections[sec].sec == SEC_PARSER && k->off == offsetof(struct parser_rule_conf, pattern))
			c->parsers[c->n_parsers - 1].pattern_line = x.line;
		if (sections[sec].sec == SEC_COLLECTOR && k->off == offsetof(struct config, timezone))
			c->timezone_line = x.line;
	}
	if (ferror(fp))
		errlist_add(errs, path, x.line, "read error: %s", strerror(errno));
	fclose(fp);
	free(line);
	free(seen);
	return errs->msgs.n == nerr0 ? 0 : -1;
}

int config_validate(struct config *c, struct errlist *errs)
{
	size_t nerr0 = errs->msgs.n;
	const char *file = c->source ? c->source : "(defaults)";
	if (c->protected_default && c->protected_networks.n == 0)
		config_protected_default(&c->protected_networks);
	if (strcmp(c->format, "auto") && strcmp(c->format, "postfix") && strcmp(c->format, "exim") &&
	    strcmp(c->format, "sendmail"))
		errlist_add(errs, file, 0, "[collector] format: '%s' is not auto, postfix, exim or sendmail",
			    c->format);
	if (c->classes.v4_widen_len > c->classes.v4_len)
		errlist_add(errs, file, 0, "[classes] ipv4_widen (/%u) must not be longer than ipv4 (/%u)",
			    c->classes.v4_widen_len, c->classes.v4_len);
	if (c->classes.v6_widen_len > c->classes.v6_len)
		errlist_add(errs, file, 0, "[classes] ipv6_widen (/%u) must not be longer than ipv6 (/%u)",
			    c->classes.v6_widen_len, c->classes.v6_len);
	if (c->rules.harvest_ratio > 1.0)
		errlist_add(errs, file, 0, "[rules] harvest_ratio must be between 0 and 1");
	if (c->rules.block_base > c->rules.block_max)
		errlist_add(errs, file, 0, "[rules] block_base is longer than block_max");
	if (c->batch_lines < 1)
		errlist_add(errs, file, 0, "[collector] batch_lines must be at least 1");
	for (size_t i = 0; i < c->n_outputs; i++) {
		struct output_conf *o = &c->outputs[i];
		/* whether the format exists is for emitters/ to say
		 * (emitters_check_config): its table is the only list */
		if (!o->format)
			errlist_add(errs, file, o->defined_line, "[output %s] has no format", o->name);
		if (!o->path)
			errlist_add(errs, file, o->defined_line, "[output %s] has no path", o->name);
		if (!o->families)
			errlist_add(errs, file, o->defined_line, "[output %s] families is empty", o->name);
	}
	for (size_t i = 0; i < c->n_parsers; i++) {
		struct parser_rule_conf *p = &c->parsers[i];
		if (!p->pattern)
			errlist_add(errs, p->file, p->line, "[parser %s] has no pattern", p->name);
		if (!p->category)
			errlist_add(errs, p->file, p->line, "[parser %s] has no category", p->name);
	}
	return errs->msgs.n == nerr0 ? 0 : -1;
}

void config_free(struct config *c)
{
	free(c->source);
	free(c->db_path);
	strv_free(&c->follow);
	free(c->format);
	free(c->timezone);
	free(c->syslog_listen);
	strv_free(&c->syslog_allow);
	for (size_t i = 0; i < c->n_parsers; i++) {
		struct parser_rule_conf *p = &c->parsers[i];
		free(p->name);
		free(p->pattern);
		free(p->program);
		free(p->literal);
		free(p->category);
		free(p->kind);
		free(p->file);
	}
	free(c->parsers);
	prefix_list_free(&c->protected_networks);
	prefix_list_free(&c->allow);
	strv_free(&c->allow_files);
	free(c->postfix_config);
	free(c->exim_config);
	prefix_list_free(&c->trusted_nets);
	strv_free(&c->trusted_src);
	for (size_t i = 0; i < c->n_outputs; i++) {
		struct output_conf *o = &c->outputs[i];
		free(o->name);
		free(o->format);
		free(o->path);
		strv_free(&o->reload);
		free(o->set_name);
	}
	free(c->outputs);
	free(c->listen);
	free(c->token_file);
	free(c->assets_dir);
	free(c->lookup_url);
	memset(c, 0, sizeof *c);
}

static void dump_keys(struct buf *out, const struct key *keys, const void *base)
{
	for (const struct key *k = keys; k->name; k++) {
		const void *f = (const char *)base + k->off;
		char tmp[PREFIX_STRLEN];
		if (k->type == K_OBSOLETE)
			continue;
		buf_printf(out, "%s = ", k->name);
		switch (k->type) {
		case K_OBSOLETE: break;
		case K_STR:
		case K_CATEGORY:
		case K_KIND:
		case K_ADDRPORT: buf_appends(out, *(char *const *)f ? *(char *const *)f : ""); break;
		case K_BOOL: buf_appends(out, *(const bool *)f ? "yes" : "no"); break;
		case K_INT: buf_printf(out, "%lld", (long long)*(const int64_t *)f); break;
		case K_PERCENT: buf_printf(out, "%lld%%", (long long)*(const int64_t *)f); break;
		case K_DUR: {
			char d[32];
			duration_format(*(const int64_t *)f, d, sizeof d);
			buf_appends(out, d);
			break;
		}
		case K_DOUBLE: buf_printf(out, "%g", *(const double *)f); break;
		case K_PLEN4:
		case K_PLEN6: buf_printf(out, "%u", *(const unsigned *)f); break;
		case K_STRLIST:
		case K_COMMAND: {
			const struct strv *sv = f;
			for (size_t i = 0; i < sv->n; i++)
				buf_printf(out, "%s%s", i ? (k->type == K_COMMAND ? " " : ", ") : "",
					   sv->v[i]);
			break;
		}
		case K_PREFIXES:
		case K_PROTECTED: {
			const struct prefix_list *l = f;
			if (k->type == K_PROTECTED && l->n == 0)
				buf_appends(out, "none");
			for (size_t i = 0; i < l->n; i++) {
				prefix_format(&l->v[i], tmp);
				buf_printf(out, "%s%s", i ? ", " : "", tmp);
			}
			break;
		}
		case K_RESPONSE: buf_appends(out, response_name(*(const enum response *)f)); break;
		case K_FAMILIES: {
			unsigned fam = *(const unsigned *)f;
			buf_printf(out, "%s%s%s", fam & FAMILY_V4 ? "ipv4" : "",
				   (fam & FAMILY_V4) && (fam & FAMILY_V6) ? ", " : "",
				   fam & FAMILY_V6 ? "ipv6" : "");
			break;
		}
		case K_OSCOPE: buf_appends(out, *(const bool *)f ? "class" : "all"); break;
		case K_TRUST: {
			unsigned t = *(const unsigned *)f;
			buf_appends(out, t & TRUST_AUTO			     ? "auto"
					 : t == (TRUST_POSTFIX | TRUST_EXIM) ? "postfix, exim"
					 : t & TRUST_POSTFIX		     ? "postfix"
					 : t & TRUST_EXIM		     ? "exim"
									     : "none");
			break;
		}
		}
		buf_appendc(out, '\n');
	}
}

/* The clients the MTA trusts, as comments (the dump stays a valid file):
 * "#   203.0.113.0/28  # postfix mynetworks". */
static void dump_trusted(struct buf *out, const struct config *c)
{
	if (!c->mta_trusted)
		return;
	buf_printf(out, "# allow-listed because the MTA trusts them (mta_trusted): %zu\n", c->trusted_nets.n);
	for (size_t i = 0; i < c->trusted_nets.n; i++) {
		char p[PREFIX_STRLEN];
		prefix_format(&c->trusted_nets.v[i], p);
		buf_printf(out, "#   %-18s # ", p);
		const char *src = i < c->trusted_src.n ? c->trusted_src.v[i] : "";
		buf_append_printable(out, src, strlen(src));
		buf_appendc(out, '\n');
	}
}

void config_dump(const struct config *c, struct buf *out)
{
	for (size_t i = 0; i < MXW_ARRAY_LEN(sections); i++) {
		if (sections[i].sec == SEC_OUTPUT) {
			for (size_t j = 0; j < c->n_outputs; j++) {
				buf_printf(out, "[output %s]\n", c->outputs[j].name);
				dump_keys(out, sections[i].keys, &c->outputs[j]);
				buf_appendc(out, '\n');
			}
		} else if (sections[i].sec == SEC_PARSER) {
			for (size_t j = 0; j < c->n_parsers; j++) {
				buf_printf(out, "[parser %s]\n", c->parsers[j].name);
				dump_keys(out, sections[i].keys, &c->parsers[j]);
				buf_appendc(out, '\n');
			}
		} else {
			buf_printf(out, "[%s]\n", sections[i].name);
			dump_keys(out, sections[i].keys, c);
			if (sections[i].sec == SEC_SAFETY)
				dump_trusted(out, c);
			buf_appendc(out, '\n');
		}
	}
}
