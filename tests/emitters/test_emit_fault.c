/*
 * test_emit_fault.c - write faults through the emitters API (RELIABILITY
 * 20), run with LD_PRELOAD=faultshim (tests/emitters/faultshim.c; skipped
 * when the shim is not loaded). For each of write, fsync and rename failing
 * on one output's path: emitters_update returns -1, that output's file is
 * byte-identical to the previous version, no temp file remains, its
 * write_errors counter rises, its reload does not run; the other output is
 * written and reloaded as usual; without the fault the next update writes
 * the new version and runs the reload. Also emit_write_atomic alone on a
 * new file: no file and no temp file after each fault.
 */
#include <dlfcn.h>
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
static unsigned long *fault_count;

static int setup(void **state)
{
	(void)state;
	dir = tl_scratch("emit-fault", false);
	return dir ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	unsetenv("MXW_FAULT_OPS");
	unsetenv("MXW_FAULT_PATH");
	return tl_scratch_free(&dir);
}

static const char *const ops[] = {"write", "fsync", "rename"};

/* Outputs "victim" (plain) and "other" (postfix), both reloaded by
 * /bin/true; the breaker off (this is about faults). */
static void config_two(struct config *c)
{
	fix_config(c);
	c->max_change = 0;
	c->n_outputs = 2;
	c->outputs = xcalloc(2, sizeof *c->outputs);
	const char *names[] = {"victim", "other"}, *formats[] = {"plain", "postfix"};
	for (size_t i = 0; i < 2; i++) {
		char file[32];
		snprintf(file, sizeof file, "%s.list", names[i]);
		fix_output(&c->outputs[i], names[i], formats[i], dir, file);
		strv_add(&c->outputs[i].reload, "/bin/true");
	}
}

static void test_update_faults(void **state)
{
	(void)state;
	for (size_t t = 0; t < MXW_ARRAY_LEN(ops); t++) {
		struct config c;
		config_two(&c);
		struct buf err = BUF_INIT;
		struct emitters *em = emitters_new(&c, &err);
		assert_non_null(em);
		struct decision d[FIX_N];
		fix_make(d);
		/* version 1 without faults */
		assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW), 2);
		assert_int_equal(emitters_drain(em, 5000), 0);
		char *v1 = tl_slurp(c.outputs[0].path, NULL), *o1 = tl_slurp(c.outputs[1].path, NULL);
		assert_non_null(v1);
		uint64_t rl_victim = emitters_stats(em, 0)->reloads_started;
		uint64_t rl_other = emitters_stats(em, 1)->reloads_started;
		/* version 2: 198.51.100.9 (defer, 120 s) has expired */
		setenv("MXW_FAULT_PATH", "victim.list", 1);
		setenv("MXW_FAULT_OPS", ops[t], 1);
		unsigned long faults = *fault_count;
		int k = emitters_update(em, d, FIX_N, FIX_NOW + 200);
		unsetenv("MXW_FAULT_OPS");
		assert_int_equal(emitters_drain(em, 5000), 0);
		if (k != -1)
			fail_msg("%s fault: emitters_update got %d, want -1", ops[t], k);
		if (*fault_count == faults)
			fail_msg("%s fault: the shim never failed a call", ops[t]);
		char *v1b = tl_slurp(c.outputs[0].path, NULL), *o2 = tl_slurp(c.outputs[1].path, NULL);
		if (strcmp(v1, v1b) != 0)
			fail_msg("%s fault: the target changed:\n%s\nwant:\n%s", ops[t], v1b, v1);
		assert_int_equal(tl_count_dotfiles(dir), 0);
		const struct emit_output_stats *sv = emitters_stats(em, 0), *so = emitters_stats(em, 1);
		assert_int_equal(sv->write_errors, 1);
		if (sv->reloads_started != rl_victim)
			fail_msg("%s fault: the victim's reload ran", ops[t]);
		/* the other output is written and reloaded */
		assert_int_equal(so->write_errors, 0);
		assert_true(strcmp(o1, o2) != 0);
		assert_null(strstr(o2, "198.51.100.9"));
		assert_int_equal(so->reloads_started, rl_other + 1);
		/* fault gone: the next update writes version 2 and reloads */
		assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW + 201), 1);
		assert_int_equal(emitters_drain(em, 5000), 0);
		char *v2 = tl_slurp(c.outputs[0].path, NULL);
		assert_null(strstr(v2, "198.51.100.9"));
		assert_non_null(strstr(v2, "198.51.100.7/32\n"));
		assert_int_equal(emitters_stats(em, 0)->reloads_started, rl_victim + 1);
		assert_int_equal(tl_count_dotfiles(dir), 0);
		free(v1);
		free(v1b);
		free(o1);
		free(o2);
		free(v2);
		emitters_free(em);
		buf_free(&err);
		config_free(&c);
	}
}

/* A fault on the first write of a new file: no file, no temp file, errno
 * from the fault. */
static void test_atomic_new_file(void **state)
{
	(void)state;
	for (size_t t = 0; t < MXW_ARRAY_LEN(ops); t++) {
		char path[128];
		snprintf(path, sizeof path, "%s/new-%s", dir, ops[t]);
		setenv("MXW_FAULT_PATH", "new-", 1);
		setenv("MXW_FAULT_OPS", ops[t], 1);
		bool changed = true;
		int rc = emit_write_atomic(path, "198.51.100.7/32\n", 16, &changed);
		unsetenv("MXW_FAULT_OPS");
		if (rc != -1)
			fail_msg("%s fault: got %d, want -1", ops[t], rc);
		assert_false(changed);
		struct stat st;
		assert_int_equal(stat(path, &st), -1);
		assert_int_equal(tl_count_dotfiles(dir), 0);
		/* and it works once the fault is gone */
		assert_int_equal(emit_write_atomic(path, "198.51.100.7/32\n", 16, &changed), 0);
		assert_true(changed);
		unlink(path);
	}
}

int main(void)
{
	fault_count = dlsym(RTLD_DEFAULT, "mxw_faultshim_count");
	if (!fault_count) {
		fprintf(stderr, "SKIP: faultshim is not preloaded (LD_PRELOAD)\n");
		return 77;
	}
	/* the reload commands must not inherit the shim */
	unsetenv("LD_PRELOAD");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_update_faults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_atomic_new_file, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
