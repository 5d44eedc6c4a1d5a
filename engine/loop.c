/*
 * loop.c - `mxwarden run`: one epoll loop over
 *   - the collector's fd (inotify on the followed files' directories, the
 *     syslog sockets),
 *   - a signalfd: SIGTERM/SIGINT flush the open batch and stop, SIGHUP
 *     reloads the configuration, SIGCHLD reaps children (emitters' reload
 *     commands),
 *   - a timerfd every TICK_MS: batch flush after batch_ms, collector polling
 *     and rotation switches, aggregator expiry ticks, retention, the replay
 *     writer.
 * engine_start() sets it up, engine_step() is one pass, engine_run() both
 * until a signal stops it.
 */
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "engine/internal.h"

static void periodic(struct engine *e)
{
	int64_t now_us = clock_mono_us();
	eng_service_tick(e); /* the watchdog: only a loop that turns pings it */
	if (e->replay.path)
		eng_replay_tick(e);
	if (e->db_down)
		return; /* the loop brings the collector back at db_retry_us */
	collector_tick(e->coll);
	eng_sync_sources(e);
	eng_checkpoint_reap(e);
	eng_maybe_commit(e, false);
	/* a quiet input: the state of the last lines is saved all the same */
	if (!db_in_batch(e->db) && eng_checkpoint_due(e) && eng_batch_begin(e) == 0)
		eng_batch_commit(e);
	if (now_us - e->last_agg_tick_us >= AGG_TICK_EVERY_US) {
		e->last_agg_tick_us = now_us;
		/* a wall clock that steps is logged: a block keeps its UTC until,
		 * an ended one stays ended (README, "Decisions and the clock") */
		int64_t wall_us = clock_now_us();
		int64_t step = (wall_us - e->clk_wall_us) - (now_us - e->clk_mono_us);
		if (e->clk_wall_us && (step > 10000000 || step < -10000000))
			log_warn(
			    "the wall clock stepped %+llds: running blocks keep their until, ended ones stay "
			    "ended",
			    (long long)(step / 1000000));
		e->clk_wall_us = wall_us;
		e->clk_mono_us = now_us;
		/* every tick: expiries, timeout refreshes, reload timeouts */
		eng_outputs_update(e, eng_aggregator_tick(e, e->drained ? clock_now() : 0));
		eng_notify_tick(e);
	}
	if (!db_in_batch(e->db) &&
	    (e->retention_more || now_us - e->last_retention_us >= RETENTION_EVERY_US)) {
		e->last_retention_us = now_us;
		int64_t n = db_retention_run(e->db, clock_now(), &e->conf);
		if (n < 0)
			log_warn("retention: %s", db_errmsg(e->db));
		e->retention_more = n > 0;
	}
}

static void signals_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGCHLD);
	sigprocmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The collector and the syslog receiver's source row. 0, or -1 (logged). */
/* A followed path that matches no file is read once it appears, but a
 * typo would be silent forever: say so at start. */
static void warn_missing(const char *pattern)
{
	glob_t g;
	int r = glob(pattern, GLOB_NOSORT, NULL, &g);
	if (r == 0)
		globfree(&g);
	else if (r == GLOB_NOMATCH)
		log_warn(
		    "follow: %s matches no file now; it is read once it appears (if its directory exists)",
		    pattern);
}

