/* test_reports_unit.c - the pieces of the abuse reports, table by table:
 * quoted-printable and base64 (RFC 2045, RFC 4648 vectors), display
 * names, dates, boundaries and UUIDs; plain mail addresses and host names;
 * what is worth a report and its XARF type; the contact map; RDAP answers;
 * the file stamps and pruning; the digest's slot. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "reports/internal.h"
#include "reports/schedule.h"

/* Decode quoted-printable (soft breaks, =XX) back to bytes with '\n' ends. */
static void qp_decode(const char *s, struct buf *out)
{
	for (const char *p = s; *p;) {
		if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
			p += 3;
		} else if (p[0] == '=') {
			unsigned v;
			assert_int_equal(sscanf(p + 1, "%2X", &v), 1);
			buf_appendc(out, (char)v);
			p += 3;
		} else if (p[0] == '\r' && p[1] == '\n') {
			buf_appendc(out, '\n');
			p += 2;
		} else {
			buf_appendc(out, *p++);
		}
	}
}

static void test_qp(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"", ""},
	    {"plain\n", "plain\r\n"},
	    {"no newline", "no newline\r\n"},
	    {"a=b", "a=3Db\r\n"},
	    {"trailing blank \nand tab\t\n", "trailing blank=20\r\nand tab=09\r\n"},
	    {"From me\n From you", "=46rom me\r\n From you\r\n"},
	    {"caf\xc3\xa9", "caf=C3=A9\r\n"},
	    {"cr\rin line", "cr=0Din line\r\n"},
	    {"=_mxw_", "=3D_mxw_\r\n"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct buf b = BUF_INIT;
		mail_qp(&b, cases[i].in, strlen(cases[i].in));
		if (strcmp(buf_str(&b), cases[i].want) != 0)
			fail_msg("qp(%s): got '%s', want '%s'", cases[i].in, buf_str(&b), cases[i].want);
		buf_free(&b);
	}
	/* long lines: at most 76 characters, "=_" never, and it decodes back */
	struct buf in = BUF_INIT, out = BUF_INIT, back = BUF_INIT;
	for (int i = 0; i < 500; i++)
		buf_appendc(&in, "ab=_ \xc3\xa9.-"[i % 10]);
	buf_appends(&in, "\nshort\n");
	mail_qp(&out, in.data, in.len);
	for (char *l = out.data, *e; (e = strstr(l, "\r\n")); l = e + 2)
		assert_true(e - l <= 76);
	assert_null(strstr(out.data, "=_"));
	qp_decode(out.data, &back);
	assert_int_equal(back.len, in.len);
	assert_memory_equal(back.data, in.data, in.len);
	buf_free(&in);
	buf_free(&out);
	buf_free(&back);
}

static void test_base64(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {{"", ""},
		     {"f", "Zg=="},
		     {"fo", "Zm8="},
		     {"foo", "Zm9v"},
		     {"foob", "Zm9vYg=="},
		     {"fooba", "Zm9vYmE="},
		     {"foobar", "Zm9vYmFy"}};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct buf b = BUF_INIT;
		mail_base64(&b, cases[i].in, strlen(cases[i].in), 0);
		if (strcmp(buf_str(&b), cases[i].want) != 0)
			fail_msg("base64(%s): got '%s', want '%s'", cases[i].in, buf_str(&b), cases[i].want);
		buf_free(&b);
	}
	struct buf b = BUF_INIT;
	char data[100];
	memset(data, 'x', sizeof data);
	mail_base64(&b, data, sizeof data, 76);
	/* 100 bytes: 136 characters, 76 on the first line, 60 on the second */
	assert_int_equal(b.len, 136 + 4);
	assert_memory_equal(b.data + 76, "\r\n", 2);
	assert_string_equal(b.data + 76 + 2 + 56, "eA==\r\n");
	buf_free(&b);
}

