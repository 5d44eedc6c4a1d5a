/*
 * internal.h - what the files of parsers/ share: the parser and source
 * structs, a cursor over a message, and the per-MTA entry points. Not part
 * of the module's contract (see parsers.h).
 */
#ifndef MXWARDEN_PARSERS_INTERNAL_H
#define MXWARDEN_PARSERS_INTERNAL_H

#include <string.h>

#include "parsers/parsers.h"
#include "parsers/tz.h"

#define QMAP_SIZE  16384 /* queue-id -> client entries (direct mapped, bounded) */
#define DEDUP_SIZE 8192	 /* recent Exim rejections, for mainlog+rejectlog */
#define QID_MAX	   24

struct qmap_entry {
	char qid[QID_MAX];
	uint8_t qlen;
	uint16_t port;
	struct ipaddr ip;
};

struct dedup_entry {
	uint64_t hash;
	uint32_t src;	/* parser_source.id */
	bool rejectlog; /* from a rejectlog */
	int64_t ts_us;
	uint32_t pending; /* copies from src not yet matched in another source */
	uint64_t seq;	  /* last use, for replacement */
};

struct custom_rule;

struct parser {
	const struct config *conf;
	struct class_conf classes;
	struct tz *tz;		   /* the zone of local stamps (tz.h), read at parser_new() */
	struct qmap_entry *qmap;   /* QMAP_SIZE */
	struct dedup_entry *dedup; /* DEDUP_SIZE */
	struct custom_rule *rules;
	size_t n_rules;
	uint32_t next_source_id;
	uint64_t dedup_seq;
};

struct parser_source {
	struct parser *p;
	char *name;
	enum mta hint;
	bool year_set;
	int year;		/* the year of RFC 3164 stamps */
	int last_month;		/* 1..12 of the previous RFC 3164 stamp */
	int64_t last_local_utc; /* UTC seconds of the previous local-time stamp (INT64_MIN = none) */
	bool rejectlog;		/* an Exim rejectlog (its name says so) */
	uint32_t id;
};

/* The envelope of one line: where the MTA's message starts. */
struct envelope {
	int64_t ts_us;
	struct span host, program;
	int32_t pid;
	const char *msg;  /* the message, after "prog[pid]: " */
	const char *end;  /* end of line */
	bool exim_native; /* Exim's own mainlog/rejectlog stamp, no program tag */
};

/* ---- helpers shared by the MTA files (parser.c) ---- */

static inline struct span mkspan(const char *a, const char *b)
{
	return (struct span){a, (uint32_t)(b - a)};
}

/* s is exactly the literal */
static inline bool span_is_lit(struct span s, const char *lit, size_t n)
{
	return s.n == n && memcmp(s.p, lit, n) == 0;
}
#define span_is(s, lit) span_is_lit((s), (lit), sizeof(lit) - 1)

/*
 * Literal skipping: the position right after the literal when [p, end)
 * starts with it, else NULL. Code that reads a phrase moves past it with
 * SKIP(p, end, "phrase ") instead of a hand-counted offset (p + 7), so that
 * editing a phrase cannot shift a position.
 */
static inline const char *skip_lit(const char *p, const char *end, const char *lit, size_t n)
{
	return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0 ? p + n : NULL;
}
#define SKIP(p, end, lit) skip_lit((p), (end), (lit), sizeof(lit) - 1)
/* A literal and its length, for tables of phrases: {LIT("HANGUP "), ...}. */
#define LIT(s) s, sizeof(s) - 1
/* A span over a literal (a fixed event text). */
#define SPAN_LIT(s) ((struct span){(s), sizeof(s) - 1})

/* memmem over [p, end) */
const char *find(const char *p, const char *end, const char *lit, size_t n);
#define FIND(p, end, lit) find((p), (end), (lit), sizeof(lit) - 1)
/* Last occurrence of lit in [p, end). */
const char *rfind(const char *p, const char *end, const char *lit, size_t n);
#define RFIND(p, end, lit) rfind((p), (end), (lit), sizeof(lit) - 1)
/* The position after the first (FIND_AFTER) or last (RFIND_AFTER)
 * occurrence of lit in [p, end), or NULL. */
