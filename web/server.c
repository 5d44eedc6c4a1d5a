/*
 * server.c - the HTTP side of web/: starts libmicrohttpd on the configured
 * address with its thread pool and limits, decodes URLs strictly, routes
 * requests to the static assets, /healthz, /metrics, the SSE stream and the
 * JSON API, and puts the security headers on every response.
 *
 * It must never answer with CORS headers, serve a file that is not in the
 * asset table, accept a Host header that does not name the server when it
 * is bound to loopback (DNS rebinding), or let a request body grow past
 * WEB_BODY_MAX.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator/aggregator.h"
#include "db/db.h"
#include "web/assets.h"
#include "web/web_internal.h"

static const char CSP[] = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
			  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

static void headers_add(struct MHD_Response *resp, const char *csp)
{
	MHD_add_response_header(resp, "Content-Security-Policy", csp);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
}

void web_headers_add(struct MHD_Response *resp)
{
	headers_add(resp, CSP);
}

static void count_status(struct web *w, unsigned status)
{
	if (status >= 500)
		atomic_fetch_add(&w->responses_5xx, 1);
	else if (status >= 400)
		atomic_fetch_add(&w->responses_4xx, 1);
}

static enum MHD_Result send_csp(struct web_req *r, unsigned status, const char *type, const void *data,
				size_t len, enum MHD_ResponseMemoryMode mode, const char *etag,
				const char *cache, const char *csp)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, mode);
	if (!resp)
		return MHD_NO;
	headers_add(resp, csp);
	if (type)
		MHD_add_response_header(resp, "Content-Type", type);
	if (etag)
		MHD_add_response_header(resp, "ETag", etag);
	MHD_add_response_header(resp, "Cache-Control", cache ? cache : "no-store");
	count_status(r->w, status);
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result web_send(struct web_req *r, unsigned status, const char *type, const void *data, size_t len,
			 enum MHD_ResponseMemoryMode mode, const char *etag, const char *cache)
{
	return send_csp(r, status, type, data, len, mode, etag, cache, CSP);
}

enum MHD_Result web_send_document(struct web_req *r, const char *type, char *data, size_t len)
{
	/* a standalone page (a report): its own inline style, still no script,
	 * no frames, nothing loaded */
	return send_csp(
	    r, 200, type, data, len, MHD_RESPMEM_MUST_FREE, NULL, NULL,
	    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; frame-ancestors 'none'; "
	    "form-action 'none'; base-uri 'none'");
}

int web_json_dump(const json_t *v, struct buf *out)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
	if (!s)
		return -1;
	/* <, > and & only occur inside strings in JSON text: escaping them
	 * there keeps the text inert if a browser ever sniffs it as HTML. */
	for (const char *p = s; *p; p++) {
		switch (*p) {
		case '<': buf_appends(out, "\\u003c"); break;
		case '>': buf_appends(out, "\\u003e"); break;
		case '&': buf_appends(out, "\\u0026"); break;
		default: buf_appendc(out, *p);
		}
	}
	buf_appendc(out, '\n');
	free(s);
	return 0;
}

enum MHD_Result web_send_json(struct web_req *r, unsigned status, json_t *v)
{
	struct buf b = BUF_INIT;
	if (!v || web_json_dump(v, &b) < 0) {
		json_decref(v);
		buf_free(&b);
		static const char msg[] =
		    "{\"error\": \"internal error: the answer could not be rendered\"}\n";
		return web_send(r, 500, "application/json", msg, sizeof msg - 1, MHD_RESPMEM_PERSISTENT, NULL,
				NULL);
	}
	json_decref(v);
	web_cache_end(r->w->cache, r, status, b.data, b.len);
	return web_send(r, status, "application/json", b.data, b.len, MHD_RESPMEM_MUST_FREE, NULL, NULL);
}

enum MHD_Result web_send_error(struct web_req *r, unsigned status, const char *fmt, ...)
{
	struct buf raw = BUF_INIT, msg = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&raw, fmt, ap);
	va_end(ap);
	buf_append_printable(&msg, raw.data ? raw.data : "", raw.len);
	buf_free(&raw);
	json_t *o = json_object();
	json_object_set_new(o, "error", json_string(buf_str(&msg)));
	buf_free(&msg);
	return web_send_json(r, status, o);
}

/* --------------------------------------------------------- db connections */

struct db *web_db_get(struct web *w, char *err, size_t errsz)
{
	struct db *db = NULL;
	pthread_mutex_lock(&w->pool_mu);
	if (w->npool)
		db = w->pool[--w->npool];
	pthread_mutex_unlock(&w->pool_mu);
	if (db)
		return db;
	return db_open(w->db_path, DB_RO, err, errsz);
}

