/*
 * restore.c - the aggregator's link to the database at start and while
 * running: aggregator_restore() rebuilds the state a restart would lose
 * (decisions in force, recent windows), aggregator_sync() picks up
 * decisions that `mxwarden block` / `unblock` wrote meanwhile.
 *
 * It must never write to the database (the engine stores what the
 * aggregator queues) nor decide anything while replaying.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/internal.h"
#include "db/db.h"

struct adding {
	struct aggregator *a;
	bool count; /* no state was loaded: count them for escalation */
};

static int add_active(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct adding *x = arg;
	struct aggregator *a = x->a;
	(void)info;
	for (size_t i = 0; i < a->nact; i++)
		if (a->act[i].d.id == d->id) {
			if (!d->manual) /* upgraded since: the stored one is the newest */
				a->act[i].d = *d;
			return 0;
		}
	agg_decision_add(a, d, false, NULL);
	if (x->count) {
		struct countrec *off = agg_offense(a, &d->prefix, true);
		off->n++;
	}
	return 0;
}

struct replay {
	struct aggregator *a;
	int64_t after_us; /* events up to this time are in the loaded state */
};

static int replay_event(void *arg, int64_t id, const struct event *ev)
{
	struct replay *r = arg;
	/* the scan starts at a whole second: skip what the state already holds */
	if (ev->ts_us > r->after_us)
		aggregator_event_row(r->a, ev, id); /* a row without a client is held again */
	return 0;
}

static int64_t longest_window(const struct aggregator *a)
{
	int64_t w = 0;
	for (int i = 0; i < W__COUNT; i++)
		if (i != W_ACCEPT && i != W_REJ && (int64_t)a->wlen[i] > w)
			w = a->wlen[i];
	return w;
}

/* After a state image was loaded, and at the end of a restore: F_DECIDED
 * marks exactly the records with a decision in force (one that ended since
 * the image was written must not keep its record from being judged or
 * evicted), with that decision's response, as a judged record has it
 * (without it, a sender blocked before the restart would have the refusals
 * of our own block counted as policy refusals after it, and be decided
 * again sooner than in an uninterrupted run). */
static void decided_resync(struct aggregator *a)
{
	for (size_t i = 0; i < a->ips.nrec; i++) {
		struct iprec *r = table_at(&a->ips, i);
		if (r)
			r->flags &= (uint8_t) ~(F_DECIDED | F_RESP_MASK);
	}
	for (size_t i = 0; i < a->classes.nrec; i++) {
		struct clsrec *c = table_at(&a->classes, i);
		if (c)
			c->flags &= (uint8_t) ~(F_DECIDED | F_RESP_MASK);
	}
	for (size_t i = 0; i < a->nact; i++) {
		const struct decision *d = &a->act[i].d;
		if (prefix_is_host(&d->prefix)) {
			struct iprec *r = table_find(&a->ips, &d->prefix.addr);
			if (r)
				r->flags = agg_decided_bits(r->flags, d);
		} else {
			struct clsrec *c = table_find(&a->classes, &d->prefix);
			if (c)
				c->flags = agg_decided_bits(c->flags, d);
		}
	}
}

static int seed_accepted(void *arg, int64_t t, const struct ipaddr *ip, int64_t n)
{
	agg_seed_accepted(arg, ip, (uint32_t)t, (unsigned)MXW_MIN(n, 255));
	return 0;
}

static int still_active(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	(void)arg;
	(void)d;
	return info->ended_at ? 0 : 1;
}

static int replay_after_id(void *arg, int64_t id, const struct event *ev)
{
	aggregator_event_row(arg, ev, id); /* a row without a client is held again */
	return 0;
}

/* The decisions in force at the end of a restore: those the database
 * holds as active on the judge's clock. A decision made or upgraded after
 * the state was saved (its events were replayed, which decides nothing)
 * is taken from it; one ended by hand meanwhile goes, as aggregator_sync()
 * would have made it go. */
static int reconcile(struct aggregator *a, struct db *db, bool count)
{
	struct adding x = {a, count};
	if (db_decisions_active(db, a->clock, add_active, &x) < 0)
		return -1;
	for (size_t i = 0; i < a->nact;) {
		const struct decision *d = &a->act[i].d;
		bool gone =
		    d->id > 0 && d->until > a->clock && db_decision_get(db, d->id, still_active, NULL) == 0;
		if (gone) {
			agg_active_remove(a, i, "unblocked", false);
			continue;
		}
		i++;
	}
	return 0;
}

