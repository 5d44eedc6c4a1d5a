/*
 * api.c - the JSON API under /api/v1/: checks each request's method and
 * parameters (unknown, repeated or malformed parameters get a 400 that
 * names them), calls the function of the module that owns the answer
 * (db/, aggregator/, emitters/) and sends its JSON.
 *
 * Manual block and unblock (POST /blocks, DELETE /blocks/PREFIX) need the
 * bearer token of [web] token_file, a JSON body for POST (a cross-site form
 * cannot send one), and are written to the database with an audit record;
 * the engine picks them up (aggregator_sync). It must never decide what is
 * blocked by itself: safety checks come from the aggregator, rendering from
 * the emitters, counts from the database.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/aggregator.h"
#include "db/db.h"
#include "emitters/emitters.h"
#include "reports/reports.h"
#include "web/web_internal.h"

#define TIME_MAX_RANGE (400LL * 86400)
#define REASON_MAX     200
#define QUERY_MAX      320

/* A request parameter problem: 400 with a message naming it. */
#define BAD(r, ...) web_send_error((r), 400, __VA_ARGS__)

static bool printable_ascii(const char *s, size_t max)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (n >= max || s[n] < ' ' || s[n] > '~')
			return false;
	return true;
}

/* Integer parameter in [lo, hi]; def when absent. */
static int arg_int(struct web_req *r, const char *name, int64_t lo, int64_t hi, int64_t def, int64_t *out,
		   char *msg, size_t msgsz)
{
	const char *s = web_arg(r, name);
	if (!s) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi) {
		snprintf(msg, msgsz, "%s must be an integer from %lld to %lld", name, (long long)lo,
			 (long long)hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* A time: epoch seconds or RFC 3339. */
static int parse_time(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*s && !*end && !errno && v >= 0) {
		*out = v;
		return 0;
	}
	int64_t us;
	size_t n = strlen(s);
	if (time_parse_rfc3339(s, n, &us) == (int)n && n) {
		*out = us / 1000000;
		return 0;
	}
	return -1;
}

static int parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no")) {
		*out = false;
		return 0;
	}
	return -1;
}

static int check_args(struct web_req *r, const char *const *allowed)
{
	char bad[128];
	if (web_args_check(r, allowed, bad, sizeof bad) == 0)
		return 0;
	BAD(r, "%s", bad);
	return -1;
}

static int check_cursor(struct web_req *r, const char **cursor)
{
	*cursor = web_arg(r, "cursor");
	if (*cursor && (!**cursor || !printable_ascii(*cursor, 256))) {
		BAD(r, "cursor: not a cursor returned as \"next\"");
		return -1;
	}
	return 0;
}

/* Send a db answer: NULL is a 400 when the db says the parameters were bad
 * (a cursor), else a 500 with the db's message. */
static enum MHD_Result send_db(struct web_req *r, struct db *db, json_t *v)
{
	if (v) {
		web_db_put(r->w, db);
		return web_send_json(r, 200, v);
	}
	char msg[256];
	str_copy(msg, sizeof msg, db_errmsg(db), strlen(db_errmsg(db)));
	web_db_put(r->w, db);
	if (strstr(msg, "cursor"))
		return BAD(r, "%s", msg);
	return web_send_error(r, 500, "database error: %s", msg);
}

static struct db *get_db(struct web_req *r)
{
	char err[256] = "";
	struct db *db = web_db_get(r->w, err, sizeof err);
	if (!db)
		web_send_error(r, 503, "the database is not available: %s", err);
	return db;
}

/* ------------------------------------------------------------ read-only */

static enum MHD_Result api_summary(struct web_req *r)
{
	static const char *const allowed[] = {NULL};
	if (check_args(r, allowed))
		return MHD_YES;
	struct db *db = get_db(r);
	if (!db)
		return MHD_YES;
	return send_db(r, db, db_summary_json(db, clock_now()));
}

/* The default bucket for a range: about 300 buckets, whole minutes, whole
 * hours past half an hour (the hourly rollups then answer). */
static int64_t auto_step(int64_t range)
{
	int64_t step = (range / 300 + 59) / 60 * 60;
	if (step < 60)
		step = 60;
	if (step > 1800)
		step = (step + 3599) / 3600 * 3600;
	return step;
}

