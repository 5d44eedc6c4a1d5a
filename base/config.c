/*
 * config.c - the INI configuration: defaults, a small line-numbering
 * parser of our own, typed keys from one table per section, and the error
 * list that `mxwarden check-config` prints as FILE:LINE: message.
 *
 * Why our own parser: Debian's libinih cuts lines at 200 bytes and gives
 * its handler no line numbers; PCRE2 patterns in [parser NAME] are longer
 * than that, and every error must carry its line. The format is small:
 *   [section] or [section NAME]; key = value; comments on lines of their
 *   own starting with '#' or ';'. A value runs to the end of the line
 *   (blanks around it trimmed) so a pattern may contain '#' or ';'.
 * Lines longer than CONFIG_LINE_MAX are refused, never cut.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#define CONFIG_LINE_MAX 8192

/* ------------------------------------------------------------- word lists */

void strv_add(struct strv *sv, const char *s)
{
	sv->v = xrealloc(sv->v, (sv->n + 2) * sizeof *sv->v);
	sv->v[sv->n++] = xstrdup(s);
	sv->v[sv->n] = NULL;
}

void strv_free(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

int strv_split_command(struct strv *out, const char *s, char *err, size_t errsz)
{
	struct buf w = BUF_INIT;
	const char *p = s;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		buf_reset(&w);
		bool any = false;
		while (*p && *p != ' ' && *p != '\t') {
			if (*p == '"') {
				p++;
				any = true;
				while (*p && *p != '"') {
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					buf_appendc(&w, *p++);
				}
				if (*p != '"') {
					snprintf(err, errsz, "unbalanced double quote");
					buf_free(&w);
					strv_free(out);
					return -1;
				}
				p++;
			} else {
				buf_appendc(&w, *p++);
				any = true;
			}
		}
		if (any)
			strv_add(out, buf_str(&w));
	}
	buf_free(&w);
	return 0;
}

/* ---------------------------------------------------------------- errors */

void errlist_add(struct errlist *e, const char *file, int line, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	if (line > 0)
		buf_printf(&b, "%s:%d: ", file, line);
	else
		buf_printf(&b, "%s: ", file);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	strv_add(&e->msgs, buf_str(&b));
	buf_free(&b);
}

void errlist_free(struct errlist *e)
{
	strv_free(&e->msgs);
}

/* ------------------------------------------------------------ key tables */

enum ktype {
	K_STR,	     /* char * */
	K_BOOL,	     /* bool */
	K_INT,	     /* int64_t, >= 0 */
	K_PERCENT,   /* int64_t, 0..100, "50" or "50%" */
	K_DUR,	     /* int64_t seconds */
	K_DOUBLE,    /* double, >= 0 */
	K_PLEN4,     /* unsigned, 0..32 */
	K_PLEN6,     /* unsigned, 0..128 */
	K_STRLIST,   /* struct strv, comma-separated, accumulates */
	K_PREFIXES,  /* struct prefix_list, comma-separated CIDRs */
	K_PROTECTED, /* the protected list: CIDRs, "!CIDR", "default", "local", "!default", "!local" or "none"
		      */
	K_COMMAND,   /* struct strv from a command line */
	K_RESPONSE,  /* enum response */
	K_FAMILIES,  /* unsigned FAMILY_* bits */
	K_OSCOPE,    /* bool class_only: "all" or "class" */
	K_CATEGORY,  /* char *, a category name */
	K_KIND,	     /* char *, an event kind name */
	K_ADDRPORT,  /* char *, ADDR:PORT */
	K_TRUST,     /* unsigned TRUST_* bits: auto, none, or postfix and/or exim */
	K_OBSOLETE,  /* a key that no longer does anything: a warning, not an error */
};

/* What a value of each type looks like, for the key reference. */
static const char *const ktype_doc[K_OBSOLETE + 1] = {
    [K_STR] = "text",
    [K_BOOL] = "yes or no",
    [K_INT] = "count",
    [K_PERCENT] = "percentage",
    [K_DUR] = "duration",
    [K_DOUBLE] = "number",
    [K_PLEN4] = "IPv4 prefix length",
    [K_PLEN6] = "IPv6 prefix length",
    [K_STRLIST] = "list",
    [K_PREFIXES] = "addresses and CIDRs",
    [K_PROTECTED] = "CIDRs, !CIDR, default, local, !default, !local or none",
    [K_COMMAND] = "command",
    [K_RESPONSE] = "observe, defer, reject or drop",
    [K_FAMILIES] = "ipv4, ipv6",
    [K_OSCOPE] = "all or class",
    [K_CATEGORY] = "event category",
    [K_KIND] = "event kind",
    [K_ADDRPORT] = "ADDR:PORT",
    [K_TRUST] = "auto, none, postfix, exim",
    [K_OBSOLETE] = "obsolete",
};

/* The bounds config_validate() checks on a number, beyond its type's
 * (lo > hi: none). */
struct bounds {
	double lo, hi;
};
#define LIM(lo, hi)    \
	{              \
		lo, hi \
	}
#define LIM_AT_LEAST(lo)     \
	{                    \
		lo, INFINITY \
	}
#define LIM_NONE     \
	{            \
		1, 0 \
	}

/*
 * Each key, once: its name, type, where it lives, its default, its bounds
 * and what it means. config_defaults() sets every default from here (the
 * text is read as a file's value would be), config_validate() checks the
 * bounds, check-config -v prints the values by it, and check-config --keys
 * prints it whole (the README's reference tables and a future
 * mxwarden.conf(5) are made from that).
 *
 * def: the default as a file would write it; NULL: unset (empty); a text
 * in parentheses: said in words, the code decides (the system's time zone,
 * Postfix's own configuration directory).
 */
struct key {
	const char *name;
	enum ktype type;
	size_t off;
	const char *def;
	struct bounds lim;
	const char *help;
};

#define CK(name, type, field, def, lim, help)                              \
	{                                                                  \
		name, type, offsetof(struct config, field), def, lim, help \
	}
#define RK(name, type, field, def, lim, help)                                    \
	{                                                                        \
		name, type, offsetof(struct config, rules.field), def, lim, help \
	}
#define OK(name, type, field, def, lim, help)                                   \
	{                                                                       \
		name, type, offsetof(struct output_conf, field), def, lim, help \
	}
#define PK(name, type, field, def, lim, help)                                        \
	{                                                                            \
		name, type, offsetof(struct parser_rule_conf, field), def, lim, help \
	}
#define OBSOLETE(name, help)                              \
	{                                                 \
		name, K_OBSOLETE, 0, NULL, LIM_NONE, help \
	}

static const struct key storage_keys[] = {
    CK("db", K_STR, db_path, CONFIG_DEFAULT_DB, LIM_NONE, "the SQLite database file"),
    CK("retention_events", K_DUR, retention_events, "14d", LIM_NONE, "keep raw events this long"),
    CK("retention_rollups", K_DUR, retention_rollups, "35d", LIM_NONE, "keep per-minute rollups this long"),
    CK("retention_decisions", K_DUR, retention_decisions, "400d", LIM_NONE,
       "keep expired decisions this long"),
    CK("checkpoint_interval", K_DUR, checkpoint_interval, "60s", LIM_NONE,
       "save the aggregator's state in the database this often (0: at a clean stop only)"),
    {NULL, 0, 0, NULL, LIM_NONE, NULL}};

static const struct key collector_keys[] = {
    CK("follow", K_STRLIST, follow, NULL, LIM_NONE, "files or globs to follow"),
    CK("journal", K_STRLIST, journal, NULL, LIM_NONE,
       "follow the systemd journal: the entries whose SYSLOG_IDENTIFIER matches one of these names or globs "
       "(postfix/*, exim4, sendmail); unset: off; a change applies at a restart"),
    CK("journal_directory", K_STR, journal_directory, NULL, LIM_NONE,
       "read the journal files in this directory (a copy, or what systemd-journal-remote receives) instead "
       "of the system journal (a change applies at a restart)"),
    CK("format", K_STR, format, "auto", LIM_NONE, "the logs' MTA: auto, postfix, exim or sendmail"),
    CK("timezone", K_STR, timezone, "(the system's)", LIM_NONE,
       "time zone of RFC 3164 stamps: a zoneinfo name or a POSIX TZ string"),
    CK("syslog_listen", K_ADDRPORT, syslog_listen, NULL, LIM_NONE,
       "ADDR:PORT of the syslog receiver (UDP and TCP); unset: off"),
    CK("syslog_allow", K_STRLIST, syslog_allow, NULL, LIM_NONE,
       "CIDRs allowed to send syslog (empty: loopback only; required to listen beyond loopback)"),
    CK("syslog_udp_remote", K_BOOL, syslog_udp_remote, "no", LIM_NONE,
       "also accept UDP from allowed peers that are not loopback (its source can be forged: prefer TCP)"),
    CK("syslog_max_connections", K_INT, syslog_max_conn, "64", LIM_NONE, "TCP syslog connection limit"),
    CK("syslog_max_message", K_INT, syslog_max_msg, "8192", LIM_NONE, "largest syslog message in bytes"),
    CK("batch_lines", K_INT, batch_lines, "5000", LIM_AT_LEAST(1), "lines per database transaction"),
    CK("batch_ms", K_INT, batch_ms, "200", LIM_NONE, "longest time a batch stays open, in ms"),
    CK("poll_interval", K_DUR, poll_interval, "1s", LIM_NONE, "polling interval when inotify is unavailable"),
    CK("log_syslog", K_BOOL, log_syslog, "no", LIM_NONE, "also log our own messages to syslog"),
    CK("host_silence", K_DUR, host_silence, "10m", LIM_NONE,
       "an MX host without a line for this long is flagged on /healthz and the dashboard (0: off)"),
    {NULL, 0, 0, NULL, LIM_NONE, NULL}};

