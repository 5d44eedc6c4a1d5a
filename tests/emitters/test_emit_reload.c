/* test_emit_reload.c - the reload command after a rewrite: exit status and
 * stderr logged (/bin/false, a failing script), a command that does not
 * exist, a sleeper killed at its timeout together with its grandchild,
 * coalescing of fast rewrites (and the last reload sees the last file),
 * argv passed verbatim (no shell, no interpolation), emitters_update never
 * waiting for a reload, emitters_free killing one still running. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
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
static int saved_stderr = -1;
static char logpath[128];

/* stderr (our log) goes to a file the test reads back */
static int setup(void **state)
{
	dir = tl_scratch("emit-reload", false);
	if (!dir)
		return -1;
	snprintf(logpath, sizeof logpath, "%s/log", dir);
	fflush(stderr);
	saved_stderr = dup(2);
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (fd < 0)
		return -1;
	dup2(fd, 2);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	/* show what was logged (and any failure message cmocka wrote there) */
	FILE *fp = fopen(logpath, "r");
	char line[1024];
	while (fp && fgets(line, sizeof line, fp))
		fputs(line, stderr);
	if (fp)
		fclose(fp);
	return tl_scratch_free(&dir);
}

/* The file's text, "" while it does not exist (a child writes it). */
static char *text_of(const char *path)
{
	char *t = tl_slurp(path, NULL);
	return t ? t : xstrdup("");
}

static char *log_text(void)
{
	fflush(stderr);
	return text_of(logpath);
}

/* One plain output in dir whose reload is argv (NULL-terminated). */
static void config_one(struct config *c, const char *const *argv, int64_t timeout)
{
	fix_config(c);
	c->n_outputs = 1;
	c->outputs = xcalloc(1, sizeof *c->outputs);
	struct output_conf *o = c->outputs;
	fix_output(o, "list", "plain", dir, "plain");
	o->reload_timeout = timeout;
	for (size_t i = 0; argv[i]; i++)
		strv_add(&o->reload, argv[i]);
}

/* The fixture decisions, with the first one's prefix varied by k so that
 * every call is a change. */
static void decisions(struct decision *d, int k)
{
	fix_make(d);
	char p[32];
	snprintf(p, sizeof p, "198.18.%d.%d/32", k / 200, k % 200 + 1);
	prefix_parse(&d[0].prefix, p, strlen(p), true);
}

static void run_one(const char *const *argv, int64_t timeout, const struct emit_output_stats **st,
		    struct emitters **emp, struct config *c)
{
	config_one(c, argv, timeout);
	struct buf err = BUF_INIT;
	struct emitters *em = emitters_new(c, &err);
	if (!em)
		fail_msg("emitters_new: %s", buf_str(&err));
	buf_free(&err);
	struct decision d[FIX_N];
	decisions(d, 0);
	int64_t t0 = clock_mono_us();
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW), 1);
	int64_t ms = (clock_mono_us() - t0) / 1000;
	if (ms > 500)
		fail_msg("emitters_update took %lld ms, want it not to wait for the reload", (long long)ms);
	*st = emitters_stats(em, 0);
	*emp = em;
}