static void test_headers(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"Example Mail", "\"Example Mail\""},
	    {"Say \"hi\" \\ bye", "\"Say \\\"hi\\\" \\\\ bye\""},
	    {"M\xc3\xbcller", "=?utf-8?B?TcO8bGxlcg==?="},
	    {"tab\there", "=?utf-8?B?dGFiP2hlcmU=?="},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct buf b = BUF_INIT;
		mail_phrase(&b, cases[i].in);
		if (strcmp(buf_str(&b), cases[i].want) != 0)
			fail_msg("phrase(%s): got '%s', want '%s'", cases[i].in, buf_str(&b), cases[i].want);
		buf_free(&b);
	}
	/* a long non-ASCII name: several encoded-words of at most 75 characters */
	struct buf b = BUF_INIT;
	mail_phrase(&b, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	assert_non_null(strstr(b.data, "?=\r\n =?utf-8?B?"));
	for (char *w = b.data, *e; w; w = e ? e + 3 : NULL) {
		e = strstr(w, "\r\n ");
		assert_true((e ? (size_t)(e - w) : strlen(w)) <= 75);
	}
	buf_free(&b);
	char date[MAIL_DATE_LEN];
	mail_date(1795824000, date);
	assert_string_equal(date, "Sat, 28 Nov 2026 00:00:00 +0000");
	char u[MAIL_UUID_LEN], v[MAIL_UUID_LEN], bd[MAIL_BOUNDARY_LEN];
	mail_uuid(u);
	mail_uuid(v);
	assert_int_equal(strlen(u), 36);
	assert_true(u[14] == '4' && strchr("89ab", u[19]) && u[8] == '-' && strcmp(u, v) != 0);
	mail_boundary(bd);
	assert_int_equal(strncmp(bd, "=_mxw_", 6), 0);
	assert_int_equal(strlen(bd), 38);
}

static void test_addresses(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} addrs[] = {
	    {"abuse@example.net", true},
	    {"a.b+c@sub.example.net", true},
	    {"o'brien@x-y.example", true},
	    {"abuse@localhost", true},
	    {"", false},
	    {"@example.net", false},
	    {"abuse@", false},
	    {"abuse", false},
	    {"a..b@example.net", false},
	    {".a@example.net", false},
	    {"a.@example.net", false},
	    {"\"q\"@example.net", false},
	    {"a b@example.net", false},
	    {"a@exa mple.net", false},
	    {"a\r\nBcc: x@evil.example", false},
	    {"a@-example.net", false},
	    {"a@example-.net", false},
	    {"a@example..net", false},
	    {"a@example.net.", false},
	    {"<a@example.net>", false},
	    {"a@b@example.net", false},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(addrs); i++)
		if (mail_addr_ok(addrs[i].s) != addrs[i].ok)
			fail_msg("mail_addr_ok(%s): got %d", addrs[i].s, !addrs[i].ok);
	char longlabel[80];
	memset(longlabel, 'a', 64);
	strcpy(longlabel + 64, ".example");
	assert_false(hostname_ok(longlabel));
	memmove(longlabel + 63, longlabel + 64, strlen(longlabel + 64) + 1); /* 63 bytes: fine */
	assert_true(hostname_ok(longlabel));
}

static json_t *ev(const char *s)
{
	json_t *j = json_loads(s, 0, NULL);
	assert_non_null(j);
	return j;
}

static void test_reportable(void **state)
{
	static const struct {
		const char *rule;
		enum scope scope;
		enum response resp;
		bool manual;
		const char *evidence;
		bool want;
	} cases[] = {
	    {"harvest", SCOPE_IP, RESP_REJECT, false, "{\"numbers\":{\"accepted\":0,\"bad_connections\":2}}",
	     true},
	    {"harvest", SCOPE_IP, RESP_DROP, false, "{\"sessions\":{\"bad\":3},\"numbers\":{\"accepted\":0}}",
	     true},
	    {"harvest", SCOPE_IP, RESP_DEFER, false, "{\"numbers\":{\"accepted\":0,\"bad_connections\":5}}",
	     false},
	    {"harvest", SCOPE_IP, RESP_OBSERVE, false, "{\"numbers\":{\"accepted\":0,\"bad_connections\":5}}",
	     false},
	    {"manual", SCOPE_IP, RESP_DROP, true, "{\"numbers\":{\"accepted\":0,\"bad_connections\":5}}",
	     false},
	    {"harvest", SCOPE_IP, RESP_REJECT, false, "{\"numbers\":{\"accepted\":0,\"bad_connections\":1}}",
	     false},
	    {"harvest", SCOPE_IP, RESP_REJECT, false, "{\"numbers\":{\"accepted\":2,\"bad_connections\":4}}",
	     false},
	    {"harvest", SCOPE_IP, RESP_REJECT, false, "{\"numbers\":{\"bad_connections\":4}}", false},
	    {"harvest", SCOPE_IP, RESP_REJECT, false, NULL, false},
	    /* a flood rests on its connections */
	    {"flood", SCOPE_IP, RESP_DROP, false,
	     "{\"numbers\":{\"accepted\":0,\"bad_connections\":1,\"connections\":42}}", true},
	    {"policy", SCOPE_IP, RESP_DROP, false,
	     "{\"numbers\":{\"accepted\":0,\"bad_connections\":1,\"connections\":42}}", false},
	    {"returned", SCOPE_IP, RESP_DROP, false, "{\"numbers\":{\"accepted\":0,\"returned\":30}}", true},
	    /* a class on its members' connections */
	    {"auth", SCOPE_CLASS, RESP_REJECT, false,
	     "{\"sessions\":{\"bad\":1},\"numbers\":{\"accepted\":0,\"connections\":3}}", true},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct decision d = {
		    .scope = cases[i].scope, .response = cases[i].resp, .manual = cases[i].manual};
		snprintf(d.rule, sizeof d.rule, "%s", cases[i].rule);
		json_t *e = cases[i].evidence ? ev(cases[i].evidence) : NULL;
		const char *why = abuse_unreportable(&d, e);
		if ((why == NULL) != cases[i].want)
			fail_msg("case %zu (%s): got %s, want %s", i, cases[i].rule, why ? why : "reportable",
				 cases[i].want ? "reportable" : "not");
		json_decref(e);
	}
}

