/*
 * parser.c - the front of the parsers module: line hygiene (length, leading
 * NULs, CRLF), the envelopes (RFC 3164 with year inference and the configured
 * time zone, RFC 3339 / ISO 8601, RFC 5424, journalctl short-iso, Exim's own
 * stamps), dispatch by program tag to postfix.c, exim.c, sendmail.c and the
 * custom rules, and the helpers they share.
 *
 * It must never allocate per line, and never take a client address from
 * anything but the MTA-specific scanners (which read fixed positions).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parsers/internal.h"

static const char *const reason_names[PARSE_R__COUNT] = {
    "none", "too_long", "bad_envelope", "bad_address", "unknown_program", "unknown_message", "truncated",
};

const char *parser_reason_name(int reason)
{
	return reason >= 0 && reason < PARSE_R__COUNT ? reason_names[reason] : "invalid";
}

int parser_reason_count(void)
{
	return PARSE_R__COUNT;
}

/* ---------------------------------------------------------------- helpers */

const char *find(const char *p, const char *end, const char *lit, size_t n)
{
	if (p >= end)
		return NULL;
	return memmem(p, (size_t)(end - p), lit, n);
}

const char *rfind(const char *p, const char *end, const char *lit, size_t n)
{
	const char *last = NULL, *q = p;
	while ((q = find(q, end, lit, n)) != NULL) {
		last = q;
		q++;
	}
	return last;
}

int ev_set_ip(struct parser *p, struct event *ev, const char *s, size_t n)
{
	if (n == 0 || memchr(s, '%', n))
		return -1; /* a zone index names a link, not a client */
	if (ipaddr_parse(&ev->ip, s, n) < 0)
		return -1;
	static const uint8_t zero[16];
	if (memcmp(ev->ip.a, zero, 16) == 0)
		return -1; /* 0.0.0.0 and :: are no client */
	ev->has_ip = true;
	ipaddr_class(&ev->ip, &p->classes, &ev->cls);
	return 0;
}

