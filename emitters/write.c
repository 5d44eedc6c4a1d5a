/*
 * write.c - atomic replacement of an output file: a temp file in the same
 * directory, fsync, rename, fsync of the directory; mode and owner of the
 * old file kept; nothing written when the bytes are the same.
 *
 * It must never leave a partial file at path (a reader sees the old file or
 * the new one) nor a temp file behind on failure.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emitters/emit_int.h"

static bool same_content(const char *path, const struct stat *st, const char *data, size_t len)
{
	if ((size_t)st->st_size != len)
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char tmp[65536];
	size_t off = 0;
	bool same = true;
	while (same) {
		ssize_t k = read(fd, tmp, sizeof tmp);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			same = k == 0 && off == len;
			break;
		}
		if (off + (size_t)k > len || memcmp(tmp, data + off, (size_t)k) != 0)
			same = false;
		off += (size_t)k;
	}
	close(fd);
	return same;
}

static int write_atomic(const char *path, const char *data, size_t len, bool *changed);

int emit_write_atomic(const char *path, const char *data, size_t len, bool *changed)
{
	/* a symlink stays a symlink: replace the file it points to */
	struct stat lst;
	if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
		char *real = realpath(path, NULL);
		if (real) {
			int rc = write_atomic(real, data, len, changed);
			free(real);
			return rc;
		}
	}
	return write_atomic(path, data, len, changed);
}

static int write_atomic(const char *path, const char *data, size_t len, bool *changed)
{
	if (changed)
		*changed = false;
	struct stat st;
	bool exists = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	if (exists && same_content(path, &st, data, len))
		return 0;
	const char *slash = strrchr(path, '/');
	struct buf dir = BUF_INIT, tmp = BUF_INIT;
	if (slash)
		buf_append(&dir, path, slash == path ? 1 : (size_t)(slash - path));
	else
		buf_appends(&dir, ".");
	buf_printf(&tmp, "%s/.%s.XXXXXX", buf_str(&dir), slash ? slash + 1 : path);
	int saved = 0, dfd = -1;
	int fd = mkostemp(tmp.data, O_CLOEXEC);
	if (fd < 0) {
		saved = errno;
		log_error("cannot create a temp file beside %s: %s", path, strerror(saved));
		goto out;
	}
	for (size_t off = 0; off < len;) {
		ssize_t k = write(fd, data + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			saved = errno;
			log_error("cannot write %s: %s", tmp.data, strerror(saved));
			goto fail;
		}
		off += (size_t)k;
	}
	if (fchmod(fd, exists ? (st.st_mode & 07777) : 0644) < 0) {
		saved = errno;
		log_error("cannot chmod %s: %s", tmp.data, strerror(saved));
		goto fail;
	}
	if (exists && (st.st_uid != geteuid() || st.st_gid != getegid()) &&
	    fchown(fd, st.st_uid, st.st_gid) < 0)
		log_warn("%s: cannot keep owner %d:%d: %s", path, (int)st.st_uid, (int)st.st_gid,
			 strerror(errno));
	if (fsync(fd) < 0) {
		saved = errno;
		log_error("cannot fsync %s: %s", tmp.data, strerror(saved));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		saved = errno;
		log_error("cannot close %s: %s", tmp.data, strerror(saved));
		goto fail;
	}
	fd = -1;
	if (rename(tmp.data, path) < 0) {
		saved = errno;
		log_error("cannot rename %s to %s: %s", tmp.data, path, strerror(saved));
		goto fail;
	}
	dfd = open(buf_str(&dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) < 0)
			log_warn("cannot fsync directory %s: %s", buf_str(&dir), strerror(errno));
		close(dfd);
	}
	if (changed)
		*changed = true;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp.data);
out:
	buf_free(&dir);
	buf_free(&tmp);
	if (saved) {
		errno = saved;
		return -1;
	}
	return 0;
}

int emit_clean_temp(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	struct buf dir = BUF_INIT, prefix = BUF_INIT, p = BUF_INIT;
	if (slash)
		buf_append(&dir, path, slash == path ? 1 : (size_t)(slash - path));
	else
		buf_appends(&dir, ".");
	buf_printf(&prefix, ".%s.", base);
	int n = 0;
	DIR *dp = opendir(buf_str(&dir));
	struct dirent *e;
	while (dp && (e = readdir(dp))) {
		/* exactly ".NAME." and the six characters mkstemp put there */
		if (strlen(e->d_name) != prefix.len + 6 || strncmp(e->d_name, prefix.data, prefix.len) != 0)
			continue;
		buf_reset(&p);
		buf_printf(&p, "%s/%s", buf_str(&dir), e->d_name);
		if (unlink(buf_str(&p)) == 0) {
			log_warn("removed %s, left by an interrupted write", buf_str(&p));
			n++;
		}
	}
	if (dp)
		closedir(dp);
	buf_free(&dir);
	buf_free(&prefix);
	buf_free(&p);
	return n;
}
