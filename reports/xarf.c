/*
 * xarf.c - what an abuse report says: which decisions are worth one, the
 * XARF v4 type of each, the XARF JSON, the human-readable text and the
 * whole RFC 5965 message (multipart/report; report-type=feedback-report),
 * and the plain summary a contact gets beyond max_per_contact.
 *
 * The XARF types (README "Abuse reports"):
 *   auth                    connection/login_attack
 *   retry, policy, backoff  messaging/spam (the MTA refused the same run
 *                           of messages again and again)
 *   harvest, relay, protocol  connection/reconnaissance (recipient
 *                           harvesting, relay and protocol probing)
 *   flood, class, returned, other  reputation/blocklist
 * XARF's login_attack needs the client's source port when the source is an
 * address, and spam needs it with the envelope sender: when no stored line
 * logged them (Postfix's smtpd logs no client port; Exim does), or the
 * source is a network, the report is reputation/blocklist with threat_type
 * "login_attack" or "spam" rather than a port made up.
 *
 * Pure functions of their arguments (the database is read in abuse.c);
 * it must never put log-derived text into a header line.
 */
#include <stdio.h>
#include <string.h>

#include "reports/internal.h"

void abuse_item_free(struct abuse_item *it)
{
	json_decref(it->evidence);
	json_decref(it->lines);
	json_decref(it->targets);
	json_decref(it->categories);
	free(it->ids);
	memset(it, 0, sizeof *it);
}

static json_int_t path_int(const json_t *o, const char *a, const char *b, json_int_t dflt)
{
	const json_t *x = json_object_get(o, a);
	if (b)
		x = json_object_get(x, b);
	return json_is_integer(x) ? json_integer_value(x) : dflt;
}

int64_t abuse_sessions(const struct decision *d, const json_t *ev)
{
	int64_t n =
	    MXW_MAX(path_int(ev, "sessions", "bad", 0), path_int(ev, "numbers", "bad_connections", 0));
	if (strcmp(d->rule, "flood") == 0 || d->scope == SCOPE_CLASS)
		n = MXW_MAX(n, path_int(ev, "numbers", "connections", 0));
	if (strcmp(d->rule, "returned") == 0)
		n = MXW_MAX(n, path_int(ev, "numbers", "returned", 0));
	return n;
}

const char *abuse_unreportable(const struct decision *d, const json_t *ev)
{
	if (d->response != RESP_REJECT && d->response != RESP_DROP)
		return "its response is neither reject nor drop";
	if (d->manual)
		return "it was made by hand";
	if (!json_is_object(ev))
		return "it has no evidence";
	if (abuse_sessions(d, ev) < 2)
		return "it rests on fewer than two connections";
	if (path_int(ev, "numbers", "accepted", -1) != 0)
		return "the sender delivered mail in the success window";
	return NULL;
}

static bool rule_is(const struct abuse_item *it, const char *const *names)
{
	for (; *names; names++)
		if (strcmp(it->d.rule, *names) == 0)
			return true;
	return false;
}

void abuse_classify(struct abuse_item *it)
{
	static const char *const spam[] = {"retry", "policy", "backoff", NULL};
	static const char *const recon[] = {"harvest", "relay", "protocol", NULL};
	bool host = prefix_is_host(&it->d.prefix);
	it->threat = NULL;
	if (strcmp(it->d.rule, "auth") == 0) {
		if (host && it->port > 0) {
			it->category = "connection", it->type = "login_attack";
			return;
		}
		it->threat = "login_attack";
	} else if (rule_is(it, spam)) {
		if (host && it->port > 0 && it->smtp_from[0]) {
			it->category = "messaging", it->type = "spam";
			return;
		}
		it->threat = "spam";
	} else if (rule_is(it, recon)) {
		it->category = "connection", it->type = "reconnaissance";
		return;
	} else if (strcmp(it->d.rule, "flood") == 0) {
		it->threat = "connection_flood";
	} else if (strcmp(it->d.rule, "class") == 0) {
		it->threat = "abusive_network";
	} else if (strcmp(it->d.rule, "returned") == 0) {
		it->threat = "returning_blocked_sender";
	} else {
		it->threat = "abuse";
	}
	it->category = "reputation", it->type = "blocklist";
}

static json_t *time_json(int64_t t)
{
	char s[TIME_STRLEN];
	time_format_rfc3339(t * 1000000, false, s);
	return json_string(s);
}

/* A JSON string of at most max bytes of s (valid UTF-8, cut between characters). */
static json_t *text_json(const char *s, size_t max)
{
	struct buf b = BUF_INIT;
	utf8_append_clean(&b, s, strlen(s));
	size_t n = b.len;
	if (n > max) {
		n = max;
		while (n && ((unsigned char)b.data[n] & 0xc0) == 0x80)
			n--;
	}
	json_t *j = json_stringn(b.data ? b.data : "", n);
	buf_free(&b);
	return j ? j : json_string("");
}

