/*
 * events.c - recording events: evidence rows, the batch accumulator of
 * rollups, per-IP/per-class hourly counts and lifetime counters, unparsed
 * lines, and scanning stored events back.
 *
 * The hot path (db_event_insert) does one prepared INSERT for an evidence
 * event and a handful of in-memory hash updates for every event; the
 * counts reach SQLite once per batch, in db_commit(). It must never
 * allocate per event (the accumulator grows by doubling only).
 */
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"

static const char *const cc_names[CC__COUNT] = {"421", "451", "4xx", "5xx", "none"};

enum code_class code_class_of(int code)
{
	if (code == 421)
		return CC_421;
	if (code == 451)
		return CC_451;
	if (code >= 400 && code < 500)
		return CC_4XX;
	if (code >= 500 && code < 600)
		return CC_5XX;
	return CC_NONE;
}

const char *code_class_name(enum code_class c)
{
	return (unsigned)c < CC__COUNT ? cc_names[c] : "invalid";
}

/* --------------------------------------------------------- the accumulator */

static uint64_t key_hash(const struct agg_key *k)
{
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < sizeof(*k); i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h ^= w;
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	return h;
}

static void agg_grow(struct agg *a)
{
	size_t ncap = a->cap ? a->cap * 2 : 1024;
	struct agg_slot *ns = xcalloc(ncap, sizeof(*ns));
	for (size_t i = 0; i < a->cap; i++) {
		if (!a->slots[i].used)
			continue;
		size_t j = key_hash(&a->slots[i].key) & (ncap - 1);
		while (ns[j].used)
			j = (j + 1) & (ncap - 1);
		ns[j] = a->slots[i];
	}
	free(a->slots);
	a->slots = ns;
	a->cap = ncap;
}

void agg_add(struct agg *a, const struct agg_key *k, int64_t n)
{
	_Static_assert(sizeof(struct agg_key) % 8 == 0, "key hashed by words");
	if ((a->used + 1) * 4 > a->cap * 3)
		agg_grow(a);
	size_t j = key_hash(k) & (a->cap - 1);
	while (a->slots[j].used) {
		if (memcmp(&a->slots[j].key, k, sizeof(*k)) == 0) {
			a->slots[j].n += n;
			return;
		}
		j = (j + 1) & (a->cap - 1);
	}
	a->slots[j].used = true;
	a->slots[j].key = *k;
	a->slots[j].n = n;
	a->used++;
}

void agg_clear(struct agg *a)
{
	if (a->used == 0)
		return;
	/* A huge batch leaves a huge table: shrink back instead of clearing it. */
	if (a->cap > 65536) {
		agg_free(a);
		return;
	}
	memset(a->slots, 0, a->cap * sizeof(*a->slots));
	a->used = 0;
}

void agg_free(struct agg *a)
{
	free(a->slots);
	a->slots = NULL;
	a->cap = a->used = 0;
}

static int flush_slot(struct db *db, const struct agg_slot *s)
{
	const struct agg_key *k = &s->key;
	const char *kind = ev_kind_name((enum ev_kind)k->kind);
	const char *cat = ev_category_name((enum ev_category)k->cat);
	sqlite3_stmt *st;
	switch ((enum agg_table)k->table) {
	case AGG_MINUTE:
	case AGG_HOUR:
		st = db_stmt(db, k->table == AGG_MINUTE ? Q_ROLLUP_MINUTE_ADD : Q_ROLLUP_HOUR_ADD);
		if (!st)
			return -1;
		sqlite3_bind_int64(st, 1, k->t);
		sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, cat, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, code_class_name((enum code_class)k->cc), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, s->n);
		return db_step_done(db, st, "rollup");
	case AGG_TOP: {
		st = db_stmt(db, Q_TOP_HOUR_ADD);
		if (!st)
			return -1;
		struct prefix p = {.len = k->plen};
		p.addr.family = k->fam;
		memcpy(p.addr.a, k->addr, 16);
		char text[PREFIX_STRLEN];
		size_t n = k->scope == SCOPE_IP ? ipaddr_format(&p.addr, text) : prefix_format(&p, text);
		sqlite3_bind_int64(st, 1, k->t);
		sqlite3_bind_text(st, 2, scope_name((enum scope)k->scope), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, text, (int)n, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, cat, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, s->n);
		return db_step_done(db, st, "top");
	}
	case AGG_KIND:
	case AGG_CAT:
		st = db_stmt(db, Q_COUNTER_ADD);
		if (!st)
			return -1;
		sqlite3_bind_text(st, 1, k->table == AGG_KIND ? "kind" : "category", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, k->table == AGG_KIND ? kind : cat, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, s->n);
		return db_step_done(db, st, "counter");
	}
	return db_fail(db, "bad accumulator key");
}

