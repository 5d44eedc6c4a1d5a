/*
 * emitters.h - decisions in, blocklists out: ipset, nft, iptables,
 * ip6tables, postfix, postscreen, rbldnsd, rbldnsd6, plain and json.
 *
 * Where it sits: after the aggregator, beside db/ and below web/ and cli/.
 * It sees only arrays of struct decision (base/base.h) and the
 * configuration; it knows nothing of the aggregator's state, of SQL or of
 * log lines. It must never emit a prefix that a bug elsewhere could turn
 * into "block the Internet": every format goes through one filter
 * (emit_filter) that drops, with a warning,
 *   - expired decisions (until <= now) and decisions of a family, scope or
 *     response the output does not want,
 *   - any prefix shorter than the [safety] floor (and never shorter than
 *     /8 for IPv4 or /16 for IPv6, whatever the configuration says), so
 *     0.0.0.0/0 and ::/0 are impossible,
 *   - any prefix that overlaps, in either direction, an allow-listed
 *     prefix (allow, allow_files, the clients the MTA trusts) or a
 *     protected network (the effective protected_networks: the built-in
 *     ranges and the host's own addresses unless the configuration drops
 *     them, and what it adds), or one of the ranges no configuration can
 *     unprotect (prefix_reserved(): 0/8, 127/8, 224/3, ::/8 with
 *     ::ffff:0:0/96 and the NAT64 64:ff9b::/96, fe80::/10, ff00::/8),
 * keeps one decision per prefix (the strongest response, then the latest
 * until) and caps the result at max_entries with a loud warning (the
 * strongest responses are kept).
 *
 * Text: a decision's reason may quote log-derived text (HELO names,
 * addresses). Each format writes it only through emit_sanitize(), a
 * whitelist of characters, so nothing can break a line, close a quote or
 * start a directive. Addresses are written only in canonical form
 * (prefix_format). The lookup URL template ([web] lookup_url, "$ip" is
 * replaced by the address, or a network with its length; for rbldnsd by
 * "$", which rbldnsd replaces with the queried address) goes through the
 * same kind of whitelist. Without [web] lookup_url no URL is written.
 *
 * Files: emitters_update() writes each configured output atomically (a
 * temp file in the same directory, fsync, rename, fsync of the directory,
 * mode and owner of the old file kept) and only when its content changed.
 * Then it runs the output's reload command without a shell (posix_spawn,
 * its own process group, a timeout after which the group is killed), never
 * more than one at a time per output and at most one start a second:
 * rewrites that come meanwhile are coalesced into one more run afterwards.
 * A circuit breaker (below) holds updates that would change too much at once.
 * A write that fails (or a text that fails its validator) leaves the old
 * file in place, runs no reload, and is retried with the next change or
 * 30 s later. The engine never waits: emitters_poll() reaps and enforces
 * timeouts from the engine's tick.
 *
 * Threads: emitters_render() and the format table are reentrant (the web
 * threads call them). A struct emitters belongs to one thread (the engine).
 */
#ifndef MXWARDEN_EMITTERS_H
#define MXWARDEN_EMITTERS_H

#include <jansson.h>

#include "base/base.h"

/* ipset cannot hold a timeout longer than this (seconds); longer blocks are
 * written with this timeout and rewritten before it runs out. nft uses the
 * same ceiling. */
#define EMIT_MAX_TIMEOUT 2147483
/* The floors below which no configuration can go. */
#define EMIT_HARD_FLOOR_V4 8
#define EMIT_HARD_FLOOR_V6 16

/* ---------------------------------------------------------------- formats */

/* What a format's render function gets besides the entries. */
struct emit_ctx {
	const char *set_name;	/* ipset/nft set, iptables chain base name (checked) */
	const char *lookup_url; /* template (sanitized) with "$ip" */
	int64_t now;		/* UTC seconds */
	size_t max_entries;	/* for ipset maxelem */
};

/*
 * One blocklist format. render() appends the whole file for the entries
 * v[0..n) (already filtered: safe, of the format's families, one per
 * prefix, sorted by family, address, then length) to out; it cannot fail.
 * validate() checks a rendered text line by line against the format's
 * grammar (canonical prefixes, whitelisted characters, a final newline);
 * it returns 0, or -1 with a "line N: ..." message appended to err.
 * emitters_update refuses to write a file that does not validate.
 */
