/*
 * notify.c - the [notify] command (see notify.h): documents queued and
 * coalesced by key, handed to one command at a time through a memfd as its
 * stdin, at most one start per interval.
 *
 * It must never block the engine, never put anything but the configured
 * argv on the command line, and never let log-derived text leave
 * unescaped (every document goes through jansson, ASCII only).
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emitters/emitters.h"
#include "reports/notify.h"

#include <jansson.h>

struct pending {
	char key[96];
	json_t *doc;
};

struct notify {
	struct strv argv;
	int64_t interval, timeout, max_pending;
	struct buf lookup; /* the lookup URL template (emit_dashboard_template) */
	struct pending *v;
	size_t n;
	uint64_t dropped_now; /* dropped since the last start */
	struct child ch;
	int64_t last_start_mono; /* INT64_MIN: never */
	struct notify_stats st;
};

struct notify *notify_new(const struct config *c)
{
	if (!c->notify.command.n)
		return NULL;
	struct notify *n = xcalloc(1, sizeof *n);
	for (size_t i = 0; i < c->notify.command.n; i++)
		strv_add(&n->argv, c->notify.command.v[i]);
	n->interval = c->notify.interval > 0 ? c->notify.interval : 1;
	n->timeout = c->notify.timeout;
	n->max_pending = c->notify.max_pending > 0 ? c->notify.max_pending : 1;
	n->ch.errfd = -1;
	n->last_start_mono = INT64_MIN;
	emit_dashboard_template(c, &n->lookup); /* the operator's own command: the dashboard's address */
	return n;
}

void notify_free(struct notify *n)
{
	if (!n)
		return;
	child_kill(&n->ch);
	child_free(&n->ch);
	if (n->n)
		log_warn("notify: %zu documents not delivered at shutdown", n->n);
	for (size_t i = 0; i < n->n; i++)
		json_decref(n->v[i].doc);
	free(n->v);
	strv_free(&n->argv);
	buf_free(&n->lookup);
	free(n);
}

static json_t *time_json(int64_t t)
{
	char s[TIME_STRLEN];
	time_format_rfc3339(t * 1000000, false, s);
	return json_string(s);
}

/* A JSON string of log-derived bytes (invalid UTF-8 shown as U+FFFD). */
static json_t *text_json(const char *s, size_t n)
{
	struct buf b = BUF_INIT;
	utf8_append_clean(&b, s, n);
	json_t *j = json_stringn(b.data ? b.data : "", b.len);
	buf_free(&b);
	return j ? j : json_string("");
}

/* Queue doc under key: a document pending with that key takes the new
 * fields (its event and "from" stay) and counts one more. Steals doc. */
static void enqueue(struct notify *n, const char *key, json_t *doc)
{
	for (size_t i = 0; i < n->n; i++) {
		if (strcmp(n->v[i].key, key) != 0)
			continue;
		json_t *old = n->v[i].doc;
		/* what it was first stays: a new decision upgraded before the
		 * start is one "decision" with its latest response */
		json_object_del(doc, "event");
		json_object_del(doc, "from");
		json_object_update(old, doc);
		json_object_set_new(old, "coalesced",
				    json_integer(json_integer_value(json_object_get(old, "coalesced")) + 1));
		json_decref(doc);
		return;
	}
	if ((int64_t)n->n >= n->max_pending) {
		n->dropped_now++;
		n->st.dropped++;
		json_decref(doc);
		return;
	}
	n->v = xrealloc(n->v, (n->n + 1) * sizeof *n->v);
	str_copy(n->v[n->n].key, sizeof n->v[n->n].key, key, strlen(key));
	json_object_set_new(doc, "coalesced", json_integer(1));
	n->v[n->n++].doc = doc;
}

void notify_decision(struct notify *n, const struct decision *d, enum notify_event ev, enum response from,
		     int64_t at)
{
	if (!n)
		return;
	char prefix[PREFIX_STRLEN], key[96];
	prefix_format(&d->prefix, prefix);
	snprintf(key, sizeof key, "d %s %lld", prefix, (long long)d->since);
	json_t *o = json_object();
	json_object_set_new(o, "event", json_string(ev == NOTIFY_UPGRADE ? "upgrade" : "decision"));
	json_object_set_new(o, "at", time_json(at));
	if (d->id > 0)
		json_object_set_new(o, "id", json_integer(d->id));
	json_object_set_new(o, "prefix", json_string(prefix));
	json_object_set_new(o, "scope", json_string(scope_name(d->scope)));
	json_object_set_new(o, "rule", text_json(d->rule, strnlen(d->rule, sizeof d->rule)));
	json_object_set_new(o, "response", json_string(response_name(d->response)));
	json_object_set_new(o, "from", ev == NOTIFY_UPGRADE ? json_string(response_name(from)) : json_null());
	json_object_set_new(o, "score", json_real(d->score));
	json_object_set_new(o, "reason", text_json(d->reason, strnlen(d->reason, sizeof d->reason)));
	json_object_set_new(o, "since", time_json(d->since));
	json_object_set_new(o, "until", time_json(d->until));
	json_object_set_new(o, "manual", json_boolean(d->manual));
	struct buf url = BUF_INIT;
	emit_url(&url, buf_str(&n->lookup), &d->prefix, false);
	json_object_set_new(o, "lookup", json_string(buf_str(&url)));
	buf_free(&url);
	enqueue(n, key, o);
}

