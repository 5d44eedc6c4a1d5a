/* test_config.c - the INI reader: values land in the struct, every mistake
 * is reported with its line, nothing is silently cut or ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/base.h"

static char *write_tmp(const char *text)
{
	char *path = xstrdup("/tmp/mxw-config-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *fp = fdopen(fd, "w");
	fputs(text, fp);
	fclose(fp);
	return path;
}

static void test_defaults_valid(void **state)
{
	struct config c;
	struct errlist e = {0};
	config_defaults(&c);
	assert_int_equal(config_validate(&c, &e), 0);
	assert_string_equal(c.listen, "127.0.0.1:8025");
	assert_int_equal(c.classes.v4_len, 24);
	assert_int_equal(c.classes.v6_len, 64);
	assert_true(c.protected_networks.n > 10);
	assert_int_equal(c.mta_trusted, TRUST_AUTO);
	config_free(&c);
	errlist_free(&e);
}

static void test_values(void **state)
{
	char *p = write_tmp("# comment\n"
			    "; another\n"
			    "[storage]\n"
			    "db = /tmp/x.db\n"
			    "retention_events = 2d\n"
			    "[collector]\n"
			    "follow = /var/log/mail.log, /var/log/exim4/mainlog\n"
			    "follow = /var/log/other.log\n"
			    "[classes]\n"
			    "ipv4 = /22\n"
			    "ipv6 = 56\n"
			    "[rules]\n"
			    "harvest_ratio = 0.5\n"
			    "dry_run = yes\n"
			    "[safety]\n"
			    "protected_networks = none\n"
			    "allow = 198.51.100.0/24, 2001:db8::1\n"
			    "mta_trusted = exim, postfix\n"
			    "postfix_config = /etc/postfix-out\n"
			    "[output fw]\n"
			    "format = ipset\n"
			    "path = /tmp/out.ipset\n"
			    "families = ipv4\n"
			    "scope = class\n"
			    "min_response = reject\n"
			    "reload = /usr/sbin/ipset restore \"-file name\"\n"
			    "[parser custom1]\n"
			    "pattern = ^x (?<ip>\\S+) # not a comment ; nor this\n"
			    "category = dnsbl\n"
			    "[web]\n"
			    "listen = [::1]:9000\n");
	struct config c;
	struct errlist e = {0};
	config_defaults(&c);
	int rc = config_load(&c, p, &e);
	for (size_t i = 0; i < e.msgs.n; i++)
		print_message("%s\n", e.msgs.v[i]);
	assert_int_equal(rc, 0);
	assert_int_equal(config_validate(&c, &e), 0);
	assert_string_equal(c.db_path, "/tmp/x.db");
	assert_int_equal(c.retention_events, 2 * 86400);
	assert_int_equal(c.follow.n, 3);
	assert_string_equal(c.follow.v[1], "/var/log/exim4/mainlog");
	assert_int_equal(c.classes.v4_len, 22);
	assert_int_equal(c.classes.v6_len, 56);
	assert_true(c.rules.harvest_ratio == 0.5);
	assert_true(c.rules.dry_run);
	assert_int_equal(c.protected_networks.n, 0);
	assert_false(c.protected_builtin);
	assert_false(c.protected_local);
	assert_int_equal(c.allow.n, 2);
	assert_int_equal(c.mta_trusted, TRUST_POSTFIX | TRUST_EXIM);
	assert_string_equal(c.postfix_config, "/etc/postfix-out");
	assert_null(c.exim_config);
	assert_int_equal(c.trusted_nets.n, 0); /* read by mtaconf_read, never by config_load */
	assert_int_equal(c.n_outputs, 1);
	assert_string_equal(c.outputs[0].format, "ipset");
	assert_int_equal(c.outputs[0].families, FAMILY_V4);
	assert_true(c.outputs[0].class_only);
	assert_int_equal(c.outputs[0].min_response, RESP_REJECT);
	assert_int_equal(c.outputs[0].reload.n, 3);
	assert_string_equal(c.outputs[0].reload.v[2], "-file name");
	assert_int_equal(c.n_parsers, 1);
	assert_string_equal(c.parsers[0].pattern, "^x (?<ip>\\S+) # not a comment ; nor this");
	assert_string_equal(c.listen, "[::1]:9000");
	config_free(&c);
	errlist_free(&e);
	unlink(p);
	free(p);
}

