/*
 * contacts.c - the local map from networks to abuse contacts ([abuse]
 * contacts): lines "CIDR ADDRESS", the longest prefix that holds the
 * reported network wins. Read whole at load, every bad line reported as
 * FILE:LINE: message (check-config shows them all).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "reports/internal.h"

#define CONTACTS_LINE_MAX 1024

struct contact {
	struct prefix p;
	char *addr;
	int line;
};

struct abuse_contacts {
	struct contact *v;
	size_t n;
};

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct abuse_contacts *abuse_contacts_load(const struct abuse_conf *a, struct errlist *errs)
{
	struct abuse_contacts *m = xcalloc(1, sizeof *m);
	if (!a->contacts)
		return m;
	const char *path = a->contacts;
	FILE *fp = fopen(path, "r");
	if (!fp) {
		errlist_add(errs, path, 0, "cannot open: %s", strerror(errno));
		abuse_contacts_free(m);
		return NULL;
	}
	size_t nerr0 = errs->msgs.n;
	char line[CONTACTS_LINE_MAX + 2];
	int ln = 0;
	while (fgets(line, sizeof line, fp)) {
		ln++;
		size_t len = strlen(line);
		if (len == sizeof line - 1 && line[len - 1] != '\n') {
			errlist_add(errs, path, ln, "line longer than %d bytes", CONTACTS_LINE_MAX);
			int ch;
			while ((ch = fgetc(fp)) != EOF && ch != '\n')
				;
			continue;
		}
		char *f[3] = {NULL, NULL, NULL};
		int nf = 0;
		for (char *p = line; *p;) {
			while (blank(*p))
				*p++ = '\0';
			if (!*p || *p == '#')
				break;
			if (nf < 3)
				f[nf] = p;
			nf++;
			while (*p && !blank(*p))
				p++;
		}
		if (nf == 0)
			continue;
		if (nf != 2) {
			errlist_add(errs, path, ln,
				    "expected 'CIDR ADDRESS' (e.g. 198.51.100.0/24 abuse@example.net)");
			continue;
		}
		struct prefix p;
		if (prefix_parse(&p, f[0], strlen(f[0]), true) < 0) {
			errlist_add(errs, path, ln,
				    "'%.60s' is not an address or a CIDR prefix with zero host bits", f[0]);
			continue;
		}
		if (!mail_addr_ok(f[1])) {
			errlist_add(errs, path, ln, "'%.100s' is not a plain mail address", f[1]);
			continue;
		}
		int dup = 0;
		for (size_t i = 0; i < m->n; i++)
			if (prefix_cmp(&m->v[i].p, &p) == 0)
				dup = m->v[i].line;
		if (dup) {
			errlist_add(errs, path, ln, "%s is already mapped at line %d", f[0], dup);
			continue;
		}
		m->v = xrealloc(m->v, (m->n + 1) * sizeof *m->v);
		m->v[m->n++] = (struct contact){p, xstrdup(f[1]), ln};
	}
	if (ferror(fp))
		errlist_add(errs, path, ln, "read error: %s", strerror(errno));
	fclose(fp);
	if (errs->msgs.n != nerr0) {
		abuse_contacts_free(m);
		return NULL;
	}
	return m;
}

void abuse_contacts_free(struct abuse_contacts *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].addr);
	free(m->v);
	free(m);
}

const char *abuse_contacts_match(const struct abuse_contacts *m, const struct prefix *p)
{
	const struct contact *best = NULL;
	for (size_t i = 0; m && i < m->n; i++)
		if (prefix_contains_prefix(&m->v[i].p, p) && (!best || m->v[i].p.len > best->p.len))
			best = &m->v[i];
	return best ? best->addr : NULL;
}

size_t abuse_contacts_count(const struct abuse_contacts *m)
{
	return m ? m->n : 0;
}
