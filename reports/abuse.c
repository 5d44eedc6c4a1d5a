/*
 * abuse.c - `mxwarden abuse-report`: the decisions of a period worth a
 * report, grouped by prefix, their contacts (the map, then RDAP), the
 * evidence gathered from the stored events, one message per prefix (at
 * most max_per_contact per contact and period, then one summary), written,
 * recorded, sent when [abuse] smtp is set, and old files pruned.
 *
 * The order is what keeps "once": a message is recorded (with the
 * decisions it covers) right after its file is written, and marked sent
 * right after the MTA accepted it. A crash between writing and recording
 * leaves a file that a later run writes again (never sent twice); one
 * between acceptance and marking is the only way a message can go twice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reports/internal.h"

#define EVIDENCE_LINES 10   /* lines shown per report */
#define EVENTS_SCAN    5000 /* stored events read per prefix at most */
#define TARGETS_MAX    20   /* distinct targets listed as probed resources */
#define SEND_ATTEMPTS  5    /* an unsent message is tried this many times */

/* ------------------------------------------------------------ candidates */

struct made {
	struct decision *d;
	json_t **ev;
	size_t n;
};

static int collect_made(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct made *m = arg;
	m->d = xrealloc(m->d, (m->n + 1) * sizeof *m->d);
	m->ev = xrealloc(m->ev, (m->n + 1) * sizeof *m->ev);
	m->d[m->n] = *d;
	m->ev[m->n] = info->evidence_json ? json_loads(info->evidence_json, 0, NULL) : NULL;
	m->n++;
	return 0;
}

static int cmp_item_prefix(const void *a, const void *b)
{
	const struct abuse_item *x = a, *y = b;
	int c = prefix_cmp(&x->d.prefix, &y->d.prefix);
	return c ? c : (x->d.since < y->d.since ? -1 : x->d.since > y->d.since);
}

/* The reportable decisions of [from, to) not covered yet, one item per
 * prefix (the newest decision speaks, every id is covered). Counts into r
 * when it is not NULL. */
static int candidates(struct db *db, int64_t from, int64_t to, struct abuse_run *r, struct abuse_item **out,
		      size_t *nout)
{
	struct made m = {0};
	if (db_decisions_made(db, from, to, collect_made, &m) < 0) {
		for (size_t i = 0; i < m.n; i++)
			json_decref(m.ev[i]);
		free(m.d);
		free(m.ev);
		return -1;
	}
	struct abuse_item *v = NULL;
	size_t n = 0;
	int rc = 0;
	for (size_t i = 0; i < m.n; i++) {
		if (r)
			r->decisions++;
		if (abuse_unreportable(&m.d[i], m.ev[i])) {
			json_decref(m.ev[i]);
			continue;
		}
		if (r)
			r->reportable++;
		int seen = rc < 0 ? -1 : db_abuse_reported(db, m.d[i].id);
		if (seen != 0) {
			if (seen < 0)
				rc = -1;
			else if (r)
				r->before++;
			json_decref(m.ev[i]);
			continue;
		}
		v = xrealloc(v, (n + 1) * sizeof *v);
		memset(&v[n], 0, sizeof v[n]);
		v[n].d = m.d[i];
		v[n].evidence = m.ev[i];
		n++;
	}
	free(m.d);
	free(m.ev);
	/* one item per prefix: the newest decision, with every id */
	if (n)
		qsort(v, n, sizeof *v, cmp_item_prefix);
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && prefix_cmp(&v[j + 1].d.prefix, &v[i].d.prefix) == 0)
			j++;
		struct abuse_item it = v[j];
		it.ids = xcalloc(j - i + 1, sizeof *it.ids);
		for (size_t x = i; x <= j; x++) {
			it.ids[it.n_ids++] = v[x].d.id;
			if (x != j)
				json_decref(v[x].evidence);
		}
		if (prefix_is_host(&it.d.prefix))
			ipaddr_format(&it.d.prefix.addr, it.prefix);
		else
			prefix_format(&it.d.prefix, it.prefix);
		v[k++] = it;
		i = j + 1;
	}
	*out = v;
	*nout = k;
	return rc;
}

static void items_free(struct abuse_item *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		abuse_item_free(&v[i]);
	free(v);
}

/* -------------------------------------------------------------- contacts */

/* The contact of one address by RDAP: the cache, else (network) a query,
 * cached with its range. 1 with out set, 0 none known, -1 the query failed
 * (logged; not cached). */
