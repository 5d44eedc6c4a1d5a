/*
 * render.c - a report (digest or evidence) as JSON, plain text or a
 * standalone HTML page. Strings from the database may hold attacker text
 * (log lines, HELO names and addresses inside reasons): plain text shows
 * them with utf8_append_text() (controls and bidi characters masked, a
 * byte that is not UTF-8 as U+FFFD, as in every sink), HTML escapes them;
 * the page has no script and loads nothing.
 */
#include <string.h>

#include "reports/reports.h"

/* A text table being built: its cells, as the sink shows them, so that
 * each column is as wide as its widest cell (an IPv6 prefix never runs
 * into the next column) and every table has its headings. */
struct ttable {
	const char *const *cols;
	size_t ncols;
	struct strv cells; /* row-major, ncols per row */
};

struct out {
	struct buf *b;
	bool html;
	struct ttable t;
};

static const char *js(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static json_int_t ji(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* untrusted text, escaped for the sink */
static void put(struct out *o, const char *s)
{
	if (!o->html) {
		utf8_append_text(o->b, s, strlen(s));
		return;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '&': buf_appends(o->b, "&amp;"); break;
		case '<': buf_appends(o->b, "&lt;"); break;
		case '>': buf_appends(o->b, "&gt;"); break;
		case '"': buf_appends(o->b, "&quot;"); break;
		case '\'': buf_appends(o->b, "&#39;"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				buf_appendc(o->b, '?');
			else
				buf_appendc(o->b, (char)*p);
		}
	}
}

static void heading(struct out *o, const char *s)
{
	if (o->html) {
		buf_appends(o->b, "<h2>");
		put(o, s);
		buf_appends(o->b, "</h2>\n");
	} else {
		buf_printf(o->b, "\n%s\n", s);
		for (size_t i = 0; i < strlen(s); i++)
			buf_appendc(o->b, '-');
		buf_appendc(o->b, '\n');
	}
}

/* "name N, name N" of a {name: N} object, largest first */
static void counts(struct out *o, const json_t *obj)
{
	size_t n = json_object_size(obj), k = 0;
	if (!n) {
		buf_appends(o->b, "none");
		return;
	}
	const char **keys = xcalloc(n, sizeof *keys);
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) keys[k++] = key;
	for (size_t i = 1; i < n; i++) /* insertion sort by count, descending */
		for (size_t j = i; j > 0 && ji(obj, keys[j]) > ji(obj, keys[j - 1]); j--) {
			const char *t = keys[j];
			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_appends(o->b, ", ");
		put(o, keys[i]);
		buf_printf(o->b, " %lld", (long long)ji(obj, keys[i]));
	}
	free(keys);
}

static void change(struct out *o, json_int_t now, json_int_t before)
{
	if (before > 0)
		buf_printf(o->b, " (%+.0f%% on the period before: %lld)",
			   100.0 * (double)(now - before) / (double)before, (long long)before);
	else
		buf_printf(o->b, " (the period before: %lld)", (long long)before);
}

static void para_open(struct out *o)
{
	if (o->html)
		buf_appends(o->b, "<p>");
}

static void para_close(struct out *o)
{
	buf_appends(o->b, o->html ? "</p>\n" : "\n");
}

/* Characters of valid UTF-8 text (what put() writes): the bytes that do
 * not continue a sequence. */
static size_t text_width(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xc0) != 0x80;
	return k;
}

static void table_open(struct out *o, const char *const *cols, size_t n)
{
	if (!o->html) {
		strv_free(&o->t.cells);
		o->t.cols = cols;
		o->t.ncols = n;
		return;
	}
	buf_appends(o->b, "<table><tr>");
	for (size_t i = 0; i < n; i++)
		buf_printf(o->b, "<th>%s</th>", cols[i]);
	buf_appends(o->b, "</tr>\n");
}

/* Text: the headings, a rule, then the rows, every column but the last
 * padded to its widest cell (counted in characters, not bytes). */
static void table_close(struct out *o)
{
	if (o->html) {
		buf_appends(o->b, "</table>\n");
		return;
	}
	size_t nc = o->t.ncols, nrows = nc ? o->t.cells.n / nc : 0;
	size_t *w = xcalloc(nc ? nc : 1, sizeof *w);
	for (size_t c = 0; c < nc; c++)
		w[c] = text_width(o->t.cols[c], strlen(o->t.cols[c]));
	for (size_t r = 0; r < nrows; r++)
		for (size_t c = 0; c < nc; c++) {
			const char *x = o->t.cells.v[r * nc + c];
			size_t k = text_width(x, strlen(x));
			if (k > w[c])
				w[c] = k;
		}
	for (size_t r = 0; r < nrows + 2; r++) {
		buf_appends(o->b, "  ");
		for (size_t c = 0; c < nc; c++) {
			const char *x = r == 0	 ? o->t.cols[c]
					: r == 1 ? NULL
						 : o->t.cells.v[(r - 2) * nc + c];
			size_t k;
			if (x) {
				buf_appends(o->b, x);
				k = text_width(x, strlen(x));
			} else {
				for (k = 0; k < w[c]; k++)
					buf_appendc(o->b, '-');
			}
			if (c + 1 < nc)
				for (; k < w[c] + 2; k++)
					buf_appendc(o->b, ' ');
		}
		while (o->b->len && o->b->data[o->b->len - 1] == ' ')
			o->b->data[--o->b->len] = '\0';
		buf_appendc(o->b, '\n');
	}
	free(w);
	strv_free(&o->t.cells);
}

