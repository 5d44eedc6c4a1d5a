/*
 * internal.h - what the files of engine/ share: the engine's state and the
 * functions one file calls in another. Not for other modules (engine.h is
 * the interface).
 *
 * The files, along the seams of the work:
 *   engine.c   open, restore, reload (SIGHUP), the final checkpoint, close;
 *              loading the configuration
 *   loop.c     engine_start/engine_step/engine_run: epoll over the
 *              collector, a signalfd and a timerfd; the periodic tick
 *   checkpoint.c  `run`'s checkpoints, written by a forked child
 *   batch.c    one line in (parse, store, judge); the open batch and its
 *              commit with the offsets; the journal of decision changes
 *              (stored again after a refused batch); the aggregator's
 *              checkpoint; the import's pipe
 *   sources.c  the followed files: their database rows, where each was left
 *              (for the collector), the collector's line sink
 *   import.c   engine_import: one file after another, the progress line, and
 *              the re-feed of a checkpoint's file after a crash
 *   replay.c   --replay: the sample log written live into var/replay.log
 *   service.c  systemd's notification socket: ready, status, watchdog
 *   outputs.c  the blocklists (emitters) after decisions change, the web
 *              server's start and stop, the outputs' state for /metrics;
 *              the [notify] command and the scheduled digest ([report])
 */
#ifndef MXWARDEN_ENGINE_INTERNAL_H
#define MXWARDEN_ENGINE_INTERNAL_H

#include "aggregator/aggregator.h"
#include "collector/collector.h"
#include "db/db.h"
#include "emitters/emitters.h"
#include "engine/engine.h"
#include "parsers/parsers.h"
#include "reports/notify.h"
#include "reports/schedule.h"
#include "web/web.h"

#define TICK_MS		    50
#define RETENTION_EVERY_US  (60LL * 1000000)
#define AGG_TICK_EVERY_US   (1000LL * 1000)
#define REPLAY_ROTATE_BYTES (8 << 20)
#define IMPORT_BATCH_FACTOR 20 /* import commits every 20 x batch_lines lines */

/* What the engine keeps per collector source (a followed path). */
struct esrc {
	int64_t db_id;		  /* the db_source row of the file being read; 0 = none yet */
	struct coll_pos id;	  /* its identity */
	int64_t offset;		  /* offset after the last line of this file in the batch */
	int64_t lines;		  /* lines_read of the db row, this batch included */
	bool dirty;		  /* offset/lines changed since the last commit */
	struct parser_source *ps; /* parser state of this stream */
	/* how far the aggregator has seen this source (this file, and the one
	 * before it): lines read again after a refused batch are stored but not
	 * counted a second time */
	struct coll_pos agg_id, agg_prev_id;
	int64_t agg_off, agg_prev_off;
};

/* A decision change stored in the open batch: made again at the next batch
 * when this one is refused (the aggregator made it once and will not again). */
struct jchange {
	enum agg_change_kind kind;
	struct decision d;
	char *evidence;
	const char *end_reason;
	enum response from;
	int64_t at;
};

struct replay {
	char *path; /* var/replay.log */
	struct buf sample;
	size_t at;	 /* next line in sample */
	double rate;	 /* lines per second */
	double owed;	 /* lines due, not written yet */
	int64_t last_us; /* monotonic */
	int fd;
	int64_t written; /* bytes in the current file */
	uint64_t rounds;
};

