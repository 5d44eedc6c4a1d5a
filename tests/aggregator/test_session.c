/* test_session.c - joining what the MTA logs apart, from real log lines
 * through the parsers: Sendmail rejections held by queue id until the line
 * naming the client (applied in log order, bounded, counted when never
 * attributed), and the stored rows getting their client exactly once, also
 * across a crash and restart. Tables of got/want cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "aggregator/aggregator.h"
#include "db/db.h"
#include "parsers/parsers.h"

static struct config cfg;
static struct parser *P;

static int setup(void **state)
{
	setenv("MXWARDEN_NOW", "2026-11-28T00:00:00Z", 1);
	setenv("MXWARDEN_NOW_FROZEN", "1", 1);
	clock_reset();
	config_defaults(&cfg);
	free(cfg.timezone);
	cfg.timezone = xstrdup("UTC");
	struct errlist e = {0};
	config_validate(&cfg, &e);
	P = parser_new(&cfg, &e);
	assert_non_null(P);
	errlist_free(&e);
	cfg.protected_local = false; /* this host's addresses differ from machine to machine */
	config_protected_build(&cfg, NULL);
	cfg.rules.block_jitter = 0;
	/* these cases test joining lines, not thresholds: one connection's
	 * evidence may decide, a retry and five unknown recipients do */
	cfg.rules.min_sessions = 1;
	cfg.rules.retry_count = 1;
	cfg.rules.harvest_distinct = 5;
	return 0;
}

static int teardown(void **state)
{
	parser_free(P);
	config_free(&cfg);
	return 0;
}

/* What a run of lines left: decisions "prefix rule" joined by spaces,
 * with the aggregator's counters. */
struct got {
	char decisions[512];
	char reasons[1024];
	struct agg_stats st;
};

static int64_t note_change(void *arg, const struct agg_change *ch)
{
	struct got *g = arg;
	if (ch->kind != AGG_CHANGE_NEW)
		return 0;
	char px[PREFIX_STRLEN];
	prefix_format(&ch->d->prefix, px);
	size_t n = strlen(g->decisions);
	snprintf(g->decisions + n, sizeof g->decisions - n, "%s%s %s", n ? " " : "", px, ch->d->rule);
	n = strlen(g->reasons);
	snprintf(g->reasons + n, sizeof g->reasons - n, "%s%s", n ? "|" : "", ch->d->reason);
	return 0;
}

static void feed_line(struct aggregator *a, struct parser_source *src, const char *line, int64_t row)
{
	struct event ev;
	int reason;
	int rc = parser_parse(P, src, line, strlen(line), &ev, &reason);
	if (rc < 0)
		fail_msg("%s: unparsed (%s)", line, parser_reason_name(reason));
	if (rc == 1)
		aggregator_event_row(a, &ev, row);
}

static void run_lines(const char *const *lines, struct got *g, int64_t tick)
{
	memset(g, 0, sizeof *g);
	struct aggregator *a = aggregator_new(&cfg);
	struct parser_source *src = parser_source_new(P, "test", MTA_UNKNOWN);
	for (size_t i = 0; lines[i]; i++) {
		feed_line(a, src, lines[i], 0);
		aggregator_take_changes(a, note_change, g);
	}
	if (tick) {
		/* a line from another client at tick: the judge's clock moves
		 * with the log, and connections that never logged their end
		 * are judged once quiet */
		char later[160];
		time_t tt = (time_t)tick;
		struct tm tm;
		gmtime_r(&tt, &tm);
		strftime(later, sizeof later,
			 "%b %e %H:%M:%S mx postfix/smtpd[9]: connect from unknown[198.51.100.99]", &tm);
		if (tick > 86400)
			feed_line(a, src, later, 0);
		aggregator_tick(a, tick);
		aggregator_take_changes(a, note_change, g);
	}
	aggregator_stats(a, &g->st);
	parser_source_free(src);
	aggregator_free(a);
}

#define SM	       "Nov 27 21:44:0"
#define UU(s, qid, to) "Nov 27 21:4" s " mx sm-mta[18231]: " qid ": <" to ">... User unknown"
#define FROM0(s, qid, from, ip)                                   \
	"Nov 27 21:4" s " mx sm-mta[18231]: " qid ": from=<" from \
	">, size=0, class=0, nrcpts=0, proto=ESMTP, "             \
	"daemon=MTA-v4, relay=[" ip "]"
