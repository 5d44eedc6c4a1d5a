/*
 * table.h - internal to aggregator/: an open-addressing hash table of
 * fixed-size records whose key is the first keysz bytes of the record.
 *
 * Records live in chunks of TABLE_CHUNK that never move, so a record
 * pointer stays valid until that record is removed; the index is an array
 * of uint64 (record number + 1 in the low half, 0 = empty; the key's hash
 * in the high half, so that a probe compares keys only when hashes match)
 * with linear probing and backward-shift deletion (no tombstones). Memory
 * per record is esz plus 11-21 bytes of index at a load of 3/8 to 3/4. It
 * must never allocate except when it grows.
 */
#ifndef MXWARDEN_AGG_TABLE_H
#define MXWARDEN_AGG_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define TABLE_CHUNK 4096

struct table {
	size_t esz, keysz;
	uint64_t *idx; /* mask + 1 entries: hash << 32 | (record number + 1) */
	uint32_t mask;
	size_t n;    /* records in use */
	size_t nrec; /* records ever carved from chunks */
	char **chunks;
	size_t nchunks;
	uint32_t free_head; /* record number + 1 of the first free record, 0 = none */
	uint64_t removals;  /* grows with every removal: pointers held across calls check it */
};

void table_init(struct table *t, size_t esz, size_t keysz);
void table_free(struct table *t);
/* The record with this key, or NULL. */
void *table_find(const struct table *t, const void *key);
/* Lookups with the key's hash computed once (table_hash(); it does not
 * change when the table grows or loses records). table_prefetch_h starts
 * loading the key's index slot into the cache (a hint, no effect on the
 * table): call it early, do other work, then look the key up. */
uint64_t table_hash(const struct table *t, const void *key);
void table_prefetch_h(const struct table *t, uint64_t hv);
void *table_find_h(const struct table *t, const void *key, uint64_t hv);
void *table_get_h(struct table *t, const void *key, uint64_t hv, int *created);
/* The record with this key; created zeroed (key set) when missing, *created
 * then true. Never returns NULL (dies on OOM). */
void *table_get(struct table *t, const void *key, int *created);
/* Remove the record (a pointer returned by find/get). */
void table_remove(struct table *t, void *rec);
/* A short reference to a record (0 = none), and back: table_deref()
 * returns the record only while it still holds key (it may have been
 * removed and reused). table_ref() is linear in the number of chunks. */
uint32_t table_ref(const struct table *t, const void *rec);
void *table_deref(const struct table *t, uint32_t ref, const void *key);
/* The record numbered i (0 <= i < t->nrec) or NULL when that slot is free. */
void *table_at(const struct table *t, size_t i);
size_t table_bytes(const struct table *t);

#endif
