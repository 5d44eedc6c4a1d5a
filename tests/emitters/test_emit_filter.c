/* test_emit_filter.c - the safety gate: a table of single decisions (kept
 * or dropped, and why), the cap, overlap removal for interval sets, and a
 * property test over random allow lists and decisions (including all 256
 * /24s of one /16 and prefixes wider than the floor): nothing shorter than
 * the floor, nothing overlapping an allowed or protected prefix, one entry
 * per prefix, and everything else kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "emitters/emitters.h"

#define NOW 1798800000LL

static struct prefix P(const char *s) {
	struct prefix p;
	if (prefix_parse(&p, s, strlen(s), false) < 0)
		fail_msg("bad test prefix %s", s);
	return p;
}

static void
safety(struct emit_safety *s)
{
	memset(s, 0, sizeof *s);
	struct prefix p = P("10.0.0.0/8");
	prefix_list_add(&s->protect, &p);
	p = P("fd00::/8");
	prefix_list_add(&s->protect, &p);
	p = P("198.51.100.200/32");
	prefix_list_add(&s->allow, &p);
	p = P("2001:db8:aaaa::/48");
	prefix_list_add(&s->allow, &p);
	s->v4_floor = 16;
	s->v6_floor = 32;
	s->max_entries = 1000;
}

static const struct emit_select SEL_ALL = {FAMILY_V4 | FAMILY_V6, false, RESP_DEFER, false, false};

static void test_table(void **state)
{
	enum want { KEEP, EXPIRED, UNWANTED, FLOOR, ALLOWED, PROTECT, BAD };
	static const struct {
		const char *prefix;
		enum scope scope;
		enum response resp;
		int64_t until; /* relative to NOW */
		unsigned families;
		bool class_only;
		enum response min;
		enum want want;
	} cases[] = {
	    {"203.0.113.7/32", SCOPE_IP, RESP_REJECT, 60, 3, false, RESP_DEFER, KEEP},
	    {"203.0.113.7/32", SCOPE_IP, RESP_REJECT, 0, 3, false, RESP_DEFER, EXPIRED},
	    {"203.0.113.7/32", SCOPE_IP, RESP_REJECT, -1, 3, false, RESP_DEFER, EXPIRED},
	    {"203.0.113.7/32", SCOPE_IP, RESP_OBSERVE, 60, 3, false, RESP_DEFER, UNWANTED},
	    {"203.0.113.7/32", SCOPE_IP, RESP_OBSERVE, 60, 3, false, RESP_OBSERVE, KEEP},
	    {"203.0.113.7/32", SCOPE_IP, RESP_DEFER, 60, 3, false, RESP_REJECT, UNWANTED},
	    {"203.0.113.7/32", SCOPE_IP, RESP_DROP, 60, 3, false, RESP_REJECT, KEEP},
	    {"203.0.113.7/32", SCOPE_IP, RESP_DROP, 60, 3, true, RESP_DEFER, UNWANTED},
	    {"203.0.113.0/24", SCOPE_CLASS, RESP_DROP, 60, 3, true, RESP_DEFER, KEEP},
	    {"203.0.113.7/32", SCOPE_IP, RESP_DROP, 60, FAMILY_V6, false, RESP_DEFER, UNWANTED},
	    {"2001:db8::1/128", SCOPE_IP, RESP_DROP, 60, FAMILY_V4, false, RESP_DEFER, UNWANTED},
	    {"2001:db8::1/128", SCOPE_IP, RESP_DROP, 60, FAMILY_V6, false, RESP_DEFER, KEEP},
	    {"203.0.0.0/16", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, KEEP},
	    {"203.0.0.0/15", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, FLOOR},
	    {"0.0.0.0/0", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, FLOOR},
	    {"::/0", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, FLOOR},
	    {"2001:db9::/32", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, KEEP},
	    {"2001:db8::/31", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, FLOOR},
	    {"198.51.100.200/32", SCOPE_IP, RESP_DROP, 60, 3, false, RESP_DEFER, ALLOWED},
	    {"198.51.100.0/24", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, ALLOWED}, /* contains it */
	    {"198.51.100.201/32", SCOPE_IP, RESP_DROP, 60, 3, false, RESP_DEFER, KEEP},
	    {"2001:db8:aaaa:1::/64", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, ALLOWED}, /* inside */
	    {"2001:db8::/32", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, ALLOWED}, /* contains it */
	    {"10.1.2.3/32", SCOPE_IP, RESP_DROP, 60, 3, false, RESP_DEFER, PROTECT},
	    {"10.0.0.0/16", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, PROTECT},
	    {"11.0.0.0/16", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, KEEP},
	    {"fd12::/64", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, PROTECT},
	    {"203.0.113.7/24", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, BAD}, /* host bits */
	    /* never, even with an empty protected list (below) */
	    {"127.0.0.1/32", SCOPE_IP, RESP_DROP, 60, 3, false, RESP_DEFER, PROTECT},
	    {"0.1.2.0/24", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, PROTECT},
	    {"239.1.2.3/32", SCOPE_IP, RESP_DROP, 60, 3, false, RESP_DEFER, PROTECT},
	    {"255.255.255.255/32", SCOPE_IP, RESP_DROP, 60, 3, false, RESP_DEFER, PROTECT},
	    {"223.255.255.0/24", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, KEEP},
	    {"::/64", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, PROTECT},
	    /* text folds to IPv4 0.0.0.0 with /96: malformed; the IPv6 form is below */
	    {"::ffff:0:0/96", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, BAD},
	    {"::1/128", SCOPE_IP, RESP_DROP, 60, 3, false, RESP_DEFER, PROTECT},
	    {"fe80::/64", SCOPE_CLASS, RESP_DROP, 60, 3, false, RESP_DEFER, PROTECT},
	    {"ff02::1/128", SCOPE_IP, RESP_DROP, 60, 3, false, RESP_DEFER, PROTECT},
	};
	struct emit_safety s;
	safety(&s);
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		/* the hard list holds without any protected network */
		if (strcmp(cases[i].prefix, "127.0.0.1/32") == 0)
			prefix_list_free(&s.protect);
		struct decision d;
		memset(&d, 0, sizeof d);
		/* keep host bits as written, so the filter sees a malformed one */
		struct prefix p;
		const char *t = cases[i].prefix;
		const char *slash = strchr(t, '/');
		assert_int_equal(ipaddr_parse(&p.addr, t, (size_t)(slash - t)), 0);
		p.len = (uint8_t)atoi(slash + 1);
		d.prefix = p;
		d.scope = cases[i].scope;
		d.response = cases[i].resp;
		d.until = NOW + cases[i].until;
		struct emit_select sel = {cases[i].families, cases[i].class_only, cases[i].min, false, false};
		const struct decision **v;
		struct emit_stats st;
		size_t n = emit_filter(&s, &sel, &d, 1, NOW, &v, &st);
		size_t got[] = {n, st.expired, st.unwanted, st.floor, st.allowed, st.protect, st.bad};
		for (size_t k = 0; k < MXW_ARRAY_LEN(got); k++)
			if (got[k] != (k == (size_t)cases[i].want))
				fail_msg("case %zu %s: counter %zu got %zu, want %d", i, t, k, got[k],
					 k == (size_t)cases[i].want);
		if (n)
			assert_ptr_equal(v[0], &d);
		free(v);
	}
	emit_safety_free(&s);
}

