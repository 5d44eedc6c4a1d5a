/*
 * lookup.c - "is this address blocked, and why?": one JSON answer computed
 * from the database, shared by `mxwarden lookup` and the web API
 * (/api/v1/lookup/X) so both say the same thing.
 *
 * It must never write to the database, nor need a running aggregator:
 * everything comes from the stored decisions (with their evidence) and the
 * stored events. And it must never say "blocked" for what no blocklist can
 * hold: a decision on a reserved range (prefix_reserved), a protected
 * network, the allow list, the MTA's trusted clients, below the floors, or
 * an observe decision is "decided_not_enforced", with the reason.
 */
#include <string.h>

#include "aggregator/aggregator.h"
#include "db/db.h"

static json_t *jdup(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return v ? json_deep_copy(v) : json_null();
}

/* The lookup form of one stored decision object (db_history_json), with
 * the history of its upgrades ("changes", oldest first). */
static json_t *decision_view(struct db *db, json_t *d)
{
	json_t *o = json_object();
	static const char *const keys[] = {"id",	 "prefix",   "scope",	 "rule",     "reason",
					   "score",	 "response", "since",	 "until",    "manual",
					   "created_by", "active",   "ended_at", "ended_by", "end_reason"};
	for (size_t i = 0; i < MXW_ARRAY_LEN(keys); i++)
		json_object_set_new(o, keys[i], jdup(d, keys[i]));
	json_t *ev = json_object_get(d, "evidence");
	json_t *lines = json_array();
	if (json_is_object(ev)) {
		json_t *l;
		size_t i;
		json_array_foreach(json_object_get(ev, "first"), i, l) json_array_append(lines, l);
		json_array_foreach(json_object_get(ev, "last"), i, l) json_array_append(lines, l);
		json_object_set_new(o, "counts", jdup(ev, "counts"));
		json_t *ex = json_object();
		static const char *const ek[] = {"window",  "value",	  "threshold",	    "multiplier",
						 "numbers", "thresholds", "past_decisions", "lines_seen"};
		for (size_t k = 0; k < MXW_ARRAY_LEN(ek); k++)
			if (json_object_get(ev, ek[k]))
				json_object_set_new(ex, ek[k], jdup(ev, ek[k]));
		json_object_set_new(o, "explain", ex);
		/* the worst connection and the one that triggered (session.c) */
		json_object_set_new(o, "sessions", jdup(ev, "sessions"));
	} else {
		json_object_set_new(o, "counts", json_object());
		json_object_set_new(o, "sessions", json_null());
	}
	json_object_set_new(o, "evidence", lines);
	json_t *ch = db_decision_changes_json(db, (int64_t)json_integer_value(json_object_get(d, "id")));
	json_object_set_new(o, "changes", ch ? ch : json_array());
	return o;
}

/*
 * The state of the query: "blocked" (a decision in force that the
 * blocklists carry), "decided_not_enforced" (one they cannot carry, why
 * says which rule of the emitters' filter stops it), "allowed" (no
 * decision, never blockable) or "clean". The tests are those of
 * emit_filter() on the decision's prefix, in its order.
 */
static const char *enforcement(const struct config *c, const struct prefix *q, json_t *in_force,
			       const char *resp, const char **why)
{
	struct prefix p = *q;
	const char *ps = in_force ? json_string_value(json_object_get(in_force, "prefix")) : NULL;
	if (ps && prefix_parse(&p, ps, strlen(ps), false) < 0)
		p = *q;
	unsigned floor = p.addr.family == IPADDR_V4 ? MXW_MAX(c->v4_floor, 8u) : MXW_MAX(c->v6_floor, 16u);
	if (in_force && p.len < floor)
		*why = "shorter than the [safety] floor";
	else if (prefix_list_overlaps(&c->allow, &p))
		*why = "allow list";
	else if (prefix_list_overlaps(&c->trusted_nets, &p))
		*why = "trusted by the MTA";
	else if (prefix_reserved(&p) || prefix_reserved(q))
		*why = "reserved range";
	else if (prefix_list_overlaps(&c->protected_networks, &p))
		*why = "protected network";
	else if (in_force && resp && strcmp(resp, "observe") == 0)
		*why = "observe (flagged, not blocked)";
	if (!in_force)
		return *why ? "allowed" : "clean";
	return *why ? "decided_not_enforced" : "blocked";
}

json_t *aggregator_lookup_json(struct db *db, const struct config *c, const char *query, int64_t now,
			       struct buf *err)
{
	struct prefix q;
	if (!query || prefix_parse(&q, query, strlen(query), false) < 0) {
		buf_printf(err, "not an IP address or prefix");
		return NULL;
	}
	json_t *hist = db_history_json(db, &q, now);
	if (!hist) {
		buf_printf(err, "database: %s", db_errmsg(db));
		return NULL;
	}
	char text[PREFIX_STRLEN];
	prefix_format(&q, text);
	json_t *o = json_object();
	json_object_set_new(o, "query", json_string(query));
	json_object_set_new(o, "prefix", json_string(text));
	/* the decision in force: the one covering the query, the narrowest
	 * first (an IP decision explains better than its class's) */
	json_t *in_force = NULL;
	int best_len = -1;
	json_t *history = json_array();
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(hist, "items"), i, d)
	{
		struct prefix dp;
		const char *ps = json_string_value(json_object_get(d, "prefix"));
		bool covers =
		    ps && prefix_parse(&dp, ps, strlen(ps), false) == 0 && prefix_contains_prefix(&dp, &q);
		if (covers && json_is_true(json_object_get(d, "active")) && (int)dp.len > best_len) {
			best_len = dp.len;
			in_force = d;
		}
	}
	json_array_foreach(json_object_get(hist, "items"), i, d) if (d != in_force)
	    json_array_append_new(history, decision_view(db, d));
	/* what is enforced: a decision no blocklist can hold is not a block */
	const char *resp = in_force ? json_string_value(json_object_get(in_force, "response")) : NULL;
	const char *why = NULL;
	const char *state = enforcement(c, &q, in_force, resp, &why);
	json_object_set_new(o, "blocked", json_boolean(strcmp(state, "blocked") == 0));
	json_object_set_new(o, "state", json_string(state));
	json_object_set_new(o, "state_reason", why ? json_string(why) : json_null());
	json_object_set_new(o, "decision", in_force ? decision_view(db, in_force) : json_null());
	json_object_set_new(o, "history", history);
	json_decref(hist);

	json_t *recent = db_recent_counts_json(db, &q, now - 86400);
	if (!recent) {
		json_decref(o);
		buf_printf(err, "database: %s", db_errmsg(db));
		return NULL;
	}
	json_object_set_new(o, "recent", recent);
	if (prefix_is_host(&q)) {
		struct prefix cls;
		ipaddr_class(&q.addr, &c->classes, &cls);
		prefix_format(&cls, text);
		json_t *rc = db_recent_counts_json(db, &cls, now - 86400);
		if (rc) {
			json_object_set_new(rc, "prefix", json_string(text));
			json_object_set_new(o, "recent_class", rc);
		}
	}
	bool prot = prefix_list_overlaps(&c->protected_networks, &q);
	bool allow = prefix_list_overlaps(&c->allow, &q);
	json_object_set_new(o, "protected", json_boolean(prot));
	json_object_set_new(o, "allowed", json_boolean(allow));
	/* the MTA's trusted clients, when the caller read them (mtaconf) */
	json_object_set_new(o, "trusted", json_boolean(prefix_list_overlaps(&c->trusted_nets, &q)));
	return o;
}
