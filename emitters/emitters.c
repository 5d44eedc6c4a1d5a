/*
 * emitters.c - the format table, rendering on demand (export, the web's
 * blocklist endpoint) and the stateful outputs of `mxwarden run`: filter,
 * render, validate, write atomically when the content changed, reload.
 *
 * It must never write a file its own validator rejects, and never block the
 * engine on a reload command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "emitters/emit_int.h"

static const struct emit_format *const formats[] = {
    &emit_format_ipset,	  &emit_format_nft,	   &emit_format_iptables, &emit_format_ip6tables,
    &emit_format_postfix, &emit_format_postscreen, &emit_format_rbldnsd,  &emit_format_rbldnsd6,
    &emit_format_plain,	  &emit_format_json,
};

const struct emit_format *emit_format_find(const char *name)
{
	for (size_t i = 0; i < MXW_ARRAY_LEN(formats); i++)
		if (strcmp(formats[i]->name, name) == 0)
			return formats[i];
	return NULL;
}

const struct emit_format *const *emit_formats(size_t *n)
{
	*n = MXW_ARRAY_LEN(formats);
	return formats;
}

void emit_format_names(struct buf *out)
{
	for (size_t i = 0; i < MXW_ARRAY_LEN(formats); i++)
		buf_printf(out, "%s%s", i ? ", " : "", formats[i]->name);
}

int emitters_check_config(const struct config *c, struct errlist *errs)
{
	size_t nerr0 = errs->msgs.n;
	const char *file = c->source ? c->source : "(defaults)";
	for (size_t i = 0; i < c->n_outputs; i++) {
		const struct output_conf *o = &c->outputs[i];
		if (!o->format || emit_format_find(o->format))
			continue; /* a missing format is config_validate()'s */
		struct buf names = BUF_INIT;
		emit_format_names(&names);
		errlist_add(errs, file, o->defined_line, "[output %s] unknown format '%s' (%s)", o->name,
			    o->format, buf_str(&names));
		buf_free(&names);
	}
	return errs->msgs.n == nerr0 ? 0 : -1;
}

/* ipset/nft names and iptables chains: a letter, then letters, digits or
 * '_', at most 24 (ipset adds "4-new" within its 31). */
static bool set_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 24 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

static void select_for(struct emit_select *sel, const struct emit_format *f, const struct output_conf *o)
{
	memset(sel, 0, sizeof *sel);
	sel->families = f->families & (o ? o->families : (FAMILY_V4 | FAMILY_V6));
	sel->class_only = o ? o->class_only : false;
	sel->min_response = o ? o->min_response : RESP_DEFER;
	sel->no_overlap = f->no_overlap;
	sel->longest_first = f->longest_first;
}

int emitters_render(const char *format, const struct decision *d, size_t n, const struct config *c,
		    const struct prefix_list *allows, int64_t now, struct buf *out, struct buf *err)
{
	const struct emit_format *f = emit_format_find(format);
	if (!f) {
		buf_printf(err, "unknown format '%s' (", format);
		emit_format_names(err);
		buf_appendc(err, ')');
		return -1;
	}
	const struct output_conf *o = NULL;
	for (size_t i = 0; i < c->n_outputs && !o; i++)
		if (c->outputs[i].format && strcmp(c->outputs[i].format, format) == 0)
			o = &c->outputs[i];
	const char *set = o && o->set_name ? o->set_name : "mxwarden";
	if (!set_name_ok(set)) {
		buf_printf(err,
			   "[output %s] set '%s' must be a letter then letters, digits or '_' (at most 24)",
			   o->name, set);
		return -1;
	}
	struct emit_safety s;
	if (emit_safety_init(&s, c, err) < 0) {
		emit_safety_free(&s);
		return -1;
	}
	emit_safety_set_allows(&s, allows);
	struct emit_select sel;
	select_for(&sel, f, o);
	const struct decision **v;
	struct emit_stats st;
	size_t m = emit_filter(&s, &sel, d, n, now, &v, &st);
	struct buf url = BUF_INIT;
	emit_lookup_template(c, &url);
	struct emit_ctx ctx = {
	    .set_name = set, .lookup_url = buf_str(&url), .now = now, .max_entries = s.max_entries};
	f->render(&ctx, v, m, out);
	if (st.capped)
		log_warn("%s: %zu entries over max_entries (%zu) left out; the strongest are kept", format,
			 st.capped, s.max_entries);
	free(v);
	buf_free(&url);
	emit_safety_free(&s);
	return 0;
}

