/* test_emit_write.c - atomic file replacement and the stateful outputs:
 * mode and owner kept, nothing written when nothing changed, no temp file
 * left on failure; emitters_update rewrites only on change or expiry and
 * refreshes capped timeouts in time; and a reader process looping over
 * every output during 1,000 rewrites never sees a partial or malformed
 * file. */
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
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "emitters/emitters.h"
#include "fixture.h"
#include "testlib.h"

static char *dir;

static int setup(void **state)
{
	dir = tl_scratch("emit-write", false);
	return dir ? 0 : -1;
}

/* The 1,000-rewrite test checks what readers see (rename is atomic on any
 * file system); on tmpfs its 16,000 fsyncs cost nothing, on a busy disk
 * they dominate the run. */
static int setup_shm(void **state)
{
	dir = tl_scratch("emit-write", true);
	return dir ? 0 : -1;
}

static int teardown(void **state)
{
	return tl_scratch_free(&dir);
}

static void test_atomic_basics(void **state)
{
	char path[128];
	snprintf(path, sizeof path, "%s/list", dir);
	bool changed;
	/* new file: 0644 */
	assert_int_equal(emit_write_atomic(path, "a\n", 2, &changed), 0);
	assert_true(changed);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	/* same bytes: nothing written, same inode */
	ino_t ino = st.st_ino;
	assert_int_equal(emit_write_atomic(path, "a\n", 2, &changed), 0);
	assert_false(changed);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_ino, ino);
	/* a mode and owner set by the admin survive a rewrite */
	assert_int_equal(chmod(path, 0640), 0);
	bool root = geteuid() == 0;
	if (root)
		assert_int_equal(chown(path, 65534, 65534), 0);
	assert_int_equal(emit_write_atomic(path, "b\nc\n", 4, &changed), 0);
	assert_true(changed);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_ino != ino);
	if ((st.st_mode & 07777) != 0640)
		fail_msg("mode after rewrite: got %o, want 640", st.st_mode & 07777);
	if (root && (st.st_uid != 65534 || st.st_gid != 65534))
		fail_msg("owner after rewrite: got %d:%d, want 65534:65534", (int)st.st_uid, (int)st.st_gid);
	size_t len;
	char *got = tl_slurp(path, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(got, "b\nc\n", 4);
	free(got);
	/* a symlink stays one; its target is replaced */
	char target[160], link[160];
	snprintf(target, sizeof target, "%s/target", dir);
	snprintf(link, sizeof link, "%s/link", dir);
	assert_int_equal(emit_write_atomic(target, "t\n", 2, &changed), 0);
	assert_int_equal(symlink("target", link), 0);
	assert_int_equal(emit_write_atomic(link, "u\n", 2, &changed), 0);
	assert_true(changed);
	struct stat lst;
	assert_int_equal(lstat(link, &lst), 0);
	assert_true(S_ISLNK(lst.st_mode));
	char *t = tl_slurp(target, &len);
	assert_string_equal(t, "u\n");
	free(t);
	unlink(link);
	unlink(target);
	/* an empty file is a valid content */
	assert_int_equal(emit_write_atomic(path, "", 0, &changed), 0);
	assert_true(changed);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	/* a directory that does not exist: error, errno set, nothing left */
	char bad[160];
	snprintf(bad, sizeof bad, "%s/missing/list", dir);
	errno = 0;
	assert_int_equal(emit_write_atomic(bad, "x\n", 2, &changed), -1);
	assert_int_equal(errno, ENOENT);
	assert_false(changed);
	/* a path that is a directory: rename fails, the temp file is removed */
	char sub[160];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	char inner[200];
	snprintf(inner, sizeof inner, "%s/x", sub);
	int fd = creat(inner, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(emit_write_atomic(sub, "x\n", 2, &changed), -1);
	assert_int_equal(tl_count_dotfiles(dir), 0);
	unlink(inner);
	rmdir(sub);
}

static const char *const out_formats[] = {"ipset",	"nft",	   "iptables", "ip6tables", "postfix",
					  "postscreen", "rbldnsd", "rbldnsd6", "plain",	    "json"};

/* A configuration with one output per format in dir. */
static void config_outputs(struct config *c)
{
	fix_config(c);
	c->n_outputs = MXW_ARRAY_LEN(out_formats);
	c->outputs = xcalloc(c->n_outputs, sizeof *c->outputs);
	for (size_t i = 0; i < c->n_outputs; i++)
		fix_output(&c->outputs[i], out_formats[i], out_formats[i], dir, out_formats[i]);
}

static void test_update_only_on_change(void **state)
{
	struct config c;
	config_outputs(&c);
	struct buf err = BUF_INIT;
	struct emitters *em = emitters_new(&c, &err);
	if (!em)
		fail_msg("emitters_new: %s", buf_str(&err));
	struct decision d[FIX_N];
	fix_make(d);
	/* first update writes every output */
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW), 10);
	/* same decisions, later: nothing changes (timeouts are relative, the
	 * set is the same) */
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW), 0);
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW + 30), 0);
	const struct emit_output_stats *st = emitters_stats(em, 8);
	assert_non_null(st);
	assert_int_equal(st->writes, 1);
	assert_int_equal(st->entries, 5);
	/* the earliest expiry is 198.51.100.9 at +120 */
	assert_int_equal(emitters_next_due(em), FIX_NOW + 120);
	/* past it: every output loses that entry */
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW + 120), 8); /* not the IPv6-only ones */
	char path[128];
	snprintf(path, sizeof path, "%s/plain", dir);
	size_t len;
	char *got = tl_slurp(path, &len);
	assert_string_equal(got, "198.51.100.7/32\n203.0.113.0/24\n203.0.113.5/32\n2001:db8:5::/64\n");
	free(got);
	assert_int_equal(emitters_next_due(em), FIX_NOW + 600);
	/* a changed reason is a change */
	snprintf(d[0].reason, sizeof d[0].reason, "13 of 256 flagged");
	/* all but plain (same bytes) and the IPv6-only ones (their entries did not change) */
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW + 121), 7);
	/* the 10-year block: ipset/nft/json timeouts are capped, so those are
	 * rewritten before EMIT_MAX_TIMEOUT runs out; drop everything else */
	struct decision far = d[3];
	int64_t t0 = FIX_NOW + 200;
	assert_int_equal(emitters_update(em, &far, 1, t0), 8); /* ip6tables, rbldnsd6 had just this one */
	int64_t due = emitters_next_due(em);
	if (due != t0 + EMIT_MAX_TIMEOUT - 3600)
		fail_msg("next_due with a capped timeout: got %lld, want %lld", (long long)due,
			 (long long)(t0 + EMIT_MAX_TIMEOUT - 3600));
	assert_int_equal(emitters_update(em, &far, 1, due - 1), 0);
	assert_int_equal(emitters_update(em, &far, 1, due), 3); /* ipset, nft, json */
	snprintf(path, sizeof path, "%s/ipset", dir);
	got = tl_slurp(path, &len);
	char want[128];
	snprintf(want, sizeof want, "add mxwarden6-new 2001:db8:5::/64 timeout %d comment", EMIT_MAX_TIMEOUT);
	assert_non_null(strstr(got, want));
	free(got);
	emitters_free(em);
	buf_free(&err);
	config_free(&c);
}

