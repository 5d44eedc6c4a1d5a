/*
 * test_emit_breaker.c - the emitters' circuit breaker (RELIABILITY 24):
 * an update that would change more than [safety] max_change of an output's
 * entries, or empty it after a database loss, keeps the old file byte for
 * byte, runs no reload and opens the breaker (its stats, emitters_breakers_open);
 * a held change goes through once confirmed by breaker_confirm updates or
 * after breaker_hold, or on emitters_breaker_release; an update back within
 * bounds closes it. Also the [safety] keys as read from an INI file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "emitters/emitters.h"
#include "fixture.h"
#include "testlib.h"

static char *dir;
static char out_path[128];

static int setup(void **state)
{
	(void)state;
	dir = tl_scratch("emit-breaker", false);
	if (!dir)
		return -1;
	snprintf(out_path, sizeof out_path, "%s/plain", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tl_scratch_free(&dir);
}

/* One plain output at out_path, reload /bin/true (counted in the stats). */
static void config_plain(struct config *c, int64_t max_change, int64_t min, int64_t hold, int64_t confirm)
{
	fix_config(c);
	c->max_change = max_change;
	c->breaker_min = min;
	c->breaker_hold = hold;
	c->breaker_confirm = confirm;
	c->n_outputs = 1;
	c->outputs = xcalloc(1, sizeof *c->outputs);
	fix_output(&c->outputs[0], "plain", "plain", out_path, NULL);
	strv_add(&c->outputs[0].reload, "/bin/true");
}

/* Decisions for the addresses 198.18.(i/200).(i%200+1) for i in
 * [first, first+count), written to d, until now + ttl. */
static void mk(struct decision *d, size_t first, size_t count, int64_t now, int64_t ttl)
{
	for (size_t k = 0; k < count; k++) {
		size_t i = first + k;
		struct decision *x = &d[k];
		memset(x, 0, sizeof *x);
		char p[32];
		snprintf(p, sizeof p, "198.18.%zu.%zu/32", i / 200, i % 200 + 1);
		assert_int_equal(prefix_parse(&x->prefix, p, strlen(p), true), 0);
		x->scope = SCOPE_IP;
		x->response = RESP_REJECT;
		snprintf(x->rule, sizeof x->rule, "retry");
		snprintf(x->reason, sizeof x->reason, "test %zu", i);
		x->since = now - 10;
		x->until = now + ttl;
	}
}

struct ratio_case {
	const char *name;
	int64_t max_change, min;
	size_t base;	     /* entries written first: addresses [0, base) */
	size_t first, count; /* the next update: addresses [first, first+count) */
	bool want_hold;
};

static const struct ratio_case ratio_cases[] = {
    {"replace 21 of 40 (52%)", 50, 20, 40, 21, 40, true},
    {"add 20 to 40 (50%, not over)", 50, 20, 40, 0, 60, false},
    {"add 21 to 40 (52%)", 50, 20, 40, 0, 61, true},
    {"remove 21 of 40", 50, 20, 40, 21, 19, true},
    {"remove 20 of 40", 50, 20, 40, 20, 20, false},
    {"replace all 19 (below breaker_min 20)", 50, 20, 19, 100, 19, false},
    {"replace all 20 (at breaker_min)", 50, 20, 20, 100, 20, true},
    {"max_change 0: off", 0, 20, 40, 100, 40, false},
    {"max_change 100: ratio never trips", 100, 20, 40, 100, 40, false},
    {"max_change 10: replace 5 of 40 (25%)", 10, 20, 40, 5, 40, true},
    {"max_change 10: replace 2 of 40 (10%, not over)", 10, 20, 40, 2, 40, false},
};

