/*
 * base.h - the shared base of mxwarden: memory, buffers, logging, the clock,
 * durations, IP addresses and prefixes, the event and decision structs, and
 * the configuration.
 *
 * Where it sits: below everything. collector/, parsers/, aggregator/,
 * emitters/, db/ and web/ include this header; base/ includes none of them.
 * It must never know how a mail log looks: nothing here parses Postfix, Exim
 * or Sendmail text.
 *
 * Conventions (see ../shared/STYLE.md):
 *   - x*alloc() never return NULL: they print a message and exit(1).
 *   - Other functions return 0 (or a length) on success and -1 on failure;
 *     bad input never aborts.
 *   - Text from logs is bytes: (pointer, length) spans that may hold NUL,
 *     invalid UTF-8 or control characters. Escape at the sink.
 */
#ifndef MXWARDEN_BASE_H
#define MXWARDEN_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MXW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MXW_MIN(a, b)	 ((a) < (b) ? (a) : (b))
#define MXW_MAX(a, b)	 ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------------ memory */

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* ----------------------------------------------------------------- buffers */

/*
 * A growable byte buffer. Invariants: when data != NULL, data[len] == '\0'
 * and len < cap; a zero-initialised struct buf (BUF_INIT) is a valid empty
 * buffer. The buffer may hold NUL bytes before len. Growth dies on OOM.
 */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};
#define BUF_INIT           \
	{                  \
		NULL, 0, 0 \
	}

void buf_free(struct buf *b);		    /* releases the memory; b becomes empty */
void buf_reset(struct buf *b);		    /* len = 0, keeps the memory */
void buf_grow(struct buf *b, size_t extra); /* room for extra more bytes */
void buf_append(struct buf *b, const void *p, size_t n);
void buf_appends(struct buf *b, const char *s);
void buf_appendc(struct buf *b, char c);
/* printf-style append; never truncates (grows as needed) */
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Returns the C string (never NULL: "" for an empty buffer). */
const char *buf_str(const struct buf *b);

/*
 * Append s[0..n) masked for a human-readable, single-line sink (our own
 * log, a terminal): bytes outside printable ASCII become "\xHH", and
 * backslash is doubled. The result can never break a line.
 */
void buf_append_printable(struct buf *b, const char *s, size_t n);

/* ------------------------------------------------------------------ UTF-8 */

/*
 * Valid UTF-8 is RFC 3629's (no overlong forms, surrogates or code points
 * above U+10FFFF); NUL and other control characters are valid and each sink
 * escapes them. Every sink shows a byte that is not part of a valid sequence
 * as one U+FFFD (ASCII-only sinks show any non-ASCII character as '?'). The
 * raw log line itself is never rewritten: it is stored byte-exact.
 */
#define UTF8_REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */
/* The length (1..4) of the valid sequence at s[0..n), n >= 1; 0 when the
 * byte at s starts none. */
size_t utf8_seq(const char *s, size_t n);
/* The length of the longest valid prefix of s[0..n) (ASCII 8 bytes at a time). */
size_t utf8_valid_prefix(const char *s, size_t n);
static inline bool utf8_valid(const char *s, size_t n)
{
	return utf8_valid_prefix(s, n) == n;
}
/* Append s[0..n) with every byte that is not part of a valid sequence
 * replaced by U+FFFD (the shown form of log text; NUL is kept). */
void utf8_append_clean(struct buf *b, const char *s, size_t n);
/*
 * Append s[0..n) for a human reading UTF-8 text on one line (a terminal, a
 * plain-text report): printable characters as they are, each byte that is
 * not valid UTF-8 as U+FFFD (as in every sink), controls (C0, DEL, C1), the
 * line separators and the bidi formatting characters as "\xHH" per byte,
 * and backslash doubled. The result can never break a line or reorder it.
 * (Our own log stays ASCII: buf_append_printable.)
 */
void utf8_append_text(struct buf *b, const char *s, size_t n);

/* A bounded copy with truncation report: copies s[0..n) into dst (size
 * dstsz, always NUL-terminated). Returns 0 when all of it fit, -1 if cut. */
int str_copy(char *dst, size_t dstsz, const char *s, size_t n);