/* Each case: a file and the exact list of messages it must produce. */
static void test_errors_table(void **state)
{
	static const struct {
		const char *text;
		const char *want[4];
	} cases[] = {
	    {"[storage]\nretention_events = 3 days\n[rules]\nbogus = 1\n[nosuch]\nx = 1\n",
	     {":2: retention_events: '3 days' is not a duration", ":4: unknown key 'bogus' in [rules]",
	      ":5: unknown section [nosuch]", NULL}},
	    {"key = 1\n[web\n[web]\nlisten = 1.2.3.4\n",
	     {":1: key 'key' outside of any section", ":2: malformed section header",
	      ":4: listen: '1.2.3.4' is not ADDR:PORT", NULL}},
	    {"[safety]\nmta_trusted = postfix, sendmail\n",
	     {":2: mta_trusted: 'sendmail' is not auto, none, postfix or exim", NULL}},
	    {"[rules]\nretry_count = 3\nretry_count = 4\nharvest_ratio = abc\n",
	     {":3: 'retry_count' already set at line 2",
	      ":4: harvest_ratio: 'abc' is not a non-negative number", NULL}},
	    {"[output]\nformat = ipset\n[output a]\nformat = nosuch\n[output a]\n",
	     {":1: [output] needs a name", ":5: [output a] already defined at line 3",
	      ":3: [output a] has no path", NULL}}, /* the format is emitters_check_config()'s */
	    {"[safety]\nprotected_networks = 10.0.0.0/8, 1.2.3.4/33\n[output x]\nformat=plain\npath=/tmp/p\n"
	     "reload = bin/x\n",
	     {":2: '1.2.3.4/33' is not an address or a CIDR prefix",
	      ":6: reload: the command must be an absolute", NULL}},
	    {"[parser p]\npattern = x\ncategory = nope\n",
	     {":3: category: unknown category 'nope'", ":1: [parser p] has no category", NULL}},
	    /* the bounds of the key table */
	    {"[rules]\nharvest_ratio = 1.5\n[collector]\nbatch_lines = 0\n[report]\ntop = 0\n",
	     {": [collector] batch_lines must be at least 1",
	      ": [rules] harvest_ratio must be between 0 and 1", ": [report] top must be between 1 and 1000",
	      NULL}},
	    {"[web]\n[abuse]\ncontacts = /x\n",
	     {":2: [abuse] needs reporter_org", ":2: [abuse] needs reporter_contact",
	      ":2: [abuse] needs reporter_domain", NULL}},
	    {"[abuse]\nreporter_org = A\x01B\nreporter_contact = a b@x.example\nreporter_domain = "
	     "-x.example\n"
	     "rdap = yes\n",
	     {":1: [abuse] reporter_org must be printable", ":1: [abuse] reporter_contact: 'a b@x.example'",
	      ":1: [abuse] reporter_domain: '-x.example'", ":1: [abuse] rdap needs rdap_bootstrap"}},
	    {"[report]\ndigest = 25:00\nmail_to = x@y.example\n[notify]\ncommand = notify.sh\n",
	     {":5: command: the command must be an absolute", ": [report] digest: '25:00' is not off, daily",
	      ": [report] mail_to needs [abuse] smtp", NULL}},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		char *p = write_tmp(cases[i].text);
		struct config c;
		struct errlist e = {0};
		config_defaults(&c);
		config_load(&c, p, &e);
		config_validate(&c, &e);
		size_t nwant = 0;
		while (nwant < 4 && cases[i].want[nwant])
			nwant++;
		for (size_t j = 0; j < e.msgs.n; j++)
			print_message("case %zu: %s\n", i, e.msgs.v[j]);
		if (e.msgs.n != nwant)
			fail_msg("case %zu: got %zu errors, want %zu", i, e.msgs.n, nwant);
		for (size_t j = 0; j < nwant; j++) {
			if (strncmp(e.msgs.v[j], p, strlen(p)) != 0 || !strstr(e.msgs.v[j], cases[i].want[j]))
				fail_msg("case %zu error %zu: got '%s', want '%s%s...'", i, j, e.msgs.v[j], p,
					 cases[i].want[j]);
		}
		config_free(&c);
		errlist_free(&e);
		unlink(p);
		free(p);
	}
}

/* The lines of a dump that are not comments (those say where a value came
 * from: FILE:LINE differs between the two reads), in place. */
static const char *values_of(struct buf *b)
{
	char *w = b->data, *r = b->data;
	while (r && *r) {
		char *nl = strchr(r, '\n');
		size_t n = nl ? (size_t)(nl - r + 1) : strlen(r);
		if (*r != '#') {
			memmove(w, r, n);
			w += n;
		}
		r += n;
	}
	if (w)
		*w = '\0';
	return b->data ? b->data : "";
}

