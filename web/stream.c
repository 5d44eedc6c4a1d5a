/*
 * stream.c - the Server-Sent Events endpoint (/api/v1/stream) and the hub
 * that feeds it: one thread polls the database once a second and appends
 * messages to a small ring ("tick": per-second counters; "decision": each
 * new decision); every open stream copies the messages it has not sent yet
 * and is otherwise suspended, so an idle stream costs no worker thread.
 *
 * Bounds: at most WEB_STREAMS_MAX streams (more get 503); a stream that
 * falls more than HUB_RING messages behind skips the oldest ones. It must
 * never touch the engine's state: it reads the database like any client.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "web/web_internal.h"

#define HUB_RING	64
#define WEB_STREAMS_MAX 64
#define HUB_NEW_MAX	50 /* decisions fetched per tick */

struct web_stream {
	struct web_hub *hub;
	struct MHD_Connection *conn;
	uint64_t seq; /* the next message to send */
	bool suspended;
	struct buf pending; /* bytes taken from the ring, not yet given to MHD */
	size_t off;
	struct web_stream *next, *prev;
};

struct web_hub {
	struct web *w;
	pthread_t th;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct buf ring[HUB_RING];
	uint64_t seq; /* messages made so far; ring[i % HUB_RING] holds message i */
	struct web_stream *streams;
	unsigned nstreams;
	/* the poller's own state */
	struct db *db;
	bool have_prev;
	int64_t prev_lines, prev_events, prev_rejects, prev_unparsed;
	int64_t last_decision;
};

/* Append one message (already in SSE framing) to the ring. Caller holds mu. */
static void hub_push_locked(struct web_hub *h, const char *msg, size_t n)
{
	struct buf *b = &h->ring[h->seq % HUB_RING];
	buf_reset(b);
	buf_append(b, msg, n);
	h->seq++;
}

static void hub_push_event(struct web_hub *h, const char *event, json_t *data)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "event: %s\ndata: ", event);
	if (web_json_dump(data, &b) < 0) {
		buf_free(&b);
		return;
	}
	/* web_json_dump() ends with one newline; SSE ends a message with a blank line */
	buf_appendc(&b, '\n');
	pthread_mutex_lock(&h->mu);
	hub_push_locked(h, b.data, b.len);
	pthread_mutex_unlock(&h->mu);
	buf_free(&b);
}

/* Resume every suspended stream so that it sends what is new (or sees
 * stop). A resume that races with the stream's own suspend is lost at
 * worst for one second: the next tick resumes it again. */
static void hub_wake(struct web_hub *h)
{
	struct MHD_Connection *conns[WEB_STREAMS_MAX];
	size_t n = 0;
	pthread_mutex_lock(&h->mu);
	for (struct web_stream *s = h->streams; s && n < WEB_STREAMS_MAX; s = s->next)
		if (s->suspended) {
			s->suspended = false;
			conns[n++] = s->conn;
		}
	pthread_mutex_unlock(&h->mu);
	/* A suspended connection cannot be closed by MHD, so these stay valid
	 * until resumed. */
	for (size_t i = 0; i < n; i++)
		MHD_resume_connection(conns[i]);
}

static int64_t json_int_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static int64_t json_sum(json_t *o)
{
	const char *k;
	json_t *v;
	int64_t t = 0;
	json_object_foreach(o, k, v)
	{
		if (json_is_integer(v))
			t += (int64_t)json_integer_value(v);
	}
	return t;
}

/* One poll of the database: per-second counters and new decisions. */
static void hub_poll(struct web_hub *h)
{
	char err[256];
	if (!h->db) {
		h->db = db_open(h->w->db_path, DB_RO, err, sizeof err);
		if (!h->db) {
			static const char hb[] = ": waiting for the database\n\n";
			pthread_mutex_lock(&h->mu);
			hub_push_locked(h, hb, sizeof hb - 1);
			pthread_mutex_unlock(&h->mu);
			return;
		}
	}
	int64_t now = clock_now();
	json_t *st = db_stats_json(h->db, now);
	if (!st) {
		log_warn("web: stream: %s", db_errmsg(h->db));
		db_close(h->db);
		h->db = NULL;
		h->have_prev = false;
		return;
	}
	json_t *kinds = json_object_get(st, "events");
	int64_t lines = json_int_at(st, "lines_read");
	int64_t events = json_sum(kinds);
	int64_t rejects = json_int_at(kinds, "reject");
	int64_t unparsed = json_sum(json_object_get(st, "unparsed"));
	json_t *tick = json_object();
	json_object_set_new(tick, "now", json_integer(now));
	if (h->have_prev) {
		json_object_set_new(tick, "lines", json_integer(lines - h->prev_lines));
		json_object_set_new(tick, "events", json_integer(events - h->prev_events));
		json_object_set_new(tick, "rejects", json_integer(rejects - h->prev_rejects));
		json_object_set_new(tick, "unparsed", json_integer(unparsed - h->prev_unparsed));
	}
	json_object_set_new(tick, "lines_read", json_integer(lines));
	json_object_set_new(tick, "decisions_active", json_incref(json_object_get(st, "decisions_active")));
	json_decref(st);

	/* New decisions: the newest page, those with an id above the last seen. */
	json_t *blocks = db_blocks_json(h->db, now, false, HUB_NEW_MAX, NULL);
	json_t *items = json_object_get(blocks, "items");
	int64_t maxid = h->last_decision;
	size_t n = json_array_size(items);
	for (size_t i = n; i-- > 0;) { /* oldest first */
		json_t *d = json_array_get(items, i);
		int64_t id = json_int_at(d, "id");
		if (id > maxid)
			maxid = id;
		if (h->have_prev && id > h->last_decision)
			hub_push_event(h, "decision", d);
	}
	json_decref(blocks);
	h->last_decision = maxid;
	hub_push_event(h, "tick", tick);
	json_decref(tick);
	h->prev_lines = lines;
	h->prev_events = events;
	h->prev_rejects = rejects;
	h->prev_unparsed = unparsed;
	h->have_prev = true;
}

