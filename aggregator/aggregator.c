/*
 * aggregator.c - the in-memory judge: per-IP and per-class windows fed by
 * events, the rules of [rules] (see aggregator.h), decisions with
 * escalating durations and graded responses, evidence and reasons.
 *
 * Where it sits: the engine thread feeds it events and ticks; it queues
 * decisions for the engine to store and emit. It must never do I/O on the
 * hot path, allocate per event once the tables are warm, or put
 * log-derived text into a reason (reasons hold numbers and fixed words
 * only; evidence lines are escaped at the JSON sink, aggregator/jsonw.c,
 * by jansson's rules).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/internal.h"
#include "db/db.h"

/* --------------------------------------------------------------- windows */

static void win8_add(struct win8 *w, uint32_t bi, unsigned k)
{
	uint16_t i = (uint16_t)bi;
	uint32_t all;
	memcpy(&all, w->b, sizeof all);
	if (!all) /* empty: start here */
		w->idx = i;
	uint16_t d = (uint16_t)(i - w->idx);
	if (d >= 0x8000) { /* an older event: count it if still inside */
		uint16_t back = (uint16_t)(w->idx - i);
		if (back < WIN_SUB) {
			unsigned v = w->b[i % WIN_SUB] + k;
			w->b[i % WIN_SUB] = (uint8_t)MXW_MIN(v, 255u);
		}
		return;
	}
	if (d >= WIN_SUB) {
		memset(w->b, 0, sizeof w->b);
	} else {
		for (uint16_t s = 1; s <= d; s++)
			w->b[(uint16_t)(w->idx + s) % WIN_SUB] = 0;
	}
	w->idx = i;
	unsigned v = w->b[i % WIN_SUB] + k;
	w->b[i % WIN_SUB] = (uint8_t)MXW_MIN(v, 255u);
}

/* keep_bytes[j][d]: of 4 sub-buckets whose newest is number j, the bytes
 * (sub-bucket k in byte k) of the 4 - d newest: the d oldest have left the
 * window */
_Static_assert(WIN_SUB == 4, "keep_bytes is written for 4 sub-buckets");
static const uint32_t keep_bytes[WIN_SUB][WIN_SUB + 1] = {
    {0xffffffffu, 0xffff00ffu, 0xff0000ffu, 0x000000ffu, 0x00000000u},
    {0xffffffffu, 0xff00ffffu, 0x0000ffffu, 0x0000ff00u, 0x00000000u},
    {0xffffffffu, 0x00ffffffu, 0x00ffff00u, 0x00ff0000u, 0x00000000u},
    {0xffffffffu, 0xffffff00u, 0xffff0000u, 0xff000000u, 0x00000000u},
};

/* The sum of a window's sub-buckets still inside it at bucket bi. */
static inline unsigned win8_sum(const struct win8 *w, uint32_t bi)
{
	uint16_t d = (uint16_t)((uint16_t)bi - w->idx);
	d = d >= 0x8000 ? 0 : d > WIN_SUB ? WIN_SUB : d;
	uint32_t x =
	    (uint32_t)w->b[0] | (uint32_t)w->b[1] << 8 | (uint32_t)w->b[2] << 16 | (uint32_t)w->b[3] << 24;
	x &= keep_bytes[w->idx % WIN_SUB][d];
	x = (x & 0x00ff00ffu) + ((x >> 8) & 0x00ff00ffu);
	return (x & 0xffffu) + (x >> 16);
}

static void win32_add(struct win32 *w, uint32_t bi, unsigned k)
{
	uint32_t i = bi;
	if (!(w->b[0] | w->b[1] | w->b[2] | w->b[3]))
		w->idx = i;
	uint32_t d = i - w->idx;
	if (d >= 0x80000000u) {
		uint32_t back = w->idx - i;
		if (back < WIN_SUB)
			w->b[i % WIN_SUB] = (uint16_t)MXW_MIN(w->b[i % WIN_SUB] + k, 65535u);
		return;
	}
	if (d >= WIN_SUB) {
		memset(w->b, 0, sizeof w->b);
	} else {
		for (uint32_t s = 1; s <= d; s++)
			w->b[(w->idx + s) % WIN_SUB] = 0;
	}
	w->idx = i;
	w->b[i % WIN_SUB] = (uint16_t)MXW_MIN(w->b[i % WIN_SUB] + k, 65535u);
}

/* keep_words[j][d]: the same for 16-bit sub-buckets (sub-bucket k in bits
 * 16k to 16k + 15) */
static const uint64_t keep_words[WIN_SUB][WIN_SUB + 1] = {
    {0xffffffffffffffffull, 0xffffffff0000ffffull, 0xffff00000000ffffull, 0x000000000000ffffull,
     0x0000000000000000ull},
    {0xffffffffffffffffull, 0xffff0000ffffffffull, 0x00000000ffffffffull, 0x00000000ffff0000ull,
     0x0000000000000000ull},
    {0xffffffffffffffffull, 0x0000ffffffffffffull, 0x0000ffffffff0000ull, 0x0000ffff00000000ull,
     0x0000000000000000ull},
    {0xffffffffffffffffull, 0xffffffffffff0000ull, 0xffffffff00000000ull, 0xffff000000000000ull,
     0x0000000000000000ull},
};

static inline unsigned win32_sum(const struct win32 *w, uint32_t bi)
{
	uint32_t d = bi - w->idx;
	d = d >= 0x80000000u ? 0 : d > WIN_SUB ? WIN_SUB : d;
	uint64_t x =
	    (uint64_t)w->b[0] | (uint64_t)w->b[1] << 16 | (uint64_t)w->b[2] << 32 | (uint64_t)w->b[3] << 48;
	x &= keep_words[w->idx % WIN_SUB][d];
	x = (x & 0x0000ffff0000ffffull) + ((x >> 16) & 0x0000ffff0000ffffull);
	return (unsigned)((x & 0xffffffffu) + (x >> 32));
}

/* Take back one count from the newest non-empty bucket inside the window. */
static void win8_sub(struct win8 *w, uint32_t bi)
{
	uint16_t d = (uint16_t)((uint16_t)bi - w->idx);
	if (d >= 0x8000)
		d = 0;
	for (unsigned m = 0; m + d < WIN_SUB; m++) {
		uint8_t *b = &w->b[(uint16_t)(w->idx - m) % WIN_SUB];
		if (*b) {
			(*b)--;
			return;
		}
	}
}

static void win32_sub(struct win32 *w, uint32_t bi)
{
	uint32_t d = bi - w->idx;
	if (d >= 0x80000000u)
		d = 0;
	for (unsigned m = 0; m + d < WIN_SUB; m++) {
		uint16_t *b = &w->b[(w->idx - m) % WIN_SUB];
		if (*b) {
			(*b)--;
			return;
		}
	}
}

/* The bucket index of time t in window w; events come in time order, so
 * the divisions are done once per second of log time, not per event. */
static inline uint32_t bucket(struct aggregator *a, uint32_t t, int w)
{
	if (t != a->bucket_t) {
		a->bucket_t = t;
		for (int k = 0; k < W__COUNT; k++)
			a->bucket_i[k] = t / a->blen[k];
	}
	return a->bucket_i[w];
}

/* ------------------------------------------------------- distinct counts */

