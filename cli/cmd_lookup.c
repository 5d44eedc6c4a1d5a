/*
 * cmd_lookup.c - `mxwarden lookup QUERY [-c FILE] [--db PATH] [--json]` and
 * `mxwarden lookup --id N`: answers a support question in one screen: is it
 * blocked (enforced: which blocklist holds it), partly blocked, decided but
 * not enforced (and why), allowed, clean ("seen N connections, M
 * delivered") or never seen; since when, until when, by which decision (on
 * the address or its class, made by whom), why in one sentence, the
 * upgrades, the worst connection, the evidence lines, past decisions and
 * recent activity. QUERY is an address or prefix as a log writes it
 * (ip:port, [v6], name[ip]), an e-mail address or a sender domain.
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
#include "emitters/emitters.h"

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
	printf("  since %s  until %s", jstr(d, "since"), jstr(d, "until"));
	if (json_is_true(json_object_get(d, "manual"))) {
		struct buf by = BUF_INIT;
		buf_append_printable(&by, jstr(d, "created_by"), strlen(jstr(d, "created_by")));
		printf("  (manual, by %s)", buf_str(&by));
		buf_free(&by);
	}
	printf("\n");
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

static void print_outputs(json_t *o)
{
	json_t *outs = json_object_get(o, "outputs");
	if (!json_array_size(outs))
		return;
	size_t i;
	json_t *x;
	json_array_foreach(outs, i, x)
	{
		printf("%s %s (%s, %s): ", i ? "         " : "outputs: ", jstr(x, "output"),
		       jstr(x, "format"), jstr(x, "path"));
		if (json_string_value(json_object_get(x, "why")))
			printf("%s", jstr(x, "detail"));
		else if (json_is_true(json_object_get(x, "holds")))
			printf("holds %s", jstr(x, "entry"));
		else if (jint(x, "inside"))
			printf("holds %lld entr%s inside it (%s ...)", jint(x, "inside"),
			       jint(x, "inside") == 1 ? "y" : "ies",
			       json_string_value(json_array_get(json_object_get(x, "inside_entries"), 0)));
		else if (!json_is_true(json_object_get(x, "readable")))
			printf("its file cannot be read (not written yet?)");
		else
			printf("does not hold it");
		printf("\n");
	}
}

static void print_seen(json_t *s)
{
	if (!json_is_object(s))
		return;
	printf("seen:     %lld connection%s", jint(s, "connections"), jint(s, "connections") == 1 ? "" : "s");
	if (json_is_integer(json_object_get(s, "delivered")))
		printf(", %lld delivered", jint(s, "delivered"));
	printf(", %lld refused, %lld other evidence", jint(s, "refused"), jint(s, "other_evidence"));
	if (json_string_value(json_object_get(s, "first_hour")))
		printf("; hours %s to %s", jstr(s, "first_hour"), jstr(s, "last_hour"));
	printf("%s\n", strcmp(jstr(s, "scope"), "class") == 0 ? " (the class)" : "");
}

static void print_mail(json_t *o)
{
	print_safe("query:    ", jstr(o, "query"));
	print_safe("answer:   ", jstr(o, "summary"));
	if (json_is_true(json_object_get(o, "truncated")))
		printf("note:     the search stopped after the newest %lld events\n", jint(o, "scanned"));
	json_t *senders = json_object_get(o, "senders");
	if (!json_array_size(senders))
		return;
	printf("%-40s %-20s %6s  %-20s  %s\n", "CLIENT", "ROLE", "EVENTS", "LAST", "STATE");
	size_t i;
	json_t *x;
	json_array_foreach(senders, i, x)
	{
		printf("%-40s %-20s %6lld  %-20s  ", jstr(x, "ip"), jstr(x, "role"), jint(x, "count"),
		       jstr(x, "last"));
		print_safe("", jstr(x, "summary"));
	}
}

static void print_text(json_t *o)
{
	const char *kind = jstr(o, "kind");
	if (!strcmp(kind, "email") || !strcmp(kind, "domain")) {
		print_mail(o);
		return;
	}
	struct buf q = BUF_INIT;
	buf_append_printable(&q, jstr(o, "query"), strlen(jstr(o, "query")));
	printf("query:    %s (%s %s)\n", buf_str(&q), kind, jstr(o, "prefix"));
	buf_free(&q);
	/* the reason is a fixed phrase (lookup.c), never text from a log */
	const char *why = json_string_value(json_object_get(o, "state_reason"));
	printf("state:    %s%s%s%s\n", jstr(o, "state"), why ? " (" : "", why ? why : "", why ? ")" : "");
	print_safe("answer:   ", jstr(o, "summary"));
	json_t *req = json_object_get(o, "requested");
	if (json_is_object(req)) {
		printf("decision #%lld, as asked:\n", jint(req, "id"));
		print_decision(req, true);
	}
	json_t *d = json_object_get(o, "decision");
	if (json_is_object(d) && !(json_is_object(req) && jint(req, "id") == jint(d, "id"))) {
		printf("decision in force:\n");
		print_decision(d, true);
	}
	size_t i;
	json_t *x;
	json_t *inside = json_object_get(o, "inside");
	if (json_array_size(inside))
		printf("inside:   %zu decision%s in force on narrower prefixes:\n", json_array_size(inside),
		       json_array_size(inside) == 1 ? "" : "s");
	json_array_foreach(inside, i, x)
	{
		if (i == 10) {
			printf("  ... %zu more (--json for all)\n", json_array_size(inside) - 10);
			break;
		}
		print_decision(x, false);
	}
	print_outputs(o);
	json_array_foreach(json_object_get(o, "allows"), i, x)
	{
		printf("allow:    #%lld %s until %s, by %s: ", jint(x, "id"), jstr(x, "prefix"),
		       jstr(x, "until"), jstr(x, "by"));
		print_safe("", jstr(x, "reason"));
	}
	if (json_is_true(json_object_get(o, "protected")))
		printf("note:     inside a protected network: never blocked automatically\n");
	if (json_is_true(json_object_get(o, "trusted")))
		printf("note:     trusted by the MTA ([safety] mta_trusted): never blocked\n");
	print_seen(json_object_get(o, "seen"));
	print_recent("last day", json_object_get(o, "recent"));
	json_t *rc = json_object_get(o, "recent_class");
	if (rc) {
		char title[96];
		snprintf(title, sizeof title, "class %s, last day", jstr(rc, "prefix"));
		print_recent(title, rc);
	}
	json_t *h = json_object_get(o, "history");
	printf("history:  %zu other decision%s\n", json_array_size(h), json_array_size(h) == 1 ? "" : "s");
	json_array_foreach(h, i, x)
	{
		if (i == 10) {
			printf("  ... %zu more (--json for all)\n", json_array_size(h) - 10);
			break;
		}
		print_decision(x, false);
	}
}

