/*
 * assets.h (internal to web/) - the dashboard's files: the table that
 * static/bin2c.py generates at build time, and the lookup that serves
 * either that table or, in development, the same names from a directory.
 *
 * It must never serve a name that is not in the table: a request can only
 * pick one of the fixed names, so no path from a request reaches open().
 */
#ifndef MXWARDEN_WEB_ASSETS_H
#define MXWARDEN_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *name; /* "app.js": no slash, never empty */
	const char *type; /* Content-Type */
	const unsigned char *data;
	size_t len;
	const char *etag; /* a strong ETag, quotes included */
};

/* Generated (web_assets.c in the build directory). */
extern const struct web_asset web_assets[];
extern const size_t web_assets_count;

/* The embedded asset named exactly name, or NULL. */
const struct web_asset *web_asset_find(const char *name);

/*
 * The asset named exactly name, read from dir when dir is not NULL (its
 * file must resolve, through realpath, to a regular file directly inside
 * dir; else the embedded copy is used) or the embedded copy. On success
 * fills *out (data owned by *owned, which the caller frees; NULL when the
 * data is the embedded copy) and returns 0; -1 when name is not an asset.
 */
int web_asset_get(const char *dir, const char *name, struct web_asset *out, void **owned);

#endif
