/*
 * cmd_decisions.c - `mxwarden decisions [--active | --since DURATION]
 * [--rule R] [--scope ip|class] [--manual] [--json]`: the decisions (and
 * the allows made by hand) as a table, newest first: id, prefix, scope,
 * rule, response, since, until or when it ended, by whom, the evidence
 * events behind it, and the reason. Without --since it lists what is in
 * force now (like `cscli decisions list`). --json gives an array of
 * objects with id, kind ("block" or "allow"), prefix, scope, rule,
 * response, since, until, ended_at, end_reason, by, events, reason,
 * active.
 *
 * The rows come from db_decisions_json() and db_allows_list(), the same
 * as the dashboard's decisions panel. It opens the database read-only.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "db/db.h"

struct allow_rows {
	json_t *arr;
	int64_t now;
	int scope;
};

static int add_allow(void *arg, const struct db_allow *a)
{
	struct allow_rows *r = arg;
	if (r->scope >= 0 && (r->scope == SCOPE_IP) != prefix_is_host(&a->prefix))
		return 0;
	json_t *o = db_allow_json(a, r->now);
	json_object_set_new(o, "kind", json_string("allow"));
	json_object_set_new(o, "rule", json_string("manual"));
	json_object_set_new(o, "response", json_string("allow"));
	json_object_set_new(o, "events", json_null());
	json_object_set_new(o, "manual", json_true());
	json_array_append_new(r->arr, o);
	return 0;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* "2026-11-27T20:00:00Z" -> "2026-11-27 20:00" */
static void short_time(const char *t, char *out, size_t n)
{
	if (strlen(t) >= 16)
		snprintf(out, n, "%.10s %.5s", t, t + 11);
	else
		snprintf(out, n, "%s", *t ? t : "-");
}

static void print_table(json_t *rows)
{
	if (json_array_size(rows) == 0) {
		printf("no decision\n");
		return;
	}
	/* every column as wide as its widest cell: an IPv6 prefix never runs
	 * into the next column */
	enum { C_ID, C_PREFIX, C_SCOPE, C_RULE, C_RESP, C_SINCE, C_UNTIL, C_BY, C_EVENTS, C_REASON, C__N };
	static const char *const head[C__N] = {"ID",	"PREFIX", "SCOPE", "RULE",   "RESPONSE",
					       "SINCE", "UNTIL",  "BY",	   "EVENTS", "REASON"};
	size_t n = json_array_size(rows);
	char(*cell)[C__N][300] = xcalloc(n, sizeof *cell);
	size_t w[C__N];
	for (int c = 0; c < C__N; c++)
		w[c] = strlen(head[c]);
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_array_get(rows, i);
		bool allow = strcmp(jstr(r, "kind"), "allow") == 0;
		snprintf(cell[i][C_ID], 300, "%s%lld", allow ? "A" : "",
			 (long long)json_integer_value(json_object_get(r, "id")));
		snprintf(cell[i][C_PREFIX], 300, "%s", jstr(r, "prefix"));
		snprintf(cell[i][C_SCOPE], 300, "%s", jstr(r, "scope"));
		struct buf b = BUF_INIT;
		buf_append_printable(&b, jstr(r, "rule"), strlen(jstr(r, "rule")));
		snprintf(cell[i][C_RULE], 300, "%s", buf_str(&b));
		snprintf(cell[i][C_RESP], 300, "%s", jstr(r, "response"));
		short_time(jstr(r, "since"), cell[i][C_SINCE], 300);
		char t[32];
		if (json_string_value(json_object_get(r, "ended_at"))) {
			short_time(jstr(r, "ended_at"), t, sizeof t);
			const char *why = jstr(r, "end_reason");
			snprintf(cell[i][C_UNTIL], 300, "%s %s",
				 strcmp(why, "expired") == 0 ? "expired" : "ended", t);
		} else {
			short_time(jstr(r, "until"), t, sizeof t);
			bool active = json_is_true(json_object_get(r, "active"));
			snprintf(cell[i][C_UNTIL], 300, "%s%s", active ? "" : "expired ", t);
		}
		buf_reset(&b);
		buf_append_printable(&b, jstr(r, "by"), strlen(jstr(r, "by")));
		snprintf(cell[i][C_BY], 300, "%s", b.len ? buf_str(&b) : "-");
		json_t *ev = json_object_get(r, "events");
		if (json_is_integer(ev))
			snprintf(cell[i][C_EVENTS], 300, "%lld", (long long)json_integer_value(ev));
		else
			snprintf(cell[i][C_EVENTS], 300, "-");
		buf_reset(&b);
		utf8_append_text(&b, jstr(r, "reason"), strlen(jstr(r, "reason")));
		snprintf(cell[i][C_REASON], 300, "%s", buf_str(&b));
		buf_free(&b);
		for (int c = 0; c < C__N - 1; c++)
			if (strlen(cell[i][c]) > w[c])
				w[c] = strlen(cell[i][c]);
	}
	for (int c = 0; c < C__N; c++)
		printf("%-*s%s", c == C__N - 1 ? 0 : (int)w[c], head[c], c == C__N - 1 ? "\n" : "  ");
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < C__N; c++) {
			bool num = c == C_ID || c == C_EVENTS;
			if (c == C__N - 1)
				printf("%s\n", cell[i][c]);
			else
				printf(num ? "%*s  " : "%-*s  ", (int)w[c], cell[i][c]);
		}
	free(cell);
}