static json_t *party(const struct abuse_conf *a)
{
	json_t *o = json_object();
	json_object_set_new(o, "org", text_json(a->reporter_org, 200));
	json_object_set_new(o, "contact", json_string(a->reporter_contact));
	json_object_set_new(o, "domain", json_string(a->reporter_domain));
	return o;
}

/* The stored lines, one per line, as one byte string. */
static void joined_lines(const struct abuse_item *it, struct buf *out)
{
	size_t i;
	json_t *l;
	json_array_foreach(it->lines, i, l)
	{
		buf_append(out, json_string_value(l), json_string_length(l));
		buf_appendc(out, '\n');
	}
}

json_t *abuse_xarf_json(const struct abuse_conf *a, const struct abuse_item *it, const char *report_id)
{
	json_t *x = json_object();
	json_object_set_new(x, "xarf_version", json_string("4.0.0"));
	json_object_set_new(x, "report_id", json_string(report_id));
	json_object_set_new(x, "timestamp", time_json(it->first_seen));
	json_object_set_new(x, "reporter", party(a));
	json_object_set_new(x, "sender", party(a));
	json_object_set_new(x, "source_identifier", json_string(it->prefix));
	if (it->port > 0 && prefix_is_host(&it->d.prefix))
		json_object_set_new(x, "source_port", json_integer(it->port));
	json_object_set_new(x, "category", json_string(it->category));
	json_object_set_new(x, "type", json_string(it->type));
	json_object_set_new(x, "evidence_source", json_string("automated_filter"));
	json_object_set_new(x, "description", text_json(it->d.reason, 1000));
	json_object_set_new(x, "first_seen", time_json(it->first_seen));
	json_object_set_new(x, "last_seen", time_json(it->last_seen));
	json_t *tags = json_array();
	char t[64];
	snprintf(t, sizeof t, "mxwarden:%s", it->d.rule); /* rule names: [a-z_] */
	json_array_append_new(tags, json_string(t));
	snprintf(t, sizeof t, "response:%s", response_name(it->d.response));
	json_array_append_new(tags, json_string(t));
	snprintf(t, sizeof t, "scope:%s", scope_name(it->d.scope));
	json_array_append_new(tags, json_string(t));
	json_object_set_new(x, "tags", tags);
	if (strcmp(it->type, "login_attack") == 0) {
		json_object_set_new(x, "protocol", json_string("tcp"));
	} else if (strcmp(it->type, "spam") == 0) {
		json_object_set_new(x, "protocol", json_string("smtp"));
		json_object_set_new(x, "smtp_from", json_string(it->smtp_from));
	} else if (strcmp(it->type, "reconnaissance") == 0) {
		json_object_set_new(x, "protocol", json_string("tcp"));
		json_t *probed = json_array();
		size_t i;
		json_t *v;
		json_array_foreach(it->targets, i, v) json_array_append(probed, v);
		const char *k;
		json_object_foreach(it->categories, k, v)
		{
			char r[80];
			snprintf(r, sizeof r, "smtp:%s", k); /* category names: fixed words */
			json_array_append_new(probed, json_string(r));
		}
		if (!json_array_size(probed))
			json_array_append_new(probed, json_string("smtp"));
		json_object_set_new(x, "probed_resources", probed);
		if (it->lines_total > 0)
			json_object_set_new(x, "total_probes", json_integer(it->lines_total));
	} else {
		json_object_set_new(x, "threat_type", json_string(it->threat ? it->threat : "abuse"));
	}
	if (json_array_size(it->lines)) {
		struct buf lines = BUF_INIT, b64 = BUF_INIT;
		joined_lines(it, &lines);
		mail_base64(&b64, lines.data, lines.len, 0);
		json_t *e = json_object();
		json_object_set_new(e, "content_type", json_string("text/plain"));
		char d[160];
		snprintf(
		    d, sizeof d,
		    "%zu of %lld log lines of our MTA (UTC), our users' addresses and login names redacted",
		    json_array_size(it->lines), (long long)it->lines_total);
		json_object_set_new(e, "description", json_string(d));
		json_object_set_new(e, "payload", json_stringn(b64.data, b64.len));
		json_object_set_new(e, "size", json_integer((json_int_t)lines.len));
		json_t *ev = json_array();
		json_array_append_new(ev, e);
		json_object_set_new(x, "evidence", ev);
		buf_free(&lines);
		buf_free(&b64);
	}
	return x;
}