static const struct key classes_keys[] = {
    CK("ipv4", K_PLEN4, classes.v4_len, "24", LIM_NONE, "IPv4 class length"),
    CK("ipv6", K_PLEN6, classes.v6_len, "64", LIM_NONE, "IPv6 class length"),
    CK("ipv4_widen", K_PLEN4, classes.v4_widen_len, "16", LIM_NONE,
       "adaptive widening stops at this IPv4 length"),
    CK("ipv6_widen", K_PLEN6, classes.v6_widen_len, "48", LIM_NONE,
       "adaptive widening stops at this IPv6 length"),
    {NULL, 0, 0, NULL, LIM_NONE, NULL}};

static const struct key rules_keys[] = {
    RK("retry", K_BOOL, retry_enabled, "on", LIM_NONE, "rule 1: retries after a permanent failure"),
    RK("retry_count", K_INT, retry_count, "3", LIM_NONE,
       "the same (client, sender, recipient) refused with 5xx again this many times"),
    RK("retry_window", K_DUR, retry_window, "1h", LIM_NONE, "rule 1's window"),
    RK("harvest", K_BOOL, harvest_enabled, "on", LIM_NONE, "rule 2: recipient harvesting"),
    RK("harvest_distinct", K_INT, harvest_distinct, "10", LIM_NONE, "distinct unknown recipients"),
    RK("harvest_window", K_DUR, harvest_window, "1h", LIM_NONE, "rule 2's window"),
    RK("harvest_ratio", K_DOUBLE, harvest_ratio, "0.8", LIM(0, 1),
       "or this share of RCPTs unknown over harvest_min_attempts"),
    RK("harvest_min_attempts", K_INT, harvest_min_attempts, "10", LIM_NONE, "RCPTs harvest_ratio needs"),
    RK("backoff", K_BOOL, backoff_enabled, "on", LIM_NONE, "rule 3: back-off ignored after 4xx"),
    RK("backoff_min_interval", K_DUR, backoff_min_interval, "60s", LIM_NONE,
       "a 4xx'd (sender, recipient) coming back sooner than this"),
    RK("backoff_count", K_INT, backoff_count, "5", LIM_NONE, "that many times, in other connections"),
    RK("backoff_window", K_DUR, backoff_window, "1h", LIM_NONE, "rule 3's window"),
    RK("relay", K_BOOL, relay_enabled, "on", LIM_NONE, "rule 4: relay attempts"),
    RK("relay_count", K_INT, relay_count, "2", LIM_NONE, "relay attempts"),
    RK("relay_window", K_DUR, relay_window, "1h", LIM_NONE, "rule 4's window"),
    RK("auth", K_BOOL, auth_enabled, "on", LIM_NONE, "rule 5: AUTH brute force"),
    RK("auth_count", K_INT, auth_count, "5", LIM_NONE, "AUTH failures"),
    RK("auth_users", K_INT, auth_users, "3", LIM_NONE, "or distinct user names"),
    RK("auth_window", K_DUR, auth_window, "10m", LIM_NONE, "rule 5's window"),
    RK("protocol", K_BOOL, protocol_enabled, "on", LIM_NONE,
       "rule 6: protocol abuse (pregreet, pipelining, non-SMTP, too many errors, hang-up before MAIL)"),
    RK("protocol_count", K_INT, protocol_count, "3", LIM_NONE, "protocol violations"),
    RK("protocol_window", K_DUR, protocol_window, "1h", LIM_NONE, "rule 6's window"),
    OBSOLETE("protocol_bot_weight", "obsolete: each protocol violation counts once"),
    RK("no_rdns_weight", K_DOUBLE, no_rdns_weight, "1.5", LIM_NONE,
       "rule 7: thresholds of rules 1-3, 6, 8, 9 are divided by this for clients without rDNS"),
    RK("no_mx_weight", K_DOUBLE, no_mx_weight, "1.5", LIM_NONE,
       "rule 7: ... and by this for sender domains without MX"),
    RK("policy", K_BOOL, policy_enabled, "on", LIM_NONE,
       "rule 8: coming back after refusals by the MTA's own policy (DNSBL, deny lists, HELO, sender)"),
    RK("policy_count", K_INT, policy_count, "3", LIM_NONE, "policy refusals"),
    RK("policy_window", K_DUR, policy_window, "1h", LIM_NONE, "rule 8's window"),
    OBSOLETE("policy_client_weight", "obsolete: each policy refusal counts once"),
    RK("flood", K_BOOL, flood_enabled, "on", LIM_NONE, "rule 9: connection floods"),
    RK("flood_ip_count", K_INT, flood_ip_count, "60", LIM_NONE, "connections per IP"),
    RK("flood_class_count", K_INT, flood_class_count, "80", LIM_NONE,
       "connections per class (3 IPs or more)"),
    RK("flood_window", K_DUR, flood_window, "10m", LIM_NONE, "rule 9's window"),
    RK("flood_limit_weight", K_INT, flood_limit_weight, "20", LIM_NONE,
       "connections an MTA rate-limit warning counts for"),
    RK("class", K_BOOL, class_enabled, "on", LIM_NONE, "rule 10: class escalation"),
    RK("class_flagged_ips", K_INT, class_flagged_ips, "3", LIM_NONE,
       "IPs blocked on their own that block their class"),
    RK("class_widen_classes", K_INT, class_widen_classes, "4", LIM_NONE,
       "blocked classes that widen to [classes] ipv4_widen / ipv6_widen"),
    RK("class_min_members", K_INT, class_min_members, "3", LIM_NONE,
       "members that misbehaved each before a class crosses rules 1-9 as a whole"),
    RK("min_sessions", K_INT, min_sessions, "2", LIM_NONE,
       "connections with abuse signals a rule needs (clear attacks: one at twice the threshold)"),
    RK("returned_count", K_INT, returned_count, "30", LIM_NONE,
       "connections refused by our own block that make a block drop (0: off)"),
    RK("success_factor", K_DOUBLE, success_factor, "3", LIM_NONE,
       "threshold multiplier for senders with accepted mail or a successful AUTH"),
    RK("success_window", K_DUR, success_window, "1d", LIM_NONE, "how long accepted mail counts"),
    RK("block_base", K_DUR, block_base, "1h", LIM_NONE, "first block duration"),
    RK("block_max", K_DUR, block_max, "30d", LIM_NONE, "longest block duration"),
    RK("block_factor", K_DOUBLE, block_factor, "2", LIM_NONE, "escalation factor for repeat offenders"),
    RK("block_jitter", K_DOUBLE, block_jitter, "0.1", LIM_NONE, "random spread of durations (fraction)"),
    RK("score_defer", K_DOUBLE, score_defer, "1", LIM_NONE, "score from which the response is defer"),
    RK("score_reject", K_DOUBLE, score_reject, "1", LIM_NONE, "score from which the response is reject"),
    RK("score_drop", K_DOUBLE, score_drop, "4", LIM_NONE, "score from which the response is drop"),
    RK("max_tracked_ips", K_INT, max_tracked_ips, "500000", LIM_NONE,
       "bound on per-IP state: addresses and classes each, about 280 bytes an address (0: none)"),
    RK("idle_evict", K_DUR, idle_evict, "1d", LIM_NONE, "forget idle senders after this long"),
    RK("evidence_lines", K_INT, evidence_lines, "5", LIM_NONE, "first and last raw lines kept per decision"),
    RK("dry_run", K_BOOL, dry_run, "off", LIM_NONE,
       "decide, store and explain, but hand nothing to the blocklists"),
    {NULL, 0, 0, NULL, LIM_NONE, NULL}};