static uint64_t span_hash(struct span s, uint64_t seed)
{
	uint64_t h = 1469598103934665603ULL ^ seed;
	for (uint32_t i = 0; i < s.n; i++) {
		unsigned char ch = (unsigned char)s.p[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch + 32); /* addresses compare case-blind */
		h ^= ch;
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* Linear counting over a 64-bit bitmap: exact for a handful, within a few
 * percent up to ~100 distinct values, which is the range thresholds use. */
static unsigned bits_table[65]; /* estimate by number of zero bits */

static void bits_init(void)
{
	for (int z = 0; z <= 64; z++)
		bits_table[z] = z == 0 ? 300 : (unsigned)(-64.0 * log((double)z / 64.0) + 0.5);
}

static unsigned bits_estimate(uint64_t bits)
{
	return bits_table[64 - __builtin_popcountll(bits)];
}

static void bits_add(uint64_t *bits, uint32_t *t0, uint32_t t, uint32_t window, uint64_t h)
{
	if (*t0 == 0 || t - *t0 > window || t < *t0) {
		*bits = 0;
		*t0 = t;
	}
	*bits |= 1ULL << (h & 63);
}

static unsigned bits_get(uint64_t bits, uint32_t t0, uint32_t t, uint32_t window)
{
	if (t0 == 0 || (t > t0 && t - t0 > window))
		return 0;
	return bits_estimate(bits);
}

/* Count one 5xx rejection of (sender, recipient); returns the largest
 * number of repeats (rejections after the first) of one pair. */
static unsigned retry_add(struct retry *r, uint32_t t, uint32_t window, uint32_t h, unsigned *pairs)
{
	if (r->t0 == 0 || t - r->t0 > window || t < r->t0) {
		memset(r, 0, sizeof *r);
		r->t0 = t;
	}
	int slot = -1, weakest = 0;
	for (int i = 0; i < RETRY_SLOTS; i++) {
		if (r->n[i] && r->h[i] == h) {
			slot = i;
			break;
		}
		if (r->n[i] < r->n[weakest])
			weakest = i;
	}
	if (slot < 0) {
		slot = weakest;
		r->h[slot] = h;
		r->n[slot] = 0;
	}
	if (r->n[slot] < 255)
		r->n[slot]++;
	unsigned best = 0, np = 0;
	for (int i = 0; i < RETRY_SLOTS; i++) {
		if (r->n[i] > 1)
			np++;
		if (r->n[i] > best)
			best = r->n[i];
	}
	if (pairs)
		*pairs = np;
	return best ? best - 1 : 0;
}

static unsigned retry_get(const struct retry *r, uint32_t t, uint32_t window, unsigned *pairs)
{
	unsigned best = 0, np = 0;
	if (r->t0 && !(t > r->t0 && t - r->t0 > window))
		for (int i = 0; i < RETRY_SLOTS; i++) {
			if (r->n[i] > 1)
				np++;
			if (r->n[i] > best)
				best = r->n[i];
		}
	if (pairs)
		*pairs = np;
	return best ? best - 1 : 0;
}

/* -------------------------------------------------------------- evidence */

static struct evslot *ev_slot(struct aggregator *a, uint32_t i)
{
	return (struct evslot *)(a->ev + (size_t)i * a->ev_stride);
}
static struct evline *ev_line(struct aggregator *a, struct evslot *s, size_t k)
{
	return (struct evline *)((char *)s + sizeof *s) + k;
}

/* The evidence slot of owner, allocated (stealing the oldest) when *slotp
 * is 0 and create is true. */
static struct evslot *ev_get(struct aggregator *a, uint32_t *slotp, const struct prefix *owner, bool create)
{
	if (!a->ev_n)
		return NULL;
	if (*slotp) {
		struct evslot *s = ev_slot(a, *slotp - 1);
		if (prefix_same(&s->owner, owner))
			return s;
		*slotp = 0; /* stolen by another owner */
	}
	if (!create)
		return NULL;
	uint32_t i = (uint32_t)(a->ev_next++ % a->ev_n);
	struct evslot *s = ev_slot(a, i);
	memset(s, 0, sizeof *s);
	s->owner = *owner;
	*slotp = i + 1;
	return s;
}

struct evslot *agg_ev_find(struct aggregator *a, uint32_t *slotp, const struct prefix *owner)
{
	return ev_get(a, slotp, owner, false);
}

static void ev_record(struct aggregator *a, struct evslot *s, const struct event *ev)
{
	if (!s)
		return;
	int64_t ts = agg_seconds(a, ev->ts_us);
	if (!s->first_ts)
		s->first_ts = ts;
	s->last_ts = ts;
	if ((unsigned)ev->cat < CAT__COUNT)
		s->cats[ev->cat]++;
	if ((unsigned)ev->kind < EV__COUNT)
		s->kinds[ev->kind]++;
	struct evline *l;
	if (s->nfirst < a->ev_lines)
		l = ev_line(a, s, s->nfirst++);
	else
		l = ev_line(a, s, a->ev_lines + (s->nlast++ % a->ev_lines));
	size_t n = MXW_MIN((size_t)ev->line.n, (size_t)EV_LINE_MAX);
	if (n)
		memcpy(l->s, ev->line.p, n);
	l->len = (uint16_t)n;
}

/* The members lines_seen ... sessions of the evidence object w writes:
 * the first and last lines of slot s (NULL: none) and its counts. */
static void ev_json(struct aggregator *a, struct evslot *s, struct jw *w)
{
	if (s) {
		jw_int(w, "lines_seen", (json_int_t)(s->nfirst + s->nlast));
		jw_int(w, "first_seen", s->first_ts);
		jw_int(w, "last_seen", s->last_ts);
	}
	jw_arr_begin(w, "first");
	for (size_t i = 0; s && i < s->nfirst; i++) {
		struct evline *l = ev_line(a, s, i);
		jw_line(w, NULL, l->s, l->len);
	}
	jw_arr_end(w);
	jw_arr_begin(w, "last");
	size_t nl = s ? MXW_MIN((size_t)s->nlast, a->ev_lines) : 0;
	for (size_t k = 0; k < nl; k++) {
		size_t i = (s->nlast - nl + k) % a->ev_lines;
		struct evline *l = ev_line(a, s, a->ev_lines + i);
		jw_line(w, NULL, l->s, l->len);
	}
	jw_arr_end(w);
	jw_obj_begin(w, "counts");
	for (int c = 1; s && c < CAT__COUNT; c++)
		if (s->cats[c])
			jw_int(w, ev_category_name(c), s->cats[c]);
	for (int k = 1; s && k < EV__COUNT; k++)
		if (s->kinds[k])
			jw_int(w, ev_kind_name(k), s->kinds[k]);
	jw_obj_end(w);
	agg_session_json(a, s, w);
}

/* ------------------------------------------------------------------ rules */

enum rule {
	R_RETRY,
	R_HARVEST,
	R_BACKOFF,
	R_RELAY,
	R_AUTH,
	R_PROTOCOL,
	R_POLICY,
	R_FLOOD,
	R_CLASS,
	R_WIDEN,
	R__COUNT
};
static const char *const rule_names[R__COUNT] = {"retry",    "harvest", "backoff", "relay", "auth",
						 "protocol", "policy",	"flood",   "class", "widen"};
/* How bad crossing each rule is: the score is severity x (value/threshold),
 * and the response follows score_defer/reject/drop. */
static const double rule_severity[R__COUNT] = {2, 2, 1, 4, 4, 2, 2, 4, 2, 2};

/* What one record (IP or class) shows, as numbers the rules compare. */
struct view {
	unsigned v[R__COUNT]; /* the value each rule compares */
	double thr[R__COUNT]; /* the effective threshold (0 = rule off) */
	unsigned window[R__COUNT];
	unsigned accepted, rejected, unknown, rcpts, users, pairs, ips, flagged, auth, conns;
	double mult;
	bool gated; /* accepted mail outweighs rejections: reject-count rules hold */
	int16_t code;
};

static double thr_of(bool on, int64_t count, double mult)
{
	if (!on || count <= 0)
		return 0;
	double t = (double)count * mult;
	return t < 1 ? 1 : t;
}

/* A sender whose connections mostly deliver mail is busy, not flooding,
 * unless the MTA itself rate-limited it (per-IP sub-buckets saturate at
 * 255: hundreds is "busy"). Its flood threshold is 0, and its connections
 * are not kept as evidence of a flood. */
static inline bool busy(unsigned flags, unsigned accepted, unsigned conns)
{
	return !(flags & F_LIMITED) && accepted && (accepted * 2 >= conns || accepted >= 200);
}

/* The thresholds, multiplier and windows of view v (accepted, rejected and
 * conns set) of a record with flags: the rules as configured. */
static void view_rules_of(const struct aggregator *a, struct view *v, unsigned flags, bool cls)
{
	const struct rules_conf *r = a->r;
	double m = 1;
	if (v->accepted)
		m *= r->success_factor > 0 ? r->success_factor : 1;
	if ((flags & F_NO_RDNS) && r->no_rdns_weight > 0)
		m /= r->no_rdns_weight;
	if ((flags & F_NO_MX) && r->no_mx_weight > 0)
		m /= r->no_mx_weight;
	v->mult = m;
	v->gated = v->accepted && v->accepted >= v->rejected;
	v->thr[R_RETRY] = v->gated ? 0 : thr_of(r->retry_enabled, r->retry_count, m);
	v->thr[R_HARVEST] = v->gated ? 0 : thr_of(r->harvest_enabled, r->harvest_distinct, m);
	/* back-off is a property of one client's retry queue: not summed */
	v->thr[R_BACKOFF] = cls ? 0 : thr_of(r->backoff_enabled, r->backoff_count, m);
	v->thr[R_RELAY] = thr_of(r->relay_enabled, r->relay_count, m);
	v->thr[R_AUTH] = thr_of(r->auth_enabled, r->auth_count, m);
	v->thr[R_PROTOCOL] = thr_of(r->protocol_enabled, r->protocol_count, m);
	v->thr[R_POLICY] = v->gated ? 0 : thr_of(r->policy_enabled, r->policy_count, m);
	v->thr[R_FLOOD] = thr_of(r->flood_enabled, cls ? r->flood_class_count : r->flood_ip_count, m);
	if (busy(flags, v->accepted, v->conns))
		v->thr[R_FLOOD] = 0;
	v->thr[R_CLASS] = cls ? thr_of(r->class_enabled, r->class_flagged_ips, 1) : 0;
	v->thr[R_WIDEN] = 0;
	v->window[R_RETRY] = a->wlen[W_RETRY];
	v->window[R_HARVEST] = a->wlen[W_UNKNOWN];
	v->window[R_BACKOFF] = a->wlen[W_BACKOFF];
	v->window[R_RELAY] = a->wlen[W_RELAY];
	v->window[R_AUTH] = a->wlen[W_AUTH];
	v->window[R_PROTOCOL] = a->wlen[W_PROTO];
	v->window[R_POLICY] = a->wlen[W_POLICY];
	v->window[R_FLOOD] = a->wlen[W_CONN];
	v->window[R_CLASS] = (unsigned)MXW_MAX(r->idle_evict, 3600);
}

/* view_rules_of() for every (accepted mail, no rDNS, no MX), once. */
static void rules_precompute(struct aggregator *a)
{
	_Static_assert(R__COUNT <= AGG_RULES_MAX, "pre_thr holds every rule");
	for (int cls = 0; cls < 2; cls++) {
		for (unsigned k = 0; k < 8; k++) {
			struct view v;
			memset(&v, 0, sizeof v);
			v.accepted = k & 1;
			v.rejected = v.accepted + 1; /* not gated */
			/* F_LIMITED: the busy-sender exemption is decided per view */
			unsigned flags = F_LIMITED | (k & 2 ? F_NO_RDNS : 0) | (k & 4 ? F_NO_MX : 0);
			view_rules_of(a, &v, flags, cls);
			a->pre_mult[k] = v.mult;
			memcpy(a->pre_thr[cls][k], v.thr, sizeof v.thr);
			memcpy(a->pre_window, v.window, sizeof v.window);
		}
	}
}

/* view_rules_of() from the tables rules_precompute() made. */
static void view_rules(const struct aggregator *a, struct view *v, unsigned flags, bool cls)
{
	unsigned k = (v->accepted ? 1u : 0u) | (flags & F_NO_RDNS ? 2u : 0u) | (flags & F_NO_MX ? 4u : 0u);
	v->mult = a->pre_mult[k];
	memcpy(v->thr, a->pre_thr[cls][k], sizeof v->thr);
	memcpy(v->window, a->pre_window, sizeof v->window);
	v->gated = v->accepted && v->accepted >= v->rejected;
	if (v->gated)
		v->thr[R_RETRY] = v->thr[R_HARVEST] = v->thr[R_POLICY] = 0;
	if (busy(flags, v->accepted, v->conns))
		v->thr[R_FLOOD] = 0;
}

/* The harvest value: distinct unknown recipients, or the threshold itself
 * when the unknown ratio rule holds. */
static unsigned harvest_value(const struct aggregator *a, const struct view *v)
{
	const struct rules_conf *r = a->r;
	unsigned distinct = v->v[R_HARVEST];
	double min_att = MXW_MAX(1.0, (double)r->harvest_min_attempts * v->mult);
	if (r->harvest_ratio > 0 && v->thr[R_HARVEST] > 0 && (double)v->rcpts >= min_att &&
	    (double)v->unknown >= r->harvest_ratio * (double)v->rcpts && distinct < v->thr[R_HARVEST])
		return (unsigned)ceil(v->thr[R_HARVEST]);
	return distinct;
}

static void ip_view(struct aggregator *a, const struct iprec *p, uint32_t t, struct view *v)
{
	memset(v, 0, sizeof *v);
	v->accepted = win8_sum(&p->w[W_ACCEPT], bucket(a, t, W_ACCEPT));
	v->rejected = win8_sum(&p->w[W_REJ], bucket(a, t, W_REJ));
	v->unknown = win8_sum(&p->w[W_UNKNOWN], bucket(a, t, W_UNKNOWN));
	v->rcpts = win8_sum(&p->w[W_RCPT], bucket(a, t, W_RCPT));
	v->conns = win8_sum(&p->w[W_CONN], bucket(a, t, W_CONN));
	view_rules(a, v, p->flags, false);
	v->v[R_RETRY] = retry_get(&p->r, t, a->wlen[W_RETRY], &v->pairs);
	v->v[R_HARVEST] = bits_get(p->rcpt_bits, p->rcpt_t0, t, a->wlen[W_UNKNOWN]);
	v->v[R_HARVEST] = harvest_value(a, v);
	v->v[R_BACKOFF] = win8_sum(&p->w[W_BACKOFF], bucket(a, t, W_BACKOFF));
	v->v[R_RELAY] = win8_sum(&p->w[W_RELAY], bucket(a, t, W_RELAY));
	v->auth = win8_sum(&p->w[W_AUTH], bucket(a, t, W_AUTH));
	v->users = bits_get(p->user_bits, p->user_t0, t, a->wlen[W_AUTH]);
	v->v[R_AUTH] = v->auth;
	v->v[R_PROTOCOL] = win8_sum(&p->w[W_PROTO], bucket(a, t, W_PROTO));
	v->v[R_POLICY] = win8_sum(&p->w[W_POLICY], bucket(a, t, W_POLICY));
	v->v[R_FLOOD] = v->conns;
	v->code = p->last_code;
	v->ips = 1;
}

static void cls_view(struct aggregator *a, const struct clsrec *c, uint32_t t, struct view *v)
{
	memset(v, 0, sizeof *v);
	v->accepted = win32_sum(&c->w[W_ACCEPT], bucket(a, t, W_ACCEPT));
	v->rejected = win32_sum(&c->w[W_REJ], bucket(a, t, W_REJ));
	v->unknown = win32_sum(&c->w[W_UNKNOWN], bucket(a, t, W_UNKNOWN));
	v->rcpts = win32_sum(&c->w[W_RCPT], bucket(a, t, W_RCPT));
	v->conns = win32_sum(&c->w[W_CONN], bucket(a, t, W_CONN));
	view_rules(a, v, c->flags, true);
	v->v[R_RETRY] = retry_get(&c->r, t, a->wlen[W_RETRY], &v->pairs);
	v->v[R_HARVEST] = bits_get(c->rcpt_bits, c->rcpt_t0, t, a->wlen[W_UNKNOWN]);
	v->v[R_HARVEST] = harvest_value(a, v);
	v->v[R_BACKOFF] = win32_sum(&c->w[W_BACKOFF], bucket(a, t, W_BACKOFF));
	v->v[R_RELAY] = win32_sum(&c->w[W_RELAY], bucket(a, t, W_RELAY));
	v->auth = win32_sum(&c->w[W_AUTH], bucket(a, t, W_AUTH));
	v->users = bits_get(c->user_bits, c->user_t0, t, a->wlen[W_AUTH]);
	v->v[R_AUTH] = v->auth;
	v->v[R_PROTOCOL] = win32_sum(&c->w[W_PROTO], bucket(a, t, W_PROTO));
	v->v[R_POLICY] = win32_sum(&c->w[W_POLICY], bucket(a, t, W_POLICY));
	v->v[R_FLOOD] = v->conns;
	v->flagged = c->nflagged;
	v->v[R_CLASS] = c->nflagged;
	v->code = c->last_code;
	v->ips = bits_get(c->ip_bits, c->ipb_t0, t, (uint32_t)MXW_MAX(a->r->idle_evict, 3600));
	unsigned cips = bits_get(c->conn_ip_bits, c->cipb_t0, t, a->wlen[W_CONN]);
	/* a class-wide flood needs several sources; one IP is rule 9 per IP */
	if (cips < 2)
		v->thr[R_FLOOD] = 0;
	/* light members each refused once or twice: from three members on, the
	 * class's refusals of any kind count together for rule 8 */
	if (v->ips >= 3) {
		unsigned all = v->v[R_POLICY] + v->unknown + v->v[R_RELAY];
		if (all > v->v[R_POLICY])
			v->v[R_POLICY] = all;
	}
}

/* The rule crossed with the highest ratio, or -1. Auth also fires on
 * distinct user names. */
static int view_pick(const struct aggregator *a, const struct view *v, double *ratio)
{
	int best = -1;
	double br = 0;
	for (int i = 0; i < R__COUNT; i++) {
		if (v->thr[i] <= 0)
			continue;
		double rt = (double)v->v[i] / v->thr[i];
		if (i == R_AUTH && a->r->auth_users > 0 && v->auth >= 2) {
			double tu = MXW_MAX(1.0, (double)a->r->auth_users * v->mult);
			double ru = (double)v->users / tu;
			if (ru > rt)
				rt = ru;
		}
		if (rt >= 1.0 && rt * rule_severity[i] > br * (best >= 0 ? rule_severity[best] : 1)) {
			best = i;
			br = rt;
		}
	}
	*ratio = br;
	return best;
}

static void fmt_dur(int64_t s, char *out, size_t n)
{
	if (s < 1)
		s = 1;
	if (s >= 120 && s % 60)
		s += 60 - s % 60; /* "9m", not "8m37s" */
	duration_format(s, out, n);
}

/* One sentence of numbers and fixed words: never log-derived text. */
static void reason_of(const struct aggregator *a, int rule, const struct view *v, bool cls, int64_t span,
		      char *out, size_t n)
{
	char d[32], mi[32];
	fmt_dur(MXW_MIN(span, (int64_t)v->window[rule]), d, sizeof d);
	duration_format(a->r->backoff_min_interval, mi, sizeof mi);
	char pre[64] = "";
	if (cls && rule != R_CLASS && rule != R_WIDEN)
		snprintf(pre, sizeof pre, "%u addresses of this class ", MXW_MAX(v->ips, 2u));
	int w = 0;
	switch (rule) {
	case R_RETRY:
		w = snprintf(out, n, "%sretried %u time%s after %d to %u recipient%s in %s", pre, v->v[rule],
			     v->v[rule] == 1 ? "" : "s", v->code > 0 ? v->code : 550, MXW_MAX(v->pairs, 1u),
			     v->pairs > 1 ? "s" : "", d);
		break;
	case R_HARVEST:
		w = snprintf(out, n, "%stried %u unknown recipients (%u of %u RCPTs rejected) in %s", pre,
			     v->v[rule], v->unknown, v->rcpts, d);
		break;
	case R_BACKOFF:
		w = snprintf(out, n, "%scame back %u times sooner than %s after a 4xx in %s", pre, v->v[rule],
			     mi, d);
		break;
	case R_RELAY: w = snprintf(out, n, "%stried to relay %u times in %s", pre, v->v[rule], d); break;
	case R_AUTH:
		w = snprintf(out, n, "%sfailed AUTH %u times with %u user names in %s", pre, v->auth,
			     v->users, d);
		break;
	case R_PROTOCOL:
		w = snprintf(
		    out, n,
		    "%sbroke the SMTP protocol %u times (pregreet, pipelining, non-SMTP, errors) in %s", pre,
		    v->v[rule], d);
		break;
	case R_POLICY:
		w = snprintf(out, n,
			     "%skept coming back although refused by the MTA's policy (weight %u) in %s", pre,
			     v->v[rule], d);
		break;
	case R_FLOOD: w = snprintf(out, n, "%sopened %u connections in %s", pre, v->v[rule], d); break;
	case R_CLASS:
		w = snprintf(out, n, "%u addresses of this class were flagged in %s", v->flagged, d);
		break;
	default: w = snprintf(out, n, "%u classes of this network were blocked", v->flagged); break;
	}
	if (w < 0 || (size_t)w >= n)
		out[n - 1] = '\0';
}

/* ------------------------------------------------------------- decisions */

int64_t aggregator_duration(const struct rules_conf *r, unsigned n, uint64_t seed)
{
	double d = (double)r->block_base;
	for (unsigned i = 0; i < n && d < (double)r->block_max; i++)
		d *= r->block_factor > 1 ? r->block_factor : 1;
	if (d > (double)r->block_max)
		d = (double)r->block_max;
	if (r->block_jitter > 0) {
		seed ^= seed >> 31;
		seed *= 0x9e3779b97f4a7c15ULL;
		seed ^= seed >> 29;
		double u = (double)(seed % 1000001) / 1000000.0; /* 0..1 */
		d *= 1.0 + r->block_jitter * (2 * u - 1);
	}
	int64_t s = (int64_t)d;
	return s < 1 ? 1 : s;
}

static enum response response_of(const struct rules_conf *r, double score)
{
	if (score >= r->score_drop)
		return RESP_DROP;
	if (score >= r->score_reject)
		return RESP_REJECT;
	if (score >= r->score_defer)
		return RESP_DEFER;
	return RESP_OBSERVE;
}

int aggregator_blockable(const struct aggregator *a, const struct prefix *p, const char **why)
{
	unsigned floor = p->addr.family == IPADDR_V4 ? a->c->v4_floor : a->c->v6_floor;
	if (p->len < floor) {
		*why = "shorter than the floor";
		return -1;
	}
	if (prefix_list_overlaps(&a->allow, p)) {
		*why = "allow list";
		return -1;
	}
	if (prefix_list_overlaps(&a->protected_nets, p)) {
		*why = "protected network";
		return -1;
	}
	return 0;
}

struct countrec *agg_offense(struct aggregator *a, const struct prefix *p, bool create)
{
	struct prefix k;
	memset(&k, 0, sizeof k);
	k = *p;
	if (!create)
		return table_find(&a->offenses, &k);
	return table_get(&a->offenses, &k, NULL);
}

static void pend_push(struct aggregator *a, const struct pending *p)
{
	if (a->npend == a->cappend) {
		a->cappend = a->cappend ? a->cappend * 2 : 16;
		a->pend = xrealloc(a->pend, a->cappend * sizeof *a->pend);
	}
	a->pend[a->npend++] = *p;
}

static size_t act_slot(const struct aggregator *a, const struct prefix *p)
{
	uint64_t h = ipaddr_hash(&p->addr) ^ ((uint64_t)p->len * 0x9e3779b97f4a7c15ULL);
	return (size_t)(h ^ (h >> 29)) & (a->act_ixcap - 1);
}

static void act_index_put(struct aggregator *a, size_t i)
{
	size_t h = act_slot(a, &a->act[i].d.prefix);
	while (a->act_ix[h])
		h = (h + 1) & (a->act_ixcap - 1);
	a->act_ix[h] = (uint32_t)(i + 1);
}

/* The index slot holding entry i of act (which must be in it). */
static size_t act_index_slot(const struct aggregator *a, size_t i)
{
	size_t mask = a->act_ixcap - 1;
	size_t h = act_slot(a, &a->act[i].d.prefix);
	while (a->act_ix[h] != i + 1)
		h = (h + 1) & mask;
	return h;
}

/* Take entry i out of the index (backward-shift deletion: no tombstones),
 * and move the last entry's reference to i, as agg_active_remove() moves
 * the entry itself. */
static void act_index_del(struct aggregator *a, size_t i)
{
	size_t mask = a->act_ixcap - 1;
	size_t hole = act_index_slot(a, i);
	for (size_t j = (hole + 1) & mask; a->act_ix[j]; j = (j + 1) & mask) {
		size_t home = act_slot(a, &a->act[a->act_ix[j] - 1].d.prefix);
		/* j's entry may fill the hole when its home is not in (hole, j] */
		bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
		if (!stays) {
			a->act_ix[hole] = a->act_ix[j];
			hole = j;
		}
	}
	a->act_ix[hole] = 0;
	size_t last = a->nact - 1;
	if (last != i)
		a->act_ix[act_index_slot(a, last)] = (uint32_t)(i + 1);
}

/* at most half full, so probes stay short */
static AGG_COLD void act_index_rebuild(struct aggregator *a)
{
	size_t cap = 64;
	while (cap < 2 * a->nact + 2)
		cap *= 2;
	if (cap != a->act_ixcap) {
		free(a->act_ix);
		a->act_ix = xcalloc(cap, sizeof *a->act_ix);
		a->act_ixcap = cap;
	} else {
		memset(a->act_ix, 0, cap * sizeof *a->act_ix);
	}
	for (size_t i = 0; i < a->nact; i++)
		act_index_put(a, i);
	a->act_ix_dirty = false;
}

void agg_decision_add(struct aggregator *a, const struct decision *d, bool announce, char *evidence)
{
	if (a->nact == a->capact) {
		a->capact = a->capact ? a->capact * 2 : 64;
		a->act = xrealloc(a->act, a->capact * sizeof *a->act);
	}
	a->act[a->nact++].d = *d;
	if (d->until < a->next_until)
		a->next_until = d->until;
	if (!a->act_ix_dirty && a->act_ixcap && 2 * a->nact + 2 <= a->act_ixcap)
		act_index_put(a, a->nact - 1);
	else
		a->act_ix_dirty = true;
	if (announce)
		pend_push(a, &(struct pending){
				 .kind = AGG_CHANGE_NEW, .d = *d, .evidence = evidence, .at = d->since});
	else
		free(evidence);
}

static struct active *active_find(struct aggregator *a, const struct prefix *p)
{
	if (!a->nact)
		return NULL;
	if (a->act_ix_dirty || 2 * a->nact + 2 > a->act_ixcap)
		act_index_rebuild(a);
	for (size_t h = act_slot(a, p); a->act_ix[h]; h = (h + 1) & (a->act_ixcap - 1)) {
		struct active *x = &a->act[a->act_ix[h] - 1];
		if (prefix_cmp(&x->d.prefix, p) == 0)
			return x;
	}
	return NULL;
}

static void explain(struct aggregator *a, struct jw *w, const struct decision *d, int rule,
		    const struct view *v, struct evslot *evs, long long past);

/* Decide on prefix p by rule, with the numbers of view v. Returns true when
 * a new decision was made; a decision in force on p is upgraded instead
 * when the response rises (queued as AGG_CHANGE_UPGRADED). */
static bool decide(struct aggregator *a, const struct prefix *p, enum scope scope, int rule, double ratio,
		   const struct view *v, int64_t ts, int64_t first_bad, struct evslot *evs)
{
	const char *why;
	/* made at the judge's time: an event older than the clock (a late
	 * syslog line, a log behind the wall clock) does not make a decision
	 * that began, or even ended, before now */
	if (ts < a->clock)
		ts = a->clock;
	if (aggregator_blockable(a, p, &why) < 0) {
		a->suppressed++;
		return false;
	}
	struct decision d;
	memset(&d, 0, sizeof d);
	d.prefix = *p;
	d.scope = scope;
	str_copy(d.rule, sizeof d.rule, rule_names[rule], strlen(rule_names[rule]));
	double sev = rule_severity[rule];
	d.score = round(sev * ratio * 100.0) / 100.0;
	d.response = response_of(a->r, d.score);
	struct active *cur = active_find(a, p);
	if (cur) {
		/* in force already: upgraded when the response rises, never lowered */
		if (cur->d.manual || a->c->rules.dry_run || d.response <= cur->d.response)
			return false;
		reason_of(a, rule, v, scope == SCOPE_CLASS, first_bad ? ts - first_bad : v->window[rule],
			  d.reason, sizeof d.reason);
		if (rule != R_WIDEN)
			agg_session_reason(a, evs, d.reason, sizeof d.reason);
		struct decision up = cur->d;
		enum response from = up.response;
		up.response = d.response;
		up.score = d.score;
		memcpy(up.rule, d.rule, sizeof up.rule);
		memcpy(up.reason, d.reason, sizeof up.reason);
		int64_t again = ts + (cur->d.until - cur->d.since);
		if (again > up.until)
			up.until = again;
		cur->d = up;
		if (a->replaying)
			return false; /* stored before the restart */
		struct buf text = BUF_INIT;
		struct jw w;
		jw_init(&w, &text);
		explain(a, &w, &up, rule, v, evs, -1);
		jw_str(&w, "upgraded_from", response_name(from));
		jw_int(&w, "since", up.since);
		jw_obj_end(&w);
		jw_free(&w);
		pend_push(
		    a,
		    &(struct pending){
			.kind = AGG_CHANGE_UPGRADED, .d = up, .evidence = text.data, .from = from, .at = ts});
		return false;
	}
	reason_of(a, rule, v, scope == SCOPE_CLASS, first_bad ? ts - first_bad : v->window[rule], d.reason,
		  sizeof d.reason);
	if (rule != R_WIDEN)
		agg_session_reason(a, evs, d.reason, sizeof d.reason);
	struct countrec *off = agg_offense(a, p, true);
	unsigned n = off->n;
	if (a->db) { /* decisions stored before a restart or by hand count too */
		int64_t past = db_decisions_count(a->db, p, ts - MXW_MAX(a->c->retention_decisions, 86400));
		/* a replay: this decision and later ones are stored already */
		if (a->replaying && past > 0)
			past -= MXW_MAX(db_decisions_count(a->db, p, ts), 0);
		if (past > (int64_t)n)
			n = (unsigned)past;
	}
	uint64_t seed = (uint64_t)ts * 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < 16; i++)
		seed = (seed ^ p->addr.a[i]) * 1099511628211ULL;
	seed ^= p->len;
	d.since = ts;
	d.until = ts + aggregator_duration(a->r, n, seed);
	off->n++;
	off->t = (uint32_t)ts;
	if (a->replaying) {
		/* made before the restart: in force again with the id it was
		 * stored under, so that the replay goes on as the run did */
		if (a->c->rules.dry_run)
			d.response = RESP_OBSERVE;
		int64_t id = a->db ? db_decision_find(a->db, p, ts) : 0;
		if (id <= 0)
			return false;
		d.id = id;
		agg_decision_add(a, &d, false, NULL);
		return true;
	}

	struct buf text = BUF_INIT;
	struct jw w;
	jw_init(&w, &text);
	explain(a, &w, &d, rule, v, evs, n);
	if (a->c->rules.dry_run) {
		/* decided and explained, flagged only: nothing reaches a blocklist */
		jw_bool(&w, "dry_run", true);
		d.response = RESP_OBSERVE;
	}
	jw_obj_end(&w);
	jw_free(&w);
	agg_decision_add(a, &d, true, text.data);
	return true;
}

/* The explanation of decision d by rule with the numbers of view v: an
 * object begun in w, its members written, left open for the caller's
 * last members. past < 0 leaves out past_decisions. */
static void explain(struct aggregator *a, struct jw *w, const struct decision *d, int rule,
		    const struct view *v, struct evslot *evs, long long past)
{
	enum scope scope = d->scope;
	buf_grow(w->b, 4096);
	jw_obj_begin(w, NULL);
	jw_str(w, "rule", d->rule);
	jw_str(w, "scope", scope_name(scope));
	jw_int(w, "window", v->window[rule]);
	jw_int(w, "value", v->v[rule]);
	jw_real(w, "threshold", v->thr[rule]);
	jw_real(w, "multiplier", v->mult);
	jw_real(w, "score", d->score);
	jw_str(w, "response", response_name(d->response));
	if (past >= 0)
		jw_int(w, "past_decisions", past);
	jw_obj_begin(w, "numbers");
	for (int i = 0; i < R__COUNT; i++)
		if (i != R_WIDEN && (i != R_CLASS || scope == SCOPE_CLASS))
			jw_int(w, rule_names[i], v->v[i]);
	jw_int(w, "accepted", v->accepted);
	jw_int(w, "rejected_5xx", v->rejected);
	jw_int(w, "unknown_recipients", v->unknown);
	jw_int(w, "rcpts", v->rcpts);
	jw_int(w, "auth_failures", v->auth);
	jw_int(w, "auth_users", v->users);
	jw_int(w, "connections", v->conns);
	if (scope == SCOPE_CLASS)
		jw_int(w, "addresses", v->ips);
	jw_obj_end(w);
	jw_obj_begin(w, "thresholds");
	for (int i = 0; i < R__COUNT; i++)
		if (i != R_WIDEN && (i != R_CLASS || scope == SCOPE_CLASS) && v->thr[i] > 0)
			jw_real(w, rule_names[i], v->thr[i]);
	jw_obj_end(w);
	ev_json(a, evs, w);
}

/* ---------------------------------------------------------------- tables */

static uint32_t idle_window(const struct aggregator *a)
{
	return (uint32_t)MXW_MAX(a->r->idle_evict, 60);
}

/* What an idle sweep (evict_from) removes at t: a record last seen more
 * than idle_evict before t without a decision in force. Such a record
 * that is touched again is forgotten first, as if a sweep had removed it,
 * so that the decisions do not depend on when the sweeps ran (a restart,
 * an import or a follow of the same log sweep at other times). */
static inline bool stale(const struct aggregator *a, uint8_t flags, uint32_t seen, uint32_t t)
{
	return !(flags & F_DECIDED) && seen && t > seen && t - seen > a->idle;
}

/* The seen record that names p as its class's only member, or NULL. */
static struct seenrec *seen_of(struct aggregator *a, const struct iprec *p)
{
	if (!(p->cls_ref & CLS_LONE))
		return NULL;
	struct prefix cp;
	ipaddr_class(&p->ip, &a->c->classes, &cp);
	struct seenrec *sr = table_deref(&a->seen, p->cls_ref & ~CLS_LONE, &cp);
	return sr && ip_same(&sr->ip, &p->ip) ? sr : NULL;
}

/* Forget ip record p. A lone member's events do not touch its seen record
 * (cls_resolve()): the seen record takes its last activity now. */
static AGG_COLD void ip_remove(struct aggregator *a, struct iprec *p)
{
	struct seenrec *sr = seen_of(a, p);
	if (sr && p->last_seen > sr->last_seen)
		sr->last_seen = p->last_seen;
	table_remove(&a->ips, p);
}

/* The last activity of seen record r's member (kept in its ip record while
 * it is tracked), copied into r. */
static AGG_COLD void seen_refresh(struct aggregator *a, struct seenrec *r)
{
	struct iprec *q = table_find(&a->ips, &r->ip);
	if (q && (q->cls_ref & CLS_LONE) && q->last_seen > r->last_seen)
		r->last_seen = q->last_seen;
}

/* Remove seen record r; its member, when tracked, looks its class up again. */
static AGG_COLD void seen_remove(struct aggregator *a, struct seenrec *r)
{
	struct iprec *q = table_find(&a->ips, &r->ip);
	if (q && (q->cls_ref & CLS_LONE))
		q->cls_ref = 0;
	table_remove(&a->seen, r);
}

static void rec_remove(struct aggregator *a, struct table *t, void *r)
{
	if (t == &a->ips)
		ip_remove(a, r);
	else
		table_remove(t, r);
}

/*
 * Eviction for a table of iprec or clsrec: looks at budget records from
 * *cursor on; idle ones go (decided ones stay). With force, and the table
 * holding max_tracked_ips records, the least recently seen of those looked at
 * goes too. off_flags and off_seen locate the two fields in t's records.
 */
static AGG_COLD void evict_from(struct aggregator *a, struct table *t, size_t *cursor, size_t off_flags,
				size_t off_seen, uint32_t now, size_t budget, bool force)
{
	if (!t->nrec)
		return;
	if (budget > t->nrec)
		budget = t->nrec; /* once round is enough */
	uint32_t idle = idle_window(a);
	void *oldest = NULL;
	uint32_t oldest_seen = 0;
	for (size_t k = 0; k < budget; k++) {
		char *r = table_at(t, (*cursor)++ % t->nrec);
		if (!r || (r[off_flags] & F_DECIDED))
			continue;
		uint32_t seen;
		memcpy(&seen, r + off_seen, sizeof seen);
		if (now > seen && now - seen > idle) {
			rec_remove(a, t, r);
			a->evicted++;
			continue;
		}
		if (force && (!oldest || seen < oldest_seen)) {
			oldest = r;
			oldest_seen = seen;
		}
	}
	if (force && oldest && (size_t)a->r->max_tracked_ips <= t->n) {
		rec_remove(a, t, oldest);
		a->evicted++;
	}
}

static void evict_some(struct aggregator *a, uint32_t now, size_t budget, bool force)
{
	evict_from(a, &a->ips, &a->evict_cursor, offsetof(struct iprec, flags),
		   offsetof(struct iprec, last_seen), now, budget, force);
}

/* ip_remove() and a new record for the same address, in place. */
static AGG_COLD void ip_forget(struct aggregator *a, struct iprec *p)
{
	struct seenrec *sr = seen_of(a, p);
	if (sr && p->last_seen > sr->last_seen)
		sr->last_seen = p->last_seen;
	memset((char *)p + sizeof p->ip, 0, sizeof *p - sizeof p->ip);
	a->evicted++;
}

static struct iprec *ip_get(struct aggregator *a, const struct ipaddr *ip, uint64_t hv, uint32_t t)
{
	if (a->r->max_tracked_ips > 0 && a->ips.n >= (size_t)a->r->max_tracked_ips &&
	    !table_find_h(&a->ips, ip, hv))
		evict_some(a, t, 64, true);
	struct iprec *p = table_get_h(&a->ips, ip, hv, NULL);
	if (stale(a, p->flags, p->last_seen, t))
		ip_forget(a, p);
	return p;
}

/* The same for classes: idle ones go, and max_tracked_ips bounds them too
 * (IPv6 attackers spread over many /64s make one class per address). */
static void evict_classes(struct aggregator *a, uint32_t now, size_t budget, bool force)
{
	evict_from(a, &a->classes, &a->evict_cursor_cls, offsetof(struct clsrec, flags),
		   offsetof(struct clsrec, last_seen), now, budget, force);
}

static AGG_COLD void evict_seen(struct aggregator *a, uint32_t now, size_t budget, bool force)
{
	struct table *t = &a->seen;
	if (!t->nrec)
		return;
	if (budget > t->nrec)
		budget = t->nrec;
	uint32_t idle = idle_window(a);
	struct seenrec *oldest = NULL;
	for (size_t k = 0; k < budget; k++) {
		struct seenrec *r = table_at(t, a->evict_cursor_seen++ % t->nrec);
		if (!r)
			continue;
		if (force || (now > r->last_seen && now - r->last_seen > idle))
			seen_refresh(a, r); /* idle, unless its member was active */
		if (now > r->last_seen && now - r->last_seen > idle) {
			seen_remove(a, r);
			continue;
		}
		if (force && (!oldest || r->last_seen < oldest->last_seen))
			oldest = r;
	}
	if (force && oldest && (size_t)a->r->max_tracked_ips <= t->n)
		seen_remove(a, oldest);
}

static struct clsrec *cls_get(struct aggregator *a, const struct prefix *p, uint32_t t);

/* Seed a new class record with the counts of its first member q. */
static AGG_COLD void cls_seed(struct aggregator *a, struct clsrec *c, const struct iprec *q, uint32_t t)
{
	for (int w = 0; w < W__COUNT; w++) {
		const struct win8 *s = &q->w[w];
		if (!(s->b[0] | s->b[1] | s->b[2] | s->b[3]))
			continue;
		uint32_t cur = bucket(a, t, w);
		uint16_t back = (uint16_t)((uint16_t)cur - s->idx);
		if (back >= WIN_SUB)
			continue; /* all of it is older than the window */
		c->w[w].idx = cur - back;
		for (int k = 0; k < WIN_SUB; k++)
			c->w[w].b[k] = s->b[k];
	}
	c->rcpt_bits = q->rcpt_bits;
	c->rcpt_t0 = q->rcpt_t0;
	c->user_bits = q->user_bits;
	c->user_t0 = q->user_t0;
	c->r = q->r;
	c->flags |= (uint8_t)(q->flags & (F_NO_MX | F_LIMITED));
	c->first_bad = q->first_bad;
	c->last_code = q->last_code;
	uint64_t h = ipaddr_hash(&q->ip);
	if (q->first_bad)
		bits_add(&c->ip_bits, &c->ipb_t0, t, (uint32_t)MXW_MAX(a->r->idle_evict, 3600), h);
	if (win8_sum(&q->w[W_CONN], bucket(a, t, W_CONN)))
		bits_add(&c->conn_ip_bits, &c->cipb_t0, t, a->wlen[W_CONN], h);
	if (q->flags & F_FLAGGED) {
		c->nflagged = 1;
		c->flagged_t0 = t;
	}
}

/* The class record of member p, or the scratch record while p is the only
 * member seen: most classes never get a second member, and a class rule
 * needs two. p->cls_ref remembers which (see struct iprec). A class has a
 * class record or a seen record, never both: the seen record goes when the
 * second member makes the class record, and that sets the first member's
 * cls_ref; a seen record that goes otherwise (seen_remove()) clears its
 * member's. So while cls_ref says CLS_LONE, p is alone, and its events touch
 * neither table (the seen record's last activity is p's: seen_refresh()). */
static struct clsrec *cls_lookup(struct aggregator *a, struct iprec *p, const struct prefix *cp, uint32_t t);

static inline struct clsrec *cls_resolve(struct aggregator *a, struct iprec *p, const struct prefix *cp,
					 uint32_t t)
{
	if (p->cls_ref & CLS_LONE)
		return &a->scratch; /* see seen_remove() and seen_refresh() */
	struct clsrec *c = table_deref(&a->classes, p->cls_ref, cp);
	return c && !stale(a, c->flags, c->last_seen, t) ? c : cls_lookup(a, p, cp, t);
}

/* cls_resolve() without a valid reference: look the class up. */
static AGG_COLD struct clsrec *cls_lookup(struct aggregator *a, struct iprec *p, const struct prefix *cp,
					  uint32_t t)
{
	struct clsrec *c;
	struct seenrec *sr;
	p->cls_ref = 0;
	c = table_find(&a->classes, cp);
	if (c && stale(a, c->flags, c->last_seen, t)) { /* see stale() */
		table_remove(&a->classes, c);
		a->evicted++;
		c = NULL;
	}
	if (c) {
		p->cls_ref = table_ref(&a->classes, c);
		return c;
	}
	sr = table_find(&a->seen, cp);
	if (sr) {
		seen_refresh(a, sr); /* its member's last activity */
		if (t > sr->last_seen && t - sr->last_seen > a->idle) {
			seen_remove(a, sr);
			sr = NULL;
		}
	}
	if (!sr) {
		if (a->r->max_tracked_ips > 0 && a->seen.n >= (size_t)a->r->max_tracked_ips)
			evict_seen(a, t, 64, true);
		sr = table_get(&a->seen, cp, NULL);
		sr->ip = p->ip;
		sr->last_seen = t;
		p->cls_ref = CLS_LONE | table_ref(&a->seen, sr);
		return &a->scratch;
	}
	sr->last_seen = t;
	if (ip_same(&sr->ip, &p->ip)) {
		p->cls_ref = CLS_LONE | table_ref(&a->seen, sr);
		return &a->scratch;
	}
	/* a second member: track the class, starting from the first one's counts */
	struct ipaddr first = sr->ip;
	table_remove(&a->seen, sr);
	c = cls_get(a, cp, t);
	struct iprec *q = table_find(&a->ips, &first);
	if (q) {
		cls_seed(a, c, q, t);
		q->cls_ref = table_ref(&a->classes, c);
	}
	p->cls_ref = table_ref(&a->classes, c);
	return c;
}

static struct clsrec *cls_get(struct aggregator *a, const struct prefix *p, uint32_t t)
{
	if (a->r->max_tracked_ips > 0 && a->classes.n >= (size_t)a->r->max_tracked_ips &&
	    !table_find(&a->classes, p))
		evict_classes(a, t, 64, true);
	return table_get(&a->classes, p, NULL);
}

/* ------------------------------------------------------------------ events */

/* The reply code, or the class of the enhanced status code when the MTA
 * logged only that (Postfix cleanup: "5.7.1 Message content rejected"). */
static int ev_code(const struct event *ev)
{
	if (ev->code > 0)
		return ev->code;
	if (ev->dsn.n >= 1 && ev->dsn.p[0] == '5')
		return 550;
	if (ev->dsn.n >= 1 && ev->dsn.p[0] == '4')
		return 450;
	return -1;
}
static bool is_5xx(const struct event *ev)
{
	int c = ev_code(ev);
	return c >= 500 && c < 600;
}
static bool is_4xx(const struct event *ev)
{
	int c = ev_code(ev);
	return c >= 400 && c < 500;
}

/* Window increments one event makes, per window. */
struct delta {
	unsigned w[W__COUNT];
	unsigned wmask; /* bit i: w[i] was set (DSET), so loops skip the others */
	bool bad;	/* an abuse signal: record evidence, evaluate rules */
	bool retry;	/* a 5xx with a sender/recipient pair */
	bool rcpt_bit;	/* an unknown recipient to count distinct */
	bool user_bit;	/* an AUTH user to count distinct */
	bool temp;	/* a 4xx: starts a back-off period */
	bool backoff;	/* the only signal is an early return (not a class member's fault) */
	bool conn;	/* a new connection */
	unsigned flags; /* F_NO_RDNS, F_NO_MX */
};

/* Set window i's increment in a delta, and its bit in wmask. */
#define DSET(d, i, v) ((d)->w[i] = (v), (d)->wmask |= 1u << (i))

static void classify(const struct aggregator *a, const struct event *ev, enum prog_role role, struct delta *d)
{
	const struct rules_conf *r = a->r;
	memset(d, 0, sizeof *d);
	/* Postfix smtpd writes every client as name[addr], "unknown" when the
	 * name did not resolve: any of its lines tells, the stored evidence
	 * lines too (so a restart keeps the weight) */
	if (ev->mta == MTA_POSTFIX && role == ROLE_SMTPD && span_empty(ev->rdns) && ev->kind != EV_DISCONNECT)
		d->flags |= F_NO_RDNS;
	switch (ev->kind) {
	case EV_CONNECT:
		if (ev->stage != ST_CONNECT)
			return; /* postscreen PASS NEW/OLD and the like: same connection */
		d->conn = true;
		break;
	case EV_ACCEPT:
		DSET(d, W_ACCEPT, 1);
		DSET(d, W_RCPT, 1);
		break;
	case EV_AUTH_FAILURE:
		DSET(d, W_AUTH, 1);
		d->user_bit = !span_empty(ev->user);
		d->bad = true;
		break;
	case EV_LOST:
		/* a scanner hangs up before MAIL; a legit client may lose DATA */
		if (ev->stage == ST_CONNECT || ev->stage == ST_HELO || ev->stage == ST_AUTH ||
		    ev->stage == ST_OTHER) {
			DSET(d, W_PROTO, 1);
			d->bad = true;
		}
		break;
	case EV_PROTOCOL:
	case EV_REJECT: break;
	default: return;
	}
	if (ev->kind != EV_REJECT && ev->kind != EV_PROTOCOL)
		return;
	if (is_4xx(ev))
		d->temp = true;
	if (is_5xx(ev))
		DSET(d, W_REJ, 1);
	switch (ev->cat) {
	case CAT_UNKNOWN_RECIPIENT:
		DSET(d, W_UNKNOWN, 1);
		DSET(d, W_RCPT, 1);
		d->rcpt_bit = !span_empty(ev->to);
		d->bad = true;
		break;
	case CAT_RELAY_DENIED:
		DSET(d, W_RELAY, 1);
		DSET(d, W_RCPT, 1);
		d->bad = true;
		break;
	case CAT_NO_RDNS:
		d->flags |= F_NO_RDNS;
		if (ev->kind == EV_REJECT) { /* Exim's "no host name found" is only a note */
			DSET(d, W_POLICY, 1);
			d->bad = true;
		}
		break;
	case CAT_UNKNOWN_SENDER_DOMAIN:
		d->flags |= F_NO_MX;
		if (ev->kind == EV_REJECT) {
			DSET(d, W_POLICY, 1);
			d->bad = true;
		}
		break;
	case CAT_GREYLISTED: break;
	case CAT_RATE_LIMITED:
		d->flags |= F_LIMITED;
		DSET(d, W_CONN, (unsigned)MXW_MAX(r->flood_limit_weight, 0));
		d->bad = true;
		break;
	case CAT_DNSBL:
	case CAT_CLIENT_POLICY:
		/* a verdict on the client itself; a 4xx one ("try later") is not */
		if (!is_4xx(ev)) {
			DSET(d, W_POLICY, (unsigned)MXW_MAX(r->policy_client_weight, 1));
			d->bad = true;
		}
		break;
	case CAT_HELO:
	case CAT_SENDER_POLICY:
	case CAT_RECIPIENT_POLICY:
	case CAT_SIZE:
		/* a 4xx here (mailbox full, try later) invites a retry */
		if (!is_4xx(ev)) {
			DSET(d, W_POLICY, 1);
			d->bad = true;
		}
		break;
	case CAT_PIPELINING:
	case CAT_PREGREET:
	case CAT_NON_SMTP:
		/* what bots and HTTP probes do, never a real MTA */
		DSET(d, W_PROTO, (unsigned)MXW_MAX(r->protocol_bot_weight, 1));
		d->bad = true;
		break;
	case CAT_TOO_MANY_ERRORS:
		DSET(d, W_PROTO, 1);
		d->bad = true;
		break;
	case CAT_AUTH:
		DSET(d, W_AUTH, 1);
		d->user_bit = !span_empty(ev->user);
		d->bad = true;
		break;
	case CAT_OTHER:
	case CAT_NONE:
	default:
		if (ev->kind == EV_PROTOCOL) {
			DSET(d, W_PROTO, 1);
			d->bad = true;
		} else if (!is_4xx(ev)) {
			DSET(d, W_POLICY, 1);
			d->bad = true;
		}
		break;
	}
	if (is_5xx(ev) && ev->kind == EV_REJECT &&
	    (ev->stage == ST_RCPT || ev->stage == ST_MAIL || ev->stage == ST_DATA ||
	     ev->stage == ST_END_OF_DATA)) {
		d->retry = true;
		d->bad = true;
	}
}

/* A decided record (F_DECIDED) whose new score cannot raise the response
 * of its decision: nothing to do. */
static bool no_upgrade(const struct aggregator *a, uint8_t flags, int rule, double ratio)
{
	if (!(flags & F_DECIDED))
		return false;
	double score = round(rule_severity[rule] * ratio * 100.0) / 100.0;
	return (unsigned)response_of(a->r, score) <= (unsigned)((flags & F_RESP_MASK) >> F_RESP_SHIFT);
}

/* Mark a record decided, with the response of the decision in force on p. */
static uint8_t decided_flags(struct aggregator *a, uint8_t flags, const struct prefix *p)
{
	struct active *ac = active_find(a, p);
	if (!ac)
		return flags;
	unsigned r = ac->d.manual ? 3u : MXW_MIN((unsigned)ac->d.response, 3u);
	return (uint8_t)((flags & ~F_RESP_MASK) | F_DECIDED | (r << F_RESP_SHIFT));
}

static void check_ip(struct aggregator *a, struct iprec *p, struct clsrec *c, uint32_t t)
{
	/* a decided record is judged too: its decision may be upgraded, unless
	 * it drops already (or is manual) and is counted in its class */
	if ((p->flags & (F_DECIDED | F_FLAGGED | F_RESP_MASK)) == (F_DECIDED | F_FLAGGED | F_RESP_MASK))
		return;
	struct view v;
	ip_view(a, p, t, &v);
	double ratio;
	int rule = view_pick(a, &v, &ratio);
	if (rule < 0 || no_upgrade(a, p->flags, rule, ratio))
		return;
	struct prefix px;
	host_prefix(&px, &p->ip);
	struct evslot *s = ev_get(a, &p->ev, &px, false);
	decide(a, &px, SCOPE_IP, rule, ratio, &v, t, p->first_bad, s);
	p->flags = decided_flags(a, p->flags, &px);
	bool held = p->flags & F_DECIDED;
	if (held && !(p->flags & F_FLAGGED)) {
		p->flags |= F_FLAGGED;
		uint32_t win = (uint32_t)MXW_MAX(a->r->idle_evict, 3600);
		if (!c->flagged_t0 || t - c->flagged_t0 > win) {
			c->nflagged = 0;
			c->flagged_t0 = t;
		}
		c->nflagged++;
	}
}

static AGG_COLD void widen(struct aggregator *a, const struct clsrec *c, uint32_t t)
{
	const struct rules_conf *r = a->r;
	if (!r->class_enabled || r->class_widen_classes <= 0)
		return;
	bool v4 = c->p.addr.family == IPADDR_V4;
	unsigned wl = v4 ? a->c->classes.v4_widen_len : a->c->classes.v6_widen_len;
	unsigned floor = v4 ? a->c->v4_floor : a->c->v6_floor;
	if (wl < floor)
		wl = floor;
	if (wl >= c->p.len)
		return;
	struct prefix w;
	prefix_from_addr(&w, &c->p.addr, wl);
	struct countrec *cr = table_get(&a->wider, &w, NULL);
	cr->n++;
	cr->t = t;
	if (cr->n < (uint32_t)r->class_widen_classes)
		return;
	struct view v;
	memset(&v, 0, sizeof v);
	v.flagged = cr->n;
	v.v[R_WIDEN] = cr->n;
	v.thr[R_WIDEN] = (double)r->class_widen_classes;
	v.window[R_WIDEN] = (unsigned)MXW_MAX(r->idle_evict, 3600);
	v.mult = 1;
	decide(a, &w, SCOPE_CLASS, R_WIDEN, (double)cr->n / (double)r->class_widen_classes, &v, t, 0, NULL);
}

static void check_class(struct aggregator *a, struct clsrec *c, uint32_t t)
{
	if (c == &a->scratch)
		return; /* a lone member's class is never judged */
	if ((c->flags & (F_DECIDED | F_RESP_MASK)) == (F_DECIDED | F_RESP_MASK))
		return; /* dropped already (or manual): nothing to upgrade */
	struct view v;
	cls_view(a, c, t, &v);
	if (v.ips < 2 && v.flagged < 2) {
		/* one source is judged per IP; a class needs several members */
		for (int i = 0; i < R__COUNT; i++)
			if (i != R_FLOOD)
				v.thr[i] = 0;
	}
	double ratio;
	int rule = view_pick(a, &v, &ratio);
	if (rule < 0 || no_upgrade(a, c->flags, rule, ratio))
		return;
	struct evslot *s = ev_get(a, &c->ev, &c->p, false);
	bool made = decide(a, &c->p, SCOPE_CLASS, rule, ratio, &v, t, c->first_bad, s);
	c->flags = decided_flags(a, c->flags, &c->p);
	if (made)
		widen(a, c, t);
}

/* The hot path of aggregator_event() stays small (the instruction cache
 * holds it and the parser's): what only some events do is out of line. */

/* Distinct unknown recipients and user names, and retries of a refused
 * (sender, recipient) pair. */
static __attribute__((noinline)) void count_distinct(struct aggregator *a, const struct event *ev,
						     const struct delta *d, struct iprec *p, struct clsrec *c,
						     bool lone, uint32_t t)
{
	if (d->rcpt_bit) {
		uint64_t h = span_hash(ev->to, 1);
		bits_add(&p->rcpt_bits, &p->rcpt_t0, t, a->wlen[W_UNKNOWN], h);
		if (!lone)
			bits_add(&c->rcpt_bits, &c->rcpt_t0, t, a->wlen[W_UNKNOWN], h);
	}
	if (d->user_bit) {
		uint64_t h = span_hash(ev->user, 2);
		bits_add(&p->user_bits, &p->user_t0, t, a->wlen[W_AUTH], h);
		if (!lone)
			bits_add(&c->user_bits, &c->user_t0, t, a->wlen[W_AUTH], h);
	}
	if (d->retry) {
		uint32_t h = (uint32_t)(span_hash(ev->from, 3) ^ span_hash(ev->to, 4));
		unsigned before = retry_get(&p->r, t, a->wlen[W_RETRY], NULL);
		unsigned now = retry_add(&p->r, t, a->wlen[W_RETRY], h, NULL);
		if (!lone)
			retry_add(&c->r, t, a->wlen[W_RETRY], h, NULL);
		if (now > before)
			win8_add(&p->w[W_RETRY], bucket(a, t, W_RETRY), 1);
		p->last_code = (int16_t)ev_code(ev);
		c->last_code = (int16_t)ev_code(ev);
	}
}

/* A connection of an IP (n connections in its window) or class (cn) whose
 * flood is plausible: its line is kept as evidence, unless the sender is
 * busy delivering mail. */
static __attribute__((noinline)) void flood_evidence(struct aggregator *a, const struct event *ev,
						     struct iprec *p, struct clsrec *c, bool lone, unsigned n,
						     unsigned cn, uint32_t t)
{
	if (a->r->flood_ip_count > 0 && n * 4 >= (unsigned)a->r->flood_ip_count &&
	    !busy(p->flags, win8_sum(&p->w[W_ACCEPT], bucket(a, t, W_ACCEPT)), n)) {
		struct prefix px;
		host_prefix(&px, &ev->ip);
		ev_record(a, ev_get(a, &p->ev, &px, true), ev);
	}
	if (a->r->flood_class_count > 0 && cn * 4 >= (unsigned)a->r->flood_class_count &&
	    (lone || !busy(c->flags, win32_sum(&c->w[W_ACCEPT], bucket(a, t, W_ACCEPT)), cn)))
		ev_record(a, ev_get(a, &c->ev, &c->p, true), ev);
}

/* An abuse signal: evidence for the IP (and its class once a second member
 * misbehaves), and both judged. */
static __attribute__((noinline)) void judge_bad(struct aggregator *a, const struct event *ev,
						const struct delta *d, struct iprec *p, struct clsrec *c,
						bool lone, uint32_t t)
{
	if (!p->first_bad)
		p->first_bad = t;
	if (!c->first_bad)
		c->first_bad = t;
	if (!d->backoff && !lone)
		bits_add(&c->ip_bits, &c->ipb_t0, t, (uint32_t)MXW_MAX(a->r->idle_evict, 3600),
			 ipaddr_hash(&ev->ip));
	struct prefix px;
	host_prefix(&px, &ev->ip);
	ev_record(a, ev_get(a, &p->ev, &px, true), ev);
	/* a class keeps lines of its own once a second member misbehaves (a
	 * lone member's lines are in its own slot): most classes have one */
	if (c->ev || bits_estimate(c->ip_bits) >= 2)
		ev_record(a, ev_get(a, &c->ev, &c->p, true), ev);
	check_ip(a, p, c, t);
	check_class(a, c, t);
}

static void agg_time(struct aggregator *a, uint32_t t);

void aggregator_event(struct aggregator *a, const struct event *ev)
{
	if ((!ev->has_ip || a->held) && agg_session_route(a, ev, 0))
		return;
	a->events++;
	/* agg_session_route() took those without; not a copy: reading a copy
	 * just written back in 8-byte words stalls on store forwarding */
	const struct ipaddr *ip = &ev->ip;
	if (ev->ts_us <= 0)
		return;
	uint32_t t = agg_seconds(a, ev->ts_us);
	if (ev->ts_us > a->newest)
		a->newest = ev->ts_us;
	if (t != a->time_t) /* once per second of log time */
		agg_time(a, t);

	enum prog_role role = prog_role(ev);
	struct delta d;
	classify(a, ev, role, &d);
	if (ev->kind == EV_DISCONNECT) {
		/* MAIL before HELO leaves no reject line in Postfix, only the stats */
		if (ev->stats.present && ev->stats.ehlo_total == 0 && ev->stats.mail_total > 0) {
			DSET(&d, W_PROTO, 1);
			d.bad = true;
		}
	}
	/* most lines change nothing (postscreen PASS, disconnects, notes):
	 * they leave after their session is noted, before touching the tables */
	bool quiet = !d.conn && !d.bad && !d.temp && !d.flags && !d.rcpt_bit && !d.user_bit && !d.retry &&
		     !(ev->kind == EV_REJECT && !span_empty(ev->queue_id));
	if (quiet)
		for (unsigned m = d.wmask; m; m &= m - 1)
			quiet &= d.w[__builtin_ctz(m)] == 0;
	uint64_t ip_hv = 0;
	bool cached = !quiet && a->last_p && a->ips.removals + a->classes.removals == a->last_gen &&
		      ip_same(&a->last_ip, ip); /* not stale: agg_clock_advance() */
	if (!quiet && !cached) {
		ip_hv = table_hash(&a->ips, ip);
		table_prefetch_h(&a->ips, ip_hv); /* hidden behind the session */
	}
	if (role == ROLE_POSTSCREEN && ev->mta == MTA_POSTFIX) {
		a->cur = NULL; /* before any connection: no session (agg_session_event) */
		a->sess_new = NULL;
	} else {
		agg_session_event(a, ev, role, d.bad, t);
	}
	if (quiet)
		return;

	struct iprec *p;
	struct clsrec *c;
	if (cached) {
		p = a->last_p;
		c = a->last_c;
	} else {
		p = ip_get(a, ip, ip_hv, t);
		struct prefix cp;
		if (ev->has_ip && ev->cls.addr.family == ip->family && ev->cls.len)
			cp = ev->cls;
		else
			ipaddr_class(ip, &a->c->classes, &cp);
		c = cls_resolve(a, p, &cp, t);
		a->last_ip = *ip;
		a->last_p = p;
		a->last_c = c;
		a->last_gen = a->ips.removals + a->classes.removals; /* ip_get may evict */
	}
	/* a lone member: its class is not tracked yet. The scratch record is
	 * never read except for this event's connection count (cn below) and
	 * its evidence and flag counts (reset here), so its windows and
	 * distinct counts are not kept at all */
	bool lone = c == &a->scratch;
	if (lone) {
		c->flags = F_DECIDED; /* never judged */
		c->ev = 0;
		c->ip_bits = 0;
		c->first_bad = 0;
		c->nflagged = 0;
		c->flagged_t0 = 0;
	}
	if (a->sess_new)
		agg_session_begin(a, p, t);
	p->last_seen = t;
	c->last_seen = t;
	p->flags |= (uint8_t)d.flags;
	c->flags |= (uint8_t)(d.flags & (F_NO_MX | F_LIMITED));

	bool dup = false; /* the smtpd connect of a connection postscreen logged */
	if (d.conn) {
		bool postscreen = role == ROLE_POSTSCREEN;
		/* one session logs a postscreen CONNECT and then an smtpd connect */
		dup = !postscreen && p->last_ps && t >= p->last_ps && t - p->last_ps <= 30;
		if (postscreen)
			p->last_ps = t;
		if (!dup) {
			DSET(&d, W_CONN, d.w[W_CONN] + 1);
			if (p->last_temp && t >= p->last_temp &&
			    t - p->last_temp < a->r->backoff_min_interval) {
				DSET(&d, W_BACKOFF, 1);
				d.backoff = !d.bad;
				d.bad = true;
			}
			if (!lone)
				bits_add(&c->conn_ip_bits, &c->cipb_t0, t, a->wlen[W_CONN], ipaddr_hash(ip));
		}
	}
	if (d.temp) {
		p->last_temp = t;
		agg_session_temp(p, ev);
	}

	if (ev->kind == EV_REJECT && !span_empty(ev->queue_id) &&
	    (ev->stage == ST_DATA || ev->stage == ST_END_OF_DATA)) {
		/* Postfix logs "QID: client=" (an accept) before cleanup rejects
		 * the content: that message was not accepted after all */
		win8_sub(&p->w[W_ACCEPT], bucket(a, t, W_ACCEPT));
		if (!lone)
			win32_sub(&c->w[W_ACCEPT], bucket(a, t, W_ACCEPT));
	}
	for (unsigned m = d.wmask; m; m &= m - 1) { /* the windows classify() touched, in order */
		int w = __builtin_ctz(m);
		if (d.w[w]) {
			win8_add(&p->w[w], bucket(a, t, w), d.w[w]);
			if (!lone)
				win32_add(&c->w[w], bucket(a, t, w), d.w[w]);
		}
	}
	if (d.rcpt_bit || d.user_bit || d.retry)
		count_distinct(a, ev, &d, p, c, lone, t);
	if (d.conn && !d.bad) {
		/* a connection can only cross the flood rule; keep connect lines
		 * as evidence once a flood is plausible */
		unsigned n = win8_sum(&p->w[W_CONN], bucket(a, t, W_CONN));
		/* a lone member's class window holds this event's count only */
		unsigned cn =
		    lone ? MXW_MIN(d.w[W_CONN], 65535u) : win32_sum(&c->w[W_CONN], bucket(a, t, W_CONN));
		if ((a->r->flood_ip_count > 0 && n * 4 >= (unsigned)a->r->flood_ip_count) ||
		    (a->r->flood_class_count > 0 && cn * 4 >= (unsigned)a->r->flood_class_count))
			flood_evidence(a, ev, p, c, lone, n, cn, t);
		/* the smtpd line of a connection postscreen logged seconds
		 * before counts nothing: it is not judged again (only the decay
		 * of accepted mail could tip a rule since, and the next counted
		 * event sees that) */
		if (dup)
			return;
		/* nor is a busy sender's connection: it cannot flood */
		if (a->r->flood_enabled && (double)n >= a->flood_ip_min &&
		    !busy(p->flags, win8_sum(&p->w[W_ACCEPT], bucket(a, t, W_ACCEPT)), n))
			check_ip(a, p, c, t);
		if (a->r->flood_enabled && (double)cn >= a->flood_cls_min &&
		    (lone || !busy(c->flags, win32_sum(&c->w[W_ACCEPT], bucket(a, t, W_ACCEPT)), cn)))
			check_class(a, c, t);
		return;
	}
	if (d.bad)
		judge_bad(a, ev, &d, p, c, lone, t);
}

/* ----------------------------------------------------------- life cycle */

static AGG_COLD void load_allow_file(struct aggregator *a, const char *path)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		log_warn("allow_files: cannot read %s", path);
		return;
	}
	char line[512];
	int ln = 0;
	while (fgets(line, sizeof line, fp)) {
		ln++;
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		size_t n = strcspn(s, " \t\r\n#");
		if (!n)
			continue;
		struct prefix p;
		if (prefix_parse(&p, s, n, false) < 0) {
			log_warn("%s:%d: not an address or CIDR, skipped", path, ln);
			continue;
		}
		prefix_list_add(&a->allow, &p);
	}
	fclose(fp);
}

