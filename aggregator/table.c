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

/* Keys are 12-18 bytes: two 8-byte words and a short tail, multiplied
 * in, then a final avalanche. The high half is the tag kept in the index,
 * and its low bits pick the slot, so that growing the table or shifting an
 * entry back never reads a record. */
static inline uint64_t key_hash(const void *key, size_t n)
{
	const unsigned char *p = key;
	uint64_t w0, w1 = 0, tail = 0;
	memcpy(&w0, p, 8);
	if (n >= 16) {
		memcpy(&w1, p + 8, 8);
		for (size_t i = 16; i < n; i++) /* 1 or 2 bytes: no memcpy call */
			tail |= (uint64_t)p[i] << (8 * (i - 16));
	} else {
		for (size_t i = 8; i < n; i++) /* never read past the key */
			w1 |= (uint64_t)p[i] << (8 * (i - 8));
	}
	uint64_t h = (w0 ^ 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
	h ^= (w1 + tail * 0x94d049bb133111ebULL) * 0xd6e8feb86659fd93ULL;
	h ^= h >> 32;
	h *= 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	return h;
}

/* Key equality for the key sizes in use (12 to 18 bytes), without a
 * library call: 8-byte words from the start, then 4, 2 and 1 bytes, so that
 * a key just built on the stack field by field is read as it was written
 * (a read across two recent stores stalls on store forwarding). */
static inline int key_eq(const void *x, const void *y, size_t n)
{
	const char *p = x, *q = y;
	uint64_t a, b, diff;
	size_t i = 8;
	memcpy(&a, p, 8);
	memcpy(&b, q, 8);
	diff = a ^ b;
	if (n >= 16) {
		memcpy(&a, p + 8, 8);
		memcpy(&b, q + 8, 8);
		diff |= a ^ b;
		i = 16;
	}
	if (n - i >= 4) {
		uint32_t c, d;
		memcpy(&c, p + i, 4);
		memcpy(&d, q + i, 4);
		diff |= c ^ d;
		i += 4;
	}
	if (n - i >= 2) {
		uint16_t c, d;
		memcpy(&c, p + i, 2);
		memcpy(&d, q + i, 2);
		diff |= (uint16_t)(c ^ d);
		i += 2;
	}
	if (n - i >= 1)
		diff |= (unsigned char)(p[i] ^ q[i]);
	return diff == 0;
}

#define ENT_REC(e)     ((uint32_t)(e))
#define ENT_TAG(e)     ((uint32_t)((e) >> 32))
#define ENT(tag, rec1) ((uint64_t)(tag) << 32 | (rec1))
#define TAG_OF(h)      ((uint32_t)((h) >> 32))

static inline char *rec_ptr(const struct table *t, uint32_t i)
{
	return t->chunks[i / TABLE_CHUNK] + (size_t)(i % TABLE_CHUNK) * t->esz;
}

void table_init(struct table *t, size_t esz, size_t keysz)
{
	if (keysz < 12 || esz < keysz + sizeof(uint32_t))
		BUG("table_init: keys are 12 bytes or more, records hold a free link");
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
	uint64_t *ni = xcalloc((size_t)newmask + 1, sizeof *ni);
	for (size_t i = 0; i <= t->mask; i++) {
		uint64_t e = t->idx[i];
		if (!e)
			continue;
		/* the tag is the hash's high half, and the slot is its low bits:
		 * no key is read again */
		uint32_t h = ENT_TAG(e) & newmask;
		while (ni[h])
			h = (h + 1) & newmask;
		ni[h] = e;
	}
	free(t->idx);
	t->idx = ni;
	t->mask = newmask;
}

uint64_t table_hash(const struct table *t, const void *key)
{
	return key_hash(key, t->keysz);
}

void table_prefetch_h(const struct table *t, uint64_t hv)
{
	__builtin_prefetch(&t->idx[TAG_OF(hv) & t->mask]);
}

void *table_find(const struct table *t, const void *key)
{
	return table_find_h(t, key, key_hash(key, t->keysz));
}

void *table_find_h(const struct table *t, const void *key, uint64_t hv)
{
	uint32_t tag = TAG_OF(hv);
	uint32_t h = TAG_OF(hv) & t->mask;
	for (;;) {
		uint64_t e = t->idx[h];
		if (!e)
			return NULL;
		if (ENT_TAG(e) == tag) {
			char *p = rec_ptr(t, ENT_REC(e) - 1);
			if (key_eq(p, key, t->keysz))
				return p;
		}
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
	return table_get_h(t, key, key_hash(key, t->keysz), created);
}

void *table_get_h(struct table *t, const void *key, uint64_t hv, int *created)
{
	if (created)
		*created = 0;
	uint32_t tag = TAG_OF(hv);
	uint32_t h = TAG_OF(hv) & t->mask;
	for (;;) {
		uint64_t e = t->idx[h];
		if (!e)
			break;
		if (ENT_TAG(e) == tag) {
			char *p = rec_ptr(t, ENT_REC(e) - 1);
			if (key_eq(p, key, t->keysz))
				return p;
		}
		h = (h + 1) & t->mask;
	}
	if ((t->n + 1) * 4 > ((size_t)t->mask + 1) * 3) {
		rehash(t, t->mask * 2 + 1);
		h = TAG_OF(hv) & t->mask;
		while (t->idx[h])
			h = (h + 1) & t->mask;
	}
	uint32_t ri = alloc_rec(t);
	char *p = rec_ptr(t, ri);
	memset(p, 0, t->esz);
	memcpy(p, key, t->keysz);
	t->idx[h] = ENT(tag, ri + 1);
	t->n++;
	if (created)
		*created = 1;
	return p;
}

void table_remove(struct table *t, void *rec)
{
	uint64_t hv = key_hash(rec, t->keysz);
	uint32_t h = TAG_OF(hv) & t->mask;
	uint64_t e;
	for (;;) {
		e = t->idx[h];
		if (!e)
			BUG("table_remove: record not in the table");
		if (rec_ptr(t, ENT_REC(e) - 1) == (char *)rec)
			break;
		h = (h + 1) & t->mask;
	}
	/* backward-shift deletion */
	uint32_t hole = h;
	uint32_t j = h;
	for (;;) {
		j = (j + 1) & t->mask;
		uint64_t ej = t->idx[j];
		if (!ej)
			break;
		uint32_t home = ENT_TAG(ej) & t->mask;
		/* move ej into the hole when its home is not in (hole, j] */
		if (((j - home) & t->mask) >= ((j - hole) & t->mask)) {
			t->idx[hole] = ej;
			hole = j;
		}
	}
	t->idx[hole] = 0;
	uint32_t r = ENT_REC(e);
	memset(rec, 0, t->esz);
	memcpy((char *)rec + t->keysz, &t->free_head, sizeof t->free_head);
	t->free_head = r;
	t->n--;
	t->removals++;
}

uint32_t table_ref(const struct table *t, const void *rec)
{
	for (size_t c = 0; c < t->nchunks; c++) {
		const char *base = t->chunks[c];
		if ((const char *)rec >= base && (const char *)rec < base + TABLE_CHUNK * t->esz)
			return (uint32_t)(c * TABLE_CHUNK + (size_t)((const char *)rec - base) / t->esz) + 1;
	}
	return 0;
}

void *table_deref(const struct table *t, uint32_t ref, const void *key)
{
	if (!ref || ref > t->nrec)
		return NULL;
	char *p = rec_ptr(t, ref - 1);
	return key_eq(p, key, t->keysz) ? p : NULL;
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