static const struct key safety_keys[] = {
    CK("protected_networks", K_PROTECTED, protected_add, "default, local", LIM_NONE,
       "never blocked, besides the built-in ranges (default: loopback, RFC 1918, CGNAT, link-local, "
       "multicast) and this host's addresses (local); !CIDR, !default, !local take out; none: nothing"),
    CK("allow", K_PREFIXES, allow, NULL, LIM_NONE, "allow list (addresses and CIDRs)"),
    CK("allow_files", K_STRLIST, allow_files, NULL, LIM_NONE, "files with one address or CIDR per line"),
    CK("mta_trusted", K_TRUST, mta_trusted, "auto", LIM_NONE,
       "allow-list the clients the MTA trusts: auto, none, postfix, exim (Postfix mynetworks, Exim "
       "relay_from_hosts)"),
    CK("postfix_config", K_STR, postfix_config, "(Postfix's own)", LIM_NONE,
       "Postfix configuration directory (postconf -c)"),
    CK("exim_config", K_STR, exim_config, "(Exim's own)", LIM_NONE, "Exim configuration file (exim -C)"),
    CK("ipv4_floor", K_PLEN4, v4_floor, "16", LIM_NONE, "shortest IPv4 prefix ever emitted (never below 8)"),
    CK("ipv6_floor", K_PLEN6, v6_floor, "32", LIM_NONE, "shortest IPv6 prefix ever emitted (never below 16)"),
    CK("max_entries", K_INT, max_entries, "100000", LIM_NONE, "cap on entries per output"),
    CK("max_change", K_PERCENT, max_change, "50%", LIM_NONE,
       "circuit breaker: most entries one update may change (0: off)"),
    CK("breaker_min", K_INT, breaker_min, "20", LIM_NONE,
       "the breaker applies to outputs with at least this many entries"),
    CK("breaker_hold", K_DUR, breaker_hold, "10m", LIM_NONE,
       "a tripped breaker keeps the old file this long"),
    CK("breaker_confirm", K_INT, breaker_confirm, "3", LIM_NONE,
       "consecutive updates that confirm a held change (0: hold only)"),
    {NULL, 0, 0, NULL, LIM_NONE, NULL}};

static const struct key web_keys[] = {
    CK("listen", K_ADDRPORT, listen, "127.0.0.1:8025", LIM_NONE, "dashboard and API address"),
    CK("token_file", K_STR, token_file, NULL, LIM_NONE,
       "file holding the API token for mutating requests (unset: they are refused)"),
    CK("assets", K_STR, assets_dir, NULL, LIM_NONE,
       "serve static/ from this directory instead of the embedded copy"),
    CK("lookup_url", K_STR, lookup_url, NULL, LIM_NONE,
       "public lookup URL template for blocklist texts; $ip is replaced by the address (unset: no URL)"),
    CK("blocklist_listen", K_ADDRPORT, blocklist_listen, NULL, LIM_NONE,
       "a second address serving only /api/v1/blocklist and /healthz, for MX hosts that pull (unset: off)"),
    CK("blocklist_token_file", K_STR, blocklist_token_file, NULL, LIM_NONE,
       "file holding the token blocklist pulls must send (Authorization: Bearer); unset: none"),
    CK("max_connections", K_INT, web_max_conn, "256", LIM_NONE, "concurrent HTTP connections"),
    CK("per_ip_connections", K_INT, web_per_ip_conn, "16", LIM_NONE,
       "concurrent HTTP connections per client address (keeps slots free from slow clients)"),
    CK("timeout", K_DUR, web_timeout, "30s", LIM_NONE, "connection timeout"),
    CK("threads", K_INT, web_threads, "4", LIM_NONE, "HTTP worker threads"),
    {NULL, 0, 0, NULL, LIM_NONE, NULL}};

static const struct key abuse_keys[] = {
    CK("contacts", K_STR, abuse.contacts, NULL, LIM_NONE,
       "file of 'CIDR ADDRESS' lines: the abuse contact of each network"),
    CK("rdap", K_BOOL, abuse.rdap, "no", LIM_NONE, "look up the contacts of other networks by RDAP"),
    CK("rdap_bootstrap", K_STRLIST, abuse.rdap_bootstrap, NULL, LIM_NONE,
       "IANA RDAP bootstrap files (https://data.iana.org/rdap/ipv4.json, ipv6.json)"),
    CK("rdap_ttl", K_DUR, abuse.rdap_ttl, "7d", LIM_NONE, "how long an RDAP answer is kept in the database"),
    CK("rdap_timeout", K_DUR, abuse.rdap_timeout, "10s", LIM_AT_LEAST(1),
       "time allowed for one RDAP request"),
    CK("reporter_org", K_STR, abuse.reporter_org, NULL, LIM_NONE, "the reporting organisation (required)"),
    CK("reporter_contact", K_STR, abuse.reporter_contact, NULL, LIM_NONE,
       "its abuse address, also the envelope sender (required)"),
    CK("reporter_domain", K_STR, abuse.reporter_domain, NULL, LIM_NONE, "its domain (required)"),
    CK("max_per_contact", K_INT, abuse.max_per_contact, "10", LIM_AT_LEAST(1),
       "XARF messages per contact and period; the rest go as one summary"),
    CK("smtp", K_ADDRPORT, abuse.smtp, NULL, LIM_NONE,
       "send the reports through this MTA (e.g. 127.0.0.1:25); unset: write only"),
    CK("smtp_timeout", K_DUR, abuse.smtp_timeout, "30s", LIM_AT_LEAST(1), "time allowed for each SMTP reply"),
    CK("keep", K_DUR, abuse.keep, "30d", LIM_NONE, "written report files older than this are removed"),
    {NULL, 0, 0, NULL, LIM_NONE, NULL}};

static const struct key report_keys[] = {
    CK("digest", K_STR, report.digest, "off", LIM_NONE,
       "off, daily (00:00 UTC) or a time of day HH:MM (UTC)"),
    CK("dir", K_STR, report.dir, "var/reports", LIM_NONE, "directory of the scheduled digests"),
    CK("mail_to", K_STR, report.mail_to, NULL, LIM_NONE, "also mail each digest here (through [abuse] smtp)"),
    CK("keep", K_DUR, report.keep, "30d", LIM_NONE, "digests older than this are removed"),
    CK("top", K_INT, report.top, "20", LIM(1, 1000), "entries in the digest's top lists"),
    {NULL, 0, 0, NULL, LIM_NONE, NULL}};

static const struct key notify_keys[] = {
    CK("command", K_COMMAND, notify.command, NULL, LIM_NONE,
       "run on each new decision, upgrade and circuit-breaker opening, JSON on stdin (no shell)"),
    CK("interval", K_DUR, notify.interval, "10s", LIM_AT_LEAST(1),
       "at most one start per interval; events meanwhile are coalesced"),
    CK("timeout", K_DUR, notify.timeout, "30s", LIM_NONE, "the command's process group is killed after this"),
    CK("max_pending", K_INT, notify.max_pending, "1000", LIM_AT_LEAST(1),
       "documents kept while waiting; beyond, dropped and counted"),
    {NULL, 0, 0, NULL, LIM_NONE, NULL}};

static const struct key output_keys[] = {
    OK("format", K_STR, format, NULL, LIM_NONE,
       "the blocklist's format (required; `mxwarden export --help` lists them)"),
    OK("path", K_STR, path, NULL, LIM_NONE, "the file written (required)"),
    OK("families", K_FAMILIES, families, "ipv4, ipv6", LIM_NONE, "the address families it carries"),
    OK("scope", K_OSCOPE, class_only, "all", LIM_NONE, "all decisions, or those on classes only"),
    OK("min_response", K_RESPONSE, min_response, "defer", LIM_NONE, "the weakest response it carries"),
    OK("reload", K_COMMAND, reload, NULL, LIM_NONE, "command run after a rewrite (no shell)"),
    OK("reload_timeout", K_DUR, reload_timeout, "30s", LIM_NONE,
       "the reload's process group is killed after this"),
    OK("set", K_STR, set_name, "(mxwarden)", LIM_NONE, "ipset/nft set or iptables chain name"),
    {NULL, 0, 0, NULL, LIM_NONE, NULL}};

static const struct key parser_keys[] = {
    PK("pattern", K_STR, pattern, NULL, LIM_NONE, "PCRE2 pattern with named groups (required)"),
    PK("program", K_STR, program, NULL, LIM_NONE, "program-name filter"),
    PK("literal", K_STR, literal, NULL, LIM_NONE, "literal that must appear (prefilter)"),
    PK("category", K_CATEGORY, category, NULL, LIM_NONE, "category of the event (required)"),
    PK("kind", K_KIND, kind, "(reject)", LIM_NONE, "kind of the event"),
    {NULL, 0, 0, NULL, LIM_NONE, NULL}};

/* ------------------------------------------------------------------ values */

struct ctx {
	struct config *c;
	const char *file;
	int line;
	struct errlist *errs;
};

#define ERR(x, ...) errlist_add((x)->errs, (x)->file, (x)->line, __VA_ARGS__)

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int parse_int(const char *v, int64_t *out)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < 0)
		return -1;
	*out = x;
	return 0;
}

/* Calls fn for each comma-separated, trimmed, non-empty item. */
static int each_item(struct ctx *x, const char *key, char *v, int (*fn)(struct ctx *, void *, const char *),
		     void *arg)
{
	int rc = 0;
	char *save = NULL;
	for (char *t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		t = trim(t);
		if (!*t) {
			ERR(x, "%s: empty item in list", key);
			rc = -1;
			continue;
		}
		if (fn(x, arg, t) < 0)
			rc = -1;
	}
	return rc;
}

