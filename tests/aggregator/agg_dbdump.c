/*
 * agg_dbdump.c - a test helper: print every decision stored in a database,
 * one per line ("prefix scope rule response since until manual"), sorted by
 * the database's order (newest first). Read-only; used to compare runs.
 *
 *   agg_dbdump DB
 */
#include <stdio.h>

#include "db/db.h"

static int print_one(void *arg, const struct decision *d, const struct db_decision_info *info)
{
	(void)arg;
	(void)info;
	char px[PREFIX_STRLEN];
	prefix_format(&d->prefix, px);
	printf("%s %s %s %s %lld %lld %d\n", px, scope_name(d->scope), d->rule, response_name(d->response),
	       (long long)d->since, (long long)d->until, d->manual ? 1 : 0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: agg_dbdump DB\n");
		return 2;
	}
	char err[512];
	struct db *db = db_open(argv[1], DB_RO, err, sizeof err);
	if (!db) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* every decision ever made: the history of the whole address space */
	struct prefix all4, all6;
	prefix_parse(&all4, "0.0.0.0/0", 9, true);
	prefix_parse(&all6, "::/0", 4, true);
	int rc = db_decisions_history(db, &all4, print_one, NULL) < 0 ||
		 db_decisions_history(db, &all6, print_one, NULL) < 0;
	if (rc)
		fprintf(stderr, "%s\n", db_errmsg(db));
	db_close(db);
	return rc;
}