struct aggregator *aggregator_new(const struct config *c)
{
	struct aggregator *a = xcalloc(1, sizeof *a);
	bits_init();
	a->next_until = INT64_MAX;
	a->idle = (uint32_t)MXW_MAX(c->rules.idle_evict, 60);
	a->house_period = MXW_MIN(a->idle, 600u);
	a->c = c;
	a->r = &c->rules;
	const struct rules_conf *r = a->r;
	int64_t wl[W__COUNT];
	wl[W_CONN] = r->flood_window;
	wl[W_ACCEPT] = r->success_window;
	wl[W_UNKNOWN] = r->harvest_window;
	wl[W_RCPT] = r->harvest_window;
	wl[W_RELAY] = r->relay_window;
	wl[W_AUTH] = r->auth_window;
	wl[W_PROTO] = r->protocol_window;
	wl[W_POLICY] = r->policy_window;
	wl[W_BACKOFF] = r->backoff_window;
	wl[W_RETRY] = r->retry_window;
	wl[W_REJ] = r->success_window;
	for (int i = 0; i < W__COUNT; i++) {
		int64_t w = MXW_MAX(wl[i], (int64_t)WIN_SUB);
		if (w > 400LL * 86400)
			w = 400LL * 86400;
		a->wlen[i] = (uint32_t)w;
		a->blen[i] = (uint32_t)((w + WIN_SUB - 1) / WIN_SUB);
	}
	/* the lowest a flood threshold can go (rule 7 weights): below it a
	 * connection needs no evaluation */
	double wmax = MXW_MAX(r->no_rdns_weight, 1.0) * MXW_MAX(r->no_mx_weight, 1.0);
	a->flood_ip_min = MXW_MAX(1.0, (double)r->flood_ip_count / wmax);
	a->flood_cls_min = MXW_MAX(1.0, (double)r->flood_class_count / wmax);
	rules_precompute(a);
	table_init(&a->ips, sizeof(struct iprec), sizeof(struct ipaddr));
	table_init(&a->classes, sizeof(struct clsrec), sizeof(struct prefix));
	table_init(&a->seen, sizeof(struct seenrec), sizeof(struct prefix));
	table_init(&a->sessions, sizeof(struct sessrec), sizeof(struct skey));
	table_init(&a->offenses, sizeof(struct countrec), sizeof(struct prefix));
	table_init(&a->wider, sizeof(struct countrec), sizeof(struct prefix));
	agg_session_init(a);
	for (size_t i = 0; i < c->protected_networks.n; i++)
		prefix_list_add(&a->protected_nets, &c->protected_networks.v[i]);
	if (c->protected_default)
		config_protected_add_local(&a->protected_nets);
	for (size_t i = 0; i < c->allow.n; i++)
		prefix_list_add(&a->allow, &c->allow.v[i]);
	for (size_t i = 0; i < c->allow_files.n; i++)
		load_allow_file(a, c->allow_files.v[i]);
	a->ev_lines = (size_t)MXW_MIN(MXW_MAX(r->evidence_lines, 0), 50);
	if (a->ev_lines) {
		a->ev_n = 2048;
		a->ev_stride = sizeof(struct evslot) + 2 * a->ev_lines * sizeof(struct evline);
		a->ev_stride = (a->ev_stride + 7) & ~(size_t)7;
		a->ev = xcalloc(a->ev_n, a->ev_stride);
	}
	return a;
}

