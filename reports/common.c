/*
 * common.c - what both reports take from the database's JSON answers.
 */
#include <string.h>

#include "reports/internal.h"

json_t *report_decision_brief(const json_t *d)
{
	static const char *const keep[] = {"prefix", "scope", "rule",	"response", "reason",
					   "since",  "until", "active", "manual"};
	json_t *x = json_object();
	for (size_t k = 0; k < MXW_ARRAY_LEN(keep); k++)
		json_object_set(x, keep[k], json_object_get(d, keep[k]));
	return x;
}

bool report_next_cursor(const json_t *page, char *cursor, size_t n)
{
	const char *next = json_string_value(json_object_get(page, "next"));
	size_t len = next ? strlen(next) : 0;
	if (!next || len >= n)
		return false;
	memcpy(cursor, next, len + 1);
	return true;
}
