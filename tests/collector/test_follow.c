/*
 * test_follow.c - the collector against real files in a temporary
 * directory: partial lines, a file that appears later, rename rotation,
 * copytruncate, catch-up after downtime across two rotations (one
 * compressed), delete and recreate, a rewritten file, symlinks, over-long
 * lines, the polling fallback, and import of plain and .gz files. Every line
 * carries a sequence number; each test checks that each number arrives
 * exactly once.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "collector/collector.h"

#define MAXSEQ 20000

struct seen {
	int count[MAXSEQ];
	int lines, overlong, other;
	struct buf last; /* the last non-seq line */
	bool have_pos;
	struct coll_pos pos; /* what a "database" stored */
	char key[512];
};

static char dir[256];

static void sink(void *ctx, const struct coll_line *ln)
{
	struct seen *s = ctx;
	s->lines++;
	if (ln->overlong) {
		s->overlong++;
		return;
	}
	unsigned v;
	char tmp[64];
	if (ln->n < sizeof tmp) {
		memcpy(tmp, ln->p, ln->n);
		tmp[ln->n] = 0;
		if (sscanf(tmp, "seq %u", &v) == 1 && v < MAXSEQ) {
			s->count[v]++;
			return;
		}
	}
	s->other++;
	buf_reset(&s->last);
	buf_append(&s->last, ln->p, ln->n);
}

static int lookup(void *ctx, const char *key, struct coll_pos *pos)
{
	struct seen *s = ctx;
	if (!s->have_pos || strcmp(key, s->key) != 0)
		return -1;
	*pos = s->pos;
	return 0;
}

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static void append_seq(const char *name, int from, int to)
{
	char p[512];
	path_of(p, sizeof p, name);
	FILE *f = fopen(p, "a");
	assert_non_null(f);
	for (int i = from; i < to; i++)
		fprintf(f, "seq %d\n", i);
	fclose(f);
}

static void append_raw(const char *name, const char *s)
{
	char p[512];
	path_of(p, sizeof p, name);
	FILE *f = fopen(p, "a");
	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}

static void mv(const char *a, const char *b)
{
	char pa[512], pb[512];
	path_of(pa, sizeof pa, a);
	path_of(pb, sizeof pb, b);
	assert_int_equal(rename(pa, pb), 0);
}

static void gzip_file(const char *a, const char *b)
{
	char pa[512], pb[512], tmp[4096];
	path_of(pa, sizeof pa, a);
	path_of(pb, sizeof pb, b);
	FILE *in = fopen(pa, "rb");
	gzFile out = gzopen(pb, "wb");
	assert_non_null(in);
	assert_non_null(out);
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, in)) > 0)
		gzwrite(out, tmp, (unsigned)n);
	fclose(in);
	gzclose(out);
	unlink(pa);
}

static void copy_file(const char *a, const char *b)
{
	char pa[512], pb[512], tmp[4096];
	path_of(pa, sizeof pa, a);
	path_of(pb, sizeof pb, b);
	FILE *in = fopen(pa, "rb"), *out = fopen(pb, "wb");
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, in)) > 0)
		fwrite(tmp, 1, n, out);
	fclose(in);
	fclose(out);
}