#define LOST(s, qid, ip) \
	"Nov 27 21:4" s " mx sm-mta[18231]: " qid ": lost input channel from [" ip "] to MTA-v4 after rcpt"

struct hcase {
	const char *name;
	const char *lines[16];
	const char *decisions; /* "prefix rule ...", "" = none */
	uint64_t attributed, unattributed, held;
	const char *reason; /* a substring of the reasons, NULL = unchecked */
};

static const struct hcase hold_cases[] = {
    {"harvest: ten unknown recipients before the line naming the client",
     {UU("4:01", "kARLi2VE099664", "a1@example.com"), UU("4:01", "kARLi2VE099664", "a2@example.com"),
      UU("4:01", "kARLi2VE099664", "a3@example.com"), UU("4:01", "kARLi2VE099664", "a4@example.com"),
      UU("4:01", "kARLi2VE099664", "a5@example.com"), UU("4:02", "kARLi2VE099664", "a6@example.com"),
      UU("4:02", "kARLi2VE099664", "a7@example.com"), UU("4:02", "kARLi2VE099664", "a8@example.com"),
      UU("4:02", "kARLi2VE099664", "a9@example.com"), UU("4:02", "kARLi2VE099664", "a10@example.com"),
      FROM0("4:03", "kARLi2VE099664", "news@fafowe.icu", "42.11.13.224"), NULL},
     "42.11.13.224/32 harvest",
     10,
     0,
     0,
     "tried 10 unknown recipients"},
    {"retry: the same recipient refused again, the sender from the from= line",
     {UU("4:02", "kARLi2VE099664", "j.smith@example.com"),
      FROM0("4:03", "kARLi2VE099664", "postmaster@qaweqa.biz", "171.66.77.233"),
      UU("4:08", "kARLi8Xw066103", "j.smith@example.com"),
      FROM0("4:09", "kARLi8Xw066103", "postmaster@qaweqa.biz", "171.66.77.233"), NULL},
     "171.66.77.233/32 retry",
     2,
     0,
     0,
     "retried 1 time after 550"},
    {"a lost connection names the client as well",
     {UU("4:21", "kARLiKcX055754", "j.smith@example.com"),
      UU("4:21", "kARLiKcX055754", "j.smith@example.com"), LOST("4:21", "kARLiKcX055754", "171.66.77.233"),
      NULL},
     "171.66.77.233/32 retry",
     2,
     0,
     0,
     NULL},
    {"no line names the client: held, nothing decided",
     {UU("4:01", "kARLi2VE099664", "a1@example.com"), UU("4:01", "kARLi2VE099664", "a2@example.com"),
      FROM0("4:03", "kARLi2VE099665", "news@fafowe.icu", "42.11.13.224"), NULL},
     "",
     0,
     0,
     2,
     NULL},
    {"the same queue id on another syslog host is another message",
     {UU("4:01", "kARLi2VE099664", "j.smith@example.com"),
      UU("4:01", "kARLi2VE099664", "j.smith@example.com"),
      "Nov 27 21:44:03 mx2 sm-mta[18231]: kARLi2VE099664: from=<x@y.example>, size=0, class=0, nrcpts=0, "
      "proto=ESMTP, daemon=MTA-v4, relay=[42.11.13.224]",
      NULL},
     "",
     0,
     0,
     2,
     NULL},
    {"a queue id whose client is known applies later lines at once",
     {LOST("4:01", "kARLi2VE099664", "171.66.77.233"), UU("4:02", "kARLi2VE099664", "j.smith@example.com"),
      NULL},
     "",
     0,
     0,
     1,
     NULL},
    {"a client known first, then two refusals of the same pair: applied at once",
     {UU("4:01", "kARLi2VE099664", "x@example.com"), LOST("4:01", "kARLi2VE099664", "171.66.77.233"),
      UU("4:02", "kARLi2VE099664", "j.smith@example.com"),
      UU("4:02", "kARLi2VE099664", "j.smith@example.com"), NULL},
     "171.66.77.233/32 retry",
     3,
     0,
     0,
     NULL},
};

