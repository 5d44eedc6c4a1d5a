/*
 * aggregator.h - judges senders by SMTP semantics: per-IP and per-class
 * sliding-window state fed by normalized events, the ten rules of [rules],
 * block decisions with escalating durations and graded responses, and the
 * explanation of every decision (rule, window, numbers against thresholds,
 * score, evidence lines).
 *
 * Where it sits: after parsers/ (it consumes struct event, base/base.h) and
 * before emitters/ (it produces struct decision). It reads db/ only to
 * rebuild its state on start (aggregator_restore) and to answer lookups;
 * the engine writes what it decides (aggregator_take_changes).
 *
 * It must never: know a log or blocklist format, write to the database on
 * its own, let log-derived text (HELO, addresses, user names) decide which
 * IP is blamed or appear unescaped in a reason, block an allowed or
 * protected address, or allocate per event in steady state.
 *
 * Threads: an aggregator is owned by one thread (the engine) and has no
 * locks. aggregator_lookup_json() is independent of any aggregator and may
 * be called from any thread with its own db connection.
 *
 * Rules (thresholds in struct rules_conf; a rule's count of 0 or its
 * switch off disables a rule). "mult" below is the success-aware multiplier:
 * success_factor when the IP had accepted mail (counted by recipients where
 * the MTA logs them) or a successful AUTH within success_window (a class:
 * a member that delivered and never misbehaved), else 1, divided by
 * no_rdns_weight when the client has no reverse DNS and by no_mx_weight
 * when its sender domain failed (rule 7, never a block on its own; not for
 * rules 4 and 5: a PTR record says nothing about relaying or passwords).
 *   1 retry     the same (client, sender, recipient) refused with 5xx again
 *               retry_count times within retry_window, in connections that
 *               delivered nothing (a list's post to live subscribers is a
 *               new message, not a retry). Per IP only.
 *   2 harvest   harvest_distinct distinct unknown recipients within
 *               harvest_window, or an unknown-recipient ratio of at least
 *               harvest_ratio over at least harvest_min_attempts RCPTs.
 *   3 backoff   the same (sender, recipient) refused 4xx again sooner than
 *               backoff_min_interval in another connection, backoff_count
 *               times within backoff_window. Per IP only.
 *   4 relay     relay_count "Relay access denied" within relay_window.
 *   5 auth      auth_count AUTH failures, or auth_users distinct user names,
 *               within auth_window; an address that authenticated or
 *               delivered before: only distinct user names (x success_factor).
 *   6 protocol  protocol_count protocol violations (pregreet, pipelining,
 *               non-SMTP command, too many errors, lost connection before
 *               MAIL) within protocol_window.
 *   8 policy    policy_count refusals by the MTA's own policy (DNSBL, deny
 *               lists, HELO, sender, content, size; not a refusal about the
 *               recipient's mailbox) within policy_window.
 *   9 flood     flood_ip_count connections per IP, flood_class_count per
 *               class (from at least class_min_members IPs) within
 *               flood_window; each MTA rate-limit warning counts
 *               flood_limit_weight connections.
 *  10 class     class_flagged_ips IPs blocked on their own in one class (x
 *               success_factor when other members deliver), or the class as
 *               a whole crossing rules 2-9 with at least class_min_members
 *               misbehaving members, each adding at most half a rule's count
 *               and nothing once blocked on its own, block the class;
 *               class_widen_classes blocked classes inside one
 *               ipv4_widen/ipv6_widen network block that network, never
 *               shorter than [safety] ipv4_floor/ipv6_floor.
 *  11 returned  returned_count connections refused by our own block (the
 *               refusal names mxwarden, or postscreen's access list refused
 *               a blocked prefix): the decision drops. Such refusals count
 *               for nothing else, and never for the class.
 * Independent evidence: on an IP every rule but 9 and 11 needs abuse
 * signals in min_sessions connections; harvest, relay and auth may decide
 * in one connection at twice their threshold (harvest also at its distinct
 * threshold with the ratio holding: a dictionary attack). The rules that
 * count refusals (1, 2, 8) wait for the end of a live connection, when it is
 * known whether it delivered mail. Reject-count rules (1, 2, 8) also
 * require, when the sender had accepted mail, more rejections than accepted
 * recipients: a big legitimate sender with a few stale addresses is never
 * blocked. Responses: the score's (severity x value/threshold against
 * score_defer/reject/drop), but a first offence that is not a clear attack
 * (9, 5, 4, 11) is at most reject, and a repeat offender that is refused is
 * dropped.
 *
 * Time. The judge's clock is log time: the newest event time seen, or a
 * later now handed to aggregator_tick() (the engine hands the wall clock
 * while following, once its sources are drained, so that an idle server
 * still ends blocks); it never goes back. Before an event at log time t is
 * judged the clock moves to t, and every decision whose until <= t ends
 * (AGG_CHANGE_ENDED, at = until, "expired"), so that a sender who comes
 * back after its decision ended gets a new one, escalated (durations grow
 * with the earlier decisions on the prefix), at the right log time. New
 * decisions, upgrades and their changes carry the clock's time (an event
 * older than the clock is decided at the clock, never in the past), as do
 * idle eviction and the expiry of sessions and held events. A record idle
 * for longer than idle_evict is forgotten when it is touched again even if
 * no sweep removed it yet, so the sweeps' timing changes no decision. The
 * clock is part of the saved state and the checkpoint: a restart judges on
 * from where it stopped, never by the wall clock of the restart. So the
 * same log gives the same decisions (prefix, rule, response, since, until,
 * changes) imported in one go, in parts, resumed after a crash or a stop,
 * or followed while it is written; manual decisions keep wall-clock times.
 */