int db_agg_flush(struct db *db)
{
	for (size_t i = 0; i < db->agg.cap; i++)
		if (db->agg.slots[i].used && flush_slot(db, &db->agg.slots[i]) < 0)
			return -1;
	return 0;
}

/* ----------------------------------------------------------------- events */

static bool is_evidence(enum ev_kind k)
{
	return k == EV_REJECT || k == EV_AUTH_FAILURE || k == EV_PROTOCOL || k == EV_LOST;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void count_event(struct db *db, const struct event *ev)
{
	int64_t secs = floor_div(ev->ts_us, 1000000);
	struct agg_key k;
	memset(&k, 0, sizeof(k));
	k.kind = (uint8_t)ev->kind;
	k.cat = (uint8_t)ev->cat;
	k.cc = (uint8_t)code_class_of(ev->code);
	k.table = AGG_MINUTE;
	k.t = floor_div(secs, 60) * 60;
	agg_add(&db->agg, &k, 1);
	k.table = AGG_HOUR;
	k.t = floor_div(secs, 3600) * 3600;
	agg_add(&db->agg, &k, 1);
	if (ev->has_ip) {
		k.table = AGG_TOP;
		k.cc = 0;
		k.scope = SCOPE_IP;
		k.fam = ev->ip.family;
		k.plen = (uint8_t)ipaddr_bits(&ev->ip);
		memcpy(k.addr, ev->ip.a, 16);
		agg_add(&db->agg, &k, 1);
		if (ev->cls.addr.family) {
			k.scope = SCOPE_CLASS;
			k.fam = ev->cls.addr.family;
			k.plen = ev->cls.len;
			memcpy(k.addr, ev->cls.addr.a, 16);
			agg_add(&db->agg, &k, 1);
		}
	}
	memset(&k, 0, sizeof(k));
	k.table = AGG_KIND;
	k.kind = (uint8_t)ev->kind;
	agg_add(&db->agg, &k, 1);
	if (ev->cat != CAT_NONE) {
		memset(&k, 0, sizeof(k));
		k.table = AGG_CAT;
		k.cat = (uint8_t)ev->cat;
		agg_add(&db->agg, &k, 1);
	}
}

static void bind_sp(sqlite3_stmt *st, int i, struct span s)
{
	db_bind_span(st, i, s.p, s.n);
}

int64_t db_event_insert(struct db *db, const struct event *ev, int64_t source_id)
{
	if (!db->in_batch)
		return db_fail(db, "db_event_insert: no batch open");
	if ((unsigned)ev->kind >= EV__COUNT || (unsigned)ev->cat >= CAT__COUNT ||
	    (unsigned)ev->stage >= ST__COUNT || (unsigned)ev->mta >= MTA__COUNT)
		return db_fail(db, "db_event_insert: event with an invalid kind, category, stage or mta");
	if (ev->has_ip && ev->ip.family != IPADDR_V4 && ev->ip.family != IPADDR_V6)
		return db_fail(db, "db_event_insert: event with an invalid address");
	int64_t id = 0;
	if (is_evidence(ev->kind)) {
		sqlite3_stmt *st = db_stmt(db, Q_EVENT_INSERT);
		if (!st)
			return -1;
		sqlite3_bind_int64(st, 1, ev->ts_us);
		sqlite3_bind_text(st, 2, mta_name(ev->mta), -1, SQLITE_STATIC);
		bind_sp(st, 3, ev->host);
		bind_sp(st, 4, ev->program);
		if (ev->pid >= 0)
			sqlite3_bind_int(st, 5, ev->pid);
		bind_sp(st, 6, ev->queue_id);
		if (ev->has_ip) {
			char ip[IPADDR_STRLEN], cls[PREFIX_STRLEN];
			uint8_t key[17];
			size_t n = ipaddr_format(&ev->ip, ip);
			sqlite3_bind_text(st, 7, ip, (int)n, SQLITE_TRANSIENT);
			db_ip_key(&ev->ip, key);
			sqlite3_bind_blob(st, 8, key, sizeof(key), SQLITE_TRANSIENT);
			if (ev->cls.addr.family) {
				n = prefix_format(&ev->cls, cls);
				sqlite3_bind_text(st, 9, cls, (int)n, SQLITE_TRANSIENT);
			}
		}
		if (ev->port)
			sqlite3_bind_int(st, 10, ev->port);
		bind_sp(st, 11, ev->rdns);
		bind_sp(st, 12, ev->helo);
		bind_sp(st, 13, ev->from);
		bind_sp(st, 14, ev->to);
		bind_sp(st, 15, ev->user);
		sqlite3_bind_text(st, 16, ev_stage_name(ev->stage), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 17, ev_kind_name(ev->kind), -1, SQLITE_STATIC);
		if (ev->code >= 0)
			sqlite3_bind_int(st, 18, ev->code);
		bind_sp(st, 19, ev->dsn);
		sqlite3_bind_text(st, 20, ev_category_name(ev->cat), -1, SQLITE_STATIC);
		bind_sp(st, 21, ev->text);
		/* The raw line as a BLOB: bytes exactly, an empty line is "" not NULL. */
		sqlite3_bind_blob(st, 22, ev->line.p ? ev->line.p : "", (int)ev->line.n, SQLITE_TRANSIENT);
		if (source_id > 0)
			sqlite3_bind_int64(st, 23, source_id);
		if (db_step_done(db, st, "insert event") < 0)
			return -1;
		id = sqlite3_last_insert_rowid(db->h);
	}
	count_event(db, ev);
	return id;
}

int db_unparsed_add(struct db *db, const char *reason, int64_t n)
{
	if (!db->rw)
		return db_fail(db, "read-only connection");
	if (!reason || !*reason || n < 0)
		return db_fail(db, "db_unparsed_add: bad reason or count");
	if (n == 0)
		return 0;
	sqlite3_stmt *st = db_stmt(db, Q_COUNTER_ADD);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, "unparsed", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, reason, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, n);
	if (db_step_done(db, st, "unparsed") < 0)
		return -1;
	if (!(st = db_stmt(db, Q_INGEST_ADD)))
		return -1;
	sqlite3_bind_int64(st, 1, floor_div(clock_now(), 60) * 60);
	sqlite3_bind_int64(st, 2, 0);
	sqlite3_bind_int64(st, 3, n);
	return db_step_done(db, st, "ingest");
}

