/*
 * cmd_import.c - `mxwarden import [-c FILE] [--format F] [--db PATH] FILE...|-`:
 * read old logs (plain or .gz, or standard input) into the database, with a
 * progress line on a terminal. A file already imported (or followed), found
 * by its fingerprint, is read only past the stored offset, so importing the
 * same file twice adds nothing.
 *
 * --no-pipeline writes SQLite on the parsing thread (as `run` does) instead
 * of the pipe's writer thread: the same database, for benchmarks and tests.
 */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"

int cmd_import(int argc, char **argv)
{
	enum { OPT_FAST = 256, OPT_NO_PIPELINE };
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"db", required_argument, NULL, 'd'},
	    {"format", required_argument, NULL, 'F'}, {"quiet", no_argument, NULL, 'q'},
	    {"db-fast", no_argument, NULL, OPT_FAST}, {"no-pipeline", no_argument, NULL, OPT_NO_PIPELINE},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	struct engine_opts o = {0};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:d:F:qh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.config_path = optarg; break;
		case 'd': o.db_path = optarg; break;
		case 'F': o.format = optarg; break;
		case 'q': o.quiet = true; break;
		case OPT_FAST: o.db_fast = true; break;
		case OPT_NO_PIPELINE: o.no_pipeline = true; break;
		case 'h': return cli_help("import");
		default: return cli_usage_error("import", NULL);
		}
	}
	if (optind >= argc)
		return cli_usage_error("import", "no file to import (give FILE... or - for standard input)");
	if (geteuid() == 0) { /* the database's path, to switch to its owner */
		struct config c;
		if (engine_config_load(&c, o.config_path) < 0) {
			config_free(&c);
			return 1;
		}
		int rc = cli_as_db_owner("import", o.db_path ? o.db_path : c.db_path);
		config_free(&c);
		if (rc)
			return rc;
	}
	return engine_import(&o, argv + optind, argc - optind);
}
