/*
 * checkpoint.c - the aggregator's checkpoint: its image in a file of its
 * own beside the database (DB.ckpt-SEQ), one row of agg_checkpoint naming
 * it with the largest event id stored when it was taken, and the scan of
 * the events stored after it (db.h, "aggregator checkpoint").
 *
 * It stores and returns the image as opaque bytes: it must never look
 * inside it, nor write a row outside the caller's batch.
 *
 * The file: a header (struct ckpt_hdr: magic, length, CRC-32, the newest
 * event time, SEQ), then the image. The row's data column holds a
 * reference (struct ckpt_ref: magic and SEQ), or, for a database in
 * memory, the image itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "db/db_internal.h"

#define CKPT_MAGIC "MXWCKPT1"
#define CKPT_REF   "MXWCKREF"

struct ckpt_hdr {
	char magic[8];
	uint64_t len; /* image bytes after the header */
	uint64_t crc; /* CRC-32 of the image */
	int64_t newest_us;
	uint64_t seq;
};

struct ckpt_ref {
	char magic[8];
	uint64_t seq;
};

static bool in_memory(const char *db_path)
{
	return !*db_path || strcmp(db_path, ":memory:") == 0 || strncmp(db_path, "file::memory:", 13) == 0;
}

static void ckpt_path(char *out, size_t n, const char *db_path, uint64_t seq, bool tmp)
{
	snprintf(out, n, "%s.ckpt-%llu%s", db_path, (unsigned long long)seq, tmp ? ".tmp" : "");
}

struct db_ckpt_file {
	int fd;
	FILE *fp;
	uint64_t len, crc, seq;
	int werr; /* errno of a failed write, 0 = none */
	char tmp[PATH_MAX + 64], path[PATH_MAX + 64];
};

static ssize_t ckf_write(void *cookie, const char *buf, size_t n)
{
	struct db_ckpt_file *f = cookie;
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(f->fd, buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			f->werr = w < 0 ? errno : ENOSPC;
			return -1;
		}
		done += (size_t)w;
	}
	for (size_t k = 0; k < n; k += 1u << 30) /* crc32() takes an unsigned int length */
		f->crc = crc32((uLong)f->crc, (const Bytef *)buf + k, (uInt)MXW_MIN(n - k, (size_t)1 << 30));
	f->len += n;
	return (ssize_t)n;
}

struct db_ckpt_file *db_ckpt_file_begin(const char *db_path, uint64_t seq, char *err, size_t errsz)
{
	struct db_ckpt_file *f = calloc(1, sizeof *f);
	if (!f) {
		snprintf(err, errsz, "checkpoint: out of memory");
		return NULL;
	}
	f->seq = seq;
	f->crc = crc32(0, NULL, 0);
	ckpt_path(f->path, sizeof f->path, db_path, seq, false);
	ckpt_path(f->tmp, sizeof f->tmp, db_path, seq, true);
	/* log text inside (evidence lines): never world-readable */
	f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	struct ckpt_hdr h = {0};
	if (f->fd < 0 || fchmod(f->fd, 0640) < 0 || write(f->fd, &h, sizeof h) != (ssize_t)sizeof h) {
		snprintf(err, errsz, "checkpoint: cannot write %s: %s", f->tmp, strerror(errno));
		if (f->fd >= 0) {
			close(f->fd);
			unlink(f->tmp);
		}
		free(f);
		return NULL;
	}
	cookie_io_functions_t io = {.write = ckf_write};
	f->fp = fopencookie(f, "w", io);
	if (!f->fp) {
		snprintf(err, errsz, "checkpoint: %s", strerror(errno));
		close(f->fd);
		unlink(f->tmp);
		free(f);
		return NULL;
	}
	setvbuf(f->fp, NULL, _IOFBF, 1 << 20);
	return f;
}

FILE *db_ckpt_file_stream(struct db_ckpt_file *f)
{
	return f->fp;
}

