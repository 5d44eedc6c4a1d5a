/*
 * privs.c - what the command line does about root (cli.h): `run` warns, or
 * refuses under systemd, and the commands that write the database switch to
 * the database owner's user first.
 */
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_root_check(bool allow_root)
{
	if (geteuid() != 0)
		return 0;
	const char *risk = "a parser bug or a hostile log line would meet a root process";
	if (getenv("INVOCATION_ID") && !allow_root) {
		log_error("refusing to run as root under systemd: %s. Run the service as its own user "
			  "(User=mxwarden, SupplementaryGroups=adm: the packaged mxwarden.service does), or "
			  "give --allow-root",
			  risk);
		return -1;
	}
	log_warn("running as root: %s. Run it as the mxwarden user instead: systemctl start mxwarden, or "
		 "setpriv --reuid mxwarden --regid mxwarden --init-groups mxwarden run ...",
		 risk);
	return 0;
}

int cli_as_db_owner(const char *name, const char *db_path)
{
	if (geteuid() != 0 || !db_path)
		return 0;
	struct stat st;
	char *copy = xstrdup(db_path);
	int r = stat(db_path, &st);
	if (r < 0)
		r = stat(dirname(copy), &st); /* a new database: its directory's owner */
	free(copy);
	if (r < 0 || st.st_uid == 0)
		return 0;
	struct passwd *pw = getpwuid(st.st_uid);
	gid_t gid = pw ? pw->pw_gid : st.st_gid;
	if ((pw ? initgroups(pw->pw_name, gid) : setgroups(1, &gid)) < 0 || setgid(gid) < 0 ||
	    setuid(st.st_uid) < 0) {
		fprintf(stderr, "mxwarden %s: cannot switch to the owner of %s (uid %u): %s\n", name, db_path,
			(unsigned)st.st_uid, strerror(errno));
		return 1;
	}
	if (setuid(0) == 0) { /* must be impossible now */
		fprintf(stderr, "mxwarden %s: could not drop root\n", name);
		return 1;
	}
	fprintf(stderr, "mxwarden %s: running as %s (uid %u, gid %u), the owner of %s\n", name,
		pw ? pw->pw_name : "?", (unsigned)st.st_uid, (unsigned)gid, db_path);
	return 0;
}