void aggregator_free(struct aggregator *a)
{
	if (!a)
		return;
	table_free(&a->ips);
	table_free(&a->classes);
	table_free(&a->seen);
	table_free(&a->sessions);
	table_free(&a->offenses);
	table_free(&a->wider);
	agg_session_free(a);
	prefix_list_free(&a->protected_nets);
	prefix_list_free(&a->allow);
	for (size_t i = 0; i < a->npend; i++)
		free(a->pend[i].evidence);
	free(a->pend);
	free(a->act);
	free(a->act_ix);
	free(a->out);
	free(a->ev);
	free(a->state_path);
	free(a);
}

/* The decision on p ended: its record may be judged again. After a manual
 * unblock the record is forgotten, or the next event would block again on
 * the evidence that was just forgiven. */
static void clear_decided(struct aggregator *a, const struct prefix *p, bool forgive)
{
	if (prefix_is_host(p)) {
		struct iprec *r = table_find(&a->ips, &p->addr);
		if (r && forgive)
			ip_remove(a, r);
		else if (r)
			r->flags &= (uint8_t) ~(F_DECIDED | F_RESP_MASK);
	} else {
		struct clsrec *c = table_find(&a->classes, p);
		if (c && forgive)
			table_remove(&a->classes, c);
		else if (c)
			c->flags &= (uint8_t) ~(F_DECIDED | F_RESP_MASK);
	}
}

