/*
 * cmd_load.c - `mxwarden load FILE`: the root-run loader of one blocklist
 * (mxwarden-load@.service). The work and its checks are the emitters'
 * (emit_load, emitters.h); this parses the arguments, writes FILE.status
 * for the daemon and says what happened.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "emitters/emitters.h"

int cmd_load(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'h': return cli_help("load");
		default: return cli_usage_error("load", NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("load", "one blocklist file, please");
	const char *path = argv[optind];
	struct config c;
	if (engine_config_load(&c, conf_path) < 0) {
		config_free(&c);
		return 1;
	}
	struct emit_status s;
	int rc = emit_load(&c, path, &s);
	config_free(&c);
	if (emit_status_write(path, &s) < 0)
		fprintf(stderr, "mxwarden load: cannot write %s.status: %s\n", path, strerror(errno));
	if (rc < 0) {
		fprintf(stderr, "mxwarden load: %s: %s: %s\n", path, s.command, s.message);
		return 1;
	}
	fprintf(stderr, "mxwarden load: %s: loaded by %s\n", path, s.command);
	return 0;
}