static enum MHD_Result api_timeseries(struct web_req *r)
{
	static const char *const allowed[] = {"metric", "from", "to", "step", "class", NULL};
	if (check_args(r, allowed))
		return MHD_YES;
	const char *metric = web_arg(r, "metric");
	if (!metric)
		metric = "codes";
	if (strcmp(metric, "codes") && strcmp(metric, "categories") && strcmp(metric, "kinds"))
		return BAD(r, "metric must be one of codes, categories, kinds");
	int64_t now = clock_now(), from, to, step;
	const char *s;
	if ((s = web_arg(r, "to"))) {
		if (parse_time(s, &to) < 0)
			return BAD(r, "to: not a time (epoch seconds or RFC 3339)");
	} else {
		to = (now / 60 + 1) * 60;
	}
	if ((s = web_arg(r, "from"))) {
		if (parse_time(s, &from) < 0)
			return BAD(r, "from: not a time (epoch seconds or RFC 3339)");
	} else {
		from = to - 3600;
	}
	if (from >= to)
		return BAD(r, "from must be before to");
	if (to - from > TIME_MAX_RANGE)
		return BAD(r, "the range from..to is longer than 400 days");
	if ((s = web_arg(r, "step"))) {
		if (duration_parse(s, &step) < 0 || step <= 0 || step % 60)
			return BAD(r, "step must be a duration in whole minutes (60, 5m, 1h)");
	} else {
		step = auto_step(to - from);
	}
	if ((to - from + step - 1) / step > 2000)
		return BAD(r, "too many buckets: (to - from) / step must be at most 2000");
	/* class: a prefix (the classes inside it) or an address (its class) */
	struct prefix q, *qp = NULL;
	if ((s = web_arg(r, "class"))) {
		if (prefix_parse(&q, s, strlen(s), true) < 0)
			return BAD(r,
				   "class: not an address or a prefix such as 203.0.113.0/24 (host bits must "
				   "be zero)");
		qp = &q;
	}
	struct db *db = get_db(r);
	if (!db)
		return MHD_YES;
	return send_db(r, db, db_timeseries_class_json(db, metric, from, to, step, qp, &r->w->conf->classes));
}

static int arg_category(struct web_req *r, int *cat)
{
	const char *s = web_arg(r, "category");
	*cat = -1;
	if (!s || !*s)
		return 0;
	int c = ev_category_from_name(s);
	if (c < 0 || c == CAT_NONE) {
		BAD(r, "category: unknown category");
		return -1;
	}
	*cat = c;
	return 0;
}

struct collect {
	struct decision *v;
	size_t n, cap;
	const struct prefix *only; /* NULL: all */
	int64_t *ids;
};

static int collect_cb(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct collect *c = arg;
	if (c->only && prefix_cmp(c->only, &d->prefix) != 0)
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->v = xrealloc(c->v, c->cap * sizeof *c->v);
	}
	c->v[c->n++] = *d;
	return 0;
}

static enum MHD_Result api_top(struct web_req *r)
{
	static const char *const allowed[] = {"by",	  "window", "from",  "to",
					      "category", "kind",   "limit", NULL};
	if (check_args(r, allowed))
		return MHD_YES;
	const char *by = web_arg(r, "by");
	enum scope sc;
	if (!by || !strcmp(by, "class"))
		sc = SCOPE_CLASS;
	else if (!strcmp(by, "ip"))
		sc = SCOPE_IP;
	else
		return BAD(r, "by must be ip or class");
	int64_t window = 3600, limit;
	const char *s = web_arg(r, "window");
	if (s && (duration_parse(s, &window) < 0 || window < 60 || window > TIME_MAX_RANGE))
		return BAD(r, "window must be a duration from 1m to 400d (1h, 24h, 7d)");
	int cat, kind = -1;
	if (arg_category(r, &cat) < 0)
		return MHD_YES;
	if ((s = web_arg(r, "kind")) && *s) {
		kind = ev_kind_from_name(s);
		if (kind < 0 || kind == EV_NONE)
			return BAD(r, "kind: unknown event kind");
	}
	char msg[128];
	if (arg_int(r, "limit", 1, WEB_PAGE_MAX, 20, &limit, msg, sizeof msg) < 0)
		return BAD(r, "%s", msg);
	int64_t now = clock_now(), from = now - window, to = now + 1;
	const char *fs = web_arg(r, "from"), *ts = web_arg(r, "to");
	if ((fs || ts) && web_arg(r, "window"))
		return BAD(r, "window, or from and to: not both");
	if (ts && parse_time(ts, &to) < 0)
		return BAD(r, "to: not a time (epoch seconds or RFC 3339)");
	if (fs && parse_time(fs, &from) < 0)
		return BAD(r, "from: not a time (epoch seconds or RFC 3339)");
	if (ts && !fs)
		from = to - window;
	if (from >= to || to - from > TIME_MAX_RANGE)
		return BAD(r, "from must be before to, at most 400 days apart");
	struct db *db = get_db(r);
	if (!db)
		return MHD_YES;
	json_t *top = db_top_json(db, sc, from, to, kind, cat, (int)limit);
	struct collect act = {0};
	if (top && db_decisions_active(db, now, collect_cb, &act) < 0) {
		json_decref(top);
		top = NULL;
	}
	/* the decision in force on each (or on its class): the table's badge */
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(top, "items"), i, it)
	{
		struct prefix p;
		const char *ps = json_string_value(json_object_get(it, "prefix"));
		const struct decision *best = NULL;
		if (ps && prefix_parse(&p, ps, strlen(ps), false) == 0)
			for (size_t k = 0; k < act.n; k++)
				if (prefix_contains_prefix(&act.v[k].prefix, &p) &&
				    (!best || act.v[k].prefix.len > best->prefix.len))
					best = &act.v[k];
		json_t *d = json_null();
		if (best) {
			char t[PREFIX_STRLEN];
			prefix_format(&best->prefix, t);
			d = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)best->id, "prefix", t,
				      "response", response_name(best->response), "rule", best->rule);
		}
		json_object_set_new(it, "decision", d ? d : json_null());
	}
	free(act.v);
	return send_db(r, db, top);
}

