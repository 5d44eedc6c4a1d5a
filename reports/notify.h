/*
 * notify.h - [notify] command: a postmaster's hook (chat, ticket system,
 * webhook with curl) run on each new decision, upgrade and circuit-breaker
 * opening, with one JSON document per line on its stdin.
 *
 * The command is the configuration's argv, run without a shell in its own
 * process group (base/child.c), killed after [notify] timeout. At most one
 * runs at a time and at most one starts per [notify] interval: what happens
 * meanwhile waits, coalesced (a decision upgraded twice before the next
 * start is one document with its latest state and "coalesced": 2), at most
 * [notify] max_pending documents (beyond, counted and reported in one
 * {"event": "dropped"} document). Nothing here blocks: the documents reach
 * the command through a memfd, not a pipe it might not read.
 *
 * Documents (JSON Lines, ASCII, log-derived text JSON-escaped by jansson):
 *   {"event": "decision"|"upgrade", "at", "id" (when stored), "prefix",
 *    "scope", "rule", "response", "from" (upgrade: the response before),
 *    "score", "reason", "since", "until", "manual", "lookup" (URL),
 *    "coalesced"}
 *   {"event": "breaker", "at", "output", "entries", "change", "coalesced"}
 *   {"event": "dropped", "at", "count"}
 *
 * The engine's loop (not this module) calls notify_decision() after the
 * batch that stored a decision commits, notify_breaker() when an output's
 * breaker opens, and notify_tick() once a second (and on SIGCHLD).
 */
#ifndef MXWARDEN_REPORTS_NOTIFY_H
#define MXWARDEN_REPORTS_NOTIFY_H

#include "base/base.h"

enum notify_event { NOTIFY_DECISION, NOTIFY_UPGRADE };

struct notify;
/* NULL when [notify] command is empty. Copies what it needs from c (a
 * reload makes a new one; notify_free() the old). */
struct notify *notify_new(const struct config *c);
/* Stop: kill a running command (and wait for it); pending documents are
 * lost (logged). NULL is a no-op. */
void notify_free(struct notify *n);
/* A new decision (NOTIFY_DECISION) or an upgrade of one (from: the
 * response before), at `at` (UTC seconds). NULL n is a no-op. */
void notify_decision(struct notify *n, const struct decision *d, enum notify_event ev, enum response from,
		     int64_t at);
/* Output `output` opened its circuit breaker: it holds `entries` and the
 * held update would change `change` of them. */
void notify_breaker(struct notify *n, const char *output, size_t entries, size_t change, int64_t at);
/* Reap or kill a running command, start the next when due. Never blocks. */
void notify_tick(struct notify *n);

struct notify_stats {
	uint64_t runs, docs, failed, dropped;
	size_t pending;
	bool running;
};
void notify_stats(const struct notify *n, struct notify_stats *st);

#endif
