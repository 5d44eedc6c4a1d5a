/*
 * cmd_block.c - manual decisions:
 *   mxwarden block PREFIX --for DURATION --reason TEXT [--response R] [-c FILE] [--db PATH]
 *   mxwarden unblock PREFIX --reason TEXT [-c FILE] [--db PATH]
 *   mxwarden allow PREFIX --for DURATION --reason TEXT [-c FILE] [--db PATH]
 *   mxwarden unallow PREFIX --reason TEXT [-c FILE] [--db PATH]
 *
 * Each writes to the database (aggregator_manual_*: a decision or an allow,
 * or the end of those on PREFIX, plus an audit entry with the local user
 * from getpwuid(getuid()) and the reason). A running daemon picks them up
 * within a second and rewrites the blocklists. Blocking a prefix blocked
 * by hand already makes that block last longer (and says so), as does
 * allowing one allowed already.
 *
 * They must never block an allowed or protected network or one shorter
 * than the [safety] floor (the same test the aggregator applies), and never
 * take "--for 2" for two seconds: a duration needs its unit.
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

enum action { A_BLOCK, A_UNBLOCK, A_ALLOW, A_UNALLOW };
static const char *const action_names[] = {"block", "unblock", "allow", "unallow"};

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

int cli_parse_for(const char *name, const char *flag, const char *s, int64_t *secs)
{
	/* "2" is two seconds to duration_parse (configuration files say
	 * "retention = 3600"); typed on a command line it is a mistake */
	size_t n = strlen(s);
	bool unit = n && ((s[n - 1] >= 'a' && s[n - 1] <= 'z') || (s[n - 1] >= 'A' && s[n - 1] <= 'Z'));
	struct buf b = BUF_INIT;
	buf_append_printable(&b, s, n);
	int rc = 0;
	if (duration_parse(s, secs) < 0 || *secs <= 0)
		rc = cli_usage_error(name, "%s: '%s' is not a duration (90s, 10m, 2h, 7d, 1w; 1h30m)", flag,
				     buf_str(&b));
	else if (!unit)
		rc = cli_usage_error(name, "%s: '%s' has no unit: write %sh, %sd or %sw (or %ss for seconds)",
				     flag, buf_str(&b), buf_str(&b), buf_str(&b), buf_str(&b), buf_str(&b));
	buf_free(&b);
	return rc;
}

struct common {
	const char *conf_path, *db_path, *reason, *dur, *response;
	struct prefix p;
	struct config c;
	struct db *db;
	char who[96];
	char text[PREFIX_STRLEN];
	int64_t secs;
};