struct emit_format {
	const char *name;
	unsigned families;  /* FAMILY_V4 and/or FAMILY_V6 the format can carry */
	bool relative_time; /* the text depends on now (timeouts, a timestamp) */
	bool no_overlap;    /* drop prefixes inside another emitted prefix (nft intervals) */
	bool longest_first; /* first-match tables: more specific prefixes first */
	void (*render)(const struct emit_ctx *ctx, const struct decision *const *v, size_t n,
		       struct buf *out);
	int (*validate)(const char *text, size_t len, struct buf *err);
};

/* The format called name, or NULL. The table in emitters.c is the only
 * list of format names: the configuration's check, `export`, the API and
 * the messages all ask it. */
const struct emit_format *emit_format_find(const char *name);
/* Every format, in a fixed order; *n receives the count. */
const struct emit_format *const *emit_formats(size_t *n);
/* Append the format names, in that order, separated by ", " (for usage
 * texts and messages). */
void emit_format_names(struct buf *out);
/*
 * The checks of the [output NAME] sections that need the formats: a format
 * this program does not know is an error, added to errs as "FILE:LINE:
 * [output NAME] unknown format 'F' (ipset, nft, ...)". config_validate()
 * checks the rest. Returns 0 when errs gained nothing, -1 otherwise.
 */
int emitters_check_config(const struct config *c, struct errlist *errs);

/* ----------------------------------------------------------------- filter */

/* The [safety] settings, resolved (allow_files read, the MTA's trusted
 * clients of c->trusted_nets taken, local addresses added). */
struct emit_safety {
	struct prefix_list protect;
	struct prefix_list allow;
	struct prefix_list allow_manual; /* allows made by hand (emit_safety_set_allows) */
	unsigned v4_floor, v6_floor;	 /* never below EMIT_HARD_FLOOR_* */
	size_t max_entries;
};
/*
 * Build from c. Reads every allow_files entry (one address or CIDR per line,
 * '#' comments, blank lines); a missing or malformed file is an error:
 * returns -1 with a message in err (and s is still valid, so it can be
 * freed), else 0.
 */
int emit_safety_init(struct emit_safety *s, const struct config *c, struct buf *err);
void emit_safety_free(struct emit_safety *s);
/* The allows made by hand in force now (the database's allows table),
 * copied; l may be NULL (none). They are filtered like allow. */
void emit_safety_set_allows(struct emit_safety *s, const struct prefix_list *l);

/* Which decisions one output wants. */
struct emit_select {
	unsigned families; /* FAMILY_V4 | FAMILY_V6 */
	bool class_only;
	enum response min_response;
	bool no_overlap, longest_first; /* from the format */
};

/* Why entries were left out (for logs, /metrics and tests). */
struct emit_stats {
	size_t in, out;
	size_t expired, unwanted, bad; /* unwanted: family, scope or response */
	size_t floor, allowed, protect, duplicate, contained, capped;
};

/* Why one decision is left out of an output, before duplicates, nesting
 * and the cap (which depend on the others). */
enum emit_drop {
	EMIT_KEEP,
	EMIT_DROP_BAD,	     /* not a canonical prefix, or no response */
	EMIT_DROP_EXPIRED,   /* until <= now */
	EMIT_DROP_FAMILY,    /* a family the output does not carry */
	EMIT_DROP_SCOPE,     /* an IP decision, and the output carries classes only */
	EMIT_DROP_RESPONSE,  /* below the output's min_response */
	EMIT_DROP_FLOOR,     /* shorter than the [safety] floor */
	EMIT_DROP_ALLOWED,   /* overlaps an allowed prefix (by configuration or by hand) */
	EMIT_DROP_PROTECTED, /* overlaps a protected network */
	EMIT_DROP_RESERVED,  /* overlaps a range no blocklist ever carries (loopback, multicast, ...) */
};
enum emit_drop emit_check(const struct emit_safety *s, const struct emit_select *sel,
			  const struct decision *x, int64_t now);

/*
 * Select from d[0..n) the decisions to emit at time now. Returns the count
 * and sets *out to a new array of pointers into d (free() it; NULL when the
 * count is 0). Never fails. Drops are counted in st (may be NULL); the cap
 * is logged with log_warn by the caller that knows the output's name.
 */
size_t emit_filter(const struct emit_safety *s, const struct emit_select *sel, const struct decision *d,
		   size_t n, int64_t now, const struct decision ***out, struct emit_stats *st);

/* ------------------------------------------------------------------- text */

