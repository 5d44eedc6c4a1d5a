/* test_mtaconf.c - Postfix mynetworks and Exim relay_from_hosts values into
 * trusted networks: what is read, what is cut out by an exclusion, and what
 * is skipped with a warning that names it (never allow-listed by guess). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "mtaconf/mtaconf.h"

static char dir[64];

static void put(const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int setup(void **state)
{
	snprintf(dir, sizeof dir, "/tmp/mxw-mtaconf-XXXXXX");
	assert_non_null(mkdtemp(dir));
	put("mynets", "# the office and its VPN\n"
		      "203.0.113.64/28 [2001:db8:5::]/48  # trailing comment\n"
		      "\n"
		      "  198.51.100.9\n");
	put("excl", "203.0.113.128/25\n");
	put("t.cidr", "# relays we serve\n"
		      "192.0.2.0/28\tOK\n"
		      "2001:db8:9::/48 OK\n"
		      "  continued result text 10.0.0.0/8\n"
		      "if 198.51.100.0/24\n"
		      "198.51.100.16/28 OK\n"
		      "10.1.0.0/16 OK\n"
		      "endif\n"
		      "!203.0.113.0/24 OK\n"
		      "if !198.51.100.0/25\n"
		      "198.51.100.200 OK\n"
		      "endif\n"
		      "192.0.2.77/24 OK\n");
	return 0;
}

static int teardown(void **state)
{
	const char *names[] = {"mynets", "excl", "t.cidr"};
	for (size_t i = 0; i < MXW_ARRAY_LEN(names); i++) {
		char path[128];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
	return 0;
}

/* "@D@" in a case stands for the test's directory */
static char *expand(const char *s)
{
	struct buf b = BUF_INIT;
	for (const char *p = s; *p;) {
		if (!strncmp(p, "@D@", 3)) {
			buf_appends(&b, dir);
			p += 3;
		} else {
			buf_appendc(&b, *p++);
		}
	}
	char *out = xstrdup(buf_str(&b));
	buf_free(&b);
	return out;
}

struct tcase {
	const char *value;
	const char *want;     /* "prefix|source" lines joined by ';' */
	int nwarn;	      /* warnings expected */
	const char *warn_has; /* a warning contains this (NULL: none to check) */
};

static void run_cases(const struct tcase *tc, size_t n, bool exim)
{
	for (size_t i = 0; i < n; i++) {
		struct prefix_list nets = {0};
		struct strv src = {0}, warn = {0};
		char *value = expand(tc[i].value);
		if (exim)
			mtaconf_exim_hostlist(value, "exim relay_from_hosts", &nets, &src, &warn);
		else
			mtaconf_postfix_list(value, "postfix mynetworks", &nets, &src, &warn);
		assert_int_equal(nets.n, src.n);
		struct buf got = BUF_INIT, ws = BUF_INIT;
		for (size_t j = 0; j < nets.n; j++) {
			char p[PREFIX_STRLEN];
			prefix_format(&nets.v[j], p);
			buf_printf(&got, "%s%s|%s", j ? ";" : "", p, src.v[j]);
		}
		for (size_t j = 0; j < warn.n; j++)
			buf_printf(&ws, "\n    %s", warn.v[j]);
		char *want = expand(tc[i].want);
		bool ok = strcmp(buf_str(&got), want) == 0 && (int)warn.n == tc[i].nwarn;
		if (ok && tc[i].warn_has) {
			char *w = expand(tc[i].warn_has);
			ok = strstr(buf_str(&ws), w) != NULL;
			free(w);
		}
		if (!ok)
			fail_msg("case %zu %s:\n  got  %s (%zu warnings)%s\n  want %s (%d warnings, one with "
				 "'%s')",
				 i, value, buf_str(&got), warn.n, buf_str(&ws), want, tc[i].nwarn,
				 tc[i].warn_has ? tc[i].warn_has : "");
		free(want);
		free(value);
		buf_free(&got);
		buf_free(&ws);
		prefix_list_free(&nets);
		strv_free(&src);
		strv_free(&warn);
	}
}

#define PM "postfix mynetworks"