static void test_write_failure_retry(void **state)
{
	struct config c;
	config_outputs(&c);
	/* keep one output, in a directory that does not exist yet */
	for (size_t i = 1; i < c.n_outputs; i++) {
		free(c.outputs[i].name);
		free(c.outputs[i].format);
		free(c.outputs[i].path);
	}
	c.n_outputs = 1;
	char sub[128];
	snprintf(sub, sizeof sub, "%s/later", dir);
	free(c.outputs[0].path);
	struct buf p = BUF_INIT;
	buf_printf(&p, "%s/ipset", sub);
	c.outputs[0].path = xstrdup(buf_str(&p));
	strv_add(&c.outputs[0].reload, "/bin/true");
	struct buf err = BUF_INIT;
	struct emitters *em = emitters_new(&c, &err);
	assert_non_null(em);
	struct decision d[FIX_N];
	fix_make(d);
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW), -1);
	assert_int_equal(emitters_stats(em, 0)->write_errors, 1);
	/* nothing written, so nothing to reload */
	assert_int_equal(emitters_stats(em, 0)->reloads_started, 0);
	/* not every tick: the next attempt is due 30 s later */
	assert_int_equal(emitters_next_due(em), FIX_NOW + 30);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(emitters_update(em, d, FIX_N, FIX_NOW + 30), 1);
	assert_int_equal(emitters_next_due(em), FIX_NOW + 120);
	assert_int_equal(emitters_drain(em, 5000), 0);
	assert_int_equal(emitters_stats(em, 0)->reloads_started, 1);
	unlink(buf_str(&p));
	rmdir(sub);
	buf_free(&p);
	buf_free(&err);
	emitters_free(em);
	config_free(&c);
}

