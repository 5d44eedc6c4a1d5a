/*
 * events.c - recording events: evidence rows, the batch accumulator of
 * rollups (overall and per class), per-IP/per-class hourly counts and
 * lifetime counters, unparsed
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

/* ------------------------------------------------------------ address text */

/* Decimal digits of v (< 1000) at out; returns how many. */
static size_t put_u8(char *out, unsigned v)
{
	if (v >= 100) {
		out[0] = (char)('0' + v / 100);
		out[1] = (char)('0' + v / 10 % 10);
		out[2] = (char)('0' + v % 10);
		return 3;
	}
	if (v >= 10) {
		out[0] = (char)('0' + v / 10);
		out[1] = (char)('0' + v % 10);
		return 2;
	}
	out[0] = (char)('0' + v);
	return 1;
}

/* ipaddr_format() and prefix_format(), byte for byte, without snprintf for
 * IPv4 (the flush formats one per top_hour row, the event row two). */
static size_t ip_text(const struct ipaddr *ip, char out[IPADDR_STRLEN])
{
	if (ip->family != IPADDR_V4)
		return ipaddr_format(ip, out);
	size_t n = 0;
	for (int i = 0; i < 4; i++) {
		if (i)
			out[n++] = '.';
		n += put_u8(out + n, ip->a[i]);
	}
	out[n] = '\0';
	return n;
}

static size_t prefix_text(const struct prefix *p, char out[PREFIX_STRLEN])
{
	size_t n = ip_text(&p->addr, out);
	out[n++] = '/';
	n += put_u8(out + n, p->len);
	out[n] = '\0';
	return n;
}

/* --------------------------------------------------------- the accumulator */

static uint64_t key_hash(const struct agg_key *k)
{
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < sizeof(*k); i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32; /* bring high bits down to the index bits */
	}
	return h | 1; /* 0 marks a free slot */
}

