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
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/internal.h"
#include "db/db.h"

#define HOLD_SLOTS 4096
#define HOLD_TEXT  640
#define HOLD_SECS  3600
#define QIDS_MAX   65536 /* queue ids remembered (Postfix: for cleanup's lines) */
#define JUDGE_IDLE 120	 /* seconds: a connection quiet this long is judged without its end */

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
	/* eight bytes at a time: queue ids are 10 to 20 characters */
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ ev->queue_id.n;
	const char *p = ev->queue_id.p;
	uint32_t n = ev->queue_id.n;
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 29;
	}
	uint64_t w = 0;
	for (uint32_t i = 0; i < n; i++) /* the last 0-7 bytes: no call */
		w |= (uint64_t)(unsigned char)p[i] << (8 * i);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 32;
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
	if (counted) {
		a->unattributed++;
		a->drops_pending++;
	}
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

/* Forget queue ids that hold no event: those idle for the hold time, or
 * with force (the table is full) any among the next 64 looked at. */
static void qids_evict(struct aggregator *a, uint32_t t, bool force)
{
	size_t budget = force ? 64 : 1024;
	for (size_t k = 0; k < budget && a->qids.nrec; k++) {
		struct qrec *r = table_at(&a->qids, a->qid_cursor++ % a->qids.nrec);
		if (r && !r->head && (force || (t > r->t && t - r->t > HOLD_SECS)))
			table_remove(&a->qids, r);
	}
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
	if (a->qids.n >= QIDS_MAX && !table_find(&a->qids, k))
		qids_evict(a, t, true);
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
			a->drops_pending++;
			return true;
		}
		struct qrec *r = table_find(&a->qids, &k);
		if (r && r->ip.family)
			apply_known(a, r, ev, row);
		else
			hold_one(a, ev, &k, row);
		return true;
	}
	if (!a->held || !qkey_of(ev, &k)) /* nothing waits for a client */
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

/* ------------------------------------------------------------ sessions */

/* "X.Y.Z" -> X * 1000000 + Y * 1000 + Z, 0 when not one */
static uint32_t dsn_pack(struct span d)
{
	uint32_t part[3] = {0, 0, 0};
	unsigned k = 0, digits = 0;
	for (uint32_t i = 0; i < d.n; i++) {
		char ch = d.p[i];
		if (ch >= '0' && ch <= '9' && digits < 3) {
			part[k] = part[k] * 10 + (uint32_t)(ch - '0');
			digits++;
		} else if (ch == '.' && digits && k < 2) {
			k++;
			digits = 0;
		} else {
			return 0;
		}
	}
	if (k != 2 || !digits || part[0] < 2 || part[0] > 5)
		return 0;
	return part[0] * 1000000 + part[1] * 1000 + part[2];
}

static void dsn_format(uint32_t d, char *out, size_t n)
{
	if (!d)
		snprintf(out, n, "-");
	else
		snprintf(out, n, "%u.%u.%u", d / 1000000, d / 1000 % 1000, d % 1000);
}

static int ev_reply(const struct event *ev)
{
	if (ev->code > 0)
		return ev->code;
	if (ev->dsn.n && (ev->dsn.p[0] == '4' || ev->dsn.p[0] == '5'))
		return ev->dsn.p[0] == '5' ? 550 : 450;
	return 0;
}

/* Which lines belong to one connection's process: Postfix smtpd (not
 * postscreen, one process for all clients), Exim's and Sendmail's
 * per-connection children. */
static bool session_program(const struct event *ev, enum prog_role role)
{
	if (ev->pid < 0)
		return false;
	if (ev->mta == MTA_POSTFIX)
		return role == ROLE_SMTPD;
	/* Exim's daemon logs "SMTP connection from" with its own pid: the
	 * child's first line opens the session */
	if (ev->mta == MTA_EXIM)
		return ev->kind != EV_CONNECT;
	return ev->mta == MTA_SENDMAIL;
}

/* s is the remembered host (of the same length, at most its size): host
 * names are short, a loop beats a call */
static inline bool host_same(struct span s, const char *host)
{
	if (s.n > sizeof((struct aggregator *)0)->host_s)
		return false;
	for (uint32_t i = 0; i < s.n; i++)
		if (s.p[i] != host[i])
			return false;
	return true;
}

