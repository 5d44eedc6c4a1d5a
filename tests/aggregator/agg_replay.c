/*
 * agg_replay.c - a test and benchmark driver: parse mail log files with
 * parsers/ and feed the events to the aggregator in one thread, then print
 * every decision it made as one JSON object per line:
 *   {"prefix", "scope", "rule", "reason", "score", "response", "since", "until"}
 * and a last line {"summary": {...}} with counts, timings and memory.
 *
 *   agg_replay [-c CONFIG] [--protect-none] [--no-aggregate] [--quiet]
 *              [--evidence] [--check-evidence] FILE...
 *
 * --no-aggregate parses only (the baseline of the overhead benchmark);
 * --quiet prints the summary only. --evidence prints, instead of the
 * decisions, every new and upgraded decision as "new|upgraded PREFIX TEXT"
 * with the evidence text as the aggregator wrote it (to compare builds byte
 * for byte). --check-evidence checks that every evidence text is what
 * jansson's json_dumps(JSON_COMPACT) writes for it once parsed, and exits 1
 * when one is not or when there was none. It never touches a database: it is the
 * pure "what would the aggregator decide on this log" path used by
 * bench/quality and the integration tests.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "aggregator/aggregator.h"
#include "parsers/parsers.h"

struct opts {
	bool quiet, evidence, check;
	uint64_t checked, bad;
};

/* The evidence text is the bytes jansson writes for what it parses to. */
static void check_evidence(struct opts *o, const struct agg_change *ch, const char *px)
{
	json_error_t err;
	json_t *v = json_loads(ch->evidence_json, JSON_ALLOW_NUL, &err);
	char *again = v ? json_dumps(v, JSON_COMPACT) : NULL;
	o->checked++;
	if (!again || strcmp(again, ch->evidence_json) != 0) {
		o->bad++;
		fprintf(stderr, "%s: evidence is not json_dumps' bytes (%s)\n got  %s\n want %s\n", px,
			v ? "differs" : err.text, ch->evidence_json, again ? again : "(none)");
	}
	free(again);
	json_decref(v);
}

static int64_t print_change(void *arg, const struct agg_change *ch)
{
	struct opts *op = arg;
	if (ch->kind == AGG_CHANGE_ENDED)
		return 0;
	const struct decision *d = ch->d;
	char px[PREFIX_STRLEN];
	prefix_format(&d->prefix, px);
	if (op->check)
		check_evidence(op, ch, px);
	if (op->evidence)
		printf("%s %s %s\n", ch->kind == AGG_CHANGE_NEW ? "new" : "upgraded", px, ch->evidence_json);
	if (ch->kind != AGG_CHANGE_NEW || op->quiet || op->evidence)
		return 0;
	json_t *o = json_object();
	json_object_set_new(o, "prefix", json_string(px));
	json_object_set_new(o, "scope", json_string(scope_name(d->scope)));
	json_object_set_new(o, "rule", json_string(d->rule));
	json_object_set_new(o, "reason", json_string(d->reason));
	json_object_set_new(o, "score", json_real(d->score));
	json_object_set_new(o, "response", json_string(response_name(d->response)));
	json_object_set_new(o, "since", json_integer(d->since));
	json_object_set_new(o, "until", json_integer(d->until));
	json_t *ev = json_loads(ch->evidence_json, 0, NULL);
	if (ev)
		json_object_set_new(o, "evidence", ev);
	char *s = json_dumps(o, JSON_COMPACT);
	puts(s);
	free(s);
	json_decref(o);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cfgpath = NULL;
	bool protect_none = false, no_agg = false;
	struct opts op = {0};
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"protect-none", no_argument, NULL, 'P'},
					     {"no-aggregate", no_argument, NULL, 'N'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"evidence", no_argument, NULL, 'E'},
					     {"check-evidence", no_argument, NULL, 'C'},
					     {NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (o) {
		case 'c': cfgpath = optarg; break;
		case 'P': protect_none = true; break;
		case 'N': no_agg = true; break;
		case 'q': op.quiet = true; break;
		case 'E': op.evidence = true; break;
		case 'C': op.check = true; break;
		default: fprintf(stderr, "usage: agg_replay [-c FILE] [--protect-none] FILE...\n"); return 2;
		}
	}
	struct config c;
	struct errlist errs = {0};
	config_defaults(&c);
	if (cfgpath)
		config_load(&c, cfgpath, &errs);
	config_validate(&c, &errs);
	if (errs.msgs.n) {
		for (size_t i = 0; i < errs.msgs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs.v[i]);
		return 1;
	}
	if (protect_none) {
		prefix_list_free(&c.protected_networks);
	}
	struct parser *p = parser_new(&c, &errs);
	if (!p)
		return 1;
	struct aggregator *a = no_agg ? NULL : aggregator_new(&c);
	uint64_t lines = 0, events = 0;
	int64_t t0 = clock_mono_us(), newest = 0, last_tick = 0;
	char *line = NULL;
	size_t cap = 0;
	for (int i = optind; i < argc; i++) {
		FILE *fp = fopen(argv[i], "r");
		if (!fp) {
			perror(argv[i]);
			return 1;
		}
		struct parser_source *src = parser_source_new(p, argv[i], MTA_UNKNOWN);
		ssize_t n;
		while ((n = getline(&line, &cap, fp)) > 0) {
			if (line[n - 1] == '\n')
				n--;
			lines++;
			struct event ev;
			int reason;
			if (parser_parse(p, src, line, (size_t)n, &ev, &reason) != 1)
				continue;
			events++;
			if (ev.ts_us / 1000000 > newest)
				newest = ev.ts_us / 1000000;
			if (a) {
				/* the engine's periodic work (idle eviction, connections
				 * that never logged their end), hourly on the log's clock */
				if (newest - last_tick >= 3600) {
					aggregator_tick(a, newest);
					last_tick = newest;
				}
				aggregator_event(a, &ev);
				if ((events & 1023) == 0)
					aggregator_take_changes(a, print_change, &op);
			}
		}
		parser_source_free(src);
		fclose(fp);
	}
	free(line);
	int64_t t1 = clock_mono_us();
	struct agg_stats st = {0};
	if (a) {
		/* connections whose end was never logged are judged once quiet */
		aggregator_tick(a, newest + 300);
		aggregator_take_changes(a, print_change, &op);
		aggregator_stats(a, &st);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	printf("{\"summary\":{\"lines\":%llu,\"events\":%llu,\"seconds\":%.3f,\"cpu\":%.3f,\"ips\":%zu,"
	       "\"classes\":%zu,\"table_bytes\":%zu,\"decisions\":%zu,\"suppressed\":%llu,\"maxrss_kb\":%ld,"
	       "\"newest\":%lld}}\n",
	       (unsigned long long)lines, (unsigned long long)events, (double)(t1 - t0) / 1e6, cpu, st.ips,
	       st.classes, st.bytes, st.decisions, (unsigned long long)st.suppressed, ru.ru_maxrss,
	       (long long)newest);
	if (op.check)
		fprintf(stderr, "agg_replay: %llu evidence texts checked, %llu not json_dumps' bytes\n",
			(unsigned long long)op.checked, (unsigned long long)op.bad);
	int rc = op.check && (op.bad || !op.checked) ? 1 : 0;
	aggregator_free(a);
	parser_free(p);
	config_free(&c);
	errlist_free(&errs);
	return rc;
}