static int add_str(struct ctx *x, void *arg, const char *t)
{
	strv_add(arg, t);
	return 0;
}

static int add_prefix(struct ctx *x, void *arg, const char *t)
{
	struct prefix p;
	if (prefix_parse(&p, t, strlen(t), true) < 0) {
		ERR(x, "'%s' is not an address or a CIDR prefix with zero host bits", t);
		return -1;
	}
	prefix_list_add(arg, &p);
	return 0;
}

/* protected_networks: CIDRs add to the built-in ranges and the host's own
 * addresses, which always apply unless named: "!CIDR" takes a range out,
 * "!default" and "!local" drop them all ("default" and "local" say they
 * stay, as they would anyway). */
static int add_protected(struct ctx *x, void *arg, const char *t)
{
	struct config *c = x->c;
	(void)arg;
	if (strcmp(t, "default") == 0 || strcmp(t, "local") == 0)
		return 0;
	if (strcmp(t, "!default") == 0) {
		c->protected_builtin = false;
		return 0;
	}
	if (strcmp(t, "!local") == 0) {
		c->protected_local = false;
		return 0;
	}
	if (strcmp(t, "none") == 0) {
		ERR(x, "protected_networks: 'none' must stand alone");
		return -1;
	}
	if (t[0] == '!')
		return add_prefix(x, &c->protected_cut, t + 1);
	return add_prefix(x, &c->protected_add, t);
}

static int add_family(struct ctx *x, void *arg, const char *t)
{
	unsigned *f = arg;
	if (strcmp(t, "ipv4") == 0)
		*f |= FAMILY_V4;
	else if (strcmp(t, "ipv6") == 0)
		*f |= FAMILY_V6;
	else {
		ERR(x, "families: '%s' is not ipv4 or ipv6", t);
		return -1;
	}
	return 0;
}

static int add_trust(struct ctx *x, void *arg, const char *t)
{
	unsigned *f = arg;
	if (strcmp(t, "postfix") == 0)
		*f |= TRUST_POSTFIX;
	else if (strcmp(t, "exim") == 0)
		*f |= TRUST_EXIM;
	else {
		ERR(x, "mta_trusted: '%s' is not auto, none, postfix or exim", t);
		return -1;
	}
	return 0;
}

static int check_addrport(const char *v)
{
	const char *colon = strrchr(v, ':');
	if (!colon || colon == v)
		return -1;
	int64_t port;
	if (parse_int(colon + 1, &port) < 0 || port < 1 || port > 65535)
		return -1;
	const char *h = v;
	size_t n = (size_t)(colon - v);
	if (h[0] == '[') {
		if (n < 2 || h[n - 1] != ']')
			return -1;
		h++;
		n -= 2;
	}
	if (n == 1 && h[0] == '*')
		return 0;
	struct ipaddr ip;
	return ipaddr_parse(&ip, h, n);
}

static void set_value(struct ctx *x, const struct key *k, void *base, char *v)
{
	void *f = (char *)base + k->off;
	int64_t i64;
	char msg[256];
	switch (k->type) {
	case K_OBSOLETE: log_warn("%s:%d: %s: %s, ignored", x->file, x->line, k->name, k->help); return;
	case K_STR:
	case K_CATEGORY:
	case K_KIND:
		if (!*v) {
			ERR(x, "%s: empty value", k->name);
			return;
		}
		if (k->type == K_CATEGORY && (ev_category_from_name(v) <= 0)) {
			ERR(x, "%s: unknown category '%s'", k->name, v);
			return;
		}
		if (k->type == K_KIND && ev_kind_from_name(v) <= 0) {
			ERR(x, "%s: unknown event kind '%s'", k->name, v);
			return;
		}
		free(*(char **)f);
		*(char **)f = xstrdup(v);
		return;
	case K_ADDRPORT:
		if (check_addrport(v) < 0) {
			ERR(x, "%s: '%s' is not ADDR:PORT (e.g. 127.0.0.1:8025 or [::1]:8025)", k->name, v);
			return;
		}
		free(*(char **)f);
		*(char **)f = xstrdup(v);
		return;
	case K_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
			*(bool *)f = true;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
			*(bool *)f = false;
		else
			ERR(x, "%s: '%s' is not yes or no", k->name, v);
		return;
	case K_INT:
		if (parse_int(v, &i64) < 0)
			ERR(x, "%s: '%s' is not a non-negative integer", k->name, v);
		else
			*(int64_t *)f = i64;
		return;
	case K_PERCENT: {
		char pct[32];
		size_t pl = strlen(v);
		if (pl && v[pl - 1] == '%')
			pl--;
		bool fits = pl < sizeof pct;
		if (fits) {
			memcpy(pct, v, pl);
			pct[pl] = '\0';
		}
		if (!fits || parse_int(pct, &i64) < 0 || i64 > 100)
			ERR(x, "%s: '%s' is not a percentage (0 to 100, e.g. 50%%)", k->name, v);
		else
			*(int64_t *)f = i64;
		return;
	}
	case K_DUR:
		if (duration_parse(v, &i64) < 0)
			ERR(x, "%s: '%s' is not a duration (e.g. 90s, 10m, 2h, 7d)", k->name, v);
		else
			*(int64_t *)f = i64;
		return;
	case K_DOUBLE: {
		char *end;
		errno = 0;
		double d = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(d) || d < 0)
			ERR(x, "%s: '%s' is not a non-negative number", k->name, v);
		else
			*(double *)f = d;
		return;
	}
	case K_PLEN4:
	case K_PLEN6: {
		int64_t max = k->type == K_PLEN4 ? 32 : 128;
		const char *s = v[0] == '/' ? v + 1 : v;
		if (parse_int(s, &i64) < 0 || i64 > max)
			ERR(x, "%s: '%s' is not a prefix length 0..%lld", k->name, v, (long long)max);
		else
			*(unsigned *)f = (unsigned)i64;
		return;
	}
	case K_STRLIST: each_item(x, k->name, v, add_str, f); return;
	case K_PREFIXES: each_item(x, k->name, v, add_prefix, f); return;
	case K_PROTECTED:
		x->c->protected_line = x->line;
		if (strcmp(v, "none") == 0) {
			x->c->protected_builtin = x->c->protected_local = false;
			return;
		}
		each_item(x, k->name, v, add_protected, f);
		return;
	case K_COMMAND:
		strv_free(f);
		if (strv_split_command(f, v, msg, sizeof msg) < 0)
			ERR(x, "%s: %s", k->name, msg);
		else if (((struct strv *)f)->n && ((struct strv *)f)->v[0][0] != '/')
			ERR(x, "%s: the command must be an absolute path, got '%s'", k->name,
			    ((struct strv *)f)->v[0]);
		return;
	case K_RESPONSE: {
		int r = response_from_name(v);
		if (r < 0)
			ERR(x, "%s: '%s' is not observe, defer, reject or drop", k->name, v);
		else
			*(enum response *)f = (enum response)r;
		return;
	}
	case K_FAMILIES:
		*(unsigned *)f = 0;
		each_item(x, k->name, v, add_family, f);
		return;
	case K_TRUST:
		*(unsigned *)f = 0;
		if (strcmp(v, "auto") == 0)
			*(unsigned *)f = TRUST_AUTO;
		else if (strcmp(v, "none") != 0)
			each_item(x, k->name, v, add_trust, f);
		return;
	case K_OSCOPE:
		if (strcmp(v, "all") == 0)
			*(bool *)f = false;
		else if (strcmp(v, "class") == 0)
			*(bool *)f = true;
		else
			ERR(x, "%s: '%s' is not all or class", k->name, v);
		return;
	}
	BUG("unhandled key type %d", (int)k->type);
}

/* --------------------------------------------------------------- defaults */

/* Set the defaults of keys[] in base, each read as a file's value would
 * be. A default the table says in words ("(...)") is the code's: left
 * unset here. protected_networks' "default, local" keeps the built-in
 * ranges and this host's addresses, which apply unless a file takes them
 * out: the list starts with the built-in ranges (config_validate() adds
 * the host's). */
static void apply_defaults(struct config *c, const struct key *keys, void *base)
{
	struct errlist errs = {0};
	struct ctx x = {c, "(defaults)", 0, &errs};
	for (const struct key *k = keys; k->name; k++) {
		if (!k->def || k->def[0] == '(' || k->type == K_OBSOLETE)
			continue;
		if (k->type == K_PROTECTED) {
			c->protected_builtin = c->protected_local = true;
			config_protected_build(c, NULL);
			continue;
		}
		char *v = xstrdup(k->def);
		set_value(&x, k, base, v);
		free(v);
		if (errs.msgs.n)
			BUG("the default of %s does not read: %s", k->name, errs.msgs.v[0]);
	}
	errlist_free(&errs);
}

/* ------------------------------------------------------------------ parser */

