/*
 * cmd_export.c - `mxwarden export --format F [-c FILE] [--db PATH]
 * [-o FILE]`: one blocklist on demand, from the decisions active now in the
 * database (opened read-only), through the same filter and renderer as the
 * outputs of `mxwarden run` (emitters_render: [safety] of the
 * configuration, and the selection of the first [output] of that format).
 * Without -o the bytes go to stdout; with -o they replace FILE atomically
 * (temp file, fsync, rename), and only when they differ.
 *
 * It must never create or change the database, nor leave a partial FILE.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db.h"
#include "emitters/emitters.h"

struct collect {
	struct decision *v;
	size_t n, cap;
};

static int collect(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	struct collect *c = arg;
	(void)info;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->v = xrealloc(c->v, c->cap * sizeof *c->v);
	}
	c->v[c->n++] = *d;
	return 0;
}

int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"db", required_argument, NULL, 'd'},
	    {"format", required_argument, NULL, 'f'}, {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *db_path = NULL, *format = NULL, *out_path = NULL;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:d:f:o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'd': db_path = optarg; break;
		case 'f': format = optarg; break;
		case 'o': out_path = optarg; break;
		case 'h': return cli_help("export");
		default: return cli_usage_error("export", NULL);
		}
	}
	if (optind < argc)
		return cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
	if (!format)
		return cli_usage_error("export", "--format is required");
	if (!emit_format_find(format)) {
		struct buf names = BUF_INIT;
		emit_format_names(&names);
		int rc = cli_usage_error("export", "unknown format '%s' (%s)", format, buf_str(&names));
		buf_free(&names);
		return rc;
	}
	struct config c;
	struct db *db = cli_open_ro("export", conf_path, db_path, &c);
	if (!db)
		return 1;
	int rc = 1;
	struct collect col = {0};
	struct prefix_list allows = {0};
	struct buf out = BUF_INIT, msg = BUF_INIT;
	int64_t now = clock_now();
	if (engine_trusted_load(&c) < 0) /* allow-listed like allow: never exported */
		goto done;
	if (db_decisions_active(db, now, collect, &col) < 0 || db_allows_prefixes(db, now, &allows) < 0) {
		fprintf(stderr, "mxwarden export: reading decisions: %s\n", db_errmsg(db));
		goto done;
	}
	if (emitters_render(format, col.v, col.n, &c, &allows, now, &out, &msg) < 0) {
		fprintf(stderr, "mxwarden export: %s\n", buf_str(&msg));
		goto done;
	}
	const struct emit_format *f = emit_format_find(format);
	buf_reset(&msg);
	if (f->validate(out.data ? out.data : "", out.len, &msg) < 0) {
		fprintf(stderr, "mxwarden export: the rendered %s text fails its own check: %s\n", format,
			buf_str(&msg));
		goto done;
	}
	if (out_path) {
		bool changed;
		if (emit_write_atomic(out_path, out.data ? out.data : "", out.len, &changed) < 0)
			goto done;
		fprintf(stderr, "%s: %s (%zu active decisions)\n", out_path,
			changed ? "written" : "unchanged", col.n);
	} else {
		if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
			perror("mxwarden export: stdout");
			goto done;
		}
		if (fflush(stdout) != 0) {
			perror("mxwarden export: stdout");
			goto done;
		}
	}
	rc = 0;
done:
	free(col.v);
	prefix_list_free(&allows);
	buf_free(&out);
	buf_free(&msg);
	db_close(db);
	config_free(&c);
	return rc;
}