int cmd_lookup(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"db", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},	      {"id", required_argument, NULL, 'i'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *db_path = NULL, *id_s = NULL;
	bool as_json = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:d:ji:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'd': db_path = optarg; break;
		case 'j': as_json = true; break;
		case 'i': id_s = optarg; break;
		case 'h': return cli_help("lookup");
		default: return cli_usage_error("lookup", NULL);
		}
	}
	int64_t id = 0;
	if (id_s) {
		char *end;
		id = strtoll(id_s, &end, 10);
		if (*end || id <= 0)
			return cli_usage_error(
			    "lookup", "--id wants a decision number (mxwarden decisions), got '%s'", id_s);
		if (optind != argc)
			return cli_usage_error("lookup", "--id N or an address, not both");
	} else if (optind != argc - 1) {
		return cli_usage_error("lookup", optind < argc
						     ? "one address, prefix, e-mail address or domain, please"
						     : "which address, prefix, e-mail address or domain?");
	}
	const char *query = id_s ? NULL : argv[optind];
	struct config c;
	struct db *db = cli_open_ro("lookup", conf_path, db_path, &c);
	if (!db)
		return 1;
	engine_trusted_load(&c); /* for "trusted"; a failure is logged, the lookup goes on */
	struct buf e = BUF_INIT;
	json_t *o = id ? aggregator_lookup_id_json(db, &c, id, clock_now(), emitters_lookup_json, &e)
		       : aggregator_lookup_json(db, &c, query, clock_now(), emitters_lookup_json, &e);
	int rc = 0;
	if (!o) {
		struct buf qb = BUF_INIT;
		if (query)
			buf_append_printable(&qb, query, strlen(query));
		if (query && strncmp(buf_str(&e), "database:", 9) != 0) {
			rc = cli_usage_error("lookup", "'%s': %s", buf_str(&qb), buf_str(&e));
		} else {
			fprintf(stderr, "mxwarden lookup: %s\n", buf_str(&e));
			rc = 1;
		}
		buf_free(&qb);
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