static int rdap_contact(const struct config *c, struct db *db, const struct rdap *rd, const struct ipaddr *ip,
			int64_t now, bool network, char *out, size_t outsz)
{
	int hit = db_rdap_get(db, ip, now, out, outsz);
	if (hit < 0)
		return -1;
	if (hit)
		return out[0] ? 1 : 0;
	if (!network || !rd)
		return 0;
	struct ipaddr lo, hi;
	struct buf err = BUF_INIT;
	char contact[256];
	if (rdap_query(rd, &c->abuse, ip, contact, sizeof contact, &lo, &hi, &err) < 0) {
		log_warn("abuse-report: RDAP: %s", buf_str(&err));
		buf_free(&err);
		return -1;
	}
	buf_free(&err);
	char a[IPADDR_STRLEN];
	ipaddr_format(ip, a);
	if (db_rdap_put(db, &lo, &hi, contact, rdap_server(rd, ip), now, now + c->abuse.rdap_ttl) < 0)
		log_warn("abuse-report: cannot cache the RDAP answer for %s: %s", a, db_errmsg(db));
	log_info("abuse-report: RDAP: %s: %s", a, contact[0] ? contact : "no abuse contact");
	str_copy(out, outsz, contact, strlen(contact));
	return contact[0] ? 1 : 0;
}

/* The last address of p. */
static void prefix_last(const struct prefix *p, struct ipaddr *out)
{
	*out = p->addr;
	for (unsigned b = p->len; b < ipaddr_bits(&p->addr); b++)
		out->a[b / 8] |= (uint8_t)(0x80u >> (b % 8));
}

/* it->contact from the map, else RDAP (both ends of a network must name
 * the same contact). true when found. */
static bool find_contact(const struct config *c, struct db *db, const struct abuse_contacts *map,
			 const struct rdap *rd, struct abuse_item *it, int64_t now, bool network)
{
	const char *m = abuse_contacts_match(map, &it->d.prefix);
	if (m) {
		str_copy(it->contact, sizeof it->contact, m, strlen(m));
		it->contact_src = "map";
		return true;
	}
	if (!c->abuse.rdap)
		return false;
	char a[256], b[256];
	if (rdap_contact(c, db, rd, &it->d.prefix.addr, now, network, a, sizeof a) != 1)
		return false;
	if (!prefix_is_host(&it->d.prefix)) {
		struct ipaddr last;
		prefix_last(&it->d.prefix, &last);
		if (rdap_contact(c, db, rd, &last, now, network, b, sizeof b) != 1 || strcmp(a, b) != 0)
			return false;
	}
	str_copy(it->contact, sizeof it->contact, a, strlen(a));
	it->contact_src = "rdap";
	return true;
}

/* -------------------------------------------------------------- evidence */