static void test_stale_temp_and_duplicates(void **state)
{
	char p[160];
	snprintf(p, sizeof p, "%s/.plain.Ab3xY9", dir); /* what a killed write leaves */
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs("198.51.100", fp); /* cut */
	fclose(fp);
	char keep[160];
	snprintf(keep, sizeof keep, "%s/.plain.notours", dir);
	fp = fopen(keep, "w");
	assert_non_null(fp);
	fclose(fp);
	struct config c;
	config_outputs(&c);
	struct buf err = BUF_INIT;
	struct emitters *em = emitters_new(&c, &err);
	assert_non_null(em);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(access(keep, F_OK), 0);
	unlink(keep);
	emitters_free(em);
	/* two outputs on one file */
	free(c.outputs[1].path);
	c.outputs[1].path = xstrdup(c.outputs[0].path);
	assert_null(emitters_new(&c, &err));
	assert_non_null(strstr(buf_str(&err), "[output nft] writes the same file as [output ipset]"));
	buf_free(&err);
	config_free(&c);
}

static void test_bad_output_config(void **state)
{
	struct config c;
	config_outputs(&c);
	free(c.outputs[0].set_name);
	c.outputs[0].set_name = xstrdup("evil set; flush");
	struct buf err = BUF_INIT;
	assert_null(emitters_new(&c, &err));
	assert_non_null(strstr(buf_str(&err), "[output ipset] set 'evil set; flush'"));
	/* iptables with IPv6 only would write nothing, ever */
	free(c.outputs[0].set_name);
	c.outputs[0].set_name = NULL;
	c.outputs[2].families = FAMILY_V6;
	buf_reset(&err);
	assert_null(emitters_new(&c, &err));
	assert_non_null(strstr(buf_str(&err), "[output iptables] format iptables carries IPv4 only"));
	config_free(&c);
	buf_free(&err);
}

/* The reader: loops over every output file until SIGTERM, and checks that
 * each read is a complete, valid file of its format. Exits with the number
 * of bad reads (capped at 100), after printing the first. */
static volatile sig_atomic_t stop;
static void on_term(int sig)
{
	stop = 1;
}

static int reader(size_t *reads)
{
	const struct emit_format *f[MXW_ARRAY_LEN(out_formats)];
	for (size_t i = 0; i < MXW_ARRAY_LEN(out_formats); i++)
		f[i] = emit_format_find(out_formats[i]);
	int bad = 0;
	struct buf err = BUF_INIT;
	while (!stop) {
		for (size_t i = 0; i < MXW_ARRAY_LEN(out_formats); i++) {
			char path[128];
			snprintf(path, sizeof path, "%s/%s", dir, out_formats[i]);
			size_t len;
			char *t = tl_slurp(path, &len);
			if (!t) {
				fprintf(stderr, "reader: %s: %s\n", path, strerror(errno));
				bad++;
				continue;
			}
			(*reads)++;
			buf_reset(&err);
			/* every version holds at least the 5 fixture lines or
			 * ends with its closing line: a cut file fails here */
			if (f[i]->validate(t, len, &err) < 0 || len == 0) {
				if (bad == 0)
					fprintf(stderr, "reader: %s: malformed (%s) after %zu reads:\n%s\n",
						out_formats[i], buf_str(&err), *reads, t);
				bad++;
			}
			free(t);
		}
		usleep(200); /* leave the writer a core (tests share two) */
	}
	buf_free(&err);
	return bad > 100 ? 100 : bad;
}

