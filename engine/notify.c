/*
 * notify.c - what the engine tells beyond the blocklists while it runs:
 * the [notify] command (reports/notify.h) on each new decision, upgrade
 * and circuit-breaker opening, and the scheduled digest ([report] digest,
 * reports/schedule.h). Both are off (NULL) unless configured and exist in
 * `run` only: an import of old logs tells nobody.
 *
 * A decision is told once it is stored for good: the change is kept in
 * e->told while its batch is open and handed to notify after the commit.
 * A refused batch drops the list; the journal stores the changes again in
 * the next batch (store_change_db), which adds them again. Changes stored
 * outside a batch (autocommit, a tick with no batch open) are told at once.
 * In a dry run ([rules] dry_run) the judge's decisions are not enforced, so
 * nothing is told about them (the digest still lists them as dry-run).
 */
#include <stdlib.h>

#include "engine/internal.h"

void eng_notify_start(struct engine *e)
{
	e->notify = notify_new(&e->conf);
	e->sched = report_sched_new(&e->conf, e->db_path);
	if (e->notify)
		log_info("notify: %s runs on each new decision, upgrade and breaker opening",
			 e->conf.notify.command.v[0]);
}

/* SIGHUP: the new configuration's command and schedule (a running command
 * is killed, a running digest finishes first). */
void eng_notify_reload(struct engine *e, const struct config *nc)
{
	notify_free(e->notify);
	e->notify = notify_new(nc);
	report_sched_free(e->sched);
	e->sched = report_sched_new(nc, e->db_path);
}

/* A change store_change_db() just stored (d: as stored, with its id). */
void eng_notify_add(struct engine *e, const struct agg_change *ch, const struct decision *d)
{
	if (!e->notify || e->importing || ch->kind == AGG_CHANGE_ENDED)
		return;
	if (e->conf.rules.dry_run && !d->manual)
		return;
	if (e->n_told == e->cap_told) {
		e->cap_told = e->cap_told ? 2 * e->cap_told : 16;
		e->told = xrealloc(e->told, e->cap_told * sizeof *e->told);
	}
	struct jchange *t = &e->told[e->n_told++];
	*t = (struct jchange){.kind = ch->kind, .d = *d, .from = ch->from, .at = ch->at};
	if (!db_in_batch(e->db))
		eng_notify_flush(e, true);
}

/* The batch committed (committed) or was refused: tell, or forget. */
void eng_notify_flush(struct engine *e, bool committed)
{
	for (size_t i = 0; committed && i < e->n_told; i++) {
		const struct jchange *t = &e->told[i];
		if (t->kind == AGG_CHANGE_NEW)
			notify_decision(e->notify, &t->d, NOTIFY_DECISION, RESP_OBSERVE, t->d.since);
		else
			notify_decision(e->notify, &t->d, NOTIFY_UPGRADE, t->from, t->at);
	}
	e->n_told = 0;
}

/* About once a second and on SIGCHLD: reap, start what is due. Never blocks. */
void eng_notify_tick(struct engine *e)
{
	notify_tick(e->notify);
	report_sched_tick(e->sched, clock_now());
}

void eng_notify_stop(struct engine *e)
{
	notify_free(e->notify);
	e->notify = NULL;
	report_sched_free(e->sched);
	e->sched = NULL;
	free(e->told);
	e->told = NULL;
	e->n_told = e->cap_told = 0;
}