static void test_status_logged(void **state)
{
	static const struct {
		const char *argv[6];
		uint64_t failed;
		const char *log; /* must appear in our log */
	} cases[] = {
	    {{"/bin/false", NULL}, 1, "output list: reload exited with status 1"},
	    {{"/bin/true", NULL}, 0, "output list: reload done in"},
	    {{"/bin/sh", "-c", "echo 'oops: table locked' >&2; exit 3", NULL},
	     1,
	     "reload exited with status 3 after"},
	    {{"/bin/sh", "-c", "echo 'oops: table locked' >&2; exit 3", NULL},
	     1,
	     "stderr: oops: table locked"},
	    {{"/bin/sh", "-c", "printf 'bad\\033[31m\\n' >&2; exit 4", NULL}, 1, "stderr: bad\\x1b[31m\n"},
	    {{"/nonexistent/reload-cmd", "-x", NULL},
	     1,
	     "reload command '/nonexistent/reload-cmd' cannot start"},
	    {{"no-such-reload-command-on-path", NULL}, 1, "cannot start: No such file or directory"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct config c;
		struct emitters *em;
		const struct emit_output_stats *st;
		run_one(cases[i].argv, 5, &st, &em, &c);
		assert_int_equal(emitters_drain(em, 5000), 0);
		assert_int_equal(st->reloads_started, 1);
		if (st->reloads_failed != cases[i].failed)
			fail_msg("%s: reloads_failed got %llu, want %llu", cases[i].argv[0],
				 (unsigned long long)st->reloads_failed, (unsigned long long)cases[i].failed);
		/* the status /metrics shows */
		enum emit_reload_status want = cases[i].failed ? EMIT_RELOAD_FAILED : EMIT_RELOAD_OK;
		if (st->reload_status != want || st->last_reload <= 0)
			fail_msg("%s: reload status %s at %lld, want %s", cases[i].argv[0],
				 emit_reload_status_name(st->reload_status), (long long)st->last_reload,
				 emit_reload_status_name(want));
		char *log = log_text();
		if (!strstr(log, cases[i].log))
			fail_msg("%s: log lacks \"%s\":\n%s", cases[i].argv[0], cases[i].log, log);
		free(log);
		/* the file was written whatever the reload did */
		char p[128];
		snprintf(p, sizeof p, "%s/plain", dir);
		struct stat sb;
		assert_int_equal(stat(p, &sb), 0);
		unlink(p);
		emitters_free(em);
		config_free(&c);
	}
}

static bool process_gone(pid_t pid)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(p, "r");
	if (!fp)
		return true;
	char line[512];
	bool zombie = false;
	if (fgets(line, sizeof line, fp)) {
		const char *rp = strrchr(line, ')');
		zombie = rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
	}
	fclose(fp);
	return zombie;
}

static void test_timeout_kills_group(void **state)
{
	char script[256];
	snprintf(script, sizeof script, "sleep 60 & echo $! > %s/gc.pid; exec sleep 61", dir);
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	struct config c;
	struct emitters *em;
	const struct emit_output_stats *st;
	int64_t t0 = clock_mono_us();
	run_one(argv, 1, &st, &em, &c);
	/* the engine keeps running: polls return at once while it sleeps */
	emitters_poll(em);
	assert_int_equal(emitters_busy(em), 1);
	assert_string_equal(emit_reload_status_name(st->reload_status), "running");
	assert_int_equal(emitters_drain(em, 8000), 0);
	assert_string_equal(emit_reload_status_name(st->reload_status), "killed");
	int64_t ms = (clock_mono_us() - t0) / 1000;
	if (ms < 900 || ms > 5000)
		fail_msg("killed after %lld ms, want about the 1 s timeout", (long long)ms);
	assert_int_equal(st->reloads_killed, 1);
	assert_int_equal(st->reloads_failed, 1);
	char p[128];
	snprintf(p, sizeof p, "%s/gc.pid", dir);
	char *t = text_of(p);
	pid_t gc = (pid_t)atoi(t);
	free(t);
	assert_true(gc > 1);
	bool gone = false;
	for (int i = 0; i < 100 && !gone; i++) {
		gone = process_gone(gc);
		if (!gone)
			usleep(10000);
	}
	if (!gone) {
		kill(gc, SIGKILL);
		fail_msg("the grandchild %d (sleep 60) survived the timeout", (int)gc);
	}
	char *log = log_text();
	assert_non_null(strstr(log, "output list: reload killed after its timeout"));
	free(log);
	emitters_free(em);
	config_free(&c);
}

