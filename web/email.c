/*
 * email.c - the lookup page's answer for an e-mail address: which client
 * IPs used it as envelope sender or recipient in the stored evidence events
 * of the last WEB_EMAIL_DAYS days (scanned newest first, range by range), how often, and whether a decision
 * is in force on each of them.
 *
 * It reads the events through db_events_scan() and compares addresses
 * itself, bounded by WEB_EMAIL_SCAN_MAX rows and WEB_EMAIL_SCAN_US of time
 * (the answer says when it was cut short): db/ has no index by address yet.
 * When it gets one, this file should become one call to it. It must never
 * decide anything: "blocked" is read from the stored decisions.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/db.h"
#include "web/web_internal.h"

#define WEB_EMAIL_DAYS	   7
#define WEB_EMAIL_SCAN_MAX 3000000
#define WEB_EMAIL_SCAN_US  (3 * 1000000LL)
#define WEB_EMAIL_SENDERS  200

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
	int64_t scanned, matched;
	int64_t t0;
	bool truncated;
	struct sender s[WEB_EMAIL_SENDERS];
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

static int scan_cb(void *arg, int64_t id, const struct event *ev)
{
	struct scan *sc = arg;
	if (ev->ts_us >= sc->hi_us)
		return 2; /* past this range: the newer ones were scanned already */
	sc->scanned++;
	if ((sc->scanned & 4095) == 0 &&
	    (sc->scanned >= WEB_EMAIL_SCAN_MAX || clock_mono_us() - sc->t0 > WEB_EMAIL_SCAN_US)) {
		sc->truncated = true;
		return 1;
	}
	bool f = addr_eq(ev->from, sc->addr, sc->addr_len), t = addr_eq(ev->to, sc->addr, sc->addr_len);
	if (!(f || t) || !ev->has_ip)
		return 0;
	sc->matched++;
	struct sender *s = NULL;
	for (size_t i = 0; i < sc->n; i++)
		if (ipaddr_cmp(&sc->s[i].ip, &ev->ip) == 0)
			s = &sc->s[i];
	if (!s) {
		if (sc->n == WEB_EMAIL_SENDERS) {
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

struct actives {
	struct decision *v;
	size_t n, cap;
};

static int active_cb(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct actives *a = arg;
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
	}
	a->v[a->n++] = *d;
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

bool web_email_valid(const char *q)
{
	const char *at = strchr(q, '@');
	size_t n = strlen(q);
	if (!at || at == q || strchr(at + 1, '@') || !at[1] || n > 320 || at - q > 64)
		return false;
	for (const char *p = q; *p; p++)
		if (*p <= ' ' || *p > '~' || *p == '<' || *p == '>' || *p == '"' || *p == '\\')
			return false;
	return true;
}

json_t *web_email_lookup(struct db *db, const char *addr, const struct class_conf *cc, int64_t now,
			 struct buf *err)
{
	struct scan *sc = xcalloc(1, sizeof *sc);
	sc->addr = addr;
	sc->addr_len = strlen(addr);
	sc->t0 = clock_mono_us();
	struct actives act = {0};
	/* newest first, range by range, so that a scan cut short by the
	 * budget has looked at the most recent events */
	static const int64_t bounds[] = {0, 3600, 6 * 3600, 86400, WEB_EMAIL_DAYS * 86400};
	int rc = 0;
	for (size_t i = 1; i < MXW_ARRAY_LEN(bounds) && !sc->truncated && rc >= 0; i++) {
		sc->hi_us = i == 1 ? INT64_MAX : (now - bounds[i - 1]) * 1000000;
		rc = db_events_scan(db, (now - bounds[i]) * 1000000, scan_cb, sc);
	}
	if (rc < 0 || db_decisions_active(db, now, active_cb, &act) < 0) {
		buf_appends(err, db_errmsg(db));
		free(sc);
		free(act.v);
		return NULL;
	}
	qsort(sc->s, sc->n, sizeof sc->s[0], by_count);
	json_t *o = json_object();
	json_object_set_new(o, "query", json_string(addr));
	json_object_set_new(o, "kind", json_string("email"));
	json_object_set_new(o, "days", json_integer(WEB_EMAIL_DAYS));
	json_object_set_new(o, "scanned", json_integer(sc->scanned));
	json_object_set_new(o, "truncated", json_boolean(sc->truncated));
	json_object_set_new(o, "matched", json_integer(sc->matched));
	json_object_set_new(o, "other_senders_events", json_integer(sc->others));
	json_t *arr = json_array();
	bool any_blocked = false;
	for (size_t i = 0; i < sc->n; i++) {
		struct sender *s = &sc->s[i];
		char ip[IPADDR_STRLEN], pfx[PREFIX_STRLEN];
		ipaddr_format(&s->ip, ip);
		struct prefix cls;
		ipaddr_class(&s->ip, cc, &cls);
		prefix_format(&cls, pfx);
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
		const struct decision *best = NULL;
		for (size_t k = 0; k < act.n; k++)
			if (prefix_contains(&act.v[k].prefix, &s->ip) &&
			    (!best || act.v[k].prefix.len > best->prefix.len))
				best = &act.v[k];
		json_object_set_new(e, "blocked", json_boolean(best != NULL));
		if (best) {
			any_blocked = true;
			json_t *d = json_object();
			prefix_format(&best->prefix, pfx);
			json_object_set_new(d, "prefix", json_string(pfx));
			json_object_set_new(d, "rule", json_string(best->rule));
			json_object_set_new(d, "response", json_string(response_name(best->response)));
			struct buf rb = BUF_INIT; /* a byte that is not UTF-8 as U+FFFD, as everywhere */
			utf8_append_clean(&rb, best->reason, strlen(best->reason));
			json_object_set_new(d, "reason", json_stringn(buf_str(&rb), rb.len));
			buf_free(&rb);
			json_object_set_new(d, "until", time_json(best->until));
			json_object_set_new(e, "decision", d);
		} else {
			json_object_set_new(e, "decision", json_null());
		}
		json_array_append_new(arr, e);
	}
	json_object_set_new(o, "blocked", json_boolean(any_blocked));
	json_object_set_new(o, "senders", arr);
	free(sc);
	free(act.v);
	return o;
}