static void test_ratio_table(void **state)
{
	(void)state;
	for (size_t t = 0; t < MXW_ARRAY_LEN(ratio_cases); t++) {
		const struct ratio_case *rc = &ratio_cases[t];
		unlink(out_path);
		struct config c;
		config_plain(&c, rc->max_change, rc->min, 600, 3);
		struct buf err = BUF_INIT;
		struct emitters *em = emitters_new(&c, &err);
		if (!em)
			fail_msg("%s: emitters_new: %s", rc->name, buf_str(&err));
		struct decision *d = xcalloc(200, sizeof *d);
		mk(d, 0, rc->base, FIX_NOW, 3600);
		assert_int_equal(emitters_update(em, d, rc->base, FIX_NOW), 1);
		assert_int_equal(emitters_drain(em, 5000), 0);
		char *before = tl_slurp(out_path, NULL);
		assert_non_null(before);
		uint64_t reloads = emitters_stats(em, 0)->reloads_started;
		mk(d, rc->first, rc->count, FIX_NOW + 5, 3600);
		int k = emitters_update(em, d, rc->count, FIX_NOW + 5);
		assert_int_equal(emitters_drain(em, 5000), 0);
		char *after = tl_slurp(out_path, NULL);
		assert_non_null(after);
		const struct emit_output_stats *st = emitters_stats(em, 0);
		bool held = k < 0;
		if (held != rc->want_hold)
			fail_msg("%s: got %s (update returned %d), want %s", rc->name,
				 held ? "held" : "written", k, rc->want_hold ? "held" : "written");
		if (rc->want_hold) {
			if (strcmp(before, after) != 0)
				fail_msg("%s: held, but the file changed", rc->name);
			assert_true(st->breaker_open);
			assert_int_equal(st->breaker_trips, 1);
			assert_int_equal(emitters_breakers_open(em), 1);
			if (st->reloads_started != reloads)
				fail_msg("%s: held, yet the reload ran (%llu -> %llu)", rc->name,
					 (unsigned long long)reloads,
					 (unsigned long long)st->reloads_started);
			/* the next due time is the end of the hold */
			assert_int_equal(emitters_next_due(em), FIX_NOW + 5 + 600);
		} else {
			assert_int_equal(k, 1);
			if (strcmp(before, after) == 0)
				fail_msg("%s: written, but the file is the same", rc->name);
			assert_false(st->breaker_open);
			assert_int_equal(st->breaker_trips, 0);
			assert_int_equal(emitters_breakers_open(em), 0);
			assert_int_equal(st->reloads_started, reloads + 1);
		}
		assert_int_equal(tl_count_dotfiles(dir), 0);
		free(before);
		free(after);
		free(d);
		emitters_free(em);
		buf_free(&err);
		config_free(&c);
	}
}

/* After a database loss the decision set is empty: a small output (below
 * breaker_min) whose entries have not expired is kept; once they have
 * expired, emptying it is normal. Decisions present but all filtered out
 * (observe) are a normal change too. */
static void test_empty_after_db_loss(void **state)
{
	(void)state;
	struct {
		const char *name;
		int64_t at;	   /* the empty update, relative to FIX_NOW */
		bool observe_only; /* decisions present, none emittable */
		bool want_hold;
	} cases[] = {
	    {"empty set, entries unexpired", 10, false, true},
	    {"empty set, entries expired", 4000, false, false},
	    {"observe-only decisions (filtered, not lost)", 10, true, false},
	};
	for (size_t t = 0; t < MXW_ARRAY_LEN(cases); t++) {
		unlink(out_path);
		struct config c;
		config_plain(&c, 50, 20, 600, 3);
		struct buf err = BUF_INIT;
		struct emitters *em = emitters_new(&c, &err);
		assert_non_null(em);
		struct decision d[5];
		mk(d, 0, 5, FIX_NOW, 3600);
		assert_int_equal(emitters_update(em, d, 5, FIX_NOW), 1);
		char *before = tl_slurp(out_path, NULL);
		size_t n = 0;
		if (cases[t].observe_only) {
			for (size_t i = 0; i < 5; i++)
				d[i].response = RESP_OBSERVE;
			n = 5;
		}
		int k = emitters_update(em, d, n, FIX_NOW + cases[t].at);
		char *after = tl_slurp(out_path, NULL);
		bool held = k < 0;
		if (held != cases[t].want_hold)
			fail_msg("%s: got %s, want %s", cases[t].name, held ? "held" : "written",
				 cases[t].want_hold ? "held" : "written");
		if (held) {
			assert_string_equal(before, after);
			assert_int_equal(emitters_breakers_open(em), 1);
		} else {
			assert_int_equal(k, 1);
			assert_true(strstr(after, "198.18.") == NULL);
		}
		free(before);
		free(after);
		emitters_free(em);
		buf_free(&err);
		config_free(&c);
	}
}

/* At start the breaker has no reference (a plain file says nothing of its
 * entries' expiry, and everything may have expired during a long stop):
 * the first update is written whatever the existing file holds. */
static void test_empty_at_start(void **state)
{
	(void)state;
	struct {
		const char *name, *content;
		bool want_hold;
	} cases[] = {
	    {"file with entries", "# mxwarden\n198.18.0.1\n198.18.0.2\n", false},
	    {"file with comments only", "# mxwarden plain, 0 entries\n", false},
	    {"no file", NULL, false},
	};
	for (size_t t = 0; t < MXW_ARRAY_LEN(cases); t++) {
		unlink(out_path);
		if (cases[t].content) {
			FILE *fp = fopen(out_path, "w");
			assert_non_null(fp);
			fputs(cases[t].content, fp);
			fclose(fp);
		}
		struct config c;
		config_plain(&c, 50, 20, 600, 3);
		struct buf err = BUF_INIT;
		struct emitters *em = emitters_new(&c, &err);
		assert_non_null(em);
		int k = emitters_update(em, NULL, 0, FIX_NOW);
		bool held = k < 0;
		if (held != cases[t].want_hold)
			fail_msg("%s: got %s (%d), want %s", cases[t].name, held ? "held" : "written", k,
				 cases[t].want_hold ? "held" : "written");
		char *after = tl_slurp(out_path, NULL);
		assert_non_null(after);
		if (held)
			assert_string_equal(after, cases[t].content);
		free(after);
		emitters_free(em);
		buf_free(&err);
		config_free(&c);
	}
}