/* check-config -v's dump is a configuration file: read back, it gives the
 * same values (every key of the table printed in a notation its parser
 * reads), from the defaults and from a file that sets values of each type. */
static void test_dump_reads_back(void **state)
{
	static const char *const files[] = {
	    "",
	    "[collector]\nfollow = /var/log/mail.log, /var/log/exim4/mainlog\nsyslog_listen = [::1]:5514\n"
	    "timezone = Europe/Berlin\n[rules]\nharvest_ratio = 0.75\nblock_jitter = 0\ndry_run = yes\n"
	    "[safety]\nprotected_networks = 10.0.0.0/8, 2001:db8::/32\nallow = 192.0.2.7\nmta_trusted = "
	    "postfix, exim\nmax_change = 25%\n[output a]\nformat = nft\npath = /tmp/a\nfamilies = "
	    "ipv6\nscope "
	    "= class\nmin_response = reject\nreload = /usr/sbin/nft -f \"/tmp/a b\"\nreload_timeout = 2m\n"
	    "[parser p]\npattern = ^x (?<ip>\\S+)\ncategory = auth\nkind = protocol\n"
	    "[abuse]\nreporter_org = Example Mail\nreporter_contact = abuse@example.org\nreporter_domain = "
	    "example.org\nsmtp = 127.0.0.1:25\n[report]\ndigest = 06:30\n[notify]\ncommand = /bin/cat -\n",
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(files); i++) {
		struct config c;
		struct errlist e = {0};
		config_defaults(&c);
		char *p = write_tmp(files[i]);
		assert_int_equal(config_load(&c, p, &e), 0);
		assert_int_equal(config_validate(&c, &e), 0);
		struct buf d1 = BUF_INIT, d2 = BUF_INIT;
		config_dump(&c, &d1);
		config_free(&c);
		char *q = write_tmp(buf_str(&d1));
		config_defaults(&c);
		if (config_load(&c, q, &e) < 0 || config_validate(&c, &e) < 0)
			fail_msg("file %zu: the dump does not read back: %s\n%s", i, e.msgs.v[0],
				 buf_str(&d1));
		config_dump(&c, &d2);
		if (strcmp(values_of(&d1), values_of(&d2)) != 0)
			fail_msg("file %zu: read back, the dump differs:\n%s\n---\n%s", i, buf_str(&d1),
				 buf_str(&d2));
		config_free(&c);
		errlist_free(&e);
		buf_free(&d1);
		buf_free(&d2);
		unlink(p);
		unlink(q);
		free(p);
		free(q);
	}
}

static void test_report_keys(void **state)
{
	static const struct {
		const char *digest;
		int64_t at;
	} cases[] = {{"off", -1}, {"daily", 0}, {"06:30", 23400}, {"23:59", 86340}, {"00:00", 0}};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		char text[400];
		snprintf(
		    text, sizeof text,
		    "[abuse]\nreporter_org = Example \"Mail\" <Ops>\nreporter_contact = abuse@example.org\n"
		    "reporter_domain = example.org\nsmtp = 127.0.0.1:25\n[report]\ndigest = %s\n"
		    "mail_to = pm@example.org\n[notify]\ncommand = /bin/cat -\n",
		    cases[i].digest);
		char *p = write_tmp(text);
		struct config c;
		struct errlist e = {0};
		config_defaults(&c);
		assert_int_equal(config_load(&c, p, &e), 0);
		assert_int_equal(config_validate(&c, &e), 0);
		if (c.report.digest_at != cases[i].at)
			fail_msg("digest = %s: got %lld, want %lld", cases[i].digest,
				 (long long)c.report.digest_at, (long long)cases[i].at);
		assert_true(c.abuse.used);
		assert_int_equal(c.abuse.max_per_contact, 10);
		assert_int_equal(c.abuse.keep, 30 * 86400);
		assert_int_equal(c.notify.command.n, 2);
		config_free(&c);
		errlist_free(&e);
		unlink(p);
		free(p);
	}
}

static void test_long_line_refused(void **state)
{
	struct buf b = BUF_INIT;
	buf_appends(&b, "[parser long]\npattern = ");
	for (int i = 0; i < 9000; i++)
		buf_appendc(&b, 'a');
	buf_appends(&b, "\ncategory = dnsbl\n");
	char *p = write_tmp(buf_str(&b));
	struct config c;
	struct errlist e = {0};
	config_defaults(&c);
	assert_int_equal(config_load(&c, p, &e), -1);
	assert_int_equal(e.msgs.n, 1);
	assert_non_null(strstr(e.msgs.v[0], ":2: line longer than"));
	config_free(&c);
	errlist_free(&e);
	buf_free(&b);
	unlink(p);
	free(p);
}