static int collector_start(struct engine *e)
{
	const struct engine_opts *o = e->o;
	for (size_t i = 0; i < e->conf.syslog_allow.n; i++) {
		struct prefix p;
		const char *s = e->conf.syslog_allow.v[i];
		if (prefix_parse(&p, s, strlen(s), false) == 0)
			prefix_list_add(&e->syslog_allow, &p);
	}
	struct coll_opts co = {
	    .poll_ms = e->conf.poll_interval * 1000,
	    .no_inotify = o->no_inotify,
	    .syslog_listen = o->syslog_listen ? o->syslog_listen : e->conf.syslog_listen,
	    .syslog_max_msg = (size_t)e->conf.syslog_max_msg,
	    .syslog_max_conn = (int)e->conf.syslog_max_conn,
	    .syslog_allow = &e->syslog_allow,
	    .syslog_udp_remote = e->conf.syslog_udp_remote,
	    .lookup = eng_coll_lookup,
	    .lookup_ctx = e,
	};
	if (o->poll_ms > 0)
		co.poll_ms = o->poll_ms;
	e->coll = collector_new(&co, eng_on_line, e);
	if (!e->coll)
		return -1;
	e->syslog_ps = parser_source_new(e->parser, "syslog", e->hint);
	if (co.syslog_listen) {
		struct db_source ds;
		memset(&ds, 0, sizeof ds);
		ds.kind = DB_SRC_SYSLOG;
		snprintf(ds.path, sizeof ds.path, "syslog:%s", co.syslog_listen);
		if (db_source_get_or_create(e->db, &ds, clock_now()) < 0) {
			log_error("database: source: %s", db_errmsg(e->db));
			return -1;
		}
		e->syslog_src_id = ds.id;
		e->syslog_lines = ds.lines_read;
		e->syslog_on = true;
	}
	size_t nfollow = 0;
	for (size_t i = 0; i < e->conf.follow.n; i++, nfollow++) {
		collector_follow(e->coll, e->conf.follow.v[i]);
		warn_missing(e->conf.follow.v[i]);
	}
	for (size_t i = 0; i < o->follow.n; i++, nfollow++) {
		collector_follow(e->coll, o->follow.v[i]);
		warn_missing(o->follow.v[i]);
	}
	if (e->replay.path) {
		collector_follow(e->coll, e->replay.path);
		nfollow++;
	}
	if (eng_journal_start(e) < 0)
		return -1;
	if (nfollow == 0 && !co.syslog_listen && !e->sdj)
		log_warn("nothing to follow: give --follow FILE, [collector] follow or journal, or a syslog "
			 "listener");
	return 0;
}

/* The signalfd, the timerfd and epoll over them and the collector. */
static int loop_start(struct engine *e, const sigset_t *set)
{
	e->sfd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
	e->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->sfd < 0 || e->tfd < 0 || e->epfd < 0) {
		log_error("engine: %s", strerror(errno));
		return -1;
	}
	struct itimerspec its = {{0, TICK_MS * 1000000L}, {0, TICK_MS * 1000000L}};
	timerfd_settime(e->tfd, 0, &its, NULL);
	struct epoll_event ev = {.events = EPOLLIN};
	ev.data.fd = e->sfd;
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->sfd, &ev);
	ev.data.fd = e->tfd;
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->tfd, &ev);
	ev.data.fd = collector_fd(e->coll);
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
	if (e->sdj && coll_journal_fd(e->sdj) >= 0) {
		ev.data.fd = coll_journal_fd(e->sdj);
		epoll_ctl(e->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
	}
	return 0;
}

struct engine *engine_start(const struct engine_opts *o)
{
	struct engine *e = xcalloc(1, sizeof *e);
	if (eng_open(e, o, false) < 0)
		goto fail;
	/* signals are blocked before any thread starts (threads inherit the
	 * mask) and read from a signalfd in the loop */
	sigset_t set;
	signals_block(&set);
	/* the dashboard first (it reads SQLite only), then the restore, which
	 * may take a while on a big database */
	if (eng_web_start(e, o->listen) < 0)
		goto fail;
	eng_restore(e);
	if (db_sources_list(e->db, eng_collect_known, e) < 0) {
		log_error("database: sources: %s", db_errmsg(e->db));
		goto fail;
	}
	if (o->replay && eng_replay_init(e) < 0)
		goto fail;
	if (eng_outputs_start(e) < 0)
		goto fail;
	eng_notify_start(e);
	if (collector_start(e) < 0 || loop_start(e, &set) < 0)
		goto fail;
	/* files that exist now are registered at once, before any line */
	eng_sync_sources(e);
	eng_batch_commit(e);
	log_info("running: database %s, %zu file(s) followed%s", e->db_path, collector_source_count(e->coll),
		 e->syslog_on ? ", syslog receiver on" : "");
	e->more = true;
	e->running = true;
	eng_service_ready(e);
	return e;
fail:
	engine_free(e);
	return NULL;
}

static void signals_read(struct engine *e)
{
	struct signalfd_siginfo si;
	while (read(e->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("signal %u: flushing the open batch and stopping", si.ssi_signo);
			e->stop = true;
		} else if (si.ssi_signo == SIGHUP) {
			eng_service_reloading(e, false);
			engine_reload(e);
			eng_service_reloading(e, true);
		} else if (si.ssi_signo == SIGCHLD) {
			eng_outputs_child_exited(e);
			eng_notify_tick(e);
			eng_checkpoint_reap(e);
		}
	}
}