/* A held change is written at the breaker_confirm-th further update that
 * still proposes it, not before. */
static void test_release_by_confirmation(void **state)
{
	(void)state;
	struct config c;
	config_plain(&c, 50, 20, 600, 3);
	struct buf err = BUF_INIT;
	struct emitters *em = emitters_new(&c, &err);
	assert_non_null(em);
	struct decision d[80];
	mk(d, 0, 40, FIX_NOW, 3600);
	assert_int_equal(emitters_update(em, d, 40, FIX_NOW), 1);
	char *before = tl_slurp(out_path, NULL);
	for (int u = 0; u < 3; u++) {
		/* a different big change each time: each is a confirmation */
		mk(d, 100 + (size_t)u, 40, FIX_NOW, 3600);
		assert_int_equal(emitters_update(em, d, 40, FIX_NOW + 1 + u), -1);
		char *now = tl_slurp(out_path, NULL);
		assert_string_equal(before, now);
		free(now);
	}
	mk(d, 200, 40, FIX_NOW, 3600);
	assert_int_equal(emitters_update(em, d, 40, FIX_NOW + 10), 1);
	char *after = tl_slurp(out_path, NULL);
	assert_non_null(strstr(after, "198.18.1.1/32\n")); /* address 200 */
	assert_null(strstr(after, "198.18.0.1/32\n"));	   /* address 0 */
	const struct emit_output_stats *st = emitters_stats(em, 0);
	assert_int_equal(st->breaker_trips, 1);
	assert_int_equal(st->breaker_released, 1);
	assert_false(st->breaker_open);
	/* the new version is the reference now: a small change goes through */
	mk(d, 201, 40, FIX_NOW, 3600);
	assert_int_equal(emitters_update(em, d, 40, FIX_NOW + 11), 1);
	free(before);
	free(after);
	emitters_free(em);
	buf_free(&err);
	config_free(&c);
}

/* With breaker_confirm 0 only the hold time releases: held at hold - 1 s
 * (whatever the number of updates), written at hold. */
static void test_release_by_hold(void **state)
{
	(void)state;
	struct config c;
	config_plain(&c, 50, 20, 600, 0);
	struct buf err = BUF_INIT;
	struct emitters *em = emitters_new(&c, &err);
	assert_non_null(em);
	struct decision d[40];
	mk(d, 0, 40, FIX_NOW, 7200);
	assert_int_equal(emitters_update(em, d, 40, FIX_NOW), 1);
	mk(d, 100, 40, FIX_NOW, 7200);
	assert_int_equal(emitters_update(em, d, 40, FIX_NOW + 100), -1);
	for (int u = 0; u < 10; u++)
		assert_int_equal(emitters_update(em, d, 40, FIX_NOW + 101 + u), -1);
	assert_int_equal(emitters_next_due(em), FIX_NOW + 700);
	assert_int_equal(emitters_update(em, d, 40, FIX_NOW + 699), -1);
	assert_int_equal(emitters_update(em, d, 40, FIX_NOW + 700), 1);
	assert_int_equal(emitters_stats(em, 0)->breaker_released, 1);
	assert_int_equal(emitters_breakers_open(em), 0);
	emitters_free(em);
	buf_free(&err);
	config_free(&c);
}

/* The decisions come back (the database recovered): the breaker closes
 * without writing; emitters_breaker_release lets a deliberate change
 * through at once. */
