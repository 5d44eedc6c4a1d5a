/*
 * session.c - joining the lines of one SMTP client that the MTA logs
 * apart: events without a client address held by queue id until the line
 * that names the client (Sendmail logs "QID: <addr>... User unknown" before
 * "QID: from=..., relay=[ip]").
 *
 * Where it sits: inside aggregator/, called at the top of
 * aggregator_event(). Attribution uses the MTA's own fields only (syslog
 * host, queue id, the relay= client of the same queue id), never text of
 * the addresses or replies.
 *
 * Bounds: held events live in a ring of HOLD_SLOTS slots (allocated on
 * the first held event, so a Postfix or Exim site never pays for it); a
 * slot older than HOLD_SECS of log time, or overwritten because the ring is
 * full, is dropped and counted as unattributed. A queue id whose client is
 * known stays known for HOLD_SECS, so that later lines of it are applied at
 * once. It must never allocate per event once the ring exists, nor apply a
 * held event twice.
 */
#include <stdlib.h>
#include <string.h>

#include "aggregator/internal.h"
#include "db/db.h"

#define HOLD_SLOTS 4096
#define HOLD_TEXT  640
#define HOLD_SECS  3600

struct hslot {
	struct event ev; /* spans rebased into txt */
	int64_t row;	 /* the stored row (0 = none) */
	struct qkey k;
	uint32_t next; /* next slot (index + 1) of the same queue id, 0 = none */
	uint32_t t;
	bool live;
	char txt[HOLD_TEXT];
};

struct hold {
	struct hslot *slot;  /* HOLD_SLOTS */
	uint64_t head, tail; /* ring positions: [tail, head) may be live */
};

static uint32_t host_hash(struct span s)
{
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < s.n; i++)
		h = (h ^ (unsigned char)s.p[i]) * 16777619u;
	return h;
}

/* The key of (mta, syslog host, queue id); false when the queue id is
 * empty. Queue ids are written by the MTA, not by clients: a 64-bit hash
 * of one cannot be steered into another's. */
static bool qkey_of(const struct event *ev, struct qkey *k)
{
	if (span_empty(ev->queue_id))
		return false;
	memset(k, 0, sizeof *k);
	k->tag = (uint8_t)(ev->mta + 1);
	k->qlen = (uint8_t)MXW_MIN(ev->queue_id.n, 255u);
	k->host = host_hash(ev->host);
	uint64_t h = 1469598103934665603ULL;
	for (uint32_t i = 0; i < ev->queue_id.n; i++)
		h = (h ^ (unsigned char)ev->queue_id.p[i]) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	k->q = h;
	return true;
}

/*
 * Copy ev into slot s: the raw line into s->txt, every span of the line
 * rebased onto the copy, spans elsewhere (parser storage, literals) copied
 * after it. What does not fit is cut (the line) or dropped (a span).
 */
static void stash(struct hslot *s, const struct event *ev)
{
	s->ev = *ev;
	size_t used = MXW_MIN((size_t)ev->line.n, (size_t)HOLD_TEXT);
	if (used)
		memcpy(s->txt, ev->line.p, used);
	s->ev.line = (struct span){s->txt, (uint32_t)used};
	struct span *sp[] = {&s->ev.host, &s->ev.program, &s->ev.queue_id, &s->ev.rdns, &s->ev.helo,
			     &s->ev.from, &s->ev.to,	  &s->ev.user,	   &s->ev.dsn,	&s->ev.text};
	for (size_t i = 0; i < MXW_ARRAY_LEN(sp); i++) {
		struct span v = *sp[i];
		if (!v.n) {
			*sp[i] = SPAN_NULL;
			continue;
		}
		if (ev->line.p && v.p >= ev->line.p && v.p + v.n <= ev->line.p + used) {
			sp[i]->p = s->txt + (v.p - ev->line.p);
		} else if (used + v.n <= HOLD_TEXT) {
			memcpy(s->txt + used, v.p, v.n);
			sp[i]->p = s->txt + used;
			used += v.n;
		} else {
			*sp[i] = SPAN_NULL;
		}
	}
}

/* Unlink the live slot i (the first of its queue id) and free it. */
static void slot_drop(struct aggregator *a, uint32_t i, bool counted)
{
	struct hold *h = a->hold;
	struct hslot *s = &h->slot[i];
	struct qrec *r = table_find(&a->qids, &s->k);
	if (r && r->head == i + 1) {
		r->head = s->next;
		if (!r->head)
			r->tail = 0;
		if (!r->head && !r->ip.family)
			table_remove(&a->qids, r);
	}
	s->live = false;
	if (counted)
		a->unattributed++;
	a->held--;
}

/* Drop what is older than HOLD_SECS before log time t (and free slots at
 * the tail). */
static void hold_expire(struct aggregator *a, uint32_t t)
{
	struct hold *h = a->hold;
	while (h && h->tail < h->head) {
		uint32_t i = (uint32_t)(h->tail % HOLD_SLOTS);
		struct hslot *s = &h->slot[i];
		if (s->live) {
			if (t <= s->t || t - s->t <= HOLD_SECS)
				break;
			slot_drop(a, i, true);
		}
		h->tail++;
	}
}

/* Push the attribution of stored row row to the queue the engine takes. */
static void attr_push(struct aggregator *a, int64_t row, const struct event *ev)
{
	if (row <= 0)
		return;
	if (a->nattr == a->capattr) {
		a->capattr = a->capattr ? a->capattr * 2 : 64;
		a->attr = xrealloc(a->attr, a->capattr * sizeof *a->attr);
	}
	struct agg_attribution *x = &a->attr[a->nattr++];
	x->row = row;
	x->ip = ev->ip;
	x->cls = ev->cls;
}

