/* test_aggregator.c - the in-memory judge driven by hand-built events: each
 * rule fires at its threshold and not below it, success-awareness, class
 * escalation and widening, allow lists and protected networks, escalating
 * durations, expiry, evidence and reasons. Tables of got/want cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "aggregator/aggregator.h"
#include "db/db.h"
#include "testlib.h"

#define T0 1795000000LL /* a fixed time: tests never depend on today */

struct step {
	int repeat;	/* times this step happens (>= 1) */
	int every;	/* seconds between repetitions */
	const char *ip; /* "%d" is replaced by the repetition index (distinct IPs) */
	enum ev_kind kind;
	enum ev_category cat;
	int code;
	enum ev_stage stage;
	const char *to; /* "%d" is replaced by the repetition index (distinct recipients) */
	const char *user;
	bool one_conn;	  /* all repetitions in one connection (default: one connection each) */
	const char *text; /* the reply text, NULL = none */
};

struct want {
	const char *prefix; /* a decision on this prefix, NULL = none at all */
	const char *rule;
};

struct casedef {
	const char *name;
	struct step steps[6];
	struct want want[3];
	int ndecisions; /* exact number of decisions wanted */
};

static struct config cfg;

static void cfg_setup(void)
{
	config_defaults(&cfg);
	struct errlist e = {0};
	config_validate(&cfg, &e);
	errlist_free(&e);
	/* keep the default list but not this host's own addresses, which differ
	 * from machine to machine */
	cfg.protected_local = false;
	config_protected_build(&cfg, NULL);
	struct rules_conf *r = &cfg.rules;
	/* explicit thresholds: the cases below do not follow default tuning */
	r->retry_count = 3;
	r->harvest_distinct = 10;
	r->harvest_ratio = 0.8;
	r->harvest_min_attempts = 10;
	r->backoff_min_interval = 60;
	r->backoff_count = 5;
	r->relay_count = 3;
	r->auth_count = 5;
	r->auth_users = 3;
	r->protocol_count = 3;
	r->policy_count = 5;
	r->flood_ip_count = 60;
	r->flood_class_count = 150;
	r->flood_window = 600;
	r->flood_limit_weight = 20;
	r->class_flagged_ips = 3;
	r->class_widen_classes = 4;
	r->success_factor = 3;
	r->no_rdns_weight = 1.5;
	r->no_mx_weight = 1.5;
	r->block_jitter = 0;
	r->min_sessions = 2;
	r->class_min_members = 3;
	r->returned_count = 30;
	r->score_defer = 1;
	r->score_reject = 1;
	r->score_drop = 4;
}

static void subst(char *out, size_t n, const char *tmpl, int i)
{
	const char *p = strstr(tmpl, "%d");
	if (!p) {
		snprintf(out, n, "%s", tmpl);
		return;
	}
	snprintf(out, n, "%.*s%d%s", (int)(p - tmpl), tmpl, i, p + 2);
}

static char linebuf[512];

/* One event of a Postfix smtpd process pid; kind EV_DISCONNECT ends its
 * connection. */
static void send_event(struct aggregator *a, int64_t ts, const char *ip, int pid, const struct step *s,
		       const char *to, int i)
{
	struct event ev;
	memset(&ev, 0, sizeof ev);
	ev.ts_us = ts * 1000000;
	ev.mta = MTA_POSTFIX;
	ev.kind = s->kind;
	ev.cat = s->cat;
	ev.stage = s->stage;
	ev.code = (int16_t)(s->code ? s->code : -1);
	ev.has_ip = true;
	assert_int_equal(ipaddr_parse(&ev.ip, ip, strlen(ip)), 0);
	ipaddr_class(&ev.ip, &cfg.classes, &ev.cls);
	ev.pid = pid;
	ev.host = (struct span){"mx", 2};
	ev.program = (struct span){"postfix/smtpd", 13};
	ev.rdns = (struct span){"mail.example.net", 16};
	/* log-derived text that must never reach a reason */
	ev.helo = (struct span){"<script>evil", 12};
	ev.from = (struct span){"a@example.org", 13};
	if (to && *to)
		ev.to = (struct span){to, (uint32_t)strlen(to)};
	if (s->user) {
		ev.user = (struct span){s->user, (uint32_t)strlen(s->user)};
		ev.auth_ok = s->kind == EV_ACCEPT;
	}
	if (s->text)
		ev.text = (struct span){s->text, (uint32_t)strlen(s->text)};
	if (s->text && s->text[0] >= '2' && s->text[0] <= '5' && s->text[1] == '.')
		ev.dsn = (struct span){s->text, 5}; /* "5.2.2 Mailbox full" */
	int n = snprintf(linebuf, sizeof linebuf, "line %d from [%s] to <%s> helo=<script>evil", i, ip,
			 to ? to : "");
	ev.line = (struct span){linebuf, (uint32_t)n};
	aggregator_event(a, &ev);
}

static void disconnect(struct aggregator *a, int64_t ts, const char *ip, int pid)
{
	struct step d = {1, 0, ip, EV_DISCONNECT, CAT_NONE, 0, ST_OTHER, NULL, NULL, false, NULL};
	send_event(a, ts, ip, pid, &d, NULL, 0);
}

/* A step: each repetition is a connection of its own (a process of its
 * own, ended by a disconnect line), unless one_conn. */
static void feed(struct aggregator *a, const struct step *s, int64_t *ts)
{
	for (int i = 0; i < s->repeat; i++) {
		char ip[64], to[128], user[64];
		subst(ip, sizeof ip, s->ip, i + 1);
		subst(to, sizeof to, s->to ? s->to : "", i + 1);
		struct step si = *s;
		if (s->user) {
			subst(user, sizeof user, s->user, i + 1);
			si.user = user;
		}
		int pid = s->one_conn ? 99 : 100 + i;
		send_event(a, *ts, ip, pid, &si, to, i);
		if (!s->one_conn || i == s->repeat - 1)
			disconnect(a, *ts, ip, pid);
		*ts += s->every;
	}
}

struct collected {
	struct decision d[16];
	char *evidence[16];
	int n, ended;
	struct decision up[8]; /* upgrades */
	enum response up_from[8];
	int nup;
};

static int64_t collect(void *arg, const struct agg_change *ch)
{
	struct collected *c = arg;
	if (ch->kind == AGG_CHANGE_ENDED) {
		c->ended++;
		return 0;
	}
	if (ch->kind == AGG_CHANGE_UPGRADED) {
		if (c->nup < 8) {
			c->up[c->nup] = *ch->d;
			c->up_from[c->nup] = ch->from;
		}
		c->nup++;
		return ch->d->id;
	}
	if (c->n < 16) {
		c->d[c->n] = *ch->d;
		c->evidence[c->n] = strdup(ch->evidence_json);
		c->n++;
	}
	return 1000 + c->n;
}

static void collected_free(struct collected *c)
{
	for (int i = 0; i < c->n && i < 16; i++)
		free(c->evidence[i]);
}

static const struct decision *find_decision(const struct collected *c, const char *prefix)
{
	for (int i = 0; i < c->n && i < 16; i++) {
		char buf[PREFIX_STRLEN];
		prefix_format(&c->d[i].prefix, buf);
		if (strcmp(buf, prefix) == 0)
			return &c->d[i];
	}
	return NULL;
}

#define ACC(ip, n, every)                                                                                  \
	{                                                                                                  \
		n, every, ip, EV_ACCEPT, CAT_NONE, 250, ST_END_OF_DATA, "x@example.com", NULL, false, NULL \
	}
/* an accepted message of a client that authenticated as user */
#define ACC_AUTH(ip, n, every, user)                                                                \
	{                                                                                           \
		n, every, ip, EV_ACCEPT, CAT_NONE, 250, ST_MAIL, "x@example.com", user, false, NULL \
	}
#define REJ(ip, n, every, cat, code, stage, to)                                  \
	{                                                                        \
		n, every, ip, EV_REJECT, cat, code, stage, to, NULL, false, NULL \
	}