void agg_active_remove(struct aggregator *a, size_t i, const char *why, bool announce)
{
	struct decision d = a->act[i].d;
	if (!a->act_ix_dirty && a->act_ixcap)
		act_index_del(a, i); /* expiries are frequent: no rebuild for each */
	else
		a->act_ix_dirty = true;
	a->act[i] = a->act[--a->nact];
	if (!d.manual)
		clear_decided(a, &d.prefix, strcmp(why, "unblocked") == 0);
	if (announce) /* an expiry happened at the until, whenever the clock saw it pass */
		pend_push(a, &(struct pending){.kind = AGG_CHANGE_ENDED,
					       .d = d,
					       .end_reason = why,
					       .at = strcmp(why, "expired") == 0 ? d.until : a->clock});
}

/* Every decision whose until has come by now ends (manual ones too:
 * recorded); a replay ends them without a word (the database has their
 * end already). */
static AGG_COLD void expire_due(struct aggregator *a, int64_t now)
{
	int64_t next = INT64_MAX;
	for (size_t i = 0; i < a->nact;) {
		if (a->act[i].d.until <= now) {
			agg_active_remove(a, i, "expired", !a->replaying);
			continue;
		}
		if (a->act[i].d.until < next)
			next = a->act[i].d.until;
		i++;
	}
	a->next_until = next;
}

