/*
 * outputs.c - what the engine shows the world: the blocklists ([output
 * NAME], emitters/) brought up to date after decisions change, and the web
 * server started and stopped.
 *
 * The emitters belong to the engine's thread; reload commands run in the
 * background and are reaped from the tick and on SIGCHLD. The web server
 * runs its own threads and never touches engine state: the outputs' state
 * reaches its /metrics as a snapshot (web_set_outputs) after each update.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/*
 * eng_allows_sync: read the allows made by hand that are in force
 * (`mxwarden allow`, the dashboard) and hand them to the aggregator (no
 * decision on them) and the emitters (their entries left out). Called at
 * start and on every tick. Returns 1 when they changed, 0 when not, -1 on
 * a database error (logged; the last set stays).
 */
int eng_allows_sync(struct engine *e)
{
	struct prefix_list now = {0};
	if (db_allows_prefixes(e->db, clock_now(), &now) < 0) {
		log_warn("database: allows: %s", db_errmsg(e->db));
		prefix_list_free(&now);
		return -1;
	}
	bool same = now.n == e->allows.n;
	for (size_t i = 0; same && i < now.n; i++)
		same = prefix_cmp(&now.v[i], &e->allows.v[i]) == 0;
	if (same) {
		prefix_list_free(&now);
		return 0;
	}
	prefix_list_free(&e->allows);
	e->allows = now;
	aggregator_set_allows(e->agg, &e->allows);
	if (e->em)
		emitters_set_allows(e->em, &e->allows);
	if (e->running)
		log_info("allows changed in the database (allow/unallow): %zu in force", e->allows.n);
	return 1;
}

/*
 * Say, at start and on SIGHUP, when decisions reach no blocklist: no
 * [output], dry run, a family, scope or response no output carries. A
 * dashboard that shows "active blocks 16" while nothing is enforced
 * misleads; the log must say so where it begins.
 */
void eng_warn_enforcement(const struct config *c, const char *when)
{
	struct strv w = {0};
	emitters_enforcement_warnings(c, &w);
	for (size_t i = 0; i < w.n; i++)
		log_warn("%s%s%s", when ? when : "", when ? ": " : "", w.v[i]);
	strv_free(&w);
}

/* Hand the outputs' state (entries, last write, last reload, breaker) to
 * the web server's /metrics when it changed: the web threads never touch
 * the emitters. */
static void outputs_publish(struct engine *e)
{
	if (!e->em || !e->web)
		return;
	buf_reset(&e->em_metrics);
	emitters_metrics(e->em, &e->em_metrics);
	if (e->em_published.len == e->em_metrics.len &&
	    memcmp(buf_str(&e->em_published), buf_str(&e->em_metrics), e->em_metrics.len) == 0)
		return;
	web_set_outputs(e->web, buf_str(&e->em_metrics));
	json_t *st = emitters_status_json(e->em); /* the dashboard's status strip */
	char *txt = json_dumps(st, JSON_COMPACT);
	web_set_status(e->web, txt);
	free(txt);
	json_decref(st);
	struct buf t = e->em_published;
	e->em_published = e->em_metrics;
	e->em_metrics = t;
}

/* The outputs of the configuration (none: nothing to do). 0, or -1 when
 * they are invalid (logged). */
int eng_outputs_start(struct engine *e)
{
	eng_warn_enforcement(&e->conf, NULL);
	if (!e->conf.n_outputs)
		return 0;
	struct buf err = BUF_INIT;
	e->em = emitters_new(&e->conf, &err);
	if (!e->em) {
		log_error("outputs: %s", buf_str(&err));
		buf_free(&err);
		return -1;
	}
	buf_free(&err);
	emitters_set_new_database(e->em, db_created(e->db));
	emitters_set_allows(e->em, &e->allows);
	outputs_publish(e);
	return 0;
}

/* At the end of a run: reload commands get 2 s to finish. */
void eng_outputs_stop(struct engine *e)
{
	if (e->em && emitters_drain(e->em, 2000) < 0)
		log_warn("outputs: a reload command still runs at exit; killed");
	emitters_free(e->em);
	e->em = NULL;
	free(e->em_active);
	e->em_active = NULL;
	buf_free(&e->em_metrics);
	buf_free(&e->em_published);
}

/*
 * eng_outputs_update: called after a batch committed whose events changed
 * decisions, and after a tick that expired some. Render the blocklists
 * (temp file, fsync, rename) and start reload commands (posix_spawn, no
 * shell); their exit is seen in eng_outputs_child_exited().
 */
static int em_collect(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct engine *e = arg;
	(void)info;
	if (e->conf.rules.dry_run && !d->manual)
		return 0; /* [rules] dry_run: decide and explain, emit nothing */
	if (e->em_n == e->em_cap) {
		e->em_cap = e->em_cap ? e->em_cap * 2 : 256;
		e->em_active = xrealloc(e->em_active, e->em_cap * sizeof *e->em_active);
	}
	e->em_active[e->em_n++] = *d;
	return 0;
}

static void outputs_sync(struct engine *e, bool decisions_changed)
{
	emitters_poll(e->em);
	int64_t now = clock_now();
	/* also when a decision runs out or a capped ipset timeout needs a refresh */
	if (!decisions_changed && e->em_synced && now < emitters_next_due(e->em))
		return;
	e->em_n = 0;
	if (db_decisions_active(e->db, now, em_collect, e) < 0) {
		log_error("database: active decisions: %s", db_errmsg(e->db));
		return;
	}
	/* a failed output is logged and retried by the emitters (next_due) */
	/* the breakers that open now are told ([notify]) */
	size_t n = 0;
	while (emitters_stats(e->em, n))
		n++;
	uint64_t *trips = xcalloc(n ? n : 1, sizeof *trips);
	for (size_t i = 0; i < n; i++)
		trips[i] = emitters_stats(e->em, i)->breaker_trips;
	emitters_update(e->em, e->em_active, e->em_n, now);
	for (size_t i = 0; i < n; i++) {
		const struct emit_output_stats *st = emitters_stats(e->em, i);
		if (st && st->breaker_trips > trips[i])
			notify_breaker(e->notify, emitters_output_name(e->em, i), st->entries,
				       st->breaker_change, now);
	}
	free(trips);
	e->em_synced = true;
}

void eng_outputs_update(struct engine *e, bool decisions_changed)
{
	if (!e->em)
		return;
	outputs_sync(e, decisions_changed);
	outputs_publish(e);
}

/* eng_outputs_child_exited: SIGCHLD arrived; reap with waitpid(WNOHANG) in the
 * module that spawned the children (emitters). */
void eng_outputs_child_exited(struct engine *e)
{
	if (e->em) {
		emitters_poll(e->em);
		outputs_publish(e);
	}
}

/*
 * eng_web_start / eng_web_stop: the dashboard and API on listen ("ADDR:PORT",
 * NULL = the configuration's [web] listen). The web module runs its own
 * threads and opens its own read-only connections to db_path; it never
 * touches engine state. Returns 0, or -1 when it could not start (logged).
 */
int eng_web_start(struct engine *e, const char *listen)
{
	if (listen) {
		free(e->conf.listen);
		e->conf.listen = xstrdup(listen);
	}
	struct buf err = BUF_INIT;
	e->web = web_start(&e->conf, e->db_path, &err);
	if (!e->web)
		log_error("%s", buf_str(&err));
	buf_free(&err);
	return e->web ? 0 : -1;
}

void eng_web_stop(struct engine *e)
{
	web_stop(e->web);
	e->web = NULL;
}
