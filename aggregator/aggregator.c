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
#include <stddef.h>
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
	R_RETURNED,
	R__COUNT
};
static const char *const rule_names[R__COUNT] = {"retry", "harvest",  "backoff", "relay",
						 "auth",  "protocol", "policy",	 "flood",
						 "class", "widen",    "returned"};
/* How bad crossing each rule is: the score is severity x (value/threshold),
 * and the response follows score_defer/reject/drop. */
static const double rule_severity[R__COUNT] = {2, 2, 1, 4, 4, 2, 2, 4, 2, 2, 4};

/* Clear attacks: a flood, AUTH brute force, relay probing, and coming back
 * again and again while blocked. Only these may drop a first offender (the
 * others start at reject: its reply reaches the sender's postmaster). */
static bool rule_is_attack(int rule)
{
	return rule == R_FLOOD || rule == R_AUTH || rule == R_RELAY || rule == R_RETURNED;
}

/* What one record (IP or class) shows, as numbers the rules compare. */
struct view {
	unsigned v[R__COUNT]; /* the value each rule compares */
	double thr[R__COUNT]; /* the effective threshold (0 = rule off) */
	unsigned window[R__COUNT];
	unsigned accepted, rejected, unknown, rcpts, users, pairs, ips, flagged, auth, conns;
	unsigned sess; /* IP: connections with an abuse signal; class: misbehaving members */
	unsigned good; /* class: members with accepted mail that never misbehaved */
	double mult;
	bool gated;    /* accepted mail outweighs rejections: reject-count rules hold */
	bool per_user; /* AUTH failures judged by user names only (it authenticated or delivered before) */
	bool limited;  /* the MTA rate-limited it (flood counts include its warnings) */
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

/* The precomputed key of a view: success (accepted mail, a successful
 * AUTH; for a class: a member that delivered and never misbehaved), no
 * rDNS, no MX. */
static inline unsigned view_key(bool success, unsigned flags)
{
	return (success ? 1u : 0u) | (flags & F_NO_RDNS ? 2u : 0u) | (flags & F_NO_MX ? 4u : 0u);
}

/* The thresholds, multipliers and windows of a record with key k, as
 * configured. The success factor raises every threshold; the rule 7
 * weights (no rDNS, sender domain without MX) lower those of the rules
 * about unwanted mail, not those about passwords or relaying, which a
 * missing PTR record says nothing about. */
static void view_rules_of(const struct aggregator *a, struct view *v, unsigned k, bool cls)
{
	const struct rules_conf *r = a->r;
	double m = k & 1 ? (r->success_factor > 0 ? r->success_factor : 1) : 1;
	double w = 1;
	if ((k & 2) && r->no_rdns_weight > 0)
		w /= r->no_rdns_weight;
	if ((k & 4) && r->no_mx_weight > 0)
		w /= r->no_mx_weight;
	v->mult = m * w;
	/* a retry and a back-off are one client's queue: not summed */
	v->thr[R_RETRY] = cls ? 0 : thr_of(r->retry_enabled, r->retry_count, m * w);
	v->thr[R_HARVEST] = thr_of(r->harvest_enabled, r->harvest_distinct, m * w);
	v->thr[R_BACKOFF] = cls ? 0 : thr_of(r->backoff_enabled, r->backoff_count, m * w);
	v->thr[R_RELAY] = thr_of(r->relay_enabled, r->relay_count, m);
	v->thr[R_AUTH] = thr_of(r->auth_enabled, r->auth_count, m);
	v->thr[R_PROTOCOL] = thr_of(r->protocol_enabled, r->protocol_count, m * w);
	v->thr[R_POLICY] = thr_of(r->policy_enabled, r->policy_count, m * w);
	v->thr[R_FLOOD] = thr_of(r->flood_enabled, cls ? r->flood_class_count : r->flood_ip_count, m * w);
	/* a class whose other members deliver accepted mail needs more */
	v->thr[R_CLASS] = cls ? thr_of(r->class_enabled, r->class_flagged_ips, m) : 0;
	v->thr[R_WIDEN] = 0;
	v->thr[R_RETURNED] = cls ? 0 : thr_of(true, r->returned_count, 1);
	v->window[R_RETRY] = a->wlen[W_RETRY];
	v->window[R_HARVEST] = a->wlen[W_UNKNOWN];
	v->window[R_BACKOFF] = a->wlen[W_BACKOFF];
	v->window[R_RELAY] = a->wlen[W_RELAY];
	v->window[R_AUTH] = a->wlen[W_AUTH];
	v->window[R_PROTOCOL] = a->wlen[W_PROTO];
	v->window[R_POLICY] = a->wlen[W_POLICY];
	v->window[R_FLOOD] = a->wlen[W_CONN];
	v->window[R_CLASS] = (unsigned)MXW_MAX(r->idle_evict, 3600);
	v->window[R_RETURNED] = a->wlen[W_OWN];
}

/* view_rules_of() for every key, once. */
static void rules_precompute(struct aggregator *a)
{
	_Static_assert(R__COUNT <= AGG_RULES_MAX, "pre_thr holds every rule");
	for (int cls = 0; cls < 2; cls++) {
		for (unsigned k = 0; k < 8; k++) {
			struct view v;
			memset(&v, 0, sizeof v);
			view_rules_of(a, &v, k, cls);
			a->pre_mult[k] = v.mult;
			memcpy(a->pre_thr[cls][k], v.thr, sizeof v.thr);
			memcpy(a->pre_window, v.window, sizeof v.window);
		}
	}
}

/* view_rules_of() from the tables rules_precompute() made, then what
 * depends on the view's own numbers: reject-count rules hold while
 * accepted recipients outnumber rejections (a big legitimate sender with
 * stale addresses), a busy sender cannot flood. */
static void view_rules(const struct aggregator *a, struct view *v, bool success, unsigned flags, bool cls)
{
	unsigned k = view_key(success, flags);
	v->mult = a->pre_mult[k];
	memcpy(v->thr, a->pre_thr[cls][k], sizeof v->thr);
	memcpy(v->window, a->pre_window, sizeof v->window);
	v->gated = v->accepted && v->accepted >= v->rejected;
	if (v->gated)
		v->thr[R_RETRY] = v->thr[R_HARVEST] = v->thr[R_POLICY] = 0;
	if (busy(flags, v->accepted, v->conns))
		v->thr[R_FLOOD] = 0;
	v->limited = flags & F_LIMITED;
}

/* Distinct counts are estimates: one never exceeds the refusals it
 * counts, nor those the RCPT attempts. */
static void view_clamp(struct view *v)
{
	if (v->unknown > v->rcpts)
		v->rcpts = v->unknown;
	if (v->v[R_HARVEST] > v->unknown)
		v->v[R_HARVEST] = v->unknown;
	if (v->users > v->auth)
		v->users = v->auth;
	if (v->pairs > v->v[R_RETRY])
		v->pairs = v->v[R_RETRY];
}

static void ip_view(struct aggregator *a, const struct iprec *p, uint32_t t, struct view *v)
{
	memset(v, 0, sizeof *v);
	v->accepted = win8_sum(&p->w[W_ACCEPT], bucket(a, t, W_ACCEPT));
	v->rejected = win8_sum(&p->w[W_REJ], bucket(a, t, W_REJ));
	v->unknown = win8_sum(&p->w[W_UNKNOWN], bucket(a, t, W_UNKNOWN));
	v->rcpts = win8_sum(&p->w[W_RCPT], bucket(a, t, W_RCPT));
	v->conns = win8_sum(&p->w[W_CONN], bucket(a, t, W_CONN));
	v->conns -= MXW_MIN(v->conns, (unsigned)p->open); /* those that ended */
	view_rules(a, v, v->accepted || (p->flags & F_AUTH_OK), p->flags, false);
	v->v[R_RETRY] = win8_sum(&p->w[W_RETRY], bucket(a, t, W_RETRY));
	retry_get(&p->r, t, a->wlen[W_RETRY], &v->pairs);
	v->v[R_HARVEST] = bits_get(p->rcpt_bits, p->rcpt_t0, t, a->wlen[W_UNKNOWN]);
	v->v[R_BACKOFF] = win8_sum(&p->w[W_BACKOFF], bucket(a, t, W_BACKOFF));
	v->v[R_RELAY] = win8_sum(&p->w[W_RELAY], bucket(a, t, W_RELAY));
	v->auth = win8_sum(&p->w[W_AUTH], bucket(a, t, W_AUTH));
	v->users = bits_get(p->user_bits, p->user_t0, t, a->wlen[W_AUTH]);
	v->v[R_AUTH] = v->auth;
	/* a client that authenticated or delivered before: a stale password
	 * is one user name failing again and again, brute force many names */
	v->per_user = (p->flags & F_AUTH_OK) || v->accepted;
	v->v[R_PROTOCOL] = win8_sum(&p->w[W_PROTO], bucket(a, t, W_PROTO));
	v->v[R_POLICY] = win8_sum(&p->w[W_POLICY], bucket(a, t, W_POLICY));
	v->v[R_FLOOD] = v->conns;
	v->v[R_RETURNED] = win8_sum(&p->w[W_OWN], bucket(a, t, W_OWN));
	v->sess = win8_sum(&p->w[W_SESS], bucket(a, t, W_SESS));
	v->code = p->last_code;
	v->ips = 1;
	view_clamp(v);
}

static void cls_view(struct aggregator *a, const struct clsrec *c, uint32_t t, struct view *v)
{
	memset(v, 0, sizeof *v);
	uint32_t mwin = (uint32_t)MXW_MAX(a->r->idle_evict, 3600);
	v->accepted = win32_sum(&c->w[W_ACCEPT], bucket(a, t, W_ACCEPT));
	v->rejected = win32_sum(&c->w[W_REJ], bucket(a, t, W_REJ));
	v->unknown = win32_sum(&c->w[W_UNKNOWN], bucket(a, t, W_UNKNOWN));
	v->rcpts = win32_sum(&c->w[W_RCPT], bucket(a, t, W_RCPT));
	v->conns = win32_sum(&c->w[W_CONN], bucket(a, t, W_CONN));
	v->conns -= MXW_MIN(v->conns, (unsigned)c->open);
	v->good = bits_get(c->good_bits, c->good_t0, t, a->wlen[W_ACCEPT]);
	view_rules(a, v, v->good > 0, c->flags, true);
	v->v[R_HARVEST] = bits_get(c->rcpt_bits, c->rcpt_t0, t, a->wlen[W_UNKNOWN]);
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
	v->ips = bits_get(c->ip_bits, c->ipb_t0, t, mwin);
	v->sess = v->ips;
	/* a class-wide flood needs several sources; one IP is rule 9 per IP */
	unsigned cips = bits_get(c->conn_ip_bits, c->cipb_t0, t, a->wlen[W_CONN]);
	if (cips < (unsigned)MXW_MAX(a->r->class_min_members, 2))
		v->thr[R_FLOOD] = 0;
	view_clamp(v);
}

/* Light members each refused once or twice, for different reasons: when
 * no rule is crossed on its own, the class's refusals of any kind count
 * together for rule 8. */
static bool cls_view_together(struct view *v)
{
	unsigned all = v->v[R_POLICY] + v->unknown + v->v[R_RELAY];
	if (all <= v->v[R_POLICY])
		return false;
	v->v[R_POLICY] = all;
	return true;
}

/* The share of RCPTs refused as unknown reaches harvest_ratio over at
 * least harvest_min_attempts. */
static bool harvest_ratio_holds(const struct aggregator *a, const struct view *v)
{
	const struct rules_conf *r = a->r;
	double min_att = MXW_MAX(1.0, (double)r->harvest_min_attempts * v->mult);
	return r->harvest_ratio > 0 && (double)v->rcpts >= min_att &&
	       (double)v->unknown >= r->harvest_ratio * (double)v->rcpts;
}

/* Whether rule i of view v rests on independent evidence: on an IP,
 * abuse signals in min_sessions connections (a flood is many connections
 * by itself; relay probing, a harvest and AUTH guessing at twice their
 * threshold are clear attacks in one); on a class, class_min_members
 * members that misbehaved each (one member's events never block its
 * neighbours). */
static bool view_independent(const struct aggregator *a, const struct view *v, int i, bool cls, double rt)
{
	const struct rules_conf *r = a->r;
	if (i == R_FLOOD || i == R_CLASS || i == R_WIDEN || i == R_RETURNED)
		return true;
	if (cls)
		return v->ips >= (unsigned)MXW_MAX(r->class_min_members, 2);
	if (v->sess >= (unsigned)MXW_MAX(r->min_sessions, 1))
		return true;
	/* a dictionary attack: the distinct threshold, and (nearly) every
	 * RCPT of the visit refused as unknown */
	if (i == R_HARVEST && rt >= 1.0 && harvest_ratio_holds(a, v))
		return true;
	return (i == R_HARVEST || i == R_RELAY || i == R_AUTH) && rt >= 2.0;
}

/* The rule crossed with the highest score, or -1. Auth also fires on
 * distinct user names (only on them when per_user), harvest on the share
 * of RCPTs refused as unknown. */
static int view_pick(const struct aggregator *a, const struct view *v, bool cls, double *ratio)
{
	const struct rules_conf *r = a->r;
	int best = -1;
	double br = 0;
	for (int i = 0; i < R__COUNT; i++) {
		if (v->thr[i] <= 0)
			continue;
		double rt = (double)v->v[i] / v->thr[i];
		if (i == R_AUTH && r->auth_users > 0) {
			/* thresholds of user names rise with success, not with rDNS */
			double succ = v->per_user && r->success_factor > 0 ? r->success_factor : 1;
			double tu = MXW_MAX(2.0, (double)r->auth_users * succ);
			double ru = v->auth >= 2 ? (double)v->users / tu : 0;
			rt = v->per_user ? ru : MXW_MAX(rt, ru);
		}
		if (i == R_HARVEST && rt < 1.0 && harvest_ratio_holds(a, v))
			rt = 1.0;
		/* a sender that delivers mail: a harvest is nearly every RCPT
		 * unknown (a backup MX or a forwarder relays spam to made-up
		 * addresses beside wanted mail), a policy verdict more refusals
		 * than accepted recipients (a relay of mixed mail, not a spammer) */
		if (v->accepted && ((i == R_HARVEST && !harvest_ratio_holds(a, v)) ||
				    (i == R_POLICY && v->accepted >= v->v[R_POLICY])))
			continue;
		if (rt < 1.0 || !view_independent(a, v, i, cls, rt))
			continue;
		if (rt * rule_severity[i] > br * (best >= 0 ? rule_severity[best] : 1)) {
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

/* What the evidence of slot s shows most among the categories cats[]
 * (names for a reason: fixed words), NULL when none. */
static const char *ev_most(const struct evslot *s, const int *cats, const char *const *names, size_t n)
{
	const char *best = NULL;
	uint32_t bn = 0;
	for (size_t i = 0; s && i < n; i++)
		if (s->cats[cats[i]] > bn) {
			bn = s->cats[cats[i]];
			best = names[i];
		}
	return best;
}

/* "in 3 connections " (n >= 2), else nothing */
static void in_conns(char *out, size_t n, unsigned sess)
{
	if (sess >= 2)
		snprintf(out, n, " in %u connections", sess);
	else
		out[0] = '\0';
}

/* The protocol violations of the evidence in s, named: "2 pregreet, 1 lost
 * connection" (fixed words and counts of what was stored). */
static void proto_names(const struct evslot *s, char *out, size_t n)
{
	static const int cats[] = {CAT_PREGREET, CAT_PIPELINING, CAT_NON_SMTP, CAT_TOO_MANY_ERRORS,
				   CAT_NO_MAIL};
	static const char *const names[] = {"pregreet", "pipelining", "non-SMTP command", "too many errors",
					    "connected without MAIL"};
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; s && i < MXW_ARRAY_LEN(cats); i++)
		if (s->cats[cats[i]] && len < n) {
			int w = snprintf(out + len, n - len, "%s%u %s", len ? ", " : "", s->cats[cats[i]],
					 names[i]);
			if (w > 0)
				len = MXW_MIN(n - 1, len + (size_t)w);
		}
	if (s && s->kinds[EV_LOST] && len < n)
		snprintf(out + len, n - len, "%s%u lost connection", len ? ", " : "", s->kinds[EV_LOST]);
}

/* One sentence of numbers and fixed words: never log-derived text. The
 * counts are events (never weights), distinct counts never exceed their
 * totals, and what the MTA refused is named as such. */
static void reason_of(const struct aggregator *a, int rule, const struct view *v, bool cls, int64_t span,
		      const struct evslot *evs, char *out, size_t n)
{
	char d[32], mi[32], conns[48], what[128];
	fmt_dur(MXW_MIN(span, (int64_t)v->window[rule]), d, sizeof d);
	duration_format(a->r->backoff_min_interval, mi, sizeof mi);
	in_conns(conns, sizeof conns, cls ? 0 : v->sess);
	char pre[64] = "";
	if (cls && rule != R_CLASS && rule != R_WIDEN)
		snprintf(pre, sizeof pre, "%u addresses of this class ", MXW_MAX(v->ips, 2u));
	int w = 0;
	unsigned val = v->v[rule];
	switch (rule) {
	case R_RETRY:
		w = snprintf(
		    out, n,
		    "%sretried %u time%s after %d (the same sender and recipient again, %u pair%s, in "
		    "connections that delivered nothing) in %s",
		    pre, val, val == 1 ? "" : "s", v->code > 0 ? v->code : 550, MXW_MAX(v->pairs, 1u),
		    v->pairs > 1 ? "s" : "", d);
		break;
	case R_HARVEST:
		/* crossed by the share of unknown RCPTs: the distinct count is an
		 * estimate over the last window only, and says less than the share */
		if ((double)val < v->thr[rule])
			w = snprintf(
			    out, n, "%stried unknown recipients (%u of %u RCPTs rejected as unknown)%s in %s",
			    pre, v->unknown, v->rcpts, conns, d);
		else
			w = snprintf(
			    out, n,
			    "%stried %u unknown recipient%s (%u of %u RCPTs rejected as unknown)%s in %s",
			    pre, val, val == 1 ? "" : "s", v->unknown, v->rcpts, conns, d);
		break;
	case R_BACKOFF:
		w = snprintf(out, n,
			     "%scame back %u times sooner than %s after a 4xx for the same message in %s",
			     pre, val, mi, d);
		break;
	case R_RELAY:
		w = snprintf(out, n, "%stried to relay %u time%s%s in %s", pre, val, val == 1 ? "" : "s",
			     conns, d);
		break;
	case R_AUTH:
		if (v->per_user)
			w = snprintf(
			    out, n,
			    "%sfailed AUTH with %u user names (%u failures)%s in %s, although it had "
			    "authenticated or delivered mail before",
			    pre, v->users, v->auth, conns, d);
		else
			w = snprintf(out, n, "%sfailed AUTH %u time%s with %u user name%s%s in %s", pre,
				     v->auth, v->auth == 1 ? "" : "s", MXW_MAX(v->users, 1u),
				     v->users > 1 ? "s" : "", conns, d);
		break;
	case R_PROTOCOL:
		proto_names(evs, what, sizeof what);
		if (evs && evs->kinds[EV_LOST] && !evs->kinds[EV_PROTOCOL])
			w = snprintf(out, n,
				     "%shung up %u time%s before sending mail (lost connection)%s in %s", pre,
				     val, val == 1 ? "" : "s", conns, d);
		else if (what[0])
			w = snprintf(out, n, "%sbroke the SMTP protocol %u time%s (%s)%s in %s", pre, val,
				     val == 1 ? "" : "s", what, conns, d);
		else
			w = snprintf(out, n, "%sbroke the SMTP protocol %u time%s%s in %s", pre, val,
				     val == 1 ? "" : "s", conns, d);
		break;
	case R_POLICY: {
		static const int cats[] = {CAT_DNSBL,	      CAT_CLIENT_POLICY,	 CAT_HELO,
					   CAT_SENDER_POLICY, CAT_RECIPIENT_POLICY,	 CAT_SIZE,
					   CAT_NO_RDNS,	      CAT_UNKNOWN_SENDER_DOMAIN, CAT_CONTENT,
					   CAT_OTHER};
		static const char *const names[] = {
		    "a DNSBL",		"a client block", "HELO checks",	"sender checks",
		    "recipient checks", "size limits",	  "reverse DNS checks", "sender domain checks",
		    "content checks",	"other checks"};
		const char *most = ev_most(evs, cats, names, MXW_ARRAY_LEN(cats));
		w = snprintf(
		    out, n,
		    "%swas refused %u time%s by the MTA's own policy%s%s%s and kept coming back%s in %s", pre,
		    val, val == 1 ? "" : "s", most ? " (mostly " : "", most ? most : "", most ? ")" : "",
		    conns, d);
		break;
	}
	case R_FLOOD:
		if (v->limited)
			w = snprintf(
			    out, n,
			    "%shit the MTA's connection rate limit (connections and limit warnings count %u, "
			    "each warning as %lld) in %s",
			    pre, val, (long long)a->r->flood_limit_weight, d);
		else
			w = snprintf(out, n, "%sopened %u connections in %s", pre, val, d);
		break;
	case R_CLASS:
		w = snprintf(out, n, "%u addresses of this class were blocked on their own in %s", v->flagged,
			     d);
		break;
	case R_RETURNED:
		w = snprintf(out, n,
			     "came back %u times while blocked (connections refused by our own block) in %s",
			     val, d);
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

/* The response to a decision by rule with score, on a prefix with past
 * earlier decisions: the score's, but a first offence that is not a clear
 * attack gets reject at most (its reply, with the reason and the lookup
 * URL, reaches the sender's postmaster in the bounce; a drop only shows
 * as timeouts in the sending MTA's queue), and a repeat offender that
 * would be refused is dropped. */
static enum response response_for(const struct aggregator *a, bool attack, double score, unsigned past)
{
	enum response r = response_of(a->r, score);
	if (past && r >= RESP_REJECT)
		return RESP_DROP;
	return r == RESP_DROP && !attack ? RESP_REJECT : r;
}

/* A clear attack (rule_is_attack), but one user name failing AUTH again
 * and again is a stale password more often than a guess. */
static bool view_attack(const struct view *v, int rule, double ratio)
{
	return rule_is_attack(rule) && !(rule == R_AUTH && v->users < 2 && ratio < 2);
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
	if (prefix_list_overlaps(&a->allow_manual, p)) {
		*why = "allow list (an allow made by hand)";
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

/* The jitter's seed of the decision on p made at since: deterministic. */
static uint64_t decision_seed(int64_t since, const struct prefix *p)
{
	uint64_t seed = (uint64_t)since * 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < 16; i++)
		seed = (seed ^ p->addr.a[i]) * 1099511628211ULL;
	return seed ^ p->len;
}

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
	struct decision d;
	memset(&d, 0, sizeof d);
	d.prefix = *p;
	d.scope = scope;
	str_copy(d.rule, sizeof d.rule, rule_names[rule], strlen(rule_names[rule]));
	double sev = rule_severity[rule];
	d.score = round(sev * ratio * 100.0) / 100.0;
	struct countrec *off = agg_offense(a, p, true);
	bool attack = view_attack(v, rule, ratio);
	d.response = response_for(a, attack, d.score, off->n);
	struct active *cur = active_find(a, p);
	if (cur) {
		/* in force already: upgraded when the response rises, never lowered;
		 * this decision is one offence already */
		d.response = response_for(a, attack, d.score, off->n > 1 ? off->n - 1 : 0);
		if (cur->d.manual || a->c->rules.dry_run || d.response <= cur->d.response)
			return false;
		if (aggregator_blockable(a, p, &why) < 0) /* the allow list changed since */
			return false;
		reason_of(a, rule, v, scope == SCOPE_CLASS, first_bad ? ts - first_bad : v->window[rule], evs,
			  d.reason, sizeof d.reason);
		if (rule != R_WIDEN && rule != R_RETURNED)
			agg_session_reason(a, evs, d.reason, sizeof d.reason);
		struct decision up = cur->d;
		enum response from = up.response;
		up.response = d.response;
		up.score = d.score;
		memcpy(up.rule, d.rule, sizeof up.rule);
		memcpy(up.reason, d.reason, sizeof up.reason);
		/* the decision's own duration counted again from now: that of the
		 * offence it was (an earlier upgrade's extension is not counted
		 * again, so upgrades never compound) */
		int64_t again = ts + aggregator_duration(a->r, off->n > 1 ? off->n - 1 : 0,
							 decision_seed(cur->d.since, p));
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
	if (aggregator_blockable(a, p, &why) < 0) {
		a->suppressed++;
		return false;
	}
	reason_of(a, rule, v, scope == SCOPE_CLASS, first_bad ? ts - first_bad : v->window[rule], evs,
		  d.reason, sizeof d.reason);
	if (rule != R_WIDEN && rule != R_RETURNED)
		agg_session_reason(a, evs, d.reason, sizeof d.reason);
	unsigned n = off->n;
	if (a->db) { /* decisions stored before a restart or by hand count too */
		int64_t past = db_decisions_count(a->db, p, ts - MXW_MAX(a->c->retention_decisions, 86400));
		/* a replay: this decision and later ones are stored already */
		if (a->replaying && past > 0)
			past -= MXW_MAX(db_decisions_count(a->db, p, ts), 0);
		if (past > (int64_t)n)
			n = (unsigned)past;
	}
	d.response = response_for(a, attack, d.score, n);
	uint64_t seed = decision_seed(ts, p);
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
		if (i != R_WIDEN && (i != R_CLASS || scope == SCOPE_CLASS) &&
		    (i != R_RETURNED || scope == SCOPE_IP))
			jw_int(w, rule_names[i], v->v[i]);
	jw_int(w, "accepted", v->accepted);
	jw_int(w, "rejected_5xx", v->rejected);
	jw_int(w, "unknown_recipients", v->unknown);
	jw_int(w, "rcpts", v->rcpts);
	jw_int(w, "auth_failures", v->auth);
	jw_int(w, "auth_users", v->users);
	jw_int(w, "connections", v->conns);
	if (scope == SCOPE_CLASS) {
		jw_int(w, "addresses", v->ips);
		jw_int(w, "good_members", v->good);
	} else {
		jw_int(w, "bad_connections", v->sess);
	}
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

static inline __attribute__((always_inline)) struct iprec *
ip_get(struct aggregator *a, const struct ipaddr *ip, uint64_t hv, uint32_t t)
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

/* Seed a new class record with the counts of its first member q, as if
 * its events had come while the class was tracked: capped shares, nothing
 * of a member blocked on its own but its mail and RCPTs. */
static AGG_COLD void cls_seed(struct aggregator *a, struct clsrec *c, const struct iprec *q, uint32_t t)
{
	bool decided = q->flags & F_DECIDED;
	for (int w = 0; w < W__COUNT; w++) {
		const struct win8 *s = &q->w[w];
		uint32_t cap = a->cls_cap[w];
		if (!(s->b[0] | s->b[1] | s->b[2] | s->b[3]) || !cap)
			continue;
		if (decided && w != W_ACCEPT && w != W_RCPT)
			continue;
		uint32_t cur = bucket(a, t, w);
		uint16_t back = (uint16_t)((uint16_t)cur - s->idx);
		if (back >= WIN_SUB)
			continue; /* all of it is older than the window */
		if (cap != UINT32_MAX) {
			unsigned sum = win8_sum(s, cur);
			if (sum)
				win32_add(&c->w[w], cur, MXW_MIN(sum, cap));
			continue;
		}
		c->w[w].idx = cur - back;
		for (int k = 0; k < WIN_SUB; k++)
			c->w[w].b[k] = s->b[k];
	}
	if (!decided) {
		unsigned rcap = (unsigned)MXW_MAX(1, (a->r->harvest_distinct + 1) / 2);
		unsigned ucap = (unsigned)MXW_MAX(1, (a->r->auth_users + 1) / 2);
		if (bits_get(q->rcpt_bits, q->rcpt_t0, t, a->wlen[W_UNKNOWN]) <= rcap) {
			c->rcpt_bits = q->rcpt_bits;
			c->rcpt_t0 = q->rcpt_t0;
		}
		if (bits_get(q->user_bits, q->user_t0, t, a->wlen[W_AUTH]) <= ucap) {
			c->user_bits = q->user_bits;
			c->user_t0 = q->user_t0;
		}
		c->first_bad = q->first_bad;
	}
	c->flags |= (uint8_t)(q->flags & (F_NO_MX | F_LIMITED | F_AUTH_OK));
	c->last_code = q->last_code;
	uint64_t h = ipaddr_hash(&q->ip);
	if (q->first_bad && !decided)
		bits_add(&c->ip_bits, &c->ipb_t0, t, (uint32_t)MXW_MAX(a->r->idle_evict, 3600), h);
	if (!decided && win8_sum(&q->w[W_CONN], bucket(a, t, W_CONN)))
		bits_add(&c->conn_ip_bits, &c->cipb_t0, t, a->wlen[W_CONN], h);
	if (!q->first_bad && win8_sum(&q->w[W_ACCEPT], bucket(a, t, W_ACCEPT)))
		bits_add(&c->good_bits, &c->good_t0, t, a->wlen[W_ACCEPT], h);
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
	unsigned wmask; /* bit i: w[i] was set (DSET); the others hold garbage */
	unsigned flags; /* F_NO_RDNS, F_NO_MX, F_LIMITED, F_AUTH_OK */
	union {		/* what makes an event not quiet, tested in one word */
		struct {
			bool bad;	/* an abuse signal: record evidence, evaluate rules */
			bool retry;	/* a 5xx with a sender/recipient pair */
			bool rcpt_bit;	/* an unknown recipient to count distinct */
			bool user_bit;	/* an AUTH user to count distinct */
			bool temp;	/* a 4xx: starts a back-off period */
			uint8_t conn;	/* CONN_OPEN: a new connection; CONN_END: postscreen ended one */
			bool maybe_own; /* a refusal our own block may have caused (our text, a client block)
					 */
			bool delivered; /* a disconnect whose counts correct the connection's accepted mail */
		};
		uint64_t any;
	};
	bool backoff; /* the only signal is an early return (not a class member's fault) */
	unsigned w[W__COUNT];
};
_Static_assert(offsetof(struct delta, backoff) == 16, "delta: the flags in one word");

/* Set window i's increment in a delta, and its bit in wmask; read it (0
 * when not set). */
enum { CONN_OPEN = 1, CONN_END = 2 };

#define DSET(d, i, v) ((d)->w[i] = (v), (d)->wmask |= 1u << (i))
#define DGET(d, i)    ((d)->wmask & (1u << (i)) ? (d)->w[i] : 0u)

/* A refusal about the recipient's address or mailbox (X.1.Y: moved, bad
 * mailbox; X.2.Y: full, disabled, too big for it) says nothing of the
 * sender: only its repetition (a retry) does. */
static bool mailbox_state(const struct event *ev)
{
	return ev->dsn.n >= 3 && ev->dsn.p[1] == '.' && (ev->dsn.p[2] == '1' || ev->dsn.p[2] == '2');
}

/* Our own blocks name us in the reply (emitters/text.c) or in the DNSBL
 * TXT record (rbldnsd): "mxwarden". */
static bool names_us(struct span text)
{
	static const char us[] = "mxwarden";
	return text.n >= sizeof us - 1 && memmem(text.p, text.n, us, sizeof us - 1) != NULL;
}

static void classify(const struct aggregator *a, const struct event *ev, enum prog_role role, struct delta *d)
{
	const struct rules_conf *r = a->r;
	memset(d, 0, offsetof(struct delta, w));
	/* Postfix smtpd writes every client as name[addr], "unknown" when the
	 * name did not resolve: any of its lines tells, the stored evidence
	 * lines too (so a restart keeps the weight) */
	if (ev->mta == MTA_POSTFIX && role == ROLE_SMTPD && span_empty(ev->rdns) && ev->kind != EV_DISCONNECT)
		d->flags |= F_NO_RDNS;
	switch (ev->kind) {
	case EV_CONNECT:
		if (ev->stage != ST_CONNECT)
			return; /* postscreen PASS NEW/OLD and the like: same connection */
		d->conn = CONN_OPEN;
		return;
	case EV_ACCEPT: {
		/* success weighs by recipients where the MTA logs them */
		unsigned k = ev->nrcpt > 1 ? ev->nrcpt : 1;
		DSET(d, W_ACCEPT, k);
		DSET(d, W_RCPT, k);
		if (ev->auth_ok)
			d->flags |= F_AUTH_OK;
		return;
	}
	case EV_DISCONNECT:
		if (role ==
		    ROLE_POSTSCREEN) { /* it ended the connection itself (it logs a hand-over as PASS) */
			d->conn = CONN_END;
			return;
		}
		if (!ev->stats.present)
			return;
		/* MAIL before HELO leaves no reject line in Postfix, only the stats */
		if (ev->stats.ehlo_total == 0 && ev->stats.mail_total > 0) {
			DSET(d, W_PROTO, 1);
			d->bad = true;
		}
		/* Postfix counted a message at its "client=" line (the first
		 * accepted RCPT): the counts tell how many recipients it had and
		 * whether its DATA came at all (delivered(), below) */
		if (ev->stats.rcpt_ok > 1 || (ev->stats.rcpt_ok && !ev->stats.data_ok))
			d->delivered = true;
		return;
	case EV_NOTE:
		/* a signal, never a refusal: no rDNS and a sender that failed
		 * verification weigh; a reject_warning (what the MTA would have
		 * refused) is observed. postscreen's "DNSBL rank N" is its verdict
		 * on the connection (the client failed the DNSBL test, whether it
		 * then hangs up or is refused): one policy refusal, and the
		 * "blocked using" refusal that may follow counts nothing more */
		if (ev->cat == CAT_NO_RDNS) {
			d->flags |= F_NO_RDNS;
		} else if (ev->cat == CAT_UNKNOWN_SENDER_DOMAIN) {
			d->flags |= F_NO_MX;
		} else if (ev->cat == CAT_DNSBL && role == ROLE_POSTSCREEN) {
			DSET(d, W_POLICY, 1);
			d->bad = true;
		}
		return;
	case EV_AUTH_FAILURE:
		DSET(d, W_AUTH, 1);
		d->user_bit = !span_empty(ev->user);
		d->bad = true;
		return;
	case EV_LOST:
		/* a scanner hangs up before MAIL; a legit client may lose DATA */
		if (ev->stage == ST_CONNECT || ev->stage == ST_HELO || ev->stage == ST_AUTH ||
		    ev->stage == ST_OTHER) {
			DSET(d, W_PROTO, 1);
			d->bad = true;
		}
		return;
	case EV_PROTOCOL:
	case EV_REJECT: break;
	default: return;
	}
	bool temp = is_4xx(ev);
	if (temp)
		d->temp = true;
	if (is_5xx(ev))
		DSET(d, W_REJ, 1);
	/* our text in the reply (a Postfix table, an rbldnsd TXT record), or
	 * postscreen refusing by its access list (DENYLISTED carries no text) */
	if (ev->kind == EV_REJECT &&
	    ((ev->cat == CAT_CLIENT_POLICY && role == ROLE_POSTSCREEN) ||
	     ((ev->cat == CAT_CLIENT_POLICY || ev->cat == CAT_DNSBL || ev->cat == CAT_OTHER) &&
	      names_us(ev->text))))
		d->maybe_own = true;
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
		if (ev->kind == EV_REJECT) {
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
		if (role == ROLE_POSTSCREEN)
			break; /* its "DNSBL rank" line counted already */
			       /* fall through */
	case CAT_CLIENT_POLICY:
	case CAT_HELO:
	case CAT_SENDER_POLICY:
	case CAT_RECIPIENT_POLICY:
	case CAT_SIZE:
		/* a 4xx here (try later, mailbox full) invites a retry */
		if (!temp && !mailbox_state(ev)) {
			DSET(d, W_POLICY, 1);
			d->bad = true;
		}
		break;
	case CAT_PIPELINING:
	case CAT_PREGREET:
	case CAT_NON_SMTP:
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
		} else if (!temp && !mailbox_state(ev)) {
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

uint8_t agg_decided_bits(uint8_t flags, const struct decision *d)
{
	unsigned r = d->manual ? 3u : MXW_MIN((unsigned)d->response, 3u);
	return (uint8_t)((flags & ~F_RESP_MASK) | F_DECIDED | (r << F_RESP_SHIFT));
}

/* Mark a record decided, with the response of the decision in force on p. */
static uint8_t decided_flags(struct aggregator *a, uint8_t flags, const struct prefix *p)
{
	struct active *ac = active_find(a, p);
	return ac ? agg_decided_bits(flags, &ac->d) : flags;
}

/* The rules that count refusals (retry, harvest, policy) wait for the end
 * of a live connection: only then is it known whether it delivered mail
 * to other recipients (a mailing list's post, an old distribution list)
 * and how many recipients it had accepted. */
static void later_mask(struct view *v)
{
	v->thr[R_RETRY] = v->thr[R_HARVEST] = v->thr[R_POLICY] = 0;
}

static void check_ip(struct aggregator *a, struct iprec *p, struct clsrec *c, uint32_t t, bool later)
{
	if (p == &a->fold_rec)
		return; /* an address folded into its class: the class is judged */
	/* a decided record is judged too: its decision may be upgraded, unless
	 * it drops already (or is manual) and is counted in its class */
	if ((p->flags & (F_DECIDED | F_FLAGGED | F_RESP_MASK)) == (F_DECIDED | F_FLAGGED | F_RESP_MASK))
		return;
	struct view v;
	ip_view(a, p, t, &v);
	/* IPv6 hosts have addresses of their own: the office is its /64 */
	if (p->ip.family == IPADDR_V6 && c != &a->scratch && (c->flags & F_AUTH_OK))
		v.per_user = true;
	if (later)
		later_mask(&v);
	double ratio;
	int rule = view_pick(a, &v, false, &ratio);
	if (rule < 0 || no_upgrade(a, p->flags, rule, ratio))
		return;
	struct prefix px;
	host_prefix(&px, &p->ip);
	struct evslot *s = ev_get(a, &p->ev, &px, false);
	size_t np = a->npend;
	/* the decision in force is looked up again only when one was made or
	 * upgraded (or silently, in a replay) */
	if (decide(a, &px, SCOPE_IP, rule, ratio, &v, t, p->first_bad, s) || a->npend != np || a->replaying)
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

static void check_class(struct aggregator *a, struct clsrec *c, uint32_t t, bool later)
{
	if (c == &a->scratch)
		return; /* a lone member's class is never judged */
	if ((c->flags & (F_DECIDED | F_RESP_MASK)) == (F_DECIDED | F_RESP_MASK))
		return; /* dropped already (or manual): nothing to upgrade */
	struct view v;
	cls_view(a, c, t, &v);
	if (later)
		later_mask(&v);
	double ratio;
	int rule = view_pick(a, &v, true, &ratio);
	if (rule < 0 && cls_view_together(&v))
		rule = view_pick(a, &v, true, &ratio);
	if (rule < 0 || no_upgrade(a, c->flags, rule, ratio))
		return;
	struct evslot *s = ev_get(a, &c->ev, &c->p, false);
	size_t np = a->npend;
	bool made = decide(a, &c->p, SCOPE_CLASS, rule, ratio, &v, t, c->first_bad, s);
	if (made || a->npend != np || a->replaying)
		c->flags = decided_flags(a, c->flags, &c->p);
	if (made)
		widen(a, c, t);
}

/* The hot path of aggregator_event() stays small (the instruction cache
 * holds it and the parser's): what only some events do is out of line. */

/* What member p may add to its class's window w when it adds k: the class
 * rules must rest on several members, so one member's share is capped. */
static inline unsigned class_share(struct aggregator *a, const struct iprec *p, int w, unsigned k, uint32_t t)
{
	uint32_t cap = a->cls_cap[w];
	if (cap == UINT32_MAX || !k)
		return k;
	unsigned before = cap ? win8_sum(&p->w[w], bucket(a, t, w)) : cap;
	return before >= cap ? 0 : MXW_MIN(k, cap - before);
}

/* Distinct unknown recipients and user names, and repeated refusals of a
 * (sender, recipient) pair. A repeat in a live connection is a retry only
 * if the connection delivers nothing (session.c judges it at its end); a
 * line of no known connection counts at once. */
static __attribute__((noinline)) void count_distinct(struct aggregator *a, const struct event *ev,
						     const struct delta *d, struct iprec *p, struct clsrec *c,
						     bool feed, uint32_t t)
{
	if (d->rcpt_bit) {
		uint64_t h = span_hash(ev->to, 1);
		unsigned cap = (unsigned)MXW_MAX(1, (a->r->harvest_distinct + 1) / 2);
		if (feed && bits_get(p->rcpt_bits, p->rcpt_t0, t, a->wlen[W_UNKNOWN]) < cap)
			bits_add(&c->rcpt_bits, &c->rcpt_t0, t, a->wlen[W_UNKNOWN], h);
		bits_add(&p->rcpt_bits, &p->rcpt_t0, t, a->wlen[W_UNKNOWN], h);
	}
	if (d->user_bit) {
		uint64_t h = span_hash(ev->user, 2);
		unsigned cap = (unsigned)MXW_MAX(1, (a->r->auth_users + 1) / 2);
		if (feed && bits_get(p->user_bits, p->user_t0, t, a->wlen[W_AUTH]) < cap)
			bits_add(&c->user_bits, &c->user_t0, t, a->wlen[W_AUTH], h);
		bits_add(&p->user_bits, &p->user_t0, t, a->wlen[W_AUTH], h);
	}
	if (d->retry) {
		uint32_t h = (uint32_t)(span_hash(ev->from, 3) ^ span_hash(ev->to, 4));
		unsigned before = retry_get(&p->r, t, a->wlen[W_RETRY], NULL);
		unsigned now = retry_add(&p->r, t, a->wlen[W_RETRY], h, NULL);
		if (now > before) {
			struct sesssum *s = a->cur;
			if (s && s != &a->ended)
				s->retry_pending = (uint16_t)MXW_MIN(s->retry_pending + 1u, 65535u);
			else if (!s || !s->accepted)
				win8_add(&p->w[W_RETRY], bucket(a, t, W_RETRY), 1);
		}
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

static AGG_COLD void lost_is_flaky(struct delta *d)
{
	d->w[W_PROTO] = 0;
	d->bad = false;
}

/* A Postfix connection ended: its messages were counted one each at their
 * "client=" lines; the disconnect counts say what it delivered. When every
 * message came to DATA, its accepted recipients count (success weighs by
 * recipients); when some never did (a client that hangs up after RCPT),
 * only those delivered count. (Its class counted it a good member at its
 * "client=" line already: the lenient side.) */
static AGG_COLD void delivered(struct aggregator *a, const struct event *ev, struct delta *d, struct iprec *p,
			       struct clsrec *c, bool feed, uint32_t t)
{
	unsigned msgs = a->cur ? a->cur->accepted : 0;
	unsigned data = ev->stats.data_ok, rcpts = ev->stats.rcpt_ok;
	unsigned want = !data ? 0 : data >= msgs ? MXW_MAX(rcpts, msgs) : data;
	if (want > msgs) {
		DSET(d, W_ACCEPT, want - msgs);
		DSET(d, W_RCPT, want - msgs);
	}
	for (unsigned k = want; k < msgs; k++) {
		win8_sub(&p->w[W_ACCEPT], bucket(a, t, W_ACCEPT));
		if (feed)
			win32_sub(&c->w[W_ACCEPT], bucket(a, t, W_ACCEPT));
	}
}

#define SESS_GAP  60  /* seconds: lines of no known connection this far apart are two */
#define LATER_MAX 100 /* refusals after which a live connection is judged at once */

/* Whether ev is the first of its connection to count as what (1: an abuse
 * signal, 2: refused by our own block). A connection is the MTA's process
 * (session.c); without one (postscreen, logs without process ids), a
 * connect of the client since the last one counted, or a pause. */
static bool new_connection(struct aggregator *a, struct iprec *p, unsigned what, uint32_t t)
{
	struct sesssum *s = a->cur;
	if (s) {
		if (s->counted & what)
			return false;
		s->counted |= (uint8_t)what;
		p->last_bad = t;
		return true;
	}
	bool fresh =
	    !p->last_bad || p->last_ps > p->last_bad || t < p->last_bad || t - p->last_bad >= SESS_GAP;
	if (fresh)
		p->last_bad = t;
	return fresh;
}

/* A refusal by a block of ours (the record or its class is decided, with a
 * response that refuses, and the refusal names us or is a client block):
 * evidence against the sender that it came back while blocked, never
 * against its class, nor counted as anything else. */
static AGG_COLD void own_refusal(struct aggregator *a, const struct event *ev, struct iprec *p,
				 struct clsrec *c, uint32_t t)
{
	if (p == &a->fold_rec)
		return; /* its class is blocked: nothing of its own to count */
	struct prefix px;
	host_prefix(&px, &ev->ip);
	ev_record(a, ev_get(a, &p->ev, &px, true), ev);
	if (new_connection(a, p, 2, t))
		win8_add(&p->w[W_OWN], bucket(a, t, W_OWN), 1);
	check_ip(a, p, c, t, false);
}

static inline bool refuses(uint8_t flags)
{
	return (flags & F_DECIDED) && ((flags & F_RESP_MASK) >> F_RESP_SHIFT) >= RESP_DEFER;
}

/* A back-off violation: a 4xx for the same (sender, recipient) as the
 * client's last 4xx, sooner than backoff_min_interval, in another
 * connection. Many new messages greylisted at once are not. */
static bool backoff_violation(struct aggregator *a, const struct event *ev, struct iprec *p, uint32_t t)
{
	uint32_t h = (uint32_t)(span_hash(ev->from, 5) ^ span_hash(ev->to, 6));
	bool again = p->last_temp && p->temp_pair == h && t >= p->last_temp &&
		     t - p->last_temp < a->r->backoff_min_interval;
	bool other = a->cur ? !(a->cur->counted & 4) : t > p->last_temp;
	if (a->cur)
		a->cur->counted |= 4;
	p->temp_pair = h;
	return again && other;
}

/* Whether any of the rules judged at once (relay, AUTH, protocol,
 * back-off) holds a count for p. */
static inline bool now_counts(const struct iprec *p)
{
	uint32_t x = 0, y;
	static const int w[] = {W_RELAY, W_AUTH, W_PROTO, W_BACKOFF};
	for (size_t i = 0; i < MXW_ARRAY_LEN(w); i++) {
		memcpy(&y, p->w[w[i]].b, sizeof y);
		x |= y;
	}
	return x != 0;
}

/* An abuse signal: evidence for the IP (and its class once a second member
 * misbehaves), and both judged. */
static __attribute__((noinline)) void judge_bad(struct aggregator *a, const struct event *ev,
						const struct delta *d, struct iprec *p, struct clsrec *c,
						bool feed, uint32_t t)
{
	if (!p->first_bad)
		p->first_bad = t;
	if (feed && !c->first_bad)
		c->first_bad = t;
	if (!d->backoff && feed)
		bits_add(&c->ip_bits, &c->ipb_t0, t, (uint32_t)MXW_MAX(a->r->idle_evict, 3600),
			 ipaddr_hash(&ev->ip));
	bool fresh = new_connection(a, p, 1, t);
	if (fresh)
		win8_add(&p->w[W_SESS], bucket(a, t, W_SESS), 1);
	struct prefix px;
	host_prefix(&px, &ev->ip);
	if (p != &a->fold_rec)
		ev_record(a, ev_get(a, &p->ev, &px, true), ev);
	/* a class keeps lines of its own once a second member misbehaves (a
	 * lone member's lines are in its own slot): most classes have one */
	if (feed && (c->ev || bits_estimate(c->ip_bits) >= 2))
		ev_record(a, ev_get(a, &c->ev, &c->p, true), ev);
	/* the rules that count refusals wait for the end of a live connection,
	 * unless it was refused more than a legitimate sender's connection
	 * can be (Postfix sends at most 50 RCPTs a connection and drops a
	 * client after 20 errors) */
	bool later = a->cur && a->cur != &a->ended && a->cur->rejected + a->cur->other_rej < LATER_MAX;
	if (later) {
		a->cur->judge = 1;
		/* another refusal of the same connection: only the rules that
		 * wait for its end count it */
		const unsigned now_rules =
		    1u << W_RELAY | 1u << W_AUTH | 1u << W_PROTO | 1u << W_CONN | 1u << W_BACKOFF;
		/* (a new connection counts for them only if they counted
		 * something: their windows hold a count) */
		if (!(d->wmask & now_rules) && (!fresh || !now_counts(p)))
			return;
	}
	check_ip(a, p, c, t, later);
	if (feed)
		check_class(a, c, t, later);
}

/* A connection that delivered mail to valid recipients is not harvesting
 * (an old distribution list, a backup MX flushing its queue, a
 * forwarder): its unknown recipients are taken back from the windows
 * (and so from the distinct count, which never exceeds them). */
static AGG_COLD void unknown_delivered(struct aggregator *a, struct iprec *p, const struct sesssum *s,
				       uint32_t t)
{
	for (unsigned k = 0; k < s->unknown; k++)
		win8_sub(&p->w[W_UNKNOWN], bucket(a, t, W_UNKNOWN));
	struct prefix cp;
	ipaddr_class(&p->ip, &a->c->classes, &cp);
	struct clsrec *c = s->cls_unknown ? table_find(&a->classes, &cp) : NULL;
	for (unsigned k = 0; c && k < s->cls_unknown; k++)
		win32_sub(&c->w[W_UNKNOWN], bucket(a, t, W_UNKNOWN));
}

/* Judge the connections that ended with rules left to judge (session.c):
 * a repeated refusal is a retry only when the connection delivered
 * nothing; then every rule, with what it finally showed. */
static AGG_COLD void judge_later_run(struct aggregator *a)
{
	struct sesssum *saved = a->cur;
	for (size_t i = 0; i < a->njq; i++) {
		struct judge_later *j = &a->jq[i];
		struct iprec *p = table_find(&a->ips, &j->ip);
		if (!p) {
			/* an IPv6 address folded into its class: the class is judged */
			struct prefix cp;
			ipaddr_class(&j->ip, &a->c->classes, &cp);
			struct clsrec *c =
			    j->ip.family == IPADDR_V6 && j->s.judge ? table_find(&a->classes, &cp) : NULL;
			if (c && !stale(a, c->flags, c->last_seen, j->t)) {
				a->cur = &j->s;
				check_class(a, c, j->t, false);
			}
			continue;
		}
		/* a connection that made a mail transaction is no flood's:
		 * other rules judge what it did (a 4xx of ours it met is no
		 * fault of its own) */
		bool mail = j->s.rcpt || j->s.accepted;
		if (j->s.holds) {
			if (p->open)
				p->open--; /* the class's: below, once resolved */
			if (mail)
				win8_sub(&p->w[W_CONN], bucket(a, j->t, W_CONN));
		}
		if (j->s.retry_pending && !j->s.accepted)
			win8_add(&p->w[W_RETRY], bucket(a, j->t, W_RETRY), j->s.retry_pending);
		if (j->s.accepted && j->s.unknown)
			unknown_delivered(a, p, &j->s, j->t);
		bool judge = j->s.judge || (j->s.retry_pending && !j->s.accepted);
		if (!judge && !j->s.holds)
			continue;
		struct prefix cp;
		ipaddr_class(&j->ip, &a->c->classes, &cp);
		struct clsrec *c = cls_resolve(a, p, &cp, j->t);
		if (j->s.holds && c != &a->scratch) {
			if (c->open)
				c->open--;
			if (mail)
				win32_sub(&c->w[W_CONN], bucket(a, j->t, W_CONN));
		}
		if (!judge)
			continue;
		a->cur = &j->s;
		check_ip(a, p, c, j->t, false);
		check_class(a, c, j->t, false); /* the member may just have been flagged */
	}
	a->cur = saved;
	a->njq = 0;
	a->last_p = NULL;
}

void agg_seed_accepted(struct aggregator *a, const struct ipaddr *ip, uint32_t t, unsigned n)
{
	struct iprec *p = ip_get(a, ip, table_hash(&a->ips, ip), t);
	struct prefix cp;
	ipaddr_class(ip, &a->c->classes, &cp);
	struct clsrec *c = cls_resolve(a, p, &cp, t);
	if (t > p->last_seen)
		p->last_seen = t;
	win8_add(&p->w[W_ACCEPT], bucket(a, t, W_ACCEPT), n);
	win8_add(&p->w[W_RCPT], bucket(a, t, W_RCPT), n);
	if (c != &a->scratch && !(p->flags & F_DECIDED)) {
		win32_add(&c->w[W_ACCEPT], bucket(a, t, W_ACCEPT), n);
		win32_add(&c->w[W_RCPT], bucket(a, t, W_RCPT), n);
		if (!p->first_bad)
			bits_add(&c->good_bits, &c->good_t0, t, a->wlen[W_ACCEPT], ipaddr_hash(ip));
	}
	a->last_p = NULL;
}

static void agg_time(struct aggregator *a, uint32_t t);

/* The class record of IPv6 address ip when the address has no record of
 * its own and its class is crowded (FOLD_MEMBERS): the address is folded
 * into it. NULL otherwise (the address gets or has its own record). */
static struct clsrec *fold_class(struct aggregator *a, const struct ipaddr *ip, uint64_t hv,
				 const struct prefix *cp, uint32_t t)
{
	if (table_find_h(&a->ips, ip, hv))
		return NULL;
	struct clsrec *c = table_find(&a->classes, cp);
	if (!c || stale(a, c->flags, c->last_seen, t))
		return NULL;
	unsigned n = bits_get(c->member_bits, c->memb_t0, t, (uint32_t)MXW_MAX(a->r->idle_evict, 3600));
	return n >= FOLD_MEMBERS ? c : NULL;
}

static void event_body(struct aggregator *a, const struct event *ev)
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
	/* most lines change nothing (postscreen PASS, disconnects, notes):
	 * they leave after their session is noted, before touching the tables */
	bool quiet = !d.any && !d.flags && !(ev->kind == EV_REJECT && !span_empty(ev->queue_id));
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
		struct prefix cp;
		if (ev->has_ip && ev->cls.addr.family == ip->family && ev->cls.len)
			cp = ev->cls;
		else
			ipaddr_class(ip, &a->c->classes, &cp);
		c = ip->family == IPADDR_V6 ? fold_class(a, ip, ip_hv, &cp, t) : NULL;
		if (c) {
			p = &a->fold_rec;
			memset(p, 0, sizeof *p);
			p->ip = *ip;
			a->folded++;
			a->last_p = NULL; /* the next event zeroes it again */
		} else {
			p = ip_get(a, ip, ip_hv, t);
			bool fresh = !p->last_seen;
			c = cls_resolve(a, p, &cp, t);
			if (fresh && c != &a->scratch && ip->family == IPADDR_V6)
				bits_add(&c->member_bits, &c->memb_t0, t,
					 (uint32_t)MXW_MAX(a->r->idle_evict, 3600), ipaddr_hash(ip));
			a->last_ip = *ip;
			a->last_p = p;
			a->last_c = c;
			a->last_gen = a->ips.removals + a->classes.removals; /* ip_get may evict */
		}
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
	c->flags |= (uint8_t)(d.flags & (F_NO_MX | F_LIMITED | F_AUTH_OK));

	/* our own block refused it: the sender came back while blocked */
	if (d.maybe_own && (refuses(p->flags) || (!lone && refuses(c->flags)))) {
		own_refusal(a, ev, p, c, t);
		return;
	}
	/* the class hears of members that are not blocked on their own: a
	 * blocked member's refusals are its own business */
	bool feed = !lone && !(p->flags & F_DECIDED);
	/* a hang-up of a client that delivers mail or authenticates is a
	 * flaky link (a phone, an office NAT), not a scanner */
	if ((ev->kind == EV_LOST || ev->cat == CAT_NO_MAIL) && d.bad &&
	    ((p->flags & F_AUTH_OK) || win8_sum(&p->w[W_ACCEPT], bucket(a, t, W_ACCEPT)) ||
	     (ip->family == IPADDR_V6 && !lone && (c->flags & F_AUTH_OK)) ||
	     /* a client that failed AUTH and hung up (or left without MAIL):
	      * the AUTH rule judges it (a stale password does this at every
	      * poll) */
	     (a->cur && a->cur->auth_fail)))
		lost_is_flaky(&d);

	bool dup = false; /* the smtpd connect of a connection postscreen logged */
	if (d.conn == CONN_OPEN) {
		bool postscreen = role == ROLE_POSTSCREEN;
		/* one session logs a postscreen CONNECT and then an smtpd connect */
		dup = !postscreen && p->last_ps && t >= p->last_ps && t - p->last_ps <= 30;
		if (postscreen)
			p->last_ps = t;
		if (!dup) {
			DSET(&d, W_CONN, DGET(&d, W_CONN) + 1);
			if (feed)
				bits_add(&c->conn_ip_bits, &c->cipb_t0, t, a->wlen[W_CONN], ipaddr_hash(ip));
		}
	}
	if (d.temp) {
		if (backoff_violation(a, ev, p, t)) {
			DSET(&d, W_BACKOFF, 1);
			d.backoff = !d.bad;
			d.bad = true;
		}
		p->last_temp = t;
		agg_session_temp(p, ev);
	}
	if (d.delivered)
		delivered(a, ev, &d, p, c, feed, t);
	else if (ev->kind == EV_ACCEPT && feed && !p->first_bad &&
		 (__builtin_popcountll(c->good_bits) < 8 || t - c->good_t0 > a->wlen[W_ACCEPT] / 2))
		bits_add(&c->good_bits, &c->good_t0, t, a->wlen[W_ACCEPT],
			 ipaddr_hash(ip)); /* 8 tell enough */

	if (ev->kind == EV_REJECT && ev->mta == MTA_POSTFIX && !span_empty(ev->queue_id) &&
	    (ev->stage == ST_DATA || ev->stage == ST_END_OF_DATA)) {
		/* Postfix logs "QID: client=" (an accept) before cleanup rejects
		 * the content: that message was not accepted after all */
		win8_sub(&p->w[W_ACCEPT], bucket(a, t, W_ACCEPT));
		if (feed)
			win32_sub(&c->w[W_ACCEPT], bucket(a, t, W_ACCEPT));
	}
	for (unsigned m = d.wmask; m; m &= m - 1) { /* the windows classify() touched, in order */
		int w = __builtin_ctz(m);
		unsigned k = d.w[w];
		if (!k)
			continue;
		if (feed) {
			unsigned kc = class_share(a, p, w, k, t);
			if (kc) {
				win32_add(&c->w[w], bucket(a, t, w), kc);
				if (w == W_UNKNOWN && a->cur)
					a->cur->cls_unknown =
					    (uint16_t)MXW_MIN(a->cur->cls_unknown + kc, 65535u);
			}
		}
		win8_add(&p->w[w], bucket(a, t, w), k);
	}
	if (d.rcpt_bit || d.user_bit || d.retry)
		count_distinct(a, ev, &d, p, c, feed, t);
	if (d.conn && !d.bad) {
		/* a connection can only cross the flood rule; keep connect lines
		 * as evidence once a flood is plausible */
		unsigned n = win8_sum(&p->w[W_CONN], bucket(a, t, W_CONN));
		/* a lone member's class window holds this event's count only */
		unsigned cn =
		    lone ? MXW_MIN(DGET(&d, W_CONN), 65535u) : win32_sum(&c->w[W_CONN], bucket(a, t, W_CONN));
		/* A flood is judged on the connections that ended, when they
		 * end: a list server (VERP: one message a member) or an MTA that
		 * delivers each message in a process of its own opens tens of
		 * connections in a second, and each delivers before it ends (the
		 * success factor and busy() then spare it); a flood's
		 * connections end as fast, with nothing delivered. The open ones
		 * are counted (once a flood is plausible) where the log shows
		 * their end: Postfix's smtpd session (its process serves the
		 * connection), postscreen's DISCONNECT of one it did not hand
		 * over. (Exim's daemon logs the connect, a child the rest: a
		 * flood is judged at the connect there, as under Sendmail.) */
		bool live = a->cur && a->cur != &a->ended;
		bool waits = ev->mta == MTA_POSTFIX && (live || role == ROLE_POSTSCREEN);
		if (d.conn == CONN_END) {
			if (p->open)
				p->open--;
			if (feed && c->open)
				c->open--;
		} else if ((a->r->flood_ip_count > 0 && n * 4 >= (unsigned)a->r->flood_ip_count) ||
			   (a->r->flood_class_count > 0 && cn * 4 >= (unsigned)a->r->flood_class_count)) {
			flood_evidence(a, ev, p, c, lone, n, cn, t);
			if (waits && !dup) { /* open: never more than the window holds */
				p->open =
				    (uint8_t)MXW_MIN(MXW_MIN((unsigned)p->open, n ? n - 1 : 0) + 1u, 255u);
				if (feed)
					c->open = (uint16_t)MXW_MIN(
					    MXW_MIN((unsigned)c->open, cn ? cn - 1 : 0) + 1u, 65535u);
			}
			/* the smtpd session of a connection postscreen counted ends it */
			if (waits && live && (!dup || p->open))
				a->cur->holds = 1;
		}
		/* a busy sender's connection cannot flood */
		bool ip_flood = a->r->flood_enabled && (double)n >= a->flood_ip_min &&
				!busy(p->flags, win8_sum(&p->w[W_ACCEPT], bucket(a, t, W_ACCEPT)), n);
		bool cls_flood = a->r->flood_enabled && feed && (double)cn >= a->flood_cls_min &&
				 !busy(c->flags, win32_sum(&c->w[W_ACCEPT], bucket(a, t, W_ACCEPT)), cn);
		if (!ip_flood && !cls_flood)
			return;
		if (d.conn == CONN_OPEN && waits) {
			if (live)
				a->cur->judge = 1; /* judged at its end */
			return;
		}
		/* postscreen's DISCONNECT, or no end to wait for (Exim,
		 * Sendmail, lines without process ids) */
		if (ip_flood)
			check_ip(a, p, c, t, false);
		if (cls_flood)
			check_class(a, c, t, false);
		return;
	}
	if (d.bad)
		judge_bad(a, ev, &d, p, c, feed, t);
}

void aggregator_event(struct aggregator *a, const struct event *ev)
{
	event_body(a, ev);
	if (a->njq)
		judge_later_run(a);
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

void aggregator_allow_reload(struct aggregator *a, const struct config *c)
{
	a->allow.n = 0;
	for (size_t i = 0; i < c->allow.n; i++)
		prefix_list_add(&a->allow, &c->allow.v[i]);
	for (size_t i = 0; i < c->allow_files.n; i++)
		load_allow_file(a, c->allow_files.v[i]);
	for (size_t i = 0; i < c->trusted_nets.n; i++)
		prefix_list_add(&a->allow, &c->trusted_nets.v[i]);
}

/* The tables of per-address state, each once (internal.h, agg_tables_init):
 * where it is in struct aggregator, its record and key sizes. The order is
 * that of a state image. */
static const struct {
	size_t off, esz, keysz;
} agg_tables[AGG_TABLES] = {
    {offsetof(struct aggregator, ips), sizeof(struct iprec), sizeof(struct ipaddr)},
    {offsetof(struct aggregator, classes), sizeof(struct clsrec), sizeof(struct prefix)},
    {offsetof(struct aggregator, seen), sizeof(struct seenrec), sizeof(struct prefix)},
    {offsetof(struct aggregator, sessions), sizeof(struct sessrec), sizeof(struct skey)},
    {offsetof(struct aggregator, offenses), sizeof(struct countrec), sizeof(struct prefix)},
    {offsetof(struct aggregator, wider), sizeof(struct countrec), sizeof(struct prefix)},
};

struct table *agg_table(const struct aggregator *a, size_t i)
{
	return (struct table *)((const char *)a + agg_tables[i].off);
}

void agg_tables_init(struct aggregator *a)
{
	for (size_t i = 0; i < AGG_TABLES; i++)
		table_init(agg_table(a, i), agg_tables[i].esz, agg_tables[i].keysz);
}

void agg_tables_free(struct aggregator *a)
{
	for (size_t i = 0; i < AGG_TABLES; i++)
		table_free(agg_table(a, i));
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
	wl[W_SESS] = MXW_MAX(MXW_MAX(MXW_MAX(r->retry_window, r->harvest_window),
				     MXW_MAX(r->policy_window, r->protocol_window)),
			     MXW_MAX(r->relay_window, r->auth_window));
	wl[W_OWN] = r->policy_window;
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
	/* one member's share of its class's windows: half a rule's count, so
	 * that a class crosses a rule only on what several members did */
	for (int i = 0; i < W__COUNT; i++)
		a->cls_cap[i] = UINT32_MAX;
	a->cls_cap[W_CONN] = (uint32_t)MXW_MAX(1, r->flood_ip_count / 2);
	a->cls_cap[W_UNKNOWN] = (uint32_t)MXW_MAX(1, (r->harvest_distinct + 1) / 2);
	a->cls_cap[W_RELAY] = (uint32_t)MXW_MAX(1, (r->relay_count + 1) / 2);
	a->cls_cap[W_AUTH] = (uint32_t)MXW_MAX(1, (r->auth_count + 1) / 2);
	a->cls_cap[W_PROTO] = (uint32_t)MXW_MAX(1, (r->protocol_count + 1) / 2);
	a->cls_cap[W_POLICY] = (uint32_t)MXW_MAX(1, (r->policy_count + 1) / 2);
	a->cls_cap[W_REJ] = (uint32_t)MXW_MAX(1, r->harvest_distinct);
	/* one client's queue (retries, back-off) and its own connections and
	 * returns are never its class's */
	a->cls_cap[W_BACKOFF] = a->cls_cap[W_RETRY] = a->cls_cap[W_SESS] = a->cls_cap[W_OWN] = 0;
	agg_tables_init(a);
	agg_session_init(a);
	for (size_t i = 0; i < c->protected_networks.n; i++) /* the host's own addresses included */
		prefix_list_add(&a->protected_nets, &c->protected_networks.v[i]);
	aggregator_allow_reload(a, c);
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
	agg_tables_free(a);
	agg_session_free(a);
	prefix_list_free(&a->protected_nets);
	prefix_list_free(&a->allow);
	prefix_list_free(&a->allow_manual);
	for (size_t i = 0; i < a->npend; i++)
		free(a->pend[i].evidence);
	free(a->pend);
	free(a->act);
	free(a->act_ix);
	free(a->out);
	free(a->ev);
	free(a->state_path);
	free(a->jq);
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
		agg_session_tick(a, t, t);
	}
}

void aggregator_tick(struct aggregator *a, int64_t now)
{
	agg_clock_to(a, now);
	if (a->njq)
		judge_later_run(a);
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
	st->folded = a->folded;
	st->suppressed = a->suppressed;
	st->held = a->held;
	st->attributed = a->attributed;
	st->unattributed = a->unattributed;
	st->restored = a->restored_rows;
	st->from_checkpoint = a->from_checkpoint;
}
