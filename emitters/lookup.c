/*
 * lookup.c - what the blocklists make of a lookup: for each [output], does
 * its file hold an entry that covers the address or prefix asked about (or
 * entries inside it), and when the decision in force is not in it, why:
 * its family, scope or response, the floor, an allow, a protected range,
 * the cap, or a file not written since (no daemon running, a circuit
 * breaker holding the old file).
 *
 * "Enforced" means what the consumers load: the file itself is read (the
 * entry of each line is the first address or prefix on it, in every
 * format), so a stale file, a file written by hand or one held by the
 * breaker answer for what they hold. It never writes anything; it is
 * reentrant (the web threads and the CLI call it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emitters/emit_int.h"

/* The entry of one line: its first blank-, quote-, comma- or
 * brace-separated word that is an address or a prefix. */
static bool line_entry(const char *s, size_t n, struct prefix *out)
{
	static const char delims[] = " \t\r\n\",{}()=;";
	size_t i = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < n && s[i] == '#')
		return false;
	while (i < n) {
		while (i < n && strchr(delims, s[i]))
			i++;
		size_t j = i;
		while (j < n && !strchr(delims, s[j]))
			j++;
		if (j > i && j - i < PREFIX_STRLEN && prefix_parse(out, s + i, j - i, true) == 0)
			return true;
		i = j;
	}
	return false;
}

int emit_file_entries(const char *path, struct prefix_list *out)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, fp)) > 0) {
		struct prefix p;
		if (line_entry(line, (size_t)n, &p))
			prefix_list_add(out, &p);
	}
	int rc = ferror(fp) ? -1 : 0;
	free(line);
	fclose(fp);
	return rc;
}

static const char *drop_code(enum emit_drop d)
{
	switch (d) {
	case EMIT_KEEP: return NULL;
	case EMIT_DROP_BAD: return "malformed";
	case EMIT_DROP_EXPIRED: return "expired";
	case EMIT_DROP_FAMILY: return "family";
	case EMIT_DROP_SCOPE: return "scope";
	case EMIT_DROP_RESPONSE: return "min_response";
	case EMIT_DROP_FLOOR: return "floor";
	case EMIT_DROP_ALLOWED: return "allowed";
	case EMIT_DROP_PROTECTED: return "protected";
	case EMIT_DROP_RESERVED: return "reserved";
	}
	return "unknown";
}

static void drop_detail(enum emit_drop d, const struct output_conf *o, const struct decision *x, char *out,
			size_t n)
{
	switch (d) {
	case EMIT_DROP_FAMILY:
		snprintf(out, n, "it carries %s only", x->prefix.addr.family == IPADDR_V4 ? "IPv6" : "IPv4");
		break;
	case EMIT_DROP_SCOPE: snprintf(out, n, "it carries class decisions only (scope = class)"); break;
	case EMIT_DROP_RESPONSE:
		snprintf(out, n, "the response %s is below its min_response %s", response_name(x->response),
			 response_name(o ? o->min_response : RESP_DEFER));
		break;
	case EMIT_DROP_FLOOR: snprintf(out, n, "the prefix is shorter than the [safety] floor"); break;
	case EMIT_DROP_ALLOWED:
		snprintf(out, n,
			 "it overlaps an allowed prefix (allow, allow_files, mta_trusted, or an allow "
			 "made by hand)");
		break;
	case EMIT_DROP_PROTECTED:
		snprintf(out, n, "it overlaps a protected network ([safety] protected_networks)");
		break;
	case EMIT_DROP_RESERVED: snprintf(out, n, "%s", PREFIX_RESERVED_TEXT); break;
	case EMIT_DROP_EXPIRED: snprintf(out, n, "it has expired"); break;
	default: snprintf(out, n, "it is not a valid decision"); break;
	}
}

