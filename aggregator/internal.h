/*
 * internal.h - shared between the files of aggregator/ only: the state
 * records, the windows and the aggregator struct. Nothing outside
 * aggregator/ includes it.
 */
#ifndef MXWARDEN_AGG_INTERNAL_H
#define MXWARDEN_AGG_INTERNAL_H

#include "aggregator/aggregator.h"
#include "aggregator/table.h"

/* Two addresses alike (family and bytes), without a call. The words are
 * read from the start of the struct, as a struct copy writes them: a read
 * across two recent stores cannot be forwarded and stalls. */
static inline bool ip_same(const struct ipaddr *x, const struct ipaddr *y)
{
	_Static_assert(sizeof(struct ipaddr) == 17, "ipaddr: family and 16 bytes");
	const char *p = (const char *)x, *q = (const char *)y;
	uint64_t a0, a1, b0, b1;
	memcpy(&a0, p, 8);
	memcpy(&a1, p + 8, 8);
	memcpy(&b0, q, 8);
	memcpy(&b1, q + 8, 8);
	return ((a0 ^ b0) | (a1 ^ b1) | (uint64_t)(p[16] ^ q[16])) == 0;
}

/* Two prefixes alike (length, family and bytes), without a call. */
static inline bool prefix_same(const struct prefix *x, const struct prefix *y)
{
	return x->len == y->len && ip_same(&x->addr, &y->addr);
}

/* prefix_from_addr(out, ip, ipaddr_bits(ip)) without its masking loop:
 * a whole address masks nothing. */
static inline void host_prefix(struct prefix *out, const struct ipaddr *ip)
{
	out->addr = *ip;
	out->len = (uint8_t)ipaddr_bits(ip);
}

/* What the line's program is (Postfix's smtpd, postscreen, cleanup), told
 * once per event by the end of its name (events replayed from the database
 * carry the name only). */
enum prog_role { ROLE_OTHER, ROLE_SMTPD, ROLE_POSTSCREEN, ROLE_CLEANUP };
static inline enum prog_role prog_role(const struct event *ev)
{
	struct span s = ev->program;
	if (!s.n)
		return ROLE_OTHER;
	switch (s.p[s.n - 1]) {
	case 'd': return span_ends(s, "smtpd") ? ROLE_SMTPD : ROLE_OTHER;
	case 'n': return span_ends(s, "postscreen") ? ROLE_POSTSCREEN : ROLE_OTHER;
	case 'p': return span_ends(s, "cleanup") ? ROLE_CLEANUP : ROLE_OTHER;
	default: return ROLE_OTHER;
	}
}

/* Windowed counters: each rule's window is cut in 4 sub-buckets, so a count
 * "within T" covers between T and T + T/4. */
enum win_id {
	W_CONN,
	W_ACCEPT,
	W_UNKNOWN,
	W_RCPT,
	W_RELAY,
	W_AUTH,
	W_PROTO,
	W_POLICY,
	W_BACKOFF,
	W_RETRY,
	W_REJ,
	W_SESS, /* connections with an abuse signal (independent evidence) */
	W_OWN,	/* refusals our own block caused: the sender came back while blocked */
	W__COUNT
};
#define WIN_SUB 4

struct win8 { /* per IP: counts saturate at 255 */
	uint16_t idx;
	uint8_t b[WIN_SUB];
};
struct win32 { /* per class: 32-bit index, counts saturate at 65535 */
	uint32_t idx;
	uint16_t b[WIN_SUB];
};

enum {
	F_NO_RDNS = 1,
	F_NO_MX = 2,
	F_DECIDED = 4,	/* an automatic decision is active on this prefix */
	F_FLAGGED = 8,	/* counted in its class's flagged IPs */
	F_LIMITED = 16, /* the MTA rate-limited it (a flood verdict of its own) */
	/* with F_DECIDED: the response of the decision in force (a lower bound;
	 * 3 for a manual one), so that a decided record's events need no search
	 * of the active decisions unless their score calls for more */
	F_RESP_SHIFT = 5,
	F_RESP_MASK = 3 << 5,
	/* the client (a class: a member) authenticated successfully, so its
	 * AUTH failures are judged per user name (one stale password never
	 * blocks the office behind a NAT, or in its IPv6 /64) */
	F_AUTH_OK = 128,
};