/* the same, all in one connection */
#define REJ1(ip, n, every, cat, code, stage, to)                                \
	{                                                                       \
		n, every, ip, EV_REJECT, cat, code, stage, to, NULL, true, NULL \
	}
#define CONN(ip, n, every)                                                                 \
	{                                                                                  \
		n, every, ip, EV_CONNECT, CAT_NONE, 0, ST_CONNECT, NULL, NULL, false, NULL \
	}
#define AUTHF(ip, n, every, user)                                                              \
	{                                                                                      \
		n, every, ip, EV_AUTH_FAILURE, CAT_AUTH, 535, ST_AUTH, NULL, user, false, NULL \
	}

/* Unless a case says otherwise, each repetition is a connection of its own
 * (one line and a disconnect). */
static const struct casedef cases[] = {
    {"retry: the same pair refused 4 times in 4 connections = 3 retries",
     {REJ("198.51.100.7", 4, 60, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "gone@example.com")},
     {{"198.51.100.7/32", "retry"}},
     1},
    {"retry: 3 refusals of the same pair stay below (a person re-sending twice)",
     {REJ("198.51.100.7", 3, 60, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "gone@example.com")},
     {{NULL, NULL}},
     0},
    {"harvest: 10 distinct unknown recipients in 10 connections",
     {REJ("198.51.100.8", 10, 5, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "user%d@example.com")},
     {{"198.51.100.8/32", "harvest"}},
     1},
    {"harvest: 7 distinct unknown recipients stay below",
     {REJ("198.51.100.8", 7, 5, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "user%d@example.com")},
     {{NULL, NULL}},
     0},
    {"harvest: 20 unknown recipients in one connection is a dictionary attack",
     {REJ1("198.51.100.8", 20, 1, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "user%d@example.com")},
     {{"198.51.100.8/32", "harvest"}},
     1},
    {"harvest: 8 unknown recipients in one connection stay below",
     {REJ1("198.51.100.8", 8, 1, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "user%d@example.com")},
     {{NULL, NULL}},
     0},
    {"harvest is success-aware: a bulk sender with many accepted messages",
     {ACC("198.51.100.9", 200, 2),
      REJ("198.51.100.9", 20, 5, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "stale%d@example.com")},
     {{NULL, NULL}},
     0},
    {"relay: 3 relay attempts in 3 connections",
     {REJ("198.51.100.10", 3, 30, CAT_RELAY_DENIED, 554, ST_RCPT, "x%d@elsewhere.example")},
     {{"198.51.100.10/32", "relay"}},
     1},
    {"relay: 3 relay attempts in one connection are a client's mistake, not yet probing",
     {REJ1("198.51.100.10", 3, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "x%d@elsewhere.example")},
     {{NULL, NULL}},
     0},
    {"relay: 6 relay attempts in one connection are probing",
     {REJ1("198.51.100.10", 6, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "x%d@elsewhere.example")},
     {{"198.51.100.10/32", "relay"}},
     1},
    {"auth: 5 AUTH failures", {AUTHF("2001:db8:1::5", 5, 10, "admin")}, {{"2001:db8:1::5/128", "auth"}}, 1},
    {"auth: 3 distinct user names",
     {AUTHF("2001:db8:1::6", 1, 10, "admin"), AUTHF("2001:db8:1::6", 1, 10, "root"),
      AUTHF("2001:db8:1::6", 1, 10, "test")},
     {{"2001:db8:1::6/128", "auth"}},
     1},
    {"auth: one stale password behind a NAT where others authenticate",
     {ACC_AUTH("198.51.100.60", 3, 60, "alice"), AUTHF("198.51.100.60", 20, 120, "bob"),
      ACC_AUTH("198.51.100.60", 3, 60, "carol")},
     {{NULL, NULL}},
     0},
    {"auth: many user names from a NAT where others authenticate",
     {ACC_AUTH("198.51.100.61", 3, 60, "alice"), AUTHF("198.51.100.61", 1, 5, "u1"),
      AUTHF("198.51.100.61", 1, 5, "u2"), AUTHF("198.51.100.61", 1, 5, "u3"),
      AUTHF("198.51.100.61", 12, 5, "guess%d")},
     {{"198.51.100.61/32", "auth"}},
     1},
    {"protocol: 3 pregreets in 3 connections",
     {REJ("198.51.100.11", 3, 30, CAT_PREGREET, 0, ST_CONNECT, NULL)},
     {{"198.51.100.11/32", "protocol"}},
     1},
    {"protocol: one pregreet is a well-known false alarm",
     {REJ("198.51.100.11", 1, 30, CAT_PREGREET, 0, ST_CONNECT, NULL)},
     {{NULL, NULL}},
     0},
    {"protocol: 3 lost connections after CONNECT",
     {{3, 30, "198.51.100.12", EV_LOST, CAT_NONE, 0, ST_CONNECT, NULL, NULL, false, NULL}},
     {{"198.51.100.12/32", "protocol"}},
     1},
    {"policy: a DNSBL refusal is the MTA doing its job",
     {REJ("198.51.100.12", 1, 30, CAT_DNSBL, 554, ST_RCPT, "a@example.com")},
     {{NULL, NULL}},
     0},
    {"policy: refused by a DNSBL and back 4 more times",
     {REJ("198.51.100.12", 5, 30, CAT_DNSBL, 554, ST_RCPT, "a%d@example.com")},
     {{"198.51.100.12/32", "policy"}},
     1},
    {"policy: 5 HELO refusals in one connection: it never came back",
     {REJ1("198.51.100.13", 5, 1, CAT_HELO, 504, ST_RCPT, "b%d@example.com")},
     {{NULL, NULL}},
     0},
    {"policy: 4 HELO refusals stay below 5",
     {REJ("198.51.100.13", 4, 30, CAT_HELO, 504, ST_RCPT, "b%d@example.com")},
     {{NULL, NULL}},
     0},
    {"policy: 5 HELO refusals",
     {REJ("198.51.100.13", 5, 30, CAT_HELO, 504, ST_RCPT, "b%d@example.com")},
     {{"198.51.100.13/32", "policy"}},
     1},
    {"a full mailbox (552 5.2.2) re-sent by hand is no policy refusal",
     {{6, 300, "198.51.100.14", EV_REJECT, CAT_RECIPIENT_POLICY, 552, ST_RCPT, "full%d@example.com", NULL,
       false, "5.2.2 Mailbox full"}},
     {{NULL, NULL}},
     0},
    {"flood: 60 connections in 10 minutes",
     {CONN("198.51.100.14", 60, 5)},
     {{"198.51.100.14/32", "flood"}},
     1},
    {"flood: 60 connections in 2 hours are not a flood", {CONN("198.51.100.14", 60, 120)}, {{NULL, NULL}}, 0},
    {"flood: MTA rate-limit warnings",
     {CONN("198.51.100.15", 20, 1), REJ("198.51.100.15", 2, 1, CAT_RATE_LIMITED, 0, ST_CONNECT, NULL)},
     {{"198.51.100.15/32", "flood"}},
     1},
    {"backoff: the same message back 5 times within a minute of its 450",
     {REJ("198.51.100.16", 6, 10, CAT_GREYLISTED, 450, ST_RCPT, "c@example.com")},
     {{"198.51.100.16/32", "backoff"}},
     1},
    {"backoff: many new messages greylisted at once are no back-off violation",
     {REJ("198.51.100.16", 12, 5, CAT_GREYLISTED, 450, ST_RCPT, "c%d@example.com")},
     {{NULL, NULL}},
     0},
    {"greylisted sender that waits is left alone",
     {REJ("198.51.100.17", 1, 600, CAT_GREYLISTED, 451, ST_RCPT, "d@example.com"),
      CONN("198.51.100.17", 1, 1),
      REJ("198.51.100.17", 1, 900, CAT_GREYLISTED, 451, ST_RCPT, "d@example.com"),
      CONN("198.51.100.17", 1, 1), ACC("198.51.100.17", 1, 1)},
     {{NULL, NULL}},
     0},
    {"class: light members each refused once, from the third on",
     {REJ("203.0.113.%d", 12, 20, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "u%d@example.com")},
     {{"203.0.113.0/24", "policy"}},
     1},
    {"class: unknown recipients spread over three addresses below the per-IP threshold",
     {REJ("203.0.113.7", 4, 20, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "a%d@example.com"),
      REJ("203.0.113.8", 4, 20, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "b%d@example.com"),
      REJ("203.0.113.9", 4, 20, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "c%d@example.com")},
     {{"203.0.113.0/24", NULL}},
     1},
    {"class: two members are not several",
     {REJ("203.0.113.7", 6, 20, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "a%d@example.com"),
      REJ("203.0.113.8", 6, 20, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "b%d@example.com")},
     {{NULL, NULL}},
     0},
    {"class: one member's refusals, summed with a neighbour's one each, never block the class",
     {REJ("203.0.113.20", 30, 20, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "s%d@example.com"),
      REJ("203.0.113.%d", 3, 20, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "stale@example.com")},
     {{"203.0.113.20/32", "harvest"}},
     1},
    {"class: a connection flood over many IPs each below the per-IP limit",
     {CONN("203.0.113.%d", 40, 1), CONN("203.0.113.%d", 40, 1), CONN("203.0.113.%d", 40, 1),
      CONN("203.0.113.%d", 40, 1)},
     {{"203.0.113.0/24", "flood"}},
     1},
    {"class: 3 flagged IPs block the class",
     {REJ("192.0.2.1", 3, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "r%d@x.example"),
      REJ("192.0.2.2", 3, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "r%d@x.example"),
      REJ("192.0.2.3", 3, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "r%d@x.example")},
     {{"192.0.2.1/32", "relay"}, {"192.0.2.2/32", "relay"}, {"192.0.2.0/24", NULL}},
     4},
    {"class: 3 flagged IPs among neighbours that deliver mail need more",
     {ACC("192.0.2.%d", 12, 30), REJ("192.0.2.101", 3, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "r%d@x.example"),
      REJ("192.0.2.102", 3, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "r%d@x.example"),
      REJ("192.0.2.103", 3, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "r%d@x.example")},
     {{"192.0.2.101/32", "relay"}, {"192.0.2.102/32", "relay"}, {"192.0.2.103/32", "relay"}},
     3},
    {"protected networks are never blocked",
     {REJ("10.1.2.3", 5, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "r%d@x.example")},
     {{NULL, NULL}},
     0},
    {"the allow list always wins",
     {REJ("198.51.100.200", 5, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "r%d@x.example")},
     {{NULL, NULL}},
     0},
};