/* -------------------------------------------------------------------- log */

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_set_level(enum log_level lvl);
void log_set_syslog(bool on, const char *ident);
/* Standard error is checked once against JOURNAL_STREAM: each line then
 * starts with its syslog priority ("<4>...") and carries no name. Tests
 * that change stderr or the variable call this to check again. */
void log_reset_stream(void);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A bad configuration or an unrecoverable environment problem: exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* An internal bug: abort(). */
#define BUG(...) bug_at(__FILE__, __LINE__, __VA_ARGS__)
void bug_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));

/* ------------------------------------------------------------------ clock */

/*
 * The wall clock, settable for tests. When MXWARDEN_NOW is set in the
 * environment (RFC 3339 such as "2026-11-27T20:00:00Z", or "@<epoch
 * seconds>"), the clock starts there at the first call and then advances
 * with the monotonic clock; with MXWARDEN_NOW_FROZEN=1 it does not advance.
 * An unparsable MXWARDEN_NOW is fatal (a test must not silently use today).
 */
int64_t clock_now_us(void);
static inline int64_t clock_now(void)
{
	return clock_now_us() / 1000000;
}
/* Monotonic microseconds, for intervals (not settable). */
int64_t clock_mono_us(void);
/* Forget the cached start (tests that change MXWARDEN_NOW between cases). */
void clock_reset(void);

/* Days since 1970-01-01 of a proleptic Gregorian date (no time zone). */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
/*
 * Parse RFC 3339 / ISO 8601 "YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|+HH:MM|-HH:MM]"
 * into microseconds since the epoch. With no zone, the time is taken as UTC.
 * Returns the number of bytes consumed, or -1.
 */
int time_parse_rfc3339(const char *s, size_t n, int64_t *us);
/* Format as "YYYY-MM-DDTHH:MM:SSZ" (or with ".uuuuuu" when frac is true).
 * Returns the length written (out must hold TIME_STRLEN bytes). */
#define TIME_STRLEN 32
size_t time_format_rfc3339(int64_t us, bool frac, char *out);

/*
 * Durations: "90s", "10m", "2h", "7d", "1w" or a plain number of seconds;
 * several parts may follow each other ("1h30m"). Returns 0 and the value in
 * seconds, or -1 on a bad or overflowing value.
 */
int duration_parse(const char *s, int64_t *secs);
/* Shortest exact rendering ("2d", "1h30m", "0s"); out needs 32 bytes. */
void duration_format(int64_t secs, char *out, size_t outsz);

/* --------------------------------------------------- addresses, prefixes */

enum { IPADDR_V4 = 4, IPADDR_V6 = 6 };
#define IPADDR_STRLEN 46 /* INET6_ADDRSTRLEN */
#define PREFIX_STRLEN 50

/* An IPv4 or IPv6 address. IPv4 occupies a[0..3], the rest is zero, so that
 * two equal addresses are equal byte for byte (usable as a hash key). */
struct ipaddr {
	uint8_t family; /* IPADDR_V4 or IPADDR_V6; 0 = none */
	uint8_t a[16];
};

/*
 * Strict parse of s[0..n): dotted quad with exactly four decimal parts, no
 * leading zeros, each <= 255; or IPv6 text (RFC 4291), with an optional zone
 * index ("%eth0") that is dropped. IPv4-mapped IPv6 (::ffff:a.b.c.d) folds to
 * IPv4. Anything else (trailing bytes, brackets, spaces) is refused.
 * Returns 0 or -1.
 */
int ipaddr_parse(struct ipaddr *out, const char *s, size_t n);
/* Canonical text (RFC 5952 for IPv6). Returns the length; out needs
 * IPADDR_STRLEN bytes. */
size_t ipaddr_format(const struct ipaddr *ip, char *out);
int ipaddr_cmp(const struct ipaddr *x, const struct ipaddr *y);
static inline unsigned ipaddr_bits(const struct ipaddr *ip)
{
	return ip->family == IPADDR_V4 ? 32 : 128;
}
uint64_t ipaddr_hash(const struct ipaddr *ip);
/* 127.0.0.0/8 or ::1 (IPv4-mapped loopback is IPv4 after ipaddr_parse). */
bool ipaddr_is_loopback(const struct ipaddr *ip);
/* For a listen address "ADDR:PORT", "[V6]:PORT", ":PORT" or "PORT" (the
 * last two mean loopback): true when it binds loopback only. "*:PORT",
 * 0.0.0.0 and :: bind every address; an unparsable one is not loopback. */