/* Words for the type, in the subject and the text. */
static const char *type_words(const struct abuse_item *it)
{
	if (strcmp(it->type, "login_attack") == 0)
		return "password guessing (SMTP AUTH)";
	if (strcmp(it->type, "spam") == 0)
		return "spam";
	if (strcmp(it->type, "reconnaissance") == 0)
		return "probing (recipient harvesting, relay or protocol probes)";
	if (it->threat && strcmp(it->threat, "login_attack") == 0)
		return "password guessing (SMTP AUTH)";
	if (it->threat && strcmp(it->threat, "spam") == 0)
		return "spam";
	if (it->threat && strcmp(it->threat, "connection_flood") == 0)
		return "a connection flood";
	return "abuse of our mail server";
}

static void counts_line(struct buf *out, const json_t *ev)
{
	static const struct {
		const char *key, *words;
	} nums[] = {
	    {"connections", "connections"},	  {"bad_connections", "connections with refusals or errors"},
	    {"rejected_5xx", "refused with 5xx"}, {"unknown_recipients", "unknown recipients"},
	    {"rcpts", "RCPT attempts"},		  {"auth_failures", "AUTH failures"},
	    {"auth_users", "AUTH user names"},	  {"relay", "relay attempts"},
	    {"protocol", "protocol violations"},
	};
	const json_t *n = json_object_get(ev, "numbers");
	bool any = false;
	for (size_t i = 0; i < MXW_ARRAY_LEN(nums); i++) {
		json_int_t v = path_int(n, nums[i].key, NULL, 0);
		if (v <= 0)
			continue;
		buf_printf(out, "%s%lld %s", any ? ", " : "", (long long)v, nums[i].words);
		any = true;
	}
	if (!any)
		buf_appends(out, "-");
}

void abuse_text(const struct abuse_conf *a, const struct abuse_item *it, const char *report_id,
		struct buf *out)
{
	char since[TIME_STRLEN], until[TIME_STRLEN], first[TIME_STRLEN], last[TIME_STRLEN];
	time_format_rfc3339(it->d.since * 1000000, false, since);
	time_format_rfc3339(it->d.until * 1000000, false, until);
	time_format_rfc3339(it->first_seen * 1000000, false, first);
	time_format_rfc3339(it->last_seen * 1000000, false, last);
	buf_appends(out, "This is an automated abuse report from ");
	utf8_append_text(out, a->reporter_org, strlen(a->reporter_org));
	buf_printf(out, " (%s), written by mxwarden %s.\n\n", a->reporter_domain, MXWARDEN_VERSION);
	buf_printf(out, "%s %s in your network misbehaved towards our mail server: %s.\n\n",
		   prefix_is_host(&it->d.prefix) ? "The host" : "Hosts of", it->prefix, type_words(it));
	buf_printf(out, "Source:       %s\n", it->prefix);
	buf_appends(out, "What it did:  ");
	utf8_append_text(out, it->d.reason, strnlen(it->d.reason, sizeof it->d.reason));
	buf_printf(out, "\nFirst seen:   %s\nLast seen:    %s\n", first, last);
	buf_appends(out, "Counts:       ");
	counts_line(out, it->evidence);
	buf_printf(out, "\nOur response: %s from %s until %s (rule %s)\n", response_name(it->d.response),
		   since, until, it->d.rule);
	buf_printf(out, "XARF:         %s/%s, report %s\n", it->category, it->type, report_id);
	if (it->port > 0 && prefix_is_host(&it->d.prefix))
		buf_printf(out, "Source port:  %d (of the newest connection that logged one)\n", it->port);
	if (json_array_size(it->lines)) {
		buf_printf(out,
			   "\nThe newest %zu of %lld lines our MTA logged about it (UTC), with our users'\n"
			   "addresses and login names redacted:\n\n",
			   json_array_size(it->lines), (long long)it->lines_total);
		size_t i;
		json_t *l;
		json_array_foreach(it->lines, i, l)
		{
			buf_appends(out, "  ");
			utf8_append_text(out, json_string_value(l), json_string_length(l));
			buf_appendc(out, '\n');
		}
	}
	buf_printf(out,
		   "\nThe machine-readable report (XARF v4, https://xarf.org/) is attached as xarf.json.\n"
		   "Replies reach %s.\n",
		   a->reporter_contact);
}

static void common_headers(const struct abuse_conf *a, const char *to, const char *subject, const char *msgid,
			   int64_t now, struct buf *out)
{
	char date[MAIL_DATE_LEN];
	mail_date(now, date);
	mail_address_header(out, "From", a->reporter_org, a->reporter_contact);
	mail_address_header(out, "To", NULL, to);
	mail_header(out, "Subject", subject);
	mail_header(out, "Date", date);
	mail_header(out, "Message-ID", msgid);
	mail_header(out, "MIME-Version", "1.0");
	mail_header(out, "Auto-Submitted", "auto-generated");
}

