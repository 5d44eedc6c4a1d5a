/*
 * cache.c - a micro-cache of rendered API answers: the JSON text of a GET
 * is kept for WEB_CACHE_FRESH_US and shared by every client asking the
 * same URL (path and query, in order). When an answer is stale, ONE request
 * recomputes it while the others are served the stale copy (for at most
 * WEB_CACHE_STALE_US), so a dashboard hammered by many clients costs one
 * database query per URL per second, and slow queries (a summary over
 * millions of events) do not pile up.
 *
 * Bounded: WEB_CACHE_SLOTS entries of at most WEB_CACHE_BODY_MAX bytes,
 * keys up to WEB_CACHE_KEY_MAX bytes (longer URLs and larger answers are
 * not cached), the least recently filled slot is reused.
 * It must never cache an error, a mutating request, or anything that
 * depends on who asks (nothing in the API does: there are no sessions).
 */
#include <stdlib.h>
#include <string.h>

#include "web/web_internal.h"

#define WEB_CACHE_SLOTS	   64
#define WEB_CACHE_KEY_MAX  512
#define WEB_CACHE_FRESH_US 1000000LL
#define WEB_CACHE_STALE_US 30000000LL
#define WEB_CACHE_BODY_MAX (256 * 1024) /* larger answers are not kept */

struct cache_slot {
	char key[WEB_CACHE_KEY_MAX];
	struct buf body;
	int64_t filled_us; /* monotonic; 0 = never filled */
	bool computing;
	uint64_t gen; /* the cache generation when the computation began */
};

struct web_cache {
	pthread_mutex_t mu;
	struct cache_slot slots[WEB_CACHE_SLOTS];
	uint64_t gen; /* bumped by web_cache_clear(): older computations are not stored */
	atomic_ulong hits, misses;
};

struct web_cache *web_cache_new(void)
{
	struct web_cache *c = xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

void web_cache_free(struct web_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < WEB_CACHE_SLOTS; i++)
		buf_free(&c->slots[i].body);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

struct key_ctx {
	struct buf *b;
};

static enum MHD_Result key_arg(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	struct key_ctx *x = cls;
	buf_printf(x->b, "%s%s=%s", x->b->len ? "&" : "?", k, v ? v : "");
	return MHD_YES;
}

static struct cache_slot *slot_find(struct web_cache *c, const char *key)
{
	for (size_t i = 0; i < WEB_CACHE_SLOTS; i++)
		if (c->slots[i].key[0] && strcmp(c->slots[i].key, key) == 0)
			return &c->slots[i];
	return NULL;
}

static struct cache_slot *slot_take(struct web_cache *c, const char *key)
{
	struct cache_slot *best = NULL;
	for (size_t i = 0; i < WEB_CACHE_SLOTS; i++) {
		struct cache_slot *s = &c->slots[i];
		if (s->computing)
			continue;
		if (!best || s->filled_us < best->filled_us)
			best = s;
	}
	if (!best)
		return NULL;
	str_copy(best->key, sizeof best->key, key, strlen(key));
	buf_reset(&best->body);
	best->filled_us = 0;
	return best;
}

int web_cache_begin(struct web_cache *c, struct web_req *r, struct buf *out)
{
	struct buf key = BUF_INIT, q = BUF_INIT;
	struct key_ctx x = {&q};
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, key_arg, &x);
	buf_appends(&key, r->url);
	buf_append(&key, q.data ? q.data : "", q.len);
	buf_free(&q);
	if (key.len >= WEB_CACHE_KEY_MAX) {
		buf_free(&key);
		return 0;
	}
	int64_t now = clock_mono_us();
	int rc = 0;
	pthread_mutex_lock(&c->mu);
	struct cache_slot *s = slot_find(c, buf_str(&key));
	if (s && s->filled_us &&
	    (now - s->filled_us < WEB_CACHE_FRESH_US ||
	     (s->computing && now - s->filled_us < WEB_CACHE_STALE_US))) {
		buf_append(out, s->body.data, s->body.len);
		atomic_fetch_add(&c->hits, 1);
		rc = 1;
	} else if (s && s->computing) {
		rc = 0; /* being filled and too stale to serve: compute without the cache */
	} else {
		if (!s)
			s = slot_take(c, buf_str(&key));
		if (s) {
			s->computing = true;
			s->gen = c->gen;
			r->cache_slot = s;
		}
		atomic_fetch_add(&c->misses, 1);
	}
	pthread_mutex_unlock(&c->mu);
	buf_free(&key);
	return rc;
}

void web_cache_end(struct web_cache *c, struct web_req *r, unsigned status, const char *body, size_t len)
{
	struct cache_slot *s = r->cache_slot;
	if (!s)
		return;
	r->cache_slot = NULL;
	pthread_mutex_lock(&c->mu);
	if (status == 200 && s->gen == c->gen && len <= WEB_CACHE_BODY_MAX) {
		buf_reset(&s->body);
		buf_append(&s->body, body, len);
		s->filled_us = clock_mono_us();
	} else {
		s->key[0] = '\0'; /* errors are not cached */
		s->filled_us = 0;
	}
	s->computing = false;
	pthread_mutex_unlock(&c->mu);
}

void web_cache_clear(struct web_cache *c)
{
	pthread_mutex_lock(&c->mu);
	c->gen++;
	for (size_t i = 0; i < WEB_CACHE_SLOTS; i++) {
		struct cache_slot *s = &c->slots[i];
		s->filled_us = 0;
		if (!s->computing) /* a computing slot is dropped when it ends (older generation) */
			s->key[0] = '\0';
	}
	pthread_mutex_unlock(&c->mu);
}

void web_cache_stats(struct web_cache *c, unsigned long *hits, unsigned long *misses)
{
	*hits = atomic_load(&c->hits);
	*misses = atomic_load(&c->misses);
}