static void test_mapped_range(void **state)
{
	struct emit_safety s;
	safety(&s);
	prefix_list_free(&s.protect);
	struct decision d;
	memset(&d, 0, sizeof d);
	d.prefix.addr.family = IPADDR_V6;
	d.prefix.addr.a[10] = d.prefix.addr.a[11] = 0xff;
	d.prefix.len = 96;
	d.response = RESP_DROP;
	d.until = NOW + 60;
	const struct decision **v;
	struct emit_stats st;
	assert_int_equal(emit_filter(&s, &SEL_ALL, &d, 1, NOW, &v, &st), 0);
	assert_int_equal(st.protect, 1);
	emit_safety_free(&s);
}

static void mk(struct decision *d, const char *p, enum response r, int64_t until)
{
	memset(d, 0, sizeof *d);
	d->prefix = P(p);
	d->scope = d->prefix.len < 32 ? SCOPE_CLASS : SCOPE_IP;
	d->response = r;
	d->until = NOW + until;
}

static void test_dedupe_overlap_order(void **state)
{
	struct emit_safety s;
	safety(&s);
	struct decision d[6];
	mk(&d[0], "203.0.113.5/32", RESP_DEFER, 100);
	mk(&d[1], "203.0.113.0/24", RESP_REJECT, 100);
	mk(&d[2], "203.0.113.5/32", RESP_DROP, 50); /* same prefix, stronger */
	mk(&d[3], "198.51.100.1/32", RESP_DEFER, 100);
	mk(&d[4], "2001:db8::/64", RESP_DEFER, 100);
	mk(&d[5], "203.0.113.128/25", RESP_DEFER, 100);
	const struct decision **v;
	struct emit_stats st;
	size_t n = emit_filter(&s, &SEL_ALL, d, 6, NOW, &v, &st);
	/* address order, one per prefix, the strongest kept */
	assert_int_equal(n, 5);
	assert_int_equal(st.duplicate, 1);
	assert_ptr_equal(v[0], &d[3]);
	assert_ptr_equal(v[1], &d[1]);
	assert_ptr_equal(v[2], &d[2]);
	assert_ptr_equal(v[3], &d[5]);
	assert_ptr_equal(v[4], &d[4]);
	free(v);
	/* interval sets: nothing inside another */
	struct emit_select sel = SEL_ALL;
	sel.no_overlap = true;
	n = emit_filter(&s, &sel, d, 6, NOW, &v, &st);
	assert_int_equal(n, 3);
	assert_int_equal(st.contained + st.duplicate, 3);
	assert_ptr_equal(v[0], &d[3]);
	assert_ptr_equal(v[1], &d[1]);
	assert_ptr_equal(v[2], &d[4]);
	free(v);
	/* first-match tables: longer prefixes first within a family */
	sel = SEL_ALL;
	sel.longest_first = true;
	n = emit_filter(&s, &sel, d, 6, NOW, &v, &st);
	assert_int_equal(n, 5);
	for (size_t i = 1; i < n; i++)
		if (v[i - 1]->prefix.addr.family == v[i]->prefix.addr.family &&
		    v[i - 1]->prefix.len < v[i]->prefix.len)
			fail_msg("longest_first: /%u before /%u", v[i - 1]->prefix.len, v[i]->prefix.len);
	free(v);
	emit_safety_free(&s);
}