static void test_postfix(void **state)
{
	static const struct tcase tc[] = {
	    {"127.0.0.0/8 [::1]/128 203.0.113.64/28", "127.0.0.0/8|" PM ";::1/128|" PM ";203.0.113.64/28|" PM,
	     0, NULL},
	    /* commas, blanks, newlines (postconf joins continuation lines) */
	    {"203.0.113.0/28,[2001:db8::]/64,\n  192.0.2.7",
	     "203.0.113.0/28|" PM ";2001:db8::/64|" PM ";192.0.2.7/32|" PM, 0, NULL},
	    {"[2001:db8:1::/48] [::ffff:192.0.2.0]/120 [2001:db8::7]",
	     "2001:db8:1::/48|" PM ";192.0.2.0/24|" PM ";2001:db8::7/128|" PM, 0, NULL},
	    /* first match wins: an exclusion before a network is cut out of it */
	    {"!192.0.2.1, 192.0.2.0/30", "192.0.2.2/31|" PM ";192.0.2.0/32|" PM, 0, NULL},
	    {"!192.0.2.64/26 192.0.2.0/24", "192.0.2.128/25|" PM ";192.0.2.0/26|" PM, 0, NULL},
	    /* ... and one after it changes nothing */
	    {"192.0.2.0/24 !192.0.2.1", "192.0.2.0/24|" PM, 0, NULL},
	    {"!192.0.2.0/24 192.0.2.128/25", "", 0, NULL},
	    {"!192.0.2.0/24 [2001:db8::]/32", "2001:db8::/32|" PM, 0, NULL},
	    {"192.0.2.0/24 192.0.2.0/24", "192.0.2.0/24|" PM, 0, NULL},
	    /* Postfix refuses host bits below the length */
	    {"192.0.2.1/24 198.51.100.0/24", "198.51.100.0/24|" PM, 1, "host bits"},
	    /* not readable as networks: skipped, each named */
	    {"hash:/etc/postfix/network_table", "", 1, "'hash:/etc/postfix/network_table' is not read"},
	    {"mail.example.com .example.net 198.51.100.0/24", "198.51.100.0/24|" PM, 2, "'mail.example.com'"},
	    {"2001:db8::/32", "", 1, "inside []"},
	    {"inline:{ 192.0.2.1=ok, 192.0.2.2=ok } 198.51.100.0/24", "198.51.100.0/24|" PM, 1,
	     "type inline"},
	    {"{ 192.0.2.1 }", "", 1, "group"},
	    /* an exclusion we cannot read ends the list */
	    {"!hash:/etc/postfix/bad 203.0.113.0/24 [2001:db8::]/32", "", 3,
	     "'203.0.113.0/24' not allow-listed: it comes after the exclusion 'hash:/etc/postfix/bad'"},
	    {"!mail.example.com, 203.0.113.0/24", "", 2, "the exclusion '!mail.example.com' is not read"},
	    {"!", "", 1, "a '!' alone"},
	    /* wider than /8 or /16: an open relay, never allow-listed */
	    {"0.0.0.0/0 [::]/0 10.0.0.0/7 [2000::]/15 10.0.0.0/8", "10.0.0.0/8|" PM, 4, "wider than /8"},
	    /* /file/name: its patterns, with the file as the source */
	    {"@D@/mynets 192.0.2.0/24",
	     "203.0.113.64/28|" PM " @D@/mynets;2001:db8:5::/48|" PM " @D@/mynets;198.51.100.9/32|" PM
	     " @D@/mynets;192.0.2.0/24|" PM,
	     0, NULL},
	    {"!@D@/excl 203.0.113.0/24", "203.0.113.0/25|" PM, 0, NULL},
	    {"@D@/missing 192.0.2.0/24", "192.0.2.0/24|" PM, 1, "cannot read it"},
	    {"!@D@/missing 192.0.2.0/24", "", 2, "cannot read it"},
	    /* cidr: tables: patterns, if..endif narrowing; "!" lines and
	     * "if !" blocks skipped with a warning */
	    {"cidr:@D@/t.cidr",
	     "192.0.2.0/28|" PM " cidr:@D@/t.cidr;2001:db8:9::/48|" PM " cidr:@D@/t.cidr;198.51.100.16/28|" PM
	     " cidr:@D@/t.cidr",
	     3, "line 9: matches every address but one network"},
	    {"!cidr:@D@/t.cidr 192.0.2.0/24 198.51.100.0/24", "", 5, "nothing after it is allow-listed"},
	    {"cidr:@D@/missing.cidr", "", 1, "cannot read it"},
	    {"", "", 0, NULL},
	};
	run_cases(tc, MXW_ARRAY_LEN(tc), false);
}

