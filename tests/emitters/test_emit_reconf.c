/*
 * test_emit_reconf.c - emitters_reconfigure (SIGHUP): an unchanged output
 * keeps its state (not rewritten, counters kept), a removed one is no
 * longer written and its file is left alone, a new one and one whose path
 * changed are written at the next update, new [safety] settings re-filter
 * at once, an invalid configuration changes nothing; the configuration
 * passed in may be freed right after (the emitters keep copies).
 */
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

#include "emitters/emitters.h"
#include "fixture.h"
#include "testlib.h"

static char *dir;

static int setup(void **state)
{
	(void)state;
	dir = tl_scratch("emit-reconf", false);
	return dir ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return tl_scratch_free(&dir);
}

/* The file name in dir, or NULL. */
static char *out_text(const char *name)
{
	char *p = tl_path(dir, name);
	char *t = tl_slurp(p, NULL);
	free(p);
	return t;
}

/* A configuration with outputs "NAME:FORMAT:FILE" (NULL-terminated). */
static void config_with(struct config *c, const char *const *specs)
{
	fix_config(c);
	size_t n = 0;
	while (specs[n])
		n++;
	c->n_outputs = n;
	c->outputs = xcalloc(n ? n : 1, sizeof *c->outputs);
	for (size_t i = 0; i < n; i++) {
		char name[32], format[32], file[64];
		assert_int_equal(sscanf(specs[i], "%31[^:]:%31[^:]:%63s", name, format, file), 3);
		fix_output(&c->outputs[i], name, format, dir, file);
	}
}

static int reconf(struct emitters *em, const char *const *specs, const char *allow)
{
	struct config c;
	config_with(&c, specs);
	if (allow) {
		struct prefix p;
		assert_int_equal(prefix_parse(&p, allow, strlen(allow), true), 0);
		prefix_list_add(&c.allow, &p);
	}
	int rc = emitters_reconfigure(em, &c);
	config_free(&c); /* the emitters must not keep pointers into it */
	return rc;
}

static void test_reconfigure(void **state)
{
	(void)state;
	struct config c;
	const char *const first[] = {"a:plain:a.txt", "b:postfix:b.cidr", NULL};
	config_with(&c, first);
	struct buf err = BUF_INIT;
	struct emitters *em = emitters_new(&c, &err);
	assert_non_null(em);
	config_free(&c);
	struct decision d[FIX_N];
	fix_make(d);
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW), 2);
	assert_int_equal(emitters_next_due(em), FIX_NOW + 120);
	char *b1 = out_text("b.cidr");
	assert_non_null(b1);

	/* b removed, c added, a unchanged */
	const char *const second[] = {"a:plain:a.txt", "c:json:c.json", NULL};
	assert_int_equal(reconf(em, second, NULL), 0);
	assert_true(emitters_next_due(em) <= FIX_NOW);
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW + 1), 1); /* c only */
	assert_int_equal(emitters_stats(em, 0)->writes, 1);		 /* a kept its state */
	assert_int_equal(emitters_stats(em, 1)->writes, 1);		 /* c is new */
	assert_null(emitters_stats(em, 2));
	char *cj = out_text("c.json");
	assert_non_null(cj);
	assert_non_null(strstr(cj, "198.51.100.7"));
	free(cj);
	/* b is left as it was, and no longer written */
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW + 200), 2); /* 198.51.100.9 expired */
	char *b2 = out_text("b.cidr");
	assert_string_equal(b1, b2);
	free(b2);

	/* a moves to another file: written there; the old one stays */
	const char *const third[] = {"a:plain:a2.txt", "c:json:c.json", NULL};
	assert_int_equal(reconf(em, third, NULL), 0);
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW + 201), 1);
	char *a1 = out_text("a.txt"), *a2 = out_text("a2.txt");
	assert_non_null(a1);
	assert_non_null(a2);
	assert_string_equal(a1, a2);
	free(a1);

	/* invalid: two outputs on one file; nothing changes */
	const char *const bad[] = {"a:plain:a2.txt", "d:plain:a2.txt", NULL};
	assert_int_equal(reconf(em, bad, NULL), -1);
	assert_int_equal(emitters_next_due(em), FIX_NOW + 600); /* 198.51.100.7 */
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW + 202), 0);
	assert_non_null(emitters_stats(em, 1));
	assert_null(emitters_stats(em, 2));

	/* new [safety]: 198.51.100.7 allow-listed, so every output is rewritten */
	assert_int_equal(reconf(em, third, "198.51.100.7"), 0);
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW + 203), 2);
	char *a3 = out_text("a2.txt");
	assert_null(strstr(a3, "198.51.100.7"));
	assert_non_null(strstr(a3, "203.0.113.0/24"));
	free(a3);
	free(a2);
	free(b1);
	emitters_free(em);
	buf_free(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reconfigure, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