int parse_port(const char **pp, const char *end, uint16_t *port)
{
	const char *q = *pp;
	unsigned v = 0;
	int nd = 0;
	while (q < end && *q >= '0' && *q <= '9' && nd < 6) {
		v = v * 10 + (unsigned)(*q - '0');
		q++;
		nd++;
	}
	if (nd == 0 || nd > 5 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	*pp = q;
	return 0;
}

bool parse_code(const char **pp, const char *end, struct event *ev)
{
	const char *q = *pp;
	if (end - q < 4 || q[0] < '2' || q[0] > '5' || q[1] < '0' || q[1] > '9' || q[2] < '0' || q[2] > '9' ||
	    (q[3] != ' ' && q[3] != '-'))
		return false;
	ev->code = (int16_t)((q[0] - '0') * 100 + (q[1] - '0') * 10 + (q[2] - '0'));
	*pp = q + 4;
	return true;
}

bool parse_dsn(const char **pp, const char *end, struct event *ev)
{
	const char *q = *pp, *start = q;
	if (q >= end || (*q != '2' && *q != '4' && *q != '5'))
		return false;
	q++;
	for (int part = 0; part < 2; part++) {
		if (q >= end || *q != '.')
			return false;
		q++;
		int nd = 0;
		while (q < end && *q >= '0' && *q <= '9' && nd < 4) {
			q++;
			nd++;
		}
		if (nd == 0 || nd > 3)
			return false;
	}
	if (q < end && *q != ' ' && *q != ';' && *q != ',')
		return false;
	ev->dsn = mkspan(start, q);
	*pp = q < end && *q == ' ' ? q + 1 : q;
	return true;
}

enum ev_stage stage_of_command(const char *s, size_t n)
{
	static const struct {
		const char *w;
		enum ev_stage st;
	} t[] = {
	    {"CONNECT", ST_CONNECT},
	    {"EHLO", ST_HELO},
	    {"HELO", ST_HELO},
	    {"MAIL", ST_MAIL},
	    {"RCPT", ST_RCPT},
	    {"DATA", ST_DATA},
	    {"END-OF-MESSAGE", ST_END_OF_DATA},
	    {"BDAT", ST_DATA},
	    {"AUTH", ST_AUTH},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(t); i++)
		if (strlen(t[i].w) == n && memcmp(t[i].w, s, n) == 0)
			return t[i].st;
	return ST_OTHER;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 1099511628211ULL;
	}
	/* FNV's low bits depend only on low bits: mix the high ones down,
	 * since the tables are indexed by the low bits */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

void qmap_put(struct parser *p, struct span qid, const struct ipaddr *ip, uint16_t port)
{
	if (qid.n == 0 || qid.n > QID_MAX)
		return;
	struct qmap_entry *e = &p->qmap[hash_bytes(qid.p, qid.n) & (QMAP_SIZE - 1)];
	memcpy(e->qid, qid.p, qid.n);
	e->qlen = (uint8_t)qid.n;
	e->ip = *ip;
	e->port = port;
}

const struct qmap_entry *qmap_get(struct parser *p, struct span qid)
{
	if (qid.n == 0 || qid.n > QID_MAX)
		return NULL;
	struct qmap_entry *e = &p->qmap[hash_bytes(qid.p, qid.n) & (QMAP_SIZE - 1)];
	if (e->qlen != qid.n || memcmp(e->qid, qid.p, qid.n) != 0 || e->ip.family == 0)
		return NULL;
	return e;
}

/* Exim: a rejection seen in the mainlog and again in the rejectlog (two
 * sources, one named *rejectlog*) is reported once. Returns true when it is
 * the second copy. */
bool exim_dedup_seen(struct parser *p, const struct parser_source *s, const char *msg, const char *end,
		     int64_t ts_us);
bool exim_dedup_seen(struct parser *p, const struct parser_source *s, const char *msg, const char *end,
		     int64_t ts_us)
{
	uint64_t h = hash_bytes(msg, (size_t)(end - msg)) ^ (uint64_t)ts_us * 0x9e3779b97f4a7c15ULL;
	/* 4-way set associative; the oldest entry of the set is replaced */
	struct dedup_entry *set = &p->dedup[(h & (DEDUP_SIZE / 4 - 1)) * 4], *victim = set;
	p->dedup_seq++;
	for (int i = 0; i < 4; i++) {
		struct dedup_entry *e = &set[i];
		if (e->hash == h && e->ts_us == ts_us && e->pending > 0) {
			e->seq = p->dedup_seq;
			if (e->src == s->id) {
				e->pending++; /* the same line twice in one file: two rejections */
				return false;
			}
			if (e->rejectlog != s->rejectlog) {
				e->pending--; /* the other file's copy */
				return true;
			}
		}
		if (e->seq < victim->seq)
			victim = e;
	}
	victim->hash = h;
	victim->src = s->id;
	victim->rejectlog = s->rejectlog;
	victim->ts_us = ts_us;
	victim->pending = 1;
	victim->seq = p->dedup_seq;
	return false;
}

/* ------------------------------------------------------------- envelopes */

static inline int dig2(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

static int month_of(const char *s)
{
	/* "Jan".."Dec" by a small switch on the letters */
	switch (s[0]) {
	case 'J':
		if (s[1] == 'a' && s[2] == 'n')
			return 1;
		if (s[1] == 'u' && s[2] == 'n')
			return 6;
		if (s[1] == 'u' && s[2] == 'l')
			return 7;
		return -1;
	case 'F': return s[1] == 'e' && s[2] == 'b' ? 2 : -1;
	case 'M':
		if (s[1] == 'a' && s[2] == 'r')
			return 3;
		if (s[1] == 'a' && s[2] == 'y')
			return 5;
		return -1;
	case 'A':
		if (s[1] == 'p' && s[2] == 'r')
			return 4;
		if (s[1] == 'u' && s[2] == 'g')
			return 8;
		return -1;
	case 'S': return s[1] == 'e' && s[2] == 'p' ? 9 : -1;
	case 'O': return s[1] == 'c' && s[2] == 't' ? 10 : -1;
	case 'N': return s[1] == 'o' && s[2] == 'v' ? 11 : -1;
	case 'D': return s[1] == 'e' && s[2] == 'c' ? 12 : -1;
	default: return -1;
	}
}

static const unsigned char mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* A local-time stamp in the parser's zone (tz.h: gaps and folds). */
static int64_t local_to_utc_us(struct parser *p, struct parser_source *s, int y, int mo, int d, int h, int mi,
			       int se, int64_t frac)
{
	int64_t local = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
	int64_t utc = tz_local_to_utc(p->tz, local, s->last_local_utc);
	s->last_local_utc = utc;
	return utc * 1000000 + frac;
}

/* The year of a "Mon dd" stamp: from the clock for the first line, then
 * carried forward across New Year by the previous line's month. */
static int infer_year(struct parser_source *s, int mo, int d)
{
	if (!s->year_set) {
		int64_t now = clock_now();
		time_t t = (time_t)now;
		struct tm tm;
		gmtime_r(&t, &tm);
		int y = tm.tm_year + 1900;
		/* a stamp more than a day ahead of now belongs to last year
		 * (a December line read in January) */
		int64_t cand = days_from_civil(y, (unsigned)mo, (unsigned)MXW_MIN(d, 28)) * 86400;
		if (cand > now + 86400 * 2)
			y--;
		s->year = y;
		s->year_set = true;
		s->last_month = mo;
		return y;
	}
	if (mo < s->last_month && s->last_month - mo >= 6) {
		s->year++; /* Dec -> Jan in the stream */
	} else if (mo > s->last_month && mo - s->last_month >= 6) {
		return s->year - 1; /* a straggler from last year; keep the state */
	}
	s->last_month = mo;
	return s->year;
}

/* Parse "host prog[pid]: " at q; fills e->host, e->program, e->pid, e->msg.
 * A "<facility.priority> " tag before the host (FreeBSD's syslogd -v writes
 * "<mail.info>", -vv "<2.6>") is skipped. */
static int parse_host_tag(const char *q, const char *end, struct envelope *e)
{
	if (q < end && *q == '<') {
		const char *r = q + 1;
		bool dot = false;
		while (r < end && r - q < 24 &&
		       ((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '.')) {
			dot |= *r == '.';
			r++;
		}
		const char *after = dot ? SKIP(r, end, "> ") : NULL;
		if (!after)
			return -1;
		q = after;
	}
	const char *h = q;
	while (q < end && *q != ' ')
		q++;
	if (q == h || q >= end)
		return -1;
	if (q[-1] == ':') {
		q = h; /* no host field: "prog[pid]: msg" right after the stamp */
	} else {
		e->host = mkspan(h, q);
		q++;
	}
	/* the bytes that end a program tag, looked up in one step (this scan
	 * runs on every line) */
	static const bool tag_end[256] = {[' '] = true, ['['] = true, [':'] = true};
	const char *t = q;
	while (q < end && !tag_end[(unsigned char)*q])
		q++;
	if (q == t || q >= end)
		return -1;
	e->program = mkspan(t, q);
	e->pid = -1;
	if (*q == '[') {
		q++;
		int32_t pid = 0;
		int nd = 0;
		while (q < end && *q >= '0' && *q <= '9' && nd < 9) {
			pid = pid * 10 + (*q - '0');
			q++;
			nd++;
		}
		if (nd == 0 || q >= end || *q != ']')
			return -1;
		e->pid = pid;
		q++;
	}
	if (q >= end || *q != ':')
		return -1;
	q++;
	if (q < end && *q == ' ')
		q++;
	e->msg = q;
	return 0;
}

/*
 * ISO 8601 stamp "YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|+HH:MM|+HHMM]" at q.
 * Returns bytes consumed or -1; *zoned tells whether a zone was given (else
 * the time is local in the configured zone).
 */
static int parse_iso(struct parser *p, struct parser_source *s, const char *q, const char *end, int64_t *us,
		     char *sep, bool space_zone)
{
	if (end - q < 19 || q[4] != '-' || q[7] != '-' || q[13] != ':' || q[16] != ':')
		return -1;
	int y = 0;
	for (int i = 0; i < 4; i++) {
		if (q[i] < '0' || q[i] > '9')
			return -1;
		y = y * 10 + (q[i] - '0');
	}
	int mo = dig2(q + 5), d = dig2(q + 8), h = dig2(q + 11), mi = dig2(q + 14), se = dig2(q + 17);
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    se < 0 || se > 60 || (mo == 2 && d == 29 && !leap(y)))
		return -1;
	if (q[10] != 'T' && q[10] != ' ')
		return -1;
	*sep = q[10];
	if (se == 60)
		se = 59;
	const char *r = q + 19;
	int64_t frac = 0;
	if (r < end && (*r == '.' || *r == ',')) {
		r++;
		int64_t scale = 100000;
		const char *fs = r;
		while (r < end && *r >= '0' && *r <= '9') {
			frac += (*r - '0') * scale;
			scale /= 10;
			r++;
		}
		if (r == fs)
			return -1;
	}
	/* Exim with log_timezone writes the zone after a space: " +0100" */
	if (space_zone && end - r >= 7 && r[0] == ' ' && (r[1] == '+' || r[1] == '-') && dig2(r + 2) >= 0 &&
	    dig2(r + 4) >= 0 && r[6] == ' ')
		r++;
	if (r < end && *r == 'Z') {
		r++;
		*us = (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se) *
			  1000000 +
		      frac;
	} else if (r < end && (*r == '+' || *r == '-') && end - r >= 5) {
		int sign = *r == '-' ? -1 : 1;
		int oh = dig2(r + 1);
		const char *m = r + 3;
		if (m < end && *m == ':')
			m++;
		if (end - m < 2)
			return -1;
		int om = dig2(m);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -1;
		r = m + 2;
		int64_t off = sign * (oh * 3600 + om * 60);
		*us =
		    (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off) *
			1000000 +
		    frac;
	} else {
		*us = local_to_utc_us(p, s, y, mo, d, h, mi, se, frac);
	}
	return (int)(r - q);
}

/* Returns 0 with *e filled, or -1 (bad envelope). */
static int parse_envelope(struct parser *p, struct parser_source *s, const char *line, const char *end,
			  struct envelope *e)
{
	const char *q = line;
	e->end = end;
	e->exim_native = false;
	e->host = SPAN_NULL;
	e->program = SPAN_NULL;
	e->pid = -1;
	/* an optional <PRI> from the network */
	if (q < end && *q == '<') {
		const char *r = q + 1;
		int nd = 0;
		while (r < end && *r >= '0' && *r <= '9' && nd < 4) {
			r++;
			nd++;
		}
		if (nd == 0 || r >= end || *r != '>')
			return -1;
		q = r + 1;
		if (end - q > 2 && q[0] == '1' && q[1] == ' ') {
			/* RFC 5424: 1 TIMESTAMP HOST APP PROCID MSGID SD MSG */
			q += 2;
			char sep;
			int n = parse_iso(p, s, q, end, &e->ts_us, &sep, false);
			if (n < 0 || q + n >= end || q[n] != ' ')
				return -1;
			q += n + 1;
			const char *f[4];
			size_t fl[4];
			for (int i = 0; i < 4; i++) {
				f[i] = q;
				while (q < end && *q != ' ')
					q++;
				fl[i] = (size_t)(q - f[i]);
				if (q >= end)
					return -1;
				q++;
			}
			e->host = (struct span){f[0], (uint32_t)fl[0]};
			e->program = (struct span){f[1], (uint32_t)fl[1]};
			if (fl[2] > 0 && fl[2] < 10 && f[2][0] != '-') {
				int32_t pid = 0;
				for (size_t i = 0; i < fl[2]; i++) {
					if (f[2][i] < '0' || f[2][i] > '9')
						return -1;
					pid = pid * 10 + (f[2][i] - '0');
				}
				e->pid = pid;
			}
			/* structured data: "-" or [..]... (brackets may nest quoted "]") */
			if (q < end && *q == '-') {
				q++;
			} else {
				while (q < end && *q == '[') {
					bool inq = false;
					q++;
					while (q < end && (inq || *q != ']')) {
						if (*q == '\\' && q + 1 < end)
							q++;
						else if (*q == '"')
							inq = !inq;
						q++;
					}
					if (q >= end)
						return -1;
					q++;
				}
			}
			if (q < end && *q == ' ')
				q++;
			if (end - q >= 3 && (uint8_t)q[0] == 0xef && (uint8_t)q[1] == 0xbb &&
			    (uint8_t)q[2] == 0xbf)
				q += 3; /* BOM */
			e->msg = q;
			return 0;
		}
	}
	if (q < end && *q >= '0' && *q <= '9') {
		char sep;
		int n = parse_iso(p, s, q, end, &e->ts_us, &sep, q + 10 < end && q[10] == ' ');
		if (n < 0 || q + n >= end || q[n] != ' ')
			return -1;
		q += n + 1;
		if (sep == ' ' || s->hint == MTA_EXIM) {
			/* Exim's own log: "[pid] " is optional (log_selector +pid) */
			if (q < end && *q == '[') {
				const char *r = q + 1;
				int32_t pid = 0;
				int nd = 0;
				while (r < end && *r >= '0' && *r <= '9' && nd < 9) {
					pid = pid * 10 + (*r - '0');
					r++;
					nd++;
				}
				if (nd > 0 && r + 1 < end && r[0] == ']' && r[1] == ' ') {
					e->pid = pid;
					q = r + 2;
				}
			}
			e->exim_native = true;
			e->program = (struct span){"exim", 4};
			e->msg = q;
			return 0;
		}
		return parse_host_tag(q, end, e);
	}
	/* RFC 3164: "Mmm dd hh:mm:ss " (day may be " 7" or "7") */
	if (end - q < 16)
		return -1;
	int mo = month_of(q);
	if (mo < 0 || q[3] != ' ')
		return -1;
	q += 4;
	int d;
	if (q[0] == ' ' && q[1] >= '1' && q[1] <= '9') {
		d = q[1] - '0';
		q += 2;
	} else if (q[0] >= '0' && q[0] <= '9' && q[1] >= '0' && q[1] <= '9') {
		d = dig2(q);
		q += 2;
	} else if (q[0] >= '1' && q[0] <= '9' && q[1] == ' ') {
		d = q[0] - '0';
		q += 1;
	} else {
		return -1;
	}
	if (end - q < 10 || q[0] != ' ' || q[3] != ':' || q[6] != ':' || q[9] != ' ')
		return -1;
	int h = dig2(q + 1), mi = dig2(q + 4), se = dig2(q + 7);
	if (d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60)
		return -1;
	if (se == 60)
		se = 59;
	q += 10;
	int y = infer_year(s, mo, d);
	if (mo == 2 && d == 29 && !leap(y))
		d = 28;
	e->ts_us = local_to_utc_us(p, s, y, mo, d, h, mi, se, 0);
	return parse_host_tag(q, end, e);
}

/* -------------------------------------------------------------- parser */

struct parser *parser_new(const struct config *conf, struct errlist *errs)
{
	struct parser *p = xcalloc(1, sizeof *p);
	p->conf = conf;
	p->classes = conf->classes;
	if (p->classes.v4_len == 0 || p->classes.v4_len > 32)
		p->classes.v4_len = 24;
	if (p->classes.v6_len == 0 || p->classes.v6_len > 128)
		p->classes.v6_len = 64;
	char err[512];
	p->tz = tz_load(conf->timezone && conf->timezone[0] ? conf->timezone : NULL, err, sizeof err);
	if (!p->tz) {
		errlist_add(errs, conf->source ? conf->source : "(config)", conf->timezone_line,
			    "[collector] timezone: %s", err);
		parser_free(p);
		return NULL;
	}
	p->qmap = xcalloc(QMAP_SIZE, sizeof *p->qmap);
	p->dedup = xcalloc(DEDUP_SIZE, sizeof *p->dedup);
	if (custom_compile(p, conf, errs) < 0) {
		parser_free(p);
		return NULL;
	}
	return p;
}

void parser_free(struct parser *p)
{
	if (!p)
		return;
	custom_free(p);
	free(p->qmap);
	free(p->dedup);
	tz_free(p->tz);
	free(p);
}

struct parser_source *parser_source_new(struct parser *p, const char *name, enum mta hint)
{
	struct parser_source *s = xcalloc(1, sizeof *s);
	s->p = p;
	s->name = xstrdup(name ? name : "-");
	s->hint = hint;
	s->rejectlog = strstr(s->name, "rejectlog") != NULL;
	s->id = ++p->next_source_id;
	s->last_local_utc = INT64_MIN;
	return s;
}

void parser_source_free(struct parser_source *s)
{
	if (!s)
		return;
	free(s->name);
	free(s);
}

/* Field by field: the compiler turns a whole-struct memset or copy of this
 * size into "rep stos", which costs more than the rest of a typical parse. */
static inline void ev_reset(struct event *ev)
{
	ev->ts_us = 0;
	ev->mta = MTA_UNKNOWN;
	ev->kind = EV_NONE;
	ev->stage = ST_CONNECT;
	ev->cat = CAT_NONE;
	ev->has_ip = false;
	memset(&ev->ip, 0, sizeof ev->ip);
	memset(&ev->cls, 0, sizeof ev->cls);
	ev->port = 0;
	ev->code = -1;
	ev->auth_ok = false;
	ev->nrcpt = 0;
	ev->pid = -1;
	ev->host = ev->program = ev->queue_id = ev->rdns = ev->helo = SPAN_NULL;
	ev->from = ev->to = ev->user = ev->dsn = ev->text = ev->line = SPAN_NULL;
	memset(&ev->stats, 0, sizeof ev->stats);
}

static bool span_eq(struct span s, const char *lit)
{
	size_t n = strlen(lit);
	return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* The names Sendmail logs under: its own, the Debian binary, the
 * submission queue runner and the process titles some syslog setups take
 * for the tag. */
static bool is_sendmail(struct span pg)
{
	return span_eq(pg, "sm-mta") || span_eq(pg, "sendmail") || span_eq(pg, "sm-msp-queue") ||
	       span_eq(pg, "sm-acceptingconnections") || span_eq(pg, "sm-mta-rx");
}

int parser_parse(struct parser *p, struct parser_source *s, const char *line, size_t len, struct event *ev,
		 int *reason)
{
	*reason = PARSE_R_NONE;
	ev_reset(ev);
	ev->line = (struct span){line, (uint32_t)MXW_MIN(len, (size_t)UINT32_MAX)};
	if (len > PARSER_LINE_MAX) {
		*reason = PARSE_R_TOO_LONG;
		return -1;
	}
	/* a run of NULs left by a crash before a real line: skip it */
	if (len && line[0] == '\0') {
		size_t k = 0;
		while (k < len && line[k] == '\0')
			k++;
		line += k;
		len -= k;
	}
	if (len && line[len - 1] == '\r')
		len--; /* CRLF line ends */
	/* Bytes that are not valid UTF-8, NUL and other control bytes are
	 * bytes of the line like any other: the scanners work on spans and
	 * every sink shows them safely (base/utf8.c), so a spammer who puts
	 * one in its HELO is counted as if it had not. */
	const char *end = line + len;
	struct envelope e;
	if (parse_envelope(p, s, line, end, &e) < 0) {
		if (s->rejectlog)
			return 0; /* the header lines Exim writes after a rejection */
		*reason = PARSE_R_BAD_ENVELOPE;
		return -1;
	}
	ev->ts_us = e.ts_us;
	ev->host = e.host;
	ev->program = e.program;
	ev->pid = e.pid;

	int rc;
	struct span pg = e.program;
	const char *slash = pg.n ? memchr(pg.p, '/', pg.n) : NULL;
	if (e.exim_native || span_eq(pg, "exim") || span_eq(pg, "exim4")) {
		ev->mta = MTA_EXIM;
		rc = exim_parse(p, s, &e, ev, reason);
	} else if (slash && (s->hint == MTA_POSTFIX || (pg.n >= 7 && memcmp(pg.p, "postfix", 7) == 0))) {
		ev->mta = MTA_POSTFIX;
		rc = postfix_parse(p, &e, ev, reason);
	} else if (is_sendmail(pg)) {
		ev->mta = MTA_SENDMAIL;
		rc = sendmail_parse(p, &e, ev, reason);
	} else {
		rc = -1;
		*reason = PARSE_R_UNKNOWN_PROGRAM;
	}
	if (rc != 1 && p->n_rules) {
		int c = custom_parse(p, &e, ev);
		if (c == 1) {
			*reason = PARSE_R_NONE;
			return 1;
		}
	}
	if (rc == 1 && !ev->has_ip && !(ev->mta == MTA_SENDMAIL && ev->queue_id.n && ev->kind == EV_REJECT)) {
		/* an MTA scanner must never produce a client event without
		 * a client (but a Sendmail rejection that names only its queue
		 * id, attributed later by the aggregator); treat it as unparsed */
		*reason = PARSE_R_BAD_ADDRESS;
		return -1;
	}
	return rc;
}
