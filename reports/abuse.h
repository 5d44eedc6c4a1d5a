/*
 * abuse.h - abuse reports to the offenders' networks: who answers for a
 * network (a local map of prefixes to abuse contacts, optionally RDAP),
 * which decisions are worth a report, and `mxwarden abuse-report`: one
 * XARF v4 report per offending prefix and period, mailed as RFC 5965
 * extends it (multipart/report; report-type=feedback-report: a text/plain
 * part, a message/feedback-report part with Feedback-Type: xarf, the XARF
 * JSON as application/json), at most [abuse] max_per_contact per contact
 * and period and the rest as one plain summary.
 *
 * What is reported (abuse_unreportable()): automatic decisions whose
 * response is reject or drop, resting on at least two connections, on
 * senders that delivered no mail in the success window. A first offence of
 * a known sender is for the postmaster to review, not for its network's
 * abuse desk.
 *
 * Nothing is sent unless [abuse] smtp names an MTA; the envelope recipient
 * is the contact found here, never anything read from a message. What was
 * written and sent, to whom and when, is recorded in the database
 * (db_outbox_*), so a decision is reported once: a second run for the same
 * period, into any directory, writes and sends nothing. Those rows are the
 * only thing a report changes.
 *
 * Every log-derived text is escaped for its sink: masked in the text part,
 * JSON-escaped (jansson) in the XARF report, never in a header (headers
 * hold fixed words, canonical addresses and configured, checked values).
 */
#ifndef MXWARDEN_REPORTS_ABUSE_H
#define MXWARDEN_REPORTS_ABUSE_H

#include <jansson.h>

#include "base/base.h"
#include "db/db.h"

/* ------------------------------------------------------------- contacts */

struct abuse_contacts;
/*
 * Load [abuse] contacts: lines "CIDR ADDRESS" (an address or a prefix with
 * zero host bits, then a plain mail address), '#' comments and blank lines.
 * Every bad line is added to errs as FILE:LINE: message and NULL returned.
 * No file configured: an empty map. Free with abuse_contacts_free().
 */
struct abuse_contacts *abuse_contacts_load(const struct abuse_conf *a, struct errlist *errs);
void abuse_contacts_free(struct abuse_contacts *m);
/* The contact for p: the longest entry that contains p whole (a class
 * needs an entry as wide as the class). Borrowed, or NULL. */
const char *abuse_contacts_match(const struct abuse_contacts *m, const struct prefix *p);
size_t abuse_contacts_count(const struct abuse_contacts *m);

/* ------------------------------------------------------------------ run */

struct abuse_run {
	/* in */
	int64_t from, to;    /* the period: decisions made in [from, to) (UTC seconds) */
	int64_t now;	     /* the wall clock (MXWARDEN_NOW in tests) */
	const char *out_dir; /* where the messages are written */
	/* out */
	int64_t decisions;   /* decisions made in the period */
	int64_t reportable;  /* of them, worth a report */
	int64_t before;	     /* of those, covered by an earlier report */
	int64_t prefixes;    /* prefixes to report now */
	int64_t no_contact;  /* of them, with no contact (listed in the digest) */
	int64_t held;	     /* beyond max_per_contact after the period's summary went */
	int64_t written;     /* XARF messages written */
	int64_t summaries;   /* summary messages written */
	int64_t sent;	     /* messages handed to the MTA */
	int64_t send_failed; /* messages the MTA did not take (retried next run) */
	json_t *unreached;   /* [prefix, ...] with no contact (owned; json_decref it) */
};
/*
 * Report the period: read the decisions, find contacts (the map, then, with
 * [abuse] rdap, the database's RDAP cache and RDAP servers), write each
 * message into r->out_dir (mode 0640, "abuse-STAMP-...eml"), record it,
 * send what is unsent when [abuse] smtp is set (also messages of earlier
 * runs of the same period that the MTA refused for a while), and remove
 * files and stored message bodies older than [abuse] keep. db must be RW.
 * Returns 0, or -1 with err set (nothing half-recorded: a message is
 * recorded after its file is written, in one transaction).
 */
int abuse_report_run(const struct config *c, struct db *db, struct abuse_run *r, struct buf *err);

/*
 * The prefixes of the decisions made in [from, to) worth a report that no
 * report covers and for which neither the contact map nor the RDAP cache
 * knows a contact (no network is asked): [{"prefix", "rule", "response",
 * "reason", "since"}], for the digest. NULL on a database error; an empty
 * array when [abuse] is not used.
 */
json_t *abuse_uncontacted_json(const struct config *c, struct db *db, int64_t from, int64_t to, int64_t now);

#endif
