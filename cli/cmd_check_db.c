/*
 * cmd_check_db.c - `mxwarden check-db [-c FILE] [--db PATH] [--full]`: is
 * the database sound? PRAGMA quick_check (or integrity_check with --full,
 * which also compares every index with its table), through a read-only
 * connection, so it may run beside the daemon. Exit 0 when sound, 1 when
 * damaged (the problems, then how to recover) or when it cannot be read.
 * It must never change the database.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "db/db.h"

int cmd_check_db(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"db", required_argument, NULL, 'd'},
	    {"full", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *db_path = NULL;
	bool full = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:d:fh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'd': db_path = optarg; break;
		case 'f': full = true; break;
		case 'h': return cli_help("check-db");
		default: return cli_usage_error("check-db", NULL);
		}
	}
	if (optind < argc)
		return cli_usage_error("check-db", "unexpected argument '%s'", argv[optind]);
	struct config c;
	struct db *db = cli_open_ro("check-db", conf_path, db_path, &c);
	if (!db)
		return 1;
	const char *path = db_path ? db_path : c.db_path;
	struct strv probs = {0};
	int64_t t0 = clock_mono_us();
	int r = db_quick_check(db, full, &probs);
	double secs = (double)(clock_mono_us() - t0) / 1e6;
	int rc = 0;
	if (r < 0) {
		fprintf(stderr, "mxwarden check-db: %s: %s\n", path, db_errmsg(db));
		rc = 1;
	} else if (r > 0) {
		printf("%s: damaged: %s found %zu problem(s) in %.2f s:\n", path,
		       full ? "integrity_check" : "quick_check", probs.n, secs);
		for (size_t i = 0; i < probs.n; i++)
			printf("  %s\n", probs.v[i]);
		struct buf m = BUF_INIT;
		db_damaged_message(path, probs.v[0], &m);
		fprintf(stderr, "mxwarden check-db: %s\n", buf_str(&m));
		buf_free(&m);
		rc = 1;
	} else {
		printf("%s: ok (%s of %.1f MB in %.2f s)\n", path, full ? "integrity_check" : "quick_check",
		       (double)db_size_bytes(db) / 1e6, secs);
	}
	strv_free(&probs);
	db_close(db);
	config_free(&c);
	return rc;
}
