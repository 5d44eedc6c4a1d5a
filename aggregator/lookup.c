/*
 * lookup.c - "is this sender blocked, and why?": one JSON answer computed
 * from the database and the blocklist files, shared by `mxwarden lookup`
 * and the web API (/api/v1/lookup/Q) so both say the same thing. The
 * contract (states, keys) is docs/api.md, "Lookup".
 *
 * A query is an address or prefix in any form a log or a ticket writes it
 * (prefix_parse_pasted: ip:port, [v6], name[ip]), an e-mail address, or a
 * sender domain; the last two list the client addresses seen with them
 * (lookup_mail.c), each with its state.
 *
 * "Blocked" means enforced: a blocklist file ([output]) holds an entry
 * covering the address. What the files hold and why a decision is not in
 * them is the emitters' knowledge (emitters_lookup_json), handed in as a
 * function: this module sits before the emitters.
 *
 * It must never write to the database, nor need a running aggregator.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/lookup_int.h"
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
		json_object_set_new(o, "counts",
				    json_object_get(ev, "counts") ? jdup(ev, "counts") : json_object());
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
		json_object_set_new(o, "explain", json_object());
		json_object_set_new(o, "sessions", json_null());
	}
	json_object_set_new(o, "evidence", lines);
	json_t *ch = db_decision_changes_json(db, (int64_t)json_integer_value(json_object_get(d, "id")));
	json_object_set_new(o, "changes", ch ? ch : json_array());
	return o;
}

/* ------------------------------------------------------------ the context */

static int add_active(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct lookup_ctx *x = arg;
	(void)info;
	if (x->n_active == x->cap_active) {
		x->cap_active = x->cap_active ? x->cap_active * 2 : 64;
		x->active = xrealloc(x->active, x->cap_active * sizeof *x->active);
	}
	x->active[x->n_active++] = *d;
	return 0;
}

static int add_allow(void *arg, const struct db_allow *a)
{
	struct lookup_ctx *x = arg;
	prefix_list_add(&x->allows, &a->prefix);
	json_t *j = db_allow_json(a, x->now);
	json_array_append_new(x->allow_rows, j);
	return 0;
}

int lookup_ctx_init(struct lookup_ctx *x, struct db *db, const struct config *c, int64_t now,
		    agg_outputs_fn outputs, struct buf *err)
{
	memset(x, 0, sizeof *x);
	x->db = db;
	x->c = c;
	x->now = now;
	x->outputs = outputs;
	x->allow_rows = json_array();
	if (db_decisions_active(db, now, add_active, x) < 0 || db_allows_active(db, now, add_allow, x) < 0) {
		buf_printf(err, "database: %s", db_errmsg(db));
		lookup_ctx_free(x);
		return -1;
	}
	return 0;
}

void lookup_ctx_free(struct lookup_ctx *x)
{
	free(x->active);
	prefix_list_free(&x->allows);
	json_decref(x->allow_rows);
	memset(x, 0, sizeof *x);
}

/* ------------------------------------------------------------- the state */

/* What lets q through whatever is decided: "allow made by hand", "allow
 * list", "trusted by the MTA", "protected network"; NULL when nothing.
 * In emit_check()'s order: a reserved range (prefix_reserved) comes
 * between the allows and the protected networks, so a protected network
 * is only the answer for what is not reserved. */
static const char *allowed_by(const struct lookup_ctx *x, const struct prefix *q)
{
	if (prefix_list_overlaps(&x->allows, q))
		return "allow made by hand";
	if (prefix_list_overlaps(&x->c->allow, q))
		return "allow list ([safety] allow)";
	if (prefix_list_overlaps(&x->c->trusted_nets, q))
		return "trusted by the MTA ([safety] mta_trusted)";
	if (!prefix_reserved(q) && prefix_list_overlaps(&x->c->protected_networks, q))
		return "protected network ([safety] protected_networks)";
	return NULL;
}

static void time_text(int64_t secs, char *out)
{
	time_format_rfc3339(secs * 1000000, false, out);
}

