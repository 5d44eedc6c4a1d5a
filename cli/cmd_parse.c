/*
 * cmd_parse.c - `mxwarden parse [--format auto|postfix|exim|sendmail]
 * [--stats] [--quiet] [-c FILE] [FILE|-]...`: print one JSON object per
 * event (JSON Lines, schema in docs/events.md); --stats prints counts to
 * stderr. Lines are framed in place in one large read buffer; nothing is
 * allocated per line.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "parsers/parsers.h"

#define READ_CHUNK (1u << 20)

struct parse_stats {
	uint64_t lines, events, nothing, unparsed;
	uint64_t by_kind[EV__COUNT];
	uint64_t by_cat[CAT__COUNT];
	uint64_t by_reason[PARSE_R__COUNT];
};

struct parse_run {
	struct parser *p;
	struct parser_source *src;
	struct parse_stats st;
	struct buf out;
	bool quiet;
	bool show_unparsed;
	struct buf err;
};

static void handle_line(struct parse_run *r, const char *line, size_t len)
{
	struct event ev;
	int reason;
	r->st.lines++;
	int rc = parser_parse(r->p, r->src, line, len, &ev, &reason);
	if (rc == 1) {
		r->st.events++;
		r->st.by_kind[ev.kind]++;
		r->st.by_cat[ev.cat]++;
		if (!r->quiet) {
			event_to_json(&ev, &r->out);
			buf_appendc(&r->out, '\n');
			if (r->out.len >= (1u << 16)) {
				fwrite(r->out.data, 1, r->out.len, stdout);
				buf_reset(&r->out);
			}
		}
	} else if (rc == 0) {
		r->st.nothing++;
	} else {
		r->st.unparsed++;
		r->st.by_reason[reason >= 0 && reason < PARSE_R__COUNT ? reason : 0]++;
		if (r->show_unparsed) {
			buf_reset(&r->err);
			buf_printf(&r->err, "unparsed %s: ", parser_reason_name(reason));
			buf_append_printable(&r->err, line, MXW_MIN(len, (size_t)4096));
			fprintf(stderr, "%s\n", buf_str(&r->err));
		}
	}
}

/* Read fd to the end, one line at a time (a last line without newline counts). */
static int parse_fd(struct parse_run *r, int fd, const char *name)
{
	size_t cap = READ_CHUNK + PARSER_LINE_MAX + 2;
	char *buf = xmalloc(cap);
	size_t have = 0;
	bool skipping = false; /* inside a line longer than the buffer allows */
	for (;;) {
		ssize_t n = read(fd, buf + have, cap - have);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "mxwarden parse: %s: %s\n", name, strerror(errno));
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		char *p = buf, *end = buf + have;
		char *nl;
		while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
			if (skipping) {
				skipping = false;
			} else {
				handle_line(r, p, (size_t)(nl - p));
			}
			p = nl + 1;
		}
		size_t rest = (size_t)(end - p);
		if (rest > PARSER_LINE_MAX) {
			/* over-long: report it once as a line, skip to its newline */
			if (!skipping)
				handle_line(r, p, rest);
			skipping = true;
			rest = 0;
		}
		memmove(buf, p, rest);
		have = rest;
	}
	if (have && !skipping)
		handle_line(r, buf, have);
	free(buf);
	return 0;
}

static void print_stats(const struct parse_stats *st)
{
	fprintf(stderr, "lines %llu\nevents %llu\nnothing %llu\nunparsed %llu\n",
		(unsigned long long)st->lines, (unsigned long long)st->events,
		(unsigned long long)st->nothing, (unsigned long long)st->unparsed);
	for (int k = 1; k < EV__COUNT; k++)
		if (st->by_kind[k])
			fprintf(stderr, "kind %s %llu\n", ev_kind_name(k),
				(unsigned long long)st->by_kind[k]);
	for (int c = 0; c < CAT__COUNT; c++)
		if (st->by_cat[c])
			fprintf(stderr, "category %s %llu\n", ev_category_name(c),
				(unsigned long long)st->by_cat[c]);
	for (int i = 1; i < PARSE_R__COUNT; i++)
		if (st->by_reason[i])
			fprintf(stderr, "unparsed %s %llu\n", parser_reason_name(i),
				(unsigned long long)st->by_reason[i]);
}

int cmd_parse(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"format", required_argument, NULL, 'f'},
	    {"stats", no_argument, NULL, 's'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"show-unparsed", no_argument, NULL, 'u'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL, *format = NULL;
	bool stats = false, quiet = false, show_unparsed = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:f:sqh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'f': format = optarg; break;
		case 's': stats = true; break;
		case 'q': quiet = true; break;
		case 'u': show_unparsed = true; break;
		case 'h': return cli_help("parse");
		default: return cli_usage_error("parse", NULL);
		}
	}
	struct config conf;
	if (engine_config_load(&conf, path) < 0) {
		config_free(&conf);
		return 1;
	}
	if (!format)
		format = conf.format ? conf.format : "auto";
	enum mta hint = MTA_UNKNOWN;
	if (strcmp(format, "auto") != 0) {
		int m = mta_from_name(format);
		if (m != MTA_POSTFIX && m != MTA_EXIM && m != MTA_SENDMAIL) {
			config_free(&conf);
			return cli_usage_error("parse", "unknown format '%s'", format);
		}
		hint = (enum mta)m;
	}
	struct errlist errs = {0};
	struct parse_run r = {0};
	r.p = parser_new(&conf, &errs);
	for (size_t i = 0; i < errs.msgs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs.v[i]);
	errlist_free(&errs);
	if (!r.p) {
		config_free(&conf);
		return 1;
	}
	r.quiet = quiet;
	r.show_unparsed = show_unparsed;
	int rc = 0;
	int nfiles = argc - optind;
	for (int i = 0; i < (nfiles ? nfiles : 1); i++) {
		const char *name = nfiles ? argv[optind + i] : "-";
		int fd = strcmp(name, "-") == 0 ? STDIN_FILENO : open(name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "mxwarden parse: %s: %s\n", name, strerror(errno));
			rc = 1;
			continue;
		}
		r.src = parser_source_new(r.p, name, hint);
		if (parse_fd(&r, fd, name) < 0)
			rc = 1;
		parser_source_free(r.src);
		r.src = NULL;
		if (fd != STDIN_FILENO)
			close(fd);
	}
	if (r.out.len)
		fwrite(r.out.data, 1, r.out.len, stdout);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "mxwarden parse: write error: %s\n", strerror(errno));
		rc = 1;
	}
	buf_free(&r.out);
	buf_free(&r.err);
	if (stats)
		print_stats(&r.st);
	parser_free(r.p);
	config_free(&conf);
	return rc;
}
