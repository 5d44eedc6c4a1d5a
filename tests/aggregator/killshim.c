/*
 * killshim.c - an LD_PRELOAD library for the log-time equality test
 * (test_logtime.py): kills the process with a signal at a chosen point of
 * its database writes, as `kill -9` (or SIGTERM) would at the worst moment.
 * MXW_KILL says where:
 *   checkpoint:N     when the N-th aggregator checkpoint is about to be
 *                    stored (its batch's events are written, not committed)
 *   commit:N:K       at the K-th page write of the N-th COMMIT (a torn
 *                    commit; when that COMMIT writes fewer pages, as it
 *                    returns: committed, and the process never knows)
 *   pwrite:N         at the N-th page write of the process
 *   image:N:K        at the K-th write of the N-th checkpoint image file
 *                    (DB.ckpt-SEQ.tmp, its header first); K = 0: the image
 *                    written whole, as it is about to be renamed into place
 * MXW_KILL_SIG is KILL (the default) or TERM. SQLite is a shared library:
 * its sqlite3_step() and the pwrite64() of its unix VFS are interposed; the
 * engine and the pipe's writer thread both count. The image files are
 * written with write() and renamed with rename(), interposed too.
 *
 * It must never change the behaviour of a call before the chosen point, and
 * never be linked into mxwarden itself.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long kill_n, kill_k;
static int mode = -1; /* 0 none, 1 checkpoint, 2 commit, 3 pwrite, 4 image */
static unsigned long n_ckpt, n_commit, n_pwrite, n_image, image_writes;
static int image_fd = -1;
static __thread unsigned long in_commit; /* the COMMIT being stepped (its number), 0 = none */
static __thread unsigned long commit_writes;

static void setup(void)
{
	if (mode >= 0)
		return;
	const char *s = getenv("MXW_KILL");
	int m = 0;
	if (s && sscanf(s, "checkpoint:%lu", &kill_n) == 1)
		m = 1;
	else if (s && sscanf(s, "commit:%lu:%lu", &kill_n, &kill_k) == 2)
		m = 2;
	else if (s && sscanf(s, "pwrite:%lu", &kill_n) == 1)
		m = 3;
	else if (s && sscanf(s, "image:%lu:%lu", &kill_n, &kill_k) == 2)
		m = 4;
	__atomic_store_n(&mode, m, __ATOMIC_SEQ_CST);
}

static void die(void)
{
	const char *s = getenv("MXW_KILL_SIG");
	int sig = s && strcmp(s, "TERM") == 0 ? SIGTERM : SIGKILL;
	static const char msg[] = "killshim: killed\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
	}
	kill(getpid(), sig);
	pause();
}

int sqlite3_step(sqlite3_stmt *st)
{
	static int (*real)(sqlite3_stmt *);
	if (!real)
		real = (int (*)(sqlite3_stmt *))dlsym(RTLD_NEXT, "sqlite3_step");
	setup();
	const char *sql = mode == 1 || mode == 2 ? sqlite3_sql(st) : NULL;
	if (mode == 1 && sql && strstr(sql, "INTO agg_checkpoint") &&
	    __atomic_add_fetch(&n_ckpt, 1, __ATOMIC_SEQ_CST) == kill_n)
		die();
	if (mode == 2 && sql && strncmp(sql, "COMMIT", 6) == 0) {
		unsigned long n = __atomic_add_fetch(&n_commit, 1, __ATOMIC_SEQ_CST);
		in_commit = n;
		commit_writes = 0;
		int rc = real(st);
		in_commit = 0;
		if (n == kill_n)
			die(); /* it wrote fewer pages than K */
		return rc;
	}
	return real(st);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
	setup();
	if (mode == 2 && in_commit == kill_n && ++commit_writes == kill_k)
		die();
	if (mode == 3 && __atomic_add_fetch(&n_pwrite, 1, __ATOMIC_SEQ_CST) == kill_n)
		die();
	return real(fd, buf, n, off);
}

/* Whether fd is a checkpoint image being written (DB.ckpt-SEQ.tmp). */
static bool image_file(int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n <= 0)
		return false;
	path[n] = 0;
	return strstr(path, ".ckpt-") && n > 4 && strcmp(path + n - 4, ".tmp") == 0;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	setup();
	if (mode == 4 && fd > 2 && image_file(fd)) {
		if (fd != image_fd || lseek(fd, 0, SEEK_CUR) == 0) { /* a new image: its header */
			image_fd = fd;
			image_writes = 0;
			n_image++;
		}
		if (n_image == kill_n && ++image_writes == kill_k)
			die();
	}
	return real(fd, buf, n);
}

int rename(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);
	if (!real)
		real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
	setup();
	size_t n = strlen(from);
	if (mode == 4 && kill_k == 0 && strstr(from, ".ckpt-") && n > 4 &&
	    strcmp(from + n - 4, ".tmp") == 0 && n_image == kill_n)
		die();
	return real(from, to);
}
