/* test_ipaddr.c - strict address parsing, canonical formatting, prefixes,
 * containment and IP classes, as tables of got/want cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"

static void test_parse_table(void **state)
{
	static const struct {
		const char *in;
		const char *want; /* canonical text, NULL = refused */
	} cases[] = {
	    {"203.0.113.5", "203.0.113.5"},
	    {"0.0.0.0", "0.0.0.0"},
	    {"255.255.255.255", "255.255.255.255"},
	    {"999.1.1.1", NULL},
	    {"256.1.1.1", NULL},
	    {"1.2.3", NULL},
	    {"1.2.3.4.5", NULL},
	    {"01.2.3.4", NULL},
	    {"1.2.3.04", NULL},
	    {"1.2.3.4 ", NULL},
	    {" 1.2.3.4", NULL},
	    {"1.2.3.4x", NULL},
	    {"1..3.4", NULL},
	    {"0x1.2.3.4", NULL},
	    {"1.2.3.", NULL},
	    {"", NULL},
	    {"1.2.3.4/24", NULL},
	    {"[1.2.3.4]", NULL},
	    {"2001:db8::1", "2001:db8::1"},
	    {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
	    {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
	    {"::1", "::1"},
	    {"::", "::"},
	    {"::ffff:1.2.3.4", "1.2.3.4"},
	    {"::FFFF:203.0.113.9", "203.0.113.9"},
	    {"::ffff:01.2.3.4", NULL},
	    {"::ffff:1.2.3", NULL},
	    {"fe80::1%eth0", "fe80::1"},
	    {"fe80::1%", NULL},
	    {"2001:db8::1::2", NULL},
	    {"2001:db8:::1", NULL},
	    {"12345::1", NULL},
	    {"2001:db8::g", NULL},
	    {"[2001:db8::1]", NULL},
	    {"2001:db8::1 ", NULL},
	    {"::1.2.3.4", "::102:304"},
	    {"2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"},
	    {"1:0:0:1:0:0:0:1", "1:0:0:1::1"},
	    {"1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"},
	    {"0:0:1:0:0:0:0:0", "0:0:1::"},
	    {"1::", "1::"},
	    {"1:0:2::3", "1:0:2::3"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct ipaddr ip;
		int rc = ipaddr_parse(&ip, cases[i].in, strlen(cases[i].in));
		if (!cases[i].want) {
			if (rc == 0)
				fail_msg("ipaddr_parse(\"%s\"): got ok, want refused", cases[i].in);
			continue;
		}
		if (rc != 0)
			fail_msg("ipaddr_parse(\"%s\"): got refused, want %s", cases[i].in, cases[i].want);
		char out[IPADDR_STRLEN];
		ipaddr_format(&ip, out);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("format(parse(\"%s\")): got %s, want %s", cases[i].in, out, cases[i].want);
	}
}

static void test_prefix_table(void **state)
{
	static const struct {
		const char *in;
		bool strict;
		const char *want;
	} cases[] = {
	    {"203.0.113.0/24", true, "203.0.113.0/24"},
	    {"203.0.113.5/24", true, NULL},
	    {"203.0.113.5/24", false, "203.0.113.0/24"},
	    {"203.0.113.5", true, "203.0.113.5/32"},
	    {"0.0.0.0/0", true, "0.0.0.0/0"},
	    {"1.2.3.4/33", false, NULL},
	    {"1.2.3.4/", false, NULL},
	    {"1.2.3.4/024", false, NULL},
	    {"1.2.3.4/2a", false, NULL},
	    {"2001:db8::/32", true, "2001:db8::/32"},
	    {"2001:db8::1/64", false, "2001:db8::/64"},
	    {"2001:db8::/129", false, NULL},
	    {"::ffff:1.2.3.0/120", true, "1.2.3.0/24"},
	    {"::ffff:1.2.3.0/90", true, NULL},
	    {"10.0.0.0/7", false, "10.0.0.0/7"},
	    {"11.0.0.0/7", false, "10.0.0.0/7"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct prefix p;
		int rc = prefix_parse(&p, cases[i].in, strlen(cases[i].in), cases[i].strict);
		if (!cases[i].want) {
			if (rc == 0)
				fail_msg("prefix_parse(\"%s\", strict=%d): got ok, want refused", cases[i].in,
					 cases[i].strict);
			continue;
		}
		if (rc != 0)
			fail_msg("prefix_parse(\"%s\"): got refused, want %s", cases[i].in, cases[i].want);
		char out[PREFIX_STRLEN];
		prefix_format(&p, out);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("prefix(\"%s\"): got %s, want %s", cases[i].in, out, cases[i].want);
	}
}

static void test_contains_table(void **state)
{
	static const struct {
		const char *net, *ip;
		bool want;
	} cases[] = {
	    {"203.0.113.0/24", "203.0.113.255", true},
	    {"203.0.113.0/24", "203.0.114.0", false},
	    {"0.0.0.0/0", "8.8.8.8", true},
	    {"0.0.0.0/0", "2001:db8::1", false},
	    {"2001:db8::/64", "2001:db8::ffff", true},
	    {"2001:db8::/64", "2001:db8:0:1::", false},
	    {"10.0.0.0/7", "11.255.0.1", true},
	    {"10.0.0.0/7", "12.0.0.1", false},
	    {"1.2.3.4/32", "1.2.3.4", true},
	    {"1.2.3.4/32", "1.2.3.5", false},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct prefix p;
		struct ipaddr ip;
		assert_int_equal(prefix_parse(&p, cases[i].net, strlen(cases[i].net), true), 0);
		assert_int_equal(ipaddr_parse(&ip, cases[i].ip, strlen(cases[i].ip)), 0);
		if (prefix_contains(&p, &ip) != cases[i].want)
			fail_msg("%s contains %s: got %d, want %d", cases[i].net, cases[i].ip, !cases[i].want,
				 cases[i].want);
	}
	struct prefix a, b;
	prefix_parse(&a, "10.0.0.0/8", 10, true);
	prefix_parse(&b, "10.1.0.0/16", 11, true);
	assert_true(prefix_contains_prefix(&a, &b));
	assert_false(prefix_contains_prefix(&b, &a));
	assert_true(prefix_overlaps(&a, &b));
	assert_true(prefix_overlaps(&b, &a));
}

static void test_class_table(void **state)
{
	struct class_conf def = {24, 64, 16, 48}, wide = {16, 48, 8, 32};
	static const struct {
		const char *ip;
		int wide;
		const char *want;
	} cases[] = {
	    {"203.0.113.77", 0, "203.0.113.0/24"},
	    {"203.0.113.77", 1, "203.0.0.0/16"},
	    {"2001:db8:1:2:3:4:5:6", 0, "2001:db8:1:2::/64"},
	    {"2001:db8:1:2:3:4:5:6", 1, "2001:db8:1::/48"},
	    {"::ffff:198.51.100.9", 0, "198.51.100.0/24"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct ipaddr ip;
		struct prefix p;
		char out[PREFIX_STRLEN];
		assert_int_equal(ipaddr_parse(&ip, cases[i].ip, strlen(cases[i].ip)), 0);
		ipaddr_class(&ip, cases[i].wide ? &wide : &def, &p);
		prefix_format(&p, out);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("class(%s): got %s, want %s", cases[i].ip, out, cases[i].want);
	}
}

static void test_protected_default(void **state)
{
	struct prefix_list l = {0};
	config_protected_default(&l);
	static const struct {
		const char *ip;
		bool want;
	} cases[] = {
	    {"127.0.0.1", true},   {"10.1.2.3", true},	   {"192.168.1.1", true}, {"172.20.0.1", true},
	    {"100.64.0.1", true},  {"169.254.1.1", true},  {"224.0.0.5", true},	  {"255.255.255.255", true},
	    {"0.0.0.0", true},	   {"::1", true},	   {"fd00::1", true},	  {"fe80::1", true},
	    {"ff02::1", true},	   {"203.0.113.5", false}, {"8.8.8.8", false},	  {"2001:db8::1", false},
	    {"172.32.0.1", false}, {"100.128.0.1", false},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct ipaddr ip;
		assert_int_equal(ipaddr_parse(&ip, cases[i].ip, strlen(cases[i].ip)), 0);
		if (prefix_list_contains(&l, &ip) != cases[i].want)
			fail_msg("protected(%s): got %d, want %d", cases[i].ip, !cases[i].want,
				 cases[i].want);
	}
	prefix_list_free(&l);
}

/* The ranges no blocklist may hold: a prefix overlapping one, in either
 * direction, is reserved. */
static void test_reserved_table(void **state)
{
	(void)state;
	static const struct {
		const char *p;
		bool want;
	} cases[] = {
	    {"0.0.0.0/8", true},
	    {"127.0.0.1", true},
	    {"224.0.0.1", true},
	    {"255.255.255.255", true},
	    {"::1", true},
	    {"::", true},
	    {"::203.0.113.5", true},
	    {"::ffff:0:203.0.113.5", true},
	    {"64:ff9b::203.0.113.5", true},
	    {"64:ff9b::/64", true},
	    {"64:ff9b:1::c000:207", true},
	    {"64:ff9b::/32", true},
	    {"fe80::1", true},
	    {"ff02::1", true},
	    {"203.0.113.5", false},
	    {"2001:db8::1", false},
	    {"2001:db8:ff9b::1", false},
	    {"10.0.0.1", false},
	    {"2001:db8::/32", false},
	    {"198.51.100.0/24", false},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct prefix p;
		if (prefix_parse(&p, cases[i].p, strlen(cases[i].p), false) < 0)
			fail_msg("case %zu: %s does not parse", i, cases[i].p);
		if (prefix_reserved(&p) != cases[i].want)
			fail_msg("reserved(%s): got %d, want %d", cases[i].p, !cases[i].want, cases[i].want);
	}
}

/* A cut splits the range that holds it into the pieces around it. */
static void test_list_cut(void **state)
{
	(void)state;
	struct prefix_list l = {0};
	struct strv src = {0};
	struct prefix p;
	prefix_parse(&p, "10.0.0.0/8", 10, true);
	prefix_list_add(&l, &p);
	strv_add(&src, "a");
	prefix_parse(&p, "192.168.0.0/16", 14, true);
	prefix_list_add(&l, &p);
	strv_add(&src, "b");
	prefix_parse(&p, "10.20.0.0/16", 12, true);
	assert_int_equal(prefix_list_cut(&l, &src, &p), 1);
	assert_int_equal(l.n, 1 + 8); /* 192.168/16 and the 8 pieces of 10/8 around 10.20/16 */
	assert_int_equal(src.n, l.n);
	static const struct {
		const char *ip;
		bool want;
	} cases[] = {
	    {"10.20.0.0", false}, {"10.20.255.255", false}, {"10.19.255.255", true}, {"10.21.0.0", true},
	    {"10.0.0.0", true},	  {"10.255.255.255", true}, {"192.168.3.4", true},   {"11.0.0.0", false},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct ipaddr ip;
		assert_int_equal(ipaddr_parse(&ip, cases[i].ip, strlen(cases[i].ip)), 0);
		if (prefix_list_contains(&l, &ip) != cases[i].want)
			fail_msg("after the cut, %s: got %d, want %d", cases[i].ip, !cases[i].want,
				 cases[i].want);
	}
	for (size_t i = 0; i < l.n; i++)
		assert_string_equal(
		    src.v[i], prefix_cmp(&l.v[i], &(struct prefix){{IPADDR_V4, {192, 168}}, 16}) ? "a" : "b");
	/* a cut over a whole entry removes it; one that overlaps nothing changes nothing */
	prefix_parse(&p, "192.168.0.0/15", 14, true);
	assert_int_equal(prefix_list_cut(&l, &src, &p), 1);
	assert_int_equal(l.n, 8);
	prefix_parse(&p, "203.0.113.0/24", 14, true);
	assert_int_equal(prefix_list_cut(&l, &src, &p), 0);
	assert_int_equal(l.n, 8);
	prefix_list_free(&l);
	strv_free(&src);
}

/* What people paste: every form a log or a ticket writes an address in,
 * and in words what is wrong with what cannot be read. */
static void test_pasted_table(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *want; /* the prefix, or NULL: refused */
		const char *why;  /* refused: a part of the message */
	} cases[] = {
	    {"198.51.100.7", "198.51.100.7/32", NULL},
	    {"  198.51.100.0/24 \n", "198.51.100.0/24", NULL},
	    {"198.51.100.7/24", "198.51.100.0/24", NULL}, /* a lookup clears host bits */
	    {"64.80.201.144:25", "64.80.201.144/32", NULL},
	    {"[2001:db8::1]", "2001:db8::1/128", NULL},
	    {"[2001:db8::1]:587", "2001:db8::1/128", NULL},
	    {"unknown[198.51.100.7]", "198.51.100.7/32", NULL},
	    {"mail.example.com[2001:db8::25]", "2001:db8::25/128", NULL},
	    {"mx-1.example.net[203.0.113.9]:25", "203.0.113.9/32", NULL},
	    {"2001:db8::1", "2001:db8::1/128", NULL},
	    {"300.1.2.3", NULL, "300 is more than 255"},
	    {"300.1.2.3:25", NULL, "300 is more than 255"},
	    {"1.2.3", NULL, "four numbers"},
	    {"01.2.3.4", NULL, "leading zero"},
	    {"1.2.x.4", NULL, "'x' is not a number"},
	    {"198.51.100.0/33", NULL, "0 to 32"},
	    {"198.51.100.0/abc", NULL, "must be a number"},
	    {"/24", NULL, "missing"},
	    {"2001:db8::g", NULL, "not an IPv6 address"},
	    {"unknown[300.1.2.3]", NULL, "300 is more than 255"},
	    {"[2001:db8::1", NULL, "not an IPv6 address"},
	    {"a[b]c[198.51.100.7]", NULL, NULL},
	    {"198.51.100.7:99999999", NULL, NULL},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct prefix p;
		char msg[200] = "";
		int rc = prefix_parse_pasted(&p, cases[i].in, strlen(cases[i].in), msg, sizeof msg);
		if (!cases[i].want) {
			if (rc == 0)
				fail_msg("pasted(\"%s\"): got ok, want refused", cases[i].in);
			if (!*msg || (cases[i].why && !strstr(msg, cases[i].why)))
				fail_msg("pasted(\"%s\"): got message \"%s\", want one with \"%s\"",
					 cases[i].in, msg, cases[i].why ? cases[i].why : "(any)");
			continue;
		}
		if (rc < 0)
			fail_msg("pasted(\"%s\"): got refused (%s), want %s", cases[i].in, msg,
				 cases[i].want);
		char out[PREFIX_STRLEN];
		prefix_format(&p, out);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("pasted(\"%s\"): got %s, want %s", cases[i].in, out, cases[i].want);
	}
	/* strict: host bits, named with the network */
	char msg[200];
	prefix_explain("198.51.100.7/24", 15, true, msg, sizeof msg);
	if (!strstr(msg, "host bits are set below /24: the network is 198.51.100.0/24"))
		fail_msg("explain strict: got \"%s\"", msg);
	prefix_explain("300.1.2.3", 9, true, msg, sizeof msg);
	if (strstr(msg, "host bits"))
		fail_msg("explain 300.1.2.3: got \"%s\", which is not the mistake", msg);
}

static void test_hash_equal_keys(void **state)
{
	struct ipaddr a, b;
	assert_int_equal(ipaddr_parse(&a, "::ffff:1.2.3.4", 14), 0);
	assert_int_equal(ipaddr_parse(&b, "1.2.3.4", 7), 0);
	assert_int_equal(ipaddr_cmp(&a, &b), 0);
	assert_true(ipaddr_hash(&a) == ipaddr_hash(&b));
	assert_int_equal(memcmp(&a, &b, sizeof a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_table),	      cmocka_unit_test(test_prefix_table),
	    cmocka_unit_test(test_contains_table),    cmocka_unit_test(test_class_table),
	    cmocka_unit_test(test_protected_default), cmocka_unit_test(test_hash_equal_keys),
	    cmocka_unit_test(test_reserved_table),    cmocka_unit_test(test_list_cut),
	    cmocka_unit_test(test_pasted_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