static void test_classify(void **state)
{
	static const struct {
		const char *rule, *prefix;
		int port;
		const char *from, *category, *type, *threat;
	} cases[] = {
	    {"auth", "192.0.2.1/32", 4000, "", "connection", "login_attack", NULL},
	    {"auth", "192.0.2.1/32", 0, "", "reputation", "blocklist", "login_attack"},
	    {"auth", "192.0.2.0/24", 4000, "", "reputation", "blocklist", "login_attack"},
	    {"retry", "192.0.2.1/32", 25, "spam@x.example", "messaging", "spam", NULL},
	    {"policy", "2001:db8::1/128", 25, "spam@x.example", "messaging", "spam", NULL},
	    {"backoff", "192.0.2.1/32", 25, "", "reputation", "blocklist", "spam"},
	    {"retry", "192.0.2.1/32", 0, "spam@x.example", "reputation", "blocklist", "spam"},
	    {"harvest", "192.0.2.1/32", 0, "", "connection", "reconnaissance", NULL},
	    {"relay", "192.0.2.0/24", 0, "", "connection", "reconnaissance", NULL},
	    {"protocol", "192.0.2.1/32", 0, "", "connection", "reconnaissance", NULL},
	    {"flood", "192.0.2.1/32", 0, "", "reputation", "blocklist", "connection_flood"},
	    {"class", "192.0.2.0/24", 0, "", "reputation", "blocklist", "abusive_network"},
	    {"returned", "192.0.2.1/32", 0, "", "reputation", "blocklist", "returning_blocked_sender"},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct abuse_item it = {0};
		snprintf(it.d.rule, sizeof it.d.rule, "%s", cases[i].rule);
		assert_int_equal(prefix_parse(&it.d.prefix, cases[i].prefix, strlen(cases[i].prefix), true),
				 0);
		it.port = cases[i].port;
		snprintf(it.smtp_from, sizeof it.smtp_from, "%s", cases[i].from);
		abuse_classify(&it);
		if (strcmp(it.category, cases[i].category) || strcmp(it.type, cases[i].type) ||
		    (it.threat == NULL) != (cases[i].threat == NULL) ||
		    (it.threat && strcmp(it.threat, cases[i].threat)))
			fail_msg("%s %s port %d: got %s/%s/%s, want %s/%s/%s", cases[i].rule, cases[i].prefix,
				 cases[i].port, it.category, it.type, it.threat ? it.threat : "-",
				 cases[i].category, cases[i].type, cases[i].threat ? cases[i].threat : "-");
	}
}