/* Newest first, decisions and allows together. */
static int by_since_desc(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	return -strcmp(jstr(x, "since"), jstr(y, "since"));
}

int cmd_decisions(int argc, char **argv)
{
	enum { OPT_MANUAL = 256 };
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},  {"db", required_argument, NULL, 'd'},
	    {"active", no_argument, NULL, 'a'},	       {"since", required_argument, NULL, 's'},
	    {"rule", required_argument, NULL, 'r'},    {"scope", required_argument, NULL, 'S'},
	    {"manual", no_argument, NULL, OPT_MANUAL}, {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *db_path = NULL, *since_s = NULL;
	struct db_decision_filter f = {
	    .active_only = true, .since = 0, .rule = NULL, .scope = -1, .manual = -1};
	bool as_json = false, active_flag = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:d:as:r:S:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'd': db_path = optarg; break;
		case 'a': active_flag = true; break;
		case 's': since_s = optarg; break;
		case 'r': f.rule = optarg; break;
		case 'S':
			if (!strcmp(optarg, "ip"))
				f.scope = SCOPE_IP;
			else if (!strcmp(optarg, "class"))
				f.scope = SCOPE_CLASS;
			else
				return cli_usage_error("decisions", "--scope: ip or class, not '%s'", optarg);
			break;
		case OPT_MANUAL: f.manual = 1; break;
		case 'j': as_json = true; break;
		case 'h': return cli_help("decisions");
		default: return cli_usage_error("decisions", NULL);
		}
	}
	if (optind < argc)
		return cli_usage_error("decisions", "unexpected argument '%s'", argv[optind]);
	if (active_flag && since_s)
		return cli_usage_error("decisions", "--active or --since, not both");
	int64_t now = clock_now();
	if (since_s) {
		int64_t secs;
		if (cli_parse_for("decisions", "--since", since_s, &secs))
			return 2;
		f.active_only = false;
		f.since = now - secs;
	}
	struct config c;
	struct db *db = cli_open_ro("decisions", conf_path, db_path, &c);
	if (!db)
		return 1;
	json_t *rows = json_array();
	int rc = 0;
	const char *cursor = NULL;
	char *cur = NULL;
	for (;;) {
		json_t *page = db_decisions_json(db, now, &f, 1000, cursor);
		if (!page) {
			fprintf(stderr, "mxwarden decisions: %s\n", db_errmsg(db));
			rc = 1;
			break;
		}
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(page, "items"), i, x)
		{
			json_object_set_new(x, "kind", json_string("block"));
			json_array_append(rows, x);
		}
		const char *next = json_string_value(json_object_get(page, "next"));
		free(cur);
		cur = next ? xstrdup(next) : NULL;
		cursor = cur;
		json_decref(page);
		if (!cursor)
			break;
	}
	free(cur);
	/* allows are "manual": listed unless a rule other than manual is asked */
	struct allow_rows ar = {rows, now, f.scope};
	if (rc == 0 && f.manual != 0 && (!f.rule || !strcmp(f.rule, "manual")) &&
	    db_allows_list(db, now, f.active_only, f.since, add_allow, &ar) < 0) {
		fprintf(stderr, "mxwarden decisions: %s\n", db_errmsg(db));
		rc = 1;
	}
	if (rc == 0) {
		size_t n = json_array_size(rows);
		json_t **v = xcalloc(n ? n : 1, sizeof *v);
		for (size_t i = 0; i < n; i++)
			v[i] = json_incref(json_array_get(rows, i));
		qsort(v, n, sizeof *v, by_since_desc);
		json_array_clear(rows);
		for (size_t i = 0; i < n; i++)
			json_array_append_new(rows, v[i]);
		free(v);
		if (as_json) {
			char *s = json_dumps(rows, JSON_COMPACT | JSON_ENSURE_ASCII);
			if (!s || puts(s) < 0)
				rc = 1;
			free(s);
		} else {
			print_table(rows);
		}
	}
	json_decref(rows);
	db_close(db);
	config_free(&c);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}
