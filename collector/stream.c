/*
 * stream.c - open, identify and read one input file, plain or gzip (zlib),
 * or standard input. Internal to the collector.
 *
 * It must never follow a file across a rename (that is follow.c's job) and
 * never hold more than one descriptor per stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/stream.h"

static int fp_of_fd(int fd, uint32_t want, uint64_t *fp, uint32_t *len)
{
	char tmp[COLL_FP_MAX];
	size_t got = 0;
	if (want == 0 || want > COLL_FP_MAX)
		want = COLL_FP_MAX;
	while (got < want) {
		ssize_t r = pread(fd, tmp + got, want - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*fp = coll_fp_hash(tmp, got);
	*len = (uint32_t)got;
	return 0;
}

static int fp_of_gz(gzFile gz, uint32_t want, uint64_t *fp, uint32_t *len)
{
	char tmp[COLL_FP_MAX];
	if (want == 0 || want > COLL_FP_MAX)
		want = COLL_FP_MAX;
	int r = gzread(gz, tmp, want);
	if (r < 0)
		return -1;
	*fp = coll_fp_hash(tmp, (size_t)r);
	*len = (uint32_t)r;
	return gzrewind(gz) == 0 ? 0 : -1;
}

int stream_open(struct stream *st, const char *path, uint32_t fp_want)
{
	memset(st, 0, sizeof *st);
	st->fd = -1;
	bool is_stdin = strcmp(path, "-") == 0;
	int fd = is_stdin ? dup(0) : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (!is_stdin && !S_ISREG(sb.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	st->dev = (uint64_t)sb.st_dev;
	st->ino = (uint64_t)sb.st_ino;
	st->name = xstrdup(path);
	unsigned char magic[2] = {0, 0};
	bool seekable = S_ISREG(sb.st_mode);
	if (seekable && pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
		/* gzip: blocking reads are fine, the file is finished */
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		st->gz = gzdopen(fd, "rb");
		if (!st->gz) {
			close(fd);
			free(st->name);
			errno = ENOMEM;
			return -1;
		}
		gzbuffer(st->gz, 256 * 1024);
		st->fd = fd;
		st->dev = st->ino = 0; /* a compressed copy is known by its content only */
		if (fp_of_gz(st->gz, fp_want, &st->fp, &st->fp_len) < 0) {
			stream_close(st);
			errno = EIO;
			return -1;
		}
		return 0;
	}
	if (is_stdin) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	st->fd = fd;
	if (seekable && fp_of_fd(fd, fp_want, &st->fp, &st->fp_len) < 0) {
		int e = errno;
		stream_close(st);
		errno = e;
		return -1;
	}
	return 0;
}

void stream_close(struct stream *st)
{
	if (st->gz)
		gzclose(st->gz); /* closes fd */
	else if (st->fd >= 0)
		close(st->fd);
	st->gz = NULL;
	st->fd = -1;
	free(st->name);
	st->name = NULL;
}

ssize_t stream_read(struct stream *st, char *p, size_t n)
{
	if (n > (1u << 30))
		n = 1u << 30;
	if (st->gz) {
		int r = gzread(st->gz, p, (unsigned)n);
		if (r < 0) {
			int errnum = 0;
			const char *msg = gzerror(st->gz, &errnum);
			log_warn("%s: gzip: %s", st->name, msg ? msg : "error");
			return -1;
		}
		if (r == 0) {
			int errnum = 0;
			gzerror(st->gz, &errnum);
			if (errnum != Z_OK && errnum != Z_BUF_ERROR) {
				log_warn("%s: gzip stream damaged", st->name);
				return -1;
			}
			if (errnum == Z_BUF_ERROR) {
				log_warn("%s: gzip stream truncated", st->name);
				return -1;
			}
		}
		st->read_off += r;
		return r;
	}
	for (;;) {
		ssize_t r = read(st->fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r < 0) {
			log_warn("%s: read: %s", st->name, strerror(errno));
			return -1;
		}
		st->read_off += r;
		return r;
	}
}

int stream_seek(struct stream *st, int64_t off)
{
	if (st->gz) {
		if (gzseek(st->gz, (z_off_t)off, SEEK_SET) != (z_off_t)off)
			return -1;
	} else if (lseek(st->fd, (off_t)off, SEEK_SET) != (off_t)off) {
		return -1;
	}
	st->read_off = off;
	return 0;
}

int stream_refresh_fp(struct stream *st)
{
	if (st->gz || st->fp_len >= COLL_FP_MAX)
		return 0;
	return fp_of_fd(st->fd, COLL_FP_MAX, &st->fp, &st->fp_len);
}

int stream_fp_still(const struct stream *st)
{
	if (st->gz)
		return 1;
	uint64_t fp;
	uint32_t len;
	if (fp_of_fd(st->fd, st->fp_len ? st->fp_len : 1, &fp, &len) < 0)
		return -1;
	if (st->fp_len == 0)
		return 1; /* nothing to compare yet */
	return len == st->fp_len && fp == st->fp;
}

int collector_identify(const char *path, uint32_t fp_len, struct coll_pos *out)
{
	struct stream st;
	memset(out, 0, sizeof *out);
	if (stream_open(&st, path, fp_len) < 0)
		return -1;
	out->dev = st.dev;
	out->ino = st.ino;
	out->fp = st.fp;
	out->fp_len = st.fp_len;
	stream_close(&st);
	return 0;
}