static void cell(struct out *o, const char *s, int width, bool last)
{
	(void)width;
	if (o->html) {
		buf_appends(o->b, "<td>");
		put(o, s);
		buf_appends(o->b, last ? "</td></tr>\n" : "</td>");
		return;
	}
	struct buf c = BUF_INIT;
	struct out tmp = {&c, false, {0}};
	put(&tmp, s);
	strv_add(&o->t.cells, buf_str(&c));
	buf_free(&c);
}

static void row_open(struct out *o)
{
	if (o->html)
		buf_appends(o->b, "<tr>");
}

static void top_table(struct out *o, const char *title, const json_t *items)
{
	heading(o, title);
	if (!json_array_size(items)) {
		para_open(o);
		buf_appends(o->b, "none");
		para_close(o);
		return;
	}
	static const char *const cols[] = {"sender", "events", "categories"};
	table_open(o, cols, 3);
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		char n[32];
		snprintf(n, sizeof n, "%lld", (long long)ji(it, "count"));
		row_open(o);
		cell(o, js(it, "prefix"), 40, false);
		cell(o, n, 8, false);
		struct buf c = BUF_INIT;
		struct out tmp = {&c, false, {0}};
		counts(&tmp, json_object_get(it, "categories"));
		cell(o, buf_str(&c), 0, true);
		buf_free(&c);
	}
	table_close(o);
}

static void decision_rows(struct out *o, const json_t *items, bool with_active)
{
	static const char *const cols[] = {"prefix", "rule", "response", "since", "until", "why"};
	table_open(o, cols, 6);
	size_t i;
	json_t *d;
	json_array_foreach(items, i, d)
	{
		row_open(o);
		cell(o, js(d, "prefix"), 40, false);
		cell(o, js(d, "rule"), 8, false);
		cell(o, js(d, "response"), 8, false);
		cell(o, js(d, "since"), 20, false);
		char until[64];
		snprintf(until, sizeof until, "%s%s", js(d, "until"),
			 with_active && json_is_true(json_object_get(d, "active")) ? " (in force)" : "");
		cell(o, until, 32, false);
		cell(o, js(d, "reason"), 0, true);
	}
	table_close(o);
}

static void page_open(struct out *o, const char *title)
{
	if (o->html) {
		buf_appends(o->b,
			    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
			    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
			    "style-src 'unsafe-inline'\">\n<title>");
		put(o, title);
		buf_appends(
		    o->b,
		    "</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:80em}"
		    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;"
		    "text-align:left;vertical-align:top;overflow-wrap:anywhere}pre{background:#f6f6f6;"
		    "padding:1em;white-space:pre-wrap;overflow-wrap:anywhere}</style>\n</head><body>\n<h1>");
		put(o, title);
		buf_appends(o->b, "</h1>\n");
	} else {
		put(o, title);
		buf_appendc(o->b, '\n');
		for (size_t i = 0; i < strlen(title); i++)
			buf_appendc(o->b, '=');
		buf_appendc(o->b, '\n');
	}
}

static void page_close(struct out *o)
{
	if (o->html)
		buf_appends(o->b, "</body></html>\n");
}

