/*
 * engine.c - the engine's life: open (configuration, parser, database,
 * aggregator), the restore of the aggregator's state, SIGHUP's reload, and
 * close with the final checkpoint; and how every command loads the
 * configuration. The loop is loop.c's, the work on lines batch.c's.
 */
#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/internal.h"
#include "mtaconf/mtaconf.h"

void engine_config_read(struct config *c, const char *path, struct errlist *errs)
{
	config_defaults(c);
	if (path)
		config_load(c, path, errs);
	config_validate(c, errs);
	emitters_check_config(c, errs);
}

int engine_config_load(struct config *c, const char *path)
{
	struct errlist errs = {0};
	engine_config_read(c, path, &errs);
	for (size_t i = 0; i < errs.msgs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs.v[i]);
	for (size_t i = 0; i < c->warnings.n; i++)
		log_warn("%s", c->warnings.v[i]);
	int rc = errs.msgs.n ? -1 : 0;
	errlist_free(&errs);
	return rc;
}

/* The host of a URL ("http://HOST:PORT/...", "[v6]") is loopback. */
static bool url_is_loopback(const char *url)
{
	const char *h = strstr(url, "://");
	h = h ? h + 3 : url;
	const char *at = strchr(h, '@');
	const char *slash = strchr(h, '/');
	if (at && (!slash || at < slash))
		h = at + 1;
	size_t n = strcspn(h, "/?#");
	char host[256];
	if (n >= sizeof host)
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	char *end;
	if (host[0] == '[') {
		end = strchr(host, ']');
		if (!end)
			return false;
		*end = '\0';
		memmove(host, host + 1, strlen(host + 1) + 1);
	} else if ((end = strrchr(host, ':')) != NULL && strchr(host, ':') == end) {
		*end = '\0';
	}
	if (strcasecmp(host, "localhost") == 0 || strncasecmp(host, "localhost.", 10) == 0)
		return true;
	struct ipaddr ip;
	if (ipaddr_parse(&ip, host, strlen(host)) < 0)
		return false;
	if (ip.family == IPADDR_V4)
		return ip.a[0] == 127 || (ip.a[0] == 0 && !ip.a[1] && !ip.a[2] && !ip.a[3]);
	static const uint8_t one[16] = {[15] = 1}, zero[16] = {0};
	return !memcmp(ip.a, one, 16) || !memcmp(ip.a, zero, 16);
}