#ifndef MXWARDEN_AGGREGATOR_H
#define MXWARDEN_AGGREGATOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/base.h"

struct aggregator;
struct db;
struct db_checkpoint;

/*
 * Create an aggregator for the configuration c, which must outlive it.
 * Builds the allow list (aggregator_allow_reload) and copies the
 * effective protected list (c->protected_networks: the built-in ranges and
 * the host's own addresses as config_validate built it). Never returns
 * NULL.
 */
struct aggregator *aggregator_new(const struct config *c);
void aggregator_free(struct aggregator *a); /* NULL is a no-op */

/*
 * (Re)build the allow list from c: [safety] allow, the files of allow_files
 * (read now; an unreadable file or bad line is a warning, the rest still
 * loads) and the networks the MTA trusts (c->trusted_nets, read by the
 * caller with mtaconf_read). Decisions already in force are not touched;
 * new ones on an allowed prefix are not made. Called by aggregator_new()
 * and on SIGHUP; c need not outlive the call.
 */
void aggregator_allow_reload(struct aggregator *a, const struct config *c);

/*
 * A feeder for aggregator_restore(): the checkpoint c was loaded; feed the
 * events of the lines read after it (aggregator_event(), in log order) and
 * return 1, or return 0 to have the evidence rows stored after it replayed
 * instead, -1 on error. The engine reads the checkpoint's file again from
 * its position (db_checkpoint.source_id/source_offset).
 */
typedef int (*agg_feed_fn)(void *arg, struct aggregator *a, const struct db_checkpoint *c);

/*
 * Rebuild state from the database on start, so that a restart changes no
 * decision. The in-memory state and the judge's clock come from, in order
 * of preference: the file of a clean stop (aggregator_set_state_path),
 * replaying the events stored after it; the database's checkpoint
 * (db_checkpoint_get), then the lines after it from feed (NULL: none),
 * else the evidence events stored after it (connects and accepted mail
 * after it are not stored, so they are lost: at most checkpoint_interval of
 * them); nothing, replaying the stored events of the longest window before
 * the newest one. The decisions in force when the state was saved come
 * first (db_decisions_in_force_at: the judge's clock, not now); a replay
 * decides as the run before the restart did and takes the decision it
 * stored (by prefix and since), ends and upgrades without a word, and at
 * the end the database's active set on the judge's clock is the one in
 * force. now (wall clock) is for the log only. Returns 0, or -1 when the
 * database could not be read (state is then empty but usable).
 */