int db_ckpt_file_finish(struct db_ckpt_file *f, int64_t newest_us, char *err, size_t errsz)
{
	int rc = fclose(f->fp) == 0 && !f->werr ? 0 : -1;
	struct ckpt_hdr h = {.len = f->len, .crc = f->crc, .newest_us = newest_us, .seq = f->seq};
	memcpy(h.magic, CKPT_MAGIC, 8);
	if (rc == 0 && (pwrite(f->fd, &h, sizeof h, 0) != (ssize_t)sizeof h || fsync(f->fd) < 0))
		rc = -1;
	int e = f->werr ? f->werr : errno;
	if (close(f->fd) < 0)
		rc = -1;
	if (rc == 0 && rename(f->tmp, f->path) < 0) {
		e = errno;
		rc = -1;
	}
	if (rc < 0) {
		snprintf(err, errsz, "checkpoint: cannot write %s: %s", f->tmp, strerror(e));
		unlink(f->tmp);
	}
	free(f);
	return rc;
}

/* The header of DB.ckpt-SEQ, checked against the file's size. 0, or -1
 * with what set. */
static int ckpt_header(const char *path, struct ckpt_hdr *h, int *fdp, const char **what)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	*what = NULL;
	if (fd < 0) {
		*what = "missing";
		return -1;
	}
	if (fstat(fd, &sb) < 0 || read(fd, h, sizeof *h) != (ssize_t)sizeof *h ||
	    memcmp(h->magic, CKPT_MAGIC, 8) != 0)
		*what = "not a checkpoint";
	else if ((uint64_t)sb.st_size != sizeof *h + h->len)
		*what = "of the wrong length";
	if (*what) {
		close(fd);
		return -1;
	}
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	return 0;
}

/* Remove the image files of this database but keep_a and keep_b (0 = none):
 * at most the committed one and the new one remain. */
static void ckpt_prune(const struct db *db, uint64_t keep_a, uint64_t keep_b)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(db->path, '/');
	const char *base = slash ? slash + 1 : db->path;
	if (slash)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - db->path == 0 ? 1 : slash - db->path),
			 db->path);
	else
		snprintf(dir, sizeof dir, ".");
	DIR *d = opendir(dir);
	if (!d)
		return;
	size_t bl = strlen(base);
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".ckpt-", 6) != 0)
			continue;
		char *end;
		unsigned long long seq = strtoull(n + bl + 6, &end, 10);
		if (end == n + bl + 6 || (*end && strcmp(end, ".tmp") != 0))
			continue;
		if (!*end && (seq == keep_a || seq == keep_b))
			continue;
		char p[PATH_MAX + 300];
		snprintf(p, sizeof p, "%s/%s", dir, n);
		unlink(p);
	}
	closedir(d);
}

static const char SQL_MAX_ID[] = "SELECT coalesce(max(id), 0) FROM events";
static const char SQL_PUT[] =
    "INSERT OR REPLACE INTO agg_checkpoint(id, at, newest, max_event_id, lines, data)"
    " VALUES(1, ?1, ?2, ?3, ?4, ?5)";
static const char SQL_GET[] =
    "SELECT c.at, c.newest, c.max_event_id, c.lines, c.data, s.source_id, s.source_offset, s.source_lines"
    " FROM agg_checkpoint c LEFT JOIN agg_checkpoint_source s ON s.id = c.id WHERE c.id = 1";
static const char SQL_DATA[] = "SELECT data FROM agg_checkpoint WHERE id = 1";
static const char SQL_CLEAR_SOURCE[] = "DELETE FROM agg_checkpoint_source";
static const char SQL_SET_SOURCE[] =
    "INSERT OR REPLACE INTO agg_checkpoint_source(id, source_id, source_offset,"
    " source_lines) VALUES(1, ?1, ?2, ?3)";