#define RETRY_SLOTS 3
struct retry {
	uint32_t h[RETRY_SLOTS];
	uint8_t n[RETRY_SLOTS];
	uint32_t t0; /* start of the retry window of all slots */
};

/* Rarely run: out of line and apart, so the hot path stays compact. */
#define AGG_COLD __attribute__((cold, noinline))

#define CLS_LONE 0x80000000u /* struct iprec .cls_ref: a seen record */

/*
 * An IPv6 class (a /64 by default) that gave this many of its addresses a
 * record of their own within the idle window is crowded: its further new
 * addresses get none. Their events count in the class record only (its
 * rules, with their guards: several distinct bad members, accepted mail),
 * never in a per-address record. An attacker who controls a /64 and
 * rotates through its 2^64 addresses so costs 16 address records and one
 * class record, not one record per address, and meets the class rule
 * instead of slipping under every per-address one. A legitimate pool
 * (a big provider's outbound servers share a /64) loses the per-address
 * rules for its addresses beyond the 16th: never a block more, since the
 * class is judged as before.
 */
#define FOLD_MEMBERS 16

struct iprec {
	struct ipaddr ip; /* key (17 bytes): family is never 0 when live */
	uint8_t flags;
	int16_t last_code; /* last 5xx reply code */
	/* what every connection and accepted message touches, in the first
	 * 64 bytes: one cache line for most events */
	uint32_t last_seen, last_temp, last_ps;
	uint32_t cls_ref;	 /* table_ref() of its class record, or CLS_LONE | table_ref() of the
				  * seen record that names it as its class's only member */
	struct win8 w[W__COUNT]; /* W_CONN, W_ACCEPT and W_RCPT first */
	uint8_t open; /* its connections counted in W_CONN that have not ended (flood: judged on the ended) */
	uint64_t rcpt_bits, user_bits; /* distinct unknown recipients, user names */
	struct retry r;
	uint32_t first_bad, ev;
	uint32_t rcpt_t0, user_t0;
	int16_t temp_code; /* the reply code of last_temp (session.c: back-off) */
	uint16_t temp_dsn; /* its enhanced status, X * 1000 + Y * 100 + Z when they fit */
	uint32_t
	    temp_pair; /* hash of (sender, recipient) of the last 4xx: back-off is the same message again */
	uint32_t last_bad; /* when the last connection with an abuse signal was counted (W_SESS) */
};
_Static_assert(offsetof(struct iprec, w) + (W_RCPT + 1) * sizeof(struct win8) <= 64,
	       "iprec: the fields of a connection in the first cache line");
_Static_assert(sizeof(struct iprec) == 184, "iprec: 184 bytes (memory per tracked IP)");

struct clsrec {
	struct prefix p; /* key (18 bytes) */
	uint8_t flags;
	int16_t last_code;
	uint16_t open; /* as iprec's open, of the members it hears */
	uint32_t last_seen, first_bad, ev, nflagged, flagged_t0;
	uint32_t rcpt_t0, user_t0, ipb_t0, cipb_t0;
	uint32_t good_t0;
	uint64_t rcpt_bits, user_bits, ip_bits, conn_ip_bits,
	    good_bits; /* distinct: rcpts, users, bad IPs, connecting IPs, members with accepted mail only */
	uint64_t member_bits; /* distinct members given a record of their own (IPv6: see FOLD_MEMBERS) */
	uint32_t memb_t0;
	struct retry r;
	struct win32 w[W__COUNT];
};

/* Past decisions per prefix (escalation) and flagged classes per wider
 * network (widening): a prefix key and a counter. */
struct countrec {
	struct prefix p;
	uint16_t pad;
	uint32_t n;
	uint32_t t;
};

/* A class with one known member so far: 40 bytes instead of a class
 * record. The second member promotes it to a struct clsrec, seeded with
 * the first member's counts. */
