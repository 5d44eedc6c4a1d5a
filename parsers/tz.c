/*
 * tz.c - local civil time -> UTC without the C library's time-zone state.
 *
 * At parser_new() (single-threaded, before any other thread starts) the zone
 * is read once: a TZif file (tzfile(5), RFC 8536: the 64-bit section of
 * version 2+ files, else the 32-bit one) and its POSIX TZ footer, or a POSIX
 * TZ string itself ("EST5EDT,M3.2.0,M11.1.0"). The footer's rule is expanded
 * into explicit transitions up to TZ_LAST_YEAR, so a lookup is one binary
 * search in a sorted table of (UTC instant, offset) pairs.
 *
 * It must never touch the environment (setenv/tzset/mktime/localtime) after
 * tz_load(): mxwarden run is multithreaded, and TZ changes while another
 * thread reads it are undefined behaviour. It reads TZ, TZDIR and
 * /etc/localtime only in tz_load().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/tz.h"

#define TZ_FILE_MAX  (1 << 20)
#define TZ_LAST_YEAR 2200

struct tz_rule_date {
	char type; /* 'J' (1..365, no Feb 29), 'D' (0..365), 'M' (month.week.day) */
	int a, b, c;
	int32_t secs; /* local time of day of the change (may be < 0 or > 24 h) */
};

struct tz_rule {
	int32_t std_off, dst_off; /* seconds east of UTC */
	bool has_dst;
	struct tz_rule_date start, end;
};

static void tz_push(struct tz *z, int64_t at, int32_t off)
{
	int32_t prev = z->n ? z->off[z->n - 1] : z->off_before;
	if (off == prev)
		return; /* no change: not a transition for our purpose */
	if (z->n && at <= z->at[z->n - 1])
		return; /* keep the table strictly increasing */
	if (z->n == z->cap) {
		z->cap = z->cap ? z->cap * 2 : 64;
		z->at = xrealloc(z->at, z->cap * sizeof *z->at);
		z->off = xrealloc(z->off, z->cap * sizeof *z->off);
	}
	z->at[z->n] = at;
	z->off[z->n] = off;
	z->n++;
}

/* ------------------------------------------------------ POSIX TZ strings */

static const char *tz_name(const char *s)
{
	if (*s == '<') {
		const char *e = strchr(s, '>');
		return e && e > s + 1 ? e + 1 : NULL;
	}
	const char *b = s;
	while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
		s++;
	return s - b >= 3 ? s : NULL;
}

/* [+-]hh[:mm[:ss]] -> seconds; hours up to 167 (RFC 8536 extension) */
static const char *tz_hms(const char *s, int32_t *out)
{
	int sign = 1;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	int32_t v[3] = {0, 0, 0};
	for (int i = 0; i < 3; i++) {
		if (i && *s != ':')
			break;
		if (i)
			s++;
		int nd = 0;
		while (*s >= '0' && *s <= '9' && nd < 3) {
			v[i] = v[i] * 10 + (*s++ - '0');
			nd++;
		}
		if (nd == 0 || (i && v[i] > 59) || v[0] > 167)
			return NULL;
	}
	*out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
	return s;
}

static const char *tz_int(const char *s, int lo, int hi, int *out)
{
	int v = 0, nd = 0;
	while (*s >= '0' && *s <= '9' && nd < 4) {
		v = v * 10 + (*s++ - '0');
		nd++;
	}
	if (nd == 0 || v < lo || v > hi)
		return NULL;
	*out = v;
	return s;
}

static const char *tz_date(const char *s, struct tz_rule_date *d)
{
	if (*s == 'J') {
		d->type = 'J';
		s = tz_int(s + 1, 1, 365, &d->a);
	} else if (*s == 'M') {
		d->type = 'M';
		s = tz_int(s + 1, 1, 12, &d->a);
		if (s && *s == '.')
			s = tz_int(s + 1, 1, 5, &d->b);
		else
			s = NULL;
		if (s && *s == '.')
			s = tz_int(s + 1, 0, 6, &d->c);
		else
			s = NULL;
	} else {
		d->type = 'D';
		s = tz_int(s, 0, 365, &d->a);
	}
	if (!s)
		return NULL;
	d->secs = 7200;
	if (*s == '/')
		s = tz_hms(s + 1, &d->secs);
	return s;
}