static json_int_t jint(const json_t *o, const char *k, json_int_t dflt)
{
	const json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* "[redacted]@domain" of a recipient, for the probed resources. */
static void add_target(json_t *targets, const char *to)
{
	const char *at = to ? strrchr(to, '@') : NULL;
	if (!at || !at[1] || json_array_size(targets) >= TARGETS_MAX)
		return;
	struct buf b = BUF_INIT;
	buf_appends(&b, "[redacted]");
	buf_appends(&b, at);
	size_t i;
	json_t *v;
	bool dup = false;
	json_array_foreach(targets, i, v) dup |= strcmp(json_string_value(v), buf_str(&b)) == 0;
	if (!dup)
		json_array_append_new(targets, json_string(buf_str(&b)));
	buf_free(&b);
}

/* Read the stored events of the item's prefix in its window (newest
 * first): the newest lines, the newest port and envelope sender, the
 * categories and the targets. */
static int gather(struct db *db, struct abuse_item *it)
{
	it->first_seen = jint(it->evidence, "first_seen", it->d.since);
	it->last_seen = jint(it->evidence, "last_seen", it->d.since);
	if (it->first_seen <= 0 || it->first_seen > it->last_seen)
		it->first_seen = it->last_seen = it->d.since;
	it->lines = json_array();
	it->targets = json_array();
	it->categories = json_object();
	json_t *newest = json_array();
	char cursor[128] = "";
	bool more = true;
	int64_t scanned = 0;
	for (bool first = true; more && scanned < EVENTS_SCAN; first = false) {
		json_t *p = db_events_json(db, &it->d.prefix, -1, 500, first ? NULL : cursor);
		if (!p) {
			json_decref(newest);
			return -1;
		}
		size_t i;
		json_t *ev;
		json_array_foreach(json_object_get(p, "items"), i, ev)
		{
			scanned++;
			int64_t ts = jint(ev, "ts_us", 0) / 1000000;
			if (ts > it->last_seen)
				continue;
			if (ts < it->first_seen) {
				more = false;
				break;
			}
			it->lines_total++;
			if (json_array_size(newest) < EVIDENCE_LINES) {
				json_t *l = report_event_line(ev, true);
				if (l)
					json_array_append_new(newest, l);
			}
			if (!it->port)
				it->port = (int)jint(ev, "port", 0);
			const char *from = json_string_value(json_object_get(ev, "from"));
			if (!it->smtp_from[0] && from && mail_addr_ok(from))
				str_copy(it->smtp_from, sizeof it->smtp_from, from, strlen(from));
			const char *cat = json_string_value(json_object_get(ev, "category"));
			if (cat && strcmp(cat, "none") != 0) {
				json_t *n = json_object_get(it->categories, cat);
				json_object_set_new(it->categories, cat,
						    json_integer(json_integer_value(n) + 1));
			} else if (cat) {
				const char *kind = json_string_value(json_object_get(ev, "kind"));
				json_t *n = json_object_get(it->categories, kind ? kind : "other");
				json_object_set_new(it->categories, kind ? kind : "other",
						    json_integer(json_integer_value(n) + 1));
			}
			if (cat &&
			    (strcmp(cat, "unknown_recipient") == 0 || strcmp(cat, "relay_denied") == 0))
				add_target(it->targets, json_string_value(json_object_get(ev, "to")));
		}
		if (more)
			more = report_next_cursor(p, cursor, sizeof cursor);
		json_decref(p);
	}
	for (size_t i = json_array_size(newest); i > 0; i--)
		json_array_append(it->lines, json_array_get(newest, i - 1));
	json_decref(newest);
	abuse_classify(it);
	return 0;
}

/* ------------------------------------------------------------- messages */

static int severity_cmp(const void *a, const void *b)
{
	const struct abuse_item *x = *(struct abuse_item *const *)a, *y = *(struct abuse_item *const *)b;
	int c = strcmp(x->contact, y->contact);
	if (c)
		return c;
	if (x->d.response != y->d.response)
		return x->d.response > y->d.response ? -1 : 1;
	if (x->d.score != y->d.score)
		return x->d.score > y->d.score ? -1 : 1;
	return x->d.since < y->d.since ? -1 : x->d.since > y->d.since;
}

/* A file name part from a prefix: '/' and ':' become '_' and '-'. */
static void name_part(const char *s, struct buf *out)
{
	for (; *s; s++)
		buf_appendc(out, *s == '/' ? '_' : *s == ':' ? '-' : *s);
}

static int record(struct db *db, const char *kind, const char *report_id, const char *rcpt,
		  const char *subject, const char *path, const struct buf *msg, int64_t now,
		  const int64_t *ids, size_t n, struct buf *err)
{
	if (report_write_file(path, msg->data, msg->len, err) < 0)
		return -1;
	struct db_outbox_msg m = {.kind = kind,
				  .report_id = report_id,
				  .rcpt = rcpt,
				  .subject = subject,
				  .file = path,
				  .message = msg->data,
				  .len = msg->len,
				  .written_at = now};
	if (db_outbox_add(db, &m, ids, n) < 0) {
		buf_printf(err, "cannot record %s: %s", path, db_errmsg(db));
		unlink(path); /* not recorded: not written either */
		return -1;
	}
	return 0;
}

static int write_xarf(const struct config *c, struct db *db, struct abuse_run *r, const struct abuse_item *it,
		      struct buf *err)
{
	char id[MAIL_UUID_LEN], stamp[REPORT_STAMP_LEN];
	mail_uuid(id);
	report_stamp(r->now, stamp);
	struct buf msg = BUF_INIT, path = BUF_INIT, subject = BUF_INIT;
	abuse_message(&c->abuse, it, id, r->now, &msg);
	buf_printf(&path, "%s/abuse-%s-", r->out_dir, stamp);
	name_part(it->prefix, &path);
	buf_printf(&path, "-%.8s.eml", id);
	buf_printf(&subject, "%s/%s %s", it->category, it->type, it->prefix);
	int rc = record(db, "xarf", id, it->contact, buf_str(&subject), buf_str(&path), &msg, r->now, it->ids,
			it->n_ids, err);
	if (rc == 0) {
		r->written++;
		log_info("abuse-report: %s -> %s (%s/%s, contact from the %s)", it->prefix, it->contact,
			 it->category, it->type, it->contact_src);
	}
	buf_free(&msg);
	buf_free(&path);
	buf_free(&subject);
	return rc;
}

static int write_summary(const struct config *c, struct db *db, struct abuse_run *r,
			 struct abuse_item **items, size_t n, struct buf *err)
{
	char id[MAIL_UUID_LEN], stamp[REPORT_STAMP_LEN];
	mail_uuid(id);
	report_stamp(r->now, stamp);
	struct buf msg = BUF_INIT, path = BUF_INIT, subject = BUF_INIT;
	abuse_summary_message(&c->abuse, items[0]->contact, items, n, r->from, r->to, r->now, &msg);
	buf_printf(&path, "%s/abuse-%s-summary-%.8s.eml", r->out_dir, stamp, id);
	buf_printf(&subject, "summary of %zu prefixes", n);
	size_t nids = 0;
	for (size_t i = 0; i < n; i++)
		nids += items[i]->n_ids;
	int64_t *ids = xcalloc(nids ? nids : 1, sizeof *ids);
	nids = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < items[i]->n_ids; k++)
			ids[nids++] = items[i]->ids[k];
	int rc = record(db, "summary", NULL, items[0]->contact, buf_str(&subject), buf_str(&path), &msg,
			r->now, ids, nids, err);
	if (rc == 0) {
		r->summaries++;
		log_info("abuse-report: a summary of %zu more prefixes -> %s", n, items[0]->contact);
	}
	free(ids);
	buf_free(&msg);
	buf_free(&path);
	buf_free(&subject);
	return rc;
}