struct engine {
	const struct engine_opts *o; /* the caller's, valid until engine_free() */
	struct config conf;
	size_t trusted_n; /* networks the MTA trusts, as last read (start, SIGHUP) */
	char *db_path;
	struct db *db;
	struct parser *parser;
	struct aggregator *agg;
	bool decisions_changed; /* since the emitters last ran */
	enum mta hint;
	struct collector *coll;
	struct esrc *src;
	size_t n_src;
	struct parser_source *syslog_ps;
	int64_t syslog_src_id; /* the db_source row of the syslog receiver */
	int64_t syslog_lines;
	bool syslog_on; /* the syslog receiver listens */
	bool syslog_dirty;
	uint64_t syslog_dropped_stored; /* collector's syslog_dropped already counted in the db */
	/* the known sources at start, for coll_lookup */
	struct db_source *known;
	size_t n_known, cap_known;
	/* the open batch */
	int64_t batch_lines;
	int64_t batch_start_us; /* monotonic, when the first line came */
	int64_t unparsed[64];	/* by parse reason (+ overlong at the end) */
	/* lifetime counters of this run */
	uint64_t lines, events, unparsed_total, commits, commit_errors;
	int64_t last_retention_us, last_agg_tick_us;
	int64_t clk_wall_us, clk_mono_us; /* at the last aggregator tick: clock steps */
	bool retention_more;
	bool drained; /* the collector had nothing more to read (the judge may take the wall clock) */
	volatile bool stop;
	/* the database refused a begin or commit: lines since the last commit are
	 * ignored, then read again from the committed positions after a pause */
	bool db_down;
	bool rewound;	     /* collector_rewind() done for this failure */
	int64_t db_retry_us; /* monotonic: when to try again */
	bool import_failed;
	struct replay replay;
	/* import */
	int64_t import_src_id;
	int64_t import_offset;
	int64_t import_lines;
	struct parser_source *import_ps;
	int64_t progress_t0_us, progress_last_us;
	bool progress_done; /* the 100% line was printed */
	bool progress_tty;  /* a progress line on stderr (a terminal, not --quiet) */
	bool importing;
	/* import: batches staged here and written by the pipe's writer thread
	 * (NULL: written by this thread, as `run` does). One pipe serves the
	 * whole import (pipe_keep; its row handles stay valid across files);
	 * pipe is set while a file's lines are read. */
	struct db_pipe *pipe, *pipe_keep;
	bool staging;	  /* a batch is being staged in the pipe */
	bool pipe_failed; /* pipe_keep refused a batch: no more pipelining */
	uint64_t decisions_made;
	const char *progress_name;
	/* the blocklists ([output NAME]), `run` only */
	struct emitters *em;
	bool em_synced; /* the outputs were written once */
	struct decision *em_active;
	size_t em_n, em_cap;
	struct buf em_metrics, em_published; /* their state for /metrics: rendered, last handed over */
	struct web *web;		     /* the dashboard and API (run only) */
	/* [notify] and the scheduled digest (run only; NULL when off). A
	 * decision or upgrade is told after the batch that stored it commits:
	 * kept in `told` until then (a refused batch stores it again, and so
	 * adds it again) */
	struct notify *notify;
	struct report_sched *sched;
	struct jchange *told;
	size_t n_told, cap_told;
	/* the loop (run only) */
	int sfd, tfd, epfd; /* signalfd, timerfd, epoll; -1 = none */
	bool more;	    /* the collector had more to read at the last step */
	bool running;	    /* engine_start() finished: the loop runs */
	struct prefix_list syslog_allow;
	struct prefix_list allows; /* the allows made by hand in force, as last read */
	int64_t audit_seen;	   /* the newest audit row id when decisions last changed by hand */
	/* the aggregator's checkpoint in the database ([storage] checkpoint_interval) */
	int64_t ckpt_last_us;	 /* monotonic, the last one committed */
	bool ckpt_in_batch;	 /* the open batch carries one */
	uint64_t ckpt_lines;	 /* e->lines when it was written */
	uint64_t ckpt_put_lines; /* ... the one in the open batch */
	bool ckpt_current;	 /* the stored checkpoint is the state: restored from it, nothing since */
	bool ckpt_written;	 /* ... or one written by this run (with ckpt_lines == lines) */
	bool ckpt_force;	 /* a checkpoint with the next batch (the end of an imported file) */
	/* run: the checkpoint's writer, a forked child (checkpoint.c) */
	pid_t ckpt_pid;		  /* running, 0 = none */
	uint64_t ckpt_seq;	  /* the file it writes (DB.ckpt-SEQ) */
	int64_t ckpt_fork_at;	  /* wall clock when forked */
	uint64_t ckpt_fork_lines; /* e->lines then */
	int64_t ckpt_fork_max_id; /* the largest event id stored then */
	int64_t ckpt_fork_us;	  /* monotonic, when forked */
	int64_t ckpt_fork_max_us; /* the longest fork, for the log and tests */
	bool ckpt_nofork;	  /* fork failed: in the batch for a while */
	bool closing;		  /* eng_close() runs: no new writer */
	/* exactness across a refused batch (db_failed) */
	bool agg_recover; /* lines the aggregator saw are being read again */
	bool no_agg;	  /* engine_line: store the line, do not count it again */
	struct jchange *journal;
	size_t n_journal, cap_journal;
	bool redo; /* the journal's changes were rolled back: store them again */
	/* [collector] journal (run only; NULL when off): the reader, its parser
	 * state and db row, lines read (the row's lines_read), the cursor and
	 * line count of the last commit (a refused batch goes back there), and
	 * how far the aggregator has seen (lines read again are not counted
	 * again) */
	struct coll_journal *sdj;
	struct parser_source *sdj_ps;
	int64_t sdj_src_id, sdj_lines, sdj_committed_lines, sdj_agg_lines;
	char *sdj_committed;
	/* systemd (service.c): the watchdog's ping interval (0: none), the last
	 * ping and status line (monotonic), e->lines then */
	int64_t svc_watchdog_us, svc_watchdog_last_us, svc_status_us;
	uint64_t svc_status_lines;
};