/* Key equality word by word (a call to memcmp costs more than the compare). */
static bool key_eq(const struct agg_key *x, const struct agg_key *y)
{
	uint64_t a[4], b[4];
	_Static_assert(sizeof(struct agg_key) == sizeof(a), "key is four words");
	memcpy(a, x, sizeof(a));
	memcpy(b, y, sizeof(b));
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

static void agg_grow(struct agg *a)
{
	size_t ncap = a->cap ? a->cap * 2 : 1024;
	struct agg_slot *ns = xcalloc(ncap, sizeof(*ns));
	uint32_t *norder = xmalloc(ncap * sizeof(*norder));
	for (size_t i = 0; i < a->used; i++) {
		const struct agg_slot *s = &a->slots[a->order[i]];
		size_t j = s->hash & (ncap - 1);
		while (ns[j].hash)
			j = (j + 1) & (ncap - 1);
		ns[j] = *s;
		norder[i] = (uint32_t)j;
		if (a->order[i] == a->last)
			a->last = (uint32_t)j;
	}
	free(a->slots);
	free(a->order);
	a->slots = ns;
	a->order = norder;
	a->cap = ncap;
}

void agg_add(struct agg *a, const struct agg_key *k, int64_t n)
{
	/* Consecutive events often count under the same key. */
	if (a->used && key_eq(&a->slots[a->last].key, k)) {
		a->slots[a->last].n += n;
		return;
	}
	if ((a->used + 1) * 2 > a->cap) /* at most half full: short probes */
		agg_grow(a);
	uint64_t h = key_hash(k);
	size_t j = h & (a->cap - 1);
	while (a->slots[j].hash) {
		if (a->slots[j].hash == h && key_eq(&a->slots[j].key, k)) {
			a->slots[j].n += n;
			a->last = (uint32_t)j;
			return;
		}
		j = (j + 1) & (a->cap - 1);
	}
	a->slots[j].hash = h;
	a->slots[j].key = *k;
	a->slots[j].n = n;
	a->order[a->used++] = (uint32_t)j;
	a->last = (uint32_t)j;
}

/* The dense minute's cells as rows of table (AGG_MINUTE, or AGG_HMIN of
 * host). */
static void dense_rows(struct agg *a, uint8_t table, uint8_t host)
{
	struct agg_key k;
	memset(&k, 0, sizeof(k));
	k.table = table;
	k.host = host;
	k.t = a->min_t;
	for (size_t i = 0; i < a->min_used; i++) {
		unsigned c = a->min_cells[i];
		k.kind = (uint8_t)(c / (CAT__COUNT * CC__COUNT));
		k.cat = (uint8_t)(c / CC__COUNT % CAT__COUNT);
		k.cc = (uint8_t)(c % CC__COUNT);
		agg_add(a, &k, a->min_n[c]);
	}
}

void agg_spill(struct agg *a)
{
	if (a->min_used) {
		dense_rows(a, AGG_MINUTE, 0);
		if (a->min_host_set && !a->min_mixed && a->min_host)
			dense_rows(a, AGG_HMIN, a->min_host); /* one host had them all */
		for (size_t i = 0; i < a->min_used; i++)
			a->min_n[a->min_cells[i]] = 0;
	}
	a->min_used = 0;
	a->min_host_set = a->min_mixed = false;
}

/* Before an event of host counts in the dense minute of t: the host's
 * own minute (see struct agg). Returns whether the event must be counted
 * in the table (AGG_HMIN) by the caller. */
static bool host_minute(struct agg *a, int64_t t, uint8_t host)
{
	if (t != a->min_t) {
		agg_spill(a);
		a->min_t = t;
	}
	if (!a->min_host_set) {
		a->min_host_set = true;
		a->min_host = host;
		return false;
	}
	if (!a->min_mixed && host != a->min_host) {
		/* the events so far were all min_host's: their rows now, then
		 * each event in the table */
		if (a->min_host)
			dense_rows(a, AGG_HMIN, a->min_host);
		a->min_mixed = true;
	}
	return a->min_mixed && host;
}

void agg_minute(struct agg *a, int64_t t, unsigned kind, unsigned cat, unsigned cc)
{
	if (t != a->min_t) {
		agg_spill(a);
		a->min_t = t;
	}
	unsigned c = (kind * CAT__COUNT + cat) * CC__COUNT + cc;
	if (a->min_n[c]++ == 0)
		a->min_cells[a->min_used++] = (uint16_t)c;
}

static void hosts_clear(struct agg *a)
{
	for (size_t i = 0; i < a->nhosts; i++) {
		a->host_lines[a->hosts[i]] = 0;
		a->host_newest[a->hosts[i]] = 0;
	}
	a->nhosts = 0;
}

void agg_clear(struct agg *a)
{
	hosts_clear(a);
	a->min_host_set = a->min_mixed = false;
	for (size_t i = 0; i < a->min_used; i++)
		a->min_n[a->min_cells[i]] = 0;
	a->min_used = 0;
	if (a->used == 0)
		return;
	/* A huge batch leaves a huge table: shrink back instead of keeping it. */
	if (a->cap > 131072) {
		agg_free(a);
		return;
	}
	for (size_t i = 0; i < a->used; i++)
		a->slots[a->order[i]].hash = 0;
	a->used = 0;
}

void agg_free(struct agg *a)
{
	hosts_clear(a);
	a->min_host_set = a->min_mixed = false;
	for (size_t i = 0; i < a->min_used; i++)
		a->min_n[a->min_cells[i]] = 0;
	a->min_used = 0;
	free(a->slots);
	free(a->order);
	a->slots = NULL;
	a->order = NULL;
	a->cap = a->used = 0;
}

/*
 * Flushing: rows go out FLUSH_ROWS at a time through one multi-row upsert
 * per destination table (a statement per row costs more than the row), the
 * remainder one by one.
 */
enum flush_dest {
	FD_MINUTE,
	FD_HOUR,
	FD_TOP,
	FD_COUNTER,
	FD_CMIN,
	FD_CHOUR,
	FD_HMIN,
	FD_HHOUR,
	FD_HTOP,
	FD__COUNT
};

static const struct {
	const char *head;
	int ncols;
	enum stmt_id single;
} dests[FD__COUNT] = {
    [FD_MINUTE] = {"INSERT INTO rollup_minute(t, kind, category, code_class, n) VALUES", 5,
		   Q_ROLLUP_MINUTE_ADD},
    [FD_HOUR] = {"INSERT INTO rollup_hour(t, kind, category, code_class, n) VALUES", 5, Q_ROLLUP_HOUR_ADD},
    [FD_TOP] = {"INSERT INTO top_hour(t, scope, prefix, kind, category, n) VALUES", 6, Q_TOP_HOUR_ADD},
    [FD_COUNTER] = {"INSERT INTO counters(name, key, n) VALUES", 3, Q_COUNTER_ADD},
    [FD_CMIN] = {"INSERT INTO class_minute(t, cls, plen, kind, category, code_class, n) VALUES", 7,
		 Q_CLASS_MINUTE_ADD},
    [FD_CHOUR] = {"INSERT INTO class_hour(t, cls, plen, kind, category, code_class, n) VALUES", 7,
		  Q_CLASS_HOUR_ADD},
    [FD_HMIN] = {"INSERT INTO host_rollup_minute(t, host, kind, category, code_class, n) VALUES", 6,
		 Q_HOST_MINUTE_ADD},
    [FD_HHOUR] = {"INSERT INTO host_rollup_hour(t, host, kind, category, code_class, n) VALUES", 6,
		  Q_HOST_HOUR_ADD},
    [FD_HTOP] = {"INSERT INTO host_top_hour(t, host, scope, prefix, kind, category, n) VALUES", 7,
		 Q_HOST_TOP_ADD},
};

static enum flush_dest dest_of(uint8_t table)
{
	switch ((enum agg_table)table) {
	case AGG_MINUTE: return FD_MINUTE;
	case AGG_HOUR: return FD_HOUR;
	case AGG_TOP: return FD_TOP;
	case AGG_KIND:
	case AGG_CAT: return FD_COUNTER;
	case AGG_CMIN: return FD_CMIN;
	case AGG_CHOUR: return FD_CHOUR;
	case AGG_HMIN: return FD_HMIN;
	case AGG_HHOUR: return FD_HHOUR;
	case AGG_HTOP: return FD_HTOP;
	}
	return FD__COUNT;
}

static sqlite3_stmt *multi_stmt(struct db *db, enum flush_dest d)
{
	if (db->multi[d]) {
		sqlite3_reset(db->multi[d]);
		sqlite3_clear_bindings(db->multi[d]);
		return db->multi[d];
	}
	struct buf b = BUF_INIT;
	buf_appends(&b, dests[d].head);
	for (int r = 0; r < FLUSH_ROWS; r++) {
		buf_appends(&b, r ? ",(" : "(");
		for (int c = 0; c < dests[d].ncols; c++)
			buf_appends(&b, c ? ",?" : "?");
		buf_appendc(&b, ')');
	}
	buf_appends(&b, " ON CONFLICT DO UPDATE SET n = n + excluded.n");
	int rc = sqlite3_prepare_v3(db->h, buf_str(&b), (int)b.len, SQLITE_PREPARE_PERSISTENT, &db->multi[d],
				    NULL);
	buf_free(&b);
	if (rc != SQLITE_OK) {
		db_fail_sql(db, "prepare flush");
		return NULL;
	}
	return db->multi[d];
}

/* Bind slot s as row r (0-based) of st, whose rows have ncols columns.
 * text is room for the row's prefix text (bound STATIC: it must live until
 * the statement has run). */
static void bind_row(sqlite3_stmt *st, int r, const struct agg_slot *s, char text[PREFIX_STRLEN])
{
	const struct agg_key *k = &s->key;
	const char *kind = ev_kind_name((enum ev_kind)k->kind);
	const char *cat = ev_category_name((enum ev_category)k->cat);
	enum flush_dest d = dest_of(k->table);
	int i = r * dests[d].ncols + 1;
	switch (d) {
	case FD_MINUTE:
	case FD_HOUR:
		sqlite3_bind_int64(st, i, k->t);
		sqlite3_bind_text(st, i + 1, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 2, cat, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 3, code_class_name((enum code_class)k->cc), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, i + 4, s->n);
		break;
	case FD_TOP: {
		struct prefix p = {.len = k->plen};
		p.addr.family = k->fam;
		memcpy(p.addr.a, k->addr, 16);
		size_t n = k->scope == SCOPE_IP ? ip_text(&p.addr, text) : prefix_text(&p, text);
		sqlite3_bind_int64(st, i, k->t);
		sqlite3_bind_text(st, i + 1, scope_name((enum scope)k->scope), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 2, text, (int)n, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 3, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 4, cat, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, i + 5, s->n);
		break;
	}
	case FD_CMIN:
	case FD_CHOUR: {
		_Static_assert(PREFIX_STRLEN >= 17, "room for a class key");
		text[0] = (char)k->fam;
		memcpy(text + 1, k->addr, 16);
		sqlite3_bind_int64(st, i, k->t);
		sqlite3_bind_blob(st, i + 1, text, 17, SQLITE_STATIC);
		sqlite3_bind_int(st, i + 2, k->plen);
		sqlite3_bind_text(st, i + 3, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 4, cat, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 5, code_class_name((enum code_class)k->cc), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, i + 6, s->n);
		break;
	}
	case FD_HMIN:
	case FD_HHOUR: {
		size_t hl;
		const char *h = db_host_name(k->host, &hl);
		sqlite3_bind_int64(st, i, k->t);
		sqlite3_bind_text(st, i + 1, h, (int)hl, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 2, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 3, cat, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 4, code_class_name((enum code_class)k->cc), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, i + 5, s->n);
		break;
	}
	case FD_HTOP: {
		struct prefix p = {.len = k->plen};
		p.addr.family = k->fam;
		memcpy(p.addr.a, k->addr, 16);
		size_t n = k->scope == SCOPE_IP ? ip_text(&p.addr, text) : prefix_text(&p, text);
		size_t hl;
		const char *h = db_host_name(k->host, &hl);
		sqlite3_bind_int64(st, i, k->t);
		sqlite3_bind_text(st, i + 1, h, (int)hl, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 2, scope_name((enum scope)k->scope), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 3, text, (int)n, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 4, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 5, cat, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, i + 6, s->n);
		break;
	}
	case FD_COUNTER:
		sqlite3_bind_text(st, i, k->table == AGG_KIND ? "kind" : "category", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i + 1, k->table == AGG_KIND ? kind : cat, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, i + 2, s->n);
		break;
	case FD__COUNT: break;
	}
}

/* Send rows[0..n) of destination d: n == FLUSH_ROWS through the multi-row
 * statement, fewer one by one. */
static int flush_rows(struct db *db, enum flush_dest d, const struct agg_slot *const *rows, size_t n)
{
	char(*txt)[PREFIX_STRLEN] = db->flush_text;
	if (n == FLUSH_ROWS) {
		sqlite3_stmt *st = multi_stmt(db, d);
		if (!st)
			return -1;
		for (size_t r = 0; r < n; r++)
			bind_row(st, (int)r, rows[r], txt[r]);
		return db_step_done(db, st, "flush");
	}
	for (size_t r = 0; r < n; r++) {
		sqlite3_stmt *st = db_stmt(db, dests[d].single);
		if (!st)
			return -1;
		bind_row(st, 0, rows[r], txt[0]);
		if (db_step_done(db, st, "flush") < 0)
			return -1;
	}
	return 0;
}

int db_agg_flush(struct db *db)
{
	struct agg *a = &db->agg;
	agg_spill(a);
	/* The hourly rollups and the lifetime counters are sums of the minute
	 * rollups: derive them here, once per key, not once per event. */
	size_t n0 = a->used;
	for (size_t i = 0; i < n0; i++) {
		struct agg_key k = a->slots[a->order[i]].key;
		int64_t n = a->slots[a->order[i]].n;
		if (k.table == AGG_CMIN || k.table == AGG_HMIN) {
			k.table = k.table == AGG_CMIN ? AGG_CHOUR : AGG_HHOUR;
			k.t -= ((k.t % 3600) + 3600) % 3600;
			agg_add(a, &k, n);
			continue;
		}
		if (k.table != AGG_MINUTE)
			continue;
		k.table = AGG_HOUR;
		k.t -= ((k.t % 3600) + 3600) % 3600;
		agg_add(a, &k, n);
		struct agg_key c;
		memset(&c, 0, sizeof(c));
		c.table = AGG_KIND;
		c.kind = k.kind;
		agg_add(a, &c, n);
		if (k.cat != CAT_NONE) {
			memset(&c, 0, sizeof(c));
			c.table = AGG_CAT;
			c.cat = k.cat;
			agg_add(a, &c, n);
		}
	}
	const struct agg_slot *rows[FD__COUNT][FLUSH_ROWS];
	size_t pending[FD__COUNT] = {0};
	for (size_t i = 0; i < a->used; i++) {
		const struct agg_slot *s = &a->slots[a->order[i]];
		enum flush_dest d = dest_of(s->key.table);
		if (d == FD__COUNT)
			return db_fail(db, "bad accumulator key");
		rows[d][pending[d]++] = s;
		if (pending[d] == FLUSH_ROWS) {
			if (flush_rows(db, d, rows[d], FLUSH_ROWS) < 0)
				return -1;
			pending[d] = 0;
		}
	}
	for (int d = 0; d < FD__COUNT; d++)
		if (flush_rows(db, (enum flush_dest)d, rows[d], pending[d]) < 0)
			return -1;
	if (db_hosts_flush(db, clock_now()) < 0)
		return -1;
	return db_rows_add(db, db->batch_rows);
}

int db_counter_add(struct db *db, const char *name, const char *key, int64_t n)
{
	sqlite3_stmt *st = db_stmt(db, Q_COUNTER_ADD);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, n);
	return db_step_done(db, st, name);
}