static void test_hold_table(void **state)
{
	for (size_t i = 0; i < MXW_ARRAY_LEN(hold_cases); i++) {
		const struct hcase *c = &hold_cases[i];
		struct got g;
		/* a quarter of an hour later: connections without an end line
		 * are judged once quiet */
		run_lines(c->lines, &g, 1795815842 + 900);
		if (strcmp(g.decisions, c->decisions) != 0)
			fail_msg("%s: decisions: got \"%s\", want \"%s\"", c->name, g.decisions,
				 c->decisions);
		if (g.st.attributed != c->attributed || g.st.unattributed != c->unattributed ||
		    g.st.held != c->held)
			fail_msg("%s: attributed/unattributed/held: got %llu/%llu/%llu, want %llu/%llu/%llu",
				 c->name, (unsigned long long)g.st.attributed,
				 (unsigned long long)g.st.unattributed, (unsigned long long)g.st.held,
				 (unsigned long long)c->attributed, (unsigned long long)c->unattributed,
				 (unsigned long long)c->held);
		if (c->reason && !strstr(g.reasons, c->reason))
			fail_msg("%s: reason: got \"%s\", want \"%s\" in it", c->name, g.reasons, c->reason);
	}
}

/* Held events expire after an hour of log time, and at most 4096 are held:
 * what goes is counted. */
static void test_hold_bounds(void **state)
{
	const char *const late[] = {UU("0:00", "kARLe0VE000001", "a1@example.com"),
				    UU("0:00", "kARLe0VE000001", "a2@example.com"),
				    "Nov 27 23:45:00 mx sm-mta[1]: kARNj0VE000002: lost input channel from "
				    "[198.51.100.7] to MTA-v4 after rcpt",
				    NULL};
	struct got g;
	run_lines(late, &g, 1);
	if (g.st.unattributed != 2 || g.st.held != 0)
		fail_msg("expiry: unattributed/held: got %llu/%llu, want 2/0",
			 (unsigned long long)g.st.unattributed, (unsigned long long)g.st.held);

	struct aggregator *a = aggregator_new(&cfg);
	struct parser_source *src = parser_source_new(P, "test", MTA_UNKNOWN);
	char line[256];
	const int n = 5000;
	for (int i = 0; i < n; i++) {
		snprintf(line, sizeof line,
			 "Nov 27 21:44:%02d mx sm-mta[1]: kARLi%09d: <u%d@example.com>... User unknown",
			 i / 100, i, i);
		feed_line(a, src, line, 0);
	}
	/* the newest ones are still attributed */
	snprintf(line, sizeof line,
		 "Nov 27 21:44:49 mx sm-mta[1]: kARLi%09d: from=<x@y.example>, size=0, class=0, nrcpts=0, "
		 "proto=ESMTP, daemon=MTA-v4, relay=[198.51.100.8]",
		 n - 1);
	feed_line(a, src, line, 0);
	struct agg_stats st;
	aggregator_stats(a, &st);
	if (st.held != 4095 || st.unattributed != (uint64_t)n - 4096 || st.attributed != 1)
		fail_msg("bounds: held/unattributed/attributed: got %llu/%llu/%llu, want 4095/%d/1",
			 (unsigned long long)st.held, (unsigned long long)st.unattributed,
			 (unsigned long long)st.attributed, n - 4096);
	aggregator_take_changes(a, NULL, NULL);
	parser_source_free(src);
	aggregator_free(a);
}

/* ------------------------------------------------------ stored rows */

struct eng {
	struct db *db;
	struct aggregator *a;
	struct parser_source *src;
};

static void write_attr(void *arg, const struct agg_attribution *x)
{
	struct eng *e = arg;
	assert_true(db_event_attribute(e->db, x->row, &x->ip, &x->cls) >= 0);
}

/* What the engine does with one line, in the open batch. */
static void eng_line(struct eng *e, const char *line)
{
	struct event ev;
	int reason;
	int rc = parser_parse(P, e->src, line, strlen(line), &ev, &reason);
	assert_true(rc >= 0);
	if (rc != 1)
		return;
	int64_t id = db_event_insert(e->db, &ev, 0);
	assert_true(id >= 0);
	aggregator_event_row(e->a, &ev, id);
	aggregator_take_attributions(e->a, write_attr, e);
	aggregator_take_changes(e->a, NULL, NULL);
}