static void test_rules_table(void **state)
{
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		const struct casedef *cd = &cases[ci];
		cfg_setup();
		struct prefix allow;
		prefix_parse(&allow, "198.51.100.200", 14, false);
		prefix_list_add(&cfg.allow, &allow);
		struct aggregator *a = aggregator_new(&cfg);
		int64_t ts = T0;
		for (int s = 0; s < 6 && cd->steps[s].repeat; s++)
			feed(a, &cd->steps[s], &ts);
		struct collected got = {0};
		aggregator_take_changes(a, collect, &got);
		if (got.n != cd->ndecisions) {
			for (int i = 0; i < got.n; i++) {
				char b[PREFIX_STRLEN];
				prefix_format(&got.d[i].prefix, b);
				print_message("  got %s rule %s: %s\n", b, got.d[i].rule, got.d[i].reason);
			}
			fail_msg("%s: got %d decisions, want %d", cd->name, got.n, cd->ndecisions);
		}
		for (int w = 0; w < 3 && cd->want[w].prefix; w++) {
			const struct decision *d = find_decision(&got, cd->want[w].prefix);
			if (!d)
				fail_msg("%s: got no decision on %s", cd->name, cd->want[w].prefix);
			if (cd->want[w].rule && strcmp(d->rule, cd->want[w].rule) != 0)
				fail_msg("%s: got rule %s, want %s", cd->name, d->rule, cd->want[w].rule);
			if (strstr(d->reason, "script") || strstr(d->reason, "example"))
				fail_msg("%s: log text leaked into the reason: %s", cd->name, d->reason);
			if (d->until <= d->since || d->response == RESP_OBSERVE)
				fail_msg("%s: got until %lld since %lld response %s", cd->name,
					 (long long)d->until, (long long)d->since,
					 response_name(d->response));
		}
		collected_free(&got);
		aggregator_free(a);
		config_free(&cfg);
	}
}

static void test_durations(void **state)
{
	cfg_setup();
	static const struct {
		unsigned n;
		int64_t want;
	} t[] = {{0, 3600},    {1, 7200},	 {2, 14400},	  {3, 28800},
		 {9, 1843200}, {10, 30 * 86400}, {40, 30 * 86400}};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int64_t got = aggregator_duration(&cfg.rules, t[i].n, 42);
		if (got != t[i].want)
			fail_msg("duration #%u: got %lld, want %lld", t[i].n, (long long)got,
				 (long long)t[i].want);
	}
	cfg.rules.block_jitter = 0.1;
	int64_t lo = INT64_MAX, hi = 0;
	for (uint64_t s = 0; s < 200; s++) {
		int64_t d = aggregator_duration(&cfg.rules, 0, s);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		assert_int_equal(d, aggregator_duration(&cfg.rules, 0, s)); /* deterministic */
	}
	if (lo < 3240 || hi > 3960 || hi - lo < 200)
		fail_msg("jitter: got [%lld, %lld], want a spread inside [3240, 3960]", (long long)lo,
			 (long long)hi);
	config_free(&cfg);
}

/* A repeat offender's second decision lasts twice as long; expiry is
 * reported as an ended change with the id the callback gave. */
static void test_escalation_and_expiry(void **state)
{
	cfg_setup();
	struct aggregator *a = aggregator_new(&cfg);
	int64_t ts = T0;
	struct step relay = REJ("198.51.100.20", 3, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "r%d@x.example");
	feed(a, &relay, &ts);
	struct collected got = {0};
	aggregator_take_changes(a, collect, &got);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.d[0].until - got.d[0].since, 3600);
	const struct decision *v;
	size_t n;
	aggregator_active(a, &v, &n);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].id, 1001);

	aggregator_tick(a, got.d[0].until + 1);
	aggregator_take_changes(a, collect, &got);
	assert_int_equal(got.ended, 1);
	aggregator_active(a, &v, &n);
	assert_int_equal(n, 0);

	ts = got.d[0].until + 10;
	feed(a, &relay, &ts);
	aggregator_take_changes(a, collect, &got);
	assert_int_equal(got.n, 2);
	if (got.d[1].until - got.d[1].since != 7200)
		fail_msg("second decision: got %lld s, want 7200",
			 (long long)(got.d[1].until - got.d[1].since));
	collected_free(&got);
	aggregator_free(a);
	config_free(&cfg);
}

/* Dry run: decisions are made and explained with response observe, and
 * none is handed to the blocklists. */
static void test_dry_run(void **state)
{
	cfg_setup();
	cfg.rules.dry_run = true;
	struct aggregator *a = aggregator_new(&cfg);
	int64_t ts = T0;
	struct step relay = REJ("198.51.100.40", 3, 1, CAT_RELAY_DENIED, 554, ST_RCPT, "r%d@x.example");
	feed(a, &relay, &ts);
	struct collected got = {0};
	aggregator_take_changes(a, collect, &got);
	assert_int_equal(got.n, 1);
	if (got.d[0].response != RESP_OBSERVE)
		fail_msg("dry run: got response %s, want observe", response_name(got.d[0].response));
	assert_non_null(strstr(got.evidence[0], "\"dry_run\":true"));
	const struct decision *v;
	size_t n;
	aggregator_active(a, &v, &n);
	assert_int_equal(n, 0);
	collected_free(&got);
	aggregator_free(a);
	config_free(&cfg);
}