bool addrport_loopback(const char *s);
/*
 * Append why binding addr (the listen address as configured) failed with
 * errno e, in words an operator can act on: a privileged port (below 1024)
 * without root or CAP_NET_BIND_SERVICE, an address in use, an address this
 * host does not have; else strerror(e).
 */
void bind_error_explain(struct buf *out, const char *addr, unsigned port, int e);

/* A network: address with host bits zero, and a length in bits. */
struct prefix {
	struct ipaddr addr;
	uint8_t len;
};

/*
 * Parse "addr/len" or a bare address (full length). With strict, host bits
 * set below the length are an error; otherwise they are cleared.
 * Returns 0, or -1 on bad text or length.
 */
int prefix_parse(struct prefix *out, const char *s, size_t n, bool strict);
/* The prefix of length len containing ip (len is clamped to the family). */
void prefix_from_addr(struct prefix *out, const struct ipaddr *ip, unsigned len);
bool prefix_contains(const struct prefix *p, const struct ipaddr *ip);
bool prefix_contains_prefix(const struct prefix *outer, const struct prefix *inner);
bool prefix_overlaps(const struct prefix *x, const struct prefix *y);
bool prefix_is_host(const struct prefix *p);
int prefix_cmp(const struct prefix *x, const struct prefix *y);
/* "203.0.113.0/24", "2001:db8::/64". Returns the length; out needs
 * PREFIX_STRLEN bytes. */
size_t prefix_format(const struct prefix *p, char *out);

/*
 * Why prefix_parse(s, n, strict) refused s, as a clause for a message
 * ("300 is more than 255 (...)", "host bits are set below /24: the network
 * is 198.51.100.0/24"). msg is always NUL-terminated.
 */
void prefix_explain(const char *s, size_t n, bool strict, char *msg, size_t msgsz);
/*
 * An address or prefix in any form a person pastes from a log or a
 * ticket: "192.0.2.7", "192.0.2.0/24", "192.0.2.7:25", "[2001:db8::1]",
 * "[2001:db8::1]:25", "mail.example.com[192.0.2.7]" (Postfix's
 * name[address]), "unknown[192.0.2.7]:25"; blanks around it are ignored,
 * host bits below a length are cleared. Returns 0, or -1 with why in msg
 * (prefix_explain).
 */
int prefix_parse_pasted(struct prefix *out, const char *s, size_t n, char *msg, size_t msgsz);

/* A list of prefixes with a linear containment test (lists are short:
 * protected networks and allow lists). */
struct prefix_list {
	struct prefix *v;
	size_t n, cap;
};
void prefix_list_add(struct prefix_list *l, const struct prefix *p);
void prefix_list_free(struct prefix_list *l);
bool prefix_list_contains(const struct prefix_list *l, const struct ipaddr *ip);
/* True when any element overlaps p in either direction. */
bool prefix_list_overlaps(const struct prefix_list *l, const struct prefix *p);
struct strv;
/*
 * Take cut out of l: entries inside it are removed, an entry that holds it
 * is replaced by the pieces of it around cut. src (NULL or at the same
 * index as l) follows, each piece keeping its entry's text. Returns the
 * number of entries that overlapped cut (0: nothing was taken out).
 */
size_t prefix_list_cut(struct prefix_list *l, struct strv *src, const struct prefix *cut);
/*
 * Reserved ranges no blocklist may ever hold, whatever the configuration:
 * 0/8, 127/8, 224/3, ::/8 (with ::ffff:0:0/96, ::a.b.c.d and the NAT64
 * prefixes 64:ff9b::/96 and 64:ff9b:1::/48), fe80::/10, ff00::/8. True when
 * p overlaps one of them in either direction.
 */
bool prefix_reserved(const struct prefix *p);
/* What prefix_reserved() means, as lookup's detail says it. */
#define PREFIX_RESERVED_TEXT                                                                       \
	"it lies in a reserved range that no blocklist ever carries (\"this\" network, loopback, " \
	"multicast, unspecified, IPv4-mapped or -compatible, NAT64, link-local)"

