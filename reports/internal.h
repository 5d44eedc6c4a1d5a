/*
 * internal.h - shared by the files of reports/ (and their unit tests) only.
 */
#ifndef MXWARDEN_REPORTS_INTERNAL_H
#define MXWARDEN_REPORTS_INTERNAL_H

#include "reports/abuse.h"
#include "reports/reports.h"

/* The fields of a decision object (db_blocks_json(), db_history_json())
 * that a report shows: prefix, scope, rule, response, reason, since,
 * until, active, manual. A new object. */
json_t *report_decision_brief(const json_t *d);
/* Copy the "next" cursor of a paginated answer into cursor (size n).
 * false on the last page (or a cursor that does not fit). */
bool report_next_cursor(const json_t *page, char *cursor, size_t n);
/* The raw line of a stored event object (db_events_json()), with, when
 * redact, the recipient's local part and the AUTH user name replaced by
 * "[redacted]" (our users are not the sender's to see). A new string, or
 * NULL when the event has no line. */
json_t *report_event_line(const json_t *ev, bool redact);
/* Write data to path atomically (a temp file beside it, fsync, rename),
 * mode 0640 (reports name our users' domains). 0, or -1 with err set. */
int report_write_file(const char *path, const void *data, size_t len, struct buf *err);
/* Remove the files of dir named PREFIX-YYYYMMDDTHHMMSSZ* (or ...THHMMZ*)
 * whose stamp is before `before` (UTC seconds); other files are never
 * touched. Returns how many were removed, or -1 (dir unreadable). */
int report_prune_dir(const char *dir, const char *prefix, int64_t before);
/* "YYYYMMDDTHHMMSSZ" of t (UTC), for file names. */
#define REPORT_STAMP_LEN 17
void report_stamp(int64_t t, char out[REPORT_STAMP_LEN]);

/* ------------------------------------------------------------ mail.c */

/* Quoted-printable (RFC 2045 6.7) of s[0..n) ('\n' line ends) appended as
 * CRLF lines of at most 76 characters; also "From " at a line start is
 * encoded. The output never contains "=_". */
void mail_qp(struct buf *out, const char *s, size_t n);
/* Base64 of data; line > 0: CRLF every `line` characters and at the end. */
void mail_base64(struct buf *out, const void *data, size_t n, size_t line);
/* RFC 5322 date of t (UTC): "Sat, 28 Nov 2026 00:00:00 +0000". */
#define MAIL_DATE_LEN 40
void mail_date(int64_t t, char out[MAIL_DATE_LEN]);
/* n random bytes (getrandom; fatal when the kernel refuses). */
void mail_random(void *p, size_t n);
/* A random UUID, version 4 (the XARF report_id). */
#define MAIL_UUID_LEN 37
void mail_uuid(char out[MAIL_UUID_LEN]);
/* A random MIME boundary "=_mxw_" + 32 hex digits: "=_" never occurs in a
 * quoted-printable or base64 body. */
#define MAIL_BOUNDARY_LEN 48
void mail_boundary(char out[MAIL_BOUNDARY_LEN]);
/* "Name: value" CRLF; BUG() when value holds CR or LF (callers pass fixed
 * words, canonical addresses and checked addresses only). */
void mail_header(struct buf *out, const char *name, const char *value);
/* A display name: a quoted-string when printable ASCII, else RFC 2047
 * encoded-words (UTF-8, base64); controls become '?'. */
void mail_phrase(struct buf *out, const char *s);
/* "Name: \"Display\" <addr>" CRLF; addr must pass mail_addr_ok(). */
void mail_address_header(struct buf *out, const char *name, const char *display, const char *addr);
/* Whether body holds boundary (then another is drawn). */
bool mail_body_has(const struct buf *body, const char *boundary);

/* ------------------------------------------------------------ smtp.c */

enum { SMTP_OK = 0, SMTP_TEMP = -1, SMTP_PERM = -2 };
/*
 * Hand msg (an RFC 5322 message, CRLF or LF lines) to the MTA at addrport
 * (ADDR:PORT, [v6]:PORT) for the one envelope recipient rcpt, envelope
 * sender from, greeting with helo. Each reply is awaited at most timeout
 * seconds. SMTP_OK when the MTA accepted it; SMTP_TEMP (connection trouble,
 * 4xx) or SMTP_PERM (5xx, or an address that is not plain) with err set.
 */
int smtp_send(const char *addrport, const char *helo, int64_t timeout, const char *from, const char *rcpt,
	      const char *msg, size_t len, struct buf *err);

