/*
 * fixture.h - the decisions and configuration the emitter tests share
 * (unit goldens, the injection test and the system tests' file maker), so
 * that every test talks about the same blocked and allowed addresses.
 *
 * Addresses: documentation ranges only, and not 192.0.2.0/24 (a test host
 * may own an address there, which the emitters rightly protect).
 */
#ifndef MXW_TEST_EMIT_FIXTURE_H
#define MXW_TEST_EMIT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"

#define FIX_NOW 1798800000LL /* 2027-01-01T10:40:00Z */

struct fix_decision {
	const char *prefix;
	enum scope scope;
	enum response response;
	const char *rule;
	const char *reason;
	int64_t until; /* relative to FIX_NOW */
};

/* Emitted (min_response defer): 203.0.113.0/24 (class), 198.51.100.7
 * (drop), 198.51.100.9 (defer), 2001:db8:5::/64 (a timeout past ipset's
 * ceiling), 203.0.113.5 (inside the /24: nft leaves it out). Left out:
 * 203.0.113.77 (observe), 198.51.100.200 (allow), 10.9.9.9 (protected),
 * 198.50.0.0/15 (shorter than the /16 floor), 198.51.100.50 (expired). */
static const struct fix_decision fix_decisions[] = {
    {"203.0.113.0/24", SCOPE_CLASS, RESP_REJECT, "class", "12 of 256 addresses in 203.0.113.0/24 flagged",
     3600},
    {"198.51.100.7/32", SCOPE_IP, RESP_DROP, "retry", "retried 9 times after 550; HELO \"mx.example\"", 600},
    {"198.51.100.9/32", SCOPE_IP, RESP_DEFER, "backoff", "ignored 451 back-off 7 times", 120},
    {"2001:db8:5::/64", SCOPE_CLASS, RESP_REJECT, "harvest", "harvest: 48 unknown recipients", 315360000},
    {"203.0.113.77/32", SCOPE_IP, RESP_OBSERVE, "policy", "observe only", 3600},
    {"203.0.113.5/32", SCOPE_IP, RESP_DROP, "auth", "AUTH brute force, 40 users", 7200},
    {"198.51.100.200/32", SCOPE_IP, RESP_DROP, "retry", "allow-listed, never emitted", 3600},
    {"10.9.9.9/32", SCOPE_IP, RESP_DROP, "retry", "protected, never emitted", 3600},
    {"198.50.0.0/15", SCOPE_CLASS, RESP_DROP, "class", "wider than the floor, never emitted", 3600},
    {"198.51.100.50/32", SCOPE_IP, RESP_DROP, "retry", "expired", -5},
};
#define FIX_N (sizeof fix_decisions / sizeof fix_decisions[0])

static inline void fix_make(struct decision *out)
{
	for (size_t i = 0; i < FIX_N; i++) {
		const struct fix_decision *f = &fix_decisions[i];
		struct decision *d = &out[i];
		memset(d, 0, sizeof *d);
		d->id = (int64_t)i + 1;
		if (prefix_parse(&d->prefix, f->prefix, strlen(f->prefix), true) < 0)
			BUG("bad fixture prefix %s", f->prefix);
		d->scope = f->scope;
		d->response = f->response;
		snprintf(d->rule, sizeof d->rule, "%s", f->rule);
		snprintf(d->reason, sizeof d->reason, "%s", f->reason);
		d->score = 10;
		d->since = FIX_NOW - 60;
		d->until = FIX_NOW + f->until;
	}
}

/* Defaults, then: protected 10.0.0.0/8 and ::1 only (not the host's own
 * addresses, so results do not depend on the machine), allow
 * 198.51.100.200, a lookup URL template. */
static inline void fix_config(struct config *c)
{
	config_defaults(c);
	prefix_list_free(&c->protected_networks);
	strv_free(&c->protected_src);
	struct prefix p;
	prefix_parse(&p, "10.0.0.0/8", 10, true);
	prefix_list_add(&c->protected_networks, &p);
	prefix_parse(&p, "::1/128", 7, true);
	prefix_list_add(&c->protected_networks, &p);
	prefix_parse(&p, "198.51.100.200", 14, true);
	prefix_list_add(&c->allow, &p);
	free(c->lookup_url);
	c->lookup_url = xstrdup("https://postmaster.example.net/lookup/$ip");
}