/* The IP class of an address: its /v4_len or /v6_len network. */
struct class_conf {
	unsigned v4_len;       /* default 24 */
	unsigned v6_len;       /* default 64 */
	unsigned v4_widen_len; /* adaptive widening stops here, default 16 */
	unsigned v6_widen_len; /* default 48 */
};
void ipaddr_class(const struct ipaddr *ip, const struct class_conf *cc, struct prefix *out);

/* ------------------------------------------------------------------ event */

/* A byte range inside the log line (or another buffer the caller owns). */
struct span {
	const char *p;
	uint32_t n;
};
#define SPAN_NULL ((struct span){NULL, 0})
static inline bool span_empty(struct span s)
{
	return s.n == 0;
}
/* s ends with suffix (a C string): "postfix/smtpd" ends with "smtpd" */
static inline bool span_ends(struct span s, const char *suffix)
{
	size_t n = strlen(suffix);
	return s.n >= n && memcmp(s.p + s.n - n, suffix, n) == 0;
}

enum mta { MTA_UNKNOWN, MTA_POSTFIX, MTA_EXIM, MTA_SENDMAIL, MTA_CUSTOM, MTA__COUNT };

enum ev_kind {
	EV_NONE,
	EV_CONNECT,
	EV_DISCONNECT,
	EV_ACCEPT,
	EV_REJECT,
	EV_AUTH_FAILURE,
	EV_PROTOCOL,
	EV_LOST,
	EV_NOTE, /* a signal about the client, not a refusal: no-rDNS warnings,
		  * reject_warning (what the MTA would have refused), DNSBL ranks */
	EV__COUNT
};

enum ev_stage {
	ST_CONNECT,
	ST_HELO,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_END_OF_DATA,
	ST_AUTH,
	ST_OTHER,
	ST__COUNT
};

enum ev_category {
	CAT_NONE, /* connect/disconnect/accept carry no category */
	CAT_UNKNOWN_RECIPIENT,
	CAT_RELAY_DENIED,
	CAT_NO_RDNS,
	CAT_UNKNOWN_SENDER_DOMAIN,
	CAT_GREYLISTED,
	CAT_RATE_LIMITED,
	CAT_DNSBL,
	CAT_HELO,
	CAT_SENDER_POLICY,
	CAT_RECIPIENT_POLICY,
	CAT_CLIENT_POLICY,
	CAT_SIZE,
	CAT_PIPELINING,
	CAT_PREGREET,
	CAT_NON_SMTP,
	CAT_TOO_MANY_ERRORS,
	CAT_AUTH,
	CAT_OTHER,
	CAT_CONTENT, /* the message refused or flagged for its content: spam score, virus, local_scan */
	CAT_NO_MAIL, /* a connection that ended without MAIL (a probe) */
	CAT__COUNT
};

/* The per-command statistics of a Postfix disconnect line
 * ("ehlo=1 mail=1 rcpt=0/1 data=0/1 commands=2/4"): ok/total per command. */
struct cmd_stats {
	uint16_t ehlo_ok, ehlo_total;
	uint16_t mail_ok, mail_total;
	uint16_t rcpt_ok, rcpt_total;
	uint16_t data_ok, data_total;
	uint16_t auth_ok, auth_total;
	uint16_t cmds_ok, cmds_total;
	bool present;
};

/*
 * One normalized event: what one log line tells about one SMTP client.
 * Text fields are spans into the raw line (or into parser-owned storage
 * valid until the next parse call); an empty span means "not logged".
 * An event is plain data: it owns nothing and is copied by value.
 */