int aggregator_restore(struct aggregator *a, struct db *db, int64_t now, agg_feed_fn feed, void *arg)
{
	a->db = db;
	bool loaded = agg_state_load(a) == 0;
	bool ckpt = false;
	struct db_checkpoint c;
	memset(&c, 0, sizeof c);
	if (!loaded) {
		int r = db_checkpoint_get(db, &c);
		if (r < 0)
			log_warn("aggregator: cannot read the checkpoint: %s", db_errmsg(db));
		ckpt = r == 1 && agg_state_load_mem(a, c.data, c.len) == 0;
		free(c.data);
	}
	int64_t from_us = a->newest + 1; /* only what was stored after the clean stop */
	int64_t at = a->clock;
	if (!loaded && !ckpt) {
		/* no state: the stored events of the longest window before the
		 * newest one, on the log's clock (the wall clock may be days
		 * after it: an import of old logs) */
		int64_t top = db_events_newest(db);
		if (top < 0) {
			log_warn("aggregator: cannot read the events: %s", db_errmsg(db));
			return -1;
		}
		from_us = top > 0 ? (top - longest_window(a)) * 1000000 : 0;
		at = top; /* roughly: what was in force at the end */
	}
	/* what the judge held when its clock stood where the state stops */
	struct adding x = {a, !loaded && !ckpt};
	if (at > 0 && db_decisions_in_force_at(db, at, add_active, &x) < 0) {
		log_warn("aggregator: cannot read the active decisions: %s", db_errmsg(db));
		return -1;
	}
	if (loaded || ckpt) {
		decided_resync(a);
		agg_session_restore(a, db, a->newest); /* held at the stop: not in the state */
	}
	uint64_t ev0 = a->events;
	a->replaying = true;
	int rc;
	if (ckpt) {
		rc = feed ? feed(arg, a, &c) : 0;
		if (rc == 0)
			rc = db_events_scan_after(db, c.max_event_id, replay_after_id, a);
		else if (rc > 0)
			rc = 0;
	} else {
		struct replay r = {a, loaded ? a->newest : INT64_MIN};
		rc = db_events_scan(db, from_us, replay_event, &r);
	}
	/* no state at all: who delivered mail is known by the hour only */
	if (rc >= 0 && !loaded && !ckpt && a->newest > 0)
		rc = db_accepts_scan(db, a->newest / 1000000 - (int64_t)a->wlen[W_ACCEPT], seed_accepted, a);
	a->replaying = false;
	if (rc < 0) {
		log_warn("aggregator: cannot replay recent events: %s", db_errmsg(db));
		return -1;
	}
	if (reconcile(a, db, !loaded && !ckpt) < 0) {
		log_warn("aggregator: cannot read the active decisions: %s", db_errmsg(db));
		return -1;
	}
	decided_resync(a);
	size_t nact = a->nact;
	a->restored_rows = a->events - ev0;
	a->from_checkpoint = ckpt;
	char how[128];
	if (loaded)
		snprintf(how, sizeof how, "state of the last clean stop loaded");
	else if (ckpt)
		snprintf(how, sizeof how, "checkpoint of %llds ago loaded (%zu bytes)",
			 (long long)(now - c.at), c.len);
	else
		snprintf(how, sizeof how, "no saved state or checkpoint");
	log_info("aggregator: %zu active decisions, %s, replayed %llu events", nact, how,
		 (unsigned long long)a->restored_rows);
	return 0;
}

/* The set of decision ids active in the database. */
struct idset {
	int64_t *v;
	size_t n, cap;
	struct aggregator *a;
	bool changed;
};

static int sync_one(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct idset *s = arg;
	(void)info;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n++] = d->id;
	if (!d->manual)
		return 0;
	for (size_t i = 0; i < s->a->nact; i++)
		if (s->a->act[i].d.id == d->id) {
			/* a manual block given again lasts longer (db_decision_extend):
			 * it must not end at its first until */
			struct decision *have = &s->a->act[i].d;
			if (have->until != d->until || have->response != d->response ||
			    strcmp(have->reason, d->reason) != 0) {
				*have = *d;
				s->changed = true;
			}
			return 0;
		}
	agg_decision_add(s->a, d, false, NULL); /* a manual block made meanwhile */
	s->changed = true;
	return 0;
}

static int cmp_id(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a < b ? -1 : a > b;
}

int aggregator_sync(struct aggregator *a, struct db *db, int64_t now)
{
	struct idset s = {NULL, 0, 0, a, false};
	if (db_decisions_active(db, now, sync_one, &s) < 0) {
		free(s.v);
		return -1;
	}
	if (s.n) /* qsort and bsearch want a non-NULL base even for zero elements */
		qsort(s.v, s.n, sizeof *s.v, cmp_id);
	for (size_t i = 0; i < a->nact;) {
		int64_t id = a->act[i].d.id;
		/* a stored decision gone from the active set was ended by hand */
		if (id > 0 && a->act[i].d.until > now &&
		    (!s.n || !bsearch(&id, s.v, s.n, sizeof *s.v, cmp_id))) {
			agg_active_remove(a, i, "unblocked", false);
			s.changed = true;
			continue;
		}
		i++;
	}
	free(s.v);
	return s.changed ? 1 : 0;
}