/* ------------------------------------------------------ stateful outputs */

#define RETRY_SECS 30
/* Reloads of one output start at most once a second: a burst of rewrites
 * gives one run now and one for the last state. */
#define RELOAD_MIN_INTERVAL_US 1000000

struct out_state {
	const struct output_conf *oc;
	const struct emit_format *fmt;
	const char *set_name;
	bool written; /* the file holds the text of fingerprint */
	uint64_t fingerprint;
	int64_t retry_at;   /* after a failed write: try again then */
	int64_t next_due;   /* earliest until among emitted entries */
	int64_t refresh_at; /* a capped timeout must be rewritten by then */
	struct emit_reload rl;
	int64_t last_reload_mono; /* start of the last reload, 0 = none yet */
	int64_t status_seen;	  /* the loader's PATH.status last read: its mtime in ns (0 = none) */
	struct emit_output_stats st;
	/* circuit breaker: the entries of the file as last written (sorted by
	 * prefix_cmp), and the state of a held change */
	struct prev_entry *prev;
	size_t n_prev;
	bool prev_known; /* prev holds what the file holds */
	bool held;	 /* the breaker is open: the old file is kept */
	bool force;	 /* the next update is deliberate: no breaker */
	int64_t held_since;
	int64_t confirms; /* later updates that still proposed a tripping change */
};

struct prev_entry {
	struct prefix p;
	int64_t until;
};

/* The [safety] breaker settings, copied. */
struct breaker_conf {
	int64_t max_change, breaker_min, breaker_hold, breaker_confirm;
};

struct emitters {
	struct breaker_conf bk;
	struct output_conf *confs; /* own copies of the [output] sections */
	struct emit_safety safety;
	struct buf url;
	struct out_state *o;
	size_t n;
	struct buf text, err;
	bool new_db; /* see emitters_set_new_database() */
};

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void oc_copy(struct output_conf *dst, const struct output_conf *src)
{
	*dst = *src;
	dst->name = dup_or_null(src->name);
	dst->format = dup_or_null(src->format);
	dst->path = dup_or_null(src->path);
	dst->set_name = dup_or_null(src->set_name);
	memset(&dst->reload, 0, sizeof dst->reload);
	for (size_t i = 0; i < src->reload.n; i++)
		strv_add(&dst->reload, src->reload.v[i]);
}

static void oc_free(struct output_conf *o)
{
	free(o->name);
	free(o->format);
	free(o->path);
	free(o->set_name);
	strv_free(&o->reload);
}

struct emitters *emitters_new(const struct config *c, struct buf *err)
{
	struct emitters *em = xcalloc(1, sizeof *em);
	em->bk = (struct breaker_conf){c->max_change, c->breaker_min, c->breaker_hold, c->breaker_confirm};
	em->confs = xcalloc(c->n_outputs ? c->n_outputs : 1, sizeof *em->confs);
	for (size_t i = 0; i < c->n_outputs; i++)
		oc_copy(&em->confs[i], &c->outputs[i]);
	int rc = emit_safety_init(&em->safety, c, err);
	emit_lookup_template(c, &em->url);
	em->n = c->n_outputs;
	em->o = xcalloc(em->n ? em->n : 1, sizeof *em->o);
	for (size_t i = 0; i < em->n; i++) {
		struct out_state *o = &em->o[i];
		o->oc = &em->confs[i];
		o->fmt = o->oc->format ? emit_format_find(o->oc->format) : NULL;
		o->set_name = o->oc->set_name ? o->oc->set_name : "mxwarden";
		o->rl.ch.errfd = -1;
		o->next_due = INT64_MAX;
		o->refresh_at = INT64_MAX;
		o->retry_at = INT64_MAX;
		if (!o->fmt) {
			buf_printf(err, "%s[output %s] unknown format '%s'", rc ? "; " : "", o->oc->name,
				   o->oc->format ? o->oc->format : "");
			rc = -1;
		} else if (!set_name_ok(o->set_name)) {
			buf_printf(err,
				   "%s[output %s] set '%s' must be a letter then letters, digits or '_' (at "
				   "most 24)",
				   rc ? "; " : "", o->oc->name, o->set_name);
			rc = -1;
		} else if (!(o->fmt->families & o->oc->families)) {
			buf_printf(err, "%s[output %s] format %s carries %s only, which families leaves out",
				   rc ? "; " : "", o->oc->name, o->fmt->name,
				   o->fmt->families == FAMILY_V4 ? "IPv4" : "IPv6");
			rc = -1;
		} else if (!o->oc->path) {
			buf_printf(err, "%s[output %s] has no path", rc ? "; " : "", o->oc->name);
			rc = -1;
		} else {
			for (size_t j = 0; j < i; j++)
				if (em->o[j].oc->path && strcmp(em->o[j].oc->path, o->oc->path) == 0) {
					buf_printf(
					    err, "%s[output %s] writes the same file as [output %s]: %s",
					    rc ? "; " : "", o->oc->name, em->o[j].oc->name, o->oc->path);
					rc = -1;
				}
			/* temp files of a write that was killed before its rename */
			emit_clean_temp(o->oc->path);
		}
	}
	if (rc < 0) {
		emitters_free(em);
		return NULL;
	}
	return em;
}

