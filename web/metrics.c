/*
 * metrics.c - /metrics in the Prometheus text exposition format (0.0.4):
 * lines read, parse failures by reason, events by kind, category and code
 * class, active blocks by response and scope, decisions taken, ingest lag
 * and rate, database size, and the web server's own counters.
 *
 * Every number comes from the database (db_stats_json, db_summary_json,
 * db_timeseries_json, db_decisions_active), but the outputs' state, which
 * lives in the engine's emitters and is handed over as text
 * (web_set_outputs); label values are escaped as the format requires. It
 * must never compute a number the database already answers differently
 * elsewhere.
 */
#include <string.h>

#include "db/db.h"
#include "web/web_internal.h"

static void label_value(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_appends(b, "\\\\");
		else if (*s == '"')
			buf_appends(b, "\\\"");
		else if (*s == '\n')
			buf_appends(b, "\\n");
		else if ((unsigned char)*s >= ' ')
			buf_appendc(b, *s);
	}
}

static void head(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One line per member of o (an object of integers) with label=key. */
static void by_label(struct buf *b, const char *name, const char *label, json_t *o)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		if (!json_is_integer(v))
			continue;
		buf_printf(b, "%s{%s=\"", name, label);
		label_value(b, k);
		buf_printf(b, "\"} %lld\n", (long long)json_integer_value(v));
	}
}

static void number(struct buf *b, const char *name, json_t *v)
{
	if (json_is_integer(v))
		buf_printf(b, "%s %lld\n", name, (long long)json_integer_value(v));
	else if (json_is_real(v))
		buf_printf(b, "%s %.6g\n", name, json_real_value(v));
}

struct active_counts {
	int64_t n[RESP__COUNT][2];
};

static int active_cb(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct active_counts *c = arg;
	if ((unsigned)d->response < RESP__COUNT)
		c->n[d->response][d->scope == SCOPE_CLASS]++;
	return 0;
}

enum MHD_Result web_metrics(struct web_req *r)
{
	struct web *w = r->w;
	char err[256] = "";
	struct db *db = web_db_get(w, err, sizeof err);
	if (!db)
		return web_send_error(r, 503, "the database is not available: %s", err);
	int64_t now = clock_now();
	json_t *st = db_stats_json(db, now);
	json_t *sum = st ? db_summary_json(db, now) : NULL;
	int64_t to = (now / 60 + 1) * 60;
	json_t *codes = sum ? db_timeseries_json(db, "codes", to - 3600, to, 3600) : NULL;
	struct active_counts ac = {0};
	int arc = sum ? db_decisions_active(db, now, active_cb, &ac) : -1;
	if (!st || !sum || !codes || arc < 0) {
		char msg[256];
		str_copy(msg, sizeof msg, db_errmsg(db), strlen(db_errmsg(db)));
		json_decref(st);
		json_decref(sum);
		json_decref(codes);
		web_db_put(w, db);
		return web_send_error(r, 500, "database error: %s", msg);
	}
	web_db_put(w, db);

	struct buf b = BUF_INIT;
	head(&b, "mxwarden_lines_read_total", "counter", "Log lines read from every source.");
	number(&b, "mxwarden_lines_read_total", json_object_get(st, "lines_read"));
	head(&b, "mxwarden_parse_failures_total", "counter", "Lines that gave no event, by reason.");
	by_label(&b, "mxwarden_parse_failures_total", "reason", json_object_get(st, "unparsed"));
	head(&b, "mxwarden_events_total", "counter", "Events by kind.");
	by_label(&b, "mxwarden_events_total", "kind", json_object_get(st, "events"));
	head(&b, "mxwarden_events_by_category_total", "counter", "Events by category.");
	by_label(&b, "mxwarden_events_by_category_total", "category", json_object_get(st, "categories"));

	head(&b, "mxwarden_attribution_total", "counter",
	     "Events logged without their client (Sendmail): attributed by queue id, or dropped "
	     "unattributed.");
	by_label(&b, "mxwarden_attribution_total", "result", json_object_get(st, "attribution"));

