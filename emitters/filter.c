/*
 * filter.c - the one gate every emitted prefix passes: expiry, the output's
 * selection, the floors, the allow list and protected networks, one entry
 * per prefix, and the cap.
 *
 * It must never let through a prefix shorter than the floor or one that
 * overlaps an allowed or protected prefix in either direction, whatever
 * the decisions say: a bug upstream must not be able to block the Internet
 * or the host's own networks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emitters/emit_int.h"

static void list_copy(struct prefix_list *dst, const struct prefix_list *src)
{
	for (size_t i = 0; i < src->n; i++)
		prefix_list_add(dst, &src->v[i]);
}

static int load_allow_file(struct prefix_list *l, const char *path, struct buf *err)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		buf_printf(err, "%s: cannot open allow file: %s", path, strerror(errno));
		return -1;
	}
	char line[512];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, fp)) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof line - 1 && line[n - 1] != '\n') {
			buf_printf(err, "%s:%d: line too long", path, lineno);
			rc = -1;
			break;
		}
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		char *hash = strchr(s, '#');
		if (hash)
			*hash = '\0';
		n = strlen(s);
		while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (!n)
			continue;
		struct prefix p;
		/* not strict: "192.0.2.7/24" in an allow list means the whole /24 */
		if (prefix_parse(&p, s, n, false) < 0) {
			buf_printf(err, "%s:%d: '%.*s' is not an address or CIDR", path, lineno,
				   (int)MXW_MIN(n, 80), s);
			rc = -1;
			continue;
		}
		prefix_list_add(l, &p);
	}
	fclose(fp);
	return rc;
}

int emit_safety_init(struct emit_safety *s, const struct config *c, struct buf *err)
{
	memset(s, 0, sizeof *s);
	/* the effective list: built-in ranges (config_defaults), the host's
	 * own addresses (config_validate), what the configuration adds */
	list_copy(&s->protect, &c->protected_networks);
	list_copy(&s->allow, &c->allow);
	list_copy(&s->allow, &c->trusted_nets); /* the MTA's own trusted clients */
	s->v4_floor = MXW_MAX(c->v4_floor, (unsigned)EMIT_HARD_FLOOR_V4);
	s->v6_floor = MXW_MAX(c->v6_floor, (unsigned)EMIT_HARD_FLOOR_V6);
	s->max_entries = c->max_entries > 0 ? (size_t)c->max_entries : 100000;
	int rc = 0;
	for (size_t i = 0; i < c->allow_files.n; i++)
		if (load_allow_file(&s->allow, c->allow_files.v[i], err) < 0)
			rc = -1;
	return rc;
}

void emit_safety_free(struct emit_safety *s)
{
	prefix_list_free(&s->protect);
	prefix_list_free(&s->allow);
	prefix_list_free(&s->allow_manual);
}

void emit_safety_set_allows(struct emit_safety *s, const struct prefix_list *l)
{
	s->allow_manual.n = 0;
	for (size_t i = 0; l && i < l->n; i++)
		prefix_list_add(&s->allow_manual, &l->v[i]);
}

/* Stronger first: response, then later expiry, then manual, then id. */
static int strength_cmp(const struct decision *a, const struct decision *b)
{
	if (a->response != b->response)
		return a->response > b->response ? -1 : 1;
	if (a->until != b->until)
		return a->until > b->until ? -1 : 1;
	if (a->manual != b->manual)
		return a->manual ? -1 : 1;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return 0;
}

/* Family, address, length ascending; equal prefixes strongest first. */
static int addr_cmp(const void *x, const void *y)
{
	const struct decision *a = *(const struct decision *const *)x;
	const struct decision *b = *(const struct decision *const *)y;
	int c = prefix_cmp(&a->prefix, &b->prefix);
	return c ? c : strength_cmp(a, b);
}

static int strength_qcmp(const void *x, const void *y)
{
	const struct decision *a = *(const struct decision *const *)x;
	const struct decision *b = *(const struct decision *const *)y;
	int c = strength_cmp(a, b);
	return c ? c : prefix_cmp(&a->prefix, &b->prefix);
}

