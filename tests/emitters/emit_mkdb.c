/*
 * emit_mkdb.c - stores the fixture decisions (fixture.h) in a database
 * through db/ (db_decision_insert), shifted to a given now, for the export
 * and run tests: emit_mkdb DB NOW [UNTIL_SHIFT]. With a third argument, one
 * more decision on 198.51.100.99 expiring UNTIL_SHIFT seconds after NOW.
 * EMIT_MKDB_MANUAL=PREFIX in the environment marks that decision manual.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "fixture.h"

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: emit_mkdb DB NOW [SHORT_UNTIL]\n");
		return 2;
	}
	int64_t now = strtoll(argv[2], NULL, 10);
	char err[256];
	struct db *db = db_open(argv[1], DB_RW, err, sizeof err);
	if (!db) {
		fprintf(stderr, "emit_mkdb: %s\n", err);
		return 1;
	}
	struct decision d[FIX_N + 1];
	fix_make(d);
	size_t n = FIX_N;
	if (argc == 4) {
		d[n] = d[1];
		prefix_parse(&d[n].prefix, "198.51.100.99/32", 16, true);
		d[n].until = FIX_NOW + strtoll(argv[3], NULL, 10);
		n++;
	}
	const char *manual = getenv("EMIT_MKDB_MANUAL");
	int rc = db_begin(db);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char p[PREFIX_STRLEN];
		prefix_format(&d[i].prefix, p);
		d[i].manual = manual && strcmp(manual, p) == 0;
		d[i].id = 0;
		d[i].since += now - FIX_NOW;
		d[i].until += now - FIX_NOW;
		rc = db_decision_insert(db, &d[i], NULL, "test");
	}
	if (rc == 0)
		rc = db_commit(db);
	if (rc < 0)
		fprintf(stderr, "emit_mkdb: %s\n", db_errmsg(db));
	db_close(db);
	return rc < 0 ? 1 : 0;
}
