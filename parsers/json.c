/*
 * json.c - one event as one line of JSON (the `mxwarden parse` schema, see
 * docs/events.md), with a small string escaper of our own: jansson per
 * event costs an allocation per field, and refuses the invalid UTF-8 that
 * log lines carry. The output is always valid JSON: bytes that are not
 * valid UTF-8 become U+FFFD (base/utf8.c), control bytes (NUL too) become
 * \u00XX.
 */
#include "parsers/internal.h"

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
			size_t k = utf8_seq(s + i, n - i);
			if (k) {
				memcpy(o, s + i, k);
				o += k;
				i += k;
			} else {
				memcpy(o, UTF8_REPLACEMENT, 3);
				o += 3;
				i++;
			}
		}
	}
	*o++ = '"';
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
}

#define key(b, lit) buf_append((b), (lit), sizeof(lit) - 1)

/* Hot-path formatting without printf: the date part of the stamp is cached
 * per day (thread-local: the API renders events from several threads). */
static _Thread_local int64_t ts_day = INT64_MIN;
static _Thread_local char ts_date[16]; /* "YYYY-MM-DDT" */

static char *put2(char *o, unsigned v)
{
	*o++ = (char)('0' + v / 10);
	*o++ = (char)('0' + v % 10);
	return o;
}

static void append_ts(struct buf *b, int64_t us)
{
	int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
	int64_t frac = us - secs * 1000000;
	int64_t day = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t sod = secs - day * 86400;
	if (day != ts_day) {
		char tmp[TIME_STRLEN];
		time_format_rfc3339(day * 86400 * 1000000, false, tmp);
		if (strlen(tmp) != 20) { /* a year outside 0000..9999: the slow path */
			size_t n = time_format_rfc3339(us, frac != 0, tmp);
			buf_append(b, tmp, n);
			return;
		}
		memcpy(ts_date, tmp, 11);
		ts_day = day;
	}
	buf_grow(b, 32);
	char *o = b->data + b->len;
	memcpy(o, ts_date, 11);
	o += 11;
	o = put2(o, (unsigned)(sod / 3600));
	*o++ = ':';
	o = put2(o, (unsigned)(sod / 60 % 60));
	*o++ = ':';
	o = put2(o, (unsigned)(sod % 60));
	if (frac) {
		*o++ = '.';
		for (int64_t d = 100000; d; d /= 10)
			*o++ = (char)('0' + frac / d % 10);
	}
	*o++ = 'Z';
	b->len = (size_t)(o - b->data);
	b->data[b->len] = '\0';
}

static char *put_u8(char *o, unsigned v)
{
	if (v >= 100)
		*o++ = (char)('0' + v / 100);
	if (v >= 10)
		*o++ = (char)('0' + v / 10 % 10);
	*o++ = (char)('0' + v % 10);
	return o;
}

