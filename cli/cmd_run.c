/*
 * cmd_run.c - `mxwarden run`: follow the configured and given files (and the
 * syslog receiver when enabled) in the foreground, logging to stderr, until
 * SIGTERM/SIGINT; SIGHUP reloads the configuration. The work is the
 * engine's (engine/engine.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cmd_run(int argc, char **argv)
{
	enum {
		OPT_REPLAY = 256,
		OPT_REPLAY_RATE,
		OPT_SYSLOG,
		OPT_POLL,
		OPT_FAST,
		OPT_POLL_MS,
		OPT_ALLOW_ROOT
	};
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"db", required_argument, NULL, 'd'},
	    {"follow", required_argument, NULL, 'f'},
	    {"listen", required_argument, NULL, 'l'},
	    {"syslog-listen", required_argument, NULL, OPT_SYSLOG},
	    {"replay", required_argument, NULL, OPT_REPLAY},
	    {"replay-rate", required_argument, NULL, OPT_REPLAY_RATE},
	    {"format", required_argument, NULL, 'F'},
	    {"poll", no_argument, NULL, OPT_POLL},
	    {"poll-ms", required_argument, NULL, OPT_POLL_MS},
	    {"db-fast", no_argument, NULL, OPT_FAST},
	    {"allow-root", no_argument, NULL, OPT_ALLOW_ROOT},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct engine_opts o = {0};
	int ch, rc;
	bool allow_root = false;
	char *end;
	while ((ch = getopt_long(argc, argv, "c:d:f:l:F:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.config_path = optarg; break;
		case 'd': o.db_path = optarg; break;
		case 'f': strv_add(&o.follow, optarg); break;
		case 'l': o.listen = optarg; break;
		case 'F': o.format = optarg; break;
		case OPT_SYSLOG: o.syslog_listen = optarg; break;
		case OPT_REPLAY: o.replay = optarg; break;
		case OPT_REPLAY_RATE:
			o.replay_rate = strtod(optarg, &end);
			if (*end || o.replay_rate <= 0 || o.replay_rate > 1e7) {
				strv_free(&o.follow);
				return cli_usage_error(
				    "run", "--replay-rate wants lines per second, got '%s'", optarg);
			}
			break;
		case OPT_POLL: o.no_inotify = true; break;
		case OPT_POLL_MS:
			o.poll_ms = strtoll(optarg, &end, 10);
			if (*end || o.poll_ms < 10) {
				strv_free(&o.follow);
				return cli_usage_error("run", "--poll-ms wants milliseconds >= 10, got '%s'",
						       optarg);
			}
			break;
		case OPT_FAST: o.db_fast = true; break;
		case OPT_ALLOW_ROOT: allow_root = true; break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'h': strv_free(&o.follow); return cli_help("run");
		default: strv_free(&o.follow); return cli_usage_error("run", NULL);
		}
	}
	if (optind < argc) {
		strv_free(&o.follow);
		return cli_usage_error("run", "unexpected argument '%s' (files are given with --follow)",
				       argv[optind]);
	}
	if (cli_root_check(allow_root) < 0) {
		strv_free(&o.follow);
		return 1;
	}
	rc = engine_run(&o);
	strv_free(&o.follow);
	return rc;
}
