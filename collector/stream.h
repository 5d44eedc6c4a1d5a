/*
 * stream.h - one open input file, plain or gzip, with its identity (device,
 * inode, fingerprint) and how many (decompressed) bytes were read. Internal
 * to the collector.
 */
#ifndef MXWARDEN_COLLECTOR_STREAM_H
#define MXWARDEN_COLLECTOR_STREAM_H

#include <sys/types.h>
#include <zlib.h>

#include "collector/collector.h"

struct stream {
	int fd;	   /* -1 when closed (for gz: the descriptor gz owns) */
	gzFile gz; /* non-NULL for a gzip file */
	uint64_t dev, ino;
	uint64_t fp;
	uint32_t fp_len;
	int64_t read_off; /* decompressed bytes read so far */
	char *name;	  /* for messages */
};

/* Open path ("-" = standard input, read as plain text; gzip is detected by
 * its magic bytes on regular files only). Computes the fingerprint over fp_want
 * bytes (COLL_FP_MAX when 0). Returns 0 or -1 with errno set. */
int stream_open(struct stream *st, const char *path, uint32_t fp_want);
void stream_close(struct stream *st);
static inline bool stream_is_open(const struct stream *st)
{
	return st->fd >= 0;
}
/* Read up to n bytes: > 0 bytes, 0 at end, -1 on error (message in log). */
ssize_t stream_read(struct stream *st, char *p, size_t n);
/* Move to decompressed offset off (forward only for gzip). Returns 0 or -1. */
int stream_seek(struct stream *st, int64_t off);
/* Recompute the fingerprint of a plain file that has grown (fp_len <
 * COLL_FP_MAX). Returns 0 or -1. */
int stream_refresh_fp(struct stream *st);
/* Does a plain file still start with the bytes we fingerprinted? 1 yes, 0 no, -1 error. */
int stream_fp_still(const struct stream *st);

#endif
