/*
 * cmd_check_config.c - `mxwarden check-config [-c FILE] [-v]`: read the
 * file and report every mistake in one pass, as FILE:LINE: message (the
 * file's own errors, the MTA's trusted clients, the [parser NAME] patterns
 * and the time zone, [abuse] contacts (the contact map), then what only the
 * system can tell: a token file that cannot be read, is readable by other
 * users or holds no valid token), then the warnings
 * (followed files that do not exist, relative paths, a loopback lookup_url,
 * decisions that reach no output); exit 1 when there is any error. With -v
 * print the effective configuration, with the networks the MTA trusts and
 * where each came from; with --keys the key table itself (every key's
 * value, default, bounds and meaning: the README's reference, and what a
 * man page is made from).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "parsers/parsers.h"
#include "reports/abuse.h"

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
	/* every check runs, whatever the ones before found: a mistake found
	 * only after the others are fixed costs a round trip each */
	struct config c;
	struct errlist errs = {0};
	engine_config_read(&c, path, &errs);
	size_t nerr = errs.msgs.n;
	for (size_t i = 0; i < errs.msgs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs.v[i]);
	errlist_free(&errs);
	if (engine_trusted_load(&c) < 0) /* -v shows each network with its source */
		nerr++;
	/* the [parser NAME] patterns (a bad one with its offset) and the time zone */
	struct errlist perrs = {0};
	struct parser *p = parser_new(&c, &perrs);
	for (size_t i = 0; i < perrs.msgs.n; i++)
		fprintf(stderr, "%s\n", perrs.msgs.v[i]);
	if (!p)
		nerr += perrs.msgs.n ? perrs.msgs.n : 1;
	parser_free(p);
	errlist_free(&perrs);
	if (c.abuse.contacts) {
		/* every bad line of the contact map, as FILE:LINE: message */
		struct errlist aerrs = {0};
		struct abuse_contacts *m = abuse_contacts_load(&c.abuse, &aerrs);
		for (size_t i = 0; i < aerrs.msgs.n; i++)
			fprintf(stderr, "%s\n", aerrs.msgs.v[i]);
		if (!m)
			nerr += aerrs.msgs.n ? aerrs.msgs.n : 1;
		abuse_contacts_free(m);
		errlist_free(&aerrs);
	}
	struct strv cerr = {0}, cwarn = {0};
	engine_config_checks(&c, &cerr, &cwarn);
	for (size_t i = 0; i < cerr.n; i++)
		fprintf(stderr, "%s\n", cerr.v[i]);
	nerr += cerr.n;
	for (size_t i = 0; i < cwarn.n; i++)
		fprintf(stderr, "%s\n", cwarn.v[i]);
	if (nerr == 0) {
		if (verbose) {
			struct buf b = BUF_INIT;
			config_dump(&c, &b);
			fputs(buf_str(&b), stdout);
			buf_free(&b);
		}
		fprintf(stderr, "%s: OK%s\n", path ? path : "(built-in defaults)",
			cwarn.n ? " (with the warnings above)" : "");
	} else {
		fprintf(stderr, "%zu error%s in %s%s\n", nerr, nerr == 1 ? "" : "s",
			path ? path : "the built-in defaults", cwarn.n ? " (and the warnings above)" : "");
	}
	strv_free(&cerr);
	strv_free(&cwarn);
	config_free(&c);
	return nerr == 0 ? 0 : 1;
}