static void test_cap(void **state)
{
	struct emit_safety s;
	safety(&s);
	s.max_entries = 100;
	struct decision d[300];
	for (int i = 0; i < 300; i++) {
		char t[32];
		snprintf(t, sizeof t, "203.0.%d.%d/32", i / 200, i % 200 + 1);
		mk(&d[i], t, i % 3 == 0 ? RESP_DROP : RESP_DEFER, 100 + i);
	}
	const struct decision **v;
	struct emit_stats st;
	size_t n = emit_filter(&s, &SEL_ALL, d, 300, NOW, &v, &st);
	assert_int_equal(n, 100);
	assert_int_equal(st.capped, 200);
	/* the 100 drops are the strongest, so exactly they are kept */
	for (size_t i = 0; i < n; i++)
		if (v[i]->response != RESP_DROP)
			fail_msg("cap kept a %s entry, want only drops", response_name(v[i]->response));
	for (size_t i = 1; i < n; i++)
		assert_true(prefix_cmp(&v[i - 1]->prefix, &v[i]->prefix) < 0);
	free(v);
	emit_safety_free(&s);
}

static uint32_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (uint32_t)(*x >> 11);
}

static void random_prefix(uint64_t *x, struct prefix *p)
{
	struct ipaddr a;
	memset(&a, 0, sizeof a);
	unsigned len;
	if (rnd(x) % 4 == 0) {
		a.family = IPADDR_V6;
		a.a[0] = 0x20;
		a.a[1] = 0x01;
		a.a[2] = 0x0d;
		a.a[3] = 0xb8;
		for (int i = 4; i < 16; i++)
			a.a[i] = (uint8_t)(rnd(x) % 4);
		static const unsigned lens[] = {0, 16, 24, 31, 32, 40, 48, 56, 64, 64, 96, 128, 128};
		len = lens[rnd(x) % MXW_ARRAY_LEN(lens)];
	} else {
		a.family = IPADDR_V4;
		a.a[0] = 198;
		a.a[1] = (uint8_t)(18 + rnd(x) % 2);
		a.a[2] = (uint8_t)(rnd(x) % 256);
		a.a[3] = (uint8_t)(rnd(x) % 256);
		static const unsigned lens[] = {0, 8, 12, 15, 16, 20, 23, 24, 24, 24, 28, 32, 32, 32};
		len = lens[rnd(x) % MXW_ARRAY_LEN(lens)];
	}
	prefix_from_addr(p, &a, len);
}

