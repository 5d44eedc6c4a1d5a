/*
 * cli.h - the mxwarden command line: one function per subcommand, each in
 * its own cmd_*.c file, dispatched from main.c's table.
 *
 * Contract: a subcommand receives argv starting at its own name, parses its
 * flags with getopt_long, and returns the process exit status: 0 success,
 * 1 a runtime or configuration failure (reported on stderr), 2 a usage
 * error (usage printed to stderr). It never calls exit() on the success path.
 */
#ifndef MXWARDEN_CLI_H
#define MXWARDEN_CLI_H

#include "base/base.h"

struct cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;    /* usage synopsis after the name */
	const char *summary; /* one line */
};

/* Print "usage: mxwarden NAME ARGS" for the subcommand to stderr; returns 2. */
int cli_usage_error(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Load the configuration: defaults, then path when not NULL, then
 * validation. Prints every error as FILE:LINE: message to stderr and
 * returns -1 when there was any.
 */
int cli_load_config(struct config *c, const char *path);

/*
 * Read the clients the MTA trusts ([safety] mta_trusted: Postfix mynetworks,
 * Exim relay_from_hosts) into c->trusted_nets (mtaconf_read). Logs each
 * skipped pattern as a warning; returns -1 (logged) when an MTA named
 * explicitly cannot be read.
 */
int cli_load_trusted(struct config *c);

/* Parse the command's address or prefix argument s into *out (strict:
 * host bits must be zero). 0, or a usage error (2) naming s, escaped. */
int cli_parse_prefix(const char *name, const char *s, bool strict, struct prefix *out);

struct db;
/* cli_load_config() into *c, then open the database (db_path, or the
 * configuration's) read-only. NULL after printing why ("mxwarden NAME:
 * ..."), with *c freed: the command exits 1. */
struct db *cli_open_ro(const char *name, const char *conf_path, const char *db_path, struct config *c);

int cmd_check_config(int argc, char **argv);
int cmd_parse(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_check_db(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_block(int argc, char **argv);
int cmd_unblock(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* engine.c: the ingest engine behind `run` and `import` (see its header comment). */
struct engine_opts {
	const char *config_path;   /* -c, NULL = defaults */
	const char *db_path;	   /* --db, NULL = [storage] db_path */
	struct strv follow;	   /* --follow, on top of [collector] follow */
	const char *listen;	   /* --listen (web), NULL = [web] listen */
	const char *syslog_listen; /* --syslog-listen, NULL = [collector] syslog_listen */
	const char *replay;	   /* --replay FILE: replay a sample log live */
	double replay_rate;	   /* --replay-rate lines/s (0 = 50) */
	const char *format;	   /* --format, NULL = [collector] format */
	bool no_inotify;	   /* --poll: the polling fallback */
	int64_t poll_ms;	   /* 0 = [collector] poll_interval */
	bool db_fast;		   /* synchronous=OFF (tests, benchmarks) */
	bool quiet;		   /* no progress line */
	bool no_pipeline;	   /* import: SQLite writes on the parsing thread (bench, tests) */
};
/* Follow until SIGTERM/SIGINT; returns the exit status. */
int engine_run(const struct engine_opts *o);
/* Import files ("-" = stdin) to their end; returns the exit status. */
int engine_import(const struct engine_opts *o, char **files, int nfiles);

#endif
