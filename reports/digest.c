/*
 * digest.c - the abuse digest of a period, from the rollups (traffic by
 * code, category and kind), the decisions table (what was decided in the
 * period) and the hourly top senders. Reads the database only.
 */
#include <string.h>

#include "reports/internal.h"

int report_format_parse(const char *s)
{
	if (strcmp(s, "text") == 0)
		return REPORT_TEXT;
	if (strcmp(s, "json") == 0)
		return REPORT_JSON;
	if (strcmp(s, "html") == 0)
		return REPORT_HTML;
	return -1;
}

static json_t *str_time(int64_t secs)
{
	char t[40];
	time_format_rfc3339(secs * 1000000, false, t);
	return json_string(t);
}

/* {series name: sum over the buckets} of one timeseries metric */
static json_t *sums(struct db *db, const char *metric, int64_t from, int64_t to, int64_t step, int64_t *total)
{
	json_t *ts = db_timeseries_json(db, metric, from, to, step);
	if (!ts)
		return NULL;
	json_t *out = json_object();
	const char *k;
	json_t *v;
	int64_t all = 0;
	json_object_foreach(json_object_get(ts, "series"), k, v)
	{
		int64_t n = 0;
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x) n += json_integer_value(x);
		if (n) {
			json_object_set_new(out, k, json_integer(n));
			all += n;
		}
	}
	json_decref(ts);
	if (total)
		*total = all;
	return out;
}

/* The buckets for [from, to): minutes up to 2000 of them, else hours (or
 * multiples of an hour, at most 2000 buckets). */
static void period_grid(int64_t *from, int64_t *to, int64_t *step)
{
	int64_t f = *from - (*from % 60 + 60) % 60;
	int64_t t = *to + (60 - (*to % 60 + 60) % 60) % 60;
	if ((t - f) / 60 <= 2000) {
		*from = f, *to = t, *step = 60;
		return;
	}
	f = *from - (*from % 3600 + 3600) % 3600;
	t = *to + (3600 - (*to % 3600 + 3600) % 3600) % 3600;
	int64_t s = 3600;
	while ((t - f) / s > 2000)
		s += 3600;
	t = f + (t - f + s - 1) / s * s;
	*from = f, *to = t, *step = s;
}

static json_t *period_totals(struct db *db, int64_t from, int64_t to, int64_t step)
{
	int64_t events = 0;
	json_t *codes = sums(db, "codes", from, to, step, NULL);
	json_t *cats = sums(db, "categories", from, to, step, NULL);
	json_t *kinds = sums(db, "kinds", from, to, step, &events);
	if (!codes || !cats || !kinds) {
		json_decref(codes);
		json_decref(cats);
		json_decref(kinds);
		return NULL;
	}
	json_t *o = json_object();
	json_object_set_new(o, "from", str_time(from));
	json_object_set_new(o, "to", str_time(to));
	json_object_set_new(o, "events", json_integer(events));
	json_object_set_new(o, "kinds", kinds);
	json_object_set_new(o, "codes", codes);
	json_object_set_new(o, "categories", cats);
	return o;
}

static void bump(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k ? k : "?");
	json_object_set_new(o, k ? k : "?", json_integer(json_integer_value(v) + 1));
}

/* Decisions whose since lies in [from, to), newest first: the listing is
 * newest first by since, so it stops at the first one before from. */
static json_t *period_decisions(struct db *db, int64_t from, int64_t to, int64_t now, int top)
{
	char f[40], t[40];
	time_format_rfc3339(from * 1000000, false, f);
	time_format_rfc3339(to * 1000000, false, t);
	json_t *o = json_object();
	json_t *by_rule = json_object(), *by_scope = json_object(), *by_resp = json_object();
	json_t *items = json_array();
	int64_t n = 0, manual = 0;
	char cursor[128] = "";
	bool more = true;
	for (int page = 0; more && page < 1000; page++) {
		json_t *p = db_blocks_json(db, now, false, 1000, page ? cursor : NULL);
		if (!p) {
			json_decref(o), json_decref(by_rule), json_decref(by_scope), json_decref(by_resp);
			json_decref(items);
			return NULL;
		}
		size_t i;
		json_t *d;
		json_array_foreach(json_object_get(p, "items"), i, d)
		{
			const char *since = json_string_value(json_object_get(d, "since"));
			if (!since || strcmp(since, t) >= 0)
				continue;
			if (strcmp(since, f) < 0) {
				more = false;
				break;
			}
			n++;
			bool m = json_is_true(json_object_get(d, "manual"));
			manual += m;
			bump(by_rule, json_string_value(json_object_get(d, "rule")));
			bump(by_scope, json_string_value(json_object_get(d, "scope")));
			bump(by_resp, json_string_value(json_object_get(d, "response")));
			if (json_array_size(items) < (size_t)top)
				json_array_append_new(items, report_decision_brief(d));
		}
		if (more)
			more = report_next_cursor(p, cursor, sizeof cursor);
		json_decref(p);
	}
	json_object_set_new(o, "new", json_integer(n));
	json_object_set_new(o, "manual", json_integer(manual));
	json_object_set_new(o, "by_rule", by_rule);
	json_object_set_new(o, "by_scope", by_scope);
	json_object_set_new(o, "by_response", by_resp);
	json_object_set_new(o, "items", items);
	return o;
}

static json_t *top_items(struct db *db, enum scope by, int64_t from, int64_t to, int kind, int top)
{
	json_t *t = db_top_json(db, by, from, to, kind, -1, top);
	if (!t)
		return NULL;
	json_t *items = json_incref(json_object_get(t, "items"));
	json_decref(t);
	return items ? items : json_array();
}

json_t *report_digest_json(struct db *db, int64_t from, int64_t to, int64_t now, int top, struct buf *err)
{
	if (from >= to) {
		buf_printf(err, "the period is empty (from must be before to)");
		return NULL;
	}
	int64_t f = from, t = to, step;
	period_grid(&f, &t, &step);
	json_t *r = json_object();
	json_object_set_new(r, "type", json_string("digest"));
	json_object_set_new(r, "generated", str_time(now));
	json_object_set_new(r, "from", str_time(f));
	json_object_set_new(r, "to", str_time(t));
	json_t *cur = period_totals(db, f, t, step);
	json_t *prev = period_totals(db, f - (t - f), f, step);
	json_t *dec = period_decisions(db, f, t, now, top);
	json_t *act = db_summary_json(db, now);
	json_t *tip = top_items(db, SCOPE_IP, f, t, -1, top);
	json_t *tcl = top_items(db, SCOPE_CLASS, f, t, -1, top);
	json_t *tcc = top_items(db, SCOPE_CLASS, f, t, EV_CONNECT, top);
	if (!cur || !prev || !dec || !act || !tip || !tcl || !tcc) {
		buf_printf(err, "cannot read the database for the digest");
		json_decref(cur), json_decref(prev), json_decref(dec), json_decref(act);
		json_decref(tip), json_decref(tcl), json_decref(tcc), json_decref(r);
		return NULL;
	}
	json_object_set_new(r, "totals", cur);
	json_object_set_new(r, "previous", prev);
	json_object_set_new(r, "decisions", dec);
	json_object_set(r, "active_now", json_object_get(act, "blocks_active"));
	json_decref(act);
	json_object_set_new(r, "top_ips", tip);
	json_object_set_new(r, "top_classes", tcl);
	json_object_set_new(r, "top_connecting_classes", tcc);
	return r;
}
