/*
 * cmd_lookup.c - `mxwarden lookup ADDRESS|PREFIX [-c FILE] [--db PATH]
 * [--json]`: answers a support question in one screen: is it blocked, since
 * when, until when, by which decision (on the address or its class), why in
 * one sentence, the evidence lines, past decisions and recent activity.
 *
 * The answer is computed once, by aggregator_lookup_json(), which the web
 * API calls too; this file only prints it. It opens the database read-only
 * and must never change it. Log-derived text (evidence lines) is shown on
 * the terminal with utf8_append_text() (controls masked, a byte that is not
 * UTF-8 as U+FFFD); --json lets jansson escape.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/aggregator.h"
#include "cli/cli.h"
#include "db/db.h"

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static void print_safe(const char *prefix, const char *s)
{
	struct buf b = BUF_INIT;
	utf8_append_text(&b, s, strlen(s));
	printf("%s%s\n", prefix, buf_str(&b));
	buf_free(&b);
}

static long long jint(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* One line per connection of decision.sessions (numbers only). */
static void print_session(const char *title, json_t *s)
{
	if (!json_is_object(s))
		return;
	printf("  %s: %lld RCPTs, %lld rejected (%lld unknown), %lld other refusals, %lld AUTH failures, "
	       "%lld protocol errors, %lld accepted",
	       title, jint(s, "rcpts"), jint(s, "rejected"), jint(s, "unknown_recipients"),
	       jint(s, "other_rejections"), jint(s, "auth_failures"), jint(s, "protocol"),
	       jint(s, "accepted"));
	if (json_object_get(s, "code"))
		printf("; mostly %lld %s", jint(s, "code"), jstr(s, "dsn"));
	json_t *h = json_object_get(s, "helo");
	printf("; HELO %s", json_is_true(h) ? "yes" : json_is_false(h) ? "no" : "?");
	json_t *c = json_object_get(s, "commands");
	if (json_is_array(c))
		printf("; commands %lld/%lld", (long long)json_integer_value(json_array_get(c, 0)),
		       (long long)json_integer_value(json_array_get(c, 1)));
	json_t *b = json_object_get(s, "back_off");
	if (json_is_object(b))
		printf("; %llds after a %lld %s", jint(b, "seconds"), jint(b, "after_code"),
		       jstr(b, "after_dsn"));
	printf("\n");
}

static void print_sessions(json_t *s)
{
	if (!json_is_object(s))
		return;
	print_session("worst connection", json_object_get(s, "worst"));
	if (jint(s, "bad"))
		printf("  connections that ended badly: %lld\n", jint(s, "bad"));
}

static void print_decision(json_t *d, bool full)
{
	printf("  %s %s  rule %s  response %s  score %.2f\n", jstr(d, "scope"), jstr(d, "prefix"),
	       jstr(d, "rule"), jstr(d, "response"), json_number_value(json_object_get(d, "score")));
	printf("  since %s  until %s%s\n", jstr(d, "since"), jstr(d, "until"),
	       json_is_true(json_object_get(d, "manual")) ? "  (manual)" : "");
	print_safe("  why: ", jstr(d, "reason"));
	size_t ci;
	json_t *c;
	json_array_foreach(json_object_get(d, "changes"), ci, c)
	{
		printf("  %s %s: %s -> %s  rule %s  score %.2f  until %s\n", jstr(c, "at"), jstr(c, "change"),
		       jstr(c, "from"), jstr(c, "response"), jstr(c, "rule"),
		       json_number_value(json_object_get(c, "score")), jstr(c, "until"));
		print_safe("    why: ", jstr(c, "reason"));
	}
	if (json_string_value(json_object_get(d, "ended_at")))
		printf("  ended %s by %s (%s)\n", jstr(d, "ended_at"), jstr(d, "ended_by"),
		       jstr(d, "end_reason"));
	if (!full)
		return;
	const char *k;
	json_t *v;
	json_t *counts = json_object_get(d, "counts");
	if (json_object_size(counts)) {
		printf("  counts:");
		json_object_foreach(counts, k, v) printf(" %s=%lld", k, (long long)json_integer_value(v));
		printf("\n");
	}
	json_t *ex = json_object_get(d, "explain");
	if (json_object_get(ex, "value"))
		printf("  numbers: %lld against a threshold of %.2f within %llds (multiplier %.2f)\n",
		       (long long)json_integer_value(json_object_get(ex, "value")),
		       json_number_value(json_object_get(ex, "threshold")),
		       (long long)json_integer_value(json_object_get(ex, "window")),
		       json_number_value(json_object_get(ex, "multiplier")));
	print_sessions(json_object_get(d, "sessions"));
	size_t i;
	json_t *l;
	json_t *lines = json_object_get(d, "evidence");
	if (json_array_size(lines))
		printf("  evidence:\n");
	json_array_foreach(lines, i, l) print_safe("    ", json_string_value(l) ? json_string_value(l) : "");
}