struct event {
	int64_t ts_us; /* UTC microseconds since the epoch */
	enum mta mta;
	enum ev_kind kind;
	enum ev_stage stage;
	enum ev_category cat;
	bool has_ip;	     /* false for events that concern no client */
	struct ipaddr ip;    /* the client, from the MTA's own client field only */
	struct prefix cls;   /* the IP class of ip */
	uint16_t port;	     /* client port, 0 when not logged */
	int16_t code;	     /* SMTP reply code, -1 when none */
	bool auth_ok;	     /* accept: the client authenticated successfully */
	uint16_t nrcpt;	     /* accept: recipients accepted, when the MTA logged them (0 = not logged) */
	int32_t pid;	     /* -1 when none */
	struct span host;    /* the syslog host (the MTA host or the forwarder) */
	struct span program; /* "postfix/smtpd", "exim", "sm-mta" */
	struct span queue_id;
	struct span rdns; /* empty when the MTA logged "unknown" */
	struct span helo;
	struct span from;
	struct span to;
	struct span user;	/* SASL / AUTH user name */
	struct span dsn;	/* "5.1.1" */
	struct span text;	/* the reply or reason text */
	struct span line;	/* the raw line */
	struct cmd_stats stats; /* disconnect only */
};

const char *mta_name(enum mta m);
const char *ev_kind_name(enum ev_kind k);
const char *ev_stage_name(enum ev_stage s);
const char *ev_category_name(enum ev_category c);
/* Reverse lookups: return the enum value, or -1 for an unknown name. */
int mta_from_name(const char *s);
int ev_kind_from_name(const char *s);
int ev_stage_from_name(const char *s);
int ev_category_from_name(const char *s);

/* --------------------------------------------------------------- decision */

enum response { RESP_OBSERVE, RESP_DEFER, RESP_REJECT, RESP_DROP, RESP__COUNT };
enum scope { SCOPE_IP, SCOPE_CLASS };

const char *response_name(enum response r);
int response_from_name(const char *s);
const char *scope_name(enum scope s);

/*
 * A block decision: the only thing that crosses from the aggregator to the
 * emitters. reason is one sentence that may quote log-derived text (HELO,
 * addresses): every sink escapes or sanitizes it.
 */
struct decision {
	int64_t id; /* database id, 0 when not stored yet */
	struct prefix prefix;
	enum scope scope;
	enum response response;
	char rule[32];
	char reason[256];
	double score;
	int64_t since; /* UTC seconds */
	int64_t until; /* UTC seconds; the block expires then */
	bool manual;
};

/* ----------------------------------------------------------- configuration */

/* A NULL-terminated word list, e.g. a reload command. */
struct strv {
	char **v;
	size_t n;
};
void strv_add(struct strv *sv, const char *s);
void strv_free(struct strv *sv);
/*
 * Split a command line into words: words separated by blanks, double quotes
 * around a word that holds blanks, backslash escapes '"' and '\' inside
 * quotes. Returns 0, or -1 with a message in err (unbalanced quote).
 */
int strv_split_command(struct strv *out, const char *s, char *err, size_t errsz);

enum { FAMILY_V4 = 1, FAMILY_V6 = 2 };
/* [safety] mta_trusted: "auto" reads every MTA that is installed and
 * configured, "postfix" and "exim" insist (an error when unreadable). */
enum { TRUST_POSTFIX = 1, TRUST_EXIM = 2, TRUST_AUTO = 4 };

struct output_conf {
	char *name;
	char *format; /* a format of emitters/ (emit_format_find) */
	char *path;
	unsigned families; /* FAMILY_V4 | FAMILY_V6 */
	bool class_only;   /* scope = class */
	enum response min_response;
	struct strv reload;	/* empty: none */
	int64_t reload_timeout; /* seconds */
	char *set_name;		/* ipset/nft set or chain base name */
	int defined_line;
};

struct parser_rule_conf {
	char *name;
	char *pattern;	/* PCRE2 with named groups */
	char *program;	/* program-name filter, NULL = any */
	char *literal;	/* must appear in the line, NULL = none */
	char *category; /* ev_category name */
	char *kind;	/* ev_kind name, default "reject" */
	char *file;	/* config file and line, for messages */
	int line;
	int pattern_line; /* line of the pattern key (0 = not set) */
};

/*
 * Detection thresholds ([rules]). "count within window" pairs; a count of 0
 * disables a rule. See aggregator/aggregator.h for what each one means.
 */