#define EX "exim relay_from_hosts"

static void test_exim(void **state)
{
	static const struct tcase tc[] = {
	    /* ':' separates, "::" is a literal colon */
	    {"127.0.0.1 : ::::1 : 192.168.0.0/16", "127.0.0.1/32|" EX ";::1/128|" EX ";192.168.0.0/16|" EX, 0,
	     NULL},
	    /* "<;" changes the separator (Debian's default list) */
	    {"<; 127.0.0.1 ; ::1 ; 2001:db8::/32", "127.0.0.1/32|" EX ";::1/128|" EX ";2001:db8::/32|" EX, 0,
	     NULL},
	    {"  <, 192.0.2.0/24, 2001:db8:1::/48", "192.0.2.0/24|" EX ";2001:db8:1::/48|" EX, 0, NULL},
	    /* Exim masks the address with the length */
	    {"192.0.2.7/24", "192.0.2.0/24|" EX, 0, NULL},
	    {"!192.0.2.1 : 192.0.2.0/30", "192.0.2.2/31|" EX ";192.0.2.0/32|" EX, 0, NULL},
	    {"! 192.0.2.0/25 : 192.0.2.0/24", "192.0.2.128/25|" EX, 0, NULL},
	    {"!* : 192.0.2.0/24", "", 0, NULL},
	    {"*", "", 1, "matches every host"},
	    {"+localnet : net-lsearch;/etc/exim4/relay : *.example.com : @[] : ^mail : 203.0.113.0/24",
	     "203.0.113.0/24|" EX, 5, "a lookup"},
	    {"!+badhosts : 203.0.113.0/24", "", 2, "the exclusion '!+badhosts' is not read (a named list)"},
	    {"${if exists{/etc/relay}{192.0.2.1}{}}", "", 1, "expanded"},
	    {"0.0.0.0/0", "", 1, "wider than /8"},
	    {"", "", 0, NULL},
	    {" : 192.0.2.1 : ", "192.0.2.1/32|" EX, 0, NULL},
	    /* as Exim 4.96 prints them (`exim4 -C FILE -n -bP +relay_from_hosts`) */
	    {"<; 127.0.0.1 ; ::1 ; !198.51.100.7 ; 198.51.100.0/28 ; +office ; *.example.com",
	     "127.0.0.1/32|" EX ";::1/128|" EX ";198.51.100.8/29|" EX ";198.51.100.0/30|" EX
	     ";198.51.100.4/31|" EX ";198.51.100.6/32|" EX,
	     2, "'*.example.com' is not read"},
	    {"127.0.0.1 : ::::1 : 203.0.113.0/28 : 2001::db8::5::::/48",
	     "127.0.0.1/32|" EX ";::1/128|" EX ";203.0.113.0/28|" EX ";2001:db8:5::/48|" EX, 0, NULL},
	};
	run_cases(tc, MXW_ARRAY_LEN(tc), true);
}

/* mtaconf_read: "none" reads nothing; an MTA named explicitly must be
 * readable. (Reading a real `postconf -c DIR` is tests/mtaconf/
 * test_mta_trusted.py.) */
static void test_read_explicit(void **state)
{
	struct config c;
	config_defaults(&c);
	struct strv warn = {0}, err = {0};
	c.mta_trusted = 0;
	prefix_list_add(&c.trusted_nets, &(struct prefix){.addr = {.family = IPADDR_V4}, .len = 8});
	strv_add(&c.trusted_src, "stale");
	assert_int_equal(mtaconf_read(&c, &warn, &err), 0);
	assert_int_equal(c.trusted_nets.n, 0); /* replaced, not added to */
	assert_int_equal(err.n, 0);
	c.mta_trusted = TRUST_POSTFIX;
	c.postfix_config = xstrdup("/nonexistent/mxwarden-test");
	assert_int_equal(mtaconf_read(&c, &warn, &err), -1);
	assert_int_equal(err.n, 1);
	assert_non_null(strstr(err.v[0], "postfix"));
	strv_free(&warn);
	strv_free(&err);
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_postfix),
	    cmocka_unit_test(test_exim),
	    cmocka_unit_test(test_read_explicit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