#define UNPARSED_OVERLONG 63

/* engine.c */
int eng_db_flags(const struct engine *e);
int eng_open(struct engine *e, const struct engine_opts *o, bool importing);
void eng_restore(struct engine *e);
void eng_close(struct engine *e);

/* batch.c */
void eng_line(struct engine *e, struct parser_source *ps, int64_t source_id, const struct coll_line *ln);
int eng_batch_begin(struct engine *e);
int eng_batch_commit(struct engine *e);
void eng_maybe_commit(struct engine *e, bool force);
void eng_db_failed(struct engine *e);
void eng_pipe_failed(struct engine *e);
int eng_checkpoint_put(struct engine *e);
bool eng_checkpoint_due(const struct engine *e);
bool eng_checkpoint_final(struct engine *e);
bool eng_aggregator_tick(struct engine *e, int64_t now);
void eng_journal_clear(struct engine *e);

/* checkpoint.c */
bool eng_checkpoint_forks(const struct engine *e);
void eng_checkpoint_fork(struct engine *e);
void eng_checkpoint_reap(struct engine *e);
void eng_checkpoint_abort(struct engine *e);

/* sources.c */
bool eng_same_ident(const struct coll_pos *a, const struct coll_pos *b);
int eng_collect_known(void *arg, const struct db_source *s);
int eng_coll_lookup(void *ctx, const char *key, struct coll_pos *pos);
void eng_known_update(struct engine *e, size_t i);
void eng_sync_sources(struct engine *e);
void eng_on_line(void *ctx, const struct coll_line *ln);
int eng_journal_start(struct engine *e);
void eng_journal_stop(struct engine *e);

/* import.c */
int eng_refeed(void *arg, struct aggregator *a, const struct db_checkpoint *c);

/* replay.c */
int eng_replay_init(struct engine *e);
void eng_replay_tick(struct engine *e);
void eng_replay_free(struct engine *e);

/* service.c */
/* db_busy_fn (db_set_busy_hook): a long check at start, told to systemd. */
void eng_service_busy(void *arg, const char *what);
void eng_service_ready(struct engine *e);
void eng_service_tick(struct engine *e);
void eng_service_reloading(struct engine *e, bool done);
void eng_service_stopping(struct engine *e);

/* outputs.c */
int eng_allows_sync(struct engine *e);
void eng_warn_enforcement(const struct config *c, const char *when);
int eng_outputs_start(struct engine *e);
void eng_outputs_update(struct engine *e, bool decisions_changed);
void eng_outputs_child_exited(struct engine *e);
void eng_outputs_stop(struct engine *e);
void eng_notify_start(struct engine *e);
void eng_notify_reload(struct engine *e, const struct config *nc);
void eng_notify_add(struct engine *e, const struct agg_change *ch, const struct decision *d);
void eng_notify_flush(struct engine *e, bool committed);
void eng_notify_tick(struct engine *e);
void eng_notify_stop(struct engine *e);
int eng_web_start(struct engine *e, const char *listen);
void eng_web_stop(struct engine *e);

#endif
