/*
 * cmd_check_config.c - `mxwarden check-config [-c FILE] [-v]`: read the
 * file, report every mistake as FILE:LINE: message, exit 1 when there is
 * any (also in [abuse] contacts, the contact map); with -v print the
 * effective configuration, with the networks the MTA trusts (mta_trusted)
 * and where each came from; with --keys the key table itself (every key's
 * value, default, bounds and meaning: the README's reference, and what a
 * man page is made from).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "parsers/parsers.h"
#include "reports/abuse.h"
#include "web/web.h"

int cmd_check_config(int argc, char **argv)
{
	enum { OPT_KEYS = 256 };
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"keys", optional_argument, NULL, OPT_KEYS},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL, *keys = NULL;
	bool verbose = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'v': verbose = true; break;
		case OPT_KEYS: keys = optarg ? optarg : "markdown"; break;
		case 'h': return cli_help("check-config");
		default: return cli_usage_error("check-config", NULL);
		}
	}
	if (optind < argc)
		return cli_usage_error("check-config", "unexpected argument '%s'", argv[optind]);
	if (keys) {
		if (strcmp(keys, "markdown") != 0 && strcmp(keys, "tsv") != 0)
			return cli_usage_error("check-config", "--keys is markdown or tsv, not '%s'", keys);
		struct buf b = BUF_INIT;
		config_keys(&b, strcmp(keys, "tsv") == 0);
		fputs(buf_str(&b), stdout);
		buf_free(&b);
		return 0;
	}
	struct config c;
	int rc = engine_config_load(&c, path);
	if (rc == 0)
		rc = engine_trusted_load(&c); /* -v shows each network with its source */
	if (rc == 0) {
		/* compile the [parser NAME] patterns: a bad one is reported with its offset */
		struct errlist errs = {0};
		struct parser *p = parser_new(&c, &errs);
		for (size_t i = 0; i < errs.msgs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs.v[i]);
		if (!p)
			rc = -1;
		parser_free(p);
		errlist_free(&errs);
	}
	if (rc == 0 && c.abuse.contacts) {
		/* every bad line of the contact map, as FILE:LINE: message */
		struct errlist errs = {0};
		struct abuse_contacts *m = abuse_contacts_load(&c.abuse, &errs);
		for (size_t i = 0; i < errs.msgs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs.v[i]);
		if (!m)
			rc = -1;
		abuse_contacts_free(m);
		errlist_free(&errs);
	}
	if (rc == 0 && c.token_file) {
		struct buf err = BUF_INIT;
		if (web_token_read(c.token_file, NULL, &err) < 0) {
			fprintf(stderr, "%s: %s\n", path ? path : "(built-in defaults)", buf_str(&err));
			rc = -1;
		}
		buf_free(&err);
	}
	if (rc == 0) {
		if (verbose) {
			struct buf b = BUF_INIT;
			config_dump(&c, &b);
			fputs(buf_str(&b), stdout);
			buf_free(&b);
		}
		fprintf(stderr, "%s: OK\n", path ? path : "(built-in defaults)");
	}
	config_free(&c);
	return rc == 0 ? 0 : 1;
}