struct rules_conf {
	bool retry_enabled;
	int64_t retry_count;
	int64_t retry_window;
	bool harvest_enabled;
	int64_t harvest_distinct;
	int64_t harvest_window;
	double harvest_ratio;
	int64_t harvest_min_attempts;
	bool backoff_enabled;
	int64_t backoff_min_interval;
	int64_t backoff_count;
	int64_t backoff_window;
	bool relay_enabled;
	int64_t relay_count;
	int64_t relay_window;
	bool auth_enabled;
	int64_t auth_count;
	int64_t auth_users;
	int64_t auth_window;
	bool protocol_enabled;
	int64_t protocol_count;
	int64_t protocol_window;
	double no_rdns_weight;
	double no_mx_weight;
	bool policy_enabled;
	int64_t policy_count;
	int64_t policy_window;
	bool flood_enabled;
	int64_t flood_ip_count;
	int64_t flood_class_count;
	int64_t flood_window;
	int64_t flood_limit_weight; /* an MTA rate-limit warning counts this many connections */
	bool class_enabled;
	int64_t class_flagged_ips;
	int64_t class_widen_classes;
	int64_t class_min_members; /* members that misbehaved each before a class crosses rules 1-9 */
	int64_t min_sessions;	   /* connections with abuse signals a rule needs (not floods) */
	int64_t returned_count;	   /* connections refused by our own block that make it drop (0 = off) */
	double success_factor;
	int64_t success_window;
	int64_t block_base;
	int64_t block_max;
	double block_factor;
	double block_jitter;
	double score_defer;
	double score_reject;
	double score_drop;
	int64_t max_tracked_ips;
	int64_t idle_evict;
	int64_t evidence_lines;
	bool dry_run;
};

/* The database when neither [storage] db nor --db says: an absolute path,
 * so that every command finds the same one from any directory. */
#ifndef CONFIG_DEFAULT_DB
#define CONFIG_DEFAULT_DB "/var/lib/mxwarden/mxwarden.db"
#endif

/*
 * [abuse]: reports to the abuse desks of the offenders' networks
 * (reports/abuse.h). Once the section appears (used), check-config requires
 * the reporter identity. Nothing is sent unless smtp is set.
 */
struct abuse_conf {
	bool used;		    /* an [abuse] section was read */
	int line;		    /* its line, for messages */
	char *contacts;		    /* file of "CIDR ADDRESS" lines, NULL = none */
	bool rdap;		    /* look contacts up by RDAP (off) */
	struct strv rdap_bootstrap; /* IANA RDAP bootstrap files (ipv4.json, ipv6.json) */
	int64_t rdap_ttl;	    /* seconds an RDAP answer is cached in the database */
	int64_t rdap_timeout;	    /* seconds per RDAP request */
	char *reporter_org;	    /* XARF reporter and sender: organisation */
	char *reporter_contact;	    /* ... its abuse address (also the envelope sender) */
	char *reporter_domain;	    /* ... its domain */
	int64_t max_per_contact;    /* XARF messages per contact and period; the rest: one summary */
	char *smtp;		    /* ADDR:PORT of the MTA that sends them, NULL = nothing is sent */
	int64_t smtp_timeout;	    /* seconds per SMTP reply */
	int64_t keep;		    /* seconds the written files are kept */
};

/* [report]: the digest written on a schedule (reports/schedule.h). */
struct report_conf {
	char *digest;	   /* "off", "daily" or "HH:MM" (UTC), as written */
	int64_t digest_at; /* seconds after 00:00 UTC, -1 = off (set by config_validate) */
	char *dir;	   /* where the digests are written */
	char *mail_to;	   /* also mail each digest here (through [abuse] smtp), NULL = no */
	int64_t keep;	   /* seconds the written digests are kept */
	int64_t top;	   /* the digest's top-N lists */
};

/* [notify]: a command run with a JSON document per decision on stdin
 * (reports/notify.h). */
struct notify_conf {
	struct strv command; /* absolute path and arguments, no shell; empty = off */
	int64_t interval;    /* seconds between two starts (later events are coalesced) */
	int64_t timeout;     /* seconds before the command's process group is killed */
	int64_t max_pending; /* documents kept while waiting; beyond, counted and dropped */
};