static enum MHD_Result api_blocks_list(struct web_req *r)
{
	static const char *const allowed[] = {"active", "limit", "cursor", NULL};
	if (check_args(r, allowed))
		return MHD_YES;
	bool active = true;
	const char *s = web_arg(r, "active");
	if (s && parse_bool(s, &active) < 0)
		return BAD(r, "active must be true or false");
	int64_t limit;
	char msg[128];
	if (arg_int(r, "limit", 1, WEB_PAGE_MAX, 50, &limit, msg, sizeof msg) < 0)
		return BAD(r, "%s", msg);
	const char *cursor;
	if (check_cursor(r, &cursor) < 0)
		return MHD_YES;
	struct db *db = get_db(r);
	if (!db)
		return MHD_YES;
	return send_db(r, db, db_blocks_json(db, clock_now(), active, (int)limit, cursor));
}

/* What is enforced: the configuration's view (dry run, what no output
 * carries) and the outputs' state as the engine last published it. */
static enum MHD_Result api_status(struct web_req *r)
{
	static const char *const allowed[] = {NULL};
	if (check_args(r, allowed))
		return MHD_YES;
	const struct config *c = r->w->conf;
	json_t *o = json_object();
	json_object_set_new(o, "dry_run", json_boolean(c->rules.dry_run));
	json_object_set_new(o, "outputs_configured", json_integer((json_int_t)c->n_outputs));
	struct strv warn = {0};
	emitters_enforcement_warnings(c, &warn);
	json_t *w = json_array();
	for (size_t i = 0; i < warn.n; i++)
		json_array_append_new(w, json_string(warn.v[i]));
	strv_free(&warn);
	json_object_set_new(o, "warnings", w);
	json_t *outs = NULL;
	pthread_mutex_lock(&r->w->health_mu);
	if (r->w->status_json.len)
		outs = json_loadb(r->w->status_json.data, r->w->status_json.len, 0, NULL);
	pthread_mutex_unlock(&r->w->health_mu);
	json_object_set_new(o, "published", json_boolean(outs != NULL));
	if (!outs) {
		/* not published (no engine, or not started yet): the configured outputs */
		outs = json_array();
		for (size_t i = 0; i < c->n_outputs; i++)
			json_array_append_new(
			    outs, json_pack("{s:s, s:s, s:s}", "name", c->outputs[i].name, "format",
					    c->outputs[i].format ? c->outputs[i].format : "", "path",
					    c->outputs[i].path ? c->outputs[i].path : ""));
	}
	json_object_set_new(o, "outputs", outs);
	return web_send_json(r, 200, o);
}

static enum MHD_Result api_decisions(struct web_req *r)
{
	static const char *const allowed[] = {"active", "since", "rule",   "scope",
					      "manual", "limit", "cursor", NULL};
	if (check_args(r, allowed))
		return MHD_YES;
	struct db_decision_filter f = {
	    .active_only = false, .since = 0, .rule = NULL, .scope = -1, .manual = -1};
	const char *s;
	int64_t now = clock_now();
	if ((s = web_arg(r, "active")) && parse_bool(s, &f.active_only) < 0)
		return BAD(r, "active must be true or false");
	if ((s = web_arg(r, "since"))) {
		int64_t d;
		if (duration_parse(s, &d) < 0 || d <= 0 || d > TIME_MAX_RANGE)
			return BAD(r, "since must be a duration such as 1d or 7d, at most 400d");
		f.since = now - d;
	}
	if ((s = web_arg(r, "rule")) && *s) {
		if (strlen(s) > 31 || !printable_ascii(s, 31))
			return BAD(r, "rule: a rule name such as harvest or manual");
		f.rule = s;
	}
	if ((s = web_arg(r, "scope")) && *s) {
		if (!strcmp(s, "ip"))
			f.scope = SCOPE_IP;
		else if (!strcmp(s, "class"))
			f.scope = SCOPE_CLASS;
		else
			return BAD(r, "scope must be ip or class");
	}
	if ((s = web_arg(r, "manual"))) {
		bool m;
		if (parse_bool(s, &m) < 0)
			return BAD(r, "manual must be true or false");
		f.manual = m ? 1 : 0;
	}
	int64_t limit;
	char msg[128];
	if (arg_int(r, "limit", 1, WEB_PAGE_MAX, 50, &limit, msg, sizeof msg) < 0)
		return BAD(r, "%s", msg);
	const char *cursor;
	if (check_cursor(r, &cursor) < 0)
		return MHD_YES;
	struct db *db = get_db(r);
	if (!db)
		return MHD_YES;
	return send_db(r, db, db_decisions_json(db, now, &f, (int)limit, cursor));
}