static inline const char *find_after(const char *p, const char *end, const char *lit, size_t n)
{
	const char *f = find(p, end, lit, n);
	return f ? f + n : NULL;
}
#define FIND_AFTER(p, end, lit) find_after((p), (end), (lit), sizeof(lit) - 1)
static inline const char *rfind_after(const char *p, const char *end, const char *lit, size_t n)
{
	const char *f = rfind(p, end, lit, n);
	return f ? f + n : NULL;
}
#define RFIND_AFTER(p, end, lit) rfind_after((p), (end), (lit), sizeof(lit) - 1)

/*
 * A bracketed client address "[addr]" at *pp, as Postfix, Exim and Sendmail
 * write it: the bytes between the brackets (no '[', ']' or space inside) in
 * *addr, *pp moved past the ']'. Returns PARSE_R_NONE, PARSE_R_TRUNCATED
 * (the line ends first), PARSE_R_UNKNOWN_MESSAGE (no '[' at *pp) or
 * PARSE_R_BAD_ADDRESS (another byte ends it). *pp moves only on success.
 */
static inline int scan_bracket(const char **pp, const char *end, struct span *addr)
{
	const char *q = *pp;
	if (q >= end)
		return PARSE_R_TRUNCATED;
	if (*q != '[')
		return PARSE_R_UNKNOWN_MESSAGE;
	const char *a = ++q;
	while (q < end && *q != ']' && *q != '[' && *q != ' ')
		q++;
	if (q >= end)
		return PARSE_R_TRUNCATED;
	if (*q != ']')
		return PARSE_R_BAD_ADDRESS;
	*addr = mkspan(a, q);
	*pp = q + 1;
	return PARSE_R_NONE;
}

/* An optional ":port" after a client address (also ".port" when dot: Exim
 * before 4.8x wrote IPv6 ports so); *pp and *port change only when there is one. */
/* Parse a decimal port at *pp (advancing it); returns 0 or -1. */
int parse_port(const char **pp, const char *end, uint16_t *port);
static inline void scan_opt_port(const char **pp, const char *end, bool dot, uint16_t *port)
{
	const char *q = *pp;
	if (end - q >= 2 && (q[0] == ':' || (dot && q[0] == '.')) && q[1] >= '0' && q[1] <= '9') {
		q++;
		if (parse_port(&q, end, port) == 0)
			*pp = q;
	}
}

/*
 * Parse a client address s[0..n) strictly (no zone index, not the
 * unspecified address) into ev->ip, ev->cls, ev->has_ip. Returns 0 or -1.
 */
int ev_set_ip(struct parser *p, struct event *ev, const char *s, size_t n);
/* "NNN " reply code at *pp: sets ev->code and advances past the space. */
bool parse_code(const char **pp, const char *end, struct event *ev);
/* "X.Y.Z " enhanced status code at *pp: sets ev->dsn, advances. */
bool parse_dsn(const char **pp, const char *end, struct event *ev);
/* SMTP command word -> stage */
enum ev_stage stage_of_command(const char *p, size_t n);

/* The queue-id map: remember and look up the client of a queue id. */
void qmap_put(struct parser *p, struct span qid, const struct ipaddr *ip, uint16_t port);
const struct qmap_entry *qmap_get(struct parser *p, struct span qid);

/* ---- per MTA: return 1 (event), 0 (nothing about a client), -1 (*reason) ---- */
int postfix_parse(struct parser *p, const struct envelope *e, struct event *ev, int *reason);
int exim_parse(struct parser *p, struct parser_source *s, const struct envelope *e, struct event *ev,
	       int *reason);
int sendmail_parse(struct parser *p, const struct envelope *e, struct event *ev, int *reason);

/* custom.c */
int custom_compile(struct parser *p, const struct config *conf, struct errlist *errs);
void custom_free(struct parser *p);
int custom_parse(struct parser *p, const struct envelope *e, struct event *ev);

/* categories from reply text */
enum ev_category category_of_postfix(const char *text, const char *end, struct span dsn, enum ev_stage st);
enum ev_category category_of_exim(const char *text, const char *end, enum ev_stage st);

#endif