static long long jint(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* The short phrase of a reason code (state_reason). */
static const char *reason_phrase(const char *why)
{
	static const char *const map[][2] = {
	    {"dry_run", "dry run"},
	    {"no_output", "no output"},
	    {"min_response", "below min_response"},
	    {"family", "address family not carried"},
	    {"scope", "scope not carried"},
	    {"floor", "shorter than the [safety] floor"},
	    {"allowed", "allow list"},
	    {"protected", "protected network"},
	    {"reserved", "reserved range"},
	    {"expired", "expired"},
	    {"capped", "over max_entries"},
	    {"not_written", "not written yet"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(map); i++)
		if (!strcmp(map[i][0], why))
			return map[i][1];
	return why;
}

/* allowed_by()'s text as a short phrase. */
static const char *allow_phrase(const char *allow)
{
	if (!strncmp(allow, "allow made", 10))
		return "allowed by hand";
	if (!strncmp(allow, "allow list", 10))
		return "allow list";
	if (!strncmp(allow, "trusted", 7))
		return "trusted by the MTA";
	return "protected network";
}

/*
 * The answer's state and its sentence (docs/api.md, "Lookup"):
 * blocked, partly_blocked, decided_not_enforced, allowed, clean, never_seen.
 */
static void set_state(struct lookup_ctx *x, json_t *o, const struct prefix *q, const struct decision *target,
		      json_t *outputs, json_t *seen, json_t *recent, size_t n_inside, size_t n_history)
{
	char qt[PREFIX_STRLEN];
	prefix_format(q, qt);
	json_t *by = json_array();
	size_t i;
	json_t *out;
	const char *first_inside = NULL;
	json_array_foreach(outputs, i, out)
	{
		if (json_is_true(json_object_get(out, "holds")))
			json_array_append(by, json_object_get(out, "output"));
		if (!first_inside && jint(out, "inside") > 0)
			first_inside =
			    json_string_value(json_array_get(json_object_get(out, "inside_entries"), 0));
	}
	const char *allow = allowed_by(x, target ? &target->prefix : q);
	const char *state, *reason = NULL;
	struct buf s = BUF_INIT;
	json_t *ne = json_null();
	char since[TIME_STRLEN], until[TIME_STRLEN];
	if (json_array_size(by)) {
		state = "blocked";
		buf_printf(&s, "blocked");
		if (target) {
			time_text(target->since, since);
			time_text(target->until, until);
			char tp[PREFIX_STRLEN];
			prefix_format(&target->prefix, tp);
			buf_printf(&s, " (%s) by decision #%lld on %s, rule %s, since %s until %s",
				   response_name(target->response), (long long)target->id, tp, target->rule,
				   since, until);
		} else {
			buf_printf(&s,
				   ": a blocklist file holds it, but no decision is in force (the file is "
				   "stale: is mxwarden run running?)");
		}
		buf_appends(&s, "; enforced by ");
		json_t *n;
		json_array_foreach(by, i, n) buf_printf(&s, "%s%s", i ? ", " : "", json_string_value(n));
	} else if (first_inside) {
		state = "partly_blocked";
		buf_printf(&s, "partly blocked: %s inside %s is blocked, %s as a whole is not", first_inside,
			   qt, qt);
	} else if (target && allow) {
		state = "allowed";
		buf_printf(&s, "allowed (%s): decision #%lld (%s) is in force but no blocklist carries it",
			   allow, (long long)target->id, target->rule);
		ne = json_pack("{s:s, s:s}", "reason", "allowed", "detail", allow);
		reason = allow_phrase(allow);
	} else if (target) {
		state = "decided_not_enforced";
		const char *why = NULL;
		struct buf detail = BUF_INIT;
		if (prefix_reserved(&target->prefix)) {
			/* no configuration makes it enforceable: said before
			 * "no output" or "dry run", which a change could lift */
			why = "reserved";
			buf_appends(&detail, PREFIX_RESERVED_TEXT);
		} else if (x->c->rules.dry_run && !target->manual) {
			why = "dry_run";
			buf_appends(&detail, "[rules] dry_run is on: automatic decisions reach no blocklist");
		} else if (x->c->n_outputs == 0) {
			why = "no_output";
			buf_appends(&detail, "no [output] is configured: no blocklist carries any decision");
		} else {
			json_array_foreach(outputs, i, out)
			{
				const char *w = json_string_value(json_object_get(out, "why"));
				if (!w)
					w = "not_written";
				if (!why)
					why = w;
				const char *d = json_string_value(json_object_get(out, "detail"));
				buf_printf(&detail, "%s[output %s] %s", detail.len ? "; " : "",
					   json_string_value(json_object_get(out, "output")),
					   d ? d : "does not hold it");
			}
		}
		buf_printf(&s, "decided but not enforced: decision #%lld (%s, %s) %s", (long long)target->id,
			   target->rule, response_name(target->response), buf_str(&detail));
		if (!strcmp(why, "min_response") && target->response == RESP_OBSERVE)
			reason = "observe (flagged, not blocked)";
		else
			reason = reason_phrase(why);
		ne = json_pack("{s:s, s:s}", "reason", why, "detail", buf_str(&detail));
		buf_free(&detail);
	} else if (allow) {
		state = "allowed";
		buf_printf(&s, "allowed (%s): never blocked", allow);
		reason = allow_phrase(allow);
	} else if (prefix_reserved(q)) {
		/* no decision, and none could ever be enforced on it */
		state = "allowed";
		buf_printf(&s, "allowed (reserved range): never blocked; %s", PREFIX_RESERVED_TEXT);
		reason = reason_phrase("reserved");
	} else {
		long long conns = seen ? jint(seen, "connections") : 0;
		long long events = recent ? jint(recent, "total") : 0;
		if (conns > 0 || events > 0 || n_history > 0 || n_inside > 0) {
			state = "clean";
			buf_printf(&s, "not blocked");
			if (seen && conns > 0) {
				json_t *dl = json_object_get(seen, "delivered");
				buf_printf(&s, ": seen %lld connection%s", conns, conns == 1 ? "" : "s");
				if (json_is_integer(dl))
					buf_printf(&s, ", %lld message%s delivered",
						   (long long)json_integer_value(dl),
						   json_integer_value(dl) == 1 ? "" : "s");
				buf_printf(&s, ", %lld refused", jint(seen, "refused"));
				const char *lh = json_string_value(json_object_get(seen, "last_hour"));
				if (lh)
					buf_printf(&s, ", last seen in the hour from %s", lh);
			} else if (events > 0) {
				buf_printf(&s, ": %lld stored event%s in the last day", events,
					   events == 1 ? "" : "s");
			}
			if (n_history)
				buf_printf(&s, "; %zu earlier decision%s, none in force", n_history,
					   n_history == 1 ? "" : "s");
		} else {
			state = "never_seen";
			buf_printf(&s, "never seen: no connection or event of %s is stored", qt);
		}
	}
	json_object_set_new(o, "state", json_string(state));
	json_object_set_new(o, "blocked", json_boolean(strcmp(state, "blocked") == 0));
	json_object_set_new(o, "enforced_by", by);
	json_object_set_new(o, "not_enforced", ne);
	/* the reason as a short phrase, for a state that is not plain */
	json_object_set_new(o, "state_reason", reason ? json_string(reason) : json_null());
	json_object_set_new(o, "summary", json_string(buf_str(&s)));
	buf_free(&s);
}

/* ---------------------------------------------------------- an address */

json_t *lookup_prefix_json(struct lookup_ctx *x, const struct prefix *q, const char *query, bool brief,
			   struct buf *err)
{
	struct db *db = x->db;
	json_t *hist = db_history_json(db, q, x->now);
	if (!hist) {
		buf_printf(err, "database: %s", db_errmsg(db));
		return NULL;
	}
	char text[PREFIX_STRLEN];
	prefix_format(q, text);
	json_t *o = json_object();
	json_object_set_new(o, "query", json_string(query));
	json_object_set_new(o, "kind", json_string(prefix_is_host(q) ? "address" : "prefix"));
	json_object_set_new(o, "prefix", json_string(text));
	/* the decision in force: the one covering the query, the narrowest
	 * first (an IP decision explains better than its class's) */
	json_t *in_force = NULL;
	int best_len = -1;
	json_t *history = json_array(), *inside = json_array();
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(hist, "items"), i, d)
	{
		struct prefix dp;
		const char *ps = json_string_value(json_object_get(d, "prefix"));
		if (!ps || prefix_parse(&dp, ps, strlen(ps), false) < 0)
			continue;
		bool active = json_is_true(json_object_get(d, "active"));
		if (active && prefix_contains_prefix(&dp, q) && (int)dp.len > best_len) {
			best_len = dp.len;
			in_force = d;
		}
	}
	const struct decision *target = NULL;
	json_array_foreach(json_object_get(hist, "items"), i, d)
	{
		struct prefix dp;
		const char *ps = json_string_value(json_object_get(d, "prefix"));
		if (!ps || prefix_parse(&dp, ps, strlen(ps), false) < 0)
			continue;
		bool active = json_is_true(json_object_get(d, "active"));
		if (active && !prefix_contains_prefix(&dp, q)) {
			/* narrower, inside a queried prefix: partly */
			json_array_append_new(inside, decision_view(db, d));
			continue;
		}
		if (d != in_force && !brief)
			json_array_append_new(history, decision_view(db, d));
	}
	int64_t tid = in_force ? (int64_t)json_integer_value(json_object_get(in_force, "id")) : 0;
	if (!tid && json_array_size(inside))
		tid = (int64_t)json_integer_value(json_object_get(json_array_get(inside, 0), "id"));
	for (size_t k = 0; tid && k < x->n_active; k++)
		if (x->active[k].id == tid)
			target = &x->active[k];
	json_object_set_new(o, "decision", in_force ? decision_view(db, in_force) : json_null());
	json_object_set_new(o, "inside", inside);
	size_t n_history = json_array_size(history);
	json_object_set_new(o, "history", history);
	json_decref(hist);
	/* what the blocklist files hold */
	json_t *outputs = x->outputs ? x->outputs(x->c, &x->allows, x->active, x->n_active, target, q, x->now)
				     : json_array();
	/* what was seen of it: connections, delivered, refused (hourly counts) */
	json_t *seen = NULL;
	if (prefix_is_host(q))
		seen = db_seen_json(db, q, SCOPE_IP, 0);
	else if (q->len == (q->addr.family == IPADDR_V4 ? x->c->classes.v4_len : x->c->classes.v6_len))
		seen = db_seen_json(db, q, SCOPE_CLASS, 0);
	json_t *recent = db_recent_counts_json(db, q, x->now - 86400);
	if (!recent) {
		json_decref(o);
		json_decref(outputs);
		json_decref(seen);
		buf_printf(err, "database: %s", db_errmsg(db));
		return NULL;
	}
	set_state(x, o, q, target, outputs, seen, recent, json_array_size(inside), n_history);
	json_object_set_new(o, "outputs", outputs);
	json_object_set_new(o, "seen", seen ? seen : json_null());
	json_object_set_new(o, "recent", recent);
	if (prefix_is_host(q) && !brief) {
		struct prefix cls;
		ipaddr_class(&q->addr, &x->c->classes, &cls);
		prefix_format(&cls, text);
		json_t *rc = db_recent_counts_json(db, &cls, x->now - 86400);
		if (rc) {
			json_object_set_new(rc, "prefix", json_string(text));
			json_object_set_new(o, "recent_class", rc);
		}
	}
	/* allows made by hand that overlap it, with who and why */
	json_t *allows = json_array();
	json_array_foreach(x->allow_rows, i, d)
	{
		struct prefix ap;
		const char *ps = json_string_value(json_object_get(d, "prefix"));
		if (ps && prefix_parse(&ap, ps, strlen(ps), false) == 0 && prefix_overlaps(&ap, q))
			json_array_append(allows, d);
	}
	json_object_set_new(o, "allows", allows);
	json_object_set_new(o, "protected", json_boolean(prefix_list_overlaps(&x->c->protected_networks, q)));
	json_object_set_new(
	    o, "allowed",
	    json_boolean(prefix_list_overlaps(&x->c->allow, q) || prefix_list_overlaps(&x->allows, q)));
	/* the MTA's trusted clients, when the caller read them (mtaconf) */
	json_object_set_new(o, "trusted", json_boolean(prefix_list_overlaps(&x->c->trusted_nets, q)));
	json_object_set_new(o, "dry_run", json_boolean(x->c->rules.dry_run));
	return o;
}

/* ------------------------------------------------------------ the query */

/* A domain name: labels of letters, digits and '-', at least two, the last
 * not all digits. */
static bool domain_valid(const char *s)
{
	size_t n = strlen(s), labels = 0, len = 0;
	bool last_alpha = false;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char ch = s[i];
		if (ch == '.' || ch == '\0') {
			if (len == 0 || len > 63)
				return false;
			labels++;
			len = 0;
			if (ch == '\0')
				break;
			last_alpha = false;
			continue;
		}
		if (!(isalnum((unsigned char)ch) || ch == '-'))
			return false;
		last_alpha |= isalpha((unsigned char)ch) != 0;
		len++;
	}
	return labels >= 2 && last_alpha;
}