/* ev (no client) with the client of the queue id's record r. */
static void apply_known(struct aggregator *a, const struct qrec *r, const struct event *ev, int64_t row)
{
	struct event e2 = *ev;
	e2.has_ip = true;
	e2.ip = r->ip;
	e2.cls = r->cls;
	a->attributed++;
	attr_push(a, row, &e2);
	aggregator_event(a, &e2);
}

static void hold_one(struct aggregator *a, const struct event *ev, const struct qkey *k, int64_t row)
{
	if (!a->hold) {
		a->hold = xcalloc(1, sizeof *a->hold);
		a->hold->slot = xcalloc(HOLD_SLOTS, sizeof *a->hold->slot);
	}
	struct hold *h = a->hold;
	uint32_t t = (uint32_t)(ev->ts_us / 1000000);
	hold_expire(a, t);
	if (h->head - h->tail == HOLD_SLOTS) { /* full: the oldest goes */
		uint32_t i = (uint32_t)(h->tail % HOLD_SLOTS);
		if (h->slot[i].live)
			slot_drop(a, i, true);
		h->tail++;
	}
	uint32_t i = (uint32_t)(h->head++ % HOLD_SLOTS);
	struct hslot *s = &h->slot[i];
	stash(s, ev);
	s->row = row;
	s->k = *k;
	s->next = 0;
	s->t = t;
	s->live = true;
	struct qrec *r = table_get(&a->qids, k, NULL);
	if (r->tail)
		h->slot[r->tail - 1].next = i + 1;
	else
		r->head = i + 1;
	r->tail = i + 1;
	r->t = t;
	a->held++;
}

bool agg_session_route(struct aggregator *a, const struct event *ev, int64_t row)
{
	struct qkey k;
	if (!ev->has_ip) {
		if (ev->ts_us <= 0 || !qkey_of(ev, &k)) {
			a->unattributed++;
			return true;
		}
		struct qrec *r = table_find(&a->qids, &k);
		if (r && r->ip.family)
			apply_known(a, r, ev, row);
		else
			hold_one(a, ev, &k, row);
		return true;
	}
	if (!a->qids.n || !qkey_of(ev, &k))
		return false;
	struct qrec *r = table_find(&a->qids, &k);
	if (!r)
		return false;
	uint32_t t = (uint32_t)(ev->ts_us / 1000000);
	r->ip = ev->ip;
	r->cls = ev->cls;
	r->t = t;
	uint32_t i = r->head;
	r->head = r->tail = 0; /* taken before applying: nothing is applied twice */
	while (i) {
		struct hslot *s = &a->hold->slot[i - 1];
		uint32_t next = s->next;
		s->live = false;
		a->held--;
		struct event e2 = s->ev;
		e2.has_ip = true;
		e2.ip = ev->ip;
		e2.cls = ev->cls;
		/* the envelope's own fields, written by the MTA on this line */
		if (span_empty(e2.from))
			e2.from = ev->from;
		if (span_empty(e2.rdns))
			e2.rdns = ev->rdns;
		a->attributed++;
		attr_push(a, s->row, &e2);
		aggregator_event(a, &e2);
		i = next;
	}
	return false;
}

void agg_session_tick(struct aggregator *a, uint32_t t)
{
	hold_expire(a, t);
	/* queue ids whose client is known, idle for HOLD_SECS */
	for (size_t k = 0; k < 1024 && a->qids.nrec; k++) {
		struct qrec *r = table_at(&a->qids, a->qid_cursor++ % a->qids.nrec);
		if (r && !r->head && t > r->t && t - r->t > HOLD_SECS)
			table_remove(&a->qids, r);
	}
}

void agg_session_init(struct aggregator *a)
{
	table_init(&a->qids, sizeof(struct qrec), sizeof(struct qkey));
}

struct rehold {
	struct aggregator *a;
	int64_t upto_us;
};

static int rehold_one(void *arg, int64_t id, const struct event *ev)
{
	struct rehold *r = arg;
	if (!ev->has_ip && ev->ts_us <= r->upto_us)
		agg_session_route(r->a, ev, id);
	return 0;
}

int agg_session_restore(struct aggregator *a, struct db *db, int64_t newest_us)
{
	struct rehold r = {a, newest_us};
	return db_events_scan(db, newest_us - (int64_t)HOLD_SECS * 1000000, rehold_one, &r);
}

void agg_session_free(struct aggregator *a)
{
	if (a->hold)
		free(a->hold->slot);
	free(a->hold);
	a->hold = NULL;
	free(a->attr);
	table_free(&a->qids);
}

size_t agg_session_bytes(const struct aggregator *a)
{
	return table_bytes(&a->qids) + (a->hold ? HOLD_SLOTS * sizeof(struct hslot) : 0) +
	       a->capattr * sizeof *a->attr;
}

void aggregator_event_row(struct aggregator *a, const struct event *ev, int64_t row)
{
	if (!ev->has_ip) {
		agg_session_route(a, ev, row);
		return;
	}
	aggregator_event(a, ev);
}

size_t aggregator_take_attributions(struct aggregator *a, agg_attr_fn fn, void *arg)
{
	size_t n = a->nattr;
	for (size_t i = 0; i < n && fn; i++)
		fn(arg, &a->attr[i]);
	a->nattr = 0;
	return n;
}