static void test_contacts(void **state)
{
	char dir[] = "/tmp/mxw-contacts-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof path, "%s/map", dir);
	FILE *fp = fopen(path, "w");
	fputs(
	    "# comment\n\n198.51.100.0/24   abuse@wide.example\n198.51.100.128/25 abuse@narrow.example # x\n"
	    "2001:db8::/32 abuse@v6.example\n203.0.113.7 abuse@host.example\n",
	    fp);
	fclose(fp);
	struct abuse_conf a = {.contacts = path};
	struct errlist errs = {0};
	struct abuse_contacts *m = abuse_contacts_load(&a, &errs);
	assert_non_null(m);
	assert_int_equal(abuse_contacts_count(m), 4);
	static const struct {
		const char *p, *want;
	} cases[] = {
	    {"198.51.100.1/32", "abuse@wide.example"},
	    {"198.51.100.200/32", "abuse@narrow.example"},
	    {"198.51.100.0/24", "abuse@wide.example"},
	    {"198.51.100.128/25", "abuse@narrow.example"},
	    {"198.51.0.0/16", NULL},
	    {"2001:db8:1::5/128", "abuse@v6.example"},
	    {"2001:db8:1::/64", "abuse@v6.example"},
	    {"203.0.113.7/32", "abuse@host.example"},
	    {"203.0.113.8/32", NULL},
	    {"::ffff:1.2.3.4/128", NULL},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct prefix p;
		assert_int_equal(prefix_parse(&p, cases[i].p, strlen(cases[i].p), false), 0);
		const char *got = abuse_contacts_match(m, &p);
		if ((got == NULL) != (cases[i].want == NULL) || (got && strcmp(got, cases[i].want)))
			fail_msg("%s: got %s, want %s", cases[i].p, got ? got : "none",
				 cases[i].want ? cases[i].want : "none");
	}
	abuse_contacts_free(m);
	/* every bad line, with its number */
	fp = fopen(path, "w");
	fputs("198.51.100.0/24 abuse@ok.example\n198.51.100.1/24 abuse@x.example\nnot-a-net abuse@x.example\n"
	      "203.0.113.0/24 \"q\"@x.example\n198.51.100.0/24 abuse@dup.example\n2001:db8::/32\n"
	      "2001:db8::/32 a@b.example extra\n",
	      fp);
	fclose(fp);
	assert_null(abuse_contacts_load(&a, &errs));
	assert_int_equal(errs.msgs.n, 6);
	for (size_t i = 0; i < errs.msgs.n; i++) {
		char want[160];
		snprintf(want, sizeof want, "%s:%zu:", path, i + 2);
		if (strncmp(errs.msgs.v[i], want, strlen(want)) != 0)
			fail_msg("error %zu: %s", i, errs.msgs.v[i]);
	}
	errlist_free(&errs);
	unlink(path);
	rmdir(dir);
}

static void test_rdap_parse(void **state)
{
	static const char answer[] =
	    "{\"objectClassName\":\"ip "
	    "network\",\"startAddress\":\"198.51.100.0\",\"endAddress\":\"198.51.100.255\","
	    "\"entities\":[{\"roles\":[\"registrant\"],\"vcardArray\":[\"vcard\",[[\"email\",{},\"text\","
	    "\"noc@org.example\"]]],\"entities\":[{\"roles\":[\"technical\",\"abuse\"],\"vcardArray\":["
	    "\"vcard\","
	    "[[\"fn\",{},\"text\",\"A\"],[\"email\",{},\"text\",\"abuse@org.example\"]]],\"entities\":[{"
	    "\"roles\":"
	    "[\"abuse\"],\"vcardArray\":[\"vcard\",[[\"email\",{},\"text\",\"deep@org.example\"]]]}]}]}]}";
	struct ipaddr ip, lo, hi;
	char c[64];
	ipaddr_parse(&ip, "198.51.100.9", 12);
	assert_int_equal(rdap_parse(answer, strlen(answer), &ip, c, sizeof c, &lo, &hi), 0);
	assert_string_equal(c, "abuse@org.example");
	char a[IPADDR_STRLEN], b[IPADDR_STRLEN];
	ipaddr_format(&lo, a);
	ipaddr_format(&hi, b);
	assert_string_equal(a, "198.51.100.0");
	assert_string_equal(b, "198.51.100.255");
	/* an address that could break a command is no contact; a range not
	 * holding the address is replaced by the address */
	static const char bad[] = "{\"startAddress\":\"10.0.0.0\",\"endAddress\":\"10.0.0.255\",\"entities\":"
				  "[{\"roles\":[\"abuse\"],\"vcardArray\":[\"vcard\",[[\"email\",{},\"text\","
				  "\"a@b.example\\r\\nRCPT TO:<x@evil.example>\"]]]}]}";
	assert_int_equal(rdap_parse(bad, strlen(bad), &ip, c, sizeof c, &lo, &hi), 0);
	assert_string_equal(c, "");
	assert_int_equal(ipaddr_cmp(&lo, &ip), 0);
	assert_int_equal(ipaddr_cmp(&hi, &ip), 0);
	assert_int_equal(rdap_parse("[1,2]", 5, &ip, c, sizeof c, &lo, &hi), -1);
	assert_int_equal(rdap_parse("<html>", 6, &ip, c, sizeof c, &lo, &hi), -1);
}

