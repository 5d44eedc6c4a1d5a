/*
 * emit_bench.c - how fast the emitters turn decisions into blocklists:
 * emit_bench N DIR [DB] makes N decisions (90% IPv4 hosts, 5% IPv4 /24
 * classes, 5% IPv6 /64 classes, hostile-looking reasons), then for every
 * format times the filter + render (emitters_render), the format's own
 * validation and the atomic write into DIR/FORMAT, one run each, and prints
 * entries per second. With DB, also stores the decisions there (db/) so
 * that bench/emit-bench.sh can time `mxwarden export` end to end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "emitters/emitters.h"

/* CPU time of this process in microseconds: the machine may be busy. */
static int64_t cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint32_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (uint32_t)(*x >> 11);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: emit_bench N DIR [DB]\n");
		return 2;
	}
	size_t n = strtoul(argv[1], NULL, 10);
	int64_t now = clock_now();
	struct decision *d = xcalloc(n, sizeof *d);
	uint64_t x = 0x243f6a8885a308d3ULL;
	for (size_t i = 0; i < n; i++) {
		struct ipaddr a;
		memset(&a, 0, sizeof a);
		unsigned k = rnd(&x) % 100, len;
		if (k < 95) {
			a.family = IPADDR_V4;
			a.a[0] = (uint8_t)(20 + i % 40); /* 20..59: public, unprotected */
			a.a[1] = (uint8_t)(i >> 16);
			a.a[2] = (uint8_t)(i >> 8);
			a.a[3] = (uint8_t)i;
			len = k < 90 ? 32 : 24;
		} else {
			a.family = IPADDR_V6;
			a.a[0] = 0x2a;
			a.a[1] = 0x01;
			a.a[4] = (uint8_t)(i >> 16);
			a.a[5] = (uint8_t)(i >> 8);
			a.a[6] = (uint8_t)i;
			len = 64;
		}
		prefix_from_addr(&d[i].prefix, &a, len);
		d[i].scope = len == 32 ? SCOPE_IP : SCOPE_CLASS;
		d[i].response = (enum response)(1 + rnd(&x) % 3);
		snprintf(d[i].rule, sizeof d[i].rule, "retry");
		snprintf(d[i].reason, sizeof d[i].reason,
			 "retried %u times after 550 5.1.1; HELO \"mx%zu.example\" <a@b.example>\n$TTL",
			 rnd(&x) % 50, i);
		d[i].since = now - 60;
		d[i].until = now + 600 + rnd(&x) % 86400;
	}
	struct config c;
	config_defaults(&c);
	c.max_entries = (int64_t)n;
	size_t nf;
	const struct emit_format *const *f = emit_formats(&nf);
	printf(
	    "%zu decisions (wall-clock times; entries/s from the CPU time)\n%-11s %9s %9s %9s %9s %9s %12s "
	    "%10s\n",
	    n, "format", "entries", "render", "validate", "write", "cpu", "entries/s", "bytes");
	for (size_t i = 0; i < nf; i++) {
		struct buf out = BUF_INIT, err = BUF_INIT, path = BUF_INIT;
		int64_t c0 = cpu_us();
		int64_t t0 = clock_mono_us();
		if (emitters_render(f[i]->name, d, n, &c, NULL, now, &out, &err) < 0) {
			fprintf(stderr, "%s: %s\n", f[i]->name, buf_str(&err));
			return 1;
		}
		int64_t t1 = clock_mono_us();
		if (f[i]->validate(out.data ? out.data : "", out.len, &err) < 0) {
			fprintf(stderr, "%s: %s\n", f[i]->name, buf_str(&err));
			return 1;
		}
		int64_t t2 = clock_mono_us();
		buf_printf(&path, "%s/%s", argv[2], f[i]->name);
		if (emit_write_atomic(buf_str(&path), out.data ? out.data : "", out.len, NULL) < 0)
			return 1;
		int64_t t3 = clock_mono_us();
		int64_t c3 = cpu_us();
		size_t lines = 0;
		for (size_t k = 0; k < out.len; k++)
			lines += out.data[k] == '\n';
		double cpu = (double)(c3 - c0) / 1e6;
		printf("%-11s %9zu %7.1fms %7.1fms %7.1fms %7.1fms %12.0f %10zu\n", f[i]->name, lines,
		       (t1 - t0) / 1e3, (t2 - t1) / 1e3, (t3 - t2) / 1e3, cpu * 1e3, (double)n / cpu,
		       out.len);
		buf_free(&out);
		buf_free(&err);
		buf_free(&path);
	}
	/* the circuit breaker's cost: one plain output, an update that changes
	 * one entry, with the breaker on (sort + diff of the entry sets) and off */
	for (int on = 1; on >= 0; on--) {
		struct config oc;
		config_defaults(&oc);
		oc.max_entries = (int64_t)n;
		oc.max_change = on ? 50 : 0;
		oc.n_outputs = 1;
		oc.outputs = xcalloc(1, sizeof *oc.outputs);
		struct buf path = BUF_INIT, err = BUF_INIT;
		buf_printf(&path, "%s/breaker-plain", argv[2]);
		oc.outputs[0].name = xstrdup("bench");
		oc.outputs[0].format = xstrdup("plain");
		oc.outputs[0].path = xstrdup(buf_str(&path));
		oc.outputs[0].families = FAMILY_V4 | FAMILY_V6;
		oc.outputs[0].min_response = RESP_DEFER;
		struct emitters *em = emitters_new(&oc, &err);
		if (!em || emitters_update(em, d, n, now) < 0) {
			fprintf(stderr, "breaker bench: %s\n", buf_str(&err));
			return 1;
		}
		int64_t best = INT64_MAX;
		for (int r = 0; r < 5; r++) {
			/* one changed entry (an address the generator never uses) */
			char a[32];
			snprintf(a, sizeof a, "61.0.%d.%d/32", on, r + 1);
			prefix_parse(&d[r].prefix, a, strlen(a), true);
			int64_t t0 = clock_mono_us();
			if (emitters_update(em, d, n, now + 1 + r) != 1) {
				fprintf(stderr, "breaker bench: update held or failed\n");
				return 1;
			}
			best = MXW_MIN(best, clock_mono_us() - t0);
		}
		printf("emitters_update, 1 of %zu entries changed, breaker %s: %.1f ms (best of 5)\n", n,
		       on ? "on " : "off", best / 1e3);
		emitters_free(em);
		buf_free(&path);
		buf_free(&err);
		config_free(&oc);
	}
	if (argc > 3) {
		char e[256];
		struct db *db = db_open(argv[3], DB_RW | DB_FAST, e, sizeof e);
		if (!db) {
			fprintf(stderr, "%s\n", e);
			return 1;
		}
		db_begin(db);
		for (size_t i = 0; i < n; i++)
			if (db_decision_insert(db, &d[i], NULL, "bench") < 0) {
				fprintf(stderr, "%s\n", db_errmsg(db));
				return 1;
			}
		db_commit(db);
		db_close(db);
	}
	free(d);
	config_free(&c);
	return 0;
}
