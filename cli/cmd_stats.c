/*
 * cmd_stats.c - `mxwarden stats [-c FILE] [--db PATH] [--json]`: what the
 * database holds (files with offsets and lines read, events by kind and
 * category, unparsed lines by reason, decisions, size), as text or as the
 * JSON object db_stats_json() builds, after PRAGMA quick_check: a damaged
 * database gets the message saying so and how to recover instead, and exit
 * 1. It opens the database read-only and must never create or change it.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "db/db.h"

static void print_map(const char *title, json_t *m)
{
	const char *k;
	json_t *v;
	printf("%s:", title);
	if (json_object_size(m) == 0) {
		printf(" none\n");
		return;
	}
	printf("\n");
	json_object_foreach(m, k, v)
	{
		struct buf b = BUF_INIT;
		buf_append_printable(&b, k, strlen(k));
		printf("  %-24s %lld\n", buf_str(&b), (long long)json_integer_value(v));
		buf_free(&b);
	}
}

/* 43045768 -> "41.1 MiB (43045768 bytes)" */
static void human_bytes(long long n, char *out, size_t outsz)
{
	static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < MXW_ARRAY_LEN(unit)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, outsz, "%lld bytes", n);
	else
		snprintf(out, outsz, "%.1f %s (%lld bytes)", v, unit[u], n);
}

static void print_text(json_t *o)
{
	printf("lines read:        %lld\n", (long long)json_integer_value(json_object_get(o, "lines_read")));
	printf("evidence rows:     %lld\n",
	       (long long)json_integer_value(json_object_get(o, "evidence_rows")));
	printf("decisions active:  %lld (of %lld stored)\n",
	       (long long)json_integer_value(json_object_get(o, "decisions_active")),
	       (long long)json_integer_value(json_object_get(o, "decisions_total")));
	char file[32], wal[32];
	human_bytes(json_integer_value(json_object_get(o, "db_file_bytes")), file, sizeof file);
	human_bytes(json_integer_value(json_object_get(o, "wal_bytes")), wal, sizeof wal);
	printf("database size:     %s, and %s of write-ahead log (folded into the file at checkpoints)\n",
	       file, wal);
	print_map("events by kind", json_object_get(o, "events"));
	print_map("events by category", json_object_get(o, "categories"));
	print_map("unparsed lines by reason", json_object_get(o, "unparsed"));
	json_t *files = json_object_get(o, "files");
	printf("files:");
	if (json_array_size(files) == 0)
		printf(" none\n");
	else
		printf("\n");
	size_t i;
	json_t *f;
	json_array_foreach(files, i, f)
	{
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *last = json_string_value(json_object_get(f, "last_read"));
		struct buf b = BUF_INIT;
		buf_append_printable(&b, path ? path : "", path ? strlen(path) : 0);
		printf("  %s (%s) offset %lld, %lld lines, last read %s\n", buf_str(&b),
		       json_string_value(json_object_get(f, "kind")),
		       (long long)json_integer_value(json_object_get(f, "offset")),
		       (long long)json_integer_value(json_object_get(f, "lines")), last ? last : "never");
		buf_free(&b);
	}
}

int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"db", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *db_path = NULL;
	bool as_json = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:d:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'd': db_path = optarg; break;
		case 'j': as_json = true; break;
		case 'h': return cli_help("stats");
		default: return cli_usage_error("stats", NULL);
		}
	}
	if (optind < argc)
		return cli_usage_error("stats", "unexpected argument '%s'", argv[optind]);
	struct config c;
	struct db *db = cli_open_ro("stats", conf_path, db_path, &c);
	if (!db)
		return 1;
	const char *path = db_path ? db_path : c.db_path;
	/* a damaged database's figures mean nothing: say so first */
	struct strv probs = {0};
	int64_t t0 = clock_mono_us();
	int chk = db_quick_check(db, false, &probs);
	double chk_s = (double)(clock_mono_us() - t0) / 1e6;
	json_t *o = chk == 0 ? db_stats_json(db, clock_now()) : NULL;
	int rc = 0;
	if (chk != 0) {
		if (chk > 0) {
			struct buf m = BUF_INIT;
			db_damaged_message(path, probs.v[0], &m);
			fprintf(stderr, "mxwarden stats: %s\n", buf_str(&m));
			buf_free(&m);
		} else {
			fprintf(stderr, "mxwarden stats: %s: %s\n", path, db_errmsg(db));
		}
		if (as_json) {
			json_t *x = json_object();
			json_object_set_new(x, "integrity", json_string(chk > 0 ? "damaged" : "unknown"));
			json_t *a = json_array();
			for (size_t i = 0; i < probs.n; i++)
				json_array_append_new(a, json_string(probs.v[i]));
			json_object_set_new(x, "problems", a);
			char *s = json_dumps(x, JSON_COMPACT | JSON_ENSURE_ASCII);
			if (s)
				puts(s);
			free(s);
			json_decref(x);
		}
		rc = 1;
	} else if (!o) {
		fprintf(stderr, "mxwarden stats: %s: %s\n", path, db_errmsg(db));
		rc = 1;
	} else if (as_json) {
		json_object_set_new(o, "integrity", json_string("ok"));
		char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
		if (!s || puts(s) < 0)
			rc = 1;
		free(s);
	} else {
		printf("database:          %s\n", path);
		printf("integrity:         ok (quick_check, %.2f s)\n", chk_s);
		print_text(o);
	}
	strv_free(&probs);
	json_decref(o);
	db_close(db);
	config_free(&c);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}