/* ---------------------------------------------------------------- sending */

struct send_arg {
	const struct config *c;
	struct db *db;
	struct abuse_run *r;
	char helo[256];
};

static int send_one(void *arg, const struct db_outbox_msg *m)
{
	struct send_arg *s = arg;
	struct buf err = BUF_INIT;
	int rc = smtp_send(s->c->abuse.smtp, s->helo, s->c->abuse.smtp_timeout, s->c->abuse.reporter_contact,
			   m->rcpt, m->message, m->len, &err);
	if (rc == SMTP_OK) {
		if (db_outbox_sent(s->db, m->id, clock_now()) < 0)
			log_error("abuse-report: message %lld was sent but cannot be marked: %s",
				  (long long)m->id, db_errmsg(s->db));
		s->r->sent++;
		log_info("abuse-report: sent %s to %s", m->subject ? m->subject : m->kind, m->rcpt);
	} else {
		s->r->send_failed++;
		log_warn("abuse-report: %s to %s not sent: %s", m->subject ? m->subject : m->kind, m->rcpt,
			 buf_str(&err));
		db_outbox_failed(s->db, m->id, buf_str(&err));
	}
	buf_free(&err);
	return 0;
}

void abuse_helo_name(const struct abuse_conf *a, char *out, size_t n)
{
	if (gethostname(out, n - 1) != 0 || (out[n - 1] = '\0', !hostname_ok(out)))
		str_copy(out, n, a->reporter_domain, strlen(a->reporter_domain));
}

/* ------------------------------------------------------------------- run */