/* The evidence JSON names the rule, numbers against thresholds and the raw
 * lines (escaped by jansson), and the reason is a sentence of numbers. */
static void test_evidence(void **state)
{
	cfg_setup();
	cfg.rules.evidence_lines = 2;
	struct aggregator *a = aggregator_new(&cfg);
	int64_t ts = T0;
	struct step s = REJ("198.51.100.30", 6, 60, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "gone@example.com");
	feed(a, &s, &ts);
	struct collected got = {0};
	aggregator_take_changes(a, collect, &got);
	assert_int_equal(got.n, 1);
	json_error_t je;
	json_t *o = json_loads(got.evidence[0], 0, &je);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "rule")), "retry");
	assert_int_equal(json_integer_value(json_object_get(o, "value")), 3);
	assert_true(json_real_value(json_object_get(o, "threshold")) == 3.0);
	json_t *first = json_object_get(o, "first"), *last = json_object_get(o, "last");
	assert_int_equal(json_array_size(first), 2);
	assert_int_equal(json_array_size(last), 2);
	const char *l0 = json_string_value(json_array_get(first, 0));
	if (!l0 || strncmp(l0, "line 0 from [198.51.100.30]", 27) != 0)
		fail_msg("first line: got %s", l0 ? l0 : "(null)");
	const char *ll = json_string_value(json_array_get(last, 1));
	if (!ll || strncmp(ll, "line 3 ", 7) != 0)
		fail_msg("last line: got %s, want line 3 (the decision came at the 4th)", ll ? ll : "(null)");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(o, "counts"), "unknown_recipient")), 4);
	json_decref(o);
	if (strcmp(got.d[0].reason,
		   "retried 3 times after 550 (the same sender and recipient again, 1 pair, in "
		   "connections that delivered nothing) in 3m") != 0)
		fail_msg("reason: got '%s'", got.d[0].reason);
	collected_free(&got);
	aggregator_free(a);
	config_free(&cfg);
}

/* Four flagged classes inside one /16 widen the block to the /16; the
 * floor is never crossed. */
static void test_widening(void **state)
{
	for (int floor_case = 0; floor_case < 2; floor_case++) {
		cfg_setup();
		if (floor_case)
			cfg.v4_floor = 20;
		struct aggregator *a = aggregator_new(&cfg);
		int64_t ts = T0;
		for (int k = 1; k <= 4; k++) {
			char ip[32];
			snprintf(ip, sizeof ip, "100.%d.%d.%%d", 200, k);
			char ipbuf[32];
			snprintf(ipbuf, sizeof ipbuf, "%s", ip);
			struct step s =
			    REJ(ipbuf, 12, 1, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "w%d@example.com");
			feed(a, &s, &ts);
		}
		struct collected got = {0};
		aggregator_take_changes(a, collect, &got);
		const struct decision *w = find_decision(&got, "100.200.0.0/16");
		if (floor_case == 0 && (!w || strcmp(w->rule, "widen") != 0))
			fail_msg("widening: got no /16 decision among %d", got.n);
		if (floor_case == 1 && w)
			fail_msg("widening crossed the /20 floor");
		if (floor_case == 1 && !find_decision(&got, "100.200.0.0/20"))
			fail_msg("widening with floor /20: got no /20 decision among %d", got.n);
		collected_free(&got);
		aggregator_free(a);
		config_free(&cfg);
	}
}

/* max_tracked_ips bounds both tables, with senders spread one per class
 * (IPv6 /64s), and idle records are evicted by the tick. */
static void test_bounds(void **state)
{
	cfg_setup();
	cfg.rules.max_tracked_ips = 1000;
	cfg.rules.idle_evict = 3600;
	struct aggregator *a = aggregator_new(&cfg);
	struct event ev;
	memset(&ev, 0, sizeof ev);
	ev.kind = EV_CONNECT;
	ev.stage = ST_CONNECT;
	ev.mta = MTA_POSTFIX;
	ev.has_ip = true;
	ev.pid = -1;
	ev.code = -1;
	for (uint32_t i = 0; i < 5000; i++) {
		ev.ts_us = (T0 + i) * 1000000;
		ev.ip.family = IPADDR_V6;
		ev.ip.a[0] = 0x20;
		ev.ip.a[1] = 0x01;
		ev.ip.a[4] = (uint8_t)(i >> 8); /* a new /64 each time */
		ev.ip.a[5] = (uint8_t)i;
		ipaddr_class(&ev.ip, &cfg.classes, &ev.cls);
		aggregator_event(a, &ev);
	}
	struct agg_stats st;
	aggregator_stats(a, &st);
	if (st.ips > 1000 || st.classes > 1000)
		fail_msg("bounds: got %zu IPs and %zu classes, want at most 1000 each", st.ips, st.classes);
	aggregator_tick(a, T0 + 5000 + 7200);
	aggregator_tick(a, T0 + 5000 + 7200);
	aggregator_stats(a, &st);
	if (st.ips != 0 || st.classes != 0)
		fail_msg("idle eviction: got %zu IPs and %zu classes left, want 0", st.ips, st.classes);
	aggregator_free(a);
	config_free(&cfg);
}

/* An IPv6 sender that rotates through its own /64 costs its class record
 * and FOLD_MEMBERS address records, not one per address, and meets the
 * class rule; a provider's pool in one /64 that delivers mail is folded
 * the same way and never blocked. */
static void test_v6_rotation(void **state)
{
	static const struct {
		const char *name;
		struct step steps[2];
		const char *want; /* every decision on this prefix, NULL = none at all */
		int n;		  /* decisions wanted */
	} rot[] = {
	    {"a harvester rotating through its /64",
	     {REJ("2001:db8:66::%d", 3000, 2, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "u%d@example.com")},
	     "2001:db8:66::/64",
	     2 /* policy for an hour, then harvest: the rotation goes on */},
	    {"a provider's pool in one /64: 600 servers, one stale recipient in 10",
	     {ACC("2001:db8:77::%d", 600, 2),
	      REJ("2001:db8:77::%d0", 60, 20, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "stale@example.com")},
	     NULL,
	     0},
	};
	for (size_t k = 0; k < MXW_ARRAY_LEN(rot); k++) {
		cfg_setup();
		struct aggregator *a = aggregator_new(&cfg);
		int64_t ts = T0;
		for (size_t i = 0; i < MXW_ARRAY_LEN(rot[k].steps) && rot[k].steps[i].repeat; i++)
			feed(a, &rot[k].steps[i], &ts);
		struct collected got = {0};
		aggregator_take_changes(a, collect, &got);
		struct agg_stats st;
		aggregator_stats(a, &st);
		char px[PREFIX_STRLEN] = "";
		bool elsewhere = false;
		for (int i = 0; i < got.n && i < 16; i++) {
			prefix_format(&got.d[i].prefix, px);
			elsewhere |= !rot[k].want || strcmp(px, rot[k].want) != 0;
		}
		if (got.n != rot[k].n || elsewhere)
			fail_msg("%s: got %d decision(s) (last %s), want %d on %s", rot[k].name, got.n, px,
				 rot[k].n, rot[k].want ? rot[k].want : "none");
		if (st.ips > 20 || st.classes != 1 || st.folded == 0)
			fail_msg("%s: %zu address records, %zu class records, %llu events folded; want at "
				 "most 20, "
				 "1 and some",
				 rot[k].name, st.ips, st.classes, (unsigned long long)st.folded);
		collected_free(&got);
		aggregator_free(a);
		config_free(&cfg);
	}
}

/* The state file of a clean stop holds evidence lines (log text): 0640
 * whatever the umask, never world-readable. */
