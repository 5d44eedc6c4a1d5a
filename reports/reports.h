/*
 * reports.h - the two reports a postmaster sends: the abuse digest (what
 * happened on this MX over a period: traffic by reply code and category,
 * the decisions taken, the worst senders, compared with the period before)
 * and the evidence report for an offender's network (what hosts of one
 * prefix did, which decisions that caused, and the log lines, with our
 * users' addresses redacted), to mail to its abuse desk.
 *
 * Both are built as JSON objects from the database's shared read-only
 * queries (db/db.h), then rendered as JSON, plain text or a standalone HTML
 * page by report_render(). A report never writes the database. Text that
 * came from logs (lines, reasons, addresses) is masked to printable ASCII in
 * plain text and HTML-escaped in HTML; the HTML loads nothing from anywhere.
 */
#ifndef MXWARDEN_REPORTS_H
#define MXWARDEN_REPORTS_H

#include <jansson.h>

#include "base/base.h"
#include "db/db.h"

enum report_format { REPORT_TEXT, REPORT_JSON, REPORT_HTML };

/* "text", "json" or "html"; -1 otherwise. */
int report_format_parse(const char *s);

/*
 * The digest of [from, to) (UTC seconds, from < to): {"type": "digest",
 * "generated", "from", "to", "totals": {"events", "codes": {...},
 * "categories": {...}}, "previous": (the same for the period of the same
 * length just before), "decisions": {"new", "manual", "by_rule",
 * "by_scope", "by_response", "items": [the `top` newest, each {"prefix",
 * "scope", "rule", "response", "reason", "since", "until", "active",
 * "manual"}]},
 * "active_now", "top_ips", "top_classes", "top_connecting_classes" (each
 * [{"prefix", "count", "categories"}])}. Periods longer than 2000 minutes
 * are counted by whole hours (from rounded down, to rounded up). NULL and
 * err set on a database error.
 */
json_t *report_digest_json(struct db *db, int64_t from, int64_t to, int64_t now, int top, struct buf *err);

/*
 * The evidence report for the senders inside q (or the decisions covering
 * q): {"type": "evidence", "generated", "query", "reporter" (host name),
 * "decisions": [{"prefix", "scope", "rule", "response", "reason", "since",
 * "until", "active"}], "activity": {"total", "first", "last", "kinds",
 * "categories"}, "lines": [raw log lines, oldest first, at most max_lines,
 * the newest kept], "lines_total", "redacted"}. With redact, the local
 * part of each recipient and each SMTP AUTH user name of an event is
 * replaced by "[redacted]" in its line (they are our users, not the
 * sender's). NULL and err set on a database error.
 */
json_t *report_evidence_json(struct db *db, const struct prefix *q, int64_t now, int max_lines, bool redact,
			     struct buf *err);

/* Render a report made above into out (appended). Returns 0, or -1 when r
 * is not a report. */
int report_render(const json_t *r, enum report_format f, struct buf *out);

#endif