void emitters_free(struct emitters *em)
{
	if (!em)
		return;
	for (size_t i = 0; i < em->n; i++) {
		emit_reload_kill(&em->o[i].rl);
		child_free(&em->o[i].rl.ch);
		free(em->o[i].prev);
	}
	for (size_t i = 0; i < em->n; i++)
		oc_free(&em->confs[i]);
	free(em->confs);
	free(em->o);
	emit_safety_free(&em->safety);
	buf_free(&em->url);
	buf_free(&em->text);
	buf_free(&em->err);
	free(em);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* What the file says, minus the clock: two selections with the same
 * fingerprint render the same file apart from relative timeouts and the
 * generation time. */
static uint64_t fingerprint(const struct decision *const *v, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	h = fnv(h, &n, sizeof n);
	for (size_t i = 0; i < n; i++) {
		const struct decision *d = v[i];
		h = fnv(h, &d->prefix.addr, sizeof d->prefix.addr);
		h = fnv(h, &d->prefix.len, sizeof d->prefix.len);
		int r = d->response, s = d->scope;
		h = fnv(h, &r, sizeof r);
		h = fnv(h, &s, sizeof s);
		h = fnv(h, &d->since, sizeof d->since);
		h = fnv(h, &d->until, sizeof d->until);
		h = fnv(h, &d->manual, sizeof d->manual);
		h = fnv(h, d->rule, strnlen(d->rule, sizeof d->rule));
		h = fnv(h, "\0", 1);
		h = fnv(h, d->reason, strnlen(d->reason, sizeof d->reason));
		h = fnv(h, "\0", 1);
	}
	return h;
}

const char *emit_reload_status_name(enum emit_reload_status s)
{
	static const char *const names[] = {"none", "running", "ok", "failed", "killed"};
	return (unsigned)s < MXW_ARRAY_LEN(names) ? names[s] : "none";
}

static void run_reload(struct out_state *o)
{
	o->rl.pending = false;
	o->last_reload_mono = clock_mono_us();
	emit_reload_start(&o->rl, &o->oc->reload, o->oc->reload_timeout, o->oc->name, &o->st);
	o->st.reload_status = o->rl.ch.pid > 0 ? EMIT_RELOAD_RUNNING : EMIT_RELOAD_FAILED;
	o->st.last_reload = clock_now();
}

static bool reload_may_start(const struct out_state *o)
{
	return o->rl.ch.pid <= 0 &&
	       (o->last_reload_mono == 0 || clock_mono_us() - o->last_reload_mono >= RELOAD_MIN_INTERVAL_US);
}

static void start_reload(struct out_state *o)
{
	if (o->oc->reload.n == 0)
		return;
	if (!reload_may_start(o)) {
		o->st.reloads_coalesced++;
		o->rl.pending = true;
		return;
	}
	run_reload(o);
}

static int prev_cmp(const void *a, const void *b)
{
	return prefix_cmp(&((const struct prev_entry *)a)->p, &((const struct prev_entry *)b)->p);
}

/* The entries v[0..m) as a sorted array (NULL when m is 0). */
static struct prev_entry *entries_of(const struct decision *const *v, size_t m)
{
	if (m == 0)
		return NULL;
	struct prev_entry *e = xcalloc(m, sizeof *e);
	for (size_t i = 0; i < m; i++) {
		e[i].p = v[i]->prefix;
		e[i].until = v[i]->until;
	}
	qsort(e, m, sizeof *e, prev_cmp);
	return e;
}

/* Entries in exactly one of the two sorted sets. */
static size_t entries_diff(const struct prev_entry *a, size_t na, const struct prev_entry *b, size_t nb)
{
	size_t i = 0, j = 0, d = 0;
	while (i < na && j < nb) {
		int c = prefix_cmp(&a[i].p, &b[j].p);
		if (c == 0) {
			i++;
			j++;
		} else if (c < 0) {
			i++;
			d++;
		} else {
			j++;
			d++;
		}
	}
	return d + (na - i) + (nb - j);
}

static size_t count_lines(const char *p, size_t n)
{
	size_t k = 0;
	for (const char *q = p; (q = memchr(q, '\n', n - (size_t)(q - p))) != NULL; q++)
		k++;
	return k;
}

/* Does the output's file list entries? Every format writes one line per
 * entry around a fixed frame (whose header may carry the time), so: more
 * lines than this format writes for no entry at all. */
static bool file_lists_entries(struct emitters *em, const struct out_state *o)
{
	FILE *fp = fopen(o->oc->path, "r");
	if (!fp)
		return false;
	size_t lines = 0, k;
	char chunk[8192];
	while ((k = fread(chunk, 1, sizeof chunk, fp)) > 0)
		lines += count_lines(chunk, k);
	fclose(fp);
	struct emit_ctx ctx = {.set_name = o->set_name, .lookup_url = buf_str(&em->url), .now = 0};
	struct buf empty = BUF_INIT;
	o->fmt->render(&ctx, NULL, 0, &empty);
	size_t frame = count_lines(empty.data ? empty.data : "", empty.len);
	buf_free(&empty);
	return lines > frame;
}

/*
 * The circuit breaker ([safety] max_change, breaker_min, breaker_hold,
 * breaker_confirm). Returns true when the update proposing next[0..m) (of
 * n decisions in all) must not be written now.
 */
static bool breaker_holds(struct emitters *em, struct out_state *o, const struct prev_entry *next, size_t m,
			  size_t n, int64_t now)
{
	const struct breaker_conf *c = &em->bk;
	if (c->max_change <= 0 || o->force) {
		if (o->held)
			o->st.breaker_released++;
		o->held = false;
		o->st.breaker_open = false;
		return false;
	}
	const char *why = NULL;
	size_t diff = 0;
	char whybuf[160];
	if (o->prev_known) {
		diff = entries_diff(o->prev, o->n_prev, next, m);
		bool live = false; /* entries that would vanish before their time */
		for (size_t i = 0; i < o->n_prev && !live; i++)
			live = o->prev[i].until > now;
		if (n == 0 && m == 0 && o->n_prev > 0 && live) {
			why = "the decision set came back EMPTY while the file holds unexpired entries";
		} else if (o->n_prev >= (size_t)c->breaker_min && c->max_change < 100 &&
			   (uint64_t)diff * 100 > (uint64_t)c->max_change * o->n_prev) {
			snprintf(whybuf, sizeof whybuf,
				 "%zu of its %zu entries would change (over max_change %lld%%)", diff,
				 o->n_prev, (long long)c->max_change);
			why = whybuf;
		}
	}
	/* At start nothing is known of the file's entries (when they expire):
	 * an empty set after a long stop is normal, so there is no check, unless
	 * the database itself is new: then an empty set says nothing about the
	 * blocks the file lists. */
	if (!o->prev_known && em->new_db && n == 0 && m == 0 && file_lists_entries(em, o))
		why = "the database is NEW and holds no decisions, while the file still lists entries";
	if (!why) {
		if (o->held)
			log_info("output %s: circuit breaker closed: the change is back within bounds",
				 o->oc->name);
		o->held = false;
		o->st.breaker_open = false;
		return false;
	}
	if (!o->held) {
		o->held = true;
		o->held_since = now;
		o->confirms = 0;
		o->st.breaker_open = true;
		o->st.breaker_trips++;
		o->st.breaker_change = diff;
		log_error(
		    "output %s: CIRCUIT BREAKER OPEN: %s; keeping the old %s for up to %lld s or %lld more "
		    "update(s) proposing such a change",
		    o->oc->name, why, o->oc->path, (long long)c->breaker_hold, (long long)c->breaker_confirm);
		return true;
	}
	o->confirms++;
	o->st.breaker_change = diff;
	bool confirmed = c->breaker_confirm > 0 && o->confirms >= c->breaker_confirm;
	if (confirmed || now >= o->held_since + c->breaker_hold) {
		log_warn("output %s: circuit breaker released (%s): writing the change (%s)", o->oc->name,
			 confirmed ? "confirmed by consecutive updates" : "hold time over", why);
		o->held = false;
		o->st.breaker_open = false;
		o->st.breaker_released++;
		return false;
	}
	log_error("output %s: circuit breaker still open (%lld update(s) so far): %s", o->oc->name,
		  (long long)o->confirms, why);
	return true;
}

static int update_one(struct emitters *em, struct out_state *o, const struct decision *d, size_t n,
		      int64_t now)
{
	struct emit_select sel;
	select_for(&sel, o->fmt, o->oc);
	const struct decision **v;
	struct emit_stats st;
	size_t m = emit_filter(&em->safety, &sel, d, n, now, &v, &st);
	uint64_t fp = fingerprint(v, m);
	int64_t due = INT64_MAX, refresh = INT64_MAX;
	for (size_t i = 0; i < m; i++) {
		due = MXW_MIN(due, v[i]->until);
		if (o->fmt->relative_time && v[i]->until - now > EMIT_MAX_TIMEOUT)
			refresh = now + EMIT_MAX_TIMEOUT - 3600;
	}
	if (o->written && fp == o->fingerprint && now < o->refresh_at) {
		if (o->held)
			log_info("output %s: circuit breaker closed: the decisions are back to the written "
				 "version",
				 o->oc->name);
		o->held = false;
		o->st.breaker_open = false;
		o->retry_at = INT64_MAX;
		free(v);
		return 0;
	}
	struct prev_entry *next = entries_of(v, m);
	if (breaker_holds(em, o, next, m, n, now)) {
		free(next);
		free(v);
		/* come back when the hold time is over */
		o->retry_at = o->held_since + em->bk.breaker_hold;
		return -1;
	}
	if (st.capped)
		log_warn(
		    "output %s: %zu entries over max_entries (%zu) LEFT OUT; only the strongest are written",
		    o->oc->name, st.capped, em->safety.max_entries);
	if (st.floor || st.allowed || st.protect || st.bad)
		log_warn(
		    "output %s: refused %zu shorter than the floor, %zu allow-listed, %zu protected, %zu "
		    "malformed decisions",
		    o->oc->name, st.floor, st.allowed, st.protect, st.bad);
	struct emit_ctx ctx = {.set_name = o->set_name,
			       .lookup_url = buf_str(&em->url),
			       .now = now,
			       .max_entries = em->safety.max_entries};
	buf_reset(&em->text);
	o->fmt->render(&ctx, v, m, &em->text);
	free(v);
	buf_reset(&em->err);
	if (o->fmt->validate(em->text.data ? em->text.data : "", em->text.len, &em->err) < 0) {
		log_error("output %s: rendered %s text fails validation, not written: %s", o->oc->name,
			  o->fmt->name, buf_str(&em->err));
		goto failed;
	}
	bool changed = false;
	if (emit_write_atomic(o->oc->path, em->text.data ? em->text.data : "", em->text.len, &changed) < 0)
		goto failed;
	bool first = !o->written;
	o->written = true;
	free(o->prev);
	o->prev = next;
	o->n_prev = m;
	o->prev_known = true;
	o->force = false;
	o->fingerprint = fp;
	o->next_due = due;
	o->refresh_at = refresh;
	o->retry_at = INT64_MAX;
	o->st.entries = m;
	o->st.last = st;
	if (changed) {
		o->st.writes++;
		o->st.last_write = now;
		log_info("output %s: wrote %zu entries to %s", o->oc->name, m, o->oc->path);
	}
	if (changed || first)
		start_reload(o);
	return changed ? 1 : 0;
failed:
	free(next);
	/* logged once per attempt; the next attempt comes with the next change
	 * or RETRY_SECS later, not on every tick */
	o->st.write_errors++;
	o->written = false;
	o->retry_at = now + RETRY_SECS;
	return -1;
}

int emitters_update(struct emitters *em, const struct decision *d, size_t n, int64_t now)
{
	emitters_poll(em);
	int written = 0, rc = 0;
	for (size_t i = 0; i < em->n; i++) {
		int k = update_one(em, &em->o[i], d, n, now);
		if (k < 0)
			rc = -1;
		else
			written += k;
	}
	return rc < 0 ? -1 : written;
}

/* The root-run loader's result (PATH.status, emitters.h) is this output's
 * reload result: read when it changed. */
static void status_poll(struct out_state *o)
{
	struct buf sp = BUF_INIT;
	emit_status_path(o->oc->path, &sp);
	struct stat st;
	int r = stat(buf_str(&sp), &st);
	buf_free(&sp);
	if (r < 0)
		return;
	int64_t m = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (m == o->status_seen)
		return;
	o->status_seen = m;
	struct emit_status s;
	if (emit_status_read(o->oc->path, &s) < 0)
		return;
	o->st.reload_status = s.ok ? EMIT_RELOAD_OK : EMIT_RELOAD_FAILED;
	o->st.last_reload = s.time;
	if (s.ok) {
		log_info("[output %s]: loaded by %s", o->oc->name, s.command);
	} else {
		o->st.reloads_failed++;
		log_warn("[output %s]: the loader failed: %s: %s", o->oc->name, s.command, s.message);
	}
}

void emitters_poll(struct emitters *em)
{
	for (size_t i = 0; i < em->n; i++) {
		struct out_state *o = &em->o[i];
		uint64_t failed = o->st.reloads_failed, killed = o->st.reloads_killed;
		if (emit_reload_poll(&o->rl, o->oc->name, &o->st)) {
			o->st.reload_status = o->st.reloads_killed > killed   ? EMIT_RELOAD_KILLED
					      : o->st.reloads_failed > failed ? EMIT_RELOAD_FAILED
									      : EMIT_RELOAD_OK;
			o->st.last_reload = clock_now();
		}
		if (o->rl.pending && reload_may_start(o))
			run_reload(o);
		if (o->oc->reload.n == 0)
			status_poll(o);
	}
}

int64_t emitters_next_due(const struct emitters *em)
{
	int64_t t = INT64_MAX;
	for (size_t i = 0; i < em->n; i++) {
		t = MXW_MIN(t, em->o[i].next_due);
		t = MXW_MIN(t, em->o[i].refresh_at);
		t = MXW_MIN(t, em->o[i].retry_at);
	}
	return t;
}

size_t emitters_busy(const struct emitters *em)
{
	size_t k = 0;
	for (size_t i = 0; i < em->n; i++)
		k += (em->o[i].rl.ch.pid > 0) + em->o[i].rl.pending;
	return k;
}

int emitters_drain(struct emitters *em, int64_t timeout_ms)
{
	int64_t end = clock_mono_us() + timeout_ms * 1000;
	for (;;) {
		emitters_poll(em);
		if (emitters_busy(em) == 0)
			return 0;
		if (clock_mono_us() >= end)
			return -1;
		usleep(5000);
	}
}

const struct emit_output_stats *emitters_stats(const struct emitters *em, size_t i)
{
	return i < em->n ? &em->o[i].st : NULL;
}

const char *emitters_output_name(const struct emitters *em, size_t i)
{
	return i < em->n ? em->confs[i].name : NULL;
}

size_t emitters_breakers_open(const struct emitters *em)
{
	size_t k = 0;
	for (size_t i = 0; i < em->n; i++)
		k += em->o[i].held;
	return k;
}

void emitters_breaker_release(struct emitters *em)
{
	for (size_t i = 0; i < em->n; i++) {
		struct out_state *o = &em->o[i];
		o->force = true;
		if (o->held) {
			o->retry_at = INT64_MIN; /* due now */
			log_warn("output %s: circuit breaker released by request: the next update is written",
				 o->oc->name);
		}
	}
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int emitters_reconfigure(struct emitters *em, const struct config *c)
{
	struct buf err = BUF_INIT;
	struct emitters *nw = emitters_new(c, &err);
	if (!nw) {
		log_error("SIGHUP: outputs: %s; keeping the running outputs", buf_str(&err));
		buf_free(&err);
		return -1;
	}
	buf_free(&err);
	bool *kept = xcalloc(em->n ? em->n : 1, sizeof *kept);
	for (size_t i = 0; i < nw->n; i++) {
		struct out_state *n = &nw->o[i];
		struct out_state *old = NULL;
		for (size_t j = 0; j < em->n && !old; j++)
			if (!kept[j] && same_str(em->o[j].oc->name, n->oc->name))
				old = &em->o[j], kept[j] = true;
		if (old && same_str(old->oc->path, n->oc->path) && old->fmt == n->fmt &&
		    same_str(old->set_name, n->set_name)) {
			/* the same file: keep its state (written version, breaker,
			 * counters, a running reload); a changed selection shows as
			 * a changed fingerprint at the next update */
			const struct output_conf *oc = n->oc;
			const char *set = n->set_name;
			const struct emit_format *fmt = n->fmt;
			*n = *old;
			n->oc = oc;
			n->set_name = set;
			n->fmt = fmt;
			n->retry_at = INT64_MIN; /* re-filter with the new settings now */
			memset(old, 0, sizeof *old);
			old->rl.ch.errfd = -1;
			continue;
		}
		if (old)
			log_info("SIGHUP: output %s now writes %s as %s (was %s as %s)", n->oc->name,
				 n->oc->path, n->fmt->name, old->oc->path, old->fmt->name);
		else
			log_info("SIGHUP: new output %s: %s as %s", n->oc->name, n->oc->path, n->fmt->name);
		n->retry_at = INT64_MIN; /* due now */
	}
	for (size_t j = 0; j < em->n; j++)
		if (!kept[j])
			log_info("SIGHUP: output %s removed; %s is left as it is", em->o[j].oc->name,
				 em->o[j].oc->path);
	free(kept);
	emit_safety_set_allows(&nw->safety, &em->safety.allow_manual);
	/* swap the new state in; emitters_free kills the reloads of outputs
	 * that are gone or changed and frees the old settings */
	struct emitters tmp = *em;
	*em = *nw;
	*nw = tmp;
	emitters_free(nw);
	return 0;
}

static void metric_label(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			buf_appendc(b, '\\');
		if (*s == '\n')
			buf_appends(b, "\\n");
		else if ((unsigned char)*s >= ' ')
			buf_appendc(b, *s);
	}
}

void emitters_metrics(const struct emitters *em, struct buf *out)
{
	static const struct {
		const char *name, *type, *help;
	} m[] = {
	    {"mxwarden_output_breaker_open", "gauge",
	     "1 while the output's circuit breaker holds its old file"},
	    {"mxwarden_output_breaker_trips_total", "counter", "times the circuit breaker opened"},
	    {"mxwarden_output_entries", "gauge", "entries in the output as last written"},
	    {"mxwarden_output_writes_total", "counter", "rewrites of the output file"},
	    {"mxwarden_output_last_write_timestamp_seconds", "gauge",
	     "when the file was last rewritten (0: not since the start)"},
	    {"mxwarden_output_write_errors_total", "counter", "failed writes (old file kept)"},
	    {"mxwarden_output_reloads_failed_total", "counter", "reload commands that failed or were killed"},
	    {"mxwarden_output_reload_status", "gauge",
	     "1, with the last reload command's status: none, running, ok, failed or killed"},
	    {"mxwarden_output_last_reload_timestamp_seconds", "gauge",
	     "when the last reload command ended (started, while it runs; 0: none)"},
	};
	for (size_t k = 0; k < MXW_ARRAY_LEN(m); k++) {
		buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help, m[k].name, m[k].type);
		for (size_t i = 0; i < em->n; i++) {
			const struct emit_output_stats *st = &em->o[i].st;
			int64_t v = 0;
			switch (k) {
			case 0: v = em->o[i].held; break;
			case 1: v = (int64_t)st->breaker_trips; break;
			case 2: v = (int64_t)st->entries; break;
			case 3: v = (int64_t)st->writes; break;
			case 4: v = st->last_write; break;
			case 5: v = (int64_t)st->write_errors; break;
			case 6: v = (int64_t)st->reloads_failed; break; /* killed ones included */
			case 7: v = 1; break;
			default: v = st->last_reload; break;
			}
			buf_printf(out, "%s{output=\"", m[k].name);
			metric_label(out, em->o[i].oc->name ? em->o[i].oc->name : "");
			if (k == 7)
				buf_printf(out, "\",status=\"%s", emit_reload_status_name(st->reload_status));
			buf_printf(out, "\"} %lld\n", (long long)v);
		}
	}
}