static void test_prune_and_slot(void **state)
{
	char stamp[REPORT_STAMP_LEN];
	report_stamp(1795824000 + 6 * 3600 + 61, stamp);
	assert_string_equal(stamp, "20261128T060101Z");
	char dir[] = "/tmp/mxw-prune-XXXXXX";
	assert_non_null(mkdtemp(dir));
	static const struct {
		const char *name;
		bool gone;
	} files[] = {
	    {"digest-20261120T060000Z.txt", true},   {"digest-20261120T0600Z.html", true},
	    {"digest-20261127T060000Z.txt", false},  {"digest-latest.txt", false},
	    {"digestx-20261120T060000Z.txt", false}, {"abuse-20261120T060000Z-x.eml", false},
	    {"digest-20261399T060000Z.txt", false},  {"notes", false},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(files); i++) {
		char p[128];
		snprintf(p, sizeof p, "%s/%s", dir, files[i].name);
		FILE *fp = fopen(p, "w");
		fclose(fp);
	}
	assert_int_equal(report_prune_dir(dir, "digest", 1795824000 - 86400), 2); /* before the 27th */
	for (size_t i = 0; i < MXW_ARRAY_LEN(files); i++) {
		char p[128];
		snprintf(p, sizeof p, "%s/%s", dir, files[i].name);
		if ((access(p, F_OK) != 0) != files[i].gone)
			fail_msg("%s: gone %d, want %d", files[i].name, access(p, F_OK) != 0, files[i].gone);
		unlink(p);
	}
	rmdir(dir);
	assert_int_equal(report_prune_dir("/nonexistent-mxw", "digest", 0), -1);

	static const struct {
		int64_t at, now, want;
	} slots[] = {
	    {-1, 1795824000, -1},
	    {0, 1795824000, 1795824000},			       /* daily, exactly at midnight */
	    {0, 1795824000 - 1, 1795824000 - 86400},		       /* a second before */
	    {6 * 3600, 1795824000 + 5 * 3600, 1795824000 - 18 * 3600}, /* 05:00: yesterday's 06:00 */
	    {6 * 3600, 1795824000 + 6 * 3600, 1795824000 + 6 * 3600},
	    {23 * 3600 + 59 * 60, 1795824000 + 86399, 1795824000 + 23 * 3600 + 59 * 60},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(slots); i++) {
		struct report_conf r = {.digest_at = slots[i].at};
		int64_t got = report_digest_slot(&r, slots[i].now);
		if (got != slots[i].want)
			fail_msg("slot %zu: got %lld, want %lld", i, (long long)got,
				 (long long)slots[i].want);
	}
}

/* A scripted SMTP peer on loopback: answers each command with the next
 * reply of its script, keeps what it received. */
struct peer {
	int lfd, port;
	const char *const *replies; /* the greeting first, then one per command; NULL ends */
	struct buf got;
	pthread_t th;
};

static void *peer_run(void *arg)
{
	struct peer *p = arg;
	int fd = accept(p->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	size_t r = 0;
	bool data = false;
	char line[8192];
	size_t n = 0;
	if (!p->replies[r]) { /* no greeting: hang up at once */
		close(fd);
		return NULL;
	}
	(void)!write(fd, p->replies[r], strlen(p->replies[r]));
	r++;
	for (;;) {
		char c;
		if (read(fd, &c, 1) != 1)
			break;
		buf_appendc(&p->got, c);
		if (n < sizeof line - 1)
			line[n++] = c;
		if (c != '\n')
			continue;
		line[n] = '\0';
		bool answer = !data || strcmp(line, ".\r\n") == 0;
		if (!data && strncmp(line, "DATA", 4) == 0)
			data = true;
		else if (data && strcmp(line, ".\r\n") == 0)
			data = false;
		n = 0;
		if (!answer)
			continue;
		if (!p->replies[r])
			break;
		(void)!write(fd, p->replies[r], strlen(p->replies[r]));
		r++;
	}
	close(fd);
	return NULL;
}

static void peer_start(struct peer *p, const char *const *replies)
{
	memset(p, 0, sizeof *p);
	p->replies = replies;
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(p->lfd, 1), 0);
	getsockname(p->lfd, (struct sockaddr *)&a, &al);
	p->port = ntohs(a.sin_port);
	pthread_create(&p->th, NULL, peer_run, p);
}

