/*
 * common.c - what the reports share: the database's JSON answers, writing
 * a file atomically, and pruning the files they wrote (by the time stamp in
 * their names, never another file).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reports/internal.h"

json_t *report_decision_brief(const json_t *d)
{
	static const char *const keep[] = {"prefix", "scope", "rule",	"response", "reason",
					   "since",  "until", "active", "manual"};
	json_t *x = json_object();
	for (size_t k = 0; k < MXW_ARRAY_LEN(keep); k++)
		json_object_set(x, keep[k], json_object_get(d, keep[k]));
	return x;
}

bool report_next_cursor(const json_t *page, char *cursor, size_t n)
{
	const char *next = json_string_value(json_object_get(page, "next"));
	size_t len = next ? strlen(next) : 0;
	if (!next || len >= n)
		return false;
	memcpy(cursor, next, len + 1);
	return true;
}

void report_stamp(int64_t t, char out[REPORT_STAMP_LEN])
{
	char s[TIME_STRLEN];
	time_format_rfc3339(t * 1000000, false, s); /* 2026-11-28T06:00:00Z */
	snprintf(out, REPORT_STAMP_LEN, "%.4s%.2s%.2sT%.2s%.2s%.2sZ", s, s + 5, s + 8, s + 11, s + 14,
		 s + 17);
}

int report_write_file(const char *path, const void *data, size_t len, struct buf *err)
{
	struct buf tmp = BUF_INIT;
	buf_printf(&tmp, "%s.tmp%d", path, (int)getpid());
	int fd = open(buf_str(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		buf_printf(err, "%s: %s", buf_str(&tmp), strerror(errno));
		buf_free(&tmp);
		return -1;
	}
	const char *p = data;
	size_t off = 0;
	int rc = 0;
	while (off < len) {
		ssize_t k = write(fd, p + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			buf_printf(err, "%s: %s", buf_str(&tmp), k < 0 ? strerror(errno) : "short write");
			rc = -1;
			break;
		}
		off += (size_t)k;
	}
	if (rc == 0 && fsync(fd) < 0) {
		buf_printf(err, "%s: fsync: %s", buf_str(&tmp), strerror(errno));
		rc = -1;
	}
	if (close(fd) < 0 && rc == 0) {
		buf_printf(err, "%s: %s", buf_str(&tmp), strerror(errno));
		rc = -1;
	}
	if (rc == 0 && rename(buf_str(&tmp), path) < 0) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	if (rc < 0)
		unlink(buf_str(&tmp));
	buf_free(&tmp);
	return rc;
}

/* The time of a stamp "YYYYMMDDTHHMM[SS]Z" at s; -1 when it is not one. */
static int64_t stamp_time(const char *s)
{
	int v[6] = {0};
	static const int width[] = {4, 2, 2, 2, 2, 2};
	const char *p = s;
	for (int i = 0; i < 6; i++) {
		if (i == 3 && *p++ != 'T')
			return -1;
		if (i == 5 && *p == 'Z')
			break; /* no seconds */
		for (int k = 0; k < width[i]; k++, p++) {
			if (*p < '0' || *p > '9')
				return -1;
			v[i] = v[i] * 10 + (*p - '0');
		}
	}
	if (*p != 'Z' || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 ||
	    v[5] > 60)
		return -1;
	return days_from_civil(v[0], (unsigned)v[1], (unsigned)v[2]) * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
}

int report_prune_dir(const char *dir, const char *prefix, int64_t before)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	size_t pl = strlen(prefix);
	int removed = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, pl) != 0 || e->d_name[pl] != '-')
			continue;
		int64_t t = stamp_time(e->d_name + pl + 1);
		if (t < 0 || t >= before)
			continue;
		struct buf p = BUF_INIT;
		buf_printf(&p, "%s/%s", dir, e->d_name);
		struct stat sb;
		if (lstat(buf_str(&p), &sb) == 0 && S_ISREG(sb.st_mode) && unlink(buf_str(&p)) == 0)
			removed++;
		buf_free(&p);
	}
	closedir(d);
	return removed;
}