struct allow_page {
	json_t *items;
	int64_t now;
};

static int allow_row(void *arg, const struct db_allow *a)
{
	struct allow_page *p = arg;
	json_array_append_new(p->items, db_allow_json(a, p->now));
	return json_array_size(p->items) >= WEB_PAGE_MAX;
}

static enum MHD_Result api_allows_list(struct web_req *r)
{
	static const char *const allowed[] = {"active", NULL};
	if (check_args(r, allowed))
		return MHD_YES;
	bool active = true;
	const char *s = web_arg(r, "active");
	if (s && parse_bool(s, &active) < 0)
		return BAD(r, "active must be true or false");
	struct db *db = get_db(r);
	if (!db)
		return MHD_YES;
	int64_t now = clock_now();
	struct allow_page p = {json_array(), now};
	if (db_allows_list(db, now, active, now - 30 * 86400, allow_row, &p) < 0) {
		json_decref(p.items);
		return send_db(r, db, NULL);
	}
	json_t *o = json_object();
	json_object_set_new(o, "items", p.items);
	return send_db(r, db, o);
}

static enum MHD_Result api_events(struct web_req *r)
{
	static const char *const allowed[] = {"ip", "class", "category", "limit", "cursor", NULL};
	if (check_args(r, allowed))
		return MHD_YES;
	const char *ip = web_arg(r, "ip"), *cls = web_arg(r, "class");
	struct prefix q, *qp = NULL;
	if (ip && cls)
		return BAD(r, "give ip or class, not both");
	if (ip) {
		struct ipaddr a;
		if (ipaddr_parse(&a, ip, strlen(ip)) < 0)
			return BAD(r, "ip: not an IPv4 or IPv6 address");
		prefix_from_addr(&q, &a, ipaddr_bits(&a));
		qp = &q;
	} else if (cls) {
		if (prefix_parse(&q, cls, strlen(cls), true) < 0)
			return BAD(r, "class: not a prefix such as 203.0.113.0/24 (host bits must be zero)");
		qp = &q;
	}
	int cat;
	if (arg_category(r, &cat) < 0)
		return MHD_YES;
	int64_t limit;
	char msg[128];
	if (arg_int(r, "limit", 1, WEB_PAGE_MAX, 50, &limit, msg, sizeof msg) < 0)
		return BAD(r, "%s", msg);
	const char *cursor;
	if (check_cursor(r, &cursor) < 0)
		return MHD_YES;
	struct db *db = get_db(r);
	if (!db)
		return MHD_YES;
	return send_db(r, db, db_events_json(db, qp, cat, (int)limit, cursor));
}

static enum MHD_Result api_audit(struct web_req *r)
{
	static const char *const allowed[] = {"limit", "cursor", NULL};
	if (check_args(r, allowed))
		return MHD_YES;
	int64_t limit;
	char msg[128];
	if (arg_int(r, "limit", 1, WEB_PAGE_MAX, 50, &limit, msg, sizeof msg) < 0)
		return BAD(r, "%s", msg);
	const char *cursor;
	if (check_cursor(r, &cursor) < 0)
		return MHD_YES;
	struct db *db = get_db(r);
	if (!db)
		return MHD_YES;
	return send_db(r, db, db_audit_json(db, (int)limit, cursor));
}

static enum MHD_Result api_lookup(struct web_req *r, const char *q)
{
	static const char *const allowed[] = {NULL};
	if (check_args(r, allowed))
		return MHD_YES;
	size_t n = strlen(q);
	if (!n || n > QUERY_MAX || !printable_ascii(q, QUERY_MAX))
		return BAD(r, "lookup: give an IP address, a prefix, an e-mail address or a domain");
	struct db *db = get_db(r);
	if (!db)
		return MHD_YES;
	struct buf err = BUF_INIT;
	json_t *v = aggregator_lookup_json(db, r->w->conf, q, clock_now(), emitters_lookup_json, &err);
	bool db_error = !v && strncmp(buf_str(&err), "database:", 9) == 0;
	web_db_put(r->w, db);
	enum MHD_Result ret;
	if (v)
		ret = web_send_json(r, 200, v);
	else if (!db_error)
		ret = BAD(r, "lookup: %s", buf_str(&err));
	else
		ret = web_send_error(r, 500, "lookup failed: %s", buf_str(&err));
	buf_free(&err);
	return ret;
}

/* -------------------------------------------------------------- reports */

/* A report in the format asked for: JSON through the API's own encoder,
 * text or a standalone HTML page (its strings escaped by report_render). */
