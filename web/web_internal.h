/*
 * web_internal.h (internal to web/) - what the files of web/ share: the
 * server struct, the per-request context, the response helpers that put the
 * security headers on every answer, and the pool of read-only database
 * connections.
 */
#ifndef MXWARDEN_WEB_INTERNAL_H
#define MXWARDEN_WEB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>
#include <microhttpd.h>

#include "web/web.h"

struct db;
struct aggregator;
struct web_hub;
struct web_cache;
struct cache_slot;

#define WEB_BODY_MAX	(64 * 1024) /* a POST body larger than this gets 413 */
#define WEB_ARGS_MAX	64	    /* a query with more parameters gets 414 */
#define WEB_URI_MAX	(8 * 1024)  /* a longer URI gets 414 */
#define WEB_HEADERS_MAX (32 * 1024) /* more request header bytes get 431 */
/* MHD's per-connection memory: the request line must fit in its read
 * buffer (half of it) for the 414 above to be our JSON, not MHD's HTML.
 * Pages are touched only as far as a request needs them. */
#define WEB_CONN_MEMORY (256 * 1024)
#define WEB_PAGE_MAX	1000 /* the largest limit= a paginated endpoint accepts */
#define WEB_TOKEN_MIN	16
#define WEB_TOKEN_MAX	256

struct web {
	const struct config *conf;
	char *db_path;
	struct MHD_Daemon *mhd;
	unsigned port;
	bool loopback;		      /* bound to a loopback address: Host must name it */
	char host[IPADDR_STRLEN + 3]; /* the bound address as a Host header writes it */
	char *token;		      /* NULL: mutating endpoints refuse (403) */
	size_t token_len;
	pthread_mutex_t pool_mu;
	struct db **pool; /* idle read-only connections */
	size_t npool, cappool;
	struct web_hub *hub;
	struct web_cache *cache;
	struct aggregator *agg; /* for aggregator_blockable() only: read-only after start */
	atomic_ulong requests;
	atomic_ulong responses_4xx;
	atomic_ulong responses_5xx;
	pthread_mutex_t health_mu;  /* guards the fields below: what the engine says */
	char ingest_error[256];	    /* "" = batches commit */
	int64_t ingest_error_since; /* UTC seconds */
	struct buf outputs;	    /* the outputs' state for /metrics (web_set_outputs) */
	struct buf status_json;	    /* ... for the status strip (web_set_status), "" = none */
	/* conns.c: the open connections and who may open one more */
	pthread_mutex_t conns_mu;
	struct web_conn *conns;
	unsigned nconns, nevicting;
	unsigned conns_max, conns_per_ip;
	atomic_ulong conns_evicted; /* idle connections closed to make room */
	atomic_ulong conns_refused; /* connections refused: per-address cap, or nothing idle to close */
};

/* One request, from its first callback to its completion. */
struct web_req {
	struct web *w;
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	struct buf body;
	bool body_too_big;
	bool is_head;
	bool fresh;		       /* made by on_uri(), not yet seen by on_request() */
	bool uri_refused;	       /* too many query parameters or too long a URI */
	size_t nargs;		       /* query parameters counted in the raw URI */
	struct cache_slot *cache_slot; /* the cache entry this request fills, or NULL */
};

/*
 * Queue a response: status, Content-Type, body (copied unless mode is
 * MHD_RESPMEM_PERSISTENT or MHD_RESPMEM_MUST_FREE), an optional ETag and
 * Cache-Control, plus the security headers. Returns MHD's result.
 */
enum MHD_Result web_send(struct web_req *r, unsigned status, const char *type, const void *data, size_t len,
			 enum MHD_ResponseMemoryMode mode, const char *etag, const char *cache);
/* A standalone page (a report: data is taken and freed, text with its own
 * inline style) under a CSP that allows that style and nothing else. */