static void test_state_file_mode(void **state)
{
	cfg_setup();
	struct aggregator *a = aggregator_new(&cfg);
	char dir[] = "/tmp/mxw-aggstate-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof path, "%s/m.db.aggstate", dir);
	aggregator_set_state_path(a, path);
	int64_t ts = T0;
	struct step spam = REJ("203.0.113.9", 3, 10, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "s%d@example.com");
	feed(a, &spam, &ts);
	mode_t old = umask(0);
	int rc = aggregator_save(a);
	umask(old);
	struct stat st;
	assert_int_equal(rc, 0);
	assert_int_equal(stat(path, &st), 0);
	if ((st.st_mode & 0777) != 0640)
		fail_msg("state file mode %o, want 640", (unsigned)(st.st_mode & 0777));
	unlink(path);
	rmdir(dir);
	aggregator_free(a);
	config_free(&cfg);
}

/* The changes of a run, in order: kind, prefix, since, until, at. */
struct timeline {
	int n;
	struct {
		enum agg_change_kind kind;
		char prefix[PREFIX_STRLEN];
		int64_t since, until, at;
	} c[32];
};

static int64_t note_time(void *arg, const struct agg_change *ch)
{
	struct timeline *t = arg;
	if (t->n < 32) {
		t->c[t->n].kind = ch->kind;
		prefix_format(&ch->d->prefix, t->c[t->n].prefix);
		t->c[t->n].since = ch->d->since;
		t->c[t->n].until = ch->d->until;
		t->c[t->n].at = ch->at;
	}
	t->n++;
	return t->n;
}

/* One Postfix smtpd line of ip at ts; rdns NULL: "unknown[ip]". */
static void one(struct aggregator *a, int64_t ts, const char *ip, enum ev_kind kind, enum ev_category cat,
		int code, const char *rdns)
{
	struct event ev;
	memset(&ev, 0, sizeof ev);
	ev.ts_us = ts * 1000000;
	ev.mta = MTA_POSTFIX;
	ev.kind = kind;
	ev.cat = cat;
	ev.stage = kind == EV_CONNECT ? ST_CONNECT : ST_RCPT;
	ev.code = (int16_t)(code ? code : -1);
	ev.has_ip = true;
	assert_int_equal(ipaddr_parse(&ev.ip, ip, strlen(ip)), 0);
	ipaddr_class(&ev.ip, &cfg.classes, &ev.cls);
	static int32_t pid = 4242; /* each event a connection of its own */
	ev.pid = pid++;
	ev.host = (struct span){"mx", 2};
	ev.program = (struct span){"postfix/smtpd", 13};
	if (rdns)
		ev.rdns = (struct span){rdns, (uint32_t)strlen(rdns)};
	ev.from = (struct span){"a@example.org", 13};
	ev.to = (struct span){"b@example.com", 13};
	ev.line = (struct span){"a line", 6};
	aggregator_event(a, &ev);
}

/* The judge's clock is log time (aggregator.h, "Time"): with no tick at
 * all (an import), a decision ends at its until once an event comes after
 * it, before that event is judged, and the sender who comes back gets a
 * new, escalated decision; an event older than the clock is decided at the
 * clock. A record idle for longer than idle_evict is forgotten when it is
 * touched again, whether or not a sweep reached it, so sweeps at other
 * times (a wall-clock tick every minute) change no decision. */
static void test_log_clock(void **state)
{
	(void)state;
	cfg_setup();
	struct aggregator *a = aggregator_new(&cfg);
	struct timeline t = {0};
	for (int i = 0; i < 3; i++)
		one(a, T0 + i, "198.51.100.20", EV_REJECT, CAT_RELAY_DENIED, 554, "mx.example.net");
	aggregator_take_changes(a, note_time, &t);
	assert_int_equal(t.n, 1);
	int64_t until1 = t.c[0].until;
	assert_int_equal(until1 - t.c[0].since, 3600);
	for (int i = 0; i < 3; i++)
		one(a, T0 + 7200 + i, "198.51.100.20", EV_REJECT, CAT_RELAY_DENIED, 554, "mx.example.net");
	aggregator_take_changes(a, note_time, &t);
	if (t.n != 3 || t.c[1].kind != AGG_CHANGE_ENDED || t.c[1].at != until1 ||
	    t.c[2].kind != AGG_CHANGE_NEW || t.c[2].since != T0 + 7202 || t.c[2].until - t.c[2].since != 7200)
		fail_msg(
		    "came back after the until: got %d changes (%d at %lld, %d since %lld for %llds), want "
		    "ENDED at %lld, NEW since %lld for 7200s",
		    t.n, t.c[1].kind, (long long)t.c[1].at, t.c[2].kind, (long long)t.c[2].since,
		    (long long)(t.c[2].until - t.c[2].since), (long long)until1, T0 + 7202);
	assert_int_equal(aggregator_clock(a), T0 + 7202);
	/* a late line: decided at the clock, never in the past */
	for (int i = 0; i < 3; i++)
		one(a, T0 + 3600 + i, "203.0.113.30", EV_REJECT, CAT_RELAY_DENIED, 554, "mx.example.net");
	aggregator_take_changes(a, note_time, &t);
	if (t.n != 4 || t.c[3].since != T0 + 7202)
		fail_msg("a late line: got %d changes, since %lld, want one since %lld", t.n,
			 (long long)t.c[3].since, T0 + 7202);
	aggregator_tick(a, T0); /* never back */
	assert_int_equal(aggregator_clock(a), T0 + 7202);
	aggregator_free(a);
	config_free(&cfg);

	/* 198.51.100.9 has no rDNS (thresholds / no_rdns_weight) until its
	 * record is forgotten: 2 pregreets (protocol_count 3 / 1.5) block it within idle_evict, not
	 * after it. 40,000 other records are swept a sixth every 10 minutes of
	 * the clock (an event every 10 minutes moves it), so the sweep that
	 * passes it (the 6th) finds it not idle yet, and the next comes after
	 * it is back: only stale() forgets it; the same with a tick every
	 * minute in between */
	for (int k = 0; k < 4; k++) {
		bool idle = k & 1, ticks = k & 2;
		int64_t back = T0 + (idle ? 3700 : 3500);
		cfg_setup();
		cfg.rules.idle_evict = 3600;
		a = aggregator_new(&cfg);
		char ip[32];
		for (int i = 0; i < 40000; i++) {
			snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
			one(a, T0, ip, EV_CONNECT, CAT_NONE, 0, "mail.example.net");
		}
		one(a, T0 + 1, "198.51.100.9", EV_CONNECT, CAT_NONE, 0, NULL);
		for (int64_t w = T0 + 60; w < back; w += 60) {
			if (ticks)
				aggregator_tick(a, w);
			if ((w - T0) % 600 == 0)
				one(a, w, "10.0.0.1", EV_CONNECT, CAT_NONE, 0, "mail.example.net");
		}
		for (int i = 0; i < 2; i++)
			one(a, back + i, "198.51.100.9", EV_PROTOCOL, CAT_PREGREET, 0, "mail.example.net");
		struct timeline u = {0};
		aggregator_take_changes(a, note_time, &u);
		if (u.n != (idle ? 0 : 1))
			fail_msg("back after %llds%s: got %d decisions, want %d", (long long)(back - T0),
				 ticks ? ", sweeps every minute" : "", u.n, idle ? 0 : 1);
		aggregator_free(a);
		config_free(&cfg);
	}
}

/* A class's only member that stays active keeps its class's seen record
 * through idle eviction (its own events never touch it), so a second
 * member later still makes the class record; one idle for longer than
 * idle_evict is forgotten, class and all. */
static void test_lone_member_eviction(void **state)
{
	for (int active = 0; active < 2; active++) {
		cfg_setup();
		cfg.rules.idle_evict = 3600;
		struct aggregator *a = aggregator_new(&cfg);
		int64_t ts = T0;
		struct step first = CONN("198.51.100.7", 1, 1);
		feed(a, &first, &ts);
		if (active) { /* every 50 minutes: never idle for an hour */
			for (int k = 0; k < 3; k++) {
				ts += 3000;
				feed(a, &first, &ts);
			}
		} else {
			ts += 9000;
		}
		aggregator_tick(a, ts);
		ts += 60;
		struct step second = CONN("198.51.100.8", 1, 1);
		feed(a, &second, &ts);
		struct agg_stats st;
		aggregator_stats(a, &st);
		size_t want_ips = active ? 2 : 1, want_classes = active ? 1 : 0;
		if (st.classes != want_classes || st.ips != want_ips)
			fail_msg("%s first member: got %zu IPs and %zu class records, want %zu and %zu",
				 active ? "an active" : "an idle", st.ips, st.classes, want_ips,
				 want_classes);
		aggregator_free(a);
		config_free(&cfg);
	}
}