bool emitters_set_allows(struct emitters *em, const struct prefix_list *l)
{
	const struct prefix_list *cur = &em->safety.allow_manual;
	size_t n = l ? l->n : 0;
	bool same = cur->n == n;
	for (size_t i = 0; same && i < n; i++)
		same = prefix_cmp(&cur->v[i], &l->v[i]) == 0;
	if (same)
		return false;
	emit_safety_set_allows(&em->safety, l);
	/* a deliberate change, like export -o: written whatever it changes */
	for (size_t i = 0; i < em->n; i++) {
		em->o[i].force = true;
		em->o[i].retry_at = INT64_MIN;
	}
	return true;
}

void emitters_set_new_database(struct emitters *em, bool is_new)
{
	if (em)
		em->new_db = is_new;
}

void emitters_enforcement_warnings(const struct config *c, struct strv *out)
{
	if (c->n_outputs == 0) {
		strv_add(out, "no [output] is configured: decisions are stored and shown, but no blocklist "
			      "carries them (nothing is enforced)");
		return;
	}
	if (c->rules.dry_run)
		strv_add(out, "[rules] dry_run is on: automatic decisions are stored and explained, but no "
			      "blocklist carries them (manual blocks are written)");
	unsigned fam = 0;
	bool ip_scope = false;
	enum response lowest = RESP_DROP;
	for (size_t i = 0; i < c->n_outputs; i++) {
		fam |= c->outputs[i].families;
		ip_scope |= !c->outputs[i].class_only;
		if (c->outputs[i].min_response < lowest)
			lowest = c->outputs[i].min_response;
	}
	if (!(fam & FAMILY_V4))
		strv_add(out,
			 "no [output] carries IPv4 (families): decisions on IPv4 senders are not enforced");
	if (!(fam & FAMILY_V6))
		strv_add(out,
			 "no [output] carries IPv6 (families): decisions on IPv6 senders are not enforced");
	if (!ip_scope)
		strv_add(out,
			 "every [output] has scope = class: decisions on single addresses are not enforced");
	if (lowest > RESP_DEFER) {
		struct buf b = BUF_INIT;
		buf_printf(&b,
			   "every [output] has min_response %s or more: decisions with a lighter response "
			   "(defer%s) are not enforced",
			   response_name(lowest), lowest > RESP_REJECT ? ", reject" : "");
		strv_add(out, buf_str(&b));
		buf_free(&b);
	}
}