static void test_property(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (int round = 0; round < 1000; round++) {
		struct emit_safety s;
		memset(&s, 0, sizeof s);
		s.v4_floor = 16 + rnd(&x) % 9;
		s.v6_floor = 32 + rnd(&x) % 33;
		s.max_entries = 100000;
		size_t na = rnd(&x) % 12, np = rnd(&x) % 4;
		for (size_t i = 0; i < na; i++) {
			struct prefix p;
			random_prefix(&x, &p);
			if (p.len == 0)
				p.len = 32; /* an allow list of everything makes a dull round */
			prefix_from_addr(&p, &p.addr, p.len);
			prefix_list_add(&s.allow, &p);
		}
		for (size_t i = 0; i < np; i++) {
			struct prefix p;
			random_prefix(&x, &p);
			prefix_from_addr(&p, &p.addr, MXW_MAX(p.len, 16u));
			prefix_list_add(&s.protect, &p);
		}
		size_t n = 256 + 200;
		struct decision *d = xcalloc(n, sizeof *d);
		/* every /24 of 198.18.0.0/16, then random ones */
		for (size_t i = 0; i < 256; i++) {
			char t[32];
			snprintf(t, sizeof t, "198.18.%zu.0/24", i);
			mk(&d[i], t, (enum response)(rnd(&x) % 4), (int64_t)(rnd(&x) % 1000) - 100);
		}
		for (size_t i = 256; i < n; i++) {
			memset(&d[i], 0, sizeof d[i]);
			random_prefix(&x, &d[i].prefix);
			d[i].response = (enum response)(rnd(&x) % 4);
			d[i].until = NOW + (int64_t)(rnd(&x) % 1000) - 100;
		}
		struct emit_select sel = {FAMILY_V4 | FAMILY_V6, false, (enum response)(rnd(&x) % 4),
					  rnd(&x) % 2 == 0, false};
		const struct decision **v;
		struct emit_stats st;
		size_t m = emit_filter(&s, &sel, d, n, NOW, &v, &st);
		for (size_t i = 0; i < m; i++) {
			const struct prefix *p = &v[i]->prefix;
			char t[PREFIX_STRLEN];
			prefix_format(p, t);
			unsigned floor = p->addr.family == IPADDR_V4 ? s.v4_floor : s.v6_floor;
			if (p->len < floor)
				fail_msg("round %d: %s is shorter than the floor /%u", round, t, floor);
			for (size_t k = 0; k < s.allow.n; k++)
				if (prefix_overlaps(&s.allow.v[k], p))
					fail_msg("round %d: %s overlaps an allowed prefix", round, t);
			for (size_t k = 0; k < s.protect.n; k++)
				if (prefix_overlaps(&s.protect.v[k], p))
					fail_msg("round %d: %s overlaps a protected prefix", round, t);
			if (v[i]->until <= NOW || v[i]->response < sel.min_response)
				fail_msg("round %d: %s is expired or below min_response", round, t);
			for (size_t k = 0; k < i; k++) {
				if (prefix_cmp(&v[k]->prefix, p) == 0)
					fail_msg("round %d: %s twice", round, t);
				if (sel.no_overlap && prefix_overlaps(&v[k]->prefix, p))
					fail_msg("round %d: %s overlaps another entry of an interval set",
						 round, t);
			}
		}
		/* completeness: every eligible prefix is there (or, for interval
		 * sets, covered by an emitted one) */
		for (size_t i = 0; i < n; i++) {
			const struct prefix *p = &d[i].prefix;
			unsigned floor = p->addr.family == IPADDR_V4 ? s.v4_floor : s.v6_floor;
			if (d[i].until <= NOW || d[i].response < sel.min_response || p->len < floor ||
			    prefix_list_overlaps(&s.allow, p) || prefix_list_overlaps(&s.protect, p))
				continue;
			bool found = false;
			for (size_t k = 0; k < m && !found; k++)
				found = sel.no_overlap ? prefix_contains_prefix(&v[k]->prefix, p)
						       : prefix_cmp(&v[k]->prefix, p) == 0;
			if (!found) {
				char t[PREFIX_STRLEN];
				prefix_format(p, t);
				fail_msg("round %d: eligible %s missing", round, t);
			}
		}
		assert_int_equal(st.in, n);
		assert_int_equal(st.out, m);
		assert_int_equal(st.expired + st.unwanted + st.bad + st.floor + st.allowed + st.protect +
				     st.duplicate + st.contained + st.capped + st.out,
				 n);
		free(v);
		free(d);
		emit_safety_free(&s);
	}
}

