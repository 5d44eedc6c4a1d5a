/*
 * manual.c - what an operator does by hand, the same from the command line
 * (`mxwarden block/unblock/allow/unallow`) and from the dashboard (the API
 * with the token): block a prefix (or make the block in force on it last
 * longer), end the blocks on a prefix, allow a prefix for a while, end an
 * allow. Each is one transaction with its audit record; the running daemon
 * picks it up within a second (aggregator_sync, the allows it reads on its
 * tick).
 *
 * It must never block what may not be blocked (aggregator_blockable: the
 * floor, the allow lists, protected networks; a reserved range no
 * blocklist can hold, prefix_reserved; and the allows made by hand, read
 * from the database), nor store a reason with control characters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/internal.h"
#include "db/db.h"

void aggregator_set_allows(struct aggregator *a, const struct prefix_list *l)
{
	a->allow_manual.n = 0;
	for (size_t i = 0; l && i < l->n; i++)
		prefix_list_add(&a->allow_manual, &l->v[i]);
}

/* The reason as one line: control characters become blanks (UTF-8 text is
 * kept; every sink escapes it again), at most n-1 bytes. */
static void clean_reason(const char *s, char *out, size_t n)
{
	size_t k = 0;
	for (; s && *s && k + 1 < n; s++, k++) {
		unsigned char ch = (unsigned char)*s;
		out[k] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	out[k] = '\0';
}

struct find_manual {
	const struct prefix *p;
	struct decision found;
	bool any;
};

static int find_manual_cb(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct find_manual *f = arg;
	(void)info;
	if (d->manual && prefix_cmp(&d->prefix, f->p) == 0 && (!f->any || d->until > f->found.until)) {
		f->found = *d;
		f->any = true;
	}
	return 0;
}

struct find_allow {
	const struct prefix *p;
	bool exact; /* on exactly p, else overlapping p */
	struct db_allow found;
	char by[96], reason[256];
	bool any;
};

static int find_allow_cb(void *arg, const struct db_allow *x)
{
	struct find_allow *f = arg;
	bool hit = f->exact ? prefix_cmp(&x->prefix, f->p) == 0 : prefix_overlaps(&x->prefix, f->p);
	if (!hit || f->any)
		return 0;
	f->found = *x;
	snprintf(f->by, sizeof f->by, "%s", x->created_by ? x->created_by : "?");
	snprintf(f->reason, sizeof f->reason, "%s", x->reason ? x->reason : "");
	f->found.created_by = f->by;
	f->found.reason = f->reason;
	f->any = true;
	return 0;
}

static int db_error(struct db *db, struct buf *err)
{
	buf_printf(err, "database: %s", db_errmsg(db));
	if (db_in_batch(db))
		db_rollback(db);
	return -1;
}

int aggregator_manual_block(struct db *db, const struct aggregator *a, const struct prefix *p,
			    const struct agg_manual *m, struct decision *out, struct buf *err)
{
	char text[PREFIX_STRLEN];
	prefix_format(p, text);
	const char *why = NULL;
	if (aggregator_blockable(a, p, &why) < 0) {
		buf_printf(err, "refusing to block %s: %s", text, why);
		return -2;
	}
	if (prefix_reserved(p)) {
		/* no blocklist can hold it: a decision there would enforce nothing */
		buf_printf(err, "refusing to block %s: a reserved range that no blocklist can hold", text);
		return -2;
	}
	struct find_allow fa = {.p = p};
	if (db_allows_active(db, m->now, find_allow_cb, &fa) < 0)
		return db_error(db, err);
	if (fa.any) {
		char pa[PREFIX_STRLEN], until[TIME_STRLEN];
		prefix_format(&fa.found.prefix, pa);
		time_format_rfc3339(fa.found.until * 1000000, false, until);
		buf_printf(
		    err, "refusing to block %s: %s is allowed by hand (by %s until %s; mxwarden unallow %s)",
		    text, pa, fa.by, until, pa);
		return -2;
	}
	struct decision d;
	memset(&d, 0, sizeof d);
	d.prefix = *p;
	d.scope = prefix_is_host(p) ? SCOPE_IP : SCOPE_CLASS;
	d.response = m->response;
	str_copy(d.rule, sizeof d.rule, "manual", 6);
	clean_reason(m->reason, d.reason, sizeof d.reason);
	d.since = m->now;
	d.until = m->now + m->duration;
	d.manual = true;
	if (db_begin(db) < 0)
		return db_error(db, err);
	struct find_manual fm = {.p = p};
	if (db_decisions_active(db, m->now, find_manual_cb, &fm) < 0)
		return db_error(db, err);
	int rc = 0;
	if (fm.any) {
		/* the same prefix again: the block in force lasts longer */
		if (db_decision_extend(db, fm.found.id, d.until, d.response, d.reason, m->now) != 0 ||
		    db_audit_add(db, m->now, m->who, "block again", p, d.reason) < 0)
			return db_error(db, err);
		struct find_manual again = {.p = p};
		if (db_decision_get(db, fm.found.id, find_manual_cb, &again) < 0)
			return db_error(db, err);
		d = again.any ? again.found : fm.found;
		rc = 1;
	} else {
		json_t *ev = json_object();
		json_object_set_new(ev, "rule", json_string("manual"));
		json_object_set_new(ev, "by", json_string(m->who));
		json_object_set_new(ev, "reason", json_string(d.reason));
		json_object_set_new(ev, "duration", json_integer(m->duration));
		char *evs = json_dumps(ev, JSON_COMPACT);
		json_decref(ev);
		int r = db_decision_insert(db, &d, evs, m->who);
		free(evs);
		if (r < 0 || db_audit_add(db, m->now, m->who, "block", p, d.reason) < 0)
			return db_error(db, err);
	}
	if (db_commit(db) < 0)
		return db_error(db, err);
	*out = d;
	return rc;
}

struct ends {
	const struct prefix *p;
	int64_t ids[1024];
	size_t n;
	size_t covering; /* active decisions on wider prefixes that contain p */
};

static int pick(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct ends *e = arg;
	(void)info;
	if (prefix_contains_prefix(e->p, &d->prefix)) {
		if (e->n < MXW_ARRAY_LEN(e->ids))
			e->ids[e->n++] = d->id;
	} else if (prefix_contains_prefix(&d->prefix, e->p)) {
		e->covering++;
	}
	return 0;
}

int aggregator_manual_unblock(struct db *db, const struct prefix *p, const struct agg_manual *m, int64_t *ids,
			      size_t max, size_t *n_ended, size_t *covering, struct buf *err)
{
	char reason[256];
	clean_reason(m->reason, reason, sizeof reason);
	struct ends *e = xcalloc(1, sizeof *e);
	e->p = p;
	*n_ended = 0;
	if (db_begin(db) < 0 || db_decisions_active(db, m->now, pick, e) < 0) {
		free(e);
		return db_error(db, err);
	}
	for (size_t i = 0; i < e->n; i++) {
		int r = db_decision_end(db, e->ids[i], m->now, m->who, reason);
		if (r < 0) {
			free(e);
			return db_error(db, err);
		}
		if (r == 0) {
			if (ids && *n_ended < max)
				ids[*n_ended] = e->ids[i];
			(*n_ended)++;
		}
	}
	if ((e->n && db_audit_add(db, m->now, m->who, "unblock", p, reason) < 0) || db_commit(db) < 0) {
		free(e);
		return db_error(db, err);
	}
	if (covering)
		*covering = e->covering;
	free(e);
	return 0;
}

struct overlapped {
	const struct prefix *p;
	size_t n;
};

static int count_overlap(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct overlapped *o = arg;
	(void)info;
	o->n += prefix_overlaps(&d->prefix, o->p);
	return 0;
}

int aggregator_manual_allow(struct db *db, const struct prefix *p, const struct agg_manual *m,
			    struct db_allow *out, size_t *overridden, struct buf *err)
{
	char reason[256];
	clean_reason(m->reason, reason, sizeof reason);
	struct find_allow fa = {.p = p, .exact = true};
	struct overlapped ov = {.p = p};
	if (db_begin(db) < 0 || db_allows_active(db, m->now, find_allow_cb, &fa) < 0 ||
	    db_decisions_active(db, m->now, count_overlap, &ov) < 0)
		return db_error(db, err);
	int rc = 0;
	struct db_allow al;
	memset(&al, 0, sizeof al);
	if (fa.any) {
		/* the same prefix again: the allow in force lasts longer */
		if (db_allow_extend(db, fa.found.id, m->now + m->duration, reason) != 0 ||
		    db_audit_add(db, m->now, m->who, "allow again", p, reason) < 0)
			return db_error(db, err);
		al = fa.found;
		al.until = MXW_MAX(al.until, m->now + m->duration);
		rc = 1;
	} else {
		al.prefix = *p;
		al.since = m->now;
		al.until = m->now + m->duration;
		al.reason = reason;
		al.created_by = m->who;
		if (db_allow_insert(db, &al) < 0 || db_audit_add(db, m->now, m->who, "allow", p, reason) < 0)
			return db_error(db, err);
	}
	if (db_commit(db) < 0)
		return db_error(db, err);
	if (out) {
		*out = al;
		out->reason = NULL; /* borrowed from here */
		out->created_by = NULL;
	}
	if (overridden)
		*overridden = ov.n;
	return rc;
}

struct allow_ends {
	const struct prefix *p;
	int64_t ids[1024];
	size_t n;
};

static int pick_allow(void *arg, const struct db_allow *x)
{
	struct allow_ends *e = arg;
	if (prefix_contains_prefix(e->p, &x->prefix) && e->n < MXW_ARRAY_LEN(e->ids))
		e->ids[e->n++] = x->id;
	return 0;
}

int aggregator_manual_unallow(struct db *db, const struct prefix *p, const struct agg_manual *m,
			      size_t *n_ended, struct buf *err)
{
	char reason[256];
	clean_reason(m->reason, reason, sizeof reason);
	struct allow_ends *e = xcalloc(1, sizeof *e);
	e->p = p;
	*n_ended = 0;
	if (db_begin(db) < 0 || db_allows_active(db, m->now, pick_allow, e) < 0) {
		free(e);
		return db_error(db, err);
	}
	for (size_t i = 0; i < e->n; i++) {
		int r = db_allow_end(db, e->ids[i], m->now, m->who, reason);
		if (r < 0) {
			free(e);
			return db_error(db, err);
		}
		*n_ended += r == 0;
	}
	if ((e->n && db_audit_add(db, m->now, m->who, "unallow", p, reason) < 0) || db_commit(db) < 0) {
		free(e);
		return db_error(db, err);
	}
	free(e);
	return 0;
}