int aggregator_restore(struct aggregator *a, struct db *db, int64_t now, agg_feed_fn feed, void *arg);

/*
 * Where a clean stop keeps the in-memory state (windows, sessions,
 * evidence): aggregator_save() writes it, aggregator_restore() loads it (and
 * deletes it, so that a later crash cannot reuse a stale state) instead of
 * replaying events. The database stores only evidence events, not every
 * connect and accepted message, so only the saved state makes a restart
 * change no decision; after a crash the replay is the fallback. Call before
 * aggregator_restore().
 */
void aggregator_set_state_path(struct aggregator *a, const char *path);
/* Save the state to the state path (temp file + rename). Returns 0, or -1
 * with a warning logged. A no-op returning 0 when no path is set. */
int aggregator_save(const struct aggregator *a);

/*
 * A checkpoint: the in-memory state (windows, sessions, evidence, escalation
 * counts; not the decisions, which the database holds) as an opaque image in
 * *data (malloc'd, *len bytes), and the newest event time it holds. The
 * engine stores it with db_checkpoint_put() in the transaction of a batch,
 * so that it matches the committed events and offsets exactly; after a
 * crash aggregator_restore() loads it and replays only the evidence rows
 * stored after it. Returns 0, or -1 (logged; nothing allocated).
 */
int aggregator_checkpoint(const struct aggregator *a, char **data, size_t *len, int64_t *newest_us);
/* The same image written to fp (a forked child writes a big state to its
 * file without a copy in memory). Logs nothing: 0, or -1. */
int aggregator_checkpoint_write(const struct aggregator *a, FILE *fp, int64_t *newest_us);

/*
 * Feed one event (the hot path). Events should come in time order; an event
 * older than the newest seen is still counted. May queue new decisions
 * (see aggregator_take_changes). No allocation in steady state.
 */
void aggregator_event(struct aggregator *a, const struct event *ev);

/*
 * aggregator_event() for an event stored as row (its db id, 0 = none). An
 * event without a client (a Sendmail "QID: <addr>... User unknown", logged
 * before the line naming the client) is held by (MTA, syslog host, queue
 * id) until a line of the same queue id names the client, then applied
 * with that client in log order; the row is then listed for
 * aggregator_take_attributions(). Held events that no line attributes
 * within an hour of log time (or when 4096 are held) are dropped and
 * counted (agg_stats.unattributed).
 */
void aggregator_event_row(struct aggregator *a, const struct event *ev, int64_t row);

/* A stored row whose client became known: the engine writes it (in the
 * batch of the line that named the client, db_event_attribute). A row < 0
 * says that -row held events were dropped without a client since the last
 * call (db_attribution_dropped). */
struct agg_attribution {
	int64_t row;
	struct ipaddr ip;
	struct prefix cls;
};
typedef void (*agg_attr_fn)(void *arg, const struct agg_attribution *x);
/* Hand every pending attribution to fn (NULL: forget them), in order.
 * Returns how many there were. Call it after each event, in its batch. */
size_t aggregator_take_attributions(struct aggregator *a, agg_attr_fn fn, void *arg);

/*
 * Move the judge's clock to now (UTC seconds) when it is later (see
 * "Time" above; an earlier now does nothing): decisions whose until has
 * come end (queued as ended), idle state is swept once a minute of the
 * clock.
 */
void aggregator_tick(struct aggregator *a, int64_t now);
/* The judge's clock (UTC seconds; 0 before the first event or tick). */
int64_t aggregator_clock(const struct aggregator *a);

/*
 * One change to hand to the database and the emitters. UPGRADED: an
 * automatic decision in force whose prefix kept misbehaving crossed a rule
 * whose score calls for a stronger response (observe < defer < reject <
 * drop): d carries the same id and since with the new response, score,
 * rule, reason and an until never earlier than before (the decision's
 * duration counted again from the upgrade, when that ends later). A
 * response is never lowered; manual decisions are never changed.
 */
