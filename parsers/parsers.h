/*
 * parsers.h - one mail log line in, zero or one normalized event out.
 *
 * Where it sits: right above base/. The collector feeds lines, the
 * aggregator and db consume the events. Knows Postfix, Exim and Sendmail
 * log shapes, the syslog envelopes around them (RFC 3164, RFC 3339/ISO 8601,
 * RFC 5424, journalctl short-iso, Exim's own mainlog stamps) and the custom
 * PCRE2 rules of the configuration ([parser NAME]).
 *
 * What it must never do: take the client address from anything but the
 * field the MTA itself writes at a fixed position (Postfix's first
 * name[ip] after "from " / "client=", Exim's H= host bracket, Sendmail's
 * relay=). HELO names, envelope addresses, SASL user names and reply text
 * are attacker-controlled and can imitate that field; they never decide
 * which IP is blamed. It never decides whether an address may be blocked
 * (loopback and private clients are reported like any other).
 *
 * Threading: a struct parser and its sources belong to one thread.
 * parser_new() reads the time zone once ([collector] timezone, else $TZ or
 * /etc/localtime) into a transition table (tz.c); parsing never touches the
 * environment or the C library's time-zone state, so other threads may run
 * meanwhile. Call parser_new() before starting threads that change TZ.
 * Memory: parser_parse() never allocates; spans in the event point into the
 * line or into parser-owned storage valid until the next parser_parse()
 * call on the same parser.
 */
#ifndef MXWARDEN_PARSERS_H
#define MXWARDEN_PARSERS_H

#include "base/base.h"

/* The longest line parsed; longer ones are unparsed (PARSE_R_TOO_LONG). */
#define PARSER_LINE_MAX 65536

/*
 * Why a line was not parsed (the reason out-parameter of parser_parse).
 * There is no CR reason: a CR inside a line is not a line end (a reader
 * that split there would let a message forge a second line) and stays a
 * byte of the line; a trailing CR (CRLF files) is dropped. Nor is there a
 * reason for NUL, other control bytes or bytes that are not valid UTF-8:
 * they are bytes of the line, which gives the event the clean line would
 * give (every sink shows them safely, base/utf8.c). Consumers use the
 * names (parser_reason_name), not the numbers.
 */
enum parse_reason {
	PARSE_R_NONE,		 /* parsed (or understood and irrelevant) */
	PARSE_R_TOO_LONG,	 /* longer than PARSER_LINE_MAX */
	PARSE_R_BAD_ENVELOPE,	 /* no timestamp/host/program envelope recognised */
	PARSE_R_BAD_ADDRESS,	 /* the client field holds no valid IP (999.1.1.1) */
	PARSE_R_UNKNOWN_PROGRAM, /* a program that is not a known MTA process */
	PARSE_R_UNKNOWN_MESSAGE, /* an MTA message shape not recognised */
	PARSE_R_TRUNCATED,	 /* a known shape cut short */
	PARSE_R__COUNT
};

struct parser;	      /* compiled custom rules + bounded per-MTA state (queue-id -> client map) */
struct parser_source; /* per-stream state: detected envelope format, year inference, last timestamp */

/*
 * Compile the custom rules of conf ([parser NAME]) with JIT and set up the
 * time zone (conf->timezone, NULL = the system's) and IP classes
 * (conf->classes). conf must outlive the parser. Returns NULL and adds
 * "FILE:LINE: [parser X] pattern error at offset N: ..." to errs on a bad
 * custom rule (every bad rule is reported, at its pattern's line), or
 * "FILE:LINE: [collector] timezone: unknown time zone 'X' ..." for a zone
 * that is neither a TZif file under /usr/share/zoneinfo nor a POSIX TZ
 * string. Local stamps in a skipped hour (spring forward) take the offset
 * before the gap; in a repeated hour (fall back) the first occurrence,
 * unless the stream's previous line is already past it (parsers/tz.h).
 */
struct parser *parser_new(const struct config *conf, struct errlist *errs);
void parser_free(struct parser *p); /* NULL is a no-op; frees no source */

/*
 * A stream of lines: name is the file path or "-" (used only in messages),
 * hint the MTA when known (MTA_UNKNOWN = detect per line). The source must
 * be freed before its parser.
 */
struct parser_source *parser_source_new(struct parser *p, const char *name, enum mta hint);
void parser_source_free(struct parser_source *s); /* NULL is a no-op */

/*
 * Parse one line (no trailing newline). Returns 1 with *ev filled (spans
 * point into line or parser-owned storage valid until the next call), 0 when
 * the line is understood but tells nothing about an SMTP client (qmgr,
 * outbound smtp, daemon noise), -1 when it is unparsed: *reason set
 * (PARSE_R_*). *reason is PARSE_R_NONE when the return is 0 or 1. Never
 * allocates.
 * Whatever it returns, ev->host and ev->ts_us hold the line's syslog host
 * field and time when its envelope was recognised (host SPAN_NULL when the
 * envelope has none or was not recognised): the collector counts lines
 * per MX host with them.
 * Every event has a client (has_ip) except one shape: a Sendmail rejection
 * that names only its queue id ("QID: <addr>... User unknown"), which a
 * later line of the same queue id attributes (aggregator/session.c).
 */
int parser_parse(struct parser *p, struct parser_source *s, const char *line, size_t len, struct event *ev,
		 int *reason);

/* "too_long", "bad_envelope", "bad_address", "unknown_program", ... */
const char *parser_reason_name(int reason);
int parser_reason_count(void); /* PARSE_R__COUNT */

/*
 * JSON rendering of one event in the `mxwarden parse` schema (docs/events.md):
 * one object on one line, no newline, appended to out. Always valid JSON:
 * bytes that are not valid UTF-8 become U+FFFD (base/utf8.c), control bytes
 * (NUL too) are \u-escaped.
 */
void event_to_json(const struct event *ev, struct buf *out);

/* Append s[0..n) as a JSON string literal (with quotes) under the rules above. */
void json_append_string(struct buf *out, const char *s, size_t n);

#endif