void web_db_put(struct web *w, struct db *db)
{
	if (!db)
		return;
	pthread_mutex_lock(&w->pool_mu);
	if (w->npool < w->cappool) {
		w->pool[w->npool++] = db;
		db = NULL;
	}
	pthread_mutex_unlock(&w->pool_mu);
	db_close(db); /* more connections than the pool keeps */
}

/* ------------------------------------------------------------- arguments */

const char *web_arg(struct web_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct args_check {
	const char *const *allowed;
	const char *seen[16];
	size_t nseen;
	const char *bad;
	const char *why;
};

static enum MHD_Result args_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct args_check *c = cls;
	bool ok = false;
	for (size_t i = 0; c->allowed[i]; i++)
		if (strcmp(key, c->allowed[i]) == 0)
			ok = true;
	if (!ok) {
		c->bad = key;
		c->why = "unknown parameter";
		return MHD_NO;
	}
	for (size_t i = 0; i < c->nseen; i++)
		if (strcmp(c->seen[i], key) == 0) {
			c->bad = key;
			c->why = "parameter given twice";
			return MHD_NO;
		}
	if (c->nseen < MXW_ARRAY_LEN(c->seen))
		c->seen[c->nseen++] = key;
	return MHD_YES;
}

int web_args_check(struct web_req *r, const char *const *allowed, char *bad, size_t badsz)
{
	struct args_check c = {.allowed = allowed};
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, args_iter, &c);
	if (!c.bad)
		return 0;
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s '", c.why);
	buf_append_printable(&b, c.bad, MXW_MIN(strlen(c.bad), 64));
	buf_appends(&b, "'");
	str_copy(bad, badsz, buf_str(&b), b.len);
	buf_free(&b);
	return -1;
}

/* ------------------------------------------------------------------ token */

bool web_token_ok(struct web *w, struct web_req *r)
{
	if (!w->token)
		return false;
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	const char *t = h + 7;
	while (*t == ' ')
		t++;
	size_t n = strlen(t);
	/* Constant time in the token: every byte of the expected token is
	 * compared whatever the given one holds; lengths are folded in. */
	volatile unsigned char diff = (unsigned char)(n != w->token_len);
	for (size_t i = 0; i < w->token_len; i++) {
		unsigned char g = i < n ? (unsigned char)t[i] : 0;
		diff |= (unsigned char)(g ^ (unsigned char)w->token[i]);
	}
	return diff == 0;
}

int web_token_read(const char *path, struct buf *token, struct buf *err)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		buf_printf(err, "web: token_file %s: %s", path, strerror(errno));
		return -1;
	}
	/* whoever reads the token can block and unblock any address */
	struct stat sb;
	if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & (S_IROTH | S_IWOTH))) {
		buf_printf(
		    err,
		    "web: token_file %s is readable by every user of this host (mode %04o): anyone could "
		    "block and unblock with it; run chmod 600 %s (or 640 with the service's group)",
		    path, (unsigned)(sb.st_mode & 07777), path);
		fclose(f);
		return -1;
	}
	char tmp[WEB_TOKEN_MAX + 4];
	size_t n = fread(tmp, 1, sizeof tmp - 1, f);
	fclose(f);
	while (n && (tmp[n - 1] == '\n' || tmp[n - 1] == '\r' || tmp[n - 1] == ' ' || tmp[n - 1] == '\t'))
		n--;
	tmp[n] = '\0';
	if (n < WEB_TOKEN_MIN || n > WEB_TOKEN_MAX) {
		buf_printf(err, "web: token_file %s: the token must be %d to %d bytes long", path,
			   WEB_TOKEN_MIN, WEB_TOKEN_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (tmp[i] <= ' ' || tmp[i] > '~') {
			buf_printf(err,
				   "web: token_file %s: the token must be printable ASCII without blanks",
				   path);
			return -1;
		}
	if (token)
		buf_append(token, tmp, n);
	return 0;
}

static int token_load(struct web *w, const char *path, struct buf *err)
{
	struct buf t = BUF_INIT;
	if (web_token_read(path, &t, err) < 0) {
		buf_free(&t);
		return -1;
	}
	w->token = xstrndup(t.data, t.len);
	w->token_len = t.len;
	buf_free(&t);
	return 0;
}

/* ------------------------------------------------------------ host check */

/* True when the Host header names this server: the bound address, or a
 * loopback name when bound to loopback. Servers bound to other addresses
 * accept any Host (they cannot know their DNS names). */
static bool host_ok(struct web *w, struct web_req *r)
{
	if (!w->loopback)
		return true;
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	if (!h)
		return false;
	static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
	char port[16];
	snprintf(port, sizeof port, ":%u", w->port);
	for (size_t i = 0; i <= MXW_ARRAY_LEN(names); i++) {
		const char *n = i < MXW_ARRAY_LEN(names) ? names[i] : w->host;
		size_t nl = strlen(n);
		if (strncasecmp(h, n, nl) == 0 && (h[nl] == '\0' || strcmp(h + nl, port) == 0))
			return true;
	}
	return false;
}

/* For mutating requests: an Origin header, when present, must be this
 * server ("http://" + Host). Browsers send Origin on every cross-site POST
 * and DELETE. */
static bool origin_ok(struct web_req *r)
{
	const char *o = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
	if (!o)
		return true;
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	if (!h || strncmp(o, "http://", 7) != 0)
		return false;
	return strcasecmp(o + 7, h) == 0;
}

/* ----------------------------------------------------------------- assets */

static enum MHD_Result send_asset(struct web_req *r, const char *name)
{
	struct web_asset a;
	void *owned = NULL;
	if (web_asset_get(r->w->conf->assets_dir, name, &a, &owned) < 0)
		return web_send_error(r, 404, "not found");
	const char *inm =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm && strcmp(inm, a.etag) == 0) {
		free(owned);
		return web_send(r, 304, NULL, "", 0, MHD_RESPMEM_PERSISTENT, a.etag, "no-cache");
	}
	return web_send(r, 200, a.type, a.data, a.len, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT,
			a.etag, "no-cache");
}

