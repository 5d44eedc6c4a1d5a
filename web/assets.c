/*
 * assets.c - serve the dashboard's files from the table compiled into the
 * binary, or (the [web] assets option, for development) from a directory.
 *
 * It must never open a file whose name is not one of the table's names, nor
 * one that resolves outside the assets directory (a symlink pointing out).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "web/assets.h"

#define ASSET_MAX_BYTES (16u << 20)

const struct web_asset *web_asset_find(const char *name)
{
	for (size_t i = 0; i < web_assets_count; i++)
		if (strcmp(web_assets[i].name, name) == 0)
			return &web_assets[i];
	return NULL;
}

/* Read dir/name when it is a regular file inside dir; NULL otherwise. */
static void *asset_read_dir(const char *dir, const char *name, size_t *len, char *etag, size_t etagsz)
{
	char path[PATH_MAX], real[PATH_MAX], realdir[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof path)
		return NULL;
	if (!realpath(dir, realdir) || !realpath(path, real))
		return NULL;
	size_t dl = strlen(realdir);
	if (strncmp(real, realdir, dl) != 0 || real[dl] != '/' || strchr(real + dl + 1, '/'))
		return NULL;
	int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)ASSET_MAX_BYTES) {
		close(fd);
		return NULL;
	}
	char *data = xmalloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	data[got] = '\0';
	*len = got;
	snprintf(etag, etagsz, "\"d%llx-%llx\"",
		 (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
		     (unsigned long long)st.st_mtim.tv_nsec,
		 (unsigned long long)got);
	return data;
}

int web_asset_get(const char *dir, const char *name, struct web_asset *out, void **owned)
{
	static __thread char etag[64];
	const struct web_asset *a = web_asset_find(name);
	*owned = NULL;
	if (!a)
		return -1;
	*out = *a;
	if (dir) {
		size_t len;
		void *data = asset_read_dir(dir, a->name, &len, etag, sizeof etag);
		if (data) {
			out->data = data;
			out->len = len;
			out->etag = etag;
			*owned = data;
		}
	}
	return 0;
}