/* Parse a POSIX TZ string (without a leading ':'). Returns 0 or -1. */
static int tz_rule_parse(const char *s, struct tz_rule *r)
{
	memset(r, 0, sizeof *r);
	int32_t v;
	if (!(s = tz_name(s)) || !(s = tz_hms(s, &v)))
		return -1;
	r->std_off = -v;
	if (*s == '\0')
		return 0;
	if (!(s = tz_name(s)))
		return -1;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (*s && *s != ',') {
		if (!(s = tz_hms(s, &v)))
			return -1;
		r->dst_off = -v;
	}
	if (*s == '\0') {
		/* no rule: the US rule, like glibc's default */
		r->start = (struct tz_rule_date){'M', 3, 2, 0, 7200};
		r->end = (struct tz_rule_date){'M', 11, 1, 0, 7200};
		return 0;
	}
	if (*s != ',' || !(s = tz_date(s + 1, &r->start)) || *s != ',' || !(s = tz_date(s + 1, &r->end)))
		return -1;
	return *s == '\0' ? 0 : -1;
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Local seconds since the epoch (as if UTC) of a rule date in year y. */
static int64_t tz_rule_local(const struct tz_rule_date *d, int64_t y)
{
	int64_t day;
	if (d->type == 'J') {
		day = days_from_civil(y, 1, 1) + d->a - 1 + (is_leap(y) && d->a >= 60 ? 1 : 0);
	} else if (d->type == 'D') {
		day = days_from_civil(y, 1, 1) + d->a;
	} else {
		static const int mlen[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
		int len = mlen[d->a - 1] + (d->a == 2 && is_leap(y) ? 1 : 0);
		int64_t first = days_from_civil(y, (unsigned)d->a, 1);
		int wd1 = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
		int md = 1 + (d->c - wd1 + 7) % 7 + (d->b - 1) * 7;
		while (md > len)
			md -= 7;
		day = first + md - 1;
	}
	return day * 86400 + d->secs;
}

/* Expand the rule into transitions from year y0 through TZ_LAST_YEAR. */
static void tz_rule_expand(struct tz *z, const struct tz_rule *r, int64_t y0)
{
	if (!r->has_dst) {
		tz_push(z, z->n ? z->at[z->n - 1] + 1 : INT64_MIN + 1, r->std_off);
		return;
	}
	for (int64_t y = y0; y <= TZ_LAST_YEAR; y++) {
		int64_t on = tz_rule_local(&r->start, y) - r->std_off;
		int64_t off = tz_rule_local(&r->end, y) - r->dst_off;
		if (on < off) {
			tz_push(z, on, r->dst_off);
			tz_push(z, off, r->std_off);
		} else { /* southern hemisphere: DST across New Year */
			tz_push(z, off, r->std_off);
			tz_push(z, on, r->dst_off);
		}
	}
}

/* ------------------------------------------------------------ TZif files */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Parse a TZif image. Returns 0 or -1 (not a valid TZif file). */
static int tz_parse_tzif(struct tz *z, const unsigned char *d, size_t n)
{
	if (n < 44 || memcmp(d, "TZif", 4) != 0)
		return -1;
	int version = d[4] ? d[4] - '0' : 1;
	size_t pos = 0, tsize = 4;
	for (int pass = 0; pass < 2; pass++) {
		if (n - pos < 44 || memcmp(d + pos, "TZif", 4) != 0)
			return -1;
		uint32_t isut = be32(d + pos + 20), isstd = be32(d + pos + 24), leap = be32(d + pos + 28),
			 timecnt = be32(d + pos + 32), typecnt = be32(d + pos + 36),
			 charcnt = be32(d + pos + 40);
		if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || leap > 10000 || charcnt > 100000 ||
		    isut > 256 || isstd > 256)
			return -1;
		size_t body =
		    timecnt * tsize + timecnt + typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut;
		pos += 44;
		if (n - pos < body)
			return -1;
		if (pass == 0 && version >= 2) {
			pos += body; /* skip the 32-bit section */
			tsize = 8;
			continue;
		}
		const unsigned char *times = d + pos, *idx = times + timecnt * tsize, *types = idx + timecnt;
		for (uint32_t i = 0; i < timecnt; i++)
			if (idx[i] >= typecnt)
				return -1;
		z->off_before = (int32_t)be32(types); /* type 0 before the first transition */
		for (uint32_t i = 0; i < timecnt; i++) {
			int64_t at = tsize == 8 ? be64(times + i * 8) : (int64_t)(int32_t)be32(times + i * 4);
			tz_push(z, at, (int32_t)be32(types + idx[i] * 6));
		}
		pos += body;
		break;
	}
	/* the footer: "\nTZ-string\n" (version 2+) */
	if (version >= 2 && pos < n && d[pos] == '\n') {
		const unsigned char *e = memchr(d + pos + 1, '\n', n - pos - 1);
		size_t len = e ? (size_t)(e - (d + pos + 1)) : 0;
		if (len > 0 && len < 256) {
			char foot[256];
			memcpy(foot, d + pos + 1, len);
			foot[len] = '\0';
			struct tz_rule r;
			if (tz_rule_parse(foot, &r) == 0) {
				int64_t y0 = 1970;
				if (z->n) {
					/* from the year of the last explicit transition */
					int64_t days = z->at[z->n - 1] / 86400;
					y0 = 1970 + days / 366;
					while (days_from_civil(y0 + 1, 1, 1) <= days)
						y0++;
				}
				if (z->n == 0)
					z->off_before = r.std_off;
				tz_rule_expand(z, &r, y0);
			}
		}
	}
	return 0;
}

static int tz_load_file(struct tz *z, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	unsigned char *d = xmalloc(TZ_FILE_MAX);
	size_t n = fread(d, 1, TZ_FILE_MAX, f);
	bool err = ferror(f) != 0;
	fclose(f);
	int rc = err || n == TZ_FILE_MAX ? -1 : tz_parse_tzif(z, d, n);
	free(d);
	return rc;
}

/* -------------------------------------------------------------- public */

static bool tz_name_ok(const char *name)
{
	/* a zone name: no "..", no empty component */
	if (!name[0] || strstr(name, ".."))
		return false;
	for (const char *c = name; *c; c++)
		if ((unsigned char)*c < 0x20)
			return false;
	return true;
}

struct tz *tz_load(const char *name, char *err, size_t errlen)
{
	struct tz *z = xcalloc(1, sizeof *z);
	z->cache_key = INT64_MIN;
	bool configured = name != NULL;
	if (!name) {
		name = getenv("TZ");
		if (name && name[0] == '\0')
			name = "UTC";
		if (!name)
			name = "/etc/localtime";
	}
	if (name[0] == ':')
		name++;
	char path[4096];
	int rc = -1;
	if (name[0] == '/') {
		rc = configured ? -1 : tz_load_file(z, name); /* configured zones are names */
	} else if (tz_name_ok(name)) {
		const char *dir = getenv("TZDIR");
		if (!dir || !dir[0])
			dir = "/usr/share/zoneinfo";
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) < sizeof path)
			rc = tz_load_file(z, path);
	}
	if (rc < 0) {
		z->n = 0;
		z->off_before = 0;
		struct tz_rule r;
		if (strpbrk(name, "0123456789") && tz_rule_parse(name, &r) == 0) {
			z->off_before = r.std_off;
			tz_rule_expand(z, &r, 1970);
			rc = 0;
		}
	}
	if (rc < 0 && (strcmp(name, "UTC") == 0 || strcmp(name, "GMT") == 0 || strcmp(name, "Etc/UTC") == 0 ||
		       strcmp(name, "Etc/GMT") == 0))
		rc = 0; /* without tzdata installed */
	if (rc < 0) {
		if (configured) {
			snprintf(err, errlen,
				 "unknown time zone '%s' (no such TZif file under $TZDIR or "
				 "/usr/share/zoneinfo, not a POSIX TZ "
				 "string)",
				 name);
			tz_free(z);
			return NULL;
		}
		/* the system's zone cannot be read: UTC, as the C library does */
		z->n = 0;
		z->off_before = 0;
	}
	return z;
}