enum agg_change_kind { AGG_CHANGE_NEW, AGG_CHANGE_ENDED, AGG_CHANGE_UPGRADED };
struct agg_change {
	enum agg_change_kind kind;
	const struct decision *d;  /* borrowed for the callback only */
	const char *evidence_json; /* NEW, UPGRADED: the explanation (JSON object text); ENDED: NULL */
	const char *end_reason;	   /* ENDED: "expired", "unblocked", ...; else NULL */
	enum response from;	   /* UPGRADED: the response before */
	int64_t at;		   /* when, on the judge's clock: NEW d->since, UPGRADED the
				    * upgrade, ENDED "expired" d->until */
};
/*
 * Called once per change, in order. For a NEW change the callback returns
 * the database id it stored the decision under (>0), or 0 when it stored
 * nothing (dry-run, tests); the aggregator keeps that id so that the ENDED
 * change carries it. For ENDED the return value is ignored.
 */
typedef int64_t (*agg_change_fn)(void *arg, const struct agg_change *ch);

/*
 * Hand every queued change to fn and forget them. Returns how many there
 * were. Call it after each batch, inside the batch's transaction.
 */
size_t aggregator_take_changes(struct aggregator *a, agg_change_fn fn, void *arg);

/*
 * The database id of a decision changed: the transaction that stored it
 * under old_id was rolled back and the engine stored it again as new_id.
 */
void aggregator_rebind(struct aggregator *a, int64_t old_id, int64_t new_id);

/*
 * The decisions in force (automatic and manual), for the emitters. *v points
 * into the aggregator and stays valid until the next call into it. In
 * dry-run mode ([rules] dry_run) automatic decisions are made, stored and
 * explained but left out of this list, so nothing reaches a blocklist.
 */
void aggregator_active(struct aggregator *a, const struct decision **v, size_t *n);

/*
 * Pick up decisions made or ended outside the engine (mxwarden block /
 * unblock write them to the database): the set of active decisions in db at
 * now replaces the aggregator's manual set, and an automatic decision no
 * longer active in db is dropped. Returns 1 when the active set changed
 * (re-run the emitters), 0 when not, -1 on a database error.
 */
int aggregator_sync(struct aggregator *a, struct db *db, int64_t now);

/* Sizes, for benchmarks and /metrics. */
struct agg_stats {
	size_t ips;	       /* tracked IP records */
	size_t classes;	       /* tracked class records */
	size_t bytes;	       /* memory held by the tables */
	size_t decisions;      /* active decisions */
	uint64_t events;       /* events seen */
	uint64_t evicted;      /* records evicted (idle or over max_tracked_ips) */
	uint64_t folded;       /* events of IPv6 addresses counted in their crowded class only */
	uint64_t suppressed;   /* decisions refused: allow list or protected */
	uint64_t held;	       /* events without a client held by queue id now */
	uint64_t attributed;   /* held events applied with their queue id's client */
	uint64_t unattributed; /* events without a client dropped (no line named it) */
	uint64_t restored;     /* events replayed by the last aggregator_restore() */
	bool from_checkpoint;  /* ... which loaded the database's checkpoint */
};
void aggregator_stats(const struct aggregator *a, struct agg_stats *st);

/*
 * Test whether an address may be blocked: 0 when allowed, else -1 and the
 * reason ("allow list", "protected network") in *why.
 */
int aggregator_blockable(const struct aggregator *a, const struct prefix *p, const char **why);

/*
 * The allows made by hand that are in force (db_allows_active), copied:
 * no new decision, upgrade or manual block overlaps them
 * (aggregator_blockable). The engine sets them on its tick.
 */
void aggregator_set_allows(struct aggregator *a, const struct prefix_list *l);

/* ------------------------------------------------------- manual actions */