/*
 * Append s (NUL-terminated, at most max bytes of output) keeping only
 * [A-Za-z0-9 .,:;_@/+=()<>[]%!?*-]: quotes (' " `) are dropped; every other
 * byte, control characters, backslash, '$', '#', '{}', '|', '&' and all
 * bytes >= 0x80, becomes '?' (a run of them one '?'); runs of blanks become
 * one space; the result is trimmed. Safe inside double quotes in ipset, nft, iptables and
 * at the end of a postfix or rbldnsd line.
 */
void emit_sanitize(struct buf *out, const char *s, size_t max);
/* Append the lookup URL for p (template already sanitized by
 * emit_url_template): "$ip" becomes the address of a host prefix, a
 * network with its length ("203.0.113.0/24"); with dollar, "$". */
void emit_url(struct buf *out, const char *tmpl, const struct prefix *p, bool dollar);
/* Sanitize a configured lookup URL template into out (a fixed whitelist of
 * URL characters; a '$' that does not start "$ip" is dropped). */
void emit_url_template(struct buf *out, const char *tmpl);
/* The effective template of c: [web] lookup_url, sanitized; nothing when
 * it is not set (no URL in outside texts: the listen address is no address
 * for strangers). */
void emit_lookup_template(const struct config *c, struct buf *out);
/* The template for what stays in the house (the [notify] command's
 * documents): [web] lookup_url, else the dashboard's own address,
 * http://LISTEN/lookup/$ip. Never in a blocklist. */
void emit_dashboard_template(const struct config *c, struct buf *out);

/* ---------------------------------------------------- render on demand */

/*
 * Render the file of format for the decisions d[0..n) at time now into out
 * (appended). The selection (families, scope, min_response, set name) is
 * that of the first [output] of c with this format, else every family of
 * the format, scope all, min_response defer, set "mxwarden". Safety comes
 * from c ([safety]) and allows (the allows made by hand in force, NULL:
 * none). Returns 0, or -1 with a message appended to err
 * (unknown format, unreadable allow file); out is then unchanged.
 */
int emitters_render(const char *format, const struct decision *d, size_t n, const struct config *c,
		    const struct prefix_list *allows, int64_t now, struct buf *out, struct buf *err);

/*
 * What decisions would not reach under c, in sentences (appended to out):
 * no [output] at all, [rules] dry_run, an address family, the IP scope or
 * the lighter responses that no output carries. `run` logs them at start
 * and on SIGHUP, check-config prints them, the dashboard's status strip
 * shows them.
 */
void emitters_enforcement_warnings(const struct config *c, struct strv *out);

/* ----------------------------------------------------------- lookup */

/*
 * The entries a blocklist file holds, in any format: the first address or
 * prefix of each line that is not a comment (appended to out). Returns 0,
 * or -1 with errno set when the file cannot be read.
 */
int emit_file_entries(const char *path, struct prefix_list *out);
/*
 * What each [output] of c makes of q (an address or prefix): a new array of
 * {"output", "format", "path", "readable", "holds" (its file holds an entry
 * covering q), "entry" (the narrowest such entry, or null), "inside"
 * (entries strictly inside q) with "inside_entries" (the first 10),
 * "carries" (the decision target would be written to it), "why" (when it
 * would not, or the file lacks it: "family", "scope", "min_response",
 * "floor", "allowed", "reserved", "protected", "expired", "capped", "not_written"),
 * "detail" (a sentence)}. target is the decision in force on q (one of
 * active[0..n), the decisions in force) or NULL; allows are the allows made
 * by hand in force (may be NULL). Reads the output files; changes nothing.
 */
json_t *emitters_lookup_json(const struct config *c, const struct prefix_list *allows,
			     const struct decision *active, size_t n, const struct decision *target,
			     const struct prefix *q, int64_t now);

/* ----------------------------------------------------------------- files */

/*
 * Write data[0..len) to path atomically: a temp file in the same directory,
 * fsync, rename over path, fsync of the directory; the mode and owner of an
 * existing file are kept (0644 for a new one). When the file already holds
 * exactly these bytes nothing is written and *changed (may be NULL) is
 * false. Returns 0, or -1 with errno set and a message logged (path is left
 * untouched and no temp file remains).
 */
int emit_write_atomic(const char *path, const char *data, size_t len, bool *changed);
/* Remove the temp files emit_write_atomic leaves beside path when it is
 * killed between creating and renaming one (".NAME.XXXXXX"). Returns how
 * many were removed. */
int emit_clean_temp(const char *path);

