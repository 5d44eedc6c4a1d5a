/*
 * replay.c - `mxwarden run --replay FILE` (what ./scripts/run uses without
 * /var/log/mail.log): the sample log is appended to var/replay.log beside
 * the database at a steady rate, time stamps set to now, looping, with a
 * rename rotation at 8 MiB; the collector follows that file like any other.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/internal.h"

/* The sample log is replayed into var/replay.log at a steady rate with each
 * line's syslog time stamp ("Mmm dd hh:mm:ss") replaced by now, looping. */
static int replay_open(struct engine *e)
{
	struct replay *r = &e->replay;
	r->fd = open(r->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (r->fd < 0) {
		log_error("replay: %s: %s", r->path, strerror(errno));
		return -1;
	}
	struct stat sb;
	r->written = fstat(r->fd, &sb) == 0 ? (int64_t)sb.st_size : 0;
	return 0;
}

int eng_replay_init(struct engine *e)
{
	struct replay *r = &e->replay;
	FILE *f = fopen(e->o->replay, "rb");
	if (!f) {
		log_error("replay: %s: %s", e->o->replay, strerror(errno));
		return -1;
	}
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_append(&r->sample, tmp, n);
	fclose(f);
	if (r->sample.len == 0) {
		log_error("replay: %s is empty", e->o->replay);
		return -1;
	}
	if (r->sample.data[r->sample.len - 1] != '\n')
		buf_appendc(&r->sample, '\n');
	/* var/replay.log beside the database, as an absolute path (the source key) */
	char dir[PATH_MAX], real[PATH_MAX];
	str_copy(dir, sizeof dir, e->db_path, strlen(e->db_path));
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		str_copy(dir, sizeof dir, ".", 1);
	struct buf p = BUF_INIT;
	buf_printf(&p, "%s/replay.log", realpath(dir, real) ? real : dir);
	r->path = xstrdup(buf_str(&p));
	buf_free(&p);
	r->rate = e->o->replay_rate > 0 ? e->o->replay_rate : 50;
	r->last_us = clock_mono_us();
	if (replay_open(e) < 0)
		return -1;
	log_info("replaying %s into %s at %.0f lines/s, time stamps set to now", e->o->replay, r->path,
		 r->rate);
	return 0;
}

void eng_replay_tick(struct engine *e)
{
	struct replay *r = &e->replay;
	int64_t now_us = clock_mono_us();
	r->owed += r->rate * (double)(now_us - r->last_us) / 1e6;
	r->last_us = now_us;
	if (r->owed < 1)
		return;
	time_t t = (time_t)clock_now();
	struct tm tm;
	localtime_r(&t, &tm);
	char stamp[32];
	strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
	struct buf out = BUF_INIT;
	int n = (int)r->owed;
	r->owed -= n;
	for (int i = 0; i < n; i++) {
		const char *p = r->sample.data + r->at;
		const char *nl = memchr(p, '\n', r->sample.len - r->at);
		size_t len = (size_t)(nl - p);
		/* a classic syslog stamp is 15 bytes; other lines are copied as they are */
		if (len > 16 && p[3] == ' ' && p[6] == ' ' && p[9] == ':' && p[12] == ':' && p[15] == ' ') {
			buf_appends(&out, stamp);
			buf_append(&out, p + 15, len - 15 + 1);
		} else {
			buf_append(&out, p, len + 1);
		}
		r->at += len + 1;
		if (r->at >= r->sample.len) {
			r->at = 0;
			r->rounds++;
		}
	}
	if (r->written + (int64_t)out.len > REPLAY_ROTATE_BYTES) {
		/* rename rotation, exactly like logrotate's create mode */
		struct buf old = BUF_INIT;
		buf_printf(&old, "%s.1", r->path);
		close(r->fd);
		if (rename(r->path, buf_str(&old)) < 0)
			log_warn("replay: rotate: %s", strerror(errno));
		buf_free(&old);
		if (replay_open(e) < 0) {
			buf_free(&out);
			return;
		}
	}
	ssize_t w = write(r->fd, out.data, out.len);
	if (w > 0)
		r->written += w;
	buf_free(&out);
}

void eng_replay_free(struct engine *e)
{
	buf_free(&e->replay.sample);
	free(e->replay.path);
	e->replay.path = NULL;
	if (e->replay.fd >= 0)
		close(e->replay.fd);
	e->replay.fd = -1;
}