struct seenrec {
	struct prefix p;  /* key */
	struct ipaddr ip; /* the only member seen */
	uint8_t pad;
	uint32_t last_seen;
};

/* A session, keyed by (mta, syslog host, pid). */
struct skey {
	uint8_t tag; /* mta + 1, never 0 */
	uint8_t pad[3];
	int32_t pid;
	uint32_t host;
};

/* What one SMTP connection showed (session.c): counted while it lives,
 * folded into the evidence of its IP and class when it ends badly. An
 * enhanced status code "X.Y.Z" is packed as X * 1000000 + Y * 1000 + Z. */
struct sesssum {
	uint32_t start, end; /* log time of the first and last line */
	uint16_t rcpt;	     /* RCPT attempts */
	uint16_t rejected;   /* RCPTs refused (4xx and 5xx) */
	uint16_t unknown;    /* ... of them unknown recipients */
	uint16_t other_rej;  /* refusals of HELO, MAIL, DATA, content, the client */
	uint16_t auth_fail;  /* AUTH failures */
	uint16_t proto;	     /* protocol violations, lost before MAIL */
	uint16_t accepted;   /* messages accepted */
	int16_t code;	     /* the dominant refusal: reply code (0 = none) */
	uint32_t dsn;	     /* ... and its enhanced status */
	uint16_t code_n;     /* how many refusals had it */
	int16_t temp_code;   /* the IP's last 4xx before this connection (0 = none) */
	uint32_t temp_dsn;
	uint32_t gap;		      /* seconds from that 4xx to this connection */
	uint16_t cmds_ok, cmds_total; /* Postfix disconnect "commands=ok/total" */
	uint8_t helo;		      /* 0 not known, 1 HELO/EHLO seen, 2 none (ehlo=0) */
	uint8_t counted;	      /* its abuse signals were counted as one connection (W_SESS) */
	uint16_t retry_pending; /* refusals of a pair refused before: retries unless it delivered mail */
	uint8_t judge;		/* rules that count refusals are judged when it ends */
	uint8_t holds;		/* it counts in its IP's (and class's) open connections */
	uint16_t cls_unknown;	/* ... of its unknown recipients, those its class counted */
};
/* One per (mta, syslog host, pid): a process serves one connection after
 * another, so its record stays when a connection ends (closed) and the
 * next connection starts over in it; idle records go at the hold time. */
struct sessrec {
	struct skey k;
	struct ipaddr ip;
	uint8_t closed; /* the connection ended: folded already */
	uint8_t pad[2];
	struct sesssum s;
	int16_t alt_code; /* the second refusal code seen, for the dominant one */
	uint16_t alt_n;
	uint32_t alt_dsn;
};

/* A queue id of one MTA on one syslog host (session.c): 16 bytes, the
 * first never 0. */
struct qkey {
	uint8_t tag; /* mta + 1 */
	uint8_t qlen;
	uint16_t pad;
	uint32_t host; /* hash of the syslog host */
	uint64_t q;    /* hash of the queue id */
};
/* Its client once known, and the events held until then: a list of ring
 * slots (index + 1, 0 = none) in log order. */
struct qrec {
	struct qkey k;
	struct ipaddr ip; /* family 0 until a line names the client */
	uint8_t pad;
	struct prefix cls;
	uint32_t head, tail;
	uint32_t t; /* log time of the last line of this queue id */
};

/* Postfix: the smtpd session of a recently accepted queue id, for its
 * cleanup lines (direct-mapped: a newer queue id overwrites an older). */
#define QC_SIZE	  1024
#define SREF_SIZE 256
struct qcache {
	uint64_t q;	      /* struct qkey .q */
	uint32_t host;	      /* struct qkey .host */
	struct sessrec *sess; /* the session (see struct aggregator .sref), NULL = none */
};

/* A connection that ended with rules left to judge: a copy of what it
 * showed, its client and when it ended. */
struct judge_later {
	struct ipaddr ip;
	uint32_t t;
	struct sesssum s;
};