int engine_step(struct engine *e, int timeout_ms)
{
	if (e->stop)
		return 0;
	struct epoll_event evs[8];
	int n = epoll_wait(e->epfd, evs, MXW_ARRAY_LEN(evs), e->more ? 0 : timeout_ms);
	if (n < 0 && errno != EINTR) {
		log_error("epoll_wait: %s", strerror(errno));
		e->stop = true;
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (evs[i].data.fd == e->sfd) {
			signals_read(e);
		} else if (evs[i].data.fd == e->tfd) {
			uint64_t ticks;
			while (read(e->tfd, &ticks, sizeof ticks) > 0)
				;
			periodic(e);
		}
	}
	if (e->stop)
		return 0;
	if (e->db_down) {
		if (!e->rewound) {
			/* outside the sink: drop what was read since the last commit */
			collector_rewind(e->coll);
			if (e->sdj) {
				coll_journal_seek(e->sdj, e->sdj_committed);
				e->sdj_lines = e->sdj_committed_lines;
			}
			epoll_ctl(e->epfd, EPOLL_CTL_DEL, collector_fd(e->coll), NULL);
			e->rewound = true;
		}
		e->more = false;
		if (clock_mono_us() < e->db_retry_us)
			return 1;
		e->db_down = false;
		e->rewound = false;
		struct epoll_event ev = {.events = EPOLLIN};
		ev.data.fd = collector_fd(e->coll);
		epoll_ctl(e->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
		log_info("database: trying again from the committed positions");
	}
	e->more = collector_run(e->coll);
	if (e->sdj && coll_journal_run(e->sdj, 4096, eng_on_line, e) > 0)
		e->more = true;
	e->drained = !e->more;
	/* lines wait at most batch_ms (a busy loop must not starve the timer's
	 * flush); when the input is drained, a batch a quarter that old is
	 * committed already: low latency when idle, big batches under load */
	if (!e->more && db_in_batch(e->db) &&
	    clock_mono_us() - e->batch_start_us >= e->conf.batch_ms * 1000 / 4)
		eng_batch_commit(e);
	else
		eng_maybe_commit(e, false);
	return 1;
}

int engine_run(const struct engine_opts *o)
{
	struct engine *e = engine_start(o);
	if (!e)
		return 1;
	while (engine_step(e, -1) > 0)
		;
	return engine_free(e);
}

int engine_free(struct engine *e)
{
	if (!e)
		return 0;
	int rc = e->importing ? 0 : 1;
	if (e->running) {
		eng_service_stopping(e);
		eng_web_stop(e);
		if (db_in_batch(e->db))
			eng_batch_commit(e);
		struct coll_stats cs;
		collector_stats(e->coll, &cs);
		log_info("stopped: %llu lines, %llu events, %llu unparsed, %llu overlong, %llu rotations, "
			 "%llu truncations, %llu commits",
			 (unsigned long long)e->lines, (unsigned long long)e->events,
			 (unsigned long long)e->unparsed_total, (unsigned long long)cs.overlong,
			 (unsigned long long)cs.rotations, (unsigned long long)cs.truncations,
			 (unsigned long long)e->commits);
		rc = e->commit_errors ? 1 : 0;
	}
	prefix_list_free(&e->syslog_allow);
	eng_web_stop(e); /* after an early failure; a no-op when stopped */
	if (e->sfd >= 0)
		close(e->sfd);
	if (e->tfd >= 0)
		close(e->tfd);
	if (e->epfd >= 0)
		close(e->epfd);
	eng_notify_stop(e); /* waits for a running digest, which reads the database */
	eng_outputs_stop(e);
	eng_close(e);
	free(e);
	return rc;
}

void engine_get_stats(const struct engine *e, struct engine_stats *st)
{
	memset(st, 0, sizeof *st);
	st->lines = e->lines;
	st->events = e->events;
	st->unparsed = e->unparsed_total;
	st->decisions = e->decisions_made;
	st->commits = e->commits;
	st->commit_errors = e->commit_errors;
	st->db_down = e->db_down;
}

unsigned engine_web_port(const struct engine *e)
{
	return e->web ? web_port(e->web) : 0;
}
