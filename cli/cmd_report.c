/*
 * cmd_report.c - `mxwarden report digest|evidence ...`: the abuse digest of
 * a period for postmasters, and the evidence report for an offender's
 * network (to mail to its abuse desk), as text, JSON or a standalone HTML
 * page (reports/reports.h builds and renders them). Opens the database
 * read-only and never changes it; -o writes the report to a file instead of
 * standard output.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db.h"
#include "reports/abuse.h"
#include "reports/reports.h"

static int parse_time(const char *s, int64_t *secs)
{
	int64_t us;
	size_t n = strlen(s);
	if (!n || time_parse_rfc3339(s, n, &us) != (int)n)
		return -1;
	*secs = us / 1000000;
	return 0;
}

static int parse_count(const char *s, int max, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 1 || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int write_out(const char *path, const struct buf *b)
{
	if (!path)
		return fwrite(b->data, 1, b->len, stdout) == b->len && fflush(stdout) == 0 ? 0 : -1;
	/* evidence lines name our users' domains: not world-readable */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < b->len) {
		ssize_t n = write(fd, b->data + off, b->len - off);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	return close(fd);
}

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"db", required_argument, NULL, 'd'},
	    {"format", required_argument, NULL, 'f'}, {"output", required_argument, NULL, 'o'},
	    {"since", required_argument, NULL, 's'},  {"from", required_argument, NULL, 'F'},
	    {"to", required_argument, NULL, 'T'},     {"top", required_argument, NULL, 'n'},
	    {"lines", required_argument, NULL, 'l'},  {"no-redact", no_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *db_path = NULL, *out_path = NULL;
	int format = REPORT_TEXT, top = 20, lines = 200;
	int64_t since = 86400, from = 0, to = 0;
	bool has_from = false, has_to = false, has_since = false, redact = true;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:d:f:o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'd': db_path = optarg; break;
		case 'o': out_path = optarg; break;
		case 'f':
			format = report_format_parse(optarg);
			if (format < 0)
				return cli_usage_error("report", "--format is text, json or html");
			break;
		case 's':
			if (duration_parse(optarg, &since) < 0 || since <= 0)
				return cli_usage_error("report",
						       "--since takes a duration such as 1d or 12h");
			has_since = true;
			break;
		case 'F':
			if (parse_time(optarg, &from) < 0)
				return cli_usage_error(
				    "report", "--from takes an RFC 3339 time (2026-11-27T00:00:00Z)");
			has_from = true;
			break;
		case 'T':
			if (parse_time(optarg, &to) < 0)
				return cli_usage_error("report",
						       "--to takes an RFC 3339 time (2026-11-28T00:00:00Z)");
			has_to = true;
			break;
		case 'n':
			if (parse_count(optarg, 1000, &top) < 0)
				return cli_usage_error("report", "--top is 1..1000");
			break;
		case 'l':
			if (parse_count(optarg, 100000, &lines) < 0)
				return cli_usage_error("report", "--lines is 1..100000");
			break;
		case 'R': redact = false; break;
		case 'h': return cli_help("report");
		default: return cli_usage_error("report", NULL);
		}
	}
	if (optind >= argc)
		return cli_usage_error("report", "digest or evidence?");
	const char *what = argv[optind++];
	bool digest = strcmp(what, "digest") == 0;
	if (!digest && strcmp(what, "evidence") != 0)
		return cli_usage_error("report", "unknown report '%.40s' (digest or evidence)", what);
	struct prefix q;
	if (digest) {
		if (optind != argc)
			return cli_usage_error("report", "the digest takes no argument");
		if (has_since && (has_from || has_to))
			return cli_usage_error("report", "--since or --from/--to, not both");
		if (has_to && !has_from)
			return cli_usage_error("report", "--to needs --from");
	} else {
		if (optind != argc - 1)
			return cli_usage_error("report", "which address or prefix?");
		if (cli_parse_prefix("report", argv[optind], false, &q))
			return 2;
	}

	struct config c;
	struct db *db = cli_open_ro("report", conf_path, db_path, &c);
	if (!db)
		return 1;
	int64_t now = clock_now();
	struct buf e = BUF_INIT, out = BUF_INIT;
	json_t *r;
	if (digest) {
		if (!has_from) {
			to = now;
			from = now - since;
		} else if (!has_to) {
			to = now;
		}
		r = report_digest_json(db, from, to, now, top, &e);
		if (r && c.abuse.used) {
			/* what is worth an abuse report but has no contact */
			json_t *u = abuse_uncontacted_json(&c, db, from, to, now);
			if (u)
				json_object_set_new(r, "abuse_no_contact", u);
		}
	} else {
		r = report_evidence_json(db, &q, now, lines, redact, &e);
	}
	int rc = 0;
	if (!r) {
		fprintf(stderr, "mxwarden report: %s\n", buf_str(&e));
		rc = 1;
	} else if (report_render(r, (enum report_format)format, &out) < 0 || write_out(out_path, &out) < 0) {
		fprintf(stderr, "mxwarden report: cannot write the report%s%s\n", out_path ? " to " : "",
			out_path ? out_path : "");
		rc = 1;
	}
	json_decref(r);
	buf_free(&e);
	buf_free(&out);
	db_close(db);
	config_free(&c);
	return rc;
}