/* How many records of t a sweep looks at after k periods of the clock:
 * the whole table once per idle_evict. */
static size_t sweep_share(const struct aggregator *a, const struct table *t, int64_t k)
{
	uint64_t n = (uint64_t)t->nrec * a->house_period * (uint64_t)k / a->idle + 64;
	return n < t->nrec ? (size_t)n : t->nrec;
}

void agg_clock_advance(struct aggregator *a, int64_t t)
{
	if (t <= a->clock)
		return;
	a->clock = t;
	if (t >= a->next_until)
		expire_due(a, t);
	/* idle records go every 10 minutes of the clock, each table swept
	 * once per idle_evict; when they go changes nothing (a record touched
	 * after idle_evict is forgotten first: ip_get(), cls_resolve()), so
	 * the sweeps bound only the memory: a record idle for idle_evict is
	 * gone within twice that */
	int64_t h = t / a->house_period;
	if (h != a->house) {
		int64_t k = a->house && h > a->house ? h - a->house : 1; /* periods passed */
		a->house = h;
		/* the records of the last event are looked up again: less than
		 * a period (at most idle_evict) ago, the cache is never stale */
		a->last_p = NULL;
		uint32_t u = (uint32_t)t;
		evict_some(a, u, sweep_share(a, &a->ips, k), false);
		evict_classes(a, u, sweep_share(a, &a->classes, k), false);
		evict_seen(a, u, sweep_share(a, &a->seen, k), false);
	}
}

