/*
 * cmd_abuse_report.c - `mxwarden abuse-report [--since 1d | --from TIME
 * [--to TIME]] --out DIR`: an XARF v4 report per offending prefix of the
 * period to its network's abuse contact, written into DIR and, with
 * [abuse] smtp, sent (reports/abuse.h). `--list` prints what was written
 * and sent (the outbox) as JSON. The database is opened read-write for the
 * outbox and RDAP cache only: reports change nothing but that record.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "db/db.h"
#include "reports/abuse.h"

static int parse_time(const char *s, int64_t *secs)
{
	int64_t us;
	size_t n = strlen(s);
	if (!n || time_parse_rfc3339(s, n, &us) != (int)n)
		return -1;
	*secs = us / 1000000;
	return 0;
}

int cmd_abuse_report(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"db", required_argument, NULL, 'd'},
	    {"out", required_argument, NULL, 'o'},
	    {"since", required_argument, NULL, 's'},
	    {"from", required_argument, NULL, 'F'},
	    {"to", required_argument, NULL, 'T'},
	    {"list", no_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *db_path = NULL, *out = NULL;
	int64_t since = 86400, from = 0, to = 0;
	bool has_since = false, has_from = false, has_to = false, list = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:d:o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'd': db_path = optarg; break;
		case 'o': out = optarg; break;
		case 'l': list = true; break;
		case 's':
			if (duration_parse(optarg, &since) < 0 || since <= 0)
				return cli_usage_error("abuse-report",
						       "--since takes a duration such as 1d or 12h");
			has_since = true;
			break;
		case 'F':
			if (parse_time(optarg, &from) < 0)
				return cli_usage_error("abuse-report", "--from takes an RFC 3339 time");
			has_from = true;
			break;
		case 'T':
			if (parse_time(optarg, &to) < 0)
				return cli_usage_error("abuse-report", "--to takes an RFC 3339 time");
			has_to = true;
			break;
		case 'h': return cli_help("abuse-report");
		default: return cli_usage_error("abuse-report", NULL);
		}
	}
	if (optind != argc)
		return cli_usage_error("abuse-report", "unexpected argument");
	if (has_since && (has_from || has_to))
		return cli_usage_error("abuse-report", "--since or --from/--to, not both");
	if (has_to && !has_from)
		return cli_usage_error("abuse-report", "--to needs --from");
	if (!list && !out)
		return cli_usage_error("abuse-report", "where do the messages go? (--out DIR)");
	if (list && (out || has_since || has_from))
		return cli_usage_error("abuse-report", "--list takes no period and no --out");

	struct config c;
	if (engine_config_load(&c, conf_path) < 0) {
		config_free(&c);
		return 1;
	}
	if (!list && !c.abuse.used) {
		fprintf(stderr, "mxwarden abuse-report: no [abuse] section in the configuration "
				"(reporter_org, reporter_contact, reporter_domain, contacts)\n");
		config_free(&c);
		return 1;
	}
	if (!list && cli_as_db_owner("abuse-report", db_path ? db_path : c.db_path)) {
		config_free(&c);
		return 1;
	}
	char err[512];
	struct db *db = db_open(db_path ? db_path : c.db_path, list ? DB_RO : DB_RW, err, sizeof err);
	if (!db) {
		fprintf(stderr, "mxwarden abuse-report: %s\n", err);
		config_free(&c);
		return 1;
	}
	int rc = 0;
	if (list) {
		json_t *j = db_outbox_json(db, 1000);
		char *s = j ? json_dumps(j, JSON_INDENT(1) | JSON_ENSURE_ASCII) : NULL;
		if (!s) {
			fprintf(stderr, "mxwarden abuse-report: %s\n", db_errmsg(db));
			rc = 1;
		} else {
			puts(s);
		}
		free(s);
		json_decref(j);
	} else {
		int64_t now = clock_now();
		struct abuse_run r = {.now = now, .out_dir = out};
		if (has_from) {
			r.from = from;
			r.to = has_to ? to : now;
		} else {
			r.from = now - since;
			r.to = now;
		}
		struct buf e = BUF_INIT;
		if (r.from >= r.to) {
			fprintf(stderr,
				"mxwarden abuse-report: the period is empty (--from must be before --to)\n");
			rc = 2;
		} else if (abuse_report_run(&c, db, &r, &e) < 0) {
			fprintf(stderr, "mxwarden abuse-report: %s\n", buf_str(&e));
			rc = 1;
		}
		if (rc == 0) {
			fprintf(
			    stderr,
			    "mxwarden abuse-report: %lld decisions in the period, %lld worth a report (%lld "
			    "reported before); %lld prefixes: %lld reports and %lld summaries written, %lld "
			    "without a contact, %lld held back; %lld sent%s\n",
			    (long long)r.decisions, (long long)r.reportable, (long long)r.before,
			    (long long)r.prefixes, (long long)r.written, (long long)r.summaries,
			    (long long)r.no_contact, (long long)r.held, (long long)r.sent,
			    c.abuse.smtp ? "" : " ([abuse] smtp is not set: the files are for review)");
			size_t i;
			json_t *p;
			json_array_foreach(r.unreached, i, p) fprintf(
			    stderr, "mxwarden abuse-report: no abuse contact for %s\n", json_string_value(p));
			if (r.send_failed) {
				fprintf(stderr,
					"mxwarden abuse-report: %lld messages not sent (tried again at the "
					"next run)\n",
					(long long)r.send_failed);
				rc = 1;
			}
		}
		json_decref(r.unreached);
		buf_free(&e);
	}
	db_close(db);
	config_free(&c);
	return rc;
}