static const char SQL_OTHER_AFTER[] = "SELECT 1 FROM events WHERE id > ?1 AND source_id IS NOT ?2 LIMIT 1";
static const char SQL_SCAN_AFTER[] = "SELECT " DB_EVENT_COLS " FROM events WHERE id > ? ORDER BY id";

int64_t db_max_event_id(struct db *db)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_MAX_ID);
	if (!st)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		db_fail_sql(db, "checkpoint: max event id");
		return -1;
	}
	int64_t max_id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return max_id;
}

/* The SEQ the current row names, 0 = none (or an image in the row). */
static uint64_t ckpt_current(struct db *db)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_DATA);
	uint64_t seq = 0;
	if (st && sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 0) == (int)sizeof(struct ckpt_ref)) {
		struct ckpt_ref r;
		memcpy(&r, sqlite3_column_blob(st, 0), sizeof r);
		if (memcmp(r.magic, CKPT_REF, 8) == 0)
			seq = r.seq;
	}
	if (st)
		sqlite3_reset(st);
	return seq;
}

/* The row: data is the image (a database in memory) or a reference. */
static int ckpt_row(struct db *db, int64_t at, int64_t newest_us, int64_t max_id, int64_t lines,
		    const void *data, size_t len)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_PUT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, at);
	sqlite3_bind_int64(st, 2, newest_us);
	sqlite3_bind_int64(st, 3, max_id);
	sqlite3_bind_int64(st, 4, lines);
	sqlite3_bind_blob(st, 5, len ? data : "", (int)len, SQLITE_STATIC);
	if (db_step_done(db, st, "checkpoint") < 0)
		return -1;
	/* a new image stands at no file position until one is set */
	st = db_stmt_sql(db, SQL_CLEAR_SOURCE);
	return st ? db_step_done(db, st, "checkpoint source") : -1;
}

/* A SEQ not used before by this database: the wall clock in microseconds,
 * past the current one. */
static uint64_t ckpt_next_seq(struct db *db)
{
	uint64_t seq = (uint64_t)clock_now_us(), cur = ckpt_current(db);
	return seq > cur ? seq : cur + 1;
}

int db_checkpoint_put(struct db *db, int64_t at, int64_t newest_us, int64_t lines, const void *data,
		      size_t len)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if (len > (size_t)INT32_MAX - 1 && in_memory(db->path))
		return db_fail(db, "checkpoint of %zu bytes is too large", len);
	int64_t max_id = db_max_event_id(db);
	if (max_id < 0)
		return -1;
	if (in_memory(db->path))
		return ckpt_row(db, at, newest_us, max_id, lines, data, len);
	uint64_t cur = ckpt_current(db), seq = ckpt_next_seq(db);
	ckpt_prune(db, cur, 0);
	char err[PATH_MAX + 128];
	struct db_ckpt_file *f = db_ckpt_file_begin(db->path, seq, err, sizeof err);
	if (f && len) /* a failed write: db_ckpt_file_finish says so */
		(void)fwrite(data, len, 1, db_ckpt_file_stream(f));
	if (!f || db_ckpt_file_finish(f, newest_us, err, sizeof err) < 0)
		return db_fail(db, "%s", err);
	struct ckpt_ref r = {.seq = seq};
	memcpy(r.magic, CKPT_REF, 8);
	return ckpt_row(db, at, newest_us, max_id, lines, &r, sizeof r);
}

int db_checkpoint_put_file(struct db *db, int64_t at, int64_t lines, int64_t max_event_id, uint64_t seq)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	char path[PATH_MAX + 64];
	ckpt_path(path, sizeof path, db->path, seq, false);
	struct ckpt_hdr h;
	const char *what;
	if (ckpt_header(path, &h, NULL, &what) < 0 || h.seq != seq)
		return db_fail(db, "checkpoint: %s is %s", path, what ? what : "not the one written");
	uint64_t cur = ckpt_current(db);
	ckpt_prune(db, cur, seq);
	struct ckpt_ref r = {.seq = seq};
	memcpy(r.magic, CKPT_REF, 8);
	return ckpt_row(db, at, h.newest_us, max_event_id, lines, &r, sizeof r);
}