bool lookup_email_valid(const char *q)
{
	const char *at = strchr(q, '@');
	size_t n = strlen(q);
	if (!at || at == q || strchr(at + 1, '@') || !at[1] || n > 320 || at - q > 64)
		return false;
	for (const char *p = q; *p; p++)
		if (*p <= ' ' || *p > '~' || *p == '<' || *p == '>' || *p == '"' || *p == '\\')
			return false;
	return true;
}

json_t *aggregator_lookup_json(struct db *db, const struct config *c, const char *query, int64_t now,
			       agg_outputs_fn outputs, struct buf *err)
{
	if (!query || !*query) {
		buf_printf(err, "give an address, a prefix, an e-mail address or a domain");
		return NULL;
	}
	/* trimmed, without the angle brackets of an envelope address */
	char q[330];
	size_t n = strlen(query);
	while (n && isspace((unsigned char)query[n - 1]))
		n--;
	const char *p = query;
	while (n && isspace((unsigned char)*p)) {
		p++;
		n--;
	}
	if (n >= 2 && p[0] == '<' && p[n - 1] == '>') {
		p++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof q) {
		buf_printf(err, "give an address, a prefix, an e-mail address or a domain");
		return NULL;
	}
	memcpy(q, p, n);
	q[n] = '\0';
	struct prefix pf;
	char why[200] = "";
	bool is_prefix = prefix_parse_pasted(&pf, q, n, why, sizeof why) == 0;
	bool is_email = !is_prefix && strchr(q, '@');
	bool is_domain = !is_prefix && !is_email && domain_valid(q);
	if (is_email && !lookup_email_valid(q)) {
		buf_printf(err, "not a valid e-mail address");
		return NULL;
	}
	if (!is_prefix && !is_email && !is_domain) {
		/* looks like an address: say what is wrong with it */
		bool addrish = strspn(q, "0123456789abcdefABCDEF.:/[]") == n || strchr(q, '[');
		if (addrish)
			buf_printf(err, "%s", why);
		else
			buf_printf(err, "not an address, a prefix, an e-mail address or a domain name");
		return NULL;
	}
	struct lookup_ctx x;
	if (lookup_ctx_init(&x, db, c, now, outputs, err) < 0)
		return NULL;
	json_t *o = is_prefix ? lookup_prefix_json(&x, &pf, query, false, err)
			      : lookup_mail_json(&x, q, is_domain, err);
	lookup_ctx_free(&x);
	return o;
}

