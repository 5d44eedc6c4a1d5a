/*
 * state.c - saving the aggregator's in-memory state at a clean stop and
 * loading it at the next start, so that the windows, sessions and evidence
 * continue exactly (the database keeps only evidence events: connects and
 * accepted messages, which success-awareness and floods count, are not
 * stored).
 *
 * The file is a private, versioned binary image of the fixed-size records;
 * it is refused when the version, record sizes or [rules]/[classes]
 * configuration differ, and deleted once loaded. It must never be trusted
 * for anything but this process's own layout.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/internal.h"
#include "db/db.h"

#define STATE_MAGIC "MXWAGG05"

struct state_hdr {
	char magic[8];
	uint32_t sizes[6]; /* iprec, clsrec, sessrec, countrec, ev_stride, ev_n */
	uint64_t conf_hash;
	int64_t newest;
	int64_t clock; /* the judge's clock (aggregator.h, "Time") */
	uint64_t events;
	uint64_t ev_next;
};

static uint64_t conf_hash(const struct aggregator *a)
{
	/* config_defaults() zeroes the whole struct, padding included */
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p = (const unsigned char *)a->r;
	for (size_t i = 0; i < sizeof *a->r; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	p = (const unsigned char *)&a->c->classes;
	for (size_t i = 0; i < sizeof a->c->classes; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static void fill_hdr(const struct aggregator *a, struct state_hdr *h)
{
	memset(h, 0, sizeof *h);
	memcpy(h->magic, STATE_MAGIC, 8);
	h->sizes[0] = sizeof(struct iprec);
	h->sizes[1] = sizeof(struct clsrec);
	h->sizes[2] = sizeof(struct sessrec);
	h->sizes[3] = sizeof(struct countrec) + sizeof(struct seenrec) * 1000;
	h->sizes[4] = (uint32_t)a->ev_stride;
	h->sizes[5] = (uint32_t)a->ev_n;
	h->conf_hash = conf_hash(a);
}

void aggregator_set_state_path(struct aggregator *a, const char *path)
{
	free(a->state_path);
	a->state_path = path ? xstrdup(path) : NULL;
}

static int write_table(FILE *fp, const struct table *t)
{
	uint64_t n = t->n;
	if (fwrite(&n, sizeof n, 1, fp) != 1)
		return -1;
	for (size_t i = 0; i < t->nrec; i++) {
		const void *r = table_at(t, i);
		if (r && fwrite(r, t->esz, 1, fp) != 1)
			return -1;
	}
	return 0;
}

static int read_table(FILE *fp, struct table *t)
{
	uint64_t n;
	if (fread(&n, sizeof n, 1, fp) != 1)
		return -1;
	char *rec = xmalloc(t->esz);
	for (uint64_t i = 0; i < n; i++) {
		if (fread(rec, t->esz, 1, fp) != 1 || !rec[0]) {
			free(rec);
			return -1;
		}
		void *dst = table_get(t, rec, NULL);
		memcpy(dst, rec, t->esz);
	}
	free(rec);
	return 0;
}

/* The evidence slots in use: they are handed out in order, so only the
 * first ev_next (all of them once they wrapped) hold anything. */
static int write_slots(const struct aggregator *a, FILE *fp)
{
	uint64_t n = MXW_MIN((uint64_t)a->ev_next, (uint64_t)a->ev_n);
	if (fwrite(&n, sizeof n, 1, fp) != 1)
		return -1;
	return n == 0 || fwrite(a->ev, a->ev_stride, n, fp) == n ? 0 : -1;
}

static int read_slots(struct aggregator *a, FILE *fp)
{
	uint64_t n;
	if (fread(&n, sizeof n, 1, fp) != 1 || n > a->ev_n)
		return -1;
	return n == 0 || fread(a->ev, a->ev_stride, n, fp) == n ? 0 : -1;
}

/* The image: header, the tables, the evidence slots. */
static int state_write(const struct aggregator *a, FILE *fp)
{
	struct state_hdr h;
	fill_hdr(a, &h);
	h.newest = a->newest;
	h.clock = a->clock;
	h.events = a->events;
	h.ev_next = a->ev_next;
	if (fwrite(&h, sizeof h, 1, fp) != 1)
		return -1;
	for (size_t i = 0; i < AGG_TABLES; i++)
		if (write_table(fp, agg_table(a, i)) < 0)
			return -1;
	return write_slots(a, fp);
}

int aggregator_save(const struct aggregator *a)
{
	if (!a->state_path)
		return 0;
	struct buf tmp = BUF_INIT;
	buf_printf(&tmp, "%s.tmp", a->state_path);
	/* the state holds log text (evidence lines): never world-readable */
	int fd = open(buf_str(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd >= 0)
		(void)fchmod(fd, 0640); /* whatever the umask */
	FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!fp) {
		if (fd >= 0)
			close(fd);
		log_warn("aggregator: cannot write %s: %m", buf_str(&tmp));
		buf_free(&tmp);
		return -1;
	}
	int rc = state_write(a, fp);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
		rc = -1;
	if (fclose(fp) != 0)
		rc = -1;
	if (rc == 0 && rename(buf_str(&tmp), a->state_path) < 0)
		rc = -1;
	if (rc < 0) {
		log_warn("aggregator: cannot save the state to %s: %m", a->state_path);
		unlink(buf_str(&tmp));
	}
	buf_free(&tmp);
	return rc;
}

int aggregator_checkpoint_write(const struct aggregator *a, FILE *fp, int64_t *newest_us)
{
	*newest_us = a->newest;
	return state_write(a, fp);
}

int aggregator_checkpoint(const struct aggregator *a, char **data, size_t *len, int64_t *newest_us)
{
	*data = NULL;
	*len = 0;
	*newest_us = a->newest;
	FILE *fp = open_memstream(data, len);
	if (!fp) {
		log_warn("aggregator: checkpoint: %m");
		return -1;
	}
	int rc = state_write(a, fp);
	if (fclose(fp) != 0)
		rc = -1;
	if (rc < 0) {
		log_warn("aggregator: checkpoint: cannot serialise the state");
		free(*data);
		*data = NULL;
		*len = 0;
	}
	return rc;
}

/* Read an image from fp (what names it in messages). 0, or -1 with the
 * state left empty (a half-loaded state would be worse than none). */
static int state_read(struct aggregator *a, FILE *fp, const char *what)
{
	struct state_hdr h, want;
	fill_hdr(a, &want);
	if (fread(&h, sizeof h, 1, fp) != 1 || memcmp(h.magic, want.magic, 8) != 0 ||
	    memcmp(h.sizes, want.sizes, sizeof h.sizes) != 0) {
		log_warn("aggregator: %s is not a state of this version; replaying events instead", what);
		return -1;
	}
	if (h.conf_hash != want.conf_hash) {
		log_info("aggregator: [rules] changed since %s was saved; replaying events instead", what);
		return -1;
	}
	agg_session_forget_refs(a);
	bool ok = true;
	for (size_t i = 0; i < AGG_TABLES && ok; i++)
		ok = read_table(fp, agg_table(a, i)) == 0;
	if (!ok || read_slots(a, fp) < 0) {
		log_warn("aggregator: %s is truncated; replaying events instead", what);
		a->last_p = NULL;
		a->last_c = NULL;
		agg_tables_free(a);
		agg_tables_init(a);
		if (a->ev_n)
			memset(a->ev, 0, a->ev_n * a->ev_stride);
		return -1;
	}
	/* records are numbered anew when read: references to seen records
	 * (which are not checked when used) are looked up again */
	for (size_t i = 0; i < a->ips.nrec; i++) {
		struct iprec *p = table_at(&a->ips, i);
		if (p && (p->cls_ref & CLS_LONE))
			p->cls_ref = 0;
	}
	a->newest = h.newest;
	a->clock = h.clock;
	a->house = h.clock / a->house_period;
	a->sess_next = (uint32_t)((h.newest / 1000000 / 600 + 1) * 600);
	a->events = h.events;
	a->ev_next = h.ev_next;
	return 0;
}

int agg_state_load(struct aggregator *a)
{
	if (!a->state_path)
		return -1;
	FILE *fp = fopen(a->state_path, "rb");
	if (!fp)
		return -1;
	int rc = state_read(a, fp, a->state_path);
	fclose(fp);
	unlink(a->state_path); /* used once: a crash later must not reuse it */
	return rc;
}

int agg_state_load_mem(struct aggregator *a, const void *data, size_t len)
{
	if (!len)
		return -1;
	FILE *fp = fmemopen((void *)data, len, "rb");
	if (!fp)
		return -1;
	int rc = state_read(a, fp, "the checkpoint");
	fclose(fp);
	return rc;
}
