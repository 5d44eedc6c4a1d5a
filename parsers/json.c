/*
 * json.c - one event as one line of JSON (the `mxwarden parse` schema, see
 * docs/events.md), with a small string escaper of our own: jansson per
 * event costs an allocation per field, and refuses the invalid UTF-8 that
 * log lines carry. The output is always valid JSON: bytes that are not
 * valid UTF-8 become U+FFFD, control bytes (NUL too) become \u00XX.
 */
#include "parsers/internal.h"

size_t utf8_valid_prefix(const char *s, size_t n);

static const char hexd[] = "0123456789abcdef";

void json_append_string(struct buf *out, const char *s, size_t n)
{
	/* worst case: 6 bytes per input byte, plus quotes */
	buf_grow(out, n * 6 + 2);
	char *o = out->data + out->len;
	*o++ = '"';
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x80) {
			if (c == '"' || c == '\\')
				*o++ = '\\';
			*o++ = (char)c;
			i++;
		} else if (c < 0x20) {
			*o++ = '\\';
			switch (c) {
			case '\n': *o++ = 'n'; break;
			case '\t': *o++ = 't'; break;
			case '\r': *o++ = 'r'; break;
			default:
				*o++ = 'u';
				*o++ = '0';
				*o++ = '0';
				*o++ = hexd[c >> 4];
				*o++ = hexd[c & 15];
			}
			i++;
		} else {
			size_t k = utf8_valid_prefix(s + i, MXW_MIN(n - i, (size_t)4));
			/* utf8_valid_prefix stops before an invalid or cut sequence;
			 * take exactly one whole sequence */
			size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			if (k >= want) {
				memcpy(o, s + i, want);
				o += want;
				i += want;
			} else {
				*o++ = (char)0xef; /* U+FFFD */
				*o++ = (char)0xbf;
				*o++ = (char)0xbd;
				i++;
			}
		}
	}
	*o++ = '"';
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
}

static void key(struct buf *b, const char *k)
{
	buf_appends(b, k);
}

static void span_or_null(struct buf *b, struct span s)
{
	if (s.p)
		json_append_string(b, s.p, s.n);
	else
		buf_append(b, "null", 4);
}

static void append_uint(struct buf *b, uint64_t v)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_grow(b, n);
	while (n)
		b->data[b->len++] = tmp[--n];
	b->data[b->len] = '\0';
}

void event_to_json(const struct event *ev, struct buf *b)
{
	char ts[TIME_STRLEN];
	size_t tl = time_format_rfc3339(ev->ts_us, ev->ts_us % 1000000 != 0, ts);
	key(b, "{\"ts\":\"");
	buf_append(b, ts, tl);
	key(b, "\",\"host\":");
	span_or_null(b, ev->host);
	key(b, ",\"mta\":\"");
	buf_appends(b, mta_name(ev->mta));
	key(b, "\",\"program\":");
	span_or_null(b, ev->program);
	key(b, ",\"pid\":");
	if (ev->pid >= 0)
		append_uint(b, (uint64_t)ev->pid);
	else
		buf_append(b, "null", 4);
	key(b, ",\"queue_id\":");
	span_or_null(b, ev->queue_id);
	if (ev->has_ip) {
		char ip[IPADDR_STRLEN], cls[PREFIX_STRLEN];
		size_t il = ipaddr_format(&ev->ip, ip);
		size_t cl = prefix_format(&ev->cls, cls);
		key(b, ",\"ip\":\"");
		buf_append(b, ip, il);
		key(b, "\",\"port\":");
		if (ev->port)
			append_uint(b, ev->port);
		else
			buf_append(b, "null", 4);
		key(b, ",\"class\":\"");
		buf_append(b, cls, cl);
		buf_appendc(b, '"');
	} else {
		key(b, ",\"ip\":null,\"port\":null,\"class\":null");
	}
	key(b, ",\"rdns\":");
	span_or_null(b, ev->rdns);
	key(b, ",\"helo\":");
	span_or_null(b, ev->helo);
	key(b, ",\"from\":");
	span_or_null(b, ev->from);
	key(b, ",\"to\":");
	span_or_null(b, ev->to);
	key(b, ",\"user\":");
	span_or_null(b, ev->user);
	key(b, ",\"stage\":\"");
	buf_appends(b, ev_stage_name(ev->stage));
	key(b, "\",\"kind\":\"");
	buf_appends(b, ev_kind_name(ev->kind));
	key(b, "\",\"code\":");
	if (ev->code >= 0)
		append_uint(b, (uint64_t)ev->code);
	else
		buf_append(b, "null", 4);
	key(b, ",\"dsn\":");
	span_or_null(b, ev->dsn);
	key(b, ",\"category\":");
	if (ev->cat == CAT_NONE) {
		buf_append(b, "null", 4);
	} else {
		buf_appendc(b, '"');
		buf_appends(b, ev_category_name(ev->cat));
		buf_appendc(b, '"');
	}
	key(b, ",\"text\":");
	span_or_null(b, ev->text);
	key(b, ",\"line\":");
	span_or_null(b, ev->line);
	buf_appendc(b, '}');
}
