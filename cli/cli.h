/*
 * cli.h - the mxwarden command line: one function per subcommand, each in
 * its own cmd_*.c file, dispatched from main.c's table.
 *
 * Contract: a subcommand receives argv starting at its own name, parses its
 * flags with getopt_long, and returns the process exit status: 0 success,
 * 1 a runtime or configuration failure (reported on stderr), 2 a usage
 * error (usage printed to stderr). It never calls exit() on the success path.
 *
 * cli/ parses arguments and prints; the work is the modules': `run` and
 * `import` are the engine's (engine/engine.h), the configuration is loaded
 * by engine_config_load() for every command.
 */
#ifndef MXWARDEN_CLI_H
#define MXWARDEN_CLI_H

#include "base/base.h"
#include "engine/engine.h"

/* A subcommand and its usage text, written once (main.c's table). */
struct cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;		    /* synopsis after the name; forms separated by '\n' */
	const char *summary;		    /* one line, for `mxwarden --help` */
	const char *help;		    /* the flags, each with an example (`mxwarden NAME --help`) */
	void (*help_more)(struct buf *out); /* appends generated help (the format list); may be NULL */
};

/* Print "mxwarden NAME: message" (when fmt is not NULL) and the synopsis
 * "usage: mxwarden NAME ARGS" to stderr; returns 2. */
int cli_usage_error(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `mxwarden NAME --help`: the synopsis, what it does and its flags with
 * examples, to stdout; returns 0. */
int cli_help(const char *name);
/* A --for DURATION with its unit ("2d"; "2" alone is refused): 0 and the
 * seconds, or a usage error (2) saying what is wrong. */
int cli_parse_for(const char *name, const char *flag, const char *s, int64_t *secs);

/* Parse the command's address or prefix argument s into *out (strict:
 * host bits must be zero). 0, or a usage error (2) naming s, escaped. */
int cli_parse_prefix(const char *name, const char *s, bool strict, struct prefix *out);

struct db;
/* engine_config_load() into *c, then open the database (db_path, or the
 * configuration's) read-only. NULL after printing why ("mxwarden NAME:
 * ..."), with *c freed: the command exits 1. */
struct db *cli_open_ro(const char *name, const char *conf_path, const char *db_path, struct config *c);

/*
 * Privileges (privs.c). `run` as root: a warning that names the risk and
 * the fix; under systemd (INVOCATION_ID set) a refusal unless allow_root.
 * Returns 0 to go on, -1 (printed) to stop.
 */
int cli_root_check(bool allow_root);
/*
 * Commands that change the database (block, unblock, allow, unallow,
 * import, abuse-report), started as root: go on with the uid, gid and groups of the
 * user that owns the database db_path (else of its directory), so that root
 * creates no file in the daemon's state (the -wal and -shm files, a new
 * database) that the daemon then cannot open. Says so on stderr ("mxwarden
 * NAME: running as USER ..."). Nothing is done when not root or when root
 * owns the database. Returns 0, or 1 (printed) when the switch failed.
 */
int cli_as_db_owner(const char *name, const char *db_path);

int cmd_check_config(int argc, char **argv);
int cmd_parse(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_check_db(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_block(int argc, char **argv);
int cmd_unblock(int argc, char **argv);
int cmd_allow(int argc, char **argv);
int cmd_unallow(int argc, char **argv);
int cmd_decisions(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_abuse_report(int argc, char **argv);
int cmd_load(int argc, char **argv);

#endif