/* Evidence: the first and last lines and counts of one prefix. */
#define EV_LINE_MAX 400
struct evslot {
	struct prefix owner;
	uint16_t pad;
	uint32_t nfirst; /* lines in the first half */
	uint32_t nlast;	 /* lines written to the ring of last lines */
	uint32_t pad2;
	int64_t first_ts, last_ts;
	uint32_t cats[CAT__COUNT];
	uint32_t kinds[EV__COUNT];
	uint32_t sessions_bad; /* connections that ended badly (session.c) */
	uint32_t pad3;
	struct sesssum worst; /* the worst of them */
			      /* then 2 * evidence_lines entries of struct evline */
};
struct evline {
	uint16_t len;
	char s[EV_LINE_MAX];
};

struct active {
	struct decision d;
};

struct pending {
	enum agg_change_kind kind;
	struct decision d;
	char *evidence; /* NEW, UPGRADED: owned JSON text */
	const char *end_reason;
	enum response from; /* UPGRADED */
	int64_t at;	    /* the judge's time of the change (struct agg_change) */
};

struct aggregator {
	const struct config *c;
	const struct rules_conf *r;
	uint32_t blen[W__COUNT];	    /* sub-bucket length of each window, seconds */
	uint32_t wlen[W__COUNT];	    /* window length, seconds */
	double flood_ip_min, flood_cls_min; /* lowest flood thresholds */
	/* the thresholds of the rules (aggregator.c, view_rules()) for a class
	 * or an IP, by (accepted mail, no rDNS, no MX), computed once */
#define AGG_RULES_MAX 12
	double pre_mult[8];
	double pre_thr[2][8][AGG_RULES_MAX];
	unsigned pre_window[AGG_RULES_MAX];
	uint32_t bucket_t, bucket_i[W__COUNT]; /* bucket indexes of time bucket_t */
	int64_t sec_us; /* the second of the last event, in microseconds (agg_seconds) */
	uint32_t sec;
	/* the records of the last event's address: a session's lines come together */
	struct ipaddr last_ip;
	struct iprec *last_p;
	struct clsrec *last_c;
	uint64_t last_gen;
	/* the per-address state: listed once, in agg_tables_init() */
	struct table ips, classes, seen, sessions, offenses, wider;
	struct clsrec scratch; /* the class of a lone member: written, never read */
	/* the record of an IPv6 address folded into its crowded class (see
	 * FOLD_MEMBERS): zeroed for each event, never judged on its own */
	struct iprec fold_rec;
	uint64_t folded; /* events of folded addresses */
	struct prefix_list protected_nets, allow;
	struct prefix_list allow_manual; /* allows made by hand (aggregator_set_allows) */
	/* evidence slots */
	char *ev;
	size_t ev_n, ev_stride, ev_lines, ev_next;
	/* decisions */
	struct active *act;
	size_t nact, capact;
	/* act by prefix: open addressing, index + 1 (0 = empty), rebuilt
	 * after a removal (rare: expiry, unblock) */
	uint32_t *act_ix;
	size_t act_ixcap;
	bool act_ix_dirty;
	struct decision *out; /* aggregator_active() view */
	size_t capout;
	struct pending *pend;
	size_t npend, cappend;
	bool replaying;
	struct db *db;	/* set by aggregator_restore: escalation counts */
	int64_t newest; /* newest event time seen, microseconds */
	/* the judge's clock (aggregator.h, "Time"): log time in seconds, or a
	 * later now given to aggregator_tick(); never goes back */
	int64_t clock;
	int64_t next_until;    /* no decision in force ends before this (a lower bound) */
	int64_t house;	       /* clock / house_period at the last idle sweep */
	uint32_t house_period; /* seconds: 10 min, or idle_evict when shorter */
	uint32_t idle;	       /* idle_evict, at least 60 s */
	uint32_t time_t;       /* the second of the last event (agg_time) */
	uint32_t sess_next;    /* event time of the next session sweep (10 minutes) */
	char *state_path;      /* aggregator_set_state_path() */
	size_t evict_cursor, evict_cursor_cls, evict_cursor_seen;
	uint64_t events, evicted, suppressed;
	/* session.c: events held by queue id until their client is known */
	struct hold *hold;
	struct table qids;
	size_t qid_cursor;
	struct agg_attribution *attr;
	size_t nattr, capattr;
	uint64_t held, attributed, unattributed;
	uint64_t drops_pending; /* unattributed since aggregator_take_attributions() */
	/* the session of the event being handled (for the explanation) */
	struct sesssum *cur;
	struct sesssum ended; /* ... a copy when the event ended it */
	/* recent sessions by pid: records never move, so a pointer checked
	 * against the key (a removed record is zeroed) is as good as a lookup;
	 * cleared when the table is rebuilt (agg_session_forget_refs) */
	struct sessrec *sref[SREF_SIZE];
	uint32_t host_h, host_n;  /* the last syslog host's hash, its length */
	char host_s[64];	  /* ... and its bytes */
	struct sessrec *sess_new; /* opened by this event: agg_session_begin() */
	struct qcache qc[QC_SIZE];
	size_t sess_cursor;
	/* the class rules judge what several members did: what one member
	 * may add to its class's window w (0: nothing, UINT32_MAX: no cap) */
	uint32_t cls_cap[W__COUNT];
	/* connections whose refusal-counting rules wait for their end
	 * (session.c pushes them, aggregator.c judges them) */
	struct judge_later *jq;
	size_t njq, capjq;
	uint64_t restored_rows; /* events replayed by the last aggregator_restore() */
	bool from_checkpoint;	/* ... which loaded the database's checkpoint */
};