static void truncate_file(const char *a)
{
	char pa[512];
	path_of(pa, sizeof pa, a);
	assert_int_equal(truncate(pa, 0), 0);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Run the collector until `want` lines arrived or ms passed. */
static void pump(struct collector *c, struct seen *s, int want, int ms)
{
	int64_t end = clock_mono_us() + (int64_t)ms * 1000;
	while (clock_mono_us() < end) {
		while (collector_tick(c) > 0)
			;
		if (want >= 0 && s->lines >= want)
			break;
		sleep_ms(10);
	}
	/* settle: nothing more must arrive */
	for (int i = 0; i < 3; i++) {
		sleep_ms(20);
		while (collector_tick(c) > 0)
			;
	}
}

/* Every seq in [from, to) exactly once, nothing else. */
static void expect_seq(const struct seen *s, int from, int to)
{
	int total = 0;
	for (int i = 0; i < MAXSEQ; i++) {
		int want = i >= from && i < to ? 1 : 0;
		if (s->count[i] != want)
			fail_msg("seq %d: got %d times, want %d", i, s->count[i], want);
		total += s->count[i];
	}
	assert_int_equal(total, to - from);
}

static struct collector *mk(struct seen *s, const char *name, bool poll)
{
	struct coll_opts o = {.poll_ms = 100, .rotate_grace_ms = 150, .no_inotify = poll};
	o.lookup = lookup;
	o.lookup_ctx = s;
	path_of(s->key, sizeof s->key, name);
	struct collector *c = collector_new(&o, sink, s);
	assert_non_null(c);
	assert_int_equal(collector_follow(c, s->key), 0);
	return c;
}

static void save_pos(struct collector *c, struct seen *s)
{
	collector_source_pos(c, 0, &s->pos);
	s->have_pos = true;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/mxw-follow-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct seen *new_seen(void)
{
	return calloc(1, sizeof(struct seen));
}

static void free_seen(struct seen *s)
{
	buf_free(&s->last);
	free(s);
}

static void test_partial_line(void **state)
{
	(void)state;
	struct seen *s = new_seen();
	append_seq("p.log", 0, 3);
	append_raw("p.log", "seq 3");
	struct collector *c = mk(s, "p.log", false);
	pump(c, s, 3, 1000);
	assert_int_equal(s->lines, 3); /* the partial line is held */
	sleep_ms(200);
	append_raw("p.log", "\nseq 4\n");
	pump(c, s, 5, 2000);
	expect_seq(s, 0, 5);
	collector_free(c);
	free_seen(s);
}

static void test_appears_later(void **state)
{
	(void)state;
	struct seen *s = new_seen();
	struct collector *c = mk(s, "later.log", false);
	pump(c, s, -1, 300);
	assert_int_equal(s->lines, 0);
	append_seq("later.log", 0, 100);
	pump(c, s, 100, 3000);
	expect_seq(s, 0, 100);
	collector_free(c);
	free_seen(s);
}

static void rename_rotation(bool poll)
{
	struct seen *s = new_seen();
	append_seq("r.log", 0, 100);
	struct collector *c = mk(s, "r.log", poll);
	pump(c, s, 100, 3000);
	append_seq("r.log", 100, 150); /* written, then rotated before we read them */
	mv("r.log", "r.log.1");
	append_seq("r.log.1", 150, 160); /* the writer has not reopened yet */
	append_seq("r.log", 160, 190);	 /* now it has */
	pump(c, s, 190, 5000);
	expect_seq(s, 0, 190);
	struct coll_stats st;
	collector_stats(c, &st);
	assert_int_equal(st.rotations, 1);
	collector_free(c);
	free_seen(s);
}

static void test_rename_rotation(void **state)
{
	(void)state;
	rename_rotation(false);
}

static void test_rename_rotation_polling(void **state)
{
	(void)state;
	rename_rotation(true);
}

/* Two rotations before we look again: the file in between is read too. */
static void test_two_rotations_while_behind(void **state)
{
	(void)state;
	struct seen *s = new_seen();
	append_seq("r2.log", 0, 100);
	struct collector *c = mk(s, "r2.log", false);
	pump(c, s, 100, 3000);
	append_seq("r2.log", 100, 150);
	mv("r2.log", "r2.log.1");
	append_seq("r2.log", 150, 250);
	mv("r2.log.1", "r2.log.2");
	mv("r2.log", "r2.log.1");
	append_seq("r2.log", 250, 300);
	pump(c, s, 300, 5000);
	expect_seq(s, 0, 300);
	collector_free(c);
	free_seen(s);
}

/* A glob: every match is a source of its own, a match created later too. */
static void test_glob(void **state)
{
	(void)state;
	struct seen *s = new_seen();
	append_seq("g1.log", 0, 10);
	append_seq("g2.log", 10, 20);
	append_seq("other.txt", 100, 110); /* not a match */
	struct coll_opts o = {.poll_ms = 100, .rotate_grace_ms = 150};
	struct collector *c = collector_new(&o, sink, s);
	char pat[512];
	path_of(pat, sizeof pat, "g*.log");
	assert_int_equal(collector_follow(c, pat), 0);
	pump(c, s, 20, 3000);
	append_seq("g3.log", 20, 30);
	append_seq("g1.log", 30, 40);
	pump(c, s, 40, 3000);
	expect_seq(s, 0, 40);
	assert_int_equal(collector_source_count(c), 3);
	collector_free(c);
	free_seen(s);
}

static void test_copytruncate(void **state)
{
	(void)state;
	struct seen *s = new_seen();
	append_seq("ct.log", 0, 100);
	struct collector *c = mk(s, "ct.log", false);
	pump(c, s, 100, 3000);
	/* no reading between these: the 20 lines exist only in the copy afterwards */
	append_seq("ct.log", 100, 120);
	copy_file("ct.log", "ct.log.1");
	truncate_file("ct.log");
	append_seq("ct.log", 120, 130);
	pump(c, s, 130, 5000);
	expect_seq(s, 0, 130);
	struct coll_stats st;
	collector_stats(c, &st);
	assert_int_equal(st.truncations, 1);
	collector_free(c);
	free_seen(s);
}

static void test_copytruncate_gz_copy(void **state)
{
	(void)state;
	struct seen *s = new_seen();
	append_seq("ctz.log", 0, 100);
	struct collector *c = mk(s, "ctz.log", false);
	pump(c, s, 100, 3000);
	/* stop watching while the copy is made and compressed at once */
	save_pos(c, s);
	collector_free(c);
	append_seq("ctz.log", 100, 120);
	copy_file("ctz.log", "ctz.log.1");
	truncate_file("ctz.log");
	gzip_file("ctz.log.1", "ctz.log.1.gz");
	append_seq("ctz.log", 120, 130);
	c = mk(s, "ctz.log", false);
	pump(c, s, 130, 5000);
	expect_seq(s, 0, 130);
	collector_free(c);
	free_seen(s);
}

static void test_down_during_rotation(void **state)
{
	(void)state;
	struct seen *s = new_seen();
	append_seq("d.log", 0, 100);
	struct collector *c = mk(s, "d.log", false);
	pump(c, s, 100, 3000);
	save_pos(c, s);
	collector_free(c);
	/* down: 1000 more lines, two rotations, the older one compressed */
	append_seq("d.log", 100, 600);
	mv("d.log", "d.log.1");
	append_seq("d.log", 600, 1100);
	mv("d.log.1", "d.log.2");
	mv("d.log", "d.log.1");
	gzip_file("d.log.2", "d.log.2.gz");
	append_seq("d.log", 1100, 1500);
	c = mk(s, "d.log", false);
	pump(c, s, 1500, 5000);
	expect_seq(s, 0, 1500);
	/* and a restart now resumes at the end: nothing twice */
	save_pos(c, s);
	collector_free(c);
	c = mk(s, "d.log", false);
	pump(c, s, -1, 300);
	expect_seq(s, 0, 1500);
	collector_free(c);
	free_seen(s);
}

static void test_delete_recreate(void **state)
{
	(void)state;
	struct seen *s = new_seen();
	append_seq("del.log", 0, 10);
	struct collector *c = mk(s, "del.log", false);
	pump(c, s, 10, 3000);
	char p[512];
	path_of(p, sizeof p, "del.log");
	unlink(p);
	pump(c, s, -1, 400);
	append_seq("del.log", 10, 1010);
	pump(c, s, 1010, 3000);
	expect_seq(s, 0, 1010);
	collector_free(c);
	free_seen(s);
}

static void test_rewritten_same_size(void **state)
{
	(void)state;
	/* truncated and rewritten beyond the old size before we looked: the
	 * fingerprint tells it is another file */
	struct seen *s = new_seen();
	append_seq("rw.log", 0, 10);
	struct collector *c = mk(s, "rw.log", false);
	pump(c, s, 10, 3000);
	save_pos(c, s);
	collector_free(c);
	truncate_file("rw.log");
	append_seq("rw.log", 100, 120);
	c = mk(s, "rw.log", false);
	pump(c, s, 30, 3000);
	for (int i = 0; i < 10; i++)
		assert_int_equal(s->count[i], 1);
	for (int i = 100; i < 120; i++)
		if (s->count[i] != 1)
			fail_msg("seq %d: got %d, want 1", i, s->count[i]);
	assert_int_equal(s->lines, 30);
	collector_free(c);
	free_seen(s);
}

static void test_symlink(void **state)
{
	(void)state;
	struct seen *s = new_seen();
	char sub[512], target[512], link[512];
	path_of(sub, sizeof sub, "real");
	mkdir(sub, 0755);
	path_of(target, sizeof target, "real/t.log");
	path_of(link, sizeof link, "link.log");
	assert_int_equal(symlink(target, link), 0);
	append_seq("real/t.log", 0, 50);
	struct collector *c = mk(s, "link.log", false);
	pump(c, s, 50, 3000);
	mv("real/t.log", "real/t.log.1");
	append_seq("real/t.log", 50, 80);
	pump(c, s, 80, 3000);
	expect_seq(s, 0, 80);
	collector_free(c);
	free_seen(s);
}

static void test_overlong_in_file(void **state)
{
	(void)state;
	struct seen *s = new_seen();
	append_seq("long.log", 0, 5);
	struct buf big = BUF_INIT;
	for (int i = 0; i < 70 * 1024; i++)
		buf_appendc(&big, 'y');
	buf_appendc(&big, '\n');
	append_raw("long.log", big.data);
	append_seq("long.log", 5, 10);
	struct collector *c = mk(s, "long.log", false);
	pump(c, s, 11, 3000);
	expect_seq(s, 0, 10);
	assert_int_equal(s->overlong, 1);
	buf_free(&big);
	collector_free(c);
	free_seen(s);
}

static void test_import_plain_gz(void **state)
{
	(void)state;
	append_seq("imp.log", 0, 3000);
	append_raw("imp.log", "seq 3000"); /* a finished file's last line without newline */
	copy_file("imp.log", "imp2.log");
	gzip_file("imp2.log", "imp.log.gz");
	char p[512], pz[512], err[256];
	path_of(p, sizeof p, "imp.log");
	path_of(pz, sizeof pz, "imp.log.gz");
	struct seen *a = new_seen(), *b = new_seen();
	struct coll_pos pa, pb, again;
	assert_int_equal(collector_import(p, NULL, &pa, 0, sink, NULL, a, err, sizeof err), 3001);
	assert_int_equal(collector_import(pz, NULL, &pb, 0, sink, NULL, b, err, sizeof err), 3001);
	expect_seq(a, 0, 3001);
	expect_seq(b, 0, 3001);
	assert_int_equal(pa.offset, pb.offset);
	assert_true(pa.fp == pb.fp && pa.fp_len == pb.fp_len && pa.fp_len == COLL_FP_MAX);
	/* the same file again, and its compressed twin, add nothing */
	assert_int_equal(collector_import(p, &pa, &again, 0, sink, NULL, a, err, sizeof err), 0);
	assert_int_equal(collector_import(pz, &pa, &again, 0, sink, NULL, a, err, sizeof err), 0);
	expect_seq(a, 0, 3001);
	/* a grown file: only the new lines */
	append_raw("imp.log", "1\nseq 3002\n"); /* "seq 30001" is out of range: counts as other */
	struct seen *g = new_seen();
	assert_int_equal(collector_import(p, &pa, &again, 0, sink, NULL, g, err, sizeof err), 2);
	free_seen(a);
	free_seen(b);
	free_seen(g);
	/* a damaged gzip is an error, with the lines before it delivered */
	struct seen *d = new_seen();
	char pd[512];
	path_of(pd, sizeof pd, "bad.gz");
	FILE *f = fopen(pz, "rb"), *o = fopen(pd, "wb");
	char tmp[2000];
	size_t n = fread(tmp, 1, sizeof tmp, f);
	fwrite(tmp, 1, n / 2, o);
	fclose(f);
	fclose(o);
	assert_int_equal(collector_import(pd, NULL, &again, 0, sink, NULL, d, err, sizeof err), -1);
	assert_non_null(strstr(err, "bad.gz"));
	free_seen(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_partial_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_appears_later, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rename_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rename_rotation_polling, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_rotations_while_behind, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_glob, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_copytruncate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_copytruncate_gz_copy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_down_during_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_recreate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rewritten_same_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symlink, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overlong_in_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_plain_gz, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