	head(&b, "mxwarden_events_last_hour", "gauge",
	     "Events of the last hour (log time) by reply-code class.");
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(codes, "series"), k, v)
	{
		int64_t total = 0;
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		{
			total += json_is_integer(x) ? (int64_t)json_integer_value(x) : 0;
		}
		buf_appends(&b, "mxwarden_events_last_hour{code_class=\"");
		label_value(&b, k);
		buf_printf(&b, "\"} %lld\n", (long long)total);
	}

	head(&b, "mxwarden_blocks_active", "gauge", "Decisions in force, by response and scope.");
	for (int i = 0; i < RESP__COUNT; i++)
		for (int s = 0; s < 2; s++)
			buf_printf(&b, "mxwarden_blocks_active{response=\"%s\",scope=\"%s\"} %lld\n",
				   response_name((enum response)i), scope_name(s ? SCOPE_CLASS : SCOPE_IP),
				   (long long)ac.n[i][s]);
	head(&b, "mxwarden_decisions_total", "counter", "Decisions taken (automatic and manual).");
	number(&b, "mxwarden_decisions_total", json_object_get(st, "decisions_total"));

	json_t *ing = json_object_get(sum, "ingest");
	head(&b, "mxwarden_ingest_lag_seconds", "gauge", "Seconds since a source was last read.");
	json_t *lag = json_object_get(ing, "lag_seconds");
	if (json_is_number(lag))
		number(&b, "mxwarden_ingest_lag_seconds", lag);
	head(&b, "mxwarden_ingest_lines_per_second", "gauge",
	     "Lines read per second over the last full minute.");
	number(&b, "mxwarden_ingest_lines_per_second", json_object_get(ing, "lines_per_sec"));
	head(&b, "mxwarden_ingest_files", "gauge", "Log sources known.");
	number(&b, "mxwarden_ingest_files", json_object_get(ing, "files"));
	head(&b, "mxwarden_database_bytes", "gauge", "Size of the database file and its WAL.");
	number(&b, "mxwarden_database_bytes", json_object_get(st, "db_bytes"));

	head(&b, "mxwarden_web_requests_total", "counter", "HTTP requests received.");
	buf_printf(&b, "mxwarden_web_requests_total %lu\n", (unsigned long)atomic_load(&w->requests));
	head(&b, "mxwarden_web_errors_total", "counter", "HTTP error responses by class.");
	buf_printf(&b, "mxwarden_web_errors_total{class=\"4xx\"} %lu\n",
		   (unsigned long)atomic_load(&w->responses_4xx));
	buf_printf(&b, "mxwarden_web_errors_total{class=\"5xx\"} %lu\n",
		   (unsigned long)atomic_load(&w->responses_5xx));
	head(&b, "mxwarden_web_connections_closed_idle_total", "counter",
	     "Idle or half-sent connections closed to make room at max_connections.");
	buf_printf(&b, "mxwarden_web_connections_closed_idle_total %lu\n",
		   (unsigned long)atomic_load(&w->conns_evicted));
	head(&b, "mxwarden_web_connections_refused_total", "counter",
	     "Connections refused: an address past per_ip_connections, or nothing idle to close.");
	buf_printf(&b, "mxwarden_web_connections_refused_total %lu\n",
		   (unsigned long)atomic_load(&w->conns_refused));
	unsigned long hits, misses;
	web_cache_stats(w->cache, &hits, &misses);
	head(&b, "mxwarden_web_cache_total", "counter",
	     "API answers served from the one-second cache, or computed.");
	buf_printf(&b, "mxwarden_web_cache_total{result=\"hit\"} %lu\n", hits);
	buf_printf(&b, "mxwarden_web_cache_total{result=\"miss\"} %lu\n", misses);
	head(&b, "mxwarden_web_streams", "gauge", "Open live (SSE) streams.");
	buf_printf(&b, "mxwarden_web_streams %u\n", web_hub_streams(w->hub));
	pthread_mutex_lock(&w->health_mu);
	if (w->outputs.len)
		buf_append(&b, w->outputs.data, w->outputs.len);
	pthread_mutex_unlock(&w->health_mu);
	json_decref(st);
	json_decref(sum);
	json_decref(codes);
	return web_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len,
			MHD_RESPMEM_MUST_FREE, NULL, NULL);
}

void web_set_outputs(struct web *w, const char *text)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->health_mu);
	buf_reset(&w->outputs);
	if (text)
		buf_appends(&w->outputs, text);
	pthread_mutex_unlock(&w->health_mu);
}