static enum MHD_Result send_report(struct web_req *r, json_t *rep, int format)
{
	if (format == REPORT_JSON)
		return web_send_json(r, 200, rep);
	struct buf out = BUF_INIT;
	report_render(rep, (enum report_format)format, &out);
	json_decref(rep);
	size_t len = out.len;
	return web_send_document(
	    r, format == REPORT_HTML ? "text/html; charset=utf-8" : "text/plain; charset=utf-8",
	    out.data ? out.data : xstrdup(""), len);
}

static enum MHD_Result api_report(struct web_req *r, const char *which)
{
	bool digest = strcmp(which, "digest") == 0;
	if (!digest && strcmp(which, "evidence") != 0)
		return web_send_error(r, 404, "no such report: digest or evidence");
	static const char *const allowed_digest[] = {"since", "from", "to", "top", "format", NULL};
	static const char *const allowed_evidence[] = {"prefix", "lines", "format", NULL};
	if (check_args(r, digest ? allowed_digest : allowed_evidence))
		return MHD_YES;
	const char *fs = web_arg(r, "format");
	int format = fs ? report_format_parse(fs) : REPORT_JSON;
	if (format < 0)
		return BAD(r, "format: json, text or html");
	char msg[128];
	int64_t top, lines, now = clock_now(), from = 0, to = now, since = 86400;
	struct prefix q;
	if (digest) {
		const char *ss = web_arg(r, "since"), *f = web_arg(r, "from"), *t = web_arg(r, "to");
		if (ss && (f || t))
			return BAD(r, "since, or from and to: not both");
		if (ss && (duration_parse(ss, &since) < 0 || since <= 0 || since > 400 * 86400))
			return BAD(r, "since: a duration such as 1d or 12h, at most 400d");
		if (t && !f)
			return BAD(r, "to needs from");
		if (f && parse_time(f, &from) < 0)
			return BAD(r, "from: epoch seconds or RFC 3339");
		if (t && parse_time(t, &to) < 0)
			return BAD(r, "to: epoch seconds or RFC 3339");
		if (!f)
			from = now - since;
		if (from >= to || to - from > 400 * 86400)
			return BAD(r, "the period must be non-empty and at most 400 days");
		if (arg_int(r, "top", 1, 100, 10, &top, msg, sizeof msg) < 0)
			return BAD(r, "%s", msg);
	} else {
		const char *ps = web_arg(r, "prefix");
		if (!ps || !printable_ascii(ps, QUERY_MAX) || prefix_parse(&q, ps, strlen(ps), false) < 0)
			return BAD(r, "prefix: an IP address or a prefix such as 203.0.113.0/24");
		if (arg_int(r, "lines", 1, 1000, 200, &lines, msg, sizeof msg) < 0)
			return BAD(r, "%s", msg);
	}
	struct db *db = get_db(r);
	if (!db)
		return MHD_YES;
	struct buf err = BUF_INIT;
	/* the web shows evidence lines redacted, as a report leaves the house */
	json_t *rep = digest ? report_digest_json(db, from, to, now, (int)top, &err)
			     : report_evidence_json(db, &q, now, (int)lines, true, &err);
	web_db_put(r->w, db);
	enum MHD_Result ret =
	    rep ? send_report(r, rep, format) : web_send_error(r, 500, "report failed: %s", buf_str(&err));
	buf_free(&err);
	return ret;
}

/* ------------------------------------------------------------- blocklist */

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static enum MHD_Result api_blocklist(struct web_req *r)
{
	static const char *const allowed[] = {"format", NULL};
	if (check_args(r, allowed))
		return MHD_YES;
	const char *fmt = web_arg(r, "format");
	if (!fmt)
		fmt = "plain";
	if (!emit_format_find(fmt)) {
		struct buf names = BUF_INIT;
		emit_format_names(&names);
		enum MHD_Result ret = BAD(r, "format must be one of %s", buf_str(&names));
		buf_free(&names);
		return ret;
	}
	struct db *db = get_db(r);
	if (!db)
		return MHD_YES;
	int64_t now = clock_now();
	struct collect c = {0};
	struct prefix_list allows = {0};
	if (db_decisions_active(db, now, collect_cb, &c) < 0 || db_allows_prefixes(db, now, &allows) < 0) {
		free(c.v);
		prefix_list_free(&allows);
		return send_db(r, db, NULL);
	}
	web_db_put(r->w, db);
	struct buf out = BUF_INIT, err = BUF_INIT;
	int rc = emitters_render(fmt, c.v, c.n, r->w->conf, &allows, now, &out, &err);
	free(c.v);
	prefix_list_free(&allows);
	if (rc < 0) {
		enum MHD_Result ret = web_send_error(r, 500, "blocklist: %s", buf_str(&err));
		buf_free(&out);
		buf_free(&err);
		return ret;
	}
	buf_free(&err);
	char etag[40];
	snprintf(etag, sizeof etag, "\"%016llx\"", (unsigned long long)fnv1a(buf_str(&out), out.len));
	const char *inm =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm && strcmp(inm, etag) == 0) {
		buf_free(&out);
		return web_send(r, 304, NULL, "", 0, MHD_RESPMEM_PERSISTENT, etag, "no-cache");
	}
	const char *type = strcmp(fmt, "json") == 0 ? "application/json" : "text/plain; charset=utf-8";
	size_t len = out.len;
	char *data = out.data;
	if (!data) {
		data = xstrdup("");
		len = 0;
	}
	return web_send(r, 200, type, data, len, MHD_RESPMEM_MUST_FREE, etag, "no-cache");
}