int abuse_report_run(const struct config *c, struct db *db, struct abuse_run *r, struct buf *err)
{
	if (!c->abuse.used || !c->abuse.reporter_contact) {
		buf_printf(err, "no [abuse] section: set reporter_org, reporter_contact and reporter_domain");
		return -1;
	}
	if (mkdir(r->out_dir, 0750) < 0 && errno != EEXIST) {
		buf_printf(err, "%s: %s", r->out_dir, strerror(errno));
		return -1;
	}
	struct errlist errs = {0};
	struct abuse_contacts *map = abuse_contacts_load(&c->abuse, &errs);
	if (!map) {
		for (size_t i = 0; i < errs.msgs.n; i++)
			buf_printf(err, "%s%s", i ? "; " : "", errs.msgs.v[i]);
		errlist_free(&errs);
		return -1;
	}
	errlist_free(&errs);
	struct rdap *rd = NULL;
	if (c->abuse.rdap && !(rd = rdap_new(&c->abuse, err))) {
		abuse_contacts_free(map);
		return -1;
	}
	r->unreached = json_array();
	struct abuse_item *v = NULL;
	size_t n = 0;
	int rc = candidates(db, r->from, r->to, r, &v, &n);
	struct abuse_item **reach = xcalloc(n ? n : 1, sizeof *reach);
	size_t nreach = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		r->prefixes++;
		if (!find_contact(c, db, map, rd, &v[i], r->now, true)) {
			r->no_contact++;
			json_array_append_new(r->unreached, json_string(v[i].prefix));
			continue;
		}
		if (gather(db, &v[i]) < 0) {
			buf_printf(err, "cannot read the evidence of %s: %s", v[i].prefix, db_errmsg(db));
			rc = -1;
			break;
		}
		reach[nreach++] = &v[i];
	}
	/* per contact: the worst first, max_per_contact of them as XARF
	 * reports in the period, the rest as one summary */
	qsort(reach, nreach, sizeof *reach, severity_cmp);
	int64_t window = r->now - (r->to - r->from);
	for (size_t i = 0; rc == 0 && i < nreach;) {
		size_t j = i;
		while (j < nreach && strcmp(reach[j]->contact, reach[i]->contact) == 0)
			j++;
		int64_t done = db_outbox_count(db, reach[i]->contact, "xarf", window);
		int64_t sums = done < 0 ? -1 : db_outbox_count(db, reach[i]->contact, "summary", window);
		if (done < 0 || sums < 0) {
			buf_printf(err, "%s", db_errmsg(db));
			rc = -1;
			break;
		}
		size_t k = i;
		for (; rc == 0 && k < j && done < c->abuse.max_per_contact; k++, done++)
			rc = write_xarf(c, db, r, reach[k], err);
		if (rc == 0 && k < j) {
			if (sums == 0) {
				rc = write_summary(c, db, r, reach + k, j - k, err);
			} else {
				r->held += (int64_t)(j - k);
				log_warn("abuse-report: %zu more prefixes for %s held back: the period's "
					 "%lld reports "
					 "and its summary were written",
					 j - k, reach[i]->contact, (long long)c->abuse.max_per_contact);
			}
		}
		i = j;
	}
	free(reach);
	items_free(v, n);
	abuse_contacts_free(map);
	rdap_free(rd);
	if (rc == 0 && c->abuse.smtp) {
		struct send_arg s = {c, db, r, ""};
		abuse_helo_name(&c->abuse, s.helo, sizeof s.helo);
		if (db_outbox_unsent(db, window, SEND_ATTEMPTS, "xarf", send_one, &s) < 0 ||
		    db_outbox_unsent(db, window, SEND_ATTEMPTS, "summary", send_one, &s) < 0) {
			buf_printf(err, "cannot read the outbox: %s", db_errmsg(db));
			rc = -1;
		}
	}
	if (rc == 0 && c->abuse.keep > 0) {
		int k = report_prune_dir(r->out_dir, "abuse", r->now - c->abuse.keep);
		if (k > 0)
			log_info("abuse-report: removed %d files older than [abuse] keep", k);
		if (db_outbox_prune(db, r->now - c->abuse.keep) < 0)
			log_warn("abuse-report: cannot prune the outbox: %s", db_errmsg(db));
	}
	return rc;
}

json_t *abuse_uncontacted_json(const struct config *c, struct db *db, int64_t from, int64_t to, int64_t now)
{
	json_t *out = json_array();
	if (!c->abuse.used)
		return out;
	struct errlist errs = {0};
	struct abuse_contacts *map = abuse_contacts_load(&c->abuse, &errs);
	errlist_free(&errs);
	struct abuse_item *v = NULL;
	size_t n = 0;
	if (candidates(db, from, to, NULL, &v, &n) < 0) {
		abuse_contacts_free(map);
		items_free(v, n);
		json_decref(out);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (find_contact(c, db, map, NULL, &v[i], now, false))
			continue;
		char since[TIME_STRLEN];
		time_format_rfc3339(v[i].d.since * 1000000, false, since);
		json_t *o = json_object();
		json_object_set_new(o, "prefix", json_string(v[i].prefix));
		json_object_set_new(o, "rule", json_string(v[i].d.rule));
		json_object_set_new(o, "response", json_string(response_name(v[i].d.response)));
		json_t *reason = json_string(v[i].d.reason);
		json_object_set_new(o, "reason", reason ? reason : json_string("?"));
		json_object_set_new(o, "since", json_string(since));
		json_array_append_new(out, o);
	}
	items_free(v, n);
	abuse_contacts_free(map);
	return out;
}
