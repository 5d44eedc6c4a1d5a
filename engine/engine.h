/*
 * engine.h - the daemon's core: the one thread that owns all mutable state
 * of `mxwarden run` and `mxwarden import`.
 *
 * What it does. It reads lines from the collector (followed files, the
 * syslog receiver, imported files), parses them (parsers/), stores their
 * events in the open database batch (db/), lets the aggregator judge them
 * (aggregator/), and commits each batch - events, rollups, counts,
 * decisions AND the file offsets - in one SQLite transaction, so `kill -9`
 * at any moment loses or repeats no line. After a batch that changed
 * decisions, and when decisions expire, it rewrites the blocklists
 * (emitters/). It starts and stops the web server (web/) and publishes the
 * outputs' state to it. Where it sits: above every module but cli/, which
 * parses arguments and calls engine_run() or engine_import().
 *
 * Owns (and nobody else touches): the configuration it loaded, the only
 * read-write database connection, the parser's and the aggregator's state,
 * the collector, the emitters and their reload children, the replay
 * writer's file. The caller owns the engine_opts: they must stay valid and
 * unchanged until engine_free().
 *
 * Threads. Every function here runs on the thread that made the engine, and
 * so does everything it calls, with two exceptions that own their own
 * state: the web server's threads read SQLite through read-only connections
 * of their own and the snapshots the engine hands them (web_set_outputs),
 * and an import's pipe writes its batches on one writer thread with a
 * connection of its own (db/pipe.c). A struct engine is never shared.
 *
 * Signals. engine_start() blocks SIGTERM, SIGINT, SIGHUP and SIGCHLD for the
 * whole process before any thread starts (threads inherit the mask) and
 * reads them from a signalfd in engine_step(): SIGTERM and SIGINT stop,
 * SIGHUP reloads the configuration (engine_reload), SIGCHLD reaps the
 * emitters' reload commands. The mask stays blocked after engine_free():
 * the process leaves these signals to the engine until it exits. SIGPIPE
 * is ignored.
 *
 * It must never:
 *   - commit an offset without the events of the lines before it, nor the
 *     other way round, nor a decision without the lines that caused it;
 *   - count a line twice in the aggregator: after a refused batch the
 *     lines are read again from the committed offsets and stored, and the
 *     aggregator does not see them again; the decision changes it made in
 *     the refused batch are stored again from the engine's journal;
 *   - block on anything but epoll_wait and SQLite's busy timeout (reload
 *     commands run in the background, the web server on its own threads);
 *   - let a log line decide which IP is blamed (that is the parser's job,
 *     from the MTA's own client field).
 *
 * Errors: functions that can fail log why (log_error) and return -1, NULL
 * or an exit status; a database that refuses a batch is not an error of the
 * engine: `run` reads the lines again after a second, `import` stops the
 * file (what was committed stays).
 */
#ifndef MXWARDEN_ENGINE_H
#define MXWARDEN_ENGINE_H

#include "base/base.h"

/* What `mxwarden run` and `mxwarden import` were asked for on the command
 * line; NULL and 0 mean "as the configuration says". */
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

struct engine;

/* ------------------------------------------------------------ the commands */

/* `mxwarden run`: engine_start(), engine_step() until SIGTERM or SIGINT,
 * engine_free(). Returns the exit status: 0, or 1 when it could not start
 * or a commit failed while it ran. */
int engine_run(const struct engine_opts *o);
/* `mxwarden import`: engine_import_open(), engine_import_file() for each
 * of files[0..nfiles) ("-" = standard input), engine_free(). Returns 0, or
 * 1 when it could not start or any file failed. */
int engine_import(const struct engine_opts *o, char **files, int nfiles);

/* ------------------------------------------------- a step at a time (tests) */

/*
 * Follow: load the configuration, open the database, start the web server
 * (it reads SQLite only, so it is up during a long restore), restore the
 * aggregator's state, start the outputs, the collector (followed files,
 * the syslog receiver), the replay writer, and register the files that
 * exist now. Returns the engine, or NULL (logged) when any of it failed.
 */
