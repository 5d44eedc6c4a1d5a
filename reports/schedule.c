/*
 * schedule.c - the digest written at its slot (see schedule.h): the files,
 * the mail to [report] mail_to, the pruning, and the worker thread the
 * engine's tick starts.
 *
 * The worker reads with a read-only connection of its own; it writes the
 * database only for the outbox row of a mailed digest, on a short-lived
 * read-write connection (the engine's batches are short: it waits at most
 * SQLite's busy timeout). It must never touch the engine's connection.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reports/internal.h"
#include "reports/schedule.h"

int64_t report_digest_slot(const struct report_conf *r, int64_t now)
{
	if (r->digest_at < 0)
		return -1;
	int64_t day = now - ((now % 86400) + 86400) % 86400;
	int64_t slot = day + r->digest_at;
	return slot <= now ? slot : slot - 86400;
}

static void digest_paths(const struct config *c, int64_t slot, struct buf *txt, struct buf *html, char *key,
			 size_t keysz)
{
	char stamp[REPORT_STAMP_LEN];
	report_stamp(slot, stamp);
	buf_printf(txt, "%s/digest-%s.txt", c->report.dir, stamp);
	buf_printf(html, "%s/digest-%s.html", c->report.dir, stamp);
	snprintf(key, keysz, "digest-%s", stamp);
}

/* The digest mail: multipart/alternative, the text and the HTML page. */
static void digest_mail(const struct config *c, const struct buf *text, const struct buf *html, int64_t from,
			int64_t to, int64_t now, struct buf *out)
{
	struct buf t = BUF_INIT, h = BUF_INIT;
	mail_qp(&t, text->data ? text->data : "", text->len);
	mail_qp(&h, html->data ? html->data : "", html->len);
	char boundary[MAIL_BOUNDARY_LEN], date[MAIL_DATE_LEN], id[MAIL_UUID_LEN], f[TIME_STRLEN],
	    tt[TIME_STRLEN];
	do
		mail_boundary(boundary);
	while (mail_body_has(&t, boundary) || mail_body_has(&h, boundary));
	mail_date(now, date);
	mail_uuid(id);
	time_format_rfc3339(from * 1000000, false, f);
	time_format_rfc3339(to * 1000000, false, tt);
	struct buf v = BUF_INIT;
	mail_address_header(out, "From", c->abuse.reporter_org, c->abuse.reporter_contact);
	mail_address_header(out, "To", NULL, c->report.mail_to);
	buf_printf(&v, "mxwarden digest %s to %s", f, tt);
	mail_header(out, "Subject", buf_str(&v));
	mail_header(out, "Date", date);
	buf_reset(&v);
	buf_printf(&v, "<%s@%s>", id, c->abuse.reporter_domain);
	mail_header(out, "Message-ID", buf_str(&v));
	mail_header(out, "MIME-Version", "1.0");
	mail_header(out, "Auto-Submitted", "auto-generated");
	buf_printf(out, "Content-Type: multipart/alternative;\r\n\tboundary=\"%s\"\r\n\r\n", boundary);
	buf_printf(out,
		   "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
		   "quoted-printable\r\n\r\n",
		   boundary);
	buf_append(out, t.data, t.len);
	buf_printf(out,
		   "\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: "
		   "quoted-printable\r\n\r\n",
		   boundary);
	buf_append(out, h.data, h.len);
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	buf_free(&t);
	buf_free(&h);
	buf_free(&v);
}

/* Record the mail (once per slot: its key) and send it. */
static int mail_digest(const struct config *c, const char *db_path, const char *key, const struct buf *msg,
		       int64_t now, struct buf *err)
{
	char e[512];
	struct db *rw = db_open(db_path, DB_RW, e, sizeof e);
	if (!rw) {
		buf_printf(err, "%s", e);
		return -1;
	}
	int rc = 0;
	int has = db_outbox_has_key(rw, "digest", key);
	struct db_outbox_msg m = {.kind = "digest",
				  .key = key,
				  .rcpt = c->report.mail_to,
				  .subject = key,
				  .message = msg->data,
				  .len = msg->len,
				  .written_at = now};
	if (has < 0 || (has == 0 && db_outbox_add(rw, &m, NULL, 0) < 0)) {
		buf_printf(err, "cannot record the digest mail: %s", db_errmsg(rw));
		rc = -1;
	}
	if (rc == 0 && has == 0) {
		char helo[256];
		struct buf se = BUF_INIT;
		abuse_helo_name(&c->abuse, helo, sizeof helo);
		if (smtp_send(c->abuse.smtp, helo, c->abuse.smtp_timeout, c->abuse.reporter_contact,
			      c->report.mail_to, msg->data, msg->len, &se) == SMTP_OK) {
			db_outbox_sent(rw, m.id, clock_now());
			log_info("digest: %s mailed to %s", key, c->report.mail_to);
		} else {
			db_outbox_failed(rw, m.id, buf_str(&se));
			log_warn("digest: %s not mailed to %s: %s", key, c->report.mail_to, buf_str(&se));
		}
		buf_free(&se);
	}
	db_close(rw);
	return rc;
}

