/*
 * evidence.c - the evidence report for one network: the decisions on or
 * inside a prefix, its activity and the stored log lines of its hosts,
 * oldest first, with our own users' addresses redacted. Reads the
 * database only.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "reports/internal.h"

/* Replace every occurrence of what (n bytes) in s by mask. */
static void redact(struct buf *s, const char *what, size_t n, const char *mask)
{
	if (n < 3) /* a two-letter name would blank parts of every word */
		return;
	struct buf out = BUF_INIT;
	const char *p = buf_str(s), *end = p + s->len;
	bool hit = false;
	while (p < end) {
		const char *q = memmem(p, (size_t)(end - p), what, n);
		if (!q)
			break;
		buf_append(&out, p, (size_t)(q - p));
		buf_appends(&out, mask);
		p = q + n;
		hit = true;
	}
	if (!hit) {
		buf_free(&out);
		return;
	}
	buf_append(&out, p, (size_t)(end - p));
	buf_free(s);
	*s = out;
}

/* An address character: what may stand next to an address without
 * ending it. */
static bool addr_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("._%+-=", c);
}

/*
 * Our recipient to (user@our.domain): its local part is redacted where the
 * whole address stands (to=<user@our.domain>, a reply quoting it), the
 * domain kept (it says which of our domains was targeted). Only the whole
 * address: the sender's own address may share the local part
 * (info@spammer.example mailing info@our.domain), and redacting it would
 * make one sender read as two. An address without a domain is redacted
 * where it stands alone.
 */
static void redact_recipient(struct buf *s, const char *to)
{
	size_t n = strlen(to);
	const char *at = strrchr(to, '@');
	if (n < 3 || (at && at == to))
		return;
	size_t local = at ? (size_t)(at - to) : n;
	struct buf out = BUF_INIT;
	const char *p = buf_str(s), *start = p, *end = p + s->len;
	bool hit = false;
	while (p < end) {
		const char *q = memmem(p, (size_t)(end - p), to, n);
		if (!q)
			break;
		bool alone =
		    (q == start || !addr_char(q[-1])) && (q + n == end || !addr_char(q[n]) || q[n] == '.');
		if (alone && q + n < end && q[n] == '.' && q + n + 1 < end && addr_char(q[n + 1]))
			alone = false; /* user@our.domain.example is another domain */
		if (!alone) {
			buf_append(&out, p, (size_t)(q + 1 - p));
			p = q + 1;
			continue;
		}
		buf_append(&out, p, (size_t)(q - p));
		buf_appends(&out, "[redacted]");
		buf_append(&out, q + local, n - local);
		p = q + n;
		hit = true;
	}
	if (!hit) {
		buf_free(&out);
		return;
	}
	buf_append(&out, p, (size_t)(end - p));
	buf_free(s);
	*s = out;
}

/* A short name (one or two bytes) is redacted only where it stands as a
 * logged value, "=NAME" followed by a delimiter (Postfix sasl_username=,
 * Exim set_id=): replacing it everywhere would blank parts of words. */
static void redact_value(struct buf *s, const char *name)
{
	size_t n = strlen(name);
	struct buf out = BUF_INIT;
	const char *p = buf_str(s), *end = p + s->len;
	bool hit = false;
	while (p < end) {
		const char *q = memchr(p, '=', (size_t)(end - p));
		if (!q)
			break;
		const char *v = q + 1;
		bool match = (size_t)(end - v) >= n && memcmp(v, name, n) == 0 &&
			     (v + n == end || strchr(" ,;)]>\t", v[n]) != NULL);
		buf_append(&out, p, (size_t)(v - p));
		if (match) {
			buf_appends(&out, "[redacted]");
			p = v + n;
			hit = true;
		} else {
			p = v;
		}
	}
	if (!hit) {
		buf_free(&out);
		return;
	}
	buf_append(&out, p, (size_t)(end - p));
	buf_free(s);
	*s = out;
}

/* The line of one stored event, redacted: the recipient's local part where
 * it stands before its '@' (the domain stays: it says which of our domains
 * was targeted) and the AUTH user name. */
json_t *report_event_line(const json_t *ev, bool red)
{
	const char *line = json_string_value(json_object_get(ev, "line"));
	if (!line)
		return NULL;
	struct buf b = BUF_INIT;
	buf_appends(&b, line);
	if (red) {
		const char *to = json_string_value(json_object_get(ev, "to"));
		if (to)
			redact_recipient(&b, to);
		const char *user = json_string_value(json_object_get(ev, "user"));
		if (user && strlen(user) >= 3)
			redact(&b, user, strlen(user), "[redacted]");
		else if (user && *user)
			redact_value(&b, user);
	}
	json_t *s = json_stringn(buf_str(&b), b.len);
	buf_free(&b);
	return s;
}

static json_t *decisions_of(struct db *db, const struct prefix *q, int64_t now)
{
	json_t *h = db_history_json(db, q, now);
	if (!h)
		return NULL;
	json_t *out = json_array();
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(h, "items"), i, d)
	    json_array_append_new(out, report_decision_brief(d));
	json_decref(h);
	return out;
}

json_t *report_evidence_json(struct db *db, const struct prefix *q, int64_t now, int max_lines, bool red,
			     struct buf *err)
{
	if (max_lines < 1)
		max_lines = 1;
	json_t *decs = decisions_of(db, q, now);
	json_t *act = db_recent_counts_json(db, q, 0);
	if (!decs || !act) {
		json_decref(decs), json_decref(act);
		buf_printf(err, "cannot read the database for the report");
		return NULL;
	}
	/* newest first from the database: keep the newest max_lines, print
	 * them oldest first */
	json_t *newest = json_array();
	char cursor[128] = "";
	int64_t total = 0;
	for (bool more = true, first = true; more && json_array_size(newest) < (size_t)max_lines;
	     first = false) {
		int want = max_lines - (int)json_array_size(newest);
		json_t *p = db_events_json(db, q, -1, want > 1000 ? 1000 : want, first ? NULL : cursor);
		if (!p) {
			json_decref(decs), json_decref(act), json_decref(newest);
			buf_printf(err, "cannot read the evidence lines");
			return NULL;
		}
		size_t i;
		json_t *ev;
		json_array_foreach(json_object_get(p, "items"), i, ev)
		{
			json_t *l = report_event_line(ev, red);
			if (l)
				json_array_append_new(newest, l);
		}
		more = report_next_cursor(p, cursor, sizeof cursor);
		json_decref(p);
	}
	json_t *lines = json_array();
	for (size_t i = json_array_size(newest); i > 0; i--)
		json_array_append(lines, json_array_get(newest, i - 1));
	json_decref(newest);
	total = json_integer_value(json_object_get(act, "total"));
	/* the activity counts every stored event: its period starts with the
	 * first of them, not at the epoch */
	json_t *first = json_object_get(act, "first");
	json_object_set_new(act, "since", json_is_string(first) ? json_incref(first) : json_null());

	json_t *r = json_object();
	char t[40], host[256] = "localhost", qs[PREFIX_STRLEN];
	time_format_rfc3339(now * 1000000, false, t);
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	prefix_format(q, qs);
	json_object_set_new(r, "type", json_string("evidence"));
	json_object_set_new(r, "generated", json_string(t));
	json_object_set_new(r, "query", json_string(qs));
	json_object_set_new(r, "reporter", json_string(host));
	json_object_set_new(r, "decisions", decs);
	json_object_set_new(r, "activity", act);
	json_object_set_new(r, "lines", lines);
	json_object_set_new(r, "lines_total", json_integer(total));
	json_object_set_new(r, "redacted", json_boolean(red));
	return r;
}