static void test_reader_during_rewrites(void **state)
{
	struct config c;
	config_outputs(&c);
	c.max_change = 0; /* rounds change most entries on purpose; the breaker has its own test */
	struct buf err = BUF_INIT;
	struct emitters *em = emitters_new(&c, &err);
	assert_non_null(em);
	/* a base set, plus between 0 and 99 more entries that change every
	 * round, so that sizes vary and every round rewrites every file */
	size_t cap = FIX_N + 100;
	struct decision *d = xcalloc(cap, sizeof *d);
	fix_make(d);
	assert_true(emitters_update(em, d, FIX_N, FIX_NOW) == 10);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		signal(SIGTERM, on_term);
		size_t reads = 0;
		int bad = reader(&reads);
		if (write(pfd[1], &reads, sizeof reads) < 0)
			_exit(101);
		_exit(bad);
	}
	close(pfd[1]);
	size_t rewrites = 0;
	for (int round = 0; round < 1000; round++) {
		size_t extra = (size_t)(round * 37) % 100;
		for (size_t i = 0; i < extra; i++) {
			struct decision *x = &d[FIX_N + i];
			memset(x, 0, sizeof *x);
			char p[32];
			snprintf(p, sizeof p, "198.18.%zu.%zu/32", i / 200, i % 200 + 1);
			prefix_parse(&x->prefix, p, strlen(p), true);
			x->response = RESP_REJECT;
			snprintf(x->rule, sizeof x->rule, "retry");
			snprintf(x->reason, sizeof x->reason, "round %d \"quoted\"\n", round);
			x->since = FIX_NOW;
			x->until = FIX_NOW + 3600 + round;
		}
		int k = emitters_update(em, d, FIX_N + extra, FIX_NOW + round);
		assert_true(k >= 0);
		rewrites += (size_t)k;
	}
	kill(pid, SIGTERM);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	size_t reads = 0;
	assert_int_equal(read(pfd[0], &reads, sizeof reads), (ssize_t)sizeof reads);
	close(pfd[0]);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("reader: got %d bad reads of %zu, want 0", WEXITSTATUS(status), reads);
	print_message("1000 rounds: %zu file rewrites, %zu reads, all complete and valid\n", rewrites, reads);
	/* rounds with the same extra count still differ (reason, until) */
	assert_int_equal(rewrites,
			 999 * 8); /* round 0 repeats the first state; the IPv6-only outputs never change */
	assert_true(reads >= 100);
	assert_int_equal(tl_count_dotfiles(dir), 0);
	emitters_free(em);
	free(d);
	buf_free(&err);
	config_free(&c);
}

/* SIGKILL a writer at random moments: the target is always one complete
 * version, and the temp files a kill leaves are removed at the next start. */
static void test_kill_during_writes(void **state)
{
	struct buf ver[2] = {BUF_INIT, BUF_INIT};
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 50000 + k; i++)
			buf_printf(&ver[k], "198.%d.%d.%d/32\n", 18 + i / 65536, (i / 256) % 256, i % 256);
	char path[128];
	snprintf(path, sizeof path, "%s/list", dir);
	assert_int_equal(emit_write_atomic(path, ver[0].data, ver[0].len, NULL), 0);
	uint64_t x = 88172645463325252ULL;
	int kills = 0, temps = 0;
	for (int round = 0; round < 30; round++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			for (int i = 0;; i++)
				emit_write_atomic(path, ver[i % 2].data, ver[i % 2].len, NULL);
		}
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		usleep((useconds_t)(1000 + x % 20000));
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		kills++;
		size_t len;
		char *got = tl_slurp(path, &len);
		assert_non_null(got);
		bool ok = (len == ver[0].len && memcmp(got, ver[0].data, len) == 0) ||
			  (len == ver[1].len && memcmp(got, ver[1].data, len) == 0);
		if (!ok)
			fail_msg("after kill %d the file is neither version (%zu bytes)", kills, len);
		free(got);
		temps += emit_clean_temp(path);
		assert_int_equal(tl_count_dotfiles(dir), 0);
	}
	print_message("%d kills during writes: the file was always whole; %d temp files removed\n", kills,
		      temps);
	buf_free(&ver[0]);
	buf_free(&ver[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_atomic_basics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_update_only_on_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_output_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_temp_and_duplicates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_failure_retry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reader_during_rewrites, setup_shm, teardown),
	    cmocka_unit_test_setup_teardown(test_kill_during_writes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