/* One output's answer. */
static json_t *one_output(const struct output_conf *o, const struct emit_safety *s,
			  const struct decision *active, size_t n, const struct decision *target,
			  const struct prefix *q, int64_t now)
{
	const struct emit_format *f = o->format ? emit_format_find(o->format) : NULL;
	json_t *j = json_object();
	json_object_set_new(j, "output", json_string(o->name));
	json_object_set_new(j, "format", json_string(o->format ? o->format : ""));
	json_object_set_new(j, "path", json_string(o->path ? o->path : ""));
	/* what its file holds */
	struct prefix_list entries = {0};
	bool readable = o->path && emit_file_entries(o->path, &entries) == 0;
	json_object_set_new(j, "readable", json_boolean(readable));
	const struct prefix *cover = NULL;
	size_t inside = 0;
	json_t *in = json_array();
	for (size_t i = 0; i < entries.n; i++) {
		const struct prefix *e = &entries.v[i];
		if (prefix_contains_prefix(e, q)) {
			if (!cover || e->len > cover->len)
				cover = e;
		} else if (prefix_contains_prefix(q, e)) {
			if (inside < 10) {
				char t[PREFIX_STRLEN];
				prefix_format(e, t);
				json_array_append_new(in, json_string(t));
			}
			inside++;
		}
	}
	char t[PREFIX_STRLEN];
	if (cover)
		prefix_format(cover, t);
	json_object_set_new(j, "holds", json_boolean(cover != NULL));
	json_object_set_new(j, "entry", cover ? json_string(t) : json_null());
	json_object_set_new(j, "inside", json_integer((json_int_t)inside));
	json_object_set_new(j, "inside_entries", in);
	prefix_list_free(&entries);
	/* would it carry the decision in force? */
	const char *why = NULL;
	char detail[256] = "";
	if (target && f) {
		struct emit_select sel;
		memset(&sel, 0, sizeof sel);
		sel.families = f->families & o->families;
		sel.class_only = o->class_only;
		sel.min_response = o->min_response;
		sel.no_overlap = f->no_overlap;
		sel.longest_first = f->longest_first;
		enum emit_drop d = emit_check(s, &sel, target, now);
		if (d != EMIT_KEEP) {
			why = drop_code(d);
			drop_detail(d, o, target, detail, sizeof detail);
		} else {
			const struct decision **v;
			size_t m = emit_filter(s, &sel, active, n, now, &v, NULL);
			bool in_it = false, same_prefix = false, wider = false;
			for (size_t i = 0; i < m; i++) {
				in_it |= v[i] == target;
				same_prefix |= prefix_cmp(&v[i]->prefix, &target->prefix) == 0;
				wider |= prefix_contains_prefix(&v[i]->prefix, &target->prefix);
			}
			free(v);
			if (!in_it && !same_prefix && !wider) {
				why = "capped";
				snprintf(
				    detail, sizeof detail,
				    "over [safety] max_entries (%zu): only the strongest entries are written",
				    s->max_entries);
			} else if (!cover) {
				why = "not_written";
				snprintf(
				    detail, sizeof detail,
				    "%s does not hold it (yet): `mxwarden run` writes it; is it running? A "
				    "circuit breaker may hold the old file (see the dashboard)",
				    o->path ? o->path : "its file");
			}
		}
	} else if (target) {
		why = "malformed";
		snprintf(detail, sizeof detail, "unknown format");
	}
	json_object_set_new(j, "carries", json_boolean(target && !why));
	json_object_set_new(j, "why", why ? json_string(why) : json_null());
	json_object_set_new(j, "detail", why ? json_string(detail) : json_null());
	return j;
}

json_t *emitters_lookup_json(const struct config *c, const struct prefix_list *allows,
			     const struct decision *active, size_t n, const struct decision *target,
			     const struct prefix *q, int64_t now)
{
	json_t *arr = json_array();
	struct emit_safety s;
	struct buf err = BUF_INIT;
	if (emit_safety_init(&s, c, &err) < 0)
		log_warn("lookup: %s", buf_str(&err)); /* an unreadable allow file: the rest still holds */
	buf_free(&err);
	emit_safety_set_allows(&s, allows);
	for (size_t i = 0; i < c->n_outputs; i++)
		json_array_append_new(arr, one_output(&c->outputs[i], &s, active, n, target, q, now));
	emit_safety_free(&s);
	return arr;
}
