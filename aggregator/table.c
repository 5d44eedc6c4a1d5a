/*
 * table.c - the aggregator's open-addressing table of fixed-size records
 * (see table.h). Used for per-IP and per-class state. It must never move a
 * live record or allocate on a lookup.
 */
#include <stdlib.h>
#include <string.h>

#include "aggregator/table.h"
#include "base/base.h"

/* Free records are those whose key's first byte (an address family) is 0:
 * table_remove() zeroes the record and keeps the free-list link after the key. */

static uint64_t key_hash(const void *key, size_t n)
{
	const uint8_t *p = key;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

static inline char *rec_ptr(const struct table *t, uint32_t i)
{
	return t->chunks[i / TABLE_CHUNK] + (size_t)(i % TABLE_CHUNK) * t->esz;
}

void table_init(struct table *t, size_t esz, size_t keysz)
{
	memset(t, 0, sizeof *t);
	t->esz = esz;
	t->keysz = keysz;
	t->mask = 1023;
	t->idx = xcalloc(t->mask + 1, sizeof *t->idx);
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nchunks; i++)
		free(t->chunks[i]);
	free(t->chunks);
	free(t->idx);
	memset(t, 0, sizeof *t);
}

static void rehash(struct table *t, uint32_t newmask)
{
	uint32_t *ni = xcalloc((size_t)newmask + 1, sizeof *ni);
	for (size_t i = 0; i <= t->mask; i++) {
		uint32_t r = t->idx[i];
		if (!r)
			continue;
		uint32_t h = (uint32_t)key_hash(rec_ptr(t, r - 1), t->keysz) & newmask;
		while (ni[h])
			h = (h + 1) & newmask;
		ni[h] = r;
	}
	free(t->idx);
	t->idx = ni;
	t->mask = newmask;
}

void *table_find(const struct table *t, const void *key)
{
	uint32_t h = (uint32_t)key_hash(key, t->keysz) & t->mask;
	for (;;) {
		uint32_t r = t->idx[h];
		if (!r)
			return NULL;
		char *p = rec_ptr(t, r - 1);
		if (memcmp(p, key, t->keysz) == 0)
			return p;
		h = (h + 1) & t->mask;
	}
}

static uint32_t alloc_rec(struct table *t)
{
	if (t->free_head) {
		uint32_t r = t->free_head;
		uint32_t next;
		memcpy(&next, rec_ptr(t, r - 1) + t->keysz, sizeof next);
		t->free_head = next;
		return r - 1;
	}
	if (t->nrec == t->nchunks * TABLE_CHUNK) {
		t->chunks = xrealloc(t->chunks, (t->nchunks + 1) * sizeof *t->chunks);
		t->chunks[t->nchunks++] = xmalloc(TABLE_CHUNK * t->esz);
	}
	return (uint32_t)t->nrec++;
}

void *table_get(struct table *t, const void *key, int *created)
{
	if (created)
		*created = 0;
	uint32_t h = (uint32_t)key_hash(key, t->keysz) & t->mask;
	for (;;) {
		uint32_t r = t->idx[h];
		if (!r)
			break;
		char *p = rec_ptr(t, r - 1);
		if (memcmp(p, key, t->keysz) == 0)
			return p;
		h = (h + 1) & t->mask;
	}
	if ((t->n + 1) * 4 > ((size_t)t->mask + 1) * 3) {
		rehash(t, t->mask * 2 + 1);
		h = (uint32_t)key_hash(key, t->keysz) & t->mask;
		while (t->idx[h])
			h = (h + 1) & t->mask;
	}
	uint32_t ri = alloc_rec(t);
	char *p = rec_ptr(t, ri);
	memset(p, 0, t->esz);
	memcpy(p, key, t->keysz);
	t->idx[h] = ri + 1;
	t->n++;
	if (created)
		*created = 1;
	return p;
}

void table_remove(struct table *t, void *rec)
{
	uint32_t h = (uint32_t)key_hash(rec, t->keysz) & t->mask;
	uint32_t r;
	for (;;) {
		r = t->idx[h];
		if (!r)
			BUG("table_remove: record not in the table");
		if (rec_ptr(t, r - 1) == (char *)rec)
			break;
		h = (h + 1) & t->mask;
	}
	/* backward-shift deletion */
	uint32_t hole = h;
	uint32_t j = h;
	for (;;) {
		j = (j + 1) & t->mask;
		uint32_t rj = t->idx[j];
		if (!rj)
			break;
		uint32_t home = (uint32_t)key_hash(rec_ptr(t, rj - 1), t->keysz) & t->mask;
		/* move rj into the hole when its home is not in (hole, j] */
		if (((j - home) & t->mask) >= ((j - hole) & t->mask)) {
			t->idx[hole] = rj;
			hole = j;
		}
	}
	t->idx[hole] = 0;
	memset(rec, 0, t->esz);
	memcpy((char *)rec + t->keysz, &t->free_head, sizeof t->free_head);
	t->free_head = r;
	t->n--;
}

void *table_at(const struct table *t, size_t i)
{
	if (i >= t->nrec)
		return NULL;
	char *p = rec_ptr(t, (uint32_t)i);
	return p[0] ? p : NULL; /* the key's family byte is never 0 when live */
}

size_t table_bytes(const struct table *t)
{
	return ((size_t)t->mask + 1) * sizeof *t->idx + t->nchunks * TABLE_CHUNK * t->esz +
	       t->nchunks * sizeof *t->chunks;
}