enum section {
	SEC_NONE,
	SEC_STORAGE,
	SEC_COLLECTOR,
	SEC_PARSER,
	SEC_CLASSES,
	SEC_RULES,
	SEC_SAFETY,
	SEC_OUTPUT,
	SEC_WEB,
	SEC_ABUSE,
	SEC_REPORT,
	SEC_NOTIFY
};

static const struct {
	const char *name;
	enum section sec;
	bool named;
	const struct key *keys;
} sections[] = {
    {"storage", SEC_STORAGE, false, storage_keys}, {"collector", SEC_COLLECTOR, false, collector_keys},
    {"parser", SEC_PARSER, true, parser_keys},	   {"classes", SEC_CLASSES, false, classes_keys},
    {"rules", SEC_RULES, false, rules_keys},	   {"safety", SEC_SAFETY, false, safety_keys},
    {"output", SEC_OUTPUT, true, output_keys},	   {"web", SEC_WEB, false, web_keys},
    {"abuse", SEC_ABUSE, false, abuse_keys},	   {"report", SEC_REPORT, false, report_keys},
    {"notify", SEC_NOTIFY, false, notify_keys},
};

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < MXW_ARRAY_LEN(sections); i++)
		if (!sections[i].named)
			apply_defaults(c, sections[i].keys, c);
	c->report.digest_at = -1; /* not a key: what config_validate() makes of [report] digest */
}

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

/* Edit distance (insertions, deletions, substitutions, transpositions of
 * neighbours) between a and b, or 99 when it exceeds 3. */
static int edits(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	if (na > 48 || nb > 48 || (na > nb ? na - nb : nb - na) > 3)
		return 99;
	int d[49][49];
	for (size_t i = 0; i <= na; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= nb; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= na; i++)
		for (size_t j = 1; j <= nb; j++) {
			int v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			v = MXW_MIN(v, d[i - 1][j] + 1);
			v = MXW_MIN(v, d[i][j - 1] + 1);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
				v = MXW_MIN(v, d[i - 2][j - 2] + 1);
			d[i][j] = v;
		}
	return d[na][nb] > 3 ? 99 : d[na][nb];
}

/* The key of the table nearest to a misspelt one: at most 2 edits (3 for
 * long names), or a key that starts or ends with it; NULL when none. */
static const char *nearest_key(const struct key *keys, const char *key)
{
	const char *best = NULL;
	int bestd = 99;
	size_t n = strlen(key);
	for (const struct key *k = keys; k->name; k++) {
		if (k->type == K_OBSOLETE)
			continue;
		int d = edits(key, k->name);
		size_t kn = strlen(k->name);
		if (d > (n >= 10 ? 3 : 2))
			d = 99;
		if (d == 99 && n >= 4 &&
		    (strncmp(k->name, key, n) == 0 || (kn > n && strcmp(k->name + kn - n, key) == 0)))
			d = 3;
		if (d < bestd) {
			bestd = d;
			best = k->name;
		}
	}
	return best;
}

/* Seen keys per section instance, to refuse a scalar key set twice. */
struct seen {
	size_t inst;
	const struct key *key;
	int line;
};