/* ------------------------------------------------------ manual decisions */

/* The checks every mutating request passes: a token is configured, the
 * request carries it. Sends the error and returns -1 otherwise. */
static int check_auth(struct web_req *r)
{
	if (!r->w->token) {
		web_send_error(
		    r, 403, "manual blocks through the API are disabled: no [web] token_file is configured");
		return -1;
	}
	if (!web_token_ok(r->w, r)) {
		web_send_error(r, 401, "missing or wrong token (send Authorization: Bearer TOKEN)");
		return -1;
	}
	return 0;
}

static void who_of(struct web_req *r, char *who, size_t whosz)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char ip[IPADDR_STRLEN] = "unknown";
	if (ci && ci->client_addr) {
		struct ipaddr a = {0};
		if (ci->client_addr->sa_family == AF_INET) {
			a.family = IPADDR_V4;
			memcpy(a.a, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, 4);
		} else if (ci->client_addr->sa_family == AF_INET6) {
			a.family = IPADDR_V6;
			memcpy(a.a, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, 16);
		}
		if (a.family)
			ipaddr_format(&a, ip);
	}
	snprintf(who, whosz, "web:%s", ip);
}

static struct db *open_rw(struct web_req *r)
{
	char err[256] = "";
	struct db *db = db_open(r->w->db_path, DB_RW, err, sizeof err);
	if (!db)
		web_send_error(r, 503, "the database cannot be opened for writing: %s", err);
	return db;
}

static bool floor_ok(const struct config *c, const struct prefix *p)
{
	unsigned floor = p->addr.family == IPADDR_V4 ? MXW_MAX(c->v4_floor, EMIT_HARD_FLOOR_V4)
						     : MXW_MAX(c->v6_floor, EMIT_HARD_FLOOR_V6);
	return p->len >= floor;
}

/* The body of POST blocks and POST allows: {"prefix", "duration",
 * "reason"} and, for a block, "response". Sends the error and returns -1
 * when it is not one. */
static int manual_body(struct web_req *r, bool block, struct prefix *p, struct agg_manual *m, char *reason,
		       size_t reasonsz)
{
	const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
		web_send_error(r, 415, "Content-Type must be application/json");
		return -1;
	}
	json_error_t jerr;
	json_t *body =
	    json_loadb(r->body.data ? r->body.data : "", r->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(body)) {
		json_decref(body);
		BAD(r, "the body must be a JSON object: {\"prefix\", \"duration\", \"reason\"}");
		return -1;
	}
	const char *key;
	json_t *val;
	json_object_foreach(body, key, val)
	{
		if (strcmp(key, "prefix") && strcmp(key, "duration") && strcmp(key, "reason") &&
		    (!block || strcmp(key, "response"))) {
			BAD(r, "unknown field '%.64s'", key);
			json_decref(body);
			return -1;
		}
	}
	const char *ps = json_string_value(json_object_get(body, "prefix"));
	const char *rs = json_string_value(json_object_get(body, "reason"));
	json_t *dv = json_object_get(body, "duration");
	json_t *rv = json_object_get(body, "response");
	int64_t dur = 0;
	char problem[200] = "";
	if (!ps || prefix_parse(p, ps, strlen(ps), true) < 0) {
		char why[160] = "not a string";
		if (ps)
			prefix_explain(ps, strlen(ps), true, why, sizeof why);
		snprintf(problem, sizeof problem, "prefix: %s", why);
	} else if (block && !floor_ok(r->w->conf, p)) {
		snprintf(problem, sizeof problem, "prefix is shorter than the [safety] floor");
	} else if (json_is_integer(dv)) {
		dur = (int64_t)json_integer_value(dv); /* a number is seconds, as everywhere in the API */
	} else if (!json_is_string(dv) || duration_parse(json_string_value(dv), &dur) < 0) {
		snprintf(problem, sizeof problem, "duration must be a duration such as 2h, 2d or 1w");
	} else {
		const char *ds = json_string_value(dv);
		size_t dn = strlen(ds);
		if (dn && ds[dn - 1] >= '0' && ds[dn - 1] <= '9')
			snprintf(
			    problem, sizeof problem,
			    "duration '%.20s' has no unit: write 2h, 2d or 1w (a JSON number is seconds)",
			    ds);
	}
	if (!*problem && (dur <= 0 || dur > 365 * 86400))
		snprintf(problem, sizeof problem, "duration must be between 1s and 365d");
	if (!*problem && (!rs || !*rs || strlen(rs) > REASON_MAX))
		snprintf(problem, sizeof problem, "reason must be a non-empty string of at most 200 bytes");
	m->response = RESP_REJECT;
	if (!*problem && rv) {
		int resp = json_is_string(rv) ? response_from_name(json_string_value(rv)) : -1;
		if (resp < 0)
			snprintf(problem, sizeof problem,
				 "response must be one of observe, defer, reject, drop");
		else
			m->response = (enum response)resp;
	}
	if (*problem) {
		json_decref(body);
		BAD(r, "%s", problem);
		return -1;
	}
	snprintf(reason, reasonsz, "%s", rs);
	json_decref(body);
	m->reason = reason;
	m->duration = dur;
	m->now = clock_now();
	return 0;
}