/* The event time ts_us in seconds: events come in time order, so the
 * division is done once per second of log time. */
static inline uint32_t agg_seconds(struct aggregator *a, int64_t ts_us)
{
	if ((uint64_t)(ts_us - a->sec_us) >= 1000000) {
		a->sec = (uint32_t)(ts_us / 1000000);
		a->sec_us = (int64_t)a->sec * 1000000;
	}
	return a->sec;
}

/* aggregator.c */
void agg_active_remove(struct aggregator *a, size_t i, const char *why, bool announce);
/* Move the judge's clock to t when t is later (aggregator.h, "Time"). */
void agg_clock_advance(struct aggregator *a, int64_t t);
static inline void agg_clock_to(struct aggregator *a, int64_t t)
{
	if (t > a->clock)
		agg_clock_advance(a, t);
}
void agg_decision_add(struct aggregator *a, const struct decision *d, bool announce, char *evidence);
/* A record's flags with decision d in force on its prefix: F_DECIDED and
 * d's response (3 for a manual one). The one rule for a judged record and
 * for a restore (a record whose bits lack the response counts the
 * refusals of our own block as policy refusals). */
uint8_t agg_decided_bits(uint8_t flags, const struct decision *d);
/*
 * The tables of per-address state (ips, classes, seen, sessions, offenses,
 * wider), each named once with its record and key sizes in aggregator.c:
 * agg_tables_init() makes them empty (aggregator_new, a state image that
 * failed to load), agg_tables_free() frees them, and a state image holds
 * agg_table(a, 0 .. AGG_TABLES - 1) in that order. A table added there is
 * made, freed, saved and restored with the others.
 */
#define AGG_TABLES 6
void agg_tables_init(struct aggregator *a);
void agg_tables_free(struct aggregator *a);
struct table *agg_table(const struct aggregator *a, size_t i); /* as strchr: const in, not out */
/* state.c: load the saved state (and delete the file); 0 or -1 */
int agg_state_load(struct aggregator *a);
/* the same from a checkpoint image in memory; 0 or -1 */
int agg_state_load_mem(struct aggregator *a, const void *data, size_t len);
struct countrec *agg_offense(struct aggregator *a, const struct prefix *p, bool create);
/* n messages accepted from ip in the hour starting at t (a restart without
 * saved state: the database counts them by hour) */