int config_load(struct config *c, const char *path, struct errlist *errs)
{
	size_t nerr0 = errs->msgs.n;
	FILE *fp = fopen(path, "r");
	if (!fp) {
		errlist_add(errs, path, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	free(c->source);
	c->source = xstrdup(path);
	struct ctx x = {c, path, 0, errs};
	int sec = -1; /* index into sections[], -1 = before any section */
	void *base = NULL;
	bool skip_section = false;
	struct seen *seen = NULL;
	size_t nseen = 0;
	char *line = xmalloc(CONFIG_LINE_MAX + 2);

	while (fgets(line, CONFIG_LINE_MAX + 2, fp)) {
		x.line++;
		size_t len = strlen(line);
		if (len == CONFIG_LINE_MAX + 1 && line[len - 1] != '\n') {
			ERR(&x, "line longer than %d bytes", CONFIG_LINE_MAX);
			int ch;
			while ((ch = fgetc(fp)) != EOF && ch != '\n')
				;
			continue;
		}
		if (memchr(line, '\0', len) != NULL && strlen(line) != len) {
			ERR(&x, "NUL byte in line");
			continue;
		}
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		char *s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			skip_section = true;
			if (!end || trim(end + 1)[0] != '\0') {
				ERR(&x, "malformed section header (want [section] or [section NAME])");
				continue;
			}
			*end = '\0';
			char *inner = trim(s + 1);
			char *name = NULL;
			char *sp = strpbrk(inner, " \t");
			if (sp) {
				*sp = '\0';
				name = trim(sp + 1);
			}
			sec = -1;
			for (size_t i = 0; i < MXW_ARRAY_LEN(sections); i++)
				if (strcmp(sections[i].name, inner) == 0)
					sec = (int)i;
			if (sec < 0) {
				ERR(&x, "unknown section [%s]", inner);
				continue;
			}
			if (sections[sec].named && (!name || !valid_name(name))) {
				ERR(&x,
				    "[%s] needs a name of letters, digits, '_', '-' or '.' (e.g. [%s main])",
				    inner, inner);
				continue;
			}
			if (!sections[sec].named && name) {
				ERR(&x, "[%s] takes no name", inner);
				continue;
			}
			skip_section = false;
			if (sections[sec].sec == SEC_OUTPUT) {
				for (size_t i = 0; i < c->n_outputs; i++)
					if (strcmp(c->outputs[i].name, name) == 0) {
						ERR(&x, "[output %s] already defined at line %d", name,
						    c->outputs[i].defined_line);
						skip_section = true;
					}
				if (skip_section)
					continue;
				c->outputs = xrealloc(c->outputs, (c->n_outputs + 1) * sizeof *c->outputs);
				struct output_conf *o = &c->outputs[c->n_outputs++];
				memset(o, 0, sizeof *o);
				o->name = xstrdup(name);
				apply_defaults(c, output_keys, o);
				o->defined_line = x.line;
				base = NULL; /* outputs may move on realloc: resolved per key */
			} else if (sections[sec].sec == SEC_PARSER) {
				for (size_t i = 0; i < c->n_parsers; i++)
					if (strcmp(c->parsers[i].name, name) == 0) {
						ERR(&x, "[parser %s] already defined at line %d", name,
						    c->parsers[i].line);
						skip_section = true;
					}
				if (skip_section)
					continue;
				c->parsers = xrealloc(c->parsers, (c->n_parsers + 1) * sizeof *c->parsers);
				struct parser_rule_conf *p = &c->parsers[c->n_parsers++];
				memset(p, 0, sizeof *p);
				p->name = xstrdup(name);
				apply_defaults(c, parser_keys, p);
				p->file = xstrdup(path);
				p->line = x.line;
				base = NULL;
			} else {
				base = c;
				if (sections[sec].sec == SEC_ABUSE && !c->abuse.used) {
					c->abuse.used = true;
					c->abuse.line = x.line;
				}
			}
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			ERR(&x, "expected 'key = value', '[section]' or a comment");
			continue;
		}
		*eq = '\0';
		char *key = trim(s);
		char *val = trim(eq + 1);
		if (sec < 0) {
			if (!skip_section)
				ERR(&x, "key '%s' outside of any section", key);
			continue;
		}
		if (skip_section)
			continue;
		void *b = base;
		if (sections[sec].sec == SEC_OUTPUT)
			b = &c->outputs[c->n_outputs - 1];
		else if (sections[sec].sec == SEC_PARSER)
			b = &c->parsers[c->n_parsers - 1];
		const struct key *k = NULL;
		for (const struct key *t = sections[sec].keys; t->name; t++)
			if (strcmp(t->name, key) == 0)
				k = t;
		if (!k) {
			const char *near = nearest_key(sections[sec].keys, key);
			if (near)
				ERR(&x, "unknown key '%s' in [%s] (did you mean '%s'?)", key,
				    sections[sec].name, near);
			else
				ERR(&x, "unknown key '%s' in [%s]", key, sections[sec].name);
			continue;
		}
		if (k->type != K_STRLIST && k->type != K_PREFIXES) {
			/* identify the instance by section index and, for named ones, position */
			size_t inst =
			    (size_t)sec * 1000000 + (sections[sec].sec == SEC_OUTPUT   ? c->n_outputs
						     : sections[sec].sec == SEC_PARSER ? c->n_parsers
										       : 0);
			int dup = 0;
			for (size_t i = 0; i < nseen; i++)
				if (seen[i].inst == inst && seen[i].key == k)
					dup = seen[i].line;
			if (dup) {
				ERR(&x, "'%s' already set at line %d", key, dup);
				continue;
			}
			seen = xrealloc(seen, (nseen + 1) * sizeof *seen);
			seen[nseen++] = (struct seen){inst, k, x.line};
		}
		set_value(&x, k, b, val);
		if (sections[sec].sec == SEC_PARSER && k->off == offsetof(struct parser_rule_conf, pattern))
			c->parsers[c->n_parsers - 1].pattern_line = x.line;
		if (sections[sec].sec == SEC_COLLECTOR && k->off == offsetof(struct config, timezone))
			c->timezone_line = x.line;
	}
	if (ferror(fp))
		errlist_add(errs, path, x.line, "read error: %s", strerror(errno));
	fclose(fp);
	free(line);
	free(seen);
	return errs->msgs.n == nerr0 ? 0 : -1;
}

/* A number of key k in base, as a double (false: not a number). */
static bool key_number(const struct key *k, const void *base, double *v)
{
	const void *f = (const char *)base + k->off;
	switch (k->type) {
	case K_INT:
	case K_PERCENT:
	case K_DUR: *v = (double)*(const int64_t *)f; return true;
	case K_DOUBLE: *v = *(const double *)f; return true;
	case K_PLEN4:
	case K_PLEN6: *v = (double)*(const unsigned *)f; return true;
	default: return false;
	}
}

/* A bound of key k in its own notation ("1s" for a duration). */
static void bound_format(const struct key *k, double b, char *out, size_t n)
{
	if (isinf(b)) /* no bound on that side: never printed */
		snprintf(out, n, "%s", b < 0 ? "-inf" : "inf");
	else if (k->type == K_DUR)
		duration_format((int64_t)b, out, n);
	else
		snprintf(out, n, "%g%s", b, k->type == K_PERCENT ? "%" : "");
}

/* The bounds of the table: "[SECTION NAME] KEY must be at least LO", "at
 * most HI" or "between LO and HI". */
static void check_bounds(const char *sec, const char *name, const struct key *keys, const void *base,
			 const char *file, int line, struct errlist *errs)
{
	for (const struct key *k = keys; k->name; k++) {
		double v, lo = k->lim.lo, hi = k->lim.hi;
		if (lo > hi || !key_number(k, base, &v) || (v >= lo && v <= hi))
			continue;
		char a[32], b[32];
		bound_format(k, lo, a, sizeof a);
		bound_format(k, hi, b, sizeof b);
		struct buf where = BUF_INIT;
		buf_printf(&where, "[%s%s%s] %s", sec, name ? " " : "", name ? name : "", k->name);
		if (isinf(hi))
			errlist_add(errs, file, line, "%s must be at least %s", buf_str(&where), a);
		else if (isinf(lo))
			errlist_add(errs, file, line, "%s must be at most %s", buf_str(&where), b);
		else
			errlist_add(errs, file, line, "%s must be between %s and %s", buf_str(&where), a, b);
		buf_free(&where);
	}
}

/* ---------------------------------------------- addresses in mail headers */

bool hostname_ok(const char *s)
{
	size_t n = strlen(s), label = 0;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char ch = s[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
		if (!alnum && !(ch == '-' && label > 0))
			return false;
		label++;
	}
	return true;
}

bool mail_addr_ok(const char *s)
{
	const char *at = strrchr(s, '@');
	if (!at || at == s || strlen(s) > 254 || at - s > 64 || !hostname_ok(at + 1))
		return false;
	static const char atext[] = "!#$%&'*+/=?^_`{|}~-";
	for (const char *p = s; p < at; p++) {
		char ch = *p;
		if (ch == '.') {
			if (p == s || p + 1 == at || p[1] == '.')
				return false;
			continue;
		}
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
		if (!alnum && !(ch && strchr(atext, ch)))
			return false;
	}
	return true;
}

/* "HH:MM" -> seconds after midnight, -1 when it is not one. */
static int64_t parse_time_of_day(const char *v)
{
	if (strlen(v) != 5 || v[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (v[i] < '0' || v[i] > '9'))
			return -1;
	int h = (v[0] - '0') * 10 + (v[1] - '0'), m = (v[3] - '0') * 10 + (v[4] - '0');
	if (h > 23 || m > 59)
		return -1;
	return h * 3600 + m * 60;
}

/* A reporter organisation goes into a mail header and the XARF report:
 * printable UTF-8, at most 200 bytes (XARF's maxLength). */
static bool org_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 200 || !utf8_valid(s, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void validate_reports(struct config *c, const char *file, struct errlist *errs)
{
	struct abuse_conf *a = &c->abuse;
	int line = a->line;
	if (a->used) {
		if (!a->reporter_org)
			errlist_add(errs, file, line,
				    "[abuse] needs reporter_org (the reporting organisation)");
		else if (!org_ok(a->reporter_org))
			errlist_add(errs, file, line,
				    "[abuse] reporter_org must be printable UTF-8 of at most 200 bytes");
		if (!a->reporter_contact)
			errlist_add(errs, file, line, "[abuse] needs reporter_contact (your abuse address)");
		else if (!mail_addr_ok(a->reporter_contact))
			errlist_add(errs, file, line,
				    "[abuse] reporter_contact: '%s' is not a plain mail address",
				    a->reporter_contact);
		if (!a->reporter_domain)
			errlist_add(errs, file, line, "[abuse] needs reporter_domain (your domain)");
		else if (!hostname_ok(a->reporter_domain))
			errlist_add(errs, file, line, "[abuse] reporter_domain: '%s' is not a domain name",
				    a->reporter_domain);
		if (a->rdap && a->rdap_bootstrap.n == 0)
			errlist_add(
			    errs, file, line,
			    "[abuse] rdap needs rdap_bootstrap (the IANA files ipv4.json and ipv6.json)");
	}
	struct report_conf *r = &c->report;
	r->digest_at = -1;
	if (strcmp(r->digest, "daily") == 0)
		r->digest_at = 0;
	else if (strcmp(r->digest, "off") != 0 && (r->digest_at = parse_time_of_day(r->digest)) < 0)
		errlist_add(errs, file, 0,
			    "[report] digest: '%s' is not off, daily or a time of day HH:MM (UTC)",
			    r->digest);
	if (r->mail_to && !mail_addr_ok(r->mail_to))
		errlist_add(errs, file, 0, "[report] mail_to: '%s' is not a plain mail address", r->mail_to);
	if (r->mail_to && !a->smtp)
		errlist_add(errs, file, 0, "[report] mail_to needs [abuse] smtp (the MTA that sends it)");
}

/* "FILE:LINE: " of protected_networks, for its warnings and errors. */
static void protected_where(const struct config *c, struct buf *b)
{
	const char *file = c->source ? c->source : "(defaults)";
	if (c->protected_line > 0)
		buf_printf(b, "%s:%d: ", file, c->protected_line);
	else
		buf_printf(b, "%s: ", file);
}

int config_protected_build(struct config *c, struct errlist *errs)
{
	struct prefix_list *l = &c->protected_networks;
	struct strv *src = &c->protected_src;
	prefix_list_free(l);
	strv_free(src);
	struct buf b = BUF_INIT, gone = BUF_INIT;
	char t[PREFIX_STRLEN];
	struct prefix p;
	const char *what;
	int rc = 0;
	for (size_t i = 0; config_protected_builtin(i, &p, &what); i++) {
		prefix_format(&p, t);
		if (!c->protected_builtin) {
			buf_printf(&gone, "%s%s (%s)", gone.len ? ", " : "", t, what);
			continue;
		}
		prefix_list_add(l, &p);
		buf_reset(&b);
		buf_printf(&b, "built-in: %s", what);
		strv_add(src, buf_str(&b));
	}
	if (gone.len) {
		buf_reset(&b);
		protected_where(c, &b);
		buf_printf(
		    &b,
		    "protected_networks: the built-in ranges %s are not protected: addresses there can be "
		    "blocked",
		    buf_str(&gone));
		strv_add(&c->warnings, buf_str(&b));
	}
	/* cuts take ranges out of the built-in ones (a range that holds the
	 * cut is split around it), then the host's own addresses inside a cut
	 * stay out too */
	size_t *hits = xcalloc(c->protected_cut.n + 1, sizeof *hits);
	for (size_t k = 0; k < c->protected_cut.n; k++) {
		const struct prefix *cut = &c->protected_cut.v[k];
		char ct[PREFIX_STRLEN];
		prefix_format(cut, ct);
		for (size_t i = 0; i < l->n; i++) {
			if (!prefix_overlaps(&l->v[i], cut))
				continue;
			prefix_format(&l->v[i], t);
			buf_reset(&b);
			protected_where(c, &b);
			if (prefix_contains_prefix(cut, &l->v[i]))
				buf_printf(&b, "protected_networks: !%s drops the built-in range %s (%s)", ct,
					   t, src->v[i] + strlen("built-in: "));
			else
				buf_printf(
				    &b, "protected_networks: !%s takes %s out of the built-in range %s (%s)",
				    ct, ct, t, src->v[i] + strlen("built-in: "));
			buf_appends(&b, ": addresses there can be blocked");
			strv_add(&c->warnings, buf_str(&b));
		}
		hits[k] = prefix_list_cut(l, src, cut);
	}
	if (c->protected_local) {
		struct prefix_list loc = {0};
		struct strv names = {0};
		config_local_addrs(&loc, &names);
		for (size_t i = 0; i < loc.n; i++) {
			const struct prefix *a = &loc.v[i];
			size_t k;
			for (k = 0; k < c->protected_cut.n; k++)
				if (prefix_contains_prefix(&c->protected_cut.v[k], a))
					break;
			prefix_format(a, t);
			if (k < c->protected_cut.n) {
				char ct[PREFIX_STRLEN];
				prefix_format(&c->protected_cut.v[k], ct);
				hits[k]++;
				buf_reset(&b);
				protected_where(c, &b);
				buf_printf(&b,
					   "protected_networks: !%s drops this host's own address %s (%s)",
					   ct, t, names.v[i]);
				strv_add(&c->warnings, buf_str(&b));
				continue;
			}
			if (prefix_list_contains(l, &a->addr))
				continue;
			prefix_list_add(l, a);
			buf_reset(&b);
			buf_printf(&b, "this host (%s)", names.v[i]);
			strv_add(src, buf_str(&b));
		}
		prefix_list_free(&loc);
		strv_free(&names);
	} else {
		buf_reset(&b);
		protected_where(c, &b);
		buf_appends(&b, "protected_networks: this host's own addresses are not protected");
		strv_add(&c->warnings, buf_str(&b));
	}
	for (size_t k = 0; k < c->protected_cut.n; k++) {
		if (hits[k])
			continue;
		prefix_format(&c->protected_cut.v[k], t);
		if (errs)
			errlist_add(errs, c->source ? c->source : "(defaults)", c->protected_line,
				    "protected_networks: !%s takes out nothing: it is not inside a built-in "
				    "range%s or "
				    "this host's addresses",
				    t, c->protected_builtin ? "" : " (none apply: !default)");
		rc = -1;
	}
	free(hits);
	for (size_t i = 0; i < c->protected_add.n; i++) {
		prefix_list_add(l, &c->protected_add.v[i]);
		buf_reset(&b);
		buf_appends(&b, "protected_networks");
		if (c->protected_line > 0)
			buf_printf(&b, " (%s:%d)", c->source ? c->source : "(defaults)", c->protected_line);
		strv_add(src, buf_str(&b));
	}
	buf_free(&b);
	buf_free(&gone);
	return rc;
}

/* The syslog receiver is safe by default: loopback only unless
 * syslog_allow names the senders; UDP from other hosts (forgeable) only
 * with syslog_udp_remote = yes, and a warning. */
static void config_validate_syslog(struct config *c, struct errlist *errs)
{
	const char *file = c->source ? c->source : "(defaults)";
	for (size_t i = 0; i < c->syslog_allow.n; i++) {
		struct prefix p;
		const char *s = c->syslog_allow.v[i];
		if (prefix_parse(&p, s, strlen(s), true) < 0)
			errlist_add(errs, file, 0,
				    "[collector] syslog_allow: '%s' is not an address or a CIDR prefix with "
				    "zero host "
				    "bits",
				    s);
	}
	if (c->syslog_listen && !addrport_loopback(c->syslog_listen) && c->syslog_allow.n == 0)
		errlist_add(
		    errs, file, 0,
		    "[collector] syslog_listen = %s listens beyond loopback without syslog_allow: anyone who "
		    "reaches the port could feed log lines and get any address blocked; list your MX hosts "
		    "in "
		    "syslog_allow",
		    c->syslog_listen);
	if (c->syslog_udp_remote) {
		struct buf b = BUF_INIT;
		buf_printf(
		    &b,
		    "%s: [collector] syslog_udp_remote = yes: UDP syslog from the hosts of syslog_allow is "
		    "accepted, and a UDP source address can be forged: anyone who can send a packet to the "
		    "port can feed lines in an allowed host's name (prefer TCP)",
		    file);
		strv_add(&c->warnings, buf_str(&b));
		buf_free(&b);
	}
}

int config_validate(struct config *c, struct errlist *errs)
{
	size_t nerr0 = errs->msgs.n;
	const char *file = c->source ? c->source : "(defaults)";
	strv_free(&c->warnings); /* validated again: said again, once */
	config_protected_build(c, errs);
	if (strcmp(c->format, "auto") && strcmp(c->format, "postfix") && strcmp(c->format, "exim") &&
	    strcmp(c->format, "sendmail"))
		errlist_add(errs, file, 0, "[collector] format: '%s' is not auto, postfix, exim or sendmail",
			    c->format);
	if (c->classes.v4_widen_len > c->classes.v4_len)
		errlist_add(errs, file, 0, "[classes] ipv4_widen (/%u) must not be longer than ipv4 (/%u)",
			    c->classes.v4_widen_len, c->classes.v4_len);
	if (c->classes.v6_widen_len > c->classes.v6_len)
		errlist_add(errs, file, 0, "[classes] ipv6_widen (/%u) must not be longer than ipv6 (/%u)",
			    c->classes.v6_widen_len, c->classes.v6_len);
	for (size_t i = 0; i < MXW_ARRAY_LEN(sections); i++)
		if (!sections[i].named)
			check_bounds(sections[i].name, NULL, sections[i].keys, c, file, 0, errs);
	for (size_t i = 0; i < c->n_outputs; i++)
		check_bounds("output", c->outputs[i].name, output_keys, &c->outputs[i], file,
			     c->outputs[i].defined_line, errs);
	if (c->rules.block_base > c->rules.block_max)
		errlist_add(errs, file, 0, "[rules] block_base is longer than block_max");
	config_validate_syslog(c, errs);
	const struct rules_conf *r = &c->rules;
	if (r->score_defer > r->score_reject)
		errlist_add(errs, file, 0,
			    "[rules] score_defer (%g) is above score_reject (%g): the scores must rise from "
			    "defer to reject to drop",
			    r->score_defer, r->score_reject);
	if (r->score_reject > r->score_drop)
		errlist_add(errs, file, 0,
			    "[rules] score_reject (%g) is above score_drop (%g): the scores must rise from "
			    "defer to reject to drop",
			    r->score_reject, r->score_drop);
	for (size_t i = 0; i < c->n_outputs; i++) {
		struct output_conf *o = &c->outputs[i];
		/* whether the format exists is for emitters/ to say
		 * (emitters_check_config): its table is the only list */
		if (!o->format)
			errlist_add(errs, file, o->defined_line, "[output %s] has no format", o->name);
		if (!o->path)
			errlist_add(errs, file, o->defined_line, "[output %s] has no path", o->name);
		else if (o->path[0] != '/')
			errlist_add(
			    errs, file, o->defined_line,
			    "[output %s] path '%s' is relative: the file the firewall or MTA reads must "
			    "not depend on the directory mxwarden starts in (give an absolute path)",
			    o->name, o->path);
		if (!o->families)
			errlist_add(errs, file, o->defined_line, "[output %s] families is empty", o->name);
	}
	validate_reports(c, file, errs);
	for (size_t i = 0; i < c->n_parsers; i++) {
		struct parser_rule_conf *p = &c->parsers[i];
		if (!p->pattern)
			errlist_add(errs, p->file, p->line, "[parser %s] has no pattern", p->name);
		if (!p->category)
			errlist_add(errs, p->file, p->line, "[parser %s] has no category", p->name);
	}
	return errs->msgs.n == nerr0 ? 0 : -1;
}

void config_free(struct config *c)
{
	free(c->source);
	free(c->db_path);
	strv_free(&c->follow);
	strv_free(&c->journal);
	free(c->journal_directory);
	free(c->format);
	free(c->timezone);
	free(c->syslog_listen);
	strv_free(&c->syslog_allow);
	for (size_t i = 0; i < c->n_parsers; i++) {
		struct parser_rule_conf *p = &c->parsers[i];
		free(p->name);
		free(p->pattern);
		free(p->program);
		free(p->literal);
		free(p->category);
		free(p->kind);
		free(p->file);
	}
	free(c->parsers);
	prefix_list_free(&c->protected_add);
	prefix_list_free(&c->protected_cut);
	prefix_list_free(&c->protected_networks);
	strv_free(&c->protected_src);
	strv_free(&c->warnings);
	prefix_list_free(&c->allow);
	strv_free(&c->allow_files);
	free(c->postfix_config);
	free(c->exim_config);
	prefix_list_free(&c->trusted_nets);
	strv_free(&c->trusted_src);
	for (size_t i = 0; i < c->n_outputs; i++) {
		struct output_conf *o = &c->outputs[i];
		free(o->name);
		free(o->format);
		free(o->path);
		strv_free(&o->reload);
		free(o->set_name);
	}
	free(c->outputs);
	free(c->listen);
	free(c->token_file);
	free(c->assets_dir);
	free(c->lookup_url);
	free(c->blocklist_listen);
	free(c->blocklist_token_file);
	free(c->abuse.contacts);
	strv_free(&c->abuse.rdap_bootstrap);
	free(c->abuse.reporter_org);
	free(c->abuse.reporter_contact);
	free(c->abuse.reporter_domain);
	free(c->abuse.smtp);
	free(c->report.digest);
	free(c->report.dir);
	free(c->report.mail_to);
	strv_free(&c->notify.command);
	memset(c, 0, sizeof *c);
}

/* A text, list or command with nothing in it: no value a file could give. */
static bool key_unset(const struct key *k, const void *f)
{
	switch (k->type) {
	case K_STR:
	case K_CATEGORY:
	case K_KIND:
	case K_ADDRPORT: return *(char *const *)f == NULL;
	case K_STRLIST:
	case K_COMMAND: return ((const struct strv *)f)->n == 0;
	case K_PREFIXES: return ((const struct prefix_list *)f)->n == 0;
	default: return false;
	}
}

/* protected_networks as a value that reads back the same:
 * "default, local, !10.0.0.0/8, 203.0.113.0/24", or "none". */
static void dump_protected_spec(struct buf *out, const struct config *c)
{
	char tmp[PREFIX_STRLEN];
	if (!c->protected_builtin && !c->protected_local && !c->protected_add.n && !c->protected_cut.n) {
		buf_appends(out, "none");
		return;
	}
	buf_printf(out, "%s, %s", c->protected_builtin ? "default" : "!default",
		   c->protected_local ? "local" : "!local");
	for (size_t i = 0; i < c->protected_cut.n; i++) {
		prefix_format(&c->protected_cut.v[i], tmp);
		buf_printf(out, ", !%s", tmp);
	}
	for (size_t i = 0; i < c->protected_add.n; i++) {
		prefix_format(&c->protected_add.v[i], tmp);
		buf_printf(out, ", %s", tmp);
	}
}

static void dump_keys(struct buf *out, const struct key *keys, const void *base)
{
	for (const struct key *k = keys; k->name; k++) {
		const void *f = (const char *)base + k->off;
		char tmp[PREFIX_STRLEN];
		if (k->type == K_OBSOLETE)
			continue;
		if (key_unset(k, f)) { /* a comment: the dump stays a file that reads back */
			buf_printf(out, "# %s = %s\n", k->name,
				   k->def && k->def[0] == '(' ? k->def : "(unset)");
			continue;
		}
		buf_printf(out, "%s = ", k->name);
		switch (k->type) {
		case K_OBSOLETE: break;
		case K_STR:
		case K_CATEGORY:
		case K_KIND:
		case K_ADDRPORT: buf_appends(out, *(char *const *)f ? *(char *const *)f : ""); break;
		case K_BOOL: buf_appends(out, *(const bool *)f ? "yes" : "no"); break;
		case K_INT: buf_printf(out, "%lld", (long long)*(const int64_t *)f); break;
		case K_PERCENT: buf_printf(out, "%lld%%", (long long)*(const int64_t *)f); break;
		case K_DUR: {
			char d[32];
			duration_format(*(const int64_t *)f, d, sizeof d);
			buf_appends(out, d);
			break;
		}
		case K_DOUBLE: buf_printf(out, "%g", *(const double *)f); break;
		case K_PLEN4:
		case K_PLEN6: buf_printf(out, "%u", *(const unsigned *)f); break;
		case K_STRLIST:
		case K_COMMAND: {
			const struct strv *sv = f;
			for (size_t i = 0; i < sv->n; i++)
				buf_printf(out, "%s%s", i ? (k->type == K_COMMAND ? " " : ", ") : "",
					   sv->v[i]);
			break;
		}
		case K_PROTECTED: dump_protected_spec(out, base); break;
		case K_PREFIXES: {
			const struct prefix_list *l = f;
			for (size_t i = 0; i < l->n; i++) {
				prefix_format(&l->v[i], tmp);
				buf_printf(out, "%s%s", i ? ", " : "", tmp);
			}
			break;
		}
		case K_RESPONSE: buf_appends(out, response_name(*(const enum response *)f)); break;
		case K_FAMILIES: {
			unsigned fam = *(const unsigned *)f;
			buf_printf(out, "%s%s%s", fam & FAMILY_V4 ? "ipv4" : "",
				   (fam & FAMILY_V4) && (fam & FAMILY_V6) ? ", " : "",
				   fam & FAMILY_V6 ? "ipv6" : "");
			break;
		}
		case K_OSCOPE: buf_appends(out, *(const bool *)f ? "class" : "all"); break;
		case K_TRUST: {
			unsigned t = *(const unsigned *)f;
			buf_appends(out, t & TRUST_AUTO			     ? "auto"
					 : t == (TRUST_POSTFIX | TRUST_EXIM) ? "postfix, exim"
					 : t & TRUST_POSTFIX		     ? "postfix"
					 : t & TRUST_EXIM		     ? "exim"
									     : "none");
			break;
		}
		}
		buf_appendc(out, '\n');
	}
}

/* The effective protected list with the source of each entry, as
 * comments: "#   10.0.0.0/8  # built-in: RFC 1918 private". */
static void dump_protected(struct buf *out, const struct config *c)
{
	buf_printf(out, "# protected (never blocked): %zu\n", c->protected_networks.n);
	for (size_t i = 0; i < c->protected_networks.n; i++) {
		char p[PREFIX_STRLEN];
		prefix_format(&c->protected_networks.v[i], p);
		buf_printf(out, "#   %-18s # ", p);
		const char *src = i < c->protected_src.n ? c->protected_src.v[i] : "";
		buf_append_printable(out, src, strlen(src));
		buf_appendc(out, '\n');
	}
}

/* The clients the MTA trusts, as comments (the dump stays a valid file):
 * "#   203.0.113.0/28  # postfix mynetworks". */
static void dump_trusted(struct buf *out, const struct config *c)
{
	if (!c->mta_trusted)
		return;
	buf_printf(out, "# allow-listed because the MTA trusts them (mta_trusted): %zu\n", c->trusted_nets.n);
	for (size_t i = 0; i < c->trusted_nets.n; i++) {
		char p[PREFIX_STRLEN];
		prefix_format(&c->trusted_nets.v[i], p);
		buf_printf(out, "#   %-18s # ", p);
		const char *src = i < c->trusted_src.n ? c->trusted_src.v[i] : "";
		buf_append_printable(out, src, strlen(src));
		buf_appendc(out, '\n');
	}
}

void config_dump(const struct config *c, struct buf *out)
{
	for (size_t i = 0; i < MXW_ARRAY_LEN(sections); i++) {
		if (sections[i].sec == SEC_OUTPUT) {
			for (size_t j = 0; j < c->n_outputs; j++) {
				buf_printf(out, "[output %s]\n", c->outputs[j].name);
				dump_keys(out, sections[i].keys, &c->outputs[j]);
				buf_appendc(out, '\n');
			}
		} else if (sections[i].sec == SEC_PARSER) {
			for (size_t j = 0; j < c->n_parsers; j++) {
				buf_printf(out, "[parser %s]\n", c->parsers[j].name);
				dump_keys(out, sections[i].keys, &c->parsers[j]);
				buf_appendc(out, '\n');
			}
		} else if (sections[i].sec == SEC_ABUSE && !c->abuse.used) {
			buf_appends(out, "# [abuse] not set: no abuse reports\n\n");
		} else {
			buf_printf(out, "[%s]\n", sections[i].name);
			dump_keys(out, sections[i].keys, c);
			if (sections[i].sec == SEC_SAFETY) {
				dump_protected(out, c);
				dump_trusted(out, c);
			}
			buf_appendc(out, '\n');
		}
	}
}

/* A bound of k for the reference: "" when it has none. */
static void bounds_doc(const struct key *k, struct buf *out)
{
	char a[32], b[32];
	if (k->lim.lo > k->lim.hi)
		return;
	bound_format(k, k->lim.lo, a, sizeof a);
	bound_format(k, k->lim.hi, b, sizeof b);
	if (isinf(k->lim.hi))
		buf_printf(out, "at least %s", a);
	else if (isinf(k->lim.lo))
		buf_printf(out, "at most %s", b);
	else
		buf_printf(out, "%s to %s", a, b);
}

void config_keys(struct buf *out, bool tsv)
{
	for (size_t i = 0; i < MXW_ARRAY_LEN(sections); i++) {
		const char *sec = sections[i].name;
		if (!tsv)
			buf_printf(
			    out, "%s#### [%s%s]\n\n| key | value | default | meaning |\n|---|---|---|---|\n",
			    i ? "\n" : "", sec, sections[i].named ? " NAME" : "");
		for (const struct key *k = sections[i].keys; k->name; k++) {
			struct buf lim = BUF_INIT;
			bounds_doc(k, &lim);
			const char *def = k->def ? k->def : "";
			if (tsv) {
				buf_printf(out, "%s\t%s\t%s\t%s\t%s\t%s\n", sec, k->name, ktype_doc[k->type],
					   def, buf_str(&lim), k->help);
			} else {
				buf_printf(out, "| `%s` | %s%s%s | ", k->name, ktype_doc[k->type],
					   lim.len ? ", " : "", buf_str(&lim));
				if (k->def && k->def[0] == '(')
					buf_printf(out, "%s", def);
				else if (k->def)
					buf_printf(out, "`%s`", def);
				buf_printf(out, " | %s |\n", k->help);
			}
			buf_free(&lim);
		}
	}
}
