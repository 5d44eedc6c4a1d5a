/*
 * cmd_block.c - manual decisions:
 *   mxwarden block PREFIX --for DURATION --reason TEXT [--response R] [-c FILE] [--db PATH]
 *   mxwarden unblock PREFIX --reason TEXT [-c FILE] [--db PATH]
 *
 * Both write to the database (a decision, or the end of the active ones on
 * PREFIX, plus an audit entry with the local user from getpwuid(getuid())
 * and the reason). A running daemon picks them up within a second
 * (aggregator_sync() on its tick) and rewrites the blocklists.
 *
 * They must never block an allowed or protected network or one shorter
 * than the [safety] floor (the same test the aggregator applies), and never
 * put control characters of the reason into the database: the reason is
 * reduced to printable text.
 */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/aggregator.h"
#include "cli/cli.h"
#include "db/db.h"

static void who_am_i(char *out, size_t n)
{
	struct passwd *pw = getpwuid(getuid());
	char name[64];
	if (pw && pw->pw_name)
		snprintf(name, sizeof name, "%s", pw->pw_name);
	else
		snprintf(name, sizeof name, "uid%u", (unsigned)getuid());
	snprintf(out, n, "cli:%s", name);
}

/* The reason as one line of at most n-1 bytes: control characters become
 * blanks (UTF-8 text is kept; every sink escapes it again). */