/* -------------------------------------------------------- stateful outputs */

struct emitters;

/*
 * The outputs of c ([output NAME] sections). The settings are copied: c may
 * be freed afterwards.
 * Removes temp files left beside the outputs by a killed write. Returns
 * NULL with a message in err when the safety settings cannot be built (an
 * unreadable allow file), an output's set name is invalid, or two outputs
 * write the same path.
 */
struct emitters *emitters_new(const struct config *c, struct buf *err);
/*
 * SIGHUP: rebuild the outputs from the reloaded configuration c (copied).
 * Outputs are matched by name: one with the same path, format and set name
 * keeps its state (the version written, the breaker, counters, a running
 * reload); a new or changed output, and every output under new [safety]
 * settings, is due at once (emitters_next_due), so the next update writes
 * it. A removed output's reload is killed and its file left as it is.
 * When c's outputs are invalid (same checks as emitters_new) nothing
 * changes: returns -1 (logged), else 0.
 */
int emitters_reconfigure(struct emitters *em, const struct config *c);
/* Kill (SIGKILL to the group) and reap reloads still running, then free.
 * emitters_free(NULL) is a no-op. */
void emitters_free(struct emitters *em);

/*
 * Bring every output up to date with the active decisions d[0..n) at time
 * now: re-filter, rewrite the file when its content changed (or when an
 * ipset/nft timeout must be refreshed), then start or queue its reload.
 * Never blocks on a reload. Returns the number of files rewritten, or -1
 * when any output failed (logged; the others are still written).
 */
int emitters_update(struct emitters *em, const struct decision *d, size_t n, int64_t now);
/* Reap finished reloads (exit status and stderr logged), kill the groups
 * of those past their timeout, start coalesced ones. Call from the tick. */
void emitters_poll(struct emitters *em);
/* The UTC second at which emitters_update must run again even when no
 * decision changed (the earliest expiry or timeout refresh), INT64_MAX when
 * none. */
int64_t emitters_next_due(const struct emitters *em);
/* Number of reloads running or queued. */
size_t emitters_busy(const struct emitters *em);
/* Poll until no reload runs or is queued, at most timeout_ms. Returns 0 when
 * idle, -1 on timeout. For shutdown and tests. */
int emitters_drain(struct emitters *em, int64_t timeout_ms);

/* What became of an output's last reload command. */
enum emit_reload_status {
	EMIT_RELOAD_NONE,    /* none run by this process (or no reload configured) */
	EMIT_RELOAD_RUNNING, /* started, not ended yet */
	EMIT_RELOAD_OK,	     /* exited 0 */
	EMIT_RELOAD_FAILED,  /* could not start, exited non-zero or died of a signal */
	EMIT_RELOAD_KILLED,  /* killed at its reload_timeout */
};
/* "none", "running", "ok", "failed", "killed". */
const char *emit_reload_status_name(enum emit_reload_status s);

/* Counters of one output, for /metrics and tests. */
struct emit_output_stats {
	uint64_t writes, write_errors;
	int64_t last_write; /* UTC seconds of the last rewrite of the file by this process, 0 = none */
	enum emit_reload_status reload_status; /* of the last reload command */
	int64_t last_reload;		       /* UTC seconds it ended (started, while it runs), 0 = none */
	uint64_t reloads_started, reloads_failed, reloads_killed,
	    reloads_coalesced; /* failed: killed included */
	size_t entries;
	struct emit_stats last;
	/* circuit breaker: open now, times it tripped, times a held change was
	 * let through (confirmed or hold over), entries the held update would
	 * change */
	bool breaker_open;
	uint64_t breaker_trips, breaker_released;
	size_t breaker_change;
};
/* Stats of output i (0 <= i < c->n_outputs), or NULL. /metrics gets them
 * through emitters_metrics(); tests read them here. */
const struct emit_output_stats *emitters_stats(const struct emitters *em, size_t i);
/* The name of output i (its [output NAME] section), or NULL past the last. */
const char *emitters_output_name(const struct emitters *em, size_t i);

/*
 * Circuit breaker ([safety] max_change, breaker_min, breaker_hold,
 * breaker_confirm; max_change = 0 turns it off). emitters_update does not
 * write an output (keeps the old file, runs no reload, logs an error, sets
 * breaker_open in its stats and returns -1) when the update would
 *   - change (add plus remove) more than max_change percent of the entries
 *     the output last wrote, once it holds at least breaker_min entries, or
 *   - empty it while the whole decision set is empty and the file holds
 *     entries that have not expired (after a database loss). The first update
 *     after start has no reference (the file's expiries are unknown), so it
 *     is never held.
 * A held change is written when breaker_confirm further updates still
 * propose such a change, or at the first update once breaker_hold seconds
 * have passed (emitters_next_due then returns that time). An update back
 * within bounds closes the breaker. `mxwarden export -o` does not use it.
 */