static void test_close_and_release(void **state)
{
	(void)state;
	struct config c;
	config_plain(&c, 50, 20, 600, 3);
	struct buf err = BUF_INIT;
	struct emitters *em = emitters_new(&c, &err);
	assert_non_null(em);
	struct decision d[40];
	mk(d, 0, 40, FIX_NOW, 3600);
	assert_int_equal(emitters_update(em, d, 40, FIX_NOW), 1);
	uint64_t writes = emitters_stats(em, 0)->writes;
	assert_int_equal(emitters_update(em, NULL, 0, FIX_NOW + 1), -1);
	assert_int_equal(emitters_breakers_open(em), 1);
	struct buf m = BUF_INIT;
	emitters_metrics(em, &m);
	const char *want[] = {"# TYPE mxwarden_output_breaker_open gauge\n",
			      "mxwarden_output_breaker_open{output=\"plain\"} 1\n",
			      "mxwarden_output_breaker_trips_total{output=\"plain\"} 1\n",
			      "mxwarden_output_entries{output=\"plain\"} 40\n",
			      "mxwarden_output_writes_total{output=\"plain\"} 1\n",
			      "mxwarden_output_write_errors_total{output=\"plain\"} 0\n"};
	for (size_t i = 0; i < MXW_ARRAY_LEN(want); i++)
		if (!strstr(buf_str(&m), want[i]))
			fail_msg("metrics: want line %s in:\n%s", want[i], buf_str(&m));
	buf_free(&m);
	/* back: nothing to write, breaker closed */
	assert_int_equal(emitters_update(em, d, 40, FIX_NOW + 2), 0);
	assert_int_equal(emitters_breakers_open(em), 0);
	assert_int_equal(emitters_stats(em, 0)->writes, writes);
	emitters_metrics(em, &m);
	assert_non_null(strstr(buf_str(&m), "mxwarden_output_breaker_open{output=\"plain\"} 0\n"));
	buf_free(&m);
	assert_int_equal(emitters_next_due(em), FIX_NOW + 3600);
	/* trip again, then a deliberate release */
	assert_int_equal(emitters_update(em, NULL, 0, FIX_NOW + 3), -1);
	assert_int_equal(emitters_stats(em, 0)->breaker_trips, 2);
	emitters_breaker_release(em);
	assert_true(emitters_next_due(em) <= FIX_NOW + 3);
	assert_int_equal(emitters_update(em, NULL, 0, FIX_NOW + 4), 1);
	char *after = tl_slurp(out_path, NULL);
	assert_null(strstr(after, "198.18."));
	free(after);
	/* release is for one update: the breaker guards the next ones again */
	assert_int_equal(emitters_update(em, d, 40, FIX_NOW + 5), 1); /* from 0 entries: below min */
	mk(d, 100, 40, FIX_NOW, 3600);
	assert_int_equal(emitters_update(em, d, 40, FIX_NOW + 6), -1);
	emitters_free(em);
	buf_free(&err);
	config_free(&c);
}

/* [safety] max_change, breaker_min, breaker_hold, breaker_confirm read
 * from a file; bad values are errors. */
static void test_config_keys(void **state)
{
	(void)state;
	struct {
		const char *text;
		int ok;
		int64_t max_change, min, hold, confirm;
	} cases[] = {
	    {"", 0, 50, 20, 600, 3},
	    {"[safety]\nmax_change = 30%\nbreaker_min = 5\nbreaker_hold = 2m\nbreaker_confirm = 0\n", 0, 30,
	     5, 120, 0},
	    {"[safety]\nmax_change = 0\n", 0, 0, 20, 600, 3},
	    {"[safety]\nmax_change = 100%\n", 0, 100, 20, 600, 3},
	    {"[safety]\nmax_change = 101%\n", -1, 0, 0, 0, 0},
	    {"[safety]\nmax_change = -5\n", -1, 0, 0, 0, 0},
	    {"[safety]\nmax_change = half\n", -1, 0, 0, 0, 0},
	    {"[safety]\nmax_change = 50%%\n", -1, 0, 0, 0, 0},
	    {"[safety]\nbreaker_hold = soon\n", -1, 0, 0, 0, 0},
	};
	char path[160];
	snprintf(path, sizeof path, "%s/conf.ini", dir);
	for (size_t t = 0; t < MXW_ARRAY_LEN(cases); t++) {
		FILE *fp = fopen(path, "w");
		assert_non_null(fp);
		fputs(cases[t].text, fp);
		fclose(fp);
		struct config c;
		config_defaults(&c);
		struct errlist errs = {0};
		int rc = config_load(&c, path, &errs);
		if (rc != cases[t].ok)
			fail_msg("case %zu (%s): config_load got %d, want %d", t, cases[t].text, rc,
				 cases[t].ok);
		if (rc == 0) {
			assert_int_equal(c.max_change, cases[t].max_change);
			assert_int_equal(c.breaker_min, cases[t].min);
			assert_int_equal(c.breaker_hold, cases[t].hold);
			assert_int_equal(c.breaker_confirm, cases[t].confirm);
		} else {
			assert_true(errs.msgs.n > 0);
		}
		errlist_free(&errs);
		config_free(&c);
	}
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ratio_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_after_db_loss, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_at_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_by_confirmation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_by_hold, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_and_release, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_keys, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