/* A new second of log time (the event's): the judge's clock first, so
 * that what ended by now is over before the event is judged (aggregator.h,
 * "Time"); then sessions and held events, which go by the events' own
 * time, never by a wall-clock tick, so that a follow tidies them where an
 * import does. */
static AGG_COLD void agg_time(struct aggregator *a, uint32_t t)
{
	a->time_t = t;
	if (t > a->clock)
		agg_clock_advance(a, t);
	if (t >= a->sess_next) { /* every 10 minutes */
		a->sess_next = (t / 600 + 1) * 600;
		agg_session_tick(a, t);
	}
}

void aggregator_tick(struct aggregator *a, int64_t now)
{
	agg_clock_to(a, now);
}

int64_t aggregator_clock(const struct aggregator *a)
{
	return a->clock;
}

size_t aggregator_take_changes(struct aggregator *a, agg_change_fn fn, void *arg)
{
	size_t n = a->npend;
	for (size_t i = 0; i < n; i++) {
		struct pending *p = &a->pend[i];
		/* the decision in force it concerns: by the prefix index (a manual
		 * block can share the prefix: then by prefix and since) */
		struct active *x = active_find(a, &p->d.prefix);
		if (x && x->d.since != p->d.since) {
			x = NULL;
			for (size_t k = 0; k < a->nact && !x; k++)
				if (prefix_cmp(&a->act[k].d.prefix, &p->d.prefix) == 0 &&
				    a->act[k].d.since == p->d.since)
					x = &a->act[k];
		}
		if (p->kind != AGG_CHANGE_NEW && p->d.id == 0 && x) /* made in this same batch */
			p->d.id = x->d.id;
		struct agg_change ch = {.kind = p->kind,
					.d = &p->d,
					.evidence_json = p->evidence,
					.end_reason = p->end_reason,
					.from = p->from,
					.at = p->at};
		int64_t id = fn ? fn(arg, &ch) : 0;
		if (p->kind == AGG_CHANGE_NEW && id > 0 && x && x->d.id == 0)
			x->d.id = id;
		free(p->evidence);
	}
	a->npend = 0;
	return n;
}

