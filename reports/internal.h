/*
 * internal.h - shared by the files of reports/ only.
 */
#ifndef MXWARDEN_REPORTS_INTERNAL_H
#define MXWARDEN_REPORTS_INTERNAL_H

#include "reports/reports.h"

/* The fields of a decision object (db_blocks_json(), db_history_json())
 * that a report shows: prefix, scope, rule, response, reason, since,
 * until, active, manual. A new object. */
json_t *report_decision_brief(const json_t *d);
/* Copy the "next" cursor of a paginated answer into cursor (size n).
 * false on the last page (or a cursor that does not fit). */
bool report_next_cursor(const json_t *page, char *cursor, size_t n);

#endif
