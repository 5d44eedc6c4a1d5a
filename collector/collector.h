/*
 * collector.h - where log lines come from: followed files (inotify, with a
 * polling fallback), imported files (plain, .gz, stdin) and a syslog
 * receiver (UDP and TCP). The collector turns bytes into complete lines and
 * hands each one, with where it came from and the file offset just after
 * it, to one callback (the sink).
 *
 * Where it sits: depends on base/ only. It never parses a line's content
 * (the syslog receiver reads only the syslog envelope), never speaks SQL and
 * never keeps a line after the sink returns. Positions are handed out as
 * plain structs so that the caller stores them in the same transaction as
 * the events those lines produced (exactly once across kill -9).
 *
 * Contract of a delivered line (struct coll_line):
 *   - p[0..n) is the line without its '\n' (and without a trailing '\r'); it
 *     lives in a reused read buffer and is valid only during the sink call.
 *   - Lines longer than opts.max_line (default 64 KiB) are not delivered as
 *     text: the sink gets overlong = true, p = NULL, n = 0, so it can count
 *     them; the position still moves past them.
 *   - For file sources, before the sink is called the source's position
 *     (collector_source_pos) already says "this line is consumed". A caller
 *     that commits the position together with everything the sink did for
 *     the lines so far gets exactly-once delivery across restarts.
 *   - A partial last line of a followed file is held until its '\n' comes;
 *     the partial tail of a file that is finished (rotated away, imported,
 *     read from a rotated copy) is delivered as a line of its own.
 *
 * Files are identified by device, inode and a fingerprint of their first
 * bytes (COLL_FP_MAX), so a recycled inode or a truncated-and-rewritten file
 * is not taken for the old one, and a rotated or compressed copy is found
 * again by its fingerprint.
 *
 * Threading: a collector is used by one thread only (the engine).
 */
#ifndef MXWARDEN_COLLECTOR_H
#define MXWARDEN_COLLECTOR_H

#include <stdint.h>
#include <stdio.h>

#include "base/base.h"

#define COLL_LINE_MAX	 (64 * 1024) /* default longest line delivered */
#define COLL_FP_MAX	 1024	     /* bytes hashed into a file fingerprint */
#define COLL_KEY_MAX	 4096
#define COLL_SYSLOG_HOST 256

/* The identity of a file and how far it has been consumed. */
struct coll_pos {
	uint64_t dev, ino; /* of the file last read (0 for gz/stdin) */
	uint64_t fp;	   /* FNV-1a 64 of the first fp_len bytes (decompressed) */
	uint32_t fp_len;   /* 0 = the file was empty when seen */
	int64_t offset;	   /* bytes consumed: just after the last delivered line */
	int64_t lines;	   /* lines delivered from this source (all files) */
};

enum coll_kind { COLL_FOLLOW, COLL_IMPORT, COLL_SYSLOG };

struct coll_line {
	const char *p;
	size_t n;
	int source; /* index for collector_source_*(), -1 for an import or syslog, COLL_SOURCE_JOURNAL */
	int64_t off_after;  /* file sources: offset just after this line; else 0 */
	bool overlong;	    /* the line was too long and skipped (p = NULL) */
	struct span host;   /* syslog: the HOSTNAME of the envelope (else empty) */
	struct ipaddr peer; /* syslog: the sending peer (family 0 otherwise) */
};

/* The sink. Called for each line, in order per source. */
typedef void (*coll_sink_fn)(void *ctx, const struct coll_line *ln);
/* Stored position of a followed path (key): fill pos and return 0, or
 * return -1 when nothing is stored. */
typedef int (*coll_lookup_fn)(void *ctx, const char *key, struct coll_pos *pos);

struct coll_opts {
	size_t max_line;	 /* 0 = COLL_LINE_MAX */
	int64_t poll_ms;	 /* recheck every file this often (0 = 1000) */
	int64_t rotate_grace_ms; /* keep reading a renamed file this long after it went quiet (0 = 1000) */
	bool no_inotify;	 /* force the polling fallback (tests) */
	size_t read_budget;	 /* bytes read per source per collector_run() (0 = 4 MiB) */
	/* syslog receiver: off when listen is NULL */
	const char *syslog_listen; /* "ADDR:PORT", "[v6]:PORT" */
	size_t syslog_max_msg;	   /* 0 = 8192 */
	int syslog_max_conn;	   /* 0 = 64 */
	/* peers allowed to send: NULL or empty = loopback only, and then
	 * syslog_listen must be a loopback address (else collector_new fails) */
	const struct prefix_list *syslog_allow;
	bool syslog_udp_remote; /* UDP from allowed peers that are not loopback (forgeable): off = refused */
	coll_lookup_fn lookup;	/* may be NULL: every file starts at 0 */
	void *lookup_ctx;
};