/* Who does what by hand, and when (wall clock). */
struct agg_manual {
	const char *who;	/* "cli:root", "web:192.0.2.7" (stored as given) */
	const char *reason;	/* control characters become blanks, at most 255 bytes */
	enum response response; /* block */
	int64_t duration;	/* block, allow: seconds */
	int64_t now;
};
struct db_allow;
/*
 * Block p by hand, in one transaction with its audit record: a new manual
 * decision (returns 0), or, when a manual decision is in force on exactly
 * p, that one made to last until now + duration if that is later, with the
 * stronger response and the new reason (returns 1: "extended"). *out is
 * the decision as stored. Refused (-2, why in err) when p may not be
 * blocked (aggregator_blockable with a's lists) or overlaps an allow made
 * by hand; -1 on a database error (err).
 */
int aggregator_manual_block(struct db *db, const struct aggregator *a, const struct prefix *p,
			    const struct agg_manual *m, struct decision *out, struct buf *err);
/* End every decision in force on p or inside it (ids of the first max in
 * ids, may be NULL); *covering counts those in force on wider prefixes,
 * which still cover p. 0, or -1 (err). */
int aggregator_manual_unblock(struct db *db, const struct prefix *p, const struct agg_manual *m, int64_t *ids,
			      size_t max, size_t *n_ended, size_t *covering, struct buf *err);
/* Allow p for m->duration: a new allow (0) or the one in force on exactly
 * p made to last longer (1). *overridden counts the decisions in force that
 * overlap p: the blocklists leave them out while the allow stands. -1 on a
 * database error. */
int aggregator_manual_allow(struct db *db, const struct prefix *p, const struct agg_manual *m,
			    struct db_allow *out, size_t *overridden, struct buf *err);
/* End the allows in force on p or inside it. 0, or -1 (err). */
int aggregator_manual_unallow(struct db *db, const struct prefix *p, const struct agg_manual *m,
			      size_t *n_ended, struct buf *err);

/*
 * What the blocklist files make of a lookup: the emitters'
 * emitters_lookup_json(), handed in by the caller (this module sits before
 * the emitters). A new JSON array, one object per [output] of c: "output",
 * "holds" (its file holds an entry covering q), "inside" (entries strictly
 * inside q), "inside_entries", "why"/"detail" (why target, the decision in
 * force, is not in it). allows: the allows made by hand in force.
 */
typedef json_t *(*agg_outputs_fn)(const struct config *c, const struct prefix_list *allows,
				  const struct decision *active, size_t n, const struct decision *target,
				  const struct prefix *q, int64_t now);

/*
 * Answer "is this sender blocked, and why?" from the database and the
 * blocklist files: the contract of docs/api.md ("Lookup"), for `mxwarden
 * lookup` and the web API alike. query is an address or a prefix in any
 * pasted form (prefix_parse_pasted), an e-mail address or a sender domain.
 * For an address or prefix: state (blocked, partly_blocked,
 * decided_not_enforced, allowed, clean, never_seen), blocked (enforced),
 * enforced_by, not_enforced, summary, decision (the one in force on the
 * address or its class, with evidence, sessions and changes), inside,
 * history, outputs, seen, recent, allows, protected, allowed, trusted
 * (c->trusted_nets as the caller read it). For an e-mail address or a
 * domain: the client addresses seen with it, each with its state. outputs
 * may be NULL (no file is read: nothing is "blocked"). Returns NULL with
 * a message in err for a query that is none of these (saying what is
 * wrong with an address) or a database error.
 */
json_t *aggregator_lookup_json(struct db *db, const struct config *c, const char *query, int64_t now,
			       agg_outputs_fn outputs, struct buf *err);
/* The same answer for the prefix of decision id, with that decision in
 * full as "requested" (`mxwarden lookup --id N`). NULL (err) when there
 * is no such decision. */
json_t *aggregator_lookup_id_json(struct db *db, const struct config *c, int64_t id, int64_t now,
				  agg_outputs_fn outputs, struct buf *err);

/*
 * The duration of the n-th decision (n = number of earlier decisions for the
 * same prefix): block_base * block_factor^n, capped at block_max, spread by
 * +-block_jitter with a deterministic jitter derived from seed.
 */
int64_t aggregator_duration(const struct rules_conf *r, unsigned n, uint64_t seed);

#endif
