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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* Who may send: loopback only without an allow list; UDP from a peer
 * that is not loopback only with udp_remote, even when allowed. */
static void test_peer_table(void **state)
{
	(void)state;
	static const struct {
		const char *allow; /* comma-separated, "" = none */
		bool udp_remote, udp;
		const char *peer;
		int want;
	} cases[] = {
	    {"", false, false, "127.0.0.1", SYSLOG_PEER_OK},
	    {"", false, true, "127.0.0.1", SYSLOG_PEER_OK},
	    {"", false, true, "::1", SYSLOG_PEER_OK},
	    {"", false, false, "192.0.2.1", SYSLOG_PEER_NOT_ALLOWED},
	    {"", true, true, "192.0.2.1", SYSLOG_PEER_NOT_ALLOWED},
	    {"", false, false, "2001:db8::1", SYSLOG_PEER_NOT_ALLOWED},
	    {"192.0.2.0/24", false, false, "192.0.2.1", SYSLOG_PEER_OK},
	    {"192.0.2.0/24", false, true, "192.0.2.1", SYSLOG_PEER_UDP_REMOTE},
	    {"192.0.2.0/24", true, true, "192.0.2.1", SYSLOG_PEER_OK},
	    {"192.0.2.0/24", false, false, "198.51.100.7", SYSLOG_PEER_NOT_ALLOWED},
	    {"192.0.2.0/24", true, true, "198.51.100.7", SYSLOG_PEER_NOT_ALLOWED},
	    {"192.0.2.0/24", false, false, "127.0.0.1", SYSLOG_PEER_NOT_ALLOWED},
	    {"192.0.2.0/24, 127.0.0.0/8", false, true, "127.0.0.1", SYSLOG_PEER_OK},
	    {"2001:db8::/32", false, true, "2001:db8::7", SYSLOG_PEER_UDP_REMOTE},
	    {"2001:db8::/32", true, true, "2001:db8::7", SYSLOG_PEER_OK},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct prefix_list allow = {0};
		char list[64];
		snprintf(list, sizeof list, "%s", cases[i].allow);
		char *save = NULL;
		for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
			struct prefix p;
			assert_int_equal(prefix_parse(&p, t, strlen(t), true), 0);
			prefix_list_add(&allow, &p);
		}
		struct ipaddr ip;
		assert_int_equal(ipaddr_parse(&ip, cases[i].peer, strlen(cases[i].peer)), 0);
		int got = syslog_peer_check(&allow, cases[i].udp_remote, &ip, cases[i].udp);
		if (got != cases[i].want)
			fail_msg("case %zu: allow '%s' udp_remote %d %s from %s: got %d, want %d", i,
				 cases[i].allow, cases[i].udp_remote, cases[i].udp ? "UDP" : "TCP",
				 cases[i].peer, got, cases[i].want);
		/* NULL is the empty list */
		if (!cases[i].allow[0] &&
		    syslog_peer_check(NULL, cases[i].udp_remote, &ip, cases[i].udp) != cases[i].want)
			fail_msg("case %zu: NULL allow list differs from an empty one", i);
		prefix_list_free(&allow);
	}
}

/* A TCP port free on every address now (the kernel's pick; tests running
 * beside this one may take it: callers try again). */
static unsigned free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
	socklen_t l = sizeof a;
	assert_true(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Without an allow list the receiver refuses to listen beyond loopback. */
static void test_bind_refused(void **state)
{
	(void)state;
	char addr[64];
	static const char *const refused[] = {"0.0.0.0", "[::]", "192.0.2.1"};
	for (size_t i = 0; i < MXW_ARRAY_LEN(refused); i++) {
		snprintf(addr, sizeof addr, "%s:%u", refused[i], free_port());
		struct coll_opts o = {.syslog_listen = addr};
		struct collector *c = collector_new(&o, NULL, NULL);
		if (c)
			fail_msg("%s without syslog_allow: listening", addr);
	}
	struct coll_opts o = {.syslog_listen = addr};
	struct collector *c = NULL;
	for (int tries = 0; !c && tries < 5; tries++) {
		snprintf(addr, sizeof addr, "127.0.0.1:%u", free_port());
		c = collector_new(&o, NULL, NULL);
	}
	if (!c)
		fail_msg("%s without syslog_allow: refused", addr);
	collector_free(c);
	struct prefix_list allow = {0};
	struct prefix p;
	prefix_parse(&p, "192.0.2.0/24", 12, true);
	prefix_list_add(&allow, &p);
	o.syslog_allow = &allow;
	c = NULL;
	for (int tries = 0; !c && tries < 5; tries++) {
		snprintf(addr, sizeof addr, "0.0.0.0:%u", free_port());
		c = collector_new(&o, NULL, NULL);
	}
	if (!c)
		fail_msg("%s with syslog_allow: refused", addr);
	collector_free(c);
	prefix_list_free(&allow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_syslog_table),
	    cmocka_unit_test(test_peer_table),
	    cmocka_unit_test(test_bind_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
