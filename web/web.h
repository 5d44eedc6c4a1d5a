/*
 * web.h - the embedded HTTP server of mxwarden: the JSON API under
 * /api/v1/, the Prometheus /metrics, /healthz, the Server-Sent Events
 * stream and the dashboard (static/, embedded into the binary).
 *
 * Where it sits: above db/, aggregator/ and emitters/, below cli/. It maps
 * URLs to handlers that validate parameters, call the functions of the
 * modules that own the data, and render their answers with jansson.
 *
 * It must never: hold business rules (what is blocked and why is decided
 * elsewhere), touch the engine's state (it reads SQLite through its own
 * read-only connections only), write SQL, insert log-derived text into HTML
 * (the dashboard uses textContent; the server sends JSON), answer a
 * cross-origin request with CORS headers, or open a file whose name came
 * from a request.
 *
 * Threads: libmicrohttpd's internal thread pool (conf->web_threads) runs
 * the handlers; one more thread polls the database once a second for the
 * SSE stream. Every response carries the security headers (CSP, nosniff,
 * no-referrer, frame-ancestors 'none').
 */
#ifndef MXWARDEN_WEB_H
#define MXWARDEN_WEB_H

#include "base/base.h"

struct web;

/*
 * Start serving on conf->listen ("127.0.0.1:8025", "[::1]:8025",
 * "0.0.0.0:8025"). db_path is the SQLite database the engine writes; it may
 * not exist yet (data endpoints answer 503 until it does). conf must stay
 * valid until web_stop(). When conf->token_file is set it must be readable
 * and hold a token of 16 to 256 printable bytes; without it the mutating
 * endpoints answer 403.
 *
 * Returns the server, or NULL with a one-line message in err (port in use,
 * bad address, unreadable token file or assets directory).
 */
struct web *web_start(const struct config *conf, const char *db_path, struct buf *err);

/*
 * Read and check the API token file at path: it must not be readable or
 * writable by every user (the token blocks and unblocks), and must hold 16
 * to 256 printable bytes without blanks. Appends the token to token (may be
 * NULL: check only) and returns 0, or -1 with a one-line message naming the
 * file and the fix in err. web_start() and check-config use it.
 */
int web_token_read(const char *path, struct buf *token, struct buf *err);

/* The TCP port actually bound (useful with port 0 in tests). */
unsigned web_port(const struct web *w);

/* Stop serving: ends SSE streams, joins every thread, closes the database
 * connections and frees w. web_stop(NULL) is a no-op. */
void web_stop(struct web *w);

/*
 * The engine's word on ingest, for /healthz: msg = NULL when batches commit
 * again, else why they do not ("database or disk is full"). Thread-safe;
 * w = NULL is a no-op. While an error stands, /healthz answers 503
 * {"status": "degraded", "ingest": msg, "since": RFC 3339}.
 */
void web_set_ingest_error(struct web *w, const char *msg);

/*
 * The engine's word on its outputs (blocklists), for /metrics: their state
 * as Prometheus text (emitters_metrics: entries, last write, last reload
 * status, circuit breaker), copied; /metrics appends it as it stands. The
 * web threads never see the emitters themselves. Thread-safe; w = NULL is a
 * no-op; text = NULL clears it.
 */
void web_set_outputs(struct web *w, const char *text);

/*
 * The engine's word on its outputs, for the dashboard's status strip
 * (/api/v1/status): a JSON array as emitters_status_json() writes it
 * (name, format, path, entries, last write, last reload and its result,
 * breaker), copied. Thread-safe; w = NULL is a no-op; NULL clears it.
 */
void web_set_status(struct web *w, const char *json_text);

#endif