static void test_missing_file(void **state)
{
	struct config c;
	struct errlist e = {0};
	config_defaults(&c);
	assert_int_equal(config_load(&c, "/nonexistent/mxw.conf", &e), -1);
	assert_non_null(strstr(e.msgs.v[0], "cannot open"));
	config_free(&c);
	errlist_free(&e);
}

/* protected_networks adds to the built-in ranges; only !CIDR, !default,
 * !local and none take something out, each with a warning naming it.
 * The host's own addresses are left out (!local) where the case does
 * not need them: they differ from machine to machine. */
static void test_protected_table(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		int want_rc;	      /* config_validate */
		const char *in, *out; /* comma-separated addresses protected / not */
		const char *warn;     /* a warning must hold this ("" = none at all) */
	} cases[] = {
	    {"203.0.113.0/24, !local", 0, "203.0.113.5,10.0.0.1,127.0.0.1,fd00::1,192.168.1.1",
	     "198.51.100.7", "this host's own addresses are not protected"},
	    {"default, 203.0.113.0/24, !local", 0, "203.0.113.5,10.0.0.1,100.64.0.1", "198.51.100.7",
	     "not protected"},
	    {"none", 0, "", "10.0.0.1,127.0.0.1,fd00::1,203.0.113.5", "10.0.0.0/8 (RFC 1918 private)"},
	    {"!10.20.0.0/16, !local", 0, "10.19.255.255,10.21.0.1,10.0.0.1,10.255.0.1",
	     "10.20.0.1,10.20.255.255",
	     "!10.20.0.0/16 takes 10.20.0.0/16 out of the built-in range 10.0.0.0/8 (RFC 1918 private)"},
	    {"!10.0.0.0/8, !local", 0, "172.16.0.1,127.0.0.1", "10.0.0.1",
	     "drops the built-in range 10.0.0.0/8"},
	    {"!default, !local, 203.0.113.0/24", 0, "203.0.113.5", "10.0.0.1,127.0.0.1",
	     "the built-in ranges 0.0.0.0/8"},
	    {"!local, !198.51.100.0/24", -1, "", "", NULL},
	    {"!local, 10.0.0.0/8, !10.1.0.0/16", 0, "10.1.0.1,10.2.0.1", "", "takes 10.1.0.0/16 out"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		char text[256];
		snprintf(text, sizeof text, "[safety]\nprotected_networks = %s\n", cases[i].value);
		char *p = write_tmp(text);
		struct config c;
		struct errlist e = {0};
		config_defaults(&c);
		int rc = config_load(&c, p, &e);
		if (rc == 0)
			rc = config_validate(&c, &e);
		if (rc != cases[i].want_rc)
			fail_msg("case %zu (%s): got rc %d, want %d (%s)", i, cases[i].value, rc,
				 cases[i].want_rc, e.msgs.n ? e.msgs.v[0] : "");
		if (rc < 0) {
			/* a cut that takes out nothing names itself and its line */
			if (!e.msgs.n ||
			    !strstr(e.msgs.v[0], ":2: protected_networks: !198.51.100.0/24 takes out "
						 "nothing"))
				fail_msg("case %zu: got error '%s'", i, e.msgs.n ? e.msgs.v[0] : "");
		}
		for (int want = 1; want >= 0 && rc == 0; want--) {
			char list[128];
			snprintf(list, sizeof list, "%s", want ? cases[i].in : cases[i].out);
			char *save = NULL;
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				struct ipaddr ip;
				assert_int_equal(ipaddr_parse(&ip, t, strlen(t)), 0);
				if (prefix_list_contains(&c.protected_networks, &ip) != (bool)want)
					fail_msg("case %zu (%s): %s protected: got %d, want %d", i,
						 cases[i].value, t, !want, want);
			}
		}
		if (rc == 0 && cases[i].warn) {
			bool found = false;
			for (size_t k = 0; k < c.warnings.n; k++)
				found = found || strstr(c.warnings.v[k], cases[i].warn) != NULL;
			if (!found)
				fail_msg("case %zu (%s): no warning with '%s' among %zu", i, cases[i].value,
					 cases[i].warn, c.warnings.n);
		}
		/* every entry has its source, and the dump reads back the same list */
		assert_int_equal(c.protected_src.n, c.protected_networks.n);
		if (rc == 0) {
			struct buf d = BUF_INIT;
			config_dump(&c, &d);
			/* (the whole dump does not load: empty values are shown empty) */
			const char *line = strstr(buf_str(&d), "\nprotected_networks = ");
			assert_non_null(line);
			char again[512];
			snprintf(again, sizeof again, "[safety]%.*s\n", (int)strcspn(line + 1, "\n") + 1,
				 line);
			char *p2 = write_tmp(again);
			struct config c2;
			struct errlist e2 = {0};
			config_defaults(&c2);
			if (config_load(&c2, p2, &e2) < 0 || config_validate(&c2, &e2) < 0)
				fail_msg("case %zu: the dump does not load: %s", i,
					 e2.msgs.n ? e2.msgs.v[0] : "");
			assert_int_equal(c2.protected_networks.n, c.protected_networks.n);
			for (size_t k = 0; k < c.protected_networks.n; k++)
				assert_int_equal(
				    prefix_cmp(&c2.protected_networks.v[k], &c.protected_networks.v[k]), 0);
			config_free(&c2);
			errlist_free(&e2);
			unlink(p2);
			free(p2);
			buf_free(&d);
		}
		config_free(&c);
		errlist_free(&e);
		unlink(p);
		free(p);
	}
	/* the defaults: the built-in ranges and the host's own addresses, no warning */
	struct config c;
	struct errlist e = {0};
	config_defaults(&c);
	assert_int_equal(config_validate(&c, &e), 0);
	assert_int_equal(c.warnings.n, 0);
	struct prefix lo;
	assert_true(config_protected_builtin(0, &lo, NULL));
	assert_true(prefix_list_overlaps(&c.protected_networks, &lo));
	for (size_t k = 0; k < c.protected_src.n; k++)
		if (strncmp(c.protected_src.v[k], "built-in: ", 10) &&
		    strncmp(c.protected_src.v[k], "this host (", 11))
			fail_msg("default entry %zu: source '%s'", k, c.protected_src.v[k]);
	config_free(&c);
	errlist_free(&e);
}

