/*
 * mail.c - the pieces of an Internet message that the reports write:
 * quoted-printable and base64 bodies, RFC 5322 dates, display names (a
 * quoted-string or RFC 2047 encoded-words), random MIME boundaries and
 * UUIDs, and the header lines themselves.
 *
 * What it guarantees, whatever the text: a body encoded here is 7-bit with
 * CRLF lines of at most 76 characters and never contains "=_" (so a
 * boundary starting "=_" cannot occur in it); a header written by
 * mail_header() is one logical line (folded only by us) and refuses a value
 * holding CR, LF or NUL. It must never put log-derived text in a header.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "reports/internal.h"

static const char HEX[] = "0123456789ABCDEF";

/* ------------------------------------------------------ quoted-printable */

/* One encoded unit of c: 1 or 3 characters into u. at_eol: c is the last
 * byte of its line (a blank there must be encoded, RFC 2045 6.7 (3)). */
static size_t qp_unit(unsigned char c, bool at_eol, bool at_bol_from, char u[3])
{
	bool plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol);
	if (at_bol_from)
		plain = false; /* "From " at a line start: mbox tools would mangle it */
	if (plain) {
		u[0] = (char)c;
		return 1;
	}
	u[0] = '=';
	u[1] = HEX[c >> 4];
	u[2] = HEX[c & 15];
	return 3;
}

void mail_qp(struct buf *out, const char *s, size_t n)
{
	size_t i = 0;
	while (i <= n) {
		/* one input line: s[i..e) */
		const char *nl = i < n ? memchr(s + i, '\n', n - i) : NULL;
		size_t e = nl ? (size_t)(nl - s) : n;
		if (i == n && !nl)
			break;
		size_t col = 0;
		for (size_t k = i; k < e; k++) {
			char u[3];
			bool from = k == i && e - i >= 5 && memcmp(s + k, "From ", 5) == 0;
			size_t m = qp_unit((unsigned char)s[k], k + 1 == e, from, u);
			/* keep room for a soft break: at most 75 characters, then '=' */
			if (col + m > 75 && !(k + 1 == e && col + m <= 76)) {
				buf_appends(out, "=\r\n");
				col = 0;
			}
			buf_append(out, u, m);
			col += m;
		}
		buf_appends(out, "\r\n");
		if (!nl)
			break;
		i = e + 1;
	}
}

/* ---------------------------------------------------------------- base64 */

void mail_base64(struct buf *out, const void *data, size_t n, size_t line)
{
	static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	size_t col = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char q[4] = {A[(v >> 18) & 63], A[(v >> 12) & 63], i + 1 < n ? A[(v >> 6) & 63] : '=',
			     i + 2 < n ? A[v & 63] : '='};
		buf_append(out, q, 4);
		col += 4;
		if (line && col >= line && i + 3 < n) {
			buf_appends(out, "\r\n");
			col = 0;
		}
	}
	if (line)
		buf_appends(out, "\r\n");
}

/* ----------------------------------------------------------------- dates */

void mail_date(int64_t t, char out[MAIL_DATE_LEN])
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	snprintf(out, MAIL_DATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
		 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---------------------------------------------------------------- random */

void mail_random(void *p, size_t n)
{
	unsigned char *b = p;
	size_t got = 0;
	while (got < n) {
		ssize_t k = getrandom(b + got, n - got, 0);
		if (k <= 0)
			fatal("getrandom failed");
		got += (size_t)k;
	}
}

void mail_uuid(char out[MAIL_UUID_LEN])
{
	unsigned char r[16];
	mail_random(r, sizeof r);
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = "0123456789abcdef"[r[i] >> 4];
		*o++ = "0123456789abcdef"[r[i] & 15];
	}
	*o = '\0';
}

void mail_boundary(char out[MAIL_BOUNDARY_LEN])
{
	unsigned char r[16];
	mail_random(r, sizeof r);
	char *o = out + snprintf(out, MAIL_BOUNDARY_LEN, "=_mxw_");
	for (int i = 0; i < 16; i++) {
		*o++ = "0123456789abcdef"[r[i] >> 4];
		*o++ = "0123456789abcdef"[r[i] & 15];
	}
	*o = '\0';
}

/* --------------------------------------------------------------- headers */

static bool header_safe(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return false;
	return true;
}

void mail_header(struct buf *out, const char *name, const char *value)
{
	if (!header_safe(value) || !header_safe(name))
		BUG("header %s: a line break in the value", name);
	buf_printf(out, "%s: %s\r\n", name, value);
}

/* An RFC 2047 encoded-word sequence for s (UTF-8), each word at most 75
 * characters, split only between characters, folded with CRLF SP. */
static void encoded_words(struct buf *out, const char *s, size_t n)
{
	size_t i = 0;
	bool first = true;
	while (i < n) {
		/* "=?utf-8?B?" + base64 + "?=" <= 75: 45 bytes of text give 60 */
		size_t take = 0;
		while (i + take < n) {
			size_t k = utf8_seq(s + i + take, n - i - take);
			if (!k)
				k = 1;
			if (take + k > 45)
				break;
			take += k;
		}
		if (!first)
			buf_appends(out, "\r\n ");
		buf_appends(out, "=?utf-8?B?");
		mail_base64(out, s + i, take, 0);
		buf_appends(out, "?=");
		i += take;
		first = false;
	}
}

void mail_phrase(struct buf *out, const char *s)
{
	size_t n = strlen(s);
	bool ascii = true;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			ascii = false;
	if (!ascii || n > 60) {
		struct buf clean = BUF_INIT;
		for (size_t i = 0; i < n;) { /* controls cannot be in a header, encoded or not */
			size_t k = utf8_seq(s + i, n - i);
			if (k == 0 || (k == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)))
				buf_appendc(&clean, '?'), i++;
			else
				buf_append(&clean, s + i, k), i += k;
		}
		encoded_words(out, clean.data ? clean.data : "", clean.len);
		buf_free(&clean);
		return;
	}
	buf_appendc(out, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_appendc(out, '\\');
		buf_appendc(out, s[i]);
	}
	buf_appendc(out, '"');
}

void mail_address_header(struct buf *out, const char *name, const char *display, const char *addr)
{
	if (!mail_addr_ok(addr))
		BUG("header %s: not a plain address", name);
	buf_printf(out, "%s: ", name);
	if (display && *display) {
		mail_phrase(out, display);
		buf_appendc(out, ' ');
	}
	buf_printf(out, "<%s>\r\n", addr);
}

bool mail_body_has(const struct buf *body, const char *boundary)
{
	return body->len && memmem(body->data, body->len, boundary, strlen(boundary)) != NULL;
}