static enum MHD_Result send_health(struct web_req *r)
{
	char err[256] = "";
	struct db *db = web_db_get(r->w, err, sizeof err);
	json_t *o = json_object();
	char ingest[sizeof r->w->ingest_error];
	int64_t since;
	pthread_mutex_lock(&r->w->health_mu);
	memcpy(ingest, r->w->ingest_error, sizeof ingest);
	since = r->w->ingest_error_since;
	pthread_mutex_unlock(&r->w->health_mu);
	bool ok = db && !ingest[0];
	json_object_set_new(o, "status", json_string(ok ? "ok" : "degraded"));
	json_object_set_new(o, "database", json_boolean(db != NULL));
	if (!db)
		json_object_set_new(o, "error", json_string("the database cannot be opened"));
	if (ingest[0]) {
		/* our own message, but SQLite's text is not ours: keep it ASCII */
		struct buf b = BUF_INIT;
		char ts[TIME_STRLEN];
		buf_append_printable(&b, ingest, strlen(ingest));
		json_object_set_new(o, "ingest", json_string(buf_str(&b)));
		time_format_rfc3339(since * 1000000, false, ts);
		json_object_set_new(o, "since", json_string(ts));
		buf_free(&b);
	}
	web_db_put(r->w, db);
	return web_send_json(r, ok ? 200 : 503, o);
}

/* ---------------------------------------------------------------- routing */

static bool is_mutating(const char *m)
{
	return strcmp(m, "POST") == 0 || strcmp(m, "DELETE") == 0;
}

static enum MHD_Result route(struct web_req *r)
{
	const char *u = r->url;
	struct web *w = r->w;
	if (!host_ok(w, r))
		return web_send_error(r, 421, "the Host header does not name this server");
	if (is_mutating(r->method)) {
		if (!origin_ok(r))
			return web_send_error(r, 403, "cross-origin requests are refused");
		if (r->body_too_big)
			return web_send_error(r, 413, "the request body is larger than %d bytes",
					      WEB_BODY_MAX);
	}
	if (strncmp(u, "/api/v1/", 8) == 0)
		return web_api(r, u + 8);
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
		return web_send_error(r, 405, "method not allowed");
	if (strcmp(u, "/") == 0 || strcmp(u, "/index.html") == 0)
		return send_asset(r, "index.html");
	if (strncmp(u, "/lookup/", 8) == 0 && u[8])
		return send_asset(r, "lookup.html");
	if (strncmp(u, "/static/", 8) == 0 && u[8])
		return send_asset(r, u + 8);
	if (strcmp(u, "/healthz") == 0)
		return send_health(r);
	if (strcmp(u, "/metrics") == 0)
		return web_metrics(r);
	return web_send_error(r, 404, "not found");
}

