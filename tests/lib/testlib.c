/*
 * testlib.c - the shared helpers of the C tests (testlib.h).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

char *tl_scratch(const char *tag, bool shm)
{
	struct stat st;
	const char *base = "/tmp";
	if (shm && stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";
	char *p = NULL;
	if (asprintf(&p, "%s/mxw-%s-XXXXXX", base, tag) < 0)
		return NULL;
	if (!mkdtemp(p)) {
		free(p);
		return NULL;
	}
	return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void tl_rmtree(const char *dir)
{
	if (dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tl_path(const char *dir, const char *name)
{
	char *p = NULL;
	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

char *tl_slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	size_t cap = 8192, n = 0, k;
	char *b = malloc(cap + 1);
	while (b && (k = fread(b + n, 1, cap - n, fp)) > 0) {
		n += k;
		if (n == cap) {
			char *nb = realloc(b, 2 * cap + 1);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
	}
	bool bad = ferror(fp);
	fclose(fp);
	if (!b || bad) {
		free(b);
		return NULL;
	}
	b[n] = '\0';
	if (len)
		*len = n;
	return b;
}

int tl_write(const char *path, const char *mode, const char *text)
{
	FILE *fp = fopen(path, mode);
	if (!fp)
		return -1;
	size_t n = strlen(text);
	bool ok = fwrite(text, 1, n, fp) == n;
	if (fclose(fp) != 0)
		ok = false;
	return ok ? 0 : -1;
}

size_t tl_count_dotfiles(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	size_t n = 0;
	while (dp && (e = readdir(dp)))
		n += e->d_name[0] == '.' && e->d_name[1] && strcmp(e->d_name, "..") != 0;
	if (dp)
		closedir(dp);
	return n;
}