void aggregator_rebind(struct aggregator *a, int64_t old_id, int64_t new_id)
{
	for (size_t k = 0; k < a->nact; k++)
		if (a->act[k].d.id == old_id && old_id > 0)
			a->act[k].d.id = new_id;
	for (size_t i = 0; i < a->npend; i++)
		if (a->pend[i].d.id == old_id && old_id > 0)
			a->pend[i].d.id = new_id;
}

void aggregator_active(struct aggregator *a, const struct decision **v, size_t *n)
{
	if (a->capout < a->nact) {
		a->capout = a->nact;
		a->out = xrealloc(a->out, a->capout * sizeof *a->out);
	}
	size_t k = 0;
	for (size_t i = 0; i < a->nact; i++) {
		if (a->c->rules.dry_run && !a->act[i].d.manual)
			continue;
		a->out[k++] = a->act[i].d;
	}
	*v = a->out;
	*n = k;
}

void aggregator_stats(const struct aggregator *a, struct agg_stats *st)
{
	memset(st, 0, sizeof *st);
	st->ips = a->ips.n;
	st->classes = a->classes.n;
	st->bytes = table_bytes(&a->ips) + table_bytes(&a->classes) + table_bytes(&a->seen) +
		    table_bytes(&a->sessions) + table_bytes(&a->offenses) + table_bytes(&a->wider) +
		    a->ev_n * a->ev_stride + agg_session_bytes(a);
	st->decisions = a->nact;
	st->events = a->events;
	st->evicted = a->evicted;
	st->suppressed = a->suppressed;
	st->held = a->held;
	st->attributed = a->attributed;
	st->unattributed = a->unattributed;
	st->restored = a->restored_rows;
	st->from_checkpoint = a->from_checkpoint;
}