/* Memory: fixed-size records; well under 268 bytes per tracked IP. */
static void test_memory_per_ip(void **state)
{
	cfg_setup();
	struct aggregator *a = aggregator_new(&cfg);
	struct event ev;
	memset(&ev, 0, sizeof ev);
	ev.kind = EV_CONNECT;
	ev.mta = MTA_POSTFIX;
	ev.has_ip = true;
	ev.pid = -1;
	ev.code = -1;
	for (uint32_t i = 0; i < 200000; i++) {
		ev.ts_us = (T0 + i / 100) * 1000000;
		ev.ip.family = IPADDR_V4;
		ev.ip.a[0] = 11;
		ev.ip.a[1] = (uint8_t)(i >> 16);
		ev.ip.a[2] = (uint8_t)(i >> 8);
		ev.ip.a[3] = (uint8_t)i;
		ipaddr_class(&ev.ip, &cfg.classes, &ev.cls);
		aggregator_event(a, &ev);
	}
	struct agg_stats st;
	aggregator_stats(a, &st);
	assert_int_equal(st.ips, 200000);
	double per_ip = (double)st.bytes / (double)st.ips;
	print_message("  %zu IPs, %zu classes, %.0f bytes per IP (all tables)\n", st.ips, st.classes, per_ip);
	if (per_ip > 268)
		fail_msg("got %.0f bytes per IP, want < 268", per_ip);
	aggregator_free(a);
	config_free(&cfg);
}

/* A decision in force whose prefix keeps misbehaving is upgraded when its
 * score calls for a stronger response: same id and since, response and
 * score up, until never earlier, never downgraded; a manual decision is
 * never touched. score_reject 6 and score_drop 10 with the relay rule
 * (severity 4, threshold 3): 3 relay attempts = score 4 (defer), 5 = 6.67
 * (reject), 8 = 10.67 (drop). */
static void test_upgrade(void **state)
{
	static const struct {
		const char *name;
		int batches[4]; /* relay attempts fed before each aggregator_take_changes */
		int want_new;
		int want_up;
		enum response want_resp;
		enum response want_from_last;
	} t[] = {
	    {"one step at a time", {3, 2, 3, 2}, 1, 2, RESP_DROP, RESP_REJECT},
	    {"all in one batch", {10, 0, 0, 0}, 1, 2, RESP_DROP, RESP_REJECT},
	    {"defer stays defer below the reject score", {3, 1, 0, 0}, 1, 0, RESP_DEFER, RESP_OBSERVE},
	    {"drop is the top: more changes nothing", {8, 5, 5, 0}, 1, 2, RESP_DROP, RESP_REJECT},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		cfg_setup();
		cfg.rules.score_defer = 1;
		cfg.rules.score_reject = 6;
		cfg.rules.score_drop = 10;
		cfg.rules.block_base = 3600;
		struct aggregator *a = aggregator_new(&cfg);
		int64_t ts = T0;
		struct collected got = {0};
		int64_t first_until = 0;
		for (int b = 0; b < 4; b++) {
			struct step s = REJ("198.51.100.50", t[i].batches[b], 30, CAT_RELAY_DENIED, 554,
					    ST_RCPT, "r%d@x.example");
			if (s.repeat)
				feed(a, &s, &ts);
			aggregator_take_changes(a, collect, &got);
			if (b == 0 && got.n == 1)
				first_until = got.d[0].until;
		}
		if (got.n != t[i].want_new || got.nup != t[i].want_up)
			fail_msg("%s: got %d new and %d upgrades, want %d and %d", t[i].name, got.n, got.nup,
				 t[i].want_new, t[i].want_up);
		const struct decision *v;
		size_t n;
		aggregator_active(a, &v, &n);
		assert_int_equal(n, 1);
		if (v[0].response != t[i].want_resp)
			fail_msg("%s: got response %s, want %s", t[i].name, response_name(v[0].response),
				 response_name(t[i].want_resp));
		assert_int_equal(v[0].id, 1001);
		assert_int_equal(v[0].since, got.d[0].since);
		if (v[0].until < first_until)
			fail_msg("%s: until went from %lld down to %lld", t[i].name, (long long)first_until,
				 (long long)v[0].until);
		/* an upgrade counts the decision's own hour again from its time,
		 * never an earlier extension on top */
		if (v[0].until > ts + 3600)
			fail_msg("%s: until %lld is more than an hour after the last line %lld", t[i].name,
				 (long long)v[0].until, (long long)ts);
		for (int u = 0; u < got.nup && u < 8; u++) {
			enum response before = u ? got.up[u - 1].response : got.d[0].response;
			if (got.up[u].id != 1001 || got.up_from[u] != before || got.up[u].response <= before)
				fail_msg("%s: upgrade %d: got id %lld %s -> %s, want 1001 from %s upwards",
					 t[i].name, u, (long long)got.up[u].id, response_name(got.up_from[u]),
					 response_name(got.up[u].response), response_name(before));
			if (strstr(got.up[u].reason, "script") || strstr(got.up[u].reason, "example"))
				fail_msg("%s: log text in the reason: %s", t[i].name, got.up[u].reason);
		}
		if (got.nup && got.up_from[got.nup - 1] != t[i].want_from_last)
			fail_msg("%s: last upgrade from %s, want %s", t[i].name,
				 response_name(got.up_from[got.nup - 1]), response_name(t[i].want_from_last));
		collected_free(&got);
		aggregator_free(a);
		config_free(&cfg);
	}
}

/* The response: a first offence that is no clear attack gets reject
 * however high its score (the reply reaches the sender's postmaster), a
 * clear attack (relay probing) drop at once, a repeat offender drop. */
static void test_first_offence(void **state)
{
	cfg_setup();
	struct aggregator *a = aggregator_new(&cfg);
	int64_t ts = T0;
	/* 13 refusals of one pair: 12 retries, score 2 x 12/3 = 8 */
	struct step retry =
	    REJ("198.51.100.70", 13, 30, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "gone@example.com");
	feed(a, &retry, &ts);
	struct step relay = REJ("198.51.100.71", 3, 30, CAT_RELAY_DENIED, 554, ST_RCPT, "r%d@x.example");
	feed(a, &relay, &ts);
	struct collected got = {0};
	aggregator_take_changes(a, collect, &got);
	const struct decision *d = find_decision(&got, "198.51.100.70/32");
	if (!d || d->response != RESP_REJECT || got.nup != 0)
		fail_msg("first retry offence: got %s with %d upgrades, want reject and none",
			 d ? response_name(d->response) : "no decision", got.nup);
	d = find_decision(&got, "198.51.100.71/32");
	if (!d || d->response != RESP_DROP)
		fail_msg("relay probing: got %s, want drop", d ? response_name(d->response) : "no decision");
	/* the retrier comes back after its block ended: drop, for twice as long */
	int64_t until = find_decision(&got, "198.51.100.70/32")->until;
	aggregator_tick(a, until + 1);
	ts = until + 60;
	struct step again =
	    REJ("198.51.100.70", 13, 30, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "other@example.com");
	feed(a, &again, &ts);
	aggregator_take_changes(a, collect, &got);
	if (got.n != 3 || got.d[2].response != RESP_DROP || got.d[2].until - got.d[2].since != 7200)
		fail_msg(
		    "the retrier's second offence: got %d decisions, the last %s for %llds, want drop for 2h",
		    got.n, got.n >= 3 ? response_name(got.d[2].response) : "-",
		    got.n >= 3 ? (long long)(got.d[2].until - got.d[2].since) : 0LL);
	collected_free(&got);
	aggregator_free(a);
	config_free(&cfg);
}

