/*
 * emit_json.c - a JSON document: {"generated": RFC 3339, "entries": [...]},
 * each entry with prefix, family ("ipv4"/"ipv6"), scope ("ip"/"class"),
 * response, rule, reason, since, until (RFC 3339, UTC) and lookup_url. One
 * entry per line, so that diffs and line-oriented tools stay usable.
 *
 * Escaping of every text from a decision is jansson's (JSON_ENSURE_ASCII);
 * bytes that are not valid UTF-8 become U+FFFD first (base/utf8.c, as in
 * every sink), because jansson refuses them.
 * It must never produce a document that does not parse.
 */
#include <jansson.h>
#include <string.h>

#include "emitters/emit_int.h"

/*
 * Append "key":"value" with the value encoded by jansson (escapes, \uXXXX
 * for non-ASCII, invalid UTF-8 made U+FFFD first). Keys and the fixed
 * vocabulary (prefixes, family, scope, response, times) are ASCII we wrote
 * ourselves; every text that comes from a decision goes through here.
 */
static void text_field(struct buf *out, const char *key, const char *s, size_t max, struct buf *tmp)
{
	buf_reset(tmp);
	utf8_append_clean(tmp, s, strnlen(s, max)); /* base/utf8.c */
	json_t *j = json_stringn(tmp->data ? tmp->data : "", tmp->len);
	buf_printf(out, ",\"%s\":", key);
	char small[2048];
	size_t need = j ? json_dumpb(j, small, sizeof small, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : 0;
	const char *enc = small;
	char *big = NULL;
	if (need > sizeof small) {
		big = xmalloc(need);
		json_dumpb(j, big, need, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
		enc = big;
	}
	if (!j || need == 0) {
		buf_appends(out, "\"\"");
	} else {
		/* jansson leaves DEL (0x7f) raw */
		for (size_t i = 0; i < need; i++) {
			if (enc[i] == 0x7f)
				buf_appends(out, "\\u007f");
			else
				buf_appendc(out, enc[i]);
		}
	}
	free(big);
	json_decref(j);
}

static void json_render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n,
			struct buf *out)
{
	char ts[TIME_STRLEN];
	time_format_rfc3339(ctx->now * 1000000, false, ts);
	buf_printf(out, "{\"generated\":\"%s\",\"count\":%zu,\"entries\":[", ts, n);
	struct buf url = BUF_INIT, tmp = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const struct decision *d = v[i];
		char p[PREFIX_STRLEN], since[TIME_STRLEN], until[TIME_STRLEN];
		prefix_format(&d->prefix, p);
		time_format_rfc3339(d->since * 1000000, false, since);
		time_format_rfc3339(d->until * 1000000, false, until);
		buf_appends(out, i ? ",\n" : "\n");
		buf_printf(out, "{\"prefix\":\"%s\",\"family\":\"%s\",\"scope\":\"%s\",\"response\":\"%s\"",
			   p, d->prefix.addr.family == IPADDR_V4 ? "ipv4" : "ipv6",
			   d->scope == SCOPE_CLASS ? "class" : "ip", response_name(d->response));
		text_field(out, "rule", d->rule, sizeof d->rule, &tmp);
		text_field(out, "reason", d->reason, sizeof d->reason, &tmp);
		buf_printf(out, ",\"since\":\"%s\",\"until\":\"%s\",\"manual\":%s", since, until,
			   d->manual ? "true" : "false");
		buf_reset(&url);
		if (ctx->lookup_url)
			emit_url(&url, ctx->lookup_url, &d->prefix, false);
		text_field(out, "lookup_url", buf_str(&url), url.len + 1, &tmp);
		buf_appendc(out, '}');
	}
	buf_free(&url);
	buf_free(&tmp);
	buf_appends(out, "\n]}\n");
}

static int json_validate(const char *text, size_t len, struct buf *err)
{
	if (len == 0 || text[len - 1] != '\n') {
		buf_appends(err, "the text does not end with a newline");
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c != '\n' && (c < 0x20 || c >= 0x7f)) {
			buf_printf(err, "byte %zu: 0x%02x is not printable ASCII", i, c);
			return -1;
		}
	}
	json_error_t je;
	json_t *root = json_loadb(text, len, 0, &je);
	if (!root) {
		buf_printf(err, "line %d: %s", je.line, je.text);
		return -1;
	}
	int rc = 0;
	json_t *entries = json_object_get(root, "entries");
	if (!json_is_string(json_object_get(root, "generated")) || !json_is_array(entries)) {
		buf_appends(err, "missing generated or entries");
		rc = -1;
	}
	size_t i;
	json_t *e;
	json_array_foreach(entries, i, e)
	{
		const char *p = json_string_value(json_object_get(e, "prefix"));
		if (rc == 0 && (!p || !emit_is_canonical_prefix(p, strlen(p)) || !strchr(p, '/'))) {
			buf_printf(err, "entry %zu: prefix is not canonical", i);
			rc = -1;
		}
	}
	json_decref(root);
	return rc;
}

const struct emit_format emit_format_json = {
    .name = "json",
    .families = FAMILY_V4 | FAMILY_V6,
    .relative_time = true,
    .render = json_render,
    .validate = json_validate,
};