void abuse_message(const struct abuse_conf *a, const struct abuse_item *it, const char *report_id,
		   int64_t now, struct buf *out)
{
	struct buf text = BUF_INIT, part1 = BUF_INIT, part2 = BUF_INIT, part3 = BUF_INIT;
	abuse_text(a, it, report_id, &text);
	mail_qp(&part1, text.data ? text.data : "", text.len);
	buf_printf(&part2, "Feedback-Type: xarf\r\nUser-Agent: mxwarden/%s\r\nVersion: 1\r\n",
		   MXWARDEN_VERSION);
	if (prefix_is_host(&it->d.prefix))
		buf_printf(&part2, "Source-IP: %s\r\n", it->prefix);
	json_t *x = abuse_xarf_json(a, it, report_id);
	char *js = json_dumps(x, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	json_decref(x);
	if (!js)
		fatal("out of memory (xarf)");
	mail_base64(&part3, js, strlen(js), 76);
	free(js);

	char boundary[MAIL_BOUNDARY_LEN];
	do
		mail_boundary(boundary);
	while (mail_body_has(&part1, boundary) || mail_body_has(&part2, boundary) ||
	       mail_body_has(&part3, boundary));
	char subject[200], msgid[160];
	snprintf(subject, sizeof subject, "Abuse report: %s from %s", type_words(it), it->prefix);
	snprintf(msgid, sizeof msgid, "<%s@%s>", report_id, a->reporter_domain);
	common_headers(a, it->contact, subject, msgid, now, out);
	buf_printf(out,
		   "Content-Type: multipart/report; report-type=feedback-report;\r\n\tboundary=\"%s\"\r\n",
		   boundary);
	buf_appends(out,
		    "\r\nThis is an abuse report in the MIME format of RFC 5965 with a XARF v4 report.\r\n");
	buf_printf(out,
		   "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		   "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
		   boundary);
	buf_append(out, part1.data, part1.len);
	buf_printf(out,
		   "\r\n--%s\r\nContent-Type: message/feedback-report\r\n"
		   "Content-Disposition: inline\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
		   boundary);
	buf_append(out, part2.data, part2.len);
	buf_printf(out,
		   "\r\n--%s\r\nContent-Type: application/json; name=\"xarf.json\"\r\n"
		   "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; "
		   "filename=\"xarf.json\"\r\n\r\n",
		   boundary);
	buf_append(out, part3.data, part3.len);
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	buf_free(&text);
	buf_free(&part1);
	buf_free(&part2);
	buf_free(&part3);
}

void abuse_summary_message(const struct abuse_conf *a, const char *contact, struct abuse_item *const *items,
			   size_t n, int64_t from, int64_t to, int64_t now, struct buf *out)
{
	char f[TIME_STRLEN], t[TIME_STRLEN];
	time_format_rfc3339(from * 1000000, false, f);
	time_format_rfc3339(to * 1000000, false, t);
	struct buf text = BUF_INIT, body = BUF_INIT;
	buf_appends(&text, "This is an automated abuse summary from ");
	utf8_append_text(&text, a->reporter_org, strlen(a->reporter_org));
	buf_printf(&text,
		   " (%s), written by mxwarden %s.\n\n"
		   "Between %s and %s (UTC) more hosts of your network misbehaved towards our mail\n"
		   "server than we send separate reports for (%lld). These %zu are listed here:\n\n",
		   a->reporter_domain, MXWARDEN_VERSION, f, t, (long long)a->max_per_contact, n);
	for (size_t i = 0; i < n; i++) {
		const struct abuse_item *it = items[i];
		char first[TIME_STRLEN], last[TIME_STRLEN];
		time_format_rfc3339(it->first_seen * 1000000, false, first);
		time_format_rfc3339(it->last_seen * 1000000, false, last);
		buf_printf(&text, "%s  %s/%s, %s to %s\n  ", it->prefix, it->category, it->type, first, last);
		utf8_append_text(&text, it->d.reason, strnlen(it->d.reason, sizeof it->d.reason));
		buf_appends(&text, "\n  counts: ");
		counts_line(&text, it->evidence);
		buf_appends(&text, "\n\n");
	}
	buf_printf(&text, "Replies reach %s.\n", a->reporter_contact);
	mail_qp(&body, text.data, text.len);
	char subject[200], msgid[160], id[MAIL_UUID_LEN];
	mail_uuid(id);
	snprintf(subject, sizeof subject, "Abuse summary: %zu more hosts of your network", n);
	snprintf(msgid, sizeof msgid, "<%s@%s>", id, a->reporter_domain);
	common_headers(a, contact, subject, msgid, now, out);
	buf_appends(
	    out,
	    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
	buf_append(out, body.data, body.len);
	buf_free(&text);
	buf_free(&body);
}
