/*
 * emit_int.h - internal to emitters/: the format table entries and the
 * helpers the per-format files share. Nothing outside emitters/ includes it.
 */
#ifndef MXWARDEN_EMIT_INT_H
#define MXWARDEN_EMIT_INT_H

#include <sys/types.h>

#include "emitters/emitters.h"

extern const struct emit_format emit_format_ipset;
extern const struct emit_format emit_format_nft;
extern const struct emit_format emit_format_iptables;
extern const struct emit_format emit_format_ip6tables;
extern const struct emit_format emit_format_postfix;
extern const struct emit_format emit_format_postscreen;
extern const struct emit_format emit_format_rbldnsd;
extern const struct emit_format emit_format_rbldnsd6;
extern const struct emit_format emit_format_plain;
extern const struct emit_format emit_format_json;

/* The comment every text format starts with (prefix is "#" or ";"...). */
void emit_header(struct buf *out, const char *lead, const char *format, const struct emit_ctx *ctx, size_t n);

/* Seconds until d expires at ctx->now, clamped to [1, EMIT_MAX_TIMEOUT]. */
int64_t emit_timeout(const struct emit_ctx *ctx, const struct decision *d);

/* "mxwarden rule: reason see URL", at most max bytes: rule and reason sanitized
 * and cut to leave room for the URL (dropped only when it would not leave
 * 24 bytes of text). */
void emit_text(struct buf *out, const struct emit_ctx *ctx, const struct decision *d, size_t max,
	       bool dollar);

/*
 * Shared validation: text must be printable ASCII plus tab, end with a
 * newline (or be empty), and each line must either start with comment_lead
 * (NULL: no comments), or match entry_re, an entry line whose blank-
 * separated field number prefix_field (from 0, leading blanks skipped) must
 * be a canonical prefix, or match other_re (NULL: none), the format's fixed
 * lines. Expressions are POSIX extended, anchored with ^...$, matched
 * without subexpressions (glibc is an order of magnitude faster so).
 * Returns 0, or -1 with "line N: ..." appended to err.
 */
int emit_validate_lines(const char *text, size_t len, struct buf *err, const char *comment_lead,
			const char *entry_re, int prefix_field, const char *other_re);

/* True when the text t[0..n) is the canonical rendering of a prefix (or of
 * an address: host prefixes may be written bare). */
bool emit_is_canonical_prefix(const char *t, size_t n);

/*
 * One output's reload command (base's struct child): at most one at a time,
 * in its own process group, stderr collected, killed with its whole group
 * at the deadline. pending: a rewrite came while it ran, run once more when
 * it ends.
 */
struct emit_reload {
	struct child ch;
	bool pending;
};
/* Start argv with timeout seconds. Returns 0, or -1 when it cannot start
 * (logged). name is the output's name, for messages. */
int emit_reload_start(struct emit_reload *r, const struct strv *argv, int64_t timeout, const char *name,
		      struct emit_output_stats *st);
/* Reap or kill as due. Returns true when a child ended in this call. */
bool emit_reload_poll(struct emit_reload *r, const char *name, struct emit_output_stats *st);
/* SIGKILL the group of a running child and reap it (blocking, short). */
void emit_reload_kill(struct emit_reload *r);

#endif