struct collector;

/* Returns a collector, or NULL with a message on stderr (syslog socket could
 * not be bound). The sink is called from collector_run() and collector_tick(). */
struct collector *collector_new(const struct coll_opts *opts, coll_sink_fn sink, void *ctx);
void collector_free(struct collector *c);

/*
 * Follow path: a file name or a glob (matches are re-expanded at every
 * poll). The file need not exist yet. When opts.lookup knows a position for
 * the path, reading resumes there: in the file itself, or, when it was
 * rotated while we were down, in path.1 / path.1.gz / path.2 ... (found by
 * fingerprint), then every newer rotated file, then the live file.
 * Returns 0, or -1 for an unusable path (empty, too long).
 */
int collector_follow(struct collector *c, const char *path);

/* A file descriptor that becomes readable when collector_run() has work
 * (epoll it level-triggered). */
int collector_fd(const struct collector *c);

/*
 * Do pending work without blocking: read inotify events and syslog sockets,
 * read followed files (at most opts.read_budget bytes per file per call).
 * Returns 1 when work is left (call again soon), 0 otherwise.
 */
int collector_run(struct collector *c);

/* Timer duty (call every ~100 ms): polling, retries of missing files,
 * switching to a new file once a rotated one has gone quiet, glob rescans.
 * Does the work of collector_run() too and returns the same. */
int collector_tick(struct collector *c);

/*
 * Forget everything read since the caller last stored positions: every
 * followed source starts again, at the next collector_run(), from the
 * position opts.lookup returns then (with the same catch-up through rotated
 * files as at start). For a caller whose batch could not be committed.
 * Must not be called from inside the sink.
 */
void collector_rewind(struct collector *c);

/* Sources: every followed file (glob matches included) has an index. */
size_t collector_source_count(const struct collector *c);
const char *collector_source_key(const struct collector *c, size_t i);
/* The position to store for source i (see the line contract above). When
 * a new file was opened (at start, after a rotation) and every earlier line
 * was delivered, it already names the new file at offset 0 before its
 * first line comes: store it too, so that a restart finds that file even
 * after it is rotated away. */
void collector_source_pos(const struct collector *c, size_t i, struct coll_pos *pos);

/* Counters for stats and tests. */
struct coll_stats {
	uint64_t lines;	      /* delivered, overlong included */
	uint64_t overlong;    /* lines skipped as too long */
	uint64_t rotations;   /* rename/create switches */
	uint64_t truncations; /* copytruncate or rewrite detected */
	uint64_t gaps;	      /* resumes where the stored file was not found */
	uint64_t syslog_msgs;
	uint64_t syslog_dropped; /* too big, bad framing, refused peer, over the connection limit */
	bool polling;		 /* inotify unavailable */
};
void collector_stats(const struct collector *c, struct coll_stats *st);

/* ------------------------------------------------------------ the journal */

/*
 * [collector] journal: the systemd journal through sd-journal (journal.c).
 * Entries whose SYSLOG_IDENTIFIER matches one of patterns (names or fnmatch
 * globs: postfix/\*, exim4, sendmail) are delivered to the sink as lines
 * "RFC3339-UTC-TIME HOST IDENT[PID]: MESSAGE" with source =
 * COLL_SOURCE_JOURNAL. The position is the cursor of the last entry read
 * (matching or not): store it with the events of the lines before it and
 * hand it back to coll_journal_open() or coll_journal_seek() to go on just
 * after it, exactly once. A separate reader beside the collector, driven by
 * the same loop (coll_journal_fd() for epoll, coll_journal_run() to read).
 */
#define COLL_SOURCE_JOURNAL (-2)
struct coll_journal;
/* The system journal (dir NULL: the local machine's, as the user may read
 * it; group adm reads the system journal) or the journal files in dir
 * (tests). Reading starts after cursor, or at the first entry (NULL). NULL
 * with a message in err when it cannot be opened; an invalid cursor starts
 * from the first entry (the message is set but the reader is returned). */
struct coll_journal *coll_journal_open(const struct strv *patterns, const char *dir, const char *cursor,
				       size_t max_line, char *err, size_t errsz);
