/*
 * faultshim.c - an LD_PRELOAD library for the write-fault tests
 * (RELIABILITY 20): makes write(2), fsync(2) and rename(2) fail for paths
 * that contain the text of MXW_FAULT_PATH, for the operations listed in
 * MXW_FAULT_OPS (comma-separated: write, fsync, rename). Both variables are
 * read at each call, so a test process can switch faults on and off with
 * setenv/unsetenv.
 *   write:  a matching write of n > 1 bytes really writes n/2 and returns
 *           that (so the temp file holds a partial text), one of 1 byte
 *           fails with ENOSPC: the writer's loop ends in ENOSPC;
 *   fsync:  fails with EIO;
 *   rename: fails with EIO when either path matches.
 * Every fault adds one to mxw_faultshim_count (tests read it via dlsym).
 *
 * It must never change the behaviour of a call that does not match, and
 * never be linked into mxwarden itself.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned long mxw_faultshim_count;

static bool op_wanted(const char *op)
{
	const char *ops = getenv("MXW_FAULT_OPS");
	size_t n = strlen(op);
	while (ops && *ops) {
		const char *e = strchr(ops, ',');
		size_t k = e ? (size_t)(e - ops) : strlen(ops);
		if (k == n && memcmp(ops, op, n) == 0)
			return true;
		ops = e ? e + 1 : NULL;
	}
	return false;
}

static bool path_matches(const char *path)
{
	const char *pat = getenv("MXW_FAULT_PATH");
	return pat && *pat && path && strstr(path, pat) != NULL;
}

static bool fd_matches(int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n < 0)
		return false;
	path[n] = '\0';
	return path_matches(path);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (op_wanted("write") && fd_matches(fd)) {
		mxw_faultshim_count++;
		if (n > 1)
			return real(fd, buf, n / 2);
		errno = ENOSPC;
		return -1;
	}
	return real(fd, buf, n);
}

int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	if (op_wanted("fsync") && fd_matches(fd)) {
		mxw_faultshim_count++;
		errno = EIO;
		return -1;
	}
	return real(fd);
}

int rename(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);
	if (!real)
		real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
	if (op_wanted("rename") && (path_matches(from) || path_matches(to))) {
		mxw_faultshim_count++;
		errno = EIO;
		return -1;
	}
	return real(from, to);
}