static void append_ip(struct buf *b, const struct ipaddr *ip, int len)
{
	buf_grow(b, IPADDR_STRLEN + 8);
	char *o = b->data + b->len;
	if (ip->family == IPADDR_V4) {
		for (int i = 0; i < 4; i++) {
			if (i)
				*o++ = '.';
			o = put_u8(o, ip->a[i]);
		}
	} else {
		o += ipaddr_format(ip, o);
	}
	if (len >= 0) {
		*o++ = '/';
		o = put_u8(o, (unsigned)len);
	}
	b->len = (size_t)(o - b->data);
	b->data[b->len] = '\0';
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

static void append_pair(struct buf *b, const char *name, uint16_t ok, uint16_t total)
{
	buf_appends(b, name);
	append_uint(b, ok);
	buf_appendc(b, ',');
	append_uint(b, total);
	buf_appendc(b, ']');
}

/* "stats": {"ehlo":[ok,total],...} on a disconnect that carried counts */
static void append_stats(struct buf *b, const struct event *ev)
{
	const struct cmd_stats *st = &ev->stats;
	if (ev->kind != EV_DISCONNECT || !st->present) {
		buf_append(b, "null", 4);
		return;
	}
	append_pair(b, "{\"ehlo\":[", st->ehlo_ok, st->ehlo_total);
	append_pair(b, ",\"mail\":[", st->mail_ok, st->mail_total);
	append_pair(b, ",\"rcpt\":[", st->rcpt_ok, st->rcpt_total);
	append_pair(b, ",\"data\":[", st->data_ok, st->data_total);
	append_pair(b, ",\"auth\":[", st->auth_ok, st->auth_total);
	append_pair(b, ",\"commands\":[", st->cmds_ok, st->cmds_total);
	buf_appendc(b, '}');
}

/* ,"name":value pairs: the literal key (with its leading separator and
 * colon) then the value or null */
#define KEY_SPAN(b, lit, s)	 key_span((b), (lit), sizeof(lit) - 1, (s))
#define KEY_UINT(b, lit, has, v) key_uint((b), (lit), sizeof(lit) - 1, (has), (v))
#define KEY_NAME(b, lit, name)	 key_name((b), (lit), sizeof(lit) - 1, (name))

static inline void key_span(struct buf *b, const char *k, size_t kn, struct span s)
{
	buf_append(b, k, kn);
	span_or_null(b, s);
}

static inline void key_uint(struct buf *b, const char *k, size_t kn, bool has, uint64_t v)
{
	buf_append(b, k, kn);
	if (has)
		append_uint(b, v);
	else
		buf_append(b, "null", 4);
}

/* a known ASCII name (enum names), quoted; NULL = null */
static inline void key_name(struct buf *b, const char *k, size_t kn, const char *name)
{
	buf_append(b, k, kn);
	if (!name) {
		buf_append(b, "null", 4);
		return;
	}
	buf_appendc(b, '"');
	buf_appends(b, name);
	buf_appendc(b, '"');
}

void event_to_json(const struct event *ev, struct buf *b)
{
	key(b, "{\"ts\":\"");
	append_ts(b, ev->ts_us);
	buf_appendc(b, '"');
	KEY_SPAN(b, ",\"host\":", ev->host);
	KEY_NAME(b, ",\"mta\":", mta_name(ev->mta));
	KEY_SPAN(b, ",\"program\":", ev->program);
	KEY_UINT(b, ",\"pid\":", ev->pid >= 0, (uint64_t)ev->pid);
	KEY_SPAN(b, ",\"queue_id\":", ev->queue_id);
	if (ev->has_ip) {
		key(b, ",\"ip\":\"");
		append_ip(b, &ev->ip, -1);
		buf_appendc(b, '"');
		KEY_UINT(b, ",\"port\":", ev->port != 0, ev->port);
		key(b, ",\"class\":\"");
		append_ip(b, &ev->cls.addr, ev->cls.len);
		buf_appendc(b, '"');
	} else {
		key(b, ",\"ip\":null,\"port\":null,\"class\":null");
	}
	KEY_SPAN(b, ",\"rdns\":", ev->rdns);
	KEY_SPAN(b, ",\"helo\":", ev->helo);
	KEY_SPAN(b, ",\"from\":", ev->from);
	KEY_SPAN(b, ",\"to\":", ev->to);
	KEY_SPAN(b, ",\"user\":", ev->user);
	KEY_NAME(b, ",\"stage\":", ev_stage_name(ev->stage));
	KEY_NAME(b, ",\"kind\":", ev_kind_name(ev->kind));
	KEY_UINT(b, ",\"code\":", ev->code >= 0, (uint64_t)ev->code);
	KEY_SPAN(b, ",\"dsn\":", ev->dsn);
	KEY_NAME(b, ",\"category\":", ev->cat == CAT_NONE ? NULL : ev_category_name(ev->cat));
	KEY_SPAN(b, ",\"text\":", ev->text);
	KEY_UINT(b, ",\"nrcpt\":", ev->nrcpt != 0, ev->nrcpt);
	key(b, ",\"stats\":");
	append_stats(b, ev);
	KEY_SPAN(b, ",\"line\":", ev->line);
	buf_appendc(b, '}');
}