/*
 * Called by MHD with the raw request line's URI before it parses the query
 * into its connection memory; what it returns is the request's *con_cls.
 * A query of thousands of parameters would exhaust that memory while MHD
 * parses it (and MHD 0.9.75 then stalls the connection until its timeout):
 * such a query is counted here and cut at the '?', so MHD parses nothing
 * and on_request() answers 414 with a JSON error; so is a URI longer than
 * WEB_URI_MAX, query or not. The URI is MHD's own writable read buffer,
 * which MHD itself cuts at '?' right after this call.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct web_req *r = xcalloc(1, sizeof *r);
	r->w = cls;
	r->conn = conn;
	r->fresh = true;
	char *q = strchr(uri, '?');
	if (q) {
		r->nargs = 1;
		for (const char *s = q + 1; *s; s++)
			r->nargs += *s == '&';
	}
	/* a long path is refused as a long query is: 414, whatever comes after */
	if (r->nargs > WEB_ARGS_MAX || strlen(uri) > WEB_URI_MAX) {
		r->uri_refused = true;
		if (q)
			q[1] = '\0';
	}
	return r;
}

static enum MHD_Result header_bytes(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	*(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct web *w = cls;
	struct web_req *r = *con_cls;
	if (!r) { /* on_uri() always runs first; kept for safety */
		r = on_uri(w, "", conn);
		*con_cls = r;
	}
	if (r->fresh) {
		r->fresh = false;
		web_conns_busy(w, conn, true); /* a whole request came: never taken for room */
		r->method = method;
		r->url = url;
		r->is_head = strcmp(method, "HEAD") == 0;
		atomic_fetch_add(&w->requests, 1);
		if (r->uri_refused)
			return web_send_error(r, 414,
					      "the URI is longer than %d bytes or its query has more than %d "
					      "parameters (%zu)",
					      WEB_URI_MAX, WEB_ARGS_MAX, r->nargs);
		size_t hbytes = 0;
		MHD_get_connection_values(conn, MHD_HEADER_KIND, header_bytes, &hbytes);
		if (hbytes > WEB_HEADERS_MAX) {
			r->uri_refused = true; /* discard any body */
			return web_send_error(r, 431, "the request headers are larger than %d bytes",
					      WEB_HEADERS_MAX);
		}
		const char *cl =
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > WEB_BODY_MAX) {
			r->body_too_big = true;
			return web_send_error(r, 413, "the request body is larger than %d bytes",
					      WEB_BODY_MAX);
		}
		return MHD_YES;
	}
	if (r->uri_refused) {
		*upload_data_size = 0; /* answered already: discard a body */
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (r->body.len + *upload_data_size > WEB_BODY_MAX)
			r->body_too_big = true;
		else
			buf_append(&r->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	return route(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct web_req *r = *con_cls;
	if (!r)
		return;
	web_conns_busy(r->w, conn, false);
	web_cache_end(r->w->cache, r, 0, NULL, 0); /* a request that ended without an answer */
	buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Percent-decoding for paths and query values. A %00 (which would cut the
 * string), an invalid escape or an escape of a byte >= 0x80 (overlong UTF-8
 * tricks such as %c0%ae) leaves the text undecoded, so that it matches no
 * route and no asset and gets 404 or a 400 from the parameter check.
 */
size_t web_unescape(char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++)
		if (s[i] == '%') {
			int hi = i + 2 < n + 1 ? hexval(s[i + 1]) : -1;
			int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0) || hi >= 8)
				return n;
		}
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			s[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = '\0';
	return o;
}

static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	return web_unescape(s);
}

/* ------------------------------------------------------------ start, stop */

static int listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sl, struct ipaddr *ip,
			unsigned *port)
{
	const char *colon;
	const char *h = s;
	size_t hl;
	if (*s == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -1;
		h = s + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
	}
	char *endp;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &endp, 10);
	if (errno || *endp || !colon[1] || p > 65535)
		return -1;
	if (ipaddr_parse(ip, h, hl) < 0)
		return -1;
	*port = (unsigned)p;
	memset(ss, 0, sizeof *ss);
	if (ip->family == IPADDR_V4) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)p);
		memcpy(&in->sin_addr, ip->a, 4);
		*sl = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		memcpy(&in6->sin6_addr, ip->a, 16);
		*sl = sizeof *in6;
	}
	return 0;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT, m = BUF_INIT;
	buf_vprintf(&b, fmt, ap);
	while (b.len && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	buf_append_printable(&m, buf_str(&b), b.len);
	log_debug("web: %s", buf_str(&m));
	buf_free(&b);
	buf_free(&m);
}