static json_t *time_or_null(int64_t t)
{
	if (!t)
		return json_null();
	char b[TIME_STRLEN];
	time_format_rfc3339(t * 1000000, false, b);
	return json_string(b);
}

json_t *emitters_status_json(const struct emitters *em)
{
	json_t *a = json_array();
	for (size_t i = 0; em && i < em->n; i++) {
		const struct out_state *o = &em->o[i];
		const struct emit_output_stats *st = &o->st;
		json_t *j = json_object();
		json_object_set_new(j, "name", json_string(o->oc->name ? o->oc->name : ""));
		json_object_set_new(j, "format", json_string(o->fmt ? o->fmt->name : ""));
		json_object_set_new(j, "path", json_string(o->oc->path ? o->oc->path : ""));
		json_object_set_new(j, "written", json_boolean(o->written));
		json_object_set_new(j, "entries", json_integer((json_int_t)st->entries));
		json_object_set_new(j, "writes", json_integer((json_int_t)st->writes));
		json_object_set_new(j, "last_write", time_or_null(st->last_write));
		json_object_set_new(j, "write_errors", json_integer((json_int_t)st->write_errors));
		json_object_set_new(j, "reload_configured", json_boolean(o->oc->reload.n > 0));
		json_object_set_new(j, "reload", json_string(emit_reload_status_name(st->reload_status)));
		json_object_set_new(j, "last_reload", time_or_null(st->last_reload));
		json_object_set_new(j, "breaker_open", json_boolean(o->held));
		json_array_append_new(a, j);
	}
	return a;
}
