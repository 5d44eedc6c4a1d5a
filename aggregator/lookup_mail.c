/*
 * lookup_mail.c - lookup's answer for an e-mail address or a sender domain:
 * which client IPs used the address as envelope sender or recipient (a
 * domain: as the domain of the envelope sender) in the stored evidence
 * events of the last LOOKUP_MAIL_DAYS days (scanned newest first, range by
 * range), how often, and the state of each (the same answer as a lookup of
 * the address, lookup_prefix_json). `mxwarden lookup` and the API share it.
 *
 * It reads the events through db_events_scan() and compares addresses
 * itself, bounded by LOOKUP_MAIL_SCAN_MAX rows and LOOKUP_MAIL_SCAN_US of
 * time (the answer says when it was cut short): db/ has no index by
 * address yet. When it gets one, this file should become one call to it.
 * Accepted mail is counted, not stored: a sender that was never refused is
 * not found here (its address lookup says "seen N connections").
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aggregator/lookup_int.h"
#include "db/db.h"

#define LOOKUP_MAIL_DAYS     7
#define LOOKUP_MAIL_SCAN_MAX 3000000
#define LOOKUP_MAIL_SCAN_US  (3 * 1000000LL)
#define LOOKUP_MAIL_SENDERS  200
#define LOOKUP_MAIL_FULL     50 /* senders given a full state (each reads the blocklist files) */

struct sender {
	struct ipaddr ip;
	int64_t count, first, last;
	bool as_from, as_to;
	int64_t cats[CAT__COUNT];
};

struct scan {
	int64_t hi_us; /* the current range ends here (exclusive) */
	const char *addr;
	size_t addr_len;
	bool domain; /* addr is a domain: the sender's domain part */
	int64_t scanned, matched;
	int64_t t0;
	bool truncated;
	struct sender s[LOOKUP_MAIL_SENDERS];
	size_t n;
	int64_t others; /* matches from senders past the table */
};

/* Does the envelope address span equal the query (case-insensitive, with
 * or without the angle brackets)? */
static bool addr_eq(struct span sp, const char *a, size_t n)
{
	const char *p = sp.p;
	size_t len = sp.n;
	if (len >= 2 && p[0] == '<' && p[len - 1] == '>') {
		p++;
		len -= 2;
	}
	return len == n && strncasecmp(p, a, n) == 0;
}

/* Is the domain of the envelope address span the query (case-insensitive)? */
static bool domain_eq(struct span sp, const char *d, size_t n)
{
	const char *p = sp.p;
	size_t len = sp.n;
	if (len >= 2 && p[0] == '<' && p[len - 1] == '>') {
		p++;
		len -= 2;
	}
	const char *at = len ? memrchr(p, '@', len) : NULL;
	if (!at)
		return false;
	size_t dl = len - (size_t)(at + 1 - p);
	return dl == n && strncasecmp(at + 1, d, n) == 0;
}

static int scan_cb(void *arg, int64_t id, const struct event *ev)
{
	struct scan *sc = arg;
	if (ev->ts_us >= sc->hi_us)
		return 2; /* past this range: the newer ones were scanned already */
	sc->scanned++;
	if ((sc->scanned & 4095) == 0 &&
	    (sc->scanned >= LOOKUP_MAIL_SCAN_MAX || clock_mono_us() - sc->t0 > LOOKUP_MAIL_SCAN_US)) {
		sc->truncated = true;
		return 1;
	}
	bool f, t;
	if (sc->domain) {
		f = domain_eq(ev->from, sc->addr, sc->addr_len);
		t = false;
	} else {
		f = addr_eq(ev->from, sc->addr, sc->addr_len);
		t = addr_eq(ev->to, sc->addr, sc->addr_len);
	}
	if (!(f || t) || !ev->has_ip)
		return 0;
	sc->matched++;
	struct sender *s = NULL;
	for (size_t i = 0; i < sc->n; i++)
		if (ipaddr_cmp(&sc->s[i].ip, &ev->ip) == 0)
			s = &sc->s[i];
	if (!s) {
		if (sc->n == LOOKUP_MAIL_SENDERS) {
			sc->others++;
			return 0;
		}
		s = &sc->s[sc->n++];
		memset(s, 0, sizeof *s);
		s->ip = ev->ip;
		s->first = ev->ts_us / 1000000;
	}
	s->count++;
	s->first = MXW_MIN(s->first, ev->ts_us / 1000000);
	s->last = MXW_MAX(s->last, ev->ts_us / 1000000);
	s->as_from |= f;
	s->as_to |= t;
	if ((unsigned)ev->cat < CAT__COUNT)
		s->cats[ev->cat]++;
	return 0;
}

static int by_count(const void *x, const void *y)
{
	const struct sender *a = x, *b = y;
	return a->count < b->count ? 1 : a->count > b->count ? -1 : ipaddr_cmp(&a->ip, &b->ip);
}

static json_t *time_json(int64_t secs)
{
	char t[TIME_STRLEN];
	time_format_rfc3339(secs * 1000000, false, t);
	return json_string(t);
}