struct engine *engine_start(const struct engine_opts *o);
/*
 * One pass of the loop: wait at most timeout_ms (-1: until something
 * happens; the 50 ms tick always does) for lines, a signal or the tick,
 * then handle them: read and stage lines, commit when the batch is full,
 * old enough or the input drained, and once a second tick the aggregator
 * and the outputs. Returns 1 while running, 0 once SIGTERM or SIGINT came
 * (engine_free() then commits the open batch).
 */
int engine_step(struct engine *e, int timeout_ms);
/*
 * SIGHUP: read the configuration file again. Batch sizes, new files to
 * follow, the outputs and [safety] (emitters), the allow lists and the
 * MTA's trusted clients change while running; the aggregator's windows and
 * decisions, the database and the offsets are kept. A file with errors
 * changes nothing (logged).
 */
void engine_reload(struct engine *e);

/* Import: load the configuration, open the database for bulk writes and
 * restore the aggregator's state. NULL (logged) on failure. */
struct engine *engine_import_open(const struct engine_opts *o);
/*
 * Import one file (plain or gzip by its magic bytes; "-" = standard input)
 * to its end. A file seen before (by its fingerprint, also under another
 * name or compressed) is read only past its stored offset. Returns 0, or
 * -1 (logged): unreadable, or the database refused a batch (what was
 * committed stays; importing the file again continues after it).
 */
int engine_import_file(struct engine *e, const char *path);

/*
 * Stop: stop the web server, commit the open batch, wait up to 2 s for
 * reload commands, save the aggregator's state (a checkpoint in the
 * database, else the state file) and close. Returns the exit status of a
 * run (0, or 1 when a commit failed); 0 for an import.
 * engine_free(NULL) is a no-op returning 0.
 */
int engine_free(struct engine *e);

/* Counters of this engine's life. */
struct engine_stats {
	uint64_t lines;		/* read, overlong ones included */
	uint64_t events;	/* parsed */
	uint64_t unparsed;	/* lines that gave no event */
	uint64_t decisions;	/* decisions made */
	uint64_t commits;	/* batches committed */
	uint64_t commit_errors; /* batches the database refused */
	bool db_down;		/* the last batch was refused: waiting to read again */
};
void engine_get_stats(const struct engine *e, struct engine_stats *st);
/* The web server's TCP port (0 when it does not run): for listen ports 0. */
unsigned engine_web_port(const struct engine *e);

/* ---------------------------------------------------- the configuration */

/*
 * Load the configuration as every command does: defaults, then path when
 * not NULL, then validation (config_validate, and emitters_check_config
 * for what only the emitters know). Prints every error as FILE:LINE: message to
 * stderr and returns -1 when there was any, else 0.
 */
int engine_config_load(struct config *c, const char *path);
/* The same without printing: every error appended to errs (check-config
 * goes on to the checks that follow, whatever these found). */
void engine_config_read(struct config *c, const char *path, struct errlist *errs);
/*
 * The checks of c that look at the system, for check-config (one pass,
 * after the file's own errors): errors (a token file that cannot be read,
 * is readable by other users or holds no valid token: `run` would not
 * start) and warnings (those config_validate() left in c->warnings:
 * protected ranges dropped, syslog_udp_remote; followed files that do not
 * exist, relative paths, which depend on the directory mxwarden starts
 * in, an explicit lookup_url on a loopback address, which strangers cannot
 * open, and emitters_enforcement_warnings()). Messages are "FILE: message",
 * warnings "FILE[:LINE]: warning: message".
 */
void engine_config_checks(const struct config *c, struct strv *errors, struct strv *warnings);

/*
 * Read the clients the MTA trusts ([safety] mta_trusted: Postfix
 * mynetworks, Exim relay_from_hosts) into c->trusted_nets (mtaconf_read).
 * Logs each skipped pattern as a warning; returns -1 (logged) when an MTA
 * named explicitly cannot be read.
 */
int engine_trusted_load(struct config *c);

#endif