void agg_seed_accepted(struct aggregator *a, const struct ipaddr *ip, uint32_t t, unsigned n);
/*
 * jsonw.c: a JSON writer into a buffer, for the evidence texts. It writes
 * the bytes json_dumps(v, JSON_COMPACT) writes for the tree v that
 * json_object_set_new / json_array_append_new calls in the same order
 * would build (a repeated key is not merged: callers never repeat one).
 * key names the member inside an object (a fixed word: not checked), NULL
 * for an array element or the top value; the writer puts the commas. A
 * string that is not valid UTF-8 and a real that is not finite are left
 * out, member and all, as jansson leaves out the NULL json_stringn and
 * json_real give. jw_free frees only the writer's scratch, not *b.
 */
struct jw {
	struct buf *b;
	bool more;	/* a value ended at this level: the next needs a comma */
	struct buf tmp; /* jw_line's cleaned copy */
};
void jw_init(struct jw *w, struct buf *b);
void jw_free(struct jw *w);
void jw_obj_begin(struct jw *w, const char *key);
void jw_obj_end(struct jw *w);
void jw_arr_begin(struct jw *w, const char *key);
void jw_arr_end(struct jw *w);
void jw_str(struct jw *w, const char *key, const char *s);
void jw_strn(struct jw *w, const char *key, const char *s, size_t n);
/* Log text s[0..n): as a string when it is valid UTF-8 (NUL included),
 * else with each invalid byte shown as U+FFFD (utf8_append_clean(), as
 * every sink shows it; evidence keeps every line) */
void jw_line(struct jw *w, const char *key, const char *s, size_t n);
void jw_int(struct jw *w, const char *key, json_int_t v);
void jw_real(struct jw *w, const char *key, double v);
void jw_bool(struct jw *w, const char *key, bool v);
void jw_null(struct jw *w, const char *key);
/* aggregator.c: the evidence slot of owner, or NULL */
struct evslot *agg_ev_find(struct aggregator *a, uint32_t *slotp, const struct prefix *owner);
/* session.c */
/* Count ev in the session of its connection (Postfix smtpd, Exim, Sendmail:
 * one process per connection, keyed by mta, syslog host and pid; Postfix
 * cleanup lines by queue id), starting one on its first line and folding
 * it into the evidence of its IP and class when it ends badly. bad: ev is
 * an abuse signal (classify); role: prog_role(ev). Sets a->cur. */
void agg_session_event(struct aggregator *a, const struct event *ev, enum prog_role role, bool bad,
		       uint32_t t);
/* Append to reason (size n, NUL-terminated) what the worst connection of
 * slot s (or the current one) shows, when it fits: numbers and fixed words
 * only. */
void agg_session_reason(const struct aggregator *a, const struct evslot *s, char *reason, size_t n);
/* Write the member "sessions" (the worst connection and counts) of the
 * evidence object being written by w. */
void agg_session_json(const struct aggregator *a, const struct evslot *s, struct jw *w);
/* The event opened a session (a->sess_new): note the back-off from its
 * IP's record p, before the event itself changes it. */
void agg_session_begin(struct aggregator *a, const struct iprec *p, uint32_t t);
/* Remember the reply of p's last 4xx (ev) for the back-off explanation. */
void agg_session_temp(struct iprec *p, const struct event *ev);
void agg_session_init(struct aggregator *a);
/* Forget the pointers into the session table (before it is freed or read). */
void agg_session_forget_refs(struct aggregator *a);
void agg_session_free(struct aggregator *a);
/* Called first for every event (row: its stored id, 0 = none). An event
 * without a client is held by queue id, or applied at once with the known
 * client of its queue id: returns true (the caller is done with it). An
 * event with a client first applies the events its queue id held, in log
 * order, then returns false (the caller goes on with it). */
bool agg_session_route(struct aggregator *a, const struct event *ev, int64_t row);
/* Drop held events and known queue ids older than the hold time at log
 * time t. */
/* Idle connections end at log time t; those whose judging waits are judged
 * once quiet for a while at time now (an MTA that logs no end of them). */
void agg_session_tick(struct aggregator *a, uint32_t t, uint32_t now);
size_t agg_session_bytes(const struct aggregator *a);
/* Hold again the stored events still without a client (restart after a
 * clean stop): rows of the hold time before newest_us, up to it. */
int agg_session_restore(struct aggregator *a, struct db *db, int64_t newest_us);

#endif
