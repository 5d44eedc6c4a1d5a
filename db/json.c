/*
 * json.c - turning stored bytes into JSON values: log text may hold NUL and
 * invalid UTF-8, which jansson refuses, so every byte string goes through
 * db_json_bytes() (invalid sequences become U+FFFD, NUL stays \u0000).
 * It must never hand unchecked bytes to jansson.
 */
#include <string.h>

#include "db/db_internal.h"

json_t *db_json_bytes(const char *p, size_t n)
{
	json_t *j;
	if (utf8_valid(p, n)) {
		j = json_stringn_nocheck(n ? p : "", n);
	} else {
		struct buf b = BUF_INIT;
		utf8_append_clean(&b, p, n); /* base/utf8.c: U+FFFD for each bad byte */
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