int db_rows_add(struct db *db, int64_t n)
{
	return n == 0 ? 0 : db_counter_add(db, "rows", "events", n);
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

void db_count_rec(struct agg *a, const struct db_countrec *ev)
{
	int64_t secs = floor_div(ev->ts_us, 1000000);
	struct agg_key k;
	memset(&k, 0, sizeof(k));
	k.kind = ev->kind;
	k.cat = ev->cat;
	k.cc = (uint8_t)code_class_of(ev->code);
	k.t = floor_div(secs, 60) * 60;
	/* the host's minute (its hour at flush): free while the minute has
	 * one host, else one more count per event */
	if (host_minute(a, k.t, ev->host)) {
		k.table = AGG_HMIN;
		k.host = ev->host;
		agg_add(a, &k, 1);
		k.table = 0;
		k.host = 0;
	}
	agg_minute(a, k.t, k.kind, k.cat, k.cc); /* hours and counters are derived at flush */
	if (ev->host) {
		/* its top senders by the evidence kinds (as top answers them by
		 * default): not connects, which would add 20% to an import's CPU
		 * time */
		k.host = ev->host;
		if (ev->has_ip && is_evidence((enum ev_kind)ev->kind)) {
			k.table = AGG_HTOP;
			k.t = floor_div(secs, 3600) * 3600;
			k.cc = 0;
			k.scope = SCOPE_IP;
			k.fam = ev->ip.family;
			k.plen = (uint8_t)ipaddr_bits(&ev->ip);
			memcpy(k.addr, ev->ip.a, 16);
			agg_add(a, &k, 1);
			if (ev->cls.addr.family) {
				k.scope = SCOPE_CLASS;
				k.fam = ev->cls.addr.family;
				k.plen = ev->cls.len;
				memcpy(k.addr, ev->cls.addr.a, 16);
				agg_add(a, &k, 1);
			}
		}
		memset(&k, 0, sizeof(k));
		k.kind = ev->kind;
		k.cat = ev->cat;
		k.cc = (uint8_t)code_class_of(ev->code);
		k.t = floor_div(secs, 60) * 60;
	}
	/* accepted mail too, by IP and hour: the judge's success counts are
	 * rebuilt from them after a crash without a checkpoint */
	if (ev->has_ip &&
	    (ev->kind == EV_CONNECT || ev->kind == EV_ACCEPT || is_evidence((enum ev_kind)ev->kind))) {
		if (ev->cls.addr.family && ev->kind != EV_CONNECT && ev->kind != EV_ACCEPT) {
			/* The class's minute, with the code class (hours at flush).
			 * Not connects: they would add 20% to an import's CPU
			 * time (top_hour has them by class, hourly). */
			k.table = AGG_CMIN;
			k.fam = ev->cls.addr.family;
			k.plen = ev->cls.len;
			memcpy(k.addr, ev->cls.addr.a, 16);
			agg_add(a, &k, 1);
		}
		k.table = AGG_TOP;
		k.t = floor_div(secs, 3600) * 3600;
		k.cc = 0;
		k.scope = SCOPE_IP;
		k.fam = ev->ip.family;
		k.plen = (uint8_t)ipaddr_bits(&ev->ip);
		memcpy(k.addr, ev->ip.a, 16);
		agg_add(a, &k, 1);
		if (ev->cls.addr.family && ev->kind != EV_ACCEPT) {
			k.scope = SCOPE_CLASS;
			k.fam = ev->cls.addr.family;
			k.plen = ev->cls.len;
			memcpy(k.addr, ev->cls.addr.a, 16);
			agg_add(a, &k, 1);
		}
	}
}

void db_countrec_of(struct db_countrec *r, const struct event *ev)
{
	r->ts_us = ev->ts_us;
	r->code = ev->code;
	r->kind = (uint8_t)ev->kind;
	r->cat = (uint8_t)ev->cat;
	r->host = db_host_id(ev->host.p, ev->host.n);
	r->has_ip = ev->has_ip;
	r->ip = ev->ip;
	r->cls = ev->cls;
}

void db_count_event(struct agg *a, const struct event *ev)
{
	struct db_countrec r;
	db_countrec_of(&r, ev);
	db_count_rec(a, &r);
}

static void bind_sp(sqlite3_stmt *st, int i, struct span s)
{
	db_bind_span(st, i, s.p, s.n);
}

/*
 * The id for an event at ts_us (DB_EVENT_ID in db.h): the next free number
 * of its second. Within a batch, consecutive events of the same second take
 * the next number without a lookup; otherwise the highest id of that second
 * is looked up (an index seek), unless the second is after the highest id
 * in the table (looked up once per batch). A full second (2^20 events) spills into the
 * next one: the order stays right, the id's second is then one too late.
 */
static int64_t next_event_id(struct db *db, int64_t ts_us)
{
	int64_t base = (ts_us / 1000000) << EVENT_ID_BITS;
	const int64_t span = (int64_t)1 << EVENT_ID_BITS;
	int64_t last = db->last_event_id;
	if (last >= 0 && last >= base && last + 1 < base + span)
		return last + 1;
	if (db->top_event_id == -2) {
		sqlite3_stmt *st = db_stmt(db, Q_EVENT_TOP_ID);
		if (!st)
			return -1;
		if (sqlite3_step(st) != SQLITE_ROW) {
			sqlite3_reset(st);
			return db_fail_sql(db, "event id");
		}
		db->top_event_id =
		    sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	/* a second after every stored event (the usual case of an import or
	 * a follow): its first number, without a lookup */
	if (base > db->top_event_id)
		return base;
	for (;; base += span) {
		sqlite3_stmt *st = db_stmt(db, Q_EVENT_MAX_ID);
		if (!st)
			return -1;
		sqlite3_bind_int64(st, 1, base);
		sqlite3_bind_int64(st, 2, base + span - 1);
		int rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			return db_fail_sql(db, "event id");
		}
		bool none = sqlite3_column_type(st, 0) == SQLITE_NULL;
		int64_t max = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (none)
			return base;
		if (max + 1 < base + span)
			return max + 1;
	}
}

int db_event_check(struct db *db, const struct event *ev)
{
	if ((unsigned)ev->kind >= EV__COUNT || (unsigned)ev->cat >= CAT__COUNT ||
	    (unsigned)ev->stage >= ST__COUNT || (unsigned)ev->mta >= MTA__COUNT)
		return db_fail(db, "db_event_insert: event with an invalid kind, category, stage or mta");
	if (ev->has_ip && ev->ip.family != IPADDR_V4 && ev->ip.family != IPADDR_V6)
		return db_fail(db, "db_event_insert: event with an invalid address");
	if (ev->ts_us < 0)
		return db_fail(db, "db_event_insert: event time before 1970");
	return 0;
}

bool db_event_is_evidence(const struct event *ev)
{
	return is_evidence(ev->kind);
}

int64_t db_event_row(struct db *db, const struct event *ev, int64_t source_id)
{
	int64_t id = next_event_id(db, ev->ts_us);
	if (id < 0)
		return -1;
	sqlite3_stmt *st = db_stmt(db, Q_EVENT_INSERT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, ev->ts_us);
	sqlite3_bind_text(st, 3, mta_name(ev->mta), -1, SQLITE_STATIC);
	bind_sp(st, 4, ev->host);
	bind_sp(st, 5, ev->program);
	if (ev->pid >= 0)
		sqlite3_bind_int(st, 6, ev->pid);
	bind_sp(st, 7, ev->queue_id);
	char ip[IPADDR_STRLEN], cls[PREFIX_STRLEN];
	uint8_t key[17];
	if (ev->has_ip) {
		size_t n = ip_text(&ev->ip, ip);
		sqlite3_bind_text(st, 8, ip, (int)n, SQLITE_STATIC);
		db_ip_key(&ev->ip, key);
		sqlite3_bind_blob(st, 9, key, sizeof(key), SQLITE_STATIC);
		if (ev->cls.addr.family) {
			n = prefix_text(&ev->cls, cls);
			sqlite3_bind_text(st, 10, cls, (int)n, SQLITE_STATIC);
		}
	}
	if (ev->port)
		sqlite3_bind_int(st, 11, ev->port);
	bind_sp(st, 12, ev->rdns);
	bind_sp(st, 13, ev->helo);
	bind_sp(st, 14, ev->from);
	bind_sp(st, 15, ev->to);
	bind_sp(st, 16, ev->user);
	sqlite3_bind_text(st, 17, ev_stage_name(ev->stage), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 18, ev_kind_name(ev->kind), -1, SQLITE_STATIC);
	if (ev->code >= 0)
		sqlite3_bind_int(st, 19, ev->code);
	bind_sp(st, 20, ev->dsn);
	sqlite3_bind_text(st, 21, ev_category_name(ev->cat), -1, SQLITE_STATIC);
	bind_sp(st, 22, ev->text);
	/* The raw line as a BLOB: bytes exactly, an empty line is "" not NULL. */
	sqlite3_bind_blob(st, 23, ev->line.p ? ev->line.p : "", (int)ev->line.n, SQLITE_STATIC);
	if (source_id > 0)
		sqlite3_bind_int64(st, 24, source_id);
	if (db_step_done(db, st, "insert event") < 0)
		return -1;
	db->last_event_id = id;
	if (id > db->top_event_id)
		db->top_event_id = id;
	db->batch_rows++;
	return id;
}

int64_t db_event_insert(struct db *db, const struct event *ev, int64_t source_id)
{
	if (!db->in_batch)
		return db_fail(db, "db_event_insert: no batch open");
	if (db_event_check(db, ev) < 0)
		return -1;
	int64_t id = 0;
	if (is_evidence(ev->kind) && (id = db_event_row(db, ev, source_id)) < 0)
		return -1;
	db_count_event(&db->agg, ev);
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
	if (db_counter_add(db, "unparsed", reason, n) < 0)
		return -1;
	sqlite3_stmt *st = db_stmt(db, Q_INGEST_ADD);
	if (!st)
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

int64_t db_events_newest(struct db *db)
{
	sqlite3_stmt *st = db_stmt(db, Q_EVENT_TOP_ID);
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail_sql(db, "newest event");
	return id > 0 ? id >> EVENT_ID_BITS : 0;
}

int db_events_scan(struct db *db, int64_t from_us, db_event_cb cb, void *arg)
{
	sqlite3_stmt *st = db_stmt(db, Q_EVENTS_SCAN);
	if (!st)
		return -1;
	/* The id bounds the index range; ts makes the start exact. */
	sqlite3_bind_int64(st, 1, from_us <= 0 ? INT64_MIN : (from_us / 1000000) << EVENT_ID_BITS);
	sqlite3_bind_int64(st, 2, from_us);
	return db_events_scan_rows(db, st, cb, arg);
}

int db_accepts_scan(struct db *db, int64_t from, db_accept_cb cb, void *arg)
{
	sqlite3_stmt *st = db_stmt(db, Q_ACCEPTS_SCAN);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, from);
	int rc = SQLITE_DONE, r = 0;
	while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *px = (const char *)sqlite3_column_text(st, 1);
		struct prefix p;
		if (!px || prefix_parse(&p, px, strlen(px), false) < 0 || !prefix_is_host(&p))
			continue;
		r = cb(arg, sqlite3_column_int64(st, 0), &p.addr, sqlite3_column_int64(st, 2));
	}
	int ret = r ? r : rc == SQLITE_DONE ? 0 : db_fail_sql(db, "scan accepted mail");
	sqlite3_reset(st);
	return ret;
}

int db_events_scan_rows(struct db *db, sqlite3_stmt *st, db_event_cb cb, void *arg)
{
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
	int ret = rc == SQLITE_DONE ? 0 : db_fail_sql(db, "scan events"); /* before the reset */
	sqlite3_reset(st);
	return ret;
}