/* Family, then longer prefixes first, then address. */
static int longest_cmp(const void *x, const void *y)
{
	const struct decision *a = *(const struct decision *const *)x;
	const struct decision *b = *(const struct decision *const *)y;
	if (a->prefix.addr.family != b->prefix.addr.family)
		return a->prefix.addr.family < b->prefix.addr.family ? -1 : 1;
	if (a->prefix.len != b->prefix.len)
		return a->prefix.len > b->prefix.len ? -1 : 1;
	return prefix_cmp(&a->prefix, &b->prefix);
}

static bool prefix_sane(const struct prefix *p)
{
	if (p->addr.family != IPADDR_V4 && p->addr.family != IPADDR_V6)
		return false;
	if (p->len > ipaddr_bits(&p->addr))
		return false;
	struct prefix canon;
	prefix_from_addr(&canon, &p->addr, p->len);
	return memcmp(&canon.addr, &p->addr, sizeof canon.addr) == 0;
}

enum emit_drop emit_check(const struct emit_safety *s, const struct emit_select *sel,
			  const struct decision *x, int64_t now)
{
	const struct prefix *p = &x->prefix;
	if (!prefix_sane(p) || (unsigned)x->response >= RESP__COUNT)
		return EMIT_DROP_BAD;
	if (x->until <= now)
		return EMIT_DROP_EXPIRED;
	unsigned fam = p->addr.family == IPADDR_V4 ? FAMILY_V4 : FAMILY_V6;
	if (!(sel->families & fam))
		return EMIT_DROP_FAMILY;
	if (sel->class_only && x->scope != SCOPE_CLASS)
		return EMIT_DROP_SCOPE;
	if (x->response < sel->min_response)
		return EMIT_DROP_RESPONSE;
	if (p->len < (fam == FAMILY_V4 ? s->v4_floor : s->v6_floor))
		return EMIT_DROP_FLOOR;
	if (prefix_list_overlaps(&s->allow, p) || prefix_list_overlaps(&s->allow_manual, p))
		return EMIT_DROP_ALLOWED;
	if (prefix_reserved(p))
		return EMIT_DROP_RESERVED;
	if (prefix_list_overlaps(&s->protect, p))
		return EMIT_DROP_PROTECTED;
	return EMIT_KEEP;
}

size_t emit_filter(const struct emit_safety *s, const struct emit_select *sel, const struct decision *d,
		   size_t n, int64_t now, const struct decision ***out, struct emit_stats *st)
{
	struct emit_stats local;
	if (!st)
		st = &local;
	memset(st, 0, sizeof *st);
	st->in = n;
	*out = NULL;
	if (n == 0)
		return 0;
	const struct decision **v = xmalloc(n * sizeof *v);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct decision *x = &d[i];
		switch (emit_check(s, sel, x, now)) {
		case EMIT_KEEP: v[k++] = x; break;
		case EMIT_DROP_BAD: st->bad++; break;
		case EMIT_DROP_EXPIRED: st->expired++; break;
		case EMIT_DROP_FAMILY:
		case EMIT_DROP_SCOPE:
		case EMIT_DROP_RESPONSE: st->unwanted++; break;
		case EMIT_DROP_FLOOR: st->floor++; break;
		case EMIT_DROP_ALLOWED: st->allowed++; break;
		case EMIT_DROP_PROTECTED:
		case EMIT_DROP_RESERVED: st->protect++; break;
		}
	}
	qsort(v, k, sizeof *v, addr_cmp);
	/* one entry per prefix (the first is the strongest); for interval
	 * sets also none inside another (nesting or disjoint, so a sweep over
	 * the address order with the last kept top-level prefix suffices) */
	size_t m = 0;
	for (size_t i = 0; i < k; i++) {
		if (m && prefix_cmp(&v[m - 1]->prefix, &v[i]->prefix) == 0) {
			st->duplicate++;
			continue;
		}
		if (sel->no_overlap && m && prefix_contains_prefix(&v[m - 1]->prefix, &v[i]->prefix)) {
			st->contained++;
			continue;
		}
		v[m++] = v[i];
	}
	if (m > s->max_entries) {
		qsort(v, m, sizeof *v, strength_qcmp);
		st->capped = m - s->max_entries;
		m = s->max_entries;
		qsort(v, m, sizeof *v, addr_cmp);
	}
	if (sel->longest_first)
		qsort(v, m, sizeof *v, longest_cmp);
	st->out = m;
	if (m == 0) {
		free(v);
		return 0;
	}
	*out = v;
	return m;
}