static void add_msg(struct strv *v, bool warn, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_msg(struct strv *v, bool warn, const char *file, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s: %s", file, warn ? "warning: " : "");
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	strv_add(v, buf_str(&b));
	buf_free(&b);
}

/* One of c->warnings ("FILE: message" or "FILE:LINE: message", as
 * config_validate writes them) in the form of the others: the location,
 * then "warning: ". */
static void add_config_warning(struct strv *v, const char *file, const char *w)
{
	size_t fn = strlen(file), at = 0;
	if (strncmp(w, file, fn) == 0 && w[fn] == ':') {
		at = fn + 1;
		while (w[at] >= '0' && w[at] <= '9')
			at++;
		if (w[at] == ':' && at > fn + 1)
			at++;
		else
			at = fn + 1;
		if (w[at] == ' ')
			at++;
	}
	struct buf b = BUF_INIT;
	if (at)
		buf_printf(&b, "%.*swarning: %s", (int)at, w, w + at);
	else
		buf_printf(&b, "%s: warning: %s", file, w);
	strv_add(v, buf_str(&b));
	buf_free(&b);
}

void engine_config_checks(const struct config *c, struct strv *errors, struct strv *warnings)
{
	const char *file = c->source ? c->source : "(defaults)";
	for (size_t i = 0; i < c->warnings.n; i++)
		add_config_warning(warnings, file, c->warnings.v[i]);
	const struct {
		const char *key, *path;
	} tokens[] = {{"token_file", c->token_file}, {"blocklist_token_file", c->blocklist_token_file}};
	for (size_t i = 0; i < MXW_ARRAY_LEN(tokens); i++) {
		if (!tokens[i].path)
			continue;
		struct buf err = BUF_INIT;
		FILE *fp = fopen(tokens[i].path, "r");
		if (!fp) {
			add_msg(errors, false, file, "[web] %s: %s: %s (mxwarden run would not start)",
				tokens[i].key, tokens[i].path, strerror(errno));
		} else {
			fclose(fp);
			/* readable by other users, or not a valid token: run refuses it too */
			if (web_token_read(tokens[i].path, NULL, &err) < 0)
				add_msg(errors, false, file, "[web] %s: %s (mxwarden run would not start)",
					tokens[i].key, buf_str(&err));
		}
		buf_free(&err);
	}
	for (size_t i = 0; i < c->follow.n; i++) {
		glob_t g;
		int r = glob(c->follow.v[i], GLOB_NOSORT, NULL, &g);
		if (r == GLOB_NOMATCH)
			add_msg(
			    warnings, true, file,
			    "[collector] follow: %s matches no file now (it is read once it appears, if its "
			    "directory exists)",
			    c->follow.v[i]);
		if (r == 0)
			globfree(&g);
	}
	struct {
		const char *what, *path;
	} paths[] = {{"[storage] db", c->db_path},
		     {"[web] token_file", c->token_file},
		     {"[web] blocklist_token_file", c->blocklist_token_file},
		     {"[web] assets", c->assets_dir}};
	for (size_t i = 0; i < MXW_ARRAY_LEN(paths); i++)
		if (paths[i].path && paths[i].path[0] != '/')
			add_msg(
			    warnings, true, file,
			    "%s: '%s' is a relative path: it depends on the directory mxwarden is started "
			    "from (give an absolute path)",
			    paths[i].what, paths[i].path);
	for (size_t i = 0; i < c->follow.n; i++)
		if (c->follow.v[i][0] != '/')
			add_msg(warnings, true, file,
				"[collector] follow: '%s' is a relative path: it depends on the "
				"directory mxwarden is started from",
				c->follow.v[i]);
	for (size_t i = 0; i < c->allow_files.n; i++)
		if (c->allow_files.v[i][0] != '/')
			add_msg(warnings, true, file,
				"[safety] allow_files: '%s' is a relative path: it depends on the "
				"directory mxwarden is started from",
				c->allow_files.v[i]);
	if (c->lookup_url && url_is_loopback(c->lookup_url))
		add_msg(warnings, true, file,
			"[web] lookup_url names a loopback address (%s): the blocklists' texts carry it to "
			"remote senders, for whom it is their own machine",
			c->lookup_url);
	struct strv w = {0};
	emitters_enforcement_warnings(c, &w);
	for (size_t i = 0; i < w.n; i++)
		add_msg(warnings, true, file, "%s", w.v[i]);
	strv_free(&w);
}

int engine_trusted_load(struct config *c)
{
	struct strv warn = {0}, err = {0};
	int rc = mtaconf_read(c, &warn, &err);
	for (size_t i = 0; i < warn.n; i++)
		log_warn("mta_trusted: %s", warn.v[i]);
	for (size_t i = 0; i < err.n; i++)
		log_error("mta_trusted: %s", err.v[i]);
	if (c->trusted_nets.n)
		log_debug("mta_trusted: %zu network(s) the MTA trusts are allow-listed", c->trusted_nets.n);
	strv_free(&warn);
	strv_free(&err);
	return rc;
}

int eng_db_flags(const struct engine *e)
{
	return DB_RW | (e->o->db_fast ? DB_FAST : 0) | (e->importing ? DB_BULK : 0);
}

int eng_open(struct engine *e, const struct engine_opts *o, bool importing)
{
	memset(e, 0, sizeof *e);
	e->o = o;
	e->importing = importing; /* import: a bulk database connection, quieter logs */
	e->replay.fd = -1;
	e->sfd = e->tfd = e->epfd = -1;
	if (engine_config_load(&e->conf, o->config_path) < 0)
		return -1;
	if (engine_trusted_load(&e->conf) < 0)
		return -1;
	e->trusted_n = e->conf.trusted_nets.n;
	if (e->trusted_n)
		log_info("mta_trusted: %zu network(s) the MTA trusts are allow-listed", e->trusted_n);
	if (e->conf.log_syslog)
		log_set_syslog(true, "mxwarden");
	e->db_path = xstrdup(o->db_path ? o->db_path : e->conf.db_path);
	const char *fmt = o->format ? o->format : e->conf.format;
	int m = fmt && strcmp(fmt, "auto") != 0 ? mta_from_name(fmt) : MTA_UNKNOWN;
	if (m < 0) {
		log_error("unknown log format '%s' (auto, postfix, exim, sendmail)", fmt);
		return -1;
	}
	e->hint = (enum mta)m;
	struct errlist errs = {0};
	e->parser = parser_new(&e->conf, &errs);
	for (size_t i = 0; i < errs.msgs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs.v[i]);
	errlist_free(&errs);
	if (!e->parser)
		return -1;
	char err[512];
	db_set_busy_hook(eng_service_busy, e);
	e->db = db_open(e->db_path, eng_db_flags(e), err, sizeof err);
	if (!e->db) {
		log_error("%s", err);
		return -1;
	}
	e->agg = aggregator_new(&e->conf);
	struct buf sp = BUF_INIT;
	buf_printf(&sp, "%s.aggstate", e->db_path);
	aggregator_set_state_path(e->agg, buf_str(&sp));
	buf_free(&sp);
	return 0;
}

/* Rebuild the aggregator's state (saved state, else a replay of the
 * database) and log how long it took. `run` calls it after the web server
 * started (the dashboard reads SQLite only, so it is up during a long
 * restore); `import` right after eng_open(). */
void eng_restore(struct engine *e)
{
	int64_t t0 = clock_mono_us();
	/* the judge's clock goes on from the saved state's log time, not from
	 * the wall clock of this start: `run` moves it to the wall clock once
	 * the lines written while it was stopped are read (what lapsed
	 * meanwhile ends then, at its until) */
	eng_allows_sync(e); /* no decision on what is allowed by hand, replayed or imported */
	e->audit_seen = db_audit_last_id(e->db);
	int rc = aggregator_restore(e->agg, e->db, clock_now(), eng_refeed, e);
	double secs = (double)(clock_mono_us() - t0) / 1e6;
	/* rows replayed: a checkpoint at the first batch, so that the next
	 * crash does not replay them again */
	struct agg_stats st;
	aggregator_stats(e->agg, &st);
	e->ckpt_last_us = clock_mono_us() - (st.restored ? e->conf.checkpoint_interval * 1000000 : 0);
	e->ckpt_current = rc == 0 && st.from_checkpoint && st.restored == 0;
	if (rc < 0)
		log_warn("aggregator: restore failed after %.2fs: starting with an empty state", secs);
	else if (!e->importing)
		log_info("aggregator: state restored in %.2fs", secs);
}

/* Commit what is open, save the aggregator's state, free everything. */
void eng_close(struct engine *e)
{
	e->pipe = NULL;
	db_pipe_free(e->pipe_keep); /* drained at the end of each file */
	e->pipe_keep = NULL;
	e->closing = true;
	eng_checkpoint_reap(e);	 /* a writer that finished names its image */
	eng_checkpoint_abort(e); /* one still writing: the final checkpoint replaces it */
	if (e->db && db_in_batch(e->db))
		eng_batch_commit(e);
	bool saved = eng_checkpoint_final(e);
	collector_free(e->coll);
	eng_journal_stop(e);
	for (size_t i = 0; i < e->n_src; i++)
		parser_source_free(e->src[i].ps);
	free(e->src);
	parser_source_free(e->syslog_ps);
	parser_source_free(e->import_ps);
	parser_free(e->parser);
	/* the file of a clean stop only when the database refused the checkpoint */
	if (!saved && e->agg && e->db && !e->commit_errors)
		aggregator_save(e->agg); /* after the last commit: the next start continues here */
	aggregator_free(e->agg);
	db_close(e->db);
	eng_journal_clear(e);
	free(e->journal);
	prefix_list_free(&e->allows);
	free(e->known);
	free(e->db_path);
	eng_replay_free(e);
	config_free(&e->conf);
}

static bool same_list(const struct strv *a, const struct strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

/* SIGHUP: read the configuration again. What can change while running:
 * batch sizes, new files to follow, the outputs and [safety] (emitters),
 * the allow lists and the MTA's trusted clients (read again from the MTA);
 * the rest needs a restart (logged). */
void engine_reload(struct engine *e)
{
	if (!e->o->config_path) {
		log_info("SIGHUP: no configuration file to reload (running on the defaults)");
		return;
	}
	struct config nc;
	if (engine_config_load(&nc, e->o->config_path) < 0) {
		log_error("SIGHUP: %s has errors (above); keeping the running configuration",
			  e->o->config_path);
		config_free(&nc);
		return;
	}
	e->conf.batch_lines = nc.batch_lines;
	e->conf.batch_ms = nc.batch_ms;
	for (size_t i = 0; i < nc.follow.n; i++) {
		bool known = false;
		for (size_t j = 0; j < e->conf.follow.n; j++)
			known = known || strcmp(nc.follow.v[i], e->conf.follow.v[j]) == 0;
		if (!known) {
			strv_add(&e->conf.follow, nc.follow.v[i]);
			collector_follow(e->coll, nc.follow.v[i]);
			log_info("SIGHUP: now following %s", nc.follow.v[i]);
		}
	}
	/* the journal's reader and its stored position belong to one set of
	 * identifiers (eng_journal_start): a new set starts at the restart */
	if (!same_list(&e->conf.journal, &nc.journal) ||
	    strcmp(e->conf.journal_directory ? e->conf.journal_directory : "",
		   nc.journal_directory ? nc.journal_directory : "") != 0)
		log_warn("SIGHUP: [collector] journal and journal_directory change only at a restart "
			 "(systemctl restart mxwarden); the journal is read as before");
	if (engine_trusted_load(&nc) < 0) {
		log_error("SIGHUP: the MTA's trusted clients cannot be read (above); keeping the running "
			  "configuration");
		config_free(&nc);
		return;
	}
	if (e->em) { /* outputs and [safety]: emitters keep copies */
		emitters_reconfigure(e->em, &nc);
	} else if (nc.n_outputs) {
		/* outputs where there were none: started now */
		struct buf err = BUF_INIT;
		e->em = emitters_new(&nc, &err);
		if (!e->em)
			log_error("SIGHUP: outputs: %s", buf_str(&err));
		else
			emitters_set_allows(e->em, &e->allows);
		buf_free(&err);
		e->em_synced = false;
	}
	/* what the running judge and the new outputs make of decisions */
	bool dry = nc.rules.dry_run;
	nc.rules.dry_run = e->conf.rules.dry_run; /* [rules] need a restart */
	eng_warn_enforcement(&nc, "SIGHUP");
	nc.rules.dry_run = dry;
	/* the aggregator's allow list: allow, allow_files and the MTA's
	 * trusted clients as they are now. e->conf keeps its start values:
	 * the web threads read it (lookup's "allowed", "trusted") */
	aggregator_allow_reload(e->agg, &nc);
	if (e->running)
		eng_notify_reload(e, &nc);
	if (nc.trusted_nets.n != e->trusted_n)
		log_info("SIGHUP: mta_trusted: %zu network(s) the MTA trusts are allow-listed (were %zu)",
			 nc.trusted_nets.n, e->trusted_n);
	e->trusted_n = nc.trusted_nets.n;
	config_free(&nc);
	log_info(
	    "SIGHUP: configuration %s reloaded (batch sizes, follow list, outputs, allow lists, notify, the "
	    "digest schedule and the MTA's trusted clients; other changes need a restart)",
	    e->o->config_path);
}