/* The name mxwarden greets an MTA with: the host name when it is one,
 * else [abuse] reporter_domain. */
void abuse_helo_name(const struct abuse_conf *a, char *out, size_t n);

/* ------------------------------------------------------------ rdap.c */

struct rdap;
/* Load the IANA bootstrap files (RFC 9224) named by a->rdap_bootstrap.
 * NULL with err set when one cannot be read or is not a bootstrap file. */
struct rdap *rdap_new(const struct abuse_conf *a, struct buf *err);
void rdap_free(struct rdap *r);
/* The RDAP base URL responsible for ip (the longest bootstrap prefix), or
 * NULL. Borrowed. */
const char *rdap_server(const struct rdap *r, const struct ipaddr *ip);
/*
 * From an RDAP answer for an IP network (RFC 9083): the e-mail address of
 * the vCard of the entity with role "abuse" nearest the top (entities
 * nest), if it passes mail_addr_ok() ("" otherwise), and the network's
 * range (startAddress, endAddress; [ip, ip] when absent or not holding
 * ip). 0, or -1 when the text is not an RDAP object.
 */
int rdap_parse(const char *json, size_t len, const struct ipaddr *ip, char *contact, size_t csz,
	       struct ipaddr *lo, struct ipaddr *hi);
/* Ask the responsible server about ip (HTTP GET BASE/ip/ADDR, redirects
 * to https only, the answer at most 1 MiB, a->rdap_timeout) and parse the
 * answer. 0, or -1 with err set. */
int rdap_query(const struct rdap *r, const struct abuse_conf *a, const struct ipaddr *ip, char *contact,
	       size_t csz, struct ipaddr *lo, struct ipaddr *hi, struct buf *err);

/* ------------------------------------------------------------ xarf.c */

/* What an abuse report says about one offending prefix. */
struct abuse_item {
	struct decision d; /* the newest reportable decision on the prefix */
	json_t *evidence;  /* its evidence object (owned) */
	int64_t *ids;	   /* every decision of the period this report covers */
	size_t n_ids;
	char prefix[PREFIX_STRLEN]; /* the source: an address (host) or a CIDR */
	char contact[256];	    /* the envelope recipient */
	const char *contact_src;    /* "map", "rdap" */
	int64_t first_seen, last_seen;
	/* from the stored events of the prefix in [first_seen, last_seen] */
	int port;	     /* the newest client port logged, 0 = none */
	char smtp_from[256]; /* the newest envelope sender that is a plain address */
	json_t *lines;	     /* the newest stored lines, redacted, oldest first (owned) */
	int64_t lines_total; /* stored lines of the window */
	json_t *targets;     /* distinct "[redacted]@domain" recipients tried (owned) */
	json_t *categories;  /* {category: count} of those events (owned) */
	/* the XARF type (abuse_classify) */
	const char *category, *type, *threat;
};
void abuse_item_free(struct abuse_item *it);
/* How many connections a decision rests on: the bad connections (sessions
 * and numbers), and for the rules that count connections (flood, returned)
 * and for classes, those connections. */
int64_t abuse_sessions(const struct decision *d, const json_t *evidence);
/* NULL when d may be reported, else why not (a fixed phrase): a reject or
 * drop, not manual, resting on at least 2 connections, no accepted mail in
 * the success window. */
const char *abuse_unreportable(const struct decision *d, const json_t *evidence);
/* Set it->category, type and threat from the rule and what is known
 * (README "Abuse reports" documents the table). */
void abuse_classify(struct abuse_item *it);
/* The XARF v4 report of it (a new object); report_id a UUID. */
json_t *abuse_xarf_json(const struct abuse_conf *a, const struct abuse_item *it, const char *report_id);
/* The human-readable part (UTF-8 text, '\n' lines): what the prefix did,
 * when, the counts, the evidence lines; log text masked. */
void abuse_text(const struct abuse_conf *a, const struct abuse_item *it, const char *report_id,
		struct buf *out);
/* The whole multipart/report message (CRLF lines) for it; date = now. */
void abuse_message(const struct abuse_conf *a, const struct abuse_item *it, const char *report_id,
		   int64_t now, struct buf *out);
/* A plain text/plain message to contact listing items[0..n) (the ones
 * beyond max_per_contact). */
void abuse_summary_message(const struct abuse_conf *a, const char *contact, struct abuse_item *const *items,
			   size_t n, int64_t from, int64_t to, int64_t now, struct buf *out);

#endif
