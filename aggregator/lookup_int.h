/*
 * lookup_int.h (internal to aggregator/) - what lookup.c and lookup_mail.c
 * share: the context of one lookup (the decisions and allows in force,
 * read once) and the answer for one address or prefix.
 */
#ifndef MXWARDEN_AGG_LOOKUP_INT_H
#define MXWARDEN_AGG_LOOKUP_INT_H

#include "aggregator/aggregator.h"

struct lookup_ctx {
	struct db *db;
	const struct config *c;
	int64_t now;
	agg_outputs_fn outputs;	 /* may be NULL: nothing known of the files */
	struct decision *active; /* in force at now */
	size_t n_active, cap_active;
	struct prefix_list allows; /* allows made by hand in force */
	json_t *allow_rows;	   /* ... as db_allow_json objects */
};

/* Read the decisions and allows in force. 0, or -1 (err; x freed). */
int lookup_ctx_init(struct lookup_ctx *x, struct db *db, const struct config *c, int64_t now,
		    agg_outputs_fn outputs, struct buf *err);
void lookup_ctx_free(struct lookup_ctx *x);
/* The answer for q (query: as the user wrote it). brief: without the
 * history and the class's recent counts (the senders of an e-mail
 * lookup). NULL on a database error (err). */
json_t *lookup_prefix_json(struct lookup_ctx *x, const struct prefix *q, const char *query, bool brief,
			   struct buf *err);
/* The clients seen with an e-mail address (as sender or recipient) or a
 * sender domain in the stored events of the last days, each with its
 * state. NULL on a database error (err). */
json_t *lookup_mail_json(struct lookup_ctx *x, const char *q, bool domain, struct buf *err);
bool lookup_email_valid(const char *q);

#endif