struct web *web_start(const struct config *conf, const char *db_path, struct buf *err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct ipaddr ip;
	unsigned port;
	if (!conf->listen || listen_parse(conf->listen, &ss, &sl, &ip, &port) < 0) {
		buf_printf(err, "web: listen: '%s' is not ADDRESS:PORT", conf->listen ? conf->listen : "");
		return NULL;
	}
	struct web *w = xcalloc(1, sizeof *w);
	w->conf = conf;
	w->db_path = xstrdup(db_path);
	w->loopback = ipaddr_is_loopback(&ip);
	char ipstr[IPADDR_STRLEN];
	ipaddr_format(&ip, ipstr);
	snprintf(w->host, sizeof w->host, ip.family == IPADDR_V6 ? "[%s]" : "%s", ipstr);
	pthread_mutex_init(&w->pool_mu, NULL);
	pthread_mutex_init(&w->health_mu, NULL);
	unsigned max_conn = conf->web_max_conn > 0 ? (unsigned)conf->web_max_conn : 256;
	unsigned per_ip = conf->web_per_ip_conn > 0 ? (unsigned)conf->web_per_ip_conn : 32;
	web_conns_init(w, max_conn, per_ip);
	unsigned threads = conf->web_threads > 0 && conf->web_threads <= 64 ? (unsigned)conf->web_threads : 4;
	w->cappool = threads + 2;
	w->pool = xcalloc(w->cappool, sizeof *w->pool);
	if (conf->token_file && token_load(w, conf->token_file, err) < 0)
		goto fail;
	w->cache = web_cache_new();
	w->agg = aggregator_new(conf);
	w->hub = web_hub_new(w, err);
	if (!w->hub)
		goto fail;

	unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (ip.family == IPADDR_V6)
		flags |= MHD_USE_IPv6;
	unsigned timeout = conf->web_timeout > 0 ? (unsigned)conf->web_timeout : 30;
	/* the limits are ours (conns.c); MHD's are set out of their way: it
	 * gives each pool thread its share of its limit */
	w->mhd = MHD_start_daemon(
	    flags, (uint16_t)port, web_conns_accept, w, on_request, w, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
	    (max_conn + WEB_CONNS_SLACK) * threads, MHD_OPTION_NOTIFY_CONNECTION, web_conns_notify, w,
	    MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)WEB_CONN_MEMORY, MHD_OPTION_URI_LOG_CALLBACK, on_uri, w, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, w, MHD_OPTION_UNESCAPE_CALLBACK, unescape, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
	    w, MHD_OPTION_END);
	if (!w->mhd) {
		/* MHD says only that it failed: bind once more to learn why */
		int e = 0, fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int one = 1;
		if (fd < 0)
			e = errno;
		else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
			 bind(fd, (struct sockaddr *)&ss, sl) < 0)
			e = errno;
		if (fd >= 0)
			close(fd);
		buf_appends(err, "web: ");
		if (e)
			bind_error_explain(err, conf->listen, port, e);
		else
			buf_printf(err, "cannot listen on %s (libmicrohttpd refused to start)", conf->listen);
		goto fail;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_BIND_PORT);
	w->port = di ? di->port : port;
	log_info("web: listening on http://%s:%u/", w->host, w->port);
	return w;
fail:
	web_stop(w);
	return NULL;
}

unsigned web_port(const struct web *w)
{
	return w->port;
}

void web_stop(struct web *w)
{
	if (!w)
		return;
	if (w->hub)
		web_hub_stop(w->hub);
	if (w->mhd)
		MHD_stop_daemon(w->mhd);
	web_hub_free(w->hub);
	aggregator_free(w->agg);
	web_cache_free(w->cache);
	for (size_t i = 0; i < w->npool; i++)
		db_close(w->pool[i]);
	free(w->pool);
	pthread_mutex_destroy(&w->pool_mu);
	pthread_mutex_destroy(&w->health_mu);
	web_conns_free(w);
	buf_free(&w->outputs);
	buf_free(&w->status_json);
	free(w->token);
	free(w->db_path);
	free(w);
}

void web_set_ingest_error(struct web *w, const char *msg)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->health_mu);
	if (!msg) {
		w->ingest_error[0] = '\0';
	} else {
		if (!w->ingest_error[0])
			w->ingest_error_since = clock_now();
		str_copy(w->ingest_error, sizeof w->ingest_error, msg,
			 strlen(msg)); /* a cut message is fine */
	}
	pthread_mutex_unlock(&w->health_mu);
}

void web_set_status(struct web *w, const char *json_text)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->health_mu);
	buf_reset(&w->status_json);
	if (json_text)
		buf_appends(&w->status_json, json_text);
	pthread_mutex_unlock(&w->health_mu);
}