static void print_recent(const char *title, json_t *r)
{
	if (!r)
		return;
	printf("%s: %lld events", title, (long long)json_integer_value(json_object_get(r, "total")));
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(r, "categories"), k, v)
	    printf(", %s %lld", k, (long long)json_integer_value(v));
	printf("\n");
}

static void print_text(json_t *o)
{
	print_safe("query:    ", jstr(o, "query"));
	json_t *d = json_object_get(o, "decision");
	if (json_is_true(json_object_get(o, "blocked"))) {
		printf("blocked:  yes, by this decision:\n");
		print_decision(d, true);
	} else if (json_is_object(d)) {
		/* decided_not_enforced: no blocklist can carry it */
		const char *why = jstr(o, "state_reason");
		printf("blocked:  no: decided but not enforced (%s), by this decision:\n", why ? why : "?");
		print_decision(d, true);
	} else {
		printf("blocked:  no\n");
	}
	if (json_is_true(json_object_get(o, "protected")))
		printf("note:     inside a protected network: never blocked automatically\n");
	if (json_is_true(json_object_get(o, "allowed")))
		printf("note:     on the allow list: never blocked automatically\n");
	if (json_is_true(json_object_get(o, "trusted")))
		printf("note:     trusted by the MTA ([safety] mta_trusted): never blocked\n");
	json_t *h = json_object_get(o, "history");
	printf("history:  %zu other decision%s\n", json_array_size(h), json_array_size(h) == 1 ? "" : "s");
	size_t i;
	json_t *x;
	json_array_foreach(h, i, x)
	{
		if (i == 10) {
			printf("  ... %zu more (--json for all)\n", json_array_size(h) - 10);
			break;
		}
		print_decision(x, false);
	}
	print_recent("last day", json_object_get(o, "recent"));
	json_t *rc = json_object_get(o, "recent_class");
	if (rc) {
		char title[96];
		snprintf(title, sizeof title, "class %s, last day", jstr(rc, "prefix"));
		print_recent(title, rc);
	}
}

int cmd_lookup(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"db", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *db_path = NULL;
	bool as_json = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:d:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'd': db_path = optarg; break;
		case 'j': as_json = true; break;
		case 'h': return cli_help("lookup");
		default: return cli_usage_error("lookup", NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("lookup", optind < argc ? "one address or prefix, please"
							       : "which address or prefix?");
	const char *query = argv[optind];
	struct prefix q;
	if (cli_parse_prefix("lookup", query, false, &q))
		return 2;
	struct config c;
	struct db *db = cli_open_ro("lookup", conf_path, db_path, &c);
	if (!db)
		return 1;
	engine_trusted_load(&c); /* for "trusted"; a failure is logged, the lookup goes on */
	struct buf e = BUF_INIT;
	json_t *o = aggregator_lookup_json(db, &c, query, clock_now(), &e);
	int rc = 0;
	if (!o) {
		fprintf(stderr, "mxwarden lookup: %s\n", buf_str(&e));
		rc = 1;
	} else if (as_json) {
		char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
		if (!s || puts(s) < 0)
			rc = 1;
		free(s);
	} else {
		print_text(o);
	}
	json_decref(o);
	buf_free(&e);
	db_close(db);
	config_free(&c);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}
