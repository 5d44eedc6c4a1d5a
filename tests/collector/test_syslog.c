/*
 * test_syslog.c - syslog envelopes (RFC 3164, RFC 5424, a missing host, a
 * bad PRI) rewritten into the line a log file would hold, and the host span.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "collector/collector.h"

static void test_syslog_table(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int want_rc;
		const char *want_line;
		const char *want_host;
	} cases[] = {
	    {"<22>Nov 27 20:04:37 mx1 postfix/smtpd[123]: connect from x[192.0.2.1]", 0,
	     "Nov 27 20:04:37 mx1 postfix/smtpd[123]: connect from x[192.0.2.1]", "mx1"},
	    {"<22>Nov  7 20:04:37 mx1 postfix/smtpd[123]: hi", 0,
	     "Nov  7 20:04:37 mx1 postfix/smtpd[123]: hi", "mx1"},
	    /* no host in the message: the peer stands in */
	    {"<22>Nov 27 20:04:37 postfix/smtpd[123]: hi", 0,
	     "Nov 27 20:04:37 127.0.0.9 postfix/smtpd[123]: hi", "127.0.0.9"},
	    {"<22>1 2026-11-27T20:04:37.123456+00:00 mx2 postfix/smtpd 4242 - - connect from x[192.0.2.1]", 0,
	     "2026-11-27T20:04:37.123456+00:00 mx2 postfix/smtpd[4242]: connect from x[192.0.2.1]", "mx2"},
	    {"<22>1 2026-11-27T20:04:37Z mx3 exim - ID47 [ex@32473 a=\"b\\]c\"][y@1 z=\"1\"] \xEF\xBB\xBFmsg "
	     "here",
	     0, "2026-11-27T20:04:37Z mx3 exim: msg here", "mx3"},
	    {"<22>1 2026-11-27T20:04:37Z - app - - -", 0,
	     "2026-11-27T20:04:37Z 127.0.0.9 app: ", "127.0.0.9"},
	    /* rsyslog RSYSLOG_ForwardFormat: RFC 3339 stamp in a 3164 frame */
	    {"<22>2026-11-27T20:04:37.5+01:00 mx4 postfix/smtpd[1]: x", 0,
	     "2026-11-27T20:04:37.5+01:00 mx4 postfix/smtpd[1]: x", "mx4"},
	    {"<999>Nov 27 20:04:37 mx1 a: b", -1, NULL, NULL},
	    {"<x>Nov 27 20:04:37 mx1 a: b", -1, NULL, NULL},
	    {"<22>", -1, NULL, NULL},
	    {"<22>1 2026-11-27T20:04:37Z mx3", -1, NULL, NULL},
	};
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct span host;
		int rc = syslog_to_line(cases[i].in, strlen(cases[i].in), "127.0.0.9", &out, &host);
		if (rc != cases[i].want_rc)
			fail_msg("case %zu: got rc %d, want %d ('%s')", i, rc, cases[i].want_rc,
				 buf_str(&out));
		if (rc < 0)
			continue;
		if (strcmp(buf_str(&out), cases[i].want_line) != 0)
			fail_msg("case %zu: got line '%s', want '%s'", i, buf_str(&out), cases[i].want_line);
		if (host.n != strlen(cases[i].want_host) || memcmp(host.p, cases[i].want_host, host.n) != 0)
			fail_msg("case %zu: got host '%.*s', want '%s'", i, (int)host.n, host.p,
				 cases[i].want_host);
	}
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_syslog_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
