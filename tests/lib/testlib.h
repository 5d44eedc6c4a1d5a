/*
 * testlib.h - what the C tests share: a scratch directory and its removal,
 * whole files read and written, the temp files an atomic write leaves, and
 * an HTTP GET over loopback. One copy here instead of one per test file.
 *
 * Every function reports failure by its return value (NULL or -1) and
 * never asserts: a setup function may return -1 to cmocka, a test asserts
 * on the result.
 */
#ifndef MXW_TESTLIB_H
#define MXW_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A new, empty scratch directory named mxw-TAG-XXXXXX in /tmp, or in
 * /dev/shm when shm is true and /dev/shm is a writable directory (tests
 * whose fsyncs would otherwise dominate). Returns its path (free() it), or
 * NULL.
 */
char *tl_scratch(const char *tag, bool shm);
/* Remove dir and everything below it; a missing dir is not an error.
 * tl_rmtree(NULL) is a no-op. */
void tl_rmtree(const char *dir);
/* A test's teardown of its tl_scratch(): tl_rmtree, free, *dir = NULL.
 * Returns 0 (what a cmocka teardown returns). */
int tl_scratch_free(char **dir);
/* dir "/" name, a new string (free() it). */
char *tl_path(const char *dir, const char *name);

/* The whole file at path, NUL-terminated (it may hold NUL bytes: *len,
 * when len is not NULL, receives its length), or NULL when it cannot be
 * read. An empty file gives "". free() it. */
char *tl_slurp(const char *path, size_t *len);
/* Write (mode "w") or append (mode "a") the NUL-terminated text to path.
 * 0, or -1 with errno set. */
int tl_write(const char *path, const char *mode, const char *text);

/* Entries of dir whose name starts with '.', "." and ".." aside: the temp
 * files of an atomic write (".NAME.XXXXXX") still lying there. */
size_t tl_count_dotfiles(const char *dir);

/* GET path from 127.0.0.1:port over HTTP/1.0 (at most 10 s). Returns the
 * body (free() it) and the status code in *status, or NULL when there was
 * no answer. */
char *tl_http_get(unsigned port, const char *path, int *status);

#endif