void notify_breaker(struct notify *n, const char *output, size_t entries, size_t change, int64_t at)
{
	if (!n)
		return;
	char key[96];
	snprintf(key, sizeof key, "b %.80s", output);
	json_t *o = json_object();
	json_object_set_new(o, "event", json_string("breaker"));
	json_object_set_new(o, "at", time_json(at));
	json_object_set_new(o, "output", text_json(output, strlen(output)));
	json_object_set_new(o, "entries", json_integer((json_int_t)entries));
	json_object_set_new(o, "change", json_integer((json_int_t)change));
	enqueue(n, key, o);
}

/* Hand every pending document to a new run of the command. */
static void start(struct notify *n)
{
	struct buf lines = BUF_INIT;
	for (size_t i = 0; i < n->n; i++) {
		char *s = json_dumps(n->v[i].doc, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
		if (s) {
			buf_appends(&lines, s);
			buf_appendc(&lines, '\n');
			free(s);
		}
	}
	if (n->dropped_now) {
		char at[TIME_STRLEN];
		time_format_rfc3339(clock_now_us(), false, at);
		buf_printf(&lines, "{\"event\":\"dropped\",\"at\":\"%s\",\"count\":%llu}\n", at,
			   (unsigned long long)n->dropped_now);
	}
	int fd = memfd_create("mxwarden-notify", MFD_CLOEXEC);
	bool ok = fd >= 0;
	for (size_t off = 0; ok && off < lines.len;) {
		ssize_t k = write(fd, lines.data + off, lines.len - off);
		if (k <= 0)
			ok = false;
		else
			off += (size_t)k;
	}
	char err[256] = "";
	if (!ok)
		snprintf(err, sizeof err, "cannot hold the documents (memfd)");
	else if (lseek(fd, 0, SEEK_SET) < 0 ||
		 child_start(&n->ch, &n->argv, fd, n->timeout, err, sizeof err) < 0)
		ok = false;
	if (fd >= 0)
		close(fd);
	n->last_start_mono = clock_mono_us();
	n->st.runs++;
	if (!ok) {
		/* the documents are dropped: a command that cannot start would
		 * otherwise hold them (and the engine's memory) forever */
		log_error("notify: command %s; %zu documents dropped", err, n->n);
		n->st.failed++;
	} else {
		n->st.docs += n->n;
		log_debug("notify: %zu documents to '%s' (pid %d)", n->n, n->argv.v[0], n->ch.pid);
	}
	for (size_t i = 0; i < n->n; i++)
		json_decref(n->v[i].doc);
	n->n = 0;
	n->dropped_now = 0;
	buf_free(&lines);
}

void notify_tick(struct notify *n)
{
	if (!n)
		return;
	int status = 0;
	int rc = child_poll(&n->ch, &status);
	if (rc != 0) {
		struct buf msg = BUF_INIT;
		int64_t ms = (clock_mono_us() - n->ch.start_mono) / 1000;
		bool ok = rc > 0 && !n->ch.killed && WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (rc > 0)
			child_describe(&n->ch, status, ms, &msg);
		else
			buf_appends(&msg, "lost");
		if (ok) {
			log_debug("notify: command %s", buf_str(&msg));
		} else {
			log_warn("notify: command %s", buf_str(&msg));
			n->st.failed++;
		}
		buf_free(&msg);
	}
	if (n->ch.pid > 0 || (!n->n && !n->dropped_now))
		return;
	if (n->last_start_mono != INT64_MIN && clock_mono_us() - n->last_start_mono < n->interval * 1000000)
		return;
	start(n);
}

void notify_stats(const struct notify *n, struct notify_stats *st)
{
	memset(st, 0, sizeof *st);
	if (!n)
		return;
	*st = n->st;
	st->pending = n->n;
	st->running = n->ch.pid > 0;
}