static void test_safety_init(void **state)
{
	char dir[] = "/tmp/mxw-emit-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/allow", dir);
	FILE *fp = fopen(buf_str(&path), "w");
	assert_non_null(fp);
	fputs("# partners\n198.51.100.0/28  # mx farm\n\n2001:db8:1::7\n", fp);
	fclose(fp);
	struct config c;
	config_defaults(&c);
	c.v4_floor = 4; /* below the hard floor */
	c.v6_floor = 8;
	strv_add(&c.allow_files, buf_str(&path));
	struct emit_safety s;
	struct buf err = BUF_INIT;
	assert_int_equal(emit_safety_init(&s, &c, &err), 0);
	assert_int_equal(s.allow.n, 2);
	assert_int_equal(s.v4_floor, EMIT_HARD_FLOOR_V4);
	assert_int_equal(s.v6_floor, EMIT_HARD_FLOOR_V6);
	/* the default protected list, even without config_validate */
	struct ipaddr lo;
	assert_int_equal(ipaddr_parse(&lo, "127.0.0.1", 9), 0);
	assert_true(prefix_list_contains(&s.protect, &lo));
	emit_safety_free(&s);
	/* a malformed line is an error naming file and line */
	fp = fopen(buf_str(&path), "a");
	fputs("198.51.100.300\n", fp);
	fclose(fp);
	assert_int_equal(emit_safety_init(&s, &c, &err), -1);
	assert_non_null(strstr(buf_str(&err), ":5: '198.51.100.300'"));
	emit_safety_free(&s);
	unlink(buf_str(&path));
	rmdir(dir);
	/* a missing file too */
	buf_reset(&err);
	assert_int_equal(emit_safety_init(&s, &c, &err), -1);
	assert_non_null(strstr(buf_str(&err), "cannot open allow file"));
	emit_safety_free(&s);
	buf_free(&err);
	buf_free(&path);
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),	cmocka_unit_test(test_dedupe_overlap_order),
	    cmocka_unit_test(test_cap),		cmocka_unit_test(test_property),
	    cmocka_unit_test(test_safety_init), cmocka_unit_test(test_mapped_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