json_t *lookup_mail_json(struct lookup_ctx *x, const char *q, bool domain, struct buf *err)
{
	struct scan *sc = xcalloc(1, sizeof *sc);
	sc->addr = q;
	sc->addr_len = strlen(q);
	sc->domain = domain;
	sc->t0 = clock_mono_us();
	int64_t now = x->now;
	/* newest first, range by range, so that a scan cut short by the
	 * budget has looked at the most recent events */
	static const int64_t bounds[] = {0, 3600, 6 * 3600, 86400, LOOKUP_MAIL_DAYS * 86400};
	int rc = 0;
	for (size_t i = 1; i < MXW_ARRAY_LEN(bounds) && !sc->truncated && rc >= 0; i++) {
		sc->hi_us = i == 1 ? INT64_MAX : (now - bounds[i - 1]) * 1000000;
		rc = db_events_scan(x->db, (now - bounds[i]) * 1000000, scan_cb, sc);
	}
	if (rc < 0) {
		buf_printf(err, "database: %s", db_errmsg(x->db));
		free(sc);
		return NULL;
	}
	qsort(sc->s, sc->n, sizeof sc->s[0], by_count);
	json_t *o = json_object();
	json_object_set_new(o, "query", json_string(q));
	json_object_set_new(o, "kind", json_string(domain ? "domain" : "email"));
	json_object_set_new(o, "days", json_integer(LOOKUP_MAIL_DAYS));
	json_object_set_new(o, "scanned", json_integer(sc->scanned));
	json_object_set_new(o, "truncated", json_boolean(sc->truncated));
	json_object_set_new(o, "matched", json_integer(sc->matched));
	json_object_set_new(o, "other_senders_events", json_integer(sc->others));
	json_t *arr = json_array();
	size_t blocked = 0;
	for (size_t i = 0; i < sc->n; i++) {
		struct sender *s = &sc->s[i];
		char ip[IPADDR_STRLEN], pfx[PREFIX_STRLEN];
		ipaddr_format(&s->ip, ip);
		struct prefix cls, host;
		ipaddr_class(&s->ip, &x->c->classes, &cls);
		prefix_format(&cls, pfx);
		prefix_from_addr(&host, &s->ip, ipaddr_bits(&s->ip));
		json_t *e = json_object();
		json_object_set_new(e, "ip", json_string(ip));
		json_object_set_new(e, "class", json_string(pfx));
		json_object_set_new(e, "count", json_integer(s->count));
		json_object_set_new(e, "role",
				    json_string(s->as_from && s->as_to ? "sender and recipient"
						: s->as_from	       ? "sender"
								       : "recipient"));
		json_object_set_new(e, "first", time_json(s->first));
		json_object_set_new(e, "last", time_json(s->last));
		json_t *cats = json_object();
		for (int c = 1; c < CAT__COUNT; c++)
			if (s->cats[c])
				json_object_set_new(cats, ev_category_name(c), json_integer(s->cats[c]));
		json_object_set_new(e, "categories", cats);
		/* the address's own answer: its state, the decision in force */
		agg_outputs_fn fn = x->outputs;
		if (i >= LOOKUP_MAIL_FULL)
			x->outputs = NULL; /* past the first ones: decisions only */
		json_t *a = lookup_prefix_json(x, &host, ip, true, err);
		x->outputs = fn;
		if (!a) {
			json_decref(e);
			json_decref(arr);
			json_decref(o);
			free(sc);
			return NULL;
		}
		json_t *d = json_object_get(a, "decision");
		bool is_blocked = json_is_true(json_object_get(a, "blocked"));
		blocked += is_blocked;
		json_object_set_new(e, "state", json_incref(json_object_get(a, "state")));
		json_object_set_new(e, "blocked", json_boolean(is_blocked));
		json_object_set_new(e, "summary", json_incref(json_object_get(a, "summary")));
		if (json_is_object(d)) {
			json_t *brief = json_object();
			static const char *const keys[] = {"id",     "prefix", "rule", "response",
							   "reason", "since",  "until"};
			for (size_t k = 0; k < MXW_ARRAY_LEN(keys); k++)
				json_object_set(brief, keys[k], json_object_get(d, keys[k]));
			json_object_set_new(e, "decision", brief);
		} else {
			json_object_set_new(e, "decision", json_null());
		}
		json_decref(a);
		json_array_append_new(arr, e);
	}
	json_object_set_new(o, "blocked", json_boolean(blocked > 0));
	json_object_set_new(o, "senders_blocked", json_integer((json_int_t)blocked));
	json_object_set_new(o, "senders", arr);
	struct buf sum = BUF_INIT;
	if (sc->n == 0)
		buf_printf(&sum, "no stored event of the last %d days has %s as %s", LOOKUP_MAIL_DAYS, q,
			   domain ? "the domain of its envelope sender" : "envelope sender or recipient");
	else
		buf_printf(&sum, "%zu client address%s seen with %s in the last %d days, %zu blocked", sc->n,
			   sc->n == 1 ? "" : "es", q, LOOKUP_MAIL_DAYS, blocked);
	json_object_set_new(o, "summary", json_string(buf_str(&sum)));
	buf_free(&sum);
	free(sc);
	return o;
}