struct config {
	char *source; /* the file read, NULL when none */
	/* [storage] */
	char *db_path;
	int64_t retention_events;
	int64_t retention_rollups;
	int64_t retention_decisions;
	int64_t checkpoint_interval; /* seconds between aggregator checkpoints (0 = only at a clean stop) */
	/* [collector] */
	struct strv follow;
	struct strv journal;	  /* SYSLOG_IDENTIFIER names or globs read from the journal; empty: off */
	char *journal_directory;  /* journal files read instead of the system journal; NULL: the system\'s */
	char *format;		  /* auto, postfix, exim, sendmail */
	char *timezone;		  /* NULL = the system's */
	int timezone_line;	  /* line of the timezone key (0 = not set) */
	char *syslog_listen;	  /* NULL = off */
	struct strv syslog_allow; /* peers allowed to send (CIDRs as text); empty: loopback only */
	bool syslog_udp_remote;	  /* accept UDP from allowed peers that are not loopback (spoofable) */
	int64_t syslog_max_conn;
	int64_t syslog_max_msg;
	int64_t batch_lines;
	int64_t batch_ms;
	int64_t poll_interval;
	bool log_syslog;
	int64_t host_silence; /* seconds without a line before an MX host is flagged silent, 0 = off */
	/* [parser NAME] */
	struct parser_rule_conf *parsers;
	size_t n_parsers;
	/* [classes] */
	struct class_conf classes;
	/* [rules] */
	struct rules_conf rules;
	/* [safety] */
	/* protected_networks as written: CIDRs it adds to the built-in ranges
	 * and the host's own addresses, and "!CIDR" ranges it takes out of
	 * them (with the line of the key, 0 when not set) */
	struct prefix_list protected_add, protected_cut;
	bool protected_builtin; /* the built-in ranges apply (not "none" or "!default") */
	bool protected_local;	/* the host's own addresses apply (not "none" or "!local") */
	int protected_line;
	/* What is never blocked: the effective list, built from the above by
	 * config_protected_build() (config_validate calls it; config_defaults
	 * leaves the built-in ranges), and at the same index where each entry
	 * came from ("built-in: loopback", "this host (eth0)",
	 * "protected_networks (FILE:LINE)"). Every consumer reads this list. */
	struct prefix_list protected_networks;
	struct strv protected_src;
	struct prefix_list allow;
	struct strv allow_files;
	unsigned mta_trusted; /* TRUST_* bits: whose trusted clients are allow-listed (0 = none) */
	char *postfix_config; /* postconf -c DIR; NULL = Postfix's default */
	char *exim_config;    /* exim -C FILE; NULL = Exim's default */
	/* The clients the MTA itself trusts, as read at start and on SIGHUP
	 * (mtaconf_read), never by config_load: prefixes and, at the same
	 * index, where each came from ("postfix mynetworks"). Allow-listed
	 * like allow. */
	struct prefix_list trusted_nets;
	struct strv trusted_src;
	unsigned v4_floor;
	unsigned v6_floor;
	int64_t max_entries;
	int64_t max_change;	 /* circuit breaker: percent of entries one update may change, 0 = off */
	int64_t breaker_min;	 /* ... only once an output holds at least this many entries */
	int64_t breaker_hold;	 /* seconds a tripped breaker holds the old file */
	int64_t breaker_confirm; /* consecutive updates that confirm a held change, 0 = hold time only */
	/* [output NAME] */
	struct output_conf *outputs;
	size_t n_outputs;
	/* [web] */
	char *listen;
	char *token_file;
	char *assets_dir;	    /* NULL = the embedded assets */
	char *lookup_url;	    /* NULL = no URL in blocklist texts */
	char *blocklist_listen;	    /* NULL = off: a listener serving only blocklists and /healthz */
	char *blocklist_token_file; /* NULL = none: the blocklist listener asks no token */
	int64_t web_max_conn;
	int64_t web_per_ip_conn;
	int64_t web_timeout;
	int64_t web_threads;
	/* [abuse], [report], [notify] */
	struct abuse_conf abuse;
	struct report_conf report;
	struct notify_conf notify;
	/* What loads but deserves a word (a built-in protected range dropped,
	 * remote syslog over UDP): config_validate adds them, the caller shows
	 * them (cli_load_config logs each one as a warning). */
	struct strv warnings;
};