/* Number of outputs whose breaker is open now (for alerts and tests). */
size_t emitters_breakers_open(const struct emitters *em);
/* Append, in the Prometheus text format, one line per output of: breaker
 * open (0/1), breaker trips, entries, writes, the time of the last write,
 * write errors, failed reloads, the last reload's status (a label) and
 * time (label output="NAME", escaped). The engine publishes it to /metrics
 * (web_set_outputs). */
void emitters_metrics(const struct emitters *em, struct buf *out);
/* The same state as JSON, for the dashboard's status strip: a new array of
 * {"name", "format", "path", "written" (this process wrote the file, or
 * found it up to date), "entries", "writes", "last_write" (RFC 3339 or
 * null), "write_errors", "reload_configured", "reload" (none, running, ok,
 * failed, killed), "last_reload", "breaker_open"}. em may be NULL (an
 * empty array). */
json_t *emitters_status_json(const struct emitters *em);
/* A deliberate change: the next update of every output is written whatever
 * it changes (and is due at once). */
void emitters_breaker_release(struct emitters *em);
/*
 * The database was created by this start (new, or lost and made again). Until
 * the first update that carries decisions, an empty decision set does not
 * replace an output file that still lists entries: the circuit breaker holds
 * it (breaker_hold, breaker_confirm), loudly, as after a loss while running.
 */
void emitters_set_new_database(struct emitters *em, bool is_new);
/*
 * The allows made by hand in force now (db_allows_active; l may be NULL),
 * copied: entries overlapping them are left out of every output from the
 * next update on, which is due at once and not held by the circuit
 * breaker (an allow is deliberate). Returns true when the set changed.
 */
bool emitters_set_allows(struct emitters *em, const struct prefix_list *l);

/* ------------------------------------------------------------- the loader */

/*
 * The root-run loader: `mxwarden load FILE` (mxwarden-load@.service,
 * started by mxwarden-load@.path each time the daemon replaces FILE). The
 * daemon writes its blocklists unprivileged; loading a firewall set needs
 * CAP_NET_ADMIN, which only the loader has. It takes nothing from the file
 * but the entries:
 *   - the [output] of c whose path is FILE gives the format and the set
 *     name (none: refused);
 *   - the file (a regular file, not through a link, at most 256 MiB, read
 *     once) must pass the format's validator, and every set, table or
 *     chain it names must be the configured one (emit_load_check_names);
 *   - the checked bytes go, on a sealed memfd, to the format's tool:
 *     ipset restore, nft -f /dev/stdin, iptables-restore --noflush,
 *     ip6tables-restore --noflush; a Postfix table (postfix, postscreen)
 *     gets `postfix reload`. Other formats need no loader (refused).
 * Fills s (ok, the tool's exit code, the command, a one-line message) and
 * returns 0 when the tool succeeded, else -1. The caller writes s with
 * emit_status_write().
 */
struct emit_status {
	bool ok;
	int64_t time;  /* UTC seconds the load ended */
	int exit_code; /* the tool's, -1 when it did not run */
	char command[128];
	char message[512];
};
int emit_load(const struct config *c, const char *path, struct emit_status *s);
/* 0 when every set, table or chain name in text (format ipset, nft,
 * iptables or ip6tables) is set's (ipset: set4, set6, set4-new, set6-new);
 * else -1 with "line N: ..." in err. Other formats: 0. */
int emit_load_check_names(const char *format, const char *set, const char *text, size_t len, struct buf *err);
/* The status beside a blocklist: PATH.status, lines "key=value" (status=ok
 * or failed, time, exit, command, message), written atomically (a temp
 * file made with O_EXCL, renamed), mode 0640, owned by the directory's
 * owner so that the daemon reads it. emitters_poll() reads it for each
 * output without a reload command and shows it as that output's reload
 * result (/metrics, the log). Both return 0 or -1. */
void emit_status_path(const char *path, struct buf *out);
int emit_status_write(const char *path, const struct emit_status *s);
int emit_status_read(const char *path, struct emit_status *s);

#endif