static void test_coalescing(void **state)
{
	char script[512];
	snprintf(script, sizeof script, "sleep 0.2; cp %s/plain %s/snap; echo x >> %s/count", dir, dir, dir);
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	struct config c;
	config_one(&c, argv, 10);
	struct buf err = BUF_INIT;
	struct emitters *em = emitters_new(&c, &err);
	assert_non_null(em);
	struct decision d[FIX_N];
	int64_t t0 = clock_mono_us();
	for (int k = 0; k < 100; k++) {
		decisions(d, k);
		assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW), 1);
	}
	int64_t secs = (clock_mono_us() - t0) / 1000000;
	const struct emit_output_stats *st = emitters_stats(em, 0);
	assert_int_equal(emitters_drain(em, 10000), 0);
	assert_int_equal(st->writes, 100);
	/* one run at once, then at most one a second (the last state) */
	if (st->reloads_started > 2 + (uint64_t)secs)
		fail_msg("100 rewrites in %llds: got %llu reloads (%llu coalesced), want at most %lld",
			 (long long)secs, (unsigned long long)st->reloads_started,
			 (unsigned long long)st->reloads_coalesced, (long long)secs + 2);
	print_message("100 rewrites in %lld s: %llu reload runs, %llu coalesced\n", (long long)secs,
		      (unsigned long long)st->reloads_started, (unsigned long long)st->reloads_coalesced);
	assert_int_equal(st->reloads_failed, 0);
	char p[128];
	snprintf(p, sizeof p, "%s/count", dir);
	char *count = text_of(p);
	size_t runs = 0;
	for (char *q = count; *q; q++)
		runs += *q == '\n';
	free(count);
	assert_int_equal(runs, st->reloads_started);
	/* the last reload ran after the last rewrite */
	snprintf(p, sizeof p, "%s/snap", dir);
	char *snap = text_of(p);
	snprintf(p, sizeof p, "%s/plain", dir);
	char *final = text_of(p);
	assert_string_equal(snap, final);
	assert_non_null(strstr(final, "198.18.0.100/32\n"));
	free(snap);
	free(final);
	emitters_free(em);
	buf_free(&err);
	config_free(&c);
}

static void test_argv_verbatim(void **state)
{
	char script[256];
	snprintf(script, sizeof script, "printf '%%s|%%s|%%s' \"$1\" \"$2\" \"$#\" > %s/args", dir);
	const char *argv[] = {"/bin/sh", "-c", script, "sh", "$ip", "`id`; rm -rf /tmp/x", NULL};
	struct config c;
	struct emitters *em;
	const struct emit_output_stats *st;
	run_one(argv, 5, &st, &em, &c);
	assert_int_equal(emitters_drain(em, 5000), 0);
	assert_int_equal(st->reloads_failed, 0);
	char p[128];
	snprintf(p, sizeof p, "%s/args", dir);
	char *got = text_of(p);
	assert_string_equal(got, "$ip|`id`; rm -rf /tmp/x|2");
	free(got);
	emitters_free(em);
	config_free(&c);
}

static void test_free_kills_running(void **state)
{
	char script[256];
	snprintf(script, sizeof script, "echo $$ > %s/gc.pid; exec sleep 60", dir);
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	struct config c;
	struct emitters *em;
	const struct emit_output_stats *st;
	run_one(argv, 60, &st, &em, &c);
	char p[128];
	snprintf(p, sizeof p, "%s/gc.pid", dir);
	pid_t pid = 0;
	for (int i = 0; i < 200 && pid <= 0; i++) {
		char *t = text_of(p);
		pid = (pid_t)atoi(t);
		free(t);
		if (pid <= 0)
			usleep(10000);
	}
	assert_true(pid > 1);
	int64_t t0 = clock_mono_us();
	emitters_free(em);
	assert_true(clock_mono_us() - t0 < 2000000);
	assert_true(process_gone(pid));
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_status_logged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout_kills_group, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_coalescing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_argv_verbatim, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_kills_running, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
