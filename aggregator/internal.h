/*
 * internal.h - shared between the files of aggregator/ only: the state
 * records, the windows and the aggregator struct. Nothing outside
 * aggregator/ includes it.
 */
#ifndef MXWARDEN_AGG_INTERNAL_H
#define MXWARDEN_AGG_INTERNAL_H

#include "aggregator/aggregator.h"
#include "aggregator/table.h"

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
};

#define RETRY_SLOTS 3
struct retry {
	uint32_t h[RETRY_SLOTS];
	uint8_t n[RETRY_SLOTS];
	uint32_t t0; /* start of the retry window of all slots */
};

struct iprec {
	struct ipaddr ip; /* key (17 bytes): family is never 0 when live */
	uint8_t flags;
	int16_t last_code; /* last 5xx reply code */
	uint32_t last_seen, first_bad, last_temp, last_ps, ev;
	uint32_t rcpt_t0, user_t0;
	uint32_t cls_ref;	       /* table_ref() of its class record: saves a lookup */
	uint64_t rcpt_bits, user_bits; /* distinct unknown recipients, user names */
	struct retry r;
	struct win8 w[W__COUNT];
};

struct clsrec {
	struct prefix p; /* key (18 bytes) */
	uint8_t flags;
	int16_t last_code;
	uint32_t last_seen, first_bad, ev, nflagged, flagged_t0;
	uint32_t rcpt_t0, user_t0, ipb_t0, cipb_t0;
	uint64_t rcpt_bits, user_bits, ip_bits,
	    conn_ip_bits; /* distinct: rcpts, users, bad IPs, connecting IPs */
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
struct sessrec {
	struct skey k;
	struct ipaddr ip;
	uint8_t pad[3];
	uint32_t start, last;
	uint16_t rcpt, rejected;
};

/* Evidence: the first and last lines and counts of one prefix. */
#define EV_LINE_MAX 400
struct evslot {
	struct prefix owner;
	uint16_t pad;
	uint32_t nfirst; /* lines in the first half */
	uint32_t nlast;	 /* lines written to the ring of last lines */
	uint32_t cats[CAT__COUNT];
	uint32_t kinds[EV__COUNT];
	int64_t first_ts, last_ts;
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
};

struct aggregator {
	const struct config *c;
	const struct rules_conf *r;
	uint32_t blen[W__COUNT];	       /* sub-bucket length of each window, seconds */
	uint32_t wlen[W__COUNT];	       /* window length, seconds */
	double flood_ip_min, flood_cls_min;    /* lowest flood thresholds */
	uint32_t bucket_t, bucket_i[W__COUNT]; /* bucket indexes of time bucket_t */
	/* the records of the last event's address: a session's lines come together */
	struct ipaddr last_ip;
	struct iprec *last_p;
	struct clsrec *last_c;
	uint64_t last_gen;
	struct table ips, classes, seen, sessions, offenses, wider;
	struct clsrec scratch; /* the class of a lone member: written, never read */
	struct prefix_list protected_nets, allow;
	/* evidence slots */
	char *ev;
	size_t ev_n, ev_stride, ev_lines, ev_next;
	/* decisions */
	struct active *act;
	size_t nact, capact;
	struct decision *out; /* aggregator_active() view */
	size_t capout;
	struct pending *pend;
	size_t npend, cappend;
	bool replaying;
	struct db *db;	  /* set by aggregator_restore: escalation counts */
	int64_t newest;	  /* newest event time seen, microseconds */
	char *state_path; /* aggregator_set_state_path() */
	size_t evict_cursor, evict_cursor_cls, evict_cursor_seen;
	uint64_t events, evicted, suppressed;
	uint64_t restored_rows; /* events replayed by the last aggregator_restore() */
};

/* aggregator.c */
void agg_active_remove(struct aggregator *a, size_t i, const char *why, bool announce);
void agg_decision_add(struct aggregator *a, const struct decision *d, bool announce, char *evidence);
/* state.c: load the saved state (and delete the file); 0 or -1 */
int agg_state_load(struct aggregator *a);
/* the same from a checkpoint image in memory; 0 or -1 */
int agg_state_load_mem(struct aggregator *a, const void *data, size_t len);
struct countrec *agg_offense(struct aggregator *a, const struct prefix *p, bool create);

#endif