/* A list of "FILE:LINE: message" strings. */
struct errlist {
	struct strv msgs;
};
void errlist_add(struct errlist *e, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void errlist_free(struct errlist *e);

/* Fill c with every default (mxwarden runs with no file at all). */
void config_defaults(struct config *c);
/*
 * Read the INI file at path over the defaults already in c. Every problem
 * (syntax, unknown section or key, bad value, over-long line) is added to
 * errs as "path:line: message" and reading continues, so that all mistakes
 * are reported at once. Returns 0 when errs gained nothing, -1 otherwise.
 */
int config_load(struct config *c, const char *path, struct errlist *errs);
/* Checks that need the whole file (e.g. an output without a path). */
int config_validate(struct config *c, struct errlist *errs);
void config_free(struct config *c);
/* The built-in protected ranges (loopback, RFC 1918, ...): the i-th one in
 * *p and what it is in *what (may be NULL); false past the last. */
bool config_protected_builtin(size_t i, struct prefix *p, const char **what);
/* All of them, appended to l. */
void config_protected_default(struct prefix_list *l);
/* The host's own addresses (getifaddrs), each as a /32 or /128 appended to
 * l unless l has it already, with its interface name appended to names
 * (may be NULL). A failure is logged: nothing is added. */
void config_local_addrs(struct prefix_list *l, struct strv *names);
/*
 * (Re)build c->protected_networks and c->protected_src from
 * protected_builtin, protected_local, protected_cut and protected_add.
 * Each built-in range or host address that protected_cut takes out is a
 * warning in c->warnings naming it; a cut that takes out nothing is an
 * error added to errs (may be NULL). Returns 0, or -1 when errs gained one.
 */
int config_protected_build(struct config *c, struct errlist *errs);
/* Render the effective configuration as INI text (mxwarden check-config -v). */
void config_dump(const struct config *c, struct buf *out);
/*
 * The key table itself (mxwarden check-config --keys): every section and
 * key with what its value looks like, its bounds, its default and what it
 * means, as one Markdown table per section (the README's reference) or,
 * with tsv, one line per key: SECTION, KEY, VALUE, DEFAULT, BOUNDS, MEANING
 * separated by tabs (for a man page). Every key is defined once, in
 * base/config.c's tables: the defaults, the bounds config_validate()
 * checks, this reference and config_dump() all come from there.
 */
void config_keys(struct buf *out, bool tsv);

/*
 * Mail addresses and host names as mxwarden writes them into mail headers
 * and SMTP commands: an addr-spec of dot-atoms only (no quoted local part,
 * no comments, no blanks or controls; at most 254 bytes) whose domain is a
 * host name: labels of letters, digits and '-' (not at either end), 1..63
 * bytes each, at most 253 in all. Anything else is refused, so a value that
 * passes can never break a header line or an SMTP command.
 */
bool mail_addr_ok(const char *s);
bool hostname_ok(const char *s);

/* ----------------------------------------------------------- child process */

/*
 * A command run without a shell (posix_spawnp of argv as configured), in a
 * process group of its own, stdin from stdin_fd (-1: /dev/null), stdout on
 * /dev/null, stderr collected (the first 4 KiB) through a non-blocking
 * pipe; after timeout seconds the whole group gets SIGKILL. Nothing here
 * blocks but child_kill(), which waits for the child it kills. It never
 * signals a process group it did not create. A zeroed struct is idle.
 */
struct child {
	int pid; /* 0: none running */
	int errfd;
	struct buf err;			   /* what it wrote on stderr */
	int64_t start_mono, deadline_mono; /* microseconds */
	bool killed;			   /* we killed it (timeout) */
};
/* Start argv. Returns 0, or -1 with a message in err (errsz bytes). */
int child_start(struct child *c, const struct strv *argv, int stdin_fd, int64_t timeout, char *err,
		size_t errsz);
/* Reap or kill as due: 1 when the child ended in this call (*status as
 * waitpid's, c->pid 0, c->err holding its stderr), 0 while it runs (or
 * when none runs), -1 when it was lost (reaped elsewhere). */
int child_poll(struct child *c, int *status);
/* Kill the group and wait for the child (shutdown); a no-op when idle. */
void child_kill(struct child *c);
/* "exited with status 1 after 12 ms; stderr: ..." for a log line. */
void child_describe(const struct child *c, int status, int64_t ms, struct buf *out);
/* Release the stderr buffer. */
void child_free(struct child *c);

#endif