static int get_prefix(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	(void)info;
	*(struct prefix *)arg = d->prefix;
	return 0;
}

json_t *aggregator_lookup_id_json(struct db *db, const struct config *c, int64_t id, int64_t now,
				  agg_outputs_fn outputs, struct buf *err)
{
	struct prefix p;
	memset(&p, 0, sizeof p);
	int r = db_decision_get(db, id, get_prefix, &p);
	if (r < 0) {
		buf_printf(err, "database: %s", db_errmsg(db));
		return NULL;
	}
	if (r == 0) {
		buf_printf(err, "no decision #%lld", (long long)id);
		return NULL;
	}
	char text[PREFIX_STRLEN];
	prefix_format(&p, text);
	struct lookup_ctx x;
	if (lookup_ctx_init(&x, db, c, now, outputs, err) < 0)
		return NULL;
	json_t *o = lookup_prefix_json(&x, &p, text, false, err);
	lookup_ctx_free(&x);
	if (!o)
		return NULL;
	/* the decision asked for, in full, wherever it is in the answer */
	json_t *hist = db_history_json(db, &p, now);
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(hist, "items"), i,
			   d) if (json_integer_value(json_object_get(d, "id")) == id)
	    json_object_set_new(o, "requested", decision_view(db, d));
	json_decref(hist);
	return o;
}