static void peer_stop(struct peer *p)
{
	shutdown(p->lfd, SHUT_RDWR);
	pthread_join(p->th, NULL);
	close(p->lfd);
	buf_free(&p->got);
}

static void test_smtp(void **state)
{
	static const char *const ok[] = {"220 hi\r\n", "250-x\r\n250 SIZE\r\n", "250 ok\r\n",  "250 ok\r\n",
					 "354 go\r\n", "250 queued\r\n",	"221 bye\r\n", NULL};
	static const char *const helo[] = {"220 hi\r\n",     "502 no\r\n",  "250 ok\r\n",
					   "250 ok\r\n",     "250 ok\r\n",  "354 go\r\n",
					   "250 queued\r\n", "221 bye\r\n", NULL};
	static const char *const rcpt550[] = {
	    "220 hi\r\n", "250 x\r\n", "250 ok\r\n", "550 5.1.1 no such user\r\n", "221 bye\r\n", NULL};
	static const char *const data451[] = {"220 hi\r\n",  "250 x\r\n",  "250 ok\r\n",
					      "250 ok\r\n",  "354 go\r\n", "451 4.3.0 later\r\n",
					      "221 bye\r\n", NULL};
	static const char *const closed[] = {NULL};
	static const struct {
		const char *const *script;
		int want;
		const char *err;
	} cases[] = {
	    {ok, SMTP_OK, ""},
	    {helo, SMTP_OK, ""},
	    {rcpt550, SMTP_PERM, "550 5.1.1"},
	    {data451, SMTP_TEMP, "451 4.3.0"},
	    {closed, SMTP_TEMP, "connection closed"},
	};
	static const char msg[] = "Subject: t\r\n\r\n.one dot\r\n..two\r\nbare lf\nlast";
	for (size_t i = 0; i < MXW_ARRAY_LEN(cases); i++) {
		struct peer p;
		peer_start(&p, cases[i].script);
		char ap[32];
		snprintf(ap, sizeof ap, "127.0.0.1:%d", p.port);
		struct buf err = BUF_INIT;
		int rc = smtp_send(ap, "mx.example.org", 5, "abuse@mx.example.org", "abuse@net.example", msg,
				   strlen(msg), &err);
		if (rc != cases[i].want || !strstr(buf_str(&err), cases[i].err))
			fail_msg("case %zu: got %d '%s', want %d '%s'", i, rc, buf_str(&err), cases[i].want,
				 cases[i].err);
		if (rc == SMTP_OK) {
			const char *g = buf_str(&p.got);
			assert_non_null(
			    strstr(g, "MAIL FROM:<abuse@mx.example.org>\r\nRCPT TO:<abuse@net.example>\r\n"));
			assert_non_null(strstr(g, "\r\n\r\n..one dot\r\n...two\r\nbare lf\r\nlast\r\n.\r\n"));
			assert_non_null(
			    strstr(g, i == 1 ? "HELO mx.example.org\r\n" : "EHLO mx.example.org\r\n"));
		}
		buf_free(&err);
		peer_stop(&p);
	}
	/* an address that is not plain never reaches the wire */
	struct buf err = BUF_INIT;
	assert_int_equal(smtp_send("127.0.0.1:1", "mx.example.org", 1, "a@b.example",
				   "x@y.example>\r\nRCPT TO:<z@e.example", "m", 1, &err),
			 SMTP_PERM);
	assert_int_equal(
	    smtp_send("localhost:25", "mx.example.org", 1, "a@b.example", "x@y.example", "m", 1, &err),
	    SMTP_PERM);
	buf_free(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_qp),
	    cmocka_unit_test(test_base64),
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_reportable),
	    cmocka_unit_test(test_classify),
	    cmocka_unit_test(test_contacts),
	    cmocka_unit_test(test_rdap_parse),
	    cmocka_unit_test(test_prune_and_slot),
	    cmocka_unit_test(test_smtp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
