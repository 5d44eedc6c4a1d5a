/*
 * web_seed.c - a test and benchmark helper: fill a database through the db
 * API with events near the clock's now (MXWARDEN_NOW is honoured) and a few
 * decisions, so the web tests know exactly what the API must answer.
 *
 * Usage: web-seed DB [N]   (N background events, default 2000)
 *
 * What it plants (the tests rely on it):
 *   - 198.51.100.23, the harvester: 30 unknown-recipient 550 rejects in the
 *     last 30 minutes, and an active "harvest" decision (ip) whose evidence
 *     holds three log lines and the thresholds crossed;
 *   - 203.0.113.66, whose HELO is <script>alert(1)</script>: 12 HELO
 *     rejects and an active "policy" decision quoting the HELO;
 *   - 45.67.89.0/24, an active class decision (defer); 2001:db8:bad::/64 an
 *     expired one;
 *   - N background events over 40 IPs in 10 classes, spread over the last
 *     7 days, a third of them in the last hour;
 *   - one source (a followed file) with lines_read = N + 42.
 * Prints the planted decision ids as JSON on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"

#define SPAN(s) ((struct span){(s), (uint32_t)strlen(s)})

static struct db *db;
static char line[1024];

static void die(const char *what)
{
	fprintf(stderr, "web-seed: %s: %s\n", what, db ? db_errmsg(db) : "");
	exit(1);
}

static void add_event(int64_t ts, const char *ipstr, const char *helo, int code, enum ev_category cat,
		      enum ev_kind kind, const char *rcpt, const char *text)
{
	struct event ev = {0};
	ev.ts_us = ts * 1000000;
	ev.mta = MTA_POSTFIX;
	ev.kind = kind;
	ev.stage = cat == CAT_HELO ? ST_HELO : ST_RCPT;
	ev.cat = cat;
	ev.has_ip = true;
	if (ipaddr_parse(&ev.ip, ipstr, strlen(ipstr)) < 0)
		die("bad ip");
	struct class_conf cc = {24, 64, 16, 48};
	ipaddr_class(&ev.ip, &cc, &ev.cls);
	ev.port = 40000;
	ev.code = (int16_t)code;
	ev.pid = 4242;
	ev.host = SPAN("mx1");
	ev.program = SPAN("postfix/smtpd");
	ev.queue_id = SPAN("NOQUEUE");
	ev.rdns = SPAN("");
	ev.helo = SPAN(helo);
	ev.from = SPAN("sender@example.net");
	ev.to = SPAN(rcpt);
	ev.dsn = SPAN(code >= 500 ? "5.1.1" : "4.7.1");
	ev.text = SPAN(text);
	char when[TIME_STRLEN];
	time_format_rfc3339(ev.ts_us, false, when);
	snprintf(line, sizeof line,
		 "%s mx1 postfix/smtpd[4242]: NOQUEUE: reject: RCPT from unknown[%s]: %d %s <%s>: %s; "
		 "from=<sender@example.net> to=<%s> proto=ESMTP helo=<%s>",
		 when, ipstr, code, code >= 500 ? "5.1.1" : "4.7.1", rcpt, text, rcpt, helo);
	ev.line = SPAN(line);
	if (db_event_insert(db, &ev, 0) < 0)
		die("event");
}

static int64_t add_decision(const char *pfx, enum scope sc, enum response resp, const char *rule,
			    const char *reason, int64_t since, int64_t until, const char *evidence)
{
	struct decision d = {0};
	if (prefix_parse(&d.prefix, pfx, strlen(pfx), true) < 0)
		die("bad prefix");
	d.scope = sc;
	d.response = resp;
	str_copy(d.rule, sizeof d.rule, rule, strlen(rule));
	str_copy(d.reason, sizeof d.reason, reason, strlen(reason));
	d.score = 3.5;
	d.since = since;
	d.until = until;
	if (db_decision_insert(db, &d, evidence, "engine") < 0)
		die("decision");
	return d.id;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: web-seed DB [N]\n");
		return 2;
	}
	long n = argc == 3 ? strtol(argv[2], NULL, 10) : 2000;
	char err[256];
	db = db_open(argv[1], DB_RW | DB_FAST, err, sizeof err);
	if (!db) {
		fprintf(stderr, "web-seed: %s\n", err);
		return 1;
	}
	int64_t now = clock_now();
	static const enum ev_category cats[] = {CAT_UNKNOWN_RECIPIENT, CAT_GREYLISTED, CAT_DNSBL,
						CAT_RELAY_DENIED,      CAT_NO_RDNS,    CAT_RATE_LIMITED};
	static const int codes[] = {550, 450, 554, 554, 450, 421};
	char ip[64], rcpt[64];
	uint64_t x = 88172645463325252ull;
	if (db_begin(db) < 0)
		die("begin");
	for (long i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned c = (unsigned)(x % MXW_ARRAY_LEN(cats));
		unsigned host = (unsigned)((x >> 8) % 40);
		int64_t age = i % 3 == 0 ? (int64_t)((x >> 16) % 3500) : (int64_t)((x >> 16) % (7 * 86400));
		if (host % 4 == 3)
			snprintf(ip, sizeof ip, "2001:db8:%x::%x", host / 4, host + 1);
		else
			snprintf(ip, sizeof ip, "45.64.%u.%u", host / 4, 10 + host);
		snprintf(rcpt, sizeof rcpt, "user%lu@example.com", (unsigned long)(x % 500));
		add_event(now - age, ip, "client.example.org", codes[c], cats[c], EV_REJECT, rcpt,
			  "Recipient address rejected");
		if (i % 50000 == 49999) {
			if (db_commit(db) < 0 || db_begin(db) < 0)
				die("commit");
		}
	}
	for (int i = 0; i < 30; i++) {
		snprintf(rcpt, sizeof rcpt, "nobody%02d@example.com", i);
		add_event(now - 1700 + i * 50, "198.51.100.23", "mail.abuser.example", 550,
			  CAT_UNKNOWN_RECIPIENT, EV_REJECT, rcpt,
			  "Recipient address rejected: User unknown in local recipient table");
	}
	for (int i = 0; i < 12; i++)
		add_event(now - 1200 + i * 60, "203.0.113.66", "<script>alert(1)</script>", 504, CAT_HELO,
			  EV_REJECT, "postmaster@example.com",
			  "Helo command rejected: need fully-qualified hostname");
	/* evidence in the aggregator's format (aggregator.c decide(): rule,
	 * window, value, threshold, numbers, thresholds, first/last lines, counts) */
	char ev1[2048];
	snprintf(
	    ev1, sizeof ev1,
	    "{\"rule\": \"harvest\", \"scope\": \"ip\", \"window\": 600, \"value\": 30, \"threshold\": 20.0, "
	    "\"multiplier\": 1.0, \"score\": 3.5, \"response\": \"reject\", \"past_decisions\": 0, "
	    "\"numbers\": {\"harvest\": 30, \"retry\": 0, \"policy\": 0, \"unknown_recipients\": 30, "
	    "\"accepted\": 0}, \"thresholds\": {\"harvest\": 20.0, \"retry\": 1.0, \"policy\": 10.0}, "
	    "\"first\": ["
	    "\"mx1 postfix/smtpd[4242]: NOQUEUE: reject: RCPT from unknown[198.51.100.23]: 550 5.1.1 "
	    "<nobody00@example.com>: Recipient address rejected: User unknown in local recipient table\", "
	    "\"mx1 postfix/smtpd[4242]: NOQUEUE: reject: RCPT from unknown[198.51.100.23]: 550 5.1.1 "
	    "<nobody01@example.com>: Recipient address rejected: User unknown in local recipient table\"], "
	    "\"last\": [\"mx1 postfix/smtpd[4242]: NOQUEUE: reject: RCPT from unknown[198.51.100.23]: 550 "
	    "5.1.1 "
	    "<nobody29@example.com>: Recipient address rejected: User unknown in local recipient table\"], "
	    "\"counts\": {\"unknown_recipient\": 30, \"reject\": 30}, \"lines_seen\": 30}");
	int64_t d1 = add_decision("198.51.100.23", SCOPE_IP, RESP_REJECT, "harvest",
				  "198.51.100.23 tried 30 unknown recipients within 10m (threshold 20)",
				  now - 600, now + 86400, ev1);
	int64_t d2 = add_decision(
	    "203.0.113.66", SCOPE_IP, RESP_REJECT, "policy",
	    "203.0.113.66 was rejected 12 times for its HELO <script>alert(1)</script> within "
	    "1h (threshold 10)",
	    now - 300, now + 7200,
	    "{\"rule\": \"policy\", \"window\": 3600, \"value\": 12, \"threshold\": 10.0, \"numbers\": "
	    "{\"policy\": "
	    "12}, \"thresholds\": {\"policy\": 10.0}, \"first\": [\"mx1 postfix/smtpd[4242]: NOQUEUE: "
	    "reject: RCPT "
	    "from unknown[203.0.113.66]: 504 5.5.2 <<script>alert(1)</script>>: Helo command rejected: need "
	    "fully-qualified hostname; helo=<<script>alert(1)</script>>\"], \"last\": [], \"counts\": "
	    "{\"helo\": "
	    "12}}");
	int64_t d3 =
	    add_decision("45.67.89.0/24", SCOPE_CLASS, RESP_DEFER, "class",
			 "45.67.89.0/24 holds 4 flagged IPs (threshold 3)", now - 1000, now + 3600, NULL);
	int64_t d4 = add_decision("2001:db8:bad::/64", SCOPE_CLASS, RESP_REJECT, "flood",
				  "2001:db8:bad::/64 opened 900 connections within 1m", now - 86400 * 2,
				  now - 86400, NULL);
	struct db_source src = {.kind = DB_SRC_FOLLOW, .dev = 1, .ino = 2, .fp_hash = 3, .fp_len = 64};
	str_copy(src.path, sizeof src.path, "/var/log/mail.log", 17);
	if (db_source_get_or_create(db, &src, now) < 0 ||
	    db_source_update_offset(db, src.id, 123456, n + 42, now) < 0 ||
	    db_unparsed_add(db, "unparsed", 3) < 0)
		die("source");
	if (db_commit(db) < 0)
		die("commit");
	db_close(db);
	printf("{\"harvester\": %lld, \"xss\": %lld, \"class\": %lld, \"expired\": %lld}\n", (long long)d1,
	       (long long)d2, (long long)d3, (long long)d4);
	return 0;
}