/* The syslog receiver: loopback, or an allow list; UDP from other hosts
 * only with syslog_udp_remote, which is a warning. */
static void test_syslog_table(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int want_rc;
		const char *want; /* in the error or the warning, NULL = none */
	} cases[] = {
	    {"syslog_listen = 127.0.0.1:514\n", 0, NULL},
	    {"syslog_listen = [::1]:514\n", 0, NULL},
	    {"syslog_listen = 0.0.0.0:514\n", -1, "listens beyond loopback without syslog_allow"},
	    {"syslog_listen = 192.0.2.1:514\n", -1, "syslog_allow"},
	    {"syslog_listen = *:514\n", -1, "syslog_allow"},
	    {"syslog_listen = 0.0.0.0:514\nsyslog_allow = 192.0.2.0/24\n", 0, NULL},
	    {"syslog_listen = 0.0.0.0:514\nsyslog_allow = 192.0.2.1/24\n", -1, "'192.0.2.1/24' is not"},
	    {"syslog_listen = 0.0.0.0:514\nsyslog_allow = mx1.example\n", -1, "'mx1.example' is not"},
	    {"syslog_listen = 0.0.0.0:514\nsyslog_allow = 192.0.2.0/24\nsyslog_udp_remote = yes\n", 0,
	     "UDP source address can be forged"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		char text[256];
		snprintf(text, sizeof text, "[collector]\n%s", cases[i].text);
		char *p = write_tmp(text);
		struct config c;
		struct errlist e = {0};
		config_defaults(&c);
		int rc = config_load(&c, p, &e);
		if (rc == 0)
			rc = config_validate(&c, &e);
		if (rc != cases[i].want_rc)
			fail_msg("case %zu: got rc %d, want %d (%s)", i, rc, cases[i].want_rc,
				 e.msgs.n ? e.msgs.v[0] : "");
		const char *said =
		    rc < 0 ? (e.msgs.n ? e.msgs.v[0] : "") : (c.warnings.n ? c.warnings.v[0] : "");
		if (cases[i].want ? !strstr(said, cases[i].want) : (rc == 0 && c.warnings.n))
			fail_msg("case %zu: got '%s', want '%s'", i, said,
				 cases[i].want ? cases[i].want : "");
		config_free(&c);
		errlist_free(&e);
		unlink(p);
		free(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_valid),  cmocka_unit_test(test_values),
	    cmocka_unit_test(test_errors_table),    cmocka_unit_test(test_long_line_refused),
	    cmocka_unit_test(test_missing_file),    cmocka_unit_test(test_report_keys),
	    cmocka_unit_test(test_protected_table), cmocka_unit_test(test_syslog_table),
	    cmocka_unit_test(test_dump_reads_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