static int setup(enum action act, int argc, char **argv, struct common *o)
{
	const char *name = action_names[act];
	bool timed = act == A_BLOCK || act == A_ALLOW;
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
			if (!timed)
				return cli_usage_error(name, "--for is for block and allow");
			o->dur = optarg;
			break;
		case 'r': o->reason = optarg; break;
		case 'R':
			if (act != A_BLOCK)
				return cli_usage_error(name, "--response is for block");
			o->response = optarg;
			break;
		case 'h': return cli_help(name);
		default: return cli_usage_error(name, NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(name, optind < argc ? "one address or prefix, please"
							   : "which address or prefix?");
	if (cli_parse_prefix(name, argv[optind], true, &o->p))
		return 2;
	if (!o->reason || !*o->reason)
		return cli_usage_error(name, "--reason is required (it is recorded with your name)");
	if (timed && !o->dur)
		return cli_usage_error(name, "--for DURATION is required (e.g. 2d)");
	if (timed && cli_parse_for(name, "--for", o->dur, &o->secs))
		return 2;
	if (o->response && response_from_name(o->response) < 0)
		return cli_usage_error(name, "--response: observe, defer, reject or drop");
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

static int run_action(enum action act, int argc, char **argv)
{
	const char *name = action_names[act];
	struct common o;
	memset(&o, 0, sizeof o);
	int rc = setup(act, argc, argv, &o);
	if (rc >= 0) {
		teardown(&o);
		return rc;
	}
	rc = 1;
	struct agg_manual m = {.who = o.who,
			       .reason = o.reason,
			       .response =
				   o.response ? (enum response)response_from_name(o.response) : RESP_DROP,
			       .duration = o.secs,
			       .now = clock_now()};
	struct buf err = BUF_INIT;
	char until[TIME_STRLEN], dur[32];
	duration_format(o.secs, dur, sizeof dur);
	switch (act) {
	case A_BLOCK: {
		if (engine_trusted_load(&o.c) < 0)
			break; /* the MTA's trusted clients are never blocked, by hand either */
		struct aggregator *a = aggregator_new(&o.c);
		struct decision d;
		int r = aggregator_manual_block(o.db, a, &o.p, &m, &d, &err);
		aggregator_free(a);
		if (r < 0) {
			fprintf(stderr, "mxwarden block: %s\n", buf_str(&err));
			break;
		}
		time_format_rfc3339(d.until * 1000000, false, until);
		if (r == 1)
			printf(
			    "%s was blocked by hand already (decision #%lld): that block now lasts until %s "
			    "(%s), no second decision\n",
			    o.text, (long long)d.id, until, response_name(d.response));
		else
			printf("blocked %s for %s until %s (%s, decision #%lld)\n", o.text, dur, until,
			       response_name(d.response), (long long)d.id);
		rc = 0;
		break;
	}
	case A_UNBLOCK: {
		size_t n = 0, covering = 0;
		if (aggregator_manual_unblock(o.db, &o.p, &m, NULL, 0, &n, &covering, &err) < 0) {
			fprintf(stderr, "mxwarden unblock: %s\n", buf_str(&err));
			break;
		}
		if (n)
			printf("unblocked %s: ended %zu decision%s\n", o.text, n, n == 1 ? "" : "s");
		else
			printf("%s: no active decision on it\n", o.text);
		if (covering)
			printf("note: %zu active decision%s on a wider prefix still cover%s %s (see mxwarden "
			       "lookup %s)\n",
			       covering, covering == 1 ? "" : "s", covering == 1 ? "s" : "", o.text, o.text);
		rc = n ? 0 : 1;
		break;
	}
	case A_ALLOW: {
		struct db_allow al;
		size_t over = 0;
		int r = aggregator_manual_allow(o.db, &o.p, &m, &al, &over, &err);
		if (r < 0) {
			fprintf(stderr, "mxwarden allow: %s\n", buf_str(&err));
			break;
		}
		time_format_rfc3339(al.until * 1000000, false, until);
		if (r == 1)
			printf("%s was allowed by hand already (allow #%lld): it now lasts until %s\n",
			       o.text, (long long)al.id, until);
		else
			printf("allowed %s for %s until %s (allow #%lld): no decision blocks it meanwhile\n",
			       o.text, dur, until, (long long)al.id);
		if (over)
			printf(
			    "note: %zu decision%s in force overlap%s %s: the blocklists leave %s out while "
			    "the allow stands (mxwarden decisions --active)\n",
			    over, over == 1 ? "" : "s", over == 1 ? "s" : "", o.text,
			    over == 1 ? "it" : "them");
		rc = 0;
		break;
	}
	case A_UNALLOW: {
		size_t n = 0;
		if (aggregator_manual_unallow(o.db, &o.p, &m, &n, &err) < 0) {
			fprintf(stderr, "mxwarden unallow: %s\n", buf_str(&err));
			break;
		}
		if (n)
			printf("%s: ended %zu allow%s\n", o.text, n, n == 1 ? "" : "s");
		else
			printf("%s: no allow made by hand is in force on it\n", o.text);
		rc = n ? 0 : 1;
		break;
	}
	}
	(void)name;
	buf_free(&err);
	teardown(&o);
	return rc;
}

int cmd_block(int argc, char **argv)
{
	return run_action(A_BLOCK, argc, argv);
}

int cmd_unblock(int argc, char **argv)
{
	return run_action(A_UNBLOCK, argc, argv);
}

int cmd_allow(int argc, char **argv)
{
	return run_action(A_ALLOW, argc, argv);
}

int cmd_unallow(int argc, char **argv)
{
	return run_action(A_UNALLOW, argc, argv);
}