static enum MHD_Result api_block_add(struct web_req *r)
{
	static const char *const allowed[] = {NULL};
	if (check_args(r, allowed) || check_auth(r))
		return MHD_YES;
	struct prefix p;
	struct agg_manual m;
	char reason[REASON_MAX + 1], who[64];
	if (manual_body(r, true, &p, &m, reason, sizeof reason) < 0)
		return MHD_YES;
	who_of(r, who, sizeof who);
	m.who = who;
	struct db *db = open_rw(r);
	if (!db)
		return MHD_YES;
	struct decision d;
	struct buf err = BUF_INIT;
	int rc = aggregator_manual_block(db, r->w->agg, &p, &m, &d, &err);
	db_close(db);
	if (rc < 0) {
		enum MHD_Result ret = rc == -2 ? web_send_error(r, 403, "%s", buf_str(&err))
					       : web_send_error(r, 500, "%s", buf_str(&err));
		buf_free(&err);
		return ret;
	}
	buf_free(&err);
	web_cache_clear(r->w->cache);
	char pfx[PREFIX_STRLEN], since[TIME_STRLEN], until[TIME_STRLEN];
	prefix_format(&d.prefix, pfx);
	time_format_rfc3339(d.since * 1000000, false, since);
	time_format_rfc3339(d.until * 1000000, false, until);
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(d.id));
	json_object_set_new(o, "prefix", json_string(pfx));
	json_object_set_new(o, "scope", json_string(scope_name(d.scope)));
	json_object_set_new(o, "response", json_string(response_name(d.response)));
	json_object_set_new(o, "since", json_string(since));
	json_object_set_new(o, "until", json_string(until));
	json_object_set_new(o, "reason", json_string(d.reason));
	json_object_set_new(o, "created_by", json_string(who));
	/* the same prefix blocked by hand again: that block lasts longer */
	json_object_set_new(o, "extended", json_boolean(rc == 1));
	return web_send_json(r, rc == 1 ? 200 : 201, o);
}

static enum MHD_Result api_block_delete(struct web_req *r, const char *ps, bool allow)
{
	static const char *const allowed[] = {"reason", NULL};
	if (check_args(r, allowed) || check_auth(r))
		return MHD_YES;
	struct prefix p;
	if (prefix_parse(&p, ps, strlen(ps), true) < 0)
		return BAD(r, "not a prefix: write it with its slash, e.g. /api/v1/%s/203.0.113.0/24",
			   allow ? "allows" : "blocks");
	const char *reason = web_arg(r, "reason");
	if (!reason || !*reason)
		reason = allow ? "allow ended through the API" : "unblocked through the API";
	if (strlen(reason) > REASON_MAX)
		return BAD(r, "reason must be at most 200 bytes");
	char who[64];
	who_of(r, who, sizeof who);
	struct agg_manual m = {.who = who, .reason = reason, .now = clock_now()};
	struct db *db = open_rw(r);
	if (!db)
		return MHD_YES;
	struct buf err = BUF_INIT;
	int64_t ids[1000];
	size_t n = 0;
	int rc = allow ? aggregator_manual_unallow(db, &p, &m, &n, &err)
		       : aggregator_manual_unblock(db, &p, &m, ids, MXW_ARRAY_LEN(ids), &n, NULL, &err);
	db_close(db);
	if (rc < 0) {
		enum MHD_Result ret = web_send_error(r, 500, "%s", buf_str(&err));
		buf_free(&err);
		return ret;
	}
	buf_free(&err);
	char pfx[PREFIX_STRLEN];
	prefix_format(&p, pfx);
	if (n == 0)
		return web_send_error(r, 404, "no active %s on %s", allow ? "allow" : "block", pfx);
	web_cache_clear(r->w->cache);
	json_t *o = json_object();
	json_object_set_new(o, "prefix", json_string(pfx));
	if (allow) {
		json_object_set_new(o, "ended", json_integer((json_int_t)n));
	} else {
		json_t *ended = json_array();
		for (size_t i = 0; i < n && i < MXW_ARRAY_LEN(ids); i++)
			json_array_append_new(ended, json_integer(ids[i]));
		json_object_set_new(o, "ended", ended);
	}
	return web_send_json(r, 200, o);
}