static void eng_start(struct eng *e, const char *path)
{
	char err[256];
	e->db = db_open(path, DB_RW | DB_FAST, err, sizeof err);
	if (!e->db)
		fail_msg("db_open: %s", err);
	e->a = aggregator_new(&cfg);
	e->src = parser_source_new(P, "test", MTA_UNKNOWN);
	/* restart 10 min after the first line (21:44:02): it is replayed */
	assert_int_equal(aggregator_restore(e->a, e->db, 1795815842 + 600, NULL, NULL), 0);
}

static void eng_stop(struct eng *e)
{
	parser_source_free(e->src);
	aggregator_free(e->a);
	db_close(e->db);
}

/* "ip count" of the stored rows, by client, joined by ", " ("none" = no
 * client), the per-IP top_hour count of the attributed client and the
 * attribution counter. */
static void rows_by_ip(const char *path, char *out, size_t n, long long *top, long long *attributed)
{
	sqlite3 *h;
	assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(
	    sqlite3_prepare_v2(h,
			       "SELECT coalesce(ip, 'none') || ' ' || count(*) FROM events GROUP BY "
			       "coalesce(ip, 'none') ORDER BY 1",
			       -1, &st, NULL),
	    SQLITE_OK);
	size_t k = 0;
	out[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW)
		k += (size_t)snprintf(out + k, n - k, "%s%s", k ? ", " : "",
				      (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(h,
					    "SELECT coalesce(sum(n), 0) FROM top_hour WHERE scope = 'ip' AND "
					    "kind = 'reject' AND prefix = "
					    "'171.66.77.233'",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	*top = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	assert_int_equal(
	    sqlite3_prepare_v2(h,
			       "SELECT coalesce(sum(n), 0) FROM counters WHERE name = 'attribution' AND "
			       "key = 'attributed'",
			       -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	*attributed = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

/*
 * A crash between the batch holding the refusals and the batch of the
 * line naming the client: on restart the rows without a client are held
 * again (the replay) and the line, read again, attributes each once. A
 * crash after that batch: nothing changes twice.
 */
static void test_rows_exactly_once(void **state)
{
	static const char *const lines[] = {
	    UU("4:02", "kARLi8Xw066103", "j.smith@example.com"),
	    UU("4:02", "kARLi8Xw066103", "a.b@example.com"), UU("4:03", "kARLi8Xw066103", "c.d@example.com"),
	    /* -- crash here (split = 3) */
	    FROM0("4:09", "kARLi8Xw066103", "postmaster@qaweqa.biz", "171.66.77.233"),
	    UU("4:09", "kARLi8Xw066104", "e.f@example.com"), NULL};
	const struct {
		size_t split; /* lines committed before the crash */
		const char *want;
	} cases[] = {
	    {0, "171.66.77.233 3, none 1"},
	    {3, "171.66.77.233 3, none 1"},
	    {4, "171.66.77.233 3, none 1"},
	    {5, "171.66.77.233 3, none 1"},
	};
	for (size_t c = 0; c < MXW_ARRAY_LEN(cases); c++) {
		char path[] = "/tmp/mxw-session-XXXXXX";
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		close(fd);
		unlink(path);
		struct eng e;
		eng_start(&e, path);
		assert_int_equal(db_begin(e.db), 0);
		for (size_t i = 0; i < cases[c].split; i++)
			eng_line(&e, lines[i]);
		assert_int_equal(db_commit(e.db), 0);
		/* lines read after the last commit are lost with the crash */
		assert_int_equal(db_begin(e.db), 0);
		for (size_t i = cases[c].split; lines[i]; i++)
			eng_line(&e, lines[i]);
		db_rollback(e.db);
		eng_stop(&e); /* kill -9: no state saved */

		eng_start(&e, path);
		assert_int_equal(db_begin(e.db), 0);
		for (size_t i = cases[c].split; lines[i]; i++)
			eng_line(&e, lines[i]);
		/* an attribution repeated changes nothing */
		struct ipaddr other;
		struct prefix ocls;
		assert_int_equal(ipaddr_parse(&other, "192.0.2.1", 9), 0);
		ipaddr_class(&other, &cfg.classes, &ocls);
		int64_t first = ((int64_t)1795815842 << 20);
		assert_int_equal(db_event_attribute(e.db, first, &other, &ocls), 0);
		assert_int_equal(db_commit(e.db), 0);
		eng_stop(&e);
		char got[256];
		long long top, attributed;
		rows_by_ip(path, got, sizeof got, &top, &attributed);
		if (attributed != 3)
			fail_msg("crash after %zu lines: attribution counter: got %lld, want 3",
				 cases[c].split, attributed);
		if (strcmp(got, cases[c].want) != 0)
			fail_msg("crash after %zu lines: rows by client: got \"%s\", want \"%s\"",
				 cases[c].split, got, cases[c].want);
		/* counted once per row for the client (the dashboard's top senders) */
		if (top != 3)
			fail_msg("crash after %zu lines: top_hour of the client: got %lld, want 3",
				 cases[c].split, top);
		unlink(path);
		char aux[64];
		snprintf(aux, sizeof aux, "%s-wal", path);
		unlink(aux);
		snprintf(aux, sizeof aux, "%s-shm", path);
		unlink(aux);
	}
}

/* ------------------------------------------------------------ sessions */

struct decs {
	json_t *by_prefix; /* prefix -> {"reason", "evidence"} */
};

static int64_t keep_change(void *arg, const struct agg_change *ch)
{
	struct decs *d = arg;
	if (ch->kind != AGG_CHANGE_NEW)
		return 0;
	char px[PREFIX_STRLEN];
	prefix_format(&ch->d->prefix, px);
	json_t *o = json_object();
	json_object_set_new(o, "reason", json_string(ch->d->reason));
	json_object_set_new(o, "evidence", json_loads(ch->evidence_json, 0, NULL));
	json_object_set_new(d->by_prefix, px, o);
	return 0;
}

/* Every decision an aggregator takes on a real capture (protected_networks
 * = none: the senders there are 127.x). */
static json_t *decide_file(const char *name)
{
	char path[512];
	const char *sh = getenv("MXW_SHARED");
	snprintf(path, sizeof path, "%s/corpus/real/%s", sh ? sh : "../shared", name);
	FILE *fp = fopen(path, "r");
	if (!fp)
		fail_msg("%s: cannot read", path);
	struct config c;
	struct errlist e = {0};
	config_defaults(&c);
	config_validate(&c, &e);
	errlist_free(&e);
	prefix_list_free(&c.protected_networks);
	c.rules = cfg.rules; /* the thresholds of setup() */
	struct aggregator *a = aggregator_new(&c);
	struct parser_source *src = parser_source_new(P, path, MTA_UNKNOWN);
	struct decs d = {json_object()};
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, fp)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		struct event ev;
		int reason;
		if (parser_parse(P, src, line, (size_t)n, &ev, &reason) == 1)
			aggregator_event(a, &ev);
		aggregator_take_changes(a, keep_change, &d);
	}
	free(line);
	fclose(fp);
	parser_source_free(src);
	aggregator_free(a);
	config_free(&c);
	return d.by_prefix;
}

struct scase {
	const char *file, *prefix;
	const char *reason;				   /* a substring of the decision's sentence */
	const char *which;				   /* "worst" or "current" */
	int rcpts, rejected, unknown, auth_failures, code; /* -1 = unchecked */
	const char *dsn;				   /* NULL = unchecked, "-" = null */
	int cmds_ok, cmds_total;			   /* -1 = unchecked */
	int back_off_code, back_off_seconds;		   /* -1 = unchecked, 0 = none */
};

static const struct scase sess_cases[] = {
    /* smtpd[1279]: 4 RCPTs refused 550 5.1.1, "rcpt=0/4 ... commands=3/7" */
    {"postfix-3.7-loopback.log", "127.40.1.0/24", "one connection had 4 RCPTs, 4 rejected 550 5.1.1", "worst",
     4, 4, 4, 0, 550, "5.1.1", 3, 7, -1, -1},
    /* came back a second after its previous connection got 450 4.7.25 */
    {"postfix-3.7-loopback.log", "127.67.0.10/32", "came back 1s after a 450 4.7.25", "current", -1, -1, -1,
     -1, -1, NULL, -1, -1, 450, 1},
    /* the rate limit's 421 (smtpd sends it) before the flood's next connect */
    {"postfix-3.7-loopback.log", "127.88.0.2/32", "came back 0s after a 421", "current", 0, 0, 0, 0, -1, NULL,
     -1, -1, 421, 0},
    /* Exim: the child process's lines form the session (the daemon's pid
     * logs the connection) */
    {"exim-4.96-loopback-mainlog.log", "127.77.0.2/32", "one connection failed AUTH 3 times", "worst", 0, 0,
     0, 3, -1, NULL, -1, -1, 0, -1},
    {"exim-4.96-loopback-mainlog.log", "127.30.0.2/32", "retried 1 time after 550", "worst", 1, 1, 0, 0, 550,
     "-", -1, -1, -1, -1},
};

static void want_int(const char *what, const struct scase *c, json_t *o, const char *key, int want)
{
	if (want < 0)
		return;
	json_t *v = json_object_get(o, key);
	long long got = json_is_integer(v) ? json_integer_value(v) : 0;
	if (got != want)
		fail_msg("%s %s: %s %s: got %lld, want %d", c->file, c->prefix, what, key, got, want);
}

static void test_sessions_real(void **state)
{
	json_t *files = json_object();
	for (size_t i = 0; i < MXW_ARRAY_LEN(sess_cases); i++) {
		const struct scase *c = &sess_cases[i];
		json_t *d = json_object_get(files, c->file);
		if (!d) {
			d = decide_file(c->file);
			json_object_set_new(files, c->file, d);
		}
		json_t *o = json_object_get(d, c->prefix);
		if (!o)
			fail_msg("%s: no decision on %s", c->file, c->prefix);
		const char *reason = json_string_value(json_object_get(o, "reason"));
		if (!strstr(reason, c->reason))
			fail_msg("%s %s: reason: got \"%s\", want \"%s\" in it", c->file, c->prefix, reason,
				 c->reason);
		json_t *ss = json_object_get(json_object_get(o, "evidence"), "sessions");
		json_t *w = json_object_get(ss, c->which);
		if (json_is_null(w) && strcmp(c->which, "current") == 0)
			w = json_object_get(ss, "worst"); /* the triggering connection is the worst */
		if (!json_is_object(w))
			fail_msg("%s %s: sessions.%s: got none", c->file, c->prefix, c->which);
		want_int(c->which, c, w, "rcpts", c->rcpts);
		want_int(c->which, c, w, "rejected", c->rejected);
		want_int(c->which, c, w, "unknown_recipients", c->unknown);
		want_int(c->which, c, w, "auth_failures", c->auth_failures);
		want_int(c->which, c, w, "code", c->code);
		if (c->dsn) {
			json_t *v = json_object_get(w, "dsn");
			const char *got = json_is_string(v) ? json_string_value(v) : "-";
			if (strcmp(got, c->dsn) != 0)
				fail_msg("%s %s: dsn: got %s, want %s", c->file, c->prefix, got, c->dsn);
		}
		json_t *cmds = json_object_get(w, "commands");
		if (c->cmds_total >= 0 && (json_integer_value(json_array_get(cmds, 0)) != c->cmds_ok ||
					   json_integer_value(json_array_get(cmds, 1)) != c->cmds_total))
			fail_msg("%s %s: commands: got [%lld, %lld], want [%d, %d]", c->file, c->prefix,
				 json_integer_value(json_array_get(cmds, 0)),
				 json_integer_value(json_array_get(cmds, 1)), c->cmds_ok, c->cmds_total);
		json_t *b = json_object_get(w, "back_off");
		if (c->back_off_code == 0 && b)
			fail_msg("%s %s: back_off: got one, want none", c->file, c->prefix);
		if (c->back_off_code > 0) {
			want_int("back_off", c, b, "after_code", c->back_off_code);
			want_int("back_off", c, b, "seconds", c->back_off_seconds);
		}
	}
	json_decref(files);
}

/* The sentence holds numbers and fixed words only, never log text, and
 * stays within the decision's 255 characters. */
static void test_sessions_reason_safe(void **state)
{
	json_t *d = decide_file("postfix-3.7-loopback.log");
	const char *k;
	json_t *o;
	size_t n = 0;
	json_object_foreach(d, k, o)
	{
		const char *r = json_string_value(json_object_get(o, "reason"));
		n++;
		if (strlen(r) >= 255)
			fail_msg("%s: reason of %zu bytes", k, strlen(r));
		for (const char *p = r; *p; p++)
			if (*p == '<' || *p == '@' || *p == '[')
				fail_msg("%s: reason quotes log text: %s", k, r);
	}
	assert_true(n > 20);
	json_decref(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hold_table),		 cmocka_unit_test(test_hold_bounds),
	    cmocka_unit_test(test_rows_exactly_once),	 cmocka_unit_test(test_sessions_real),
	    cmocka_unit_test(test_sessions_reason_safe),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
