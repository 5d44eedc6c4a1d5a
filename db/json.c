/*
 * json.c - turning stored bytes into JSON values: log text may hold NUL and
 * invalid UTF-8, which jansson refuses, so every byte string goes through
 * db_json_bytes() (invalid sequences become U+FFFD, NUL stays \u0000).
 * It must never hand unchecked bytes to jansson.
 */
#include <string.h>

#include "db/db_internal.h"

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0 when it is not valid. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t min, cp;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		min = 0x80;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		min = 0x800;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		min = 0x10000;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

json_t *db_json_bytes(const char *p, size_t n)
{
	const uint8_t *s = (const uint8_t *)p;
	size_t i = 0;
	/* Fast path: already valid. */
	while (i < n) {
		size_t l = utf8_seq(s + i, n - i);
		if (!l)
			break;
		i += l;
	}
	json_t *j;
	if (i == n) {
		j = json_stringn_nocheck(n ? p : "", n);
	} else {
		struct buf b = BUF_INIT;
		buf_append(&b, p, i);
		while (i < n) {
			size_t l = utf8_seq(s + i, n - i);
			if (l) {
				buf_append(&b, p + i, l);
				i += l;
			} else {
				buf_append(&b, "\xef\xbf\xbd", 3); /* U+FFFD for one bad byte */
				i++;
			}
		}
		j = json_stringn_nocheck(buf_str(&b), b.len);
		buf_free(&b);
	}
	if (!j)
		fatal("out of memory (json)");
	return j;
}

json_t *db_json_time(int64_t secs)
{
	char out[TIME_STRLEN];
	size_t n = time_format_rfc3339(secs * 1000000, false, out);
	return json_stringn(out, n);
}

json_t *db_json_column(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return json_null();
	const char *p = sqlite3_column_blob(st, col);
	return db_json_bytes(p ? p : "", (size_t)sqlite3_column_bytes(st, col));
}