/* Two session keys alike: read as they are written (skey_of) */
static inline bool skey_same(const struct skey *x, const struct skey *y)
{
	uint64_t a0, b0;
	uint32_t a1, b1;
	memcpy(&a0, x, 8);
	memcpy(&b0, y, 8);
	memcpy(&a1, &x->host, 4);
	memcpy(&b1, &y->host, 4);
	return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

/* The session key of ev; the hash of the syslog host (one or a few per
 * log) is remembered. */
static void skey_of(struct aggregator *a, const struct event *ev, struct skey *k)
{
	/* the first 8 bytes in one store: the table reads them as one word */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	uint64_t w = (uint64_t)(uint8_t)(ev->mta + 1) << 56 | (uint32_t)ev->pid;
#else
	uint64_t w = (uint64_t)(uint8_t)(ev->mta + 1) | (uint64_t)(uint32_t)ev->pid << 32;
#endif
	_Static_assert(offsetof(struct skey, pid) == 4 && offsetof(struct skey, host) == 8 &&
			   sizeof(struct skey) == 12,
		       "skey: tag, pad, pid, host");
	memcpy(k, &w, 8);
	/* no syslog host (Exim's mainlog): an empty span, p may be NULL */
	if (ev->host.n != a->host_n || !host_same(ev->host, a->host_s)) {
		a->host_h = host_hash(ev->host);
		a->host_n = ev->host.n;
		if (ev->host.n && ev->host.n <= sizeof a->host_s)
			memcpy(a->host_s, ev->host.p, ev->host.n);
	}
	k->host = a->host_h;
}

static uint32_t badness(const struct sesssum *s)
{
	return (uint32_t)s->rejected + s->other_rej + s->auth_fail + s->proto;
}

static bool worse(const struct sesssum *x, const struct sesssum *y)
{
	uint32_t bx = badness(x), by = badness(y);
	return bx != by ? bx > by : x->rcpt > y->rcpt;
}

/* A connection that ended badly: into the evidence of its IP and class
 * (when they keep evidence: they misbehaved before). */
static AGG_COLD void fold_bad(struct aggregator *a, const struct sessrec *r)
{
	const struct sesssum *s = &r->s;
	struct iprec *p = table_find(&a->ips, &r->ip);
	/* an IPv6 address without a record was folded into its class */
	if (!p && r->ip.family != IPADDR_V6)
		return;
	struct prefix px, cp;
	host_prefix(&px, &r->ip);
	struct evslot *e = p ? agg_ev_find(a, &p->ev, &px) : NULL;
	if (e) {
		e->sessions_bad++;
		if (!e->worst.start || worse(s, &e->worst))
			e->worst = *s;
	}
	ipaddr_class(&r->ip, &a->c->classes, &cp);
	struct clsrec *c = p ? table_deref(&a->classes, p->cls_ref, &cp) : table_find(&a->classes, &cp);
	e = c ? agg_ev_find(a, &c->ev, &c->p) : NULL;
	if (e) {
		e->sessions_bad++;
		if (!e->worst.start || worse(s, &e->worst))
			e->worst = *s;
	}
}

/* A connection ended with rules left to judge (aggregator.c: the rules
 * that count refusals wait for its end; a repeated refusal is a retry
 * only if it delivered nothing): queued for judge_later_run(). */
static AGG_COLD void judge_push(struct aggregator *a, const struct sessrec *r)
{
	if (a->njq == a->capjq) {
		a->capjq = a->capjq ? a->capjq * 2 : 16;
		a->jq = xrealloc(a->jq, a->capjq * sizeof *a->jq);
	}
	a->jq[a->njq++] = (struct judge_later){.ip = r->ip, .t = r->s.end, .s = r->s};
}

static inline void fold(struct aggregator *a, const struct sessrec *r)
{
	if (badness(&r->s)) /* most connections end well */
		fold_bad(a, r);
	if (r->s.judge || r->s.retry_pending || r->s.holds)
		judge_push(a, r);
}

/* The connection of r ends: folded, and the record kept closed for the
 * next connection of its process. */
static void session_end(struct aggregator *a, struct sessrec *r)
{
	a->ended = r->s;
	if (a->cur == &r->s)
		a->cur = &a->ended;
	fold(a, r);
	if (a->sess_new == r)
		a->sess_new = NULL;
	r->closed = 1;
}

void agg_session_temp(struct iprec *p, const struct event *ev)
{
	uint32_t d = dsn_pack(ev->dsn);
	uint32_t y = d / 1000 % 1000, z = d % 1000;
	p->temp_code = (int16_t)ev_reply(ev);
	p->temp_dsn = d && y < 10 && z < 100 ? (uint16_t)(d / 1000000 * 1000 + y * 100 + z) : 0;
}

static void session_start(struct aggregator *a, struct sessrec *r, const struct event *ev, uint32_t t)
{
	memset(&r->ip, 0, sizeof *r - offsetof(struct sessrec, ip));
	r->ip = ev->ip;
	r->s.start = r->s.end = t;
	a->sess_new = r;
}

void agg_session_begin(struct aggregator *a, const struct iprec *p, uint32_t t)
{
	struct sessrec *r = a->sess_new;
	a->sess_new = NULL;
	if (!r || !ip_same(&r->ip, &p->ip))
		return;
	/* back-off: the IP's last 4xx before this connection */
	if (p->last_temp && t >= p->last_temp) {
		r->s.gap = t - p->last_temp;
		r->s.temp_code = p->temp_code ? p->temp_code : 450;
		uint32_t d = p->temp_dsn;
		r->s.temp_dsn = d ? d / 1000 * 1000000 + d / 100 % 10 * 1000 + d % 100 : 0;
	}
}

/* Count one refusal's code for the dominant one (two candidates). */
static void note_code(struct sessrec *r, int code, uint32_t dsn)
{
	struct sesssum *s = &r->s;
	if (s->code_n && s->code == code && s->dsn == dsn) {
		s->code_n++;
	} else if (r->alt_n && r->alt_code == code && r->alt_dsn == dsn) {
		r->alt_n++;
	} else if (!s->code_n) {
		s->code = (int16_t)code;
		s->dsn = dsn;
		s->code_n = 1;
	} else if (!r->alt_n) {
		r->alt_code = (int16_t)code;
		r->alt_dsn = dsn;
		r->alt_n = 1;
	} else {
		r->alt_n--; /* a third code: both candidates lose a vote */
		s->code_n--;
	}
	if (r->alt_n > s->code_n) { /* the leader first */
		int16_t c = s->code;
		uint32_t d = s->dsn;
		uint16_t n = s->code_n;
		s->code = r->alt_code;
		s->dsn = r->alt_dsn;
		s->code_n = r->alt_n;
		r->alt_code = c;
		r->alt_dsn = d;
		r->alt_n = n;
	}
}

#define INC16(x) ((x) = (uint16_t)((x) < 65535 ? (x) + 1 : (x)))

static void note(struct sessrec *r, const struct event *ev, bool bad, uint32_t t)
{
	struct sesssum *s = &r->s;
	if (t > s->end)
		s->end = t;
	if (!span_empty(ev->helo))
		s->helo = 1;
	switch (ev->kind) {
	case EV_REJECT: {
		int code = ev_reply(ev);
		if (ev->stage == ST_RCPT) {
			INC16(s->rcpt);
			INC16(s->rejected);
			if (ev->cat == CAT_UNKNOWN_RECIPIENT)
				INC16(s->unknown);
		} else if (ev->cat == CAT_RATE_LIMITED || ev->cat == CAT_GREYLISTED) {
			break; /* the MTA's own limit: not the client's refusal */
		} else {
			INC16(s->other_rej);
		}
		/* Postfix counted the message at its "client=" line; its content
		 * was refused after all */
		if (ev->mta == MTA_POSTFIX && !span_empty(ev->queue_id) &&
		    (ev->stage == ST_DATA || ev->stage == ST_END_OF_DATA) && s->accepted)
			s->accepted--;
		if (code)
			note_code(r, code, dsn_pack(ev->dsn));
		break;
	}
	case EV_ACCEPT:
		INC16(s->accepted);
		if (ev->mta != MTA_POSTFIX) /* Postfix: its disconnect counts RCPTs */
			INC16(s->rcpt);
		break;
	case EV_AUTH_FAILURE: INC16(s->auth_fail); break;
	case EV_PROTOCOL:
	case EV_LOST:
		if (bad)
			INC16(s->proto);
		break;
	case EV_DISCONNECT:
		if (ev->stats.present) {
			if (ev->stats.rcpt_total > s->rcpt)
				s->rcpt = ev->stats.rcpt_total;
			s->cmds_ok = ev->stats.cmds_ok;
			s->cmds_total = ev->stats.cmds_total;
			if (ev->stats.ehlo_total)
				s->helo = 1;
			else if (!s->helo)
				s->helo = 2;
		}
		break;
	default: break;
	}
}

void agg_session_event(struct aggregator *a, const struct event *ev, enum prog_role role, bool bad,
		       uint32_t t)
{
	a->cur = NULL;
	a->sess_new = NULL;
	if (!session_program(ev, role)) {
		/* Postfix cleanup refuses the content of a message of a live
		 * smtpd session: joined by its queue id */
		if (ev->mta == MTA_POSTFIX && ev->kind == EV_REJECT && !span_empty(ev->queue_id) &&
		    role == ROLE_CLEANUP) {
			struct qkey k;
			struct qcache *q = qkey_of(ev, &k) ? &a->qc[k.q % QC_SIZE] : NULL;
			struct sessrec *r = q && q->q == k.q && q->host == k.host ? q->sess : NULL;
			if (r && !r->closed && ip_same(&r->ip, &ev->ip)) {
				note(r, ev, bad, t);
				a->cur = &r->s;
			}
		}
		return;
	}
	struct skey k;
	skey_of(a, ev, &k);
	/* a few hundred processes serve all connections: a direct-mapped cache
	 * of references (checked against the key) saves most lookups */
	struct sessrec **ref = &a->sref[((uint32_t)k.pid * 2654435761u ^ k.host) % SREF_SIZE];
	struct sessrec *r = *ref;
	if (!r || !skey_same(&r->k, &k)) {
		r = table_find(&a->sessions, &k);
		if (!r) {
			if (ev->kind == EV_DISCONNECT)
				return; /* its connect was before we started */
			r = table_get(&a->sessions, &k, NULL);
			r->closed = 1;
		}
		*ref = r;
	}
	if (r->closed) {
		if (ev->kind == EV_DISCONNECT)
			return; /* its connect was before we started */
		session_start(a, r, ev, t);
	}
	bool opens = ev->kind == EV_CONNECT && ev->stage == ST_CONNECT;
	if (a->sess_new != r && (opens || !ip_same(&r->ip, &ev->ip))) {
		/* the process serves another client now: the old session ends */
		a->ended = r->s;
		fold(a, r);
		session_start(a, r, ev, t);
	}
	note(r, ev, bad, t);
	a->cur = &r->s;
	/* Postfix: the queue id of an accepted message, for cleanup's lines */
	if (ev->mta == MTA_POSTFIX && ev->kind == EV_ACCEPT && !span_empty(ev->queue_id)) {
		struct qkey qk;
		if (qkey_of(ev, &qk)) {
			struct qcache *q = &a->qc[qk.q % QC_SIZE];
			q->q = qk.q;
			q->host = qk.host;
			q->sess = r;
		}
	}
	/* Exim and Sendmail close a connection refused at connect */
	bool ends = ev->kind == EV_DISCONNECT ||
		    (ev->mta != MTA_POSTFIX &&
		     (ev->kind == EV_LOST || (ev->kind == EV_REJECT && ev->stage == ST_CONNECT)));
	if (ends) {
		session_end(a, r);
	} else if (ev->mta == MTA_SENDMAIL && !span_empty(ev->from) && ev->kind != EV_REJECT &&
		   (r->s.judge || r->s.retry_pending)) {
		/* Sendmail logs no end of a connection, but the end of each
		 * message (from=..., nrcpts=...): what waits is judged there */
		uint8_t holds = r->s.holds;
		r->s.holds = 0;
		judge_push(a, r);
		r->s.holds = holds;
		r->s.judge = 0;
		r->s.retry_pending = 0;
	}
}

/* Append fmt to out (holding a NUL-terminated string of size n) only when
 * all of it fits. */
static void append_all(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append_all(char *out, size_t n, const char *fmt, ...)
{
	size_t len = strlen(out);
	char tmp[160];
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= sizeof tmp || len + (size_t)w >= n)
		return;
	memcpy(out + len, tmp, (size_t)w + 1);
}

static const struct sesssum *worst_of(const struct aggregator *a, const struct evslot *s)
{
	const struct sesssum *w = s && s->worst.start ? &s->worst : NULL;
	if (a->cur && badness(a->cur) && (!w || worse(a->cur, w)))
		w = a->cur;
	return w;
}

void agg_session_reason(const struct aggregator *a, const struct evslot *s, char *reason, size_t n)
{
	const struct sesssum *w = worst_of(a, s);
	const struct sesssum *c = a->cur;
	char dsn[24];
	if (w && w->rejected >= 2) {
		dsn_format(w->dsn, dsn, sizeof dsn);
		if (w->code && w->code_n * 2 > w->rejected + w->other_rej)
			append_all(reason, n, "; one connection had %u RCPTs, %u rejected %d %s",
				   MXW_MAX(w->rcpt, w->rejected), w->rejected, w->code, dsn);
		else
			append_all(reason, n, "; one connection had %u RCPTs, %u rejected",
				   MXW_MAX(w->rcpt, w->rejected), w->rejected);
	} else if (w && w->auth_fail >= 2) {
		append_all(reason, n, "; one connection failed AUTH %u times", w->auth_fail);
	}
	/* back-off: this connection came soon after a 4xx */
	if (c && c->temp_code && c->gap < (uint32_t)a->r->backoff_min_interval) {
		char g[32];
		duration_format(MXW_MAX(c->gap, 1u), g, sizeof g);
		if (c->gap == 0)
			snprintf(g, sizeof g, "0s");
		dsn_format(c->temp_dsn, dsn, sizeof dsn);
		if (c->temp_dsn)
			append_all(reason, n, "; came back %s after a %d %s", g, c->temp_code, dsn);
		else
			append_all(reason, n, "; came back %s after a %d", g, c->temp_code);
	}
}

/* Member key: a packed enhanced status code as "X.Y.Z", null for none. */
static void dsn_json(struct jw *w, const char *key, uint32_t d)
{
	char s[24];
	if (!d) {
		jw_null(w, key);
		return;
	}
	dsn_format(d, s, sizeof s);
	jw_str(w, key, s);
}

/* Member key: what connection s showed. */
static void sum_json(struct jw *w, const char *key, const struct sesssum *s)
{
	jw_obj_begin(w, key);
	jw_int(w, "start", s->start);
	jw_int(w, "end", s->end);
	jw_int(w, "rcpts", s->rcpt);
	jw_int(w, "rejected", s->rejected);
	jw_int(w, "unknown_recipients", s->unknown);
	jw_int(w, "other_rejections", s->other_rej);
	jw_int(w, "auth_failures", s->auth_fail);
	jw_int(w, "protocol", s->proto);
	jw_int(w, "accepted", s->accepted);
	if (s->code) {
		jw_int(w, "code", s->code);
		dsn_json(w, "dsn", s->dsn);
		jw_int(w, "code_count", s->code_n);
	}
	if (s->helo)
		jw_bool(w, "helo", s->helo == 1);
	else
		jw_null(w, "helo");
	if (s->cmds_total) {
		jw_arr_begin(w, "commands");
		jw_int(w, NULL, s->cmds_ok);
		jw_int(w, NULL, s->cmds_total);
		jw_arr_end(w);
	}
	if (s->temp_code) {
		jw_obj_begin(w, "back_off");
		jw_int(w, "after_code", s->temp_code);
		dsn_json(w, "after_dsn", s->temp_dsn);
		jw_int(w, "seconds", s->gap);
		jw_obj_end(w);
	}
	jw_obj_end(w);
}

void agg_session_json(const struct aggregator *a, const struct evslot *s, struct jw *w)
{
	jw_obj_begin(w, "sessions");
	jw_int(w, "bad", s ? s->sessions_bad : 0);
	const struct sesssum *wst = worst_of(a, s);
	if (wst)
		sum_json(w, "worst", wst);
	else
		jw_null(w, "worst");
	/* the connection of the triggering line, unless it is the worst */
	if (a->cur && a->cur != wst)
		sum_json(w, "current", a->cur);
	else
		jw_null(w, "current");
	jw_obj_end(w);
}

void agg_session_tick(struct aggregator *a, uint32_t t, uint32_t now)
{
	hold_expire(a, t);
	/* connections that never logged their end */
	for (size_t k = 0; k < 1024 && a->sessions.nrec; k++) {
		struct sessrec *r = table_at(&a->sessions, a->sess_cursor++ % a->sessions.nrec);
		if (!r || (t <= r->s.end && now <= r->s.end))
			continue;
		if (t > r->s.end && t - r->s.end > HOLD_SECS) {
			if (!r->closed)
				session_end(a, r);
			table_remove(&a->sessions, r);
		} else if (!r->closed && (r->s.judge || r->s.retry_pending) && now > r->s.end &&
			   now - r->s.end > JUDGE_IDLE) {
			/* an MTA that logs no end of a connection: judged when it
			 * went quiet, and again if it goes on (still open) */
			uint8_t holds = r->s.holds;
			r->s.holds = 0;
			judge_push(a, r);
			r->s.holds = holds;
			r->s.judge = 0;
			r->s.retry_pending = 0;
		}
	}
	a->cur = NULL;
	qids_evict(a, t, false);
}

void agg_session_forget_refs(struct aggregator *a)
{
	memset(a->sref, 0, sizeof a->sref);
	memset(a->qc, 0, sizeof a->qc);
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
	if (a->drops_pending && fn) {
		struct agg_attribution x;
		memset(&x, 0, sizeof x);
		x.row = -(int64_t)a->drops_pending;
		fn(arg, &x);
		n++;
	}
	a->drops_pending = 0;
	return n;
}