/* Output o (zeroed) named name in format, written to dir/file (file NULL:
 * dir is the path), both families, from defer up, a reload given 5 s and
 * no reload command. */
static inline void fix_output(struct output_conf *o, const char *name, const char *format, const char *dir,
			      const char *file)
{
	struct buf p = BUF_INIT;
	if (file)
		buf_printf(&p, "%s/%s", dir, file);
	else
		buf_printf(&p, "%s", dir);
	o->name = xstrdup(name);
	o->format = xstrdup(format);
	o->path = xstrdup(buf_str(&p));
	o->families = FAMILY_V4 | FAMILY_V6;
	o->min_response = RESP_DEFER;
	o->reload_timeout = 5;
	buf_free(&p);
}

/* Reasons written to break a blocklist: newlines, quotes, directives of
 * each format, '$', control and non-UTF-8 bytes, over-long text. */
static const char *const fix_hostile_reasons[] = {
    "line\nbreak 0.0.0.0/0 OK",
    "\r\n$TTL 0\n$SOA 0 x y 0 0 0 0 0",
    "x\"; flush ruleset; \"",
    "x\" -j ACCEPT\n-A INPUT -j ACCEPT\nCOMMIT",
    "}\n}\ntable ip evil { chain c { type filter hook input priority 0; policy drop; } }",
    "comment \"a\" timeout 0\nadd mxwarden4-new 0.0.0.0/1",
    ":127.0.0.1:evil\n0.0.0.0/1 :127.0.0.2:",
    "$ip $$ $ ${HOME} `id` $(id)",
    "%s%n%x\\x00\\",
    "tab\there\vvt\fff\x1b[31mesc\x7f",
    "\xff\xfe\xc3\x28 bad utf-8 \xe2\x82",
    "OK\t554 5.7.1\nDUNNO",
    "#comment\n# 0.0.0.0/0 reject",
    "<script>alert(1)</script>&amp;'single'",
    "very long "
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
};

/* Append to *v (growing *n) one drop decision per hostile reason and per
 * line of the adversarial corpus (path; skipped when NULL or unreadable),
 * each at its own address in 198.18.0.0/15 with the text as reason and
 * its first 31 bytes as rule. Returns the number added. */
static inline size_t fix_hostile(struct decision **v, size_t *n, const char *path, int64_t now)
{
	struct buf texts[1024];
	size_t k = 0;
	for (size_t i = 0; i < sizeof fix_hostile_reasons / sizeof *fix_hostile_reasons; i++) {
		texts[k] = (struct buf)BUF_INIT;
		buf_appends(&texts[k++], fix_hostile_reasons[i]);
	}
	FILE *fp = path ? fopen(path, "r") : NULL;
	char line[65536];
	while (fp && k < 1024 && fgets(line, sizeof line, fp)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *t = o ? json_string_value(json_object_get(o, "line")) : NULL;
		if (t) {
			texts[k] = (struct buf)BUF_INIT;
			buf_append(&texts[k++], t, json_string_length(json_object_get(o, "line")));
		}
		json_decref(o);
	}
	if (fp)
		fclose(fp);
	*v = xrealloc(*v, (*n + k) * sizeof **v);
	for (size_t i = 0; i < k; i++) {
		struct decision *d = &(*v)[*n + i];
		memset(d, 0, sizeof *d);
		char p[32];
		snprintf(p, sizeof p, "198.18.%zu.%zu/32", i / 200, i % 200 + 1);
		prefix_parse(&d->prefix, p, strlen(p), true);
		d->scope = SCOPE_IP;
		d->response = (enum response)(1 + i % 3);
		/* the reason may hold NUL bytes: copy bytes, not a C string */
		memcpy(d->reason, texts[i].data, MXW_MIN(texts[i].len, sizeof d->reason - 1));
		memcpy(d->rule, texts[i].data, MXW_MIN(texts[i].len, sizeof d->rule - 1));
		d->since = now - 10;
		d->until = now + 3600;
		buf_free(&texts[i]);
	}
	*n += k;
	return k;
}

#endif