static enum MHD_Result api_allow_add(struct web_req *r)
{
	static const char *const allowed[] = {NULL};
	if (check_args(r, allowed) || check_auth(r))
		return MHD_YES;
	struct prefix p;
	struct agg_manual m;
	char reason[REASON_MAX + 1], who[64];
	if (manual_body(r, false, &p, &m, reason, sizeof reason) < 0)
		return MHD_YES;
	who_of(r, who, sizeof who);
	m.who = who;
	struct db *db = open_rw(r);
	if (!db)
		return MHD_YES;
	struct db_allow al;
	size_t over = 0;
	struct buf err = BUF_INIT;
	int rc = aggregator_manual_allow(db, &p, &m, &al, &over, &err);
	db_close(db);
	if (rc < 0) {
		enum MHD_Result ret = web_send_error(r, 500, "%s", buf_str(&err));
		buf_free(&err);
		return ret;
	}
	buf_free(&err);
	web_cache_clear(r->w->cache);
	al.reason = reason;
	al.created_by = who;
	json_t *o = db_allow_json(&al, m.now);
	json_object_set_new(o, "extended", json_boolean(rc == 1));
	json_object_set_new(o, "overridden", json_integer((json_int_t)over));
	return web_send_json(r, rc == 1 ? 200 : 201, o);
}

/* ---------------------------------------------------------------- router */

static enum MHD_Result method_not_allowed(struct web_req *r, const char *allow)
{
	return web_send_error(r, 405, "method not allowed here (allowed: %s)", allow);
}

static bool is_get(const struct web_req *r)
{
	return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
}

/* GET answers that depend only on the URL and the database: served from
 * the micro-cache (at most a second old). */
static bool cacheable(const char *path)
{
	static const char *const names[] = {"summary", "timeseries", "top",	  "events",
					    "blocks",  "audit",	     "decisions", "allows"};
	for (size_t i = 0; i < MXW_ARRAY_LEN(names); i++)
		if (strcmp(path, names[i]) == 0)
			return true;
	return strncmp(path, "lookup/", 7) == 0;
}

enum MHD_Result web_api(struct web_req *r, const char *path)
{
	if (is_get(r) && cacheable(path)) {
		struct buf hit = BUF_INIT;
		if (web_cache_begin(r->w->cache, r, &hit) && hit.len)
			return web_send(r, 200, "application/json", hit.data, hit.len, MHD_RESPMEM_MUST_FREE,
					NULL, NULL);
		buf_free(&hit);
	}
	static const struct {
		const char *name;
		enum MHD_Result (*fn)(struct web_req *);
	} gets[] = {
	    {"summary", api_summary}, {"timeseries", api_timeseries}, {"top", api_top},
	    {"events", api_events},   {"blocklist", api_blocklist},   {"audit", api_audit},
	    {"stream", web_stream},   {"decisions", api_decisions},   {"status", api_status},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(gets); i++)
		if (strcmp(path, gets[i].name) == 0)
			return is_get(r) ? gets[i].fn(r) : method_not_allowed(r, "GET");
	if (strcmp(path, "blocks") == 0) {
		if (is_get(r))
			return api_blocks_list(r);
		if (strcmp(r->method, "POST") == 0)
			return api_block_add(r);
		return method_not_allowed(r, "GET, POST");
	}
	if (strncmp(path, "blocks/", 7) == 0) {
		if (strcmp(r->method, "DELETE") == 0)
			return api_block_delete(r, path + 7, false);
		return method_not_allowed(r, "DELETE");
	}
	if (strcmp(path, "allows") == 0) {
		if (is_get(r))
			return api_allows_list(r);
		if (strcmp(r->method, "POST") == 0)
			return api_allow_add(r);
		return method_not_allowed(r, "GET, POST");
	}
	if (strncmp(path, "allows/", 7) == 0) {
		if (strcmp(r->method, "DELETE") == 0)
			return api_block_delete(r, path + 7, true);
		return method_not_allowed(r, "DELETE");
	}
	if (strncmp(path, "lookup/", 7) == 0)
		return is_get(r) ? api_lookup(r, path + 7) : method_not_allowed(r, "GET");
	if (strncmp(path, "report/", 7) == 0)
		return is_get(r) ? api_report(r, path + 7) : method_not_allowed(r, "GET");
	return web_send_error(r, 404,
			      "no such endpoint: see /api/v1/ (summary, status, timeseries, top, blocks, "
			      "decisions, allows, lookup/Q, events, blocklist, stream, audit, report/digest, "
			      "report/evidence)");
}