static void render_digest(struct out *o, const json_t *r)
{
	const json_t *cur = json_object_get(r, "totals"), *prev = json_object_get(r, "previous");
	const json_t *dec = json_object_get(r, "decisions");
	page_open(o, "mxwarden abuse digest");
	para_open(o);
	buf_appends(o->b, "Period ");
	put(o, js(r, "from"));
	buf_appends(o->b, " to ");
	put(o, js(r, "to"));
	buf_appends(o->b, " (UTC), generated ");
	put(o, js(r, "generated"));
	buf_appendc(o->b, '.');
	para_close(o);

	heading(o, "Traffic");
	para_open(o);
	buf_printf(o->b, "Events: %lld", (long long)ji(cur, "events"));
	change(o, ji(cur, "events"), ji(prev, "events"));
	buf_appends(o->b, o->html ? "<br>\nBy kind: " : "\nBy kind: ");
	counts(o, json_object_get(cur, "kinds"));
	buf_appends(o->b, o->html ? "<br>\nBy reply code: " : "\nBy reply code: ");
	counts(o, json_object_get(cur, "codes"));
	buf_appends(o->b, o->html ? "<br>\nBy category: " : "\nBy category: ");
	counts(o, json_object_get(cur, "categories"));
	para_close(o);

	heading(o, "Decisions");
	para_open(o);
	buf_printf(o->b, "%lld new (%lld manual); %lld in force now.", (long long)ji(dec, "new"),
		   (long long)ji(dec, "manual"), (long long)ji(r, "active_now"));
	buf_appends(o->b, o->html ? "<br>\nBy rule: " : "\nBy rule: ");
	counts(o, json_object_get(dec, "by_rule"));
	buf_appends(o->b, o->html ? "<br>\nBy scope: " : "\nBy scope: ");
	counts(o, json_object_get(dec, "by_scope"));
	buf_appends(o->b, o->html ? "<br>\nBy response: " : "\nBy response: ");
	counts(o, json_object_get(dec, "by_response"));
	para_close(o);
	if (json_array_size(json_object_get(dec, "items"))) {
		heading(o, "Newest decisions");
		decision_rows(o, json_object_get(dec, "items"), false);
	}
	top_table(o, "Top senders by evidence events (rejections, auth failures, protocol, lost)",
		  json_object_get(r, "top_ips"));
	top_table(o, "Top IP classes by evidence events", json_object_get(r, "top_classes"));
	top_table(o, "Top IP classes by connections", json_object_get(r, "top_connecting_classes"));
	const json_t *nc = json_object_get(r, "abuse_no_contact");
	if (json_is_array(nc)) {
		heading(o, "Worth an abuse report, but no contact known");
		if (!json_array_size(nc)) {
			para_open(o);
			buf_appends(o->b, "none");
			para_close(o);
		} else {
			static const char *const cols[] = {"prefix", "rule", "response", "since", "why"};
			table_open(o, cols, 5);
			size_t i;
			json_t *d;
			json_array_foreach(nc, i, d)
			{
				row_open(o);
				cell(o, js(d, "prefix"), 40, false);
				cell(o, js(d, "rule"), 8, false);
				cell(o, js(d, "response"), 8, false);
				cell(o, js(d, "since"), 20, false);
				cell(o, js(d, "reason"), 0, true);
			}
			table_close(o);
		}
	}
	page_close(o);
}

static void render_evidence(struct out *o, const json_t *r)
{
	const json_t *act = json_object_get(r, "activity");
	struct buf title = BUF_INIT;
	buf_printf(&title, "Abuse report for %s", js(r, "query"));
	page_open(o, buf_str(&title));
	buf_free(&title);
	para_open(o);
	buf_appends(o->b, "Reported by the mail server ");
	put(o, js(r, "reporter"));
	buf_appends(o->b, ", generated ");
	put(o, js(r, "generated"));
	buf_appends(o->b, " (UTC). Hosts in ");
	put(o, js(r, "query"));
	buf_printf(o->b, " caused %lld rejected or failed SMTP transactions here",
		   (long long)ji(act, "total"));
	json_t *first = json_object_get(act, "first"), *last = json_object_get(act, "last");
	if (json_is_string(first) && json_is_string(last)) {
		buf_appends(o->b, " between ");
		put(o, json_string_value(first));
		buf_appends(o->b, " and ");
		put(o, json_string_value(last));
	}
	buf_appends(o->b, ". By category: ");
	counts(o, json_object_get(act, "categories"));
	buf_appendc(o->b, '.');
	para_close(o);

	heading(o, "Decisions taken");
	if (json_array_size(json_object_get(r, "decisions")))
		decision_rows(o, json_object_get(r, "decisions"), true);
	else {
		para_open(o);
		buf_appends(o->b, "none");
		para_close(o);
	}

	heading(o, "Log lines");
	para_open(o);
	buf_printf(o->b, "%zu of %lld stored lines, oldest first, as our MTA logged them",
		   json_array_size(json_object_get(r, "lines")), (long long)ji(r, "lines_total"));
	buf_appends(o->b, json_is_true(json_object_get(r, "redacted"))
			      ? "; our users' addresses and login names are redacted."
			      : ".");
	para_close(o);
	buf_appends(o->b, o->html ? "<pre>" : "\n");
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(r, "lines"), i, l)
	{
		if (!o->html)
			buf_appends(o->b, "  ");
		put(o, json_string_value(l));
		buf_appendc(o->b, '\n');
	}
	buf_appends(o->b, o->html ? "</pre>\n" : "");
	page_close(o);
}

int report_render(const json_t *r, enum report_format f, struct buf *out)
{
	const char *type = json_string_value(json_object_get(r, "type"));
	if (!type || (strcmp(type, "digest") != 0 && strcmp(type, "evidence") != 0))
		return -1;
	if (f == REPORT_JSON) {
		char *s = json_dumps(r, JSON_INDENT(1) | JSON_ENSURE_ASCII);
		if (!s)
			return -1;
		buf_appends(out, s);
		buf_appendc(out, '\n');
		free(s);
		return 0;
	}
	struct out o = {out, f == REPORT_HTML, {0}};
	if (strcmp(type, "digest") == 0)
		render_digest(&o, r);
	else
		render_evidence(&o, r);
	return 0;
}