int report_digest_run(const struct config *c, const char *db_path, int64_t slot, int64_t now, bool *written,
		      struct buf *err)
{
	*written = false;
	struct buf txt = BUF_INIT, html = BUF_INIT;
	char key[64];
	digest_paths(c, slot, &txt, &html, key, sizeof key);
	struct stat sb;
	int rc = 0;
	if (stat(buf_str(&txt), &sb) != 0) {
		if (mkdir(c->report.dir, 0750) < 0 && errno != EEXIST) {
			buf_printf(err, "%s: %s", c->report.dir, strerror(errno));
			rc = -1;
		}
		char e[512];
		struct db *db = rc == 0 ? db_open(db_path, DB_RO, e, sizeof e) : NULL;
		if (rc == 0 && !db) {
			buf_printf(err, "%s", e);
			rc = -1;
		}
		json_t *r =
		    db ? report_digest_json(db, slot - 86400, slot, now, (int)c->report.top, err) : NULL;
		json_t *unreached = r ? abuse_uncontacted_json(c, db, slot - 86400, slot, now) : NULL;
		if (db && (!r || !unreached)) {
			if (r)
				buf_printf(err, "cannot read the decisions: %s", db_errmsg(db));
			rc = -1;
		}
		if (r && unreached && c->abuse.used)
			json_object_set(r, "abuse_no_contact", unreached);
		json_decref(unreached);
		db_close(db);
		struct buf t = BUF_INIT, h = BUF_INIT;
		if (rc == 0 &&
		    (report_render(r, REPORT_HTML, &h) < 0 || report_render(r, REPORT_TEXT, &t) < 0)) {
			buf_printf(err, "cannot render the digest");
			rc = -1;
		}
		/* the text file last: its presence says the slot is done */
		if (rc == 0 && (report_write_file(buf_str(&html), h.data, h.len, err) < 0 ||
				report_write_file(buf_str(&txt), t.data, t.len, err) < 0))
			rc = -1;
		if (rc == 0) {
			*written = true;
			log_info("digest: wrote %s and %s", buf_str(&txt), buf_str(&html));
		}
		if (rc == 0 && c->report.mail_to) {
			struct buf msg = BUF_INIT;
			digest_mail(c, &t, &h, slot - 86400, slot, now, &msg);
			rc = mail_digest(c, db_path, key, &msg, now, err);
			buf_free(&msg);
		}
		json_decref(r);
		buf_free(&t);
		buf_free(&h);
	}
	if (rc == 0 && c->report.keep > 0) {
		int k = report_prune_dir(c->report.dir, "digest", now - c->report.keep);
		if (k > 0)
			log_info("digest: removed %d files older than [report] keep", k);
	}
	buf_free(&txt);
	buf_free(&html);
	return rc;
}

/* ------------------------------------------------------------ the worker */

struct report_sched {
	struct config c; /* the [abuse] and [report] settings, copied */
	char *db_path;
	int64_t done_slot; /* the slot known done, -1 = none yet */
	int64_t retry_at;  /* after a failure, not before this */
	pthread_t th;
	bool running;
	volatile bool finished; /* set by the worker, read by the tick */
	int64_t slot, now;	/* the worker's job */
	int rc;
	bool written;
	struct buf err;
	pthread_mutex_t mu;
};

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct report_sched *report_sched_new(const struct config *c, const char *db_path)
{
	if (c->report.digest_at < 0)
		return NULL;
	struct report_sched *s = xcalloc(1, sizeof *s);
	config_defaults(&s->c);
	free(s->c.report.digest);
	free(s->c.report.dir);
	s->c.report = c->report;
	s->c.report.digest = dup_or_null(c->report.digest);
	s->c.report.dir = dup_or_null(c->report.dir);
	s->c.report.mail_to = dup_or_null(c->report.mail_to);
	struct abuse_conf *a = &s->c.abuse;
	*a = c->abuse;
	memset(&a->rdap_bootstrap, 0, sizeof a->rdap_bootstrap); /* the digest asks no network */
	a->contacts = dup_or_null(c->abuse.contacts);
	a->reporter_org = dup_or_null(c->abuse.reporter_org);
	a->reporter_contact = dup_or_null(c->abuse.reporter_contact);
	a->reporter_domain = dup_or_null(c->abuse.reporter_domain);
	a->smtp = dup_or_null(c->abuse.smtp);
	s->db_path = xstrdup(db_path);
	s->done_slot = -1;
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

static void *worker(void *arg)
{
	struct report_sched *s = arg;
	struct buf err = BUF_INIT;
	bool written = false;
	int rc = report_digest_run(&s->c, s->db_path, s->slot, s->now, &written, &err);
	pthread_mutex_lock(&s->mu);
	s->rc = rc;
	s->written = written;
	buf_reset(&s->err);
	buf_append(&s->err, err.data ? err.data : "", err.len);
	s->finished = true;
	pthread_mutex_unlock(&s->mu);
	buf_free(&err);
	return NULL;
}

void report_sched_tick(struct report_sched *s, int64_t now)
{
	if (!s)
		return;
	if (s->running) {
		pthread_mutex_lock(&s->mu);
		bool fin = s->finished;
		pthread_mutex_unlock(&s->mu);
		if (!fin)
			return;
		pthread_join(s->th, NULL);
		s->running = false;
		if (s->rc == 0)
			s->done_slot = s->slot;
		else
			log_error("digest: %s (tried again in a minute)", buf_str(&s->err));
		s->retry_at = s->rc == 0 ? 0 : now + 60;
		return;
	}
	int64_t slot = report_digest_slot(&s->c.report, now);
	if (slot < 0 || slot == s->done_slot || now < s->retry_at)
		return;
	s->slot = slot;
	s->now = now;
	s->finished = false;
	if (pthread_create(&s->th, NULL, worker, s) != 0) {
		log_error("digest: cannot start the worker thread");
		s->retry_at = now + 60;
		return;
	}
	s->running = true;
}

bool report_sched_busy(const struct report_sched *s)
{
	return s && s->running;
}

void report_sched_free(struct report_sched *s)
{
	if (!s)
		return;
	if (s->running)
		pthread_join(s->th, NULL);
	pthread_mutex_destroy(&s->mu);
	buf_free(&s->err);
	free(s->db_path);
	config_free(&s->c);
	free(s);
}