/* Refusals our own block caused (they name us) are the sender coming back
 * while blocked: never its class's evidence nor any other rule's; from
 * returned_count connections on the block drops, and the reason says so. */
static void test_own_refusals(void **state)
{
	cfg_setup();
	struct aggregator *a = aggregator_new(&cfg);
	int64_t ts = T0;
	struct step spam =
	    REJ("203.0.113.40", 10, 30, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "s%d@example.com");
	feed(a, &spam, &ts);
	struct collected got = {0};
	aggregator_take_changes(a, collect, &got);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.d[0].response, RESP_REJECT);
	/* blocked: our table refuses it, 40 connections in 40 minutes */
	struct step ours = {
	    40,
	    60,
	    "203.0.113.40",
	    EV_REJECT,
	    CAT_CLIENT_POLICY,
	    554,
	    ST_RCPT,
	    "s%d@example.com",
	    NULL,
	    false,
	    "<203.0.113.40>: Client host rejected: mxwarden harvest: tried 10 unknown recipients"};
	feed(a, &ours, &ts);
	/* neighbours each refused once for a stale address */
	struct step nb = REJ("203.0.113.%d", 4, 20, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "stale@example.com");
	feed(a, &nb, &ts);
	aggregator_take_changes(a, collect, &got);
	if (got.n != 1)
		fail_msg("own refusals: got %d decisions (a class?), want the one on the sender", got.n);
	if (got.nup != 1 || got.up[0].response != RESP_DROP || strcmp(got.up[0].rule, "returned") != 0 ||
	    strncmp(got.up[0].reason, "came back 30 times while blocked", 32) != 0)
		fail_msg("own refusals: got %d upgrades (%s: %s), want one to drop by rule returned", got.nup,
			 got.nup ? got.up[0].rule : "-", got.nup ? got.up[0].reason : "-");
	collected_free(&got);
	aggregator_free(a);
	config_free(&cfg);
}

/* The engine's part for test_restart_keeps_response: store each change. */
static int64_t store(void *arg, const struct agg_change *ch)
{
	struct db *db = arg;
	if (ch->kind == AGG_CHANGE_ENDED)
		return db_decision_end(db, ch->d->id, ch->at, "engine", ch->end_reason) < 0 ? -1 : 0;
	if (ch->kind == AGG_CHANGE_UPGRADED)
		return db_decision_upgrade(db, ch->d, ch->from, ch->evidence_json, ch->at) < 0 ? -1
											       : ch->d->id;
	struct decision d = *ch->d;
	d.id = 0;
	return db_decision_insert(db, &d, ch->evidence_json, "engine") < 0 ? -1 : d.id;
}

/*
 * test_own_refusals across a restart: the sender decided (reject) before
 * it, then refused by our own block after it, is judged as without the
 * restart (an upgrade to drop by rule returned, no policy decision): its
 * record gets the response of the decision in force back, from the state
 * of a clean stop and from a checkpoint. (Before the fix the restore set
 * F_DECIDED without the response, so the refusals counted as the MTA's
 * policy: the bug an import killed and run again showed, issue 14.)
 */
static void test_restart_keeps_response(void **state)
{
	enum { NONE, STATE_FILE, CHECKPOINT };
	static const struct {
		const char *name;
		int how;
	} t[] = {
	    {"without a restart", NONE},
	    {"restarted from the state of a clean stop", STATE_FILE},
	    {"restarted from a checkpoint", CHECKPOINT},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		cfg_setup();
		char *dir = tl_scratch("aggrestart", false);
		assert_non_null(dir);
		char *path = tl_path(dir, "m.db"), *spath = tl_path(dir, "m.db.aggstate");
		char err[256];
		struct db *db = db_open(path, DB_RW | DB_FAST, err, sizeof err);
		assert_non_null(db);
		struct aggregator *a = aggregator_new(&cfg);
		int64_t ts = T0;
		struct step spam =
		    REJ("203.0.113.40", 10, 30, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "s%d@example.com");
		feed(a, &spam, &ts);
		assert_int_equal(db_begin(db), 0);
		assert_int_equal(aggregator_take_changes(a, store, db), 1);
		if (t[i].how == CHECKPOINT) {
			char *data;
			size_t len;
			int64_t newest;
			assert_int_equal(aggregator_checkpoint(a, &data, &len, &newest), 0);
			assert_int_equal(db_checkpoint_put(db, ts, newest, 100, data, len), 0);
			free(data);
		}
		assert_int_equal(db_commit(db), 0);
		if (t[i].how != NONE) {
			if (t[i].how == STATE_FILE) {
				aggregator_set_state_path(a, spath);
				assert_int_equal(aggregator_save(a), 0);
			}
			aggregator_free(a);
			a = aggregator_new(&cfg); /* the restart */
			if (t[i].how == STATE_FILE)
				aggregator_set_state_path(a, spath);
			assert_int_equal(aggregator_restore(a, db, ts, NULL, NULL), 0);
		}
		struct step ours = {
		    40,
		    60,
		    "203.0.113.40",
		    EV_REJECT,
		    CAT_CLIENT_POLICY,
		    554,
		    ST_RCPT,
		    "s%d@example.com",
		    NULL,
		    false,
		    "<203.0.113.40>: Client host rejected: mxwarden harvest: tried 10 unknown recipients"};
		feed(a, &ours, &ts);
		struct collected got = {0};
		aggregator_take_changes(a, collect, &got);
		if (got.n != 0 || got.nup != 1 || got.up[0].response != RESP_DROP ||
		    strcmp(got.up[0].rule, "returned") != 0)
			fail_msg(
			    "%s: got %d decisions and %d upgrades (%s), want one upgrade to drop by rule "
			    "returned",
			    t[i].name, got.n, got.nup, got.nup ? got.up[0].rule : "-");
		collected_free(&got);
		aggregator_free(a);
		db_close(db);
		free(path);
		free(spath);
		tl_scratch_free(&dir);
		config_free(&cfg);
	}
}

/* An old distribution list: one connection, 15 departed recipients
 * refused and 30 accepted; a dictionary attack: the same 15 refused and
 * nothing accepted. */
static void test_distribution_list(void **state)
{
	for (int list = 0; list < 2; list++) {
		cfg_setup();
		struct aggregator *a = aggregator_new(&cfg);
		int64_t ts = T0;
		char to[64];
		struct step dead = REJ("198.51.100.90", 1, 0, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "x");
		for (int k = 0; k < 15; k++) {
			snprintf(to, sizeof to, "left%d@example.com", k);
			send_event(a, ts, "198.51.100.90", 400, &dead, to, k);
		}
		struct step acc = ACC("198.51.100.90", 1, 0);
		if (list)
			send_event(a, ts, "198.51.100.90", 400, &acc, "x@example.com", 0);
		struct event ev;
		memset(&ev, 0, sizeof ev);
		ev.ts_us = ts * 1000000;
		ev.mta = MTA_POSTFIX;
		ev.kind = EV_DISCONNECT;
		ev.stage = ST_OTHER;
		ev.code = -1;
		ev.has_ip = true;
		ipaddr_parse(&ev.ip, "198.51.100.90", 13);
		ipaddr_class(&ev.ip, &cfg.classes, &ev.cls);
		ev.pid = 400;
		ev.host = (struct span){"mx", 2};
		ev.program = (struct span){"postfix/smtpd", 13};
		ev.rdns = (struct span){"lists.example.net", 17};
		ev.stats.present = true;
		ev.stats.rcpt_ok = (uint16_t)(list ? 30 : 0);
		ev.stats.rcpt_total = (uint16_t)(list ? 45 : 15);
		ev.stats.data_ok = ev.stats.data_total = (uint16_t)(list ? 1 : 0);
		aggregator_event(a, &ev);
		struct collected got = {0};
		aggregator_take_changes(a, collect, &got);
		if (list && got.n != 0)
			fail_msg("distribution list: got %d decisions (%s: %s), want none", got.n,
				 got.d[0].rule, got.d[0].reason);
		if (!list && (got.n != 1 || strcmp(got.d[0].rule, "harvest") != 0))
			fail_msg("dictionary attack: got %d decisions, want one by rule harvest", got.n);
		collected_free(&got);
		aggregator_free(a);
		config_free(&cfg);
	}
}