static void *hub_main(void *arg)
{
	struct web_hub *h = arg;
	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &ts) != ETIMEDOUT)
			;
		if (h->stop)
			break;
		unsigned n = h->nstreams;
		pthread_mutex_unlock(&h->mu);
		if (n)
			hub_poll(h);
		else
			h->have_prev = false; /* nobody listens: no baseline to keep */
		hub_wake(h);
		pthread_mutex_lock(&h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	db_close(h->db);
	h->db = NULL;
	return NULL;
}

struct web_hub *web_hub_new(struct web *w, struct buf *err)
{
	struct web_hub *h = xcalloc(1, sizeof *h);
	h->w = w;
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cv, &ca);
	pthread_condattr_destroy(&ca);
	int rc = pthread_create(&h->th, NULL, hub_main, h);
	if (rc) {
		buf_printf(err, "web: cannot start the stream thread: %s", strerror(rc));
		web_hub_free(h);
		return NULL;
	}
	h->started = true;
	return h;
}

void web_hub_stop(struct web_hub *h)
{
	if (!h || !h->started)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->th, NULL);
	h->started = false;
	hub_wake(h);
}

void web_hub_free(struct web_hub *h)
{
	if (!h)
		return;
	web_hub_stop(h);
	for (size_t i = 0; i < HUB_RING; i++)
		buf_free(&h->ring[i]);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* ----------------------------------------------------------- one stream */

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct web_stream *s = cls;
	struct web_hub *h = s->hub;
	pthread_mutex_lock(&h->mu);
	if (s->off >= s->pending.len) {
		buf_reset(&s->pending);
		s->off = 0;
		if (h->stop) {
			pthread_mutex_unlock(&h->mu);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		if (h->seq > s->seq + HUB_RING)
			s->seq = h->seq - HUB_RING; /* too slow: skip the oldest */
		for (; s->seq < h->seq; s->seq++) {
			const struct buf *m = &h->ring[s->seq % HUB_RING];
			buf_append(&s->pending, m->data ? m->data : "", m->len);
		}
	}
	if (s->off < s->pending.len) {
		size_t n = MXW_MIN(max, s->pending.len - s->off);
		memcpy(out, s->pending.data + s->off, n);
		s->off += n;
		pthread_mutex_unlock(&h->mu);
		return (ssize_t)n;
	}
	s->suspended = true;
	pthread_mutex_unlock(&h->mu);
	MHD_suspend_connection(s->conn);
	return 0;
}

static void stream_free(void *cls)
{
	struct web_stream *s = cls;
	struct web_hub *h = s->hub;
	pthread_mutex_lock(&h->mu);
	if (s->prev)
		s->prev->next = s->next;
	else
		h->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	h->nstreams--;
	pthread_mutex_unlock(&h->mu);
	buf_free(&s->pending);
	free(s);
}

enum MHD_Result web_stream(struct web_req *r)
{
	struct web_hub *h = r->w->hub;
	struct web_stream *s = xcalloc(1, sizeof *s);
	s->hub = h;
	s->conn = r->conn;
	buf_appends(&s->pending, "retry: 2000\n: mxwarden live stream\n\n");
	pthread_mutex_lock(&h->mu);
	if (h->nstreams >= WEB_STREAMS_MAX || h->stop) {
		pthread_mutex_unlock(&h->mu);
		buf_free(&s->pending);
		free(s);
		return web_send_error(r, 503, "too many live streams (at most %d)", WEB_STREAMS_MAX);
	}
	s->seq = h->seq;
	s->next = h->streams;
	if (h->streams)
		h->streams->prev = s;
	h->streams = s;
	h->nstreams++;
	pthread_mutex_unlock(&h->mu);
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
	if (!resp) {
		stream_free(s);
		return MHD_NO;
	}
	web_headers_add(resp);
	MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

unsigned web_hub_streams(struct web_hub *h)
{
	pthread_mutex_lock(&h->mu);
	unsigned n = h->nstreams;
	pthread_mutex_unlock(&h->mu);
	return n;
}