/* Read the image DB.ckpt-SEQ into c (data, len). 0, or -1 (logged). */
static int ckpt_load_file(struct db *db, uint64_t seq, struct db_checkpoint *c)
{
	char path[PATH_MAX + 64];
	ckpt_path(path, sizeof path, db->path, seq, false);
	struct ckpt_hdr h;
	const char *what = NULL;
	int fd = -1;
	if (ckpt_header(path, &h, &fd, &what) == 0) {
		c->data = malloc(h.len ? h.len : 1);
		size_t got = 0;
		while (c->data && got < h.len) {
			ssize_t r = read(fd, (char *)c->data + got, h.len - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		close(fd);
		uint64_t crc = crc32(0, NULL, 0);
		for (size_t k = 0; c->data && k < got; k += 1u << 30)
			crc = crc32((uLong)crc, (const Bytef *)c->data + k,
				    (uInt)MXW_MIN(got - k, (size_t)1 << 30));
		if (!c->data || got != h.len)
			what = "unreadable";
		else if (crc != h.crc)
			what = "damaged (its CRC does not match)";
		c->len = got;
	}
	if (!what)
		return 0;
	log_warn("database: the checkpoint %s is %s: the stored events are replayed instead", path, what);
	free(c->data);
	c->data = NULL;
	c->len = 0;
	return -1;
}

int db_checkpoint_get(struct db *db, struct db_checkpoint *c)
{
	memset(c, 0, sizeof *c);
	sqlite3_stmt *st = db_stmt_sql(db, SQL_GET);
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_fail_sql(db, "checkpoint");
	}
	c->at = sqlite3_column_int64(st, 0);
	c->newest_us = sqlite3_column_int64(st, 1);
	c->max_event_id = sqlite3_column_int64(st, 2);
	c->lines = sqlite3_column_int64(st, 3);
	const void *p = sqlite3_column_blob(st, 4);
	int n = sqlite3_column_bytes(st, 4);
	c->source_id = sqlite3_column_int64(st, 5);
	c->source_offset = sqlite3_column_int64(st, 6);
	c->source_lines = sqlite3_column_int64(st, 7);
	struct ckpt_ref r = {{0}, 0};
	if (n == (int)sizeof r)
		memcpy(&r, p, sizeof r);
	if (memcmp(r.magic, CKPT_REF, 8) == 0) {
		sqlite3_reset(st);
		if (ckpt_load_file(db, r.seq, c) < 0) {
			memset(c, 0, sizeof *c);
			return 0;
		}
		return 1;
	}
	/* an image in the row (a database in memory, or written before 0.2) */
	c->len = n > 0 ? (size_t)n : 0;
	c->data = xmalloc(c->len ? c->len : 1);
	if (c->len)
		memcpy(c->data, p, c->len);
	sqlite3_reset(st);
	return 1;
}

int db_checkpoint_set_source(struct db *db, int64_t source_id, int64_t offset, int64_t lines)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	sqlite3_stmt *st = db_stmt_sql(db, SQL_SET_SOURCE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, source_id);
	sqlite3_bind_int64(st, 2, offset);
	sqlite3_bind_int64(st, 3, lines);
	return db_step_done(db, st, "checkpoint source");
}

int db_events_other_source_after(struct db *db, int64_t after_id, int64_t source_id)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_OTHER_AFTER);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int64(st, 2, source_id);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : db_fail_sql(db, "events after the checkpoint");
}

int db_events_scan_after(struct db *db, int64_t after_id, db_event_cb cb, void *arg)
{
	sqlite3_stmt *st = db_stmt_sql(db, SQL_SCAN_AFTER);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, after_id);
	return db_events_scan_rows(db, st, cb, arg);
}