enum MHD_Result web_send_document(struct web_req *r, const char *type, char *data, size_t len);
/* Send v as JSON (v is stolen; NULL becomes a 500 error). The text escapes
 * <, >, & and every non-ASCII character, so it is inert in any HTML. */
enum MHD_Result web_send_json(struct web_req *r, unsigned status, json_t *v);
/* {"error": message}; message is printf-formatted and masked to printable
 * ASCII (it may quote a request parameter). */
enum MHD_Result web_send_error(struct web_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The security headers every response carries. */
void web_headers_add(struct MHD_Response *resp);
/* Render v as text for HTTP (compact, ASCII-only, <>& escaped) into out.
 * Returns 0, or -1 when v cannot be dumped. */
int web_json_dump(const json_t *v, struct buf *out);

/* A read-only connection from the pool (opened when the pool is empty), or
 * NULL with a message in err. Give it back with web_db_put(). */
struct db *web_db_get(struct web *w, char *err, size_t errsz);
void web_db_put(struct web *w, struct db *db);

/*
 * Percent-decode s in place (paths and query values) and return its new
 * length. A %00, an invalid escape, or an escape of a byte >= 0x80 (overlong
 * UTF-8 such as %c0%ae) leaves s undecoded, so it matches no route.
 */
size_t web_unescape(char *s);

/* The value of query parameter name, or NULL. */
const char *web_arg(struct web_req *r, const char *name);
/* 0 when every query parameter is one of allowed (NULL-terminated) and none
 * is repeated; else -1 with the offending name in bad (masked). */
int web_args_check(struct web_req *r, const char *const *allowed, char *bad, size_t badsz);

/* True when the Authorization header carries the configured token
 * (constant time). */
bool web_token_ok(struct web *w, struct web_req *r);

/*
 * conns.c: the connection limits (see its header comment). init before
 * MHD starts (max_conn at most, per_ip per address that is not loopback,
 * 0 = none), free after it stopped. accept and notify are MHD's accept
 * policy and connection callbacks (cls = w); busy marks a connection inside
 * a request (on_request's first call) or idle again (its completion).
 * WEB_CONNS_SLACK: connections beyond max_conn while the shut-down ones
 * close; MHD's own limit is set above it.
 */
#define WEB_CONNS_SLACK 32
void web_conns_init(struct web *w, unsigned max_conn, unsigned per_ip);
void web_conns_free(struct web *w);
enum MHD_Result web_conns_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
void web_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		      enum MHD_ConnectionNotificationCode toe);
void web_conns_busy(struct web *w, struct MHD_Connection *conn, bool busy);

/* cache.c: the micro-cache of GET answers (see its header comment). */
struct web_cache *web_cache_new(void);
void web_cache_free(struct web_cache *c);
/* 1 when a cached answer was appended to out (send it); 0 when the caller
 * must compute it (r->cache_slot is then set when the answer should be
 * stored: web_send_json() does that through web_cache_end()). */
int web_cache_begin(struct web_cache *c, struct web_req *r, struct buf *out);
/* Store (status 200) or drop the answer of r's slot; no-op without one. */
void web_cache_end(struct web_cache *c, struct web_req *r, unsigned status, const char *body, size_t len);
/* Forget every answer (after a manual block or unblock). */
void web_cache_clear(struct web_cache *c);
void web_cache_stats(struct web_cache *c, unsigned long *hits, unsigned long *misses);

/* api.c: the JSON API; path is what follows "/api/v1/". */
enum MHD_Result web_api(struct web_req *r, const char *path);
/* metrics.c: the Prometheus text. */
enum MHD_Result web_metrics(struct web_req *r);
/* stream.c: Server-Sent Events. */
struct web_hub *web_hub_new(struct web *w, struct buf *err);
void web_hub_stop(struct web_hub *h); /* before MHD_stop_daemon: ends every stream */
void web_hub_free(struct web_hub *h);
unsigned web_hub_streams(struct web_hub *h);
enum MHD_Result web_stream(struct web_req *r);

#endif