/* ------------------------------------------------------------ reading back */

static struct span col_span(sqlite3_stmt *st, int col)
{
	const void *p = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);
	return p ? (struct span){p, (uint32_t)n} : SPAN_NULL;
}

static int col_enum(sqlite3_stmt *st, int col, int (*from_name)(const char *), int dflt)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	int v = s ? from_name((const char *)s) : -1;
	return v < 0 ? dflt : v;
}

/* Decode a row of Q_EVENTS_SCAN's column order (also used by queries.c). */
void db_event_from_row(sqlite3_stmt *st, struct event *ev, int64_t *id, int64_t *source_id)
{
	memset(ev, 0, sizeof(*ev));
	*id = sqlite3_column_int64(st, 0);
	ev->ts_us = sqlite3_column_int64(st, 1);
	ev->mta = (enum mta)col_enum(st, 2, mta_from_name, MTA_UNKNOWN);
	ev->host = col_span(st, 3);
	ev->program = col_span(st, 4);
	ev->pid = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 5);
	ev->queue_id = col_span(st, 6);
	const void *key = sqlite3_column_blob(st, 8);
	if (key && sqlite3_column_bytes(st, 8) == 17) {
		const uint8_t *k = key;
		ev->has_ip = true;
		ev->ip.family = k[0];
		memcpy(ev->ip.a, k + 1, 16);
	}
	const unsigned char *cls = sqlite3_column_text(st, 9);
	if (cls)
		prefix_parse(&ev->cls, (const char *)cls, (size_t)sqlite3_column_bytes(st, 9), false);
	ev->port = (uint16_t)sqlite3_column_int(st, 10);
	ev->rdns = col_span(st, 11);
	ev->helo = col_span(st, 12);
	ev->from = col_span(st, 13);
	ev->to = col_span(st, 14);
	ev->user = col_span(st, 15);
	ev->stage = (enum ev_stage)col_enum(st, 16, ev_stage_from_name, ST_OTHER);
	ev->kind = (enum ev_kind)col_enum(st, 17, ev_kind_from_name, EV_NONE);
	ev->code = sqlite3_column_type(st, 18) == SQLITE_NULL ? -1 : (int16_t)sqlite3_column_int(st, 18);
	ev->dsn = col_span(st, 19);
	ev->cat = (enum ev_category)col_enum(st, 20, ev_category_from_name, CAT_OTHER);
	ev->text = col_span(st, 21);
	ev->line = col_span(st, 22);
	if (!ev->line.p)
		ev->line = (struct span){"", 0};
	*source_id = sqlite3_column_int64(st, 23);
}

int db_events_scan(struct db *db, int64_t from_us, db_event_cb cb, void *arg)
{
	sqlite3_stmt *st = db_stmt(db, Q_EVENTS_SCAN);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, from_us);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct event ev;
		int64_t id, src;
		db_event_from_row(st, &ev, &id, &src);
		int r = cb(arg, id, &ev);
		if (r) {
			sqlite3_reset(st);
			return r;
		}
	}
	if (rc != SQLITE_DONE) {
		db_fail_sql(db, "scan events");
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}