static void clean_reason(const char *s, char *out, size_t n)
{
	size_t k = 0;
	for (; *s && k + 1 < n; s++, k++) {
		unsigned char ch = (unsigned char)*s;
		out[k] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	out[k] = '\0';
}

struct common {
	const char *conf_path, *db_path, *reason, *dur, *response;
	struct prefix p;
	struct config c;
	struct db *db;
	char who[96];
	char text[PREFIX_STRLEN];
};

static int setup(const char *name, int argc, char **argv, struct common *o, bool block)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"db", required_argument, NULL, 'd'},
	    {"for", required_argument, NULL, 'f'},
	    {"reason", required_argument, NULL, 'r'},
	    {"response", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:d:f:r:R:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->conf_path = optarg; break;
		case 'd': o->db_path = optarg; break;
		case 'f':
			if (!block)
				return cli_usage_error(name, "--for is for block");
			o->dur = optarg;
			break;
		case 'r': o->reason = optarg; break;
		case 'R':
			if (!block)
				return cli_usage_error(name, "--response is for block");
			o->response = optarg;
			break;
		case 'h': return cli_help(name);
		default: return cli_usage_error(name, NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(name, "one address or prefix, please");
	if (cli_parse_prefix(name, argv[optind], true, &o->p))
		return 2;
	if (!o->reason || !*o->reason)
		return cli_usage_error(name, "--reason is required (it is recorded with your name)");
	if (block && !o->dur)
		return cli_usage_error(name, "--for DURATION is required (e.g. 2d)");
	prefix_format(&o->p, o->text);
	if (engine_config_load(&o->c, o->conf_path) < 0)
		return 1;
	who_am_i(o->who, sizeof o->who); /* the caller, before the switch to the database's owner */
	if (cli_as_db_owner(name, o->db_path ? o->db_path : o->c.db_path))
		return 1;
	char err[512];
	o->db = db_open(o->db_path ? o->db_path : o->c.db_path, DB_RW, err, sizeof err);
	if (!o->db) {
		fprintf(stderr, "mxwarden %s: %s\n", name, err);
		return 1;
	}
	return -1; /* go on */
}

static void teardown(struct common *o)
{
	db_close(o->db);
	config_free(&o->c);
}

int cmd_block(int argc, char **argv)
{
	struct common o;
	memset(&o, 0, sizeof o);
	int rc = setup("block", argc, argv, &o, true);
	if (rc >= 0) {
		teardown(&o);
		return rc;
	}
	rc = 1;
	int64_t secs;
	int resp = o.response ? response_from_name(o.response) : RESP_DROP;
	if (duration_parse(o.dur, &secs) < 0 || secs <= 0) {
		rc = cli_usage_error("block", "--for: '%s' is not a duration (90s, 10m, 2h, 7d)", o.dur);
		goto out;
	}
	if (resp < 0) {
		rc = cli_usage_error("block", "--response: observe, defer, reject or drop");
		goto out;
	}
	if (engine_trusted_load(&o.c) < 0)
		goto out; /* the MTA's trusted clients are never blocked, by hand either */
	struct aggregator *a = aggregator_new(&o.c);
	const char *why = NULL;
	int ok = aggregator_blockable(a, &o.p, &why);
	aggregator_free(a);
	if (ok == 0 && prefix_reserved(&o.p)) {
		ok = -1; /* no blocklist can hold it: a decision there would enforce nothing */
		why = "a reserved range that no blocklist can hold";
	}
	if (ok < 0) {
		fprintf(stderr, "mxwarden block: refusing to block %s: %s\n", o.text, why);
		goto out;
	}
	struct decision d;
	memset(&d, 0, sizeof d);
	d.prefix = o.p;
	d.scope = prefix_is_host(&o.p) ? SCOPE_IP : SCOPE_CLASS;
	d.response = (enum response)resp;
	str_copy(d.rule, sizeof d.rule, "manual", 6);
	clean_reason(o.reason, d.reason, sizeof d.reason);
	d.since = clock_now();
	d.until = d.since + secs;
	d.manual = true;
	json_t *ev = json_object();
	json_object_set_new(ev, "rule", json_string("manual"));
	json_object_set_new(ev, "by", json_string(o.who));
	json_object_set_new(ev, "reason", json_string(d.reason));
	json_object_set_new(ev, "duration", json_integer(secs));
	char *evs = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (db_begin(o.db) < 0 || db_decision_insert(o.db, &d, evs, o.who) < 0 ||
	    db_audit_add(o.db, d.since, o.who, "block", &d.prefix, d.reason) < 0 || db_commit(o.db) < 0) {
		fprintf(stderr, "mxwarden block: %s\n", db_errmsg(o.db));
		db_rollback(o.db);
		free(evs);
		goto out;
	}
	free(evs);
	char until[TIME_STRLEN], dur[32];
	time_format_rfc3339(d.until * 1000000, false, until);
	duration_format(secs, dur, sizeof dur);
	printf("blocked %s for %s until %s (%s, decision #%lld)\n", o.text, dur, until,
	       response_name(d.response), (long long)d.id);
	rc = 0;
out:
	teardown(&o);
	return rc;
}

struct ends {
	const struct prefix *p;
	int64_t ids[256];
	size_t n;
	int covering; /* active decisions on wider prefixes that contain p */
};

static int pick(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct ends *e = arg;
	(void)info;
	if (prefix_contains_prefix(e->p, &d->prefix)) {
		if (e->n < MXW_ARRAY_LEN(e->ids))
			e->ids[e->n++] = d->id;
	} else if (prefix_contains_prefix(&d->prefix, e->p)) {
		e->covering++;
	}
	return 0;
}

int cmd_unblock(int argc, char **argv)
{
	struct common o;
	memset(&o, 0, sizeof o);
	int rc = setup("unblock", argc, argv, &o, false);
	if (rc >= 0) {
		teardown(&o);
		return rc;
	}
	rc = 1;
	char reason[256];
	clean_reason(o.reason, reason, sizeof reason);
	int64_t now = clock_now();
	struct ends e = {.p = &o.p};
	if (db_begin(o.db) < 0 || db_decisions_active(o.db, now, pick, &e) < 0)
		goto fail;
	for (size_t i = 0; i < e.n; i++)
		if (db_decision_end(o.db, e.ids[i], now, o.who, reason) < 0)
			goto fail;
	if (e.n && db_audit_add(o.db, now, o.who, "unblock", &o.p, reason) < 0)
		goto fail;
	if (db_commit(o.db) < 0)
		goto fail;
	if (e.n)
		printf("unblocked %s: ended %zu decision%s\n", o.text, e.n, e.n == 1 ? "" : "s");
	else
		printf("%s: no active decision on it\n", o.text);
	if (e.covering)
		printf("note: %d active decision%s on a wider prefix still cover%s %s (see mxwarden lookup "
		       "%s)\n",
		       e.covering, e.covering == 1 ? "" : "s", e.covering == 1 ? "s" : "", o.text, o.text);
	rc = e.n ? 0 : 1;
	teardown(&o);
	return rc;
fail:
	fprintf(stderr, "mxwarden unblock: %s\n", db_errmsg(o.db));
	db_rollback(o.db);
	teardown(&o);
	return 1;
}