void coll_journal_free(struct coll_journal *j);
/* Readable when the journal changed (inotify), or -1. */
int coll_journal_fd(const struct coll_journal *j);
/* Read up to max entries: 1 when more may be there, 0 caught up, -1 error. */
int coll_journal_run(struct coll_journal *j, size_t max, coll_sink_fn sink, void *ctx);
/* The cursor of the last entry read, NULL before the first: valid until the
 * next call. */
const char *coll_journal_cursor(const struct coll_journal *j);
/* Go back to just after cursor (NULL: the first entry), e.g. to the last
 * committed one after a refused batch. 0 or -1. */
int coll_journal_seek(struct coll_journal *j, const char *cursor);
void coll_journal_stats(const struct coll_journal *j, uint64_t *lines, uint64_t *overlong);

/* ---------------------------------------------------------------- import */

/*
 * Read one finished file (plain or gzip, detected by its magic bytes) or "-"
 * (standard input) to its end and deliver every line to sink (source = -1,
 * off_after = offset in the decompressed stream). When stored is not NULL
 * and holds the same file (fingerprint), reading starts at stored->offset;
 * a different file starts at 0. On return *pos holds the new position to
 * store (the whole file consumed). progress, when not NULL, is called about
 * every 256 KiB with the bytes read from disk so far and the file's size on
 * disk (0 when unknown).
 * Returns the number of lines delivered, or -1 on an I/O or gzip error with
 * a message in err (lines before the error were delivered; *pos says how far).
 */
typedef void (*coll_progress_fn)(void *ctx, int64_t disk_read, int64_t disk_size, int64_t lines);
int64_t collector_import(const char *path, const struct coll_pos *stored, struct coll_pos *pos,
			 size_t max_line, coll_sink_fn sink, coll_progress_fn progress, void *ctx, char *err,
			 size_t errsz);

/* The identity of the file at path (plain or .gz), for matching a stored
 * position: fp over the first fp_len bytes (COLL_FP_MAX when fp_len is 0).
 * Returns 0, or -1 when it cannot be read. */
int collector_identify(const char *path, uint32_t fp_len, struct coll_pos *out);

/* ------------------------------------------------------ internals exposed for tests */

/*
 * May a syslog peer send? With allow NULL or empty, loopback peers only;
 * else the peers allow holds. A UDP datagram from a peer that is not
 * loopback is refused even when allowed (its source address can be
 * forged) unless udp_remote. Returns SYSLOG_PEER_OK or why not.
 */
enum { SYSLOG_PEER_OK, SYSLOG_PEER_NOT_ALLOWED, SYSLOG_PEER_UDP_REMOTE };
int syslog_peer_check(const struct prefix_list *allow, bool udp_remote, const struct ipaddr *peer, bool udp);

/*
 * Line framing in one reused buffer. Bytes are read into the free space,
 * then lineframe_commit() delivers every complete line; an incomplete tail
 * stays at the front of the buffer. A line longer than max_line is dropped
 * up to its '\n' and reported once as overlong.
 */
struct lineframe {
	char *buf;
	size_t cap, len;
	size_t max_line;
	int64_t off;	  /* stream offset of buf[0] */
	int64_t consumed; /* offset just after the last line handed out */
	bool skipping;
};
/* Called per line: p/n without '\n' or '\r', off_after just after the '\n'. */
typedef void (*lineframe_fn)(void *ctx, const char *p, size_t n, int64_t off_after, bool overlong);
void lineframe_init(struct lineframe *lf, size_t max_line, int64_t off);
void lineframe_free(struct lineframe *lf);
/* Free space to read into (always at least max_line bytes). */
char *lineframe_space(struct lineframe *lf, size_t *room);
void lineframe_commit(struct lineframe *lf, size_t n, lineframe_fn fn, void *ctx);
/* End of a finished stream: deliver a pending partial line, if any. */
void lineframe_finish(struct lineframe *lf, lineframe_fn fn, void *ctx);
/* Drop everything and restart at stream offset off. */
void lineframe_reset(struct lineframe *lf, int64_t off);

/* FNV-1a 64 over p[0..n) (the fingerprint hash). */
uint64_t coll_fp_hash(const void *p, size_t n);

/*
 * Parse one syslog message (RFC 5424, RFC 3164 or a bare traditional line,
 * without framing) into the traditional line a file would hold:
 * "TIMESTAMP HOST TAG: MSG". out is reset first. host receives the span of
 * the host inside out. When the message has no host, peer_text (may be
 * NULL) is used. Returns 0, or -1 for a message that is not syslog.
 */
int syslog_to_line(const char *msg, size_t n, const char *peer_text, struct buf *out, struct span *host);

#endif