void tz_free(struct tz *z)
{
	if (!z)
		return;
	free(z->at);
	free(z->off);
	free(z);
}

/* Index of the last transition at or before utc, -1 before the first. */
static ptrdiff_t tz_index(const struct tz *z, int64_t utc)
{
	size_t lo = 0, hi = z->n; /* answer in [lo, hi] as a count */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->at[mid] <= utc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo - 1;
}

static int32_t tz_off_of(const struct tz *z, ptrdiff_t i)
{
	return i < 0 ? z->off_before : z->off[i];
}

int32_t tz_offset_utc(const struct tz *z, int64_t utc)
{
	return tz_off_of(z, tz_index(z, utc));
}

/*
 * The UTC instants whose local time is local: 0 (a gap), 1, or 2 (a fold).
 * Offsets never exceed 26 hours, so the candidates are the offsets of the
 * transitions within a day and a bit on either side.
 */
static int tz_candidates(const struct tz *z, int64_t local, int64_t out[2], int64_t *gap)
{
	ptrdiff_t a = tz_index(z, local - 26 * 3600 - 1), b = tz_index(z, local + 26 * 3600 + 1);
	int n = 0;
	*gap = local - tz_off_of(z, a);
	for (ptrdiff_t k = a; k <= b; k++) {
		int64_t u = local - tz_off_of(z, k);
		bool in = (k < 0 || u >= z->at[k]) && (k + 1 >= (ptrdiff_t)z->n || u < z->at[k + 1]);
		if (in && n < 2)
			out[n++] = u;
		else if (!in && k + 1 < (ptrdiff_t)z->n && u >= z->at[k + 1] &&
			 local - tz_off_of(z, k + 1) < z->at[k + 1])
			*gap = u; /* skipped local time: the offset before the gap */
	}
	return n;
}