/* A mailing list posts to a dead subscriber and, in the same connection,
 * to its live ones: new messages, never retries; a bot refused for the same
 * pair in connections that deliver nothing is retrying. */
static void test_list_is_no_retry(void **state)
{
	for (int list = 0; list < 2; list++) {
		cfg_setup();
		struct aggregator *a = aggregator_new(&cfg);
		int64_t ts = T0;
		struct step dead =
		    REJ("198.51.100.80", 1, 0, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "gone@example.com");
		struct step live = ACC("198.51.100.80", 1, 0);
		for (int post = 0; post < 20; post++) {
			send_event(a, ts, "198.51.100.80", 300, &dead, "gone@example.com", post);
			if (list)
				send_event(a, ts, "198.51.100.80", 300, &live, "x@example.com", post);
			disconnect(a, ts, "198.51.100.80", 300);
			ts += 180; /* a busy thread: a post every 3 minutes */
		}
		struct collected got = {0};
		aggregator_take_changes(a, collect, &got);
		if (list && got.n != 0)
			fail_msg("mailing list: got %d decisions (%s: %s), want none", got.n, got.d[0].rule,
				 got.d[0].reason);
		if (!list && (got.n != 1 || strcmp(got.d[0].rule, "retry") != 0))
			fail_msg("retrying bot: got %d decisions, want one by rule retry", got.n);
		collected_free(&got);
		aggregator_free(a);
		config_free(&cfg);
	}
}

/* A list server with VERP (one message a member) or an MTA that delivers
 * each message in a process of its own opens many connections at once,
 * 70 here against flood_ip_count 60, the first to end being those refused
 * for a departed member: they deliver before they end, and the flood is
 * judged at the ends, so it is no flood. The same connections ending with
 * nothing delivered are one. */
static void test_burst_delivers(void **state)
{
	for (int delivers = 0; delivers < 2; delivers++) {
		cfg_setup();
		struct aggregator *a = aggregator_new(&cfg);
		const char *ip = "198.51.100.81";
		int64_t ts = T0;
		struct step conn = CONN(ip, 1, 0);
		struct step dead = REJ(ip, 1, 0, CAT_UNKNOWN_RECIPIENT, 550, ST_RCPT, "gone@example.com");
		char to[64];
		struct step live = ACC(ip, 1, 0);
		for (int i = 0; i < 70; i++)
			send_event(a, ts + i / 10, ip, 400 + i, &conn, NULL, i);
		ts += 8;
		for (int i = 0; i < 70; i++) { /* the departed members' connections end first */
			int k =
			    i < 7 ? i * 10 : i - 7 + (i - 7) / 9 + 1; /* 0, 10 .. 60, then 1 .. 9, 11 .. */
			if (delivers) { /* each departed member its own address (VERP) */
				snprintf(to, sizeof to,
					 k % 10 == 0 ? "gone%d@example.com" : "x%d@example.com", k);
				send_event(a, ts, ip, 400 + k, k % 10 == 0 ? &dead : &live, to, i);
			}
			disconnect(a, ts, ip, 400 + k);
			ts += i % 5 == 4;
		}
		struct collected got = {0};
		aggregator_take_changes(a, collect, &got);
		if (delivers && got.n != 0)
			fail_msg("a burst that delivers: got %d decisions (%s: %s), want none", got.n,
				 got.d[0].rule, got.d[0].reason);
		if (!delivers && (got.n != 1 || strcmp(got.d[0].rule, "flood") != 0))
			fail_msg("a burst that delivers nothing: got %d decisions, want one by rule flood",
				 got.n);
		collected_free(&got);
		aggregator_free(a);
		config_free(&cfg);
	}
}

/* The checkpoint in the database: a class connection flood cut in two by
 * a restart (a new aggregator restored from the database) gives the same
 * decision as one aggregator fed everything; without the checkpoint the
 * restored aggregator has forgotten the connects (they are not stored as
 * rows) and decides nothing. A truncated image is refused whole (its
 * tables emptied again): as without a checkpoint. */
static void test_checkpoint_restore(void **state)
{
	static const struct {
		const char *name;
		bool checkpoint, truncated;
		const char *want; /* the decision on the class, NULL = none */
		unsigned conns;	  /* the connections its evidence counts */
	} t[] = {
	    {"restored from the checkpoint", true, false, "203.0.113.0/24", 150},
	    {"restored without a checkpoint", false, false, NULL, 0},
	    {"a truncated checkpoint is not half loaded", true, true, NULL, 0},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		cfg_setup();
		char path[] = "/tmp/mxw-agg-ckpt-XXXXXX";
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		close(fd);
		unlink(path);
		char err[256];
		struct db *db = db_open(path, DB_RW | DB_FAST, err, sizeof err);
		assert_non_null(db);
		struct aggregator *a = aggregator_new(&cfg);
		int64_t ts = T0;
		struct step part1 = CONN("203.0.113.%d", 100, 1); /* 100 of 150: under */
		feed(a, &part1, &ts);
		struct collected got = {0};
		aggregator_take_changes(a, collect, &got);
		assert_int_equal(got.n, 0);
		if (t[i].checkpoint) {
			char *data;
			size_t len;
			int64_t newest;
			assert_int_equal(aggregator_checkpoint(a, &data, &len, &newest), 0);
			assert_int_equal(newest, (ts - 1) * 1000000);
			assert_int_equal(db_begin(db), 0);
			if (t[i].truncated)
				len -= 100;
			assert_int_equal(db_checkpoint_put(db, ts, newest, 100, data, len), 0);
			assert_int_equal(db_commit(db), 0);
			free(data);
		}
		aggregator_free(a);
		a = aggregator_new(&cfg); /* the restart */
		assert_int_equal(aggregator_restore(a, db, ts, NULL, NULL), 0);
		struct step part2 = CONN("203.0.113.%d", 60, 1);
		feed(a, &part2, &ts);
		aggregator_take_changes(a, collect, &got);
		const struct decision *d = t[i].want ? find_decision(&got, t[i].want) : NULL;
		if (t[i].want && (!d || strcmp(d->rule, "flood") != 0))
			fail_msg("%s: got %d decisions, want a flood decision on %s", t[i].name, got.n,
				 t[i].want);
		if (!t[i].want && got.n != 0)
			fail_msg("%s: got %d decisions, want none", t[i].name, got.n);
		if (d) {
			json_t *o = json_loads(got.evidence[0], 0, NULL);
			unsigned c = (unsigned)json_integer_value(
			    json_object_get(json_object_get(o, "numbers"), "connections"));
			json_decref(o);
			if (c != t[i].conns)
				fail_msg("%s: got %u connections, want %u", t[i].name, c, t[i].conns);
		}
		collected_free(&got);
		aggregator_free(a);
		db_close(db);
		unlink(path);
		config_free(&cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rules_table),
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_escalation_and_expiry),
	    cmocka_unit_test(test_evidence),
	    cmocka_unit_test(test_widening),
	    cmocka_unit_test(test_dry_run),
	    cmocka_unit_test(test_upgrade),
	    cmocka_unit_test(test_first_offence),
	    cmocka_unit_test(test_own_refusals),
	    cmocka_unit_test(test_list_is_no_retry),
	    cmocka_unit_test(test_burst_delivers),
	    cmocka_unit_test(test_distribution_list),
	    cmocka_unit_test(test_checkpoint_restore),
	    cmocka_unit_test(test_restart_keeps_response),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_v6_rotation),
	    cmocka_unit_test(test_state_file_mode),
	    cmocka_unit_test(test_lone_member_eviction),
	    cmocka_unit_test(test_log_clock),
	    cmocka_unit_test(test_memory_per_ip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