int64_t tz_local_to_utc_slow(struct tz *z, int64_t local, int64_t prev_utc)
{
	int64_t key = local >= 0 ? local / 3600 : -((-local + 3599) / 3600);
	if (key == z->cache_key && z->cache_simple)
		return local - z->cache_off;
	if (key != z->cache_key) {
		/* an hour is simple when its first and last second map to one
		 * UTC instant each, in the same transition interval */
		int64_t u0[2], u1[2], g;
		int n0 = tz_candidates(z, key * 3600, u0, &g),
		    n1 = tz_candidates(z, key * 3600 + 3599, u1, &g);
		z->cache_key = key;
		z->cache_simple = n0 == 1 && n1 == 1 && tz_index(z, u0[0]) == tz_index(z, u1[0]);
		if (z->cache_simple) {
			z->cache_off = (int32_t)(key * 3600 - u0[0]);
			return local - z->cache_off;
		}
	}
	int64_t u[2], gap;
	int n = tz_candidates(z, local, u, &gap);
	if (n == 0)
		return gap;
	if (n == 1)
		return u[0];
	/* a repeated hour: the first occurrence, unless the stream is already
	 * in the second (the previous line is past the transition) or has
	 * left the first behind (it is more than the slack before the
	 * previous line: the clock went back) */
	int64_t first = u[0] < u[1] ? u[0] : u[1], second = u[0] < u[1] ? u[1] : u[0];
	if (prev_utc == INT64_MIN)
		return first;
	int64_t t = z->at[tz_index(z, second)]; /* the fall-back instant */
	if (prev_utc >= t || first < prev_utc - TZ_FOLD_SLACK)
		return second;
	return first;
}
